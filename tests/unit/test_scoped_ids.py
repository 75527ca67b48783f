"""Scoped ids (chalicelib.domain.ids): an item's ULID then its project's, parsed in one place."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from chalicelib.domain.executions import firing_execution_id, new_execution_id
from chalicelib.domain.ids import ScopedId, project_of
from chalicelib.domain.model import new_id
from chalicelib.domain.rules import new_rule_id
from chalicelib.domain.tasks import new_task_id
from chalicelib.domain.templates import new_template_id
from chalicelib.domain.workflow_runs import new_run_id
from chalicelib.domain.workflows import new_workflow_id

ITEM = "01JCZ8Q0V3M2X9T4B6N7R5K8WD"
PROJECT = "01JCZ8PZ6E4G5H7J8K9M0N1P2Q"
WIRE = ITEM + PROJECT


def test_parsing_splits_the_item_from_its_project() -> None:
    parsed = ScopedId.parse(WIRE)
    assert parsed == ScopedId(ITEM, PROJECT)
    assert (parsed.item, parsed.project_id) == (ITEM, PROJECT)
    assert project_of(WIRE) == PROJECT


@pytest.mark.parametrize(
    "make",
    [new_task_id, new_execution_id, new_workflow_id, new_run_id, new_template_id, new_rule_id],
)
def test_every_kind_of_new_id_is_a_scoped_id_of_its_project_and_round_trips(
    make: Callable[[str], str],
) -> None:
    project_id = new_id()
    wire = make(project_id)
    parsed = ScopedId.parse(wire)
    assert parsed is not None
    assert parsed.project_id == project_id
    assert str(parsed) == wire
    assert ScopedId.parse(str(parsed)) == parsed


def test_a_firings_execution_id_is_a_scoped_id_too() -> None:
    wire = firing_execution_id(PROJECT, WIRE, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert project_of(wire) == PROJECT
    assert str(ScopedId.parse(wire)) == wire


def test_new_ids_of_a_project_differ() -> None:
    assert ScopedId.new(PROJECT) != ScopedId.new(PROJECT)
    assert ScopedId.new(PROJECT).project_id == PROJECT


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "empty"),
        ("nonsense", "not an id at all"),
        (WIRE[:-1], "one character short"),
        (WIRE + "0", "one character long"),
        (ITEM, "a bare ULID: no project"),
        (WIRE.lower(), "lower case"),
        (ITEM[:-1] + "a" + PROJECT, "one lower-case character"),
        (WIRE[:-1] + "U", "U is not Crockford base 32"),
        ("I" + WIRE[1:], "I is not Crockford base 32"),
        (ITEM[:5] + "O" + ITEM[6:] + PROJECT, "O is not Crockford base 32"),
        (WIRE[:-1] + "-", "punctuation"),
        (WIRE[:-1] + "é", "non-ASCII"),
        (ITEM[:-1] + " " + PROJECT, "a space"),
        ("8" + WIRE[1:], "the item's ULID overflows 128 bits"),
        (ITEM + "Z" + PROJECT[1:], "the project's ULID overflows 128 bits"),
        ("x" * 300, "oversized"),
    ],
)
def test_a_malformed_id_names_nothing(value: str, why: str) -> None:
    assert ScopedId.parse(value) is None, why
    assert project_of(value) is None, why


@pytest.mark.parametrize(
    ("item", "project_id"),
    [(ITEM.lower(), PROJECT), (ITEM, PROJECT[:-1]), ("", ""), (ITEM, "8" + PROJECT[1:])],
)
def test_a_scoped_id_cannot_be_made_of_parts_that_are_not_ulids(item: str, project_id: str) -> None:
    with pytest.raises(ValueError, match="not a scoped id"):
        ScopedId(item, project_id)
