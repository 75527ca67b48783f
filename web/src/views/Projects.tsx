import { useState, type FormEvent } from "react";
import { useApp } from "../context";
import { formatDate, label } from "../format";
import { href } from "../router";
import type { Project } from "../types";
import { ErrorMessage, Loading, useLoad } from "../ui";

export function ProjectsView() {
  const { api } = useApp();
  const projects = useLoad(() => api.all<Project>("/projects"), [api]);
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [error, setError] = useState<unknown>(null);

  async function create(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      const project = await api.request<Project>("POST", "/projects", {
        body: { name: name.trim(), ...(description.trim() ? { description: description.trim() } : {}) },
      });
      setName("");
      setDescription("");
      window.location.hash = href({ name: "board", projectId: project.id });
    } catch (caught) {
      setError(caught);
    }
  }

  return (
    <>
      <h1>Projects</h1>
      <div className="two-col">
        <section aria-labelledby="project-list-heading">
          <h2 id="project-list-heading" className="visually-hidden">
            Your projects
          </h2>
          {projects.loading && !projects.data && <Loading what="projects" />}
          <ErrorMessage error={projects.error} />
          <ul className="cards" aria-label="Your projects">
            {projects.data?.map((project) => (
              <li key={project.id} className="card">
                <a className="card-title" href={href({ name: "board", projectId: project.id })}>
                  {project.name}
                </a>
                {project.description && <p className="muted">{project.description}</p>}
                <p className="meta">
                  <span className="badge">{label(project.my_role)}</span> since {formatDate(project.created_at)}
                </p>
              </li>
            ))}
          </ul>
        </section>
        <section className="panel" aria-labelledby="new-project-heading">
          <h2 id="new-project-heading">New project</h2>
          <form onSubmit={create}>
            <label>
              Name
              <input required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
            </label>
            <label>
              Description <span className="muted">(optional)</span>
              <textarea rows={3} value={description} onChange={(e) => setDescription(e.target.value)} />
            </label>
            <ErrorMessage error={error} />
            <button type="submit">Create project</button>
          </form>
        </section>
      </div>
    </>
  );
}
