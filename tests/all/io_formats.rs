//! Readers and writers end to end: word count over gzip, zip, zstd, bzip2 and xz equals word
//! count over the text; JSONL, CSV and SQLite inputs; bad records failing fast or skipped into
//! `_bad_records`; the JSONL and SQLite sinks and `--compose`; a 1M-row SQLite table read in 8
//! balanced shards, killed and resumed; a migration upserted back into its table, killed inside
//! finalize and rerun. Inputs that must be refused or skipped: corrupt or truncated compressed
//! files, compressed or binary data named as text, FIFOs and devices, symlink loops in a glob,
//! an mr output inside an input directory, a gzip file appended to while the job reads it.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use crate::support::*;

fn text(n: usize) -> String {
    let mut x: u64 = 7;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("Word{} other{} Line {i}, end\n", x % 300, (x >> 9) % 17)
        })
        .collect()
}

fn run(args: &[String]) -> std::process::Output {
    run_ok(args)
}

fn args(job: &Path, inputs: &[String], out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = vec!["run".to_owned(), s(job).to_owned()];
    for i in inputs {
        a.push("--input".into());
        a.push(i.clone());
    }
    a.push("--output".into());
    a.push(s(out).to_owned());
    a.extend(extra.iter().map(|e| e.to_string()));
    a
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("_MANIFEST")).unwrap()).unwrap()
}

#[test]
fn wordcount_over_gzip_and_zip_equals_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = text(40_000);
    let b = text(7_000);
    std::fs::write(d.join("a.txt"), &a).unwrap();
    std::fs::write(d.join("b.txt"), &b).unwrap();
    // Concatenated gzip members: one file holding a, then b.
    let mut multi = gzip(a.as_bytes());
    multi.extend(gzip(b.as_bytes()));
    std::fs::write(d.join("ab.gz"), &multi).unwrap();
    let mut zw = zip::ZipWriter::new(std::fs::File::create(d.join("ab.zip")).unwrap());
    for (name, data) in [("a.txt", &a), ("sub/b.txt", &b)] {
        zw.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zw.write_all(data.as_bytes()).unwrap();
    }
    zw.finish().unwrap();
    let job = guest("wordcount");
    let extra = ["--reducers", "2", "--shards", "4"];
    let p = |n: &str| d.join(n).display().to_string();
    run(&args(
        &job,
        &[p("a.txt"), p("b.txt")],
        &d.join("plain"),
        &extra,
    ));
    run(&args(&job, &[p("ab.gz")], &d.join("gz"), &extra));
    run(&args(&job, &[p("ab.zip")], &d.join("zip"), &extra));
    let plain = sorted_lines(&d.join("plain"));
    assert!(plain.len() > 300);
    assert_eq!(sorted_lines(&d.join("gz")), plain, "gzip differs");
    assert_eq!(sorted_lines(&d.join("zip")), plain, "zip differs");
    assert_eq!(manifest(&d.join("gz"))["counters"]["records-in"], 47_000);
    assert_eq!(manifest(&d.join("zip"))["counters"]["records-in"], 47_000);
}

#[test]
fn corrupt_gzip_and_truncated_zip_fail_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut data = gzip(text(20_000).as_bytes());
    let mid = data.len() / 2;
    data[mid..mid + 32].iter_mut().for_each(|b| *b ^= 0x5a);
    std::fs::write(d.join("bad.gz"), &data).unwrap();
    let job = guest("wordcount");
    let e = run_err(&args(
        &job,
        &[d.join("bad.gz").display().to_string()],
        &d.join("o1"),
        &["--max-attempts", "1"],
    ));
    assert!(e.contains("bad.gz") && e.contains("compressed byte"), "{e}");
    std::fs::write(d.join("cut.zip"), &data[..100]).unwrap();
    let e = run_err(&args(
        &job,
        &[d.join("cut.zip").display().to_string()],
        &d.join("o2"),
        &[],
    ));
    assert!(e.contains("cut.zip: not a readable zip archive"), "{e}");
}

#[test]
fn bad_jsonl_fails_fast_or_is_skipped_up_to_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("rows.jsonl");
    std::fs::write(
        &input,
        b"{\"a\":1}\n{\"a\":\n{\"a\":3}\n\"\xff\"\n{\"a\":5}\n",
    )
    .unwrap();
    let job = guest("json-export");
    let i = [input.display().to_string()];
    let e = run_err(&args(&job, &i, &d.join("fast"), &["--max-attempts", "1"]));
    assert!(e.contains("rows.jsonl:2 (byte 8): invalid JSON"), "{e}");
    let e = run_err(&args(
        &job,
        &i,
        &d.join("one"),
        &["--max-attempts", "1", "--max-bad-records", "1"],
    ));
    assert!(
        e.contains("2 bad input records, more than --max-bad-records 1"),
        "{e}"
    );
    assert!(e.contains("rows.jsonl:4 (byte 22): invalid UTF-8"), "{e}");
    let out = d.join("two");
    run(&args(
        &job,
        &i,
        &out,
        &[
            "--max-bad-records",
            "2",
            "--sink",
            "jsonl",
            "--slice-records",
            "1",
            "--compose",
        ],
    ));
    assert_eq!(
        std::fs::read_to_string(out.join("output")).unwrap(),
        "{\"a\":1}\n{\"a\":3}\n{\"a\":5}\n"
    );
    let bad = std::fs::read_to_string(out.join("_bad_records")).unwrap();
    let lines: Vec<serde_json::Value> = bad
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let loc = |i: usize| lines[i]["location"].as_str().unwrap().to_owned();
    assert!(loc(0).ends_with("rows.jsonl:2 (byte 8)"), "{}", loc(0));
    assert!(loc(1).ends_with("rows.jsonl:4 (byte 22)"), "{}", loc(1));
    let m = manifest(&out);
    assert_eq!(m["counters"]["bad-records"], 2);
    assert_eq!(m["counters"]["records-in"], 3);
    assert_eq!(m["bad_records"]["records"], 2);
}

#[test]
fn csv_rows_export_as_jsonl_and_compose() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("people.csv");
    std::fs::write(
        &input,
        "name,city\n\"Doe, Jane\",Paris\nbob,\"New\nYork\"\n",
    )
    .unwrap();
    let out = d.join("out");
    run(&args(
        &guest("json-export"),
        &[input.display().to_string()],
        &out,
        &["--sink", "jsonl", "--compose"],
    ));
    let expected =
        "{\"name\":\"Doe, Jane\",\"city\":\"Paris\"}\n{\"name\":\"bob\",\"city\":\"New\\nYork\"}\n";
    assert_eq!(
        std::fs::read_to_string(out.join("output")).unwrap(),
        expected
    );
    assert_eq!(manifest(&out)["composed"]["name"], "output");
    assert_eq!(manifest(&out)["composed"]["records"], 2);
    // The JSONL sink refuses a value that is not JSON.
    std::fs::write(d.join("t.txt"), "plain words\n").unwrap();
    let e = run_err(&args(
        &guest("uppercase"),
        &[d.join("t.txt").display().to_string()],
        &d.join("o2"),
        &["--sink", "jsonl", "--max-attempts", "1"],
    ));
    assert!(
        e.contains("record 1 of the job's map output") && e.contains("is not valid JSON"),
        "{e}"
    );
}

#[test]
fn jsonl_kv_sink_keeps_keys_and_feeds_the_next_job() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("words.txt");
    std::fs::write(&input, "apple pie\napple tart\nPie\n").unwrap();
    let counts = d.join("counts");
    run(&args(
        &guest("wordcount"),
        &[input.display().to_string()],
        &counts,
        &[
            "--sink",
            "jsonl-kv",
            "--reducers",
            "1",
            "--compose",
            "all.jsonl",
        ],
    ));
    // Each line is {"key": KEY, "value": VALUE}: wordcount's values are JSON numbers.
    assert_eq!(
        std::fs::read_to_string(counts.join("all.jsonl")).unwrap(),
        "{\"key\":\"apple\",\"value\":2}\n{\"key\":\"pie\",\"value\":2}\n{\"key\":\"tart\",\"value\":1}\n"
    );
    // A value that is not JSON becomes a JSON string; an empty key an empty string.
    let odd = d.join("odd.txt");
    std::fs::write(&odd, "say \"hi\"\t\\ now\n[1, 2]\n").unwrap();
    let upper = d.join("upper");
    run(&args(
        &guest("uppercase"),
        &[odd.display().to_string()],
        &upper,
        &["--sink", "jsonl-kv", "--compose"],
    ));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(upper.join("output"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            serde_json::json!({"key": "", "value": "SAY \"HI\"\t\\ NOW"}),
            serde_json::json!({"key": "", "value": [1, 2]}),
        ]
    );
    // The next job reads those files as JSONL: each record's value is the {"key","value"}
    // object.
    let next = d.join("next");
    run(&args(
        &guest("json-export"),
        &[format!("jsonl:{}/part-*", counts.display())],
        &next,
        &[
            "--sink",
            "jsonl",
            "--compose",
            "--param",
            "columns=value,key",
        ],
    ));
    assert_eq!(
        std::fs::read_to_string(next.join("output")).unwrap(),
        "{\"value\":2,\"key\":\"apple\"}\n{\"value\":2,\"key\":\"pie\"}\n{\"value\":1,\"key\":\"tart\"}\n"
    );
}

#[test]
fn generators_feed_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run(&args(
        &guest("wordcount"),
        &[
            "random:count=500,length=1,seed=7".into(),
            "range:0..100".into(),
        ],
        &out,
        &["--reducers", "1"],
    ));
    let lines = sorted_lines(&out);
    let total: u64 = lines
        .iter()
        .map(|l| l.split('\t').nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 600);
    assert!(
        lines
            .iter()
            .filter(|l| l.len() == 1 + 1 + l.split('\t').nth(1).unwrap().len())
            .count()
            > 20,
        "single letters"
    );
}

/// A table of `n` rows with a skewed key distribution: ids dense near 0 and sparse far out.
fn skewed_db(path: &Path, n: i64) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
        .unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut st = tx.prepare("INSERT INTO users VALUES (?1, ?2)").unwrap();
        for i in 0..n {
            st.execute(rusqlite::params![
                i * i / 5 + i,
                format!(" User{i}@Example.ORG ")
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
}

fn outputs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "_mr")
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_million_row_table_in_eight_balanced_shards_killed_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("app.db");
    skewed_db(&db, 1_000_000);
    let job = guest("json-export");
    let input = [format!("sqlite:{}?table=users", db.display())];
    let extra = [
        "--shards",
        "8",
        "--sink",
        "jsonl",
        "--slice-records",
        "50000",
        "--compose",
    ];
    let clean = d.join("clean");
    run(&args(&job, &input, &clean, &extra));
    let m = manifest(&clean);
    assert_eq!(m["counters"]["records-in"], 1_000_000);
    let counts: Vec<u64> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["records"].as_u64().unwrap())
        .collect();
    assert_eq!(counts.len(), 8, "{counts:?}");
    eprintln!("rows per shard: {counts:?}");
    for c in &counts {
        assert!(
            c.abs_diff(125_000) <= 25_000,
            "unbalanced shards: {counts:?}"
        );
    }
    // Killed inside a slice commit, then before another; the rerun resumes from the cursors.
    let out = d.join("killed");
    for point in ["inside-commit-map:5", "before-commit-map:3"] {
        let status = mr_host()
            .args(args(&job, &input, &out, &extra))
            .env("MR_FAILPOINT", point)
            .status()
            .unwrap();
        assert_eq!(status.signal(), Some(9), "{point} not reached");
    }
    run(&args(&job, &input, &out, &extra));
    // Sampling is deterministic, so both jobs have the same plan and every file (parts,
    // composed output, manifest) is byte-identical.
    assert!(outputs(&out) == outputs(&clean), "resumed output differs");
    assert_eq!(outputs(&out).len(), 10, "8 parts, output, _MANIFEST");
    assert_eq!(manifest(&out)["counters"]["records-in"], 1_000_000);
}

#[test]
fn a_migration_upserts_back_exactly_once_after_a_kill_in_finalize() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("app.db");
    skewed_db(&db, 2_000);
    let job = guest("migrate");
    let input = [format!("sqlite:{}?table=users", db.display())];
    let sink = format!(
        "sqlite:{}?table=users&mode=upsert&shape=object",
        db.display()
    );
    let extra = ["--shards", "3", "--sink", sink.as_str()];
    let out = d.join("out");
    let status = mr_host()
        .args(args(&job, &input, &out, &extra))
        .env("MR_FAILPOINT", "inside-commit-finalize:1")
        .status()
        .unwrap();
    assert_eq!(status.signal(), Some(9));
    run(&args(&job, &input, &out, &extra));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (n, bad): (i64, i64) = conn
        .query_row(
            "SELECT count(*), sum(email != lower(trim(email))) FROM users",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((n, bad), (2_000, 0));
    let marks: i64 = conn
        .query_row("SELECT count(*) FROM _mr_writes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(marks, 1);
    let m = manifest(&out);
    assert_eq!(m["sink"]["rows"], 2_000);
    assert_eq!(m["job_counters"]["changed"], 2_000);

    // Insert mode into a new kv table, killed the same way: no row is inserted twice.
    let out2 = d.join("out2");
    let sink2 = format!("sqlite:{}?table=copy", db.display());
    let extra2 = ["--sink", sink2.as_str()];
    let status = mr_host()
        .args(args(&job, &input, &out2, &extra2))
        .env("MR_FAILPOINT", "inside-commit-finalize:1")
        .status()
        .unwrap();
    assert_eq!(status.signal(), Some(9));
    run(&args(&job, &input, &out2, &extra2));
    let n: i64 = conn
        .query_row("SELECT count(*) FROM copy", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2_000);
}

#[test]
fn empty_inputs_give_empty_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("e.gz"), gzip(b"")).unwrap();
    std::fs::write(d.join("e.csv"), "").unwrap();
    let db = d.join("e.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        .unwrap();
    let out = d.join("out");
    let inputs = [
        d.join("e.gz").display().to_string(),
        d.join("e.csv").display().to_string(),
        format!("sqlite:{}?table=t", db.display()),
    ];
    run(&args(
        &guest("json-export"),
        &inputs,
        &out,
        &["--sink", "jsonl", "--compose"],
    ));
    assert_eq!(std::fs::read(out.join("output")).unwrap(), b"");
    assert_eq!(manifest(&out)["counters"]["records-in"], 0);
}

#[test]
fn line_over_the_record_cap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut data = b"short\n".to_vec();
    data.extend(vec![b'x'; 2 << 20]);
    data.push(b'\n');
    std::fs::write(d.join("long.txt"), &data).unwrap();
    let i = [d.join("long.txt").display().to_string()];
    let e = run_err(&args(
        &guest("wordcount"),
        &i,
        &d.join("o"),
        &["--max-record-bytes", "1M", "--max-attempts", "1"],
    ));
    assert!(
        e.contains("long.txt:2 (byte 6): line is longer than the record cap of 1048576 bytes"),
        "{e}"
    );
    let out = d.join("o2");
    run(&args(
        &guest("wordcount"),
        &i,
        &out,
        &["--max-record-bytes", "1M", "--max-bad-records", "1"],
    ));
    assert_eq!(sorted_lines(&out), ["short\t1"]);
}

/// `data` compressed by the system's own `tool` (`zstd`, `bzip2`, `xz`): files as users make
/// them (zstd writes a content checksum, xz a CRC, bzip2 block CRCs).
fn compress_with(tool: &str, data: &[u8]) -> Vec<u8> {
    let mut child = std::process::Command::new(tool)
        .args(["-c", "-q"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("`{tool}` is needed by this test (Debian package zstd, bzip2 or xz-utils): {e}")
        });
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "{tool} failed");
    out.stdout
}

const TOOLS: [(&str, &str); 3] = [("zstd", "zst"), ("bzip2", "bz2"), ("xz", "xz")];

#[test]
fn wordcount_over_zstd_bzip2_and_xz_equals_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = text(40_000);
    let b = text(7_000);
    std::fs::write(d.join("a.txt"), &a).unwrap();
    std::fs::write(d.join("b.txt"), &b).unwrap();
    let job = guest("wordcount");
    let extra = ["--reducers", "2", "--shards", "4"];
    let p = |n: &str| d.join(n).display().to_string();
    run(&args(
        &job,
        &[p("a.txt"), p("b.txt")],
        &d.join("plain"),
        &extra,
    ));
    let plain = sorted_lines(&d.join("plain"));
    assert!(plain.len() > 300);
    for (tool, ext) in TOOLS {
        // Two streams in one file (`cat a.zst b.zst`): both are read.
        let mut both = compress_with(tool, a.as_bytes());
        both.extend(compress_with(tool, b.as_bytes()));
        let name = format!("ab.txt.{ext}");
        std::fs::write(d.join(&name), &both).unwrap();
        let out = d.join(ext);
        run(&args(&job, &[p(&name)], &out, &extra));
        assert_eq!(sorted_lines(&out), plain, "{tool} differs");
        assert_eq!(manifest(&out)["counters"]["records-in"], 47_000, "{tool}");
    }
}

#[test]
fn compressed_jsonl_and_csv_are_read_as_their_format() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("r.jsonl.zst"),
        compress_with("zstd", b"{\"a\":1}\n{\"a\":2}\n"),
    )
    .unwrap();
    std::fs::write(
        d.join("t.csv.xz"),
        compress_with("xz", b"id,name\n3,\"x, y\"\n"),
    )
    .unwrap();
    let out = d.join("out");
    let inputs = [
        d.join("r.jsonl.zst").display().to_string(),
        d.join("t.csv.xz").display().to_string(),
    ];
    run(&args(
        &guest("json-export"),
        &inputs,
        &out,
        &["--sink", "jsonl", "--compose"],
    ));
    assert_eq!(
        std::fs::read_to_string(out.join("output")).unwrap(),
        "{\"a\":1}\n{\"a\":2}\n{\"id\":\"3\",\"name\":\"x, y\"}\n"
    );
}

#[test]
fn corrupt_or_truncated_zstd_bzip2_xz_fail_naming_the_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let job = guest("wordcount");
    let data = text(20_000);
    for (tool, ext) in TOOLS {
        let full = compress_with(tool, data.as_bytes());
        let name = format!("cut.{ext}");
        std::fs::write(d.join(&name), &full[..full.len() / 2]).unwrap();
        let e = run_err(&args(
            &job,
            &[d.join(&name).display().to_string()],
            &d.join(format!("cut-{ext}")),
            &["--max-attempts", "1"],
        ));
        assert!(
            e.contains(&name)
                && e.contains(&format!(
                    "corrupt or truncated {tool} data at compressed byte"
                )),
            "{tool}: {e}"
        );
        let mut bad = full.clone();
        let mid = bad.len() / 2;
        bad[mid..mid + 16].iter_mut().for_each(|b| *b ^= 0x5a);
        let name = format!("bad.{ext}");
        std::fs::write(d.join(&name), &bad).unwrap();
        let e = run_err(&args(
            &job,
            &[d.join(&name).display().to_string()],
            &d.join(format!("bad-{ext}")),
            &["--max-attempts", "1"],
        ));
        assert!(
            e.contains(&name) && e.contains("compressed byte"),
            "{tool}: {e}"
        );
    }
}

#[test]
fn compressed_or_binary_files_named_as_text_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let job = guest("wordcount");
    std::fs::write(d.join("log.txt"), gzip(text(100).as_bytes())).unwrap();
    let e = run_err(&args(
        &job,
        &[s(&d.join("log.txt")).into()],
        &d.join("o1"),
        &[],
    ));
    assert!(
        e.contains(
            "log.txt: its first bytes say it is gzip data, not text: rename it to end in .gz"
        ),
        "{e}"
    );
    std::fs::write(d.join("x.txt.zst"), text(10)).unwrap();
    let e = run_err(&args(
        &job,
        &[s(&d.join("x.txt.zst")).into()],
        &d.join("o2"),
        &[],
    ));
    assert!(
        e.contains("its name says zstd data, but its first bytes say it is not"),
        "{e}"
    );
    std::fs::write(d.join("pic.csv"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
    let e = run_err(&args(
        &job,
        &[s(&d.join("pic.csv")).into()],
        &d.join("o3"),
        &[],
    ));
    assert!(e.contains("its first bytes say it is a PNG image"), "{e}");
    // An explicit prefix is the user's word: the gzip bytes are read as text lines.
    let out = d.join("o4");
    run(&args(
        &job,
        &[format!("lines:{}", s(&d.join("log.txt")))],
        &out,
        &[],
    ));
    assert!(manifest(&out)["counters"]["records-in"].as_u64().unwrap() > 0);
}

#[test]
fn fifos_and_devices_are_refused_not_read_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let job = guest("wordcount");
    for name in ["pipe", "pipe.csv", "pipe.jsonl"] {
        let status = std::process::Command::new("mkfifo")
            .arg(d.join(name))
            .status()
            .unwrap();
        assert!(status.success());
        let e = run_err(&args(
            &job,
            &[s(&d.join(name)).into()],
            &d.join(format!("o-{name}")),
            &[],
        ));
        assert!(
            e.contains(&format!(
                "{name} is a FIFO (named pipe), not a regular file"
            )),
            "{e}"
        );
    }
    let e = run_err(&args(&job, &["/dev/zero".into()], &d.join("o-zero"), &[]));
    assert!(
        e.contains("input /dev/zero is a character device, not a regular file"),
        "{e}"
    );
    // Inside a directory too: refused by name, not skipped and not read.
    std::fs::create_dir(d.join("data")).unwrap();
    std::fs::write(d.join("data/a.txt"), "a\n").unwrap();
    std::process::Command::new("mkfifo")
        .arg(d.join("data/p"))
        .status()
        .unwrap();
    let e = run_err(&args(
        &job,
        &[s(&d.join("data")).into()],
        &d.join("o-dir"),
        &[],
    ));
    assert!(e.contains("data/p is a FIFO"), "{e}");
}

#[test]
fn a_glob_through_symlink_loops_reads_each_file_once_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let l = d.join("L");
    std::fs::create_dir_all(l.join("a")).unwrap();
    std::fs::create_dir_all(l.join("b")).unwrap();
    std::fs::write(l.join("a/f.txt"), "one two\nthree\n").unwrap();
    // Two loops: each alone made the glob list f.txt dozens of times; together, without end.
    std::os::unix::fs::symlink("..", l.join("a/up")).unwrap();
    std::os::unix::fs::symlink("../a", l.join("b/down")).unwrap();
    // The same file under a second name (a link to it) is read once too.
    std::os::unix::fs::symlink("a/f.txt", l.join("same.txt")).unwrap();
    let out = d.join("out");
    let mut child = mr_host()
        .args(args(
            &guest("wordcount"),
            &[format!("{}/**/*.txt", s(&l))],
            &out,
            &[],
        ))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > std::time::Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("mr-host did not finish within 60 s: the glob loops");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "mr-host failed");
    assert_eq!(manifest(&out)["counters"]["records-in"], 2);
    assert_eq!(sorted_lines(&out), ["one\t1", "three\t1", "two\t1"]);
}

#[test]
fn a_directory_holding_an_mr_output_reads_only_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("a.txt"), "x y\nbad\n").unwrap();
    let job = guest("faulty");
    // An earlier job's output inside the data directory, with a `_bad_records` file.
    run(&args(
        &job,
        &[s(&data.join("a.txt")).into()],
        &data.join("prev"),
        &["--param", "panic-on=bad", "--max-bad-records", "1"],
    ));
    for name in ["_MANIFEST", "_bad_records", "_mr/state.db"] {
        assert!(data.join("prev").join(name).is_file(), "{name}");
    }
    let prev_parts: usize = parts(&data.join("prev"))
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap().lines().count())
        .sum();
    // The output directory inside the input directory, as in `-i data/ -o data/out/`.
    let out = data.join("out");
    run(&args(
        &guest("wordcount"),
        &[s(&data).into()],
        &out,
        &["--reducers", "1"],
    ));
    // a.txt and the earlier job's part files: no _MANIFEST, _bad_records, _mr/, out/.
    assert_eq!(
        manifest(&out)["counters"]["records-in"],
        2 + prev_parts as u64
    );
    // A file inside the output directory, named explicitly, is refused.
    let other = d.join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("extra.txt"), "z\n").unwrap();
    let e = run_err(&args(
        &guest("wordcount"),
        &[s(&other.join("extra.txt")).into()],
        &other,
        &[],
    ));
    assert!(
        e.contains(&format!(
            "input {} is inside the output directory {}",
            s(&other.join("extra.txt")),
            s(&other.canonicalize().unwrap())
        )),
        "{e}"
    );
}

#[test]
fn a_gzip_input_appended_to_during_the_run_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("log.gz");
    // 31 MB inflated, in slices of 50,000 records (1.6 MB): when the first slice commits, the
    // reader has inflated that slice and up to 10 MiB ahead of it (the inflater's queue), so
    // it is still reading the file when the file grows. (With 6 MB, the read-ahead had read
    // the whole file before the append, and the run rightly finished on what was planned.)
    std::fs::write(&input, gzip(text(1_000_000).as_bytes())).unwrap();
    let out = d.join("out");
    let mut child = mr_host()
        .args(args(
            &guest("wordcount"),
            &[s(&input).into()],
            &out,
            &[
                "--slice-records",
                "50000",
                "--max-attempts",
                "1",
                "--workers",
                "1",
            ],
        ))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let db = out.join("_mr/state.db");
    let committed = || -> i64 {
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row("SELECT count(*) FROM slices", [], |r| r.get(0)))
            .unwrap_or(0)
    };
    let start = std::time::Instant::now();
    while committed() < 1 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the job ended before its first slice was seen"
        );
        assert!(
            start.elapsed().as_secs() < 120,
            "no slice committed in 120 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Stop the run between slices, append a member, let it go on.
    let signal = |sig: &str| {
        assert!(
            std::process::Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        )
    };
    signal("-STOP");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&input)
        .unwrap();
    f.write_all(&gzip(b"appended while the job ran\n")).unwrap();
    drop(f);
    signal("-CONT");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "the run succeeded over a changed input:\n{stderr}"
    );
    assert!(
        stderr.contains("log.gz") && stderr.contains("changed since the job was planned"),
        "{stderr}"
    );
}

/// Progress over a gzip file is against its compressed size and never passes 100%: the progress
/// lines printed when stderr is not a terminal, and `status` part-way through (it read "200.0 of
/// 157.7 MB mapped (127%)" when it compared decompressed bytes with the file's size).
#[test]
fn gzip_progress_is_against_the_compressed_size_and_never_past_100_percent() {
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("in.txt.gz");
    // zlib's default level: its fastest level (zlib-rs's static-Huffman "quick" strategy)
    // compresses this text too little for the check below.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&few_words(400_000, 6, 11)).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    let size = std::fs::metadata(&gz).unwrap().len();
    let job = guest("wordcount");
    let out = dir.path().join("out");
    let settings = ["--reducers", "1", "--slice-records", "50000"];
    // Killed before its third commit: two slices of one gzip shard are committed.
    let mut cmd = mr_host();
    cmd.args(run_args(&job, &gz, &out, &settings))
        .env("MR_FAILPOINT", "before-commit-map:3");
    let killed = cmd.output().unwrap();
    assert_eq!(killed.status.signal(), Some(9));
    let db = out.join("_mr/state.db");
    let doc: serde_json::Value =
        serde_json::from_slice(&run_ok(&["status", "1", "--db", s(&db), "--json"]).stdout).unwrap();
    assert_eq!(doc["input_bytes"], size);
    let read = doc["counters"]["bytes-in"].as_u64().unwrap();
    assert!(
        read > size,
        "the test needs more decompressed bytes than compressed: {doc:#}"
    );
    assert!(doc["mapped_bytes"].as_u64().unwrap() <= size, "{doc:#}");
    let text = String::from_utf8(run_ok(&["status", "1", "--db", s(&db)]).stdout).unwrap();
    let line = text.lines().find(|l| l.contains("mapped")).unwrap();
    let percent: f64 = line
        .rsplit('(')
        .next()
        .and_then(|p| p.strip_suffix("%)"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no percentage in {line:?}"));
    assert!(percent <= 100.0, "{text}");
    // The rerun, stderr a pipe: progress lines, in compressed megabytes, at most 100%.
    let mut cmd = mr_host();
    cmd.args(run_args(&job, &gz, &out, &settings))
        .env("MR_PROGRESS_SECONDS", "0.05");
    let rerun = cmd.output().unwrap();
    assert!(rerun.status.success());
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("mr: map "))
        .collect();
    assert!(!lines.is_empty(), "no progress line:\n{stderr}");
    let total = format!("of {:.1} MB", size as f64 / 1e6);
    for line in &lines {
        assert!(line.contains(&total), "{line} (expected {total})");
        let percent: f64 = line
            .split('(')
            .nth(1)
            .and_then(|p| p.split("%)").next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no percentage in {line:?}"));
        assert!(percent <= 100.0, "{line}");
    }
}

/// `data` as a BGZF file (bgzip's layout): gzip members of at most 64 KiB of text, each with
/// the `BC` extra field giving its size, then the empty end-of-file member.
fn bgzf(data: &[u8]) -> Vec<u8> {
    let chunks = data.chunks(mr_io::bgzf::MEMBER_TEXT_BYTES);
    chunks
        .chain([&[][..]])
        .flat_map(|chunk| mr_io::bgzf::encode_member(chunk, flate2::Compression::fast()).unwrap())
        .collect()
}

/// The output's part files, byte for byte.
fn part_bytes(dir: &Path) -> Vec<Vec<u8>> {
    parts(dir)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// A BGZF file is split into shards at member boundaries and read by several workers at once;
/// word count over it (text and JSONL) equals word count over the plain file byte for byte, for
/// any shard count, and after a run killed between slices is resumed.
#[test]
fn wordcount_over_split_bgzf_equals_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = text(60_000);
    let jsonl: String = text.lines().map(|l| format!("\"{l}\"\n")).collect();
    let job = guest("wordcount");
    for (plain, packed, data) in [
        ("t.txt", "t.txt.gz", text.as_bytes()),
        ("j.jsonl", "j.jsonl.gz", jsonl.as_bytes()),
    ] {
        std::fs::write(d.join(plain), data).unwrap();
        std::fs::write(d.join(packed), bgzf(data)).unwrap();
        let base = ["--reducers", "3", "--workers", "2"];
        let p = |n: &str| d.join(n).display().to_string();
        let with = |shards: &'static str| {
            let mut a = base.to_vec();
            a.extend(["--shards", shards, "--json"]);
            a
        };
        let summary = run(&args(
            &job,
            &[p(plain)],
            &d.join(format!("{plain}.out")),
            &with("1"),
        ));
        assert!(summary.status.success());
        let expected = part_bytes(&d.join(format!("{plain}.out")));
        assert!(expected.iter().map(Vec::len).sum::<usize>() > 1000);
        for shards in ["1", "4", "7"] {
            let out = d.join(format!("{packed}.{shards}"));
            let summary = run(&args(&job, &[p(packed)], &out, &with(shards)));
            let v: serde_json::Value = serde_json::from_slice(&summary.stdout).unwrap();
            assert_eq!(
                v["shards"],
                shards.parse::<u64>().unwrap(),
                "{packed}: shards planned"
            );
            assert_eq!(part_bytes(&out), expected, "{packed}, {shards} shards");
            assert_eq!(manifest(&out)["counters"]["records-in"], 60_000);
        }
        // Killed before its third slice commit (small slices), then resumed from the cursors.
        let out = d.join(format!("{packed}.killed"));
        let mut extra = with("4");
        extra.extend(["--slice-records", "4000"]);
        let mut cmd = mr_host();
        cmd.args(args(&job, &[p(packed)], &out, &extra))
            .env("MR_FAILPOINT", "before-commit-map:3");
        let killed = cmd.output().unwrap();
        assert_eq!(killed.status.signal(), Some(9), "{packed}");
        run(&args(&job, &[p(packed)], &out, &extra));
        assert_eq!(part_bytes(&out), expected, "{packed}, resumed");
    }
}
