//! The sandbox holds: hostile guests (built from source, `tests/guests/hostile`) that loop,
//! hoard memory, recurse, flood their output or probe for capabilities are stopped with an
//! error that says why, and the host stays healthy.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Lines `line 1` … `line N`, with `marked` replacing the given line numbers.
fn lines(n: u32, marked: &[(u32, &str)]) -> String {
    (1..=n)
        .map(|i| match marked.iter().find(|(at, _)| *at == i) {
            Some((_, text)) => format!("{text}\n"),
            None => format!("line {i}\n"),
        })
        .collect()
}

fn status_json(out: &Path) -> serde_json::Value {
    let o = run_ok(&["status", "1", "--output", s(out), "--json"]);
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn an_infinite_loop_is_interrupted_and_the_other_shards_finish() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.txt", &lines(4000, &[(3100, "LOOP")]));
    let out = dir.path().join("out");
    let err = run_err(&run_args(
        &guest("hostile"),
        &input,
        &out,
        &[
            "--shards",
            "4",
            "--workers",
            "2",
            "--call-timeout",
            "1",
            "--max-attempts",
            "2",
        ],
    ));
    // A timeout is not bisected (each probe could take the whole timeout): the error names
    // the batch the looping record was in.
    assert!(
        err.contains(
            "the guest trapped (timeout): the call timed out after 1.0 s (--call-timeout)"
        ),
        "{err}"
    );
    assert!(err.contains("in.txt:4000"), "{err}");
    // The other three shards were mapped and committed while the looping one was retried.
    let status = status_json(&out);
    assert_eq!(status["tasks"][0]["done"], 3, "{status}");
    assert_eq!(status["tasks"][0]["failed"], 1, "{status}");
    // Traps are counted apart from errors the job reports on purpose.
    assert_eq!(
        status["failures_by_kind"],
        serde_json::json!([["trap:timeout", 2]]),
        "{status}"
    );
    // Each looping attempt was stopped within twice the timeout.
    let db = rusqlite::Connection::open(out.join("_mr/state.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT ended_ms - started_ms FROM attempts WHERE outcome = 'failed'")
        .unwrap();
    let durations: Vec<i64> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(durations.len(), 2);
    for ms in durations {
        assert!((1000..2000).contains(&ms), "an attempt took {ms} ms");
    }
}

#[test]
fn fuel_is_a_deterministic_budget() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.txt", &lines(100, &[(60, "LOOP")]));
    let out = dir.path().join("out");
    let err = run_err(&run_args(
        &guest("hostile"),
        &input,
        &out,
        &["--fuel", "50000000", "--max-attempts", "1"],
    ));
    assert!(
        err.contains(
            "the guest trapped (out of fuel): the call ran out of fuel (50000000 units, --fuel)"
        ),
        "{err}"
    );
    // The same budget is plenty for honest work.
    let clean = write(dir.path(), "clean.txt", &lines(100, &[]));
    run_ok(&run_args(
        &guest("hostile"),
        &clean,
        &dir.path().join("clean-out"),
        &["--fuel", "50000000"],
    ));
}

/// Peak resident memory of this process, from /proc.
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

#[test]
fn a_guest_hoarding_memory_is_stopped_at_the_limit() {
    let limit = 128usize << 20;
    let options = mr_engine::RuntimeOptions {
        cache_dir: Some(repo().join("target/test-component-cache")),
        memory_limit: limit,
        ..Default::default()
    };
    let runtime = mr_engine::Runtime::new(options).unwrap();
    let job = runtime.load(&guest("hostile")).unwrap();
    let mut instance = mr_engine::Instance::new(&job, Default::default()).unwrap();
    let before = peak_rss_bytes();
    let mut batch = Vec::new();
    mr_codec::put_kv(&mut batch, b"in.txt:1", b"HOARD 4 GiB");
    let err = instance.map(&batch).unwrap_err();
    let after = peak_rss_bytes();
    assert_eq!(
        err.kind,
        mr_engine::GuestErrorKind::Trap(mr_engine::TrapKind::OutOfMemory),
        "{err}"
    );
    assert!(
        err.message
            .contains("past the 128 MiB limit (--memory-limit)"),
        "{err}"
    );
    assert!(
        after < before + limit as u64 + (100 << 20),
        "peak RSS grew from {before} to {after} bytes"
    );
    // The host is fine and the (re-created) instance works.
    let mut ok = Vec::new();
    mr_codec::put_kv(&mut ok, b"in.txt:2", b"hello");
    let out = instance.map(&ok).unwrap();
    assert_eq!(mr_codec::kvs(&out).count(), 1);
}

#[test]
fn unbounded_recursion_is_a_stack_overflow_trap() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.txt", &lines(10, &[(4, "RECURSE")]));
    let out = dir.path().join("out");
    let o = mr_host()
        .args(run_args(
            &guest("hostile"),
            &input,
            &out,
            &["--max-attempts", "1"],
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    // A clean failure (exit status 1), not a crash of the host (a signal).
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "the guest trapped (stack overflow): the guest overflowed its 1024 KiB wasm stack"
        ),
        "{err}"
    );
    assert!(err.contains("hostile::recurse"), "no backtrace: {err}");
}

#[test]
fn an_oversized_result_is_refused_before_it_is_copied() {
    let (err, _dir) = hostile_fails("FLOOD 1 GiB\n", &["--max-output-bytes", "64M"]);
    // 64 values of 16 MiB, each framed with 8 bytes; the typed cap decides, with the size the
    // guest tried to return (not wasmtime's own per-call data limit, which has no such detail).
    assert!(
        err.contains(
            "the guest trapped (output too large): the guest returned 1073742336 bytes from one \
             call, more than the 67108864-byte cap (--max-output-bytes); the result was refused \
             before it was copied"
        ),
        "{err}"
    );
}

#[test]
fn a_guest_gets_no_files_environment_or_network() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let input = write(dir.path(), "in.txt", &format!("PROBE {port}\n"));
    let out = dir.path().join("out");
    let mut cmd = mr_host();
    cmd.args(run_args(&guest("hostile"), &input, &out, &[]))
        .env("MR_SECRET", "do-not-leak");
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(out.join("part-00000")).unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 5, "{report}");
    for line in &lines {
        assert!(!line.contains("GOT"), "the guest reached something: {line}");
    }
    assert!(report.contains("read /etc/passwd\trefused"), "{report}");
    assert!(report.contains("list /\trefused"), "{report}");
    assert!(report.contains("env HOME\trefused"), "{report}");
    assert!(report.contains("env count\t0 variables"), "{report}");
    assert!(report.contains("connect 127.0.0.1\trefused"), "{report}");
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        listener.accept().is_err(),
        "the guest opened a connection to the host"
    );
}

#[test]
fn a_component_importing_what_the_host_lacks_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let component = wat::parse_str(
        r#"(component
            (import "evil:net/http@1.0.0" (instance
                (export "get" (func (param "url" string) (result string)))))
            (import "evil:fs/raw@0.1.0" (instance))
            (import "wasi:cli/environment@0.2.3" (instance))
        )"#,
    )
    .unwrap();
    let path = dir.path().join("greedy.wasm");
    std::fs::write(&path, component).unwrap();
    let err = run_err(&["inspect", s(&path)]);
    assert!(
        err.contains(
            "imports what mr-host does not provide: evil:net/http@1.0.0, evil:fs/raw@0.1.0;"
        ),
        "{err}"
    );
}

#[test]
fn a_poison_record_among_100k_is_found_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "big.txt",
        &lines(100_000, &[(61_234, "line 61234 POISON")]),
    );
    let out = dir.path().join("out");
    let err = run_err(&run_args(
        &guest("faulty"),
        &input,
        &out,
        &["--param", "panic-on=POISON", "--max-attempts", "1"],
    ));
    let location = format!("{}:61234", input.display());
    // The batch of thousands of records that trapped was bisected down to the one record.
    assert!(
        err.contains(&format!(
            "attempt 1, at {location}: the guest trapped (panic)"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("found the panic marker \"POISON\" at {location}")),
        "{err}"
    );
}

#[test]
fn with_max_bad_records_the_poison_record_is_skipped_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let text = lines(100_000, &[(61_234, "line 61234 POISON")]);
    let input = write(dir.path(), "big.txt", &text);
    let out = dir.path().join("out");
    let o = run_ok(&run_args(
        &guest("faulty"),
        &input,
        &out,
        &[
            "--param",
            "panic-on=POISON",
            "--max-bad-records",
            "1",
            "--reducers",
            "2",
            "--json",
        ],
    ));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["counters"]["bad-records"], 1);
    // The reference: the same job over the input without that record.
    let without: String = text
        .lines()
        .filter(|l| !l.contains("POISON"))
        .map(|l| format!("{l}\n"))
        .collect();
    let clean = write(dir.path(), "clean.txt", &without);
    let reference = dir.path().join("reference");
    run_ok(&run_args(
        &guest("faulty"),
        &clean,
        &reference,
        &["--reducers", "2"],
    ));
    assert_eq!(sorted_lines(&out), sorted_lines(&reference));
    let bad = std::fs::read_to_string(out.join("_bad_records")).unwrap();
    let bad: Vec<serde_json::Value> = bad
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(bad[0]["location"], format!("{}:61234", input.display()));
    let reason = bad[0]["reason"].as_str().unwrap();
    assert!(reason.contains("the guest trapped (panic)"), "{reason}");
    assert!(reason.contains("found the panic marker"), "{reason}");
}

/// Runs `mr-host` with `args`, killing it if it is still running after `limit`; returns its
/// output and how long it ran. A run that had to be killed fails the test.
fn run_within(args: &[String], limit: Duration) -> (std::process::Output, Duration) {
    let started = std::time::Instant::now();
    let mut child = mr_host()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "mr-host {args:?} was still running after {limit:?} (killed); stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    (output, started.elapsed())
}

/// A guest waiting in the host (a sleep, a blocking wait or a poll on a clock pollable) runs no
/// wasm, so no epoch check can interrupt it: the wait itself must end at the call's deadline.
#[test]
fn a_guest_waiting_in_wasi_is_interrupted_at_the_call_timeout() {
    for mode in ["SLEEP", "BLOCK", "POLL"] {
        let dir = tempfile::tempdir().unwrap();
        let input = write(dir.path(), "in.txt", &lines(3, &[(2, mode)]));
        let out = dir.path().join("out");
        let args = run_args(
            &guest("hostile"),
            &input,
            &out,
            &["--call-timeout", "1", "--max-attempts", "1"],
        );
        let (o, took) = run_within(&args, Duration::from_secs(60));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{mode}: {err}");
        assert!(
            err.contains(
                "the guest trapped (timeout): the call timed out after 1.0 s (--call-timeout)"
            ),
            "{mode}: {err}"
        );
        assert!(err.contains("waiting in the host"), "{mode}: {err}");
        assert!(took < Duration::from_secs(20), "{mode}: took {took:?}");
        let status = status_json(&out);
        assert_eq!(
            status["failures_by_kind"],
            serde_json::json!([["trap:timeout", 1]]),
            "{mode}: {status}"
        );
        // The attempt ended at the timeout, not when the wait would have.
        let db = rusqlite::Connection::open(out.join("_mr/state.db")).unwrap();
        let ms: i64 = db
            .query_row(
                "SELECT ended_ms - started_ms FROM attempts WHERE outcome = 'failed'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            (1000..3000).contains(&ms),
            "{mode}: the attempt took {ms} ms"
        );
    }
}

/// Runs the hostile guest over `text` with one attempt and `extra` arguments, expecting it to
/// fail; returns the error and the run's directory (input `in.txt`, output `out`).
fn hostile_fails(text: &str, extra: &[&str]) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.txt", text);
    let mut args = vec!["--max-attempts", "1"];
    args.extend_from_slice(extra);
    let err = run_err(&run_args(
        &guest("hostile"),
        &input,
        &dir.path().join("out"),
        &args,
    ));
    (err, dir)
}

/// The trap text appears once: not "wasm trap: wasm trap: ...".
#[test]
fn a_plain_wasm_trap_is_described_once() {
    let (err, _dir) = hostile_fails("OOB\n", &[]);
    assert!(
        err.contains("the guest trapped: wasm trap: out of bounds memory access"),
        "{err}"
    );
    assert!(!err.contains("wasm trap: wasm trap"), "{err}");
}

/// A guest that calls `exit` fails its call with the exit status (WASI 0.2 carries only success
/// or failure: `exit(3)` arrives as status 1), and its backtrace is printed once (it used to be
/// printed inside the message and again after it).
#[test]
fn a_guest_calling_exit_is_reported_with_one_backtrace() {
    let (err, _dir) = hostile_fails("EXIT\n", &[]);
    assert!(
        err.contains("the guest trapped: the guest called `exit` with status 1"),
        "{err}"
    );
    assert_eq!(err.matches("wasm backtrace:").count(), 1, "{err}");
    assert_eq!(err.matches("process::exit").count(), 1, "{err}");
}

/// A job-error message and a log line of a megabyte each reach stderr cut to their caps, with a
/// marker saying how much was left out.
#[test]
fn long_guest_messages_are_truncated_with_a_marker() {
    let (err, dir) = hostile_fails("LONG-LOG 1000000\nLONG-ERROR 1000000\n", &[]);
    // Each is kept up to its cap (log lines 8 KiB, job errors 64 KiB), then marked.
    for (letter, kept) in [('l', 8 << 10), ('e', 64 << 10)] {
        let cut = format!(
            "{}… [truncated {} bytes]",
            letter.to_string().repeat(20),
            1_000_000 - kept
        );
        assert!(
            err.contains(&cut),
            "no {cut:?} in {}",
            &err[..err.len().min(2000)]
        );
    }
    assert!(err.len() < 400 << 10, "stderr has {} bytes", err.len());
    // The store keeps the truncated message too.
    let db = rusqlite::Connection::open(dir.path().join("out/_mr/state.db")).unwrap();
    let longest: i64 = db
        .query_row("SELECT max(length(error)) FROM attempts", [], |r| r.get(0))
        .unwrap();
    assert!(longest < 200 << 10, "a stored error has {longest} bytes");
}

#[test]
fn a_flood_of_counter_names_fails_the_call_naming_the_cap_and_its_flag() {
    let (err, dir) = hostile_fails("COUNTERS 200000\n", &[]);
    assert!(
        err.contains(
            "the guest trapped (counter limit): the guest used more than 1000 distinct counter \
             names in one call (the next was `counter-1000`); --max-counters raises the cap"
        ),
        "{err}"
    );
    assert_eq!(
        status_json(&dir.path().join("out"))["failures_by_kind"],
        serde_json::json!([["trap:counter limit", 1]])
    );
    let (err, _dir) = hostile_fails("LONG-COUNTER 100000\n", &[]);
    assert!(
        err.contains(&format!(
            "the guest trapped (counter limit): the guest named a counter with 100000 bytes, \
             more than the 256-byte cap (--max-counter-name-bytes): `{}… [truncated {} bytes]`",
            "c".repeat(64),
            100_000 - 64
        )),
        "{err}"
    );
}

/// The counter caps belong to the job: one worker process may run jobs with different caps.
#[test]
fn counter_caps_are_set_per_job() {
    let options = mr_engine::RuntimeOptions {
        cache_dir: Some(repo().join("target/test-component-cache")),
        ..Default::default()
    };
    let runtime = mr_engine::Runtime::new(options).unwrap();
    let job = runtime.load(&guest("hostile")).unwrap();
    let batch = |line: &str| {
        let mut batch = Vec::new();
        mr_codec::put_kv(&mut batch, b"in.txt:1", line.as_bytes());
        batch
    };
    assert_eq!(job.limits(), mr_engine::JobLimits::default());
    let strict = job.with_limits(mr_engine::JobLimits {
        max_counters: 10,
        max_counter_name_bytes: 12,
        ..Default::default()
    });
    let generous = job.with_limits(mr_engine::JobLimits {
        max_counters: 300_000,
        max_counter_name_bytes: 1000,
        ..Default::default()
    });
    let mut strict = mr_engine::Instance::new(&strict, Default::default()).unwrap();
    let mut generous = mr_engine::Instance::new(&generous, Default::default()).unwrap();
    let counter_limit = mr_engine::GuestErrorKind::Trap(mr_engine::TrapKind::CounterLimit);

    let err = strict.map(&batch("COUNTERS 11")).unwrap_err();
    assert_eq!(err.kind, counter_limit, "{err}");
    assert!(
        err.message.contains("more than 10 distinct counter names"),
        "{err}"
    );
    assert!(strict.take_counters().is_empty());
    // Ten are fine (on the fresh instance that replaced the trapped one).
    strict.map(&batch("COUNTERS 10")).unwrap();
    assert_eq!(strict.take_counters().len(), 10);
    // The cap is per call: the next call may use ten other names... or the same ones.
    strict.map(&batch("COUNTERS 10")).unwrap();
    assert_eq!(strict.take_counters().len(), 10);
    let err = strict.map(&batch("LONG-COUNTER 13")).unwrap_err();
    assert_eq!(err.kind, counter_limit, "{err}");
    assert!(err.message.contains("more than the 12-byte cap"), "{err}");

    generous.map(&batch("COUNTERS 200000")).unwrap();
    assert_eq!(generous.take_counters().len(), 200_000);
    generous.map(&batch("LONG-COUNTER 1000")).unwrap();
    assert_eq!(generous.take_counters().len(), 1);
}

/// Counter increments made while handling a lifecycle event are not counted; the user is told
/// so once, with the counter and the event.
#[test]
fn counters_incremented_in_lifecycle_events_are_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.txt", &lines(10, &[]));
    let out = dir.path().join("out");
    let o = run_ok(&run_args(
        &guest("hostile"),
        &input,
        &out,
        &[
            "--param",
            "count-in-events=seen-in-events",
            "--shards",
            "2",
            "--slice-records",
            "2",
            "--json",
        ],
    ));
    let err = String::from_utf8_lossy(&o.stderr);
    let warning = "counter `seen-in-events` was incremented while handling the lifecycle \
                   event TaskStarted";
    assert_eq!(err.matches(warning).count(), 1, "{err}");
    assert_eq!(err.matches("not counted").count(), 1, "{err}");
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        summary["counters"].get("seen-in-events").is_none(),
        "{summary}"
    );
}
