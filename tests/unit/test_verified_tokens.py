"""TokenCodec remembers the access tokens it verified: what is checked again on every use, what
is never remembered, and the bound (issue 16's warm path)."""

from __future__ import annotations

import threading
from typing import Any

import jwt
import pytest

from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.users import LoginInput, ProfileUpdate, RefreshInput, RegisterInput
from chalicelib.ports import SigningKey
from chalicelib.services import tokens as tokens_module
from chalicelib.services.auth import AuthResult
from chalicelib.services.tokens import TokenCodec
from tests.fakes import FakeClock, FakeSigningKeys
from tests.unit.conftest import World, make_tokens


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens PyJWT verifies (in full: parse, signature, claims), in order."""
    real = tokens_module._decoder()
    seen: list[str] = []

    class Counting:
        def decode(self, token: str, key_for: Any, audience: str, issuer: str) -> dict[str, Any]:
            seen.append(token)
            return real.decode(token, key_for, audience, issuer)

    monkeypatch.setattr(tokens_module, "_decoder", lambda: Counting())
    return seen


def _remembered(codec: TokenCodec) -> list[str]:
    return list(codec._verified)


def test_a_verified_access_token_is_not_verified_again(
    codec: TokenCodec, keys: FakeSigningKeys, verified: list[str]
) -> None:
    token = codec.issue("access", "u1", "s1", personal_project_id="p1")
    first = codec.decode(token, "access")
    again = [codec.decode(token, "access") for _ in range(3)]
    assert again == [first] * 3
    assert (first.user_id, first.session_id, first.personal_project_id) == ("u1", "s1", "p1")
    assert verified == [token]
    # Its key is looked up on every use all the same (the key source's own cache).
    assert keys.lookups == ["v1"] * 4


def test_expiry_is_checked_at_every_use(
    codec: TokenCodec, clock: FakeClock, verified: list[str]
) -> None:
    token = codec.issue("access", "u1", "s1")
    codec.decode(token, "access")
    clock.advance(minutes=15, seconds=4)  # past expiry, within the 5 s leeway
    assert codec.decode(token, "access").user_id == "u1"
    clock.advance(seconds=2)
    for _ in range(2):
        with pytest.raises(Unauthorized, match="expired"):
            codec.decode(token, "access")
    assert _remembered(codec) == []
    assert verified == [token, token]  # forgotten after the first refusal: verified in full


def test_a_key_that_leaves_the_key_set_stops_verifying_remembered_tokens(
    codec: TokenCodec, keys: FakeSigningKeys, clock: FakeClock
) -> None:
    token = codec.issue("access", "u1", "s1")
    codec.decode(token, "access")
    keys.rotate()
    assert codec.decode(token, "access").user_id == "u1"  # the previous key still verifies
    keys.rotate()
    with pytest.raises(Unauthorized):
        codec.decode(token, "access")
    assert _remembered(codec) == []


class SwappableKeys:
    """A key source whose key under a kid can be replaced (Secrets Manager never does that:
    a version's id names one value for good; the codec does not rely on it)."""

    def __init__(self, secret: str) -> None:
        self.key = SigningKey(kid="v1", secret=secret)

    def current(self) -> SigningKey:
        return self.key

    def find(self, kid: str) -> SigningKey | None:
        return self.key if kid == self.key.kid else None


def test_a_remembered_token_is_refused_once_its_kid_names_another_secret(
    clock: FakeClock,
) -> None:
    keys = SwappableKeys("first-signing-key-that-is-long-enough-for-hs256")
    codec = make_tokens(clock, keys)  # type: ignore[arg-type]
    token = codec.issue("access", "u1", "s1")
    codec.decode(token, "access")
    keys.key = SigningKey(kid="v1", secret="second-signing-key-that-is-long-enough-for-hs256")
    with pytest.raises(Unauthorized):
        codec.decode(token, "access")


def test_the_type_asked_for_is_checked_on_a_remembered_token(codec: TokenCodec) -> None:
    token = codec.issue("access", "u1", "s1")
    codec.decode(token, "access")
    with pytest.raises(Unauthorized):
        codec.decode(token, "refresh")
    assert codec.decode(token, "access").user_id == "u1"


def _with_signature(token: str, signature: str) -> str:
    return token.rsplit(".", 1)[0] + "." + signature


def test_another_string_with_the_same_claims_is_verified_in_full(
    codec: TokenCodec, keys: FakeSigningKeys, clock: FakeClock, verified: list[str]
) -> None:
    token = codec.issue("access", "u1", "s1")
    codec.decode(token, "access")
    claims = jwt.decode(token, options={"verify_signature": False})
    signature = token.rsplit(".", 1)[1]
    # Same header and claims, a signature that is not theirs.
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    # Same claims, signed by another key under the same kid.
    foreign = jwt.encode(
        claims, "another-deployment-key-0123456789abcdef", algorithm="HS256", headers={"kid": "v1"}
    )
    # Same claims, signed with our key, but another string (the claims in another order).
    reordered = jwt.encode(
        dict(reversed(claims.items())),
        keys.current().secret,
        algorithm="HS256",
        headers={"kid": "v1"},
    )
    assert len({token, foreign, reordered}) == 3
    for forged in (_with_signature(token, flipped), foreign):
        with pytest.raises(Unauthorized):
            codec.decode(forged, "access")
    assert codec.decode(reordered, "access") == codec.decode(token, "access")
    assert verified == [token, _with_signature(token, flipped), foreign, reordered]
    assert _remembered(codec) == [token, reordered]


def test_a_failed_verification_is_never_remembered(
    codec: TokenCodec, keys: FakeSigningKeys, clock: FakeClock, verified: list[str]
) -> None:
    good = codec.issue("access", "u1", "s1")
    refresh = codec.issue("refresh", "u1", "s1")
    tampered = _with_signature(good, "A" * 43)
    unknown_kid = jwt.encode(
        jwt.decode(good, options={"verify_signature": False}),
        keys.current().secret,
        algorithm="HS256",
        headers={"kid": "v9"},
    )
    clock.advance(minutes=-20)
    not_yet_issued_but_expired = codec.issue("access", "u1", "s1")  # expired by now
    clock.advance(minutes=20)
    bad = [tampered, unknown_kid, refresh, not_yet_issued_but_expired]
    for _ in range(2):
        for token in bad:
            with pytest.raises(Unauthorized):
                codec.decode(token, "access")
    assert verified == bad * 2
    assert _remembered(codec) == []


def test_refresh_tokens_are_not_remembered(codec: TokenCodec, verified: list[str]) -> None:
    refresh = codec.issue("refresh", "u1", "s1")
    for _ in range(2):
        assert codec.decode(refresh, "refresh").user_id == "u1"
    assert verified == [refresh, refresh]
    assert _remembered(codec) == []


def test_at_most_the_bound_is_remembered_the_oldest_going_first(
    codec: TokenCodec, monkeypatch: pytest.MonkeyPatch, verified: list[str]
) -> None:
    monkeypatch.setattr(tokens_module, "VERIFIED_TOKENS_MAX", 3)
    issued = [codec.issue("access", f"u{n}", "s1") for n in range(5)]
    for token in issued:
        codec.decode(token, "access")
    assert _remembered(codec) == issued[2:]
    verified.clear()
    assert [codec.decode(t, "access").user_id for t in issued[2:]] == ["u2", "u3", "u4"]
    assert verified == []
    assert codec.decode(issued[0], "access").user_id == "u0"  # forgotten: verified again
    assert verified == [issued[0]]
    assert _remembered(codec) == [*issued[3:], issued[0]]


def test_the_bound_holds_with_threads(codec: TokenCodec, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens_module, "VERIFIED_TOKENS_MAX", 16)
    issued = [codec.issue("access", f"u{n}", "s1") for n in range(64)]
    failures: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(200):
                token = issued[(n * 7 + offset) % len(issued)]
                assert codec.decode(token, "access").user_id == f"u{issued.index(token)}"
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(_remembered(codec)) <= 16


# ---- revocation is the session's: a remembered token does not outlive its session ----------


PASSWORD = "correct horse battery"


def _register(world: World) -> AuthResult:
    return world.auth.register(
        RegisterInput(email="ada@example.com", password=PASSWORD, name="Ada")
    )


def test_logout_ends_a_remembered_access_token_at_once(world: World) -> None:
    access = _register(world).access_token
    principal = world.auth.authenticate(access)
    assert world.auth.authenticate(access) == principal
    assert access in world.tokens._verified  # remembered
    world.auth.logout(principal)
    with pytest.raises(Unauthorized, match="revoked"):
        world.auth.authenticate(access)


def test_a_password_change_ends_the_other_sessions_remembered_tokens(world: World) -> None:
    me = world.auth.authenticate(_register(world).access_token)
    other = world.auth.login(LoginInput(email="ada@example.com", password=PASSWORD))
    world.auth.authenticate(other.access_token)
    assert other.access_token in world.tokens._verified
    world.users.update_profile(
        me, ProfileUpdate(password="brand new password", current_password=PASSWORD)
    )
    with pytest.raises(Unauthorized, match="revoked"):
        world.auth.authenticate(other.access_token)


def test_a_replayed_refresh_token_ends_the_sessions_remembered_access_token(
    world: World,
) -> None:
    first = _register(world)
    world.auth.authenticate(first.access_token)
    second = world.auth.refresh(RefreshInput(refresh_token=first.refresh_token))
    world.auth.authenticate(second.access_token)
    with pytest.raises(Unauthorized):
        world.auth.refresh(RefreshInput(refresh_token=first.refresh_token))  # a replay
    for access in (first.access_token, second.access_token):
        assert access in world.tokens._verified
        with pytest.raises(Unauthorized, match="revoked"):
            world.auth.authenticate(access)
