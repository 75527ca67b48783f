"""tests/integration/test_idempotency_api.py on the in-memory adapters."""

from tests.integration.test_idempotency_api import *  # noqa: F403
