"""Taskbeat's two stacks per stage.

- `DataStack` (`taskbeat-<stage>-data`, stateful): the tables and the secrets. Deployed rarely,
  retained by default and protected from deletion; nothing in it refers to the other stack.
- `ServiceStack` (`taskbeat-<stage>`, stateless): the functions, APIs, roles, schedules, state
  machine, web dashboard, protection and monitoring. It can be destroyed and re-created at any
  time: every piece of data it needs lives in the data stack, which it refers to through
  CloudFormation exports (CDK makes them), so CloudFormation refuses to delete a table the
  service still uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from chalicelib.adapters.dynamodb.tables import specs as table_specs
from infrastructure.components.api import Api
from infrastructure.components.changes import CONSUMER, ChangeFeed
from infrastructure.components.data import Tables
from infrastructure.components.hooks import DELIVER_HOOKS, HookDeliveries
from infrastructure.components.monitoring import Monitoring
from infrastructure.components.protection import Protection, ProtectionSettings
from infrastructure.components.realtime import FAN_OUT, Realtime
from infrastructure.components.roles import FunctionRoles
from infrastructure.components.runs import PLAN, RUN_STEP, Runs
from infrastructure.components.scheduling import FIRE, Scheduling
from infrastructure.components.secrets import ROTATE_JWT_KEY, KeyRotation, Secrets
from infrastructure.components.sweep import SWEEP, DueSweep
from infrastructure.components.web import WebDashboard
from infrastructure.packaging import LambdaProject
from infrastructure.settings import StageSettings


def table_prefix(stage: str) -> str:
    """Tables are `taskbeat-<stage>-<name>`, whichever stack holds them."""
    return f"taskbeat-{stage}-"


class DataStack(cdk.Stack):
    """Stack `taskbeat-<stage>-data` (construct id `<stage>-data`): tables and secrets."""

    def __init__(self, scope: Construct, settings: StageSettings, **kwargs: Any) -> None:
        stage, retain_data = settings.stage, settings.retain_data
        super().__init__(
            scope,
            f"{stage}-data",
            stack_name=f"taskbeat-{stage}-data",
            description=f"Taskbeat data (tables, secrets), stage {stage}",
            # A retained stage's data stack cannot be deleted by mistake (docs/operations.md).
            termination_protection=retain_data,
            **kwargs,
        )
        self.tables = Tables(
            self,
            "Tables",
            table_prefix=table_prefix(stage),
            specs=table_specs(),
            retain=retain_data,
        )
        self.secrets = Secrets(self, "Secrets", retain=retain_data)


class ServiceStack(cdk.Stack):
    """Stack `taskbeat-<stage>`; its construct id is the stage (the Chalice stage follows it)."""

    def __init__(
        self,
        scope: Construct,
        settings: StageSettings,
        *,
        data: DataStack,
        project: LambdaProject,
        web_dist: Path,
        **kwargs: Any,
    ) -> None:
        stage, retain_logs = settings.stage, settings.retain_data
        super().__init__(
            scope,
            stage,
            stack_name=f"taskbeat-{stage}",
            description=f"Taskbeat task API, stage {stage}",
            **kwargs,
        )
        tables = data.tables.by_base_name
        self.roles = FunctionRoles(self, "Roles", tables=tables)
        self.api = Api(
            self,
            "Api",
            roles=self.roles,
            project=project,
            stage=stage,
            table_prefix=table_prefix(stage),
            tables=tables.values(),
            jwt_signing_key=data.secrets.jwt_signing_key,
            retain_logs=retain_logs,
        )
        self.key_rotation = KeyRotation(
            self,
            "KeyRotation",
            secrets=data.secrets,
            functions=self.api.functions(),
            function_role=self.api.role,
            rotate_jwt_key=self.api.chalice.sam_template.get_resource(ROTATE_JWT_KEY),
        )
        self.changes = ChangeFeed(
            self,
            "Changes",
            consumer=self.api.chalice.get_function(CONSUMER),
            role=self.roles.roles["on_change"],
            tables=tables.values(),
        )
        self.scheduling = Scheduling(
            self,
            "Scheduling",
            fire=self.api.chalice.sam_template.get_resource(FIRE),
            functions=self.api.functions(),
            function_role=self.api.role,
        )
        self.runs = Runs(
            self,
            "Runs",
            plan=self.api.chalice.sam_template.get_resource(PLAN),
            run_step=self.api.chalice.sam_template.get_resource(RUN_STEP),
            functions=self.api.functions(),
            function_role=self.api.role,
            retain_logs=retain_logs,
        )
        self.realtime = Realtime(
            self,
            "Realtime",
            fan_out=self.api.chalice.sam_template.get_resource(FAN_OUT),
            functions=self.api.functions(),
            function_role=self.api.role,
            websocket_stage=self.api.chalice.get_resource("WebsocketAPIStage"),
            retain_logs=retain_logs,
        )
        self.hook_deliveries = HookDeliveries(
            self,
            "HookDeliveries",
            consumer=self.api.chalice.sam_template.get_resource(DELIVER_HOOKS),
            functions=self.api.functions(),
            function_role=self.api.role,
        )
        self.due_sweep = DueSweep(
            self, "DueSweep", sweep=self.api.chalice.sam_template.get_resource(SWEEP)
        )
        self.web = WebDashboard(
            self,
            "Web",
            dist=web_dist,
            api_url=self.api.rest_api_url,
            websocket_url=self.api.websocket_url,
        )
        self.protection = Protection(
            self,
            "Protection",
            rest_api=self.api.chalice.get_resource("RestAPI"),
            api_handler=self.api.chalice.get_resource("APIHandler"),
            settings=ProtectionSettings.from_context(self.node, stage),
            own_origins=(self.web.origin,),
        )
        # Last: it alarms on what the others built (and its aspect gives every alarm its topic).
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            functions=self.api.functions(),
            stream_consumer=self.api.chalice.sam_template.get_resource(CONSUMER),
            rest_api=self.api.chalice.get_resource("RestAPI"),
            rest_api_stage=self.api.chalice.get_resource("RestAPI").stage_name,
            websocket_api=self.api.chalice.get_resource("WebsocketAPI"),
            websocket_stage=self.api.chalice.get_resource("WebsocketAPIStage").stage_name,
            tables=tables,
            state_machine=self.runs.state_machine,
            dead_letter_queue=self.scheduling.dead_letter_queue,
            alarm_email=settings.alarm_email,
        )
