"""Warm overhead per request: the app's own code against a bare Chalice route.

`python -m bench.warm` calls both handlers the way Lambda does, `app(event, context)` with an
API Gateway REST proxy event (bench/inmemory.py), in this process, after a warm-up:

- the app, `GET /v1/tasks/{task_id}` and `PATCH /v1/tasks/{task_id}` on in-memory adapters
  (tests/fakes.py): routing, body and query parsing, JWT check and session lookup, the task
  service, serialization, and the middleware (access log, metrics, security headers; logs and
  metrics go to /dev/null, X-Ray is off);
- bench/bare_app.py, `GET /v1/hello` returning a constant.

Per-request medians, alternating blocks of requests so the machine's load hits both alike;
the ratio app / bare is printed (target for the GET: at most 5x). No DynamoDB time is in these
(see bench/cost.py for that).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.report import Figure, SuiteResult, Target, main_for_suite

ROUNDS, BLOCK, WARMUP = 40, 50, 200
GROUP = "warm overhead (in-memory adapters)"
GET_RATIO_BUDGET = 5.0  # the GET of one task against the bare route (issue 16)


def _timed(handler: Any, make_event: Callable[[], dict[str, Any]], count: int) -> list[float]:
    from bench.inmemory import LambdaContext

    context = LambdaContext()
    samples = []
    for _ in range(count):
        event = make_event()
        started = time.perf_counter_ns()
        response = handler(event, context)
        samples.append((time.perf_counter_ns() - started) / 1000)
        if response["statusCode"] >= 300:
            raise AssertionError(f"{event['httpMethod']} {event['path']}: {response}")
    return samples


def measure(rounds: int = ROUNDS, block: int = BLOCK) -> SuiteResult:
    import app as taskbeat
    from bench import bare_app
    from bench.inmemory import in_memory_container, quiet_observability, rest_event
    from chalicelib import bootstrap

    world = in_memory_container()
    bootstrap.override(world.container)
    resource, params = "/v1/tasks/{task_id}", {"task_id": world.task_id}
    titles = iter(range(10**9))
    cases: dict[str, tuple[Any, Callable[[], dict[str, Any]]]] = {
        "bare": (bare_app.app, lambda: rest_event("GET", "/v1/hello")),
        "get": (taskbeat.app, lambda: rest_event("GET", resource, params, token=world.token)),
        "patch": (
            taskbeat.app,
            lambda: rest_event(
                "PATCH", resource, params, body={"title": f"T{next(titles)}"}, token=world.token
            ),
        ),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    try:
        with quiet_observability():
            for handler, make_event in cases.values():
                _timed(handler, make_event, WARMUP)
            for _ in range(rounds):
                for name, (handler, make_event) in cases.items():
                    samples[name] += _timed(handler, make_event, block)
    finally:
        bootstrap.override(None)
    median = {name: statistics.median(values) for name, values in samples.items()}
    figures = [
        Figure(
            "warm.bare_us", "bare Chalice route, per request", median["bare"], "µs", None, GROUP
        ),
        Figure(
            "warm.get_task_us",
            "app GET /tasks/{id}, per request",
            median["get"],
            "µs",
            None,
            GROUP,
        ),
        Figure(
            "warm.get_task_ratio",
            "app GET /tasks/{id} / bare route",
            median["get"] / median["bare"],
            "x",
            Target("<=", GET_RATIO_BUDGET),
            GROUP,
        ),
        Figure(
            "warm.patch_task_us",
            "app PATCH /tasks/{id}, per request",
            median["patch"],
            "µs",
            None,
            GROUP,
        ),
        Figure(
            "warm.patch_task_ratio",
            "app PATCH /tasks/{id} / bare route",
            median["patch"] / median["bare"],
            "x",
            None,
            GROUP,
        ),
    ]
    return SuiteResult(figures, {"requests_per_case": rounds * block})


if __name__ == "__main__":
    main_for_suite(measure, sys.argv[1:])
