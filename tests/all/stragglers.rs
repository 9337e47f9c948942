//! Straggler splitting: a worker with nothing to do gets part of a running map task's unread
//! input as a new task. Proven with one shard read by two worker threads (the second is idle
//! from the start), whole outputs (`_MANIFEST` and its counters included) compared byte for
//! byte with runs that never split, map-only parts composed in input order, and SIGKILL at
//! random moments of a splitting job.

use std::path::Path;
use std::time::Instant;

use crate::durability::{Rng, killed_until_done, output_files};
use crate::support::*;

/// About 24 MB of lines: enough for several splits past the 1 MiB minimum.
fn input(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("words.txt");
    std::fs::write(&path, few_words(600_000, 6, 0x5eed)).unwrap();
    path
}

/// The store's `task-split` events: (splitting task, detail).
fn splits(out: &Path) -> Vec<(u32, String)> {
    let store = rusqlite::Connection::open(out.join("_mr/state.db")).unwrap();
    let mut stmt = store
        .prepare("SELECT idx, detail FROM events WHERE event = 'task-split' ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn one_shard_read_by_two_workers_is_split_and_writes_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let job = guest("wordcount");
    // Short slices: the owner sees the request at its next commit.
    let settings = [
        "--shards",
        "1",
        "--workers",
        "2",
        "--reducers",
        "3",
        "--slice-size",
        "1M",
    ];
    let whole = dir.path().join("whole");
    let mut args = run_args(&job, &input, &whole, &settings);
    args.push("--no-split".into());
    run_ok(&args);
    assert_eq!(splits(&whole), vec![], "--no-split split");

    let split = dir.path().join("split");
    run_ok(&run_args(&job, &input, &split, &settings));
    let events = splits(&split);
    assert!(!events.is_empty(), "the idle worker never got a split");
    // The first split gives away about half of what was unread, cut at a line start (whose
    // line number is not counted: the part given away numbers its lines from the cut).
    assert!(events[0].1.contains("words.txt byte"), "{events:?}");
    assert!(
        output_files(&split) == output_files(&whole),
        "a split job's output differs from the unsplit run"
    );
    // Status lists the tasks split off, each naming the shard it came from.
    let status = run_ok(&["status", "1", "--output", s(&split), "--tasks", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let tasks = status["tasks"].as_array().expect("tasks");
    let split_off = tasks
        .iter()
        .filter(|t| t["kind"] == "map" && t["split_from"] == 0)
        .count();
    assert_eq!(split_off, events.len(), "{status:#}");
    // Every record was read once, by the shard's task or one split off it.
    let records: i64 = tasks
        .iter()
        .filter(|t| t["kind"] == "map")
        .map(|t| t["counters"]["records-in"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(records, 600_000, "{status:#}");

    // `--limit` counts per shard: such a job is never split.
    let limited = dir.path().join("limited");
    run_ok(&run_args(
        &job,
        &input,
        &limited,
        &[&settings[..], &["--limit", "500000"]].concat(),
    ));
    assert_eq!(splits(&limited), vec![]);
}

#[test]
fn a_map_only_job_split_keeps_its_parts_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path());
    let job = guest("uppercase");
    let settings = ["--shards", "2", "--workers", "2", "--slice-size", "2M"];
    let whole = dir.path().join("whole");
    let mut args = run_args(&job, &input, &whole, &settings);
    args.push("--no-split".into());
    run_ok(&args);
    // A third worker thread idles from the start: it splits one of the two shards.
    let split = dir.path().join("split");
    run_ok(&run_args(
        &job,
        &input,
        &split,
        &["--shards", "2", "--workers", "3", "--slice-size", "2M"],
    ));
    assert!(!splits(&split).is_empty(), "nothing was split");
    let (a, b) = (output_files(&whole), output_files(&split));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        vec!["_MANIFEST", "part-00000", "part-00001"]
    );
    assert!(a == b, "a split map-only job's output differs");
    let text = std::fs::read_to_string(input).unwrap().to_uppercase();
    let parts = [&b["part-00000"][..], &b["part-00001"][..]].concat();
    assert!(parts == text.as_bytes(), "parts are not the input in order");
}

#[test]
fn a_splitting_job_killed_anywhere_then_rerun_gives_identical_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("more-words.txt");
    std::fs::write(&input, few_words(2_000_000, 6, 0xfeed)).unwrap();
    let job = guest("wordcount");
    let logs = dir.path().join("logs");
    let settings = [
        "--shards",
        "1",
        "--workers",
        "2",
        "--reducers",
        "2",
        "--slice-size",
        "1M",
    ];
    let reference = dir.path().join("reference");
    let mut args = run_args(&job, &input, &reference, &settings);
    args.push("--no-split".into());
    let started = Instant::now();
    run_ok(&args);
    let window = started.elapsed().as_millis() as u64;
    let expected = output_files(&reference);
    let mut rng = Rng(0x0bad_5eed_cafe_f00d);
    let (mut kills, mut episodes, mut split_episodes) = (0, 0, 0);
    // Until 8 kills landed, in episodes of kill-and-rerun until a run finishes.
    while kills < 8 {
        assert!(episodes < 40, "only {kills} kills in {episodes} episodes");
        let out = dir.path().join(format!("episode-{episodes}"));
        episodes += 1;
        kills += killed_until_done(
            &run_args(&job, &input, &out, &settings),
            &logs,
            &mut rng,
            window,
        );
        assert!(
            output_files(&out) == expected,
            "episode {episodes}: output differs from the unsplit run"
        );
        if !splits(&out).is_empty() {
            split_episodes += 1;
        }
    }
    eprintln!("{kills} kills in {episodes} episodes, {split_episodes} of which split");
    assert!(split_episodes >= 2, "{split_episodes} episodes split");
}
