"""Automation rules and what they did."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

# The domain's types are for annotations only (see the package's docstring).
if TYPE_CHECKING:
    from chalicelib.domain.model import Page, PageRequest
    from chalicelib.domain.rules import Rule, RuleExecution, TriggerEvent


class RuleRepository(Protocol):
    """Automation rules, one item each; every write is conditional (new id, or the version
    read). The enabled rules of a project for one event are one query on a key."""

    def get(self, rule_id: str) -> Rule | None: ...

    def create(self, rule: Rule) -> Rule:
        """Write a new rule. `NotFound` if its project is gone (checked in the same write)."""
        ...

    def update(self, before: Rule, after: Rule) -> Rule:
        """Write `after` if the rule is still at `before.version`; returns it with version + 1.
        `StaleVersion` on a lost race (or if it is gone), `NotFound` if its project is gone."""
        ...

    def delete(self, rule: Rule) -> None:
        """Delete it if it is still at `rule.version`; `StaleVersion` otherwise."""
        ...

    def find(self, project_id: str, page: PageRequest) -> Page[Rule]:
        """One page of a project's rules, newest first."""
        ...

    def enabled_for(self, project_id: str, event: TriggerEvent) -> list[Rule]:
        """The project's enabled rules whose trigger is `event`, oldest first."""
        ...

    def purge_project(self, project_id: str) -> int:
        """Delete every rule of a deleted project, with its execution log (idempotent)."""
        ...


class RuleExecutionRepository(Protocol):
    """What rules did: one claim per (rule, event), and each rule's execution log."""

    def claim(self, rule_id: str, event_key: str, execution_id: str, at: datetime) -> bool:
        """Claim the event for the rule (a conditional put that expires in time): True if this
        call claimed it, False if it was claimed already (a repeated delivery)."""
        ...

    def add(self, execution: RuleExecution) -> None: ...

    def find(self, rule_id: str, page: PageRequest) -> Page[RuleExecution]:
        """One page of a rule's executions, newest first."""
        ...
