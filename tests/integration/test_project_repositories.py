"""One contract suite for the project repository, run on the in-memory fake and on DynamoDB.

Users are created through the user repository, as registration does: that writes each user's
personal project, owner membership and `user_projects` index item.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.dynamodb.identity import DynamoUserRepository, project_to_model
from chalicelib.adapters.dynamodb.models import MembershipModel, ProjectModel, UserProjectsModel
from chalicelib.adapters.dynamodb.projects import DynamoProjectRepository, purge_project
from chalicelib.domain.errors import BadRequest, MemberExists, NotAMember, NotFound, StaleVersion
from chalicelib.domain.model import PageRequest, new_id
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.users import Role, Session, User
from chalicelib.ports import ProjectRepository, UserRepository
from tests.fakes import InMemoryProjectRepository, InMemorySessionRepository, InMemoryUserRepository

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@dataclass
class Repos:
    projects: ProjectRepository
    users: UserRepository
    purge: Callable[[str], int]
    kind: str

    def user(self, email: str) -> User:
        user_id, personal_id = new_id(), new_id()
        user = User(
            id=user_id,
            email=email,
            name=email.split("@")[0].title(),
            role=Role.MEMBER,
            timezone="UTC",
            password_hash="$argon2id$x",
            personal_project_id=personal_id,
            created_at=NOW,
            updated_at=NOW,
        )
        personal = Project(personal_id, "Personal", "", user_id, NOW, NOW, personal=True)
        owner = Membership(personal_id, user_id, ProjectRole.OWNER, NOW, email, user.name)
        session = Session(new_id(), user_id, new_id(), NOW, NOW + timedelta(days=1))
        self.users.create_account(user, personal, owner, session, first_admin=False)
        return user

    def project(self, owner: User, name: str = "Launch") -> Project:
        project = Project(new_id(), name, "Ship it", owner.id, NOW, NOW)
        self.projects.create(project, membership(project, owner, ProjectRole.OWNER))
        return project


def membership(project: Project, user: User, role: ProjectRole) -> Membership:
    return Membership(project.id, user.id, role, NOW, user.email, user.name)


@pytest.fixture(params=["memory", "dynamodb"])
def repos(request: pytest.FixtureRequest) -> Repos:
    if request.param == "memory":
        fake = InMemoryProjectRepository()
        users = InMemoryUserRepository(InMemorySessionRepository(), fake)
        return Repos(fake, users, fake.purge_project, "memory")
    request.getfixturevalue("moto_aws")
    return Repos(DynamoProjectRepository(), DynamoUserRepository(), purge_project, "dynamodb")


class TestProjects:
    def test_create_writes_the_project_the_owner_and_the_index(self, repos: Repos) -> None:
        ada = repos.user("ada@example.com")
        project = repos.project(ada)
        assert repos.projects.get(project.id) == project
        assert repos.projects.membership(project.id, ada.id) == membership(
            project, ada, ProjectRole.OWNER
        )
        assert repos.projects.roles_of(ada.id) == {
            ada.personal_project_id: ProjectRole.OWNER,
            project.id: ProjectRole.OWNER,
        }
        assert repos.projects.get(ada.personal_project_id) == Project(
            ada.personal_project_id, "Personal", "", ada.id, NOW, NOW, personal=True
        )

    def test_unknown_and_impossible_ids_are_not_found(self, repos: Repos) -> None:
        for project_id in ("missing", "x" * 3000, ""):
            assert repos.projects.get(project_id) is None
            assert repos.projects.membership(project_id, "someone") is None
        assert repos.projects.roles_of("nobody") == {}
        assert repos.projects.get_many(["missing", "x" * 3000]) == []

    def test_save_is_conditional_on_the_version(self, repos: Repos) -> None:
        project = repos.project(repos.user("ada@example.com"))
        saved = repos.projects.save(replace(project, name="Renamed", description=""))
        assert saved.version == 2
        assert repos.projects.get(project.id) == saved
        with pytest.raises(StaleVersion):
            repos.projects.save(replace(project, name="Stale"))
        assert repos.projects.get(project.id) == saved

    def test_delete_is_conditional_and_immediate(self, repos: Repos) -> None:
        ada = repos.user("ada@example.com")
        project = repos.project(ada)
        saved = repos.projects.save(replace(project, name="v2"))
        with pytest.raises(StaleVersion):
            repos.projects.delete(project)
        assert repos.projects.get(project.id) == saved
        repos.projects.delete(saved)
        assert repos.projects.get(project.id) is None
        assert repos.projects.get_many([project.id]) == []
        with pytest.raises(StaleVersion):
            repos.projects.delete(saved)
        with pytest.raises(StaleVersion):  # a deleted project cannot be saved back to life
            repos.projects.save(saved)
        assert repos.projects.get(project.id) is None

    def test_get_many_keeps_the_order_asked_and_skips_missing(self, repos: Repos) -> None:
        ada = repos.user("ada@example.com")
        first, second = repos.project(ada, "First"), repos.project(ada, "Second")
        found = repos.projects.get_many([second.id, "missing", first.id, second.id])
        assert [p.name for p in found] == ["Second", "First"]


class TestListForUser:
    def test_pages_by_id_with_the_users_role(self, repos: Repos) -> None:
        ada, bob = repos.user("ada@example.com"), repos.user("bob@example.com")
        mine = [repos.project(ada, f"P{i}") for i in range(3)]
        theirs = repos.project(bob, "Bob's")
        repos.projects.add_member(membership(theirs, ada, ProjectRole.VIEWER))
        expected = sorted(
            [(p.id, ProjectRole.OWNER) for p in mine]
            + [(theirs.id, ProjectRole.VIEWER), (ada.personal_project_id, ProjectRole.OWNER)]
        )
        seen: list[tuple[str, ProjectRole]] = []
        cursor = None
        for _ in range(10):
            page = repos.projects.list_for_user(ada.id, PageRequest(limit=2, cursor=cursor))
            assert len(page.items) <= 2
            seen += [(p.project.id, p.role) for p in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == expected
        whole = repos.projects.list_for_user(ada.id, PageRequest(limit=5))
        assert len(whole.items) == 5
        assert whole.next_cursor is None

    def test_deleted_projects_are_skipped(self, repos: Repos) -> None:
        ada = repos.user("ada@example.com")
        doomed = repos.project(ada, "Doomed")
        repos.projects.delete(doomed)
        page = repos.projects.list_for_user(ada.id, PageRequest())
        assert [p.project.id for p in page.items] == [ada.personal_project_id]
        # The members' index drops it at once; the memberships themselves wait for the purge.
        assert doomed.id not in repos.projects.roles_of(ada.id)

    def test_an_empty_list_and_a_foreign_cursor(self, repos: Repos) -> None:
        ada, bob = repos.user("ada@example.com"), repos.user("bob@example.com")
        repos.project(ada)
        assert repos.projects.list_for_user("nobody", PageRequest()).items == []
        cursor = repos.projects.list_for_user(ada.id, PageRequest(limit=1)).next_cursor
        assert cursor is not None
        with pytest.raises(BadRequest):
            repos.projects.list_for_user(bob.id, PageRequest(limit=1, cursor=cursor))
        with pytest.raises(BadRequest):
            repos.projects.list_for_user(ada.id, PageRequest(limit=1, cursor="not-a-cursor"))


class TestMembers:
    def test_add_member_writes_the_membership_and_the_index(self, repos: Repos) -> None:
        ada, bob = repos.user("ada@example.com"), repos.user("bob@example.com")
        project = repos.project(ada)
        added = membership(project, bob, ProjectRole.ADMIN)
        repos.projects.add_member(added)
        assert repos.projects.membership(project.id, bob.id) == added
        assert repos.projects.roles_of(bob.id)[project.id] == ProjectRole.ADMIN

    def test_adding_twice_is_member_exists_and_keeps_the_first(self, repos: Repos) -> None:
        ada, bob = repos.user("ada@example.com"), repos.user("bob@example.com")
        project = repos.project(ada)
        repos.projects.add_member(membership(project, bob, ProjectRole.VIEWER))
        with pytest.raises(MemberExists):
            repos.projects.add_member(membership(project, bob, ProjectRole.ADMIN))
        with pytest.raises(MemberExists):
            repos.projects.add_member(membership(project, ada, ProjectRole.VIEWER))
        assert repos.projects.membership(project.id, bob.id).role == ProjectRole.VIEWER  # type: ignore[union-attr]
        assert repos.projects.roles_of(bob.id)[project.id] == ProjectRole.VIEWER
        assert repos.projects.roles_of(ada.id)[project.id] == ProjectRole.OWNER

    def test_no_member_joins_a_deleted_project(self, repos: Repos) -> None:
        ada, bob = repos.user("ada@example.com"), repos.user("bob@example.com")
        project = repos.project(ada)
        repos.projects.delete(project)
        with pytest.raises(NotFound):
            repos.projects.add_member(membership(project, bob, ProjectRole.VIEWER))
        assert repos.projects.membership(project.id, bob.id) is None
        assert project.id not in repos.projects.roles_of(bob.id)

    def test_set_member_role_changes_the_membership_and_the_index(self, repos: Repos) -> None:
        ada, bob = repos.user("ada@example.com"), repos.user("bob@example.com")
        project = repos.project(ada)
        repos.projects.add_member(membership(project, bob, ProjectRole.VIEWER))
        repos.projects.set_member_role(membership(project, bob, ProjectRole.MEMBER))
        stored = repos.projects.membership(project.id, bob.id)
        assert stored == membership(project, bob, ProjectRole.MEMBER)
        assert repos.projects.roles_of(bob.id)[project.id] == ProjectRole.MEMBER

    def test_set_role_of_a_non_member_is_not_a_member_and_writes_nothing(
        self, repos: Repos
    ) -> None:
        ada, bob = repos.user("ada@example.com"), repos.user("bob@example.com")
        project = repos.project(ada)
        with pytest.raises(NotAMember):
            repos.projects.set_member_role(membership(project, bob, ProjectRole.ADMIN))
        assert repos.projects.membership(project.id, bob.id) is None
        assert project.id not in repos.projects.roles_of(bob.id)

    def test_remove_member_removes_the_membership_and_the_index_entry(self, repos: Repos) -> None:
        ada, bob = repos.user("ada@example.com"), repos.user("bob@example.com")
        project = repos.project(ada)
        repos.projects.add_member(membership(project, bob, ProjectRole.ADMIN))
        repos.projects.remove_member(project.id, bob.id)
        assert repos.projects.membership(project.id, bob.id) is None
        assert repos.projects.roles_of(bob.id) == {bob.personal_project_id: ProjectRole.OWNER}
        with pytest.raises(NotAMember):
            repos.projects.remove_member(project.id, bob.id)

    def test_members_pages_in_user_id_order(self, repos: Repos) -> None:
        ada = repos.user("ada@example.com")
        project = repos.project(ada)
        others = [repos.user(f"user{i}@example.com") for i in range(4)]
        for other in others:
            repos.projects.add_member(membership(project, other, ProjectRole.VIEWER))
        ids: list[str] = []
        cursor = None
        for _ in range(10):
            page = repos.projects.members(project.id, PageRequest(limit=2, cursor=cursor))
            ids += [m.user_id for m in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert ids == sorted([ada.id, *(o.id for o in others)])
        assert repos.projects.members("missing", PageRequest()).items == []

    def test_a_members_cursor_of_another_project_is_refused(self, repos: Repos) -> None:
        ada, bob = repos.user("ada@example.com"), repos.user("bob@example.com")
        project = repos.project(ada)
        repos.projects.add_member(membership(project, bob, ProjectRole.VIEWER))
        cursor = repos.projects.members(project.id, PageRequest(limit=1)).next_cursor
        assert cursor is not None
        with pytest.raises(BadRequest):
            repos.projects.members(ada.personal_project_id, PageRequest(limit=1, cursor=cursor))


class TestPurge:
    def test_purge_removes_memberships_and_index_entries_of_a_deleted_project(
        self, repos: Repos
    ) -> None:
        ada, bob = repos.user("ada@example.com"), repos.user("bob@example.com")
        project, kept = repos.project(ada), repos.project(ada, "Kept")
        repos.projects.add_member(membership(project, bob, ProjectRole.MEMBER))
        repos.projects.add_member(membership(kept, bob, ProjectRole.VIEWER))
        repos.projects.delete(project)
        assert repos.purge(project.id) == 2
        assert repos.purge(project.id) == 0  # idempotent
        for user in (ada, bob):
            assert repos.projects.membership(project.id, user.id) is None
            assert project.id not in repos.projects.roles_of(user.id)
        assert repos.projects.members(project.id, PageRequest()).items == []
        # Other projects are untouched.
        assert repos.projects.roles_of(bob.id) == {
            bob.personal_project_id: ProjectRole.OWNER,
            kept.id: ProjectRole.VIEWER,
        }
        assert repos.projects.get(kept.id) == kept

    def test_purge_refuses_a_project_that_exists(self, repos: Repos) -> None:
        ada = repos.user("ada@example.com")
        project = repos.project(ada)
        with pytest.raises(ValueError, match="still exists"):
            repos.purge(project.id)
        assert repos.projects.membership(project.id, ada.id) is not None
        assert project.id in repos.projects.roles_of(ada.id)


# ---- DynamoDB only --------------------------------------------------------------------------


def test_a_missing_index_item_fails_the_whole_membership_transaction(moto_aws: None) -> None:
    repos = Repos(DynamoProjectRepository(), DynamoUserRepository(), purge_project, "dynamodb")
    ada, bob = repos.user("ada@example.com"), repos.user("bob@example.com")
    project = repos.project(ada)
    UserProjectsModel(user_id=bob.id).delete()
    with pytest.raises(NotFound):
        repos.projects.add_member(membership(project, bob, ProjectRole.VIEWER))
    assert repos.projects.membership(project.id, bob.id) is None
    assert UserProjectsModel.count(bob.id) == 0  # the update did not create a bare item


def test_purge_pages_through_many_members(moto_aws: None) -> None:
    repos = DynamoProjectRepository()
    project = Project(new_id(), "Big", "", "owner", NOW, NOW)
    user_ids = [new_id() for _ in range(130)]
    with UserProjectsModel.batch_write() as batch:
        for user_id in user_ids:
            batch.save(UserProjectsModel(user_id=user_id, projects={project.id: "viewer"}))
    with MembershipModel.batch_write() as batch:
        for user_id in user_ids:
            batch.save(
                MembershipModel(project_id=project.id, user_id=user_id, role="viewer", added_at=NOW)
            )
    assert purge_project(project.id) == 130
    assert MembershipModel.count(project.id) == 0
    assert all(repos.roles_of(user_id) == {} for user_id in user_ids[::13])


def test_get_many_reads_more_than_one_batch(moto_aws: None) -> None:
    repos = DynamoProjectRepository()
    projects = [Project(new_id(), f"P{i}", "", "owner", NOW, NOW) for i in range(150)]
    with ProjectModel.batch_write() as batch:
        for project in projects:
            batch.save(project_to_model(project))
    wanted = [p.id for p in reversed(projects)]
    assert [p.id for p in repos.get_many(wanted)] == wanted
