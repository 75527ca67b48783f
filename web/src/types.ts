// Resources as the HTTP API returns them (shared/API.md).

export interface User {
  id: string;
  email: string;
  name: string;
  role: "admin" | "member";
  timezone: string;
  created_at: string;
  updated_at: string;
  version: number;
}

export interface AuthResponse {
  user?: User;
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
}

export type Role = "owner" | "admin" | "member" | "viewer";

export interface Project {
  id: string;
  name: string;
  description: string | null;
  owner_id: string;
  my_role: Role;
  created_at: string;
  updated_at: string;
  version: number;
}

export interface Member {
  user_id: string;
  email: string;
  name: string;
  role: Role;
  added_at: string;
}

export const STATUSES = ["pending", "in_progress", "completed", "cancelled"] as const;
export type TaskStatus = (typeof STATUSES)[number];
export const PRIORITIES = ["low", "medium", "high", "urgent"] as const;
export type Priority = (typeof PRIORITIES)[number];

export type Schedule =
  | ScheduleCommon & { kind: "once"; at: string }
  | ScheduleCommon & { kind: "rate"; every: number; unit: "minutes" | "hours" | "days" }
  | ScheduleCommon & { kind: "cron"; expression: string };

export interface ScheduleCommon {
  timezone?: string | null;
  start_at?: string | null;
  end_at?: string | null;
  paused?: boolean;
  overlap?: "skip" | "allow" | "buffer_one";
}

export interface WebhookAction {
  type: "webhook";
  url: string;
  method: "POST" | "GET" | "PUT" | "PATCH" | "DELETE";
  headers?: Record<string, string> | null;
  body?: unknown;
  timeout_seconds?: number;
}

export interface Task {
  id: string;
  project_id: string;
  title: string;
  description: string | null;
  status: TaskStatus;
  priority: Priority;
  due_date: string | null;
  assignee_id: string | null;
  tags: string[];
  parent_id: string | null;
  depends_on: string[];
  schedule: Schedule | null;
  action: WebhookAction | null;
  retry: { max_attempts: number; backoff_seconds: number; backoff_rate: number } | null;
  next_run_at: string | null;
  created_by: string;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
  version: number;
}

export interface Comment {
  id: string;
  task_id: string;
  author_id: string;
  body: string;
  created_at: string;
}

export interface HistoryEvent {
  id: string;
  type: string;
  actor_id: string | null;
  at: string;
  changes: Record<string, [unknown, unknown]> | null;
}

export type ExecutionStatus =
  | "queued"
  | "running"
  | "succeeded"
  | "failed"
  | "timed_out"
  | "skipped"
  | "cancelled";

export interface Execution {
  id: string;
  task_id: string;
  workflow_run_id: string | null;
  trigger: "schedule" | "manual" | "workflow";
  scheduled_for: string | null;
  started_at: string | null;
  finished_at: string | null;
  status: ExecutionStatus;
  project_id: string;
  attempts: number;
  result: { status_code?: number; duration_ms?: number; body_excerpt?: string } | null;
  error: string | null;
}

export interface WorkflowStep {
  key: string;
  task_id: string;
  depends_on: string[];
}

export interface Workflow {
  id: string;
  project_id: string;
  name: string;
  steps: WorkflowStep[];
  max_concurrency: number;
  on_failure: "stop" | "continue";
  schedule?: Schedule | null;
  version: number;
  created_at?: string;
}

export interface RunStep {
  key: string;
  task_id: string;
  status: ExecutionStatus;
  execution_id: string | null;
  started_at: string | null;
  finished_at: string | null;
  error: string | null;
}

export interface WorkflowRun {
  id: string;
  workflow_id: string;
  project_id: string;
  trigger: string;
  created_at: string;
  status: ExecutionStatus;
  started_at: string | null;
  finished_at: string | null;
  steps: RunStep[];
}

export interface Notification {
  id: string;
  type: string;
  task_id?: string | null;
  project_id?: string | null;
  message: string;
  read: boolean;
  created_at: string;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** A server → client WebSocket event. */
export interface LiveEvent {
  id: string;
  type:
    | "task.created"
    | "task.updated"
    | "task.deleted"
    | "comment.created"
    | "execution.updated"
    | "workflow_run.updated"
    | "notification";
  at: string;
  data: unknown;
}

export const TERMINAL: ReadonlySet<string> = new Set([
  "succeeded",
  "failed",
  "timed_out",
  "skipped",
  "cancelled",
]);

export type TokenScope = "read" | "write" | "run";

/** An API token as lists show it (never its secret). */
export interface ApiToken {
  id: string;
  name: string;
  scopes: TokenScope[];
  prefix: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
}

/** The creation's answer: the only one that carries `token`. */
export interface CreatedApiToken extends ApiToken {
  token: string;
}

/** A project webhook (event subscription), admin+. */
export interface Hook {
  id: string;
  project_id: string;
  url: string;
  events: string[];
  active: boolean;
  consecutive_failures: number;
  created_by: string;
  created_at: string;
  updated_at: string;
  version: number;
}

/** One delivery of an event to a hook, with its attempts' outcome. */
export interface HookDelivery {
  id: string;
  hook_id: string;
  event_id: string;
  event_type: string;
  status: "pending" | "succeeded" | "failed";
  attempts: number;
  response_status: number | null;
  error: string | null;
  redelivery_of: string | null;
  created_at: string;
  updated_at: string | null;
}

/** The event types a hook may subscribe to (the WebSocket's project events). */
export const HOOK_EVENTS = [
  "task.created",
  "task.updated",
  "task.deleted",
  "comment.created",
  "execution.updated",
  "workflow_run.updated",
] as const;
