"""The records of `Idempotency-Key`s in DynamoDB (ports.IdempotencyStore), one item per
(user, key), and the guard that makes a route's own transactions carry its claim.

- `claim` is one PutItem whose condition admits a new key, an expired record, or a record whose
  lease is over, whose work was not committed and whose fingerprint is the same (a takeover
  after a crash). With `ReturnValuesOnConditionCheckFailure=ALL_OLD`, a refused claim returns
  the holding record in the same call: a replay costs one call, a first request two (claim and
  complete) and nothing more.
- `guarded` installs, for the request, a hook of `transactions.Transaction`: every
  TransactWriteItems the adapters send adds an Update of the record on condition that this
  claim still holds (same lease id, in progress), setting `committed`. The work and the claim's
  check are one transaction: if the claim was taken over, the work is not written
  (`ClaimLost`); once written, the claim is never taken over. Single-item writes (PutItem,
  UpdateItem outside a transaction) are not guarded: docs/idempotency.md lists the routes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from pynamodb.attributes import UTCDateTimeAttribute
from pynamodb.exceptions import DeleteError, UpdateError

from chalicelib.adapters.dynamodb import connection, transactions
from chalicelib.adapters.dynamodb.models import IdempotencyModel
from chalicelib.adapters.dynamodb.transactions import GUARD_LABEL, Transaction, condition_failed
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.idempotency import ClaimLost, IdempotencyRecord, State

_IN_PROGRESS = State.IN_PROGRESS.value
_CLAIMABLE = (
    "attribute_not_exists(#id) OR #expires_at <= :now_epoch OR "
    "(#state = :in_progress AND #lease_until <= :now AND attribute_not_exists(#committed) "
    "AND #fingerprint = :fingerprint)"
)
_utc = UTCDateTimeAttribute()
_NAMES = {
    "#id": "id",
    "#expires_at": "expires_at",
    "#state": "state",
    "#lease_until": "lease_until",
    "#committed": "committed",
    "#fingerprint": "fingerprint",
}


def record_id(user_id: str, key: str) -> str:
    return f"{user_id}#{key}"


def record_to_model(record: IdempotencyRecord) -> IdempotencyModel:
    return IdempotencyModel(
        id=record_id(record.user_id, record.key),
        fingerprint=record.fingerprint,
        route=record.route,
        state=record.state.value,
        lease_id=record.lease_id,
        lease_until=record.lease_until,
        committed=True if record.committed else None,
        answer=record.answer,
        sealed=record.sealed,
        expires_at=record.expires_at,
    )


def record_from_model(row: IdempotencyModel, user_id: str, key: str) -> IdempotencyRecord:
    return IdempotencyRecord(
        user_id=user_id,
        key=key,
        fingerprint=row.fingerprint,
        route=row.route,
        state=State(row.state),
        lease_id=row.lease_id,
        lease_until=row.lease_until,
        expires_at=row.expires_at,
        committed=bool(row.committed),
        answer=row.answer,
        sealed=bool(row.sealed),
    )


class DynamoIdempotencyStore:
    @translate_aws_failures
    def claim(self, record: IdempotencyRecord, now: datetime) -> IdempotencyRecord | None:
        item = record_to_model(record).serialize()
        client = connection.root().client
        try:
            client.put_item(
                TableName=IdempotencyModel.Meta.table_name,
                Item=item,
                ConditionExpression=_CLAIMABLE,
                ExpressionAttributeNames=_NAMES,
                ExpressionAttributeValues={
                    ":now_epoch": {"N": str(int(now.timestamp()))},
                    ":in_progress": {"S": _IN_PROGRESS},
                    ":now": {"S": _utc.serialize(now)},  # type: ignore[no-untyped-call]
                    ":fingerprint": {"S": record.fingerprint},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except client.exceptions.ConditionalCheckFailedException as exc:
            # The condition fails only on an item that exists: ALL_OLD returns it.
            held: dict[str, Any] = exc.response["Item"]
            row = IdempotencyModel.from_raw_data(held)
            return record_from_model(row, record.user_id, record.key)
        return None

    @translate_aws_failures
    def complete(self, record: IdempotencyRecord, answer: bytes, sealed: bool) -> bool:
        row = IdempotencyModel(id=record_id(record.user_id, record.key))
        try:
            row.update(
                actions=[
                    IdempotencyModel.state.set(State.DONE.value),
                    IdempotencyModel.answer.set(answer),
                    IdempotencyModel.sealed.set(sealed),
                ],
                condition=_holds(record),
            )
        except UpdateError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    @translate_aws_failures
    def release(self, record: IdempotencyRecord, now: datetime) -> None:
        row = IdempotencyModel(id=record_id(record.user_id, record.key))
        try:
            row.delete(condition=_holds(record) & IdempotencyModel.committed.does_not_exist())
            return
        except DeleteError as exc:
            if not condition_failed(exc):
                raise
        try:  # committed (or no longer ours): end the lease, if it is still ours
            row.update(actions=[IdempotencyModel.lease_until.set(now)], condition=_holds(record))
        except UpdateError as exc:
            if not condition_failed(exc):
                raise

    @contextmanager
    def guarded(self, record: IdempotencyRecord) -> Iterator[None]:
        key = record_id(record.user_id, record.key)

        def add(tx: Transaction) -> None:
            tx.update(
                GUARD_LABEL,
                IdempotencyModel(id=key),
                [IdempotencyModel.committed.set(True)],
                _holds(record),
            )

        def lost() -> Exception:
            return ClaimLost(
                "this request outlived its Idempotency-Key's lease and another request took "
                "the key over; nothing was written"
            )

        token = transactions.set_guard((add, lost))
        try:
            yield
        finally:
            transactions.reset_guard(token)


def _holds(record: IdempotencyRecord) -> Any:
    return (IdempotencyModel.lease_id == record.lease_id) & (IdempotencyModel.state == _IN_PROGRESS)
