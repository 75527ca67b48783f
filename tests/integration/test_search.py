"""Search: the index contract on the fake and DynamoDB, and the stream consumer that keeps it."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from chalicelib import bootstrap
from chalicelib.adapters.dynamodb.models import SearchTermModel
from chalicelib.adapters.dynamodb.search import DynamoSearchIndex, term_key
from chalicelib.domain.model import PageRequest
from chalicelib.domain.tasks import TaskCreate, TaskUpdate
from chalicelib.domain.users import RegisterInput
from chalicelib.handlers import streams
from tests.fakes import InMemorySearchIndex


@pytest.fixture(params=["memory", "dynamodb"])
def index(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return InMemorySearchIndex()
    request.getfixturevalue("moto_aws")
    return DynamoSearchIndex()


def make_stop_word(index: Any, project_id: str, term: str) -> None:
    if isinstance(index, InMemorySearchIndex):
        index.stop_words.add((project_id, term))
        index.terms.pop((project_id, term), None)
    else:
        SearchTermModel(key=term_key(project_id, term), too_common=True).save()


def test_postings_put_and_remove(index: Any) -> None:
    index.put("p", "deploy", "t1", 3)
    index.put("p", "deploy", "t2", 1)
    index.put("p", "deploy", "t1", 2)  # a re-index overwrites
    index.put("other", "deploy", "t9", 1)
    assert index.postings("p", ["deploy", "never"]) == {"deploy": {"t1": 2, "t2": 1}, "never": {}}
    index.remove("p", "deploy", "t1")
    index.remove("p", "deploy", "t1")  # idempotent
    index.remove("p", "unknown", "t1")
    assert index.postings("p", ["deploy"]) == {"deploy": {"t2": 1}}


def test_a_stop_word_no_longer_narrows(index: Any) -> None:
    make_stop_word(index, "p", "the")
    index.put("p", "the", "t1", 1)
    assert index.postings("p", ["the"]) == {"the": None}


def stream_event(table_name: str) -> dict[str, Any]:
    """The records of a table's stream, as the Lambda event source mapping would deliver them."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    stream_arn = dynamodb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
    # botocore derives an account-based endpoint from the stream ARN, which moto does not route.
    client = boto3.client(
        "dynamodbstreams",
        region_name="us-east-1",
        endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com",
    )
    records: list[dict[str, Any]] = []
    for shard in client.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
        iterator = client.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for record in client.get_records(ShardIterator=iterator)["Records"]:
            records.append({**record, "eventSourceARN": stream_arn})
    return {"Records": records}


def test_the_stream_consumer_keeps_search_in_step(container: bootstrap.Container) -> None:
    me = container.auth.authenticate(
        container.auth.register(
            RegisterInput(email="a@x.io", password="long enough", name="A")
        ).access_token
    )
    with container.request_scope():
        deploy = container.tasks.create(me, TaskCreate(title="Deploy the API", tags=["ops"]))
    with container.request_scope():
        other = container.tasks.create(me, TaskCreate(title="Write the API docs"))
    with container.request_scope():
        container.tasks.update(me, other.id, TaskUpdate(description="before the deploy"))
    table = container.settings.table_name("tasks")
    result = streams.on_change(stream_event(table))
    assert result["index_writes"] > 0
    with container.request_scope():
        hits = container.search.search(me, "deploy api", None, PageRequest())
    assert [t.id for t in hits.items] == [deploy.id, other.id]
    # Delivered again (at least once): nothing changes.
    streams.on_change(stream_event(table))
    with container.request_scope():
        again = container.search.search(me, "deploy api", None, PageRequest())
    assert [t.id for t in again.items] == [deploy.id, other.id]
