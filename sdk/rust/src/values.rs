//! Input of `combine` and `reduce`: the [`Values`] of one group, which may stream from the host
//! in batches, and [`parse_u64`] for numeric values.

use crate::error::{Error, Result};

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
    #[inline]
    pub fn next(&mut self) -> Option<&[u8]> {
        if let Some(value) = self.in_batch.next() {
            // The host validated the framing of the whole batch before handing it over.
            return Some(value.expect("value framing was validated"));
        }
        self.next_streamed()
    }

    /// [`Values::next`] once the batch's values are used up: the host's value stream, or the
    /// group's end. Reached once per group (every value before it is in the batch, except for
    /// a hot key), so it is kept out of line and only the per-value case is inlined into the
    /// job's loop.
    #[cold]
    #[inline(never)]
    fn next_streamed(&mut self) -> Option<&[u8]> {
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
    // takes the standard parser, which also produces the error. Only the fast path is inlined
    // into the caller: with the error's formatting in the same function, the compiler kept the
    // whole function out of line, a call per value (4.8% of a group-by's instructions, see
    // docs/performance.md).
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
    parse_u64_slow(value)
}

/// [`parse_u64`] for everything but short plain digit strings: 20 digits, or an error.
#[cold]
#[inline(never)]
fn parse_u64_slow(value: &[u8]) -> Result<u64> {
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

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_format_and_parse_back() {
        for n in [0, 7, 10, 999, 1_000_000, u64::MAX] {
            let mut buf = b"x".to_vec();
            crate::push_u64(&mut buf, n);
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
