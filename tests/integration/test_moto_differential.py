"""Every transaction shape the DynamoDB adapters send ends the same on stock moto and on moto
with `local.moto_patches`, so the concurrency and fault tests (which run on the patches) test
DynamoDB's semantics as moto knows them, not our patch.

While a case runs, each TransactWriteItems request runs twice from the same state: stock moto's
on a copy of the tables, then the patched one on the tables themselves. Both must end alike:
success with the same items in every table the request names, or the same error with the same
cancellation reasons (code, message, item) in order. Each case drives the real adapter methods,
in the success case and in each of its failure cases, and names the reasons it expects, so it
fails if it no longer reaches the shape it is about.

No known difference: for every shape below stock moto already follows DynamoDB's documented
semantics on one thread (conditions on the state before the transaction, all or nothing, one
reason per item); the patch changes what other threads see meanwhile, not the outcome.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.dynamodb.comments import DynamoCommentRepository
from chalicelib.adapters.dynamodb.identity import DynamoUserRepository
from chalicelib.adapters.dynamodb.projects import DynamoProjectRepository
from chalicelib.adapters.dynamodb.tasks import DynamoTaskRepository
from chalicelib.adapters.dynamodb.templates import DynamoTemplateRepository
from chalicelib.domain.activity import EventType, HistoryEvent
from chalicelib.domain.comments import Comment
from chalicelib.domain.errors import (
    EmailTaken,
    FirstAdminTaken,
    MemberExists,
    NotAMember,
    NotFound,
    StaleVersion,
)
from chalicelib.domain.model import new_id
from chalicelib.domain.projects import Membership, Project, ProjectRole
from chalicelib.domain.tasks import Status, Task
from chalicelib.domain.users import Role, Session, User
from local import moto_patches
from tests.integration.test_templates_repositories import template

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PASSED, FAILED = "None", "ConditionalCheckFailed"  # moto's codes of a transaction's items

Outcome = tuple[Any, ...]  # ("ok",), or (error type, its cancellation reasons or message)


@dataclass
class Run:
    """One TransactWriteItems request, on stock moto and on the patched one."""

    shape: list[str]  # "<operation> <table>", in the order sent
    stock: Outcome
    patched: Outcome
    stock_items: dict[str, list[str]]
    patched_items: dict[str, list[str]]

    @property
    def codes(self) -> list[str] | None:
        """The cancellation reasons' codes in order (as the patched run gave them), or None."""
        if self.patched[0] != "TransactionCanceledException":
            return None
        return [reason["Code"] for reason in self.patched[1]]


@dataclass
class Differential:
    stock: Callable[..., None]
    patched: Callable[..., None]
    runs: list[Run] = field(default_factory=list)

    def transact_write_items(self, backend: Any, transact_items: list[dict[str, Any]]) -> None:
        shadow = copy.copy(backend)
        shadow.tables = copy.deepcopy(backend.tables)
        stock_outcome, _ = _outcome(lambda: self.stock(shadow, transact_items))
        patched_outcome, error = _outcome(lambda: self.patched(backend, transact_items))
        names = {op["TableName"] for item in transact_items for op in item.values()}
        self.runs.append(
            Run(
                shape=[
                    f"{kind} {op['TableName']}" for i in transact_items for kind, op in i.items()
                ],
                stock=stock_outcome,
                patched=patched_outcome,
                stock_items=_items(shadow, names),
                patched_items=_items(backend, names),
            )
        )
        if error is not None:
            raise error

    def assert_alike(self) -> None:
        assert self.runs, "the case sent no transaction"
        for run in self.runs:
            assert run.patched == run.stock, run.shape
            assert run.patched_items == run.stock_items, run.shape


def _outcome(call: Callable[[], None]) -> tuple[Outcome, Exception | None]:
    try:
        call()
    except Exception as error:  # moto's errors: compared, then passed on to the caller
        description = json.loads(getattr(error, "description", "null") or "null")
        if isinstance(description, dict) and "CancellationReasons" in description:
            return (type(error).__name__, description["CancellationReasons"]), error
        return (type(error).__name__, str(error)), error
    return ("ok",), None


def _items(backend: Any, table_names: set[str]) -> dict[str, list[str]]:
    return {
        name: sorted(
            json.dumps(item.to_json()["Attributes"], sort_keys=True)
            for item in backend.tables[name].all_items()
        )
        for name in sorted(table_names)
        if name in backend.tables
    }


@pytest.fixture
def differential(moto_aws: None) -> Iterator[Differential]:
    from moto.dynamodb.models import DynamoDBBackend

    stock = DynamoDBBackend.transact_write_items
    assert stock.__module__ == "moto.dynamodb.models", "moto is patched already"
    with moto_patches.installed():
        patched = DynamoDBBackend.transact_write_items
        assert patched is not stock
        oracle = Differential(stock, patched)

        def both(backend: Any, transact_items: list[dict[str, Any]]) -> None:
            oracle.transact_write_items(backend, transact_items)

        DynamoDBBackend.transact_write_items = both  # type: ignore[assignment,method-assign]
        try:
            yield oracle
        finally:
            DynamoDBBackend.transact_write_items = patched  # type: ignore[method-assign]


# ---- the world a case starts from ----------------------------------------------------------


@dataclass
class Account:
    user: User
    project: Project


def account(first_admin: bool = False, email: str | None = None) -> Account:
    user_id, project_id = new_id(), new_id()
    user = User(
        user_id, email or f"{user_id}@x.io", "N", Role.MEMBER, "UTC", "h", project_id, NOW, NOW
    )
    project = Project(project_id, "Personal", "", user_id, NOW, NOW, personal=True)
    owner = Membership(project_id, user_id, ProjectRole.OWNER, NOW)
    session = Session(new_id(), user_id, new_id(), NOW, NOW + timedelta(days=1))
    DynamoUserRepository().create_account(user, project, owner, session, first_admin=first_admin)
    return Account(user, project)


def team_project(owner: Account) -> Project:
    project = Project(new_id(), "Team", "", owner.user.id, NOW, NOW)
    DynamoProjectRepository().create(
        project, Membership(project.id, owner.user.id, ProjectRole.OWNER, NOW)
    )
    return project


def task(project_id: str, **fields: Any) -> Task:
    return Task(
        id=new_id(),
        project_id=project_id,
        title="T",
        created_by="u",
        created_at=NOW,
        updated_at=NOW,
        **fields,
    )


def created(task_: Task) -> Task:
    tasks = DynamoTaskRepository()
    tasks.create(task_, tasks.graph(task_.project_id))
    stored = tasks.get(task_.id)
    assert stored is not None
    return stored


def history(task_id: str) -> HistoryEvent:
    return HistoryEvent(new_id(), task_id, EventType.TASK_UPDATED, "u", NOW, {"title": ("a", "b")})


# ---- the cases: (what the adapter call does, the codes of its last transaction) --------------


def register() -> None:
    account()


def register_first_admin() -> None:
    account(first_admin=True)


def register_taken_email() -> None:
    account(email="ada@x.io")
    with pytest.raises(EmailTaken):
        account(email="ada@x.io")


def register_second_first_admin() -> None:
    account(first_admin=True)
    with pytest.raises(FirstAdminTaken):
        account(first_admin=True)


def create_project() -> None:
    team_project(account())


def create_project_of_unknown_user() -> None:
    project = Project(new_id(), "Team", "", new_id(), NOW, NOW)
    with pytest.raises(NotFound):
        DynamoProjectRepository().create(
            project, Membership(project.id, project.owner_id, ProjectRole.OWNER, NOW)
        )


def add_member() -> None:
    project = team_project(account())
    DynamoProjectRepository().add_member(
        Membership(project.id, account().user.id, ProjectRole.MEMBER, NOW)
    )


def add_member_twice() -> None:
    project, member = team_project(account()), account()
    membership = Membership(project.id, member.user.id, ProjectRole.MEMBER, NOW)
    DynamoProjectRepository().add_member(membership)
    with pytest.raises(MemberExists):
        DynamoProjectRepository().add_member(membership)


def add_member_to_deleted_project() -> None:
    with pytest.raises(NotFound):
        DynamoProjectRepository().add_member(
            Membership(new_id(), account().user.id, ProjectRole.MEMBER, NOW)
        )


def set_member_role() -> None:
    project, member = team_project(account()), account()
    DynamoProjectRepository().add_member(
        Membership(project.id, member.user.id, ProjectRole.MEMBER, NOW)
    )
    DynamoProjectRepository().set_member_role(
        Membership(project.id, member.user.id, ProjectRole.ADMIN, NOW)
    )


def set_role_of_non_member() -> None:
    project = team_project(account())
    with pytest.raises(NotAMember):
        DynamoProjectRepository().set_member_role(
            Membership(project.id, account().user.id, ProjectRole.ADMIN, NOW)
        )


def remove_member() -> None:
    project, member = team_project(account()), account()
    DynamoProjectRepository().add_member(
        Membership(project.id, member.user.id, ProjectRole.MEMBER, NOW)
    )
    DynamoProjectRepository().remove_member(project.id, member.user.id)


def remove_non_member() -> None:
    project = team_project(account())
    with pytest.raises(NotAMember):
        DynamoProjectRepository().remove_member(project.id, account().user.id)


def delete_project() -> None:
    DynamoProjectRepository().delete(team_project(account()))


def delete_project_at_stale_version() -> None:
    project = team_project(account())
    with pytest.raises(StaleVersion):
        DynamoProjectRepository().delete(replace(project, version=7))


def create_subtask_with_dependency_and_history() -> None:
    project_id = account().project.id
    parent, dependency = created(task(project_id)), created(task(project_id))
    tasks = DynamoTaskRepository()
    subtask = task(project_id, parent_id=parent.id, depends_on=(dependency.id,))
    tasks.create(subtask, tasks.graph(project_id), [history(subtask.id)])


def create_task_in_deleted_project() -> None:
    tasks, orphan = DynamoTaskRepository(), task(new_id())
    with pytest.raises(NotFound):
        tasks.create(orphan, tasks.graph(orphan.project_id))


def create_subtask_of_deleted_parent() -> None:
    project_id = account().project.id
    tasks = DynamoTaskRepository()
    with pytest.raises(NotFound):
        tasks.create(task(project_id, parent_id=new_id()), None)


def update_task_moving_and_closing_it() -> None:
    project_id = account().project.id
    old_parent, new_parent = created(task(project_id)), created(task(project_id))
    before = created(task(project_id, parent_id=old_parent.id))
    after = before.with_changes(parent_id=new_parent.id, status=Status.COMPLETED)
    tasks = DynamoTaskRepository()
    tasks.update(before, after, tasks.graph(project_id), [history(before.id)])


def update_task_at_stale_version() -> None:
    project_id = account().project.id
    before = created(task(project_id))
    tasks = DynamoTaskRepository()
    tasks.update(before, before.with_changes(title="First"), None)
    with pytest.raises(StaleVersion):
        tasks.update(before, before.with_changes(title="Second"), None)


def delete_task_with_subtask_and_dependent() -> None:
    project_id = account().project.id
    doomed = created(task(project_id))
    created(task(project_id, parent_id=doomed.id))
    created(task(project_id, depends_on=(doomed.id,)))
    tasks = DynamoTaskRepository()
    stored = tasks.get(doomed.id)
    assert stored is not None
    tasks.delete(stored, tasks.graph(project_id), [history(doomed.id)])


def delete_task_at_stale_version() -> None:
    project_id = account().project.id
    doomed = created(task(project_id))
    tasks = DynamoTaskRepository()
    with pytest.raises(StaleVersion):
        tasks.delete(replace(doomed, version=7), tasks.graph(project_id))


def comment() -> None:
    commented = created(task(account().project.id))
    DynamoCommentRepository().add(
        Comment(new_id(), commented.id, commented.project_id, "u", "hi", NOW),
        [history(commented.id)],
    )


def comment_on_deleted_task() -> None:
    project_id = account().project.id
    with pytest.raises(NotFound):
        DynamoCommentRepository().add(Comment(new_id(), new_id(), project_id, "u", "hi", NOW))


def create_template() -> None:
    DynamoTemplateRepository().create(template(account().project.id))


def create_template_in_deleted_project() -> None:
    with pytest.raises(NotFound):
        DynamoTemplateRepository().create(template(new_id()))


def update_template() -> None:
    templates = DynamoTemplateRepository()
    before = templates.create(template(account().project.id))
    templates.update(before, before.with_changes(name="New"))


def update_template_at_stale_version() -> None:
    templates = DynamoTemplateRepository()
    before = templates.create(template(account().project.id))
    templates.update(before, before.with_changes(name="First"))
    with pytest.raises(StaleVersion):
        templates.update(before, before.with_changes(name="Second"))


CASES: dict[str, tuple[Callable[[], None], list[str] | None]] = {
    # create_account: puts of the email claim, [the first-admin claim,] user, project,
    # membership, user index, session.
    "register": (register, None),
    "register_first_admin": (register_first_admin, None),
    "register_taken_email": (register_taken_email, [FAILED] + [PASSED] * 5),
    "register_second_first_admin": (
        register_second_first_admin,
        [PASSED, FAILED] + [PASSED] * 5,
    ),
    # project create: puts of the project and membership, the user index's update.
    "create_project": (create_project, None),
    "create_project_of_unknown_user": (create_project_of_unknown_user, [PASSED, PASSED, FAILED]),
    # add_member: the project's check, the membership's put, the user index's update.
    "add_member": (add_member, None),
    "add_member_twice": (add_member_twice, [PASSED, FAILED, PASSED]),
    "add_member_to_deleted_project": (add_member_to_deleted_project, [FAILED, PASSED, PASSED]),
    # set_member_role: updates of the membership and the user index.
    "set_member_role": (set_member_role, None),
    "set_role_of_non_member": (set_role_of_non_member, [FAILED, PASSED]),
    # remove_member: the membership's delete, the user index's update.
    "remove_member": (remove_member, None),
    "remove_non_member": (remove_non_member, [FAILED, PASSED]),
    # project delete: the project's delete at its version, each member's index update.
    "delete_project": (delete_project, None),
    "delete_project_at_stale_version": (delete_project_at_stale_version, [FAILED, PASSED]),
    # task create: the project's check; puts of the task, [the graph,] [history]; [the
    # parent's update].
    "create_subtask_with_dependency_and_history": (
        create_subtask_with_dependency_and_history,
        None,
    ),
    "create_task_in_deleted_project": (create_task_in_deleted_project, [FAILED, PASSED, PASSED]),
    "create_subtask_of_deleted_parent": (
        create_subtask_of_deleted_parent,
        [PASSED, PASSED, FAILED],
    ),
    # task update: the project's check; puts of the graph and history; updates of the task at
    # its version, the old parent and the new one.
    "update_task_moving_and_closing_it": (update_task_moving_and_closing_it, None),
    "update_task_at_stale_version": (update_task_at_stale_version, [PASSED, FAILED]),
    # task delete: deletes of the task at its version and its subtasks; puts of the graph and
    # history; the dependents' updates.
    "delete_task_with_subtask_and_dependent": (delete_task_with_subtask_and_dependent, None),
    "delete_task_at_stale_version": (delete_task_at_stale_version, [FAILED, PASSED]),
    # comment: checks of the project and the task; puts of the comment and history.
    "comment": (comment, None),
    "comment_on_deleted_task": (comment_on_deleted_task, [PASSED, FAILED, PASSED]),
    # a project's item (templates, workflows, rules): the project's check; the item's put,
    # new or at its version.
    "create_template": (create_template, None),
    "create_template_in_deleted_project": (create_template_in_deleted_project, [FAILED, PASSED]),
    "update_template": (update_template, None),
    "update_template_at_stale_version": (update_template_at_stale_version, [PASSED, FAILED]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_stock_and_patched_moto_end_alike(differential: Differential, name: str) -> None:
    case, codes = CASES[name]
    case()
    differential.assert_alike()
    assert differential.runs[-1].codes == codes
