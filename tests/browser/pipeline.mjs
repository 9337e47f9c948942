// Drives the pipelines view of the mr page in headless Chromium against a running
// `mr-host serve`; run by tests/all/serve_browser.rs, which starts the server, writes a
// two-stage pipeline (count -> recount) and passes what it needs in the environment. Exits
// non-zero on the first failed check.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run through tests/all/serve_browser.rs)`);
  return v;
};
const url = env("MR_URL");
const token = env("MR_TOKEN");
const shots = env("MR_SHOTS");
const host = env("MR_HOST");
const db = env("MR_DB");
const name = env("MR_PIPELINE_NAME");

async function api(path) {
  const response = await fetch(url + path, { headers: { Authorization: `Bearer ${token}` } });
  const body = await response.json();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

const step = (what) => console.log(`# ${what}`);
const box = (stage) => `#graph .stage[data-stage="${stage}"]`;
const browser = await chromium.launch({ executablePath: process.env.MR_CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
let checks = 0;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));

  step("a submitted pipeline: two waiting stage boxes in two columns, an edge between them");
  const id = Number(execFileSync(host, ["pipeline", "submit", env("MR_PIPELINE"), "--output", env("MR_OUT"), "--db", db]).toString().trim());
  await page.goto(`${url}/#token=${token}`);
  await page.waitForSelector("#jobs");
  await page.click('nav a[data-nav="pipelines"]');
  const row = `#pipelines tr[data-pipeline="${id}"]`;
  await page.waitForSelector(row);
  assert.equal(await page.getAttribute('nav a[data-nav="pipelines"]', "class"), "active");
  await page.click(row);
  await page.waitForSelector(`${box("recount")}`);
  // The name is shown as text, never as markup.
  assert.equal(await page.textContent("#pipeline-name"), name);
  assert.equal(await page.$$eval("#pipeline-name *", (e) => e.length), 0, "the name's markup is escaped");
  assert.deepEqual(await page.$$eval("#graph .stage", (boxes) => boxes.map((b) => [b.dataset.stage, b.dataset.state])),
    [["count", "waiting"], ["recount", "waiting"]]);
  const edges = await page.$$eval("#graph path.edge", (paths) => paths.map((p) => [p.dataset.from, p.dataset.to]));
  assert.deepEqual(edges, [["count", "recount"]], "one edge, count -> recount");
  const [count, recount] = [await page.$(box("count")), await page.$(box("recount"))];
  const [a, b] = [await count.boundingBox(), await recount.boundingBox()];
  assert.ok(b.x >= a.x + a.width, `recount is drawn in a column right of count: ${JSON.stringify([a, b])}`);
  // (A horizontal edge has no height: its client rectangle, not a hit-testing box.)
  const edge = await page.$eval("#graph path.edge", (p) => { const r = p.getBoundingClientRect(); return { x: r.x, width: r.width }; });
  assert.ok(edge.x >= a.x + a.width - 2 && edge.x + edge.width <= b.x + 2, `the edge joins the boxes: ${JSON.stringify(edge)}`);
  assert.match(await page.textContent(`${box("count")} .stage-inputs`), /^reads .*in\.txt$/);
  assert.equal(await page.$(`${box("recount")} .stage-inputs`), null, "recount reads only a stage");
  assert.equal(await page.textContent(`${box("count")} [role=progressbar] em`), "0/0 tasks");
  await page.screenshot({ path: `${shots}/pipeline-waiting.png`, fullPage: true });
  checks++;

  step("resumed from the command line, it turns done live, without a reload");
  let navigations = 0;
  page.on("framenavigated", () => navigations++);
  const resume = spawn(host, ["pipeline", "resume", String(id), "--db", db], { stdio: ["ignore", "ignore", "pipe"] });
  let resumeLog = "";
  resume.stderr.on("data", (d) => { resumeLog += d; });
  const exited = new Promise((resolve) => resume.on("exit", resolve));
  const seen = new Set();
  for (let i = 0; i < 600; i++) {
    const states = await page.$$eval("#graph .stage", (boxes) => boxes.map((b) => `${b.dataset.stage}:${b.dataset.state}`));
    states.forEach((s) => seen.add(s));
    if (states.join() === "count:done,recount:done") break;
    await page.waitForTimeout(50);
  }
  assert.equal(await exited, 0, `pipeline resume failed: ${resumeLog}`);
  await page.waitForSelector(`${box("recount")}[data-state="done"]`, { timeout: 5000 });
  await page.waitForSelector('h1 .phase[data-phase="done"]', { timeout: 5000 });
  console.log(`# states seen: ${[...seen].join(" ")}`);
  assert.equal(navigations, 0, "the graph updated without reloading");
  const doc = await api(`/api/pipelines/${id}`);
  assert.equal(doc.phase, "done");
  for (const stage of doc.stages) {
    assert.equal(stage.state, "done");
    assert.ok(stage.tasks > 0 && stage.tasks_done === stage.tasks, JSON.stringify(stage));
    assert.equal(await page.textContent(`${box(stage.name)} .state`), "done");
    assert.equal(await page.textContent(`${box(stage.name)} [role=progressbar] em`), `${stage.tasks_done}/${stage.tasks} tasks`);
    assert.equal(Number(await page.getAttribute(`${box(stage.name)} [role=progressbar]`, "aria-valuenow")), 100);
    assert.equal(await page.getAttribute(`${box(stage.name)} a.job-link`, "href"), `#/jobs/${stage.job}`);
    assert.match(await page.textContent(`${box(stage.name)} .stage-reason`), /\S/, "why it ran is shown");
  }
  assert.equal(await page.textContent("#stages-done"), "2/2 stages done");
  assert.equal(await page.getAttribute("#graph path.edge", "class"), "edge ready", "the edge is solid once count is done");
  // The state colours: done is green (the style sheet's --done).
  assert.equal(await page.$eval(box("count"), (e) => getComputedStyle(e).borderTopColor), "rgb(31, 157, 85)");
  await page.screenshot({ path: `${shots}/pipeline-done.png`, fullPage: true });
  checks++;

  step("a stage's job link opens the job's page");
  const job = doc.stages[1].job;
  await page.click(`${box("recount")} a.job-link`);
  await page.waitForSelector("#job-name");
  assert.equal(await page.evaluate(() => location.hash), `#/jobs/${job}`);
  assert.match(await page.textContent("h1"), new RegExp(`^job ${job} `));
  checks++;

  step("the pipelines list: the pipeline done, 2/2 stages");
  await page.click('nav a[data-nav="pipelines"]');
  await page.waitForSelector(`${row} .phase[data-phase="done"]`);
  assert.equal(await page.textContent(`${row} .stages-done em`), "2/2 stages");
  assert.equal(await page.textContent(`${row} .name`), name);
  assert.deepEqual(await page.$$eval(`${row} .chip`, (c) => c.map((x) => [x.textContent, x.className])),
    [["count", "chip done"], ["recount", "chip done"]]);
  await page.screenshot({ path: `${shots}/pipelines.png` });
  assert.deepEqual(pageErrors, [], "no script errors on the page");
  checks++;
  console.log(`pipeline browser checks: ${checks} passed, 0 failed`);
} finally {
  await browser.close();
}
