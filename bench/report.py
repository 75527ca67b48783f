"""Figures, the one table `make bench` prints, and `bench/results/latest.json`.

A figure is one measured value with its unit, and a target where there is one. Every suite of
the bench returns figures; the table and the results file are written from them alone, so
each figure in the file has a value and a unit, and a target if it is checked.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "latest.json"

Comparison = Literal["<=", ">=", "=="]
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
}


@dataclass(frozen=True)
class Target:
    """What the value must be: `value <op> bound`, e.g. at most 250 ms is `Target("<=", 250)`."""

    op: Comparison
    bound: float

    def met_by(self, value: float) -> bool:
        return not math.isnan(value) and _COMPARE[self.op](value, self.bound)

    def text(self) -> str:
        return f"{self.op} {_number(self.bound)}"


@dataclass(frozen=True)
class Figure:
    key: str  # stable, e.g. "coldstart.import_app_ms"
    label: str  # what the table shows
    value: float
    unit: str  # "ms", "MB", "x", "calls", "USD", "req/s", "items", ...
    target: Target | None = None
    group: str = ""  # the table's section
    note: str = ""

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.target.met_by(self.value)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "value": _json_number(self.value),
            "unit": self.unit,
            "label": self.label,
        }
        if self.group:
            body["group"] = self.group
        if self.target is not None:
            body["target"] = {"op": self.target.op, "value": self.target.bound}
            body["pass"] = self.passed
        if self.note:
            body["note"] = self.note
        return body

    @classmethod
    def from_json(cls, key: str, body: dict[str, Any]) -> Figure:
        target = body.get("target")
        value = body["value"]
        return cls(
            key=key,
            label=str(body.get("label", key)),
            value=float("nan") if value is None else float(value),
            unit=str(body["unit"]),
            target=Target(target["op"], float(target["value"])) if target else None,
            group=str(body.get("group", "")),
            note=str(body.get("note", "")),
        )


@dataclass
class SuiteResult:
    """What one suite hands back: its figures, and data other suites' figures are built from
    (the cost model's samples)."""

    figures: list[Figure] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "figures": {f.key: f.to_json() for f in self.figures},
            "data": self.data,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> SuiteResult:
        return cls(
            figures=[Figure.from_json(k, v) for k, v in body.get("figures", {}).items()],
            data=dict(body.get("data", {})),
        )


def _number(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1:
        return f"{value:.2f}"
    return f"{value:.4f}"


def _json_number(value: float) -> float | int | None:
    if math.isnan(value) or math.isinf(value):
        return None
    if value == int(value) and abs(value) < 2**53:
        return int(value)
    return round(value, 6)


def render_table(figures: Sequence[Figure]) -> str:
    """One table: figure, value, unit, target, pass/fail (blank where there is no target)."""
    headers = ("figure", "value", "unit", "target", "result")
    rows: list[tuple[str, ...] | str] = []
    group = None
    for figure in figures:
        if figure.group != group:
            group = figure.group
            rows.append(group or "other")
        verdict = {None: "", True: "pass", False: "FAIL"}[figure.passed]
        rows.append(
            (
                figure.label,
                _number(figure.value),
                figure.unit,
                figure.target.text() if figure.target else "",
                verdict,
            )
        )
    cells = [r for r in rows if isinstance(r, tuple)]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    align = ("<", ">", "<", "<", "<")

    def line(values: Sequence[str]) -> str:
        return "  ".join(f"{v:{a}{w}}" for v, a, w in zip(values, align, widths, strict=True))

    out = [line(headers), line(["-" * w for w in widths])]
    for row in rows:
        out.append(f"[{row}]" if isinstance(row, str) else line(row))
    return "\n".join(line.rstrip() for line in out)


def summary(figures: Sequence[Figure]) -> str:
    checked = [f for f in figures if f.passed is not None]
    failed = [f for f in checked if not f.passed]
    text = f"{len(figures)} figures, {len(checked)} with a target, {len(failed)} missed"
    if failed:
        text += ": " + "; ".join(f"{f.label} ({_number(f.value)} {f.unit})" for f in failed)
    return text


def results_json(figures: Iterable[Figure]) -> dict[str, Any]:
    """One key per figure, each with its value and unit (and target, pass where checked)."""
    out: dict[str, Any] = {}
    for figure in figures:
        if figure.key in out:
            raise ValueError(f"figure {figure.key} appears twice")
        out[figure.key] = figure.to_json()
    return out


def write_results(figures: Iterable[Figure], path: Path = RESULTS_FILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results_json(figures), indent=2, sort_keys=True) + "\n")
    return path


def read_results(path: Path = RESULTS_FILE) -> list[Figure]:
    body = json.loads(path.read_text())
    return [Figure.from_json(key, value) for key, value in body.items()]


def problems(results: dict[str, Any]) -> list[str]:
    """What is wrong with a results file's content (empty when every key is a sound figure)."""
    found = []
    for key, body in results.items():
        if not isinstance(body, dict):
            found.append(f"{key}: not an object")
            continue
        if not isinstance(body.get("unit"), str) or not body["unit"]:
            found.append(f"{key}: no unit")
        if "value" not in body or not (body["value"] is None or _is_number(body["value"])):
            found.append(f"{key}: no numeric value")
        target = body.get("target")
        if target is not None and (
            not isinstance(target, dict)
            or target.get("op") not in _COMPARE
            or not _is_number(target.get("value"))
        ):
            found.append(f"{key}: malformed target")
    return found


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def main_for_suite(run: Callable[[], SuiteResult], argv: Sequence[str]) -> None:
    """A suite's command line: print its table; `--out FILE` also writes its result as JSON
    (what `python -m bench` reads back)."""
    result = run()
    print(render_table(result.figures), flush=True)
    if "--out" in argv:
        out = Path(argv[list(argv).index("--out") + 1])
        out.write_text(json.dumps(result.to_json(), indent=2))
