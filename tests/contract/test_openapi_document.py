"""The OpenAPI document against the code it is built from, without a stack: what it says a
request body may hold is what validation accepts, every route that can answer 412 takes
If-Match (and can answer 400 for a malformed one) in the form the routes parse, and the task
list's sorts are enumerated."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import app  # noqa: F401  (registers every route)
from chalicelib import bootstrap
from chalicelib.api import all_routes, openapi
from chalicelib.api.routing import parse_if_match
from chalicelib.domain.errors import BadRequest
from chalicelib.services.tasks import SORTS

ROUTES = all_routes()  # every route module imported

DOCUMENT = openapi.document(bootstrap.VERSION)
BODIES = sorted({spec.body for spec in ROUTES if spec.body is not None}, key=lambda m: m.__name__)


def admits_null(schema: dict[str, Any]) -> bool:
    branches = schema.get("anyOf") or schema.get("oneOf") or [schema]
    return any(branch.get("type") == "null" for branch in branches)


def refuses_null(model: type[BaseModel], field: str) -> bool:
    try:
        model.model_validate({field: None})
    except ValidationError as exc:
        return any(error["loc"][:1] == (field,) for error in exc.errors())
    return False


@pytest.mark.parametrize("model", BODIES, ids=lambda model: model.__name__)
def test_a_body_field_is_nullable_in_the_document_exactly_when_validation_takes_null(
    model: type[BaseModel],
) -> None:
    schema = DOCUMENT["components"]["schemas"][model.__name__]
    said = {name: admits_null(prop) for name, prop in schema["properties"].items()}
    done = {name: not refuses_null(model, name) for name in schema["properties"]}
    assert said == done


def test_fields_left_out_but_never_null_have_no_null_default() -> None:
    title = DOCUMENT["components"]["schemas"]["TaskUpdate"]["properties"]["title"]
    assert title == {
        "maxLength": 200,
        "minLength": 1,
        "pattern": r"\S",  # stripped before its length is checked: blank is too short
        "title": "Title",
        "type": "string",
    }


def test_every_route_that_can_answer_412_takes_if_match_and_can_answer_400() -> None:
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
            if "412" in operation["responses"]:
                assert "If-Match" in headers, (method, path)
                assert "400" in operation["responses"], (method, path)
            else:
                assert "If-Match" not in headers, (method, path)


@pytest.mark.parametrize(
    "value", ['"3"', "3", 'W/"12"', "*", '"x"', "", "three", '"-1"', '"1234567890123456789"']
)
def test_the_if_match_pattern_takes_what_the_routes_take(value: str) -> None:
    try:
        parse_if_match(value)
    except BadRequest:
        taken = False
    else:
        taken = True
    assert bool(re.search(openapi.IF_MATCH_PATTERN, value)) == taken


def test_the_task_list_sorts_are_enumerated() -> None:
    (sort,) = (p for p in DOCUMENT["paths"]["/tasks"]["get"]["parameters"] if p["name"] == "sort")
    assert sort["schema"]["enum"] == list(SORTS)


@pytest.mark.parametrize(
    "path", ["/calendar/{calendar}", "/calendar/{calendar}/projects/{project}"]
)
def test_the_calendar_feeds_are_documented_as_calendars_without_a_bearer_token(path: str) -> None:
    operation = DOCUMENT["paths"][path]["get"]
    assert operation["security"] == []
    assert set(operation["responses"]) == {"200", "304", "404", "503"}
    assert operation["responses"]["200"]["content"] == {
        "text/calendar": {"schema": {"type": "string"}}
    }
    assert set(operation["responses"]["200"]["headers"]) == {"ETag", "Cache-Control"}
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert parameters["If-None-Match"]["in"] == "header"
    assert ".ics" in "".join(p.get("description", "") for p in parameters.values())
