//! A PostgreSQL job store (`--db postgres://...`): a throwaway server (`mr_store::testing`,
//! initdb and pg_ctl from `/usr/lib/postgresql/*/bin`; `scripts/setup-services.sh` installs
//! them), one fresh schema per test. A word count run in one process, and one submitted and
//! run by two worker processes (which load the component from the store), write the same bytes
//! as the same job on a SQLite store; so do two workers sharing only PostgreSQL and an S3 server.
//! Every `mr-host` here has a deadline: a run that hangs fails the test, naming it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mr_store::testing::PgServer;

use crate::support::*;

/// How long one `mr-host` may run before the test fails as hung.
const LIMIT: Duration = Duration::from_secs(300);

/// Three input files under `dir/in`.
fn inputs(dir: &Path) -> PathBuf {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    for (i, lines) in [4000, 2500, 1500].into_iter().enumerate() {
        std::fs::write(
            input.join(format!("{i}.txt")),
            few_words(lines, 6, i as u64 + 1),
        )
        .unwrap();
    }
    input
}

/// The job's settings, the same on every store: several shards, slices and partitions.
const SETTINGS: [&str; 6] = ["--reducers", "3", "--shards", "6", "--slice-size", "16K"];

/// Starts `mr-host ARGS`, its stderr in `log`.
fn start(args: &[&str], log: &Path) -> Child {
    mr_host()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Waits for `child` (whose stderr is `log`) to succeed, killing it and failing past the
/// deadline.
fn succeeds(mut child: Child, what: &str, log: &Path, deadline: Instant) {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "{what} failed ({status}):\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not finish within {} s; its stderr:\n{}",
                LIMIT.as_secs(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `mr-host ARGS` to success within [`LIMIT`].
fn run_within(args: &[&str], log: &Path) {
    let what = format!("mr-host {}", args.join(" "));
    succeeds(start(args, log), &what, log, Instant::now() + LIMIT);
}

/// `mr-host ARGS` to success within [`LIMIT`], returning its stdout.
fn output_within(args: &[&str]) -> String {
    let mut cmd: Command = mr_host();
    cmd.args(args).stdin(Stdio::null());
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let out = receiver
        .recv_timeout(LIMIT)
        .unwrap_or_else(|_| panic!("mr-host {args:?} did not finish within {LIMIT:?}"))
        .unwrap();
    assert!(
        out.status.success(),
        "mr-host {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The job on a SQLite store, for reference: its output directory.
fn reference(dir: &Path, job: &Path, input: &Path) -> PathBuf {
    let out = dir.join("sqlite-out");
    let db = dir.join("jobs.db");
    let mut args = vec!["run", s(job), "-i", s(input), "-o", s(&out), "--db", s(&db)];
    args.extend(SETTINGS);
    run_within(&args, &dir.join("sqlite.stderr"));
    out
}

/// Asserts that `out` holds the same part files, byte for byte, and the same manifest files
/// and counters as `expected`.
fn same_output(out: &Path, expected: &Path) {
    let names = |dir: &Path| -> Vec<String> {
        parts(dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(out), names(expected));
    assert_eq!(names(out).len(), 3);
    for part in parts(expected) {
        let name = part.file_name().unwrap();
        assert!(
            std::fs::read(out.join(name)).unwrap() == std::fs::read(&part).unwrap(),
            "{} differs from {}",
            out.join(name).display(),
            part.display()
        );
    }
    let manifest = |dir: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("_MANIFEST")).unwrap()).unwrap()
    };
    let (ours, theirs) = (manifest(out), manifest(expected));
    assert_eq!(ours["files"], theirs["files"]);
    assert_eq!(ours["counters"], theirs["counters"]);
    assert!(!sorted_lines(out).is_empty());
}

#[test]
fn a_job_run_on_a_postgres_store_writes_the_same_bytes_as_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let input = inputs(dir.path());
    let wc = guest("wordcount");
    let expected = reference(dir.path(), &wc, &input);
    let url = PgServer::shared().fresh_store_url();
    let out = dir.path().join("pg-out");
    let mut args = vec![
        "run",
        s(&wc),
        "-i",
        s(&input),
        "-o",
        s(&out),
        "--db",
        url.as_str(),
    ];
    args.extend(SETTINGS);
    run_within(&args, &dir.path().join("pg.stderr"));
    same_output(&out, &expected);
    // The store knows the job as done.
    let status = output_within(&["status", "--db", url.as_str()]);
    assert!(status.contains("`: done"), "{status}");
}

#[test]
fn a_job_submitted_to_postgres_and_run_by_two_workers_writes_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let input = inputs(dir.path());
    let wc = guest("wordcount");
    let expected = reference(dir.path(), &wc, &input);
    let url = PgServer::shared().fresh_store_url();
    let out = dir.path().join("pg-out");
    // Submitted from a copy that is gone when the workers start, as on a host without it:
    // they load the component from the store.
    let copy = dir.path().join("submitted.wasm");
    std::fs::copy(&wc, &copy).unwrap();
    let mut args = vec![
        "submit",
        s(&copy),
        "-i",
        s(&input),
        "-o",
        s(&out),
        "--db",
        url.as_str(),
    ];
    args.extend(SETTINGS);
    let id = output_within(&args);
    assert_eq!(id.trim(), "1");
    std::fs::remove_file(&copy).unwrap();
    let deadline = Instant::now() + LIMIT;
    let workers: Vec<(Child, PathBuf)> = (0..2)
        .map(|w| {
            let log = dir.path().join(format!("worker-{w}.stderr"));
            let args = ["worker", "--db", url.as_str(), "--workers", "1"];
            (start(&args, &log), log)
        })
        .collect();
    for (w, (child, log)) in workers.into_iter().enumerate() {
        succeeds(child, &format!("worker {w}"), &log, deadline);
    }
    same_output(&out, &expected);
    let status = output_within(&["status", "1", "--db", url.as_str()]);
    assert!(status.contains("`: done"), "{status}");
}

/// The many-hosts shape on one machine: a PostgreSQL store, inputs and output in an
/// S3-compatible server, and two workers that share nothing local (each its own scratch
/// directory, the component deleted after submit). The output objects equal the SQLite run's
/// files byte for byte.
#[test]
fn workers_sharing_only_postgres_and_s3_write_the_same_bytes() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let input = inputs(dir.path());
    for entry in std::fs::read_dir(&input).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        server.put(&format!("in/{name}"), &std::fs::read(&path).unwrap());
    }
    let wc = guest("wordcount");
    let expected = reference(dir.path(), &wc, &input);
    let url = PgServer::shared().fresh_store_url();
    let copy = dir.path().join("submitted.wasm");
    std::fs::copy(&wc, &copy).unwrap();
    let mut args = vec![
        "submit",
        s(&copy),
        "-i",
        "s3://bucket/in/",
        "-o",
        "s3://bucket/out/",
        "--db",
        url.as_str(),
    ];
    args.extend(SETTINGS);
    let out = server.mr_host().args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "submit failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&copy).unwrap();
    let deadline = Instant::now() + LIMIT;
    let workers: Vec<(Child, PathBuf)> = (0..2)
        .map(|w| {
            let log = dir.path().join(format!("worker-{w}.stderr"));
            let scratch = dir.path().join(format!("host-{w}"));
            let child = server
                .mr_host()
                .args(["worker", "--db", url.as_str(), "--workers", "1"])
                .arg("--work-dir")
                .arg(&scratch)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            (child, log)
        })
        .collect();
    for (w, (child, log)) in workers.into_iter().enumerate() {
        succeeds(child, &format!("worker {w}"), &log, deadline);
    }
    // Neither host keeps the finished job's scratch files (only the component cache).
    for w in 0..2 {
        let scratch = dir.path().join(format!("host-{w}"));
        let left: Vec<String> = std::fs::read_dir(&scratch)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("job-"))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "{} still holds {left:?}",
            scratch.display()
        );
    }
    for part in parts(&expected) {
        let name = part.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            server.get(&format!("out/{name}")).as_deref()
                == Some(&std::fs::read(&part).unwrap()[..]),
            "out/{name} differs from the SQLite run's"
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&server.get("out/_MANIFEST").expect("_MANIFEST")).unwrap();
    let theirs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(expected.join("_MANIFEST")).unwrap()).unwrap();
    assert_eq!(manifest["files"], theirs["files"]);
    assert_eq!(manifest["counters"], theirs["counters"]);
}
