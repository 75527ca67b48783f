"""Automation rules: /projects/{id}/rules, /rules/{id} and /rules/{id}/executions.

A rule id names its project the way a task id does, so a route about one rule reads the rule,
its project and the caller's membership with the session.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, from_params, route
from chalicelib.domain.rules import (
    Rule,
    RuleCreate,
    RuleExecution,
    RuleOutcome,
    RuleUpdate,
    TriggerEvent,
    public_action,
)
from chalicelib.representations.schemas import Out, PageOut
from chalicelib.services.rules import RuleService

TAG = "automation"


class TriggerOut(Out):
    event: TriggerEvent
    conditions: dict[str, Any]


class RuleOut(Out):
    id: str
    project_id: str
    name: str
    enabled: bool
    trigger: TriggerOut
    actions: list[dict[str, Any]]
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int

    @classmethod
    def of(cls, rule: Rule) -> RuleOut:
        return cls(
            id=rule.id,
            project_id=rule.project_id,
            name=rule.name,
            enabled=rule.enabled,
            trigger=TriggerOut(event=rule.event, conditions=rule.conditions.public()),
            actions=[public_action(action) for action in rule.actions],
            created_by=rule.created_by,
            created_at=rule.created_at,
            updated_at=rule.updated_at,
            version=rule.version,
        )


class ActionResultOut(Out):
    type: str
    status: RuleOutcome
    detail: str | None
    ref: str | None


class RuleExecutionOut(Out):
    id: str
    rule_id: str
    trigger_event: TriggerEvent
    task_id: str | None
    status: RuleOutcome
    actions: list[ActionResultOut]
    error: str | None
    at: datetime

    @classmethod
    def of(cls, execution: RuleExecution) -> RuleExecutionOut:
        return cls(
            id=execution.id,
            rule_id=execution.rule_id,
            trigger_event=execution.trigger_event,
            task_id=execution.task_id,
            status=execution.status,
            actions=[
                ActionResultOut(type=r.type, status=r.status, detail=r.detail, ref=r.ref)
                for r in execution.actions
            ],
            error=execution.error,
            at=execution.at,
        )


@route(
    "/projects/{project_id}/rules",
    "POST",
    tag=TAG,
    status=201,
    summary="Create an automation rule in a project (member+)",
    body=RuleCreate,
    response=RuleOut,
    errors=(403, 404, 422),
    prefetch=from_params(RuleService.reads_for_project, "project_id"),
)
def create_rule(call: Call) -> RuleOut:
    return RuleOut.of(
        bootstrap.container().rules.create(call.principal, call.params["project_id"], call.body)
    )


@route(
    "/projects/{project_id}/rules",
    "GET",
    tag=TAG,
    summary="The automation rules of a project, newest first",
    query=PageQuery,
    response=PageOut[RuleOut],
    errors=(400, 404, 422),
    prefetch=from_params(RuleService.reads_for_project, "project_id"),
)
def list_rules(call: Call) -> PageOut[RuleOut]:
    page = bootstrap.container().rules.find(
        call.principal, call.params["project_id"], call.query.page()
    )
    return PageOut[RuleOut](items=[RuleOut.of(r) for r in page.items], next_cursor=page.next_cursor)


@route(
    "/rules/{rule_id}",
    "GET",
    tag=TAG,
    summary="An automation rule",
    response=RuleOut,
    errors=(404,),
    prefetch=from_params(RuleService.reads_for_rule, "rule_id"),
)
def get_rule(call: Call) -> RuleOut:
    return RuleOut.of(bootstrap.container().rules.get(call.principal, call.params["rule_id"]))


@route(
    "/rules/{rule_id}",
    ["PUT", "PATCH"],
    tag=TAG,
    summary="Change an automation rule (fields present are applied; trigger and actions are "
    "replaced whole)",
    body=RuleUpdate,
    response=RuleOut,
    errors=(403, 404, 409, 412, 422),
    prefetch=from_params(RuleService.reads_for_rule, "rule_id"),
)
def update_rule(call: Call) -> RuleOut:
    rule = bootstrap.container().rules.update(
        call.principal, call.params["rule_id"], call.body, call.if_match
    )
    return RuleOut.of(rule)


@route(
    "/rules/{rule_id}",
    "DELETE",
    tag=TAG,
    status=204,
    summary="Delete an automation rule (members their own, admins any)",
    errors=(403, 404, 409, 412),
    prefetch=from_params(RuleService.reads_for_rule, "rule_id"),
)
def delete_rule(call: Call) -> None:
    bootstrap.container().rules.delete(call.principal, call.params["rule_id"], call.if_match)


@route(
    "/rules/{rule_id}/executions",
    "GET",
    tag=TAG,
    summary="What a rule did, newest first: each firing's trigger, task and action outcomes",
    query=PageQuery,
    response=PageOut[RuleExecutionOut],
    errors=(400, 404, 422),
    prefetch=from_params(RuleService.reads_for_rule, "rule_id"),
)
def list_rule_executions(call: Call) -> PageOut[RuleExecutionOut]:
    page = bootstrap.container().rules.executions(
        call.principal, call.params["rule_id"], call.query.page()
    )
    return PageOut[RuleExecutionOut](
        items=[RuleExecutionOut.of(e) for e in page.items], next_cursor=page.next_cursor
    )
