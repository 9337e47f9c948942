//! The text output writer: one line per record, `key<TAB>value` (or `value` alone when the key is
//! empty). Written under a temporary name and renamed into place when complete, so a part file
//! that exists is whole.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::ExecError;

pub(crate) struct TextWriter {
    tmp: PathBuf,
    path: PathBuf,
    out: BufWriter<File>,
    pub records: u64,
    pub bytes: u64,
}

impl TextWriter {
    pub(crate) fn create(path: &Path) -> Result<Self, ExecError> {
        let tmp = path.with_file_name(format!(
            ".{}.tmp",
            path.file_name().expect("a file name").to_string_lossy()
        ));
        let file = File::create(&tmp).map_err(|source| ExecError::Output {
            path: tmp.clone(),
            source,
        })?;
        Ok(TextWriter {
            tmp,
            path: path.to_owned(),
            out: BufWriter::with_capacity(256 * 1024, file),
            records: 0,
            bytes: 0,
        })
    }

    /// Writes every record of a kv batch.
    pub(crate) fn write_batch(&mut self, batch: &[u8]) -> Result<(), ExecError> {
        for kv in mr_codec::kvs(batch) {
            let (key, value) = kv.map_err(|e| ExecError::Output {
                path: self.path.clone(),
                source: std::io::Error::other(format!("the job returned a {e}")),
            })?;
            let r = if key.is_empty() {
                self.out
                    .write_all(value)
                    .and_then(|_| self.out.write_all(b"\n"))
            } else {
                self.out
                    .write_all(key)
                    .and_then(|_| self.out.write_all(b"\t"))
                    .and_then(|_| self.out.write_all(value))
                    .and_then(|_| self.out.write_all(b"\n"))
            };
            r.map_err(|source| ExecError::Output {
                path: self.tmp.clone(),
                source,
            })?;
            self.records += 1;
            self.bytes += (key.len() + value.len() + 1 + usize::from(!key.is_empty())) as u64;
        }
        Ok(())
    }

    /// Flushes, fsyncs and renames the file into place.
    pub(crate) fn commit(self) -> Result<(u64, u64, PathBuf), ExecError> {
        let TextWriter {
            tmp,
            path,
            out,
            records,
            bytes,
        } = self;
        let err = |source| ExecError::Output {
            path: tmp.clone(),
            source,
        };
        let file = out.into_inner().map_err(|e| err(e.into_error()))?;
        file.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)?;
        Ok((records, bytes, path))
    }
}

/// `part-00042`.
pub(crate) fn part_name(index: u32) -> String {
    format!("part-{index:05}")
}
