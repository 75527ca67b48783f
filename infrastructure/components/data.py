"""DynamoDB tables, built from the PynamoDB models' specs so that keys are declared only once."""

from __future__ import annotations

from collections.abc import Iterable

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from chalicelib.adapters.dynamodb.tables import TableSpec

_ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}
_PROJECTIONS = {
    "ALL": dynamodb.ProjectionType.ALL,
    "KEYS_ONLY": dynamodb.ProjectionType.KEYS_ONLY,
}


class Tables(Construct):
    """One on-demand table per spec, named `table_prefix + spec.base_name`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table_prefix: str,
        specs: Iterable[TableSpec],
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.by_base_name: dict[str, dynamodb.Table] = {
            spec.base_name: _table(self, spec, table_prefix, retain) for spec in specs
        }


def _table(scope: Construct, spec: TableSpec, table_prefix: str, retain: bool) -> dynamodb.Table:
    table = dynamodb.Table(
        scope,
        spec.base_name,
        table_name=f"{table_prefix}{spec.base_name}",
        partition_key=_attribute(spec, spec.hash_key),
        sort_key=_attribute(spec, spec.range_key) if spec.range_key else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        time_to_live_attribute=spec.ttl_attribute,
        # At rest under the account's `aws/dynamodb` KMS key (every use of it is in CloudTrail),
        # rather than an AWS-owned key no one can audit.
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        # The change handler needs both images to tell what changed.
        stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES if spec.stream else None,
        removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
        deletion_protection=retain,
    )
    for index in spec.indexes:
        if index.projection not in _PROJECTIONS:
            # INCLUDE would need the non-key attribute list, which specs do not carry.
            raise ValueError(f"{spec.base_name}.{index.name}: unsupported projection")
        table.add_global_secondary_index(
            index_name=index.name,
            partition_key=_attribute(spec, index.hash_key),
            sort_key=_attribute(spec, index.range_key) if index.range_key else None,
            projection_type=_PROJECTIONS[index.projection],
        )
    return table


def _attribute(spec: TableSpec, name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=_ATTRIBUTE_TYPES[spec.attribute_types[name]])
