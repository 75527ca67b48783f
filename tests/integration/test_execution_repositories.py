"""The execution repository contract, on the in-memory fake and on DynamoDB (moto).

moto runs a transaction by copying the tables and restoring them on a failed condition, so
concurrent writers can lose each other's writes there (never on DynamoDB). The concurrency test
serializes moto's writes the way the local stack does (`local.moto_patches`), standing in for
DynamoDB's own atomicity; what it checks is that the claim, not luck, makes one execution.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.dynamodb.comments import DynamoHistoryRepository
from chalicelib.adapters.dynamodb.executions import DynamoExecutionRepository
from chalicelib.adapters.dynamodb.janitor import DynamoJanitor
from chalicelib.domain.activity import EventType, HistoryEvent
from chalicelib.domain.errors import BadRequest, StaleVersion
from chalicelib.domain.executions import (
    Execution,
    ExecutionResult,
    ExecutionStatus,
    Slot,
    SlotTaken,
    Trigger,
    firing_execution_id,
    firing_key,
    new_execution_id,
)
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.tasks import new_task_id
from local import moto_patches
from tests.fakes import InMemoryExecutionRepository, InMemoryHistoryRepository

AT = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass
class Env:
    kind: str
    repo: Any
    history: Any
    project_id: str

    def execution(self, task_id: str, **fields: Any) -> Execution:
        fields.setdefault("trigger", Trigger.SCHEDULE)
        fields.setdefault("status", ExecutionStatus.QUEUED)
        return Execution(
            id=new_execution_id(self.project_id),
            task_id=task_id,
            project_id=self.project_id,
            created_at=AT,
            **fields,
        )

    def firing_execution(self, task_id: str, at: datetime, **fields: Any) -> Execution:
        """The execution of the firing (task, at): its id names the firing."""
        fields.setdefault("status", ExecutionStatus.RUNNING)
        return replace(
            self.execution(task_id, scheduled_for=at, **fields),
            id=firing_execution_id(self.project_id, task_id, at),
        )

    def event(self, execution: Execution) -> HistoryEvent:
        return HistoryEvent(
            new_id(),
            execution.task_id,
            EventType.EXECUTION_QUEUED,
            "scheduler",
            AT,
            {"execution_id": (None, execution.id)},
        )

    def task(self) -> str:
        return new_task_id(self.project_id)

    def events(self, task_id: str) -> list[HistoryEvent]:
        return list(self.history.find(task_id, PageRequest(limit=100)).items)


@pytest.fixture(params=["memory", "dynamodb"])
def env(request: pytest.FixtureRequest) -> Env:
    if request.param == "memory":
        repo = InMemoryExecutionRepository()
        history: Any = InMemoryHistoryRepository(repo.records)
        return Env("memory", repo, history, new_id())
    request.getfixturevalue("moto_aws")
    return Env("dynamodb", DynamoExecutionRepository(), DynamoHistoryRepository(), new_id())


@pytest.fixture
def serialized_moto(env: Env) -> Iterator[None]:
    if env.kind == "dynamodb":
        moto_patches.install(speedups=False)  # the thread-safety patches only
    try:
        yield
    finally:
        moto_patches.uninstall()


def ids(page: Any) -> list[str]:
    return [e.id for e in page.items]


class TestFirings:
    def test_three_deliveries_of_one_firing_make_one_execution(self, env: Env) -> None:
        task_id = env.task()
        answers = []
        for _ in range(3):
            execution = env.firing_execution(task_id, AT)
            answers.append(env.repo.create_for_firing(execution, [env.event(execution)]))
        first = answers[0][0]
        assert [created for _, created in answers] == [True, False, False]
        assert all(existing == first for existing, _ in answers)
        assert ids(env.repo.find_for_task(task_id, PageRequest())) == [first.id]
        assert [e.changes["execution_id"][1] for e in env.events(task_id)] == [first.id]
        assert env.repo.get(first.id) == first

    def test_another_scheduled_time_is_another_firing(self, env: Env) -> None:
        task_id = env.task()
        one, _ = env.repo.create_for_firing(env.firing_execution(task_id, AT))
        later = env.firing_execution(task_id, AT + timedelta(minutes=1))
        two, created = env.repo.create_for_firing(later)
        assert created
        assert one.id != two.id

    @pytest.mark.usefixtures("serialized_moto")
    def test_fifty_concurrent_deliveries_of_ten_firings_make_ten_executions(self, env: Env) -> None:
        task_id = env.task()
        times = [AT + timedelta(minutes=n) for n in range(10)]

        def deliver(n: int) -> tuple[Execution, bool]:
            at = times[n % 10]
            execution = env.firing_execution(task_id, at)
            return env.repo.create_for_firing(execution, [env.event(execution)])

        with ThreadPoolExecutor(max_workers=50) as pool:
            answers = list(pool.map(deliver, range(50)))
        assert sum(created for _, created in answers) == 10
        by_time: dict[datetime | None, set[str]] = {}
        for execution, _ in answers:
            by_time.setdefault(execution.scheduled_for, set()).add(execution.id)
        assert sorted(t for t in by_time if t) == times
        assert all(len(found) == 1 for found in by_time.values())
        stored = env.repo.find_for_task(task_id, PageRequest(limit=100))
        assert sorted(ids(stored)) == sorted(next(iter(s)) for s in by_time.values())
        assert len(env.events(task_id)) == 10


class TestListing:
    def test_newest_first_in_signed_pages_of_one_task(self, env: Env) -> None:
        task_id, other = env.task(), env.task()
        made = [
            env.repo.create(env.execution(task_id, trigger=Trigger.MANUAL)).id for _ in range(5)
        ]
        env.repo.create(env.execution(other))
        first = env.repo.find_for_task(task_id, PageRequest(limit=2))
        assert ids(first) == made[::-1][:2]
        assert first.next_cursor
        second = env.repo.find_for_task(task_id, PageRequest(limit=2, cursor=first.next_cursor))
        assert ids(second) == made[::-1][2:4]
        last = env.repo.find_for_task(task_id, PageRequest(limit=2, cursor=second.next_cursor))
        assert (ids(last), last.next_cursor) == (made[:1], None)
        assert ids(env.repo.find_for_task(other, PageRequest())) != []
        assert env.repo.find_for_task(env.task(), PageRequest()).items == []

    def test_an_edited_or_foreign_cursor_is_refused(self, env: Env) -> None:
        task_id, other = env.task(), env.task()
        for _ in range(3):
            env.repo.create(env.execution(task_id))
        cursor = env.repo.find_for_task(task_id, PageRequest(limit=1)).next_cursor
        assert cursor
        with pytest.raises(BadRequest):
            env.repo.find_for_task(other, PageRequest(cursor=cursor))
        edited = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
        with pytest.raises(BadRequest):
            env.repo.find_for_task(task_id, PageRequest(cursor=edited))


class TestUpdates:
    def test_a_run_round_trips_every_field(self, env: Env) -> None:
        task_id = env.task()
        queued = env.repo.create(env.execution(task_id, workflow_run_id="W1", scheduled_for=AT))
        assert env.repo.get(queued.id) == queued
        running = env.repo.update(queued, queued.moved_to(ExecutionStatus.RUNNING, AT, attempts=1))
        assert running.version == 2
        done = running.moved_to(
            ExecutionStatus.SUCCEEDED,
            AT + timedelta(seconds=2),
            attempts=2,
            result=ExecutionResult(201, 1234, "ok"),
        )
        saved = env.repo.update(running, done, [env.event(done)])
        assert saved == replace(done, version=3)
        assert len(env.events(task_id)) == 1
        assert env.repo.get(queued.id) == saved

    def test_a_stale_version_or_status_writes_nothing(self, env: Env) -> None:
        queued = env.repo.create(env.execution(env.task()))
        running = env.repo.update(queued, queued.moved_to(ExecutionStatus.RUNNING, AT))
        with pytest.raises(StaleVersion):
            env.repo.update(queued, queued.moved_to(ExecutionStatus.CANCELLED, AT))
        # Same version, another status: still not the stored execution.
        with pytest.raises(StaleVersion):
            env.repo.update(
                replace(running, status=ExecutionStatus.QUEUED),
                running.moved_to(ExecutionStatus.FAILED, AT),
            )
        assert env.repo.get(queued.id) == running

    def test_a_finished_execution_never_changes_again(self, env: Env) -> None:
        queued = env.repo.create(env.execution(env.task()))
        failed = env.repo.update(
            queued, queued.moved_to(ExecutionStatus.FAILED, AT, error="no route to host")
        )
        # Writers that read it before it finished lose.
        with pytest.raises(StaleVersion):
            env.repo.update(queued, queued.moved_to(ExecutionStatus.RUNNING, AT))
        # A writer that pretends it is still running (at its current version) loses too.
        with pytest.raises(StaleVersion):
            env.repo.update(
                replace(failed, status=ExecutionStatus.RUNNING),
                replace(failed, status=ExecutionStatus.SUCCEEDED),
            )
        assert env.repo.get(queued.id) == failed

    def test_unknown_ids_are_none(self, env: Env) -> None:
        assert env.repo.get(new_execution_id(env.project_id)) is None
        assert env.repo.get("") is None


class TestLeases:
    def test_expired_leases_are_found_and_nothing_else(self, env: Env) -> None:
        task = env.task()
        expired = [
            env.repo.create(
                env.execution(task, status=ExecutionStatus.RUNNING, lease_expires_at=AT - delay)
            )
            for delay in (timedelta(seconds=1), timedelta(hours=3))
        ]
        held = env.repo.create(
            env.execution(task, status=ExecutionStatus.RUNNING, lease_expires_at=AT + DAY)
        )
        env.repo.create(env.execution(task, status=ExecutionStatus.RUNNING))  # the machine's
        found = env.repo.find_expired_leases(AT, 100)
        assert sorted(e.id for e in found) == sorted(e.id for e in expired)
        assert {e.lease_expires_at for e in found} == {e.lease_expires_at for e in expired}
        assert len(env.repo.find_expired_leases(AT, 1)) == 1
        assert [e.id for e in env.repo.find_expired_leases(AT + 2 * DAY, 100) if e.id == held.id]

    def test_a_write_that_ends_the_lease_takes_it_out_of_the_search(self, env: Env) -> None:
        task = env.task()
        leased = env.repo.create(
            env.execution(task, status=ExecutionStatus.RUNNING, lease_expires_at=AT)
        )
        assert [e.id for e in env.repo.find_expired_leases(AT + DAY, 100)] == [leased.id]
        done = env.repo.update(leased, leased.moved_to(ExecutionStatus.SUCCEEDED, AT, attempts=1))
        assert done.lease_expires_at is None
        assert env.repo.find_expired_leases(AT + DAY, 100) == []
        stored = env.repo.get(leased.id)
        assert stored is not None
        assert stored.lease_expires_at is None


class TestOverlapSlots:
    def firing(self, env: Env, task_id: str, minute: int, slot: Slot | None) -> Execution:
        execution = env.firing_execution(task_id, AT + timedelta(minutes=minute))
        stored, created = env.repo.create_for_firing(execution, [], slot)
        assert created
        return stored

    def test_one_execution_holds_a_slot_and_a_refused_firing_writes_nothing(self, env: Env) -> None:
        task_id = env.task()
        first = self.firing(env, task_id, 0, Slot.ACTIVE)
        assert env.repo.slot_owner(task_id, Slot.ACTIVE) == first.id
        refused = env.firing_execution(task_id, AT + timedelta(minutes=5))
        with pytest.raises(SlotTaken) as taken:
            env.repo.create_for_firing(refused, [env.event(refused)], Slot.ACTIVE)
        assert taken.value.slot is Slot.ACTIVE
        assert env.repo.get(refused.id) is None
        assert env.events(task_id) == []
        # The firing is not claimed: it can still be recorded (e.g. as skipped).
        skipped = replace(refused, status=ExecutionStatus.SKIPPED)
        assert env.repo.create_for_firing(skipped) == (skipped, True)

    def test_a_repeated_delivery_is_a_duplicate_even_when_the_slot_is_held(self, env: Env) -> None:
        task_id = env.task()
        first = self.firing(env, task_id, 0, Slot.ACTIVE)
        again = env.firing_execution(task_id, AT)  # the same firing: its slot is its own
        stored, created = env.repo.create_for_firing(again, [], Slot.ACTIVE)
        assert (stored.id, created) == (first.id, False)
        assert env.repo.slot_owner(task_id, Slot.ACTIVE) == first.id

    def test_a_delivery_after_the_end_takes_no_slot_for_good(self, env: Env) -> None:
        task_id = env.task()
        first = self.firing(env, task_id, 0, Slot.ACTIVE)
        env.repo.update(first, first.moved_to(ExecutionStatus.SUCCEEDED, AT, attempts=1))
        assert env.repo.release_slot(task_id, first.id)
        stored, created = env.repo.create_for_firing(
            env.firing_execution(task_id, AT), [], Slot.ACTIVE
        )
        assert (stored.id, stored.status, created) == (first.id, ExecutionStatus.SUCCEEDED, False)
        assert env.repo.slot_owner(task_id, Slot.ACTIVE) is None

    def test_a_slot_is_held_with_when_it_was_taken(self, env: Env) -> None:
        task_id = env.task()
        first = self.firing(env, task_id, 0, Slot.ACTIVE)
        assert env.repo.slot_holder(task_id, Slot.ACTIVE) == (first.id, first.created_at)
        assert env.repo.slot_holder(task_id, Slot.BUFFERED) is None

    def test_only_the_holder_releases_and_the_buffered_one_moves_up(self, env: Env) -> None:
        task_id = env.task()
        running = self.firing(env, task_id, 0, Slot.ACTIVE)
        waiting = self.firing(env, task_id, 5, Slot.BUFFERED)
        assert env.repo.promote_buffered(task_id) is None  # the active slot is held
        assert env.repo.release_slot(task_id, waiting.id) is False
        assert env.repo.slot_owner(task_id, Slot.ACTIVE) == running.id
        assert env.repo.release_slot(task_id, running.id) is True
        assert env.repo.release_slot(task_id, running.id) is False
        assert env.repo.promote_buffered(task_id) == waiting.id
        assert env.repo.slot_owner(task_id, Slot.ACTIVE) == waiting.id
        assert env.repo.slot_owner(task_id, Slot.BUFFERED) is None
        assert env.repo.promote_buffered(task_id) is None  # nothing waits any more

    def test_the_active_slot_is_refused_while_an_execution_waits(self, env: Env) -> None:
        task_id = env.task()
        running = self.firing(env, task_id, 0, Slot.ACTIVE)
        waiting = self.firing(env, task_id, 5, Slot.BUFFERED)
        # The runner died after releasing its slot, before the waiting one moved up.
        assert env.repo.release_slot(task_id, running.id)
        late = env.firing_execution(task_id, AT + timedelta(minutes=10))
        with pytest.raises(SlotTaken):
            env.repo.create_for_firing(late, [], Slot.ACTIVE)
        assert env.repo.get(late.id) is None
        assert env.repo.promote_buffered(task_id) == waiting.id

    def test_without_waiting_first_a_buffered_execution_is_not_checked(self, env: Env) -> None:
        """Overlap `skip` buffers nothing: its claim does not pay for the check."""
        task_id = env.task()
        running = self.firing(env, task_id, 0, Slot.ACTIVE)
        self.firing(env, task_id, 5, Slot.BUFFERED)  # left by a policy since changed
        assert env.repo.release_slot(task_id, running.id)
        late = env.firing_execution(task_id, AT + timedelta(minutes=10))
        stored, created = env.repo.create_for_firing(late, [], Slot.ACTIVE, waiting_first=False)
        assert (stored.id, created) == (late.id, True)
        assert env.repo.slot_owner(task_id, Slot.ACTIVE) == late.id

    def test_slots_are_per_task(self, env: Env) -> None:
        one, two = env.task(), env.task()
        first = self.firing(env, one, 0, Slot.ACTIVE)
        second = self.firing(env, two, 0, Slot.ACTIVE)
        assert env.repo.slot_owner(one, Slot.ACTIVE) == first.id
        assert env.repo.slot_owner(two, Slot.ACTIVE) == second.id


def test_the_janitor_purges_a_deleted_tasks_executions(moto_aws: None) -> None:
    repo = DynamoExecutionRepository()
    project_id = new_id()
    env = Env("dynamodb", repo, DynamoHistoryRepository(), project_id)
    task_id, other = env.task(), env.task()
    mine = [repo.create(env.execution(task_id)) for _ in range(30)]
    kept = repo.create(env.execution(other))
    assert DynamoJanitor().purge_task(task_id) >= 30
    assert all(repo.get(e.id) is None for e in mine)
    assert repo.get(kept.id) == kept
    assert DynamoJanitor().purge_task(task_id) == 0
    # The task's overlap slots go with it.
    waiting = env.firing_execution(task_id, AT, status=ExecutionStatus.QUEUED)
    repo.create_for_firing(waiting, [], Slot.BUFFERED)
    DynamoJanitor().purge_task(task_id)
    assert repo.slot_owner(task_id, Slot.BUFFERED) is None


def test_a_tasks_firing_writes_no_claim_of_its_own(moto_aws: None) -> None:
    """The execution is the claim; the overlap slot lasts as long as its run (no TTL)."""
    from chalicelib.adapters.dynamodb.executions import firing_claim
    from chalicelib.adapters.dynamodb.models import ClaimModel

    repo = DynamoExecutionRepository()
    env = Env("dynamodb", repo, DynamoHistoryRepository(), new_id())
    task_id = env.task()
    repo.create_for_firing(env.firing_execution(task_id, AT), [], Slot.ACTIVE)
    with pytest.raises(ClaimModel.DoesNotExist):
        ClaimModel.get(firing_claim(firing_key(task_id, AT)))
    slot = ClaimModel.get(f"active#{task_id}")
    assert slot.expires_at is None
