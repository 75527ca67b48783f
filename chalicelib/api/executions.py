"""/tasks/{task_id}/run, /tasks/{task_id}/executions and /executions/{execution_id}.

Every route reads what its use case declares (see `chalicelib.services.executions`) with the
session: task routes the task, its project and the caller's membership; an execution id names its
project the way a task id does, so `GET /executions/{id}` reads the execution, its project and
the membership in that round trip too.
"""

from __future__ import annotations

from chalicelib import bootstrap
from chalicelib.api.queries import PageQuery
from chalicelib.api.routing import Call, from_params, route
from chalicelib.representations.schemas import ExecutionOut, PageOut
from chalicelib.services.executions import ExecutionService

TAG = "executions"


@route(
    "/tasks/{task_id}/run",
    "POST",
    scope="run",
    tag=TAG,
    status=202,
    summary="Run the task's action now, outside its schedule (member+)",
    response=ExecutionOut,
    errors=(403, 404),
    prefetch=from_params(ExecutionService.reads_for_task, "task_id"),
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
    prefetch=from_params(ExecutionService.reads_for_task, "task_id"),
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
    prefetch=from_params(ExecutionService.reads_for_get, "execution_id"),
)
def get_execution(call: Call) -> ExecutionOut:
    return ExecutionOut.of(
        bootstrap.container().executions.get(call.principal, call.params["execution_id"])
    )
