"""ApiGatewayPusher against a stand-in for API Gateway's management API client: 410 means
gone, other refusals of one connection never fail a whole fan-out."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.adapters.aws.websocket import ApiGatewayPusher
from chalicelib.domain.errors import Unavailable


def _error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PostToConnection",
    )


class ManagementApi:
    """Answers per connection id: delivered, gone (410), forbidden (403) or throttled (429)."""

    def __init__(self) -> None:
        self.delivered: dict[str, list[Any]] = {}
        self.failures = {
            "gone": _error("GoneException", 410),
            "forbidden": _error("ForbiddenException", 403),
            "throttled": _error("LimitExceededException", 429),
        }
        self._lock = threading.Lock()

    def post_to_connection(self, ConnectionId: str, Data: bytes) -> dict[str, Any]:
        if ConnectionId in self.failures:
            raise self.failures[ConnectionId]
        with self._lock:
            self.delivered.setdefault(ConnectionId, []).append(json.loads(Data))
        return {}


def test_one_push_reports_gone_and_raises_throttling() -> None:
    api = ManagementApi()
    pusher = ApiGatewayPusher(api)
    assert pusher.push("a", {"type": "pong"})
    assert api.delivered["a"] == [{"type": "pong"}]
    assert not pusher.push("gone", {"type": "pong"})
    with pytest.raises(Unavailable):
        pusher.push("throttled", {"type": "pong"})


def test_a_fan_out_reaches_everyone_and_names_only_the_gone() -> None:
    api = ManagementApi()
    pusher = ApiGatewayPusher(api)
    targets = [f"c{n}" for n in range(50)] + ["gone", "forbidden", "throttled"]
    gone = pusher.push_many(targets, {"type": "task.updated", "data": {"id": "t"}})
    assert gone == ["gone"]
    assert sorted(api.delivered) == sorted(f"c{n}" for n in range(50))
    assert all(
        frames == [{"type": "task.updated", "data": {"id": "t"}}]
        for frames in api.delivered.values()
    )
    assert pusher.push_many(["gone"], {"type": "x"}) == ["gone"]
    assert pusher.push_many([], {"type": "x"}) == []
