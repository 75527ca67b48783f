"""What one HTTP request leaves behind, as Lambda would see it: one line on stdout, the access log
line carrying the request's EMF metrics, the headers of the answer, and an X-Ray subsegment when
tracing is on.

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

    def other_lines(self) -> list[dict[str, Any]]:
        """What was printed outside the logger (an EMF line of its own)."""
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


ACCESS_FIELDS = ["method", "route", "status", "ms"]
POWERTOOLS_FIELDS = ["level", "location", "message", "timestamp", "service", "correlation_id"]
EMF_MEMBERS = ["_aws", "stage", "Requests", "Latency"]  # `service` is a dimension too


def test_a_request_writes_one_line_the_access_log_with_its_metrics(observed: Observed) -> None:
    response = observed.get()
    assert response["statusCode"] == 200
    (line,) = observed.log_lines()
    assert observed.other_lines() == []
    assert list(line) == POWERTOOLS_FIELDS + ACCESS_FIELDS + EMF_MEMBERS
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


def _assert_request_metrics(line: dict[str, Any], *, server_error: bool = False) -> None:
    names = ["Requests", "Latency"] + (["ServerErrors"] if server_error else [])
    assert line["_aws"]["CloudWatchMetrics"] == [
        {
            "Namespace": "Taskbeat",
            "Dimensions": [["stage", "service"]],
            "Metrics": [
                {"Name": name, "Unit": "Milliseconds" if name == "Latency" else "Count"}
                for name in names
            ],
        }
    ]
    assert isinstance(line["_aws"]["Timestamp"], int)
    assert (line["stage"], line["service"], line["Requests"]) == ("local", "taskbeat", [1.0])
    (latency,) = line["Latency"]
    assert isinstance(latency, float)
    assert latency >= 0


def test_each_request_line_carries_its_metrics(observed: Observed) -> None:
    observed.get()
    observed.get(task_id="0" * 52)  # a 404: a request all the same
    first, second = observed.log_lines()
    assert (first["status"], second["status"]) == (200, 404)
    for line in (first, second):
        _assert_request_metrics(line)
        assert "ServerErrors" not in line
        assert line["Latency"][0] >= line["ms"] - 0.05  # `ms` is the same time, rounded


def test_above_info_the_metrics_go_out_alone(observed: Observed) -> None:
    observability.logger().setLevel("WARNING")
    observed.get()
    assert observed.log_lines() == []
    (line,) = observed.other_lines()
    assert list(line) == ["_aws", "stage", "service", "Requests", "Latency"]
    _assert_request_metrics(line)


@pytest.fixture
def emf(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The shared metrics recorder, empty, publishing, its timestamp fixed (so two lines of the
    same metrics are the same text)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    monkeypatch.delenv("TASKBEAT_STAGE", raising=False)
    observability.metrics.cache_clear()  # a new recorder, of this test's stage (see above)
    observability._emf_heads.clear()  # and its EMF heads made from it
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
    """The request's metrics as the line of their own Powertools would write."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        emf = observability.request_metrics(latency_ms, server_error)
    if emf is None:  # they went out with metrics recorded during the request
        return out.getvalue()
    assert out.getvalue() == ""
    return json.dumps(emf, separators=(",", ":")) + "\n"


@pytest.mark.parametrize("server_error", [False, True])
@pytest.mark.parametrize("latency_ms", [0.0, 0.51, 12.345678901234, 30_000])
def test_the_request_metrics_line_is_powertools_own(
    emf: Any, latency_ms: float, server_error: bool
) -> None:
    # Powertools adds `service` to the recorder's dimensions when it first serializes and a
    # flush takes it away again: with it and without.
    for _ in range(2):
        ours = _our_line(latency_ms, server_error)
        assert (emf.metric_set, emf.metadata_set) == ({}, {})  # nothing kept
        assert emf.dimension_set.items() <= {"stage": "local", "service": "taskbeat"}.items()
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
    assert observed.other_lines() == []
    lines = observed.log_lines()
    assert [list(line) for line in lines] == [POWERTOOLS_FIELDS + ACCESS_FIELDS] * 3
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
