//! Job control: cancel a running job, delete a job (its rows, its work files and, when asked,
//! its output). `mr-host cancel` / `delete` and the HTTP API call these.
//!
//! Cancelling is the store's (`JobStore::cancel_job`): from then on every heartbeat, commit
//! and lease of the job is refused, so its workers stop at their next batch boundary (the
//! heartbeat notices within a second), commit nothing more, and finalize never runs: no
//! `_MANIFEST` is written, so no half output looks complete.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mr_store::{Cancelled, StoreLocation};

use crate::finalize::MANIFEST;
use crate::outdir::{OutputDir, object_error};
use crate::spec::JobSpec;
use crate::{BAD_RECORDS, ExecError, STATE_DIR};

/// Cancels job `id`: it becomes `cancelled` unless it had ended already (then nothing
/// changes, and the answer says how it ended).
pub fn cancel(db: &StoreLocation, id: i64) -> Result<Cancelled, ExecError> {
    let mut store = mr_store::open(db)?;
    let cancelled = store.cancel_job(id)?;
    if cancelled == Cancelled::Now {
        tracing::info!(job = id, "job {id} cancelled");
    }
    Ok(cancelled)
}

/// What [`delete`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Deleted {
    /// The job's id.
    pub id: i64,
    /// Whether it was still running and was cancelled first.
    pub cancelled: bool,
    /// Files and directories removed.
    pub removed: Vec<PathBuf>,
}

/// How long [`delete`] waits for the workers of a job it cancelled to let go of its tasks.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Deletes job `id`: its rows in the store and its work files (`OUTPUT/_mr/work`), and with
/// `remove_output` what it wrote to its output directory (its part files, the composed file,
/// `_MANIFEST`, `_bad_records`; the directory itself when nothing else is left in it). Files
/// it did not write are never removed, nor a store inside the output directory. A running job
/// is cancelled first, and its workers get a few seconds to stop.
pub fn delete(db: &StoreLocation, id: i64, remove_output: bool) -> Result<Deleted, ExecError> {
    let mut store = mr_store::open(db)?;
    let row = store.job(id)?;
    let mut deleted = Deleted {
        id,
        ..Default::default()
    };
    if !row.phase.is_over() {
        deleted.cancelled = store.cancel_job(id)? == Cancelled::Now;
        let started = Instant::now();
        while store.status(id, 0)?.leases.iter().any(|l| !l.expired)
            && started.elapsed() < RELEASE_WAIT
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    // An unreadable plan still lets the rows go; only the files stay.
    let spec = JobSpec::parse(&row.spec, id).ok();
    store.delete_job(id)?;
    tracing::info!(job = id, "job {id} deleted");
    let Some(spec) = spec else {
        return Ok(deleted);
    };
    if let OutputDir::Object(prefix) = OutputDir::of(&spec.output)? {
        // In object storage: the shared work files, and with `remove_output` what the job
        // published. Workers' local scratch copies are on their own hosts, removed there
        // when the job ends.
        OutputDir::Object(prefix.clone()).remove_work();
        if remove_output {
            for name in output_files(&spec) {
                let object = prefix.join(&name);
                if object.head().map_err(object_error)?.is_some() {
                    object.delete().map_err(object_error)?;
                    deleted.removed.push(PathBuf::from(object.url()));
                }
            }
        }
        return Ok(deleted);
    }
    let mut remove = |path: PathBuf, dir: bool| {
        let result = if dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match result {
            Ok(()) => {
                deleted.removed.push(path);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ExecError::Output { path, source }),
        }
    };
    remove(spec.work_dir(), true)?;
    // `_mr` itself goes only when empty: it may hold the store.
    let _ = std::fs::remove_dir(spec.output.join(STATE_DIR));
    if remove_output {
        for name in output_files(&spec) {
            remove(spec.output.join(name), false)?;
        }
        if std::fs::remove_dir(&spec.output).is_ok() {
            deleted.removed.push(spec.output.clone());
        }
    }
    Ok(deleted)
}

/// The names of every file a job writes to its output.
fn output_files(spec: &JobSpec) -> Vec<String> {
    crate::finalize::output_names(spec)
        .into_iter()
        .chain(spec.compose.clone())
        .chain([MANIFEST.to_owned(), BAD_RECORDS.to_owned()])
        .collect()
}
