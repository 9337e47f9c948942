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
    ranges: &'a [FileRange],
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
