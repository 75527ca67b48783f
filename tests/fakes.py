"""In-memory implementations of the ports, for unit tests of services.

The repository contract suite (tests/integration/test_repository_contract.py) runs the same
tests against these and the DynamoDB adapters, so the fakes cannot drift from the real thing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.adapters.passwords import Argon2PasswordHasher
from chalicelib.domain.activity import HistoryEvent, Notification, Record
from chalicelib.domain.api_tokens import ApiToken, user_of
from chalicelib.domain.comments import Comment
from chalicelib.domain.cursors import decode_cursor, encode_cursor
from chalicelib.domain.errors import (
    EmailTaken,
    FirstAdminTaken,
    MemberExists,
    NotAMember,
    NotFound,
    StaleVersion,
    TooManyTokens,
)
from chalicelib.domain.event_log import next_position, parse_event_id
from chalicelib.domain.executions import Execution, Slot, SlotTaken
from chalicelib.domain.idempotency import ClaimLost, IdempotencyRecord
from chalicelib.domain.idempotency import State as IdempotencyState
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.projects import Membership, Project, ProjectRole, ProjectWithRole
from chalicelib.domain.realtime import Connection, Event, Subscriber
from chalicelib.domain.schedules import Schedule, ScheduleTarget
from chalicelib.domain.tasks import Task
from chalicelib.domain.users import Session, User
from chalicelib.domain.webhooks import WebhookRequest, WebhookResult
from chalicelib.domain.workflow_runs import WorkflowRun, check_advance
from chalicelib.domain.workflows import Workflow
from chalicelib.ports import (
    Clock,
    DependencyGraph,
    DueTaskRef,
    LoginState,
    PrefetchKey,
    SigningKey,
    TaskQuery,
)

if TYPE_CHECKING:
    from chalicelib.settings import Settings


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


class FakeSigningKeys:
    """JWT signing keys in memory: `rotate()` does what a Secrets Manager rotation does (the
    current key becomes the previous one, the one before that stops verifying)."""

    def __init__(self, secret: str = "unit-test-signing-key-that-is-long-enough-for-hs256") -> None:
        self.versions = 1
        self._current = SigningKey(kid="v1", secret=secret)
        self._previous: SigningKey | None = None
        self.lookups: list[str] = []

    def current(self) -> SigningKey:
        return self._current

    def find(self, kid: str) -> SigningKey | None:
        self.lookups.append(kid)
        return next((k for k in (self._current, self._previous) if k and k.kid == kid), None)

    def rotate(self) -> SigningKey:
        self.versions += 1
        self._previous = self._current
        self._current = SigningKey(kid=f"v{self.versions}", secret=f"{self._current.secret}+")
        return self._current


def fast_hasher() -> Argon2PasswordHasher:
    """Real argon2id with tiny costs: tests stay fast and still exercise the real library."""
    return Argon2PasswordHasher(time_cost=1, memory_cost_kib=8, parallelism=1)


class InMemoryProjectRepository:
    def __init__(self) -> None:
        self.projects: dict[str, Project] = {}
        self.memberships: dict[tuple[str, str], Membership] = {}
        self._lock = threading.Lock()

    def create(self, project: Project, owner: Membership) -> None:
        with self._lock:
            self.projects[project.id] = project
            self.memberships[(project.id, owner.user_id)] = owner

    def get(self, project_id: str) -> Project | None:
        return self.projects.get(project_id)

    def save(self, project: Project) -> Project:
        with self._lock:
            stored = self.projects.get(project.id)
            if stored is None or stored.version != project.version:
                raise StaleVersion(project.id)
            saved = replace(project, version=project.version + 1)
            self.projects[project.id] = saved
            return saved

    def delete(self, project: Project) -> None:
        # Like DynamoDB: the project goes at once, its memberships when `purge_project` runs.
        with self._lock:
            stored = self.projects.get(project.id)
            if stored is None or stored.version != project.version:
                raise StaleVersion(project.id)
            del self.projects[project.id]

    def purge_project(self, project_id: str) -> int:
        with self._lock:
            if project_id in self.projects:
                raise ValueError(f"project {project_id} still exists; refusing to purge it")
            doomed = [k for k in self.memberships if k[0] == project_id]
            for key in doomed:
                del self.memberships[key]
            return len(doomed)

    def membership(self, project_id: str, user_id: str) -> Membership | None:
        return self.memberships.get((project_id, user_id))

    def members(self, project_id: str, page: PageRequest) -> Page[Membership]:
        scope = f"members:{project_id}"
        start = decode_cursor(page.cursor, scope)
        after = start["user_id"] if start else ""
        rows = sorted(
            (m for (p, u), m in self.memberships.items() if p == project_id and u > after),
            key=lambda m: m.user_id,
        )
        items = rows[: page.limit]
        more = len(rows) > page.limit
        cursor = encode_cursor({"user_id": items[-1].user_id}, scope) if more else None
        return Page(items=items, next_cursor=cursor)

    def add_member(self, membership: Membership) -> None:
        with self._lock:
            key = (membership.project_id, membership.user_id)
            if membership.project_id not in self.projects:
                raise NotFound("project not found")
            if key in self.memberships:
                raise MemberExists(membership.user_id)
            self.memberships[key] = membership

    def set_member_role(self, membership: Membership) -> None:
        with self._lock:
            key = (membership.project_id, membership.user_id)
            if key not in self.memberships:
                raise NotAMember(membership.user_id)
            self.memberships[key] = replace(self.memberships[key], role=membership.role)

    def remove_member(self, project_id: str, user_id: str) -> None:
        with self._lock:
            if self.memberships.pop((project_id, user_id), None) is None:
                raise NotAMember(user_id)

    def roles_of(self, user_id: str) -> dict[str, ProjectRole]:
        # Deleting a project drops it from its members' index at once (memberships go later).
        return {
            p: m.role
            for (p, u), m in self.memberships.items()
            if u == user_id and p in self.projects
        }

    def get_many(self, project_ids: Sequence[str]) -> list[Project]:
        return [self.projects[p] for p in dict.fromkeys(project_ids) if p in self.projects]

    def list_for_user(self, user_id: str, page: PageRequest) -> Page[ProjectWithRole]:
        scope = f"projects-of:{user_id}"
        start = decode_cursor(page.cursor, scope)
        after = str(start.get("id", "")) if start else ""
        roles = self.roles_of(user_id)
        ids = sorted(p for p in roles if p > after)
        chunk, more = ids[: page.limit], len(ids) > page.limit
        items = [ProjectWithRole(p, roles[p.id]) for p in self.get_many(chunk)]
        cursor = encode_cursor({"id": chunk[-1]}, scope) if more else None
        return Page(items=items, next_cursor=cursor)


class InMemoryUserRepository:
    def __init__(
        self, sessions: InMemorySessionRepository, projects: InMemoryProjectRepository | None = None
    ) -> None:
        self.sessions = sessions
        self.project_repo = projects or InMemoryProjectRepository()
        self.users: dict[str, User] = {}
        self.claims: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def projects(self) -> dict[str, Project]:
        return self.project_repo.projects

    @property
    def memberships(self) -> dict[tuple[str, str], Membership]:
        return self.project_repo.memberships

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
        with self._lock:
            if f"email#{user.email}" in self.claims:
                raise EmailTaken(user.email)
            if first_admin and "system#first-admin" in self.claims:
                raise FirstAdminTaken()
            self.claims[f"email#{user.email}"] = user.id
            if first_admin:
                self.claims["system#first-admin"] = user.id
            if calendar_lookup is not None:
                self.claims[f"calendar#{calendar_lookup}"] = user.id
            self.users[user.id] = user
            self.project_repo.create(personal_project, owner)
            self.sessions.create(session)

    def first_admin_exists(self) -> bool:
        return "system#first-admin" in self.claims

    def get(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    def get_by_email(self, email: str) -> User | None:
        user_id = self.claims.get(f"email#{email}")
        return self.users.get(user_id) if user_id else None

    def save(self, user: User) -> User:
        with self._lock:
            stored = self.users.get(user.id)
            if stored is None or stored.version != user.version:
                raise StaleVersion(user.id)
            saved = user.with_changes(version=user.version + 1)
            self.users[user.id] = saved
            return saved

    def list_by_email_prefix(self, prefix: str, page: PageRequest) -> Page[User]:
        scope = f"users?q={prefix}"
        start = decode_cursor(page.cursor, scope)
        after = start["email"] if start else None
        matches = sorted(
            (u for u in self.users.values() if u.email.startswith(prefix)), key=lambda u: u.email
        )
        if after is not None:
            matches = [u for u in matches if u.email > after]
        items = matches[: page.limit]
        more = len(matches) > page.limit
        cursor = encode_cursor({"email": items[-1].email}, scope) if more else None
        return Page(items=items, next_cursor=cursor)


class InMemorySessionRepository:
    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, session: Session) -> None:
        self.sessions[session.id] = session

    def get(self, session_id: str, prefetch: Sequence[PrefetchKey] = ()) -> Session | None:
        return self.sessions.get(session_id)

    def rotate(self, session_id: str, presented_jti: str, new_jti: str) -> bool:
        with self._lock:
            session = self.sessions.get(session_id)
            if session is None or not session.active or session.refresh_jti != presented_jti:
                return False
            self.sessions[session_id] = replace(session, refresh_jti=new_jti)
            return True

    def revoke(self, session_id: str, at: datetime) -> None:
        session = self.sessions.get(session_id)
        if session is not None and session.active:
            self.sessions[session_id] = replace(session, revoked_at=at)

    def revoke_all_for_user(self, user_id: str, at: datetime, *, keep: str | None = None) -> None:
        for session in list(self.sessions.values()):
            if session.user_id == user_id and session.id != keep:
                self.revoke(session.id, at)


class InMemoryLoginAttempts:
    def __init__(self, users: InMemoryUserRepository) -> None:
        self.users = users
        self.failures: dict[str, list[datetime]] = {}

    def lookup(self, email: str) -> LoginState:
        return LoginState(
            user_id=self.users.claims.get(f"email#{email}"),
            failures=sorted(self.failures.get(email, [])),
        )

    def record_failure(self, email: str, at: datetime, keep_since: datetime) -> None:
        kept = [t for t in self.failures.get(email, []) if t >= keep_since]
        self.failures[email] = [*kept, at]

    def clear(self, email: str) -> None:
        self.failures.pop(email, None)


class InMemoryApiTokenRepository:
    """API tokens in memory, with the DynamoDB adapter's cap and conditions."""

    def __init__(self, users: InMemoryUserRepository) -> None:
        self.users = users
        self.tokens: dict[str, ApiToken] = {}
        self.touches = 0  # conditional writes of last_used_at that changed something
        self._lock = threading.Lock()

    def create(self, token: ApiToken, max_per_user: int) -> None:
        with self._lock:
            held = sum(1 for t in self.tokens.values() if t.user_id == token.user_id)
            if held >= max_per_user:
                raise TooManyTokens(token.user_id)
            self.tokens[token.id] = token

    def lookup(
        self, token_id: str, user_id: str, prefetch: Sequence[PrefetchKey] = ()
    ) -> tuple[ApiToken | None, User | None]:
        if user_of(token_id) != user_id:
            return None, None
        return self.tokens.get(token_id), self.users.get(user_id)

    def get(self, token_id: str) -> ApiToken | None:
        return self.tokens.get(token_id)

    def list_for_user(self, user_id: str, page: PageRequest) -> Page[ApiToken]:
        scope = f"api-tokens:{user_id}"
        start = decode_cursor(page.cursor, scope)
        mine = sorted(
            (t for t in self.tokens.values() if t.user_id == user_id),
            key=lambda t: t.id,
            reverse=True,
        )
        if start is not None:
            mine = [t for t in mine if t.id < start["id"]]
        items = mine[: page.limit]
        more = len(mine) > page.limit
        return Page(items, encode_cursor({"id": items[-1].id}, scope) if more else None)

    def delete(self, token_id: str) -> bool:
        with self._lock:
            return self.tokens.pop(token_id, None) is not None

    def touch(self, token_id: str, minute: datetime) -> None:
        with self._lock:
            token = self.tokens.get(token_id)
            if token is None or (token.last_used_at is not None and token.last_used_at >= minute):
                return
            self.tokens[token_id] = token.with_changes(last_used_at=minute)
            self.touches += 1


class NoPrefetch:
    """In memory every read is free: warming is a no-op."""

    def warm(self, keys: Sequence[PrefetchKey]) -> None:
        return None


def _at_or_before_second(next_run_at: datetime | None, fired_at: datetime) -> bool:
    """`advance_next_run`'s condition, as DynamoDB's (adapters/dynamodb/next_runs.py): a
    stored value within `fired_at`'s second counts as at it."""
    next_second = fired_at.replace(microsecond=0) + timedelta(seconds=1)
    return next_run_at is not None and next_run_at < next_second


def _sort_key(task: Task, field: str) -> tuple[Any, ...]:
    if field == "due_date":
        return (task.due_date is None, task.due_date or datetime.min.replace(tzinfo=UTC), task.id)
    if field == "priority":
        return (task.priority.rank, task.id)
    if field == "status":
        return (task.status.rank, task.id)
    return (task.id,)


class InMemoryTaskRepository:
    """The task repository's semantics without DynamoDB (checked by the contract suite)."""

    def __init__(self, projects: InMemoryProjectRepository) -> None:
        self.projects = projects
        self.tasks: dict[str, Task] = {}
        self.graphs: dict[str, DependencyGraph] = {}
        self.records: list[Record] = []
        self._lock = threading.Lock()

    def get(self, task_id: str) -> Task | None:
        return self.tasks.get(task_id)

    def get_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        return {t: self.tasks[t] for t in task_ids if t in self.tasks}

    def graph(self, project_id: str) -> DependencyGraph:
        return self.graphs.get(project_id, DependencyGraph(project_id, {}, 0))

    def _write_graph(self, graph: DependencyGraph, edges: dict[str, list[str]]) -> None:
        if self.graph(graph.project_id).version != graph.version:
            raise StaleVersion("graph")
        self.graphs[graph.project_id] = DependencyGraph(graph.project_id, edges, graph.version + 1)

    def _parents(self, before: Task | None, after: Task | None) -> None:
        task_id = (after or before).id  # type: ignore[union-attr]
        old = before.parent_id if before else None
        new = after.parent_id if after else None
        is_open = after is not None and not after.status.closed
        if old and old != new and old in self.tasks:
            parent = self.tasks[old]
            self.tasks[old] = replace(
                parent,
                subtask_ids=tuple(s for s in parent.subtask_ids if s != task_id),
                open_subtask_ids=tuple(s for s in parent.open_subtask_ids if s != task_id),
            )
        if new:
            parent = self.tasks[new]
            subs = set(parent.subtask_ids) | {task_id}
            opens = set(parent.open_subtask_ids) - {task_id}
            if is_open:
                opens.add(task_id)
            self.tasks[new] = replace(
                parent, subtask_ids=tuple(sorted(subs)), open_subtask_ids=tuple(sorted(opens))
            )

    def _check(self, task: Task) -> None:
        if task.project_id not in self.projects.projects:
            raise NotFound("project not found")
        if task.parent_id and task.parent_id not in self.tasks:
            raise NotFound("parent task not found")

    def create(
        self, task: Task, graph: DependencyGraph | None, records: Sequence[Record] = ()
    ) -> Task:
        with self._lock:
            self.records += records
            self._check(task)
            if graph is not None:
                self._write_graph(graph, {**graph.edges, task.id: list(task.depends_on)})  # type: ignore[dict-item]
            self.tasks[task.id] = task
            self._parents(None, task)
            return task

    def update(
        self,
        before: Task,
        after: Task,
        graph: DependencyGraph | None,
        records: Sequence[Record] = (),
    ) -> Task:
        with self._lock:
            self._check(after)
            stored = self.tasks.get(before.id)
            if stored is None or stored.version != before.version:
                raise StaleVersion(before.id)
            self.records += records
            if graph is not None:
                edges = {k: list(v) for k, v in graph.edges.items()}
                if after.depends_on:
                    edges[after.id] = list(after.depends_on)
                else:
                    edges.pop(after.id, None)
                self._write_graph(graph, edges)
            saved = after.with_changes(
                version=before.version + 1,
                subtask_ids=stored.subtask_ids,
                open_subtask_ids=stored.open_subtask_ids,
            )
            self.tasks[after.id] = saved
            self._parents(before, after)
            return saved

    def delete(self, task: Task, graph: DependencyGraph, records: Sequence[Record] = ()) -> None:
        with self._lock:
            stored = self.tasks.get(task.id)
            if stored is None or stored.version != task.version:
                raise StaleVersion(task.id)
            self.records += records
            doomed = {task.id, *stored.subtask_ids}
            for task_id in doomed:
                self.tasks.pop(task_id, None)
            self._parents(stored, None)
            for other_id, other in list(self.tasks.items()):
                if set(other.depends_on) & doomed:
                    self.tasks[other_id] = replace(
                        other, depends_on=tuple(d for d in other.depends_on if d not in doomed)
                    )
            edges = {
                t: [d for d in deps if d not in doomed]
                for t, deps in graph.edges.items()
                if t not in doomed
            }
            self._write_graph(graph, {t: d for t, d in edges.items() if d})

    def find(self, query: TaskQuery) -> Page[Task]:
        def matches(task: Task) -> bool:
            if task.project_id not in query.project_ids:
                return False
            if (
                query.across_projects_of_assignee
                and task.assignee_id != query.across_projects_of_assignee
            ):
                return False
            if query.statuses and task.status not in query.statuses:
                return False
            if query.priorities and task.priority not in query.priorities:
                return False
            if query.assignee_id and task.assignee_id != query.assignee_id:
                return False
            if query.tag and query.tag not in task.tags:
                return False
            if query.parent_id and task.parent_id != query.parent_id:
                return False
            if query.no_due_date and task.due_date is not None:
                return False
            if query.due_after is not None and not (
                task.due_date and task.due_date > query.due_after
            ):
                return False
            return query.due_before is None or bool(
                task.due_date and task.due_date < query.due_before
            )

        field = query.sort.lstrip("-")
        descending = query.sort.startswith("-")
        rows = sorted(
            (t for t in self.tasks.values() if matches(t)), key=lambda t: _sort_key(t, field)
        )
        if descending:
            rows.reverse()
            if field == "due_date":  # undated tasks last in both directions
                rows = [t for t in rows if t.due_date] + [t for t in rows if not t.due_date]
        scope = f"tasks:{replace(query, page=PageRequest())}"
        start = decode_cursor(query.page.cursor, scope)
        if start:
            ids = [t.id for t in rows]
            rows = rows[ids.index(start["after"]) + 1 :] if start["after"] in ids else []
        items = rows[: query.page.limit]
        more = len(rows) > query.page.limit
        cursor = encode_cursor({"after": items[-1].id}, scope) if more else None
        return Page(items=items, next_cursor=cursor)


class InMemorySearchIndex:
    def __init__(self) -> None:
        self.terms: dict[tuple[str, str], dict[str, int]] = {}
        self.stop_words: set[tuple[str, str]] = set()

    def postings(self, project_id: str, terms: Sequence[str]) -> dict[str, dict[str, int] | None]:
        return {
            term: None
            if (project_id, term) in self.stop_words
            else dict(self.terms.get((project_id, term), {}))
            for term in terms
        }

    def put(self, project_id: str, term: str, task_id: str, weight: int) -> None:
        if (project_id, term) not in self.stop_words:
            self.terms.setdefault((project_id, term), {})[task_id] = weight

    def remove(self, project_id: str, term: str, task_id: str) -> None:
        self.terms.get((project_id, term), {}).pop(task_id, None)


# ---- comments, history, notifications -----------------------------------------------------------
# One `records` list stands for the history and notification tables: pass the task fake's
# `records`, and what task changes write shows up in history and notifications as on DynamoDB.


def _page_after(
    rows: list[Any], page: PageRequest, scope: str, id_of: Any = lambda row: row.id
) -> Page[Any]:
    start = decode_cursor(page.cursor, scope)
    if start:
        ids = [id_of(row) for row in rows]
        rows = rows[ids.index(start["after"]) + 1 :] if start["after"] in ids else []
    items = rows[: page.limit]
    more = len(rows) > page.limit
    return Page(
        items=items, next_cursor=encode_cursor({"after": id_of(items[-1])}, scope) if more else None
    )


class TaskStore(Protocol):
    """What the comment fake needs of the task fake (`InMemoryTaskRepository`)."""

    tasks: dict[str, Task]
    projects: InMemoryProjectRepository
    records: list[Record]


class InMemoryCommentRepository:
    def __init__(self, tasks: TaskStore) -> None:
        self.tasks = tasks
        self.comments: dict[tuple[str, str], Comment] = {}
        self._lock = threading.Lock()

    def add(self, comment: Comment, records: Sequence[Record] = ()) -> Comment:
        with self._lock:
            task = self.tasks.tasks.get(comment.task_id)
            if task is None or task.project_id not in self.tasks.projects.projects:
                raise NotFound("task not found")
            self.comments[(comment.task_id, comment.id)] = comment
            self.tasks.records += records
            return comment

    def get(self, task_id: str, comment_id: str) -> Comment | None:
        return self.comments.get((task_id, comment_id))

    def find(self, task_id: str, page: PageRequest) -> Page[Comment]:
        rows = sorted(
            (c for (t, _), c in self.comments.items() if t == task_id), key=lambda c: c.id
        )
        return _page_after(rows, page, f"comments:{task_id}")

    def delete(self, comment: Comment) -> None:
        with self._lock:
            if self.comments.pop((comment.task_id, comment.id), None) is None:
                raise NotFound("comment not found")


class InMemoryHistoryRepository:
    def __init__(self, records: list[Record]) -> None:
        self.records = records

    def find(self, task_id: str, page: PageRequest) -> Page[HistoryEvent]:
        rows = sorted(
            (r for r in self.records if isinstance(r, HistoryEvent) and r.task_id == task_id),
            key=lambda r: r.id,
        )
        return _page_after(rows, page, f"history:{task_id}")


class InMemoryNotificationRepository:
    def __init__(self, records: list[Record] | None = None) -> None:
        self.records: list[Record] = records if records is not None else []
        self.read_before: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, notifications: Sequence[Notification]) -> None:
        with self._lock:
            self.records += notifications

    def _resolved(self, notification: Notification) -> Notification:
        mark = self.read_before.get(notification.user_id)
        if notification.read or mark is None or notification.id > mark:
            return notification
        return replace(notification, read=True)

    def find(
        self, user_id: str, page: PageRequest, *, unread_only: bool = False
    ) -> Page[Notification]:
        rows = [
            self._resolved(r)
            for r in self.records
            if isinstance(r, Notification) and r.user_id == user_id
        ]
        rows = sorted((r for r in rows if not (unread_only and r.read)), key=lambda r: r.id)
        rows.reverse()
        return _page_after(rows, page, f"notifications:{user_id}:{unread_only}")

    def mark_read(self, user_id: str, notification_id: str) -> bool:
        with self._lock:
            for index, record in enumerate(self.records):
                if isinstance(record, Notification) and (record.user_id, record.id) == (
                    user_id,
                    notification_id,
                ):
                    self.records[index] = replace(record, read=True)
                    return True
            return False

    def mark_all_read(self, user_id: str) -> None:
        with self._lock:
            ids = [
                r.id for r in self.records if isinstance(r, Notification) and r.user_id == user_id
            ]
            if ids and max(ids) > self.read_before.get(user_id, ""):
                self.read_before[user_id] = max(ids)


class InMemoryEmailDirectory:
    def __init__(self, users: InMemoryUserRepository) -> None:
        self.users = users

    def user_ids(self, emails: Sequence[str]) -> dict[str, str]:
        claims = self.users.claims
        return {e: claims[f"email#{e}"] for e in dict.fromkeys(emails) if f"email#{e}" in claims}


def refuse_internal_urls(url: str) -> None:
    """Stands in for the DNS check of webhook targets: `*.internal.test` is a private address."""
    from urllib.parse import urlsplit

    from chalicelib.domain.errors import validation_error

    if (urlsplit(url).hostname or "").endswith("internal.test"):
        raise validation_error(["body", "action", "url"], "the URL resolves to a private address")


class FakeScheduler:
    """The `Scheduler` port in memory: the schedules by task (or workflow) id, what kind of
    target each is, and every call made."""

    def __init__(self) -> None:
        self.schedules: dict[str, tuple[Schedule, dict[str, Any]]] = {}
        self.kinds: dict[str, ScheduleTarget] = {}
        self.calls: list[tuple[str, str]] = []

    def put(
        self,
        target_id: str,
        schedule: Schedule,
        payload: dict[str, Any],
        *,
        kind: ScheduleTarget = ScheduleTarget.TASK,
    ) -> None:
        self.calls.append(("put", target_id))
        self.schedules[target_id] = (schedule, dict(payload))
        self.kinds[target_id] = kind

    def delete(self, target_id: str, *, kind: ScheduleTarget = ScheduleTarget.TASK) -> None:
        self.calls.append(("delete", target_id))
        if self.kinds.get(target_id, kind) is kind:
            self.schedules.pop(target_id, None)
            self.kinds.pop(target_id, None)


class InMemoryExecutionRepository:
    """Executions and firing claims in memory (checked against DynamoDB by the contract suite)."""

    def __init__(self, records: list[Record] | None = None) -> None:
        self.executions: dict[str, Execution] = {}
        self.firings: dict[str, str] = {}  # firing key -> execution id
        self.slots: dict[tuple[str, Slot], str] = {}  # (task id, slot) -> execution id
        self.slot_times: dict[tuple[str, Slot], datetime] = {}  # when each slot was taken
        self.records: list[Record] = records if records is not None else []
        self._lock = threading.Lock()

    def create(self, execution: Execution, records: Sequence[Record] = ()) -> Execution:
        with self._lock:
            if execution.id in self.executions:
                raise ValueError(f"execution {execution.id} exists")
            self.executions[execution.id] = execution
            self.records += records
            return execution

    def create_for_firing(
        self,
        execution: Execution,
        records: Sequence[Record] = (),
        slot: Slot | None = None,
        *,
        waiting_first: bool = True,
    ) -> tuple[Execution, bool]:
        with self._lock:
            took = False
            if slot is not None:
                held = self.slots.get((execution.task_id, slot))
                waiting = (
                    slot is Slot.ACTIVE
                    and waiting_first
                    and (execution.task_id, Slot.BUFFERED) in self.slots
                )
                if (held is not None and held != execution.id) or waiting:
                    raise SlotTaken(slot)
                self.slots[(execution.task_id, slot)] = execution.id
                self.slot_times[(execution.task_id, slot)] = execution.created_at
                took = True
            existing = self.executions.get(execution.id)
            if existing is not None:  # the firing is claimed: its execution id is taken
                if took and slot is not None and existing.status.finished:
                    del self.slots[(execution.task_id, slot)]
                return existing, False
            self.executions[execution.id] = execution
            self.records += records
            return execution, True

    def slot_holder(self, task_id: str, slot: Slot) -> tuple[str, datetime] | None:
        holder = self.slots.get((task_id, slot))
        if holder is None:
            return None
        return holder, self.slot_times.get((task_id, slot), datetime.min.replace(tzinfo=UTC))

    def slot_owner(self, task_id: str, slot: Slot) -> str | None:
        return self.slots.get((task_id, slot))

    def release_slot(self, task_id: str, execution_id: str) -> bool:
        with self._lock:
            if self.slots.get((task_id, Slot.ACTIVE)) != execution_id:
                return False
            del self.slots[(task_id, Slot.ACTIVE)]
            return True

    def promote_buffered(self, task_id: str) -> str | None:
        with self._lock:
            waiting = self.slots.get((task_id, Slot.BUFFERED))
            if waiting is None or (task_id, Slot.ACTIVE) in self.slots:
                return None
            self.slots[(task_id, Slot.ACTIVE)] = self.slots.pop((task_id, Slot.BUFFERED))
            return waiting

    def get(self, execution_id: str) -> Execution | None:
        return self.executions.get(execution_id)

    def get_many(self, execution_ids: Sequence[str]) -> dict[str, Execution]:
        return {e: self.executions[e] for e in execution_ids if e in self.executions}

    def find_expired_leases(self, before: datetime, limit: int) -> list[Execution]:
        expired = [
            e
            for e in self.executions.values()
            if e.lease_expires_at is not None and e.lease_expires_at < before
        ]
        return sorted(expired, key=lambda e: e.lease_expires_at or before)[:limit]

    def find_for_task(self, task_id: str, page: PageRequest) -> Page[Execution]:
        rows = sorted(
            (e for e in self.executions.values() if e.task_id == task_id),
            key=lambda e: e.id,
            reverse=True,
        )
        return _page_after(rows, page, f"executions:{task_id}")

    def update(
        self, before: Execution, after: Execution, records: Sequence[Record] = ()
    ) -> Execution:
        with self._lock:
            stored = self.executions.get(before.id)
            if stored is None or (stored.version, stored.status) != (before.version, before.status):
                raise StaleVersion(before.id)
            saved = replace(after, version=before.version + 1)
            self.executions[before.id] = saved
            self.records += records
            return saved


class InProcessRunner:
    """The runner port (the state machine) and the dispatcher port in process: records what it
    was asked to start (once per execution, with the delay) and to dispatch."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.delays: dict[str, int] = {}  # run name -> the delay it was handed over with
        self.dispatched: list[str] = []
        self.runs_started: list[str] = []
        self.runs_stopped: list[str] = []

    def start_workflow_run(self, run: WorkflowRun) -> None:
        if run.id not in self.runs_started:
            self.runs_started.append(run.id)

    def stop_workflow_run(self, run: WorkflowRun) -> None:
        self.runs_stopped.append(run.id)

    def start(self, execution: Execution, delay_seconds: int = 0) -> None:
        if execution.run_name in self.started:
            return
        self.started.append(execution.run_name)
        self.delays[execution.run_name] = delay_seconds

    def dispatch(self, execution: Execution) -> None:
        self.dispatched.append(execution.id)


class InMemoryWorkflowRepository:
    """Workflows in memory (checked against DynamoDB by the contract suite)."""

    def __init__(self, projects: InMemoryProjectRepository) -> None:
        self.projects = projects
        self.workflows: dict[str, Workflow] = {}
        self._lock = threading.Lock()

    def get(self, workflow_id: str) -> Workflow | None:
        return self.workflows.get(workflow_id)

    def create(self, workflow: Workflow) -> Workflow:
        with self._lock:
            if workflow.project_id not in self.projects.projects:
                raise NotFound("project not found")
            if workflow.id in self.workflows:
                raise StaleVersion(workflow.id)
            self.workflows[workflow.id] = workflow
            return workflow

    def update(self, before: Workflow, after: Workflow) -> Workflow:
        with self._lock:
            if after.project_id not in self.projects.projects:
                raise NotFound("project not found")
            stored = self.workflows.get(before.id)
            if stored is None or stored.version != before.version:
                raise StaleVersion(before.id)
            saved = after.with_changes(version=before.version + 1)
            self.workflows[after.id] = saved
            return saved

    def delete(self, workflow: Workflow) -> None:
        with self._lock:
            stored = self.workflows.get(workflow.id)
            if stored is None or stored.version != workflow.version:
                raise StaleVersion(workflow.id)
            del self.workflows[workflow.id]

    def find(self, project_id: str, page: PageRequest) -> Page[Workflow]:
        rows = sorted(
            (w for w in self.workflows.values() if w.project_id == project_id),
            key=lambda w: w.id,
            reverse=True,
        )
        return _page_after(rows, page, f"workflows:{project_id}")

    def advance_next_run(
        self, workflow_id: str, fired_at: datetime, next_run_at: datetime | None
    ) -> bool:
        with self._lock:
            workflow = self.workflows.get(workflow_id)
            if workflow is None or not _at_or_before_second(workflow.next_run_at, fired_at):
                return False
            self.workflows[workflow_id] = workflow.with_changes(next_run_at=next_run_at)
            return True


class InMemoryWorkflowRunRepository:
    """Workflow runs in memory (checked against DynamoDB by the contract suite). A round's
    executions go to `executions`, its records to the shared `records` (by default the
    execution fake's), all or nothing, as in DynamoDB's transaction."""

    def __init__(
        self, executions: InMemoryExecutionRepository, records: list[Record] | None = None
    ) -> None:
        self.executions = executions
        self.records: list[Record] = records if records is not None else executions.records
        self.runs: dict[str, WorkflowRun] = {}
        self._lock = threading.Lock()

    def create(self, run: WorkflowRun) -> WorkflowRun:
        with self._lock:
            if run.id in self.runs:
                raise StaleVersion(run.id)
            self.runs[run.id] = run
            return run

    def create_for_firing(
        self, firing_key: str, run: WorkflowRun, *, hold_slot: bool = False
    ) -> tuple[WorkflowRun, bool]:
        # The firings' claims and the slots are the execution fake's (one `claims` table).
        claims = self.executions
        with self._lock, claims._lock:
            claimed = claims.firings.get(firing_key)
            if claimed is not None:
                return self.runs[claimed], False
            if run.id in self.runs:
                raise StaleVersion(run.id)
            if hold_slot:
                if (run.workflow_id, Slot.ACTIVE) in claims.slots:
                    raise SlotTaken(Slot.ACTIVE)
                claims.slots[(run.workflow_id, Slot.ACTIVE)] = run.id
            claims.firings[firing_key] = run.id
            self.runs[run.id] = run
            return run, True

    def slot_owner(self, workflow_id: str) -> str | None:
        return self.executions.slot_owner(workflow_id, Slot.ACTIVE)

    def release_slot(self, workflow_id: str, run_id: str) -> bool:
        return self.executions.release_slot(workflow_id, run_id)

    def get(self, run_id: str) -> WorkflowRun | None:
        return self.runs.get(run_id)

    def find_for_workflow(self, workflow_id: str, page: PageRequest) -> Page[WorkflowRun]:
        rows = sorted(
            (r for r in self.runs.values() if r.workflow_id == workflow_id),
            key=lambda r: r.id,
            reverse=True,
        )
        return _page_after(rows, page, f"workflow_runs:{workflow_id}")

    def advance(
        self,
        before: WorkflowRun,
        after: WorkflowRun,
        executions: Sequence[Execution] = (),
        records: Sequence[Record] = (),
    ) -> WorkflowRun:
        check_advance(before, after, executions, records)
        with self._lock, self.executions._lock:
            stored = self.runs.get(before.id)
            if stored is None or stored.version != before.version:
                raise StaleVersion(before.id)
            if any(e.id in self.executions.executions for e in executions):
                raise StaleVersion(f"{before.id}: a step's execution exists")
            saved = after.with_changes(version=before.version + 1)
            self.runs[before.id] = saved
            self.executions.executions.update((e.id, e) for e in executions)
            self.records += records
            return saved


class InMemoryDueSweepRepository:
    """The due-date sweep's port over the in-memory tasks (checked against DynamoDB by
    tests/integration/test_sweep_repository.py): claims in a dict, notifications into
    `records`."""

    def __init__(self, tasks: InMemoryTaskRepository, records: list[Record] | None = None) -> None:
        self.task_store = tasks
        self.records: list[Record] = records if records is not None else []
        self.claims: dict[str, tuple[str, datetime]] = {}  # claim -> (owner, expires_at)
        self.writes = 0  # transactions that wrote something
        self._lock = threading.Lock()

    def due_between(self, start: datetime, end: datetime) -> list[DueTaskRef]:
        due = [
            DueTaskRef(t.id, t.due_date)
            for t in self.task_store.tasks.values()
            if t.due_date is not None and not t.status.closed and start <= t.due_date <= end
        ]
        return sorted(due, key=lambda ref: (ref.due_date, ref.task_id))

    def claimed(self, claims: Sequence[str]) -> set[str]:
        if len(claims) > 100:  # one BatchGetItem
            raise ValueError("at most 100 claims at once")
        return {claim for claim in claims if claim in self.claims}

    def tasks(self, task_ids: Sequence[str]) -> dict[str, Task]:
        if len(task_ids) > 100:
            raise ValueError("at most 100 tasks at once")
        return self.task_store.get_many(task_ids)

    def notify_once(
        self, claim: str, task: Task, notification: Notification, expires_at: datetime
    ) -> bool:
        with self._lock:
            stored = self.task_store.tasks.get(task.id)
            if (
                claim in self.claims
                or task.project_id not in self.task_store.projects.projects
                or stored is None
                or stored.status.closed
                or stored.due_date is None
                or stored.due_date != task.due_date
            ):
                return False
            self.claims[claim] = (notification.id, expires_at)
            self.records.append(notification)
            self.writes += 1
            return True


class InMemoryConnectionRepository:
    """WebSocket connections and subscriptions in memory (the contract suite checks it against
    DynamoDB)."""

    def __init__(self) -> None:
        self.connections: dict[str, Connection] = {}
        self.subscriptions: dict[str, dict[str, str]] = {}  # channel -> {connection: user}
        # In-order subscriptions: (channel, connection) -> the last event number delivered.
        self.in_order: dict[tuple[str, str], int] = {}
        # Claims held on in-order subscriptions: (channel, connection) -> (through, until).
        self.claims: dict[tuple[str, str], tuple[int, datetime | None]] = {}
        self._lock = threading.Lock()

    def add(self, connection: Connection) -> None:
        self.connections[connection.connection_id] = connection

    def get(self, connection_id: str) -> Connection | None:
        return self.connections.get(connection_id)

    def remove(self, connection_id: str) -> None:
        connection = self.connections.pop(connection_id, None)
        for channel in connection.channels if connection else ():
            self.subscriptions.get(channel, {}).pop(connection_id, None)
            self.in_order.pop((channel, connection_id), None)

    def subscribe(self, connection: Connection, channel: str, delivered: int | None = None) -> bool:
        stored = self.connections.get(connection.connection_id)
        if stored is None:
            return False
        self.connections[stored.connection_id] = replace(
            stored, channels=stored.channels | {channel}
        )
        self.subscriptions.setdefault(channel, {})[stored.connection_id] = stored.user_id
        self.claims.pop((channel, stored.connection_id), None)
        if delivered is None:
            self.in_order.pop((channel, stored.connection_id), None)
        else:
            self.in_order[(channel, stored.connection_id)] = delivered
        return True

    def _free_at(self, key: tuple[str, str], sent: int, now: datetime) -> bool:
        until = self.claims.get(key, (0, None))[1]
        return self.in_order.get(key) == sent and (until is None or until < now)

    def claim(
        self,
        channel: str,
        connection_id: str,
        sent: int,
        through: int,
        until: datetime,
        now: datetime,
    ) -> bool:
        key = (channel, connection_id)
        with self._lock:
            if not self._free_at(key, sent, now):
                return False
            self.claims[key] = (through, until)
            return True

    def release(self, channel: str, connection_id: str, through: int) -> bool:
        key = (channel, connection_id)
        with self._lock:
            if self.claims.get(key, (None, None))[0] != through:
                return False
            self.in_order[key] = through
            del self.claims[key]
            return True

    def subscriber(self, channel: str, connection_id: str) -> Subscriber | None:
        user_id = self.subscriptions.get(channel, {}).get(connection_id)
        if user_id is None:
            return None
        return self._subscriber(channel, connection_id, user_id)

    def _subscriber(self, channel: str, connection_id: str, user_id: str) -> Subscriber:
        key = (channel, connection_id)
        return Subscriber(
            connection_id, user_id, self.in_order.get(key), self.claims.get(key, (0, None))[1]
        )

    def unsubscribe(self, connection: Connection, channel: str) -> None:
        self.subscriptions.get(channel, {}).pop(connection.connection_id, None)
        self.in_order.pop((channel, connection.connection_id), None)
        stored = self.connections.get(connection.connection_id)
        if stored is not None:
            self.connections[stored.connection_id] = replace(
                stored, channels=stored.channels - {channel}
            )

    def subscribers(self, channel: str) -> list[Subscriber]:
        return [
            self._subscriber(channel, c, u)
            for c, u in sorted(self.subscriptions.get(channel, {}).items())
        ]

    def connections_of(self, user_id: str) -> list[str]:
        return sorted(c.connection_id for c in self.connections.values() if c.user_id == user_id)


class InMemoryEventLog:
    """Each project's events numbered in order, in memory (the contract suite checks it against
    DynamoDB). `expire(project_id, through)` stands for DynamoDB's TTL deleting old events."""

    def __init__(self) -> None:
        self.events: dict[str, list[Event]] = {}
        self.record_ids: set[str] = set()
        self._lock = threading.Lock()

    def append(self, project_id: str, events: Sequence[Event]) -> list[Event]:
        with self._lock:
            logged = []
            for event in events:
                if event.id and event.id in self.record_ids:
                    continue
                if event.id:
                    self.record_ids.add(event.id)
                kept_events = self.events.setdefault(project_id, [])
                latest = kept_events[-1] if kept_events else None
                position = next_position(
                    project_id,
                    parse_event_id(latest.id) if latest else None,
                    latest.at if latest else None,
                    event.at,
                )
                kept = replace(
                    event, id=str(position), project_id=project_id, source=event.id or None
                )
                kept_events.append(kept)
                logged.append(kept)
            return logged

    def read(self, project_id: str, from_seq: int, limit: int) -> list[Event]:
        with self._lock:
            kept = self.events.get(project_id, [])
            return [e for e in kept if _seq(e) >= from_seq][:limit]

    def latest(self, project_id: str) -> Event | None:
        kept = self.events.get(project_id, [])
        return kept[-1] if kept else None

    def expire(self, project_id: str, through: int) -> None:
        self.events[project_id] = [e for e in self.events.get(project_id, []) if _seq(e) > through]


def _seq(event: Event) -> int:
    position = parse_event_id(event.id)
    assert position is not None
    return position.seq


class RecordingPusher:
    """Frames pushed, per connection; connections in `gone` answer 410."""

    def __init__(self) -> None:
        self.frames: dict[str, list[dict[str, object]]] = {}
        self.gone: set[str] = set()

    def push(self, connection_id: str, message: dict[str, object]) -> bool:
        if connection_id in self.gone:
            return False
        self.frames.setdefault(connection_id, []).append(message)
        return True

    def push_many(self, connection_ids: Sequence[str], message: dict[str, object]) -> list[str]:
        return [c for c in connection_ids if not self.push(c, message)]


# ---- automation: templates and rules (checked against DynamoDB by their contract suites) ----


class InMemoryTemplateRepository:
    def __init__(self, projects: InMemoryProjectRepository) -> None:
        self.projects = projects
        self.templates: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, template_id: str) -> Any:
        return self.templates.get(template_id)

    def create(self, template: Any) -> Any:
        with self._lock:
            if template.project_id not in self.projects.projects:
                raise NotFound("project not found")
            if template.id in self.templates:
                raise StaleVersion(template.id)
            self.templates[template.id] = template
            return template

    def update(self, before: Any, after: Any) -> Any:
        with self._lock:
            if after.project_id not in self.projects.projects:
                raise NotFound("project not found")
            stored = self.templates.get(before.id)
            if stored is None or stored.version != before.version:
                raise StaleVersion(before.id)
            saved = after.with_changes(version=before.version + 1)
            self.templates[after.id] = saved
            return saved

    def delete(self, template: Any) -> None:
        with self._lock:
            stored = self.templates.get(template.id)
            if stored is None or stored.version != template.version:
                raise StaleVersion(template.id)
            del self.templates[template.id]

    def find(self, project_id: str, page: PageRequest) -> Page[Any]:
        rows = sorted(
            (t for t in self.templates.values() if t.project_id == project_id),
            key=lambda t: t.id,
            reverse=True,
        )
        return _page_after(rows, page, f"templates:{project_id}")

    def purge_project(self, project_id: str) -> int:
        with self._lock:
            doomed = [k for k, t in self.templates.items() if t.project_id == project_id]
            for key in doomed:
                del self.templates[key]
            return len(doomed)


class InMemoryRuleRepository(InMemoryTemplateRepository):
    """Rules in memory: stored like templates, plus the enabled-by-trigger lookup."""

    def find(self, project_id: str, page: PageRequest) -> Page[Any]:
        rows = sorted(
            (r for r in self.templates.values() if r.project_id == project_id),
            key=lambda r: r.id,
            reverse=True,
        )
        return _page_after(rows, page, f"rules:{project_id}")

    def enabled_for(self, project_id: str, event: Any) -> list[Any]:
        return sorted(
            (
                r
                for r in self.templates.values()
                if r.project_id == project_id and r.enabled and r.event == event
            ),
            key=lambda r: r.id,
        )


class InMemoryRuleExecutionRepository:
    def __init__(self) -> None:
        self.claims: dict[str, str] = {}
        self.executions: list[Any] = []
        self._lock = threading.Lock()

    def claim(self, rule_id: str, event_key: str, execution_id: str, at: datetime) -> bool:
        with self._lock:
            key = f"rule#{rule_id}#{event_key}"
            if key in self.claims:
                return False
            self.claims[key] = execution_id
            return True

    def add(self, execution: Any) -> None:
        with self._lock:
            self.executions.append(execution)

    def find(self, rule_id: str, page: PageRequest) -> Page[Any]:
        rows = sorted(
            (e for e in self.executions if e.rule_id == rule_id), key=lambda e: e.id, reverse=True
        )
        return _page_after(rows, page, f"rule_executions:{rule_id}")


class InMemoryCalendarRepository:
    """Calendar lookups in the user repository's claims, dated tasks from the task store."""

    def __init__(self, users: InMemoryUserRepository, tasks: InMemoryTaskRepository) -> None:
        self.users = users
        self.tasks = tasks
        self.reads: list[str] = []  # which feed reads ran ("owner", "assigned", "project")

    def owner_of(self, lookup: str) -> str | None:
        self.reads.append("owner")
        return self.users.claims.get(f"calendar#{lookup}")

    def set_key(self, before: User, after: User, lookup: str, previous: str | None) -> User:
        with self.users._lock:
            stored = self.users.users.get(before.id)
            if stored is None or stored.version != before.version:
                raise StaleVersion(before.id)
            if f"calendar#{lookup}" in self.users.claims:
                raise StaleVersion(before.id)
            saved = replace(
                stored,
                calendar_nonce=after.calendar_nonce,
                updated_at=after.updated_at,
                version=before.version + 1,
            )
            self.users.users[before.id] = saved
            if previous is not None:
                self.users.claims.pop(f"calendar#{previous}", None)
            self.users.claims[f"calendar#{lookup}"] = before.id
            return saved

    def _dated(self, keep: Any, due_from: datetime, limit: int) -> list[Task]:
        dated = [
            t
            for t in self.tasks.tasks.values()
            if keep(t) and t.due_date is not None and t.due_date >= due_from
        ]
        return sorted(dated, key=lambda t: (t.due_date, t.id))[:limit]

    def assigned_with_due_date(self, user_id: str, due_from: datetime, limit: int) -> list[Task]:
        self.reads.append("assigned")
        return self._dated(lambda t: t.assignee_id == user_id, due_from, limit)

    def project_with_due_date(self, project_id: str, due_from: datetime, limit: int) -> list[Task]:
        self.reads.append("project")
        return self._dated(lambda t: t.project_id == project_id, due_from, limit)


class InMemorySecrets:
    """Secrets by id; an id nobody set reads as a value of its own (stable for the process)."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values = dict(values or {})

    def get(self, secret_id: str) -> str:
        return self.values.setdefault(secret_id, f"in-memory secret {secret_id} " + "x" * 32)


class RecordingJanitor:
    def __init__(self) -> None:
        self.purged: list[str] = []

    def purge_project(self, project_id: str) -> int:
        self.purged.append(project_id)
        return 0

    def purge_task(self, task_id: str) -> int:
        self.purged.append(task_id)
        return 0


class HealthyProbe:
    def check(self) -> dict[str, str]:
        return {"dynamodb": "ok"}


class RecordingWebhookClient:
    """Answers every request with `status` and keeps the requests."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.requests: list[WebhookRequest] = []

    def deliver(self, request: WebhookRequest) -> WebhookResult:
        self.requests.append(request)
        return WebhookResult(status_code=self.status, duration_ms=1)


class InMemoryHookRepository(InMemoryTemplateRepository):
    """Hooks in memory: stored like templates, plus the active lookup and the failure count."""

    def __init__(self, projects: InMemoryProjectRepository) -> None:
        super().__init__(projects)
        self.active_queries: list[str] = []

    def update(self, before: Any, after: Any) -> Any:
        with self._lock:
            stored = self.templates.get(before.id)
            if stored is not None and after.consecutive_failures == before.consecutive_failures:
                # Only the fields users change are written: the count stays the stored one.
                after = after.with_changes(consecutive_failures=stored.consecutive_failures)
        return super().update(before, after)

    def find(self, project_id: str, page: PageRequest) -> Page[Any]:
        rows = sorted(
            (h for h in self.templates.values() if h.project_id == project_id),
            key=lambda h: h.id,
            reverse=True,
        )
        return _page_after(rows, page, f"hooks:{project_id}")

    def active_for(self, project_id: str) -> list[Any]:
        self.active_queries.append(project_id)
        return sorted(
            (h for h in self.templates.values() if h.project_id == project_id and h.active),
            key=lambda h: h.id,
        )

    def count_failure(self, hook_id: str) -> int | None:
        with self._lock:
            hook = self.templates.get(hook_id)
            if hook is None:
                return None
            hook = hook.with_changes(consecutive_failures=hook.consecutive_failures + 1)
            self.templates[hook_id] = hook
            return int(hook.consecutive_failures)

    def reset_failures(self, hook_id: str) -> None:
        with self._lock:
            hook = self.templates.get(hook_id)
            if hook is not None:
                self.templates[hook_id] = hook.with_changes(consecutive_failures=0)

    def disable(self, hook_id: str, at: datetime) -> Any:
        with self._lock:
            hook = self.templates.get(hook_id)
            if hook is None or not hook.active:
                return None
            hook = hook.with_changes(active=False, updated_at=at, version=hook.version + 1)
            self.templates[hook_id] = hook
            return hook


class InMemoryDeliveryRepository:
    def __init__(self) -> None:
        self.deliveries: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, delivery_id: str) -> Any:
        return self.deliveries.get(delivery_id)

    def add(self, delivery: Any) -> bool:
        with self._lock:
            if delivery.id in self.deliveries:
                return False
            self.deliveries[delivery.id] = delivery
            return True

    def record_attempt(self, before: Any, after: Any) -> bool:
        with self._lock:
            stored = self.deliveries.get(before.id)
            if stored is None or stored.status.value != "pending":
                return False
            if stored.attempts != before.attempts:
                return False
            self.deliveries[before.id] = after
            return True

    def find(self, hook_id: str, page: PageRequest) -> Page[Any]:
        rows = sorted(
            (d for d in self.deliveries.values() if d.hook_id == hook_id),
            key=lambda d: d.id,
            reverse=True,
        )
        return _page_after(rows, page, f"deliveries:{hook_id}")


class InMemoryDeliveryQueue:
    """The delivery queue in memory: what was sent, and each retry's delay by receipt."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.delays: list[tuple[str, int]] = []

    def send(self, delivery_ids: Sequence[str]) -> None:
        self.sent.extend(delivery_ids)

    def retry_later(self, receipt: str, delay_seconds: int) -> None:
        self.delays.append((receipt, delay_seconds))

    def take(self) -> list[str]:
        sent, self.sent = self.sent, []
        return sent


def _no_stream(event: dict[str, Any]) -> list[Any]:
    raise AssertionError("in-memory adapters have no DynamoDB stream: use the moto tier")


class InMemoryIdempotencyStore:
    """ports.IdempotencyStore in memory, with the DynamoDB adapter's conditions. The in-memory
    repositories do not write through its guard; `guarded_write()` stands for a transaction
    the guard rides in (the moto tests exercise the real one)."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], IdempotencyRecord] = {}
        self._lock = threading.Lock()
        self._active: IdempotencyRecord | None = None

    def claim(self, record: IdempotencyRecord, now: datetime) -> IdempotencyRecord | None:
        with self._lock:
            held = self.records.get((record.user_id, record.key))
            if (
                held is None
                or held.expired(now)
                or (
                    held.state is IdempotencyState.IN_PROGRESS
                    and held.lease_over(now)
                    and not held.committed
                    and held.fingerprint == record.fingerprint
                )
            ):
                self.records[(record.user_id, record.key)] = record
                return None
            return held

    def _holds(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        held = self.records.get((record.user_id, record.key))
        if (
            held is None
            or held.lease_id != record.lease_id
            or held.state is not IdempotencyState.IN_PROGRESS
        ):
            return None
        return held

    def complete(self, record: IdempotencyRecord, answer: bytes, sealed: bool) -> bool:
        with self._lock:
            held = self._holds(record)
            if held is None:
                return False
            self.records[(record.user_id, record.key)] = replace(
                held, state=IdempotencyState.DONE, answer=answer, sealed=sealed
            )
            return True

    def release(self, record: IdempotencyRecord, now: datetime) -> None:
        with self._lock:
            held = self._holds(record)
            if held is None:
                return
            if held.committed:
                self.records[(record.user_id, record.key)] = replace(held, lease_until=now)
            else:
                del self.records[(record.user_id, record.key)]

    def guarded(self, record: IdempotencyRecord) -> AbstractContextManager[None]:
        store = self

        class _Guard:
            def __enter__(self) -> None:
                store._active = record

            def __exit__(self, *exc: Any) -> None:
                store._active = None

        return _Guard()

    def guarded_write(self) -> None:
        """A transaction of the work: marks the active claim committed, or fails if lost."""
        with self._lock:
            if self._active is None:
                return
            held = self._holds(self._active)
            if held is None:
                raise ClaimLost("the claim was taken over")
            self.records[(held.user_id, held.key)] = replace(held, committed=True)


class InMemoryAdapters:
    """bootstrap.Adapters in memory: `bootstrap.wire(settings, InMemoryAdapters())` is the
    deployed container's wiring on these fakes. One `records` list stands for the history and
    notification tables (see above), shared by every fake that writes them."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or FakeClock()
        self.secrets = InMemorySecrets()
        self.signing_keys = FakeSigningKeys()
        self.hasher = fast_hasher()
        self.sessions = InMemorySessionRepository()
        self.users = InMemoryUserRepository(self.sessions)
        self.projects = self.users.project_repo
        self.login_attempts = InMemoryLoginAttempts(self.users)
        self.api_tokens = InMemoryApiTokenRepository(self.users)
        self.tasks = InMemoryTaskRepository(self.projects)
        records = self.tasks.records
        self.search_index = InMemorySearchIndex()
        self.comments = InMemoryCommentRepository(self.tasks)
        self.history = InMemoryHistoryRepository(records)
        self.email_directory = InMemoryEmailDirectory(self.users)
        self.notifications = InMemoryNotificationRepository(records)
        self.executions = InMemoryExecutionRepository(records)
        self.workflows = InMemoryWorkflowRepository(self.projects)
        self.workflow_runs = InMemoryWorkflowRunRepository(self.executions)
        self.templates = InMemoryTemplateRepository(self.projects)
        self.rules = InMemoryRuleRepository(self.projects)
        self.rule_log = InMemoryRuleExecutionRepository()
        self.calendars = InMemoryCalendarRepository(self.users, self.tasks)
        self.hooks = InMemoryHookRepository(self.projects)
        self.hook_deliveries = InMemoryDeliveryRepository()
        self.hook_queue = InMemoryDeliveryQueue()
        self.connections = InMemoryConnectionRepository()
        self.event_log = InMemoryEventLog()
        self.due_sweep = InMemoryDueSweepRepository(self.tasks, records)
        self.janitor = RecordingJanitor()
        self.health = HealthyProbe()
        self.pusher = RecordingPusher()
        self.scheduler = FakeScheduler()
        self.webhook_client = RecordingWebhookClient()
        self.prefetcher = NoPrefetch()
        self.runner: InProcessRunner | None = InProcessRunner()
        self.dispatcher: InProcessRunner | None = self.runner
        self.fan_out = None
        self.task_changes = self.workflow_changes = self.removed_projects = _no_stream
        self.realtime_changes = self.rule_events = _no_stream
        self.idempotency = InMemoryIdempotencyStore()

    def check_webhook_url(self, url: str) -> None:
        refuse_internal_urls(url)

    def request_scope(self) -> AbstractContextManager[None]:
        return nullcontext()


def in_memory_settings(**overrides: Any) -> Settings:
    """Settings for a container on InMemoryAdapters (nothing in them reaches AWS)."""
    from chalicelib.settings import Settings

    return Settings(**({"table_prefix": "in-memory"} | overrides))
