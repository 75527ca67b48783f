"""Runs: the Step Functions Standard state machine every execution runs on (its definition is
`chalicelib.runs.definition`, the same one the local stack runs), its role, logs and alarm, and
what the functions need to start executions (see `chalicelib/adapters/aws/stepfunctions.py`)."""

from __future__ import annotations

import json
from collections.abc import Iterable

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from chalicelib import runs
from infrastructure.components.roles import PolicyTarget

# Chalice's logical ids of `@app.lambda_function(name="plan")` and `(name="run_step")`.
PLAN = "Plan"
RUN_STEP = "RunStep"
# Placeholders in the definition, filled in by CloudFormation (DefinitionSubstitutions).
PLAN_ARN = "PlanArn"
RUN_STEP_ARN = "RunStepArn"


class Runs(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        plan: cdk.CfnResource,
        run_step: cdk.CfnResource,
        functions: Iterable[cdk.CfnResource],
        function_role: PolicyTarget,
        retain_logs: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)

        # A fixed name, so the state machine's ARN is known without referring to the state
        # machine, which refers to the functions: the functions get it with no circular reference.
        self.state_machine_name = f"{stack.stack_name}-runs"
        self.state_machine_arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=self.state_machine_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        plan_arn = plan.get_att("Arn").to_string()
        run_step_arn = run_step.get_att("Arn").to_string()

        self.role = iam.Role(
            self,
            "StateMachineRole",
            description="Assumed by Step Functions to run Taskbeat's run state machine",
            assumed_by=iam.ServicePrincipal(
                "states.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="InvokeRunFunctions",
                actions=["lambda:InvokeFunction"],
                # The function, and any version or alias of it.
                resources=[
                    arn
                    for function in (plan_arn, run_step_arn)
                    for arn in (function, f"{function}:*")
                ],
            )
        )

        # Under /aws/vendedlogs/ so that CloudWatch Logs' resource policy for Step Functions'
        # log delivery needs no entry per log group (that policy's size is limited).
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{self.state_machine_name}",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=cdk.RemovalPolicy.RETAIN if retain_logs else cdk.RemovalPolicy.DESTROY,
        )

        definition = runs.definition(f"${{{PLAN_ARN}}}", f"${{{RUN_STEP_ARN}}}")
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(json.dumps(definition)),
            definition_substitutions={PLAN_ARN: plan_arn, RUN_STEP_ARN: run_step_arn},
            role=self.role,
            # Execution data holds webhook payloads and errors: not copied into the logs.
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ERROR,
                include_execution_data=False,
            ),
            tracing_enabled=True,
        )
        # Step Functions checks the role's logging rights when it creates the state machine, so
        # it waits for the role's policy (CDK's dependency); CDK also lists the role itself,
        # which RoleArn already implies (cfn-lint W3005).
        policy = self.role.node.find_child("DefaultPolicy").node.default_child
        assert isinstance(policy, iam.CfnPolicy)
        state_machine = self.state_machine.node.default_child
        assert isinstance(state_machine, sfn.CfnStateMachine)
        state_machine.add_override("DependsOn", [stack.get_logical_id(policy)])

        period = cdk.Duration.minutes(5)
        self.failure_alarm = cloudwatch.Alarm(
            self,
            "FailureAlarm",
            alarm_description="Run state machine executions failed or timed out",
            metric=cloudwatch.MathExpression(
                expression="failed + timedOut",
                using_metrics={
                    "failed": self.state_machine.metric_failed(period=period, statistic="Sum"),
                    "timedOut": self.state_machine.metric_timed_out(period=period, statistic="Sum"),
                },
                label="Executions failed or timed out",
                period=period,
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

        # The API (`POST /tasks/{id}/run`), `fire` and `run_step` (a buffered run) start
        # executions; every function shares the role, and gets the setting like the others.
        function_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="StartRuns",
                actions=["states:StartExecution"],
                resources=[self.state_machine_arn],
            )
        )
        # `POST /workflow-runs/{id}/cancel` stops a run's execution (named after the run).
        self.executions_arn = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine_name}:*",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        function_role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="StopRuns",
                actions=["states:StopExecution"],
                resources=[self.executions_arn],
            )
        )
        for function in functions:
            function.add_property_override(
                "Environment.Variables.TASKBEAT_STATE_MACHINE_ARN", self.state_machine_arn
            )

        output = cdk.CfnOutput(
            self,
            "StateMachineArn",
            value=self.state_machine.state_machine_arn,
            description="ARN of the run state machine",
        )
        output.override_logical_id("StateMachineArn")
