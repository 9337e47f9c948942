// Native tests of the job: plain Node, no wasm (`npm test`).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Harness } from 'mr-sdk/testing';
import * as job from './{{name}}.js';

test('counts words', () => {
  const out = new Harness().runMapReduceCombined(job, ['The cat', 'the hat']);
  assert.deepEqual(out.lines(), ['cat\t1', 'hat\t1', 'the\t2']);
});
