"""GET /projects/{id}/events over HTTP (Chalice's test client on moto): the events the stream
consumer kept for the project's subscribers, paged oldest first from `after`, who may read
them, the contract's errors, and its two DynamoDB calls."""

from __future__ import annotations

from typing import Any

from chalicelib import bootstrap
from chalicelib.adapters.dynamodb.tables import specs
from chalicelib.domain.event_log import event_id, parse_event_id
from chalicelib.handlers import streams
from tests.integration.test_activity_api import Team, error_of, http, team
from tests.integration.test_search import stream_event

__all__ = ["http", "team"]  # fixtures, shared

EVENT_FIELDS = {"id", "type", "at", "data"}


def consume_streams(container: bootstrap.Container) -> None:
    """What Lambda's event source mappings do: every stream's records to `on_change` (a
    stream read again from its start is logged once: the records' claims)."""
    for spec in specs():
        if spec.stream:
            streams.on_change(stream_event(container.settings.table_name(spec.base_name)))


def seq(value: str) -> int:
    position = parse_event_id(value)
    assert position is not None
    return position.seq


def first_id(team: Team) -> str:
    page = team("member", "GET", f"/projects/{team.project_id}/events?limit=1")
    return str(page.json["items"][0]["id"])


def test_events_come_oldest_first_and_page_by_after(
    team: Team, container: bootstrap.Container
) -> None:
    first = team.task(title="One")
    second = team.task(title="Two")
    team.http.ok("PATCH", f"/tasks/{first['id']}", {"status": "in_progress"}, team.tokens["member"])
    consume_streams(container)
    consume_streams(container)  # delivered again: nothing twice
    page = team("viewer", "GET", f"/projects/{team.project_id}/events?limit=2")
    assert page.status_code == 200, page.body
    # The session with the project and membership, then one Query of the log.
    assert team.http.calls == ["BatchGetItem", "Query"]
    items = page.json["items"]
    assert [set(i) for i in items] == [EVENT_FIELDS, EVENT_FIELDS]
    assert [seq(i["id"]) for i in items] == [1, 2]
    assert [(i["type"], i["data"]["title"]) for i in items] == [
        ("task.created", "One"),
        ("task.created", "Two"),
    ]
    assert items[1]["data"]["id"] == second["id"]
    assert page.json["next_cursor"] == items[1]["id"]
    rest = team("viewer", "GET", f"/projects/{team.project_id}/events?after={items[1]['id']}")
    assert [(i["type"], i["data"]["status"]) for i in rest.json["items"]] == [
        ("task.updated", "in_progress")
    ]
    assert rest.json["next_cursor"] is None
    by_cursor = team("viewer", "GET", f"/projects/{team.project_id}/events?cursor={items[1]['id']}")
    assert by_cursor.json == rest.json


def test_a_non_member_gets_404_and_no_token_401(team: Team) -> None:
    path = f"/projects/{team.project_id}/events"
    assert error_of(team("stranger", "GET", path)) == (404, "not_found")
    assert error_of(team(None, "GET", path)) == (401, "unauthorized")


def test_an_after_that_names_no_event_of_the_project_is_400(
    team: Team, container: bootstrap.Container
) -> None:
    team.task()
    consume_streams(container)
    base = f"/projects/{team.project_id}/events"
    generation = parse_event_id(first_id(team))
    assert generation is not None
    for after in (
        "nope",
        event_id("0" * 26, generation.generation, 1),
        event_id(team.project_id, generation.generation, 99),
    ):
        assert error_of(team("member", "GET", f"{base}?after={after}")) == (400, "bad_request")
    assert error_of(team("member", "GET", f"{base}?limit=0")) == (422, "validation_error")


def test_an_after_whose_events_are_no_longer_kept_is_410(
    team: Team, container: bootstrap.Container, monkeypatch: Any
) -> None:
    team.task()
    team.task()
    consume_streams(container)
    from chalicelib.adapters.dynamodb.models import ProjectEventModel

    first = first_id(team)
    # DynamoDB's TTL deleted the first event.
    ProjectEventModel(team.project_id, 1).delete()
    response = team("member", "GET", f"/projects/{team.project_id}/events?after=" + first)
    assert error_of(response) == (410, "gone")
    kept = team("member", "GET", f"/projects/{team.project_id}/events")
    assert [seq(i["id"]) for i in kept.json["items"]] == [2]
