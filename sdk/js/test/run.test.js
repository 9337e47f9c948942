// `mr-sdk run`: a job over real files, natively, printed as the host writes it.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { runCommand } from '../src/run.js';
import { Harness, JobFailed } from '../src/testing.js';

// Imports `mr-sdk` with no node_modules around it: `run` resolves it to the SDK doing the run.
const JOB = `
import { counter, param } from 'mr-sdk';
export const info = { name: 'words', params: [{ name: 'refuse', default: '' }] };
export function map(record, emit) {
  if (param('refuse') && record.value.includes(param('refuse'))) throw new Error('refusing ' + JSON.stringify(record.value));
  counter('lines');
  for (const w of record.value.split(' ').filter(Boolean)) emit(w, record.key);
}
export function combine(key, values, emit) { emit([...values].join(',')); }
export function reduce(key, values, emit) { emit(key, [...values].join(',')); }
`;

function project() {
  const dir = mkdtempSync(join(tmpdir(), 'mr-sdk-run-'));
  writeFileSync(join(dir, 'words.js'), JOB);
  writeFileSync(join(dir, 'a.txt'), 'b a\r\n\nlast b');
  mkdirSync(join(dir, 'd', 'sub'), { recursive: true });
  writeFileSync(join(dir, 'd', 'sub', 'c.txt'), 'a\n');
  writeFileSync(join(dir, 'd', '.hidden'), 'hidden\n');
  return dir;
}

function sink() {
  const chunks = [];
  return {
    write(chunk, done) {
      chunks.push(Buffer.from(chunk));
      if (typeof done === 'function') done();
      return true;
    },
    text: () => Buffer.concat(chunks).toString(),
  };
}

async function run(dir, ...args) {
  const [stdout, stderr] = [sink(), sink()];
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    const status = await runCommand(args, { stdout, stderr });
    return { status, stdout: stdout.text(), stderr: stderr.text() };
  } finally {
    process.chdir(cwd);
  }
}

test('prints the output sorted, with path:line keys', async () => {
  const dir = project();
  const done = await run(dir, 'words.js', '-i', 'a.txt', '-i', 'd');
  assert.equal(done.status, 0, done.stderr);
  assert.deepEqual(done.stdout.split('\n'), ['a\ta.txt:1,d/sub/c.txt:1', 'b\ta.txt:1,a.txt:3', 'last\ta.txt:3', '']);
  assert.match(done.stderr, /counter job\.lines = 4/);
});

test('a failing record is named by path and line', async () => {
  const dir = project();
  let done = await run(dir, 'words.js', '-i', 'a.txt', '--param', 'refuse=last');
  assert.equal(done.status, 1);
  assert.match(done.stderr, /^error: job words\.js failed at a\.txt:3: Error: refusing "last b"\n {4}at (Module\.)?map \(/);
  done = await run(dir, 'words.js', '-i', 'missing.txt');
  assert.deepEqual([done.status, done.stderr], [1, 'error: cannot read missing.txt: no such file or directory\n']);
  done = await run(dir, 'nope.js', '-i', 'a.txt');
  assert.equal(done.status, 1);
  assert.match(done.stderr, /give the job's module file/);
});

test('runFiles batches the input and names records in the whole input', async () => {
  const dir = project();
  const lines = Array.from({ length: 300000 }, (_, i) => `w${i % 3} and some padding`); // 6 MB
  lines[250000] = 'bad';
  writeFileSync(join(dir, 'big.txt'), lines.join('\n'));
  const job = {
    info: { name: 'count' },
    map(record, emit) {
      if (record.value === 'bad') throw new Error('bad');
      emit(record.value.slice(0, 2), 1);
    },
    combine: (key, values, emit) => emit([...values].reduce((a, b) => a + Number(b), 0)),
    reduce: (key, values, emit) => emit(key, [...values].reduce((a, b) => a + Number(b), 0)),
  };
  assert.throws(
    () => new Harness().runFiles(job, [join(dir, 'a.txt'), join(dir, 'big.txt')]),
    (e) => e instanceof JobFailed && e.recordIndex === 3 + 250000 && e.record === `${join(dir, 'big.txt')}:250001`,
  );
  lines[250000] = 'w1';
  writeFileSync(join(dir, 'big.txt'), lines.join('\n'));
  const out = new Harness().runFiles(job, [join(dir, 'big.txt')]);
  assert.deepEqual(out.lines(), ['w0\t100000', 'w1\t100000', 'w2\t100000']);
});
