"""Powertools Logger, Metrics and Tracer, created on first use (they read the environment).

Powertools itself is imported on first use too: it is ~10% of importing the app, and the
function's first log line is soon enough (bench/coldstart.py).
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics, Tracer

NAMESPACE = "Taskbeat"
SERVICE = "taskbeat"


def _stage() -> str:
    """A dimension of every metric (TASKBEAT_STAGE, "local" for `make run`): stages sharing
    an account and region keep their figures apart; the dashboard asks for its own."""
    return os.environ.get("TASKBEAT_STAGE") or "local"


@functools.cache
def logger() -> Logger:
    from aws_lambda_powertools import Logger

    return Logger(service="taskbeat")


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
        recorder.flush_metrics()
        # With POWERTOOLS_METRICS_DISABLED a flush publishes nothing and keeps the buffer,
        # which would then spill out once it reaches 100 values.
        recorder.clear_metrics()
