"""Automation rules: write-time checks and roles (RuleService), and evaluation on stream events
(RuleEngine): conditions, actions, the loop guard and acting once per event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.domain.activity import Notification, NotificationType
from chalicelib.domain.errors import Forbidden, NotFound, ValidationFailed
from chalicelib.domain.executions import Execution, ExecutionStatus, Trigger
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.rules import (
    RuleCreate,
    RuleEvent,
    RuleOutcome,
    RuleUpdate,
    TriggerEvent,
)
from chalicelib.domain.tasks import Priority, Status, Task, TaskCreate, TaskUpdate
from chalicelib.domain.templates import TemplateCreate
from chalicelib.domain.workflows import Step, Workflow, new_workflow_id
from chalicelib.services.rules import (
    RULE_RUN_TRIGGER,
    RuleEngine,
    RuleMarkedTasks,
    RuleService,
    RuleTools,
)
from chalicelib.services.tasks import TaskService
from chalicelib.services.templates import TemplateService
from chalicelib.services.workflow_runs import WorkflowRunService
from tests.fakes import (
    InMemoryExecutionRepository,
    InMemoryNotificationRepository,
    InMemoryRuleExecutionRepository,
    InMemoryRuleRepository,
    InMemoryWorkflowRepository,
    InMemoryWorkflowRunRepository,
    NoPrefetch,
    refuse_internal_urls,
)
from tests.unit.conftest import World
from tests.unit.test_templates import Team, make_team


@dataclass
class Auto:
    team: Team
    rules: RuleService
    engine: RuleEngine
    log: InMemoryRuleExecutionRepository
    notifications: InMemoryNotificationRepository
    workflows: InMemoryWorkflowRepository
    runs: InMemoryWorkflowRunRepository
    tasks: TaskService

    def task(self, **fields: Any) -> Task:
        fields.setdefault("title", "Server down")
        fields.setdefault("project_id", self.team.project.id)
        return self.tasks.create(self.team.owner, TaskCreate.model_validate(fields))

    def created(self, task: Task, **fields: Any) -> RuleEvent:
        stored = self.team.tasks.tasks[task.id]
        return RuleEvent(
            TriggerEvent.TASK_CREATED, task.id, task.project_id, task.id, task=stored, **fields
        )

    def rule(self, who: Any = None, **body: Any) -> Any:
        body.setdefault("name", "R")
        body.setdefault("trigger", {"event": "task.created"})
        return self.rules.create(
            who or self.team.member, self.team.project.id, RuleCreate.model_validate(body)
        )


@pytest.fixture
def auto(world: World) -> Auto:
    team = make_team(world)
    projects = world.users_repo.project_repo
    rules = InMemoryRuleRepository(projects)
    log = InMemoryRuleExecutionRepository()
    workflows = InMemoryWorkflowRepository(projects)
    executions = InMemoryExecutionRepository()
    runs = InMemoryWorkflowRunRepository(executions)
    notifications = InMemoryNotificationRepository()

    def task_service(repo: Any) -> TaskService:
        return TaskService(
            repo, projects, world.users_repo, NoPrefetch(), world.clock, refuse_internal_urls
        )

    def tools(rule_id: str) -> RuleTools:
        marked = task_service(RuleMarkedTasks(team.tasks, rule_id))
        return RuleTools(
            marked, TemplateService(team.repo, marked, projects, NoPrefetch(), world.clock)
        )

    service = RuleService(rules, log, team.repo, workflows, projects, NoPrefetch(), world.clock)
    engine = RuleEngine(
        rules,
        log,
        team.tasks,
        runs,
        projects,
        notifications,
        WorkflowRunService(runs, workflows, executions, projects, world.clock, None),
        tools,
        world.clock,
    )
    return Auto(
        team, service, engine, log, notifications, workflows, runs, task_service(team.tasks)
    )


def template(auto: Auto, **fields: Any) -> Any:
    fields.setdefault("name", "Triage")
    fields.setdefault("task", {"title": "Triage {{task_title}} for {{who}}", "tags": ["intake"]})
    return auto.team.service.create(
        auto.team.member, auto.team.project.id, TemplateCreate.model_validate(fields)
    )


def workflow(auto: Auto, project_id: str | None = None) -> Workflow:
    project_id = project_id or auto.team.project.id
    now = auto.team.world.clock.now()
    return auto.workflows.create(
        Workflow(
            new_workflow_id(project_id), project_id, "W", (Step("a", new_id()),), "u", now, now
        )
    )


class TestWriting:
    def test_create_read_list_update_delete_with_roles(self, auto: Auto) -> None:
        team = auto.team
        rule = auto.rule(
            trigger={"event": "task.status_changed", "conditions": {"from_status": "pending"}},
            actions=[{"type": "notify", "user_id": "assignee"}],
        )
        assert (rule.enabled, rule.event, rule.created_by) == (
            True,
            TriggerEvent.TASK_STATUS_CHANGED,
            team.member.user_id,
        )
        assert auto.rules.get(team.viewer, rule.id) == rule
        assert auto.rules.find(team.viewer, team.project.id, PageRequest()).items == [rule]
        with pytest.raises(NotFound):
            auto.rules.get(team.stranger, rule.id)
        with pytest.raises(Forbidden):
            auto.rule(team.viewer, actions=[{"type": "notify", "user_id": "creator"}])
        off = auto.rules.update(team.member, rule.id, RuleUpdate(enabled=False), 1)
        assert (off.enabled, off.version, off.actions) == (False, 2, rule.actions)
        theirs = auto.rule(team.admin, actions=[{"type": "notify", "user_id": "creator"}])
        with pytest.raises(Forbidden):
            auto.rules.delete(team.member, theirs.id)
        auto.rules.delete(team.admin, theirs.id)
        auto.rules.delete(team.member, rule.id)
        assert auto.rules.find(team.member, team.project.id, PageRequest()).items == []

    def test_everything_an_action_names_is_checked(self, auto: Auto) -> None:
        team = auto.team
        elsewhere = workflow(
            auto, team.world.users_repo.get(team.stranger.user_id).personal_project_id
        )  # type: ignore[union-attr]
        with pytest.raises(ValidationFailed) as caught:
            auto.rule(
                actions=[
                    {"type": "set_field", "field": "status", "value": "done"},
                    {"type": "assign", "assignee_id": team.stranger.user_id},
                    {"type": "notify", "user_id": team.stranger.user_id},
                    {"type": "create_task", "template_id": template(auto).id},
                    {"type": "create_task", "template_id": new_id() + team.project.id},
                    {"type": "run_workflow", "workflow_id": elsewhere.id},
                    {"type": "notify", "user_id": "assignee"},
                    {"type": "assign", "assignee_id": team.viewer.user_id},
                ]
            )
        assert [d["loc"] for d in caught.value.details] == [
            ["body", "actions", 0, "value"],
        ]
        with pytest.raises(ValidationFailed) as caught:
            auto.rule(
                actions=[
                    {"type": "assign", "assignee_id": team.stranger.user_id},
                    {"type": "notify", "user_id": team.stranger.user_id},
                    {"type": "create_task", "template_id": template(auto).id},
                    {"type": "create_task", "template_id": new_id() + team.project.id},
                    {"type": "run_workflow", "workflow_id": elsewhere.id},
                    {"type": "notify", "user_id": "assignee"},
                    {"type": "assign", "assignee_id": team.viewer.user_id},
                ]
            )
        assert [d["loc"] for d in caught.value.details] == [
            ["body", "actions", 0, "assignee_id"],
            ["body", "actions", 1, "user_id"],
            ["body", "actions", 2, "values", "who"],
            ["body", "actions", 3, "template_id"],
            ["body", "actions", 4, "workflow_id"],
        ]
        with pytest.raises(ValidationFailed) as caught:
            auto.rule(
                trigger={"event": "task.created", "conditions": {"from_status": "pending"}},
                actions=[{"type": "notify", "user_id": "creator"}],
            )
        assert caught.value.details[0]["loc"] == ["body", "trigger", "conditions", "from_status"]
        fine = auto.rule(
            actions=[
                {"type": "create_task", "template_id": template(auto).id, "values": {"who": "x"}},
                {"type": "run_workflow", "workflow_id": workflow(auto).id},
            ]
        )
        assert len(fine.actions) == 2

    def test_bodies(self) -> None:
        for bad in (
            {"name": "x", "trigger": {"event": "task.deleted"}, "actions": [{"type": "x"}]},
            {"name": "x", "trigger": {"event": "task.created"}, "actions": []},
            {
                "name": "x",
                "trigger": {"event": "task.created", "conditions": {"colour": "red"}},
                "actions": [{"type": "notify", "user_id": "creator"}],
            },
            {
                "name": "x",
                "trigger": {"event": "task.created"},
                "actions": [{"type": "set_field", "field": "assignee_id", "value": "u"}],
            },
        ):
            with pytest.raises(ValidationError):
                RuleCreate.model_validate(bad)


class TestEvaluation:
    def test_sets_a_field_and_creates_a_task_once_marked_as_the_rules(self, auto: Auto) -> None:
        rule = auto.rule(
            trigger={"event": "task.created", "conditions": {"tag": "intake"}},
            actions=[
                {"type": "set_field", "field": "priority", "value": "urgent"},
                {"type": "create_task", "template_id": template(auto).id, "values": {"who": "me"}},
                {"type": "notify", "user_id": "assignee"},
            ],
        )
        task = auto.task(tags=["intake"])
        event = auto.created(task)
        (execution,) = auto.engine.handle([event])
        assert (execution.status, execution.rule_id, execution.task_id, execution.error) == (
            RuleOutcome.SUCCEEDED,
            rule.id,
            task.id,
            None,
        )
        assert [(a.type, a.status) for a in execution.actions] == [
            ("set_field", RuleOutcome.SUCCEEDED),
            ("create_task", RuleOutcome.SUCCEEDED),
            ("notify", RuleOutcome.SKIPPED),  # no assignee
        ]
        stored = auto.team.tasks.tasks
        assert stored[task.id].priority is Priority.URGENT
        assert stored[task.id].changed_by_rule == rule.id
        made = stored[execution.actions[1].ref]  # type: ignore[index]
        assert (made.title, made.changed_by_rule) == ("Triage Server down for me", rule.id)
        # The same event again (a redelivered batch): nothing more.
        assert auto.engine.handle([event]) == []
        assert len(stored) == 2
        # The rule's own task is marked: as the stream would deliver it, it sets off nothing.
        assert auto.engine.handle([auto.created(made, by_rule=True)]) == []
        assert auto.rules.executions(auto.team.viewer, rule.id, PageRequest()).items == [execution]

    def test_conditions_and_disabled_rules(self, auto: Auto) -> None:
        auto.rule(
            trigger={
                "event": "task.created",
                "conditions": {"priority": "high", "is_subtask": False},
            },
            actions=[{"type": "notify", "user_id": "creator"}],
        )
        disabled = auto.rule(enabled=False, actions=[{"type": "notify", "user_id": "creator"}])
        assert auto.engine.handle([auto.created(auto.task(priority="low"))]) == []
        (done,) = auto.engine.handle([auto.created(auto.task(priority="high"))])
        assert done.rule_id != disabled.id
        (note,) = auto.notifications.records
        assert (note.type, note.user_id) == (NotificationType.RULE_NOTIFY, auto.team.owner.user_id)

    def test_status_changes_with_from_status(self, auto: Auto) -> None:
        auto.rule(
            trigger={
                "event": "task.status_changed",
                "conditions": {"from_status": "pending", "status": "in_progress"},
            },
            actions=[{"type": "assign", "assignee_id": auto.team.member.user_id}],
        )
        before = auto.task()
        after = before.with_changes(status=Status.IN_PROGRESS, version=2)
        event = RuleEvent(
            TriggerEvent.TASK_STATUS_CHANGED,
            f"{after.id}#v2",
            after.project_id,
            after.id,
            task=after,
            before=before,
        )
        (done,) = auto.engine.handle([event])
        assert done.status is RuleOutcome.SUCCEEDED
        assert auto.team.tasks.tasks[before.id].assignee_id == auto.team.member.user_id
        reversed_ = RuleEvent(
            TriggerEvent.TASK_STATUS_CHANGED,
            "k",
            after.project_id,
            after.id,
            task=before,
            before=after,
        )
        assert auto.engine.handle([reversed_]) == []

    def test_overdue_once_per_task_and_due_date(self, auto: Auto) -> None:
        auto.rule(
            trigger={"event": "task.overdue"},
            actions=[{"type": "set_field", "field": "priority", "value": "urgent"}],
        )
        clock = auto.team.world.clock
        task = auto.task(due_date=(clock.now() + timedelta(hours=1)).isoformat())
        overdue = RuleEvent(TriggerEvent.TASK_OVERDUE, task.id, task.project_id, task.id)
        assert auto.engine.handle([overdue]) == []  # not overdue yet
        clock.advance(hours=2)
        # The sweep tells the creator and the assignee: two notifications, one firing.
        assert len(auto.engine.handle([overdue, overdue])) == 1
        assert auto.team.tasks.tasks[task.id].priority is Priority.URGENT
        # A new due date, overdue again: a new firing.
        earlier = (clock.now() - timedelta(minutes=1)).isoformat()
        auto.tasks.update(
            auto.team.owner, task.id, TaskUpdate.model_validate({"due_date": earlier})
        )
        assert len(auto.engine.handle([overdue])) == 1

    def test_failed_executions_but_not_of_runs_a_rule_started(self, auto: Auto) -> None:
        flow = workflow(auto)
        rule = auto.rule(
            trigger={"event": "execution.failed"},
            actions=[{"type": "run_workflow", "workflow_id": flow.id}],
        )
        task = auto.task()
        now = auto.team.world.clock.now()

        def failed(run_id: str | None) -> RuleEvent:
            execution = Execution(
                new_id() + task.project_id,
                task.id,
                task.project_id,
                Trigger.WORKFLOW if run_id else Trigger.MANUAL,
                ExecutionStatus.FAILED,
                now,
                workflow_run_id=run_id,
            )
            return RuleEvent(
                TriggerEvent.EXECUTION_FAILED,
                execution.id,
                task.project_id,
                task.id,
                execution=execution,
            )

        (done,) = auto.engine.handle([failed(None)])
        run = auto.runs.runs[done.actions[0].ref]  # type: ignore[index]
        assert (run.trigger, run.created_by) == (RULE_RUN_TRIGGER, rule.created_by)
        # That run's step fails in turn: the rule does not start it again (no loop).
        assert auto.engine.handle([failed(run.id)]) == []

    def test_an_action_that_fails_is_logged_and_the_others_still_run(self, auto: Auto) -> None:
        team = auto.team
        auto.rule(
            actions=[
                {"type": "assign", "assignee_id": team.viewer.user_id},
                {"type": "notify", "user_id": "creator"},
            ]
        )
        team.world.users_repo.project_repo.remove_member(team.project.id, team.viewer.user_id)
        (done,) = auto.engine.handle([auto.created(auto.task())])
        assert done.status is RuleOutcome.FAILED
        assert [a.status for a in done.actions] == [RuleOutcome.FAILED, RuleOutcome.SUCCEEDED]
        assert done.error
        assert done.error.startswith("assign:")
        assert "member" in done.error

    def test_a_rule_whose_author_left_fails_as_its_author(self, auto: Auto) -> None:
        team = auto.team
        auto.rule(actions=[{"type": "set_field", "field": "priority", "value": "low"}])
        team.world.users_repo.project_repo.remove_member(team.project.id, team.member.user_id)
        (done,) = auto.engine.handle([auto.created(auto.task())])
        assert done.status is RuleOutcome.FAILED
        assert "as the rule's author" in (done.error or "")


def test_rule_notifications_are_a_type_of_their_own() -> None:
    note = Notification(
        "n", "u", NotificationType.RULE_NOTIFY, "m", __import__("datetime").datetime.now()
    )
    assert note.type.value == "rule.notify"
