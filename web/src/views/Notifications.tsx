import { useCallback, useEffect, useState } from "react";
import { useApp } from "../context";
import { formatTime, label } from "../format";
import { href } from "../router";
import type { LiveEvent, Notification, Page } from "../types";
import { ActionButton, ErrorMessage, Loading, useLoad } from "../ui";

export function NotificationsView() {
  const { api, onLive, setUnread } = useApp();
  const [unreadOnly, setUnreadOnly] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const list = useLoad(
    () => api.get<Page<Notification>>("/notifications", { unread: unreadOnly || undefined, limit: 100 }).then((p) => p.items),
    [api, unreadOnly],
  );
  const onEvent = useCallback(
    (event: LiveEvent) => {
      if (event.type !== "notification") return;
      const notification = event.data as Notification;
      list.set((shown) => (shown && !shown.some((n) => n.id === notification.id) ? [notification, ...shown] : shown));
    },
    [list.set],
  );
  useEffect(() => onLive(onEvent), [onLive, onEvent]);

  const markRead = async (notification: Notification) => {
    await api.request("POST", `/notifications/${encodeURIComponent(notification.id)}/read`);
    list.set((shown) => (shown ?? []).map((n) => (n.id === notification.id ? { ...n, read: true } : n)));
    setUnread((count) => count - 1);
  };

  return (
    <>
      <div className="page-head">
        <h1>Notifications</h1>
        <div className="actions">
          <label className="check">
            <input type="checkbox" checked={unreadOnly} onChange={(e) => setUnreadOnly(e.target.checked)} /> Unread only
          </label>
          <ActionButton
            className="secondary"
            onError={setError}
            action={async () => {
              await api.request("POST", "/notifications/read-all");
              list.set((shown) => (shown ?? []).map((n) => ({ ...n, read: true })));
              setUnread(() => 0);
            }}
          >
            Mark all read
          </ActionButton>
        </div>
      </div>
      <ErrorMessage error={error || list.error} />
      {!list.data && !list.error && <Loading what="notifications" />}
      {list.data?.length === 0 && <p className="muted">Nothing here.</p>}
      <ul className="notifications">
        {list.data?.map((notification) => (
          <li key={notification.id} className={notification.read ? "read" : "unread"}>
            <div>
              <p>
                {!notification.read && <span className="visually-hidden">Unread: </span>}
                {notification.message}
              </p>
              <p className="meta">
                <span className="badge">{label(notification.type)}</span>
                <time dateTime={notification.created_at}>{formatTime(notification.created_at)}</time>
                {notification.task_id && <a href={href({ name: "task", taskId: notification.task_id })}>Open task</a>}
              </p>
            </div>
            {!notification.read && (
              <ActionButton className="secondary small" onError={setError} action={() => markRead(notification)}>
                Mark read
              </ActionButton>
            )}
          </li>
        ))}
      </ul>
    </>
  );
}
