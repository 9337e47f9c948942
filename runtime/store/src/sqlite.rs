//! The SQLite backend: one database file, for one machine (or a filesystem every worker
//! shares). WAL, `synchronous = FULL`, a 60 s busy timeout, and `BEGIN IMMEDIATE` for every
//! read-then-write transaction, so concurrent processes queue instead of failing with
//! `SQLITE_BUSY`. Its clock is the local system clock (everyone using the file is on one host),
//! replaceable in tests ([`SqliteStore::open_with_clock`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::model::*;
use crate::{JobStore, StoreError};

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
-- A job can be cancelled: SQLite cannot alter a CHECK constraint, so the table is rebuilt.
CREATE TABLE jobs_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    output      TEXT NOT NULL,
    spec        TEXT NOT NULL,
    phase       TEXT NOT NULL DEFAULT 'map'
                CHECK (phase IN ('map', 'reduce', 'finalize', 'done', 'failed', 'cancelled')),
    error       TEXT,
    created_ms  INTEGER NOT NULL,
    finished_ms INTEGER
);
INSERT INTO jobs_new SELECT * FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
-- Completion hooks (--notify, --on-done): delivered once per job, claimed like a task.
CREATE TABLE hooks (
    job         INTEGER NOT NULL,
    name        TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'delivered', 'failed')),
    attempt     INTEGER NOT NULL DEFAULT 0,
    owner       TEXT,
    expires_at  INTEGER,
    not_before  INTEGER NOT NULL DEFAULT 0,
    detail      TEXT,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (job, name)
);
-- Job components by content, for workers on hosts that do not have the file.
CREATE TABLE components (
    sha256      TEXT PRIMARY KEY,
    bytes       BLOB NOT NULL
);
",
    r"
-- Pipelines: stages, each a job, chained by their outputs (see mr-exec's pipeline module).
CREATE TABLE pipelines (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    output      TEXT NOT NULL UNIQUE,
    definition  TEXT NOT NULL,
    phase       TEXT NOT NULL DEFAULT 'running' CHECK (phase IN ('running', 'done', 'failed')),
    error       TEXT,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    finished_ms INTEGER
);
CREATE TABLE stages (
    pipeline    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'waiting'
                CHECK (state IN ('waiting', 'running', 'done', 'reused', 'failed')),
    fingerprint TEXT,
    job         INTEGER,
    claims      INTEGER NOT NULL DEFAULT 0,
    owner       TEXT,
    expires_at  INTEGER,
    reason      TEXT,
    detail      TEXT,
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (pipeline, name)
);
",
    r"
-- Straggler splitting: a running map task can hand the unread rest of its shard to a new
-- task. `origin` is the planned shard a task reads (part of), `position` where in it the
-- task starts (sorts in input order; empty for the planned task), `bounds` the executor's
-- encoding of what the task reads when that is not its planned shard, `split_wanted` a
-- request from an idle worker that the task's owner answers at its next slice commit.
ALTER TABLE tasks ADD COLUMN origin INTEGER;
ALTER TABLE tasks ADD COLUMN position TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN bounds TEXT;
ALTER TABLE tasks ADD COLUMN split_wanted INTEGER NOT NULL DEFAULT 0;
UPDATE tasks SET origin = idx;
",
];

/// The first migration alone, for the test that upgrades an old store.
#[cfg(test)]
pub(crate) const MIGRATION_1_FOR_TESTS: &str = MIGRATIONS[0];

macro_rules! sql_enum {
    ($($name:ident),*) => {$(
        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e: String| FromSqlError::Other(e.into()))
            }
        }
    )*};
}

sql_enum!(
    TaskKind,
    Phase,
    TaskState,
    Outcome,
    EventKind,
    HookState,
    PipelinePhase,
    StageState
);

/// A clock: ms since the epoch.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

fn system_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64
}

/// A connection to a SQLite job store.
pub struct SqliteStore {
    conn: Connection,
    path: String,
    clock: Clock,
}

type ErrFn<'a> = &'a dyn Fn(rusqlite::Error) -> StoreError;

fn db_error(path: &str, source: rusqlite::Error) -> StoreError {
    StoreError::Database {
        store: path.to_owned(),
        message: source.to_string(),
        source: Box::new(source),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_clock(path, Arc::new(system_clock))
    }

    /// [`SqliteStore::open`] with another clock (for tests that move time by hand).
    pub fn open_with_clock(path: &Path, clock: Clock) -> Result<Self, StoreError> {
        let display = path.display().to_string();
        let err = |source| db_error(&display, source);
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(60)).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        let mut store = SqliteStore {
            conn,
            path: display,
            clock,
        };
        store.migrate()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn now(&self) -> i64 {
        (self.clock)()
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
        |source| db_error(&self.path, source)
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction (it takes the write lock up front, so a
    /// read-then-write never fails half way with `SQLITE_BUSY`) and commits when it returns
    /// `Ok`; an `Err` rolls back. `body` gets the transaction, the error mapper and the time.
    fn immediate<T>(
        &mut self,
        body: impl FnOnce(&rusqlite::Transaction<'_>, ErrFn<'_>, i64) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let now = self.now();
        let SqliteStore { conn, path, .. } = self;
        let err = |source| db_error(path, source);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let out = body(&tx, &err, now)?;
        tx.commit().map_err(err)?;
        Ok(out)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        self.immediate(|tx, err, _| {
            let version: i64 = tx
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(err)?;
            let supported = MIGRATIONS.len() as i64;
            if version > supported {
                return Err(StoreError::TooNew {
                    store: path,
                    found: version,
                    supported,
                });
            }
            if version == 0 {
                let tables: i64 = tx
                    .query_row(
                        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
                        [],
                        |r| r.get(0),
                    )
                    .map_err(err)?;
                if tables > 0 {
                    return Err(StoreError::Unusable {
                        store: path,
                        message:
                            "it holds tables but no mr schema version (another program's database?)"
                                .into(),
                    });
                }
            }
            // Each migration and the version it reaches commit together: a store is never
            // half migrated.
            for migration in &MIGRATIONS[version as usize..] {
                tx.execute_batch(migration).map_err(err)?;
            }
            tx.pragma_update(None, "user_version", supported)
                .map_err(err)
        })
    }

    fn job_where(
        &self,
        condition: &str,
        value: impl rusqlite::ToSql,
    ) -> Result<Option<JobRow>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE {condition}"),
                [value],
                job_row,
            )
            .optional()
            .map_err(self.err())
    }

    /// The refusal for a write of `lease` that changed no row: the job was cancelled, or the
    /// lease was lost.
    fn refusal(tx: &rusqlite::Transaction<'_>, lease: &Lease) -> StoreError {
        // Only to say which refusal it is: if this read fails, "fenced" is still true.
        let phase: Option<Phase> = tx
            .query_row("SELECT phase FROM jobs WHERE id = ?", [lease.job], |r| {
                r.get(0)
            })
            .optional()
            .unwrap_or(None);
        StoreError::refusal(lease, phase)
    }
}

const JOB_COLUMNS: &str =
    "id, name, fingerprint, output, spec, phase, error, created_ms, finished_ms";

const PIPELINE_COLUMNS: &str =
    "id, name, output, definition, phase, error, created_ms, updated_ms, finished_ms";

fn pipeline_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PipelineRow> {
    Ok(PipelineRow {
        id: r.get(0)?,
        name: r.get(1)?,
        output: r.get(2)?,
        definition: r.get(3)?,
        phase: r.get(4)?,
        error: r.get(5)?,
        created_ms: r.get(6)?,
        updated_ms: r.get(7)?,
        finished_ms: r.get(8)?,
    })
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
    kind: EventKind,
    task: Option<(&Lease, Option<u32>)>,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    let (task_kind, idx, slice, attempt, owner) = match task {
        Some((l, slice)) => (
            Some(l.kind),
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
        params![
            job, now_ms, kind, task_kind, idx, slice, attempt, owner, detail
        ],
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
    kind: TaskKind,
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
    let reducers: i64 = tx
        .query_row(
            "SELECT COUNT(*) FROM tasks WHERE job = ? AND kind = 'reduce'",
            [job],
            |r| r.get(0),
        )
        .map_err(err)?;
    let next = Phase::after(kind, reducers > 0);
    tx.execute(
        "UPDATE jobs SET phase = ?, finished_ms = CASE WHEN ? = 'done' THEN ? ELSE NULL END
         WHERE id = ? AND phase = ?",
        params![next, next, now_ms, job, Phase::of(kind)],
    )
    .map_err(err)?;
    event(
        tx,
        err,
        job,
        now_ms,
        next.opened_event(),
        None,
        Some(next.as_str()),
    )
}

/// A task row as `acquire` reads it.
type Candidate = (
    u32,
    u32,
    String,
    u32,
    TaskState,
    Option<String>,
    Option<String>,
);

fn candidate(r: &rusqlite::Row<'_>) -> rusqlite::Result<Candidate> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

impl JobStore for SqliteStore {
    fn describe(&self) -> String {
        self.path.clone()
    }

    fn now_ms(&self) -> Result<i64, StoreError> {
        Ok(self.now())
    }

    fn create_job(&mut self, job: &NewJob<'_>) -> Result<(i64, bool), StoreError> {
        self.immediate(|tx, err, now_ms| {
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
                .prepare("INSERT INTO tasks (job, kind, idx, origin) VALUES (?, ?, ?, ?)")
                .map_err(err)?;
            for (kind, n) in [
                (TaskKind::Map, job.map_tasks),
                (TaskKind::Reduce, job.reduce_tasks),
                (TaskKind::Finalize, 1),
            ] {
                for idx in 0..n {
                    insert.execute(params![id, kind, idx, idx]).map_err(err)?;
                }
            }
            let detail = format!("{} map tasks, {} reduce tasks", job.map_tasks, job.reduce_tasks);
            event(tx, err, id, now_ms, EventKind::JobSubmitted, None, Some(&detail))?;
            Ok((id, true))
        })
    }

    fn find_job(&self, fingerprint: &str) -> Result<Option<JobRow>, StoreError> {
        self.job_where("fingerprint = ?", fingerprint)
    }

    fn job(&self, id: i64) -> Result<JobRow, StoreError> {
        self.job_where("id = ?", id)?
            .ok_or_else(|| StoreError::NoSuchJob {
                store: self.path.clone(),
                job: id,
            })
    }

    fn jobs(&self) -> Result<Vec<JobRow>, StoreError> {
        self.rows(
            &format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY id"),
            [],
            job_row,
        )
    }

    fn update_plan(&mut self, id: i64, spec: &str, detail: &str) -> Result<(), StoreError> {
        self.immediate(|tx, err, now_ms| {
            tx.execute("UPDATE jobs SET spec = ? WHERE id = ?", params![spec, id])
                .map_err(err)?;
            event(
                tx,
                err,
                id,
                now_ms,
                EventKind::JobSettingsChanged,
                None,
                Some(detail),
            )
        })
    }

    fn delete_job(&mut self, id: i64) -> Result<(), StoreError> {
        self.immediate(|tx, err, _| {
            for table in [
                "events", "attempts", "counters", "outputs", "slices", "tasks", "hooks",
            ] {
                tx.execute(&format!("DELETE FROM {table} WHERE job = ?"), [id])
                    .map_err(err)?;
            }
            tx.execute("DELETE FROM jobs WHERE id = ?", [id])
                .map_err(err)?;
            Ok(())
        })
    }

    fn reset_failed(&mut self, id: i64) -> Result<bool, StoreError> {
        self.immediate(|tx, err, now_ms| {
            let kind: Option<TaskKind> = tx
                .query_row(
                    "SELECT kind FROM tasks WHERE job = ? AND state = 'failed'
                     ORDER BY CASE kind WHEN 'map' THEN 0 WHEN 'reduce' THEN 1 ELSE 2 END LIMIT 1",
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
                params![Phase::of(kind), id],
            )
            .map_err(err)?;
            event(
                tx,
                err,
                id,
                now_ms,
                EventKind::JobResumed,
                None,
                Some("failed tasks reset for a new round of attempts"),
            )?;
            Ok(true)
        })
    }

    fn cancel_job(&mut self, id: i64) -> Result<Cancelled, StoreError> {
        let store = self.path.clone();
        self.immediate(|tx, err, now_ms| {
            let phase: Phase = tx
                .query_row("SELECT phase FROM jobs WHERE id = ?", [id], |r| r.get(0))
                .optional()
                .map_err(err)?
                .ok_or(StoreError::NoSuchJob { store, job: id })?;
            if phase.is_over() {
                return Ok(Cancelled::AlreadyOver(phase));
            }
            tx.execute(
                "UPDATE jobs SET phase = 'cancelled', finished_ms = ? WHERE id = ?",
                params![now_ms, id],
            )
            .map_err(err)?;
            event(
                tx,
                err,
                id,
                now_ms,
                EventKind::JobCancelled,
                None,
                Some(phase.as_str()),
            )?;
            Ok(Cancelled::Now)
        })
    }

    fn acquire(
        &mut self,
        job: i64,
        owner: &str,
        lease_ms: i64,
        is_dead: &dyn Fn(&str) -> bool,
    ) -> Result<Acquired, StoreError> {
        let store = self.path.clone();
        self.immediate(|tx, err, now_ms| {
            let (phase, error): (Phase, Option<String>) = tx
                .query_row("SELECT phase, error FROM jobs WHERE id = ?", [job], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(err)?
                .ok_or(StoreError::NoSuchJob { store, job })?;
            let Some(kind) = phase.task_kind() else {
                return Ok(Acquired::Finished { phase, error });
            };
            let mut found: Option<Candidate> = tx
                .query_row(
                    "SELECT idx, attempt, cursor, slices, state, owner, bounds FROM tasks
                     WHERE job = ? AND kind = ?
                       AND ((state = 'pending' AND not_before <= ?)
                            OR (state = 'leased' AND expires_at <= ?))
                     ORDER BY idx LIMIT 1",
                    params![job, kind, now_ms, now_ms],
                    candidate,
                )
                .optional()
                .map_err(err)?;
            if found.is_none() {
                let mut stmt = tx
                    .prepare(
                        "SELECT idx, attempt, cursor, slices, state, owner, bounds FROM tasks
                         WHERE job = ? AND kind = ? AND state = 'leased' ORDER BY idx",
                    )
                    .map_err(err)?;
                let leased = stmt
                    .query_map(params![job, kind], candidate)
                    .map_err(err)?
                    .collect::<Result<Vec<Candidate>, _>>()
                    .map_err(err)?;
                found = leased
                    .into_iter()
                    .find(|t| t.5.as_deref().is_some_and(is_dead));
            }
            let Some((idx, attempt, cursor, slices, state, previous_owner, bounds)) = found else {
                let retry_at_ms: Option<i64> = tx
                    .query_row(
                        "SELECT MIN(CASE WHEN state = 'leased' THEN expires_at ELSE not_before END)
                         FROM tasks WHERE job = ? AND kind = ? AND state IN ('pending', 'leased')",
                        params![job, kind],
                        |r| r.get(0),
                    )
                    .map_err(err)?;
                return Ok(Acquired::Wait {
                    retry_in_ms: retry_at_ms.map_or(0, |at| (at - now_ms).max(0)),
                });
            };
            let attempt = attempt + 1;
            if state == TaskState::Leased {
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
                kind,
                idx,
                attempt,
                owner: owner.to_owned(),
                cursor,
                slices,
                bounds,
            };
            let (name, detail) = EventKind::for_lease(state, previous_owner.as_deref(), attempt);
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

    fn heartbeat(&mut self, lease: &Lease, lease_ms: i64) -> Result<(), StoreError> {
        self.immediate(|tx, err, now_ms| {
            let changed = tx
                .execute(
                    "UPDATE tasks SET expires_at = ?
                     WHERE job = ? AND kind = ? AND idx = ? AND attempt = ? AND state = 'leased'
                       AND (SELECT phase FROM jobs WHERE id = tasks.job) != 'cancelled'",
                    params![
                        now_ms + lease_ms,
                        lease.job,
                        lease.kind,
                        lease.idx,
                        lease.attempt
                    ],
                )
                .map_err(err)?;
            if changed == 1 {
                Ok(())
            } else {
                Err(Self::refusal(tx, lease))
            }
        })
    }

    fn split_wanted(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.conn
            .query_row(
                "SELECT split_wanted FROM tasks WHERE job = ? AND kind = ? AND idx = ?",
                params![lease.job, lease.kind, lease.idx],
                |r| r.get(0),
            )
            .map_err(self.err())
    }

    fn request_split(&mut self, job: i64, idx: u32) -> Result<bool, StoreError> {
        self.immediate(|tx, err, _| {
            let changed = tx
                .execute(
                    "UPDATE tasks SET split_wanted = 1
                     WHERE job = ? AND kind = 'map' AND idx = ? AND state = 'leased'
                       AND split_wanted = 0",
                    params![job, idx],
                )
                .map_err(err)?;
            Ok(changed == 1)
        })
    }

    fn slice_started(&mut self, lease: &Lease) -> Result<(), StoreError> {
        self.immediate(|tx, err, now_ms| {
            event(
                tx,
                err,
                lease.job,
                now_ms,
                EventKind::SliceStarted,
                Some((lease, Some(lease.slices))),
                None,
            )
        })
    }

    fn commit_slice(
        &mut self,
        lease: &mut Lease,
        commit: &SliceCommit<'_>,
    ) -> Result<Option<u32>, StoreError> {
        let SliceCommit {
            cursor,
            outputs,
            last,
            max_job_counters,
            answers_split,
            split,
            ..
        } = *commit;
        let held: &Lease = lease;
        let split_to = self.immediate(|tx, err, now_ms| {
            let lease = held;
            let slice = lease.slices;
            let changed = tx
                .execute(
                    "UPDATE tasks SET cursor = ?, slices = slices + 1,
                            state = CASE WHEN ? THEN 'done' ELSE 'leased' END,
                            owner = CASE WHEN ? THEN NULL ELSE owner END
                     WHERE job = ? AND kind = ? AND idx = ? AND attempt = ? AND state = 'leased'
                       AND (SELECT phase FROM jobs WHERE id = tasks.job) != 'cancelled'",
                    params![cursor, last, last, lease.job, lease.kind, lease.idx, lease.attempt],
                )
                .map_err(err)?;
            if changed != 1 {
                return Err(Self::refusal(tx, lease));
            }
            let mut split_to = None;
            if answers_split {
                let wanted: bool = tx
                    .query_row(
                        "SELECT split_wanted FROM tasks WHERE job = ? AND kind = ? AND idx = ?",
                        params![lease.job, lease.kind, lease.idx],
                        |r| r.get(0),
                    )
                    .map_err(err)?;
                tx.execute(
                    "UPDATE tasks SET split_wanted = 0 WHERE job = ? AND kind = ? AND idx = ?",
                    params![lease.job, lease.kind, lease.idx],
                )
                .map_err(err)?;
                if let (true, false, Some(split)) = (wanted, last, split) {
                    let new_idx: u32 = tx
                        .query_row(
                            "SELECT MAX(idx) + 1 FROM tasks WHERE job = ? AND kind = ?",
                            params![lease.job, lease.kind],
                            |r| r.get(0),
                        )
                        .map_err(err)?;
                    tx.execute(
                        "UPDATE tasks SET bounds = ? WHERE job = ? AND kind = ? AND idx = ?",
                        params![split.kept, lease.job, lease.kind, lease.idx],
                    )
                    .map_err(err)?;
                    tx.execute(
                        "INSERT INTO tasks (job, kind, idx, origin, position, bounds)
                         SELECT job, kind, ?, origin, ?, ? FROM tasks
                         WHERE job = ? AND kind = ? AND idx = ?",
                        params![new_idx, split.position, split.given, lease.job, lease.kind, lease.idx],
                    )
                    .map_err(err)?;
                    let detail = format!("task {new_idx}: {}", split.detail);
                    event(tx, err, lease.job, now_ms, EventKind::TaskSplit, Some((lease, Some(slice))), Some(&detail))?;
                    split_to = Some(new_idx);
                }
            }
            let sums = commit.summed_counters();
            let deltas = counters_json(&sums);
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
            for (name, delta) in &sums {
                tx.execute(
                    "INSERT INTO counters (job, kind, idx, name, value) VALUES (?, ?, ?, ?, ?)
                     ON CONFLICT (job, kind, idx, name) DO UPDATE SET value = value + excluded.value",
                    params![lease.job, lease.kind, lease.idx, name, delta],
                )
                .map_err(err)?;
            }
            if let Some(cap) = max_job_counters
                && commit.names_job_counters()
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
                    return Err(commit.too_many_counters(lease.job, count, cap));
                }
            }
            event(tx, err, lease.job, now_ms, EventKind::SliceCommitted, Some((lease, Some(slice))), Some(cursor))?;
            if last {
                tx.execute(
                    "UPDATE attempts SET outcome = 'done', ended_ms = ?
                     WHERE job = ? AND kind = ? AND idx = ? AND attempt = ?",
                    params![now_ms, lease.job, lease.kind, lease.idx, lease.attempt],
                )
                .map_err(err)?;
                event(tx, err, lease.job, now_ms, EventKind::TaskCompleted, Some((lease, None)), None)?;
                advance_phase(tx, err, lease.job, lease.kind, now_ms)?;
            }
            // Everything is written but not committed: a crash here must lose all of it.
            crate::failpoint(&format!("inside-commit-{}", lease.kind));
            Ok(split_to)
        })?;
        // Only once the commit is durable does the worker's view of its lease move on.
        lease.cursor = cursor.to_owned();
        lease.slices += 1;
        if let (Some(_), Some(split)) = (split_to, split) {
            lease.bounds = Some(split.kept.to_owned());
        }
        Ok(split_to)
    }

    fn fail_attempt(&mut self, lease: &Lease, failure: &Failure<'_>) -> Result<bool, StoreError> {
        self.immediate(|tx, err, now_ms| {
            let failures: u32 = tx
                .query_row(
                    "SELECT failures FROM tasks
                     WHERE job = ? AND kind = ? AND idx = ? AND attempt = ? AND state = 'leased'",
                    params![lease.job, lease.kind, lease.idx, lease.attempt],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?
                .ok_or_else(|| StoreError::fenced(lease))?;
            let phase: Phase = tx
                .query_row("SELECT phase FROM jobs WHERE id = ?", [lease.job], |r| r.get(0))
                .map_err(err)?;
            if phase == Phase::Cancelled {
                return Err(Self::refusal(tx, lease));
            }
            let failures = failures + 1;
            let backoff = failure.retry.backoff(failures);
            let retry = backoff.is_some();
            let retry_at_ms = backoff.map_or(0, |ms| now_ms + ms);
            tx.execute(
                "UPDATE tasks SET state = ?, owner = NULL, expires_at = NULL, failures = ?, not_before = ?
                 WHERE job = ? AND kind = ? AND idx = ?",
                params![
                    if retry { TaskState::Pending } else { TaskState::Failed },
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
            event(tx, err, lease.job, now_ms, EventKind::AttemptFailed, Some((lease, Some(lease.slices))), Some(failure.error))?;
            if !retry {
                tx.execute(
                    "UPDATE jobs SET phase = 'failed', error = ?, finished_ms = ? WHERE id = ?",
                    params![failure.error, now_ms, lease.job],
                )
                .map_err(err)?;
                event(tx, err, lease.job, now_ms, EventKind::JobFailed, Some((lease, None)), Some(failure.error))?;
            }
            Ok(retry)
        })
    }

    fn previous_failure(&self, lease: &Lease) -> Result<Option<String>, StoreError> {
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

    fn record_refusal(&mut self, lease: &Lease, what: &str) -> Result<(), StoreError> {
        self.immediate(|tx, err, now_ms| {
            tx.execute(
                "UPDATE attempts SET outcome = 'refused', ended_ms = ?
                 WHERE job = ? AND kind = ? AND idx = ? AND attempt = ?
                   AND (outcome IS NULL OR outcome = 'abandoned')",
                params![now_ms, lease.job, lease.kind, lease.idx, lease.attempt],
            )
            .map_err(err)?;
            // A cancelled job's tasks stay leased by nobody: release them, so status shows no
            // running lease.
            tx.execute(
                "UPDATE tasks SET state = 'pending', owner = NULL, expires_at = NULL
                 WHERE job = ? AND kind = ? AND idx = ? AND attempt = ? AND state = 'leased'
                   AND (SELECT phase FROM jobs WHERE id = tasks.job) = 'cancelled'",
                params![lease.job, lease.kind, lease.idx, lease.attempt],
            )
            .map_err(err)?;
            event(
                tx,
                err,
                lease.job,
                now_ms,
                EventKind::CommitRefused,
                Some((lease, Some(lease.slices))),
                Some(what),
            )
        })
    }

    fn outputs(&self, job: i64, kind: TaskKind) -> Result<Vec<CommittedOutput>, StoreError> {
        self.rows(
            "SELECT o.idx, t.origin, o.slice, o.part, o.path, o.bytes, o.records, o.checksum
             FROM outputs o JOIN tasks t ON t.job = o.job AND t.kind = o.kind AND t.idx = o.idx
             WHERE o.job = ? AND o.kind = ? ORDER BY t.origin, t.position, o.idx, o.slice, o.path",
            params![job, kind],
            |r| {
                Ok(CommittedOutput {
                    idx: r.get(0)?,
                    origin: r.get(1)?,
                    slice: r.get(2)?,
                    file: OutputFile {
                        part: r.get(3)?,
                        path: r.get(4)?,
                        bytes: r.get::<_, i64>(5)? as u64,
                        records: r.get::<_, i64>(6)? as u64,
                        checksum: r.get(7)?,
                    },
                })
            },
        )
    }

    fn job_counters(&self, job: i64) -> Result<Vec<(String, i64)>, StoreError> {
        self.rows(
            "SELECT name, SUM(value) FROM counters WHERE job = ? GROUP BY name ORDER BY name",
            [job],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    fn status(&self, id: i64, events: u32) -> Result<JobStatus, StoreError> {
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
        let now_ms = self.now();
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
                 WHERE job = ? AND state = 'leased'
                 ORDER BY CASE kind WHEN 'map' THEN 0 WHEN 'reduce' THEN 1 ELSE 2 END, idx",
            [id],
            |r| {
                let expires_at_ms: i64 = r.get(5)?;
                Ok(LeaseRow {
                    kind: r.get(0)?,
                    idx: r.get(1)?,
                    owner: r.get(2)?,
                    attempt: r.get(3)?,
                    slices: r.get(4)?,
                    expires_at_ms,
                    expired: expires_at_ms <= now_ms,
                    stale: expires_at_ms <= now_ms,
                })
            },
        )?;
        let errors = self.rows(
            "SELECT kind, idx, attempt, owner, failure, error FROM attempts
                 WHERE job = ? AND error IS NOT NULL ORDER BY started_ms, kind, idx, attempt",
            [id],
            |r| {
                Ok(AttemptError {
                    kind: r.get(0)?,
                    idx: r.get(1)?,
                    attempt: r.get(2)?,
                    owner: r.get(3)?,
                    failure: r.get(4)?,
                    error: r.get(5)?,
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
            now_ms,
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

    fn tasks(&self, id: i64) -> Result<Vec<TaskRow>, StoreError> {
        let mut tasks = self.rows(
            "SELECT kind, idx, state, attempt, failures, slices, owner, origin, cursor, bounds,
                    split_wanted
             FROM tasks WHERE job = ?
             ORDER BY CASE kind WHEN 'map' THEN 0 WHEN 'reduce' THEN 1 ELSE 2 END, idx",
            [id],
            |r| {
                let idx: u32 = r.get(1)?;
                let origin: u32 = r.get(7)?;
                Ok(TaskRow {
                    kind: r.get(0)?,
                    idx,
                    state: r.get(2)?,
                    attempt: r.get(3)?,
                    failures: r.get(4)?,
                    slices: r.get(5)?,
                    owner: r.get(6)?,
                    split_from: (origin != idx).then_some(origin),
                    cursor: r.get(8)?,
                    bounds: r.get(9)?,
                    split_wanted: r.get(10)?,
                    counters: Vec::new(),
                })
            },
        )?;
        let counters = self.rows(
            "SELECT kind, idx, name, value FROM counters WHERE job = ? ORDER BY name",
            [id],
            |r| {
                Ok((
                    r.get::<_, TaskKind>(0)?,
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

    fn events(&self, id: i64, after: i64, limit: u32) -> Result<Vec<Event>, StoreError> {
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

    fn claim_hook(
        &mut self,
        job: i64,
        name: &str,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Option<u32>, StoreError> {
        self.immediate(|tx, err, now_ms| {
            tx.execute(
                "INSERT INTO hooks (job, name, updated_ms) VALUES (?, ?, ?)
                 ON CONFLICT (job, name) DO NOTHING",
                params![job, name, now_ms],
            )
            .map_err(err)?;
            let attempt: Option<u32> = tx
                .query_row(
                    "UPDATE hooks SET attempt = attempt + 1, owner = ?, expires_at = ?, updated_ms = ?
                     WHERE job = ? AND name = ? AND state = 'pending' AND not_before <= ?
                       AND (expires_at IS NULL OR expires_at <= ?)
                     RETURNING attempt",
                    params![owner, now_ms + lease_ms, now_ms, job, name, now_ms, now_ms],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?;
            Ok(attempt)
        })
    }

    fn finish_hook(
        &mut self,
        job: i64,
        name: &str,
        attempt: u32,
        outcome: HookOutcome,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.immediate(|tx, err, now_ms| {
            let (state, backoff_ms) = outcome.next_state();
            let not_before = if backoff_ms > 0 {
                now_ms + backoff_ms
            } else {
                0
            };
            let changed = tx
                .execute(
                    "UPDATE hooks SET state = ?, owner = NULL, expires_at = NULL, not_before = ?,
                            detail = ?, updated_ms = ?
                     WHERE job = ? AND name = ? AND attempt = ? AND state = 'pending'",
                    params![state, not_before, detail, now_ms, job, name, attempt],
                )
                .map_err(err)?;
            if changed == 1 {
                event(
                    tx,
                    err,
                    job,
                    now_ms,
                    outcome.event(),
                    None,
                    Some(&format!("{name}: {detail}")),
                )?;
            }
            Ok(())
        })
    }

    fn hooks(&self, job: i64) -> Result<Vec<HookRow>, StoreError> {
        self.rows(
            "SELECT name, state, attempt, detail, updated_ms FROM hooks WHERE job = ? ORDER BY name",
            [job],
            |r| {
                Ok(HookRow {
                    name: r.get(0)?,
                    state: r.get(1)?,
                    attempts: r.get(2)?,
                    detail: r.get(3)?,
                    updated_ms: r.get(4)?,
                })
            },
        )
    }

    fn put_component(&mut self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.immediate(|tx, err, _| {
            tx.execute(
                "INSERT INTO components (sha256, bytes) VALUES (?, ?) ON CONFLICT DO NOTHING",
                params![sha256, bytes],
            )
            .map_err(err)?;
            Ok(())
        })
    }

    fn component(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .query_row(
                "SELECT bytes FROM components WHERE sha256 = ?",
                [sha256],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err())
    }
    fn put_pipeline(&mut self, p: &NewPipeline<'_>) -> Result<(i64, bool), StoreError> {
        self.immediate(|tx, err, now_ms| {
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT id FROM pipelines WHERE output = ?",
                    [p.output],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?;
            let (id, created) = match existing {
                None => {
                    tx.execute(
                        "INSERT INTO pipelines (name, output, definition, created_ms, updated_ms)
                         VALUES (?, ?, ?, ?, ?)",
                        params![p.name, p.output, p.definition, now_ms, now_ms],
                    )
                    .map_err(err)?;
                    (tx.last_insert_rowid(), true)
                }
                Some(id) => {
                    tx.execute(
                        "UPDATE pipelines SET name = ?, definition = ?, phase = 'running',
                                error = NULL, finished_ms = NULL, updated_ms = ?
                         WHERE id = ?",
                        params![p.name, p.definition, now_ms, id],
                    )
                    .map_err(err)?;
                    tx.execute(
                        "UPDATE stages SET state = 'waiting', updated_ms = ? WHERE pipeline = ?",
                        params![now_ms, id],
                    )
                    .map_err(err)?;
                    (id, false)
                }
            };
            let names = serde_json::to_string(p.stages).expect("names serialise");
            tx.execute(
                "DELETE FROM stages WHERE pipeline = ? AND name NOT IN (SELECT value FROM json_each(?))",
                params![id, names],
            )
            .map_err(err)?;
            for name in p.stages {
                tx.execute(
                    "INSERT INTO stages (pipeline, name, updated_ms) VALUES (?, ?, ?)
                     ON CONFLICT (pipeline, name) DO NOTHING",
                    params![id, name, now_ms],
                )
                .map_err(err)?;
            }
            Ok((id, created))
        })
    }

    fn pipeline(&self, id: i64) -> Result<PipelineRow, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE id = ?"),
                [id],
                pipeline_row,
            )
            .optional()
            .map_err(self.err())?
            .ok_or_else(|| StoreError::NoSuchPipeline {
                store: self.path.clone(),
                pipeline: id,
            })
    }

    fn pipelines(&self) -> Result<Vec<PipelineRow>, StoreError> {
        self.rows(
            &format!("SELECT {PIPELINE_COLUMNS} FROM pipelines ORDER BY id"),
            [],
            pipeline_row,
        )
    }

    fn stages(&self, pipeline: i64) -> Result<Vec<StageRow>, StoreError> {
        self.rows(
            "SELECT name, state, fingerprint, job, claims, reason, detail, updated_ms, owner
             FROM stages WHERE pipeline = ? ORDER BY name",
            [pipeline],
            |r| {
                Ok(StageRow {
                    name: r.get(0)?,
                    state: r.get(1)?,
                    fingerprint: r.get(2)?,
                    job: r.get(3)?,
                    claims: r.get(4)?,
                    reason: r.get(5)?,
                    detail: r.get(6)?,
                    updated_ms: r.get(7)?,
                    owner: r.get(8)?,
                })
            },
        )
    }

    fn claim_stage(
        &mut self,
        pipeline: i64,
        name: &str,
        owner: &str,
        lease_ms: i64,
        dead_owner: Option<&str>,
    ) -> Result<Option<u32>, StoreError> {
        self.immediate(|tx, err, now_ms| {
            tx.query_row(
                "UPDATE stages SET claims = claims + 1, owner = ?, expires_at = ?, updated_ms = ?
                 WHERE pipeline = ? AND name = ?
                   AND (expires_at IS NULL OR expires_at <= ? OR owner = ?)
                 RETURNING claims",
                params![
                    owner,
                    now_ms + lease_ms,
                    now_ms,
                    pipeline,
                    name,
                    now_ms,
                    dead_owner
                ],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)
        })
    }

    fn update_stage(
        &mut self,
        pipeline: i64,
        name: &str,
        claim: Option<u32>,
        u: &StageUpdate<'_>,
    ) -> Result<bool, StoreError> {
        self.immediate(|tx, err, now_ms| {
            let changed = tx
                .execute(
                    "UPDATE stages SET state = coalesce(?, state),
                            fingerprint = coalesce(?, fingerprint), job = coalesce(?, job),
                            reason = coalesce(?, reason), detail = coalesce(?, detail),
                            owner = CASE WHEN ? IS NULL THEN owner END,
                            expires_at = CASE WHEN ? IS NULL THEN expires_at END,
                            updated_ms = ?
                     WHERE pipeline = ? AND name = ? AND (? IS NULL OR claims = ?)
                       AND (? IS NULL OR job = ?)",
                    params![
                        u.state,
                        u.fingerprint,
                        u.job,
                        u.reason,
                        u.detail,
                        claim,
                        claim,
                        now_ms,
                        pipeline,
                        name,
                        claim,
                        claim,
                        u.if_job,
                        u.if_job
                    ],
                )
                .map_err(err)?;
            Ok(changed == 1)
        })
    }

    fn set_pipeline_phase(
        &mut self,
        id: i64,
        phase: PipelinePhase,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.immediate(|tx, err, now_ms| {
            let finished = (phase != PipelinePhase::Running).then_some(now_ms);
            tx.execute(
                "UPDATE pipelines SET phase = ?, error = ?, updated_ms = ?,
                        finished_ms = CASE WHEN ? IS NULL THEN NULL
                                           ELSE coalesce(finished_ms, ?) END
                 WHERE id = ?",
                params![phase, error, now_ms, finished, finished, id],
            )
            .map_err(err)?;
            Ok(())
        })
    }
}
