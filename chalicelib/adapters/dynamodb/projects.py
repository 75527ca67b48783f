"""DynamoDB repository of projects, memberships and each user's {project_id: role} index.

`memberships` and `user_projects` change together, in one transaction per membership change, so
a user's index always names exactly the projects whose member list names the user. Deleting a
project deletes its item only: every read goes through the project, so its members and tasks are
invisible at once, and `purge_project` (run later, from the table's stream) removes the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, NoReturn

from pynamodb.exceptions import PutError, TransactWriteError, UpdateError

from chalicelib.adapters.dynamodb import prefetch
from chalicelib.adapters.dynamodb.identity import (
    membership_to_model,
    project_to_model,
)
from chalicelib.adapters.dynamodb.models import MembershipModel, ProjectModel, UserProjectsModel
from chalicelib.adapters.dynamodb.pagination import key_of, paginate
from chalicelib.adapters.dynamodb.prefetch import ItemKey
from chalicelib.adapters.dynamodb.transactions import (
    MAX_TRANSACTION_ITEMS,
    Transaction,
    condition_failed,
)
from chalicelib.adapters.errors import translate_aws_failures
from chalicelib.domain.cursors import decode_cursor, encode_cursor
from chalicelib.domain.errors import MemberExists, NotAMember, NotFound, StaleVersion
from chalicelib.domain.model import Page, PageRequest
from chalicelib.domain.projects import (
    Membership,
    Project,
    ProjectRole,
    ProjectWithRole,
    plausible_id,
)

# BatchGetItem reads at most 100 keys; a page is never longer (limit <= 100).
MAX_BATCH_KEYS = 100


def project_from_model(row: ProjectModel) -> Project:
    return Project(
        id=row.id,
        name=row.name,
        description=row.description or "",
        owner_id=row.owner_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        personal=bool(row.personal),
        version=int(row.version),
    )


def membership_from_model(row: MembershipModel) -> Membership:
    return Membership(
        project_id=row.project_id,
        user_id=row.user_id,
        role=ProjectRole(row.role),
        added_at=row.added_at,
        email=row.email or "",
        name=row.name or "",
    )


def _index_entry(project_id: str) -> Any:
    """The path of one project in a user's index (`projects.<project_id>`)."""
    return UserProjectsModel.projects[project_id]


def _user_index(user_id: str) -> UserProjectsModel:
    return UserProjectsModel(user_id=user_id)


def _raise_for(exc: TransactWriteError, tx: Transaction, membership_failed: Exception) -> NoReturn:
    """Explain a cancelled membership transaction; `membership_failed` is what the membership's
    own condition means (not a member yet, for an add; a member, for a change)."""
    failed = tx.failed(exc)
    if "project" in failed:
        raise NotFound("project not found") from exc
    if "membership" in failed:
        raise membership_failed from exc
    if "index" in failed:
        raise NotFound("user not found") from exc
    raise exc


class DynamoProjectRepository:
    """Every user has a `user_projects` item from registration on (never deleted): membership
    changes set and remove entries of its map in the same transaction as the membership."""

    # ---- projects ------------------------------------------------------------------------------

    @translate_aws_failures
    def create(self, project: Project, owner: Membership) -> None:
        try:
            with Transaction() as tx:
                tx.save("project", project_to_model(project), ProjectModel.id.does_not_exist())
                tx.save(
                    "membership",
                    membership_to_model(owner),
                    MembershipModel.user_id.does_not_exist(),
                )
                tx.update(
                    "index",
                    _user_index(owner.user_id),
                    [_index_entry(project.id).set(owner.role.value)],
                    UserProjectsModel.user_id.exists(),
                )
        except TransactWriteError as exc:
            if "index" in tx.failed(exc):
                raise NotFound("user not found") from exc
            raise

    @translate_aws_failures
    def get(self, project_id: str) -> Project | None:
        if not plausible_id(project_id):
            return None
        row = prefetch.get(ItemKey(ProjectModel, project_id), ProjectModel)
        return project_from_model(row) if row else None

    @translate_aws_failures
    def save(self, project: Project) -> Project:
        saved = replace(project, version=project.version + 1)
        try:
            # A deleted project has no version: the condition fails for it too.
            project_to_model(saved).save(condition=ProjectModel.version == project.version)
        except PutError as exc:
            if condition_failed(exc):
                raise StaleVersion(project.id) from exc
            raise
        return saved

    @translate_aws_failures
    def delete(self, project: Project) -> None:
        # The members' index entries go in the same transaction, so lists that read the index
        # (`GET /tasks?assignee_id=me`) drop the project at once; for a project with more members
        # than a transaction holds, the rest go with the purge.
        members = [
            row.user_id
            for row in MembershipModel.query(
                project.id, limit=MAX_TRANSACTION_ITEMS - 1, attributes_to_get=["user_id"]
            )
        ]
        try:
            with Transaction() as tx:
                tx.delete(
                    "project", ProjectModel(id=project.id), ProjectModel.version == project.version
                )
                for user_id in members:
                    tx.update("index", _user_index(user_id), [_index_entry(project.id).remove()])
        except TransactWriteError as exc:
            if "project" in tx.failed(exc):
                raise StaleVersion(project.id) from exc
            raise

    @translate_aws_failures
    def get_many(self, project_ids: Sequence[str]) -> list[Project]:
        wanted = [p for p in dict.fromkeys(project_ids) if plausible_id(p)]
        found: dict[str, Project] = {}
        for start in range(0, len(wanted), MAX_BATCH_KEYS):
            chunk = wanted[start : start + MAX_BATCH_KEYS]
            # Consistent: a project deleted a moment ago is not listed.
            for row in ProjectModel.batch_get(chunk, consistent_read=True):
                found[row.id] = project_from_model(row)
        return [found[p] for p in wanted if p in found]

    @translate_aws_failures
    def list_for_user(self, user_id: str, page: PageRequest) -> Page[ProjectWithRole]:
        scope = f"projects-of:{user_id}"
        start = decode_cursor(page.cursor, scope)
        after = str(start.get("id", "")) if start else ""
        roles = self.roles_of(user_id)
        ids = sorted(p for p in roles if p > after)
        chunk, more = ids[: page.limit], len(ids) > page.limit
        projects = self.get_many(chunk) if chunk else []
        next_cursor = encode_cursor({"id": chunk[-1]}, scope) if more else None
        return Page(
            items=[ProjectWithRole(p, roles[p.id]) for p in projects], next_cursor=next_cursor
        )

    # ---- members -------------------------------------------------------------------------------

    @translate_aws_failures
    def membership(self, project_id: str, user_id: str) -> Membership | None:
        if not (plausible_id(project_id) and plausible_id(user_id)):
            return None
        row = prefetch.get(ItemKey(MembershipModel, project_id, user_id), MembershipModel)
        return membership_from_model(row) if row else None

    @translate_aws_failures
    def members(self, project_id: str, page: PageRequest) -> Page[Membership]:
        return paginate(
            lambda limit, start: MembershipModel.query(
                project_id,
                consistent_read=True,
                limit=limit,
                page_size=limit,
                last_evaluated_key=start,
            ),
            lambda row: key_of(row, "project_id", "user_id"),
            membership_from_model,
            page,
            scope=f"members:{project_id}",
        )

    @translate_aws_failures
    def add_member(self, membership: Membership) -> None:
        try:
            with Transaction() as tx:
                tx.check("project", ProjectModel, membership.project_id, ProjectModel.id.exists())
                tx.save(
                    "membership",
                    membership_to_model(membership),
                    MembershipModel.user_id.does_not_exist(),
                )
                tx.update(
                    "index",
                    _user_index(membership.user_id),
                    [_index_entry(membership.project_id).set(membership.role.value)],
                    UserProjectsModel.user_id.exists(),
                )
        except TransactWriteError as exc:
            _raise_for(exc, tx, MemberExists(membership.user_id))

    @translate_aws_failures
    def set_member_role(self, membership: Membership) -> None:
        try:
            with Transaction() as tx:
                tx.update(
                    "membership",
                    MembershipModel(project_id=membership.project_id, user_id=membership.user_id),
                    [MembershipModel.role.set(membership.role.value)],
                    MembershipModel.user_id.exists(),
                )
                tx.update(
                    "index",
                    _user_index(membership.user_id),
                    [_index_entry(membership.project_id).set(membership.role.value)],
                    UserProjectsModel.user_id.exists(),
                )
        except TransactWriteError as exc:
            _raise_for(exc, tx, NotAMember(membership.user_id))

    @translate_aws_failures
    def remove_member(self, project_id: str, user_id: str) -> None:
        try:
            with Transaction() as tx:
                tx.delete(
                    "membership",
                    MembershipModel(project_id=project_id, user_id=user_id),
                    MembershipModel.user_id.exists(),
                )
                tx.update(
                    "index",
                    _user_index(user_id),
                    [_index_entry(project_id).remove()],
                    UserProjectsModel.user_id.exists(),
                )
        except TransactWriteError as exc:
            _raise_for(exc, tx, NotAMember(user_id))

    @translate_aws_failures
    def roles_of(self, user_id: str) -> dict[str, ProjectRole]:
        if not plausible_id(user_id):
            return {}
        row = prefetch.get(ItemKey(UserProjectsModel, user_id), UserProjectsModel)
        if row is None or row.projects is None:
            return {}
        raw: dict[str, Any] = row.projects.as_dict()  # type: ignore[no-untyped-call]
        return {project_id: ProjectRole(role) for project_id, role in raw.items()}


@translate_aws_failures
def purge_project(project_id: str) -> int:
    """Remove what is left of a deleted project: its memberships and their index entries.

    Meant for the stream handler that sees the project's REMOVE. Idempotent, and safe to run
    again after a crash (an index entry goes before its membership, so a rerun finds the
    membership and finishes the job). Refuses to touch a project that still exists. Returns the
    number of memberships removed.
    """
    if not plausible_id(project_id):
        return 0
    try:
        ProjectModel.get(project_id, consistent_read=True)
    except ProjectModel.DoesNotExist:
        pass
    else:
        raise ValueError(f"project {project_id} still exists; refusing to purge it")
    removed = 0
    while True:
        rows = list(MembershipModel.query(project_id, consistent_read=True, limit=MAX_BATCH_KEYS))
        if not rows:
            return removed
        for row in rows:
            try:
                _user_index(row.user_id).update(
                    actions=[_index_entry(project_id).remove()],
                    condition=UserProjectsModel.user_id.exists(),
                )
            except UpdateError as exc:
                if not condition_failed(exc):  # no index item: nothing to remove
                    raise
        with MembershipModel.batch_write() as batch:
            for row in rows:
                batch.delete(row)
        removed += len(rows)
