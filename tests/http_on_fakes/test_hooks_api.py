"""tests/integration/test_hooks_api.py on the in-memory adapters, but for what needs moto (its
DynamoDB call budgets, streams and SQS)."""

import pytest

from tests.integration.test_hooks_api import *  # noqa: F403
from tests.integration.test_hooks_api import hook_queue, settings

del hook_queue, settings


@pytest.fixture(autouse=True)
def hook_queue() -> None:
    """No SQS here: the in-memory adapters hold the queue."""
