"""Which module declares which routes: the API function registers every route from this table
and imports a route's module on its first request (`chalicelib.api.register_api`), so a cold
start loads the views and models of the route it serves, not all of them.

tests/unit/test_route_table.py holds this table to what the modules declare (and prints the
table to paste here when a route is added or moved).
"""

from __future__ import annotations

# Every route's path starts with it (API Gateway's stage path, /api, comes before).
API_PREFIX = "/v1"

# Module -> {path under /v1: methods}, in the order the modules are registered.
ROUTE_MODULES: dict[str, dict[str, tuple[str, ...]]] = {
    "chalicelib.api.service": {
        "/docs": ("GET",),
        "/docs/{asset}": ("GET",),
        "/health": ("GET",),
        "/openapi.json": ("GET",),
    },
    "chalicelib.api.auth": {
        "/auth/login": ("POST",),
        "/auth/logout": ("POST",),
        "/auth/refresh": ("POST",),
        "/auth/register": ("POST",),
    },
    "chalicelib.api.users": {
        "/users": ("GET",),
        "/users/profile": ("GET", "PATCH", "PUT"),
        "/users/{user_id}/role": ("PUT",),
    },
    "chalicelib.api.projects": {
        "/projects": ("GET", "POST"),
        "/projects/{project_id}": ("DELETE", "GET", "PATCH", "PUT"),
        "/projects/{project_id}/members": ("GET", "POST"),
        "/projects/{project_id}/members/{user_id}": ("DELETE", "PATCH", "PUT"),
        "/projects/{project_id}/webhook-secret": ("GET",),
    },
    "chalicelib.api.tasks": {
        "/tasks": ("GET", "POST"),
        "/tasks/search": ("GET",),
        "/tasks/{task_id}": ("DELETE", "GET", "PATCH", "PUT"),
        "/tasks/{task_id}/assign": ("POST",),
        "/tasks/{task_id}/complete": ("POST",),
        "/tasks/{task_id}/schedule/preview": ("GET",),
        "/tasks/{task_id}/subtasks": ("GET",),
    },
    "chalicelib.api.comments": {
        "/tasks/{task_id}/comments": ("GET", "POST"),
        "/tasks/{task_id}/comments/{comment_id}": ("DELETE",),
        "/tasks/{task_id}/history": ("GET",),
    },
    "chalicelib.api.executions": {
        "/executions/{execution_id}": ("GET",),
        "/tasks/{task_id}/executions": ("GET",),
        "/tasks/{task_id}/run": ("POST",),
    },
    "chalicelib.api.workflows": {
        "/workflows": ("GET", "POST"),
        "/workflows/{workflow_id}": ("DELETE", "GET", "PATCH", "PUT"),
    },
    "chalicelib.api.workflow_runs": {
        "/workflow-runs/{run_id}": ("GET",),
        "/workflow-runs/{run_id}/cancel": ("POST",),
        "/workflows/{workflow_id}/run": ("POST",),
        "/workflows/{workflow_id}/runs": ("GET",),
    },
    "chalicelib.api.templates": {
        "/projects/{project_id}/templates": ("GET", "POST"),
        "/tasks/from-template": ("POST",),
        "/templates/{template_id}": ("DELETE", "GET", "PATCH", "PUT"),
    },
    "chalicelib.api.rules": {
        "/projects/{project_id}/rules": ("GET", "POST"),
        "/rules/{rule_id}": ("DELETE", "GET", "PATCH", "PUT"),
        "/rules/{rule_id}/executions": ("GET",),
    },
    "chalicelib.api.hooks": {
        "/deliveries/{delivery_id}/redeliver": ("POST",),
        "/hooks/{hook_id}": ("DELETE", "GET", "PATCH"),
        "/hooks/{hook_id}/deliveries": ("GET",),
        "/projects/{project_id}/hooks": ("GET", "POST"),
    },
    "chalicelib.api.notifications": {
        "/notifications": ("GET",),
        "/notifications/read-all": ("POST",),
        "/notifications/{notification_id}/read": ("POST",),
    },
    "chalicelib.api.events": {
        "/projects/{project_id}/events": ("GET",),
    },
    "chalicelib.api.calendar": {
        "/calendar/{calendar}": ("GET",),
        "/calendar/{calendar}/projects/{project}": ("GET",),
        "/users/profile/calendar-token": ("POST",),
    },
    "chalicelib.api.api_tokens": {
        "/users/profile/tokens": ("GET", "POST"),
        "/users/profile/tokens/{token_id}": ("DELETE",),
        "/users/{user_id}/tokens": ("GET",),
        "/users/{user_id}/tokens/{token_id}": ("DELETE",),
    },
}
