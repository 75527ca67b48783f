"""The composition root: settings -> adapters -> services, built on first use and cached.

Nothing here runs at import time. Tests build their own `Container` from fakes and install it
with `override()`; the local stack and Lambda use `container()`.
"""

from __future__ import annotations

import dataclasses
import hmac
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
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
    from chalicelib.services.rules import RuleEngine, RuleService
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
    return SigningKeyRotation(_aws_client("secretsmanager", settings), settings.jwt_secret_id)


class _LazyClient:
    """An AWS client made on its first use. The container holds a client for every service
    it may call, and making one loads that service's model (tens of ms, and botocore's
    endpoint rules for the first); a request or an event uses one or two of them, often none."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # only for what is not set above: the client's
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make()
                client = self._client
        return getattr(client, name)


def _aws_client(
    service: str, settings: Settings, *, max_pool_connections: int = 10, **kwargs: Any
) -> Any:
    def make() -> Any:
        from botocore.config import Config

        from chalicelib.adapters.dynamodb.connection import botocore_session

        config = Config(
            connect_timeout=2,
            read_timeout=10,
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=max_pool_connections,
        )
        # botocore's own client (what boto3.client returns) without importing boto3, from the
        # session DynamoDB's client already loaded the endpoints with.
        return botocore_session().create_client(
            service, region_name=settings.aws_region, config=config, **kwargs
        )

    return _LazyClient(make)


def build(settings: Settings, *, hasher: PasswordHasher | None = None) -> Container:
    """Wire the AWS adapters. `hasher` lets tests trade argon2's cost for speed.

    Each service is made (and its modules imported) when the container first hands it out:
    a request or an event uses a few of them, and importing them all is most of a cold start's
    own code (bench/coldstart.py). The shared pieces are made once, by `_Wiring`."""
    from chalicelib.adapters.dynamodb import prefetch, tables
    from chalicelib.domain import cursors

    tables.bind(settings.table_prefix, settings.aws_region)
    wiring = _Wiring(settings, hasher)
    cursors.use_signing_key(lambda: wiring.derived_secret(b"cursors"))
    return _LazyContainer(wiring, settings=settings, request_scope=prefetch.request_scope)


class _LazyContainer(Container):
    """A `Container` whose fields are taken from its wiring on first use, then kept."""

    def __init__(self, wiring: _Wiring, **given: Any) -> None:  # not the dataclass's: no fields
        self.__dict__.update(given)
        self._wiring = wiring
        self._making = threading.RLock()  # a service's wiring may need another service

    def __getattr__(self, name: str) -> Any:  # only for fields not made yet
        if name.startswith("_") or name not in _FIELDS:
            raise AttributeError(name)
        with self._making:
            if name not in self.__dict__:
                self.__dict__[name] = getattr(self._wiring, name)
        return self.__dict__[name]


class _Wiring:
    """The adapters and services of a deployed container, each made on first use."""

    def __init__(self, settings: Settings, hasher: PasswordHasher | None) -> None:
        self.settings = settings
        self._hasher = hasher

    # -- shared pieces

    @cached_property
    def clock(self) -> Clock:
        from chalicelib.adapters.system import SystemClock

        return SystemClock()

    @cached_property
    def _secretsmanager(self) -> Any:
        return _aws_client("secretsmanager", self.settings)

    @cached_property
    def _secrets(self) -> Any:
        from chalicelib.adapters.aws.secrets import SecretsManagerSecrets

        return SecretsManagerSecrets(self._secretsmanager)

    def derived_secret(self, label: bytes) -> bytes:
        """A key for one purpose, derived from the master secret (read on first use only):
        every container agrees on it, and one leaked derived key reveals no other. The master
        is the derivation key, never the JWT signing key: rotating that one must not change
        webhook secrets or cursors (docs/keys.md)."""
        master = self._secrets.get(self.settings.derivation_secret_id).encode()
        return hmac.new(master, label, "sha256").digest()

    def _webhook_secret(self, project_id: str) -> str:
        return self.derived_secret(b"webhook:" + project_id.encode()).hex()

    @cached_property
    def _hasher_or_argon2(self) -> PasswordHasher:
        from chalicelib.adapters.passwords import Argon2PasswordHasher

        return self._hasher or Argon2PasswordHasher()

    @cached_property
    def _users(self) -> Any:
        from chalicelib.adapters.dynamodb.identity import DynamoUserRepository

        return DynamoUserRepository()

    @cached_property
    def _sessions(self) -> Any:
        from chalicelib.adapters.dynamodb.identity import DynamoSessionRepository

        return DynamoSessionRepository()

    @cached_property
    def _projects(self) -> Any:
        from chalicelib.adapters.dynamodb.projects import DynamoProjectRepository

        return DynamoProjectRepository()

    @cached_property
    def _task_repository(self) -> Any:
        from chalicelib.adapters.dynamodb.tasks import DynamoTaskRepository

        return DynamoTaskRepository()

    @cached_property
    def _search_index(self) -> Any:
        from chalicelib.adapters.dynamodb.search import DynamoSearchIndex

        return DynamoSearchIndex()

    @cached_property
    def _execution_repository(self) -> Any:
        from chalicelib.adapters.dynamodb.executions import DynamoExecutionRepository

        return DynamoExecutionRepository()

    @cached_property
    def _workflow_run_repository(self) -> Any:
        from chalicelib.adapters.dynamodb.workflow_runs import DynamoWorkflowRunRepository

        return DynamoWorkflowRunRepository()

    @cached_property
    def _workflow_repository(self) -> Any:
        from chalicelib.adapters.dynamodb.workflows import DynamoWorkflowRepository

        return DynamoWorkflowRepository()

    @cached_property
    def _template_repository(self) -> Any:
        from chalicelib.adapters.dynamodb.templates import DynamoTemplateRepository

        return DynamoTemplateRepository()

    @cached_property
    def _rule_repository(self) -> Any:
        from chalicelib.adapters.dynamodb.rules import DynamoRuleRepository

        return DynamoRuleRepository()

    @cached_property
    def _rule_log(self) -> Any:
        from chalicelib.adapters.dynamodb.rules import DynamoRuleExecutionRepository

        return DynamoRuleExecutionRepository()

    @cached_property
    def _notification_repository(self) -> Any:
        from chalicelib.adapters.dynamodb.notifications import DynamoNotificationRepository

        return DynamoNotificationRepository()

    def _prefetcher(self) -> Any:  # one per service: each keeps its own request's items
        from chalicelib.adapters.dynamodb.warm import DynamoPrefetcher

        return DynamoPrefetcher()

    def _check_webhook_url(self, url: str) -> Any:
        from chalicelib.adapters.http import check_url_target

        return check_url_target(url, self.settings.allow_private_webhooks)

    @cached_property
    def _calendar_keys(self) -> Any:
        from chalicelib.services.calendars import CalendarKeys

        # Calendar tokens derive from the user's nonce with this key (docs/security.md).
        return CalendarKeys(lambda: self.derived_secret(b"calendar-tokens"))

    @cached_property
    def _tokens(self) -> Any:
        from chalicelib.adapters.aws.secrets import SecretsManagerSigningKeys
        from chalicelib.services.tokens import TokenCodec

        settings = self.settings
        return TokenCodec(
            keys=SecretsManagerSigningKeys(
                self._secretsmanager, settings.jwt_secret_id, ttl=settings.jwt_keys_cache_seconds
            ),
            clock=self.clock,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
        )

    @cached_property
    def _runner(self) -> Any:
        from chalicelib.adapters.aws.stepfunctions import StepFunctionsRunner

        settings = self.settings
        if not settings.state_machine_arn:
            return None  # workflow runs stay queued, retries are not made: nothing runs them
        return StepFunctionsRunner(
            _aws_client("stepfunctions", settings), settings.state_machine_arn
        )

    @cached_property
    def _lambda_client(self) -> Any:
        settings = self.settings
        if settings.fire_function_arn or settings.fan_out_function_arn:
            return _aws_client("lambda", settings)
        return None

    @cached_property
    def _dispatcher(self) -> Any:
        from chalicelib.adapters.aws.dispatch import LambdaAttemptDispatcher

        if self._lambda_client is None or not self.settings.fire_function_arn:
            return None  # manual runs stay queued: nothing makes their attempts
        return LambdaAttemptDispatcher(self._lambda_client, self.settings.fire_function_arn)

    @cached_property
    def _slots(self) -> Any:
        from chalicelib.services.executions import OverlapSlots

        return OverlapSlots(self._execution_repository, self._dispatcher, self.clock)

    def _task_service(self, tasks: Any) -> TaskService:
        from chalicelib.services.tasks import TaskService

        return TaskService(
            tasks,
            self._projects,
            self._users,
            self._prefetcher(),
            self.clock,
            check_webhook_url=self._check_webhook_url,
        )

    def _template_service(self, tasks: TaskService) -> TemplateService:
        from chalicelib.services.templates import TemplateService

        return TemplateService(
            self._template_repository, tasks, self._projects, self._prefetcher(), self.clock
        )

    def _rule_tools(self, rule_id: str) -> Any:
        from chalicelib.services.rules import RuleMarkedTasks, RuleTools

        marked = self._task_service(RuleMarkedTasks(self._task_repository, rule_id))
        return RuleTools(marked, self._template_service(marked))

    # -- the container's fields

    @cached_property
    def auth(self) -> AuthService:
        from chalicelib.adapters.dynamodb.identity import DynamoLoginAttempts
        from chalicelib.services.auth import AuthService, LoginPolicy

        policy = LoginPolicy(
            max_failures=self.settings.login_max_failures,
            window=timedelta(seconds=self.settings.login_failure_window_seconds),
        )
        return AuthService(
            self._users,
            self._sessions,
            DynamoLoginAttempts(),
            self._hasher_or_argon2,
            self._tokens,
            self.clock,
            policy,
            self._calendar_keys,
        )

    @cached_property
    def users(self) -> UserService:
        from chalicelib.services.users import UserService

        return UserService(self._users, self._sessions, self._hasher_or_argon2, self.clock)

    @cached_property
    def pusher(self) -> Pusher:
        from chalicelib.adapters.aws.websocket import PUSH_WORKERS, ApiGatewayPusher

        return ApiGatewayPusher(
            _aws_client(
                "apigatewaymanagementapi",
                self.settings,
                endpoint_url=self.settings.ws_management_url,
                # One kept-alive connection per fan-out worker, none opened and dropped per push.
                max_pool_connections=PUSH_WORKERS,
            )
        )

    @cached_property
    def health(self) -> HealthProbe:
        from chalicelib.adapters.system import DynamoHealthProbe

        return DynamoHealthProbe()

    @cached_property
    def projects(self) -> ProjectService:
        from chalicelib.services.access import ProjectAccess
        from chalicelib.services.projects import ProjectService

        return ProjectService(
            self._projects, self._users, ProjectAccess(self._projects), self.clock
        )

    @cached_property
    def tasks(self) -> TaskService:
        return self._task_service(self._task_repository)

    @cached_property
    def search(self) -> SearchService:
        from chalicelib.services.search import SearchService

        return SearchService(self._search_index, self._task_repository, self._projects)

    @cached_property
    def search_indexer(self) -> SearchIndexer:
        from chalicelib.services.search import SearchIndexer

        return SearchIndexer(self._search_index)

    @cached_property
    def task_changes(self) -> Callable[[dict[str, Any]], list[tuple[Task | None, Task | None]]]:
        from chalicelib.adapters.dynamodb.streams import task_changes

        return task_changes

    @cached_property
    def workflow_changes(
        self,
    ) -> Callable[[dict[str, Any]], list[tuple[Workflow | None, Workflow | None]]]:
        from chalicelib.adapters.dynamodb.streams import workflow_changes

        return workflow_changes

    @cached_property
    def removed_projects(self) -> Callable[[dict[str, Any]], list[str]]:
        from chalicelib.adapters.dynamodb.streams import removed_projects

        return removed_projects

    @cached_property
    def realtime_changes(self) -> Callable[[dict[str, Any]], list[StreamChange]]:
        from chalicelib.adapters.dynamodb.streams import realtime_changes

        return realtime_changes

    @cached_property
    def rule_events(self) -> Callable[[dict[str, Any]], list[RuleEvent]]:
        from chalicelib.adapters.dynamodb.streams import rule_events

        return rule_events

    @cached_property
    def janitor(self) -> Janitor:
        from chalicelib.adapters.dynamodb.janitor import DynamoJanitor

        return DynamoJanitor()

    @cached_property
    def scheduler(self) -> Scheduler:
        from chalicelib.adapters.aws.scheduler import EventBridgeScheduler, UnconfiguredScheduler

        settings = self.settings
        if not (settings.fire_function_arn and settings.scheduler_role_arn):
            return UnconfiguredScheduler()
        return EventBridgeScheduler(
            _aws_client("scheduler", settings),
            settings.schedule_group,
            settings.fire_function_arn,
            settings.scheduler_role_arn,
            settings.scheduler_dlq_arn,
        )

    @cached_property
    def schedule_sync(self) -> ScheduleSync:
        from chalicelib.services.schedules import ScheduleSync

        return ScheduleSync(self.scheduler)

    @cached_property
    def comments(self) -> CommentService:
        from chalicelib.adapters.dynamodb.comments import (
            DynamoCommentRepository,
            DynamoEmailDirectory,
        )
        from chalicelib.services.comments import CommentService

        return CommentService(
            DynamoCommentRepository(),
            self._task_repository,
            self._projects,
            self._users,
            DynamoEmailDirectory(),
            self._prefetcher(),
            self.clock,
        )

    @cached_property
    def history(self) -> HistoryService:
        from chalicelib.adapters.dynamodb.comments import DynamoHistoryRepository
        from chalicelib.services.comments import HistoryService

        return HistoryService(
            DynamoHistoryRepository(), self._task_repository, self._projects, self._prefetcher()
        )

    @cached_property
    def notifications(self) -> NotificationService:
        from chalicelib.services.notifications import NotificationService

        return NotificationService(self._notification_repository)

    @cached_property
    def executions(self) -> ExecutionService:
        from chalicelib.services.executions import ExecutionService

        return ExecutionService(
            self._execution_repository,
            self._task_repository,
            self._projects,
            self._prefetcher(),
            self.clock,
            self._dispatcher,
            attempts=self.runs,
            slots=self._slots,
        )

    @cached_property
    def runs(self) -> RunService:
        from chalicelib.adapters.http import UrllibWebhookClient
        from chalicelib.services.runs import RunService

        return RunService(
            self._execution_repository,
            self._task_repository,
            UrllibWebhookClient(self.settings.allow_private_webhooks),
            self.webhook_secrets.for_signing,
            self.clock,
            self._slots,
            self._workflow_run_repository,
            self._prefetcher(),
            runner=self._runner,
            dispatcher=self._dispatcher,
        )

    @cached_property
    def due_sweep(self) -> DueSweepService:
        from chalicelib.adapters.dynamodb.sweep import DynamoDueSweepRepository
        from chalicelib.services.sweep import DueSweepService

        return DueSweepService(DynamoDueSweepRepository(), self.clock)

    @cached_property
    def webhook_secrets(self) -> WebhookSecrets:
        from chalicelib.services.webhook_secrets import WebhookSecrets

        return WebhookSecrets(self._projects, self._webhook_secret)

    @cached_property
    def workflows(self) -> WorkflowService:
        from chalicelib.services.workflows import WorkflowService

        return WorkflowService(
            self._workflow_repository,
            self._task_repository,
            self._projects,
            self._users,
            self._prefetcher(),
            self.clock,
        )

    @cached_property
    def workflow_runs(self) -> WorkflowRunService:
        from chalicelib.services.workflow_runs import WorkflowRunService

        return WorkflowRunService(
            self._workflow_run_repository,
            self._workflow_repository,
            self._execution_repository,
            self._projects,
            self.clock,
            self._runner,
            self._prefetcher(),
        )

    @cached_property
    def realtime(self) -> RealtimeService:
        from chalicelib.adapters.aws.fan_out import LambdaFanOut
        from chalicelib.adapters.dynamodb.connections import DynamoConnectionRepository
        from chalicelib.services.realtime import RealtimeService

        settings = self.settings
        fan_out = (
            LambdaFanOut(self._lambda_client, settings.fan_out_function_arn)
            if self._lambda_client is not None and settings.fan_out_function_arn
            else None
        )
        return RealtimeService(
            DynamoConnectionRepository(),
            self.pusher,
            self.auth,
            self._projects,
            self._prefetcher(),
            self.clock,
            fan_out,
        )

    @cached_property
    def templates(self) -> TemplateService:
        return self._template_service(self._task_service(self._task_repository))

    @cached_property
    def rules(self) -> RuleService:
        from chalicelib.services.rules import RuleService

        return RuleService(
            self._rule_repository,
            self._rule_log,
            self._template_repository,
            self._workflow_repository,
            self._projects,
            self._prefetcher(),
            self.clock,
        )

    @cached_property
    def rule_engine(self) -> RuleEngine:
        from chalicelib.adapters.dynamodb import prefetch
        from chalicelib.services.rules import RuleEngine

        return RuleEngine(
            self._rule_repository,
            self._rule_log,
            self._task_repository,
            self._workflow_run_repository,
            self._projects,
            self._notification_repository,
            self.workflow_runs,
            self._rule_tools,
            self.clock,
            scope=prefetch.request_scope,
        )

    @cached_property
    def calendars(self) -> CalendarService:
        from chalicelib.adapters.dynamodb.calendars import DynamoCalendarRepository
        from chalicelib.services.calendars import CalendarService

        return CalendarService(
            self._users,
            DynamoCalendarRepository(),
            self._projects,
            self._prefetcher(),
            self.clock,
            self._calendar_keys,
        )


_FIELDS = frozenset(field.name for field in dataclasses.fields(Container))
