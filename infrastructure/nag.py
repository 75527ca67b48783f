"""cdk-nag's AWS Solutions checks on the stack, and every finding we accept, with the reason.

`apply(stack)` adds the checks as an aspect: synthesizing reports each unsuppressed finding as
an error annotation, and `tests/infra/test_nag.py` requires there be none. A suppression names
the rule, the findings it applies to (by pattern, never the whole rule when a narrower match
exists) and why the finding is wrong or accepted here.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, NagPackSuppression, NagSuppressions
from constructs import IConstruct


def _regex(pattern: str) -> dict[str, str]:
    return {"regex": f"/{pattern}/g"}


SUPPRESSIONS: list[tuple[str, str, list[Any] | None]] = [
    (
        "AwsSolutions-IAM5",
        "Queries of the function's own tables may use any of their indexes: the index names "
        "come from the PynamoDB models, and each table's ARN is named; nothing beyond it.",
        [_regex(r"^Resource::<Tables[A-Za-z0-9]+\.Arn>\/index\/\*$")],
    ),
    (
        "AwsSolutions-IAM5",
        "X-Ray's PutTraceSegments / PutTelemetryRecords and Step Functions' log delivery "
        "actions accept no resource but '*' (IAM reference); tests/infra/test_template.py "
        "holds every '*' resource to exactly those actions.",
        ["Resource::*"],
    ),
    (
        "AwsSolutions-IAM5",
        "Pushing to WebSocket clients: connection ids are only known at run time, so the grant "
        "is every connection of this stack's own WebSocket API and stage, POST only.",
        [_regex(r"^Resource::arn:<AWS::Partition>:execute-api:.*\/POST\/@connections\/\*$")],
    ),
    (
        "AwsSolutions-IAM5",
        "Schedules are named after the task or workflow they fire: the grant is limited to "
        "this stage's own schedule group.",
        [
            _regex(
                r"^Resource::arn:<AWS::Partition>:scheduler:.*:schedule\/taskbeat-[a-z0-9-]+\/\*$"
            )
        ],
    ),
    (
        "AwsSolutions-IAM5",
        "Stopping a run names its execution, created at run time: the grant covers the "
        "executions of this stage's own run state machine only.",
        [
            _regex(
                r"^Resource::arn:<AWS::Partition>:states:.*:execution:taskbeat-[a-z0-9-]+-runs:\*$"
            )
        ],
    ),
    (
        "AwsSolutions-IAM5",
        "The state machine invokes exactly the plan and run_step functions; ':*' is their "
        "versions and aliases, which Step Functions' Lambda integration requires.",
        [_regex(r"^Resource::<(Plan|RunStep)\.Arn>:\*$")],
    ),
    (
        "AwsSolutions-IAM4",
        "AWSLambdaBasicExecutionRole (logs) and AWSXRayDaemonWriteAccess (traces) are AWS's "
        "narrow, maintained policies for exactly these needs.",
        [
            _regex(
                r"^Policy::arn:<AWS::Partition>:iam::aws:policy\/service-role\/AWSLambdaBasicExecutionRole$"
            ),
            _regex(r"^Policy::arn:<AWS::Partition>:iam::aws:policy\/AWSXRayDaemonWriteAccess$"),
        ],
    ),
    (
        "AwsSolutions-APIG4",
        "WebSocket callers are authenticated by the $connect function itself (the access "
        "token in the query string, refused before the upgrade); later frames ride on that "
        "connection, as API Gateway allows authorizers on $connect only.",
        None,
    ),
    (
        "AwsSolutions-SF1",
        "The run state machine logs errors without execution data: ALL would copy webhook "
        "results and task data into CloudWatch Logs. Every attempt is recorded on its "
        "execution item, and X-Ray traces each run.",
        None,
    ),
    (
        "AwsSolutions-SQS3",
        "This queue is the dead-letter queue: EventBridge Scheduler sends it the firings it "
        "could not deliver; a DLQ of a DLQ would only move the problem.",
        None,
    ),
]


# Findings accepted on one resource only: (its construct path under the stack, rule, reason).
RESOURCE_SUPPRESSIONS: list[tuple[str, str, str]] = [
    (
        "Secrets/DerivationKey",
        "AwsSolutions-SMG4",
        "The derivation key must not rotate: every project's webhook signing secret is derived "
        "from it, and customers verify our signatures with those (docs/keys.md). The JWT "
        "signing key, which rotates, is a separate secret.",
    ),
    (
        "Secrets/JwtSigningKey",
        "AwsSolutions-SMG4",
        "The JWT signing key rotates, but from the service stack (KeyRotation: the schedule "
        "names the rotate_jwt_key function, which the data stack must not depend on); cdk-nag "
        "looks for the schedule in the secret's own stack. tests/infra/test_secrets.py proves it.",
    ),
    (
        "Web/Files",
        "AwsSolutions-S1",
        "The dashboard's bucket holds only the built static files, readable by anyone through "
        "CloudFront; CloudFront is its only reader (origin access control) and the deploy its "
        "only writer, so access logs would record nothing worth auditing.",
    ),
    (
        "Web/Distribution",
        "AwsSolutions-CFR1",
        "The dashboard is public static files; where users may sign in from is the API's "
        "concern (WAF on the REST stage), not the static files'.",
    ),
    (
        "Web/Distribution",
        "AwsSolutions-CFR2",
        "The distribution serves public static files only; every request with data goes to the "
        "REST API, whose stage has the web ACL (rate and managed rules). A CloudFront ACL must "
        "live in us-east-1 and would cost its own fee for no protected data.",
    ),
    (
        "Web/Distribution",
        "AwsSolutions-CFR3",
        "Access logs of public static files carry no user data (tokens never go to CloudFront; "
        "the API logs its own requests); CloudFront's request metrics stay on.",
    ),
    (
        "Web/Distribution",
        "AwsSolutions-CFR4",
        "Without a custom domain CloudFront serves its default *.cloudfront.net certificate, "
        "whose policy it sets; the distribution asks TLSv1.2_2021 as its minimum, which "
        "applies as soon as a custom domain and certificate are added (docs/operations.md).",
    ),
    (
        "Web/DeployRole",
        "AwsSolutions-IAM5",
        "The deployment writes the dashboard's files, whose names change with every build, "
        "under the bucket's app/ prefix only (PutObject, nothing else); its other rights name "
        "exact objects and the one distribution.",
    ),
    (
        "Custom::CDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C",
        "AwsSolutions-L1",
        "The handler that copies the dashboard's files is aws-cdk-lib's BucketDeployment "
        "function: its code and runtime come with the library version we pin, and it runs "
        "only during deploys.",
    ),
]


def apply(stack: cdk.Stack) -> None:
    """Check `stack` with cdk-nag's AWS Solutions rules, with our justified suppressions."""
    cdk.Aspects.of(stack).add(AwsSolutionsChecks(verbose=True))
    NagSuppressions.add_stack_suppressions(
        stack,
        [
            NagPackSuppression(id=rule, reason=reason, applies_to=applies_to)
            for rule, reason, applies_to in SUPPRESSIONS
        ],
        apply_to_nested_stacks=True,
    )
    for path, rule, reason in RESOURCE_SUPPRESSIONS:
        construct = _find(stack, path)
        if construct is not None:
            NagSuppressions.add_resource_suppressions(
                construct, [NagPackSuppression(id=rule, reason=reason)], apply_to_children=True
            )


def _find(stack: cdk.Stack, path: str) -> IConstruct | None:
    construct: IConstruct | None = stack
    for construct_id in path.split("/"):
        construct = construct.node.try_find_child(construct_id) if construct else None
    return construct
