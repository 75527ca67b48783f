"""HTTP API: Chalice blueprints, the error mapping and the OpenAPI document."""

from __future__ import annotations

from chalice import Chalice


def register_api(app: Chalice) -> None:
    """Register every blueprint and middleware on `app`."""
    from chalicelib.api import routes  # noqa: F401  (filled in below)
