"""tests/integration/test_api_tokens_api.py on the in-memory adapters, but for what only
DynamoDB shows (calls per request, stored items)."""

from tests.integration.test_api_tokens_api import *  # noqa: F403
from tests.integration.test_api_tokens_api import TestDynamoDB

del TestDynamoDB
