//! The PostgreSQL backend's tests: the conformance suite (src/conformance.rs) on a throwaway
//! server (src/testing.rs), then what only PostgreSQL has: many connections taking tasks at
//! once, connections killed mid-transaction and `COMMIT` replies lost (nothing lost, nothing
//! counted twice), a server restarted mid-job, a server whose clock is an hour off the
//! workers', schema versions, and the messages for a store that cannot be reached.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::session::Fault;
use super::*;
use crate::conformance::{Backend, alive, commit, failure, new_job, plan, records};
use crate::testing::{PgServer, PgServerOptions, free_port, with_search_path, within};
use crate::{StoreLocation, redact};

/// A fresh store: a new schema on the shared server.
struct PgBackend {
    url: String,
}

impl Backend for PgBackend {
    fn open(&self) -> Box<dyn JobStore> {
        Box::new(PgStore::open(&self.url).unwrap())
    }
}

fn fresh() -> PgBackend {
    PgBackend {
        url: PgServer::shared().fresh_store_url(),
    }
}

mod conformance {
    use super::fresh;

    crate::conformance::conformance_tests!(fresh);
}

/// Sets its flag when dropped: stops a helper thread however the test's other threads end (a
/// panic included), so that a failure cannot leave the helper, and the test, running forever.
struct Stop<'a>(&'a AtomicBool);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// How long one of these tests may take before it fails as hung (the chaos tests take seconds).
const LIMIT: Duration = Duration::from_secs(180);

fn lease(s: &mut PgStore, job: i64, owner: &str) -> Lease {
    match s.acquire(job, owner, 60_000, &alive).unwrap() {
        Acquired::Lease(l) => l,
        other => panic!("expected a lease, got {other:?}"),
    }
}

fn inject(s: &PgStore, fault: Fault) {
    s.session().faults.push_back(fault);
}

/// A query's one value, on a new connection to store `url`.
fn count_in(url: &str, sql: &str) -> i64 {
    let mut admin = postgres::Client::connect(url, postgres::NoTls).unwrap();
    admin.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn the_store_location_opens_the_postgres_backend() {
    within(
        LIMIT,
        "the_store_location_opens_the_postgres_backend",
        || {
            let url = PgServer::shared().fresh_store_url();
            let mut s = crate::open(&StoreLocation::parse(&url)).unwrap();
            assert_eq!(s.describe(), redact(&url));
            assert!(
                !s.describe()
                    .contains(&format!("mr-test-{}", std::process::id()))
            );
            let job = new_job(s.as_mut(), "fp", 1, 0);
            assert_eq!(s.job(job).unwrap().phase, Phase::Map);
        },
    );
}

#[test]
fn many_connections_acquire_at_once_and_each_task_is_leased_once() {
    within(
        LIMIT,
        "many_connections_acquire_at_once_and_each_task_is_leased_once",
        || {
            let url = PgServer::shared().fresh_store_url();
            let mut first = PgStore::open(&url).unwrap();
            let job = new_job(&mut first, "fp", 300, 0);
            let taken: Vec<Vec<u32>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..8)
                    .map(|w| {
                        let url = url.clone();
                        scope.spawn(move || {
                            let mut s = PgStore::open(&url).unwrap();
                            let mut mine = Vec::new();
                            loop {
                                match s.acquire(job, &format!("w{w}"), 60_000, &alive).unwrap() {
                                    Acquired::Lease(mut l) if l.kind == TaskKind::Map => {
                                        mine.push(l.idx);
                                        s.commit_slice(&mut l, &commit("end", &records(1), true))
                                            .unwrap();
                                    }
                                    Acquired::Lease(mut l) => {
                                        s.commit_slice(&mut l, &commit("end", &[], true)).unwrap();
                                    }
                                    Acquired::Wait { .. } => {
                                        std::thread::sleep(Duration::from_millis(1))
                                    }
                                    Acquired::Finished { .. } => return mine,
                                }
                            }
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(
                taken.iter().filter(|t| !t.is_empty()).count() > 1,
                "the work should be shared: {taken:?}"
            );
            let mut all: Vec<u32> = taken.into_iter().flatten().collect();
            all.sort();
            assert_eq!(all, (0..300).collect::<Vec<_>>());
            let status = first.status(job, 0).unwrap();
            assert_eq!((status.phase, status.attempts), (Phase::Done, 301));
            assert_eq!(status.counters, records(300));
        },
    );
}

#[test]
fn a_connection_killed_before_commit_is_retried_and_counted_once() {
    within(
        LIMIT,
        "a_connection_killed_before_commit_is_retried_and_counted_once",
        || {
            let url = PgServer::shared().fresh_store_url();
            let mut s = PgStore::open(&url).unwrap();
            let job = new_job(&mut s, "fp", 2, 0);
            // The lease's transaction dies with its connection: retried, it is attempt 1 still.
            inject(&s, Fault::KillBeforeCommit);
            let mut l = lease(&mut s, job, "w");
            assert_eq!((l.idx, l.attempt), (0, 1));
            assert_eq!(s.connections(), 2);
            inject(&s, Fault::KillBeforeCommit);
            s.commit_slice(&mut l, &commit("7", &records(5), false))
                .unwrap();
            assert_eq!((l.slices, s.connections()), (1, 3));
            inject(&s, Fault::KillBeforeCommit);
            assert!(s.fail_attempt(&l, &failure("trap", "boom", 3, 0)).unwrap());
            let status = s.status(job, 100).unwrap();
            assert_eq!(status.counters, records(5));
            assert_eq!((status.attempts, status.failed_attempts), (1, 1));
            let committed = status
                .recent_events
                .iter()
                .filter(|e| e.event == EventKind::SliceCommitted)
                .count();
            assert_eq!(committed, 1);
            assert_eq!(s.tasks(job).unwrap()[0].failures, 1);
        },
    );
}

#[test]
fn a_lost_commit_reply_is_settled_by_asking_the_server() {
    within(
        LIMIT,
        "a_lost_commit_reply_is_settled_by_asking_the_server",
        || {
            let url = PgServer::shared().fresh_store_url();
            let mut s = PgStore::open(&url).unwrap();
            let job = new_job(&mut s, "fp", 2, 0);
            // Each step commits, then its reply is lost: the session must find it committed and
            // return its result, not run it again (a second lease, a second count, a second failure).
            inject(&s, Fault::LoseCommitReply);
            let mut l = lease(&mut s, job, "w");
            assert_eq!((l.idx, l.attempt), (0, 1));
            inject(&s, Fault::LoseCommitReply);
            s.commit_slice(&mut l, &commit("7", &records(5), false))
                .unwrap();
            assert_eq!(l.slices, 1);
            inject(&s, Fault::LoseCommitReply);
            s.commit_slice(&mut l, &commit("9", &records(2), true))
                .unwrap();
            let mut other = lease(&mut s, job, "w");
            inject(&s, Fault::LoseCommitReply);
            assert!(
                s.fail_attempt(&other, &failure("trap", "boom", 3, 0))
                    .unwrap()
            );
            inject(&s, Fault::LoseCommitReply);
            assert_eq!(s.claim_hook(job, "notify", "w", 1000).unwrap(), Some(1));
            assert_eq!(s.connections(), 6);
            let status = s.status(job, 100).unwrap();
            assert_eq!(status.counters, records(7));
            assert_eq!((status.attempts, status.failed_attempts), (2, 1));
            let tasks = s.tasks(job).unwrap();
            assert_eq!(
                tasks
                    .iter()
                    .map(|t| (t.state, t.attempt, t.failures, t.slices))
                    .collect::<Vec<_>>(),
                [
                    (TaskState::Done, 1, 0, 2),
                    (TaskState::Pending, 1, 1, 0),
                    (TaskState::Pending, 0, 0, 0)
                ]
            );
            assert_eq!(s.hooks(job).unwrap()[0].attempts, 1);
            // The retried task goes on from there.
            other = lease(&mut s, job, "w");
            assert_eq!((other.idx, other.attempt), (1, 2));
        },
    );
}

#[test]
fn a_replayed_commit_is_recognised_and_a_stale_one_refused() {
    within(
        LIMIT,
        "a_replayed_commit_is_recognised_and_a_stale_one_refused",
        || {
            let url = PgServer::shared().fresh_store_url();
            let mut s = PgStore::open(&url).unwrap();
            let job = new_job(&mut s, "fp", 1, 0);
            let mut l = lease(&mut s, job, "w");
            let before = l.clone();
            s.commit_slice(&mut l, &commit("7", &records(5), false))
                .unwrap();
            // The same commit again (as a client would send it had it never heard back): a no-op.
            let mut replay = before.clone();
            s.commit_slice(&mut replay, &commit("7", &records(5), false))
                .unwrap();
            assert_eq!(replay, l);
            // A different commit from the same stale view is refused.
            let mut stale = before;
            let err = s
                .commit_slice(&mut stale, &commit("8", &records(1), false))
                .unwrap_err();
            assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
            assert_eq!(s.job_counters(job).unwrap(), records(5));
            assert_eq!(s.tasks(job).unwrap()[0].slices, 1);
        },
    );
}

/// Runs `job` to the end on `workers` threads, each committing every map task in `slices`
/// slices (a record and an output each) with `work` between them; returns how many times the
/// workers reconnected.
fn run_job(url: &str, job: i64, workers: usize, slices: u32, work: Duration) -> u64 {
    let options = PgOptions {
        reconnect_for: Duration::from_secs(60),
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let options = options.clone();
                scope.spawn(move || {
                    let mut s = PgStore::open_with(url, &options).unwrap();
                    let owner = format!("w{w}");
                    loop {
                        match s.acquire(job, &owner, 60_000, &alive).unwrap() {
                            Acquired::Lease(mut l) => {
                                let n = if l.kind == TaskKind::Map { slices } else { 1 };
                                while l.slices < n {
                                    std::thread::sleep(work);
                                    s.slice_started(&l).unwrap();
                                    let out = OutputFile {
                                        path: format!("{}-{}-{}", l.idx, l.slices, l.attempt),
                                        part: 0,
                                        bytes: 1,
                                        records: 1,
                                        checksum: "c".into(),
                                    };
                                    let cursor = (l.slices + 1).to_string();
                                    let last = l.slices + 1 == n;
                                    s.commit_slice(
                                        &mut l,
                                        &SliceCommit {
                                            outputs: std::slice::from_ref(&out),
                                            ..commit(&cursor, &records(1), last)
                                        },
                                    )
                                    .unwrap();
                                }
                            }
                            Acquired::Wait { .. } => std::thread::sleep(Duration::from_millis(5)),
                            Acquired::Finished { phase, .. } => {
                                assert_eq!(phase, Phase::Done);
                                return s.connections() - 1;
                            }
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

/// Checks that a job of `tasks` map tasks in `slices` slices each (and a finalize) ran each
/// task once and committed each slice once.
fn assert_exactly_once(url: &str, job: i64, tasks: u32, slices: u32) {
    let s = PgStore::open(url).unwrap();
    let status = s.status(job, u32::MAX).unwrap();
    let expected = i64::from(tasks * slices + 1);
    assert_eq!(status.phase, Phase::Done);
    assert_eq!(status.counters, records(expected));
    // Each task leased once: no acquire was applied twice.
    assert_eq!(status.attempts, tasks + 1);
    let commits = status
        .recent_events
        .iter()
        .filter(|e| e.event == EventKind::SliceCommitted)
        .count();
    assert_eq!(commits as i64, expected);
    assert_eq!(
        s.outputs(job, TaskKind::Map).unwrap().len() as u32,
        tasks * slices
    );
    assert!(
        s.tasks(job)
            .unwrap()
            .iter()
            .all(|t| t.kind != TaskKind::Map || (t.slices, t.attempt) == (slices, 1))
    );
}

#[test]
fn backends_killed_at_random_lose_nothing_and_count_nothing_twice() {
    within(
        LIMIT,
        "backends_killed_at_random_lose_nothing_and_count_nothing_twice",
        || {
            let server = PgServer::shared();
            let schema_url = server.fresh_store_url();
            // Its own application name, so the killer ends only this test's connections.
            let url = format!(
                "{schema_url}&application_name=mr-chaos-{}",
                std::process::id()
            );
            let job = new_job(&mut PgStore::open(&url).unwrap(), "fp", 40, 0);
            let done = AtomicBool::new(false);
            let kills = AtomicU64::new(0);
            let reconnections = std::thread::scope(|scope| {
                scope.spawn(|| {
                    let mut admin = server.admin();
                    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
                    while !done.load(Ordering::Relaxed) {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        std::thread::sleep(Duration::from_millis(5 + rng % 30));
                        let killed: i64 = admin
                            .query_one(
                                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
                             FROM pg_stat_activity WHERE application_name = $1",
                                &[&format!("mr-chaos-{}", std::process::id())],
                            )
                            .unwrap()
                            .get(0);
                        kills.fetch_add(killed as u64, Ordering::Relaxed);
                    }
                });
                // Stops the killer however the workers end (a panic included).
                let _stop = Stop(&done);
                run_job(&url, job, 4, 3, Duration::from_millis(2))
            });
            assert!(
                kills.load(Ordering::Relaxed) >= 5 && reconnections >= 5,
                "too little chaos to prove anything: {} kills, {reconnections} reconnections",
                kills.load(Ordering::Relaxed)
            );
            assert_exactly_once(&url, job, 40, 3);
        },
    );
}

#[test]
fn a_server_restarted_mid_job_loses_nothing_and_counts_nothing_twice() {
    within(
        LIMIT,
        "a_server_restarted_mid_job_loses_nothing_and_counts_nothing_twice",
        || {
            let server =
                PgServer::start(&PgServerOptions::default()).unwrap_or_else(|e| panic!("{e}"));
            let url = server.fresh_store_url();
            let job = new_job(&mut PgStore::open(&url).unwrap(), "fp", 24, 0);
            let restarted = std::thread::scope(|scope| {
                let restarter = scope.spawn(|| {
                    // Once a quarter of the slices are in: crash the server (immediate shutdown, then
                    // recovery) while workers are mid-job.
                    let deadline = Instant::now() + Duration::from_secs(30);
                    while count_in(&url, "SELECT count(*) FROM slices") < 18 {
                        assert!(Instant::now() < deadline, "the job did not get going");
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    server.restart("immediate").unwrap();
                    count_in(&url, "SELECT count(*) FROM slices")
                });
                let reconnections = run_job(&url, job, 4, 3, Duration::from_millis(20));
                (restarter.join().unwrap(), reconnections)
            });
            let (slices_at_restart, reconnections) = restarted;
            assert!(
                slices_at_restart < 72,
                "the restart came after the job ended"
            );
            assert!(reconnections >= 4, "{reconnections} reconnections");
            assert_exactly_once(&url, job, 24, 3);
        },
    );
}

#[test]
fn a_store_that_stays_unreachable_fails_naming_it() {
    within(
        LIMIT,
        "a_store_that_stays_unreachable_fails_naming_it",
        || {
            let server =
                PgServer::start(&PgServerOptions::default()).unwrap_or_else(|e| panic!("{e}"));
            let url = server.fresh_store_url();
            let options = PgOptions {
                reconnect_for: Duration::from_millis(500),
            };
            let mut s = PgStore::open_with(&url, &options).unwrap();
            drop(server);
            let started = Instant::now();
            let err = s.create_job(&plan("fp", 1, 0)).unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, StoreError::Database { .. }), "{message}");
            assert!(message.contains(&redact(&url)), "{message}");
            assert!(message.contains("could not reconnect within"), "{message}");
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{:?}",
                started.elapsed()
            );
        },
    );
}

#[test]
fn leases_follow_the_servers_clock_not_the_workers() {
    within(
        LIMIT,
        "leases_follow_the_servers_clock_not_the_workers",
        || {
            let server = PgServer::start(&PgServerOptions {
                clock_offset: Some("+1h".into()),
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("{e}"));
            let mut s = PgStore::open(&server.fresh_store_url()).unwrap();
            let ours = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            let theirs = s.now_ms().unwrap();
            let skew = theirs - ours;
            assert!(
                (3_500_000..3_700_000).contains(&skew),
                "the server should run an hour ahead of this process: {skew} ms"
            );
            // If the backend mixed the worker's clock into lease decisions, this lease would have
            // expired an hour ago (or would last an hour).
            let job = new_job(&mut s, "fp", 1, 0);
            let l = match s.acquire(job, "w1", 1000, &alive).unwrap() {
                Acquired::Lease(l) => l,
                other => panic!("{other:?}"),
            };
            let status = s.status(job, 10).unwrap();
            let held = &status.leases[0];
            assert!(!held.expired);
            assert!(
                (0..=1000).contains(&(held.expires_at_ms - status.now_ms)),
                "{held:?}"
            );
            assert!(status.created_ms >= theirs - 1000);
            assert!(
                status
                    .recent_events
                    .iter()
                    .all(|e| e.at_ms >= theirs - 1000)
            );
            assert!(matches!(
                s.acquire(job, "w2", 1000, &alive).unwrap(),
                Acquired::Wait { retry_in_ms } if (1..=1000).contains(&retry_in_ms)
            ));
            s.heartbeat(&l, 200).unwrap();
            std::thread::sleep(Duration::from_millis(250));
            let taken = lease(&mut s, job, "w2");
            assert_eq!(taken.attempt, 2);
            // Backoffs too.
            assert!(
                s.fail_attempt(&taken, &failure("trap", "x", 3, 300))
                    .unwrap()
            );
            assert!(matches!(
                s.acquire(job, "w3", 1000, &alive).unwrap(),
                Acquired::Wait { retry_in_ms } if (1..=300).contains(&retry_in_ms)
            ));
            std::thread::sleep(Duration::from_millis(350));
            assert_eq!(lease(&mut s, job, "w3").attempt, 3);
        },
    );
}

#[test]
fn a_store_from_a_newer_mr_is_refused() {
    within(LIMIT, "a_store_from_a_newer_mr_is_refused", || {
        let url = PgServer::shared().fresh_store_url();
        drop(PgStore::open(&url).unwrap());
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        admin
            .batch_execute("INSERT INTO schema_version VALUES (99, 0)")
            .unwrap();
        let err = PgStore::open(&url).err().unwrap();
        assert!(
            matches!(err, StoreError::TooNew { found: 99, supported, .. } if supported == migrate::SUPPORTED),
            "{err}"
        );
    });
}

#[test]
fn another_programs_schema_is_refused() {
    within(LIMIT, "another_programs_schema_is_refused", || {
        let url = PgServer::shared().fresh_store_url();
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        admin
            .batch_execute("CREATE TABLE users (id integer PRIMARY KEY)")
            .unwrap();
        let err = PgStore::open(&url).err().unwrap();
        let message = err.to_string();
        assert!(matches!(err, StoreError::Unusable { .. }), "{message}");
        assert!(
            message.contains("users") && message.contains("no schema_version"),
            "{message}"
        );
        // Nothing was created beside it.
        let tables: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(tables, 1);
    });
}

#[test]
fn a_half_migrated_schema_is_refused() {
    within(LIMIT, "a_half_migrated_schema_is_refused", || {
        let url = PgServer::shared().fresh_store_url();
        drop(PgStore::open(&url).unwrap());
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        admin.batch_execute("DROP TABLE hooks, events").unwrap();
        let err = PgStore::open(&url).err().unwrap();
        let message = err.to_string();
        assert!(matches!(err, StoreError::Unusable { .. }), "{message}");
        assert!(
            message.contains("lacks its tables events, hooks"),
            "{message}"
        );
        admin.batch_execute("DELETE FROM schema_version").unwrap();
        let message = PgStore::open(&url).err().unwrap().to_string();
        assert!(message.contains("empty schema_version"), "{message}");
    });
}

#[test]
fn a_search_path_naming_no_schema_is_refused() {
    within(LIMIT, "a_search_path_naming_no_schema_is_refused", || {
        let url = with_search_path(PgServer::shared().url(), "no_such_schema");
        let err = PgStore::open(&url).err().unwrap();
        assert!(
            matches!(&err, StoreError::Unusable { message, .. } if message.contains("no schema that exists")),
            "{err}"
        );
    });
}

#[test]
fn stores_opened_at_once_migrate_once() {
    within(LIMIT, "stores_opened_at_once_migrate_once", || {
        let url = PgServer::shared().fresh_store_url();
        std::thread::scope(|scope| {
            let opens: Vec<_> = (0..6)
                .map(|_| scope.spawn(|| PgStore::open(&url)))
                .collect();
            for open in opens {
                open.join().unwrap().unwrap();
            }
        });
        let versions = count_in(&url, "SELECT count(*) FROM schema_version");
        assert_eq!(versions, migrate::SUPPORTED);
    });
}

#[test]
fn two_schemas_are_two_stores() {
    within(LIMIT, "two_schemas_are_two_stores", || {
        let server = PgServer::shared();
        let (a, b) = (server.fresh_store_url(), server.fresh_store_url());
        let mut a = PgStore::open(&a).unwrap();
        let b = PgStore::open(&b).unwrap();
        new_job(&mut a, "fp", 1, 0);
        assert_eq!(a.jobs().unwrap().len(), 1);
        assert!(b.jobs().unwrap().is_empty());
    });
}

/// The URL of the shared server with `user:password`, host, port or database replaced.
fn altered(f: impl Fn(&str) -> String) -> String {
    f(PgServer::shared().url())
}

#[test]
fn wrong_credentials_are_named_without_the_password() {
    within(
        LIMIT,
        "wrong_credentials_are_named_without_the_password",
        || {
            PgServer::shared();
            let url = altered(|u| {
                let (_, rest) = u.split_once('@').unwrap();
                format!("postgres://mr:not-the-password@{rest}")
            });
            let message = PgStore::open(&url).err().unwrap().to_string();
            assert!(
                message.starts_with(&format!("job store {}: ", redact(&url))),
                "{message}"
            );
            assert!(
                message.contains("password authentication failed for user \"mr\""),
                "{message}"
            );
            assert!(
                !message.contains("not-the-password") && !message.contains('\n'),
                "{message}"
            );
        },
    );
}

#[test]
fn an_unreachable_server_is_named() {
    within(LIMIT, "an_unreachable_server_is_named", || {
        let url = format!(
            "postgres://mr@127.0.0.1:{}/postgres",
            free_port("127.0.0.1").unwrap()
        );
        let started = Instant::now();
        let message = PgStore::open(&url).err().unwrap().to_string();
        assert!(
            message.starts_with(&format!("job store {url}: cannot connect: ")),
            "{message}"
        );
        assert!(message.contains("Connection refused"), "{message}");
        // Not retried at open: a wrong address fails at once.
        assert!(started.elapsed() < Duration::from_secs(5));
    });
}

#[test]
fn a_missing_database_is_named() {
    within(LIMIT, "a_missing_database_is_named", || {
        PgServer::shared();
        let url = altered(|u| u.replace("/postgres", "/no_such_db"));
        let message = PgStore::open(&url).err().unwrap().to_string();
        assert!(message.contains(&redact(&url)), "{message}");
        assert!(
            message.contains("database \"no_such_db\" does not exist"),
            "{message}"
        );
    });
}

#[test]
fn a_malformed_url_is_refused() {
    within(LIMIT, "a_malformed_url_is_refused", || {
        let err = PgStore::open("postgres://mr:secret@localhost:port/db")
            .err()
            .unwrap();
        let message = err.to_string();
        assert!(matches!(err, StoreError::BadLocation { .. }), "{message}");
        assert!(
            message.contains("not a PostgreSQL URL") && !message.contains("secret"),
            "{message}"
        );
    });
}

#[test]
fn event_ids_follow_commit_order_so_a_poller_misses_none() {
    within(
        LIMIT,
        "event_ids_follow_commit_order_so_a_poller_misses_none",
        || {
            let url = PgServer::shared().fresh_store_url();
            let mut s = PgStore::open(&url).unwrap();
            let job = new_job(&mut s, "fp", 8, 0);
            let done = AtomicBool::new(false);
            let seen = std::thread::scope(|scope| {
                let poller = scope.spawn(|| {
                    let reader = PgStore::open(&url).unwrap();
                    let mut seen = Vec::new();
                    let mut after = 0;
                    loop {
                        let finished = done.load(Ordering::Relaxed);
                        for e in reader.events(job, after, 10_000).unwrap() {
                            after = e.id;
                            seen.push(e.id);
                        }
                        if finished {
                            return seen;
                        }
                    }
                });
                let stop = Stop(&done);
                let writers: Vec<_> = (0..4)
                    .map(|w| {
                        let url = url.clone();
                        scope.spawn(move || {
                            let mut s = PgStore::open(&url).unwrap();
                            let l = lease(&mut s, job, &format!("w{w}"));
                            for _ in 0..150 {
                                s.slice_started(&l).unwrap();
                            }
                        })
                    })
                    .collect();
                for w in writers {
                    w.join().unwrap();
                }
                drop(stop);
                poller.join().unwrap()
            });
            let all: Vec<i64> = s
                .events(job, 0, u32::MAX)
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect();
            assert_eq!(all.len(), 1 + 4 + 600);
            assert_eq!(seen, all, "the poller skipped events that committed late");
        },
    );
}

#[test]
fn the_password_comes_from_pgpassword_unless_the_url_has_one() {
    within(
        LIMIT,
        "the_password_comes_from_pgpassword_unless_the_url_has_one",
        || {
            let password = |url: &str, env: Option<&str>| {
                let mut config: postgres::Config = url.parse().unwrap();
                session::with_defaults(&mut config, url, env.map(str::to_owned));
                config
                    .get_password()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
            };
            assert_eq!(
                password("postgres://mr@h/db", Some("env")).as_deref(),
                Some("env")
            );
            assert_eq!(
                password("postgres://mr:url@h/db", Some("env")).as_deref(),
                Some("url")
            );
            assert_eq!(password("postgres://mr@h/db", None), None);
            // The URL's own settings win over the defaults.
            let mut config: postgres::Config =
                "postgres://mr@h/db?connect_timeout=3".parse().unwrap();
            session::with_defaults(&mut config, "postgres://mr@h/db?connect_timeout=3", None);
            assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(3)));
            assert_eq!(config.get_application_name(), Some("mr-host"));
        },
    );
}
