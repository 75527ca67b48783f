import { useCallback, useEffect, useState, type FormEvent } from "react";
import { ApiError } from "../api";
import { useApp, useLive } from "../context";
import { duration, formatTime, label, parseTags, showValue, withNames } from "../format";
import { href } from "../router";
import {
  PRIORITIES,
  STATUSES,
  type Comment,
  type Execution,
  type HistoryEvent,
  type LiveEvent,
  type Member,
  type Page,
  type Project,
  type Schedule,
  type Task,
} from "../types";
import { ActionButton, ErrorMessage, errorText, Loading, PriorityBadge, Section, StatusBadge, useLoad } from "../ui";
import { canManage, canWrite } from "./Project";

const id = encodeURIComponent;

interface TaskData {
  task: Task;
  project: Project;
  members: Member[];
  projectTasks: Task[];
}

export function TaskView({ taskId }: { taskId: string }) {
  const { api } = useApp();
  const data = useLoad(async (): Promise<TaskData> => {
    const task = await api.get<Task>(`/tasks/${id(taskId)}`);
    const [project, members, projectTasks] = await Promise.all([
      api.get<Project>(`/projects/${id(task.project_id)}`),
      api.all<Member>(`/projects/${id(task.project_id)}/members`),
      api.all<Task>("/tasks", { project_id: task.project_id }),
    ]);
    return { task, project, members, projectTasks };
  }, [api, taskId]);

  if (data.error) {
    return (
      <>
        <h1>Task</h1>
        <ErrorMessage error={data.error} />
        <a href={href({ name: "projects" })}>Back to projects</a>
      </>
    );
  }
  if (!data.data) return <Loading what="the task" />;
  return <TaskDetail initial={data.data} />;
}

function TaskDetail({ initial }: { initial: TaskData }) {
  const { api, me, toast } = useApp();
  const { project, members } = initial;
  const [task, setTask] = useState(initial.task);
  const [projectTasks, setProjectTasks] = useState(initial.projectTasks);
  const [deleted, setDeleted] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState("");
  const path = `/tasks/${id(task.id)}`;
  const writable = canWrite(project.my_role);
  const names = new Map(members.map((member) => [member.user_id, member.name]));
  const titles = new Map(projectTasks.map((t) => [t.id, t]));
  const nameOf = (key: string) => names.get(key) ?? titles.get(key)?.title;

  const comments = useLoad(() => api.all<Comment>(`${path}/comments`), [api, path]);
  const history = useLoad(() => api.all<HistoryEvent>(`${path}/history`), [api, path]);
  const executions = useLoad(
    () => api.get<Page<Execution>>(`${path}/executions`, { limit: 50 }).then((page) => page.items),
    [api, path],
  );
  const subtasks = useLoad(() => api.all<Task>(`${path}/subtasks`), [api, path]);

  const onEvent = useCallback(
    (event: LiveEvent) => {
      if (event.type.startsWith("task.")) {
        const changed = event.data as Task;
        setProjectTasks((shown) =>
          event.type === "task.deleted"
            ? shown.filter((t) => t.id !== changed.id)
            : [...shown.filter((t) => t.id !== changed.id), changed],
        );
        if (changed.id === task.id) {
          if (event.type === "task.deleted") setDeleted(true);
          else setTask((current) => (changed.version >= current.version ? changed : current));
          void history.reload();
        } else if (changed.parent_id === task.id) {
          void subtasks.reload();
        }
      } else if (event.type === "comment.created") {
        const comment = event.data as Comment;
        if (comment.task_id === task.id) {
          comments.set((shown) =>
            shown && !shown.some((c) => c.id === comment.id) ? [...shown, comment] : shown,
          );
        }
      } else if (event.type === "execution.updated") {
        const execution = event.data as Execution;
        if (execution.task_id === task.id) {
          executions.set((shown) => {
            const others = (shown ?? []).filter((e) => e.id !== execution.id);
            return [execution, ...others].sort((a, b) => (a.id < b.id ? 1 : -1));
          });
        }
      }
    },
    // The loaders' set and reload functions are stable.
    [task.id],
  );
  useLive(task.project_id, onEvent);

  const update = async (body: Record<string, unknown>) => {
    setNotice("");
    try {
      const updated = await api.request<Task>("PATCH", path, { body, ifMatch: task.version });
      setTask(updated);
      setError(null);
      setNotice("Saved.");
      void history.reload();
      return true;
    } catch (caught) {
      if (caught instanceof ApiError && caught.status === 412) {
        setTask(await api.get<Task>(path));
        setError(new Error("Someone else changed this task meanwhile: it is reloaded, try again."));
      } else setError(caught);
      return false;
    }
  };

  if (deleted) {
    return (
      <>
        <h1>{task.title}</h1>
        <p role="alert">This task was deleted.</p>
        <a href={href({ name: "board", projectId: project.id })}>Back to {project.name}</a>
      </>
    );
  }

  const parent = task.parent_id ? titles.get(task.parent_id) : null;
  return (
    <>
      <div className="page-head">
        <div>
          <p className="crumbs">
            <a href={href({ name: "projects" })}>Projects</a> /{" "}
            <a href={href({ name: "board", projectId: project.id })}>{project.name}</a> /
            {parent && (
              <>
                {" "}
                <a href={href({ name: "task", taskId: parent.id })}>{parent.title}</a> /
              </>
            )}
          </p>
          <h1>{task.title}</h1>
          <p className="meta">
            <StatusBadge status={task.status} /> <PriorityBadge priority={task.priority} />
            <span>Created {formatTime(task.created_at)} by {names.get(task.created_by) ?? "someone"}</span>
            {task.completed_at && <span>Completed {formatTime(task.completed_at)}</span>}
          </p>
        </div>
        {writable && (
          <div className="actions">
            {task.status !== "completed" && (
              <ActionButton
                onError={setError}
                action={async () => {
                  setTask(await api.request<Task>("POST", `${path}/complete`));
                  setError(null);
                  void history.reload();
                }}
              >
                Complete
              </ActionButton>
            )}
            <ActionButton
              className="secondary"
              onError={setError}
              action={async () => {
                const execution = await api.request<Execution>("POST", `${path}/run`);
                executions.set((shown) => [execution, ...(shown ?? []).filter((e) => e.id !== execution.id)]);
                toast("Run started.");
              }}
            >
              Run now
            </ActionButton>
            {(canManage(project.my_role) || task.created_by === me.id) && (
              <ActionButton
                className="danger"
                onError={setError}
                action={async () => {
                  if (!window.confirm(`Delete “${task.title}” and its subtasks?`)) return;
                  await api.request("DELETE", path);
                  window.location.hash = href({ name: "board", projectId: project.id });
                }}
              >
                Delete
              </ActionButton>
            )}
          </div>
        )}
      </div>
      {error ? (
        <p className="error" role="alert">
          {withNames(errorText(error), nameOf)}
        </p>
      ) : null}
      <p role="status" className="notice">
        {notice}
      </p>
      <div className="detail-grid">
        <div className="stack">
          <TaskFields key={task.version} task={task} members={members} writable={writable} save={update} />
          <Section title="Comments">
            <Comments
              comments={comments.data}
              error={comments.error}
              names={names}
              writable={writable}
              admin={canManage(project.my_role)}
              onAdd={async (body) => {
                const comment = await api.request<Comment>("POST", `${path}/comments`, { body: { body } });
                comments.set((shown) => (shown?.some((c) => c.id === comment.id) ? shown : [...(shown ?? []), comment]));
              }}
              onDelete={async (comment) => {
                await api.request("DELETE", `${path}/comments/${id(comment.id)}`);
                comments.set((shown) => (shown ?? []).filter((c) => c.id !== comment.id));
              }}
            />
          </Section>
          <Section title="History">
            <History events={history.data} error={history.error} names={names} nameOf={nameOf} />
          </Section>
        </div>
        <div className="stack">
          {!task.parent_id && (
            <Section title="Subtasks">
              <Subtasks
                subtasks={subtasks.data}
                writable={writable}
                onAdd={async (title) => {
                  await api.request<Task>("POST", "/tasks", {
                    body: { project_id: task.project_id, parent_id: task.id, title },
                  });
                  await subtasks.reload();
                }}
              />
            </Section>
          )}
          <Section title="Dependencies">
            <Dependencies
              task={task}
              projectTasks={projectTasks}
              writable={writable}
              save={(depends_on) => update({ depends_on })}
            />
          </Section>
          <Section title="Schedule">
            <ScheduleEditor key={`s${task.version}`} task={task} writable={writable} save={update} />
          </Section>
          <Section title="Executions">
            <Timeline executions={executions.data} error={executions.error} />
          </Section>
        </div>
      </div>
    </>
  );
}

function TaskFields({
  task,
  members,
  writable,
  save,
}: {
  task: Task;
  members: Member[];
  writable: boolean;
  save: (body: Record<string, unknown>) => Promise<boolean>;
}) {
  const [title, setTitle] = useState(task.title);
  const [description, setDescription] = useState(task.description ?? "");
  const [status, setStatus] = useState(task.status);
  const [priority, setPriority] = useState(task.priority);
  const [due, setDue] = useState(task.due_date ? task.due_date.slice(0, 10) : "");
  const [assignee, setAssignee] = useState(task.assignee_id ?? "");
  const [tags, setTags] = useState(task.tags.join(", "));

  async function submit(event: FormEvent) {
    event.preventDefault();
    const body: Record<string, unknown> = {};
    if (title.trim() !== task.title) body.title = title.trim();
    if ((description || null) !== (task.description || null)) body.description = description || null;
    if (status !== task.status) body.status = status;
    if (priority !== task.priority) body.priority = priority;
    if (due !== (task.due_date ? task.due_date.slice(0, 10) : "")) body.due_date = due || null;
    if ((assignee || null) !== task.assignee_id) body.assignee_id = assignee || null;
    const newTags = parseTags(tags);
    if (newTags.join("\n") !== task.tags.join("\n")) body.tags = newTags;
    if (Object.keys(body).length === 0) return;
    await save(body);
  }

  return (
    <Section title="Details">
      <form onSubmit={submit} className="fields">
        <fieldset disabled={!writable}>
          <label>
            Title
            <input required maxLength={200} value={title} onChange={(e) => setTitle(e.target.value)} />
          </label>
          <label>
            Description
            <textarea rows={4} maxLength={10000} value={description} onChange={(e) => setDescription(e.target.value)} />
          </label>
          <div className="row">
            <label>
              Status
              <select value={status} onChange={(e) => setStatus(e.target.value as Task["status"])}>
                {STATUSES.map((s) => (
                  <option key={s} value={s}>
                    {label(s)}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Priority
              <select value={priority} onChange={(e) => setPriority(e.target.value as Task["priority"])}>
                {PRIORITIES.map((p) => (
                  <option key={p} value={p}>
                    {label(p)}
                  </option>
                ))}
              </select>
            </label>
          </div>
          <div className="row">
            <label>
              Due date
              <input type="date" value={due} onChange={(e) => setDue(e.target.value)} />
            </label>
            <label>
              Assignee
              <select value={assignee} onChange={(e) => setAssignee(e.target.value)}>
                <option value="">Nobody</option>
                {members.map((member) => (
                  <option key={member.user_id} value={member.user_id}>
                    {member.name}
                  </option>
                ))}
              </select>
            </label>
          </div>
          <label>
            Tags <span className="muted">(comma separated)</span>
            <input value={tags} onChange={(e) => setTags(e.target.value)} />
          </label>
          {writable && <button type="submit">Save changes</button>}
        </fieldset>
      </form>
    </Section>
  );
}

function Subtasks({
  subtasks,
  writable,
  onAdd,
}: {
  subtasks: Task[] | null;
  writable: boolean;
  onAdd: (title: string) => Promise<void>;
}) {
  const [title, setTitle] = useState("");
  const [error, setError] = useState<unknown>(null);
  return (
    <>
      {!subtasks && <Loading what="subtasks" />}
      {subtasks?.length === 0 && <p className="muted">No subtasks.</p>}
      <ul className="plain-list">
        {subtasks?.map((sub) => (
          <li key={sub.id}>
            <StatusBadge status={sub.status} /> <a href={href({ name: "task", taskId: sub.id })}>{sub.title}</a>
          </li>
        ))}
      </ul>
      {writable && (
        <form
          className="inline-form"
          onSubmit={async (event) => {
            event.preventDefault();
            try {
              await onAdd(title.trim());
              setTitle("");
              setError(null);
            } catch (caught) {
              setError(caught);
            }
          }}
        >
          <label className="grow">
            New subtask
            <input required maxLength={200} value={title} onChange={(e) => setTitle(e.target.value)} />
          </label>
          <button type="submit" className="secondary">
            Add subtask
          </button>
        </form>
      )}
      <ErrorMessage error={error} />
    </>
  );
}

function Dependencies({
  task,
  projectTasks,
  writable,
  save,
}: {
  task: Task;
  projectTasks: Task[];
  writable: boolean;
  save: (dependsOn: string[]) => Promise<boolean>;
}) {
  const [choice, setChoice] = useState("");
  const byId = new Map(projectTasks.map((t) => [t.id, t]));
  const candidates = projectTasks.filter((t) => t.id !== task.id && !task.depends_on.includes(t.id));
  return (
    <>
      {task.depends_on.length === 0 && <p className="muted">Depends on nothing.</p>}
      <ul className="plain-list">
        {task.depends_on.map((dependency) => {
          const other = byId.get(dependency);
          return (
            <li key={dependency}>
              {other && <StatusBadge status={other.status} />}{" "}
              <a href={href({ name: "task", taskId: dependency })}>{other?.title ?? dependency}</a>
              {writable && (
                <ActionButton
                  className="link"
                  aria-label={`Remove dependency on ${other?.title ?? dependency}`}
                  action={() => save(task.depends_on.filter((d) => d !== dependency))}
                >
                  Remove
                </ActionButton>
              )}
            </li>
          );
        })}
      </ul>
      {writable && candidates.length > 0 && (
        <form
          className="inline-form"
          onSubmit={async (event) => {
            event.preventDefault();
            if (choice && (await save([...task.depends_on, choice]))) setChoice("");
          }}
        >
          <label className="grow">
            Depends on
            <select value={choice} onChange={(e) => setChoice(e.target.value)}>
              <option value="">Choose a task…</option>
              {candidates.map((t) => (
                <option key={t.id} value={t.id}>
                  {t.title}
                </option>
              ))}
            </select>
          </label>
          <button type="submit" className="secondary">
            Add dependency
          </button>
        </form>
      )}
    </>
  );
}

function toLocalInput(value: string | null | undefined): string {
  if (!value) return "";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function ScheduleEditor({
  task,
  writable,
  save,
}: {
  task: Task;
  writable: boolean;
  save: (body: Record<string, unknown>) => Promise<boolean>;
}) {
  const { api } = useApp();
  const current = task.schedule;
  const [kind, setKind] = useState<"none" | Schedule["kind"]>(current?.kind ?? "none");
  const [at, setAt] = useState(current?.kind === "once" ? toLocalInput(current.at) : "");
  const [every, setEvery] = useState(current?.kind === "rate" ? current.every : 1);
  const [unit, setUnit] = useState(current?.kind === "rate" ? current.unit : "hours");
  const [expression, setExpression] = useState(current?.kind === "cron" ? current.expression : "0 9 ? * MON-FRI *");
  const [timezone, setTimezone] = useState(current?.timezone ?? "");
  const [paused, setPaused] = useState(current?.paused ?? false);
  const [overlap, setOverlap] = useState(current?.overlap ?? "skip");
  const [url, setUrl] = useState(task.action?.url ?? "");
  const [method, setMethod] = useState(task.action?.method ?? "POST");
  const [preview, setPreview] = useState<string[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    if (!current) return;
    api
      .get<{ runs: string[] }>(`/tasks/${id(task.id)}/schedule/preview`, { count: 5 })
      .then((body) => setPreview(body.runs))
      .catch(setError);
  }, [api, task.id, current]);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    let schedule: Record<string, unknown> | null = null;
    if (kind !== "none") {
      schedule = { kind, paused, overlap, ...(timezone.trim() ? { timezone: timezone.trim() } : {}) };
      if (kind === "once") {
        if (!at) return setError(new Error("Choose when it runs."));
        schedule.at = new Date(at).toISOString();
      } else if (kind === "rate") {
        schedule.every = Number(every);
        schedule.unit = unit;
      } else schedule.expression = expression.trim();
    }
    const action = url.trim() ? { type: "webhook", url: url.trim(), method } : null;
    await save({ schedule, action });
  }

  return (
    <>
      <p>
        Next run: <strong>{formatTime(task.next_run_at)}</strong>
        {current?.paused && <span className="badge">Paused</span>}
      </p>
      {preview && preview.length > 0 && (
        <>
          <h3>Next runs</h3>
          <ol className="plain-list" aria-label="Next runs">
            {preview.map((run) => (
              <li key={run}>
                <time dateTime={run}>{formatTime(run)}</time>
              </li>
            ))}
          </ol>
        </>
      )}
      <form onSubmit={submit} className="fields">
        <fieldset disabled={!writable}>
          <legend className="visually-hidden">Schedule</legend>
          <label>
            Repeats
            <select value={kind} onChange={(e) => setKind(e.target.value as typeof kind)}>
              <option value="none">Not scheduled</option>
              <option value="once">Once</option>
              <option value="rate">Every…</option>
              <option value="cron">Cron expression</option>
            </select>
          </label>
          {kind === "once" && (
            <label>
              At
              <input type="datetime-local" required value={at} onChange={(e) => setAt(e.target.value)} />
            </label>
          )}
          {kind === "rate" && (
            <div className="row">
              <label>
                Every
                <input type="number" min={1} required value={every} onChange={(e) => setEvery(Number(e.target.value))} />
              </label>
              <label>
                Unit
                <select value={unit} onChange={(e) => setUnit(e.target.value as typeof unit)}>
                  <option value="minutes">Minutes</option>
                  <option value="hours">Hours</option>
                  <option value="days">Days</option>
                </select>
              </label>
            </div>
          )}
          {kind === "cron" && (
            <label>
              Cron (minutes hours day month weekday year)
              <input required value={expression} onChange={(e) => setExpression(e.target.value)} />
            </label>
          )}
          {kind !== "none" && (
            <>
              <div className="row">
                <label>
                  Time zone
                  <input placeholder="e.g. Europe/Berlin (default: yours)" value={timezone} onChange={(e) => setTimezone(e.target.value)} />
                </label>
                <label>
                  If still running
                  <select value={overlap} onChange={(e) => setOverlap(e.target.value as typeof overlap)}>
                    <option value="skip">Skip the firing</option>
                    <option value="allow">Run side by side</option>
                    <option value="buffer_one">Queue one</option>
                  </select>
                </label>
              </div>
              <label className="check">
                <input type="checkbox" checked={paused} onChange={(e) => setPaused(e.target.checked)} /> Paused
              </label>
            </>
          )}
          <div className="row">
            <label className="grow">
              Webhook URL <span className="muted">(empty: a reminder)</span>
              <input type="url" value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://example.com/hook" />
            </label>
            <label>
              Method
              <select value={method} onChange={(e) => setMethod(e.target.value as typeof method)}>
                {["POST", "GET", "PUT", "PATCH", "DELETE"].map((m) => (
                  <option key={m}>{m}</option>
                ))}
              </select>
            </label>
          </div>
          {writable && <button type="submit">Save schedule</button>}
        </fieldset>
      </form>
      <ErrorMessage error={error} />
    </>
  );
}

export function Timeline({ executions, error }: { executions: Execution[] | null; error: unknown }) {
  if (error) return <ErrorMessage error={error} />;
  if (!executions) return <Loading what="executions" />;
  if (executions.length === 0) return <p className="muted">Never run yet.</p>;
  return (
    <ol className="timeline" aria-label="Executions, newest first">
      {executions.map((execution) => (
        <li key={execution.id} className={`timeline-item status-${execution.status}`} data-execution-id={execution.id}>
          <div className="meta">
            <StatusBadge status={execution.status} />
            <span>{label(execution.trigger)}</span>
            <time dateTime={execution.started_at ?? execution.scheduled_for ?? undefined}>
              {formatTime(execution.started_at ?? execution.scheduled_for)}
            </time>
            {execution.finished_at && <span>{duration(execution.started_at, execution.finished_at)}</span>}
          </div>
          <div className="small">
            {execution.attempts} attempt{execution.attempts === 1 ? "" : "s"}
            {execution.result?.status_code !== undefined && <> · HTTP {execution.result.status_code}</>}
            {execution.result?.duration_ms !== undefined && <> · {execution.result.duration_ms} ms</>}
            {execution.workflow_run_id && (
              <>
                {" "}
                · <a href={href({ name: "run", runId: execution.workflow_run_id })}>workflow run</a>
              </>
            )}
          </div>
          {execution.error && <p className="error small">{execution.error}</p>}
          {execution.result?.body_excerpt && (
            <details>
              <summary>Answer</summary>
              <pre>{execution.result.body_excerpt}</pre>
            </details>
          )}
        </li>
      ))}
    </ol>
  );
}

function Comments({
  comments,
  error,
  names,
  writable,
  admin,
  onAdd,
  onDelete,
}: {
  comments: Comment[] | null;
  error: unknown;
  names: Map<string, string>;
  writable: boolean;
  admin: boolean;
  onAdd: (body: string) => Promise<void>;
  onDelete: (comment: Comment) => Promise<void>;
}) {
  const { me } = useApp();
  const [body, setBody] = useState("");
  const [actionError, setActionError] = useState<unknown>(null);
  return (
    <>
      <ErrorMessage error={error || actionError} />
      {comments?.length === 0 && <p className="muted">No comments yet.</p>}
      <ol className="comments">
        {comments?.map((comment) => (
          <li key={comment.id}>
            <p className="meta">
              <strong>{names.get(comment.author_id) ?? "Someone"}</strong>
              <time dateTime={comment.created_at}>{formatTime(comment.created_at)}</time>
              {(admin || comment.author_id === me.id) && (
                <ActionButton className="link" onError={setActionError} action={() => onDelete(comment)} aria-label="Delete comment">
                  Delete
                </ActionButton>
              )}
            </p>
            <p className="comment-body">{comment.body}</p>
          </li>
        ))}
      </ol>
      {writable && (
        <form
          onSubmit={async (event) => {
            event.preventDefault();
            try {
              await onAdd(body.trim());
              setBody("");
              setActionError(null);
            } catch (caught) {
              setActionError(caught);
            }
          }}
        >
          <label>
            Comment <span className="muted">(@email mentions notify members)</span>
            <textarea rows={3} required maxLength={10000} value={body} onChange={(e) => setBody(e.target.value)} />
          </label>
          <button type="submit">Add comment</button>
        </form>
      )}
    </>
  );
}

// Ids of records a history event names only for reference.
const HIDDEN_CHANGES = new Set(["comment_id", "execution_id", "workflow_run_id", "id"]);

function History({
  events,
  error,
  names,
  nameOf,
}: {
  events: HistoryEvent[] | null;
  error: unknown;
  names: Map<string, string>;
  nameOf: (id: string) => string | undefined;
}) {
  if (error) return <ErrorMessage error={error} />;
  if (!events) return <Loading what="history" />;
  return (
    <ol className="history">
      {events.map((event) => (
        <li key={event.id}>
          <p className="meta">
            <strong>{label(event.type)}</strong>
            <span>{event.actor_id ? (names.get(event.actor_id) ?? "someone") : "Taskbeat"}</span>
            <time dateTime={event.at}>{formatTime(event.at)}</time>
          </p>
          {event.changes && (
            <ul className="changes">
              {Object.entries(event.changes)
                .filter(([field]) => !HIDDEN_CHANGES.has(field))
                .map(([field, change]) => (
                  <li key={field}>
                    {label(field.replace(/_id$/, ""))}: {showValue(Array.isArray(change) ? change[0] : null, nameOf)} →{" "}
                    {showValue(Array.isArray(change) ? change[1] : change, nameOf)}
                  </li>
                ))}
            </ul>
          )}
        </li>
      ))}
    </ol>
  );
}
