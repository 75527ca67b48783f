"""The baseline of the cold start and warm overhead figures: a bare Chalice app, one route."""

from __future__ import annotations

from chalice.app import Chalice

app = Chalice(app_name="bare")


@app.route("/v1/hello")
def hello() -> dict[str, str]:
    return {"hello": "world"}
