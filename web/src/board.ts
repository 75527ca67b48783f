// The task board's state, and how WebSocket events change it without a reload.

import { STATUSES, type LiveEvent, type Task, type TaskStatus } from "./types";

export interface BoardFilters {
  status: TaskStatus[]; // empty: every status
  priority: string[]; // empty: every priority
  assignee: string; // "" any, "me", or a user id
  tag: string; // "" any
}

export const NO_FILTERS: BoardFilters = { status: [], priority: [], assignee: "", tag: "" };

export interface BoardContext {
  projectId: string;
  filters: BoardFilters;
  me: string | null;
  /** False while showing search results: events update shown tasks but add none. */
  addNew: boolean;
}

export function matches(task: Task, context: BoardContext): boolean {
  const { filters } = context;
  if (task.project_id !== context.projectId) return false;
  if (filters.status.length && !filters.status.includes(task.status)) return false;
  if (filters.priority.length && !filters.priority.includes(task.priority)) return false;
  if (filters.assignee) {
    const wanted = filters.assignee === "me" ? context.me : filters.assignee;
    if (task.assignee_id !== wanted) return false;
  }
  if (filters.tag && !task.tags.includes(filters.tag)) return false;
  return true;
}

/** Newest first, as `GET /tasks` sorts by default (`-created_at`, ids are time-sortable). */
export function byNewest(a: Task, b: Task): number {
  if (a.created_at !== b.created_at) return a.created_at < b.created_at ? 1 : -1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** The board's tasks after `event`; the same array when the event changes nothing here. */
export function applyEvent(tasks: Task[], event: LiveEvent, context: BoardContext): Task[] {
  if (!event.type.startsWith("task.")) return tasks;
  const task = event.data as Task;
  if (!task || typeof task.id !== "string") return tasks;
  const index = tasks.findIndex((shown) => shown.id === task.id);
  if (event.type === "task.deleted") {
    return index < 0 ? tasks : tasks.filter((shown) => shown.id !== task.id);
  }
  if (index >= 0 && tasks[index].version > task.version) return tasks; // a late, older event
  if (!matches(task, context)) {
    return index < 0 ? tasks : tasks.filter((shown) => shown.id !== task.id);
  }
  if (index >= 0) {
    const next = tasks.slice();
    next[index] = task;
    return next;
  }
  if (!context.addNew) return tasks;
  return [...tasks, task].sort(byNewest);
}

export function groupByStatus(tasks: Task[]): Record<TaskStatus, Task[]> {
  const groups = Object.fromEntries(STATUSES.map((status) => [status, [] as Task[]])) as Record<
    TaskStatus,
    Task[]
  >;
  for (const task of tasks) groups[task.status]?.push(task);
  return groups;
}

/** The query of `GET /tasks` for these filters. */
export function taskQuery(projectId: string, filters: BoardFilters): Record<string, string> {
  const query: Record<string, string> = { project_id: projectId };
  if (filters.status.length) query.status = filters.status.join(",");
  if (filters.priority.length) query.priority = filters.priority.join(",");
  if (filters.assignee) query.assignee_id = filters.assignee;
  if (filters.tag) query.tag = filters.tag;
  return query;
}
