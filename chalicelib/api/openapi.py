"""The OpenAPI 3.1 document, built from the route table and the pydantic models it names.

Requests are validated by the very models the document describes, so the two cannot drift.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from chalicelib.api import all_routes
from chalicelib.api.routing import RouteSpec, required_scope
from chalicelib.domain.idempotency import KEY_PATTERN, MAX_KEY_LENGTH
from chalicelib.representations.schemas import ErrorResponse

REF = "#/components/schemas/{model}"
ERROR_TEXT = {
    400: "Bad request (invalid JSON or query parameter)",
    401: "Missing, expired, revoked or forged token",
    403: "The caller's role does not allow this, or an API token's scopes do not "
    "(`insufficient_scope`)",
    404: "Not found, or not visible to the caller",
    409: "Conflict",
    412: "If-Match does not match the current version",
    413: "Body over 256 KiB",
    415: "Body of a media type other than JSON",
    422: "Validation error",
    429: "Too many attempts",
    503: "A dependency is unavailable",
}
BEARER_DESCRIPTION = (
    "Two kinds of bearer token. An access token (a JWT from `/auth/login`, `/auth/register` "
    "or `/auth/refresh`, 15 minutes) acts as its user on every route. An API token (`tb_...`, "
    "from `POST /users/profile/tokens`) acts as its user within its scopes: `read` (every "
    "GET), `write` (create, change, delete), `run` (run tasks and workflows, cancel and "
    "retry runs); each operation's `x-api-token-scope` names the one it needs, and null "
    "where no API token may call it (tokens, password, roles, logout, calendar token). "
    "Outside its scopes: 403 `insufficient_scope`. Expired, revoked or its user gone: 401."
)
Mode = Literal["validation", "serialization"]
# What routing.parse_if_match takes; anything else is a 400.
IF_MATCH_PATTERN = r'^(\*|(W/)?"?[0-9]{1,18}"?)$'


class _Generator(GenerateJsonSchema):
    """Pydantic's JSON Schema, saying a little more of what validation does: a string that is
    stripped before its minimum length is checked needs a character that is not blank, and a
    field that may be left out but whose validator refuses null (`PATCH` bodies: "may not be
    null") is not nullable and shows no null default."""

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        json_schema = super().str_schema(schema)
        if schema.get("strip_whitespace") and schema.get("min_length"):
            json_schema.setdefault("pattern", r"\S")
        return json_schema

    def function_after_schema(
        self, schema: core_schema.AfterValidatorFunctionSchema
    ) -> JsonSchemaValue:
        inner, function = schema["schema"], schema["function"]
        if (
            inner["type"] == "nullable"
            and function["type"] == "no-info"
            and _refuses_none(function["function"])
        ):
            return self.generate_inner(inner["schema"])
        return super().function_after_schema(schema)

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        json_schema = super().default_schema(schema)
        if json_schema.get("default", ...) is None and not _admits_null(json_schema):
            del json_schema["default"]
        return json_schema


def _refuses_none(validator: Callable[[Any], Any]) -> bool:
    """Whether an after-validator of a nullable field turns null into a validation error."""
    try:
        validator(None)
    except (ValueError, AssertionError):  # what pydantic turns into a validation error
        return True
    except Exception:  # not one that says no to null: the document stays as pydantic wrote it
        return False
    return False


def _admits_null(json_schema: JsonSchemaValue) -> bool:
    for branch in json_schema.get("anyOf") or json_schema.get("oneOf") or [json_schema]:
        types = branch.get("type", ())
        if "null" in ([types] if isinstance(types, str) else list(types)):
            return True
    return False


def _path_params(path: str, docs: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            **({"description": docs[name]} if name in docs else {}),
            "schema": {"type": "string"},
        }
        for name in re.findall(r"{(\w+)}", path)
    ]


def _query_params(model: type[BaseModel] | None) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema(ref_template=REF, schema_generator=_Generator)
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "description": prop.pop("description", ""),
            "schema": prop,
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _operation(spec: RouteSpec, method: str, refs: dict[tuple[Any, Mode], Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    named_headers = {
        name: {"schema": {"type": "string"}, "description": text} for name, text in spec.headers
    }
    if spec.text_body is not None:
        media_type = spec.content_type.split(";", 1)[0].strip()
        responses[str(spec.status)] = {
            "description": spec.text_body,
            "headers": named_headers,
            "content": {media_type: {"schema": {"type": "string"}}},
        }
    elif spec.status == 204 or spec.response is None:
        responses[str(spec.status)] = {"description": "No content" if spec.status == 204 else "OK"}
    else:
        headers = dict(named_headers)
        if "version" in spec.response.model_fields:
            headers["ETag"] = {"schema": {"type": "string"}, "description": 'The version, e.g. "3"'}
        responses[str(spec.status)] = {
            "description": "OK" if spec.status < 300 else "Accepted",
            "headers": headers,
            "content": {"application/json": {"schema": refs[(spec.response, "serialization")]}},
        }
    error_codes = set(spec.errors) | ({401} if spec.auth else set()) | {503}
    if spec.auth:  # an API token outside its scopes, or on a session-only route
        error_codes.add(403)
    # What the routing itself answers, whatever the view: a body that is not JSON (400), too
    # large (413), of another media type (415, Chalice) or invalid (422); a query parameter
    # that cannot be parsed (400) or is out of range (422); an If-Match that is no version (400).
    if spec.body is not None:
        error_codes |= {400, 413, 415, 422}
    if spec.query is not None:
        error_codes |= {400, 422}
    takes_if_match = 412 in spec.errors
    if takes_if_match:
        error_codes.add(400)
    keyed = _takes_idempotency_key(spec, method)
    if keyed:  # a reused key (422), the first request still in flight (409)
        error_codes |= {409, 422}
        for response in responses.values():
            response.setdefault("headers", {})[REPLAYED_HEADER] = REPLAYED_DOC
    for code in sorted(error_codes):
        responses[str(code)] = {
            "description": ERROR_TEXT.get(code, "Error"),
            "content": {"application/json": {"schema": refs[(ErrorResponse, "serialization")]}},
        }
    if spec.conditional:
        responses["304"] = {
            "description": "Not modified: `If-None-Match` names the current ETag",
            "headers": named_headers,
        }
    parameters = _path_params(spec.path, dict(spec.param_docs)) + _query_params(spec.query)
    if spec.conditional:
        parameters.append(
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "An ETag of an earlier answer (or `*`): 304 if it is still current.",
                "schema": {"type": "string"},
            }
        )
    if takes_if_match:  # the routes that can answer 412 are the ones that read If-Match
        parameters.append(
            {
                "name": "If-Match",
                "in": "header",
                "required": False,
                "description": 'The version the change applies to, e.g. "3" (or `*`).',
                "schema": {"type": "string", "pattern": IF_MATCH_PATTERN},
            }
        )
    if method == "POST":
        parameters.append(_idempotency_key_parameter(keyed))
    slug = re.sub(r"[^a-z0-9]+", "_", spec.path.lower()).strip("_")
    operation: dict[str, Any] = {
        "summary": spec.summary,
        **({"description": spec.description} if spec.description else {}),
        "tags": [spec.tag],
        "operationId": f"{method.lower()}_{slug}",
        "parameters": parameters,
        "responses": responses,
    }
    if spec.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(spec.body, "validation")]}},
        }
    operation["security"] = [{"bearerAuth": []}] if spec.auth else []
    if spec.auth:
        operation["x-api-token-scope"] = None if spec.session_only else required_scope(spec, method)
    return operation


REPLAYED_HEADER = "Idempotent-Replayed"
REPLAYED_DOC = {
    "schema": {"type": "string", "enum": ["true"]},
    "description": "`true` when this is the first answer to the request's Idempotency-Key, "
    "sent again (nothing else was done)",
}


def _takes_idempotency_key(spec: RouteSpec, method: str) -> bool:
    return method == "POST" and spec.auth and spec.idempotency != "off"


def _idempotency_key_parameter(keyed: bool) -> dict[str, Any]:
    """The `Idempotency-Key` header of a POST (chalicelib/api/idempotency.py)."""
    if not keyed:  # unauthenticated: no user to key it on
        return {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "Ignored on this route: without a user there is no one to key it on.",
            "schema": {"type": "string"},
        }
    return {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "Any 1 to 255 printable ASCII characters (422 otherwise). Within 24 "
        "hours the same key from the same user on this route with the same body answers the "
        "first answer again (status, body, ETag and Location) with `Idempotent-Replayed: "
        "true`, and does nothing else; with another body or route: 422 "
        "`idempotency_key_reused`; while the first request is still handled: 409 with "
        "Retry-After. 5xx, 401 and 429 answers are not kept.",
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_KEY_LENGTH,
            "pattern": KEY_PATTERN,
        },
    }


@functools.cache
def document(version: str) -> dict[str, Any]:
    routes = all_routes()
    models: list[tuple[type[BaseModel], Mode]] = [(ErrorResponse, "serialization")]
    for spec in routes:
        if spec.body is not None:
            models.append((spec.body, "validation"))
        if spec.response is not None:
            models.append((spec.response, "serialization"))
    refs, definitions = models_json_schema(
        list(dict.fromkeys(models)), ref_template=REF, schema_generator=_Generator
    )
    paths: dict[str, dict[str, Any]] = {}
    for spec in routes:
        for method in spec.methods:
            paths.setdefault(spec.path, {})[method.lower()] = _operation(spec, method, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Taskbeat API",
            "version": version,
            "description": "Task management and task scheduling. Errors always have the "
            "`ErrorResponse` body.",
        },
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": BEARER_DESCRIPTION,
                }
            },
        },
    }
