//! `mr-exec`: plans jobs into a durable SQLite store and runs their tasks on worker threads, in
//! one process or in many sharing the store.
//!
//! 1. **Submit** ([`submit`]): resolve the inputs, split them into shards at line boundaries
//!    (`mr-io`), and record the job, its plan ([`JobSpec`]) and its tasks in the store
//!    (`mr-store`). The same job (same component, parameters, inputs and output) submitted again
//!    is the same job: rerunning a command resumes it.
//! 2. **Work** ([`work`]): worker threads lease tasks from the store and heartbeat their leases.
//!    - A **map task** reads its shard in *slices* (bounded by bytes, records and seconds). Each
//!      slice's lines go to the guest in flat batches; its output is partitioned by a stable key
//!      hash into sort buffers, sorted, combined (if the job has a combiner) and written as run
//!      files under attempt-specific temporary names, fsynced, renamed to slice-derived names,
//!      and committed in one store transaction with the shard's new cursor and the slice's
//!      counter deltas. A retried shard continues after its last committed slice.
//!    - A **reduce task** (one per partition) k-way merges the committed runs of its partition
//!      (in input order, so a key's values arrive in input order), hands groups to the guest in
//!      batches (a group too large for one batch streams through the WIT `value-stream`), and
//!      commits its output file the same way.
//!    - The **finalize task** moves the committed outputs into place as `part-NNNNN` (for
//!      map-only jobs: composes each shard's slice outputs), writes `_MANIFEST` (files, sizes,
//!      SHA-256 checksums, counters), and only then marks the job done.
//! 3. **Fencing**: every commit names the lease's attempt and must change exactly one row; a
//!    worker whose lease was taken over (it stalled, or was presumed dead) is refused and deletes
//!    what it wrote. Failed attempts are retried with backoff up to `max_attempts`.
//!
//! Output is deterministic: it depends on the input, the parameters and the number of reduce
//! partitions, never on workers, shards, slices, crashes or retries. docs/protocol.md describes
//! the protocol and why a crash at any point is safe.

mod bad;
mod control;
mod counters;
mod error;
mod finalize;
mod help;
mod hooks;
mod map;
mod outdir;
mod output;
mod owner;
mod pipeline;
mod reduce;
mod request;
mod sink;
mod spec;
mod split;
mod status;
mod task;
mod worker;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mr_store::{EventKind, JobRow, JobStore, Phase, StoreLocation, TaskKind};

pub use bad::BAD_RECORDS;
pub use control::{Deleted, cancel, delete};
pub use counters::BUILTIN_COUNTERS;
pub use error::{ExecError, Step, error_chain};
pub use hooks::{HookPolicy, NOTIFY, ON_DONE, deliver_hooks};
pub use pipeline::{
    Advanced, Advancer, KeptData, PipelineDef, PipelineStatus, StageDef, StageInput, StageStatus,
    SubmittedPipeline, advance, check_stage_name, pipeline_status, resume_pipeline, run_pipeline,
    submit_pipeline, topological_order,
};
pub use request::SubmitSpec;
pub use sink::{Sink, SqliteMode, SqliteShape};
pub use spec::{DEFAULT_BATCH_BYTES, Hooks, JobRequest, JobSpec, SliceLimits, Submitted, submit};
pub use status::{StatusDocument, TaskView, status_document, task_views};
pub use worker::{DEFAULT_MEMORY, Follow, WorkReport, WorkerOptions, default_scratch, work};

/// Where `run` and `submit` keep the job store when `--db` is not given: inside the output
/// directory, so rerunning the same command finds it.
pub fn default_store_path(output: &Path) -> PathBuf {
    output.join(STATE_DIR).join("state.db")
}

/// The directory (inside the output directory) holding the default store and the work files.
pub const STATE_DIR: &str = "_mr";

/// Progress notifications, for a progress bar.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A job's plan, as the worker found it.
    Planned {
        /// Input bytes.
        bytes: u64,
        /// Input bytes already mapped by committed slices (a resumed job).
        done_bytes: u64,
        /// Shards.
        shards: usize,
    },
    /// Input bytes mapped by a committed slice: bytes of the input files, so compressed bytes
    /// for a compressed file (approximate there, by the decoder's read-ahead).
    Mapped(u64),
    /// The reduce phase started.
    ReduceStarted {
        /// Partitions to reduce.
        partitions: u32,
    },
    /// One partition was reduced and committed.
    PartitionDone,
}

/// Receives [`Progress`] from any worker thread.
pub type ProgressSink = Arc<dyn Fn(Progress) + Send + Sync>;

/// What a finished job reports, read back from the store and its manifest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// The job's id in its store.
    pub id: i64,
    /// The job's name.
    pub job: String,
    /// How it ended: `done`, `failed` or `cancelled` (completion hooks see all three).
    pub phase: Phase,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `mapper-job` or `mapreduce-job`.
    pub world: String,
    /// Input files read.
    pub files: usize,
    /// Input bytes.
    pub input_bytes: u64,
    /// Shards planned.
    pub shards: usize,
    /// Reduce partitions (0 for map-only jobs).
    pub partitions: u32,
    /// Slices committed.
    pub slices: u32,
    /// Attempts started (more than tasks when work was retried or taken over).
    pub attempts: u32,
    /// Built-in counters, exact: each committed slice counted once.
    pub counters: BTreeMap<String, u64>,
    /// Counters incremented by the job itself.
    pub job_counters: BTreeMap<String, i64>,
    /// Output files, in order (none unless the job is done).
    pub outputs: Vec<PathBuf>,
    /// Map phase, first task start to the phase's end (across resumes), in seconds.
    pub map_seconds: f64,
    /// Reduce phase, in seconds.
    pub reduce_seconds: f64,
    /// Submission to completion, in seconds (the job's total, across reruns).
    pub wall_seconds: f64,
    /// The part of it that the command printing this summary spent (`mr-host run` and
    /// `resume`): 0 when the job was already done and nothing was run. Absent elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub this_run_seconds: Option<f64>,
    /// The job was already done when this command started, so nothing was run (set by
    /// `mr-host run` and `resume`; absent elsewhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub already_done: Option<bool>,
}

/// Submits `request` to the store at `db` (see [`submit`]) and works on it with this process's
/// worker threads until it is done; then returns its summary. Rerunning after a crash resumes.
pub fn run(
    db: &StoreLocation,
    request: &JobRequest,
    options: &WorkerOptions,
    progress: Option<ProgressSink>,
) -> Result<Summary, ExecError> {
    let submitted = submit(db, request)?;
    if !submitted.created {
        tracing::info!(
            job = submitted.id,
            "resuming job {} from its committed state",
            submitted.id
        );
    }
    let options = WorkerOptions {
        only_job: Some(submitted.id),
        ..options.clone()
    };
    work(db, &options, &request.job.runtime(), progress)?;
    summary(db, submitted.id)
}

/// The summary of job `id`; an error naming the failure when the job failed, and one saying so
/// when it has not finished. For a finished job it also removes a work directory that a crash
/// right after the final commit left behind.
pub fn summary(db: &StoreLocation, id: i64) -> Result<Summary, ExecError> {
    let store = mr_store::open(db)?;
    let row = store.job(id)?;
    worker::finished(&row)?;
    let spec: JobSpec = JobSpec::parse(&row.spec, id)?;
    if let outdir::OutputDir::Local(_) = outdir::OutputDir::of(&spec.output)? {
        if spec.debug {
            finalize::cleanup_staging(&spec.work_dir());
        } else {
            finalize::cleanup(&spec.work_dir());
        }
    }
    summary_of(store.as_ref(), &row, &spec)
}

/// The summary of the job in `row` (planned as `spec`), whatever its phase.
pub(crate) fn summary_of(
    store: &dyn JobStore,
    row: &JobRow,
    spec: &JobSpec,
) -> Result<Summary, ExecError> {
    let id = row.id;
    let out = outdir::OutputDir::of(&spec.output)?;
    let status = store.status(id, 0)?;
    let (counters, job_counters) = counters::split(store.job_counters(id)?);
    let events = store.events(id, 0, u32::MAX)?;
    let at =
        |pred: &dyn Fn(&mr_store::Event) -> bool| events.iter().find(|e| pred(e)).map(|e| e.at_ms);
    let phase_started = |phase: Phase| {
        at(&|e| e.event == EventKind::PhaseStarted && e.detail.as_deref() == Some(phase.as_str()))
    };
    let map_start = at(&|e| e.event == EventKind::TaskStarted && e.kind == Some(TaskKind::Map));
    let reduce_start = phase_started(Phase::Reduce);
    let finalize_start = phase_started(Phase::Finalize);
    let seconds = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) => (b - a).max(0) as f64 / 1000.0,
        _ => 0.0,
    };
    Ok(Summary {
        id,
        job: row.name.clone(),
        phase: row.phase,
        error: row.error.clone(),
        world: if spec.reducers > 0 {
            "mapreduce-job"
        } else {
            "mapper-job"
        }
        .to_owned(),
        files: spec.files.len(),
        input_bytes: spec.files.iter().map(|f| f.len).sum(),
        shards: spec.shards.len(),
        partitions: spec.reducers,
        slices: status
            .tasks
            .iter()
            .filter(|t| t.kind == TaskKind::Map)
            .map(|t| t.slices)
            .sum(),
        attempts: status.attempts,
        counters,
        job_counters,
        outputs: if row.phase == Phase::Done {
            finalize::output_names(spec)
                .into_iter()
                .map(|n| out.show(&n))
                .collect()
        } else {
            Vec::new()
        },
        map_seconds: seconds(map_start, reduce_start.or(finalize_start)),
        reduce_seconds: seconds(
            reduce_start,
            finalize_start.filter(|_| reduce_start.is_some()),
        ),
        wall_seconds: seconds(Some(row.created_ms), row.finished_ms),
        this_run_seconds: None,
        already_done: None,
    })
}
