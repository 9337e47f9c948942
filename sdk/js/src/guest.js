// The component's exports, for componentize-js. Bundled only into a component: the
// mr:job/context import exists only there. build.js generates an entry module that calls
// exportsFor() with the job module and re-exports what componentize-js looks for (metadata,
// paramTypes, mapper and, in the mapreduce-job world, combiner and reducer).

import { counterAdd, log, param, task } from 'mr:job/context@0.1.1';
import { flushCounters, setBackend } from './context.js';
import { Failure, combineBatch, mapAndCombine, mapBatch, reduceBatch } from './glue.js';
import { formatError } from './stack.js';
import { loadJob } from './job.js';

const hostBackend = {
  // WIT s64 is a BigInt in JavaScript.
  counterAdd: (name, delta) => counterAdd(name, BigInt(delta)),
  log: (level, message) => log(level, message),
  param: (name) => param(name),
  task: () => task(),
};

/** Runs a batch loop; a failure becomes the WIT job-error. The job's counter increments of this
 * batch go out with this call, whether it succeeded or not. */
function call(fn, ...args) {
  try {
    return fn(...args);
  } catch (e) {
    if (e instanceof Failure) throw { message: e.message, recordIndex: e.recordIndex };
    // An SDK bug: still report it in words, not as a trap.
    throw { message: `mr-sdk internal error: ${formatError(e)}`, recordIndex: undefined };
  } finally {
    flushCounters();
  }
}

/** The export objects for `world`, serving the job module `jobModule`. */
export function exportsFor(jobModule, world) {
  setBackend(hostBackend);
  const job = loadJob(jobModule);
  if (job.world !== world) throw new TypeError(`the job belongs in world ${job.world}, not ${world}`);
  const info = {
    name: job.info.name,
    version: job.info.version,
    description: job.info.description,
    phases: { map: true, combine: job.hasCombine, reduce: job.hasReduce },
    params: job.info.params.map((p) => ({
      name: p.name,
      description: p.description,
      defaultValue: p.default,
      required: p.required,
    })),
  };
  const metadata = { describe: () => info };
  // The param-types export (contract 0.1.1): every parameter that is not a string.
  const typed = job.info.params
    .filter((p) => p.type !== 'string')
    .map((p) => ({ name: p.name, type: p.type === 'enum' ? { tag: 'enum', val: p.choices } : { tag: p.type } }));
  const paramTypes = { paramTypes: () => typed };
  if (world === 'mapper-job') {
    return { metadata, paramTypes, mapper: { map: (input) => call(mapBatch, job, input) } };
  }
  const mapFn = job.hasCombine ? mapAndCombine : mapBatch;
  return {
    metadata,
    paramTypes,
    mapper: { map: (input) => call(mapFn, job, input) },
    combiner: {
      combine(groups) {
        if (!job.hasCombine) {
          throw { message: 'this job declares no combiner; the host must not call combine', recordIndex: undefined };
        }
        return call(combineBatch, job, groups);
      },
    },
    reducer: { reduce: (groups, rest) => call(reduceBatch, job, groups, rest) },
  };
}
