//! Run errors: each names the job, phase, shard or partition, slice and attempt and, for guest
//! failures, the input record's location and the guest's own words.

use std::path::PathBuf;

use mr_engine::GuestError;

/// Why a job (or a task of it) failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Input resolution, planning or reading failed.
    #[error(transparent)]
    Input(#[from] mr_io::InputError),
    /// A run file could not be written or read back.
    #[error(transparent)]
    Shuffle(#[from] mr_shuffle::ShuffleError),
    /// The job store failed.
    #[error("{message}")]
    Store {
        /// What failed.
        message: String,
    },
    /// Loading the job's component failed.
    #[error(transparent)]
    Engine(#[from] mr_engine::EngineError),
    /// The output directory already holds files.
    #[error(
        "output directory {} is not empty; choose a new directory or pass --overwrite to replace its contents",
        path.display()
    )]
    OutputNotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// The store has another job writing to the same output directory.
    #[error(
        "output directory {} belongs to job {id} (`{name}`), planned from a different component, parameters or inputs; pass --overwrite to discard it, or choose another output directory",
        path.display()
    )]
    OutputTaken {
        /// The directory.
        path: PathBuf,
        /// The other job.
        id: i64,
        /// Its name.
        name: String,
    },
    /// A rerun asked for a different setting than the job was planned with.
    #[error(
        "job {id} was planned with {flag} {planned}, not {given}; rerun with {flag} {planned} (or without it) to resume, or pass --overwrite to start over"
    )]
    SettingChanged {
        /// The job.
        id: i64,
        /// The flag.
        flag: &'static str,
        /// Planned value.
        planned: String,
        /// Value given now.
        given: String,
    },
    /// The component file changed since the job was planned.
    #[error(
        "job {id}: component {} changed since the job was planned (SHA-256 {planned}, now {found}); restore it, or rerun with --overwrite to start the job over",
        path.display()
    )]
    ComponentChanged {
        /// The job.
        id: i64,
        /// The component file.
        path: PathBuf,
        /// Planned digest.
        planned: String,
        /// Digest now.
        found: String,
    },
    /// An input file changed since the job was planned.
    #[error(
        "job {id}: input {path} changed since the job was planned ({what}); restore it, or rerun with --overwrite to start the job over"
    )]
    InputChanged {
        /// The job.
        id: i64,
        /// The input as named.
        path: String,
        /// Size or time, before and now.
        what: String,
    },
    /// Writing output failed.
    #[error("cannot write {}: {source}", path.display())]
    Output {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The job produced a record its sink cannot take (invalid JSON for a JSONL sink).
    #[error("{message}")]
    OutputRecord {
        /// Which record, and why.
        message: String,
    },
    /// More bad input records than `--max-bad-records` allows.
    #[error(
        "{count} bad input records, more than --max-bad-records {max}; the last, at {location}: {reason}"
    )]
    TooManyBadRecords {
        /// Bad records seen (committed plus the current slice's).
        count: u64,
        /// The allowance.
        max: u64,
        /// The last bad record's location.
        location: String,
        /// Why it was bad.
        reason: String,
    },
    /// The guest failed.
    #[error(
        "job `{job}` failed in {phase} {unit} {index}{}, attempt {attempt}{}: {error}",
        slice.map(|s| format!(", slice {s}")).unwrap_or_default(),
        location.as_ref().map(|l| format!(", at {l}")).unwrap_or_default()
    )]
    Guest {
        /// Job name.
        job: String,
        /// `map`, `combine` or `reduce`.
        phase: &'static str,
        /// `shard` or `partition`.
        unit: &'static str,
        /// Shard or partition index.
        index: u32,
        /// Slice of the shard (map and combine).
        slice: Option<u32>,
        /// Attempt number.
        attempt: u32,
        /// Where in the input: `path:line`, or the range of a failed batch.
        location: Option<String>,
        /// The guest failure, with its output.
        error: Box<GuestError>,
    },
    /// The job failed (in this process or another) after its retries.
    #[error("job {id} (`{name}`) failed after its retries: {error}")]
    JobFailed {
        /// The job.
        id: i64,
        /// Its name.
        name: String,
        /// The last attempt's error.
        error: String,
    },
    /// The job has not finished (asked for a summary too early).
    #[error("job {id} (`{name}`) has not finished: it is in its {phase} phase")]
    Unfinished {
        /// The job.
        id: i64,
        /// Its name.
        name: String,
        /// Its phase.
        phase: String,
    },
    /// A worker thread panicked (a bug in mr, not in the job).
    #[error("a worker thread panicked (this is a bug in mr-host): {0}")]
    WorkerPanicked(String),
}

impl ExecError {
    /// What kind of failure this is, as the store counts failed attempts: `trap` (with its
    /// kind, e.g. `trap:timeout`), `job-error` (the guest's own report), `protocol`, `input`,
    /// `output`, or `host`.
    pub fn failure_kind(&self) -> String {
        use mr_engine::GuestErrorKind;
        match self {
            ExecError::Guest { error, .. } => match error.kind {
                GuestErrorKind::Trap(kind) => format!("trap:{}", kind.name()),
                GuestErrorKind::JobError => "job-error".into(),
                GuestErrorKind::Protocol => "protocol".into(),
            },
            ExecError::Input(_) => "input".into(),
            ExecError::Shuffle(_) | ExecError::Output { .. } => "output".into(),
            _ => "host".into(),
        }
    }
}

impl From<mr_store::StoreError> for ExecError {
    fn from(e: mr_store::StoreError) -> Self {
        ExecError::Store {
            message: e.to_string(),
        }
    }
}
