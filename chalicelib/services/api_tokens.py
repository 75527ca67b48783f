"""API tokens: create (shown once), list and revoke one's own; an admin lists and revokes
anyone's. Checking a presented token is `AuthService.authenticate` / `admit`."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain import api_tokens
from chalicelib.domain.api_tokens import ApiToken, TokenCreate
from chalicelib.domain.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TooManyTokens,
    validation_error,
)
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.principals import Principal
from chalicelib.domain.users import Role, User
from chalicelib.ports import ApiTokenRepository, Clock, PrefetchKey, UserRepository, reads


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    secret_token: str  # the whole `tb_...` string: in the creation's answer, and nowhere else


class ApiTokenService:
    def __init__(self, tokens: ApiTokenRepository, users: UserRepository, clock: Clock) -> None:
        self._tokens = tokens
        self._users = users
        self._clock = clock

    # ---- first reads ---------------------------------------------------------------------------

    @staticmethod
    def reads_for_caller(principal: Principal) -> list[PrefetchKey]:
        """One's own tokens: the caller (its personal project, that it still exists)."""
        return [reads.user(principal.user_id)]

    @staticmethod
    def reads_for_user(principal: Principal, user_id: str | None) -> list[PrefetchKey]:
        """Another user's tokens: the caller (an admin?) and that user."""
        return [reads.user(principal.user_id), *([reads.user(user_id)] if user_id else [])]

    # ---- one's own -------------------------------------------------------------------------------

    def create(self, principal: Principal, command: TokenCreate) -> CreatedToken:
        now = self._clock.now()
        if command.expires_at is not None and command.expires_at <= now:
            raise validation_error(["body", "expires_at"], "must be in the future")
        user = self._user(principal.user_id)
        token_id = api_tokens.new_token_id(user.id)
        secret = api_tokens.new_secret()
        whole = api_tokens.format_token(token_id, user.personal_project_id, secret)
        token = ApiToken(
            id=token_id,
            user_id=user.id,
            personal_project_id=user.personal_project_id,
            name=command.name,
            scopes=frozenset(command.scopes),
            prefix=whole[: api_tokens.SHOWN_PREFIX_LENGTH],
            secret_hash=api_tokens.hash_secret(secret),
            created_at=now,
            expires_at=command.expires_at,
        )
        try:
            self._tokens.create(token, api_tokens.MAX_TOKENS_PER_USER)
        except TooManyTokens:
            raise Conflict(
                f"you hold {api_tokens.MAX_TOKENS_PER_USER} API tokens, the most allowed: "
                "revoke one first"
            ) from None
        return CreatedToken(token, whole)

    def list_mine(self, principal: Principal, page: PageRequest) -> Page[ApiToken]:
        return self._tokens.list_for_user(principal.user_id, page)

    def revoke_mine(self, principal: Principal, token_id: str) -> None:
        self._revoke(principal.user_id, token_id)

    # ---- an admin's ------------------------------------------------------------------------------

    def list_for(self, principal: Principal, user_id: str, page: PageRequest) -> Page[ApiToken]:
        self._require_admin(principal)
        self._user(user_id)
        return self._tokens.list_for_user(user_id, page)

    def revoke_for(self, principal: Principal, user_id: str, token_id: str) -> None:
        self._require_admin(principal)
        self._revoke(user_id, token_id)

    # ---- helpers ---------------------------------------------------------------------------------

    def _revoke(self, user_id: str, token_id: str) -> None:
        # Another user's token id names nothing here: 404, as for a missing one.
        if api_tokens.user_of(token_id) != user_id or not self._tokens.delete(token_id):
            raise NotFound("token not found")

    def _user(self, user_id: str) -> User:
        user = self._users.get(user_id)
        if user is None:
            raise NotFound("user not found")
        return user

    def _require_admin(self, principal: Principal) -> None:
        if self._user(principal.user_id).role != Role.ADMIN:
            raise Forbidden("only admins may do this")
