// Type declarations of `mr-sdk` (src/index.js): what a job module imports and exports.
// Checked by `npm run typecheck` (tsc --noEmit) against test/types.ts.

/** A key or value a job emits: a string (written as UTF-8), bytes, or a number (in decimal). */
export type Emittable = string | Uint8Array | number | bigint;

/** Emits one key-value pair (in `map` and `reduce`). */
export type Emit = (key: Emittable, value: Emittable) => void;

/** Emits one combined value for the current key (in `combine`). */
export type EmitValue = (value: Emittable) => void;

/**
 * One input record. `key` is where it came from (`path:line` for text input) and `value` the
 * record itself (a line without its terminator), both decoded from UTF-8; `keyBytes` and
 * `valueBytes` are the raw bytes (views into the batch: copy them to keep them past the call).
 */
export declare class Record {
  constructor(keyBytes: Uint8Array, valueBytes: Uint8Array);
  readonly keyBytes: Uint8Array;
  readonly valueBytes: Uint8Array;
  readonly key: string;
  readonly value: string;
}

/**
 * The values of one group, in input order, as strings: a lazy iterator that pulls them from
 * the batch and then, for a large group, from the host's value stream, so a group never has to
 * fit in memory. `bytes()` iterates the same values as Uint8Arrays (sharing the position).
 */
export declare class Values implements IterableIterator<string> {
  [Symbol.iterator](): Values;
  next(): IteratorResult<string, undefined>;
  bytes(): Generator<Uint8Array, void, undefined>;
}

/** A parameter the job declares; mr-host validates `--param NAME=VALUE` against these. */
export interface ParamInfo {
  name: string;
  /** One line for `mr-host inspect`. */
  description?: string;
  /** Used when the user passes none (converted to a string). */
  default?: string | number;
  /** The job refuses to run without it. */
  required?: boolean;
  /** What its values must look like (default `string`); mr-host refuses a value of the wrong
   * type when the job is submitted. Values still reach the job as strings. */
  type?: 'string' | 'integer' | 'float' | 'bool' | 'enum';
  /** The allowed words of an `enum` parameter. */
  choices?: string[];
}

/** What `mr-host inspect` shows about a job: the module's `info` export. */
export interface JobInfo {
  name: string;
  /** Default `0.1.0`. */
  version?: string;
  description?: string;
  params?: ParamInfo[];
}

/** A map function: called once per input record. */
export type MapFn = (record: Record, emit: Emit) => void;
/** A combiner: associative and commutative in effect; may run any number of times. */
export type CombineFn = (key: string, values: Values, emit: EmitValue) => void;
/** A reducer: called once per key, keys in byte order, values in input order. */
export type ReduceFn = (key: string, values: Values, emit: Emit) => void;

/**
 * A job module's named exports: `info` and `map`, and for a MapReduce job `reduce` and
 * optionally `combine` (`import * as job from './job.js'` has this shape).
 */
export interface JobModule {
  info: JobInfo;
  map: MapFn;
  combine?: CombineFn;
  reduce?: ReduceFn;
}

/** A job class (default-exported): `static info` and the same functions as methods; one
 * instance per worker, created on its first call. */
export interface JobClass {
  new (): { map: MapFn; combine?: CombineFn; reduce?: ReduceFn };
  info: JobInfo;
}

/** What the harness and the build accept as a job. */
export type Job = JobModule | JobClass | { default: JobClass | JobModule };

/** The piece of work the current call belongs to. */
export interface Task {
  job: string;
  /** `map`, `combine` or `reduce`. */
  phase: string;
  /** Shard index (map) or partition index (reduce). */
  shard: number;
  slice: number;
  /** Attempt number, from 1. */
  attempt: number;
}

/** Adds `delta` (default 1, an integer) to the job counter `name`, reported as `job.NAME`. */
export declare function counter(name: string, delta?: number): void;

/** The value of job parameter `name` (`--param name=value` or its declared default). */
export declare function param(name: string): string | undefined;

/** The task the current call belongs to. */
export declare function task(): Task;

/** A log level of `log.write`. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** Messages for the host's log, tagged with the task (shown with `MR_LOG=debug`). */
export declare const log: {
  write(level: LogLevel, message: unknown): void;
  trace(message: unknown): void;
  debug(message: unknown): void;
  info(message: unknown): void;
  warn(message: unknown): void;
  error(message: unknown): void;
};
