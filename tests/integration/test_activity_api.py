"""Comments, history and notifications over HTTP (Chalice's test client on moto): the contract's
bodies and status codes, who may do what, and the DynamoDB calls each route makes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.adapters.dynamodb import connection

PASSWORD = "correct horse battery"
COMMENT_FIELDS = {"id", "task_id", "author_id", "body", "created_at"}
EVENT_FIELDS = {"id", "type", "actor_id", "at", "changes"}
NOTIFICATION_FIELDS = {"id", "type", "task_id", "project_id", "message", "read", "created_at"}
READ_BUDGET, WRITE_BUDGET = 2, 3


class Http:
    """The test client speaking JSON; `calls` lists the DynamoDB operations of the last request."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.calls: list[str] = []

    def __call__(
        self, method: str, path: str, body: Any = None, token: str | None = None, raw: bytes = b""
    ) -> Any:
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        payload = json.dumps(body).encode() if body is not None else raw
        self.calls.clear()
        response = getattr(self.client.http, method.lower())(
            f"/v1{path}", body=payload, headers=headers
        )
        response.json = json.loads(response.body) if response.body else None
        return response

    def ok(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        response = self(method, path, body, token)
        assert response.status_code in (200, 201, 204), (method, path, response.body)
        return response.json


@dataclass
class Team:
    """A project owned by `owner` with an admin, two members and a viewer; a stranger outside."""

    http: Http
    project_id: str
    tokens: dict[str, str]
    ids: dict[str, str]

    def __call__(self, who: str | None, method: str, path: str, body: Any = None) -> Any:
        return self.http(method, path, body, self.tokens[who] if who else None)

    def task(self, who: str = "member", **fields: Any) -> dict[str, Any]:
        body = {"title": "Ship it", "project_id": self.project_id, **fields}
        return self.http.ok("POST", "/tasks", body, self.tokens[who])  # type: ignore[no-any-return]


@pytest.fixture
def http(container: bootstrap.Container) -> Iterator[Http]:
    with Client(app) as client:
        http = Http(client)
        http.ok(  # warms the container and the shared client
            "POST",
            "/auth/register",
            {"email": "first@example.com", "password": PASSWORD, "name": "First"},
        )
        connection.root().client.meta.events.register(
            "before-call.dynamodb",
            lambda event_name, **_: http.calls.append(event_name.rsplit(".", 1)[-1]),
        )
        yield http


@pytest.fixture
def team(http: Http) -> Team:
    tokens, ids = {}, {}
    for name in ("owner", "admin", "member", "other", "viewer", "stranger"):
        registered = http.ok(
            "POST",
            "/auth/register",
            {"email": f"{name}@example.com", "password": PASSWORD, "name": name.title()},
        )
        tokens[name], ids[name] = registered["access_token"], registered["user"]["id"]
    project = http.ok("POST", "/projects", {"name": "Team"}, tokens["owner"])
    for name, role in (("admin", "admin"), ("member", "member"), ("other", "member")):
        http.ok(
            "POST",
            f"/projects/{project['id']}/members",
            {"email": f"{name}@example.com", "role": role},
            tokens["owner"],
        )
    http.ok(
        "POST",
        f"/projects/{project['id']}/members",
        {"email": "viewer@example.com", "role": "viewer"},
        tokens["owner"],
    )
    return Team(http, project["id"], tokens, ids)


def error_of(response: Any) -> tuple[int, str]:
    assert set(response.json) == {"error", "request_id"}, response.json
    return response.status_code, response.json["error"]["code"]


class TestComments:
    def test_post_then_list_within_the_budget(self, team: Team) -> None:
        task = team.task()
        posted = team("member", "POST", f"/tasks/{task['id']}/comments", {"body": "Looks good"})
        assert posted.status_code == 201, posted.body
        assert set(posted.json) == COMMENT_FIELDS
        assert (posted.json["task_id"], posted.json["author_id"], posted.json["body"]) == (
            task["id"],
            team.ids["member"],
            "Looks good",
        )
        assert posted.json["created_at"].endswith("Z")
        # Batch get (session, task, project, membership, author), then one transaction.
        assert team.http.calls == ["BatchGetItem", "TransactWriteItems"]
        second = team("admin", "POST", f"/tasks/{task['id']}/comments", {"body": "Agreed"}).json

        listed = team("viewer", "GET", f"/tasks/{task['id']}/comments")
        assert listed.status_code == 200
        assert [c["id"] for c in listed.json["items"]] == [posted.json["id"], second["id"]]
        assert listed.json["items"][0] == posted.json
        assert listed.json["next_cursor"] is None
        assert team.http.calls == ["BatchGetItem", "Query"]

        first_page = team("member", "GET", f"/tasks/{task['id']}/comments?limit=1").json
        assert [c["body"] for c in first_page["items"]] == ["Looks good"]
        rest = team(
            "member", "GET", f"/tasks/{task['id']}/comments?cursor={first_page['next_cursor']}"
        ).json
        assert [c["body"] for c in rest["items"]] == ["Agreed"]
        assert len(team.http.calls) <= READ_BUDGET

    def test_mentions_cost_one_more_call_and_notify_members_only(self, team: Team) -> None:
        task = team.task(title="Release")
        body = (
            "@viewer@example.com and @ADMIN@example.com, please check; "
            "cc @stranger@example.com @nobody@example.com @member@example.com @viewer@example.com"
        )
        posted = team("member", "POST", f"/tasks/{task['id']}/comments", {"body": body})
        assert posted.status_code == 201, posted.body
        # Claims come with the session; the mentioned users' memberships in one more batch.
        assert team.http.calls == ["BatchGetItem", "BatchGetItem", "TransactWriteItems"]
        for name in ("viewer", "admin"):
            (mention,) = team(name, "GET", "/notifications").json["items"]
            assert set(mention) == NOTIFICATION_FIELDS
            assert mention["type"] == "comment.mention"
            assert (mention["task_id"], mention["project_id"], mention["read"]) == (
                task["id"],
                team.project_id,
                False,
            )
            assert mention["message"] == 'Member mentioned you on "Release"'
        for name in ("member", "stranger", "other", "owner"):
            assert team(name, "GET", "/notifications").json["items"] == [], name

    def test_invalid_bodies_are_422_and_bad_json_400(self, team: Team) -> None:
        path = f"/tasks/{team.task()['id']}/comments"
        for body in (
            {},
            {"body": ""},
            {"body": "   "},
            {"body": "x" * 10_001},
            {"body": 3},
            {"body": "hi", "author_id": "me"},
        ):
            response = team("member", "POST", path, body)
            assert error_of(response) == (422, "validation_error"), body
            assert response.json["error"]["details"], body
        assert team("member", "POST", path, {"body": "x" * 10_000}).status_code == 201
        bad_json = team.http("POST", path, token=team.tokens["member"], raw=b"{nope")
        assert error_of(bad_json) == (400, "bad_request")

    def test_delete_by_author_or_admin_within_the_budget(self, team: Team) -> None:
        task = team.task()
        path = f"/tasks/{task['id']}/comments"
        mine = team("member", "POST", path, {"body": "mine"}).json
        theirs = team("other", "POST", path, {"body": "theirs"}).json
        for who in ("other", "viewer"):
            refused = team(who, "DELETE", f"{path}/{mine['id']}")
            assert error_of(refused) == (403, "forbidden"), who
        deleted = team("member", "DELETE", f"{path}/{mine['id']}")
        assert (deleted.status_code, deleted.body) == (204, b"")
        # Batch get (session, task, project, membership, comment), then a conditional delete.
        assert team.http.calls == ["BatchGetItem", "DeleteItem"]
        assert team("admin", "DELETE", f"{path}/{theirs['id']}").status_code == 204
        assert team("member", "GET", path).json["items"] == []
        for missing in (mine["id"], "01NOSUCHCOMMENT", "x" * 500):
            assert error_of(team("admin", "DELETE", f"{path}/{missing}")) == (404, "not_found")

    def test_viewers_read_strangers_get_404_anonymous_401(self, team: Team) -> None:
        task = team.task()
        path = f"/tasks/{task['id']}/comments"
        comment = team("member", "POST", path, {"body": "hi"}).json
        assert team("viewer", "GET", path).status_code == 200
        assert team("viewer", "GET", f"/tasks/{task['id']}/history").status_code == 200
        assert error_of(team("viewer", "POST", path, {"body": "me too"})) == (403, "forbidden")
        requests = [
            ("GET", path, None),
            ("POST", path, {"body": "hi"}),
            ("DELETE", f"{path}/{comment['id']}", None),
            ("GET", f"/tasks/{task['id']}/history", None),
        ]
        for method, route, body in requests:
            assert error_of(team("stranger", method, route, body)) == (404, "not_found"), route
            anonymous = team(None, method, route, body)
            assert error_of(anonymous) == (401, "unauthorized"), route
            assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        for route in ("/tasks/not-a-task/comments", "/tasks/not-a-task/history"):
            assert error_of(team("member", "GET", route)) == (404, "not_found")
        unknown = f"/tasks/01ARZ3NDEKTSV4RRFFQ69G5FAV{team.project_id}/comments"
        assert error_of(team("member", "POST", unknown, {"body": "hi"})) == (404, "not_found")

    def test_bad_page_parameters(self, team: Team) -> None:
        task = team.task()
        for query, status in (("limit=0", 422), ("limit=abc", 400), ("cursor=garbage", 400)):
            for route in ("comments", "history"):
                response = team("member", "GET", f"/tasks/{task['id']}/{route}?{query}")
                assert response.status_code == status, (route, query)


class TestHistory:
    def test_every_change_oldest_first_with_old_and_new_values(self, team: Team) -> None:
        task = team.task(title="Draft", tags=["docs"])
        team.http.ok("PATCH", f"/tasks/{task['id']}", {"title": "Final"}, team.tokens["member"])
        team.http.ok(
            "POST",
            f"/tasks/{task['id']}/assign",
            {"assignee_id": team.ids["other"]},
            team.tokens["member"],
        )
        team.http.ok("POST", f"/tasks/{task['id']}/complete", token=team.tokens["other"])
        comment = team("admin", "POST", f"/tasks/{task['id']}/comments", {"body": "Done"}).json

        history = team("viewer", "GET", f"/tasks/{task['id']}/history")
        assert history.status_code == 200
        assert team.http.calls == ["BatchGetItem", "Query"]
        events = history.json["items"]
        assert all(set(event) == EVENT_FIELDS for event in events)
        assert [e["type"] for e in events] == [
            "task.created",
            "task.updated",
            "task.assigned",
            "task.completed",
            "comment.created",
        ]
        assert [e["actor_id"] for e in events] == [
            team.ids[n] for n in ("member", "member", "member", "other", "admin")
        ]
        assert events[0]["changes"]["title"] == [None, "Draft"]
        assert events[0]["changes"]["tags"] == [None, ["docs"]]
        assert events[1]["changes"] == {"title": ["Draft", "Final"]}
        assert events[2]["changes"] == {"assignee_id": [None, team.ids["other"]]}
        assert events[3]["changes"]["status"] == ["pending", "completed"]
        assert events[4]["changes"] == {"comment_id": [None, comment["id"]]}
        assert all(e["at"].endswith("Z") for e in events)
        page = team("viewer", "GET", f"/tasks/{task['id']}/history?limit=2").json
        rest = team("viewer", "GET", f"/tasks/{task['id']}/history?cursor={page['next_cursor']}")
        assert [e["id"] for e in page["items"] + rest.json["items"]] == [e["id"] for e in events]


class TestNotifications:
    def test_assignment_and_status_changes_notify(self, team: Team) -> None:
        task = team.task(title="Report")
        team.http.ok(
            "POST",
            f"/tasks/{task['id']}/assign",
            {"assignee_id": team.ids["other"]},
            team.tokens["admin"],
        )
        team.http.ok(
            "PATCH", f"/tasks/{task['id']}", {"status": "in_progress"}, team.tokens["admin"]
        )
        inbox = team("other", "GET", "/notifications")
        assert inbox.status_code == 200
        assert team.http.calls == ["BatchGetItem", "Query"]
        assert [n["type"] for n in inbox.json["items"]] == ["task.status_changed", "task.assigned"]
        assert inbox.json["items"][1]["message"] == 'Admin assigned you "Report"'
        creator = team("member", "GET", "/notifications").json["items"]
        assert [n["type"] for n in creator] == ["task.status_changed"]
        assert team("admin", "GET", "/notifications").json["items"] == []

    def test_read_one_read_all_within_the_budget(self, team: Team) -> None:
        tasks = [team.task(title=f"T{i}", assignee_id=team.ids["viewer"]) for i in range(4)]
        inbox = team("viewer", "GET", "/notifications?limit=2")
        assert [n["task_id"] for n in inbox.json["items"]] == [tasks[3]["id"], tasks[2]["id"]]
        newest = inbox.json["items"][0]["id"]

        assert error_of(team("member", "POST", f"/notifications/{newest}/read")) == (
            404,
            "not_found",
        )
        for unknown in ("01NOSUCHNOTIFICATION", "x" * 300):
            assert error_of(team("viewer", "POST", f"/notifications/{unknown}/read"))[0] == 404
        read = team("viewer", "POST", f"/notifications/{newest}/read")
        assert read.status_code == 204
        assert team.http.calls == ["GetItem", "UpdateItem"]
        unread = team("viewer", "GET", "/notifications?unread=true").json["items"]
        assert [n["task_id"] for n in unread] == [t["id"] for t in reversed(tasks[:3])]
        assert [n["read"] for n in team("viewer", "GET", "/notifications").json["items"]] == [
            True,
            False,
            False,
            False,
        ]

        read_all = team("viewer", "POST", "/notifications/read-all")
        assert read_all.status_code == 204
        # Session + read mark, the newest notification's id, the conditional write of the mark.
        assert team.http.calls == ["BatchGetItem", "Query", "UpdateItem"]
        assert team("viewer", "GET", "/notifications?unread=true").json["items"] == []
        assert team.http.calls == ["BatchGetItem", "Query"]
        assert all(n["read"] for n in team("viewer", "GET", "/notifications").json["items"])
        again = team("viewer", "POST", "/notifications/read-all")
        assert again.status_code == 204
        assert len(team.http.calls) <= READ_BUDGET

        later = team.task(title="Later", assignee_id=team.ids["viewer"])
        unread = team("viewer", "GET", "/notifications?unread=true").json["items"]
        assert [n["task_id"] for n in unread] == [later["id"]]

    def test_read_all_is_bounded_whatever_the_count(self, team: Team) -> None:
        for index in range(30):
            team.task(title=f"T{index}", assignee_id=team.ids["viewer"])
        assert team("viewer", "POST", "/notifications/read-all").status_code == 204
        assert len(team.http.calls) <= WRITE_BUDGET
        assert team("viewer", "GET", "/notifications?unread=true").json == {
            "items": [],
            "next_cursor": None,
        }

    def test_pages_and_bad_parameters(self, team: Team) -> None:
        for index in range(3):
            team.task(title=f"T{index}", assignee_id=team.ids["viewer"])
        first = team("viewer", "GET", "/notifications?limit=2&unread=true").json
        assert len(first["items"]) == 2
        rest = team(
            "viewer", "GET", f"/notifications?unread=true&cursor={first['next_cursor']}"
        ).json
        assert len(rest["items"]) == 1
        assert rest["next_cursor"] is None
        for query, status in (
            ("unread=maybe", 400),
            ("limit=101", 422),
            ("cursor=garbage", 400),
            (f"cursor={first['next_cursor']}", 400),  # a cursor of the unread list
        ):
            response = team("viewer", "GET", f"/notifications?{query}")
            assert response.status_code == status, (query, response.body)
        foreign = team("member", "GET", f"/notifications?unread=true&cursor={first['next_cursor']}")
        assert error_of(foreign) == (400, "bad_request")

    def test_anonymous_is_401(self, team: Team) -> None:
        for method, path in (
            ("GET", "/notifications"),
            ("POST", "/notifications/read-all"),
            ("POST", "/notifications/01ANY/read"),
        ):
            assert error_of(team(None, method, path)) == (401, "unauthorized"), path


def test_openapi_documents_the_routes(http: Http) -> None:
    paths = http("GET", "/openapi.json").json["paths"]
    for path, method in (
        ("/tasks/{task_id}/comments", "get"),
        ("/tasks/{task_id}/comments", "post"),
        ("/tasks/{task_id}/comments/{comment_id}", "delete"),
        ("/tasks/{task_id}/history", "get"),
        ("/notifications", "get"),
        ("/notifications/{notification_id}/read", "post"),
        ("/notifications/read-all", "post"),
    ):
        assert method in paths[path], (path, method)
