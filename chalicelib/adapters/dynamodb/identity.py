"""DynamoDB repositories of users, sessions and login attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import assert_never

from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.expressions.condition import size
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamodb import connection, prefetch
from chalicelib.adapters.dynamodb.models import (
    ClaimModel,
    CommentModel,
    DeliveryModel,
    ExecutionModel,
    HookModel,
    LoginThrottleModel,
    MembershipModel,
    NotificationStateModel,
    ProjectModel,
    RuleModel,
    SearchTermModel,
    SessionModel,
    TaskGraphModel,
    TaskModel,
    TemplateModel,
    UserModel,
    UserProjectsModel,
    WorkflowModel,
    WorkflowRunModel,
)
from chalicelib.adapters.dynamodb.pagination import key_of, paginate
from chalicelib.adapters.dynamodb.prefetch import ItemKey
from chalicelib.adapters.dynamodb.transactions import CONDITION_FAILED, condition_failed
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.errors import EmailTaken, FirstAdminTaken, StaleVersion
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.projects import Membership, Project
from chalicelib.domain.users import Role, Session, User
from chalicelib.ports import LoginState, PrefetchKey
from chalicelib.ports.reads import ReadKind

FIRST_ADMIN_CLAIM = "system#first-admin"
# A login throttle keeps at most this many failures: enough for any sane policy, and an
# attacker cannot grow the item without bound.
MAX_KEPT_FAILURES = 50


def email_claim(email: str) -> str:
    return f"email#{email}"


def calendar_claim(lookup: str) -> str:
    """The lookup item of a calendar token: keyed by the token's SHA-256, owned by its user."""
    return f"calendar#{lookup}"


def item_key(key: PrefetchKey) -> ItemKey:
    """Map a domain prefetch key to the DynamoDB item it names."""
    ids = key.ids
    match key.kind:
        case ReadKind.USER:
            return ItemKey(UserModel, ids[0])
        case ReadKind.PROJECT:
            return ItemKey(ProjectModel, ids[0])
        case ReadKind.MEMBER:
            return ItemKey(MembershipModel, ids[0], ids[1])
        case ReadKind.TASK:
            return ItemKey(TaskModel, ids[0])
        case ReadKind.GRAPH:
            return ItemKey(TaskGraphModel, ids[0])
        case ReadKind.SEARCH_TERM:
            return ItemKey(SearchTermModel, f"{ids[0]}#{ids[1]}")
        case ReadKind.USER_PROJECTS:
            return ItemKey(UserProjectsModel, ids[0])
        case ReadKind.USER_EMAIL:
            return ItemKey(ClaimModel, email_claim(ids[0]))
        case ReadKind.COMMENT:
            return ItemKey(CommentModel, ids[0], ids[1])
        case ReadKind.NOTIFICATION_STATE:
            return ItemKey(NotificationStateModel, ids[0])
        case ReadKind.EXECUTION:
            return ItemKey(ExecutionModel, ids[0])
        case ReadKind.WORKFLOW:
            return ItemKey(WorkflowModel, ids[0])
        case ReadKind.WORKFLOW_RUN:
            return ItemKey(WorkflowRunModel, ids[0])
        case ReadKind.TEMPLATE:
            return ItemKey(TemplateModel, ids[0])
        case ReadKind.RULE:
            return ItemKey(RuleModel, ids[0])
        case ReadKind.HOOK:
            return ItemKey(HookModel, ids[0])
        case ReadKind.DELIVERY:
            return ItemKey(DeliveryModel, ids[0])
        case unmapped:  # mypy fails here when a kind has no item
            assert_never(unmapped)


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
        calendar_nonce=row.calendar_nonce,
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
        calendar_nonce=user.calendar_nonce,
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
        email=membership.email,
        name=membership.name,
    )


def session_to_model(session: Session) -> SessionModel:
    return SessionModel(
        id=session.id,
        user_id=session.user_id,
        refresh_jti=session.refresh_jti,
        created_at=session.created_at,
        expires_at=session.expires_at,
        revoked_at=session.revoked_at,
    )


def session_from_model(row: SessionModel) -> Session:
    return Session(
        id=row.id,
        user_id=row.user_id,
        refresh_jti=row.refresh_jti,
        created_at=row.created_at,
        expires_at=row.expires_at.astimezone(UTC),
        revoked_at=row.revoked_at,
    )


class DynamoUserRepository:
    @translate_aws_failures
    def create_account(
        self,
        user: User,
        personal_project: Project,
        owner: Membership,
        session: Session,
        *,
        first_admin: bool,
        calendar_lookup: str | None = None,
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
                tx.save(
                    UserProjectsModel(
                        user_id=user.id, projects={owner.project_id: owner.role.value}
                    )
                )
                tx.save(session_to_model(session), condition=SessionModel.id.does_not_exist())
                if calendar_lookup is not None:  # last: the reasons above keep their places
                    tx.save(
                        ClaimModel(
                            key=calendar_claim(calendar_lookup),
                            owner_id=user.id,
                            created_at=user.created_at,
                        ),
                        condition=ClaimModel.key.does_not_exist(),
                    )
        except TransactWriteError as exc:
            reasons = [reason.code if reason else None for reason in exc.cancellation_reasons]
            if reasons and reasons[0] == CONDITION_FAILED:
                raise EmailTaken(user.email) from exc
            if first_admin and len(reasons) > 1 and reasons[1] == CONDITION_FAILED:
                raise FirstAdminTaken() from exc
            raise

    @translate_aws_failures
    def first_admin_exists(self) -> bool:
        return prefetch.get(ItemKey(ClaimModel, FIRST_ADMIN_CLAIM), ClaimModel) is not None

    @translate_aws_failures
    def get(self, user_id: str) -> User | None:
        row = prefetch.get(ItemKey(UserModel, user_id), UserModel)
        return user_from_model(row) if row else None

    @translate_aws_failures
    def get_by_email(self, email: str) -> User | None:
        claim = prefetch.get(ItemKey(ClaimModel, email_claim(email)), ClaimModel)
        return self.get(claim.owner_id) if claim else None

    @translate_aws_failures
    def save(self, user: User) -> User:
        saved = user.with_changes(version=user.version + 1)
        try:
            user_to_model(saved).save(condition=UserModel.version == user.version)
        except PutError as exc:
            if condition_failed(exc):
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


class DynamoSessionRepository:
    @translate_aws_failures
    def create(self, session: Session) -> None:
        session_to_model(session).save(condition=SessionModel.id.does_not_exist())

    @translate_aws_failures
    def get(self, session_id: str, prefetch_keys: Sequence[PrefetchKey] = ()) -> Session | None:
        key = ItemKey(SessionModel, session_id)
        if prefetch_keys:
            prefetch.get_many([key, *(item_key(k) for k in prefetch_keys)])
        row = prefetch.get(key, SessionModel)
        return session_from_model(row) if row else None

    @translate_aws_failures
    def rotate(self, session_id: str, presented_jti: str, new_jti: str) -> bool:
        try:
            SessionModel(id=session_id).update(
                actions=[SessionModel.refresh_jti.set(new_jti)],
                condition=(SessionModel.refresh_jti == presented_jti)
                & SessionModel.revoked_at.does_not_exist(),
            )
        except UpdateError as exc:
            if condition_failed(exc):
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
            if not condition_failed(exc):  # already revoked or gone: nothing to do
                raise

    @translate_aws_failures
    def revoke_all_for_user(self, user_id: str, at: datetime, *, keep: str | None = None) -> None:
        for row in SessionModel.by_user.query(user_id):
            if row.id != keep:
                self.revoke(row.id, at)


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


class DynamoLoginAttempts:
    @translate_aws_failures
    def lookup(self, email: str) -> LoginState:
        claim_key = ItemKey(ClaimModel, email_claim(email))
        throttle_key = ItemKey(LoginThrottleModel, email)
        found = prefetch.get_many([claim_key, throttle_key])
        claim, throttle = found[claim_key], found[throttle_key]
        prefetch.take(throttle_key)  # the claim stays prefetched for get_by_email
        failures = [
            datetime.fromtimestamp(int(t), UTC) for t in (throttle.failures if throttle else [])
        ]
        return LoginState(user_id=claim.owner_id if claim else None, failures=sorted(failures))

    @translate_aws_failures
    def record_failure(self, email: str, at: datetime, keep_since: datetime) -> None:
        ttl = at + (at - keep_since)
        try:
            # Appending is atomic, so concurrent failures are all counted.
            LoginThrottleModel(email=email).update(
                actions=[
                    LoginThrottleModel.failures.set(
                        (LoginThrottleModel.failures | []).append([_epoch(at)])
                    ),
                    LoginThrottleModel.expires_at.set(ttl),
                ],
                condition=LoginThrottleModel.failures.does_not_exist()
                | (size(LoginThrottleModel.failures) < MAX_KEPT_FAILURES),  # type: ignore[no-untyped-call]
            )
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
            # Full: keep only the failures that still count, plus this one.
            current = LoginThrottleModel.get(email, consistent_read=True)
            kept = [t for t in current.failures if t >= _epoch(keep_since)][
                -MAX_KEPT_FAILURES + 1 :
            ]
            LoginThrottleModel(email=email, failures=[*kept, _epoch(at)], expires_at=ttl).save()

    @translate_aws_failures
    def clear(self, email: str) -> None:
        LoginThrottleModel(email=email).delete()
