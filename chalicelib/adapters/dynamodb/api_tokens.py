"""DynamoDB repository of API tokens: one table keyed (user_id, token ULID), plus a counter
item per user that caps how many tokens the user holds (see `ApiTokenModel`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pynamodb.exceptions import TransactWriteError, UpdateError

from chalicelib.adapters.dynamodb import prefetch
from chalicelib.adapters.dynamodb.identity import item_key, user_from_model
from chalicelib.adapters.dynamodb.models import ApiTokenModel, UserModel
from chalicelib.adapters.dynamodb.pagination import key_of, paginate
from chalicelib.adapters.dynamodb.prefetch import ItemKey
from chalicelib.adapters.dynamodb.transactions import Transaction, condition_failed
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.api_tokens import ApiToken, Scope, user_of
from chalicelib.domain.errors import TooManyTokens
from chalicelib.domain.ids import ULID_LENGTH
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.users import User
from chalicelib.ports import PrefetchKey

# The counter item's sort key: '#' sorts before any ULID, so a user's tokens are `id >= "0"`.
HELD = "#held"
FIRST_TOKEN_KEY = "0"


def _key(token_id: str) -> ItemKey | None:
    user_id = user_of(token_id)
    return ItemKey(ApiTokenModel, user_id, token_id[:ULID_LENGTH]) if user_id else None


def token_to_model(token: ApiToken) -> ApiTokenModel:
    return ApiTokenModel(
        user_id=token.user_id,
        id=token.local_id,
        name=token.name,
        scopes={scope.value for scope in token.scopes},
        prefix=token.prefix,
        secret_hash=token.secret_hash,
        personal_project_id=token.personal_project_id,
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
    )


def token_from_model(row: ApiTokenModel) -> ApiToken:
    return ApiToken(
        id=row.id + row.user_id,
        user_id=row.user_id,
        personal_project_id=row.personal_project_id or "",
        name=row.name or "",
        scopes=frozenset(Scope(scope) for scope in row.scopes or ()),
        prefix=row.prefix or "",
        secret_hash=row.secret_hash or "",
        created_at=_utc(row.created_at) or datetime.min.replace(tzinfo=UTC),
        expires_at=_utc(row.expires_at),
        last_used_at=_utc(row.last_used_at),
    )


def _utc(at: datetime | None) -> datetime | None:
    return at.astimezone(UTC) if at is not None else None


class DynamoApiTokenRepository:
    @translate_aws_failures
    def create(self, token: ApiToken, max_per_user: int) -> None:
        counter = ApiTokenModel(user_id=token.user_id, id=HELD)
        tx = Transaction()
        try:
            with tx:
                tx.save(
                    "token",
                    token_to_model(token),
                    condition=ApiTokenModel.id.does_not_exist(),
                )
                tx.update(
                    "held",
                    counter,
                    actions=[ApiTokenModel.held.add(1)],
                    condition=ApiTokenModel.held.does_not_exist()
                    | (ApiTokenModel.held < max_per_user),
                )
        except TransactWriteError as exc:
            if "held" in tx.failed(exc):
                raise TooManyTokens(token.user_id) from exc
            raise

    @translate_aws_failures
    def lookup(
        self, token_id: str, user_id: str, prefetch_keys: Sequence[PrefetchKey] = ()
    ) -> tuple[ApiToken | None, User | None]:
        key = _key(token_id)
        if key is None or key.hash_key != user_id:
            return None, None
        user_key = ItemKey(UserModel, user_id)
        found = prefetch.get_many([key, user_key, *(item_key(k) for k in prefetch_keys)])
        # The token is taken (a later read goes to the table); the user is left for the
        # request's own read of it, which then costs nothing.
        prefetch.take(key)
        # The request's first read (authentication), so both are in `found`.
        row, user_row = found.get(key), found.get(user_key)
        return (
            token_from_model(row) if row else None,
            user_from_model(user_row) if user_row else None,
        )

    @translate_aws_failures
    def get(self, token_id: str) -> ApiToken | None:
        key = _key(token_id)
        if key is None:
            return None
        row = prefetch.get(key, ApiTokenModel)
        return token_from_model(row) if row else None

    @translate_aws_failures
    def list_for_user(self, user_id: str, page: PageRequest) -> Page[ApiToken]:
        return paginate(
            lambda limit, start: ApiTokenModel.query(
                user_id,
                range_key_condition=ApiTokenModel.id >= FIRST_TOKEN_KEY,
                scan_index_forward=False,
                limit=limit,
                page_size=limit,
                last_evaluated_key=start,
            ),
            lambda row: key_of(row, "user_id", "id"),
            token_from_model,
            page,
            scope=f"api-tokens:{user_id}",
        )

    @translate_aws_failures
    def delete(self, token_id: str) -> bool:
        key = _key(token_id)
        if key is None:
            return False
        tx = Transaction()
        try:
            with tx:
                tx.delete(
                    "token",
                    ApiTokenModel(user_id=key.hash_key, id=key.range_key),
                    condition=ApiTokenModel.id.exists(),
                )
                tx.update(
                    "held",
                    ApiTokenModel(user_id=key.hash_key, id=HELD),
                    actions=[ApiTokenModel.held.add(-1)],
                    condition=ApiTokenModel.held > 0,
                )
        except TransactWriteError as exc:
            if "token" in tx.failed(exc):
                return False
            raise
        return True

    @translate_aws_failures
    def touch(self, token_id: str, minute: datetime) -> None:
        key = _key(token_id)
        if key is None:
            return
        try:
            ApiTokenModel(user_id=key.hash_key, id=key.range_key).update(
                actions=[ApiTokenModel.last_used_at.set(minute)],
                condition=ApiTokenModel.secret_hash.exists()
                & (
                    ApiTokenModel.last_used_at.does_not_exist()
                    | (ApiTokenModel.last_used_at < minute)
                ),
            )
        except UpdateError as exc:
            if not condition_failed(exc):  # used this minute already, or deleted: nothing to do
                raise
