"""In-memory implementations of the ports, for unit tests of services.

The repository contract suite (tests/integration/test_repository_contract.py) runs the same
tests against these and the DynamoDB adapters, so the fakes cannot drift from the real thing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from chalicelib.adapters.dynamodb.pagination import decode_cursor, encode_cursor
from chalicelib.adapters.passwords import Argon2PasswordHasher
from chalicelib.domain.errors import EmailTaken, FirstAdminTaken, StaleVersion
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.projects import Membership, Project
from chalicelib.domain.users import Session, User
from chalicelib.ports import LoginState, PrefetchKey


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


def fast_hasher() -> Argon2PasswordHasher:
    """Real argon2id with tiny costs: tests stay fast and still exercise the real library."""
    return Argon2PasswordHasher(time_cost=1, memory_cost_kib=8, parallelism=1)


class InMemoryUserRepository:
    def __init__(self, sessions: InMemorySessionRepository) -> None:
        self.sessions = sessions
        self.users: dict[str, User] = {}
        self.claims: dict[str, str] = {}
        self.projects: dict[str, Project] = {}
        self.memberships: dict[tuple[str, str], Membership] = {}
        self._lock = threading.Lock()

    def create_account(
        self,
        user: User,
        personal_project: Project,
        owner: Membership,
        session: Session,
        *,
        first_admin: bool,
    ) -> None:
        with self._lock:
            if f"email#{user.email}" in self.claims:
                raise EmailTaken(user.email)
            if first_admin and "system#first-admin" in self.claims:
                raise FirstAdminTaken()
            self.claims[f"email#{user.email}"] = user.id
            if first_admin:
                self.claims["system#first-admin"] = user.id
            self.users[user.id] = user
            self.projects[personal_project.id] = personal_project
            self.memberships[(owner.project_id, owner.user_id)] = owner
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
