"""tests/integration/test_workflows_api.py on the in-memory adapters, but for its DynamoDB call
budgets."""

from tests.integration.test_workflows_api import *  # noqa: F403
from tests.integration.test_workflows_api import (
    test_a_schedule_is_shown_with_its_next_run,
    test_create_read_change_delete_within_budget,
    test_list_newest_first_in_pages,
    test_the_largest_workflow_stays_within_the_write_budget,
)

del test_a_schedule_is_shown_with_its_next_run, test_create_read_change_delete_within_budget
del test_list_newest_first_in_pages, test_the_largest_workflow_stays_within_the_write_budget
