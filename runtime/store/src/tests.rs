//! The SQLite backend's tests: the conformance suite (src/conformance.rs) on real time, the
//! protocol's timing on a clock moved by hand (every call says when it happens, as the store's
//! own clock would), and what only SQLite has (its schema versions in `user_version`).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::*;
use crate::conformance::{Backend, alive, commit, failure};

/// A fresh SQLite store in a temporary directory.
struct SqliteBackend {
    dir: tempfile::TempDir,
}

impl Backend for SqliteBackend {
    fn open(&self) -> Box<dyn JobStore> {
        Box::new(SqliteStore::open(&self.dir.path().join("jobs.db")).unwrap())
    }
}

fn fresh() -> SqliteBackend {
    SqliteBackend {
        dir: tempfile::tempdir().unwrap(),
    }
}

mod conformance {
    use super::fresh;

    crate::conformance::conformance_tests!(fresh);
}

/// A SQLite store whose clock the test sets before each call.
struct Store {
    store: SqliteStore,
    clock: Arc<AtomicI64>,
}

impl Store {
    fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        let clock = Arc::new(AtomicI64::new(0));
        let now = clock.clone();
        let store =
            SqliteStore::open_with_clock(path, Arc::new(move || now.load(Ordering::SeqCst)))?;
        Ok(Store { store, clock })
    }

    fn at(&mut self, now: i64) -> &mut SqliteStore {
        self.clock.store(now, Ordering::SeqCst);
        &mut self.store
    }

    fn create_job(&mut self, job: &NewJob<'_>, now: i64) -> Result<(i64, bool), StoreError> {
        self.at(now).create_job(job)
    }

    fn acquire(
        &mut self,
        job: i64,
        owner: &str,
        now: i64,
        lease_ms: i64,
        is_dead: &dyn Fn(&str) -> bool,
    ) -> Result<Acquired, StoreError> {
        self.at(now).acquire(job, owner, lease_ms, is_dead)
    }

    fn heartbeat(&mut self, lease: &Lease, now: i64, lease_ms: i64) -> Result<(), StoreError> {
        self.at(now).heartbeat(lease, lease_ms)
    }

    fn commit_slice(
        &mut self,
        lease: &mut Lease,
        commit: &SliceCommit<'_>,
        now: i64,
    ) -> Result<Option<u32>, StoreError> {
        self.at(now).commit_slice(lease, commit)
    }

    fn fail_attempt(
        &mut self,
        lease: &Lease,
        failure: &Failure<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.at(now).fail_attempt(lease, failure)
    }

    fn record_refusal(&mut self, lease: &Lease, what: &str, now: i64) -> Result<(), StoreError> {
        self.at(now).record_refusal(lease, what)
    }

    fn reset_failed(&mut self, id: i64, now: i64) -> Result<bool, StoreError> {
        self.at(now).reset_failed(id)
    }
}

impl Deref for Store {
    type Target = SqliteStore;

    fn deref(&self) -> &SqliteStore {
        &self.store
    }
}

impl DerefMut for Store {
    fn deref_mut(&mut self) -> &mut SqliteStore {
        &mut self.store
    }
}

fn store(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("jobs.db")).unwrap()
}

fn new_job(s: &mut Store, fingerprint: &str, map: u32, reduce: u32) -> i64 {
    let job = NewJob {
        name: "wc",
        fingerprint,
        output: "/out",
        spec: "{}",
        map_tasks: map,
        reduce_tasks: reduce,
    };
    s.create_job(&job, 0).unwrap().0
}

fn lease(s: &mut Store, job: i64, owner: &str, now: i64) -> Lease {
    match s.acquire(job, owner, now, 1000, &alive).unwrap() {
        Acquired::Lease(l) => l,
        other => panic!("expected a lease, got {other:?}"),
    }
}

fn finish(s: &mut Store, l: &mut Lease, n: i64) {
    s.commit_slice(l, &commit("end", &[("records".into(), n)], true), 0)
        .unwrap();
}

#[test]
fn a_store_from_a_newer_mr_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    drop(Store::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(&path).err().unwrap();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
}

#[test]
fn phases_follow_the_tasks_map_reduce_finalize_done() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(&dir);
    let job = new_job(&mut s, "fp", 2, 1);
    let mut m0 = lease(&mut s, job, "w1", 0);
    let mut m1 = lease(&mut s, job, "w2", 0);
    assert_eq!((m0.kind.as_str(), m0.idx, m1.idx), ("map", 0, 1));
    // Both map tasks are leased: the reduce phase has not opened, so there is nothing to do.
    assert_eq!(
        s.acquire(job, "w3", 10, 1000, &alive).unwrap(),
        Acquired::Wait { retry_in_ms: 990 }
    );
    finish(&mut s, &mut m0, 3);
    finish(&mut s, &mut m1, 4);
    let mut r = lease(&mut s, job, "w3", 20);
    assert_eq!((r.kind.as_str(), r.idx), ("reduce", 0));
    finish(&mut s, &mut r, 2);
    let mut f = lease(&mut s, job, "w3", 30);
    assert_eq!(f.kind, TaskKind::Finalize);
    finish(&mut s, &mut f, 0);
    assert_eq!(
        s.acquire(job, "w4", 40, 1000, &alive).unwrap(),
        Acquired::Finished {
            phase: Phase::Done,
            error: None
        }
    );
    assert_eq!(s.job_counters(job).unwrap(), vec![("records".into(), 9)]);
    // The roll-up: each task keeps its own committed counters.
    let tasks = s.tasks(job).unwrap();
    assert_eq!(
        tasks
            .iter()
            .map(|t| (t.kind.as_str(), t.idx, t.state.as_str(), t.counters.clone()))
            .collect::<Vec<_>>(),
        [
            ("map", 0, "done", vec![("records".to_owned(), 3)]),
            ("map", 1, "done", vec![("records".to_owned(), 4)]),
            ("reduce", 0, "done", vec![("records".to_owned(), 2)]),
            ("finalize", 0, "done", vec![("records".to_owned(), 0)]),
        ]
    );
    let status = s.status(job, 100).unwrap();
    assert_eq!(status.phase, Phase::Done);
    assert_eq!(
        status
            .tasks
            .iter()
            .map(|t| (t.kind.as_str(), t.done))
            .collect::<Vec<_>>(),
        [("map", 2), ("reduce", 1), ("finalize", 1)]
    );
    let names: Vec<_> = status
        .recent_events
        .iter()
        .map(|e| e.event.as_str())
        .collect();
    assert_eq!(names.first(), Some(&"job-submitted"));
    assert_eq!(names.last(), Some(&"job-completed"));
    assert_eq!(names.iter().filter(|n| **n == "phase-started").count(), 2);
}

#[test]
fn a_taken_over_lease_cannot_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(&dir);
    let job = new_job(&mut s, "fp", 1, 0);
    let mut zombie = lease(&mut s, job, "w1", 0);
    assert_eq!(zombie.attempt, 1);
    // Still leased: nobody else gets it.
    assert!(matches!(
        s.acquire(job, "w2", 500, 1000, &alive).unwrap(),
        Acquired::Wait { retry_in_ms: 500 }
    ));
    // Expired: w2 takes it over with attempt 2.
    let mut fresh = lease(&mut s, job, "w2", 1001);
    assert_eq!((fresh.attempt, fresh.idx), (2, 0));
    let err = s
        .commit_slice(
            &mut zombie,
            &commit("10", &[("records".into(), 10)], false),
            0,
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Fenced { attempt: 1, .. }),
        "{err}"
    );
    s.record_refusal(&zombie, "slice 0", 1002).unwrap();
    assert!(matches!(
        s.heartbeat(&zombie, 1002, 1000),
        Err(StoreError::Fenced { .. })
    ));
    s.commit_slice(
        &mut fresh,
        &commit("10", &[("records".into(), 10)], false),
        0,
    )
    .unwrap();
    s.commit_slice(&mut fresh, &commit("20", &[("records".into(), 7)], true), 0)
        .unwrap();
    assert_eq!(s.job_counters(job).unwrap(), vec![("records".into(), 17)]);
    let status = s.status(job, 100).unwrap();
    assert_eq!(status.refused_attempts, 1);
    assert!(
        status
            .recent_events
            .iter()
            .any(|e| e.event == EventKind::LeaseTakenOver && e.detail.as_deref() == Some("from w1"))
    );
}

#[test]
fn a_resumed_task_starts_from_its_committed_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(&dir);
    let job = new_job(&mut s, "fp", 1, 1);
    let mut l = lease(&mut s, job, "w1", 0);
    let out = OutputFile {
        path: "m-0-0.run".into(),
        part: 0,
        bytes: 5,
        records: 3,
        checksum: "x".into(),
    };
    s.commit_slice(
        &mut l,
        &SliceCommit {
            outputs: std::slice::from_ref(&out),
            ..commit("4096", &[("records".into(), 3)], false)
        },
        0,
    )
    .unwrap();
    let again = lease(&mut s, job, "w2", 2000);
    assert_eq!(
        (again.cursor.as_str(), again.slices, again.attempt),
        ("4096", 1, 2)
    );
    let outputs = s.outputs(job, TaskKind::Map).unwrap();
    assert_eq!(
        outputs,
        vec![CommittedOutput {
            idx: 0,
            origin: 0,
            slice: 0,
            file: out
        }]
    );
}

#[test]
fn failures_back_off_then_fail_the_job_keeping_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(&dir);
    let job = new_job(&mut s, "fp", 1, 0);
    for attempt in 1..=3 {
        let now = i64::from(attempt) * 100;
        let l = lease(&mut s, job, "w", now);
        assert_eq!(l.attempt, attempt);
        let retry = s
            .fail_attempt(
                &l,
                &failure("job-error", &format!("boom {attempt}"), 3, 50),
                now,
            )
            .unwrap();
        assert_eq!(retry, attempt < 3);
        if retry {
            // Backing off: not runnable until `retry_at`.
            assert_eq!(
                s.acquire(job, "w", now + 10, 1000, &alive).unwrap(),
                Acquired::Wait { retry_in_ms: 40 }
            );
        }
    }
    assert_eq!(
        s.acquire(job, "w", 1000, 100, &alive).unwrap(),
        Acquired::Finished {
            phase: Phase::Failed,
            error: Some("boom 3".into())
        }
    );
    let status = s.status(job, 100).unwrap();
    assert_eq!(
        status.errors.iter().map(|e| e.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(status.failed_attempts, 3);
    assert_eq!(status.failures_by_kind, vec![("job-error".to_owned(), 3)]);
    // A rerun resets the failed task for a new round of attempts.
    assert!(s.reset_failed(job, 2000).unwrap());
    let l = lease(&mut s, job, "w", 2000);
    assert_eq!(l.attempt, 4);
    assert!(
        s.fail_attempt(&l, &failure("trap", "again", 3, 0), 2001)
            .unwrap()
    );
}

#[test]
fn takeovers_do_not_use_up_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(&dir);
    let job = new_job(&mut s, "fp", 1, 0);
    for round in 0..6 {
        lease(&mut s, job, "w", round * 2000);
    }
    let l = lease(&mut s, job, "w", 20_000);
    assert_eq!(l.attempt, 7);
    assert!(
        s.fail_attempt(&l, &failure("trap", "first real failure", 2, 0), 20_001)
            .unwrap()
    );
}

#[test]
fn a_database_that_is_not_an_mr_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY)")
        .unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).err().unwrap();
    assert!(matches!(err, StoreError::Unusable { .. }), "{err}");
    // A file that is not a database at all names the file.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, "not a database, not at all, forty bytes.").unwrap();
    let err = SqliteStore::open(&junk).err().unwrap().to_string();
    assert!(err.contains("junk.db"), "{err}");
}

#[test]
fn a_store_written_by_the_previous_release_is_migrated() {
    // Schema version 1, as mr-host 0.1 wrote it, with a job in it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(MIGRATION_1_FOR_TESTS).unwrap();
    conn.execute_batch(
        "INSERT INTO jobs (name, fingerprint, output, spec, phase, created_ms)
         VALUES ('wc', 'fp', '/out', '{}', 'done', 1);
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    let mut s = Store::open(&path).unwrap();
    assert_eq!(s.job(1).unwrap().phase, Phase::Done);
    // The new column and phase work.
    let job = new_job(&mut s, "fp2", 1, 0);
    assert_eq!(s.at(1).cancel_job(job).unwrap(), Cancelled::Now);
}

#[test]
fn a_hook_is_delivered_once_whoever_claims_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(&dir);
    let job = new_job(&mut s, "fp", 1, 0);
    let first = s.at(0).claim_hook(job, "notify", "a", 1000).unwrap();
    assert_eq!(first, Some(1));
    // Claimed by a: b waits until the claim expires.
    assert_eq!(s.at(10).claim_hook(job, "notify", "b", 1000).unwrap(), None);
    s.at(20)
        .finish_hook(
            job,
            "notify",
            1,
            HookOutcome::Retry { after_ms: 100 },
            "503",
        )
        .unwrap();
    assert_eq!(s.at(50).claim_hook(job, "notify", "b", 1000).unwrap(), None);
    assert_eq!(
        s.at(130).claim_hook(job, "notify", "b", 1000).unwrap(),
        Some(2)
    );
    // a's late report of attempt 1 changes nothing.
    s.at(140)
        .finish_hook(job, "notify", 1, HookOutcome::Delivered, "late")
        .unwrap();
    s.at(150)
        .finish_hook(job, "notify", 2, HookOutcome::Delivered, "200 OK")
        .unwrap();
    assert_eq!(
        s.at(5000).claim_hook(job, "notify", "c", 1000).unwrap(),
        None
    );
    let hooks = s.hooks(job).unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(
        (
            hooks[0].state,
            hooks[0].attempts,
            hooks[0].detail.as_deref()
        ),
        (HookState::Delivered, 2, Some("200 OK"))
    );
}
