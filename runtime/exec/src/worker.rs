//! Worker threads: lease a task, run it, commit it; heartbeat held leases; retry failures.
//!
//! One process runs W worker threads and one heartbeat thread, each with its own store
//! connection. A worker thread keeps one guest instance per job and reuses it across tasks
//! (re-created by the engine after a trap). Several processes may work on the same store.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mr_engine::{Instance, JobComponent, LifecycleEvent, Runtime, TaskIdentity};
use mr_store::{Acquired, Lease, Store, StoreError};

use crate::spec::JobSpec;
use crate::{ExecError, Progress, ProgressSink, now_ms, owner};

/// How a worker process runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Worker threads.
    pub workers: u32,
    /// Lease duration: a worker that stops heartbeating loses its tasks after this long.
    pub lease: Duration,
    /// Work on this job only, and return when it is finished; otherwise work on every
    /// unfinished job in the store until none has runnable work left.
    pub only_job: Option<i64>,
    /// The shuffle's memory budget for the whole process, shared evenly by the worker
    /// threads: a map task's spill buffer, a reduce task's merge buffers.
    pub memory: u64,
}

/// The default of [`WorkerOptions::memory`].
pub const DEFAULT_MEMORY: u64 = 256 << 20;

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            lease: Duration::from_secs(30),
            only_job: None,
            memory: DEFAULT_MEMORY,
        }
    }
}

/// What one [`work`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkReport {
    /// Tasks completed.
    pub tasks: u64,
    /// Attempts that failed (and were retried, or failed their job).
    pub failed_attempts: u64,
    /// Commits refused because the lease had been taken over.
    pub refused: u64,
}

/// A job as a worker process holds it: its plan and its loaded component.
pub(crate) struct JobContext {
    pub id: i64,
    pub spec: JobSpec,
    pub component: Arc<JobComponent>,
    reduce_announced: AtomicBool,
}

type LeaseKey = (i64, String, u32);

/// State shared by the threads of one worker process.
pub(crate) struct Worker<'a> {
    db: &'a Path,
    options: &'a WorkerOptions,
    runtime: &'a Arc<Runtime>,
    progress: Option<ProgressSink>,
    jobs: Mutex<HashMap<i64, Arc<JobContext>>>,
    leases: Mutex<HashMap<LeaseKey, (Lease, Arc<AtomicBool>)>>,
    stop: AtomicBool,
    tasks: AtomicU64,
    failed_attempts: AtomicU64,
    refused: AtomicU64,
}

/// Why a task ended early.
pub(crate) enum TaskError {
    /// The lease was lost: the store refused the commit (or the task noticed first).
    Fenced(String),
    /// The attempt failed; retry it.
    Failed(ExecError),
    /// The store itself failed: stop this worker.
    Store(StoreError),
}

impl TaskError {
    /// Marks a guest failure as deterministic (see [`ExecError::is_deterministic`]).
    pub(crate) fn deterministic(mut self, yes: bool) -> Self {
        if let TaskError::Failed(ExecError::Guest { deterministic, .. }) = &mut self {
            *deterministic = yes;
        }
        self
    }
}

impl From<StoreError> for TaskError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Fenced { .. } => TaskError::Fenced(e.to_string()),
            // A cap the job exceeded: the job's failure, not the store's.
            StoreError::TooManyCounters { .. } => TaskError::Failed(e.into()),
            e => TaskError::Store(e),
        }
    }
}

impl From<ExecError> for TaskError {
    fn from(e: ExecError) -> Self {
        TaskError::Failed(e)
    }
}

impl From<mr_io::InputError> for TaskError {
    fn from(e: mr_io::InputError) -> Self {
        TaskError::Failed(e.into())
    }
}

impl From<mr_shuffle::ShuffleError> for TaskError {
    fn from(e: mr_shuffle::ShuffleError) -> Self {
        TaskError::Failed(e.into())
    }
}

/// Everything a running task needs.
pub(crate) struct Task<'a> {
    pub worker: &'a Worker<'a>,
    pub job: &'a JobContext,
    pub store: &'a mut Store,
    pub instance: &'a mut Instance,
    pub lease: &'a mut Lease,
    pub lost: &'a AtomicBool,
}

impl Worker<'_> {
    /// One worker thread's share of the memory budget, in bytes.
    pub(crate) fn memory_share(&self) -> usize {
        let share = self.options.memory / u64::from(self.options.workers.max(1));
        usize::try_from(share).unwrap_or(usize::MAX)
    }
}

impl Task<'_> {
    pub(crate) fn progress(&self, p: Progress) {
        if let Some(sink) = &self.worker.progress {
            sink(p);
        }
    }

    /// Points the guest's `task()` at the current slice.
    pub(crate) fn set_identity(&mut self, phase: &'static str, slice: u32) {
        self.instance
            .set_task(identity(self.job, self.lease, phase, slice));
    }

    /// Tells a job that wants lifecycle events that something is starting; a guest failure
    /// fails the attempt, like any other guest failure.
    pub(crate) fn notify_start(&mut self, event: LifecycleEvent) -> Result<(), TaskError> {
        self.instance
            .notify(event)
            .map_err(|e| crate::map::guest_error(self, phase_name(&self.lease.kind), None, e))
    }

    /// Tells a job that wants lifecycle events that something was committed. The work is done
    /// whatever the guest says, so a failure is only logged.
    pub(crate) fn notify_done(&mut self, event: LifecycleEvent) {
        if let Err(e) = self.instance.notify(event) {
            tracing::warn!(
                job = self.job.id,
                "the job failed handling {event:?} of {} task {} (ignored: the work is committed): {e}",
                self.lease.kind,
                self.lease.idx
            );
        }
    }

    pub(crate) fn announce_reduce(&self) {
        if !self.job.reduce_announced.swap(true, Ordering::Relaxed) {
            self.progress(Progress::ReduceStarted {
                partitions: self.job.spec.reducers,
            });
        }
    }
}

fn identity(job: &JobContext, lease: &Lease, phase: &'static str, slice: u32) -> TaskIdentity {
    TaskIdentity {
        job: format!("{}#{}", job.spec.name, job.id),
        phase,
        shard: lease.idx,
        slice,
        attempt: lease.attempt,
    }
}

fn phase_name(kind: &str) -> &'static str {
    match kind {
        "map" => "map",
        "reduce" => "reduce",
        _ => "finalize",
    }
}

/// Runs tasks from the store at `db` on `options.workers` threads until there is nothing left to
/// do (see [`WorkerOptions::only_job`]). Task failures are recorded and retried, not returned;
/// an error here means the store, or loading a job, failed.
pub fn work(
    db: &Path,
    options: &WorkerOptions,
    runtime: &Arc<Runtime>,
    progress: Option<ProgressSink>,
) -> Result<WorkReport, ExecError> {
    let worker = Worker {
        db,
        options,
        runtime,
        progress,
        jobs: Mutex::new(HashMap::new()),
        leases: Mutex::new(HashMap::new()),
        stop: AtomicBool::new(false),
        tasks: AtomicU64::new(0),
        failed_attempts: AtomicU64::new(0),
        refused: AtomicU64::new(0),
    };
    // Open once up front so a bad path fails here, with one message, not once per thread.
    drop(Store::open(db)?);
    let done = AtomicBool::new(false);
    let results: Vec<Result<(), ExecError>> = std::thread::scope(|scope| {
        let heartbeat = scope.spawn(|| worker.heartbeat(&done));
        let threads: Vec<_> = (0..options.workers.max(1))
            .map(|t| {
                let worker = &worker;
                scope.spawn(move || {
                    let r = worker.thread_main(t);
                    if r.is_err() {
                        worker.stop.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        let mut results: Vec<_> = threads
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|p| Err(ExecError::WorkerPanicked(panic_message(&p))))
            })
            .collect();
        done.store(true, Ordering::Relaxed);
        results.push(
            heartbeat
                .join()
                .unwrap_or_else(|p| Err(ExecError::WorkerPanicked(panic_message(&p)))),
        );
        results
    });
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(WorkReport {
        tasks: worker.tasks.load(Ordering::Relaxed),
        failed_attempts: worker.failed_attempts.load(Ordering::Relaxed),
        refused: worker.refused.load(Ordering::Relaxed),
    })
}

impl Worker<'_> {
    fn lease_ms(&self) -> i64 {
        self.options.lease.as_millis().max(1) as i64
    }

    fn thread_main(&self, thread: u32) -> Result<(), ExecError> {
        let owner = owner::owner(thread);
        let mut store = Store::open(self.db)?;
        let mut instance: Option<(i64, Instance)> = None;
        while !self.stop.load(Ordering::Relaxed) {
            let jobs: Vec<i64> = match self.options.only_job {
                Some(id) => vec![id],
                None => store
                    .jobs()?
                    .into_iter()
                    .filter(|j| j.phase != "done" && j.phase != "failed")
                    .map(|j| j.id)
                    .collect(),
            };
            let mut wake_at: Option<i64> = None;
            let mut leased = None;
            for id in jobs {
                // Load before leasing, so a job that cannot load costs no attempt.
                self.job(id, &store)?;
                match store.acquire(id, &owner, now_ms(), self.lease_ms(), &owner::is_dead)? {
                    Acquired::Lease(lease) => {
                        leased = Some(lease);
                        break;
                    }
                    Acquired::Wait { retry_at_ms } => {
                        wake_at = Some(wake_at.map_or(retry_at_ms, |w| w.min(retry_at_ms)));
                    }
                    Acquired::Finished { .. } => {}
                }
            }
            match (leased, wake_at) {
                (Some(lease), _) => self.run_task(&mut store, &mut instance, lease)?,
                (None, Some(at)) => {
                    // Others hold the runnable tasks: poll, so a phase change or a freed lease
                    // is picked up quickly.
                    let ms = (at - now_ms()).clamp(20, 250);
                    std::thread::sleep(Duration::from_millis(ms as u64));
                }
                (None, None) => return Ok(()),
            }
        }
        Ok(())
    }

    /// The job's context, loading its component (and checking its inputs) the first time.
    fn job(&self, id: i64, store: &Store) -> Result<Arc<JobContext>, ExecError> {
        if let Some(job) = self.jobs.lock().expect("jobs lock").get(&id) {
            return Ok(job.clone());
        }
        let row = store.job(id)?;
        let spec = JobSpec::parse(&row.spec, id)?;
        let component = self.runtime.load(&spec.component)?;
        if component.sha256() != spec.component_sha256 {
            return Err(ExecError::ComponentChanged {
                id,
                path: spec.component.clone(),
                planned: spec.component_sha256.clone(),
                found: component.sha256().to_owned(),
            });
        }
        let component = component
            .with_params(&spec.params)
            .map_err(|message| ExecError::BadParams { message })?;
        spec.check_inputs_unchanged(id)?;
        std::fs::create_dir_all(spec.work_dir()).map_err(|source| ExecError::Output {
            path: spec.work_dir(),
            source,
        })?;
        if let Some(sink) = &self.progress {
            let done_bytes = store
                .job_counters(id)?
                .into_iter()
                .find(|(n, _)| n == "bytes-in")
                .map_or(0, |(_, v)| v.max(0) as u64);
            sink(Progress::Planned {
                bytes: spec.files.iter().map(|f| f.len).sum(),
                done_bytes,
                shards: spec.shards.len(),
            });
        }
        let job = Arc::new(JobContext {
            id,
            spec,
            component,
            reduce_announced: AtomicBool::new(false),
        });
        self.jobs.lock().expect("jobs lock").insert(id, job.clone());
        Ok(job)
    }

    fn run_task(
        &self,
        store: &mut Store,
        slot: &mut Option<(i64, Instance)>,
        mut lease: Lease,
    ) -> Result<(), ExecError> {
        let job = self.job(lease.job, store)?;
        let phase = phase_name(&lease.kind);
        tracing::info!(
            job = job.id,
            kind = %lease.kind,
            task = lease.idx,
            attempt = lease.attempt,
            "{} task {} of job {} started (attempt {})",
            lease.kind,
            lease.idx,
            job.id,
            lease.attempt
        );
        let lost = Arc::new(AtomicBool::new(false));
        let key = (lease.job, lease.kind.clone(), lease.idx);
        self.leases
            .lock()
            .expect("lease lock")
            .insert(key.clone(), (lease.clone(), lost.clone()));
        let result = (|| -> Result<(), TaskError> {
            let identity = identity(&job, &lease, phase, lease.slices);
            let instance = match slot {
                Some((id, instance)) if *id == job.id => instance,
                _ => {
                    let instance =
                        Instance::new(&job.component, identity).map_err(|e| ExecError::Guest {
                            job: job.spec.name.clone(),
                            phase,
                            unit: if phase == "reduce" {
                                "partition"
                            } else {
                                "shard"
                            },
                            index: lease.idx,
                            slice: None,
                            attempt: lease.attempt,
                            location: None,
                            error: Box::new(e),
                            deterministic: false,
                        })?;
                    &mut slot.insert((job.id, instance)).1
                }
            };
            let mut task = Task {
                worker: self,
                job: &job,
                store,
                instance,
                lease: &mut lease,
                lost: &lost,
            };
            task.set_identity(phase, task.lease.slices);
            task.notify_start(LifecycleEvent::TaskStarted)?;
            match phase {
                "map" => crate::map::run(&mut task),
                "reduce" => crate::reduce::run(&mut task),
                _ => crate::finalize::run(&mut task),
            }
        })();
        self.leases.lock().expect("lease lock").remove(&key);
        let now = now_ms();
        match result {
            Ok(()) => {
                self.tasks.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    job = job.id,
                    "{} task {} of job {} completed ({} slices)",
                    lease.kind,
                    lease.idx,
                    job.id,
                    lease.slices
                );
                Ok(())
            }
            Err(TaskError::Fenced(why)) => self.refused(store, &lease, &why),
            Err(TaskError::Failed(error)) => {
                self.failed_attempts.fetch_add(1, Ordering::Relaxed);
                // A guest error names its task itself; anything else (input, run files,
                // output) gets the task and attempt in front, so the final error says where.
                let mut text = if matches!(error, ExecError::Guest { .. }) {
                    crate::error_chain(&error)
                } else {
                    let place = match lease.kind.as_str() {
                        "map" => format!("map shard {}, slice {}", lease.idx, lease.slices),
                        "reduce" => format!("reduce partition {}", lease.idx),
                        other => format!("{other} task {}", lease.idx),
                    };
                    format!(
                        "{place}, attempt {}: {}",
                        lease.attempt,
                        crate::error_chain(&error)
                    )
                };
                let signature = error.signature();
                let repeated = signature.is_some()
                    && store.previous_failure(&lease)?.as_deref() == signature.as_deref();
                let retry = if error.is_deterministic() || repeated {
                    if repeated {
                        text += "\n(this attempt failed the same way as the one before it: deterministic, so it is not retried)";
                    } else if !matches!(error, ExecError::Guest { .. }) {
                        text +=
                            "\n(deterministic: retrying cannot change it, so it is not retried)";
                    }
                    mr_store::Retry::Never
                } else {
                    // 200 ms, 400 ms, ... up to 10 s: long enough for a transient cause to
                    // pass, short enough not to stall a job.
                    let backoff = (200i64 << lease.attempt.saturating_sub(1).min(6)).min(10_000);
                    mr_store::Retry::Until {
                        max_attempts: job.spec.max_attempts,
                        at_ms: now + backoff,
                    }
                };
                let failure = error.failure_kind();
                match store.fail_attempt(
                    &lease,
                    &mr_store::Failure {
                        kind: &failure,
                        error: &text,
                        signature: signature.as_deref(),
                        retry,
                    },
                    now,
                ) {
                    Ok(true) => {
                        // One line: the whole error (guest output, backtrace) is in the store
                        // and in the final error if the retries fail too.
                        let first = text.lines().next().unwrap_or_default();
                        tracing::warn!(job = job.id, "attempt failed, will retry: {first}");
                        Ok(())
                    }
                    Ok(false) => {
                        let first = text.lines().next().unwrap_or_default();
                        tracing::error!(job = job.id, "job {} failed: {first}", job.id);
                        Ok(())
                    }
                    Err(e @ StoreError::Fenced { .. }) => {
                        self.refused(store, &lease, &e.to_string())
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Err(TaskError::Store(e)) => Err(e.into()),
        }
    }

    fn refused(&self, store: &mut Store, lease: &Lease, why: &str) -> Result<(), ExecError> {
        self.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            job = lease.job,
            "{} task {} attempt {}: lease lost, work discarded ({why})",
            lease.kind,
            lease.idx,
            lease.attempt
        );
        store.record_refusal(lease, why, now_ms())?;
        Ok(())
    }

    /// Renews every held lease a few times per lease period; marks the ones found lost.
    fn heartbeat(&self, done: &AtomicBool) -> Result<(), ExecError> {
        let mut store = Store::open(self.db)?;
        let period =
            (self.options.lease / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        let step = Duration::from_millis(20).min(period);
        let mut since = Duration::ZERO;
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(step);
            since += step;
            if since < period {
                continue;
            }
            since = Duration::ZERO;
            let held: Vec<(Lease, Arc<AtomicBool>)> = self
                .leases
                .lock()
                .expect("lease lock")
                .values()
                .cloned()
                .collect();
            for (lease, lost) in held {
                match store.heartbeat(&lease, now_ms(), self.lease_ms()) {
                    Ok(()) => {}
                    Err(StoreError::Fenced { .. }) => lost.store(true, Ordering::Relaxed),
                    // A missed heartbeat only risks the lease; the commit is still fenced.
                    Err(e) => tracing::warn!("heartbeat failed: {e}"),
                }
            }
        }
        Ok(())
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
