//! Submitting a job: resolve and fingerprint the inputs, plan the shards, prepare the output
//! directory, and record the plan ([`JobSpec`]) and the tasks in the store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mr_engine::JobComponent;
use mr_io::{InputFile, Shard};
use mr_store::{JobStore, NewJob, StoreLocation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::sink::Sink;
use crate::{ExecError, STATE_DIR};

/// When a map slice ends and commits: whichever bound is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SliceLimits {
    /// Input bytes.
    pub bytes: u64,
    /// Input records.
    pub records: u64,
    /// Wall-clock seconds (0 = no time bound). A time bound makes slice boundaries depend on
    /// speed; output does not (values still reach reducers in input order).
    pub seconds: u64,
}

impl Default for SliceLimits {
    fn default() -> Self {
        SliceLimits {
            bytes: 32 << 20,
            records: u64::MAX,
            seconds: 60,
        }
    }
}

/// What a user asks to run. `None` settings take their defaults for a new job and the planned
/// values for a job being resumed.
#[derive(Clone)]
pub struct JobRequest {
    /// The loaded job, with its parameters applied.
    pub job: Arc<JobComponent>,
    /// Input specs: files, directories, glob patterns.
    pub inputs: Vec<String>,
    /// Output directory.
    pub output: PathBuf,
    /// Target number of shards [default: 4 per core].
    pub shards: Option<u32>,
    /// Reduce partitions (output files) of map-reduce jobs [default: one per core].
    pub reducers: Option<u32>,
    /// Input bytes per map call.
    pub batch_bytes: Option<u64>,
    /// Slice bounds.
    pub slice: Option<SliceLimits>,
    /// Longest accepted input record, in bytes.
    pub max_record_bytes: Option<u64>,
    /// Failed attempts of one task before the job fails.
    pub max_attempts: Option<u32>,
    /// Where the records go (text part files by default).
    pub sink: Sink,
    /// Also concatenate the part files, in order, into `OUTPUT/NAME`.
    pub compose: Option<String>,
    /// Bad input records to skip (and log to `_bad_records`) before failing [default: 0].
    pub max_bad_records: Option<u64>,
    /// Largest decompressed/compressed ratio of compressed input [default: 1000].
    pub max_inflate_ratio: Option<u64>,
    /// Most distinct counter names the job may use [default: 1000].
    pub max_counters: Option<u32>,
    /// Longest counter name, in bytes [default: 256].
    pub max_counter_name_bytes: Option<u32>,
    /// Discard whatever the output directory (and the store, for this output) holds.
    pub overwrite: bool,
    /// Discard what the output directory holds unless it is this very job's (which then
    /// resumes): a pipeline stage rerun after its inputs or settings changed.
    pub replace: bool,
    /// Map only the first N records of each shard (a quick run).
    pub limit: Option<u64>,
    /// Map only this fraction of the records, chosen by a hash of their locations.
    pub sample: Option<f64>,
    /// Keep the map output and shuffle runs when the job is done (`--debug`).
    pub debug: bool,
    /// The job's own guest memory limit (tightens the worker's).
    pub memory_limit: Option<u64>,
    /// The job's own call timeout in seconds (tightens the worker's).
    pub call_timeout: Option<f64>,
    /// What to run when the job ends.
    pub hooks: Hooks,
    /// Confine the job to this directory: every input file, the output and a SQLite sink must
    /// be inside it once links are resolved (`mr-host serve --data-root`).
    pub root: Option<PathBuf>,
}

/// A job's completion hooks, run by the host (guests have no network) once the job is done,
/// failed or cancelled; each is delivered once, whoever watches the job (see `hooks.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hooks {
    /// POST the summary JSON to this URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
    /// Run this command (`sh -c`) with the summary JSON on stdin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_done: Option<String>,
}

impl Hooks {
    /// Whether there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.notify.is_none() && self.on_done.is_none()
    }
}

impl JobRequest {
    /// A request with every setting at its default.
    pub fn new(job: Arc<JobComponent>, inputs: Vec<String>, output: PathBuf) -> Self {
        JobRequest {
            job,
            inputs,
            output,
            shards: None,
            reducers: None,
            batch_bytes: None,
            slice: None,
            max_record_bytes: None,
            max_attempts: None,
            sink: Sink::Text,
            compose: None,
            max_bad_records: None,
            max_inflate_ratio: None,
            max_counters: None,
            max_counter_name_bytes: None,
            overwrite: false,
            replace: false,
            limit: None,
            sample: None,
            debug: false,
            memory_limit: None,
            call_timeout: None,
            hooks: Hooks::default(),
            root: None,
        }
    }
}

/// Input bytes per map call by default: large enough that a combining guest returns about one
/// pair per key per batch, so the pairs the host sorts, spills and combines again are few
/// (1 MiB was 13% faster on word count than 256 KiB; 4 MiB takes about 10% less CPU than 1 MiB,
/// 2.25 G instead of 2.50 G instructions on 32 MiB; see docs/performance.md). The cost is
/// guest memory: a non-combining group-by's instances grow to hold 4 MiB of input and its
/// output, about 70 MiB more peak RSS with two workers.
pub const DEFAULT_BATCH_BYTES: u64 = 4 << 20;

/// A job's plan, stored with it; every worker process runs the job from this.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSpec {
    /// The job's name.
    pub name: String,
    /// The component file (absolute).
    pub component: PathBuf,
    /// Its SHA-256; a worker refuses to run a component that changed.
    pub component_sha256: String,
    /// Parameters, defaults filled in.
    pub params: BTreeMap<String, String>,
    /// Input specs as given.
    pub inputs: Vec<String>,
    /// Resolved input files.
    pub files: Vec<InputFile>,
    /// Each file's modification time (ns since the epoch) at planning; a changed input is
    /// refused rather than read half old, half new.
    pub modified_ns: Vec<u128>,
    /// Shards asked for (fewer are planned when the input has fewer lines).
    pub requested_shards: u32,
    /// Shards.
    pub shards: Vec<Shard>,
    /// Reduce partitions; 0 for map-only jobs.
    pub reducers: u32,
    /// Whether the job has a combiner.
    pub combine: bool,
    /// Output directory (absolute).
    pub output: PathBuf,
    /// Input bytes per map call.
    pub batch_bytes: u64,
    /// Slice bounds.
    pub slice: SliceLimits,
    /// Longest accepted record.
    pub max_record_bytes: u64,
    /// Failed attempts of one task before the job fails.
    pub max_attempts: u32,
    /// Where the records go.
    #[serde(default)]
    pub sink: Sink,
    /// The name of the composed output file, if any.
    #[serde(default)]
    pub compose: Option<String>,
    /// Bad input records skipped before the job fails.
    #[serde(default)]
    pub max_bad_records: u64,
    /// Largest accepted decompression ratio.
    #[serde(default = "default_inflate_ratio")]
    pub max_inflate_ratio: u64,
    /// Most distinct counter names the job may use.
    #[serde(default = "default_max_counters")]
    pub max_counters: u32,
    /// Longest counter name, in bytes.
    #[serde(default = "default_max_counter_name_bytes")]
    pub max_counter_name_bytes: u32,
    /// The job's fingerprint (identifies its writes in a SQLite sink).
    #[serde(default)]
    pub fingerprint: String,
    /// Only the first N records of each shard reach the job (`--limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Only this fraction of the records reaches the job (`--sample`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<f64>,
    /// Completion hooks (not part of the fingerprint: a rerun may change them).
    #[serde(default, skip_serializing_if = "Hooks::is_empty")]
    pub hooks: Hooks,
    /// Keep the work files (map output, shuffle runs) when the job is done (not part of the
    /// fingerprint: it changes no output).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub debug: bool,
    /// The job's own guest memory limit, in bytes: workers run it with the smaller of this and
    /// their `--memory-limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<u64>,
    /// The job's own call timeout, in seconds: workers run it with the smaller of this and
    /// their `--call-timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_timeout: Option<f64>,
}

fn default_inflate_ratio() -> u64 {
    1000
}

fn default_max_counters() -> u32 {
    crate::counters::DEFAULT_MAX_COUNTERS
}

fn default_max_counter_name_bytes() -> u32 {
    mr_engine::JobLimits::DEFAULT_MAX_COUNTER_NAME_BYTES as u32
}

impl JobSpec {
    /// The guest-side caps the engine enforces on every call of this job.
    pub(crate) fn job_limits(&self) -> mr_engine::JobLimits {
        mr_engine::JobLimits {
            max_counters: self.max_counters as usize,
            max_counter_name_bytes: self.max_counter_name_bytes as usize,
            memory_limit: self
                .memory_limit
                .map(|m| usize::try_from(m).unwrap_or(usize::MAX)),
            call_timeout: self.call_timeout.map(std::time::Duration::from_secs_f64),
        }
    }

    pub(crate) fn parse(text: &str, id: i64) -> Result<JobSpec, ExecError> {
        serde_json::from_str(text).map_err(|source| ExecError::PlanUnreadable { id, source })
    }

    /// Where the job's intermediate files live.
    pub fn work_dir(&self) -> PathBuf {
        self.output.join(STATE_DIR).join("work")
    }

    /// How map shards are read.
    pub(crate) fn read_options(&self) -> mr_io::ReadOptions {
        mr_io::ReadOptions {
            max_record_bytes: self.max_record_bytes as usize,
            max_inflate_ratio: self.max_inflate_ratio,
            skip_bad: self.max_bad_records > 0,
        }
    }
}

/// Whether an input's size and modification time are checked (and fingerprinted): a generator
/// has none, and a SQLite database that is also the job's sink changes under the job's own
/// finalize (a migration), which must still be able to resume.
pub(crate) fn tracks_changes(file: &InputFile, sink: &Sink) -> bool {
    file.format.is_file()
        && sink
            .database()
            .is_none_or(|db| std::path::absolute(&file.path).ok().as_deref() != Some(db))
}

/// A submitted job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Submitted {
    /// Its id in the store.
    pub id: i64,
    /// False when the store already had it (a rerun resumes it).
    pub created: bool,
}

/// Plans `request` into the store at `db` (created if needed), or finds the same job planned
/// before: same component, parameters, inputs (paths, sizes, modification times) and output.
/// A failed job found this way is made runnable again.
pub fn submit(db: &StoreLocation, request: &JobRequest) -> Result<Submitted, ExecError> {
    // Everything is checked before anything is written: a refused job leaves no output
    // directory and no store behind, and never touches an input.
    let out_dir = crate::output::target(&request.output)?;
    let output = out_dir.path();
    if request.compose.is_some() && matches!(request.sink, Sink::Sqlite { .. }) {
        return Err(ExecError::ConflictingFlags {
            message: "--compose writes one file from the part files; a SQLite sink has none".into(),
        });
    }
    if let Some(root) = &request.root {
        crate::output::check_within(root, &output, "the output")?;
        if let Some(db) = request.sink.database() {
            crate::output::check_within(root, db, "the SQLite sink")?;
        }
    }
    let files = mr_io::resolve_inputs(&request.inputs, Some(&output))?;
    if let Some(root) = &request.root {
        for file in files.iter().filter(|f| f.format.is_file()) {
            crate::output::check_within(root, &file.path, &format!("input {}", file.display))?;
        }
    }
    crate::output::check_against_inputs(&output, &request.inputs, &files)?;
    let db_inside_output = match (&out_dir, db.path()) {
        (crate::outdir::OutputDir::Local(dir), Some(db)) => {
            crate::output::resolved(db).starts_with(dir)
        }
        _ => false,
    };
    // A store outside the output is opened first, so a bad --db creates no output directory.
    let mut store = if db_inside_output {
        None
    } else {
        Some(open_store(db)?)
    };
    if let crate::outdir::OutputDir::Local(dir) = &out_dir {
        std::fs::create_dir_all(dir).map_err(|source| ExecError::Output {
            path: dir.clone(),
            source,
        })?;
    }
    let mut store = match store.take() {
        Some(store) => store,
        None => open_store(db)?,
    };
    let modified_ns = files
        .iter()
        .map(|f| {
            if tracks_changes(f, &request.sink) {
                modified_ns(&f.path, &f.display)
            } else {
                Ok(0)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let job = &request.job;
    let fingerprint = {
        let mut h = Sha256::new();
        let mut key = serde_json::json!({
            "component": job.sha256(),
            "params": job.params(),
            "files": files.iter().zip(&modified_ns).map(|(f, m)| {
                let len = if tracks_changes(f, &request.sink) { f.len } else { 0 };
                (f.path.to_string_lossy(), len, m.to_string())
            }).collect::<Vec<_>>(),
            "output": output.to_string_lossy(),
        });
        // Only what differs from a plain-text job enters the key, so the fingerprints of
        // plain-text jobs planned before these settings existed stay the same.
        let formats: Vec<_> = files
            .iter()
            .filter(|f| f.format != mr_io::Format::Lines || f.codec() != mr_io::Compression::None)
            .map(|f| match f.codec() {
                // gzip keeps the shape it had before the other codecs, and so its fingerprint.
                mr_io::Compression::None | mr_io::Compression::Gzip => {
                    serde_json::json!([f.display, f.format, f.gzip])
                }
                codec => serde_json::json!([f.display, f.format, f.gzip, codec]),
            })
            .collect();
        if !formats.is_empty() {
            key["formats"] = serde_json::json!(formats);
        }
        if request.sink != Sink::Text || request.compose.is_some() {
            key["sink"] = serde_json::json!([request.sink, request.compose]);
        }
        // A quick run over part of the input is another job than the full run.
        if request.limit.is_some() || request.sample.is_some() {
            key["subset"] = serde_json::json!([request.limit, request.sample]);
        }
        h.update(key.to_string().as_bytes());
        mr_engine::hex(&h.finalize())
    };
    let output_text = output.to_string_lossy().into_owned();
    // A pipeline stage replaces another job's output, and its own job's when that was
    // planned with other settings (they are not all in the fingerprint: --reducers is not).
    let clear = request.overwrite
        || (request.replace
            && match store.find_job(&fingerprint)? {
                None => true,
                Some(existing) => check_same_settings(
                    request,
                    &JobSpec::parse(&existing.spec, existing.id)?,
                    existing.id,
                )
                .is_err(),
            });
    if clear {
        let previous: Vec<_> = store
            .jobs()?
            .into_iter()
            .filter(|j| j.output == output_text)
            .collect();
        let mut planned = Vec::new();
        for job in &previous {
            if let Ok(spec) = JobSpec::parse(&job.spec, job.id) {
                planned.extend(crate::finalize::output_names(&spec));
                planned.extend(spec.compose.clone());
            }
        }
        crate::output::clear_previous(&out_dir, db.path(), &planned)?;
        for job in previous {
            store.delete_job(job.id)?;
        }
    }
    if let Some(existing) = store.find_job(&fingerprint)? {
        let mut spec = JobSpec::parse(&existing.spec, existing.id)?;
        check_same_settings(request, &spec, existing.id)?;
        let changed = apply_allowances(request, &mut spec);
        if !changed.is_empty() {
            let text = serde_json::to_string(&spec).expect("a plan serialises");
            store.update_plan(existing.id, &text, &changed.join(", "))?;
            tracing::info!(
                job = existing.id,
                "job {} now runs with {}",
                existing.id,
                changed.join(", ")
            );
        }
        if store.reset_failed(existing.id)? {
            tracing::warn!(
                job = existing.id,
                "job {} had failed ({}); retrying its failed tasks",
                existing.id,
                existing.error.unwrap_or_default()
            );
        }
        return Ok(Submitted {
            id: existing.id,
            created: false,
        });
    }
    if let Some(other) = store.jobs()?.into_iter().find(|j| j.output == output_text) {
        return Err(ExecError::OutputTaken {
            path: output,
            id: other.id,
            name: other.name,
        });
    }
    crate::output::ensure_only_state(&out_dir)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let info = job.info();
    let requested_shards = request.shards.unwrap_or(cores * 4).max(1);
    let shards = mr_io::plan(&files, requested_shards)?;
    let spec = JobSpec {
        name: info.name.clone(),
        component: std::path::absolute(job.path()).unwrap_or_else(|_| job.path().to_owned()),
        component_sha256: job.sha256().to_owned(),
        params: job.params().clone(),
        inputs: request.inputs.clone(),
        files,
        modified_ns,
        requested_shards,
        shards,
        reducers: if info.reduce {
            request.reducers.unwrap_or(cores).max(1)
        } else {
            0
        },
        combine: info.combine,
        output: output.clone(),
        batch_bytes: request.batch_bytes.unwrap_or(DEFAULT_BATCH_BYTES),
        slice: request.slice.unwrap_or_default(),
        max_record_bytes: request.max_record_bytes.unwrap_or(64 << 20),
        max_attempts: request.max_attempts.unwrap_or(4).max(1),
        sink: request.sink.clone(),
        compose: request.compose.clone(),
        max_bad_records: request.max_bad_records.unwrap_or(0),
        max_inflate_ratio: request.max_inflate_ratio.unwrap_or(1000).max(1),
        max_counters: request
            .max_counters
            .unwrap_or(crate::counters::DEFAULT_MAX_COUNTERS),
        max_counter_name_bytes: request
            .max_counter_name_bytes
            .unwrap_or_else(default_max_counter_name_bytes),
        fingerprint: fingerprint.clone(),
        limit: request.limit,
        sample: request.sample,
        hooks: request.hooks.clone(),
        debug: request.debug,
        memory_limit: request.memory_limit,
        call_timeout: request.call_timeout,
    };
    let text = serde_json::to_string(&spec).expect("a plan serialises");
    if db.path().is_none() {
        // A shared store serves workers on other hosts: they load the component from it.
        let bytes = std::fs::read(job.path()).map_err(|source| {
            ExecError::Engine(mr_engine::EngineError::Read {
                path: job.path().to_owned(),
                source,
            })
        })?;
        store.put_component(job.sha256(), &bytes)?;
    }
    let (id, created) = store.create_job(&NewJob {
        name: &spec.name,
        fingerprint: &fingerprint,
        output: &output_text,
        spec: &text,
        map_tasks: spec.shards.len() as u32,
        reduce_tasks: spec.reducers,
    })?;
    tracing::info!(
        job = id,
        "planned job {id}: {} shards, {} partitions",
        spec.shards.len(),
        spec.reducers
    );
    Ok(Submitted { id, created })
}

/// A setting given explicitly on a rerun must match the plan; silently running with the old
/// value would surprise, and changing it mid-job would break determinism.
fn check_same_settings(request: &JobRequest, spec: &JobSpec, id: i64) -> Result<(), ExecError> {
    let differs = |flag: &'static str, given: Option<u64>, planned: u64| {
        given
            .filter(|g| *g != planned)
            .map(|given| ExecError::SettingChanged {
                id,
                flag,
                planned: planned.to_string(),
                given: given.to_string(),
            })
    };
    let checks = [
        differs(
            "--shards",
            request.shards.map(u64::from),
            u64::from(spec.requested_shards),
        ),
        differs(
            "--reducers",
            request
                .reducers
                .filter(|_| spec.reducers > 0)
                .map(u64::from),
            u64::from(spec.reducers),
        ),
        differs(
            "--max-record-bytes",
            request.max_record_bytes,
            spec.max_record_bytes,
        ),
    ];
    match checks.into_iter().flatten().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Allowances a rerun may change: they decide how much failure the job tolerates, never what
/// a successful job writes. A job that failed on one bad record must be resumable with
/// `--max-bad-records 1`. Returns what changed, as `--flag OLD -> NEW`.
fn apply_allowances(request: &JobRequest, spec: &mut JobSpec) -> Vec<String> {
    let mut changed = Vec::new();
    let mut set = |flag: &str, given: Option<u64>, planned: &mut u64| {
        if let Some(given) = given.filter(|g| g != planned) {
            changed.push(format!("{flag} {planned} -> {given}"));
            *planned = given;
        }
    };
    set(
        "--max-bad-records",
        request.max_bad_records,
        &mut spec.max_bad_records,
    );
    set(
        "--max-inflate-ratio",
        request.max_inflate_ratio,
        &mut spec.max_inflate_ratio,
    );
    let mut attempts = u64::from(spec.max_attempts);
    set(
        "--max-attempts",
        request.max_attempts.map(|a| u64::from(a.max(1))),
        &mut attempts,
    );
    spec.max_attempts = attempts as u32;
    let mut counters = u64::from(spec.max_counters);
    set(
        "--max-counters",
        request.max_counters.map(u64::from),
        &mut counters,
    );
    spec.max_counters = counters as u32;
    let mut name_bytes = u64::from(spec.max_counter_name_bytes);
    set(
        "--max-counter-name-bytes",
        request.max_counter_name_bytes.map(u64::from),
        &mut name_bytes,
    );
    spec.max_counter_name_bytes = name_bytes as u32;
    // Hooks given on a rerun replace the planned ones; a rerun without them keeps them.
    if !request.hooks.is_empty() && request.hooks != spec.hooks {
        changed.push(format!(
            "hooks {} -> {}",
            serde_json::to_string(&spec.hooks).expect("hooks serialise"),
            serde_json::to_string(&request.hooks).expect("hooks serialise")
        ));
        spec.hooks = request.hooks.clone();
    }
    changed
}

pub(crate) fn modified_ns(path: &Path, display: &str) -> Result<u128, ExecError> {
    Ok(file_state(path, display)?.1)
}

/// Opens the store at `db`, creating a SQLite file's directory first.
pub(crate) fn open_store(db: &StoreLocation) -> Result<Box<dyn JobStore>, ExecError> {
    if let Some(dir) = db
        .path()
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|source| ExecError::Output {
            path: dir.to_owned(),
            source,
        })?;
    }
    Ok(mr_store::open(db)?)
}

/// A file's size and modification time (ns since the epoch): what the plan records, and what a
/// worker compares before reading.
fn file_state(path: &Path, display: &str) -> Result<(u64, u128), ExecError> {
    if let Some(url) = path.to_str().filter(|p| mr_io::objects::is_url(p)) {
        let gone = |message: String| mr_io::InputError::Io {
            path: display.to_owned(),
            offset: None,
            source: std::io::Error::other(message),
        };
        let info = mr_io::objects::Location::parse(url)
            .and_then(|l| l.head())
            .map_err(|e| gone(e.to_string()))?
            .ok_or_else(|| gone("the object is gone".into()))?;
        return Ok((info.size, info.modified_ns));
    }
    let meta = std::fs::metadata(path).map_err(|source| mr_io::InputError::Io {
        path: display.to_owned(),
        offset: None,
        source,
    })?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok((meta.len(), modified))
}

impl JobSpec {
    /// Refuses to run job `id` over inputs that changed since it was planned: reading half old,
    /// half new data would break the output's determinism silently.
    pub(crate) fn check_inputs_unchanged(&self, id: i64) -> Result<(), ExecError> {
        for (file, modified) in self.files.iter().zip(&self.modified_ns) {
            if !tracks_changes(file, &self.sink) {
                continue;
            }
            let (len, now_modified) = file_state(&file.path, &file.display)?;
            if len != file.len || now_modified != *modified {
                return Err(ExecError::InputChanged {
                    id,
                    path: file.display.clone(),
                    what: format!(
                        "{} bytes modified at {modified} ns, now {len} bytes modified at {now_modified} ns",
                        file.len
                    ),
                });
            }
        }
        Ok(())
    }
}
