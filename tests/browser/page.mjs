// Drives the mr page in headless Chromium (Debian's /usr/bin/chromium, through playwright-core)
// against a running `mr-host serve`; run by tests/serve_browser.rs, which starts the server and
// passes what it needs in the environment. Exits non-zero on the first failed check.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run through tests/serve_browser.rs)`);
  return v;
};
const url = env("MR_URL");
const token = env("MR_TOKEN");
const shots = env("MR_SHOTS");
const chromiumPath = process.env.MR_CHROMIUM || "/usr/bin/chromium";

async function api(path, options = {}) {
  const response = await fetch(url + path, {
    ...options,
    headers: { Authorization: `Bearer ${token}`, ...(options.headers || {}) },
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

async function submit(component, spec) {
  const form = new FormData();
  form.append("component", new Blob([readFileSync(component)]), "job.wasm");
  form.append("spec", JSON.stringify(spec));
  const body = await api("/api/jobs", { method: "POST", body: form });
  return body.id;
}

function statusJson(id) {
  const out = execFileSync(env("MR_HOST"), ["status", String(id), "--db", env("MR_DB"), "--json"]);
  return JSON.parse(out.toString());
}

const step = (what) => console.log(`# ${what}`);
const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));

  step("the jobs list, before any job, takes the token from the address");
  await page.goto(`${url}/#token=${token}`);
  await page.waitForSelector("#jobs");
  // Wait until the page's event stream is open, so what follows arrives live.
  await page.waitForSelector("#live.on");
  assert.equal(await page.isVisible("#token-form"), false, "the token from the address was taken");

  step("a job submitted through the API appears and progresses live, without a reload");
  const wordcount = await submit(env("MR_WORDCOUNT"), {
    inputs: ["big.txt"], output: "out-wordcount", reducers: 2, batch_size: "64K", slice_size: "1M",
  });
  const row = `tr[data-job="${wordcount}"]`;
  await page.waitForSelector(row, { timeout: 20000 });
  let navigations = 0;
  page.on("framenavigated", () => navigations++);
  const seen = new Set();
  let midShot = false;
  for (let i = 0; i < 1200; i++) {
    const value = Number(await page.getAttribute(`${row} [role=progressbar]`, "aria-valuenow"));
    seen.add(value);
    if (value > 0 && value < 100 && !midShot) {
      await page.screenshot({ path: `${shots}/list-running.png` });
      midShot = true;
      // The worker waits at a pause point until the page has shown the job half done.
      if (process.env.MR_PAUSE_DIR) writeFileSync(`${process.env.MR_PAUSE_DIR}/release`, "");
    }
    if ((await page.textContent(`${row} .phase`)) === "done") break;
    await page.waitForTimeout(50);
  }
  assert.equal(await page.textContent(`${row} .phase`), "done", "the list shows the job done");
  assert.ok([...seen].some((v) => v > 0 && v < 100), `the bar moved through intermediate values: ${[...seen]}`);
  assert.equal(Number(await page.getAttribute(`${row} [role=progressbar]`, "aria-valuenow")), 100);
  assert.equal(navigations, 0, "the list updated without reloading");
  await page.screenshot({ path: `${shots}/list-done.png` });

  step("the job page: counters equal `mr-host status --json`, shards and partitions shown");
  await page.click(row);
  await page.waitForSelector("#counters td[data-counter]");
  await page.waitForSelector("#component td");
  const status = statusJson(wordcount);
  assert.equal(status.phase, "done");
  const shown = await page.$$eval("#counters td[data-counter]", (cells) => cells.map((c) => [c.dataset.counter, Number(c.textContent)]));
  const expected = [
    ...Object.entries(status.counters),
    ...Object.entries(status.job_counters).map(([n, v]) => [`job.${n}`, v]),
  ];
  assert.deepEqual(shown, expected, "the page's counters are status --json's");
  const shards = await page.$$eval("#shards [role=progressbar]", (bars) => bars.map((b) => Number(b.getAttribute("aria-valuenow"))));
  assert.equal(shards.length, status.tasks.find((t) => t.kind === "map").total);
  assert.ok(shards.every((v) => v === 100), `every shard bar full: ${shards}`);
  assert.equal(await page.$$eval("#partitions tbody tr", (r) => r.length), 2);
  assert.match(await page.textContent("#component"), /wordcount/);
  await page.screenshot({ path: `${shots}/job-done.png`, fullPage: true });

  step("a failing job: its page shows the guest's message and file:line");
  const faulty = await submit(env("MR_FAULTY"), {
    inputs: ["faulty.txt"], output: "out-faulty", reducers: 1, params: { "panic-on": "boom" },
  });
  await page.goto(`${url}/#/jobs/${faulty}`);
  await page.waitForSelector('h1 .phase[data-phase="failed"]', { timeout: 60000 });
  const error = await page.textContent("#job-error");
  assert.match(error, /found the panic marker "boom"/);
  const marked = await page.$$eval("#job-error mark.loc", (m) => m.map((x) => x.textContent));
  assert.ok(marked.some((m) => /faulty\.txt:3$/.test(m)), `the input record is marked: ${marked}`);
  assert.ok(marked.some((m) => /src\/lib\.rs:\d+/.test(m)), `the guest's source line is marked: ${marked}`);
  assert.ok((await page.$$("#errors tbody tr")).length >= 1, "the failed attempt is listed");
  await page.screenshot({ path: `${shots}/job-failed.png`, fullPage: true });

  step("a running job cancelled through the API turns cancelled on its open page");
  const long = await submit(env("MR_WORDCOUNT"), {
    inputs: ["random:count=400000000,length=6,seed=3"], output: "out-long", shards: 2,
    slice_records: 200000, reducers: 1,
  });
  await page.goto(`${url}/#/jobs/${long}`);
  await page.waitForSelector("#live.on");
  for (let i = 0; i < 600; i++) {
    const doc = await api(`/api/jobs/${long}?events=0`);
    if (doc.tasks[0].slices > 0) break;
    await page.waitForTimeout(100);
  }
  await page.waitForSelector("#cancel");
  await api(`/api/jobs/${long}/cancel`, { method: "POST" });
  await page.waitForSelector('h1 .phase[data-phase="cancelled"]', { timeout: 20000 });
  assert.equal(await page.$("#cancel"), null, "no cancel button on a cancelled job");
  assert.equal(statusJson(long).phase, "cancelled");
  await page.screenshot({ path: `${shots}/job-cancelled.png`, fullPage: true });

  step("back on the list: all three jobs with their phases");
  await page.goto(`${url}/#/`);
  await page.waitForSelector(`tr[data-job="${long}"]`);
  const phases = await page.$$eval("#jobs tr.job", (rows) => rows.map((r) => [Number(r.dataset.job), r.querySelector(".phase").textContent]));
  assert.deepEqual(new Map(phases), new Map([[wordcount, "done"], [faulty, "failed"], [long, "cancelled"]]));
  await page.screenshot({ path: `${shots}/list.png` });
  assert.deepEqual(pageErrors, [], "no script errors on the page");
  console.log("browser checks: 5 passed, 0 failed");
} finally {
  await browser.close();
}
