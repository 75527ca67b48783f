import { useCallback, useState } from "react";
import { useApp, useLive } from "../context";
import { formatTime, label, duration } from "../format";
import { href } from "../router";
import type { LiveEvent, Page, Project, Task, Workflow, WorkflowRun } from "../types";
import { ActionButton, ErrorMessage, Loading, Section, StatusBadge, useLoad } from "../ui";
import { WorkflowGraph } from "./Graph";
import { canWrite } from "./Project";

const id = encodeURIComponent;

export function WorkflowView({ workflowId }: { workflowId: string }) {
  const { api } = useApp();
  const [error, setError] = useState<unknown>(null);
  const data = useLoad(async () => {
    const workflow = await api.get<Workflow>(`/workflows/${id(workflowId)}`);
    const [project, tasks] = await Promise.all([
      api.get<Project>(`/projects/${id(workflow.project_id)}`),
      api.all<Task>("/tasks", { project_id: workflow.project_id }),
    ]);
    return { workflow, project, tasks };
  }, [api, workflowId]);
  const runs = useLoad(
    () => api.get<Page<WorkflowRun>>(`/workflows/${id(workflowId)}/runs`, { limit: 25 }).then((page) => page.items),
    [api, workflowId],
  );
  const onEvent = useCallback(
    (event: LiveEvent) => {
      if (event.type !== "workflow_run.updated") return;
      const run = event.data as WorkflowRun;
      if (run.workflow_id !== workflowId) return;
      runs.set((shown) => [run, ...(shown ?? []).filter((r) => r.id !== run.id)].sort((a, b) => (a.id < b.id ? 1 : -1)));
    },
    [workflowId], // runs.set is stable
  );
  useLive(data.data?.workflow.project_id, onEvent);

  if (data.error) return <ErrorMessage error={data.error} />;
  if (!data.data) return <Loading what="the workflow" />;
  const { workflow, project, tasks } = data.data;
  const titles = new Map(tasks.map((task) => [task.id, task.title]));
  return (
    <>
      <div className="page-head">
        <div>
          <p className="crumbs">
            <a href={href({ name: "projects" })}>Projects</a> /{" "}
            <a href={href({ name: "workflows", projectId: project.id })}>{project.name}</a> /
          </p>
          <h1>{workflow.name}</h1>
          <p className="meta">
            {workflow.steps.length} steps · on failure {workflow.on_failure} · at most {workflow.max_concurrency} at once
          </p>
        </div>
        {canWrite(project.my_role) && (
          <div className="actions">
            <ActionButton
              onError={setError}
              action={async () => {
                const run = await api.request<WorkflowRun>("POST", `/workflows/${id(workflow.id)}/run`);
                window.location.hash = href({ name: "run", runId: run.id });
              }}
            >
              Run workflow
            </ActionButton>
          </div>
        )}
      </div>
      <ErrorMessage error={error} />
      <Section title="Steps">
        <WorkflowGraph
          caption={`The steps of ${workflow.name}, each after the ones it waits for`}
          steps={workflow.steps.map((step) => ({
            key: step.key,
            depends_on: step.depends_on,
            title: titles.get(step.task_id) ?? step.task_id,
            status: null,
          }))}
        />
      </Section>
      <Section title="Runs">
        <ErrorMessage error={runs.error} />
        {!runs.data && !runs.error && <Loading what="runs" />}
        {runs.data?.length === 0 && <p className="muted">Not run yet.</p>}
        <ul className="plain-list">
          {runs.data?.map((run) => (
            <li key={run.id}>
              <StatusBadge status={run.status} />{" "}
              <a href={href({ name: "run", runId: run.id })}>
                {label(run.trigger)} run of {formatTime(run.started_at ?? run.created_at)}
              </a>{" "}
              <span className="muted small">{duration(run.started_at, run.finished_at)}</span>
            </li>
          ))}
        </ul>
      </Section>
    </>
  );
}
