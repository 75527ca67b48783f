"""The tables, how they are bound to a stage, and their specs for CDK and the local stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.models import Model

from chalicelib.adapters.dynamodb import connection, models

ALL_MODELS: tuple[type[Model], ...] = (
    models.UserModel,
    models.ClaimModel,
    models.SessionModel,
    models.LoginThrottleModel,
    models.ProjectModel,
    models.MembershipModel,
    models.UserProjectsModel,
    models.TaskModel,
    models.TaskGraphModel,
    models.TaskHistoryModel,
    models.NotificationModel,
    models.NotificationStateModel,
    models.CommentModel,
    models.SearchTermModel,
    models.ExecutionModel,
    models.WorkflowModel,
    models.WorkflowRunModel,
    models.TemplateModel,
    models.RuleModel,
    models.RuleExecutionModel,
    models.ConnectionModel,
    models.SubscriptionModel,
    models.ProjectEventModel,
    models.ApiTokenModel,
    models.HookModel,
    models.DeliveryModel,
    models.IdempotencyModel,
)

# Base names are kept here so that binding twice (tests, local stack restarts) stays idempotent.
_BASE_NAMES: dict[type[Model], str] = {model: model.Meta.table_name for model in ALL_MODELS}


def bind(table_prefix: str, region: str) -> None:
    """Point every model at the stage's tables. Called once by `bootstrap`."""
    connection.configure(region)
    for model, base in _BASE_NAMES.items():
        name = f"{table_prefix}{base}"
        if model.Meta.table_name != name or getattr(model.Meta, "region", None) != region:
            model.Meta.table_name = name
            model.Meta.region = region
            model._connection = None  # rebuilt lazily with the new name and region


def reset() -> None:
    """Forget the shared client and every model's connection (the local stack's stop, tests)."""
    connection.forget()
    for model in ALL_MODELS:
        model._connection = None


@dataclass(frozen=True)
class IndexSpec:
    name: str
    hash_key: str
    range_key: str | None
    projection: str  # ALL | KEYS_ONLY


@dataclass(frozen=True)
class TableSpec:
    """What CDK and the local stack need to create one table, read off its model."""

    base_name: str
    hash_key: str
    range_key: str | None
    attribute_types: dict[str, str]  # key attribute name -> S | N | B
    indexes: tuple[IndexSpec, ...]
    ttl_attribute: str | None
    stream: bool


def _key(schema: Any, key_type: str) -> str | None:
    return next((k["AttributeName"] for k in schema if k["KeyType"] == key_type), None)


def spec(model: type[Model]) -> TableSpec:
    schema = model._get_schema()
    ttl = model._ttl_attribute()  # type: ignore[no-untyped-call]
    return TableSpec(
        base_name=_BASE_NAMES[model],
        hash_key=str(_key(schema["key_schema"], "HASH")),
        range_key=_key(schema["key_schema"], "RANGE"),
        attribute_types={
            a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]
        },
        indexes=tuple(
            IndexSpec(
                name=index["index_name"],
                hash_key=str(_key(index["key_schema"], "HASH")),
                range_key=_key(index["key_schema"], "RANGE"),
                projection=index["projection"]["ProjectionType"],
            )
            for index in schema["global_secondary_indexes"]
        ),
        ttl_attribute=ttl.attr_name if ttl else None,
        stream=hasattr(model.Meta, "stream_view_type"),
    )


def specs() -> list[TableSpec]:
    return [spec(model) for model in ALL_MODELS]


def create_table_request(table: TableSpec, name: str) -> dict[str, Any]:
    """The CreateTable request for one spec (the local stack and tests; CDK builds its own)."""

    def key_schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
        keys = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        if range_key:
            keys.append({"AttributeName": range_key, "KeyType": "RANGE"})
        return keys

    request: dict[str, Any] = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": key_schema(table.hash_key, table.range_key),
        "AttributeDefinitions": [
            {"AttributeName": attr, "AttributeType": kind}
            for attr, kind in table.attribute_types.items()
        ],
    }
    if table.indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": key_schema(index.hash_key, index.range_key),
                "Projection": {"ProjectionType": index.projection},
            }
            for index in table.indexes
        ]
    if table.stream:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
    return request


def create_all(client: Any, table_prefix: str) -> None:
    """Create every table with one boto3 DynamoDB client (local stack and tests only)."""
    existing = set(client.list_tables()["TableNames"])
    for table in specs():
        name = f"{table_prefix}{table.base_name}"
        if name in existing:
            continue
        client.create_table(**create_table_request(table, name))
        if table.ttl_attribute:
            client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )
