"""Task search: keeping the word index in step with tasks, and answering queries."""

from __future__ import annotations

from chalicelib.domain.cursors import decode_cursor, encode_cursor
from chalicelib.domain.errors import NotFound
from chalicelib.domain.errors import validation_error as invalid
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import ProjectRole
from chalicelib.domain.search import index_terms, matches, query_words, rank
from chalicelib.domain.tasks import Task
from chalicelib.ports import PrefetchKey, ProjectRepository, SearchIndex, TaskRepository, reads
from chalicelib.services.access import ProjectAccess


class SearchIndexer:
    """Applies one task change to the index (called by the stream consumer, in order per task)."""

    def __init__(self, index: SearchIndex) -> None:
        self._index = index

    def apply(self, before: Task | None, after: Task | None) -> int:
        """Returns how many index entries it wrote (idempotent: a replay writes the same)."""
        subject = after or before
        if subject is None:
            return 0
        old = index_terms(before) if before else {}
        new = index_terms(after) if after else {}
        project_id, task_id = subject.project_id, subject.id
        writes = 0
        for term in old.keys() - new.keys():
            self._index.remove(project_id, term, task_id)
            writes += 1
        for term, weight in new.items():
            if old.get(term) != weight:
                self._index.put(project_id, term, task_id, weight)
                writes += 1
        return writes


class SearchService:
    def __init__(
        self, index: SearchIndex, tasks: TaskRepository, projects: ProjectRepository
    ) -> None:
        self._index = index
        self._tasks = tasks
        self._access = ProjectAccess(projects)

    @staticmethod
    def reads_for_search(
        principal: Principal, project_id: str | None, q: str | None
    ) -> list[PrefetchKey]:
        """First reads (the route fetches them with the session): the project searched, the
        caller's membership, and the index's entry of each word (its postings)."""
        project_id = project_id or principal.personal_project_id
        return [
            reads.project(project_id),
            reads.member(project_id, principal.user_id),
            *(reads.search_term(project_id, word) for word in query_words(q or "")),
        ]

    def search(
        self, principal: Principal, q: str, project_id: str | None, page: PageRequest
    ) -> Page[Task]:
        wanted = query_words(q)
        if not wanted:
            raise invalid(["query", "q"], "q needs at least one word")
        project_id = project_id or principal.personal_project_id
        try:
            self._access.require(principal.user_id, project_id, ProjectRole.VIEWER)
        except NotFound:
            raise NotFound("project not found") from None
        postings = self._index.postings(project_id, wanted)
        narrowing = {term: hits for term, hits in postings.items() if hits is not None}
        if not narrowing:
            raise invalid(["query", "q"], "every word of q is too common; add a rarer word")
        ranked = rank(narrowing)
        scope = f"search:{project_id}:{' '.join(wanted)}"
        start = decode_cursor(page.cursor, scope)
        offset = int(start["offset"]) if start else 0
        window = ranked[offset : offset + page.limit]
        found = self._tasks.get_many(window)
        # The index follows the tasks a moment behind: check each hit against the task itself.
        items = [found[t] for t in window if t in found and matches(found[t], wanted)]
        more = offset + page.limit < len(ranked)
        cursor = encode_cursor({"offset": offset + page.limit}, scope) if more else None
        return Page(items=items, next_cursor=cursor)
