// The operations dashboard: everything comes from the JSON API under /ops/api, polled every 2 s.
// Data is put into the page as text (textContent), never as markup.
"use strict";

const API = "/ops/api";
const POLL_MS = 2000;
let pollTimer = null;

const $ = (id) => document.getElementById(id);

function xsrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)XSRF-TOKEN=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
  }
}

async function api(method, path, body) {
  const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (method !== "GET") {
    options.headers["X-XSRF-TOKEN"] = xsrfToken();
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body || {});
  }
  const response = await fetch(API + path, options);
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// Formatting.
const time = (s) => (s ? new Date(s * 1000).toLocaleString() : "—");
const ms = (v) => (v === null || v === undefined ? "—" : `${v < 10 ? v.toFixed(2) : Math.round(v)} ms`);
const seconds = (v) => (v === null || v === undefined ? "—" : `${v < 10 ? v.toFixed(1) : Math.round(v)} s`);
const args = (value) => JSON.stringify(value);

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "—" : String(text);
  if (className) td.className = className;
  return td;
}

function button(label, onClick, className) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (className) b.className = className;
  b.addEventListener("click", onClick);
  return b;
}

function fill(tableId, items, renderRow, empty) {
  const body = $(tableId).tBodies[0];
  body.replaceChildren();
  if (items.length === 0) {
    const row = body.insertRow();
    const td = cell(row, empty, "empty");
    td.colSpan = $(tableId).tHead.rows[0].cells.length;
    return;
  }
  for (const item of items) renderRow(body.insertRow(), item);
}

// The confirmation step of every action that loses or re-runs jobs.
function confirmed(text) {
  return new Promise((resolve) => {
    const dialog = $("confirm");
    $("confirm-text").textContent = text;
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

async function act(question, method, path, body) {
  if (question && !(await confirmed(question))) return;
  try {
    await api(method, path, body);
  } catch (error) {
    if (!handleAuth(error)) alert(error.message);
  }
  await refresh();
}

// Signing in and out.
function showSignIn(message) {
  clearInterval(pollTimer);
  pollTimer = null;
  $("dashboard").hidden = true;
  $("who").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").hidden = !message;
  $("sign-in-error").textContent = message || "";
}

function handleAuth(error) {
  if (error.status === 401) { showSignIn(); return true; }
  if (error.status === 403) { showSignIn("This account is not an operator."); return true; }
  if (error.status === 419) { showSignIn("Your session's security token is stale: reload the page."); return true; }
  return false;
}

async function showDashboard(operator) {
  $("who-email").textContent = operator.email || `user ${operator.id}`;
  $("who").hidden = false;
  $("sign-in").hidden = true;
  $("dashboard").hidden = false;
  await refresh();
  if (!pollTimer) pollTimer = setInterval(refresh, POLL_MS);
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    const operator = await api("POST", "/session", { email: form.get("email"), password: form.get("password") });
    event.target.reset();
    await showDashboard(operator);
  } catch (error) {
    showSignIn(error.status === 403 ? "This account is not an operator." : error.message);
  }
});

$("sign-out").addEventListener("click", async () => {
  try { await api("DELETE", "/session"); } catch (error) { /* signed out either way */ }
  showSignIn();
});

// The sections.
function renderQueues(overview) {
  fill("queues", overview.queues, (row, q) => {
    row.dataset.queue = q.name;
    cell(row, q.name);
    cell(row, q.depth, "depth");
    cell(row, q.delayed, "delayed");
    cell(row, q.dead, "dead");
    cell(row, seconds(q.latency_s));
    cell(row, q.processed_per_min);
    cell(row, q.failed_per_min);
    cell(row, ms(q.p50_ms));
    cell(row, ms(q.p95_ms));
    const td = cell(row, q.paused ? "paused " : "running ", q.paused ? "paused" : "running");
    td.appendChild(q.paused
      ? button("Resume", () => act(null, "POST", `/queues/${q.name}/resume`), "resume")
      : button("Pause", () => act(`Pause queue ${q.name}? Workers stop taking its jobs within a second.`, "POST",
        `/queues/${q.name}/pause`), "pause"));
  }, "No queues.");
  const charts = $("charts");
  charts.replaceChildren();
  for (const q of overview.queues) {
    // Depth and latency: the server's samples of the last hour (one a minute, null where no worker took
    // one), then the live value now, so they move between samples as the job counts' current minute does.
    const depths = [...q.minutes.map((m) => m.depth), q.depth];
    const latencies = [...q.minutes.map((m) => m.oldest_age_s), q.latency_s ?? 0];
    const box = document.createElement("div");
    box.className = "queue-charts";
    box.dataset.queue = q.name;
    const title = document.createElement("h3");
    title.textContent = q.name;
    box.appendChild(title);
    const chart = (name, caption, lines) => box.appendChild(opsCharts.lineChart(caption, lines, { name }));
    chart("jobs", "jobs per minute", [{ values: q.minutes.map((m) => m.processed), className: "processed" },
      { values: q.minutes.map((m) => m.failed), className: "failed" }]);
    chart("runtime", "runtime p95 (ms)", [{ values: q.minutes.map((m) => m.p95_ms), className: "p95" }]);
    chart("depth", "depth", [{ values: depths, className: "depth" }]);
    chart("latency", "latency (s)", [{ values: latencies, className: "latency" }]);
    charts.appendChild(box);
  }
  for (const id of ["failed-queue", "delayed-queue"]) {
    const select = $(id);
    if (select.options.length <= (id === "failed-queue" ? 1 : 0)) {
      for (const q of overview.queues) select.add(new Option(q.name, q.name));
    }
  }
}

function renderWorkers(workers) {
  fill("workers", workers, (row, w) => {
    cell(row, w.host); cell(row, w.pid); cell(row, w.queues.join(", ")); cell(row, w.threads);
    cell(row, time(w.started_at)); cell(row, `${seconds(w.heartbeat_age_s)} ago`); cell(row, w.in_flight);
    cell(row, w.processed); cell(row, w.failed);
  }, "No worker process is running.");
}

async function showFailure(messageId) {
  const failure = await api("GET", `/failed/${messageId}`);
  $("detail-id").textContent = failure.message_id;
  $("detail-arguments").textContent = JSON.stringify(failure.arguments, null, 2);
  $("detail-traceback").textContent = failure.traceback || "(no traceback was recorded)";
  $("failure-detail").hidden = false;
}

async function renderFailed() {
  const queue = $("failed-queue").value;
  const state = $("failed-state").value;
  const params = new URLSearchParams({ state, limit: "100" });
  if (queue) params.set("queue", queue);
  const page = await api("GET", `/failed?${params}`);
  $("failed-count").textContent = `${page.dead} dead${queue ? ` in ${queue}` : ""}`;
  $("retry-all").disabled = $("purge").disabled = !queue;
  fill("failed", page.items, (row, f) => {
    row.dataset.messageId = f.message_id;
    cell(row, f.actor); cell(row, f.queue); cell(row, f.exception, "exception"); cell(row, f.attempts);
    cell(row, time(f.first_failed_at)); cell(row, time(f.last_failed_at));
    const td = row.insertCell();
    td.appendChild(button("Details", () => showFailure(f.message_id).catch(handleAuth), "details"));
    if (f.state === "dead") {
      td.appendChild(button("Retry", () => act(`Retry ${f.actor} (${f.message_id})?`, "POST",
        `/failed/${f.message_id}/retry`, { confirm: true }), "retry"));
      td.appendChild(button("Delete", () => act(`Delete ${f.actor} (${f.message_id}) for good?`, "POST",
        `/failed/${f.message_id}/delete`, { confirm: true }), "delete"));
    }
  }, "No failed jobs.");
}

async function renderDelayed() {
  const queue = $("delayed-queue").value;
  if (!queue) return;
  const page = await api("GET", `/queues/${queue}/delayed?limit=100`);
  $("delayed-count").textContent = `${page.total} delayed`;
  fill("delayed", page.items, (row, j) => {
    row.dataset.messageId = j.message_id;
    cell(row, j.actor); cell(row, args(j.arguments), "arguments"); cell(row, time(j.eta)); cell(row, j.retries);
    row.insertCell().appendChild(button("Run now", () => act(`Run ${j.actor} (${j.message_id}) now?`, "POST",
      `/queues/${queue}/delayed/${j.message_id}/run`), "run-now"));
  }, "No delayed jobs.");
}

async function renderSchedule() {
  const schedule = await api("GET", "/schedule");
  const leader = schedule.leader;
  $("leader").textContent = leader.token
    ? `${leader.host || "a scheduler"} (${leader.token}), lock for ${seconds(leader.expires_in_s)} more` : "none";
  fill("schedule", schedule.jobs, (row, j) => {
    cell(row, j.name); cell(row, j.every_s ? seconds(j.every_s) : "—"); cell(row, time(j.last_run_at));
    cell(row, j.outcome); cell(row, time(j.next_run_at)); cell(row, j.ran_by);
  }, "No periodic job has run yet.");
}

async function renderAudit() {
  const log = await api("GET", "/audit?limit=50");
  fill("audit", log.items, (row, e) => {
    cell(row, new Date(e.at).toLocaleString()); cell(row, e.email); cell(row, e.action, "action");
    cell(row, e.target); cell(row, e.detail);
  }, "No action yet.");
}

$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const term = $("search-term").value.trim();
  if (!term) return;
  try {
    const found = await api("GET", `/search?${new URLSearchParams({ q: term, limit: "100" })}`);
    fill("search", found.items, (row, j) => {
      cell(row, j.message_id); cell(row, j.actor); cell(row, j.queue); cell(row, j.state);
      cell(row, args(j.arguments), "arguments");
    }, "Nothing found.");
  } catch (error) {
    if (!handleAuth(error)) alert(error.message);
  }
});

$("failed-queue").addEventListener("change", () => renderFailed().catch(handleAuth));
$("failed-state").addEventListener("change", () => renderFailed().catch(handleAuth));
$("delayed-queue").addEventListener("change", () => renderDelayed().catch(handleAuth));
$("retry-all").addEventListener("click", () => {
  const queue = $("failed-queue").value;
  act(`Retry every dead job of ${queue}?`, "POST", `/queues/${queue}/retry-all`, { confirm: true });
});
$("purge").addEventListener("click", () => {
  const queue = $("failed-queue").value;
  act(`Delete every dead job of ${queue} for good?`, "POST", `/queues/${queue}/purge`, { confirm: true });
});

let refreshing = false;
async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    const overview = await api("GET", "/overview");
    renderQueues(overview);
    renderWorkers(overview.workers);
    await Promise.all([renderFailed(), renderDelayed(), renderSchedule(), renderAudit()]);
    $("updated").textContent = new Date().toLocaleTimeString();
    $("poll-error").hidden = true;
  } catch (error) {
    if (!handleAuth(error)) {
      $("poll-error").textContent = `Could not update: ${error.message}`;
      $("poll-error").hidden = false;
    }
  } finally {
    refreshing = false;
  }
}

// Start: signed in already (a session cookie), or the sign-in form.
api("GET", "/me").then(showDashboard).catch((error) => {
  if (!handleAuth(error)) showSignIn(error.message);
});
