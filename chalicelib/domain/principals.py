"""Who is calling: the principal a request's access token (or API token) names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    user_id: str
    session_id: str
    personal_project_id: str = ""
    # What an API token may do (`chalicelib.domain.api_tokens.Scope` values); None for a
    # session (a JWT): everything its user may.
    scopes: frozenset[str] | None = None
    # The API token's id, and the minute it was last used as stored (to write it at most once
    # a minute); empty for a session.
    token_id: str = ""
    token_used_at: datetime | None = None

    @property
    def via_api_token(self) -> bool:
        return self.scopes is not None
