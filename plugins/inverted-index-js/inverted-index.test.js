// Native tests: the job's functions in Node, no wasm (`node --test` in this directory).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Harness } from 'mr-sdk/testing';
import * as invertedIndex from './inverted-index.js';

test('lists sorted unique locations', () => {
  const lines = Array.from({ length: 4 }, () => ['b a b', 'x', 'A']).flat();
  const out = new Harness().runMapReduce(invertedIndex, lines);
  const a = out.lines().find((l) => l.startsWith('a\t'));
  // Line 10 sorts after line 9: numeric, not textual, order.
  assert.equal(a, 'a\tinput:1,input:3,input:4,input:6,input:7,input:9,input:10,input:12');
  assert.equal(out.lines().length, 3);
  // Every group's values past the first came through the (stand-in) value stream.
  assert.ok(out.streamPulls > 0);
});
