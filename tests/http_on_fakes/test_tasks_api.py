"""tests/integration/test_tasks_api.py on the in-memory adapters."""

from tests.integration.test_tasks_api import *  # noqa: F403
