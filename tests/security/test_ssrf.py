"""OWASP API7, server side request forgery, through webhook URLs.

Deployed (`allow_private_webhooks` off, as in this world), a webhook may only reach public
addresses. Checked twice:
- at write time (POST/PATCH /tasks: 422), whatever spelling names a private address: IPv4
  loopback, private, link-local and the metadata service, IPv6 loopback, unique local,
  link-local, IPv4-mapped, NAT64 and 6to4 forms, decimal, octal and hex IPv4, `localhost`,
  trailing dots, names that resolve to private addresses, credentials in the URL (userinfo
  tricks) and other schemes;
- at delivery time (`adapters/http.py`), where DNS may answer differently: the client resolves
  once, refuses if any answer is not public, connects to the very address it checked (DNS
  rebinding gets nowhere), and never follows a redirect.

DNS is a table here (`FakeDns`): numeric hosts are parsed by the system's own resolver in
numeric mode (so "0177.0.0.1" means what libc says it means), names come from the table, and
nothing ever leaves the machine.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.adapters import http as webhook_http
from chalicelib.adapters.http import UrllibWebhookClient
from chalicelib.domain.webhooks import WebhookRequest
from tests.security.conftest import World

PUBLIC = "93.184.216.34"
REAL_GETADDRINFO = socket.getaddrinfo


class FakeDns:
    """`socket.getaddrinfo` with a table for names; numbers parsed, never looked up."""

    def __init__(self) -> None:
        self.names: dict[str, list[str]] = {
            "localhost": ["127.0.0.1", "::1"],
            "localhost.": ["127.0.0.1", "::1"],
            "public.example": [PUBLIC],
            "public.example.": [PUBLIC],
            "internal.example": ["10.0.0.5"],
            "metadata.google.internal": ["169.254.169.254"],
            "mixed.example": [PUBLIC, "127.0.0.1"],
            "v6-private.example": ["fd00::5"],
            "rebind.example": [PUBLIC],
        }
        self.asked: list[str] = []

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.asked.append(name)
        try:
            return REAL_GETADDRINFO(
                name, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
            )
        except socket.gaierror:
            pass
        answers = self.names.get(name.lower())
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            REAL_GETADDRINFO(a, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)[0]
            for a in answers
        ]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns()
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@dataclass
class Connections:
    """Every TCP connection the webhook client opens, sent to `target` instead."""

    target: tuple[str, int] | None = None
    opened: list[tuple[str, int]] = field(default_factory=list)


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> Connections:
    seen = Connections()
    real = socket.create_connection

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        seen.opened.append((str(address[0]), int(address[1])))
        if seen.target is None:
            raise ConnectionRefusedError("no test server for this address")
        return real(seen.target, *args, **kwargs)

    monkeypatch.setattr(webhook_http.socket, "create_connection", create_connection)
    return seen


@dataclass
class Hooks:
    port: int
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


@pytest.fixture(scope="module")
def hooks() -> Iterator[Hooks]:
    """A webhook target on loopback: `/redirect` answers 302 to the metadata service."""
    state = Hooks(port=0)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.requests.append((self.command, self.path, dict(self.headers.items())))
            if self.path.startswith("/redirect"):
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            else:
                self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


# ---- write time -------------------------------------------------------------------------------

REFUSED_URLS = [
    # IPv4: loopback, private, CGNAT, unspecified, link-local and the metadata service.
    "http://127.0.0.1/hook",
    "http://127.0.0.2:8080/hook",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    # The same addresses spelled otherwise.
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.0.0.1/",
    "http://0x7f000001/",
    "http://017700000001/",
    "http://127.1/",
    "http://0/",
    "http://2852039166/latest/meta-data/",  # 169.254.169.254
    "http://0xa9.0xfe.0xa9.0xfe/",
    # IPv6: loopback, unspecified, unique local, link-local, the metadata service's.
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::]/",
    "http://[fc00::1]/",
    "http://[fd12:3456:789a::1]/",
    "http://[fe80::1]/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    # IPv4 inside IPv6: mapped, NAT64, 6to4.
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:7f00:1::1]/",
    # Names.
    "http://localhost/",
    "http://LOCALHOST:3000/",
    "http://localhost./",
    "http://127.0.0.1./",
    "http://internal.example/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://mixed.example/",
    "http://v6-private.example/",
    "http://does-not-resolve.example/",
    # Userinfo tricks, and credentials at all.
    "http://public.example@127.0.0.1/",
    "http://user:pass@public.example/",
    "http://127.0.0.1\\@public.example/",
    "http://public.example%40127.0.0.1/",
    # Other schemes, and the port nothing listens on.
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://public.example/",
    "dict://127.0.0.1:11211/stat",
    "http://public.example:0/",
]
ACCEPTED_URLS = [
    f"http://{PUBLIC}/hook",
    "https://public.example/hook?x=1",
    "http://public.example.:8443/hook",
    "https://[2606:4700:4700::1111]/hook",
]


def _task_with(world: World, url: str) -> Any:
    action = {"type": "webhook", "url": url}
    return world.as_(
        "member",
        "POST",
        "/tasks",
        {"title": "Hook", "project_id": world.ids["project"], "action": action},
    )


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_a_webhook_to_a_non_public_address_is_refused_at_write_time(
    world: World, dns: FakeDns, url: str
) -> None:
    created = _task_with(world, url)
    assert created.status == 422, created
    (detail, *_) = created.json["error"]["details"]
    assert detail["loc"][:3] == ["body", "action", "url"], detail
    patched = world.as_(
        "member",
        "PATCH",
        f"/tasks/{world.ids['task']}",
        {"action": {"type": "webhook", "url": url}},
    )
    assert patched.status == 422, patched


@pytest.mark.parametrize("url", ACCEPTED_URLS)
def test_a_webhook_to_a_public_address_is_accepted(world: World, dns: FakeDns, url: str) -> None:
    created = _task_with(world, url)
    assert created.status == 201, created
    assert created.json["action"]["url"] == url


# ---- delivery time ------------------------------------------------------------------------------


def _deliver(url: str, **client: Any) -> Any:
    return UrllibWebhookClient(allow_private=False, **client).deliver(
        WebhookRequest(url=url, method="POST", body=b"{}", timeout_seconds=5)
    )


NUMERIC_PRIVATE = [
    url for url in REFUSED_URLS if url.startswith("http://") and "example" not in url
]


@pytest.mark.parametrize(
    "url",
    [u for u in NUMERIC_PRIVATE if "localhost" not in u.lower() and "@" not in u]
    + ["http://public.example@127.0.0.1/", "http://localhost/", "http://internal.example/"],
)
def test_delivery_refuses_non_public_addresses_without_connecting(
    dns: FakeDns, connections: Connections, url: str
) -> None:
    """Numbers are parsed by the system resolver itself (the real `system_resolver`)."""
    result = _deliver(url)
    assert result.status_code is None
    assert result.error in ("blocked: private address", "dns"), result
    assert connections.opened == []


def test_a_name_that_rebinds_after_the_check_is_still_not_reached(
    dns: FakeDns, connections: Connections, hooks: Hooks
) -> None:
    """The client resolves once and connects to that checked answer: a resolver that answers
    public first and loopback after (rebinding) cannot send the connection to loopback."""
    answers: list[list[str]] = [[PUBLIC], ["127.0.0.1"], ["127.0.0.1"]]
    asked: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers.pop(0)

    connections.target = ("127.0.0.1", hooks.port)  # whatever is dialled lands here
    before = len(hooks.requests)
    result = _deliver(f"http://rebind.example:{hooks.port}/hook", resolve=rebinding)
    assert result.status_code == 204, result
    assert asked == ["rebind.example"]
    assert connections.opened == [(PUBLIC, hooks.port)]
    (_, path, headers) = hooks.requests[before]
    assert path == "/hook"
    assert headers["Host"] == f"rebind.example:{hooks.port}"


def test_a_redirect_to_the_metadata_service_is_not_followed(
    dns: FakeDns, connections: Connections, hooks: Hooks
) -> None:
    connections.target = ("127.0.0.1", hooks.port)
    result = _deliver(f"http://public.example:{hooks.port}/redirect")
    assert result.status_code == 302
    assert not result.succeeded
    assert connections.opened == [(PUBLIC, hooks.port)]


def test_a_name_rebound_between_write_and_run_fails_the_execution(
    world: World, dns: FakeDns, connections: Connections, hooks: Hooks
) -> None:
    """End to end: the URL passes the write-time check with a public answer, then DNS points
    the name at the metadata service; the run step refuses it and records why."""
    url = f"http://rebind.example:{hooks.port}/hook"
    body = {
        "title": "Rebound",
        "project_id": world.ids["project"],
        "action": {"type": "webhook", "url": url},
        "retry": {"max_attempts": 1},
    }
    task = world.ok("member", "POST", "/tasks", body)
    dns.names["rebind.example"] = ["169.254.169.254"]
    connections.target = ("127.0.0.1", hooks.port)
    before = len(hooks.requests)
    execution = world.ok("member", "POST", f"/tasks/{task['id']}/run")
    answer = world.client.lambda_.invoke(
        "run_step", {"execution_id": execution["id"], "task_id": task["id"], "attempt": 1}
    ).payload
    assert answer["outcome"] == "failed", answer
    done = world.ok("member", "GET", f"/executions/{execution['id']}")
    assert done["status"] == "failed"
    assert "private address" in done["error"], done
    assert connections.opened == []
    assert len(hooks.requests) == before


def test_the_host_after_userinfo_is_the_one_checked_and_dialled(
    dns: FakeDns, connections: Connections, hooks: Hooks
) -> None:
    """Should a URL with credentials be stored some other way, the client still goes to the
    host after the `@` (as the check read it), never to the one before it."""
    connections.target = ("127.0.0.1", hooks.port)
    result = _deliver(f"http://127.0.0.1@public.example:{hooks.port}/hook")
    assert result.status_code == 204
    assert connections.opened == [(PUBLIC, hooks.port)]
