//! Failures end the run with a non-zero status and an error that says what and where.

use crate::support::*;

fn input(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("in.txt");
    let mut text = String::new();
    for i in 1..=5000 {
        text.push_str(&format!("word{} line {i}\n", i % 7));
    }
    text = text
        .replace("line 4321\n", "line 4321 POISON\n")
        .replace("line 77\n", "line 77 REFUSE\n");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn guest_panic_is_reported_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let out = dir.path().join("out");
    let err = run_err(&run_args(
        &guest("faulty"),
        &input,
        &out,
        &["--param", "panic-on=POISON"],
    ));
    assert!(err.contains("job `faulty` failed in map shard"), "{err}");
    assert!(err.contains("the guest trapped"), "{err}");
    // The guest's own panic message, captured from its stderr, names the record.
    let location = format!("{}:4321", input.display());
    assert!(
        err.contains(&format!("found the panic marker \"POISON\" at {location}")),
        "{err}"
    );
}

#[test]
fn job_error_names_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let out = dir.path().join("out");
    let err = run_err(&run_args(
        &guest("faulty"),
        &input,
        &out,
        &["--param", "fail-on=REFUSE"],
    ));
    let location = format!("{}:77", input.display());
    assert!(
        err.contains(&format!(
            "at {location}: the job reported an error: refusing the line with marker \"REFUSE\""
        )),
        "{err}"
    );
}

#[test]
fn reduce_error_names_the_partition() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let out = dir.path().join("out");
    let err = run_err(&run_args(
        &guest("faulty"),
        &input,
        &out,
        &["--param", "fail-reduce=yes", "--reducers", "1"],
    ));
    // Every attempt fails the same way: the second one ends the retries.
    assert!(
        err.contains("failed in reduce partition 0, attempt 2"),
        "{err}"
    );
    assert!(err.contains("failed the same way"), "{err}");
    assert!(err.contains("reduce refused key"), "{err}");
}

#[test]
fn bad_parameters_are_refused_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let out = dir.path().join("out");
    let err = run_err(&run_args(
        &guest("faulty"),
        &input,
        &out,
        &["--param", "nope=1"],
    ));
    assert!(
        err.contains(
            "job `faulty` has no parameter `nope`; it declares: panic-on, fail-on, fail-reduce, flaky-every"
        ),
        "{err}"
    );
    let err = run_err(&run_args(
        &guest("faulty"),
        &input,
        &out,
        &["--param", "novalue"],
    ));
    assert!(err.contains("must have the form KEY=VALUE"), "{err}");
    assert!(!out.exists());
}

/// Typed parameters (contract 0.1.1): a value of the wrong type is refused before anything
/// runs, in the words of the host, for a job in each SDK; `submit` refuses it too.
#[test]
fn parameters_of_the_wrong_type_are_refused_before_running_in_every_sdk() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let out = dir.path().join("out");
    let cases = [
        (
            "faulty",
            "flaky-every=three",
            "parameter `flaky-every` of job `faulty` must be an integer (e.g. 42 or -7), not \"three\"",
        ),
        (
            "faulty",
            "fail-reduce=maybe",
            "parameter `fail-reduce` of job `faulty` must be one of yes, no, not \"maybe\"",
        ),
        (
            "faulty-python",
            "fail-reduce=maybe",
            "parameter `fail-reduce` of job `faulty-python` must be one of yes, no, not \"maybe\"",
        ),
        (
            "faulty-js",
            "fail-reduce=Yes",
            "parameter `fail-reduce` of job `faulty-js` must be one of yes, no, not \"Yes\"",
        ),
    ];
    for (job, param, expected) in cases {
        let err = run_err(&run_args(&guest(job), &input, &out, &["--param", param]));
        assert!(err.contains(expected), "{job} --param {param}: {err}");
        assert!(!out.exists(), "{job}: a refused run created its output");
    }
    let db = dir.path().join("jobs.db");
    let err = run_err(&crate::support::submit_args(
        &guest("faulty"),
        &input,
        &out,
        &db,
        &["--param", "flaky-every=1.5"],
    ));
    assert!(
        err.contains("parameter `flaky-every` of job `faulty` must be an integer"),
        "{err}"
    );
    // Values of the right type run.
    run_ok(&run_args(
        &guest("faulty"),
        &input,
        &out,
        &["--param", "flaky-every=1000", "--param", "fail-reduce=no"],
    ));
}

/// A component built against contract 0.1.0 (tests/guests/contract-0-1-0, from its own copy of
/// that WIT) still loads and runs: its parameters are strings, so any value is accepted.
#[test]
fn a_component_of_contract_0_1_0_still_loads_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let job = guest("contract-0-1-0");
    let shown = String::from_utf8(run_ok(&["inspect", s(&job)]).stdout).unwrap();
    assert!(shown.contains("contract:    mr:job@0.1.0"), "{shown}");
    assert!(shown.contains("tag (string, default \"none\")"), "{shown}");
    let ours = String::from_utf8(run_ok(&["inspect", s(&guest("faulty"))]).stdout).unwrap();
    assert!(ours.contains("contract:    mr:job@0.2.0"), "{ours}");
    assert!(ours.contains("flaky-every (integer)"), "{ours}");
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a b\nc\n").unwrap();
    let out = dir.path().join("out");
    run_ok(&run_args(
        &job,
        &input,
        &out,
        &["--param", "tag=3.5", "--shards", "1"],
    ));
    let text = std::fs::read_to_string(out.join("part-00000")).unwrap();
    assert_eq!(text, "a b\t3.5\nc\t3.5\n");
}

#[test]
fn missing_input_and_busy_output_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let err = run_err(&run_args(
        &guest("wordcount"),
        &dir.path().join("nothing*.txt"),
        &out,
        &[],
    ));
    assert!(err.contains("nothing*.txt` matches no file"), "{err}");
    let input = input(dir.path());
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "precious").unwrap();
    let err = run_err(&run_args(&guest("wordcount"), &input, &out, &[]));
    assert!(err.contains("is not empty"), "{err}");
    assert_eq!(
        std::fs::read_to_string(out.join("keep.txt")).unwrap(),
        "precious"
    );
}

#[test]
fn a_file_that_is_not_a_job_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake.wasm");
    std::fs::write(&fake, b"\0asm not really").unwrap();
    let err = run_err(&["inspect", s(&fake)]);
    assert!(err.contains("cannot load job component"), "{err}");
    assert!(err.contains("fake.wasm"), "{err}");
}

#[test]
fn long_line_over_the_cap_is_refused_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("long.txt");
    std::fs::write(&input, format!("short\n{}\n", "x".repeat(5000))).unwrap();
    let out = dir.path().join("out");
    let err = run_err(&run_args(
        &guest("wordcount"),
        &input,
        &out,
        &["--max-record-bytes", "1K"],
    ));
    assert!(
        err.contains(&format!(
            "{}:2 (byte 6): line is longer than the record cap of 1024 bytes",
            input.display()
        )),
        "{err}"
    );
}

#[test]
fn a_trapped_instance_is_recreated_and_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let options = mr_engine::RuntimeOptions {
        cache_dir: Some(cache.clone()),
        ..Default::default()
    };
    let runtime = mr_engine::Runtime::new(options).unwrap();
    let params = [("panic-on".to_owned(), "POISON".to_owned())]
        .into_iter()
        .collect();
    let job = runtime
        .load(&guest("faulty"))
        .unwrap()
        .with_params(&params)
        .unwrap();
    // The compiled component was cached, keyed by content and engine.
    let cached: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].to_string_lossy().ends_with(".cwasm"));
    // Loading again deserializes the cached file.
    runtime.load(&guest("faulty")).unwrap();

    let mut instance = mr_engine::Instance::new(&job, Default::default()).unwrap();
    let batch = |line: &str| {
        let mut b = Vec::new();
        mr_codec::put_kv(&mut b, b"f:1", line.as_bytes());
        b
    };
    let err = instance.map(&batch("a POISON line")).unwrap_err();
    assert_eq!(
        err.kind,
        mr_engine::GuestErrorKind::Trap(mr_engine::TrapKind::Panic)
    );
    assert!(
        err.guest_output
            .contains("found the panic marker \"POISON\" at f:1"),
        "{err}"
    );
    assert!(err.message.contains("unreachable"), "{}", err.message);
    let out = instance.map(&batch("fine line")).unwrap();
    let pairs: Vec<_> = mr_codec::kvs(&out).map(|kv| kv.unwrap()).collect();
    assert_eq!(pairs, vec![(&b"fine"[..], &b"1"[..])]);
}

#[test]
fn a_corrupt_run_file_fails_its_reduce_naming_the_file_and_offset() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let mut text = String::new();
    for i in 0..60_000 {
        text.push_str(&format!("w{} x{} y{}\n", i % 5003, i % 17, i));
    }
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("out");
    let args = run_args(
        &guest("inverted-index"),
        &input,
        &out,
        &["--workers", "1", "--reducers", "1", "--max-attempts", "2"],
    );
    // Commit every map slice, then die just before the reduce commits.
    let killed = mr_host()
        .args(&args)
        .env("MR_FAILPOINT", "before-commit-reduce")
        .output()
        .unwrap();
    assert_eq!(
        killed.status.signal(),
        Some(9),
        "{}",
        String::from_utf8_lossy(&killed.stderr)
    );
    // Flip one byte in the middle of the largest committed map run.
    let run = std::fs::read_dir(out.join("_mr/work"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "run"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("a committed run file");
    let mut bytes = std::fs::read(&run).unwrap();
    assert!(bytes.len() > 100_000, "{} bytes", bytes.len());
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&run, &bytes).unwrap();
    // The rerun's reduce reads the corrupt block, refuses to merge it, and the job fails.
    let err = run_err(&args);
    let name = run.file_name().unwrap().to_string_lossy().into_owned();
    assert!(err.contains(&name), "{err}");
    assert!(err.contains("is corrupt at byte"), "{err}");
    assert!(err.contains("block checksum mismatch"), "{err}");
    assert!(err.contains("reduce partition 0, attempt 2"), "{err}");
    assert!(
        !out.join("part-00000").exists(),
        "no output from a corrupt run"
    );
}

#[test]
fn json_failures_are_one_json_object_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let out = dir.path().join("out");
    let json_err = |args: &[String]| {
        let o = mr_host().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(stderr.contains("error: "), "{stderr}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {:?}", o.stdout));
        (v, stderr)
    };
    // The job fails: its id is known.
    let (v, stderr) = json_err(&run_args(
        &guest("faulty"),
        &input,
        &out,
        &["--param", "panic-on=POISON", "--json"],
    ));
    assert_eq!(v["job"], 1);
    let error = v["error"].as_str().unwrap();
    assert!(error.contains("the guest trapped"), "{error}");
    assert!(stderr.contains(error), "{stderr}");
    // Nothing was planned: no job.
    let (v, _) = json_err(&run_args(
        &guest("faulty"),
        &dir.path().join("missing.txt"),
        &dir.path().join("out2"),
        &["--json"],
    ));
    assert_eq!(v["job"], serde_json::Value::Null);
    assert!(v["error"].as_str().unwrap().contains("missing.txt"), "{v}");
    // status --json of a job the store does not have.
    let db = out.join("_mr/state.db");
    let (v, _) = json_err(&[
        "status".into(),
        "7".into(),
        "--db".into(),
        s(&db).to_owned(),
        "--json".into(),
    ]);
    assert_eq!(v["job"], 7);
    assert!(v["error"].as_str().unwrap().contains("has no job 7"), "{v}");
    // Without --json, stdout stays empty.
    let o = mr_host()
        .args(["status", "7", "--db", s(&db)])
        .output()
        .unwrap();
    assert!(!o.status.success() && o.stdout.is_empty());
}
