import { useState, type FormEvent } from "react";
import { useApp } from "../context";
import { formatDate, label } from "../format";
import type { Member, Project, Role } from "../types";
import { ActionButton, ErrorMessage, Loading, Section } from "../ui";
import { canManage } from "./Project";

const ROLES: Role[] = ["admin", "member", "viewer"];

export function MembersView({
  project,
  members,
  error,
  reload,
}: {
  project: Project;
  members: Member[] | null;
  error: unknown;
  reload: () => Promise<void>;
}) {
  const { api, me } = useApp();
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Role>("member");
  const [actionError, setActionError] = useState<unknown>(null);
  const manage = canManage(project.my_role);
  const base = `/projects/${encodeURIComponent(project.id)}/members`;

  async function add(event: FormEvent) {
    event.preventDefault();
    setActionError(null);
    try {
      await api.request("POST", base, { body: { email: email.trim(), role } });
      setEmail("");
      await reload();
    } catch (caught) {
      setActionError(caught);
    }
  }

  return (
    <div className="two-col">
      <Section title="Members">
        {!members && !error && <Loading what="members" />}
        <ErrorMessage error={error || actionError} />
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Role</th>
              <th scope="col">Added</th>
              {manage && (
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {members?.map((member) => {
              const owner = member.role === "owner";
              return (
                <tr key={member.user_id}>
                  <td>
                    {member.name}
                    {member.user_id === me.id && <span className="muted"> (you)</span>}
                    <br />
                    <span className="muted small">{member.email}</span>
                  </td>
                  <td>
                    {manage && !owner ? (
                      <select
                        aria-label={`Role of ${member.name}`}
                        value={member.role}
                        onChange={async (e) => {
                          setActionError(null);
                          try {
                            await api.request("PATCH", `${base}/${encodeURIComponent(member.user_id)}`, {
                              body: { role: e.target.value },
                            });
                            await reload();
                          } catch (caught) {
                            setActionError(caught);
                          }
                        }}
                      >
                        {ROLES.map((r) => (
                          <option key={r} value={r}>
                            {label(r)}
                          </option>
                        ))}
                      </select>
                    ) : (
                      <span className="badge">{label(member.role)}</span>
                    )}
                  </td>
                  <td>{formatDate(member.added_at)}</td>
                  {manage && (
                    <td>
                      {!owner && (
                        <ActionButton
                          className="danger small"
                          aria-label={`Remove ${member.name}`}
                          onError={setActionError}
                          action={async () => {
                            if (!window.confirm(`Remove ${member.name} from ${project.name}?`)) return;
                            await api.request("DELETE", `${base}/${encodeURIComponent(member.user_id)}`);
                            await reload();
                          }}
                        >
                          Remove
                        </ActionButton>
                      )}
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      </Section>
      {manage ? (
        <Section title="Add a member">
          <form onSubmit={add}>
            <label>
              Email
              <input type="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
            </label>
            <label>
              Role
              <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
                {ROLES.map((r) => (
                  <option key={r} value={r}>
                    {label(r)}
                  </option>
                ))}
              </select>
            </label>
            <button type="submit">Add member</button>
          </form>
          <p className="muted small">
            Owners and admins manage members; members change tasks and workflows; viewers read.
          </p>
        </Section>
      ) : (
        <Section title="Your role">
          <p>
            You are a <strong>{project.my_role}</strong> here. Owners and admins manage members.
          </p>
        </Section>
      )}
    </div>
  );
}
