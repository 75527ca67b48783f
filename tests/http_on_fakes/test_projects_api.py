"""tests/integration/test_projects_api.py on the in-memory adapters, but for its DynamoDB call
budget."""

from tests.integration.test_projects_api import *  # noqa: F403
from tests.integration.test_projects_api import TestCallBudget

del TestCallBudget
