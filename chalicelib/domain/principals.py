"""Who is calling: the principal a request's access token names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    user_id: str
    session_id: str
    personal_project_id: str = ""
