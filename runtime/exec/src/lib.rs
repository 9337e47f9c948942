//! `mr-exec`: runs a job over inputs on W worker threads.
//!
//! 1. **Plan**: resolve inputs and split them into shards at line boundaries (`mr-io`).
//! 2. **Map**: workers take shards in turn. Each worker owns one guest [`Instance`] for the
//!    whole run. A shard's lines go to the guest in flat batches; the output is partitioned by
//!    a stable key hash into per-partition sort buffers; when the worker's memory budget is
//!    exceeded or the shard ends, each buffer is sorted, run through the combiner (if the job
//!    has one) and written as a sorted run file.
//! 3. **Reduce**: workers take partitions in turn; each partition's runs are k-way merged (runs
//!    in input order, so a key's values arrive in input order), grouped, and handed to the guest
//!    in group batches; a group too large for one batch streams its remaining values through the
//!    WIT `value-stream` resource. Output goes to `part-NNNNN` through a temp file and a rename.
//!
//! Map-only jobs (world `mapper-job`) skip 2's shuffle and 3: each shard's map output is written,
//! in input order, to `part-NNNNN` for that shard.
//!
//! Output is deterministic: it depends on the input and `--reducers`, never on the number of
//! workers or shards (for map-only jobs the part files follow the shards, their concatenation
//! does not).

mod error;
mod map;
mod reduce;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mr_engine::{Instance, JobComponent, TaskIdentity, World};

pub use error::ExecError;

/// How to run a job.
#[derive(Clone)]
pub struct RunConfig {
    /// The loaded job, with its parameters applied.
    pub job: Arc<JobComponent>,
    /// Input specs: files, directories, glob patterns.
    pub inputs: Vec<String>,
    /// Output directory.
    pub output: PathBuf,
    /// Target number of shards (fewer if the input has fewer lines).
    pub shards: u32,
    /// Number of reduce partitions (output files) for map-reduce jobs.
    pub reducers: u32,
    /// Worker threads.
    pub workers: u32,
    /// Input bytes per map call.
    pub batch_bytes: usize,
    /// Map-side sort buffer budget per worker, in bytes; exceeding it spills a run.
    pub sort_buffer_bytes: usize,
    /// Longest accepted input record, in bytes.
    pub max_record_bytes: usize,
    /// Replace the contents of a non-empty output directory.
    pub overwrite: bool,
}

impl RunConfig {
    /// Defaults for everything but the job, inputs and output: one worker per core.
    pub fn new(job: Arc<JobComponent>, inputs: Vec<String>, output: PathBuf) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        RunConfig {
            job,
            inputs,
            output,
            shards: 0,
            reducers: 0,
            workers: 0,
            batch_bytes: 256 * 1024,
            sort_buffer_bytes: 64 << 20,
            max_record_bytes: 64 << 20,
            overwrite: false,
        }
        .with_workers(cores)
    }

    /// Sets the worker count and the defaults that follow from it: 4 shards per worker (so a
    /// slow shard does not idle the others for long) and one reduce partition per worker.
    pub fn with_workers(mut self, workers: u32) -> Self {
        let workers = workers.max(1);
        self.workers = workers;
        self.shards = workers * 4;
        self.reducers = workers;
        self
    }
}

/// Progress notifications, for a progress bar.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Planning finished.
    Planned {
        /// Input files.
        files: usize,
        /// Input bytes.
        bytes: u64,
        /// Shards.
        shards: usize,
    },
    /// Input bytes mapped since the last notification.
    Mapped(u64),
    /// The reduce phase started.
    ReduceStarted {
        /// Partitions to reduce.
        partitions: u32,
    },
    /// One partition finished reducing.
    PartitionDone,
}

/// Receives [`Progress`] from any worker thread.
pub type ProgressSink = Arc<dyn Fn(Progress) + Send + Sync>;

/// Built-in counters, in the order they are reported.
pub const BUILTIN_COUNTERS: &[&str] = &[
    "records-in",
    "bytes-in",
    "map-output-records",
    "combine-input-records",
    "combine-output-records",
    "spilled-runs",
    "reduce-groups",
    "reduce-input-records",
    "output-records",
    "output-bytes",
];

#[derive(Default)]
pub(crate) struct Counters {
    values: [AtomicU64; 10],
}

impl Counters {
    pub(crate) fn add(&self, name: &str, delta: u64) {
        let i = BUILTIN_COUNTERS
            .iter()
            .position(|n| *n == name)
            .expect("a built-in counter");
        self.values[i].fetch_add(delta, Ordering::Relaxed);
    }

    fn snapshot(&self) -> BTreeMap<String, u64> {
        BUILTIN_COUNTERS
            .iter()
            .zip(&self.values)
            .map(|(n, v)| ((*n).to_owned(), v.load(Ordering::Relaxed)))
            .collect()
    }
}

/// What a finished run reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// The job's name.
    pub job: String,
    /// The component's world.
    pub world: World,
    /// Input files read.
    pub files: usize,
    /// Input bytes.
    pub input_bytes: u64,
    /// Shards planned.
    pub shards: usize,
    /// Reduce partitions (0 for map-only jobs).
    pub partitions: u32,
    /// Worker threads.
    pub workers: u32,
    /// Built-in counters.
    pub counters: BTreeMap<String, u64>,
    /// Counters incremented by the job itself.
    pub job_counters: BTreeMap<String, i64>,
    /// Output files, in order.
    pub outputs: Vec<PathBuf>,
    /// Wall time of the map phase, in seconds.
    pub map_seconds: f64,
    /// Wall time of the reduce phase, in seconds.
    pub reduce_seconds: f64,
    /// Total wall time, in seconds.
    pub wall_seconds: f64,
}

/// State shared by the workers of one run.
pub(crate) struct Shared<'a> {
    pub config: &'a RunConfig,
    pub files: Vec<mr_io::InputFile>,
    pub work_dir: PathBuf,
    pub counters: Counters,
    pub job_counters: Mutex<BTreeMap<String, i64>>,
    pub cancelled: AtomicBool,
    pub progress: Option<ProgressSink>,
    pub job_id: String,
}

impl Shared<'_> {
    pub(crate) fn progress(&self, p: Progress) {
        if let Some(sink) = &self.progress {
            sink(p);
        }
    }

    /// Adds the guest counters an instance collected.
    pub(crate) fn absorb_counters(&self, instance: &mut Instance) {
        let taken = instance.take_counters();
        if !taken.is_empty() {
            let mut all = self.job_counters.lock().expect("counter lock");
            for (name, delta) in taken {
                *all.entry(name).or_default() += delta;
            }
        }
    }

    pub(crate) fn task(&self, phase: &'static str, shard: u32) -> TaskIdentity {
        TaskIdentity {
            job: self.job_id.clone(),
            phase,
            shard,
            slice: 0,
            attempt: 1,
        }
    }
}

/// Runs `config` to completion.
pub fn run(config: &RunConfig, progress: Option<ProgressSink>) -> Result<Summary, ExecError> {
    let started = Instant::now();
    let info = config.job.info().clone();
    prepare_output(&config.output, config.overwrite)?;
    let files = mr_io::resolve_inputs(&config.inputs)?;
    let shards = mr_io::plan_shards(&files, config.shards.max(1))?;
    let input_bytes: u64 = files.iter().map(|f| f.len).sum();
    let work_dir = config.output.join("_work");
    std::fs::create_dir_all(&work_dir).map_err(|source| ExecError::Output {
        path: work_dir.clone(),
        source,
    })?;
    let shared = Shared {
        config,
        files,
        work_dir: work_dir.clone(),
        counters: Counters::default(),
        job_counters: Mutex::new(BTreeMap::new()),
        cancelled: AtomicBool::new(false),
        progress,
        job_id: info.name.clone(),
    };
    shared.progress(Progress::Planned {
        files: shared.files.len(),
        bytes: input_bytes,
        shards: shards.len(),
    });
    let workers = config.workers.max(1);
    let partitions = if info.reduce {
        config.reducers.max(1)
    } else {
        0
    };

    let map_started = Instant::now();
    let runs = map::run_map_phase(&shared, &shards, partitions, workers);
    let map_seconds = map_started.elapsed().as_secs_f64();
    let result = runs.and_then(|runs| {
        let reduce_started = Instant::now();
        let outputs = if info.reduce {
            shared.progress(Progress::ReduceStarted { partitions });
            reduce::run_reduce_phase(&shared, runs, workers)?
        } else {
            runs.into_iter().flatten().collect()
        };
        Ok((outputs, reduce_started.elapsed()))
    });
    // The work directory holds only intermediate runs: remove it whether the run worked or not.
    let cleanup = std::fs::remove_dir_all(&work_dir);
    let (outputs, reduce_time): (Vec<PathBuf>, Duration) = result?;
    cleanup.map_err(|source| ExecError::Output {
        path: work_dir,
        source,
    })?;
    Ok(Summary {
        job: info.name,
        world: info.world,
        files: shared.files.len(),
        input_bytes,
        shards: shards.len(),
        partitions,
        workers,
        counters: shared.counters.snapshot(),
        job_counters: shared.job_counters.into_inner().expect("counter lock"),
        outputs,
        map_seconds,
        reduce_seconds: reduce_time.as_secs_f64(),
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

fn prepare_output(dir: &Path, overwrite: bool) -> Result<(), ExecError> {
    let io = |source| ExecError::Output {
        path: dir.to_owned(),
        source,
    };
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(io)?;
        if entries.next().is_some() {
            if !overwrite {
                return Err(ExecError::OutputNotEmpty {
                    path: dir.to_owned(),
                });
            }
            std::fs::remove_dir_all(dir).map_err(io)?;
        }
    }
    std::fs::create_dir_all(dir).map_err(io)
}

/// Hands out task indices to workers; stops handing out after cancellation.
pub(crate) struct TaskQueue {
    next: AtomicUsize,
    len: usize,
}

impl TaskQueue {
    pub(crate) fn new(len: usize) -> Self {
        TaskQueue {
            next: AtomicUsize::new(0),
            len,
        }
    }

    pub(crate) fn take(&self, cancelled: &AtomicBool) -> Option<usize> {
        if cancelled.load(Ordering::Relaxed) {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.len).then_some(i)
    }
}

/// Runs `work` on `workers` threads; returns the first error (and cancels the others).
pub(crate) fn run_workers<T: Send>(
    shared: &Shared<'_>,
    workers: u32,
    work: impl Fn() -> Result<T, ExecError> + Sync,
) -> Result<Vec<T>, ExecError> {
    let results: Vec<Result<T, ExecError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let r = work();
                    if r.is_err() {
                        shared.cancelled.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|p| Err(ExecError::WorkerPanicked(panic_message(&p))))
            })
            .collect()
    });
    results.into_iter().collect()
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
