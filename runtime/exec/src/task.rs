//! What every task kind (map, reduce, finalize) runs with: the job as a worker holds it, the
//! task's lease and instance, how a task ends early ([`TaskError`]), the guest-failure and
//! output-failure constructors, and the files a slice wrote until its commit. The phases build
//! on this module; it imports nothing from them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mr_engine::{GuestError, Instance, JobComponent, LifecycleEvent, TaskIdentity};
use mr_store::{JobStore, Lease, OutputFile, StoreError};

use crate::error::Step;
use crate::outdir::OutputDir;
use crate::spec::JobSpec;
use crate::writer::{WriteError, WrittenFile};
use crate::{ExecError, Progress, ProgressSink};

/// A job as a worker process holds it: its plan, its loaded component, where its output goes
/// and where this worker writes its files.
pub(crate) struct JobContext {
    pub id: i64,
    pub spec: JobSpec,
    pub component: Arc<JobComponent>,
    pub reduce_announced: AtomicBool,
    /// The output (local, or object storage).
    pub out: OutputDir,
    /// Where this worker writes the job's work files (see [`OutputDir::work_dir`]).
    pub work_dir: PathBuf,
}

/// What a worker process gives every task it runs.
pub(crate) struct TaskEnv {
    /// Where progress goes, if anywhere.
    pub progress: Option<ProgressSink>,
    /// One worker thread's share of the shuffle's memory budget, in bytes.
    pub memory_share: usize,
    /// Where map tasks offer idle threads batches to map (see [`crate::help`]); `None` with
    /// `--no-split`.
    pub help: Option<crate::help::Board>,
}

/// Everything a running task needs.
pub(crate) struct Task<'a> {
    pub env: &'a TaskEnv,
    pub job: &'a JobContext,
    pub store: &'a mut dyn JobStore,
    pub instance: &'a mut Instance,
    pub lease: &'a mut Lease,
    /// Set when the lease was lost or the job cancelled: the task stops at its next batch.
    pub lost: &'a AtomicBool,
}

/// Why a task ended early.
pub(crate) enum TaskError {
    /// The lease was lost or the job cancelled: the store refused the commit (or the task
    /// noticed first). Not a failure of the job.
    Refused(String),
    /// The attempt failed; retry it (or not, when the failure is deterministic).
    Failed(ExecError),
    /// The store itself failed: stop this worker.
    Store(StoreError),
}

impl TaskError {
    /// Marks a guest failure as deterministic (see [`ExecError::is_deterministic`]).
    pub(crate) fn deterministic(mut self, yes: bool) -> Self {
        if let TaskError::Failed(ExecError::Guest { deterministic, .. }) = &mut self {
            *deterministic = yes;
        }
        self
    }
}

impl From<StoreError> for TaskError {
    fn from(e: StoreError) -> Self {
        if e.is_refusal() {
            TaskError::Refused(e.to_string())
        } else if let StoreError::TooManyCounters { .. } = e {
            // A cap the job exceeded: the job's failure, not the store's.
            TaskError::Failed(e.into())
        } else {
            TaskError::Store(e)
        }
    }
}

impl From<ExecError> for TaskError {
    fn from(e: ExecError) -> Self {
        TaskError::Failed(e)
    }
}

impl From<mr_io::InputError> for TaskError {
    fn from(e: mr_io::InputError) -> Self {
        TaskError::Failed(e.into())
    }
}

impl From<mr_shuffle::ShuffleError> for TaskError {
    fn from(e: mr_shuffle::ShuffleError) -> Self {
        TaskError::Failed(e.into())
    }
}

impl Task<'_> {
    pub(crate) fn progress(&self, p: Progress) {
        if let Some(sink) = &self.env.progress {
            sink(p);
        }
    }

    /// Whether the task should stop at its next batch (lease lost, job cancelled).
    pub(crate) fn stopped(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Points the guest's `task()` at the current step and slice.
    pub(crate) fn set_identity(&mut self, step: Step, slice: u32) {
        self.instance
            .set_task(identity(self.job, self.lease, step, slice));
    }

    /// Tells a job that wants lifecycle events that something is starting; a guest failure
    /// fails the attempt, like any other guest failure.
    pub(crate) fn notify_start(&mut self, event: LifecycleEvent) -> Result<(), TaskError> {
        self.instance
            .notify(event)
            .map_err(|e| guest_error(self, Step::of(self.lease.kind), None, e))
    }

    /// Tells a job that wants lifecycle events that something was committed. The work is done
    /// whatever the guest says, so a failure is only logged.
    pub(crate) fn notify_done(&mut self, event: LifecycleEvent) {
        if let Err(e) = self.instance.notify(event) {
            tracing::warn!(
                "the job failed handling {event:?} (ignored: the work is committed): {}",
                crate::error_chain(&e)
            );
        }
    }

    pub(crate) fn announce_reduce(&self) {
        if !self.job.reduce_announced.swap(true, Ordering::Relaxed) {
            self.progress(Progress::ReduceStarted {
                partitions: self.job.spec.reducers,
            });
        }
    }

    /// The name the store records for a work file: relative to the output (`_mr/work/NAME`),
    /// so the output can be moved as a whole between runs, and every worker finds it
    /// whatever its own work directory.
    pub(crate) fn relative(&self, path: &Path) -> String {
        let name = path.file_name().map_or_else(
            || path.to_string_lossy().into_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        format!("{}/work/{name}", crate::STATE_DIR)
    }

    /// Publishes the work files of a slice about to commit (see [`OutputDir::publish_work`]).
    pub(crate) fn publish(&self, files: &SliceFiles) -> Result<(), ExecError> {
        for (_, name, output) in &files.pending {
            self.job.out.publish_work(name, &output.path)?;
        }
        Ok(())
    }
}

/// What the guest's `task()` returns for this lease, step and slice.
pub(crate) fn identity(job: &JobContext, lease: &Lease, step: Step, slice: u32) -> TaskIdentity {
    TaskIdentity {
        job: format!("{}#{}", job.spec.name, job.id),
        phase: step.as_str(),
        shard: lease.idx,
        slice,
        attempt: lease.attempt,
    }
}

/// A guest failure of this task at `step`, with the input location where known.
pub(crate) fn guest_error(
    task: &Task<'_>,
    step: Step,
    location: Option<String>,
    error: GuestError,
) -> TaskError {
    TaskError::Failed(ExecError::Guest {
        job: task.job.spec.name.clone(),
        step,
        index: task.lease.idx,
        slice: (step != Step::Reduce).then_some(task.lease.slices),
        attempt: task.lease.attempt,
        location,
        error: Box::new(error),
        deterministic: false,
    })
}

/// A batch of job output that could not be written: a disk error as it is; a malformed batch
/// or a record the sink cannot hold as the job's failure, at `location`.
pub(crate) fn write_failure(
    task: &Task<'_>,
    step: Step,
    location: Option<String>,
    error: WriteError,
) -> TaskError {
    match error {
        WriteError::Io(e) => TaskError::Failed(e),
        WriteError::Malformed(e) => guest_error(
            task,
            step,
            location,
            GuestError::protocol(format!("the job's {step} output is malformed: {e}")),
        )
        .deterministic(true),
        WriteError::Refused { index, key, why } => TaskError::Failed(ExecError::OutputRecord {
            message: format!(
                "record {} of the job's {step} output{} (key {key}) {why}",
                index + 1,
                location.map(|l| format!(" for {l}")).unwrap_or_default()
            ),
        }),
    }
}

/// Files one slice wrote: each as (written, final name, what the store records).
#[derive(Default)]
pub(crate) struct SliceFiles {
    pub(crate) pending: Vec<(PathBuf, PathBuf, OutputFile)>,
    /// Everything that may exist on disk, to remove if the slice is abandoned.
    pub(crate) created: Vec<PathBuf>,
}

impl SliceFiles {
    /// Adds a text file already written and renamed into place (it needs no rename at commit).
    pub(crate) fn push_written(&mut self, task: &Task<'_>, written: WrittenFile, part: u32) {
        let output = OutputFile {
            path: task.relative(&written.path),
            part,
            bytes: written.bytes,
            records: written.records,
            checksum: written.sha256,
        };
        self.pending
            .push((written.path.clone(), written.path, output));
    }

    /// Renames every file written under a temporary name to its final name.
    pub(crate) fn rename_all(&mut self) -> Result<(), ExecError> {
        for (written, name, _) in &self.pending {
            if written != name {
                std::fs::rename(written, name).map_err(|source| ExecError::Output {
                    path: name.clone(),
                    source,
                })?;
            }
            self.created.push(name.clone());
        }
        Ok(())
    }

    /// What the store records of the slice's files.
    pub(crate) fn outputs(&self) -> Vec<OutputFile> {
        self.pending.iter().map(|p| p.2.clone()).collect()
    }

    /// Removes what an abandoned or refused slice wrote; nothing refers to it.
    pub(crate) fn remove_all(&mut self) {
        for path in self
            .created
            .drain(..)
            .chain(self.pending.drain(..).map(|p| p.0))
        {
            remove(&path);
        }
    }
}

/// Removes a file nothing refers to; failing to costs disk space only, so it is a warning.
pub(crate) fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("cannot remove abandoned file {}: {e}", path.display());
    }
}
