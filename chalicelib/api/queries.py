"""Query-string models shared by list routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.model import PageRequest


class PageQuery(BaseModel):
    # Built on first use, like the request and response bodies (bench/coldstart.py).
    model_config = ConfigDict(extra="ignore", defer_build=True)

    limit: int = Field(25, ge=1, le=100, description="Items per page.")
    cursor: str | None = Field(
        None, max_length=2048, description="`next_cursor` of the previous page."
    )

    def page(self) -> PageRequest:
        return PageRequest(limit=self.limit, cursor=self.cursor)
