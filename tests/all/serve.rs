//! `mr-host serve`: the HTTP API end to end (submit, status, events, cancel, delete), its
//! security (token, loopback, upload limit, data root), completion hooks watched by two
//! processes, `mr-host cancel` / `delete`, a worker that keeps serving when jobs are cancelled
//! or deleted, pipelines as `pipeline status --json` shows them, and schemathesis fuzzing the
//! API from its OpenAPI document.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::server::{
    Answer, Server, TOKEN, call, post, sse_until, submit, two_stage_pipeline, wait_for,
};
use crate::support::{guest, mr_host, run_ok, s, sorted_lines};
use serde_json::json;

/// A temporary directory holding `data/in.txt` and a store path.
struct Fixture {
    dir: tempfile::TempDir,
    data: PathBuf,
    input: PathBuf,
    db: PathBuf,
}

/// A fixture whose `data/in.txt` has `lines` lines of text.
fn fixture(lines: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let input = corpus(&data, lines);
    let db = dir.path().join("jobs.db");
    Fixture {
        dir,
        data,
        input,
        db,
    }
}

impl Fixture {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `mr-host serve` on the store with the token, confined to `data/`, and `extra`.
    fn serve(&self, extra: &[&str]) -> Server {
        let mut args = vec!["--token", TOKEN, "--data-root", s(&self.data)];
        args.extend_from_slice(extra);
        Server::start(&self.db, &args)
    }
}

fn corpus(dir: &Path, lines: usize) -> PathBuf {
    let path = dir.join("in.txt");
    let text: String = (0..lines)
        .map(|i| {
            format!(
                "the quick brown fox {} jumps over the lazy dog {}\n",
                i % 97,
                i % 13
            )
        })
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

fn counters(doc: &serde_json::Value) -> &serde_json::Value {
    &doc["counters"]
}

fn phase(doc: &serde_json::Value) -> &str {
    doc["phase"].as_str().unwrap()
}

fn status_json(db: &Path, id: i64) -> serde_json::Value {
    let out = run_ok(&["status", &id.to_string(), "--db", s(db), "--json"]);
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_job_submitted_over_the_api_runs_and_reports_what_status_json_says() {
    let f = fixture(20_000);
    let (data, db) = (&f.data, &f.db);
    let wordcount = guest("wordcount");
    let server = f.serve(&["--workers", "2"]);
    let spec = json!({"inputs": ["in.txt"], "output": "out/", "reducers": 2, "params": {}});
    let answer = submit(&server, Some(TOKEN), Some(&wordcount), None, &spec);
    assert_eq!(answer.status, 201, "{answer:?}");
    let id = answer.json()["id"].as_i64().unwrap();
    let sha = answer.json()["component_sha256"]
        .as_str()
        .unwrap()
        .to_owned();

    // Live events: the stream replays from the start and follows the job to its end.
    let events = sse_until(
        &format!("{}/api/jobs/{id}/events?after=0", server.url),
        Duration::from_secs(120),
        |data| data.iter().any(|d| d.contains("\"job-completed\"")),
    );
    let kinds: Vec<String> = events
        .iter()
        .map(|d| {
            serde_json::from_str::<serde_json::Value>(d).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("job-submitted"));
    assert!(kinds.iter().any(|k| k == "slice-committed"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "phase-started"), "{kinds:?}");

    let doc = wait_for(&server, id, Duration::from_secs(60), |d| phase(d) == "done");
    // The API's document is `status --json`'s: same counters, same phase, input bytes.
    let cli = status_json(db, id);
    assert_eq!(counters(&doc), counters(&cli));
    assert_eq!(doc["input_bytes"], cli["input_bytes"]);
    assert_eq!(phase(&cli), "done");
    let tasks = call(
        "GET",
        &format!("{}/api/jobs/{id}/tasks", server.url),
        Some(TOKEN),
    )
    .json();
    let maps: Vec<_> = tasks
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "map")
        .collect();
    let planned: u64 = maps
        .iter()
        .map(|t| t["planned_bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(planned, doc["input_bytes"].as_u64().unwrap());
    let describe = call(
        "GET",
        &format!("{}/api/jobs/{id}/describe", server.url),
        Some(TOKEN),
    )
    .json();
    assert_eq!(describe["info"]["name"], "wordcount");

    // The output is what `mr-host run` writes for the same job.
    let reference = f.path().join("reference");
    run_ok(&[
        "run",
        s(&wordcount),
        "-i",
        s(&data.join("in.txt")),
        "-o",
        s(&reference),
        "--reducers",
        "2",
    ]);
    assert_eq!(sorted_lines(&data.join("out")), sorted_lines(&reference));

    // Submitting again by SHA-256 finds the same job (resubmitting resumes, 200).
    let again = submit(&server, Some(TOKEN), None, Some(&sha), &spec);
    assert_eq!(
        (again.status, again.json()["id"].as_i64()),
        (200, Some(id)),
        "{again:?}"
    );
    let list = call("GET", &format!("{}/api/jobs", server.url), Some(TOKEN)).json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(server.stop().code(), Some(0));
}

#[test]
fn every_mutating_call_needs_the_token_and_reads_too_unless_public() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db");
    let wordcount = guest("wordcount");
    let server = Server::start(&db, &["--token", TOKEN]);
    let u = &server.url;
    let spec = json!({"inputs": ["x"], "output": "o"});
    for token in [None, Some("wrong-token-0123456789")] {
        let a = submit(&server, token, Some(&wordcount), None, &spec);
        assert_eq!(a.status, 401, "{a:?}");
        assert!(a.json()["error"].as_str().unwrap().contains("token"));
        for (method, path) in [
            ("POST", "/api/jobs/1/cancel"),
            ("DELETE", "/api/jobs/1"),
            ("POST", "/api/components"),
            ("GET", "/api/jobs"),
            ("GET", "/api/jobs/1"),
            ("GET", "/api/jobs/1/events"),
            ("GET", "/api/pipelines"),
            ("GET", "/api/pipelines/1"),
        ] {
            let a = call(method, &format!("{u}{path}"), token);
            assert_eq!(a.status, 401, "{method} {path}: {a:?}");
            assert!(a.json()["error"].is_string());
        }
    }
    // With the token: real answers (404: no such job), JSON too.
    let a = call("POST", &format!("{u}/api/jobs/1/cancel"), Some(TOKEN));
    assert_eq!(a.status, 404, "{a:?}");
    // The page and the API's documentation are public.
    assert_eq!(call("GET", &format!("{u}/"), None).status, 200);
    assert_eq!(
        call("GET", &format!("{u}/api/openapi.json"), None).status,
        200
    );
    // EventSource cannot send headers: a GET may pass the token in the query.
    let a = call("GET", &format!("{u}/api/jobs?access_token={TOKEN}"), None);
    assert_eq!(a.status, 200, "{a:?}");
    // ...but a mutating call may not.
    let a = post(
        &format!("{u}/api/jobs/1/cancel?access_token={TOKEN}"),
        None,
        "application/json",
        b"",
    );
    assert_eq!(a.status, 401);
    // Unknown routes and methods answer JSON errors too.
    let a = call("GET", &format!("{u}/api/nothing"), Some(TOKEN));
    assert_eq!((a.status, a.json()["status"].as_u64()), (404, Some(404)));
    let a = call("PUT", &format!("{u}/api/jobs/1"), Some(TOKEN));
    assert_eq!(a.status, 405);
    assert!(a.json()["error"].is_string());
    drop(server);

    let server = Server::start(&db, &["--token", TOKEN, "--public-read"]);
    assert_eq!(
        call("GET", &format!("{}/api/jobs", server.url), None).status,
        200
    );
    assert_eq!(
        call("DELETE", &format!("{}/api/jobs/1", server.url), None).status,
        401
    );
    assert_eq!(
        submit(&server, None, Some(&wordcount), None, &spec).status,
        401
    );
}

#[test]
fn listening_beyond_loopback_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = mr_host()
        .args([
            "serve",
            "--db",
            s(&dir.path().join("jobs.db")),
            "--listen",
            "0.0.0.0:0",
        ])
        .env_remove("MR_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not a loopback address, without a token"),
        "{stderr}"
    );
    // With one it serves.
    let server = Server::start(&dir.path().join("jobs.db"), &["--token", TOKEN]);
    assert!(server.url.starts_with("http://127.0.0.1:"));
}

#[test]
fn paths_outside_the_data_root_and_bad_specs_are_refused_with_the_clis_words() {
    let f = fixture(10);
    let (dir, data, db) = (f.path(), &f.data, &f.db);
    let secret = dir.join("secret.txt");
    std::fs::write(&secret, "not yours\n").unwrap();
    std::os::unix::fs::symlink(&secret, data.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(dir, data.join("up")).unwrap();
    let wordcount = guest("wordcount");
    let server = f.serve(&["--max-upload", "4M"]);
    let refused = |spec: serde_json::Value| -> String {
        let a = submit(&server, Some(TOKEN), Some(&wordcount), None, &spec);
        assert_eq!(a.status, 400, "{spec}: {a:?}");
        a.json()["error"].as_str().unwrap().to_owned()
    };
    let outside =
        |m: &str| m.contains("`..` is not allowed") || m.contains("outside the data root");
    for spec in [
        json!({"inputs": ["../secret.txt"], "output": "o1"}),
        json!({"inputs": [s(&secret)], "output": "o2"}),
        json!({"inputs": ["link.txt"], "output": "o3"}),
        json!({"inputs": ["up/secret.txt"], "output": "o4"}),
        json!({"inputs": ["lines:../secret.txt"], "output": "o5"}),
        json!({"inputs": ["in.txt"], "output": "../escaped"}),
        json!({"inputs": ["in.txt"], "output": "up/escaped"}),
        json!({"inputs": ["in.txt"], "output": "o6", "sink": "sqlite:../x.db?table=t"}),
    ] {
        let m = refused(spec.clone());
        assert!(outside(&m), "{spec}: {m}");
    }
    assert!(!dir.join("escaped").exists());
    // Invalid settings: 400 with the message `mr-host submit` gives.
    for (flag, value, field) in [
        ("--reducers", "0", json!({"reducers": 0})),
        ("--batch-size", "12", json!({"batch_size": 12})),
        ("--param", "nope=1", json!({"params": {"nope": "1"}})),
        ("--compose", "_x", json!({"compose": "_x"})),
    ] {
        let mut spec = json!({"inputs": ["in.txt"], "output": "ok"});
        spec.as_object_mut()
            .unwrap()
            .extend(field.as_object().unwrap().clone());
        let api = refused(spec);
        let cli = crate::support::run_err(&[
            "submit",
            s(&wordcount),
            "-i",
            s(&data.join("in.txt")),
            "-o",
            s(&dir.join("cli-out")),
            "--db",
            s(db),
            flag,
            value,
        ]);
        assert!(
            cli.contains(&api),
            "{flag}: the API said {api:?}, the CLI said {cli:?}"
        );
    }
    let m = refused(json!({"inputs": ["in.txt"], "output": "ok", "reducer": 2}));
    assert!(m.contains("unknown field `reducer`"), "{m}");
    let m = refused(json!({"inputs": ["in.txt"], "output": "ok", "on_done": "touch /tmp/pwned"}));
    assert!(m.contains("--allow-on-done"), "{m}");
    // A component that is not one.
    let junk = dir.join("junk.wasm");
    std::fs::write(&junk, b"\0asm junk").unwrap();
    let a = submit(
        &server,
        Some(TOKEN),
        Some(&junk),
        None,
        &json!({"inputs": ["in.txt"], "output": "j"}),
    );
    assert_eq!(a.status, 400, "{a:?}");
    // Too large an upload: 413, JSON.
    let big = dir.join("big.wasm");
    std::fs::write(&big, vec![7u8; 5 << 20]).unwrap();
    let a = submit(
        &server,
        Some(TOKEN),
        Some(&big),
        None,
        &json!({"inputs": ["in.txt"], "output": "b"}),
    );
    assert_eq!(a.status, 413, "{a:?}");
    assert!(a.json()["error"].is_string());
    let a = post(
        &format!("{}/api/components", server.url),
        Some(TOKEN),
        "application/wasm",
        &vec![1u8; 5 << 20],
    );
    assert_eq!(a.status, 413, "{a:?}");
    // Nothing was planned by any of it.
    let list = call("GET", &format!("{}/api/jobs", server.url), Some(TOKEN)).json();
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
}

/// A job big enough to still be running when it is cancelled: 1 worker thread, small slices.
fn long_spec(output: &str) -> serde_json::Value {
    json!({"inputs": ["random:count=200000000,length=6,seed=3"], "output": output,
           "shards": 4, "slice_records": 200000, "reducers": 1})
}

fn wait_for_slices(server: &Server, id: i64) {
    wait_for(server, id, Duration::from_secs(60), |d| {
        d["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["slices"].as_u64().unwrap() > 0)
    });
}

#[test]
fn cancel_over_the_api_stops_the_job_and_leaves_no_manifest() {
    let f = fixture(0);
    let (dir, db) = (&f.data, &f.db);
    let wordcount = guest("wordcount");
    let server = f.serve(&["--workers", "1"]);
    let a = submit(
        &server,
        Some(TOKEN),
        Some(&wordcount),
        None,
        &long_spec("long"),
    );
    assert_eq!(a.status, 201, "{a:?}");
    let id = a.json()["id"].as_i64().unwrap();
    wait_for_slices(&server, id);
    let a = post(
        &format!("{}/api/jobs/{id}/cancel", server.url),
        Some(TOKEN),
        "application/json",
        b"",
    );
    assert_eq!(
        (a.status, a.json()["phase"].as_str()),
        (200, Some("cancelled")),
        "{a:?}"
    );
    let cancelled_at = Instant::now();
    // Its worker lets go within about a second, and nothing is committed after that.
    let doc = wait_for(&server, id, Duration::from_secs(10), |d| {
        d["leases"].as_array().unwrap().is_empty()
    });
    assert!(cancelled_at.elapsed() < Duration::from_secs(5));
    assert_eq!(phase(&doc), "cancelled");
    let committed = doc["counters"].clone();
    std::thread::sleep(Duration::from_millis(1500));
    let later = status_json(db, id);
    assert_eq!(later["counters"], committed);
    assert_eq!(phase(&later), "cancelled");
    assert!(!dir.join("long/_MANIFEST").exists());
    assert!(crate::support::parts(&dir.join("long")).is_empty());
    // Cancelling again says it is over.
    let a = post(
        &format!("{}/api/jobs/{id}/cancel", server.url),
        Some(TOKEN),
        "application/json",
        b"",
    );
    assert_eq!(a.status, 409, "{a:?}");
    assert!(
        a.json()["error"]
            .as_str()
            .unwrap()
            .contains("already ended (cancelled)")
    );
    // Delete over the API: rows and work files go.
    let a = call(
        "DELETE",
        &format!("{}/api/jobs/{id}?output=true", server.url),
        Some(TOKEN),
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert!(!dir.join("long/_mr/work").exists());
    assert_eq!(
        call("GET", &format!("{}/api/jobs/{id}", server.url), Some(TOKEN)).status,
        404
    );
}

#[test]
fn a_following_worker_keeps_serving_when_jobs_are_cancelled_or_deleted_from_the_cli() {
    let f = fixture(5_000);
    let (dir, db, input) = (f.path(), &f.db, &f.input);
    let wordcount = guest("wordcount");
    let submit_cli = |args: &[&str]| -> i64 {
        let out = run_ok(args);
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let long = |out: &str| {
        submit_cli(&[
            "submit",
            s(&wordcount),
            "-i",
            "random:count=200000000,length=6,seed=3",
            "-o",
            s(&dir.join(out)),
            "--db",
            s(db),
            "--shards",
            "2",
            "--slice-records",
            "200000",
            "--reducers",
            "1",
        ])
    };
    let a = long("a");
    let b = long("b");
    let small = submit_cli(&[
        "submit",
        s(&wordcount),
        "-i",
        s(input),
        "-o",
        s(&dir.join("small")),
        "--db",
        s(db),
        "--reducers",
        "1",
    ]);
    let mut worker = mr_host()
        .args(["worker", "--db", s(db), "--follow", "--workers", "1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let store_status = |id: i64| status_json(db, id);
    let started = Instant::now();
    while store_status(a)["tasks"][0]["slices"].as_u64().unwrap() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "job a never committed a slice"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    run_ok(&["cancel", &a.to_string(), "--db", s(db)]);
    let err = crate::support::run_err(&["cancel", &a.to_string(), "--db", s(db)]);
    assert!(err.contains("already ended (cancelled)"), "{err}");
    let out = run_ok(&["delete", &b.to_string(), "--db", s(db), "--output"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&format!("job {b} deleted")), "{said}");
    // The worker goes on to the small job and finishes it.
    let started = Instant::now();
    while store_status(small)["phase"] != "done" {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the worker stopped serving: {:#}",
            store_status(small)
        );
        assert!(worker.try_wait().unwrap().is_none(), "the worker exited");
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = worker.kill();
    let stderr = {
        let _ = worker.wait();
        crate::support::server::drain(worker.stderr.take().unwrap())
    };
    assert_eq!(store_status(a)["phase"], "cancelled");
    assert!(!dir.join("a/_MANIFEST").exists());
    let err = crate::support::run_err(&["status", &b.to_string(), "--db", s(db)]);
    assert!(err.contains(&format!("job {b}")), "{err}");
    assert!(!dir.join("b").exists(), "delete --output left b/ behind");
    assert!(!stderr.contains("error:"), "{stderr}");
}

/// A worker that read a job's row just before `mr-host delete --output` removed the job must
/// not recreate its directories afterwards (CI once found `b/` left behind this way). The
/// pause point holds the worker between reading the row and making the work directory.
#[test]
fn a_job_deleted_while_a_worker_loads_it_leaves_no_directory_behind() {
    let f = fixture(500);
    let (dir, db, input) = (f.path(), &f.db, &f.input);
    let gate = dir.join("gate");
    std::fs::create_dir(&gate).unwrap();
    let out = dir.join("out");
    let id: i64 = String::from_utf8(
        run_ok(&[
            "submit",
            s(&guest("wordcount")),
            "-i",
            s(input),
            "-o",
            s(&out),
            "--db",
            s(db),
        ])
        .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    let mut worker = mr_host()
        .args(["worker", "--db", s(db), "--follow", "--workers", "1"])
        .env("MR_PAUSEPOINT", "load-job-before-work-dir")
        .env("MR_PAUSEPOINT_DIR", &gate)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !gate.join("reached").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the worker never reached the pause point"
        );
        assert!(worker.try_wait().unwrap().is_none(), "the worker exited");
        std::thread::sleep(Duration::from_millis(20));
    }
    run_ok(&["delete", &id.to_string(), "--db", s(db), "--output"]);
    assert!(
        !out.exists(),
        "delete --output left {} behind",
        out.display()
    );
    std::fs::write(gate.join("release"), b"").unwrap();
    // The worker goes on: it finds the job gone and serves the next one.
    let next = crate::support::run_ok(&[
        "submit",
        s(&guest("wordcount")),
        "-i",
        s(input),
        "-o",
        s(&dir.join("next")),
        "--db",
        s(db),
    ]);
    let next: i64 = String::from_utf8(next.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let started = Instant::now();
    while status_json(db, next)["phase"] != "done" {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the worker stopped serving: {:#}",
            status_json(db, next)
        );
        assert!(worker.try_wait().unwrap().is_none(), "the worker exited");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = worker.kill();
    let _ = worker.wait();
    let stderr = crate::support::server::drain(worker.stderr.take().unwrap());
    assert!(
        !out.exists(),
        "the worker recreated {}: {stderr}",
        out.display()
    );
    assert!(!stderr.contains("error:"), "{stderr}");
}

#[test]
fn completion_hooks_are_delivered_once_with_two_watchers() {
    let f = fixture(2_000);
    let (dir, db, input) = (f.path(), &f.db, &f.input);
    let wordcount = guest("wordcount");
    let (url, posts) = crate::support::server::receiver();
    let got = dir.join("on-done.json");
    // `serve` watches the store while `run` works on the job: both see it end.
    let server = Server::start(db, &["--token", TOKEN]);
    let out = run_ok(&[
        "run",
        s(&wordcount),
        "-i",
        s(input),
        "-o",
        s(&dir.join("out")),
        "--db",
        s(db),
        "--notify",
        &url,
        "--on-done",
        &format!("cat > '{}'", got.display()),
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = summary["id"].as_i64().unwrap();
    // Give the watcher time to look (it ticks every second).
    std::thread::sleep(Duration::from_millis(2500));
    let posts = posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 1, "{posts:?}");
    let posted: serde_json::Value = serde_json::from_str(&posts[0]).unwrap();
    assert_eq!(posted["id"], id);
    assert_eq!(posted["phase"], "done");
    assert_eq!(posted["counters"], summary["counters"]);
    let on_done: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&got).unwrap()).unwrap();
    assert_eq!(on_done["counters"], summary["counters"]);
    let doc = call("GET", &format!("{}/api/jobs/{id}", server.url), Some(TOKEN)).json();
    let hooks = doc["hooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 2, "{doc:#}");
    assert!(
        hooks
            .iter()
            .all(|h| h["state"] == "delivered" && h["attempts"] == 1),
        "{hooks:?}"
    );
}

#[test]
fn a_failed_job_is_reported_with_the_guests_words() {
    let f = fixture(0);
    std::fs::write(&f.input, "ok\nok\nboom here\nok\n").unwrap();
    let faulty = guest("faulty");
    let server = f.serve(&["--workers", "1"]);
    let a = submit(
        &server,
        Some(TOKEN),
        Some(&faulty),
        None,
        &json!({"inputs": ["in.txt"], "output": "out", "params": {"panic-on": "boom"}, "reducers": 1}),
    );
    assert_eq!(a.status, 201, "{a:?}");
    let id = a.json()["id"].as_i64().unwrap();
    let doc = wait_for(&server, id, Duration::from_secs(60), |d| {
        phase(d) == "failed"
    });
    let error = doc["error"].as_str().unwrap();
    assert!(error.contains("found the panic marker"), "{error}");
    assert!(error.contains("in.txt:3"), "{error}");
    assert!(error.contains("src/lib.rs:"), "{error}");
}

/// A two-stage pipeline run by `mr-host pipeline run` into the store the server serves: the API
/// shows what `pipeline status --json` shows, the stages in dependency order, both done with
/// their jobs and tasks and what they read; an unknown id is a JSON 404.
#[test]
fn pipelines_run_beside_the_server_are_shown_with_their_stages_jobs_and_tasks() {
    let f = fixture(2_000);
    let server = f.serve(&[]);
    let u = &server.url;
    let empty = call("GET", &format!("{u}/api/pipelines"), Some(TOKEN));
    assert_eq!((empty.status, empty.json()), (200, json!([])), "{empty:?}");

    let file = two_stage_pipeline(f.path(), "words", &f.input);
    let out = f.data.join("words");
    run_ok(&[
        "pipeline",
        "run",
        s(&file),
        "--output",
        s(&out),
        "--db",
        s(&f.db),
    ]);

    let list = call("GET", &format!("{u}/api/pipelines"), Some(TOKEN));
    assert_eq!(list.status, 200, "{list:?}");
    let list = list.json();
    let cli = run_ok(&["pipeline", "status", "--db", s(&f.db), "--json"]);
    let cli: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(
        list, cli,
        "the API's documents are `pipeline status --json`'s"
    );
    assert_eq!(list.as_array().unwrap().len(), 1, "{list:#}");
    let id = list[0]["id"].as_i64().unwrap();

    let one = call("GET", &format!("{u}/api/pipelines/{id}"), Some(TOKEN));
    assert_eq!(one.status, 200, "{one:?}");
    let doc = one.json();
    assert_eq!(doc, list[0]);
    assert_eq!((doc["name"].as_str(), phase(&doc)), (Some("words"), "done"));
    assert_eq!(doc["output"].as_str(), Some(s(&out)));
    let stages = doc["stages"].as_array().unwrap();
    let names: Vec<&str> = stages
        .iter()
        .map(|st| st["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["count", "recount"], "dependency order");
    assert_eq!(stages[0]["inputs"], json!([s(&f.input)]));
    assert_eq!(stages[1]["inputs"], json!(["stage:count"]));
    let mut jobs = Vec::new();
    for stage in stages {
        assert_eq!(stage["state"], "done", "{stage:#}");
        assert_eq!(stage["job_phase"], "done", "{stage:#}");
        let job = stage["job"].as_i64().unwrap();
        // Map shards, 2 reduce partitions and finalize: every one done.
        let tasks = stage["tasks"].as_u64().unwrap();
        assert!(tasks >= 4, "{stage:#}");
        assert_eq!(stage["tasks_done"].as_u64(), Some(tasks), "{stage:#}");
        // The stage's job is one the jobs API knows, done.
        let job_doc = call("GET", &format!("{u}/api/jobs/{job}"), Some(TOKEN)).json();
        assert_eq!(phase(&job_doc), "done", "{job_doc:#}");
        jobs.push(job);
    }
    assert_ne!(jobs[0], jobs[1]);

    // Errors: the shape every other route answers with.
    let missing = call(
        "GET",
        &format!("{u}/api/pipelines/{}", id + 41),
        Some(TOKEN),
    );
    assert_eq!(missing.status, 404, "{missing:?}");
    let body = missing.json();
    assert_eq!(body["status"], 404);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains(&format!("no pipeline {}", id + 41)),
        "{body}"
    );
    let bad = call("GET", &format!("{u}/api/pipelines/words"), Some(TOKEN));
    assert_eq!(
        (bad.status, bad.json()["status"].as_i64()),
        (400, Some(400))
    );
    let anonymous = call("GET", &format!("{u}/api/pipelines/{id}"), None);
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert_eq!(server.stop().code(), Some(0));
}

#[test]
fn schemathesis_finds_no_server_error_in_the_api() {
    let venv = crate::support::repo().join("target/serve-venv/bin/schemathesis");
    assert!(
        venv.is_file(),
        "{} is missing: run scripts/setup-serve-tests.sh (CI does)",
        venv.display()
    );
    let f = fixture(100);
    let wordcount = guest("wordcount");
    let server = f.serve(&["--max-upload", "8M"]);
    // One real job, so the id-taking routes have something to find.
    let a = submit(
        &server,
        Some(TOKEN),
        Some(&wordcount),
        None,
        &json!({"inputs": ["in.txt"], "output": "o"}),
    );
    assert_eq!(a.status, 201, "{a:?}");
    let out = std::process::Command::new(&venv)
        .args([
            "run",
            &format!("{}/api/openapi.json", server.url),
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--header",
            &format!("Authorization: Bearer {TOKEN}"),
            "--exclude-path-regex",
            "events$",
            "--seed",
            "1",
            "--no-color",
            "--request-timeout",
            "20",
        ])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{text}\n{}",
        server.log()
    );
    assert!(!server.log().contains("panicked"), "{}", server.log());
    let _: Answer = call("GET", &format!("{}/api/jobs", server.url), Some(TOKEN));
}

/// On a PostgreSQL store `serve` needs no `--components`: an uploaded component is kept in the
/// store itself, so a second server on another "host" (a work directory of its own) accepts a
/// job naming it by SHA-256 alone, a worker with nothing local runs it, and the live event
/// stream follows it.
#[test]
fn on_postgres_a_component_uploaded_to_one_server_is_found_by_another() {
    let f = fixture(2_000);
    let url = mr_store::testing::PgServer::shared().fresh_store_url();
    let store = Path::new(&url);
    let hosts: Vec<PathBuf> = (1..=3)
        .map(|h| f.path().join(format!("host-{h}")))
        .collect();
    let serve_on = |host: &Path| {
        Server::start_with_env(
            store,
            &["--token", TOKEN, "--data-root", s(&f.data)],
            &[("MR_WORK_DIR", host)],
        )
    };
    let (one, two) = (serve_on(&hosts[0]), serve_on(&hosts[1]));
    let wasm = std::fs::read(guest("wordcount")).unwrap();
    let uploaded = post(
        &format!("{}/api/components", one.url),
        Some(TOKEN),
        "application/wasm",
        &wasm,
    );
    assert_eq!(uploaded.status, 201, "{uploaded:?}");
    let sha = uploaded.json()["sha256"].as_str().unwrap().to_owned();
    assert!(hosts[0].join(format!("components/{sha}.wasm")).is_file());
    assert!(!hosts[1].join(format!("components/{sha}.wasm")).exists());

    let spec = json!({"inputs": ["in.txt"], "output": "out/", "reducers": 2});
    let answer = submit(&two, Some(TOKEN), None, Some(&sha), &spec);
    assert_eq!(answer.status, 201, "{answer:?}");
    let id = answer.json()["id"].as_i64().unwrap();
    // The second server took its copy from the store.
    let copy = hosts[1].join(format!("components/{sha}.wasm"));
    assert_eq!(std::fs::read(&copy).unwrap(), wasm);
    // An unknown SHA-256 is still a clear 404, store or not.
    let unknown = submit(&two, Some(TOKEN), None, Some(&"0".repeat(64)), &spec);
    assert_eq!(unknown.status, 404, "{unknown:?}");

    let worker = mr_host()
        .args(["worker", "--db", &url, "--workers", "2"])
        .env("MR_WORK_DIR", &hosts[2])
        .output()
        .unwrap();
    assert!(
        worker.status.success(),
        "{}",
        String::from_utf8_lossy(&worker.stderr)
    );
    let doc = call("GET", &format!("{}/api/jobs/{id}", one.url), Some(TOKEN)).json();
    assert_eq!(phase(&doc), "done", "{doc}");
    assert_eq!(doc["counters"]["records-in"], 2_000, "{doc}");
    assert!(!sorted_lines(&f.data.join("out")).is_empty());
    // The live page's stream works on PostgreSQL too: every event of the job, to its end.
    let events = sse_until(
        &format!("{}/api/jobs/{id}/events?after=0", one.url),
        Duration::from_secs(60),
        |data| data.iter().any(|d| d.contains("\"job-completed\"")),
    );
    assert!(
        events.iter().any(|d| d.contains("\"job-submitted\"")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|d| d.contains("\"job-completed\"")),
        "{events:?}"
    );
}
