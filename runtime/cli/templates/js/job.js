// Counts words (runs of ASCII letters and digits, lowercased).
// Replace the functions below with your own job: `mr-host build .` compiles it, `npm test` runs
// the tests natively (after `npm install`), `npx mr-sdk run {{name}}.js -i FILE` runs the job
// natively over real files.

export const info = {
  name: '{{name}}',
  version: '0.1.0',
  description: 'Counts words (runs of ASCII letters and digits, lowercased).',
};

const WORD = /[A-Za-z0-9]+/g;

export function map(record, emit) {
  for (const [word] of record.value.matchAll(WORD)) emit(word.toLowerCase(), 1);
}

function sum(values) {
  let total = 0;
  for (const v of values) total += Number(v);
  return total;
}

export function combine(key, values, emit) {
  emit(sum(values));
}

export function reduce(key, values, emit) {
  emit(key, sum(values));
}
