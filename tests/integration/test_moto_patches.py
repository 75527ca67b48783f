"""The local stack's patches to moto answer exactly what moto answers.

`local.moto_patches` dumps DynamoDB item operations' answers as JSON instead of walking
botocore's shapes. Each call below runs twice on the same data, with and without the patch,
and boto3 must parse the same answer from both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import moto_patches

TABLE = "patched"
ITEM: dict[str, Any] = {
    "pk": {"S": "a"},
    "sk": {"S": "1"},
    "number": {"N": "1.5"},
    "binary": {"B": b"\x00\x01\xff"},
    "nested": {"M": {"list": {"L": [{"S": "x"}, {"NULL": True}, {"BOOL": False}]}}},
    "strings": {"SS": ["p", "q"]},
    "numbers": {"NS": ["1", "2"]},
}
KEY = {"pk": {"S": "a"}, "sk": {"S": "1"}}


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for sk in ("1", "2", "3"):
            client.put_item(TableName=TABLE, Item=ITEM | {"sk": {"S": sk}})
        yield client


def _both(call: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    moto_answer = call()
    with moto_patches.installed():
        patched_answer = call()
    for answer in (moto_answer, patched_answer):
        answer.pop("ResponseMetadata", None)
    return moto_answer, patched_answer


CALLS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "get_item": lambda c: c.get_item(TableName=TABLE, Key=KEY, ConsistentRead=True),
    "get_item_missing": lambda c: c.get_item(TableName=TABLE, Key=KEY | {"sk": {"S": "9"}}),
    "batch_get_item": lambda c: c.batch_get_item(
        RequestItems={TABLE: {"Keys": [KEY, KEY | {"sk": {"S": "9"}}], "ConsistentRead": True}}
    ),
    "query_page": lambda c: c.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "a"}},
        Limit=2,
        ReturnConsumedCapacity="TOTAL",
    ),
    "update_item": lambda c: c.update_item(
        TableName=TABLE,
        Key=KEY,
        UpdateExpression="SET #n = :value",
        ExpressionAttributeNames={"#n": "number"},
        ExpressionAttributeValues={":value": {"N": "7"}},
        ReturnValues="ALL_NEW",
    ),
    "put_item_old": lambda c: c.put_item(TableName=TABLE, Item=ITEM, ReturnValues="ALL_OLD"),
    "delete_item_old": lambda c: (
        c.put_item(TableName=TABLE, Item=ITEM | {"sk": {"S": "3"}}),
        c.delete_item(TableName=TABLE, Key=KEY | {"sk": {"S": "3"}}, ReturnValues="ALL_OLD"),
    )[1],
    "transact_get_items": lambda c: c.transact_get_items(
        TransactItems=[{"Get": {"TableName": TABLE, "Key": KEY}}]
    ),
    "transact_write_items": lambda c: c.transact_write_items(
        TransactItems=[
            {
                "ConditionCheck": {
                    "TableName": TABLE,
                    "Key": KEY,
                    "ConditionExpression": "attribute_exists(pk)",
                }
            }
        ]
    ),
    "batch_write_item": lambda c: c.batch_write_item(
        RequestItems={TABLE: [{"PutRequest": {"Item": ITEM | {"sk": {"S": "4"}}}}]}
    ),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_item_operations_answer_as_moto_does(dynamodb: Any, name: str) -> None:
    call = CALLS[name]
    moto_answer, patched_answer = _both(lambda: call(dynamodb))
    assert patched_answer == moto_answer


def test_the_patch_is_in_place_while_installed(dynamodb: Any) -> None:
    """The comparison above means something only if the patched path actually ran."""
    from moto.dynamodb.responses import DynamoResult

    original = DynamoResult.execute_result
    with moto_patches.installed():
        assert DynamoResult.execute_result is not original
        assert dynamodb.get_item(TableName=TABLE, Key=KEY)["Item"]["binary"] == {
            "B": b"\x00\x01\xff"
        }
    assert DynamoResult.execute_result is original


def test_other_operations_keep_moto_s_serializer(dynamodb: Any) -> None:
    moto_answer, patched_answer = _both(lambda: dynamodb.describe_table(TableName=TABLE))
    assert patched_answer == moto_answer


def test_without_speedups_only_the_thread_safety_patches_are_in_place(dynamodb: Any) -> None:
    """What the concurrency tests run on: moto's own answers, our writes' lock and transaction."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoResult

    answers, transactions = DynamoResult.execute_result, DynamoDBBackend.transact_write_items
    with moto_patches.installed(speedups=False):
        assert DynamoResult.execute_result is answers
        assert DynamoDBBackend.transact_write_items is not transactions
        assert dynamodb.get_item(TableName=TABLE, Key=KEY)["Item"]["binary"] == {
            "B": b"\x00\x01\xff"
        }
    assert DynamoDBBackend.transact_write_items is transactions
