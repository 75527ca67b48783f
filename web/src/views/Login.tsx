import { useState, type FormEvent } from "react";
import type { Api } from "../api";
import { ErrorMessage } from "../ui";

export function LoginView({ api, onSignedIn }: { api: Api; onSignedIn: () => Promise<void> }) {
  const [mode, setMode] = useState<"login" | "register">("login");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [name, setName] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === "login") await api.login(email.trim(), password);
      else await api.register(email.trim(), password, name.trim());
      await onSignedIn();
    } catch (caught) {
      setError(caught);
      setBusy(false);
    }
  }

  const registering = mode === "register";
  return (
    <main id="main" className="login">
      <div className="login-card">
        <h1>
          <img src={`${import.meta.env.BASE_URL}favicon.svg`} alt="" width="32" height="32" /> Taskbeat
        </h1>
        <p className="muted">{registering ? "Create your account." : "Sign in to your projects."}</p>
        <form onSubmit={submit} aria-label={registering ? "Create account" : "Sign in"}>
          {registering && (
            <label>
              Name
              <input
                name="name"
                autoComplete="name"
                required
                value={name}
                onChange={(e) => setName(e.target.value)}
              />
            </label>
          )}
          <label>
            Email
            <input
              name="email"
              type="email"
              autoComplete="email"
              required
              value={email}
              onChange={(e) => setEmail(e.target.value)}
            />
          </label>
          <label>
            Password
            <input
              name="password"
              type="password"
              autoComplete={registering ? "new-password" : "current-password"}
              required
              minLength={registering ? 8 : undefined}
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
          </label>
          <ErrorMessage error={error} />
          <button type="submit" disabled={busy}>
            {registering ? "Create account" : "Sign in"}
          </button>
        </form>
        <p>
          {registering ? "Have an account? " : "New here? "}
          <button
            type="button"
            className="link"
            onClick={() => {
              setMode(registering ? "login" : "register");
              setError(null);
            }}
          >
            {registering ? "Sign in" : "Create an account"}
          </button>
        </p>
      </div>
    </main>
  );
}
