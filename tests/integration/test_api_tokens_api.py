"""API tokens over HTTP (API.md, "Machine access"), through Chalice's test client on moto:
create (shown once), list, revoke, the admin's view; and a token used as a bearer: its scopes,
the routes no token may call, expiry, revocation, and what checking one costs in DynamoDB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.domain import api_tokens
from tests.integration.helpers import Api, assert_error, body

TOKEN_FIELDS = {"id", "name", "scopes", "prefix", "created_at", "expires_at", "last_used_at"}


@pytest.fixture
def client(container: bootstrap.Container) -> Iterator[Client]:
    with Client(app) as test_client:
        yield test_client


@pytest.fixture
def api(client: Client) -> Api:
    return Api(client)


@pytest.fixture
def ada(api: Api) -> dict[str, Any]:
    return api.register("ada@example.com")  # the first account: admin


@pytest.fixture
def bob(api: Api, ada: dict[str, Any]) -> dict[str, Any]:
    return api.register("bob@example.com")


def make_token(
    api: Api, session: dict[str, Any], scopes: list[str], **fields: Any
) -> dict[str, Any]:
    response = api.call(
        "POST",
        "/users/profile/tokens",
        {"name": "script", "scopes": scopes, **fields},
        token=session["access_token"],
    )
    assert response.status_code == 201, response.body
    return body(response)  # type: ignore[no-any-return]


class TestCreateListRevoke:
    def test_the_token_is_shown_once_and_listed_without_it(
        self, api: Api, ada: dict[str, Any]
    ) -> None:
        created = make_token(api, ada, ["read", "write"])
        assert set(created) == TOKEN_FIELDS | {"token"}
        assert created["token"].startswith("tb_")
        assert created["token"].startswith(created["prefix"])
        assert created["scopes"] == ["read", "write"]
        assert created["last_used_at"] is None
        assert created["expires_at"] is None
        listed = body(api.call("GET", "/users/profile/tokens", token=ada["access_token"]))
        assert listed["next_cursor"] is None
        (item,) = listed["items"]
        assert set(item) == TOKEN_FIELDS
        assert created["token"] not in str(listed)

    def test_a_list_is_newest_first_and_pages(self, api: Api, ada: dict[str, Any]) -> None:
        ids = [make_token(api, ada, ["read"])["id"] for _ in range(3)]
        first = body(api.call("GET", "/users/profile/tokens?limit=2", token=ada["access_token"]))
        assert [t["id"] for t in first["items"]] == ids[::-1][:2]
        second = body(
            api.call(
                "GET",
                f"/users/profile/tokens?limit=2&cursor={first['next_cursor']}",
                token=ada["access_token"],
            )
        )
        assert [t["id"] for t in second["items"]] == [ids[0]]
        assert second["next_cursor"] is None

    @pytest.mark.parametrize(
        "fields",
        [
            {"name": "", "scopes": ["read"]},
            {"name": "x" * 101, "scopes": ["read"]},
            {"name": "s", "scopes": []},
            {"name": "s", "scopes": ["read", "read"]},
            {"name": "s", "scopes": ["admin"]},
            {"name": "s", "scopes": ["read"], "expires_at": "2020-01-01T00:00:00Z"},
            {"name": "s", "scopes": ["read"], "expires_at": "2999-01-01T00:00:00"},
            {"name": "s", "scopes": ["read"], "owner": "me"},
            {"scopes": ["read"]},
        ],
        ids=str,
    )
    def test_bad_input_is_422(self, api: Api, ada: dict[str, Any], fields: Any) -> None:
        response = api.call("POST", "/users/profile/tokens", fields, token=ada["access_token"])
        assert_error(response, 422, "validation_error")

    def test_a_future_expiry_is_kept(self, api: Api, ada: dict[str, Any]) -> None:
        created = make_token(api, ada, ["read"], expires_at="2999-01-01T00:00:00Z")
        assert created["expires_at"] == "2999-01-01T00:00:00Z"

    def test_the_cap_is_409_and_a_revoke_frees_a_place(
        self, api: Api, ada: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(api_tokens, "MAX_TOKENS_PER_USER", 2)
        first = make_token(api, ada, ["read"])
        make_token(api, ada, ["read"])
        response = api.call(
            "POST",
            "/users/profile/tokens",
            {"name": "third", "scopes": ["read"]},
            token=ada["access_token"],
        )
        assert_error(response, 409, "conflict")
        path = f"/users/profile/tokens/{first['id']}"
        assert api.call("DELETE", path, token=ada["access_token"]).status_code == 204
        make_token(api, ada, ["read"])

    def test_a_revoked_token_stops_at_once(self, api: Api, ada: dict[str, Any]) -> None:
        created = make_token(api, ada, ["read"])
        assert api.call("GET", "/users/profile", token=created["token"]).status_code == 200
        path = f"/users/profile/tokens/{created['id']}"
        assert api.call("DELETE", path, token=ada["access_token"]).status_code == 204
        answer = api.call("GET", "/users/profile", token=created["token"])
        assert_error(answer, 401, "unauthorized")
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert_error(api.call("DELETE", path, token=ada["access_token"]), 404, "not_found")

    def test_another_users_token_is_404_to_revoke(
        self, api: Api, ada: dict[str, Any], bob: dict[str, Any]
    ) -> None:
        theirs = make_token(api, bob, ["read"])
        path = f"/users/profile/tokens/{theirs['id']}"
        assert_error(api.call("DELETE", path, token=ada["access_token"]), 404, "not_found")
        malformed = "/users/profile/tokens/nope"
        assert_error(api.call("DELETE", malformed, token=ada["access_token"]), 404, "not_found")
        assert api.call("GET", "/users/profile", token=theirs["token"]).status_code == 200


class TestAdmin:
    def test_an_admin_lists_and_revokes_a_users_tokens(
        self, api: Api, ada: dict[str, Any], bob: dict[str, Any]
    ) -> None:
        theirs = make_token(api, bob, ["read"])
        user = bob["user"]["id"]
        listed = body(api.call("GET", f"/users/{user}/tokens", token=ada["access_token"]))
        assert [t["id"] for t in listed["items"]] == [theirs["id"]]
        path = f"/users/{user}/tokens/{theirs['id']}"
        assert api.call("DELETE", path, token=ada["access_token"]).status_code == 204
        assert_error(api.call("GET", "/users/profile", token=theirs["token"]), 401, "unauthorized")
        assert_error(api.call("DELETE", path, token=ada["access_token"]), 404, "not_found")

    def test_a_member_gets_403(self, api: Api, ada: dict[str, Any], bob: dict[str, Any]) -> None:
        mine = make_token(api, ada, ["read"])
        user = ada["user"]["id"]
        for method, path in (
            ("GET", f"/users/{user}/tokens"),
            ("DELETE", f"/users/{user}/tokens/{mine['id']}"),
        ):
            assert_error(api.call(method, path, token=bob["access_token"]), 403, "forbidden")

    def test_an_unknown_user_is_404(self, api: Api, ada: dict[str, Any]) -> None:
        path = "/users/01HZZZZZZZZZZZZZZZZZZZZZZZ/tokens"
        answer = api.call("GET", path, token=ada["access_token"])
        assert_error(answer, 404, "not_found")


class TestUsingATokenAsABearer:
    def test_a_token_acts_as_its_user(self, api: Api, ada: dict[str, Any]) -> None:
        token = make_token(api, ada, ["read", "write"])["token"]
        made = api.call("POST", "/projects", {"name": "By script"}, token=token)
        assert made.status_code == 201, made.body
        assert body(made)["owner_id"] == ada["user"]["id"]
        task = api.call("POST", "/tasks", {"title": "From a script"}, token=token)
        assert task.status_code == 201, task.body  # the personal project, as with a session

    def test_a_call_outside_the_scopes_is_403_insufficient_scope(
        self, api: Api, ada: dict[str, Any]
    ) -> None:
        reader = make_token(api, ada, ["read"])["token"]
        writer = make_token(api, ada, ["write"])["token"]
        answer = api.call("POST", "/projects", {"name": "No"}, token=reader)
        payload = assert_error(answer, 403, "insufficient_scope")
        assert "write" in payload["error"]["message"]
        assert_error(api.call("GET", "/projects", token=writer), 403, "insufficient_scope")

    def test_run_needs_the_run_scope(self, api: Api, ada: dict[str, Any]) -> None:
        task = body(api.call("POST", "/tasks", {"title": "T"}, token=ada["access_token"]))
        path = f"/tasks/{task['id']}/run"
        writer = make_token(api, ada, ["read", "write"])["token"]
        runner = make_token(api, ada, ["run"])["token"]
        assert_error(api.call("POST", path, token=writer), 403, "insufficient_scope")
        assert api.call("POST", path, token=runner).status_code == 202

    @pytest.mark.parametrize(
        ("method", "path", "payload"),
        [
            ("GET", "/users/profile/tokens", None),
            ("POST", "/users/profile/tokens", {"name": "child", "scopes": ["read"]}),
            ("PATCH", "/users/profile", {"name": "Eve"}),
            ("PUT", "/users/profile", {"password": "new password!", "current_password": "x"}),
            ("POST", "/auth/logout", {}),
            ("POST", "/users/profile/calendar-token", None),
        ],
        ids=str,
    )
    def test_no_token_manages_tokens_credentials_or_sessions(
        self, api: Api, ada: dict[str, Any], method: str, path: str, payload: Any
    ) -> None:
        token = make_token(api, ada, ["read", "write", "run"])["token"]
        answer = api.call(method, path, payload, token=token)
        assert_error(answer, 403, "insufficient_scope")
        # The session's own token still works: the logout did not happen.
        assert api.call("GET", "/users/profile", token=ada["access_token"]).status_code == 200

    def test_roles_are_not_for_tokens(
        self, api: Api, ada: dict[str, Any], bob: dict[str, Any]
    ) -> None:
        token = make_token(api, ada, ["read", "write", "run"])["token"]
        path = f"/users/{bob['user']['id']}/role"
        answer = api.call("PUT", path, {"role": "admin"}, token=token)
        assert_error(answer, 403, "insufficient_scope")

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # another secret
            lambda t: t[:3] + "0" * 78 + t[81:],  # ids that name nothing
            lambda t: t[:81] + "-" + t[82:],  # the separator
            lambda t: t[:60],  # cut short
            lambda t: "tb_",
        ],
    )
    def test_a_forged_token_is_401(self, api: Api, ada: dict[str, Any], mangle: Any) -> None:
        token = make_token(api, ada, ["read"])["token"]
        answer = api.call("GET", "/users/profile", token=mangle(token))
        assert_error(answer, 401, "unauthorized")

    def test_last_used_at_is_kept_to_the_minute(self, api: Api, ada: dict[str, Any]) -> None:
        created = make_token(api, ada, ["read"])
        made = datetime.fromisoformat(created["created_at"])
        before = made.replace(second=0, microsecond=0)
        assert api.call("GET", "/projects", token=created["token"]).status_code == 200
        (item,) = body(api.call("GET", "/users/profile/tokens", token=ada["access_token"]))["items"]
        used = datetime.fromisoformat(item["last_used_at"])
        assert used == used.replace(second=0, microsecond=0)
        assert before <= used <= before + timedelta(minutes=1)


class TestDynamoDB:
    """Only DynamoDB shows these: calls per request, and the stored item."""

    @pytest.fixture
    def calls(self, client: Client) -> Iterator[list[str]]:
        from chalicelib.adapters.dynamodb import connection

        recorded: list[str] = []

        def record(event_name: str, **_: Any) -> None:
            recorded.append(event_name.rsplit(".", 1)[-1])

        events = connection.root().client.meta.events
        events.register("before-call.dynamodb", record)
        yield recorded
        events.unregister("before-call.dynamodb", record)

    def test_a_token_costs_what_a_session_costs(
        self, api: Api, ada: dict[str, Any], calls: list[str]
    ) -> None:
        task = body(api.call("POST", "/tasks", {"title": "T"}, token=ada["access_token"]))
        token = make_token(api, ada, ["read", "write"])["token"]
        api.call("GET", f"/tasks/{task['id']}", token=token)  # the minute's first: touches
        for path in (f"/tasks/{task['id']}", "/users/profile", "/projects"):
            calls.clear()
            assert api.call("GET", path, token=ada["access_token"]).status_code == 200
            with_session = list(calls)
            calls.clear()
            assert api.call("GET", path, token=token).status_code == 200
            assert calls == with_session, path

    def test_the_first_request_of_a_minute_adds_one_conditional_update(
        self, api: Api, ada: dict[str, Any], calls: list[str]
    ) -> None:
        token = make_token(api, ada, ["read"])["token"]
        calls.clear()
        api.call("GET", "/users/profile", token=token)
        first = list(calls)
        calls.clear()
        api.call("GET", "/users/profile", token=token)
        assert calls == ["BatchGetItem"]
        assert first == ["BatchGetItem", "UpdateItem"]

    def test_an_expired_token_is_401(self, api: Api, ada: dict[str, Any]) -> None:
        from chalicelib.adapters.dynamodb.models import ApiTokenModel

        created = make_token(api, ada, ["read"], expires_at="2999-01-01T00:00:00Z")
        ApiTokenModel(user_id=ada["user"]["id"], id=created["id"][:26]).update(
            actions=[ApiTokenModel.expires_at.set(datetime.now(UTC) - timedelta(seconds=1))]
        )
        answer = api.call("GET", "/users/profile", token=created["token"])
        payload = assert_error(answer, 401, "unauthorized")
        assert "expired" in payload["error"]["message"]

    def test_a_deleted_users_token_is_401(self, api: Api, ada: dict[str, Any]) -> None:
        from chalicelib.adapters.dynamodb.models import UserModel

        token = make_token(api, ada, ["read"])["token"]
        UserModel(id=ada["user"]["id"]).delete()
        assert_error(api.call("GET", "/projects", token=token), 401, "unauthorized")

    def test_only_the_secrets_hash_is_stored(self, api: Api, ada: dict[str, Any]) -> None:
        from chalicelib.adapters.dynamodb.models import ApiTokenModel

        created = make_token(api, ada, ["read"])
        secret = created["token"][len("tb_") + 78 + 1 :]
        row = ApiTokenModel.get(ada["user"]["id"], created["id"][:26])
        stored = str(row.serialize())
        assert secret not in stored
        assert created["token"] not in stored
        assert row.secret_hash == api_tokens.hash_secret(secret)


class TestDocument:
    def test_the_routes_and_the_bearer_kinds_are_documented(self, api: Api) -> None:
        doc = body(api.call("GET", "/openapi.json"))
        scheme = doc["components"]["securitySchemes"]["bearerAuth"]
        assert "tb_" in scheme["description"]
        assert "insufficient_scope" in scheme["description"]
        create = doc["paths"]["/users/profile/tokens"]["post"]
        assert create["x-api-token-scope"] is None  # no API token manages tokens
        created = create["responses"]["201"]["content"]["application/json"]["schema"]
        schema = doc["components"]["schemas"][created["$ref"].rsplit("/", 1)[-1]]
        assert set(schema["properties"]) == TOKEN_FIELDS | {"token"}
        for path, method in (
            ("/users/profile/tokens", "get"),
            ("/users/profile/tokens/{token_id}", "delete"),
            ("/users/{user_id}/tokens", "get"),
            ("/users/{user_id}/tokens/{token_id}", "delete"),
        ):
            assert doc["paths"][path][method]["x-api-token-scope"] is None
        assert doc["paths"]["/tasks/{task_id}/run"]["post"]["x-api-token-scope"] == "run"
        assert doc["paths"]["/tasks"]["get"]["x-api-token-scope"] == "read"
        assert "403" in doc["paths"]["/tasks"]["get"]["responses"]
