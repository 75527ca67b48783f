"""Tasks and what is read or written with them: dependencies, search, comments,
calendar feeds, the due-date sweep."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

# The domain's types are for annotations only (see the package's docstring).
if TYPE_CHECKING:
    from chalicelib.domain.activity import Notification, Record
    from chalicelib.domain.comments import Comment
    from chalicelib.domain.model import Page, PageRequest
    from chalicelib.domain.tasks import Priority, Status, Task
    from chalicelib.domain.users import User


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
