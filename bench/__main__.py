"""`make bench`: every benchmark of bench/, one table, and bench/results/latest.json.

Each suite runs in a process of its own (`python -m bench.<suite> --out FILE`), one after the
other, so none disturbs another's figures or inherits another's state (the local-stack suites
start their own stack). Then the cost model (bench/cost.py) is computed from the request mix the
routes suite measured and the state transitions the firings suite counted for a firing with 2
retries (the only kind measured that runs on the state machine), and everything is printed as
one table and written to bench/results/latest.json (one key per figure: value, unit, target
and pass where there is a target). docs/benchmarks.md explains each figure.

`python -m bench --only coldstart,warm` runs some suites only (the results file is then not
written unless `--write` is given). Exits non-zero if a suite failed; a missed target is
reported in the table, not as a failure of the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import cost
from bench.report import (
    Figure,
    SuiteResult,
    Target,
    render_table,
    summary,
    write_results,
)

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Suite:
    name: str
    args: tuple[str, ...] = ()
    timeout: float = 300


# In this order; about 5 minutes in all on a quiet 2-core machine.
SUITES = (
    Suite("coldstart", timeout=240),
    Suite("warm"),
    Suite("routes"),
    Suite("throughput", timeout=180),
    Suite("realtime"),
    Suite("workflows"),
    Suite("firings", ("--quick",), timeout=400),
    Suite("hook_latency", ("--quick",), timeout=180),
)


def run_suite(suite: Suite, scratch: Path) -> SuiteResult:
    out = scratch / f"{suite.name}.json"
    started = time.monotonic()
    print(f"bench: {suite.name} ...", file=sys.stderr, flush=True)
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{suite.name}", *suite.args, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=suite.timeout,
        check=False,
    )
    print(
        f"bench: {suite.name} took {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True
    )
    if result.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"bench.{suite.name} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return SuiteResult.from_json(json.loads(out.read_text()))


def cost_figures(results: dict[str, SuiteResult]) -> list[Figure]:
    routes = results.get("routes")
    if routes is None or "mix_samples" not in routes.data:
        return []
    samples = cost.samples_from_json(routes.data["mix_samples"])
    firings = results.get("firings")
    measured = next(
        (
            f.value
            for f in (firings.figures if firings else [])
            if f.key == "firings.transitions_with_2_retries"
        ),
        None,
    )
    if measured:
        transitions = int(measured)
        note = "firings in the mix start none; a retried run's transitions measured locally"
    else:
        transitions = cost.STATIC_TRANSITIONS_2_RETRIES
        note = "firings suite missing: transitions of the definition's path with 2 retries"
    return cost.figures(cost.with_transitions(samples, transitions), transitions_note=note)


def main(argv: list[str]) -> int:
    only = None
    if "--only" in argv:
        only = set(argv[argv.index("--only") + 1].split(","))
    write = only is None or "--write" in argv
    started = time.monotonic()
    results: dict[str, SuiteResult] = {}
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        for suite in SUITES:
            if only is not None and suite.name not in only:
                continue
            try:
                results[suite.name] = run_suite(suite, Path(scratch))
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                failed.append(suite.name)
                print(f"bench: {suite.name} FAILED: {exc}", file=sys.stderr, flush=True)
    figures = [figure for result in results.values() for figure in result.figures]
    try:
        figures += cost_figures(results)
    except (ValueError, KeyError) as exc:
        failed.append("cost")
        print(f"bench: cost model FAILED: {exc}", file=sys.stderr)
    figures += [
        Figure(
            "bench.suites_failed",
            "suites that failed" + (f" ({', '.join(failed)})" if failed else ""),
            len(failed),
            "suites",
            Target("==", 0),
            "this run",
        ),
        Figure(
            "bench.duration_s",
            "time of the whole run",
            time.monotonic() - started,
            "s",
            Target("<=", 300) if only is None else None,
            "this run",
        ),
    ]
    print(render_table(figures))
    print(summary(figures))
    if write:
        path = write_results(figures)
        print(f"written: {path.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
