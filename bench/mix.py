"""Samples for the cost model (bench/cost.py): each kind of request of the mix, run on moto in
this process, with every Lambda invocation it causes.

A request goes through Chalice's test client to the app (the `api_handler` function). Then the
streams of the tables it wrote are read (moto's DynamoDB Streams) and handed to the stream
consumer, one `on_change` invocation per table with records, as the event source mappings would
(and again for what the consumer wrote, until nothing is left). A scheduled firing is the `fire`
function with EventBridge Scheduler's event, and its stream consumers: `fire` makes the first
attempt itself, a webhook call to a loopback server that answers 204 at once (bench/hooks.py),
and no state machine execution is started. Beside the mix, "scheduled firing, 2 retries": a
webhook that answers 500 twice, then 204: `fire` (attempt 1 fails, the run is handed to the
state machine), then the state machine's functions as it runs them: `plan` (round 0: attempt
2), `run_step` (attempt 2 fails: retry), `run_step` (attempt 3 succeeds), `plan` (done), each
followed by its stream consumers. Its state transitions are set afterwards from the firings
suite's measurement on the local stack (bench/cost.py: `with_transitions`).

For each invocation: our code's time (wall time minus time in DynamoDB calls and in Step
Functions' StartExecution) and its DynamoDB and StartExecution calls; for the whole request,
the request units (bench/units.py). Each kind is run once to warm up and then `REPEAT` times;
the cost model averages them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.cost import Invocation, Sample
from bench.hooks import Webhook
from bench.inmemory import LambdaContext
from bench.units import Meter

REPEAT = 5
STREAM_ROUNDS = 3
FIRING = "scheduled firing"
RETRIED_FIRING = "scheduled firing, 2 retries"
# The retried firing's task: 3 attempts, 1 s apart (the state machine's Waits; not run here).
RETRY_POLICY = {"max_attempts": 3, "backoff_seconds": 1, "backoff_rate": 1}


class StartedRuns:
    """The state machine executions the app starts (`StepFunctionsRunner.start`, a hand-over
    to the state machine): how many, the time spent starting them, and their names."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.names: list[str] = []

    @contextmanager
    def watching(self) -> Iterator[StartedRuns]:
        from chalicelib.adapters.aws.stepfunctions import StepFunctionsRunner
        from chalicelib.domain.executions import Execution

        original = StepFunctionsRunner.start

        def start(
            runner: StepFunctionsRunner, execution: Execution, delay_seconds: int = 0
        ) -> None:
            began = time.perf_counter()
            try:
                original(runner, execution, delay_seconds)
            finally:
                self.seconds += time.perf_counter() - began
                self.count += 1
                self.names.append(execution.run_name)

        StepFunctionsRunner.start = start  # type: ignore[method-assign, assignment]
        try:
            yield self
        finally:
            StepFunctionsRunner.start = original  # type: ignore[method-assign]


class StreamTap:
    """Reads what each streamed table's stream received since the last read (moto)."""

    def __init__(self, dynamodb: Any, streams: Any, table_names: list[str]) -> None:
        self._streams = streams
        self._iterators: dict[str, list[str]] = {}
        for table in table_names:
            description = dynamodb.describe_table(TableName=table)["Table"]
            arn = description.get("LatestStreamArn")
            if not arn:
                continue
            shards = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
            self._iterators[arn] = [
                streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
                for shard in shards
            ]
        self.drain()  # start from now

    def drain(self) -> dict[str, list[dict[str, Any]]]:
        """New records by stream ARN (streams with none left out)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for arn, iterators in self._iterators.items():
            following = []
            for iterator in iterators:
                while True:
                    page = self._streams.get_records(ShardIterator=iterator)
                    records = page["Records"]
                    iterator = page["NextShardIterator"]
                    if not records:
                        break
                    found.setdefault(arn, []).extend(
                        {**record, "eventSourceARN": arn} for record in records
                    )
                following.append(iterator)
            self._iterators[arn] = following
        return found


class Sampler:
    def __init__(
        self,
        meter: Meter,
        tap: StreamTap,
        runs: StartedRuns | None = None,
        machine: Callable[[], list[str]] | None = None,
    ) -> None:
        """`runs`: the state machine starts being watched; `machine`: the names of the state
        machine's executions, as Step Functions lists them."""
        import app

        self._meter = meter
        self._tap = tap
        self._app = app
        self._runs = runs or StartedRuns()
        self._machine = machine or (lambda: [])

    def _invoke(self, function: str, work: Callable[[], Any]) -> tuple[Invocation, Any, Any]:
        starts, start_seconds = self._runs.count, self._runs.seconds
        with self._meter.recording() as calls:
            started = time.perf_counter()
            result = work()
            wall = time.perf_counter() - started
        usage = self._meter.usage(calls)
        other = self._runs.seconds - start_seconds
        invocation = Invocation(
            function,
            (wall - usage.seconds - other) * 1000,
            usage.calls,
            self._runs.count - starts,
        )
        return invocation, result, usage

    def _function(self, name: str, event: dict[str, Any]) -> tuple[Invocation, Any, Any]:
        handler = getattr(self._app, name)
        return self._invoke(name, lambda: handler(event, LambdaContext(function_name=name)))

    def _consumers(self) -> tuple[list[Invocation], float, float]:
        invocations: list[Invocation] = []
        rru = wru = 0.0
        for _ in range(STREAM_ROUNDS):
            batches = self._tap.drain()
            if not batches:
                break
            for records in batches.values():
                invocation, _, usage = self._function("on_change", {"Records": records})
                invocations.append(invocation)
                rru, wru = rru + usage.rru, wru + usage.wru
        return invocations, rru, wru

    def request(self, send: Callable[[], Any]) -> Sample:
        """One HTTP request and the stream consumers it sets off."""
        self._tap.drain()
        invocation, response, usage = self._invoke("api_handler", send)
        if response.status_code >= 300:
            raise AssertionError(f"{response.status_code}: {response.body!r}")
        consumers, rru, wru = self._consumers()
        return Sample(True, (invocation, *consumers), usage.rru + rru, usage.wru + wru)

    def firing(self, task: dict[str, Any], at: datetime, retried: bool = False) -> Sample:
        """One scheduled firing of a webhook task: `fire`, which makes the first attempt
        itself. `retried`: the webhook fails attempts 1 and 2, so `fire` hands the run over
        and the state machine's functions follow (`plan`, `run_step` x 2, `plan`)."""
        self._tap.drain()
        invocations: list[Invocation] = []
        rru = wru = 0.0
        machine_before = set(self._machine())
        starts = self._runs.count

        def step(name: str, event: dict[str, Any]) -> Any:
            nonlocal rru, wru
            invocation, result, usage = self._function(name, event)
            consumers, more_rru, more_wru = self._consumers()
            invocations.extend([invocation, *consumers])
            rru, wru = rru + usage.rru + more_rru, wru + usage.wru + more_wru
            return result

        fired = step(
            "fire",
            {
                "task_id": task["id"],
                "project_id": task["project_id"],
                "scheduled_time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "attempt": "1",
                "execution_id": str(uuid.uuid4()),
            },
        )
        expected = "running" if retried else "succeeded"  # handed over, or done
        if not fired["created"] or fired["status"] != expected:
            raise AssertionError(f"fire: {fired}")
        if retried:
            self._retries(step, fired["execution_id"])
        started = set(self._machine()) - machine_before
        wanted = {fired["execution_id"]} if retried else set()
        if started != wanted or self._runs.count - starts != len(wanted):
            raise AssertionError(f"state machine executions started: {sorted(started)}")
        # Transitions are set from the local stack's measurement (bench/firings.py).
        return Sample(False, tuple(invocations), rru, wru, 0, 1, len(started))

    @staticmethod
    def _retries(step: Callable[[str, dict[str, Any]], Any], run: str) -> None:
        """What the state machine runs for an execution handed over after attempt 1."""
        planned = step("plan", {"run": {"kind": "execution", "id": run}, "round": 0})
        if planned["done"] or [s["attempt"] for s in planned["steps"]] != [2]:
            raise AssertionError(f"plan: {planned}")
        ready = planned["steps"][0]
        outcome = step("run_step", ready)
        if outcome["outcome"] != "retry" or outcome["attempt"] != 3:
            raise AssertionError(f"run_step 2: {outcome}")
        outcome = step("run_step", {**ready, "attempt": 3})
        if outcome["outcome"] != "succeeded":
            raise AssertionError(f"run_step 3: {outcome}")
        done = step("plan", {"run": {"kind": "execution", "id": run}, "round": planned["round"]})
        if not done["done"]:
            raise AssertionError(f"plan: {done}")


def measure_mix(
    call: Callable[..., Any], admin: dict[str, Any], repeat: int = REPEAT
) -> dict[str, list[Sample]]:
    """Every kind of the mix (bench/cost.py: MIX) and the kinds reported beside it (SEPARATE),
    `repeat` times after one warm-up. The app's settings must name a state machine (the
    firings check that they start none, or one) and allow loopback webhooks."""
    import boto3

    from chalicelib import bootstrap
    from chalicelib.adapters.dynamodb import connection
    from chalicelib.adapters.dynamodb.tables import ALL_MODELS

    settings = bootstrap.container().settings
    lookup = boto3.client("dynamodb", region_name=settings.aws_region)
    streams = boto3.client(
        "dynamodbstreams",
        region_name=settings.aws_region,
        # botocore derives an account-based endpoint from a stream ARN, which moto does not route
        endpoint_url=f"https://streams.dynamodb.{settings.aws_region}.amazonaws.com",
    )
    tap = StreamTap(lookup, streams, [model.Meta.table_name for model in ALL_MODELS])
    meter = Meter(connection.root().client, lookup)
    machine_arn = settings.state_machine_arn
    if not machine_arn or not settings.allow_private_webhooks:
        raise RuntimeError("the mix needs a state machine and loopback webhooks allowed")
    stepfunctions = boto3.client("stepfunctions", region_name=settings.aws_region)

    def machine() -> list[str]:
        pages = stepfunctions.get_paginator("list_executions").paginate(stateMachineArn=machine_arn)
        return [e["name"] for page in pages for e in page["executions"]]

    runs = StartedRuns()
    sampler = Sampler(meter, tap, runs, machine)
    webhook = Webhook()
    token = admin["access_token"]
    password = "p" * 12

    def body(response: Any) -> Any:
        assert response.status_code < 300, response.body
        return json.loads(response.body) if response.body else None

    project = body(call("POST", "/projects", {"name": "Mix"}, token))["id"]
    for number in range(40):
        body(
            call(
                "POST",
                "/tasks",
                {
                    "title": f"Mix {number}",
                    "project_id": project,
                    "priority": ["low", "medium", "high"][number % 3],
                    "due_date": (datetime.now(UTC) + timedelta(days=number % 9)).isoformat(),
                },
                token,
            )
        )
    task = body(call("POST", "/tasks", {"title": "Commented", "project_id": project}, token))
    for number in range(10):
        call("POST", f"/tasks/{task['id']}/comments", {"body": f"note {number}"}, token)
    fresh = iter(
        [
            body(call("POST", "/tasks", {"title": f"Done {n}", "project_id": project}, token))
            for n in range(repeat + 1)
        ]
    )
    titles = iter(range(10**6))
    refresh = {"token": admin["refresh_token"]}

    def rotate() -> Any:
        response = call("POST", "/auth/refresh", {"refresh_token": refresh["token"]})
        refresh["token"] = json.loads(response.body)["refresh_token"]
        return response

    kinds: dict[str, Callable[[], Any]] = {
        "list tasks (filtered, sorted)": lambda: call(
            "GET", f"/tasks?project_id={project}&status=pending&sort=due_date&limit=25", token=token
        ),
        "get task": lambda: call("GET", f"/tasks/{task['id']}", token=token),
        "update task": lambda: call(
            "PATCH", f"/tasks/{task['id']}", {"title": f"Renamed {next(titles)}"}, token
        ),
        "list notifications": lambda: call("GET", "/notifications?limit=25", token=token),
        "create task": lambda: call(
            "POST", "/tasks", {"title": f"New {next(titles)}", "project_id": project}, token
        ),
        "complete task": lambda: call("POST", f"/tasks/{next(fresh)['id']}/complete", token=token),
        "post comment": lambda: call(
            "POST", f"/tasks/{task['id']}/comments", {"body": f"more {next(titles)}"}, token
        ),
        "list comments": lambda: call("GET", f"/tasks/{task['id']}/comments?limit=25", token=token),
        "list projects": lambda: call("GET", "/projects?limit=25", token=token),
        "refresh token": rotate,
        "log in": lambda: call(
            "POST", "/auth/login", {"email": admin["user"]["email"], "password": password}
        ),
    }
    samples: dict[str, list[Sample]] = {}
    try:
        for name, send in kinds.items():
            sampler.request(send)  # warm-up
            samples[name] = [sampler.request(send) for _ in range(repeat)]
        first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        webhook.fail_attempts("/retried", 3)  # attempts 1 and 2 answer 500
        for name, path, retry in (
            (FIRING, "/ok", None),
            (RETRIED_FIRING, "/retried", RETRY_POLICY),
        ):
            scheduled = body(
                call(
                    "POST",
                    "/tasks",
                    {
                        "title": name,
                        "project_id": project,
                        "schedule": {"kind": "rate", "every": 1, "unit": "hours"},
                        "action": {"type": "webhook", "url": webhook.url + path},
                        **({"retry": retry} if retry else {}),
                    },
                    token,
                )
            )
            with runs.watching():
                firings = [
                    sampler.firing(scheduled, first + timedelta(hours=n), retried=retry is not None)
                    for n in range(repeat + 1)
                ]
            samples[name] = firings[1:]
    finally:
        meter.close()
        webhook.close()
    return samples
