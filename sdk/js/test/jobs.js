// Small jobs the SDK tests run.
import { counter, log, param } from '../src/index.js';

export const info = {
  name: 'sample',
  version: '1.2.3',
  params: [{ name: 'suffix', description: 'appended to every key', default: '!' }, { name: 'fail-on' }],
};

function explode(line) {
  throw new RangeError(`cannot take ${JSON.stringify(line)}`);
}

export function map(record, emit) {
  if (param('fail-on') && record.value.includes(param('fail-on'))) explode(record.value);
  counter('records');
  counter('chars', record.value.length);
  for (const word of record.value.split(' ').filter(Boolean)) emit(word + param('suffix'), 1);
}

function sum(values) {
  let n = 0;
  for (const v of values) n += Number.parseInt(v, 10);
  if (Number.isNaN(n)) throw new Error('not a number');
  return n;
}

export function combine(key, values, emit) {
  emit(sum(values));
}

export function reduce(key, values, emit) {
  log.info(`reducing ${key}`);
  emit(key, sum(values));
}
