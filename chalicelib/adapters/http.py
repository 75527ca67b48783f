"""The webhook client: standard library only, pinned to the address it checked.

The host is resolved at call time and every address it resolves to must be public (unless
private targets are allowed, locally); the connection then goes to that checked address, so a
second DNS answer cannot send it elsewhere. Redirects are never followed. Network trouble is
reported in the result, never raised.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from chalicelib.domain.errors import validation_error
from chalicelib.domain.webhooks import (
    EXCERPT_MAX_BYTES,
    WebhookRequest,
    WebhookResult,
    address_is_public,
)

# host, port -> the addresses it resolves to; raises OSError (socket.gaierror) when it cannot.
Resolver = Callable[[str, int], Sequence[str]]

URL_LOC: list[str | int] = ["body", "action", "url"]
DRAIN_MAX_BYTES = 1024 * 1024  # read (and count) at most this much beyond the excerpt
_CHUNK = 64 * 1024


class _Blocked(Exception):
    pass


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _resolve(resolve: Resolver, host: str, port: int) -> list[str]:
    try:
        addresses = list(resolve(host, port))
    except (OSError, UnicodeError):
        raise socket.gaierror("does not resolve") from None
    if not addresses:
        raise socket.gaierror("does not resolve")
    return addresses


def check_url_target(url: str, allow_private: bool, resolve: Resolver = system_resolver) -> None:
    """Refuse (422) a webhook URL whose host does not resolve or resolves to a non-public address.

    Checked again at delivery time, since DNS answers can change.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise validation_error(URL_LOC, "is not a valid URL") from None
    if not host:
        raise validation_error(URL_LOC, "must name a host")
    if allow_private:
        return
    try:
        addresses = _resolve(resolve, host, port)
    except socket.gaierror:
        raise validation_error(URL_LOC, "host does not resolve") from None
    if not all(address_is_public(a) for a in addresses):
        raise validation_error(URL_LOC, "host resolves to a private or reserved address")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Talks to `host` (Host header) over a TCP connection to the already-checked `address`."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def _open_socket(self) -> socket.socket:
        return socket.create_connection((self._address, self.port), self.timeout)

    def connect(self) -> None:
        self.sock = self._open_socket()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    default_port = http.client.HTTPS_PORT

    def __init__(
        self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, address, timeout)
        self._ssl_context = context

    def connect(self) -> None:
        raw = self._open_socket()
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # SNI and certificate verification use the name from the URL, not the address.
            self.sock = self._ssl_context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return "dns"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls: certificate"
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "closed"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, http.client.HTTPException):
        return "protocol"
    if isinstance(exc, OSError):
        return "unreachable"
    return "error"


def _set_timeout(sock: socket.socket | None, deadline: float) -> None:
    """Every blocking step gets only what is left of the request's timeout. A socket closed
    already (Python 3.13's `http.client` closes it once a `Connection: close` answer is read
    to its end) has nothing left to wait for: setting its timeout would fail (EBADF)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("timed out")
    if sock is not None and sock.fileno() != -1:
        sock.settimeout(remaining)


class UrllibWebhookClient:
    """`WebhookClient` on `http.client`. `allow_private` lets loopback/private targets through
    (the local stack only)."""

    def __init__(
        self,
        allow_private: bool,
        *,
        resolve: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._resolve = resolve
        self._ssl_context = ssl_context

    def deliver(self, request: WebhookRequest) -> WebhookResult:
        started = time.monotonic()
        deadline = started + request.timeout_seconds

        def elapsed_ms() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            return self._deliver(request, deadline, elapsed_ms)
        except _Blocked:
            return WebhookResult(None, elapsed_ms(), error="blocked: private address")
        except ValueError:
            return WebhookResult(None, elapsed_ms(), error="invalid url")
        except (OSError, http.client.HTTPException) as exc:
            return WebhookResult(None, elapsed_ms(), error=_error_name(exc))

    def _deliver(
        self, request: WebhookRequest, deadline: float, elapsed_ms: Callable[[], int]
    ) -> WebhookResult:
        parts = urlsplit(request.url)
        scheme = parts.scheme.lower()
        host = parts.hostname
        if scheme not in ("http", "https") or not host:
            raise ValueError("not an http(s) URL")
        port = parts.port or (443 if scheme == "https" else 80)
        addresses = _resolve(self._resolve, host, port)
        if not self._allow_private and not all(address_is_public(a) for a in addresses):
            raise _Blocked
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"

        connection = self._connect(scheme, host, port, addresses, deadline)
        sock = connection.sock  # kept: http.client drops its reference on "Connection: close"
        try:
            connection.request(
                request.method, path, body=request.body or None, headers=dict(request.headers)
            )
            _set_timeout(sock, deadline)
            response = connection.getresponse()
            excerpt = b""
            size = 0
            error: str | None = None
            try:
                _set_timeout(sock, deadline)
                excerpt = response.read(EXCERPT_MAX_BYTES)
                size = len(excerpt)
                # The rest is counted, not kept, and only up to a bound.
                while (
                    len(excerpt) == EXCERPT_MAX_BYTES and size < EXCERPT_MAX_BYTES + DRAIN_MAX_BYTES
                ):
                    if response.isclosed():  # read to its end
                        break
                    _set_timeout(sock, deadline)
                    chunk = response.read1(_CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
            except (OSError, http.client.HTTPException) as exc:
                error = _error_name(exc)  # the status is known; the body did not all arrive
            return WebhookResult(
                status_code=response.status,
                duration_ms=elapsed_ms(),
                body_excerpt=excerpt.decode("utf-8", errors="replace"),
                error=error,
                body_size=size,
            )
        finally:
            connection.close()

    def _connect(
        self, scheme: str, host: str, port: int, addresses: Sequence[str], deadline: float
    ) -> _PinnedHTTPConnection:
        last: OSError | None = None
        for address in addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out")
            connection: _PinnedHTTPConnection
            if scheme == "https":
                context = self._ssl_context or ssl.create_default_context()
                connection = _PinnedHTTPSConnection(host, port, address, remaining, context)
            else:
                connection = _PinnedHTTPConnection(host, port, address, remaining)
            try:
                connection.connect()
            except (TimeoutError, ssl.SSLError):
                connection.close()
                raise
            except OSError as exc:  # refused or unreachable: try the next checked address
                connection.close()
                last = exc
                continue
            return connection
        assert last is not None
        raise last
