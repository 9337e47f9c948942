//! How a guest call failed ([`GuestError`]), and the classification of wasmtime's errors into
//! [`TrapKind`]s: by `Trap` code and by the typed errors the host's own limits raise, never by
//! the text of a message.

use std::fmt;

use wasmtime::{Trap, WasmBacktrace};

use crate::RuntimeOptions;
use crate::capped::OutputTooLarge;
use crate::limiter::MemoryLimitExceeded;
use crate::limits::CounterLimitExceeded;
use crate::wait::InterruptedWait;

/// How a guest call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestErrorKind {
    /// The guest trapped (panic, stack overflow, memory limit, timeout...). The instance was
    /// discarded.
    Trap(TrapKind),
    /// The guest returned a `job-error` on purpose; the instance stays usable.
    JobError,
    /// The guest returned malformed data or the host failed serving it.
    Protocol,
}

/// Why a guest trapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    /// `unreachable` executed: a Rust panic, an abort, an uncaught exception in a runtime that
    /// aborts.
    Panic,
    /// Memory growth past `--memory-limit`.
    OutOfMemory,
    /// The call ran longer than `--call-timeout` (computing, or waiting in the host).
    Timeout,
    /// The call burned its `--fuel`.
    OutOfFuel,
    /// The wasm stack overflowed (deep or unbounded recursion).
    StackOverflow,
    /// The call's result was larger than `--max-output-bytes`.
    OutputTooLarge,
    /// The call incremented more distinct counters than `--max-counters`, or named one with
    /// more bytes than `--max-counter-name-bytes` (the job's [`crate::JobLimits`]).
    CounterLimit,
    /// Anything else: out-of-bounds access, division by zero, `exit`, a failed host call...
    Other,
}

impl TrapKind {
    /// A few words for messages and counters.
    pub fn name(self) -> &'static str {
        match self {
            TrapKind::Panic => "panic",
            TrapKind::OutOfMemory => "out of memory",
            TrapKind::Timeout => "timeout",
            TrapKind::OutOfFuel => "out of fuel",
            TrapKind::StackOverflow => "stack overflow",
            TrapKind::OutputTooLarge => "output too large",
            TrapKind::CounterLimit => "counter limit",
            TrapKind::Other => "trap",
        }
    }
}

/// A failed guest call: what happened, in the guest's own words where it had any.
#[derive(Debug, Clone)]
pub struct GuestError {
    /// Trap, job error or protocol error.
    pub kind: GuestErrorKind,
    /// The trap description or the job's message (at most
    /// [`crate::limits::MAX_ERROR_MESSAGE_BYTES`] of it, then a truncation marker).
    pub message: String,
    /// For job errors: the index in the batch of the record the job blamed.
    pub record_index: Option<u32>,
    /// The tail of what the guest wrote to stdout/stderr during the failing call.
    pub guest_output: String,
    /// For traps: the wasm backtrace, with function names when the component kept them.
    pub backtrace: Option<String>,
}

impl GuestError {
    /// A protocol error (malformed guest output).
    pub fn protocol(message: impl Into<String>) -> Self {
        GuestError {
            kind: GuestErrorKind::Protocol,
            message: message.into(),
            record_index: None,
            guest_output: String::new(),
            backtrace: None,
        }
    }

    /// A trap: the wasmtime error a call or an instantiation failed with, classified, with
    /// the guest's captured output.
    pub(crate) fn trap(
        e: &wasmtime::Error,
        guest_output: String,
        options: &RuntimeOptions,
    ) -> Self {
        let backtrace = e
            .downcast_ref::<WasmBacktrace>()
            .filter(|bt| !bt.frames().is_empty());
        let (kind, message) = classify(e, options);
        GuestError {
            kind: GuestErrorKind::Trap(kind),
            message,
            record_index: None,
            guest_output,
            backtrace: backtrace.map(|bt| elide_frames(&bt.to_string())),
        }
    }
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            GuestErrorKind::Trap(TrapKind::Other) => {
                write!(f, "the guest trapped: {}", self.message)?
            }
            GuestErrorKind::Trap(kind) => {
                write!(f, "the guest trapped ({}): {}", kind.name(), self.message)?
            }
            GuestErrorKind::JobError => write!(f, "the job reported an error: {}", self.message)?,
            GuestErrorKind::Protocol => write!(f, "{}", self.message)?,
        }
        let output = self.guest_output.trim();
        if !output.is_empty() {
            write!(
                f,
                "\nguest output (last lines):\n{}",
                indent_tail(output, 12)
            )?;
        }
        if let Some(bt) = &self.backtrace {
            write!(f, "\n{}", bt.trim_end())?;
        }
        Ok(())
    }
}

impl std::error::Error for GuestError {}

/// The kind of a failed call and a message for it.
fn classify(e: &wasmtime::Error, options: &RuntimeOptions) -> (TrapKind, String) {
    if let Some(limit) = e.downcast_ref::<MemoryLimitExceeded>() {
        return (TrapKind::OutOfMemory, limit.to_string());
    }
    if let Some(cap) = e.downcast_ref::<OutputTooLarge>() {
        return (TrapKind::OutputTooLarge, cap.to_string());
    }
    if let Some(limit) = e.downcast_ref::<CounterLimitExceeded>() {
        return (TrapKind::CounterLimit, limit.to_string());
    }
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return (
            TrapKind::Other,
            format!(
                "the guest called `exit` with status {} (a job reports failure by returning an \
                 error, not by exiting)",
                exit.0
            ),
        );
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::UnreachableCodeReached) => (
            TrapKind::Panic,
            "wasm `unreachable` executed (a Rust guest panicked or aborted)".to_owned(),
        ),
        Some(Trap::StackOverflow) => (
            TrapKind::StackOverflow,
            format!(
                "the guest overflowed its {} KiB wasm stack (unbounded recursion?)",
                options.max_wasm_stack >> 10
            ),
        ),
        Some(Trap::Interrupt) => {
            let mut message = format!(
                "the call timed out after {:.1} s (--call-timeout)",
                options.call_timeout.unwrap_or_default().as_secs_f64()
            );
            if e.downcast_ref::<InterruptedWait>().is_some() {
                message += " while the guest was waiting in the host (a sleep or a WASI poll)";
            }
            (TrapKind::Timeout, message)
        }
        Some(Trap::OutOfFuel) => (
            TrapKind::OutOfFuel,
            format!(
                "the call ran out of fuel ({} units, --fuel)",
                options.fuel.unwrap_or_default()
            ),
        ),
        // Any other trap code, in its own words (which start with "wasm trap: ").
        Some(trap) => (TrapKind::Other, trap.to_string()),
        // An error of a host function or of the canonical ABI: its own words.
        None => (TrapKind::Other, describe(e)),
    }
}

/// The error's chain of messages, outermost first, without the wasm backtrace wasmtime attaches
/// as context (it is printed apart, once).
fn describe(e: &wasmtime::Error) -> String {
    let backtrace = e.downcast_ref::<WasmBacktrace>().map(|bt| bt.to_string());
    e.chain()
        .map(|cause| cause.to_string())
        .filter(|text| Some(text) != backtrace.as_ref())
        .collect::<Vec<_>>()
        .join(": ")
}

fn indent_tail(text: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(max_lines)..]
        .iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A backtrace of unbounded recursion has tens of thousands of identical frames: keep the
/// innermost ones and the outermost few, and say how many were left out.
fn elide_frames(backtrace: &str) -> String {
    const HEAD: usize = 24;
    const TAIL: usize = 6;
    let lines: Vec<&str> = backtrace
        .lines()
        .filter(|l| !l.contains("WASMTIME_BACKTRACE_DETAILS"))
        .collect();
    if lines.len() <= HEAD + TAIL + 1 {
        return lines.join("\n");
    }
    let mut out = lines[..HEAD].join("\n");
    out += &format!("\n   ... {} frames elided ...\n", lines.len() - HEAD - TAIL);
    out += &lines[lines.len() - TAIL..].join("\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_and_message(e: wasmtime::Error) -> (TrapKind, String) {
        classify(&e, &RuntimeOptions::default())
    }

    #[test]
    fn trap_codes_and_typed_errors_are_classified_without_reading_messages() {
        let (kind, message) = kind_and_message(Trap::Interrupt.into());
        assert_eq!(kind, TrapKind::Timeout);
        assert_eq!(message, "the call timed out after 60.0 s (--call-timeout)");
        let (kind, message) =
            kind_and_message(wasmtime::Error::new(Trap::Interrupt).context(InterruptedWait));
        assert_eq!(kind, TrapKind::Timeout);
        assert_eq!(
            message,
            "the call timed out after 60.0 s (--call-timeout) while the guest was waiting in the \
             host (a sleep or a WASI poll)"
        );
        let limit = MemoryLimitExceeded {
            requested: 3 << 20,
            limit: 2 << 20,
        };
        // Found under any context wasmtime adds.
        let (kind, message) =
            kind_and_message(wasmtime::Error::new(limit).context("while growing"));
        assert_eq!(kind, TrapKind::OutOfMemory);
        assert_eq!(message, limit.to_string());
        let (kind, _) = kind_and_message(OutputTooLarge { len: 10, cap: 5 }.into());
        assert_eq!(kind, TrapKind::OutputTooLarge);
        let too_many = CounterLimitExceeded::TooManyNames {
            name: "c".into(),
            cap: 1,
        };
        let (kind, message) = kind_and_message(too_many.clone().into());
        assert_eq!(kind, TrapKind::CounterLimit);
        assert_eq!(message, too_many.to_string());
        let (kind, message) = kind_and_message(wasmtime_wasi::I32Exit(3).into());
        assert_eq!(kind, TrapKind::Other);
        assert!(
            message.starts_with("the guest called `exit` with status 3"),
            "{message}"
        );
        // A message that merely looks like a limit's is not one.
        let (kind, _) = kind_and_message(wasmtime::Error::msg(
            "forcing trap when growing memory to 1 bytes: fuel allocated for hostcalls has been exhausted",
        ));
        assert_eq!(kind, TrapKind::Other);
    }

    #[test]
    fn a_trap_is_described_once() {
        let (kind, message) = kind_and_message(Trap::MemoryOutOfBounds.into());
        assert_eq!(kind, TrapKind::Other);
        assert_eq!(message, "wasm trap: out of bounds memory access");
        let (_, message) = kind_and_message(wasmtime::Error::msg("root").context("outer"));
        assert_eq!(message, "outer: root");
    }

    #[test]
    fn long_backtraces_are_elided() {
        let frames: String = (0..100).map(|i| format!("  {i}: frame\n")).collect();
        let out = elide_frames(&frames);
        assert_eq!(out.lines().count(), 24 + 1 + 6);
        assert!(out.contains("... 70 frames elided ..."));
    }
}
