//! The top of the input side: planning every input into shards, and reading a shard's records
//! from a cursor, each range by its format's module (see [`crate::format::handler`]).
//!
//! The cursor a [`ShardReader`] hands out (`RANGE:INNER`) is committed with each slice, and
//! INNER is whatever the range's format needs to resume *exactly* at the next record:
//!
//! | format | INNER |
//! |---|---|
//! | lines, JSONL (plain) | `OFFSET:LINE`: seek to the byte offset |
//! | lines, JSONL, CSV (compressed) | `OFFSET:LINE[:RECORD]`: OFFSET counts *decompressed* bytes; a compressed stream cannot seek, so resuming re-decompresses and discards OFFSET bytes (a BGZF shard: from the member it starts at) |
//! | CSV (plain) | `OFFSET:LINE:RECORD`: the header is re-read, then seek |
//! | zip lines | `MEMBER:OFFSET:LINE`, OFFSET within the decompressed member |
//! | zip members | `MEMBER` |
//! | SQLite | the last key read (rows resume at `key > last`) |
//! | generators | the next index |
//!
//! Bad records (invalid JSON or UTF-8, a CSV row of the wrong width, an over-long line) are
//! skipped past by the range reader and either returned as an error ([`InputError::BadRecord`],
//! the default) or, with [`ReadOptions::skip_bad`], collected for the caller to count and log.
//! Damage that ends a file's reading (corrupt compressed data, a broken zip, a decompression
//! ratio over the cap, a file that changed since planning) is always an error.

use crate::format::handler;
use crate::reader::{BadRecord, RangeReader, ReadOptions, Step};
use crate::{BatchStats, FileRange, InputError, InputFile, Shard};

/// Splits every input into shards, each the way its format allows (see the format modules).
/// `shards` is the target for each splittable input (consecutive plain line files count as
/// one); compressed text (except BGZF lines and JSONL) and CSV files are one shard each. An
/// input of nothing but empty files gives one empty shard.
pub fn plan(files: &[InputFile], shards: u32) -> Result<Vec<Shard>, InputError> {
    let shards = shards.max(1);
    let mut out: Vec<Shard> = Vec::new();
    let mut i = 0;
    while i < files.len() {
        let (planned, used) = handler(&files[i].format).plan(files, i, shards)?;
        out.extend(planned.into_iter().filter(|s| !s.ranges.is_empty()));
        i += used.max(1);
    }
    if out.is_empty() {
        out.push(Shard::default());
    }
    for (i, s) in out.iter_mut().enumerate() {
        s.index = i as u32;
    }
    Ok(out)
}

/// Reads a shard's records as kv batches, from a cursor.
pub struct ShardReader<'a> {
    files: &'a [InputFile],
    /// The shard's ranges; a straggler split may cut them short (see [`ShardReader::apply_split`]).
    ranges: Vec<FileRange>,
    range: usize,
    /// INNER cursor to open `range` at, instead of its start.
    resume: Option<String>,
    current: Option<Box<dyn RangeReader + 'a>>,
    options: ReadOptions,
    bad: Vec<BadRecord>,
    /// Bytes of the input files this reader consumed (see [`ShardReader::source_bytes_read`]).
    source_read: u64,
    /// The current range reader's last [`RangeReader::source_position`].
    source_seen: Option<u64>,
}

impl<'a> ShardReader<'a> {
    /// A reader of `shard` starting at `cursor` (empty: the shard's start; otherwise a
    /// [`ShardReader::position`] of an earlier reader of the same shard).
    pub fn open(
        files: &'a [InputFile],
        shard: &Shard,
        cursor: &str,
        options: ReadOptions,
    ) -> Result<Self, InputError> {
        let (range, resume) = parse_cursor(cursor)?;
        Ok(ShardReader {
            files,
            ranges: shard.ranges.clone(),
            range,
            resume,
            current: None,
            options,
            bad: Vec::new(),
            source_read: 0,
            source_seen: None,
        })
    }

    /// Bytes of the input files consumed by this reader so far: the records' bytes, except in
    /// compressed files, where it is compressed bytes (ahead of the records handed out by the
    /// decoder's buffering, and not counting what a resumed reader skipped). For progress
    /// against the input's size; `bytes-in` stays the records' bytes.
    pub fn source_bytes_read(&self) -> u64 {
        self.source_read
    }

    /// Adds what the current reader consumed since it was last asked; `n` record bytes when it
    /// does not track its file position.
    fn account(&mut self, n: u64) {
        let now = self.current.as_ref().and_then(|r| r.source_position());
        self.source_read += match (now, self.source_seen) {
            (Some(now), Some(seen)) => now.saturating_sub(seen),
            (Some(_), None) => 0,
            (None, _) => n,
        };
        self.source_seen = now;
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
        self.read_batch(out, None, max_bytes, max_records)
    }

    /// Like [`ShardReader::next_batch`], but the records' keys are left empty and their
    /// locations (the keys `next_batch` would write, formatted only when asked) are appended to
    /// `locations`, one per record: map input for jobs of contract 0.2.0.
    pub fn next_batch_located(
        &mut self,
        out: &mut Vec<u8>,
        locations: &mut mr_codec::Locations,
        max_bytes: u64,
        max_records: u64,
    ) -> Result<BatchStats, InputError> {
        self.read_batch(out, Some(locations), max_bytes, max_records)
    }

    fn read_batch(
        &mut self,
        out: &mut Vec<u8>,
        mut locations: Option<&mut mr_codec::Locations>,
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
                let file = &self.files[range.file];
                let inner = self.resume.take();
                self.current = Some(handler(&file.format).open(
                    file,
                    range,
                    inner.as_deref().unwrap_or(""),
                    self.options,
                )?);
                // A resumed compressed stream skipped to its cursor: that is not this reader's.
                // A fresh one counts from the file's start (a decoder may have read its header
                // while opening).
                let at = self.current.as_ref().and_then(|r| r.source_position());
                self.source_seen = if inner.is_some() { at } else { at.map(|_| 0) };
            }
            let reader = self.current.as_mut().expect("opened above");
            let step = match locations.as_deref_mut() {
                Some(locations) => reader.next_located(out, locations)?,
                None => reader.next(out)?,
            };
            match step {
                Step::Record(n) => {
                    stats.records += 1;
                    stats.bytes += n;
                    self.account(n);
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
                    self.account(n);
                }
                Step::End => {
                    self.account(0);
                    self.current = None;
                    self.source_seen = None;
                    self.range += 1;
                }
            }
        }
        Ok(stats)
    }
}

/// `RANGE:INNER` (or empty: the shard's start) as the range index and its INNER cursor.
fn parse_cursor(cursor: &str) -> Result<(usize, Option<String>), InputError> {
    if cursor.is_empty() {
        return Ok((0, None));
    }
    let (r, inner) = cursor.split_once(':').unwrap_or((cursor, ""));
    let r = r.parse::<usize>().map_err(|_| InputError::Corrupt {
        path: "job store".into(),
        message: format!("malformed cursor {cursor:?} (expected RANGE:POSITION)"),
    })?;
    Ok((r, (!inner.is_empty()).then(|| inner.to_owned())))
}

/// How the unread rest of a running shard is cut in two (see [`ShardReader::plan_split`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitPlan {
    /// What the reader keeps: a prefix of its ranges, the last one perhaps ending earlier, so
    /// every cursor it handed out stays valid.
    pub kept: Vec<FileRange>,
    /// What a new task reads, in input order.
    pub given: Vec<FileRange>,
    /// The index (among the reader's ranges) of the range the given part starts in.
    pub at_range: usize,
    /// Where in that range it starts (the range's units: a byte offset for text).
    pub at: u64,
}

/// Whether a range is plain text: read from a seekable file, every byte a record's byte, so
/// where slices end can be worked out without reading the records.
fn is_plain(files: &[InputFile], range: &FileRange) -> bool {
    range.keys.is_none()
        && range.members.is_none()
        && crate::lines::Lines::byte_splittable(&files[range.file])
}

/// A position in a shard: a range and a byte offset in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct At {
    range: usize,
    offset: u64,
}

/// Where a reader at `range`:`inner` is, if that range is plain text.
fn plain_position(
    files: &[InputFile],
    ranges: &[FileRange],
    range: usize,
    inner: Option<&str>,
) -> Result<Option<At>, InputError> {
    let Some(r) = ranges.get(range) else {
        return Ok(None);
    };
    if inner == Some("end") || !is_plain(files, r) {
        return Ok(None);
    }
    let (offset, _, _) = crate::reader::parse_text_position(
        &files[r.file],
        inner.unwrap_or(""),
        (r.start, r.first_line),
    )?;
    Ok(Some(At { range, offset }))
}

/// Bytes of plain text from `at` up to the first range that is not plain (or the end).
fn plain_bytes_from(files: &[InputFile], ranges: &[FileRange], at: At) -> u64 {
    let mut bytes = ranges[at.range].end.saturating_sub(at.offset);
    for r in ranges[at.range + 1..]
        .iter()
        .take_while(|r| is_plain(files, r))
    {
        bytes += r.end - r.start;
    }
    bytes
}

/// How much of a shard's unread rest, from a committed `cursor`, a straggler split could give
/// to another task: the plain text from the cursor up to the first range that is not plain
/// (zero when the cursor is in one). See [`ShardReader::plan_split`].
pub fn splittable_bytes(files: &[InputFile], ranges: &[FileRange], cursor: &str) -> u64 {
    let Ok((range, inner)) = parse_cursor(cursor) else {
        return 0;
    };
    match plain_position(files, ranges, range, inner.as_deref()) {
        Ok(Some(at)) => plain_bytes_from(files, ranges, at),
        _ => 0,
    }
}

impl ShardReader<'_> {
    /// Where the slice starting at `from` ends when slices are `slice_bytes` of records: the
    /// first record end at least that far on, crossing into the next ranges as a slice does;
    /// `None` past the plain text or at the shard's end.
    fn slice_end(&self, from: At, slice_bytes: u64) -> Result<Option<At>, InputError> {
        let mut left = slice_bytes;
        let mut at = from;
        loop {
            let r = &self.ranges[at.range];
            let here = r.end - at.offset;
            if left < here {
                break;
            }
            left -= here;
            // The slice takes the rest of this range: it ends where the next one starts, or
            // goes on into it.
            let next = at.range + 1;
            match self.ranges.get(next) {
                Some(n) if is_plain(self.files, n) => {
                    at = At {
                        range: next,
                        offset: n.start,
                    };
                    if left == 0 {
                        return Ok(Some(at));
                    }
                }
                _ => return Ok(None),
            }
        }
        let r = &self.ranges[at.range];
        let target = at.offset + left;
        match crate::lines::cut_near(&self.files[r.file], at.offset, target, r.end)? {
            Some(offset) => Ok(Some(At {
                range: at.range,
                offset,
            })),
            // The record ends the range: the slice ends where the next range starts.
            None => match self.ranges.get(at.range + 1) {
                Some(n) if is_plain(self.files, n) => Ok(Some(At {
                    range: at.range + 1,
                    offset: n.start,
                })),
                _ => Ok(None),
            },
        }
    }

    /// Where to cut the unread rest of the shard, called at the end of a slice, so that another
    /// task can read about half of it: at the start of a later slice, exactly where a slice of
    /// `slice_bytes` would start if the shard were read whole. Both parts are then read in the
    /// same slices, and so in the same batches, as without the split: every slice's output,
    /// and every counter, is the same either way. Slice ends are worked out only through plain
    /// text (seekable files whose bytes are all records' bytes; a few bytes are read near each
    /// end to find its line start, and no line is counted: the given part numbers its lines
    /// from the cut, see [`FileRange::relative`]), so a reader inside a compressed file, a zip member or a
    /// table is not split, nor is what follows one. `None` when less than `min_bytes` of plain
    /// text is left or no slice end falls inside it. The reader is not changed:
    /// [`ShardReader::apply_split`] does that once the split is committed.
    pub fn plan_split(
        &self,
        slice_bytes: u64,
        min_bytes: u64,
    ) -> Result<Option<SplitPlan>, InputError> {
        let inner = match (&self.current, &self.resume) {
            (Some(r), _) => Some(r.cursor()),
            (None, inner) => inner.clone(),
        };
        let Some(from) = plain_position(self.files, &self.ranges, self.range, inner.as_deref())?
        else {
            return Ok(None);
        };
        let plain = plain_bytes_from(self.files, &self.ranges, from);
        if plain < min_bytes.max(1) || slice_bytes == 0 {
            return Ok(None);
        }
        // What is left, plain or not: the given part takes the end, so it should be about half.
        let rest: u64 = plain
            + self.ranges[from.range + 1..]
                .iter()
                .skip_while(|r| is_plain(self.files, r))
                .map(|r| r.end - r.start)
                .sum::<u64>();
        let half = rest / 2;
        let distance = |at: At| -> u64 {
            let mut d = 0;
            for (i, r) in self
                .ranges
                .iter()
                .enumerate()
                .take(at.range + 1)
                .skip(from.range)
            {
                let a = if i == from.range {
                    from.offset
                } else {
                    r.start
                };
                let b = if i == at.range { at.offset } else { r.end };
                d += b - a;
            }
            d
        };
        let mut best: Option<(u64, At)> = None;
        let mut at = from;
        while let Some(end) = self.slice_end(at, slice_bytes)? {
            let d = distance(end);
            let off_by = d.abs_diff(half);
            if best.is_none_or(|(b, _)| off_by < b) {
                best = Some((off_by, end));
            }
            if d >= half {
                break;
            }
            at = end;
        }
        let Some((_, cut)) = best else {
            return Ok(None);
        };
        let j = cut.range;
        let (kept, given) = if cut.offset == self.ranges[j].start {
            (self.ranges[..j].to_vec(), self.ranges[j..].to_vec())
        } else {
            let mut kept = self.ranges[..=j].to_vec();
            kept[j].end = cut.offset;
            let mut given = self.ranges[j..].to_vec();
            // The given part numbers its lines from the cut (nothing is counted here); the
            // lines before the cut are counted if and when a location is needed.
            given[0].start = cut.offset;
            given[0].first_line = 1;
            given[0].relative = true;
            (kept, given)
        };
        Ok(Some(SplitPlan {
            kept,
            given,
            at_range: j,
            at: cut.offset,
        }))
    }

    /// Keeps only `plan.kept` (a split of this reader's rest was committed): a range cut short
    /// while being read is reopened at the reader's position, with its new end.
    pub fn apply_split(&mut self, plan: &SplitPlan) {
        let cut_current = plan.kept.len() == self.range + 1
            && self.ranges.get(self.range).map(|r| r.end) != plan.kept.last().map(|r| r.end);
        self.ranges = plan.kept.clone();
        if cut_current && let Some(reader) = self.current.take() {
            self.resume = Some(reader.cursor());
            self.source_seen = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{gz, input};

    /// Reads the shard in slices of `k` records, as map tasks do, resuming each from the last
    /// cursor; returns the source bytes each slice's reader reported.
    fn source_bytes_per_slice(files: &[InputFile], shard: &Shard, k: u64) -> Vec<u64> {
        let mut cursor = String::new();
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            let mut reader =
                ShardReader::open(files, shard, &cursor, ReadOptions::default()).unwrap();
            let stats = reader.next_batch(&mut buf, u64::MAX, k).unwrap();
            out.push(reader.source_bytes_read());
            cursor = reader.position();
            if stats.records == 0 || reader.is_finished() {
                return out;
            }
        }
    }

    /// Reads one slice as a map task does: batches until `slice` bytes of records.
    fn read_slice(reader: &mut ShardReader<'_>, slice: u64) -> Vec<(String, String)> {
        let mut buf = Vec::new();
        let mut bytes = 0;
        while bytes < slice {
            let max = (64 << 10).min(slice - bytes);
            let stats = reader.next_batch(&mut buf, max, u64::MAX).unwrap();
            bytes += stats.bytes;
            if stats.records == 0 && reader.is_finished() {
                break;
            }
        }
        mr_codec::kvs(&buf)
            .map(|kv| {
                let (k, v) = kv.unwrap();
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                (text(k), text(v))
            })
            .collect()
    }

    /// The rest of `reader`'s shard, slice by slice (empty slices left out).
    fn slices(reader: &mut ShardReader<'_>, slice: u64) -> Vec<Vec<(String, String)>> {
        let mut out = Vec::new();
        while !reader.is_finished() {
            let records = read_slice(reader, slice);
            if !records.is_empty() {
                out.push(records);
            }
        }
        out
    }

    #[test]
    fn a_split_cuts_where_a_slice_would_start_so_every_slice_reads_the_same_records() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..3000).map(|i| format!("line {i}\n")).collect();
        let files = vec![
            input(dir.path(), "a.txt", text.as_bytes()),
            input(dir.path(), "b.txt", b"x\r\ny\n\nlast without newline"),
            input(dir.path(), "c.jsonl", b"{\"a\":1}\n[2]\n"),
            input(dir.path(), "d.txt", text.as_bytes()),
            input(dir.path(), "e.txt.gz", &gz(text.as_bytes())),
            input(dir.path(), "f.txt", text.as_bytes()),
        ];
        let whole = |i: usize| FileRange {
            file: i,
            start: 0,
            end: files[i].len,
            first_line: 1,
            relative: false,
            keys: None,
            members: None,
        };
        // A shard starting mid-file, as older versions planned them (the line numbered in the
        // file); the parts split off number theirs from their cuts.
        let mut old = whole(0);
        old.start = text.find("line 100\n").unwrap() as u64;
        old.first_line = 101;
        // And as planning cuts them now, numbered from their start.
        let mut new = old.clone();
        new.first_line = 1;
        new.relative = true;
        let options = ReadOptions::default();
        let mut splits = 0;
        for (first, slice) in [
            (&old, 1000),
            (&old, 4096),
            (&new, 7777),
            (&new, 40_000),
            (&new, 1000),
            (&old, 7777),
        ] {
            let shard = Shard {
                index: 0,
                ranges: [first.clone()]
                    .into_iter()
                    .chain((1..6).map(whole))
                    .collect(),
            };
            let unsplit = slices(
                &mut ShardReader::open(&files, &shard, "", options).unwrap(),
                slice,
            );
            assert_eq!(
                unsplit.iter().map(Vec::len).sum::<usize>(),
                2900 + 4 + 2 + 9000
            );
            assert_eq!(unsplit[0][0].0, "a.txt:101");
            for k in 0..unsplit.len() {
                let mut reader = ShardReader::open(&files, &shard, "", options).unwrap();
                let mut got: Vec<Vec<(String, String)>> =
                    (0..k).map(|_| read_slice(&mut reader, slice)).collect();
                // Resuming from the committed cursor must not matter either.
                let cursor = reader.position();
                let mut reader = ShardReader::open(&files, &shard, &cursor, options).unwrap();
                let plain = splittable_bytes(&files, &shard.ranges, &cursor);
                let Some(plan) = reader.plan_split(slice, 1).unwrap() else {
                    got.extend(slices(&mut reader, slice));
                    assert!(got == unsplit, "{slice}-byte slices, no split after {k}");
                    continue;
                };
                splits += 1;
                assert!(plain > 0, "{slice}/{k}: a split with no plain text left");
                reader.apply_split(&plan);
                got.extend(slices(&mut reader, slice));
                let given = Shard {
                    index: 1,
                    ranges: plan.given.clone(),
                };
                let mut other = ShardReader::open(&files, &given, "", options).unwrap();
                // The given part splits again, before it starts.
                if let Some(again) = other.plan_split(slice, 1).unwrap() {
                    other.apply_split(&again);
                    got.extend(slices(&mut other, slice));
                    let last = Shard {
                        index: 2,
                        ranges: again.given,
                    };
                    got.extend(slices(
                        &mut ShardReader::open(&files, &last, "", options).unwrap(),
                        slice,
                    ));
                } else {
                    got.extend(slices(&mut other, slice));
                }
                assert_eq!(
                    got.len(),
                    unsplit.len(),
                    "{slice}-byte slices, split after {k}"
                );
                assert!(
                    got == unsplit,
                    "{slice}-byte slices, split after {k}: slices differ"
                );
            }
        }
        assert!(splits >= 20, "{splits}");
    }

    #[test]
    fn one_compressed_file_being_read_cannot_be_split() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..3000).map(|i| format!("line {i}\n")).collect();
        let files = vec![input(dir.path(), "b.txt.gz", &gz(text.as_bytes()))];
        let shard = crate::plan(&files, 4).unwrap().remove(0);
        let mut reader = ShardReader::open(&files, &shard, "", ReadOptions::default()).unwrap();
        assert!(!read_slice(&mut reader, 100).is_empty());
        assert_eq!(reader.plan_split(100, 1).unwrap(), None);
        assert_eq!(
            splittable_bytes(&files, &shard.ranges, &reader.position()),
            0
        );
    }

    #[test]
    fn located_batches_name_every_record_as_its_key_would() {
        use crate::testing::{read_resumed, read_resumed_located};
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..500).map(|i| format!("line {i}\n")).collect();
        let files = vec![
            input(dir.path(), "a.txt", text.as_bytes()),
            input(dir.path(), "b.txt", b"x\r\ny\n\nlast"),
            input(dir.path(), "c.txt.gz", &gz(text.as_bytes())),
            input(dir.path(), "d.jsonl", b"{\"a\":1}\n\nnot json\n[2]\n"),
            input(dir.path(), "e.csv", b"h1,h2\n1,2\n3,4\n"),
            input(
                dir.path(),
                "f.zip",
                &crate::zip::tests::zip_bytes(&[("m1.txt", b"p\nq\n"), ("m2.txt", b"r")]),
            ),
            InputFile {
                format: crate::format::Format::ZipMembers,
                ..input(
                    dir.path(),
                    "g.zip",
                    &crate::zip::tests::zip_bytes(&[("n1", b"whole"), ("n2", b"two")]),
                )
            },
        ];
        let skip = ReadOptions {
            skip_bad: true,
            ..Default::default()
        };
        for shards in [1, 3, 7] {
            let plan = crate::plan(&files, shards).unwrap();
            for k in [1, 2, 5, u64::MAX] {
                let keyed = read_resumed(&files, &plan, k, skip).unwrap();
                let located = read_resumed_located(&files, &plan, k, skip).unwrap();
                assert_eq!(located, keyed, "{shards} shards, {k} records per slice");
                assert!(keyed.0.iter().any(|(key, _)| key == "b.txt:4"));
                assert!(keyed.0.iter().any(|(key, _)| key == "e.csv:3"));
                assert!(keyed.0.iter().any(|(key, _)| key == "f.zip/m1.txt:2"));
                assert!(keyed.0.iter().any(|(key, v)| key == "n2" && v == "two"));
            }
        }
    }

    #[test]
    fn source_bytes_are_file_bytes_plain_and_compressed_bytes_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..50_000).map(|i| format!("line {}\n", i % 10)).collect();
        let plain = vec![input(dir.path(), "a.txt", text.as_bytes())];
        let plan = crate::plan(&plain, 1).unwrap();
        let slices = source_bytes_per_slice(&plain, &plan[0], 20_000);
        assert_eq!(slices.iter().sum::<u64>(), text.len() as u64);
        // A gzip file, read whole: its compressed size exactly, far below the text's.
        let packed = gz(text.as_bytes());
        let gzip = vec![input(dir.path(), "a.txt.gz", &packed)];
        let plan = crate::plan(&gzip, 1).unwrap();
        let whole = source_bytes_per_slice(&gzip, &plan[0], u64::MAX);
        assert_eq!(whole.iter().sum::<u64>(), packed.len() as u64);
        // In slices, each resumed reader counts only what it consumed after its cursor: the
        // sum stays near the compressed size (within the decoder's read-ahead per slice), not
        // the decompressed one it would reach by counting record bytes.
        let slices = source_bytes_per_slice(&gzip, &plan[0], 20_000);
        assert!(slices.len() >= 3, "{slices:?}");
        let sum: u64 = slices.iter().sum();
        assert!(
            sum <= packed.len() as u64 + slices.len() as u64 * (256 << 10),
            "{sum} bytes for a {}-byte file: {slices:?}",
            packed.len()
        );
        assert!(sum < text.len() as u64 / 4, "{sum}");
    }
}
