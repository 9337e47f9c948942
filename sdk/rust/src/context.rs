//! Host services for job code: counters, logging, parameters and the current task.
//!
//! Inside a component these call the host's `context` imports. Natively (under
//! [`crate::testing::Harness`]) they read and write the harness's state, so job code is the same
//! in both places.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Display;

/// The task the current call belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The job's id in the host.
    pub job: String,
    /// `map`, `combine` or `reduce`.
    pub phase: String,
    /// Shard index (map) or partition index (reduce).
    pub shard: u32,
    /// Slice within the shard.
    pub slice: u32,
    /// Attempt number, from 1.
    pub attempt: u32,
}

thread_local! {
    /// Counter increments buffered during one host call; flushed once per counter per batch, so
    /// a counter bumped per record costs no boundary crossing per record. A map, because a job
    /// may name a counter per key: hundreds of thousands of names in one call.
    static PENDING_COUNTERS: RefCell<HashMap<String, i64>> = RefCell::new(HashMap::new());
}

/// Adds `delta` to the job counter `name` (summed over the whole job and reported at the end).
pub fn counter(name: &str, delta: i64) {
    PENDING_COUNTERS.with_borrow_mut(|pending| match pending.get_mut(name) {
        Some(total) => *total += delta,
        None => {
            pending.insert(name.to_owned(), delta);
        }
    });
}

/// Sends buffered counter increments to the host.
pub(crate) fn flush_counters() {
    let pending = PENDING_COUNTERS.with_borrow_mut(std::mem::take);
    for (name, delta) in pending {
        if delta != 0 {
            backend::counter_add(&name, delta);
        }
    }
}

/// Drops buffered counter increments (those made while handling a lifecycle event, which
/// belongs to no committed slice).
pub(crate) fn discard_counters() {
    PENDING_COUNTERS.with_borrow_mut(HashMap::clear);
}

/// The value of job parameter `name` (from `--param name=value` or the declared default).
pub fn param(name: &str) -> Option<String> {
    backend::param(name)
}

/// The task the current call belongs to.
pub fn task() -> Task {
    backend::task()
}

/// Where record `index` of the batch being mapped came from (`context.record-location`);
/// `None` natively, where records carry their location as their key.
pub(crate) fn record_location(index: u32) -> Option<String> {
    backend::record_location(index)
}

/// Log levels of [`log::write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very detailed diagnostics.
    Trace,
    /// Diagnostics for the job's author.
    Debug,
    /// Normal progress information.
    Info,
    /// Something unexpected that the job tolerated.
    Warn,
    /// Something failed.
    Error,
}

/// Writes to the host's log, tagged with the current task.
pub mod log {
    use super::*;

    /// Writes `message` at `level`.
    pub fn write(level: Level, message: impl Display) {
        backend::log(level, &message.to_string());
    }
    /// Logs at debug level.
    pub fn debug(message: impl Display) {
        write(Level::Debug, message)
    }
    /// Logs at info level.
    pub fn info(message: impl Display) {
        write(Level::Info, message)
    }
    /// Logs at warn level.
    pub fn warn(message: impl Display) {
        write(Level::Warn, message)
    }
    /// Logs at error level.
    pub fn error(message: impl Display) {
        write(Level::Error, message)
    }
}

#[cfg(target_arch = "wasm32")]
mod backend {
    use super::{Level, Task};
    use crate::bindings::mapreduce::mr::job::{context, types};

    pub fn counter_add(name: &str, delta: i64) {
        context::counter_add(name, delta);
    }

    pub fn param(name: &str) -> Option<String> {
        context::param(name)
    }

    pub fn record_location(index: u32) -> Option<String> {
        context::record_location(index)
    }

    pub fn task() -> Task {
        let t = context::task();
        Task {
            job: t.job,
            phase: t.phase,
            shard: t.shard,
            slice: t.slice,
            attempt: t.attempt,
        }
    }

    pub fn log(level: Level, message: &str) {
        let level = match level {
            Level::Trace => types::LogLevel::Trace,
            Level::Debug => types::LogLevel::Debug,
            Level::Info => types::LogLevel::Info,
            Level::Warn => types::LogLevel::Warn,
            Level::Error => types::LogLevel::Error,
        };
        context::log(level, message);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod backend {
    pub use crate::testing::native::{counter_add, log, param, task};

    pub fn record_location(_index: u32) -> Option<String> {
        None
    }
}
