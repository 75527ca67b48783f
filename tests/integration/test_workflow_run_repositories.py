"""The workflow run repository contract, on the in-memory fake and on DynamoDB (moto)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.dynamodb.comments import DynamoHistoryRepository
from chalicelib.adapters.dynamodb.executions import DynamoExecutionRepository
from chalicelib.adapters.dynamodb.identity import item_key
from chalicelib.adapters.dynamodb.janitor import DynamoJanitor
from chalicelib.adapters.dynamodb.models import WorkflowRunModel
from chalicelib.adapters.dynamodb.notifications import DynamoNotificationRepository
from chalicelib.adapters.dynamodb.projects import DynamoProjectRepository
from chalicelib.adapters.dynamodb.workflow_runs import DynamoWorkflowRunRepository
from chalicelib.adapters.dynamodb.workflows import DynamoWorkflowRepository
from chalicelib.domain.activity import EventType, HistoryEvent, Notification, NotificationType
from chalicelib.domain.errors import BadRequest, StaleVersion
from chalicelib.domain.executions import (
    Execution,
    ExecutionStatus,
    SlotTaken,
    Trigger,
    firing_key,
    new_execution_id,
)
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.tasks import new_task_id
from chalicelib.domain.workflow_runs import RunStep, WorkflowRun, new_run_id, start_run
from chalicelib.domain.workflows import OnFailure, Step, Workflow, new_workflow_id
from chalicelib.ports import reads
from tests.fakes import (
    InMemoryExecutionRepository,
    InMemoryHistoryRepository,
    InMemoryNotificationRepository,
    InMemoryWorkflowRunRepository,
)
from tests.integration.test_task_repositories import make_project

AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@dataclass
class Env:
    kind: str
    runs: Any
    executions: Any
    history: Any
    notifications: Any
    project_id: str

    def workflow(self, project_id: str | None = None) -> Workflow:
        project_id = project_id or self.project_id
        build, ship = new_task_id(project_id), new_task_id(project_id)
        return Workflow(
            id=new_workflow_id(project_id),
            project_id=project_id,
            name="W",
            steps=(Step("build", build), Step("ship", ship, ("build",)), Step("tell", build)),
            created_by="u",
            created_at=AT,
            updated_at=AT,
        )

    def run(self, workflow: Workflow | None = None) -> WorkflowRun:
        return start_run(workflow or self.workflow(), trigger="manual", created_by="u", at=AT)

    def step_execution(self, run: WorkflowRun, key: str) -> Execution:
        step = next(s for s in run.steps if s.key == key)
        return Execution(
            id=new_execution_id(run.project_id),
            task_id=step.task_id,
            project_id=run.project_id,
            trigger=Trigger.WORKFLOW,
            status=ExecutionStatus.QUEUED,
            created_at=AT,
            workflow_run_id=run.id,
        )

    def event(self, execution: Execution) -> HistoryEvent:
        return HistoryEvent(
            new_id(),
            execution.task_id,
            EventType.EXECUTION_QUEUED,
            "workflow",
            AT,
            {"execution_id": (None, execution.id)},
        )

    def events(self, task_id: str) -> list[HistoryEvent]:
        return list(self.history.find(task_id, PageRequest(limit=100)).items)

    def notified(self, user_id: str) -> list[Notification]:
        return list(self.notifications.find(user_id, PageRequest(limit=100)).items)


@pytest.fixture(params=["memory", "dynamodb"])
def env(request: pytest.FixtureRequest) -> Env:
    if request.param == "memory":
        executions = InMemoryExecutionRepository()
        return Env(
            "memory",
            InMemoryWorkflowRunRepository(executions),
            executions,
            InMemoryHistoryRepository(executions.records),
            InMemoryNotificationRepository(executions.records),
            new_id(),
        )
    request.getfixturevalue("moto_aws")
    return Env(
        "dynamodb",
        DynamoWorkflowRunRepository(),
        DynamoExecutionRepository(),
        DynamoHistoryRepository(),
        DynamoNotificationRepository(),
        new_id(),
    )


def ids(page: Any) -> list[str]:
    return [run.id for run in page.items]


def started(env: Env, run: WorkflowRun, *keys: str) -> tuple[WorkflowRun, list[Execution]]:
    """`run` with `keys` started: the round's run and its executions."""
    executions = {key: env.step_execution(run, key) for key in keys}
    steps = tuple(
        replace(s, execution_id=executions[s.key].id) if s.key in executions else s
        for s in run.steps
    )
    after = run.with_changes(status=ExecutionStatus.RUNNING, started_at=AT, steps=steps)
    return after, list(executions.values())


class TestCreateAndGet:
    def test_round_trip_of_every_field(self, env: Env) -> None:
        workflow = env.workflow()
        build, ship = workflow.steps[0].task_id, workflow.steps[1].task_id
        run = WorkflowRun(
            id=new_run_id(env.project_id),
            workflow_id=workflow.id,
            project_id=env.project_id,
            status=ExecutionStatus.FAILED,
            trigger="schedule",
            created_by="scheduler",
            created_at=AT,
            steps=(
                RunStep(
                    "build", build, (), new_execution_id(env.project_id), ExecutionStatus.FAILED
                ),
                RunStep("ship", ship, ("build",), None, ExecutionStatus.SKIPPED),
                RunStep("tell", build, ("build", "ship"), None, ExecutionStatus.CANCELLED),
                RunStep("wait", ship),
            ),
            max_concurrency=7,
            on_failure=OnFailure.CONTINUE,
            scheduled_for=AT - timedelta(seconds=1),
            started_at=AT + timedelta(seconds=1),
            finished_at=AT + timedelta(minutes=3, microseconds=5000),
            version=4,
        )
        assert env.runs.create(run) == run
        assert env.runs.get(run.id) == run
        queued = env.run()
        env.runs.create(queued)
        assert env.runs.get(queued.id) == queued  # the optional fields absent

    def test_a_run_id_is_written_once(self, env: Env) -> None:
        run = env.runs.create(env.run())
        with pytest.raises(StaleVersion):
            env.runs.create(run.with_changes(status=ExecutionStatus.RUNNING))
        assert env.runs.get(run.id) == run

    def test_unknown_ids_are_none(self, env: Env) -> None:
        assert env.runs.get(new_run_id(env.project_id)) is None
        assert env.runs.get("") is None
        assert env.runs.get("x" * 300) is None


class TestFindForWorkflow:
    def test_newest_first_in_signed_pages_of_one_workflow(self, env: Env) -> None:
        workflow, other = env.workflow(), env.workflow()
        made = [env.runs.create(env.run(workflow)).id for _ in range(5)]
        env.runs.create(env.run(other))
        seen: list[str] = []
        cursor = None
        for _ in range(5):
            page = env.runs.find_for_workflow(workflow.id, PageRequest(limit=2, cursor=cursor))
            assert len(page.items) <= 2
            seen += ids(page)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == made[::-1]
        assert len(ids(env.runs.find_for_workflow(other.id, PageRequest()))) == 1
        empty = env.runs.find_for_workflow(env.workflow().id, PageRequest())
        assert (empty.items, empty.next_cursor) == ([], None)

    def test_an_edited_or_foreign_cursor_is_refused(self, env: Env) -> None:
        workflow = env.workflow()
        for _ in range(3):
            env.runs.create(env.run(workflow))
        cursor = env.runs.find_for_workflow(workflow.id, PageRequest(limit=1)).next_cursor
        assert cursor
        with pytest.raises(BadRequest):
            env.runs.find_for_workflow(env.workflow().id, PageRequest(cursor=cursor))
        edited = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
        with pytest.raises(BadRequest):
            env.runs.find_for_workflow(workflow.id, PageRequest(cursor=edited))


class TestAdvance:
    def test_one_round_writes_the_run_its_executions_and_records(self, env: Env) -> None:
        run = env.runs.create(env.run())
        after, executions = started(env, run, "build", "tell")
        user_id = new_id()
        records: list[Any] = [env.event(e) for e in executions]
        records.append(
            Notification(new_id(), user_id, NotificationType.WORKFLOW_RUN_FAILED, "m", AT)
        )
        saved = env.runs.advance(run, after, executions, records)
        assert saved == after.with_changes(version=2)
        assert env.runs.get(run.id) == saved
        for execution in executions:
            assert env.executions.get(execution.id) == execution
        assert saved.execution_ids == [e.id for e in executions]
        build_task = run.steps[0].task_id
        assert sorted(e.changes["execution_id"][1] for e in env.events(build_task)) == sorted(
            e.id for e in executions
        )
        assert [n.type for n in env.notified(user_id)] == [NotificationType.WORKFLOW_RUN_FAILED]
        # The next round starts from what this one wrote.
        done = env.runs.advance(saved, saved.with_changes(status=ExecutionStatus.SUCCEEDED))
        assert done.version == 3
        assert env.runs.get(run.id) == done

    def test_a_stale_version_writes_nothing(self, env: Env) -> None:
        run = env.runs.create(env.run())
        first, executions = started(env, run, "build")
        current = env.runs.advance(run, first, executions)
        late, late_executions = started(env, run, "tell")
        with pytest.raises(StaleVersion):
            env.runs.advance(run, late, late_executions, [env.event(late_executions[0])])
        assert env.runs.get(run.id) == current
        assert env.executions.get(late_executions[0].id) is None
        assert env.events(late_executions[0].task_id) == []

    def test_an_execution_that_exists_fails_the_whole_round(self, env: Env) -> None:
        run = env.runs.create(env.run())
        after, (build, tell) = started(env, run, "build", "tell")
        env.executions.create(tell)
        with pytest.raises(StaleVersion):
            env.runs.advance(run, after, [build, tell], [env.event(build)])
        assert env.runs.get(run.id) == run
        assert env.executions.get(build.id) is None
        assert env.events(build.task_id) == []

    def test_a_run_that_was_never_written_is_stale(self, env: Env) -> None:
        run = env.run()
        with pytest.raises(StaleVersion):
            env.runs.advance(run, run.with_changes(status=ExecutionStatus.CANCELLED))
        assert env.runs.get(run.id) is None

    def test_more_than_a_transaction_holds_is_refused_before_writing(self, env: Env) -> None:
        run = env.runs.create(env.run())
        after, executions = started(env, run, "build")
        events = [env.event(executions[0]) for _ in range(99)]
        with pytest.raises(ValueError, match="at most 100"):
            env.runs.advance(run, after, executions, events)
        assert env.runs.get(run.id) == run
        assert env.executions.get(executions[0].id) is None
        # 100 items in all is allowed.
        env.runs.advance(run, after, executions, events[:98])
        assert len(env.events(executions[0].task_id)) == 98


class TestCreateForFiring:
    """A scheduled firing of a workflow: its claim, the active slot and the run, all or none."""

    def firing(self, env: Env, workflow: Workflow, minute: int = 0) -> tuple[str, WorkflowRun]:
        at = AT + timedelta(minutes=minute)
        run = start_run(workflow, trigger="schedule", created_by="u", at=AT, scheduled_for=at)
        return firing_key(workflow.id, at), run

    def test_one_firing_makes_one_run_however_often_it_comes(self, env: Env) -> None:
        workflow = env.workflow()
        key, run = self.firing(env, workflow)
        assert env.runs.create_for_firing(key, run) == (run, True)
        assert env.runs.get(run.id) == run
        _, again = self.firing(env, workflow)
        for hold_slot in (False, True):  # a repeat answers the first run, slot or not
            assert env.runs.create_for_firing(key, again, hold_slot=hold_slot) == (run, False)
        assert env.runs.get(again.id) is None
        assert env.runs.slot_owner(workflow.id) is None
        assert ids(env.runs.find_for_workflow(workflow.id, PageRequest())) == [run.id]

    def test_the_active_slot_lets_one_run_at_a_time(self, env: Env) -> None:
        workflow = env.workflow()
        key, first = self.firing(env, workflow)
        assert env.runs.create_for_firing(key, first, hold_slot=True) == (first, True)
        assert env.runs.slot_owner(workflow.id) == first.id
        later_key, later = self.firing(env, workflow, minute=5)
        with pytest.raises(SlotTaken):
            env.runs.create_for_firing(later_key, later, hold_slot=True)
        assert env.runs.get(later.id) is None  # nothing written, not even the claim:
        skipped = later.with_changes(status=ExecutionStatus.SKIPPED)
        assert env.runs.create_for_firing(later_key, skipped) == (skipped, True)
        # Another workflow's slot is its own.
        other_key, other = self.firing(env, env.workflow())
        assert env.runs.create_for_firing(other_key, other, hold_slot=True)[1] is True

        assert env.runs.release_slot(workflow.id, later.id) is False  # not the holder
        assert env.runs.slot_owner(workflow.id) == first.id
        assert env.runs.release_slot(workflow.id, first.id) is True
        assert env.runs.slot_owner(workflow.id) is None
        assert env.runs.release_slot(workflow.id, first.id) is False
        next_key, following = self.firing(env, workflow, minute=10)
        assert env.runs.create_for_firing(next_key, following, hold_slot=True)[1] is True
        assert env.runs.slot_owner(workflow.id) == following.id


def test_a_route_can_prefetch_a_run() -> None:
    key = item_key(reads.workflow_run("R1"))
    assert (key.model, key.hash_key) == (WorkflowRunModel, "R1")


def test_the_janitor_purges_a_deleted_projects_runs(moto_aws: None) -> None:
    workflows, runs = DynamoWorkflowRepository(), DynamoWorkflowRunRepository()
    project_id, other = make_project("dynamodb", None), make_project("dynamodb", None)
    env = Env("dynamodb", runs, None, None, None, project_id)
    doomed_workflows = [workflows.create(env.workflow()) for _ in range(3)]
    doomed = [runs.create(env.run(doomed_workflows[0])) for _ in range(30)]
    doomed += [runs.create(env.run(w)) for w in doomed_workflows[1:]]
    kept_workflow = workflows.create(env.workflow(other))
    kept = runs.create(env.run(kept_workflow))
    projects = DynamoProjectRepository()
    projects.delete(projects.get(project_id))  # type: ignore[arg-type]
    assert DynamoJanitor().purge_project(project_id) >= 3 + 32
    assert all(runs.get(r.id) is None for r in doomed)
    assert all(workflows.get(w.id) is None for w in doomed_workflows)
    assert runs.get(kept.id) == kept
    assert workflows.get(kept_workflow.id) == kept_workflow
    assert DynamoJanitor().purge_project(project_id) == 0


def test_a_purged_workflows_slot_goes_with_its_runs(moto_aws: None) -> None:
    workflows, runs = DynamoWorkflowRepository(), DynamoWorkflowRunRepository()
    project_id = make_project("dynamodb", None)
    env = Env("dynamodb", runs, None, None, None, project_id)
    workflow = workflows.create(env.workflow())
    run = start_run(workflow, trigger="schedule", created_by="u", at=AT, scheduled_for=AT)
    runs.create_for_firing(firing_key(workflow.id, AT), run, hold_slot=True)
    assert runs.slot_owner(workflow.id) == run.id
    projects = DynamoProjectRepository()
    projects.delete(projects.get(project_id))  # type: ignore[arg-type]
    DynamoJanitor().purge_project(project_id)
    assert (runs.get(run.id), runs.slot_owner(workflow.id)) == (None, None)
