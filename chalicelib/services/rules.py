"""Automation rules: their routes (`RuleService`) and their evaluation (`RuleEngine`).

Who may do what (API.md): a caller who is not a member of the rule's project gets 404;
viewers read rules and their execution logs; members create and change them; members delete the
rules they created and admins delete any.

Everything a rule names is checked when it is written (422): `set_field` values as
`PATCH /tasks/{id}` would check them, assignees and notified users are members of the project,
templates and workflows exist in the rule's project, and a template's placeholders all get a
value (from the action's `values` or the context: `task_id`, `task_title`, `rule_name`).

Evaluation (`RuleEngine.handle`, called by the stream consumer with the events it decoded):
for each event not made by a rule, the project's enabled rules for that event are one query;
for each rule whose conditions the task meets, the (rule, event) is claimed with a conditional
put (a redelivered batch finds the claim and does nothing), then the actions run in order, as
the rule's author, through the same services as requests (`TaskService`, `TemplateService`,
`WorkflowRunService`), and the execution is logged. The tasks a rule writes carry the rule's
id (`RuleMarkedTasks`) and the runs it starts the trigger `rule`, so they set off no rule.

At most once: the claim comes before the actions, so a crash between the two loses that
firing rather than doubling it (a task made twice is worse than a rule that missed once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.activity import Notification, NotificationType, Record
from chalicelib.domain.errors import (
    DomainError,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from chalicelib.domain.ids import project_of
from chalicelib.domain.model import Page, PageRequest, new_id, rfc3339
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import ProjectRole
from chalicelib.domain.rules import (
    CONTEXT_VALUES,
    NOTIFY_ASSIGNEE,
    NOTIFY_CREATOR,
    Action,
    ActionResult,
    Assign,
    CreateTask,
    Notify,
    Rule,
    RuleCreate,
    RuleEvent,
    RuleExecution,
    RuleOutcome,
    RuleUpdate,
    RunWorkflow,
    SetField,
    TriggerEvent,
    check_set_fields,
    check_trigger,
    context_values,
    matches,
    new_rule_id,
    set_field_update,
    template_values,
)
from chalicelib.domain.tasks import Task, TaskUpdate
from chalicelib.domain.templates import FromTemplate
from chalicelib.ports import (
    Clock,
    DependencyGraph,
    NotificationRepository,
    Prefetcher,
    PrefetchKey,
    ProjectRepository,
    RuleExecutionRepository,
    RuleRepository,
    TaskQuery,
    TaskRepository,
    TemplateRepository,
    WorkflowRepository,
    WorkflowRunRepository,
    reads,
)
from chalicelib.services.access import ProjectAccess, ProjectContext, project_reads, scoped_reads
from chalicelib.services.common import require_version, with_version_retries
from chalicelib.services.tasks import TaskService
from chalicelib.services.templates import TemplateService
from chalicelib.services.workflow_runs import WorkflowRunService

READ_ROLE = ProjectRole.VIEWER
WRITE_ROLE = ProjectRole.MEMBER
DELETE_ANY_ROLE = ProjectRole.ADMIN  # members delete the rules they created
# The trigger of a workflow run a rule starts: its failures set off no rule.
RULE_RUN_TRIGGER = "rule"


# ---- what a rule acts through -------------------------------------------------------------------


class RuleMarkedTasks:
    """The task repository as one rule writes through it: every task written carries the
    rule's id (`Task.changed_by_rule`), which the stream consumer sees on the write."""

    def __init__(self, inner: TaskRepository, rule_id: str) -> None:
        self._inner = inner
        self._rule_id = rule_id

    def get(self, task_id: str) -> Task | None:
        return self._inner.get(task_id)

    def get_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        return self._inner.get_many(task_ids)

    def graph(self, project_id: str) -> DependencyGraph:
        return self._inner.graph(project_id)

    def create(
        self, task: Task, graph: DependencyGraph | None, records: Sequence[Record] = ()
    ) -> Task:
        return self._inner.create(task.with_changes(changed_by_rule=self._rule_id), graph, records)

    def update(
        self,
        before: Task,
        after: Task,
        graph: DependencyGraph | None,
        records: Sequence[Record] = (),
    ) -> Task:
        marked = after.with_changes(changed_by_rule=self._rule_id)
        return self._inner.update(before, marked, graph, records)

    def delete(self, task: Task, graph: DependencyGraph, records: Sequence[Record] = ()) -> None:
        self._inner.delete(task, graph, records)

    def find(self, query: TaskQuery) -> Page[Task]:
        return self._inner.find(query)


@dataclass(frozen=True)
class RuleTools:
    """The services one rule acts through (their task writes carry the rule's mark)."""

    tasks: TaskService
    templates: TemplateService


ToolsFor = Callable[[str], RuleTools]  # rule id -> its tools


# ---- checks shared by writing rules -------------------------------------------------------------


class _RuleChecks:
    def __init__(
        self,
        projects: ProjectRepository,
        templates: TemplateRepository,
        workflows: WorkflowRepository,
        prefetcher: Prefetcher,
    ) -> None:
        self._projects = projects
        self._templates = templates
        self._workflows = workflows
        self._prefetch = prefetcher

    def check(self, project_id: str, actions: Sequence[Action], loc: list[str | int]) -> None:
        """422 for anything an action names that does not fit the rule's project."""
        check_set_fields(actions, loc)
        users = [
            user_id
            for action in actions
            for user_id in (
                [action.assignee_id]
                if isinstance(action, Assign)
                else [action.user_id]
                if isinstance(action, Notify)
                and action.user_id not in (NOTIFY_ASSIGNEE, NOTIFY_CREATOR)
                else []
            )
            if user_id
        ]
        templates = [a.template_id for a in actions if isinstance(a, CreateTask)]
        workflows = [a.workflow_id for a in actions if isinstance(a, RunWorkflow)]
        keys: list[PrefetchKey] = [reads.member(project_id, u) for u in dict.fromkeys(users)]
        keys += [reads.template(t) for t in dict.fromkeys(templates) if project_of(t)]
        keys += [reads.workflow(w) for w in dict.fromkeys(workflows) if project_of(w)]
        self._prefetch.warm(keys)
        members = {u: self._projects.membership(project_id, u) is not None for u in set(users)}
        found_templates = {
            t: self._templates.get(t) if project_of(t) == project_id else None
            for t in set(templates)
        }
        found_workflows = {
            w: self._workflows.get(w) if project_of(w) == project_id else None
            for w in set(workflows)
        }
        details: list[dict[str, Any]] = []
        for index, action in enumerate(actions):
            here = [*loc, index]
            if isinstance(action, Assign) and action.assignee_id:
                if not members[action.assignee_id]:
                    details.append(_detail([*here, "assignee_id"], "not a member of the project"))
            elif isinstance(action, Notify) and action.user_id in members:
                if not members[action.user_id]:
                    details.append(
                        _detail(
                            [*here, "user_id"],
                            'not a member of the project (or "assignee", "creator")',
                        )
                    )
            elif isinstance(action, CreateTask):
                template = found_templates[action.template_id]
                if template is None or template.project_id != project_id:
                    details.append(
                        _detail([*here, "template_id"], "no such template in the rule's project")
                    )
                    continue
                given = {*action.values, *CONTEXT_VALUES}
                details += [
                    _detail(
                        [*here, "values", name],
                        f"the template uses {{{{{name}}}}}; give it a value",
                    )
                    for name in template.placeholders
                    if name not in given
                ]
            elif isinstance(action, RunWorkflow):
                workflow = found_workflows[action.workflow_id]
                if workflow is None or workflow.project_id != project_id:
                    details.append(
                        _detail([*here, "workflow_id"], "no such workflow in the rule's project")
                    )
        if details:
            raise ValidationFailed(
                f"the rule's actions are not valid: {len(details)} "
                f"problem{'s' if len(details) > 1 else ''}",
                details,
            )


def _detail(loc: list[str | int], message: str) -> dict[str, Any]:
    return {"loc": loc, "message": message}


# ---- the routes ---------------------------------------------------------------------------------


class RuleService:
    def __init__(
        self,
        rules: RuleRepository,
        log: RuleExecutionRepository,
        templates: TemplateRepository,
        workflows: WorkflowRepository,
        projects: ProjectRepository,
        prefetcher: Prefetcher,
        clock: Clock,
    ) -> None:
        self._rules = rules
        self._log = log
        self._access = ProjectAccess(projects)
        self._checks = _RuleChecks(projects, templates, workflows, prefetcher)
        self._prefetch = prefetcher
        self._clock = clock

    # ---- first reads: what each use case reads before anything else ------------------------------
    # The route hands the same declaration to authentication, which fetches these items with the
    # caller's session; the use case warms it again: a no-op then, one round trip for any other
    # caller.

    # Listing and creating a project's rules: the project and the caller's membership.
    reads_for_project = staticmethod(project_reads)

    @staticmethod
    def reads_for_rule(principal: Principal, rule_id: str) -> list[PrefetchKey]:
        """Reading, changing or deleting a rule, or listing its executions: it, its project and
        the caller's membership (`_require` warms them)."""
        return scoped_reads(principal, rule_id, reads.rule)

    def get(self, principal: Principal, rule_id: str) -> Rule:
        return self._require(principal, rule_id, READ_ROLE)[0]

    def find(self, principal: Principal, project_id: str, page: PageRequest) -> Page[Rule]:
        self._prefetch.warm(self.reads_for_project(principal, project_id))
        self._access.require(principal.user_id, project_id, READ_ROLE)
        return self._rules.find(project_id, page)

    def executions(
        self, principal: Principal, rule_id: str, page: PageRequest
    ) -> Page[RuleExecution]:
        self._require(principal, rule_id, READ_ROLE)
        return self._log.find(rule_id, page)

    def create(self, principal: Principal, project_id: str, command: RuleCreate) -> Rule:
        self._prefetch.warm(self.reads_for_project(principal, project_id))
        self._access.require(principal.user_id, project_id, WRITE_ROLE)
        check_trigger(command.trigger)
        actions = tuple(command.actions)
        self._checks.check(project_id, actions, ["body", "actions"])
        now = self._clock.now()
        rule = Rule(
            id=new_rule_id(project_id),
            project_id=project_id,
            name=command.name,
            enabled=command.enabled,
            event=command.trigger.event,
            conditions=command.trigger.conditions,
            actions=actions,
            created_by=principal.user_id,
            created_at=now,
            updated_at=now,
        )
        return self._rules.create(rule)

    def update(
        self,
        principal: Principal,
        rule_id: str,
        update: RuleUpdate,
        expected_version: int | None = None,
    ) -> Rule:
        """Apply the fields present. With `expected_version`, a stale version is 412; without,
        a lost race is retried."""
        if update.trigger is not None:
            check_trigger(update.trigger)

        def attempt() -> Rule:
            before, _context = self._require(principal, rule_id, WRITE_ROLE)
            require_version("rule", before.version, expected_version)
            changes: dict[str, object] = {}
            if update.name is not None:
                changes["name"] = update.name
            if update.enabled is not None:
                changes["enabled"] = update.enabled
            if update.trigger is not None:
                changes["event"] = update.trigger.event
                changes["conditions"] = update.trigger.conditions
            if update.actions is not None:
                changes["actions"] = tuple(update.actions)
            after = before.with_changes(**changes)
            if after == before:
                return before
            if update.actions is not None:
                self._checks.check(before.project_id, after.actions, ["body", "actions"])
            after = after.with_changes(updated_at=self._clock.now())
            return self._rules.update(before, after)

        return with_version_retries("rule", expected_version, attempt)

    def delete(
        self, principal: Principal, rule_id: str, expected_version: int | None = None
    ) -> None:
        def attempt() -> None:
            rule, context = self._require(principal, rule_id, WRITE_ROLE)
            if rule.created_by != principal.user_id and not context.role.at_least(DELETE_ANY_ROLE):
                raise Forbidden("members delete their own rules; admins delete any")
            require_version("rule", rule.version, expected_version)
            self._rules.delete(rule)

        with_version_retries("rule", expected_version, attempt)

    def purge_project(self, project_id: str) -> int:
        """After a project's deletion (the stream consumer): its rules and their logs go."""
        return self._rules.purge_project(project_id)

    def _require(
        self, principal: Principal, rule_id: str, at_least: ProjectRole
    ) -> tuple[Rule, ProjectContext]:
        """The rule as this caller may reach it: 404 unless a member of its project."""
        self._prefetch.warm(self.reads_for_rule(principal, rule_id))
        rule = self._rules.get(rule_id) if project_of(rule_id) else None
        if rule is None:
            raise NotFound("rule not found")
        project_id = rule.project_id
        try:
            return rule, self._access.require(principal.user_id, project_id, at_least)
        except NotFound:
            raise NotFound("rule not found") from None


# ---- evaluation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Subject:
    task: Task
    before: Task | None
    key: str


class RuleEngine:
    def __init__(
        self,
        rules: RuleRepository,
        log: RuleExecutionRepository,
        tasks: TaskRepository,
        runs: WorkflowRunRepository,
        projects: ProjectRepository,
        notifications: NotificationRepository,
        workflow_runs: WorkflowRunService,
        tools_for: ToolsFor,
        clock: Clock,
        scope: Callable[[], AbstractContextManager[None]] = nullcontext,
    ) -> None:
        self._rules = rules
        self._log = log
        self._tasks = tasks
        self._runs = runs
        self._projects = projects
        self._notifications = notifications
        self._workflow_runs = workflow_runs
        self._tools_for = tools_for
        self._clock = clock
        # Each action runs in its own request-like scope (prefetched items live as long).
        self._scope = scope

    def handle(self, events: Iterable[RuleEvent]) -> list[RuleExecution]:
        """Run the rules these events set off (see the module's docstring); the executions."""
        found: dict[tuple[str, TriggerEvent], list[Rule]] = {}
        done: list[RuleExecution] = []
        for event in events:
            if event.by_rule:
                continue
            wanted = (event.project_id, event.event)
            if wanted not in found:
                found[wanted] = self._rules.enabled_for(event.project_id, event.event)
            rules = found[wanted]
            if not rules:
                continue
            subject = self._subject(event)
            if subject is None:
                continue
            for rule in rules:
                if not matches(rule.conditions, subject.task, subject.before):
                    continue
                execution_id = new_id()
                claim_key = f"{event.event.value}#{subject.key}"
                if not self._log.claim(rule.id, claim_key, execution_id, self._clock.now()):
                    continue  # a repeated delivery: the rule acted on this already
                done.append(self._run(rule, event, subject.task, execution_id))
        return done

    def _subject(self, event: RuleEvent) -> _Subject | None:
        """The task the rules look at, and what names the event (None: nothing to do)."""
        if event.event in (TriggerEvent.TASK_CREATED, TriggerEvent.TASK_STATUS_CHANGED):
            task = event.task or self._tasks.get(event.task_id)
            return _Subject(task, event.before, event.key) if task else None
        if event.event is TriggerEvent.EXECUTION_FAILED:
            execution = event.execution
            if execution is not None and execution.workflow_run_id:
                run = self._runs.get(execution.workflow_run_id)
                if run is not None and run.trigger == RULE_RUN_TRIGGER:
                    return None  # a run a rule started: its failure is the rule's own doing
            task = self._tasks.get(event.task_id)
            return _Subject(task, None, event.key) if task else None
        # task.overdue: once per task and due date, while the task is still overdue.
        task = self._tasks.get(event.task_id)
        now = self._clock.now()
        if task is None or task.due_date is None or task.status.closed or task.due_date > now:
            return None
        return _Subject(task, None, f"{task.id}#{rfc3339(task.due_date)}")

    def _run(self, rule: Rule, event: RuleEvent, task: Task, execution_id: str) -> RuleExecution:
        principal = Principal(user_id=rule.created_by, session_id=f"rule:{rule.id}")
        tools = self._tools_for(rule.id)
        results: list[ActionResult] = []
        current = task
        for action in rule.actions:
            try:
                with self._scope():
                    result, current = self._act(action, rule, event, current, principal, tools)
            except DomainError as exc:
                result = ActionResult(action.type, RuleOutcome.FAILED, _describe(exc))
            except Exception as exc:  # a bug or an outage: the log says so, the batch goes on
                result = ActionResult(
                    action.type, RuleOutcome.FAILED, f"internal error ({type(exc).__name__})"
                )
            results.append(result)
        failures = [r for r in results if r.status is RuleOutcome.FAILED]
        execution = RuleExecution(
            id=execution_id,
            rule_id=rule.id,
            project_id=rule.project_id,
            trigger_event=event.event,
            task_id=task.id,
            status=RuleOutcome.FAILED if failures else RuleOutcome.SUCCEEDED,
            actions=tuple(results),
            at=self._clock.now(),
            error=f"{failures[0].type}: {failures[0].detail}" if failures else None,
        )
        self._log.add(execution)
        return execution

    def _act(
        self,
        action: Action,
        rule: Rule,
        event: RuleEvent,
        task: Task,
        principal: Principal,
        tools: RuleTools,
    ) -> tuple[ActionResult, Task]:
        """Do one action; its result and the task as it is afterwards."""
        if isinstance(action, SetField):
            after = tools.tasks.update(principal, task.id, set_field_update(action))
            return ActionResult(action.type, RuleOutcome.SUCCEEDED, None, task.id), after
        if isinstance(action, Assign):
            update = TaskUpdate(assignee_id=action.assignee_id)
            after = tools.tasks.update(principal, task.id, update)
            return ActionResult(action.type, RuleOutcome.SUCCEEDED, None, task.id), after
        if isinstance(action, Notify):
            return self._notify(action, rule, event, task), task
        if isinstance(action, CreateTask):
            values = template_values(action, context_values(rule, task))
            made = tools.templates.instantiate(
                principal, FromTemplate(template_id=action.template_id, values=values)
            )
            return ActionResult(action.type, RuleOutcome.SUCCEEDED, None, made.task.id), task
        run = self._workflow_runs.start(principal, action.workflow_id, trigger=RULE_RUN_TRIGGER)
        return ActionResult(action.type, RuleOutcome.SUCCEEDED, None, run.id), task

    def _notify(self, action: Notify, rule: Rule, event: RuleEvent, task: Task) -> ActionResult:
        if action.user_id == NOTIFY_ASSIGNEE:
            user_id = task.assignee_id
        elif action.user_id == NOTIFY_CREATOR:
            user_id = task.created_by
        else:
            user_id = action.user_id
        if not user_id:
            return ActionResult(action.type, RuleOutcome.SKIPPED, "the task has no assignee")
        if self._projects.membership(task.project_id, user_id) is None:
            return ActionResult(
                action.type, RuleOutcome.SKIPPED, "not a member of the project", user_id
            )
        message = action.message or f'Rule "{rule.name}" ({event.event.value}): "{task.title}"'
        self._notifications.add(
            [
                Notification(
                    id=new_id(),
                    user_id=user_id,
                    type=NotificationType.RULE_NOTIFY,
                    message=message,
                    created_at=self._clock.now(),
                    task_id=task.id,
                    project_id=task.project_id,
                )
            ]
        )
        return ActionResult(action.type, RuleOutcome.SUCCEEDED, None, user_id)


def _describe(exc: DomainError) -> str:
    """An error as the execution log shows it: its message, and its details' messages."""
    if isinstance(exc, NotFound | Forbidden):
        return f"{exc.message} (as the rule's author)"
    details = "; ".join(str(d.get("message", "")) for d in exc.details if d.get("message"))
    return f"{exc.message}: {details}" if details else exc.message
