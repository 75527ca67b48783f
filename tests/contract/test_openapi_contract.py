"""Every operation of the OpenAPI document the local stack serves, fuzzed by schemathesis
against that stack: no server error, and every response as the document describes it (a
documented status code, its content type, its headers and its body schema).

Each operation gets the coverage phase's cases (boundary and invalid values of every parameter
and body field, a missing token, methods the path does not take) and `MAX_EXAMPLES` fuzzed
cases, valid and invalid, from a fixed seed (conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32 names each operation's subtest by rewriting `node._nodeid`, which
    # pytest 9.2 no longer has (it keeps a structured `_id`): give this node a plain attribute.
    request.node._nodeid = request.node.nodeid


@schema.parametrize()
def test_every_operation_answers_as_documented(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)
