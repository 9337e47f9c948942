//! Object storage: inputs, map runs and outputs in a real S3-compatible server (`s3s-fs`, a
//! separate process), with the output equal byte for byte to the same job on local files, a
//! crash and rerun, `_MANIFEST` written last, and clear errors for a missing bucket or wrong
//! credentials.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Output;

use crate::support::*;

fn run(server: &S3Server, args: &[&str]) -> Output {
    server.mr_host().args(args).output().unwrap()
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "mr-host failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The same inputs locally and in the bucket (`in/`): three text files, a gzip and a zip.
fn inputs(server: &S3Server, local: &Path) {
    std::fs::create_dir_all(local).unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("a.txt", few_words(3000, 5, 1)),
        ("b.txt", few_words(2000, 5, 2)),
        ("c.txt.gz", gzip(&few_words(1500, 5, 3))),
    ];
    for (name, bytes) in &files {
        std::fs::write(local.join(name), bytes).unwrap();
        server.put(&format!("in/{name}"), bytes);
    }
    // mr bookkeeping beside the data is never read as input.
    server.put("in/_MANIFEST", b"{}");
}

#[test]
fn a_job_over_s3_writes_the_same_bytes_as_over_local_files() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let local_in = dir.path().join("in");
    inputs(&server, &local_in);
    let wc = guest("wordcount");
    let settings = ["--reducers", "2", "--shards", "4", "--slice-size", "20K"];
    let local_out = dir.path().join("out");
    let mut args = vec!["run", s(&wc), "-i", s(&local_in), "-o", s(&local_out)];
    args.extend(settings);
    ok(&run(&server, &args));
    let db = dir.path().join("jobs.db");
    let mut args = vec![
        "run",
        s(&wc),
        "-i",
        "s3://bucket/in/",
        "-o",
        "s3://bucket/out/",
        "--db",
        s(&db),
        "--json",
    ];
    args.extend(settings);
    let out = run(&server, &args);
    ok(&out);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["files"], 3, "{summary}");
    for part in ["part-00000", "part-00001"] {
        assert_eq!(
            server.get(&format!("out/{part}")).unwrap(),
            std::fs::read(local_out.join(part)).unwrap(),
            "{part}"
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&server.get("out/_MANIFEST").unwrap()).unwrap();
    let local: serde_json::Value =
        serde_json::from_slice(&std::fs::read(local_out.join("_MANIFEST")).unwrap()).unwrap();
    assert_eq!(manifest["files"], local["files"]);
    // The same counters however the work was scheduled (regression.rs pins this over text
    // whose words rarely repeat).
    assert_eq!(manifest["counters"], local["counters"]);
    // The job's work files are gone from the bucket once it is done.
    let work = server.root.path().join("bucket/out/_mr/work");
    let left = std::fs::read_dir(&work).map_or(0, |d| d.count());
    assert_eq!(left, 0, "work files left in {}", work.display());
}

#[test]
fn a_map_only_job_over_s3_composes_its_output() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    server.put("in/x.txt", b"one\ntwo\nthree\n");
    server.put("in/y.txt", b"four\n");
    let db = dir.path().join("jobs.db");
    ok(&run(
        &server,
        &[
            "run",
            s(&guest("uppercase")),
            "-i",
            "s3://bucket/in/",
            "-o",
            "s3://bucket/up",
            "--db",
            s(&db),
            "--shards",
            "2",
            "--compose",
        ],
    ));
    assert_eq!(server.get("up/output").unwrap(), b"ONE\nTWO\nTHREE\nFOUR\n");
    assert!(server.get("up/_MANIFEST").is_some());
}

#[test]
fn a_job_killed_before_a_commit_resumes_over_s3_with_the_same_output() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let local_in = dir.path().join("in");
    inputs(&server, &local_in);
    let wc = guest("wordcount");
    let db = dir.path().join("jobs.db");
    let args = [
        "run",
        s(&wc),
        "-i",
        "s3://bucket/in/",
        "-o",
        "s3://bucket/out",
        "--db",
        s(&db),
        "--reducers",
        "2",
        "--slice-size",
        "10K",
    ];
    for point in [
        "before-commit-map:3",
        "before-commit-reduce",
        "before-commit-finalize",
    ] {
        let out = server
            .mr_host()
            .args(args)
            .env("MR_FAILPOINT", point)
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{point}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Killed before finalize committed: no _MANIFEST claims a complete output yet, unless
        // finalize had written it (it is written last, and rewritten by the rerun).
        if point != "before-commit-finalize" {
            assert!(server.get("out/_MANIFEST").is_none(), "{point}");
        }
    }
    ok(&run(&server, &args));
    let reference = dir.path().join("ref");
    ok(&run(
        &server,
        &[
            "run",
            s(&wc),
            "-i",
            s(&local_in),
            "-o",
            s(&reference),
            "--reducers",
            "2",
        ],
    ));
    for part in ["part-00000", "part-00001"] {
        assert_eq!(
            server.get(&format!("out/{part}")).unwrap(),
            std::fs::read(reference.join(part)).unwrap(),
            "{part}"
        );
    }
}

#[test]
fn a_missing_bucket_wrong_credentials_or_no_store_are_clear_errors() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    server.put("in/a.txt", b"a b\n");
    let wc = guest("wordcount");
    let db = dir.path().join("jobs.db");
    let out_local = dir.path().join("local-out");
    let out_local = s(&out_local);
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                "-i",
                "s3://nobucket/in/",
                "-o",
                "s3://bucket/o1",
                "--db",
                s(&db),
            ],
            vec![],
            "the bucket does not exist",
        ),
        (
            vec![
                "-i",
                "s3://bucket/in/",
                "-o",
                "s3://bucket/o2",
                "--db",
                s(&db),
            ],
            vec![("AWS_SECRET_ACCESS_KEY", "wrong")],
            "refused the credentials",
        ),
        (
            vec!["-i", "s3://bucket/in/", "-o", "s3://bucket/o3"],
            vec![],
            "pass --db",
        ),
        (
            vec![
                "-i",
                "s3://bucket/in/",
                "-o",
                "s3://bucket/in",
                "--db",
                s(&db),
            ],
            vec![],
            "is inside the output directory",
        ),
        (
            vec!["-i", "sqlite:s3://bucket/a.db?table=t", "-o", out_local],
            vec![],
            "a SQLite database must be a local file",
        ),
        (
            vec![
                "-i",
                "s3://bucket/in/",
                "-o",
                out_local,
                "--sink",
                "sqlite:s3://bucket/x.db?table=t",
            ],
            vec![],
            "a SQLite database must be a local file",
        ),
    ];
    for (args, env, expected) in cases {
        let out = server
            .mr_host()
            .arg("run")
            .arg(&wc)
            .args(&args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            err.contains(expected),
            "{args:?}: expected {expected:?} in:\n{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn overwrite_in_s3_removes_only_what_mr_wrote() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    server.put("in/a.txt", b"a b\nb\n");
    let wc = guest("wordcount");
    let db = dir.path().join("jobs.db");
    let args = |extra: &'static [&'static str]| {
        let mut a = vec![
            "run".to_owned(),
            s(&wc).to_owned(),
            "-i".into(),
            "s3://bucket/in/".into(),
            "-o".into(),
            "s3://bucket/out".into(),
            "--db".into(),
            s(&db).to_owned(),
        ];
        a.extend(extra.iter().map(|e| e.to_string()));
        a
    };
    ok(&server
        .mr_host()
        .args(args(&["--reducers", "2"]))
        .output()
        .unwrap());
    server.put("out/notes.txt", b"mine");
    let out = server
        .mr_host()
        .args(args(&["--reducers", "1", "--overwrite"]))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("notes.txt") && err.contains("did not write"),
        "{err}"
    );
    assert!(server.get("out/part-00001").is_some(), "nothing removed");
    std::fs::remove_file(server.root.path().join("bucket/out/notes.txt")).unwrap();
    ok(&server
        .mr_host()
        .args(args(&["--reducers", "1", "--overwrite"]))
        .output()
        .unwrap());
    assert!(
        server.get("out/part-00001").is_none(),
        "the old job's part is gone"
    );
    assert_eq!(server.get("out/part-00000").unwrap(), b"a\t1\nb\t2\n");
    // Deleting the job with --output removes what it published, and only that.
    server.put("out/notes.txt", b"mine");
    let status: serde_json::Value = serde_json::from_slice(
        &server
            .mr_host()
            .args(["status", "--db", s(&db), "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let jobs = status.as_array().or_else(|| status["jobs"].as_array());
    let id = jobs
        .and_then(|j| j.iter().filter_map(|j| j["id"].as_i64()).max())
        .unwrap_or_else(|| panic!("no job ids in {status}"));
    ok(&server
        .mr_host()
        .args(["delete", &id.to_string(), "--db", s(&db), "--output"])
        .output()
        .unwrap());
    assert!(server.get("out/part-00000").is_none(), "part left");
    assert!(server.get("out/_MANIFEST").is_none(), "_MANIFEST left");
    assert_eq!(server.get("out/notes.txt").unwrap(), b"mine");
}
