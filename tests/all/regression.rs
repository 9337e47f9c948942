//! Regression tests: each pins a bug an adversarial run found (own hostile guests and inputs,
//! not the project's fixtures), and its name says which. They failed before their fix.

use std::path::{Path, PathBuf};

use crate::support::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn status_json(db: &Path) -> serde_json::Value {
    let out = run_ok(&["status", "1", "--db", s(db), "--json"]);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn summary_json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---- issue 18.1: `--overwrite` deleted the job's own inputs --------------------------------

#[test]
fn overwrite_never_deletes_the_jobs_own_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    let input = write(&d, "x.txt", "a\n");
    let err = run_err(&run_args(&guest("wordcount"), &input, &d, &["--overwrite"]));
    assert!(
        err.contains("inside the output directory") && err.contains("x.txt"),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(std::fs::read_to_string(&input).unwrap(), "a\n");
    // Refused before anything was written: no store left behind in the input directory.
    assert_eq!(names(&d), ["x.txt"]);
}

#[test]
fn an_output_equal_to_an_input_directory_is_refused_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    write(&d, "x.txt", "a\n");
    for extra in [&[][..], &["--overwrite"][..]] {
        let err = run_err(&run_args(&guest("wordcount"), &d, &d, extra));
        assert!(
            err.contains("is also an input") || err.contains("inside the output directory"),
            "{err}"
        );
        assert!(err.contains("nothing was written"), "{err}");
        assert_eq!(names(&d), ["x.txt"]);
    }
}

#[test]
fn overwrite_removes_only_what_mr_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.txt", "a b\nb\n");
    let out = dir.path().join("out");
    let wc = guest("wordcount");
    run_ok(&run_args(&wc, &input, &out, &["--reducers", "2"]));
    // A file mr did not write: --overwrite must not delete it, and says so.
    write(&out, "notes.txt", "mine\n");
    let err = run_err(&run_args(
        &wc,
        &input,
        &out,
        &["--reducers", "2", "--overwrite"],
    ));
    assert!(
        err.contains("notes.txt") && err.contains("did not write"),
        "{err}"
    );
    assert!(out.join("part-00001").is_file() && out.join("notes.txt").is_file());
    std::fs::remove_file(out.join("notes.txt")).unwrap();
    // With only mr's files there, --overwrite starts over (a different job on the same output).
    run_ok(&run_args(
        &wc,
        &input,
        &out,
        &["--reducers", "1", "--overwrite"],
    ));
    assert_eq!(
        names(&out),
        ["_MANIFEST", "_mr", "part-00000"],
        "the old job's part-00001 is gone"
    );
}

#[test]
fn a_corrupt_store_creates_no_output_directory() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.txt", "a\n");
    let db = write(
        dir.path(),
        "jobs.db",
        "this is not a database, just forty bytes",
    );
    let out = dir.path().join("out");
    let mut args = run_args(&guest("wordcount"), &input, &out, &[]);
    args.extend(["--db".to_owned(), s(&db).to_owned()]);
    let err = run_err(&args);
    assert!(err.contains("jobs.db"), "{err}");
    assert!(!out.exists(), "a failed run created {}", out.display());
}

// ---- issue 17.3: an output inside an input directory was read as input ---------------------

#[test]
fn an_output_inside_an_input_directory_is_never_read_as_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write(&data, "a.txt", "x y\n");
    write(&data, "b.txt", "y\n");
    let out = data.join("out");
    let wc = guest("wordcount");
    for _ in 0..2 {
        let run = run_ok(&[
            "run",
            s(&wc),
            "-i",
            s(&data),
            "-o",
            s(&out),
            "--reducers",
            "1",
            "--json",
        ]);
        let summary = summary_json(&run);
        assert_eq!(summary["files"], 2, "{summary}");
        assert_eq!(
            std::fs::read_to_string(out.join("part-00000")).unwrap(),
            "x\t1\ny\t2\n"
        );
    }
}

// ---- issue 18.3: text output turned one record into two ------------------------------------

#[test]
fn the_text_sink_refuses_records_a_line_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let limits = guest("limits");
    for (line, what) in [
        ("TABKEY", "a tab in its key"),
        ("NLVALUE", "a line break"),
        ("CRVALUE", "a line break"),
    ] {
        let input = write(dir.path(), &format!("{line}.txt"), &format!("{line}\n"));
        let out = dir.path().join(format!("out-{line}"));
        let err = run_err(&run_args(&limits, &input, &out, &["--reducers", "1"]));
        assert!(err.contains(what), "{line}: {err}");
        assert!(err.contains("--sink jsonl"), "{line}: {err}");
        // Deterministic: refused once, not retried.
        assert!(err.contains("attempt 1"), "{line}: {err}");
        // The JSONL sink takes the same record (its values must be JSON: here they are not, so
        // check only that the complaint is about JSON, not about line breaks).
        let err = run_err(&run_args(
            &limits,
            &input,
            &dir.path().join(format!("jsonl-{line}")),
            &["--reducers", "1", "--sink", "jsonl"],
        ));
        assert!(err.contains("is not valid JSON"), "{line}: {err}");
    }
}

// ---- issue 17.1: a huge record broke the shuffle with a false "corrupt" error --------------

const MIB: usize = 1 << 20;

fn big_record_run(dir: &Path, name: &str, lines: &str, extra: &[&str]) -> std::process::Output {
    let input = write(dir, &format!("{name}.txt"), lines);
    let out = dir.join(format!("out-{name}"));
    let mut args = run_args(
        &guest("limits"),
        &input,
        &out,
        &["--reducers", "1", "--workers", "1", "--json"],
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    mr_host().args(&args).output().unwrap()
}

#[test]
fn huge_keys_and_values_pass_the_shuffle_or_are_refused_when_emitted() {
    let dir = tempfile::tempdir().unwrap();
    for (size, label) in [(1024, "1k"), (64 * MIB, "64m")] {
        let lines = format!("BIG {size} {size} key{label}\nBIG 10 {size} val{label}\n");
        let run = big_record_run(dir.path(), label, &lines, &[]);
        assert!(
            run.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let part =
            std::fs::read_to_string(dir.path().join(format!("out-{label}/part-00000"))).unwrap();
        assert!(
            part.contains(&format!("count=1 bytes={size} key-bytes={size}")),
            "{label}: {part}"
        );
        assert!(
            part.contains(&format!("count=1 bytes={size} key-bytes=10")),
            "{label}: {part}"
        );
    }
    // 200 MiB: over the default cap, refused when emitted, naming the cap and its flag.
    let big = 200 * MIB;
    let lines = format!("ok\nBIG {big} 1 huge\n");
    let run = big_record_run(dir.path(), "200m", &lines, &[]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        err.contains("--max-record-bytes") && err.contains("67108864"),
        "{err}"
    );
    assert!(err.contains("200m.txt:2"), "names the input record: {err}");
    assert!(!err.contains("corrupt"), "{err}");
    // Raised, it passes map → spill → merge → reduce.
    for (lines, label) in [
        (format!("BIG {big} 1 key\n"), "200m-key"),
        (format!("BIG 3 {big} val\n"), "200m-value"),
    ] {
        let run = big_record_run(
            dir.path(),
            label,
            &lines,
            &["--max-record-bytes", "256M", "--max-output-bytes", "512M"],
        );
        assert!(
            run.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let part =
            std::fs::read_to_string(dir.path().join(format!("out-{label}/part-00000"))).unwrap();
        assert!(part.contains("count=1 bytes="), "{label}: {part}");
    }
}

#[test]
fn huge_values_stream_through_the_value_stream() {
    let dir = tempfile::tempdir().unwrap();
    // A key with three 64 MiB values: the first fills the group batch, the rest stream.
    let size = 64 * MIB;
    let lines = format!("MANY 1 {size} hot\nMANY 1 {size} hot\nMANY 1 {size} hot\n");
    let run = big_record_run(dir.path(), "stream", &lines, &["--batch-size", "1K"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let part = std::fs::read_to_string(dir.path().join("out-stream/part-00000")).unwrap();
    let total = 3 * size;
    assert!(
        part.starts_with(&format!("hot\tcount=3 bytes={total} key-bytes=3 ")),
        "{part}"
    );
}

// ---- issue 18.5: the guest sized host buffers ----------------------------------------------

#[test]
fn a_greedy_reducer_gets_value_batches_of_the_hosts_size() {
    let dir = tempfile::tempdir().unwrap();
    // 20 MB of values under one key; the reducer asks the stream for u32::MAX bytes at a time.
    let run = big_record_run(
        dir.path(),
        "greedy",
        "MANY 2000 10000 hot\n",
        &["--param", "stream-max=max"],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let part = std::fs::read_to_string(dir.path().join("out-greedy/part-00000")).unwrap();
    assert!(part.contains("count=2000 bytes=20000000 "), "{part}");
    let largest: usize = part
        .trim()
        .rsplit("largest-stream-batch=")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        largest > 0 && largest <= 2 * MIB,
        "one next-batch call returned {largest} bytes: {part}"
    );
}

#[test]
fn a_hot_key_is_combined_in_calls_of_bounded_size() {
    let dir = tempfile::tempdir().unwrap();
    // 50 MB of values under one key in one map call, spilled under a small budget.
    let run = big_record_run(
        dir.path(),
        "hot",
        "MANY 500 100000 hot\n",
        &["--memory", "64M"],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary = summary_json(&run);
    assert_eq!(
        summary["job_counters"]["combine-oversized-inputs"],
        serde_json::Value::Null
    );
    assert!(
        summary["job_counters"]["combine-calls"].as_i64().unwrap() >= 20,
        "{summary}"
    );
    let part = std::fs::read_to_string(dir.path().join("out-hot/part-00000")).unwrap();
    assert!(part.contains("count=500 bytes=50000000 "), "{part}");
}

#[test]
fn one_calls_output_counts_against_the_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    // One map call returns 2.5 million pairs, about 280 MB, with a 64 MiB budget.
    let input = write(dir.path(), "in.txt", "MANY 2500000 100 hot\n");
    let out = dir.path().join("out");
    let peak = peak_rss_of(&run_args(
        &guest("limits"),
        &input,
        &out,
        &[
            "--reducers",
            "1",
            "--workers",
            "1",
            "--memory",
            "64M",
            "--max-output-bytes",
            "300M",
        ],
    ));
    let part = std::fs::read_to_string(out.join("part-00000")).unwrap();
    assert!(
        part.starts_with("hot\tcount=2500000 bytes=250000000 "),
        "{part}"
    );
    // The guest holds its output (~280 MB) and the host lifts it once (~280 MB) and indexes
    // it (40 MB). Before the fix the host also copied it into its spill buffer, which grew
    // past its budget by doubling (another 280-560 MB).
    assert!(peak < 720 * MIB as u64, "peak RSS {} MiB", peak >> 20);
    eprintln!("peak RSS {} MiB", peak >> 20);
}

/// Runs `mr-host ARGS` in a child, asserting success, and returns its peak RSS in bytes.
fn peak_rss_of(args: &[String]) -> u64 {
    // /proc does not keep a dead child's peak: poll its VmHWM (high-water mark) until it exits.
    let mut child = mr_host()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_path)
            && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            peak = peak.max(kb << 10);
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            assert!(status.success(), "{err}");
            return peak;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

// ---- issue 17.2: counter floods ---------------------------------------------------------------

#[test]
fn distinct_counter_names_stop_at_the_jobs_cap() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.txt", "COUNTERS 600 a\nCOUNTERS 600 b\n");
    let limits = guest("limits");
    // Two slices of 600 names each: each slice is under the cap, the job is not.
    let out = dir.path().join("capped");
    let err = run_err(&run_args(
        &limits,
        &input,
        &out,
        &["--reducers", "1", "--slice-records", "1", "--workers", "1"],
    ));
    assert!(
        err.contains("distinct counter names")
            && err.contains("1000")
            && err.contains("--max-counters"),
        "{err}"
    );
    assert!(err.contains("attempt 1"), "a cap is not retried: {err}");
    // Raised, the job runs and reports every counter.
    let run = run_ok(&run_args(
        &limits,
        &input,
        &dir.path().join("raised"),
        &[
            "--reducers",
            "1",
            "--slice-records",
            "1",
            "--max-counters",
            "2000",
            "--json",
        ],
    ));
    let summary = summary_json(&run);
    assert_eq!(
        summary["job_counters"].as_object().unwrap().len(),
        1200,
        "{}",
        summary["job_counters"]
    );
}

// ---- issue 12: a record that fails the same way every time was retried ---------------------

fn marked_input(dir: &Path) -> PathBuf {
    let text: String = (1..=200)
        .map(|i| {
            if i == 77 {
                "w REFUSE\n".to_owned()
            } else {
                format!("w{} x\n", i % 5)
            }
        })
        .collect();
    write(dir, "marked.txt", &text)
}

#[test]
fn a_record_failing_the_same_way_twice_is_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let input = marked_input(dir.path());
    let out = dir.path().join("out");
    let db = dir.path().join("jobs.db");
    let mut args = run_args(
        &guest("faulty"),
        &input,
        &out,
        &["--param", "fail-on=REFUSE"],
    );
    args.extend(["--db".to_owned(), s(&db).to_owned()]);
    let err = run_err(&args);
    assert!(err.contains("marked.txt:77"), "{err}");
    assert!(err.contains("deterministic"), "{err}");
    let status = status_json(&db);
    assert_eq!(status["failed_attempts"], 1, "{status}");
    assert_eq!(status["errors"].as_array().unwrap().len(), 1, "{status}");
}

#[test]
fn a_deterministic_record_failure_is_skipped_under_max_bad_records() {
    let dir = tempfile::tempdir().unwrap();
    let input = marked_input(dir.path());
    let out = dir.path().join("out");
    let run = run_ok(&run_args(
        &guest("faulty"),
        &input,
        &out,
        &[
            "--param",
            "fail-on=REFUSE",
            "--max-bad-records",
            "1",
            "--json",
        ],
    ));
    let summary = summary_json(&run);
    assert_eq!(summary["counters"]["bad-records"], 1);
    assert_eq!(summary["counters"]["records-in"], 200);
    let bad = std::fs::read_to_string(out.join("_bad_records")).unwrap();
    assert!(
        bad.contains("marked.txt:77") && bad.contains("refusing the line with marker"),
        "{bad}"
    );
    // Every other record was mapped: 199 lines counted by first word.
    let total: u64 = sorted_lines(&out)
        .iter()
        .map(|l| l.split('\t').nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 199);
}

// ---- issue 18.6: messages --------------------------------------------------------------------

#[test]
fn malformed_reduce_output_is_a_job_error_naming_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.txt", "a\nMALFORMED\nb\n");
    let out = dir.path().join("out");
    let db = dir.path().join("jobs.db");
    let mut args = run_args(&guest("limits"), &input, &out, &["--reducers", "1"]);
    args.extend(["--db".to_owned(), s(&db).to_owned()]);
    let err = run_err(&args);
    assert!(err.contains("reduce partition 0"), "{err}");
    assert!(err.contains("malformed"), "{err}");
    assert!(!err.contains("cannot write"), "{err}");
    let status = status_json(&db);
    let kinds: Vec<&str> = status["failures_by_kind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k[0].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["protocol"], "{status}");
}

#[test]
fn an_os_error_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.txt", "a\n");
    // The output path is a regular file: creating the directory fails with "File exists".
    let out = write(dir.path(), "out", "not a directory\n");
    let err = run_err(&run_args(&guest("wordcount"), &input, &out, &[]));
    assert_eq!(err.matches("os error").count(), 1, "{err}");
}

#[test]
fn a_failed_job_rerun_with_a_larger_allowance_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = marked_input(dir.path());
    let out = dir.path().join("out");
    let args = run_args(
        &guest("faulty"),
        &input,
        &out,
        &["--param", "fail-on=REFUSE"],
    );
    let err = run_err(&args);
    assert!(err.contains("marked.txt:77"), "{err}");
    // Before the fix, the rerun resumed the job with its planned allowance of 0 and failed again.
    let mut again = args.clone();
    again.extend([
        "--max-bad-records".to_owned(),
        "1".to_owned(),
        "--json".to_owned(),
    ]);
    let summary = summary_json(&run_ok(&again));
    assert_eq!(summary["counters"]["bad-records"], 1, "{summary}");
    assert_eq!(summary["id"], 1, "the same job was resumed");
}

#[test]
fn a_long_counter_name_or_a_flood_in_one_call_fails_at_once_and_the_flags_raise_the_caps() {
    let dir = tempfile::tempdir().unwrap();
    let limits = guest("limits");
    for (line, flag, raised) in [
        ("LONGCOUNTER 300", "--max-counter-name-bytes", "512"),
        ("COUNTERS 1500 x", "--max-counters", "2000"),
    ] {
        let input = write(dir.path(), "in.txt", &format!("{line}\n"));
        let name = flag.trim_start_matches("--");
        let err = run_err(&run_args(
            &limits,
            &input,
            &dir.path().join(format!("capped-{name}")),
            &["--reducers", "1"],
        ));
        assert!(err.contains(flag), "{line}: {err}");
        assert!(err.contains("attempt 1"), "{line}: not retried: {err}");
        run_ok(&run_args(
            &limits,
            &input,
            &dir.path().join(format!("raised-{name}")),
            &["--reducers", "1", flag, raised],
        ));
    }
}

/// Bug: `map-output-records` (and so `_MANIFEST`) depended on scheduling. The Rust SDK's in-map
/// combining decided to bypass its table for the next 32 batches after a batch without repeats,
/// and that state lived in a guest instance that a worker thread reuses across shards, so one
/// worker and two workers over the same plan returned different pairs (796186 and 792535 here).
/// The decision is now made inside each batch.
#[test]
fn map_output_counters_do_not_depend_on_how_many_workers_ran_the_shards() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("distinct.txt");
    // Words that rarely repeat: every batch is "not combining".
    let mut x: u64 = 9;
    let mut text = String::new();
    for _ in 0..100_000 {
        for w in 0..8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if w > 0 {
                text.push(' ');
            }
            text.push_str(&format!("u{}", x % 2_000_000));
        }
        text.push('\n');
    }
    std::fs::write(&input, text).unwrap();
    let job = guest("wordcount");
    let manifests: Vec<serde_json::Value> = ["1", "2"]
        .iter()
        .map(|workers| {
            let out = dir.path().join(format!("w{workers}"));
            run_ok(&run_args(
                &job,
                &input,
                &out,
                &["--workers", workers, "--shards", "4", "--reducers", "2"],
            ));
            serde_json::from_slice(&std::fs::read(out.join("_MANIFEST")).unwrap()).unwrap()
        })
        .collect();
    assert_eq!(manifests[0]["counters"], manifests[1]["counters"]);
    assert_eq!(manifests[0]["files"], manifests[1]["files"]);
}
