"""DynamoDB repositories of automation rules, their claims on events and their execution logs.

- `rules`: one item per rule, listed through `by_project`; enabled rules also carry
  `trigger_key` = "<project_id>#<event>", the key of the sparse index `enabled_by_trigger`, so
  the stream consumer finds the rules an event sets off with one Query (never a Scan).
- `claims`: `rule#<rule_id>#<event key>` (owner: the rule execution), a conditional put that
  makes each (rule, event) act once however often the stream delivers it; it expires after
  `CLAIM_LIFETIME` (far beyond the stream's 24-hour retention).
- `rule_executions`: each rule's log, newest first (ULID range keys), expiring after
  `LOG_LIFETIME`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import PutError

from chalicelib.adapters.dynamodb.janitor import delete_partition
from chalicelib.adapters.dynamodb.models import (
    ClaimModel,
    RuleExecutionModel,
    RuleModel,
)
from chalicelib.adapters.dynamodb.pagination import key_of, paginate
from chalicelib.adapters.dynamodb.project_items import ProjectItems
from chalicelib.adapters.dynamodb.transactions import condition_failed
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.rules import (
    ActionResult,
    Conditions,
    Rule,
    RuleExecution,
    RuleOutcome,
    TriggerEvent,
    actions_from,
    public_action,
)

CLAIM_LIFETIME = timedelta(days=7)
LOG_LIFETIME = timedelta(days=90)


def rule_claim(rule_id: str, event_key: str) -> str:
    return f"rule#{rule_id}#{event_key}"


def trigger_key(project_id: str, event: TriggerEvent) -> str:
    return f"{project_id}#{event.value}"


def rule_to_model(rule: Rule) -> RuleModel:
    return RuleModel(
        id=rule.id,
        project_id=rule.project_id,
        name=rule.name,
        enabled=rule.enabled,
        event=rule.event.value,
        conditions=json.dumps(rule.conditions.public(), separators=(",", ":")),
        actions=json.dumps([public_action(a) for a in rule.actions], separators=(",", ":")),
        created_by=rule.created_by,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
        version=rule.version,
        trigger_key=trigger_key(rule.project_id, rule.event) if rule.enabled else None,
    )


def rule_from_model(row: RuleModel) -> Rule:
    return Rule(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        enabled=bool(row.enabled),
        event=TriggerEvent(row.event),
        conditions=Conditions.model_validate(json.loads(row.conditions)),
        actions=actions_from(json.loads(row.actions)),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=int(row.version),
    )


def _result_data(result: ActionResult) -> dict[str, Any]:
    return {
        "type": result.type,
        "status": result.status.value,
        "detail": result.detail,
        "ref": result.ref,
    }


def execution_to_model(execution: RuleExecution) -> RuleExecutionModel:
    return RuleExecutionModel(
        rule_id=execution.rule_id,
        id=execution.id,
        project_id=execution.project_id,
        trigger_event=execution.trigger_event.value,
        task_id=execution.task_id,
        status=execution.status.value,
        actions=json.dumps([_result_data(r) for r in execution.actions], separators=(",", ":")),
        error=execution.error,
        at=execution.at,
        expires_at=execution.at + LOG_LIFETIME,
    )


def execution_from_model(row: RuleExecutionModel) -> RuleExecution:
    return RuleExecution(
        id=row.id,
        rule_id=row.rule_id,
        project_id=row.project_id,
        trigger_event=TriggerEvent(row.trigger_event),
        task_id=row.task_id,
        status=RuleOutcome(row.status),
        actions=tuple(
            ActionResult(
                type=str(raw["type"]),
                status=RuleOutcome(raw["status"]),
                detail=raw.get("detail"),
                ref=raw.get("ref"),
            )
            for raw in json.loads(row.actions)
        ),
        error=row.error,
        at=row.at,
    )


_RULES = ProjectItems(RuleModel, "rule", rule_to_model, rule_from_model)


class DynamoRuleRepository:
    @translate_aws_failures
    def get(self, rule_id: str) -> Rule | None:
        return _RULES.get(rule_id)

    @translate_aws_failures
    def create(self, rule: Rule) -> Rule:
        return _RULES.create(rule)

    @translate_aws_failures
    def update(self, before: Rule, after: Rule) -> Rule:
        # The whole item put again, which also sets or drops the sparse index key with
        # `enabled`.
        return _RULES.put(before, after)

    @translate_aws_failures
    def delete(self, rule: Rule) -> None:
        _RULES.delete(rule)

    @translate_aws_failures
    def find(self, project_id: str, page: PageRequest) -> Page[Rule]:
        return _RULES.find(project_id, page)

    @translate_aws_failures
    def enabled_for(self, project_id: str, event: TriggerEvent) -> list[Rule]:
        return [
            rule_from_model(row)
            for row in RuleModel.enabled_by_trigger.query(trigger_key(project_id, event))
        ]

    @translate_aws_failures
    def purge_project(self, project_id: str) -> int:
        # Each rule's log first: a purge cut short finds the rule again and finishes its log.
        return _RULES.purge(
            project_id, lambda rule_id: delete_partition(RuleExecutionModel, rule_id)
        )


class DynamoRuleExecutionRepository:
    @translate_aws_failures
    def claim(self, rule_id: str, event_key: str, execution_id: str, at: datetime) -> bool:
        try:
            ClaimModel(
                key=rule_claim(rule_id, event_key),
                owner_id=execution_id,
                created_at=at,
                expires_at=at + CLAIM_LIFETIME,
            ).save(condition=ClaimModel.key.does_not_exist())
        except PutError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    @translate_aws_failures
    def add(self, execution: RuleExecution) -> None:
        execution_to_model(execution).save()

    @translate_aws_failures
    def find(self, rule_id: str, page: PageRequest) -> Page[RuleExecution]:
        return paginate(
            lambda limit, start: RuleExecutionModel.query(
                rule_id,
                scan_index_forward=False,
                consistent_read=True,
                limit=limit,
                page_size=limit,
                last_evaluated_key=start,
            ),
            lambda row: key_of(row, "rule_id", "id"),
            execution_from_model,
            page,
            scope=f"rule_executions:{rule_id}",
        )
