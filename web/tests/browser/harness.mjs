// Shared by the browser tests and the screenshot script: Debian's Chromium driven by
// playwright-core, and REST calls to the stack under test.
//
// Environment: TASKBEAT_APP_URL (http://127.0.0.1:8000/app/), TASKBEAT_API_URL
// (http://127.0.0.1:8000/api/v1), CHROMIUM_PATH (/usr/bin/chromium).

import { existsSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { chromium } from "playwright-core";

export const APP_URL = process.env.TASKBEAT_APP_URL ?? "http://127.0.0.1:8000/app/";
export const API_URL = process.env.TASKBEAT_API_URL ?? "http://127.0.0.1:8000/api/v1";
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const PASSWORD = "correct horse battery staple";

// Without the background-networking switches Chromium stalls on a machine without internet.
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export async function launch() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not at ${CHROMIUM}: install Debian's package (apt-get install chromium) ` +
        "or set CHROMIUM_PATH; `make test` installs it.",
    );
  }
  return chromium.launch({ executablePath: CHROMIUM, args: FLAGS, headless: true, timeout: 30_000 });
}

/** A fresh context whose pages fail the test on uncaught errors and log console errors. */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, ...options });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    // A refused request (a wrong password's 401, a 409) is the API answering, not a fault.
    if (message.type() === "error" && !/status of 4\d\d/.test(message.text())) {
      problems.push(`console error: ${message.text()}`);
    }
  });
  page.problems = problems;
  return page;
}

export function uniqueEmail(prefix) {
  return `${prefix}-${randomUUID().slice(0, 10)}@example.com`;
}

/** `api(token, "POST", "/tasks", body)`: the JSON answer; throws on an unexpected status. */
export async function api(token, method, path, body, expect) {
  const response = await fetch(`${API_URL}${path}`, {
    method,
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const ok = expect ? response.status === expect : response.ok;
  if (!ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

export async function register(name, prefix = "user") {
  const email = uniqueEmail(prefix);
  const body = await api(null, "POST", "/auth/register", { email, password: PASSWORD, name }, 201);
  const projects = await api(body.access_token, "GET", "/projects");
  const personal = projects.items.find((project) => project.name === "Personal");
  return { email, name, token: body.access_token, user: body.user, personal };
}

/** Sign in through the form, as a person would. */
export async function signIn(page, email, password = PASSWORD) {
  await page.goto(APP_URL);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Projects", level: 1 }).waitFor();
}
