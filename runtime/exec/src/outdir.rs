//! Where a job's output goes: a local directory, or a prefix in object storage
//! (`s3://bucket/out/`), and how each file gets there.
//!
//! Tasks always write their files locally first (a local output's own `_mr/work`, or a worker's
//! scratch directory for object storage) under attempt-unique names, and the job store records
//! each committed file by its name relative to the output (`_mr/work/NAME`). For object
//! storage:
//! - a committed file is uploaded under that name before its slice commits
//!   ([`OutputDir::publish_work`]), so a reducer on any host can read it
//!   ([`OutputDir::fetch`] downloads it into the reader's scratch);
//! - object stores have no rename: finalize copies each committed reduce output to its final
//!   `part-NNNNN` ([`OutputDir::place`]), uploads what it composed, and writes `_MANIFEST` last:
//!   a reader that trusts `_MANIFEST` never sees a half-written job.

use std::io::Read;
use std::path::{Path, PathBuf};

use mr_io::objects::{Location, ObjectError};
use sha2::{Digest, Sha256};

use crate::{ExecError, STATE_DIR};

/// A job's output location.
#[derive(Debug, Clone)]
pub(crate) enum OutputDir {
    /// A local directory.
    Local(PathBuf),
    /// A prefix in object storage.
    Object(Location),
}

/// Object storage failures of the output, as output errors naming the URL.
pub(crate) fn object_error(e: ObjectError) -> ExecError {
    ExecError::Output {
        path: PathBuf::from(&e.url),
        source: std::io::Error::other(e.what()),
    }
}

impl OutputDir {
    /// The output a plan names (a path, or an object storage URL).
    pub(crate) fn of(output: &Path) -> Result<OutputDir, ExecError> {
        match output.to_str().filter(|o| mr_io::objects::is_url(o)) {
            Some(url) => Ok(OutputDir::Object(
                Location::parse(url.trim_end_matches('/')).map_err(object_error)?,
            )),
            None => Ok(OutputDir::Local(output.to_owned())),
        }
    }

    /// Where output file `name` is (a path or a URL), for summaries and messages.
    pub(crate) fn show(&self, name: &str) -> PathBuf {
        match self {
            OutputDir::Local(dir) => dir.join(name),
            OutputDir::Object(prefix) => PathBuf::from(prefix.join(name).url()),
        }
    }

    /// The directory where this worker writes the job's work files: a local output's own
    /// `_mr/work`, or `scratch/JOB` for object storage.
    pub(crate) fn work_dir(&self, scratch: &Path, job_key: &str) -> PathBuf {
        match self {
            OutputDir::Local(dir) => dir.join(STATE_DIR).join("work"),
            OutputDir::Object(_) => scratch.join(job_key).join("work"),
        }
    }

    /// Makes a work file this worker wrote (`local`, to be committed as `rel`) readable by
    /// every worker: nothing to do locally; an upload for object storage.
    pub(crate) fn publish_work(&self, local: &Path, rel: &str) -> Result<(), ExecError> {
        match self {
            OutputDir::Local(_) => Ok(()),
            OutputDir::Object(prefix) => prefix
                .join(rel)
                .upload(local)
                .map(|_| ())
                .map_err(object_error),
        }
    }

    /// A local path to read committed file `rel` from: in place, or downloaded into
    /// `cache` (once) for object storage.
    pub(crate) fn fetch(&self, rel: &str, cache: &Path) -> Result<PathBuf, ExecError> {
        match self {
            OutputDir::Local(dir) => Ok(dir.join(rel)),
            OutputDir::Object(prefix) => {
                let name = rel.rsplit('/').next().unwrap_or(rel);
                let local = cache.join("fetched").join(name);
                if !local.is_file() {
                    let dir = local.parent().expect("a file in a directory");
                    std::fs::create_dir_all(dir).map_err(|source| ExecError::Output {
                        path: dir.to_owned(),
                        source,
                    })?;
                    prefix.join(rel).download(&local).map_err(object_error)?;
                }
                Ok(local)
            }
        }
    }

    /// Puts the committed work file `rel` (SHA-256 `checksum`) in place as output file `name`.
    /// Idempotent, so a finalize that crashed half way is simply run again: locally a file
    /// already renamed is recognised by its checksum; in object storage the copy is repeated.
    pub(crate) fn place(&self, rel: &str, name: &str, checksum: &str) -> Result<(), ExecError> {
        match self {
            OutputDir::Local(dir) => {
                let (source, dest) = (dir.join(rel), dir.join(name));
                if source.exists() {
                    return std::fs::rename(&source, &dest)
                        .map_err(|source| ExecError::Output { path: dest, source });
                }
                let io = |source| ExecError::Output {
                    path: dest.clone(),
                    source,
                };
                if file_sha256(&dest).map_err(io)?.as_deref() != Some(checksum) {
                    return Err(ExecError::Output {
                        path: source,
                        source: std::io::Error::other(format!(
                            "the committed output is missing, and {} does not hold it",
                            dest.display()
                        )),
                    });
                }
                Ok(())
            }
            OutputDir::Object(prefix) => prefix
                .join(rel)
                .copy_to(&prefix.join(name))
                .map_err(object_error),
        }
    }

    /// The local path where finalize writes output file `name`: in place for a local output;
    /// in `staging` (then [`OutputDir::publish`]ed) for object storage.
    pub(crate) fn staging(&self, name: &str, staging: &Path) -> PathBuf {
        match self {
            OutputDir::Local(dir) => dir.join(name),
            OutputDir::Object(_) => staging.join(name),
        }
    }

    /// Publishes output file `name`, written at [`OutputDir::staging`]: already in place
    /// locally; uploaded for object storage.
    pub(crate) fn publish(&self, name: &str, local: &Path) -> Result<(), ExecError> {
        match self {
            OutputDir::Local(_) => Ok(()),
            OutputDir::Object(prefix) => prefix
                .join(name)
                .upload(local)
                .map(|_| ())
                .map_err(object_error),
        }
    }

    /// Makes the renames in a local output durable (fsync of the directory).
    pub(crate) fn sync(&self) -> Result<(), ExecError> {
        match self {
            OutputDir::Local(dir) => crate::writer::sync_dir(dir),
            OutputDir::Object(_) => Ok(()),
        }
    }

    /// Removes a finished job's work files in object storage (`_mr/work/`). They are no longer
    /// referenced; failing to remove them costs storage only, so it is a warning.
    pub(crate) fn remove_work(&self) {
        if let OutputDir::Object(prefix) = self {
            let work = prefix.join(&format!("{STATE_DIR}/work"));
            let removed = work.list().and_then(|objects| {
                objects
                    .iter()
                    .try_for_each(|o| Location::parse(&o.url)?.delete())
            });
            if let Err(e) = removed {
                tracing::warn!("cannot remove the job's work files: {e}");
            }
        }
    }
}

/// SHA-256 of a file, `None` when it does not exist.
pub(crate) fn file_sha256(path: &Path) -> std::io::Result<Option<String>> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(Some(mr_engine::hex(&hash.finalize())))
}
