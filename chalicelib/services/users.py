"""Profiles and the admin's user management."""

from __future__ import annotations

from chalicelib.domain.errors import Conflict, Forbidden, NotFound, Unauthorized
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.principals import Principal
from chalicelib.domain.users import ProfileUpdate, Role, RoleUpdate, User, normalise_email
from chalicelib.ports import (
    Clock,
    PasswordHasher,
    PrefetchKey,
    SessionRepository,
    UserRepository,
    reads,
)
from chalicelib.services.common import update_versioned


class UserService:
    def __init__(
        self,
        users: UserRepository,
        sessions: SessionRepository,
        hasher: PasswordHasher,
        clock: Clock,
    ) -> None:
        self._users = users
        self._sessions = sessions
        self._hasher = hasher
        self._clock = clock

    # ---- first reads: what each use case reads before anything else ------------------------------
    # The route fetches these items with the caller's session; the repositories take the
    # fetched copies.

    @staticmethod
    def reads_for_caller(principal: Principal) -> list[PrefetchKey]:
        """The profile, its change, the user list: the caller."""
        return [reads.user(principal.user_id)]

    @staticmethod
    def reads_for_role_change(principal: Principal, user_id: str) -> list[PrefetchKey]:
        """Changing a user's role: the caller (an admin?) and that user."""
        return [reads.user(principal.user_id), reads.user(user_id)]

    def profile(self, principal: Principal) -> User:
        user = self._users.get(principal.user_id)
        if user is None:
            raise NotFound("user not found")
        return user

    def update_profile(
        self, principal: Principal, update: ProfileUpdate, expected_version: int | None = None
    ) -> User:
        new_hash: str | None = None
        if update.password is not None:
            current = self.profile(principal)
            if not self._hasher.verify(current.password_hash, update.current_password or ""):
                raise Unauthorized("current_password is wrong")
            new_hash = self._hasher.hash(update.password)

        def change(user: User) -> User:
            changes: dict[str, object] = {"updated_at": self._clock.now()}
            if update.name is not None:
                changes["name"] = update.name
            if update.timezone is not None:
                changes["timezone"] = update.timezone
            if new_hash is not None:
                changes["password_hash"] = new_hash
            return user.with_changes(**changes)

        saved = update_versioned(
            lambda: self._users.get(principal.user_id),
            change,
            self._users.save,
            expected_version,
            "user",
        )
        if new_hash is not None:
            # A changed password ends every other login: a thief's refresh token stops working.
            self._sessions.revoke_all_for_user(
                saved.id, self._clock.now(), keep=principal.session_id
            )
        return saved

    def _require_admin(self, principal: Principal) -> User:
        caller = self.profile(principal)
        if caller.role != Role.ADMIN:
            raise Forbidden("only admins may do this")
        return caller

    def list_users(self, principal: Principal, prefix: str, page: PageRequest) -> Page[User]:
        self._require_admin(principal)
        return self._users.list_by_email_prefix(normalise_email(prefix), page)

    def set_role(
        self,
        principal: Principal,
        user_id: str,
        update: RoleUpdate,
        expected_version: int | None = None,
    ) -> User:
        caller = self._require_admin(principal)
        if user_id == caller.id and update.role != Role.ADMIN:
            # Keeps at least one admin: an admin is only ever demoted by another admin.
            raise Conflict("admins cannot remove their own admin role")

        def change(user: User) -> User:
            return user.with_changes(role=update.role, updated_at=self._clock.now())

        return update_versioned(
            lambda: self._users.get(user_id), change, self._users.save, expected_version, "user"
        )
