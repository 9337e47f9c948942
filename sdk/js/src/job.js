// What a job is: its metadata and its map / combine / reduce functions, found in a module's
// named exports or in its default export (a class, instantiated once per worker on its first
// call, or a plain object).

/**
 * Normalises a job module namespace (`import * as job from './job.js'`), a class or an object.
 * Returns {info, hasCombine, hasReduce, world, bound()}.
 */
export function loadJob(job) {
  let impl = job;
  let isClass = false;
  if (job && typeof job === 'object' && job.default !== undefined && typeof job.map !== 'function') {
    impl = job.default;
  }
  if (typeof impl === 'function' && impl.prototype && typeof impl.prototype.map === 'function') {
    isClass = true;
  }
  const proto = isClass ? impl.prototype : impl;
  if (!proto || typeof proto.map !== 'function') {
    throw new TypeError('a job exports map(record, emit) (named exports, a default class or object)');
  }
  const hasReduce = typeof proto.reduce === 'function';
  const hasCombine = typeof proto.combine === 'function';
  if (hasCombine && !hasReduce) {
    throw new TypeError('the job has combine() but no reduce(): a combiner needs a reducer');
  }
  const info = checkInfo(isClass ? impl.info : impl.info);
  let bound = null;
  return {
    info,
    hasCombine,
    hasReduce,
    world: hasReduce ? 'mapreduce-job' : 'mapper-job',
    // A class is instantiated on the first call, not when the module is evaluated: a component
    // evaluates the job when it is built, and the constructor may want the task's parameters.
    bound() {
      if (bound === null) bound = isClass ? new impl() : impl;
      return bound;
    },
  };
}

function checkInfo(info) {
  if (!info || typeof info !== 'object') {
    throw new TypeError("a job exports `info`: { name, version, description?, params? }");
  }
  const { name, version = '0.1.0', description = '', params = [] } = info;
  if (typeof name !== 'string' || !name) throw new TypeError('info.name must be a non-empty string');
  const checked = params.map((p) => {
    if (!p || typeof p.name !== 'string') throw new TypeError(`info.params: each needs a name, got ${JSON.stringify(p)}`);
    return {
      name: p.name,
      description: p.description ?? '',
      default: p.default === undefined ? undefined : String(p.default),
      required: Boolean(p.required),
    };
  });
  return { name, version: String(version), description: String(description), params: checked };
}
