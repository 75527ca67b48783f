from __future__ import annotations

import pytest
from pydantic import ValidationError

from chalicelib.domain.errors import Conflict, Forbidden, NotFound, PreconditionFailed, Unauthorized
from chalicelib.domain.model import PageRequest
from chalicelib.domain.principals import Principal
from chalicelib.domain.users import (
    LoginInput,
    ProfileUpdate,
    RefreshInput,
    RegisterInput,
    Role,
    RoleUpdate,
)
from chalicelib.services.auth import AuthResult
from tests.unit.conftest import World

PASSWORD = "correct horse battery"


def register(world: World, email: str) -> tuple[AuthResult, Principal]:
    result = world.auth.register(RegisterInput(email=email, password=PASSWORD, name="Someone"))
    return result, world.auth.authenticate(result.access_token)


class TestProfileInput:
    def test_timezone_must_be_iana(self) -> None:
        assert ProfileUpdate(timezone="Europe/Paris").timezone == "Europe/Paris"
        with pytest.raises(ValidationError):
            ProfileUpdate(timezone="Mars/Olympus")

    def test_password_change_needs_the_current_one(self) -> None:
        with pytest.raises(ValidationError):
            ProfileUpdate(password="new password 123")

    def test_required_fields_cannot_be_nulled(self) -> None:
        with pytest.raises(ValidationError):
            ProfileUpdate.model_validate({"name": None})

    def test_unknown_and_read_only_fields_are_rejected(self) -> None:
        for field in ("id", "email", "role", "version", "created_at", "nickname"):
            with pytest.raises(ValidationError):
                ProfileUpdate.model_validate({field: "x"})

    @pytest.mark.parametrize("password", ["short", "x" * 129])
    def test_password_length_is_8_to_128(self, password: str) -> None:
        with pytest.raises(ValidationError):
            RegisterInput(email="a@example.com", password=password, name="A")


class TestProfile:
    def test_update_name_and_timezone_bumps_the_version(self, world: World) -> None:
        result, me = register(world, "ada@example.com")
        updated = world.users.update_profile(
            me, ProfileUpdate(name="Ada L.", timezone="Europe/Paris")
        )
        assert (updated.name, updated.timezone) == ("Ada L.", "Europe/Paris")
        assert updated.version == result.user.version + 1
        assert world.users.profile(me) == updated

    def test_stale_if_match_is_refused_and_changes_nothing(self, world: World) -> None:
        result, me = register(world, "ada@example.com")
        world.users.update_profile(
            me, ProfileUpdate(name="One"), expected_version=result.user.version
        )
        with pytest.raises(PreconditionFailed):
            world.users.update_profile(
                me, ProfileUpdate(name="Two"), expected_version=result.user.version
            )
        assert world.users.profile(me).name == "One"

    def test_password_change_with_a_wrong_current_password_is_401(self, world: World) -> None:
        _, me = register(world, "ada@example.com")
        with pytest.raises(Unauthorized):
            world.users.update_profile(
                me, ProfileUpdate(password="brand new password", current_password="not it")
            )

    def test_password_change_works_and_ends_other_sessions(self, world: World) -> None:
        _, me = register(world, "ada@example.com")
        other = world.auth.login(LoginInput(email="ada@example.com", password=PASSWORD))
        world.users.update_profile(
            me, ProfileUpdate(password="brand new password", current_password=PASSWORD)
        )
        with pytest.raises(Unauthorized):
            world.auth.login(LoginInput(email="ada@example.com", password=PASSWORD))
        world.auth.login(LoginInput(email="ada@example.com", password="brand new password"))
        with pytest.raises(Unauthorized):
            world.auth.refresh(RefreshInput(refresh_token=other.refresh_token))
        assert world.users.profile(me)  # the session that changed it lives on


class TestAdmin:
    def test_members_may_not_list_users(self, world: World) -> None:
        register(world, "admin@example.com")
        _, member = register(world, "member@example.com")
        with pytest.raises(Forbidden):
            world.users.list_users(member, "", PageRequest())

    def test_admin_lists_by_email_prefix_in_pages(self, world: World) -> None:
        _, admin = register(world, "admin@example.com")
        for name in ("alice", "albert", "alfred", "bob"):
            register(world, f"{name}@example.com")
        first = world.users.list_users(admin, "AL", PageRequest(limit=2))
        assert [u.email for u in first.items] == ["albert@example.com", "alfred@example.com"]
        second = world.users.list_users(admin, "al", PageRequest(limit=2, cursor=first.next_cursor))
        assert [u.email for u in second.items] == ["alice@example.com"]
        assert second.next_cursor is None

    def test_admin_changes_a_role(self, world: World) -> None:
        _, admin = register(world, "admin@example.com")
        member, _ = register(world, "member@example.com")
        promoted = world.users.set_role(admin, member.user.id, RoleUpdate(role=Role.ADMIN))
        assert promoted.role is Role.ADMIN

    def test_members_may_not_change_roles(self, world: World) -> None:
        admin, _ = register(world, "admin@example.com")
        _, member = register(world, "member@example.com")
        with pytest.raises(Forbidden):
            world.users.set_role(member, admin.user.id, RoleUpdate(role=Role.MEMBER))

    def test_an_admin_cannot_demote_themself(self, world: World) -> None:
        result, admin = register(world, "admin@example.com")
        with pytest.raises(Conflict):
            world.users.set_role(admin, result.user.id, RoleUpdate(role=Role.MEMBER))

    def test_unknown_user_is_404(self, world: World) -> None:
        _, admin = register(world, "admin@example.com")
        with pytest.raises(NotFound):
            world.users.set_role(admin, "01NOPE", RoleUpdate(role=Role.ADMIN))
