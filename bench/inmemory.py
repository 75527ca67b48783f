"""The app's HTTP handler called the way Lambda calls it, on in-memory adapters.

`rest_event()` builds the API Gateway REST proxy event (payload 1.0) Lambda hands the
`api_handler` function; `in_memory_container()` wires the real services to the fakes of
tests/fakes.py (as tests/unit does), so a call measures our code alone: routing, parsing,
authentication (a real JWT), the service, serialization, and the middleware (access log and
metrics written as on Lambda; see `quiet_observability`). X-Ray tracing is off, as it is
everywhere without an X-Ray daemon.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# What the middleware's Powertools objects read when first used: logs and metrics on (written
# to /dev/null by quiet_observability), tracing off (no daemon to send segments to).
OBSERVABILITY_ENV = {
    "POWERTOOLS_SERVICE_NAME": "taskbeat",
    "POWERTOOLS_METRICS_NAMESPACE": "Taskbeat",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "false",
}


@dataclass(frozen=True)
class LambdaContext:
    function_name: str = "api_handler"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "bench"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:api_handler"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def rest_event(
    method: str,
    resource: str,
    path_parameters: dict[str, str] | None = None,
    *,
    query: dict[str, str] | None = None,
    body: Any = None,
    token: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event for `resource` (e.g. `/v1/tasks/{id}`)."""
    path = resource
    for name, value in (path_parameters or {}).items():
        path = path.replace("{" + name + "}", value)
    headers = {"Host": "abc.execute-api.us-east-1.amazonaws.com", "User-Agent": "bench"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/api{path}",
            "stage": "api",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "192.0.2.1"},
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class World:
    container: Any  # chalicelib.bootstrap.Container
    token: str
    task_id: str
    project_id: str


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _fake_ulid(number: int) -> str:
    """A well-formed ULID without the ULID library (so nothing here loads what the first
    request should pay for)."""
    digits = []
    for _ in range(26):
        number, digit = divmod(number, 32)
        digits.append(_CROCKFORD[digit])
    return "".join(reversed(digits))


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_access_token(secret: str, kid: str, claims: dict[str, Any]) -> str:
    """An HS256 JWT made with the standard library, as TokenCodec would issue it."""
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    signing_input = ".".join(
        _base64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_base64url(signature)}"


def in_memory_container() -> World:
    """The deployed wiring (bootstrap.wire) on the in-memory adapters of tests/fakes.py, with
    one user (and their live session), their personal project and one task, written straight
    into the fakes: no validator is built and no JWT or ULID library is loaded here, so a first
    request after this pays for all it needs."""
    from chalicelib import bootstrap
    from chalicelib.domain.projects import Membership, Project, ProjectRole
    from chalicelib.domain.tasks import Task
    from chalicelib.domain.users import Role, Session, User
    from tests.fakes import InMemoryAdapters, in_memory_settings

    clock = _Clock()
    now = clock.now()
    adapters = InMemoryAdapters(clock)
    keys, users, task_repository = adapters.signing_keys, adapters.users, adapters.tasks
    user_id, project_id, session_id = _fake_ulid(1), _fake_ulid(2), _fake_ulid(3)
    user = User(
        id=user_id,
        email="bench@example.com",
        name="Bench",
        role=Role.MEMBER,
        timezone="UTC",
        password_hash="unused",
        personal_project_id=project_id,
        created_at=now,
        updated_at=now,
    )
    project = Project(project_id, "Personal", "", user_id, now, now, personal=True)
    owner = Membership(project_id, user_id, ProjectRole.OWNER, now, user.email, user.name)
    session = Session(session_id, user_id, _fake_ulid(4), now, now + timedelta(days=30))
    users.create_account(user, project, owner, session, first_admin=False)
    task = Task(
        id=_fake_ulid(5) + project_id,
        project_id=project_id,
        title="Benchmark me",
        created_by=user_id,
        created_at=now,
        updated_at=now,
        tags=("bench",),
    )
    task_repository.create(task, None)
    issued = int(now.timestamp())
    token = mint_access_token(
        keys.current().secret,
        keys.current().kid,
        {
            "iss": "taskbeat",
            "aud": "taskbeat-api",
            "sub": user_id,
            "sid": session_id,
            "jti": _fake_ulid(6),
            "typ": "access",
            "ppid": project_id,
            "iat": issued,
            "nbf": issued,
            "exp": issued + 3600,
        },
    )
    container = bootstrap.wire(in_memory_settings(), adapters)
    return World(container, token, task.id, project_id)


@contextlib.contextmanager
def quiet_observability(build_now: bool = True) -> Iterator[None]:
    """Stdout at /dev/null while Powertools' logger and metrics are built and used: the access
    log line and the EMF metrics of each request are formatted and written, as on Lambda, but
    not shown. `build_now=False` leaves building them to the first request (cold start)."""
    from chalicelib import observability

    os.environ.update(OBSERVABILITY_ENV)
    observability.logger.cache_clear()
    observability.metrics.cache_clear()
    observability.tracer.cache_clear()
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        if build_now:
            observability.logger()
            observability.metrics()
            observability.tracer()
        yield
