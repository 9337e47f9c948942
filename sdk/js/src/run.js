// `mr-sdk run JOB -i FILE [-i FILE...] [--param K=V...]`: runs a job natively over real files, as
// Harness.runFiles does, and prints its output as `mr-host run --reducers 1` writes it
// (key<TAB>value lines, sorted by key) and its counters on stderr. JOB is the job's module file
// or its project directory (package.json's "mr": {"job": ...}).

import { existsSync, readFileSync, statSync } from 'node:fs';
import { register } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import { Harness, JobFailed } from './testing.js';

const USAGE = 'usage: mr-sdk run JOB -i FILE [-i FILE...] [--param KEY=VALUE...]';

/** The job module a JOB argument names: a file, or a project directory's "mr": {"job": ...}. */
function jobPath(spec) {
  if (!existsSync(spec)) throw new Error(`${spec} does not exist: give the job's module file (job.js) or its project directory`);
  if (!statSync(spec).isDirectory()) return resolve(spec);
  const manifest = join(spec, 'package.json');
  const job = existsSync(manifest) ? JSON.parse(readFileSync(manifest, 'utf8'))?.mr?.job : undefined;
  if (typeof job !== 'string') throw new Error(`${spec} is not a JavaScript job project: no package.json with "mr": { "job": "FILE.js" }`);
  return resolve(spec, job);
}

/** Runs the command; returns the exit status. */
export async function runCommand(argv, { stdout = process.stdout, stderr = process.stderr } = {}) {
  let job;
  const inputs = [];
  const params = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-i' || arg === '--input') inputs.push(argv[++i]);
    else if (arg === '--param') {
      const p = argv[++i] ?? '';
      const at = p.indexOf('=');
      if (at < 0) {
        stderr.write(`error: --param ${JSON.stringify(p)} must have the form KEY=VALUE\n`);
        return 2;
      }
      params[p.slice(0, at)] = p.slice(at + 1);
    } else if (job === undefined && !arg.startsWith('-')) job = arg;
    else {
      stderr.write(`error: unexpected argument ${arg}\n${USAGE}\n`);
      return 2;
    }
  }
  if (job === undefined || inputs.length === 0 || inputs.includes(undefined)) {
    stderr.write(`${USAGE}\n`);
    return 2;
  }
  register(new URL('./resolve-self.js', import.meta.url));
  let out;
  try {
    const module = await import(pathToFileURL(jobPath(job)).href);
    out = new Harness({ params }).runFiles(module, inputs);
  } catch (e) {
    if (e instanceof JobFailed) {
      stderr.write(`error: job ${job} failed${e.record ? ` at ${e.record}` : ''}: ${e.message}\n`);
    } else if (e.code === 'ENOENT' && e.path) {
      stderr.write(`error: cannot read ${e.path}: no such file or directory\n`);
    } else {
      stderr.write(`error: ${e.stack ?? e}\n`);
    }
    return 1;
  }
  const tab = new Uint8Array([9]);
  const newline = new Uint8Array([10]);
  const chunks = [];
  for (const [k, v] of out.records) {
    if (k.length) chunks.push(k, tab);
    chunks.push(v, newline);
  }
  await new Promise((done) => stdout.write(Buffer.concat(chunks), done));
  for (const name of Object.keys(out.counters).sort()) stderr.write(`counter job.${name} = ${out.counters[name]}\n`);
  for (const [level, message] of out.logs) stderr.write(`log ${level}: ${message}\n`);
  return 0;
}
