//! The flat batch framing shared by the mr host and every Rust guest (see `wit/job.wit`).
//!
//! Records cross the wasm boundary as one `list<u8>` per call instead of a `list<record>`, which
//! would cost an allocation per element on both sides. This crate is the single implementation of
//! that framing: writers append to a caller-owned `Vec<u8>` (no allocation per record once the
//! buffer has grown), readers borrow slices out of the buffer (no copies), and every malformed
//! buffer is reported with the byte offset where decoding failed.
//!
//! Three shapes exist:
//! - kv batch: `u32 key-len, key, u32 value-len, value`, repeated;
//! - group batch: `u32 key-len, key, u32 value-count, u8 flags, (u32 len, value) * count`, repeated;
//! - value batch: `u32 len, value`, repeated (combiner output prefixes each group's values with a
//!   `u32` count, see [`put_count`]).
//!
//! All integers are little-endian.

use std::fmt;

mod locations;
pub use locations::{LineBase, Locations};

/// Group flag: more values of this group follow in the reducer's value stream.
pub const GROUP_MORE: u8 = 1;

/// Bytes of framing around one kv entry.
pub const KV_OVERHEAD: usize = 8;

/// A malformed buffer: what was expected and at which byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError {
    /// Byte offset in the buffer where decoding failed.
    pub offset: usize,
    /// What the decoder expected to find there.
    pub expected: &'static str,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed batch at byte {}: expected {}",
            self.offset, self.expected
        )
    }
}

impl std::error::Error for CodecError {}

/// Converts a length to the `u32` of the framing. Panics above 4 GiB, which the host's record
/// and output caps rule out long before.
#[inline]
fn len32(n: usize) -> [u8; 4] {
    u32::try_from(n)
        .expect("a single key or value is larger than 4 GiB")
        .to_le_bytes()
}

/// Appends one kv entry.
#[inline]
pub fn put_kv(buf: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    buf.reserve(KV_OVERHEAD + key.len() + value.len());
    buf.extend_from_slice(&len32(key.len()));
    buf.extend_from_slice(key);
    buf.extend_from_slice(&len32(value.len()));
    buf.extend_from_slice(value);
}

/// Appends one length-prefixed value (value batches and the values inside group batches).
#[inline]
pub fn put_value(buf: &mut Vec<u8>, value: &[u8]) {
    buf.reserve(4 + value.len());
    buf.extend_from_slice(&len32(value.len()));
    buf.extend_from_slice(value);
}

/// Appends a bare `u32` count (combiner output: the number of values that follow for a group).
#[inline]
pub fn put_count(buf: &mut Vec<u8>, count: u32) {
    buf.extend_from_slice(&count.to_le_bytes());
}

/// Appends a group header and returns its position, so the count and flags can be patched with
/// [`finish_group`] once the values are appended.
#[inline]
pub fn begin_group(buf: &mut Vec<u8>, key: &[u8]) -> usize {
    buf.extend_from_slice(&len32(key.len()));
    buf.extend_from_slice(key);
    let at = buf.len();
    buf.extend_from_slice(&[0; 5]);
    at
}

/// Writes the value count and flags of a group started with [`begin_group`].
#[inline]
pub fn finish_group(buf: &mut [u8], at: usize, count: u32, flags: u8) {
    buf[at..at + 4].copy_from_slice(&count.to_le_bytes());
    buf[at + 4] = flags;
}

/// A cursor over a flat buffer; every read names what it expected when the buffer ends early.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// Current byte offset.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Reads a little-endian `u32`.
    #[inline]
    pub fn u32(&mut self, expected: &'static str) -> Result<u32, CodecError> {
        let end = self.pos + 4;
        match self.buf.get(self.pos..end) {
            Some(b) => {
                self.pos = end;
                Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            None => Err(self.error(expected)),
        }
    }

    /// Reads one byte.
    #[inline]
    pub fn u8(&mut self, expected: &'static str) -> Result<u8, CodecError> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.error(expected)),
        }
    }

    /// Reads `u32 len` then that many bytes.
    #[inline]
    pub fn bytes(&mut self, expected: &'static str) -> Result<&'a [u8], CodecError> {
        let start = self.pos;
        let len = self.u32(expected)? as usize;
        let end = self.pos.checked_add(len).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let out = &self.buf[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => {
                self.pos = start;
                Err(self.error(expected))
            }
        }
    }

    fn error(&self, expected: &'static str) -> CodecError {
        CodecError {
            offset: self.pos,
            expected,
        }
    }
}

/// Iterates the entries of a kv batch.
pub struct KvIter<'a> {
    cursor: Cursor<'a>,
    failed: bool,
}

/// Reads a kv batch.
pub fn kvs(buf: &[u8]) -> KvIter<'_> {
    KvIter {
        cursor: Cursor::new(buf),
        failed: false,
    }
}

impl<'a> Iterator for KvIter<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), CodecError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.cursor.is_empty() {
            return None;
        }
        let entry = self
            .cursor
            .bytes("a key")
            .and_then(|k| self.cursor.bytes("a value").map(|v| (k, v)));
        self.failed = entry.is_err();
        Some(entry)
    }
}

/// Iterates the values of a value batch.
#[derive(Debug)]
pub struct ValueIter<'a> {
    cursor: Cursor<'a>,
    remaining: Option<u32>,
    failed: bool,
}

/// Reads a value batch to its end.
pub fn values(buf: &[u8]) -> ValueIter<'_> {
    ValueIter {
        cursor: Cursor::new(buf),
        remaining: None,
        failed: false,
    }
}

impl<'a> Iterator for ValueIter<'a> {
    type Item = Result<&'a [u8], CodecError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match &mut self.remaining {
            Some(0) => return None,
            Some(n) => *n -= 1,
            None if self.cursor.is_empty() => return None,
            None => {}
        }
        let value = self.cursor.bytes("a value");
        self.failed = value.is_err();
        Some(value)
    }
}

/// One group of a group batch.
#[derive(Debug)]
pub struct Group<'a> {
    /// The group's key.
    pub key: &'a [u8],
    /// How many values are in this batch.
    pub count: u32,
    /// More values follow in the value stream (only ever on the last group).
    pub more: bool,
    /// The framed values (`count` entries).
    pub values: &'a [u8],
}

impl<'a> Group<'a> {
    /// The values of this group that are inside the batch.
    pub fn values(&self) -> ValueIter<'a> {
        ValueIter {
            cursor: Cursor::new(self.values),
            remaining: Some(self.count),
            failed: false,
        }
    }
}

/// Iterates the groups of a group batch, validating each group's framing as it goes.
pub struct GroupIter<'a> {
    cursor: Cursor<'a>,
    failed: bool,
}

/// Reads a group batch.
pub fn groups(buf: &[u8]) -> GroupIter<'_> {
    GroupIter {
        cursor: Cursor::new(buf),
        failed: false,
    }
}

impl<'a> GroupIter<'a> {
    fn read_group(&mut self) -> Result<Group<'a>, CodecError> {
        let key = self.cursor.bytes("a group key")?;
        let count = self.cursor.u32("a group value count")?;
        let flags = self.cursor.u8("group flags")?;
        let start = self.cursor.position();
        for _ in 0..count {
            self.cursor.bytes("a group value")?;
        }
        let end = self.cursor.position();
        let more = flags & GROUP_MORE != 0;
        if more && !self.cursor.is_empty() {
            return Err(CodecError {
                offset: end,
                expected: "the end of the batch after a group flagged `more`",
            });
        }
        Ok(Group {
            key,
            count,
            more,
            values: &self.cursor.buf[start..end],
        })
    }
}

impl<'a> Iterator for GroupIter<'a> {
    type Item = Result<Group<'a>, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.cursor.is_empty() {
            return None;
        }
        let group = self.read_group();
        self.failed = group.is_err();
        Some(group)
    }
}

/// Reads combiner output: for each group, `u32 count` then `count` values. Yields one
/// [`ValueIter`] per group in order.
pub struct CountedValues<'a> {
    cursor: Cursor<'a>,
    failed: bool,
}

/// Reads combiner output (see [`CountedValues`]).
pub fn counted_values(buf: &[u8]) -> CountedValues<'_> {
    CountedValues {
        cursor: Cursor::new(buf),
        failed: false,
    }
}

impl<'a> Iterator for CountedValues<'a> {
    type Item = Result<ValueIter<'a>, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.cursor.is_empty() {
            return None;
        }
        let group = (|| {
            let count = self.cursor.u32("a combined value count")?;
            let start = self.cursor.clone();
            for _ in 0..count {
                self.cursor.bytes("a combined value")?;
            }
            Ok(ValueIter {
                cursor: start,
                remaining: Some(count),
                failed: false,
            })
        })();
        self.failed = group.is_err();
        Some(group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_round_trip() {
        let mut buf = Vec::new();
        put_kv(&mut buf, b"alpha", b"1");
        put_kv(&mut buf, b"", b"");
        put_kv(&mut buf, b"k", &[0xff; 300]);
        let got: Vec<_> = kvs(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            got,
            vec![
                (&b"alpha"[..], &b"1"[..]),
                (&b""[..], &b""[..]),
                (&b"k"[..], &[0xff; 300][..])
            ]
        );
    }

    #[test]
    fn truncated_kv_names_offset() {
        let mut buf = Vec::new();
        put_kv(&mut buf, b"alpha", b"value");
        put_kv(&mut buf, b"beta", b"value");
        buf.truncate(buf.len() - 2);
        let results: Vec<_> = kvs(&buf).collect();
        assert_eq!(results.len(), 2);
        assert!(results[0].is_ok());
        let err = results[1].clone().unwrap_err();
        assert_eq!(err.offset, 18 + 8);
        assert_eq!(err.expected, "a value");
        assert!(err.to_string().contains("byte 26"));
    }

    #[test]
    fn groups_round_trip_with_more_flag() {
        let mut buf = Vec::new();
        let at = begin_group(&mut buf, b"a");
        put_value(&mut buf, b"1");
        put_value(&mut buf, b"22");
        finish_group(&mut buf, at, 2, 0);
        let at = begin_group(&mut buf, b"b");
        put_value(&mut buf, b"333");
        finish_group(&mut buf, at, 1, GROUP_MORE);
        let groups: Vec<_> = groups(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].key, b"a");
        assert!(!groups[0].more);
        let vals: Vec<_> = groups[0].values().collect::<Result<_, _>>().unwrap();
        assert_eq!(vals, vec![&b"1"[..], &b"22"[..]]);
        assert!(groups[1].more);
        let vals: Vec<_> = groups[1].values().collect::<Result<_, _>>().unwrap();
        assert_eq!(vals, vec![&b"333"[..]]);
    }

    #[test]
    fn more_flag_must_be_last() {
        let mut buf = Vec::new();
        let at = begin_group(&mut buf, b"a");
        finish_group(&mut buf, at, 0, GROUP_MORE);
        let at = begin_group(&mut buf, b"b");
        finish_group(&mut buf, at, 0, 0);
        let first = groups(&buf).next().unwrap();
        assert!(first.unwrap_err().expected.contains("more"));
    }

    #[test]
    fn group_count_larger_than_buffer_is_an_error() {
        let mut buf = Vec::new();
        let at = begin_group(&mut buf, b"a");
        put_value(&mut buf, b"x");
        finish_group(&mut buf, at, 5, 0);
        assert!(groups(&buf).next().unwrap().is_err());
    }

    #[test]
    fn counted_values_round_trip() {
        let mut buf = Vec::new();
        put_count(&mut buf, 2);
        put_value(&mut buf, b"x");
        put_value(&mut buf, b"y");
        put_count(&mut buf, 0);
        put_count(&mut buf, 1);
        put_value(&mut buf, b"z");
        let all: Vec<Vec<&[u8]>> = counted_values(&buf)
            .map(|g| g.unwrap().collect::<Result<_, _>>().unwrap())
            .collect();
        assert_eq!(all, vec![vec![&b"x"[..], b"y"], vec![], vec![b"z"]]);
    }

    #[test]
    fn value_batch_reads_to_end() {
        let mut buf = Vec::new();
        put_value(&mut buf, b"one");
        put_value(&mut buf, b"");
        let all: Vec<_> = values(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(all, vec![&b"one"[..], &b""[..]]);
        let mut bad = buf.clone();
        bad.push(7);
        assert!(values(&bad).any(|v| v.is_err()));
    }
}
