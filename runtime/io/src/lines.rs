//! Lines and JSON Lines: one record per line, key `path:line`, value the line without its
//! terminator (`\n`; a `\r` before it is dropped, and a last line without a newline is still a
//! line). JSONL validates each line as JSON and skips blank lines.
//!
//! **Planning.** Consecutive plain (uncompressed) line files are split together into byte
//! ranges of near-equal size; every cut moves forward to just after a `\n`, so each line
//! belongs to exactly one shard. The lines before a cut are not counted: a range that starts
//! inside its file numbers its lines relative to its start, and the lines before it are counted
//! only when a record's location is needed (see [`crate::linecount`]), so records still carry
//! their true `path:line`. A shard may span several files; a file may span several shards. A
//! compressed file cannot seek, so it is one shard, except a BGZF file, which is split at
//! member boundaries (see [`crate::bgzf`]).

use crate::compress::{Compression, member_stream, text_stream_counted};
use crate::format::{Format, InputFormat, one_range};
use crate::linecount::{LinesBefore, Point};
use crate::reader::{
    BadRecord, LineError, RangeReader, ReadOptions, Step, line_key, parse_text_position, read_line,
    skip_line,
};
use crate::{FileRange, InputError, InputFile, Shard};

use std::io::{BufRead, BufReader};
use std::sync::Arc;

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
        // A range that starts inside its file counts its lines from its start; the lines before
        // it are counted only when a location is needed.
        let base = range.relative.then(|| {
            let point = match &range.members {
                Some(m) => Point {
                    at: range.start,
                    member: m.member,
                    out: m.start,
                },
                None => Point::plain(range.start),
            };
            LinesBefore::new(file, point, options)
        });
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
            shared: base.clone().map(|b| b as Arc<dyn mr_codec::LineBase>),
            base,
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
                    // Lines from the range's start: the ones before it are not counted here.
                    first_line: 1,
                    relative: pos > 0,
                    keys: None,
                    members: None,
                });
            }
            match next_cut {
                Some(off) => {
                    cut_iter.next();
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

/// Where a plain text range read from `from` can be cut near `target`: the first line start at
/// or after it, if that is before `end`. For a running task's straggler split (see
/// `ShardReader::plan_split`): a few bytes are read near `target`, and no line is counted (the
/// part given away numbers its lines from the cut).
pub(crate) fn cut_near(
    f: &InputFile,
    from: u64,
    target: u64,
    end: u64,
) -> Result<Option<u64>, InputError> {
    if target <= from || target >= end {
        return Ok(None);
    }
    let cut = next_line_start(f, target)?;
    Ok((cut < end).then_some(cut))
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
    /// The next line's number: in the file, or, with `base`, counted from the range's start.
    pub(crate) line: u64,
    /// For a range numbered from its start: the lines before it, counted when first needed (a
    /// key, a bad record's location), and the same as the base of the locations it notes.
    pub(crate) base: Option<Arc<LinesBefore>>,
    pub(crate) shared: Option<Arc<dyn mr_codec::LineBase>>,
    pub(crate) json: bool,
    pub(crate) cap: usize,
    pub(crate) buf: Vec<u8>,
    pub(crate) key: Vec<u8>,
}

impl LinesReader {
    /// `line` (of this reader's numbering) in the file.
    fn absolute(&self, line: u64) -> Result<u64, InputError> {
        match &self.base {
            None => Ok(line),
            Some(base) => Ok(base.get()? + line),
        }
    }

    fn location(&self, line: u64, offset: u64) -> Result<String, InputError> {
        let line = self.absolute(line)?;
        Ok(format!("{}:{line} (byte {offset})", self.display))
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
                    let location = self.location(self.line, self.offset)?;
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
                    let location = self.location(line, offset)?;
                    return Ok(Step::Bad(BadRecord { location, reason }, n as u64));
                }
            }
            match locations {
                Some(locations) => {
                    match &self.shared {
                        None => locations.push_line(&self.display, line),
                        Some(base) => locations.push_relative_line(&self.display, base, line),
                    }
                    mr_codec::put_kv(out, b"", value);
                }
                None => {
                    let line = self.absolute(line)?;
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
    fn planning_counts_no_lines_and_reading_counts_them_only_for_locations() {
        use crate::linecount::{TEST_LOCK, counted};
        use crate::testing::read_resumed_located;
        let _one = TEST_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        let files = vec![input(dir.path(), "r.txt", text.as_bytes())];
        let plan = crate::plan(&files, 4).unwrap();
        assert_eq!(plan.len(), 4);
        let ranges: Vec<_> = plan.iter().map(|s| &s.ranges[0]).collect();
        assert!(!ranges[0].relative && ranges[0].first_line == 1);
        assert!(ranges[1..].iter().all(|r| r.relative && r.first_line == 1));
        assert!(counted(&files[0]).is_empty(), "planning counted lines");
        // A 0.2.0 read notes relative lines: nothing is counted until a location is written.
        let mut buf = Vec::new();
        let mut locations = mr_codec::Locations::default();
        let mut reader =
            crate::ShardReader::open(&files, &plan[2], "", ReadOptions::default()).unwrap();
        reader
            .next_batch_located(&mut buf, &mut locations, u64::MAX, 10)
            .unwrap();
        assert!(locations.has_relative_lines());
        assert!(counted(&files[0]).is_empty(), "reading counted lines");
        let before = text[..ranges[2].start as usize].matches('\n').count();
        assert_eq!(locations.get(0), Some(format!("r.txt:{}", before + 1)));
        assert_eq!(counted(&files[0]), [ranges[2].start]);
        // Every location, keyed (0.1.x) or noted (0.2.0), is the file's own line number.
        let expected: Vec<(String, String)> = (0..2000)
            .map(|i| (format!("r.txt:{}", i + 1), format!("line {i}")))
            .collect();
        for k in [1, 7, u64::MAX] {
            let (keyed, _) = read_resumed(&files, &plan, k, ReadOptions::default()).unwrap();
            assert_eq!(keyed, expected);
            let (located, _) =
                read_resumed_located(&files, &plan, k, ReadOptions::default()).unwrap();
            assert_eq!(located, expected);
        }
    }

    #[test]
    fn plans_stored_by_older_versions_read_as_they_did() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let files = vec![input(dir.path(), "o.txt", text.as_bytes())];
        let at = text.find("line 40\n").unwrap();
        // An older version's plan: the cut's line counted, no `relative` field; and its cursor
        // (OFFSET:LINE, the line in the file).
        let json = format!(
            r#"[{{"index":0,"ranges":[{{"file":0,"start":0,"end":{at},"first_line":1}}]}},{{"index":1,"ranges":[{{"file":0,"start":{at},"end":{},"first_line":41}}]}}]"#,
            text.len()
        );
        let old: Vec<crate::Shard> = serde_json::from_str(&json).unwrap();
        assert!(old.iter().all(|s| !s.ranges[0].relative));
        let expected: Vec<(String, String)> = (0..100)
            .map(|i| (format!("o.txt:{}", i + 1), format!("line {i}")))
            .collect();
        for k in [1, 3, u64::MAX] {
            let (got, _) = read_resumed(&files, &old, k, ReadOptions::default()).unwrap();
            assert_eq!(got, expected);
        }
        let line_50 = text.find("line 50\n").unwrap();
        let mut reader = crate::ShardReader::open(
            &files,
            &old[1],
            &format!("0:{line_50}:51"),
            ReadOptions::default(),
        )
        .unwrap();
        let mut buf = Vec::new();
        reader.next_batch(&mut buf, u64::MAX, 1).unwrap();
        let (key, _) = mr_codec::kvs(&buf).next().unwrap().unwrap();
        assert_eq!(key, b"o.txt:51");
        // A new plan says `relative` only where it holds, and reads the same.
        let new = crate::plan(&files, 2).unwrap();
        let stored = serde_json::to_string(&new).unwrap();
        assert_eq!(stored.matches("\"relative\":true").count(), 1, "{stored}");
        let back: Vec<crate::Shard> = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, new);
        let (got, _) = read_resumed(&files, &back, 3, ReadOptions::default()).unwrap();
        assert_eq!(got, expected);
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
