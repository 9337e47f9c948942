//! `mr-store`: the durable state of jobs, behind one interface ([`JobStore`]) with one backend
//! per database: SQLite ([`SqliteStore`], the embedded default: a file) and PostgreSQL (many
//! workers on many hosts). This crate is the only code that writes SQL for the job store.
//!
//! The protocol (docs/protocol.md tells it whole):
//!
//! - A job is planned once ([`JobStore::create_job`]) into **tasks**: one per map shard, one per
//!   reduce partition, and one `finalize` task. The job's **phase** (`map` → `reduce` →
//!   `finalize` → `done`; or `failed`, or `cancelled`) says which kind of task may run; the
//!   commit that finishes the last task of a phase opens the next.
//! - A worker takes a **lease** on a task ([`JobStore::acquire`]): (task, owner, attempt,
//!   expires_at). Taking a pending task, one whose lease expired, or one whose owner is known to
//!   be dead bumps `attempt`; that number is the fencing token. Workers renew their leases with
//!   [`JobStore::heartbeat`]. **Every time is the store's**: the backend's clock decides when a
//!   lease expires and a backoff ends, never a worker's (hosts' clocks disagree).
//! - Every write a worker makes says `... AND attempt = ? AND state = 'leased'` and must change
//!   exactly one row. A paused or zombie worker whose lease was taken over can therefore never
//!   commit: it gets [`StoreError::Fenced`] and nothing it did is recorded. A cancelled job
//!   refuses every commit the same way ([`StoreError::Cancelled`]).
//! - A **slice commit** ([`JobStore::commit_slice`]) is one transaction: the task's new cursor,
//!   the slice row with its counter deltas, its output files, the task's counter totals and,
//!   for a last slice, the task's completion and the phase change. Counters are therefore
//!   counted exactly once, however many attempts ran.
//! - A failed attempt ([`JobStore::fail_attempt`]) keeps its error and signature; the task is
//!   retried after a backoff until it has failed `max_attempts` times (or at once never, for a
//!   deterministic failure), then the job fails with that error. Lease takeovers after a crash
//!   are not failures and do not use up attempts.
//! - **Lifecycle events** ([`EventKind`]) are rows written in the same transaction as the change
//!   they describe.

mod error;
mod failpoint;
mod model;
mod postgres;
mod sqlite;

use std::path::{Path, PathBuf};

pub use error::StoreError;
pub use failpoint::{failpoint, pausepoint};
pub use model::{
    Acquired, AttemptError, Cancelled, CommittedOutput, Event, EventKind, Failure, HookOutcome,
    HookRow, HookState, JobRow, JobStatus, Lease, LeaseRow, NewJob, NewPipeline, Outcome,
    OutputFile, Phase, PipelinePhase, PipelineRow, Retry, SliceCommit, SplitOff, StageRow,
    StageState, StageUpdate, TaskCounts, TaskKind, TaskRow, TaskState,
};
pub use postgres::{PgOptions, PgStore};
pub use sqlite::SqliteStore;

/// The steps of the durable protocol, as one backend implements them. Methods take no time:
/// the store's own clock decides (see the crate documentation).
pub trait JobStore: Send {
    /// The store, for messages: a file path, or a URL without its password.
    fn describe(&self) -> String;

    /// The store's clock, in ms since the epoch.
    fn now_ms(&self) -> Result<i64, StoreError>;

    /// Plans a job: the job row, its tasks and a `job-submitted` event. If a job with the same
    /// fingerprint exists, returns it instead (`false`): rerunning a command resumes its job.
    fn create_job(&mut self, job: &NewJob<'_>) -> Result<(i64, bool), StoreError>;

    /// The job with this fingerprint, if one was planned.
    fn find_job(&self, fingerprint: &str) -> Result<Option<JobRow>, StoreError>;

    /// The job with this id.
    fn job(&self, id: i64) -> Result<JobRow, StoreError>;

    /// Every job, oldest first.
    fn jobs(&self) -> Result<Vec<JobRow>, StoreError>;

    /// Replaces a job's plan (a rerun changed an allowance; `detail` says which), with a
    /// `job-settings-changed` event.
    fn update_plan(&mut self, id: i64, spec: &str, detail: &str) -> Result<(), StoreError>;

    /// Deletes a job and everything recorded about it.
    fn delete_job(&mut self, id: i64) -> Result<(), StoreError>;

    /// Makes a failed job runnable again: its failed tasks go back to pending with their
    /// failure count reset (the errors stay). Returns whether the job had failed.
    fn reset_failed(&mut self, id: i64) -> Result<bool, StoreError>;

    /// Cancels a running job: its phase becomes `cancelled`, and from then on every commit,
    /// heartbeat and lease of its tasks is refused.
    fn cancel_job(&mut self, id: i64) -> Result<Cancelled, StoreError>;

    /// Leases the next runnable task of the job's current phase: a pending one past its
    /// backoff, one whose lease expired, or one whose owner `is_dead` says is gone.
    fn acquire(
        &mut self,
        job: i64,
        owner: &str,
        lease_ms: i64,
        is_dead: &dyn Fn(&str) -> bool,
    ) -> Result<Acquired, StoreError>;

    /// Extends a lease to now + `lease_ms`; fails with [`StoreError::Fenced`] when it was lost
    /// and [`StoreError::Cancelled`] when the job was cancelled.
    fn heartbeat(&mut self, lease: &Lease, lease_ms: i64) -> Result<(), StoreError>;

    /// Asks the owner of leased map task `idx` to give part of its unread input to a new task
    /// (an idle worker found nothing pending). The owner polls [`JobStore::split_wanted`] and
    /// answers at its next slice commit ([`SliceCommit::split`]), so the split is fenced by its
    /// lease and cut past what it has read. Returns whether the request was recorded (the task
    /// is leased and no request is pending).
    fn request_split(&mut self, job: i64, idx: u32) -> Result<bool, StoreError>;

    /// Whether a split of `lease`'s task was requested and not yet answered (a read).
    fn split_wanted(&self, lease: &Lease) -> Result<bool, StoreError>;

    /// Records that a slice started (a lifecycle event; no state changes).
    fn slice_started(&mut self, lease: &Lease) -> Result<(), StoreError>;

    /// Commits one slice in one transaction (see [`SliceCommit`]); with `last`, the task is
    /// done and, if it was its phase's last, the next phase opens. Refused, with nothing
    /// written, when the lease was lost, the job cancelled, or the counter cap exceeded. On
    /// success the lease's cursor and slice count move on. Returns the index of the task split
    /// off, when the commit carried a split that was still wanted (the lease's bounds then
    /// become the kept part).
    fn commit_slice(
        &mut self,
        lease: &mut Lease,
        commit: &SliceCommit<'_>,
    ) -> Result<Option<u32>, StoreError>;

    /// Records a failed attempt. The task goes back to pending, runnable again after the
    /// backoff, or, with [`Retry::Never`] or once it has failed `max_attempts` times, to
    /// failed, and the job with it. Returns whether it will be retried.
    fn fail_attempt(&mut self, lease: &Lease, failure: &Failure<'_>) -> Result<bool, StoreError>;

    /// The signature of the task's most recent failed attempt before `lease`'s, if any.
    fn previous_failure(&self, lease: &Lease) -> Result<Option<String>, StoreError>;

    /// Records that a commit (or heartbeat) of `lease` was refused because the lease was lost
    /// or the job cancelled.
    fn record_refusal(&mut self, lease: &Lease, what: &str) -> Result<(), StoreError>;

    /// Every committed output of the job's tasks of `kind`, in input order: by planned shard,
    /// the position of a split-off task within it, then slice and path.
    fn outputs(&self, job: i64, kind: TaskKind) -> Result<Vec<CommittedOutput>, StoreError>;

    /// The job's counters: every task's committed totals, summed, by name.
    fn job_counters(&self, job: i64) -> Result<Vec<(String, i64)>, StoreError>;

    /// The status of job `id`, with up to `events` recent events.
    fn status(&self, id: i64, events: u32) -> Result<JobStatus, StoreError>;

    /// Every task of job `id` with its committed counters, in (kind, index) order.
    fn tasks(&self, id: i64) -> Result<Vec<TaskRow>, StoreError>;

    /// Events of job `id` with a sequence number above `after`: the last `limit` of them,
    /// oldest first.
    fn events(&self, id: i64, after: i64, limit: u32) -> Result<Vec<Event>, StoreError>;

    /// Claims the delivery of completion hook `name` of job `job` for `owner`, for `lease_ms`:
    /// `Some(attempt)` when the caller should deliver it now; `None` when it was delivered or
    /// given up, is waiting out a retry backoff, or another claim on it is live. So a hook is
    /// delivered once, whichever of many processes watches the job.
    fn claim_hook(
        &mut self,
        job: i64,
        name: &str,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Option<u32>, StoreError>;

    /// Records how the claimed attempt `attempt` at hook `name` of job `job` went (with a
    /// `hook-delivered` or `hook-failed` event). A stale attempt's result is ignored.
    fn finish_hook(
        &mut self,
        job: i64,
        name: &str,
        attempt: u32,
        outcome: HookOutcome,
        detail: &str,
    ) -> Result<(), StoreError>;

    /// The job's completion hooks.
    fn hooks(&self, job: i64) -> Result<Vec<HookRow>, StoreError>;

    /// Keeps a job component's bytes under their SHA-256 (a no-op when it is there already),
    /// so workers on any host can load the job from the store alone.
    fn put_component(&mut self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError>;

    /// A component's bytes by SHA-256, if the store keeps it.
    fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Records a pipeline, or finds the one recorded for the same output (`false`), and starts
    /// a run of it: it is `running`, its definition is replaced, stages no longer in it are
    /// forgotten, and every stage is `waiting`, keeping the fingerprint and job it recorded
    /// (they decide whether its output is reused).
    fn put_pipeline(&mut self, pipeline: &NewPipeline<'_>) -> Result<(i64, bool), StoreError>;

    /// The pipeline with this id.
    fn pipeline(&self, id: i64) -> Result<PipelineRow, StoreError>;

    /// Every pipeline, oldest first.
    fn pipelines(&self) -> Result<Vec<PipelineRow>, StoreError>;

    /// The pipeline's stages, by name.
    fn stages(&self, pipeline: i64) -> Result<Vec<StageRow>, StoreError>;

    /// Claims stage `name` of `pipeline` for `owner` for `lease_ms`, to plan its job:
    /// `Some(claim)` when the caller should do it now; `None` while another claim on it is
    /// live, unless its holder is `dead_owner` (known to be gone). So one process plans a
    /// stage, whichever of many advance the pipeline.
    fn claim_stage(
        &mut self,
        pipeline: i64,
        name: &str,
        owner: &str,
        lease_ms: i64,
        dead_owner: Option<&str>,
    ) -> Result<Option<u32>, StoreError>;

    /// Changes stage `name` of `pipeline`. With `claim`, only if that claim is still the
    /// stage's latest (and it is released); without, unconditionally; either way only if its
    /// job is still [`StageUpdate::if_job`] when that is set. Returns whether the stage changed.
    fn update_stage(
        &mut self,
        pipeline: i64,
        name: &str,
        claim: Option<u32>,
        update: &StageUpdate<'_>,
    ) -> Result<bool, StoreError>;

    /// Ends a pipeline (`done` or `failed`, with why) or reopens it (`running`).
    fn set_pipeline_phase(
        &mut self,
        id: i64,
        phase: PipelinePhase,
        error: Option<&str>,
    ) -> Result<(), StoreError>;
}

/// Where a job store is: what `--db` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A SQLite file (created if needed).
    Sqlite(PathBuf),
    /// A PostgreSQL database, `postgres://user[:password]@host[:port]/db[?options]`.
    Postgres(String),
}

impl StoreLocation {
    /// Reads a `--db` argument: a `postgres://` (or `postgresql://`) URL, else a file path.
    pub fn parse(given: &str) -> StoreLocation {
        if given.starts_with("postgres://") || given.starts_with("postgresql://") {
            StoreLocation::Postgres(given.to_owned())
        } else {
            StoreLocation::Sqlite(PathBuf::from(given))
        }
    }

    /// A SQLite file.
    pub fn file(path: &Path) -> StoreLocation {
        StoreLocation::Sqlite(path.to_owned())
    }

    /// The SQLite file, if this is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            StoreLocation::Sqlite(p) => Some(p),
            StoreLocation::Postgres(_) => None,
        }
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Sqlite(p) => write!(f, "{}", p.display()),
            StoreLocation::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

/// A URL with its password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(parts) => parts,
        None => return url.to_owned(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Opens (creating or migrating as needed) the store at `location`.
pub fn open(location: &StoreLocation) -> Result<Box<dyn JobStore>, StoreError> {
    match location {
        StoreLocation::Sqlite(path) => Ok(Box::new(SqliteStore::open(path)?)),
        StoreLocation::Postgres(url) => Ok(Box::new(PgStore::open(url)?)),
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod tests;

#[cfg(test)]
use sqlite::MIGRATION_1_FOR_TESTS;
