// The JavaScript reference page (docs/javascript-api.md) lists every export of the typings.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';

const types = new URL('../types/', import.meta.url);
const page = new URL('../../../docs/javascript-api.md', import.meta.url);

test('docs/javascript-api.md names every typed export', { skip: !existsSync(page) && 'not in the mr repository' }, () => {
  const text = readFileSync(page, 'utf8');
  const missing = [];
  for (const file of readdirSync(types)) {
    const source = readFileSync(new URL(file, types), 'utf8');
    for (const [, name] of source.matchAll(/^export (?:declare )?(?:function|class|const|interface|type) (\w+)/gm)) {
      if (!text.includes(`\`${name}\``)) missing.push(`${file}: ${name}`);
    }
    for (const [, cls, body] of source.matchAll(/^export declare class (\w+)[^{]*\{([\s\S]*?)^\}/gm)) {
      if (cls !== 'Harness') continue;
      for (const [, method] of body.matchAll(/^ {2}(\w+)\(/gm)) {
        if (method !== 'constructor' && !text.includes(`\`Harness#${method}\``)) missing.push(`${file}: Harness#${method}`);
      }
    }
  }
  assert.deepEqual(missing, []);
});
