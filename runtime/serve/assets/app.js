// The mr page: the jobs list (#/) and a page per job (#/jobs/ID), kept live by the server's
// Server-Sent Events. Plain JavaScript, no framework, nothing fetched from outside the server.
"use strict";

const app = document.getElementById("app");
const live = document.getElementById("live");
let token = localStorage.getItem("mrToken") || "";
let stream = null; // the open EventSource
let clockOffset = 0; // server clock minus ours, ms
let view = null; // the current view's state

// ---- talking to the API -------------------------------------------------------------------

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) askForToken();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function askForToken() {
  const form = document.getElementById("token-form");
  form.hidden = false;
  form.onsubmit = (e) => {
    e.preventDefault();
    token = document.getElementById("token").value.trim();
    localStorage.setItem("mrToken", token);
    form.hidden = true;
    route();
  };
}

function openStream(path, onEvent) {
  if (stream) stream.close();
  const url = path + (path.includes("?") ? "&" : "?") + (token ? "access_token=" + encodeURIComponent(token) : "");
  stream = new EventSource(url);
  stream.onopen = () => live.classList.add("on");
  stream.onerror = () => live.classList.remove("on");
  stream.onmessage = (m) => onEvent(JSON.parse(m.data));
  stream.addEventListener("lagged", () => onEvent(null));
}

// ---- formatting ---------------------------------------------------------------------------

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const counter = (doc, name) => (doc.counters || {})[name] || 0;
// Every counter as [name, value]: the built-ins, then the job's own as `job.NAME` (the status
// document's `counters` and `job_counters`, the shape of `run --json`).
const allCounters = (doc) => [
  ...Object.entries(doc.counters || {}),
  ...Object.entries(doc.job_counters || {}).map(([n, v]) => [`job.${n}`, v]),
];
const over = (phase) => phase === "done" || phase === "failed" || phase === "cancelled";

function duration(ms) {
  if (ms == null || !isFinite(ms)) return "—";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

const mb = (bytes) => (bytes / 1e6).toFixed(bytes < 1e7 ? 2 : 1) + " MB";

// What the list and the job page both show: progress, rate, elapsed, ETA.
function progress(doc) {
  const mapped = Math.max(0, counter(doc, "bytes-in"));
  const fraction = doc.phase === "done" ? 1 : doc.input_bytes > 0 ? Math.min(1, mapped / doc.input_bytes) : 0;
  const now = over(doc.phase) ? doc.finished_ms : Date.now() + clockOffset;
  const elapsed = now - doc.created_ms;
  const rate = elapsed > 0 ? mapped / (elapsed / 1000) : 0;
  let eta = null;
  if (!over(doc.phase) && doc.phase === "map" && rate > 0) eta = ((doc.input_bytes - mapped) / rate) * 1000;
  if (over(doc.phase)) eta = 0;
  return { mapped, fraction, elapsed, rate, eta };
}

function bar(fraction, phase, label) {
  const pct = Math.round(fraction * 1000) / 10;
  const kind = phase === "done" ? "done" : phase === "failed" || phase === "cancelled" ? "failed" : "";
  return `<div class="bar ${kind}" role="progressbar" aria-valuenow="${pct}"><span style="width:${pct}%"></span><em>${esc(label ?? pct + "%")}</em></div>`;
}

const badge = (phase) => `<span class="phase ${esc(phase)}" data-phase="${esc(phase)}">${esc(phase)}</span>`;

// A guest's error text with its source locations (file:line) marked.
function markLocations(text) {
  return esc(text).replace(/([\w./-]+\.(?:rs|py|js|ts|txt|jsonl|csv|wat|wasm|c|go)):(\d+)(?::\d+)?/g, '<mark class="loc">$&</mark>');
}

// ---- the jobs list ------------------------------------------------------------------------

function jobRow(doc) {
  const p = progress(doc);
  return `<tr class="job" data-job="${doc.id}" onclick="location.hash='#/jobs/${doc.id}'">
    <td class="num">${doc.id}</td><td class="name">${esc(doc.name)}</td><td class="phase-cell">${badge(doc.phase)}</td>
    <td>${bar(p.fraction, doc.phase)}</td>
    <td class="num rate">${(p.rate / 1e6).toFixed(1)}</td><td class="num">${duration(p.elapsed)}</td>
    <td class="num">${duration(p.eta)}</td><td class="num failures">${doc.failed_attempts}</td></tr>`;
}

async function showList() {
  const jobs = await api("/api/jobs");
  if (jobs.length) clockOffset = jobs[jobs.length - 1].now_ms - Date.now();
  view = { kind: "list", jobs: new Map(jobs.map((j) => [j.id, j])) };
  app.innerHTML = `<h1>Jobs</h1><p class="muted">${jobs.length} job${jobs.length === 1 ? "" : "s"} in the store; live.</p>
    <table id="jobs"><thead><tr><th class="num">id</th><th>name</th><th>phase</th><th>input mapped</th>
    <th class="num">MB/s</th><th class="num">elapsed</th><th class="num">ETA</th><th class="num">failures</th></tr></thead>
    <tbody>${jobs.slice().reverse().map(jobRow).join("") || '<tr><td colspan="8" class="muted">no jobs yet: submit one with mr-host submit or POST /api/jobs</td></tr>'}</tbody></table>`;
  const pending = new Set();
  openStream("/api/events", (event) => {
    if (!event) return route();
    if (!view.jobs.has(event.job)) return route(); // a new job
    if (pending.has(event.job)) return;
    pending.add(event.job);
    setTimeout(async () => {
      pending.delete(event.job);
      try {
        const doc = await api(`/api/jobs/${event.job}?events=0`);
        if (view.kind !== "list") return;
        view.jobs.set(doc.id, doc);
        const row = app.querySelector(`tr[data-job="${doc.id}"]`);
        if (row) row.outerHTML = jobRow(doc);
      } catch (e) { /* deleted meanwhile */ route(); }
    }, 250);
  });
}

// ---- a job's page -------------------------------------------------------------------------

function shardRows(tasks) {
  const maps = tasks.filter((t) => t.kind === "map");
  return maps.map((t) => {
    const done = Math.max(0, (t.counters || {})["bytes-in"] || 0);
    const planned = t.planned_bytes || 0;
    const fraction = t.state === "done" ? 1 : planned ? Math.min(1, done / planned) : 0;
    return `<div>shard ${t.idx}</div>${bar(fraction, t.state === "done" ? "done" : t.state === "failed" ? "failed" : "", `${mb(done)} / ${mb(planned)}`)}
      <div class="muted">${esc(t.state)}, ${t.slices} slice${t.slices === 1 ? "" : "s"}, attempt ${t.attempt}</div>`;
  }).join("");
}

function partitionRows(tasks) {
  const reduces = tasks.filter((t) => t.kind === "reduce");
  if (!reduces.length) return '<p class="muted">map-only job: no reduce partitions</p>';
  return `<table id="partitions"><thead><tr><th class="num">partition</th><th>state</th><th class="num">attempt</th><th class="num">records in</th><th class="num">records out</th></tr></thead><tbody>
    ${reduces.map((t) => {
      const c = (n) => (t.counters || {})[n] || 0;
      return `<tr><td class="num">${t.idx}</td><td>${badge(t.state)}</td><td class="num">${t.attempt}</td><td class="num">${c("reduce-groups") || c("records-in")}</td><td class="num">${c("output-records")}</td></tr>`;
    }).join("")}</tbody></table>`;
}

function eventLine(e) {
  const when = new Date(e.at_ms).toLocaleTimeString();
  const task = e.kind != null ? ` ${e.kind} ${e.idx}` + (e.slice != null ? ` slice ${e.slice}` : "") + (e.attempt != null ? ` attempt ${e.attempt}` : "") : "";
  const detail = e.detail ? ": " + e.detail.split("\n")[0] : "";
  return `<li data-event="${esc(e.event)}"><span class="t">${esc(when)}</span>${esc(e.event)}${esc(task)}${esc(detail)}</li>`;
}

function renderJob(doc, tasks, described) {
  const p = progress(doc);
  const info = described && described.info;
  app.innerHTML = `
    <p><a href="#/">← all jobs</a></p>
    <h1>job ${doc.id} · <span id="job-name">${esc(doc.name)}</span> ${badge(doc.phase)}</h1>
    <div class="muted">output ${esc(doc.output)}</div>
    <div class="toolbar">${over(doc.phase) ? "" : '<button class="danger" id="cancel">Cancel job</button>'}</div>
    ${doc.error ? `<h2>Error</h2><pre id="job-error">${markLocations(doc.error)}</pre>` : ""}
    <div class="grid" id="cards">
      <div class="card"><b>${bar(p.fraction, doc.phase)}</b><span>input mapped (${mb(p.mapped)} of ${mb(doc.input_bytes)})</span></div>
      <div class="card"><b>${(p.rate / 1e6).toFixed(1)} MB/s</b><span>map rate</span></div>
      <div class="card"><b>${duration(p.elapsed)}</b><span>elapsed</span></div>
      <div class="card"><b>${duration(p.eta)}</b><span>ETA</span></div>
      <div class="card"><b>${doc.attempts}</b><span>attempts (${doc.failed_attempts} failed, ${doc.refused_attempts} refused)</span></div>
    </div>
    <h2>Map shards</h2><div class="shards" id="shards">${shardRows(tasks)}</div>
    <h2>Reduce partitions</h2>${partitionRows(tasks)}
    <h2>Counters</h2>
    <table id="counters"><thead><tr><th>counter</th><th class="num">value</th></tr></thead><tbody>
      ${allCounters(doc).map(([n, v]) => `<tr><td>${esc(n)}</td><td class="num" data-counter="${esc(n)}">${v}</td></tr>`).join("") || '<tr><td colspan="2" class="muted">none committed yet</td></tr>'}
    </tbody></table>
    <h2>Failed attempts</h2>
    ${(doc.errors || []).length ? `<table id="errors"><thead><tr><th>task</th><th class="num">attempt</th><th>failure</th><th>the guest's words</th></tr></thead><tbody>
      ${doc.errors.map((e) => `<tr><td>${esc(e.kind)} ${e.idx}</td><td class="num">${e.attempt}</td><td>${esc(e.failure || "")}</td><td><pre>${markLocations(e.error)}</pre></td></tr>`).join("")}</tbody></table>` : '<p class="muted">none</p>'}
    ${(doc.hooks || []).length ? `<h2>Completion hooks</h2><table id="hooks"><tbody>${doc.hooks.map((h) => `<tr><td>${esc(h.name)}</td><td>${badge(h.state)}</td><td>${h.attempts} attempt(s)</td><td>${esc(h.detail || "")}</td></tr>`).join("")}</tbody></table>` : ""}
    <h2>Recent events</h2><ol class="events" id="events">${(view.events || []).slice().reverse().map(eventLine).join("")}</ol>
    <h2>Component</h2>
    ${info ? `<table id="component"><tbody>
      <tr><th>name</th><td>${esc(info.name)} ${esc(info.version)}</td></tr>
      <tr><th>world</th><td>${esc(info.world)}</td></tr>
      <tr><th>phases</th><td>map${info.combine ? ", combine" : ""}${info.reduce ? ", reduce" : ""}</td></tr>
      <tr><th>description</th><td>${esc(info.description || "")}</td></tr>
      <tr><th>parameters</th><td>${(info.params || []).map((q) => `<div><b>${esc(q.name)}</b> = ${esc((described.params || {})[q.name] ?? "")} <span class="muted">${esc(q.description)}</span></div>`).join("") || "none"}</td></tr>
      <tr><th>SHA-256</th><td class="muted">${esc(described.component_sha256)}</td></tr></tbody></table>` : '<p class="muted">' + esc((described && described.error) || "loading…") + "</p>"}`;
  const cancel = document.getElementById("cancel");
  if (cancel) cancel.onclick = async () => {
    cancel.disabled = true;
    try { await api(`/api/jobs/${doc.id}/cancel`, { method: "POST" }); } catch (e) { alert(e.message); }
  };
}

async function showJob(id) {
  const [doc, tasks] = await Promise.all([api(`/api/jobs/${id}?events=50`), api(`/api/jobs/${id}/tasks`)]);
  clockOffset = doc.now_ms - Date.now();
  view = { kind: "job", id, doc, tasks, described: null, events: doc.recent_events || [] };
  renderJob(doc, tasks, null);
  api(`/api/jobs/${id}/describe`).then((d) => { view.described = d; }, (e) => { view.described = { error: e.message }; })
    .then(() => view.kind === "job" && view.id === id && renderJob(view.doc, view.tasks, view.described));
  let scheduled = false;
  const last = view.events.length ? view.events[view.events.length - 1].id : 0;
  openStream(`/api/jobs/${id}/events?after=${last}`, (event) => {
    if (view.kind !== "job" || view.id !== id) return;
    if (event) view.events.push(event);
    if (view.events.length > 200) view.events.splice(0, view.events.length - 200);
    if (scheduled) return;
    scheduled = true;
    setTimeout(async () => {
      scheduled = false;
      try {
        const [d, t] = await Promise.all([api(`/api/jobs/${id}?events=0`), api(`/api/jobs/${id}/tasks`)]);
        if (view.kind !== "job" || view.id !== id) return;
        view.doc = d; view.tasks = t;
        renderJob(d, t, view.described);
      } catch (e) { app.innerHTML = `<p class="error-box">${esc(e.message)}</p><p><a href="#/">← all jobs</a></p>`; }
    }, 250);
  });
}

// Elapsed time and ETA move between events too.
setInterval(() => {
  if (!view) return;
  if (view.kind === "job" && !over(view.doc.phase)) {
    const cards = document.getElementById("cards");
    if (cards) { const p = progress(view.doc); cards.children[2].querySelector("b").textContent = duration(p.elapsed); }
  }
}, 1000);

async function route() {
  const match = location.hash.match(/^#\/jobs\/(\d+)/);
  try {
    if (match) await showJob(Number(match[1]));
    else await showList();
  } catch (e) {
    app.innerHTML = `<p class="error-box">${esc(e.message)}</p>`;
  }
}

window.addEventListener("hashchange", route);
const fromHash = location.hash.match(/token=([^&]+)/);
if (fromHash) { token = decodeURIComponent(fromHash[1]); localStorage.setItem("mrToken", token); location.hash = "#/"; }
route();
