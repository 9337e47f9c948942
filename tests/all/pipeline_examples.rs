//! The pipeline examples under `examples/`, run as a user runs them (`mr-host pipeline run
//! examples/NAME/pipeline.toml`, its job projects built by the run): `weblogs` (access logs ->
//! sessions -> per-day and per-page totals -> top pages, in Rust) and `python-stage` (a Rust
//! word count read by a Python stage). Every stage's output is checked against a reference
//! computed here, independently of the plugins; changing a parameter of `weblogs`' middle stage
//! reruns it and the stage after it, reuses the rest, and gives a clean run's bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::*;

fn example(name: &str) -> PathBuf {
    repo().join("examples").join(name)
}

/// Every JSON line of every part of a stage's output, in part order.
fn json_lines(dir: &Path) -> Vec<Value> {
    let parts = parts(dir);
    assert!(!parts.is_empty(), "{} has no parts", dir.display());
    parts
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| {
                    serde_json::from_str(l)
                        .unwrap_or_else(|e| panic!("{}: {e}: {l:?}", p.display()))
                })
                .collect::<Vec<Value>>()
        })
        .collect()
}

/// The same values in a canonical order (by their JSON text), to compare as sets.
fn canonical(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by_cached_key(|v| v.to_string());
    values
}

/// Seconds since 1970 of a UTC date and time, counted day by day from 1970 (deliberately not
/// the plugin's closed-form calendar arithmetic).
fn epoch(year: i64, month: i64, day: i64, h: i64, m: i64, s: i64) -> i64 {
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = |y: i64, m: i64| match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let mut days = (1970..year)
        .map(|y| if leap(y) { 366 } else { 365 })
        .sum::<i64>();
    days += (1..month).map(|mo| month_days(year, mo)).sum::<i64>();
    days += day - 1;
    days * 86400 + h * 3600 + m * 60 + s
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a time, found by counting forward from 1970.
fn iso(time: i64) -> String {
    let (mut year, mut month, mut days) = (1970, 1, time / 86400);
    loop {
        let len = (epoch(year + 1, 1, 1, 0, 0, 0) - epoch(year, 1, 1, 0, 0, 0)) / 86400;
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    loop {
        let next = if month == 12 {
            epoch(year + 1, 1, 1, 0, 0, 0)
        } else {
            epoch(year, month + 1, 1, 0, 0, 0)
        };
        let len = (next - epoch(year, month, 1, 0, 0, 0)) / 86400;
        if days < len {
            break;
        }
        days -= len;
        month += 1;
    }
    let s = time % 86400;
    format!(
        "{year:04}-{month:02}-{:02}T{:02}:{:02}:{:02}Z",
        days + 1,
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// One hit of the log: (ip, time, path, bytes).
type Hit = (String, i64, String, u64);

/// Parses the bundled log's lines (Combined or Common Log Format, `+0000`).
fn parse_log(text: &str) -> Vec<Hit> {
    text.lines()
        .map(|line| {
            let ip = line.split(' ').next().unwrap().to_owned();
            let stamp = &line[line.find('[').unwrap() + 1..line.find(']').unwrap()];
            let (date, zone) = stamp.split_once(' ').unwrap();
            assert_eq!(zone, "+0000", "{line}");
            let f: Vec<&str> = date.split(['/', ':']).collect();
            let month = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ]
            .iter()
            .position(|m| *m == f[1])
            .unwrap() as i64
                + 1;
            let n = |i: usize| f[i].parse::<i64>().unwrap();
            let time = epoch(n(2), month, n(0), n(3), n(4), n(5));
            let quoted: Vec<&str> = line.split('"').collect();
            let target = quoted[1].split(' ').nth(1).unwrap();
            let path = target.split('?').next().unwrap().to_owned();
            let after: Vec<&str> = quoted[2].split_whitespace().collect();
            let bytes = if after[1] == "-" {
                0
            } else {
                after[1].parse().unwrap()
            };
            (ip, time, path, bytes)
        })
        .collect()
}

/// The sessions of the hits: per IP, hits ordered by time then line, a new session after a
/// gap of more than `gap` seconds.
fn reference_sessions(hits: &[Hit], gap: i64) -> Vec<Value> {
    let mut by_ip: BTreeMap<&str, Vec<(i64, usize, &str, u64)>> = BTreeMap::new();
    for (line, (ip, time, path, bytes)) in hits.iter().enumerate() {
        by_ip
            .entry(ip)
            .or_default()
            .push((*time, line, path, *bytes));
    }
    let mut sessions = Vec::new();
    for (ip, mut hits) in by_ip {
        hits.sort();
        let mut i = 0;
        while i < hits.len() {
            let mut j = i + 1;
            while j < hits.len() && hits[j].0 - hits[j - 1].0 <= gap {
                j += 1;
            }
            let group = &hits[i..j];
            let start = iso(group[0].0);
            let day = start[..10].to_owned();
            sessions.push(json!({
                "ip": ip,
                "day": day,
                "start": start,
                "end": iso(group[group.len() - 1].0),
                "hits": group.len(),
                "pages": group.iter().map(|h| h.2).collect::<Vec<_>>(),
                "bytes": group.iter().map(|h| h.3).sum::<u64>(),
            }));
            i = j;
        }
    }
    sessions
}

fn reference_daily(sessions: &[Value]) -> Vec<Value> {
    let mut days: BTreeMap<&str, (u64, u64, u64, BTreeSet<&str>)> = BTreeMap::new();
    for s in sessions {
        let d = days.entry(s["day"].as_str().unwrap()).or_default();
        d.0 += 1;
        d.1 += s["hits"].as_u64().unwrap();
        d.2 += s["bytes"].as_u64().unwrap();
        d.3.insert(s["ip"].as_str().unwrap());
    }
    days.into_iter()
        .map(|(day, (sessions, hits, bytes, ips))| {
            json!({"day": day, "sessions": sessions, "hits": hits, "bytes": bytes, "ips": ips.len()})
        })
        .collect()
}

/// Per page: (hits, sessions), for pages with at least `min_hits` hits.
fn reference_pages(sessions: &[Value], min_hits: u64) -> BTreeMap<String, (u64, u64)> {
    let mut pages: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for s in sessions {
        let list: Vec<&str> = s["pages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        for p in &list {
            pages.entry(p.to_string()).or_default().0 += 1;
        }
        for p in list.iter().collect::<BTreeSet<_>>() {
            pages.get_mut(*p).unwrap().1 += 1;
        }
    }
    pages.retain(|_, (hits, _)| *hits >= min_hits);
    pages
}

fn pages_json(pages: &BTreeMap<String, (u64, u64)>) -> Vec<Value> {
    pages
        .iter()
        .map(|(page, (hits, sessions))| json!({"page": page, "hits": hits, "sessions": sessions}))
        .collect()
}

/// The first `top` pages by hits, then sessions, then path.
fn reference_top(pages: &BTreeMap<String, (u64, u64)>, top: usize) -> Vec<Value> {
    let mut ranked: Vec<(&String, &(u64, u64))> = pages.iter().collect();
    ranked.sort_by_key(|(page, (hits, sessions))| {
        (
            std::cmp::Reverse(*hits),
            std::cmp::Reverse(*sessions),
            *page,
        )
    });
    ranked
        .into_iter()
        .take(top)
        .enumerate()
        .map(|(i, (page, (hits, sessions)))| {
            json!({"rank": i + 1, "page": page, "hits": hits, "sessions": sessions})
        })
        .collect()
}

/// Checks every stage of a weblogs output against the references for `min_hits`.
fn assert_weblogs_output(out: &Path, log: &str, min_hits: u64) {
    let hits = parse_log(log);
    let sessions = reference_sessions(&hits, 30 * 60);
    assert_eq!(
        canonical(json_lines(&out.join("sessions"))),
        canonical(sessions.clone()),
        "stage sessions"
    );
    assert_eq!(
        canonical(json_lines(&out.join("daily"))),
        canonical(reference_daily(&sessions)),
        "stage daily"
    );
    let pages = reference_pages(&sessions, min_hits);
    assert_eq!(
        canonical(json_lines(&out.join("pages"))),
        canonical(pages_json(&pages)),
        "stage pages"
    );
    // In rank order: top has one reducer, so one part holds the ranking in order.
    assert_eq!(
        json_lines(&out.join("top")),
        reference_top(&pages, 10),
        "stage top"
    );
}

/// `pipeline status --json` of the pipeline in `out`, each stage by name.
fn stages(out: &Path) -> BTreeMap<String, Value> {
    let o = run_ok(&["pipeline", "status", "1", "--output", s(out), "--json"]);
    let status: Value = serde_json::from_slice(&o.stdout).unwrap();
    status["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_owned(), s.clone()))
        .collect()
}

/// Each stage's part files, by `stage/part-NNNNN`.
fn part_files(out: &Path, stages: &[&str]) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for stage in stages {
        for part in parts(&out.join(stage)) {
            let name = part.file_name().unwrap().to_string_lossy().into_owned();
            files.insert(format!("{stage}/{name}"), std::fs::read(&part).unwrap());
        }
    }
    files
}

#[test]
fn weblogs_example_matches_a_reference_for_every_stage() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("weblogs");
    let file = example("weblogs/pipeline.toml");
    run_ok(&["pipeline", "run", s(&file), "--output", s(&out)]);
    let log = std::fs::read_to_string(example("weblogs/logs/access.log")).unwrap();
    assert!(log.lines().count() >= 300, "the bundled log is too small");
    assert_weblogs_output(&out, &log, 5);
    // The example exercises what it claims: several sessions per IP, sessions starting on
    // every day, pages left out by min_hits.
    let sessions = json_lines(&out.join("sessions"));
    let ips: BTreeSet<&str> = sessions.iter().map(|s| s["ip"].as_str().unwrap()).collect();
    assert!(
        sessions.len() > ips.len() + 10,
        "{} sessions",
        sessions.len()
    );
    assert_eq!(json_lines(&out.join("daily")).len(), 3);
    let all_pages = reference_pages(&reference_sessions(&parse_log(&log), 1800), 1);
    assert!(json_lines(&out.join("pages")).len() < all_pages.len());
    for stage in stages(&out).values() {
        assert_eq!(stage["state"], "done", "{stage}");
    }
}

#[test]
fn weblogs_changing_a_param_of_stage_2_reruns_stages_2_and_3_only_and_equals_a_clean_run() {
    // The example, copied with its log: jobs by absolute path, so the copy can be edited.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let log = std::fs::read_to_string(example("weblogs/logs/access.log")).unwrap();
    std::fs::write(dir.path().join("logs/access.log"), &log).unwrap();
    let text = std::fs::read_to_string(example("weblogs/pipeline.toml")).unwrap();
    let plugins = repo().join("plugins");
    let text = text.replace("\"../../plugins/", &format!("\"{}/", plugins.display()));
    assert!(text.contains("min_hits = 5"), "{text}");
    let file = dir.path().join("pipeline.toml");
    std::fs::write(&file, &text).unwrap();
    let out = dir.path().join("out");
    run_ok(&["pipeline", "run", s(&file), "--output", s(&out)]);
    assert_weblogs_output(&out, &log, 5);
    let first = stages(&out);

    // pages (sessions -> pages -> top) keeps only pages with 20 hits or more.
    std::fs::write(&file, text.replace("min_hits = 5", "min_hits = 20")).unwrap();
    run_ok(&["pipeline", "run", s(&file), "--output", s(&out)]);
    let after = stages(&out);
    for name in ["sessions", "daily"] {
        assert_eq!(after[name]["state"], "reused", "{name}: {}", after[name]);
        assert_eq!(after[name]["job"], first[name]["job"], "{name}");
    }
    for name in ["pages", "top"] {
        assert_eq!(after[name]["state"], "done", "{name}: {}", after[name]);
        assert!(after[name]["job"].is_i64(), "{}", after[name]);
        assert_ne!(
            after[name]["job"], first[name]["job"],
            "{name} was not rerun"
        );
    }
    assert_eq!(
        after["pages"]["reason"],
        r#"params changed: min_hits "5" -> "20""#
    );
    assert_eq!(after["top"]["reason"], "input changed: stage:pages");
    assert_weblogs_output(&out, &log, 20);

    // A clean run of the changed file writes the same parts, byte for byte.
    let clean = dir.path().join("clean");
    run_ok(&["pipeline", "run", s(&file), "--output", s(&clean)]);
    let all = ["sessions", "daily", "pages", "top"];
    let (rerun, fresh) = (part_files(&out, &all), part_files(&clean, &all));
    assert_eq!(
        rerun.keys().collect::<Vec<_>>(),
        fresh.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &fresh {
        assert!(rerun[name] == *bytes, "{name} differs from a clean run's");
    }
}

#[test]
fn python_stage_example_matches_a_reference() {
    require_python();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("python-stage");
    let file = example("python-stage/pipeline.toml");
    run_ok(&["pipeline", "run", s(&file), "--output", s(&out)]);

    // Stage count: the Rust word count (runs of ASCII letters and digits, lowercased).
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut texts: Vec<PathBuf> = std::fs::read_dir(example("python-stage/text"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    texts.sort();
    assert!(texts.len() >= 2);
    for text in texts {
        let text = std::fs::read_to_string(text).unwrap();
        for word in text
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            *counts.entry(word.to_ascii_lowercase()).or_default() += 1;
        }
    }
    let found: BTreeMap<String, u64> = sorted_lines(&out.join("count"))
        .iter()
        .map(|l| {
            let (w, n) = l.split_once('\t').unwrap();
            (w.to_owned(), n.parse().unwrap())
        })
        .collect();
    assert_eq!(found, counts, "stage count");

    // Stage lengths (Python, min = 2): per length, distinct words and occurrences.
    let mut lengths: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (word, n) in counts.iter().filter(|(_, n)| **n >= 2) {
        let e = lengths.entry(word.len().to_string()).or_default();
        e.0 += 1;
        e.1 += n;
    }
    assert!(lengths.len() >= 5, "{lengths:?}");
    let expected: Vec<String> = lengths
        .iter()
        .map(|(len, (words, total))| format!("{len}\t{words}\t{total}"))
        .collect();
    let lines: Vec<String> = parts(&out.join("lengths"))
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    // One reducer: a single part, in key byte order.
    assert_eq!(lines, expected, "stage lengths");
    let stages = stages(&out);
    assert_eq!(stages["count"]["state"], "done");
    assert_eq!(stages["lengths"]["state"], "done");
}
