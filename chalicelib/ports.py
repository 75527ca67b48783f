"""The ports services depend on; adapters implement them, tests fake them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

# The domain's types are for annotations only: importing them all here would load every
# domain module (and define its pydantic models) wherever one port is needed.
if TYPE_CHECKING:
    from chalicelib.domain.activity import HistoryEvent, Notification, Record
    from chalicelib.domain.comments import Comment
    from chalicelib.domain.executions import Execution, Slot
    from chalicelib.domain.model import Page, PageRequest
    from chalicelib.domain.projects import Membership, Project, ProjectRole, ProjectWithRole
    from chalicelib.domain.realtime import Connection, Subscriber
    from chalicelib.domain.rules import Rule, RuleExecution, TriggerEvent
    from chalicelib.domain.schedules import Schedule, ScheduleTarget
    from chalicelib.domain.tasks import Priority, Status, Task
    from chalicelib.domain.templates import Template
    from chalicelib.domain.users import Session, User
    from chalicelib.domain.webhooks import WebhookRequest, WebhookResult
    from chalicelib.domain.workflow_runs import WorkflowRun
    from chalicelib.domain.workflows import Workflow


class Clock(Protocol):
    def now(self) -> datetime: ...


class Secrets(Protocol):
    def get(self, secret_id: str) -> str: ...


@dataclass(frozen=True)
class SigningKey:
    """One version of the JWT signing key: `kid` names it in token headers (never the key)."""

    kid: str
    secret: str = field(repr=False)


class SigningKeys(Protocol):
    """The JWT signing keys: the one to sign with, and the ones tokens may still carry."""

    def current(self) -> SigningKey: ...

    def find(self, kid: str) -> SigningKey | None:
        """The key named `kid` if it still verifies tokens (current or previous), else None."""
        ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class UserRepository(Protocol):
    def create_account(
        self,
        user: User,
        personal_project: Project,
        owner: Membership,
        session: Session,
        *,
        first_admin: bool,
        calendar_lookup: str | None = None,
    ) -> None:
        """Write the user, its email claim, personal project, membership and first session at once
        (and, with `calendar_lookup`, the lookup item of the user's calendar token).

        Raises `EmailTaken` if the email is claimed, `FirstAdminTaken` if `first_admin` was asked
        for but another account got there first. Nothing is written in either case.
        """
        ...

    def first_admin_exists(self) -> bool: ...

    def get(self, user_id: str) -> User | None: ...

    def get_by_email(self, email: str) -> User | None: ...

    def save(self, user: User) -> User:
        """Write `user` if the stored version is still `user.version`; return it with version + 1.

        Raises `StaleVersion` otherwise.
        """
        ...

    def list_by_email_prefix(self, prefix: str, page: PageRequest) -> Page[User]: ...


# An item a request will read first, named in domain terms: ("user", id), ("project", id),
# ("member", project_id, user_id), ... Fetched together with the caller's session.
PrefetchKey = tuple[str, ...]


class SessionRepository(Protocol):
    def create(self, session: Session) -> None: ...

    def get(self, session_id: str, prefetch: Sequence[PrefetchKey] = ()) -> Session | None:
        """The session; `prefetch` items come back in the same round trip for later reads."""
        ...

    def rotate(self, session_id: str, presented_jti: str, new_jti: str) -> bool:
        """Swap the session's refresh jti if `presented_jti` is still the current one.

        False (and nothing written) if it is not, or if the session is revoked or gone.
        """
        ...

    def revoke(self, session_id: str, at: datetime) -> None: ...

    def revoke_all_for_user(
        self, user_id: str, at: datetime, *, keep: str | None = None
    ) -> None: ...


@dataclass(frozen=True)
class LoginState:
    """What a login needs first, read in one round trip: who owns the email, and its failures."""

    user_id: str | None
    failures: list[datetime]  # oldest first


class LoginAttempts(Protocol):
    def lookup(self, email: str) -> LoginState: ...

    def record_failure(self, email: str, at: datetime, keep_since: datetime) -> None:
        """Add a failure; failures before `keep_since` may be dropped."""
        ...

    def clear(self, email: str) -> None: ...


class HealthProbe(Protocol):
    def check(self) -> dict[str, str]: ...


class Pusher(Protocol):
    def push(self, connection_id: str, message: dict[str, object]) -> bool:
        """Send one JSON frame; False if the connection is gone (API Gateway's 410)."""
        ...

    def push_many(self, connection_ids: Sequence[str], message: dict[str, object]) -> list[str]:
        """Send one frame to many connections side by side; the ids of those that are gone."""
        ...


class FanOut(Protocol):
    def dispatch(self, connection_ids: Sequence[str], frame: dict[str, Any]) -> None:
        """Have these connections pushed `frame` elsewhere (another invocation), not here."""
        ...


class ConnectionRepository(Protocol):
    """Open WebSocket connections and their channel subscriptions (expiring with them)."""

    def add(self, connection: Connection) -> None: ...

    def get(self, connection_id: str) -> Connection | None: ...

    def remove(self, connection_id: str) -> None:
        """Forget the connection and every subscription it holds (idempotent)."""
        ...

    def subscribe(self, connection: Connection, channel: str) -> bool:
        """Subscribe; False if the connection is gone (it must exist, conditionally)."""
        ...

    def unsubscribe(self, connection: Connection, channel: str) -> None: ...

    def subscribers(self, channel: str) -> list[Subscriber]: ...

    def connections_of(self, user_id: str) -> list[str]: ...


class ProjectRepository(Protocol):
    """Projects, their members, and each user's {project_id: role} index."""

    def create(self, project: Project, owner: Membership) -> None:
        """Write the project, the owner's membership and index entry in one transaction."""
        ...

    def get(self, project_id: str) -> Project | None: ...

    def save(self, project: Project) -> Project:
        """Conditional on `project.version`; returns it with version + 1, else `StaleVersion`."""
        ...

    def delete(self, project: Project) -> None:
        """Remove the project at once (conditional on its version; `StaleVersion` otherwise).

        Its tasks, memberships and index entries go afterwards (asynchronously); every read
        checks the project, so nothing of it is visible from the moment this returns.
        """
        ...

    def membership(self, project_id: str, user_id: str) -> Membership | None: ...

    def members(self, project_id: str, page: PageRequest) -> Page[Membership]: ...

    def add_member(self, membership: Membership) -> None:
        """Write the membership and the user's index entry in one transaction.

        `MemberExists` if the user is already a member; `NotFound` if the project is gone.
        """
        ...

    def set_member_role(self, membership: Membership) -> None:
        """Change the role of an existing member (`NotAMember` if there is none)."""
        ...

    def remove_member(self, project_id: str, user_id: str) -> None:
        """`NotAMember` if there is none."""
        ...

    def roles_of(self, user_id: str) -> dict[str, ProjectRole]:
        """The user's projects and roles (the index; may still name a just-deleted project)."""
        ...

    def get_many(self, project_ids: Sequence[str]) -> list[Project]:
        """The projects that exist among `project_ids`, in that order (one round trip)."""
        ...

    def list_for_user(self, user_id: str, page: PageRequest) -> Page[ProjectWithRole]:
        """One page of the user's projects in id order, with the user's role in each.

        Pages through the index by id and reads the page's projects in one round trip;
        projects deleted meanwhile are left out (a page may then hold fewer than `limit`).
        """
        ...


class Prefetcher(Protocol):
    def warm(self, keys: Sequence[PrefetchKey]) -> None:
        """Read these items in one round trip; the repositories' next `get`s take them."""
        ...


@dataclass(frozen=True)
class DependencyGraph:
    """A project's dependency edges {task_id: [ids it depends on]} and the version read."""

    project_id: str
    edges: Mapping[str, Sequence[str]]
    version: int = 0

    def dependents_of(self, task_id: str) -> list[str]:
        return sorted(t for t, deps in self.edges.items() if task_id in deps)


@dataclass(frozen=True)
class TaskQuery:
    """One page of `GET /tasks`. `project_ids` is the scope: one project, or (for
    `assignee_id=me` across projects) every project the caller belongs to."""

    project_ids: frozenset[str]
    page: PageRequest
    sort: str = "-created_at"
    across_projects_of_assignee: str | None = None
    statuses: frozenset[Status] = frozenset()
    priorities: frozenset[Priority] = frozenset()
    assignee_id: str | None = None
    tag: str | None = None
    parent_id: str | None = None
    due_after: datetime | None = None  # exclusive
    due_before: datetime | None = None  # exclusive
    no_due_date: bool = False


class TaskRepository(Protocol):
    def get(self, task_id: str) -> Task | None: ...

    def get_many(self, task_ids: Sequence[str]) -> dict[str, Task]: ...

    def graph(self, project_id: str) -> DependencyGraph: ...

    def create(
        self, task: Task, graph: DependencyGraph | None, records: Sequence[Record] = ()
    ) -> Task:
        """Write a new task, its parent's subtask sets and, when it has dependencies, the graph.

        `StaleVersion` if the graph changed since it was read; `NotFound` if the project or the
        parent vanished meanwhile.
        """
        ...

    def update(
        self,
        before: Task,
        after: Task,
        graph: DependencyGraph | None,
        records: Sequence[Record] = (),
    ) -> Task:
        """Write the changed fields of `after` if the task is still at `before.version`; keep
        parents' subtask sets and (when `graph` is given) the graph in step. Returns `after`
        with version + 1. `StaleVersion` on a lost race."""
        ...

    def delete(self, task: Task, graph: DependencyGraph, records: Sequence[Record] = ()) -> None:
        """Delete the task and its subtasks, and remove it from other tasks' `depends_on`.

        `records` (history events, notifications) are written in the same transaction."""
        ...

    def find(self, query: TaskQuery) -> Page[Task]: ...


class CalendarRepository(Protocol):
    """Calendar tokens' lookup items and the tasks a calendar feed shows (docs/data-model.md,
    "Calendar feeds"). The repository sees only lookups (SHA-256 of tokens), never a token."""

    def owner_of(self, lookup: str) -> str | None:
        """The id of the user whose current token has this lookup, or None (one read)."""
        ...

    def set_key(self, before: User, after: User, lookup: str, previous: str | None) -> User:
        """In one transaction: `after`'s `calendar_nonce` and `updated_at` on the user if it is
        still at `before.version` (returned with version + 1), the new lookup item (condition:
        new) and, if `previous`, the old lookup item's deletion. `StaleVersion` on a lost race;
        nothing is written then."""
        ...

    def assigned_with_due_date(self, user_id: str, due_from: datetime, limit: int) -> list[Task]:
        """The tasks assigned to the user (in any project, left or not) due at or after
        `due_from`, earliest first, at most `limit`: queries, never a scan."""
        ...

    def project_with_due_date(self, project_id: str, due_from: datetime, limit: int) -> list[Task]:
        """The project's tasks due at or after `due_from`, earliest first, at most `limit`."""
        ...


class WorkflowRepository(Protocol):
    """Workflows, one item each; every write is conditional (new id, or the version read)."""

    def get(self, workflow_id: str) -> Workflow | None: ...

    def create(self, workflow: Workflow) -> Workflow:
        """Write a new workflow. `NotFound` if its project is gone (checked in the same write)."""
        ...

    def update(self, before: Workflow, after: Workflow) -> Workflow:
        """Write the changed fields of `after` if the workflow is still at `before.version`;
        returns `after` with version + 1. `StaleVersion` on a lost race (or if it is gone),
        `NotFound` if its project is gone."""
        ...

    def delete(self, workflow: Workflow) -> None:
        """Delete it if it is still at `workflow.version`; `StaleVersion` otherwise."""
        ...

    def find(self, project_id: str, page: PageRequest) -> Page[Workflow]:
        """One page of a project's workflows, newest first."""
        ...

    def advance_next_run(
        self, workflow_id: str, fired_at: datetime, next_run_at: datetime | None
    ) -> bool:
        """After a firing at `fired_at`: set the workflow's `next_run_at` if it is still at or
        before `fired_at`, to the second (an edit meanwhile computed a newer one). A derived
        field: no new version. True if it was written."""
        ...


class WorkflowRunRepository(Protocol):
    """Runs of workflows, one item each (its steps inside); every write is conditional on the
    version read. A run's step executions live in the executions table."""

    def create(self, run: WorkflowRun) -> WorkflowRun:
        """Write a new run (condition: new id)."""
        ...

    def create_for_firing(
        self, firing_key: str, run: WorkflowRun, *, hold_slot: bool = False
    ) -> tuple[WorkflowRun, bool]:
        """Claim the firing (and, with `hold_slot`, the workflow's active slot) and write `run`
        in one transaction: `(run, True)`.

        If the firing is claimed already, nothing is written and the answer is the run the
        claim names: `(existing, False)`. If only the slot is held, nothing is written and
        `SlotTaken` is raised."""
        ...

    def slot_owner(self, workflow_id: str) -> str | None:
        """The id of the run holding the workflow's active slot, or None (a consistent read)."""
        ...

    def release_slot(self, workflow_id: str, run_id: str) -> bool:
        """Free the workflow's active slot if `run_id` holds it; True if it did."""
        ...

    def get(self, run_id: str) -> WorkflowRun | None:
        """A consistent read (a run's plan reads what the previous round wrote)."""
        ...

    def find_for_workflow(self, workflow_id: str, page: PageRequest) -> Page[WorkflowRun]:
        """One page of a workflow's runs, newest first."""
        ...

    def advance(
        self,
        before: WorkflowRun,
        after: WorkflowRun,
        executions: Sequence[Execution] = (),
        records: Sequence[Record] = (),
    ) -> WorkflowRun:
        """In one transaction: `after` if the run is still at `before.version` (returned with
        version + 1), the new step `executions` (condition: new) and `records`. `StaleVersion`
        on a lost race; at most 100 items in all."""
        ...


class SearchIndex(Protocol):
    def postings(self, project_id: str, terms: Sequence[str]) -> dict[str, dict[str, int] | None]:
        """{term: {task_id: weight}} for each term; None for a term too common to narrow."""
        ...

    def put(self, project_id: str, term: str, task_id: str, weight: int) -> None: ...

    def remove(self, project_id: str, term: str, task_id: str) -> None: ...


class CommentRepository(Protocol):
    def add(self, comment: Comment, records: Sequence[Record] = ()) -> Comment:
        """Write the comment and `records` (its history event, the mentions' notifications) in
        one transaction. `NotFound` if the task or its project is gone."""
        ...

    def get(self, task_id: str, comment_id: str) -> Comment | None: ...

    def find(self, task_id: str, page: PageRequest) -> Page[Comment]:
        """One page of a task's comments, oldest first."""
        ...

    def delete(self, comment: Comment) -> None:
        """`NotFound` if it is gone already."""
        ...


class HistoryRepository(Protocol):
    def find(self, task_id: str, page: PageRequest) -> Page[HistoryEvent]:
        """One page of a task's history, oldest first."""
        ...


class NotificationRepository(Protocol):
    """The notifications of each user. A notification is read when its own flag is set or when
    it is not newer than the user's "read up to" mark (moved by `mark_all_read`)."""

    def add(self, notifications: Sequence[Notification]) -> None: ...

    def find(
        self, user_id: str, page: PageRequest, *, unread_only: bool = False
    ) -> Page[Notification]:
        """One page of the user's notifications, newest first, with `read` resolved."""
        ...

    def mark_read(self, user_id: str, notification_id: str) -> bool:
        """False (and nothing written) if the user has no such notification."""
        ...

    def mark_all_read(self, user_id: str) -> None:
        """Every notification the user has now is read, in a bounded number of calls."""
        ...


class EmailDirectory(Protocol):
    def user_ids(self, emails: Sequence[str]) -> dict[str, str]:
        """{email: user id} of the (normalised) addresses that belong to an account."""
        ...


class Janitor(Protocol):
    """Removes what deleted things leave behind; idempotent (a stream batch may come twice)."""

    def purge_project(self, project_id: str) -> int: ...

    def purge_task(self, task_id: str) -> int: ...


class WebhookClient(Protocol):
    def deliver(self, request: WebhookRequest) -> WebhookResult:
        """Send one request; never raises for network trouble (the result's `error` says)."""
        ...


class ExecutionRepository(Protocol):
    """Executions of tasks; a firing `(task, scheduled time)` yields at most one of them."""

    def create(self, execution: Execution, records: Sequence[Record] = ()) -> Execution:
        """Write a new execution (and its history event) in one transaction."""
        ...

    def create_for_firing(
        self,
        execution: Execution,
        records: Sequence[Record] = (),
        slot: Slot | None = None,
        *,
        waiting_first: bool = True,
    ) -> tuple[Execution, bool]:
        """Claim the firing `execution.id` names (`firing_execution_id`) by writing it, after
        taking `slot` of the task if given: `(execution, True)`.

        If the execution exists already (a repeated delivery), nothing new is written and the
        answer is the stored one: `(existing, False)`. If the slot is held by another execution
        (or, for the active slot with `waiting_first`, an execution waits in the buffered one),
        nothing is written and `SlotTaken` is raised. A slot taken without its execution (the
        writer died between the two) is the execution's still: a repeated delivery finds it
        its own; the others see a holder that does not exist (`OverlapSlots.clear_stale`).
        """
        ...

    def slot_owner(self, task_id: str, slot: Slot) -> str | None:
        """The id of the execution holding the task's `slot`, or None (a consistent read)."""
        ...

    def slot_holder(self, task_id: str, slot: Slot) -> tuple[str, datetime] | None:
        """The execution holding the task's `slot` and when it took it, or None."""
        ...

    def release_slot(self, task_id: str, execution_id: str) -> bool:
        """Free the task's active slot if `execution_id` holds it; True if it did."""
        ...

    def promote_buffered(self, task_id: str) -> str | None:
        """Move the buffered execution (if any) into the free active slot, in one transaction;
        its id, or None if nothing waits or the active slot is held."""
        ...

    def get(self, execution_id: str) -> Execution | None: ...

    def get_many(self, execution_ids: Sequence[str]) -> dict[str, Execution]:
        """The executions that exist among `execution_ids`, by id (consistent reads)."""
        ...

    def find_for_task(self, task_id: str, page: PageRequest) -> Page[Execution]:
        """One page of a task's executions, newest first."""
        ...

    def find_expired_leases(self, before: datetime, limit: int) -> list[Execution]:
        """Up to `limit` executions whose lease ended before `before` (their holder is gone)."""
        ...

    def update(
        self, before: Execution, after: Execution, records: Sequence[Record] = ()
    ) -> Execution:
        """Write `after` if the stored execution is still `before` (its version and status);
        returns it with version + 1. `StaleVersion` otherwise (a finished one never changes)."""
        ...


class ExecutionRunner(Protocol):
    """The run state machine: workflow runs, and the attempts of an execution that must wait."""

    def start(self, execution: Execution, delay_seconds: int = 0) -> None:
        """Hand an execution over to the state machine, which makes its next attempt
        (`attempts + 1`) after `delay_seconds`. Idempotent on `execution.run_name`: handing
        the same execution over twice runs it once."""
        ...

    def start_workflow_run(self, run: WorkflowRun) -> None:
        """Start running a workflow run; idempotent on the run's id."""
        ...

    def stop_workflow_run(self, run: WorkflowRun) -> None:
        """Stop a workflow run's state machine execution (gone or finished already: fine)."""
        ...


class AttemptDispatcher(Protocol):
    """Makes the first attempt of a queued execution soon, elsewhere: an asynchronous
    invocation of the `fire` function, so the caller (an HTTP request) need not wait for the
    webhook. Delivery is at least once; the receiver takes the execution's lease."""

    def dispatch(self, execution: Execution) -> None: ...


class Scheduler(Protocol):
    """One EventBridge Scheduler schedule per scheduled task or workflow, named after it
    (`kind` says which: ids of the two never collide, but their schedules' names and firings
    differ)."""

    def put(
        self,
        target_id: str,
        schedule: Schedule,
        payload: dict[str, Any],
        *,
        kind: ScheduleTarget = ...,  # the implementations default to ScheduleTarget.TASK
    ) -> None:
        """Create the task's (or workflow's) schedule, or update it if it exists (idempotent).
        `payload` is what each firing hands the target, beside the scheduler's context
        attributes."""
        ...

    def delete(self, target_id: str, *, kind: ScheduleTarget = ...) -> None:
        """Remove the task's (or workflow's) schedule; one that is gone already is fine."""
        ...


@dataclass(frozen=True)
class DueTaskRef:
    """An open task with a due date, as the due-date sweep's index gives it (keys only)."""

    task_id: str
    due_date: datetime


class DueSweepRepository(Protocol):
    """What the due-date sweep reads and writes: open tasks by due date across every project,
    and notifications written once per claim (see `services/sweep.py`)."""

    def due_between(self, start: datetime, end: datetime) -> list[DueTaskRef]:
        """Every open task (not completed or cancelled) whose due date is within [start, end],
        earliest first, whatever its project; no Scan."""
        ...

    def claimed(self, claims: Sequence[str]) -> set[str]:
        """Those of `claims` (at most 100: one batch read) that exist already; a cheap
        filter, `notify_once` decides."""
        ...

    def tasks(self, task_ids: Sequence[str]) -> dict[str, Task]:
        """The tasks (at most 100: one batch read) as they are now, read consistently;
        missing ones are left out."""
        ...

    def notify_once(
        self, claim: str, task: Task, notification: Notification, expires_at: datetime
    ) -> bool:
        """Write, in one transaction, the claim (condition: new; it expires at `expires_at`)
        and the notification, provided the task is still open with the same due date and its
        project exists. False, with nothing written, when the claim exists or the task or its
        project changed."""
        ...


class TemplateRepository(Protocol):
    """Task templates, one item each; every write is conditional (new id, or the version read)."""

    def get(self, template_id: str) -> Template | None: ...

    def create(self, template: Template) -> Template:
        """Write a new template. `NotFound` if its project is gone (checked in the same write)."""
        ...

    def update(self, before: Template, after: Template) -> Template:
        """Write `after` if the template is still at `before.version`; returns it with version
        + 1. `StaleVersion` on a lost race (or if it is gone), `NotFound` if its project is gone."""
        ...

    def delete(self, template: Template) -> None:
        """Delete it if it is still at `template.version`; `StaleVersion` otherwise."""
        ...

    def find(self, project_id: str, page: PageRequest) -> Page[Template]:
        """One page of a project's templates, newest first."""
        ...

    def purge_project(self, project_id: str) -> int:
        """Delete every template of a deleted project (idempotent); how many went."""
        ...


class RuleRepository(Protocol):
    """Automation rules, one item each; every write is conditional (new id, or the version
    read). The enabled rules of a project for one event are one query on a key."""

    def get(self, rule_id: str) -> Rule | None: ...

    def create(self, rule: Rule) -> Rule:
        """Write a new rule. `NotFound` if its project is gone (checked in the same write)."""
        ...

    def update(self, before: Rule, after: Rule) -> Rule:
        """Write `after` if the rule is still at `before.version`; returns it with version + 1.
        `StaleVersion` on a lost race (or if it is gone), `NotFound` if its project is gone."""
        ...

    def delete(self, rule: Rule) -> None:
        """Delete it if it is still at `rule.version`; `StaleVersion` otherwise."""
        ...

    def find(self, project_id: str, page: PageRequest) -> Page[Rule]:
        """One page of a project's rules, newest first."""
        ...

    def enabled_for(self, project_id: str, event: TriggerEvent) -> list[Rule]:
        """The project's enabled rules whose trigger is `event`, oldest first."""
        ...

    def purge_project(self, project_id: str) -> int:
        """Delete every rule of a deleted project, with its execution log (idempotent)."""
        ...


class RuleExecutionRepository(Protocol):
    """What rules did: one claim per (rule, event), and each rule's execution log."""

    def claim(self, rule_id: str, event_key: str, execution_id: str, at: datetime) -> bool:
        """Claim the event for the rule (a conditional put that expires in time): True if this
        call claimed it, False if it was claimed already (a repeated delivery)."""
        ...

    def add(self, execution: RuleExecution) -> None: ...

    def find(self, rule_id: str, page: PageRequest) -> Page[RuleExecution]:
        """One page of a rule's executions, newest first."""
        ...
