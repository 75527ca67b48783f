"""The rule repositories' contract (rules; claims and execution logs), run on the in-memory
fakes and on DynamoDB (moto)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.dynamodb.projects import DynamoProjectRepository
from chalicelib.adapters.dynamodb.rules import DynamoRuleExecutionRepository, DynamoRuleRepository
from chalicelib.domain.errors import BadRequest, NotFound, StaleVersion
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.rules import (
    ActionResult,
    Conditions,
    Rule,
    RuleExecution,
    RuleOutcome,
    TriggerEvent,
    actions_from,
    new_rule_id,
)
from tests.fakes import (
    InMemoryProjectRepository,
    InMemoryRuleExecutionRepository,
    InMemoryRuleRepository,
)
from tests.integration.test_task_repositories import make_project

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "dynamodb"])
def env(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "memory":
        projects: Any = InMemoryProjectRepository()
        repo: Any = InMemoryRuleRepository(projects)
        log: Any = InMemoryRuleExecutionRepository()
        project_id = make_project("memory", projects)
    else:
        request.getfixturevalue("moto_aws")
        projects = DynamoProjectRepository()
        repo, log = DynamoRuleRepository(), DynamoRuleExecutionRepository()
        project_id = make_project("dynamodb", None)
    return {
        "kind": request.param,
        "repo": repo,
        "log": log,
        "projects": projects,
        "project": project_id,
    }


def rule(project_id: str, **fields: Any) -> Rule:
    fields.setdefault("name", "R")
    fields.setdefault("enabled", True)
    fields.setdefault("event", TriggerEvent.TASK_CREATED)
    fields.setdefault("conditions", Conditions.model_validate({"tag": "x", "assignee_id": None}))
    fields.setdefault(
        "actions",
        actions_from(
            [
                {"type": "set_field", "field": "due_date", "value": None},
                {"type": "notify", "user_id": "creator"},
                {"type": "create_task", "template_id": "t", "values": {"a": "b"}},
            ]
        ),
    )
    return Rule(
        id=new_rule_id(project_id),
        project_id=project_id,
        created_by="u",
        created_at=NOW,
        updated_at=NOW,
        **fields,
    )


def test_round_trip_and_conditional_writes(env: dict[str, Any]) -> None:
    repo = env["repo"]
    created = repo.create(rule(env["project"]))
    stored = repo.get(created.id)
    assert stored == created
    assert stored.conditions.public() == {"tag": "x", "assignee_id": None}
    with pytest.raises(NotFound):
        repo.create(rule(new_id()))
    saved = repo.update(created, created.with_changes(name="New", updated_at=NOW + timedelta(1)))
    assert repo.get(created.id) == saved
    assert saved.version == 2
    with pytest.raises(StaleVersion):
        repo.update(created, created.with_changes(name="Stale"))
    with pytest.raises(StaleVersion):
        repo.delete(created)
    repo.delete(saved)
    assert repo.get(created.id) is None


def test_enabled_rules_by_project_and_event(env: dict[str, Any]) -> None:
    repo, project = env["repo"], env["project"]
    on = repo.create(rule(project))
    off = repo.create(rule(project, enabled=False))
    other_event = repo.create(rule(project, event=TriggerEvent.TASK_OVERDUE))
    repo.create(rule(make_project(env["kind"], env["projects"])))
    assert [r.id for r in repo.enabled_for(project, TriggerEvent.TASK_CREATED)] == [on.id]
    assert [r.id for r in repo.enabled_for(project, TriggerEvent.TASK_OVERDUE)] == [other_event.id]
    # Enabling and disabling moves a rule in and out of the lookup.
    repo.update(off, off.with_changes(enabled=True))
    turned_off = repo.update(on, on.with_changes(enabled=False))
    assert [r.id for r in repo.enabled_for(project, TriggerEvent.TASK_CREATED)] == [off.id]
    assert turned_off.enabled is False
    page = repo.find(project, PageRequest(limit=2))
    assert [r.id for r in page.items] == [other_event.id, off.id]
    assert page.next_cursor
    rest = repo.find(project, PageRequest(limit=2, cursor=page.next_cursor))
    assert ([r.id for r in rest.items], rest.next_cursor) == ([on.id], None)
    with pytest.raises(BadRequest):
        repo.find(new_id(), PageRequest(limit=2, cursor=page.next_cursor))
    assert repo.purge_project(project) == 3
    assert repo.enabled_for(project, TriggerEvent.TASK_CREATED) == []


def test_claims_once_and_logs_newest_first(env: dict[str, Any]) -> None:
    log = env["log"]
    assert log.claim("r1", "task.created#t1", "e1", NOW) is True
    assert log.claim("r1", "task.created#t1", "e2", NOW) is False
    assert log.claim("r2", "task.created#t1", "e3", NOW) is True
    made = [
        RuleExecution(
            id=new_id(),
            rule_id="r1",
            project_id=env["project"],
            trigger_event=TriggerEvent.TASK_CREATED,
            task_id=f"t{i}",
            status=RuleOutcome.FAILED if i else RuleOutcome.SUCCEEDED,
            actions=(ActionResult("notify", RuleOutcome.SKIPPED, "no assignee", None),),
            at=NOW + timedelta(seconds=i),
            error="notify: boom" if i else None,
        )
        for i in range(3)
    ]
    for execution in made:
        log.add(execution)
    page = log.find("r1", PageRequest(limit=2))
    assert page.items == [made[2], made[1]]
    assert page.next_cursor
    assert log.find("r1", PageRequest(limit=2, cursor=page.next_cursor)).items == [made[0]]
    assert log.find("r2", PageRequest()).items == []
