"""Prints the line and branch coverage of chalicelib/ and local/ from `coverage json`'s report,
and fails when chalicelib/'s line coverage is under the floor.

Line coverage alone: with branch = true, coverage's own fail_under mixes lines and branches.
Usage: python .ci/coverage_check.py coverage.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

AREAS = ("chalicelib", "local")
CHECKED_AREA = "chalicelib"
LINE_FLOOR = 95.0


def percent(covered: int, total: int) -> float:
    return 100.0 * covered / total if total else 100.0


def main(report_path: str) -> int:
    files = json.loads(Path(report_path).read_text(encoding="utf-8"))["files"]
    line_percent = {}
    for area in AREAS:
        # The report's paths are relative (relative_files = true): the area is the first part.
        summaries = [f["summary"] for name, f in files.items() if Path(name).parts[0] == area]
        lines = (
            sum(s["covered_lines"] for s in summaries),
            sum(s["num_statements"] for s in summaries),
        )
        branches = (
            sum(s["covered_branches"] for s in summaries),
            sum(s["num_branches"] for s in summaries),
        )
        line_percent[area] = percent(*lines)
        print(
            f"coverage of {area}/: lines {line_percent[area]:.1f}% ({lines[0]}/{lines[1]}),"
            f" branches {percent(*branches):.1f}% ({branches[0]}/{branches[1]})"
        )
    if line_percent[CHECKED_AREA] < LINE_FLOOR:
        print(
            f"FAIL: {CHECKED_AREA}/ line coverage {line_percent[CHECKED_AREA]:.2f}% is under"
            f" {LINE_FLOOR:.0f}% (`.venv/bin/coverage report` lists the lines missed)"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
