// The flat batch framing of wit/job.wit, in plain JavaScript.
//
// Records cross the wasm boundary as one Uint8Array per call, never as a list of records:
// - kv batch: u32 key-len, key, u32 value-len, value; repeated;
// - group batch: u32 key-len, key, u32 value-count, u8 flags, (u32 len, value) * count; repeated;
//   flag bit 0 (`more`) says the group's remaining values follow in the value stream;
// - value batch: u32 len, value; repeated (combiner output prefixes each group's values with a
//   u32 count).
// All integers are little-endian. A malformed buffer throws MalformedBatch naming the byte
// offset. This mirrors mr-codec (sdk/codec), the Rust implementation the host uses.

/** Group flag: more values of this group follow in the reducer's value stream. */
export const GROUP_MORE = 1;

const encoder = new TextEncoder();

/** A buffer that does not follow the framing. */
export class MalformedBatch extends Error {
  constructor(offset, expected) {
    super(`malformed batch at byte ${offset}: expected ${expected}`);
    this.name = 'MalformedBatch';
    this.offset = offset;
    this.expected = expected;
  }
}

/** Reads a little-endian u32 at `pos` (the caller checked the bounds). */
export function u32(buf, pos) {
  return (buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16) | (buf[pos + 3] << 24)) >>> 0;
}

/** Reads `u32 len` then that many bytes at `pos`; returns [bytes (a view), new position]. */
export function readBytes(buf, pos, expected) {
  if (pos + 4 > buf.length) throw new MalformedBatch(pos, expected);
  const end = pos + 4 + u32(buf, pos);
  if (end > buf.length) throw new MalformedBatch(pos, expected);
  return [buf.subarray(pos + 4, end), end];
}

/** A growable byte buffer that output batches are written into. */
export class Writer {
  constructor(capacity = 1024) {
    this.buf = new Uint8Array(capacity);
    this.len = 0;
  }

  reserve(n) {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const grown = new Uint8Array(cap);
    grown.set(this.buf.subarray(0, this.len));
    this.buf = grown;
  }

  u8(v) {
    this.reserve(1);
    this.buf[this.len++] = v;
  }

  u32(v) {
    this.reserve(4);
    const b = this.buf;
    let p = this.len;
    b[p++] = v & 0xff;
    b[p++] = (v >>> 8) & 0xff;
    b[p++] = (v >>> 16) & 0xff;
    b[p++] = (v >>> 24) & 0xff;
    this.len = p;
  }

  /** Appends `u32 len` and the bytes of a string (UTF-8) or a Uint8Array. */
  lenPrefixed(x) {
    if (typeof x === 'string') {
      // Worst case 3 bytes per UTF-16 unit; write the length after encoding.
      this.reserve(4 + x.length * 3);
      const at = this.len;
      const { written } = encoder.encodeInto(x, this.buf.subarray(at + 4));
      this.len = at;
      this.u32(written);
      this.len += written;
    } else {
      this.u32(x.length);
      this.reserve(x.length);
      this.buf.set(x, this.len);
      this.len += x.length;
    }
  }

  /** The written bytes (a view: copy before writing more). */
  bytes() {
    return this.buf.subarray(0, this.len);
  }
}

/** Iterates the entries of a kv batch as [key, value] views. */
export function* kvs(buf) {
  let pos = 0;
  while (pos < buf.length) {
    let key, value;
    [key, pos] = readBytes(buf, pos, 'a key');
    [value, pos] = readBytes(buf, pos, 'a value');
    yield [key, value];
  }
}

/** Iterates a value batch to its end. */
export function* values(buf) {
  let pos = 0;
  while (pos < buf.length) {
    let value;
    [value, pos] = readBytes(buf, pos, 'a value');
    yield value;
  }
}

/**
 * Reads the group at `pos`: returns {key, count, more, start, end}, where start is the
 * position of its first value and end the position just past its last. Every value's framing
 * is checked, so a reducer that stops early never leaves the next group misaligned.
 */
export function groupHeader(buf, pos) {
  let key;
  [key, pos] = readBytes(buf, pos, 'a group key');
  if (pos + 5 > buf.length) throw new MalformedBatch(pos, 'a group value count and flags');
  const count = u32(buf, pos);
  const more = (buf[pos + 4] & GROUP_MORE) !== 0;
  const start = pos + 5;
  let end = start;
  for (let i = 0; i < count; i++) [, end] = readBytes(buf, end, 'a group value');
  if (more && end !== buf.length) {
    throw new MalformedBatch(end, 'the end of the batch after a group flagged `more`');
  }
  return { key, count, more, start, end };
}

/** Iterates a group batch as {key, values (views), more}. */
export function* groups(buf) {
  let pos = 0;
  while (pos < buf.length) {
    const g = groupHeader(buf, pos);
    pos = g.end;
    yield { key: g.key, values: [...values(buf.subarray(g.start, g.end))], more: g.more };
  }
}

/** Appends one group. */
export function putGroup(w, key, vals, more = false) {
  w.lenPrefixed(key);
  w.u32(vals.length);
  w.u8(more ? GROUP_MORE : 0);
  for (const v of vals) w.lenPrefixed(v);
}

/** Reads combiner output: for each group, u32 count then that many values. */
export function* countedValues(buf) {
  let pos = 0;
  while (pos < buf.length) {
    if (pos + 4 > buf.length) throw new MalformedBatch(pos, 'a combined value count');
    const count = u32(buf, pos);
    pos += 4;
    const group = [];
    for (let i = 0; i < count; i++) {
      let value;
      [value, pos] = readBytes(buf, pos, 'a combined value');
      group.push(value);
    }
    yield group;
  }
}
