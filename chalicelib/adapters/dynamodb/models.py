"""PynamoDB models: the one declaration of every table's keys and indexes.

The CDK stack and the local stack both build tables from these classes (see `tables.py`).
`Meta.table_name` holds the base name; `tables.bind()` prefixes it with the stage's prefix at
start-up, so nothing reads the environment at import time.
"""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.attributes import TTLAttribute as _TTLAttribute
from pynamodb.connection.table import TableConnection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.adapters.dynamodb import connection


class TTLAttribute(_TTLAttribute):
    """PynamoDB's TTL attribute, typed for mypy."""


class BaseModel(Model):
    class Meta:
        abstract = True
        billing_mode = "PAY_PER_REQUEST"

    @classmethod
    def _get_connection(cls) -> TableConnection:
        table_connection = super()._get_connection()
        connection.share_client(table_connection)
        return table_connection


# ---- identity ----------------------------------------------------------------------------------


class UsersByEmail(GlobalSecondaryIndex["UserModel"]):
    """Admin user search: every user sits in one `directory` partition, sorted by email."""

    class Meta:
        index_name = "by_email"
        projection = AllProjection()

    directory = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute(range_key=True)


class UserModel(BaseModel):
    class Meta(BaseModel.Meta):
        table_name = "users"

    id = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute()
    name = UnicodeAttribute()
    role = UnicodeAttribute()
    timezone = UnicodeAttribute()
    password_hash = UnicodeAttribute()
    personal_project_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    version = NumberAttribute(default=1)
    directory = UnicodeAttribute(default="users")
    by_email = UsersByEmail()


class ClaimModel(BaseModel):
    """A unique name owned by one item: `email#<address>`, `system#first-admin`, ...

    Claims make uniqueness a conditional put instead of a read-then-write check.
    """

    class Meta(BaseModel.Meta):
        table_name = "claims"

    key = UnicodeAttribute(hash_key=True)
    owner_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()


class SessionsByUser(GlobalSecondaryIndex["SessionModel"]):
    class Meta:
        index_name = "by_user"
        projection = KeysOnlyProjection()

    user_id = UnicodeAttribute(hash_key=True)


class SessionModel(BaseModel):
    class Meta(BaseModel.Meta):
        table_name = "sessions"

    id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    refresh_jti = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute()
    revoked_at = UTCDateTimeAttribute(null=True)
    by_user = SessionsByUser()


class LoginThrottleModel(BaseModel):
    """Recent failed logins of one email (epoch seconds, oldest first); TTL drops idle ones."""

    class Meta(BaseModel.Meta):
        table_name = "login_throttle"

    email = UnicodeAttribute(hash_key=True)
    failures = ListAttribute(of=NumberAttribute, default=list)
    expires_at = TTLAttribute()


# ---- projects ----------------------------------------------------------------------------------


class ProjectModel(BaseModel):
    class Meta(BaseModel.Meta):
        table_name = "projects"

    id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    description = UnicodeAttribute(default="")
    owner_id = UnicodeAttribute()
    personal = BooleanAttribute(default=False)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    version = NumberAttribute(default=1)


class MembershipsByUser(GlobalSecondaryIndex["MembershipModel"]):
    """The projects of one user."""

    class Meta:
        index_name = "by_user"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    project_id = UnicodeAttribute(range_key=True)


class MembershipModel(BaseModel):
    """A member of a project. `email` and `name` are copies, so listing members is one query."""

    class Meta(BaseModel.Meta):
        table_name = "memberships"

    project_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute(range_key=True)
    role = UnicodeAttribute()
    added_at = UTCDateTimeAttribute()
    email = UnicodeAttribute(default="")
    name = UnicodeAttribute(default="")
    by_user = MembershipsByUser()


class UserProjectsModel(BaseModel):
    """The projects of one user, {project_id: role}: `GET /projects` and `assignee_id=me` read it
    with the session in one round trip. Written in the same transaction as each membership."""

    class Meta(BaseModel.Meta):
        table_name = "user_projects"

    user_id = UnicodeAttribute(hash_key=True)
    projects = MapAttribute[str, str](default=dict)
