"""tests/integration/test_executions_api.py on the in-memory adapters, but for what counts
DynamoDB calls or needs its conditional writes."""

from tests.integration.test_executions_api import *  # noqa: F403
from tests.integration.test_executions_api import (
    test_an_attempt_named_with_its_task_costs_three_calls,
    test_three_deliveries_of_one_firing_make_one_execution,
)

del test_an_attempt_named_with_its_task_costs_three_calls
del test_three_deliveries_of_one_firing_make_one_execution
