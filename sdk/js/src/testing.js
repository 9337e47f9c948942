// Run a job's functions natively in Node, without wasm, for fast unit tests with inline data or
// real files.
//
// Harness runs the same map / combine / reduce loops as the component, over the same flat
// encoding, with the host's rules: parameters checked against the job's declarations and
// defaults filled in, groups in key-byte order, values in input order, lines of files keyed
// `path:line`. It streams every group's values beyond the first through a stand-in for the
// host's value stream, so the large-group path is exercised too. Counters, parameters and logs
// work as under mr-host.
//
//   import { Harness } from 'mr-sdk/testing';
//   import * as wordcount from './wordcount.js';
//   const out = new Harness().runMapReduceCombined(wordcount, ['a b', 'b']);
//   assert.deepEqual(out.lines(), ['a\t1', 'b\t2']);
//   new Harness().runFiles(wordcount, ['data.txt']);   // as `mr-host run --reducers 1` would
//
// `mr-sdk run job.js -i data.txt` does the same from the command line.

import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { Writer, countedValues, kvs, putGroup } from './codec.js';
import { discardCounters, flushCounters, setBackend } from './context.js';
import { Failure, combineBatch, mapAndCombine, mapBatch, reduceBatch } from './glue.js';
import { checkParam, loadJob } from './job.js';
import { hideFramesUnder } from './stack.js';

hideFramesUnder(new URL('.', import.meta.url).pathname);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Input bytes per map call in runFiles, as `mr-host run`'s default --batch-size. */
export const FILE_BATCH_BYTES = 4 << 20;

/**
 * The job failed (or the harness refused a parameter): its message (with the stack) and, for
 * map, the failing record's index among all records of the run (`recordIndex`, 0-based) and its
 * key as mr-host names it (`record`: `input:N` for inline lines, `path:line` for files).
 */
export class JobFailed extends Error {
  constructor(message, recordIndex, record) {
    super(message);
    this.name = 'JobFailed';
    this.recordIndex = recordIndex;
    this.record = record;
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

/** Text lines as [key, value] records keyed input:1, input:2, ... */
function inlineRecords(lines) {
  return [...lines].map((line, i) => [encoder.encode(`input:${i + 1}`), encoder.encode(line)]);
}

function kvBatch(records) {
  const w = new Writer();
  for (const [k, v] of records) {
    w.lenPrefixed(k);
    w.lenPrefixed(v);
  }
  return w.bytes().slice();
}

/**
 * Consecutive runs of records of about `maxBytes` of values each (at least one record per batch;
 * 0 puts every record in its own), as [index of the first record, records].
 */
function batches(records, maxBytes) {
  const out = [];
  let start = 0;
  let size = 0;
  records.forEach(([, value], i) => {
    if (i > start && size + value.length > maxBytes) {
      out.push([start, records.slice(start, i)]);
      start = i;
      size = 0;
    }
    size += value.length + 1;
  });
  if (start < records.length) out.push([start, records.slice(start)]);
  return out;
}

/**
 * The lines of text files as [key, value] records keyed `path:line` (1-based) as mr-host run keys
 * them: the path as given (joined with the file's path inside a given directory), lines without
 * \n or \r\n, a last line without a newline included.
 */
export function readLineRecords(paths) {
  const files = [];
  for (const path of paths) {
    const matched = statSync(path).isDirectory() ? walk(path).sort() : [path];
    for (const f of matched) if (!files.includes(f)) files.push(f);
  }
  const records = [];
  for (const file of files) {
    const data = readFileSync(file);
    let start = 0;
    let line = 1;
    while (start < data.length) {
      let end = data.indexOf(10, start);
      const next = end === -1 ? data.length : end + 1;
      if (end === -1) end = data.length;
      if (end > start && data[end - 1] === 13) end--;
      records.push([encoder.encode(`${file}:${line++}`), new Uint8Array(data.subarray(start, end))]);
      start = next;
    }
  }
  return records;
}

function walk(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** The parameters the job sees, with the host's checks and messages. */
function resolveParams(info, given) {
  const names = info.params.map((p) => p.name);
  for (const name of Object.keys(given)) {
    if (!names.includes(name)) {
      const declared = names.length ? `it declares: ${names.join(', ')}` : 'it declares no parameters';
      throw new JobFailed(`job \`${info.name}\` has no parameter \`${name}\`; ${declared}`);
    }
  }
  const params = {};
  for (const p of info.params) {
    const value = given[p.name] ?? p.default;
    if (value !== undefined) {
      // The host's check at submit, so a wrong value fails here the same way.
      const why = checkParam(p, String(value));
      if (why) throw new JobFailed(`parameter \`${p.name}\` of job \`${info.name}\` ${why} (--param ${p.name}=VALUE)`);
      params[p.name] = String(value);
    } else if (p.required) {
      throw new JobFailed(`job \`${info.name}\` requires parameter \`${p.name}\` (${p.description}); pass --param ${p.name}=VALUE`);
    }
  }
  return params;
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

/** Runs jobs natively. `params` are the job's --param values, checked and defaulted as mr-host does. */
export class Harness {
  constructor({ params = {} } = {}) {
    this.params = { ...params };
  }

  /** Runs only the map phase over text lines (keys input:1, input:2, ...), as one batch. */
  runMap(job, lines) {
    const records = inlineRecords(lines);
    return this.#run(job, records, (j, out) => this.#map(j, records, out));
  }

  /** Runs map, then reduce over the groups (no combiner). */
  runMapReduce(job, lines) {
    const records = inlineRecords(lines);
    return this.#run(job, records, (j, out) => this.#reduce(j, group(this.#map(j, records, out)), out));
  }

  /** Runs map with the in-batch combine the component uses, the combiner again over each line's
   * output as the host would on a spill (every record its own batch), then reduce. */
  runMapReduceCombined(job, lines) {
    const records = inlineRecords(lines);
    return this.#run(job, records, (j, out) => this.#combined(j, records, 0, out));
  }

  /** Runs only reduce over the given groups ({key: [values]}), sorted by key as the host does. */
  runReduce(job, groups) {
    const pairs = Object.entries(groups).flatMap(([k, vs]) => vs.map((v) => [encoder.encode(k), encoder.encode(String(v))]));
    return this.#run(job, [], (j, out) => this.#reduce(j, group(pairs), out));
  }

  /**
   * Reads text files (or directories, recursively, hidden files skipped) as `mr-host run --input`
   * does, one record per line keyed `path:line`, and runs the job's phases over them as its
   * component would: map in 4 MiB batches (with the in-batch combine and the combiner again over
   * each batch's output when the job has combine), then reduce. The records are what
   * `mr-host run --reducers 1` writes: sorted by key (in input order for a map-only job). Gzip,
   * zip, JSONL and CSV inputs are read as plain lines. An unreadable file throws its fs error.
   */
  runFiles(job, paths) {
    const records = readLineRecords(paths);
    return this.#run(job, records, (j, out) => {
      if (!j.hasReduce) this.#map(j, records, out);
      else if (j.hasCombine) this.#combined(j, records, FILE_BATCH_BYTES, out);
      else this.#reduce(j, group(this.#map(j, records, out)), out);
    });
  }

  #run(job, records, run) {
    const loaded = loadJob(job);
    const params = resolveParams(loaded.info, this.params);
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
      if (e instanceof Failure) {
        const index = e.recordIndex;
        const record = index !== undefined && index !== null && records[index] ? decoder.decode(records[index][0]) : undefined;
        throw new JobFailed(e.message, index, record);
      }
      throw e;
    } finally {
      flushCounters();
      setBackend(previous);
    }
    return output;
  }

  #map(job, records, out) {
    const pairs = copy(kvs(mapBatch(job, kvBatch(records))));
    if (!job.hasReduce) out.records.push(...pairs);
    return pairs;
  }

  /** Map with the in-batch combine per batch of about `batchBytes` (0: one record per batch),
   * the combiner again over each batch's output (as on a spill), then reduce. */
  #combined(job, records, batchBytes, out) {
    if (!job.hasCombine) throw new TypeError('runMapReduceCombined needs a job with combine()');
    const pairs = [];
    for (const [first, batch] of batches(records, batchBytes)) {
      let mapped;
      try {
        mapped = mapAndCombine(job, kvBatch(batch));
      } catch (e) {
        // The component reports the index within its batch; the host (and this harness) turn it
        // into the record's place in the whole input.
        if (e instanceof Failure && e.recordIndex !== undefined && e.recordIndex !== null) e.recordIndex += first;
        throw e;
      }
      const groups = group(copy(kvs(mapped)));
      const w = new Writer();
      for (const [k, vs] of groups) putGroup(w, k, vs);
      const combined = [...countedValues(combineBatch(job, w.bytes().slice()))];
      groups.forEach(([k], g) => combined[g].forEach((v) => pairs.push([k, v.slice()])));
    }
    this.#reduce(job, group(pairs), out);
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
