// Inverted index: word -> sorted, de-duplicated file:line locations, as
// `word<TAB>file:line,file:line,...`. Words are defined as in word count; locations sort by file
// name (bytes), then numerically by line. Locations are handled as bytes, like the Rust plugin,
// so file names sort in byte order whatever characters they hold.

export const info = {
  name: 'inverted-index',
  version: '0.1.0',
  description: 'Lists, for every word, the file:line locations where it occurs.',
};

const WORD = /[A-Za-z0-9]+/g;
const COLON = 0x3a;
const COMMA = 0x2c;

export function map(record, emit) {
  const seen = new Set();
  for (const [w] of record.value.matchAll(WORD)) {
    const word = w.toLowerCase();
    if (!seen.has(word)) {
      seen.add(word);
      emit(word, record.keyBytes);
    }
  }
}

function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** [file, line] split at the last colon; null (sorts first) without one or a number after it. */
function order(location) {
  const colon = location.lastIndexOf(COLON);
  if (colon < 0) return null;
  const digits = location.subarray(colon + 1);
  if (digits.length === 0 || digits.some((b) => b < 0x30 || b > 0x39)) return null;
  return [location.subarray(0, colon), Number(new TextDecoder().decode(digits))];
}

function compareLocations(a, b) {
  if (a.order === null || b.order === null) return (a.order === null ? 0 : 1) - (b.order === null ? 0 : 1);
  return compareBytes(a.order[0], b.order[0]) || a.order[1] - b.order[1];
}

export function reduce(key, values, emit) {
  // A word's locations must be sorted, so this reducer holds one group's values (as the Rust
  // plugin does); the values still arrive lazily from the host's stream. Array.sort is stable.
  const locations = [];
  for (const bytes of values.bytes()) {
    const copy = bytes.slice();
    locations.push({ bytes: copy, order: order(copy) });
  }
  locations.sort(compareLocations);
  const unique = locations.filter((l, i) => i === 0 || compareBytes(l.bytes, locations[i - 1].bytes) !== 0);
  const total = unique.reduce((n, l) => n + l.bytes.length, 0) + Math.max(unique.length - 1, 0);
  const joined = new Uint8Array(total);
  let at = 0;
  unique.forEach((l, i) => {
    if (i > 0) joined[at++] = COMMA;
    joined.set(l.bytes, at);
    at += l.bytes.length;
  });
  emit(key, joined);
}
