"""One contract suite for the identity repositories, run on the in-memory fakes and on DynamoDB.

It proves the DynamoDB adapters behave, and that the fakes the unit tests use behave the same.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.dynamodb.identity import (
    MAX_KEPT_FAILURES,
    DynamoLoginAttempts,
    DynamoSessionRepository,
    DynamoUserRepository,
)
from chalicelib.domain.errors import BadRequest, EmailTaken, FirstAdminTaken, StaleVersion
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.users import Role, Session, User
from tests.fakes import InMemoryLoginAttempts, InMemorySessionRepository, InMemoryUserRepository

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "dynamodb"])
def repos(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "memory":
        sessions = InMemorySessionRepository()
        users = InMemoryUserRepository(sessions)
        return {"users": users, "sessions": sessions, "attempts": InMemoryLoginAttempts(users)}
    request.getfixturevalue("moto_aws")
    return {
        "users": DynamoUserRepository(),
        "sessions": DynamoSessionRepository(),
        "attempts": DynamoLoginAttempts(),
    }


def account(email: str) -> tuple[User, Project, Membership, Session]:
    user_id, project_id = new_id(), new_id()
    user = User(
        id=user_id,
        email=email,
        name="N",
        role=Role.MEMBER,
        timezone="UTC",
        password_hash="$argon2id$x",
        personal_project_id=project_id,
        created_at=NOW,
        updated_at=NOW,
    )
    project = Project(project_id, "Personal", "", user_id, NOW, NOW, personal=True)
    session = Session(new_id(), user_id, new_id(), NOW, NOW + timedelta(days=30))
    return user, project, Membership(project_id, user_id, ProjectRole.OWNER, NOW), session


class TestUsers:
    def test_create_then_read_by_id_and_email(self, repos: dict[str, Any]) -> None:
        user, project, owner, session = account("ada@example.com")
        repos["users"].create_account(user, project, owner, session, first_admin=False)
        assert repos["users"].get(user.id) == user
        assert repos["sessions"].get(session.id) == session
        assert repos["users"].get_by_email("ada@example.com") == user
        assert repos["users"].get_by_email("bob@example.com") is None
        assert repos["users"].get("missing") is None

    def test_email_claim_is_unique_and_nothing_half_written(self, repos: dict[str, Any]) -> None:
        first = account("ada@example.com")
        repos["users"].create_account(*first, first_admin=False)
        second = account("ada@example.com")
        with pytest.raises(EmailTaken):
            repos["users"].create_account(*second, first_admin=False)
        assert repos["users"].get(second[0].id) is None
        assert repos["sessions"].get(second[3].id) is None

    def test_first_admin_claim_is_taken_once(self, repos: dict[str, Any]) -> None:
        assert not repos["users"].first_admin_exists()
        repos["users"].create_account(*account("a@example.com"), first_admin=True)
        assert repos["users"].first_admin_exists()
        late = account("b@example.com")
        with pytest.raises(FirstAdminTaken):
            repos["users"].create_account(*late, first_admin=True)
        assert repos["users"].get(late[0].id) is None
        assert repos["users"].get_by_email("b@example.com") is None

    def test_save_is_conditional_on_the_version(self, repos: dict[str, Any]) -> None:
        user, *rest = account("ada@example.com")
        repos["users"].create_account(user, *rest, first_admin=False)
        saved = repos["users"].save(user.with_changes(name="New"))
        assert saved.version == 2
        assert repos["users"].get(user.id).name == "New"
        with pytest.raises(StaleVersion):
            repos["users"].save(user.with_changes(name="Stale"))
        assert repos["users"].get(user.id).name == "New"

    def test_list_by_prefix_pages_in_email_order(self, repos: dict[str, Any]) -> None:
        for name in ("carol", "alice", "alfred", "albert", "bob"):
            repos["users"].create_account(*account(f"{name}@example.com"), first_admin=False)
        emails: list[str] = []
        cursor = None
        while True:
            page = repos["users"].list_by_email_prefix("al", PageRequest(limit=2, cursor=cursor))
            emails += [u.email for u in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert emails == ["albert@example.com", "alfred@example.com", "alice@example.com"]
        everyone = repos["users"].list_by_email_prefix("", PageRequest(limit=100))
        assert len(everyone.items) == 5
        assert everyone.next_cursor is None

    def test_a_cursor_from_another_query_is_refused(self, repos: dict[str, Any]) -> None:
        for name in ("alice", "alfred", "albert"):
            repos["users"].create_account(*account(f"{name}@example.com"), first_admin=False)
        page = repos["users"].list_by_email_prefix("al", PageRequest(limit=1))
        with pytest.raises(BadRequest):
            repos["users"].list_by_email_prefix("b", PageRequest(limit=1, cursor=page.next_cursor))
        with pytest.raises(BadRequest):
            repos["users"].list_by_email_prefix("al", PageRequest(limit=1, cursor="garbage!"))


class TestSessions:
    def session(self) -> Session:
        return Session(new_id(), "user-1", "jti-1", NOW, NOW + timedelta(days=30))

    def test_rotate_only_from_the_current_jti(self, repos: dict[str, Any]) -> None:
        session = self.session()
        repos["sessions"].create(session)
        assert repos["sessions"].rotate(session.id, "jti-1", "jti-2")
        assert not repos["sessions"].rotate(session.id, "jti-1", "jti-3")
        assert repos["sessions"].get(session.id).refresh_jti == "jti-2"
        assert not repos["sessions"].rotate("missing", "jti-1", "jti-2")

    def test_revoked_sessions_do_not_rotate(self, repos: dict[str, Any]) -> None:
        session = self.session()
        repos["sessions"].create(session)
        repos["sessions"].revoke(session.id, NOW)
        repos["sessions"].revoke(session.id, NOW + timedelta(hours=1))  # idempotent
        stored = repos["sessions"].get(session.id)
        assert stored.revoked_at == NOW
        assert not stored.active
        assert not repos["sessions"].rotate(session.id, "jti-1", "jti-2")
        repos["sessions"].revoke("missing", NOW)  # no error, nothing created
        assert repos["sessions"].get("missing") is None

    def test_revoke_all_for_user_keeps_one(self, repos: dict[str, Any]) -> None:
        sessions = [self.session() for _ in range(3)]
        for session in sessions:
            repos["sessions"].create(session)
        repos["sessions"].revoke_all_for_user("user-1", NOW, keep=sessions[0].id)
        assert [repos["sessions"].get(s.id).active for s in sessions] == [True, False, False]


class TestLoginAttempts:
    def test_lookup_names_the_owner_and_the_failures(self, repos: dict[str, Any]) -> None:
        user, *rest = account("ada@example.com")
        repos["users"].create_account(user, *rest, first_admin=False)
        attempts = repos["attempts"]
        assert attempts.lookup("ada@example.com").user_id == user.id
        assert attempts.lookup("bob@example.com").user_id is None
        for minutes in (10, 0, 5):
            attempts.record_failure("ada@example.com", NOW + timedelta(minutes=minutes), NOW)
        state = attempts.lookup("ada@example.com")
        assert state.failures == [NOW + timedelta(minutes=m) for m in (0, 5, 10)]
        assert attempts.lookup("bob@example.com").failures == []

    def test_clear(self, repos: dict[str, Any]) -> None:
        attempts = repos["attempts"]
        attempts.record_failure("ada@example.com", NOW, NOW)
        attempts.clear("ada@example.com")
        assert attempts.lookup("ada@example.com").failures == []
        attempts.clear("never-failed@example.com")


def test_the_failure_list_stays_bounded(moto_aws: None) -> None:
    attempts = DynamoLoginAttempts()
    for second in range(MAX_KEPT_FAILURES + 5):
        at = NOW + timedelta(seconds=second)
        attempts.record_failure("ada@example.com", at, keep_since=at - timedelta(seconds=20))
    failures = attempts.lookup("ada@example.com").failures
    assert len(failures) <= MAX_KEPT_FAILURES
    assert failures[-1] == NOW + timedelta(seconds=MAX_KEPT_FAILURES + 4)


def test_every_model_shares_one_dynamodb_client(moto_aws: None) -> None:
    from chalicelib.adapters.dynamodb import connection, tables

    clients = {id(model._get_connection().connection.client) for model in tables.ALL_MODELS}
    assert clients == {id(connection.root().client)}
