//! `mr-sdk`: write MapReduce jobs for the mr host in plain Rust.
//!
//! A job is a type that implements [`Job`] (its name and parameters) and [`Mapper`], and for a
//! full MapReduce job also [`Reducer`] and optionally [`Combiner`]. One macro,
//! [`export_job!`], turns it into a WebAssembly component for the `mapper-job` or
//! `mapreduce-job` world of `wit/job.wit`; the WIT bindings and the flat batch encoding never
//! appear in job code. The same job logic runs natively, without wasm, under
//! [`testing::Harness`], so job authors unit-test with inline data and `cargo test`.
//!
//! ```ignore
//! use mr_sdk::prelude::*;
//!
//! #[derive(Default)]
//! struct Lengths;
//!
//! impl Job for Lengths {
//!     const INFO: JobInfo = JobInfo::new("line-lengths", "0.1.0");
//! }
//!
//! impl Mapper for Lengths {
//!     fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
//!         out.emit(record.value.len().to_string(), "1");
//!         Ok(())
//!     }
//! }
//!
//! mr_sdk::export_job!(Lengths: map);
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

use std::fmt;

// The generated bindings name this crate by its public path, also from inside it.
extern crate self as mr_sdk;

pub mod context;
mod glue;
mod table;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

#[doc(hidden)]
pub mod bindings;

/// Everything a job usually needs, in one import.
pub mod prelude {
    pub use crate::context::{counter, log, param, task};
    pub use crate::{
        Combiner, Emitter, Error, EventKind, Job, JobInfo, Lifecycle, Mapper, Param, Record,
        Reducer, Result, ValueEmitter, Values,
    };
}

/// The result type of job functions.
pub type Result<T = ()> = std::result::Result<T, Error>;

/// An error a job reports on purpose. The host records its message as the job's own words,
/// together with the record's location, and retries or fails the task.
pub struct Error {
    message: String,
}

impl Error {
    /// An error with the given message.
    pub fn new(message: impl fmt::Display) -> Self {
        Error {
            message: message.to_string(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(err: E) -> Self {
        Error::new(err)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Returns early with an [`Error`] built from a format string.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return ::core::result::Result::Err($crate::Error::new(::std::format!($($arg)*)))
    };
}

/// A parameter a job declares; the host validates `--param` against these.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Name as given to `--param NAME=VALUE`.
    pub name: &'static str,
    /// One line for `mr-host inspect`.
    pub description: &'static str,
    /// Value used when none is given.
    pub default: Option<&'static str>,
    /// The job refuses to run without it.
    pub required: bool,
}

impl Param {
    /// An optional parameter without a default.
    pub const fn optional(name: &'static str, description: &'static str) -> Self {
        Param {
            name,
            description,
            default: None,
            required: false,
        }
    }

    /// A parameter with a default value.
    pub const fn with_default(
        name: &'static str,
        description: &'static str,
        default: &'static str,
    ) -> Self {
        Param {
            name,
            description,
            default: Some(default),
            required: false,
        }
    }

    /// A parameter the user must give.
    pub const fn required(name: &'static str, description: &'static str) -> Self {
        Param {
            name,
            description,
            default: None,
            required: true,
        }
    }
}

/// What `mr-host inspect` shows about a job.
#[derive(Debug, Clone, Copy)]
pub struct JobInfo {
    /// Short machine-friendly name.
    pub name: &'static str,
    /// The job's version.
    pub version: &'static str,
    /// One paragraph on what it does.
    pub description: &'static str,
    /// Declared parameters.
    pub params: &'static [Param],
}

impl JobInfo {
    /// Name and version; no description, no parameters.
    pub const fn new(name: &'static str, version: &'static str) -> Self {
        JobInfo {
            name,
            version,
            description: "",
            params: &[],
        }
    }

    /// Sets the description.
    pub const fn description(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }

    /// Sets the declared parameters.
    pub const fn params(mut self, params: &'static [Param]) -> Self {
        self.params = params;
        self
    }
}

/// A job's identity. The job type must also be `Default`: each worker instance creates one value
/// and reuses it for every batch it processes, so state may be cached in `self`.
pub trait Job: Default + 'static {
    /// Name, version, description and parameters.
    const INFO: JobInfo;
}

/// One input record.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Where the record came from, e.g. `logs/a.txt:17` for line 17 of a text file.
    pub key: &'a [u8],
    /// The record itself (a line without its terminator, for text input).
    pub value: &'a [u8],
}

impl<'a> Record<'a> {
    /// The location as text (lossy for non-UTF-8 keys).
    pub fn location(&self) -> std::borrow::Cow<'a, str> {
        String::from_utf8_lossy(self.key)
    }

    /// The value as UTF-8 text, or an error naming the record's location.
    pub fn text(&self) -> Result<&'a str> {
        std::str::from_utf8(self.value)
            .map_err(|e| Error::new(format!("record {} is not UTF-8: {e}", self.location())))
    }
}

/// Collects key-value output of `map` and `reduce`.
///
/// In a job with a combiner, `map`'s emitter feeds the in-map combining table instead (see the
/// crate docs): the pairs still reach the shuffle, already combined per batch.
pub struct Emitter {
    buf: Vec<u8>,
    table: Option<Box<table::CombineTable>>,
}

impl Emitter {
    pub(crate) fn with_buffer(buf: Vec<u8>) -> Self {
        Emitter { buf, table: None }
    }

    pub(crate) fn combining(buf: Vec<u8>, table: Box<table::CombineTable>) -> Self {
        Emitter {
            buf,
            table: Some(table),
        }
    }

    pub(crate) fn table_mut(&mut self) -> &mut table::CombineTable {
        self.table.as_mut().expect("a combining emitter")
    }

    pub(crate) fn into_parts(self) -> (Vec<u8>, Box<table::CombineTable>) {
        (self.buf, self.table.expect("a combining emitter"))
    }

    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// Emits one key-value pair.
    #[inline]
    pub fn emit(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        match &mut self.table {
            Some(table) => table.add(key.as_ref(), value.as_ref()),
            None => mr_codec::put_kv(&mut self.buf, key.as_ref(), value.as_ref()),
        }
    }

    /// Emits a pair whose value is `n` in decimal, without allocating.
    #[inline]
    pub fn emit_u64(&mut self, key: impl AsRef<[u8]>, n: u64) {
        let mut digits = [0u8; 20];
        self.emit(key, format_u64(n, &mut digits));
    }

    /// Emits `(key, n)` with `n` in decimal, declaring that the job's values are counts that its
    /// combiner adds up (word count, histograms): in map-side combining the SDK then keeps one
    /// running sum per key and batch instead of storing each value and calling the combiner on
    /// it, and emits the sum in decimal. Values given with [`Emitter::emit`] for the same key
    /// still go through the combiner, together with that sum. Outside map-side combining (in
    /// `reduce`, or a job without a combiner) this is [`Emitter::emit_u64`].
    #[inline]
    pub fn add(&mut self, key: impl AsRef<[u8]>, n: u64) {
        match &mut self.table {
            Some(table) => table.add_sum(key.as_ref(), n),
            None => self.emit_u64(key, n),
        }
    }
}

/// Appends `n` in decimal to `buf`, without allocating (for values like `count,sum`).
#[inline]
pub fn push_u64(buf: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    buf.extend_from_slice(format_u64(n, &mut digits));
}

/// Writes `n` in decimal into the end of `buf`; returns the digits.
#[inline]
pub(crate) fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// Collects the combined values of one key in `combine`.
pub struct ValueEmitter<'b> {
    buf: &'b mut Vec<u8>,
    count: u32,
}

impl ValueEmitter<'_> {
    /// Emits one combined value for the current key.
    #[inline]
    pub fn emit(&mut self, value: impl AsRef<[u8]>) {
        mr_codec::put_value(self.buf, value.as_ref());
        self.count += 1;
    }

    /// Emits `n` in decimal as a combined value, without allocating.
    #[inline]
    pub fn emit_u64(&mut self, n: u64) {
        let mut digits = [0u8; 20];
        self.emit(format_u64(n, &mut digits));
    }
}

/// Where the values of a group beyond the current batch come from (the host's value stream).
pub(crate) trait ValueSource {
    /// Next framed value batch of at most about `max_bytes`; empty when exhausted.
    fn next_batch(&self, max_bytes: u32) -> Vec<u8>;
}

/// The values of one group, in input order. Values may stream from the host in batches, so a
/// group never has to fit in memory; that is why this is a lending `next()` rather than an
/// `Iterator`: each value borrows from the current batch.
pub struct Values<'a> {
    in_batch: mr_codec::ValueIter<'a>,
    rest: Option<&'a dyn ValueSource>,
    fetched: Vec<u8>,
    fetched_pos: usize,
}

/// How many bytes of values to pull from the host per call.
const STREAM_BATCH_BYTES: u32 = 256 * 1024;

impl<'a> Values<'a> {
    pub(crate) fn new(
        in_batch: mr_codec::ValueIter<'a>,
        rest: Option<&'a dyn ValueSource>,
    ) -> Self {
        Values {
            in_batch,
            rest,
            fetched: Vec::new(),
            fetched_pos: 0,
        }
    }

    /// The next value, or `None` after the last one.
    #[allow(clippy::should_implement_trait)] // lending: the value borrows from `self`
    pub fn next(&mut self) -> Option<&[u8]> {
        if let Some(value) = self.in_batch.next() {
            // The host validated the framing of the whole batch before handing it over.
            return Some(value.expect("value framing was validated"));
        }
        if self.fetched_pos >= self.fetched.len() {
            let source = self.rest?;
            self.fetched = source.next_batch(STREAM_BATCH_BYTES);
            self.fetched_pos = 0;
            if self.fetched.is_empty() {
                self.rest = None;
                return None;
            }
        }
        let mut cursor = mr_codec::Cursor::new(&self.fetched[self.fetched_pos..]);
        let value = cursor
            .bytes("a streamed value")
            .expect("the host sent a malformed value batch");
        self.fetched_pos += cursor.position();
        Some(value)
    }

    /// Calls `f` on every remaining value.
    pub fn for_each(&mut self, mut f: impl FnMut(&[u8])) {
        while let Some(v) = self.next() {
            f(v);
        }
    }

    /// Calls `f` on every remaining value, stopping at the first error.
    pub fn try_for_each(&mut self, mut f: impl FnMut(&[u8]) -> Result) -> Result {
        while let Some(v) = self.next() {
            f(v)?;
        }
        Ok(())
    }

    /// Counts the remaining values.
    pub fn count(&mut self) -> u64 {
        let mut n = 0;
        self.for_each(|_| n += 1);
        n
    }

    /// Parses every remaining value as a decimal `u64` and returns their sum.
    pub fn sum_u64(&mut self) -> Result<u64> {
        let mut total: u64 = 0;
        self.try_for_each(|v| {
            let n = parse_u64(v)?;
            total = total
                .checked_add(n)
                .ok_or_else(|| Error::new("sum of values overflows u64"))?;
            Ok(())
        })?;
        Ok(total)
    }

    /// Collects the remaining values (only for groups known to be small).
    pub fn to_vecs(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        self.for_each(|v| out.push(v.to_vec()));
        out
    }
}

/// Parses a decimal `u64` value, with an error that quotes the bad bytes.
#[inline]
pub fn parse_u64(value: &[u8]) -> Result<u64> {
    // Fast path: up to 19 plain digits cannot overflow. Anything else (a sign, 20 digits, junk)
    // takes the standard parser, which also produces the error.
    if !value.is_empty() && value.len() <= 19 {
        let mut n = 0u64;
        let mut plain = true;
        for &b in value {
            let d = b.wrapping_sub(b'0');
            plain &= d <= 9;
            n = n.wrapping_mul(10).wrapping_add(u64::from(d));
        }
        if plain {
            return Ok(n);
        }
    }
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            Error::new(format!(
                "expected a decimal number, found {:?}",
                String::from_utf8_lossy(value)
            ))
        })
}

/// The map phase: called once per input record.
pub trait Mapper: Job {
    /// Maps one record to zero or more key-value pairs.
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result;
}

/// The optional map-side combiner: pre-aggregates a key's values before the shuffle. It may run
/// any number of times on any subset of a key's values, so its effect must be associative and
/// commutative (sums, counts, maxima, set unions).
pub trait Combiner: Job {
    /// Combines `values` of `key` into (usually fewer) values.
    fn combine(
        &mut self,
        key: &[u8],
        values: &mut Values<'_>,
        out: &mut ValueEmitter<'_>,
    ) -> Result;
}

/// The reduce phase: called once per distinct key, keys in byte order.
pub trait Reducer: Job {
    /// Reduces all values of `key` (in input order) to zero or more output pairs.
    fn reduce(&mut self, key: &[u8], values: &mut Values<'_>, out: &mut Emitter) -> Result;
}

/// What a [`Lifecycle`] job is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// An attempt at a task (map shard, reduce partition, the job's finalize step) started.
    TaskStarted,
    /// A map slice is about to be read.
    SliceStarted,
    /// A slice was committed: it will not run again.
    SliceCommitted,
    /// A task's last slice was committed.
    TaskCompleted,
    /// The job's output is in place and the job is done.
    JobCompleted,
}

/// Lifecycle events, for jobs that want them (export with `events`, e.g.
/// `export_job!(MyJob: map, reduce, events)`). Useful for logging progress in the job's own
/// words. Counter increments made here are ignored (an event belongs to no committed slice);
/// an error returned for `TaskStarted` or `SliceStarted` fails that attempt, one returned after
/// a commit is only logged by the host.
pub trait Lifecycle: Job {
    /// Called on the instance that runs `task`.
    fn on_event(&mut self, kind: EventKind, task: &context::Task) -> Result;
}

/// Exports a job type as a WebAssembly component.
///
/// - `export_job!(MyJob: map)` — a map-only job (`mapper-job` world).
/// - `export_job!(MyJob: map, reduce)` — map and reduce (`mapreduce-job` world).
/// - `export_job!(MyJob: map, combine, reduce)` — with a map-side combiner.
/// - Any of these followed by `, events` also delivers lifecycle events to the job's
///   [`Lifecycle`] implementation.
///
/// Every component the SDK builds exports the `lifecycle` interface (of the `-with-events`
/// worlds); without `events` it does nothing.
#[macro_export]
macro_rules! export_job {
    ($job:ty: map) => {
        $crate::__export_mapper!($job, |_job, _kind, _task| Ok(()));
    };
    ($job:ty: map, events) => {
        $crate::__export_mapper!($job, |job, kind, task| {
            $crate::bindings::mapper_on_event(job, kind, task)
        });
    };
    ($job:ty: map, reduce) => {
        $crate::__export_mapreduce!(
            $job,
            false,
            |job, input| { $crate::bindings::mapreduce_map(job, input) },
            |_job, _groups| { $crate::bindings::mapreduce_no_combiner() },
            |_job, _kind, _task| Ok(())
        );
    };
    ($job:ty: map, reduce, events) => {
        $crate::__export_mapreduce!(
            $job,
            false,
            |job, input| { $crate::bindings::mapreduce_map(job, input) },
            |_job, _groups| { $crate::bindings::mapreduce_no_combiner() },
            |job, kind, task| { $crate::bindings::mapreduce_on_event(job, kind, task) }
        );
    };
    ($job:ty: map, combine, reduce) => {
        // With a combiner, each map batch is pre-combined inside the guest.
        $crate::__export_mapreduce!(
            $job,
            true,
            |job, input| { $crate::bindings::mapreduce_map_combined(job, input) },
            |job, groups| { $crate::bindings::mapreduce_combine(job, groups) },
            |_job, _kind, _task| Ok(())
        );
    };
    ($job:ty: map, combine, reduce, events) => {
        $crate::__export_mapreduce!(
            $job,
            true,
            |job, input| { $crate::bindings::mapreduce_map_combined(job, input) },
            |job, groups| { $crate::bindings::mapreduce_combine(job, groups) },
            |job, kind, task| { $crate::bindings::mapreduce_on_event(job, kind, task) }
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_mapper {
    ($job:ty, $on_event:expr) => {
        // Exports exist only in the component; natively the job is plain Rust for the harness.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct MrJobExport;
            ::std::thread_local! {
                static MR_JOB: ::core::cell::RefCell<$job> =
                    ::core::cell::RefCell::new(<$job as ::core::default::Default>::default());
            }
            use $crate::bindings::mapper as b;
            impl b::exports::mr::job::metadata::Guest for MrJobExport {
                fn describe() -> b::mr::job::types::JobInfo {
                    $crate::bindings::mapper_job_info(&<$job as $crate::Job>::INFO)
                }
            }
            impl b::exports::mr::job::mapper::Guest for MrJobExport {
                fn map(
                    input: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, b::mr::job::types::JobError>
                {
                    MR_JOB.with_borrow_mut(|job| $crate::bindings::mapper_map(job, &input))
                }
            }
            impl b::exports::mr::job::lifecycle::Guest for MrJobExport {
                fn on_event(
                    kind: b::exports::mr::job::lifecycle::EventKind,
                    task: b::mr::job::types::TaskIdentity,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    MR_JOB.with_borrow_mut(|job| ($on_event)(job, kind, task))
                }
            }
    b::export_mapper_job!(MrJobExport with_types_in $crate::bindings::mapper);
        };
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_mapreduce {
    ($job:ty, $has_combiner:expr, $map:expr, $combine:expr, $on_event:expr) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct MrJobExport;
            ::std::thread_local! {
                static MR_JOB: ::core::cell::RefCell<$job> =
                    ::core::cell::RefCell::new(<$job as ::core::default::Default>::default());
            }
            use $crate::bindings::mapreduce as b;
            type JobError = b::mr::job::types::JobError;
            impl b::exports::mr::job::metadata::Guest for MrJobExport {
                fn describe() -> b::mr::job::types::JobInfo {
                    $crate::bindings::mapreduce_job_info(
                        &<$job as $crate::Job>::INFO,
                        $has_combiner,
                    )
                }
            }
            impl b::exports::mr::job::mapper::Guest for MrJobExport {
                fn map(
                    input: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, JobError> {
                    MR_JOB.with_borrow_mut(|job| ($map)(job, &input))
                }
            }
            impl b::exports::mr::job::combiner::Guest for MrJobExport {
                fn combine(
                    groups: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, JobError> {
                    MR_JOB.with_borrow_mut(|job| ($combine)(job, &groups))
                }
            }
            impl b::exports::mr::job::reducer::Guest for MrJobExport {
                fn reduce(
                    groups: ::std::vec::Vec<u8>,
                    rest: &b::exports::mr::job::reducer::ValueStream,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, JobError> {
                    MR_JOB.with_borrow_mut(|job| {
                        $crate::bindings::mapreduce_reduce(job, &groups, rest)
                    })
                }
            }
            impl b::exports::mr::job::lifecycle::Guest for MrJobExport {
                fn on_event(
                    kind: b::exports::mr::job::lifecycle::EventKind,
                    task: b::mr::job::types::TaskIdentity,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    MR_JOB.with_borrow_mut(|job| ($on_event)(job, kind, task))
                }
            }
    b::export_mapreduce_job!(MrJobExport with_types_in $crate::bindings::mapreduce);
        };
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_format_and_parse_back() {
        for n in [0, 7, 10, 999, 1_000_000, u64::MAX] {
            let mut buf = b"x".to_vec();
            super::push_u64(&mut buf, n);
            assert_eq!(&buf[1..], n.to_string().as_bytes());
            assert_eq!(super::parse_u64(&buf[1..]).unwrap(), n);
        }
        // 20 digits take the standard parser: u64::MAX parses, one more is refused.
        assert!(super::parse_u64(b"18446744073709551616").is_err());
        for bad in [&b""[..], b"12x", b"-1", b" 1"] {
            let err = super::parse_u64(bad).unwrap_err();
            assert!(
                err.message().contains("expected a decimal number"),
                "{bad:?}"
            );
        }
    }
}
