import { useState, type FormEvent } from "react";
import { useApp } from "../context";
import { href } from "../router";
import type { Project, Task, Workflow } from "../types";
import { ErrorMessage, Loading, Section, useLoad } from "../ui";
import { canWrite } from "./Project";

interface DraftStep {
  key: string;
  task_id: string;
  depends_on: string[];
}

export function WorkflowsView({ project }: { project: Project }) {
  const { api } = useApp();
  const workflows = useLoad(() => api.all<Workflow>("/workflows", { project_id: project.id }), [api, project.id]);
  const tasks = useLoad(() => api.all<Task>("/tasks", { project_id: project.id }), [api, project.id]);
  return (
    <div className="two-col">
      <Section title="Workflows">
        {workflows.loading && !workflows.data && <Loading what="workflows" />}
        <ErrorMessage error={workflows.error} />
        {workflows.data?.length === 0 && <p className="muted">No workflows yet.</p>}
        <ul className="cards">
          {workflows.data?.map((workflow) => (
            <li key={workflow.id} className="card">
              <a className="card-title" href={href({ name: "workflow", workflowId: workflow.id })}>
                {workflow.name}
              </a>
              <p className="meta">
                {workflow.steps.length} step{workflow.steps.length === 1 ? "" : "s"} · on failure {workflow.on_failure} ·
                at most {workflow.max_concurrency} at once{workflow.schedule ? " · scheduled" : ""}
              </p>
            </li>
          ))}
        </ul>
      </Section>
      {canWrite(project.my_role) && (
        <Section title="New workflow">
          {tasks.data ? (
            <WorkflowBuilder project={project} tasks={tasks.data} />
          ) : (
            <Loading what="tasks" />
          )}
        </Section>
      )}
    </div>
  );
}

function WorkflowBuilder({ project, tasks }: { project: Project; tasks: Task[] }) {
  const { api } = useApp();
  const [name, setName] = useState("");
  const [onFailure, setOnFailure] = useState<"stop" | "continue">("stop");
  const [steps, setSteps] = useState<DraftStep[]>([]);
  const [error, setError] = useState<unknown>(null);

  const change = (index: number, update: Partial<DraftStep>) =>
    setSteps((current) => current.map((step, i) => (i === index ? { ...step, ...update } : step)));

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      const workflow = await api.request<Workflow>("POST", "/workflows", {
        body: { project_id: project.id, name: name.trim(), on_failure: onFailure, steps },
      });
      window.location.hash = href({ name: "workflow", workflowId: workflow.id });
    } catch (caught) {
      setError(caught);
    }
  }

  if (tasks.length === 0) return <p className="muted">Add tasks on the board first: each step runs a task.</p>;
  return (
    <form onSubmit={submit}>
      <label>
        Name
        <input required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
      </label>
      <label>
        After a failure
        <select value={onFailure} onChange={(e) => setOnFailure(e.target.value as "stop" | "continue")}>
          <option value="stop">Stop: start no new step</option>
          <option value="continue">Continue with the other branches</option>
        </select>
      </label>
      <ol className="steps-builder">
        {steps.map((step, index) => (
          <li key={index}>
            <fieldset>
              <legend>Step {index + 1}</legend>
              <div className="row">
                <label>
                  Key
                  <input required value={step.key} onChange={(e) => change(index, { key: e.target.value })} />
                </label>
                <label className="grow">
                  Task
                  <select required value={step.task_id} onChange={(e) => change(index, { task_id: e.target.value })}>
                    <option value="">Choose…</option>
                    {tasks.map((task) => (
                      <option key={task.id} value={task.id}>
                        {task.title}
                      </option>
                    ))}
                  </select>
                </label>
              </div>
              {index > 0 && (
                <div className="checks" role="group" aria-label={`Step ${index + 1} waits for`}>
                  <span className="small muted">Waits for:</span>
                  {steps.slice(0, index).map((other) => (
                    <label key={other.key} className="check">
                      <input
                        type="checkbox"
                        checked={step.depends_on.includes(other.key)}
                        onChange={(e) =>
                          change(index, {
                            depends_on: e.target.checked
                              ? [...step.depends_on, other.key]
                              : step.depends_on.filter((key) => key !== other.key),
                          })
                        }
                      />{" "}
                      {other.key}
                    </label>
                  ))}
                </div>
              )}
              <button
                type="button"
                className="link"
                onClick={() =>
                  setSteps((current) =>
                    current
                      .filter((_, i) => i !== index)
                      .map((s) => ({ ...s, depends_on: s.depends_on.filter((key) => key !== step.key) })),
                  )
                }
              >
                Remove step {index + 1}
              </button>
            </fieldset>
          </li>
        ))}
      </ol>
      <button
        type="button"
        className="secondary"
        onClick={() => setSteps((current) => [...current, { key: `step${current.length + 1}`, task_id: "", depends_on: [] }])}
      >
        Add step
      </button>{" "}
      <button type="submit" disabled={steps.length === 0}>
        Create workflow
      </button>
      <ErrorMessage error={error} />
    </form>
  );
}
