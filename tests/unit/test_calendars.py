"""Calendar feeds on fakes: the token scheme, tasks as events, the feeds' rules and rendering."""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import icalendar
import pytest

from chalicelib.api import ical
from chalicelib.api.calendar import redact_path
from chalicelib.domain import calendars
from chalicelib.domain.calendars import FEED_MAX_EVENTS, FEED_NOT_FOUND, CalendarKeys, Feed
from chalicelib.domain.errors import NotFound, StaleVersion
from chalicelib.domain.model import new_id
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.tasks import Priority, Status, Task
from chalicelib.domain.users import RegisterInput, User
from chalicelib.services.auth import AuthService, LoginPolicy
from chalicelib.services.calendars import CalendarService
from tests.fakes import (
    FakeClock,
    InMemoryCalendarRepository,
    InMemoryLoginAttempts,
    InMemorySessionRepository,
    InMemoryTaskRepository,
    InMemoryUserRepository,
    NoPrefetch,
    fast_hasher,
)
from tests.unit.conftest import make_tokens

KEY = b"k" * 32
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TOKEN_ALPHABET = set(string.ascii_letters + string.digits + "-_")


def a_task(project_id: str, title: str = "Task", **fields: object) -> Task:
    created = fields.pop("created_at", NOW - timedelta(days=1))
    return Task(
        id=new_id() + project_id,
        project_id=project_id,
        title=title,
        created_by="someone",
        created_at=created,  # type: ignore[arg-type]
        updated_at=fields.pop("updated_at", NOW),  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


# ---- the token --------------------------------------------------------------------------------


class TestTokens:
    def test_a_token_is_43_url_safe_characters_derived_from_user_and_nonce(self) -> None:
        token = calendars.derive_token(KEY, "user", "nonce")
        assert len(token) == calendars.TOKEN_LENGTH == 43
        assert set(token) <= TOKEN_ALPHABET
        assert calendars.plausible_token(token)
        assert token == calendars.derive_token(KEY, "user", "nonce")
        assert token != calendars.derive_token(KEY, "user", "other nonce")
        assert token != calendars.derive_token(KEY, "other user", "nonce")
        assert token != calendars.derive_token(b"another key" * 3, "user", "nonce")

    def test_the_lookup_is_the_tokens_sha256(self) -> None:
        token = calendars.derive_token(KEY, "user", "nonce")
        lookup = calendars.lookup_of(token)
        assert len(lookup) == 64
        assert token not in lookup
        assert lookup == calendars.lookup_of(token)

    def test_nonces_are_random(self) -> None:
        nonces = {calendars.new_nonce() for _ in range(100)}
        assert len(nonces) == 100
        assert all(len(n) == 2 * calendars.NONCE_BYTES for n in nonces)

    @pytest.mark.parametrize(
        "value", ["", "A" * 42, "A" * 44, "A" * 42 + "=", "A" * 42 + "/", "A" * 42 + "."]
    )
    def test_anything_but_the_shape_of_a_token_is_refused_at_once(self, value: str) -> None:
        assert not calendars.plausible_token(value)

    def test_tokens_are_compared_in_constant_time_and_exactly(self) -> None:
        token = calendars.derive_token(KEY, "user", "nonce")
        assert calendars.same_token(token, token)
        assert not calendars.same_token(token, token[:-1] + ("A" if token[-1] != "A" else "B"))

    def test_paths_are_redacted_for_logs(self) -> None:
        token = calendars.derive_token(KEY, "user", "nonce")
        line = f'"GET /api/v1/calendar/{token}/projects/P.ics HTTP/1.1" 200 -'
        assert token not in redact_path(line)
        assert "/calendar/[redacted]/projects/P.ics" in redact_path(line)
        assert redact_path(f"/api/v1/calendar/{token}.ics") == "/api/v1/calendar/[redacted]"
        assert redact_path("/api/v1/tasks/1") == "/api/v1/tasks/1"


# ---- tasks as events --------------------------------------------------------------------------


class TestEvents:
    def test_a_plain_due_date_is_an_all_day_event_in_the_owners_zone(self) -> None:
        # 2026-12-01 in Paris, as a plain date becomes: 23:59:59 there (22:59:59Z).
        due = datetime(2026, 12, 1, 22, 59, 59, tzinfo=UTC)
        event = calendars.event_of(a_task("P", due_date=due), "Europe/Paris")
        assert event.all_day
        assert (event.start, event.end) == (date(2026, 12, 1), date(2026, 12, 2))
        # The same instant seen from another zone is a time of day there.
        timed = calendars.event_of(a_task("P", due_date=due), "UTC")
        assert not timed.all_day
        assert (timed.start, timed.end) == (due, due + timedelta(minutes=30))

    def test_any_other_due_date_is_a_half_hour_event_starting_then(self) -> None:
        due = datetime(2026, 12, 1, 9, 15, tzinfo=UTC)
        event = calendars.event_of(a_task("P", due_date=due), "Europe/Paris")
        assert (event.start, event.end) == (due, due + calendars.TIMED_EVENT_LENGTH)
        assert event.start.tzinfo is UTC  # type: ignore[union-attr]

    def test_the_event_says_what_the_task_says(self) -> None:
        task = a_task(
            "P",
            "Release\x00 notes\x1b",
            due_date=NOW,
            status=Status.CANCELLED,
            priority=Priority.URGENT,
            tags=("docs", "q4"),
            description="x" * 5_000,
        )
        event = calendars.event_of(task, "UTC")
        assert event.uid == f"{task.id}@taskbeat"
        assert event.summary == "Release notes"  # no control characters in TEXT
        assert event.cancelled
        assert event.priority == 1
        assert event.categories == ("docs", "q4")
        assert event.description.startswith("Status: cancelled · Priority: urgent · Tags: docs, q4")
        assert len(event.description) < calendars.DESCRIPTION_MAX + 100
        assert event.description.endswith("…")
        assert (event.stamp, event.created) == (task.updated_at, task.created_at)

    def test_priorities_map_to_icalendar_priorities(self) -> None:
        ranks = [calendars.ICAL_PRIORITY[p] for p in Priority]
        assert ranks == [9, 5, 3, 1]  # low .. urgent: 9 is the lowest, 1 the highest

    def test_a_feed_keeps_the_window_in_due_order_and_at_most_the_limit(self) -> None:
        since = NOW - calendars.FEED_WINDOW
        late = a_task("P", "late", due_date=NOW + timedelta(days=5))
        early = a_task("P", "early", due_date=since)
        old = a_task("P", "old", due_date=since - timedelta(seconds=1))
        undated = a_task("P", "undated")
        feed = calendars.build_feed("Mine", "UTC", [late, undated, old, early], since)
        assert [e.summary for e in feed.events] == ["early", "late"]
        many = [a_task("P", due_date=NOW + timedelta(minutes=i)) for i in range(1_005)]
        assert len(calendars.build_feed("Many", "UTC", many, since).events) == FEED_MAX_EVENTS


# ---- RFC 5545 text ----------------------------------------------------------------------------


class TestRendering:
    def feed(self) -> Feed:
        tasks = [
            a_task("P", "Ship it, now; " + "very " * 40, due_date=NOW, tags=("a,b",)),
            a_task("P", "All day", due_date=datetime(2026, 12, 1, 23, 59, 59, tzinfo=UTC)),
        ]
        return calendars.build_feed("Taskbeat: Ada", "UTC", tasks, NOW - timedelta(days=1))

    def test_the_text_is_a_calendar_icalendar_reads_back(self) -> None:
        text = ical.render(self.feed())
        parsed = icalendar.Calendar.from_ical(text)
        assert str(parsed["PRODID"]) == ical.PRODID
        assert str(parsed["X-WR-CALNAME"]) == "Taskbeat: Ada"
        timed, all_day = parsed.events
        assert str(timed["SUMMARY"]).startswith("Ship it, now; very")
        assert timed.decoded("DTSTART") == NOW
        assert all_day.decoded("DTSTART") == date(2026, 12, 1)
        assert all_day.decoded("DTEND") == date(2026, 12, 2)

    def test_lines_end_in_crlf_and_long_ones_are_folded(self) -> None:
        raw = ical.render(self.feed()).encode()
        lines = raw.split(b"\r\n")
        assert b"\n" not in b"".join(lines)
        assert max(len(line) for line in lines) <= 75
        assert any(line.startswith(b" ") for line in lines), "the long summary is folded"
        assert b"SUMMARY:Ship it\\, now\\; very" in raw  # TEXT escaping

    def test_the_same_feed_gives_the_same_bytes(self) -> None:
        feed = self.feed()
        assert ical.render(feed) == ical.render(feed)

    def test_an_empty_feed_is_a_calendar_too(self) -> None:
        text = ical.render(Feed("Empty", "UTC", ()))
        assert icalendar.Calendar.from_ical(text).events == []


# ---- the service ------------------------------------------------------------------------------


@dataclass
class World:
    clock: FakeClock
    users: InMemoryUserRepository
    tasks: InMemoryTaskRepository
    repo: InMemoryCalendarRepository
    keys: CalendarKeys
    auth: AuthService
    calendars: CalendarService

    def register(self, name: str) -> User:
        result = self.auth.register(
            RegisterInput(email=f"{name}@example.com", password="correct horse", name=name)
        )
        return result.user

    def principal(self, user: User) -> Principal:
        return Principal(user.id, "session", user.personal_project_id)

    def token(self, user: User) -> str:
        stored = self.users.get(user.id)
        assert stored is not None
        return self.calendars.token_of(stored)[1]

    def team(self, owner: User, *members: tuple[User, ProjectRole]) -> str:
        project = Project(new_id(), "Team", "", owner.id, NOW, NOW)
        self.users.project_repo.create(
            project, Membership(project.id, owner.id, ProjectRole.OWNER, NOW)
        )
        for user, role in members:
            self.users.project_repo.add_member(Membership(project.id, user.id, role, NOW))
        return project.id

    def add(self, task: Task) -> Task:
        self.tasks.tasks[task.id] = task
        return task


@pytest.fixture
def world() -> World:
    clock = FakeClock(NOW)
    sessions = InMemorySessionRepository()
    users = InMemoryUserRepository(sessions)
    tasks = InMemoryTaskRepository(users.project_repo)
    repo = InMemoryCalendarRepository(users, tasks)
    keys = CalendarKeys(lambda: KEY)
    auth = AuthService(
        users,
        sessions,
        InMemoryLoginAttempts(users),
        fast_hasher(),
        make_tokens(clock),
        clock,
        LoginPolicy(),
        keys,
    )
    service = CalendarService(users, repo, users.project_repo, NoPrefetch(), clock, keys)
    return World(clock, users, tasks, repo, keys, auth, service)


class TestTheToken:
    def test_registration_makes_the_key_and_its_lookup_together(self, world: World) -> None:
        ada = world.register("ada")
        assert ada.calendar_nonce is not None
        token = world.keys.token(ada.id, ada.calendar_nonce)
        assert world.users.claims[f"calendar#{calendar_lookup(token)}"] == ada.id
        stored, shown = world.calendars.token_of(ada)
        assert (stored, shown) == (ada, token)  # reading it writes nothing

    def test_an_older_account_gets_its_key_once_on_first_read(self, world: World) -> None:
        ada = world.register("ada")
        legacy = ada.with_changes(calendar_nonce=None)
        world.users.users[ada.id] = legacy
        stored, token = world.calendars.token_of(legacy)
        assert stored.version == legacy.version + 1
        assert stored.updated_at == legacy.updated_at  # nothing the user changed
        assert world.calendars.token_of(stored) == (stored, token)
        assert world.calendars.user_feed(token).name == "Taskbeat: ada"

    def test_two_first_reads_at_once_agree_on_one_token(self, world: World) -> None:
        ada = world.register("ada")
        legacy = ada.with_changes(calendar_nonce=None)
        world.users.users[ada.id] = legacy
        _, first = world.calendars.token_of(legacy)
        # The second read saw the account before the first wrote: its write loses, it re-reads.
        stored, second = world.calendars.token_of(legacy)
        assert second == first
        assert stored.version == legacy.version + 1

    def test_rotation_replaces_the_token_and_its_lookup(self, world: World) -> None:
        ada = world.register("ada")
        old = world.token(ada)
        new = world.calendars.rotate(world.principal(ada))
        assert new != old
        assert world.token(ada) == new
        stored = world.users.get(ada.id)
        assert stored is not None
        assert (stored.version, stored.updated_at) == (ada.version + 1, NOW)
        assert f"calendar#{calendar_lookup(old)}" not in world.users.claims
        with pytest.raises(NotFound, match=FEED_NOT_FOUND):
            world.calendars.user_feed(old)
        world.calendars.user_feed(new)

    def test_rotation_retries_a_lost_race(
        self, world: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ada = world.register("ada")
        real = world.repo.set_key
        lost: list[bool] = []

        def once_stale(*args: object) -> User:
            if not lost:
                lost.append(True)
                raise StaleVersion(ada.id)
            return real(*args)  # type: ignore[arg-type]

        monkeypatch.setattr(world.repo, "set_key", once_stale)
        token = world.calendars.rotate(world.principal(ada))
        assert lost == [True]
        assert world.token(ada) == token


class TestFeeds:
    def test_the_user_feed_has_the_tasks_assigned_in_projects_the_user_is_in(
        self, world: World
    ) -> None:
        ada, bob = world.register("ada"), world.register("bob")
        team = world.team(bob, (ada, ProjectRole.MEMBER))
        other = world.team(bob)
        mine = world.add(a_task(ada.personal_project_id, due_date=NOW, assignee_id=ada.id))
        in_team = world.add(a_task(team, due_date=NOW, assignee_id=ada.id))
        world.add(a_task(team, due_date=NOW, assignee_id=bob.id))
        # Assigned to ada once, in a project she is not in (left, say): left out.
        world.add(a_task(other, due_date=NOW, assignee_id=ada.id))
        feed = world.calendars.user_feed(world.token(ada))
        assert {e.uid for e in feed.events} == {f"{mine.id}@taskbeat", f"{in_team.id}@taskbeat"}
        assert world.repo.reads == ["owner", "assigned"]

    def test_the_project_feed_is_for_members_only_and_says_nothing_else(self, world: World) -> None:
        ada, bob, eve = world.register("ada"), world.register("bob"), world.register("eve")
        team = world.team(ada, (bob, ProjectRole.VIEWER))
        dated = world.add(a_task(team, due_date=NOW))
        world.add(a_task(team))
        feed = world.calendars.project_feed(world.token(bob), team)
        assert [e.uid for e in feed.events] == [f"{dated.id}@taskbeat"]
        assert feed.name == "Taskbeat: Team"
        refusals = [
            (world.token(eve), team),  # not a member
            (world.token(bob), new_id()),  # no such project
            (world.token(bob), ""),  # not even an id
            ("C" * 43, team),  # no such token
        ]
        for token, project in refusals:
            with pytest.raises(NotFound) as refused:
                world.calendars.project_feed(token, project)
            assert refused.value.message == FEED_NOT_FOUND
        world.users.project_repo.remove_member(team, bob.id)
        with pytest.raises(NotFound, match=FEED_NOT_FOUND):
            world.calendars.project_feed(world.token(bob), team)

    def test_a_malformed_token_costs_no_read(self, world: World) -> None:
        for token in ("", "short", "A" * 42 + "!"):
            with pytest.raises(NotFound, match=FEED_NOT_FOUND):
                world.calendars.user_feed(token)
        assert world.repo.reads == []

    def test_a_lookup_left_behind_opens_nothing(self, world: World) -> None:
        """Rotation deletes the old lookup in its transaction; were one ever left behind, the
        token it names is still checked against the user's current nonce."""
        ada = world.register("ada")
        old = world.token(ada)
        world.calendars.rotate(world.principal(ada))
        world.users.claims[f"calendar#{calendar_lookup(old)}"] = ada.id
        with pytest.raises(NotFound, match=FEED_NOT_FOUND):
            world.calendars.user_feed(old)

    def test_the_window_moves_with_the_clock(self, world: World) -> None:
        ada = world.register("ada")
        world.add(a_task(ada.personal_project_id, due_date=NOW, assignee_id=ada.id))
        token = world.token(ada)
        assert len(world.calendars.user_feed(token).events) == 1
        world.clock.advance(days=91)
        assert world.calendars.user_feed(token).events == ()


def calendar_lookup(token: str) -> str:
    return calendars.lookup_of(token)
