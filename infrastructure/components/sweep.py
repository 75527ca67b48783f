"""The due-date sweep: an EventBridge rule that invokes the `sweep` function every 5 minutes
(`task.due_soon` / `task.overdue` notifications, see `chalicelib/services/sweep.py`), the
permission it needs for that, and an alarm when sweeps keep failing.

The function itself runs with the functions' shared role, whose table grants (items, queries
of the tables and their indexes, no Scan) cover what it does: query `tasks.open_by_due_day`,
batch-read claims and tasks, and write claim + notification transactions.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

# Chalice's logical id of `@app.lambda_function(name="sweep")`.
SWEEP = "Sweep"
SWEEP_SCHEDULE = "rate(5 minutes)"
# The sweep looks back two days (services/sweep.py): failing for an hour is worth an alarm.
FAILING_PERIODS = 3


class DueSweep(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, sweep: cdk.CfnResource) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        function_arn = sweep.get_att("Arn").to_string()

        self.rule = events.CfnRule(
            self,
            "Rule",
            description="Taskbeat's due-date sweep (task.due_soon / task.overdue notifications)",
            schedule_expression=SWEEP_SCHEDULE,
            state="ENABLED",
            targets=[
                events.CfnRule.TargetProperty(
                    arn=function_arn,
                    id="Sweep",
                    # A sweep is idempotent, but one later than the next is pointless.
                    retry_policy=events.CfnRule.RetryPolicyProperty(
                        maximum_event_age_in_seconds=300, maximum_retry_attempts=2
                    ),
                )
            ],
        )
        self.permission = lambda_.CfnPermission(
            self,
            "InvokeSweep",
            action="lambda:InvokeFunction",
            function_name=function_arn,
            principal="events.amazonaws.com",
            source_arn=self.rule.attr_arn,
            source_account=stack.account,
        )
        self.failing_alarm = cloudwatch.Alarm(
            self,
            "FailingAlarm",
            alarm_description=(
                "The due-date sweep failed in every run for 15 minutes: due-soon and overdue "
                "notifications are not being sent"
            ),
            metric=cloudwatch.Metric(
                namespace="AWS/Lambda",
                metric_name="Errors",
                dimensions_map={"FunctionName": sweep.ref},
                period=cdk.Duration.minutes(5),
                statistic="Sum",
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=FAILING_PERIODS,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
