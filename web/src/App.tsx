import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { Api } from "./api";
import { AppContext, type AppContextValue } from "./context";
import { LiveSocket, type LiveState } from "./live";
import { href, parseRoute, type Route } from "./router";
import type { LiveEvent, Notification, Page, User } from "./types";
import { ErrorMessage } from "./ui";
import { LoginView } from "./views/Login";
import { NotificationsView } from "./views/Notifications";
import { ProjectView } from "./views/Project";
import { ProjectsView } from "./views/Projects";
import { RunView } from "./views/Run";
import { TaskView } from "./views/Task";
import { TokensView } from "./views/Tokens";
import { WorkflowView } from "./views/Workflow";

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const update = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener("hashchange", update);
    return () => window.removeEventListener("hashchange", update);
  }, []);
  return route;
}

export function App({ api, wsUrl }: { api: Api; wsUrl: string }) {
  const [me, setMe] = useState<User | null>(null);
  const [phase, setPhase] = useState<"starting" | "out" | "in">("starting");
  const [error, setError] = useState<unknown>(null);

  const signedIn = useCallback(async () => {
    const user = await api.get<User>("/users/profile");
    setMe(user);
    setPhase("in");
  }, [api]);

  useEffect(() => {
    let cancelled = false;
    api
      .restore()
      .then(async (restored) => {
        if (cancelled) return;
        if (restored) await signedIn();
        else setPhase("out");
      })
      .catch((caught) => {
        if (!cancelled) {
          setError(caught);
          setPhase("out");
        }
      });
    const stop = api.onSessionChange((isIn) => {
      if (!isIn) {
        setMe(null);
        setPhase("out");
      }
    });
    return () => {
      cancelled = true;
      stop();
    };
  }, [api, signedIn]);

  if (phase === "starting") {
    return (
      <p className="muted center" role="status">
        Loading Taskbeat…
      </p>
    );
  }
  if (phase === "out" || !me) {
    return (
      <>
        <ErrorMessage error={error} />
        <LoginView api={api} onSignedIn={signedIn} />
      </>
    );
  }
  return <SignedIn api={api} wsUrl={wsUrl} me={me} />;
}

interface Toast {
  id: number;
  message: string;
  kind: "info" | "error";
}

function SignedIn({ api, wsUrl, me }: { api: Api; wsUrl: string; me: User }) {
  const route = useRoute();
  const [liveState, setLiveState] = useState<LiveState>("connecting");
  const [confirmed, setConfirmed] = useState<string[]>([]);
  const [unread, setUnreadState] = useState(0);
  const [toasts, setToasts] = useState<Toast[]>([]);
  const listeners = useRef(new Set<(event: LiveEvent) => void>());
  const channels = useRef(new Map<string, number>());
  const nextToast = useRef(1);

  const toast = useCallback((message: string, kind: "info" | "error" = "info") => {
    const id = nextToast.current++;
    setToasts((shown) => [...shown.slice(-3), { id, message, kind }]);
    window.setTimeout(() => setToasts((shown) => shown.filter((t) => t.id !== id)), 8000);
  }, []);

  const live = useMemo(
    () =>
      new LiveSocket({
        url: wsUrl,
        token: async (reconnecting) => {
          // A reconnect may come after the access token expired: any call refreshes it.
          if (reconnecting) await api.get("/users/profile");
          return api.token;
        },
        onEvent: (event) => listeners.current.forEach((listener) => listener(event)),
        onState: setLiveState,
        onConfirmed: setConfirmed,
        onGone: () => toast("Away too long to catch up on every change: reload to see them all"),
      }),
    [api, wsUrl, toast],
  );

  useEffect(() => {
    live.start();
    return () => live.stop();
  }, [live]);

  useEffect(() => {
    api
      .get<Page<Notification>>("/notifications", { unread: true, limit: 100 })
      .then((page) => setUnreadState(page.items.length + (page.next_cursor ? 1 : 0)))
      .catch(() => undefined);
  }, [api]);

  const onLive = useCallback((listener: (event: LiveEvent) => void) => {
    listeners.current.add(listener);
    return () => {
      listeners.current.delete(listener);
    };
  }, []);

  const holdChannel = useCallback(
    (channel: string) => {
      const count = channels.current.get(channel) ?? 0;
      channels.current.set(channel, count + 1);
      if (count === 0) live.subscribe(channel);
      return () => {
        const left = (channels.current.get(channel) ?? 1) - 1;
        if (left <= 0) {
          channels.current.delete(channel);
          live.unsubscribe(channel);
        } else channels.current.set(channel, left);
      };
    },
    [live],
  );

  // Notifications arrive on every connection of their user.
  useEffect(
    () =>
      onLive((event) => {
        if (event.type !== "notification") return;
        const notification = event.data as Notification;
        if (!notification.read) setUnreadState((count) => count + 1);
        toast(notification.message);
      }),
    [onLive, toast],
  );

  const context: AppContextValue = useMemo(
    () => ({
      api,
      me,
      liveState,
      onLive,
      holdChannel,
      toast,
      unread,
      setUnread: (update) => setUnreadState((count) => Math.max(0, update(count))),
    }),
    [api, me, liveState, onLive, holdChannel, toast, unread],
  );

  const mainRef = useRef<HTMLElement>(null);
  useEffect(() => {
    // After navigation, move focus to the new page's heading for keyboard and screen readers.
    const heading = mainRef.current?.querySelector("h1");
    if (heading instanceof HTMLElement && document.activeElement === document.body) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
  }, [route]);

  return (
    <AppContext.Provider value={context}>
      <a className="skip-link" href="#main" onClick={(event) => {
        event.preventDefault();
        mainRef.current?.focus();
      }}>
        Skip to content
      </a>
      <header className="topbar">
        <a className="brand" href={href({ name: "projects" })}>
          <img src={`${import.meta.env.BASE_URL}favicon.svg`} alt="" width="24" height="24" />
          Taskbeat
        </a>
        <nav aria-label="Main">
          <a href={href({ name: "projects" })} aria-current={route.name === "projects" ? "page" : undefined}>
            Projects
          </a>
          <a
            href={href({ name: "notifications" })}
            aria-current={route.name === "notifications" ? "page" : undefined}
          >
            Notifications
            {unread > 0 && (
              <span className="count" aria-label={`${unread} unread`} data-testid="unread-count">
                {unread}
              </span>
            )}
          </a>
          <a href={href({ name: "tokens" })} aria-current={route.name === "tokens" ? "page" : undefined}>
            Tokens
          </a>
        </nav>
        <div className="who">
          <span
            className={`live live-${liveState}`}
            role="status"
            title="Live updates"
            data-channels={confirmed.join(" ")}
          >
            {liveState === "open" ? "Live" : liveState === "connecting" ? "Connecting…" : "Reconnecting…"}
          </span>
          <span className="me" title={me.email}>
            {me.name}
          </span>
          <button type="button" className="secondary" onClick={() => void api.logout()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" ref={mainRef} tabIndex={-1}>
        <Page route={route} />
      </main>
      <div className="toasts" aria-live="polite" aria-atomic="false">
        {toasts.map((t) => (
          <div key={t.id} className={`toast toast-${t.kind}`} role={t.kind === "error" ? "alert" : undefined}>
            <span>{t.message}</span>
            <button
              type="button"
              className="toast-close"
              aria-label="Dismiss"
              onClick={() => setToasts((shown) => shown.filter((other) => other.id !== t.id))}
            >
              ×
            </button>
          </div>
        ))}
      </div>
    </AppContext.Provider>
  );
}

function Page({ route }: { route: Route }) {
  switch (route.name) {
    case "projects":
      return <ProjectsView />;
    case "board":
    case "members":
    case "workflows":
    case "hooks":
      return <ProjectView key={route.projectId} projectId={route.projectId} tab={route.name} />;
    case "task":
      return <TaskView key={route.taskId} taskId={route.taskId} />;
    case "workflow":
      return <WorkflowView key={route.workflowId} workflowId={route.workflowId} />;
    case "run":
      return <RunView key={route.runId} runId={route.runId} />;
    case "notifications":
      return <NotificationsView />;
    case "tokens":
      return <TokensView />;
    case "not_found":
      return (
        <>
          <h1>Not found</h1>
          <p>
            Nothing is at <code>{route.path}</code>. <a href={href({ name: "projects" })}>Back to projects</a>
          </p>
        </>
      );
  }
}
