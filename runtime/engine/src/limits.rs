//! The sizes the host allows a guest's text, in one place (`docs/sandbox.md` lists them).
//!
//! A guest chooses the length of everything it hands the host. What the host keeps or prints
//! (an error message that reaches stderr and the job store, a log line) is cut to a documented
//! size with a marker saying how much was left out; what the host must keep whole to stay
//! correct (a counter's name) fails the call when it is too long, rather than being changed.

/// The longest job-error message kept (the `job-error` a guest returns, and the error of a
/// lifecycle handler), in bytes; longer ones are cut, with a marker.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 64 << 10;

/// The longest guest log line printed, in bytes; longer ones are cut, with a marker.
pub const MAX_LOG_LINE_BYTES: usize = 8 << 10;

/// How much of what a guest writes to stdout and stderr is kept (the last bytes), to be attached
/// to the error of a failing call: that is where a panic message or a traceback is.
pub const GUEST_OUTPUT_TAIL_BYTES: usize = 16 << 10;

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
}
