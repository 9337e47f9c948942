//! Output sinks: where a job's records end up (`--sink SPEC`).
//!
//! - `text` (default): `part-NNNNN` files, one line per record, `key<TAB>value` (or `value`).
//! - `jsonl`: `part-NNNNN` files, one JSON value per line: each record's value must be valid
//!   JSON (checked as it is written; the key is not written).
//! - `sqlite:PATH?table=T[&mode=insert|upsert][&shape=kv|object]`: rows in a SQLite table.
//!   `shape=kv` (default) writes `(key TEXT PRIMARY KEY, value TEXT)` rows, creating the table if
//!   needed; `shape=object` takes the columns from each value, a JSON object, into an existing
//!   table. `mode=upsert` updates rows whose key (or primary key / unique columns) exists.
//!
//! The SQLite sink's writer is [`sqlite`]: the one place outside `mr-store` that runs SQL,
//! because it writes the *user's* database (a sink like a file), not the job store.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod sqlite;

pub(crate) use sqlite::{SinkReport, apply_sqlite};

/// How the SQLite sink treats existing keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SqliteMode {
    /// Plain inserts: an existing key fails the job.
    Insert,
    /// Insert or update.
    Upsert,
}

/// What a record becomes in the SQLite sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SqliteShape {
    /// `(key, value)`.
    Kv,
    /// Columns from the value, a JSON object.
    Object,
}

/// Where a job's records go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Sink {
    /// Text part files.
    #[default]
    Text,
    /// JSON Lines part files.
    Jsonl,
    /// A SQLite table, written at finalize.
    Sqlite {
        /// The database file (absolute).
        path: PathBuf,
        /// The table.
        table: String,
        /// Insert or upsert.
        mode: SqliteMode,
        /// Key/value rows or object columns.
        shape: SqliteShape,
    },
}

/// How task output files are encoded for a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileFormat {
    /// `key<TAB>value` lines.
    Text,
    /// Validated JSON values, one per line.
    Jsonl,
    /// kv framing (the host's record encoding), read back at finalize; with `objects`, each
    /// value must be a JSON object.
    Records {
        /// Values must be JSON objects.
        objects: bool,
    },
}

impl Sink {
    /// Parses a `--sink` spec.
    pub fn parse(spec: &str) -> Result<Sink, String> {
        match spec {
            "text" => return Ok(Sink::Text),
            "jsonl" => return Ok(Sink::Jsonl),
            _ => {}
        }
        let bad = |m: &str| format!("--sink `{spec}`: {m}");
        let Some(rest) = spec.strip_prefix("sqlite:") else {
            return Err(bad(
                "expected text, jsonl or sqlite:PATH?table=T[&mode=insert|upsert][&shape=kv|object]",
            ));
        };
        let (path, query) = rest
            .split_once('?')
            .ok_or_else(|| bad("expected sqlite:PATH?table=T"))?;
        let settings = mr_io::parse_settings(spec, query, &["table", "mode", "shape"])
            .map_err(|e| e.to_string())?;
        let get = |k: &str| {
            settings
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        let table = get("table").ok_or_else(|| bad("table= is required"))?;
        let mode = match get("mode").unwrap_or("insert") {
            "insert" => SqliteMode::Insert,
            "upsert" => SqliteMode::Upsert,
            m => return Err(bad(&format!("mode `{m}` is neither insert nor upsert"))),
        };
        let shape = match get("shape").unwrap_or("kv") {
            "kv" => SqliteShape::Kv,
            "object" => SqliteShape::Object,
            s => return Err(bad(&format!("shape `{s}` is neither kv nor object"))),
        };
        let path = std::path::absolute(path).unwrap_or_else(|_| PathBuf::from(path));
        Ok(Sink::Sqlite {
            path,
            table: table.to_owned(),
            mode,
            shape,
        })
    }

    pub(crate) fn file_format(&self) -> FileFormat {
        match self {
            Sink::Text => FileFormat::Text,
            Sink::Jsonl => FileFormat::Jsonl,
            Sink::Sqlite { shape, .. } => FileFormat::Records {
                objects: *shape == SqliteShape::Object,
            },
        }
    }

    /// The database a SQLite sink writes.
    pub fn database(&self) -> Option<&Path> {
        match self {
            Sink::Sqlite { path, .. } => Some(path),
            _ => None,
        }
    }
}
