"""DynamoDB repository of WebSocket connections and their subscriptions.

`connections` holds one item per open connection (with the channels it subscribed to, so
`$disconnect` knows what to delete); `subscriptions` one item per (channel, connection), so a
channel's subscribers are one Query on the key. Both expire with API Gateway's 2-hour limit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.condition import Condition

from chalicelib.adapters.dynamodb.models import ConnectionModel, SubscriptionModel
from chalicelib.adapters.dynamodb.transactions import condition_failed
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.realtime import Connection, Subscriber


def _connection_from_model(row: ConnectionModel) -> Connection:
    return Connection(
        connection_id=row.connection_id,
        user_id=row.user_id,
        connected_at=row.connected_at,
        expires_at=row.expires_at,
        channels=frozenset(row.channels or ()),
    )


def _subscriber_from_model(row: SubscriptionModel) -> Subscriber:
    return Subscriber(
        row.connection_id,
        row.user_id,
        None if row.delivered is None else int(row.delivered),
        row.claimed_until,
    )


class DynamoConnectionRepository:
    @translate_aws_failures
    def add(self, connection: Connection) -> None:
        ConnectionModel(
            connection.connection_id,
            user_id=connection.user_id,
            connected_at=connection.connected_at,
            expires_at=connection.expires_at,
        ).save()

    @translate_aws_failures
    def get(self, connection_id: str) -> Connection | None:
        try:
            row = ConnectionModel.get(connection_id, consistent_read=True)
        except ConnectionModel.DoesNotExist:
            return None
        return _connection_from_model(row)

    @translate_aws_failures
    def remove(self, connection_id: str) -> None:
        try:
            row = ConnectionModel.get(connection_id, consistent_read=True)
        except ConnectionModel.DoesNotExist:
            return
        with SubscriptionModel.batch_write() as batch:
            for channel in row.channels or ():
                batch.delete(SubscriptionModel(channel, connection_id))
        row.delete()

    @translate_aws_failures
    def subscribe(self, connection: Connection, channel: str, delivered: int | None = None) -> bool:
        # The connection records the channel first (conditional on it still existing): a
        # subscription never outlives the record `$disconnect` cleans up from.
        try:
            ConnectionModel(connection.connection_id).update(
                actions=[ConnectionModel.channels.add({channel})],
                condition=ConnectionModel.connection_id.exists(),
            )
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        SubscriptionModel(
            channel,
            connection.connection_id,
            user_id=connection.user_id,
            expires_at=connection.expires_at,
            delivered=delivered,
        ).save()
        return True

    @staticmethod
    def _move(channel: str, connection_id: str, actions: list[Any], condition: Condition) -> bool:
        try:
            SubscriptionModel(channel, connection_id).update(actions=actions, condition=condition)
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    @staticmethod
    def _free_at(sent: int, now: datetime) -> Condition:
        """At `sent`, and no claim held (or only one that ran out)."""
        free: Condition = SubscriptionModel.claimed_until.does_not_exist() | (
            SubscriptionModel.claimed_until < now
        )
        at_sent: Condition = SubscriptionModel.delivered == sent
        both: Condition = at_sent & free  # PynamoDB's `&` is untyped
        return both

    @translate_aws_failures
    def claim(
        self,
        channel: str,
        connection_id: str,
        sent: int,
        through: int,
        until: datetime,
        now: datetime,
    ) -> bool:
        return self._move(
            channel,
            connection_id,
            [SubscriptionModel.claimed.set(through), SubscriptionModel.claimed_until.set(until)],
            self._free_at(sent, now),
        )

    @translate_aws_failures
    def release(self, channel: str, connection_id: str, through: int) -> bool:
        return self._move(
            channel,
            connection_id,
            [
                SubscriptionModel.delivered.set(through),
                SubscriptionModel.claimed.remove(),
                SubscriptionModel.claimed_until.remove(),
            ],
            SubscriptionModel.claimed == through,
        )

    @translate_aws_failures
    def subscriber(self, channel: str, connection_id: str) -> Subscriber | None:
        try:
            row = SubscriptionModel.get(channel, connection_id, consistent_read=True)
        except SubscriptionModel.DoesNotExist:
            return None
        return _subscriber_from_model(row)

    @translate_aws_failures
    def unsubscribe(self, connection: Connection, channel: str) -> None:
        SubscriptionModel(channel, connection.connection_id).delete()
        try:
            ConnectionModel(connection.connection_id).update(
                actions=[ConnectionModel.channels.delete({channel})],
                condition=ConnectionModel.connection_id.exists(),
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise

    @translate_aws_failures
    def subscribers(self, channel: str) -> list[Subscriber]:
        return [
            _subscriber_from_model(row)
            # Consistent: a subscription made with `after` must be seen by the next event's
            # fan-out once its catch-up has read the log (RealtimeService).
            for row in SubscriptionModel.query(channel, consistent_read=True)
        ]

    @translate_aws_failures
    def connections_of(self, user_id: str) -> list[str]:
        return [row.connection_id for row in ConnectionModel.by_user.query(user_id)]
