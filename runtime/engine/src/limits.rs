//! The sizes the host allows a guest's text and counters, in one place (`docs/sandbox.md`
//! lists them), and the typed error for going past a counter cap.
//!
//! A guest chooses the length of everything it hands the host. What the host keeps or prints
//! (an error message that reaches stderr and the job store, a log line) is cut to a documented
//! size with a marker saying how much was left out; what the host must keep whole to stay
//! correct (a counter's name) fails the call when it is too long, rather than being changed.

use std::collections::HashMap;
use std::fmt;

/// The longest job-error message kept (the `job-error` a guest returns, and the error of a
/// lifecycle handler), in bytes; longer ones are cut, with a marker.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 64 << 10;

/// The longest guest log line printed, in bytes; longer ones are cut, with a marker.
pub const MAX_LOG_LINE_BYTES: usize = 8 << 10;

/// How much of what a guest writes to stdout and stderr is kept (the last bytes), to be attached
/// to the error of a failing call: that is where a panic message or a traceback is.
pub const GUEST_OUTPUT_TAIL_BYTES: usize = 16 << 10;

/// How much of a counter's name an error message quotes.
const COUNTER_NAME_QUOTED_BYTES: usize = 64;

/// Cuts `text` to at most `max` bytes (at a character boundary) and appends
/// `… [truncated N bytes]`, N being how many bytes were cut; shorter text is returned as is.
pub fn truncate_with_marker(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let cut = text.floor_char_boundary(max);
    let dropped = text.len() - cut;
    text.truncate(cut);
    text.push_str(&format!("… [truncated {dropped} bytes]"));
    text
}

/// Caps a job sets for itself; planned with the job, so two jobs in one worker process may
/// have different ones. The counter caps apply per instance and call: to the counters one call
/// increments (the exec side also caps the distinct names of a whole job). The memory and time
/// limits can only tighten the runtime's (a pipeline stage's own limits): a job never gets more
/// than the worker that runs it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLimits {
    /// Distinct counter names one call may increment (`--max-counters`).
    pub max_counters: usize,
    /// Longest counter name, in bytes (`--max-counter-name-bytes`).
    pub max_counter_name_bytes: usize,
    /// Guest linear memory per instance, when below the runtime's `memory_limit`.
    pub memory_limit: Option<usize>,
    /// Longest call, when below the runtime's `call_timeout` (which must be set: without it
    /// the engine has no epoch interruption to enforce one).
    pub call_timeout: Option<std::time::Duration>,
}

impl JobLimits {
    /// Default of [`JobLimits::max_counters`].
    pub const DEFAULT_MAX_COUNTERS: usize = 1000;
    /// Default of [`JobLimits::max_counter_name_bytes`].
    pub const DEFAULT_MAX_COUNTER_NAME_BYTES: usize = 256;
}

impl Default for JobLimits {
    fn default() -> Self {
        JobLimits {
            max_counters: Self::DEFAULT_MAX_COUNTERS,
            max_counter_name_bytes: Self::DEFAULT_MAX_COUNTER_NAME_BYTES,
            memory_limit: None,
            call_timeout: None,
        }
    }
}

/// A guest went past a counter cap; the call fails with this (a trap of kind
/// [`crate::TrapKind::CounterLimit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterLimitExceeded {
    /// A counter name longer than [`JobLimits::max_counter_name_bytes`].
    NameTooLong {
        /// The name's first bytes, with a truncation marker.
        name: String,
        /// Its length in bytes.
        len: usize,
        /// The cap.
        cap: usize,
    },
    /// One name more than [`JobLimits::max_counters`] in one call.
    TooManyNames {
        /// The name that went past the cap (cut for quoting).
        name: String,
        /// The cap.
        cap: usize,
    },
}

/// A counter's name as messages quote it: its first 64 bytes, then a truncation marker.
pub(crate) fn quote_counter(name: &str) -> String {
    truncate_with_marker(name.to_owned(), COUNTER_NAME_QUOTED_BYTES)
}

impl CounterLimitExceeded {
    /// Checks one increment of `name` against `limits`, given the counters the call has
    /// incremented so far.
    pub(crate) fn check(
        name: &str,
        limits: &JobLimits,
        pending: &HashMap<String, i64>,
    ) -> Result<(), Self> {
        if name.len() > limits.max_counter_name_bytes {
            return Err(CounterLimitExceeded::NameTooLong {
                name: quote_counter(name),
                len: name.len(),
                cap: limits.max_counter_name_bytes,
            });
        }
        if pending.len() >= limits.max_counters && !pending.contains_key(name) {
            return Err(CounterLimitExceeded::TooManyNames {
                name: quote_counter(name),
                cap: limits.max_counters,
            });
        }
        Ok(())
    }
}

impl fmt::Display for CounterLimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CounterLimitExceeded::NameTooLong { name, len, cap } => write!(
                f,
                "the guest named a counter with {len} bytes, more than the {cap}-byte cap \
                 (--max-counter-name-bytes): `{name}`"
            ),
            CounterLimitExceeded::TooManyNames { name, cap } => write!(
                f,
                "the guest used more than {cap} distinct counter names in one call (the next \
                 was `{name}`); --max-counters raises the cap"
            ),
        }
    }
}

impl std::error::Error for CounterLimitExceeded {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_short_text_and_marks_long_text() {
        assert_eq!(truncate_with_marker("short".into(), 5), "short");
        assert_eq!(
            truncate_with_marker("abcdefgh".into(), 3),
            "abc… [truncated 5 bytes]"
        );
        // Never inside a character: "é" is two bytes.
        assert_eq!(
            truncate_with_marker("aé".into(), 2),
            "a… [truncated 2 bytes]"
        );
    }

    #[test]
    fn counter_caps() {
        let limits = JobLimits {
            max_counters: 2,
            max_counter_name_bytes: 4,
            ..Default::default()
        };
        let mut pending = HashMap::from([("a".to_owned(), 1)]);
        assert!(CounterLimitExceeded::check("abcd", &limits, &pending).is_ok());
        pending.insert("abcd".to_owned(), 1);
        // A name the call already has costs nothing.
        assert!(CounterLimitExceeded::check("abcd", &limits, &pending).is_ok());
        let too_many = CounterLimitExceeded::check("new", &limits, &pending).unwrap_err();
        assert_eq!(
            too_many.to_string(),
            "the guest used more than 2 distinct counter names in one call (the next was \
             `new`); --max-counters raises the cap"
        );
        let long = "x".repeat(100);
        let too_long = CounterLimitExceeded::check(&long, &limits, &HashMap::new()).unwrap_err();
        assert_eq!(
            too_long.to_string(),
            format!(
                "the guest named a counter with 100 bytes, more than the 4-byte cap \
                 (--max-counter-name-bytes): `{}… [truncated 36 bytes]`",
                "x".repeat(64)
            )
        );
    }
}
