"""tests/integration/test_http_api.py on the in-memory adapters, but for its login lockout (the
Retry-After it checks needs a clock that moves) and its failures of AWS (DynamoDB's errors)."""

from tests.integration.test_http_api import *  # noqa: F403
from tests.integration.test_http_api import TestFailuresOfAws, TestRegisterAndLogin

del TestFailuresOfAws, TestRegisterAndLogin
