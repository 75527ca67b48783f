"""ProjectService on the in-memory fakes: every rule of `domain.projects`, and the role matrix
(owner / admin / member / viewer / stranger) of every operation."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.domain.errors import (
    BadRequest,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    PreconditionFailed,
    StaleVersion,
)
from chalicelib.domain.model import PageRequest
from chalicelib.domain.principals import Principal
from chalicelib.domain.projects import (
    MemberAdd,
    MemberRoleUpdate,
    Project,
    ProjectCreate,
    ProjectRole,
    ProjectUpdate,
)
from chalicelib.domain.users import RegisterInput
from chalicelib.services.access import ProjectAccess
from chalicelib.services.projects import ProjectService
from tests.fakes import InMemoryProjectRepository
from tests.unit.conftest import World

PASSWORD = "correct horse battery"
ROLES = ("owner", "admin", "member", "viewer", "stranger")


@dataclass
class Team:
    """A project with one user of each role, a stranger, and a spare viewer to act upon."""

    service: ProjectService
    repo: InMemoryProjectRepository
    world: World
    project: Project
    people: dict[str, Principal]
    target: Principal  # another viewer: the one members are managed on
    newcomer: Principal  # registered, in no project but their own

    def __getitem__(self, role: str) -> Principal:
        return self.people[role]


def register(world: World, email: str, name: str = "Someone") -> Principal:
    result = world.auth.register(RegisterInput(email=email, password=PASSWORD, name=name))
    return world.auth.authenticate(result.access_token)


def make_service(world: World) -> ProjectService:
    repo = world.users_repo.project_repo
    return ProjectService(repo, world.users_repo, ProjectAccess(repo), world.clock)


@pytest.fixture
def service(world: World) -> ProjectService:
    return make_service(world)


@pytest.fixture
def team(world: World, service: ProjectService) -> Team:
    owner = register(world, "owner@example.com", "Olive")
    project = service.create(owner, ProjectCreate(name="Launch", description="Ship it")).project
    people = {"owner": owner}
    for role in ("admin", "member", "viewer"):
        people[role] = register(world, f"{role}@example.com")
        service.add_member(owner, project.id, MemberAdd(user_id=people[role].user_id, role=role))
    people["stranger"] = register(world, "stranger@example.com")
    target = register(world, "target@example.com")
    service.add_member(owner, project.id, MemberAdd(user_id=target.user_id, role="viewer"))
    newcomer = register(world, "newcomer@example.com")
    return Team(service, world.users_repo.project_repo, world, project, people, target, newcomer)


def outcome(action: Any) -> type[DomainError] | str:
    try:
        action()
    except DomainError as exc:
        return type(exc)
    return "ok"


class TestInput:
    def test_name_is_1_to_100_characters_after_stripping(self) -> None:
        assert ProjectCreate(name="  Launch  ").name == "Launch"
        for name in ("", "   ", "x" * 101):
            with pytest.raises(ValidationError):
                ProjectCreate(name=name)
        assert ProjectCreate(name="x" * 100).description is None

    def test_description_is_at_most_2000_characters(self) -> None:
        assert ProjectCreate(name="a", description="d" * 2000).description == "d" * 2000
        with pytest.raises(ValidationError):
            ProjectCreate(name="a", description="d" * 2001)

    def test_update_refuses_a_null_name_but_null_clears_the_description(self) -> None:
        with pytest.raises(ValidationError):
            ProjectUpdate.model_validate({"name": None})
        update = ProjectUpdate.model_validate({"description": None})
        assert update.model_fields_set == {"description"}

    @pytest.mark.parametrize(
        "field", ["id", "owner_id", "my_role", "created_at", "updated_at", "version", "colour"]
    )
    def test_update_rejects_read_only_and_unknown_fields(self, field: str) -> None:
        with pytest.raises(ValidationError):
            ProjectUpdate.model_validate({field: "x"})

    def test_member_add_needs_exactly_one_of_email_and_user_id(self) -> None:
        assert MemberAdd.model_validate({"email": "A@Example.com", "role": "admin"}).email == (
            "a@example.com"
        )
        for body in (
            {"role": "admin"},
            {"email": "a@example.com", "user_id": "u1", "role": "admin"},
            {"email": "not an email", "role": "admin"},
            {"user_id": "", "role": "admin"},
        ):
            with pytest.raises(ValidationError):
                MemberAdd.model_validate(body)

    @pytest.mark.parametrize("role", ["owner", "root", None])
    def test_owner_and_unknown_roles_cannot_be_granted(self, role: Any) -> None:
        with pytest.raises(ValidationError):
            MemberAdd.model_validate({"user_id": "u1", "role": role})
        with pytest.raises(ValidationError):
            MemberRoleUpdate.model_validate({"role": role})


class TestCreateAndList:
    def test_the_creator_is_owner_with_a_membership_copying_their_profile(
        self, world: World, service: ProjectService
    ) -> None:
        me = register(world, "ada@example.com", "Ada")
        created = service.create(me, ProjectCreate(name="Launch"))
        assert created.role == ProjectRole.OWNER
        assert (created.project.owner_id, created.project.version) == (me.user_id, 1)
        assert created.project.description == ""
        assert not created.project.personal
        member = world.users_repo.project_repo.membership(created.project.id, me.user_id)
        assert member is not None
        assert (member.role, member.email, member.name) == (
            ProjectRole.OWNER,
            "ada@example.com",
            "Ada",
        )
        assert service.get(me, created.project.id) == created

    def test_list_pages_my_projects_in_id_order_with_my_role(self, team: Team) -> None:
        viewer = team["viewer"]
        second = team.service.create(team["owner"], ProjectCreate(name="Second")).project
        team.service.add_member(
            team["owner"], second.id, MemberAdd(user_id=viewer.user_id, role="admin")
        )
        seen: list[tuple[str, str, ProjectRole]] = []
        cursor = None
        while True:
            page = team.service.list_mine(viewer, PageRequest(limit=1, cursor=cursor))
            assert len(page.items) == 1
            seen += [(p.project.id, p.project.name, p.role) for p in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert [s[0] for s in seen] == sorted(s[0] for s in seen)
        assert {s[1:] for s in seen} == {
            ("Personal", ProjectRole.OWNER),
            ("Launch", ProjectRole.VIEWER),
            ("Second", ProjectRole.ADMIN),
        }
        assert len(seen) == 3

    def test_deleted_projects_are_not_listed_and_strangers_see_only_theirs(
        self, team: Team
    ) -> None:
        team.service.delete(team["owner"], team.project.id)
        names = [
            p.project.name for p in team.service.list_mine(team["viewer"], PageRequest()).items
        ]
        assert names == ["Personal"]
        stranger = team.service.list_mine(team["stranger"], PageRequest())
        assert [p.project.name for p in stranger.items] == ["Personal"]
        assert stranger.next_cursor is None

    def test_a_cursor_of_another_users_list_is_refused(self, team: Team) -> None:
        page = team.service.list_mine(team["viewer"], PageRequest(limit=1))
        assert page.next_cursor is not None
        with pytest.raises(BadRequest):
            team.service.list_mine(team["admin"], PageRequest(limit=1, cursor=page.next_cursor))


class TestUpdate:
    def test_absent_fields_keep_null_clears_the_description(self, team: Team) -> None:
        owner, pid = team["owner"], team.project.id
        renamed = team.service.update(owner, pid, ProjectUpdate(name="Renamed"))
        assert (renamed.project.name, renamed.project.description) == ("Renamed", "Ship it")
        assert renamed.project.version == 2
        cleared = team.service.update(
            owner, pid, ProjectUpdate.model_validate({"description": None})
        )
        assert (cleared.project.name, cleared.project.description) == ("Renamed", "")
        assert cleared.project.version == 3

    def test_updated_at_moves_created_at_and_owner_do_not(self, team: Team) -> None:
        team.world.clock.advance(minutes=5)
        updated = team.service.update(team["admin"], team.project.id, ProjectUpdate(name="N"))
        assert updated.project.updated_at == team.world.clock.now()
        assert updated.project.created_at == team.project.created_at
        assert updated.project.owner_id == team["owner"].user_id
        assert updated.role == ProjectRole.ADMIN

    def test_an_update_that_changes_nothing_writes_nothing(self, team: Team) -> None:
        same = team.service.update(team["owner"], team.project.id, ProjectUpdate(name="Launch"))
        assert same.project == team.project
        empty = team.service.update(team["owner"], team.project.id, ProjectUpdate())
        assert empty.project.version == 1

    def test_if_match_stale_is_412_and_nothing_changes(self, team: Team) -> None:
        owner, pid = team["owner"], team.project.id
        team.service.update(owner, pid, ProjectUpdate(name="Two"), expected_version=1)
        with pytest.raises(PreconditionFailed):
            team.service.update(owner, pid, ProjectUpdate(name="Stale"), expected_version=1)
        with pytest.raises(PreconditionFailed):  # even when nothing would change
            team.service.update(owner, pid, ProjectUpdate(), expected_version=1)
        assert team.service.get(owner, pid).project.name == "Two"

    def test_a_lost_race_applies_to_the_current_version_without_if_match(
        self, team: Team, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real_save = team.repo.save
        raced: list[int] = []

        def save_after_someone_else(project: Project) -> Project:
            if not raced:
                current = team.repo.get(project.id)
                assert current is not None
                raced.append(real_save(replace(current, description="theirs")).version)
            return real_save(project)

        monkeypatch.setattr(team.repo, "save", save_after_someone_else)
        saved = team.service.update(team["owner"], team.project.id, ProjectUpdate(name="Mine"))
        assert (saved.project.name, saved.project.description) == ("Mine", "theirs")
        assert saved.project.version == 3

    def test_a_lost_race_with_if_match_is_412(
        self, team: Team, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def always_stale(project: Project) -> Project:
            raise StaleVersion(project.id)

        monkeypatch.setattr(team.repo, "save", always_stale)
        with pytest.raises(PreconditionFailed):
            team.service.update(team["owner"], team.project.id, ProjectUpdate(name="X"), 1)
        with pytest.raises(Conflict):  # without If-Match: retried a few times, then 409
            team.service.update(team["owner"], team.project.id, ProjectUpdate(name="X"))

    def test_the_personal_project_can_be_renamed(
        self, world: World, service: ProjectService
    ) -> None:
        me = register(world, "ada@example.com")
        personal = world.users_repo.get(me.user_id)
        assert personal is not None
        renamed = service.update(me, personal.personal_project_id, ProjectUpdate(name="Mine"))
        assert renamed.project.personal
        assert renamed.project.name == "Mine"


class TestDelete:
    def test_delete_hides_the_project_from_every_member_at_once(self, team: Team) -> None:
        team.service.delete(team["owner"], team.project.id, expected_version=1)
        for role in ("owner", "admin", "member", "viewer"):
            with pytest.raises(NotFound):
                team.service.get(team[role], team.project.id)
            with pytest.raises(NotFound):
                team.service.members(team[role], team.project.id, PageRequest())
        with pytest.raises(NotFound):
            team.service.delete(team["owner"], team.project.id)
        # Its memberships stay until the purge, invisible; the purge removes them.
        assert team.repo.purge_project(team.project.id) == 5
        assert team.repo.roles_of(team["viewer"].user_id) == {
            team.world.users_repo.get(team["viewer"].user_id).personal_project_id: ProjectRole.OWNER  # type: ignore[union-attr]
        }

    def test_the_personal_project_cannot_be_deleted(
        self, world: World, service: ProjectService
    ) -> None:
        me = register(world, "ada@example.com")
        user = world.users_repo.get(me.user_id)
        assert user is not None
        with pytest.raises(Conflict):
            service.delete(me, user.personal_project_id)
        assert service.get(me, user.personal_project_id).project.personal

    def test_stale_if_match_is_412_and_the_project_stays(self, team: Team) -> None:
        team.service.update(team["owner"], team.project.id, ProjectUpdate(name="v2"))
        with pytest.raises(PreconditionFailed):
            team.service.delete(team["owner"], team.project.id, expected_version=1)
        assert team.service.get(team["owner"], team.project.id).project.version == 2
        team.service.delete(team["owner"], team.project.id, expected_version=2)
        with pytest.raises(NotFound):
            team.service.get(team["owner"], team.project.id)

    def test_a_lost_race_is_retried_without_if_match_and_412_with_it(
        self, team: Team, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real_delete = team.repo.delete
        attempts: list[int] = []

        def stale_once(project: Project) -> None:
            attempts.append(project.version)
            if len(attempts) == 1:
                team.repo.save(project)  # someone else's update wins the race
            real_delete(project)

        monkeypatch.setattr(team.repo, "delete", stale_once)
        with pytest.raises(PreconditionFailed):
            team.service.delete(team["owner"], team.project.id, expected_version=1)
        attempts.clear()
        team.service.delete(team["owner"], team.project.id)
        assert attempts == [2, 3]
        with pytest.raises(NotFound):
            team.service.get(team["owner"], team.project.id)


class TestMembers:
    def test_add_by_email_copies_the_profile(self, team: Team) -> None:
        newcomer = register(team.world, "new@example.com", "Newt")
        added = team.service.add_member(
            team["admin"], team.project.id, MemberAdd(email="NEW@example.com", role="member")
        )
        assert (added.user_id, added.email, added.name) == (
            newcomer.user_id,
            "new@example.com",
            "Newt",
        )
        assert added.added_at == team.world.clock.now()
        assert team.service.get(newcomer, team.project.id).role == ProjectRole.MEMBER
        assert team.repo.roles_of(newcomer.user_id)[team.project.id] == ProjectRole.MEMBER

    def test_members_pages_everyone(self, team: Team) -> None:
        seen: list[str] = []
        cursor = None
        while True:
            page = team.service.members(team["viewer"], team.project.id, PageRequest(2, cursor))
            seen += [m.email for m in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(seen) == sorted(
            f"{r}@example.com" for r in ("owner", "admin", "member", "viewer", "target")
        )

    @pytest.mark.parametrize(
        "body", [{"user_id": "nobody"}, {"email": "nobody@example.com"}], ids=["id", "email"]
    )
    def test_an_unknown_user_is_404(self, team: Team, body: dict[str, str]) -> None:
        with pytest.raises(NotFound):
            team.service.add_member(
                team["owner"], team.project.id, MemberAdd.model_validate({**body, "role": "viewer"})
            )

    def test_adding_a_member_twice_is_409(self, team: Team) -> None:
        for who in ("member", "owner"):
            with pytest.raises(Conflict):
                team.service.add_member(
                    team["owner"],
                    team.project.id,
                    MemberAdd(user_id=team[who].user_id, role="admin"),
                )
        assert team.service.get(team["member"], team.project.id).role == ProjectRole.MEMBER

    def test_the_personal_project_has_no_other_members(self, team: Team) -> None:
        owner = team.world.users_repo.get(team["owner"].user_id)
        assert owner is not None
        with pytest.raises(Conflict):
            team.service.add_member(
                team["owner"],
                owner.personal_project_id,
                MemberAdd(user_id=team["admin"].user_id, role="viewer"),
            )
        with pytest.raises(NotFound):
            team.service.get(team["admin"], owner.personal_project_id)

    def test_a_project_deleted_meanwhile_takes_no_new_member(self, team: Team) -> None:
        team.repo.delete(team.project)
        with pytest.raises(NotFound):
            team.service.add_member(
                team["owner"],
                team.project.id,
                MemberAdd(user_id=team["stranger"].user_id, role="viewer"),
            )

    def test_set_role_changes_what_the_member_may_do(self, team: Team) -> None:
        pid, viewer = team.project.id, team["viewer"]
        with pytest.raises(Forbidden):
            team.service.update(viewer, pid, ProjectUpdate(name="No"))
        changed = team.service.set_member_role(
            team["owner"], pid, viewer.user_id, MemberRoleUpdate(role="admin")
        )
        assert changed.role == ProjectRole.ADMIN
        assert team.service.update(viewer, pid, ProjectUpdate(name="Yes")).role == ProjectRole.ADMIN
        assert team.repo.roles_of(viewer.user_id)[pid] == ProjectRole.ADMIN

    def test_an_admin_may_demote_itself(self, team: Team) -> None:
        admin = team["admin"]
        team.service.set_member_role(
            admin, team.project.id, admin.user_id, MemberRoleUpdate(role="viewer")
        )
        with pytest.raises(Forbidden):
            team.service.add_member(
                admin, team.project.id, MemberAdd(user_id=team["stranger"].user_id, role="viewer")
            )

    def test_roles_of_non_members_are_404(self, team: Team) -> None:
        with pytest.raises(NotFound):
            team.service.set_member_role(
                team["owner"],
                team.project.id,
                team["stranger"].user_id,
                MemberRoleUpdate(role="admin"),
            )
        with pytest.raises(NotFound):
            team.service.remove_member(team["owner"], team.project.id, team["stranger"].user_id)
        with pytest.raises(NotFound):
            team.service.remove_member(team["owner"], team.project.id, "x" * 500)

    def test_removed_members_lose_sight_of_the_project(self, team: Team) -> None:
        team.service.remove_member(team["admin"], team.project.id, team["member"].user_id)
        with pytest.raises(NotFound):
            team.service.get(team["member"], team.project.id)
        assert team.project.id not in team.repo.roles_of(team["member"].user_id)
        names = [
            p.project.name for p in team.service.list_mine(team["member"], PageRequest()).items
        ]
        assert names == ["Personal"]

    @pytest.mark.parametrize("role", ["admin", "member", "viewer"])
    def test_members_but_the_owner_may_leave(self, team: Team, role: str) -> None:
        team.service.remove_member(team[role], team.project.id, team[role].user_id)
        with pytest.raises(NotFound):
            team.service.get(team[role], team.project.id)

    def test_the_owner_cannot_leave_be_removed_or_change_role(self, team: Team) -> None:
        owner, pid = team["owner"], team.project.id
        for caller in ("owner", "admin"):
            with pytest.raises(Conflict):
                team.service.remove_member(team[caller], pid, owner.user_id)
            with pytest.raises(Conflict):
                team.service.set_member_role(
                    team[caller], pid, owner.user_id, MemberRoleUpdate(role="admin")
                )
        assert team.service.get(owner, pid).role == ProjectRole.OWNER


class TestRoleMatrix:
    """Each operation by each role: "ok", or the error it must raise."""

    EXPECTED: dict[str, tuple[Any, ...]] = {
        #                owner      admin      member     viewer     stranger
        "get":          ("ok",      "ok",      "ok",      "ok",      NotFound),
        "members":      ("ok",      "ok",      "ok",      "ok",      NotFound),
        "update":       ("ok",      "ok",      Forbidden, Forbidden, NotFound),
        "delete":       ("ok",      Forbidden, Forbidden, Forbidden, NotFound),
        "add_member":   ("ok",      "ok",      Forbidden, Forbidden, NotFound),
        "set_role":     ("ok",      "ok",      Forbidden, Forbidden, NotFound),
        "remove":       ("ok",      "ok",      Forbidden, Forbidden, NotFound),
        "leave":        (Conflict,  "ok",      "ok",      "ok",      NotFound),
        "own_role":     (Conflict,  "ok",      Forbidden, Forbidden, NotFound),
        "owner_role":   (Conflict,  Conflict,  Forbidden, Forbidden, NotFound),
        "remove_owner": (Conflict,  Conflict,  Forbidden, Forbidden, NotFound),
    }  # fmt: skip

    def run(self, team: Team, operation: str, who: Principal) -> Any:
        pid, service = team.project.id, team.service
        owner_id, target_id = team["owner"].user_id, team.target.user_id
        return {
            "get": lambda: service.get(who, pid),
            "members": lambda: service.members(who, pid, PageRequest()),
            "update": lambda: service.update(who, pid, ProjectUpdate(name="Changed")),
            "delete": lambda: service.delete(who, pid),
            "add_member": lambda: service.add_member(
                who, pid, MemberAdd(user_id=team.newcomer.user_id, role="member")
            ),
            "set_role": lambda: service.set_member_role(
                who, pid, target_id, MemberRoleUpdate(role="member")
            ),
            "remove": lambda: service.remove_member(who, pid, target_id),
            "leave": lambda: service.remove_member(who, pid, who.user_id),
            "own_role": lambda: service.set_member_role(
                who, pid, who.user_id, MemberRoleUpdate(role="viewer")
            ),
            "owner_role": lambda: service.set_member_role(
                who, pid, owner_id, MemberRoleUpdate(role="admin")
            ),
            "remove_owner": lambda: service.remove_member(who, pid, owner_id),
        }[operation]

    @pytest.mark.parametrize("operation", sorted(EXPECTED))
    @pytest.mark.parametrize("role", ROLES)
    def test_role_matrix(self, team: Team, operation: str, role: str) -> None:
        expected = self.EXPECTED[operation][ROLES.index(role)]
        assert outcome(self.run(team, operation, team[role])) == expected

    def test_a_failed_operation_changes_nothing(self, team: Team) -> None:
        before = (dict(team.repo.projects), dict(team.repo.memberships))
        for operation in sorted(self.EXPECTED):
            for role in ("member", "viewer", "stranger"):
                if self.EXPECTED[operation][ROLES.index(role)] != "ok":
                    outcome(self.run(team, operation, team[role]))
        assert (dict(team.repo.projects), dict(team.repo.memberships)) == before
