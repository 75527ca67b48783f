"""Projects and their members: the use cases behind /projects (rules in `domain.projects`).

Every operation first asks `ProjectAccess` (404 for non-members, 403 for too-low roles). The
project and memberships it reads are the ones the route prefetched with the session; each write
is one conditional write or transaction, so the DynamoDB call budget of `docs/data-model.md` holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from chalicelib.domain.errors import (
    Conflict,
    MemberExists,
    NotAMember,
    NotFound,
    PreconditionFailed,
    StaleVersion,
)
from chalicelib.domain.model import Page, PageRequest, new_id
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import (
    DELETE_PROJECT_ROLE,
    EDIT_PROJECT_ROLE,
    MANAGE_MEMBERS_ROLE,
    READ_ROLE,
    MemberAdd,
    MemberRoleUpdate,
    Membership,
    Project,
    ProjectCreate,
    ProjectRole,
    ProjectUpdate,
    ProjectWithRole,
    plausible_id,
)
from chalicelib.domain.users import User
from chalicelib.ports import Clock, PrefetchKey, ProjectRepository, UserRepository, reads
from chalicelib.services.access import ProjectAccess, project_reads
from chalicelib.services.common import MAX_WRITE_ATTEMPTS, update_versioned

OWNER_IS_FIXED = "a project keeps its owner: the owner's role cannot change and it cannot leave"


def _first_then(
    first: Project, reload: Callable[[], Project | None]
) -> Callable[[], Project | None]:
    """A loader that gives `first` (already read with the session), then reads again."""
    pending = [first]

    def load() -> Project | None:
        return pending.pop() if pending else reload()

    return load


class ProjectService:
    def __init__(
        self,
        projects: ProjectRepository,
        users: UserRepository,
        access: ProjectAccess,
        clock: Clock,
    ) -> None:
        self._projects = projects
        self._users = users
        self._access = access
        self._clock = clock

    # ---- first reads: what each use case reads before anything else ------------------------------
    # The route fetches these items with the caller's session; the repositories take the
    # fetched copies.

    @staticmethod
    def reads_for_create(principal: Principal) -> list[PrefetchKey]:
        """Creating a project: the caller, its owner-to-be."""
        return [reads.user(principal.user_id)]

    @staticmethod
    def reads_for_list_mine(principal: Principal) -> list[PrefetchKey]:
        """Listing the caller's projects: the caller's index of them."""
        return [reads.user_projects(principal.user_id)]

    # Reading, changing or deleting a project, listing or adding its members: the project and the
    # caller's membership.
    reads_for_project = staticmethod(project_reads)

    @staticmethod
    def reads_for_member(principal: Principal, project_id: str, user_id: str) -> list[PrefetchKey]:
        """Changing or removing a member: the project's reads and that member's membership."""
        keys = project_reads(principal, project_id)
        if keys and plausible_id(user_id):
            keys.append(reads.member(project_id, user_id))
        return keys

    @staticmethod
    def reads_for_new_member(principal: Principal, command: MemberAdd) -> list[PrefetchKey]:
        """Adding a member, from the body: the user named, by id or by email."""
        if command.user_id is not None:
            return [reads.user(command.user_id)]
        return [reads.user_email(command.email or "")]

    # ---- projects ------------------------------------------------------------------------------

    def create(self, principal: Principal, command: ProjectCreate) -> ProjectWithRole:
        me = self._user(principal.user_id)
        now = self._clock.now()
        project = Project(
            id=new_id(),
            name=command.name,
            description=command.description or "",
            owner_id=me.id,
            created_at=now,
            updated_at=now,
        )
        owner = Membership(project.id, me.id, ProjectRole.OWNER, now, me.email, me.name)
        self._projects.create(project, owner)
        return ProjectWithRole(project, ProjectRole.OWNER)

    def list_mine(self, principal: Principal, page: PageRequest) -> Page[ProjectWithRole]:
        return self._projects.list_for_user(principal.user_id, page)

    def get(self, principal: Principal, project_id: str) -> ProjectWithRole:
        context = self._access.require(principal.user_id, project_id, READ_ROLE)
        return ProjectWithRole(context.project, context.role)

    def update(
        self,
        principal: Principal,
        project_id: str,
        update: ProjectUpdate,
        expected_version: int | None = None,
    ) -> ProjectWithRole:
        context = self._access.require(principal.user_id, project_id, EDIT_PROJECT_ROLE)
        now = self._clock.now()
        loaded: list[Project] = []
        load_next = _first_then(context.project, lambda: self._projects.get(project_id))

        def load() -> Project | None:
            project = load_next()
            if project is not None:
                loaded.append(project)
            return project

        def change(project: Project) -> Project:
            changed = project
            if update.name is not None:  # null is refused by the input model
                changed = replace(changed, name=update.name)
            if "description" in update.model_fields_set:
                changed = replace(changed, description=update.description or "")
            return project if changed == project else replace(changed, updated_at=now)

        def save(project: Project) -> Project:
            if loaded and project is loaded[-1]:
                return project  # nothing changes: no write, no new version
            return self._projects.save(project)

        saved = update_versioned(load, change, save, expected_version, "project")
        return ProjectWithRole(saved, context.role)

    def delete(
        self, principal: Principal, project_id: str, expected_version: int | None = None
    ) -> None:
        context = self._access.require(principal.user_id, project_id, DELETE_PROJECT_ROLE)
        if context.project.personal:
            raise Conflict("the personal project cannot be deleted")
        load = _first_then(context.project, lambda: self._projects.get(project_id))
        for _ in range(MAX_WRITE_ATTEMPTS):
            current = load()
            if current is None:
                raise NotFound("project not found")
            if expected_version is not None and current.version != expected_version:
                raise PreconditionFailed(
                    f"project is at version {current.version}, not {expected_version}"
                )
            try:
                self._projects.delete(current)
                return
            except StaleVersion:
                if expected_version is not None:
                    raise PreconditionFailed("project was changed concurrently") from None
        raise Conflict("project is being changed concurrently; retry")

    # ---- members -------------------------------------------------------------------------------

    def members(self, principal: Principal, project_id: str, page: PageRequest) -> Page[Membership]:
        self._access.require(principal.user_id, project_id, READ_ROLE)
        return self._projects.members(project_id, page)

    def add_member(self, principal: Principal, project_id: str, command: MemberAdd) -> Membership:
        context = self._access.require(principal.user_id, project_id, MANAGE_MEMBERS_ROLE)
        if context.project.personal:
            raise Conflict("the personal project has no other members")
        if command.user_id is not None:
            user = self._users.get(command.user_id)
        else:
            user = self._users.get_by_email(command.email or "")
        if user is None:
            raise NotFound("user not found")
        membership = Membership(
            project_id=project_id,
            user_id=user.id,
            role=ProjectRole(command.role),
            added_at=self._clock.now(),
            email=user.email,
            name=user.name,
        )
        try:
            self._projects.add_member(membership)
        except MemberExists:
            raise Conflict("the user is already a member of the project") from None
        return membership

    def set_member_role(
        self, principal: Principal, project_id: str, user_id: str, command: MemberRoleUpdate
    ) -> Membership:
        context = self._access.require(principal.user_id, project_id, MANAGE_MEMBERS_ROLE)
        target = self._member(context.membership, project_id, user_id)
        if target.role == ProjectRole.OWNER:
            raise Conflict(OWNER_IS_FIXED)
        changed = replace(target, role=ProjectRole(command.role))
        if changed.role != target.role:
            try:
                self._projects.set_member_role(changed)
            except NotAMember:
                raise NotFound("member not found") from None
        return changed

    def remove_member(self, principal: Principal, project_id: str, user_id: str) -> None:
        leaving = user_id == principal.user_id
        # Anyone may leave; removing someone else takes the right to manage members.
        context = self._access.require(
            principal.user_id, project_id, READ_ROLE if leaving else MANAGE_MEMBERS_ROLE
        )
        target = self._member(context.membership, project_id, user_id)
        if target.role == ProjectRole.OWNER:
            raise Conflict(OWNER_IS_FIXED)
        try:
            self._projects.remove_member(project_id, user_id)
        except NotAMember:
            raise NotFound("member not found") from None

    # ---- helpers -------------------------------------------------------------------------------

    def _user(self, user_id: str) -> User:
        user = self._users.get(user_id)
        if user is None:
            raise NotFound("user not found")
        return user

    def _member(self, mine: Membership, project_id: str, user_id: str) -> Membership:
        """The membership of `user_id` (the caller's own was read already)."""
        if user_id == mine.user_id:
            return mine
        target = self._projects.membership(project_id, user_id)
        if target is None:
            raise NotFound("member not found")
        return target
