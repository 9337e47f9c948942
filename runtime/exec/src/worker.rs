//! Worker threads: lease a task, run it, commit it; heartbeat held leases; retry failures.
//!
//! One process runs W worker threads and one heartbeat thread, each with its own store
//! connection. A worker thread keeps one guest instance per job and reuses it across tasks
//! (re-created by the engine after a trap). Several processes, on any number of hosts, may work
//! on the same store. A job that cannot be loaded here (its component is missing or changed,
//! its inputs changed) is skipped with an error, and the others are served.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mr_engine::{Instance, LifecycleEvent, Runtime, TaskIdentity};
use mr_store::{Acquired, JobStore, Lease, Phase, StoreError, StoreLocation, TaskKind};

use crate::error::Step;
use crate::spec::JobSpec;
use crate::task::{JobContext, Task, TaskEnv, TaskError, identity};
use crate::{ExecError, Progress, ProgressSink, owner};

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
    /// Work on this pipeline's stage jobs only, advancing it, and return when it is over
    /// (done, or failed). Without it (and without `only_job`), an idle worker advances every
    /// running pipeline of the store, and serves their stage jobs like any other.
    pub only_pipeline: Option<i64>,
    /// The shuffle's memory budget for the whole process, shared evenly by the worker
    /// threads: a map task's spill buffer, a reduce task's merge buffers.
    pub memory: u64,
    /// Keep serving: when no job has runnable work, wait for new jobs (polling the store every
    /// `idle_poll`) instead of returning, until `stop` is set.
    pub follow: Option<Follow>,
    /// Scratch space for jobs whose output is in object storage: their work files are written
    /// here before they are uploaded, and committed files other workers wrote are downloaded
    /// here to be read. (A local output's work files live in its own `_mr/work`.)
    pub scratch: PathBuf,
    /// When a thread finds no task to take while map tasks run, ask the slowest of them to
    /// give part of its unread input to a new task (see [`crate::split`]).
    pub split_stragglers: bool,
}

/// The default of [`WorkerOptions::scratch`]: `$MR_WORK_DIR`, else a directory under the
/// system's temporary directory.
pub fn default_scratch() -> PathBuf {
    std::env::var_os("MR_WORK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("mr-work"))
}

/// How a following worker waits for work, and how it is told to stop.
#[derive(Debug, Clone)]
pub struct Follow {
    /// How often an idle worker looks for new jobs.
    pub idle_poll: Duration,
    /// Set to stop the worker (it finishes the task it is running first).
    pub stop: Arc<AtomicBool>,
}

/// The default of [`WorkerOptions::memory`].
pub const DEFAULT_MEMORY: u64 = 256 << 20;

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            lease: Duration::from_secs(30),
            only_job: None,
            only_pipeline: None,
            memory: DEFAULT_MEMORY,
            follow: None,
            scratch: default_scratch(),
            split_stragglers: true,
        }
    }
}

/// What one [`work`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkReport {
    /// Tasks completed.
    pub tasks: u64,
    /// Attempts that failed (and were retried, or failed their job).
    pub failed_attempts: u64,
    /// Commits refused because the lease had been taken over or the job cancelled.
    pub refused: u64,
    /// Jobs this process could not load, with why (it served the others).
    pub skipped: Vec<(i64, String)>,
}

type LeaseKey = (i64, TaskKind, u32);

/// What advancing pipelines found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pipelines {
    /// Stage jobs were planned: there is work.
    Planned,
    /// A pipeline is still running, with nothing to plan here now (another process is
    /// planning a stage).
    Running,
    /// No pipeline is running (or this worker serves none).
    Over,
}

/// State shared by the threads of one worker process.
struct Worker<'a> {
    db: &'a StoreLocation,
    options: &'a WorkerOptions,
    runtime: &'a Arc<Runtime>,
    env: TaskEnv,
    jobs: Mutex<HashMap<i64, Arc<JobContext>>>,
    /// Held while a job is loaded, so that threads asking for the same new job at once load
    /// it once (two loads made two components, each warning the user on its own, and
    /// checked the inputs twice).
    loading: Mutex<()>,
    /// Jobs that cannot be loaded here, with why.
    skipped: Mutex<HashMap<i64, String>>,
    leases: Mutex<HashMap<LeaseKey, (Lease, Arc<AtomicBool>)>>,
    stop: AtomicBool,
    /// Jobs this process saw end (done or failed), for the completion-hook thread.
    ended: Mutex<std::sync::mpsc::Sender<i64>>,
    tasks: AtomicU64,
    failed_attempts: AtomicU64,
    refused: AtomicU64,
}

/// Runs tasks from the store at `db` on `options.workers` threads until there is nothing left to
/// do (see [`WorkerOptions::only_job`]). Task failures are recorded and retried, not returned;
/// an error here means the store failed, or (with `only_job`) the job cannot be loaded.
pub fn work(
    db: &StoreLocation,
    options: &WorkerOptions,
    runtime: &Arc<Runtime>,
    progress: Option<ProgressSink>,
) -> Result<WorkReport, ExecError> {
    let share = options.memory / u64::from(options.workers.max(1));
    let (ended, ended_jobs) = std::sync::mpsc::channel();
    let worker = Worker {
        db,
        options,
        runtime,
        env: TaskEnv {
            progress,
            memory_share: usize::try_from(share).unwrap_or(usize::MAX),
            help: options.split_stragglers.then(crate::help::Board::default),
        },
        jobs: Mutex::new(HashMap::new()),
        loading: Mutex::new(()),
        skipped: Mutex::new(HashMap::new()),
        leases: Mutex::new(HashMap::new()),
        stop: AtomicBool::new(false),
        ended: Mutex::new(ended),
        tasks: AtomicU64::new(0),
        failed_attempts: AtomicU64::new(0),
        refused: AtomicU64::new(0),
    };
    // Open once up front so a bad store fails here, with one message, not once per thread.
    drop(mr_store::open(db)?);
    let done = AtomicBool::new(false);
    let results: Vec<Result<(), ExecError>> = std::thread::scope(|scope| {
        let heartbeat = scope.spawn(|| worker.heartbeat(&done));
        let hooks = scope.spawn(|| deliver_ended_hooks(db, ended_jobs, &done));
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
        for thread in [heartbeat, hooks] {
            results.push(
                thread
                    .join()
                    .unwrap_or_else(|p| Err(ExecError::WorkerPanicked(panic_message(&p)))),
            );
        }
        results
    });
    results.into_iter().collect::<Result<Vec<()>, _>>()?;
    // Jobs that ended while this worker was serving them leave no scratch behind.
    let store = mr_store::open(db)?;
    let live: Vec<i64> = store
        .jobs()?
        .into_iter()
        .filter(|j| !j.phase.is_over())
        .map(|j| j.id)
        .collect();
    worker.forget_ended(&live);
    let mut skipped: Vec<(i64, String)> = worker
        .skipped
        .into_inner()
        .expect("skipped lock")
        .into_iter()
        .collect();
    skipped.sort();
    Ok(WorkReport {
        tasks: worker.tasks.load(Ordering::Relaxed),
        failed_attempts: worker.failed_attempts.load(Ordering::Relaxed),
        refused: worker.refused.load(Ordering::Relaxed),
        skipped,
    })
}

impl Worker<'_> {
    fn lease_ms(&self) -> i64 {
        self.options.lease.as_millis().max(1) as i64
    }

    fn thread_main(&self, thread: u32) -> Result<(), ExecError> {
        let owner = owner::owner(thread);
        let mut store = mr_store::open(self.db)?;
        let mut instance: Option<(i64, Instance)> = None;
        while !self.stopping() {
            let jobs: Vec<i64> = match (self.options.only_job, self.options.only_pipeline) {
                (Some(id), _) => vec![id],
                (None, Some(pipeline)) => {
                    let stage_jobs: Vec<i64> = store
                        .stages(pipeline)?
                        .iter()
                        .filter_map(|s| s.job)
                        .collect();
                    store
                        .jobs()?
                        .into_iter()
                        .filter(|j| !j.phase.is_over() && stage_jobs.contains(&j.id))
                        .map(|j| j.id)
                        .collect()
                }
                (None, None) => store
                    .jobs()?
                    .into_iter()
                    .filter(|j| !j.phase.is_over())
                    .map(|j| j.id)
                    .collect(),
            };
            if self.options.only_job.is_none() {
                self.forget_ended(&jobs);
            }
            let mut wake_in: Option<i64> = None;
            let mut leased = None;
            // Jobs with work left that others hold: where a straggler may be split.
            let mut waiting = Vec::new();
            for id in jobs {
                // Load before leasing, so a job that cannot load costs no attempt.
                if self.job(id, store.as_ref())?.is_none() {
                    continue;
                }
                match store.acquire(id, &owner, self.lease_ms(), &owner::is_dead) {
                    Ok(Acquired::Lease(lease)) => {
                        leased = Some(lease);
                        break;
                    }
                    Ok(Acquired::Wait { retry_in_ms }) => {
                        wake_in = Some(wake_in.map_or(retry_in_ms, |w| w.min(retry_in_ms)));
                        waiting.push(id);
                    }
                    Ok(Acquired::Finished { .. }) => {}
                    // Deleted since it was listed: nothing to do for it.
                    Err(StoreError::NoSuchJob { .. }) if self.options.only_job.is_none() => {}
                    Err(e) => return Err(e.into()),
                }
            }
            match (leased, wake_in) {
                (Some(lease), _) => {
                    let finalized = lease.kind == TaskKind::Finalize;
                    self.run_task(store.as_mut(), &mut instance, lease)?;
                    // A job just ended: if it was a pipeline stage, the stages reading it can
                    // be planned now, while the other threads are still busy.
                    if finalized {
                        self.advance_pipelines(store.as_mut(), &owner)?;
                    }
                }
                (None, Some(mut ms)) => {
                    // Nothing to take anywhere: ask a running map task to give some away.
                    if self.options.split_stragglers {
                        if self.request_split(store.as_mut(), &waiting)? {
                            // Answered at the end of its slice: look for the new task often.
                            ms = ms.min(100);
                        } else if self.help(store.as_ref(), &mut instance, &waiting)? {
                            // Helped a task to its end: look for work at once.
                            continue;
                        }
                    }
                    // Others hold the runnable tasks: poll, so a phase change or a freed lease
                    // is picked up quickly.
                    std::thread::sleep(Duration::from_millis(ms.clamp(20, 250) as u64));
                }
                (None, None) => match self.advance_pipelines(store.as_mut(), &owner)? {
                    // New stage jobs: take their tasks.
                    Pipelines::Planned => {}
                    // A stage being planned by another process: its job comes soon.
                    Pipelines::Running => std::thread::sleep(Duration::from_millis(250)),
                    Pipelines::Over => match &self.options.follow {
                        Some(follow) => std::thread::sleep(follow.idle_poll),
                        None => return Ok(()),
                    },
                },
            }
        }
        Ok(())
    }

    /// Asks for a straggler split in the first of `jobs` that has one to give (see
    /// [`crate::split::request`]); whether one is on its way.
    fn request_split(&self, store: &mut dyn JobStore, jobs: &[i64]) -> Result<bool, ExecError> {
        for &id in jobs {
            let Some(job) = self.job(id, store)? else {
                continue;
            };
            match crate::split::request(store, id, &job.spec) {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                // Deleted since it was listed.
                Err(ExecError::Store(StoreError::NoSuchJob { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Lends this thread's instance to a map task of one of `jobs` that offered help (see
    /// [`crate::help`]) until that task ends; whether it helped.
    fn help(
        &self,
        store: &dyn JobStore,
        slot: &mut Option<(i64, Instance)>,
        jobs: &[i64],
    ) -> Result<bool, ExecError> {
        let Some(board) = &self.env.help else {
            return Ok(false);
        };
        let Some((id, work, done)) = board.take(jobs) else {
            return Ok(false);
        };
        // Dropping the ends tells the task its helper has gone: it maps alone.
        let Some(job) = self.job(id, store)? else {
            return Ok(false);
        };
        let instance = match slot {
            Some((held, instance)) if *held == id => instance,
            _ => match Instance::new(&job.component, TaskIdentity::default()) {
                Ok(instance) => &mut slot.insert((id, instance)).1,
                Err(e) => {
                    tracing::warn!(job = id, "cannot help a map task: {e}");
                    return Ok(false);
                }
            },
        };
        let served = crate::help::serve(instance, &work, &done, || self.stopping());
        tracing::debug!(job = id, batches = served, "helped a map task");
        Ok(true)
    }

    /// Advances the pipelines this worker serves (see [`crate::advance`]) when it ran out of
    /// tasks: `only_pipeline`'s, or every running one (none with `only_job`).
    fn advance_pipelines(
        &self,
        store: &mut dyn JobStore,
        owner: &str,
    ) -> Result<Pipelines, ExecError> {
        if self.options.only_job.is_some() {
            return Ok(Pipelines::Over);
        }
        let ids: Vec<i64> = match self.options.only_pipeline {
            Some(id) => vec![id],
            None => store
                .pipelines()?
                .into_iter()
                .filter(|p| p.phase == mr_store::PipelinePhase::Running)
                .map(|p| p.id)
                .collect(),
        };
        let ctx = crate::pipeline::Advancer {
            db: self.db,
            runtime: self.runtime,
            scratch: &self.options.scratch,
            owner,
            retry_failed: false,
        };
        let mut state = Pipelines::Over;
        for id in ids {
            let advanced = crate::pipeline::advance(store, &ctx, id)?;
            if advanced.planned > 0 {
                state = Pipelines::Planned;
            } else if advanced.phase == mr_store::PipelinePhase::Running && state == Pipelines::Over
            {
                // A pipeline waiting on a job this process cannot run would be waited for
                // forever: only others can move it on.
                let skipped = self.skipped.lock().expect("skipped lock");
                let blocked = store
                    .stages(id)?
                    .iter()
                    .any(|s| s.job.is_some_and(|j| skipped.contains_key(&j)));
                if !blocked {
                    state = Pipelines::Running;
                }
            }
        }
        Ok(state)
    }

    /// Forgets the loaded jobs not in `live` (done, failed, cancelled or deleted) and removes
    /// their local scratch directories. For an object-storage output each worker host has its
    /// own (map runs before upload, fetched runs); the finalizing worker removes only its own,
    /// so without this a long-running worker's scratch grew with every job it served. (A local
    /// output's work directory is inside the output and removed by finalize.)
    fn forget_ended(&self, live: &[i64]) {
        let ended: Vec<Arc<JobContext>> = {
            let mut jobs = self.jobs.lock().expect("jobs lock");
            let gone: Vec<i64> = jobs
                .keys()
                .filter(|id| !live.contains(id))
                .copied()
                .collect();
            gone.iter().filter_map(|id| jobs.remove(id)).collect()
        };
        for job in ended {
            if let (crate::outdir::OutputDir::Object(_), Some(scratch)) =
                (&job.out, job.work_dir.parent())
                && scratch.exists()
                && let Err(e) = std::fs::remove_dir_all(scratch)
            {
                tracing::warn!(
                    job = job.id,
                    "cannot remove the job's scratch directory {}: {e}",
                    scratch.display()
                );
            }
        }
    }

    /// Whether the worker should stop taking tasks.
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
            || self
                .options
                .follow
                .as_ref()
                .is_some_and(|f| f.stop.load(Ordering::Relaxed))
    }

    /// The job's context, loading its component (and checking its inputs) the first time.
    /// `None` when this process cannot run it (recorded once, with why): a worker serving many
    /// jobs keeps serving the others. With `only_job`, that is an error instead.
    fn job(&self, id: i64, store: &dyn JobStore) -> Result<Option<Arc<JobContext>>, ExecError> {
        let known = || -> Option<Option<Arc<JobContext>>> {
            if let Some(job) = self.jobs.lock().expect("jobs lock").get(&id) {
                return Some(Some(job.clone()));
            }
            if self.skipped.lock().expect("skipped lock").contains_key(&id) {
                return Some(None);
            }
            None
        };
        if let Some(job) = known() {
            return Ok(job);
        }
        let _loading = self.loading.lock().expect("loading lock");
        // Another thread may have loaded it while this one waited.
        if let Some(job) = known() {
            return Ok(job);
        }
        match self.load(id, store) {
            Ok(job) => {
                let job = Arc::new(job);
                self.jobs.lock().expect("jobs lock").insert(id, job.clone());
                Ok(Some(job))
            }
            // Deleted since it was listed: nothing to run, and nothing to report.
            Err(ExecError::Store(StoreError::NoSuchJob { .. }))
                if self.options.only_job.is_none() =>
            {
                Ok(None)
            }
            Err(e @ ExecError::Store(_)) => Err(e),
            Err(e) if self.options.only_job.is_some() || self.options.only_pipeline.is_some() => {
                Err(e)
            }
            Err(e) => {
                let why = crate::error_chain(&e);
                tracing::error!(job = id, "cannot run job {id} here, skipping it: {why}");
                self.skipped.lock().expect("skipped lock").insert(id, why);
                Ok(None)
            }
        }
    }

    fn load(&self, id: i64, store: &dyn JobStore) -> Result<JobContext, ExecError> {
        let row = store.job(id)?;
        let spec = JobSpec::parse(&row.spec, id)?;
        let component = self.component(id, &spec, store)?;
        let component = component
            .with_params(&spec.params)
            .map_err(|message| ExecError::BadParams { message })?
            .with_limits(spec.job_limits());
        spec.check_inputs_unchanged(id)?;
        let out = crate::outdir::OutputDir::of(&spec.output)?;
        // The scratch directory is shared by every job this host's workers run, so its name
        // must tell apart two jobs with the same plan (same inputs and settings, another
        // output, or the same output recreated after --overwrite): their attempt-numbered
        // work files have the same names but not the same contents.
        let job_key = {
            use sha2::{Digest, Sha256};
            let mut hash = Sha256::new();
            for part in [
                spec.output.to_string_lossy().as_bytes(),
                spec.fingerprint.as_bytes(),
                id.to_string().as_bytes(),
                row.created_ms.to_string().as_bytes(),
            ] {
                hash.update((part.len() as u64).to_le_bytes());
                hash.update(part);
            }
            format!("job-{id}-{}", &mr_engine::hex(&hash.finalize())[..16])
        };
        let work_dir = out.work_dir(&self.options.scratch, &job_key);
        mr_store::pausepoint("load-job-before-work-dir");
        let missing: Vec<PathBuf> = work_dir
            .ancestors()
            .take_while(|dir| !dir.exists())
            .map(Path::to_path_buf)
            .collect();
        std::fs::create_dir_all(&work_dir).map_err(|source| ExecError::Output {
            path: work_dir.clone(),
            source,
        })?;
        // `mr-host delete` may have removed the job's files between `store.job` above and
        // the directory just made; it removes them after the rows, so a job still in the
        // store now will have them removed by that delete, and a job gone must not leave
        // the directories this load made (its output directory would stay behind).
        if let Err(e) = store.job(id) {
            for dir in &missing {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(e.into());
        }
        if let Some(sink) = &self.env.progress {
            let done_bytes = crate::status::mapped_bytes(&spec, &store.tasks(id)?);
            sink(Progress::Planned {
                bytes: spec.files.iter().map(|f| f.len).sum(),
                done_bytes,
                shards: spec.shards.len(),
            });
        }
        Ok(JobContext {
            id,
            spec,
            component,
            reduce_announced: AtomicBool::new(false),
            out,
            work_dir,
        })
    }

    /// The job's component: the file the plan names, if it still holds what was planned;
    /// otherwise the copy the store keeps (workers on other hosts, or a file changed since),
    /// written to the scratch directory by its SHA-256.
    fn component(
        &self,
        id: i64,
        spec: &JobSpec,
        store: &dyn JobStore,
    ) -> Result<Arc<mr_engine::JobComponent>, ExecError> {
        match load_component(
            self.runtime,
            &self.options.scratch,
            &spec.component,
            &spec.component_sha256,
            store,
        )? {
            Some(component) => Ok(component),
            None => Err(ExecError::ComponentChanged {
                id,
                path: spec.component.clone(),
                planned: spec.component_sha256.clone(),
                found: self.runtime.load(&spec.component)?.sha256().to_owned(),
            }),
        }
    }

    fn run_task(
        &self,
        store: &mut dyn JobStore,
        slot: &mut Option<(i64, Instance)>,
        mut lease: Lease,
    ) -> Result<(), ExecError> {
        let Some(job) = self.job(lease.job, store)? else {
            return Ok(());
        };
        let span = tracing::info_span!(
            "task",
            job = job.id,
            kind = %lease.kind,
            idx = lease.idx,
            attempt = lease.attempt
        );
        let _entered = span.enter();
        tracing::info!("started");
        let lost = Arc::new(AtomicBool::new(false));
        let key = (lease.job, lease.kind, lease.idx);
        self.leases
            .lock()
            .expect("lease lock")
            .insert(key, (lease.clone(), lost.clone()));
        let step = Step::of(lease.kind);
        let result = (|| -> Result<(), TaskError> {
            let identity = identity(&job, &lease, step, lease.slices);
            let instance = match slot {
                Some((id, instance)) if *id == job.id => instance,
                _ => {
                    let instance =
                        Instance::new(&job.component, identity).map_err(|e| ExecError::Guest {
                            job: job.spec.name.clone(),
                            step,
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
                env: &self.env,
                job: &job,
                store,
                instance,
                lease: &mut lease,
                lost: &lost,
            };
            task.set_identity(step, task.lease.slices);
            task.notify_start(LifecycleEvent::TaskStarted)?;
            match task.lease.kind {
                TaskKind::Map => crate::map::run(&mut task),
                TaskKind::Reduce => crate::reduce::run(&mut task),
                TaskKind::Finalize => crate::finalize::run(&mut task),
            }
        })();
        self.leases.lock().expect("lease lock").remove(&key);
        match result {
            Ok(()) => {
                self.tasks.fetch_add(1, Ordering::Relaxed);
                tracing::info!(slices = lease.slices, "completed");
                if lease.kind == TaskKind::Finalize {
                    self.job_ended(&job);
                }
                Ok(())
            }
            Err(TaskError::Refused(why)) => self.refused(store, &lease, &why),
            Err(TaskError::Failed(error)) => self.failed(store, &job, &lease, error),
            Err(TaskError::Store(e)) => Err(e.into()),
        }
    }

    /// Records a failed attempt: retried after a backoff, or not at all when the failure is
    /// deterministic or repeats the previous attempt's.
    fn failed(
        &self,
        store: &mut dyn JobStore,
        job: &JobContext,
        lease: &Lease,
        error: ExecError,
    ) -> Result<(), ExecError> {
        self.failed_attempts.fetch_add(1, Ordering::Relaxed);
        // A guest error names its task itself; anything else (input, run files, output) gets
        // the task and attempt in front, so the final error says where.
        let mut text = if matches!(error, ExecError::Guest { .. }) {
            crate::error_chain(&error)
        } else {
            let place = match lease.kind {
                TaskKind::Map => format!("map shard {}, slice {}", lease.idx, lease.slices),
                TaskKind::Reduce => format!("reduce partition {}", lease.idx),
                TaskKind::Finalize => format!("finalize task {}", lease.idx),
            };
            format!(
                "{place}, attempt {}: {}",
                lease.attempt,
                crate::error_chain(&error)
            )
        };
        let signature = error.signature();
        let repeated = signature.is_some()
            && store.previous_failure(lease)?.as_deref() == signature.as_deref();
        let retry = if error.is_deterministic() || repeated {
            if repeated {
                text += "\n(this attempt failed the same way as the one before it: deterministic, so it is not retried)";
            } else if !matches!(error, ExecError::Guest { .. }) {
                text += "\n(deterministic: retrying cannot change it, so it is not retried)";
            }
            mr_store::Retry::Never
        } else {
            // 200 ms, 400 ms, ... up to 10 s: long enough for a transient cause to pass, short
            // enough not to stall a job.
            let backoff = (200i64 << lease.attempt.saturating_sub(1).min(6)).min(10_000);
            mr_store::Retry::Until {
                max_attempts: job.spec.max_attempts,
                after_ms: backoff,
            }
        };
        let failure = mr_store::Failure {
            kind: &error.failure_kind(),
            error: &text,
            signature: signature.as_deref(),
            retry,
        };
        let first = text.lines().next().unwrap_or_default();
        match store.fail_attempt(lease, &failure) {
            // One line: the whole error (guest output, backtrace) is in the store and in the
            // final error if the retries fail too.
            Ok(true) => {
                tracing::warn!("attempt failed, will retry: {first}");
                Ok(())
            }
            Ok(false) => {
                tracing::error!("job {} failed: {first}", job.id);
                self.job_ended(job);
                Ok(())
            }
            Err(e) if e.is_refusal() => self.refused(store, lease, &e.to_string()),
            Err(e) => Err(e.into()),
        }
    }

    /// Hands a job this process saw end to the completion-hook thread, if it has hooks.
    fn job_ended(&self, job: &JobContext) {
        if !job.spec.hooks.is_empty() {
            // The receiver lives as long as `work`, which outlives every worker thread.
            let _ = self.ended.lock().expect("ended lock").send(job.id);
        }
    }

    fn refused(&self, store: &mut dyn JobStore, lease: &Lease, why: &str) -> Result<(), ExecError> {
        self.refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("work discarded: {why}");
        store.record_refusal(lease, why)?;
        Ok(())
    }

    /// Renews every held lease a few times per lease period (at least once a second, so a
    /// cancelled job stops within about a second); marks the ones found lost or cancelled.
    fn heartbeat(&self, done: &AtomicBool) -> Result<(), ExecError> {
        let mut store = mr_store::open(self.db)?;
        let period =
            (self.options.lease / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
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
                match store.heartbeat(&lease, self.lease_ms()) {
                    Ok(()) => {}
                    Err(e) if e.is_refusal() => lost.store(true, Ordering::Relaxed),
                    // A missed heartbeat only risks the lease; the commit is still fenced.
                    Err(e) => tracing::warn!("heartbeat failed: {e}"),
                }
            }
        }
        Ok(())
    }
}

/// The completion-hook thread of a worker process: delivers the hooks of the jobs its worker
/// threads saw end (waiting out retries), until the workers are done and nothing is queued.
/// A worker that exits while a hook waits to be retried leaves it to the next watcher
/// (`mr-host serve`), which finds it pending in the store.
fn deliver_ended_hooks(
    db: &StoreLocation,
    ended: std::sync::mpsc::Receiver<i64>,
    done: &AtomicBool,
) -> Result<(), ExecError> {
    let mut store = None;
    let policy = crate::HookPolicy::default();
    loop {
        let id = match ended.recv_timeout(Duration::from_millis(50)) {
            Ok(id) => id,
            Err(_) if !done.load(Ordering::Relaxed) => continue,
            Err(_) => match ended.try_recv() {
                Ok(id) => id,
                Err(_) => return Ok(()),
            },
        };
        let store = match &mut store {
            Some(store) => store,
            None => store.insert(mr_store::open(db)?),
        };
        crate::deliver_hooks(store.as_mut(), id, &policy)?;
    }
}

/// The job's final state as a result: its summary's precondition.
pub(crate) fn finished(row: &mr_store::JobRow) -> Result<(), ExecError> {
    match row.phase {
        Phase::Done => Ok(()),
        Phase::Failed => Err(ExecError::JobFailed {
            id: row.id,
            name: row.name.clone(),
            error: row.error.clone().unwrap_or_default(),
        }),
        Phase::Cancelled => Err(ExecError::JobCancelled {
            id: row.id,
            name: row.name.clone(),
        }),
        phase => Err(ExecError::Unfinished {
            id: row.id,
            name: row.name.clone(),
            phase,
        }),
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// The component `path` names if it still holds `sha256`; otherwise the copy the store keeps
/// (workers on other hosts, or a file changed since), written to `scratch/components` by its
/// SHA-256. `None` when the file holds something else and the store has no copy.
pub(crate) fn load_component(
    runtime: &Arc<Runtime>,
    scratch: &Path,
    path: &Path,
    sha256: &str,
    store: &dyn JobStore,
) -> Result<Option<Arc<mr_engine::JobComponent>>, ExecError> {
    let local = runtime.load(path);
    if let Ok(component) = &local
        && component.sha256() == sha256
    {
        return Ok(Some(local?));
    }
    if let Some(bytes) = store.component(sha256)? {
        let dir = scratch.join("components");
        let cached = dir.join(format!("{sha256}.wasm"));
        if !cached.is_file() {
            let io = |source| ExecError::Output {
                path: cached.clone(),
                source,
            };
            std::fs::create_dir_all(&dir).map_err(io)?;
            let tmp = cached.with_extension(format!("tmp-{}", std::process::id()));
            std::fs::write(&tmp, &bytes).map_err(io)?;
            std::fs::rename(&tmp, &cached).map_err(io)?;
        }
        return Ok(Some(runtime.load(&cached)?));
    }
    local?;
    Ok(None)
}
