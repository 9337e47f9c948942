// Compile-time checks of the typings (types/*.d.ts), run by `npm run typecheck` (tsc --noEmit):
// a job written against them type-checks, and misuse does not (each @ts-expect-error must
// find an error, or tsc fails).
import { type Emit, type EmitValue, type JobInfo, type Record, type Values, counter, log, param, task } from 'mr-sdk';
import { Harness, JobFailed } from 'mr-sdk/testing';
import { buildProject } from 'mr-sdk/build';

export const info: JobInfo = {
  name: 'wordcount',
  version: '0.1.0',
  params: [{ name: 'min', description: 'smallest count written', default: '1' }],
};

export function map(record: Record, emit: Emit): void {
  counter('records');
  for (const word of record.value.split(' ')) emit(word.toLowerCase(), 1);
  emit(record.keyBytes, record.valueBytes);
}

export function combine(_key: string, values: Values, emit: EmitValue): void {
  let total = 0;
  for (const v of values) total += Number(v);
  emit(total);
}

export function reduce(key: string, values: Values, emit: Emit): void {
  const min = Number(param('min') ?? '1');
  let total = 0;
  for (const bytes of values.bytes()) total += bytes.length;
  if (total >= min) emit(key, total);
  log.info(`reduced ${key} in ${task().phase} of shard ${task().shard}`);
}

const job = { info, map, combine, reduce };
const out = new Harness({ params: { min: '2' } }).runMapReduceCombined(job, ['a b', 'b']);
const lines: string[] = out.lines();
const count: number = out.counters['records'];
void [lines, count, new Harness().runFiles(job, ['data.txt']).records];
try {
  new Harness().runMap(job, ['x']);
} catch (e) {
  if (e instanceof JobFailed) void [e.recordIndex, e.record];
}
const built: Promise<string> = buildProject('.', 'out.wasm');
void built;

// @ts-expect-error: an info needs a name
const noName: JobInfo = { version: '1' };
export function badMap(_record: Record, emit: Emit): void {
  // @ts-expect-error: emit takes strings, bytes or numbers
  emit('k', { x: 1 });
}
// @ts-expect-error: counter deltas are numbers
counter('x', '1');
// @ts-expect-error: params are strings
new Harness({ params: { min: 1 } });
// @ts-expect-error: log levels are fixed
log.write('loud', 'x');
void noName;
