"""The hook and delivery repository contracts, on the in-memory fakes and on DynamoDB (moto):
the sparse active index, user changes that keep the system-kept failure count, the atomic
count / reset / disable-once, conditional delivery writes, pages newest first, the purge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.dynamodb.hooks import DynamoDeliveryRepository, DynamoHookRepository
from chalicelib.domain.errors import NotFound, StaleVersion
from chalicelib.domain.hooks import Delivery, DeliveryStatus, Hook, new_delivery_id, new_hook_id
from chalicelib.domain.model import PageRequest, new_id
from tests.fakes import (
    InMemoryDeliveryRepository,
    InMemoryHookRepository,
    InMemoryProjectRepository,
)
from tests.integration.test_task_repositories import make_project

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "dynamodb"])
def env(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "memory":
        projects = InMemoryProjectRepository()
        hooks: Any = InMemoryHookRepository(projects)
        deliveries: Any = InMemoryDeliveryRepository()
        project_id = make_project("memory", projects)
    else:
        request.getfixturevalue("moto_aws")
        hooks, deliveries = DynamoHookRepository(), DynamoDeliveryRepository()
        project_id = make_project("dynamodb", None)
    return {"hooks": hooks, "deliveries": deliveries, "project": project_id}


def hook(project_id: str, **fields: Any) -> Hook:
    fields.setdefault("url", "https://a.example.com/in")
    fields.setdefault("events", ("task.created",))
    fields.setdefault("active", True)
    return Hook(new_hook_id(project_id), project_id, created_by="u", created_at=NOW,
                updated_at=NOW, **fields)  # fmt: skip


def delivery(made: Hook, **fields: Any) -> Delivery:
    return Delivery(
        id=new_delivery_id(made.project_id),
        hook_id=made.id,
        project_id=made.project_id,
        event_id=new_id(),
        event_type="task.created",
        body='{"id":"e"}',
        created_at=NOW,
        updated_at=NOW,
        **fields,
    )


def test_hooks_active_index_updates_and_the_failure_count(env: dict[str, Any]) -> None:
    repo, project = env["hooks"], env["project"]
    on = repo.create(hook(project))
    off = repo.create(hook(project, active=False))
    with pytest.raises(NotFound):
        repo.create(hook(new_id()))
    assert [h.id for h in repo.active_for(project)] == [on.id]
    assert [h.id for h in repo.find(project, PageRequest()).items] == [off.id, on.id]
    assert repo.count_failure(on.id) == 1
    assert repo.count_failure(on.id) == 2
    assert repo.count_failure(new_hook_id(project)) is None
    # A user change writes its fields only: the count stays.
    changed = repo.update(on, on.with_changes(url="https://b.example.com/", updated_at=NOW))
    assert changed.version == 2
    stored = repo.get(on.id)
    assert (stored.url, stored.consecutive_failures, stored.version) == (changed.url, 2, 2)
    with pytest.raises(StaleVersion):
        repo.update(on, on.with_changes(url="https://c.example.com/"))
    repo.reset_failures(on.id)
    repo.reset_failures(on.id)  # nothing to reset: no error
    assert repo.get(on.id).consecutive_failures == 0
    disabled = repo.disable(on.id, NOW + timedelta(minutes=1))
    assert disabled is not None
    assert (disabled.active, disabled.version) == (False, 3)
    assert repo.disable(on.id, NOW) is None  # once
    assert repo.active_for(project) == []
    stored = repo.get(on.id)
    back = repo.update(stored, stored.with_changes(active=True, consecutive_failures=0))
    assert [h.id for h in repo.active_for(project)] == [back.id]
    with pytest.raises(StaleVersion):
        repo.delete(stored)
    repo.delete(back)
    assert repo.get(on.id) is None
    assert repo.purge_project(project) == 1
    assert repo.find(project, PageRequest()).items == []


def test_deliveries_are_written_once_and_attempts_conditionally(env: dict[str, Any]) -> None:
    made = env["hooks"].create(hook(env["project"]))
    repo = env["deliveries"]
    first = delivery(made)
    assert repo.add(first) is True
    assert repo.add(first) is False
    second = delivery(made)
    repo.add(second)
    after = first.with_changes(attempts=1, response_status=500, error="HTTP 500")
    assert repo.record_attempt(first, after) is True
    assert repo.record_attempt(first, after) is False  # the attempts read are stale
    done = after.with_changes(status=DeliveryStatus.SUCCEEDED, attempts=2, response_status=204,
                              error=None)  # fmt: skip
    assert repo.record_attempt(after, done) is True
    assert repo.record_attempt(done, done.with_changes(attempts=3)) is False  # settled
    stored = repo.get(first.id)
    assert (stored.status, stored.attempts, stored.response_status, stored.error) == (
        DeliveryStatus.SUCCEEDED,
        2,
        204,
        None,
    )
    page = repo.find(made.id, PageRequest(limit=1))
    assert [d.id for d in page.items] == [second.id]
    rest = repo.find(made.id, PageRequest(limit=1, cursor=page.next_cursor))
    assert ([d.id for d in rest.items], rest.next_cursor) == ([first.id], None)
    assert repo.get(new_delivery_id(env["project"])) is None
