import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { applyEvent, groupByStatus, NO_FILTERS, taskQuery, type BoardContext, type BoardFilters } from "../board";
import { useApp, useLive } from "../context";
import { formatDate, label, parseTags } from "../format";
import { href } from "../router";
import { PRIORITIES, STATUSES, type LiveEvent, type Member, type Page, type Project, type Task } from "../types";
import { ActionButton, ErrorMessage, errorText, Loading, PriorityBadge } from "../ui";
import { canWrite } from "./Project";

export function BoardView({ project, members }: { project: Project; members: Member[] }) {
  const { api, me, toast } = useApp();
  const [filters, setFilters] = useState<BoardFilters>(NO_FILTERS);
  const [search, setSearch] = useState("");
  const [activeSearch, setActiveSearch] = useState("");
  const [tasks, setTasks] = useState<Task[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [title, setTitle] = useState("");
  const [priority, setPriority] = useState("medium");
  const [tags, setTags] = useState("");
  const writable = canWrite(project.my_role);
  const names = new Map(members.map((member) => [member.user_id, member.name]));

  const context: BoardContext = { projectId: project.id, filters, me: me.id, addNew: !activeSearch };
  const contextRef = useRef(context);
  contextRef.current = context;
  // Events (a task created here, a change pushed live) that arrive while the list is loading are
  // applied once it has loaded: it may have been read before them, and would not show them.
  const loaded = useRef(false);
  const early = useRef<LiveEvent[]>([]);

  useEffect(() => {
    let current = true;
    loaded.current = false;
    early.current = [];
    setError(null);
    const load = activeSearch
      ? api
          .get<Page<Task>>("/tasks/search", { q: activeSearch, project_id: project.id, limit: 100 })
          .then((page) => page.items)
      : api.all<Task>("/tasks", taskQuery(project.id, filters));
    load
      .then((items) => {
        if (!current) return;
        const events = early.current;
        early.current = [];
        loaded.current = true;
        setTasks(events.reduce((shown, event) => applyEvent(shown, event, contextRef.current), items));
      })
      .catch((caught) => current && setError(caught));
    return () => {
      current = false;
    };
  }, [api, project.id, filters, activeSearch]);

  const onEvent = useCallback((event: LiveEvent) => {
    if (!loaded.current) {
      early.current.push(event);
      return;
    }
    setTasks((shown) => (shown ? applyEvent(shown, event, contextRef.current) : shown));
  }, []);
  useLive(project.id, onEvent);

  const upsert = (task: Task) => onEvent({ id: "local", type: "task.updated", at: "", data: task });

  async function create(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      const task = await api.request<Task>("POST", "/tasks", {
        body: { project_id: project.id, title: title.trim(), priority, tags: parseTags(tags) },
      });
      setTitle("");
      setTags("");
      onEvent({ id: "local", type: "task.created", at: "", data: task });
    } catch (caught) {
      setError(caught);
    }
  }

  const setFilter = <K extends keyof BoardFilters>(key: K, value: BoardFilters[K]) =>
    setFilters((current) => ({ ...current, [key]: value }));
  const groups = groupByStatus(tasks ?? []);
  const allTags = [...new Set((tasks ?? []).flatMap((task) => task.tags))].sort();

  return (
    <>
      {writable && (
        <form className="inline-form panel" onSubmit={create} aria-label="Add a task">
          <label className="grow">
            New task
            <input
              name="title"
              required
              maxLength={200}
              placeholder="What needs doing?"
              value={title}
              onChange={(e) => setTitle(e.target.value)}
            />
          </label>
          <label>
            Priority
            <select value={priority} onChange={(e) => setPriority(e.target.value)}>
              {PRIORITIES.map((p) => (
                <option key={p} value={p}>
                  {label(p)}
                </option>
              ))}
            </select>
          </label>
          <label>
            Tags
            <input placeholder="comma, separated" value={tags} onChange={(e) => setTags(e.target.value)} />
          </label>
          <button type="submit">Add task</button>
        </form>
      )}
      <div className="filters" role="search" aria-label="Filter and search tasks">
        <form
          className="search"
          onSubmit={(e) => {
            e.preventDefault();
            setActiveSearch(search.trim());
          }}
        >
          <label>
            Search
            <input type="search" placeholder="Words in title, description or tags" value={search} onChange={(e) => setSearch(e.target.value)} />
          </label>
          <button type="submit" className="secondary">
            Search
          </button>
          {activeSearch && (
            <button
              type="button"
              className="link"
              onClick={() => {
                setSearch("");
                setActiveSearch("");
              }}
            >
              Clear search
            </button>
          )}
        </form>
        {!activeSearch && (
          <div className="filter-row">
            <label>
              Status
              <select
                value={filters.status.join(",")}
                onChange={(e) => setFilter("status", e.target.value ? (e.target.value.split(",") as BoardFilters["status"]) : [])}
              >
                <option value="">All</option>
                <option value="pending,in_progress">Open</option>
                {STATUSES.map((s) => (
                  <option key={s} value={s}>
                    {label(s)}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Priority
              <select
                value={filters.priority.join(",")}
                onChange={(e) => setFilter("priority", e.target.value ? e.target.value.split(",") : [])}
              >
                <option value="">All</option>
                <option value="high,urgent">High and urgent</option>
                {PRIORITIES.map((p) => (
                  <option key={p} value={p}>
                    {label(p)}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Assignee
              <select value={filters.assignee} onChange={(e) => setFilter("assignee", e.target.value)}>
                <option value="">Anyone</option>
                <option value="me">Me</option>
                {members
                  .filter((member) => member.user_id !== me.id)
                  .map((member) => (
                    <option key={member.user_id} value={member.user_id}>
                      {member.name}
                    </option>
                  ))}
              </select>
            </label>
            <label>
              Tag
              <select value={filters.tag} onChange={(e) => setFilter("tag", e.target.value)}>
                <option value="">Any</option>
                {[...new Set([...allTags, ...(filters.tag ? [filters.tag] : [])])].map((tag) => (
                  <option key={tag} value={tag}>
                    {tag}
                  </option>
                ))}
              </select>
            </label>
            {(filters.status.length || filters.priority.length || filters.assignee || filters.tag) && (
              <button type="button" className="link" onClick={() => setFilters(NO_FILTERS)}>
                Clear filters
              </button>
            )}
          </div>
        )}
      </div>
      {activeSearch && (
        <p role="status" className="muted">
          {tasks ? `${tasks.length} task${tasks.length === 1 ? "" : "s"} match “${activeSearch}”.` : "Searching…"}
        </p>
      )}
      <ErrorMessage error={error} />
      {!tasks && !error && <Loading what="tasks" />}
      <div className="board" aria-label="Task board">
        {STATUSES.map((status) => (
          <section key={status} className={`column column-${status}`} aria-labelledby={`column-${status}`} data-column={status}>
            <h2 id={`column-${status}`}>
              {label(status)} <span className="muted">({groups[status].length})</span>
            </h2>
            <ul>
              {groups[status].map((task) => (
                <li key={task.id} className="task-card" data-task-id={task.id}>
                  <a href={href({ name: "task", taskId: task.id })} className="card-title">
                    {task.title}
                  </a>
                  <div className="meta">
                    <PriorityBadge priority={task.priority} />
                    {task.due_date && <span>Due {formatDate(task.due_date)}</span>}
                    {task.assignee_id && <span>→ {names.get(task.assignee_id) ?? "someone"}</span>}
                    {task.parent_id && <span className="muted">subtask</span>}
                    {task.schedule && <span title="Scheduled">⏱ {task.next_run_at ? formatDate(task.next_run_at) : "scheduled"}</span>}
                  </div>
                  {task.tags.length > 0 && (
                    <ul className="tags" aria-label="Tags">
                      {task.tags.map((tag) => (
                        <li key={tag}>{tag}</li>
                      ))}
                    </ul>
                  )}
                  {writable && (status === "pending" || status === "in_progress") && (
                    <div className="card-actions">
                      {status === "pending" && (
                        <ActionButton
                          className="secondary small"
                          aria-label={`Start ${task.title}`}
                          onError={(caught) => toast(errorText(caught), "error")}
                          action={async () =>
                            upsert(
                              await api.request<Task>("PATCH", `/tasks/${encodeURIComponent(task.id)}`, {
                                body: { status: "in_progress" },
                              }),
                            )
                          }
                        >
                          Start
                        </ActionButton>
                      )}
                      <ActionButton
                        className="small"
                        aria-label={`Complete ${task.title}`}
                        onError={(caught) => toast(errorText(caught), "error")}
                        action={async () =>
                          upsert(await api.request<Task>("POST", `/tasks/${encodeURIComponent(task.id)}/complete`))
                        }
                      >
                        Complete
                      </ActionButton>
                    </div>
                  )}
                </li>
              ))}
            </ul>
          </section>
        ))}
      </div>
    </>
  );
}

