"""Schedules, actions and retry policies on tasks (the task service, with fakes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.activity import HistoryEvent
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.principals import Principal
from chalicelib.domain.tasks import TaskCreate, TaskUpdate
from chalicelib.domain.users import ProfileUpdate, RegisterInput
from chalicelib.services.tasks import TaskService
from tests.fakes import InMemoryTaskRepository, NoPrefetch, refuse_internal_urls
from tests.unit.conftest import World

WEBHOOK = {"type": "webhook", "url": "https://hooks.example.com/ping"}


@pytest.fixture
def setup(world: World) -> tuple[World, TaskService, InMemoryTaskRepository, Principal]:
    projects = world.users_repo.project_repo
    repo = InMemoryTaskRepository(projects)
    service = TaskService(
        repo, projects, world.users_repo, NoPrefetch(), world.clock, refuse_internal_urls
    )
    result = world.auth.register(RegisterInput(email="a@x.io", password="long enough", name="A"))
    return world, service, repo, world.auth.authenticate(result.access_token)


def test_a_rate_schedule_sets_next_run_at_and_previews(setup) -> None:  # type: ignore[no-untyped-def]
    world, service, _, me = setup
    now = world.clock.now()
    task = service.create(
        me,
        TaskCreate.model_validate(
            {
                "title": "Ping",
                "schedule": {"kind": "rate", "every": 15, "unit": "minutes"},
                "action": WEBHOOK,
            }
        ),
    )
    assert task.schedule is not None
    assert task.next_run_at == now + timedelta(minutes=15)
    assert task.action is not None
    assert task.action.timeout_seconds == 10
    assert service.preview(me, task.id, 3) == [now + timedelta(minutes=m) for m in (15, 30, 45)]


def test_the_schedule_defaults_to_the_creators_time_zone(setup) -> None:  # type: ignore[no-untyped-def]
    world, service, _, me = setup
    world.users.update_profile(me, ProfileUpdate(timezone="Europe/Paris"))
    task = service.create(
        me,
        TaskCreate.model_validate(
            {"title": "9am", "schedule": {"kind": "cron", "expression": "0 9 * * ? *"}}
        ),
    )
    assert task.schedule is not None
    assert task.schedule.timezone == "Europe/Paris"
    assert task.next_run_at == datetime(2026, 11, 22, 8, 0, tzinfo=UTC)  # 9:00 in Paris (UTC+1)


def test_bad_schedules_and_private_webhooks_are_422(setup) -> None:  # type: ignore[no-untyped-def]
    world, service, _, me = setup
    past = (world.clock.now() - timedelta(hours=1)).isoformat()
    with pytest.raises(ValidationFailed):
        service.create(
            me, TaskCreate.model_validate({"title": "x", "schedule": {"kind": "once", "at": past}})
        )
    with pytest.raises(ValidationFailed):
        service.create(
            me,
            TaskCreate.model_validate(
                {"title": "x", "action": {"type": "webhook", "url": "http://db.internal.test/"}}
            ),
        )


def test_clearing_the_schedule_clears_next_run_at_and_is_recorded(setup) -> None:  # type: ignore[no-untyped-def]
    _world, service, repo, me = setup
    task = service.create(
        me,
        TaskCreate.model_validate(
            {"title": "x", "schedule": {"kind": "rate", "every": 1, "unit": "days"}}
        ),
    )
    cleared = service.update(me, task.id, TaskUpdate.model_validate({"schedule": None}))
    assert (cleared.schedule, cleared.next_run_at) == (None, None)
    assert service.preview(me, task.id, 5) == []
    event = [r for r in repo.records if isinstance(r, HistoryEvent)][-1]
    assert event.changes["schedule"][0]["kind"] == "rate"  # type: ignore[index]
    assert event.changes["schedule"][1] is None
