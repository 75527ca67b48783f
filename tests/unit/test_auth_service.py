from __future__ import annotations

import jwt
import pytest

from chalicelib.domain.errors import Conflict, RateLimited, Unauthorized
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import PERSONAL_PROJECT_NAME, ProjectRole
from chalicelib.domain.users import LoginInput, RefreshInput, RegisterInput, Role
from chalicelib.services.auth import AuthResult
from tests.fakes import FakeSigningKeys
from tests.unit.conftest import SIGNING_KEY, World, make_tokens

PASSWORD = "correct horse battery"


def register(world: World, email: str = "ada@example.com") -> AuthResult:
    return world.auth.register(RegisterInput(email=email, password=PASSWORD, name="Ada"))


def login(world: World, email: str = "ada@example.com", password: str = PASSWORD) -> AuthResult:
    return world.auth.login(LoginInput(email=email, password=password))


def principal_of(world: World, result: AuthResult) -> Principal:
    return world.auth.authenticate(result.access_token)


class TestRegister:
    def test_first_account_is_admin_and_later_ones_members(self, world: World) -> None:
        first = register(world, "first@example.com")
        second = register(world, "second@example.com")
        assert first.user.role is Role.ADMIN
        assert second.user.role is Role.MEMBER

    def test_creates_the_personal_project_owned_by_the_user(self, world: World) -> None:
        user = register(world).user
        project = world.users_repo.projects[user.personal_project_id]
        assert project.name == PERSONAL_PROJECT_NAME
        assert project.owner_id == user.id
        membership = world.users_repo.memberships[(project.id, user.id)]
        assert membership.role is ProjectRole.OWNER

    def test_email_is_case_insensitive_and_unique(self, world: World) -> None:
        register(world, "Ada@Example.com")
        with pytest.raises(Conflict):
            register(world, "ada@EXAMPLE.com")

    def test_password_is_stored_as_argon2id(self, world: World) -> None:
        user = register(world).user
        stored = world.users_repo.users[user.id]
        assert stored.password_hash.startswith("$argon2id$")
        assert PASSWORD not in stored.password_hash

    def test_losing_the_first_admin_race_registers_a_member(self, world: World) -> None:
        # Another account claimed "first admin" between our check and our write.
        world.users_repo.first_admin_exists = lambda: False  # type: ignore[method-assign]
        world.users_repo.claims["system#first-admin"] = "someone-else"
        assert register(world).user.role is Role.MEMBER

    def test_tokens_carry_the_pinned_claims(self, world: World) -> None:
        result = register(world)
        claims = jwt.decode(
            result.access_token,
            SIGNING_KEY,
            algorithms=["HS256"],
            audience="taskbeat-api",
            options={"verify_exp": False},
        )
        assert {"iss", "aud", "exp", "iat", "jti", "sub", "sid"} <= set(claims)
        assert claims["exp"] - claims["iat"] == 15 * 60
        assert result.expires_in == 900
        refresh = jwt.decode(
            result.refresh_token,
            SIGNING_KEY,
            algorithms=["HS256"],
            audience="taskbeat-api",
            options={"verify_exp": False},
        )
        assert refresh["exp"] - refresh["iat"] == 30 * 24 * 3600


class TestLogin:
    def test_right_password_logs_in(self, world: World) -> None:
        user = register(world).user
        assert login(world, "ADA@example.com").user.id == user.id

    def test_wrong_password_and_unknown_email_say_the_same(self, world: World) -> None:
        register(world)
        with pytest.raises(Unauthorized) as wrong_password:
            login(world, password="wrong password")
        with pytest.raises(Unauthorized) as unknown_email:
            login(world, email="nobody@example.com")
        assert wrong_password.value.message == unknown_email.value.message

    def test_five_failures_lock_the_email_even_for_the_right_password(self, world: World) -> None:
        register(world)
        for _ in range(5):
            world.clock.advance(seconds=10)
            with pytest.raises(Unauthorized):
                login(world, password="wrong password")
        world.clock.advance(seconds=10)
        with pytest.raises(RateLimited) as limited:
            login(world)
        # The oldest failure (40 s ago) leaves the window in 15 min - 40 s.
        assert 15 * 60 - 50 <= limited.value.retry_after_seconds <= 15 * 60 - 30

    def test_the_lock_lifts_when_the_window_has_passed(self, world: World) -> None:
        register(world)
        for _ in range(5):
            with pytest.raises(Unauthorized):
                login(world, password="wrong password")
        world.clock.advance(minutes=15, seconds=1)
        assert login(world).user.email == "ada@example.com"

    def test_four_failures_do_not_lock_and_a_success_clears_them(self, world: World) -> None:
        register(world)
        for _ in range(4):
            with pytest.raises(Unauthorized):
                login(world, password="wrong password")
        login(world)
        for _ in range(4):
            with pytest.raises(Unauthorized):
                login(world, password="wrong password")
        assert login(world).access_token

    def test_failures_of_unknown_emails_are_throttled_too(self, world: World) -> None:
        for _ in range(5):
            with pytest.raises(Unauthorized):
                login(world, email="ghost@example.com")
        with pytest.raises(RateLimited):
            login(world, email="ghost@example.com")


class TestTokens:
    def test_access_token_authenticates(self, world: World) -> None:
        result = register(world)
        assert principal_of(world, result).user_id == result.user.id

    def test_access_token_expires_after_15_minutes(self, world: World) -> None:
        result = register(world)
        world.clock.advance(minutes=15, seconds=10)
        with pytest.raises(Unauthorized):
            principal_of(world, result)

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda t: t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB"),
            lambda t: jwt.encode(
                jwt.decode(t, options={"verify_signature": False}),
                "other-key-0123456789abcdef0123456789",
                algorithm="HS256",
            ),
            lambda t: jwt.encode(
                jwt.decode(t, options={"verify_signature": False}), None, algorithm="none"
            ),
            lambda t: "not-a-jwt",
            lambda t: "",
        ],
        ids=["bad-signature", "other-key", "alg-none", "garbage", "empty"],
    )
    def test_forged_tokens_are_refused(self, world: World, mangle) -> None:  # type: ignore[no-untyped-def]
        result = register(world)
        with pytest.raises(Unauthorized):
            world.auth.authenticate(mangle(result.access_token))

    def test_a_refresh_token_is_not_an_access_token(self, world: World) -> None:
        result = register(world)
        with pytest.raises(Unauthorized):
            world.auth.authenticate(result.refresh_token)
        with pytest.raises(Unauthorized):
            world.auth.refresh(RefreshInput(refresh_token=result.access_token))

    def test_tokens_of_another_deployment_are_refused(self, world: World) -> None:
        other = make_tokens(world.clock, FakeSigningKeys("another-deployment-key-0123456789abcdef"))
        result = register(world)
        forged = other.issue("access", result.user.id, "session")
        with pytest.raises(Unauthorized):
            world.auth.authenticate(forged)


class TestRefresh:
    def test_refresh_rotates_both_tokens(self, world: World) -> None:
        first = register(world)
        second = world.auth.refresh(RefreshInput(refresh_token=first.refresh_token))
        assert second.refresh_token != first.refresh_token
        assert principal_of(world, second).user_id == first.user.id
        third = world.auth.refresh(RefreshInput(refresh_token=second.refresh_token))
        assert principal_of(world, third).session_id == principal_of(world, first).session_id

    def test_reusing_a_refresh_token_revokes_the_whole_session(self, world: World) -> None:
        first = register(world)
        second = world.auth.refresh(RefreshInput(refresh_token=first.refresh_token))
        with pytest.raises(Unauthorized):
            world.auth.refresh(RefreshInput(refresh_token=first.refresh_token))
        # Every token of that login is dead now, including the ones the thief or user holds.
        with pytest.raises(Unauthorized):
            world.auth.refresh(RefreshInput(refresh_token=second.refresh_token))
        with pytest.raises(Unauthorized):
            principal_of(world, second)
        with pytest.raises(Unauthorized):
            principal_of(world, first)

    def test_reuse_does_not_touch_other_sessions(self, world: World) -> None:
        first = register(world)
        other = login(world)
        world.auth.refresh(RefreshInput(refresh_token=first.refresh_token))
        with pytest.raises(Unauthorized):
            world.auth.refresh(RefreshInput(refresh_token=first.refresh_token))
        assert principal_of(world, other).user_id == first.user.id


class TestLogout:
    def test_logout_kills_access_and_refresh_tokens_at_once(self, world: World) -> None:
        result = register(world)
        world.auth.logout(principal_of(world, result))
        with pytest.raises(Unauthorized):
            principal_of(world, result)
        with pytest.raises(Unauthorized):
            world.auth.refresh(RefreshInput(refresh_token=result.refresh_token))

    def test_logout_leaves_other_sessions_alone(self, world: World) -> None:
        result = register(world)
        other = login(world)
        world.auth.logout(principal_of(world, result))
        assert principal_of(world, other).user_id == result.user.id

    def test_logout_also_revokes_the_session_of_a_given_refresh_token(self, world: World) -> None:
        result = register(world)
        other = login(world)
        world.auth.logout(principal_of(world, result), refresh_token=other.refresh_token)
        with pytest.raises(Unauthorized):
            principal_of(world, other)

    def test_logout_ignores_someone_elses_refresh_token(self, world: World) -> None:
        ada = register(world)
        bob = register(world, "bob@example.com")
        world.auth.logout(principal_of(world, ada), refresh_token=bob.refresh_token)
        assert principal_of(world, bob).user_id == bob.user.id
