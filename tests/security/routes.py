"""Every route of the app, with who may call it (API.md) and a request that exercises it.

`CASES` is the table the authorization suite runs for every principal; a route of the app
without a case here fails `test_every_route_has_a_case`, so a new route cannot ship without
its rights being stated and proven.

Access kinds:
- `public`: no token needed; everyone gets `status`.
- `self`: any signed-in user, acting on their own things (profile, own projects list, ...).
- `global_admin`: the deployment's admin (`root`) only; everyone else 403.
- `mine`: an object of `member` alone (a notification): everyone else 404.
- `project`: the team project's members of at least `min_role` get `status`; members below it
  403; non-members (the global admin included) 404. With `own`, members delete only what they
  created (`member` made it; `other`, a member too, gets 403) and admins delete anything.

`secret_path` routes (the calendar feeds) take no bearer token: the path carries the caller's
own secret (their calendar token), so they are declared without auth like public routes, and
each principal's request names its own token. Their access kind says what that token opens:
`self` (your own feed), `project` (a project's feed: its members, viewer or more; others 404).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from chalicelib.domain.model import new_id
from tests.security.conftest import World

ROLE_OF = {
    "owner": "owner",
    "admin": "admin",
    "member": "member",
    "other": "member",
    "viewer": "viewer",
    "outsider": None,
    "root": None,
}
RANK = {"viewer": 0, "member": 1, "admin": 2, "owner": 3}


@dataclass(frozen=True)
class Req:
    path: str
    body: Any = None
    token: str | None = None  # instead of the principal's own (a fresh session, say)


Prepare = Callable[[World, str], Req]
Access = Literal["public", "self", "global_admin", "mine", "project"]


@dataclass(frozen=True)
class Case:
    method: str
    route: str  # as declared, under /api/v1
    access: Access
    status: int
    prepare: Prepare
    min_role: str = "viewer"
    own: bool = False
    secret_path: bool = False  # no bearer token: the path holds the principal's own secret

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.route)

    @property
    def is_write(self) -> bool:
        return self.method != "GET"

    def __str__(self) -> str:
        return f"{self.method} {self.route}"

    def expected(self, who: str) -> int:
        if self.access in ("public", "self"):
            return self.status
        if self.access == "global_admin":
            return self.status if who == "root" else 403
        if self.access == "mine":
            return self.status if who == "member" else 404
        role = ROLE_OF[who]
        if role is None:
            return 404
        if RANK[role] < RANK[self.min_role]:
            return 403
        if self.own and role == "member" and who != "member":
            return 403
        return self.status


def p(path: str, **fixed: Callable[[World], str]) -> Prepare:
    """A request to `path` with its `{name}`s filled from the world's ids (or `fixed`)."""

    def prepare(w: World, who: str) -> Req:
        values = {name: make(w) for name, make in fixed.items()}
        return Req(path.format_map(_Ids(w, values)))

    return prepare


class _Ids(dict[str, str]):
    def __init__(self, w: World, values: dict[str, str]) -> None:
        super().__init__(values)
        self._w = w

    def __missing__(self, key: str) -> str:
        name = key.removesuffix("_id")
        if name == "user":
            return self._w.users["extra"].id
        return self._w.ids[name]


def with_body(prepare: Prepare, body: Callable[[World, str], Any]) -> Prepare:
    def combined(w: World, who: str) -> Req:
        req = prepare(w, who)
        return Req(req.path, body(w, who), req.token)

    return combined


def const(body: Any) -> Callable[[World, str], Any]:
    return lambda w, who: body


def _logout(w: World, who: str) -> Req:
    return Req("/auth/logout", {}, token=w.login(who)["access_token"])


def _refresh(w: World, who: str) -> Req:
    return Req("/auth/refresh", {"refresh_token": w.login(who)["refresh_token"]})


def _login(w: World, who: str) -> Req:
    from tests.security.conftest import PASSWORD

    return Req("/auth/login", {"email": w.users[who].email, "password": PASSWORD})


def _register(w: World, who: str) -> Req:
    from tests.security.conftest import PASSWORD

    email = f"new-{new_id().lower()}@example.com"
    return Req("/auth/register", {"email": email, "password": PASSWORD, "name": "New"})


def calendar_token(w: World, who: str) -> str:
    """`who`'s calendar token, as their profile shows it."""
    return str(w.ok(who, "GET", "/users/profile")["calendar_token"])


def _my_feed(w: World, who: str) -> Req:
    return Req(f"/calendar/{calendar_token(w, who)}.ics")


def _project_feed(w: World, who: str) -> Req:
    return Req(f"/calendar/{calendar_token(w, who)}/projects/{w.ids['project']}.ics")


def api_token(w: World, who: str, scopes: tuple[str, ...] = ("read",)) -> dict[str, Any]:
    """A new API token of `who` (made with their session): the creation's answer."""
    body = {"name": "script", "scopes": list(scopes)}
    return dict(w.ok(who, "POST", "/users/profile/tokens", body))


def _my_api_token(w: World, who: str) -> Req:
    return Req(f"/users/profile/tokens/{api_token(w, who)['id']}")


def _task_body(w: World, who: str) -> Any:
    return {"title": "New task", "project_id": w.ids["project"]}


def _workflow_body(w: World, who: str) -> Any:
    return {
        "project_id": w.ids["project"],
        "name": "New flow",
        "steps": [{"key": "a", "task_id": w.ids["task"], "depends_on": []}],
    }


RULE_BODY = {
    "name": "New rule",
    "enabled": False,
    "trigger": {"event": "task.created", "conditions": {}},
    "actions": [{"type": "set_field", "field": "priority", "value": "low"}],
}
TEMPLATE_BODY = {"name": "New template", "task": {"title": "Do {{what}}"}}

PROJECT = "project"
# A public address written as a number (no DNS in the tests); nothing is ever sent to it.
HOOK_BODY = {"url": "https://93.184.216.34/in", "events": ["task.created"]}
CASES: list[Case] = [
    # ---- service ----------------------------------------------------------------------------
    Case("GET", "/health", "public", 200, p("/health")),
    Case("GET", "/openapi.json", "public", 200, p("/openapi.json")),
    Case("GET", "/docs", "public", 200, p("/docs")),
    Case("GET", "/docs/{asset}", "public", 200, p("/docs/swagger-ui.css")),
    # ---- auth --------------------------------------------------------------------------------
    Case("POST", "/auth/register", "public", 201, _register),
    Case("POST", "/auth/login", "public", 200, _login),
    Case("POST", "/auth/refresh", "public", 200, _refresh),
    Case("POST", "/auth/logout", "self", 204, _logout),
    # ---- users -------------------------------------------------------------------------------
    Case("GET", "/users/profile", "self", 200, p("/users/profile")),
    *(
        Case(
            m,
            "/users/profile",
            "self",
            200,
            with_body(p("/users/profile"), const({"timezone": "UTC"})),
        )
        for m in ("PUT", "PATCH")
    ),
    Case("GET", "/users", "global_admin", 200, p("/users?q=")),
    # ---- calendar feeds --------------------------------------------------------------------------
    Case(
        "POST",
        "/users/profile/calendar-token",
        "self",
        200,
        p("/users/profile/calendar-token"),
    ),
    Case("GET", "/calendar/{calendar}", "self", 200, _my_feed, secret_path=True),
    Case(
        "GET",
        "/calendar/{calendar}/projects/{project}",
        PROJECT,
        200,
        _project_feed,
        secret_path=True,
    ),
    Case(
        "PUT",
        "/users/{user_id}/role",
        "global_admin",
        200,
        with_body(p("/users/{user_id}/role"), const({"role": "member"})),
    ),
    # ---- API tokens ------------------------------------------------------------------------------
    Case(
        "POST",
        "/users/profile/tokens",
        "self",
        201,
        with_body(p("/users/profile/tokens"), const({"name": "script", "scopes": ["read"]})),
    ),
    Case("GET", "/users/profile/tokens", "self", 200, p("/users/profile/tokens")),
    Case("DELETE", "/users/profile/tokens/{token_id}", "self", 204, _my_api_token),
    Case("GET", "/users/{user_id}/tokens", "global_admin", 200, p("/users/{user_id}/tokens")),
    Case(
        "DELETE",
        "/users/{user_id}/tokens/{token_id}",
        "global_admin",
        204,
        p("/users/{user_id}/tokens/{token_id}", token_id=lambda w: api_token(w, "extra")["id"]),
    ),
    # ---- projects and members ------------------------------------------------------------------
    Case("POST", "/projects", "self", 201, with_body(p("/projects"), const({"name": "Mine"}))),
    Case("GET", "/projects", "self", 200, p("/projects")),
    Case("GET", "/projects/{project_id}", PROJECT, 200, p("/projects/{project_id}")),
    *(
        Case(
            m,
            "/projects/{project_id}",
            PROJECT,
            200,
            with_body(p("/projects/{project_id}"), const({"description": "The team"})),
            min_role="admin",
        )
        for m in ("PUT", "PATCH")
    ),
    Case(
        "DELETE",
        "/projects/{project_id}",
        PROJECT,
        204,
        p("/projects/{project_id}", project_id=lambda w: w.fresh_project()),
        min_role="owner",
    ),
    Case(
        "GET", "/projects/{project_id}/members", PROJECT, 200, p("/projects/{project_id}/members")
    ),
    Case("GET", "/projects/{project_id}/events", PROJECT, 200, p("/projects/{project_id}/events")),
    Case(
        "POST",
        "/projects/{project_id}/members",
        PROJECT,
        201,
        with_body(
            p(
                "/projects/{project_id}/members",
                project_id=lambda w: w.fresh_project(with_extra=False),
            ),
            lambda w, who: {"user_id": w.users["extra"].id, "role": "viewer"},
        ),
        min_role="admin",
    ),
    *(
        Case(
            m,
            "/projects/{project_id}/members/{user_id}",
            PROJECT,
            200,
            with_body(p("/projects/{project_id}/members/{user_id}"), const({"role": "member"})),
            min_role="admin",
        )
        for m in ("PUT", "PATCH")
    ),
    Case(
        "DELETE",
        "/projects/{project_id}/members/{user_id}",
        PROJECT,
        204,
        p("/projects/{project_id}/members/{user_id}", project_id=lambda w: w.fresh_project()),
        min_role="admin",
    ),
    Case(
        "GET",
        "/projects/{project_id}/webhook-secret",
        PROJECT,
        200,
        p("/projects/{project_id}/webhook-secret"),
        min_role="admin",
    ),
    Case(
        "GET",
        "/projects/{project_id}/templates",
        PROJECT,
        200,
        p("/projects/{project_id}/templates"),
    ),
    Case(
        "POST",
        "/projects/{project_id}/templates",
        PROJECT,
        201,
        with_body(p("/projects/{project_id}/templates"), const(TEMPLATE_BODY)),
        min_role="member",
    ),
    Case("GET", "/projects/{project_id}/rules", PROJECT, 200, p("/projects/{project_id}/rules")),
    Case(
        "POST",
        "/projects/{project_id}/rules",
        PROJECT,
        201,
        with_body(p("/projects/{project_id}/rules"), const(RULE_BODY)),
        min_role="member",
    ),
    # ---- tasks -------------------------------------------------------------------------------
    Case("POST", "/tasks", PROJECT, 201, with_body(p("/tasks"), _task_body), min_role="member"),
    Case("GET", "/tasks", PROJECT, 200, p("/tasks?project_id={project_id}")),
    Case(
        "GET", "/tasks/search", PROJECT, 200, p("/tasks/search?q=quarterly&project_id={project_id}")
    ),
    Case(
        "POST",
        "/tasks/from-template",
        PROJECT,
        201,
        with_body(
            p("/tasks/from-template"),
            lambda w, who: {"template_id": w.ids["template"], "values": {"what": "it"}},
        ),
        min_role="member",
    ),
    Case("GET", "/tasks/{task_id}", PROJECT, 200, p("/tasks/{task_id}")),
    *(
        Case(
            m,
            "/tasks/{task_id}",
            PROJECT,
            200,
            with_body(p("/tasks/{task_id}"), const({"priority": "high"})),
            min_role="member",
        )
        for m in ("PUT", "PATCH")
    ),
    Case(
        "DELETE",
        "/tasks/{task_id}",
        PROJECT,
        204,
        p("/tasks/{task_id}", task_id=lambda w: w.fresh_task()),
        min_role="member",
        own=True,
    ),
    Case(
        "POST",
        "/tasks/{task_id}/assign",
        PROJECT,
        200,
        with_body(
            p("/tasks/{task_id}/assign"), lambda w, who: {"assignee_id": w.users["member"].id}
        ),
        min_role="member",
    ),
    Case(
        "POST",
        "/tasks/{task_id}/complete",
        PROJECT,
        200,
        p("/tasks/{task_id}/complete", task_id=lambda w: w.fresh_task()),
        min_role="member",
    ),
    Case("GET", "/tasks/{task_id}/subtasks", PROJECT, 200, p("/tasks/{task_id}/subtasks")),
    Case(
        "GET",
        "/tasks/{task_id}/schedule/preview",
        PROJECT,
        200,
        p("/tasks/{task_id}/schedule/preview?count=3"),
    ),
    Case("GET", "/tasks/{task_id}/comments", PROJECT, 200, p("/tasks/{task_id}/comments")),
    Case(
        "POST",
        "/tasks/{task_id}/comments",
        PROJECT,
        201,
        with_body(p("/tasks/{task_id}/comments"), const({"body": "noted"})),
        min_role="member",
    ),
    Case(
        "DELETE",
        "/tasks/{task_id}/comments/{comment_id}",
        PROJECT,
        204,
        p("/tasks/{task_id}/comments/{comment_id}", comment_id=lambda w: w.fresh_comment()),
        min_role="member",
        own=True,
    ),
    Case("GET", "/tasks/{task_id}/history", PROJECT, 200, p("/tasks/{task_id}/history")),
    # ---- executions --------------------------------------------------------------------------
    Case(
        "POST", "/tasks/{task_id}/run", PROJECT, 202, p("/tasks/{task_id}/run"), min_role="member"
    ),
    Case("GET", "/tasks/{task_id}/executions", PROJECT, 200, p("/tasks/{task_id}/executions")),
    Case("GET", "/executions/{execution_id}", PROJECT, 200, p("/executions/{execution_id}")),
    # ---- workflows and runs ------------------------------------------------------------------
    Case(
        "POST",
        "/workflows",
        PROJECT,
        201,
        with_body(p("/workflows"), _workflow_body),
        min_role="member",
    ),
    Case("GET", "/workflows", PROJECT, 200, p("/workflows?project_id={project_id}")),
    Case("GET", "/workflows/{workflow_id}", PROJECT, 200, p("/workflows/{workflow_id}")),
    *(
        Case(
            m,
            "/workflows/{workflow_id}",
            PROJECT,
            200,
            with_body(p("/workflows/{workflow_id}"), const({"name": "Flow"})),
            min_role="member",
        )
        for m in ("PUT", "PATCH")
    ),
    Case(
        "DELETE",
        "/workflows/{workflow_id}",
        PROJECT,
        204,
        p("/workflows/{workflow_id}", workflow_id=lambda w: w.fresh_workflow()),
        min_role="member",
        own=True,
    ),
    Case(
        "POST",
        "/workflows/{workflow_id}/run",
        PROJECT,
        202,
        p("/workflows/{workflow_id}/run"),
        min_role="member",
    ),
    Case("GET", "/workflows/{workflow_id}/runs", PROJECT, 200, p("/workflows/{workflow_id}/runs")),
    Case("GET", "/workflow-runs/{run_id}", PROJECT, 200, p("/workflow-runs/{run_id}")),
    Case(
        "POST",
        "/workflow-runs/{run_id}/cancel",
        PROJECT,
        202,
        p("/workflow-runs/{run_id}/cancel", run_id=lambda w: w.fresh_run()),
        min_role="member",
    ),
    # ---- templates ---------------------------------------------------------------------------
    Case("GET", "/templates/{template_id}", PROJECT, 200, p("/templates/{template_id}")),
    *(
        Case(
            m,
            "/templates/{template_id}",
            PROJECT,
            200,
            with_body(p("/templates/{template_id}"), const({"name": "Template"})),
            min_role="member",
        )
        for m in ("PUT", "PATCH")
    ),
    Case(
        "DELETE",
        "/templates/{template_id}",
        PROJECT,
        204,
        p("/templates/{template_id}", template_id=lambda w: w.fresh_template()),
        min_role="member",
        own=True,
    ),
    # ---- rules -------------------------------------------------------------------------------
    Case("GET", "/rules/{rule_id}", PROJECT, 200, p("/rules/{rule_id}")),
    *(
        Case(
            m,
            "/rules/{rule_id}",
            PROJECT,
            200,
            with_body(p("/rules/{rule_id}"), const({"name": "Rule"})),
            min_role="member",
        )
        for m in ("PUT", "PATCH")
    ),
    Case(
        "DELETE",
        "/rules/{rule_id}",
        PROJECT,
        204,
        p("/rules/{rule_id}", rule_id=lambda w: w.fresh_rule()),
        min_role="member",
        own=True,
    ),
    Case("GET", "/rules/{rule_id}/executions", PROJECT, 200, p("/rules/{rule_id}/executions")),
    # ---- project hooks (admin+) ----------------------------------------------------------------
    Case(
        "GET",
        "/projects/{project_id}/hooks",
        PROJECT,
        200,
        p("/projects/{project_id}/hooks"),
        min_role="admin",
    ),
    Case(
        "POST",
        "/projects/{project_id}/hooks",
        PROJECT,
        201,
        with_body(p("/projects/{project_id}/hooks"), const(HOOK_BODY)),
        min_role="admin",
    ),
    Case("GET", "/hooks/{hook_id}", PROJECT, 200, p("/hooks/{hook_id}"), min_role="admin"),
    Case(
        "PATCH",
        "/hooks/{hook_id}",
        PROJECT,
        200,
        with_body(p("/hooks/{hook_id}"), const({"active": True})),
        min_role="admin",
    ),
    Case(
        "DELETE",
        "/hooks/{hook_id}",
        PROJECT,
        204,
        p("/hooks/{hook_id}", hook_id=lambda w: w.fresh_hook()),
        min_role="admin",
    ),
    Case(
        "GET",
        "/hooks/{hook_id}/deliveries",
        PROJECT,
        200,
        p("/hooks/{hook_id}/deliveries"),
        min_role="admin",
    ),
    Case(
        "POST",
        "/deliveries/{delivery_id}/redeliver",
        PROJECT,
        202,
        p("/deliveries/{delivery_id}/redeliver"),
        min_role="admin",
    ),
    # ---- notifications (the caller's own) --------------------------------------------------------
    Case("GET", "/notifications", "self", 200, p("/notifications")),
    Case("POST", "/notifications/read-all", "self", 204, p("/notifications/read-all")),
    Case(
        "POST",
        "/notifications/{notification_id}/read",
        "mine",
        204,
        p("/notifications/{notification_id}/read"),
    ),
]

CASE_BY_KEY = {case.key: case for case in CASES}

_PARAM = re.compile(r"\{(\w+)\}")


def path_params(route: str, path: str) -> dict[str, str]:
    """The values of `route`'s `{params}` in `path` (query string ignored)."""
    parts = _PARAM.split(route)  # literal, name, literal, name, ..., literal
    pattern = "".join(
        re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/?]+)"
        for index, part in enumerate(parts)
    )
    match = re.match(f"^{pattern}(?:\\?|$)", path)
    assert match, (route, path)
    return match.groupdict()


def ghost_id(real: str) -> str:
    """An id of the same shape that names nothing (a task-like id keeps its project part)."""
    return new_id() + real[26:]


GHOST = "01HZZZZZZZZZZZZZZZZZZZZZZZ"


def ghost_path(case: Case) -> str:
    """`case.route` with every `{param}` naming nothing: for checks that come before any read
    (authentication, body size), no object needs making."""
    return _PARAM.sub(GHOST, case.route)
