"""The ports services depend on; adapters implement them, tests fake them.

One module per area; every public name is re-exported here, so `from chalicelib.ports import X`
works for any of them. The domain's types are for annotations only (under TYPE_CHECKING):
importing them here would load every domain module (and define its pydantic models)
wherever one port is needed.
"""

from chalicelib.ports.activity import HistoryRepository, NotificationRepository
from chalicelib.ports.executions import (
    AttemptDispatcher,
    ExecutionRepository,
    ExecutionRunner,
    WebhookClient,
)
from chalicelib.ports.hooks import DeliveryQueue, DeliveryRepository, HookRepository
from chalicelib.ports.idempotency import IdempotencyStore
from chalicelib.ports.identity import (
    ApiTokenRepository,
    EmailDirectory,
    LoginAttempts,
    LoginState,
    PasswordHasher,
    SessionRepository,
    SigningKey,
    SigningKeys,
    UserRepository,
)
from chalicelib.ports.projects import ProjectRepository
from chalicelib.ports.reads import PrefetchKey
from chalicelib.ports.realtime import ConnectionRepository, EventLog, FanOut, Pusher
from chalicelib.ports.rules import RuleExecutionRepository, RuleRepository
from chalicelib.ports.system import (
    Clock,
    HealthProbe,
    Janitor,
    Prefetcher,
    Scheduler,
    Secrets,
    StreamDecoder,
)
from chalicelib.ports.tasks import (
    CalendarRepository,
    CommentRepository,
    DependencyGraph,
    DueSweepRepository,
    DueTaskRef,
    SearchIndex,
    TaskQuery,
    TaskRepository,
)
from chalicelib.ports.templates import TemplateRepository
from chalicelib.ports.workflows import WorkflowRepository, WorkflowRunRepository

__all__ = [
    "ApiTokenRepository",
    "AttemptDispatcher",
    "CalendarRepository",
    "Clock",
    "CommentRepository",
    "ConnectionRepository",
    "DeliveryQueue",
    "DeliveryRepository",
    "DependencyGraph",
    "DueSweepRepository",
    "DueTaskRef",
    "EmailDirectory",
    "EventLog",
    "ExecutionRepository",
    "ExecutionRunner",
    "FanOut",
    "HealthProbe",
    "HistoryRepository",
    "HookRepository",
    "IdempotencyStore",
    "Janitor",
    "LoginAttempts",
    "LoginState",
    "NotificationRepository",
    "PasswordHasher",
    "PrefetchKey",
    "Prefetcher",
    "ProjectRepository",
    "Pusher",
    "RuleExecutionRepository",
    "RuleRepository",
    "Scheduler",
    "SearchIndex",
    "Secrets",
    "SessionRepository",
    "SigningKey",
    "SigningKeys",
    "StreamDecoder",
    "TaskQuery",
    "TaskRepository",
    "TemplateRepository",
    "UserRepository",
    "WebhookClient",
    "WorkflowRepository",
    "WorkflowRunRepository",
]
