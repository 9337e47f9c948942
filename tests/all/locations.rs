//! Where map input records came from, for both contract versions: a 0.1.x component gets each
//! record's location as its key (`path:line`), a 0.2.0 component (every job built with the Rust
//! SDK) gets keyless records and asks for locations on demand (`context.record-location`). Both
//! must name the true line across shards, resumed slices (cursors in the middle of a file),
//! compressed files, and in the host's own blame (`_bad_records`).

use crate::support::*;
use std::path::Path;

/// `a.txt` (40 lines) and `b.txt.gz` (12 lines): each line `a<N> both` / `b<N> both`.
fn two_files(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let a = dir.join("a.txt");
    let b = dir.join("b.txt.gz");
    let text =
        |tag: &str, n: usize| -> String { (1..=n).map(|i| format!("{tag}{i} both\n")).collect() };
    std::fs::write(&a, text("a", 40)).unwrap();
    std::fs::write(&b, gzip(text("b", 12).as_bytes())).unwrap();
    (a, b)
}

fn run_on(job: &Path, inputs: &[&Path], out: &Path, extra: &[&str]) {
    let mut args = vec!["run", s(job)];
    for input in inputs {
        args.extend(["--input", s(input)]);
    }
    args.extend(["--output", s(out)]);
    args.extend_from_slice(extra);
    run_ok(&args);
}

/// Runs cut the input into 3 shards and every shard into slices of 7 records, so most slices
/// resume from a cursor in the middle of a file.
const SLICED: &[&str] = &["--shards", "3", "--slice-records", "7"];

#[test]
fn a_0_1_0_component_gets_path_line_keys_across_shards_and_slices() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_files(dir.path());
    let job = guest("contract-0-1-0");
    let out = dir.path().join("out");
    let mut extra = vec!["--param", "tag=KEY"];
    extra.extend_from_slice(SLICED);
    run_on(&job, &[&a, &b], &out, &extra);
    let mut want: Vec<String> = (1..=40)
        .map(|i| format!("a{i} both\t{}:{i}", a.display()))
        .chain((1..=12).map(|i| format!("b{i} both\t{}:{i}", b.display())))
        .collect();
    want.sort();
    // A map-only job's parts are in input order, not sorted.
    let mut got: Vec<String> = parts(&out)
        .iter()
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    got.sort();
    assert_eq!(got, want);
}

#[test]
fn a_0_2_0_component_gets_locations_on_demand_across_shards_and_slices() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_files(dir.path());
    // The inverted index asks for the location of every record it emits a word of.
    let job = guest("inverted-index");
    let shown = String::from_utf8(run_ok(&["inspect", s(&job)]).stdout).unwrap();
    assert!(shown.contains("contract:    mr:job@0.2.0"), "{shown}");
    let out = dir.path().join("out");
    let mut extra = vec!["--reducers", "2"];
    extra.extend_from_slice(SLICED);
    run_on(&job, &[&a, &b], &out, &extra);
    let at = |f: &Path, i: usize| format!("{}:{i}", f.display());
    let both: Vec<String> = (1..=40)
        .map(|i| at(&a, i))
        .chain((1..=12).map(|i| at(&b, i)))
        .collect();
    let mut want: Vec<String> = (1..=40)
        .map(|i| format!("a{i}\t{}", at(&a, i)))
        .chain((1..=12).map(|i| format!("b{i}\t{}", at(&b, i))))
        .chain([format!("both\t{}", both.join(","))])
        .collect();
    want.sort();
    assert_eq!(sorted_lines(&out), want);
}

#[test]
fn a_0_2_0_component_failing_on_a_record_is_blamed_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_files(dir.path());
    // `a23` is in the middle of a resumed slice of a middle shard; `b5` in the gzip file. The
    // first panics (a trap, found by bisection), the second returns a job error naming its
    // index.
    let out = dir.path().join("out");
    let mut extra = vec![
        "--param",
        "panic-on=a23 ",
        "--param",
        "fail-on=b5 ",
        "--max-bad-records",
        "2",
    ];
    extra.extend_from_slice(SLICED);
    run_on(&guest("faulty"), &[&a, &b], &out, &extra);
    let bad = std::fs::read_to_string(out.join("_bad_records")).unwrap();
    let mut locations: Vec<String> = bad
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["location"].as_str().unwrap().to_owned()
        })
        .collect();
    locations.sort();
    assert_eq!(
        locations,
        [format!("{}:23", a.display()), format!("{}:5", b.display())],
        "{bad}"
    );
}

/// `--sample` hashes a record's location; a 0.2.0 job's records have no key, so the host hashes
/// the same `path:line` text it would have sent: both versions map the same records.
#[test]
fn both_versions_sample_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_files(dir.path());
    let mut extra = vec!["--sample", "0.5"];
    extra.extend_from_slice(SLICED);
    let old = dir.path().join("old");
    let mut old_extra = vec!["--param", "tag=KEY"];
    old_extra.extend_from_slice(&extra);
    run_on(&guest("contract-0-1-0"), &[&a, &b], &old, &old_extra);
    let mut old_locations: Vec<String> = parts(&old)
        .iter()
        .flat_map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.lines()
                .map(|l| l.split_once('\t').unwrap().1.to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    old_locations.sort();
    let new = dir.path().join("new");
    run_on(&guest("inverted-index"), &[&a, &b], &new, &extra);
    let both = sorted_lines(&new)
        .into_iter()
        .find_map(|l| l.strip_prefix("both\t").map(str::to_owned))
        .unwrap();
    let mut new_locations: Vec<String> = both.split(',').map(str::to_owned).collect();
    new_locations.sort();
    assert!(
        !old_locations.is_empty() && old_locations.len() < 52,
        "{old_locations:?}"
    );
    assert_eq!(new_locations, old_locations);
}
