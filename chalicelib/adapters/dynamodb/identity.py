"""DynamoDB repositories of users, sessions and login failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamodb import connection
from chalicelib.adapters.dynamodb.models import (
    ClaimModel,
    LoginFailureModel,
    MembershipModel,
    ProjectModel,
    SessionModel,
    UserModel,
)
from chalicelib.adapters.dynamodb.pagination import key_of, paginate
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.errors import EmailTaken, FirstAdminTaken, StaleVersion
from chalicelib.domain.model import Page, PageRequest, new_id, utc
from chalicelib.domain.projects import Membership, Project
from chalicelib.domain.users import Role, Session, User

FIRST_ADMIN_CLAIM = "system#first-admin"
CONDITION_FAILED = "ConditionalCheckFailed"


def email_claim(email: str) -> str:
    return f"email#{email}"


def _condition_failed(exc: PutError | UpdateError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


def user_from_model(row: UserModel) -> User:
    return User(
        id=row.id,
        email=row.email,
        name=row.name,
        role=Role(row.role),
        timezone=row.timezone,
        password_hash=row.password_hash,
        personal_project_id=row.personal_project_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=int(row.version),
    )


def user_to_model(user: User) -> UserModel:
    return UserModel(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role.value,
        timezone=user.timezone,
        password_hash=user.password_hash,
        personal_project_id=user.personal_project_id,
        created_at=user.created_at,
        updated_at=user.updated_at,
        version=user.version,
    )


def project_to_model(project: Project) -> ProjectModel:
    return ProjectModel(
        id=project.id,
        name=project.name,
        description=project.description,
        owner_id=project.owner_id,
        personal=project.personal,
        created_at=project.created_at,
        updated_at=project.updated_at,
        version=project.version,
    )


def membership_to_model(membership: Membership) -> MembershipModel:
    return MembershipModel(
        project_id=membership.project_id,
        user_id=membership.user_id,
        role=membership.role.value,
        added_at=membership.added_at,
    )


class DynamoUserRepository:
    @translate_aws_failures
    def create_account(
        self, user: User, personal_project: Project, owner: Membership, *, first_admin: bool
    ) -> None:
        claims = [
            ClaimModel(key=email_claim(user.email), owner_id=user.id, created_at=user.created_at)
        ]
        if first_admin:
            claims.append(
                ClaimModel(key=FIRST_ADMIN_CLAIM, owner_id=user.id, created_at=user.created_at)
            )
        try:
            with TransactWrite(connection=connection.root()) as tx:
                for claim in claims:
                    tx.save(claim, condition=ClaimModel.key.does_not_exist())
                tx.save(user_to_model(user), condition=UserModel.id.does_not_exist())
                tx.save(
                    project_to_model(personal_project), condition=ProjectModel.id.does_not_exist()
                )
                tx.save(membership_to_model(owner))
        except TransactWriteError as exc:
            reasons = [reason.code if reason else None for reason in exc.cancellation_reasons]
            if reasons and reasons[0] == CONDITION_FAILED:
                raise EmailTaken(user.email) from exc
            if first_admin and len(reasons) > 1 and reasons[1] == CONDITION_FAILED:
                raise FirstAdminTaken() from exc
            raise

    @translate_aws_failures
    def first_admin_exists(self) -> bool:
        return ClaimModel.count(FIRST_ADMIN_CLAIM, limit=1) > 0

    @translate_aws_failures
    def get(self, user_id: str) -> User | None:
        try:
            return user_from_model(UserModel.get(user_id, consistent_read=True))
        except UserModel.DoesNotExist:
            return None

    @translate_aws_failures
    def get_by_email(self, email: str) -> User | None:
        try:
            claim = ClaimModel.get(email_claim(email), consistent_read=True)
        except ClaimModel.DoesNotExist:
            return None
        return self.get(claim.owner_id)

    @translate_aws_failures
    def save(self, user: User) -> User:
        saved = user.with_changes(version=user.version + 1)
        try:
            user_to_model(saved).save(condition=UserModel.version == user.version)
        except PutError as exc:
            if _condition_failed(exc):
                raise StaleVersion(user.id) from exc
            raise
        return saved

    @translate_aws_failures
    def list_by_email_prefix(self, prefix: str, page: PageRequest) -> Page[User]:
        condition = UserModel.email.startswith(prefix) if prefix else None
        return paginate(
            lambda limit, start: UserModel.by_email.query(
                "users",
                range_key_condition=condition,
                limit=limit,
                page_size=limit,
                last_evaluated_key=start,
            ),
            lambda row: key_of(row, "id", "directory", "email"),
            user_from_model,
            page,
            scope=f"users?q={prefix}",
        )


def session_from_model(row: SessionModel) -> Session:
    return Session(
        id=row.id,
        user_id=row.user_id,
        refresh_jti=row.refresh_jti,
        created_at=row.created_at,
        expires_at=utc(row.expires_at),
        revoked_at=row.revoked_at,
    )


class DynamoSessionRepository:
    @translate_aws_failures
    def create(self, session: Session) -> None:
        SessionModel(
            id=session.id,
            user_id=session.user_id,
            refresh_jti=session.refresh_jti,
            created_at=session.created_at,
            expires_at=session.expires_at,
        ).save(condition=SessionModel.id.does_not_exist())

    @translate_aws_failures
    def get(self, session_id: str) -> Session | None:
        try:
            return session_from_model(SessionModel.get(session_id, consistent_read=True))
        except SessionModel.DoesNotExist:
            return None

    @translate_aws_failures
    def rotate(self, session_id: str, presented_jti: str, new_jti: str) -> bool:
        try:
            SessionModel(id=session_id).update(
                actions=[SessionModel.refresh_jti.set(new_jti)],
                condition=(SessionModel.refresh_jti == presented_jti)
                & SessionModel.revoked_at.does_not_exist(),
            )
        except UpdateError as exc:
            if _condition_failed(exc):
                return False
            raise
        return True

    @translate_aws_failures
    def revoke(self, session_id: str, at: datetime) -> None:
        try:
            SessionModel(id=session_id).update(
                actions=[SessionModel.revoked_at.set(at)],
                condition=SessionModel.id.exists() & SessionModel.revoked_at.does_not_exist(),
            )
        except UpdateError as exc:
            if not _condition_failed(exc):  # already revoked or gone: nothing to do
                raise

    @translate_aws_failures
    def revoke_all_for_user(self, user_id: str, at: datetime, *, keep: str | None = None) -> None:
        for row in SessionModel.by_user.query(user_id):
            if row.id != keep:
                self.revoke(row.id, at)


def _sort_key(at: datetime) -> str:
    return f"{utc(at).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{new_id()}"


class DynamoLoginFailureLog:
    def __init__(self, window: timedelta) -> None:
        self._window = window

    @translate_aws_failures
    def record(self, email: str, at: datetime) -> None:
        LoginFailureModel(email=email, at=_sort_key(at), expires_at=at + self._window).save()

    @translate_aws_failures
    def recent(self, email: str, since: datetime, limit: int) -> list[datetime]:
        rows = LoginFailureModel.query(
            email,
            range_key_condition=LoginFailureModel.at >= _sort_key(since).split("#")[0],
            scan_index_forward=False,
            limit=limit,
            page_size=limit,
        )
        return [
            datetime.strptime(row.at.split("#")[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            for row in rows
        ]

    @translate_aws_failures
    def clear(self, email: str) -> None:
        with LoginFailureModel.batch_write() as batch:
            for row in LoginFailureModel.query(email, attributes_to_get=["email", "at"]):
                batch.delete(row)
