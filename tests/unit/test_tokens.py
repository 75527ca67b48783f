"""TokenCodec with rotating keys: kid in the header, verification by kid, algorithms pinned."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.domain.errors import Unauthorized
from chalicelib.ports import SigningKey
from chalicelib.services.tokens import TokenCodec
from tests.fakes import FakeClock, FakeSigningKeys
from tests.unit.conftest import make_tokens


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _hand_signed(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    """A token with exactly this header, HMAC-SHA256-signed with `key` whatever `alg` says."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def test_tokens_name_the_current_key_in_their_header(
    codec: TokenCodec, keys: FakeSigningKeys
) -> None:
    token = codec.issue("access", "u1", "s1")
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "typ": "JWT", "kid": "v1"}
    assert keys.current().secret not in token
    assert codec.decode(token, "access").user_id == "u1"
    assert keys.lookups == ["v1"]


def test_a_token_verifies_with_the_key_its_kid_names(clock: FakeClock) -> None:
    keys = FakeSigningKeys()
    older = make_tokens(clock, keys).issue("access", "u1", "s1")
    keys.rotate()
    newer = make_tokens(clock, keys).issue("access", "u2", "s2")
    codec = make_tokens(clock, keys)
    assert codec.decode(older, "access").user_id == "u1"
    assert codec.decode(newer, "access").user_id == "u2"
    assert keys.lookups == ["v1", "v2"]


def test_after_a_rotation_new_tokens_carry_the_new_kid_and_old_ones_still_verify(
    codec: TokenCodec, keys: FakeSigningKeys
) -> None:
    access = codec.issue("access", "u1", "s1")
    refresh = codec.issue("refresh", "u1", "s1")
    keys.rotate()
    assert jwt.get_unverified_header(codec.issue("access", "u1", "s1"))["kid"] == "v2"
    assert codec.decode(access, "access").user_id == "u1"
    assert codec.decode(refresh, "refresh").user_id == "u1"


def test_a_key_two_rotations_old_verifies_nothing(
    codec: TokenCodec, keys: FakeSigningKeys, clock: FakeClock
) -> None:
    refresh = codec.issue("refresh", "u1", "s1")
    keys.rotate()
    clock.advance(days=29)  # still unexpired: refused for its key alone
    keys.rotate()
    with pytest.raises(Unauthorized):
        codec.decode(refresh, "refresh")


def test_an_unknown_kid_is_refused(codec: TokenCodec, keys: FakeSigningKeys) -> None:
    claims = _claims(codec.issue("access", "u1", "s1"))
    forged = jwt.encode(claims, keys.current().secret, algorithm="HS256", headers={"kid": "v9"})
    with pytest.raises(Unauthorized):
        codec.decode(forged, "access")
    assert keys.lookups == ["v9"]


@pytest.mark.parametrize("kid", [None, "", 7, ["v1"], "v" * 129])
def test_a_token_without_a_proper_kid_is_refused_without_a_lookup(
    codec: TokenCodec, keys: FakeSigningKeys, kid: Any
) -> None:
    claims = _claims(codec.issue("access", "u1", "s1"))
    header = {"alg": "HS256", "typ": "JWT"} | ({} if kid is None else {"kid": kid})
    token = _hand_signed(header, claims, keys.current().secret.encode())
    with pytest.raises(Unauthorized):
        codec.decode(token, "access")
    assert keys.lookups == []


def test_alg_none_is_refused(codec: TokenCodec, keys: FakeSigningKeys) -> None:
    claims = _claims(codec.issue("access", "u1", "s1"))
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "v1"})
    with pytest.raises(Unauthorized):
        codec.decode(unsigned, "access")
    # Spelled differently, and with the right HMAC appended: still refused.
    for alg in ("None", "NONE"):
        with pytest.raises(Unauthorized):
            codec.decode(_hand_signed({"alg": alg, "kid": "v1"}, claims, b""), "access")
    assert keys.lookups == []


def test_other_algorithms_are_refused_even_with_the_right_key(
    codec: TokenCodec, keys: FakeSigningKeys
) -> None:
    claims = _claims(codec.issue("access", "u1", "s1"))
    secret = keys.current().secret
    for alg in ("HS384",):
        token = jwt.encode(claims, secret, algorithm=alg, headers={"kid": "v1"})
        with pytest.raises(Unauthorized):
            codec.decode(token, "access")


def test_rs_hs_confusion_is_refused(codec: TokenCodec, keys: FakeSigningKeys) -> None:
    claims = _claims(codec.issue("access", "u1", "s1"))
    # An RS256 token from someone's own RSA key, naming our kid.
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthorized):
        codec.decode(
            jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": "v1"}), "access"
        )
    # A header claiming RS256 over a signature that is our HMAC: `alg` decides, not the key.
    confused = _hand_signed({"alg": "RS256", "kid": "v1"}, claims, keys.current().secret.encode())
    with pytest.raises(Unauthorized):
        codec.decode(confused, "access")
    assert keys.lookups == []


def test_an_expired_token_is_refused(codec: TokenCodec, clock: FakeClock) -> None:
    token = codec.issue("access", "u1", "s1")
    clock.advance(minutes=15, seconds=6)  # past expiry and the 5 s leeway
    with pytest.raises(Unauthorized, match="expired"):
        codec.decode(token, "access")


def test_a_signature_by_another_key_under_a_known_kid_is_refused(
    codec: TokenCodec, clock: FakeClock
) -> None:
    other = make_tokens(clock, FakeSigningKeys("another-deployment-key-0123456789abcdef"))
    with pytest.raises(Unauthorized):
        codec.decode(other.issue("access", "u1", "s1"), "access")  # same kid "v1"


def test_keys_are_read_when_used_not_when_built(clock: FakeClock) -> None:
    class Exploding:
        def current(self) -> SigningKey:
            raise AssertionError("read at construction")

        def find(self, kid: str) -> SigningKey | None:
            raise AssertionError("read at construction")

    TokenCodec(
        Exploding(), clock, "taskbeat", "taskbeat-api", timedelta(minutes=15), timedelta(days=30)
    )


def test_a_token_is_parsed_once(
    codec: TokenCodec, keys: FakeSigningKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of the three segments goes through PyJWT's base64url decoding once: reading the
    header for its kid does not parse the token a second time (issue 16's warm path)."""
    import jwt.api_jws

    token = codec.issue("access", "u1", "s1")
    real = jwt.api_jws.base64url_decode
    decoded: list[bytes] = []

    def spy(data: str | bytes) -> bytes:
        decoded.append(data if isinstance(data, bytes) else data.encode())
        return real(data)

    monkeypatch.setattr(jwt.api_jws, "base64url_decode", spy)
    assert codec.decode(token, "access").user_id == "u1"
    assert sorted(decoded) == sorted(segment.encode() for segment in token.split("."))
    assert keys.lookups == ["v1"]


def test_a_secret_is_checked_once_not_at_every_verification(
    codec: TokenCodec, keys: FakeSigningKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jwt.algorithms import HMACAlgorithm

    tokens = [codec.issue("access", f"u{n}", "s1") for n in range(3)]
    keys.rotate()
    tokens.append(codec.issue("access", "u3", "s1"))  # signed with the new key
    real = HMACAlgorithm.prepare_key
    checked: list[str | bytes] = []

    def spy(self: HMACAlgorithm, key: str | bytes) -> bytes:
        checked.append(key)
        return real(self, key)

    monkeypatch.setattr(HMACAlgorithm, "prepare_key", spy)
    for _ in range(2):
        assert [codec.decode(t, "access").user_id for t in tokens] == ["u0", "u1", "u2", "u3"]
    # Each secret at most once (the first may have been checked by an earlier test).
    assert len(checked) == len(set(checked)) <= 2


@pytest.mark.parametrize(
    "secret",
    [
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0\n-----END PUBLIC KEY-----",
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC",
        '{"kty": "oct", "k": "c2VjcmV0"}',
    ],
)
def test_a_secret_pyjwt_refuses_is_refused_every_time(clock: FakeClock, secret: str) -> None:
    codec = make_tokens(clock, FakeSigningKeys(secret))
    claims = _claims(make_tokens(clock).issue("access", "u1", "s1"))
    token = _hand_signed({"alg": "HS256", "typ": "JWT", "kid": "v1"}, claims, secret.encode())
    for _ in range(2):
        with pytest.raises(Unauthorized):
            codec.decode(token, "access")
