"""What one HTTP request leaves behind, as Lambda would see it: one access log line and one EMF
metrics line on stdout, the headers of the answer, and an X-Ray subsegment when tracing is on.

The warm path (issue 16) makes these cheaper; these tests hold their content to what it was.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

import app as taskbeat
from bench.inmemory import LambdaContext, World, in_memory_container, rest_event
from chalicelib import bootstrap, observability
from chalicelib.api import middleware

TASK_ROUTE = "/v1/tasks/{task_id}"


@dataclass
class Observed:
    world: World
    log: io.StringIO
    capsys: pytest.CaptureFixture[str]

    def get(self, task_id: str | None = None, token: str | None = None) -> dict[str, Any]:
        event = rest_event(
            "GET",
            TASK_ROUTE,
            {"task_id": task_id or self.world.task_id},
            token=token or self.world.token,
        )
        response: dict[str, Any] = taskbeat.app(event, LambdaContext())
        return response

    def log_lines(self) -> list[dict[str, Any]]:
        lines = self.log.getvalue().splitlines()
        self.log.seek(0)
        self.log.truncate()
        return [json.loads(line) for line in lines]

    def metric_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.capsys.readouterr().out.splitlines()]


@pytest.fixture
def observed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Observed]:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    monkeypatch.delenv("TASKBEAT_STAGE", raising=False)
    # A recorder made earlier in this worker keeps the stage of its day (a test client of
    # Chalice sets `.chalice/config.json`'s TASKBEAT_STAGE while it runs): start from a new one.
    observability.metrics.cache_clear()
    log = observability.logger()
    handler = log.registered_handler
    stream = io.StringIO()
    # Swapped without setStream(): it would flush the stream of whichever test made the
    # handler first, which may be closed by now.
    previous_stream, handler.stream = handler.stream, stream
    previous_level = log.log_level
    log.setLevel("INFO")
    world = in_memory_container()
    bootstrap.override(world.container)
    try:
        capsys.readouterr()
        yield Observed(world, stream, capsys)
    finally:
        bootstrap.override(None)
        log.setLevel(previous_level)
        handler.stream = previous_stream
        observability.metrics().clear_metrics()
        observability.metrics.cache_clear()


def test_a_request_writes_one_access_log_line(observed: Observed) -> None:
    response = observed.get()
    assert response["statusCode"] == 200
    (line,) = observed.log_lines()
    assert list(line) == [
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "correlation_id",
        "method",
        "route",
        "status",
        "ms",
    ]
    assert line["level"] == "INFO"
    assert line["location"].startswith("http_middleware:")
    assert line["message"] == "request"
    assert line["service"] == "taskbeat"
    assert line["correlation_id"] == response["headers"]["X-Request-Id"]
    assert (line["method"], line["route"], line["status"]) == ("GET", TASK_ROUTE, 200)
    assert isinstance(line["ms"], float)
    assert line["ms"] >= 0


def test_the_access_log_line_carries_the_trace_id_on_lambda(
    observed: Observed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f;Sampled=1"
    )
    observed.get()
    (line,) = observed.log_lines()
    assert list(line)[-1] == "xray_trace_id"
    assert line["xray_trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"


def test_a_request_publishes_one_metrics_line(observed: Observed) -> None:
    observed.get()
    observed.get(task_id="0" * 52)  # a 404: a request all the same
    first, second = observed.metric_lines()
    for line in (first, second):
        assert list(line) == ["_aws", "stage", "service", "Requests", "Latency"]
        assert line["_aws"]["CloudWatchMetrics"] == [
            {
                "Namespace": "Taskbeat",
                "Dimensions": [["stage", "service"]],
                "Metrics": [
                    {"Name": "Requests", "Unit": "Count"},
                    {"Name": "Latency", "Unit": "Milliseconds"},
                ],
            }
        ]
        assert isinstance(line["_aws"]["Timestamp"], int)
        assert (line["stage"], line["service"], line["Requests"]) == ("local", "taskbeat", [1.0])
        (latency,) = line["Latency"]
        assert isinstance(latency, float)
        assert latency >= 0


@pytest.fixture
def emf(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The shared metrics recorder, empty, publishing, its timestamp fixed (so two lines of the
    same metrics are the same text)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    monkeypatch.delenv("TASKBEAT_STAGE", raising=False)
    observability.metrics.cache_clear()  # a new recorder, of this test's stage (see above)
    recorder = observability.metrics()
    recorder.clear_metrics()
    recorder.set_timestamp(datetime.now(UTC))
    try:
        yield recorder
    finally:
        recorder.provider.timestamp = None
        recorder.clear_metrics()
        observability.metrics.cache_clear()


def _powertools_line(recorder: Any, latency_ms: float, server_error: bool) -> str:
    """What add_metric() for each and Powertools' flush_metrics() write."""
    from aws_lambda_powertools.metrics import MetricUnit

    recorder.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    recorder.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=latency_ms)
    if server_error:
        recorder.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        recorder.flush_metrics()
    return out.getvalue()


def _our_line(latency_ms: float, server_error: bool) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        observability.publish_request_metrics(latency_ms, server_error)
    return out.getvalue()


@pytest.mark.parametrize("server_error", [False, True])
@pytest.mark.parametrize("latency_ms", [0.0, 0.51, 12.345678901234, 30_000])
def test_the_request_metrics_line_is_powertools_own(
    emf: Any, latency_ms: float, server_error: bool
) -> None:
    for _ in range(2):  # serializing adds `service` to the dimensions: with it and without
        ours = _our_line(latency_ms, server_error)
        assert (emf.metric_set, emf.metadata_set) == ({}, {})  # nothing kept
        assert emf.dimension_set == {"stage": "local", "service": "taskbeat"}
        assert _our_line(latency_ms, server_error) == ours
        assert ours == _powertools_line(emf, latency_ms, server_error)
        assert ours.count("\n") == 1


def test_metrics_recorded_during_a_request_go_out_in_its_line(emf: Any) -> None:
    from aws_lambda_powertools.metrics import MetricUnit

    def record() -> None:
        emf.add_metric(name="Other", unit=MetricUnit.Count, value=2)
        emf.add_dimension(name="kind", value="x")
        emf.add_metadata(key="note", value="n")

    record()
    ours = _our_line(1.5, True)
    record()
    assert ours == _powertools_line(emf, 1.5, True)
    (line,) = [json.loads(text) for text in ours.splitlines()]
    assert (line["kind"], line["note"], line["Other"], line["Latency"]) == ("x", "n", [2.0], [1.5])
    assert list(line)[-4:] == ["Other", "Requests", "Latency", "ServerErrors"]
    # The request's dimension and metadata went with its line; the next one has neither.
    (line,) = [json.loads(text) for text in _our_line(0.5, False).splitlines()]
    assert list(line) == ["_aws", "stage", "service", "Requests", "Latency"]


def test_with_metrics_disabled_nothing_is_published_or_kept(
    observed: Observed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    for _ in range(3):
        observed.get()
    assert observed.metric_lines() == []
    assert observed.log_lines() != []
    assert observability.metrics().metric_set == {}


def test_the_answer_carries_the_contract_headers(observed: Observed) -> None:
    response = observed.get()
    headers = response["headers"]
    assert headers == {
        "ETag": '"1"',
        "Content-Type": "application/json",
        "X-Request-Id": headers["X-Request-Id"],
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    }
    assert response["multiValueHeaders"] == {}
    body = json.loads(response["body"])
    assert body["id"] == observed.world.task_id
    assert body["version"] == 1


class _Subsegment:
    def __init__(self, name: str, opened: list[tuple[str, dict[str, str]]]) -> None:
        self.annotations: dict[str, str] = {}
        opened.append((name, self.annotations))

    def __enter__(self) -> _Subsegment:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def put_annotation(self, key: str, value: str) -> None:
        self.annotations[key] = value


class _Provider:
    def __init__(self) -> None:
        self.opened: list[tuple[str, dict[str, str]]] = []

    def in_subsegment(self, name: str) -> _Subsegment:
        return _Subsegment(name, self.opened)


@dataclass
class _Tracer:
    disabled: bool
    provider: _Provider


@pytest.mark.parametrize("disabled", [False, True])
def test_a_subsegment_per_sampled_request_when_tracing_is_on(
    observed: Observed, monkeypatch: pytest.MonkeyPatch, disabled: bool
) -> None:
    tracer = _Tracer(disabled, _Provider())
    monkeypatch.setattr(middleware, "tracer", lambda: tracer)
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3f;Parent=5399;Sampled=1")
    assert observed.get()["statusCode"] == 200
    expected = [] if disabled else [(f"## GET {TASK_ROUTE}", {"route": TASK_ROUTE})]
    assert tracer.provider.opened == expected


@pytest.mark.parametrize("header", [None, "Root=1-5759e988-bd862e3f;Parent=5399;Sampled=0"])
def test_an_unsampled_request_makes_no_tracer(
    observed: Observed, monkeypatch: pytest.MonkeyPatch, header: str | None
) -> None:
    made: list[_Tracer] = []

    def tracer() -> _Tracer:
        made.append(_Tracer(False, _Provider()))
        return made[-1]

    monkeypatch.setattr(middleware, "tracer", tracer)
    if header is None:
        monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    else:
        monkeypatch.setenv("_X_AMZN_TRACE_ID", header)
    assert observed.get()["statusCode"] == 200
    assert made == []  # so the X-Ray SDK is not even imported


# ---- the access log's formatter: Powertools' lines, made cheaper ------------------------------


def _record(message: Any, *args: Any, exc: bool = False, **extra: Any) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            exc_info = sys.exc_info()
    return logging.getLogger("taskbeat").makeRecord(
        "taskbeat", logging.INFO, __file__, 42, message, args, exc_info, "a_view", extra
    )


RECORDS = {
    "access log": lambda: _record("request", method="GET", route=TASK_ROUTE, status=200, ms=0.6),
    "with args": lambda: _record("%s of %d", "one", 2),
    "dict message": lambda: _record({"event": "fired", "count": 3}),
    "exception": lambda: _record("unhandled error", exc=True, route="/v1/x"),
    "odd extras": lambda: _record(
        "ünïcode ✓", when=datetime(2026, 1, 2, tzinfo=UTC), obj=object, none=None, nested={"a": [1]}
    ),
    **{
        f"message {text!r}": (lambda text=text: _record(text))
        for text in (
            "",
            " ",
            "request",
            '{"a": 1}',
            ' \n{"a": 1}',
            "[1, 2]",
            "12",
            "-1.5",
            "true",
            "null",
            "NaN",
            "Infinity",
            '"quoted"',
            "{broken",
            "nothing here",
        )
    },
}


@pytest.mark.parametrize("name", sorted(RECORDS))
@pytest.mark.parametrize("on_lambda", [False, True])
def test_log_lines_are_those_of_powertools_own_formatter(
    name: str, on_lambda: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    if on_lambda:
        monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3f;Parent=5399;Sampled=1")
    else:
        monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    ours, theirs = observability._formatter(), LambdaPowertoolsFormatter()
    for formatter in (ours, theirs):
        formatter.append_keys(service="taskbeat", sampling_rate=None)
        formatter.append_keys(correlation_id="req-1", cold_start=True)
    record = RECORDS[name]()
    assert ours.format(record) == theirs.format(record)


def test_the_logger_writes_with_that_formatter() -> None:
    assert type(observability.logger().registered_formatter).__module__ == observability.__name__
