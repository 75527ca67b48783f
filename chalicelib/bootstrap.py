"""The composition root: settings -> adapters -> services, built on first use and cached.

Nothing here runs at import time. Tests build their own `Container` from fakes and install it
with `override()`; the local stack and Lambda use `container()`.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

# Services are imported by `build`, not here: a function imports this module to reach the
# container, and only the first build pays for the services (bench/coldstart.py).
if TYPE_CHECKING:
    from chalicelib.adapters.aws.key_rotation import SigningKeyRotation
    from chalicelib.domain.realtime import StreamChange
    from chalicelib.domain.rules import RuleEvent
    from chalicelib.domain.tasks import Task
    from chalicelib.domain.workflows import Workflow
    from chalicelib.ports import Clock, HealthProbe, Janitor, PasswordHasher, Pusher, Scheduler
    from chalicelib.services.auth import AuthService
    from chalicelib.services.calendars import CalendarService
    from chalicelib.services.comments import CommentService, HistoryService
    from chalicelib.services.executions import ExecutionService
    from chalicelib.services.notifications import NotificationService
    from chalicelib.services.projects import ProjectService
    from chalicelib.services.realtime import RealtimeService
    from chalicelib.services.rules import RuleEngine, RuleService, RuleTools
    from chalicelib.services.runs import RunService
    from chalicelib.services.schedules import ScheduleSync
    from chalicelib.services.search import SearchIndexer, SearchService
    from chalicelib.services.sweep import DueSweepService
    from chalicelib.services.tasks import TaskService
    from chalicelib.services.templates import TemplateService
    from chalicelib.services.users import UserService
    from chalicelib.services.webhook_secrets import WebhookSecrets
    from chalicelib.services.workflow_runs import WorkflowRunService
    from chalicelib.services.workflows import WorkflowService
    from chalicelib.settings import Settings

VERSION = "0.1.0"


@dataclass
class Container:
    settings: Settings
    clock: Clock
    auth: AuthService
    users: UserService
    pusher: Pusher
    health: HealthProbe
    projects: ProjectService
    tasks: TaskService
    search: SearchService
    search_indexer: SearchIndexer
    # Decodes a DynamoDB stream batch into (before, after) task changes.
    task_changes: Callable[[dict[str, Any]], list[tuple[Task | None, Task | None]]]
    # ... and into (before, after) workflow changes.
    workflow_changes: Callable[[dict[str, Any]], list[tuple[Workflow | None, Workflow | None]]]
    removed_projects: Callable[[dict[str, Any]], list[str]]
    janitor: Janitor
    scheduler: Scheduler
    schedule_sync: ScheduleSync
    comments: CommentService
    history: HistoryService
    notifications: NotificationService
    executions: ExecutionService
    runs: RunService
    due_sweep: DueSweepService  # the scheduled `task.due_soon` / `task.overdue` sweep
    webhook_secrets: WebhookSecrets
    workflows: WorkflowService
    workflow_runs: WorkflowRunService
    realtime: RealtimeService
    # Decodes a stream batch into the changes clients hear about.
    realtime_changes: Callable[[dict[str, Any]], list[StreamChange]]
    # Automation: task templates, rules, and the rules' evaluation on stream events.
    templates: TemplateService
    rules: RuleService
    rule_engine: RuleEngine
    rule_events: Callable[[dict[str, Any]], list[RuleEvent]]
    # Calendar feeds (RFC 5545) behind each user's calendar token.
    calendars: CalendarService
    # Wraps each request: prefetched items live exactly as long as the request.
    request_scope: Callable[[], AbstractContextManager[None]] = nullcontext


_lock = threading.Lock()
_container: Container | None = None


def container() -> Container:
    global _container
    if _container is None:
        with _lock:
            if _container is None:
                # pydantic-settings is imported here, with the settings it reads: it is ~10% of
                # importing the app otherwise (bench/coldstart.py).
                from chalicelib.settings import Settings

                _container = build(Settings())
    return _container


def override(replacement: Container | None) -> None:
    """Install a container built elsewhere (tests), or None to build afresh on next use."""
    global _container
    with _lock:
        _container = replacement
        if replacement is None:
            from chalicelib.domain import cursors

            cursors.use_signing_key(None)  # the next build installs its own


def key_rotation() -> SigningKeyRotation:
    """The JWT signing key's rotation steps, for the `rotate_jwt_key` function: one Secrets
    Manager client, not the whole container (built per invocation: four per rotation)."""
    from chalicelib.adapters.aws.key_rotation import SigningKeyRotation
    from chalicelib.settings import Settings

    settings = Settings()
    return SigningKeyRotation(_boto3_client("secretsmanager", settings), settings.jwt_secret_id)


def _boto3_client(
    service: str, settings: Settings, *, max_pool_connections: int = 10, **kwargs: Any
) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=2,
        read_timeout=10,
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=max_pool_connections,
    )
    return boto3.client(service, region_name=settings.aws_region, config=config, **kwargs)


def build(settings: Settings, *, hasher: PasswordHasher | None = None) -> Container:
    """Wire the AWS adapters. `hasher` lets tests trade argon2's cost for speed."""
    from chalicelib.adapters.aws.dispatch import LambdaAttemptDispatcher
    from chalicelib.adapters.aws.fan_out import LambdaFanOut
    from chalicelib.adapters.aws.scheduler import EventBridgeScheduler, UnconfiguredScheduler
    from chalicelib.adapters.aws.secrets import SecretsManagerSecrets, SecretsManagerSigningKeys
    from chalicelib.adapters.aws.stepfunctions import StepFunctionsRunner
    from chalicelib.adapters.aws.websocket import PUSH_WORKERS, ApiGatewayPusher
    from chalicelib.adapters.dynamodb import prefetch, tables
    from chalicelib.adapters.dynamodb.calendars import DynamoCalendarRepository
    from chalicelib.adapters.dynamodb.comments import (
        DynamoCommentRepository,
        DynamoEmailDirectory,
        DynamoHistoryRepository,
    )
    from chalicelib.adapters.dynamodb.connections import DynamoConnectionRepository
    from chalicelib.adapters.dynamodb.executions import DynamoExecutionRepository
    from chalicelib.adapters.dynamodb.identity import (
        DynamoLoginAttempts,
        DynamoSessionRepository,
        DynamoUserRepository,
    )
    from chalicelib.adapters.dynamodb.janitor import DynamoJanitor
    from chalicelib.adapters.dynamodb.notifications import DynamoNotificationRepository
    from chalicelib.adapters.dynamodb.projects import DynamoProjectRepository
    from chalicelib.adapters.dynamodb.rules import (
        DynamoRuleExecutionRepository,
        DynamoRuleRepository,
    )
    from chalicelib.adapters.dynamodb.search import DynamoSearchIndex
    from chalicelib.adapters.dynamodb.streams import (
        realtime_changes,
        removed_projects,
        rule_events,
        task_changes,
        workflow_changes,
    )
    from chalicelib.adapters.dynamodb.sweep import DynamoDueSweepRepository
    from chalicelib.adapters.dynamodb.tasks import DynamoTaskRepository
    from chalicelib.adapters.dynamodb.templates import DynamoTemplateRepository
    from chalicelib.adapters.dynamodb.warm import DynamoPrefetcher
    from chalicelib.adapters.dynamodb.workflow_runs import DynamoWorkflowRunRepository
    from chalicelib.adapters.dynamodb.workflows import DynamoWorkflowRepository
    from chalicelib.adapters.http import UrllibWebhookClient, check_url_target
    from chalicelib.adapters.passwords import Argon2PasswordHasher
    from chalicelib.adapters.system import DynamoHealthProbe, SystemClock
    from chalicelib.domain import cursors
    from chalicelib.services.access import ProjectAccess
    from chalicelib.services.auth import AuthService, LoginPolicy
    from chalicelib.services.calendars import CalendarKeys, CalendarService
    from chalicelib.services.comments import CommentService, HistoryService
    from chalicelib.services.executions import ExecutionService, OverlapSlots
    from chalicelib.services.notifications import NotificationService
    from chalicelib.services.projects import ProjectService
    from chalicelib.services.realtime import RealtimeService
    from chalicelib.services.rules import RuleEngine, RuleMarkedTasks, RuleService, RuleTools
    from chalicelib.services.runs import RunService
    from chalicelib.services.schedules import ScheduleSync
    from chalicelib.services.search import SearchIndexer, SearchService
    from chalicelib.services.sweep import DueSweepService
    from chalicelib.services.tasks import TaskService
    from chalicelib.services.templates import TemplateService
    from chalicelib.services.tokens import TokenCodec
    from chalicelib.services.users import UserService
    from chalicelib.services.webhook_secrets import WebhookSecrets
    from chalicelib.services.workflow_runs import WorkflowRunService
    from chalicelib.services.workflows import WorkflowService

    tables.bind(settings.table_prefix, settings.aws_region)
    clock = SystemClock()
    secretsmanager = _boto3_client("secretsmanager", settings)
    secrets = SecretsManagerSecrets(secretsmanager)
    hasher = hasher or Argon2PasswordHasher()
    users = DynamoUserRepository()
    projects = DynamoProjectRepository()
    task_repository = DynamoTaskRepository()
    search_index = DynamoSearchIndex()
    sessions = DynamoSessionRepository()
    policy = LoginPolicy(
        max_failures=settings.login_max_failures,
        window=timedelta(seconds=settings.login_failure_window_seconds),
    )

    def derived_secret(label: bytes) -> bytes:
        """A key for one purpose, derived from the master secret (read on first use only):
        every container agrees on it, and one leaked derived key reveals no other. The master
        is the derivation key, never the JWT signing key: rotating that one must not change
        webhook secrets or cursors (docs/keys.md)."""
        master = secrets.get(settings.derivation_secret_id).encode()
        return hmac.new(master, label, "sha256").digest()

    def webhook_secret(project_id: str) -> str:
        return derived_secret(b"webhook:" + project_id.encode()).hex()

    cursors.use_signing_key(lambda: derived_secret(b"cursors"))
    # Calendar tokens derive from the user's nonce with this key (docs/security.md).
    calendar_keys = CalendarKeys(lambda: derived_secret(b"calendar-tokens"))
    tokens = TokenCodec(
        keys=SecretsManagerSigningKeys(
            secretsmanager, settings.jwt_secret_id, ttl=settings.jwt_keys_cache_seconds
        ),
        clock=clock,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
    )
    pusher = ApiGatewayPusher(
        _boto3_client(
            "apigatewaymanagementapi",
            settings,
            endpoint_url=settings.ws_management_url,
            # One kept-alive connection per fan-out worker, none opened and dropped per push.
            max_pool_connections=PUSH_WORKERS,
        )
    )
    scheduler: Scheduler = UnconfiguredScheduler()
    if settings.fire_function_arn and settings.scheduler_role_arn:
        scheduler = EventBridgeScheduler(
            _boto3_client("scheduler", settings),
            settings.schedule_group,
            settings.fire_function_arn,
            settings.scheduler_role_arn,
            settings.scheduler_dlq_arn,
        )
    runner = (
        StepFunctionsRunner(_boto3_client("stepfunctions", settings), settings.state_machine_arn)
        if settings.state_machine_arn
        else None  # workflow runs stay queued, retries are not made: nothing runs them
    )
    lambda_client = (
        _boto3_client("lambda", settings)
        if settings.fire_function_arn or settings.fan_out_function_arn
        else None
    )
    dispatcher = (
        LambdaAttemptDispatcher(lambda_client, settings.fire_function_arn)
        if lambda_client is not None and settings.fire_function_arn
        else None  # manual runs stay queued: nothing makes their attempts
    )
    execution_repository = DynamoExecutionRepository()
    workflow_run_repository = DynamoWorkflowRunRepository()
    webhook_secrets = WebhookSecrets(projects, webhook_secret)
    slots = OverlapSlots(execution_repository, dispatcher, clock)
    run_service = RunService(
        execution_repository,
        task_repository,
        UrllibWebhookClient(settings.allow_private_webhooks),
        webhook_secrets.for_signing,
        clock,
        slots,
        workflow_run_repository,
        DynamoPrefetcher(),
        runner=runner,
        dispatcher=dispatcher,
    )
    executions = ExecutionService(
        execution_repository,
        task_repository,
        projects,
        DynamoPrefetcher(),
        clock,
        dispatcher,
        attempts=run_service,
        slots=slots,
    )
    workflow_repository = DynamoWorkflowRepository()
    template_repository = DynamoTemplateRepository()
    rule_repository = DynamoRuleRepository()
    rule_log = DynamoRuleExecutionRepository()

    def task_service(tasks: Any) -> TaskService:
        return TaskService(
            tasks,
            projects,
            users,
            DynamoPrefetcher(),
            clock,
            check_webhook_url=lambda url: check_url_target(url, settings.allow_private_webhooks),
        )

    def template_service(tasks: TaskService) -> TemplateService:
        return TemplateService(template_repository, tasks, projects, DynamoPrefetcher(), clock)

    def rule_tools(rule_id: str) -> RuleTools:
        marked = task_service(RuleMarkedTasks(task_repository, rule_id))
        return RuleTools(marked, template_service(marked))

    workflow_runs = WorkflowRunService(
        workflow_run_repository,
        workflow_repository,
        execution_repository,
        projects,
        clock,
        runner,
        DynamoPrefetcher(),
    )
    auth = AuthService(
        users, sessions, DynamoLoginAttempts(), hasher, tokens, clock, policy, calendar_keys
    )
    return Container(
        settings=settings,
        clock=clock,
        auth=auth,
        realtime=RealtimeService(
            DynamoConnectionRepository(),
            pusher,
            auth,
            projects,
            DynamoPrefetcher(),
            clock,
            LambdaFanOut(lambda_client, settings.fan_out_function_arn)
            if lambda_client is not None and settings.fan_out_function_arn
            else None,
        ),
        realtime_changes=realtime_changes,
        users=UserService(users, sessions, hasher, clock),
        pusher=pusher,
        health=DynamoHealthProbe(),
        projects=ProjectService(projects, users, ProjectAccess(projects), clock),
        tasks=TaskService(
            task_repository,
            projects,
            users,
            DynamoPrefetcher(),
            clock,
            check_webhook_url=lambda url: check_url_target(url, settings.allow_private_webhooks),
        ),
        search=SearchService(search_index, task_repository, projects),
        search_indexer=SearchIndexer(search_index),
        task_changes=task_changes,
        workflow_changes=workflow_changes,
        removed_projects=removed_projects,
        janitor=DynamoJanitor(),
        scheduler=scheduler,
        schedule_sync=ScheduleSync(scheduler),
        comments=CommentService(
            DynamoCommentRepository(),
            task_repository,
            projects,
            users,
            DynamoEmailDirectory(),
            DynamoPrefetcher(),
            clock,
        ),
        history=HistoryService(
            DynamoHistoryRepository(), task_repository, projects, DynamoPrefetcher()
        ),
        notifications=NotificationService(DynamoNotificationRepository()),
        executions=executions,
        runs=run_service,
        due_sweep=DueSweepService(DynamoDueSweepRepository(), clock),
        webhook_secrets=webhook_secrets,
        workflows=WorkflowService(
            workflow_repository, task_repository, projects, users, DynamoPrefetcher(), clock
        ),
        workflow_runs=workflow_runs,
        templates=template_service(task_service(task_repository)),
        rules=RuleService(
            rule_repository,
            rule_log,
            template_repository,
            workflow_repository,
            projects,
            DynamoPrefetcher(),
            clock,
        ),
        rule_engine=RuleEngine(
            rule_repository,
            rule_log,
            task_repository,
            workflow_run_repository,
            projects,
            DynamoNotificationRepository(),
            workflow_runs,
            rule_tools,
            clock,
            scope=prefetch.request_scope,
        ),
        rule_events=rule_events,
        calendars=CalendarService(
            users, DynamoCalendarRepository(), projects, DynamoPrefetcher(), clock, calendar_keys
        ),
        request_scope=prefetch.request_scope,
    )
