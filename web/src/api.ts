// The REST client: the access token lives in memory only, the refresh token in sessionStorage
// (one login per tab). A 401 refreshes once (refresh tokens rotate and work once, so
// concurrent 401s share one refresh) and replays the request.

import type { AuthResponse, Page } from "./types";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: { loc?: unknown[]; message?: string }[] = [],
  ) {
    super(message);
  }

  /** The message with its details, for people. */
  describe(): string {
    const details = this.details
      .map((d) => [d.loc?.filter((part) => part !== "body").join("."), d.message].filter(Boolean).join(": "))
      .filter(Boolean);
    return details.length ? `${this.message} (${details.join("; ")})` : this.message;
  }
}

export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

type Query = Record<string, string | number | boolean | null | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  ifMatch?: number;
  /** Skip the refresh-and-retry on 401 (auth calls themselves). */
  noRefresh?: boolean;
}

const REFRESH_KEY = "taskbeat.refresh_token";

export class Api {
  private accessToken: string | null = null;
  private refreshing: Promise<boolean> | null = null;
  private listeners = new Set<(signedIn: boolean) => void>();

  constructor(
    readonly baseUrl: string,
    private readonly store: KeyValueStore,
    private readonly fetcher: typeof fetch = (...args) => fetch(...args),
  ) {}

  get token(): string | null {
    return this.accessToken;
  }

  get signedIn(): boolean {
    return this.accessToken !== null;
  }

  /** Told `false` when the session ends (logout, or a refresh that failed). */
  onSessionChange(listener: (signedIn: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private setSession(auth: AuthResponse | null): void {
    const was = this.signedIn;
    this.accessToken = auth?.access_token ?? null;
    if (auth) this.store.setItem(REFRESH_KEY, auth.refresh_token);
    else this.store.removeItem(REFRESH_KEY);
    if (was !== this.signedIn) this.listeners.forEach((listener) => listener(this.signedIn));
  }

  async login(email: string, password: string): Promise<AuthResponse> {
    const auth = await this.request<AuthResponse>("POST", "/auth/login", {
      body: { email, password },
      noRefresh: true,
    });
    this.setSession(auth);
    return auth;
  }

  async register(email: string, password: string, name: string): Promise<AuthResponse> {
    const auth = await this.request<AuthResponse>("POST", "/auth/register", {
      body: { email, password, name },
      noRefresh: true,
    });
    this.setSession(auth);
    return auth;
  }

  /** A tab reloaded: trade the stored refresh token for a new pair. */
  async restore(): Promise<boolean> {
    if (!this.store.getItem(REFRESH_KEY)) return false;
    return this.refresh();
  }

  /** One refresh at a time; concurrent callers share its outcome. */
  refresh(): Promise<boolean> {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  private async doRefresh(): Promise<boolean> {
    const refreshToken = this.store.getItem(REFRESH_KEY);
    if (!refreshToken) {
      this.setSession(null);
      return false;
    }
    try {
      const auth = await this.request<AuthResponse>("POST", "/auth/refresh", {
        body: { refresh_token: refreshToken },
        noRefresh: true,
      });
      this.setSession(auth);
      return true;
    } catch (error) {
      // Unreachable API: keep the session for a later try. Refused: the session is over.
      if (!(error instanceof ApiError)) throw error;
      this.setSession(null);
      return false;
    }
  }

  async logout(): Promise<void> {
    const refreshToken = this.store.getItem(REFRESH_KEY);
    try {
      if (this.accessToken) {
        await this.request("POST", "/auth/logout", {
          body: refreshToken ? { refresh_token: refreshToken } : {},
          noRefresh: true,
        });
      }
    } catch {
      // Signed out here either way; the tokens expire on their own.
    } finally {
      this.setSession(null);
    }
  }

  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const send = async (): Promise<Response> => {
      const headers: Record<string, string> = { Accept: "application/json" };
      if (options.body !== undefined) headers["Content-Type"] = "application/json";
      if (this.accessToken) headers.Authorization = `Bearer ${this.accessToken}`;
      if (options.ifMatch !== undefined) headers["If-Match"] = `"${options.ifMatch}"`;
      return this.fetcher(this.url(path, options.query), {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
    };
    let response = await send();
    if (response.status === 401 && !options.noRefresh && this.store.getItem(REFRESH_KEY)) {
      if (await this.refresh()) response = await send();
    }
    return this.read<T>(response);
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>("GET", path, { query });
  }

  /** Every page of a list (up to `max` items). */
  async all<T>(path: string, query: Query = {}, max = 500): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | null = null;
    do {
      const page: Page<T> = await this.get<Page<T>>(path, { ...query, limit: 100, cursor });
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor && items.length < max);
    return items;
  }

  url(path: string, query?: Query): string {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
    }
    const search = params.toString();
    return `${this.baseUrl}${path}${search ? `?${search}` : ""}`;
  }

  private async read<T>(response: Response): Promise<T> {
    const text = await response.text();
    let body: unknown = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
    }
    if (response.ok) return body as T;
    const error = (body as { error?: { code?: string; message?: string; details?: [] } } | null)?.error;
    if (response.status === 401 && !this.store.getItem(REFRESH_KEY)) this.setSession(null);
    throw new ApiError(
      response.status,
      error?.code ?? "error",
      error?.message ?? `${response.status} ${response.statusText}`,
      Array.isArray(error?.details) ? error.details : [],
    );
  }
}
