//! The durable job commands: `run`, `submit`, `worker`, `resume` and `status`.
//!
//! All of them work on a job store (SQLite). `run` and `submit` keep it in
//! `OUTPUT/_mr/state.db` unless `--db` names another file; `worker`, `resume` and `status` take
//! `--db` (or, for `status`, `--output`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
    /// The job store [default: OUTPUT/_mr/state.db].
    #[arg(long)]
    db: Option<PathBuf>,
    /// Number of input shards [default: 4 per core].
    #[arg(long)]
    shards: Option<u32>,
    /// Number of reduce partitions, i.e. output part files [default: one per core].
    #[arg(long)]
    reducers: Option<u32>,
    /// Job parameter; repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Discard what the output directory (and the store, for this output) holds, and start over.
    #[arg(long)]
    overwrite: bool,
    /// Input bytes handed to the guest per map call [default: 1M].
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
    /// Where records go: `text` (part files), `jsonl` (part files of JSON values), or
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
    #[command(flatten)]
    limits: LimitArgs,
}

/// The sandbox's limits on every guest call (see the README's "Limits" section).
#[derive(clap::Args, Clone)]
pub struct LimitArgs {
    /// Maximum guest linear memory per instance; growing past it fails the call.
    #[arg(long, default_value = "4G", value_parser = parse_size)]
    memory_limit: u64,
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
    pub fn runtime(&self) -> Result<Arc<mr_engine::Runtime>> {
        if !(self.call_timeout >= 0.0 && self.call_timeout.is_finite()) {
            bail!("--call-timeout must be a number of seconds, 0 for no limit");
        }
        if self.fuel == Some(0) {
            bail!("--fuel must be at least 1");
        }
        if !((64 << 10)..=(64 << 20)).contains(&self.max_wasm_stack) {
            bail!("--max-wasm-stack must be between 64K and 64M");
        }
        let options = mr_engine::RuntimeOptions {
            memory_limit: usize::try_from(self.memory_limit)
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
}

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    job: JobArgs,
    #[command(flatten)]
    worker: WorkerArgs,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    job: JobArgs,
}

#[derive(clap::Args)]
pub struct WorkArgs {
    /// The job store.
    #[arg(long)]
    db: PathBuf,
    /// Work on this job only [default: every unfinished job in the store].
    #[arg(long)]
    job: Option<i64>,
    #[command(flatten)]
    worker: WorkerArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(clap::Args)]
pub struct ResumeArgs {
    /// The job id (as `submit` printed it).
    job: i64,
    /// The job store.
    #[arg(long)]
    db: PathBuf,
    #[command(flatten)]
    worker: WorkerArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// The job id [default: every job in the store].
    job: Option<i64>,
    /// The job store.
    #[arg(long, conflicts_with = "output")]
    db: Option<PathBuf>,
    /// The job's output directory (its store is OUTPUT/_mr/state.db).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// How many recent events to show.
    #[arg(long, default_value_t = 10)]
    events: u32,
    /// Also list every task: state, attempt, failures, slices, holder and its own counters.
    #[arg(long)]
    tasks: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_size(s: &str) -> Result<u64, String> {
    mr_corpus::parse_size(s)
}

/// A runtime with the default limits (for commands that only load and describe a job).
pub fn default_runtime() -> Result<Arc<mr_engine::Runtime>> {
    Ok(mr_engine::Runtime::new(
        mr_engine::RuntimeOptions::default(),
    )?)
}

impl JobArgs {
    fn db(&self) -> PathBuf {
        self.db
            .clone()
            .unwrap_or_else(|| mr_exec::default_store_path(&self.output))
    }

    fn request(&self) -> Result<mr_exec::JobRequest> {
        let mut params = BTreeMap::new();
        for p in &self.params {
            let Some((k, v)) = p.split_once('=') else {
                bail!("--param {p:?} must have the form KEY=VALUE");
            };
            params.insert(k.to_owned(), v.to_owned());
        }
        let component = crate::build::stale::resolve_job(&self.job)?;
        let job = self.limits.runtime()?.load(&component)?;
        let job = job.with_params(&params).map_err(anyhow::Error::msg)?;
        if self.reducers == Some(0) {
            bail!("--reducers must be at least 1");
        }
        if let Some(b) = self.batch_size
            && !(1024..=(256 << 20)).contains(&b)
        {
            bail!("--batch-size must be between 1K and 256M (got {b} bytes)");
        }
        if self.slice_size == Some(0) || self.slice_records == Some(0) {
            bail!("--slice-size and --slice-records must be at least 1");
        }
        let slice = (self.slice_size.is_some()
            || self.slice_records.is_some()
            || self.slice_seconds.is_some())
        .then(|| {
            let d = mr_exec::SliceLimits::default();
            mr_exec::SliceLimits {
                bytes: self.slice_size.unwrap_or(d.bytes),
                records: self.slice_records.unwrap_or(d.records),
                seconds: self.slice_seconds.unwrap_or(d.seconds),
            }
        });
        let sink = match &self.sink {
            Some(spec) => mr_exec::Sink::parse(spec).map_err(anyhow::Error::msg)?,
            None => mr_exec::Sink::Text,
        };
        if let Some(name) = &self.compose
            && (name.is_empty()
                || name.contains('/')
                || name.starts_with("part-")
                || name.starts_with('_')
                || name.starts_with('.'))
        {
            bail!("--compose {name:?}: give a plain file name, not starting with part-, _ or .");
        }
        Ok(mr_exec::JobRequest {
            sink,
            compose: self.compose.clone(),
            max_bad_records: self.max_bad_records,
            max_inflate_ratio: self.max_inflate_ratio,
            shards: self.shards.map(|s| s.max(1)),
            reducers: self.reducers,
            batch_bytes: self.batch_size,
            slice,
            max_record_bytes: self.max_record_bytes,
            max_attempts: self.max_attempts,
            overwrite: self.overwrite,
            ..mr_exec::JobRequest::new(job, self.inputs.clone(), self.output.clone())
        })
    }
}

impl WorkerArgs {
    fn options(&self, only_job: Option<i64>) -> Result<mr_exec::WorkerOptions> {
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
            memory: self.memory,
        })
    }
}

pub fn run(args: RunArgs) -> Result<()> {
    let request = args.job.request()?;
    let db = args.job.db();
    let options = args.worker.options(None)?;
    let bar = progress::Bar::new();
    let summary = mr_exec::run(&db, &request, &options, Some(bar.sink()));
    bar.finish();
    print(&summary?, args.json)
}

pub fn submit(args: SubmitArgs) -> Result<()> {
    let request = args.job.request()?;
    let db = args.job.db();
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
        db.display(),
        db.display()
    );
    Ok(())
}

pub fn worker(args: WorkArgs) -> Result<()> {
    check_store(&args.db)?;
    let options = args.worker.options(args.job)?;
    let report = mr_exec::work(&args.db, &options, &args.limits.runtime()?, None)?;
    eprintln!(
        "worker done: {} tasks completed, {} failed attempts, {} refused commits",
        report.tasks, report.failed_attempts, report.refused
    );
    Ok(())
}

pub fn resume(args: ResumeArgs) -> Result<()> {
    check_store(&args.db)?;
    let options = args.worker.options(Some(args.job))?;
    let bar = progress::Bar::new();
    let worked = mr_exec::work(
        &args.db,
        &options,
        &args.limits.runtime()?,
        Some(bar.sink()),
    );
    bar.finish();
    worked?;
    print(&mr_exec::summary(&args.db, args.job)?, args.json)
}

fn check_store(db: &Path) -> Result<()> {
    if !db.is_file() {
        bail!(
            "job store {} does not exist; `mr-host submit` creates one (or pass the --db that `run` or `submit` used)",
            db.display()
        );
    }
    Ok(())
}

fn print(summary: &mr_exec::Summary, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(summary)?);
    } else {
        progress::print_summary(summary);
    }
    Ok(())
}

pub fn status(args: StatusArgs) -> Result<()> {
    let db = match (&args.db, &args.output) {
        (Some(db), _) => db.clone(),
        (None, Some(out)) => mr_exec::default_store_path(out),
        (None, None) => {
            bail!("say which job store: --db PATH, or --output DIR of a job run without --db")
        }
    };
    check_store(&db)?;
    let store = mr_store::Store::open(&db)?;
    let ids: Vec<i64> = match args.job {
        Some(id) => vec![id],
        None => store.jobs()?.into_iter().map(|j| j.id).collect(),
    };
    let statuses = ids
        .into_iter()
        .map(|id| -> Result<StatusView> {
            let status = store.status(id, args.events)?;
            let spec: mr_exec::JobSpec = serde_json::from_str(&store.job(id)?.spec)
                .with_context(|| format!("job {id}'s plan cannot be read"))?;
            Ok(StatusView {
                input_bytes: spec.files.iter().map(|f| f.len).sum(),
                status,
                tasks: if args.tasks {
                    store.tasks(id)?
                } else {
                    Vec::new()
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
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
        text = format!("no jobs in {}\n", db.display());
    }
    for s in &statuses {
        text += &progress::format_status(&s.status, s.input_bytes)?;
        text += &progress::format_tasks(&s.tasks)?;
    }
    write_stdout(&text)
}

/// A job's status with what only the plan knows.
#[derive(serde::Serialize)]
struct StatusView {
    #[serde(flatten)]
    status: mr_store::JobStatus,
    /// Input bytes of the whole job (compare with the `bytes-in` counter).
    input_bytes: u64,
    /// Every task, with `--tasks`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tasks: Vec<mr_store::TaskRow>,
}

/// Writes to stdout; a closed pipe (`mr-host status | head`) is not an error.
fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
