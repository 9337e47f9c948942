//! The text output writer: one line per record, `key<TAB>value` (or `value` alone when the key is
//! empty). Written under a temporary name, fsynced and renamed into place when complete, so a
//! file that exists under its real name is whole; its SHA-256 is computed while writing.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::ExecError;

pub(crate) struct TextWriter {
    tmp: PathBuf,
    path: PathBuf,
    out: BufWriter<File>,
    hash: Sha256,
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
            if !key.is_empty() {
                self.write(key)?;
                self.write(b"\t")?;
            }
            self.write(value)?;
            self.write(b"\n")?;
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
