import { describe, expect, it } from "vitest";
import { Api, ApiError, type KeyValueStore } from "./api";

class MemoryStore implements KeyValueStore {
  data = new Map<string, string>();
  getItem(key: string) {
    return this.data.get(key) ?? null;
  }
  setItem(key: string, value: string) {
    this.data.set(key, value);
  }
  removeItem(key: string) {
    this.data.delete(key);
  }
}

type Handler = (url: string, init: RequestInit) => Response | Promise<Response>;

function json(status: number, body?: unknown): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function client(handler: Handler) {
  const calls: { url: string; init: RequestInit }[] = [];
  const store = new MemoryStore();
  const api = new Api("http://api/api/v1", store, (async (input: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: String(input), init: init ?? {} });
    return handler(String(input), init ?? {});
  }) as typeof fetch);
  return { api, calls, store };
}

const auth = (n: number) => ({ access_token: `a${n}`, refresh_token: `r${n}`, token_type: "Bearer", expires_in: 900 });
const header = (init: RequestInit, name: string) => (init.headers as Record<string, string>)[name];

describe("Api", () => {
  it("keeps the access token in memory and the refresh token in the store", async () => {
    const { api, store } = client(() => json(200, auth(1)));
    await api.login("me@example.com", "secret");
    expect(api.token).toBe("a1");
    expect(store.getItem("taskbeat.refresh_token")).toBe("r1");
  });

  it("refreshes once on a 401 shared by concurrent calls, then replays them", async () => {
    let refreshes = 0;
    const { api, calls } = client(async (url, init) => {
      if (url.endsWith("/auth/login")) return json(200, auth(1));
      if (url.endsWith("/auth/refresh")) {
        refreshes += 1;
        expect(JSON.parse(String(init.body))).toEqual({ refresh_token: "r1" });
        return json(200, auth(2));
      }
      return header(init, "Authorization") === "Bearer a2" ? json(200, { ok: true }) : json(401, { error: { code: "unauthorized", message: "expired" } });
    });
    await api.login("me@example.com", "secret");
    const results = await Promise.all([api.get("/projects"), api.get("/tasks"), api.get("/notifications")]);
    expect(results).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    expect(refreshes).toBe(1);
    expect(calls.filter((call) => call.url.includes("/projects"))).toHaveLength(2);
  });

  it("ends the session when the refresh is refused", async () => {
    const { api, store } = client((url) => {
      if (url.endsWith("/auth/login")) return json(200, auth(1));
      return json(401, { error: { code: "unauthorized", message: "revoked" } });
    });
    const changes: boolean[] = [];
    api.onSessionChange((signedIn) => changes.push(signedIn));
    await api.login("me@example.com", "secret");
    await expect(api.get("/projects")).rejects.toBeInstanceOf(ApiError);
    expect(api.signedIn).toBe(false);
    expect(store.getItem("taskbeat.refresh_token")).toBeNull();
    expect(changes).toEqual([true, false]);
  });

  it("logs out through the API with the refresh token, and forgets both tokens", async () => {
    const { api, calls, store } = client((url) => (url.endsWith("/auth/login") ? json(200, auth(1)) : json(204)));
    await api.login("me@example.com", "secret");
    await api.logout();
    const logout = calls.find((call) => call.url.endsWith("/auth/logout"))!;
    expect(header(logout.init, "Authorization")).toBe("Bearer a1");
    expect(JSON.parse(String(logout.init.body))).toEqual({ refresh_token: "r1" });
    expect(api.token).toBeNull();
    expect(store.getItem("taskbeat.refresh_token")).toBeNull();
  });

  it("sends If-Match and reads the contract's error body", async () => {
    const { api, calls } = client(() =>
      json(422, {
        error: { code: "validation_error", message: "invalid", details: [{ loc: ["body", "title"], message: "too long" }] },
        request_id: "r",
      }),
    );
    const error = (await api.request("PATCH", "/tasks/t1", { body: { title: "x" }, ifMatch: 4 }).catch((e: unknown) => e)) as ApiError;
    expect(header(calls[0].init, "If-Match")).toBe('"4"');
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(422);
    expect(error.describe()).toBe("invalid (title: too long)");
  });

  it("builds query strings without empty values", () => {
    const { api } = client(() => json(200));
    expect(api.url("/tasks", { project_id: "p 1", status: "", tag: undefined, limit: 5 })).toBe(
      "http://api/api/v1/tasks?project_id=p+1&limit=5",
    );
  });
});
