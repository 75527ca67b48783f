"""Each project's webhook signing secret (`GET /projects/{id}/webhook-secret`, admin+).

A project's secret is derived from one master secret (Secrets Manager on AWS) and the project
id, so there is nothing per project to store, back up or leak from DynamoDB; the executions
that sign requests derive the same value.
"""

from __future__ import annotations

from collections.abc import Callable

from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import ProjectRole
from chalicelib.ports import ProjectRepository
from chalicelib.services.access import ProjectAccess, project_reads


class WebhookSecrets:
    def __init__(self, projects: ProjectRepository, derive: Callable[[str], str]) -> None:
        self._access = ProjectAccess(projects)
        self._derive = derive  # project id -> secret

    # First reads (the route fetches them with the session): the project and the caller's
    # membership.
    reads_for_get = staticmethod(project_reads)

    def get(self, principal: Principal, project_id: str) -> str:
        self._access.require(principal.user_id, project_id, ProjectRole.ADMIN)
        return self._derive(project_id)

    def for_signing(self, project_id: str) -> str:
        """The secret an execution signs its requests with (no caller: the system itself)."""
        return self._derive(project_id)
