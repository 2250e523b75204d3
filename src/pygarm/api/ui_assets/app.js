// pygarm's live dashboard (docs/dashboard.md). No framework, no build step.
//
// State comes from the events websocket alone: the first connection asks for a snapshot
// (?snapshot=true): one "snapshot" frame per entity, then {"control":"snapshot-end","seq":S}, then live
// events. After a disconnect or a server restart it resumes with ?seq=true&since=<last seq>: no reload,
// no gap. Only when the server has pruned that far back (close 4001) does it take a new snapshot.
"use strict";

const ENTITY_TYPES = ["repository", "organization", "enterprise", "pool", "instance", "job", "user",
  "controller", "github_credentials", "github_endpoint"];
const OPERATIONS = ["create", "update", "delete"];
const BOOKMARK_SECONDS = 15;
const LATEST_EVENTS = 25;
const MAX_FRAMES = 500;

const dashboard = {
  state: Object.fromEntries(ENTITY_TYPES.map((t) => [t, new Map()])),
  lastSeq: null, // the stream position everything in `state` reflects
  connects: [], // websocket URLs opened, for the curious (and the browser tests)
  latest: [], // the latest live events, newest first
  ready: false,
};
window.pygarmDashboard = dashboard;

// ---- helpers -------------------------------------------------------------------------------------
function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;" }[c]));
}
function keyOf(type, payload) {
  if (type === "controller") return "controller";
  if (type === "github_endpoint") return payload.name;
  return String(payload.id ?? payload.name);
}
function wsBase() {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/ws/events";
}
function rows(type) {
  return [...dashboard.state[type].values()];
}
function byName(a, b) {
  return String(a.name ?? "").localeCompare(String(b.name ?? ""));
}
function ownerOf(pool) {
  if (pool.repo_id) return { level: "repository", id: pool.repo_id, name: pool.repo_name };
  if (pool.org_id) return { level: "organization", id: pool.org_id, name: pool.org_name };
  return { level: "enterprise", id: pool.enterprise_id, name: pool.enterprise_name };
}
function runnerCounts() {
  const perPool = new Map();
  for (const instance of rows("instance")) {
    perPool.set(instance.pool_id, (perPool.get(instance.pool_id) ?? 0) + 1);
  }
  const perEntity = new Map();
  for (const pool of rows("pool")) {
    const owner = ownerOf(pool);
    perEntity.set(owner.id, (perEntity.get(owner.id) ?? 0) + (perPool.get(pool.id) ?? 0));
  }
  return { perPool, perEntity };
}
function entityName(type, payload) {
  return type === "repository" ? `${payload.owner}/${payload.name}` : payload.name;
}
function describe(type, p) {
  switch (type) {
    case "repository": case "organization": case "enterprise": return entityName(type, p);
    case "pool": return `${p.id} ${p.provider_name ?? ""} ${p.image ?? ""}`;
    case "instance": return `${p.name} ${p.status ?? ""} ${p.runner_status ?? ""}`;
    case "job": return `${p.id} ${p.name ?? ""} ${p.status ?? ""}`;
    case "user": return p.username;
    case "controller": return p.controller_id;
    default: return p.name ?? p.id ?? "";
  }
}

// ---- the stream ----------------------------------------------------------------------------------
let socket = null;
let retryMs = 500;
let pending = null; // entities of a snapshot in progress, swapped in at snapshot-end

function setStatus(text, cls) {
  const el = document.getElementById("status");
  el.textContent = text;
  el.className = "status " + cls;
}

function connect() {
  const resume = dashboard.lastSeq !== null;
  const query = resume ? `seq=true&since=${dashboard.lastSeq}` : "snapshot=true";
  const url = `${wsBase()}?${query}&bookmark=${BOOKMARK_SECONDS}`;
  dashboard.connects.push(url);
  socket = new WebSocket(url);
  pending = resume ? null : Object.fromEntries(ENTITY_TYPES.map((t) => [t, new Map()]));
  let opened = false;
  socket.onopen = () => {
    opened = true;
    retryMs = 500;
    socket.send(JSON.stringify({ "send-everything": true }));
    if (resume) setStatus(`live (resumed after seq ${dashboard.lastSeq})`, "live");
  };
  socket.onmessage = (message) => onFrame(JSON.parse(message.data));
  socket.onclose = (close) => {
    socket = null;
    if (close.code === 4001) { // the log no longer reaches our position: start over from a snapshot
      dashboard.lastSeq = null;
    }
    setStatus(`reconnecting (closed ${close.code})`, "reconnecting");
    if (!opened) checkSession(); // refused before opening: a server restart, or our session expired
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 5000);
  };
}

function checkSession() {
  fetch("/api/v1/controller", { credentials: "same-origin" }).then((response) => {
    if (response.status === 401) location.assign("/ui/"); // back to the login form
  }, () => {}); // the server is down: keep retrying
}

function onFrame(frame) {
  if (frame.control !== undefined) {
    if (frame.control === "snapshot-end") {
      for (const type of ENTITY_TYPES) dashboard.state[type] = pending[type];
      pending = null;
      dashboard.lastSeq = frame.seq;
      dashboard.ready = true;
      setStatus("live", "live");
      scheduleRender();
    } else if (frame.seq !== undefined && pending === null) {
      dashboard.lastSeq = frame.seq; // bookmark or filter-ack: our position moves on
    }
    return;
  }
  const type = frame["entity-type"];
  if (!dashboard.state[type]) return;
  if (frame.operation === "snapshot") {
    pending[type].set(keyOf(type, frame.payload), frame.payload);
    return;
  }
  const table = dashboard.state[type];
  const key = keyOf(type, frame.payload);
  if (frame.operation === "delete") table.delete(key);
  else table.set(key, frame.payload);
  if (frame.seq !== undefined) dashboard.lastSeq = frame.seq;
  dashboard.latest.unshift({ at: new Date(), type, operation: frame.operation, text: describe(type, frame.payload) });
  dashboard.latest.length = Math.min(dashboard.latest.length, LATEST_EVENTS);
  flashed.add(`${type}:${key}`);
  scheduleRender();
}

// ---- rendering -----------------------------------------------------------------------------------
const flashed = new Set();
let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

function table(id, type, columns, items) {
  if (items.length === 0) return `<p class="empty" id="${id}-empty">none</p>`;
  const head = columns.map((c) => `<th>${esc(c[0])}</th>`).join("");
  const body = items.map((item) => {
    const key = `${type}:${keyOf(type, item)}`;
    const cls = flashed.has(key) ? ' class="flash"' : "";
    return `<tr data-key="${esc(key)}"${cls}>` + columns.map((c) => `<td${c[2] ? ' class="mono"' : ""}>${esc(c[1](item))}</td>`).join("") + "</tr>";
  }).join("");
  return `<table id="${id}"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

const ENTITY_COLUMNS = (counts) => [["Name", (e) => e.name ? (e.owner ? `${e.owner}/${e.name}` : e.name) : ""],
  ["ID", (e) => e.id, true], ["Endpoint", (e) => e.endpoint?.name ?? ""],
  ["Credentials", (e) => e.credentials_name ?? e.credentials?.name ?? ""],
  ["Runners", (e) => counts.perEntity.get(e.id) ?? 0]];
const POOL_COLUMNS = (counts) => [["ID", (p) => p.id, true], ["Belongs to", (p) => ownerOf(p).name],
  ["Level", (p) => ownerOf(p).level], ["Provider", (p) => p.provider_name], ["Image", (p) => p.image],
  ["Flavor", (p) => p.flavor], ["Tags", (p) => (p.tags ?? []).map((t) => t.name ?? t).join(", ")],
  ["Min idle / max", (p) => `${p.min_idle_runners} / ${p.max_runners}`],
  ["Runners", (p) => counts.perPool.get(p.id) ?? 0], ["Enabled", (p) => p.enabled ? "yes" : "no"]];
const RUNNER_COLUMNS = [["Name", (i) => i.name, true], ["Status", (i) => i.status],
  ["Runner status", (i) => i.runner_status], ["Pool", (i) => i.pool_id, true],
  ["Provider ID", (i) => i.provider_id ?? "", true], ["Updated", (i) => i.updated_at ?? ""]];
const JOB_COLUMNS = [["ID", (j) => j.id, true], ["Name", (j) => j.name], ["Status", (j) => j.status],
  ["Conclusion", (j) => j.conclusion], ["Runner", (j) => j.runner_name ?? ""],
  ["Labels", (j) => (j.labels ?? []).join(", ")], ["Repository", (j) => j.repository_name ?? ""]];

const PAGES = {
  "/": () => {
    const counts = runnerCounts();
    const cards = [["Repositories", "repository"], ["Organizations", "organization"],
      ["Enterprises", "enterprise"], ["Pools", "pool"], ["Runners", "instance"], ["Jobs", "job"]]
      .map(([label, type]) => `<div class="card"><div class="n" id="count-${type}">${dashboard.state[type].size}</div>${label}</div>`).join("");
    const entities = ["repository", "organization", "enterprise"].map((type) =>
      `<h2>${type === "repository" ? "Repositories" : type === "organization" ? "Organizations" : "Enterprises"}</h2>` +
      table(`overview-${type}`, type, ENTITY_COLUMNS(counts), rows(type).sort(byName))).join("");
    const latest = dashboard.latest.length === 0 ? '<p class="empty">no events yet</p>' :
      `<table id="latest-events"><thead><tr><th>Time</th><th>Entity</th><th>Operation</th><th>What</th></tr></thead><tbody>` +
      dashboard.latest.map((e) => `<tr><td>${e.at.toLocaleTimeString()}</td><td>${esc(e.type)}</td>` +
        `<td class="op-${esc(e.operation)}">${esc(e.operation)}</td><td class="mono">${esc(e.text)}</td></tr>`).join("") +
      "</tbody></table>";
    return `<div class="cards">${cards}</div>${entities}<h2>Pools</h2>` +
      table("overview-pools", "pool", POOL_COLUMNS(counts), rows("pool")) + `<h2>Latest events</h2>${latest}`;
  },
  "/endpoints": () => "<h2>GitHub endpoints</h2>" + table("endpoints", "github_endpoint",
    [["Name", (e) => e.name], ["Base URL", (e) => e.base_url], ["API base URL", (e) => e.api_base_url],
      ["Description", (e) => e.description]], rows("github_endpoint").sort(byName)),
  "/credentials": () => "<h2>GitHub credentials</h2>" + table("credentials", "github_credentials",
    [["ID", (c) => c.id], ["Name", (c) => c.name], ["Endpoint", (c) => c.endpoint?.name ?? ""],
      ["Auth type", (c) => c.auth_type], ["Description", (c) => c.description]], rows("github_credentials")),
  "/entities": () => {
    const counts = runnerCounts();
    return ["repository", "organization", "enterprise"].map((type) => `<h2>${esc(type)}</h2>` +
      table(`entities-${type}`, type, ENTITY_COLUMNS(counts), rows(type).sort(byName))).join("");
  },
  "/pools": () => "<h2>Pools</h2>" + table("pools", "pool", POOL_COLUMNS(runnerCounts()), rows("pool")),
  "/runners": () => "<h2>Runners</h2>" + table("runners", "instance", RUNNER_COLUMNS, rows("instance").sort(byName)),
  "/jobs": () => "<h2>Jobs</h2>" + table("jobs", "job", JOB_COLUMNS, rows("job")),
  "/events": () => eventLogPage(),
};

function route() {
  const path = location.hash.replace(/^#/, "") || "/";
  return PAGES[path] ? path : "/";
}

function render() {
  const path = route();
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.getAttribute("href") === "#" + path);
  }
  if (path === "/events") { // the event log keeps its own DOM (the frames list grows in place)
    if (!document.getElementById("frames")) document.getElementById("view").innerHTML = PAGES[path]();
  } else {
    document.getElementById("view").innerHTML = dashboard.ready ? PAGES[path]() : '<p class="empty">loading…</p>';
  }
  flashed.clear();
}

// ---- the event log: its own websocket with the filter the user builds ------------------------------
let logSocket = null;
function eventLogPage() {
  const types = ENTITY_TYPES.map((t) => `<label><input type="checkbox" name="type" value="${t}"> ${t}</label>`).join("");
  const ops = OPERATIONS.map((o) => `<label><input type="checkbox" name="op" value="${o}" checked> ${o}</label>`).join("");
  return `<h2>Event log</h2><form class="filter-builder" id="filter-form">
    <fieldset><legend>Entity types (none = everything)</legend>${types}</fieldset>
    <fieldset><legend>Operations</legend>${ops}</fieldset>
    <fieldset><legend>Field matches (one <span class="mono">field=value</span> per line; values of one field are ORed)</legend>
      <textarea id="match" rows="2" cols="50" class="mono" placeholder="pool_id=…"></textarea></fieldset>
    <button type="submit" id="apply-filter">Apply filter</button> <span class="muted" id="filter-text"></span>
    <span id="filter-status" class="muted"></span>
  </form><h2>Frames</h2><div id="frames"></div>`;
}

function buildFilter(form) {
  const types = [...form.querySelectorAll('input[name="type"]:checked')].map((i) => i.value);
  const ops = [...form.querySelectorAll('input[name="op"]:checked')].map((i) => i.value);
  const match = {};
  for (const line of form.querySelector("#match").value.split("\n")) {
    const at = line.indexOf("=");
    if (at <= 0) continue;
    const field = line.slice(0, at).trim();
    (match[field] ??= []).push(line.slice(at + 1).trim());
  }
  if (types.length === 0 && Object.keys(match).length === 0) return { "send-everything": true };
  const filters = (types.length ? types : ENTITY_TYPES).map((t) => {
    const f = { "entity-type": t, operations: ops };
    if (Object.keys(match).length) f.match = match;
    return f;
  });
  return { filters };
}

document.addEventListener("submit", (e) => {
  if (e.target.id !== "filter-form") return;
  e.preventDefault();
  const message = JSON.stringify(buildFilter(e.target));
  document.getElementById("filter-text").textContent = message;
  document.getElementById("frames").textContent = "";
  const status = document.getElementById("filter-status");
  status.textContent = "applying…";
  if (logSocket) logSocket.close(1000);
  logSocket = new WebSocket(wsBase() + "?ack=true"); // the server confirms when the filter takes effect
  logSocket.onopen = () => logSocket.send(message);
  logSocket.onclose = (close) => { status.textContent = `closed (${close.code})`; };
  logSocket.onmessage = (m) => {
    const frames = document.getElementById("frames");
    if (!frames) return;
    if (m.data.startsWith('{"control":"filter-ack"')) {
      status.textContent = `active after seq ${JSON.parse(m.data).seq}`;
      return;
    }
    const line = document.createElement("div");
    line.className = "frame";
    line.textContent = m.data;
    frames.prepend(line);
    while (frames.childElementCount > MAX_FRAMES) frames.lastChild.remove();
  };
});

window.addEventListener("hashchange", () => {
  if (route() !== "/events" && logSocket) { logSocket.close(1000); logSocket = null; }
  document.getElementById("view").innerHTML = "";
  render();
});
render();
connect();
