"""A stage's deploy settings, from CDK context: defaults, then the stage's object under
`stages` (e.g. in cdk.json), then flat keys (`cdk deploy -c alarm_email=...`): the last wins.

```json
"context": {"stages": {"prod": {"alarm_email": "ops@example.com"},
                       "scratch": {"destroy_data": true}}}
```

The protection limits have their own per-stage object, `protection.<stage>`
(`components/protection.py`), as they are many and change independently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from constructs import Node

_STAGE_NAME = re.compile(r"[a-z][a-z0-9-]{0,19}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class StageSettings:
    stage: str = "dev"
    # Tables, secrets and logs go with their stacks, and the data stack is not protected.
    destroy_data: bool = False
    # Subscribed to the alarm topic (SNS mails a confirmation first).
    alarm_email: str | None = None

    def __post_init__(self) -> None:
        if not _STAGE_NAME.fullmatch(self.stage):
            raise ValueError(f"stage {self.stage!r}: use 1-20 lowercase letters, digits and '-'")
        if self.alarm_email is not None and not _EMAIL.fullmatch(self.alarm_email):
            raise ValueError(f"alarm_email {self.alarm_email!r} is not an email address")

    @property
    def retain_data(self) -> bool:
        return not self.destroy_data

    @classmethod
    def from_context(cls, node: Node) -> StageSettings:
        stage = str(node.try_get_context("stage") or "dev")
        stages = node.try_get_context("stages") or {}
        if not isinstance(stages, Mapping):
            raise ValueError("context `stages` must map stage names to settings")
        values: dict[str, Any] = dict(stages.get(stage) or {})
        known = {field.name for field in fields(cls)} - {"stage"}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"context stages.{stage}: unknown {', '.join(sorted(unknown))}")
        for name in known:
            flat = node.try_get_context(name)
            if flat is not None:
                values[name] = flat
        return cls(stage=stage, **{name: _parse(name, value) for name, value in values.items()})


def _parse(name: str, value: Any) -> Any:
    if name == "destroy_data":
        # `-c` passes strings; cdk.json and CDK_CONTEXT_JSON may hold booleans.
        return str(value).strip().lower() in {"1", "true", "yes"}
    return str(value).strip() or None
