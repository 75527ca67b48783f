// Small pure helpers for showing things.

export function formatTime(value: string | null | undefined): string {
  if (!value) return "—";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return value;
  return date.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
}

export function formatDate(value: string | null | undefined): string {
  if (!value) return "—";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return value;
  return date.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

export function label(value: string): string {
  const text = value.replace(/[._]/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function duration(start: string | null | undefined, end: string | null | undefined): string {
  if (!start || !end) return "";
  const ms = new Date(end).getTime() - new Date(start).getTime();
  if (!Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

export function parseTags(text: string): string[] {
  const seen = new Set<string>();
  for (const part of text.split(",")) {
    const tag = part.trim();
    if (tag) seen.add(tag);
  }
  return [...seen];
}

const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d/;

/** A history value for people; `name` turns ids into names or titles where it knows them. */
export function showValue(value: unknown, name: (id: string) => string | undefined = () => undefined): string {
  if (value === null || value === undefined || value === "") return "none";
  if (Array.isArray(value)) return value.length ? value.map((item) => showValue(item, name)).join(", ") : "none";
  if (typeof value === "object") {
    const record = value as Record<string, unknown>;
    if (record.kind === "rate") return `every ${record.every} ${record.unit}`;
    if (record.kind === "cron") return `cron ${record.expression}${record.timezone ? ` (${record.timezone})` : ""}`;
    if (record.kind === "once") return `once at ${formatTime(String(record.at))}`;
    if (record.type === "webhook") return `${record.method} ${record.url}`;
    return JSON.stringify(value);
  }
  const text = String(value);
  if (ISO_TIME.test(text)) return formatTime(text);
  return name(text) ?? text.replace(/_/g, " ");
}

/** Ids in a message replaced by what `name` knows them as. */
export function withNames(text: string, name: (id: string) => string | undefined): string {
  return text.replace(/[0-9A-HJKMNP-TV-Z]{26,}/g, (id) => {
    const known = name(id);
    return known ? `“${known}”` : id;
  });
}
