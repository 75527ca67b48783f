"""OWASP API2, broken authentication, over HTTP on moto.

Every private route refuses a request without a token; tokens forged with or without the real
signing key (read from moto's Secrets Manager, as a thief would hold it) are refused when
anything about them is off: signature, algorithm, key id, type, issuer, audience, expiry,
claims, session. Logout, refresh-token reuse and a password change end sessions at once;
logins are throttled per email, and unknown emails answer like wrong passwords.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import jwt
import pytest

from tests.integration.conftest import REGION
from tests.security.conftest import PASSWORD, Answer, World
from tests.security.routes import CASES, Case, ghost_path

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


def assert_unauthorized(answer: Answer) -> None:
    assert answer.status == 401, answer
    assert answer.code == "unauthorized"
    assert (answer.header("WWW-Authenticate") or "").startswith("Bearer")
    assert set(answer.json) == {"error", "request_id"}


# ---- no token -----------------------------------------------------------------------------------

# Calendar feeds take no bearer token: their path is the secret (tests/security/routes.py).
PRIVATE = [case for case in CASES if case.access != "public" and not case.secret_path]


@pytest.mark.parametrize("case", PRIVATE, ids=str)
def test_every_private_route_refuses_a_request_without_a_token(world: World, case: Case) -> None:
    answer = world.request(case.method, ghost_path(case), {})
    assert_unauthorized(answer)
    # Nothing happens before authentication: not even a read of the route's items.
    assert WRITES.isdisjoint(world.dynamo_calls), world.dynamo_calls


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "Basic b3duZXI6cGFzc3dvcmQ=",
        "Token {token}",
        "{token}",
        "Bearer {token} extra",
        "Bearer {token}x",
    ],
)
def test_malformed_authorization_headers_are_refused(world: World, authorization: str) -> None:
    header = authorization.format(token=world.users["owner"].access)
    answer = world.request("GET", "/users/profile", headers={"authorization": header})
    assert_unauthorized(answer)


def test_a_token_in_the_query_string_is_not_a_bearer_token(world: World) -> None:
    token = world.users["owner"].access
    assert_unauthorized(world.request("GET", f"/users/profile?token={token}"))
    assert_unauthorized(world.request("GET", f"/users/profile?access_token={token}"))


# ---- forged and altered tokens ------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hand_made(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A token with exactly this header and these claims, HMAC-SHA256 signed with `key`
    whatever `alg` says (no signature without a key)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest() if key else b""
    return f"{signing_input}.{_b64(signature)}"


class Forge:
    """What a forger could start from: a real token, and the real key."""

    def __init__(self, world: World) -> None:
        self.token = world.login("member")["access_token"]
        self.refresh = world.login("member")["refresh_token"]
        self.header = jwt.get_unverified_header(self.token)
        self.claims = jwt.decode(self.token, options={"verify_signature": False})
        self.key = (
            boto3.client("secretsmanager", region_name=REGION)
            .get_secret_value(SecretId=world.settings.jwt_secret_id)["SecretString"]
            .encode()
        )
        self.world = world

    def signed(self, *, drop: tuple[str, ...] = (), **changes: Any) -> str:
        claims = {k: v for k, v in {**self.claims, **changes}.items() if k not in drop}
        return hand_made(self.header, claims, self.key)


@pytest.fixture(scope="module")
def forge(world: World) -> Forge:
    return Forge(world)


def _flip_signature(f: Forge) -> str:
    head, body, signature = f.token.split(".")
    raw = bytearray(_unb64(signature))
    raw[0] ^= 1
    return f"{head}.{body}.{_b64(bytes(raw))}"


def _tampered_claims(f: Forge) -> str:
    head, _, signature = f.token.split(".")
    claims = {**f.claims, "sub": f.world.users["owner"].id}
    return f"{head}.{_b64(json.dumps(claims).encode())}.{signature}"


def _header(f: Forge, **changes: Any) -> str:
    header = {k: v for k, v in {**f.header, **changes}.items() if v is not None}
    return hand_made(header, f.claims, f.key)


FORGERIES: dict[str, Callable[[Forge], str]] = {
    # Without the key.
    "signature flipped": _flip_signature,
    "claims changed, signature kept": _tampered_claims,
    "signed with another key": lambda f: hand_made(f.header, f.claims, b"guessed-" * 4),
    "alg none, no signature": lambda f: hand_made({**f.header, "alg": "none"}, f.claims, None),
    "alg None spelled otherwise": lambda f: hand_made({**f.header, "alg": "None"}, f.claims, None),
    "three dots": lambda f: f.token + ".x",
    "not a JWT": lambda f: "not-a-token",
    "empty parts": lambda f: "..",
    # With the key, but another algorithm or key id.
    "alg RS256 (HS/RS confusion)": lambda f: _header(f, alg="RS256"),
    "alg HS512": lambda f: _header(f, alg="HS512"),
    "alg hs256 lower case": lambda f: _header(f, alg="hs256"),
    "kid missing": lambda f: _header(f, kid=None),
    "kid unknown": lambda f: _header(f, kid="00000000-0000-0000-0000-000000000000"),
    "kid path traversal": lambda f: _header(f, kid="../../../../etc/passwd"),
    "kid not a string": lambda f: _header(f, kid=1),
    "jku naming the forger's key": lambda f: hand_made(
        {**f.header, "jku": "https://evil.example/keys.json"}, f.claims, b"forger-key" * 4
    ),
    # With the key and header, but claims that are off.
    "expired": lambda f: f.signed(exp=int(time.time()) - 60),
    "exp not a number": lambda f: f.signed(exp="tomorrow"),
    "exp huge": lambda f: f.signed(exp=10**30),
    "issuer other": lambda f: f.signed(iss="someone-else"),
    "audience other": lambda f: f.signed(aud="another-api"),
    "a refresh type": lambda f: f.signed(typ="refresh"),
    "typ missing": lambda f: f.signed(drop=("typ",)),
    "sub missing": lambda f: f.signed(drop=("sub",)),
    "sid missing": lambda f: f.signed(drop=("sid",)),
    "jti missing": lambda f: f.signed(drop=("jti",)),
    "exp missing": lambda f: f.signed(drop=("exp",)),
    "iat missing": lambda f: f.signed(drop=("iat",)),
    "iss missing": lambda f: f.signed(drop=("iss",)),
    "aud missing": lambda f: f.signed(drop=("aud",)),
    # Signed right, but naming a session that is not this user's, or none.
    "another user's id on this session": lambda f: f.signed(sub=f.world.users["owner"].id),
    "a session that does not exist": lambda f: f.signed(sid="01HZZZZZZZZZZZZZZZZZZZZZZZ"),
}


@pytest.mark.parametrize("name", FORGERIES)
def test_forged_or_altered_access_tokens_are_refused(world: World, forge: Forge, name: str) -> None:
    assert world.request("GET", "/users/profile", token=forge.token).status == 200
    token = FORGERIES[name](forge)
    assert_unauthorized(world.request("GET", "/users/profile", token=token))
    assert_unauthorized(world.request("POST", "/tasks", {"title": "x"}, token=token))


def test_the_two_token_types_are_not_interchangeable(world: World) -> None:
    tokens = world.login("member")
    assert_unauthorized(world.request("GET", "/users/profile", token=tokens["refresh_token"]))
    answer = world.request("POST", "/auth/refresh", {"refresh_token": tokens["access_token"]})
    assert_unauthorized(answer)
    # Neither attempt harmed the session.
    assert world.request("GET", "/users/profile", token=tokens["access_token"]).status == 200
    refreshed = world.request("POST", "/auth/refresh", {"refresh_token": tokens["refresh_token"]})
    assert refreshed.status == 200


# ---- sessions end when they should --------------------------------------------------------------


def test_logout_ends_the_access_and_refresh_tokens_at_once(world: World) -> None:
    session = world.login("member")
    assert world.request("POST", "/auth/logout", {}, token=session["access_token"]).status == 204
    assert_unauthorized(world.request("GET", "/users/profile", token=session["access_token"]))
    assert_unauthorized(
        world.request("POST", "/auth/refresh", {"refresh_token": session["refresh_token"]})
    )
    # A second logout with the dead token is refused too; other sessions live on.
    assert_unauthorized(world.request("POST", "/auth/logout", {}, token=session["access_token"]))
    assert world.as_("member", "GET", "/users/profile").status == 200


def test_logout_can_end_another_session_of_ones_own(world: World) -> None:
    phone, laptop = world.login("member"), world.login("member")
    answer = world.request(
        "POST",
        "/auth/logout",
        {"refresh_token": laptop["refresh_token"]},
        token=phone["access_token"],
    )
    assert answer.status == 204
    for session in (phone, laptop):
        assert_unauthorized(world.request("GET", "/users/profile", token=session["access_token"]))


def test_a_replayed_refresh_token_revokes_its_whole_session(world: World) -> None:
    first = world.login("member")
    second = world.request("POST", "/auth/refresh", {"refresh_token": first["refresh_token"]}).json
    third = world.request("POST", "/auth/refresh", {"refresh_token": second["refresh_token"]}).json
    assert world.request("GET", "/users/profile", token=third["access_token"]).status == 200
    # Someone replays the first (stolen) refresh token: refused, and the family is revoked.
    assert_unauthorized(
        world.request("POST", "/auth/refresh", {"refresh_token": first["refresh_token"]})
    )
    for token in (first["access_token"], second["access_token"], third["access_token"]):
        assert_unauthorized(world.request("GET", "/users/profile", token=token))
    assert_unauthorized(
        world.request("POST", "/auth/refresh", {"refresh_token": third["refresh_token"]})
    )
    # The user's other sessions are not this session's family.
    assert world.as_("member", "GET", "/users/profile").status == 200


def test_a_password_change_ends_every_other_session(world: World) -> None:
    user = world.register("changer")
    other = world.login("changer")
    new_password = "another long passphrase"
    wrong = world.request(
        "PATCH",
        "/users/profile",
        {"password": new_password, "current_password": "not it at all"},
        token=user.access,
    )
    assert_unauthorized(wrong)
    assert world.request("GET", "/users/profile", token=other["access_token"]).status == 200
    changed = world.request(
        "PATCH",
        "/users/profile",
        {"password": new_password, "current_password": PASSWORD},
        token=user.access,
    )
    assert changed.status == 200, changed
    assert world.request("GET", "/users/profile", token=user.access).status == 200
    assert_unauthorized(world.request("GET", "/users/profile", token=other["access_token"]))
    assert_unauthorized(
        world.request("POST", "/auth/refresh", {"refresh_token": other["refresh_token"]})
    )
    old = world.request("POST", "/auth/login", {"email": user.email, "password": PASSWORD})
    assert_unauthorized(old)


def test_a_password_change_needs_the_current_password(world: World) -> None:
    answer = world.as_("member", "PATCH", "/users/profile", {"password": "a new passphrase"})
    assert answer.status == 422, answer


# ---- credentials --------------------------------------------------------------------------------


def _login(world: World, email: str, password: str) -> Answer:
    return world.request("POST", "/auth/login", {"email": email, "password": password})


def test_unknown_emails_and_wrong_passwords_answer_alike(world: World) -> None:
    user = world.register("alike")
    wrong = _login(world, user.email, "wrong password!")
    unknown = _login(world, "nobody-at-all@example.com", "wrong password!")
    assert_unauthorized(wrong)
    assert_unauthorized(unknown)
    assert wrong.json["error"]["message"] == unknown.json["error"]["message"]


def test_five_failed_logins_lock_the_email_even_for_the_right_password(world: World) -> None:
    victim = world.register("victim")
    bystander = world.register("bystander")
    for attempt in range(5):
        # The lock counts the address whatever its case or surrounding spaces.
        email = victim.email.upper() if attempt % 2 else f"  {victim.email}  "
        assert_unauthorized(_login(world, email, f"guess number {attempt}"))
    locked = _login(world, victim.email, PASSWORD)
    assert locked.status == 429, locked
    assert locked.code == "rate_limited"
    assert 0 < int(locked.header("Retry-After") or "0") <= 15 * 60
    # Another address is not affected, and the victim's sessions still work.
    assert _login(world, bystander.email, PASSWORD).status == 200
    assert world.request("GET", "/users/profile", token=victim.access).status == 200


def test_unknown_emails_lock_the_same_way(world: World) -> None:
    """So the lock does not reveal which addresses have accounts."""
    email = "ghost-account@example.com"
    for attempt in range(5):
        assert_unauthorized(_login(world, email, f"guess number {attempt}"))
    assert _login(world, email, PASSWORD).status == 429


def test_registration_cannot_take_an_address_in_another_case(world: World) -> None:
    email = world.users["member"].email.upper()
    answer = world.request(
        "POST", "/auth/register", {"email": email, "password": PASSWORD, "name": "Twin"}
    )
    assert answer.status == 409, answer
    assert answer.code == "conflict"
