"""Powertools Logger, Metrics and Tracer, created on first use (they read the environment).

Powertools itself is imported on first use too: it is ~10% of importing the app, and the
function's first log line is soon enough (bench/coldstart.py).
"""

from __future__ import annotations

import functools
import json
import logging
import os
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

    return Logger(service="taskbeat", logger_formatter=_formatter())


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
    return Tracer(service="taskbeat", patch_modules=("botocore",))


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
