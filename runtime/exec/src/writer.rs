//! The output file writer: text (one line per record, `key<TAB>value`, or `value` alone when the
//! key is empty), JSON Lines (each value checked to be JSON; or `{"key","value"}` objects) or framed records for the SQLite
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

/// Why a batch of job output could not be written.
pub(crate) enum WriteError {
    /// The file could not be written (disk full, permissions...).
    Io(ExecError),
    /// The job's batch is not a well-formed kv batch.
    Malformed(mr_codec::CodecError),
    /// A record the sink cannot hold.
    Refused {
        /// Its index in the batch.
        index: usize,
        /// Its key, shortened for messages.
        key: String,
        /// Why.
        why: String,
    },
}

impl From<ExecError> for WriteError {
    fn from(e: ExecError) -> Self {
        WriteError::Io(e)
    }
}

/// What a text line cannot hold: a line break anywhere, or a tab in the key (the key ends at
/// the first tab). `None` when the record fits on one line.
fn text_problem(key: &[u8], value: &[u8]) -> Option<&'static str> {
    if memchr::memchr2(b'\n', b'\r', key).is_some() {
        Some("a line break (\\n or \\r) in its key")
    } else if memchr::memchr2(b'\n', b'\r', value).is_some() {
        Some("a line break (\\n or \\r) in its value")
    } else if memchr::memchr(b'\t', key).is_some() {
        Some("a tab in its key")
    } else {
        None
    }
}

fn json(value: &[u8]) -> Result<serde_json::Value, String> {
    serde_json::from_slice(value).map_err(|e| {
        format!("is not valid JSON ({e}); the jsonl and SQLite sinks need JSON values")
    })
}

/// The `jsonl-kv` line of a record (without its newline): `{"key":KEY,"value":VALUE}`, the key
/// a JSON string (lossy UTF-8), the value embedded when it is valid JSON (compacted when it spans
/// lines), else a JSON string (lossy UTF-8).
fn kv_line(key: &[u8], value: &[u8]) -> Vec<u8> {
    let key = serde_json::Value::String(String::from_utf8_lossy(key).into_owned());
    let mut line = Vec::with_capacity(key.as_str().map_or(0, str::len) + value.len() + 24);
    line.extend_from_slice(b"{\"key\":");
    serde_json::to_writer(&mut line, &key).expect("JSON into a Vec");
    line.extend_from_slice(b",\"value\":");
    match serde_json::from_slice::<serde_json::Value>(value) {
        Ok(_) if !value.contains(&b'\n') && !value.contains(&b'\r') => {
            line.extend_from_slice(value.trim_ascii())
        }
        Ok(parsed) => serde_json::to_writer(&mut line, &parsed).expect("JSON into a Vec"),
        Err(_) => {
            let text = serde_json::Value::String(String::from_utf8_lossy(value).into_owned());
            serde_json::to_writer(&mut line, &text).expect("JSON into a Vec")
        }
    }
    line.push(b'}');
    line
}

/// A key for messages: lossy UTF-8, quoted, at most 200 bytes of it.
pub(crate) fn shown(key: &[u8]) -> String {
    let text = String::from_utf8_lossy(&key[..key.len().min(200)]);
    if key.len() > 200 {
        format!("{text:?}… ({} bytes)", key.len())
    } else {
        format!("{text:?}")
    }
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

    /// Writes every record of a kv batch the job returned. Fails with [`WriteError::Malformed`]
    /// when the batch's framing is broken and [`WriteError::Refused`] for a record the sink
    /// cannot hold; records before the bad one are written (the file is abandoned anyway).
    pub(crate) fn write_batch(&mut self, batch: &[u8]) -> Result<(), WriteError> {
        for (index, kv) in mr_codec::kvs(batch).enumerate() {
            let (key, value) = kv.map_err(WriteError::Malformed)?;
            let refused = |why: String| WriteError::Refused {
                index,
                key: shown(key),
                why,
            };
            match self.format {
                FileFormat::Text => {
                    if let Some(what) = text_problem(key, value) {
                        return Err(refused(format!(
                            "holds {what}; the text sink writes one `key<TAB>value` line per record and cannot hold it (the line would split): use --sink jsonl, which escapes it"
                        )));
                    }
                    if !key.is_empty() {
                        self.write(key)?;
                        self.write(b"\t")?;
                    }
                    self.write(value)?;
                    self.write(b"\n")?;
                }
                FileFormat::Jsonl => {
                    let parsed = json(value).map_err(refused)?;
                    if value.contains(&b'\n') {
                        // A value spread over lines would break the one-value-per-line format.
                        let compact = serde_json::to_vec(&parsed).expect("JSON into a Vec");
                        self.write(&compact)?;
                    } else {
                        self.write(value)?;
                    }
                    self.write(b"\n")?;
                }
                FileFormat::JsonlKv => {
                    self.write(&kv_line(key, value))?;
                    self.write(b"\n")?;
                }
                FileFormat::Records { objects } => {
                    if objects && !json(value).map_err(refused)?.is_object() {
                        return Err(refused("is not a JSON object (the SQLite sink's shape=object takes its columns from one)".into()));
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

#[cfg(test)]
mod tests {
    use super::kv_line;

    #[test]
    fn kv_lines_embed_json_values_and_quote_the_rest() {
        let line =
            |k: &str, v: &str| String::from_utf8(kv_line(k.as_bytes(), v.as_bytes())).unwrap();
        assert_eq!(line("a", "3"), r#"{"key":"a","value":3}"#);
        assert_eq!(
            line("a\"b", " {\"x\": [1]} "),
            r#"{"key":"a\"b","value":{"x": [1]}}"#
        );
        assert_eq!(line("k", "{\n\"x\":1\n}"), r#"{"key":"k","value":{"x":1}}"#);
        assert_eq!(
            line("", "plain\ttext"),
            r#"{"key":"","value":"plain\ttext"}"#
        );
        assert_eq!(line("", ""), r#"{"key":"","value":""}"#);
    }
}
