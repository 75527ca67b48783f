"""Start-up provisioning of the local stack's AWS resources in moto.

What CDK creates on AWS, made here from the same sources: the tables from the PynamoDB models,
fresh JWT signing and derivation keys, an execution role, one Lambda function per Chalice entry
point (routed to the in-process registry), DynamoDB stream mappings to the stream consumer, and
Chalice `@app.schedule` rules as scheduler schedules, the task schedules' group and the role
the scheduler assumes (with the settings that name them and the `fire` function), and the run
state machine. Every step
tolerates resources that exist already, so provisioning twice is harmless.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import secrets
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalice.app import Chalice, ScheduledEventConfig

from chalicelib import runs
from chalicelib.adapters.dynamodb import tables
from chalicelib.settings import Settings
from local.lambdas import ACCOUNT_ID, FunctionRegistry, Handler, function_arn

log = logging.getLogger("taskbeat.local.provision")

EXECUTION_ROLE_NAME = "taskbeat-local-execution"
# The function every stream-enabled table feeds (wired by CDK on AWS), when the app has it.
STREAM_CONSUMER = "on_change"
RULES_SCHEDULE_GROUP = "taskbeat-local-rules"
SCHEDULER_ROLE_NAME = "taskbeat-local-scheduler"
# The function task schedules invoke, when the app has it.
FIRE_FUNCTION = "fire"
FAN_OUT_FUNCTION = "fan_out"  # shares of a large WebSocket fan-out
# Project hook deliveries: their queue (consumed by `local/hook_poller.py`) and dead letters.
HOOKS_FUNCTION = "deliver_hooks"
HOOK_QUEUE_NAME = "taskbeat-local-hook-deliveries"
HOOK_DLQ_NAME = "taskbeat-local-hook-deliveries-dlq"
# The run state machine (one definition for every run, from chalicelib like CDK's).
STATE_MACHINE_NAME = "taskbeat-local-runs"
LAMBDA_RUNTIME = "python3.13"
# Events a stateless function handles at once locally (Lambda's concurrency, scaled down).
SCALED_OUT = 16

_SCHEDULER_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {
                "Service": [
                    "lambda.amazonaws.com",
                    "states.amazonaws.com",
                    "scheduler.amazonaws.com",
                ]
            },
            "Action": "sts:AssumeRole",
        }
    ],
}


@dataclass
class Provisioned:
    role_arn: str
    secret_arn: str
    function_arns: dict[str, str] = field(default_factory=dict)
    stream_mappings: list[str] = field(default_factory=list)
    rule_schedules: list[str] = field(default_factory=list)
    schedule_group: str = ""
    scheduler_role_arn: str = ""
    state_machine_arn: str = ""
    hook_queue_url: str = ""
    hook_dlq_url: str = ""
    # Settings the app needs to write task schedules (the stack puts them in the environment).
    environment: dict[str, str] = field(default_factory=dict)


def aws_client(service: str, region: str) -> Any:
    """A boto3 client; the endpoint (moto) comes from AWS_ENDPOINT_URL in the environment."""
    import boto3

    return boto3.client(service, region_name=region)


def lambda_entry_points(app: Chalice) -> dict[str, Handler]:
    """Every Lambda entry point of the app: `handler_map` minus the REST routes' view functions
    (those run inside the API handler, not as functions of their own)."""
    route_views = {entry.view_name for methods in app.routes.values() for entry in methods.values()}
    return {name: handler for name, handler in app.handler_map.items() if name not in route_views}


def provision(
    settings: Settings,
    registry: FunctionRegistry,
    entry_points: Mapping[str, Handler],
    app: Chalice | None = None,
) -> Provisioned:
    create_tables(settings)
    secret_arn = create_signing_secret(settings)
    create_derivation_secret(settings)
    role_arn = create_execution_role(settings.aws_region)
    provisioned = Provisioned(role_arn=role_arn, secret_arn=secret_arn)
    stateless = {f.name for f in app.pure_lambda_functions} if app is not None else set()
    for name, handler in entry_points.items():
        # Lambda runs many events of a function at once; locally, so do the functions that
        # keep no state on the Chalice app, except the stream consumer (in order, per shard).
        concurrency = SCALED_OUT if name in stateless and name != STREAM_CONSUMER else 1
        provisioned.function_arns[name] = create_function(
            registry, name, handler, role_arn, concurrency
        )
    if STREAM_CONSUMER in entry_points:
        provisioned.stream_mappings = connect_streams(settings, STREAM_CONSUMER)
    if app is not None:
        provisioned.rule_schedules = schedule_rules(app, settings.aws_region, role_arn)
    provisioned.schedule_group = create_schedule_group(settings.aws_region, settings.schedule_group)
    provisioned.scheduler_role_arn = create_scheduler_role(settings.aws_region)
    provisioned.environment = {
        "TASKBEAT_SCHEDULE_GROUP": provisioned.schedule_group,
        "TASKBEAT_SCHEDULER_ROLE_ARN": provisioned.scheduler_role_arn,
    }
    if FIRE_FUNCTION in provisioned.function_arns:
        provisioned.environment["TASKBEAT_FIRE_FUNCTION_ARN"] = provisioned.function_arns[
            FIRE_FUNCTION
        ]
    if FAN_OUT_FUNCTION in provisioned.function_arns:
        provisioned.environment["TASKBEAT_FAN_OUT_FUNCTION_ARN"] = provisioned.function_arns[
            FAN_OUT_FUNCTION
        ]
    if HOOKS_FUNCTION in provisioned.function_arns:
        provisioned.hook_queue_url, provisioned.hook_dlq_url = create_hook_queues(
            settings.aws_region
        )
        provisioned.environment["TASKBEAT_HOOK_QUEUE_URL"] = provisioned.hook_queue_url
    functions = provisioned.function_arns
    if runs.PLAN_FUNCTION in functions and runs.RUN_STEP_FUNCTION in functions:
        provisioned.state_machine_arn = create_state_machine(
            settings.aws_region,
            role_arn,
            functions[runs.PLAN_FUNCTION],
            functions[runs.RUN_STEP_FUNCTION],
        )
        provisioned.environment["TASKBEAT_STATE_MACHINE_ARN"] = provisioned.state_machine_arn
    return provisioned


def create_state_machine(region: str, role_arn: str, plan_arn: str, run_step_arn: str) -> str:
    """The run state machine, with the definition CDK deploys (`chalicelib.runs`)."""
    client = aws_client("stepfunctions", region)
    definition = runs.definition_json(plan_arn, run_step_arn)
    arn = f"arn:aws:states:{region}:{ACCOUNT_ID}:stateMachine:{STATE_MACHINE_NAME}"
    try:
        client.describe_state_machine(stateMachineArn=arn)
    except client.exceptions.StateMachineDoesNotExist:
        return str(
            client.create_state_machine(
                name=STATE_MACHINE_NAME, definition=definition, roleArn=role_arn, type="STANDARD"
            )["stateMachineArn"]
        )
    client.update_state_machine(stateMachineArn=arn, definition=definition, roleArn=role_arn)
    return arn


def create_tables(settings: Settings) -> list[str]:
    tables.bind(settings.table_prefix, settings.aws_region)
    tables.create_all(aws_client("dynamodb", settings.aws_region), settings.table_prefix)
    return [f"{settings.table_prefix}{spec.base_name}" for spec in tables.specs()]


def create_signing_secret(settings: Settings) -> str:
    """The JWT signing key: random for every run of the stack, never stored anywhere else."""
    client = aws_client("secretsmanager", settings.aws_region)
    try:
        created = client.create_secret(
            Name=settings.jwt_secret_id,
            SecretString=secrets.token_urlsafe(64),
            Description="Taskbeat JWT signing key (local stack)",
        )
        return str(created["ARN"])
    except client.exceptions.ResourceExistsException:
        return str(client.describe_secret(SecretId=settings.jwt_secret_id)["ARN"])


def create_derivation_secret(settings: Settings) -> str:
    """The key webhook secrets and cursors derive from (never rotated, unlike the JWT key)."""
    client = aws_client("secretsmanager", settings.aws_region)
    try:
        created = client.create_secret(
            Name=settings.derivation_secret_id,
            SecretString=secrets.token_urlsafe(64),
            Description="Taskbeat derivation key (local stack)",
        )
        return str(created["ARN"])
    except client.exceptions.ResourceExistsException:
        return str(client.describe_secret(SecretId=settings.derivation_secret_id)["ARN"])


def create_execution_role(region: str) -> str:
    client = aws_client("iam", region)
    try:
        created = client.create_role(
            RoleName=EXECUTION_ROLE_NAME,
            AssumeRolePolicyDocument=json.dumps(_TRUST_POLICY),
            Description="Runs the local stack's Lambda functions and state machines",
        )
        return str(created["Role"]["Arn"])
    except client.exceptions.EntityAlreadyExistsException:
        return str(client.get_role(RoleName=EXECUTION_ROLE_NAME)["Role"]["Arn"])


def create_schedule_group(region: str, name: str) -> str:
    client = aws_client("scheduler", region)
    try:
        client.get_schedule_group(Name=name)
    except client.exceptions.ResourceNotFoundException:
        client.create_schedule_group(Name=name)
    return name


def create_scheduler_role(region: str) -> str:
    """The role task schedules name (moto checks nothing; on AWS it may invoke `fire` only)."""
    client = aws_client("iam", region)
    try:
        created = client.create_role(
            RoleName=SCHEDULER_ROLE_NAME,
            AssumeRolePolicyDocument=json.dumps(_SCHEDULER_TRUST_POLICY),
            Description="Assumed by the local scheduler to deliver task schedules",
        )
        return str(created["Role"]["Arn"])
    except client.exceptions.EntityAlreadyExistsException:
        return str(client.get_role(RoleName=SCHEDULER_ROLE_NAME)["Role"]["Arn"])


def _placeholder_package() -> bytes:
    # moto wants a deployment package; the code that runs is the registered Python callable.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "# runs in process in the local stack\n")
    return buffer.getvalue()


def create_function(
    registry: FunctionRegistry, name: str, handler: Handler, role_arn: str, concurrency: int = 1
) -> str:
    """Register `handler` in process and create the moto function that routes to it."""
    registry.register(name, handler, concurrency=concurrency)
    client = aws_client("lambda", registry.region)
    try:
        created = client.create_function(
            FunctionName=name,
            Runtime=LAMBDA_RUNTIME,
            Role=role_arn,
            Handler=f"app.{name}",
            Code={"ZipFile": _placeholder_package()},
            Timeout=60,
            MemorySize=512,
            Description="Taskbeat entry point (runs in process)",
        )
        return str(created["FunctionArn"])
    except client.exceptions.ResourceConflictException:
        return str(client.get_function(FunctionName=name)["Configuration"]["FunctionArn"])


def connect_streams(settings: Settings, function_name: str) -> list[str]:
    """Map every stream-enabled table to `function_name`, as CDK does on AWS."""
    dynamodb = aws_client("dynamodb", settings.aws_region)
    lambda_client = aws_client("lambda", settings.aws_region)
    existing = {
        mapping["EventSourceArn"]
        for mapping in lambda_client.list_event_source_mappings(FunctionName=function_name)[
            "EventSourceMappings"
        ]
    }
    mapped = []
    for spec in tables.specs():
        if not spec.stream:
            continue
        table = dynamodb.describe_table(TableName=f"{settings.table_prefix}{spec.base_name}")
        stream_arn = table["Table"].get("LatestStreamArn")
        if not stream_arn:
            continue
        if stream_arn not in existing:
            lambda_client.create_event_source_mapping(
                EventSourceArn=stream_arn,
                FunctionName=function_name,
                StartingPosition="LATEST",
                BatchSize=100,
            )
        mapped.append(stream_arn)
    return mapped


def schedule_rules(app: Chalice, region: str, role_arn: str) -> list[str]:
    """Chalice `@app.schedule` functions are EventBridge rules on AWS; locally the ticker fires
    them as scheduler schedules, with the event a rule would send."""
    rules = [source for source in app.event_sources if isinstance(source, ScheduledEventConfig)]
    if not rules:
        return []
    client = aws_client("scheduler", region)
    try:
        client.get_schedule_group(Name=RULES_SCHEDULE_GROUP)
    except client.exceptions.ResourceNotFoundException:
        client.create_schedule_group(Name=RULES_SCHEDULE_GROUP)
    names = []
    for rule in rules:
        expression = rule.schedule_expression
        if not isinstance(expression, str):
            expression = expression.to_string()
        event = {
            "version": "0",
            "id": "<aws.scheduler.execution-id>",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT_ID,
            "time": "<aws.scheduler.scheduled-time>",
            "region": region,
            "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{rule.name}"],
            "detail": {},
        }
        with contextlib.suppress(client.exceptions.ConflictException):  # already there
            client.create_schedule(
                Name=rule.name,
                GroupName=RULES_SCHEDULE_GROUP,
                ScheduleExpression=expression,
                FlexibleTimeWindow={"Mode": "OFF"},
                Target={
                    "Arn": function_arn(rule.name, region),
                    "RoleArn": role_arn,
                    "Input": json.dumps(event),
                },
            )
        names.append(rule.name)
    return names


def create_hook_queues(region: str) -> tuple[str, str]:
    """The hook delivery queue and its dead-letter queue, as CDK makes them
    (infrastructure/components/hooks.py); their URLs."""
    from chalicelib.adapters.aws.hook_queue import (
        DLQ_RETENTION_SECONDS,
        MAX_RECEIVES,
        VISIBILITY_TIMEOUT_SECONDS,
    )

    client = aws_client("sqs", region)
    dlq_url = str(
        client.create_queue(
            QueueName=HOOK_DLQ_NAME,
            Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)},
        )["QueueUrl"]
    )
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    queue_url = str(
        client.create_queue(
            QueueName=HOOK_QUEUE_NAME,
            Attributes={
                "VisibilityTimeout": str(VISIBILITY_TIMEOUT_SECONDS),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES}
                ),
            },
        )["QueueUrl"]
    )
    return queue_url, dlq_url
