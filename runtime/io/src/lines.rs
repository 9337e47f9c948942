//! Lines and JSON Lines: one record per line, key `path:line`, value the line without its
//! terminator (`\n`; a `\r` before it is dropped, and a last line without a newline is still a
//! line). JSONL validates each line as JSON and skips blank lines.
//!
//! **Planning.** Consecutive plain (uncompressed) line files are split together into byte
//! ranges of near-equal size; every cut moves forward to just after a `\n`, so each line
//! belongs to exactly one shard, and the lines before every cut are counted so records carry
//! their true `path:line`. A shard may span several files; a file may span several shards. A
//! compressed file cannot seek, so it is one shard, except a BGZF file, which is split at
//! member boundaries (see [`crate::bgzf`]).

use crate::compress::{Compression, member_stream, text_stream_counted};
use crate::format::{Format, InputFormat, one_range};
use crate::reader::{
    BadRecord, LineError, RangeReader, ReadOptions, Step, line_key, parse_text_position, read_line,
    skip_line,
};
use crate::{FileRange, InputError, InputFile, Shard};

use std::io::{BufRead, BufReader, Read};

/// The lines and JSONL formats.
pub(crate) struct Lines;

impl Lines {
    /// Whether the planner (or a straggler split) may cut this file at any line start.
    pub(crate) fn byte_splittable(file: &InputFile) -> bool {
        matches!(file.format, Format::Lines | Format::Jsonl) && file.codec() == Compression::None
    }
}

impl InputFormat for Lines {
    fn plan(
        &self,
        files: &[InputFile],
        first: usize,
        shards: u32,
    ) -> Result<(Vec<Shard>, usize), InputError> {
        if !Self::byte_splittable(&files[first]) {
            if matches!(files[first].format, Format::Lines | Format::Jsonl)
                && let Some(shards) = crate::bgzf::plan(files, first, shards)?
            {
                return Ok((shards, 1));
            }
            return Ok((vec![one_range(first, 0, files[first].len)], 1));
        }
        let run = files[first..]
            .iter()
            .take_while(|f| Self::byte_splittable(f))
            .count();
        let mut planned = plan_byte_ranges(&files[first..first + run], shards)?;
        for r in planned.iter_mut().flat_map(|s| s.ranges.iter_mut()) {
            r.file += first;
        }
        Ok((planned, run))
    }

    fn open<'a>(
        &self,
        file: &'a InputFile,
        range: &FileRange,
        inner: &str,
        options: ReadOptions,
    ) -> Result<Box<dyn RangeReader + 'a>, InputError> {
        // A BGZF shard reads from its first member; any other file from its byte range (a
        // compressed one from its start).
        let (start, source_cap) = match &range.members {
            // The decoder may finish the member the next shard starts at: progress stops at
            // the shard's own compressed size.
            Some(members) => (members.start, range.end - range.start),
            None => (range.start, u64::MAX),
        };
        let (offset, line, _) = parse_text_position(file, inner, (start, range.first_line))?;
        let (reader, compressed) = match &range.members {
            Some(members) => {
                let (reader, compressed) = member_stream(file, range, members, offset, options)?;
                (reader, Some(compressed))
            }
            None => text_stream_counted(file, range.end, offset, options)?,
        };
        Ok(Box::new(LinesReader {
            reader,
            compressed,
            source_cap,
            display: file.display.clone(),
            offset,
            line,
            json: file.format == Format::Jsonl,
            cap: options.max_record_bytes,
            buf: Vec::new(),
            key: Vec::new(),
        }))
    }
}

/// Splits the files into at most `shards` shards of near-equal byte size, cutting only just after
/// a newline. Fewer shards come back when the input has fewer lines than requested shards; an
/// input of empty files gives one empty shard.
fn plan_byte_ranges(files: &[InputFile], shards: u32) -> Result<Vec<Shard>, InputError> {
    let total: u64 = files.iter().map(|f| f.len).sum();
    let shards = u64::from(shards.max(1));
    // Global cut targets on the concatenated input, then each moved to the next line start.
    let mut cuts: Vec<(usize, u64)> = Vec::new(); // (file, offset) of each shard's start
    let mut base = 0u64;
    let mut next_target = 1u64;
    for (fi, f) in files.iter().enumerate() {
        while next_target < shards {
            let target = total * next_target / shards;
            if target >= base + f.len {
                break;
            }
            let local = target.saturating_sub(base);
            let cut = if local == 0 {
                0
            } else {
                next_line_start(f, local)?
            };
            if cut < f.len && cuts.last() != Some(&(fi, cut)) {
                cuts.push((fi, cut));
            }
            next_target += 1;
        }
        base += f.len;
    }
    // Build shards: shard 0 starts at the beginning; every cut starts a new shard.
    let mut out: Vec<Shard> = vec![Shard::default()];
    let mut cut_iter = cuts.iter().peekable();
    for (fi, f) in files.iter().enumerate() {
        let mut pos = 0u64;
        let mut line = 1u64;
        loop {
            let next_cut = match cut_iter.peek() {
                Some(&&(cfi, off)) if cfi == fi => Some(off),
                _ => None,
            };
            let end = next_cut.unwrap_or(f.len);
            if end > pos {
                let shard = out.last_mut().expect("one shard at least");
                shard.ranges.push(FileRange {
                    file: fi,
                    start: pos,
                    end,
                    first_line: line,
                    keys: None,
                    members: None,
                });
            }
            match next_cut {
                Some(off) => {
                    cut_iter.next();
                    if end > pos {
                        line += count_newlines(f, pos, end)?;
                    }
                    pos = off;
                    if !out.last().expect("one shard").ranges.is_empty() {
                        out.push(Shard::default());
                    }
                }
                None => break,
            }
        }
    }
    if out.len() > 1 && out.last().is_some_and(|s| s.ranges.is_empty()) {
        out.pop();
    }
    Ok(out)
}

fn io_err(f: &InputFile, offset: u64) -> impl FnOnce(std::io::Error) -> InputError + '_ {
    move |source| InputError::Io {
        path: f.display.clone(),
        offset: Some(offset),
        source,
    }
}

/// The first line start at or after `offset` (i.e. just after the first `\n` at or after
/// `offset - 1`), or the file's length.
fn next_line_start(f: &InputFile, offset: u64) -> Result<u64, InputError> {
    let file = crate::source::open_range(f, offset - 1, f.len)?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut pos = offset - 1;
    loop {
        let buf = reader.fill_buf().map_err(io_err(f, pos))?;
        if buf.is_empty() {
            return Ok(f.len);
        }
        if let Some(i) = memchr::memchr(b'\n', buf) {
            return Ok(pos + i as u64 + 1);
        }
        let n = buf.len();
        pos += n as u64;
        reader.consume(n);
    }
}

/// Where a plain text range read from `from` (line `from_line`) can be cut near `target`: the
/// first line start at or after it and its line number, if that is before `end`. For a running
/// task's straggler split (see `ShardReader::plan_split`): the count reads `from..cut` once.
pub(crate) fn cut_near(
    f: &InputFile,
    (from, from_line): (u64, u64),
    target: u64,
    end: u64,
) -> Result<Option<(u64, u64)>, InputError> {
    if target <= from || target >= end {
        return Ok(None);
    }
    let cut = next_line_start(f, target)?;
    if cut >= end {
        return Ok(None);
    }
    Ok(Some((cut, from_line + count_newlines(f, from, cut)?)))
}

/// Ranged GETs in flight while counting an object's lines at plan time.
const OBJECT_COUNT_PARALLEL: usize = 8;

/// Newlines in `start..end` of the file.
fn count_newlines(f: &InputFile, start: u64, end: u64) -> Result<u64, InputError> {
    if let Some(url) = f.object() {
        // Several ranged GETs at once: this reads the whole range before anything runs.
        return crate::source::location(f, url)?
            .count_byte(start..end, b'\n', OBJECT_COUNT_PARALLEL)
            .map_err(|e| crate::source::object_error(f, e));
    }
    let mut take = crate::source::open_range(f, start, end)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut count = 0u64;
    let mut pos = start;
    loop {
        let n = take.read(&mut buf).map_err(io_err(f, pos))?;
        if n == 0 {
            return Ok(count);
        }
        count += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        pos += n as u64;
    }
}

/// Lines (optionally validated as JSON) of a byte stream; also reads the lines of zip members.
pub(crate) struct LinesReader {
    pub(crate) reader: Box<dyn BufRead>,
    /// For a compressed file, the compressed bytes consumed so far (see `source_position`).
    pub(crate) compressed: Option<crate::compress::CompressedCount>,
    /// The most `source_position` reports (the compressed size of a BGZF shard).
    pub(crate) source_cap: u64,
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
    fn location(&self, line: u64, offset: u64) -> String {
        format!("{}:{line} (byte {offset})", self.display)
    }

    fn io_error(&self, source: std::io::Error) -> InputError {
        InputError::Io {
            path: self.display.clone(),
            offset: Some(self.offset),
            source,
        }
    }
}

impl RangeReader for LinesReader {
    fn next(&mut self, out: &mut Vec<u8>) -> Result<Step, InputError> {
        self.read_record(out, None)
    }

    fn next_located(
        &mut self,
        out: &mut Vec<u8>,
        locations: &mut mr_codec::Locations,
    ) -> Result<Step, InputError> {
        self.read_record(out, Some(locations))
    }

    fn cursor(&self) -> String {
        format!("{}:{}", self.offset, self.line)
    }

    fn source_position(&self) -> Option<u64> {
        self.compressed
            .as_ref()
            .map(|c| c.get().min(self.source_cap))
    }
}

impl LinesReader {
    /// The next record: keyed `path:line` (0.1.x), or keyless with its line noted in
    /// `locations` (0.2.0), which skips formatting the key and copying it to the guest.
    fn read_record(
        &mut self,
        out: &mut Vec<u8>,
        locations: Option<&mut mr_codec::Locations>,
    ) -> Result<Step, InputError> {
        loop {
            self.buf.clear();
            let n = match read_line(&mut self.reader, &mut self.buf, self.cap) {
                Ok(n) => n,
                Err(LineError::Io(source)) => return Err(self.io_error(source)),
                Err(LineError::TooLong) => {
                    // Skip the rest of the line without buffering it.
                    let location = self.location(self.line, self.offset);
                    let rest = skip_line(&mut self.reader).map_err(|e| self.io_error(e))?;
                    let n = self.buf.len() as u64 + rest;
                    self.offset += n;
                    self.line += 1;
                    let reason =
                        format!("line is longer than the record cap of {} bytes", self.cap);
                    return Ok(Step::Bad(BadRecord { location, reason }, n));
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
                    let location = self.location(line, offset);
                    return Ok(Step::Bad(BadRecord { location, reason }, n as u64));
                }
            }
            match locations {
                Some(locations) => {
                    locations.push_line(&self.display, line);
                    mr_codec::put_kv(out, b"", value);
                }
                None => {
                    line_key(&mut self.key, &self.display, line);
                    mr_codec::put_kv(out, &self.key, value);
                }
            }
            return Ok(Step::Record(n as u64));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::ReadOptions;
    use crate::testing::{gz, input, pairs, read, read_error, read_resumed};

    #[test]
    fn every_line_once_for_any_shard_count_and_slice_size() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            input(dir.path(), "a", b"one\r\ntwo\n\nfour\nfive"),
            input(dir.path(), "b", b""),
            input(dir.path(), "c", b"x\ny\n"),
        ];
        let expected = pairs(&[
            ("a:1", "one"),
            ("a:2", "two"),
            ("a:3", ""),
            ("a:4", "four"),
            ("a:5", "five"),
            ("c:1", "x"),
            ("c:2", "y"),
        ]);
        for n in 1..=30 {
            let shards = crate::plan(&files, n).unwrap();
            assert!(shards.len() <= n as usize);
            // Stop after every k records and resume from the cursor's text each time.
            for k in [1, 2, 3, u64::MAX] {
                let (got, _) = read_resumed(&files, &shards, k, ReadOptions::default()).unwrap();
                assert_eq!(got, expected, "{n} shards, {k} records per slice");
            }
        }
    }

    #[test]
    fn shards_are_balanced() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        let files = vec![input(dir.path(), "big", text.as_bytes())];
        let shards = crate::plan(&files, 8).unwrap();
        assert_eq!(shards.len(), 8);
        let sizes: Vec<u64> = shards.iter().map(crate::Shard::bytes).collect();
        let avg = text.len() as u64 / 8;
        assert!(sizes.iter().all(|&s| s.abs_diff(avg) < 20), "{sizes:?}");
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
        let e = read_error(&files, &plan, options);
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
}
