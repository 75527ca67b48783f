// Where the API and the WebSocket are: /app/config.json, written by whoever serves the
// dashboard (the local stack generates one; CDK writes one next to the files).

export interface Config {
  apiUrl: string;
  wsUrl: string;
}

export function defaultConfig(location: { protocol: string; host: string; hostname: string }): Config {
  const secure = location.protocol === "https:";
  return {
    apiUrl: `${location.protocol}//${location.host}/api/v1`,
    wsUrl: `${secure ? "wss" : "ws"}://${location.hostname}:8001`,
  };
}

export function parseConfig(raw: unknown, fallback: Config): Config {
  if (!raw || typeof raw !== "object") return fallback;
  const record = raw as Record<string, unknown>;
  const text = (value: unknown, otherwise: string) =>
    typeof value === "string" && value.trim() ? value.trim().replace(/\/+$/, "") : otherwise;
  return { apiUrl: text(record.api_url, fallback.apiUrl), wsUrl: text(record.ws_url, fallback.wsUrl) };
}

export async function loadConfig(): Promise<Config> {
  const fallback = defaultConfig(window.location);
  try {
    const response = await fetch(`${import.meta.env.BASE_URL}config.json`, { cache: "no-store" });
    if (!response.ok) return fallback;
    return parseConfig(await response.json(), fallback);
  } catch {
    return fallback;
  }
}
