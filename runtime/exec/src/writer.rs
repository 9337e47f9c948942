//! The output file writer: text (one line per record, `key<TAB>value`, or `value` alone when the
//! key is empty), JSON Lines (each value checked to be JSON) or framed records for the SQLite
//! sink (see `sink.rs`). Written under a temporary name, fsynced and renamed into place when complete, so a
//! file that exists under its real name is whole; its SHA-256 is computed while writing.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::ExecError;
use crate::sink::FileFormat;

pub(crate) struct TextWriter {
    tmp: PathBuf,
    path: PathBuf,
    out: BufWriter<File>,
    hash: Sha256,
    format: FileFormat,
    pub records: u64,
    pub bytes: u64,
}

/// A file written in full and renamed into place.
pub(crate) struct WrittenFile {
    pub path: PathBuf,
    pub records: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// `dir/.name.tmp` for `dir/name`: where a file is written before it is renamed into place.
pub(crate) fn temp_name(path: &Path) -> PathBuf {
    path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().expect("a file name").to_string_lossy()
    ))
}

impl TextWriter {
    pub(crate) fn create(path: &Path) -> Result<Self, ExecError> {
        Self::create_as(path, FileFormat::Text)
    }

    /// A writer of records in `format`.
    pub(crate) fn create_as(path: &Path, format: FileFormat) -> Result<Self, ExecError> {
        let tmp = temp_name(path);
        let file = File::create(&tmp).map_err(|source| ExecError::Output {
            path: tmp.clone(),
            source,
        })?;
        Ok(TextWriter {
            tmp,
            path: path.to_owned(),
            out: BufWriter::with_capacity(256 * 1024, file),
            hash: Sha256::new(),
            format,
            records: 0,
            bytes: 0,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ExecError> {
        self.hash.update(bytes);
        self.bytes += bytes.len() as u64;
        self.out
            .write_all(bytes)
            .map_err(|source| ExecError::Output {
                path: self.tmp.clone(),
                source,
            })
    }

    /// Writes every record of a kv batch.
    pub(crate) fn write_batch(&mut self, batch: &[u8]) -> Result<(), ExecError> {
        for kv in mr_codec::kvs(batch) {
            let (key, value) = kv.map_err(|e| ExecError::Output {
                path: self.path.clone(),
                source: std::io::Error::other(format!("the job returned a {e}")),
            })?;
            match self.format {
                FileFormat::Text => {
                    if !key.is_empty() {
                        self.write(key)?;
                        self.write(b"\t")?;
                    }
                    self.write(value)?;
                    self.write(b"\n")?;
                }
                FileFormat::Jsonl => {
                    let parsed = self.json(key, value)?;
                    if value.contains(&b'\n') {
                        // A value spread over lines would break the one-value-per-line format.
                        let compact = serde_json::to_vec(&parsed).expect("JSON into a Vec");
                        self.write(&compact)?;
                    } else {
                        self.write(value)?;
                    }
                    self.write(b"\n")?;
                }
                FileFormat::Records { objects } => {
                    if objects && !self.json(key, value)?.is_object() {
                        return Err(self.bad(key, "is not a JSON object (the SQLite sink's shape=object takes its columns from one)".into()));
                    }
                    let mut framed = Vec::with_capacity(key.len() + value.len() + 8);
                    mr_codec::put_kv(&mut framed, key, value);
                    self.write(&framed)?;
                }
            }
            self.records += 1;
        }
        Ok(())
    }

    fn bad(&self, key: &[u8], what: String) -> ExecError {
        ExecError::OutputRecord {
            message: format!(
                "output record {} (key {:?}) {what}",
                self.records + 1,
                String::from_utf8_lossy(key)
            ),
        }
    }

    fn json(&self, key: &[u8], value: &[u8]) -> Result<serde_json::Value, ExecError> {
        serde_json::from_slice(value).map_err(|e| {
            self.bad(
                key,
                format!("is not valid JSON ({e}); the jsonl and SQLite sinks need JSON values"),
            )
        })
    }

    /// Appends raw bytes holding `records` whole records (composing finished files).
    pub(crate) fn write_raw(&mut self, bytes: &[u8], records: u64) -> Result<(), ExecError> {
        self.write(bytes)?;
        self.records += records;
        Ok(())
    }

    /// Flushes, fsyncs and renames the file into place.
    pub(crate) fn commit(self) -> Result<WrittenFile, ExecError> {
        let TextWriter {
            tmp,
            path,
            out,
            hash,
            records,
            bytes,
            ..
        } = self;
        let err = |source| ExecError::Output {
            path: tmp.clone(),
            source,
        };
        let file = out.into_inner().map_err(|e| err(e.into_error()))?;
        file.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)?;
        Ok(WrittenFile {
            path,
            records,
            bytes,
            sha256: mr_engine::hex(&hash.finalize()),
        })
    }
}

/// fsyncs a directory, making the renames in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ExecError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| ExecError::Output {
            path: dir.to_owned(),
            source,
        })
}

/// `part-00042`.
pub(crate) fn part_name(index: u32) -> String {
    format!("part-{index:05}")
}
