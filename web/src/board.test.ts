import { describe, expect, it } from "vitest";
import { applyEvent, groupByStatus, NO_FILTERS, taskQuery, type BoardContext } from "./board";
import type { LiveEvent, Task } from "./types";

function task(fields: Partial<Task>): Task {
  return {
    id: "t1",
    project_id: "p1",
    title: "Task",
    description: null,
    status: "pending",
    priority: "medium",
    due_date: null,
    assignee_id: null,
    tags: [],
    parent_id: null,
    depends_on: [],
    schedule: null,
    action: null,
    retry: null,
    next_run_at: null,
    created_by: "u1",
    created_at: "2026-01-01T00:00:00Z",
    updated_at: "2026-01-01T00:00:00Z",
    completed_at: null,
    version: 1,
    ...fields,
  };
}

const event = (type: LiveEvent["type"], data: unknown): LiveEvent => ({ id: "e", type, at: "", data });
const context = (fields: Partial<BoardContext> = {}): BoardContext => ({
  projectId: "p1",
  filters: NO_FILTERS,
  me: "u1",
  addNew: true,
  ...fields,
});

describe("applyEvent", () => {
  it("adds a created task of the project, newest first", () => {
    const older = task({ id: "t1", created_at: "2026-01-01T00:00:00Z" });
    const newer = task({ id: "t2", created_at: "2026-01-02T00:00:00Z" });
    expect(applyEvent([older], event("task.created", newer), context()).map((t) => t.id)).toEqual(["t2", "t1"]);
  });

  it("ignores tasks of other projects and events that are not about tasks", () => {
    const shown = [task({})];
    expect(applyEvent(shown, event("task.created", task({ id: "t9", project_id: "p2" })), context())).toBe(shown);
    expect(applyEvent(shown, event("comment.created", { id: "c1", task_id: "t1" }), context())).toBe(shown);
  });

  it("replaces an updated task in place, so it moves to its new status column", () => {
    const shown = [task({ id: "t1" }), task({ id: "t2" })];
    const done = task({ id: "t1", status: "completed", version: 2 });
    const next = applyEvent(shown, event("task.updated", done), context());
    expect(next[0]).toBe(done);
    expect(groupByStatus(next).completed.map((t) => t.id)).toEqual(["t1"]);
    expect(groupByStatus(next).pending.map((t) => t.id)).toEqual(["t2"]);
  });

  it("keeps the newer version when an older event arrives late", () => {
    const shown = [task({ version: 3, title: "new" })];
    expect(applyEvent(shown, event("task.updated", task({ version: 2, title: "old" })), context())).toBe(shown);
  });

  it("removes deleted tasks, and tasks that no longer match the filters", () => {
    const shown = [task({ id: "t1" }), task({ id: "t2" })];
    expect(applyEvent(shown, event("task.deleted", task({ id: "t1" })), context()).map((t) => t.id)).toEqual(["t2"]);
    const openOnly = context({ filters: { ...NO_FILTERS, status: ["pending", "in_progress"] } });
    const completed = task({ id: "t2", status: "completed", version: 2 });
    expect(applyEvent(shown, event("task.updated", completed), openOnly).map((t) => t.id)).toEqual(["t1"]);
  });

  it("applies every filter to new tasks, `me` meaning the signed-in user", () => {
    const filters = { status: [], priority: ["high" as const], assignee: "me", tag: "ops" };
    const ctx = context({ filters: { ...filters, priority: ["high"] } });
    const match = task({ id: "t5", priority: "high", assignee_id: "u1", tags: ["ops", "x"] });
    expect(applyEvent([], event("task.created", match), ctx)).toEqual([match]);
    for (const miss of [
      { ...match, priority: "low" as const },
      { ...match, assignee_id: "u2" },
      { ...match, tags: ["x"] },
    ]) {
      expect(applyEvent([], event("task.created", miss), ctx)).toEqual([]);
    }
  });

  it("adds nothing new while search results are shown, but updates what is shown", () => {
    const shown = [task({ id: "t1" })];
    const searching = context({ addNew: false });
    expect(applyEvent(shown, event("task.created", task({ id: "t2" })), searching)).toBe(shown);
    const renamed = task({ id: "t1", title: "renamed", version: 2 });
    expect(applyEvent(shown, event("task.updated", renamed), searching)[0].title).toBe("renamed");
  });
});

describe("taskQuery", () => {
  it("names the filters as GET /tasks takes them", () => {
    expect(taskQuery("p1", NO_FILTERS)).toEqual({ project_id: "p1" });
    expect(
      taskQuery("p1", { status: ["pending", "in_progress"], priority: ["urgent"], assignee: "me", tag: "ops" }),
    ).toEqual({ project_id: "p1", status: "pending,in_progress", priority: "urgent", assignee_id: "me", tag: "ops" });
  });
});
