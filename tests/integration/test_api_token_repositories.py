"""One contract suite for the API token repository, on the in-memory fake and on DynamoDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.dynamodb.api_tokens import DynamoApiTokenRepository
from chalicelib.adapters.dynamodb.identity import DynamoUserRepository
from chalicelib.domain import api_tokens
from chalicelib.domain.api_tokens import ApiToken, Scope
from chalicelib.domain.errors import TooManyTokens
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.ports import reads
from tests.fakes import (
    InMemoryApiTokenRepository,
    InMemorySessionRepository,
    InMemoryUserRepository,
)
from tests.integration.test_identity_repositories import account

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "dynamodb"])
def repos(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "memory":
        users = InMemoryUserRepository(InMemorySessionRepository())
        return {"users": users, "tokens": InMemoryApiTokenRepository(users)}
    request.getfixturevalue("moto_aws")
    return {"users": DynamoUserRepository(), "tokens": DynamoApiTokenRepository()}


def stored_user(repos: dict[str, Any]) -> str:
    user, project, owner, session = account(f"{new_id().lower()}@example.com")
    repos["users"].create_account(user, project, owner, session, first_admin=False)
    return str(user.id)


def token(user_id: str, **fields: Any) -> ApiToken:
    values: dict[str, Any] = {
        "id": api_tokens.new_token_id(user_id),
        "user_id": user_id,
        "personal_project_id": new_id(),
        "name": "script",
        "scopes": frozenset({Scope.READ, Scope.RUN}),
        "prefix": "tb_0123456789AB",
        "secret_hash": "a" * 64,
        "created_at": NOW,
    } | fields
    return ApiToken(**values)


def test_a_token_reads_back_as_written(repos: dict[str, Any]) -> None:
    user_id = stored_user(repos)
    made = token(user_id, expires_at=NOW + timedelta(days=1))
    repos["tokens"].create(made, 50)
    assert repos["tokens"].get(made.id) == made
    found, user = repos["tokens"].lookup(made.id, user_id, [reads.user(user_id)])
    assert found == made
    assert user is not None
    assert user.id == user_id
    assert repos["tokens"].get("not-a-token-id") is None


def test_a_lookup_by_another_user_or_a_missing_token_finds_nothing(repos: dict[str, Any]) -> None:
    user_id, other = stored_user(repos), stored_user(repos)
    made = token(user_id)
    repos["tokens"].create(made, 50)
    assert repos["tokens"].lookup(made.id, other) == (None, None)
    missing, user = repos["tokens"].lookup(token(user_id).id, user_id)
    assert missing is None
    assert user is not None
    assert repos["tokens"].lookup("nope", user_id) == (None, None)


def test_the_cap_holds_and_a_delete_frees_a_place(repos: dict[str, Any]) -> None:
    user_id = stored_user(repos)
    first, second = token(user_id), token(user_id)
    repos["tokens"].create(first, 2)
    repos["tokens"].create(second, 2)
    with pytest.raises(TooManyTokens):
        repos["tokens"].create(token(user_id), 2)
    repos["tokens"].create(token(stored_user(repos)), 2)  # another user's count is theirs
    assert repos["tokens"].delete(first.id)
    assert not repos["tokens"].delete(first.id)
    assert not repos["tokens"].delete("nope")
    repos["tokens"].create(token(user_id), 2)


def test_a_list_is_the_users_newest_first_in_pages(repos: dict[str, Any]) -> None:
    user_id = stored_user(repos)
    made = [token(user_id) for _ in range(3)]
    for item in made:
        repos["tokens"].create(item, 50)
    repos["tokens"].create(token(stored_user(repos)), 50)
    page = repos["tokens"].list_for_user(user_id, PageRequest(limit=2))
    assert [t.id for t in page.items] == [made[2].id, made[1].id]
    rest = repos["tokens"].list_for_user(user_id, PageRequest(limit=2, cursor=page.next_cursor))
    assert [t.id for t in rest.items] == [made[0].id]
    assert rest.next_cursor is None


def test_last_use_moves_forward_only_and_never_revives_a_token(repos: dict[str, Any]) -> None:
    user_id = stored_user(repos)
    made = token(user_id)
    repos["tokens"].create(made, 50)
    minute = NOW.replace(second=0)
    repos["tokens"].touch(made.id, minute)
    repos["tokens"].touch(made.id, minute - timedelta(minutes=1))  # older: nothing changes
    assert repos["tokens"].get(made.id).last_used_at == minute
    repos["tokens"].touch(made.id, minute + timedelta(minutes=1))
    assert repos["tokens"].get(made.id).last_used_at == minute + timedelta(minutes=1)
    repos["tokens"].delete(made.id)
    repos["tokens"].touch(made.id, minute + timedelta(minutes=2))
    assert repos["tokens"].get(made.id) is None
    repos["tokens"].touch("nope", minute)
