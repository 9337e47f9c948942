//! The protocol's conformance suite: one set of tests every backend passes, on real time with
//! short leases. Each test takes a [`Backend`], a fresh empty store that can be opened any
//! number of times (a connection per "worker"); `conformance_tests!(fresh)` declares them all as
//! `#[test]`s of a backend's test module. Leases are ended early with a heartbeat of 0 ms where
//! a test only needs "expired", so the suite waits for the clock only where timing is the point
//! (backoffs, expiry), for a few hundred ms.

use std::time::Duration;

use crate::*;

/// A fresh store for one test.
pub(crate) trait Backend {
    /// A new connection to it.
    fn open(&self) -> Box<dyn JobStore>;
}

/// Declares every conformance test as a `#[test]` running on `$fresh()`, a [`Backend`].
macro_rules! conformance_tests {
    ($fresh:expr) => {
        crate::conformance::conformance_tests!(
            $fresh;
            same_fingerprint_resumes_the_same_job,
            phases_follow_the_tasks_map_reduce_finalize_done,
            a_map_only_job_goes_straight_to_finalize,
            a_taken_over_lease_cannot_commit,
            leases_expire_by_the_stores_clock_and_heartbeats_extend_them,
            a_dead_owner_lease_is_taken_over_before_it_expires,
            a_resumed_task_starts_from_its_committed_cursor,
            failures_back_off_then_fail_the_job_keeping_every_error,
            takeovers_do_not_use_up_attempts,
            deleting_a_job_leaves_no_trace,
            concurrent_workers_take_each_task_once,
            a_deterministic_failure_fails_the_job_at_once_and_signatures_are_kept,
            a_commit_past_the_counter_cap_is_refused_whole,
            a_counter_named_twice_in_a_slice_adds_up,
            a_cancelled_job_refuses_every_commit_and_lease,
            a_hook_is_delivered_once_whoever_claims_it,
            events_are_read_after_a_sequence_number,
            status_shows_leases_attempts_refusals_and_errors,
            an_unknown_job_is_named,
            a_changed_plan_is_kept_with_an_event,
            components_are_kept_by_content,
            pipelines_are_found_by_output_and_keep_their_stages,
            a_stage_is_claimed_once_and_updated_under_its_claim,
            a_requested_split_is_answered_at_a_commit_and_outputs_keep_input_order,
        );
    };
    ($fresh:expr; $($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            crate::testing::within(
                crate::conformance::TEST_LIMIT,
                stringify!($name),
                || crate::conformance::$name(&$fresh()),
            );
        }
    )*};
}
pub(crate) use conformance_tests;

/// How long one conformance test may take before it fails as hung.
pub(crate) const TEST_LIMIT: Duration = Duration::from_secs(120);

/// A long lease: held for the whole test unless ended on purpose.
const HELD_MS: i64 = 60_000;

pub(crate) fn new_job(s: &mut dyn JobStore, fingerprint: &str, map: u32, reduce: u32) -> i64 {
    s.create_job(&plan(fingerprint, map, reduce)).unwrap().0
}

pub(crate) fn plan(fingerprint: &str, map: u32, reduce: u32) -> NewJob<'_> {
    NewJob {
        name: "wc",
        fingerprint,
        output: "/out",
        spec: "{}",
        map_tasks: map,
        reduce_tasks: reduce,
    }
}

pub(crate) fn alive(_: &str) -> bool {
    false
}

fn lease(s: &mut dyn JobStore, job: i64, owner: &str) -> Lease {
    match s.acquire(job, owner, HELD_MS, &alive).unwrap() {
        Acquired::Lease(l) => l,
        other => panic!("expected a lease, got {other:?}"),
    }
}

/// Ends `l` now (a heartbeat asking for 0 ms more), as if its holder had stopped.
fn expire(s: &mut dyn JobStore, l: &Lease) {
    s.heartbeat(l, 0).unwrap();
}

/// A commit of `counters` ending at `cursor`.
pub(crate) fn commit<'a>(
    cursor: &'a str,
    counters: &'a [(String, i64)],
    last: bool,
) -> SliceCommit<'a> {
    SliceCommit {
        cursor,
        outputs: &[],
        counters,
        last,
        max_job_counters: None,
        split: None,
        answers_split: false,
    }
}

pub(crate) fn records(n: i64) -> Vec<(String, i64)> {
    vec![("records".into(), n)]
}

fn finish(s: &mut dyn JobStore, l: &mut Lease, n: i64) {
    s.commit_slice(l, &commit("end", &records(n), true))
        .unwrap();
}

/// A failure retried until `max_attempts`, not before `after_ms` from now.
pub(crate) fn failure<'a>(
    kind: &'a str,
    error: &'a str,
    max_attempts: u32,
    after_ms: i64,
) -> Failure<'a> {
    Failure {
        kind,
        error,
        signature: None,
        retry: Retry::Until {
            max_attempts,
            after_ms,
        },
    }
}

fn waits(acquired: Acquired, at_most_ms: i64) {
    match acquired {
        Acquired::Wait { retry_in_ms } => assert!(
            (0..=at_most_ms).contains(&retry_in_ms),
            "retry in {retry_in_ms} ms, expected at most {at_most_ms}"
        ),
        other => panic!("expected to wait, got {other:?}"),
    }
}

pub(crate) fn same_fingerprint_resumes_the_same_job(b: &dyn Backend) {
    let mut s = b.open();
    let a = new_job(s.as_mut(), "fp1", 3, 2);
    assert_eq!(s.create_job(&plan("fp1", 3, 2)).unwrap(), (a, false));
    drop(s);
    // Reopening runs no migration twice.
    let mut s = b.open();
    assert_eq!(s.create_job(&plan("fp1", 3, 2)).unwrap(), (a, false));
    assert_eq!(s.find_job("fp1").unwrap().unwrap().id, a);
    assert_eq!(s.find_job("fp2").unwrap(), None);
    let other = new_job(s.as_mut(), "fp2", 1, 0);
    assert!(other > a);
    assert_eq!(
        s.jobs().unwrap().iter().map(|j| j.id).collect::<Vec<_>>(),
        [a, other]
    );
}

pub(crate) fn phases_follow_the_tasks_map_reduce_finalize_done(b: &dyn Backend) {
    let mut s = b.open();
    let s = s.as_mut();
    let job = new_job(s, "fp", 2, 1);
    let mut m0 = lease(s, job, "w1");
    let mut m1 = lease(s, job, "w2");
    assert_eq!((m0.kind, m0.idx, m1.idx), (TaskKind::Map, 0, 1));
    // Both map tasks are leased: the reduce phase has not opened, so there is nothing to do.
    waits(s.acquire(job, "w3", 1000, &alive).unwrap(), HELD_MS);
    finish(s, &mut m0, 3);
    finish(s, &mut m1, 4);
    let mut r = lease(s, job, "w3");
    assert_eq!((r.kind, r.idx), (TaskKind::Reduce, 0));
    finish(s, &mut r, 2);
    let mut f = lease(s, job, "w3");
    assert_eq!(f.kind, TaskKind::Finalize);
    finish(s, &mut f, 0);
    assert_eq!(
        s.acquire(job, "w4", 1000, &alive).unwrap(),
        Acquired::Finished {
            phase: Phase::Done,
            error: None
        }
    );
    assert_eq!(s.job_counters(job).unwrap(), records(9));
    // The roll-up: each task keeps its own committed counters.
    let tasks = s.tasks(job).unwrap();
    assert_eq!(
        tasks
            .iter()
            .map(|t| (t.kind.as_str(), t.idx, t.state.as_str(), t.counters.clone()))
            .collect::<Vec<_>>(),
        [
            ("map", 0, "done", records(3)),
            ("map", 1, "done", records(4)),
            ("reduce", 0, "done", records(2)),
            ("finalize", 0, "done", records(0)),
        ]
    );
    let status = s.status(job, 100).unwrap();
    assert_eq!(status.phase, Phase::Done);
    assert!(status.finished_ms.is_some_and(|t| t >= status.created_ms));
    assert_eq!(
        status
            .tasks
            .iter()
            .map(|t| (t.kind.as_str(), t.done, t.slices))
            .collect::<Vec<_>>(),
        [("map", 2, 2), ("reduce", 1, 1), ("finalize", 1, 1)]
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

pub(crate) fn a_map_only_job_goes_straight_to_finalize(b: &dyn Backend) {
    let mut s = b.open();
    let job = new_job(s.as_mut(), "fp", 1, 0);
    let mut m = lease(s.as_mut(), job, "w");
    finish(s.as_mut(), &mut m, 1);
    assert_eq!(lease(s.as_mut(), job, "w").kind, TaskKind::Finalize);
}

pub(crate) fn a_taken_over_lease_cannot_commit(b: &dyn Backend) {
    let mut s = b.open();
    let s = s.as_mut();
    let job = new_job(s, "fp", 1, 0);
    let mut zombie = lease(s, job, "w1");
    assert_eq!(zombie.attempt, 1);
    // Still leased: nobody else gets it.
    waits(s.acquire(job, "w2", HELD_MS, &alive).unwrap(), HELD_MS);
    // Expired: w2 takes it over with attempt 2.
    expire(s, &zombie);
    let mut fresh = lease(s, job, "w2");
    assert_eq!((fresh.attempt, fresh.idx), (2, 0));
    let err = s
        .commit_slice(&mut zombie, &commit("10", &records(10), false))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Fenced { attempt: 1, .. }),
        "{err}"
    );
    s.record_refusal(&zombie, "slice 0").unwrap();
    assert!(matches!(
        s.heartbeat(&zombie, 1000),
        Err(StoreError::Fenced { .. })
    ));
    let err = s
        .fail_attempt(&zombie, &failure("trap", "late", 3, 0))
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
    s.commit_slice(&mut fresh, &commit("10", &records(10), false))
        .unwrap();
    s.commit_slice(&mut fresh, &commit("20", &records(7), true))
        .unwrap();
    assert_eq!(s.job_counters(job).unwrap(), records(17));
    let status = s.status(job, 100).unwrap();
    assert_eq!(status.refused_attempts, 1);
    assert!(
        status
            .recent_events
            .iter()
            .any(|e| e.event == EventKind::LeaseTakenOver && e.detail.as_deref() == Some("from w1"))
    );
}

pub(crate) fn leases_expire_by_the_stores_clock_and_heartbeats_extend_them(b: &dyn Backend) {
    let mut s = b.open();
    let s = s.as_mut();
    let job = new_job(s, "fp", 1, 0);
    let before = s.now_ms().unwrap();
    let l = lease(s, job, "w1");
    let status = s.status(job, 0).unwrap();
    let held = &status.leases[0];
    assert!(!held.expired);
    assert!(
        (before + HELD_MS..=status.now_ms + HELD_MS).contains(&held.expires_at_ms),
        "expires at {} for a lease of {HELD_MS} ms taken between {before} and {}",
        held.expires_at_ms,
        status.now_ms
    );
    // A heartbeat sets the end to the store's now + the new length: 300 ms.
    s.heartbeat(&l, 300).unwrap();
    waits(s.acquire(job, "w2", HELD_MS, &alive).unwrap(), 300);
    std::thread::sleep(Duration::from_millis(350));
    let status = s.status(job, 0).unwrap();
    assert!(status.leases[0].expired, "{:?}", status.leases);
    let taken = lease(s, job, "w2");
    assert_eq!(taken.attempt, 2);
    // The store's clock moves with time.
    assert!(s.now_ms().unwrap() >= before + 350);
}

pub(crate) fn a_dead_owner_lease_is_taken_over_before_it_expires(b: &dyn Backend) {
    let mut s = b.open();
    let s = s.as_mut();
    let job = new_job(s, "fp", 2, 0);
    let first = lease(s, job, "host:1:1");
    let second = lease(s, job, "host:1:2");
    let dead = |owner: &str| owner == "host:1:2";
    let Acquired::Lease(taken) = s.acquire(job, "host:2:1", HELD_MS, &dead).unwrap() else {
        panic!("the dead owner's task should be taken over");
    };
    assert_eq!((taken.idx, taken.attempt), (second.idx, 2));
    assert_ne!(taken.idx, first.idx);
    // The live owner's lease is not.
    waits(s.acquire(job, "host:2:2", HELD_MS, &dead).unwrap(), HELD_MS);
}

pub(crate) fn a_resumed_task_starts_from_its_committed_cursor(b: &dyn Backend) {
    let mut s = b.open();
    let s = s.as_mut();
    let job = new_job(s, "fp", 1, 1);
    let mut l = lease(s, job, "w1");
    let out = OutputFile {
        path: "m-0-0.run".into(),
        // Bad-records files use the largest part number.
        part: u32::MAX,
        bytes: 5,
        records: 3,
        checksum: "x".into(),
    };
    s.commit_slice(
        &mut l,
        &SliceCommit {
            outputs: std::slice::from_ref(&out),
            ..commit("4096", &records(3), false)
        },
    )
    .unwrap();
    assert_eq!((l.cursor.as_str(), l.slices), ("4096", 1));
    expire(s, &l);
    let again = lease(s, job, "w2");
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
    assert!(s.outputs(job, TaskKind::Reduce).unwrap().is_empty());
}

pub(crate) fn failures_back_off_then_fail_the_job_keeping_every_error(b: &dyn Backend) {
    let mut s = b.open();
    let s = s.as_mut();
    let job = new_job(s, "fp", 1, 0);
    for attempt in 1..=3 {
        let l = lease(s, job, "w");
        assert_eq!(l.attempt, attempt);
        let retry = s
            .fail_attempt(
                &l,
                &failure("job-error", &format!("boom {attempt}"), 3, 200),
            )
            .unwrap();
        assert_eq!(retry, attempt < 3);
        if retry {
            // Backing off: not runnable for 200 ms by the store's clock.
            waits(s.acquire(job, "w", HELD_MS, &alive).unwrap(), 200);
            std::thread::sleep(Duration::from_millis(220));
        }
    }
    assert_eq!(
        s.acquire(job, "w", HELD_MS, &alive).unwrap(),
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
    assert!(
        status
            .recent_events
            .iter()
            .any(|e| e.event == EventKind::JobFailed)
    );
    // A rerun resets the failed task for a new round of attempts.
    assert!(s.reset_failed(job).unwrap());
    assert!(!s.reset_failed(job).unwrap());
    assert_eq!(s.job(job).unwrap().phase, Phase::Map);
    let l = lease(s, job, "w");
    assert_eq!(l.attempt, 4);
    assert!(s.fail_attempt(&l, &failure("trap", "again", 3, 0)).unwrap());
}

pub(crate) fn takeovers_do_not_use_up_attempts(b: &dyn Backend) {
    let mut s = b.open();
    let s = s.as_mut();
    let job = new_job(s, "fp", 1, 0);
    for _ in 0..6 {
        let l = lease(s, job, "w");
        expire(s, &l);
    }
    let l = lease(s, job, "w");
    assert_eq!(l.attempt, 7);
    assert!(
        s.fail_attempt(&l, &failure("trap", "first real failure", 2, 0))
            .unwrap()
    );
}

pub(crate) fn deleting_a_job_leaves_no_trace(b: &dyn Backend) {
    let mut s = b.open();
    let s = s.as_mut();
    let job = new_job(s, "fp", 2, 1);
    let kept = new_job(s, "other", 1, 0);
    let mut l = lease(s, job, "w");
    finish(s, &mut l, 1);
    assert_eq!(s.claim_hook(job, "notify", "w", 1000).unwrap(), Some(1));
    s.delete_job(job).unwrap();
    assert_eq!(
        s.jobs().unwrap().iter().map(|j| j.id).collect::<Vec<_>>(),
        [kept]
    );
    assert!(matches!(s.job(job), Err(StoreError::NoSuchJob { .. })));
    assert!(s.job_counters(job).unwrap().is_empty());
    assert!(s.events(job, 0, 100).unwrap().is_empty());
    assert!(s.hooks(job).unwrap().is_empty());
    assert!(s.tasks(job).unwrap().is_empty());
    // Its lease holder is refused.
    let err = s.heartbeat(&l, 1000).unwrap_err();
    assert!(err.is_refusal(), "{err}");
    // The fingerprint is free again.
    assert!(s.create_job(&plan("fp", 1, 0)).unwrap().1);
}

pub(crate) fn concurrent_workers_take_each_task_once(b: &dyn Backend) {
    let job = new_job(b.open().as_mut(), "fp", 100, 0);
    let taken: Vec<Vec<u32>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|w| {
                let mut s = b.open();
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        match s.acquire(job, &format!("w{w}"), HELD_MS, &alive).unwrap() {
                            Acquired::Lease(mut l) => {
                                if l.kind == TaskKind::Map {
                                    mine.push(l.idx);
                                }
                                finish(s.as_mut(), &mut l, 1);
                            }
                            Acquired::Wait { .. } => std::thread::sleep(Duration::from_millis(1)),
                            Acquired::Finished { phase, .. } => {
                                assert_eq!(phase, Phase::Done);
                                return mine;
                            }
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<u32> = taken.into_iter().flatten().collect();
    all.sort();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    let s = b.open();
    assert_eq!(s.job_counters(job).unwrap(), records(101));
    let status = s.status(job, 0).unwrap();
    // Every task leased once: no attempt was wasted.
    assert_eq!(status.attempts, 101);
}

pub(crate) fn a_deterministic_failure_fails_the_job_at_once_and_signatures_are_kept(
    b: &dyn Backend,
) {
    let mut s = b.open();
    let s = s.as_mut();
    let job = new_job(s, "fp", 1, 0);
    let l = lease(s, job, "w");
    assert_eq!(s.previous_failure(&l).unwrap(), None);
    let retried = s
        .fail_attempt(
            &l,
            &Failure {
                signature: Some("job-error|map|0|a.txt:3|bad"),
                ..failure("job-error", "bad at a.txt:3", 10, 0)
            },
        )
        .unwrap();
    assert!(retried);
    let l = lease(s, job, "w");
    assert_eq!(
        s.previous_failure(&l).unwrap().as_deref(),
        Some("job-error|map|0|a.txt:3|bad")
    );
    let retried = s
        .fail_attempt(
            &l,
            &Failure {
                retry: Retry::Never,
                ..failure("job-error", "bad again", 10, 0)
            },
        )
        .unwrap();
    assert!(!retried, "Retry::Never fails the job with 9 attempts left");
    let row = s.job(job).unwrap();
    assert_eq!(
        (row.phase, row.error.as_deref()),
        (Phase::Failed, Some("bad again"))
    );
}

pub(crate) fn a_commit_past_the_counter_cap_is_refused_whole(b: &dyn Backend) {
    let mut s = b.open();
    let s = s.as_mut();
    let job = new_job(s, "fp", 2, 0);
    let capped = |counters| SliceCommit {
        max_job_counters: Some(3),
        ..commit("1", counters, false)
    };
    let mut a = lease(s, job, "w");
    let first: Vec<(String, i64)> = ["job.a", "job.b", "records"]
        .iter()
        .map(|n| (n.to_string(), 1))
        .collect();
    s.commit_slice(&mut a, &capped(&first)).unwrap();
    // Repeated names and built-in counters do not count against the cap.
    let again: Vec<(String, i64)> = vec![("job.a".into(), 1), ("job.c".into(), 1)];
    s.commit_slice(&mut a, &capped(&again)).unwrap();
    let over: Vec<(String, i64)> = vec![("job.d".into(), 1), ("records".into(), 5)];
    let err = s.commit_slice(&mut a, &capped(&over)).unwrap_err();
    assert!(
        matches!(&err, StoreError::TooManyCounters { count: 4, cap: 3, example, .. } if example == "d"),
        "{err}"
    );
    // Nothing of the refused slice was written.
    assert_eq!(a.slices, 2);
    let totals = s.job_counters(job).unwrap();
    assert_eq!(
        totals,
        [
            ("job.a".to_owned(), 2),
            ("job.b".to_owned(), 1),
            ("job.c".to_owned(), 1),
            ("records".to_owned(), 1)
        ]
    );
}

pub(crate) fn a_counter_named_twice_in_a_slice_adds_up(b: &dyn Backend) {
    let mut s = b.open();
    let s = s.as_mut();
    let job = new_job(s, "fp", 1, 0);
    let mut l = lease(s, job, "w");
    let twice: Vec<(String, i64)> = vec![
        ("records".into(), 2),
        ("Zeta".into(), 1),
        ("records".into(), 3),
    ];
    s.commit_slice(&mut l, &commit("1", &twice, true)).unwrap();
    // Totals in byte order of the names, whatever the database's collation.
    assert_eq!(
        s.job_counters(job).unwrap(),
        [("Zeta".to_owned(), 1), ("records".to_owned(), 5)]
    );
}

pub(crate) fn a_cancelled_job_refuses_every_commit_and_lease(b: &dyn Backend) {
    let mut s = b.open();
    let s = s.as_mut();
    let job = new_job(s, "fp", 2, 1);
    let mut running = lease(s, job, "w1");
    assert_eq!(s.cancel_job(job).unwrap(), Cancelled::Now);
    // The running attempt's heartbeat and commit are refused, as a cancellation.
    let err = s.heartbeat(&running, 1000).unwrap_err();
    assert!(matches!(err, StoreError::Cancelled { .. }), "{err}");
    assert!(err.is_refusal());
    let err = s
        .commit_slice(&mut running, &commit("1", &records(1), true))
        .unwrap_err();
    assert!(matches!(err, StoreError::Cancelled { .. }), "{err}");
    let err = s
        .fail_attempt(&running, &failure("trap", "x", 3, 0))
        .unwrap_err();
    assert!(matches!(err, StoreError::Cancelled { .. }), "{err}");
    s.record_refusal(&running, "cancelled").unwrap();
    // Nothing more is leased, nothing was counted, and no lease shows as running.
    assert_eq!(
        s.acquire(job, "w2", 1000, &alive).unwrap(),
        Acquired::Finished {
            phase: Phase::Cancelled,
            error: None
        }
    );
    assert!(s.job_counters(job).unwrap().is_empty());
    let status = s.status(job, 100).unwrap();
    assert!(status.leases.is_empty(), "{:?}", status.leases);
    assert!(status.finished_ms.is_some());
    assert!(
        status
            .recent_events
            .iter()
            .any(|e| e.event == EventKind::JobCancelled)
    );
    // Cancelling again, or a finished job, changes nothing.
    assert_eq!(
        s.cancel_job(job).unwrap(),
        Cancelled::AlreadyOver(Phase::Cancelled)
    );
}

pub(crate) fn a_hook_is_delivered_once_whoever_claims_it(b: &dyn Backend) {
    let mut s = b.open();
    let s = s.as_mut();
    let job = new_job(s, "fp", 1, 0);
    assert_eq!(s.claim_hook(job, "notify", "a", HELD_MS).unwrap(), Some(1));
    // Claimed by a: b waits until the claim expires.
    assert_eq!(s.claim_hook(job, "notify", "b", HELD_MS).unwrap(), None);
    s.finish_hook(
        job,
        "notify",
        1,
        HookOutcome::Retry { after_ms: 200 },
        "503",
    )
    .unwrap();
    // Backing off.
    assert_eq!(s.claim_hook(job, "notify", "b", HELD_MS).unwrap(), None);
    std::thread::sleep(Duration::from_millis(220));
    assert_eq!(s.claim_hook(job, "notify", "b", HELD_MS).unwrap(), Some(2));
    // a's late report of attempt 1 changes nothing.
    s.finish_hook(job, "notify", 1, HookOutcome::Delivered, "late")
        .unwrap();
    s.finish_hook(job, "notify", 2, HookOutcome::Delivered, "200 OK")
        .unwrap();
    assert_eq!(s.claim_hook(job, "notify", "c", HELD_MS).unwrap(), None);
    // Another hook of the job is claimed on its own, and its claim expires.
    assert_eq!(s.claim_hook(job, "on-done", "c", 0).unwrap(), Some(1));
    assert_eq!(s.claim_hook(job, "on-done", "d", HELD_MS).unwrap(), Some(2));
    s.finish_hook(job, "on-done", 2, HookOutcome::GaveUp, "exit 1")
        .unwrap();
    let hooks = s.hooks(job).unwrap();
    assert_eq!(
        hooks
            .iter()
            .map(|h| (h.name.as_str(), h.state, h.attempts, h.detail.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("notify", HookState::Delivered, 2, Some("200 OK")),
            ("on-done", HookState::Failed, 2, Some("exit 1")),
        ]
    );
    let events: Vec<_> = s
        .events(job, 0, 100)
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.event, EventKind::HookDelivered | EventKind::HookFailed))
        .map(|e| (e.event, e.detail.unwrap_or_default()))
        .collect();
    assert_eq!(
        events,
        [
            (EventKind::HookFailed, "notify: 503".to_owned()),
            (EventKind::HookDelivered, "notify: 200 OK".to_owned()),
            (EventKind::HookFailed, "on-done: exit 1".to_owned()),
        ]
    );
}

pub(crate) fn events_are_read_after_a_sequence_number(b: &dyn Backend) {
    let mut s = b.open();
    let s = s.as_mut();
    let job = new_job(s, "fp", 2, 0);
    let other = new_job(s, "other", 1, 0);
    let mut l = lease(s, job, "w");
    s.slice_started(&l).unwrap();
    s.commit_slice(&mut l, &commit("7", &records(1), false))
        .unwrap();
    lease(s, other, "w");
    let all = s.events(job, 0, 100).unwrap();
    assert_eq!(
        all.iter().map(|e| e.event).collect::<Vec<_>>(),
        [
            EventKind::JobSubmitted,
            EventKind::TaskStarted,
            EventKind::SliceStarted,
            EventKind::SliceCommitted,
        ]
    );
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    assert!(all.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    let committed = &all[3];
    assert_eq!(
        (
            committed.kind,
            committed.idx,
            committed.slice,
            committed.attempt,
            committed.owner.as_deref(),
            committed.detail.as_deref()
        ),
        (
            Some(TaskKind::Map),
            Some(0),
            Some(0),
            Some(1),
            Some("w"),
            Some("7")
        )
    );
    // After a sequence number: only newer ones; a limit keeps the latest.
    let after = s.events(job, all[1].id, 100).unwrap();
    assert_eq!(after, all[2..]);
    let latest = s.events(job, 0, 2).unwrap();
    assert_eq!(latest, all[2..]);
    let status = s.status(job, 1).unwrap();
    assert_eq!(status.recent_events, all[3..]);
}

pub(crate) fn status_shows_leases_attempts_refusals_and_errors(b: &dyn Backend) {
    let mut s = b.open();
    let s = s.as_mut();
    let job = new_job(s, "fp", 3, 1);
    let failed = lease(s, job, "w1");
    s.fail_attempt(&failed, &failure("trap:panic", "panicked at x", 4, 0))
        .unwrap();
    let zombie = lease(s, job, "w1");
    assert_eq!((zombie.idx, zombie.attempt), (0, 2));
    expire(s, &zombie);
    let running = lease(s, job, "w2");
    assert_eq!((running.idx, running.attempt), (0, 3));
    s.record_refusal(&zombie, "lease lost").unwrap();
    let other = lease(s, job, "w3");
    assert_eq!(other.idx, 1);
    let status = s.status(job, 0).unwrap();
    assert_eq!(
        (
            status.id,
            status.name.as_str(),
            status.output.as_str(),
            status.phase
        ),
        (job, "wc", "/out", Phase::Map)
    );
    assert_eq!(
        (
            status.attempts,
            status.failed_attempts,
            status.refused_attempts
        ),
        (4, 1, 1)
    );
    assert_eq!(status.failures_by_kind, vec![("trap:panic".to_owned(), 1)]);
    assert_eq!(
        status
            .tasks
            .iter()
            .map(|t| (t.kind, t.total, t.done, t.leased, t.pending, t.failed))
            .collect::<Vec<_>>(),
        [
            (TaskKind::Map, 3, 0, 2, 1, 0),
            (TaskKind::Reduce, 1, 0, 0, 1, 0),
            (TaskKind::Finalize, 1, 0, 0, 1, 0)
        ]
    );
    assert_eq!(
        status
            .leases
            .iter()
            .map(|l| (l.kind, l.idx, l.owner.as_str(), l.attempt, l.expired))
            .collect::<Vec<_>>(),
        [
            (TaskKind::Map, 0, "w2", 3, false),
            (TaskKind::Map, 1, "w3", 1, false)
        ]
    );
    assert_eq!(
        status
            .errors
            .iter()
            .map(|e| (
                e.idx,
                e.attempt,
                e.owner.as_str(),
                e.failure.as_deref(),
                e.error.as_str()
            ))
            .collect::<Vec<_>>(),
        [(0, 1, "w1", Some("trap:panic"), "panicked at x")]
    );
    assert!(status.recent_events.is_empty());
    let tasks = s.tasks(job).unwrap();
    assert_eq!(
        (
            tasks[0].state,
            tasks[0].attempt,
            tasks[0].failures,
            tasks[0].owner.as_deref()
        ),
        (TaskState::Leased, 3, 1, Some("w2"))
    );
}

pub(crate) fn an_unknown_job_is_named(b: &dyn Backend) {
    let mut s = b.open();
    let s = s.as_mut();
    let no_such = |e: StoreError| matches!(e, StoreError::NoSuchJob { job: 999, .. });
    assert!(no_such(s.job(999).unwrap_err()));
    assert!(no_such(s.acquire(999, "w", 1000, &alive).unwrap_err()));
    assert!(no_such(s.cancel_job(999).unwrap_err()));
    assert!(no_such(s.status(999, 10).unwrap_err()));
    let message = s.job(999).unwrap_err().to_string();
    assert!(message.contains(&s.describe()), "{message}");
}

pub(crate) fn a_changed_plan_is_kept_with_an_event(b: &dyn Backend) {
    let mut s = b.open();
    let s = s.as_mut();
    let job = new_job(s, "fp", 1, 0);
    s.update_plan(job, "{\"max_bad_records\":1}", "--max-bad-records 0 -> 1")
        .unwrap();
    assert_eq!(s.job(job).unwrap().spec, "{\"max_bad_records\":1}");
    let last = s.events(job, 0, 1).unwrap();
    assert_eq!(
        (last[0].event, last[0].detail.as_deref()),
        (
            EventKind::JobSettingsChanged,
            Some("--max-bad-records 0 -> 1")
        )
    );
}

pub(crate) fn components_are_kept_by_content(b: &dyn Backend) {
    let mut s = b.open();
    assert_eq!(s.component("abc").unwrap(), None);
    s.put_component("abc", b"\0asm bytes").unwrap();
    s.put_component("abc", b"\0asm bytes").unwrap();
    assert_eq!(
        s.component("abc").unwrap().as_deref(),
        Some(&b"\0asm bytes"[..])
    );
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    s.put_component("big", &big).unwrap();
    assert_eq!(b.open().component("big").unwrap(), Some(big));
}

pub(crate) fn pipelines_are_found_by_output_and_keep_their_stages(b: &dyn Backend) {
    let mut s = b.open();
    let new = |definition: &'static str, stages: &'static [&'static str]| NewPipeline {
        name: "logs",
        output: "/out",
        definition,
        stages,
    };
    let (id, created) = s.put_pipeline(&new("{v1}", &["a", "b"])).unwrap();
    assert!(created);
    assert_eq!(
        s.put_pipeline(&new("{v1}", &["a", "b"])).unwrap(),
        (id, false)
    );
    let other = NewPipeline {
        output: "/elsewhere",
        ..new("{v1}", &["a"])
    };
    assert_ne!(s.put_pipeline(&other).unwrap().0, id);
    let row = s.pipeline(id).unwrap();
    assert_eq!(
        (row.phase, row.definition.as_str()),
        (PipelinePhase::Running, "{v1}")
    );
    let names = |s: &dyn JobStore| -> Vec<(String, StageState)> {
        s.stages(id)
            .unwrap()
            .into_iter()
            .map(|r| (r.name, r.state))
            .collect()
    };
    assert_eq!(
        names(s.as_ref()),
        [
            ("a".into(), StageState::Waiting),
            ("b".into(), StageState::Waiting)
        ]
    );
    let done = StageUpdate {
        state: Some(StageState::Done),
        fingerprint: Some("fp-a"),
        job: Some(7),
        ..Default::default()
    };
    assert!(s.update_stage(id, "a", None, &done).unwrap());
    s.set_pipeline_phase(id, PipelinePhase::Done, None).unwrap();
    let row = s.pipeline(id).unwrap();
    assert_eq!(row.phase, PipelinePhase::Done);
    assert!(row.finished_ms.is_some());
    // Recorded again: a new run, running, every stage waiting with what it recorded kept
    // (its fingerprint decides whether it is reused); stage b gone, c new.
    s.put_pipeline(&new("{v2}", &["a", "c"])).unwrap();
    let row = s.pipeline(id).unwrap();
    assert_eq!((row.phase, row.finished_ms), (PipelinePhase::Running, None));
    assert_eq!(row.definition, "{v2}");
    assert_eq!(
        names(s.as_ref()),
        [
            ("a".into(), StageState::Waiting),
            ("c".into(), StageState::Waiting)
        ]
    );
    let a = &s.stages(id).unwrap()[0];
    assert_eq!((a.fingerprint.as_deref(), a.job), (Some("fp-a"), Some(7)));
    // A failed pipeline is running again when recorded again.
    s.set_pipeline_phase(id, PipelinePhase::Failed, Some("stage c failed"))
        .unwrap();
    assert_eq!(
        s.pipeline(id).unwrap().error.as_deref(),
        Some("stage c failed")
    );
    s.put_pipeline(&new("{v2}", &["a", "c"])).unwrap();
    let row = s.pipeline(id).unwrap();
    assert_eq!((row.phase, row.error), (PipelinePhase::Running, None));
    assert_eq!(s.pipelines().unwrap().len(), 2);
    assert!(matches!(
        s.pipeline(id + 100),
        Err(StoreError::NoSuchPipeline { .. })
    ));
}

pub(crate) fn a_stage_is_claimed_once_and_updated_under_its_claim(b: &dyn Backend) {
    const HELD_MS: i64 = 60_000;
    let mut s = b.open();
    let mut t = b.open();
    let (id, _) = s
        .put_pipeline(&NewPipeline {
            name: "p",
            output: "/o",
            definition: "{}",
            stages: &["a"],
        })
        .unwrap();
    let first = s.claim_stage(id, "a", "w1", HELD_MS, None).unwrap();
    assert_eq!(first, Some(1));
    assert_eq!(t.claim_stage(id, "a", "w2", HELD_MS, None).unwrap(), None);
    let running = StageUpdate {
        state: Some(StageState::Running),
        fingerprint: Some("fp"),
        job: Some(3),
        reason: Some("first run"),
        detail: Some("{}"),
        if_job: None,
    };
    // A stale claim changes nothing; the live one does, and releases the claim.
    assert!(!t.update_stage(id, "a", Some(9), &running).unwrap());
    assert!(s.update_stage(id, "a", first, &running).unwrap());
    let row = &t.stages(id).unwrap()[0];
    assert_eq!(
        (row.state, row.job, row.claims, row.reason.as_deref()),
        (StageState::Running, Some(3), 1, Some("first run"))
    );
    // Released: claimable at once. An expired claim is taken over, and its holder fenced.
    assert_eq!(t.claim_stage(id, "a", "w2", 0, None).unwrap(), Some(2));
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(
        s.claim_stage(id, "a", "w1", HELD_MS, None).unwrap(),
        Some(3)
    );
    assert!(
        !t.update_stage(id, "a", Some(2), &StageUpdate::default())
            .unwrap()
    );
    let fresh = StageUpdate {
        state: Some(StageState::Done),
        ..Default::default()
    };
    assert!(s.update_stage(id, "a", Some(3), &fresh).unwrap());
    // A live claim of an owner known to be dead is taken over at once.
    assert_eq!(
        s.claim_stage(id, "a", "w1", HELD_MS, None).unwrap(),
        Some(4)
    );
    assert_eq!(
        t.claim_stage(id, "a", "w2", HELD_MS, Some("w3")).unwrap(),
        None
    );
    assert_eq!(
        t.claim_stage(id, "a", "w2", HELD_MS, Some("w1")).unwrap(),
        Some(5)
    );
    let row = &s.stages(id).unwrap()[0];
    assert_eq!(
        (row.state, row.fingerprint.as_deref()),
        (StageState::Done, Some("fp"))
    );
}

pub(crate) fn a_requested_split_is_answered_at_a_commit_and_outputs_keep_input_order(
    b: &dyn Backend,
) {
    let mut s = b.open();
    let s = s.as_mut();
    let job = new_job(s, "fp", 2, 1);
    let mut a = lease(s, job, "w1");
    let mut b2 = lease(s, job, "w2");
    assert_eq!((a.idx, b2.idx, a.bounds.clone()), (0, 1, None));
    let out = |path: &str| OutputFile {
        path: path.into(),
        part: 0,
        bytes: 1,
        records: 1,
        checksum: "x".into(),
    };
    let split = |kept: &'static str, given: &'static str, position: &'static str| SplitOff {
        kept,
        given,
        position,
        detail: "the rest",
    };
    // Not asked: a commit carrying a split is committed without it.
    let unasked = [out("a0")];
    let committed = s
        .commit_slice(
            &mut a,
            &SliceCommit {
                outputs: &unasked,
                split: Some(split("k", "g", "1")),
                answers_split: true,
                ..commit("c1", &records(1), false)
            },
        )
        .unwrap();
    assert_eq!((committed, a.bounds.clone()), (None, None));
    // Asked: the owner sees it; only a leased map task can be asked, once.
    assert!(!s.split_wanted(&a).unwrap());
    assert!(s.request_split(job, 0).unwrap());
    assert!(!s.request_split(job, 0).unwrap(), "already asked");
    assert!(!s.request_split(job, 7).unwrap(), "no such task");
    assert!(s.split_wanted(&a).unwrap());
    // A commit that does not answer keeps the request.
    s.commit_slice(&mut a, &commit("c2", &records(1), false))
        .unwrap();
    assert!(s.split_wanted(&a).unwrap());
    // A fenced answer splits nothing.
    let mut stale = a.clone();
    stale.attempt += 7;
    let refused = s.commit_slice(
        &mut stale,
        &SliceCommit {
            split: Some(split("k", "g", "1")),
            answers_split: true,
            ..commit("c3", &records(1), false)
        },
    );
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(s.tasks(job).unwrap().len(), 4);
    // The answer: a new pending map task, numbered after the planned ones.
    let second = [out("a2")];
    let new = s
        .commit_slice(
            &mut a,
            &SliceCommit {
                outputs: &second,
                split: Some(split(
                    "kept-bounds",
                    "given-bounds",
                    "0000000001.0000000000000000009",
                )),
                answers_split: true,
                ..commit("c3", &records(1), false)
            },
        )
        .unwrap();
    assert_eq!(new, Some(2));
    assert_eq!(a.bounds.as_deref(), Some("kept-bounds"));
    assert!(!s.split_wanted(&a).unwrap(), "answered");
    // Split again: the new part starts before the first split-off one (a lower position).
    assert!(s.request_split(job, 0).unwrap());
    let third = [out("a3")];
    let again = s
        .commit_slice(
            &mut a,
            &SliceCommit {
                outputs: &third,
                split: Some(split("kept-2", "given-2", "0000000001.0000000000000000005")),
                answers_split: true,
                ..commit("c4", &records(1), false)
            },
        )
        .unwrap();
    assert_eq!((again, a.bounds.as_deref()), (Some(3), Some("kept-2")));
    let tasks = s.tasks(job).unwrap();
    let t2 = tasks
        .iter()
        .find(|t| t.kind == TaskKind::Map && t.idx == 2)
        .expect("the split-off task");
    assert_eq!(
        (t2.state, t2.split_from, t2.bounds.as_deref()),
        (TaskState::Pending, Some(0), Some("given-bounds"))
    );
    let t0 = &tasks[0];
    assert_eq!(
        (t0.split_from, t0.bounds.as_deref()),
        (None, Some("kept-2"))
    );
    // The phase waits for the new task too.
    finish(s, &mut a, 1);
    let last_b = [out("b0")];
    s.commit_slice(
        &mut b2,
        &SliceCommit {
            outputs: &last_b,
            ..commit("end", &records(1), true)
        },
    )
    .unwrap();
    assert_eq!(s.job(job).unwrap().phase, Phase::Map);
    let mut c = lease(s, job, "w3");
    assert_eq!((c.idx, c.bounds.as_deref()), (2, Some("given-bounds")));
    // An answer that comes too late (its task ends with this slice) splits nothing.
    assert!(s.request_split(job, 2).unwrap());
    let last_c = [out("c0")];
    let none = s
        .commit_slice(
            &mut c,
            &SliceCommit {
                outputs: &last_c,
                split: Some(split("k", "g", "2")),
                answers_split: true,
                ..commit("end", &records(1), true)
            },
        )
        .unwrap();
    assert_eq!(none, None);
    assert_eq!(s.job(job).unwrap().phase, Phase::Map);
    let mut d = lease(s, job, "w4");
    assert_eq!((d.idx, d.bounds.as_deref()), (3, Some("given-2")));
    let last_d = [out("d0")];
    s.commit_slice(
        &mut d,
        &SliceCommit {
            outputs: &last_d,
            ..commit("end", &records(1), true)
        },
    )
    .unwrap();
    assert_eq!(s.job(job).unwrap().phase, Phase::Reduce);
    // Outputs in input order: shard 0's own slices, then the tasks split off it by position
    // (not by number), then shard 1.
    let order: Vec<(u32, u32, String)> = s
        .outputs(job, TaskKind::Map)
        .unwrap()
        .into_iter()
        .map(|o| (o.idx, o.origin, o.file.path))
        .collect();
    assert_eq!(
        order,
        vec![
            (0, 0, "a0".to_owned()),
            (0, 0, "a2".to_owned()),
            (0, 0, "a3".to_owned()),
            (3, 0, "d0".to_owned()),
            (2, 0, "c0".to_owned()),
            (1, 1, "b0".to_owned()),
        ]
    );
    let events = s.events(job, 0, 1000).unwrap();
    let splits: Vec<_> = events
        .iter()
        .filter(|e| e.event == EventKind::TaskSplit)
        .collect();
    assert_eq!(splits.len(), 2, "{events:?}");
}
