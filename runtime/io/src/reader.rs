//! The bottom layer every format builds on: the [`RangeReader`] trait, what one of its steps
//! yields ([`Step`], [`BadRecord`]), how a shard is read ([`ReadOptions`]), and the adapters the
//! formats share: [`Counted`] (bytes a consumer took from a `BufRead`), [`Inflate`] (offsets,
//! the ratio cap and the planned length around a decompressor), [`read_line`] / [`skip_line`]
//! (capped line reading) and [`JsonObject`] (ordered JSON objects for CSV rows and SQLite rows).

use std::io::{BufRead, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{InputError, InputFile};

/// How a shard is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Longest record accepted, in bytes.
    pub max_record_bytes: usize,
    /// Largest accepted ratio of decompressed to compressed bytes (gzip, zstd, bzip2, xz, zip).
    pub max_inflate_ratio: u64,
    /// Skip bad records (collecting them) instead of failing on the first.
    pub skip_bad: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_record_bytes: 64 << 20,
            max_inflate_ratio: 1000,
            skip_bad: false,
        }
    }
}

/// A record that was skipped: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    /// `path:line (byte N)` or the format's equivalent.
    pub location: String,
    /// Why it was refused.
    pub reason: String,
}

/// What one step of a range reader produced.
pub(crate) enum Step {
    /// A record was appended; this many input bytes consumed.
    Record(u64),
    /// A bad record was skipped; this many input bytes consumed.
    Bad(BadRecord, u64),
    /// The range is done.
    End,
}

/// Reads one range of one input; each format implements it.
pub(crate) trait RangeReader {
    /// Appends the next record to `out` (a kv batch).
    fn next(&mut self, out: &mut Vec<u8>) -> Result<Step, InputError>;
    /// Appends the next record to `out` with an empty key, and its location (the key `next`
    /// would have written) to `locations`. Formats whose key is costly to format (`path:line`)
    /// override this to record it compactly instead; the others move their key out of `out`.
    fn next_located(
        &mut self,
        out: &mut Vec<u8>,
        locations: &mut mr_codec::Locations,
    ) -> Result<Step, InputError> {
        let start = out.len();
        let step = self.next(out)?;
        if let Step::Record(_) = step {
            move_key(out, start, locations);
        }
        Ok(step)
    }
    /// Where the next record starts (the INNER part of the cursor).
    fn cursor(&self) -> String;
    /// Bytes of the file consumed so far, when they are not the records' bytes (a compressed
    /// file: compressed bytes, for progress against its size). `None`: the records' bytes are
    /// the file's.
    fn source_position(&self) -> Option<u64> {
        None
    }
}

/// The error for a cursor the job store holds that this format cannot parse.
pub(crate) fn bad_cursor(file: &InputFile, inner: &str) -> InputError {
    InputError::Corrupt {
        path: file.display.clone(),
        message: format!("malformed cursor position {inner:?} in the job store"),
    }
}

/// `OFFSET:LINE[:RECORD]` (the cursor of the text formats), or `default` when empty.
pub(crate) fn parse_text_position(
    file: &InputFile,
    inner: &str,
    default: (u64, u64),
) -> Result<(u64, u64, u64), InputError> {
    if inner.is_empty() {
        return Ok((default.0, default.1, 1));
    }
    let nums: Vec<u64> = inner
        .split(':')
        .map(|p| p.parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad_cursor(file, inner))?;
    match nums[..] {
        [o, l] => Ok((o, l, 1)),
        [o, l, r] => Ok((o, l, r)),
        _ => Err(bad_cursor(file, inner)),
    }
}

/// Moves the key of the kv entry at `out[start..]` (the last one) to `locations`, leaving the
/// entry with an empty key.
fn move_key(out: &mut Vec<u8>, start: usize, locations: &mut mr_codec::Locations) {
    let len_at = |at: usize| {
        out.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let Some(key_len) = len_at(start) else {
        return;
    };
    let key_end = start + 4 + key_len;
    locations.push_text(&out[start + 4..key_end]);
    out[start..start + 4].copy_from_slice(&0u32.to_le_bytes());
    out.copy_within(key_end.., start + 4);
    out.truncate(out.len() - key_len);
}

/// Sets `key` to `display:line`, the key of every text record, without formatting machinery
/// (it runs once per record).
pub(crate) fn line_key(key: &mut Vec<u8>, display: &str, line: u64) {
    key.clear();
    key.extend_from_slice(display.as_bytes());
    key.push(b':');
    key.extend_from_slice(itoa::Buffer::new().format(line).as_bytes());
}

/// A byte count one thread advances and others may read (the compressed bytes a decoder running
/// ahead on its own thread has consumed). Only one thread ever writes it.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedCount(Arc<AtomicU64>);

impl SharedCount {
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
}

/// A `BufRead` that counts what its consumer took, into a counter shared with whoever reports
/// errors above it (the compressed offset a decoder has reached).
pub(crate) struct Counted<R> {
    inner: R,
    pos: SharedCount,
}

impl<R> Counted<R> {
    /// Wraps `inner`; the returned counter follows the bytes consumed.
    pub(crate) fn new(inner: R) -> (Self, SharedCount) {
        let pos = SharedCount::default();
        (Self::with_count(inner, pos.clone()), pos)
    }

    /// Wraps `inner`, advancing `pos`.
    pub(crate) fn with_count(inner: R, pos: SharedCount) -> Self {
        Counted { inner, pos }
    }
}

impl<R: BufRead> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos.set(self.pos.get() + n as u64);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.pos.set(self.pos.get() + n as u64);
        self.inner.consume(n);
    }
}

/// The compressed length a stream must have: the file's size when the job was planned. The
/// stream is read to exactly there (never past, so data appended later is not read) and must
/// end there.
pub(crate) struct Planned {
    /// The file (or object), to look at its size again when the stream does not end as
    /// planned; its `len` is the size at planning.
    pub(crate) file: crate::InputFile,
    /// The file offset the stream must end at: the file's length, or for a group of BGZF
    /// members inflated at planning, the offset of the next group.
    pub(crate) end: u64,
}

impl Planned {
    /// The whole file: the stream ends at its planned length.
    pub(crate) fn whole(file: &crate::InputFile) -> Self {
        Planned {
            file: file.clone(),
            end: file.len,
        }
    }
}

impl Planned {
    /// Why a stream that stopped at byte `at` of the file is wrong, when the file no longer has
    /// its planned size (so the data read was not the data planned); `None` when it still has.
    pub(crate) fn changed(&self, at: u64) -> Option<String> {
        let len = self.file.len;
        match crate::source::current_len(&self.file) {
            Ok(now) if now == len => None,
            Ok(now) => Some(format!(
                "the file changed since the job was planned: it had {len} bytes then and has {now} now (stopped at byte {at} of the file)"
            )),
            Err(e) => Some(format!(
                "the file changed since the job was planned: it had {len} bytes then and cannot be read now ({e})"
            )),
        }
    }
}

/// Decompressed bytes, with errors that name the compressed and decompressed offsets, a cap on
/// the decompression ratio (so a bomb fails instead of filling the disk or running for hours),
/// and, for whole files, a check that the stream ends exactly at the planned compressed length
/// and the file still has that length (it was not appended to or cut while being read).
pub(crate) struct Inflate<R> {
    pub(crate) inner: R,
    /// Compressed bytes consumed so far (from `base.0`).
    pub(crate) compressed: SharedCount,
    /// Decompressed bytes produced so far (from `base.1`).
    pub(crate) out: u64,
    /// The compressed and decompressed offsets in the file where this stream starts: (0, 0),
    /// or a BGZF member's when a shard starts there. Messages give offsets in the file; the
    /// ratio cap counts from here.
    pub(crate) base: (u64, u64),
    pub(crate) ratio: u64,
    /// The format's name for messages: `gzip`, `zstd`, `zip member`, ...
    pub(crate) what: &'static str,
    /// The planned compressed length of a whole-file stream (`None` for zip members, whose
    /// archive checks their size and CRC-32 itself).
    pub(crate) planned: Option<Planned>,
}

impl<R: Read> Read for Inflate<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let at = self.base.0 + self.compressed.get();
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                let changed = self.planned.as_ref().and_then(|p| p.changed(at));
                return Err(std::io::Error::new(
                    e.kind(),
                    match changed {
                        Some(changed) => format!("{changed}: {e}"),
                        None => format!(
                            "corrupt or truncated {} data at compressed byte {at} (decompressed byte {}): {e}",
                            self.what,
                            self.base.1 + self.out
                        ),
                    },
                ));
            }
        };
        if n == 0
            && !buf.is_empty()
            && let Some(planned) = &self.planned
        {
            let at = self.base.0 + self.compressed.get();
            if let Some(changed) = planned.changed(at) {
                return Err(std::io::Error::other(changed));
            }
            if at != planned.end {
                return Err(std::io::Error::other(if planned.end == planned.file.len {
                    format!(
                        "the {} stream ended at compressed byte {at}, but the file has {} bytes",
                        self.what, planned.file.len
                    )
                } else {
                    format!(
                        "the {} stream ended at compressed byte {at}, but the members planned end at byte {}",
                        self.what, planned.end
                    )
                }));
            }
        }
        self.out += n as u64;
        // 1 MiB of slack: the first block of a stream may legitimately expand a lot.
        if self.out > self.ratio.saturating_mul(self.compressed.get()) + (1 << 20) {
            return Err(std::io::Error::other(format!(
                "decompressed {} bytes from {} compressed bytes, more than the ratio cap of {} (a decompression bomb?)",
                self.out,
                self.compressed.get(),
                self.ratio
            )));
        }
        Ok(n)
    }
}

/// Why [`read_line`] stopped.
pub(crate) enum LineError {
    Io(std::io::Error),
    TooLong,
}

/// Reads one line including its `\n` into `line`, refusing lines over `cap` bytes without
/// buffering them whole. Returns bytes consumed (0 at end of input).
pub(crate) fn read_line<R: BufRead + ?Sized>(
    reader: &mut R,
    line: &mut Vec<u8>,
    cap: usize,
) -> Result<usize, LineError> {
    let mut consumed = 0;
    loop {
        let buf = reader.fill_buf().map_err(LineError::Io)?;
        if buf.is_empty() {
            return Ok(consumed);
        }
        let (take, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        // The terminator does not count towards the cap.
        let content = line.len() + take - usize::from(done);
        if content > cap {
            return Err(LineError::TooLong);
        }
        line.extend_from_slice(&buf[..take]);
        reader.consume(take);
        consumed += take;
        if done {
            return Ok(consumed);
        }
    }
}

/// Consumes up to and including the next `\n`; returns the bytes consumed.
pub(crate) fn skip_line<R: BufRead + ?Sized>(reader: &mut R) -> std::io::Result<u64> {
    let mut n = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(n);
        }
        match memchr::memchr(b'\n', buf) {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(n + i as u64 + 1);
            }
            None => {
                let len = buf.len();
                reader.consume(len);
                n += len as u64;
            }
        }
    }
}

/// Writes a JSON object field by field, keeping the fields in the order given (the column
/// order), which `serde_json::Map` would sort.
pub(crate) struct JsonObject<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> JsonObject<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        out.clear();
        out.push(b'{');
        JsonObject { out, first: true }
    }

    pub(crate) fn field<T: serde::Serialize + ?Sized>(&mut self, name: &str, value: &T) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        serde_json::to_writer(&mut *self.out, name).expect("JSON into a Vec");
        self.out.push(b':');
        serde_json::to_writer(&mut *self.out, value).expect("JSON into a Vec");
    }

    pub(crate) fn finish(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_line_caps_content_not_the_terminator() {
        let mut r = std::io::BufReader::with_capacity(2, &b"abc\nabcd\nx"[..]);
        let mut line = Vec::new();
        assert!(matches!(read_line(&mut r, &mut line, 3), Ok(4)));
        assert_eq!(line, b"abc\n");
        line.clear();
        assert!(matches!(
            read_line(&mut r, &mut line, 3),
            Err(LineError::TooLong)
        ));
        // The rest of the long line is skipped, the next one read.
        assert_eq!(skip_line(&mut r).unwrap(), 5 - line.len() as u64);
        line.clear();
        assert!(matches!(read_line(&mut r, &mut line, 3), Ok(1)));
        assert_eq!(line, b"x");
    }

    #[test]
    fn counted_follows_consumption_through_read_and_consume() {
        let (mut c, pos) = Counted::new(&b"hello world"[..]);
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(pos.get(), 5);
        c.consume(3);
        assert_eq!(pos.get(), 8);
    }

    #[test]
    fn json_object_keeps_field_order_and_escapes() {
        let mut out = Vec::new();
        let mut o = JsonObject::new(&mut out);
        o.field("z", "a\"b");
        o.field("a", &1);
        o.finish();
        assert_eq!(out, br#"{"z":"a\"b","a":1}"#);
    }

    #[test]
    fn moving_a_key_leaves_the_entry_keyless() {
        let mut out = Vec::new();
        mr_codec::put_kv(&mut out, b"first", b"1");
        let start = out.len();
        mr_codec::put_kv(&mut out, b"row-9", b"value");
        let mut locations = mr_codec::Locations::default();
        move_key(&mut out, start, &mut locations);
        let kvs: Vec<_> = mr_codec::kvs(&out).map(Result::unwrap).collect();
        assert_eq!(
            kvs,
            vec![(&b"first"[..], &b"1"[..]), (&b""[..], &b"value"[..])]
        );
        assert_eq!(locations.get(0).as_deref(), Some("row-9"));
    }

    #[test]
    fn line_keys_and_text_positions() {
        let mut key = b"old".to_vec();
        line_key(&mut key, "d/f.txt", 1234);
        assert_eq!(key, b"d/f.txt:1234");
        let f = InputFile::test("f");
        assert_eq!(parse_text_position(&f, "", (5, 2)).unwrap(), (5, 2, 1));
        assert_eq!(parse_text_position(&f, "7:3", (0, 1)).unwrap(), (7, 3, 1));
        assert_eq!(parse_text_position(&f, "7:3:9", (0, 1)).unwrap(), (7, 3, 9));
        let e = parse_text_position(&f, "7", (0, 1)).unwrap_err();
        assert!(e.to_string().contains("malformed cursor"), "{e}");
    }
}
