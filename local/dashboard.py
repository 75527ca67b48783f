"""The web dashboard's static files (`web/dist`, built by `make run`) at `/app` on the local
REST server, plus a generated `/app/config.json` naming this stack's API and WebSocket.

- `/app`, `/app/` and any other `/app/...` path that names no file and looks like a page (no
  file extension) answer `index.html`: the single-page app routes by itself.
- Vite's hashed files under `/app/assets/` are cached for a year (`immutable`); `index.html`
  is `no-cache` (revalidated each time, so a new build shows at once), `config.json`
  `no-store`.
- Every answer carries the security headers of the API's answers, with a Content-Security-
  Policy that lets the page load its own scripts and styles and talk to this API and its
  WebSocket only.
- Without a build, `/app` answers 503 with a page saying how to build it; nothing crashes.
"""

from __future__ import annotations

import json
import mimetypes
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from chalicelib.api.middleware import SECURITY_HEADERS

PREFIX = "/app"
DIST_ENV = "TASKBEAT_DASHBOARD_DIR"
DEFAULT_DIST = Path(__file__).resolve().parents[1] / "web" / "dist"

LONG_CACHE = "public, max-age=31536000, immutable"
# A Host header is only echoed back (into config.json and the CSP) when it is a plain
# host[:port]; anything else falls back to the server's own address.
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".webmanifest": "application/manifest+json",
    ".map": "application/json",
    ".woff2": "font/woff2",
}

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Taskbeat dashboard not built</title></head>
<body><h1>The dashboard is not built</h1>
<p>Its files are made from <code>web/</code> into <code>web/dist</code>: run <code>make run</code>
(which builds it first) or <code>make web</code>, then reload this page.</p>
</body></html>
"""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Dashboard:
    """Answers `/app...` requests. `ws_port` is the stack's WebSocket port; `dist` defaults to
    `$TASKBEAT_DASHBOARD_DIR` or `web/dist`."""

    ws_port: int
    dist: Path = field(default_factory=lambda: Path(os.environ.get(DIST_ENV) or DEFAULT_DIST))

    @staticmethod
    def handles(path: str) -> bool:
        return path == PREFIX or path.startswith(PREFIX + "/")

    def answer(self, method: str, path: str, host: str | None, server_host: str) -> Answer:
        """The answer to `method path` (path without the query), `host` the request's Host."""
        host = host if host and _HOST.match(host) else server_host
        if method not in ("GET", "HEAD"):
            return self._text(405, "Method not allowed\n", host, {"Allow": "GET, HEAD"})
        relative = unquote(path[len(PREFIX) :]).lstrip("/")
        if relative == "config.json":
            body = json.dumps(self.config(host), indent=2).encode()
            return self._answer(200, "application/json", body, "no-store", host, method)
        root = self.dist.resolve()
        index = root / "index.html"
        if not index.is_file():
            return self._answer(503, _TYPES[".html"], NOT_BUILT.encode(), "no-store", host, method)
        target = (root / relative).resolve() if relative else index
        if target.is_relative_to(root) and target.is_file():
            cache = LONG_CACHE if relative.startswith("assets/") else "no-cache"
            return self._answer(
                200, _content_type(target), target.read_bytes(), cache, host, method
            )
        last = relative.rsplit("/", 1)[-1]
        if relative.startswith("assets/") or "." in last:
            return self._text(404, f"Not found: {path}\n", host)
        # A page of the single-page app: it routes by itself.
        return self._answer(200, _TYPES[".html"], index.read_bytes(), "no-cache", host, method)

    def config(self, host: str) -> dict[str, str]:
        return {"api_url": f"http://{host}/api/v1", "ws_url": f"ws://{self._ws_host(host)}"}

    def content_security_policy(self, host: str) -> str:
        return "; ".join(
            [
                "default-src 'self'",
                "script-src 'self'",
                "style-src 'self'",
                "img-src 'self' data:",
                f"connect-src 'self' ws://{self._ws_host(host)}",
                "base-uri 'none'",
                "form-action 'self'",
                "object-src 'none'",
                "frame-ancestors 'none'",
            ]
        )

    def _ws_host(self, host: str) -> str:
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return f"{name}:{self.ws_port}"

    def _text(
        self, status: int, text: str, host: str, extra: dict[str, str] | None = None
    ) -> Answer:
        answer = self._answer(status, _TYPES[".txt"], text.encode(), "no-store", host, "GET")
        answer.headers.update(extra or {})
        return answer

    def _answer(
        self, status: int, content_type: str, body: bytes, cache: str, host: str, method: str
    ) -> Answer:
        headers = {
            **SECURITY_HEADERS,
            "Content-Security-Policy": self.content_security_policy(host),
            "Cache-Control": cache,
            "Content-Type": content_type,
            "Content-Length": str(len(body)),
        }
        return Answer(status, headers, b"" if method == "HEAD" else body)


def _content_type(path: Path) -> str:
    known = _TYPES.get(path.suffix.lower())
    if known:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"
