"""DynamoDB calls of the API token routes, and of routes called with an API token instead of a
session (see bench/__main__): a token's check shares the session check's one BatchGetItem, so
each route costs the same with either; the first request of a minute adds one conditional
UpdateItem (the token's `last_used_at`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def token_routes(call: Callable[..., Any], measure: Callable[..., Any], session: str) -> None:
    """`session` is a signed-in admin's access token."""

    def body(response: Any) -> Any:
        assert response.status_code < 300, response.body
        return json.loads(response.body) if response.body else None

    names = iter(f"bench {i}" for i in range(100))
    made = body(
        measure(
            "POST /users/profile/tokens",
            lambda: call(
                "POST",
                "/users/profile/tokens",
                {"name": next(names), "scopes": ["read", "write", "run"]},
                session,
            ),
        )
    )
    measure(
        "GET /users/profile/tokens", lambda: call("GET", "/users/profile/tokens", token=session)
    )
    doomed = iter(
        [
            body(call("POST", "/users/profile/tokens", {"name": "d", "scopes": ["read"]}, session))[
                "id"
            ]
            for _ in range(5)
        ]
    )
    measure(
        "DELETE /users/profile/tokens/{id}",
        lambda: call("DELETE", f"/users/profile/tokens/{next(doomed)}", token=session),
    )
    token = made["token"]
    project = body(call("POST", "/projects", {"name": "Bench tokens"}, session))["id"]
    task = body(call("POST", "/tasks", {"title": "t", "project_id": project}, session))["id"]
    call("GET", "/users/profile", token=token)  # this minute's use is written: steady state
    measure("GET /users/profile (API token)", lambda: call("GET", "/users/profile", token=token))
    measure(
        "GET /projects/{id} (API token)", lambda: call("GET", f"/projects/{project}", token=token)
    )
    measure("GET /tasks/{id} (API token)", lambda: call("GET", f"/tasks/{task}", token=token))
    priorities = iter(["high", "low"] * 5)
    measure(
        "PATCH /tasks/{id} (API token)",
        lambda: call("PATCH", f"/tasks/{task}", {"priority": next(priorities)}, token),
    )
    measure(
        "POST /tasks/{id}/run (API token)",
        lambda: call("POST", f"/tasks/{task}/run", token=token),
    )
    fresh = iter(
        [
            body(call("POST", "/users/profile/tokens", {"name": "f", "scopes": ["read"]}, session))[
                "token"
            ]
            for _ in range(5)
        ]
    )
    # Each repetition a token never used: its first request of a minute (read + last use).
    measure(
        "API token's first use in a minute: GET /users/profile",
        lambda: call("GET", "/users/profile", token=next(fresh)),
    )
