import { describe, expect, it } from "vitest";
import { expired, expiresAt, tokenBody } from "./tokens";
import type { ApiToken } from "./types";

const NOW = new Date("2026-12-01T12:00:00Z");

describe("API tokens", () => {
  it("turn an expiry choice into an instant, or none", () => {
    expect(expiresAt("30", NOW)).toBe("2026-12-31T12:00:00.000Z");
    expect(expiresAt("never", NOW)).toBeNull();
    expect(expiresAt("unknown", NOW)).toBeNull();
  });

  it("send a trimmed name and the scopes in a fixed order", () => {
    expect(tokenBody({ name: "  nightly ", scopes: ["run", "read"], expiry: "7" }, NOW)).toEqual({
      body: { name: "nightly", scopes: ["read", "run"], expires_at: "2026-12-08T12:00:00.000Z" },
    });
  });

  it("say what is missing before sending", () => {
    expect(tokenBody({ name: " ", scopes: ["read"], expiry: "never" })).toEqual({ problem: "Give the token a name." });
    expect(tokenBody({ name: "x".repeat(101), scopes: ["read"], expiry: "never" })).toHaveProperty("problem");
    expect(tokenBody({ name: "a", scopes: [], expiry: "never" })).toEqual({ problem: "Choose at least one scope." });
  });

  it("know an expired token", () => {
    const token: ApiToken = {
      id: "t",
      name: "n",
      scopes: ["read"],
      prefix: "tb_",
      created_at: "2026-11-01T00:00:00Z",
      expires_at: "2026-12-01T12:00:00Z",
      last_used_at: null,
    };
    expect(expired(token, NOW)).toBe(true);
    expect(expired({ ...token, expires_at: null }, NOW)).toBe(false);
    expect(expired(token, new Date("2026-12-01T11:59:59Z"))).toBe(false);
  });
});
