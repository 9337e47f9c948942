//! `mr-store`: the durable state of jobs in SQLite, and the only code that writes SQL.
//!
//! The protocol (docs/protocol.md tells it whole):
//!
//! - A job is planned once ([`Store::create_job`]) into **tasks**: one per map shard, one per
//!   reduce partition, and one `finalize` task. The job's **phase** (`map` → `reduce` →
//!   `finalize` → `done`, or `failed`) says which kind of task may run; the commit that finishes
//!   the last task of a phase opens the next.
//! - A worker takes a **lease** on a task ([`Store::acquire`]): (task, owner, attempt,
//!   expires_at). Taking a pending task, one whose lease expired, or one whose owner is known to
//!   be dead bumps `attempt`; that number is the fencing token. Workers renew their leases with
//!   [`Store::heartbeat`].
//! - Every write a worker makes says `... AND attempt = ? AND state = 'leased'` and must change
//!   exactly one row. A paused or zombie worker whose lease was taken over can therefore never
//!   commit: it gets [`StoreError::Fenced`] and nothing it did is recorded.
//! - A **slice commit** ([`Store::commit_slice`]) is one transaction: the task's new cursor, the
//!   slice row with its counter deltas, its output files, the task's counter totals and, for a
//!   last slice, the task's completion and the phase change. Counters are therefore counted
//!   exactly once, however many attempts ran.
//! - A failed attempt ([`Store::fail_attempt`]) keeps its error; the task is retried after a
//!   backoff until it has failed `max_attempts` times, then the job fails with that error.
//!   Lease takeovers after a crash are not failures and do not use up attempts.
//! - **Lifecycle events** (job submitted / completed / failed, phase started, task started,
//!   slice started / committed, attempt failed, lease taken over, commit refused) are rows of
//!   `events`, written in the same transaction as the change they describe.
//!
//! Connections use WAL, `synchronous = FULL`, a 60 s busy timeout, and `BEGIN IMMEDIATE` for
//! every read-then-write transaction, so concurrent processes queue instead of failing with
//! `SQLITE_BUSY`.

mod status;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

pub use status::{AttemptError, Event, JobStatus, LeaseRow, TaskCounts, TaskRow};

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("job store {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The lease was taken over (or the task finished): this worker's write was refused.
    #[error(
        "{kind} task {idx} of job {job}: attempt {attempt} no longer holds the lease; its commit was refused"
    )]
    Fenced {
        /// Job id.
        job: i64,
        /// `map`, `reduce` or `finalize`.
        kind: String,
        /// Task index.
        idx: u32,
        /// The stale attempt.
        attempt: u32,
    },
    /// The database was written by a newer mr.
    #[error(
        "job store {path} has schema version {found}, newer than this mr-host supports ({supported})"
    )]
    TooNew {
        /// The database file.
        path: String,
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
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
    #[error("job store {path} has no job {job}")]
    NoSuchJob {
        /// The database file.
        path: String,
        /// The id asked for.
        job: i64,
    },
}

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran. Append new
/// migrations; never edit one that a released mr-host has applied.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: a deleted job's id stays dead
    name        TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    output      TEXT NOT NULL,
    spec        TEXT NOT NULL,
    phase       TEXT NOT NULL DEFAULT 'map'
                CHECK (phase IN ('map', 'reduce', 'finalize', 'done', 'failed')),
    error       TEXT,
    created_ms  INTEGER NOT NULL,
    finished_ms INTEGER
);
CREATE TABLE tasks (
    job         INTEGER NOT NULL REFERENCES jobs(id),
    kind        TEXT NOT NULL CHECK (kind IN ('map', 'reduce', 'finalize')),
    idx         INTEGER NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'leased', 'done', 'failed')),
    owner       TEXT,
    attempt     INTEGER NOT NULL DEFAULT 0,
    failures    INTEGER NOT NULL DEFAULT 0,
    not_before  INTEGER NOT NULL DEFAULT 0,
    expires_at  INTEGER,
    cursor      TEXT NOT NULL DEFAULT '',
    slices      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job, kind, idx)
);
CREATE TABLE slices (
    job          INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    idx          INTEGER NOT NULL,
    slice        INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    cursor       TEXT NOT NULL,
    counters     TEXT NOT NULL,
    committed_ms INTEGER NOT NULL,
    PRIMARY KEY (job, kind, idx, slice)
);
CREATE TABLE outputs (
    job         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    slice       INTEGER NOT NULL,
    part        INTEGER NOT NULL,
    path        TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    records     INTEGER NOT NULL,
    checksum    TEXT NOT NULL,
    PRIMARY KEY (job, kind, idx, slice, path)
);
CREATE TABLE counters (
    job         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    name        TEXT NOT NULL,
    value       INTEGER NOT NULL,
    PRIMARY KEY (job, kind, idx, name)
);
CREATE TABLE attempts (
    job         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    owner       TEXT NOT NULL,
    started_ms  INTEGER NOT NULL,
    ended_ms    INTEGER,
    outcome     TEXT CHECK (outcome IN ('done', 'failed', 'abandoned', 'refused')),
    failure     TEXT,
    error       TEXT,
    PRIMARY KEY (job, kind, idx, attempt)
);
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    job         INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    event       TEXT NOT NULL,
    kind        TEXT,
    idx         INTEGER,
    slice       INTEGER,
    attempt     INTEGER,
    owner       TEXT,
    detail      TEXT
);
CREATE INDEX events_by_job ON events (job, id);
",
    r"
-- What a failure was, without its attempt number: two attempts failing with the same
-- signature fail deterministically and are not retried again.
ALTER TABLE attempts ADD COLUMN signature TEXT;
",
];

/// A lease on one task, held by one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Job id.
    pub job: i64,
    /// `map`, `reduce` or `finalize`.
    pub kind: String,
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
}

/// What [`Store::acquire`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// A task to run.
    Lease(Lease),
    /// Work remains, but every runnable task is leased to a live worker or waiting out a retry
    /// backoff; ask again at `retry_at_ms` at the latest (or sooner: a lease may end early).
    Wait {
        /// When the earliest lease expires or backoff ends.
        retry_at_ms: i64,
    },
    /// The job is over.
    Finished {
        /// `done` or `failed`.
        phase: String,
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

/// What one slice commit records (see [`Store::commit_slice`]).
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
}

/// When a failed task runs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// After `at_ms`, unless the task has now failed `max_attempts` times.
    Until {
        /// Failures of one task that fail the job.
        max_attempts: u32,
        /// Not before this time (ms since the epoch).
        at_ms: i64,
    },
    /// Never: the failure is deterministic, and the job fails now.
    Never,
}

/// A failed attempt, as [`Store::fail_attempt`] records it.
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

/// An output file as committed: which task and slice produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOutput {
    /// Task index (shard or partition).
    pub idx: u32,
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
    /// `map`, `reduce`, `finalize`, `done` or `failed`.
    pub phase: String,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was submitted (ms since the epoch).
    pub created_ms: i64,
    /// When it finished.
    pub finished_ms: Option<i64>,
}

/// A connection to the job store.
pub struct Store {
    conn: Connection,
    path: String,
}

type ErrFn<'a> = &'a dyn Fn(rusqlite::Error) -> StoreError;

impl Store {
    /// Opens (creating if needed) and migrates the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let display = path.display().to_string();
        let err = |source| StoreError::Sqlite {
            path: display.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(60)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        let mut store = Store {
            conn,
            path: display,
        };
        store.migrate()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Runs a read-only query and maps every row.
    fn rows<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let err = self.err();
        let mut stmt = self.conn.prepare(sql).map_err(&err)?;
        let rows = stmt.query_map(params, row).map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction (it takes the write lock up front, so a
    /// read-then-write never fails half way with `SQLITE_BUSY`) and commits when it returns `Ok`;
    /// an `Err` rolls back. `body` gets the transaction and the SQLite-error mapper.
    fn immediate<T>(
        &mut self,
        body: impl FnOnce(&rusqlite::Transaction<'_>, ErrFn<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Store { conn, path } = self;
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let out = body(&tx, &err)?;
        tx.commit().map_err(err)?;
        Ok(out)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        self.immediate(|tx, err| {
            let version: i64 = tx
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(err)?;
            let supported = MIGRATIONS.len() as i64;
            if version > supported {
                return Err(StoreError::TooNew {
                    path,
                    found: version,
                    supported,
                });
            }
            for migration in &MIGRATIONS[version as usize..] {
                tx.execute_batch(migration).map_err(err)?;
            }
            tx.pragma_update(None, "user_version", supported)
                .map_err(err)
        })
    }

    /// The job with this fingerprint, if one was planned.
    pub fn find_job(&self, fingerprint: &str) -> Result<Option<JobRow>, StoreError> {
        self.job_where("fingerprint = ?", fingerprint)
    }

    /// The job with this id.
    pub fn job(&self, id: i64) -> Result<JobRow, StoreError> {
        self.job_where("id = ?", id)?
            .ok_or_else(|| StoreError::NoSuchJob {
                path: self.path.clone(),
                job: id,
            })
    }

    fn job_where(
        &self,
        condition: &str,
        value: impl rusqlite::ToSql,
    ) -> Result<Option<JobRow>, StoreError> {
        self.conn
            .query_row(
                &format!(
                    "SELECT id, name, fingerprint, output, spec, phase, error, created_ms, finished_ms
                     FROM jobs WHERE {condition}"
                ),
                [value],
                job_row,
            )
            .optional()
            .map_err(self.err())
    }

    /// Every job, oldest first.
    pub fn jobs(&self) -> Result<Vec<JobRow>, StoreError> {
        self.rows(
            "SELECT id, name, fingerprint, output, spec, phase, error, created_ms, finished_ms
             FROM jobs ORDER BY id",
            [],
            job_row,
        )
    }

    /// Plans a job: the job row, its tasks and a `job-submitted` event. If a job with the same
    /// fingerprint exists, returns it instead (`false`): rerunning a command resumes its job.
    pub fn create_job(&mut self, job: &NewJob<'_>, now_ms: i64) -> Result<(i64, bool), StoreError> {
        self.immediate(|tx, err| {
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT id FROM jobs WHERE fingerprint = ?",
                    [job.fingerprint],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?;
            if let Some(id) = existing {
                return Ok((id, false));
            }
            tx.execute(
                "INSERT INTO jobs (name, fingerprint, output, spec, created_ms) VALUES (?, ?, ?, ?, ?)",
                params![job.name, job.fingerprint, job.output, job.spec, now_ms],
            )
            .map_err(err)?;
            let id = tx.last_insert_rowid();
            let mut insert = tx
                .prepare("INSERT INTO tasks (job, kind, idx) VALUES (?, ?, ?)")
                .map_err(err)?;
            for (kind, n) in [("map", job.map_tasks), ("reduce", job.reduce_tasks), ("finalize", 1)]
            {
                for idx in 0..n {
                    insert.execute(params![id, kind, idx]).map_err(err)?;
                }
            }
            let detail = format!("{} map tasks, {} reduce tasks", job.map_tasks, job.reduce_tasks);
            event(tx, err, id, now_ms, "job-submitted", None, Some(&detail))?;
            Ok((id, true))
        })
    }

    /// Replaces a job's plan (a rerun changed an allowance, `detail` says which), with a
    /// `job-settings-changed` event.
    pub fn update_plan(
        &mut self,
        id: i64,
        spec: &str,
        detail: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.immediate(|tx, err| {
            tx.execute("UPDATE jobs SET spec = ? WHERE id = ?", params![spec, id])
                .map_err(err)?;
            event(
                tx,
                err,
                id,
                now_ms,
                "job-settings-changed",
                None,
                Some(detail),
            )
        })
    }

    /// Deletes a job and everything recorded about it.
    pub fn delete_job(&mut self, id: i64) -> Result<(), StoreError> {
        self.immediate(|tx, err| {
            for table in [
                "events", "attempts", "counters", "outputs", "slices", "tasks",
            ] {
                tx.execute(&format!("DELETE FROM {table} WHERE job = ?"), [id])
                    .map_err(err)?;
            }
            tx.execute("DELETE FROM jobs WHERE id = ?", [id])
                .map_err(err)?;
            Ok(())
        })
    }

    /// Makes a failed job runnable again: its failed tasks go back to pending with their failure
    /// count reset (the errors stay in `attempts`). Returns whether the job had failed.
    pub fn reset_failed(&mut self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
        self.immediate(|tx, err| {
            let kind: Option<String> = tx
                .query_row(
                    "SELECT kind FROM tasks WHERE job = ? AND state = 'failed' ORDER BY kind LIMIT 1",
                    [id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?;
            let Some(kind) = kind else {
                return Ok(false);
            };
            tx.execute(
                "UPDATE tasks SET state = 'pending', failures = 0, not_before = 0
                 WHERE job = ? AND state = 'failed'",
                [id],
            )
            .map_err(err)?;
            tx.execute(
                "UPDATE jobs SET phase = ?, error = NULL, finished_ms = NULL WHERE id = ?",
                params![kind, id],
            )
            .map_err(err)?;
            event(tx, err, id, now_ms, "job-resumed", None, Some("failed tasks reset for a new round of attempts"))?;
            Ok(true)
        })
    }

    /// Leases the next runnable task of the job's current phase: a pending one past its backoff,
    /// one whose lease expired before `now_ms`, or one whose owner `is_dead` says is gone.
    pub fn acquire(
        &mut self,
        job: i64,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        is_dead: &dyn Fn(&str) -> bool,
    ) -> Result<Acquired, StoreError> {
        let path = self.path.clone();
        self.immediate(|tx, err| {
            let (phase, error): (String, Option<String>) = tx
                .query_row("SELECT phase, error FROM jobs WHERE id = ?", [job], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(err)?
                .ok_or(StoreError::NoSuchJob { path, job })?;
            if phase == "done" || phase == "failed" {
                return Ok(Acquired::Finished { phase, error });
            }
            let kind = phase;
            let mut candidate: Option<(u32, u32, String, u32, String, Option<String>)> = tx
                .query_row(
                    "SELECT idx, attempt, cursor, slices, state, owner FROM tasks
                     WHERE job = ? AND kind = ?
                       AND ((state = 'pending' AND not_before <= ?)
                            OR (state = 'leased' AND expires_at <= ?))
                     ORDER BY idx LIMIT 1",
                    params![job, kind, now_ms, now_ms],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    },
                )
                .optional()
                .map_err(err)?;
            if candidate.is_none() {
                let mut stmt = tx
                    .prepare(
                        "SELECT idx, attempt, cursor, slices, state, owner FROM tasks
                         WHERE job = ? AND kind = ? AND state = 'leased' ORDER BY idx",
                    )
                    .map_err(err)?;
                let leased = stmt
                    .query_map(params![job, kind], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    })
                    .map_err(err)?
                    .collect::<Result<Vec<(u32, u32, String, u32, String, Option<String>)>, _>>()
                    .map_err(err)?;
                candidate = leased
                    .into_iter()
                    .find(|t| t.5.as_deref().is_some_and(is_dead));
            }
            let Some((idx, attempt, cursor, slices, state, previous_owner)) = candidate else {
                let retry_at_ms: Option<i64> = tx
                    .query_row(
                        "SELECT MIN(CASE WHEN state = 'leased' THEN expires_at ELSE not_before END)
                         FROM tasks WHERE job = ? AND kind = ? AND state IN ('pending', 'leased')",
                        params![job, kind],
                        |r| r.get(0),
                    )
                    .map_err(err)?;
                return Ok(Acquired::Wait {
                    retry_at_ms: retry_at_ms.unwrap_or(now_ms),
                });
            };
            let attempt = attempt + 1;
            if state == "leased" {
                // The previous holder crashed or stalled: its attempt is abandoned, not failed.
                tx.execute(
                    "UPDATE attempts SET outcome = 'abandoned', ended_ms = ?
                     WHERE job = ? AND kind = ? AND idx = ? AND attempt = ?",
                    params![now_ms, job, kind, idx, attempt - 1],
                )
                .map_err(err)?;
            }
            tx.execute(
                "UPDATE tasks SET state = 'leased', owner = ?, attempt = ?, expires_at = ?
                 WHERE job = ? AND kind = ? AND idx = ?",
                params![owner, attempt, now_ms + lease_ms, job, kind, idx],
            )
            .map_err(err)?;
            tx.execute(
                "INSERT INTO attempts (job, kind, idx, attempt, owner, started_ms)
                 VALUES (?, ?, ?, ?, ?, ?)",
                params![job, kind, idx, attempt, owner, now_ms],
            )
            .map_err(err)?;
            let lease = Lease {
                job,
                kind: kind.clone(),
                idx,
                attempt,
                owner: owner.to_owned(),
                cursor,
                slices,
            };
            let (name, detail) = match (state.as_str(), previous_owner) {
                ("leased", Some(prev)) => ("lease-taken-over", Some(format!("from {prev}"))),
                _ if attempt > 1 => ("task-retried", None),
                _ => ("task-started", None),
            };
            event(
                tx,
                err,
                job,
                now_ms,
                name,
                Some((&lease, None)),
                detail.as_deref(),
            )?;
            Ok(Acquired::Lease(lease))
        })
    }

    fn fenced(lease: &Lease) -> StoreError {
        StoreError::Fenced {
            job: lease.job,
            kind: lease.kind.clone(),
            idx: lease.idx,
            attempt: lease.attempt,
        }
    }

    /// Extends a lease to `now_ms + lease_ms`; fails with [`StoreError::Fenced`] when it was lost.
    pub fn heartbeat(
        &mut self,
        lease: &Lease,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<(), StoreError> {
        let changed = self
            .conn
            .execute(
                "UPDATE tasks SET expires_at = ?
                 WHERE job = ? AND kind = ? AND idx = ? AND attempt = ? AND state = 'leased'",
                params![
                    now_ms + lease_ms,
                    lease.job,
                    lease.kind,
                    lease.idx,
                    lease.attempt
                ],
            )
            .map_err(self.err())?;
        if changed == 1 {
            Ok(())
        } else {
            Err(Self::fenced(lease))
        }
    }

    /// Records that a slice started (a lifecycle event; no state changes).
    pub fn slice_started(&mut self, lease: &Lease, now_ms: i64) -> Result<(), StoreError> {
        self.immediate(|tx, err| {
            event(
                tx,
                err,
                lease.job,
                now_ms,
                "slice-started",
                Some((lease, Some(lease.slices))),
                None,
            )
        })
    }

    /// Commits one slice in one transaction: the new cursor, the slice row with its counter
    /// deltas, its output files, the task's counter totals; with `last`, the task is done and,
    /// if it was its phase's last, the next phase opens. Refused (and nothing written) when the
    /// lease was lost, or when the job would exceed `max_job_counters` distinct counter names.
    pub fn commit_slice(
        &mut self,
        lease: &mut Lease,
        commit: &SliceCommit<'_>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let SliceCommit {
            cursor,
            outputs,
            counters,
            last,
            max_job_counters,
        } = *commit;
        self.immediate(|tx, err| {
            let slice = lease.slices;
            let changed = tx
                .execute(
                    "UPDATE tasks SET cursor = ?, slices = slices + 1,
                            state = CASE WHEN ? THEN 'done' ELSE 'leased' END,
                            owner = CASE WHEN ? THEN NULL ELSE owner END
                     WHERE job = ? AND kind = ? AND idx = ? AND attempt = ? AND state = 'leased'",
                    params![cursor, last, last, lease.job, lease.kind, lease.idx, lease.attempt],
                )
                .map_err(err)?;
            if changed != 1 {
                return Err(Self::fenced(lease));
            }
            let deltas = serde_json::to_string(
                &counters.iter().map(|(k, v)| (k.as_str(), *v)).collect::<std::collections::BTreeMap<_, _>>(),
            )
            .expect("counters serialise");
            tx.execute(
                "INSERT INTO slices (job, kind, idx, slice, attempt, cursor, counters, committed_ms)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                params![lease.job, lease.kind, lease.idx, slice, lease.attempt, cursor, deltas, now_ms],
            )
            .map_err(err)?;
            for o in outputs {
                tx.execute(
                    "INSERT INTO outputs (job, kind, idx, slice, part, path, bytes, records, checksum)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    params![
                        lease.job, lease.kind, lease.idx, slice, o.part, o.path,
                        o.bytes as i64, o.records as i64, o.checksum
                    ],
                )
                .map_err(err)?;
            }
            for (name, delta) in counters {
                tx.execute(
                    "INSERT INTO counters (job, kind, idx, name, value) VALUES (?, ?, ?, ?, ?)
                     ON CONFLICT (job, kind, idx, name) DO UPDATE SET value = value + excluded.value",
                    params![lease.job, lease.kind, lease.idx, name, delta],
                )
                .map_err(err)?;
            }
            if let Some(cap) = max_job_counters
                && counters.iter().any(|(n, _)| n.starts_with("job."))
            {
                let count: u32 = tx
                    .query_row(
                        "SELECT COUNT(DISTINCT name) FROM counters WHERE job = ? AND name LIKE 'job.%'",
                        [lease.job],
                        |r| r.get(0),
                    )
                    .map_err(err)?;
                if count > cap {
                    // Rolled back with the rest of the transaction.
                    let example = counters
                        .iter()
                        .rev()
                        .find(|(n, _)| n.starts_with("job."))
                        .map(|(n, _)| n["job.".len()..].to_owned())
                        .unwrap_or_default();
                    return Err(StoreError::TooManyCounters {
                        job: lease.job,
                        count,
                        cap,
                        example,
                    });
                }
            }
            event(tx, err, lease.job, now_ms, "slice-committed", Some((lease, Some(slice))), Some(cursor))?;
            if last {
                tx.execute(
                    "UPDATE attempts SET outcome = 'done', ended_ms = ?
                     WHERE job = ? AND kind = ? AND idx = ? AND attempt = ?",
                    params![now_ms, lease.job, lease.kind, lease.idx, lease.attempt],
                )
                .map_err(err)?;
                event(tx, err, lease.job, now_ms, "task-completed", Some((lease, None)), None)?;
                advance_phase(tx, err, lease.job, &lease.kind, now_ms)?;
            }
            // Everything is written but not committed: a crash here must lose all of it.
            failpoint(&format!("inside-commit-{}", lease.kind));
            Ok(())
        })?;
        // Only once the commit is durable does the worker's view of its lease move on.
        lease.cursor = cursor.to_owned();
        lease.slices += 1;
        Ok(())
    }

    /// Records a failed attempt: what kind of failure it was (`trap`, `job-error`, `input`...),
    /// its error and signature. The task goes back to pending, runnable again at the retry
    /// time, or, with [`Retry::Never`] or once it has failed `max_attempts` times, to failed,
    /// and the job with it. Returns whether it will be retried.
    pub fn fail_attempt(
        &mut self,
        lease: &Lease,
        failure: &Failure<'_>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.immediate(|tx, err| {
            let failures: u32 = tx
                .query_row(
                    "SELECT failures FROM tasks WHERE job = ? AND kind = ? AND idx = ? AND attempt = ? AND state = 'leased'",
                    params![lease.job, lease.kind, lease.idx, lease.attempt],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?
                .ok_or_else(|| Self::fenced(lease))?;
            let failures = failures + 1;
            let (retry, retry_at_ms) = match failure.retry {
                Retry::Until { max_attempts, at_ms } => (failures < max_attempts, at_ms),
                Retry::Never => (false, 0),
            };
            tx.execute(
                "UPDATE tasks SET state = ?, owner = NULL, expires_at = NULL, failures = ?, not_before = ?
                 WHERE job = ? AND kind = ? AND idx = ?",
                params![
                    if retry { "pending" } else { "failed" },
                    failures,
                    retry_at_ms,
                    lease.job,
                    lease.kind,
                    lease.idx
                ],
            )
            .map_err(err)?;
            tx.execute(
                "UPDATE attempts SET outcome = 'failed', failure = ?, error = ?, signature = ?, ended_ms = ?
                 WHERE job = ? AND kind = ? AND idx = ? AND attempt = ?",
                params![
                    failure.kind,
                    failure.error,
                    failure.signature,
                    now_ms,
                    lease.job,
                    lease.kind,
                    lease.idx,
                    lease.attempt
                ],
            )
            .map_err(err)?;
            event(tx, err, lease.job, now_ms, "attempt-failed", Some((lease, Some(lease.slices))), Some(failure.error))?;
            if !retry {
                tx.execute(
                    "UPDATE jobs SET phase = 'failed', error = ?, finished_ms = ? WHERE id = ?",
                    params![failure.error, now_ms, lease.job],
                )
                .map_err(err)?;
                event(tx, err, lease.job, now_ms, "job-failed", Some((lease, None)), Some(failure.error))?;
            }
            Ok(retry)
        })
    }

    /// The signature of the task's most recent failed attempt before `lease`'s, if any.
    pub fn previous_failure(&self, lease: &Lease) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row(
                "SELECT signature FROM attempts
                 WHERE job = ? AND kind = ? AND idx = ? AND attempt < ? AND outcome = 'failed'
                 ORDER BY attempt DESC LIMIT 1",
                params![lease.job, lease.kind, lease.idx, lease.attempt],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(self.err())
    }

    /// Records that a commit (or heartbeat) of `lease` was refused because the lease was lost.
    pub fn record_refusal(
        &mut self,
        lease: &Lease,
        what: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.immediate(|tx, err| {
            tx.execute(
                "UPDATE attempts SET outcome = 'refused', ended_ms = ?
                 WHERE job = ? AND kind = ? AND idx = ? AND attempt = ?
                   AND (outcome IS NULL OR outcome = 'abandoned')",
                params![now_ms, lease.job, lease.kind, lease.idx, lease.attempt],
            )
            .map_err(err)?;
            event(
                tx,
                err,
                lease.job,
                now_ms,
                "commit-refused",
                Some((lease, Some(lease.slices))),
                Some(what),
            )
        })
    }

    /// Every committed output of the job's tasks of `kind`, in (task, slice, path) order.
    pub fn outputs(&self, job: i64, kind: &str) -> Result<Vec<CommittedOutput>, StoreError> {
        self.rows(
            "SELECT idx, slice, part, path, bytes, records, checksum FROM outputs
             WHERE job = ? AND kind = ? ORDER BY idx, slice, path",
            params![job, kind],
            |r| {
                Ok(CommittedOutput {
                    idx: r.get(0)?,
                    slice: r.get(1)?,
                    file: OutputFile {
                        part: r.get(2)?,
                        path: r.get(3)?,
                        bytes: r.get::<_, i64>(4)? as u64,
                        records: r.get::<_, i64>(5)? as u64,
                        checksum: r.get(6)?,
                    },
                })
            },
        )
    }

    /// The job's counters: every task's committed totals, summed.
    pub fn job_counters(&self, job: i64) -> Result<Vec<(String, i64)>, StoreError> {
        self.rows(
            "SELECT name, SUM(value) FROM counters WHERE job = ? GROUP BY name ORDER BY name",
            [job],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }
}

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        name: r.get(1)?,
        fingerprint: r.get(2)?,
        output: r.get(3)?,
        spec: r.get(4)?,
        phase: r.get(5)?,
        error: r.get(6)?,
        created_ms: r.get(7)?,
        finished_ms: r.get(8)?,
    })
}

/// Inserts a lifecycle event; `task` names the lease (and slice) it concerns.
fn event(
    tx: &rusqlite::Transaction<'_>,
    err: ErrFn<'_>,
    job: i64,
    now_ms: i64,
    name: &str,
    task: Option<(&Lease, Option<u32>)>,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    let (kind, idx, slice, attempt, owner) = match task {
        Some((l, slice)) => (
            Some(l.kind.as_str()),
            Some(l.idx),
            slice,
            Some(l.attempt),
            Some(l.owner.as_str()),
        ),
        None => (None, None, None, None, None),
    };
    tx.execute(
        "INSERT INTO events (job, at_ms, event, kind, idx, slice, attempt, owner, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![job, now_ms, name, kind, idx, slice, attempt, owner, detail],
    )
    .map_err(err)?;
    Ok(())
}

/// After the last task of `kind` is done, opens the next phase: map → reduce (if the job has
/// reduce tasks) → finalize → done.
fn advance_phase(
    tx: &rusqlite::Transaction<'_>,
    err: ErrFn<'_>,
    job: i64,
    kind: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    let unfinished: i64 = tx
        .query_row(
            "SELECT COUNT(*) FROM tasks WHERE job = ? AND kind = ? AND state != 'done'",
            params![job, kind],
            |r| r.get(0),
        )
        .map_err(err)?;
    if unfinished > 0 {
        return Ok(());
    }
    let next = match kind {
        "map" => {
            let reducers: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM tasks WHERE job = ? AND kind = 'reduce'",
                    [job],
                    |r| r.get(0),
                )
                .map_err(err)?;
            if reducers > 0 { "reduce" } else { "finalize" }
        }
        "reduce" => "finalize",
        _ => "done",
    };
    tx.execute(
        "UPDATE jobs SET phase = ?, finished_ms = CASE WHEN ? = 'done' THEN ? ELSE NULL END
         WHERE id = ? AND phase = ?",
        params![next, next, now_ms, job, kind],
    )
    .map_err(err)?;
    let name = if next == "done" {
        "job-completed"
    } else {
        "phase-started"
    };
    event(tx, err, job, now_ms, name, None, Some(next))
}

/// A crash-injection point for the reliability tests: when the environment variable
/// `MR_FAILPOINT` is `NAME` or `NAME:N`, the process kills itself with SIGKILL the N-th time
/// (default first) execution reaches `failpoint(NAME)`. Costs one relaxed load when unset.
pub fn failpoint(name: &str) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let armed = ARMED.get_or_init(|| {
        let spec = std::env::var("MR_FAILPOINT").ok()?;
        let (point, n) = match spec.split_once(':') {
            Some((p, n)) => (p.to_owned(), n.parse().unwrap_or(1)),
            None => (spec, 1),
        };
        Some((point, n.max(1)))
    });
    let Some((point, n)) = armed else { return };
    if point != name || HITS.fetch_add(1, Ordering::Relaxed) + 1 != *n {
        return;
    }
    eprintln!(
        "mr: failpoint {name} reached: killing this process (pid {})",
        std::process::id()
    );
    // SIGKILL, not abort(): nothing may run after this point, exactly as with `kill -9`.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &std::process::id().to_string()])
        .status();
    // `kill` is on every system mr supports; should it be missing, die anyway.
    std::process::abort();
}

#[cfg(test)]
mod tests;
