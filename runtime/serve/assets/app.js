// The mr page: the jobs list (#/), a page per job (#/jobs/ID), the pipelines (#/pipelines) and
// a page per pipeline with its stages drawn as a graph (#/pipelines/ID), kept live by the
// server's Server-Sent Events. Plain JavaScript, no framework, nothing fetched from outside the
// server. Every text from the store goes through esc() before it reaches innerHTML.
"use strict";

const app = document.getElementById("app");
const live = document.getElementById("live");
let token = localStorage.getItem("mrToken") || "";
let stream = null; // the open EventSource
let clockOffset = 0; // server clock minus ours, ms
let view = null; // the current view's state
let pollTimer = null; // the pipeline views' next refresh

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

// ---- pipelines ----------------------------------------------------------------------------

const stageComplete = (s) => s.state === "done" || s.state === "reused";
const upstreamOf = (s) => s.inputs.filter((i) => i.startsWith("stage:")).map((i) => i.slice("stage:".length));
const plainInputs = (s) => s.inputs.filter((i) => !i.startsWith("stage:"));
const stagesDone = (doc) => doc.stages.filter(stageComplete).length;

// A stage's box size and the gaps between boxes in the graph, px.
const BOX_W = 230, BOX_H = 132, GAP_X = 64, GAP_Y = 22;

// Columns by dependency depth: a stage's column is one more than the deepest stage it reads,
// 0 when it reads only plain inputs (those are listed in its box). The API gives the stages in
// dependency order, so every stage's upstream is placed before it; within a column, stages keep
// that order.
function layout(stages) {
  const at = new Map();
  const perColumn = [];
  for (const s of stages) {
    const ups = upstreamOf(s).filter((u) => at.has(u));
    const col = ups.length ? 1 + Math.max(...ups.map((u) => at.get(u).col)) : 0;
    perColumn[col] = perColumn[col] || 0;
    at.set(s.name, { col, row: perColumn[col]++ });
  }
  for (let c = 0; c < perColumn.length; c++) perColumn[c] = perColumn[c] || 0;
  const width = Math.max(1, perColumn.length) * (BOX_W + GAP_X) - GAP_X;
  // A gap below the lowest box too: the first lane of an edge that skips columns runs there.
  const height = Math.max(1, ...perColumn) * (BOX_H + GAP_Y);
  return { at, perColumn, width, height };
}

const boxX = (p) => p.col * (BOX_W + GAP_X);
const boxY = (p) => p.row * (BOX_H + GAP_Y);

// A stage's progress bar: its job's tasks done of all (a complete stage is full, whatever its
// reused job counted).
function stageBar(s) {
  const fraction = stageComplete(s) ? 1 : s.tasks > 0 ? Math.min(1, s.tasks_done / s.tasks) : 0;
  const kind = stageComplete(s) ? "done" : s.state === "failed" ? "failed" : "";
  return bar(fraction, kind, `${s.tasks_done}/${s.tasks} tasks`);
}

function stageBox(s, p) {
  const job = s.job == null ? '<span class="muted">no job yet</span>'
    : `<a class="job-link" href="#/jobs/${Number(s.job)}">job ${Number(s.job)}</a>${s.job_phase ? ` <span class="muted">${esc(s.job_phase)}</span>` : ""}`;
  const plain = plainInputs(s);
  return `<div class="stage ${esc(s.state)}" data-stage="${esc(s.name)}" data-state="${esc(s.state)}"
      style="left:${boxX(p)}px;top:${boxY(p)}px;width:${BOX_W}px;height:${BOX_H}px">
    <div class="stage-head"><b class="stage-name">${esc(s.name)}</b><span class="state ${esc(s.state)}">${esc(s.state)}</span></div>
    <div class="stage-job">${job}</div>
    <div class="stage-progress">${stageBar(s)}</div>
    ${plain.length ? `<div class="stage-inputs" title="${esc(plain.join("\n"))}">reads ${esc(plain.join(", "))}</div>` : ""}
    ${s.reason ? `<div class="stage-reason" title="${esc(s.reason)}">${esc(s.reason)}</div>` : ""}
  </div>`;
}

// An edge from the right side of `from`'s box to the left side of `to`'s. Between neighbouring
// columns, one curve. An edge that skips columns (fan-in from further back) would run behind the
// boxes in between and look like it went through them, so it runs along `lane`, a line below the
// lowest box of the columns it crosses, entering and leaving through the gaps between columns.
function edgePath(from, to, lane) {
  const x1 = boxX(from) + BOX_W, y1 = boxY(from) + BOX_H / 2;
  const x2 = boxX(to) - 3, y2 = boxY(to) + BOX_H / 2;
  if (lane == null) {
    const mid = (x1 + x2) / 2;
    return `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
  }
  const a = x1 + GAP_X, b = boxX(to) - GAP_X;
  return `M${x1},${y1} C${x1 + GAP_X / 2},${y1} ${x1 + GAP_X / 2},${lane} ${a},${lane} `
    + `L${b},${lane} C${b + GAP_X / 2},${lane} ${b + GAP_X / 2},${y2} ${x2},${y2}`;
}

// Lanes of column-skipping edges are this far apart, so two of them never draw one line.
const LANE_GAP = 8;

// The stages as boxes in columns, with an arrow per `stage:NAME` input (solid once the stage it
// comes from is complete). Boxes are HTML (they wrap text and hold links); the arrows are an SVG
// layer under them.
function pipelineGraph(stages) {
  const { at, perColumn, width, height: boxes } = layout(stages);
  const byName = new Map(stages.map((s) => [s.name, s]));
  let height = boxes, lanes = 0;
  const edges = stages.flatMap((s) => upstreamOf(s).filter((u) => at.has(u)).map((u) => {
    const from = at.get(u), to = at.get(s.name);
    let lane = null;
    if (to.col - from.col > 1) {
      const crossed = perColumn.slice(from.col + 1, to.col);
      lane = Math.max(...crossed) * (BOX_H + GAP_Y) - GAP_Y / 2 + LANE_GAP * lanes++;
      height = Math.max(height, lane + GAP_Y / 2);
    }
    return `<path class="edge${stageComplete(byName.get(u)) ? " ready" : ""}" data-from="${esc(u)}" data-to="${esc(s.name)}"
      d="${edgePath(from, to, lane)}" marker-end="url(#arrow)"/>`;
  }));
  return `<div class="graph-scroll"><div class="graph" id="graph" style="width:${width}px;height:${height}px">
    <svg class="edges" width="${width}" height="${height}" aria-hidden="true">
      <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto">
        <path d="M0,0 L10,5 L0,10 z"/></marker></defs>
      ${edges.join("")}
    </svg>
    ${stages.map((s) => stageBox(s, at.get(s.name))).join("")}
  </div></div>`;
}

function stageChips(doc) {
  return doc.stages.map((s) => `<span class="chip ${esc(s.state)}" title="${esc(s.state)}">${esc(s.name)}</span>`).join("");
}

function pipelineRow(doc) {
  const done = stagesDone(doc), n = doc.stages.length;
  const id = Number(doc.id);
  return `<tr class="pipeline" data-pipeline="${id}" onclick="location.hash='#/pipelines/${id}'">
    <td class="num">${id}</td><td class="name">${esc(doc.name)}</td><td class="phase-cell">${badge(doc.phase)}</td>
    <td class="stages-done">${bar(n ? done / n : 0, doc.phase, `${done}/${n} stages`)}</td>
    <td class="chips">${stageChips(doc)}</td><td class="muted">${esc(doc.output)}</td></tr>`;
}

function renderPipelines(docs) {
  app.innerHTML = `<h1>Pipelines</h1><p class="muted">${docs.length} pipeline${docs.length === 1 ? "" : "s"} in the store; live.</p>
    <table id="pipelines"><thead><tr><th class="num">id</th><th>name</th><th>phase</th><th>stages done</th><th>stages</th><th>output</th></tr></thead>
    <tbody>${docs.slice().reverse().map(pipelineRow).join("") || '<tr><td colspan="6" class="muted">no pipelines yet: run one with mr-host pipeline run FILE --output DIR --db STORE</td></tr>'}</tbody></table>`;
}

function renderPipeline(doc) {
  const done = stagesDone(doc);
  app.innerHTML = `
    <p><a href="#/pipelines">← all pipelines</a></p>
    <h1>pipeline ${Number(doc.id)} · <span id="pipeline-name">${esc(doc.name)}</span> ${badge(doc.phase)}</h1>
    <div class="muted">output ${esc(doc.output)} · <span id="stages-done">${done}/${doc.stages.length} stages done</span></div>
    ${doc.error ? `<h2>Error</h2><pre id="pipeline-error">${markLocations(doc.error)}</pre>` : ""}
    <h2>Stages</h2>
    ${pipelineGraph(doc.stages)}
    <p class="legend">${["waiting", "running", "done", "reused", "failed"].map((s) => `<span class="chip ${s}">${s}</span>`).join(" ")}</p>`;
}

// Keeps a pipeline view live: it refetches (at most every 250 ms) when an event of one of its
// jobs arrives, and polls, every second while something runs (a stage can change without any
// job event: planned, reused, refused before its job started) and every 5 s otherwise (a rerun
// from the command line starts it again). `load` fetches, `render` draws; nothing is redrawn
// when the document did not change, so links and hovering are not disturbed.
function follow(load, render, running, concerns) {
  const mine = view;
  let shown = null;
  let pending = false;
  const refresh = async () => {
    clearTimeout(pollTimer);
    let doc;
    try { doc = await load(); } catch (e) {
      if (view !== mine) return;
      app.innerHTML = `<p class="error-box">${esc(e.message)}</p>`;
      return;
    }
    if (view !== mine) return;
    const text = JSON.stringify(doc);
    if (text !== shown) { shown = text; view.doc = doc; render(doc); }
    pollTimer = setTimeout(refresh, running(doc) ? 1000 : 5000);
  };
  openStream("/api/events", (event) => {
    if (view !== mine || pending) return;
    if (event && !concerns(view.doc, event.job)) return;
    pending = true;
    setTimeout(() => { pending = false; if (view === mine) refresh(); }, 250);
  });
  return refresh();
}

const jobsOf = (doc) => new Set(doc.stages.map((s) => s.job).filter((j) => j != null));

async function showPipelines() {
  view = { kind: "pipelines", doc: [] };
  await follow(
    () => api("/api/pipelines"),
    renderPipelines,
    (docs) => docs.some((d) => d.phase === "running"),
    // A job no pipeline knows may be a new stage's.
    (docs, job) => docs.some((d) => d.phase === "running" || jobsOf(d).has(job)),
  );
}

async function showPipeline(id) {
  view = { kind: "pipeline", id, doc: null };
  await follow(
    () => api(`/api/pipelines/${id}`),
    renderPipeline,
    (doc) => doc.phase === "running",
    (doc, job) => !doc || doc.phase === "running" || jobsOf(doc).has(job),
  );
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
  clearTimeout(pollTimer);
  const job = location.hash.match(/^#\/jobs\/(\d+)/);
  const pipeline = location.hash.match(/^#\/pipelines\/(\d+)/);
  const pipelines = /^#\/pipelines\/?$/.test(location.hash);
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.nav === (pipeline || pipelines ? "pipelines" : "jobs"));
  }
  try {
    if (job) await showJob(Number(job[1]));
    else if (pipeline) await showPipeline(Number(pipeline[1]));
    else if (pipelines) await showPipelines();
    else await showList();
  } catch (e) {
    app.innerHTML = `<p class="error-box">${esc(e.message)}</p>`;
  }
}

window.addEventListener("hashchange", route);
const fromHash = location.hash.match(/token=([^&]+)/);
if (fromHash) { token = decodeURIComponent(fromHash[1]); localStorage.setItem("mrToken", token); location.hash = "#/"; }
route();
