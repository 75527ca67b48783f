"""The deployed adapters: DynamoDB through PynamoDB, and botocore clients for the other AWS
services, each made on first use (chalicelib/bootstrap.py wires services on them)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from chalicelib.settings import Settings


class AwsAdapters:
    """bootstrap.Adapters on AWS, each made (and its modules imported) on first use."""

    def __init__(self, settings: Settings, hasher: PasswordHasher | None = None) -> None:
        self.settings = settings
        self._hasher = hasher

    @cached_property
    def clock(self) -> Clock:
        from chalicelib.adapters.system import SystemClock

        return SystemClock()

    @cached_property
    def _secretsmanager(self) -> Any:
        return aws_client("secretsmanager", self.settings)

    @cached_property
    def secrets(self) -> Secrets:
        from chalicelib.adapters.aws.secrets import SecretsManagerSecrets

        return SecretsManagerSecrets(self._secretsmanager)

    @cached_property
    def signing_keys(self) -> SigningKeys:
        from chalicelib.adapters.aws.secrets import SecretsManagerSigningKeys

        settings = self.settings
        return SecretsManagerSigningKeys(
            self._secretsmanager, settings.jwt_secret_id, ttl=settings.jwt_keys_cache_seconds
        )

    @cached_property
    def hasher(self) -> PasswordHasher:
        from chalicelib.adapters.passwords import Argon2PasswordHasher

        return self._hasher or Argon2PasswordHasher()

    @cached_property
    def users(self) -> UserRepository:
        from chalicelib.adapters.dynamodb.identity import DynamoUserRepository

        return DynamoUserRepository()

    @cached_property
    def sessions(self) -> SessionRepository:
        from chalicelib.adapters.dynamodb.identity import DynamoSessionRepository

        return DynamoSessionRepository()

    @cached_property
    def login_attempts(self) -> LoginAttempts:
        from chalicelib.adapters.dynamodb.identity import DynamoLoginAttempts

        return DynamoLoginAttempts()

    @cached_property
    def projects(self) -> ProjectRepository:
        from chalicelib.adapters.dynamodb.projects import DynamoProjectRepository

        return DynamoProjectRepository()

    @cached_property
    def tasks(self) -> TaskRepository:
        from chalicelib.adapters.dynamodb.tasks import DynamoTaskRepository

        return DynamoTaskRepository()

    @cached_property
    def search_index(self) -> SearchIndex:
        from chalicelib.adapters.dynamodb.search import DynamoSearchIndex

        return DynamoSearchIndex()

    @cached_property
    def comments(self) -> CommentRepository:
        from chalicelib.adapters.dynamodb.comments import DynamoCommentRepository

        return DynamoCommentRepository()

    @cached_property
    def history(self) -> HistoryRepository:
        from chalicelib.adapters.dynamodb.comments import DynamoHistoryRepository

        return DynamoHistoryRepository()

    @cached_property
    def email_directory(self) -> EmailDirectory:
        from chalicelib.adapters.dynamodb.comments import DynamoEmailDirectory

        return DynamoEmailDirectory()

    @cached_property
    def notifications(self) -> NotificationRepository:
        from chalicelib.adapters.dynamodb.notifications import DynamoNotificationRepository

        return DynamoNotificationRepository()

    @cached_property
    def executions(self) -> ExecutionRepository:
        from chalicelib.adapters.dynamodb.executions import DynamoExecutionRepository

        return DynamoExecutionRepository()

    @cached_property
    def workflows(self) -> WorkflowRepository:
        from chalicelib.adapters.dynamodb.workflows import DynamoWorkflowRepository

        return DynamoWorkflowRepository()

    @cached_property
    def workflow_runs(self) -> WorkflowRunRepository:
        from chalicelib.adapters.dynamodb.workflow_runs import DynamoWorkflowRunRepository

        return DynamoWorkflowRunRepository()

    @cached_property
    def templates(self) -> TemplateRepository:
        from chalicelib.adapters.dynamodb.templates import DynamoTemplateRepository

        return DynamoTemplateRepository()

    @cached_property
    def rules(self) -> RuleRepository:
        from chalicelib.adapters.dynamodb.rules import DynamoRuleRepository

        return DynamoRuleRepository()

    @cached_property
    def rule_log(self) -> RuleExecutionRepository:
        from chalicelib.adapters.dynamodb.rules import DynamoRuleExecutionRepository

        return DynamoRuleExecutionRepository()

    @cached_property
    def calendars(self) -> CalendarRepository:
        from chalicelib.adapters.dynamodb.calendars import DynamoCalendarRepository

        return DynamoCalendarRepository()

    @cached_property
    def api_tokens(self) -> ApiTokenRepository:
        from chalicelib.adapters.dynamodb.api_tokens import DynamoApiTokenRepository

        return DynamoApiTokenRepository()

    @cached_property
    def hooks(self) -> HookRepository:
        from chalicelib.adapters.dynamodb.hooks import DynamoHookRepository

        return DynamoHookRepository()

    @cached_property
    def hook_deliveries(self) -> DeliveryRepository:
        from chalicelib.adapters.dynamodb.hooks import DynamoDeliveryRepository

        return DynamoDeliveryRepository()

    @cached_property
    def hook_queue(self) -> DeliveryQueue:
        from chalicelib.adapters.aws.hook_queue import SqsDeliveryQueue, UnconfiguredQueue

        if not self.settings.hook_queue_url:
            return UnconfiguredQueue()
        return SqsDeliveryQueue(aws_client("sqs", self.settings), self.settings.hook_queue_url)

    @cached_property
    def connections(self) -> ConnectionRepository:
        from chalicelib.adapters.dynamodb.connections import DynamoConnectionRepository

        return DynamoConnectionRepository()

    @cached_property
    def event_log(self) -> EventLog:
        from chalicelib.adapters.dynamodb.event_log import DynamoEventLog

        return DynamoEventLog()

    @cached_property
    def due_sweep(self) -> DueSweepRepository:
        from chalicelib.adapters.dynamodb.sweep import DynamoDueSweepRepository

        return DynamoDueSweepRepository()

    @cached_property
    def janitor(self) -> Janitor:
        from chalicelib.adapters.dynamodb.janitor import DynamoJanitor

        return DynamoJanitor()

    @cached_property
    def health(self) -> HealthProbe:
        from chalicelib.adapters.system import DynamoHealthProbe

        return DynamoHealthProbe()

    @cached_property
    def pusher(self) -> Pusher:
        from chalicelib.adapters.aws.websocket import PUSH_WORKERS, ApiGatewayPusher

        return ApiGatewayPusher(
            aws_client(
                "apigatewaymanagementapi",
                self.settings,
                endpoint_url=self.settings.ws_management_url,
                # One kept-alive connection per fan-out worker, none opened and dropped per push.
                max_pool_connections=PUSH_WORKERS,
            )
        )

    @cached_property
    def scheduler(self) -> Scheduler:
        from chalicelib.adapters.aws.scheduler import EventBridgeScheduler, UnconfiguredScheduler

        settings = self.settings
        if not (settings.fire_function_arn and settings.scheduler_role_arn):
            return UnconfiguredScheduler()
        return EventBridgeScheduler(
            aws_client("scheduler", settings),
            settings.schedule_group,
            settings.fire_function_arn,
            settings.scheduler_role_arn,
            settings.scheduler_dlq_arn,
        )

    @cached_property
    def webhook_client(self) -> WebhookClient:
        from chalicelib.adapters.http import UrllibWebhookClient

        return UrllibWebhookClient(self.settings.allow_private_webhooks)

    @cached_property
    def prefetcher(self) -> Prefetcher:
        from chalicelib.adapters.dynamodb.warm import DynamoPrefetcher

        return DynamoPrefetcher()  # stateless: the items live in the request's scope

    @cached_property
    def runner(self) -> ExecutionRunner | None:
        from chalicelib.adapters.aws.stepfunctions import StepFunctionsRunner

        settings = self.settings
        if not settings.state_machine_arn:
            return None
        return StepFunctionsRunner(
            aws_client("stepfunctions", settings), settings.state_machine_arn
        )

    @cached_property
    def _lambda_client(self) -> Any:
        return aws_client("lambda", self.settings)

    @cached_property
    def dispatcher(self) -> AttemptDispatcher | None:
        from chalicelib.adapters.aws.dispatch import LambdaAttemptDispatcher

        if not self.settings.fire_function_arn:
            return None
        return LambdaAttemptDispatcher(self._lambda_client, self.settings.fire_function_arn)

    @cached_property
    def fan_out(self) -> FanOut | None:
        from chalicelib.adapters.aws.fan_out import LambdaFanOut

        if not self.settings.fan_out_function_arn:
            return None
        return LambdaFanOut(self._lambda_client, self.settings.fan_out_function_arn)

    @cached_property
    def task_changes(self) -> StreamDecoder:
        from chalicelib.adapters.dynamodb.streams import task_changes

        return task_changes

    @cached_property
    def workflow_changes(self) -> StreamDecoder:
        from chalicelib.adapters.dynamodb.streams import workflow_changes

        return workflow_changes

    @cached_property
    def removed_projects(self) -> StreamDecoder:
        from chalicelib.adapters.dynamodb.streams import removed_projects

        return removed_projects

    @cached_property
    def realtime_changes(self) -> StreamDecoder:
        from chalicelib.adapters.dynamodb.streams import realtime_changes

        return realtime_changes

    @cached_property
    def rule_events(self) -> StreamDecoder:
        from chalicelib.adapters.dynamodb.streams import rule_events

        return rule_events

    @cached_property
    def idempotency(self) -> IdempotencyStore:
        from chalicelib.adapters.dynamodb.idempotency import DynamoIdempotencyStore

        return DynamoIdempotencyStore()

    def check_webhook_url(self, url: str) -> None:
        from chalicelib.adapters.http import check_url_target

        check_url_target(url, self.settings.allow_private_webhooks)

    def request_scope(self) -> AbstractContextManager[None]:
        from chalicelib.adapters.dynamodb import prefetch

        return prefetch.request_scope()


class LazyClient:
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


def aws_client(
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

    return LazyClient(make)
