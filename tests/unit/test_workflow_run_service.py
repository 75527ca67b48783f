"""Workflow runs through the services on fakes: start, rounds planned by `RunService.plan`,
steps run by `RunService.attempt`, cancel, and who may do what."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib import runs
from chalicelib.domain.activity import Notification, NotificationType
from chalicelib.domain.errors import Conflict, Forbidden, NotFound
from chalicelib.domain.executions import ExecutionStatus, Trigger
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.tasks import Status, Task, new_task_id
from chalicelib.domain.webhooks import WebhookAction, WebhookRequest, WebhookResult
from chalicelib.domain.workflows import OnFailure, Step, Workflow, new_workflow_id
from chalicelib.services.executions import OverlapSlots
from chalicelib.services.runs import WORKFLOW_RUN, RunService
from chalicelib.services.workflow_runs import WorkflowRunService
from tests.fakes import (
    FakeClock,
    InMemoryExecutionRepository,
    InMemoryProjectRepository,
    InMemoryTaskRepository,
    InMemoryWorkflowRepository,
    InMemoryWorkflowRunRepository,
    InProcessRunner,
)

AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class Webhooks:
    """Answers by URL path: 200 unless told otherwise; records the paths called."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.called: list[str] = []

    def deliver(self, request: WebhookRequest) -> WebhookResult:
        path = request.url.rsplit("/", 1)[-1]
        self.called.append(path)
        return WebhookResult(500 if path in self.failing else 200, 5, "")


@dataclass
class World:
    clock: FakeClock
    tasks: InMemoryTaskRepository
    executions: InMemoryExecutionRepository
    workflows: InMemoryWorkflowRepository
    runs: InMemoryWorkflowRunRepository
    runner: InProcessRunner
    webhooks: Webhooks
    service: WorkflowRunService
    steps: RunService
    project: Project
    people: dict[str, Principal]

    def task(self, name: str, action: bool = True) -> Task:
        task = Task(
            id=new_task_id(self.project.id),
            project_id=self.project.id,
            title=name,
            created_by=self.people["owner"].user_id,
            created_at=AT,
            updated_at=AT,
            action=WebhookAction(type="webhook", url=f"https://hooks.example.com/{name}")
            if action
            else None,
        )
        self.tasks.tasks[task.id] = task
        return task

    def workflow(self, edges: dict[str, list[str]], **fields: Any) -> Workflow:
        steps = tuple(Step(key, self.task(key).id, tuple(deps)) for key, deps in edges.items())
        workflow = Workflow(
            id=new_workflow_id(self.project.id),
            project_id=self.project.id,
            name="w",
            steps=steps,
            created_by=self.people["owner"].user_id,
            created_at=AT,
            updated_at=AT,
            **fields,
        )
        self.workflows.workflows[workflow.id] = workflow
        return workflow

    def play(self, run_id: str) -> int:
        """Plays the state machine: plan, run every step of the round, until done."""
        round_ = 0
        while True:
            plan = self.steps.plan(WORKFLOW_RUN, run_id, round_)
            if plan.done:
                return plan.round
            for execution_id in plan.execution_ids:
                attempt = 1
                while True:
                    outcome = self.steps.attempt(execution_id, attempt)
                    if outcome.outcome != runs.RETRY:
                        break
                    attempt = outcome.attempt
            round_ = plan.round


@pytest.fixture
def world() -> World:
    clock = FakeClock(AT)
    projects = InMemoryProjectRepository()
    tasks = InMemoryTaskRepository(projects)
    executions = InMemoryExecutionRepository(tasks.records)
    workflows = InMemoryWorkflowRepository(projects)
    workflow_runs = InMemoryWorkflowRunRepository(executions)
    runner = InProcessRunner()
    webhooks = Webhooks()
    project = Project(new_id(), "P", "", "owner-id", AT, AT)
    people = {}
    for name, role in (
        ("owner", ProjectRole.OWNER),
        ("member", ProjectRole.MEMBER),
        ("viewer", ProjectRole.VIEWER),
    ):
        user_id = f"{name}-id"
        people[name] = Principal(user_id=user_id, session_id="s")
        membership = Membership(project.id, user_id, role, AT)
        if role is ProjectRole.OWNER:
            projects.create(project, membership)
        else:
            projects.add_member(membership)
    service = WorkflowRunService(workflow_runs, workflows, executions, projects, clock, runner)
    steps = RunService(
        executions,
        tasks,
        webhooks,
        lambda project_id: "secret",
        clock,
        OverlapSlots(executions, runner, clock),
        workflow_runs,
    )
    return World(
        clock, tasks, executions, workflows, workflow_runs, runner, webhooks, service, steps,
        project, people,
    )  # fmt: skip


def step_statuses(world: World, run_id: str) -> dict[str, ExecutionStatus]:
    view = world.service.get(world.people["viewer"], run_id)
    found: dict[str, ExecutionStatus] = {}
    for step in view.run.steps:
        execution = view.step_execution(step)
        found[step.key] = (
            execution.status if execution else (step.outcome or ExecutionStatus.QUEUED)
        )
    return found


DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


def test_a_run_starts_queued_on_the_runner_and_plays_to_success(world: World) -> None:
    workflow = world.workflow(DIAMOND)
    run = world.service.start(world.people["member"], workflow.id)
    assert run.status is ExecutionStatus.QUEUED
    assert world.runner.runs_started == [run.id]
    rounds = world.play(run.id)
    assert rounds == 4  # a; b and c; d; the end
    assert world.webhooks.called == ["a", "b", "c", "d"]
    stored = world.runs.get(run.id)
    assert stored is not None
    assert stored.status is ExecutionStatus.SUCCEEDED
    assert stored.finished_at is not None
    assert set(step_statuses(world, run.id).values()) == {ExecutionStatus.SUCCEEDED}
    for step in stored.steps:
        assert step.execution_id is not None
        execution = world.executions.get(step.execution_id)
        assert execution is not None
        assert (execution.trigger, execution.workflow_run_id) == (Trigger.WORKFLOW, run.id)


def test_rounds_read_only_the_executions_not_yet_final_on_the_run(world: World) -> None:
    """Once a round has recorded a step's final outcome, later rounds trust the record: here
    `a`'s execution vanishes after round 1, and `c` still starts on its success."""
    workflow = world.workflow({"a": [], "b": ["a"], "c": ["a", "b"]})
    run = world.service.start(world.people["member"], workflow.id)
    read: list[list[str]] = []
    get_many = world.executions.get_many

    def recording(ids: Any) -> Any:
        read.append(list(ids))
        return get_many(ids)

    world.executions.get_many = recording  # type: ignore[method-assign]
    (a,) = world.steps.plan(WORKFLOW_RUN, run.id, 0).execution_ids
    assert world.steps.attempt(a, 1).outcome == runs.SUCCEEDED
    (b,) = world.steps.plan(WORKFLOW_RUN, run.id, 1).execution_ids
    del world.executions.executions[a]
    assert world.steps.attempt(b, 1).outcome == runs.SUCCEEDED
    (c,) = world.steps.plan(WORKFLOW_RUN, run.id, 2).execution_ids
    assert world.steps.attempt(c, 1).outcome == runs.SUCCEEDED
    assert world.steps.plan(WORKFLOW_RUN, run.id, 3).done
    assert read == [[], [a], [b], [c]]
    stored = world.runs.get(run.id)
    assert stored is not None
    assert stored.status is ExecutionStatus.SUCCEEDED
    assert [s.outcome for s in stored.steps] == [ExecutionStatus.SUCCEEDED] * 3


def test_a_round_goes_to_the_state_machine_with_the_workflows_concurrency(world: World) -> None:
    workflow = world.workflow({"x": [], "y": [], "z": []}, max_concurrency=2)
    run = world.service.start(world.people["member"], workflow.id)
    plan = world.steps.plan(WORKFLOW_RUN, run.id, 0)
    assert (len(plan.steps), plan.max_concurrency, plan.done) == (3, 2, False)


@pytest.mark.parametrize("on_failure", [OnFailure.STOP, OnFailure.CONTINUE])
def test_a_failed_step_fails_the_run_and_tells_who_started_it(
    world: World, on_failure: OnFailure
) -> None:
    workflow = world.workflow(
        {"bad": [], "good": [], "after_bad": ["bad"], "after_good": ["good"]}, on_failure=on_failure
    )
    world.webhooks.failing.add("bad")
    run = world.service.start(world.people["member"], workflow.id)
    world.play(run.id)
    found = step_statuses(world, run.id)
    assert found["bad"] is ExecutionStatus.FAILED
    assert found["after_bad"] is ExecutionStatus.SKIPPED
    expected = (
        ExecutionStatus.SKIPPED if on_failure is OnFailure.STOP else ExecutionStatus.SUCCEEDED
    )
    assert found["after_good"] is expected
    stored = world.runs.get(run.id)
    assert stored is not None
    assert stored.status is ExecutionStatus.FAILED
    failed = [
        r
        for r in world.executions.records
        if isinstance(r, Notification) and r.type is NotificationType.WORKFLOW_RUN_FAILED
    ]
    assert [n.user_id for n in failed] == [world.people["member"].user_id]


def test_a_step_whose_task_was_deleted_fails_and_fails_the_run(world: World) -> None:
    workflow = world.workflow({"gone": [], "after": ["gone"]})
    del world.tasks.tasks[workflow.steps[0].task_id]
    run = world.service.start(world.people["member"], workflow.id)
    world.play(run.id)
    view = world.service.get(world.people["viewer"], run.id)
    gone = view.step_execution(view.run.steps[0])
    assert gone is not None
    assert (gone.status, gone.error) == (ExecutionStatus.FAILED, "the step's task was deleted")
    assert step_statuses(world, run.id)["after"] is ExecutionStatus.SKIPPED
    assert view.run.status is ExecutionStatus.FAILED
    assert world.webhooks.called == []


def test_a_step_without_action_succeeds_at_once_and_completes_its_task(world: World) -> None:
    workflow = world.workflow({"a": []})
    task_id = workflow.steps[0].task_id
    world.tasks.tasks[task_id] = world.tasks.tasks[task_id].with_changes(action=None)
    run = world.service.start(world.people["member"], workflow.id)
    world.play(run.id)
    assert world.webhooks.called == []
    assert step_statuses(world, run.id) == {"a": ExecutionStatus.SUCCEEDED}
    assert world.tasks.tasks[task_id].status is Status.COMPLETED


def test_cancel_ends_the_run_its_running_steps_and_its_unstarted_ones(world: World) -> None:
    workflow = world.workflow(DIAMOND)
    run = world.service.start(world.people["member"], workflow.id)
    plan = world.steps.plan(WORKFLOW_RUN, run.id, 0)  # a is queued, not run yet
    view = world.service.cancel(world.people["member"], run.id)
    assert view.run.status is ExecutionStatus.CANCELLED
    assert world.runner.runs_stopped == [run.id]
    (a_id,) = plan.execution_ids
    assert view.executions[a_id].status is ExecutionStatus.CANCELLED
    # The state machine's next moves change nothing.
    assert world.steps.attempt(a_id, 1).outcome == runs.FAILED
    assert world.steps.plan(WORKFLOW_RUN, run.id, 1).done
    assert world.webhooks.called == []
    with pytest.raises(Conflict):
        world.service.cancel(world.people["member"], run.id)


def test_who_may_do_what(world: World) -> None:
    workflow = world.workflow({"a": []})
    with pytest.raises(Forbidden):
        world.service.start(world.people["viewer"], workflow.id)
    run = world.service.start(world.people["member"], workflow.id)
    with pytest.raises(Forbidden):
        world.service.cancel(world.people["viewer"], run.id)
    assert world.service.get(world.people["viewer"], run.id).run.id == run.id
    page = world.service.list_for_workflow(world.people["viewer"], workflow.id, PageRequest())
    assert [r.id for r in page.items] == [run.id]
    stranger = Principal(user_id="stranger", session_id="s")
    for call in (
        lambda: world.service.start(stranger, workflow.id),
        lambda: world.service.get(stranger, run.id),
        lambda: world.service.cancel(stranger, run.id),
        lambda: world.service.list_for_workflow(stranger, workflow.id, PageRequest()),
        lambda: world.service.get(world.people["owner"], "not-a-run"),
    ):
        with pytest.raises(NotFound):
            call()
