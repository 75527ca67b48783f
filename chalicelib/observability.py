"""Powertools Logger, Metrics and Tracer, created on first use (they read the environment).

Powertools itself is imported on first use too: it is ~10% of importing the app, and the
function's first log line is soon enough (bench/coldstart.py).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics, Tracer
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

NAMESPACE = "Taskbeat"
SERVICE = "taskbeat"


def _stage() -> str:
    """A dimension of every metric (TASKBEAT_STAGE, "local" for `make run`): stages sharing
    an account and region keep their figures apart; the dashboard asks for its own."""
    return os.environ.get("TASKBEAT_STAGE") or "local"


@functools.cache
def logger() -> Logger:
    from aws_lambda_powertools import Logger

    # No line shows a thread or a process: records need not look them up (the logging
    # module's own optimisation flags; a few µs of every request's access log line).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # The same service as the metrics': the access log line carries both (log_request).
    return Logger(service=SERVICE, logger_formatter=_formatter())


# What a JSON text can start with (json.loads also takes leading whitespace, NaN and Infinity).
_JSON_STARTS = frozenset('{["-0123456789tfnNI \t\r\n')


def _json_message(message: Any) -> Any:
    """json.loads for Powertools' formatter, which tries every str message as JSON (a JSON
    message is logged as an object): a message that cannot be JSON, such as "request", is
    refused at its first character instead of by the decoder's error (~2 µs)."""
    if isinstance(message, str) and message[:1] not in _JSON_STARTS:
        raise ValueError("not JSON")
    return json.loads(message)


def _formatter() -> LambdaPowertoolsFormatter:
    """Powertools' JSON formatter, writing the same lines at about two thirds of its cost per
    line (every request writes one): the reserved record attributes are a set, not a tuple
    scanned for each of a record's ~25 attributes, a message is refused as JSON without the
    decoder's error, and lines are serialized by one encoder rather than one made per line.
    tests/unit/test_request_observability.py holds its lines to Powertools' own formatter's.
    """
    from aws_lambda_powertools.logging import formatter as powertools

    reserved = frozenset(powertools.RESERVED_LOG_ATTRS)

    class Formatter(powertools.LambdaPowertoolsFormatter):
        def __init__(self) -> None:
            super().__init__(json_deserializer=_json_message)
            serializer = self.json_serializer
            # Powertools' own: functools.partial(json.dumps, **options), which builds a
            # JSONEncoder(**options) per call. One encoder with the same options writes the
            # same text.
            if (
                isinstance(serializer, functools.partial)
                and serializer.func is json.dumps
                and not serializer.args
            ):
                self.json_serializer = json.JSONEncoder(**serializer.keywords).encode

        def _extract_log_keys(self, log_record: logging.LogRecord) -> dict[str, Any]:
            # Powertools' LambdaPowertoolsFormatter._extract_log_keys, with `reserved` a set.
            record_dict = log_record.__dict__.copy()
            record_dict["asctime"] = self.formatTime(record=log_record)
            extras = {k: v for k, v in record_dict.items() if k not in reserved}
            formatted_log: dict[str, Any] = {}
            for keys in (self.log_format, powertools._get_context().get()):
                for key, value in keys.items():
                    if value and key in reserved:
                        if not isinstance(value, str):
                            raise ValueError(
                                "Logging keys that override reserved log attributes need to be "
                                f"type 'str', instead got '{type(value).__name__}'"
                            )
                        formatted_log[key] = value % record_dict
                    else:
                        formatted_log[key] = value
            formatted_log.update(**extras)
            return formatted_log

    return Formatter()


@functools.cache
def metrics() -> Metrics:
    from aws_lambda_powertools import Metrics

    recorder = Metrics(namespace=NAMESPACE, service=SERVICE)
    recorder.set_default_dimensions(stage=_stage())
    return recorder


def count_by(name: str, dimension: str, value: str, count: float = 1) -> None:
    """A count under a dimension of its own (such as an execution's `status`), published at
    once: EMF gives dimensions to a whole metric set, so it cannot join the invocation's."""
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    recorder = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    recorder.set_default_dimensions(stage=_stage())
    recorder.add_dimension(name=dimension, value=value)
    recorder.add_metric(name=name, unit=MetricUnit.Count, value=count)
    recorder.flush_metrics()
    # With POWERTOOLS_METRICS_DISABLED a flush publishes nothing and keeps the value.
    recorder.clear_metrics()


@functools.cache
def tracer() -> Tracer:
    from aws_lambda_powertools import Tracer

    # The API's AWS calls are botocore's (PynamoDB's too). Patching every library the X-Ray
    # SDK knows (its default) imports each one: ~40% of a cold first request (bench/coldstart.py).
    return Tracer(service=SERVICE, patch_modules=("botocore",))


@functools.cache
def _emf_writer() -> tuple[Callable[[Any], str], Callable[[], bool]]:
    """What writes an EMF line: an encoder with flush_metrics' options (Powertools calls
    json.dumps(..., separators=(",", ":")), which builds an encoder per line), and Powertools'
    own test of POWERTOOLS_METRICS_DISABLED (and POWERTOOLS_DEV)."""
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    return json.JSONEncoder(separators=(",", ":")).encode, is_metrics_disabled


def _metric(unit: str, value: float) -> dict[str, Any]:
    # What add_metric() keeps for a metric of one value, standard (60 s) resolution.
    return {"Unit": unit, "StorageResolution": 60, "Value": [value]}


def request_metrics(latency_ms: float, server_error: bool) -> dict[str, Any] | None:
    """An HTTP request's metrics, `Requests`, `Latency` (ms) and, for a 5xx, `ServerErrors`,
    as the members of an EMF document under the default dimensions, for the request's access
    log line to carry; None when there is nothing to carry (metrics disabled), or when they
    went out already: if anything was recorded in the shared buffer during the request, the
    request's metrics join it there and the buffer is flushed, one line as before.

    The members are those add_metric() for each and flush_metrics() would write, at a fraction
    of their cost: what does not change between requests (namespace, dimensions, metric
    definitions) is serialized by Powertools once per dimension set (_emf_head), and nothing
    goes through the shared buffer, so there is no per-value validation of constant names and
    units, and nothing to clear after. tests/unit/test_request_observability.py holds them to
    Powertools' own.
    """
    recorder = metrics()
    if (
        recorder.metric_set
        or recorder.metadata_set
        or recorder.provider.dimension_sets
        or not recorder.dimension_set.keys() <= {*recorder.default_dimensions, "service"}
    ):
        from aws_lambda_powertools.metrics import MetricUnit

        recorder.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
        recorder.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=latency_ms)
        if server_error:
            recorder.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=1)
        flush_metrics()
        return None
    _, is_metrics_disabled = _emf_writer()
    if is_metrics_disabled():
        return None  # nothing published, and nothing kept
    # What serialize_metric_set writes apart from the time and the values depends only on the
    # recorder's dimensions and on which metrics there are: made once for each of those.
    key = (tuple(recorder.dimension_set.items()), server_error)
    head = _emf_heads.get(key)
    if head is None:
        head = _emf_heads[key] = _emf_head(server_error)
    definitions, dimensions = head
    emf: dict[str, Any] = {
        "_aws": {
            "Timestamp": recorder.provider.timestamp or int(time.time() * 1000),
            "CloudWatchMetrics": definitions,
        },
        **dimensions,
        "Requests": [1.0],
        "Latency": [float(latency_ms)],
    }
    if server_error:
        emf["ServerErrors"] = [1.0]
    return emf


# (dimension items, server error) -> (CloudWatchMetrics, dimension members): see _emf_head.
_emf_heads: dict[tuple[tuple[tuple[str, str], ...], bool], tuple[list[Any], dict[str, str]]] = {}


def _emf_head(server_error: bool) -> tuple[list[Any], dict[str, str]]:
    """The parts of a request's EMF document that do not change from request to request, as
    Powertools serializes them (serialize_metric_set, under the recorder's dimensions; it adds
    `service` to them the first time)."""
    metric_set = {"Requests": _metric("Count", 1.0), "Latency": _metric("Milliseconds", 0.0)}
    if server_error:
        metric_set["ServerErrors"] = _metric("Count", 1.0)
    recorder = metrics()
    emf = recorder.serialize_metric_set(metric_set, recorder.dimension_set, recorder.metadata_set)
    dimensions = {name: emf[name] for name in recorder.dimension_set}  # type: ignore[literal-required]
    return emf["_aws"]["CloudWatchMetrics"], dimensions


def log_request(fields: dict[str, Any], latency_ms: float, server_error: bool) -> None:
    """An HTTP request's one line: the access log line (`request`, with `fields`) carrying the
    request's metrics as EMF members (request_metrics). CloudWatch takes the metrics from any
    JSON log event with an `_aws` member and keeps the line's other fields as they are, so one
    line does the work of two: one write and one JSON encoding fewer per request, and fewer
    log events to ingest. When the logger is above INFO the metrics go out alone.

    Called from the middleware: the line's `location` is the caller's (stacklevel).
    """
    log = logger()
    emf = request_metrics(latency_ms, server_error)
    if log.log_level > logging.INFO:  # (Powertools always sets its logger's own level)
        if emf is not None:
            encode, _ = _emf_writer()
            print(encode(emf))
        return
    # The access fields first, then the EMF members (`service` is one of both, the same value).
    log.info("request", extra=fields if emf is None else fields | emf, stacklevel=3)


def flush_metrics() -> None:
    """Publish the invocation's metrics, if it recorded any (an empty flush only warns)."""
    if metrics.cache_info().currsize == 0:
        return  # no recorder was made: nothing was recorded (and Powertools stays unloaded)
    recorder = metrics()
    if recorder.metric_set:
        recorder.flush_metrics()  # clears what it publishes
    if recorder.metric_set:
        # With POWERTOOLS_METRICS_DISABLED a flush publishes nothing and keeps the buffer,
        # which would then spill out once it reaches 100 values.
        recorder.clear_metrics()
