//! Durable execution, proven with real processes: `mr-host` killed with SIGKILL at random
//! moments and inside commits, then rerun; four worker processes sharing one store while one is
//! stopped (SIGSTOP) until its lease is taken over; flaky and failing guests.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const RECORDS: u64 = 1_000_000;

/// One million lines of words from a skewed vocabulary (about 20 MB).
fn million_lines(dir: &Path) -> PathBuf {
    let path = dir.join("million.txt");
    let mut text = String::with_capacity(24 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..RECORDS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        text.push_str(&format!(
            "w{} v{} line{}\n",
            x % 5000,
            (x >> 20) % 97,
            i % 13
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Every file of an output directory except the store's `_mr`, with its bytes.
pub(crate) fn output_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "_mr")
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("_MANIFEST")).unwrap()).unwrap()
}

/// A deterministic generator for the kill schedule.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Starts `mr-host ARGS` with stderr going to a fresh file under `logs`.
pub(crate) fn spawn(args: &[String], logs: &Path, env: Option<(&str, &str)>) -> (Child, PathBuf) {
    std::fs::create_dir_all(logs).unwrap();
    let n = std::fs::read_dir(logs).unwrap().count();
    let log = logs.join(format!("{n:04}.stderr"));
    let mut cmd = mr_host();
    cmd.args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    (cmd.spawn().unwrap(), log)
}

/// Runs `mr-host ARGS` again and again, each run SIGKILLed at a random moment within
/// `window_ms` (from the seeded `rng`), until one finishes (it must succeed). Returns how many
/// runs the kills ended.
pub(crate) fn killed_until_done(
    args: &[String],
    logs: &Path,
    rng: &mut Rng,
    window_ms: u64,
) -> u32 {
    let mut kills = 0;
    loop {
        let (mut child, _) = spawn(args, logs, None);
        let deadline = Instant::now() + Duration::from_millis(5 + rng.below(window_ms));
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        match finished {
            Some(status) => {
                assert!(status.success(), "a resumed run failed: {status}");
                return kills;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                if child.wait().unwrap().signal() == Some(9) {
                    kills += 1;
                }
            }
        }
    }
}

/// No run may ever surface SQLite lock contention to the user.
fn assert_no_busy_errors(logs: &Path) {
    for entry in std::fs::read_dir(logs).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for bad in [
            "database is locked",
            "SQLITE_BUSY",
            "database table is locked",
        ] {
            assert!(!text.contains(bad), "a run reported {bad:?}:\n{text}");
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid} failed");
}

#[test]
fn killed_anywhere_then_rerun_gives_identical_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = million_lines(dir.path());
    let job = guest("wordcount");
    let logs = dir.path().join("logs");
    let settings = [
        "--workers",
        "2",
        "--shards",
        "6",
        "--reducers",
        "3",
        "--slice-size",
        "256K",
    ];
    let reference = dir.path().join("reference");
    let started = Instant::now();
    run_ok(&run_args(&job, &input, &reference, &settings));
    let clean_run = started.elapsed();
    let expected = output_files(&reference);
    assert_eq!(manifest(&reference)["counters"]["records-in"], RECORDS);
    let mut kills = 0;

    // Crashes at chosen points: before a slice's commit (files renamed, nothing recorded),
    // inside it (all rows written, COMMIT not reached), the same for a reduce task, and around
    // the finalize commit. Each run dies there; the next run resumes the same job.
    let out = dir.path().join("failpoints");
    for point in [
        "before-commit-map:4",
        "inside-commit-map:3",
        "inside-commit-map:1",
        "before-commit-reduce:2",
        "inside-commit-reduce:1",
        "before-commit-finalize:1",
        "inside-commit-finalize:1",
    ] {
        let (mut child, log) = spawn(
            &run_args(&job, &input, &out, &settings),
            &logs,
            Some(("MR_FAILPOINT", point)),
        );
        let status = child.wait().unwrap();
        let stderr = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "{point} was not reached:\n{stderr}"
        );
        assert!(stderr.contains("failpoint"), "{stderr}");
        kills += 1;
    }
    run_ok(&run_args(&job, &input, &out, &settings));
    assert!(
        output_files(&out) == expected,
        "output after failpoint kills differs from the clean run"
    );

    // Kills at seeded random moments (anywhere from start-up to the end of the job), rerunning
    // the same command after each, until 20 random kills have happened and at least 10 of them
    // landed inside a task. How many land inside one depends on how start-up time compares with
    // task time on the machine, so the test keeps killing (up to a cap) rather than hoping.
    let mut rng = Rng(0x00c0_ffee_d00d_f00d);
    let window = clean_run.as_millis() as u64 + 200;
    let mut random_kills = 0;
    let mut taken_over = 0;
    let mut episode = 0;
    while random_kills < 20 || (taken_over < 10 && random_kills < 60) {
        let out = dir.path().join(format!("episode-{episode}"));
        episode += 1;
        let landed = killed_until_done(
            &run_args(&job, &input, &out, &settings),
            &logs,
            &mut rng,
            window,
        );
        random_kills += landed;
        kills += landed;
        assert!(
            output_files(&out) == expected,
            "output of episode {episode} differs from the clean run"
        );
        // Leases of killed runs that a rerun took over: the kills landed mid-task.
        let store = rusqlite::Connection::open(out.join("_mr/state.db")).unwrap();
        taken_over += store
            .query_row(
                "SELECT COUNT(*) FROM events WHERE event = 'lease-taken-over'",
                [],
                |r| r.get::<_, u32>(0),
            )
            .unwrap();
    }
    eprintln!("{random_kills} random kills in {episode} episodes; {taken_over} leases taken over");
    assert!(
        taken_over >= 10,
        "only {taken_over} of {random_kills} random kills landed inside a task"
    );
    assert!(kills >= 27, "{kills} kills");
    assert_no_busy_errors(&logs);
}

/// The `map` lease a worker with this pid holds, if any: (task, attempt).
fn lease_of(db: &rusqlite::Connection, pid: u32) -> Option<(u32, u32)> {
    db.query_row(
        "SELECT idx, attempt FROM tasks WHERE kind = 'map' AND state = 'leased' AND owner LIKE ?",
        [format!("%:{pid}:%")],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .ok()
}

#[test]
fn four_workers_share_a_store_and_a_stalled_one_is_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let input = million_lines(dir.path());
    let job = guest("wordcount");
    let logs = dir.path().join("logs");
    let reference = dir.path().join("reference");
    run_ok(&run_args(&job, &input, &reference, &["--reducers", "3"]));

    let db = dir.path().join("jobs.db");
    let out = dir.path().join("out");
    let submitted = run_ok(&submit_args(
        &job,
        &input,
        &out,
        &db,
        &[
            "--reducers",
            "3",
            "--shards",
            "8",
            "--slice-size",
            "64K",
            "--batch-size",
            "8K",
        ],
    ));
    assert_eq!(String::from_utf8_lossy(&submitted.stdout).trim(), "1");
    let worker_args: Vec<String> = [
        "worker",
        "--db",
        s(&db),
        "--workers",
        "1",
        "--lease-seconds",
        "1",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut workers: Vec<Child> = (0..4).map(|_| spawn(&worker_args, &logs, None).0).collect();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.busy_timeout(Duration::from_secs(60)).unwrap();

    // Stop a worker that holds a map lease; wait until its lease expires and another worker
    // takes the task over; then let it continue. (If it was stopped while holding SQLite's write
    // lock, nobody can take over: let it go and try again.)
    let mut fenced = None;
    'tries: for _ in 0..20 {
        for w in &workers {
            let pid = w.id();
            let Some((task, attempt)) = lease_of(&conn, pid) else {
                continue;
            };
            signal(pid, "-STOP");
            let deadline = Instant::now() + Duration::from_secs(8);
            while Instant::now() < deadline {
                let now: Option<(u32, String)> = conn
                    .query_row(
                        "SELECT attempt, COALESCE(owner, '') FROM tasks WHERE kind = 'map' AND idx = ?",
                        [task],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .ok();
                if now.is_some_and(|(a, _)| a > attempt) {
                    signal(pid, "-CONT");
                    fenced = Some((pid, task, attempt));
                    break 'tries;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            signal(pid, "-CONT");
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    let (pid, task, attempt) = fenced.expect("a stopped worker's lease was never taken over");
    for w in &mut workers {
        let status = w.wait().unwrap();
        assert!(status.success(), "a worker failed: {status}");
    }

    // The stalled worker's commit was refused, and recorded as such.
    let refused: u32 = conn
        .query_row(
            "SELECT COUNT(*) FROM attempts WHERE kind = 'map' AND idx = ? AND attempt = ?
             AND outcome = 'refused' AND owner LIKE ?",
            rusqlite::params![task, attempt, format!("%:{pid}:%")],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        refused, 1,
        "attempt {attempt} of map task {task} was not refused"
    );
    let events: u32 = conn
        .query_row(
            "SELECT COUNT(*) FROM events WHERE event = 'commit-refused' AND idx = ? AND attempt = ?",
            rusqlite::params![task, attempt],
            |r| r.get(0),
        )
        .unwrap();
    assert!(events >= 1);
    // Every slice of every task was committed exactly once, numbered without gaps.
    let mut stmt = conn
        .prepare(
            "SELECT t.kind, t.idx, t.slices, COUNT(s.slice), COALESCE(MAX(s.slice), -1)
             FROM tasks t LEFT JOIN slices s ON s.job = t.job AND s.kind = t.kind AND s.idx = t.idx
             GROUP BY t.kind, t.idx",
        )
        .unwrap();
    let rows: Vec<(String, u32, i64, i64, i64)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    // 8 planned map tasks (and any split off them when a worker ran out), 3 reduce, finalize.
    let planned = 8 + 3 + 1;
    assert!(rows.len() >= planned, "{rows:?}");
    for (kind, idx, slices, rows, max) in rows {
        assert!(slices >= 1, "{kind} {idx}");
        assert_eq!((rows, max), (slices, slices - 1), "{kind} task {idx}");
    }
    let phase: String = conn
        .query_row("SELECT phase FROM jobs WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(phase, "done");
    assert_eq!(manifest(&out)["counters"]["records-in"], RECORDS);
    let part_files = |d: &Path| {
        output_files(d)
            .into_iter()
            .filter(|(n, _)| n.starts_with("part-"))
            .collect::<BTreeMap<_, _>>()
    };
    assert!(part_files(&out) == part_files(&reference), "outputs differ");
    assert_no_busy_errors(&logs);
}

fn faulty_input(dir: &Path, lines: u32) -> PathBuf {
    let path = dir.join("faulty.txt");
    let text: String = (1..=lines)
        .map(|i| format!("k{} line {i}\n", i % 11))
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_flaky_guest_is_retried_and_its_counters_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let input = faulty_input(dir.path(), 200_000);
    let job = guest("faulty");
    let settings = [
        "--shards",
        "2",
        "--reducers",
        "2",
        "--slice-records",
        "10000",
    ];
    let reference = dir.path().join("reference");
    run_ok(&run_args(&job, &input, &reference, &settings));
    let out = dir.path().join("out");
    let mut args = settings.to_vec();
    args.extend(["--param", "flaky-every=3", "--max-attempts", "6", "--json"]);
    let ran = run_ok(&run_args(&job, &input, &out, &args));
    let summary: serde_json::Value = serde_json::from_slice(&ran.stdout).unwrap();
    // Each shard has 10 slices; slices 0, 3, 6 and 9 fail once each.
    assert_eq!(summary["counters"]["records-in"], 200_000);
    assert_eq!(summary["job_counters"]["lines-seen"], 200_000);
    assert_eq!(summary["attempts"], 2 * 5 + 2 + 1);
    assert_eq!(sorted_lines(&out), sorted_lines(&reference));
    let status = run_ok(&["status", "1", "--output", s(&out), "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["failed_attempts"], 8);
    assert_eq!(
        status["failures_by_kind"],
        serde_json::json!([["job-error", 8]])
    );
    let errors = status["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 8);
    assert!(
        errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("flaky on purpose: first attempt (1) at slice 0"),
        "{errors:?}"
    );
}

#[test]
fn a_guest_that_always_fails_ends_the_job_at_once_naming_the_slice() {
    let dir = tempfile::tempdir().unwrap();
    let input = faulty_input(dir.path(), 5000);
    let text = std::fs::read_to_string(&input)
        .unwrap()
        .replace("line 77\n", "line 77 REFUSE\n");
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("out");
    let err = run_err(&run_args(
        &guest("faulty"),
        &input,
        &out,
        &[
            "--param",
            "fail-on=REFUSE",
            "--shards",
            "1",
            "--max-attempts",
            "3",
        ],
    ));
    assert!(
        err.contains(&format!(
            "job 1 (`faulty`) failed: job `faulty` failed in map shard 0, slice 0, attempt 1, at {}:77: the job reported an error: refusing the line with marker \"REFUSE\"",
            input.display()
        )),
        "{err}"
    );
    let status = run_ok(&["status", "--output", s(&out)]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains("job 1 `faulty`: failed"), "{status}");
    // The record fails the same way on its own: deterministic, so one attempt, not three.
    assert!(status.contains("1 failed"), "{status}");
    assert!(
        status.contains("map task 0 attempt 1: job `faulty` failed"),
        "{status}"
    );
    assert!(!status.contains("attempt 2"), "{status}");
}

#[test]
fn submit_resume_status_and_reruns() {
    let dir = tempfile::tempdir().unwrap();
    let input = faulty_input(dir.path(), 3000);
    let job = guest("wordcount");
    let db = dir.path().join("store.db");
    let out = dir.path().join("out");
    let submit = |extra: &[&str]| submit_args(&job, &input, &out, &db, extra);
    let first = run_ok(&submit(&["--reducers", "2"]));
    assert_eq!(String::from_utf8_lossy(&first.stdout).trim(), "1");
    // Submitting the same job again finds it.
    let again = run_ok(&submit(&[]));
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), "1");
    let status = run_ok(&["status", "1", "--db", s(&db), "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["phase"], "map");
    assert_eq!(status["tasks"][1]["kind"], "reduce");
    assert_eq!(status["tasks"][1]["pending"], 2);

    let resumed = run_ok(&["resume", "1", "--db", s(&db), "--json"]);
    let summary: serde_json::Value = serde_json::from_slice(&resumed.stdout).unwrap();
    assert_eq!(summary["counters"]["records-in"], 3000);
    assert_eq!(summary["partitions"], 2);
    let status = String::from_utf8_lossy(&run_ok(&["status", "--db", s(&db)]).stdout).into_owned();
    assert!(status.contains("job 1 `wordcount`: done"), "{status}");
    assert!(status.contains("job-completed"), "{status}");
    // Per-task view: every task, its state and its own committed counters.
    let tasks = run_ok(&["status", "1", "--db", s(&db), "--tasks", "--json"]);
    let tasks: serde_json::Value = serde_json::from_slice(&tasks.stdout).unwrap();
    let tasks = tasks["tasks"].as_array().unwrap();
    let map_records: i64 = tasks
        .iter()
        .filter(|t| t["kind"] == "map")
        .map(|t| t["counters"]["records-in"].as_i64().unwrap())
        .sum();
    assert_eq!(map_records, 3000);
    assert!(tasks.iter().all(|t| t["state"] == "done"));

    // Rerunning the finished job reports it without running anything.
    let mut run = submit(&["--json"]);
    run[0] = "run".into();
    let rerun_out = run_ok(&run);
    let rerun: serde_json::Value = serde_json::from_slice(&rerun_out.stdout).unwrap();
    assert_eq!(rerun["attempts"], summary["attempts"]);
    let said = String::from_utf8_lossy(&rerun_out.stderr);
    assert!(
        said.contains("job 1 is already done (nothing was run); its summary:"),
        "{said}"
    );
    // The job's total wall time stays; this run's own is separate (and nothing).
    assert_eq!(rerun["wall_seconds"], summary["wall_seconds"]);
    assert_eq!(rerun["this_run_seconds"], 0.0);
    assert_eq!(rerun["already_done"], true);
    assert!(summary["this_run_seconds"].as_f64().unwrap() > 0.0);
    run.retain(|a| a != "--json");
    let human = String::from_utf8_lossy(&run_ok(&run).stderr).into_owned();
    assert!(
        human.starts_with("job 1 is already done (nothing was run); its summary:\n")
            && human.contains("job total")
            && human.contains("this run 0.00s (nothing run)"),
        "{human}"
    );
    // A different setting for the planned job is refused, naming it.
    let mut changed = submit(&["--reducers", "5"]);
    changed[0] = "run".into();
    let err = run_err(&changed);
    assert!(
        err.contains("job 1 was planned with --reducers 2, not 5"),
        "{err}"
    );
    // A different job on the same output directory is refused unless --overwrite.
    let other = guest("inverted-index");
    let mut args = submit(&[]);
    args[1] = s(&other).to_owned();
    let err = run_err(&args);
    assert!(err.contains("belongs to job 1 (`wordcount`)"), "{err}");
    args.push("--overwrite".into());
    assert_eq!(String::from_utf8_lossy(&run_ok(&args).stdout).trim(), "2");
    let err = run_err(&["resume", "7", "--db", s(&db)]);
    assert!(err.contains("has no job 7"), "{err}");
    let err = run_err(&["worker", "--db", s(&dir.path().join("missing.db"))]);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn ctrl_c_stops_run_with_a_message_and_a_rerun_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = million_lines(dir.path());
    let job = guest("wordcount");
    // Slow enough to interrupt: one worker, small slices, each committed.
    let settings = [
        "--reducers",
        "2",
        "--shards",
        "2",
        "--workers",
        "1",
        "--slice-size",
        "256K",
        "--batch-size",
        "64K",
    ];
    let clean = dir.path().join("clean");
    run_ok(&run_args(&job, &input, &clean, &settings));
    let out = dir.path().join("out");
    let logs = dir.path().join("logs");
    let args = run_args(&job, &input, &out, &settings);
    let (mut child, log) = spawn(&args, &logs, None);
    // Interrupt once a slice is committed, while the map phase runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be interrupted; make it slower"
        );
        assert!(Instant::now() < deadline, "no slice committed within 60 s");
        let status = mr_host()
            .args(["status", "--output", s(&out), "--json"])
            .output()
            .unwrap();
        if status.status.success() {
            let jobs: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
            if jobs[0]["tasks"][0]["slices"].as_u64().unwrap_or(0) >= 1 {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(child.id(), "-INT");
    let status = child.wait().unwrap();
    let said = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}\n{said}");
    assert!(
        said.contains(
            "interrupted: job 1 stopped; rerun the same command to resume it from its last committed slice"
        ),
        "{said}"
    );
    assert!(!out.join("_MANIFEST").exists());
    // Rerunning resumes (not already done) and gives the clean run's output.
    let rerun = run_ok(&args);
    let said = String::from_utf8_lossy(&rerun.stderr);
    assert!(!said.contains("already done"), "{said}");
    assert_eq!(output_files(&out), output_files(&clean));
}

/// After a crash, `status` shows the dead process's lease as stale (not running), and
/// `status --json` carries the counters in the shape `run --json` prints them.
#[test]
fn status_marks_a_dead_processs_lease_stale_and_counters_match_run_json() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, few_words(3000, 4, 7)).unwrap();
    let out = dir.path().join("out");
    let job = guest("wordcount");
    let settings = [
        "--shards",
        "1",
        "--reducers",
        "1",
        "--slice-records",
        "1000",
    ];
    let mut args = run_args(&job, &input, &out, &settings);
    args.push("--lease-seconds".into());
    args.push("600".into());
    let (mut child, log) = spawn(
        &args,
        &dir.path().join("logs"),
        Some(("MR_FAILPOINT", "before-commit-map:2")),
    );
    let status = child.wait().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.signal(), Some(9), "not killed:\n{stderr}");
    let db = out.join("_mr/state.db");
    let doc: serde_json::Value =
        serde_json::from_slice(&run_ok(&["status", "1", "--db", s(&db), "--json"]).stdout).unwrap();
    let lease = &doc["leases"][0];
    assert_eq!(lease["expired"], false, "{doc:#}");
    assert_eq!(lease["stale"], true, "{doc:#}");
    let text = String::from_utf8(run_ok(&["status", "1", "--db", s(&db)]).stdout).unwrap();
    assert!(text.contains("0 running, 1 stale (holder gone)"), "{text}");
    assert!(text.contains("stale: its holder is gone"), "{text}");
    // One committed slice so far: the counters say so, in run --json's shape.
    assert_eq!(doc["counters"]["records-in"], 1000, "{doc:#}");
    assert!(doc["job_counters"].is_object(), "{doc:#}");
    let summary: serde_json::Value =
        serde_json::from_slice(&run_ok(&[args.clone(), vec!["--json".into()]].concat()).stdout)
            .unwrap();
    let done: serde_json::Value =
        serde_json::from_slice(&run_ok(&["status", "1", "--db", s(&db), "--json"]).stdout).unwrap();
    assert_eq!(done["counters"], summary["counters"]);
    assert_eq!(done["job_counters"], summary["job_counters"]);
    assert!(done["leases"].as_array().unwrap().is_empty(), "{done:#}");
}
