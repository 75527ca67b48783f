"""/health, /openapi.json and /docs (Swagger UI served from the package: works offline)."""

from __future__ import annotations

from pathlib import Path

from chalicelib import bootstrap
from chalicelib.api import openapi
from chalicelib.api.routing import Call, Reply, route
from chalicelib.domain.errors import NotFound
from chalicelib.representations.schemas import HealthOut

TAG = "service"

# Copied here from the pinned swagger-ui-py wheel by `make assets` (not committed).
SWAGGER_UI_DIR = Path(__file__).parent / "static" / "swagger-ui"
SWAGGER_UI_ASSETS = {
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}

DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Taskbeat API</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true});
  </script>
</body>
</html>
"""


@route(
    "/health",
    "GET",
    tag=TAG,
    auth=False,
    summary="Liveness and dependency checks",
    response=HealthOut,
)
def health(call: Call) -> Reply:
    checks = bootstrap.container().health.check()
    healthy = all(value == "ok" for value in checks.values())
    body = HealthOut(
        status="ok" if healthy else "degraded", version=bootstrap.VERSION, checks=checks
    )
    return Reply(body, 200 if healthy else 503, {"Retry-After": "5"} if not healthy else {})


@route("/openapi.json", "GET", tag=TAG, auth=False, summary="This document")
def openapi_document(call: Call) -> Reply:
    return Reply(openapi.document(bootstrap.VERSION))


@route(
    "/docs",
    "GET",
    tag=TAG,
    auth=False,
    summary="Swagger UI",
    content_type="text/html; charset=utf-8",
)
def docs(call: Call) -> Reply:
    return Reply(DOCS_PAGE, headers={"Cache-Control": "no-cache"})


@route(
    "/docs/{asset}",
    "GET",
    tag=TAG,
    auth=False,
    summary="Swagger UI assets",
    content_type="text/plain",
    errors=(404,),
)
def docs_asset(call: Call) -> Reply:
    name = call.params["asset"]
    content_type = SWAGGER_UI_ASSETS.get(name)  # a fixed allow-list: no path ever reaches disk
    if content_type is None or not (SWAGGER_UI_DIR / name).is_file():
        raise NotFound("no such asset")
    return Reply(
        (SWAGGER_UI_DIR / name).read_text(encoding="utf-8"),
        headers={"Content-Type": content_type, "Cache-Control": "public, max-age=86400"},
    )
