//! `mr-store`: the durable state of jobs in SQLite, and the only code that writes SQL.
//!
//! Status: the schema, migrations and the lease / fenced-commit protocol are here and tested;
//! the executor does not use them yet (see docs/architecture.md, "Not yet").
//!
//! - A **task** is a map shard or a reduce partition. A worker takes a **lease** on a task:
//!   (task, owner, attempt, expires_at). Taking a pending task, or one whose lease expired, bumps
//!   `attempt`; that number is the fencing token.
//! - Every write a worker makes is `... WHERE job = ? AND kind = ? AND idx = ? AND attempt = ?
//!   AND state = 'leased'` and must change exactly one row. A paused or zombie worker whose lease
//!   was taken over therefore can never commit: its commit fails with [`StoreError::Fenced`].
//! - A slice commit is one transaction: the task's new cursor, the slice row, its output files
//!   and its counter deltas. Counters are therefore counted exactly once, however many attempts
//!   ran.
//! - Connections use WAL, a busy timeout, and `BEGIN IMMEDIATE` for every read-then-write
//!   transaction, so concurrent processes queue instead of failing with `SQLITE_BUSY`.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

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
        /// `map` or `reduce`.
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
}

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[r"
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    spec        TEXT NOT NULL,
    phase       TEXT NOT NULL DEFAULT 'map',
    error       TEXT
);
CREATE TABLE tasks (
    job         INTEGER NOT NULL REFERENCES jobs(id),
    kind        TEXT NOT NULL CHECK (kind IN ('map', 'reduce')),
    idx         INTEGER NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'leased', 'done', 'failed')),
    owner       TEXT,
    attempt     INTEGER NOT NULL DEFAULT 0,
    expires_at  INTEGER,
    cursor      TEXT NOT NULL DEFAULT '',
    slices      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job, kind, idx)
);
CREATE TABLE slices (
    job         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    slice       INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,
    cursor      TEXT NOT NULL,
    PRIMARY KEY (job, kind, idx, slice)
);
CREATE TABLE outputs (
    job         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    slice       INTEGER NOT NULL,
    path        TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
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
    outcome     TEXT,
    error       TEXT,
    PRIMARY KEY (job, kind, idx, attempt)
);
"];

/// A lease on one task, held by one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Job id.
    pub job: i64,
    /// `map` or `reduce`.
    pub kind: String,
    /// Task index.
    pub idx: u32,
    /// Attempt number (the fencing token), from 1.
    pub attempt: u32,
    /// Who holds it.
    pub owner: String,
    /// Where the last committed slice ended.
    pub cursor: String,
    /// Slices committed so far.
    pub slices: u32,
}

/// One output file of a slice commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// Path (relative to the job's work directory).
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Content checksum.
    pub checksum: String,
}

/// A connection to the job store.
pub struct Store {
    conn: Connection,
    path: String,
}

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
        body: impl FnOnce(
            &rusqlite::Transaction<'_>,
            &dyn Fn(rusqlite::Error) -> StoreError,
        ) -> Result<T, StoreError>,
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
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
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
            .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Creates a job with `map_tasks` map tasks and `reduce_tasks` reduce tasks, or returns the
    /// existing job with the same fingerprint (rerunning the same command resumes it).
    pub fn create_job(
        &mut self,
        name: &str,
        fingerprint: &str,
        spec: &str,
        map_tasks: u32,
        reduce_tasks: u32,
    ) -> Result<(i64, bool), StoreError> {
        self.immediate(|tx, err| {
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT id FROM jobs WHERE fingerprint = ?",
                    [fingerprint],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?;
            if let Some(id) = existing {
                return Ok((id, false));
            }
            tx.execute(
                "INSERT INTO jobs (name, fingerprint, spec) VALUES (?, ?, ?)",
                params![name, fingerprint, spec],
            )
            .map_err(err)?;
            let id = tx.last_insert_rowid();
            for (kind, n) in [("map", map_tasks), ("reduce", reduce_tasks)] {
                for idx in 0..n {
                    tx.execute(
                        "INSERT INTO tasks (job, kind, idx) VALUES (?, ?, ?)",
                        params![id, kind, idx],
                    )
                    .map_err(err)?;
                }
            }
            Ok((id, true))
        })
    }

    /// Leases a task of `kind`: a pending one, or one whose lease expired before `now_ms`
    /// (taking it over bumps the attempt). `None` when every task is done or validly leased.
    pub fn acquire(
        &mut self,
        job: i64,
        kind: &str,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<Lease>, StoreError> {
        self.immediate(|tx, err| {
            let candidate: Option<(u32, u32, String, u32)> = tx
                .query_row(
                    "SELECT idx, attempt, cursor, slices FROM tasks
                     WHERE job = ? AND kind = ?
                       AND (state = 'pending' OR (state = 'leased' AND expires_at <= ?))
                     ORDER BY idx LIMIT 1",
                    params![job, kind, now_ms],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(err)?;
            let Some((idx, attempt, cursor, slices)) = candidate else {
                return Ok(None);
            };
            let attempt = attempt + 1;
            tx.execute(
                "UPDATE tasks SET state = 'leased', owner = ?, attempt = ?, expires_at = ?
                 WHERE job = ? AND kind = ? AND idx = ?",
                params![owner, attempt, now_ms + lease_ms, job, kind, idx],
            )
            .map_err(err)?;
            tx.execute(
                "INSERT INTO attempts (job, kind, idx, attempt, owner) VALUES (?, ?, ?, ?, ?)",
                params![job, kind, idx, attempt, owner],
            )
            .map_err(err)?;
            Ok(Some(Lease {
                job,
                kind: kind.to_owned(),
                idx,
                attempt,
                owner: owner.to_owned(),
                cursor,
                slices,
            }))
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

    /// Commits one slice in one transaction: the new cursor, the slice row, its output files and
    /// its counter deltas; with `last`, the task is done. Refused (and nothing written) when the
    /// lease was lost.
    pub fn commit_slice(
        &mut self,
        lease: &mut Lease,
        cursor: &str,
        outputs: &[OutputFile],
        counters: &[(&str, i64)],
        last: bool,
    ) -> Result<(), StoreError> {
        self.immediate(|tx, err| {
            let slice = lease.slices;
            let changed = tx
                .execute(
                    "UPDATE tasks SET cursor = ?, slices = slices + 1,
                            state = CASE WHEN ? THEN 'done' ELSE 'leased' END
                     WHERE job = ? AND kind = ? AND idx = ? AND attempt = ? AND state = 'leased'",
                    params![
                        cursor,
                        last,
                        lease.job,
                        lease.kind,
                        lease.idx,
                        lease.attempt
                    ],
                )
                .map_err(err)?;
            if changed != 1 {
                return Err(Self::fenced(lease));
            }
            tx.execute(
                "INSERT INTO slices (job, kind, idx, slice, attempt, cursor) VALUES (?, ?, ?, ?, ?, ?)",
                params![
                    lease.job,
                    lease.kind,
                    lease.idx,
                    slice,
                    lease.attempt,
                    cursor
                ],
            )
            .map_err(err)?;
            for o in outputs {
                tx.execute(
                    "INSERT INTO outputs (job, kind, idx, slice, path, bytes, checksum)
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                    params![
                        lease.job,
                        lease.kind,
                        lease.idx,
                        slice,
                        o.path,
                        o.bytes as i64,
                        o.checksum
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
            if last {
                tx.execute(
                    "UPDATE attempts SET outcome = 'done' WHERE job = ? AND kind = ? AND idx = ? AND attempt = ?",
                    params![lease.job, lease.kind, lease.idx, lease.attempt],
                )
                .map_err(err)?;
            }
            Ok(())
        })?;
        // Only once the commit is durable does the worker's view of its lease move on.
        lease.cursor = cursor.to_owned();
        lease.slices += 1;
        Ok(())
    }

    /// Records a failed attempt. The task goes back to pending for a retry, or to failed (and the
    /// job with it) once `max_attempts` ran. Returns whether it will be retried.
    pub fn fail_attempt(
        &mut self,
        lease: &Lease,
        error: &str,
        max_attempts: u32,
    ) -> Result<bool, StoreError> {
        self.immediate(|tx, err| {
            let retry = lease.attempt < max_attempts;
            let changed = tx
                .execute(
                    "UPDATE tasks SET state = ?, owner = NULL, expires_at = NULL
                     WHERE job = ? AND kind = ? AND idx = ? AND attempt = ? AND state = 'leased'",
                    params![
                        if retry { "pending" } else { "failed" },
                        lease.job,
                        lease.kind,
                        lease.idx,
                        lease.attempt
                    ],
                )
                .map_err(err)?;
            if changed != 1 {
                return Err(Self::fenced(lease));
            }
            tx.execute(
                "UPDATE attempts SET outcome = 'failed', error = ? WHERE job = ? AND kind = ? AND idx = ? AND attempt = ?",
                params![error, lease.job, lease.kind, lease.idx, lease.attempt],
            )
            .map_err(err)?;
            if !retry {
                tx.execute(
                    "UPDATE jobs SET phase = 'failed', error = ? WHERE id = ?",
                    params![error, lease.job],
                )
                .map_err(err)?;
            }
            Ok(retry)
        })
    }

    /// The job's counters, summed over its committed slices.
    pub fn job_counters(&self, job: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT name, SUM(value) FROM counters WHERE job = ? GROUP BY name ORDER BY name",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([job], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Every attempt's error for a task, oldest first.
    pub fn attempt_errors(
        &self,
        job: i64,
        kind: &str,
        idx: u32,
    ) -> Result<Vec<(u32, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT attempt, error FROM attempts
                 WHERE job = ? AND kind = ? AND idx = ? AND error IS NOT NULL ORDER BY attempt",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![job, kind, idx], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &tempfile::TempDir) -> Store {
        Store::open(&dir.path().join("jobs.db")).unwrap()
    }

    #[test]
    fn same_fingerprint_resumes_the_same_job() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir);
        let (a, created) = s.create_job("wc", "fp1", "{}", 3, 2).unwrap();
        assert!(created);
        let (b, created) = s.create_job("wc", "fp1", "{}", 3, 2).unwrap();
        assert_eq!((a, created), (b, false));
        drop(s);
        // Reopening runs no migration twice.
        let mut s = store(&dir);
        assert_eq!(s.create_job("wc", "fp1", "{}", 3, 2).unwrap(), (a, false));
    }

    #[test]
    fn a_taken_over_lease_cannot_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir);
        let (job, _) = s.create_job("wc", "fp", "{}", 1, 0).unwrap();
        let mut zombie = s.acquire(job, "map", "w1", 0, 1000).unwrap().unwrap();
        assert_eq!(zombie.attempt, 1);
        // Still leased: nobody else gets it.
        assert_eq!(s.acquire(job, "map", "w2", 500, 1000).unwrap(), None);
        // Expired: w2 takes it over with attempt 2.
        let mut fresh = s.acquire(job, "map", "w2", 1001, 1000).unwrap().unwrap();
        assert_eq!((fresh.attempt, fresh.idx), (2, 0));
        let err = s
            .commit_slice(&mut zombie, "10", &[], &[("records", 10)], false)
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Fenced { attempt: 1, .. }),
            "{err}"
        );
        assert!(matches!(
            s.heartbeat(&zombie, 1002, 1000),
            Err(StoreError::Fenced { .. })
        ));
        s.commit_slice(&mut fresh, "10", &[], &[("records", 10)], false)
            .unwrap();
        s.commit_slice(&mut fresh, "20", &[], &[("records", 7)], true)
            .unwrap();
        assert_eq!(
            s.job_counters(job).unwrap(),
            vec![("records".to_owned(), 17)]
        );
        assert_eq!(s.acquire(job, "map", "w3", 99_999, 1000).unwrap(), None);
    }

    #[test]
    fn a_resumed_task_starts_from_its_committed_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir);
        let (job, _) = s.create_job("wc", "fp", "{}", 1, 0).unwrap();
        let mut l = s.acquire(job, "map", "w1", 0, 100).unwrap().unwrap();
        let out = OutputFile {
            path: "m-0-0.run".into(),
            bytes: 5,
            checksum: "x".into(),
        };
        s.commit_slice(&mut l, "4096", &[out], &[("records", 3)], false)
            .unwrap();
        let again = s.acquire(job, "map", "w2", 200, 100).unwrap().unwrap();
        assert_eq!(
            (again.cursor.as_str(), again.slices, again.attempt),
            ("4096", 1, 2)
        );
    }

    #[test]
    fn failures_retry_then_fail_the_job_keeping_every_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(&dir);
        let (job, _) = s.create_job("wc", "fp", "{}", 1, 0).unwrap();
        for attempt in 1..=3 {
            let l = s.acquire(job, "map", "w", 0, 100).unwrap().unwrap();
            assert_eq!(l.attempt, attempt);
            let retry = s.fail_attempt(&l, &format!("boom {attempt}"), 3).unwrap();
            assert_eq!(retry, attempt < 3);
        }
        assert_eq!(s.acquire(job, "map", "w", 0, 100).unwrap(), None);
        let errors = s.attempt_errors(job, "map", 0).unwrap();
        assert_eq!(errors.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(errors[2].1, "boom 3");
    }

    #[test]
    fn concurrent_connections_queue_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let (job, _) = Store::open(&path)
            .unwrap()
            .create_job("wc", "fp", "{}", 200, 0)
            .unwrap();
        let taken: Vec<Vec<u32>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|w| {
                    let path = path.clone();
                    scope.spawn(move || {
                        let mut s = Store::open(&path).unwrap();
                        let mut mine = Vec::new();
                        while let Some(mut l) =
                            s.acquire(job, "map", &format!("w{w}"), 0, 1 << 40).unwrap()
                        {
                            s.commit_slice(&mut l, "end", &[], &[("n", 1)], true)
                                .unwrap();
                            mine.push(l.idx);
                        }
                        mine
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all: Vec<u32> = taken.into_iter().flatten().collect();
        all.sort();
        assert_eq!(all, (0..200).collect::<Vec<_>>());
        let s = Store::open(&path).unwrap();
        assert_eq!(s.job_counters(job).unwrap(), vec![("n".to_owned(), 200)]);
    }
}
