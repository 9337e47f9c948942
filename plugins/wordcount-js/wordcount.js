// Counts words (runs of ASCII letters and digits, lowercased).

export const info = {
  name: 'wordcount',
  version: '0.1.0',
  description: 'Counts words (runs of ASCII letters and digits, lowercased).',
};

// The same word as the Rust plugin: a maximal run of ASCII letters and digits. Everything else,
// including non-ASCII letters, separates words.
const WORD = /[A-Za-z0-9]+/g;

export function map(record, emit) {
  for (const [word] of record.value.matchAll(WORD)) {
    emit(word.toLowerCase(), 1);
  }
}

function sum(values) {
  let total = 0;
  for (const v of values) total += Number.parseInt(v, 10);
  return total;
}

export function combine(key, values, emit) {
  emit(sum(values));
}

export function reduce(key, values, emit) {
  emit(key, sum(values));
}
