// The dashboard in headless Chromium against a running local stack (see harness.mjs for the
// environment). With TASKBEAT_SCREENSHOTS=DIR the main screens are saved there as PNG.

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { api, APP_URL, launch, newPage, PASSWORD, register, signIn, uniqueEmail } from "./harness.mjs";

const SHOTS = process.env.TASKBEAT_SCREENSHOTS;
let browser;
const pages = [];

before(async () => {
  browser = await launch();
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  assert.deepEqual(
    pages.flatMap((page) => page.problems),
    [],
    "the pages logged no errors",
  );
});

async function open(options) {
  const page = await newPage(browser, options);
  pages.push(page);
  return page;
}

async function shot(page, name, { keepToasts = false } = {}) {
  if (!SHOTS) return;
  if (!keepToasts) {
    await page.evaluate(() => document.querySelectorAll(".toast-close").forEach((button) => button.click()));
  }
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Wait until the page's WebSocket is subscribed to the project (the server confirmed it). */
const live = (page, projectId) => page.locator(`[data-channels~="project:${projectId}"]`).waitFor();
const column = (page, status) => page.locator(`section[data-column="${status}"]`);
const card = (page, status, title) => column(page, status).locator("li.task-card", { hasText: title });

test("signs in, creates a task and completes it, with the keyboard; signs out", async () => {
  const me = await register("Ada Lovelace", "ada");
  const page = await open();
  await page.goto(APP_URL);
  await shot(page, "sign-in");
  // A wrong password is refused with the API's message.
  await page.getByLabel("Email").fill(me.email);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").waitFor();
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByLabel("Password").press("Enter");
  await page.getByRole("heading", { name: "Projects", level: 1 }).waitFor();

  await page.getByRole("link", { name: "Personal" }).click();
  await page.getByRole("heading", { name: "Personal", level: 1 }).waitFor();
  const title = page.getByLabel("New task");
  await title.fill("Water the plants");
  await title.press("Enter"); // submits the form
  await card(page, "pending", "Water the plants").waitFor();

  const complete = page.getByRole("button", { name: "Complete Water the plants" });
  await complete.focus();
  await page.keyboard.press("Enter");
  await card(page, "completed", "Water the plants").waitFor();
  assert.equal(await card(page, "pending", "Water the plants").count(), 0);
  const tasks = await api(me.token, "GET", `/tasks?project_id=${me.personal.id}`);
  assert.equal(tasks.items[0].status, "completed");

  // Sign out ends the session on the server too: its refresh token no longer works.
  const refreshToken = await page.evaluate(() => sessionStorage.getItem("taskbeat.refresh_token"));
  assert.ok(refreshToken);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  await api(null, "POST", "/auth/refresh", { refresh_token: refreshToken }, 401);
  // A reload stays signed out.
  await page.reload();
  await page.getByRole("button", { name: "Sign in" }).waitFor();
});

test("creates an account from the form and lands on its projects", async () => {
  const page = await open();
  await page.goto(APP_URL);
  await page.getByRole("button", { name: "Create an account" }).click();
  await page.getByLabel("Name").fill("Dorothy Vaughan");
  await page.getByLabel("Email").fill(uniqueEmail("dorothy"));
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("link", { name: "Personal" }).waitFor();
  await page.getByLabel("Name").fill("Side project");
  await page.getByRole("button", { name: "Create project" }).click();
  await page.getByRole("heading", { name: "Side project", level: 1 }).waitFor();
});

test("changes made in another session arrive live, without a reload", async () => {
  const alice = await register("Alice Archer", "alice");
  const bob = await register("Bob Baker", "bob");
  const project = await api(alice.token, "POST", "/projects", { name: "Launch plan" }, 201);
  await api(alice.token, "POST", "/tasks", { project_id: project.id, title: "Book the venue", priority: "high" }, 201);

  const mine = await open();
  await signIn(mine, alice.email);
  // Alice, the owner, adds Bob on the Members tab.
  await mine.goto(`${APP_URL}#/projects/${project.id}/members`);
  const addMember = mine.getByRole("region", { name: "Add a member" });
  await addMember.getByLabel("Email").fill(bob.email);
  await addMember.getByLabel("Role").selectOption("viewer");
  await addMember.getByRole("button", { name: "Add member" }).click();
  const bobsRole = mine.getByLabel("Role of Bob Baker");
  await bobsRole.waitFor();
  assert.equal(await bobsRole.inputValue(), "viewer");
  // The change is saved by a request of its own: read it back once that has been answered.
  const roleSaved = mine.waitForResponse(
    (response) => response.url().includes(`/members/${bob.user.id}`) && response.request().method() !== "GET",
  );
  await bobsRole.selectOption("member");
  assert.equal((await roleSaved).status(), 200);
  await mine.getByRole("row", { name: /Bob Baker/ }).waitFor();
  const members = await api(alice.token, "GET", `/projects/${project.id}/members`);
  assert.equal(members.items.find((m) => m.user_id === bob.user.id)?.role, "member");

  await mine.getByRole("link", { name: "Board" }).click();
  await card(mine, "pending", "Book the venue").waitFor();
  await live(mine, project.id);
  await mine.evaluate(() => {
    window.__notReloaded = true;
  });

  // Bob, in his own browser session, adds a task to the same board.
  const theirs = await open();
  await signIn(theirs, bob.email);
  await theirs.goto(`${APP_URL}#/projects/${project.id}`);
  await live(theirs, project.id);
  await theirs.getByLabel("New task").fill("Print the flyers");
  await theirs.getByRole("button", { name: "Add task" }).click();
  await card(theirs, "pending", "Print the flyers").waitFor();
  await card(mine, "pending", "Print the flyers").waitFor();

  // ... starts one and completes the other: Alice's columns follow.
  await theirs.getByRole("button", { name: "Start Book the venue" }).click();
  await card(mine, "in_progress", "Book the venue").waitFor();
  await theirs.getByRole("button", { name: "Complete Print the flyers" }).click();
  await card(mine, "completed", "Print the flyers").waitFor();

  // A change through the API (a third session) lands too, and assigning notifies Alice live.
  const task = (await api(bob.token, "GET", `/tasks?project_id=${project.id}&status=in_progress`)).items[0];
  await api(bob.token, "POST", `/tasks/${task.id}/assign`, { assignee_id: alice.user.id });
  await card(mine, "in_progress", "Book the venue").getByText("Alice Archer").waitFor();
  await mine.getByTestId("unread-count").waitFor();
  assert.equal(await mine.evaluate(() => window.__notReloaded), true, "the page was not reloaded");
  await shot(mine, "board", { keepToasts: true });

  await mine.getByRole("link", { name: /Notifications/ }).click();
  const unread = mine.locator("ul.notifications li.unread");
  await unread.first().waitFor();
  const before = await unread.count();
  await unread.first().getByRole("button", { name: "Mark read" }).click();
  await unread.nth(before - 1).waitFor({ state: "detached" });
  await mine.getByRole("button", { name: "Mark all read" }).click();
  await unread.first().waitFor({ state: "detached" });
  await mine.getByTestId("unread-count").waitFor({ state: "detached" });
});

test("a task's detail: fields, comments, history, schedule preview and executions", async () => {
  const me = await register("Grace Hopper", "grace");
  const project = await api(me.token, "POST", "/projects", { name: "Operations" }, 201);
  const backup = await api(me.token, "POST", "/tasks", { project_id: project.id, title: "Check the backups" }, 201);
  const task = await api(
    me.token,
    "POST",
    "/tasks",
    {
      project_id: project.id,
      title: "Rotate the on-call roster",
      description: "Every Monday morning, before stand-up.",
      priority: "high",
      tags: ["ops", "weekly"],
      schedule: { kind: "cron", expression: "0 9 ? * MON *", timezone: "Europe/Berlin" },
    },
    201,
  );
  const page = await open();
  await signIn(page, me.email);
  await page.goto(`${APP_URL}#/tasks/${task.id}`);
  await page.getByRole("heading", { name: "Rotate the on-call roster", level: 1 }).waitFor();
  // The schedule's next runs, from the preview route.
  const nextRuns = page.getByRole("list", { name: "Next runs" }).getByRole("listitem");
  await nextRuns.nth(4).waitFor();
  assert.equal(await nextRuns.count(), 5);

  await page.getByLabel("Priority").selectOption("urgent");
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.getByRole("status").getByText("Saved.").waitFor();
  await page.getByLabel("Depends on").selectOption({ label: "Check the backups" });
  await page.getByRole("button", { name: "Add dependency" }).click();
  await page.getByRole("link", { name: "Check the backups" }).waitFor();
  await page.getByLabel("New subtask").fill("Tell the team");
  await page.getByRole("button", { name: "Add subtask" }).click();
  await page.getByRole("link", { name: "Tell the team" }).waitFor();
  await page.getByRole("textbox", { name: /^Comment/ }).fill("Next week is Alan's turn.");
  await page.getByRole("button", { name: "Add comment" }).click();
  await page.getByText("Next week is Alan's turn.").waitFor();
  await page.getByRole("button", { name: "Run now" }).click();
  await page.locator(".timeline-item").first().locator('[data-status="succeeded"]').waitFor({ timeout: 30_000 });
  // History shows the edits made here.
  await page.locator(".history").getByText("urgent").first().waitFor();

  // Completing is refused while the dependency is open, with the API's reason.
  await page.getByRole("button", { name: "Complete", exact: true }).click();
  await page.getByRole("alert").first().waitFor();
  const stored = await api(me.token, "GET", `/tasks/${task.id}`);
  assert.equal(stored.priority, "urgent");
  assert.deepEqual(stored.depends_on, [backup.id]);
  await shot(page, "task-detail");
});

test("a workflow run is drawn as its graph and its steps reach succeeded live", async () => {
  const me = await register("Katherine Johnson", "kj");
  const project = await api(me.token, "POST", "/projects", { name: "Release" }, 201);
  const ids = {};
  for (const [key, title] of [
    ["build", "Build"],
    ["test", "Run the tests"],
    ["docs", "Publish the docs"],
    ["ship", "Ship it"],
  ]) {
    ids[key] = (await api(me.token, "POST", "/tasks", { project_id: project.id, title }, 201)).id;
  }
  const workflow = await api(
    me.token,
    "POST",
    "/workflows",
    {
      project_id: project.id,
      name: "Release train",
      steps: [
        { key: "build", task_id: ids.build, depends_on: [] },
        { key: "test", task_id: ids.test, depends_on: ["build"] },
        { key: "docs", task_id: ids.docs, depends_on: ["build"] },
        { key: "ship", task_id: ids.ship, depends_on: ["test", "docs"] },
      ],
    },
    201,
  );
  const page = await open();
  await signIn(page, me.email);
  await page.goto(`${APP_URL}#/projects/${project.id}/workflows`);
  await page.getByRole("link", { name: "Release train" }).click();
  await page.getByRole("heading", { name: "Release train", level: 1 }).waitFor();
  const graph = page.getByTestId("workflow-graph");
  assert.equal(await graph.locator("[data-step]").count(), 4);
  assert.equal(await graph.locator("path.graph-edge").count(), 4);

  await page.getByRole("button", { name: "Run workflow" }).click();
  await page.getByRole("heading", { name: /Run of Release train/ }).waitFor();
  for (const key of ["build", "test", "docs", "ship"]) {
    await graph.locator(`[data-step="${key}"][data-status="succeeded"]`).waitFor({ timeout: 45_000 });
  }
  await page.locator("h1 [data-status=succeeded]").waitFor();
  // The layout: build first, test and docs side by side, ship last.
  const x = async (key) => (await graph.locator(`[data-step="${key}"]`).boundingBox()).x;
  assert.ok((await x("build")) < (await x("test")));
  assert.equal(await x("test"), await x("docs"));
  assert.ok((await x("docs")) < (await x("ship")));
  const runs = await api(me.token, "GET", `/workflows/${workflow.id}/runs`);
  assert.equal(runs.items[0].status, "succeeded");
  await shot(page, "workflow-run");
});

test("builds a workflow from the project's tasks", async () => {
  const me = await register("Annie Easley", "ae");
  const project = await api(me.token, "POST", "/projects", { name: "Docs" }, 201);
  for (const title of ["Draft", "Review", "Publish"]) {
    await api(me.token, "POST", "/tasks", { project_id: project.id, title }, 201);
  }
  const page = await open();
  await signIn(page, me.email);
  await page.goto(`${APP_URL}#/projects/${project.id}/workflows`);
  const builder = page.getByRole("region", { name: "New workflow" });
  await builder.getByLabel("Name").fill("Write and ship");
  for (const [index, task] of ["Draft", "Review", "Publish"].entries()) {
    await builder.getByRole("button", { name: "Add step" }).click();
    const step = builder.getByRole("group", { name: `Step ${index + 1}`, exact: true });
    await step.getByLabel("Task").selectOption({ label: task });
    if (index > 0) await step.getByRole("checkbox", { name: `step${index}` }).check();
  }
  await builder.getByRole("button", { name: "Create workflow" }).click();
  await page.getByRole("heading", { name: "Write and ship", level: 1 }).waitFor();
  const graph = page.getByTestId("workflow-graph");
  assert.equal(await graph.locator("[data-step]").count(), 3);
  assert.equal(await graph.locator("path.graph-edge").count(), 2);
  const workflows = await api(me.token, "GET", `/workflows?project_id=${project.id}`);
  assert.deepEqual(
    workflows.items[0].steps.map((step) => [step.key, step.depends_on]),
    [
      ["step1", []],
      ["step2", ["step1"]],
      ["step3", ["step2"]],
    ],
  );
});

test("readable on a phone: the board fits 375 px without sideways scrolling", async () => {
  const me = await register("Mary Jackson", "mj");
  for (const [title, priority, tags] of [
    ["Call the supplier", "urgent", ["phone"]],
    ["Draft the newsletter", "medium", ["writing"]],
    ["Review pull request #42", "high", ["code"]],
  ]) {
    await api(me.token, "POST", "/tasks", { project_id: me.personal.id, title, priority, tags }, 201);
  }
  const page = await open({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true });
  await signIn(page, me.email);
  await page.goto(`${APP_URL}#/projects/${me.personal.id}`);
  await card(page, "pending", "Call the supplier").waitFor();
  await page.getByRole("button", { name: "Start Review pull request #42" }).click();
  await card(page, "in_progress", "Review pull request #42").waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  await shot(page, "board-phone");
});

test("makes an API token, shows it once with a copy button, and revokes it", async () => {
  const me = await register("Grace Hopper", "grace");
  const page = await open({ permissions: ["clipboard-read", "clipboard-write"] });
  await signIn(page, me.email);
  await page.getByRole("link", { name: "Tokens" }).click();
  await page.getByRole("heading", { name: "API tokens", level: 1 }).waitFor();
  await page.getByText("No tokens yet.").waitFor();

  await page.getByLabel("Name").fill("Nightly export");
  await page.getByRole("checkbox", { name: /Write/ }).check();
  await page.getByLabel("Expires").selectOption("never");
  await page.getByRole("button", { name: "Create token" }).click();
  const secret = page.getByRole("textbox", { name: "Token secret" });
  await secret.waitFor();
  const token = await secret.inputValue();
  assert.match(token, /^tb_/);
  await page.getByRole("button", { name: "Copy" }).click();
  await page.getByText("Copied to the clipboard.").waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), token);
  await shot(page, "tokens");

  // A script uses it: as its person, within its scopes (read and write, not run).
  assert.equal((await api(token, "GET", "/users/profile")).email, me.email);
  await api(token, "POST", "/projects", { name: "By script" }, 201);
  const task = await api(me.token, "POST", "/tasks", { title: "Scripted" }, 201);
  await api(token, "POST", `/tasks/${task.id}/run`, undefined, 403);

  // Shown once: after a reload the list has it, with its last use, and the secret is gone.
  await page.reload();
  const row = page.getByRole("row", { name: /Nightly export/ });
  await row.waitFor();
  assert.match(await row.innerText(), /read, write/);
  assert.equal(await page.getByRole("textbox", { name: "Token secret" }).count(), 0);
  assert.ok(!(await page.content()).includes(token));
  const [listed] = (await api(me.token, "GET", "/users/profile/tokens")).items;
  assert.ok(listed.last_used_at);

  // Revoked: gone from the list, and refused at once.
  page.once("dialog", (dialog) => void dialog.accept());
  await page.getByRole("button", { name: "Revoke Nightly export" }).click();
  await page.getByText("No tokens yet.").waitFor();
  await api(token, "GET", "/users/profile", undefined, 401);
});

test("project hooks: add one, see its signed delivery in the log, redeliver, turn off, delete", async () => {
  const { createServer } = await import("node:http");
  const received = [];
  // A hook target on 127.0.0.1: answers 500 to its first request, 204 after.
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      received.push({ headers: request.headers, body });
      response.writeHead(received.length === 1 ? 500 : 204);
      response.end();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}/hook`;
  try {
    const me = await register("Hedy Lamarr", "hedy");
    const page = await open();
    page.on("dialog", (dialog) => dialog.accept());
    await signIn(page, me.email);
    await page.goto(`${APP_URL}#/projects/${me.personal.id}`);
    await page.getByRole("link", { name: "Hooks" }).click();
    await page.getByRole("heading", { name: "Add a hook" }).waitFor();
    const form = page.getByRole("form", { name: "Add a hook" });
    await form.getByLabel("URL").fill(url);
    await form.getByRole("checkbox", { name: "comment.created" }).check();
    await form.getByRole("button", { name: "Add hook" }).click();
    const row = page.locator("li.hook", { hasText: url });
    await row.waitFor();
    const hooks = await api(me.token, "GET", `/projects/${me.personal.id}/hooks`);
    assert.deepEqual(hooks.items[0].events, ["task.created", "comment.created"]);

    await api(me.token, "POST", "/tasks", { project_id: me.personal.id, title: "Hooked" }, 201);
    await row.getByRole("button", { name: "Deliveries" }).click();
    const deliveries = page.locator("table.deliveries tbody tr");
    // The first attempt gets 500; the retry (2 s later on the test stack) succeeds. Poll with a deadline.
    const deadline = Date.now() + 60_000;
    while ((await page.locator('table.deliveries [data-status="succeeded"]').count()) === 0) {
      assert.ok(Date.now() < deadline, "the delivery did not succeed in time");
      await page.waitForTimeout(500);
      await page.getByRole("button", { name: "Refresh" }).click();
    }
    assert.equal(await deliveries.count(), 1);
    assert.match(await deliveries.first().innerText(), /task\.created[\s\S]*2[\s\S]*204/);
    assert.equal(received[0].headers["x-taskbeat-event"], "task.created");
    assert.match(received[0].headers["x-taskbeat-signature"], /^t=\d+,v1=[0-9a-f]{64}$/);
    await shot(page, "hooks");

    await page.getByRole("button", { name: /^Redeliver task\.created/ }).click();
    await page.getByText("Queued again as a new delivery.").waitFor();
    while (received.length < 3) {
      assert.ok(Date.now() < deadline, "the redelivery did not arrive in time");
      await page.waitForTimeout(200);
    }
    assert.equal(JSON.parse(received[2].body).type, "task.created");
    assert.notEqual(received[2].headers["x-taskbeat-delivery"], received[0].headers["x-taskbeat-delivery"]);

    await row.getByRole("button", { name: "Turn off" }).click();
    await row.getByText("Off", { exact: true }).waitFor();
    await row.getByRole("button", { name: `Delete hook ${url}` }).click();
    await page.getByText("No hooks yet.").waitFor();
    const left = await api(me.token, "GET", `/projects/${me.personal.id}/hooks`);
    assert.equal(left.items.length, 0);
  } finally {
    server.close();
  }
});
