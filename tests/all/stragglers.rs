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
    // Two shards; the only difference between the runs is the worker threads.
    let settings = |workers| ["--shards", "2", "--workers", workers, "--slice-size", "2M"];
    let whole = dir.path().join("whole");
    let mut args = run_args(&job, &input, &whole, &settings("2"));
    args.push("--no-split".into());
    run_ok(&args);
    let a = output_files(&whole);
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        vec!["_MANIFEST", "part-00000", "part-00001"]
    );
    // A third worker thread idles from the start: it asks to split one of the two shards.
    // Whether the split happens is a race (the owners, a fast map-only job on ~12 MB each,
    // may pass the last cut point before a busy machine schedules the idle thread: CI saw
    // it once), so the run is repeated until one split; every run's output must match.
    let mut split_run = None;
    for attempt in 0..6 {
        let split = dir.path().join(format!("split-{attempt}"));
        run_ok(&run_args(&job, &input, &split, &settings("3")));
        let b = output_files(&split);
        assert!(a == b, "run {attempt}: a map-only job's output differs");
        if !splits(&split).is_empty() {
            split_run = Some(b);
            break;
        }
        eprintln!("run {attempt} did not split");
    }
    let b = split_run.expect("nothing was split in 6 runs");
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

/// Runs `mr-host` with the worker's debug log on; the batches idle threads mapped for others
/// (the "helped a map task" lines) and the run's output.
fn run_logged(args: &[String]) -> (u64, std::process::Output) {
    let out = mr_host()
        .env("MR_LOG", "mr_exec::worker=debug")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let helped = stderr
        .lines()
        .filter(|l| l.contains("helped a map task"))
        .map(|l| {
            l.split("batches=").nth(1).expect("a batch count")[..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    (helped, out)
}

#[test]
fn a_gzip_stream_is_mapped_by_two_threads_with_the_same_output_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    // One gzip member: one task, which cannot be split; the idle thread maps batches for it.
    let mut text = few_words(600_000, 6, 0x9e1f);
    // A marked line near the end, for the failure cases.
    let at = text.len() * 9 / 10;
    let at = at + text[at..].iter().position(|&b| b == b'\n').unwrap() + 1;
    text.splice(at..at, b"poison here\n".iter().copied());
    let marked_line = text[..at].iter().filter(|&&b| b == b'\n').count() + 1;
    // Lines over a 1 KiB record cap, for the bad-input case: one every 997 lines, and a block
    // of them larger than a batch (batches of nothing but bad records).
    let mut lines: Vec<Vec<u8>> = text
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let long = |i: usize| format!("{}\n", format!("long{i} ").repeat(200)).into_bytes();
    for (i, line) in lines.iter_mut().enumerate() {
        if i % 997 == 500 || (200_000..200_300).contains(&i) {
            *line = long(i);
        }
    }
    let long_lines = lines.iter().filter(|l| l.len() > 1024).count();
    let text: Vec<u8> = lines.concat();
    let input = dir.path().join("words.txt.gz");
    std::fs::write(&input, gzip(&text)).unwrap();
    let job = guest("wordcount");
    let settings = [
        "--workers",
        "2",
        "--batch-size",
        "64K",
        "--slice-size",
        "4M",
    ];
    let run = |job: &Path, out: &str, extra: &[&str]| {
        let out = dir.path().join(out);
        let args = run_args(job, &input, &out, &[&settings[..], extra].concat());
        let (helped, output) = run_logged(&args);
        (out, helped, output)
    };

    let (alone, helped, output) = run(&job, "alone", &["--no-split"]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(helped, 0, "--no-split had a helper");
    let (with_help, helped, output) = run(&job, "helped", &[]);
    assert!(output.status.success(), "{output:?}");
    assert!(helped > 0, "the idle thread mapped no batch");
    assert!(
        output_files(&with_help) == output_files(&alone),
        "a helped run's output (_MANIFEST included) differs"
    );

    // A map-only job's part is its input in order, whichever thread mapped each batch.
    let upper = guest("uppercase");
    let (with_help, helped, output) = run(&upper, "upper-helped", &[]);
    assert!(output.status.success(), "{output:?}");
    assert!(helped > 0, "the idle thread mapped no batch");
    let part = std::fs::read(with_help.join("part-00000")).unwrap();
    assert!(
        part == text.to_ascii_uppercase(),
        "a helped map-only part is not its input in order"
    );

    // A record the job fails on, mapped by whichever thread: skipped and logged the same way.
    let faulty = guest("faulty");
    let skip = ["--param", "fail-on=poison", "--max-bad-records", "1"];
    let (alone, _, output) = run(
        &faulty,
        "faulty-alone",
        &[&skip[..], &["--no-split"]].concat(),
    );
    assert!(output.status.success(), "{output:?}");
    let (with_help, helped, output) = run(&faulty, "faulty-helped", &skip);
    assert!(output.status.success(), "{output:?}");
    assert!(helped > 0, "the idle thread mapped no batch");
    let files = output_files(&with_help);
    assert!(
        files == output_files(&alone),
        "a helped run's output differs"
    );
    let bad = String::from_utf8_lossy(&files["_bad_records"]).into_owned();
    assert!(
        bad.contains(&format!("words.txt.gz:{marked_line}")) && bad.contains("poison"),
        "{bad}"
    );

    // Bad input records (lines over the record cap), some filling whole batches: logged and
    // counted in the same order, whichever thread maps the batches around them.
    let cap = ["--max-record-bytes", "1K", "--max-bad-records", "100000"];
    let (alone, _, output) = run(&job, "cap-alone", &[&cap[..], &["--no-split"]].concat());
    assert!(output.status.success(), "{output:?}");
    let (with_help, helped, output) = run(&job, "cap-helped", &cap);
    assert!(output.status.success(), "{output:?}");
    assert!(helped > 0, "the idle thread mapped no batch");
    let files = output_files(&with_help);
    assert!(
        files == output_files(&alone),
        "a helped run's output (_MANIFEST, _bad_records included) differs"
    );
    let logged = String::from_utf8_lossy(&files["_bad_records"])
        .lines()
        .count();
    assert_eq!(logged, long_lines, "every long line logged once");

    // Without an allowance the job fails, naming the record, as without a helper.
    let fail = ["--param", "panic-on=poison"];
    let (_, _, output) = run(
        &faulty,
        "panic-alone",
        &[&fail[..], &["--no-split"]].concat(),
    );
    assert!(!output.status.success());
    let (_, _, helped_output) = run(&faulty, "panic-helped", &fail);
    assert!(!helped_output.status.success());
    let error = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stderr)
            .lines()
            // The error and the guest's message (not the timestamped log line).
            .filter(|l| !l.starts_with(|c: char| c.is_ascii_digit()))
            .filter(|l| l.contains(&format!("words.txt.gz:{marked_line}")))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(!error(&output).is_empty(), "{output:?}");
    assert_eq!(error(&output), error(&helped_output));
}
