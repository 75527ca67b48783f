"""How values without a DynamoDB type of their own are stored: a schedule is one compact JSON
string (the domain's storage form), the same for tasks and workflows."""

from __future__ import annotations

import json

from chalicelib.domain import schedules
from chalicelib.domain.schedules import Schedule


def schedule_json(schedule: Schedule | None) -> str | None:
    if schedule is None:
        return None
    return json.dumps(schedules.to_storage(schedule), separators=(",", ":"))


def schedule_from_json(text: str | None) -> Schedule | None:
    return schedules.from_storage(json.loads(text)) if text else None
