"""DynamoDB repository of tasks: one item per task, one dependency graph item per project."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NoReturn

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition

from chalicelib.adapters.dynamodb import prefetch
from chalicelib.adapters.dynamodb.encoding import schedule_from_json, schedule_json
from chalicelib.adapters.dynamodb.models import (
    ProjectModel,
    TaskGraphModel,
    TaskModel,
)
from chalicelib.adapters.dynamodb.pagination import query_one_page
from chalicelib.adapters.dynamodb.prefetch import ItemKey
from chalicelib.adapters.dynamodb.records import write_records
from chalicelib.adapters.dynamodb.transactions import (
    MAX_TRANSACTION_ITEMS,
    Transaction,
)
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.activity import Record
from chalicelib.domain.cursors import decode_cursor, encode_cursor
from chalicelib.domain.errors import Conflict, NotFound, StaleVersion
from chalicelib.domain.model import Page, utc
from chalicelib.domain.tasks import Priority, Status, Task
from chalicelib.domain.webhooks import RetryPolicy, WebhookAction
from chalicelib.ports import DependencyGraph, TaskQuery

# With a filter, one page evaluates at most this many items (see query_one_page).
FILTERED_EVALUATION = 200
UNDATED = "~"  # sorts after every ISO date


def _iso(moment: datetime) -> str:
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def due_key(task: Task) -> str:
    return f"{_iso(task.due_date) if task.due_date else UNDATED}#{task.id}"


def open_due_day(task: Task) -> str | None:
    """The hash key of the sparse `open_by_due_day` index (the due-date sweep's): the due
    date's UTC day, only while the task is open and has a due date."""
    if task.due_date is None or task.status.closed:
        return None
    return utc(task.due_date).strftime("%Y-%m-%d")


def task_to_model(task: Task) -> TaskModel:
    return TaskModel(
        id=task.id,
        project_id=task.project_id,
        title=task.title,
        description=task.description,
        status=task.status.value,
        priority=task.priority.value,
        due_date=task.due_date,
        assignee_id=task.assignee_id,
        tags=list(task.tags),
        parent_id=task.parent_id,
        depends_on=list(task.depends_on),
        subtask_ids=set(task.subtask_ids),
        open_subtask_ids=set(task.open_subtask_ids),
        schedule=schedule_json(task.schedule),
        action=task.action.model_dump_json() if task.action else None,
        retry=task.retry.model_dump_json() if task.retry else None,
        next_run_at=task.next_run_at,
        created_by=task.created_by,
        created_at=task.created_at,
        updated_at=task.updated_at,
        completed_at=task.completed_at,
        version=task.version,
        due_key=due_key(task),
        priority_key=f"{task.priority.rank}#{task.id}",
        status_key=f"{task.status.rank}#{task.id}",
        project_status=f"{task.project_id}#{task.status.value}",
        open_due_day=open_due_day(task),
        changed_by_rule=task.changed_by_rule,
    )


def index_keys(task: Task) -> dict[str, str]:
    return {
        "due_key": due_key(task),
        "priority_key": f"{task.priority.rank}#{task.id}",
        "status_key": f"{task.status.rank}#{task.id}",
        "project_status": f"{task.project_id}#{task.status.value}",
    }


def task_from_model(row: TaskModel) -> Task:
    return Task(
        id=row.id,
        project_id=row.project_id,
        title=row.title,
        description=row.description or "",
        status=Status(row.status),
        priority=Priority(row.priority),
        due_date=row.due_date,
        assignee_id=row.assignee_id,
        tags=tuple(row.tags or ()),
        parent_id=row.parent_id,
        depends_on=tuple(row.depends_on or ()),
        subtask_ids=tuple(sorted(row.subtask_ids or ())),
        open_subtask_ids=tuple(sorted(row.open_subtask_ids or ())),
        schedule=schedule_from_json(row.schedule),
        action=WebhookAction.model_validate_json(row.action) if row.action else None,
        retry=RetryPolicy.model_validate_json(row.retry) if row.retry else None,
        next_run_at=row.next_run_at,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        completed_at=row.completed_at,
        version=int(row.version),
    )


# Fields a PATCH may change, each with how it is stored.
_UPDATABLE: dict[str, Callable[[Task], Any]] = {
    "title": lambda t: t.title,
    "description": lambda t: t.description,
    "status": lambda t: t.status.value,
    "priority": lambda t: t.priority.value,
    "due_date": lambda t: t.due_date,
    "assignee_id": lambda t: t.assignee_id,
    "tags": lambda t: list(t.tags),
    "parent_id": lambda t: t.parent_id,
    "depends_on": lambda t: list(t.depends_on),
    "schedule": lambda t: schedule_json(t.schedule),
    "action": lambda t: t.action.model_dump_json() if t.action else None,
    "retry": lambda t: t.retry.model_dump_json() if t.retry else None,
    "next_run_at": lambda t: t.next_run_at,
    "completed_at": lambda t: t.completed_at,
    "updated_at": lambda t: t.updated_at,
}


def _update_actions(before: Task, after: Task) -> list[Any]:
    actions: list[Any] = []
    for name, value_of in _UPDATABLE.items():
        old, new = value_of(before), value_of(after)
        if old == new:
            continue
        attribute: Any = getattr(TaskModel, name)
        actions.append(attribute.remove() if new is None else attribute.set(new))
    for name, value in index_keys(after).items():
        if index_keys(before)[name] != value:
            key_attribute: Any = getattr(TaskModel, name)
            actions.append(key_attribute.set(value))
    # Set or removed on every update (a no-op when unchanged), so a task written before the
    # index existed joins it on its next write.
    day = open_due_day(after)
    due_day = TaskModel.open_due_day
    actions.append(due_day.remove() if day is None else due_day.set(day))
    # Every write says whether a rule made it (a stale mark must not outlive its write).
    marker = TaskModel.changed_by_rule
    actions.append(marker.set(after.changed_by_rule) if after.changed_by_rule else marker.remove())
    actions.append(TaskModel.version.set(after.version + 1))
    return actions


def _graph_model(
    graph: DependencyGraph, edges: dict[str, list[str]]
) -> tuple[TaskGraphModel, Condition]:
    model = TaskGraphModel(project_id=graph.project_id, edges=edges, version=graph.version + 1)
    if graph.version == 0:
        return model, TaskGraphModel.project_id.does_not_exist()
    return model, TaskGraphModel.version == graph.version


def _raise_for(exc: TransactWriteError, tx: Transaction) -> NoReturn:
    failed = tx.failed(exc)
    if "project" in failed:
        raise NotFound("project not found") from exc
    if "parent" in failed:
        raise NotFound("parent task not found") from exc
    if "task" in failed or "graph" in failed or any(f.startswith("dependent") for f in failed):
        raise StaleVersion("task") from exc
    raise exc


def _parent_bookkeeping(tx: Transaction, before: Task | None, after: Task | None) -> None:
    """Keep `subtask_ids` / `open_subtask_ids` of the parents in step with their subtasks."""
    task_id = (after or before).id  # type: ignore[union-attr]
    old_parent = before.parent_id if before else None
    new_parent = after.parent_id if after else None
    was_open = before is not None and not before.status.closed
    is_open = after is not None and not after.status.closed
    if old_parent and old_parent != new_parent:
        tx.update(
            "old-parent",
            TaskModel(id=old_parent),
            [TaskModel.subtask_ids.delete({task_id}), TaskModel.open_subtask_ids.delete({task_id})],
            TaskModel.id.exists(),
        )
    if new_parent and new_parent != old_parent:
        actions = [TaskModel.subtask_ids.add({task_id})]
        if is_open:
            actions.append(TaskModel.open_subtask_ids.add({task_id}))
        tx.update("parent", TaskModel(id=new_parent), actions, TaskModel.id.exists())
    elif new_parent and was_open != is_open:
        open_set = TaskModel.open_subtask_ids
        action = open_set.add({task_id}) if is_open else open_set.delete({task_id})
        tx.update("parent", TaskModel(id=new_parent), [action], TaskModel.id.exists())


class DynamoTaskRepository:
    @translate_aws_failures
    def get(self, task_id: str) -> Task | None:
        row = prefetch.get(ItemKey(TaskModel, task_id), TaskModel)
        return task_from_model(row) if row else None

    @translate_aws_failures
    def get_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        keys = [ItemKey(TaskModel, task_id) for task_id in dict.fromkeys(task_ids)]
        rows = {key: prefetch.take(key) for key in keys}
        missing = [key for key, row in rows.items() if row is prefetch.MISSING]
        if missing:
            rows.update(prefetch.get_many(missing))
            for key in missing:
                prefetch.take(key)
        return {key.hash_key: task_from_model(row) for key, row in rows.items() if row}

    @translate_aws_failures
    def graph(self, project_id: str) -> DependencyGraph:
        row = prefetch.get(ItemKey(TaskGraphModel, project_id), TaskGraphModel)
        if row is None:
            return DependencyGraph(project_id, {}, 0)
        raw: dict[str, Any] = row.edges.as_dict() if row.edges else {}  # type: ignore[no-untyped-call]
        edges = {task: [str(dep) for dep in deps] for task, deps in raw.items()}
        return DependencyGraph(project_id, edges, int(row.version))

    @translate_aws_failures
    def create(
        self, task: Task, graph: DependencyGraph | None, records: Sequence[Record] = ()
    ) -> Task:
        try:
            with Transaction() as tx:
                tx.check("project", ProjectModel, task.project_id, ProjectModel.id.exists())
                tx.save("task", task_to_model(task), TaskModel.id.does_not_exist())
                _parent_bookkeeping(tx, None, task)
                if graph is not None:
                    edges = {**graph.edges, task.id: list(task.depends_on)}
                    tx.save("graph", *_graph_model(graph, {k: list(v) for k, v in edges.items()}))
                write_records(tx, records)
        except TransactWriteError as exc:
            _raise_for(exc, tx)
        return task

    @translate_aws_failures
    def update(
        self,
        before: Task,
        after: Task,
        graph: DependencyGraph | None,
        records: Sequence[Record] = (),
    ) -> Task:
        try:
            with Transaction() as tx:
                tx.check("project", ProjectModel, after.project_id, ProjectModel.id.exists())
                tx.update(
                    "task",
                    TaskModel(id=after.id),
                    _update_actions(before, after),
                    TaskModel.version == before.version,
                )
                _parent_bookkeeping(tx, before, after)
                if graph is not None:
                    edges = {k: list(v) for k, v in graph.edges.items()}
                    if after.depends_on:
                        edges[after.id] = list(after.depends_on)
                    else:
                        edges.pop(after.id, None)
                    tx.save("graph", *_graph_model(graph, edges))
                write_records(tx, records)
        except TransactWriteError as exc:
            _raise_for(exc, tx)
        return after.with_changes(version=after.version + 1)

    @translate_aws_failures
    def delete(self, task: Task, graph: DependencyGraph, records: Sequence[Record] = ()) -> None:
        doomed = {task.id, *task.subtask_ids}
        edges = {
            t: [d for d in deps if d not in doomed]
            for t, deps in graph.edges.items()
            if t not in doomed
        }
        dependents = sorted(
            t for t, deps in graph.edges.items() if t not in doomed and set(deps) & doomed
        )
        if 3 + len(task.subtask_ids) + len(dependents) + len(records) > MAX_TRANSACTION_ITEMS:
            raise Conflict(
                "this task has too many subtasks and dependents to delete at once; "
                "remove some dependencies first"
            )
        try:
            with Transaction() as tx:
                tx.delete("task", TaskModel(id=task.id), TaskModel.version == task.version)
                for subtask_id in task.subtask_ids:
                    tx.delete("subtask", TaskModel(id=subtask_id))
                _parent_bookkeeping(tx, task, None)
                for dependent in dependents:
                    tx.update(
                        f"dependent:{dependent}",
                        TaskModel(id=dependent),
                        [TaskModel.depends_on.set(edges.get(dependent, []))],
                        TaskModel.id.exists(),
                    )
                if graph.version or graph.edges:
                    tx.save("graph", *_graph_model(graph, {t: d for t, d in edges.items() if d}))
                write_records(tx, records)
        except TransactWriteError as exc:
            _raise_for(exc, tx)

    @translate_aws_failures
    @translate_aws_failures
    def find(self, query: TaskQuery) -> Page[Task]:
        plan = _plan(query)
        scope = plan.scope
        state = decode_cursor(query.page.cursor, scope) or {}
        phase = state.get("phase", plan.phases[0])
        start = state.get("key") or None

        def run(evaluate: int, begin: dict[str, Any] | None) -> Any:
            return plan.index.query(
                plan.hash_value,
                range_key_condition=plan.range_condition(phase),
                filter_condition=plan.filter,
                scan_index_forward=not plan.descending,
                page_size=evaluate,
                last_evaluated_key=begin,
            )

        evaluate = query.page.limit + 1 if plan.filter is None else FILTERED_EVALUATION
        rows, resume = query_one_page(
            TaskModel,
            run,
            plan.key_names,
            query.page.limit,
            max(evaluate, query.page.limit + 1),
            start,
        )
        items = [task_from_model(row) for row in rows]
        if query.across_projects_of_assignee:
            # The index spans every project the user was ever assigned in; keep the ones they
            # still belong to (the set came with the session, so this costs no call).
            items = [task for task in items if task.project_id in query.project_ids]
        next_cursor = None
        if resume:
            next_cursor = encode_cursor({"phase": phase, "key": resume}, scope)
        elif phase != plan.phases[-1]:
            next_phase = plan.phases[plan.phases.index(phase) + 1]
            next_cursor = encode_cursor({"phase": next_phase, "key": None}, scope)
        return Page(items=items, next_cursor=next_cursor)


class _Plan:
    """Which index serves a task query, and what is left for a filter."""

    def __init__(self, query: TaskQuery) -> None:
        self.descending = query.sort.startswith("-")
        field = query.sort.lstrip("-")
        statuses = set(query.statuses)
        filters: list[Condition] = []
        due_range = query.due_after is not None or query.due_before is not None
        self.on_due = field == "due_date"
        (project_id,) = query.project_ids if not query.across_projects_of_assignee else ("*",)
        if query.across_projects_of_assignee:
            self.hash_value = query.across_projects_of_assignee
            self.index: Any = TaskModel.by_assignee_due if self.on_due else TaskModel.by_assignee
        elif field == "due_date" and len(statuses) == 1:
            (status,) = statuses
            statuses.clear()
            self.hash_value = f"{project_id}#{status.value}"
            self.index = TaskModel.by_project_status_due
        elif field == "created_at" and query.parent_id and not query.across_projects_of_assignee:
            self.hash_value = query.parent_id
            self.index = TaskModel.by_parent
            filters.append(TaskModel.project_id == project_id)
        else:
            self.hash_value = project_id
            self.index = {
                "due_date": TaskModel.by_project_due,
                "priority": TaskModel.by_project_priority,
                "status": TaskModel.by_project_status,
                "created_at": TaskModel.by_project,
            }[field]
        range_attr = {
            TaskModel.by_project_due: "due_key",
            TaskModel.by_project_status_due: "due_key",
            TaskModel.by_assignee_due: "due_key",
            TaskModel.by_project_priority: "priority_key",
            TaskModel.by_project_status: "status_key",
        }.get(self.index, "id")
        hash_attr = {
            TaskModel.by_project_status_due: "project_status",
            TaskModel.by_assignee: "assignee_id",
            TaskModel.by_assignee_due: "assignee_id",
            TaskModel.by_parent: "parent_id",
        }.get(self.index, "project_id")
        self.key_names = ["id", hash_attr, range_attr]
        self._due_key_range = self.on_due and (due_range or query.no_due_date)
        self._query = query
        # Without a due date a task sorts last either way: descending, the dated ones come
        # first (phase "dated") and the undated ones after (phase "undated").
        if self.on_due and not self._due_key_range and self.descending:
            self.phases = ["dated", "undated"]
        else:
            self.phases = ["all"]

        if statuses:
            filters.append(TaskModel.status.is_in(*sorted(s.value for s in statuses)))
        if query.priorities:
            filters.append(TaskModel.priority.is_in(*sorted(p.value for p in query.priorities)))
        if query.assignee_id and not query.across_projects_of_assignee:
            filters.append(TaskModel.assignee_id == query.assignee_id)
        if query.tag:
            filters.append(TaskModel.tags.contains(query.tag))
        if query.parent_id and self.index is not TaskModel.by_parent:
            filters.append(TaskModel.parent_id == query.parent_id)
        if not self._due_key_range:
            if query.no_due_date:
                filters.append(TaskModel.due_date.does_not_exist())
            if query.due_after is not None:
                filters.append(TaskModel.due_date > query.due_after)
            if query.due_before is not None:
                filters.append(TaskModel.due_date < query.due_before)
        self.filter: Condition | None = None
        for condition in filters:
            self.filter = condition if self.filter is None else self.filter & condition
        self.scope = "tasks?" + json.dumps(
            {
                "p": sorted(query.project_ids),
                "a": query.across_projects_of_assignee,
                "sort": query.sort,
                "s": sorted(s.value for s in query.statuses),
                "pr": sorted(p.value for p in query.priorities),
                "as": query.assignee_id,
                "t": query.tag,
                "par": query.parent_id,
                "due": [
                    query.due_after.isoformat() if query.due_after else None,
                    query.due_before.isoformat() if query.due_before else None,
                    query.no_due_date,
                ],
            },
            sort_keys=True,
        )

    def range_condition(self, phase: str) -> Condition | None:
        if not self.on_due:
            return None
        due = TaskModel.due_key
        query = self._query
        if query.no_due_date:
            return due.startswith(UNDATED)
        if query.due_after is not None and query.due_before is not None:
            return due.between(f"{_iso(query.due_after)}#{UNDATED}", _iso(query.due_before))
        if query.due_after is not None:
            return due > f"{_iso(query.due_after)}#{UNDATED}"
        if query.due_before is not None:
            return due < _iso(query.due_before)
        if phase == "dated":
            return due < UNDATED
        if phase == "undated":
            return due.startswith(UNDATED)
        return None


def _plan(query: TaskQuery) -> _Plan:
    return _Plan(query)


BATCH_WRITE_SIZE = 25


def purge_project_tasks(project_id: str) -> int:
    """Delete every task of a deleted project, and its dependency graph. Idempotent.

    Each deletion reaches the stream consumer in turn, which cleans up after the task (its
    search entries and history). Returns how many tasks it deleted.
    """
    deleted = 0
    while True:
        rows = list(
            TaskModel.by_project.query(project_id, limit=BATCH_WRITE_SIZE, attributes_to_get=["id"])
        )
        if not rows:
            break
        with TaskModel.batch_write() as batch:
            for row in rows:
                batch.delete(TaskModel(id=row.id))
        deleted += len(rows)
    TaskGraphModel(project_id=project_id).delete()
    return deleted
