"""JWT access and refresh tokens (PyJWT, HS256, algorithms pinned), signed with rotating keys.

Every token names the key that signed it in its header (`kid`: the Secrets Manager version id
of the key, never the key itself). Tokens are signed with the current key and verified with the
key their `kid` names, as long as the key source still has it (the current or the previous
version, see `docs/keys.md`): a rotation leaves tokens already issued valid until they expire.
A token without `kid`, or naming a key that is gone, is refused like a forged one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.model import new_id
from chalicelib.ports import Clock, SigningKeys

ALGORITHM = "HS256"
LEEWAY = timedelta(seconds=5)
TokenType = Literal["access", "refresh"]


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    session_id: str
    jti: str
    expires_at: datetime
    personal_project_id: str = ""


class TokenCodec:
    def __init__(
        self,
        keys: SigningKeys,
        clock: Clock,
        issuer: str,
        audience: str,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
    ) -> None:
        self._keys = keys  # read lazily: the first token, not the import, reads the secret
        self._clock = clock
        self._issuer = issuer
        self._audience = audience
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl

    def issue(
        self,
        kind: TokenType,
        user_id: str,
        session_id: str,
        jti: str | None = None,
        personal_project_id: str = "",
    ) -> str:
        now = self._clock.now()
        ttl = self.access_ttl if kind == "access" else self.refresh_ttl
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": user_id,
            "sid": session_id,
            "jti": jti or new_id(),
            "typ": kind,
            # Immutable, and where a task without project_id goes: no read needed to find it.
            "ppid": personal_project_id,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + ttl).timestamp()),
        }
        key = self._keys.current()
        # PyJWT is imported on the first token, not at import time: functions that never see
        # a token (scheduler, state machine, streams) do not load it (bench/coldstart.py).
        import jwt

        return jwt.encode(claims, key.secret, algorithm=ALGORITHM, headers={"kid": key.kid})

    def decode(self, token: str | None, kind: TokenType) -> TokenClaims:
        if not token:
            raise Unauthorized("missing token")
        import jwt  # on first use, see issue()

        # One parse: PyJWT reads the header, payload and signature once, and asks `_key_for`
        # for the key of the header's kid before it checks the signature (_decoder()).
        try:
            claims: dict[str, Any] = _decoder().decode(
                token, self._key_for, self._audience, self._issuer
            )
            expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        except (jwt.PyJWTError, TypeError, ValueError, OverflowError):
            raise Unauthorized("token is not valid") from None
        if claims.get("typ") != kind:
            raise Unauthorized("token is not valid")
        if expires_at <= self._clock.now() - LEEWAY:
            raise Unauthorized("token expired")
        return TokenClaims(
            user_id=str(claims["sub"]),
            session_id=str(claims["sid"]),
            jti=str(claims["jti"]),
            expires_at=expires_at,
            personal_project_id=str(claims.get("ppid") or ""),
        )

    def _key_for(self, header: dict[str, Any]) -> str:
        """The secret of the key the (parsed, not yet verified) header names."""
        import jwt

        kid = header.get("kid")
        # A token of another algorithm (`none`, RS256, ...) or without a sensible kid is refused
        # before any key is looked up; PyJWT checks `alg` again with the signature.
        if header.get("alg") != ALGORITHM or not isinstance(kid, str) or not 0 < len(kid) <= 128:
            raise jwt.InvalidTokenError("no usable alg or kid")
        # Looking the key up may read Secrets Manager (an unknown kid: at most one refresh,
        # rate-limited); its failures stay 503s, never a 401 (PyJWT lets them through).
        key = self._keys.find(kid)
        if key is None:
            raise jwt.InvalidTokenError("unknown kid")
        return key.secret


KeyForHeader = Callable[[dict[str, Any]], str]


class _Decoder(Protocol):
    def decode(
        self, token: str, key_for: KeyForHeader, audience: str, issuer: str
    ) -> dict[str, Any]: ...


@functools.cache
def _decoder() -> _Decoder:
    """PyJWT's decoder, verifying with the key the token's own header names, in one parse.

    `jwt.get_unverified_header()` then `jwt.decode()` would parse the token twice (base64 and
    JSON of every segment, each time). PyJWT offers no key resolver, so its JWS layer is
    extended at the one point where the parsed header meets the key: the key it is handed is
    `key_for`, called with that header. The rest (signature, `alg` pinned to HS256, required
    claims, `aud` and `iss`) is PyJWT's own checking. Built on the first token: PyJWT is not
    loaded before (see issue()).
    """
    import jwt
    from jwt.algorithms import HMACAlgorithm
    from jwt.api_jws import PyJWS

    class CheckedOnceHMAC(HMACAlgorithm):
        """PyJWT's HS256, whose checks of a secret (not empty, not a PEM, SSH, DER or JWK
        key: ~7 µs, run on every verification) run once per secret. Only secrets that passed
        are kept, and a key source has two at a time (the current and the previous)."""

        def __init__(self) -> None:
            super().__init__(HMACAlgorithm.SHA256)
            self._checked: dict[str | bytes, bytes] = {}

        def prepare_key(self, key: str | bytes) -> bytes:
            prepared = self._checked.get(key)
            if prepared is None:
                prepared = super().prepare_key(key)  # raises for a key it refuses
                if len(self._checked) >= 8:
                    self._checked.clear()
                self._checked[key] = prepared
            return prepared

    class KeyByKidJWS(PyJWS):
        def _verify_signature(
            self,
            signing_input: bytes,
            header: dict[str, Any],
            signature: bytes,
            key: Any = "",
            *args: Any,
            **kwargs: Any,
        ) -> None:
            if not callable(key):
                raise jwt.InvalidKeyError("a key_for(header) function is needed")
            super()._verify_signature(
                signing_input, header, signature, key(header), *args, **kwargs
            )

    class Decoder(jwt.PyJWT):
        def __init__(self) -> None:
            super().__init__(
                options={
                    "require": ["exp", "iat", "iss", "aud", "sub", "jti", "sid", "typ"],
                    # Expiry is checked in TokenCodec.decode against our Clock, so tests can
                    # move time.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                }
            )
            self._jws = KeyByKidJWS(algorithms=[ALGORITHM], options=self._jws.options)
            self._jws.unregister_algorithm(ALGORITHM)
            self._jws.register_algorithm(ALGORITHM, CheckedOnceHMAC())

        def decode(  # type: ignore[override]
            self, token: str, key_for: KeyForHeader, audience: str, issuer: str
        ) -> dict[str, Any]:
            return super().decode(
                token,
                key_for,  # type: ignore[arg-type]  # called by KeyByKidJWS with the header
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=issuer,
            )

    return Decoder()
