"""A task's history and each user's notifications."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

# The domain's types are for annotations only (see the package's docstring).
if TYPE_CHECKING:
    from chalicelib.domain.activity import HistoryEvent, Notification
    from chalicelib.domain.model import Page, PageRequest


class HistoryRepository(Protocol):
    def find(self, task_id: str, page: PageRequest) -> Page[HistoryEvent]:
        """One page of a task's history, oldest first."""
        ...


class NotificationRepository(Protocol):
    """The notifications of each user. A notification is read when its own flag is set or when
    it is not newer than the user's "read up to" mark (moved by `mark_all_read`)."""

    def add(self, notifications: Sequence[Notification]) -> None: ...

    def find(
        self, user_id: str, page: PageRequest, *, unread_only: bool = False
    ) -> Page[Notification]:
        """One page of the user's notifications, newest first, with `read` resolved."""
        ...

    def mark_read(self, user_id: str, notification_id: str) -> bool:
        """False (and nothing written) if the user has no such notification."""
        ...

    def mark_all_read(self, user_id: str) -> None:
        """Every notification the user has now is read, in a bounded number of calls."""
        ...
