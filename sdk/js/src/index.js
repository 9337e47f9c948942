// mr-sdk for JavaScript: write MapReduce jobs for the mr host as plain functions.
//
// A job module exports `info` and `map(record, emit)` and, for a full MapReduce job,
// `reduce(key, values, emit)` and optionally `combine(key, values, emit)` (or a default-exported
// class with those methods and a static `info`). `mr-host build DIR` bundles it with this SDK
// and compiles it to a WebAssembly component with componentize-js; `mr-sdk/testing` runs the
// same functions natively in Node for unit tests. The WIT bindings and the flat batch encoding
// never appear in job code.

export { counter, log, param, task } from './context.js';
export { Record, Values } from './glue.js';
