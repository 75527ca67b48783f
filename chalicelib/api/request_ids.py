"""The request id every response, log line and error body carries."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalice.app import Request


def request_id_of(request: Request) -> str:
    """API Gateway's request id; one is made (and kept on the request) where there is none."""
    context = request.context if isinstance(request.context, dict) else {}
    if not context.get("requestId"):
        from chalicelib.domain.model import new_id  # rare: API Gateway always gives one

        context["requestId"] = new_id()
        request.context = context
    return str(context["requestId"])
