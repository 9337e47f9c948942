//! The durable job commands: `run`, `submit`, `worker`, `resume` and `status`.
//!
//! All of them work on a job store (SQLite). `run` and `submit` keep it in
//! `OUTPUT/_mr/state.db` unless `--db` names another file; `worker`, `resume` and `status` take
//! `--db` (or, for `status`, `--output`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::progress;

/// What defines a job: the component, its inputs and parameters, and how it is planned.
#[derive(clap::Args)]
pub struct JobArgs {
    /// The job component (.wasm), or a job project directory (built first when its sources
    /// changed since its last build).
    job: PathBuf,
    /// Inputs, repeatable: files, directories (read recursively) or glob patterns, read by
    /// extension (.gz, .zip, .jsonl, .csv, else lines), or `zip:`, `zip-members:`, `jsonl:`,
    /// `csv:`, `lines:` PATH, `sqlite:DB?table=T` / `sqlite:DB?query=SQL&key=COL`,
    /// `random:count=N,length=L,seed=S`, `range:A..B` (see the README).
    #[arg(short, long = "input", required = true, num_args = 1..)]
    inputs: Vec<String>,
    /// Output directory (must be empty or absent for a new job; rerunning the same command on
    /// it resumes the job).
    #[arg(short, long)]
    output: PathBuf,
    /// The job store: a SQLite file, or `postgres://USER@HOST:PORT/DB` [default:
    /// OUTPUT/_mr/state.db].
    #[arg(long)]
    db: Option<String>,
    /// Number of input shards [default: 4 per core].
    #[arg(long)]
    shards: Option<u32>,
    /// Number of reduce partitions, i.e. output part files (at most 65536) [default: one per
    /// core].
    #[arg(long)]
    reducers: Option<u32>,
    /// Job parameter; repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Discard what the output directory (and the store, for this output) holds, and start over.
    #[arg(long)]
    overwrite: bool,
    /// Input bytes handed to the guest per map call [default: 4M].
    #[arg(long, value_parser = parse_size)]
    batch_size: Option<u64>,
    /// A map slice (the unit of commit and retry) ends after this many input bytes
    /// [default: 32M].
    #[arg(long, value_parser = parse_size)]
    slice_size: Option<u64>,
    /// ... or after this many records [default: no limit].
    #[arg(long)]
    slice_records: Option<u64>,
    /// ... or after this many seconds, 0 for no time bound [default: 60].
    #[arg(long)]
    slice_seconds: Option<u64>,
    /// Longest input record accepted [default: 64M].
    #[arg(long, value_parser = parse_size)]
    max_record_bytes: Option<u64>,
    /// Failed attempts of one task before the job fails [default: 4].
    #[arg(long)]
    max_attempts: Option<u32>,
    /// Where records go: `text` (part files), `jsonl` (part files of JSON values), `jsonl-kv`
    /// (part files of `{"key": ..., "value": ...}` objects), or
    /// `sqlite:DB?table=T[&mode=insert|upsert][&shape=kv|object]` [default: text].
    #[arg(long, value_name = "SPEC")]
    sink: Option<String>,
    /// Also concatenate the part files, in order, into OUTPUT/NAME [NAME default: output].
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "output")]
    compose: Option<String>,
    /// Skip up to N bad input records (logged to OUTPUT/_bad_records, counted in
    /// `bad-records`); one more fails the job [default: 0, fail on the first].
    #[arg(long, value_name = "N")]
    max_bad_records: Option<u64>,
    /// Largest decompressed/compressed size ratio accepted from gzip and zip input
    /// [default: 1000].
    #[arg(long, value_name = "RATIO")]
    max_inflate_ratio: Option<u64>,
    /// Most distinct counter names the job may use; more fails the job (a job that names
    /// counters after its data floods status and _MANIFEST) [default: 1000].
    #[arg(long, value_name = "N")]
    max_counters: Option<u32>,
    /// Longest counter name the job may use, in bytes; a longer one fails the job
    /// [default: 256].
    #[arg(long, value_name = "BYTES")]
    max_counter_name_bytes: Option<u32>,
    /// When the job is done, failed or cancelled, POST its summary JSON to this URL (retried
    /// with backoff; delivered once, by whichever mr-host process sees the job end).
    #[arg(long, value_name = "URL")]
    notify: Option<String>,
    /// When the job is done, failed or cancelled, run this shell command with its summary JSON
    /// on stdin (MR_JOB_ID, MR_JOB_NAME, MR_JOB_PHASE set; delivered once, like --notify).
    #[arg(long, value_name = "CMD")]
    on_done: Option<String>,
    /// A quick run: only the first N records of each shard reach the job (a separate job from
    /// the full run, in its own output directory)
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// A quick run: only this fraction of the records reaches the job (e.g. 0.01), chosen by a
    /// hash of each record's location, so the same records every time
    #[arg(long, value_name = "FRACTION")]
    sample: Option<f64>,
    /// Keep the map output and the shuffle's runs (OUTPUT/_mr/work/*.run) when the job is
    /// done, to read with `mr-host dump` (they take about as much disk as the map output).
    #[arg(long)]
    debug: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

/// The sandbox's limits on every guest call (see the README's "Limits" section).
#[derive(clap::Args, Clone)]
pub struct LimitArgs {
    /// Maximum guest linear memory per instance (one per worker thread); growing past it fails
    /// the call [default: half the machine's memory shared by the worker threads, between 256M
    /// and 4G].
    #[arg(long, value_parser = parse_size)]
    memory_limit: Option<u64>,
    /// Longest one guest call may run, in seconds (0: no limit). Enforced by epoch
    /// interruption, with 10 ms resolution.
    #[arg(long, default_value_t = 60.0)]
    call_timeout: f64,
    /// Largest result one guest call may return; refused before it is copied.
    #[arg(long, default_value = "256M", value_parser = parse_size)]
    max_output_bytes: u64,
    /// Wasm stack per call; deeper recursion traps with a stack overflow.
    #[arg(long, default_value = "1M", value_parser = parse_size)]
    max_wasm_stack: u64,
    /// Fuel (about one unit per wasm instruction) one guest call may burn: a deterministic
    /// budget, at a cost in throughput [default: no fuel limit].
    #[arg(long)]
    fuel: Option<u64>,
}

impl LimitArgs {
    /// The runtime for `workers` worker threads (the default memory limit depends on them).
    pub fn runtime(&self, workers: Option<u32>) -> Result<Arc<mr_engine::Runtime>> {
        if !(self.call_timeout >= 0.0 && self.call_timeout.is_finite()) {
            bail!("--call-timeout must be a number of seconds, 0 for no limit");
        }
        if self.fuel == Some(0) {
            bail!("--fuel must be at least 1");
        }
        if !((1 << 10)..=(2 << 30)).contains(&self.max_output_bytes) {
            bail!("--max-output-bytes must be between 1K and 2G");
        }
        if !((64 << 10)..=(64 << 20)).contains(&self.max_wasm_stack) {
            bail!("--max-wasm-stack must be between 64K and 64M");
        }
        let options = mr_engine::RuntimeOptions {
            memory_limit: usize::try_from(
                self.memory_limit
                    .unwrap_or_else(|| default_memory_limit(workers.unwrap_or_else(cores))),
            )
            .context("--memory-limit is too large")?,
            call_timeout: (self.call_timeout > 0.0)
                .then(|| Duration::from_secs_f64(self.call_timeout)),
            fuel: self.fuel,
            max_output_bytes: usize::try_from(self.max_output_bytes)
                .context("--max-output-bytes is too large")?,
            max_wasm_stack: self.max_wasm_stack as usize,
            ..Default::default()
        };
        Ok(mr_engine::Runtime::new(options)?)
    }
}

/// How this process works on jobs.
#[derive(clap::Args)]
pub struct WorkerArgs {
    /// Worker threads [default: available cores].
    #[arg(long)]
    workers: Option<u32>,
    /// Lease duration in seconds: a worker that stops heartbeating loses its tasks after this
    /// long, and another worker takes them over.
    #[arg(long, default_value_t = 30.0)]
    lease_seconds: f64,
    /// Memory for the shuffle, shared by the worker threads: map output is buffered up to each
    /// thread's share and then spilled to disk as sorted runs; a reduce merges at most as many
    /// runs at once as its share holds (about 128 KiB each), in several passes if needed. Going
    /// over it spills, it never fails the job. Guest memory is separate (--memory-limit).
    #[arg(long, default_value = "256M", value_parser = parse_size)]
    memory: u64,
    /// Scratch directory for jobs whose output is in object storage (their work files are
    /// written here, then uploaded; other workers' committed files are downloaded here)
    /// [default: $MR_WORK_DIR, else TMPDIR/mr-work].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Never split a running map task, nor help one. By default a worker thread that finds no task to take
    /// asks the map task with the most unread input to give about half of it to a new task
    /// (cut in plain text, where a later slice would start anyway), so one slow shard does not
    /// leave the other workers idle; where input cannot be split (a gzip member, a zip member,
    /// a table), the idle thread maps batches for the task instead. --no-split turns
    /// both off. The output, _MANIFEST included, is the same either way.
    #[arg(long)]
    no_split: bool,
}

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    job: JobArgs,
    #[command(flatten)]
    worker: WorkerArgs,
    /// Print the summary as JSON on stdout (a failure as `{"error": ..., "job": ID}`).
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    job: JobArgs,
}

#[derive(clap::Args)]
pub struct WorkArgs {
    /// The job store: a SQLite file, or `postgres://USER@HOST:PORT/DB`.
    #[arg(long)]
    db: String,
    /// Work on this job only [default: every unfinished job in the store].
    #[arg(long)]
    job: Option<i64>,
    /// Keep serving: when no job has work left, wait for new jobs instead of exiting.
    #[arg(long, conflicts_with = "job")]
    follow: bool,
    #[command(flatten)]
    worker: WorkerArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(clap::Args)]
pub struct ResumeArgs {
    /// The job id (as `submit` printed it).
    pub job: i64,
    /// The job store: a SQLite file, or `postgres://USER@HOST:PORT/DB`.
    #[arg(long)]
    db: String,
    #[command(flatten)]
    worker: WorkerArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// Print the summary as JSON on stdout (a failure as `{"error": ..., "job": ID}`).
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// The job id [default: every job in the store].
    pub job: Option<i64>,
    /// The job store: a SQLite file, or `postgres://USER@HOST:PORT/DB`.
    #[arg(long, conflicts_with = "output")]
    db: Option<String>,
    /// The job's output directory (its store is OUTPUT/_mr/state.db).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// How many recent events to show.
    #[arg(long, default_value_t = 10)]
    events: u32,
    /// Also list every task: state, attempt, failures, slices, holder and its own counters.
    #[arg(long)]
    tasks: bool,
    /// Print JSON on stdout (a failure as `{"error": ..., "job": ID}`).
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct CancelArgs {
    /// The job id.
    job: i64,
    /// The job store: a SQLite file, or `postgres://USER@HOST:PORT/DB`.
    #[arg(long)]
    db: String,
}

#[derive(clap::Args)]
pub struct DeleteArgs {
    /// The job id.
    job: i64,
    /// The job store: a SQLite file, or `postgres://USER@HOST:PORT/DB`.
    #[arg(long)]
    db: String,
    /// Also remove what the job wrote to its output directory (part files, _MANIFEST,
    /// _bad_records, the composed file; the directory when nothing else is left in it).
    #[arg(long)]
    output: bool,
}

fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// The default `--memory-limit`: the guests of all worker threads together may use half the
/// machine's memory (the rest is the shuffle's `--memory`, the host and everything else), at
/// least 256 MiB and at most 4 GiB (wasm32's whole address space) per instance.
fn default_memory_limit(workers: u32) -> u64 {
    let total = physical_memory().unwrap_or(8 << 30);
    (total / (2 * u64::from(workers.max(1)))).clamp(256 << 20, 4 << 30)
}

/// The machine's memory, from `/proc/meminfo` (Linux); `None` elsewhere.
fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib << 10)
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    mr_corpus::parse_size(s)
}

/// A runtime with the default limits (for commands that only load and describe a job).
pub fn default_runtime() -> Result<Arc<mr_engine::Runtime>> {
    Ok(mr_engine::Runtime::new(
        mr_engine::RuntimeOptions::default(),
    )?)
}

impl JobArgs {
    fn db(&self) -> Result<mr_store::StoreLocation> {
        match &self.db {
            Some(db) => Ok(mr_store::StoreLocation::parse(db)),
            None if self.output.to_str().is_some_and(mr_io::objects::is_url) => {
                bail!(
                    "--output {} is in object storage, where the job store cannot live: pass --db (a SQLite file, or postgres://USER@HOST/DB for workers on several hosts)",
                    self.output.display()
                )
            }
            None => Ok(mr_store::StoreLocation::file(&mr_exec::default_store_path(
                &self.output,
            ))),
        }
    }

    /// The job's settings as the API takes them too ([`mr_exec::SubmitSpec`]).
    fn spec(&self) -> Result<mr_exec::SubmitSpec> {
        let mut params = BTreeMap::new();
        for p in &self.params {
            let Some((k, v)) = p.split_once('=') else {
                bail!("--param {p:?} must have the form KEY=VALUE");
            };
            params.insert(k.to_owned(), v.to_owned());
        }
        Ok(mr_exec::SubmitSpec {
            inputs: self.inputs.clone(),
            output: self.output.clone(),
            shards: self.shards,
            reducers: self.reducers,
            params,
            overwrite: self.overwrite,
            batch_size: self.batch_size,
            slice_size: self.slice_size,
            slice_records: self.slice_records,
            slice_seconds: self.slice_seconds,
            max_record_bytes: self.max_record_bytes,
            max_attempts: self.max_attempts,
            sink: self.sink.clone(),
            compose: self.compose.clone(),
            max_bad_records: self.max_bad_records,
            max_inflate_ratio: self.max_inflate_ratio,
            max_counters: self.max_counters,
            max_counter_name_bytes: self.max_counter_name_bytes,
            notify: self.notify.clone(),
            on_done: self.on_done.clone(),
            limit: self.limit,
            sample: self.sample,
            debug: self.debug,
            // --memory-limit and --call-timeout set this process's runtime (see LimitArgs); a
            // job's own, tighter limits come from a pipeline stage or the API.
            memory_limit: None,
            call_timeout: None,
        })
    }

    /// The request, with a runtime for `workers` threads (when this process will run it).
    fn request(&self, workers: Option<u32>) -> Result<mr_exec::JobRequest> {
        let spec = self.spec()?;
        let component = crate::build::stale::resolve_job(&self.job)?;
        let job = self.limits.runtime(workers)?.load(&component)?;
        Ok(spec.request(job)?)
    }
}

impl WorkerArgs {
    pub fn options(&self, only_job: Option<i64>) -> Result<mr_exec::WorkerOptions> {
        if self.workers == Some(0) {
            bail!("--workers must be at least 1");
        }
        if !(self.lease_seconds > 0.0 && self.lease_seconds.is_finite()) {
            bail!("--lease-seconds must be a positive number of seconds");
        }
        let defaults = mr_exec::WorkerOptions::default();
        Ok(mr_exec::WorkerOptions {
            workers: self.workers.unwrap_or(defaults.workers),
            lease: Duration::from_secs_f64(self.lease_seconds),
            only_job,
            only_pipeline: None,
            memory: self.memory,
            follow: None,
            scratch: self
                .work_dir
                .clone()
                .unwrap_or_else(mr_exec::default_scratch),
            split_stragglers: !self.no_split,
        })
    }
}

/// The job `run` submitted (or found), once it is known: what a `--json` error names.
pub static RUN_JOB: std::sync::OnceLock<i64> = std::sync::OnceLock::new();

/// Submits the job (or finds it planned before), works on it until it ends and prints its
/// summary. A job that was already done is not run again: a line on stderr says so before its
/// summary. Ctrl-C stops the process with a message saying how to resume (exit status 130).
pub fn run(args: RunArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let options = args.worker.options(None)?;
    let db = args.job.db()?;
    let request = args.job.request(Some(options.workers))?;
    let submitted = mr_exec::submit(&db, &request)?;
    let id = submitted.id;
    let _ = RUN_JOB.set(id);
    let already_done =
        !submitted.created && mr_store::open(&db)?.job(id)?.phase == mr_store::Phase::Done;
    let mut summary = if already_done {
        eprintln!("job {id} is already done (nothing was run); its summary:");
        mr_exec::summary(&db, id)?
    } else {
        crate::interrupt::on_interrupt(id);
        let options = mr_exec::WorkerOptions {
            only_job: Some(id),
            ..options
        };
        let bar = progress::Bar::new();
        let worked = mr_exec::work(&db, &options, &request.job.runtime(), Some(bar.sink()));
        bar.finish();
        worked?;
        mr_exec::summary(&db, id)?
    };
    summary.this_run_seconds = Some(if already_done {
        0.0
    } else {
        started.elapsed().as_secs_f64()
    });
    summary.already_done = Some(already_done);
    print(&summary, args.json)
}

pub fn submit(args: SubmitArgs) -> Result<()> {
    let db = args.job.db()?;
    let request = args.job.request(None)?;
    let submitted = mr_exec::submit(&db, &request)?;
    println!("{}", submitted.id);
    eprintln!(
        "{} job {} in {}; run it with: mr-host worker --db {}",
        if submitted.created {
            "submitted"
        } else {
            "already planned:"
        },
        submitted.id,
        db,
        db
    );
    Ok(())
}

pub fn worker(args: WorkArgs) -> Result<()> {
    let db = store_location(&args.db)?;
    let mut options = args.worker.options(args.job)?;
    if args.follow {
        options.follow = Some(mr_exec::Follow {
            idle_poll: Duration::from_secs(1),
            stop: Default::default(),
        });
    }
    let runtime = args.limits.runtime(Some(options.workers))?;
    let report = mr_exec::work(&db, &options, &runtime, None)?;
    eprintln!(
        "worker done: {} tasks completed, {} failed attempts, {} refused commits",
        report.tasks, report.failed_attempts, report.refused
    );
    for (job, why) in &report.skipped {
        eprintln!("skipped job {job}, which this worker cannot run: {why}");
    }
    Ok(())
}

pub fn resume(args: ResumeArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let db = store_location(&args.db)?;
    let options = args.worker.options(Some(args.job))?;
    let bar = progress::Bar::new();
    let worked = mr_exec::work(
        &db,
        &options,
        &args.limits.runtime(Some(options.workers))?,
        Some(bar.sink()),
    );
    bar.finish();
    worked?;
    let mut summary = mr_exec::summary(&db, args.job)?;
    summary.this_run_seconds = Some(started.elapsed().as_secs_f64());
    print(&summary, args.json)
}

/// Cancels a job: its workers stop at their next batch boundary, nothing more is committed,
/// no `_MANIFEST` is written. Then delivers its completion hooks (this process saw it end).
pub fn cancel(args: CancelArgs) -> Result<()> {
    let db = store_location(&args.db)?;
    match mr_exec::cancel(&db, args.job)? {
        mr_store::Cancelled::Now => eprintln!("job {} cancelled", args.job),
        mr_store::Cancelled::AlreadyOver(phase) => {
            bail!(
                "job {} had already ended ({phase}); nothing to cancel",
                args.job
            )
        }
    }
    let mut store = mr_store::open(&db)?;
    mr_exec::deliver_hooks(store.as_mut(), args.job, &mr_exec::HookPolicy::default())?;
    Ok(())
}

/// Deletes a job's rows and work files (and with `--output` its output), cancelling it first
/// if it is running.
pub fn delete(args: DeleteArgs) -> Result<()> {
    let db = store_location(&args.db)?;
    let deleted = mr_exec::delete(&db, args.job, args.output)?;
    if deleted.cancelled {
        eprintln!("job {} was running: cancelled it first", args.job);
    }
    for path in &deleted.removed {
        eprintln!("removed {}", path.display());
    }
    eprintln!("job {} deleted from {db}", args.job);
    Ok(())
}

/// The store `--db` names; a SQLite file must exist already (only `run` and `submit` create
/// one).
pub fn store_location(db: &str) -> Result<mr_store::StoreLocation> {
    let location = mr_store::StoreLocation::parse(db);
    if let Some(path) = location.path()
        && !path.is_file()
    {
        bail!(
            "job store {} does not exist; `mr-host submit` creates one (or pass the --db that `run` or `submit` used)",
            path.display()
        );
    }
    Ok(location)
}

fn print(summary: &mr_exec::Summary, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(summary)?);
    } else {
        progress::print_summary(summary);
    }
    Ok(())
}

/// The store a status command reads: `--db`, or the default store of the output directory
/// `--output` names (of a job, or a pipeline: `what`).
pub fn store_to_read(
    db: Option<&str>,
    output: Option<&std::path::Path>,
    what: &str,
) -> Result<mr_store::StoreLocation> {
    let db = match (db, output) {
        (Some(db), _) => db.to_owned(),
        (None, Some(out)) => mr_exec::default_store_path(out)
            .to_string_lossy()
            .into_owned(),
        (None, None) => {
            bail!("say which store: --db PATH, or --output DIR of a {what} run without --db")
        }
    };
    store_location(&db)
}

pub fn status(args: StatusArgs) -> Result<()> {
    let db = store_to_read(args.db.as_deref(), args.output.as_deref(), "job")?;
    let store = mr_store::open(&db)?;
    let ids: Vec<i64> = match args.job {
        Some(id) => vec![id],
        None => store.jobs()?.into_iter().map(|j| j.id).collect(),
    };
    let statuses = ids
        .into_iter()
        .map(|id| mr_exec::status_document(store.as_ref(), id, args.events, args.tasks))
        .collect::<Result<Vec<_>, _>>()?;
    if args.json {
        let value = if args.job.is_some() {
            serde_json::to_value(&statuses[0])?
        } else {
            serde_json::to_value(&statuses)?
        };
        return write_stdout(&(serde_json::to_string_pretty(&value)? + "\n"));
    }
    let mut text = String::new();
    if statuses.is_empty() {
        text = format!("no jobs in {db}\n");
    }
    for s in &statuses {
        text += &progress::format_status(s)?;
        text += &progress::format_hooks(&s.hooks);
        let tasks: Vec<_> = s.tasks.iter().map(|t| t.row.clone()).collect();
        text += &progress::format_tasks(&tasks)?;
    }
    write_stdout(&text)
}

/// Writes to stdout; a closed pipe (`mr-host status | head`) is not an error.
fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_memory_limit_shares_half_the_machine() {
        let total = physical_memory().expect("Linux has /proc/meminfo");
        let one = default_memory_limit(1);
        assert_eq!(one, (total / 2).clamp(256 << 20, 4 << 30));
        // More workers never get more each; a huge count bottoms out at 256 MiB.
        assert!(default_memory_limit(8) <= one);
        assert_eq!(default_memory_limit(100_000), 256 << 20);
        assert!(default_memory_limit(1) <= 4 << 30);
    }
}
