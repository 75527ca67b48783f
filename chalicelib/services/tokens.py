"""JWT access and refresh tokens (PyJWT, HS256, algorithms pinned)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt

from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.model import new_id
from chalicelib.ports import Clock

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
        signing_key: Callable[[], str],
        clock: Clock,
        issuer: str,
        audience: str,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
    ) -> None:
        self._key = signing_key  # fetched lazily: the first token, not the import, reads the secret
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
        return jwt.encode(claims, self._key(), algorithm=ALGORITHM)

    def decode(self, token: str | None, kind: TokenType) -> TokenClaims:
        if not token:
            raise Unauthorized("missing token")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key(),
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
