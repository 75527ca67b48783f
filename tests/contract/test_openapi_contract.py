"""Every operation of the OpenAPI document the local stack serves, fuzzed by schemathesis
against that stack: no server error, and every answer as the document describes it (a
documented status code, its content type, its headers and its body schema).

Each operation gets `MAX_EXAMPLES` cases from a fixed seed, valid and invalid (a missing or
forged token, values out of range or of the wrong type, unknown fields, malformed If-Match),
with most ids naming real objects of the seeded stack; conftest.py has the configuration and
the reason for each limit. Every operation is tested, with the five checks below.
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

# Every path, named explicitly: schemathesis leaves out the operation that served the document
# (GET /openapi.json) unless a filter selects it.
schema = schemathesis.pytest.from_fixture("api_schema").include(path_regex="^/")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32 names each operation's subtest by rewriting `node._nodeid`, which
    # pytest 9.2 no longer has (it keeps a structured `_id`): give this node a plain attribute.
    request.node._nodeid = request.node.nodeid


@schema.parametrize()
def test_every_operation_answers_as_documented(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)
