//! `mr-sdk`: write MapReduce jobs for the mr host in plain Rust.
//!
//! A job is a type that implements [`Job`] (its name and parameters) and [`Mapper`], and for a
//! full MapReduce job also [`Reducer`] and optionally [`Combiner`]. One macro,
//! [`export_job!`], turns it into a WebAssembly component for the `mapper-job` or
//! `mapreduce-job` world of `wit/job.wit`; the WIT bindings and the flat batch encoding never
//! appear in job code. The same job logic runs natively, without wasm, under
//! [`testing::Harness`], so job authors unit-test with inline data and `cargo test`.
//!
//! ```
//! use mr_sdk::prelude::*;
//!
//! /// Counts lines by length; refuses lines that are not UTF-8.
//! #[derive(Default)]
//! struct Lengths;
//!
//! impl Job for Lengths {
//!     const INFO: JobInfo = JobInfo::new("line-lengths", "0.1.0");
//! }
//!
//! impl Mapper for Lengths {
//!     fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
//!         let text = record.text()?;
//!         ensure!(!text.contains('\t'), "a tab at {}", record.location());
//!         out.add(text.chars().count().to_string(), 1);
//!         Ok(())
//!     }
//! }
//!
//! impl Combiner for Lengths {
//!     fn combine(&mut self, _key: &[u8], values: &mut Values<'_>, out: &mut ValueEmitter<'_>) -> Result {
//!         out.emit_u64(values.sum_u64()?);
//!         Ok(())
//!     }
//! }
//!
//! impl Reducer for Lengths {
//!     fn reduce(&mut self, key: &[u8], values: &mut Values<'_>, out: &mut Emitter) -> Result {
//!         out.emit_u64(key, values.sum_u64()?);
//!         Ok(())
//!     }
//! }
//!
//! mr_sdk::export_job!(Lengths: map, combine, reduce);
//!
//! // The same code, natively: what a unit test of the job looks like.
//! let out = mr_sdk::testing::Harness::new()
//!     .run_mapreduce_combined::<Lengths>(&["ab", "cd", "é"])
//!     .unwrap();
//! assert_eq!(out.lines(), ["1\t1", "2\t2"]);
//! let err = mr_sdk::testing::Harness::new()
//!     .run_map::<Lengths>(&["ok", "a\tb"])
//!     .unwrap_err();
//! assert_eq!((err.message.as_str(), err.record_index), ("a tab at input:2", Some(1)));
//! ```
//!
//! Build it with `mr-host build DIR` (or `cargo build --release --target wasm32-wasip2`).
//!
//! **In-map combining.** In a job exported with `combine`, [`Emitter::emit`] inside `map` adds
//! the pair to a per-batch hash table instead of the output; a key's values are combined when 32
//! are pending and once more at the end of the batch, so the host receives about one value per
//! key per batch. Keep combiners associative and commutative (the contract of [`Combiner`]).
//! For counts, emit with [`Emitter::add`] (a running sum per key and batch, no value stored),
//! and combine and reduce with [`Values::sum_u64`] and [`ValueEmitter::emit_u64`] /
//! [`Emitter::emit_u64`]; [`parse_u64`] and [`push_u64`] parse and format numbers without
//! allocating.

/// The README's Rust example, compiled and run as a doctest so that it cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeExample;

// The generated bindings name this crate by its public path, also from inside it.
extern crate self as mr_sdk;

pub mod context;
mod emit;
mod error;
mod export;
mod glue;
mod job;
mod table;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod values;

#[doc(hidden)]
pub mod bindings;

pub(crate) use emit::format_u64;
pub use emit::{Emitter, ValueEmitter, push_u64};
pub use error::{Error, Result};
pub use job::{
    Combiner, EventKind, Job, JobInfo, Lifecycle, Mapper, Param, ParamKind, Record, Reducer,
};
pub(crate) use values::ValueSource;
pub use values::{Values, parse_u64};

/// Everything a job usually needs, in one import: the traits, the types of their signatures,
/// the host services of [`context`], and the error macros [`bail!`] and [`ensure!`].
pub mod prelude {
    pub use crate::context::{counter, log, param, task};
    pub use crate::{
        Combiner, Emitter, Error, EventKind, Job, JobInfo, Lifecycle, Mapper, Param, ParamKind,
        Record, Reducer, Result, ValueEmitter, Values, bail, ensure,
    };
}
