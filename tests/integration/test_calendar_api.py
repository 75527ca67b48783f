"""Calendar feeds over the HTTP routes, through Chalice's test client on moto: the token on the
profile, the feeds it opens (parsed back with `icalendar`), rotation, membership, what each
feed costs in DynamoDB calls, and that no log line carries a token."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
import icalendar
import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.adapters.dynamodb import connection
from chalicelib.api import ical
from chalicelib.domain.calendars import lookup_of
from chalicelib.observability import logger
from tests.integration.conftest import REGION
from tests.integration.helpers import PASSWORD, assert_error

NOT_FOUND = "calendar not found"


@dataclass
class Answer:
    status_code: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


class Http:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.calls: list[str] = []

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        all_headers = {"content-type": "application/json", **(headers or {})}
        if token:
            all_headers["authorization"] = f"Bearer {token}"
        payload = json.dumps(body).encode() if body is not None else b""
        self.calls.clear()
        response = getattr(self.client.http, method.lower())(
            f"/v1{path}", body=payload, headers=all_headers
        )
        return Answer(response.status_code, dict(response.headers), response.body)

    def ok(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        answer = self(method, path, body, token)
        assert answer.status_code in (200, 201), answer
        return answer.json

    def register(self, email: str) -> dict[str, Any]:
        answer = self(
            "POST", "/auth/register", {"email": email, "password": PASSWORD, "name": email[:3]}
        )
        assert answer.status_code == 201, answer
        return answer.json  # type: ignore[no-any-return]


@pytest.fixture
def http(container: bootstrap.Container) -> Iterator[Http]:
    with Client(app) as client:
        http = Http(client)
        http.register("first@example.com")  # warms the container and the shared client
        connection.root().client.meta.events.register(
            "before-call.dynamodb",
            lambda event_name, **_: http.calls.append(event_name.rsplit(".", 1)[-1]),
        )
        yield http


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def events_of(answer: Answer) -> dict[str, icalendar.Event]:
    assert answer.status_code == 200, answer
    assert answer.headers["Content-Type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(answer.body)
    assert str(calendar["VERSION"]) == "2.0"
    return {str(event["UID"]).removesuffix("@taskbeat"): event for event in calendar.events}


def token_of(http: Http, access: str) -> str:
    return str(http.ok("GET", "/users/profile", token=access)["calendar_token"])


class TestTheUsersFeed:
    def test_lists_the_dated_tasks_assigned_to_the_user_and_nothing_else(self, http: Http) -> None:
        ada = http.register("ada@example.com")
        access, ada_id = ada["access_token"], ada["user"]["id"]
        now = datetime.now(UTC).replace(microsecond=0)

        def task(title: str, **fields: Any) -> str:
            return str(http.ok("POST", "/tasks", {"title": title, **fields}, access)["id"])

        timed = task("Ship it", due_date=iso(now + timedelta(days=2)), assignee_id=ada_id)
        day = (now + timedelta(days=3)).date()
        all_day = task("Plan", due_date=day.isoformat(), assignee_id=ada_id, tags=["q3"])
        recent = task("Missed", due_date=iso(now - timedelta(days=10)), assignee_id=ada_id)
        task("Undated", assignee_id=ada_id)
        task("Nobody's", due_date=iso(now + timedelta(days=1)))
        task("Long ago", due_date=iso(now - timedelta(days=100)), assignee_id=ada_id)

        answer = http("GET", f"/calendar/{token_of(http, access)}.ics")
        events = events_of(answer)
        assert set(events) == {timed, all_day, recent}
        assert answer.body.startswith(b"BEGIN:VCALENDAR\r\n")
        assert b"\n" not in answer.body.replace(b"\r\n", b"")  # CRLF line endings only
        assert answer.headers["Cache-Control"] == "private, max-age=300"

        ship = events[timed]
        assert str(ship["SUMMARY"]) == "Ship it"
        assert ship.decoded("DTSTART") == now + timedelta(days=2)
        assert ship.decoded("DTEND") == now + timedelta(days=2, minutes=30)
        assert str(ship["TRANSP"]) == "TRANSPARENT"
        plan = events[all_day]  # a plain date: all day, in the owner's zone (UTC here)
        assert plan.decoded("DTSTART") == day
        assert plan.decoded("DTEND") == day + timedelta(days=1)
        assert "Tags: q3" in str(plan["DESCRIPTION"])

    def test_needs_no_bearer_token_and_ignores_a_wrong_one(self, http: Http) -> None:
        access = http.register("ada@example.com")["access_token"]
        token = token_of(http, access)
        assert http("GET", f"/calendar/{token}.ics").status_code == 200
        assert http("GET", f"/calendar/{token}.ics", token="not-a-jwt").status_code == 200

    def test_if_none_match_with_the_etag_answers_304(
        self, http: Http, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        access = http.register("ada@example.com")["access_token"]
        path = f"/calendar/{token_of(http, access)}.ics"
        first = http("GET", path)
        etag = first.headers["ETag"]
        assert etag == http("GET", path).headers["ETag"], "an unchanged feed keeps its ETag"

        def render(feed: object) -> str:
            raise AssertionError("a 304 renders nothing")

        with monkeypatch.context() as patched:
            patched.setattr(ical, "render", render)
            unchanged = http("GET", path, headers={"If-None-Match": etag})
        assert (unchanged.status_code, unchanged.body) == (304, b"")
        assert unchanged.headers["ETag"] == etag
        me = http.ok("GET", "/users/profile", token=access)["id"]
        body = {"title": "New", "due_date": "2099-01-01T00:00:00Z", "assignee_id": me}
        http.ok("POST", "/tasks", body, access)
        changed = http("GET", path, headers={"If-None-Match": etag})
        assert changed.status_code == 200
        assert changed.headers["ETag"] != etag

    def test_drops_the_tasks_of_projects_the_user_left(self, http: Http) -> None:
        owner = http.register("owner@example.com")["access_token"]
        bob = http.register("bob@example.com")
        project = http.ok("POST", "/projects", {"name": "Team"}, owner)["id"]
        member = {"user_id": bob["user"]["id"], "role": "member"}
        http.ok("POST", f"/projects/{project}/members", member, owner)
        body = {
            "title": "Team task",
            "project_id": project,
            "due_date": "2099-01-01T09:00:00Z",
            "assignee_id": bob["user"]["id"],
        }
        team_task = http.ok("POST", "/tasks", body, owner)["id"]
        path = f"/calendar/{token_of(http, bob['access_token'])}.ics"
        assert set(events_of(http("GET", path))) == {team_task}
        left = http("DELETE", f"/projects/{project}/members/{bob['user']['id']}", token=owner)
        assert left.status_code == 204
        assert events_of(http("GET", path)) == {}

    def test_costs_three_dynamodb_calls_and_never_a_scan(self, http: Http) -> None:
        access = http.register("ada@example.com")["access_token"]
        path = f"/calendar/{token_of(http, access)}.ics"
        assert http("GET", path).status_code == 200
        # The token's lookup item; the user and its projects; the assignee index.
        assert http.calls == ["GetItem", "BatchGetItem", "Query"]


class TestTokens:
    def test_the_profile_shows_the_token_and_only_the_profile_does(self, http: Http) -> None:
        registered = http.register("ada@example.com")
        assert "calendar_token" not in registered["user"]
        access = registered["access_token"]
        profile = http("GET", "/users/profile", token=access)
        token = profile.json["calendar_token"]
        assert len(token) == 43
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert profile.headers["ETag"] == '"1"', "made at registration: reading writes nothing"
        assert http.calls == ["BatchGetItem"]
        patched = http.ok("PATCH", "/users/profile", {"name": "Ada L"}, access)
        assert patched["calendar_token"] == token
        assert token_of(http, access) == token

    def test_only_a_hash_of_the_token_is_stored(self, http: Http) -> None:
        registered = http.register("ada@example.com")
        token = token_of(http, registered["access_token"])
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        stored = json.dumps(
            [
                dynamodb.scan(TableName=f"test-{table}")["Items"]  # the test looks, the app never
                for table in ("users", "claims")
            ]
        )
        assert token not in stored
        assert f"calendar#{lookup_of(token)}" in stored

    def test_rotation_ends_the_old_token_at_once(self, http: Http) -> None:
        access = http.register("ada@example.com")["access_token"]
        old = token_of(http, access)
        version = http.ok("GET", "/users/profile", token=access)["version"]
        rotated = http("POST", "/users/profile/calendar-token", token=access)
        assert rotated.status_code == 200
        assert set(rotated.json) == {"calendar_token"}
        new = rotated.json["calendar_token"]
        assert new != old
        assert http.calls == ["BatchGetItem", "TransactWriteItems"]
        assert_error(http("GET", f"/calendar/{old}.ics"), 404, "not_found")
        assert http("GET", f"/calendar/{new}.ics").status_code == 200
        profile = http.ok("GET", "/users/profile", token=access)
        assert (profile["calendar_token"], profile["version"]) == (new, version + 1)

    def test_rotation_needs_a_bearer_token(self, http: Http) -> None:
        assert_error(http("POST", "/users/profile/calendar-token"), 401, "unauthorized")

    def test_unknown_malformed_and_suffixless_tokens_are_the_same_404(self, http: Http) -> None:
        access = http.register("ada@example.com")["access_token"]
        token = token_of(http, access)
        for path in (
            f"/calendar/{'A' * 43}.ics",  # the shape of a token: one read, nothing found
            "/calendar/not-a-token.ics",  # not even the shape: no read at all
            f"/calendar/{token}",  # the real token without `.ics`
            f"/calendar/{token}.json",
        ):
            answer = http("GET", path)
            assert_error(answer, 404, "not_found")
            assert answer.json["error"]["message"] == NOT_FOUND
            assert token not in answer.text
        http("GET", "/calendar/not-a-token.ics")
        assert http.calls == []

    def test_an_account_from_before_calendar_feeds_gets_its_token_on_first_read(
        self, http: Http
    ) -> None:
        registered = http.register("ada@example.com")
        user_id, access = registered["user"]["id"], registered["access_token"]
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.update_item(
            TableName="test-users",
            Key={"id": {"S": user_id}},
            UpdateExpression="REMOVE calendar_nonce",
        )
        first = http("GET", "/users/profile", token=access)
        token = first.json["calendar_token"]
        assert first.headers["ETag"] == '"2"', "the key is a change of the user: a new version"
        assert http.calls == ["BatchGetItem", "TransactWriteItems"]
        again = http("GET", "/users/profile", token=access)
        assert again.json["calendar_token"] == token
        assert http.calls == ["BatchGetItem"]
        assert http("GET", f"/calendar/{token}.ics").status_code == 200


class TestProjectFeeds:
    @pytest.fixture
    def team(self, http: Http) -> dict[str, Any]:
        owner = http.register("owner@example.com")
        viewer = http.register("viewer@example.com")
        stranger = http.register("stranger@example.com")
        project = http.ok("POST", "/projects", {"name": "Launch"}, owner["access_token"])["id"]
        http.ok(
            "POST",
            f"/projects/{project}/members",
            {"user_id": viewer["user"]["id"], "role": "viewer"},
            owner["access_token"],
        )
        tasks = [
            http.ok(
                "POST",
                "/tasks",
                {"title": title, "project_id": project, **fields},
                owner["access_token"],
            )["id"]
            for title, fields in (
                ("Dated", {"due_date": "2099-03-01T10:00:00Z"}),
                ("Assigned", {"due_date": "2099-03-02", "assignee_id": owner["user"]["id"]}),
            )
        ]
        http.ok(
            "POST", "/tasks", {"title": "Undated", "project_id": project}, owner["access_token"]
        )
        return {
            "owner": owner,
            "viewer": viewer,
            "stranger": stranger,
            "project": project,
            "tasks": set(tasks),
        }

    def test_a_member_sees_every_dated_task_of_the_project(
        self, http: Http, team: dict[str, Any]
    ) -> None:
        token = token_of(http, team["viewer"]["access_token"])
        answer = http("GET", f"/calendar/{token}/projects/{team['project']}.ics")
        assert set(events_of(answer)) == team["tasks"]
        calendar = icalendar.Calendar.from_ical(answer.body)
        assert str(calendar["X-WR-CALNAME"]) == "Taskbeat: Launch"
        # The token's lookup item; the user, project and membership; the project's due index.
        assert http.calls == ["GetItem", "BatchGetItem", "Query"]

    def test_a_non_member_an_unknown_project_and_an_unknown_token_get_the_same_404(
        self, http: Http, team: dict[str, Any]
    ) -> None:
        stranger = token_of(http, team["stranger"]["access_token"])
        viewer = token_of(http, team["viewer"]["access_token"])
        answers = [
            http("GET", f"/calendar/{stranger}/projects/{team['project']}.ics"),
            http("GET", f"/calendar/{viewer}/projects/01HZZZZZZZZZZZZZZZZZZZZZZZ.ics"),
            http("GET", f"/calendar/{'B' * 43}/projects/{team['project']}.ics"),
            http("GET", f"/calendar/{viewer}/projects/{team['project']}"),
            http("GET", f"/calendar/{viewer}.ics/projects/{team['project']}.ics"),
        ]
        for answer in answers:
            assert_error(answer, 404, "not_found")
            assert answer.json["error"]["message"] == NOT_FOUND

    def test_a_removed_member_loses_the_feed_at_once(
        self, http: Http, team: dict[str, Any]
    ) -> None:
        token = token_of(http, team["viewer"]["access_token"])
        path = f"/calendar/{token}/projects/{team['project']}.ics"
        assert http("GET", path).status_code == 200
        viewer_id = team["viewer"]["user"]["id"]
        removed = http(
            "DELETE",
            f"/projects/{team['project']}/members/{viewer_id}",
            token=team["owner"]["access_token"],
        )
        assert removed.status_code == 204
        assert_error(http("GET", path), 404, "not_found")

    def test_a_deleted_project_has_no_feed(self, http: Http, team: dict[str, Any]) -> None:
        token = token_of(http, team["owner"]["access_token"])
        path = f"/calendar/{token}/projects/{team['project']}.ics"
        assert http("GET", path).status_code == 200
        deleted = http(
            "DELETE", f"/projects/{team['project']}", token=team["owner"]["access_token"]
        )
        assert deleted.status_code == 204
        assert_error(http("GET", path), 404, "not_found")


def test_no_log_line_carries_a_token(http: Http) -> None:
    access = http.register("ada@example.com")["access_token"]
    token = token_of(http, access)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    level = logger().log_level  # the tests' WARNING would hide the access log
    logger().setLevel(logging.INFO)
    logger().addHandler(keep)  # the same records Powertools writes out as JSON
    try:
        http("GET", f"/calendar/{token}.ics")
        http("GET", f"/calendar/{token}/projects/01HZZZZZZZZZZZZZZZZZZZZZZZ.ics")
        http("GET", f"/calendar/{token}.ics", headers={"If-None-Match": "*"})
    finally:
        logger().removeHandler(keep)
        logger().setLevel(level)
    routes = [record.__dict__.get("route") for record in records]
    assert "/v1/calendar/{calendar}" in routes  # the access log names the route's template
    assert "/v1/calendar/{calendar}/projects/{project}" in routes
    for record in records:
        assert token not in json.dumps(record.__dict__, default=str)


def test_the_feed_window_starts_90_days_back(http: Http) -> None:
    ada = http.register("ada@example.com")
    access, me = ada["access_token"], ada["user"]["id"]
    today = datetime.now(UTC).date()
    inside = http.ok(
        "POST",
        "/tasks",
        {"title": "In", "due_date": (today - timedelta(days=89)).isoformat(), "assignee_id": me},
        access,
    )["id"]
    http.ok(
        "POST",
        "/tasks",
        {"title": "Out", "due_date": (today - timedelta(days=91)).isoformat(), "assignee_id": me},
        access,
    )
    events = events_of(http("GET", f"/calendar/{token_of(http, access)}.ics"))
    assert set(events) == {inside}
    assert isinstance(events[inside].decoded("DTSTART"), date)
