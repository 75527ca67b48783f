"""Task and workflow schedules: the stage's EventBridge Scheduler group, the role the scheduler
assumes to invoke the fire function, the dead-letter queue of undeliverable firings (and its
alarm), and what the functions need to keep the schedules in step with tasks and workflows (see
`chalicelib/adapters/aws/scheduler.py`).

The scheduler invokes `fire` asynchronously, so its retry policy covers handing the event to
Lambda; `fire` itself then makes the first attempt (up to a 60 s webhook). What happens when
that function fails is Lambda's: two more tries within `FIRE_EVENT_MAX_AGE`, then the same
dead-letter queue (and alarm). A try that finds the firing's execution leased does nothing; an
execution whose function died is finished by the sweep once its lease expired.
"""

from __future__ import annotations

from collections.abc import Iterable

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infrastructure.components.roles import PolicyTarget

# Chalice's logical id of `@app.lambda_function(name="fire")`.
FIRE = "Fire"
# What the functions do to schedules (the adapter's calls).
SCHEDULE_ACTIONS = (
    "scheduler:CreateSchedule",
    "scheduler:DeleteSchedule",
    "scheduler:UpdateSchedule",
)
# Lambda's own retries of a failed fire event (its maximum), within the hour the scheduler
# also gives a delivery (RETRY_POLICY in the adapter).
FIRE_EVENT_RETRIES = 2
FIRE_EVENT_MAX_AGE = cdk.Duration.hours(1)


class Scheduling(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        fire: cdk.CfnResource,
        functions: Iterable[cdk.CfnResource],
        function_role: PolicyTarget,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.group_name = stack.stack_name  # taskbeat-<stage>

        # A fixed name, so the fire function's ARN is known without referring to the function:
        # every function (the fire function too) gets it as a setting, with no circular reference.
        self.fire_function_name = f"{stack.stack_name}-fire"
        fire.add_property_override("FunctionName", self.fire_function_name)
        self.fire_function_arn = stack.format_arn(
            service="lambda",
            resource="function",
            resource_name=self.fire_function_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )

        self.group = scheduler.CfnScheduleGroup(self, "Group", name=self.group_name)
        group_arn = stack.format_arn(
            service="scheduler",
            resource="schedule-group",
            resource_name=self.group_name,
            arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )
        # Schedules are named per task or workflow: IAM can only scope them by the group's prefix.
        schedules_arn = stack.format_arn(
            service="scheduler",
            resource="schedule",
            resource_name=f"{self.group_name}/*",
            arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        self.dead_letter_alarm = cloudwatch.Alarm(
            self,
            "DeadLetterAlarm",
            alarm_description=(
                "Scheduled firings could not be delivered to the fire function, or the fire "
                "function failed on one every time"
            ),
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(5), statistic="Maximum"
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

        self.role = iam.Role(
            self,
            "SchedulerRole",
            description="Assumed by EventBridge Scheduler to deliver Taskbeat's task schedules",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={
                    "StringEquals": {
                        "aws:SourceAccount": stack.account,
                        "aws:SourceArn": group_arn,
                    }
                },
            ),
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="InvokeFire",
                actions=["lambda:InvokeFunction"],
                resources=[self.fire_function_arn],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DeadLetters",
                actions=["sqs:SendMessage"],
                resources=[self.dead_letter_queue.queue_arn],
            )
        )

        # The fire event that failed every try goes to the dead-letter queue too.
        self.fire_event_config = lambda_.CfnEventInvokeConfig(
            self,
            "FireEventConfig",
            function_name=self.fire_function_name,
            qualifier="$LATEST",
            maximum_retry_attempts=FIRE_EVENT_RETRIES,
            maximum_event_age_in_seconds=int(FIRE_EVENT_MAX_AGE.to_seconds()),
            destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(
                    destination=self.dead_letter_queue.queue_arn
                )
            ),
        )
        self.fire_event_config.add_dependency(fire)
        function_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="FireDeadLetters",
                actions=["sqs:SendMessage"],
                resources=[self.dead_letter_queue.queue_arn],
            )
        )
        # Manual runs and freed buffered firings: an asynchronous invocation of fire.
        function_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="InvokeFire",
                actions=["lambda:InvokeFunction"],
                resources=[self.fire_function_arn],
            )
        )
        function_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="TaskSchedules",
                actions=list(SCHEDULE_ACTIONS),
                resources=[schedules_arn],
            )
        )
        function_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PassSchedulerRole",
                actions=["iam:PassRole"],
                resources=[self.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            )
        )

        for function in functions:
            for name, value in {
                "TASKBEAT_SCHEDULE_GROUP": self.group_name,
                "TASKBEAT_FIRE_FUNCTION_ARN": self.fire_function_arn,
                "TASKBEAT_SCHEDULER_ROLE_ARN": self.role.role_arn,
                "TASKBEAT_SCHEDULER_DLQ_ARN": self.dead_letter_queue.queue_arn,
            }.items():
                function.add_property_override(f"Environment.Variables.{name}", value)
