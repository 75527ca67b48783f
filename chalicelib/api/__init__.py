"""HTTP API: Chalice blueprints, the error mapping and the OpenAPI document."""

from __future__ import annotations

from chalice.app import Chalice


def register_api(app: Chalice) -> None:
    """Register every blueprint and the middleware on `app`."""
    from chalicelib.api.auth import auth_api
    from chalicelib.api.calendar import calendar_api
    from chalicelib.api.comments import comments_api
    from chalicelib.api.executions import executions_api
    from chalicelib.api.middleware import register_middleware
    from chalicelib.api.notifications import notifications_api
    from chalicelib.api.projects import projects_api
    from chalicelib.api.rules import rules_api
    from chalicelib.api.service import service_api
    from chalicelib.api.tasks import tasks_api
    from chalicelib.api.templates import templates_api
    from chalicelib.api.users import users_api
    from chalicelib.api.workflow_runs import workflow_runs_api
    from chalicelib.api.workflows import workflows_api

    for blueprint in (
        service_api,
        auth_api,
        users_api,
        projects_api,
        tasks_api,
        comments_api,
        executions_api,
        workflows_api,
        workflow_runs_api,
        templates_api,
        rules_api,
        notifications_api,
        calendar_api,
    ):
        app.register_blueprint(blueprint)
    register_middleware(app)
