"""The DynamoDB stream consumer (`on_change`): what follows a write, outside the request.

On AWS every stream-enabled table feeds it through an event source mapping (CDK); locally the
local stack wires moto's streams the same way. It is idempotent: a batch may come again after
a failure, and the records of one item arrive in order.

It keeps the changes clients hear about in the project event log and pushes them to their
WebSockets (`services/realtime.py`), keeps
the search index and the scheduler schedules of tasks and workflows in step, and
purges what deleted tasks and projects leave behind (a project's purge deletes its tasks and
workflows, whose own stream records then remove their schedules).
"""

from __future__ import annotations

from typing import Any

from chalicelib import bootstrap
from chalicelib.domain.schedules import ScheduleTarget
from chalicelib.representations.events import events_of


def on_change(event: dict[str, Any]) -> dict[str, Any]:
    container = bootstrap.container()
    # Clients first: pushing is what someone is waiting for; the rest is bookkeeping. A
    # project's events are kept in its event log first, which gives them their ids.
    with container.request_scope():
        events = container.realtime.record(events_of(container.realtime_changes(event)))
        published = container.realtime.publish(events)
    # Project hooks: deliveries made and queued here, sent by `deliver_hooks` (never inline).
    with container.request_scope():
        hook_deliveries = container.hooks.dispatch(events)
    changes = container.task_changes(event)
    index_writes = sum(container.search_indexer.apply(before, after) for before, after in changes)
    schedule_calls = sum(container.schedule_sync.apply(before, after) for before, after in changes)
    schedule_calls += sum(
        container.schedule_sync.apply(before, after, ScheduleTarget.WORKFLOW)
        for before, after in container.workflow_changes(event)
    )
    purged = sum(
        container.janitor.purge_task(before.id)
        for before, after in changes
        if before is not None and after is None
    )
    purged += sum(container.janitor.purge_project(p) for p in container.removed_projects(event))
    purged += sum(container.hooks.purge_project(p) for p in container.removed_projects(event))
    # Automation: a deleted project's rules and templates go; rules act on what happened.
    purged += sum(
        container.rules.purge_project(p) + container.templates.purge_project(p)
        for p in container.removed_projects(event)
    )
    rules_fired = len(container.rule_engine.handle(container.rule_events(event)))
    return {
        "records": len(event.get("Records", [])),
        "index_writes": index_writes,
        "schedule_calls": schedule_calls,
        "purged": purged,
        "rules_fired": rules_fired,
        "pushed": published.pushed,
        "gone": published.gone,
        "hook_deliveries": hook_deliveries,
    }
