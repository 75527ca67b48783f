import { useRef, useState, type FormEvent } from "react";
import { useApp } from "../context";
import { formatDate, formatTime } from "../format";
import { EXPIRIES, SCOPES, expired, tokenBody } from "../tokens";
import type { ApiToken, CreatedApiToken, TokenScope } from "../types";
import { ActionButton, ErrorMessage, Loading, useLoad } from "../ui";

/** API tokens for scripts: create one (its secret shown once, with a copy button), list, revoke. */
export function TokensView() {
  const { api, toast } = useApp();
  const tokens = useLoad(() => api.all<ApiToken>("/users/profile/tokens"), [api]);
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<TokenScope[]>(["read"]);
  const [expiry, setExpiry] = useState(EXPIRIES[0].value);
  const [created, setCreated] = useState<CreatedApiToken | null>(null);
  const [copied, setCopied] = useState<"no" | "yes" | "failed">("no");
  const [error, setError] = useState<unknown>(null);
  const secretRef = useRef<HTMLInputElement>(null);

  async function create(event: FormEvent) {
    event.preventDefault();
    setError(null);
    const built = tokenBody({ name, scopes, expiry });
    if ("problem" in built) {
      setError(new Error(built.problem));
      return;
    }
    try {
      const made = await api.request<CreatedApiToken>("POST", "/users/profile/tokens", { body: built.body });
      setCreated(made);
      setCopied("no");
      setName("");
      const { token: _secret, ...shown } = made;
      tokens.set((list) => [shown, ...(list ?? [])]);
    } catch (caught) {
      setError(caught);
    }
  }

  async function copy() {
    if (!created) return;
    try {
      await navigator.clipboard.writeText(created.token);
      setCopied("yes");
    } catch {
      secretRef.current?.select(); // the person copies the selection themselves
      setCopied("failed");
    }
  }

  async function revoke(token: ApiToken) {
    if (!window.confirm(`Revoke “${token.name}”? Scripts using it stop working at once.`)) return;
    await api.request("DELETE", `/users/profile/tokens/${encodeURIComponent(token.id)}`);
    tokens.set((list) => (list ?? []).filter((t) => t.id !== token.id));
    if (created?.id === token.id) setCreated(null);
    toast(`Revoked ${token.name}`);
  }

  const toggle = (scope: TokenScope, on: boolean) =>
    setScopes((chosen) => (on ? [...chosen.filter((s) => s !== scope), scope] : chosen.filter((s) => s !== scope)));

  return (
    <>
      <h1>API tokens</h1>
      <p className="muted">
        Scripts send a token as <code>Authorization: Bearer tb_…</code> and act as you, within its scopes. A token
        cannot manage tokens, change your profile or roles, or sign out.
      </p>
      {created && (
        <section className="panel token-created" aria-labelledby="created-heading">
          <h2 id="created-heading">Token “{created.name}” created</h2>
          <p>Copy it now: it is shown only this once.</p>
          <div className="token-secret">
            <input
              ref={secretRef}
              readOnly
              aria-label="Token secret"
              value={created.token}
              onFocus={(e) => e.target.select()}
            />
            <button type="button" onClick={() => void copy()}>
              Copy
            </button>
          </div>
          <p role="status" className="muted">
            {copied === "yes" ? "Copied to the clipboard." : copied === "failed" ? "Selected: press Ctrl+C to copy." : ""}
          </p>
          <button type="button" className="secondary" onClick={() => setCreated(null)}>
            Done
          </button>
        </section>
      )}
      <div className="two-col">
        <section aria-labelledby="token-list-heading">
          <h2 id="token-list-heading">Your tokens</h2>
          {tokens.loading && !tokens.data && <Loading what="tokens" />}
          <ErrorMessage error={tokens.error} />
          {tokens.data?.length === 0 && <p className="muted">No tokens yet.</p>}
          {tokens.data && tokens.data.length > 0 && (
            <table className="table" aria-label="Your tokens">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Scopes</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Last used</th>
                  <th scope="col">
                    <span className="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {tokens.data.map((token) => (
                  <tr key={token.id}>
                    <td>
                      {token.name}
                      <br />
                      <code className="muted">{token.prefix}…</code>
                    </td>
                    <td>{token.scopes.join(", ")}</td>
                    <td>
                      {token.expires_at === null ? "Never" : formatDate(token.expires_at)}
                      {expired(token) && <span className="badge"> expired</span>}
                    </td>
                    <td>{token.last_used_at ? formatTime(token.last_used_at) : "Never"}</td>
                    <td>
                      <ActionButton
                        className="secondary small"
                        aria-label={`Revoke ${token.name}`}
                        onError={setError}
                        action={() => revoke(token)}
                      >
                        Revoke
                      </ActionButton>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
        <section className="panel" aria-labelledby="new-token-heading">
          <h2 id="new-token-heading">New token</h2>
          <form onSubmit={create}>
            <label>
              Name
              <input required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />
            </label>
            <fieldset>
              <legend>Scopes</legend>
              {SCOPES.map(({ scope, label, hint }) => (
                <label key={scope} className="check">
                  <input
                    type="checkbox"
                    checked={scopes.includes(scope)}
                    onChange={(e) => toggle(scope, e.target.checked)}
                  />{" "}
                  {label} <span className="muted">({hint})</span>
                </label>
              ))}
            </fieldset>
            <label>
              Expires
              <select value={expiry} onChange={(e) => setExpiry(e.target.value)}>
                {EXPIRIES.map((option) => (
                  <option key={option.value} value={option.value}>
                    {option.label}
                  </option>
                ))}
              </select>
            </label>
            <ErrorMessage error={error} />
            <button type="submit">Create token</button>
          </form>
        </section>
      </div>
    </>
  );
}
