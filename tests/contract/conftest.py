"""The contract run's world: one local stack subprocess (as `make run` starts it), a few real
objects in it that path parameters can name (schemathesis cannot guess ULIDs), and the OpenAPI
document the stack serves, loaded by schemathesis with the run's configuration and hooks."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.config import SchemathesisConfig

from local.testing import (
    DEFAULT_PASSWORD,
    ApiClient,
    StackProcess,
    free_port,
    register_user,
    running_stack,
    wait_until,
)

HERE = Path(__file__).parent

# Reproducible and bounded: a fixed seed, derandomized generation, no shrinking and no example
# database (a failure is reported as found, and nothing of an earlier run is replayed).
SEED = 20261121
MAX_EXAMPLES = 10  # cases per operation, valid and invalid
# Operations that hash a password (argon2, about 0.5 s a call here) get fewer.
PASSWORD_HASHING = ["/auth/register", "/auth/login"]
PASSWORD_HASHING_EXAMPLES = 3


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Under xdist, keep the contract run on one worker, so the session starts one stack.
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.xdist_group("local-stack-contract"))


@dataclass(frozen=True)
class World:
    """What the seeded stack holds: the admin's token, ids by path parameter name, and for
    destructive operations ids of their own, so deleting never takes the shared objects (the
    calendar feeds' operations have their own values too: their segments end in `.ics`)."""

    token: str
    logout_token: str
    rotator_token: str  # rotating a calendar token: not the owner's, whose feeds are fuzzed
    ids: dict[str, str]
    victims: dict[str, dict[str, str]]
    webhook_sink: str


@pytest.fixture(scope="session")
def contract_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    with running_stack(tmp_path_factory.mktemp("contract-stack")) as running:
        yield running


def _seed(api_url: str) -> World:
    owner = register_user(api_url, name="Contract Owner")
    # The first account of a deployment is its admin: the admin-only routes get past their 403.
    assert owner["user"]["role"] == "admin", "the contract stack must start empty"
    member = register_user(api_url, name="Contract Member")
    leaving = register_user(api_url, name="Contract Leaver")
    rotator = register_user(api_url, name="Contract Rotator")
    api = ApiClient(api_url, owner["access_token"])
    as_member = ApiClient(api_url, member["access_token"])

    project = api("POST", "/projects", {"name": "Contract", "description": "schemathesis"}, 201)
    doomed_project = api("POST", "/projects", {"name": "Doomed"}, 201)
    for user in (member, leaving):
        api(
            "POST",
            f"/projects/{project['id']}/members",
            {"user_id": user["user"]["id"], "role": "member"},
            201,
        )

    def task(title: str, **fields: Any) -> dict[str, Any]:
        body = {"title": title, "project_id": project["id"], **fields}
        return api("POST", "/tasks", body, 201)  # type: ignore[no-any-return]

    main_task = task("Contract task", tags=["contract"], due_date="2030-01-01T12:00:00Z")
    task("Contract subtask", parent_id=main_task["id"])
    doomed_task = task("Doomed task")
    comment = api("POST", f"/tasks/{main_task['id']}/comments", {"body": "first"}, 201)
    doomed_comment = api("POST", f"/tasks/{main_task['id']}/comments", {"body": "doomed"}, 201)
    execution = api("POST", f"/tasks/{main_task['id']}/run", None, 202)

    def template(name: str) -> dict[str, Any]:
        body = {"name": name, "task": {"title": "From {{name}}"}, "subtasks": [{"title": "Sub"}]}
        return api("POST", f"/projects/{project['id']}/templates", body, 201)  # type: ignore[no-any-return]

    def rule(name: str) -> dict[str, Any]:
        body = {
            "name": name,
            "trigger": {"event": "task.created", "conditions": {"tag": "never-used"}},
            "actions": [{"type": "notify", "user_id": "creator"}],
        }
        return api("POST", f"/projects/{project['id']}/rules", body, 201)  # type: ignore[no-any-return]

    def workflow(name: str) -> dict[str, Any]:
        body = {
            "project_id": project["id"],
            "name": name,
            "steps": [{"key": "only", "task_id": main_task["id"], "depends_on": []}],
        }
        return api("POST", "/workflows", body, 201)  # type: ignore[no-any-return]

    main_workflow = workflow("Contract workflow")
    run = api("POST", f"/workflows/{main_workflow['id']}/run", None, 202)

    # A mention gives the owner a notification (written by the stream consumer, so waited for).
    owner_email = owner["user"]["email"]
    as_member("POST", f"/tasks/{main_task['id']}/comments", {"body": f"@{owner_email} hi"}, 201)
    notifications = wait_until(
        lambda: api("GET", "/notifications")["items"], 30, 0.1, "the owner's notification"
    )

    # Logging out ends a session: that operation gets a session of its own.
    login = requests.post(
        f"{api_url}/auth/login",
        json={"email": owner_email, "password": DEFAULT_PASSWORD},
        timeout=30,
    )
    assert login.status_code == 200, login.text

    calendar = api("GET", "/users/profile")["calendar_token"]
    return World(
        token=owner["access_token"],
        logout_token=login.json()["access_token"],
        rotator_token=rotator["access_token"],
        ids={
            "project_id": project["id"],
            "user_id": member["user"]["id"],
            "task_id": main_task["id"],
            "comment_id": comment["id"],
            "execution_id": execution["id"],
            "notification_id": notifications[0]["id"],
            "template_id": template("Contract template")["id"],
            "rule_id": rule("Contract rule")["id"],
            "workflow_id": main_workflow["id"],
            "run_id": run["id"],
            "asset": "swagger-ui.css",
        },
        victims={
            "DELETE /projects/{project_id}": {"project_id": doomed_project["id"]},
            "DELETE /projects/{project_id}/members/{user_id}": {"user_id": leaving["user"]["id"]},
            "DELETE /tasks/{task_id}": {"task_id": doomed_task["id"]},
            "DELETE /tasks/{task_id}/comments/{comment_id}": {"comment_id": doomed_comment["id"]},
            "DELETE /templates/{template_id}": {"template_id": template("Doomed")["id"]},
            "DELETE /rules/{rule_id}": {"rule_id": rule("Doomed")["id"]},
            "DELETE /workflows/{workflow_id}": {"workflow_id": workflow("Doomed")["id"]},
            # Not destroyed, but their path parameters take a shape of their own.
            "GET /calendar/{calendar}": {"calendar": f"{calendar}.ics"},
            "GET /calendar/{calendar}/projects/{project}": {
                "calendar": calendar,
                "project": f"{project['id']}.ics",
            },
        },
        # Nothing listens there: webhooks the run writes fail at once and never leave the host.
        webhook_sink=f"http://127.0.0.1:{free_port()}/hook",
    )


@pytest.fixture(scope="session")
def world(contract_stack: StackProcess) -> World:
    return _seed(contract_stack.api)


def keeps_generated(value: Any) -> bool:
    """One generated id in four is sent as generated (an unknown id must be a documented 404 or
    422); the others name a real object. Decided by the value, so reproducible."""
    return zlib.crc32(repr(value).encode()) % 4 == 0


# Body fields that name objects, and the path parameter whose real id they get.
BODY_IDS = {
    "project_id": "project_id",
    "task_id": "task_id",
    "parent_id": "task_id",
    "template_id": "template_id",
    "workflow_id": "workflow_id",
    "user_id": "user_id",
    "assignee_id": "user_id",
}


def adapted_body(body: Any, world: World) -> Any:
    """The body with most ids naming real objects (see `keeps_generated`), and every webhook
    `url` pointed at the loopback sink: the stack calls a task's webhook when it runs, and
    generated hosts are out there on the network."""
    if isinstance(body, list):
        return [adapted_body(item, world) for item in body]
    if not isinstance(body, dict):
        return body
    adapted = {}
    for key, value in body.items():
        if key == "url" and isinstance(value, str):
            adapted[key] = world.webhook_sink
        elif key in BODY_IDS and isinstance(value, str) and not keeps_generated(value):
            adapted[key] = world.ids[BODY_IDS[key]]
        else:
            adapted[key] = adapted_body(value, world)
    return adapted


@pytest.fixture(scope="session")
def api_schema(contract_stack: StackProcess, world: World) -> Any:
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {
                "mode": "all",  # schema-valid data and data that must be refused (4xx)
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "no-shrink": True,
                "database": "none",
            },
            # The fuzzing phase only. The coverage phase enumerates every boundary and every
            # wrong type of every field: about 5,000 cases for this document (the nested
            # schedule, action and rule bodies), 4 to 6 minutes here, where the whole run has
            # 90 seconds; fuzzing draws valid and invalid values for the same fields within
            # the budget (the coverage phase's other probe, methods a path does not take, is
            # tests/integration/test_local_http_api.py and tests/security). The stateful
            # phase follows links, which the document does not declare.
            "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
            "auth": {"openapi": {"bearerAuth": {"bearer": world.token}}},
            "operations": [
                {
                    "include-path": PASSWORD_HASHING,
                    "generation": {"max-examples": PASSWORD_HASHING_EXAMPLES},
                },
            ],
            "request-timeout": 30,
        }
    )
    schema = schemathesis.openapi.from_url(f"{contract_stack.api}/openapi.json", config=config)

    @schema.hook
    def map_case(context: Any, case: Any) -> Any:
        own = world.victims.get(f"{case.method.upper()} {case.path}", {})
        for name, value in list((case.path_parameters or {}).items()):
            real = own.get(name, world.ids.get(name))
            if real is not None and not keeps_generated(value):
                case.path_parameters[name] = real
        if case.path == "/auth/logout" and "Authorization" in (case.headers or {}):
            case.headers["Authorization"] = f"Bearer {world.logout_token}"
        if case.path == "/users/profile/calendar-token" and "Authorization" in (case.headers or {}):
            case.headers["Authorization"] = f"Bearer {world.rotator_token}"
        if isinstance(case.body, dict | list):
            case.body = adapted_body(case.body, world)
        return case

    return schema
