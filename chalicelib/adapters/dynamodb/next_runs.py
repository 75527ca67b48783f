"""`next_run_at` after a firing, for any scheduled item (tasks, workflows)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.adapters.dynamodb.transactions import condition_failed
from chalicelib.domain.model import utc


def advance_next_run(
    model: Any, item_id: str, fired_at: datetime, next_run_at: datetime | None
) -> bool:
    """Set the item's `next_run_at` if it is still at or before `fired_at`, to the second (an
    edit meanwhile computed a newer one). A derived field: no new version. True if it was
    written.

    The scheduler's firing time is a whole second, while a value stored before schedules were
    kept to whole seconds carries a fraction of one: within `fired_at`'s second counts as at
    it. `UTCDateTimeAttribute` stores fixed-width `%Y-%m-%dT%H:%M:%S.%f+0000` text, which
    DynamoDB compares in time order."""
    attribute: Any = model.next_run_at
    action = attribute.remove() if next_run_at is None else attribute.set(next_run_at)
    next_second = utc(fired_at).replace(microsecond=0) + timedelta(seconds=1)
    try:
        model(id=item_id).update(
            actions=[action],
            condition=model.id.exists() & (model.next_run_at < next_second),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True
