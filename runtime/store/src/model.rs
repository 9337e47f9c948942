//! What the store keeps, as types: the job's phase, its tasks and their states, leases,
//! attempts and their outcomes, events, and the rows the protocol's steps read and write.
//! Every enum is stored as its lower-case (kebab-case) name, the same text `status --json`
//! prints.

use serde::Serialize;

/// Declares an enum stored and printed by name, with `as_str` and `FromStr`.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)*
                    other => Err(format!(
                        "unknown {} `{other}` (expected one of: {})",
                        stringify!($name),
                        [$($text),*].join(", ")
                    )),
                }
            }
        }
    };
}

named_enum! {
    /// The kinds of task a job is planned into.
    TaskKind {
        /// Reads one shard of the input, slice by slice.
        Map = "map",
        /// Merges and reduces one partition.
        Reduce = "reduce",
        /// Puts the output in place and writes `_MANIFEST`.
        Finalize = "finalize",
    }
}

named_enum! {
    /// Where a job is: which kind of task may run, or how it ended.
    Phase {
        /// Map tasks run.
        Map = "map",
        /// Reduce tasks run.
        Reduce = "reduce",
        /// The finalize task runs.
        Finalize = "finalize",
        /// Finished; its output is complete.
        Done = "done",
        /// A task ran out of attempts (or failed deterministically).
        Failed = "failed",
        /// Stopped on request; nothing more is committed and no `_MANIFEST` is written.
        Cancelled = "cancelled",
    }
}

impl Phase {
    /// Whether the job is over (done, failed or cancelled).
    pub fn is_over(self) -> bool {
        matches!(self, Phase::Done | Phase::Failed | Phase::Cancelled)
    }

    /// The phase whose tasks are of `kind`.
    pub fn of(kind: TaskKind) -> Phase {
        match kind {
            TaskKind::Map => Phase::Map,
            TaskKind::Reduce => Phase::Reduce,
            TaskKind::Finalize => Phase::Finalize,
        }
    }

    /// The kind of task that runs in this phase, if any.
    pub fn task_kind(self) -> Option<TaskKind> {
        match self {
            Phase::Map => Some(TaskKind::Map),
            Phase::Reduce => Some(TaskKind::Reduce),
            Phase::Finalize => Some(TaskKind::Finalize),
            _ => None,
        }
    }

    /// The phase that opens once the last task of `kind` is done: map → reduce (if the job has
    /// reduce tasks) → finalize → done.
    pub(crate) fn after(kind: TaskKind, has_reducers: bool) -> Phase {
        match kind {
            TaskKind::Map if has_reducers => Phase::Reduce,
            TaskKind::Map | TaskKind::Reduce => Phase::Finalize,
            TaskKind::Finalize => Phase::Done,
        }
    }

    /// The event that records this phase opening.
    pub(crate) fn opened_event(self) -> EventKind {
        if self == Phase::Done {
            EventKind::JobCompleted
        } else {
            EventKind::PhaseStarted
        }
    }
}

named_enum! {
    /// A task's state.
    TaskState {
        /// Waiting to run (never started, or waiting out a retry backoff).
        Pending = "pending",
        /// Leased to a worker.
        Leased = "leased",
        /// Finished.
        Done = "done",
        /// Out of attempts.
        Failed = "failed",
    }
}

named_enum! {
    /// How an attempt ended.
    Outcome {
        /// Its last slice was committed.
        Done = "done",
        /// It failed; the error is kept.
        Failed = "failed",
        /// Its worker crashed or stalled and the lease was taken over.
        Abandoned = "abandoned",
        /// A commit was refused: the lease had been lost, or the job cancelled.
        Refused = "refused",
    }
}

named_enum! {
    /// What a lifecycle event records.
    EventKind {
        /// The job was planned.
        JobSubmitted = "job-submitted",
        /// A failed job's tasks were reset for a new round of attempts.
        JobResumed = "job-resumed",
        /// A rerun changed an allowance of the job.
        JobSettingsChanged = "job-settings-changed",
        /// The job's next phase opened.
        PhaseStarted = "phase-started",
        /// A task's first attempt started.
        TaskStarted = "task-started",
        /// A task started again after a failure.
        TaskRetried = "task-retried",
        /// A task's lease was taken from a crashed or stalled worker.
        LeaseTakenOver = "lease-taken-over",
        /// A slice started.
        SliceStarted = "slice-started",
        /// A slice was committed.
        SliceCommitted = "slice-committed",
        /// A task's last slice was committed.
        TaskCompleted = "task-completed",
        /// A running map task handed the unread rest of its shard (part of it) to a new task,
        /// because a worker had nothing to do (see [`crate::JobStore::request_split`]).
        TaskSplit = "task-split",
        /// An attempt failed.
        AttemptFailed = "attempt-failed",
        /// A commit was refused (lease lost or job cancelled).
        CommitRefused = "commit-refused",
        /// The job failed.
        JobFailed = "job-failed",
        /// The job was cancelled.
        JobCancelled = "job-cancelled",
        /// The job is done.
        JobCompleted = "job-completed",
        /// A completion hook was delivered.
        HookDelivered = "hook-delivered",
        /// A completion hook's delivery failed (it may be retried).
        HookFailed = "hook-failed",
    }
}

impl EventKind {
    /// The event for leasing a task that was in `state` (held by `previous_owner`), as
    /// `attempt`, with its detail: a takeover, a retry, or a first start.
    pub(crate) fn for_lease(
        state: TaskState,
        previous_owner: Option<&str>,
        attempt: u32,
    ) -> (EventKind, Option<String>) {
        match (state, previous_owner) {
            (TaskState::Leased, Some(prev)) => {
                (EventKind::LeaseTakenOver, Some(format!("from {prev}")))
            }
            _ if attempt > 1 => (EventKind::TaskRetried, None),
            _ => (EventKind::TaskStarted, None),
        }
    }
}

/// A lease on one task, held by one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Job id.
    pub job: i64,
    /// The task's kind.
    pub kind: TaskKind,
    /// Task index.
    pub idx: u32,
    /// Attempt number (the fencing token), from 1.
    pub attempt: u32,
    /// Who holds it.
    pub owner: String,
    /// Where the last committed slice ended (empty before the first).
    pub cursor: String,
    /// Slices committed so far; the next slice's number.
    pub slices: u32,
    /// What a map task reads when it is not its planned shard: the bounds of a task split off
    /// another (or of one that gave part of its shard away), as the executor encoded them.
    pub bounds: Option<String>,
}

/// What [`crate::JobStore::acquire`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// A task to run.
    Lease(Lease),
    /// Work remains, but every runnable task is leased to a live worker or waiting out a retry
    /// backoff; ask again in `retry_in_ms` at the latest (or sooner: a lease may end early).
    Wait {
        /// Until the earliest lease expires or backoff ends, by the store's clock.
        retry_in_ms: i64,
    },
    /// The job is over.
    Finished {
        /// `done`, `failed` or `cancelled`.
        phase: Phase,
        /// The error that failed it.
        error: Option<String>,
    },
}

/// One output file of a slice commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// Path (as the executor names it; relative to the job's output directory).
    pub path: String,
    /// Reduce partition the file feeds (map runs), or the part number it becomes.
    pub part: u32,
    /// Size in bytes.
    pub bytes: u64,
    /// Records in the file.
    pub records: u64,
    /// Content checksum.
    pub checksum: String,
}

/// An output file as committed: which task and slice produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOutput {
    /// Task index (shard or partition).
    pub idx: u32,
    /// The planned shard whose input the task read: `idx`, except for a task split off
    /// another (see [`crate::JobStore::request_split`]).
    pub origin: u32,
    /// Slice number within the task.
    pub slice: u32,
    /// The file.
    pub file: OutputFile,
}

/// What a new job is made of.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    /// The job's name (from its `describe`).
    pub name: &'a str,
    /// Identifies the job's definition; the same fingerprint is the same job.
    pub fingerprint: &'a str,
    /// The output directory, as the executor names it.
    pub output: &'a str,
    /// The executor's plan, opaque to the store.
    pub spec: &'a str,
    /// Map tasks (shards).
    pub map_tasks: u32,
    /// Reduce tasks (partitions).
    pub reduce_tasks: u32,
}

/// A job row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    /// Job id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Fingerprint.
    pub fingerprint: String,
    /// Output directory.
    pub output: String,
    /// The executor's plan.
    pub spec: String,
    /// Where the job is.
    pub phase: Phase,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was submitted (ms since the epoch, by the store's clock).
    pub created_ms: i64,
    /// When it finished.
    pub finished_ms: Option<i64>,
}

/// What one slice commit records (see [`crate::JobStore::commit_slice`]).
#[derive(Debug, Clone, Copy)]
pub struct SliceCommit<'a> {
    /// Where the next slice starts (opaque to the store).
    pub cursor: &'a str,
    /// The slice's output files.
    pub outputs: &'a [OutputFile],
    /// Counter deltas; the job's own counters are named `job.NAME`.
    pub counters: &'a [(String, i64)],
    /// The task's last slice: the task is done, and maybe its phase.
    pub last: bool,
    /// Most distinct `job.` counter names the job may have once this slice is committed.
    pub max_job_counters: Option<u32>,
    /// A map task's answer to a split request: the part of its shard it keeps and the part a
    /// new task reads. Applied only while a split is still wanted (see
    /// [`crate::JobStore::request_split`]); otherwise the slice commits without it.
    pub split: Option<SplitOff<'a>>,
    /// Whether this commit answers a split request (with `split`, or without one when the
    /// task cannot split): the request is cleared either way.
    pub answers_split: bool,
}

/// The unread rest of a map task's shard, given to a new map task (see [`SliceCommit::split`]).
#[derive(Debug, Clone, Copy)]
pub struct SplitOff<'a> {
    /// The splitting task's own bounds from now on (executor-encoded; a prefix of what it
    /// read before, so its committed cursor stays valid).
    pub kept: &'a str,
    /// The new task's bounds.
    pub given: &'a str,
    /// Where the new task's input starts within its planned shard, as text that sorts in input
    /// order among the tasks of that shard (the planned task's own position is empty). Outputs
    /// are ordered by (planned shard, position), so values keep their input order.
    pub position: &'a str,
    /// For the event: what was split off, in words.
    pub detail: &'a str,
}

/// When a failed task runs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// After a backoff, unless the task has now failed `max_attempts` times.
    Until {
        /// Failures of one task that fail the job.
        max_attempts: u32,
        /// Not before this many milliseconds from now (the store's now).
        after_ms: i64,
    },
    /// Never: the failure is deterministic, and the job fails now.
    Never,
}

impl Retry {
    /// For a task that has now failed `failures` times: `Some(backoff_ms)` when it runs again,
    /// `None` when it (and its job) fails.
    pub(crate) fn backoff(self, failures: u32) -> Option<i64> {
        match self {
            Retry::Until {
                max_attempts,
                after_ms,
            } if failures < max_attempts => Some(after_ms),
            _ => None,
        }
    }
}

impl SliceCommit<'_> {
    /// The slice's counter deltas, one per name (a name given twice adds up), in name order.
    pub(crate) fn summed_counters(&self) -> std::collections::BTreeMap<&str, i64> {
        let mut sums = std::collections::BTreeMap::new();
        for (name, delta) in self.counters {
            *sums.entry(name.as_str()).or_insert(0) += delta;
        }
        sums
    }

    /// Whether the commit adds to the job's own (`job.`) counters, which the cap counts.
    pub(crate) fn names_job_counters(&self) -> bool {
        self.counters.iter().any(|(n, _)| n.starts_with("job."))
    }

    /// The refusal of this commit for giving job `job` `count` distinct `job.` counter names,
    /// over `cap`; it names one of the slice's own.
    pub(crate) fn too_many_counters(&self, job: i64, count: u32, cap: u32) -> crate::StoreError {
        let example = self
            .counters
            .iter()
            .rev()
            .find_map(|(n, _)| n.strip_prefix("job."))
            .unwrap_or_default()
            .to_owned();
        crate::StoreError::TooManyCounters {
            job,
            count,
            cap,
            example,
        }
    }
}

/// The JSON the `slices` table keeps of a slice's counter deltas.
pub(crate) fn counters_json(sums: &std::collections::BTreeMap<&str, i64>) -> String {
    serde_json::to_string(sums).expect("a map of names to integers serialises")
}

/// A failed attempt, as [`crate::JobStore::fail_attempt`] records it.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    /// What kind of failure (`trap:panic`, `job-error`, `input`...).
    pub kind: &'a str,
    /// The whole error.
    pub error: &'a str,
    /// The failure without its attempt number, to tell a repeated failure from a new one.
    pub signature: Option<&'a str>,
    /// Whether and when the task runs again.
    pub retry: Retry,
}

/// Tasks of one kind, by state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskCounts {
    /// The tasks' kind.
    pub kind: TaskKind,
    /// All tasks of this kind.
    pub total: u32,
    /// Finished.
    pub done: u32,
    /// Leased right now (running, or held by a worker that stopped).
    pub leased: u32,
    /// Waiting to run (never started, or waiting to be retried).
    pub pending: u32,
    /// Out of attempts.
    pub failed: u32,
    /// Slices committed.
    pub slices: u32,
}

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseRow {
    /// Task kind.
    pub kind: TaskKind,
    /// Task index.
    pub idx: u32,
    /// Holder.
    pub owner: String,
    /// Attempt (fencing token).
    pub attempt: u32,
    /// Slices committed so far.
    pub slices: u32,
    /// Expiry, ms since the epoch (the store's clock).
    pub expires_at_ms: i64,
    /// Whether it has expired by the store's clock: its holder stopped heartbeating (crashed,
    /// stopped or cut off), and the next worker to look takes it over.
    pub expired: bool,
    /// Whether its holder is known to be gone: expired, or a process on this host that no
    /// longer exists. Filled in by the reader of the status (the store cannot see processes).
    #[serde(default)]
    pub stale: bool,
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptError {
    /// Task kind.
    pub kind: TaskKind,
    /// Task index.
    pub idx: u32,
    /// Attempt number.
    pub attempt: u32,
    /// Who ran it.
    pub owner: String,
    /// What kind of failure.
    pub failure: Option<String>,
    /// The error, as the executor reported it.
    pub error: String,
}

/// A lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Sequence number (increasing within a store).
    pub id: i64,
    /// When, ms since the epoch (the store's clock).
    pub at_ms: i64,
    /// What happened.
    pub event: EventKind,
    /// Task kind, when about a task.
    pub kind: Option<TaskKind>,
    /// Task index.
    pub idx: Option<u32>,
    /// Slice number.
    pub slice: Option<u32>,
    /// Attempt.
    pub attempt: Option<u32>,
    /// Worker.
    pub owner: Option<String>,
    /// More words.
    pub detail: Option<String>,
}

/// One task, for `mr-host status --tasks`: its state and its committed counters (the
/// per-shard level of the slice → shard → job roll-up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskRow {
    /// The task's kind.
    pub kind: TaskKind,
    /// Task index.
    pub idx: u32,
    /// Its state.
    pub state: TaskState,
    /// Latest attempt.
    pub attempt: u32,
    /// Failed attempts.
    pub failures: u32,
    /// Slices committed.
    pub slices: u32,
    /// Current lease holder.
    pub owner: Option<String>,
    /// The planned shard a map task split off another reads part of (`None` for planned
    /// tasks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_from: Option<u32>,
    /// Where its last committed slice ended (opaque; empty before the first).
    #[serde(skip)]
    pub cursor: String,
    /// Its bounds when they are not its planned shard's (see [`Lease::bounds`]).
    #[serde(skip)]
    pub bounds: Option<String>,
    /// Whether a split of this task was asked for and not yet answered.
    #[serde(skip)]
    pub split_wanted: bool,
    /// Committed counters of this task, built-in and `job.NAME` (serialized as one map).
    #[serde(serialize_with = "pairs_as_map")]
    pub counters: Vec<(String, i64)>,
}

/// `[(name, value)]` as a JSON object `{name: value}`, in order.
fn pairs_as_map<S: serde::Serializer>(pairs: &[(String, i64)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(pairs.len()))?;
    for (name, value) in pairs {
        map.serialize_entry(name, value)?;
    }
    map.end()
}

/// Everything `mr-host status JOB` shows.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    /// Job id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Where the job is.
    pub phase: Phase,
    /// Output directory.
    pub output: String,
    /// Why it failed.
    pub error: Option<String>,
    /// Submission time, ms since the epoch.
    pub created_ms: i64,
    /// Completion time.
    pub finished_ms: Option<i64>,
    /// The store's clock when this was read (ms since the epoch): elapsed times and lease
    /// expiry are against it, never against the reader's clock.
    pub now_ms: i64,
    /// Tasks by kind.
    pub tasks: Vec<TaskCounts>,
    /// Attempts started, over all tasks.
    pub attempts: u32,
    /// Attempts that failed.
    pub failed_attempts: u32,
    /// Failed attempts by kind of failure (`trap`, `job-error`, `input`, ...): a guest that
    /// reports errors on purpose and one that crashes are told apart.
    pub failures_by_kind: Vec<(String, u32)>,
    /// Attempts whose commit was refused (their lease had been taken over).
    pub refused_attempts: u32,
    /// Leases held now.
    pub leases: Vec<LeaseRow>,
    /// Counters, summed over committed work (the job's own ones prefixed `job.`). Not
    /// serialized: the status document shows them as `run --json` does, split in two maps.
    #[serde(skip)]
    pub counters: Vec<(String, i64)>,
    /// Every failed attempt's error, oldest first.
    pub errors: Vec<AttemptError>,
    /// The most recent events, oldest first.
    pub recent_events: Vec<Event>,
}

/// What [`crate::JobStore::cancel_job`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The job was running and is now cancelled.
    Now,
    /// It had ended already (done, failed or cancelled): nothing changed.
    AlreadyOver(Phase),
}

named_enum! {
    /// Where a completion hook's delivery is.
    HookState {
        /// Not delivered yet (never tried, or waiting to be retried).
        Pending = "pending",
        /// Delivered: never again.
        Delivered = "delivered",
        /// Given up after its retries.
        Failed = "failed",
    }
}

/// How a claimed hook delivery went (see [`crate::JobStore::finish_hook`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookOutcome {
    /// Delivered.
    Delivered,
    /// Failed; may be claimed again after this many ms.
    Retry {
        /// Backoff before the next claim.
        after_ms: i64,
    },
    /// Failed for good.
    GaveUp,
}

impl HookOutcome {
    /// The hook's state after this outcome, and its backoff before the next claim (0: none).
    pub(crate) fn next_state(self) -> (HookState, i64) {
        match self {
            HookOutcome::Delivered => (HookState::Delivered, 0),
            HookOutcome::Retry { after_ms } => (HookState::Pending, after_ms),
            HookOutcome::GaveUp => (HookState::Failed, 0),
        }
    }

    /// The event that records this outcome.
    pub(crate) fn event(self) -> EventKind {
        if self == HookOutcome::Delivered {
            EventKind::HookDelivered
        } else {
            EventKind::HookFailed
        }
    }
}

/// A completion hook of a job, for status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookRow {
    /// The hook's name (e.g. `notify`, `on-done`).
    pub name: String,
    /// Its delivery state.
    pub state: HookState,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// The last attempt's result, in words.
    pub detail: Option<String>,
    /// When it changed last (the store's clock, ms).
    pub updated_ms: i64,
}

named_enum! {
    /// Where a pipeline stands as a whole.
    PipelinePhase {
        /// Stages are waiting or running.
        Running = "running",
        /// Every stage is done (run or reused).
        Done = "done",
        /// A stage failed (its job failed, or its inputs could not be verified).
        Failed = "failed",
    }
}

named_enum! {
    /// Where one stage of a pipeline stands.
    StageState {
        /// Some stage it reads has not finished yet.
        Waiting = "waiting",
        /// Its job is planned and running.
        Running = "running",
        /// Its job ran to completion in this pipeline's current definition.
        Done = "done",
        /// Its fingerprint matched a finished job's: that output is used as it is.
        Reused = "reused",
        /// Its job failed, or its inputs could not be verified.
        Failed = "failed",
    }
}

impl StageState {
    /// Whether the stage's output is complete (stages reading it may start).
    pub fn is_complete(self) -> bool {
        matches!(self, StageState::Done | StageState::Reused)
    }
}

/// A pipeline to record ([`crate::JobStore::put_pipeline`]).
#[derive(Debug, Clone)]
pub struct NewPipeline<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its output directory: the pipeline's identity in the store (a rerun of the same
    /// command finds it).
    pub output: &'a str,
    /// Its definition (JSON, written and read by `mr-exec`).
    pub definition: &'a str,
    /// Its stages' names.
    pub stages: &'a [&'a str],
}

/// A recorded pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PipelineRow {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Output directory.
    pub output: String,
    /// Definition (JSON).
    #[serde(skip)]
    pub definition: String,
    /// Phase.
    pub phase: PipelinePhase,
    /// Why it failed.
    pub error: Option<String>,
    /// First recorded (the store's clock, ms).
    pub created_ms: i64,
    /// Last changed.
    pub updated_ms: i64,
    /// When it ended.
    pub finished_ms: Option<i64>,
}

/// A recorded stage of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageRow {
    /// The stage's name.
    pub name: String,
    /// Its state.
    pub state: StageState,
    /// The fingerprint of the job recorded for it (component, parameters, settings and the
    /// content of its inputs).
    pub fingerprint: Option<String>,
    /// The job that produces (or produced) its output.
    pub job: Option<i64>,
    /// Claims taken on it so far (the fencing token of [`crate::JobStore::update_stage`]).
    pub claims: u32,
    /// Why it ran or was reused, in words.
    pub reason: Option<String>,
    /// What its fingerprint was made of (JSON), to explain the next rerun's decision.
    pub detail: Option<String>,
    /// Last changed (the store's clock, ms).
    pub updated_ms: i64,
    /// Who holds its claim (a live claim is being planned).
    pub owner: Option<String>,
}

/// A change to a stage ([`crate::JobStore::update_stage`]); `None` fields keep their value.
#[derive(Debug, Clone, Default)]
pub struct StageUpdate<'a> {
    /// The new state.
    pub state: Option<StageState>,
    /// The fingerprint of the job now recorded for it.
    pub fingerprint: Option<&'a str>,
    /// The job now recorded for it.
    pub job: Option<i64>,
    /// Why, in words.
    pub reason: Option<&'a str>,
    /// What the fingerprint was made of.
    pub detail: Option<&'a str>,
    /// Change the stage only if this is still its job (an update decided from a snapshot must
    /// not touch a stage planned again since).
    pub if_job: Option<i64>,
}
