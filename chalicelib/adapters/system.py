"""Small adapters: the clock and the health probe."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.adapters.dynamodb.models import ClaimModel
from chalicelib.adapters.errors import is_retryable


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class DynamoHealthProbe:
    def check(self) -> dict[str, str]:
        try:
            ClaimModel.get("system#health")
        except ClaimModel.DoesNotExist:
            pass
        except Exception as exc:  # health reports failures instead of raising them
            return {"dynamodb": "unavailable" if is_retryable(exc) else "error"}
        return {"dynamodb": "ok"}
