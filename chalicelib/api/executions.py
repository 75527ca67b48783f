"""/tasks/{task_id}/run, /tasks/{task_id}/executions and /executions/{execution_id}.

Task routes read the task, its project and the caller's membership with the session
(`chalicelib.api.tasks.the_task`); an execution id names its project the way a task id does,
so `GET /executions/{id}` reads the execution, its project and the membership in that round
trip too.
"""

from __future__ import annotations

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, route
from chalicelib.api.tasks import the_task
from chalicelib.domain.ids import ScopedId
from chalicelib.domain.principals import Principal
from chalicelib.ports import PrefetchKey, reads
from chalicelib.representations.schemas import ExecutionOut, PageOut

TAG = "executions"


def the_execution(principal: Principal, params: dict[str, str]) -> list[PrefetchKey]:
    execution_id = ScopedId.parse(params["execution_id"])
    if execution_id is None:
        return []
    project_id = execution_id.project_id
    return [
        reads.execution(str(execution_id)),
        reads.project(project_id),
        reads.member(project_id, principal.user_id),
    ]


@route(
    "/tasks/{task_id}/run",
    "POST",
    tag=TAG,
    status=202,
    summary="Run the task's action now, outside its schedule (member+)",
    response=ExecutionOut,
    errors=(403, 404),
    prefetch=the_task,
)
def run_task(call: Call) -> ExecutionOut:
    execution = bootstrap.container().executions.run_now(call.principal, call.params["task_id"])
    return ExecutionOut.of(execution)


@route(
    "/tasks/{task_id}/executions",
    "GET",
    tag=TAG,
    summary="The executions of a task, newest first",
    query=PageQuery,
    response=PageOut[ExecutionOut],
    errors=(400, 404),
    prefetch=the_task,
)
def list_executions(call: Call) -> PageOut[ExecutionOut]:
    page = bootstrap.container().executions.list_for_task(
        call.principal, call.params["task_id"], call.query.page()
    )
    return PageOut[ExecutionOut](
        items=[ExecutionOut.of(e) for e in page.items], next_cursor=page.next_cursor
    )


@route(
    "/executions/{execution_id}",
    "GET",
    tag=TAG,
    summary="An execution",
    response=ExecutionOut,
    errors=(404,),
    prefetch=the_execution,
)
def get_execution(call: Call) -> ExecutionOut:
    return ExecutionOut.of(
        bootstrap.container().executions.get(call.principal, call.params["execution_id"])
    )
