// Type declarations of `mr-sdk/testing` (src/testing.js): the native harness.
import type { Job } from './index.js';

/** Input bytes per map call in `runFiles`, as `mr-host run`'s default `--batch-size`. */
export declare const FILE_BATCH_BYTES: number;

/**
 * The job failed (or the harness refused a parameter): its message (with the stack) and, for
 * map, the failing record's index among all records of the run and its key as mr-host names it
 * (`input:N` for inline lines, `path:line` for files).
 */
export declare class JobFailed extends Error {
  constructor(message: string, recordIndex?: number, record?: string);
  readonly recordIndex: number | undefined;
  readonly record: string | undefined;
}

/** What a native run produced. */
export declare class Output {
  /** Output pairs in output order. */
  records: [Uint8Array, Uint8Array][];
  /** Job counters the job incremented. */
  counters: { [name: string]: number };
  /** Log messages as [level, message]. */
  logs: [string, string][];
  /** Value-stream batches the reducer pulled. */
  streamPulls: number;
  /** The records as mr-host writes them: `key<TAB>value`, or just `value` for an empty key. */
  lines(): string[];
}

/** Runs jobs natively; `params` are checked and defaulted as mr-host does. */
export declare class Harness {
  constructor(options?: { params?: { [name: string]: string } });
  /** Only the map phase over text lines (keys `input:1`, `input:2`, ...), as one batch. */
  runMap(job: Job, lines: Iterable<string>): Output;
  /** Map, then reduce over the groups (no combiner). */
  runMapReduce(job: Job, lines: Iterable<string>): Output;
  /** Map with the in-batch combine (every line its own batch), the combiner again, reduce. */
  runMapReduceCombined(job: Job, lines: Iterable<string>): Output;
  /** Only reduce, over the given groups, sorted by key as the host does. */
  runReduce(job: Job, groups: { [key: string]: (string | number)[] }): Output;
  /**
   * Text files or directories read as `mr-host run --input` reads them (records keyed
   * `path:line`), run through the job's phases as its component would; the output is what
   * `mr-host run --reducers 1` writes.
   */
  runFiles(job: Job, paths: string[]): Output;
}

/** The lines of text files as [key, value] records keyed `path:line`. */
export declare function readLineRecords(paths: string[]): [Uint8Array, Uint8Array][];
