"""What each Lambda function may touch: the one declaration its IAM role is built from.

Tables are named by base name (the stage prefix is added by the stack). `reads` allows item
and index reads (GetItem, BatchGetItem, Query, ConditionCheckItem in transactions,
DescribeTable); `writes` allows those and item writes (PutItem, UpdateItem, DeleteItem,
BatchWriteItem). No function may Scan.

`tests/integration/test_function_access.py` runs every function's work on moto, records each
AWS call in IAM terms, and holds this declaration to it both ways: every call is allowed, and
every grant is used (or listed in `UNEXERCISED` with the reason the workload cannot show it).

`invokes` names the functions a function invokes (asynchronously): the stack grants
`lambda:InvokeFunction` on exactly those (a grant's sid names its target, see
`components/roles.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

READ_ACTIONS: Final = (
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:Query",
)
WRITE_ACTIONS: Final = (
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
)

# The rotate_jwt_key function's own role (components/secrets.py), on the JWT secret only:
# what adapters/aws/key_rotation.py does (tests/integration/test_key_rotation.py holds it).
ROTATION_ACTIONS: Final = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
)


@dataclass(frozen=True)
class FunctionAccess:
    reads: frozenset[str] = frozenset()  # tables read only
    writes: frozenset[str] = frozenset()  # tables read and written
    # Other services, as IAM actions (each scoped to its resource by the stack).
    actions: frozenset[str] = field(default_factory=frozenset)
    # Functions it invokes (by their names in app.py).
    invokes: frozenset[str] = frozenset()

    @property
    def tables(self) -> frozenset[str]:
        return self.reads | self.writes


def _t(*names: str) -> frozenset[str]:
    return frozenset(names)


SECRET = "secretsmanager:GetSecretValue"
START_RUN = "states:StartExecution"
STOP_RUN = "states:StopExecution"
INVOKE = "lambda:InvokeFunction"
# Where Lambda puts the fire function's events that failed every try (its async on-failure
# destination: the scheduler's dead-letter queue).
DEAD_LETTER = "sqs:SendMessage"
PUSH = "execute-api:ManageConnections"
SCHEDULES = ("scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule")
# Project hook deliveries' queue (components/hooks.py): sent to by the stream consumer (and a
# redelivery), consumed by `deliver_hooks` (its event source mapping receives and deletes with
# its role; the function hides a failed delivery's message for the backoff).
HOOK_SEND = "sqs:SendMessage"
HOOK_CONSUME = (
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
)

FUNCTION_ACCESS: Final[dict[str, FunctionAccess]] = {
    "api_handler": FunctionAccess(
        reads=_t("project_events", "rule_executions", "search_terms"),
        writes=_t(
            "api_tokens",
            "claims",
            "comments",
            "executions",
            "hook_deliveries",
            "hooks",
            "idempotency",  # Idempotency-Key records (claim, complete, release)
            "login_throttle",
            "memberships",
            "notification_state",
            "notifications",
            "projects",
            "rules",
            "sessions",
            "task_graphs",
            "task_history",
            "tasks",
            "templates",
            "user_projects",
            "users",
            "workflow_runs",
            "workflows",
        ),
        actions=_t(SECRET, START_RUN, STOP_RUN, HOOK_SEND),
        invokes=_t("fire"),  # a manual run's first attempt
    ),
    "websocket_connect": FunctionAccess(
        # API tokens with the `read` scope connect too: their item and user, their last use.
        reads=_t("sessions", "users"),
        writes=_t("api_tokens", "connections"),
        actions=_t(SECRET),
    ),
    "websocket_message": FunctionAccess(
        reads=_t("memberships", "project_events", "projects"),
        writes=_t("connections", "subscriptions"),
        actions=_t(PUSH),
    ),
    "websocket_disconnect": FunctionAccess(writes=_t("connections", "subscriptions")),
    "on_change": FunctionAccess(
        reads=_t("connections", "projects", "rules", "templates", "users", "workflows"),
        writes=_t(
            "claims",
            "comments",
            "executions",
            "hook_deliveries",
            "hooks",
            "memberships",
            "notifications",
            "project_events",
            "rule_executions",
            "search_terms",
            # In-order subscriptions: the last delivered event moves (services/realtime.py).
            "subscriptions",
            "task_graphs",
            "task_history",
            "tasks",
            "user_projects",
            "workflow_runs",
        ),
        actions=_t(PUSH, START_RUN, HOOK_SEND, *SCHEDULES),
        invokes=_t("fan_out"),
    ),
    "fan_out": FunctionAccess(writes=_t("connections", "subscriptions"), actions=_t(PUSH)),
    "fire": FunctionAccess(
        reads=_t("projects"),
        writes=_t(
            "claims",
            "executions",
            "notifications",
            "task_history",
            "tasks",
            "workflow_runs",
            "workflows",
        ),
        # The webhook's signing secret; a retry handed to the state machine; the dead letters.
        actions=_t(SECRET, START_RUN, DEAD_LETTER),
        invokes=_t("fire"),  # a buffered firing's turn, freed by the run that ended here
    ),
    "plan": FunctionAccess(writes=_t("executions", "workflow_runs")),
    "run_step": FunctionAccess(
        reads=_t("projects"),
        writes=_t("executions", "notifications", "task_history", "tasks"),
        actions=_t(SECRET),
    ),
    # Due dates; executions whose lease expired (recorded, handed over or dispatched again).
    "sweep": FunctionAccess(
        reads=_t("projects", "tasks"),
        writes=_t("claims", "executions", "notifications", "task_history"),
        actions=_t(START_RUN),
        invokes=_t("fire"),
    ),
    # One attempt per queued delivery: the delivery and its hook; the project's admins when a
    # hook is turned off (their notifications); the project's signing secret.
    "deliver_hooks": FunctionAccess(
        reads=_t("memberships"),
        writes=_t("hook_deliveries", "hooks", "notifications"),
        actions=_t(SECRET, *HOOK_CONSUME),
    ),
}

# Grants the recorded workload cannot show, and why they are needed all the same.
UNEXERCISED: Final[dict[tuple[str, str], str]] = {
    ("on_change", "function:fan_out"): "only a fan-out beyond 250 subscribers hands shares on",
    ("fire", DEAD_LETTER): "Lambda itself sends an event that failed every try there",
    ("fire", "function:fire"): "a buffered firing is dispatched when the run ahead of it ends "
    "in this function (tests/unit/test_overlap.py): the sequential workload buffers none",
    ("fan_out", "connections"): "moto accepts every connection id: no 410, nothing to forget",
    ("fan_out", "subscriptions"): "moto accepts every connection id: no 410, nothing to forget",
    ("deliver_hooks", "memberships"): "read to notify admins when a hook is turned off after 20 "
    "failed deliveries in a row (tests/unit/test_hooks.py): the workload's hook succeeds",
    ("deliver_hooks", "notifications"): "written when a hook is turned off after 20 failed "
    "deliveries in a row (tests/unit/test_hooks.py): the workload's hook succeeds",
    ("deliver_hooks", "sqs:ReceiveMessage"): "the SQS event source mapping receives with the "
    "function's role; the workload hands the function its event",
    ("deliver_hooks", "sqs:DeleteMessage"): "the SQS event source mapping deletes the messages "
    "the function did not report failed, with the function's role",
    ("deliver_hooks", "sqs:GetQueueAttributes"): "the SQS event source mapping reads the "
    "queue's attributes with the function's role",
}


def granted(function: str) -> set[tuple[str, str]]:
    """(action, resource) pairs the function's role allows, in the recorder's terms."""
    access = FUNCTION_ACCESS[function]
    pairs: set[tuple[str, str]] = set()
    for table in access.tables:
        actions = READ_ACTIONS + (WRITE_ACTIONS if table in access.writes else ())
        pairs |= {(action, table) for action in actions}
        pairs.add(("dynamodb:Query", f"{table}/index"))
    resources = {
        "secretsmanager": "secret",
        "states": "state-machine",
        "scheduler": "schedule",
        "lambda": "function",
        "execute-api": "@connections",
        "sqs": "queue",
    }
    pairs |= {(action, resources[action.split(":")[0]]) for action in access.actions}
    pairs |= {(INVOKE, f"function:{name}") for name in access.invokes}
    return pairs
