//! The benchmark harness end to end at a tiny size, with the systems that need neither Python
//! nor Java (mr and both native Rust references): both workloads run, outputs are equal, results.md is written,
//! and a deliberately changed output is caught (non-zero exit, DIFFERS in the table); and
//! `mr-bench distributed` against a real PostgreSQL and S3 server (scripts/setup-services.sh).
//!
//! mr-bench builds mr-host (same profile) and the two guests itself, as in a real run.

use std::path::Path;
use std::process::{Command, Output};

/// The features mr-bench builds mr-host with here. mr-bench rebuilds target/PROFILE/mr-host,
/// the very file the end-to-end tests run (CARGO_BIN_EXE_mr-host) when the whole workspace is
/// tested at once. Built without the crash-injection points they need, it made their kill tests
/// fail later in the same `cargo test --workspace`; so it gets them. It also gets the `testing`
/// features mr-cli's dev-dependencies turn on, so that mr-io and mr-store can be the test
/// build's own instead of being compiled again. mr-cli itself still is: its dev-dependencies
/// also change the features of crates such as flate2, which a `cargo build` cannot ask for.
const HOST_FEATURES: &str = "failpoints,mr-store/testing,mr-io/testing";

fn bench(data: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mr-bench"))
        .env("MR_BENCH_HOST_FEATURES", HOST_FEATURES)
        .args([
            "--size",
            "2M",
            "--systems",
            "mr,native,native-radix",
            "--data",
        ])
        .arg(data)
        .args(extra)
        .output()
        .expect("run mr-bench")
}

#[test]
fn runs_both_workloads_checks_outputs_and_catches_a_difference() {
    let data = tempfile::tempdir().unwrap();

    let run = bench(data.path(), &[]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    for title in [
        "Word count, 2 MB of text",
        "Group-by, 2 MB of key,value lines, 19,531",
    ] {
        assert!(stdout.contains(title), "{title}: {stdout}");
    }
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("native Rust") || l.starts_with("mr (Rust guest"))
        .collect();
    // The partition-first reference is a group-by row only.
    assert_eq!(rows.len(), 5, "{stdout}");
    assert_eq!(
        stdout
            .matches("native Rust, partition-first (2 threads)")
            .count(),
        1,
        "{stdout}"
    );
    for row in &rows {
        assert!(row.ends_with("equal"), "{row}");
    }
    assert!(!stdout.contains("DIFFERS"), "{stdout}");
    let md = std::fs::read_to_string(data.path().join("results.md")).unwrap();
    assert!(md.contains("| system | wall s |"), "{md}");
    assert!(md.contains("--size 2M --systems mr,native"), "{md}");
    // Inputs are kept for the next run.
    let inputs = data.path().join("inputs");
    assert!(inputs.join("corpus-2097152.txt").is_file());
    assert!(inputs.join("groupby-2097152-19531.txt").is_file());

    // One extra line in mr's output: the table says so and the command fails. Two runs each,
    // in rounds: every system's first run before any system's second.
    let run = bench(
        data.path(),
        &["--only", "wordcount", "--tamper", "mr", "--repeat", "2"],
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stdout}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    let order: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("mr-bench: wordcount "))
        .filter_map(|l| l.split(':').next())
        .collect();
    assert_eq!(
        order,
        [
            "native run 1/2",
            "mr run 1/2",
            "native run 2/2",
            "mr run 2/2"
        ],
        "{stderr}"
    );
    let mr_row = stdout
        .lines()
        .find(|l| l.starts_with("mr (Rust guest"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(mr_row.ends_with("DIFFERS"), "{mr_row}");
    assert!(stdout.contains("first difference"), "{stdout}");
    assert!(stdout.contains("\"tampered\\t1\""), "{stdout}");
    assert!(!stdout.contains("Group-by"), "{stdout}");
}

/// `mr-bench distributed` at a tiny size: every setup runs against a real PostgreSQL and S3
/// server, their outputs are compared with the local run's, and the commit latencies measured.
#[test]
fn distributed_runs_every_setup_and_compares_their_outputs() {
    let data = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_mr-bench"))
        .env("MR_BENCH_HOST_FEATURES", HOST_FEATURES)
        .args(["distributed", "--size", "4M", "--commits", "20", "--data"])
        .arg(data.path())
        .output()
        .expect("run mr-bench distributed");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Outputs equal, byte for byte."), "{stdout}");
    for row in [
        "| SQLite + local files",
        "| PostgreSQL + file:// objects",
        "| PostgreSQL + S3, 1 worker process",
        "| PostgreSQL + S3, 3 worker processes",
        "| SQLite (WAL",
        "| PostgreSQL (local",
    ] {
        assert_eq!(stdout.matches(row).count(), 1, "{row}: {stdout}");
    }
    let md = std::fs::read_to_string(data.path().join("distributed.md")).unwrap();
    assert!(md.contains("## Distributed word count, 4M of text"), "{md}");
}
