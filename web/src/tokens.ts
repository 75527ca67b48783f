// API tokens: what the Tokens screen offers and sends (the view is views/Tokens.tsx).

import type { ApiToken, TokenScope } from "./types";

export const SCOPES: { scope: TokenScope; label: string; hint: string }[] = [
  { scope: "read", label: "Read", hint: "every GET" },
  { scope: "write", label: "Write", hint: "create, change and delete" },
  { scope: "run", label: "Run", hint: "run tasks and workflows, cancel and retry runs" },
];

export const EXPIRIES: { value: string; label: string; days: number | null }[] = [
  { value: "30", label: "30 days", days: 30 },
  { value: "90", label: "90 days", days: 90 },
  { value: "365", label: "1 year", days: 365 },
  { value: "7", label: "7 days", days: 7 },
  { value: "never", label: "Never", days: null },
];

/** When a token made `now` with the expiry `choice` stops working (ISO), or null for never. */
export function expiresAt(choice: string, now: Date = new Date()): string | null {
  const days = EXPIRIES.find((option) => option.value === choice)?.days ?? null;
  if (days === null) return null;
  return new Date(now.getTime() + days * 24 * 60 * 60 * 1000).toISOString();
}

export interface TokenForm {
  name: string;
  scopes: TokenScope[];
  expiry: string;
}

/** The request body, or the reason the form cannot be sent yet. */
export function tokenBody(
  form: TokenForm,
  now: Date = new Date(),
): { body: { name: string; scopes: TokenScope[]; expires_at: string | null } } | { problem: string } {
  const name = form.name.trim();
  if (!name) return { problem: "Give the token a name." };
  if (name.length > 100) return { problem: "A name has at most 100 characters." };
  if (form.scopes.length === 0) return { problem: "Choose at least one scope." };
  const scopes = SCOPES.map((s) => s.scope).filter((scope) => form.scopes.includes(scope));
  return { body: { name, scopes, expires_at: expiresAt(form.expiry, now) } };
}

/** Whether the token has expired at `now`. */
export function expired(token: ApiToken, now: Date = new Date()): boolean {
  return token.expires_at !== null && new Date(token.expires_at).getTime() <= now.getTime();
}
