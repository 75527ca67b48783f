"""Webhook action models, the signature and delivery headers, and public-address rules."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.domain.webhooks import (
    BODY_MAX_BYTES,
    RetryPolicy,
    WebhookAction,
    address_is_public,
    build_request,
    delivery_header,
    signature_header,
)

URL = "https://hooks.example.com/taskbeat?x=1"


def action(**fields: Any) -> WebhookAction:
    return WebhookAction.model_validate({"type": "webhook", "url": URL, **fields})


def refused(**fields: Any) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        action(**fields)
    return caught.value


# --- WebhookAction -------------------------------------------------------------------------


def test_defaults() -> None:
    made = action()
    assert made.method == "POST"
    assert made.headers is None
    assert made.body is None
    assert made.timeout_seconds == 10
    assert made.body_bytes() == b""


def test_type_must_be_webhook() -> None:
    with pytest.raises(ValidationError):
        WebhookAction.model_validate({"type": "lambda", "url": URL})
    with pytest.raises(ValidationError):
        WebhookAction.model_validate({"url": URL})


def test_unknown_fields_are_refused() -> None:
    error = refused(retries=3)
    assert error.errors()[0]["loc"] == ("retries",)


@pytest.mark.parametrize("method", ["POST", "GET", "PUT", "PATCH", "DELETE"])
def test_methods(method: str) -> None:
    assert action(method=method).method == method


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "post", "CONNECT", ""])
def test_other_methods_are_refused(method: str) -> None:
    refused(method=method)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "https://example.com:8443/a/b?c=d#e",
        "HTTPS://Example.COM/",
        "http://127.0.0.1:8080/hook",  # addresses are checked on write by the adapter
        "http://[2001:db8::1]/hook",
        "https://example.com/" + "a" * (2048 - len("https://example.com/")),
    ],
)
def test_valid_urls(url: str) -> None:
    assert action(url=url).url == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/file", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("example.com/hook", "http or https"),
        ("https://user:pass@example.com/", "credentials"),
        ("https://user@example.com/", "credentials"),
        ("https://@example.com/", "credentials"),
        ("https:///path-only", "host"),
        ("https://example.com:99999/", "valid URL"),
        ("https://example.com:0/", "port 0"),
        ("https://exa mple.com/", "whitespace"),
        ("https://example.com/\r\nX-Injected: 1", "whitespace"),
        ("https://example.com/" + "a" * 2048, "2048"),
    ],
)
def test_invalid_urls(url: str, message: str) -> None:
    error = refused(url=url)
    assert error.errors()[0]["loc"] == ("url",)
    assert message in str(error)


def test_headers_are_kept() -> None:
    headers = {"Authorization": "Bearer abc", "X-Custom_Thing.1": "v\twith tab", "Accept": ""}
    assert action(headers=headers).headers == headers


def test_at_most_twenty_headers() -> None:
    assert action(headers={f"X-H{i}": "v" for i in range(20)}).headers is not None
    error = refused(headers={f"X-H{i}": "v" for i in range(21)})
    assert "at most 20" in str(error)


@pytest.mark.parametrize("name", ["Bad Name", "", "X:Colon", "Ünicode", "X(y)", "a" * 257])
def test_header_names_are_validated(name: str) -> None:
    assert "invalid header name" in str(refused(headers={name: "v"}))


@pytest.mark.parametrize(
    "name",
    [
        "Connection",
        "keep-alive",
        "Proxy-Authorization",
        "Proxy-Authenticate",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Host",
        "content-length",
        "X-Taskbeat-Signature",
        "x-taskbeat-delivery",
        "X-TASKBEAT-Anything",
    ],
)
def test_reserved_headers_are_refused(name: str) -> None:
    assert "may not be set" in str(refused(headers={name: "v"}))


def test_header_given_twice_in_other_case_is_refused() -> None:
    assert "twice" in str(refused(headers={"X-A": "1", "x-a": "2"}))


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "nul\x00", "bell\x07"])
def test_header_values_cannot_split_headers(value: str) -> None:
    assert "invalid value" in str(refused(headers={"X-A": value}))


def test_header_value_length() -> None:
    action(headers={"X-A": "v" * 4096})
    refused(headers={"X-A": "v" * 4097})


def test_string_body_is_sent_as_is() -> None:
    made = action(body="plain text é")
    assert made.body_bytes() == "plain text é".encode()


@pytest.mark.parametrize("body", [{"a": [1, 2.5, None, True]}, [1, "x"], 42, True, "{}"])
def test_json_bodies(body: Any) -> None:
    made = action(body=body)
    expected = body.encode() if isinstance(body, str) else json.dumps(body).replace(" ", "")
    assert made.body_bytes() == (expected if isinstance(expected, bytes) else expected.encode())


def test_body_size_limit_counts_serialized_bytes() -> None:
    action(body="x" * BODY_MAX_BYTES)
    refused(body="x" * (BODY_MAX_BYTES + 1))
    # Two UTF-8 bytes per character: half as many characters fit.
    action(body="é" * (BODY_MAX_BYTES // 2))
    refused(body="é" * (BODY_MAX_BYTES // 2 + 1))
    # A JSON value is measured as serialized: {"k":"..."} adds 8 bytes.
    action(body={"k": "x" * (BODY_MAX_BYTES - 8)})
    error = refused(body={"k": "x" * (BODY_MAX_BYTES - 7)})
    assert error.errors()[0]["loc"][0] == "body"


@pytest.mark.parametrize(("value", "ok"), [(1, True), (60, True), (0, False), (61, False)])
def test_timeout_bounds(value: int, ok: bool) -> None:
    if ok:
        assert action(timeout_seconds=value).timeout_seconds == value
    else:
        refused(timeout_seconds=value)


@pytest.mark.parametrize("value", [True, 1.5, "ten"])
def test_timeout_must_be_whole_seconds(value: Any) -> None:
    refused(timeout_seconds=value)


# --- RetryPolicy ---------------------------------------------------------------------------


def test_retry_defaults() -> None:
    policy = RetryPolicy.model_validate({})
    assert (policy.max_attempts, policy.backoff_seconds, policy.backoff_rate) == (3, 2, 2.0)


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [("max_attempts", 1, 10), ("backoff_seconds", 1, 3600), ("backoff_rate", 1, 5)],
)
def test_retry_bounds(field: str, low: int, high: int) -> None:
    assert getattr(RetryPolicy.model_validate({field: low}), field) == low
    assert getattr(RetryPolicy.model_validate({field: high}), field) == high
    for bad in (low - 1, high + 1):
        with pytest.raises(ValidationError) as caught:
            RetryPolicy.model_validate({field: bad})
        assert caught.value.errors()[0]["loc"] == (field,)


def test_retry_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        RetryPolicy.model_validate({"jitter": True})


def test_retry_delays_grow_by_the_rate() -> None:
    policy = RetryPolicy(max_attempts=4, backoff_seconds=3, backoff_rate=2.5)
    assert [policy.delay_before(n) for n in (1, 2, 3, 4)] == [0.0, 3.0, 7.5, 18.75]


# --- signature and delivery headers --------------------------------------------------------


def test_signature_matches_a_hand_computed_hmac() -> None:
    secret, timestamp, body = "s3cret", 1_700_000_000, b'{"hello":"world"}'
    expected = hmac.new(
        b"s3cret", b'1700000000.{"hello":"world"}', digestmod=hashlib.sha256
    ).hexdigest()
    assert signature_header(secret, timestamp, body) == f"t=1700000000,v1={expected}"


def test_signature_known_vectors() -> None:
    # Computed outside Python: printf '<t>.<body>' | openssl dgst -sha256 -hmac <secret>
    assert signature_header("key", 1, b"") == (
        "t=1,v1=53123bc365c2fe4bee48bc5cc6cd6c19699147d43513154ed34277c7c063e80f"
    )
    assert signature_header("s3cret", 1_700_000_000, b'{"hello":"world"}') == (
        "t=1700000000,v1=6f4351a15224248663bdabf854a428c6942e6be080ed368c1833e5d8a1d5e9a8"
    )
    assert signature_header("key", 1, b"") != signature_header("key", 2, b"")
    assert signature_header("key", 1, b"a") != signature_header("other", 1, b"a")


def test_delivery_header() -> None:
    assert delivery_header("01HEXEC", 1) == "01HEXEC-1"
    assert delivery_header("01HEXEC", 3) == "01HEXEC-3"
    with pytest.raises(ValueError, match="from 1"):
        delivery_header("01HEXEC", 0)


def test_build_request_signs_the_body_it_sends() -> None:
    made = action(method="PUT", headers={"X-A": "1"}, body={"k": 1}, timeout_seconds=5)
    request = build_request(made, secret="sec", timestamp=42, execution_id="E1", attempt=2)
    assert request.method == "PUT"
    assert request.url == URL
    assert request.body == b'{"k":1}'
    assert request.timeout_seconds == 5.0
    assert request.headers["X-A"] == "1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Taskbeat-Delivery"] == "E1-2"
    assert request.headers["X-Taskbeat-Signature"] == signature_header("sec", 42, b'{"k":1}')


def test_build_request_keeps_a_given_content_type_and_string_bodies_plain() -> None:
    made = action(headers={"content-type": "text/csv"}, body={"k": 1})
    request = build_request(made, secret="s", timestamp=1, execution_id="E", attempt=1)
    assert "Content-Type" not in request.headers
    plain = build_request(action(body="hi"), secret="s", timestamp=1, execution_id="E", attempt=1)
    assert "Content-Type" not in plain.headers


# --- public addresses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "2001:4860:4860::8888",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",  # IPv4-mapped public address
    ],
)
def test_public_addresses(ip: str) -> None:
    assert address_is_public(ip)
    assert address_is_public(ipaddress.ip_address(ip))


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "127.255.255.254",
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "169.254.0.1",
        "100.64.0.1",  # CGNAT
        "100.127.255.254",
        "0.0.0.0",
        "0.1.2.3",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "198.18.0.1",
        "::1",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "fd00:ec2::254",  # AWS metadata over IPv6
        "fec0::1",  # site-local
        "ff02::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:100.64.0.1",
        "::127.0.0.1",  # IPv4-compatible
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "not-an-ip",
        "",
        "256.1.1.1",
    ],
)
def test_non_public_addresses(ip: str) -> None:
    assert not address_is_public(ip)


def test_public_is_not_just_not_loopback() -> None:
    # Guards against a check that only looks at one property.
    results = {ip: address_is_public(ip) for ip in ("8.8.8.8", "10.1.2.3", "169.254.169.254")}
    assert results == {"8.8.8.8": True, "10.1.2.3": False, "169.254.169.254": False}
