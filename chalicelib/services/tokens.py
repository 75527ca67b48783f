"""JWT access and refresh tokens (PyJWT, HS256, algorithms pinned), signed with rotating keys.

Every token names the key that signed it in its header (`kid`: the Secrets Manager version id
of the key, never the key itself). Tokens are signed with the current key and verified with the
key their `kid` names, as long as the key source still has it (the current or the previous
version, see `docs/keys.md`): a rotation leaves tokens already issued valid until they expire.
A token without `kid`, or naming a key that is gone, is refused like a forged one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

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

        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, TypeError, ValueError):
            raise Unauthorized("token is not valid") from None
        kid = header.get("kid")
        # A token of another algorithm (`none`, RS256, ...) or without a sensible kid is refused
        # before any key is looked up; PyJWT checks `alg` again below with the signature.
        if header.get("alg") != ALGORITHM or not isinstance(kid, str) or not 0 < len(kid) <= 128:
            raise Unauthorized("token is not valid")
        # Looking the key up may read Secrets Manager (an unknown kid: at most one refresh,
        # rate-limited); its failures stay 503s, never a 401.
        key = self._keys.find(kid)
        if key is None:
            raise Unauthorized("token is not valid")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                # Expiry is checked below against our Clock, so tests can move time.
                options={
                    "require": ["exp", "iat", "iss", "aud", "sub", "jti", "sid", "typ"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
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
