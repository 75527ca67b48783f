import { createContext, useContext, useEffect } from "react";
import type { Api } from "./api";
import type { LiveState } from "./live";
import type { LiveEvent, User } from "./types";

export interface AppContextValue {
  api: Api;
  me: User;
  liveState: LiveState;
  /** Listen to every WebSocket event; returns the unsubscribe. */
  onLive: (listener: (event: LiveEvent) => void) => () => void;
  /** Hold a subscription to a channel while mounted (counted, so several views can share). */
  holdChannel: (channel: string) => () => void;
  toast: (message: string, kind?: "info" | "error") => void;
  unread: number;
  setUnread: (update: (count: number) => number) => void;
}

export const AppContext = createContext<AppContextValue | null>(null);

export function useApp(): AppContextValue {
  const value = useContext(AppContext);
  if (!value) throw new Error("useApp outside the signed-in app");
  return value;
}

/** Subscribe to `project:<id>` while mounted, and call `listener` with every event. */
export function useLive(projectId: string | null | undefined, listener: (event: LiveEvent) => void) {
  const { onLive, holdChannel } = useApp();
  useEffect(() => {
    if (!projectId) return undefined;
    return holdChannel(`project:${projectId}`);
  }, [projectId, holdChannel]);
  useEffect(() => onLive(listener), [onLive, listener]);
}
