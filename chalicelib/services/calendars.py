"""Calendar feeds: each user's feed token (shown on the profile, rotated on request) and the
feeds it opens, the user's assigned tasks and the tasks of each project the user is in.

The token is the feed's only credential (the URL is the secret): anything but the token of a
user, or a project that user is not a member of right now, is the same 404.
"""

from __future__ import annotations

from chalicelib.domain import calendars
from chalicelib.domain.calendars import FEED_MAX_EVENTS, FEED_NOT_FOUND, CalendarKeys, Feed
from chalicelib.domain.errors import Conflict, NotFound, StaleVersion
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import READ_ROLE, plausible_id
from chalicelib.domain.users import User
from chalicelib.ports import (
    CalendarRepository,
    Clock,
    Prefetcher,
    PrefetchKey,
    ProjectRepository,
    UserRepository,
    reads,
)
from chalicelib.services.access import ProjectAccess
from chalicelib.services.common import MAX_WRITE_ATTEMPTS, with_version_retries


class CalendarService:
    def __init__(
        self,
        users: UserRepository,
        calendars_repo: CalendarRepository,
        projects: ProjectRepository,
        prefetcher: Prefetcher,
        clock: Clock,
        keys: CalendarKeys,
    ) -> None:
        self._users = users
        self._calendars = calendars_repo
        self._projects = projects
        self._access = ProjectAccess(projects)
        self._prefetch = prefetcher
        self._clock = clock
        self._keys = keys

    # ---- the token ------------------------------------------------------------------------

    def token_of(self, user: User) -> tuple[User, str]:
        """The user's token (and the user as now stored). An account made before calendar
        feeds gets its key here, on its first read: one conditional write (on the version
        read, which it moves on), so two first reads at once agree on one token."""
        for _ in range(MAX_WRITE_ATTEMPTS):
            if user.calendar_nonce is not None:
                return user, self._keys.token(user.id, user.calendar_nonce)
            nonce, lookup = self._keys.issue(user.id)
            try:
                saved = self._calendars.set_key(
                    user, user.with_changes(calendar_nonce=nonce), lookup, None
                )
            except StaleVersion:
                reread = self._users.get(user.id)
                if reread is None:
                    raise NotFound("user not found") from None
                user = reread
                continue
            return saved, self._keys.token(saved.id, nonce)
        raise Conflict("the user is being changed concurrently; retry")

    @staticmethod
    def reads_for_rotate(principal: Principal) -> list[PrefetchKey]:
        """First reads of rotating the token (the route fetches them with the session): the
        caller."""
        return [reads.user(principal.user_id)]

    def rotate(self, principal: Principal) -> str:
        """A new token; the old one stops opening any feed at once."""
        self._prefetch.warm(self.reads_for_rotate(principal))

        def attempt() -> str:
            user = self._users.get(principal.user_id)
            if user is None:
                raise NotFound("user not found")
            previous = (
                self._keys.lookup(user.id, user.calendar_nonce) if user.calendar_nonce else None
            )
            nonce, lookup = self._keys.issue(user.id)
            after = user.with_changes(calendar_nonce=nonce, updated_at=self._clock.now())
            self._calendars.set_key(user, after, lookup, previous)
            return self._keys.token(user.id, nonce)

        return with_version_retries("user", None, attempt)

    # ---- feeds ----------------------------------------------------------------------------

    def _owner_id(self, token: str) -> str:
        if not calendars.plausible_token(token):
            raise NotFound(FEED_NOT_FOUND)
        owner = self._calendars.owner_of(calendars.lookup_of(token))
        if owner is None:
            raise NotFound(FEED_NOT_FOUND)
        return owner

    def _owner(self, user_id: str, token: str) -> User:
        """The token's user, if the token is still the one the user's nonce gives (the lookup
        item goes with each rotation in the same transaction; this is the belt to those braces)."""
        user = self._users.get(user_id)
        if user is None or user.calendar_nonce is None:
            raise NotFound(FEED_NOT_FOUND)
        if not calendars.same_token(self._keys.token(user.id, user.calendar_nonce), token):
            raise NotFound(FEED_NOT_FOUND)
        return user

    def user_feed(self, token: str) -> Feed:
        """The tasks assigned to the token's user, in the projects the user is still in."""
        user_id = self._owner_id(token)
        self._prefetch.warm([reads.user(user_id), reads.user_projects(user_id)])
        user = self._owner(user_id, token)
        projects = self._projects.roles_of(user.id)
        since = calendars.window_start(self._clock.now())
        tasks = self._calendars.assigned_with_due_date(user.id, since, FEED_MAX_EVENTS)
        mine = [task for task in tasks if task.project_id in projects]
        return calendars.build_feed(f"Taskbeat: {user.name}", user.timezone, mine, since)

    def project_feed(self, token: str, project_id: str) -> Feed:
        """The project's tasks, for a token whose user is a member (viewer or more) now."""
        user_id = self._owner_id(token)
        if not plausible_id(project_id):
            raise NotFound(FEED_NOT_FOUND)
        self._prefetch.warm(
            [reads.user(user_id), reads.project(project_id), reads.member(project_id, user_id)]
        )
        user = self._owner(user_id, token)
        try:
            context = self._access.require(user.id, project_id, READ_ROLE)
        except NotFound:
            raise NotFound(FEED_NOT_FOUND) from None
        since = calendars.window_start(self._clock.now())
        tasks = self._calendars.project_with_due_date(project_id, since, FEED_MAX_EVENTS)
        name = f"Taskbeat: {context.project.name}"
        return calendars.build_feed(name, user.timezone, tasks, since)
