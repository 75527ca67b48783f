"""DynamoDB calls per route, list latency at 100 vs 10,000 tasks (and a naive Scan beside it),
and the samples of the cost model's request mix.

`python -m bench.routes` runs on moto in this process (no network); numbers are for comparing
changes, not for SLAs. Every route is called a few times, each time on fresh state, and the
most DynamoDB calls it made is checked against docs/data-model.md's budget: at most 2 calls for
a read and 3 for a write, authentication included.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cost import samples_to_json
from bench.mix import measure_mix
from bench.report import Figure, SuiteResult, Target, main_for_suite
from bench.task_list import LARGE, SMALL, list_latency
from bench.task_routes import KEYED, REPLAYED, task_routes
from bench.token_routes import token_routes

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Counter:
    calls: list[str]

    def __call__(self, event_name: str, **kwargs: Any) -> None:
        self.calls.append(event_name.rsplit(".", 1)[-1])


@contextmanager
def aws() -> Iterator[None]:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="ERROR",
        TASKBEAT_TABLE_PREFIX="bench-",
        TASKBEAT_JWT_SECRET_ID="bench/jwt",
    )
    import boto3
    from moto import mock_aws

    from chalicelib import bootstrap
    from chalicelib.adapters.dynamodb import tables
    from chalicelib.settings import Settings

    with mock_aws():
        # The run state machine, created (moto does not run it here: the mix's firings count
        # the executions started); webhooks on loopback (the mix's firings call one).
        settings = Settings().model_copy(
            update={"state_machine_arn": run_state_machine(), "allow_private_webhooks": True}
        )
        tables.bind(settings.table_prefix, settings.aws_region)
        tables.create_all(boto3.client("dynamodb"), settings.table_prefix)
        boto3.client("secretsmanager").create_secret(Name="bench/jwt", SecretString="k" * 64)
        boto3.client("secretsmanager").create_secret(
            Name=settings.derivation_secret_id, SecretString="d" * 64
        )
        bootstrap.override(bootstrap.build(settings))
        try:
            yield
        finally:
            bootstrap.override(None)


def run_state_machine() -> str:
    """The run state machine (chalicelib/runs.py's definition) in moto; its ARN."""
    import boto3

    from chalicelib import runs

    role = boto3.client("iam").create_role(RoleName="runs", AssumeRolePolicyDocument="{}")
    functions = "arn:aws:lambda:us-east-1:123456789012:function:"
    created = boto3.client("stepfunctions").create_state_machine(
        name="runs",
        definition=runs.definition_json(functions + "plan", functions + "run_step"),
        roleArn=role["Role"]["Arn"],
    )
    return str(created["stateMachineArn"])


def dynamodb_calls_per_route() -> tuple[
    list[tuple[str, int, float]], dict[str, float], dict[str, Any]
]:
    from chalice.test import Client

    from app import app
    from chalicelib.adapters.dynamodb import connection

    counter = Counter([])
    rows: list[tuple[str, int, float]] = []
    with Client(app) as client:

        def call(
            method: str,
            path: str,
            body: Any = None,
            token: str | None = None,
            key: str | None = None,
        ) -> Any:
            headers = {"content-type": "application/json"}
            if token:
                headers["authorization"] = f"Bearer {token}"
            if key:
                headers["idempotency-key"] = key
            payload = json.dumps(body).encode() if body is not None else b""
            return getattr(client.http, method.lower())(f"/v1{path}", body=payload, headers=headers)

        def measure(label: str, request: Callable[[], Any], repeat: int = 5) -> Any:
            timings, counts, response = [], [], None
            for _ in range(repeat):
                counter.calls.clear()
                started = time.perf_counter()
                response = request()
                timings.append((time.perf_counter() - started) * 1000)
                counts.append(len(counter.calls))
            rows.append((label, max(counts), statistics.median(timings)))
            return response

        # Warm up: the first request builds the container and the shared client.
        admin = json.loads(
            call(
                "POST", "/auth/register", {"email": "a@x.io", "password": "p" * 12, "name": "A"}
            ).body
        )
        connection.root().client.meta.events.register("before-call.dynamodb", counter)
        emails = iter(f"user{i}@x.io" for i in range(100))
        member = json.loads(
            measure(
                "POST /auth/register",
                lambda: call(
                    "POST",
                    "/auth/register",
                    {"email": next(emails), "password": "p" * 12, "name": "U"},
                ),
                repeat=3,
            ).body
        )
        measure(
            "POST /auth/login",
            lambda: call("POST", "/auth/login", {"email": "a@x.io", "password": "p" * 12}),
        )
        refresh = {"token": member["refresh_token"]}

        def rotate() -> Any:
            response = call("POST", "/auth/refresh", {"refresh_token": refresh["token"]})
            refresh["token"] = json.loads(response.body)["refresh_token"]
            return response

        measure("POST /auth/refresh", rotate)
        token = admin["access_token"]
        measure("GET /users/profile", lambda: call("GET", "/users/profile", token=token))
        measure(
            "PATCH /users/profile",
            lambda: call("PATCH", "/users/profile", {"name": "B"}, token=token),
        )
        measure("GET /users?q=user", lambda: call("GET", "/users?q=user&limit=25", token=token))
        measure(
            "PUT /users/{id}/role",
            lambda: call(
                "PUT", f"/users/{member['user']['id']}/role", {"role": "member"}, token=token
            ),
        )
        measure("GET /health", lambda: call("GET", "/health"))
        project_routes(call, measure, token, member)
        hook_routes(call, measure, token)
        task_routes(call, measure, token, member)
        token_routes(call, measure, token)
        sessions = iter(
            [
                json.loads(
                    call("POST", "/auth/login", {"email": "a@x.io", "password": "p" * 12}).body
                )["access_token"]
                for _ in range(5)
            ]
        )
        measure("POST /auth/logout", lambda: call("POST", "/auth/logout", token=next(sessions)))
        login = json.loads(
            call("POST", "/auth/login", {"email": "a@x.io", "password": "p" * 12}).body
        )
        # Before the 10,100 tasks of the list latency: moto copies every table in each
        # transaction, so with them in the table a transactional write takes seconds.
        mix = samples_to_json(measure_mix(call, login))
        latency = list_latency(client, token, admin["user"]["id"])
    return rows, latency, mix


def project_routes(
    call: Callable[..., Any], measure: Callable[..., Any], token: str, other: dict[str, Any]
) -> None:
    """Projects and members; every write gets fresh state, so each repetition does real work."""
    project = json.loads(
        measure("POST /projects", lambda: call("POST", "/projects", {"name": "P"}, token)).body
    )
    path = f"/projects/{project['id']}"
    measure("GET /projects", lambda: call("GET", "/projects?limit=25", token=token))
    measure("GET /projects/{id}", lambda: call("GET", path, token=token))
    measure("PATCH /projects/{id}", lambda: call("PATCH", path, {"name": "Q"}, token))
    doomed = iter(
        [json.loads(call("POST", "/projects", {"name": "D"}, token).body)["id"] for _ in range(5)]
    )
    measure(
        "DELETE /projects/{id}", lambda: call("DELETE", f"/projects/{next(doomed)}", token=token)
    )
    members = f"{path}/members"
    measure("GET /projects/{id}/members", lambda: call("GET", members, token=token))
    newcomers = iter(
        [
            json.loads(
                call(
                    "POST",
                    "/auth/register",
                    {"email": f"member{i}@x.io", "password": "p" * 12, "name": "M"},
                ).body
            )["user"]
            for i in range(10)
        ]
    )
    added: list[str] = []

    def add(by: str) -> Any:
        user = next(newcomers)
        added.append(user["id"])
        target = {"user_id": user["id"]} if by == "user_id" else {"email": user["email"]}
        return call("POST", members, {**target, "role": "viewer"}, token)

    measure("POST .../members (user_id)", lambda: add("user_id"))
    measure("POST .../members (email)", lambda: add("email"))
    member_path = f"{members}/{other['user']['id']}"
    call("POST", members, {"user_id": other["user"]["id"], "role": "viewer"}, token)
    roles = iter(["member", "admin"] * 3)
    measure(
        "PATCH .../members/{uid}", lambda: call("PATCH", member_path, {"role": next(roles)}, token)
    )
    leaving = iter(added)
    measure(
        "DELETE .../members/{uid}",
        lambda: call("DELETE", f"{members}/{next(leaving)}", token=token),
    )


def hook_routes(call: Callable[..., Any], measure: Callable[..., Any], token: str) -> None:
    """Project hooks (admin+). The URL is a public address written as a number (no DNS here);
    no delivery runs in this suite, so nothing is sent to it."""
    project = json.loads(call("POST", "/projects", {"name": "H"}, token).body)
    path = f"/projects/{project['id']}/hooks"
    body = {"url": "https://93.184.216.34/in", "events": ["task.created"]}
    hook = json.loads(
        measure("POST /projects/{id}/hooks", lambda: call("POST", path, body, token)).body
    )
    one = f"/hooks/{hook['id']}"
    measure("GET /projects/{id}/hooks", lambda: call("GET", path, token=token))
    measure("GET /hooks/{id}", lambda: call("GET", one, token=token))
    flips = iter([False, True] * 3)
    measure("PATCH /hooks/{id}", lambda: call("PATCH", one, {"active": next(flips)}, token))
    measure("GET /hooks/{id}/deliveries", lambda: call("GET", f"{one}/deliveries", token=token))
    doomed = iter([json.loads(call("POST", path, body, token).body)["id"] for _ in range(5)])
    measure("DELETE /hooks/{id}", lambda: call("DELETE", f"/hooks/{next(doomed)}", token=token))


GROUP_CALLS = "DynamoDB calls per request (auth included; most of a few runs)"
GROUP_LIST = "GET /tasks?project_id&status=pending&sort=due_date&limit=25 (median)"


def _key(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label.lower()).strip("_")


def measure() -> SuiteResult:
    with aws():
        rows, latency, mix = dynamodb_calls_per_route()
    figures = []
    for label, calls, _ in rows:
        # docs/data-model.md: at most 2 calls for a read and 3 for a write, auth included.
        budget = 2 if label.startswith("GET ") else 3
        # A POST with an Idempotency-Key: the write's budget and the claim and the kept answer
        # (the claim's check rides in the write's own transaction); its replay: session + claim.
        budget = {KEYED: 3 + 2, REPLAYED: 2}.get(label, budget)
        figures.append(
            Figure(f"calls.{_key(label)}", label, calls, "calls", Target("<=", budget), GROUP_CALLS)
        )
    small, large = f"{SMALL:,}", f"{LARGE:,}"

    def listing(
        key: str, label: str, value: float, unit: str, target: Target | None = None
    ) -> Figure:
        return Figure(f"list.{key}", label, value, unit, target, GROUP_LIST)

    figures += [
        listing("ours_small_ms", f"ours, our code, {small} tasks", latency["ours_small_ms"], "ms"),
        listing("ours_large_ms", f"ours, our code, {large} tasks", latency["ours_large_ms"], "ms"),
        listing(
            "ours_ratio",
            f"ours, our code, {large} / {small}",
            latency["ratio"],
            "x",
            Target("<=", 1.2),
        ),
        listing(
            "ours_items_small", f"ours, items evaluated, {small}", latency["scanned_small"], "items"
        ),
        listing(
            "ours_items_large", f"ours, items evaluated, {large}", latency["scanned_large"], "items"
        ),
        listing("ours_rru_large", f"ours, read units, {large}", latency["ours_rru_large"], "RRU"),
        listing(
            "ours_moto_small_ms", f"ours, wall on moto, {small}", latency["moto_small_ms"], "ms"
        ),
        listing(
            "ours_moto_large_ms", f"ours, wall on moto, {large}", latency["moto_large_ms"], "ms"
        ),
        listing(
            "naive_small_ms",
            f"naive Scan+filter, our code, {small}",
            latency["scan_small_ms"],
            "ms",
        ),
        listing(
            "naive_large_ms",
            f"naive Scan+filter, our code, {large}",
            latency["scan_large_ms"],
            "ms",
        ),
        listing(
            "naive_ratio",
            f"naive Scan+filter, our code, {large} / {small}",
            latency["scan_large_ms"] / latency["scan_small_ms"],
            "x",
        ),
        listing(
            "naive_items_small",
            f"naive Scan+filter, items evaluated, {small}",
            latency["scan_scanned_small"],
            "items",
        ),
        listing(
            "naive_items_large",
            f"naive Scan+filter, items evaluated, {large}",
            latency["scan_scanned_large"],
            "items",
        ),
        listing(
            "naive_pages_large",
            f"naive Scan+filter, 1 MB round trips, {large}",
            latency["scan_pages"],
            "calls",
        ),
        listing(
            "naive_rru_large",
            f"naive Scan+filter, read units, {large}",
            latency["scan_rru_large"],
            "RRU",
        ),
        listing(
            "naive_vs_ours_ms_large",
            f"naive / ours, our code, {large}",
            latency["scan_large_ms"] / latency["ours_large_ms"],
            "x",
        ),
        listing(
            "naive_vs_ours_rru_large",
            f"naive / ours, read units, {large}",
            latency["scan_rru_large"] / latency["ours_rru_large"],
            "x",
        ),
    ]
    return SuiteResult(
        figures, {"mix_samples": mix, "route_ms_on_moto": {r[0]: r[2] for r in rows}}
    )


if __name__ == "__main__":
    main_for_suite(measure, sys.argv[1:])
