import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MalformedBatch, Writer, countedValues, groups, kvs, putGroup } from '../src/codec.js';

const bytes = (s) => new TextEncoder().encode(s);
const text = (b) => new TextDecoder().decode(b);

test('kv round trip and exact bytes', () => {
  const w = new Writer(4);
  w.lenPrefixed('alpha');
  w.lenPrefixed(bytes('1'));
  w.lenPrefixed('');
  w.lenPrefixed('');
  // The framing of wit/job.wit, spelled out: u32 LE length, bytes, u32 LE length, bytes.
  assert.deepEqual([...w.bytes()], [5, 0, 0, 0, ...bytes('alpha'), 1, 0, 0, 0, 0x31, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...kvs(w.bytes())].map(([k, v]) => [text(k), text(v)]), [['alpha', '1'], ['', '']]);
});

test('non-ASCII strings are written as UTF-8 with their byte length', () => {
  const w = new Writer(1);
  w.lenPrefixed('é€😀');
  assert.equal(w.bytes()[0], 2 + 3 + 4);
  assert.equal(text(w.bytes().subarray(4)), 'é€😀');
});

test('a truncated kv batch names the offset', () => {
  const w = new Writer();
  for (const s of ['alpha', 'value', 'beta', 'value']) w.lenPrefixed(s);
  const cut = w.bytes().subarray(0, w.len - 2);
  assert.throws(() => [...kvs(cut)], (e) => e instanceof MalformedBatch && e.offset === 26 && /byte 26/.test(e.message));
});

test('groups with the more flag, and counted values', () => {
  const w = new Writer();
  putGroup(w, 'a', ['1', '22']);
  putGroup(w, 'b', ['333'], true);
  const got = [...groups(w.bytes())].map((g) => [text(g.key), g.values.map(text), g.more]);
  assert.deepEqual(got, [['a', ['1', '22'], false], ['b', ['333'], true]]);
  const c = new Writer();
  c.u32(2);
  c.lenPrefixed('x');
  c.lenPrefixed('y');
  c.u32(0);
  assert.deepEqual([...countedValues(c.bytes())].map((g) => g.map(text)), [['x', 'y'], []]);
});

test('the more flag must be on the last group', () => {
  const w = new Writer();
  putGroup(w, 'a', [], true);
  putGroup(w, 'b', []);
  assert.throws(() => [...groups(w.bytes())], /more/);
});
