//! The end-to-end tests: one test binary (as wasmtime's own suite is), with a module per area,
//! so the guests they run are built once per test run (`support::guest`) and the binary links
//! once. Every test runs the real `mr-host` (`CARGO_BIN_EXE_mr-host`).
//!
//! - `dev_loop`: projects, `mr-host new/build/run DIR`, the compiled-component cache;
//! - `end_to_end`: jobs over real input, outputs against independent references;
//! - `failures`: what a failing job reports, and where;
//! - `durability`: SIGKILL at random and inside commits, SIGSTOP takeovers, retries;
//! - `sandbox`: what a hostile guest cannot do, and the limits it hits;
//! - `io_formats`: every input format and sink, damaged and hostile inputs;
//! - `languages`: the Python and JavaScript SDKs against the Rust plugins;
//! - `objects`: inputs, runs and outputs in a real S3-compatible server;
//! - `postgres`: jobs on a PostgreSQL store (a throwaway server), run and by several workers;
//! - `hosts`: workers on several simulated hosts (network namespaces) sharing only PostgreSQL
//!   and an S3 server, with hosts killed, cut off and clock-shifted, and the database restarted;
//! - `pipeline_examples`: the pipelines under examples/ (Rust and Python stages) against
//!   references, and a changed parameter rerunning only its stage and what reads it;
//! - `pipelines`: stages chained by their outputs, reuse, resumption after SIGKILL, verified
//!   inputs;
//! - `serve`, `serve_browser`: `mr-host serve`'s API, page (in headless Chromium) and hooks;
//! - `stragglers`: running map tasks split for idle workers, same bytes, SIGKILL;
//! - `regression`: each test pins a bug found by an adversarial run, and names it.

mod support;

mod dev_loop;
mod durability;
mod end_to_end;
mod failures;
mod hosts;
mod io_formats;
mod languages;
mod locations;
mod objects;
mod pipeline_examples;
mod pipelines;
mod postgres;
mod regression;
mod sandbox;
mod serve;
mod serve_browser;
mod stragglers;
