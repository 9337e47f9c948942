//! `mr-io`: the host's input side. It resolves input specs to inputs (files of lines, JSONL and
//! CSV, plain or compressed with gzip, zstd, bzip2 or xz; zip archives; SQLite tables;
//! generators), splits them into shards, and reads a shard's records into flat record batches
//! from a resumable cursor.
//!
//! Layers, bottom up (each module's own documentation has the details):
//!
//! - `reader`: the `RangeReader` trait every format implements, and the adapters formats share
//!   (byte counting, decompression offsets and caps, capped line reading, JSON objects).
//! - `compress`: the byte stream of a text input, decompressed by its extension; `sniff`: what a
//!   file's first bytes say it is; `linecount`: the lines before a range that starts inside its
//!   file, counted only when a location needs them, and cached per process.
//! - One module per format, owning both its planning and its reader: `lines` (lines and JSONL),
//!   `csv`, `zip`, `sqlite`, `generate` (`random:`, `range:`).
//! - `format`: [`Format`] and the one dispatcher from a format to its module; `shard`:
//!   [`plan`] and [`ShardReader`], which walk a job's inputs and a shard's ranges through it.
//! - `resolve`: [`resolve_inputs`], specs to checked input files.
//!
//! What an executor calls: [`resolve_inputs`] (once, at submit), [`plan`] (the shards), then,
//! per map slice, [`ShardReader::open`] at the committed cursor, [`ShardReader::next_batch`]
//! until the slice is full, and [`ShardReader::position`] to commit with it.

mod ahead;
pub mod bgzf;
mod compress;
mod csv;
mod format;
mod generate;
mod linecount;
mod lines;
pub mod objects;
mod reader;
mod resolve;
mod shard;
mod sniff;
mod source;
mod sqlite;
#[cfg(feature = "testing")]
pub mod test_server;
mod zip;

pub use compress::Compression;
pub use format::{Format, PREFIXES};
pub use reader::{BadRecord, ReadOptions};
pub use resolve::{parse_settings, resolve_inputs};
pub use shard::{ShardReader, SplitPlan, plan, splittable_bytes};
pub use sqlite::{KeyRange, SQLITE_OVERSAMPLING};

use std::path::PathBuf;

/// Input errors, each naming the file (and where it applies, the line and byte offset).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A path, glob or directory matched no file.
    #[error("input `{spec}` matches no file{note}")]
    NoMatch {
        /// The spec as given.
        spec: String,
        /// Why matches were skipped, when some were (` (...)`), or empty.
        note: String,
    },
    /// An input is not a regular file (a FIFO, a device, a socket): it has no size to plan by.
    #[error(
        "input {path} is {kind}, not a regular file: mr reads only regular files (it plans by their size and may read them more than once); copy the data into a file"
    )]
    NotRegular {
        /// The path.
        path: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// An input named explicitly is inside the job's output directory.
    #[error(
        "input {input} is inside the output directory {output}: writing the output (or --overwrite) would destroy it, so choose an output directory outside the inputs (nothing was written)"
    )]
    InsideOutput {
        /// The input as given.
        input: String,
        /// The output directory.
        output: String,
    },
    /// A file's first bytes contradict its name (binary or compressed data named as text, or
    /// a compressed name over other content).
    #[error("input {path}: {message}")]
    WrongContent {
        /// The file.
        path: String,
        /// What it is, and what to do.
        message: String,
    },
    /// A glob pattern is malformed.
    #[error("input `{spec}` is not a valid glob pattern: {message}")]
    BadGlob {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        message: String,
    },
    /// Reading a file failed.
    #[error("cannot read {path}{}: {source}", offset.map(|o| format!(" at byte {o}")).unwrap_or_default())]
    Io {
        /// The file.
        path: String,
        /// Byte offset, when known.
        offset: Option<u64>,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An input spec is malformed.
    #[error("input `{spec}`: {message}")]
    BadSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        message: String,
    },
    /// A record is malformed (and bad records are not being skipped).
    #[error("bad record at {location}: {reason}")]
    BadRecord {
        /// `path:line (byte N)` or the like.
        location: String,
        /// Why it was refused.
        reason: String,
    },
    /// A file is damaged or unreadable in a way that ends its reading (corrupt or truncated
    /// compressed data, a broken archive, an over-large decompression ratio, a SQL error).
    #[error("{path}: {message}")]
    Corrupt {
        /// The file (and member, for archives).
        path: String,
        /// What is wrong, with the offset where known.
        message: String,
    },
    /// A line is longer than the record size cap.
    #[error("{path}:{line} (byte {offset}): line is longer than the record cap of {cap} bytes")]
    RecordTooLarge {
        /// The file.
        path: String,
        /// Line number.
        line: u64,
        /// Byte offset of the line's start.
        offset: u64,
        /// The cap.
        cap: usize,
    },
}

/// One input file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InputFile {
    /// Where to open it.
    pub path: PathBuf,
    /// How records name it (the path as the user wrote it, or joined under the directory given).
    pub display: String,
    /// Size in bytes at planning time.
    pub len: u64,
    /// How its records are read.
    #[serde(default, skip_serializing_if = "is_default")]
    pub format: Format,
    /// Whether the file is gzip-compressed: the same as `compression == Compression::Gzip`,
    /// kept because plans stored before the other codecs existed have only this field (and a
    /// job's fingerprint looks at it). Read the codec with [`InputFile::codec`].
    #[serde(default, skip_serializing_if = "is_default")]
    pub gzip: bool,
    /// How a text file's bytes are compressed.
    #[serde(default, skip_serializing_if = "is_default")]
    pub compression: Compression,
}

impl InputFile {
    /// How the file's bytes are compressed (also for plans that predate [`Compression`]).
    pub fn codec(&self) -> Compression {
        if self.gzip {
            Compression::Gzip
        } else {
            self.compression
        }
    }

    /// Whether its bytes are compressed (a compressed file, or a zip archive): its records'
    /// bytes are then not its file bytes.
    pub fn is_compressed(&self) -> bool {
        self.codec() != Compression::None
            || matches!(self.format, Format::ZipLines | Format::ZipMembers)
    }

    /// A plain text file, for unit tests that need only a name.
    #[cfg(test)]
    pub(crate) fn test(name: &str) -> InputFile {
        InputFile {
            path: PathBuf::from(name),
            display: name.to_owned(),
            len: 0,
            format: Format::Lines,
            gzip: false,
            compression: Compression::None,
        }
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A range of one input, in its format's units: bytes from a line start (plain text), the
/// whole file (compressed text, CSV), member indices (zip), indices (generators).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileRange {
    /// Index into the planned file list.
    pub file: usize,
    /// First byte (a line start).
    pub start: u64,
    /// One past the last byte (a line start or the file's end).
    pub end: u64,
    /// Line number (1-based) of the line starting at `start`: its number in the file, or, when
    /// [`FileRange::relative`], its number counted from the range's start (1).
    pub first_line: u64,
    /// Whether the range's line numbers (`first_line`, and the lines in its cursors) count from
    /// its first line start (`start`, or `members.start` for BGZF) rather than from the file's
    /// start: planning and straggler splits do not count the lines before a cut. The lines
    /// before it are counted only when a location is needed (see `linecount.rs`). Absent
    /// (false) in plans stored by older versions, whose `first_line` is absolute.
    #[serde(default, skip_serializing_if = "is_default")]
    pub relative: bool,
    /// For SQLite inputs, the key range (`start`/`end` are unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<KeyRange>,
    /// For a shard of a BGZF file split at member boundaries, where its lines are in the
    /// decompressed stream (`start`/`end` are then the compressed offsets of the members it
    /// starts at and of the next shard's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<MemberRange>,
}

/// The decompressed side of a shard of a BGZF file (see [`FileRange::members`]): the shard owns
/// the lines that start in `start..end`, which are line starts (or the stream's ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemberRange {
    /// Decompressed offset of the member the shard starts reading at.
    pub member: u64,
    /// Decompressed offset of the shard's first line.
    pub start: u64,
    /// Decompressed offset just past its last line.
    pub end: u64,
    /// Whether the shard ends the file: it then reads to the file's end, which must be where
    /// the last member ends, as for a whole file.
    pub last: bool,
}

/// The ranges one shard reads, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// Shard index.
    pub index: u32,
    /// Ranges in input order.
    pub ranges: Vec<FileRange>,
}

impl Shard {
    /// Bytes this shard covers.
    pub fn bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.end - r.start).sum()
    }
}

/// Totals of one [`ShardReader::next_batch`] call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Records appended.
    pub records: u64,
    /// Input bytes consumed (including line terminators).
    pub bytes: u64,
}

pub(crate) fn bad_spec(spec: &str, message: impl Into<String>) -> InputError {
    InputError::BadSpec {
        spec: spec.to_owned(),
        message: message.into(),
    }
}

/// Helpers of the unit tests: inputs written to a directory, and shards read back through
/// cursors the way the executor reads them.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::path::Path;

    pub(crate) use crate::BadRecord;

    pub(crate) fn input(dir: &Path, name: &str, content: &[u8]) -> InputFile {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        let (format, compression) = crate::format::format_by_name(&path);
        InputFile {
            display: name.to_owned(),
            path,
            len: content.len() as u64,
            format,
            gzip: compression == Compression::Gzip,
            compression,
        }
    }

    pub(crate) fn gz(data: &[u8]) -> Vec<u8> {
        crate::compress::tests::compress(Compression::Gzip, data)
    }

    /// `data` as a BGZF file (what bgzip writes): members of at most `block` bytes of text,
    /// each with the `BC` extra field giving its size, and the empty end-of-file member.
    pub(crate) fn bgzf(data: &[u8], block: usize) -> Vec<u8> {
        data.chunks(block.max(1))
            .chain([&[][..]])
            .flat_map(|chunk| {
                crate::bgzf::encode_member(chunk, flate2::Compression::fast()).unwrap()
            })
            .collect()
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

    /// [`read_resumed`] for a 0.2.0 job: keyless records (checked) with their locations read
    /// from the table beside each batch, as (location, value) pairs.
    pub(crate) fn read_resumed_located(
        files: &[InputFile],
        shards: &[Shard],
        k: u64,
        options: ReadOptions,
    ) -> Result<ReadBack, InputError> {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for shard in shards {
            let mut cursor = String::new();
            loop {
                let mut reader = ShardReader::open(files, shard, &cursor, options)?;
                let (mut buf, mut locations) = (Vec::new(), mr_codec::Locations::default());
                let stats = reader.next_batch_located(&mut buf, &mut locations, u64::MAX, k)?;
                assert_eq!(locations.len() as u64, stats.records);
                for (i, kv) in mr_codec::kvs(&buf).enumerate() {
                    let (key, value) = kv.unwrap();
                    assert!(key.is_empty(), "a located record has a key");
                    out.push((
                        locations.get(i).unwrap(),
                        String::from_utf8_lossy(value).into_owned(),
                    ));
                }
                let skipped = reader.take_bad();
                cursor = reader.position();
                if stats.records == 0 && skipped.is_empty() {
                    break;
                }
                bad.extend(skipped);
            }
        }
        Ok((out, bad))
    }

    /// The error reading `plan` ends with (shards read whole); panics if it succeeds.
    pub(crate) fn read_error(files: &[InputFile], plan: &[Shard], options: ReadOptions) -> String {
        match read_resumed(files, plan, u64::MAX, options) {
            Ok((records, _)) => panic!("read {} records, expected an error", records.len()),
            Err(e) => e.to_string(),
        }
    }

    pub(crate) fn read(
        files: &[InputFile],
        shards: u32,
    ) -> Result<Vec<(String, String)>, InputError> {
        let plan = crate::plan(files, shards)?;
        read_resumed(files, &plan, u64::MAX, ReadOptions::default()).map(|r| r.0)
    }

    pub(crate) fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}
