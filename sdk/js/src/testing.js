// Run a job's functions natively in Node, without wasm, for fast unit tests with inline data.
//
// Harness runs the same map / combine / reduce loops as the component, over the same flat
// encoding, with the host's grouping rules: groups in key-byte order, values in input order. It
// streams every group's values beyond the first through a stand-in for the host's value stream,
// so the large-group path is exercised too. Counters, parameters and logs work as under mr-host.
//
//   import { Harness } from 'mr-sdk/testing';
//   import * as wordcount from './wordcount.js';
//   const out = new Harness().runMapReduceCombined(wordcount, ['a b', 'b']);
//   assert.deepEqual(out.lines(), ['a\t1', 'b\t2']);

import { Writer, countedValues, kvs, putGroup } from './codec.js';
import { discardCounters, flushCounters, setBackend } from './context.js';
import { Failure, combineBatch, mapAndCombine, mapBatch, reduceBatch } from './glue.js';
import { loadJob } from './job.js';
import { hideFramesUnder } from './stack.js';

hideFramesUnder(new URL('.', import.meta.url).pathname);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The job failed: its message (with the stack) and, for map, the record's index. */
export class JobFailed extends Error {
  constructor(message, recordIndex) {
    super(message);
    this.name = 'JobFailed';
    this.recordIndex = recordIndex;
  }
}

/** What a native run produced. */
export class Output {
  constructor() {
    /** Output pairs in output order, as [Uint8Array, Uint8Array]. */
    this.records = [];
    /** Job counters the job incremented. */
    this.counters = {};
    /** Log messages as [level, message]. */
    this.logs = [];
    /** Value-stream batches the reducer pulled. */
    this.streamPulls = 0;
  }

  /** The records as mr-host writes them: key<TAB>value, or just value for an empty key. */
  lines() {
    return this.records.map(([k, v]) => {
      const key = decoder.decode(k);
      const value = decoder.decode(v);
      return key ? `${key}\t${value}` : value;
    });
  }
}

/** Stands in for the host's value stream: a few values per pull, pulls counted. */
class Stream {
  constructor(values, output, perPull = 2) {
    this.values = values;
    this.output = output;
    this.perPull = perPull;
  }

  nextBatch(_maxBytes) {
    const taken = this.values.splice(0, this.perPull);
    const w = new Writer();
    for (const v of taken) w.lenPrefixed(v);
    if (taken.length) this.output.streamPulls++;
    return w.bytes().slice();
  }
}

function copy(pairs) {
  return [...pairs].map(([k, v]) => [k.slice(), v.slice()]);
}

function inputBatch(lines, first = 1) {
  const w = new Writer();
  lines.forEach((line, i) => {
    w.lenPrefixed(`input:${first + i}`);
    w.lenPrefixed(line);
  });
  return w.bytes().slice();
}

function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Groups pairs by key in key-byte order, each key's values in input order. */
function group(pairs) {
  const byKey = new Map();
  for (const [k, v] of pairs) {
    const id = k.join(',');
    if (!byKey.has(id)) byKey.set(id, [k, []]);
    byKey.get(id)[1].push(v);
  }
  return [...byKey.values()].sort((a, b) => compareBytes(a[0], b[0]));
}

/** Runs jobs natively. `params` are the job's --param values (declared defaults filled in). */
export class Harness {
  constructor({ params = {} } = {}) {
    this.params = { ...params };
  }

  /** Runs only the map phase over text lines (keys input:1, input:2, ...). */
  runMap(job, lines) {
    return this.#run(job, (j, out) => this.#map(j, lines, out));
  }

  /** Runs map, then reduce over the groups (no combiner). */
  runMapReduce(job, lines) {
    return this.#run(job, (j, out) => this.#reduce(j, group(this.#map(j, lines, out)), out));
  }

  /** Runs map with the in-batch combine the component uses, the combiner again over each line's
   * output as the host would on a spill (every record its own batch), then reduce. */
  runMapReduceCombined(job, lines) {
    return this.#run(job, (j, out) => {
      if (!j.hasCombine) throw new TypeError('runMapReduceCombined needs a job with combine()');
      const pairs = [];
      lines.forEach((line, i) => {
        const groups = group(copy(kvs(mapAndCombine(j, inputBatch([line], i + 1)))));
        const w = new Writer();
        for (const [k, vs] of groups) putGroup(w, k, vs);
        const combined = [...countedValues(combineBatch(j, w.bytes().slice()))];
        groups.forEach(([k], g) => combined[g].forEach((v) => pairs.push([k, v.slice()])));
      });
      this.#reduce(j, group(pairs), out);
    });
  }

  /** Runs only reduce over the given groups ({key: [values]}), sorted by key as the host does. */
  runReduce(job, groups) {
    const pairs = Object.entries(groups).flatMap(([k, vs]) => vs.map((v) => [encoder.encode(k), encoder.encode(String(v))]));
    return this.#run(job, (j, out) => this.#reduce(j, group(pairs), out));
  }

  #run(job, run) {
    const loaded = loadJob(job);
    const params = {};
    for (const p of loaded.info.params) if (p.default !== undefined) params[p.name] = p.default;
    Object.assign(params, this.params);
    const output = new Output();
    discardCounters();
    const previous = setBackend({
      counterAdd: (name, delta) => {
        output.counters[name] = (output.counters[name] ?? 0) + delta;
      },
      log: (level, message) => output.logs.push([level, message]),
      param: (name) => params[name],
      task: () => ({ job: 'native-test', phase: 'test', shard: 0, slice: 0, attempt: 1 }),
    });
    try {
      run(loaded, output);
    } catch (e) {
      if (e instanceof Failure) throw new JobFailed(e.message, e.recordIndex);
      throw e;
    } finally {
      flushCounters();
      setBackend(previous);
    }
    return output;
  }

  #map(job, lines, out) {
    const pairs = copy(kvs(mapBatch(job, inputBatch(lines))));
    if (!job.hasReduce) out.records.push(...pairs);
    return pairs;
  }

  #reduce(job, groups, out) {
    // One group per call, its first value in the batch and the rest through the stream: every
    // reducer sees the same lazy value path as a hot key under mr-host.
    for (const [key, values] of groups) {
      const w = new Writer();
      putGroup(w, key, values.slice(0, 1), values.length > 1);
      const reduced = reduceBatch(job, w.bytes().slice(), new Stream(values.slice(1), out));
      out.records.push(...copy(kvs(reduced)));
    }
  }
}
