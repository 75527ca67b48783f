"""The modelled AWS cost of a million requests of a defined mix, at us-east-1 list prices.

Pure arithmetic on measured samples (bench/mix.py measures them on moto, in process): for each
kind of request in the mix, the Lambda invocations it causes (the API handler, the stream
consumer for each streamed table it wrote, the scheduler's `fire` for a firing, and the state
machine's functions for a firing whose first attempt failed) with their durations, the
DynamoDB request units of all of them, and Step Functions state transitions (only a run
handed to the state machine has any). Each invocation's billed duration is modelled as

    our code's time here x CPU_SCALE(memory) + DynamoDB calls x DYNAMODB_CALL_MS
        + other AWS calls (StartExecution) x AWS_CALL_MS

(Lambda gives a function CPU in proportion to its memory, one vCPU at 1,769 MB; moto's time is
no model of DynamoDB's or Step Functions', so each call counts a typical in-region round trip
instead), rounded up to the millisecond, at the memory `.chalice/config.json` gives the
function.

Prices and what is left out are in docs/benchmarks.md; tests/unit/test_bench.py checks the
arithmetic on fixed inputs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.report import Figure, Target

ROOT = Path(__file__).resolve().parents[1]
GROUP = "cost per million requests of the mix (modelled)"

PRICES_AS_OF = "2026-11-21"  # assumed unchanged since last published; see docs/benchmarks.md
DYNAMODB_CALL_MS = 5.0  # one in-region DynamoDB round trip from Lambda (assumed)
AWS_CALL_MS = 25.0  # one in-region Step Functions StartExecution from Lambda (assumed)
FULL_VCPU_MB = 1769  # Lambda: one vCPU at 1,769 MB, in proportion below
# States the run of a firing whose webhook failed twice enters (chalicelib/runs.py), handed
# over after the first attempt with its backoff: Start, Delay, Plan, DoneOrRun, RunSteps,
# Attempt (2: retry), AgainOrDone, Backoff, NextAttempt, Attempt (3: succeeded), AgainOrDone,
# StepDone, Plan, DoneOrRun, Finished. Used only when the firings suite, which counts them
# from a real execution's history on the local stack, did not run. A firing whose first
# attempt succeeds starts no state machine execution: no transitions at all.
STATIC_TRANSITIONS_2_RETRIES = 15


@dataclass(frozen=True)
class Prices:
    """us-east-1 list prices, USD, x86, no free tier."""

    lambda_gb_second: float = 0.0000166667
    lambda_request: float = 0.20 / 1e6
    api_gateway_rest_request: float = 3.50 / 1e6  # first 333 million a month
    waf_request: float = 0.60 / 1e6  # the web ACL on the REST stage (docs/protection.md)
    dynamodb_read_unit: float = 0.125 / 1e6  # on-demand read request unit
    dynamodb_write_unit: float = 0.625 / 1e6  # on-demand write request unit
    step_functions_transition: float = 0.025 / 1000  # Standard workflows
    scheduler_invocation: float = 1.00 / 1e6  # EventBridge Scheduler


PRICES = Prices()


@dataclass(frozen=True)
class Invocation:
    function: str  # the Chalice function name: api_handler, on_change, fire, plan, run_step
    code_ms: float  # measured: wall time minus time in DynamoDB and other AWS calls
    dynamodb_calls: int
    aws_calls: int = 0  # other AWS API calls: Step Functions StartExecution (a hand-over)


@dataclass(frozen=True)
class Sample:
    """What one request of a kind causes, measured."""

    http: bool  # through API Gateway and WAF
    invocations: tuple[Invocation, ...]
    read_units: float
    write_units: float
    transitions: int = 0
    scheduler_invocations: int = 0
    state_machine_executions: int = 0  # Step Functions executions started (hand-overs)

    def to_json(self) -> dict[str, Any]:
        return {
            "http": self.http,
            "invocations": [vars(i) for i in self.invocations],
            "read_units": self.read_units,
            "write_units": self.write_units,
            "transitions": self.transitions,
            "scheduler_invocations": self.scheduler_invocations,
            "state_machine_executions": self.state_machine_executions,
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Sample:
        return cls(
            http=bool(body["http"]),
            invocations=tuple(Invocation(**i) for i in body["invocations"]),
            read_units=float(body["read_units"]),
            write_units=float(body["write_units"]),
            transitions=int(body.get("transitions", 0)),
            scheduler_invocations=int(body.get("scheduler_invocations", 0)),
            state_machine_executions=int(body.get("state_machine_executions", 0)),
        )


# The mix: what a million requests are made of (shares add up to 1). A "scheduled firing" is
# one firing of a scheduled task whose webhook succeeds at the first attempt (`fire` alone, on
# the fast path; a slower webhook adds its response time to fire's duration), counted as one
# request of the mix.
MIX: dict[str, float] = {
    "list tasks (filtered, sorted)": 0.30,
    "get task": 0.15,
    "update task": 0.10,
    "list notifications": 0.10,
    "create task": 0.05,
    "complete task": 0.05,
    "post comment": 0.05,
    "list comments": 0.05,
    "list projects": 0.05,
    "refresh token": 0.04,
    "log in": 0.01,
    "scheduled firing": 0.05,
}
# Measured and reported beside the mix, not part of its shares: a firing whose webhook fails
# twice before it succeeds (its retries run on the state machine).
SEPARATE: tuple[str, ...] = ("scheduled firing, 2 retries",)
# Targets of a kind's cost per million (USD): the fast path's (docs/benchmarks.md).
KIND_TARGETS: dict[str, Target] = {"scheduled firing": Target("<=", 10)}


def memory_mb(config_path: Path = ROOT / ".chalice" / "config.json") -> dict[str, int]:
    """Each function's memory from `.chalice/config.json` (the default for the others)."""
    config = json.loads(config_path.read_text())
    default = int(config.get("lambda_memory_size", 128))
    functions = config.get("lambda_functions", {})
    names = {"api_handler", "on_change", "fire", "plan", "run_step", *functions}
    return {name: int(functions.get(name, {}).get("lambda_memory_size", default)) for name in names}


def cpu_scale(memory: int) -> float:
    return max(1.0, FULL_VCPU_MB / memory)


def billed_ms(invocation: Invocation, memory: int) -> int:
    modelled = invocation.code_ms * cpu_scale(memory)
    modelled += invocation.dynamodb_calls * DYNAMODB_CALL_MS
    modelled += invocation.aws_calls * AWS_CALL_MS
    return max(1, math.ceil(modelled))


@dataclass
class Cost:
    """USD for one request of a kind, by service."""

    lambda_compute: float = 0.0
    lambda_requests: float = 0.0
    api_gateway: float = 0.0
    waf: float = 0.0
    dynamodb: float = 0.0
    step_functions: float = 0.0
    scheduler: float = 0.0
    lambda_ms: float = 0.0  # billed Lambda milliseconds, all invocations
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return (
            self.lambda_compute
            + self.lambda_requests
            + self.api_gateway
            + self.waf
            + self.dynamodb
            + self.step_functions
            + self.scheduler
        )


def cost_of(sample: Sample, memory: Mapping[str, int], prices: Prices = PRICES) -> Cost:
    cost = Cost()
    for invocation in sample.invocations:
        mb = memory[invocation.function]
        ms = billed_ms(invocation, mb)
        cost.lambda_ms += ms
        cost.lambda_compute += ms / 1000 * mb / 1024 * prices.lambda_gb_second
        cost.lambda_requests += prices.lambda_request
    if sample.http:
        cost.api_gateway = prices.api_gateway_rest_request
        cost.waf = prices.waf_request
    cost.dynamodb = (
        sample.read_units * prices.dynamodb_read_unit
        + sample.write_units * prices.dynamodb_write_unit
    )
    cost.step_functions = sample.transitions * prices.step_functions_transition
    cost.scheduler = sample.scheduler_invocations * prices.scheduler_invocation
    return cost


def mean_cost(samples: Sequence[Sample], memory: Mapping[str, int], prices: Prices) -> Cost:
    """The average cost of one request of a kind over its measured samples."""
    if not samples:
        raise ValueError("no samples")
    costs = [cost_of(sample, memory, prices) for sample in samples]
    n = len(costs)
    return Cost(
        lambda_compute=sum(c.lambda_compute for c in costs) / n,
        lambda_requests=sum(c.lambda_requests for c in costs) / n,
        api_gateway=sum(c.api_gateway for c in costs) / n,
        waf=sum(c.waf for c in costs) / n,
        dynamodb=sum(c.dynamodb for c in costs) / n,
        step_functions=sum(c.step_functions for c in costs) / n,
        scheduler=sum(c.scheduler for c in costs) / n,
        lambda_ms=sum(c.lambda_ms for c in costs) / n,
    )


def cost_per_million(
    samples: Mapping[str, Sequence[Sample]],
    mix: Mapping[str, float] = MIX,
    memory: Mapping[str, int] | None = None,
    prices: Prices = PRICES,
) -> Cost:
    """The mix's cost for a million requests, by service (USD); `parts` by kind."""
    if abs(sum(mix.values()) - 1.0) > 1e-9:
        raise ValueError(f"the mix's shares add up to {sum(mix.values())}, not 1")
    missing = {name for name in mix if not samples.get(name)}
    if missing:
        raise ValueError(f"no sample for {sorted(missing)}")
    memory = memory or memory_mb()
    total = Cost()
    for name, share in mix.items():
        one = mean_cost(samples[name], memory, prices)
        scale = share * 1e6
        total.lambda_compute += one.lambda_compute * scale
        total.lambda_requests += one.lambda_requests * scale
        total.api_gateway += one.api_gateway * scale
        total.waf += one.waf * scale
        total.dynamodb += one.dynamodb * scale
        total.step_functions += one.step_functions * scale
        total.scheduler += one.scheduler * scale
        total.lambda_ms += one.lambda_ms * share
        total.parts[name] = one.total * scale
    return total


def figures(
    samples: Mapping[str, Sequence[Sample]],
    mix: Mapping[str, float] = MIX,
    transitions_note: str = "",
) -> list[Figure]:
    total = cost_per_million(samples, mix)

    def usd(key: str, label: str, value: float, note: str = "") -> Figure:
        return Figure(f"cost.{key}", label, value, "USD", None, GROUP, note)

    def per_request(attribute: str) -> float:
        return sum(
            share * sum(float(getattr(s, attribute)) for s in samples[name]) / len(samples[name])
            for name, share in mix.items()
        )

    memory = memory_mb()
    shares: dict[str, str] = {name: f"{share:.0%} of the mix" for name, share in mix.items()}
    shares |= {name: "not in the mix" for name in samples if name not in mix}
    kinds = [
        Figure(
            kind_key(name),
            f"  a million of: {name} ({what})",
            mean_cost(samples[name], memory, PRICES).total * 1e6,
            "USD",
            KIND_TARGETS.get(name),
            GROUP,
        )
        for name, what in shares.items()
        if samples.get(name)
    ]
    return [
        usd("total_usd", "total per million requests", total.total),
        usd(
            "lambda_usd",
            "  Lambda (GB-s and requests)",
            total.lambda_compute + total.lambda_requests,
        ),
        usd("api_gateway_usd", "  API Gateway REST requests", total.api_gateway),
        usd("waf_usd", "  WAF requests", total.waf),
        usd("dynamodb_usd", "  DynamoDB on-demand request units", total.dynamodb),
        usd(
            "step_functions_usd",
            "  Step Functions transitions (retried firings only)",
            total.step_functions,
            transitions_note,
        ),
        usd("scheduler_usd", "  EventBridge Scheduler invocations", total.scheduler),
        Figure(
            "cost.lambda_ms_per_request",
            "billed Lambda time per request of the mix",
            total.lambda_ms,
            "ms",
            None,
            GROUP,
        ),
        Figure(
            "cost.read_units_per_request",
            "DynamoDB read units per request of the mix",
            per_request("read_units"),
            "RRU",
            None,
            GROUP,
        ),
        Figure(
            "cost.write_units_per_request",
            "DynamoDB write units per request of the mix",
            per_request("write_units"),
            "WRU",
            None,
            GROUP,
        ),
        *kinds,
    ]


def kind_key(name: str) -> str:
    """`cost.kind.<name>`: "scheduled firing, 2 retries" -> cost.kind.scheduled_firing_2_retries."""
    words = "".join(c if c.isalnum() else " " for c in name).split()
    return "cost.kind." + "_".join(words)


def with_transitions(
    samples: Mapping[str, Sequence[Sample]], transitions: int
) -> dict[str, list[Sample]]:
    """The samples, with the state transitions of a state machine execution (a firing's run
    with 2 retries, measured on the local stack by bench/firings.py) set on each sample that
    started one; a firing whose first attempt succeeded started none and gets none."""
    return {
        name: [
            replace(s, transitions=s.state_machine_executions * transitions)
            if s.state_machine_executions
            else s
            for s in kind
        ]
        for name, kind in samples.items()
    }


def samples_from_json(body: Mapping[str, Any]) -> dict[str, list[Sample]]:
    return {name: [Sample.from_json(s) for s in kind] for name, kind in body.items()}


def samples_to_json(samples: Mapping[str, Sequence[Sample]]) -> dict[str, Any]:
    return {name: [s.to_json() for s in kind] for name, kind in samples.items()}
