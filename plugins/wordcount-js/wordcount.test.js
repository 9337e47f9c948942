// Native tests: the job's functions in Node, no wasm (`node --test` in this directory).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Harness } from 'mr-sdk/testing';
import * as wordcount from './wordcount.js';

test('counts words case-insensitively', () => {
  const out = new Harness().runMapReduceCombined(wordcount, ['The cat, the HAT.', '', 'r2d2 café']);
  assert.deepEqual(out.lines(), ['caf\t1', 'cat\t1', 'hat\t1', 'r2d2\t1', 'the\t2']);
});
