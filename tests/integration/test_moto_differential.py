"""Every transaction shape the DynamoDB adapters send ends the same on stock moto and on moto
with `local.moto_patches`, so the concurrency and fault tests (which run on the patches) test
DynamoDB's semantics as moto knows them, not our patch.

While a case runs, each TransactWriteItems request runs twice from the same state: stock moto's
on a copy of the tables, then the patched one on the tables themselves. Both must end alike:
success with the same items in every table the request names, or the same error with the same
cancellation reasons (code, message, item) in order. Each case drives the real adapter methods,
in the success case and in each of its failure cases, and names the reasons it expects, so it
fails if it no longer reaches the shape it is about. A condition only another writer can fail
(between an adapter's read and its transaction) is reached by that write, made in between.

No known difference: for every shape below stock moto already follows DynamoDB's documented
semantics on one thread (conditions on the state before the transaction, all or nothing, one
reason per item); the patch changes what other threads see meanwhile, not the outcome.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pynamodb.exceptions import TransactWriteError

from chalicelib.adapters.dynamodb.api_tokens import DynamoApiTokenRepository
from chalicelib.adapters.dynamodb.calendars import DynamoCalendarRepository
from chalicelib.adapters.dynamodb.comments import DynamoCommentRepository
from chalicelib.adapters.dynamodb.executions import (
    DynamoExecutionRepository,
    purge_task_executions,
)
from chalicelib.adapters.dynamodb.idempotency import DynamoIdempotencyStore
from chalicelib.adapters.dynamodb.identity import DynamoUserRepository
from chalicelib.adapters.dynamodb.projects import DynamoProjectRepository
from chalicelib.adapters.dynamodb.sweep import DynamoDueSweepRepository
from chalicelib.adapters.dynamodb.tasks import DynamoTaskRepository
from chalicelib.adapters.dynamodb.templates import DynamoTemplateRepository
from chalicelib.adapters.dynamodb.workflow_runs import DynamoWorkflowRunRepository
from chalicelib.adapters.dynamodb.workflows import DynamoWorkflowRepository
from chalicelib.domain import api_tokens
from chalicelib.domain.activity import EventType, HistoryEvent, Notification, NotificationType
from chalicelib.domain.api_tokens import ApiToken, Scope
from chalicelib.domain.comments import Comment
from chalicelib.domain.errors import (
    EmailTaken,
    FirstAdminTaken,
    MemberExists,
    NotAMember,
    NotFound,
    StaleVersion,
    TooManyTokens,
)
from chalicelib.domain.executions import (
    Execution,
    ExecutionStatus,
    Slot,
    SlotTaken,
    Trigger,
    firing_execution_id,
    new_execution_id,
)
from chalicelib.domain.idempotency import LEASE as IDEMPOTENCY_LEASE
from chalicelib.domain.idempotency import ClaimLost, IdempotencyRecord
from chalicelib.domain.idempotency import State as IdempotencyState
from chalicelib.domain.ids import project_of
from chalicelib.domain.model import new_id
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.tasks import Status, Task, new_task_id
from chalicelib.domain.users import Role, Session, User
from chalicelib.domain.workflow_runs import WorkflowRun, new_run_id, start_run
from local import moto_patches
from tests.integration.test_templates_repositories import template
from tests.integration.test_workflow_repositories import workflow

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PASSED, FAILED = "None", "ConditionalCheckFailed"  # moto's codes of a transaction's items

Outcome = tuple[Any, ...]  # ("ok",), or (error type, its cancellation reasons or message)


@dataclass
class Run:
    """One TransactWriteItems request, on stock moto and on the patched one."""

    shape: list[str]  # "<operation> <table>", in the order sent
    stock: Outcome
    patched: Outcome
    stock_items: dict[str, list[str]]
    patched_items: dict[str, list[str]]

    @property
    def codes(self) -> list[str] | None:
        """The cancellation reasons' codes in order (as the patched run gave them), or None."""
        if self.patched[0] != "TransactionCanceledException":
            return None
        return [reason["Code"] for reason in self.patched[1]]


@dataclass
class Differential:
    stock: Callable[..., None]
    patched: Callable[..., None]
    runs: list[Run] = field(default_factory=list)

    def transact_write_items(self, backend: Any, transact_items: list[dict[str, Any]]) -> None:
        shadow = copy.copy(backend)
        shadow.tables = copy.deepcopy(backend.tables)
        stock_outcome, _ = _outcome(lambda: self.stock(shadow, transact_items))
        patched_outcome, error = _outcome(lambda: self.patched(backend, transact_items))
        names = {op["TableName"] for item in transact_items for op in item.values()}
        self.runs.append(
            Run(
                shape=[
                    f"{kind} {op['TableName']}" for i in transact_items for kind, op in i.items()
                ],
                stock=stock_outcome,
                patched=patched_outcome,
                stock_items=_items(shadow, names),
                patched_items=_items(backend, names),
            )
        )
        if error is not None:
            raise error

    def assert_alike(self) -> None:
        assert self.runs, "the case sent no transaction"
        for run in self.runs:
            assert run.patched == run.stock, run.shape
            assert run.patched_items == run.stock_items, run.shape


def _outcome(call: Callable[[], None]) -> tuple[Outcome, Exception | None]:
    try:
        call()
    except Exception as error:  # moto's errors: compared, then passed on to the caller
        description = json.loads(getattr(error, "description", "null") or "null")
        if isinstance(description, dict) and "CancellationReasons" in description:
            return (type(error).__name__, description["CancellationReasons"]), error
        return (type(error).__name__, str(error)), error
    return ("ok",), None


def _items(backend: Any, table_names: set[str]) -> dict[str, list[str]]:
    return {
        name: sorted(
            json.dumps(item.to_json()["Attributes"], sort_keys=True)
            for item in backend.tables[name].all_items()
        )
        for name in sorted(table_names)
        if name in backend.tables
    }


@pytest.fixture
def differential(moto_aws: None) -> Iterator[Differential]:
    from moto.dynamodb.models import DynamoDBBackend

    stock = DynamoDBBackend.transact_write_items
    assert stock.__module__ == "moto.dynamodb.models", "moto is patched already"
    with moto_patches.installed():
        patched = DynamoDBBackend.transact_write_items
        assert patched is not stock
        oracle = Differential(stock, patched)

        def both(backend: Any, transact_items: list[dict[str, Any]]) -> None:
            oracle.transact_write_items(backend, transact_items)

        DynamoDBBackend.transact_write_items = both  # type: ignore[assignment,method-assign]
        try:
            yield oracle
        finally:
            DynamoDBBackend.transact_write_items = patched  # type: ignore[method-assign]


# ---- the world a case starts from ----------------------------------------------------------


@dataclass
class Account:
    user: User
    project: Project


def account(first_admin: bool = False, email: str | None = None) -> Account:
    user_id, project_id = new_id(), new_id()
    user = User(
        user_id, email or f"{user_id}@x.io", "N", Role.MEMBER, "UTC", "h", project_id, NOW, NOW
    )
    project = Project(project_id, "Personal", "", user_id, NOW, NOW, personal=True)
    owner = Membership(project_id, user_id, ProjectRole.OWNER, NOW)
    session = Session(new_id(), user_id, new_id(), NOW, NOW + timedelta(days=1))
    DynamoUserRepository().create_account(user, project, owner, session, first_admin=first_admin)
    return Account(user, project)


def team_project(owner: Account) -> Project:
    project = Project(new_id(), "Team", "", owner.user.id, NOW, NOW)
    DynamoProjectRepository().create(
        project, Membership(project.id, owner.user.id, ProjectRole.OWNER, NOW)
    )
    return project


def task(project_id: str, **fields: Any) -> Task:
    return Task(
        id=new_id(),
        project_id=project_id,
        title="T",
        created_by="u",
        created_at=NOW,
        updated_at=NOW,
        **fields,
    )


def created(task_: Task) -> Task:
    tasks = DynamoTaskRepository()
    tasks.create(task_, tasks.graph(task_.project_id))
    stored = tasks.get(task_.id)
    assert stored is not None
    return stored


def history(task_id: str) -> HistoryEvent:
    return HistoryEvent(new_id(), task_id, EventType.TASK_UPDATED, "u", NOW, {"title": ("a", "b")})


def unsaved_task_id() -> str:
    """A task's id (in a project of its own): executions and their slots need no stored task."""
    return new_task_id(new_id())


def firing(task_id: str, at: datetime = NOW, **fields: Any) -> Execution:
    """The execution of the firing (task, at), running: its id names the firing."""
    project_id = project_of(task_id)
    assert project_id is not None
    fields.setdefault("status", ExecutionStatus.RUNNING)
    return Execution(
        id=firing_execution_id(project_id, task_id, at),
        task_id=task_id,
        project_id=project_id,
        trigger=Trigger.SCHEDULE,
        created_at=NOW,
        scheduled_for=at,
        **fields,
    )


def skipped(execution: Execution) -> Execution:
    return replace(execution, status=ExecutionStatus.SKIPPED, finished_at=NOW, error="skip")


def finished_event(execution: Execution) -> HistoryEvent:
    return HistoryEvent(
        new_id(),
        execution.task_id,
        EventType.EXECUTION_FINISHED,
        "scheduler",
        NOW,
        {"status": ("running", execution.status.value)},
    )


class RacedExecutions(DynamoExecutionRepository):
    """Executions whose read of a slot's owner is followed by another writer's `race`, as when
    another delivery gets in between the read and the transaction that relies on it."""

    def __init__(self, race: Callable[[], object]) -> None:
        self._race = race

    def slot_owner(self, task_id: str, slot: Slot) -> str | None:
        owner = super().slot_owner(task_id, slot)
        self._race()
        return owner


def scheduled_run() -> WorkflowRun:
    """A firing's run of a new workflow (runs need no stored project or workflow)."""
    return start_run(
        workflow(new_id()), trigger="schedule", created_by="scheduler", at=NOW, scheduled_for=NOW
    )


def stored_run() -> WorkflowRun:
    return DynamoWorkflowRunRepository().create(scheduled_run())


def step_started(run: WorkflowRun) -> tuple[WorkflowRun, Execution]:
    """The run's next round: its first step started, with that step's execution."""
    first = run.steps[0]
    execution = Execution(
        id=new_execution_id(run.project_id),
        task_id=first.task_id,
        project_id=run.project_id,
        trigger=Trigger.WORKFLOW,
        status=ExecutionStatus.QUEUED,
        created_at=NOW,
        workflow_run_id=run.id,
    )
    steps = (replace(first, execution_id=execution.id), *run.steps[1:])
    return run.with_changes(status=ExecutionStatus.RUNNING, steps=steps), execution


def stored_user(owner: Account) -> User:
    user = DynamoUserRepository().get(owner.user.id)
    assert user is not None
    return user


def due_task(project_id: str) -> Task:
    return created(task(project_id, due_date=NOW + timedelta(hours=2)))


def due_soon(owner: Account, task_: Task) -> Notification:
    return Notification(
        new_id(),
        owner.user.id,
        NotificationType.TASK_DUE_SOON,
        "due",
        NOW,
        task_.id,
        task_.project_id,
    )


# API tokens


def api_token(user_id: str) -> ApiToken:
    token_id = api_tokens.new_token_id(user_id)
    return ApiToken(token_id, user_id, new_id(), "t", frozenset({Scope.READ}), "tb_", "h" * 64, NOW)


def create_api_token() -> None:
    DynamoApiTokenRepository().create(api_token(account().user.id), 50)


def create_api_token_over_the_cap() -> None:
    repo, user_id = DynamoApiTokenRepository(), account().user.id
    repo.create(api_token(user_id), 1)
    with pytest.raises(TooManyTokens):
        repo.create(api_token(user_id), 1)


def delete_api_token() -> None:
    repo, token = DynamoApiTokenRepository(), api_token(account().user.id)
    repo.create(token, 50)
    assert repo.delete(token.id)


def delete_missing_api_token() -> None:
    repo, user_id = DynamoApiTokenRepository(), account().user.id
    repo.create(api_token(user_id), 50)
    assert not repo.delete(api_token(user_id).id)


# ---- the cases: (what the adapter call does, the codes of its last transaction) --------------


def register() -> None:
    account()


def register_first_admin() -> None:
    account(first_admin=True)


def register_taken_email() -> None:
    account(email="ada@x.io")
    with pytest.raises(EmailTaken):
        account(email="ada@x.io")


def register_second_first_admin() -> None:
    account(first_admin=True)
    with pytest.raises(FirstAdminTaken):
        account(first_admin=True)


def create_project() -> None:
    team_project(account())


def create_project_of_unknown_user() -> None:
    project = Project(new_id(), "Team", "", new_id(), NOW, NOW)
    with pytest.raises(NotFound):
        DynamoProjectRepository().create(
            project, Membership(project.id, project.owner_id, ProjectRole.OWNER, NOW)
        )


def add_member() -> None:
    project = team_project(account())
    DynamoProjectRepository().add_member(
        Membership(project.id, account().user.id, ProjectRole.MEMBER, NOW)
    )


def add_member_twice() -> None:
    project, member = team_project(account()), account()
    membership = Membership(project.id, member.user.id, ProjectRole.MEMBER, NOW)
    DynamoProjectRepository().add_member(membership)
    with pytest.raises(MemberExists):
        DynamoProjectRepository().add_member(membership)


def add_member_to_deleted_project() -> None:
    with pytest.raises(NotFound):
        DynamoProjectRepository().add_member(
            Membership(new_id(), account().user.id, ProjectRole.MEMBER, NOW)
        )


def set_member_role() -> None:
    project, member = team_project(account()), account()
    DynamoProjectRepository().add_member(
        Membership(project.id, member.user.id, ProjectRole.MEMBER, NOW)
    )
    DynamoProjectRepository().set_member_role(
        Membership(project.id, member.user.id, ProjectRole.ADMIN, NOW)
    )


def set_role_of_non_member() -> None:
    project = team_project(account())
    with pytest.raises(NotAMember):
        DynamoProjectRepository().set_member_role(
            Membership(project.id, account().user.id, ProjectRole.ADMIN, NOW)
        )


def remove_member() -> None:
    project, member = team_project(account()), account()
    DynamoProjectRepository().add_member(
        Membership(project.id, member.user.id, ProjectRole.MEMBER, NOW)
    )
    DynamoProjectRepository().remove_member(project.id, member.user.id)


def remove_non_member() -> None:
    project = team_project(account())
    with pytest.raises(NotAMember):
        DynamoProjectRepository().remove_member(project.id, account().user.id)


def delete_project() -> None:
    DynamoProjectRepository().delete(team_project(account()))


def delete_project_at_stale_version() -> None:
    project = team_project(account())
    with pytest.raises(StaleVersion):
        DynamoProjectRepository().delete(replace(project, version=7))


def create_subtask_with_dependency_and_history() -> None:
    project_id = account().project.id
    parent, dependency = created(task(project_id)), created(task(project_id))
    tasks = DynamoTaskRepository()
    subtask = task(project_id, parent_id=parent.id, depends_on=(dependency.id,))
    tasks.create(subtask, tasks.graph(project_id), [history(subtask.id)])


def create_task_in_deleted_project() -> None:
    tasks, orphan = DynamoTaskRepository(), task(new_id())
    with pytest.raises(NotFound):
        tasks.create(orphan, tasks.graph(orphan.project_id))


def create_subtask_of_deleted_parent() -> None:
    project_id = account().project.id
    tasks = DynamoTaskRepository()
    with pytest.raises(NotFound):
        tasks.create(task(project_id, parent_id=new_id()), None)


def update_task_moving_and_closing_it() -> None:
    project_id = account().project.id
    old_parent, new_parent = created(task(project_id)), created(task(project_id))
    before = created(task(project_id, parent_id=old_parent.id))
    after = before.with_changes(parent_id=new_parent.id, status=Status.COMPLETED)
    tasks = DynamoTaskRepository()
    tasks.update(before, after, tasks.graph(project_id), [history(before.id)])


def update_task_at_stale_version() -> None:
    project_id = account().project.id
    before = created(task(project_id))
    tasks = DynamoTaskRepository()
    tasks.update(before, before.with_changes(title="First"), None)
    with pytest.raises(StaleVersion):
        tasks.update(before, before.with_changes(title="Second"), None)


def delete_task_with_subtask_and_dependent() -> None:
    project_id = account().project.id
    doomed = created(task(project_id))
    created(task(project_id, parent_id=doomed.id))
    created(task(project_id, depends_on=(doomed.id,)))
    tasks = DynamoTaskRepository()
    stored = tasks.get(doomed.id)
    assert stored is not None
    tasks.delete(stored, tasks.graph(project_id), [history(doomed.id)])


def delete_task_at_stale_version() -> None:
    project_id = account().project.id
    doomed = created(task(project_id))
    tasks = DynamoTaskRepository()
    with pytest.raises(StaleVersion):
        tasks.delete(replace(doomed, version=7), tasks.graph(project_id))


def comment() -> None:
    commented = created(task(account().project.id))
    DynamoCommentRepository().add(
        Comment(new_id(), commented.id, commented.project_id, "u", "hi", NOW),
        [history(commented.id)],
    )


def comment_on_deleted_task() -> None:
    project_id = account().project.id
    with pytest.raises(NotFound):
        DynamoCommentRepository().add(Comment(new_id(), new_id(), project_id, "u", "hi", NOW))


def create_template() -> None:
    DynamoTemplateRepository().create(template(account().project.id))


def create_template_in_deleted_project() -> None:
    with pytest.raises(NotFound):
        DynamoTemplateRepository().create(template(new_id()))


def update_template() -> None:
    templates = DynamoTemplateRepository()
    before = templates.create(template(account().project.id))
    templates.update(before, before.with_changes(name="New"))


def update_template_at_stale_version() -> None:
    templates = DynamoTemplateRepository()
    before = templates.create(template(account().project.id))
    templates.update(before, before.with_changes(name="First"))
    with pytest.raises(StaleVersion):
        templates.update(before, before.with_changes(name="Second"))


# executions: a firing's claim is its execution's put; with a record (a skipped firing) that put
# is a transaction, and so is the active slot's put behind the buffered one's check.


def record_skipped_firing() -> None:
    execution = skipped(firing(unsaved_task_id()))
    _, created_now = DynamoExecutionRepository().create_for_firing(
        execution, [finished_event(execution)]
    )
    assert created_now


def record_skipped_firing_again() -> None:
    execution = skipped(firing(unsaved_task_id()))
    executions = DynamoExecutionRepository()
    executions.create_for_firing(execution, [finished_event(execution)])
    stored, created_now = executions.create_for_firing(execution, [finished_event(execution)])
    assert (stored.id, created_now) == (execution.id, False)


def take_active_slot() -> None:
    DynamoExecutionRepository().create_for_firing(firing(unsaved_task_id()), (), Slot.ACTIVE)


def take_active_slot_again() -> None:
    """A repeated delivery owns the slot already."""
    execution, executions = firing(unsaved_task_id()), DynamoExecutionRepository()
    executions.create_for_firing(execution, (), Slot.ACTIVE)
    _, created_now = executions.create_for_firing(execution, (), Slot.ACTIVE)
    assert not created_now


def take_active_slot_held_by_another() -> None:
    task_id, executions = unsaved_task_id(), DynamoExecutionRepository()
    executions.create_for_firing(firing(task_id), (), Slot.ACTIVE)
    with pytest.raises(SlotTaken):
        executions.create_for_firing(firing(task_id, NOW + timedelta(hours=1)), (), Slot.ACTIVE)


def take_active_slot_behind_a_waiting_one() -> None:
    task_id, executions = unsaved_task_id(), DynamoExecutionRepository()
    executions.create_for_firing(firing(task_id), (), Slot.BUFFERED)
    with pytest.raises(SlotTaken):
        executions.create_for_firing(firing(task_id, NOW + timedelta(hours=1)), (), Slot.ACTIVE)


def take_active_slot_held_with_one_waiting() -> None:
    task_id, executions = unsaved_task_id(), DynamoExecutionRepository()
    executions.create_for_firing(firing(task_id), (), Slot.ACTIVE)
    executions.create_for_firing(firing(task_id, NOW + timedelta(hours=1)), (), Slot.BUFFERED)
    with pytest.raises(SlotTaken):
        executions.create_for_firing(firing(task_id, NOW + timedelta(hours=2)), (), Slot.ACTIVE)


def promote_buffered() -> None:
    task_id, executions = unsaved_task_id(), DynamoExecutionRepository()
    waiting = firing(task_id)
    executions.create_for_firing(waiting, (), Slot.BUFFERED)
    assert executions.promote_buffered(task_id) == waiting.id


def promote_buffered_while_active_held() -> None:
    task_id, executions = unsaved_task_id(), DynamoExecutionRepository()
    executions.create_for_firing(firing(task_id), (), Slot.ACTIVE)
    executions.create_for_firing(firing(task_id, NOW + timedelta(hours=1)), (), Slot.BUFFERED)
    assert executions.promote_buffered(task_id) is None


def promote_buffered_of_task_purged_meanwhile() -> None:
    task_id = unsaved_task_id()
    DynamoExecutionRepository().create_for_firing(firing(task_id), (), Slot.BUFFERED)
    assert RacedExecutions(lambda: purge_task_executions(task_id)).promote_buffered(task_id) is None


def promote_buffered_promoted_by_another_meanwhile() -> None:
    task_id, executions = unsaved_task_id(), DynamoExecutionRepository()
    executions.create_for_firing(firing(task_id), (), Slot.BUFFERED)
    raced = RacedExecutions(lambda: executions.promote_buffered(task_id))
    assert raced.promote_buffered(task_id) is None


def create_execution_with_history() -> None:
    execution = firing(unsaved_task_id())
    DynamoExecutionRepository().create(execution, [finished_event(execution)])


def create_execution_twice() -> None:
    execution, executions = firing(unsaved_task_id()), DynamoExecutionRepository()
    executions.create(execution)
    with pytest.raises(TransactWriteError):
        executions.create(execution)


def finish_execution_with_history() -> None:
    running, executions = firing(unsaved_task_id()), DynamoExecutionRepository()
    executions.create_for_firing(running)
    done = replace(running, status=ExecutionStatus.SUCCEEDED, finished_at=NOW)
    executions.update(running, done, [finished_event(done)])


def finish_execution_at_stale_version() -> None:
    running, executions = firing(unsaved_task_id()), DynamoExecutionRepository()
    executions.create_for_firing(running)
    done = replace(running, status=ExecutionStatus.SUCCEEDED, finished_at=NOW)
    executions.update(running, done, [finished_event(done)])
    with pytest.raises(StaleVersion):
        executions.update(running, done, [finished_event(done)])


def finish_execution_read_in_another_status() -> None:
    running, executions = firing(unsaved_task_id()), DynamoExecutionRepository()
    executions.create_for_firing(running)
    done = replace(running, status=ExecutionStatus.SUCCEEDED, finished_at=NOW)
    with pytest.raises(StaleVersion):
        executions.update(
            replace(running, status=ExecutionStatus.QUEUED), done, [finished_event(done)]
        )


# workflow runs


def fire_workflow() -> None:
    _, created_now = DynamoWorkflowRunRepository().create_for_firing(new_id(), scheduled_run())
    assert created_now


def fire_workflow_holding_its_slot() -> None:
    runs = DynamoWorkflowRunRepository()
    _, created_now = runs.create_for_firing(new_id(), scheduled_run(), hold_slot=True)
    assert created_now


def fire_workflow_again() -> None:
    """A repeated delivery: the claim, and the slot its first delivery took, are held."""
    runs, key, first = DynamoWorkflowRunRepository(), new_id(), scheduled_run()
    runs.create_for_firing(key, first, hold_slot=True)
    again = replace(first, id=new_run_id(first.project_id))
    stored, created_now = runs.create_for_firing(key, again, hold_slot=True)
    assert (stored.id, created_now) == (first.id, False)


def fire_workflow_while_its_slot_is_held() -> None:
    runs, first = DynamoWorkflowRunRepository(), scheduled_run()
    runs.create_for_firing(new_id(), first, hold_slot=True)
    later = replace(first, id=new_run_id(first.project_id))
    with pytest.raises(SlotTaken):
        runs.create_for_firing(new_id(), later, hold_slot=True)


def fire_workflow_into_an_existing_run() -> None:
    runs, run = DynamoWorkflowRunRepository(), stored_run()
    with pytest.raises(TransactWriteError):
        runs.create_for_firing(new_id(), run)


def advance_run() -> None:
    before = stored_run()
    after, execution = step_started(before)
    DynamoWorkflowRunRepository().advance(before, after, [execution], [finished_event(execution)])


def advance_run_at_stale_version() -> None:
    runs, before = DynamoWorkflowRunRepository(), stored_run()
    after, execution = step_started(before)
    runs.advance(before, after)
    with pytest.raises(StaleVersion):
        runs.advance(before, after, [execution], [finished_event(execution)])


def advance_run_starting_an_existing_execution() -> None:
    before = stored_run()
    after, execution = step_started(before)
    DynamoExecutionRepository().create(execution)
    with pytest.raises(StaleVersion):
        DynamoWorkflowRunRepository().advance(
            before, after, [execution], [finished_event(execution)]
        )


# calendar keys


def set_calendar_key() -> None:
    user = stored_user(account())
    DynamoCalendarRepository().set_key(user, user.with_changes(calendar_nonce="n"), new_id(), None)


def rotate_calendar_key() -> None:
    calendars, user, lookup = DynamoCalendarRepository(), stored_user(account()), new_id()
    keyed = calendars.set_key(user, user.with_changes(calendar_nonce="n"), lookup, None)
    calendars.set_key(keyed, keyed.with_changes(calendar_nonce="m"), new_id(), lookup)


def rotate_calendar_key_at_stale_version() -> None:
    calendars, user, lookup = DynamoCalendarRepository(), stored_user(account()), new_id()
    calendars.set_key(user, user.with_changes(calendar_nonce="n"), lookup, None)
    with pytest.raises(StaleVersion):
        calendars.set_key(user, user.with_changes(calendar_nonce="m"), new_id(), lookup)


def set_calendar_key_to_a_taken_lookup() -> None:
    calendars, lookup = DynamoCalendarRepository(), new_id()
    first, second = stored_user(account()), stored_user(account())
    calendars.set_key(first, first.with_changes(calendar_nonce="n"), lookup, None)
    with pytest.raises(StaleVersion):
        calendars.set_key(second, second.with_changes(calendar_nonce="m"), lookup, None)


# the due-date sweep's notifications


def notify_due() -> None:
    owner = account()
    due = due_task(owner.project.id)
    assert DynamoDueSweepRepository().notify_once(new_id(), due, due_soon(owner, due), NOW)


def notify_due_again() -> None:
    owner, sweep, claim = account(), DynamoDueSweepRepository(), new_id()
    due = due_task(owner.project.id)
    sweep.notify_once(claim, due, due_soon(owner, due), NOW)
    assert not sweep.notify_once(claim, due, due_soon(owner, due), NOW)


def notify_due_of_task_completed_since() -> None:
    owner, tasks = account(), DynamoTaskRepository()
    due = due_task(owner.project.id)
    tasks.update(due, due.with_changes(status=Status.COMPLETED), None)
    assert not DynamoDueSweepRepository().notify_once(new_id(), due, due_soon(owner, due), NOW)


def notify_due_in_deleted_project() -> None:
    owner = account()
    project = team_project(owner)
    due = due_task(project.id)
    DynamoProjectRepository().delete(project)
    assert not DynamoDueSweepRepository().notify_once(new_id(), due, due_soon(owner, due), NOW)


# a workflow's change: only its changed attributes, at its version


def update_workflow() -> None:
    workflows = DynamoWorkflowRepository()
    before = workflows.create(workflow(account().project.id))
    workflows.update(before, before.with_changes(name="New"))


def update_workflow_at_stale_version() -> None:
    workflows = DynamoWorkflowRepository()
    before = workflows.create(workflow(account().project.id))
    workflows.update(before, before.with_changes(name="First"))
    with pytest.raises(StaleVersion):
        workflows.update(before, before.with_changes(name="Second"))


def update_workflow_in_deleted_project() -> None:
    project = team_project(account())
    workflows = DynamoWorkflowRepository()
    before = workflows.create(workflow(project.id))
    DynamoProjectRepository().delete(project)
    with pytest.raises(NotFound):
        workflows.update(before, before.with_changes(name="New"))


# idempotent POSTs: the route's own transaction carries its claim's check (an update of the
# idempotency record, on condition that the claim still holds).


def idempotency_claim(
    user_id: str, lease_id: str = "lease-1", at: datetime = NOW
) -> IdempotencyRecord:
    record = IdempotencyRecord(
        user_id=user_id,
        key="key-1",
        fingerprint="same request",
        route="POST /tasks",
        state=IdempotencyState.IN_PROGRESS,
        lease_id=lease_id,
        lease_until=at + IDEMPOTENCY_LEASE,
        expires_at=at + timedelta(days=1),
    )
    assert DynamoIdempotencyStore().claim(record, at) is None
    return record


def create_task_under_claim() -> None:
    owner = account()
    claim = idempotency_claim(owner.user.id)
    with DynamoIdempotencyStore().guarded(claim):
        DynamoTaskRepository().create(task(owner.project.id), None)


def create_task_under_lost_claim() -> None:
    owner = account()
    claim = idempotency_claim(owner.user.id)
    later = NOW + IDEMPOTENCY_LEASE + timedelta(seconds=1)
    idempotency_claim(owner.user.id, "lease-2", at=later)  # taken over after the lease
    with pytest.raises(ClaimLost), DynamoIdempotencyStore().guarded(claim):
        DynamoTaskRepository().create(task(owner.project.id), None)


def start_workflow_run_under_claim() -> None:
    claim = idempotency_claim(new_id())
    with DynamoIdempotencyStore().guarded(claim):
        DynamoWorkflowRunRepository().create(scheduled_run())


CASES: dict[str, tuple[Callable[[], None], list[str] | None]] = {
    # create_account: puts of the email claim, [the first-admin claim,] user, project,
    # membership, user index, session.
    "register": (register, None),
    "register_first_admin": (register_first_admin, None),
    "register_taken_email": (register_taken_email, [FAILED] + [PASSED] * 5),
    "register_second_first_admin": (
        register_second_first_admin,
        [PASSED, FAILED] + [PASSED] * 5,
    ),
    # project create: puts of the project and membership, the user index's update.
    "create_project": (create_project, None),
    "create_project_of_unknown_user": (create_project_of_unknown_user, [PASSED, PASSED, FAILED]),
    # add_member: the project's check, the membership's put, the user index's update.
    "add_member": (add_member, None),
    "add_member_twice": (add_member_twice, [PASSED, FAILED, PASSED]),
    "add_member_to_deleted_project": (add_member_to_deleted_project, [FAILED, PASSED, PASSED]),
    # set_member_role: updates of the membership and the user index.
    "set_member_role": (set_member_role, None),
    "set_role_of_non_member": (set_role_of_non_member, [FAILED, PASSED]),
    # remove_member: the membership's delete, the user index's update.
    "remove_member": (remove_member, None),
    "remove_non_member": (remove_non_member, [FAILED, PASSED]),
    # project delete: the project's delete at its version, each member's index update.
    "delete_project": (delete_project, None),
    "delete_project_at_stale_version": (delete_project_at_stale_version, [FAILED, PASSED]),
    # task create: the project's check; puts of the task, [the graph,] [history]; [the
    # parent's update].
    "create_subtask_with_dependency_and_history": (
        create_subtask_with_dependency_and_history,
        None,
    ),
    "create_task_in_deleted_project": (create_task_in_deleted_project, [FAILED, PASSED, PASSED]),
    "create_subtask_of_deleted_parent": (
        create_subtask_of_deleted_parent,
        [PASSED, PASSED, FAILED],
    ),
    # task update: the project's check; puts of the graph and history; updates of the task at
    # its version, the old parent and the new one.
    "update_task_moving_and_closing_it": (update_task_moving_and_closing_it, None),
    "update_task_at_stale_version": (update_task_at_stale_version, [PASSED, FAILED]),
    # task delete: deletes of the task at its version and its subtasks; puts of the graph and
    # history; the dependents' updates.
    "delete_task_with_subtask_and_dependent": (delete_task_with_subtask_and_dependent, None),
    "delete_task_at_stale_version": (delete_task_at_stale_version, [FAILED, PASSED]),
    # comment: checks of the project and the task; puts of the comment and history.
    "comment": (comment, None),
    "comment_on_deleted_task": (comment_on_deleted_task, [PASSED, FAILED, PASSED]),
    # a project's item (templates, workflows, rules): the project's check; the item's put,
    # new or at its version.
    "create_template": (create_template, None),
    "create_template_in_deleted_project": (create_template_in_deleted_project, [FAILED, PASSED]),
    "update_template": (update_template, None),
    "update_template_at_stale_version": (update_template_at_stale_version, [PASSED, FAILED]),
    # execution create: the execution's put (new), its records' puts.
    "create_execution_with_history": (create_execution_with_history, None),
    "create_execution_twice": (create_execution_twice, [FAILED]),
    # a skipped firing's claim: the execution's put (new), its history event's put.
    "record_skipped_firing": (record_skipped_firing, None),
    "record_skipped_firing_again": (record_skipped_firing_again, [FAILED, PASSED]),
    # the active slot of a task's firing: the buffered slot's check (free), the active slot's
    # put (free or already the execution's).
    "take_active_slot": (take_active_slot, None),
    "take_active_slot_again": (take_active_slot_again, None),
    "take_active_slot_held_by_another": (take_active_slot_held_by_another, [PASSED, FAILED]),
    "take_active_slot_behind_a_waiting_one": (
        take_active_slot_behind_a_waiting_one,
        [FAILED, PASSED],
    ),
    "take_active_slot_held_with_one_waiting": (
        take_active_slot_held_with_one_waiting,
        [FAILED, FAILED],
    ),
    # promote_buffered: the buffered slot's delete (still the waiting one's), the active
    # slot's put (free).
    "promote_buffered": (promote_buffered, None),
    "promote_buffered_while_active_held": (promote_buffered_while_active_held, [PASSED, FAILED]),
    "promote_buffered_of_task_purged_meanwhile": (
        promote_buffered_of_task_purged_meanwhile,
        [FAILED, PASSED],
    ),
    "promote_buffered_promoted_by_another_meanwhile": (
        promote_buffered_promoted_by_another_meanwhile,
        [FAILED, FAILED],
    ),
    # execution update with records (_save_if): the execution's put at the version and status
    # read, its records' puts.
    "finish_execution_with_history": (finish_execution_with_history, None),
    "finish_execution_at_stale_version": (finish_execution_at_stale_version, [FAILED, PASSED]),
    "finish_execution_read_in_another_status": (
        finish_execution_read_in_another_status,
        [FAILED, PASSED],
    ),
    # a workflow's firing: puts of the firing's claim (new), [the active slot (free),] the run
    # (new).
    "fire_workflow": (fire_workflow, None),
    "fire_workflow_holding_its_slot": (fire_workflow_holding_its_slot, None),
    "fire_workflow_again": (fire_workflow_again, [FAILED, FAILED, PASSED]),
    "fire_workflow_while_its_slot_is_held": (
        fire_workflow_while_its_slot_is_held,
        [PASSED, FAILED, PASSED],
    ),
    "fire_workflow_into_an_existing_run": (fire_workflow_into_an_existing_run, [PASSED, FAILED]),
    # a run's round: puts of the run at its version, the started steps' executions (new),
    # their records.
    "advance_run": (advance_run, None),
    "advance_run_at_stale_version": (advance_run_at_stale_version, [FAILED, PASSED, PASSED]),
    "advance_run_starting_an_existing_execution": (
        advance_run_starting_an_existing_execution,
        [PASSED, FAILED, PASSED],
    ),
    # a calendar key: [the previous lookup's delete,] the new lookup's put (new), the user's
    # update at its version.
    "set_calendar_key": (set_calendar_key, None),
    "rotate_calendar_key": (rotate_calendar_key, None),
    "rotate_calendar_key_at_stale_version": (
        rotate_calendar_key_at_stale_version,
        [PASSED, PASSED, FAILED],
    ),
    "set_calendar_key_to_a_taken_lookup": (set_calendar_key_to_a_taken_lookup, [FAILED, PASSED]),
    # a due-date notification: checks of the project and the task (open, same due date); puts
    # of the claim (new) and the notification.
    "notify_due": (notify_due, None),
    "notify_due_again": (notify_due_again, [PASSED, PASSED, FAILED, PASSED]),
    "notify_due_of_task_completed_since": (
        notify_due_of_task_completed_since,
        [PASSED, FAILED, PASSED, PASSED],
    ),
    "notify_due_in_deleted_project": (
        notify_due_in_deleted_project,
        [FAILED, PASSED, PASSED, PASSED],
    ),
    # a workflow's update: the project's check; the workflow's update at its version.
    "update_workflow": (update_workflow, None),
    "update_workflow_at_stale_version": (update_workflow_at_stale_version, [PASSED, FAILED]),
    "update_workflow_in_deleted_project": (update_workflow_in_deleted_project, [FAILED, PASSED]),
    # an API token's creation: put of the token (new), update of its user's count (under the
    # cap); its deletion: delete of the token (there), update of the count (above 0).
    "create_api_token": (create_api_token, None),
    "create_api_token_over_the_cap": (create_api_token_over_the_cap, [PASSED, FAILED]),
    "delete_api_token": (delete_api_token, None),
    "delete_missing_api_token": (delete_missing_api_token, [FAILED, PASSED]),
    # under an idempotency claim: the same, and the claim's update (still ours, in progress).
    "create_task_under_claim": (create_task_under_claim, None),
    "create_task_under_lost_claim": (create_task_under_lost_claim, [PASSED, PASSED, FAILED]),
    # a workflow's manual run under a claim: the run's put (new), the claim's update.
    "start_workflow_run_under_claim": (start_workflow_run_under_claim, None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_stock_and_patched_moto_end_alike(differential: Differential, name: str) -> None:
    case, codes = CASES[name]
    case()
    differential.assert_alike()
    assert differential.runs[-1].codes == codes
