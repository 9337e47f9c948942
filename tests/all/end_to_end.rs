//! End to end: real guests built from source, run by the real `mr-host` over generated files,
//! checked against references computed independently here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::*;

/// A corpus of several files with every edge case: mixed case, punctuation, empty lines, CRLF,
/// non-ASCII UTF-8, very long lines, no final newline, an empty file.
fn corpus(dir: &Path) -> Vec<PathBuf> {
    let input = dir.join("input");
    let spec = mr_corpus::CorpusSpec {
        bytes: 3 << 20,
        seed: 42,
        edge_cases: true,
    };
    let mut files = mr_corpus::write_corpus_files(&input, 3, &spec).unwrap();
    let extra = input.join("z-small.txt");
    std::fs::write(
        &extra,
        "Hello, WORLD!\r\n\r\nhello\tworld \u{e9}t\u{e9} na\u{ef}ve 42x\nlast line no newline",
    )
    .unwrap();
    files.push(extra);
    let empty = input.join("z-empty.txt");
    std::fs::write(&empty, "").unwrap();
    files.push(empty);
    files
}

/// Lines of a file the way a reader of the spec sees them: split at `\n`, a trailing `\r`
/// dropped, no phantom line after a final newline.
fn lines_of(text: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    if text.is_empty() || text.ends_with(b"\n") {
        lines.pop();
    }
    lines
        .into_iter()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect()
}

/// Words by a different route than the plugin: a character state machine.
fn words(line: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for &b in line {
        if b.is_ascii_alphanumeric() {
            cur.push((b as char).to_ascii_lowercase());
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn wordcount_reference(files: &[PathBuf]) -> Vec<String> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for f in files {
        for line in lines_of(&std::fs::read(f).unwrap()) {
            for w in words(line) {
                *counts.entry(w).or_default() += 1;
            }
        }
    }
    let mut lines: Vec<String> = counts
        .into_iter()
        .map(|(w, c)| format!("{w}\t{c}"))
        .collect();
    lines.sort();
    lines
}

fn inverted_index_reference(files: &[PathBuf]) -> Vec<String> {
    let mut index: BTreeMap<String, BTreeSet<(String, u64)>> = BTreeMap::new();
    for f in files {
        let name = f.display().to_string();
        for (i, line) in lines_of(&std::fs::read(f).unwrap()).into_iter().enumerate() {
            for w in words(line) {
                index
                    .entry(w)
                    .or_default()
                    .insert((name.clone(), i as u64 + 1));
            }
        }
    }
    let mut lines: Vec<String> = index
        .into_iter()
        .map(|(w, locs)| {
            let locs: Vec<String> = locs.into_iter().map(|(f, l)| format!("{f}:{l}")).collect();
            format!("{w}\t{}", locs.join(","))
        })
        .collect();
    lines.sort();
    lines
}

fn run_job(job: &Path, input: &Path, out: &Path, extra: &[&str]) {
    run_ok(&run_args(job, input, out, extra));
}

#[test]
fn wordcount_equals_reference() {
    let dir = tempfile::tempdir().unwrap();
    let files = corpus(dir.path());
    let out = dir.path().join("out");
    run_job(
        &guest("wordcount"),
        &dir.path().join("input"),
        &out,
        &["--shards", "7", "--reducers", "3"],
    );
    assert_eq!(parts(&out).len(), 3);
    let got = sorted_lines(&out);
    let want = wordcount_reference(&files);
    assert!(
        want.len() > 1000,
        "the corpus should have many distinct words"
    );
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
}

#[test]
fn inverted_index_equals_reference() {
    let dir = tempfile::tempdir().unwrap();
    let files = corpus(dir.path());
    let out = dir.path().join("out");
    let input = dir.path().join("input");
    run_job(
        &guest("inverted-index"),
        &input,
        &out,
        &["--shards", "5", "--reducers", "2"],
    );
    let got = sorted_lines(&out);
    let want = inverted_index_reference(&files);
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
}

fn part_bytes(dir: &Path) -> Vec<Vec<u8>> {
    parts(dir)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

#[test]
fn output_is_identical_across_workers_and_shards() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    let input = dir.path().join("input");
    for job in ["wordcount", "inverted-index"] {
        let wasm = guest(job);
        let mut outputs = Vec::new();
        for (workers, shards) in [("1", "1"), ("4", "1"), ("1", "16"), ("4", "16")] {
            let out = dir.path().join(format!("{job}-w{workers}-s{shards}"));
            run_job(
                &wasm,
                &input,
                &out,
                &["--workers", workers, "--shards", shards, "--reducers", "4"],
            );
            outputs.push(part_bytes(&out));
        }
        assert_eq!(outputs[0].len(), 4);
        for o in &outputs[1..] {
            assert!(
                o == &outputs[0],
                "{job}: output differs between worker/shard counts"
            );
        }
    }
}

#[test]
fn tiny_memory_budget_spills_and_merges_in_passes_with_the_same_output() {
    let dir = tempfile::tempdir().unwrap();
    let files = corpus(dir.path());
    let input = dir.path().join("input");
    // 256 KiB for 2 workers: 64 KiB spill buffers (many spills per slice) and a merge fan-in of
    // 2, so every reduce merges in several passes. Small batches make many combine calls.
    let tiny = [
        "--memory",
        "256K",
        "--batch-size",
        "4K",
        "--workers",
        "2",
        "--reducers",
        "2",
        "--json",
    ];
    for (job, reference) in [
        ("wordcount", wordcount_reference(&files)),
        ("inverted-index", inverted_index_reference(&files)),
    ] {
        let out = dir.path().join(format!("{job}-tiny"));
        let o = run_ok(&run_args(&guest(job), &input, &out, &tiny));
        assert_eq!(sorted_lines(&out), reference, "{job}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let spilled = v["counters"]["spilled-runs"].as_u64().unwrap();
        let intermediate = v["counters"]["merge-intermediate-runs"]
            .as_u64()
            .unwrap_or(0);
        assert!(spilled > 8 && intermediate > 0, "{job}: {}", v["counters"]);
        // Byte-identical to the default budget (one spill per slice, one merge pass).
        let roomy = dir.path().join(format!("{job}-roomy"));
        run_job(
            &guest(job),
            &input,
            &roomy,
            &["--workers", "2", "--reducers", "2"],
        );
        assert_eq!(part_bytes(&out), part_bytes(&roomy), "{job}");
    }
}

#[test]
fn summary_json_has_exact_counters() {
    let dir = tempfile::tempdir().unwrap();
    let files = corpus(dir.path());
    let out = dir.path().join("out");
    let o = run_ok(&run_args(
        &guest("wordcount"),
        &dir.path().join("input"),
        &out,
        &["--json"],
    ));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &v["counters"];
    let lines: usize = files
        .iter()
        .map(|f| lines_of(&std::fs::read(f).unwrap()).len())
        .sum();
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    let words: usize = files
        .iter()
        .map(|f| {
            lines_of(&std::fs::read(f).unwrap())
                .iter()
                .map(|l| words(l).len())
                .sum::<usize>()
        })
        .sum();
    let reference = wordcount_reference(&files);
    assert_eq!(c["records-in"], lines as u64);
    assert_eq!(c["bytes-in"], bytes);
    // Word count pre-combines each batch inside the guest, so it returns far fewer pairs than
    // words; the counts it returns still add up to every word.
    let total: u64 = parts(&out)
        .iter()
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.lines()
                .map(|l| l.rsplit('\t').next().unwrap().parse::<u64>().unwrap())
                .collect::<Vec<_>>()
        })
        .sum();
    assert_eq!(total, words as u64);
    let map_out = c["map-output-records"].as_u64().unwrap();
    assert!(
        map_out > 0 && map_out < words as u64 / 10,
        "{map_out} of {words}"
    );
    assert_eq!(c["combine-output-records"], c["reduce-input-records"]);
    assert_eq!(c["reduce-groups"], reference.len() as u64);
    assert_eq!(c["output-records"], reference.len() as u64);
    assert_eq!(v["world"], "mapreduce-job");
    assert!(v["wall_seconds"].as_f64().unwrap() > 0.0);
}

#[test]
fn map_only_job_writes_map_output_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "one\r\ntwo\n\nThree").unwrap();
    let out = dir.path().join("out");
    run_ok(&run_args(
        &guest("uppercase"),
        &input,
        &out,
        &["--shards", "1"],
    ));
    assert_eq!(
        std::fs::read_to_string(out.join("part-00000")).unwrap(),
        "ONE\nTWO\n\nTHREE\n"
    );
    // The work directory is gone; the store stays, so rerunning reports the finished job.
    assert!(!out.join("_mr/work").exists());
    assert!(out.join("_mr/state.db").is_file());
}

#[test]
fn lifecycle_events_reach_a_job_that_asks_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a\nb\nc\nd\ne\n").unwrap();
    let out = dir.path().join("out");
    let o = mr_host()
        .args(run_args(
            &guest("uppercase"),
            &input,
            &out,
            &["--shards", "1", "--slice-records", "2", "--json"],
        ))
        .env("MR_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    // Five records in slices of two: slices 0, 1 and 2, each started and committed.
    let events: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.split("guest: event ").nth(1))
        .map(|l| l.split(" job=").next().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "TaskStarted map shard 0 slice 0 attempt 1",
            "SliceStarted map shard 0 slice 0 attempt 1",
            "SliceCommitted map shard 0 slice 0 attempt 1",
            "SliceStarted map shard 0 slice 1 attempt 1",
            "SliceCommitted map shard 0 slice 1 attempt 1",
            "SliceStarted map shard 0 slice 2 attempt 1",
            "SliceCommitted map shard 0 slice 2 attempt 1",
            "TaskCompleted map shard 0 slice 2 attempt 1",
            "TaskStarted finalize shard 0 slice 0 attempt 1",
            "TaskCompleted finalize shard 0 slice 0 attempt 1",
            "JobCompleted finalize shard 0 slice 0 attempt 1",
        ],
        "{stderr}"
    );
    // Counters bumped while handling events belong to no slice: they are not counted.
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["job_counters"], serde_json::json!({}));
    assert_eq!(v["slices"], 3);
}

#[test]
fn guest_counters_and_params_reach_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "a x\nb y\na z\n").unwrap();
    let out = dir.path().join("out");
    let o = run_ok(&run_args(
        &guest("faulty"),
        &input,
        &out,
        &["--json", "--param", "fail-on=never-present"],
    ));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["job_counters"]["lines-seen"], 3);
    assert_eq!(v["counters"]["records-in"], 3);
    assert_eq!(v["counters"]["map-output-records"], 3);
    assert_eq!(v["counters"]["reduce-input-records"], 3);
    assert_eq!(sorted_lines(&out), ["a\t2", "b\t1"]);
}

#[test]
fn inspect_describes_the_job() {
    let o = run_ok(&["inspect", s(&guest("faulty"))]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("name:        faulty"), "{text}");
    assert!(text.contains("world:       mapreduce-job"), "{text}");
    assert!(text.contains("phases:      map, reduce\n"), "{text}");
    assert!(
        text.contains("fail-reduce (enum(yes|no), default \"no\")"),
        "{text}"
    );
    let o = run_ok(&["inspect", "--json", s(&guest("uppercase"))]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["world"], "mapper-job");
    assert_eq!(v["reduce"], false);
    let o = run_ok(&["inspect", s(&guest("wordcount"))]);
    assert!(
        String::from_utf8(o.stdout)
            .unwrap()
            .contains("phases:      map, combine, reduce")
    );
}

#[test]
fn build_copies_the_component_with_dash_o() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("wc.wasm");
    let o = run_ok(&[
        "build",
        s(&repo().join("plugins/wordcount")),
        "-o",
        s(&dest),
    ]);
    assert_eq!(String::from_utf8(o.stdout).unwrap().trim(), s(&dest));
    assert_eq!(
        std::fs::read(&dest).unwrap(),
        std::fs::read(guest("wordcount")).unwrap()
    );
}

#[test]
fn a_hot_key_streams_through_the_value_stream() {
    // 200k values of one key (about 1 MB framed) cannot fit one 256 KiB group batch: the
    // reducer pulls the rest through the `value-stream` resource.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("hot.txt");
    let mut text = "hot x\n".repeat(200_000);
    text.push_str("cold y\n");
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("out");
    let o = run_ok(&run_args(
        &guest("faulty"),
        &input,
        &out,
        &["--reducers", "1", "--json"],
    ));
    assert_eq!(sorted_lines(&out), ["cold\t1", "hot\t200000"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["counters"]["reduce-input-records"], 200_001);
    assert_eq!(v["counters"]["reduce-groups"], 2);
}
