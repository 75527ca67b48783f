// The WebSocket of API.md: `?token=` on connect, `subscribe` to `project:<id>` channels,
// events `{id, type, at, data}`. Reconnects with exponential backoff (and a fresh token),
// re-subscribing to its channels `after` the last event it had of each, so the server
// replays what was missed while it was away; a ping every 30 s keeps idle connections open.

import type { LiveEvent } from "./types";

export type LiveState = "connecting" | "open" | "closed";

export interface SocketLike {
  readyState: number;
  onopen: ((event: unknown) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  send(data: string): void;
  close(): void;
}

export interface LiveOptions {
  url: string;
  /** The current access token, refreshed if it may have expired; null when signed out. */
  token: (reconnecting: boolean) => Promise<string | null>;
  createSocket?: (url: string) => SocketLike;
  onEvent: (event: LiveEvent) => void;
  onState?: (state: LiveState) => void;
  /** The channels the server confirmed (`subscribed`), whenever they change. */
  onConfirmed?: (channels: string[]) => void;
  /** A channel whose missed events are no longer kept (`gone`): reload what it shows. */
  onGone?: (channel: string) => void;
  setTimer?: (callback: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  pingEveryMs?: number;
}

const OPEN = 1;
// A project event's id: its project and its number there (orderable within the project).
const PROJECT_EVENT_ID = /^([0-9A-Z]{26})\.(\d{12})$/;

/** The channel a project event's id belongs to, or null for other ids (notifications). */
export function channelOfEvent(id: string): string | null {
  const match = PROJECT_EVENT_ID.exec(id);
  return match ? `project:${match[1]}` : null;
}

/** Delay before reconnect attempt `attempt` (0-based): 0.5 s doubling to 30 s, with jitter. */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 500 * 2 ** Math.min(attempt, 10));
  return Math.round(base / 2 + (random() * base) / 2);
}

export class LiveSocket {
  private socket: SocketLike | null = null;
  private channels = new Set<string>();
  private confirmed = new Set<string>();
  // The last event id had of each channel: a resubscription asks for what came after it.
  private lastSeen = new Map<string, string>();
  private attempts = 0;
  private retryTimer: unknown = null;
  private pingTimer: unknown = null;
  private stopped = false;
  state: LiveState = "closed";

  constructor(private readonly options: LiveOptions) {}

  start(): void {
    this.stopped = false;
    void this.connect(false);
  }

  stop(): void {
    this.stopped = true;
    this.clear(this.retryTimer);
    this.clear(this.pingTimer);
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.close();
    }
    this.setState("closed");
  }

  subscribe(channel: string): void {
    if (this.channels.has(channel)) return;
    this.channels.add(channel);
    this.send({ action: "subscribe", channel });
  }

  unsubscribe(channel: string): void {
    if (!this.channels.delete(channel)) return;
    this.lastSeen.delete(channel);
    this.send({ action: "unsubscribe", channel });
    this.setConfirmed(channel, false);
  }

  private setConfirmed(channel: string | null, on: boolean): void {
    const before = this.confirmed.size;
    if (channel === null) this.confirmed.clear();
    else if (on) this.confirmed.add(channel);
    else this.confirmed.delete(channel);
    if (before !== this.confirmed.size || on) this.options.onConfirmed?.([...this.confirmed]);
  }

  get subscriptions(): string[] {
    return [...this.channels];
  }

  private send(frame: object): void {
    if (this.socket && this.socket.readyState === OPEN) this.socket.send(JSON.stringify(frame));
  }

  private setState(state: LiveState): void {
    if (this.state === state) return;
    this.state = state;
    this.options.onState?.(state);
  }

  private async connect(reconnecting: boolean): Promise<void> {
    if (this.stopped) return;
    this.setState("connecting");
    let token: string | null = null;
    try {
      token = await this.options.token(reconnecting);
    } catch {
      token = null;
    }
    if (this.stopped) return;
    if (!token) {
      this.scheduleReconnect();
      return;
    }
    const create = this.options.createSocket ?? ((url: string) => new WebSocket(url) as unknown as SocketLike);
    const separator = this.options.url.includes("?") ? "&" : "?";
    let socket: SocketLike;
    try {
      socket = create(`${this.options.url}${separator}token=${encodeURIComponent(token)}`);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.attempts = 0;
      this.setState("open");
      for (const channel of this.channels) {
        const after = this.lastSeen.get(channel);
        this.send(after ? { action: "subscribe", channel, after } : { action: "subscribe", channel });
      }
      this.schedulePing();
    };
    socket.onmessage = (message) => {
      const event = parseFrame(message.data);
      if (event) {
        this.remember(event.id);
        this.options.onEvent(event);
      } else {
        const reply = parseReply(message.data);
        const channel = reply?.channel ?? "";
        if (reply?.type === "subscribed" && this.channels.has(channel)) {
          this.setConfirmed(channel, true);
        } else if (reply?.type === "error" && reply.code === "gone" && this.channels.has(channel)) {
          // Away too long: follow from now on, and have what it shows read again.
          this.lastSeen.delete(channel);
          this.send({ action: "subscribe", channel });
          this.options.onGone?.(channel);
        }
      }
    };
    socket.onerror = () => undefined; // onclose follows
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.setConfirmed(null, false);
      this.clear(this.pingTimer);
      this.scheduleReconnect();
    };
  }

  private remember(id: string): void {
    const channel = channelOfEvent(id);
    if (channel === null || !this.channels.has(channel)) return;
    const last = this.lastSeen.get(channel);
    if (last === undefined || id > last) this.lastSeen.set(channel, id);
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.setState("closed");
    const delay = backoffDelay(this.attempts++);
    this.clear(this.retryTimer);
    this.retryTimer = this.timer(() => void this.connect(true), delay);
  }

  private schedulePing(): void {
    this.clear(this.pingTimer);
    this.pingTimer = this.timer(() => {
      this.send({ action: "ping" });
      if (this.socket) this.schedulePing();
    }, this.options.pingEveryMs ?? 30_000);
  }

  private timer(callback: () => void, ms: number): unknown {
    return (this.options.setTimer ?? ((cb, delay) => setTimeout(cb, delay)))(callback, ms);
  }

  private clear(handle: unknown): void {
    if (handle === null) return;
    (this.options.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>)))(handle);
  }
}

interface Reply {
  type?: string;
  channel?: string;
  code?: string;
}

function parseReply(data: unknown): Reply | null {
  if (typeof data !== "string") return null;
  try {
    const frame: unknown = JSON.parse(data);
    return frame && typeof frame === "object" ? (frame as Reply) : null;
  } catch {
    return null;
  }
}

/** An event frame, or null for replies (`subscribed`, `pong`, `error`) and garbage. */
export function parseFrame(data: unknown): LiveEvent | null {
  if (typeof data !== "string") return null;
  let frame: unknown;
  try {
    frame = JSON.parse(data);
  } catch {
    return null;
  }
  if (!frame || typeof frame !== "object") return null;
  const record = frame as Record<string, unknown>;
  if (typeof record.id !== "string" || typeof record.type !== "string" || !("data" in record)) return null;
  return record as unknown as LiveEvent;
}
