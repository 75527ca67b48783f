"""Running executions: the first attempt, made by the `fire` function itself, and what the run
state machine's `plan` and `run_step` functions do for the attempts that must wait.

The fast path: `fire` claims a firing and writes its execution already `running` and leased
(see `domain.executions`), then `first_attempt` sends the webhook (or applies the reminder)
and records it. A success, or a failure with no retry left, ends the execution there: one
Lambda invocation, no state machine. A failure with retries left is recorded (the lease kept
until the retry is due, plus `ATTEMPT_LEASE`) and the execution is handed over to the state
machine with the first retry's backoff; its `run_step` writes end the lease. Manual runs and
buffered firings whose turn came take the same path through an asynchronous invocation
(`AttemptDispatcher`).

`take_over` is what a repeated delivery, a dispatch and the sweep do with an unfinished
execution: nothing while its lease holds (a request may still be in flight); once it expired,
the holder died, and the run is finished from what is recorded: a lost first attempt counts as
an attempt (its request may have been sent) and the retry policy decides what follows; a lost
hand-over is made again (Step Functions is idempotent on the execution's name).

The state machine (`chalicelib/runs.py`) asks `plan` which steps are ready, then has
`run_step` make one attempt of each: `attempt` sends the task's webhook once, or, for a task
without an action, applies the reminder. It records the attempt on the execution and answers
what comes next: another attempt after `delay_seconds`, or the end (succeeded or failed).
Waiting between attempts is the state machine's; a Lambda never sleeps.

Every step is idempotent on `(execution, attempt)`: Step Functions may invoke a step again
after a Lambda failure, and an attempt that is already recorded is answered from the record
instead of being sent twice. Every write is conditional on the execution's version and status,
so a finished execution never changes again.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Final, TypeVar

from chalicelib import runs
from chalicelib.domain.activity import EventType, HistoryEvent, Notification, NotificationType
from chalicelib.domain.errors import StaleVersion, Unavailable
from chalicelib.domain.executions import (
    ATTEMPT_LEASE,
    Execution,
    ExecutionResult,
    ExecutionStatus,
    Trigger,
    backoff_seconds,
    excerpt,
    failure_of,
    new_execution_id,
    status_after,
)
from chalicelib.domain.model import new_id
from chalicelib.domain.tasks import Status, Task
from chalicelib.domain.webhooks import RetryPolicy, build_request
from chalicelib.domain.workflow_runs import (
    plan_round,
    step_status,
    unsettled_execution_ids,
)
from chalicelib.ports import (
    AttemptDispatcher,
    Clock,
    ExecutionRepository,
    ExecutionRunner,
    Prefetcher,
    TaskRepository,
    WebhookClient,
    WorkflowRunRepository,
    reads,
)
from chalicelib.services.executions import SCHEDULER_ACTOR, OverlapSlots
from chalicelib.services.tasks import recorded_changes
from chalicelib.services.workflow_runs import release_slot

EXECUTION_RUN: Final = "execution"  # a run that is one execution
WORKFLOW_RUN: Final = "workflow_run"  # a run of a workflow's steps
FAILED_STATUSES: Final = frozenset({ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT})
_TASK_WRITE_TRIES: Final = 3
_T = TypeVar("_T")
# Pauses before writing an attempt's record again when DynamoDB throttles it: the request was
# sent, and losing its answer would cost a second request after the lease. ~3 s in all, well
# within the function's timeout after a 60 s webhook.
RECORD_RETRY_DELAYS: Final = (0.1, 0.3, 0.9, 1.8)


class BadRun(ValueError):
    """The state machine named a run this code does not know: retrying cannot help."""


@dataclass(frozen=True)
class PlannedStep:
    """A step to run now: its execution, its task (so `attempt` reads both at once), and the
    attempt to make (an execution handed over after its first attempt goes on with its second)."""

    execution_id: str
    task_id: str
    attempt: int = 1


@dataclass(frozen=True)
class Plan:
    round: int
    done: bool
    steps: tuple[PlannedStep, ...] = ()
    max_concurrency: int = 1

    @property
    def execution_ids(self) -> tuple[str, ...]:
        return tuple(step.execution_id for step in self.steps)


@dataclass(frozen=True)
class StepOutcome:
    outcome: str  # runs.RETRY | runs.SUCCEEDED | runs.FAILED
    attempt: int  # the next attempt's number (with RETRY)
    delay_seconds: int = 0  # to wait before it
    # The execution as this step left it (so the fast path need not read it again).
    execution: Execution | None = field(default=None, compare=False, repr=False)

    @classmethod
    def final(cls, execution: Execution | None) -> StepOutcome:
        succeeded = execution is not None and execution.status is ExecutionStatus.SUCCEEDED
        attempts = execution.attempts if execution else 0
        return cls(runs.SUCCEEDED if succeeded else runs.FAILED, attempts, 0, execution)


@dataclass(frozen=True)
class TakeOver:
    """What `take_over` did with an unfinished execution, and the execution as it is now."""

    action: str  # one of the TAKEN_* values
    execution: Execution | None


TAKEN_NOTHING: Final = "nothing"  # finished, waiting for its slot, or the state machine's
TAKEN_IN_FLIGHT: Final = "in_flight"  # its lease holds: an attempt may still answer
TAKEN_RAN: Final = "ran"  # its first attempt was made here
TAKEN_DISPATCHED: Final = "dispatched"  # its first attempt was dispatched again
TAKEN_LOST_ATTEMPT: Final = "lost_attempt"  # its first attempt was lost and recorded so
TAKEN_HANDED_OVER: Final = "handed_over"  # its lost hand-over was made again


def retrying_unavailable(write: Callable[[], _T], sleep: Callable[[float], None]) -> _T:
    """`write()`, again after each of `RECORD_RETRY_DELAYS` while DynamoDB is unavailable
    (throttled): safe, as every execution write is conditional on the version read."""
    for delay in RECORD_RETRY_DELAYS:
        try:
            return write()
        except Unavailable:
            sleep(delay)
    return write()


def _finished_history(before: Execution, after: Execution, at: datetime) -> HistoryEvent:
    changes: dict[str, tuple[object, object]] = {
        "execution_id": (None, after.id),
        "trigger": (None, after.trigger.value),
        "status": (before.status.value, after.status.value),
        "attempts": (before.attempts, after.attempts),
    }
    if after.error:
        changes["error"] = (None, after.error)
    kind = EventType.EXECUTION_FINISHED
    return HistoryEvent(new_id(), after.task_id, kind, SCHEDULER_ACTOR, at, changes)


def _people(task: Task) -> list[str]:
    """Who hears about a task's runs: its assignee and its creator (once each)."""
    return [user for user in dict.fromkeys([task.assignee_id, task.created_by]) if user]


class RunService:
    def __init__(
        self,
        executions: ExecutionRepository,
        tasks: TaskRepository,
        webhooks: WebhookClient,
        signing_secret: Callable[[str], str],  # project id -> the project's webhook secret
        clock: Clock,
        slots: OverlapSlots,
        workflow_runs: WorkflowRunRepository | None = None,
        prefetcher: Prefetcher | None = None,
        *,
        runner: ExecutionRunner | None = None,
        dispatcher: AttemptDispatcher | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._executions = executions
        self._tasks = tasks
        self._webhooks = webhooks
        self._signing_secret = signing_secret
        self._clock = clock
        self._slots = slots
        self._workflow_runs = workflow_runs
        self._prefetch = prefetcher
        self._runner = runner  # None: no state machine; a run that must wait stays leased
        self._dispatcher = dispatcher
        self._sleep = sleep
        # What `_finish` ended, until the caller drains it for its metrics (`drain_finished`);
        # bounded, for callers that never do.
        self._finished: deque[ExecutionStatus] = deque(maxlen=1000)
        self._finished_lock = threading.Lock()

    def drain_finished(self) -> list[ExecutionStatus]:
        """The statuses of the executions this service ended since the last call, each
        reported once (the functions count them: executions finished, by status)."""
        with self._finished_lock:
            finished = list(self._finished)
            self._finished.clear()
        return finished

    # ---- plan -----------------------------------------------------------------------------------

    def plan(self, kind: str, run_id: str, round_: int) -> Plan:
        """The steps ready in this round. A single execution is its own only step: it runs in
        round 0; if it is still unfinished afterwards, its run ended without recording a
        result (nothing is left to record it), and it is failed here."""
        if kind == WORKFLOW_RUN and self._workflow_runs is not None:
            return self._plan_workflow_run(run_id, round_)
        if kind != EXECUTION_RUN:
            raise BadRun(f"unknown run kind {kind!r}")
        execution = self._executions.get(run_id)
        if execution is None or execution.status.finished:
            return Plan(round_ + 1, done=True)
        if round_ == 0:  # handed over after its first attempt: it goes on with the next one
            step = PlannedStep(execution.id, execution.task_id, execution.attempts + 1)
            return Plan(1, done=False, steps=(step,))
        self._finish(execution, ExecutionStatus.FAILED, error="the run ended without a result")
        return Plan(round_ + 1, done=True)

    def _plan_workflow_run(self, run_id: str, round_: int) -> Plan:
        """A round of a workflow run (`domain.workflow_runs.plan_round`): the ready steps'
        executions, the steps that will never start, and the run's status are one write."""
        assert self._workflow_runs is not None
        for _ in range(_TASK_WRITE_TRIES):
            run = self._workflow_runs.get(run_id)
            if run is None or run.status.finished:
                return Plan(round_ + 1, done=True)
            # Steps that finished in earlier rounds have their outcome on the run; only the
            # last round's executions are read (a round costs the same at step 10 or 100).
            executions = self._executions.get_many(unsettled_execution_ids(run))
            # The Map ran every started step to its end; one still unfinished lost its result.
            lost = [e.id for e in executions.values() if not e.status.finished]
            for execution_id in lost:
                with contextlib.suppress(StaleVersion):
                    self._finish(
                        executions[execution_id],
                        ExecutionStatus.FAILED,
                        error="the run ended without a result",
                    )
            if lost:
                executions |= self._executions.get_many(lost)
            decided = plan_round(run, executions)
            now = self._clock.now()
            started: list[Execution] = []
            steps = []
            for step in run.steps:
                if step.key in decided.start:
                    execution = Execution(
                        id=new_execution_id(run.project_id),
                        task_id=step.task_id,
                        project_id=run.project_id,
                        trigger=Trigger.WORKFLOW,
                        status=ExecutionStatus.QUEUED,
                        created_at=now,
                        workflow_run_id=run.id,
                    )
                    started.append(execution)
                    step = replace(step, execution_id=execution.id)
                elif step.key in decided.ends:
                    step = replace(step, outcome=decided.ends[step.key])
                elif step.execution_id is not None:
                    # What the step came to: lists of runs show it, and once final the next
                    # rounds need not read its execution again.
                    step = replace(step, outcome=step_status(step, executions))
                steps.append(step)
            after = run.with_changes(
                steps=tuple(steps),
                status=decided.status,
                started_at=run.started_at or now,
                finished_at=now if decided.done else None,
            )
            records: list[HistoryEvent | Notification] = []
            if decided.status is ExecutionStatus.FAILED:
                records.append(
                    Notification(
                        new_id(),
                        run.created_by,
                        NotificationType.WORKFLOW_RUN_FAILED,
                        f"Workflow run {run.id} failed",
                        now,
                        project_id=run.project_id,
                    )
                )
            try:
                saved = self._workflow_runs.advance(run, after, started, records)
            except StaleVersion:
                continue  # cancelled meanwhile: plan again from what is stored
            if decided.done:  # a scheduled run frees its workflow's overlap slot
                release_slot(self._workflow_runs, saved)
            return Plan(
                round_ + 1,
                done=decided.done or not started,
                steps=tuple(PlannedStep(e.id, e.task_id) for e in started),
                max_concurrency=run.max_concurrency,
            )
        raise Unavailable("the workflow run kept changing while it was planned")

    # ---- the fast path: the first attempt, outside the state machine ---------------------------

    def lease_until(self, after: datetime | None = None) -> datetime:
        """When a lease taken now (or held until `after`) ends."""
        return (after or self._clock.now()) + ATTEMPT_LEASE

    def first_attempt(self, execution: Execution, task: Task) -> Execution:
        """Make attempt 1 of an execution this caller holds (running, leased) and record it;
        a failure with retries left is handed over to the state machine."""
        try:
            if task.action is None:
                outcome = self._remind(execution, task, 1, retry_write=True)
            else:
                policy = task.retry or RetryPolicy()
                outcome = self._send(execution, task, 1, policy, hand_over=True)
        except StaleVersion:  # changed meanwhile (cancelled, or a lost answer's write held)
            return self._executions.get(execution.id) or execution
        return outcome.execution or execution

    def take_over(
        self,
        execution: Execution,
        task: Task | None = None,
        *,
        dispatched: bool = False,
        inline: bool = True,
    ) -> TakeOver:
        """Finish an unfinished execution that nobody may be running any more (see the
        module's docstring). `dispatched`: this is the dispatch a queued execution's lease
        waited for. `inline`: the first attempt may be made here (the sweep dispatches it)."""
        now = self._clock.now()
        if execution.status.finished:
            return TakeOver(TAKEN_NOTHING, execution)
        if execution.status is ExecutionStatus.QUEUED:
            return self._start_queued(execution, task, now, dispatched=dispatched, inline=inline)
        if execution.lease_expires_at is None:  # handed over: the state machine runs it
            return TakeOver(TAKEN_NOTHING, execution)
        if execution.leased(now):
            return TakeOver(TAKEN_IN_FLIGHT, execution)
        try:
            if execution.attempts == 0:
                return self._lost_first_attempt(execution, task, now)
            # Recorded and handed over, but the state machine may never have been started.
            released = self._executions.update(execution, replace(execution, lease_expires_at=None))
            self._hand_over(released, 0)
            return TakeOver(TAKEN_HANDED_OVER, released)
        except StaleVersion:  # another delivery, or the sweep, took it first
            return TakeOver(TAKEN_NOTHING, self._executions.get(execution.id))

    def recover_expired(self, limit: int = 100) -> list[TakeOver]:
        """The sweep: take over executions whose lease expired (their holder died)."""
        found = self._executions.find_expired_leases(self._clock.now(), limit)
        return [self.take_over(execution, inline=False) for execution in found]

    def _start_queued(
        self,
        execution: Execution,
        task: Task | None,
        now: datetime,
        *,
        dispatched: bool,
        inline: bool,
    ) -> TakeOver:
        if execution.trigger is Trigger.WORKFLOW or (
            execution.lease_expires_at is None and execution.trigger is not Trigger.MANUAL
        ):
            # A workflow's step (its run's state machine starts it), or a buffered firing
            # (released with its slot, then leased and dispatched).
            return TakeOver(TAKEN_NOTHING, execution)
        if execution.leased(now) and not dispatched:
            return TakeOver(TAKEN_IN_FLIGHT, execution)  # its dispatch is on its way
        try:
            if not inline:
                leased = self._executions.update(
                    execution, replace(execution, lease_expires_at=self.lease_until(now))
                )
                if self._dispatcher is not None:
                    self._dispatcher.dispatch(leased)
                return TakeOver(TAKEN_DISPATCHED, leased)
            running = self._executions.update(
                execution,
                execution.moved_to(
                    ExecutionStatus.RUNNING, now, lease_expires_at=self.lease_until(now)
                ),
            )
        except StaleVersion:  # a duplicate dispatch took it first
            return TakeOver(TAKEN_NOTHING, self._executions.get(execution.id))
        task = task if task is not None and task.id == running.task_id else None
        task = task or self._tasks.get(running.task_id)
        if task is None:
            ended = self._finish(running, ExecutionStatus.CANCELLED, error="the task was deleted")
            return TakeOver(TAKEN_RAN, ended)
        return TakeOver(TAKEN_RAN, self.first_attempt(running, task))

    def _lost_first_attempt(
        self, execution: Execution, task: Task | None, now: datetime
    ) -> TakeOver:
        """The first attempt's holder died before recording it; its request may have been
        sent, so it counts as an attempt, and the retry policy decides what follows."""
        task = task or self._tasks.get(execution.task_id)
        if task is None:
            ended = self._finish(execution, ExecutionStatus.CANCELLED, error="the task was deleted")
            return TakeOver(TAKEN_LOST_ATTEMPT, ended)
        policy = task.retry or RetryPolicy()
        error = "the attempt did not finish: its function ended before recording an answer"
        if policy.max_attempts > 1:
            delay = backoff_seconds(policy, 2)
            recorded = self._executions.update(
                execution,
                execution.moved_to(
                    ExecutionStatus.RUNNING,
                    now,
                    attempts=1,
                    error=error,
                    lease_expires_at=self.lease_until(now + timedelta(seconds=delay)),
                ),
            )
            self._hand_over(recorded, delay)
            return TakeOver(TAKEN_LOST_ATTEMPT, recorded)
        ended = self._finish(execution, ExecutionStatus.TIMED_OUT, task, attempts=1, error=error)
        return TakeOver(TAKEN_LOST_ATTEMPT, ended)

    def _hand_over(self, execution: Execution, delay_seconds: int) -> None:
        if self._runner is not None:
            self._runner.start(execution, delay_seconds)

    # ---- one attempt ----------------------------------------------------------------------------

    def attempt(self, execution_id: str, attempt: int, task_id: str | None = None) -> StepOutcome:
        if task_id is not None and self._prefetch is not None:
            # The state machine names the step's task: both items in one round trip.
            self._prefetch.warm([reads.execution(execution_id), reads.task(task_id)])
        execution = self._executions.get(execution_id)
        if execution is None or execution.status.finished:
            return StepOutcome.final(execution)  # gone with its task, or done already
        task = self._tasks.get(execution.task_id)
        if task is None and execution.trigger is Trigger.WORKFLOW:
            # The workflow still names a task that is gone: the step cannot do its work, and
            # the run must not pass for a success (its owner hears of it).
            return self._end(execution, ExecutionStatus.FAILED, error="the step's task was deleted")
        if task is None:
            return self._end(execution, ExecutionStatus.CANCELLED, error="the task was deleted")
        policy = task.retry or RetryPolicy()
        if execution.attempts >= attempt:  # recorded already: this invocation came again
            return self._next(execution, policy)
        try:
            if execution.status is ExecutionStatus.QUEUED:
                execution = self._executions.update(
                    execution, execution.moved_to(ExecutionStatus.RUNNING, self._clock.now())
                )
            if task.action is None and execution.trigger is Trigger.WORKFLOW:
                return self._complete_task(execution, task, attempt)
            if task.action is None:
                return self._remind(execution, task, attempt)
            return self._send(execution, task, attempt, policy)
        except StaleVersion:  # another invocation moved it meanwhile: answer from the record
            return self._next(self._executions.get(execution_id), policy)

    def abandon(self, execution_id: str, attempt: int, error_name: str) -> None:
        """An attempt ended in an error the state machine's `Retry` could not cure (the step's
        timeout, a crash): the execution ends with it, so none stays `running`."""
        execution = self._executions.get(execution_id)
        if execution is None or execution.status.finished:
            return
        if error_name == "States.Timeout":
            # Only a running execution may time out; one still queued (the attempt died before
            # moving it) fails, or the Conflict would leave it queued for good.
            running = execution.status is ExecutionStatus.RUNNING
            status = ExecutionStatus.TIMED_OUT if running else ExecutionStatus.FAILED
            message = "the attempt did not finish in time"
        else:
            status, message = ExecutionStatus.FAILED, f"the attempt failed ({error_name})"
        with contextlib.suppress(StaleVersion):  # it finished meanwhile
            self._finish(
                execution, status, attempts=max(execution.attempts, attempt), error=message
            )

    def _next(self, execution: Execution | None, policy: RetryPolicy) -> StepOutcome:
        if execution is None or execution.status.finished:
            return StepOutcome.final(execution)
        following = execution.attempts + 1
        return StepOutcome(runs.RETRY, following, backoff_seconds(policy, following))

    def _send(
        self,
        execution: Execution,
        task: Task,
        attempt: int,
        policy: RetryPolicy,
        *,
        hand_over: bool = False,
    ) -> StepOutcome:
        """One request, recorded. `hand_over` (the fast path): a retry is the state
        machine's, which this hands the execution to; the record is retried while DynamoDB
        throttles (the request is out: its answer must not be lost)."""
        action = task.action
        assert action is not None
        now = self._clock.now()
        request = build_request(
            action,
            secret=self._signing_secret(task.project_id),
            timestamp=int(now.timestamp()),
            execution_id=execution.id,
            attempt=attempt,
        )
        answer = self._webhooks.deliver(request)
        result = (
            ExecutionResult(answer.status_code, answer.duration_ms, excerpt(answer.body_excerpt))
            if answer.status_code is not None
            else None
        )
        error = None if answer.succeeded else failure_of(answer, action.timeout_seconds)
        if not answer.succeeded and attempt < policy.max_attempts:
            delay = backoff_seconds(policy, attempt + 1)
            now = self._clock.now()
            # Handed over, the lease stays until the retry is due: if this function dies
            # before the state machine starts, the hand-over is made again after it.
            lease = self.lease_until(now + timedelta(seconds=delay)) if hand_over else None
            after = execution.moved_to(
                ExecutionStatus.RUNNING,
                now,
                attempts=attempt,
                result=result,
                error=error,
                lease_expires_at=lease,
            )
            if hand_over:
                recorded = retrying_unavailable(
                    lambda: self._executions.update(execution, after), self._sleep
                )
                self._hand_over(recorded, delay)
            else:
                recorded = self._executions.update(execution, after)
            return StepOutcome(runs.RETRY, attempt + 1, delay, recorded)
        return self._end(
            execution,
            status_after(answer),
            task,
            retry_write=hand_over,
            attempts=attempt,
            result=result,
            error=error,
        )

    def _remind(
        self, execution: Execution, task: Task, attempt: int, *, retry_write: bool = False
    ) -> StepOutcome:
        """A firing without an action: the task is due at the firing time (and open again if
        it was completed), and its assignee (or creator) hears about it."""
        now = self._clock.now()
        due = execution.scheduled_for or now
        for _ in range(_TASK_WRITE_TRIES):
            after = task.with_changes(due_date=due, updated_at=now)
            if task.status is Status.COMPLETED:
                after = after.with_changes(status=Status.PENDING, completed_at=None)
            changes = recorded_changes(task, after)
            if not changes:
                break
            event = HistoryEvent(
                new_id(), task.id, EventType.TASK_UPDATED, SCHEDULER_ACTOR, now, changes
            )
            try:
                if retry_write:  # the first attempt holds the execution: see `_send`
                    retrying_unavailable(
                        functools.partial(self._tasks.update, task, after, None, [event]),
                        self._sleep,
                    )
                else:
                    self._tasks.update(task, after, None, [event])
                break
            except StaleVersion:
                fresh = self._tasks.get(task.id)
                if fresh is None:
                    return self._end(
                        execution, ExecutionStatus.CANCELLED, error="the task was deleted"
                    )
                task = fresh
        recipient = task.assignee_id or task.created_by
        reminder = Notification(
            new_id(),
            recipient,
            NotificationType.TASK_DUE_SOON,
            f'Reminder: "{task.title}" is due now',
            now,
            task.id,
            task.project_id,
        )
        return self._end(
            execution,
            ExecutionStatus.SUCCEEDED,
            task,
            attempts=attempt,
            extra=[reminder],
            retry_write=retry_write,
        )

    def _complete_task(self, execution: Execution, task: Task, attempt: int) -> StepOutcome:
        """A workflow step whose task has no action: it succeeds at once and completes the
        task (API.md)."""
        now = self._clock.now()
        for _ in range(_TASK_WRITE_TRIES):
            if task.status is Status.COMPLETED:
                break
            after = task.with_changes(status=Status.COMPLETED, completed_at=now, updated_at=now)
            event = HistoryEvent(
                new_id(),
                task.id,
                EventType.TASK_COMPLETED,
                SCHEDULER_ACTOR,
                now,
                recorded_changes(task, after),
            )
            try:
                self._tasks.update(task, after, None, [event])
                break
            except StaleVersion:
                fresh = self._tasks.get(task.id)
                if fresh is None:
                    return self._end(
                        execution, ExecutionStatus.CANCELLED, error="the task was deleted"
                    )
                task = fresh
        return self._end(execution, ExecutionStatus.SUCCEEDED, task, attempts=attempt)

    # ---- the end of an execution ----------------------------------------------------------------

    def _end(
        self,
        execution: Execution,
        status: ExecutionStatus,
        task: Task | None = None,
        *,
        extra: list[Notification] | None = None,
        retry_write: bool = False,
        **changes: object,
    ) -> StepOutcome:
        finished = self._finish(
            execution, status, task, extra=extra, retry_write=retry_write, **changes
        )
        return StepOutcome.final(finished)

    def _finish(
        self,
        execution: Execution,
        status: ExecutionStatus,
        task: Task | None = None,
        *,
        extra: list[Notification] | None = None,
        retry_write: bool = False,
        **changes: object,
    ) -> Execution:
        """Record the end: the `execution.finished` history event and, on failure, the
        `execution.failed` notification to the task's people, in the execution's write
        (`retry_write`: again while DynamoDB throttles it, see `retrying_unavailable`)."""
        now = self._clock.now()
        after = execution.moved_to(status, now, **changes)
        if task is None:
            task = self._tasks.get(execution.task_id)
        records: list[HistoryEvent | Notification] = list(extra or [])
        if task is not None:
            records.append(_finished_history(execution, after, now))
            if status in FAILED_STATUSES:
                message = f'"{task.title}" failed: {after.error or status.value}'
                records += [
                    Notification(
                        new_id(),
                        user,
                        NotificationType.EXECUTION_FAILED,
                        message,
                        now,
                        task.id,
                        task.project_id,
                    )
                    for user in _people(task)
                ]
        if retry_write:
            saved = retrying_unavailable(
                lambda: self._executions.update(execution, after, records), self._sleep
            )
        else:
            saved = self._executions.update(execution, after, records)
        with self._finished_lock:
            self._finished.append(saved.status)
        self._slots.release(saved, task.schedule if task is not None else None)
        return saved
