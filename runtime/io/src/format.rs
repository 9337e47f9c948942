//! Input formats: [`Format`], how a name or a prefix picks one, and the one dispatcher from a
//! format to the module that plans and reads it ([`handler`]).
//!
//! Adding a format means one new module implementing [`InputFormat`], a variant here, an arm in
//! [`handler`] (and, if it has one, its prefix in [`PREFIXES`]).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::compress::Compression;
use crate::reader::{RangeReader, ReadOptions};
use crate::{FileRange, InputError, InputFile, Shard};

/// How an input's records are read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Format {
    /// One record per line: key `path:line`, value the line.
    #[default]
    Lines,
    /// Lines, each validated as JSON.
    Jsonl,
    /// CSV with a header row; each row as a JSON object of header → field.
    Csv,
    /// The lines of every member of a zip archive: key `archive/member:line`.
    ZipLines,
    /// One record per zip member: key the member name, value its bytes.
    ZipMembers,
    /// Rows of a SQLite table or query as JSON objects, split by an integer key column.
    Sqlite {
        /// The table, for `?table=`.
        table: Option<String>,
        /// The query, for `?query=`.
        query: Option<String>,
        /// The integer key column (unique, e.g. `rowid` or an `INTEGER PRIMARY KEY`).
        key: String,
    },
    /// `count` random strings of `length` lowercase letters, reproducible from `seed`.
    Random {
        /// Records.
        count: u64,
        /// Letters per record.
        length: u32,
        /// PRNG seed.
        seed: u64,
    },
    /// The integers `start..end`.
    Range {
        /// First value.
        start: i64,
        /// One past the last value.
        end: i64,
    },
}

impl Format {
    /// Whether this input is a file whose size and modification time identify its content.
    pub fn is_file(&self) -> bool {
        !matches!(self, Format::Random { .. } | Format::Range { .. })
    }

    /// Whether records are lines of a byte stream (which may be compressed).
    pub fn is_text(&self) -> bool {
        matches!(self, Format::Lines | Format::Jsonl | Format::Csv)
    }
}

/// What each format module provides: its planning and its reader.
pub(crate) trait InputFormat: Sync {
    /// Cuts `files[first]` (and, for a format that splits runs of files together, the
    /// consecutive files after it that it also takes) into shards whose ranges name files by
    /// their index in `files`. Returns the shards and how many files they cover (at least one).
    fn plan(
        &self,
        files: &[InputFile],
        first: usize,
        shards: u32,
    ) -> Result<(Vec<Shard>, usize), InputError>;

    /// A reader of `range` of `file`, starting at `inner` (a cursor this format handed out
    /// earlier), or at the range's start when `inner` is empty.
    fn open<'a>(
        &self,
        file: &'a InputFile,
        range: &FileRange,
        inner: &str,
        options: ReadOptions,
    ) -> Result<Box<dyn RangeReader + 'a>, InputError>;
}

/// The module that plans and reads `format`.
pub(crate) fn handler(format: &Format) -> &'static dyn InputFormat {
    match format {
        Format::Lines | Format::Jsonl => &crate::lines::Lines,
        Format::Csv => &crate::csv::Csv,
        Format::ZipLines | Format::ZipMembers => &crate::zip::Zip,
        Format::Sqlite { .. } => &crate::sqlite::Sqlite,
        Format::Random { .. } | Format::Range { .. } => &crate::generate::Generate,
    }
}

/// One shard holding one range of one whole input (`start..end` in the format's own units).
pub(crate) fn one_range(file: usize, start: u64, end: u64) -> Shard {
    Shard {
        index: 0,
        ranges: vec![FileRange {
            file,
            start,
            end,
            first_line: 1,
            relative: false,
            keys: None,
            members: None,
        }],
    }
}

/// The prefixes a spec may start with, each forcing a format.
pub const PREFIXES: &[&str] = &[
    "lines:",
    "jsonl:",
    "csv:",
    "zip:",
    "zip-members:",
    "sqlite:",
    "random:",
    "range:",
];

/// Splits `spec` into its explicit prefix (without `:`) and the rest, when it has one and is
/// not simply an existing path.
pub(crate) fn split_prefix(spec: &str) -> Option<(&str, &str)> {
    if Path::new(spec).exists() {
        return None;
    }
    PREFIXES
        .iter()
        .find(|p| spec.starts_with(*p))
        .map(|p| (&p[..p.len() - 1], &spec[p.len()..]))
}

/// The format and compression a plain path gets from its name: the last extension picks the
/// compression (`.gz`, `.zst`, `.bz2`, `.xz`), the one before it (or the last, uncompressed)
/// the format.
pub(crate) fn format_by_name(path: &Path) -> (Format, Compression) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let (compression, stem) = Compression::from_name(&name);
    let format = if stem.ends_with(".jsonl") || stem.ends_with(".ndjson") {
        Format::Jsonl
    } else if stem.ends_with(".csv") {
        Format::Csv
    } else if stem.ends_with(".zip") && compression == Compression::None {
        Format::ZipLines
    } else {
        Format::Lines
    };
    (format, compression)
}

/// The format a prefix forces, with the compression still taken from the name.
pub(crate) fn format_by_prefix(prefix: &str, path: &Path) -> (Format, Compression) {
    let format = match prefix {
        "jsonl" => Format::Jsonl,
        "csv" => Format::Csv,
        "zip" => return (Format::ZipLines, Compression::None),
        "zip-members" => return (Format::ZipMembers, Compression::None),
        _ => Format::Lines,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    (format, Compression::from_name(&name).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_prefixes_pick_formats() {
        let f = |n: &str| format_by_name(Path::new(n));
        assert_eq!(f("a.txt"), (Format::Lines, Compression::None));
        assert_eq!(f("a.gz"), (Format::Lines, Compression::Gzip));
        assert_eq!(f("a.JSONL"), (Format::Jsonl, Compression::None));
        assert_eq!(f("a.jsonl.gz"), (Format::Jsonl, Compression::Gzip));
        assert_eq!(f("a.csv.gz"), (Format::Csv, Compression::Gzip));
        assert_eq!(f("a.jsonl.zst"), (Format::Jsonl, Compression::Zstd));
        assert_eq!(f("a.csv.xz"), (Format::Csv, Compression::Xz));
        assert_eq!(f("a.log.bz2"), (Format::Lines, Compression::Bzip2));
        assert_eq!(f("a.zip"), (Format::ZipLines, Compression::None));
        assert_eq!(
            format_by_prefix("jsonl", Path::new("x.txt.zst")),
            (Format::Jsonl, Compression::Zstd)
        );
        assert_eq!(
            split_prefix("zip-members:x/*.zip"),
            Some(("zip-members", "x/*.zip"))
        );
        assert_eq!(split_prefix("plain/file"), None);
    }
}
