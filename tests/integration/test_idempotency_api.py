"""`Idempotency-Key` on POSTs over HTTP (Chalice's test client on moto; the same tests run on
the in-memory adapters from tests/http_on_fakes): replay, reuse, in flight, per user, headers."""

from __future__ import annotations

import json
from typing import Any

from chalicelib import bootstrap
from chalicelib.domain.idempotency import fingerprint
from chalicelib.services.idempotency import Claimed
from tests.integration.conftest import Http


def error_code(response: Any) -> str:
    return str(response.json["error"]["code"])


def task_titles(http: Http, token: str, project_id: str) -> list[str]:
    listed = http("GET", f"/tasks?project_id={project_id}&limit=100", token=token)
    assert listed.status_code == 200, listed.body
    return sorted(task["title"] for task in listed.json["items"])


def test_the_same_post_twice_answers_the_first_answer_again_and_does_nothing_else(
    http: Http,
) -> None:
    me = http.register("ada@example.com")
    token, project = me["access_token"], me["user"]["id"]
    body = {"title": "Pay rent", "tags": ["home"]}
    first = http("POST", "/tasks", body, token, Idempotency_Key="rent-2026-12")
    assert first.status_code == 201, first.body
    assert "Idempotent-Replayed" not in first.headers
    # The same body with other key order and white space is the same request.
    again = http.client.http.post(
        "/v1/tasks",
        body=b'{ "tags": ["home"],  "title": "Pay rent" }',
        headers={
            "content-type": "application/json",
            "authorization": f"Bearer {token}",
            "idempotency-key": "rent-2026-12",
        },
    )
    assert again.status_code == 201
    assert json.loads(again.body) == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["ETag"] == first.headers["ETag"] == '"1"'
    assert again.headers["Content-Type"] == "application/json"
    personal = http("GET", "/projects", token=token).json["items"][0]["id"]
    assert task_titles(http, token, personal) == ["Pay rent"]
    assert project  # the user's id, not a project: keys are per user


def test_a_post_without_the_key_is_not_replayed(http: Http) -> None:
    token = http.register("ada@example.com")["access_token"]
    first = http("POST", "/tasks", {"title": "Twice"}, token)
    second = http("POST", "/tasks", {"title": "Twice"}, token)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json["id"] != second.json["id"]
    assert "Idempotent-Replayed" not in second.headers


def test_the_same_key_with_another_body_or_route_is_422(http: Http) -> None:
    token = http.register("ada@example.com")["access_token"]
    assert http("POST", "/tasks", {"title": "A"}, token, Idempotency_Key="k1").status_code == 201
    other_body = http("POST", "/tasks", {"title": "B"}, token, Idempotency_Key="k1")
    assert (other_body.status_code, error_code(other_body)) == (422, "idempotency_key_reused")
    assert other_body.json["error"]["details"][0]["loc"] == ["header", "Idempotency-Key"]
    other_route = http("POST", "/projects", {"name": "A"}, token, Idempotency_Key="k1")
    assert (other_route.status_code, error_code(other_route)) == (422, "idempotency_key_reused")
    assert "POST /tasks" in other_route.json["error"]["message"]
    # Nothing was done by either.
    assert [p["name"] for p in http("GET", "/projects", token=token).json["items"]] == ["Personal"]


def test_keys_are_per_user(http: Http) -> None:
    ada = http.register("ada@example.com")["access_token"]
    bob = http.register("bob@example.com")["access_token"]
    mine = http("POST", "/tasks", {"title": "Same"}, ada, Idempotency_Key="shared")
    theirs = http("POST", "/tasks", {"title": "Same"}, bob, Idempotency_Key="shared")
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json["id"] != theirs.json["id"]
    assert "Idempotent-Replayed" not in theirs.headers


def test_a_malformed_key_is_422_and_keeps_nothing(http: Http) -> None:
    token = http.register("ada@example.com")["access_token"]
    for bad in ("x" * 256, "   ", "caf\u00e9", "tab\there"):
        refused = http("POST", "/tasks", {"title": "A"}, token, Idempotency_Key=bad)
        assert (refused.status_code, error_code(refused)) == (422, "validation_error"), bad
        assert refused.json["error"]["details"][0]["loc"] == ["header", "Idempotency-Key"]
    longest = http("POST", "/tasks", {"title": "A"}, token, Idempotency_Key="y" * 255)
    assert longest.status_code == 201


def test_an_invalid_request_is_not_kept(http: Http) -> None:
    """401, 400 and 422 of the request itself come before the key: a fixed retry runs."""
    token = http.register("ada@example.com")["access_token"]
    unauthenticated = http("POST", "/tasks", {"title": "A"}, Idempotency_Key="k")
    assert unauthenticated.status_code == 401
    invalid = http("POST", "/tasks", {"title": ""}, token, Idempotency_Key="k")
    assert invalid.status_code == 422
    fixed = http("POST", "/tasks", {"title": "A"}, token, Idempotency_Key="k")
    assert fixed.status_code == 201
    assert "Idempotent-Replayed" not in fixed.headers


def test_an_error_answer_of_the_route_is_kept_and_replayed(http: Http) -> None:
    """Like Stripe: a 4xx the route itself gave is the answer to that key."""
    token = http.register("ada@example.com")["access_token"]
    bob = http.register("bob@example.com")["access_token"]
    theirs = http("GET", "/projects", token=bob).json["items"][0]["id"]
    body = {"title": "Not mine", "project_id": theirs}
    first = http("POST", "/tasks", body, token, Idempotency_Key="c1")
    assert first.status_code == 404, first.body
    again = http("POST", "/tasks", body, token, Idempotency_Key="c1")
    assert again.status_code == 404
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"


def test_while_the_first_request_runs_the_same_key_is_409(
    http: Http, container: bootstrap.Container
) -> None:
    me = http.register("ada@example.com")
    body = {"title": "Slow"}
    user_id = me["user"]["id"]
    held = container.idempotency.begin(
        user_id, "busy", fingerprint("POST", "/tasks", {}, json.dumps(body).encode()), "POST /tasks"
    )
    assert isinstance(held, Claimed)
    busy = http("POST", "/tasks", body, me["access_token"], Idempotency_Key="busy")
    assert (busy.status_code, error_code(busy)) == (409, "conflict")
    assert 1 <= int(busy.headers["Retry-After"]) <= 30
    # The other body is still a reuse, in flight or not.
    other = http("POST", "/tasks", {"title": "B"}, me["access_token"], Idempotency_Key="busy")
    assert other.status_code == 422


def test_the_calendar_token_is_replayed_but_not_kept_in_clear(
    http: Http, container: bootstrap.Container
) -> None:
    token = http.register("ada@example.com")["access_token"]
    first = http("POST", "/users/profile/calendar-token", token=token, Idempotency_Key="cal")
    assert first.status_code == 200, first.body
    again = http("POST", "/users/profile/calendar-token", token=token, Idempotency_Key="cal")
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    # The feed works with the replayed token: the rotation happened once.
    calendar = first.json["calendar_token"]
    assert http("GET", "/users/profile", token=token).json["calendar_token"] == calendar
    assert calendar.encode() not in stored_answers(container)


def stored_answers(container: bootstrap.Container) -> bytes:
    """Every kept answer's bytes, from whichever store the container has."""
    store = container.idempotency._store
    records = getattr(store, "records", None)
    if records is not None:  # the in-memory fake
        return b"".join(r.answer or b"" for r in records.values())
    from chalicelib.adapters.dynamodb.models import IdempotencyModel

    return b"".join(row.answer or b"" for row in IdempotencyModel.scan())


def test_sign_in_routes_ignore_the_key(http: Http, container: bootstrap.Container) -> None:
    http.register("ada@example.com")
    body = {"email": "ada@example.com", "password": "correct horse battery"}
    first = http("POST", "/auth/login", body, Idempotency_Key="login")
    second = http("POST", "/auth/login", body, Idempotency_Key="login")
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json["refresh_token"] != second.json["refresh_token"]
    assert "Idempotent-Replayed" not in second.headers
    assert stored_answers(container) == b""


def test_a_get_ignores_the_key(http: Http) -> None:
    token = http.register("ada@example.com")["access_token"]
    read = http("GET", "/users/profile", token=token, Idempotency_Key="x" * 300)
    assert read.status_code == 200
