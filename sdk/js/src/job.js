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
    const type = p.type ?? 'string';
    if (!PARAM_TYPES.includes(type)) {
      throw new TypeError(`info.params: parameter ${p.name}: type must be one of ${PARAM_TYPES.join(', ')}, not ${JSON.stringify(type)}`);
    }
    const choices = p.choices ?? [];
    if ((type === 'enum') !== choices.length > 0) {
      throw new TypeError(`info.params: parameter ${p.name}: choices go with type 'enum' (and an enum needs choices)`);
    }
    const param = {
      name: p.name,
      description: p.description ?? '',
      default: p.default === undefined ? undefined : String(p.default),
      required: Boolean(p.required),
      type,
      choices: choices.map(String),
    };
    if (param.default !== undefined) {
      const why = checkParam(param, param.default);
      if (why) throw new TypeError(`info.params: the default of parameter ${p.name} ${why}`);
    }
    return param;
  });
  return { name, version: String(version), description: String(description), params: checked };
}

/** The types a parameter may declare (`type` in `info.params`). */
export const PARAM_TYPES = ['string', 'integer', 'float', 'bool', 'enum'];

// What the host's parsers (Rust's i64 and f64) accept; Number() also takes hex, spaces and ''.
const INTEGER = /^[+-]?[0-9]+$/;
const FLOAT = /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/;

/** Why `value` is not of parameter `p`'s type, in the host's words; `null` when it is. */
export function checkParam(p, value) {
  let ok = true;
  if (p.type === 'integer') {
    ok = INTEGER.test(value) && BigInt(value) >= -(2n ** 63n) && BigInt(value) < 2n ** 63n;
  } else if (p.type === 'float') {
    ok = FLOAT.test(value) && Number.isFinite(Number(value));
  } else if (p.type === 'bool') {
    ok = value === 'true' || value === 'false';
  } else if (p.type === 'enum') {
    ok = p.choices.includes(value);
  }
  if (ok) return null;
  const expected = {
    integer: 'an integer (e.g. 42 or -7)',
    float: 'a number (e.g. 0.25, 3 or 1e-3)',
    bool: 'true or false',
    enum: `one of ${p.choices.join(', ')}`,
  }[p.type];
  return `must be ${expected}, not ${JSON.stringify(value)}`;
}
