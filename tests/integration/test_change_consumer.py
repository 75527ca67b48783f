"""The stream consumer cleans up after deletions: a deleted project's memberships and tasks, a
deleted task's history and search entries. Runs the real handler on moto's stream records."""

from __future__ import annotations

from chalicelib import bootstrap
from chalicelib.adapters.dynamodb.models import (
    CommentModel,
    MembershipModel,
    TaskHistoryModel,
    TaskModel,
)
from chalicelib.adapters.dynamodb.search import DynamoSearchIndex
from chalicelib.domain.comments import CommentCreate
from chalicelib.domain.model import PageRequest
from chalicelib.domain.projects import ProjectCreate
from chalicelib.domain.tasks import TaskCreate
from chalicelib.domain.users import RegisterInput
from chalicelib.handlers import streams
from tests.integration.test_search import stream_event


def test_deleting_a_project_purges_its_contents(container: bootstrap.Container) -> None:
    me = container.auth.authenticate(
        container.auth.register(
            RegisterInput(email="a@x.io", password="long enough", name="A")
        ).access_token
    )
    with container.request_scope():
        project = container.projects.create(me, ProjectCreate(name="Doomed")).project
    task_ids = []
    for index in range(30):  # more than one batch of 25
        with container.request_scope():
            task_ids.append(
                container.tasks.create(
                    me, TaskCreate(title=f"Doomed {index}", project_id=project.id)
                ).id
            )
    with container.request_scope():
        keeper = container.tasks.create(me, TaskCreate(title="Doomed but personal"))
    streams.on_change(stream_event(container.settings.table_name("tasks")))  # index them
    with container.request_scope():
        container.comments.post(me, task_ids[0], CommentCreate(body="a comment to purge"))
    assert CommentModel.count(task_ids[0]) == 1
    with container.request_scope():
        container.projects.delete(me, project.id)

    result = streams.on_change(stream_event(container.settings.table_name("projects")))
    assert result["purged"] >= 31  # 30 tasks and the owner's membership
    assert TaskModel.by_project.count(project.id) == 0
    assert MembershipModel.count(project.id) == 0
    assert TaskModel.get(keeper.id).title == "Doomed but personal"

    # The tasks' own deletions come through the tasks stream: history and search entries go.
    streams.on_change(stream_event(container.settings.table_name("tasks")))
    assert all(TaskHistoryModel.count(task_id) == 0 for task_id in task_ids)
    assert CommentModel.count(task_ids[0]) == 0
    assert TaskHistoryModel.count(keeper.id) == 1
    assert DynamoSearchIndex().postings(project.id, ["doomed"]) == {"doomed": {}}
    with container.request_scope():
        hits = container.search.search(me, "doomed", None, PageRequest())
    assert [t.id for t in hits.items] == [keeper.id]
