"""API tokens on the in-memory adapters: the token's format, the service that makes, lists and
revokes them, and how `AuthService` checks one (scopes, expiry, revocation, last use)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib import bootstrap
from chalicelib.domain import api_tokens
from chalicelib.domain.api_tokens import Scope, TokenCreate
from chalicelib.domain.errors import (
    Conflict,
    Forbidden,
    InsufficientScope,
    NotFound,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from chalicelib.domain.model import PageRequest
from chalicelib.domain.principals import Principal
from chalicelib.domain.users import RegisterInput
from chalicelib.ports import reads
from tests.fakes import FakeClock, InMemoryAdapters, in_memory_settings


class Setup:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.adapters = InMemoryAdapters(self.clock)
        self.container = bootstrap.wire(in_memory_settings(), self.adapters)
        self.auth = self.container.auth
        self.service = self.container.api_tokens

    def register(self, email: str) -> Principal:
        result = self.auth.register(
            RegisterInput(email=email, password="correct horse battery", name="N")
        )
        return self.auth.authenticate(result.access_token)

    def create(self, who: Principal, *scopes: str, **fields: Any) -> api_tokens.ApiToken:
        command = TokenCreate(name="script", scopes=list(scopes or ("read",)), **fields)
        created = self.service.create(who, command)
        self.last_secret = created.secret_token
        return created.token


@pytest.fixture
def s() -> Setup:
    return Setup()


@pytest.fixture
def ada(s: Setup) -> Principal:
    return s.register("ada@example.com")  # the first: admin


@pytest.fixture
def bob(s: Setup, ada: Principal) -> Principal:
    return s.register("bob@example.com")


class TestFormat:
    def test_a_token_takes_apart_into_what_it_was_made_of(self) -> None:
        token_id = api_tokens.new_token_id("01HV0000000000000000000000")
        secret = api_tokens.new_secret()
        whole = api_tokens.format_token(token_id, "01HV0000000000000000000001", secret)
        assert api_tokens.is_api_token(whole)
        parsed = api_tokens.parse_token(whole)
        assert parsed is not None
        assert parsed.token_id == token_id
        assert parsed.user_id == "01HV0000000000000000000000"
        assert parsed.personal_project_id == "01HV0000000000000000000001"
        assert parsed.secret == secret
        assert secret not in repr(parsed)

    @pytest.mark.parametrize(
        "bearer", ["tb_", "tb_x", "tb_" + "0" * 78 + "_short", "tb_" + "Z" * 78 + "_" + "a" * 43]
    )
    def test_a_malformed_token_parses_to_nothing(self, bearer: str) -> None:
        assert api_tokens.parse_token(bearer) is None

    def test_the_secret_is_compared_by_its_hash(self) -> None:
        stored = api_tokens.hash_secret("s3cret")
        assert len(stored) == 64
        assert api_tokens.secret_matches("s3cret", stored)
        assert not api_tokens.secret_matches("s3cres", stored)
        assert api_tokens.user_of("nope") is None

    @pytest.mark.parametrize(
        "fields",
        [
            {"name": " ", "scopes": ["read"]},
            {"name": "a", "scopes": []},
            {"name": "a", "scopes": ["run", "run"]},
            {"name": "a", "scopes": ["read", "write", "run", "read"]},
            {"name": "a", "scopes": ["read"], "expires_at": "2030-01-01T00:00:00"},
        ],
    )
    def test_bad_input_fails_validation(self, fields: Any) -> None:
        with pytest.raises(ValidationError):
            TokenCreate.model_validate(fields)


class TestService:
    def test_create_stores_a_hash_and_shows_the_secret_once(self, s: Setup, ada: Principal) -> None:
        token = s.create(ada, "read", "run")
        stored = s.adapters.api_tokens.tokens[token.id]
        secret = s.last_secret[len("tb_") + 79 :]
        assert stored.secret_hash == api_tokens.hash_secret(secret)
        assert s.last_secret.startswith(token.prefix)
        assert token.scopes == {Scope.READ, Scope.RUN}
        assert token.user_id == ada.user_id
        assert token.personal_project_id == ada.personal_project_id

    def test_an_expiry_in_the_past_is_422(self, s: Setup, ada: Principal) -> None:
        with pytest.raises(ValidationFailed) as caught:
            s.create(ada, expires_at=s.clock.now())
        assert caught.value.details[0]["loc"] == ["body", "expires_at"]

    def test_the_cap_is_a_conflict(
        self, s: Setup, ada: Principal, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(api_tokens, "MAX_TOKENS_PER_USER", 3)
        for _ in range(3):
            s.create(ada)
        with pytest.raises(Conflict, match="revoke one"):
            s.create(ada)

    def test_lists_are_ones_own_newest_first(
        self, s: Setup, ada: Principal, bob: Principal
    ) -> None:
        first, second = s.create(ada), s.create(ada)
        s.create(bob)
        page = s.service.list_mine(ada, PageRequest(limit=1))
        assert [t.id for t in page.items] == [second.id]
        rest = s.service.list_mine(ada, PageRequest(limit=1, cursor=page.next_cursor))
        assert [t.id for t in rest.items] == [first.id]
        assert rest.next_cursor is None

    def test_revoking_another_users_token_is_404(
        self, s: Setup, ada: Principal, bob: Principal
    ) -> None:
        theirs = s.create(bob)
        with pytest.raises(NotFound):
            s.service.revoke_mine(ada, theirs.id)
        s.service.revoke_mine(bob, theirs.id)
        with pytest.raises(NotFound):
            s.service.revoke_mine(bob, theirs.id)

    def test_only_an_admin_sees_and_revokes_anyones(
        self, s: Setup, ada: Principal, bob: Principal
    ) -> None:
        theirs = s.create(bob)
        with pytest.raises(Forbidden):
            s.service.list_for(bob, ada.user_id, PageRequest())
        with pytest.raises(Forbidden):
            s.service.revoke_for(bob, bob.user_id, theirs.id)
        assert [t.id for t in s.service.list_for(ada, bob.user_id, PageRequest()).items] == [
            theirs.id
        ]
        with pytest.raises(NotFound):
            s.service.list_for(ada, "01HZZZZZZZZZZZZZZZZZZZZZZZ", PageRequest())
        with pytest.raises(NotFound):  # the token is not that user's
            s.service.revoke_for(ada, ada.user_id, theirs.id)
        s.service.revoke_for(ada, bob.user_id, theirs.id)
        assert s.adapters.api_tokens.tokens == {}

    def test_the_first_reads_name_the_caller_and_the_user(self, ada: Principal) -> None:
        from chalicelib.services.api_tokens import ApiTokenService

        assert ApiTokenService.reads_for_user(ada, "u2") == [
            reads.user(ada.user_id),
            reads.user("u2"),
        ]
        assert ApiTokenService.reads_for_user(ada, None) == [reads.user(ada.user_id)]


class TestAuthentication:
    def test_a_token_acts_as_its_user_within_its_scopes(self, s: Setup, ada: Principal) -> None:
        token = s.create(ada, "read", "run")
        seen: list[Principal] = []

        def prefetch(caller: Principal) -> list[Any]:
            seen.append(caller)
            return []

        me = s.auth.authenticate(s.last_secret, prefetch)
        assert me.user_id == ada.user_id
        assert me.personal_project_id == ada.personal_project_id
        assert me.scopes == {"read", "run"}
        assert me.token_id == token.id
        assert me.via_api_token
        # The first reads were named before the token was read: by the ids the token carries.
        assert seen[0].user_id == ada.user_id
        assert seen[0].personal_project_id == ada.personal_project_id
        s.auth.admit(me, "read")
        s.auth.admit(me, "run")
        with pytest.raises(InsufficientScope, match="write"):
            s.auth.admit(me, "write")
        with pytest.raises(InsufficientScope, match="sign in"):
            s.auth.admit(me, "read", session_only=True)

    def test_a_session_may_do_anything(self, s: Setup, ada: Principal) -> None:
        assert ada.scopes is None
        assert not ada.via_api_token
        s.auth.admit(ada, "write", session_only=True)

    def test_expired_revoked_forged_and_orphaned_tokens_are_401(
        self, s: Setup, ada: Principal, bob: Principal
    ) -> None:
        s.create(ada, expires_at=s.clock.now() + timedelta(hours=1))
        expiring = s.last_secret
        assert s.auth.authenticate(expiring).user_id == ada.user_id
        s.clock.advance(hours=1)
        with pytest.raises(Unauthorized, match="expired"):
            s.auth.authenticate(expiring)

        revoked = s.create(ada)
        secret = s.last_secret
        s.service.revoke_mine(ada, revoked.id)
        with pytest.raises(Unauthorized, match="revoked"):
            s.auth.authenticate(secret)

        s.create(ada)
        forged = s.last_secret[:-1] + ("A" if s.last_secret[-1] != "A" else "B")
        with pytest.raises(Unauthorized):
            s.auth.authenticate(forged)
        with pytest.raises(Unauthorized):
            s.auth.authenticate("tb_not-a-token")

        s.create(bob)
        orphan = s.last_secret
        del s.adapters.users.users[bob.user_id]
        with pytest.raises(Unauthorized, match="revoked"):
            s.auth.authenticate(orphan)

    def test_a_token_naming_another_personal_project_is_401(self, s: Setup, ada: Principal) -> None:
        s.create(ada)
        whole = s.last_secret
        other = whole[: 3 + 52] + "01HZZZZZZZZZZZZZZZZZZZZZZZ" + whole[3 + 78 :]
        with pytest.raises(Unauthorized):
            s.auth.authenticate(other)

    def test_last_use_is_written_once_a_minute(self, s: Setup, ada: Principal) -> None:
        token = s.create(ada)
        for _ in range(3):
            s.auth.admit(s.auth.authenticate(s.last_secret), "read")
        assert s.adapters.api_tokens.touches == 1
        minute = s.clock.now().replace(second=0, microsecond=0)
        assert s.adapters.api_tokens.tokens[token.id].last_used_at == minute
        s.clock.advance(minutes=1)
        s.auth.admit(s.auth.authenticate(s.last_secret), "read")
        assert s.adapters.api_tokens.touches == 2

    def test_a_refused_call_is_not_a_use(self, s: Setup, ada: Principal) -> None:
        s.create(ada, "read")
        me = s.auth.authenticate(s.last_secret)
        with pytest.raises(InsufficientScope):
            s.auth.admit(me, "write")
        assert s.adapters.api_tokens.touches == 0

    def test_a_throttled_last_use_does_not_fail_the_request(
        self, s: Setup, ada: Principal, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        s.create(ada)
        me = s.auth.authenticate(s.last_secret)

        def throttled(*_: Any) -> None:
            raise Unavailable()

        monkeypatch.setattr(s.adapters.api_tokens, "touch", throttled)
        s.auth.admit(me, "read")

    def test_without_a_token_store_api_tokens_are_refused(self, s: Setup, ada: Principal) -> None:
        from chalicelib.services.auth import AuthService, LoginPolicy

        s.create(ada)
        bare = AuthService(
            s.adapters.users,
            s.adapters.sessions,
            s.adapters.login_attempts,
            s.adapters.hasher,
            s.auth.tokens,
            s.clock,
            LoginPolicy(),
        )
        with pytest.raises(Unauthorized):
            bare.authenticate(s.last_secret)


class TestWebSocket:
    def test_a_read_scoped_token_connects_and_no_other(self, s: Setup, ada: Principal) -> None:
        s.create(ada, "read")
        reader = s.last_secret
        s.create(ada, "write", "run")
        writer = s.last_secret
        realtime = s.container.realtime
        assert realtime.connect("c1", reader)
        assert not realtime.connect("c2", writer)
        stored = s.adapters.connections.get("c1")
        assert stored is not None
        assert stored.user_id == ada.user_id
        assert s.adapters.connections.get("c2") is None
