"""The security suite's world: one moto account per test module, built once.

Registering users and building a team costs a few seconds, so each module builds its world once
(`world`, module scope) and every test of the module shares it; a test that destroys something
makes its own copy first (see `World.fresh_*`). Each module is one xdist group, so its tests run
on one worker, in order, and the module's moto account is never shared with another module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

from app import app
from chalicelib import bootstrap
from chalicelib.adapters.dynamodb import connection, tables
from chalicelib.domain.model import new_id
from chalicelib.settings import Settings
from local import moto_patches
from tests.fakes import fast_hasher
from tests.integration.conftest import REGION, TEST_ENV

HERE = os.path.dirname(__file__)
PASSWORD = "correct horse battery"
# Everyone a test may act as: the project's five roles, a second member, and the deployment's
# admin, who is no member of the team project (a global admin has no project rights).
PROJECT_ROLES = ("owner", "admin", "member", "viewer")
PRINCIPALS = ("owner", "admin", "member", "other", "viewer", "outsider", "root")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # One xdist group per module: its module-scoped world is built once, on one worker.
    for item in items:
        if os.path.dirname(str(item.path)) == HERE:
            item.add_marker(pytest.mark.xdist_group(f"security-{item.path.stem}"))


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    @property
    def code(self) -> str | None:
        payload = self.json
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            return str(payload["error"]["code"])
        return None

    def __repr__(self) -> str:
        return f"<{self.status} {self.body[:300]!r}>"


@dataclass
class User:
    name: str
    email: str
    id: str
    access: str
    refresh: str
    personal_project_id: str


@dataclass
class World:
    client: Client
    container: bootstrap.Container
    settings: Settings
    users: dict[str, User] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    # The DynamoDB operations of the last request.
    dynamo_calls: list[str] = field(default_factory=list)
    key_material: list[str] = field(default_factory=list)

    # ---- requests ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """`path` is under /api/v1 (the test client sees it without the stage)."""
        all_headers = {"content-type": "application/json", **(headers or {})}
        if token:
            all_headers["authorization"] = f"Bearer {token}"
        payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.dynamo_calls.clear()
        response = self.client.http.request(method, f"/v1{path}", headers=all_headers, body=payload)
        return Answer(response.status_code, dict(response.headers), response.body)

    def as_(self, who: str, method: str, path: str, body: Any = None, **kwargs: Any) -> Answer:
        return self.request(method, path, body, token=self.users[who].access, **kwargs)

    def ok(self, who: str, method: str, path: str, body: Any = None) -> Any:
        answer = self.as_(who, method, path, body)
        assert answer.status in (200, 201, 202, 204), (method, path, answer)
        return answer.json

    # ---- people -------------------------------------------------------------------------------

    def register(self, name: str, email: str | None = None) -> User:
        email = email or f"{name}-{new_id().lower()}@example.com"
        answer = self.request(
            "POST", "/auth/register", {"email": email, "password": PASSWORD, "name": name}
        )
        assert answer.status == 201, answer
        body = answer.json
        user = User(
            name,
            email,
            body["user"]["id"],
            body["access_token"],
            body["refresh_token"],
            self._personal_project(body["access_token"]),
        )
        self.users[name] = user
        return user

    def _personal_project(self, token: str) -> str:
        projects = self.request("GET", "/projects", token=token).json["items"]
        return next(p["id"] for p in projects if p["name"] == "Personal")

    def login(self, who: str) -> dict[str, Any]:
        """A new session of `who` (its own access and refresh token)."""
        answer = self.request(
            "POST", "/auth/login", {"email": self.users[who].email, "password": PASSWORD}
        )
        assert answer.status == 200, answer
        return answer.json  # type: ignore[no-any-return]

    # ---- things in the team project -----------------------------------------------------------

    def fresh_project(self, *, with_extra: bool = True) -> str:
        """A project of `owner` with admin, member, other and viewer (and `extra`, a member)."""
        project = self.ok("owner", "POST", "/projects", {"name": "Fresh"})["id"]
        roles = {"admin": "admin", "member": "member", "other": "member", "viewer": "viewer"}
        if with_extra:
            roles["extra"] = "member"
        for name, role in roles.items():
            self.ok(
                "owner",
                "POST",
                f"/projects/{project}/members",
                {"user_id": self.users[name].id, "role": role},
            )
        return project

    def fresh_task(self, who: str = "member", **fields: Any) -> str:
        body = {"title": "Fresh task", "project_id": self.ids["project"], **fields}
        return str(self.ok(who, "POST", "/tasks", body)["id"])

    def fresh_comment(self, who: str = "member") -> str:
        body = {"body": "a comment"}
        return str(self.ok(who, "POST", f"/tasks/{self.ids['task']}/comments", body)["id"])

    def fresh_workflow(self, who: str = "member") -> str:
        body = {
            "project_id": self.ids["project"],
            "name": "Flow",
            "steps": [{"key": "a", "task_id": self.ids["task"], "depends_on": []}],
        }
        return str(self.ok(who, "POST", "/workflows", body)["id"])

    def fresh_run(self) -> str:
        return str(self.ok("member", "POST", f"/workflows/{self.ids['workflow']}/run")["id"])

    def fresh_template(self, who: str = "member") -> str:
        body = {"name": "Template", "task": {"title": "From {{what}}"}}
        return str(self.ok(who, "POST", f"/projects/{self.ids['project']}/templates", body)["id"])

    def fresh_hook(self, who: str = "admin") -> str:
        # A public address written as a number (no DNS here); nothing is ever sent to it.
        body = {"url": "https://93.184.216.34/in", "events": ["task.created"]}
        return str(self.ok(who, "POST", f"/projects/{self.ids['project']}/hooks", body)["id"])

    def fresh_delivery(self) -> str:
        """A delivery of a made-up `task.created` event to the team's hook (as the stream
        consumer makes them)."""
        from datetime import UTC, datetime

        from chalicelib.domain.realtime import Event, EventType

        project = self.ids["project"]
        event = Event(new_id(), EventType.TASK_CREATED, datetime.now(UTC), {"id": "t"}, project)
        with self.container.request_scope():
            self.container.hooks.dispatch([event])
        hook = self.ids["hook"]
        log = self.ok("admin", "GET", f"/hooks/{hook}/deliveries?limit=1")["items"]
        return str(log[0]["id"])

    def fresh_rule(self, who: str = "member") -> str:
        body = {
            "name": "Rule",
            "enabled": True,
            "trigger": {"event": "task.created", "conditions": {}},
            "actions": [{"type": "set_field", "field": "priority", "value": "high"}],
        }
        return str(self.ok(who, "POST", f"/projects/{self.ids['project']}/rules", body)["id"])


def _build_team(world: World) -> None:
    world.register("root")  # the first account: the deployment's admin
    for name in ("owner", "admin", "member", "other", "viewer", "outsider", "extra"):
        world.register(name)
    project = world.ok("owner", "POST", "/projects", {"name": "Team"})["id"]
    world.ids["project"] = project
    for name, role in (
        ("admin", "admin"),
        ("member", "member"),
        ("other", "member"),
        ("viewer", "viewer"),
        ("extra", "member"),
    ):
        world.ok(
            "owner",
            "POST",
            f"/projects/{project}/members",
            {"user_id": world.users[name].id, "role": role},
        )
    world.ids["task"] = world.fresh_task(title="Quarterly report", tags=["finance"])
    world.ids["subtask"] = world.fresh_task(title="Numbers", parent_id=world.ids["task"])
    world.ids["comment"] = world.fresh_comment()
    world.ids["workflow"] = world.fresh_workflow()
    world.ids["run"] = world.fresh_run()
    world.ids["template"] = world.fresh_template()
    world.ids["rule"] = world.fresh_rule()
    world.ids["hook"] = world.fresh_hook()
    world.ids["delivery"] = world.fresh_delivery()
    world.ids["execution"] = world.ok("member", "POST", f"/tasks/{world.ids['task']}/run")["id"]
    # An assignment notifies the assignee: `member` has a notification of its own.
    world.ok("admin", "POST", f"/tasks/{world.ids['task']}/assign", {"assignee_id": None})
    world.ok(
        "admin",
        "POST",
        f"/tasks/{world.ids['task']}/assign",
        {"assignee_id": world.users["member"].id},
    )
    (notification,) = world.ok("member", "GET", "/notifications")["items"]
    world.ids["notification"] = notification["id"]


HOOK_QUEUE = "test-hooks"
HOOK_QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/123456789012/{HOOK_QUEUE}"


def make_settings(**overrides: Any) -> Settings:
    return Settings(
        table_prefix="test-",
        jwt_secret_id="test/jwt",
        aws_region=REGION,
        **({"hook_queue_url": HOOK_QUEUE_URL} | overrides),
    )


@pytest.fixture(scope="module")
def world_settings() -> Settings:
    """Override in a module for other settings (CORS origins, ...)."""
    return make_settings()


@pytest.fixture(scope="module")
def world(world_settings: Settings) -> Iterator[World]:
    settings = world_settings
    with pytest.MonkeyPatch.context() as env:
        for name, value in TEST_ENV.items():
            env.setenv(name, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        env.delenv("AWS_PROFILE", raising=False)
        # The local stack's moto speed-ups (item answers dumped as JSON): same answers, faster.
        moto_patches.install()
        with mock_aws():
            tables.bind(settings.table_prefix, settings.aws_region)
            tables.create_all(boto3.client("dynamodb", region_name=REGION), settings.table_prefix)
            for secret_id in (settings.jwt_secret_id, settings.derivation_secret_id):
                boto3.client("secretsmanager", region_name=REGION).create_secret(
                    Name=secret_id, SecretString=os.urandom(32).hex()
                )
            boto3.client("sqs", region_name=REGION).create_queue(QueueName=HOOK_QUEUE)
            container = bootstrap.build(settings, hasher=fast_hasher())
            bootstrap.override(container)
            try:
                with Client(app) as client:
                    built = World(client, container, settings)
                    _build_team(built)

                    def record(event_name: str, **_: Any) -> None:
                        built.dynamo_calls.append(event_name.rsplit(".", 1)[-1])

                    events = connection.root().client.meta.events
                    events.register("before-call.dynamodb", record)
                    try:
                        yield built
                    finally:
                        events.unregister("before-call.dynamodb", record)
            finally:
                bootstrap.override(None)
                moto_patches.uninstall()


@pytest.fixture(autouse=True)
def _this_worlds_container(request: pytest.FixtureRequest) -> None:
    """Another module's fixtures may have installed their own container in between."""
    if "world" in request.fixturenames:
        bootstrap.override(request.getfixturevalue("world").container)


def secrets_of(world: World) -> list[str]:
    """The raw key material in Secrets Manager: no answer may ever contain any of it."""
    if not world.key_material:
        client = boto3.client("secretsmanager", region_name=REGION)
        settings = world.settings
        world.key_material = [
            client.get_secret_value(SecretId=secret_id)["SecretString"]
            for secret_id in (settings.jwt_secret_id, settings.derivation_secret_id)
        ]
    return world.key_material
