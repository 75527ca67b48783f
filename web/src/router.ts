// Hash routes (the files are static; any server can serve them).

export type Route =
  | { name: "projects" }
  | { name: "board"; projectId: string }
  | { name: "members"; projectId: string }
  | { name: "workflows"; projectId: string }
  | { name: "hooks"; projectId: string }
  | { name: "task"; taskId: string }
  | { name: "workflow"; workflowId: string }
  | { name: "run"; runId: string }
  | { name: "notifications" }
  | { name: "tokens" }
  | { name: "not_found"; path: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "").replace(/\/+$/, "") || "/";
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const [first, id, sub] = parts;
  if (parts.length === 0 || (first === "projects" && parts.length === 1)) return { name: "projects" };
  if (first === "projects" && id && parts.length <= 3) {
    if (!sub || sub === "board") return { name: "board", projectId: id };
    if (sub === "members") return { name: "members", projectId: id };
    if (sub === "workflows") return { name: "workflows", projectId: id };
    if (sub === "hooks") return { name: "hooks", projectId: id };
  }
  if (first === "tasks" && id && parts.length === 2) return { name: "task", taskId: id };
  if (first === "workflows" && id && parts.length === 2) return { name: "workflow", workflowId: id };
  if (first === "runs" && id && parts.length === 2) return { name: "run", runId: id };
  if (first === "notifications" && parts.length === 1) return { name: "notifications" };
  if (first === "tokens" && parts.length === 1) return { name: "tokens" };
  return { name: "not_found", path };
}

export function href(route: Route): string {
  const e = encodeURIComponent;
  switch (route.name) {
    case "projects":
      return "#/projects";
    case "board":
      return `#/projects/${e(route.projectId)}`;
    case "members":
      return `#/projects/${e(route.projectId)}/members`;
    case "workflows":
      return `#/projects/${e(route.projectId)}/workflows`;
    case "hooks":
      return `#/projects/${e(route.projectId)}/hooks`;
    case "task":
      return `#/tasks/${e(route.taskId)}`;
    case "workflow":
      return `#/workflows/${e(route.workflowId)}`;
    case "run":
      return `#/runs/${e(route.runId)}`;
    case "notifications":
      return "#/notifications";
    case "tokens":
      return "#/tokens";
    case "not_found":
      return `#${route.path}`;
  }
}
