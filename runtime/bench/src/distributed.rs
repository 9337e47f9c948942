//! `mr-bench distributed`: what the many-host setup costs on one machine.
//!
//! The word count over `--size` bytes of text, timed as child processes like the main
//! benchmark, three ways:
//! 1. `mr-host run --workers W` with a SQLite store and local files (the single-machine shape);
//! 2. `submit` to a PostgreSQL store with the input and output in an S3-compatible server, then
//!    one `mr-host worker --workers W` ("one host");
//! 3. the same with three `mr-host worker --workers 1` processes, each with its own scratch
//!    directory ("three hosts" sharing the machine's cores).
//!
//! Both servers are real and local: a throwaway PostgreSQL (`initdb`/`pg_ctl`, full durability:
//! every commit waits for its WAL fsync) and `s3s-fs` over a directory (scripts/setup-services.sh
//! installs both). Every output is compared byte for byte with the first's.
//!
//! Then the commit latency of one slice, measured through the store's own API: a map task
//! committing `--commits` slices, each naming `R` run files and a dozen counters (what a real
//! slice commits), on SQLite and on PostgreSQL; the median and 99th percentile.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use mr_io::test_server::S3Server;
use mr_store::testing::{PgServer, PgServerOptions};
use mr_store::{Acquired, JobStore, NewJob, OutputFile, SliceCommit, StoreLocation};

use crate::measure;

/// `mr-bench distributed`'s options.
#[derive(clap::Args)]
pub struct DistributedArgs {
    /// Input size (K/M/G = powers of 1024).
    #[arg(long, default_value = "1G", value_parser = mr_corpus::parse_size)]
    size: u64,
    /// Worker threads of the single-machine run and of the one-host run.
    #[arg(long, default_value_t = 2)]
    workers: u32,
    /// Reduce partitions.
    #[arg(long, default_value_t = 4)]
    reducers: u32,
    /// Where inputs, outputs and the servers' files go (inputs are reused when present).
    #[arg(long, default_value = "target/bench-data")]
    data: PathBuf,
    /// Slice commits timed per store.
    #[arg(long, default_value_t = 300)]
    commits: u32,
    /// The mr-host binary [default: build it].
    #[arg(long)]
    pub mr_host: Option<PathBuf>,
}

/// Writes the side file in which s3s-fs keeps an object's ETag (MD5) when the object is PUT.
/// An object placed in its directory by hand has none, and s3s-fs then hashes the whole object
/// on every GET: each of mr's 8 MiB ranged reads of a 1 GiB input would cost an MD5 of 1 GiB,
/// and the benchmark would measure that instead of mr. (Layout of the pinned s3s-fs 0.14.1.)
fn record_e_tag(root: &Path, bucket: &str, key: &str, object: &Path) -> Result<()> {
    let out = Command::new("md5sum")
        .arg(object)
        .output()
        .context("cannot run md5sum")?;
    if !out.status.success() {
        bail!("md5sum {} failed", object.display());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let md5 = text.split_whitespace().next().unwrap_or_default();
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let info = root.join(format!(
        ".bucket-{}.object-{}.internal.json",
        b64(bucket),
        b64(key)
    ));
    std::fs::write(&info, serde_json::json!({ "e_tag": md5 }).to_string())?;
    Ok(())
}

/// Puts `from` at `to` by a hard link (a 1 GiB input is not copied), or a copy across
/// filesystems.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// One timed way of running the job.
struct Timed {
    name: String,
    wall: f64,
    cpu: f64,
    /// CPU seconds the S3 server spent serving it.
    s3_cpu: f64,
}

/// Runs the benchmark (see the module); Ok(false) when an output differs.
pub fn run(args: DistributedArgs, host: PathBuf, wordcount: PathBuf) -> Result<bool> {
    std::fs::create_dir_all(&args.data)?;
    let data = args.data.canonicalize()?;
    let input = crate::data::wordcount_input(&data.join("inputs"), args.size)?;
    let root = data.join("distributed");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("s3/bucket/in"))?;
    // The S3 server serves a directory: the input goes in by a hard link, not a copy.
    let object = root.join("s3/bucket/in/corpus.txt");
    link_or_copy(&input, &object)?;
    record_e_tag(&root.join("s3"), "bucket", "in/corpus.txt", &object)?;
    let s3 =
        S3Server::start(&root.join("s3"), None, "127.0.0.1", None).map_err(anyhow::Error::msg)?;
    let pg = PgServer::start(&PgServerOptions::default()).map_err(anyhow::Error::msg)?;
    let settings = ["--reducers".to_owned(), args.reducers.to_string()];
    let mut rows = Vec::new();

    // 1. One process, SQLite and local files.
    let local = root.join("local");
    let mut command = Command::new(&host);
    command
        .arg("run")
        .arg(&wordcount)
        .arg("-i")
        .arg(&input)
        .arg("-o")
        .arg(&local)
        .args(["--workers", &args.workers.to_string()])
        .args(&settings);
    let (wall, cpu) = measure::timed(&mut command, "mr-host run", &root.join("run.stderr"))?;
    rows.push(Timed {
        name: format!(
            "SQLite + local files, 1 process, --workers {}",
            args.workers
        ),
        wall,
        cpu,
        s3_cpu: 0.0,
    });

    // 2 to 4. PostgreSQL and object storage: local objects, then the S3 server with one host of
    // W threads and three hosts of one each.
    let mut same = true;
    // The object-store protocol without an HTTP server: `file://` URLs go through the same
    // object_store code (ranged reads, uploads, server-side copies, `_MANIFEST` last) on its
    // local backend, so this row is mr's own cost of PostgreSQL plus object storage.
    let files = root.join("objects");
    std::fs::create_dir_all(files.join("in"))?;
    link_or_copy(&input, &files.join("in/corpus.txt"))?;
    let file_url = |rest: &str| format!("file://{}/{rest}", files.display());
    let setups = [
        (
            format!(
                "PostgreSQL + file:// objects, 1 worker process, --workers {}",
                args.workers
            ),
            file_url("in/"),
            file_url("out/"),
            files.join("out"),
            1u32,
            args.workers,
        ),
        (
            format!(
                "PostgreSQL + S3, 1 worker process, --workers {}",
                args.workers
            ),
            "s3://bucket/in/".to_owned(),
            "s3://bucket/out-1/".to_owned(),
            root.join("s3/bucket/out-1"),
            1,
            args.workers,
        ),
        (
            "PostgreSQL + S3, 3 worker processes (\"hosts\"), --workers 1 each".to_owned(),
            "s3://bucket/in/".to_owned(),
            "s3://bucket/out-3/".to_owned(),
            root.join("s3/bucket/out-3"),
            3,
            1,
        ),
    ];
    for (name, input_url, output_url, written, hosts, threads) in setups {
        let url = pg.fresh_store_url();
        let s3_before = measure::cpu_of(s3.pid()).unwrap_or(0.0);
        let started = Instant::now();
        let mut submit = Command::new(&host);
        submit
            .arg("submit")
            .arg(&wordcount)
            .args(["-i", &input_url, "-o", &output_url, "--db", &url])
            .args(&settings);
        submit.envs(s3.env());
        let submitted = submit.output()?;
        if !submitted.status.success() {
            bail!(
                "mr-host submit failed ({name}): {}",
                String::from_utf8_lossy(&submitted.stderr)
            );
        }
        let mut children = Vec::new();
        let mut cpu = 0.0;
        for h in 0..hosts {
            let mut worker = Command::new(&host);
            worker
                .args(["worker", "--db", &url, "--workers", &threads.to_string()])
                .arg("--work-dir")
                .arg(root.join(format!("scratch-{}-{h}", rows.len())));
            worker.envs(s3.env());
            let log = root.join(format!("worker-{}-{h}.stderr", rows.len()));
            children.push(std::thread::spawn(move || {
                measure::timed(&mut worker, "mr-host worker", &log)
            }));
        }
        for child in children {
            cpu += child.join().expect("worker thread")?.1;
        }
        let wall = started.elapsed().as_secs_f64();
        rows.push(Timed {
            name,
            wall,
            cpu,
            s3_cpu: measure::cpu_of(s3.pid()).unwrap_or(0.0) - s3_before,
        });
        same &= same_parts(&local, &written)?;
    }

    let commits_sqlite = commit_latencies(
        &StoreLocation::parse(&root.join("latency.db").display().to_string()),
        args.commits,
        args.reducers,
    )?;
    let commits_pg = commit_latencies(
        &StoreLocation::parse(&pg.fresh_store_url()),
        args.commits,
        args.reducers,
    )?;

    let base = rows[0].wall;
    let mut text = format!(
        "## Distributed word count, {} of text, {} reducers\n\n| setup | wall s | mr CPU s | S3 server CPU s | wall vs SQLite + local |\n|---|---|---|---|---|\n",
        crate::human_size(args.size),
        args.reducers
    );
    for row in &rows {
        text.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} × |\n",
            row.name,
            row.wall,
            row.cpu,
            row.s3_cpu,
            row.wall / base
        ));
    }
    text.push_str(&format!(
        "\nOutputs {}.\n\n### One slice commit ({} commits, {} run files and 12 counters each)\n\n| store | median ms | p99 ms |\n|---|---|---|\n| SQLite (WAL, synchronous=FULL) | {:.2} | {:.2} |\n| PostgreSQL (local, synchronous_commit=on) | {:.2} | {:.2} |\n",
        if same {
            "equal, byte for byte"
        } else {
            "DIFFER"
        },
        args.commits,
        args.reducers,
        commits_sqlite.0,
        commits_sqlite.1,
        commits_pg.0,
        commits_pg.1
    ));
    println!("{text}");
    std::fs::write(data.join("distributed.md"), &text)?;
    Ok(same)
}

/// Whether every `part-*` of `local` is, byte for byte, the same-named file in `objects`.
fn same_parts(local: &Path, objects: &Path) -> Result<bool> {
    let mut same = true;
    let mut parts = 0;
    for entry in std::fs::read_dir(local)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if !name.starts_with("part-") {
            continue;
        }
        parts += 1;
        let theirs = std::fs::read(objects.join(&name)).unwrap_or_default();
        if std::fs::read(&path)? != theirs {
            eprintln!(
                "mr-bench: {} differs from {}",
                objects.join(&name).display(),
                path.display()
            );
            same = false;
        }
    }
    Ok(same && parts > 0 && objects.join("_MANIFEST").is_file())
}

/// (median, p99) in ms of `n` slice commits of one map task on the store at `location`.
fn commit_latencies(location: &StoreLocation, n: u32, reducers: u32) -> Result<(f64, f64)> {
    let mut store: Box<dyn JobStore> = mr_store::open(location)?;
    let (job, _) = store.create_job(&NewJob {
        name: "latency",
        fingerprint: "latency",
        output: "/latency",
        spec: "{}",
        map_tasks: 1,
        reduce_tasks: reducers,
    })?;
    let mut lease = match store.acquire(job, "bench:1:1#0", 600_000, &|_| false)? {
        Acquired::Lease(lease) => lease,
        other => bail!("expected a lease, got {other:?}"),
    };
    let counters: Vec<(String, i64)> = (0..12).map(|i| (format!("counter-{i}"), 1000)).collect();
    let mut times = Vec::with_capacity(n as usize);
    for slice in 0..n {
        let outputs: Vec<OutputFile> = (0..reducers)
            .map(|part| OutputFile {
                path: format!("_mr/work/m00000-s{slice:05}-r{part:05}.run"),
                part,
                bytes: 1 << 20,
                records: 10_000,
                checksum: format!("{:016x}", u64::from(slice) << 8 | u64::from(part)),
            })
            .collect();
        let cursor = (u64::from(slice) * 1000).to_string();
        let commit = SliceCommit {
            cursor: &cursor,
            outputs: &outputs,
            counters: &counters,
            last: false,
            max_job_counters: None,
            answers_split: false,
            split: None,
        };
        let started = Instant::now();
        store.commit_slice(&mut lease, &commit)?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Ok((at(0.5), at(0.99)))
}
