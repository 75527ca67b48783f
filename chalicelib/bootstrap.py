"""The composition root: settings -> adapters -> services, each made on first use.

- `aws_adapters(settings)`: the deployed adapters (DynamoDB, AWS clients), as `Adapters`;
- `wire(settings, adapters)`: the services on any `Adapters` (tests/fakes.py's in-memory set
  too), as the `Container` the API and the functions use. It connects to nothing itself;
- `build(settings)`: both, for Lambda and the local stack, through `container()`.

Nothing here runs at import time. Tests install a container of their own with `override()`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

# Services and adapters are imported where they are made, not here: a function imports this
# module to reach the container, and only what it uses is loaded (bench/coldstart.py).
if TYPE_CHECKING:
    from chalicelib.adapters.aws.key_rotation import SigningKeyRotation
    from chalicelib.domain.calendars import CalendarKeys
    from chalicelib.domain.realtime import StreamChange
    from chalicelib.domain.rules import RuleEvent
    from chalicelib.domain.tasks import Task
    from chalicelib.domain.workflows import Workflow
    from chalicelib.ports import (
        ApiTokenRepository,
        AttemptDispatcher,
        CalendarRepository,
        Clock,
        CommentRepository,
        ConnectionRepository,
        DeliveryQueue,
        DeliveryRepository,
        DueSweepRepository,
        EmailDirectory,
        EventLog,
        ExecutionRepository,
        ExecutionRunner,
        FanOut,
        HealthProbe,
        HistoryRepository,
        HookRepository,
        IdempotencyStore,
        Janitor,
        LoginAttempts,
        NotificationRepository,
        PasswordHasher,
        Prefetcher,
        ProjectRepository,
        Pusher,
        RuleExecutionRepository,
        RuleRepository,
        Scheduler,
        SearchIndex,
        Secrets,
        SessionRepository,
        SigningKeys,
        StreamDecoder,
        TaskRepository,
        TemplateRepository,
        UserRepository,
        WebhookClient,
        WorkflowRepository,
        WorkflowRunRepository,
    )
    from chalicelib.services.api_tokens import ApiTokenService
    from chalicelib.services.auth import AuthService
    from chalicelib.services.calendars import CalendarService
    from chalicelib.services.comments import CommentService, HistoryService
    from chalicelib.services.derived_keys import DerivedKeys
    from chalicelib.services.executions import ExecutionService, OverlapSlots
    from chalicelib.services.hooks import HookService
    from chalicelib.services.idempotency import IdempotencyService
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
    from chalicelib.services.tokens import TokenCodec
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
    # API tokens: create, list and revoke (checking them is `auth`'s).
    api_tokens: ApiTokenService
    # Project webhooks: their routes, the stream's hand-off and each delivery attempt.
    hooks: HookService
    # Idempotency-Key on POSTs: claims, guards and replays (chalicelib/api/idempotency.py).
    idempotency: IdempotencyService
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
    from chalicelib.adapters.deployed import aws_client
    from chalicelib.settings import Settings

    settings = Settings()
    return SigningKeyRotation(aws_client("secretsmanager", settings), settings.jwt_secret_id)


class Adapters(Protocol):
    """Every adapter the services are wired on: `aws_adapters()` makes the deployed ones,
    tests/fakes.py's `InMemoryAdapters` the in-memory ones."""

    @property
    def clock(self) -> Clock: ...
    @property
    def secrets(self) -> Secrets: ...  # the derivation secret's store (DerivedKeys)
    @property
    def signing_keys(self) -> SigningKeys: ...  # the JWT signing keys
    @property
    def hasher(self) -> PasswordHasher: ...
    @property
    def users(self) -> UserRepository: ...
    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def login_attempts(self) -> LoginAttempts: ...
    @property
    def projects(self) -> ProjectRepository: ...
    @property
    def tasks(self) -> TaskRepository: ...
    @property
    def search_index(self) -> SearchIndex: ...
    @property
    def comments(self) -> CommentRepository: ...
    @property
    def history(self) -> HistoryRepository: ...
    @property
    def email_directory(self) -> EmailDirectory: ...
    @property
    def notifications(self) -> NotificationRepository: ...
    @property
    def executions(self) -> ExecutionRepository: ...
    @property
    def workflows(self) -> WorkflowRepository: ...
    @property
    def workflow_runs(self) -> WorkflowRunRepository: ...
    @property
    def templates(self) -> TemplateRepository: ...
    @property
    def rules(self) -> RuleRepository: ...
    @property
    def rule_log(self) -> RuleExecutionRepository: ...
    @property
    def calendars(self) -> CalendarRepository: ...
    @property
    def api_tokens(self) -> ApiTokenRepository: ...
    @property
    def hooks(self) -> HookRepository: ...
    @property
    def hook_deliveries(self) -> DeliveryRepository: ...
    @property
    def hook_queue(self) -> DeliveryQueue: ...
    @property
    def connections(self) -> ConnectionRepository: ...
    @property
    def event_log(self) -> EventLog: ...
    @property
    def due_sweep(self) -> DueSweepRepository: ...
    @property
    def janitor(self) -> Janitor: ...
    @property
    def health(self) -> HealthProbe: ...
    @property
    def pusher(self) -> Pusher: ...
    @property
    def scheduler(self) -> Scheduler: ...
    @property
    def webhook_client(self) -> WebhookClient: ...
    @property
    def prefetcher(self) -> Prefetcher: ...
    @property
    def runner(self) -> ExecutionRunner | None: ...  # None: nothing runs retries or workflows
    @property
    def dispatcher(self) -> AttemptDispatcher | None: ...  # None: manual runs stay queued
    @property
    def fan_out(self) -> FanOut | None: ...  # None: pushes are sent from the caller itself
    @property
    def task_changes(self) -> StreamDecoder: ...
    @property
    def workflow_changes(self) -> StreamDecoder: ...
    @property
    def removed_projects(self) -> StreamDecoder: ...
    @property
    def realtime_changes(self) -> StreamDecoder: ...
    @property
    def rule_events(self) -> StreamDecoder: ...
    @property
    def idempotency(self) -> IdempotencyStore: ...

    def check_webhook_url(self, url: str) -> None:
        """Refuse a webhook target the deployment must not call (raises a DomainError)."""

    def request_scope(self) -> AbstractContextManager[None]:
        """What one request's reads share (prefetched items), for exactly that request."""


def build(settings: Settings, *, hasher: PasswordHasher | None = None) -> Container:
    """The deployed container: the AWS adapters wired into the services. `hasher` lets tests
    trade argon2's cost for speed."""
    return wire(settings, aws_adapters(settings, hasher=hasher))


def aws_adapters(settings: Settings, *, hasher: PasswordHasher | None = None) -> Adapters:
    """The deployed adapters, each made (and its modules imported) on first use."""
    from chalicelib.adapters.deployed import AwsAdapters
    from chalicelib.adapters.dynamodb import tables

    tables.bind(settings.table_prefix, settings.aws_region)
    return AwsAdapters(settings, hasher)


def wire(settings: Settings, adapters: Adapters) -> Container:
    """The services on `adapters`, each made (and its modules imported) when the container
    first hands it out: a request or an event uses a few of them, and importing them all is
    most of a cold start's own code (bench/coldstart.py). Connects to nothing itself."""
    from chalicelib.domain import cursors
    from chalicelib.services.derived_keys import CURSORS

    services = _Services(settings, adapters)
    cursors.use_signing_key(lambda: services.keys.derive(CURSORS))
    return _LazyContainer(services, settings=settings, request_scope=adapters.request_scope)


class _LazyContainer(Container):
    """A `Container` whose fields are taken from its services on first use, then kept."""

    def __init__(self, services: _Services, **given: Any) -> None:  # no dataclass fields
        self.__dict__.update(given)
        self._services = services
        self._making = threading.RLock()  # a service's wiring may need another service

    def __getattr__(self, name: str) -> Any:  # only for fields not made yet
        if name.startswith("_") or name not in _FIELDS:
            raise AttributeError(name)
        with self._making:
            if name not in self.__dict__:
                self.__dict__[name] = getattr(self._services, name)
        return self.__dict__[name]


class _Services:
    """The container's services on `adapters`, each made on first use. Pure wiring: what
    connects, reads or decides anything is in the adapters and the services."""

    def __init__(self, settings: Settings, adapters: Adapters) -> None:
        self.settings = settings
        self.adapters = adapters

    # -- what several services share

    @property
    def clock(self) -> Clock:
        return self.adapters.clock

    @cached_property
    def keys(self) -> DerivedKeys:
        from chalicelib.services.derived_keys import DerivedKeys

        return DerivedKeys(self.adapters.secrets, self.settings.derivation_secret_id)

    @cached_property
    def _calendar_keys(self) -> CalendarKeys:
        from chalicelib.domain.calendars import CalendarKeys
        from chalicelib.services.derived_keys import CALENDAR_TOKENS

        return CalendarKeys(lambda: self.keys.derive(CALENDAR_TOKENS))

    @cached_property
    def _tokens(self) -> TokenCodec:
        from chalicelib.services.tokens import TokenCodec

        settings = self.settings
        return TokenCodec(
            keys=self.adapters.signing_keys,
            clock=self.clock,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
        )

    @cached_property
    def _slots(self) -> OverlapSlots:
        from chalicelib.services.executions import OverlapSlots

        adapters = self.adapters
        return OverlapSlots(adapters.executions, adapters.dispatcher, self.clock)

    def _task_service(self, tasks: TaskRepository) -> TaskService:
        from chalicelib.services.tasks import TaskService

        adapters = self.adapters
        return TaskService(
            tasks,
            adapters.projects,
            adapters.users,
            adapters.prefetcher,
            self.clock,
            check_webhook_url=adapters.check_webhook_url,
        )

    def _template_service(self, tasks: TaskService) -> TemplateService:
        from chalicelib.services.templates import TemplateService

        adapters = self.adapters
        return TemplateService(
            adapters.templates, tasks, adapters.projects, adapters.prefetcher, self.clock
        )

    def _rule_tools(self, rule_id: str) -> RuleTools:
        """What a rule's actions act through: tasks it creates or changes are marked as its
        own, so its own changes do not trigger it again."""
        from chalicelib.services.rules import RuleMarkedTasks, RuleTools

        marked = self._task_service(RuleMarkedTasks(self.adapters.tasks, rule_id))
        return RuleTools(marked, self._template_service(marked))

    # -- the container's fields

    @property
    def pusher(self) -> Pusher:
        return self.adapters.pusher

    @property
    def health(self) -> HealthProbe:
        return self.adapters.health

    @property
    def janitor(self) -> Janitor:
        return self.adapters.janitor

    @property
    def scheduler(self) -> Scheduler:
        return self.adapters.scheduler

    @property
    def task_changes(self) -> StreamDecoder:
        return self.adapters.task_changes

    @property
    def workflow_changes(self) -> StreamDecoder:
        return self.adapters.workflow_changes

    @property
    def removed_projects(self) -> StreamDecoder:
        return self.adapters.removed_projects

    @property
    def realtime_changes(self) -> StreamDecoder:
        return self.adapters.realtime_changes

    @property
    def rule_events(self) -> StreamDecoder:
        return self.adapters.rule_events

    @cached_property
    def auth(self) -> AuthService:
        from chalicelib.services.auth import AuthService, LoginPolicy

        adapters, settings = self.adapters, self.settings
        policy = LoginPolicy(
            max_failures=settings.login_max_failures,
            window=timedelta(seconds=settings.login_failure_window_seconds),
        )
        return AuthService(
            adapters.users,
            adapters.sessions,
            adapters.login_attempts,
            adapters.hasher,
            self._tokens,
            self.clock,
            policy,
            self._calendar_keys,
            api_tokens=adapters.api_tokens,
        )

    @cached_property
    def users(self) -> UserService:
        from chalicelib.services.users import UserService

        adapters = self.adapters
        return UserService(adapters.users, adapters.sessions, adapters.hasher, self.clock)

    @cached_property
    def projects(self) -> ProjectService:
        from chalicelib.services.access import ProjectAccess
        from chalicelib.services.projects import ProjectService

        adapters = self.adapters
        return ProjectService(
            adapters.projects, adapters.users, ProjectAccess(adapters.projects), self.clock
        )

    @cached_property
    def tasks(self) -> TaskService:
        return self._task_service(self.adapters.tasks)

    @cached_property
    def search(self) -> SearchService:
        from chalicelib.services.search import SearchService

        adapters = self.adapters
        return SearchService(adapters.search_index, adapters.tasks, adapters.projects)

    @cached_property
    def search_indexer(self) -> SearchIndexer:
        from chalicelib.services.search import SearchIndexer

        return SearchIndexer(self.adapters.search_index)

    @cached_property
    def schedule_sync(self) -> ScheduleSync:
        from chalicelib.services.schedules import ScheduleSync

        return ScheduleSync(self.adapters.scheduler)

    @cached_property
    def comments(self) -> CommentService:
        from chalicelib.services.comments import CommentService

        adapters = self.adapters
        return CommentService(
            adapters.comments,
            adapters.tasks,
            adapters.projects,
            adapters.users,
            adapters.email_directory,
            adapters.prefetcher,
            self.clock,
        )

    @cached_property
    def history(self) -> HistoryService:
        from chalicelib.services.comments import HistoryService

        adapters = self.adapters
        return HistoryService(
            adapters.history, adapters.tasks, adapters.projects, adapters.prefetcher
        )

    @cached_property
    def notifications(self) -> NotificationService:
        from chalicelib.services.notifications import NotificationService

        return NotificationService(self.adapters.notifications)

    @cached_property
    def executions(self) -> ExecutionService:
        from chalicelib.services.executions import ExecutionService

        adapters = self.adapters
        return ExecutionService(
            adapters.executions,
            adapters.tasks,
            adapters.projects,
            adapters.prefetcher,
            self.clock,
            adapters.dispatcher,
            attempts=self.runs,
            slots=self._slots,
        )

    @cached_property
    def runs(self) -> RunService:
        from chalicelib.services.runs import RunService

        adapters = self.adapters
        return RunService(
            adapters.executions,
            adapters.tasks,
            adapters.webhook_client,
            self.webhook_secrets.for_signing,
            self.clock,
            self._slots,
            adapters.workflow_runs,
            adapters.prefetcher,
            runner=adapters.runner,
            dispatcher=adapters.dispatcher,
        )

    @cached_property
    def due_sweep(self) -> DueSweepService:
        from chalicelib.services.sweep import DueSweepService

        return DueSweepService(self.adapters.due_sweep, self.clock)

    @cached_property
    def webhook_secrets(self) -> WebhookSecrets:
        from chalicelib.services.webhook_secrets import WebhookSecrets

        return WebhookSecrets(self.adapters.projects, self.keys.webhook_secret)

    @cached_property
    def workflows(self) -> WorkflowService:
        from chalicelib.services.workflows import WorkflowService

        adapters = self.adapters
        return WorkflowService(
            adapters.workflows,
            adapters.tasks,
            adapters.projects,
            adapters.users,
            adapters.prefetcher,
            self.clock,
        )

    @cached_property
    def workflow_runs(self) -> WorkflowRunService:
        from chalicelib.services.workflow_runs import WorkflowRunService

        adapters = self.adapters
        return WorkflowRunService(
            adapters.workflow_runs,
            adapters.workflows,
            adapters.executions,
            adapters.projects,
            self.clock,
            adapters.runner,
            adapters.prefetcher,
        )

    @cached_property
    def realtime(self) -> RealtimeService:
        from chalicelib.services.realtime import RealtimeService

        adapters = self.adapters
        return RealtimeService(
            adapters.connections,
            adapters.pusher,
            self.auth,
            adapters.projects,
            adapters.prefetcher,
            self.clock,
            adapters.event_log,
            adapters.fan_out,
        )

    @cached_property
    def templates(self) -> TemplateService:
        return self._template_service(self.tasks)

    @cached_property
    def rules(self) -> RuleService:
        from chalicelib.services.rules import RuleService

        adapters = self.adapters
        return RuleService(
            adapters.rules,
            adapters.rule_log,
            adapters.templates,
            adapters.workflows,
            adapters.projects,
            adapters.prefetcher,
            self.clock,
        )

    @cached_property
    def rule_engine(self) -> RuleEngine:
        from chalicelib.services.rules import RuleEngine

        adapters = self.adapters
        return RuleEngine(
            adapters.rules,
            adapters.rule_log,
            adapters.tasks,
            adapters.workflow_runs,
            adapters.projects,
            adapters.notifications,
            self.workflow_runs,
            self._rule_tools,
            self.clock,
            scope=adapters.request_scope,
        )

    @cached_property
    def calendars(self) -> CalendarService:
        from chalicelib.services.calendars import CalendarService

        adapters = self.adapters
        return CalendarService(
            adapters.users,
            adapters.calendars,
            adapters.projects,
            adapters.prefetcher,
            self.clock,
            self._calendar_keys,
        )

    @cached_property
    def api_tokens(self) -> ApiTokenService:
        from chalicelib.services.api_tokens import ApiTokenService

        return ApiTokenService(self.adapters.api_tokens, self.adapters.users, self.clock)

    @cached_property
    def hooks(self) -> HookService:
        from chalicelib.domain.hooks import RetrySchedule
        from chalicelib.services.hooks import HookService

        adapters, settings = self.adapters, self.settings
        return HookService(
            adapters.hooks,
            adapters.hook_deliveries,
            adapters.hook_queue,
            adapters.projects,
            adapters.notifications,
            adapters.webhook_client,
            self.webhook_secrets.for_signing,
            adapters.check_webhook_url,
            adapters.prefetcher,
            self.clock,
            RetrySchedule(
                settings.hook_retry_base_seconds,
                timedelta(seconds=settings.hook_retry_window_seconds),
            ),
            timeout_seconds=settings.hook_timeout_seconds,
        )

    @cached_property
    def idempotency(self) -> IdempotencyService:
        from chalicelib.services.idempotency import SEALING_PURPOSE, IdempotencyService

        return IdempotencyService(
            self.adapters.idempotency, self.clock, lambda: self.keys.derive(SEALING_PURPOSE)
        )


_FIELDS = frozenset(field.name for field in dataclasses.fields(Container))
