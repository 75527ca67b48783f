"""A user's notifications: list (newest first, optionally unread only), mark one or all read.

Only the caller's own notifications are ever reached: every operation is keyed by the caller's
user id, so another user's notification id is simply not found.
"""

from __future__ import annotations

from chalicelib.domain.activity import Notification
from chalicelib.domain.errors import NotFound
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.principals import Principal
from chalicelib.ports import NotificationRepository, PrefetchKey, reads


class NotificationService:
    def __init__(self, notifications: NotificationRepository) -> None:
        self._notifications = notifications

    # ---- first reads: what each use case reads before anything else ------------------------------
    # The route fetches these items with the caller's session; the repositories take the
    # fetched copies.

    @staticmethod
    def reads_for_inbox(principal: Principal) -> list[PrefetchKey]:
        """Listing, or marking all read: the caller's "read up to" mark."""
        return [reads.notification_state(principal.user_id)]

    def find(
        self, principal: Principal, page: PageRequest, *, unread_only: bool = False
    ) -> Page[Notification]:
        return self._notifications.find(principal.user_id, page, unread_only=unread_only)

    def mark_read(self, principal: Principal, notification_id: str) -> None:
        if not self._notifications.mark_read(principal.user_id, notification_id):
            raise NotFound("notification not found")

    def mark_all_read(self, principal: Principal) -> None:
        self._notifications.mark_all_read(principal.user_id)
