"""One IAM role per Lambda function, built from `infrastructure/access.py`.

Each role may write its function's logs and traces, read or write exactly the tables its
function's access names (and their indexes; no Scan), and nothing else until a component adds
a statement. Components keep adding statements the way they did to a shared role (through
`FunctionRoles.router`): a statement goes to the roles of the functions whose declared access
includes one of its actions, so a grant cannot reach a function that was not declared to need
it, and a declared need without its grant fails the template tests. A grant to invoke a
function goes to the functions that declare they invoke it: its sid is `Invoke<LogicalId>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Protocol

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from infrastructure.access import FUNCTION_ACCESS, INVOKE, READ_ACTIONS, WRITE_ACTIONS

# Actions a component grants on behalf of another declared action (IAM needs both).
IMPLIED_BY: Final = {"iam:PassRole": "scheduler:CreateSchedule"}
# Chalice's logical ids of the functions, by their names in app.py and .chalice/config.json.
LOGICAL_IDS: Final = {
    "api_handler": "APIHandler",
    "websocket_connect": "WebsocketConnect",
    "websocket_message": "WebsocketMessage",
    "websocket_disconnect": "WebsocketDisconnect",
    "on_change": "OnChange",
    "fan_out": "FanOut",
    "fire": "Fire",
    "plan": "Plan",
    "run_step": "RunStep",
    "sweep": "Sweep",
    "deliver_hooks": "DeliverHooks",
}
# Statements that go to exactly these functions, whoever else declares their actions (two
# queues take sqs:SendMessage from different functions: the scheduler's dead letters from
# `fire`, hook deliveries from `on_change` and `api_handler`).
ROUTED_BY_SID: Final = {
    "FireDeadLetters": ("fire",),
    "HookQueueSend": ("on_change", "api_handler"),
    "HookQueueConsume": ("deliver_hooks",),
}


class PolicyTarget(Protocol):
    """What components grant to: a role, or the functions' roles through `FunctionRoles`."""

    def add_to_principal_policy(
        self, statement: iam.PolicyStatement
    ) -> iam.AddToPrincipalPolicyResult: ...


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


class _Router:
    """Looks like a role to components (`add_to_principal_policy`); routes each statement."""

    def __init__(self, roles: Mapping[str, iam.Role]) -> None:
        self._roles = roles

    def add_to_principal_policy(
        self, statement: iam.PolicyStatement
    ) -> iam.AddToPrincipalPolicyResult:
        actions = {IMPLIED_BY.get(action, action) for action in statement.actions}
        routed = ROUTED_BY_SID.get(statement.sid or "")
        if routed is not None:
            targets = [n for n in routed if actions <= set(FUNCTION_ACCESS[n].actions)]
            if len(targets) != len(routed):
                raise ValueError(f"{statement.sid}: a function it names does not declare it")
        elif actions == {INVOKE}:
            invoked = {f"Invoke{logical_id}": name for name, logical_id in LOGICAL_IDS.items()}
            callee = invoked.get(statement.sid or "")
            if callee is None:
                raise ValueError(f"an invoke grant's sid names no function: {statement.sid}")
            targets = [name for name, access in FUNCTION_ACCESS.items() if callee in access.invokes]
        else:
            targets = [
                name for name, access in FUNCTION_ACCESS.items() if actions & set(access.actions)
            ]
        if not targets:
            raise ValueError(f"no function is declared to need {sorted(statement.actions)}")
        for name in targets:
            self._roles[name].add_to_principal_policy(statement)
        return iam.AddToPrincipalPolicyResult(statement_added=True)


class FunctionRoles(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tables: Mapping[str, dynamodb.ITable],
    ) -> None:
        super().__init__(scope, construct_id)
        self.roles: dict[str, iam.Role] = {}
        for name, access in FUNCTION_ACCESS.items():
            role = iam.Role(
                self,
                _pascal(name),
                description=f"Taskbeat's {name} function",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                managed_policies=[
                    iam.ManagedPolicy.from_aws_managed_policy_name(
                        "service-role/AWSLambdaBasicExecutionRole"
                    ),
                    iam.ManagedPolicy.from_aws_managed_policy_name("AWSXRayDaemonWriteAccess"),
                ],
            )
            for kind, names, actions in (
                ("Reads", access.reads, READ_ACTIONS),
                ("Writes", access.writes, READ_ACTIONS + WRITE_ACTIONS),
            ):
                if not names:
                    continue
                arns = [tables[table].table_arn for table in sorted(names)]
                role.add_to_principal_policy(
                    iam.PolicyStatement(
                        sid=f"Table{kind}",
                        actions=list(actions),
                        resources=[*arns, *(f"{arn}/index/*" for arn in arns)],
                    )
                )
            self.roles[name] = role
        self.router = _Router(self.roles)

    def role_arns(self) -> dict[str, str]:
        return {name: role.role_arn for name, role in self.roles.items()}
