"""Powertools Logger, Metrics and Tracer, created on first use (they read the environment)."""

from __future__ import annotations

import functools

from aws_lambda_powertools import Logger, Metrics, Tracer


@functools.cache
def logger() -> Logger:
    return Logger(service="taskbeat")


@functools.cache
def metrics() -> Metrics:
    return Metrics(namespace="Taskbeat", service="taskbeat")


@functools.cache
def tracer() -> Tracer:
    return Tracer(service="taskbeat")
