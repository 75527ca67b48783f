"""Registration, login, token refresh with rotation and reuse detection, logout."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from chalicelib.domain import api_tokens
from chalicelib.domain.errors import (
    Conflict,
    EmailTaken,
    FirstAdminTaken,
    InsufficientScope,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from chalicelib.domain.model import new_id
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import PERSONAL_PROJECT_NAME, Membership, Project, ProjectRole
from chalicelib.domain.users import (
    LoginInput,
    RefreshInput,
    RegisterInput,
    Role,
    Session,
    User,
    normalise_email,
)
from chalicelib.ports import (
    ApiTokenRepository,
    Clock,
    LoginAttempts,
    PasswordHasher,
    PrefetchKey,
    SessionRepository,
    UserRepository,
)
from chalicelib.services.tokens import TokenCodec

if TYPE_CHECKING:
    from chalicelib.domain.calendars import CalendarKeys

DEFAULT_TIMEZONE = "UTC"
BAD_CREDENTIALS = "email or password is wrong"


@dataclass(frozen=True)
class AuthResult:
    user: User
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)


class AuthService:
    def __init__(
        self,
        users: UserRepository,
        sessions: SessionRepository,
        attempts: LoginAttempts,
        hasher: PasswordHasher,
        tokens: TokenCodec,
        clock: Clock,
        policy: LoginPolicy,
        calendar_keys: CalendarKeys | None = None,
        *,
        api_tokens: ApiTokenRepository | None = None,
    ) -> None:
        self._users = users
        # Without it, `tb_` bearer tokens are refused like forged ones.
        self._api_tokens = api_tokens
        # With it, a new account gets its calendar token's key in its registration's
        # transaction (without, on the first read of its profile).
        self._calendar_keys = calendar_keys
        self._sessions = sessions
        self._attempts = attempts
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._policy = policy
        self._dummy_hash: str | None = None

    @property
    def tokens(self) -> TokenCodec:
        """The codec it issues and verifies tokens with."""
        return self._tokens

    # ---- register / login ------------------------------------------------------------------

    def register(self, command: RegisterInput) -> AuthResult:
        password_hash = self._hasher.hash(command.password)
        first_admin = not self._users.first_admin_exists()
        while True:
            user, project, owner = self._new_account(command, password_hash, first_admin)
            session = self._new_session(user)
            calendar_lookup = None
            if self._calendar_keys is not None:
                nonce, calendar_lookup = self._calendar_keys.issue(user.id)
                user = user.with_changes(calendar_nonce=nonce)
            try:
                self._users.create_account(
                    user,
                    project,
                    owner,
                    session,
                    first_admin=first_admin,
                    calendar_lookup=calendar_lookup,
                )
                break
            except EmailTaken:
                raise Conflict("an account with this email already exists") from None
            except FirstAdminTaken:
                first_admin = False  # someone else was first: register as a member
        return self._tokens_for(user, session.id, session.refresh_jti)

    def _new_account(
        self, command: RegisterInput, password_hash: str, first_admin: bool
    ) -> tuple[User, Project, Membership]:
        now = self._clock.now()
        user_id, project_id = new_id(), new_id()
        user = User(
            id=user_id,
            email=command.email,
            name=command.name,
            role=Role.ADMIN if first_admin else Role.MEMBER,
            timezone=DEFAULT_TIMEZONE,
            password_hash=password_hash,
            personal_project_id=project_id,
            created_at=now,
            updated_at=now,
        )
        project = Project(
            id=project_id,
            name=PERSONAL_PROJECT_NAME,
            description="",
            owner_id=user_id,
            created_at=now,
            updated_at=now,
            personal=True,
        )
        owner = Membership(project_id, user_id, ProjectRole.OWNER, now, user.email, user.name)
        return user, project, owner

    def login(self, command: LoginInput) -> AuthResult:
        email = normalise_email(command.email)
        now = self._clock.now()
        window_start = now - self._policy.window
        state = self._attempts.lookup(email)
        recent = [at for at in state.failures if at > window_start]
        if len(recent) >= self._policy.max_failures:
            # The lock lifts when the oldest of the last `max_failures` failures leaves the window.
            retry_at = recent[-self._policy.max_failures] + self._policy.window
            raise RateLimited(
                "too many failed logins for this email; retry later",
                retry_after_seconds=int((retry_at - now).total_seconds()) + 1,
            )
        user = self._users.get(state.user_id) if state.user_id else None
        if user is None:
            # Spend the same time as a real check, so response times do not reveal accounts.
            self._hasher.verify(self._dummy(), command.password)
            self._attempts.record_failure(email, now, keep_since=window_start)
            raise Unauthorized(BAD_CREDENTIALS)
        if not self._hasher.verify(user.password_hash, command.password):
            self._attempts.record_failure(email, now, keep_since=window_start)
            raise Unauthorized(BAD_CREDENTIALS)
        if state.failures:
            self._attempts.clear(email)
        if self._hasher.needs_rehash(user.password_hash):
            user = self._users.save(
                user.with_changes(password_hash=self._hasher.hash(command.password))
            )
        return self._start_session(user)

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(new_id())
        return self._dummy_hash

    def _new_session(self, user: User) -> Session:
        now = self._clock.now()
        return Session(
            id=new_id(),
            user_id=user.id,
            refresh_jti=new_id(),
            created_at=now,
            expires_at=now + self._tokens.refresh_ttl,
        )

    def _start_session(self, user: User) -> AuthResult:
        session = self._new_session(user)
        self._sessions.create(session)
        return self._tokens_for(user, session.id, session.refresh_jti)

    def _tokens_for(self, user: User, session_id: str, refresh_jti: str) -> AuthResult:
        return AuthResult(
            user=user,
            access_token=self._tokens.issue(
                "access", user.id, session_id, personal_project_id=user.personal_project_id
            ),
            refresh_token=self._tokens.issue("refresh", user.id, session_id, jti=refresh_jti),
            expires_in=int(self._tokens.access_ttl.total_seconds()),
        )

    # ---- tokens ------------------------------------------------------------------------------

    def refresh(self, command: RefreshInput) -> AuthResult:
        claims = self._tokens.decode(command.refresh_token, "refresh")
        new_jti = new_id()
        if not self._sessions.rotate(claims.session_id, claims.jti, new_jti):
            session = self._sessions.get(claims.session_id)
            if session is not None and session.active:
                # A valid but already used refresh token: someone replayed it. Kill the session.
                self._sessions.revoke(session.id, self._clock.now())
            raise Unauthorized("refresh token is not valid")
        user = self._users.get(claims.user_id)
        if user is None:
            self._sessions.revoke(claims.session_id, self._clock.now())
            raise Unauthorized("refresh token is not valid")
        return self._tokens_for(user, claims.session_id, new_jti)

    def authenticate(
        self,
        access_token: str | None,
        prefetch: Callable[[Principal], Sequence[PrefetchKey]] | None = None,
    ) -> Principal:
        """Check an access token, and that its session is still alive (logout is immediate).

        `prefetch` names the items the request reads first; they come back in the same round
        trip as the session, so authentication costs no extra DynamoDB call.

        An API token (`tb_...`) is checked the same way: its item and its user come back in
        that one round trip instead of a session (see `_authenticate_api_token`). Its scopes
        are checked by `admit`, which the route calls next.
        """
        if api_tokens.is_api_token(access_token):
            assert access_token is not None
            return self._authenticate_api_token(access_token, prefetch)
        claims = self._tokens.decode(access_token, "access")
        principal = Principal(claims.user_id, claims.session_id, claims.personal_project_id)
        keys = prefetch(principal) if prefetch else ()
        session = self._sessions.get(claims.session_id, keys)
        if session is None or not session.active or session.user_id != claims.user_id:
            raise Unauthorized("token has been revoked")
        return principal

    # ---- API tokens --------------------------------------------------------------------------

    def _authenticate_api_token(
        self,
        bearer: str,
        prefetch: Callable[[Principal], Sequence[PrefetchKey]] | None,
    ) -> Principal:
        presented = api_tokens.parse_token(bearer)
        if presented is None or self._api_tokens is None:
            raise Unauthorized("token is not valid")
        # Who the token says it is: enough to name the request's first reads (they are only
        # used once the token is proven below; a forged token gets 401 and nothing else).
        claimed = Principal(
            presented.user_id,
            session_id="",
            personal_project_id=presented.personal_project_id,
            scopes=frozenset(),
            token_id=presented.token_id,
        )
        keys = prefetch(claimed) if prefetch else ()
        token, user = self._api_tokens.lookup(presented.token_id, presented.user_id, keys)
        if (
            token is None
            or not api_tokens.secret_matches(presented.secret, token.secret_hash)
            or token.personal_project_id != presented.personal_project_id
        ):
            raise Unauthorized("token has been revoked")
        if token.expired(self._clock.now()):
            raise Unauthorized("token has expired")
        if not self._may_act(user):
            raise Unauthorized("token has been revoked")
        return Principal(
            token.user_id,
            session_id=f"api-token:{token.id}",
            personal_project_id=token.personal_project_id,
            scopes=frozenset(scope.value for scope in token.scopes),
            token_id=token.id,
            token_used_at=token.last_used_at,
        )

    @staticmethod
    def _may_act(user: User | None) -> bool:
        """Whether an API token's user may still act (issue 19's deactivation goes here)."""
        return user is not None

    def admit(self, principal: Principal, scope: str, session_only: bool = False) -> None:
        """Let the caller use a route that needs `scope`: a session may use any; an API token
        only one within its scopes and not `session_only` (403 `insufficient_scope`, nothing
        written). A token let in has its `last_used_at` set, at most once a minute: one
        conditional UpdateItem on the first request of each minute, none on the others."""
        if principal.scopes is None:
            return
        if session_only:
            raise InsufficientScope("an API token cannot do this: sign in to the dashboard")
        if scope not in principal.scopes:
            raise InsufficientScope(f"this API token lacks the `{scope}` scope")
        minute = self._clock.now().replace(second=0, microsecond=0)
        used = principal.token_used_at
        if self._api_tokens is not None and (used is None or used < minute):
            # Bookkeeping: a throttled table does not fail the caller's request.
            with contextlib.suppress(Unavailable):
                self._api_tokens.touch(principal.token_id, minute)

    def logout(self, principal: Principal, refresh_token: str | None = None) -> None:
        now = self._clock.now()
        self._sessions.revoke(principal.session_id, now)
        if refresh_token:
            try:
                claims = self._tokens.decode(refresh_token, "refresh")
            except Unauthorized:
                return  # the caller's own session is gone already; a bad extra token is moot
            if claims.user_id == principal.user_id and claims.session_id != principal.session_id:
                self._sessions.revoke(claims.session_id, now)
