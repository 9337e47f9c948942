//! Pipelines (`mr-host pipeline`): stages run in dependency order with fan-out and fan-in,
//! checked against an independent reference; reruns reuse what did not change (asserted from
//! the store); SIGKILLs inside a stage resume to byte-identical output without recomputing the
//! stage before it; a damaged upstream part, a cycle and a dangling reference are refused.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::support::*;

/// Word counts as the wordcount plugin defines them (maximal runs of ASCII letters and
/// digits, lowercased), computed here without mr.
fn reference_counts(texts: &[Vec<u8>]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for text in texts {
        for word in text
            .split(|b| !b.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            *counts
                .entry(String::from_utf8_lossy(word).to_ascii_lowercase())
                .or_insert(0) += 1;
        }
    }
    counts
}

/// A stage's output as `word<TAB>count` lines, from all its parts, sorted.
fn counts_of(dir: &Path) -> BTreeMap<String, u64> {
    sorted_lines(dir)
        .into_iter()
        .map(|l| {
            let (w, n) = l.split_once('\t').unwrap();
            (w.to_owned(), n.parse().unwrap())
        })
        .collect()
}

fn as_lines(counts: &BTreeMap<String, u64>) -> Vec<u8> {
    counts
        .iter()
        .map(|(w, n)| format!("{w}\t{n}\n"))
        .collect::<String>()
        .into_bytes()
}

/// A three-stage pipeline: `count` (the logs' words) fans out to `recount` (the words of
/// count's output) and `both` (fan-in: the words of count's and recount's outputs).
fn write_pipeline(dir: &Path, recount_reducers: u32) -> PathBuf {
    let file = dir.join("pipeline.toml");
    std::fs::write(
        &file,
        format!(
            r#"name = "words"

[stages.count]
job = "{wc}"
input = ["logs/*.txt"]
reducers = 2
shards = 3

[stages.recount]
job = "{wc}"
input = ["stage:count"]
reducers = {recount_reducers}

[stages.both]
job = "{wc}"
input = ["stage:count", "stage:recount"]
reducers = 2
"#,
            wc = guest("wordcount").display()
        ),
    )
    .unwrap();
    file
}

fn logs(dir: &Path) -> Vec<Vec<u8>> {
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    (0..3)
        .map(|i| {
            let text = few_words(2_000, 8, 40 + i);
            std::fs::write(dir.join(format!("logs/{i}.txt")), &text).unwrap();
            text
        })
        .collect()
}

fn status(out: &Path) -> serde_json::Value {
    let o = run_ok(&["pipeline", "status", "1", "--output", s(out), "--json"]);
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Each stage's (state, job) from `pipeline status --json`.
fn stages(out: &Path) -> BTreeMap<String, (String, Option<i64>)> {
    status(out)["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                (s["state"].as_str().unwrap().to_owned(), s["job"].as_i64()),
            )
        })
        .collect()
}

/// Every file of every stage's output (parts and `_MANIFEST`), by path.
fn outputs(out: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for stage in ["count", "recount", "both"] {
        for entry in std::fs::read_dir(out.join(stage)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != "_mr" {
                files.insert(
                    format!("{stage}/{name}"),
                    std::fs::read(entry.path()).unwrap(),
                );
            }
        }
    }
    files
}

#[test]
fn stages_fan_out_and_in_match_a_reference_and_reruns_reuse_what_did_not_change() {
    let dir = tempfile::tempdir().unwrap();
    let texts = logs(dir.path());
    let file = write_pipeline(dir.path(), 1);
    let out = dir.path().join("out");
    run_ok(&["pipeline", "run", s(&file), "--output", s(&out)]);

    let count = reference_counts(&texts);
    let recount = reference_counts(&[as_lines(&count)]);
    let both = reference_counts(&[as_lines(&count), as_lines(&recount)]);
    assert_eq!(counts_of(&out.join("count")), count);
    assert_eq!(counts_of(&out.join("recount")), recount);
    assert_eq!(counts_of(&out.join("both")), both);
    let first = stages(&out);
    assert!(
        first.values().all(|(state, _)| state == "done"),
        "{first:?}"
    );

    // The same file again: nothing runs, every stage is reused with its job.
    let again = run_ok(&["pipeline", "run", s(&file), "--output", s(&out)]);
    let reused = stages(&out);
    for (name, (state, job)) in &reused {
        assert_eq!(state, "reused", "{name}");
        assert_eq!(*job, first[name].1, "{name}");
    }
    let text = String::from_utf8_lossy(&again.stderr);
    assert!(text.contains("unchanged: reusing job"), "{text}");

    // recount's reducers change: count is reused; recount and both rerun (both reads
    // recount's output, now split in two parts), with the same content as before.
    let file = write_pipeline(dir.path(), 2);
    run_ok(&["pipeline", "run", s(&file), "--output", s(&out)]);
    let after = stages(&out);
    assert_eq!(after["count"], ("reused".to_owned(), first["count"].1));
    for name in ["recount", "both"] {
        assert_eq!(after[name].0, "done", "{name}");
        assert_ne!(after[name].1, first[name].1, "{name} was not rerun");
    }
    let reasons = status(&out);
    let reason = |name: &str| {
        reasons["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        reason("recount"),
        r#"settings changed: reducers "1" -> "2""#
    );
    assert_eq!(reason("both"), "input changed: stage:recount");
    assert_eq!(parts(&out.join("recount")).len(), 2);
    assert_eq!(counts_of(&out.join("recount")), recount);
    assert_eq!(counts_of(&out.join("both")), both);

    // `pipeline graph` draws it, as text and DOT.
    let graph = run_ok(&["pipeline", "graph", s(&file)]);
    assert_eq!(
        String::from_utf8_lossy(&graph.stdout),
        "pipeline words (3 stages)
  count    <- logs/*.txt  -> recount, both
  recount  <- stage:count  -> both
  both     <- stage:count, stage:recount
"
    );
    let dot = run_ok(&["pipeline", "graph", "--dot", s(&file)]);
    assert!(
        String::from_utf8_lossy(&dot.stdout).contains("\"stage:recount\" -> \"stage:both\";"),
        "{dot:?}"
    );
}

#[test]
fn sigkills_inside_a_stage_resume_to_identical_output_without_recomputing_the_stage_before() {
    let dir = tempfile::tempdir().unwrap();
    logs(dir.path());
    let file = write_pipeline(dir.path(), 2);
    let clean = dir.path().join("clean");
    run_ok(&["pipeline", "run", s(&file), "--output", s(&clean)]);
    // The same files, byte for byte, except that a `_MANIFEST` names its inputs by path:
    // another stage's parts, here under `clean/` instead of `out/`.
    let out = dir.path().join("out");
    let expected: BTreeMap<String, Vec<u8>> = outputs(&clean)
        .into_iter()
        .map(|(name, bytes)| {
            let text = String::from_utf8_lossy(&bytes).replace(s(&clean), s(&out));
            (name, text.into_bytes())
        })
        .collect();

    let args = ["pipeline", "run", s(&file), "--output", s(&out)];
    // count has two reduce tasks: the third reduce commit is recount's first. Then recount's
    // remaining reduce, then its finalize. Every kill lands inside recount.
    let mut count_job = None;
    for point in [
        "before-commit-reduce:3",
        "before-commit-reduce:1",
        "before-commit-finalize:1",
    ] {
        let result = mr_host()
            .args(args)
            .env("MR_FAILPOINT", point)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(
            result.status.signal(),
            Some(9),
            "{point} was not reached: {stderr}"
        );
        let now = stages(&out);
        // Done by the first run, reused (not recomputed) by the later ones.
        assert!(
            ["done", "reused"].contains(&now["count"].0.as_str()),
            "after {point}: {now:?}"
        );
        assert_ne!(now["recount"].0, "done", "after {point}: {now:?}");
        // count ran once: the same job, every time, with no attempt beyond its tasks.
        let job = *count_job.get_or_insert(now["count"].1);
        assert_eq!(now["count"].1, job);
    }
    let db = out.join("_mr/state.db");
    let job = count_job.unwrap();
    let count_status = run_ok(&[
        "status",
        &job.unwrap().to_string(),
        "--db",
        s(&db),
        "--json",
    ]);
    let count_status: serde_json::Value = serde_json::from_slice(&count_status.stdout).unwrap();
    let tasks: u64 = count_status["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["total"].as_u64().unwrap())
        .sum();
    assert_eq!(
        count_status["attempts"].as_u64().unwrap(),
        tasks,
        "{count_status}"
    );

    run_ok(&args);
    let last = stages(&out);
    assert_eq!(last["count"], ("reused".to_owned(), job));
    assert!(
        outputs(&out) == expected,
        "the resumed pipeline's output differs from a clean run"
    );
}

#[test]
fn a_truncated_upstream_part_is_refused_naming_the_file_and_its_manifest_size() {
    let dir = tempfile::tempdir().unwrap();
    logs(dir.path());
    let file = write_pipeline(dir.path(), 1);
    let out = dir.path().join("out");
    run_ok(&["pipeline", "run", s(&file), "--output", s(&out)]);
    let part = out.join("count/part-00001");
    let listed = std::fs::metadata(&part).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&part)
        .unwrap()
        .set_len(10)
        .unwrap();
    // recount must run again to read it: its reducers change.
    let file = write_pipeline(dir.path(), 3);
    let e = run_err(&["pipeline", "run", s(&file), "--output", s(&out)]);
    assert!(
        e.contains(&format!(
            "stage recount: input stage:count: stage count's {} is 10 bytes but its _MANIFEST lists {listed} bytes",
            part.display()
        )),
        "{e}"
    );
    assert_eq!(status(&out)["phase"], "failed");

    // A part changed in place, at the same size, passes the size check; `verify = "sha256"`
    // refuses it, naming both checksums.
    let dir = tempfile::tempdir().unwrap();
    logs(dir.path());
    let file = write_pipeline(dir.path(), 1);
    let out = dir.path().join("out");
    run_ok(&["pipeline", "run", s(&file), "--output", s(&out)]);
    let part = out.join("count/part-00000");
    let mut bytes = std::fs::read(&part).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&part, &bytes).unwrap();
    let text = std::fs::read_to_string(write_pipeline(dir.path(), 2))
        .unwrap()
        .replace(
            "reducers = 2\n\n[stages.both]",
            "reducers = 2\nverify = \"sha256\"\n\n[stages.both]",
        );
    assert!(text.contains("verify"), "{text}");
    std::fs::write(&file, text).unwrap();
    let e = run_err(&["pipeline", "run", s(&file), "--output", s(&out)]);
    assert!(
        e.contains(&format!("stage count's {} has SHA-256 ", part.display()))
            && e.contains("but its _MANIFEST lists"),
        "{e}"
    );
}

#[test]
fn a_cycle_and_a_dangling_reference_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let wc = guest("wordcount");
    let out = dir.path().join("out");
    let cycle = dir.path().join("cycle.toml");
    std::fs::write(
        &cycle,
        format!(
            "[stages.a]\njob = \"{wc}\"\ninput = [\"stage:b\"]\n\n[stages.b]\njob = \"{wc}\"\ninput = [\"stage:a\"]\n",
            wc = wc.display()
        ),
    )
    .unwrap();
    let e = run_err(&["pipeline", "run", s(&cycle), "--output", s(&out)]);
    assert_eq!(
        e.trim(),
        format!(
            "error: {}:7: stage b: the stages form a cycle: b -> a -> b (a stage cannot read, even indirectly, its own output)",
            cycle.display()
        )
    );
    let dangling = dir.path().join("dangling.toml");
    std::fs::write(
        &dangling,
        format!(
            "[stages.a]\njob = \"{wc}\"\ninput = [\"x.txt\"]\n\n[stages.b]\njob = \"{wc}\"\ninput = [\"stage:c\"]\n",
            wc = wc.display()
        ),
    )
    .unwrap();
    let e = run_err(&["pipeline", "run", s(&dangling), "--output", s(&out)]);
    assert_eq!(
        e.trim(),
        format!(
            "error: {}:7: stage b: input stage:c names no stage of this pipeline (its stages: a, b)",
            dangling.display()
        )
    );
    let params = dir.path().join("params.toml");
    std::fs::write(
        &params,
        format!(
            "[stages.a]\njob = \"{wc}\"\ninput = [\"x.txt\"]\nparams = {{ min = 3 }}\n",
            wc = wc.display()
        ),
    )
    .unwrap();
    let e = run_err(&["pipeline", "run", s(&params), "--output", s(&out)]);
    assert!(
        e.contains("params.toml:4: stage a: job `wordcount` has no parameter `min`"),
        "{e}"
    );
    assert!(!out.exists(), "a refused pipeline wrote {}", out.display());
}

#[test]
fn debug_mode_keeps_every_stages_runs_and_dump_prints_them_verified() {
    let dir = tempfile::tempdir().unwrap();
    let texts = logs(dir.path());
    let file = write_pipeline(dir.path(), 1);
    let out = dir.path().join("out");
    run_ok(&["pipeline", "run", s(&file), "--output", s(&out), "--debug"]);
    let status = run_ok(&["pipeline", "status", "--output", s(&out), "--debug"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert_eq!(text.matches("kept: ").count(), 3, "{text}");
    let json = run_ok(&["pipeline", "status", "1", "--output", s(&out), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    for stage in json["stages"].as_array().unwrap() {
        let kept = &stage["kept"];
        assert!(kept["runs"].as_u64().unwrap() > 0, "{stage}");
        assert_eq!(
            kept["dir"].as_str().unwrap(),
            s(&out.join(stage["name"].as_str().unwrap()).join("_mr/work"))
        );
    }
    // The count stage's runs hold every word of the input (map output, combined per batch).
    let work = out.join("count/_mr/work");
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "run"))
        .collect();
    runs.sort();
    let mut words = std::collections::BTreeSet::new();
    for run in &runs {
        let dumped = run_ok(&["dump", s(run)]);
        let err = String::from_utf8_lossy(&dumped.stderr);
        assert!(err.contains("every block checksum verified"), "{err}");
        for line in String::from_utf8(dumped.stdout).unwrap().lines() {
            let (word, _) = line.split_once('\t').unwrap();
            words.insert(word.to_owned());
        }
    }
    let expected: std::collections::BTreeSet<String> =
        reference_counts(&texts).into_keys().collect();
    assert_eq!(words, expected);
    // A damaged run is refused, naming the file and the block's offset.
    let run = runs
        .iter()
        .max_by_key(|r| std::fs::metadata(r).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(run).unwrap();
    let at = bytes.len() - 2;
    bytes[at] ^= 0x20;
    std::fs::write(run, &bytes).unwrap();
    let e = run_err(&["dump", s(run)]);
    assert!(
        e.contains(&format!("run file {} is corrupt at byte", run.display()))
            && e.contains("block checksum mismatch"),
        "{e}"
    );
    // A part is checked against its _MANIFEST.
    let part = out.join("recount/part-00000");
    let shown = run_ok(&["dump", s(&part)]);
    assert_eq!(shown.stdout, std::fs::read(&part).unwrap());
    std::fs::write(&part, b"x\t1\n").unwrap();
    let e = run_err(&["dump", s(&part)]);
    assert!(
        e.contains("is 4 bytes but") && e.contains("_MANIFEST lists"),
        "{e}"
    );
    // Without --debug, a rerun reuses the stages (their data stays kept).
    run_ok(&["pipeline", "run", s(&file), "--output", s(&out)]);
    assert!(stages(&out).values().all(|(state, _)| state == "reused"));
}

/// `pipeline submit` to PostgreSQL, then two `worker` processes that know nothing of the
/// pipeline: idle workers plan its stages (one claim each), run them, and the outputs equal a
/// `pipeline run` on SQLite. The component is deleted after submit: stages load it from the
/// store, as on another host.
#[test]
fn workers_on_a_postgres_store_plan_and_run_a_submitted_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    logs(dir.path());
    let file = write_pipeline(dir.path(), 2);
    let clean = dir.path().join("clean");
    run_ok(&["pipeline", "run", s(&file), "--output", s(&clean)]);

    let copy = dir.path().join("wc.wasm");
    std::fs::copy(guest("wordcount"), &copy).unwrap();
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace(s(&guest("wordcount")), s(&copy));
    let submitted = dir.path().join("submitted.toml");
    std::fs::write(&submitted, text).unwrap();
    let url = mr_store::testing::PgServer::shared().fresh_store_url();
    let out = dir.path().join("out");
    let id = run_ok(&[
        "pipeline",
        "submit",
        s(&submitted),
        "--output",
        s(&out),
        "--db",
        &url,
    ]);
    assert_eq!(String::from_utf8_lossy(&id.stdout).trim(), "1");
    std::fs::remove_file(&copy).unwrap();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            mr_host()
                .args(["worker", "--db", &url, "--workers", "1"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for worker in workers {
        let done = worker.wait_with_output().unwrap();
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
    }
    let status = run_ok(&["pipeline", "status", "1", "--db", &url, "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["phase"], "done", "{status}");
    for stage in ["count", "recount", "both"] {
        assert_eq!(
            sorted_lines(&out.join(stage)),
            sorted_lines(&clean.join(stage)),
            "{stage}"
        );
        for part in parts(&clean.join(stage)) {
            let name = part.file_name().unwrap();
            assert!(
                std::fs::read(out.join(stage).join(name)).unwrap() == std::fs::read(&part).unwrap(),
                "{stage}/{} differs",
                name.to_string_lossy()
            );
        }
    }
}

#[test]
fn a_failing_stage_fails_the_pipeline_naming_it_and_a_fixed_rerun_reuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    logs(dir.path());
    let write = |fail: &str| {
        let file = dir.path().join("failing.toml");
        std::fs::write(
            &file,
            format!(
                r#"[stages.count]
job = "{wc}"
input = ["logs/*.txt"]

[stages.first-words]
job = "{faulty}"
input = ["stage:count"]
params = {{ fail-reduce = "{fail}" }}
max_attempts = 1
"#,
                wc = guest("wordcount").display(),
                faulty = guest("faulty").display()
            ),
        )
        .unwrap();
        file
    };
    let out = dir.path().join("out");
    let file = write("yes");
    let e = run_err(&["pipeline", "run", s(&file), "--output", s(&out)]);
    assert!(
        e.contains("error: pipeline failing: stage first-words: job 2 (`faulty`) failed:"),
        "{e}"
    );
    let failed = stages(&out);
    assert_eq!(failed["first-words"].0, "failed");
    // `pipeline resume` retries the failed job: it fails the same way.
    let db = out.join("_mr/state.db");
    let e = run_err(&["pipeline", "resume", "1", "--db", s(&db)]);
    assert!(
        e.contains("stage first-words: job 2 (`faulty`) failed:"),
        "{e}"
    );
    // Fixed: count is reused, first-words runs again (its params changed).
    let file = write("no");
    run_ok(&["pipeline", "run", s(&file), "--output", s(&out)]);
    let fixed = stages(&out);
    assert_eq!(fixed["count"], ("reused".to_owned(), failed["count"].1));
    assert_eq!(fixed["first-words"].0, "done");
    assert!(!sorted_lines(&out.join("first-words")).is_empty());

    // A setting the job cannot honour is refused before anything runs.
    let map_only = dir.path().join("map-only.toml");
    std::fs::write(
        &map_only,
        format!(
            "[stages.copy]\njob = \"{}\"\ninput = \"logs\"\nreducers = 2\n",
            guest("identity").display()
        ),
    )
    .unwrap();
    let e = run_err(&[
        "pipeline",
        "run",
        s(&map_only),
        "--output",
        s(&dir.path().join("o2")),
    ]);
    assert!(
        e.contains("map-only.toml:1: stage copy: it sets `reducers`, but its job `identity`")
            && e.contains("has no reduce phase"),
        "{e}"
    );
}

#[test]
fn a_stage_runs_under_its_own_tighter_memory_and_time_limits() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hoard.txt"), "HOARD 4 GiB\n").unwrap();
    std::fs::write(dir.path().join("loop.txt"), "LOOP\n").unwrap();
    let file = dir.path().join("limits.toml");
    let write = |stage: &str| {
        std::fs::write(
            &file,
            format!(
                "[stages.s]\njob = \"{}\"\nmax_attempts = 1\n{stage}\n",
                guest("hostile").display()
            ),
        )
        .unwrap();
    };
    // The worker's own limits are far larger (gigabytes, 60 s): the stage's apply.
    write("input = \"hoard.txt\"\nmemory_limit = \"64M\"");
    let e = run_err(&[
        "pipeline",
        "run",
        s(&file),
        "--output",
        s(&dir.path().join("a")),
    ]);
    assert!(e.contains("past the 64 MiB limit"), "{e}");
    write("input = \"loop.txt\"\ncall_timeout = 0.5");
    let started = std::time::Instant::now();
    let e = run_err(&[
        "pipeline",
        "run",
        s(&file),
        "--output",
        s(&dir.path().join("b")),
    ]);
    assert!(e.contains("the call timed out after 0.5 s"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // A limit looser than the worker's does not loosen it.
    write("input = \"hoard.txt\"\nmemory_limit = \"4G\"");
    let e = run_err(&[
        "pipeline",
        "run",
        s(&file),
        "--output",
        s(&dir.path().join("c")),
        "--memory-limit",
        "32M",
    ]);
    assert!(e.contains("past the 32 MiB limit"), "{e}");
}
