"""OWASP API4, unrestricted resource consumption: every limit of API.md is a 4xx, never a 500,
and what a request costs does not grow with what it asks for.

Bodies over 256 KiB are 413 on every route that takes one; JSON nested too deep is a 400;
`limit` is 1..100 and cursors are bounded on every list; strings and lists have their
maximums; a search or a comment costs the same few DynamoDB calls however many words or
mentions it carries; and a body within the limits can always be stored (no DynamoDB item
over its 400 KB limit, whatever the characters).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.api import all_routes
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import MAX_BODY_BYTES
from tests.security.conftest import PASSWORD, Answer, World
from tests.security.routes import CASES, Case, ghost_path

ROUTES = all_routes()  # every route module imported

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


def _acting(case: Case) -> str:
    return next(who for who in ("member", "owner", "root") if case.expected(who) < 400)


def _call(world: World, case: Case, *, query: str = "", **kwargs: Any) -> Answer:
    who = _acting(case)
    req = case.prepare(world, who)
    path = req.path + (("&" if "?" in req.path else "?") + query if query else "")
    return world.request(case.method, path, token=req.token or world.users[who].access, **kwargs)


def assert_4xx(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer
    assert answer.code == code, answer
    assert set(answer.json) == {"error", "request_id"}


# ---- body size and shape ----------------------------------------------------------------------

WRITE_CASES = [case for case in CASES if case.method != "GET"]


def _padded(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    head = b'{"pad": "'
    return head + b"a" * (size - len(head) - 2) + b'"}'


@pytest.mark.parametrize("case", WRITE_CASES, ids=str)
def test_a_body_over_256_kib_is_413_on_every_route(world: World, case: Case) -> None:
    # Refused before the view reads anything: the path need not name a real object.
    token = world.users[_acting(case)].access
    answer = world.request(
        case.method, ghost_path(case), raw=_padded(MAX_BODY_BYTES + 1), token=token
    )
    assert_4xx(answer, 413, "payload_too_large")
    assert WRITES.isdisjoint(world.dynamo_calls)


def test_a_body_of_exactly_256_kib_is_read(world: World) -> None:
    answer = world.as_("member", "POST", "/tasks", raw=_padded(MAX_BODY_BYTES))
    assert_4xx(answer, 422, "validation_error")  # read and validated: `pad` is unknown


@pytest.mark.parametrize("depth", [100, 1_000, 100_000])
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/tasks"), ("POST", "/auth/login"), ("PATCH", "/users/profile")],
)
def test_deeply_nested_json_is_refused_not_a_crash(
    world: World, method: str, path: str, depth: int
) -> None:
    raw = ('{"title": ' + "[" * depth + "]" * depth + "}").encode()
    answer = world.as_("member", method, path, raw=raw)
    assert answer.status in (400, 422), answer
    assert answer.code in ("bad_request", "validation_error")


@pytest.mark.parametrize("depth", [20, 40, 250, 5_000])
def test_deeply_nested_webhook_bodies_are_refused_or_kept_not_a_crash(
    world: World, depth: int
) -> None:
    nested = '{"a": [' * depth + "1" + "]}" * depth
    action = f'{{"type": "webhook", "url": "http://93.184.216.34/", "body": {nested}}}'
    raw = f'{{"title": "Deep", "project_id": "{world.ids["project"]}", "action": {action}}}'
    answer = world.as_("member", "POST", "/tasks", raw=raw.encode())
    assert answer.status in (201, 400, 413, 422), answer


@pytest.mark.parametrize(
    "raw",
    [b"{", b"[]", b"null", b'"text"', b"\xff\xfe", b'{"title": 1e999999}', b"9" * 5000],
    ids=["truncated", "array", "null", "string", "not utf-8", "huge float", "huge int"],
)
def test_bodies_that_are_not_an_object_are_4xx(world: World, raw: bytes) -> None:
    answer = world.as_("member", "POST", "/tasks", raw=raw)
    assert answer.status in (400, 422), answer


# ---- pages ------------------------------------------------------------------------------------

LIST_CASES = [
    case
    for case in CASES
    for spec in ROUTES
    if case.method == "GET"
    and spec.path == case.route
    and spec.query is not None
    and issubclass(spec.query, PageQuery)
]


def test_every_list_is_paged() -> None:
    """Each list route takes `limit` and `cursor` (a new list route cannot skip paging)."""
    paged = {case.route for case in LIST_CASES}
    lists = {
        spec.path
        for spec in ROUTES
        if spec.response is not None and "items" in spec.response.model_fields
    }
    assert lists == paged


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("limit=0", 422),
        ("limit=101", 422),
        ("limit=-1", 422),
        (f"limit={10**30}", 422),
        ("limit=ten", 400),
        (f"cursor={'c' * 2049}", 422),
        ("cursor=not-a-cursor", 400),
    ],
)
@pytest.mark.parametrize("case", LIST_CASES, ids=str)
def test_page_parameters_are_bounded_on_every_list(
    world: World, case: Case, query: str, status: int
) -> None:
    answer = _call(world, case, query=query)
    assert answer.status == status, answer


@pytest.mark.parametrize("case", LIST_CASES, ids=str)
def test_the_largest_page_is_allowed(world: World, case: Case) -> None:
    answer = _call(world, case, query="limit=100")
    assert answer.status == 200, answer
    assert len(answer.json["items"]) <= 100


# ---- strings and lists --------------------------------------------------------------------------

PROJECT = "{project}"
TASK = "{task}"
LIMITS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("title 201", "POST", "/tasks", {"title": "t" * 201}),
    ("description 10001", "POST", "/tasks", {"title": "t", "description": "d" * 10_001}),
    ("21 tags", "POST", "/tasks", {"title": "t", "tags": [f"t{i}" for i in range(21)]}),
    ("tag of 41", "POST", "/tasks", {"title": "t", "tags": ["t" * 41]}),
    ("21 dependencies", "POST", "/tasks", {"title": "t", "depends_on": [TASK] * 21}),
    ("id of 65", "POST", "/tasks", {"title": "t", "parent_id": "x" * 65}),
    ("comment 10001", "POST", f"/tasks/{TASK}/comments", {"body": "c" * 10_001}),
    ("project name 101", "POST", "/projects", {"name": "p" * 101}),
    ("project description 2001", "POST", "/projects", {"name": "p", "description": "d" * 2001}),
    ("profile name 101", "PATCH", "/users/profile", {"name": "n" * 101}),
    ("password 129", "POST", "/auth/register", {"email": "l@example.com", "password": "p" * 129}),
    (
        "login password 513",
        "POST",
        "/auth/login",
        {"email": "l@example.com", "password": "p" * 513},
    ),
    ("email 255", "POST", "/auth/login", {"email": "e" * 245 + "@example.com", "password": "x"}),
    ("refresh token 4097", "POST", "/auth/refresh", {"refresh_token": "r" * 4097}),
    (
        "101 workflow steps",
        "POST",
        "/workflows",
        {"name": "w", "steps": [{"key": f"s{i}", "task_id": TASK} for i in range(101)]},
    ),
    (
        "max_concurrency 41",
        "POST",
        "/workflows",
        {"name": "w", "steps": [{"key": "a", "task_id": TASK}], "max_concurrency": 41},
    ),
    (
        "21 template subtasks",
        "POST",
        f"/projects/{PROJECT}/templates",
        {"name": "t", "task": {"title": "t"}, "subtasks": [{"title": "s"}] * 21},
    ),
    (
        "51 template values",
        "POST",
        "/tasks/from-template",
        {"template_id": "{template}", "values": {f"v{i}": "x" for i in range(51)}},
    ),
    (
        "11 rule actions",
        "POST",
        f"/projects/{PROJECT}/rules",
        {
            "name": "r",
            "trigger": {"event": "task.created", "conditions": {}},
            "actions": [{"type": "set_field", "field": "priority", "value": "low"}] * 11,
        },
    ),
    ("url 2049", "POST", "/tasks", {"title": "t", "action": {"url": "h" * 2049}}),
    ("21 headers", "POST", "/tasks", {"title": "t", "action": {"headers": 21}}),
    ("header value 4097", "POST", "/tasks", {"title": "t", "action": {"headers": "v" * 4097}}),
    ("webhook body 64 KiB + 1", "POST", "/tasks", {"title": "t", "action": {"body": 65_537}}),
    ("timeout 61", "POST", "/tasks", {"title": "t", "action": {"timeout_seconds": 61}}),
    ("11 attempts", "POST", "/tasks", {"title": "t", "retry": {"max_attempts": 11}}),
    ("backoff 3601", "POST", "/tasks", {"title": "t", "retry": {"backoff_seconds": 3601}}),
    (
        "rate of every 0",
        "POST",
        "/tasks",
        {"title": "t", "schedule": {"kind": "rate", "every": 0, "unit": "minutes"}},
    ),
]


def _action(spec: dict[str, Any]) -> dict[str, Any]:
    action: dict[str, Any] = {"type": "webhook", "url": "http://93.184.216.34/hook"}
    for key, value in spec.items():
        if key == "headers" and isinstance(value, int):
            action["headers"] = {f"X-H{i}": "v" for i in range(value)}
        elif key == "headers":
            action["headers"] = {"X-H": value}
        elif key == "body":
            action["body"] = "b" * value
        else:
            action[key] = value
    return action


@pytest.mark.parametrize(
    ("name", "method", "path", "body"), LIMITS, ids=[limit[0] for limit in LIMITS]
)
def test_strings_and_lists_have_their_maximums(
    world: World, name: str, method: str, path: str, body: dict[str, Any]
) -> None:
    body = json.loads(
        json.dumps(body)
        .replace(TASK, world.ids["task"])
        .replace(PROJECT, world.ids["project"])
        .replace("{template}", world.ids["template"])
    )
    if "action" in body:
        body["action"] = _action(body["action"])
    if "name" not in body and path == "/auth/register":
        body["name"] = "n"
    answer = world.as_("member", method, path.replace(PROJECT, world.ids["project"]), body)
    assert answer.status == 422, answer
    assert answer.code == "validation_error"
    assert WRITES.isdisjoint(world.dynamo_calls), world.dynamo_calls


@pytest.mark.parametrize(
    "query",
    [
        "/tasks/search?q=" + "q" * 501,
        "/users?q=" + "u" * 255,
        "/tasks?tag=" + "t" * 41,
        "/tasks?project_id=" + "p" * 65,
        "/tasks?sort=title",
        "/tasks?due=someday",
        "/tasks/{task}/schedule/preview?count=51",
        "/tasks/{task}/schedule/preview?count=0",
    ],
)
def test_query_parameters_have_their_maximums(world: World, query: str) -> None:
    # Parameters are checked before anything else: no admin or membership needed to be told.
    answer = world.as_("member", "GET", query.replace("{task}", world.ids["task"]))
    assert answer.status in (400, 422), answer


# ---- cost does not grow with the request ---------------------------------------------------------


def test_a_search_costs_the_same_whatever_its_number_of_words(world: World) -> None:
    project = world.ids["project"]
    one = world.as_("member", "GET", f"/tasks/search?project_id={project}&q=quarterly")
    assert one.status == 200
    calls_for_one = len(world.dynamo_calls)
    many = " ".join(f"w{i}" for i in range(160))[:500]
    answer = world.as_("member", "GET", f"/tasks/search?project_id={project}&q={many}")
    assert answer.status in (200, 422), answer
    assert len(world.dynamo_calls) <= calls_for_one, world.dynamo_calls


def test_a_comment_costs_the_same_whatever_its_number_of_mentions(world: World) -> None:
    task = world.ids["task"]
    world.ok("member", "POST", f"/tasks/{task}/comments", {"body": "@nobody@example.com hi"})
    calls_for_one = len(world.dynamo_calls)
    body = " ".join(f"@person{i}@example.com" for i in range(400))
    answer = world.as_("member", "POST", f"/tasks/{task}/comments", {"body": body})
    assert answer.status == 201, answer
    assert len(world.dynamo_calls) <= calls_for_one + 1, world.dynamo_calls


def test_the_largest_workflow_is_accepted(world: World) -> None:
    steps = [{"key": f"s{i}", "task_id": world.ids["task"]} for i in range(100)]
    body = {"project_id": world.ids["project"], "name": "Big", "steps": steps}
    answer = world.as_("member", "POST", "/workflows", body)
    assert answer.status == 201, answer


def test_the_login_lock_does_not_spend_a_hash_per_locked_attempt(world: World) -> None:
    """Attempts on a locked address are refused before any password check or write."""
    email = "locked-cost@example.com"
    for attempt in range(5):
        world.request("POST", "/auth/login", {"email": email, "password": f"guess {attempt}"})
    answer = world.request("POST", "/auth/login", {"email": email, "password": PASSWORD})
    assert answer.status == 429
    assert WRITES.isdisjoint(world.dynamo_calls), world.dynamo_calls


# ---- what is stored stays storable --------------------------------------------------------------

ACCENTED = "\u00e9"  # 2 bytes in UTF-8, 6 as a JSON \\u escape
EMOJI = "\U0001f600"  # 4 bytes in UTF-8, 12 as two JSON \\u escapes


def _wide_action(char: str, scale: int, path: str = "hook") -> dict[str, Any]:
    """Headers and body at 1/`scale` of their own limits, in `char` (header values take
    visible ASCII and Latin-1 only: wider characters go in the body alone)."""
    header_char = char if char in (ACCENTED, '"') else ACCENTED
    return {
        "type": "webhook",
        "url": f"http://93.184.216.34/{path}",
        "headers": {f"X-Header-{i:02d}": header_char * (4096 // scale) for i in range(20)},
        "body": char * (64 * 1024 // len(char.encode()) // scale),
    }


def _send(world: World, method: str, path: str, body: Any) -> Answer:
    # Sent as UTF-8, as clients do: a \\u-escaped body would hit the 256 KiB limit first.
    return world.as_("member", method, path, raw=json.dumps(body, ensure_ascii=False).encode())


@pytest.mark.parametrize(
    "char", [ACCENTED, EMOJI, "\x01", '"'], ids=["é", "emoji", "ctrl", "quote"]
)
def test_the_largest_task_and_its_history_can_be_stored(world: World, char: str) -> None:
    """Within the request limits, a task and the history event of a change to it (old and new
    values) fit DynamoDB's 400 KB items: a too large action is a 413 or 422, never a 500."""
    body = {
        "title": char * 200,
        "project_id": world.ids["project"],
        "description": char * 10_000,
        "tags": [char * 40 for _ in range(20)],
    }
    for scale in (1, 2, 4, 8):  # the largest action that is accepted
        created = _send(world, "POST", "/tasks", {**body, "action": _wide_action(char, scale)})
        assert created.status in (201, 413, 422), created
        if created.status == 201:
            break
    assert created.status == 201, created
    change = {
        "title": "\x01" * 200,
        "description": "\x01" * 10_000,
        "tags": ["\x01" * 40 for _ in range(20)],
        "action": _wide_action(char, scale, path="other"),
    }
    changed = _send(world, "PATCH", f"/tasks/{created.json['id']}", change)
    assert changed.status == 200, changed


def test_the_largest_template_can_be_stored(world: World) -> None:
    blueprint = {"title": ACCENTED * 1000, "description": ACCENTED * 5000}
    body = {"name": "Wide", "task": blueprint, "subtasks": [blueprint] * 20}
    answer = _send(world, "POST", f"/projects/{world.ids['project']}/templates", body)
    assert answer.status in (201, 413, 422), answer
