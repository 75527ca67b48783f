"""Real time on the local stack: how soon a write reaches a subscriber's WebSocket, and how
long one change takes to reach 200 subscribers.

`python -m bench.realtime` starts the local stack in this process. Part 1: one subscriber,
100 task updates one after another; each frame's arrival minus the moment the `PATCH`
answered (the write is durable then), p50/p99 against a target of p99 at most 250 ms. Part 2:
200 connections (20 members with 10 each) subscribed to one project; one task update; the
time until the last of the 200 has its frame, against a target of 1 s. Part 3: catching up:
a new socket subscribes with `after` the project's first event and gets the 100 updates of
part 1 replayed from the event log, in order; the time until the last, against 2 s, and the
same events read over HTTP (`GET /projects/{id}/events`, pages of 100).

Bounded: everything is on 127.0.0.1; at most 200 sockets and 100 writes.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from websockets.sync.client import ClientConnection, connect

from bench.firings import local_stack
from bench.report import Figure, SuiteResult, Target, main_for_suite

WRITES = 100
MEMBERS, SOCKETS_PER_MEMBER = 20, 10
DEADLINE_SECONDS = 10.0


def _register(stack: Any) -> tuple[str, str]:
    from local.testing import register_user

    body = register_user(stack.api_url)
    return body["user"]["id"], body["access_token"]


def _subscribe(ws: ClientConnection, project_id: str) -> None:
    ws.send(json.dumps({"action": "subscribe", "channel": f"project:{project_id}"}))
    answer = json.loads(ws.recv(timeout=DEADLINE_SECONDS))
    assert answer["type"] == "subscribed", answer


def _frame_for(ws: ClientConnection, version: int) -> float:
    """When the `task.updated` frame of the task's `version` arrived."""
    ends = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < ends:
        frame = json.loads(ws.recv(timeout=DEADLINE_SECONDS))
        if frame.get("type") == "task.updated" and frame["data"]["version"] == version:
            return time.monotonic()
    raise AssertionError(f"no frame for version {version}")


def measure() -> dict[str, Any]:
    import requests

    with local_stack() as stack:
        _, owner_token = _register(stack)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {owner_token}"

        def call(method: str, path: str, body: Any = None) -> Any:
            response = session.request(method, stack.api_url + path, json=body, timeout=30)
            assert response.status_code < 300, response.text
            return response.json()

        project = call("POST", "/projects", {"name": "Live"})
        task = call("POST", "/tasks", {"title": "Busy", "project_id": project["id"]})

        # Part 1: write to frame, one subscriber.
        latencies = []
        with connect(f"{stack.ws_url}/?token={owner_token}", open_timeout=10) as ws:
            _subscribe(ws, project["id"])
            for n in range(WRITES):
                sent = time.monotonic()
                task = call("PATCH", f"/tasks/{task['id']}", {"title": f"Busy {n}"})
                latencies.append((_frame_for(ws, task["version"]) - sent) * 1000)

        # Part 2: one change, 200 subscribers, held by a second process (as clients are on
        # AWS: their CPU is not the stack's).
        tokens = []
        for _ in range(MEMBERS):
            user_id, token = _register(stack)
            member = {"user_id": user_id, "role": "viewer"}
            call("POST", f"/projects/{project['id']}/members", member)
            tokens.append(token)
        expected = task["version"] + 1
        clients = subprocess.Popen(
            [sys.executable, "-m", "bench.realtime", "--clients"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert clients.stdin is not None
        assert clients.stdout is not None
        clients.stdin.write(
            json.dumps(
                {
                    "url": stack.ws_url,
                    "tokens": tokens,
                    "project_id": project["id"],
                    "version": expected,
                }
            )
            + "\n"
        )
        clients.stdin.flush()
        assert clients.stdout.readline().strip() == "ready"
        started = time.time()
        task = call("PATCH", f"/tasks/{task['id']}", {"title": "Everyone"})
        arrivals = json.loads(clients.stdout.readline())
        clients.wait(timeout=DEADLINE_SECONDS)

        # Part 3: catching up on part 1's updates (and the rest), from the project's first event.
        events_url = f"/projects/{project['id']}/events?limit=100"
        first = call("GET", events_url + "&limit=1")["items"][0]["id"]
        read_started = time.monotonic()
        over_http, cursor = [], first
        while cursor:
            page = call("GET", f"{events_url}&after={cursor}")
            over_http += page["items"]
            cursor = page["next_cursor"]
        read_ms = (time.monotonic() - read_started) * 1000
        with connect(f"{stack.ws_url}/?token={owner_token}", open_timeout=10) as ws:
            replay_started = time.monotonic()
            channel = f"project:{project['id']}"
            ws.send(json.dumps({"action": "subscribe", "channel": channel, "after": first}))
            replayed: list[str] = []
            while len(replayed) < len(over_http):
                frame = json.loads(ws.recv(timeout=DEADLINE_SECONDS))
                if "id" in frame:
                    replayed.append(frame["id"])
            replay_ms = (time.monotonic() - replay_started) * 1000
        assert replayed == [e["id"] for e in over_http], "the replay differs from the log"
    latencies.sort()
    return {
        "writes": WRITES,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
        "max_ms": latencies[-1],
        "subscribers": MEMBERS * SOCKETS_PER_MEMBER,
        "reached": len(arrivals),
        "fan_out_ms": (max(arrivals) - started) * 1000 if arrivals else float("nan"),
        "first_ms": (min(arrivals) - started) * 1000 if arrivals else float("nan"),
        "missed": len(over_http),
        "catch_up_ms": replay_ms,
        "read_missed_ms": read_ms,
    }


async def _hold(request: dict[str, Any]) -> list[float]:
    """The second process: open every socket, subscribe, say ready, and note (wall clock)
    when each receives the `task.updated` frame of the expected version."""
    from websockets.asyncio.client import connect as connect_async

    channel = f"project:{request['project_id']}"
    sockets = []
    for token in request["tokens"]:
        for _ in range(SOCKETS_PER_MEMBER):
            ws = await connect_async(f"{request['url']}/?token={token}", open_timeout=10)
            await ws.send(json.dumps({"action": "subscribe", "channel": channel}))
            answer = json.loads(await asyncio.wait_for(ws.recv(), DEADLINE_SECONDS))
            assert answer["type"] == "subscribed", answer
            sockets.append(ws)

    async def arrival(ws: Any) -> float:
        while True:
            frame = json.loads(await ws.recv())
            if (
                frame.get("type") == "task.updated"
                and frame["data"]["version"] == request["version"]
            ):
                return time.time()

    print("ready", flush=True)
    try:
        waits = [asyncio.wait_for(arrival(ws), DEADLINE_SECONDS) for ws in sockets]
        return [
            t for t in await asyncio.gather(*waits, return_exceptions=True) if isinstance(t, float)
        ]
    finally:
        for ws in sockets:
            await ws.close()


GROUP = "real time (local stack)"


def figures() -> SuiteResult:
    result = measure()

    def figure(
        key: str, label: str, value: float, unit: str, target: Target | None = None
    ) -> Figure:
        return Figure(f"realtime.{key}", label, value, unit, target, GROUP)

    return SuiteResult(
        [
            figure("write_to_frame_p50_ms", "write to frame p50", result["p50_ms"], "ms"),
            figure(
                "write_to_frame_p99_ms",
                f"write to frame p99 ({result['writes']} updates)",
                result["p99_ms"],
                "ms",
                Target("<=", 250),
            ),
            figure(
                "fan_out_reached",
                f"subscribers reached, of {result['subscribers']}",
                result["reached"],
                "sockets",
                Target(">=", result["subscribers"]),
            ),
            figure(
                "fan_out_last_ms",
                f"one change to {result['subscribers']} subscribers, last frame",
                result["fan_out_ms"],
                "ms",
                Target("<=", 1000),
            ),
            figure(
                "catch_up_ms",
                f"subscribe with after: {result['missed']} missed events replayed, last frame",
                result["catch_up_ms"],
                "ms",
                Target("<=", 2000),
            ),
            figure(
                "read_missed_ms",
                f"the same {result['missed']} events read over HTTP (pages of 100)",
                result["read_missed_ms"],
                "ms",
            ),
        ],
        dict(result),
    )


def main() -> None:
    if sys.argv[1:] == ["--clients"]:
        request = json.loads(sys.stdin.readline())
        print(json.dumps(asyncio.run(_hold(request))), flush=True)
        return
    main_for_suite(figures, sys.argv[1:])


if __name__ == "__main__":
    main()
