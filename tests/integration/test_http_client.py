"""The webhook client against a real HTTP server on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib.adapters.http import UrllibWebhookClient, _set_timeout, check_url_target
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.webhooks import WebhookRequest, signature_header


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    port: int
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(port=0)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
            if self.path.startswith("/slow"):
                state.release.wait(10)
            if self.path.startswith("/fail"):
                self._answer(500, b"boom")
            elif self.path.startswith("/redirect"):
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{state.port}/hook")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path.startswith("/big"):
                self._answer(200, b"a" * 1023 + "é".encode() + b"b" * 5000)
            else:
                self._answer(201, b"created " + body)

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_delivers_method_headers_and_body(server: Server) -> None:
    body = b'{"task":"T1"}'
    signature = signature_header("secret", 1_700_000_000, body)
    request = WebhookRequest(
        url=server.url("/hook?x=1"),
        method="PATCH",
        headers={
            "Content-Type": "application/json",
            "X-Taskbeat-Delivery": "E1-1",
            "X-Taskbeat-Signature": signature,
            "Authorization": "Bearer abc",
        },
        body=body,
        timeout_seconds=5,
    )
    result = UrllibWebhookClient(allow_private=True).deliver(request)

    assert result.error is None
    assert result.status_code == 201
    assert result.succeeded
    assert result.body_excerpt == 'created {"task":"T1"}'
    assert result.duration_ms >= 0
    [seen] = server.seen
    assert seen.method == "PATCH"
    assert seen.path == "/hook?x=1"
    assert seen.body == body
    assert seen.headers["X-Taskbeat-Signature"] == signature
    assert seen.headers["X-Taskbeat-Delivery"] == "E1-1"
    assert seen.headers["Authorization"] == "Bearer abc"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Host"] == f"127.0.0.1:{server.port}"
    assert seen.headers["Content-Length"] == str(len(body))


def test_get_without_body_sends_no_body(server: Server) -> None:
    result = UrllibWebhookClient(allow_private=True).deliver(
        WebhookRequest(url=server.url(), method="GET", timeout_seconds=5)
    )
    assert result.status_code == 201
    [seen] = server.seen
    assert seen.method == "GET"
    assert seen.body == b""
    assert "Content-Length" not in seen.headers


def test_localhost_is_reached_by_name_when_private_is_allowed(server: Server) -> None:
    url = f"http://localhost:{server.port}/hook"
    result = UrllibWebhookClient(allow_private=True).deliver(
        WebhookRequest(url=url, method="POST", body=b"x", timeout_seconds=5)
    )
    # localhost may resolve to ::1 first; the client falls through to 127.0.0.1.
    assert result.status_code == 201, result
    assert server.seen[0].headers["Host"] == f"localhost:{server.port}"


def test_server_error_is_a_non_2xx_result(server: Server) -> None:
    result = UrllibWebhookClient(allow_private=True).deliver(
        WebhookRequest(url=server.url("/fail"), method="POST", body=b"x", timeout_seconds=5)
    )
    assert result.status_code == 500
    assert result.error is None
    assert not result.succeeded
    assert result.body_excerpt == "boom"


def test_redirects_are_not_followed(server: Server) -> None:
    result = UrllibWebhookClient(allow_private=True).deliver(
        WebhookRequest(url=server.url("/redirect"), method="POST", body=b"x", timeout_seconds=5)
    )
    assert result.status_code == 302
    assert not result.succeeded
    assert [s.path for s in server.seen] == ["/redirect"]


def test_excerpt_is_the_first_kib_and_the_rest_is_counted(server: Server) -> None:
    result = UrllibWebhookClient(allow_private=True).deliver(
        WebhookRequest(url=server.url("/big"), method="GET", timeout_seconds=5)
    )
    assert result.status_code == 200
    assert result.body_size == 1023 + 2 + 5000
    # The 1 KiB cut falls inside the two-byte "é": decoded leniently, not an error.
    assert result.body_excerpt == "a" * 1023 + "\ufffd"
    assert result.error is None


def test_slow_answer_hits_the_timeout(server: Server) -> None:
    started = time.monotonic()
    result = UrllibWebhookClient(allow_private=True).deliver(
        WebhookRequest(url=server.url("/slow"), method="POST", body=b"x", timeout_seconds=1)
    )
    elapsed = time.monotonic() - started
    server.release.set()
    assert result.error == "timeout"
    assert result.status_code is None
    assert not result.succeeded
    assert 0.9 <= elapsed < 5
    assert 900 <= result.duration_ms < 5000
    assert [s.path for s in server.seen] == ["/slow"]


def test_closed_port_is_refused() -> None:
    port = closed_port()
    result = UrllibWebhookClient(allow_private=True).deliver(
        WebhookRequest(url=f"http://127.0.0.1:{port}/", method="POST", timeout_seconds=5)
    )
    assert result.error == "refused"
    assert result.status_code is None


def test_tls_failure_is_reported_not_raised(server: Server) -> None:
    # The server speaks plain HTTP: the TLS handshake with SNI fails.
    url = f"https://127.0.0.1:{server.port}/hook"
    result = UrllibWebhookClient(allow_private=True).deliver(
        WebhookRequest(url=url, method="POST", timeout_seconds=5)
    )
    assert result.error is not None
    assert result.error.startswith("tls")
    assert result.status_code is None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_private_targets_are_blocked_without_connecting(server: Server, host: str) -> None:
    url = f"http://{host}:{server.port}/hook"
    result = UrllibWebhookClient(allow_private=False).deliver(
        WebhookRequest(url=url, method="POST", body=b"x", timeout_seconds=5)
    )
    assert result.error == "blocked: private address"
    assert result.status_code is None
    assert server.seen == []


def test_one_private_answer_among_public_ones_blocks(server: Server) -> None:
    calls: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return ["93.184.216.34", "127.0.0.1"]

    client = UrllibWebhookClient(allow_private=False, resolve=resolve)
    result = client.deliver(
        WebhookRequest(url=f"http://hooks.test:{server.port}/", method="GET", timeout_seconds=5)
    )
    assert result.error == "blocked: private address"
    assert calls == [("hooks.test", server.port)]
    assert server.seen == []


def test_connection_goes_to_the_checked_address(server: Server) -> None:
    """The name is resolved once, and the client connects to that answer (pinned)."""
    answers = iter([["127.0.0.1"], ["203.0.113.7"]])

    def resolve(host: str, port: int) -> list[str]:
        return next(answers)

    client = UrllibWebhookClient(allow_private=True, resolve=resolve)
    url = f"http://hooks.test:{server.port}/hook"
    result = client.deliver(WebhookRequest(url=url, method="GET", timeout_seconds=5))
    assert result.status_code == 201
    assert server.seen[0].headers["Host"] == f"hooks.test:{server.port}"


def test_dns_failure_is_reported() -> None:
    def resolve(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    result = UrllibWebhookClient(allow_private=False, resolve=resolve).deliver(
        WebhookRequest(url="https://nowhere.test/", method="POST", timeout_seconds=5)
    )
    assert result.error == "dns"
    assert result.status_code is None


def test_bad_url_is_reported() -> None:
    result = UrllibWebhookClient(allow_private=True).deliver(
        WebhookRequest(url="ftp://example.com/", method="POST", timeout_seconds=5)
    )
    assert result.error == "invalid url"


# --- write-time check ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/",
        "http://[::ffff:127.0.0.1]/",
    ],
)
def test_check_url_target_refuses_private_targets(url: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_url_target(url, allow_private=False)
    assert caught.value.details == [
        {"loc": ["body", "action", "url"], "message": caught.value.message}
    ]
    assert "private" in caught.value.message


def test_check_url_target_allows_private_targets_when_allowed() -> None:
    check_url_target("http://127.0.0.1/hook", allow_private=True)
    check_url_target("http://localhost/hook", allow_private=True)


def test_check_url_target_accepts_public_addresses() -> None:
    check_url_target("https://93.184.216.34/hook", allow_private=False)
    check_url_target(
        "https://hooks.test/", allow_private=False, resolve=lambda h, p: ["2606:4700::1111"]
    )


def test_check_url_target_refuses_a_name_with_one_private_answer() -> None:
    with pytest.raises(ValidationFailed):
        check_url_target(
            "https://hooks.test/",
            allow_private=False,
            resolve=lambda h, p: ["93.184.216.34", "169.254.169.254"],
        )


def test_check_url_target_refuses_unresolvable_hosts() -> None:
    def resolve(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(ValidationFailed) as caught:
        check_url_target("https://nowhere.test/", allow_private=False, resolve=resolve)
    assert caught.value.details[0]["loc"] == ["body", "action", "url"]
    assert "resolve" in caught.value.message


def test_a_socket_closed_by_http_client_needs_no_timeout() -> None:
    """Python 3.13's `http.client` closes the socket once a `Connection: close` answer is read
    to its end; the next step's timeout must not be set on it (EBADF, which counted a 200 with
    a body of 1 KiB or more as failed, and retried it: issue 16). Fails on any version."""
    closed = socket.socket()
    closed.close()
    _set_timeout(closed, time.monotonic() + 5)  # no OSError
    with pytest.raises(TimeoutError):
        _set_timeout(closed, time.monotonic() - 1)
