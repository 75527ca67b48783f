"""The search index on DynamoDB: one item per (project, word)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pynamodb.exceptions import UpdateError

from chalicelib.adapters.dynamodb import prefetch
from chalicelib.adapters.dynamodb.models import SearchTermModel
from chalicelib.adapters.dynamodb.prefetch import ItemKey
from chalicelib.adapters.dynamodb.transactions import condition_failed
from chalicelib.adapters.errors import translate_aws_failures


def term_key(project_id: str, term: str) -> str:
    return f"{project_id}#{term}"


def _entry(task_id: str) -> Any:
    """The path `tasks.<task_id>` (typed loosely: PynamoDB types map items as their values)."""
    return SearchTermModel.tasks[task_id]


class DynamoSearchIndex:
    @translate_aws_failures
    def postings(self, project_id: str, terms: Sequence[str]) -> dict[str, dict[str, int] | None]:
        keys = {term: ItemKey(SearchTermModel, term_key(project_id, term)) for term in terms}
        prefetch.get_many(list(keys.values()))  # nothing read twice: the route may have them
        found: dict[str, dict[str, int] | None] = {}
        for term, key in keys.items():
            row = prefetch.get(key, SearchTermModel)
            if row is not None and row.too_common:
                found[term] = None
            else:
                raw = row.tasks.as_dict() if row and row.tasks else {}  # type: ignore[no-untyped-call]
                found[term] = {task_id: int(weight) for task_id, weight in raw.items()}
        return found

    @translate_aws_failures
    def put(self, project_id: str, term: str, task_id: str, weight: int) -> None:
        item = SearchTermModel(key=term_key(project_id, term))
        not_stop_word = SearchTermModel.too_common.does_not_exist() | (
            SearchTermModel.too_common == False  # noqa: E712
        )
        for _ in range(3):
            try:
                # Usually the word's map exists: one update.
                item.update(
                    actions=[_entry(task_id).set(weight)],
                    condition=not_stop_word & SearchTermModel.tasks.exists(),
                )
                return
            except UpdateError as exc:
                if (
                    exc.cause_response_code == "ValidationException"
                    and "size" in str(exc.cause).lower()
                ):
                    # Over 400 KB: the word is in too many tasks to narrow a search any more.
                    item.update(
                        actions=[
                            SearchTermModel.too_common.set(True),
                            SearchTermModel.tasks.remove(),
                        ]
                    )
                    return
                if not condition_failed(exc):
                    raise
            try:
                # No map yet (a new word), unless it became a stop word.
                item.update(
                    actions=[SearchTermModel.tasks.set({task_id: weight})],
                    condition=SearchTermModel.tasks.does_not_exist() & not_stop_word,
                )
                return
            except UpdateError as exc:
                if not condition_failed(exc):
                    raise
                if self._is_stop_word(item.key):
                    return
        raise RuntimeError(f"could not index {term!r}: the item keeps changing")

    @staticmethod
    def _is_stop_word(key: str) -> bool:
        try:
            return bool(SearchTermModel.get(key, consistent_read=True).too_common)
        except SearchTermModel.DoesNotExist:
            return False

    @translate_aws_failures
    def remove(self, project_id: str, term: str, task_id: str) -> None:
        item = SearchTermModel(key=term_key(project_id, term))
        try:
            item.update(
                actions=[_entry(task_id).remove()],
                condition=SearchTermModel.tasks.exists(),
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
