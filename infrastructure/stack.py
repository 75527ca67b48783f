"""The one Taskbeat stack: data, secrets, the Chalice API, schedules and runs, for one stage."""

from __future__ import annotations

import re
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from chalicelib.adapters.dynamodb.tables import specs as table_specs
from infrastructure.components.api import Api
from infrastructure.components.changes import CONSUMER, ChangeFeed
from infrastructure.components.data import Tables
from infrastructure.components.monitoring import Monitoring
from infrastructure.components.protection import Protection, ProtectionSettings
from infrastructure.components.realtime import FAN_OUT, Realtime
from infrastructure.components.roles import FunctionRoles
from infrastructure.components.runs import PLAN, RUN_STEP, Runs
from infrastructure.components.scheduling import FIRE, Scheduling
from infrastructure.components.secrets import ROTATE_JWT_KEY, Secrets
from infrastructure.components.sweep import SWEEP, DueSweep
from infrastructure.packaging import LambdaProject

_STAGE_NAME = re.compile(r"[a-z][a-z0-9-]{0,19}")


class TaskbeatStack(cdk.Stack):
    """Stack `taskbeat-<stage>`; its construct id is the stage (the Chalice stage follows it)."""

    def __init__(
        self,
        scope: Construct,
        stage: str,
        *,
        project: LambdaProject,
        retain_data: bool = True,
        **kwargs: Any,
    ) -> None:
        if not _STAGE_NAME.fullmatch(stage):
            raise ValueError(f"stage {stage!r}: use 1-20 lowercase letters, digits and '-'")
        super().__init__(
            scope,
            stage,
            stack_name=f"taskbeat-{stage}",
            description=f"Taskbeat task API, stage {stage}",
            **kwargs,
        )
        table_prefix = f"{self.stack_name}-"

        self.tables = Tables(
            self, "Tables", table_prefix=table_prefix, specs=table_specs(), retain=retain_data
        )
        self.secrets = Secrets(self, "Secrets", retain=retain_data)
        self.roles = FunctionRoles(self, "Roles", tables=self.tables.by_base_name)
        self.api = Api(
            self,
            "Api",
            roles=self.roles,
            project=project,
            stage=stage,
            table_prefix=table_prefix,
            tables=self.tables.by_base_name.values(),
            jwt_signing_key=self.secrets.jwt_signing_key,
            retain_logs=retain_data,
        )
        self.secrets.connect(
            functions=self.api.functions(),
            function_role=self.api.role,
            rotate_jwt_key=self.api.chalice.sam_template.get_resource(ROTATE_JWT_KEY),
        )
        self.changes = ChangeFeed(
            self,
            "Changes",
            consumer=self.api.chalice.get_function(CONSUMER),
            role=self.roles.roles["on_change"],
            tables=self.tables.by_base_name.values(),
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
            retain_logs=retain_data,
        )
        self.realtime = Realtime(
            self,
            "Realtime",
            fan_out=self.api.chalice.sam_template.get_resource(FAN_OUT),
            functions=self.api.functions(),
            function_role=self.api.role,
            websocket_stage=self.api.chalice.get_resource("WebsocketAPIStage"),
            retain_logs=retain_data,
        )
        self.due_sweep = DueSweep(
            self, "DueSweep", sweep=self.api.chalice.sam_template.get_resource(SWEEP)
        )
        self.protection = Protection(
            self,
            "Protection",
            rest_api=self.api.chalice.get_resource("RestAPI"),
            api_handler=self.api.chalice.get_resource("APIHandler"),
            settings=ProtectionSettings.from_context(self.node, stage),
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
            tables=self.tables.by_base_name,
            state_machine=self.runs.state_machine,
            dead_letter_queue=self.scheduling.dead_letter_queue,
            alarm_email=self.node.try_get_context("alarm_email") or None,
        )
