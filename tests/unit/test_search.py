from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.domain.errors import NotFound, ValidationFailed
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.search import index_terms, matches, query_words, rank, words
from chalicelib.domain.tasks import Task, TaskCreate, TaskUpdate
from chalicelib.domain.users import RegisterInput
from chalicelib.services.search import SearchIndexer, SearchService
from chalicelib.services.tasks import TaskService
from tests.fakes import (
    InMemorySearchIndex,
    InMemoryTaskRepository,
    NoPrefetch,
    refuse_internal_urls,
)
from tests.unit.conftest import World

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def task(**fields: object) -> Task:
    fields.setdefault("title", "T")
    return Task(
        id=new_id(), project_id="p", created_by="u", created_at=NOW, updated_at=NOW, **fields
    )  # type: ignore[arg-type]


class TestWords:
    def test_words_are_lowercased_distinct_and_punctuation_free(self) -> None:
        assert words("Deploy, the API-gateway! Don't deploy.") == [
            "deploy",
            "the",
            "api",
            "gateway",
            "don't",
        ]
        assert words("Ünïcode café 42") == ["ünïcode", "café", "42"]
        assert words("   ") == []

    def test_title_outweighs_tags_outweighs_description(self) -> None:
        terms = index_terms(
            task(title="Ship release", tags=("release", "ops"), description="ship it ops now")
        )
        assert terms == {"ship": 3, "release": 3, "ops": 2, "it": 1, "now": 1}

    def test_rank_needs_every_word_and_orders_by_weight(self) -> None:
        postings = {"ship": {"a": 3, "b": 1, "c": 1}, "release": {"a": 1, "b": 3}}
        assert rank(postings) == ["b", "a"]  # equal weights: the newer (larger) id first
        assert rank({"x": {"a": 1, "b": 2}}) == ["b", "a"]
        assert rank({}) == []

    def test_matches_checks_the_task_itself(self) -> None:
        subject = task(title="Ship it", tags=("Ops",))
        assert matches(subject, ["ship", "ops"])
        assert not matches(subject, ["ship", "deploy"])

    def test_query_words_are_bounded(self) -> None:
        assert len(query_words(" ".join(f"w{i}" for i in range(20)))) == 8


@pytest.fixture
def setup(
    world: World,
) -> tuple[World, TaskService, SearchService, SearchIndexer, InMemoryTaskRepository]:
    projects = world.users_repo.project_repo
    repo = InMemoryTaskRepository(projects)
    index = InMemorySearchIndex()
    return (
        world,
        TaskService(
            repo, projects, world.users_repo, NoPrefetch(), world.clock, refuse_internal_urls
        ),
        SearchService(index, repo, projects),
        SearchIndexer(index),
        repo,
    )


def test_indexing_follows_changes_and_search_ranks(setup) -> None:  # type: ignore[no-untyped-def]
    world, tasks, search, indexer, _ = setup
    me = world.auth.authenticate(
        world.auth.register(
            RegisterInput(email="a@x.io", password="long enough", name="A")
        ).access_token
    )
    first = tasks.create(me, TaskCreate(title="Deploy the API", description="after review"))
    second = tasks.create(me, TaskCreate(title="Review", description="deploy notes", tags=["api"]))
    third = tasks.create(me, TaskCreate(title="Unrelated"))
    for created in (first, second, third):
        assert indexer.apply(None, created) > 0
    hits = search.search(me, "deploy API", None, PageRequest())
    assert [t.id for t in hits.items] == [first.id, second.id]  # title hits weigh more
    changed = tasks.update(me, first.id, TaskUpdate(title="Ship the gateway"))
    indexer.apply(first, changed)
    assert [t.id for t in search.search(me, "deploy api", None, PageRequest()).items] == [second.id]
    assert indexer.apply(changed, changed) == 0  # a replay writes nothing new
    indexer.apply(second, None)
    assert search.search(me, "deploy api", None, PageRequest()).items == []


def test_pages_and_errors(setup) -> None:  # type: ignore[no-untyped-def]
    world, tasks, search, indexer, _ = setup
    me = world.auth.authenticate(
        world.auth.register(
            RegisterInput(email="a@x.io", password="long enough", name="A")
        ).access_token
    )
    for index in range(5):
        indexer.apply(None, tasks.create(me, TaskCreate(title=f"Report {index}")))
    first = search.search(me, "report", None, PageRequest(limit=3))
    rest = search.search(me, "report", None, PageRequest(limit=3, cursor=first.next_cursor))
    assert len(first.items) == 3
    assert len(rest.items) == 2
    assert rest.next_cursor is None
    with pytest.raises(ValidationFailed):
        search.search(me, "  ,, ", None, PageRequest())
    with pytest.raises(NotFound):
        search.search(me, "report", "someone-elses-project", PageRequest())
