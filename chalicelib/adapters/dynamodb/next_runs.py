"""`next_run_at` after a firing, for any scheduled item (tasks, workflows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.adapters.dynamodb.transactions import condition_failed
from chalicelib.domain.model import utc


def advance_next_run(
    model: Any, item_id: str, fired_at: datetime, next_run_at: datetime | None
) -> bool:
    """Set the item's `next_run_at` if it is still at or before `fired_at` (an edit meanwhile
    computed a newer one). A derived field: no new version. True if it was written."""
    attribute: Any = model.next_run_at
    action = attribute.remove() if next_run_at is None else attribute.set(next_run_at)
    try:
        model(id=item_id).update(
            actions=[action],
            condition=model.id.exists() & (model.next_run_at <= utc(fired_at)),
        )
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True
