"""RunService on the in-memory fakes: webhook attempts, retries, reminders, the end of a run.

The state machine is played by `drive`: it calls `attempt` with the numbers the service
answers and advances the clock by the delays, as the `Backoff` Wait would.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from chalicelib import runs
from chalicelib.domain.activity import EventType, HistoryEvent, Notification, NotificationType
from chalicelib.domain.executions import (
    MAX_BACKOFF_SECONDS,
    Execution,
    ExecutionResult,
    ExecutionStatus,
    Trigger,
    backoff_seconds,
    new_execution_id,
)
from chalicelib.domain.model import new_id
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.schedules import RateUnit, Schedule, ScheduleKind
from chalicelib.domain.tasks import Status, Task, new_task_id
from chalicelib.domain.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    RetryPolicy,
    WebhookAction,
    WebhookRequest,
    WebhookResult,
)
from chalicelib.services.executions import (
    SCHEDULER_ACTOR,
    Delivery,
    ExecutionService,
    OverlapSlots,
)
from chalicelib.services.runs import EXECUTION_RUN, BadRun, RunService, StepOutcome
from tests.fakes import (
    FakeClock,
    InMemoryExecutionRepository,
    InMemoryProjectRepository,
    InMemoryTaskRepository,
    InProcessRunner,
    NoPrefetch,
)

AT = datetime(2026, 11, 21, 12, 5, tzinfo=UTC)
URL = "https://hooks.example.com/taskbeat"
OK = WebhookResult(200, 120, "ok")
ERROR_500 = WebhookResult(500, 40, "boom")
TIMEOUT = WebhookResult(None, 10_000, error="timeout")


class ScriptedWebhooks:
    """The webhook client port: records every request, answers from a script (in order), and
    lets the clock run for as long as each answer took."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.answers: list[WebhookResult] = []
        self.requests: list[WebhookRequest] = []
        self.sent_at: list[datetime] = []
        self.during: list[Any] = []  # callables run while a request is in flight

    def script(self, *answers: WebhookResult) -> None:
        self.answers = list(answers)

    def deliver(self, request: WebhookRequest) -> WebhookResult:
        self.requests.append(request)
        self.sent_at.append(self.clock.now())
        if not self.answers:
            raise AssertionError(f"unexpected request #{len(self.requests)}: {request}")
        answer = self.answers.pop(0)
        for hook in self.during:
            hook()
        self.clock.advance(milliseconds=answer.duration_ms)
        return answer


def secret_for(project_id: str) -> str:
    return f"whsec-{project_id}"


@dataclass
class World:
    clock: FakeClock
    projects: InMemoryProjectRepository
    tasks: InMemoryTaskRepository
    executions: InMemoryExecutionRepository
    runner: InProcessRunner
    service: ExecutionService
    webhooks: ScriptedWebhooks
    run: RunService
    project: Project
    owner: str
    member: str
    secrets_asked: list[str] = field(default_factory=list)

    def task(self, **fields: Any) -> Task:
        now = self.clock.now()
        fields.setdefault("action", webhook())
        fields.setdefault("created_by", self.owner)
        task = Task(
            id=new_task_id(self.project.id),
            project_id=self.project.id,
            title="Ping",
            created_at=now,
            updated_at=now,
            **fields,
        )
        self.tasks.tasks[task.id] = task
        return task

    def execution(
        self,
        task: Task,
        trigger: Trigger = Trigger.SCHEDULE,
        scheduled_for: datetime | None = AT,
        **fields: Any,
    ) -> Execution:
        execution = Execution(
            id=new_execution_id(task.project_id),
            task_id=task.id,
            project_id=task.project_id,
            trigger=trigger,
            status=ExecutionStatus.QUEUED,
            created_at=self.clock.now(),
            scheduled_for=scheduled_for if trigger is Trigger.SCHEDULE else None,
            **fields,
        )
        return self.executions.create(execution)

    def stored(self, execution: Execution) -> Execution:
        found = self.executions.get(execution.id)
        assert found is not None
        return found

    def drive(self, execution: Execution, first: int = 1) -> list[StepOutcome]:
        """The state machine's loop over one step: attempt, wait the delay, attempt again."""
        outcomes: list[StepOutcome] = []
        attempt = first
        for _ in range(20):
            outcome = self.run.attempt(execution.id, attempt)
            outcomes.append(outcome)
            if outcome.outcome != runs.RETRY:
                return outcomes
            self.clock.advance(seconds=outcome.delay_seconds)
            attempt = outcome.attempt
        raise AssertionError(f"the run did not end: {outcomes}")

    def history(self, kind: EventType | None = None) -> list[HistoryEvent]:
        return [
            r
            for r in self.tasks.records
            if isinstance(r, HistoryEvent) and (kind is None or r.type is kind)
        ]

    def notifications(self, kind: NotificationType | None = None) -> list[Notification]:
        return [
            r
            for r in self.tasks.records
            if isinstance(r, Notification) and (kind is None or r.type is kind)
        ]


def webhook(**fields: Any) -> WebhookAction:
    return WebhookAction.model_validate({"type": "webhook", "url": URL, **fields})


@pytest.fixture
def world() -> World:
    return make_world()


def make_world() -> World:
    """Executions, the run service and `fire` wired as in `bootstrap`, on the fakes; the
    runner notes hand-overs and dispatches, and sleeping advances the clock."""
    clock = FakeClock()
    projects = InMemoryProjectRepository()
    tasks = InMemoryTaskRepository(projects)
    executions = InMemoryExecutionRepository(tasks.records)
    runner = InProcessRunner()  # notes hand-overs and dispatches
    webhooks = ScriptedWebhooks(clock)
    asked: list[str] = []

    def secret(project_id: str) -> str:
        asked.append(project_id)
        return secret_for(project_id)

    slots = OverlapSlots(executions, runner, clock)
    run = RunService(
        executions,
        tasks,
        webhooks,
        secret,
        clock,
        slots,
        runner=runner,
        dispatcher=runner,
        sleep=lambda seconds: clock.advance(seconds=seconds),
    )
    service = ExecutionService(
        executions, tasks, projects, NoPrefetch(), clock, runner, attempts=run, slots=slots
    )
    now = clock.now()
    owner, member = new_id(), new_id()
    project = Project(new_id(), "Team", "", owner, now, now)
    projects.create(project, Membership(project.id, owner, ProjectRole.OWNER, now))
    projects.add_member(Membership(project.id, member, ProjectRole.MEMBER, now))
    return World(
        clock,
        projects,
        tasks,
        executions,
        runner,
        service,
        webhooks,
        run,
        project,
        owner,
        member,
        asked,
    )


def verifies(secret: str, header: str, body: bytes) -> bool:
    parts = dict(part.split("=", 1) for part in header.split(","))
    assert set(parts) == {"t", "v1"}
    message = parts["t"].encode() + b"." + body
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


# ---- webhook attempts ---------------------------------------------------------------------------


class TestWebhookAttempts:
    def test_success_at_the_first_attempt_records_the_answer(self, world: World) -> None:
        task = world.task(assignee_id=world.member)
        execution = world.execution(task)
        world.webhooks.script(WebhookResult(201, 120, "created"))
        start = world.clock.now()

        outcomes = world.drive(execution)

        assert outcomes == [StepOutcome(runs.SUCCEEDED, 1, 0)]
        stored = world.stored(execution)
        assert stored.status is ExecutionStatus.SUCCEEDED
        assert stored.attempts == 1
        assert stored.result == ExecutionResult(201, 120, "created")
        assert stored.error is None
        assert stored.started_at == start
        assert stored.finished_at == start + timedelta(milliseconds=120)
        assert len(world.webhooks.requests) == 1
        (event,) = world.history()
        assert (event.type, event.task_id, event.actor_id) == (
            EventType.EXECUTION_FINISHED,
            task.id,
            SCHEDULER_ACTOR,
        )
        assert event.changes["execution_id"] == (None, execution.id)
        assert event.changes["status"] == ("running", "succeeded")
        assert event.changes["attempts"] == (0, 1)
        assert event.changes["trigger"] == (None, "schedule")
        assert "error" not in event.changes
        assert world.notifications() == []

    def test_a_long_answer_is_kept_as_an_excerpt(self, world: World) -> None:
        execution = world.execution(world.task())
        world.webhooks.script(WebhookResult(200, 5, "x" * 5000))
        world.drive(execution)
        result = world.stored(execution).result
        assert result is not None
        assert result.body_excerpt == "x" * 1024

    def test_two_failures_then_success_retries_with_backoff(self, world: World) -> None:
        task = world.task()
        execution = world.execution(task)
        world.webhooks.script(ERROR_500, ERROR_500, OK)
        policy = RetryPolicy()

        first = world.run.attempt(execution.id, 1)
        assert first == StepOutcome(runs.RETRY, 2, backoff_seconds(policy, 2))
        assert first.delay_seconds == 2
        between = world.stored(execution)
        assert between.status is ExecutionStatus.RUNNING
        assert between.attempts == 1
        assert between.error == "the webhook answered 500"
        assert between.result == ExecutionResult(500, 40, "boom")
        assert world.history() == []  # not finished yet

        world.clock.advance(seconds=first.delay_seconds)
        outcomes = [first, *world.drive(execution, first.attempt)]

        assert outcomes == [
            StepOutcome(runs.RETRY, 2, 2),
            StepOutcome(runs.RETRY, 3, 4),
            StepOutcome(runs.SUCCEEDED, 3, 0),
        ]
        stored = world.stored(execution)
        assert stored.status is ExecutionStatus.SUCCEEDED
        assert stored.attempts == 3
        assert stored.result == ExecutionResult(200, 120, "ok")
        assert stored.error is None  # the earlier failures' error is not left behind
        assert len(world.webhooks.requests) == 3
        (event,) = world.history(EventType.EXECUTION_FINISHED)
        assert event.changes["attempts"] == (2, 3)
        assert world.notifications() == []

    def test_a_webhook_that_never_answers_fails_and_tells_assignee_and_creator(
        self, world: World
    ) -> None:
        task = world.task(action=webhook(timeout_seconds=7), assignee_id=world.member)
        execution = world.execution(task)
        world.webhooks.script(*[WebhookResult(None, 7000, error="timeout")] * 3)

        outcomes = world.drive(execution)

        assert [o.outcome for o in outcomes] == [runs.RETRY, runs.RETRY, runs.FAILED]
        assert outcomes[-1].attempt == 3
        stored = world.stored(execution)
        assert stored.status is ExecutionStatus.FAILED
        assert stored.attempts == 3
        assert stored.result is None
        assert stored.error == "the webhook did not answer within 7 s"
        assert len(world.webhooks.requests) == 3
        failed = world.notifications(NotificationType.EXECUTION_FAILED)
        assert sorted(n.user_id for n in failed) == sorted([world.member, world.owner])
        for notification in failed:
            assert (notification.task_id, notification.project_id) == (task.id, task.project_id)
            assert "Ping" in notification.message
            assert "7 s" in notification.message
        (event,) = world.history(EventType.EXECUTION_FINISHED)
        assert event.changes["status"] == ("running", "failed")
        assert event.changes["error"] == (None, "the webhook did not answer within 7 s")

    @pytest.mark.parametrize("assignee", ["creator", None])
    def test_the_failure_notification_goes_once_to_each_person(
        self, world: World, assignee: str | None
    ) -> None:
        task = world.task(
            assignee_id=world.owner if assignee else None, retry=RetryPolicy(max_attempts=1)
        )
        world.webhooks.script(TIMEOUT)
        world.drive(world.execution(task))
        failed = world.notifications(NotificationType.EXECUTION_FAILED)
        assert [n.user_id for n in failed] == [world.owner]

    def test_http_500_on_every_attempt_fails(self, world: World) -> None:
        task = world.task(assignee_id=world.member)
        execution = world.execution(task)
        world.webhooks.script(ERROR_500, ERROR_500, ERROR_500)

        outcomes = world.drive(execution)

        assert outcomes[-1] == StepOutcome(runs.FAILED, 3, 0)
        stored = world.stored(execution)
        assert stored.status is ExecutionStatus.FAILED
        assert stored.attempts == 3
        assert stored.error == "the webhook answered 500"
        assert stored.result == ExecutionResult(500, 40, "boom")
        assert len(world.webhooks.requests) == 3
        failed = world.notifications(NotificationType.EXECUTION_FAILED)
        assert {n.user_id for n in failed} == {world.member, world.owner}
        assert len(failed) == 2
        assert all("the webhook answered 500" in n.message for n in failed)

    def test_a_network_error_is_named_in_words(self, world: World) -> None:
        task = world.task(retry=RetryPolicy(max_attempts=1))
        execution = world.execution(task)
        world.webhooks.script(WebhookResult(None, 3, error="refused"))
        assert world.drive(execution) == [StepOutcome(runs.FAILED, 1, 0)]
        stored = world.stored(execution)
        assert stored.status is ExecutionStatus.FAILED
        assert stored.error == "the webhook refused the connection"

    def test_the_delays_follow_the_policy(self, world: World) -> None:
        task = world.task(retry=RetryPolicy(max_attempts=4, backoff_seconds=2, backoff_rate=3))
        execution = world.execution(task)
        world.webhooks.script(ERROR_500, ERROR_500, ERROR_500, OK)

        outcomes = world.drive(execution)

        assert [o.delay_seconds for o in outcomes[:-1]] == [2, 6, 18]
        assert [o.attempt for o in outcomes] == [2, 3, 4, 4]
        # The state machine waited: each request went out after the previous one's delay.
        sent = world.webhooks.sent_at
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(sent)]
        assert gaps == [2 + 0.04, 6 + 0.04, 18 + 0.04]

    def test_the_delays_are_capped_at_a_day(self, world: World) -> None:
        policy = RetryPolicy(max_attempts=5, backoff_seconds=3600, backoff_rate=5)
        task = world.task(retry=policy)
        execution = world.execution(task)
        world.webhooks.script(*[ERROR_500] * 5)
        outcomes = world.drive(execution)
        assert [o.delay_seconds for o in outcomes[:-1]] == [3600, 18000, 86400, 86400]
        assert MAX_BACKOFF_SECONDS == 86400
        assert (
            backoff_seconds(RetryPolicy(max_attempts=10, backoff_seconds=3600, backoff_rate=5), 10)
            == 86400
        )

    def test_backoff_is_whole_seconds_rounded_up(self) -> None:
        policy = RetryPolicy(backoff_seconds=1, backoff_rate=1.5)
        delays = [backoff_seconds(policy, n) for n in (1, 2, 3, 4)]
        assert delays == [0, 1, 2, 3]  # 0, 1, 1.5, 2.25
        assert all(type(d) is int for d in delays)

    def test_each_request_is_signed_and_names_its_delivery(self, world: World) -> None:
        task = world.task(action=webhook(method="PUT", body={"a": 1}, headers={"X-Mine": "1"}))
        execution = world.execution(task)
        world.webhooks.script(ERROR_500, OK)

        world.drive(execution)

        assert world.secrets_asked == [task.project_id, task.project_id]
        secret = secret_for(task.project_id)
        requests = world.webhooks.requests
        assert [r.headers[DELIVERY_HEADER] for r in requests] == [
            f"{execution.id}-1",
            f"{execution.id}-2",
        ]
        for request, sent_at in zip(requests, world.webhooks.sent_at, strict=True):
            assert (request.url, request.method, request.body) == (URL, "PUT", b'{"a":1}')
            assert request.headers["X-Mine"] == "1"
            assert request.timeout_seconds == 10
            signature = request.headers[SIGNATURE_HEADER]
            assert signature.startswith(f"t={int(sent_at.timestamp())},v1=")
            assert verifies(secret, signature, request.body)
            assert not verifies(secret_for(new_id()), signature, request.body)
            assert not verifies(secret, signature, b'{"a":2}')

    def test_each_project_signs_with_its_own_secret(self, world: World) -> None:
        now = world.clock.now()
        other = Project(new_id(), "Other", "", world.owner, now, now)
        world.projects.create(other, Membership(other.id, world.owner, ProjectRole.OWNER, now))
        world.project, home = other, world.project
        task = world.task()
        world.project = home
        world.webhooks.script(OK)
        world.drive(world.execution(task))
        (request,) = world.webhooks.requests
        assert world.secrets_asked == [other.id]
        assert verifies(secret_for(other.id), request.headers[SIGNATURE_HEADER], request.body)
        assert not verifies(secret_for(home.id), request.headers[SIGNATURE_HEADER], request.body)


# ---- idempotency and the edges ------------------------------------------------------------------


class TestIdempotency:
    def test_an_attempt_already_recorded_is_answered_from_the_record(self, world: World) -> None:
        execution = world.execution(world.task())
        world.webhooks.script(ERROR_500)
        first = world.run.attempt(execution.id, 1)
        recorded = world.stored(execution)

        again = world.run.attempt(execution.id, 1)

        assert again == first == StepOutcome(runs.RETRY, 2, 2)
        assert len(world.webhooks.requests) == 1
        assert world.stored(execution) == recorded  # not even a write

    def test_a_repeated_final_attempt_sends_nothing(self, world: World) -> None:
        execution = world.execution(world.task())
        world.webhooks.script(ERROR_500, OK)
        outcomes = world.drive(execution)
        finished = world.stored(execution)
        records = list(world.tasks.records)

        assert world.run.attempt(execution.id, 2) == outcomes[-1] == StepOutcome(runs.SUCCEEDED, 2)
        assert world.run.attempt(execution.id, 1) == StepOutcome(runs.SUCCEEDED, 2)
        assert len(world.webhooks.requests) == 2
        assert world.stored(execution) == finished
        assert world.tasks.records == records

    @pytest.mark.parametrize(
        ("status", "outcome"),
        [
            (ExecutionStatus.SUCCEEDED, runs.SUCCEEDED),
            (ExecutionStatus.FAILED, runs.FAILED),
            (ExecutionStatus.TIMED_OUT, runs.FAILED),
            (ExecutionStatus.SKIPPED, runs.FAILED),
            (ExecutionStatus.CANCELLED, runs.FAILED),
        ],
    )
    def test_an_attempt_on_a_finished_execution_only_answers(
        self, world: World, status: ExecutionStatus, outcome: str
    ) -> None:
        execution = world.execution(world.task())
        world.executions.executions[execution.id] = replace(
            execution, status=status, attempts=2, finished_at=AT
        )
        before = world.stored(execution)
        assert world.run.attempt(execution.id, 3) == StepOutcome(outcome, 2)
        assert world.webhooks.requests == []
        assert world.stored(execution) == before
        assert world.tasks.records == []

    def test_an_unknown_execution_ends_the_step(self, world: World) -> None:
        assert world.run.attempt(new_id() + world.project.id, 1) == StepOutcome(runs.FAILED, 0)
        assert world.webhooks.requests == []

    def test_a_concurrent_invocation_that_finished_first_wins(self, world: World) -> None:
        execution = world.execution(world.task())
        world.webhooks.script(ERROR_500)

        def other_invocation_finishes() -> None:
            current = world.stored(execution)
            world.executions.update(
                current,
                current.moved_to(ExecutionStatus.SUCCEEDED, world.clock.now(), attempts=1),
            )

        world.webhooks.during.append(other_invocation_finishes)
        outcome = world.run.attempt(execution.id, 1)

        assert outcome == StepOutcome(runs.SUCCEEDED, 1)
        stored = world.stored(execution)
        assert (stored.status, stored.attempts, stored.error) == (
            ExecutionStatus.SUCCEEDED,
            1,
            None,
        )

    def test_a_deleted_task_cancels_the_execution_without_sending(self, world: World) -> None:
        task = world.task()
        execution = world.execution(task)
        del world.tasks.tasks[task.id]

        outcome = world.run.attempt(execution.id, 1)

        assert outcome.outcome == runs.FAILED
        stored = world.stored(execution)
        assert stored.status is ExecutionStatus.CANCELLED
        assert stored.error == "the task was deleted"
        assert stored.finished_at == world.clock.now()
        assert world.webhooks.requests == []
        assert world.notifications() == []

    def test_a_task_deleted_between_attempts_cancels_the_running_execution(
        self, world: World
    ) -> None:
        task = world.task()
        execution = world.execution(task)
        world.webhooks.script(ERROR_500)
        retry = world.run.attempt(execution.id, 1)
        del world.tasks.tasks[task.id]
        assert world.run.attempt(execution.id, retry.attempt).outcome == runs.FAILED
        stored = world.stored(execution)
        assert (stored.status, stored.attempts) == (ExecutionStatus.CANCELLED, 1)
        assert len(world.webhooks.requests) == 1


class TestAbandon:
    def running(self, world: World, task: Task | None = None) -> Execution:
        execution = world.execution(task or world.task())
        world.webhooks.script(ERROR_500)
        world.run.attempt(execution.id, 1)  # attempt 1 failed: running, retry
        return world.stored(execution)

    def test_a_step_timeout_times_the_execution_out(self, world: World) -> None:
        task = world.task(assignee_id=world.member)
        execution = self.running(world, task)

        world.run.abandon(execution.id, 2, "States.Timeout")

        stored = world.stored(execution)
        assert stored.status is ExecutionStatus.TIMED_OUT
        assert stored.attempts == 2
        assert stored.error == "the attempt did not finish in time"
        assert stored.finished_at == world.clock.now()
        failed = world.notifications(NotificationType.EXECUTION_FAILED)
        assert {n.user_id for n in failed} == {world.member, world.owner}
        (event,) = world.history(EventType.EXECUTION_FINISHED)
        assert event.changes["status"] == ("running", "timed_out")

    def test_another_error_fails_the_execution_naming_it(self, world: World) -> None:
        execution = self.running(world)
        world.run.abandon(execution.id, 2, "Lambda.Unknown")
        stored = world.stored(execution)
        assert stored.status is ExecutionStatus.FAILED
        assert "Lambda.Unknown" in (stored.error or "")
        assert stored.attempts == 2

    def test_the_attempts_never_go_down(self, world: World) -> None:
        execution = self.running(world)
        world.run.abandon(execution.id, 1, "Lambda.Unknown")  # a late Catch of attempt 1
        assert world.stored(execution).attempts == 1

    @pytest.mark.parametrize(
        ("error", "message"),
        [
            ("States.Timeout", "the attempt did not finish in time"),
            ("Unavailable", "the attempt failed (Unavailable)"),
        ],
    )
    def test_a_queued_execution_fails(self, world: World, error: str, message: str) -> None:
        """The attempt died before it moved the execution to running: a queued execution cannot
        become timed_out, and it must not stay queued either."""
        execution = world.execution(world.task())
        world.run.abandon(execution.id, 1, error)
        stored = world.stored(execution)
        assert (stored.status, stored.error) == (ExecutionStatus.FAILED, message)
        assert stored.finished_at == world.clock.now()
        assert len(world.notifications(NotificationType.EXECUTION_FAILED)) == 1

    def test_a_finished_execution_is_never_touched(self, world: World) -> None:
        execution = world.execution(world.task())
        world.webhooks.script(OK)
        world.drive(execution)
        finished = world.stored(execution)
        records = list(world.tasks.records)
        for error in ("States.Timeout", "Lambda.Unknown"):
            world.run.abandon(execution.id, 1, error)
        assert world.stored(execution) == finished
        assert world.tasks.records == records

    def test_an_unknown_execution_is_ignored(self, world: World) -> None:
        world.run.abandon(new_id() + world.project.id, 1, "States.Timeout")
        assert world.executions.executions == {}


class TestPlan:
    def test_round_zero_runs_the_execution_alone(self, world: World) -> None:
        execution = world.execution(world.task())
        plan = world.run.plan(EXECUTION_RUN, execution.id, 0)
        assert (plan.round, plan.done, plan.execution_ids) == (1, False, (execution.id,))
        assert plan.max_concurrency >= 1
        assert world.stored(execution).status is ExecutionStatus.QUEUED

    def test_a_finished_execution_is_done(self, world: World) -> None:
        execution = world.execution(world.task())
        world.webhooks.script(OK)
        world.drive(execution)
        finished = world.stored(execution)
        for round_ in (0, 1):
            plan = world.run.plan(EXECUTION_RUN, execution.id, round_)
            assert (plan.done, plan.steps) == (True, ())
        assert world.stored(execution) == finished

    def test_an_unknown_execution_is_done(self, world: World) -> None:
        plan = world.run.plan(EXECUTION_RUN, new_id() + world.project.id, 0)
        assert (plan.done, plan.steps) == (True, ())

    @pytest.mark.parametrize("running", [False, True])
    def test_a_later_round_fails_an_unfinished_execution(self, world: World, running: bool) -> None:
        task = world.task(assignee_id=world.member)
        execution = world.execution(task)
        if running:
            world.webhooks.script(ERROR_500)
            world.run.attempt(execution.id, 1)

        plan = world.run.plan(EXECUTION_RUN, execution.id, 1)

        assert (plan.round, plan.done, plan.steps) == (2, True, ())
        stored = world.stored(execution)
        assert stored.status is ExecutionStatus.FAILED
        assert stored.error == "the run ended without a result"
        failed = world.notifications(NotificationType.EXECUTION_FAILED)
        assert {n.user_id for n in failed} == {world.member, world.owner}

    def test_an_unknown_kind_is_a_bad_run(self, world: World) -> None:
        execution = world.execution(world.task())
        with pytest.raises(BadRun):
            world.run.plan("workflow-of-doom", execution.id, 0)
        assert world.stored(execution).status is ExecutionStatus.QUEUED


# ---- reminders ----------------------------------------------------------------------------------


class TestReminders:
    def test_a_reminder_reopens_the_task_and_tells_the_assignee(self, world: World) -> None:
        done_at = AT - timedelta(days=2)
        task = world.task(
            action=None,
            assignee_id=world.member,
            status=Status.COMPLETED,
            completed_at=done_at,
            due_date=AT - timedelta(days=3),
        )
        execution = world.execution(task, scheduled_for=AT)
        now = world.clock.now()

        outcome = world.run.attempt(execution.id, 1)

        assert outcome == StepOutcome(runs.SUCCEEDED, 1)
        assert world.webhooks.requests == []
        after = world.tasks.get(task.id)
        assert after is not None
        assert after.status is Status.PENDING
        assert after.completed_at is None
        assert after.due_date == AT
        assert after.updated_at == now
        assert after.version == task.version + 1
        (updated,) = world.history(EventType.TASK_UPDATED)
        assert (updated.task_id, updated.actor_id) == (task.id, SCHEDULER_ACTOR)
        assert updated.changes["status"] == ("completed", "pending")
        assert updated.changes["completed_at"][1] is None
        assert set(updated.changes) == {"status", "completed_at", "due_date"}
        (reminder,) = world.notifications()
        assert (reminder.type, reminder.user_id, reminder.task_id, reminder.project_id) == (
            NotificationType.TASK_DUE_SOON,
            world.member,
            task.id,
            task.project_id,
        )
        stored = world.stored(execution)
        assert (stored.status, stored.attempts, stored.error) == (
            ExecutionStatus.SUCCEEDED,
            1,
            None,
        )
        assert world.history(EventType.EXECUTION_FINISHED)

    def test_a_manual_reminder_is_due_now_and_tells_the_creator(self, world: World) -> None:
        task = world.task(action=None)
        world.clock.advance(minutes=7)
        execution = world.execution(task, Trigger.MANUAL)
        world.run.attempt(execution.id, 1)
        after = world.tasks.get(task.id)
        assert after is not None
        assert after.due_date == world.clock.now()
        assert after.status is Status.PENDING
        (reminder,) = world.notifications()
        assert (reminder.type, reminder.user_id) == (NotificationType.TASK_DUE_SOON, world.owner)
        assert world.stored(execution).status is ExecutionStatus.SUCCEEDED

    def test_a_repeated_reminder_attempt_reminds_once(self, world: World) -> None:
        task = world.task(action=None, status=Status.COMPLETED, completed_at=AT)
        execution = world.execution(task)
        world.run.attempt(execution.id, 1)
        world.run.attempt(execution.id, 1)
        assert len(world.notifications()) == 1
        assert len(world.history(EventType.TASK_UPDATED)) == 1
        stored_task = world.tasks.get(task.id)
        assert stored_task is not None
        assert stored_task.version == task.version + 1

    def test_a_reminder_survives_a_concurrent_task_edit(self, world: World) -> None:
        task = world.task(action=None, status=Status.COMPLETED, completed_at=AT)
        execution = world.execution(task)
        # Someone renamed the task after the run read it: the first write is stale.
        original_get = world.tasks.get
        reads = {"n": 0}

        def get_then_rename(task_id: str) -> Task | None:
            found = original_get(task_id)
            reads["n"] += 1
            if reads["n"] == 1 and found is not None:
                renamed = found.with_changes(title="Renamed", version=found.version + 1)
                world.tasks.tasks[task_id] = renamed
            return found

        cast(Any, world.tasks).get = get_then_rename
        world.run.attempt(execution.id, 1)
        after = original_get(task.id)
        assert after is not None
        assert (after.title, after.status, after.due_date) == ("Renamed", Status.PENDING, AT)
        assert world.stored(execution).status is ExecutionStatus.SUCCEEDED


# A reminder fired by the schedule goes through `fire` like any other firing.
def test_a_scheduled_reminder_end_to_end(world: World) -> None:
    schedule = Schedule(kind=ScheduleKind.RATE, timezone="UTC", every=5, unit=RateUnit.MINUTES)
    task = world.task(action=None, schedule=schedule, status=Status.COMPLETED, completed_at=AT)
    fired = world.service.fire(task.id, AT, Delivery(project_id=task.project_id)).execution
    assert fired is not None
    # The firing's own delivery made the reminder: no state machine.
    assert (fired.status, fired.attempts, fired.lease_expires_at) == (
        ExecutionStatus.SUCCEEDED,
        1,
        None,
    )
    assert world.runner.started == []
    after = world.tasks.get(task.id)
    assert after is not None
    assert (after.status, after.due_date) == (Status.PENDING, AT)
