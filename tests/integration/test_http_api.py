"""The HTTP contract of auth, users and service routes, through Chalice's test client on moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from chalice.test import Client
from openapi_spec_validator import validate

from app import app
from chalicelib import bootstrap
from chalicelib.adapters.dynamodb import connection
from tests.integration.helpers import PASSWORD, Api, assert_error, body


@pytest.fixture
def client(container: bootstrap.Container) -> Iterator[Client]:
    with Client(app) as test_client:
        yield test_client


@pytest.fixture
def api(client: Client) -> Api:
    return Api(client)


class TestRegisterAndLogin:
    def test_register_answers_201_with_tokens_and_user(self, api: Api) -> None:
        result = api.register()
        assert result["token_type"] == "Bearer"
        assert result["expires_in"] == 900
        assert result["user"]["role"] == "admin"
        assert set(result["user"]) == {
            "id",
            "email",
            "name",
            "role",
            "timezone",
            "created_at",
            "updated_at",
            "version",
        }
        assert result["user"]["created_at"].endswith("Z")

    def test_duplicate_email_is_409(self, api: Api) -> None:
        api.register("ada@example.com")
        response = api.call(
            "POST",
            "/auth/register",
            {"email": "ADA@example.com", "password": PASSWORD, "name": "A"},
        )
        assert_error(response, 409, "conflict")

    def test_validation_errors_are_422_with_details(self, api: Api) -> None:
        response = api.call(
            "POST",
            "/auth/register",
            {"email": "not-an-email", "password": "short", "name": "A", "role": "admin"},
        )
        payload = assert_error(response, 422, "validation_error")
        locs = {tuple(d["loc"]) for d in payload["error"]["details"]}
        assert {("body", "email"), ("body", "password"), ("body", "role")} <= locs

    def test_bad_json_is_400(self, api: Api) -> None:
        assert_error(api.call("POST", "/auth/register", raw=b"{not json"), 400, "bad_request")

    def test_body_over_256_kib_is_413(self, api: Api) -> None:
        big = {"email": "a@example.com", "password": PASSWORD, "name": "x" * (257 * 1024)}
        assert_error(api.call("POST", "/auth/register", big), 413, "payload_too_large")

    def test_login_and_wrong_password(self, api: Api) -> None:
        api.register()
        ok = api.call("POST", "/auth/login", {"email": "ada@example.com", "password": PASSWORD})
        assert ok.status_code == 200
        assert body(ok)["access_token"]
        wrong = api.call(
            "POST", "/auth/login", {"email": "ada@example.com", "password": "nope nope"}
        )
        unknown = api.call(
            "POST", "/auth/login", {"email": "who@example.com", "password": "nope nope"}
        )
        assert (
            assert_error(wrong, 401, "unauthorized")["error"]["message"]
            == assert_error(unknown, 401, "unauthorized")["error"]["message"]
        )

    def test_sixth_attempt_is_429_with_retry_after(self, api: Api) -> None:
        api.register()
        for _ in range(5):
            api.call("POST", "/auth/login", {"email": "ada@example.com", "password": "wrong one"})
        response = api.call(
            "POST", "/auth/login", {"email": "ada@example.com", "password": PASSWORD}
        )
        assert_error(response, 429, "rate_limited")
        assert 800 <= int(response.headers["Retry-After"]) <= 900


class TestTokens:
    def test_missing_or_bad_token_is_401_with_www_authenticate(self, api: Api) -> None:
        for token in (None, "garbage"):
            response = api.call("GET", "/users/profile", token=token)
            assert_error(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"].startswith("Bearer")

    def test_refresh_rotation_and_reuse_detection(self, api: Api) -> None:
        first = api.register()
        second = body(api.call("POST", "/auth/refresh", {"refresh_token": first["refresh_token"]}))
        assert api.call("GET", "/users/profile", token=second["access_token"]).status_code == 200
        reuse = api.call("POST", "/auth/refresh", {"refresh_token": first["refresh_token"]})
        assert_error(reuse, 401, "unauthorized")
        assert api.call("GET", "/users/profile", token=second["access_token"]).status_code == 401
        assert (
            api.call(
                "POST", "/auth/refresh", {"refresh_token": second["refresh_token"]}
            ).status_code
            == 401
        )

    def test_logout_is_204_and_immediate(self, api: Api) -> None:
        session = api.register()
        assert api.call("POST", "/auth/logout", token=session["access_token"]).status_code == 204
        assert api.call("GET", "/users/profile", token=session["access_token"]).status_code == 401
        refresh = api.call("POST", "/auth/refresh", {"refresh_token": session["refresh_token"]})
        assert refresh.status_code == 401


class TestProfileAndAdmin:
    def test_profile_read_and_update_with_etag(self, api: Api) -> None:
        token = api.register()["access_token"]
        profile = api.call("GET", "/users/profile", token=token)
        assert profile.headers["ETag"] == '"1"'
        updated = api.call("PATCH", "/users/profile", {"timezone": "Europe/Paris"}, token=token)
        assert body(updated)["timezone"] == "Europe/Paris"
        assert updated.headers["ETag"] == '"2"'
        stale = api.call(
            "PUT", "/users/profile", {"name": "X"}, token=token, headers={"If-Match": '"1"'}
        )
        assert_error(stale, 412, "precondition_failed")
        fresh = api.call(
            "PUT", "/users/profile", {"name": "X"}, token=token, headers={"If-Match": '"2"'}
        )
        assert body(fresh)["name"] == "X"

    def test_bad_timezone_and_read_only_fields_are_422(self, api: Api) -> None:
        token = api.register()["access_token"]
        assert_error(
            api.call("PATCH", "/users/profile", {"timezone": "Nowhere/Land"}, token=token),
            422,
            "validation_error",
        )
        assert_error(
            api.call("PATCH", "/users/profile", {"version": 7}, token=token),
            422,
            "validation_error",
        )

    def test_password_change_needs_the_right_current_password(self, api: Api) -> None:
        token = api.register()["access_token"]
        wrong = api.call(
            "PATCH",
            "/users/profile",
            {"password": "new password 1", "current_password": "wrong"},
            token=token,
        )
        assert_error(wrong, 401, "unauthorized")
        ok = api.call(
            "PATCH",
            "/users/profile",
            {"password": "new password 1", "current_password": PASSWORD},
            token=token,
        )
        assert ok.status_code == 200
        login = api.call(
            "POST", "/auth/login", {"email": "ada@example.com", "password": "new password 1"}
        )
        assert login.status_code == 200

    def test_user_list_is_admin_only_and_paginated(self, api: Api) -> None:
        admin = api.register("admin@example.com")["access_token"]
        member = api.register("alice@example.com")["access_token"]
        api.register("albert@example.com")
        assert_error(api.call("GET", "/users?q=al", token=member), 403, "forbidden")
        page = body(api.call("GET", "/users?q=al&limit=1", token=admin))
        assert [u["email"] for u in page["items"]] == ["albert@example.com"]
        rest = body(
            api.call("GET", f"/users?q=al&limit=1&cursor={page['next_cursor']}", token=admin)
        )
        assert [u["email"] for u in rest["items"]] == ["alice@example.com"]
        assert rest["next_cursor"] is None

    @pytest.mark.parametrize(
        ("query", "status"),
        [("limit=abc", 400), ("limit=0", 422), ("limit=101", 422), ("cursor=zzz", 400)],
    )
    def test_bad_page_parameters(self, api: Api, query: str, status: int) -> None:
        admin = api.register("admin@example.com")["access_token"]
        response = api.call("GET", f"/users?{query}", token=admin)
        assert response.status_code == status, response.body

    def test_cursor_from_another_query_is_400(self, api: Api) -> None:
        admin = api.register("admin@example.com")["access_token"]
        api.register("alice@example.com")
        cursor = body(api.call("GET", "/users?limit=1", token=admin))["next_cursor"]
        assert_error(
            api.call("GET", f"/users?q=al&limit=1&cursor={cursor}", token=admin), 400, "bad_request"
        )

    def test_admin_sets_role(self, api: Api) -> None:
        admin = api.register("admin@example.com")["access_token"]
        member = api.register("bob@example.com")
        response = api.call(
            "PUT", f"/users/{member['user']['id']}/role", {"role": "admin"}, token=admin
        )
        assert body(response)["role"] == "admin"
        assert_error(
            api.call("PUT", "/users/nope/role", {"role": "admin"}, token=admin), 404, "not_found"
        )
        assert_error(
            api.call("PUT", f"/users/{member['user']['id']}/role", {"role": "root"}, token=admin),
            422,
            "validation_error",
        )
        other = api.register("carol@example.com")
        assert_error(
            api.call(
                "PUT",
                f"/users/{member['user']['id']}/role",
                {"role": "member"},
                token=other["access_token"],
            ),
            403,
            "forbidden",
        )


class TestFailuresOfAws:
    def test_throttling_becomes_503_with_retry_after(
        self, api: Api, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        token = api.register()["access_token"]

        def throttle(operation: str, params: Any) -> Any:
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                operation,
            )

        monkeypatch.setattr(connection.root().client, "_make_api_call", throttle)
        response = api.call("GET", "/users/profile", token=token)
        assert_error(response, 503, "unavailable")
        assert int(response.headers["Retry-After"]) >= 1

    def test_an_unexpected_error_is_500_without_a_trace(
        self, api: Api, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        token = api.register()["access_token"]

        def explode(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("secret internals")

        monkeypatch.setattr(connection.root().client, "_make_api_call", explode)
        response = api.call("GET", "/users/profile", token=token)
        payload = assert_error(response, 500, "internal_error")
        assert "secret internals" not in json.dumps(payload)


class TestService:
    def test_health(self, api: Api) -> None:
        response = api.call("GET", "/health")
        assert response.status_code == 200
        assert body(response) == {
            "status": "ok",
            "version": bootstrap.VERSION,
            "checks": {"dynamodb": "ok"},
        }

    def test_openapi_is_valid_3_1_and_covers_every_route(self, api: Api) -> None:
        document = body(api.call("GET", "/openapi.json"))
        validate(document)
        assert document["openapi"].startswith("3.1")
        chalice_routes = {
            (path.removeprefix("/v1"), method.lower())
            for path, methods in app.routes.items()
            for method in methods
            if method != "OPTIONS"  # CORS preflights (api/middleware.py), not operations
        }
        documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
        assert chalice_routes == documented
        register = document["paths"]["/auth/register"]["post"]
        schema_ref = register["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
        assert set(schema["required"]) == {"email", "password", "name"}
        assert schema["additionalProperties"] is False

    def test_docs_page_and_its_assets_are_served_locally(self, api: Api) -> None:
        page = api.call("GET", "/docs")
        assert page.status_code == 200
        html = page.body.decode()
        assert "SwaggerUIBundle" in html
        assert "http" not in html.split("<body>")[1]  # no CDN: every asset is ours
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            response = api.call("GET", f"/docs/{asset}")
            assert response.status_code == 200, asset
            assert len(response.body) > 10_000
        assert api.call("GET", "/docs/..%2Fapp.py").status_code == 404
