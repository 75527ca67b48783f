"""What the repositories of a project's versioned items share (workflows, templates, rules):
one item per id (the id ends in its project's), listed newest first through a `by_project`
index, created and changed in a transaction that checks the project still exists, changed and
deleted only at the version read, and purged with their project.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, NoReturn, TypeVar

from pynamodb.exceptions import DeleteError, TransactWriteError

from chalicelib.adapters.dynamodb import prefetch
from chalicelib.adapters.dynamodb.models import ProjectModel
from chalicelib.adapters.dynamodb.pagination import key_of, paginate
from chalicelib.adapters.dynamodb.prefetch import ItemKey
from chalicelib.adapters.dynamodb.tasks import BATCH_WRITE_SIZE
from chalicelib.adapters.dynamodb.transactions import Transaction, condition_failed
from chalicelib.domain.errors import NotFound, StaleVersion
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.projects import plausible_id

T = TypeVar("T")  # the domain object: has id, project_id, version and with_changes()


class ProjectItems(Generic[T]):
    """One kind of item; `label` names it in transactions and errors, `plural` in cursors."""

    def __init__(
        self,
        model: Any,
        label: str,
        to_model: Callable[[T], Any],
        from_model: Callable[[Any], T],
    ) -> None:
        self.model = model
        self.label = label
        self.plural = f"{label}s"
        self._to_model = to_model
        self._from_model = from_model

    def get(self, item_id: str) -> T | None:
        if not plausible_id(item_id):
            return None
        row = prefetch.get(ItemKey(self.model, item_id), self.model)
        return self._from_model(row) if row else None

    def create(self, item: Any) -> T:
        model = self.model
        try:
            with Transaction() as tx:
                tx.check("project", ProjectModel, item.project_id, ProjectModel.id.exists())
                tx.save(self.label, self._to_model(item), model.id.does_not_exist())
        except TransactWriteError as exc:
            self._raise_for(exc, tx)
        return item  # type: ignore[no-any-return]

    def put(self, before: Any, after: Any) -> T:
        """The whole item written again (a few KB at most), at the version read."""
        saved = after.with_changes(version=before.version + 1)
        try:
            with Transaction() as tx:
                tx.check("project", ProjectModel, after.project_id, ProjectModel.id.exists())
                tx.save(self.label, self._to_model(saved), self.model.version == before.version)
        except TransactWriteError as exc:
            self._raise_for(exc, tx)
        return saved  # type: ignore[no-any-return]

    def update(self, before: Any, after: Any, actions: list[Any]) -> T:
        """Only the changed attributes (`actions`) written, at the version read."""
        model = self.model
        try:
            with Transaction() as tx:
                tx.check("project", ProjectModel, after.project_id, ProjectModel.id.exists())
                tx.update(self.label, model(id=after.id), actions, model.version == before.version)
        except TransactWriteError as exc:
            self._raise_for(exc, tx)
        return after.with_changes(version=before.version + 1)  # type: ignore[no-any-return]

    def delete(self, item: Any) -> None:
        try:
            self.model(id=item.id).delete(condition=self.model.version == item.version)
        except DeleteError as exc:
            if condition_failed(exc):
                raise StaleVersion(item.id) from exc
            raise

    def find(self, project_id: str, page: PageRequest) -> Page[T]:
        return paginate(
            lambda limit, start: self.model.by_project.query(
                project_id,
                scan_index_forward=False,
                limit=limit,
                page_size=limit,
                last_evaluated_key=start,
            ),
            lambda row: key_of(row, "id", "project_id"),
            self._from_model,
            page,
            scope=f"{self.plural}:{project_id}",
        )

    def purge(self, project_id: str, before_each: Callable[[str], int] | None = None) -> int:
        """Delete every item of a deleted project (idempotent); `before_each` deletes what
        hangs off one item first, so a purge cut short finds the item again and finishes it.
        Returns how many items it deleted."""
        deleted = 0
        while True:
            rows = list(
                self.model.by_project.query(
                    project_id, limit=BATCH_WRITE_SIZE, attributes_to_get=["id"]
                )
            )
            if not rows:
                return deleted
            if before_each is not None:
                deleted += sum(before_each(row.id) for row in rows)
            with self.model.batch_write() as batch:
                for row in rows:
                    batch.delete(self.model(id=row.id))
            deleted += len(rows)

    def _raise_for(self, exc: TransactWriteError, tx: Transaction) -> NoReturn:
        failed = tx.failed(exc)
        if "project" in failed:
            raise NotFound("project not found") from exc
        if self.label in failed:
            raise StaleVersion(self.label) from exc
        raise exc
