"""PynamoDB models: the one declaration of every table's keys and indexes.

The CDK stack and the local stack both build tables from these classes (see `tables.py`).
`Meta.table_name` holds the base name; `tables.bind()` prefixes it with the stage's prefix at
start-up, so nothing reads the environment at import time.
"""

from __future__ import annotations

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.attributes import TTLAttribute as _TTLAttribute
from pynamodb.connection.table import TableConnection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.adapters.dynamodb import connection


class TTLAttribute(_TTLAttribute):
    """PynamoDB's TTL attribute, typed for mypy."""


class BaseModel(Model):
    class Meta:
        abstract = True
        billing_mode = "PAY_PER_REQUEST"

    @classmethod
    def _get_connection(cls) -> TableConnection:
        table_connection = super()._get_connection()
        connection.share_client(table_connection)
        return table_connection


# ---- identity ----------------------------------------------------------------------------------


class UsersByEmail(GlobalSecondaryIndex["UserModel"]):
    """Admin user search: every user sits in one `directory` partition, sorted by email."""

    class Meta:
        index_name = "by_email"
        projection = AllProjection()

    directory = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute(range_key=True)


class UserModel(BaseModel):
    class Meta(BaseModel.Meta):
        table_name = "users"

    id = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute()
    name = UnicodeAttribute()
    role = UnicodeAttribute()
    timezone = UnicodeAttribute()
    password_hash = UnicodeAttribute()
    personal_project_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    version = NumberAttribute(default=1)
    directory = UnicodeAttribute(default="users")
    # The calendar token's nonce (never the token): see domain/calendars.py.
    calendar_nonce = UnicodeAttribute(null=True)
    by_email = UsersByEmail()


class ClaimModel(BaseModel):
    """A unique name owned by one item: `email#<address>`, `system#first-admin`,
    `calendar#<SHA-256 of a calendar token>` (owner: the user), ...

    Claims make uniqueness a conditional put instead of a read-then-write check.
    """

    class Meta(BaseModel.Meta):
        table_name = "claims"

    key = UnicodeAttribute(hash_key=True)
    owner_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    # Only claims that stop mattering expire (a firing's, long after any redelivery).
    expires_at = TTLAttribute(null=True)


class SessionsByUser(GlobalSecondaryIndex["SessionModel"]):
    class Meta:
        index_name = "by_user"
        projection = KeysOnlyProjection()

    user_id = UnicodeAttribute(hash_key=True)


class SessionModel(BaseModel):
    class Meta(BaseModel.Meta):
        table_name = "sessions"

    id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    refresh_jti = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute()
    revoked_at = UTCDateTimeAttribute(null=True)
    by_user = SessionsByUser()


class LoginThrottleModel(BaseModel):
    """Recent failed logins of one email (epoch seconds, oldest first); TTL drops idle ones."""

    class Meta(BaseModel.Meta):
        table_name = "login_throttle"

    email = UnicodeAttribute(hash_key=True)
    failures = ListAttribute(of=NumberAttribute, default=list)
    expires_at = TTLAttribute()


# ---- projects ----------------------------------------------------------------------------------


class ProjectModel(BaseModel):
    class Meta(BaseModel.Meta):
        table_name = "projects"
        stream_view_type = "NEW_AND_OLD_IMAGES"  # a REMOVE starts the purge of its contents

    id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    description = UnicodeAttribute(default="")
    owner_id = UnicodeAttribute()
    personal = BooleanAttribute(default=False)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    version = NumberAttribute(default=1)


class MembershipsByUser(GlobalSecondaryIndex["MembershipModel"]):
    """The projects of one user."""

    class Meta:
        index_name = "by_user"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute(range_key=True)


class MembershipModel(BaseModel):
    """A member of a project. `email` and `name` are copies, so listing members is one query."""

    class Meta(BaseModel.Meta):
        table_name = "memberships"

    project_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute(range_key=True)
    role = UnicodeAttribute()
    added_at = UTCDateTimeAttribute()
    email = UnicodeAttribute(default="")
    name = UnicodeAttribute(default="")
    by_user = MembershipsByUser()


class UserProjectsModel(BaseModel):
    """The projects of one user, {project_id: role}: `GET /projects` and `assignee_id=me` read it
    with the session in one round trip. Written in the same transaction as each membership."""

    class Meta(BaseModel.Meta):
        table_name = "user_projects"

    user_id = UnicodeAttribute(hash_key=True)
    projects = MapAttribute[str, str](default=dict)


# ---- tasks -------------------------------------------------------------------------------------
# Each list order of `GET /tasks` is an index, so a page is one Query whatever the project's size.
# Sort keys end in the task id: ties are stable and keys unique. `due_key` is "<due>#<id>", or
# "~#<id>" without a due date, which sorts after every date.


class TasksByProject(GlobalSecondaryIndex["TaskModel"]):
    class Meta:
        index_name = "by_project"
        projection = AllProjection()

    project_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class TasksByProjectDue(GlobalSecondaryIndex["TaskModel"]):
    class Meta:
        index_name = "by_project_due"
        projection = AllProjection()

    project_id = UnicodeAttribute(hash_key=True)
    due_key = UnicodeAttribute(range_key=True)


class TasksByProjectPriority(GlobalSecondaryIndex["TaskModel"]):
    class Meta:
        index_name = "by_project_priority"
        projection = AllProjection()

    project_id = UnicodeAttribute(hash_key=True)
    priority_key = UnicodeAttribute(range_key=True)


class TasksByProjectStatus(GlobalSecondaryIndex["TaskModel"]):
    class Meta:
        index_name = "by_project_status"
        projection = AllProjection()

    project_id = UnicodeAttribute(hash_key=True)
    status_key = UnicodeAttribute(range_key=True)


class TasksByProjectStatusDue(GlobalSecondaryIndex["TaskModel"]):
    """One status of one project in due order: the common "what's next" list."""

    class Meta:
        index_name = "by_project_status_due"
        projection = AllProjection()

    project_status = UnicodeAttribute(hash_key=True)
    due_key = UnicodeAttribute(range_key=True)


class TasksByAssignee(GlobalSecondaryIndex["TaskModel"]):
    class Meta:
        index_name = "by_assignee"
        projection = AllProjection()

    assignee_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class TasksByAssigneeDue(GlobalSecondaryIndex["TaskModel"]):
    class Meta:
        index_name = "by_assignee_due"
        projection = AllProjection()

    assignee_id = UnicodeAttribute(hash_key=True)
    due_key = UnicodeAttribute(range_key=True)


class TasksByParent(GlobalSecondaryIndex["TaskModel"]):
    class Meta:
        index_name = "by_parent"
        projection = AllProjection()

    parent_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class OpenTasksByDueDay(GlobalSecondaryIndex["TaskModel"]):
    """Sparse: only open tasks (not completed or cancelled) with a due date carry
    `open_due_day` (the due date's UTC day, "YYYY-MM-DD"), so the due-date sweep queries the
    days of its window, across projects, without a Scan. Keys only: the sweep reads the few
    tasks it notifies about by key."""

    class Meta:
        index_name = "open_by_due_day"
        projection = KeysOnlyProjection()

    open_due_day = UnicodeAttribute(hash_key=True)
    due_key = UnicodeAttribute(range_key=True)


class TaskModel(BaseModel):
    class Meta(BaseModel.Meta):
        table_name = "tasks"
        stream_view_type = "NEW_AND_OLD_IMAGES"

    id = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute()
    title = UnicodeAttribute()
    description = UnicodeAttribute(default="")
    status = UnicodeAttribute()
    priority = UnicodeAttribute()
    due_date = UTCDateTimeAttribute(null=True)
    assignee_id = UnicodeAttribute(null=True)
    tags = ListAttribute[str](default=list)
    parent_id = UnicodeAttribute(null=True)
    depends_on = ListAttribute[str](default=list)
    # Sets, changed with ADD/DELETE by the subtasks' own writes (never clobbered by a put).
    subtask_ids = UnicodeSetAttribute(default=set)
    open_subtask_ids = UnicodeSetAttribute(default=set)
    schedule = UnicodeAttribute(null=True)  # JSON
    action = UnicodeAttribute(null=True)  # JSON
    retry = UnicodeAttribute(null=True)  # JSON
    next_run_at = UTCDateTimeAttribute(null=True)
    created_by = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    completed_at = UTCDateTimeAttribute(null=True)
    version = NumberAttribute(default=1)
    # The automation rule that made this write (set or removed on every write, never read
    # back): the stream consumer sees it on the write's image, and rules skip such changes.
    changed_by_rule = UnicodeAttribute(null=True)
    # Index keys, derived from the fields above on every write.
    due_key = UnicodeAttribute()
    priority_key = UnicodeAttribute()
    status_key = UnicodeAttribute()
    project_status = UnicodeAttribute()
    open_due_day = UnicodeAttribute(null=True)  # open tasks with a due date only (sparse)

    by_project = TasksByProject()
    by_project_due = TasksByProjectDue()
    by_project_priority = TasksByProjectPriority()
    by_project_status = TasksByProjectStatus()
    by_project_status_due = TasksByProjectStatusDue()
    by_assignee = TasksByAssignee()
    by_assignee_due = TasksByAssigneeDue()
    by_parent = TasksByParent()
    open_by_due_day = OpenTasksByDueDay()


class TaskGraphModel(BaseModel):
    """A project's dependency edges {task_id: [task it depends on, ...]}, one item per project.

    Cycle checks read it whole in one get; each change of `depends_on` rewrites it in the same
    transaction as the task, conditional on its version.
    """

    class Meta(BaseModel.Meta):
        table_name = "task_graphs"

    project_id = UnicodeAttribute(hash_key=True)
    edges = MapAttribute[str, list[str]](default=dict)
    version = NumberAttribute(default=0)


class TaskHistoryModel(BaseModel):
    """One event of a task's history; `id` is a ULID, so a query reads them oldest first."""

    class Meta(BaseModel.Meta):
        table_name = "task_history"

    task_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    type = UnicodeAttribute()
    actor_id = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    changes = UnicodeAttribute(default="{}")  # JSON {field: [old, new]}


class NotificationModel(BaseModel):
    """One notification of one user; `id` is a ULID, so a descending query is newest first."""

    class Meta(BaseModel.Meta):
        table_name = "notifications"
        stream_view_type = "NEW_AND_OLD_IMAGES"  # pushed to the user's WebSockets

    user_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    type = UnicodeAttribute()
    message = UnicodeAttribute()
    task_id = UnicodeAttribute(null=True)
    project_id = UnicodeAttribute(null=True)
    read = BooleanAttribute(default=False)
    created_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute()


class SearchTermModel(BaseModel):
    """The tasks of one project containing one word: {task_id: weight}. Kept by the stream
    consumer (search is eventually consistent); a search reads one item per query word."""

    class Meta(BaseModel.Meta):
        table_name = "search_terms"

    key = UnicodeAttribute(hash_key=True)  # "<project_id>#<word>"
    tasks = MapAttribute[str, int](default=dict)
    # Set when the word is in so many tasks that its item would outgrow DynamoDB's 400 KB:
    # it no longer narrows a search (like a stop word).
    too_common = BooleanAttribute(default=False)


class NotificationStateModel(BaseModel):
    """A user's "read up to" mark: every notification whose id is not after `read_before` is
    read. `POST /notifications/read-all` moves it in one write, whatever the count."""

    class Meta(BaseModel.Meta):
        table_name = "notification_state"

    user_id = UnicodeAttribute(hash_key=True)
    read_before = UnicodeAttribute(null=True)  # a notification id (ULID)


# ---- comments ----------------------------------------------------------------------------------


class CommentModel(BaseModel):
    """One comment on a task; `id` is a ULID, so a query reads them oldest first."""

    class Meta(BaseModel.Meta):
        table_name = "comments"
        stream_view_type = "NEW_AND_OLD_IMAGES"  # comment.created, to the project's subscribers

    task_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    project_id = UnicodeAttribute()
    author_id = UnicodeAttribute()
    body = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()


# ---- executions --------------------------------------------------------------------------------


class ExecutionsByTask(GlobalSecondaryIndex["ExecutionModel"]):
    """A task's executions; ids start with a ULID, so a descending query is newest first."""

    class Meta:
        index_name = "by_task"
        projection = AllProjection()

    task_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class LeasedExecutions(GlobalSecondaryIndex["ExecutionModel"]):
    """Executions an attempt outside the state machine holds, by when the hold ends (sparse: an
    execution is in it only while leased), so a sweep finds the ones whose holder died without
    a Scan. Spread over `LEASE_SHARDS` partitions; keys only (the sweep reads the items)."""

    class Meta:
        index_name = "by_lease"
        projection = KeysOnlyProjection()

    lease_shard = UnicodeAttribute(hash_key=True)
    lease_expires_at = UTCDateTimeAttribute(range_key=True)


class ExecutionModel(BaseModel):
    """One execution of a task. A scheduled firing is claimed in `claims` (`firing#<task>#<time>`,
    owner = the execution id) in the transaction that writes it, so a firing has one execution."""

    class Meta(BaseModel.Meta):
        table_name = "executions"
        stream_view_type = "NEW_AND_OLD_IMAGES"  # pushed to the project's subscribers (later)

    id = UnicodeAttribute(hash_key=True)
    task_id = UnicodeAttribute()
    project_id = UnicodeAttribute()
    trigger = UnicodeAttribute()
    status = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    scheduled_for = UTCDateTimeAttribute(null=True)
    workflow_run_id = UnicodeAttribute(null=True)
    started_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    attempts = NumberAttribute(default=0)
    result = UnicodeAttribute(null=True)  # JSON {status_code, duration_ms, body_excerpt}
    error = UnicodeAttribute(null=True)
    version = NumberAttribute(default=1)
    lease_expires_at = UTCDateTimeAttribute(null=True)  # with lease_shard: in `by_lease`
    lease_shard = UnicodeAttribute(null=True)

    by_task = ExecutionsByTask()
    by_lease = LeasedExecutions()


# ---- workflows ---------------------------------------------------------------------------------


class WorkflowsByProject(GlobalSecondaryIndex["WorkflowModel"]):
    """A project's workflows; ids start with a ULID, so a descending query is newest first."""

    class Meta:
        index_name = "by_project"
        projection = AllProjection()

    project_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class WorkflowModel(BaseModel):
    """One workflow. Its steps are one JSON list `[{key, task_id, depends_on}]` (at most 100
    steps, so the item stays far below 400 KB); it is always read and written whole."""

    class Meta(BaseModel.Meta):
        table_name = "workflows"
        stream_view_type = "NEW_AND_OLD_IMAGES"  # keeps its scheduler schedule in step

    id = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute()
    name = UnicodeAttribute()
    steps = UnicodeAttribute()  # JSON
    max_concurrency = NumberAttribute()
    on_failure = UnicodeAttribute()
    schedule = UnicodeAttribute(null=True)  # JSON, as a task's
    next_run_at = UTCDateTimeAttribute(null=True)
    created_by = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    version = NumberAttribute(default=1)

    by_project = WorkflowsByProject()


# ---- workflow runs -----------------------------------------------------------------------------


class WorkflowRunsByWorkflow(GlobalSecondaryIndex["WorkflowRunModel"]):
    """A workflow's runs; ids start with a ULID (and share the project suffix), so a descending
    query is newest first."""

    class Meta:
        index_name = "by_workflow"
        projection = AllProjection()

    workflow_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class WorkflowRunModel(BaseModel):
    """One run of a workflow, with a copy of its steps: one JSON list
    `[{key, task_id, depends_on, execution_id, outcome}]` (at most 100 steps). Only the run's
    plan writes it, a put conditional on `version`; the steps' executions live in `executions`."""

    class Meta(BaseModel.Meta):
        table_name = "workflow_runs"
        stream_view_type = "NEW_AND_OLD_IMAGES"  # pushed to the project's subscribers (later)

    id = UnicodeAttribute(hash_key=True)
    workflow_id = UnicodeAttribute()
    project_id = UnicodeAttribute()
    status = UnicodeAttribute()
    trigger = UnicodeAttribute()
    created_by = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    steps = UnicodeAttribute()  # JSON
    max_concurrency = NumberAttribute()
    on_failure = UnicodeAttribute()
    scheduled_for = UTCDateTimeAttribute(null=True)
    started_at = UTCDateTimeAttribute(null=True)
    finished_at = UTCDateTimeAttribute(null=True)
    version = NumberAttribute(default=1)

    by_workflow = WorkflowRunsByWorkflow()


# ---- real time ---------------------------------------------------------------------------------


class ConnectionsByUser(GlobalSecondaryIndex["ConnectionModel"]):
    """A user's open WebSocket connections: where their notifications go."""

    class Meta:
        index_name = "by_user"
        projection = KeysOnlyProjection()

    user_id = UnicodeAttribute(hash_key=True)
    connection_id = UnicodeAttribute(range_key=True)


class ConnectionModel(BaseModel):
    """One open API Gateway WebSocket connection, written by `$connect`. It expires with API
    Gateway's 2-hour connection limit, so a connection whose `$disconnect` was lost goes too."""

    class Meta(BaseModel.Meta):
        table_name = "connections"

    connection_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    connected_at = UTCDateTimeAttribute()
    channels = UnicodeSetAttribute(default=set)  # what `$disconnect` must unsubscribe
    expires_at = TTLAttribute()

    by_user = ConnectionsByUser()


class SubscriptionModel(BaseModel):
    """A connection's subscription to a channel (`project:<id>`): a channel's subscribers are
    one Query on the key, however many connections exist."""

    class Meta(BaseModel.Meta):
        table_name = "subscriptions"

    channel = UnicodeAttribute(hash_key=True)
    connection_id = UnicodeAttribute(range_key=True)
    user_id = UnicodeAttribute()
    expires_at = TTLAttribute()
    # Subscribed with `after`: the number of the last event sent, moved by conditional writes;
    # while a sender holds a claim on the events after it, their last number and until when.
    delivered = NumberAttribute(null=True)
    claimed = NumberAttribute(null=True)
    claimed_until = UTCDateTimeAttribute(null=True)


class ProjectEventModel(BaseModel):
    """The project event log (domain/event_log.py): the event numbered `seq` (1, 2, 3, ...) of
    its project, put only if the number is free; expiring 7 days after it happened."""

    class Meta(BaseModel.Meta):
        table_name = "project_events"

    project_id = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True)
    generation = NumberAttribute()  # when the project's numbering began (epoch ms)
    type = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    # The resource as the HTTP API returns it: JSON, deflated (a firing's execution event
    # fits one write unit: docs/benchmarks.md).
    data = BinaryAttribute(legacy_encoding=False)
    truncated = BooleanAttribute(null=True)
    expires_at = TTLAttribute()


# ---- automation: templates and rules -------------------------------------------------------------


class TemplatesByProject(GlobalSecondaryIndex["TemplateModel"]):
    """A project's templates; ids start with a ULID, so a descending query is newest first."""

    class Meta:
        index_name = "by_project"
        projection = AllProjection()

    project_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class TemplateModel(BaseModel):
    """One task template: the task and its subtasks as JSON (at most 20 subtasks)."""

    class Meta(BaseModel.Meta):
        table_name = "templates"

    id = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute()
    name = UnicodeAttribute()
    task = UnicodeAttribute()  # JSON
    subtasks = UnicodeAttribute()  # JSON list
    created_by = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    version = NumberAttribute(default=1)

    by_project = TemplatesByProject()


class RulesByProject(GlobalSecondaryIndex["RuleModel"]):
    """A project's rules; ids start with a ULID, so a descending query is newest first."""

    class Meta:
        index_name = "by_project"
        projection = AllProjection()

    project_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class EnabledRulesByTrigger(GlobalSecondaryIndex["RuleModel"]):
    """Sparse: only enabled rules carry `trigger_key` ("<project_id>#<event>"), so the stream
    consumer finds the rules an event sets off with one query on a key."""

    class Meta:
        index_name = "enabled_by_trigger"
        projection = AllProjection()

    trigger_key = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class RuleModel(BaseModel):
    """One automation rule; conditions and actions as JSON."""

    class Meta(BaseModel.Meta):
        table_name = "rules"

    id = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute()
    name = UnicodeAttribute()
    enabled = BooleanAttribute()
    event = UnicodeAttribute()
    conditions = UnicodeAttribute()  # JSON
    actions = UnicodeAttribute()  # JSON
    created_by = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    version = NumberAttribute(default=1)
    trigger_key = UnicodeAttribute(null=True)  # enabled rules only

    by_project = RulesByProject()
    enabled_by_trigger = EnabledRulesByTrigger()


class RuleExecutionModel(BaseModel):
    """One execution of a rule; `id` is a ULID, so a descending query is newest first."""

    class Meta(BaseModel.Meta):
        table_name = "rule_executions"

    rule_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    project_id = UnicodeAttribute()
    trigger_event = UnicodeAttribute()
    task_id = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    actions = UnicodeAttribute()  # JSON [{type, status, detail, ref}]
    error = UnicodeAttribute(null=True)
    at = UTCDateTimeAttribute()
    expires_at = TTLAttribute()


# ---- API tokens ----------------------------------------------------------------------------------


class ApiTokenModel(BaseModel):
    """API tokens (chalicelib/domain/api_tokens.py) under their user: `id` is the token's own
    ULID, so a user's tokens come newest first from one Query (no index). One more item per
    user, `id` = `#held` (sorting before every ULID), counts the user's tokens: creating one
    adds to it on the condition that it stays within the cap, in the same transaction."""

    class Meta(BaseModel.Meta):
        table_name = "api_tokens"

    user_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute(null=True)
    scopes = UnicodeSetAttribute(null=True)
    prefix = UnicodeAttribute(null=True)
    secret_hash = UnicodeAttribute(null=True)  # SHA-256 of the secret, never the secret
    personal_project_id = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute(null=True)
    expires_at = UTCDateTimeAttribute(null=True)
    last_used_at = UTCDateTimeAttribute(null=True)  # to the minute
    held = NumberAttribute(null=True)  # the counter item's only attribute


# ---- project webhooks: hooks and their deliveries ---------------------------------------------


class HooksByProject(GlobalSecondaryIndex["HookModel"]):
    """A project's hooks; ids start with a ULID, so a descending query is newest first."""

    class Meta:
        index_name = "by_project"
        projection = AllProjection()

    project_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class ActiveHooksByProject(GlobalSecondaryIndex["HookModel"]):
    """Sparse: only active hooks carry `active_project_id`, so the stream consumer finds a
    project's active hooks with one Query on a key."""

    class Meta:
        index_name = "active_by_project"
        projection = AllProjection()

    active_project_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class HookModel(BaseModel):
    """One project webhook (event subscription)."""

    class Meta(BaseModel.Meta):
        table_name = "hooks"

    id = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute()
    url = UnicodeAttribute()
    events = UnicodeAttribute()  # JSON list of event types
    active = BooleanAttribute()
    active_project_id = UnicodeAttribute(null=True)  # active hooks only
    consecutive_failures = NumberAttribute(default=0)
    created_by = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    version = NumberAttribute(default=1)

    by_project = HooksByProject()
    active_by_project = ActiveHooksByProject()


class DeliveriesByHook(GlobalSecondaryIndex["DeliveryModel"]):
    """A hook's deliveries; ids start with a ULID, so a descending query is newest first."""

    class Meta:
        index_name = "by_hook"
        projection = AllProjection()

    hook_id = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class DeliveryModel(BaseModel):
    """One delivery of an event to a hook: the body sent, and its attempts' outcome."""

    class Meta(BaseModel.Meta):
        table_name = "hook_deliveries"

    id = UnicodeAttribute(hash_key=True)
    hook_id = UnicodeAttribute()
    project_id = UnicodeAttribute()
    event_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    body = UnicodeAttribute()  # the JSON POSTed
    status = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    response_status = NumberAttribute(null=True)
    error = UnicodeAttribute(null=True)
    redelivery_of = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute(null=True)
    expires_at = TTLAttribute()

    by_hook = DeliveriesByHook()


# ---- idempotent POSTs --------------------------------------------------------------------------


class IdempotencyModel(BaseModel):
    """One `Idempotency-Key` of one user (chalicelib/domain/idempotency.py); TTL drops it a day
    after its first request. `answer` is the encoded first answer (sealed when `sealed`)."""

    class Meta(BaseModel.Meta):
        table_name = "idempotency"

    id = UnicodeAttribute(hash_key=True)  # "<user id>#<idempotency key>"
    fingerprint = UnicodeAttribute()
    route = UnicodeAttribute()
    state = UnicodeAttribute()  # in_progress | done
    lease_id = UnicodeAttribute()
    lease_until = UTCDateTimeAttribute()
    committed = BooleanAttribute(null=True)  # set by the first guarded transaction
    answer = BinaryAttribute(null=True, legacy_encoding=False)
    sealed = BooleanAttribute(default=False)
    expires_at = TTLAttribute()
