"""Every environment variable Taskbeat reads, in one pydantic model.

`Settings()` reads each field from `TASKBEAT_<FIELD>` (any case; `aws_region` from Lambda's
`AWS_REGION`), and a value given to it wins over the environment. It is built in `bootstrap`,
never at import time.

A pydantic model validated from the environment rather than pydantic-settings: its sources
(dotenv files, a CLI parser, cloud vaults, asyncio) cost ~30 ms of every function's cold start
(bench/coldstart.py), and these settings need none of them: flat values under one prefix, which
pydantic's lax mode turns into ints and booleans as pydantic-settings did.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

ENV_PREFIX = "TASKBEAT_"
_ORIGIN = re.compile(r"https?://[a-z0-9.-]+(:[0-9]{1,5})?|\*")
# Fields read from a variable of their own rather than TASKBEAT_<FIELD>.
_OWN_VARIABLES = {"aws_region": "AWS_REGION"}


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    stage: str = Field("local", description="Deployment stage name; 'local' for make run.")
    table_prefix: str = Field("taskbeat-local-", description="Prefix of every DynamoDB table name.")
    jwt_secret_id: str = Field(
        "taskbeat-local/jwt-signing-key",
        description="Secrets Manager id (name or ARN) of the JWT signing key.",
    )
    derivation_secret_id: str = Field(
        "taskbeat-local/derivation-key",
        description="Secrets Manager id (name or ARN) of the key webhook secrets and cursor "
        "signatures derive from; unlike the JWT signing key it never rotates (docs/keys.md).",
    )
    jwt_keys_cache_seconds: int = Field(
        300,
        ge=0,
        le=3600,
        description="How long a container uses the JWT signing keys it read before reading them "
        "again (a rotation reaches every container within this; 0: read on every use).",
    )
    jwt_issuer: str = "taskbeat"
    jwt_audience: str = "taskbeat-api"
    access_token_ttl_seconds: int = Field(900, ge=60, le=3600)
    refresh_token_ttl_seconds: int = Field(30 * 24 * 3600, ge=3600)
    login_max_failures: int = Field(5, ge=1)
    login_failure_window_seconds: int = Field(15 * 60, ge=60)
    ws_management_url: str | None = Field(
        None,
        description="Endpoint of the API Gateway management API used to push to WebSockets.",
    )
    allow_private_webhooks: bool = Field(
        False, description="Allow webhook targets on loopback/private addresses (local only)."
    )
    schedule_group: str = Field(
        "taskbeat-local", description="EventBridge Scheduler group of the stage's task schedules."
    )
    fire_function_arn: str | None = Field(
        None, description="ARN of the `fire` function that task schedules invoke."
    )
    scheduler_role_arn: str | None = Field(
        None, description="Role EventBridge Scheduler assumes to invoke the fire function."
    )
    scheduler_dlq_arn: str | None = Field(
        None, description="SQS queue that receives firings the scheduler could not deliver."
    )
    state_machine_arn: str | None = Field(
        None, description="The run state machine (Step Functions) that executions run on."
    )
    fan_out_function_arn: str | None = Field(
        None,
        description="The `fan_out` function that pushes one event to a share of a large "
        "fan-out's connections (without it, the stream consumer pushes to all of them itself).",
    )
    hook_queue_url: str | None = Field(
        None, description="SQS queue that project hook deliveries wait in (`deliver_hooks`)."
    )
    hook_retry_base_seconds: float = Field(
        10.0,
        gt=0,
        le=15,
        description="Delay before a failed hook delivery's first retry; each next one doubles.",
    )
    hook_timeout_seconds: float = Field(
        10.0, gt=0, le=60, description="How long one hook delivery attempt waits for an answer."
    )
    hook_retry_window_seconds: float = Field(
        24 * 3600,
        gt=0,
        le=24 * 3600,
        description="How long a hook delivery is retried before it is `failed`.",
    )
    cors_origins: tuple[str, ...] = Field(
        (),
        description="Browser origins allowed to call the API (CORS), comma-separated, e.g. "
        "`https://app.example.com`; `*` allows any. Empty: no CORS headers at all.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    aws_region: str = Field(
        "us-east-1", validation_alias=AliasChoices("aws_region", _OWN_VARIABLES["aws_region"])
    )

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, given: Any) -> Any:
        """The environment's value of each field not given."""
        if not isinstance(given, dict):
            return given
        environment = {name.upper(): value for name, value in os.environ.items()}
        found = {}
        for field in cls.model_fields:
            variable = environment_variable(field)
            if variable in environment and field not in given and variable not in given:
                found[field] = environment[variable]
        return found | given

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        """`scheme://host[:port]` each (a trailing `/` dropped, lowercased), as browsers send."""
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return value
        stripped = (str(item).strip().rstrip("/").lower() for item in items)
        origins = tuple(origin for origin in stripped if origin)
        for origin in origins:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(f"{origin!r} is not an origin such as https://app.example.com")
        return origins

    def table_name(self, base: str) -> str:
        return f"{self.table_prefix}{base}"


def environment_variable(field: str) -> str:
    """The environment variable a field of `Settings` is read from."""
    return _OWN_VARIABLES.get(field, ENV_PREFIX + field.upper())
