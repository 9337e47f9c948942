// The loops between flat batches and a job's functions, shared by the component exports
// (guest.js) and the native Harness (testing.js) so both run exactly the same code.
//
// Every exception a job throws becomes a Failure carrying the JavaScript stack (mapped back to
// the job's own files, see stack.js) and, in map, the index of the record in the batch, which
// the host turns into the record's file:line.

import { MalformedBatch, Writer, groupHeader, readBytes, u32, values as valueBatch } from './codec.js';
import { formatError } from './stack.js';

/** How many bytes of values to pull from the host's value stream per call. */
export const STREAM_BATCH_BYTES = 256 * 1024;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A failure to report to the host as a job-error. */
export class Failure extends Error {
  constructor(message, recordIndex = undefined) {
    super(message);
    this.recordIndex = recordIndex;
  }
}

/** Output keys and values: strings (UTF-8), Uint8Arrays, or integers (written in decimal). */
function output(x) {
  if (typeof x === 'string' || x instanceof Uint8Array) return x;
  if (typeof x === 'number' || typeof x === 'bigint') return String(x);
  // The component's list<u8> arguments are typed arrays of their own kind: take any byte view.
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  throw new TypeError(`emit() takes string, Uint8Array or number keys and values, not ${x === null ? 'null' : typeof x}`);
}

/**
 * One input record. `key` is where it came from (`path:line` for text input) and `value` the
 * record itself (a line without its terminator), both strings decoded from UTF-8; `keyBytes` /
 * `valueBytes` are the raw bytes (views into the batch: copy them to keep them past the call).
 */
export class Record {
  constructor(keyBytes, valueBytes) {
    this.keyBytes = keyBytes;
    this.valueBytes = valueBytes;
  }

  get key() {
    return decoder.decode(this.keyBytes);
  }

  get value() {
    return decoder.decode(this.valueBytes);
  }
}

/**
 * The values of one group, in input order, as strings: an iterator that pulls them from the
 * batch and then, for a large group, from the host's value stream in batches, so a group never
 * has to fit in memory. `values.bytes()` iterates the same values as raw Uint8Arrays.
 */
export class Values {
  constructor(raw) {
    this.raw = raw;
  }

  [Symbol.iterator]() {
    return this;
  }

  next() {
    const r = this.raw.next();
    if (r.done) return r;
    const v = r.value;
    return { done: false, value: typeof v === 'string' ? v : decoder.decode(v) };
  }

  /** The remaining values as Uint8Arrays (shares the position with this iterator). */
  *bytes() {
    for (const v of this.raw) yield typeof v === 'string' ? encoder.encode(v) : v;
  }
}

/** The raw values of a group: `count` values at `pos` in the batch, then (when the group is
 * flagged `more`) the value batches pulled from `rest` until it returns an empty one. */
function* streamed(buf, pos, count, rest) {
  for (let i = 0; i < count; i++) {
    const n = u32(buf, pos);
    yield buf.subarray(pos + 4, pos + 4 + n);
    pos += 4 + n;
  }
  if (!rest) return;
  for (;;) {
    const batch = rest.nextBatch(STREAM_BATCH_BYTES);
    if (batch.length === 0) return;
    yield* valueBatch(batch);
  }
}

function short(keyBytes) {
  const text = decoder.decode(keyBytes);
  return JSON.stringify(text.length <= 80 ? text : `${text.slice(0, 77)}...`);
}

function mapRecords(job, batch, emit) {
  const mapFn = job.bound();
  let pos = 0;
  let index = 0;
  try {
    while (pos < batch.length) {
      let key, value;
      [key, pos] = readBytes(batch, pos, 'a key');
      [value, pos] = readBytes(batch, pos, 'a value');
      mapFn.map(new Record(key, value), emit);
      index++;
    }
  } catch (e) {
    if (e instanceof MalformedBatch) throw new Failure(`the host sent a malformed map batch: ${e.message}`);
    throw new Failure(formatError(e), index);
  }
}

/** Maps every record of a kv batch; returns the output kv batch. */
export function mapBatch(job, batch) {
  const out = new Writer(batch.length + 64);
  mapRecords(job, batch, (key, value) => {
    out.lenPrefixed(output(key));
    out.lenPrefixed(output(value));
  });
  return out.bytes();
}

/**
 * Maps a batch and runs the combiner over its output before returning it, so the host's
 * shuffle sees one combined value per key per batch instead of every emitted pair (the contract
 * allows a combiner on any subset of a key's values). Pairs are grouped in a Map as they are
 * emitted: no flat group batch is built and parsed back.
 */
export function mapAndCombine(job, batch) {
  const grouped = new Map();
  mapRecords(job, batch, (key, value) => {
    key = output(key);
    // Group by the key's text; byte keys by their bytes behind a NUL prefix. A text key that
    // happens to look the same only splits a group in two, which is harmless: the combiner may
    // run on any subset of a key's values.
    const id = typeof key === 'string' ? key : `\u0000bytes:${key.join(',')}`;
    const group = grouped.get(id);
    if (group === undefined) grouped.set(id, { key, values: [output(value)] });
    else group.values.push(output(value));
  });
  const out = new Writer(1024);
  const combiner = job.bound();
  for (const { key, values } of grouped.values()) {
    const keyBytes = typeof key === 'string' ? encoder.encode(key) : key;
    for (const v of combineGroup(combiner, keyBytes, values[Symbol.iterator]())) {
      out.lenPrefixed(keyBytes);
      out.lenPrefixed(v);
    }
  }
  return out.bytes();
}

function combineGroup(combiner, keyBytes, raw) {
  const combined = [];
  try {
    combiner.combine(decoder.decode(keyBytes), new Values(raw), (value) => combined.push(output(value)));
  } catch (e) {
    throw new Failure(`in combine of key ${short(keyBytes)}: ${formatError(e)}`);
  }
  return combined;
}

/** Calls `visit(group)` for each group header of a group batch; a malformed batch is the
 * host's fault, reported as such for the named call. */
function eachGroup(groups, call, visit) {
  let pos = 0;
  while (pos < groups.length) {
    let g;
    try {
      g = groupHeader(groups, pos);
    } catch (e) {
      throw new Failure(`the host sent a malformed ${call} batch: ${e.message}`);
    }
    pos = g.end;
    visit(g);
  }
}

/** Combines every group of a group batch; returns u32 count + values per group. */
export function combineBatch(job, groups) {
  const combiner = job.bound();
  const out = new Writer(groups.length + 64);
  eachGroup(groups, 'combine', (g) => {
    const combined = combineGroup(combiner, g.key, streamed(groups, g.start, g.count, null));
    out.u32(combined.length);
    for (const v of combined) out.lenPrefixed(v);
  });
  return out.bytes();
}

/** Reduces every group of a group batch; the last group's remaining values, when it is flagged
 * `more`, come from `rest`. */
export function reduceBatch(job, groups, rest) {
  const reducer = job.bound();
  const out = new Writer(1024);
  const emit = (key, value) => {
    out.lenPrefixed(output(key));
    out.lenPrefixed(output(value));
  };
  eachGroup(groups, 'reduce', (g) => {
    const values = new Values(streamed(groups, g.start, g.count, g.more ? rest : null));
    try {
      reducer.reduce(decoder.decode(g.key), values, emit);
    } catch (e) {
      if (e instanceof MalformedBatch) throw new Failure(`the host sent a malformed value batch: ${e.message}`);
      throw new Failure(`in reduce of key ${short(g.key)}: ${formatError(e)}`);
    }
  });
  return out.bytes();
}
