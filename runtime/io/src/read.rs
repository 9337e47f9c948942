//! Reading a shard of any input format into flat kv batches, from an opaque cursor.
//!
//! A [`ShardReader`] walks its shard's ranges; each range is read by a format-specific
//! [`RangeReader`]. The cursor it hands out (`RANGE:INNER`) is committed with each slice, and
//! INNER is whatever that format needs to resume *exactly* at the next record:
//!
//! | format | INNER |
//! |---|---|
//! | lines, JSONL (plain) | `OFFSET:LINE`: seek to the byte offset |
//! | lines, JSONL, CSV (gzip) | `OFFSET:LINE[:RECORD]`: OFFSET counts *decompressed* bytes; a compressed stream cannot seek, so resuming re-decompresses and discards OFFSET bytes |
//! | CSV (plain) | `OFFSET:LINE:RECORD`: the header is re-read, then seek |
//! | zip lines | `MEMBER:OFFSET:LINE`, OFFSET within the decompressed member |
//! | zip members | `MEMBER` |
//! | SQLite | the last key read (rows resume at `key > last`) |
//! | generators | the next index |
//!
//! Bad records (invalid JSON or UTF-8, a CSV row of the wrong width, an over-long line) are
//! skipped past by the range reader and either returned as an error ([`InputError::BadRecord`],
//! the default) or, with [`ReadOptions::skip_bad`], collected for the caller to count and log.
//! Damage that ends a file's reading (corrupt gzip, a broken zip, a decompression ratio over the
//! cap) is always an error.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::rc::Rc;

use crate::source::Format;
use crate::{BatchStats, FileRange, InputError, InputFile, LineError, Shard, read_line};

/// How a shard is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Longest record accepted, in bytes.
    pub max_record_bytes: usize,
    /// Largest accepted ratio of decompressed to compressed bytes (gzip, zip).
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

/// Reads one range of one input.
pub(crate) trait RangeReader {
    /// Appends the next record to `out` (a kv batch).
    fn next(&mut self, out: &mut Vec<u8>) -> Result<Step, InputError>;
    /// Where the next record starts (the INNER part of the cursor).
    fn cursor(&self) -> String;
}

/// Reads a shard's records as kv batches, from a cursor.
pub struct ShardReader<'a> {
    files: &'a [InputFile],
    ranges: &'a [FileRange],
    range: usize,
    /// INNER cursor to open `range` at, instead of its start.
    resume: Option<String>,
    current: Option<Box<dyn RangeReader + 'a>>,
    options: ReadOptions,
    bad: Vec<BadRecord>,
}

impl<'a> ShardReader<'a> {
    /// A reader of `shard` starting at `cursor` (empty: the shard's start; otherwise a
    /// [`ShardReader::position`] of an earlier reader of the same shard).
    pub fn open(
        files: &'a [InputFile],
        shard: &'a Shard,
        cursor: &str,
        options: ReadOptions,
    ) -> Result<Self, InputError> {
        let (range, resume) = if cursor.is_empty() {
            (0, None)
        } else {
            let (r, inner) = cursor.split_once(':').unwrap_or((cursor, ""));
            let r = r.parse::<usize>().map_err(|_| InputError::Corrupt {
                path: "job store".into(),
                message: format!("malformed cursor {cursor:?} (expected RANGE:POSITION)"),
            })?;
            (r, (!inner.is_empty()).then(|| inner.to_owned()))
        };
        Ok(ShardReader {
            files,
            ranges: &shard.ranges,
            range,
            resume,
            current: None,
            options,
            bad: Vec::new(),
        })
    }

    /// The cursor of the next record.
    pub fn position(&self) -> String {
        if self.range >= self.ranges.len() {
            return format!("{}:end", self.ranges.len());
        }
        let inner = match (&self.current, &self.resume) {
            (Some(r), _) => r.cursor(),
            (None, Some(inner)) => inner.clone(),
            (None, None) => String::new(),
        };
        format!("{}:{inner}", self.range)
    }

    /// Whether every record of the shard was read.
    pub fn is_finished(&self) -> bool {
        self.range >= self.ranges.len()
    }

    /// The bad records skipped since the last call.
    pub fn take_bad(&mut self) -> Vec<BadRecord> {
        std::mem::take(&mut self.bad)
    }

    /// Appends records to `out` until about `max_bytes` of input or `max_records` records (bad
    /// ones included) were read, or the shard ends. Returns zero records only at the end.
    pub fn next_batch(
        &mut self,
        out: &mut Vec<u8>,
        max_bytes: u64,
        max_records: u64,
    ) -> Result<BatchStats, InputError> {
        let mut stats = BatchStats::default();
        while stats.bytes < max_bytes && stats.records + (self.bad.len() as u64) < max_records {
            if self.range >= self.ranges.len() {
                break;
            }
            if self.current.is_none() {
                let range = &self.ranges[self.range];
                let inner = self.resume.take();
                self.current = Some(open_range(
                    &self.files[range.file],
                    range,
                    inner.as_deref().unwrap_or(""),
                    self.options,
                )?);
            }
            let reader = self.current.as_mut().expect("opened above");
            match reader.next(out)? {
                Step::Record(n) => {
                    stats.records += 1;
                    stats.bytes += n;
                }
                Step::Bad(bad, n) => {
                    if !self.options.skip_bad {
                        return Err(InputError::BadRecord {
                            location: bad.location,
                            reason: bad.reason,
                        });
                    }
                    stats.bytes += n;
                    self.bad.push(bad);
                }
                Step::End => {
                    self.current = None;
                    self.range += 1;
                }
            }
        }
        Ok(stats)
    }
}

fn open_range<'a>(
    file: &'a InputFile,
    range: &'a FileRange,
    inner: &str,
    options: ReadOptions,
) -> Result<Box<dyn RangeReader + 'a>, InputError> {
    Ok(match &file.format {
        Format::Lines | Format::Jsonl | Format::Csv => {
            let (offset, line, record) = parse_position(file, inner, range)?;
            let stream = open_stream(file, range, offset, options)?;
            if file.format == Format::Csv {
                Box::new(crate::read::CsvReader::open(
                    file, stream, offset, line, record, options,
                )?)
            } else {
                Box::new(LinesReader {
                    reader: stream,
                    display: file.display.clone(),
                    offset,
                    line,
                    json: file.format == Format::Jsonl,
                    cap: options.max_record_bytes,
                    buf: Vec::new(),
                    key: Vec::new(),
                })
            }
        }
        Format::ZipLines | Format::ZipMembers => {
            Box::new(crate::zip::ZipReader::open(file, range, inner, options)?)
        }
        Format::Sqlite { .. } => Box::new(crate::sqlite::SqliteReader::open(file, range, inner)?),
        Format::Random { .. } | Format::Range { .. } => {
            let next = if inner.is_empty() {
                range.start
            } else {
                inner.parse().map_err(|_| bad_cursor(file, inner))?
            };
            Box::new(Generator {
                format: file.format.clone(),
                next,
                end: range.end,
                buf: String::new(),
            })
        }
    })
}

pub(crate) fn bad_cursor(file: &InputFile, inner: &str) -> InputError {
    InputError::Corrupt {
        path: file.display.clone(),
        message: format!("malformed cursor position {inner:?} in the job store"),
    }
}

/// `OFFSET:LINE[:RECORD]`, or the range's start.
fn parse_position(
    file: &InputFile,
    inner: &str,
    range: &FileRange,
) -> Result<(u64, u64, u64), InputError> {
    if inner.is_empty() {
        return Ok((range.start, range.first_line, 1));
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

/// A byte stream over a text file's range, positioned at `offset`: the file itself (seeked,
/// limited to the range) or, for gzip, the decompressed stream with `offset` bytes skipped.
fn open_stream(
    file: &InputFile,
    range: &FileRange,
    offset: u64,
    options: ReadOptions,
) -> Result<Box<dyn BufRead>, InputError> {
    let io = |offset| {
        let path = file.display.clone();
        move |source| InputError::Io {
            path,
            offset: Some(offset),
            source,
        }
    };
    let mut f = File::open(&file.path).map_err(io(offset))?;
    if !file.gzip {
        f.seek(SeekFrom::Start(offset)).map_err(io(offset))?;
        return Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            f.take(range.end.saturating_sub(offset)),
        )));
    }
    let mut stream = gzip_stream(f, &file.display, options.max_inflate_ratio);
    let skipped =
        std::io::copy(&mut (&mut stream).take(offset), &mut std::io::sink()).map_err(io(0))?;
    if skipped != offset {
        return Err(InputError::Corrupt {
            path: file.display.clone(),
            message: format!(
                "the committed cursor is at decompressed byte {offset}, but the stream ends at {skipped}; the file changed"
            ),
        });
    }
    Ok(stream)
}

/// A BufRead that counts what its consumer consumed: the compressed offset a gzip decoder has
/// reached, shared with the error reporting above it.
struct Counted<R> {
    inner: R,
    pos: Rc<Cell<u64>>,
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

/// Decompressed bytes, with errors that name the compressed and decompressed offsets, and a
/// cap on the decompression ratio (so a gzip bomb fails instead of filling the disk or running
/// for hours).
pub(crate) struct Inflate<R> {
    pub(crate) inner: R,
    /// Compressed bytes consumed so far.
    pub(crate) compressed: Rc<Cell<u64>>,
    pub(crate) out: u64,
    pub(crate) ratio: u64,
    pub(crate) what: &'static str,
}

impl<R: Read> Read for Inflate<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "corrupt or truncated {} data at compressed byte {} (decompressed byte {}): {e}",
                    self.what,
                    self.compressed.get(),
                    self.out
                ),
            )
        })?;
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

/// The whole decompressed content of a gzip file: every member (concatenated `.gz` files are
/// one valid gzip file; `GzDecoder` would stop silently after the first).
fn gzip_stream(f: File, _display: &str, ratio: u64) -> Box<dyn BufRead> {
    let pos = Rc::new(Cell::new(0));
    let counted = Counted {
        inner: BufReader::with_capacity(256 << 10, f),
        pos: pos.clone(),
    };
    Box::new(BufReader::with_capacity(
        1 << 20,
        Inflate {
            inner: flate2::bufread::MultiGzDecoder::new(counted),
            compressed: pos,
            out: 0,
            ratio,
            what: "gzip",
        },
    ))
}

/// Lines (optionally validated as JSON) of a byte stream.
pub(crate) struct LinesReader {
    pub(crate) reader: Box<dyn BufRead>,
    /// Key prefix: `path` or `archive/member`.
    pub(crate) display: String,
    pub(crate) offset: u64,
    pub(crate) line: u64,
    pub(crate) json: bool,
    pub(crate) cap: usize,
    pub(crate) buf: Vec<u8>,
    pub(crate) key: Vec<u8>,
}

impl LinesReader {
    fn location(&self) -> String {
        format!("{}:{} (byte {})", self.display, self.line, self.offset)
    }
}

impl RangeReader for LinesReader {
    fn next(&mut self, out: &mut Vec<u8>) -> Result<Step, InputError> {
        loop {
            self.buf.clear();
            let n = match read_line(&mut self.reader, &mut self.buf, self.cap) {
                Ok(n) => n,
                Err(LineError::Io(source)) => {
                    return Err(InputError::Io {
                        path: self.display.clone(),
                        offset: Some(self.offset),
                        source,
                    });
                }
                Err(LineError::TooLong) => {
                    // Skip the rest of the line without buffering it.
                    let location = self.location();
                    let rest = skip_line(&mut self.reader).map_err(|source| InputError::Io {
                        path: self.display.clone(),
                        offset: Some(self.offset),
                        source,
                    })?;
                    let n = self.buf.len() as u64 + rest;
                    self.offset += n;
                    self.line += 1;
                    return Ok(Step::Bad(
                        BadRecord {
                            location,
                            reason: format!(
                                "line is longer than the record cap of {} bytes",
                                self.cap
                            ),
                        },
                        n,
                    ));
                }
            };
            if n == 0 {
                return Ok(Step::End);
            }
            let mut value: &[u8] = &self.buf;
            if let Some(v) = value.strip_suffix(b"\n") {
                value = v.strip_suffix(b"\r").unwrap_or(v);
            }
            let (line, offset) = (self.line, self.offset);
            self.offset += n as u64;
            self.line += 1;
            if self.json {
                // Blank lines carry no record in JSON Lines; skip them rather than fail.
                if value.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let problem = match std::str::from_utf8(value) {
                    Err(e) => Some(format!(
                        "invalid UTF-8 at byte {} of the line",
                        e.valid_up_to()
                    )),
                    Ok(text) => serde_json::from_str::<serde::de::IgnoredAny>(text)
                        .err()
                        .map(|e| format!("invalid JSON: {e}")),
                };
                if let Some(reason) = problem {
                    let location = format!("{}:{line} (byte {offset})", self.display);
                    return Ok(Step::Bad(BadRecord { location, reason }, n as u64));
                }
            }
            self.key.clear();
            self.key.extend_from_slice(self.display.as_bytes());
            self.key.push(b':');
            self.key
                .extend_from_slice(itoa::Buffer::new().format(line).as_bytes());
            mr_codec::put_kv(out, &self.key, value);
            return Ok(Step::Record(n as u64));
        }
    }

    fn cursor(&self) -> String {
        format!("{}:{}", self.offset, self.line)
    }
}

/// Consumes up to and including the next `\n`; returns the bytes consumed.
fn skip_line(reader: &mut dyn BufRead) -> std::io::Result<u64> {
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

/// A reader that fails once more than `limit` bytes were read: bounds what the CSV parser may
/// buffer for one record, so a runaway quoted field is an error, not an out-of-memory.
struct Limited<R> {
    inner: R,
    pos: u64,
    limit: Rc<Cell<u64>>,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.limit.get() {
            return Err(std::io::Error::other(RECORD_TOO_LARGE));
        }
        let room = (self.limit.get() - self.pos).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        self.pos += n as u64;
        Ok(n)
    }
}

const RECORD_TOO_LARGE: &str = "record is longer than the record cap";

/// CSV rows as JSON objects keyed by the header's names.
pub(crate) struct CsvReader {
    reader: csv::Reader<Limited<Box<dyn BufRead>>>,
    display: String,
    header: Vec<String>,
    /// Stream offset where the csv reader started (its positions are relative to it).
    base: u64,
    base_line: u64,
    offset: u64,
    line: u64,
    record: u64,
    cap: usize,
    limit: Rc<Cell<u64>>,
    row: csv::ByteRecord,
    json: Vec<u8>,
    key: Vec<u8>,
}

impl CsvReader {
    fn open(
        file: &InputFile,
        stream: Box<dyn BufRead>,
        offset: u64,
        line: u64,
        record: u64,
        options: ReadOptions,
    ) -> Result<Self, InputError> {
        let limit = Rc::new(Cell::new(0));
        let slack = options.max_record_bytes as u64 + (64 << 10);
        limit.set(slack);
        let mut header_bytes = 0;
        let mut header = Vec::new();
        let (stream, offset, line) = if offset == 0 {
            // Read the header from this stream, then continue with the rows.
            let mut r = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(Limited {
                    inner: stream,
                    pos: 0,
                    limit: limit.clone(),
                });
            let mut h = csv::ByteRecord::new();
            let more = r
                .read_byte_record(&mut h)
                .map_err(|e| csv_error(file, 0, e))?;
            if more {
                header = header_names(file, &h)?;
                header_bytes = r.position().byte();
            }
            // The csv reader buffers ahead, so reopen at the first row instead of reusing it.
            let range = FileRange {
                file: 0,
                start: 0,
                end: file.len,
                first_line: 1,
                keys: None,
            };
            let line = if more { r.position().line() } else { 1 };
            (
                open_stream(file, &range, header_bytes, options)?,
                header_bytes,
                line,
            )
        } else {
            let range = FileRange {
                file: 0,
                start: 0,
                end: file.len,
                first_line: 1,
                keys: None,
            };
            let head = open_stream(file, &range, 0, options)?;
            let mut r = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(head);
            let mut h = csv::ByteRecord::new();
            r.read_byte_record(&mut h)
                .map_err(|e| csv_error(file, 0, e))?;
            header = header_names(file, &h)?;
            (stream, offset, line)
        };
        limit.set(slack);
        Ok(CsvReader {
            reader: csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(Limited {
                    inner: stream,
                    pos: 0,
                    limit: limit.clone(),
                }),
            display: file.display.clone(),
            header,
            base: offset,
            base_line: line,
            offset,
            line,
            record,
            cap: options.max_record_bytes,
            limit,
            row: csv::ByteRecord::new(),
            json: Vec::new(),
            key: Vec::new(),
        })
    }
}

fn header_names(file: &InputFile, h: &csv::ByteRecord) -> Result<Vec<String>, InputError> {
    h.iter()
        .map(|f| {
            String::from_utf8(f.to_vec()).map_err(|_| InputError::Corrupt {
                path: file.display.clone(),
                message: "the CSV header row is not valid UTF-8".into(),
            })
        })
        .collect()
}

fn csv_error(file: &InputFile, offset: u64, e: csv::Error) -> InputError {
    InputError::Corrupt {
        path: file.display.clone(),
        message: format!("cannot read CSV at byte {offset}: {e}"),
    }
}

impl RangeReader for CsvReader {
    fn next(&mut self, out: &mut Vec<u8>) -> Result<Step, InputError> {
        let (offset, line, record) = (self.offset, self.line, self.record);
        let location = format!("{}:{line} (record {record}, byte {offset})", self.display);
        // Allow this record the cap (plus the parser's read-ahead) from its start.
        self.limit
            .set(offset - self.base + self.cap as u64 + (64 << 10));
        let more = self.reader.read_byte_record(&mut self.row);
        let pos = self.reader.position();
        let consumed = self.base + pos.byte() - offset;
        self.offset = self.base + pos.byte();
        self.line = self.base_line + pos.line() - 1;
        match more {
            Ok(false) => return Ok(Step::End),
            Ok(true) => {}
            Err(e) => {
                let text = e.to_string();
                return Err(InputError::Corrupt {
                    path: location,
                    message: if text.contains(RECORD_TOO_LARGE) {
                        format!(
                            "a CSV record is longer than the record cap of {} bytes",
                            self.cap
                        )
                    } else {
                        format!("cannot read CSV: {e}")
                    },
                });
            }
        }
        self.record += 1;
        if self.row.len() != self.header.len() {
            let reason = format!(
                "the row has {} fields, the header {}",
                self.row.len(),
                self.header.len()
            );
            return Ok(Step::Bad(BadRecord { location, reason }, consumed));
        }
        if consumed > self.cap as u64 {
            let reason = format!("record is longer than the record cap of {} bytes", self.cap);
            return Ok(Step::Bad(BadRecord { location, reason }, consumed));
        }
        let mut object = JsonObject::new(&mut self.json);
        for (i, (name, field)) in self.header.iter().zip(self.row.iter()).enumerate() {
            match std::str::from_utf8(field) {
                Ok(text) => object.field(name, &text),
                Err(_) => {
                    let reason = format!("field {} ({name}) is not valid UTF-8", i + 1);
                    return Ok(Step::Bad(BadRecord { location, reason }, consumed));
                }
            }
        }
        object.finish();
        self.key.clear();
        self.key
            .extend_from_slice(format!("{}:{line}", self.display).as_bytes());
        mr_codec::put_kv(out, &self.key, &self.json);
        Ok(Step::Record(consumed))
    }

    fn cursor(&self) -> String {
        format!("{}:{}:{}", self.offset, self.line, self.record)
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

/// Random strings or integers, one per index.
struct Generator {
    format: Format,
    next: u64,
    end: u64,
    buf: String,
}

/// SplitMix64: a tiny, good-enough PRNG, seeded per record so any index range can be generated
/// alone (and a resumed slice regenerates exactly the same records).
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl RangeReader for Generator {
    fn next(&mut self, out: &mut Vec<u8>) -> Result<Step, InputError> {
        if self.next >= self.end {
            return Ok(Step::End);
        }
        let i = self.next;
        self.next += 1;
        self.buf.clear();
        let key = itoa::Buffer::new().format(i).to_owned();
        match self.format {
            Format::Random { length, seed, .. } => {
                let mut state = splitmix(seed ^ splitmix(i));
                for _ in 0..length {
                    state = splitmix(state);
                    self.buf.push((b'a' + (state % 26) as u8) as char);
                }
            }
            Format::Range { start, .. } => {
                self.buf
                    .push_str(itoa::Buffer::new().format(start.wrapping_add(i as i64)));
            }
            _ => unreachable!("a generator"),
        }
        mr_codec::put_kv(out, key.as_bytes(), self.buf.as_bytes());
        Ok(Step::Record(self.buf.len() as u64))
    }

    fn cursor(&self) -> String {
        self.next.to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;
    use std::path::Path;

    pub(crate) fn input(dir: &Path, name: &str, content: &[u8]) -> InputFile {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        let (format, gzip) = crate::source::format_by_name(&path);
        InputFile {
            display: name.to_owned(),
            path,
            len: content.len() as u64,
            format,
            gzip,
        }
    }

    pub(crate) fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    pub(crate) type ReadBack = (Vec<(String, String)>, Vec<BadRecord>);

    /// Reads every shard, stopping after every `k` records and resuming from the cursor's text,
    /// as the store keeps it. Returns (key, value) pairs and the bad records.
    pub(crate) fn read_resumed(
        files: &[InputFile],
        shards: &[Shard],
        k: u64,
        options: ReadOptions,
    ) -> Result<ReadBack, InputError> {
        let mut buf = Vec::new();
        let mut bad = Vec::new();
        for shard in shards {
            let mut cursor = String::new();
            loop {
                let mut reader = ShardReader::open(files, shard, &cursor, options)?;
                let stats = reader.next_batch(&mut buf, u64::MAX, k)?;
                let skipped = reader.take_bad();
                cursor = reader.position();
                if stats.records == 0 && skipped.is_empty() {
                    assert!(reader.is_finished(), "no records but not finished");
                    break;
                }
                bad.extend(skipped);
            }
        }
        let kvs = mr_codec::kvs(&buf)
            .map(|kv| {
                let (k, v) = kv.unwrap();
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect();
        Ok((kvs, bad))
    }

    pub(crate) fn read(
        files: &[InputFile],
        shards: u32,
    ) -> Result<Vec<(String, String)>, InputError> {
        let plan = crate::plan(files, shards)?;
        read_resumed(files, &plan, u64::MAX, ReadOptions::default()).map(|r| r.0)
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn multi_member_gzip_is_read_completely_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = gz(b"one\ntwo\n");
        data.extend(gz(b"three\nfour"));
        data.extend(gz(b""));
        let files = vec![input(dir.path(), "x.gz", &data)];
        let expected = pairs(&[
            ("x.gz:1", "one"),
            ("x.gz:2", "two"),
            ("x.gz:3", "three"),
            ("x.gz:4", "four"),
        ]);
        assert_eq!(read(&files, 4).unwrap(), expected);
        let plan = crate::plan(&files, 4).unwrap();
        assert_eq!(plan.len(), 1, "a gzip stream is one shard");
        for k in 1..4 {
            let (got, _) = read_resumed(&files, &plan, k, ReadOptions::default()).unwrap();
            assert_eq!(got, expected, "{k} records per slice");
        }
    }

    #[test]
    fn corrupt_gzip_names_the_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..20_000)
            .map(|i| format!("line {i} {}\n", i * 7919))
            .collect();
        let mut data = gz(text.as_bytes());
        let mid = data.len() / 2;
        for b in &mut data[mid..mid + 64] {
            *b ^= 0x55;
        }
        let files = vec![input(dir.path(), "bad.gz", &data)];
        let e = read(&files, 1).unwrap_err().to_string();
        assert!(e.starts_with("cannot read bad.gz at byte "), "{e}");
        assert!(
            e.contains("corrupt or truncated gzip data at compressed byte"),
            "{e}"
        );
        // Truncated: the stream ends inside a member.
        let data = gz(text.as_bytes());
        let files = vec![input(dir.path(), "cut.gz", &data[..data.len() / 3])];
        let e = read(&files, 1).unwrap_err().to_string();
        assert!(e.contains("cut.gz") && e.contains("compressed byte"), "{e}");
    }

    #[test]
    fn a_gzip_bomb_is_refused_by_the_ratio_cap() {
        let dir = tempfile::tempdir().unwrap();
        let zeros = vec![b'a'; 8 << 20];
        let files = vec![input(dir.path(), "bomb.gz", &gz(&zeros))];
        let plan = crate::plan(&files, 1).unwrap();
        let options = ReadOptions {
            max_inflate_ratio: 10,
            max_record_bytes: 16 << 20,
            ..Default::default()
        };
        let e = read_resumed(&files, &plan, u64::MAX, options)
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than the ratio cap of 10"), "{e}");
    }

    #[test]
    fn jsonl_validates_each_line() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![input(
            dir.path(),
            "r.jsonl",
            b"{\"a\":1}\n\n{\"a\":\xff}\n{broken\n[2]\n",
        )];
        let e = read(&files, 1).unwrap_err().to_string();
        assert_eq!(
            e,
            "bad record at r.jsonl:3 (byte 9): invalid UTF-8 at byte 5 of the line"
        );
        let plan = crate::plan(&files, 3).unwrap();
        let skip = ReadOptions {
            skip_bad: true,
            ..Default::default()
        };
        for k in 1..4 {
            let (got, bad) = read_resumed(&files, &plan, k, skip).unwrap();
            assert_eq!(
                got,
                pairs(&[("r.jsonl:1", "{\"a\":1}"), ("r.jsonl:5", "[2]")])
            );
            assert_eq!(bad.len(), 2);
            assert_eq!(bad[1].location, "r.jsonl:4 (byte 17)");
            assert!(
                bad[1]
                    .reason
                    .starts_with("invalid JSON: key must be a string"),
                "{}",
                bad[1].reason
            );
        }
    }

    #[test]
    fn csv_rows_become_json_objects_with_quotes_and_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![input(
            dir.path(),
            "t.csv",
            b"name,note\nann,\"a, b\"\n\"bob\",\"two\nlines \"\"q\"\"\"\ncid,x,extra\ndee,\n",
        )];
        let expected = pairs(&[
            ("t.csv:2", r#"{"name":"ann","note":"a, b"}"#),
            ("t.csv:3", r#"{"name":"bob","note":"two\nlines \"q\""}"#),
            ("t.csv:6", r#"{"name":"dee","note":""}"#),
        ]);
        let plan = crate::plan(&files, 4).unwrap();
        let skip = ReadOptions {
            skip_bad: true,
            ..Default::default()
        };
        for k in 1..5 {
            let (got, bad) = read_resumed(&files, &plan, k, skip).unwrap();
            assert_eq!(got, expected, "{k} records per slice");
            assert_eq!(
                bad,
                [BadRecord {
                    location: "t.csv:5 (record 3, byte 45)".into(),
                    reason: "the row has 3 fields, the header 2".into()
                }]
            );
        }
        let e = read(&files, 1).unwrap_err().to_string();
        assert!(e.contains("t.csv:5 (record 3, byte 45)"), "{e}");
        // The same through gzip.
        let data = std::fs::read(dir.path().join("t.csv")).unwrap();
        let files = vec![input(dir.path(), "t.csv.gz", &gz(&data))];
        let plan = crate::plan(&files, 4).unwrap();
        for k in 1..5 {
            let (got, _) = read_resumed(&files, &plan, k, skip).unwrap();
            let renamed: Vec<_> = expected
                .iter()
                .map(|(k, v)| (k.replace("t.csv", "t.csv.gz"), v.clone()))
                .collect();
            assert_eq!(got, renamed);
        }
    }

    #[test]
    fn csv_record_over_the_cap_fails_without_buffering_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = b"a\n\"".to_vec();
        data.extend(std::iter::repeat_n(b'x', 4 << 20));
        let files = vec![input(dir.path(), "big.csv", &data)];
        let plan = crate::plan(&files, 1).unwrap();
        let options = ReadOptions {
            max_record_bytes: 1000,
            ..Default::default()
        };
        let e = read_resumed(&files, &plan, u64::MAX, options)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("big.csv:2") && e.contains("longer than the record cap of 1000"),
            "{e}"
        );
    }

    #[test]
    fn over_long_lines_are_bad_records_and_can_be_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = b"ok\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 3 << 20));
        data.extend(b"\nafter\n");
        let files = vec![
            input(dir.path(), "l.txt", &data),
            input(dir.path(), "l.gz", &gz(&data)),
        ];
        let plan = crate::plan(&files, 1).unwrap();
        let options = ReadOptions {
            max_record_bytes: 1 << 20,
            ..Default::default()
        };
        let e = read_resumed(&files, &plan, u64::MAX, options)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "bad record at l.txt:2 (byte 3): line is longer than the record cap of 1048576 bytes"
        );
        let (got, bad) = read_resumed(
            &files,
            &plan,
            1,
            ReadOptions {
                skip_bad: true,
                ..options
            },
        )
        .unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("l.txt:1", "ok"),
                ("l.txt:3", "after"),
                ("l.gz:1", "ok"),
                ("l.gz:3", "after")
            ])
        );
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[1].location, "l.gz:2 (byte 3)");
    }

    #[test]
    fn empty_files_give_no_records() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            input(dir.path(), "e.txt", b""),
            input(dir.path(), "e.gz", &gz(b"")),
            input(dir.path(), "e.jsonl", b""),
            input(dir.path(), "e.csv", b""),
            input(dir.path(), "h.csv", b"a,b\n"),
        ];
        assert_eq!(read(&files, 3).unwrap(), vec![]);
    }

    #[test]
    fn generators_are_reproducible_and_resume() {
        let dir = tempfile::tempdir().unwrap();
        let _ = dir;
        let files = crate::resolve_inputs(&[
            "random:count=50,length=4,seed=7".into(),
            "range:-3..7".into(),
        ])
        .unwrap();
        let one = read(&files, 1).unwrap();
        assert_eq!(one.len(), 60);
        assert_eq!(one[50], ("0".into(), "-3".into()));
        assert_eq!(one[59], ("9".into(), "6".into()));
        assert!(
            one[..50]
                .iter()
                .all(|(_, v)| v.len() == 4 && v.bytes().all(|b| b.is_ascii_lowercase()))
        );
        let plan = crate::plan(&files, 3).unwrap();
        assert_eq!(plan.len(), 6);
        let (resumed, _) = read_resumed(&files, &plan, 7, ReadOptions::default()).unwrap();
        assert_eq!(resumed, one);
        let other = crate::resolve_inputs(&["random:count=50,length=4,seed=8".into()]).unwrap();
        assert_ne!(read(&other, 1).unwrap(), one[..50]);
    }
}
