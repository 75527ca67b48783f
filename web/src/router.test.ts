import { describe, expect, it } from "vitest";
import { href, parseRoute, type Route } from "./router";

describe("routes", () => {
  it("parse what href writes", () => {
    const routes: Route[] = [
      { name: "projects" },
      { name: "board", projectId: "01H/x" },
      { name: "members", projectId: "p" },
      { name: "workflows", projectId: "p" },
      { name: "hooks", projectId: "p" },
      { name: "task", taskId: "t" },
      { name: "workflow", workflowId: "w" },
      { name: "run", runId: "r" },
      { name: "notifications" },
      { name: "tokens" },
    ];
    for (const route of routes) expect(parseRoute(href(route))).toEqual(route);
  });

  it("default to projects and name unknown paths", () => {
    expect(parseRoute("")).toEqual({ name: "projects" });
    expect(parseRoute("#/")).toEqual({ name: "projects" });
    expect(parseRoute("#/projects/p/board")).toEqual({ name: "board", projectId: "p" });
    expect(parseRoute("#/nowhere/else")).toEqual({ name: "not_found", path: "/nowhere/else" });
  });
});
