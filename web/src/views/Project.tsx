import { useApp } from "../context";
import { href } from "../router";
import type { Member, Project } from "../types";
import { ErrorMessage, Loading, useLoad } from "../ui";
import { BoardView } from "./Board";
import { HooksView } from "./Hooks";
import { MembersView } from "./Members";
import { WorkflowsView } from "./Workflows";

export type ProjectTab = "board" | "members" | "workflows" | "hooks";

export function canManage(role: string): boolean {
  return role === "owner" || role === "admin";
}

export function canWrite(role: string): boolean {
  return role !== "viewer";
}

export function ProjectView({ projectId, tab }: { projectId: string; tab: ProjectTab }) {
  const { api } = useApp();
  const project = useLoad(() => api.get<Project>(`/projects/${encodeURIComponent(projectId)}`), [api, projectId]);
  const members = useLoad(
    () => api.all<Member>(`/projects/${encodeURIComponent(projectId)}/members`),
    [api, projectId],
  );

  if (project.error) {
    return (
      <>
        <h1>Project</h1>
        <ErrorMessage error={project.error} />
        <a href={href({ name: "projects" })}>Back to projects</a>
      </>
    );
  }
  if (!project.data) return <Loading what="the project" />;
  const tabs: [ProjectTab, string][] = [
    ["board", "Board"],
    ["members", "Members"],
    ["workflows", "Workflows"],
  ];
  // Hooks are for the project's owners and admins (the API refuses the others).
  if (canManage(project.data.my_role)) tabs.push(["hooks", "Hooks"]);
  return (
    <>
      <div className="page-head">
        <div>
          <p className="crumbs">
            <a href={href({ name: "projects" })}>Projects</a> /
          </p>
          <h1>{project.data.name}</h1>
          {project.data.description && <p className="muted">{project.data.description}</p>}
        </div>
        <nav className="tabs" aria-label="Project">
          {tabs.map(([name, text]) => (
            <a key={name} href={href({ name, projectId })} aria-current={tab === name ? "page" : undefined}>
              {text}
            </a>
          ))}
        </nav>
      </div>
      {tab === "board" && <BoardView project={project.data} members={members.data ?? []} />}
      {tab === "members" && (
        <MembersView project={project.data} members={members.data} error={members.error} reload={members.reload} />
      )}
      {tab === "workflows" && <WorkflowsView project={project.data} />}
      {tab === "hooks" && <HooksView project={project.data} />}
    </>
  );
}
