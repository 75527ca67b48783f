"""Webhook actions: the request body models, the signature and delivery headers, and the
rule of which addresses a webhook may reach. Pure: no I/O here (see `adapters/http.py`)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, JsonValue, field_validator, model_validator

from chalicelib.domain.model import Input

URL_MAX = 2048
HEADERS_MAX = 20
HEADER_NAME_MAX = 256
HEADER_VALUE_MAX = 4096
BODY_MAX_BYTES = 64 * 1024
# The whole action as stored (JSON): it is kept with its task, and twice (old and new) in the
# history event of a change to it, both DynamoDB items of at most 400 KB. Headers and body are
# each within their own limits, but escapes (a control character is six bytes in JSON) could
# still take the two together past what those items hold.
ACTION_MAX_BYTES = 96 * 1024
EXCERPT_MAX_BYTES = 1024

SIGNATURE_HEADER = "X-Taskbeat-Signature"
DELIVERY_HEADER = "X-Taskbeat-Delivery"
OWN_HEADER_PREFIX = "x-taskbeat-"

# RFC 9110 `token`.
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Visible ASCII, space and tab; anything else (CR, LF, NUL, other controls) could split headers.
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")
# Hop-by-hop headers (RFC 9110 7.6.1 and friends) and those the client sets itself.
REFUSED_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)

Method = Literal["POST", "GET", "PUT", "PATCH", "DELETE"]


def _url(value: str) -> str:
    if len(value) > URL_MAX:
        raise ValueError(f"must be at most {URL_MAX} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("must not contain whitespace or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError("must not contain credentials")
    if not parts.hostname:
        raise ValueError("must name a host")
    if port == 0:
        raise ValueError("must not use port 0")
    return value


def _headers(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if len(value) > HEADERS_MAX:
        raise ValueError(f"at most {HEADERS_MAX} headers")
    seen: set[str] = set()
    for name, header_value in value.items():
        lowered = name.lower()
        if not _HEADER_NAME.match(name) or len(name) > HEADER_NAME_MAX:
            raise ValueError(f"invalid header name {name!r}")
        if lowered in REFUSED_HEADERS or lowered.startswith(OWN_HEADER_PREFIX):
            raise ValueError(f"header {name!r} may not be set")
        if lowered in seen:
            raise ValueError(f"header {name!r} is given twice")
        seen.add(lowered)
        if len(header_value) > HEADER_VALUE_MAX or not _HEADER_VALUE.match(header_value):
            raise ValueError(f"invalid value for header {name!r}")
    return value


def serialize_body(body: JsonValue) -> bytes:
    """A string is sent as is (UTF-8); any other JSON value as compact JSON."""
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _body(value: JsonValue) -> JsonValue:
    if len(serialize_body(value)) > BODY_MAX_BYTES:
        raise ValueError(f"must be at most {BODY_MAX_BYTES} bytes serialized")
    return value


WebhookUrl = Annotated[str, AfterValidator(_url)]
WebhookHeaders = Annotated[dict[str, str] | None, AfterValidator(_headers)]
WebhookBody = Annotated[JsonValue, AfterValidator(_body)]


# The longest a webhook may take to answer (API.md); the `fire` function's timeout allows it.
MAX_TIMEOUT_SECONDS = 60


class WebhookAction(Input):
    type: Literal["webhook"]
    url: WebhookUrl
    method: Method = "POST"
    headers: WebhookHeaders = None
    body: WebhookBody = None
    timeout_seconds: int = Field(10, ge=1, le=MAX_TIMEOUT_SECONDS)

    @field_validator("timeout_seconds", mode="before")
    @classmethod
    def _whole_seconds(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("must be an integer")
        return value

    @model_validator(mode="after")
    def _fits_its_items(self) -> WebhookAction:
        if len(self.model_dump_json().encode("utf-8")) > ACTION_MAX_BYTES:
            raise ValueError(
                f"headers and body together must stay under {ACTION_MAX_BYTES // 1024} KiB as JSON"
            )
        return self

    def body_bytes(self) -> bytes:
        return serialize_body(self.body)


class RetryPolicy(Input):
    max_attempts: int = Field(3, ge=1, le=10)
    backoff_seconds: int = Field(2, ge=1, le=3600)
    backoff_rate: float = Field(2.0, ge=1, le=5)

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before `attempt` (2 is the first retry); 0 for the first attempt."""
        if attempt <= 1:
            return 0.0
        return float(self.backoff_seconds * self.backoff_rate ** (attempt - 2))


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` keyed with the project's secret."""
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def delivery_header(execution_id: str, attempt: int) -> str:
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    return f"{execution_id}-{attempt}"


@dataclass(frozen=True)
class WebhookRequest:
    url: str
    method: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class WebhookResult:
    status_code: int | None
    duration_ms: int
    body_excerpt: str = ""
    error: str | None = None
    body_size: int = 0  # bytes of body received, excerpt included

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


def build_request(
    action: WebhookAction, *, secret: str, timestamp: int, execution_id: str, attempt: int
) -> WebhookRequest:
    """The signed request one attempt of `action` sends."""
    body = action.body_bytes()
    headers = dict(action.headers or {})
    is_json = body and action.body is not None and not isinstance(action.body, str)
    if is_json and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/json"
    headers[DELIVERY_HEADER] = delivery_header(execution_id, attempt)
    headers[SIGNATURE_HEADER] = signature_header(secret, timestamp, body)
    return WebhookRequest(
        url=action.url,
        method=action.method,
        headers=headers,
        body=body,
        timeout_seconds=float(action.timeout_seconds),
    )


Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Not routable on the internet, whatever a Python version's `is_global` says about them.
_NOT_PUBLIC_V4 = (
    ipaddress.IPv4Network("0.0.0.0/8"),
    ipaddress.IPv4Network("100.64.0.0/10"),  # carrier-grade NAT
    ipaddress.IPv4Network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.IPv4Network("192.88.99.0/24"),  # 6to4 relay anycast
    ipaddress.IPv4Network("198.18.0.0/15"),  # benchmarking
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, Teredo, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_is_public(ip: str | Address) -> bool:
    """True only for a globally routable unicast address; False for anything unparsable."""
    try:
        address: Address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket
            return address_is_public(address.ipv4_mapped)
        embedded = _embedded_ipv4(address)
        if embedded is not None and not address_is_public(embedded):
            return False
        if address.is_site_local:
            return False
    elif any(address in network for network in _NOT_PUBLIC_V4):
        return False
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )
