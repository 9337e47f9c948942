//! Read-only views of a job for `mr-host status`: task counts per kind, leases, attempts,
//! errors, counters and recent events.

use rusqlite::params;
use serde::Serialize;

use crate::{JobRow, Store, StoreError};

/// Tasks of one kind, by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TaskCounts {
    /// `map`, `reduce` or `finalize`.
    pub kind: String,
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
    pub kind: String,
    /// Task index.
    pub idx: u32,
    /// Holder.
    pub owner: String,
    /// Attempt (fencing token).
    pub attempt: u32,
    /// Slices committed so far.
    pub slices: u32,
    /// Expiry, ms since the epoch.
    pub expires_at_ms: i64,
}

/// A failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptError {
    /// Task kind.
    pub kind: String,
    /// Task index.
    pub idx: u32,
    /// Attempt number.
    pub attempt: u32,
    /// Who ran it.
    pub owner: String,
    /// The error, as the executor reported it.
    pub error: String,
}

/// A lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Sequence number.
    pub id: i64,
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// What happened: `job-submitted`, `task-started`, `slice-committed`, ...
    pub event: String,
    /// Task kind, when about a task.
    pub kind: Option<String>,
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
    /// `map`, `reduce` or `finalize`.
    pub kind: String,
    /// Task index.
    pub idx: u32,
    /// `pending`, `leased`, `done` or `failed`.
    pub state: String,
    /// Latest attempt.
    pub attempt: u32,
    /// Failed attempts.
    pub failures: u32,
    /// Slices committed.
    pub slices: u32,
    /// Current lease holder.
    pub owner: Option<String>,
    /// Committed counters of this task.
    pub counters: Vec<(String, i64)>,
}

/// Everything `mr-host status JOB` shows.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    /// Job id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// `map`, `reduce`, `finalize`, `done` or `failed`.
    pub phase: String,
    /// Output directory.
    pub output: String,
    /// Why it failed.
    pub error: Option<String>,
    /// Submission time, ms since the epoch.
    pub created_ms: i64,
    /// Completion time.
    pub finished_ms: Option<i64>,
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
    /// Counters, summed over committed work.
    pub counters: Vec<(String, i64)>,
    /// Every failed attempt's error, oldest first.
    pub errors: Vec<AttemptError>,
    /// The most recent events, oldest first.
    pub recent_events: Vec<Event>,
}

impl Store {
    /// The status of job `id`, with up to `events` recent events.
    pub fn status(&self, id: i64, events: u32) -> Result<JobStatus, StoreError> {
        let JobRow {
            id,
            name,
            output,
            phase,
            error,
            created_ms,
            finished_ms,
            ..
        } = self.job(id)?;
        let err = self.err();
        let tasks = self.rows(
            "SELECT kind, COUNT(*),
                        SUM(state = 'done'), SUM(state = 'leased'), SUM(state = 'pending'),
                        SUM(state = 'failed'), SUM(slices)
                 FROM tasks WHERE job = ? GROUP BY kind
                 ORDER BY CASE kind WHEN 'map' THEN 0 WHEN 'reduce' THEN 1 ELSE 2 END",
            [id],
            |r| {
                Ok(TaskCounts {
                    kind: r.get(0)?,
                    total: r.get(1)?,
                    done: r.get(2)?,
                    leased: r.get(3)?,
                    pending: r.get(4)?,
                    failed: r.get(5)?,
                    slices: r.get(6)?,
                })
            },
        )?;
        let (attempts, failed_attempts, refused_attempts): (u32, u32, u32) = self
            .conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(outcome = 'failed'), 0),
                        COALESCE(SUM(outcome = 'refused'), 0)
                 FROM attempts WHERE job = ?",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(&err)?;
        let failures_by_kind = self.rows(
            "SELECT failure, COUNT(*) FROM attempts WHERE job = ? AND outcome = 'failed'
                 GROUP BY failure ORDER BY failure",
            [id],
            |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                    r.get(1)?,
                ))
            },
        )?;
        let leases = self.rows(
            "SELECT kind, idx, owner, attempt, slices, expires_at FROM tasks
                 WHERE job = ? AND state = 'leased' ORDER BY kind, idx",
            [id],
            |r| {
                Ok(LeaseRow {
                    kind: r.get(0)?,
                    idx: r.get(1)?,
                    owner: r.get(2)?,
                    attempt: r.get(3)?,
                    slices: r.get(4)?,
                    expires_at_ms: r.get(5)?,
                })
            },
        )?;
        let errors = self.rows(
            "SELECT kind, idx, attempt, owner, error FROM attempts
                 WHERE job = ? AND error IS NOT NULL ORDER BY started_ms, kind, idx, attempt",
            [id],
            |r| {
                Ok(AttemptError {
                    kind: r.get(0)?,
                    idx: r.get(1)?,
                    attempt: r.get(2)?,
                    owner: r.get(3)?,
                    error: r.get(4)?,
                })
            },
        )?;
        Ok(JobStatus {
            id,
            name,
            phase,
            output,
            error,
            created_ms,
            finished_ms,
            tasks,
            attempts,
            failed_attempts,
            failures_by_kind,
            refused_attempts,
            leases,
            counters: self.job_counters(id)?,
            errors,
            recent_events: self.events(id, 0, events)?,
        })
    }

    /// Every task of job `id` with its committed counters, in (kind, index) order.
    pub fn tasks(&self, id: i64) -> Result<Vec<TaskRow>, StoreError> {
        let mut tasks = self.rows(
            "SELECT kind, idx, state, attempt, failures, slices, owner FROM tasks WHERE job = ?
             ORDER BY CASE kind WHEN 'map' THEN 0 WHEN 'reduce' THEN 1 ELSE 2 END, idx",
            [id],
            |r| {
                Ok(TaskRow {
                    kind: r.get(0)?,
                    idx: r.get(1)?,
                    state: r.get(2)?,
                    attempt: r.get(3)?,
                    failures: r.get(4)?,
                    slices: r.get(5)?,
                    owner: r.get(6)?,
                    counters: Vec::new(),
                })
            },
        )?;
        let counters = self.rows(
            "SELECT kind, idx, name, value FROM counters WHERE job = ? ORDER BY name",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get(2)?,
                    r.get(3)?,
                ))
            },
        )?;
        for (kind, idx, name, value) in counters {
            if let Some(t) = tasks.iter_mut().find(|t| t.kind == kind && t.idx == idx) {
                t.counters.push((name, value));
            }
        }
        Ok(tasks)
    }

    /// Events of job `id` with a sequence number above `after`: the last `limit` of them, oldest
    /// first.
    pub fn events(&self, id: i64, after: i64, limit: u32) -> Result<Vec<Event>, StoreError> {
        self.rows(
            "SELECT * FROM (
                 SELECT id, at_ms, event, kind, idx, slice, attempt, owner, detail FROM events
                 WHERE job = ? AND id > ? ORDER BY id DESC LIMIT ?)
             ORDER BY id",
            params![id, after, limit],
            |r| {
                Ok(Event {
                    id: r.get(0)?,
                    at_ms: r.get(1)?,
                    event: r.get(2)?,
                    kind: r.get(3)?,
                    idx: r.get(4)?,
                    slice: r.get(5)?,
                    attempt: r.get(6)?,
                    owner: r.get(7)?,
                    detail: r.get(8)?,
                })
            },
        )
    }
}
