"""Dependency graphs: finding a cycle, and the 422 that names it.

A graph maps each node to the nodes it depends on (`{node: [dependency, ...]}`). Task
dependencies (`chalicelib.domain.tasks`) and workflow steps (`chalicelib.domain.workflows`)
both use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chalicelib.domain.errors import ValidationFailed


def find_cycle(
    graph: Mapping[str, Sequence[str]], starts: Iterable[str] | None = None
) -> list[str] | None:
    """A cycle reachable from `starts` (default: every node, in the graph's order), as the path
    `[a, b, ..., a]` where each node depends on the next; None if there is none.

    One depth-first walk, O(nodes + edges), without recursion (deep chains are fine). A node
    that is not a key of `graph` has no dependencies.
    """
    done: set[str] = set()
    for start in graph if starts is None else starts:
        if start in done:
            continue
        # The path from `start`, each node with an iterator over its unvisited dependencies.
        path: list[str] = [start]
        position = {start: 0}
        pending = [iter(graph.get(start, ()))]
        while pending:
            node = next(pending[-1], None)
            if node is None:
                finished = path.pop()
                del position[finished]
                pending.pop()
                done.add(finished)
                continue
            if node in position:  # back to a node on the path: the cycle is that stretch
                return [*path[position[node] :], node]
            if node in done:
                continue
            position[node] = len(path)
            path.append(node)
            pending.append(iter(graph.get(node, ())))
    return None


def cycle_error(message: str, cycle: Sequence[str], loc: Sequence[str | int]) -> ValidationFailed:
    """422 naming the cycle: `message` and the detail at `loc` both show `a -> b -> a`, and the
    detail carries the path itself as `cycle`."""
    shown = " -> ".join(cycle)
    detail: dict[str, Any] = {"loc": list(loc), "message": f"cycle: {shown}", "cycle": list(cycle)}
    return ValidationFailed(f"{message}: {shown}", [detail])
