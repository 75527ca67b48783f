import { useCallback, useEffect, useState } from "react";
import { useApp, useLive } from "../context";
import { duration, formatTime, label } from "../format";
import { href } from "../router";
import { TERMINAL, type Execution, type LiveEvent, type Task, type Workflow, type WorkflowRun } from "../types";
import { ActionButton, ErrorMessage, Loading, Section, StatusBadge, useLoad } from "../ui";
import { WorkflowGraph } from "./Graph";

const id = encodeURIComponent;

export function RunView({ runId }: { runId: string }) {
  const { api, liveState } = useApp();
  const [run, setRun] = useState<WorkflowRun | null>(null);
  const [error, setError] = useState<unknown>(null);
  const fetchRun = useCallback(async () => {
    try {
      setRun(await api.get<WorkflowRun>(`/workflow-runs/${id(runId)}`));
      setError(null);
    } catch (caught) {
      setError(caught);
    }
  }, [api, runId]);
  useEffect(() => {
    void fetchRun();
  }, [fetchRun]);
  const context = useLoad(async () => {
    if (!run) return null;
    const workflow = await api.get<Workflow>(`/workflows/${id(run.workflow_id)}`);
    const tasks = await api.all<Task>("/tasks", { project_id: run.project_id });
    return { workflow, tasks };
  }, [api, run?.workflow_id]);

  // Live: a run's event carries its steps' planned status; an execution of one of its steps
  // means a step moved on, so the run is read again (with each step's execution).
  const onEvent = useCallback(
    (event: LiveEvent) => {
      if (event.type === "workflow_run.updated" && (event.data as WorkflowRun).id === runId) void fetchRun();
      if (event.type === "execution.updated" && (event.data as Execution).workflow_run_id === runId) void fetchRun();
    },
    [runId, fetchRun],
  );
  useLive(run?.project_id, onEvent);

  // Without the WebSocket, poll until the run ends.
  const finished = run ? TERMINAL.has(run.status) : false;
  useEffect(() => {
    if (finished || liveState === "open") return undefined;
    const timer = window.setInterval(() => void fetchRun(), 3000);
    return () => window.clearInterval(timer);
  }, [finished, liveState, fetchRun]);

  if (!run) return error ? <ErrorMessage error={error} /> : <Loading what="the run" />;
  const workflow = context.data?.workflow;
  const titles = new Map((context.data?.tasks ?? []).map((task) => [task.id, task.title]));
  const dependsOn = new Map((workflow?.steps ?? []).map((step) => [step.key, step.depends_on]));
  return (
    <>
      <div className="page-head">
        <div>
          <p className="crumbs">
            <a href={href({ name: "projects" })}>Projects</a> /{" "}
            <a href={href({ name: "workflow", workflowId: run.workflow_id })}>{workflow?.name ?? "Workflow"}</a> /
          </p>
          <h1>
            Run of {workflow?.name ?? "workflow"} <StatusBadge status={run.status} />
          </h1>
          <p className="meta">
            {label(run.trigger)} · started {formatTime(run.started_at ?? run.created_at)}
            {run.finished_at && <> · took {duration(run.started_at, run.finished_at)}</>}
          </p>
        </div>
        {!finished && (
          <div className="actions">
            <ActionButton
              className="danger"
              onError={setError}
              action={async () => {
                await api.request("POST", `/workflow-runs/${id(run.id)}/cancel`);
                await fetchRun();
              }}
            >
              Cancel run
            </ActionButton>
          </div>
        )}
      </div>
      <ErrorMessage error={error || context.error} />
      <Section title="Graph">
        <WorkflowGraph
          caption="Steps coloured by their status, updated live"
          steps={run.steps.map((step) => ({
            key: step.key,
            depends_on: dependsOn.get(step.key) ?? [],
            title: titles.get(step.task_id) ?? step.key,
            status: step.status,
          }))}
        />
      </Section>
      <Section title="Steps">
        <table className="table" aria-label="Steps of the run">
          <thead>
            <tr>
              <th scope="col">Step</th>
              <th scope="col">Status</th>
              <th scope="col">Started</th>
              <th scope="col">Took</th>
            </tr>
          </thead>
          <tbody>
            {run.steps.map((step) => (
              <tr key={step.key} data-step-row={step.key}>
                <td>
                  <a href={href({ name: "task", taskId: step.task_id })}>{titles.get(step.task_id) ?? step.key}</a>{" "}
                  <span className="muted small">{step.key}</span>
                  {step.error && <p className="error small">{step.error}</p>}
                </td>
                <td>
                  <StatusBadge status={step.status} />
                </td>
                <td>{formatTime(step.started_at)}</td>
                <td>{duration(step.started_at, step.finished_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
    </>
  );
}
