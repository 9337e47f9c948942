//! Run errors: each names the job, phase, shard or partition, slice and attempt and, for guest
//! failures, the input record's location and the guest's own words.

use std::path::PathBuf;

use mr_engine::GuestError;

/// What a guest call was doing: the step of a task it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `map` on a batch of input records.
    Map,
    /// `combine` on a spill's groups.
    Combine,
    /// `reduce` on a partition's groups.
    Reduce,
    /// A lifecycle event of the finalize task.
    Finalize,
}

impl Step {
    /// The step's name, as the guest's `task().phase` and messages give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Map => "map",
            Step::Combine => "combine",
            Step::Reduce => "reduce",
            Step::Finalize => "finalize",
        }
    }

    /// What the task's index counts: map and combine work on a shard, reduce on a partition.
    pub fn unit(self) -> &'static str {
        match self {
            Step::Reduce => "partition",
            Step::Map | Step::Combine => "shard",
            Step::Finalize => "task",
        }
    }

    /// The step a task of `kind` starts with.
    pub fn of(kind: mr_store::TaskKind) -> Step {
        match kind {
            mr_store::TaskKind::Map => Step::Map,
            mr_store::TaskKind::Reduce => Step::Reduce,
            mr_store::TaskKind::Finalize => Step::Finalize,
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    #[error(transparent)]
    Store(#[from] mr_store::StoreError),
    /// A job's stored plan cannot be read.
    #[error("job {id}'s plan cannot be read; it was written by an incompatible mr-host")]
    PlanUnreadable {
        /// The job.
        id: i64,
        /// Why.
        source: serde_json::Error,
    },
    /// `--param` values the job does not accept.
    #[error("{message}")]
    BadParams {
        /// Which parameter, and what the job declares.
        message: String,
    },
    /// A job request's setting is invalid (the message names the flag).
    #[error("{message}")]
    BadSpec {
        /// Which setting, and why.
        message: String,
    },
    /// A path outside the directory the job is confined to.
    #[error("{what} ({}) is outside the data root {}; give a path inside it", path.display(), root.display())]
    OutsideRoot {
        /// What the path is.
        what: String,
        /// The path.
        path: PathBuf,
        /// The root.
        root: PathBuf,
    },
    /// Flags that cannot be used together.
    #[error("{message}")]
    ConflictingFlags {
        /// Which, and why.
        message: String,
    },
    /// The output is one of the inputs.
    #[error(
        "output {} is also an input (`{input}`); choose another output directory (nothing was written)",
        output.display()
    )]
    OutputIsInput {
        /// The output directory.
        output: PathBuf,
        /// The input spec.
        input: String,
    },
    /// The output directory holds an input.
    #[error(
        "output directory {} contains the input {input}; writing there (or --overwrite) would destroy it, so choose an output directory outside the inputs (nothing was written)",
        output.display()
    )]
    OutputHoldsInput {
        /// The output directory.
        output: PathBuf,
        /// The input file.
        input: String,
    },
    /// `--overwrite` found files mr did not write.
    #[error(
        "--overwrite removes only what an earlier mr job wrote, and {} also holds {}, which mr did not write; move {} away or choose another output directory (nothing was removed)",
        output.display(),
        names.iter().take(5).map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ") + if names.len() > 5 { ", ..." } else { "" },
        if names.len() == 1 { "it" } else { "them" }
    )]
    ForeignFiles {
        /// The output directory.
        output: PathBuf,
        /// What it holds that mr did not write.
        names: Vec<String>,
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
    /// The job names more distinct counters than its cap.
    #[error(
        "the job names {count} distinct counters (e.g. `{example}`), more than its cap of {cap}; a job that names counters after its data floods status and _MANIFEST: use fewer names, or raise the cap with --max-counters"
    )]
    TooManyCounters {
        /// Distinct names.
        count: u32,
        /// The cap.
        cap: u32,
        /// One of them.
        example: String,
    },
    /// The thread mapping batches for a map task (see `help.rs`) ended without handing one
    /// back: a bug in the host; the attempt is retried.
    #[error(
        "job `{job}`, map shard {index}, slice {slice}: the helper thread mapping batches for it ended without answering (a host bug; the attempt is retried; --no-split turns helpers off)"
    )]
    HelperLost {
        /// The job's name.
        job: String,
        /// The map task.
        index: u32,
        /// The slice.
        slice: u32,
    },
    /// The guest failed.
    #[error(
        "job `{job}` failed in {step} {} {index}{}, attempt {attempt}{}: {error}{}",
        step.unit(),
        slice.map(|s| format!(", slice {s}")).unwrap_or_default(),
        location.as_ref().map(|l| format!(", at {l}")).unwrap_or_default(),
        if *deterministic {
            "\n(deterministic: the record fails the same way on its own, so it is not retried; --max-bad-records N skips up to N such records)"
        } else {
            ""
        }
    )]
    Guest {
        /// Job name.
        job: String,
        /// What the guest was doing.
        step: Step,
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
        /// Retrying cannot help: the failure was reproduced (see `map::blame`).
        deterministic: bool,
    },
    /// The job failed (in this process or another), after its retries or without them.
    #[error("job {id} (`{name}`) failed: {error}")]
    JobFailed {
        /// The job.
        id: i64,
        /// Its name.
        name: String,
        /// The last attempt's error.
        error: String,
    },
    /// The job was cancelled.
    #[error(
        "job {id} (`{name}`) was cancelled: nothing more of it was committed, and its output has no _MANIFEST"
    )]
    JobCancelled {
        /// The job.
        id: i64,
        /// Its name.
        name: String,
    },
    /// The job has not finished (asked for a summary too early).
    #[error("job {id} (`{name}`) has not finished: it is in its {phase} phase")]
    Unfinished {
        /// The job.
        id: i64,
        /// Its name.
        name: String,
        /// Its phase.
        phase: mr_store::Phase,
    },
    /// A pipeline definition is not one that can run (a stage names an unknown stage, the
    /// stages form a cycle, ...).
    #[error("pipeline {pipeline}: {message}")]
    BadPipeline {
        /// The pipeline's name.
        pipeline: String,
        /// What is wrong, naming the stage.
        message: String,
    },
    /// A stage of a pipeline failed: its inputs could not be verified, its job could not be
    /// planned, or its job failed.
    #[error("pipeline {pipeline}, stage {stage}: {message}")]
    StageFailed {
        /// The pipeline's name.
        pipeline: String,
        /// The stage.
        stage: String,
        /// What failed.
        message: String,
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
            ExecError::OutputRecord { .. } => "output-record".into(),
            ExecError::TooManyBadRecords { .. } => "bad-records".into(),
            ExecError::TooManyCounters { .. }
            | ExecError::Store(mr_store::StoreError::TooManyCounters { .. }) => "counters".into(),
            _ => "host".into(),
        }
    }

    /// Whether retrying cannot help: the same input fails the same way every time (a record
    /// the job fails on by itself, output a sink cannot hold, a cap the job exceeds, damaged
    /// input data). Such a failure fails the job at once, without using up its attempts.
    pub fn is_deterministic(&self) -> bool {
        use mr_io::InputError;
        match self {
            // The same calls name the same counters: a cap they break, they break every time.
            ExecError::Guest { error, .. }
                if error.kind
                    == mr_engine::GuestErrorKind::Trap(mr_engine::TrapKind::CounterLimit) =>
            {
                true
            }
            ExecError::Guest { deterministic, .. } => *deterministic,
            ExecError::OutputRecord { .. }
            | ExecError::TooManyBadRecords { .. }
            | ExecError::TooManyCounters { .. }
            | ExecError::Store(mr_store::StoreError::TooManyCounters { .. }) => true,
            ExecError::Input(e) => matches!(
                e,
                InputError::BadRecord { .. }
                    | InputError::RecordTooLarge { .. }
                    | InputError::Corrupt { .. }
                    | InputError::WrongContent { .. }
                    | InputError::NotRegular { .. }
            ),
            _ => false,
        }
    }

    /// What identifies this failure apart from its attempt: two attempts of a task failing with
    /// the same signature fail deterministically (the second is not retried). `None` for
    /// failures that may pass on their own (a timeout: the machine may have been busy).
    pub fn signature(&self) -> Option<String> {
        use mr_engine::{GuestErrorKind, TrapKind};
        match self {
            ExecError::Guest {
                step,
                index,
                slice,
                location,
                error,
                ..
            } => {
                if error.kind == GuestErrorKind::Trap(TrapKind::Timeout) {
                    return None;
                }
                Some(format!(
                    "{}|{step}|{index}|{slice:?}|{location:?}|{}",
                    self.failure_kind(),
                    error.message
                ))
            }
            other => Some(format!("{}|{other}", other.failure_kind())),
        }
    }
}

/// `error` and its causes as one line, like anyhow's `{:#}`, but without repeating a cause
/// whose text the message already holds (many errors print their source in their own message).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = e.source();
    }
    text
}
