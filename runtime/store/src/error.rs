//! Store errors: each names the store and the job, task or attempt it concerns.

use crate::model::{Lease, Phase, TaskKind};

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (SQLite, or PostgreSQL after its retries).
    #[error("job store {store}: {message}")]
    Database {
        /// The store (file or URL without password).
        store: String,
        /// What the database said.
        message: String,
        /// The database's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The lease was taken over (or the task finished): this worker's write was refused.
    #[error(
        "{kind} task {idx} of job {job}: attempt {attempt} no longer holds the lease; its commit was refused"
    )]
    Fenced {
        /// Job id.
        job: i64,
        /// The task's kind.
        kind: TaskKind,
        /// Task index.
        idx: u32,
        /// The stale attempt.
        attempt: u32,
    },
    /// The job was cancelled: nothing more of it is committed.
    #[error(
        "job {job} was cancelled: {kind} task {idx}, attempt {attempt}, stops and its work is discarded"
    )]
    Cancelled {
        /// Job id.
        job: i64,
        /// The task's kind.
        kind: TaskKind,
        /// Task index.
        idx: u32,
        /// The attempt.
        attempt: u32,
    },
    /// The database was written by a newer mr.
    #[error(
        "job store {store} has schema version {found}, newer than this mr-host supports ({supported}); use a newer mr-host"
    )]
    TooNew {
        /// The store.
        store: String,
        /// Version in the store.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The store's schema is not one this build wrote (a half-applied migration, or another
    /// program's tables).
    #[error("job store {store} is not a usable mr store: {message}")]
    Unusable {
        /// The store.
        store: String,
        /// What is wrong.
        message: String,
    },
    /// A slice commit would take the job past its cap on distinct counter names.
    #[error(
        "job {job} would have {count} distinct counter names with this slice's (e.g. `{example}`), more than its cap of {cap}; a job that names counters after its data floods status and _MANIFEST: use fewer names, or raise the cap with --max-counters"
    )]
    TooManyCounters {
        /// Job id.
        job: i64,
        /// Distinct names with this slice.
        count: u32,
        /// The cap.
        cap: u32,
        /// One of the slice's new names.
        example: String,
    },
    /// No job with this id.
    #[error("job store {store} has no job {job}")]
    NoSuchJob {
        /// The store.
        store: String,
        /// The id asked for.
        job: i64,
    },
    /// No pipeline with this id.
    #[error("job store {store} has no pipeline {pipeline}")]
    NoSuchPipeline {
        /// The store.
        store: String,
        /// The id asked for.
        pipeline: i64,
    },
    /// The `--db` argument is not a store this build can open.
    #[error("--db {given:?}: {message}")]
    BadLocation {
        /// What was given.
        given: String,
        /// What is wrong.
        message: String,
    },
}

impl StoreError {
    /// Whether the write was refused because the lease was lost or the job cancelled: the
    /// worker's attempt is over, but nothing is wrong with the job or the store.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StoreError::Fenced { .. } | StoreError::Cancelled { .. }
        )
    }
}

impl StoreError {
    /// The refusal of a write by `lease` whose lease was lost.
    pub(crate) fn fenced(lease: &Lease) -> StoreError {
        StoreError::Fenced {
            job: lease.job,
            kind: lease.kind,
            idx: lease.idx,
            attempt: lease.attempt,
        }
    }

    /// The refusal of a write by `lease` that changed no row, given the job's phase (if it
    /// could be read): a cancellation, else a lost lease.
    pub(crate) fn refusal(lease: &Lease, phase: Option<Phase>) -> StoreError {
        if phase == Some(Phase::Cancelled) {
            StoreError::Cancelled {
                job: lease.job,
                kind: lease.kind,
                idx: lease.idx,
                attempt: lease.attempt,
            }
        } else {
            StoreError::fenced(lease)
        }
    }
}
