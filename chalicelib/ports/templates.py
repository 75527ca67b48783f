"""Task templates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

# The domain's types are for annotations only (see the package's docstring).
if TYPE_CHECKING:
    from chalicelib.domain.model import Page, PageRequest
    from chalicelib.domain.templates import Template


class TemplateRepository(Protocol):
    """Task templates, one item each; every write is conditional (new id, or the version read)."""

    def get(self, template_id: str) -> Template | None: ...

    def create(self, template: Template) -> Template:
        """Write a new template. `NotFound` if its project is gone (checked in the same write)."""
        ...

    def update(self, before: Template, after: Template) -> Template:
        """Write `after` if the template is still at `before.version`; returns it with version
        + 1. `StaleVersion` on a lost race (or if it is gone), `NotFound` if its project is gone."""
        ...

    def delete(self, template: Template) -> None:
        """Delete it if it is still at `template.version`; `StaleVersion` otherwise."""
        ...

    def find(self, project_id: str, page: PageRequest) -> Page[Template]:
        """One page of a project's templates, newest first."""
        ...

    def purge_project(self, project_id: str) -> int:
        """Delete every template of a deleted project (idempotent); how many went."""
        ...
