import { describe, expect, it } from "vitest";
import { backoffDelay, channelOfEvent, LiveSocket, parseFrame, type SocketLike } from "./live";
import type { LiveEvent } from "./types";

class FakeSocket implements SocketLike {
  readyState = 0;
  sent: unknown[] = [];
  onopen: ((event: unknown) => void) | null = null;
  onclose: ((event: unknown) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  constructor(readonly url: string) {}
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  drop() {
    this.readyState = 3;
    this.onclose?.({});
  }
}

function harness() {
  const sockets: FakeSocket[] = [];
  const timers: { callback: () => void; ms: number }[] = [];
  const events: LiveEvent[] = [];
  const states: string[] = [];
  const confirmed: string[][] = [];
  const gone: string[] = [];
  let tokens = 0;
  const live = new LiveSocket({
    url: "ws://127.0.0.1:8001",
    token: async () => `token-${++tokens}`,
    createSocket: (url) => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    onEvent: (event) => events.push(event),
    onState: (state) => states.push(state),
    onConfirmed: (channels) => confirmed.push(channels),
    onGone: (channel) => gone.push(channel),
    setTimer: (callback, ms) => timers.push({ callback, ms }),
    clearTimer: () => undefined,
  });
  return { live, sockets, timers, events, states, confirmed, gone };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("LiveSocket", () => {
  it("connects with the token in the query and subscribes to its channels once open", async () => {
    const { live, sockets, states } = harness();
    live.subscribe("project:p1");
    live.start();
    await tick();
    expect(sockets[0].url).toBe("ws://127.0.0.1:8001?token=token-1");
    sockets[0].open();
    expect(sockets[0].sent).toEqual([{ action: "subscribe", channel: "project:p1" }]);
    live.subscribe("project:p2");
    live.unsubscribe("project:p1");
    expect(sockets[0].sent.slice(1)).toEqual([
      { action: "subscribe", channel: "project:p2" },
      { action: "unsubscribe", channel: "project:p1" },
    ]);
    expect(states).toEqual(["connecting", "open"]);
  });

  it("hands events on, and tells which subscriptions the server confirmed", async () => {
    const { live, sockets, events, confirmed } = harness();
    live.subscribe("project:p1");
    live.start();
    await tick();
    sockets[0].open();
    sockets[0].onmessage?.({ data: JSON.stringify({ type: "subscribed", channel: "project:p1" }) });
    sockets[0].onmessage?.({ data: JSON.stringify({ type: "pong" }) });
    sockets[0].onmessage?.({ data: "not json" });
    sockets[0].onmessage?.({ data: JSON.stringify({ id: "e1", type: "task.created", at: "", data: { id: "t1" } }) });
    expect(events.map((event) => event.id)).toEqual(["e1"]);
    expect(confirmed.at(-1)).toEqual(["project:p1"]);
    sockets[0].drop();
    expect(confirmed.at(-1)).toEqual([]);
  });

  it("reconnects after a drop with a fresh token and its subscriptions", async () => {
    const { live, sockets, timers } = harness();
    live.subscribe("project:p1");
    live.start();
    await tick();
    sockets[0].open();
    sockets[0].drop();
    const retry = timers.find((timer) => timer.ms < 30_000 && timer.ms > 0)!;
    expect(retry).toBeDefined();
    retry.callback();
    await tick();
    expect(sockets).toHaveLength(2);
    expect(sockets[1].url).toContain("token=token-2");
    sockets[1].open();
    expect(sockets[1].sent).toEqual([{ action: "subscribe", channel: "project:p1" }]);
  });

  it("resubscribes after the last event it had, so the server replays what it missed", async () => {
    const { live, sockets, timers, gone } = harness();
    const project = "01JF0000000000000000000000";
    const channel = `project:${project}`;
    const event = (seq: string) =>
      JSON.stringify({ id: `${project}.${seq}`, type: "task.updated", at: "", data: {} });
    live.subscribe(channel);
    live.subscribe("project:p2");
    live.start();
    await tick();
    sockets[0].open();
    sockets[0].onmessage?.({ data: event("000000000007") });
    sockets[0].onmessage?.({ data: event("000000000009") });
    sockets[0].onmessage?.({ data: JSON.stringify({ id: "n1", type: "notification", at: "", data: {} }) });
    sockets[0].drop();
    timers.find((timer) => timer.ms > 0 && timer.ms < 30_000)!.callback();
    await tick();
    sockets[1].open();
    expect(sockets[1].sent).toEqual([
      { action: "subscribe", channel, after: `${project}.000000000009` },
      { action: "subscribe", channel: "project:p2" },
    ]);
    // Away past the retention: follow from now on, and tell the app to read again.
    sockets[1].onmessage?.({ data: JSON.stringify({ type: "error", code: "gone", channel }) });
    expect(sockets[1].sent.at(-1)).toEqual({ action: "subscribe", channel });
    expect(gone).toEqual([channel]);
  });

  it("stops for good", async () => {
    const { live, sockets } = harness();
    live.start();
    await tick();
    live.stop();
    expect(sockets[0].readyState).toBe(3);
    expect(live.state).toBe("closed");
  });
});

describe("backoffDelay", () => {
  it("doubles from half a second up to 30 seconds, with jitter in the upper half", () => {
    expect(backoffDelay(0, () => 0)).toBe(250);
    expect(backoffDelay(0, () => 1)).toBe(500);
    expect(backoffDelay(3, () => 1)).toBe(4000);
    expect(backoffDelay(20, () => 1)).toBe(30_000);
  });
});

describe("channelOfEvent", () => {
  it("names the project channel of a project event's id only", () => {
    expect(channelOfEvent("01JF0000000000000000000000.000000000001")).toBe("project:01JF0000000000000000000000");
    expect(channelOfEvent("shardId-0001-notification")).toBeNull();
    expect(channelOfEvent("01JF0000000000000000000000.1")).toBeNull();
  });
});

describe("parseFrame", () => {
  it("accepts only event frames", () => {
    expect(parseFrame(JSON.stringify({ id: "1", type: "notification", at: "", data: {} }))?.type).toBe("notification");
    expect(parseFrame(JSON.stringify({ type: "error", code: "not_found" }))).toBeNull();
    expect(parseFrame(new ArrayBuffer(2))).toBeNull();
  });
});
