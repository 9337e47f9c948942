import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Writer, kvs, putGroup } from '../src/codec.js';
import { discardCounters, flushCounters, param, setBackend, counter } from '../src/context.js';
import { Failure, combineBatch, mapBatch, reduceBatch } from '../src/glue.js';
import { loadJob } from '../src/job.js';
import { Harness, JobFailed } from '../src/testing.js';
import * as jobs from './jobs.js';

const text = (b) => new TextDecoder().decode(b);
const pairs = (batch) => [...kvs(batch)].map(([k, v]) => [text(k), text(v)]);
function batchOf(...records) {
  const w = new Writer();
  for (const [k, v] of records) {
    w.lenPrefixed(k);
    w.lenPrefixed(v);
  }
  return w.bytes().slice();
}

test('a module job with params, counters and logs', () => {
  const out = new Harness().runMapReduceCombined(jobs, ['b a', 'a']);
  assert.deepEqual(out.lines(), ['a!\t2', 'b!\t1']);
  assert.deepEqual(out.counters, { records: 2, chars: 4 });
  assert.deepEqual(out.logs, [['info', 'reducing a!'], ['info', 'reducing b!']]);
  assert.deepEqual(new Harness({ params: { suffix: '?' } }).runMapReduce(jobs, ['x']).lines(), ['x?\t1']);
});

test('describe metadata', () => {
  const job = loadJob(jobs);
  assert.equal(job.world, 'mapreduce-job');
  assert.deepEqual([job.info.name, job.info.version, job.hasCombine], ['sample', '1.2.3', true]);
  assert.deepEqual(job.info.params.map((p) => [p.name, p.default]), [['suffix', '!'], ['fail-on', undefined]]);
});

test('a class job is created on its first call, once', () => {
  let created = 0;
  class Lengths {
    static info = { name: 'lengths' };
    constructor() {
      created++;
    }
    map(record, emit) {
      emit('', record.valueBytes.length);
    }
  }
  const job = loadJob({ default: Lengths });
  assert.equal(created, 0);
  assert.equal(job.world, 'mapper-job');
  const input = batchOf(['f:1', 'abc'], ['f:2', 'é']);
  assert.deepEqual(pairs(mapBatch(job, input)), [['', '3'], ['', '2']]);
  mapBatch(job, input);
  assert.equal(created, 1);
});

test('an exception names the record and keeps the stack, without the SDK frames', () => {
  assert.throws(
    () => new Harness({ params: { 'fail-on': 'BAD' } }).runMap(jobs, ['fine', 'also fine', 'a BAD line']),
    (e) => {
      assert.ok(e instanceof JobFailed);
      assert.equal(e.recordIndex, 2);
      assert.match(e.message, /^RangeError: cannot take "a BAD line"\n {4}at explode \(.*jobs\.js:\d+:\d+\)\n {4}at (Module\.)?map \(/);
      assert.doesNotMatch(e.message, /glue\.js/);
      return true;
    },
  );
});

test('reduce and combine failures name the key', () => {
  assert.throws(() => new Harness().runReduce(jobs, { k: ['1', 'x'] }), /in reduce of key "k": Error: not a number/);
  const w = new Writer();
  putGroup(w, 'w', ['1', 'nope']);
  assert.throws(() => combineBatch(loadJob(jobs), w.bytes().slice()), (e) => e instanceof Failure && /in combine of key "w"/.test(e.message));
});

test('reduce values are pulled lazily from the stream', () => {
  const seen = [];
  const job = loadJob({
    info: { name: 'lazy' },
    map() {},
    reduce(key, values, emit) {
      let i = 0;
      for (const v of values) {
        seen.push(v);
        if (i++ === 2) break;
      }
      emit(key, seen.join(','));
    },
  });
  const w = new Writer();
  putGroup(w, 'a', ['0']);
  putGroup(w, 'hot', ['1'], true);
  let pulls = 0;
  let next = 2;
  const stream = {
    nextBatch() {
      pulls++;
      const b = new Writer();
      b.lenPrefixed(String(next++));
      return b.bytes().slice();
    },
  };
  assert.deepEqual(pairs(reduceBatch(job, w.bytes().slice(), stream)), [['a', '0'], ['hot', '0,1,2,3']]);
  // Group "a" never touches the stream; "hot" pulls one batch per value it actually reads.
  assert.equal(pulls, 2);
});

test('the whole stream is read when consumed', () => {
  const out = new Harness().runReduce(jobs, { k: Array.from({ length: 1000 }, (_, i) => i) });
  assert.deepEqual(out.lines(), [`k\t${(999 * 1000) / 2}`]);
  assert.equal(out.streamPulls, 500);
});

test('emit refuses values it cannot write', () => {
  const job = loadJob({ info: { name: 'bad' }, map: (r, emit) => emit(r.value, { x: 1 }) });
  assert.throws(() => mapBatch(job, batchOf(['k', 'v'])), /emit\(\) takes string, Uint8Array or number keys and values, not object/);
});

test('counters are flushed once per name per batch', () => {
  const calls = [];
  const previous = setBackend({ counterAdd: (n, d) => calls.push([n, d]) });
  try {
    discardCounters();
    for (let i = 0; i < 1000; i++) counter('n');
    counter('zero', 0);
    flushCounters();
  } finally {
    setBackend(previous);
  }
  assert.deepEqual(calls, [['n', 1000]]);
});

test('context outside a run says how to use it', () => {
  assert.throws(() => param('x'), /not at module top level/);
});

test('bad jobs are refused with reasons', () => {
  assert.throws(() => loadJob({ info: { name: 'x' }, reduce() {} }), /exports map/);
  assert.throws(() => loadJob({ info: { name: 'x' }, map() {}, combine() {} }), /a combiner needs a reducer/);
  assert.throws(() => loadJob({ map() {} }), /exports `info`/);
});

test('a combined run names the line that failed', () => {
  // Every line is its own batch there; the index is still the line's among all lines given.
  assert.throws(
    () => new Harness({ params: { 'fail-on': 'BAD' } }).runMapReduceCombined(jobs, ['fine', 'also fine', 'a BAD line']),
    (e) => e instanceof JobFailed && e.recordIndex === 2 && e.record === 'input:3',
  );
});

test('parameters are checked and defaulted as the host does', () => {
  assert.throws(
    () => new Harness({ params: { nope: '1' } }).runMap(jobs, ['x']),
    (e) => e instanceof JobFailed && e.message === 'job `sample` has no parameter `nope`; it declares: suffix, fail-on',
  );
  const needy = {
    info: { name: 'needy', params: [{ name: 'must', description: 'a value', required: true }] },
    map: (record, emit) => emit(param('must'), 1),
  };
  assert.throws(() => new Harness().runMap(needy, ['x']), /requires parameter `must` \(a value\); pass --param must=VALUE/);
  assert.deepEqual(new Harness({ params: { must: 'm' } }).runMap(needy, ['x']).lines(), ['m\t1']);
});

test('typed parameters are checked as the host does', () => {
  const typed = {
    info: {
      name: 'typed',
      params: [
        { name: 'top', description: 'how many', default: 10, type: 'integer' },
        { name: 'ratio', description: 'a fraction', type: 'float' },
        { name: 'strict', description: 'fail early', type: 'bool' },
        { name: 'mode', description: 'how', default: 'fast', type: 'enum', choices: ['fast', 'exact'] },
      ],
    },
    map: (record, emit) => {
      for (const n of ['top', 'ratio', 'strict', 'mode']) emit(n, param(n) ?? '<unset>');
    },
  };
  const ok = new Harness({ params: { top: '-3', ratio: '1e-3', strict: 'true' } }).runMap(typed, ['x']);
  assert.deepEqual(ok.lines(), ['top\t-3', 'ratio\t1e-3', 'strict\ttrue', 'mode\tfast']);
  for (const [name, value, expected] of [
    ['top', 'three', 'must be an integer (e.g. 42 or -7), not "three"'],
    ['top', '0x10', 'must be an integer (e.g. 42 or -7), not "0x10"'],
    ['top', '99999999999999999999', 'must be an integer'],
    ['ratio', 'NaN', 'must be a number (e.g. 0.25, 3 or 1e-3), not "NaN"'],
    ['ratio', '', 'must be a number'],
    ['strict', 'yes', 'must be true or false, not "yes"'],
    ['mode', 'slow', 'must be one of fast, exact, not "slow"'],
  ]) {
    assert.throws(
      () => new Harness({ params: { [name]: value } }).runMap(typed, ['x']),
      (e) => e instanceof JobFailed && e.message.startsWith(`parameter \`${name}\` of job \`typed\` ${expected}`),
      `${name}=${value}`,
    );
  }
  assert.throws(() => loadJob({ info: { name: 'bad', params: [{ name: 'b', type: 'enum' }] }, map() {} }), /choices go with type 'enum'/);
  assert.throws(() => loadJob({ info: { name: 'bad', params: [{ name: 'b', type: 'number' }] }, map() {} }), /type must be one of/);
});

test('many distinct counters in one call', () => {
  const names = Array.from({ length: 200000 }, (_, i) => `c${i}`);
  const job = { info: { name: 'counting' }, map: (record) => record.value.split(' ').forEach((n) => counter(n)) };
  const out = new Harness().runMap(job, [names.join(' '), 'c7']);
  assert.equal(Object.keys(out.counters).length, 200000);
  assert.equal(out.counters.c7, 2);
});
