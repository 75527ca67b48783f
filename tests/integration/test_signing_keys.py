"""JWT signing keys from Secrets Manager (moto): kid, cache, rotation, and what must not change.

A rotation here is what Secrets Manager's rotation ends with: a new version labelled AWSCURRENT
(`put_secret_value`), the one before it AWSPREVIOUS and the one before that unlabelled.
"""

from __future__ import annotations

from typing import Any

import boto3
import jwt
import pytest

from chalicelib import bootstrap
from chalicelib.adapters.aws.secrets import SecretsManagerSigningKeys
from chalicelib.settings import Settings
from tests.fakes import fast_hasher
from tests.integration.conftest import PASSWORD, REGION, Http

ROTATED_KEY = "r" * 64


def rotate(settings: Settings, value: str = ROTATED_KEY) -> str:
    """A new AWSCURRENT version of the JWT key; its version id."""
    client = boto3.client("secretsmanager", region_name=REGION)
    return str(
        client.put_secret_value(SecretId=settings.jwt_secret_id, SecretString=value)["VersionId"]
    )


def kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingClient:
    def __init__(self) -> None:
        self.client = boto3.client("secretsmanager", region_name=REGION)
        self.reads: list[str] = []

    def get_secret_value(self, **kwargs: Any) -> Any:
        self.reads.append(kwargs.get("VersionStage", "?"))
        return self.client.get_secret_value(**kwargs)


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def counting(moto_aws: None) -> CountingClient:
    return CountingClient()


@pytest.fixture
def keys(counting: CountingClient, settings: Settings, ticks: Ticks) -> SecretsManagerSigningKeys:
    return SecretsManagerSigningKeys(
        counting, settings.jwt_secret_id, ttl=300, unknown_kid_refresh=10, monotonic=ticks
    )


class TestAdapter:
    def test_the_current_key_is_named_by_its_version_id(
        self, keys: SecretsManagerSigningKeys, settings: Settings, counting: CountingClient
    ) -> None:
        value = counting.client.get_secret_value(SecretId=settings.jwt_secret_id)
        current = keys.current()
        assert (current.kid, current.secret) == (value["VersionId"], value["SecretString"])
        assert current.secret not in repr(current)
        assert keys.find(current.kid) == current
        assert counting.reads == ["AWSCURRENT"]  # one read, none per use, no AWSPREVIOUS yet
        assert keys.find("made-up") is None  # a kid AWSCURRENT did not sign: AWSPREVIOUS
        assert keys.find("made-up-too") is None
        assert counting.reads == ["AWSCURRENT", "AWSPREVIOUS"]  # read once per AWSCURRENT

    def test_a_rotation_is_picked_up_after_the_ttl(
        self,
        keys: SecretsManagerSigningKeys,
        settings: Settings,
        ticks: Ticks,
        counting: CountingClient,
    ) -> None:
        old = keys.current()
        new_kid = rotate(settings)
        ticks.now += 299
        assert keys.current() == old  # cached
        ticks.now += 1
        assert keys.current().kid == new_kid
        assert keys.find(old.kid) == old  # AWSPREVIOUS
        assert keys.find(old.kid) == old
        assert counting.reads == ["AWSCURRENT", "AWSCURRENT", "AWSPREVIOUS"]

    def test_an_unknown_kid_refreshes_at_once_but_at_most_every_interval(
        self,
        keys: SecretsManagerSigningKeys,
        settings: Settings,
        ticks: Ticks,
        counting: CountingClient,
    ) -> None:
        keys.current()
        ticks.now += 10
        new_kid = rotate(settings)  # another container signs with it at once
        assert keys.find(new_kid) is not None
        assert keys.current().kid == new_kid
        reads = len(counting.reads)
        assert keys.find("made-up") is None
        assert keys.find("made-up") is None
        # Just refreshed: AWSCURRENT is not read again, AWSPREVIOUS once under the new one.
        assert counting.reads[reads:] == ["AWSPREVIOUS"]
        ticks.now += 10
        reads = len(counting.reads)
        assert keys.find("made-up") is None
        assert counting.reads[reads:] == ["AWSCURRENT"]  # current unchanged: previous kept

    def test_a_key_two_rotations_old_is_gone(
        self, keys: SecretsManagerSigningKeys, settings: Settings, ticks: Ticks
    ) -> None:
        first = keys.current()
        second = rotate(settings, "s" * 64)
        third = rotate(settings, "t" * 64)
        ticks.now += 300
        assert keys.current().kid == third
        assert keys.find(second) is not None
        assert keys.find(first.kid) is None


@pytest.fixture
def settings() -> Settings:
    # Keys read on every use, so a rotation is seen at once (containers see it within the TTL).
    return Settings(
        table_prefix="test-", jwt_secret_id="test/jwt", aws_region=REGION, jwt_keys_cache_seconds=0
    )


def login(http: Http, email: str) -> dict[str, Any]:
    response = http("POST", "/auth/login", {"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.body
    return response.json  # type: ignore[no-any-return]


def assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401, response.body
    assert response.json["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


class TestRotationOverHttp:
    def test_tokens_survive_one_rotation_and_not_two(self, http: Http, settings: Settings) -> None:
        before = http.register("ada@example.com")
        idle = login(http, "ada@example.com")  # another session, not used until the end
        first_kid = kid(before["access_token"])
        assert kid(before["refresh_token"]) == first_kid

        second_kid = rotate(settings, "s" * 64)
        assert http("GET", "/users/profile", token=before["access_token"]).status_code == 200
        after = login(http, "ada@example.com")
        assert kid(after["access_token"]) == second_kid != first_kid
        assert http("GET", "/users/profile", token=after["access_token"]).status_code == 200
        # A refresh token of the previous key still refreshes, and gets the new key.
        refreshed = http("POST", "/auth/refresh", {"refresh_token": before["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.body
        assert kid(refreshed.json["refresh_token"]) == second_kid

        rotate(settings, "t" * 64)
        assert_unauthorized(http("GET", "/users/profile", token=before["access_token"]))
        assert http("GET", "/users/profile", token=after["access_token"]).status_code == 200
        # An unused refresh token of the first key: two rotations old, so the session must log in.
        assert_unauthorized(http("POST", "/auth/refresh", {"refresh_token": idle["refresh_token"]}))

    def test_tokens_without_or_with_an_unknown_kid_are_401(
        self, http: Http, settings: Settings
    ) -> None:
        token = http.register("ada@example.com")["access_token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        key = boto3.client("secretsmanager", region_name=REGION).get_secret_value(
            SecretId=settings.jwt_secret_id
        )["SecretString"]
        assert_unauthorized(http("GET", "/users/profile", token=jwt.encode(claims, key, "HS256")))
        unknown = jwt.encode(claims, key, "HS256", headers={"kid": "not-a-version"})
        assert_unauthorized(http("GET", "/users/profile", token=unknown))
        unsigned = jwt.encode(claims, None, "none", headers={"kid": kid(token)})
        assert_unauthorized(http("GET", "/users/profile", token=unsigned))

    def test_webhook_secrets_and_cursors_do_not_change(
        self, http: Http, settings: Settings
    ) -> None:
        token = http.register("ada@example.com")["access_token"]
        projects = [
            http("POST", "/projects", {"name": f"p{i}"}, token).json["id"] for i in range(3)
        ]
        secret = http("GET", f"/projects/{projects[0]}/webhook-secret", token=token).json["secret"]
        page = http("GET", "/projects?limit=1", token=token).json
        assert page["next_cursor"]

        rotate(settings, "s" * 64)
        rotate(settings, "t" * 64)
        # A container started after the rotations (one that ran before keeps what it read).
        bootstrap.override(bootstrap.build(settings, hasher=fast_hasher()))
        token = login(http, "ada@example.com")["access_token"]
        after = http("GET", f"/projects/{projects[0]}/webhook-secret", token=token)
        assert after.json["secret"] == secret
        again = http("GET", f"/projects?limit=1&cursor={page['next_cursor']}", token=token)
        assert again.status_code == 200, again.body
        assert again.json["items"]
