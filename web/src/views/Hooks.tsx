import { useState, type FormEvent } from "react";
import { useApp } from "../context";
import { formatTime } from "../format";
import { HOOK_EVENTS, type Hook, type HookDelivery, type Project } from "../types";
import { ActionButton, ErrorMessage, Loading, Section, StatusBadge, useLoad } from "../ui";
import { canManage } from "./Project";

/** Project webhooks: list, create, edit (URL, events, on/off), delete; a hook's delivery log
 * with a redeliver button per delivery. Owners and admins only (the API answers 403 otherwise). */
export function HooksView({ project }: { project: Project }) {
  const { api } = useApp();
  const base = `/projects/${encodeURIComponent(project.id)}/hooks`;
  const hooks = useLoad(() => api.all<Hook>(base), [api, base]);
  const [selected, setSelected] = useState<string | null>(null);
  const [actionError, setActionError] = useState<unknown>(null);

  if (!canManage(project.my_role)) {
    return (
      <Section title="Hooks">
        <p>Only the project's owners and admins manage its hooks.</p>
      </Section>
    );
  }
  const chosen = hooks.data?.find((hook) => hook.id === selected) ?? null;
  return (
    <div className="two-col">
      <div>
        <Section title="Hooks">
          {!hooks.data && !hooks.error && <Loading what="hooks" />}
          <ErrorMessage error={hooks.error || actionError} />
          {hooks.data?.length === 0 && <p className="muted">No hooks yet.</p>}
          <ul className="hook-list">
            {hooks.data?.map((hook) => (
              <HookRow
                key={hook.id}
                hook={hook}
                open={hook.id === selected}
                onOpen={() => setSelected(hook.id === selected ? null : hook.id)}
                onError={setActionError}
                reload={hooks.reload}
              />
            ))}
          </ul>
        </Section>
        {chosen && <Deliveries hook={chosen} />}
      </div>
      <NewHook base={base} reload={hooks.reload} />
    </div>
  );
}

function EventChoices({ chosen, onChange, name }: { chosen: string[]; onChange: (events: string[]) => void; name: string }) {
  return (
    <fieldset>
      <legend>Events</legend>
      {HOOK_EVENTS.map((event) => (
        <label key={event} className="check">
          <input
            type="checkbox"
            name={name}
            value={event}
            checked={chosen.includes(event)}
            onChange={(e) =>
              onChange(e.target.checked ? [...chosen, event] : chosen.filter((x) => x !== event))
            }
          />{" "}
          {event}
        </label>
      ))}
    </fieldset>
  );
}

function NewHook({ base, reload }: { base: string; reload: () => Promise<void> }) {
  const { api } = useApp();
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState<string[]>(["task.created"]);
  const [error, setError] = useState<unknown>(null);

  async function create(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      await api.request("POST", base, { body: { url: url.trim(), events } });
      setUrl("");
      await reload();
    } catch (caught) {
      setError(caught);
    }
  }

  return (
    <Section title="Add a hook">
      <form onSubmit={create} aria-label="Add a hook">
        <label>
          URL
          <input type="url" required value={url} placeholder="https://example.com/taskbeat" onChange={(e) => setUrl(e.target.value)} />
        </label>
        <EventChoices chosen={events} onChange={setEvents} name="new-hook-events" />
        <ErrorMessage error={error} />
        <button type="submit" disabled={events.length === 0}>
          Add hook
        </button>
      </form>
      <p className="muted small">
        Each matching event is POSTed as JSON with <code>X-Taskbeat-Event</code>, <code>X-Taskbeat-Delivery</code> and{" "}
        <code>X-Taskbeat-Signature</code> (the project's webhook secret). Failed deliveries are retried for 24 hours; 20
        failed deliveries in a row turn the hook off.
      </p>
    </Section>
  );
}

function HookRow({
  hook,
  open,
  onOpen,
  onError,
  reload,
}: {
  hook: Hook;
  open: boolean;
  onOpen: () => void;
  onError: (error: unknown) => void;
  reload: () => Promise<void>;
}) {
  const { api } = useApp();
  const path = `/hooks/${encodeURIComponent(hook.id)}`;
  const [editing, setEditing] = useState(false);
  const [url, setUrl] = useState(hook.url);
  const [events, setEvents] = useState<string[]>(hook.events);

  async function save(event: FormEvent) {
    event.preventDefault();
    try {
      await api.request("PATCH", path, { body: { url: url.trim(), events }, ifMatch: hook.version });
      setEditing(false);
      await reload();
    } catch (caught) {
      onError(caught);
    }
  }

  return (
    <li className="hook" data-hook-id={hook.id}>
      <div className="hook-head">
        <code className="hook-url">{hook.url}</code>{" "}
        <span className={`badge ${hook.active ? "status-succeeded" : "status-cancelled"}`}>
          {hook.active ? "On" : "Off"}
        </span>
        {hook.consecutive_failures > 0 && (
          <span className="muted small"> {hook.consecutive_failures} failed in a row</span>
        )}
      </div>
      <p className="muted small">{hook.events.join(", ")}</p>
      <div className="actions">
        <button type="button" className="small" onClick={onOpen} aria-expanded={open}>
          {open ? "Hide deliveries" : "Deliveries"}
        </button>
        <button type="button" className="small" onClick={() => setEditing(!editing)}>
          Edit
        </button>
        <ActionButton
          className="small"
          onError={onError}
          action={async () => {
            await api.request("PATCH", path, { body: { active: !hook.active }, ifMatch: hook.version });
            await reload();
          }}
        >
          {hook.active ? "Turn off" : "Turn on"}
        </ActionButton>
        <ActionButton
          className="danger small"
          aria-label={`Delete hook ${hook.url}`}
          onError={onError}
          action={async () => {
            if (!window.confirm(`Delete the hook to ${hook.url}?`)) return;
            await api.request("DELETE", path, { ifMatch: hook.version });
            await reload();
          }}
        >
          Delete
        </ActionButton>
      </div>
      {editing && (
        <form onSubmit={save} aria-label="Edit hook">
          <label>
            URL
            <input type="url" required value={url} onChange={(e) => setUrl(e.target.value)} />
          </label>
          <EventChoices chosen={events} onChange={setEvents} name={`events-${hook.id}`} />
          <button type="submit" disabled={events.length === 0}>
            Save hook
          </button>
        </form>
      )}
    </li>
  );
}

function Deliveries({ hook }: { hook: Hook }) {
  const { api } = useApp();
  const path = `/hooks/${encodeURIComponent(hook.id)}/deliveries`;
  const log = useLoad(() => api.get<{ items: HookDelivery[] }>(path, { limit: 50 }), [api, path]);
  const [error, setError] = useState<unknown>(null);
  const [queued, setQueued] = useState<string | null>(null);
  return (
    <Section title="Deliveries" id="deliveries">
      <p className="muted small">
        To <code>{hook.url}</code>, newest first.{" "}
        <button type="button" className="small" onClick={() => void log.reload()}>
          Refresh
        </button>
      </p>
      {!log.data && !log.error && <Loading what="deliveries" />}
      <ErrorMessage error={log.error || error} />
      {queued && (
        <p role="status" className="muted">
          Queued again as a new delivery.
        </p>
      )}
      {log.data?.items.length === 0 && <p className="muted">No deliveries yet.</p>}
      {log.data && log.data.items.length > 0 && (
        <table className="table deliveries">
          <thead>
            <tr>
              <th scope="col">Event</th>
              <th scope="col">Status</th>
              <th scope="col">Attempts</th>
              <th scope="col">Response</th>
              <th scope="col">Made</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {log.data.items.map((delivery) => (
              <tr key={delivery.id} data-delivery-id={delivery.id}>
                <td>{delivery.event_type}</td>
                <td>
                  <StatusBadge status={delivery.status} />
                </td>
                <td>{delivery.attempts}</td>
                <td>{delivery.response_status ?? delivery.error ?? "—"}</td>
                <td>{formatTime(delivery.created_at)}</td>
                <td>
                  <ActionButton
                    className="small"
                    aria-label={`Redeliver ${delivery.event_type} ${delivery.id}`}
                    onError={setError}
                    action={async () => {
                      setError(null);
                      const made = await api.request<HookDelivery>(
                        "POST",
                        `/deliveries/${encodeURIComponent(delivery.id)}/redeliver`,
                      );
                      setQueued(made.id);
                      await log.reload();
                    }}
                  >
                    Redeliver
                  </ActionButton>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}
