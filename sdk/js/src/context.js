// Host services for job code: counters, parameters, logging and the current task.
//
// Inside a component these call the host's mr:job/context imports (guest.js installs that
// backend); under the native Harness (testing.js) they read and write the harness's state. Job
// code is the same in both places.

const unbound = () => {
  throw new Error(
    'mr-sdk context used outside a job call: counters, params, logs and task() work inside ' +
      'map/combine/reduce (under mr-host or the testing Harness), not at module top level ' +
      '(a component evaluates the job module when it is built)',
  );
};

// One state per process, shared by every copy of this module: a job run natively (`mr-sdk run`,
// a test) may import another copy of the SDK than the harness that runs it (a bundle, a second
// install), and its counter() calls must still reach that harness.
const state = (globalThis[Symbol.for('mr-sdk.context')] ??= {
  backend: { counterAdd: unbound, log: unbound, param: unbound, task: unbound },
  // Counter increments buffered during one host call and flushed once per counter per batch, so
  // a counter bumped per record costs no boundary crossing per record.
  pending: new Map(),
});
const pending = state.pending;

/** Installs where context calls go; returns the previous backend. */
export function setBackend(next) {
  const previous = state.backend;
  state.backend = next;
  return previous;
}

/** Adds `delta` (default 1) to the job counter `name`, reported as `job.NAME` by mr-host. */
export function counter(name, delta = 1) {
  if (!Number.isSafeInteger(delta)) throw new TypeError(`counter delta must be an integer, not ${delta}`);
  pending.set(name, (pending.get(name) ?? 0) + delta);
}

/** Sends the buffered counter increments to the backend. */
export function flushCounters() {
  if (pending.size === 0) return;
  const entries = [...pending];
  pending.clear();
  for (const [name, delta] of entries) {
    if (delta !== 0) state.backend.counterAdd(name, delta);
  }
}

/** Forgets buffered increments (a new native run starts from zero). */
export function discardCounters() {
  pending.clear();
}

/** The value of job parameter `name` (--param name=value or its declared default), or undefined. */
export function param(name) {
  return state.backend.param(name) ?? undefined;
}

/** The task the current call belongs to: {job, phase, shard, slice, attempt}. */
export function task() {
  return state.backend.task();
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];

/** Messages for the host's log, tagged with the task: log.info('...') and friends. */
export const log = {
  write(level, message) {
    if (!LEVELS.includes(level)) throw new RangeError(`unknown log level ${level}`);
    state.backend.log(level, String(message));
  },
  trace: (m) => log.write('trace', m),
  debug: (m) => log.write('debug', m),
  info: (m) => log.write('info', m),
  warn: (m) => log.write('warn', m),
  error: (m) => log.write('error', m),
};
