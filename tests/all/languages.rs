//! Jobs in Python and JavaScript under the same host: the plugins are built from source with
//! `mr-host build` and must produce the Rust plugins' output byte for byte; exceptions reach the
//! user with the traceback or stack and the record's location; counters, parameters, logs and
//! metadata work as for Rust. (`mr-host new` projects: tests/all/dev_loop.rs.)
//!
//! These tests need the toolchains `scripts/setup-languages.sh` installs (CI runs it): when one
//! is missing they fail and say so, they never skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// Fails with the install command when the Python or JavaScript toolchain is missing.
fn require_toolchains() {
    require_python();
    let componentize_js = repo().join("sdk/js/node_modules/@bytecodealliance/componentize-js");
    assert!(
        componentize_js.is_dir(),
        "the JavaScript SDK's dependencies are not installed ({} is missing): run ./scripts/setup-languages.sh",
        componentize_js.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is not on PATH: install Node.js 20+"
    );
}

/// Several files with every edge case the Rust tests use (mixed case, punctuation, empty lines,
/// CRLF, non-ASCII, very long lines, no final newline, an empty file) plus bytes that are not
/// UTF-8, so the Python and JavaScript text handling is held to the Rust plugins' bytes.
fn corpus(dir: &Path) -> PathBuf {
    let input = dir.join("input");
    let spec = mr_corpus::CorpusSpec {
        bytes: 3 << 20,
        seed: 7,
        edge_cases: true,
    };
    mr_corpus::write_corpus_files(&input, 3, &spec).unwrap();
    std::fs::write(
        input.join("z-bytes.txt"),
        b"caf\xe9 \xff\xfeX na\xc3\xafve\r\nTAB\there\n\n\xf0\x9f\x98\x80 emoji 42x",
    )
    .unwrap();
    std::fs::write(input.join("z-empty.txt"), "").unwrap();
    input
}

/// Runs `job` over `input` into a fresh directory and returns it.
fn run_into(job: &Path, input: &Path, out: &Path, extra: &[&str]) -> PathBuf {
    run_ok(&run_args(job, input, out, extra));
    out.to_owned()
}

/// Every part file of two output directories, byte for byte.
fn assert_same_output(expected: &Path, actual: &Path, what: &str) {
    let (e, a) = (parts(expected), parts(actual));
    assert_eq!(e.len(), a.len(), "{what}: number of part files");
    assert!(!e.is_empty());
    for (e, a) in e.iter().zip(&a) {
        let (eb, ab) = (std::fs::read(e).unwrap(), std::fs::read(a).unwrap());
        assert!(
            eb == ab,
            "{what}: {} differs from {} ({} vs {} bytes)",
            a.display(),
            e.display(),
            ab.len(),
            eb.len()
        );
    }
}

fn equal_to_rust(rust: &str, other: &str, extra: &[&str]) {
    require_toolchains();
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path());
    let expected = run_into(&guest(rust), &input, &dir.path().join("rust"), extra);
    let actual = run_into(&guest(other), &input, &dir.path().join("other"), extra);
    assert_same_output(&expected, &actual, other);
}

#[test]
fn sdk_wit_copies_equal_the_contract() {
    // The SDKs ship the contract so that they work when installed elsewhere; wit/job.wit stays
    // the one source of truth.
    let contract = std::fs::read(repo().join("wit/job.wit")).unwrap();
    for copy in ["sdk/python/src/mr_sdk/wit/job.wit", "sdk/js/wit/job.wit"] {
        assert!(
            std::fs::read(repo().join(copy)).unwrap() == contract,
            "{copy} differs from wit/job.wit: copy it over (cp wit/job.wit {copy})"
        );
    }
}

#[test]
fn wordcount_python_equals_rust() {
    equal_to_rust(
        "wordcount",
        "wordcount-python",
        &["--shards", "5", "--reducers", "3"],
    );
}

#[test]
fn wordcount_js_equals_rust() {
    equal_to_rust(
        "wordcount",
        "wordcount-js",
        &["--shards", "5", "--reducers", "3"],
    );
}

/// The largest inverted-index group of this corpus is far larger than a group batch (256 KiB),
/// so its values reach the Python and JavaScript reducers through the value stream.
#[test]
fn inverted_index_python_equals_rust() {
    equal_to_rust(
        "inverted-index",
        "inverted-index-python",
        &["--shards", "4", "--reducers", "2"],
    );
}

#[test]
fn inverted_index_js_equals_rust() {
    equal_to_rust(
        "inverted-index",
        "inverted-index-js",
        &["--shards", "4", "--reducers", "2"],
    );
}

#[test]
fn inverted_index_groups_are_streamed() {
    // The claim the two tests above lean on: some output line (one group) exceeds the 256 KiB
    // group batch, so its values were pulled through `value-stream.next-batch`.
    let dir = tempfile::tempdir().unwrap();
    let input = corpus(dir.path());
    let out = run_into(
        &guest("inverted-index"),
        &input,
        &dir.path().join("out"),
        &[],
    );
    let longest = parts(&out)
        .iter()
        .flat_map(|p| {
            std::fs::read(p)
                .unwrap()
                .split(|&b| b == b'\n')
                .map(<[u8]>::len)
                .collect::<Vec<_>>()
        })
        .max()
        .unwrap();
    assert!(longest > 2 * 256 * 1024, "longest group {longest} bytes");
}

/// A file whose line 77 carries the marker the faulty fixtures fail on.
fn marked_input(dir: &Path) -> PathBuf {
    let path = dir.join("in.txt");
    let mut text = String::new();
    for i in 1..=5000 {
        text.push_str(&format!("word{} line {i}", i % 7));
        text.push_str(if i == 77 { " REFUSE\n" } else { "\n" });
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn python_exception_shows_the_traceback_and_the_record() {
    require_toolchains();
    let dir = tempfile::tempdir().unwrap();
    let input = marked_input(dir.path());
    let err = run_err(&run_args(
        &guest("faulty-python"),
        &input,
        &dir.path().join("out"),
        &["--param", "fail-on=REFUSE"],
    ));
    let location = format!("{}:77", input.display());
    for expected in [
        format!(
            "job `faulty-python` failed in map shard 0, slice 0, attempt 1, at {location}: the job reported an error: ValueError: refusing the line with marker 'REFUSE'"
        ),
        // Every exception is a job error naming its record: mapped alone, it fails again.
        "(deterministic: the record fails the same way on its own, so it is not retried".to_owned(),
        "Traceback (most recent call last):".to_owned(),
        "File \"faulty.py\", line 31, in map".to_owned(),
        "File \"faulty.py\", line 44, in refuse".to_owned(),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    // The SDK's own frames are not the user's business.
    assert!(!err.contains("_glue.py"), "{err}");
}

#[test]
fn js_exception_shows_the_stack_and_the_record() {
    require_toolchains();
    let dir = tempfile::tempdir().unwrap();
    let input = marked_input(dir.path());
    let err = run_err(&run_args(
        &guest("faulty-js"),
        &input,
        &dir.path().join("out"),
        &["--param", "fail-on=REFUSE"],
    ));
    let location = format!("{}:77", input.display());
    for expected in [
        format!(
            "job `faulty-js` failed in map shard 0, slice 0, attempt 1, at {location}: the job reported an error: Error: refusing the line with marker \"REFUSE\""
        ),
        "(deterministic: the record fails the same way on its own, so it is not retried".to_owned(),
        // Lines of the job's own file, mapped back from the bundle the component runs.
        "at refuse (faulty.js:9)".to_owned(),
        "at map (faulty.js:30)".to_owned(),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    assert!(!err.contains("glue.js"), "{err}");
}

#[test]
fn reduce_errors_name_the_partition_and_key() {
    require_toolchains();
    let dir = tempfile::tempdir().unwrap();
    let input = marked_input(dir.path());
    for (job, expected) in [
        (
            "faulty-python",
            "in reduce of key 'word0': RuntimeError: reduce refused key 'word0' on purpose",
        ),
        (
            "faulty-js",
            "in reduce of key \"word0\": Error: reduce refused key \"word0\" on purpose",
        ),
    ] {
        let err = run_err(&run_args(
            &guest(job),
            &input,
            &dir.path().join(format!("out-{job}")),
            &["--param", "fail-reduce=yes", "--reducers", "1"],
        ));
        // The second attempt fails like the first: the retries end there.
        assert!(
            err.contains("failed in reduce partition 0, attempt 2"),
            "{err}"
        );
        assert!(err.contains("failed the same way"), "{err}");
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn counters_params_logs_and_metadata_work_as_in_rust() {
    require_toolchains();
    let dir = tempfile::tempdir().unwrap();
    let input = marked_input(dir.path());
    for job in ["faulty-python", "faulty-js"] {
        let component = guest(job);
        let info = run_ok(&["inspect", s(&component), "--json"]);
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(info["name"], job);
        assert_eq!(info["version"], "0.0.1");
        assert_eq!(info["world"], "mapreduce-job", "{info}");
        assert_eq!(info["combine"], false);
        let params: Vec<(&str, Option<&str>)> = info["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].as_str().unwrap(), p["default"].as_str()))
            .collect();
        assert_eq!(params, [("fail-on", None), ("fail-reduce", Some("no"))]);

        let out = mr_host()
            .args(run_args(
                &component,
                &input,
                &dir.path().join(format!("out-{job}")),
                &["--json", "--reducers", "1"],
            ))
            .env("MR_LOG", "debug")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            summary["job_counters"]["lines-seen"], 5000,
            "{job}: {summary}"
        );
        assert!(
            stderr.contains("guest: reducing in partition 0"),
            "{job}: {stderr}"
        );
        let lines = sorted_lines(&dir.path().join(format!("out-{job}")));
        assert_eq!(lines.len(), 7);
        assert!(lines.contains(&"word1\t715".to_owned()), "{lines:?}");
        // An unknown parameter is refused before anything runs, from the declared list.
        let err = run_err(&run_args(
            &component,
            &input,
            &dir.path().join("never"),
            &["--param", "nope=1"],
        ));
        assert!(err.contains("it declares: fail-on, fail-reduce"), "{err}");
    }
}

#[test]
fn build_errors_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let err = run_err(&["build", s(dir.path())]);
    assert!(
        err.contains(
            "has no Cargo.toml (Rust), pyproject.toml (Python) or package.json (JavaScript)"
        ),
        "{err}"
    );

    let py = dir.path().join("py");
    std::fs::create_dir(&py).unwrap();
    std::fs::write(py.join("pyproject.toml"), "[project]\nname = \"x\"\n").unwrap();
    let out = mr_host()
        .args(["build", s(&py)])
        .env("MR_PYTHON", dir.path().join("no-such-python"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no-such-python (MR_PYTHON)"), "{err}");
    assert!(err.contains("vendor/mr-sdk"), "{err}");

    require_toolchains();
    let err = run_err(&["build", s(&py)]);
    assert!(err.contains("has no [tool.mr] job = \"MODULE\""), "{err}");

    let js = dir.path().join("js");
    std::fs::create_dir(&js).unwrap();
    std::fs::write(js.join("package.json"), "{\"name\": \"x\"}").unwrap();
    let err = run_err(&["build", s(&js)]);
    assert!(
        err.contains("has no \"mr\": { \"job\": \"FILE.js\" }"),
        "{err}"
    );

    let err = run_err(&["new", "Bad Name", "--lang", "python"]);
    assert!(err.contains("invalid project name"), "{err}");
}
