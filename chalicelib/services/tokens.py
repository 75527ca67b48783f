"""JWT access and refresh tokens (PyJWT, HS256, algorithms pinned), signed with rotating keys.

Every token names the key that signed it in its header (`kid`: the Secrets Manager version id
of the key, never the key itself). Tokens are signed with the current key and verified with the
key their `kid` names, as long as the key source still has it (the current or the previous
version, see `docs/keys.md`): a rotation leaves tokens already issued valid until they expire.
A token without `kid`, or naming a key that is gone, is refused like a forged one.

Access tokens that verified are remembered (`TokenCodec`), so that a client's every request
does not pay PyJWT's parsing and HMAC again; see the class for why that is safe.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.model import new_id
from chalicelib.ports import Clock, SigningKey, SigningKeys

ALGORITHM = "HS256"
LEEWAY = timedelta(seconds=5)
TokenType = Literal["access", "refresh"]
# Access tokens remembered per codec (one per container): ~1 KB each with the token string,
# 1 MB at most. Beyond this the oldest remembered goes first (the first to expire too: every
# access token lives as long).
VERIFIED_TOKENS_MAX = 1024


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    session_id: str
    jti: str
    expires_at: datetime
    personal_project_id: str = ""


@dataclass(frozen=True, slots=True)
class _Verified:
    """What verifying an access token produced: its claims, its type, and the key that
    verified its signature."""

    claims: TokenClaims
    typ: str
    key: SigningKey


class TokenCodec:
    """Issues and verifies the API's tokens.

    Verified access tokens are remembered (at most VERIFIED_TOKENS_MAX; the oldest goes
    first), keyed by the exact token string, so a client's later requests skip PyJWT (parsing,
    HMAC-SHA256, claim checks: ~50 µs of every authenticated request). This is safe because
    what a verification finds depends on the string, the key and the time alone:

    - the same string has the same header, claims and signature: only a string that verified
      is found, and any other string (another signature, however alike its claims) is
      verified in full. Only successful verifications are remembered; a failure never is, so
      no token can be made to pass by being presented first;
    - audience and issuer are the codec's own, and the claims are kept as they were checked;
    - what can change is checked again on every use, as a verification would: the expiry
      against the codec's clock with the same leeway, the token type the caller asks for, and
      that the key that verified the signature is still the one the key source has under the
      token's kid (`SigningKeys.find`, the key source's own cache: no read beyond what a
      verification would make). A key that has left the key set stops verifying its tokens,
      remembered or not; a token that fails these checks is forgotten.

    Refresh tokens are never remembered: each is presented once per rotation. Revocation
    (logout, a deactivated user, a replayed refresh token) is a session's, checked against
    the session store on every request (AuthService.authenticate), never by the token.
    """

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
        # Read without the lock (one dict lookup); changed under it.
        self._verified: dict[str, _Verified] = {}
        self._verified_lock = threading.Lock()

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
        if kind == "access":
            remembered = self._verified.get(token)
            if remembered is not None:
                return self._still_valid(token, remembered, kind)
        import jwt  # on first use, see issue()

        used: list[SigningKey] = []

        def key_for(header: dict[str, Any]) -> str:
            key = self._key_for(header)
            used.append(key)
            return key.secret

        # One parse: PyJWT reads the header, payload and signature once, and asks `key_for`
        # for the key of the header's kid before it checks the signature (_decoder()).
        try:
            claims: dict[str, Any] = _decoder().decode(token, key_for, self._audience, self._issuer)
            expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        except (jwt.PyJWTError, TypeError, ValueError, OverflowError):
            raise Unauthorized("token is not valid") from None
        if claims.get("typ") != kind:
            raise Unauthorized("token is not valid")
        if expires_at <= self._clock.now() - LEEWAY:
            raise Unauthorized("token expired")
        verified = TokenClaims(
            user_id=str(claims["sub"]),
            session_id=str(claims["sid"]),
            jti=str(claims["jti"]),
            expires_at=expires_at,
            personal_project_id=str(claims.get("ppid") or ""),
        )
        if kind == "access":  # refresh tokens are used once: remembering them buys nothing
            self._remember(token, _Verified(verified, kind, used[-1]))
        return verified

    def _still_valid(self, token: str, verified: _Verified, kind: TokenType) -> TokenClaims:
        """A remembered token's claims, after the checks whose outcome can have changed since
        it verified (in a verification's order: key, type, expiry)."""
        key = self._keys.find(verified.key.kid)  # the key source's cache, as a verification
        if key is None or key.secret != verified.key.secret:
            self._forget(token)
            raise Unauthorized("token is not valid")
        if verified.typ != kind:
            raise Unauthorized("token is not valid")
        if verified.claims.expires_at <= self._clock.now() - LEEWAY:
            self._forget(token)
            raise Unauthorized("token expired")
        return verified.claims

    def _remember(self, token: str, verified: _Verified) -> None:
        with self._verified_lock:
            if token not in self._verified and len(self._verified) >= VERIFIED_TOKENS_MAX:
                del self._verified[next(iter(self._verified))]  # the oldest
            self._verified[token] = verified

    def _forget(self, token: str) -> None:
        with self._verified_lock:
            self._verified.pop(token, None)

    def _key_for(self, header: dict[str, Any]) -> SigningKey:
        """The key the (parsed, not yet verified) header names."""
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
        return key


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
