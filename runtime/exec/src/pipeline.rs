//! Pipelines: named stages, each one job, chained by their outputs, and durable in the job
//! store like jobs, so any worker process advances them and rerunning the same command resumes.
//!
//! - A pipeline is recorded ([`submit_pipeline`]) with its definition ([`PipelineDef`]), keyed
//!   by its output directory; stage NAME writes `OUTPUT/NAME/` (`part-NNNNN` + `_MANIFEST`).
//! - **Advancing** ([`advance`]) walks the stages in dependency order. A stage whose inputs are
//!   all complete gets a *fingerprint*: its component's SHA-256, its parameters and settings,
//!   and the content of its inputs (for `stage:NAME`, the files, sizes and SHA-256s listed in
//!   NAME's `_MANIFEST`; for a plain input, its files' paths, sizes and modification times).
//!   The fingerprint of the job recorded for the stage, and that job done: its output is
//!   reused. Otherwise one process, holding the stage's claim in the store, plans the stage's
//!   job, replacing the stage's previous output. So a rerun after one stage changed reruns
//!   that stage and whatever its changed output feeds, and nothing else.
//! - **Chained inputs are verified.** A stage reading `stage:NAME` reads exactly the parts
//!   NAME's `_MANIFEST` lists (never a listing, never a `_` file), each checked against the
//!   manifest's size, and SHA-256 with [`StageDef::verify_sha256`], before its job is planned;
//!   the job itself then refuses inputs that change after planning.
//! - Workers ([`crate::work`]) advance pipelines when they run out of tasks, so stages
//!   submitted with `mr-host pipeline submit` are planned and run by `mr-host worker`s on any
//!   host sharing the store.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mr_engine::Runtime;
use mr_store::{
    JobStore, NewPipeline, Phase, PipelinePhase, PipelineRow, StageRow, StageState, StageUpdate,
    StoreLocation,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::finalize::MANIFEST;
use crate::request::SubmitSpec;
use crate::spec::{JobSpec, tracks_changes};
use crate::{ExecError, sink::Sink};

/// How long a claim to plan a stage lasts: planning reads (and for text, counts the lines of)
/// the stage's input, so it is generous. A claim of a process known to be dead is taken over at
/// once.
const CLAIM_MS: i64 = 120_000;

/// A pipeline as the store keeps it: everything needed to plan its stages, on any host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineDef {
    /// Its name.
    pub name: String,
    /// Its output directory (absolute): stage NAME writes `OUTPUT/NAME/`.
    pub output: PathBuf,
    /// Its stages, in an order where every stage comes after the stages it reads.
    pub stages: Vec<StageDef>,
}

/// One stage: a job, its inputs and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageDef {
    /// The stage's name (a directory name under the pipeline's output).
    pub name: String,
    /// The job component (absolute path).
    pub component: PathBuf,
    /// Its SHA-256 (part of the stage's fingerprint).
    pub component_sha256: String,
    /// What it reads, in order.
    pub inputs: Vec<StageInput>,
    /// Everything else `mr-host submit` takes (its `inputs` and `output` are set when the
    /// stage is planned).
    pub settings: SubmitSpec,
    /// Check the SHA-256 of every upstream part against its stage's `_MANIFEST` (not only its
    /// size) before reading it.
    #[serde(default)]
    pub verify_sha256: bool,
}

/// An input of a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageInput {
    /// An input spec as `mr-host run --input` takes it (paths absolute).
    Spec(String),
    /// The output of another stage: `stage:NAME`.
    Stage(String),
}

impl StageInput {
    /// Reads `stage:NAME`, or any other input spec.
    pub fn parse(spec: &str) -> StageInput {
        match spec.strip_prefix("stage:") {
            Some(name) => StageInput::Stage(name.to_owned()),
            None => StageInput::Spec(spec.to_owned()),
        }
    }
}

impl std::fmt::Display for StageInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StageInput::Spec(s) => f.write_str(s),
            StageInput::Stage(name) => write!(f, "stage:{name}"),
        }
    }
}

impl StageDef {
    /// The stages this one reads.
    pub fn upstream(&self) -> impl Iterator<Item = &str> {
        self.inputs.iter().filter_map(|i| match i {
            StageInput::Stage(name) => Some(name.as_str()),
            StageInput::Spec(_) => None,
        })
    }
}

impl PipelineDef {
    fn bad(&self, message: String) -> ExecError {
        ExecError::BadPipeline {
            pipeline: self.name.clone(),
            message,
        }
    }

    /// The stage named `name`.
    pub fn stage(&self, name: &str) -> Option<&StageDef> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// Where stage `name` writes.
    pub fn stage_output(&self, name: &str) -> PathBuf {
        self.output.join(name)
    }

    /// Checks the shape (names, references, no cycles) and puts the stages in dependency
    /// order (a stage after those it reads; otherwise as given).
    pub fn check_and_order(mut self) -> Result<PipelineDef, ExecError> {
        if self.stages.is_empty() {
            return Err(self.bad("it has no stages".into()));
        }
        for (i, stage) in self.stages.iter().enumerate() {
            check_stage_name(&stage.name).map_err(|m| self.bad(m))?;
            if self.stages[..i].iter().any(|s| s.name == stage.name) {
                return Err(self.bad(format!("two stages are named {}", stage.name)));
            }
        }
        for stage in &self.stages {
            for up in stage.upstream() {
                if up == stage.name {
                    return Err(self.bad(format!("stage {} reads its own output", stage.name)));
                }
                if self.stage(up).is_none() {
                    return Err(self.bad(format!(
                        "stage {} reads stage:{up}, but there is no stage {up} (stages: {})",
                        stage.name,
                        self.stages
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        let order = topological_order(&self.stages).map_err(|cycle| {
            self.bad(format!(
                "its stages form a cycle: {} (a stage cannot read, even indirectly, its own output)",
                cycle.join(" -> ")
            ))
        })?;
        let mut stages: Vec<Option<StageDef>> = self.stages.into_iter().map(Some).collect();
        self.stages = order
            .into_iter()
            .map(|i| stages[i].take().expect("each stage once"))
            .collect();
        Ok(self)
    }
}

/// A stage name is a directory under the pipeline's output: a plain name that the output
/// readers do not skip.
pub fn check_stage_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.starts_with(['_', '.']);
    if plain {
        Ok(())
    } else {
        Err(format!(
            "stage name {name:?}: use letters, digits, `-`, `_` and `.` (at most 100), not starting with `_` or `.`"
        ))
    }
}

/// The stages' indices in dependency order (Kahn's algorithm, lowest index first, so the
/// order is the given one wherever dependencies allow), or one cycle's stage names.
pub fn topological_order(stages: &[StageDef]) -> Result<Vec<usize>, Vec<String>> {
    let index: HashMap<&str, usize> = stages
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let deps: Vec<Vec<usize>> = stages
        .iter()
        .map(|s| s.upstream().filter_map(|u| index.get(u).copied()).collect())
        .collect();
    let mut placed = vec![false; stages.len()];
    let mut order = Vec::with_capacity(stages.len());
    while order.len() < stages.len() {
        let next = (0..stages.len()).find(|&i| !placed[i] && deps[i].iter().all(|&d| placed[d]));
        match next {
            Some(i) => {
                placed[i] = true;
                order.push(i);
            }
            None => {
                // Every unplaced stage waits on another unplaced one: follow those links from
                // any of them until a stage repeats; that loop is a cycle.
                let mut path = vec![(0..stages.len()).find(|&i| !placed[i]).expect("unplaced")];
                loop {
                    let last = *path.last().expect("non-empty");
                    let dep = *deps[last]
                        .iter()
                        .find(|&&d| !placed[d])
                        .expect("an unplaced stage waits on an unplaced one");
                    if let Some(start) = path.iter().position(|&p| p == dep) {
                        let mut cycle: Vec<String> = path[start..]
                            .iter()
                            .rev()
                            .map(|&i| stages[i].name.clone())
                            .collect();
                        cycle.push(cycle[0].clone());
                        return Err(cycle);
                    }
                    path.push(dep);
                }
            }
        }
    }
    Ok(order)
}

/// A recorded pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmittedPipeline {
    /// Its id in the store.
    pub id: i64,
    /// False when the store had it already (this starts another run of it).
    pub created: bool,
}

/// Records `def` in the store at `db` (created if needed) and starts a run of it: a pipeline
/// with the same output is the same pipeline, rerun (see [`JobStore::put_pipeline`]).
pub fn submit_pipeline(
    db: &StoreLocation,
    def: &PipelineDef,
) -> Result<SubmittedPipeline, ExecError> {
    let def = def.clone().check_and_order()?;
    if def.output.to_str().is_some_and(mr_io::objects::is_url) {
        return Err(def.bad(format!(
            "its output {} is in object storage; pipelines write to a local (or shared) directory for now",
            def.output.display()
        )));
    }
    let mut store = crate::spec::open_store(db)?;
    if db.path().is_none() {
        // Workers on other hosts plan and run the stages from the store alone.
        for stage in &def.stages {
            let bytes = std::fs::read(&stage.component).map_err(|source| {
                ExecError::Engine(mr_engine::EngineError::Read {
                    path: stage.component.clone(),
                    source,
                })
            })?;
            store.put_component(&stage.component_sha256, &bytes)?;
        }
    }
    let text = serde_json::to_string(&def).expect("a pipeline serialises");
    let names: Vec<&str> = def.stages.iter().map(|s| s.name.as_str()).collect();
    let (id, created) = store.put_pipeline(&NewPipeline {
        name: &def.name,
        output: &def.output.to_string_lossy(),
        definition: &text,
        stages: &names,
    })?;
    Ok(SubmittedPipeline { id, created })
}

/// What advancing needs besides the store: where the store is (jobs are planned through it),
/// a runtime to load components, scratch space for components fetched from the store, and
/// who is asking (the owner of stage claims).
pub struct Advancer<'a> {
    /// The store.
    pub db: &'a StoreLocation,
    /// Loads stage components.
    pub runtime: &'a Arc<Runtime>,
    /// Where components kept only in the store are written.
    pub scratch: &'a Path,
    /// This process (and thread), as leases name it.
    pub owner: &'a str,
    /// Make failed stage jobs runnable again (a rerun of the pipeline), instead of failing
    /// the pipeline.
    pub retry_failed: bool,
}

/// What one [`advance`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advanced {
    /// The pipeline's phase afterwards.
    pub phase: PipelinePhase,
    /// Stage jobs planned (or resumed) by this call.
    pub planned: usize,
}

/// What a stage's fingerprint is made of, kept with it to explain the next run's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ingredients {
    component: String,
    params: BTreeMap<String, String>,
    settings: serde_json::Value,
    inputs: Vec<(String, String)>,
}

impl Ingredients {
    fn fingerprint(&self) -> String {
        let text = serde_json::to_string(self).expect("ingredients serialise");
        mr_engine::hex(&Sha256::digest(text.as_bytes()))
    }

    /// Why a stage with these ingredients is not the one recorded with `before`, in words.
    fn changed_since(&self, before: Option<&str>) -> String {
        let Some(before) = before.and_then(|b| serde_json::from_str::<Ingredients>(b).ok()) else {
            return "first run".into();
        };
        let mut why = Vec::new();
        if before.component != self.component {
            why.push(format!(
                "the job changed (component {} -> {})",
                short(&before.component),
                short(&self.component)
            ));
        }
        let changes = |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .filter(|k| a.get(*k) != b.get(*k))
                .map(|k| {
                    let show =
                        |v: Option<&String>| v.map_or("(unset)".into(), |v| format!("{v:?}"));
                    format!("{k} {} -> {}", show(a.get(k)), show(b.get(k)))
                })
                .collect::<Vec<_>>()
        };
        let params = changes(&before.params, &self.params);
        if !params.is_empty() {
            why.push(format!("params changed: {}", params.join(", ")));
        }
        let flat = |v: &serde_json::Value| -> BTreeMap<String, String> {
            v.as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(_, v)| !v.is_null())
                        .map(|(k, v)| (k.clone(), v.to_string()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let settings = changes(&flat(&before.settings), &flat(&self.settings));
        if !settings.is_empty() {
            why.push(format!("settings changed: {}", settings.join(", ")));
        }
        let old: BTreeMap<&str, &str> = before
            .inputs
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let changed: Vec<&str> = self
            .inputs
            .iter()
            .filter(|(name, digest)| old.get(name.as_str()) != Some(&digest.as_str()))
            .map(|(name, _)| name.as_str())
            .collect();
        if !changed.is_empty() {
            why.push(format!("input changed: {}", changed.join(", ")));
        } else if before.inputs.len() != self.inputs.len() {
            why.push("inputs changed".into());
        }
        if why.is_empty() {
            "its job is gone from the store".into()
        } else {
            why.join("; ")
        }
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// What `_MANIFEST` says of one file (the fields a downstream stage needs).
#[derive(Debug, Clone, Deserialize)]
struct ListedFile {
    name: String,
    bytes: u64,
    sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
struct ListedOutput {
    files: Vec<ListedFile>,
    #[serde(default)]
    sink: Option<serde_json::Value>,
}

/// A finished stage's output, as its `_MANIFEST` lists it.
struct StageOutput {
    dir: PathBuf,
    listed: ListedOutput,
    /// SHA-256 of the listed files (names, sizes, checksums): the stage's content, for the
    /// fingerprints of the stages that read it.
    digest: String,
}

fn read_manifest(dir: &Path) -> Result<StageOutput, String> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let listed: ListedOutput = serde_json::from_slice(&text)
        .map_err(|e| format!("{} is not an mr manifest: {e}", path.display()))?;
    let mut h = Sha256::new();
    for f in &listed.files {
        h.update(format!("{}\t{}\t{}\n", f.name, f.bytes, f.sha256).as_bytes());
    }
    Ok(StageOutput {
        dir: dir.to_owned(),
        listed,
        digest: mr_engine::hex(&h.finalize()),
    })
}

impl StageOutput {
    /// The parts, each checked against the manifest (size; SHA-256 when asked).
    fn verified_parts(&self, upstream: &str, sha256: bool) -> Result<Vec<String>, String> {
        if self.listed.sink.is_some() {
            return Err(format!(
                "stage {upstream} writes to a SQLite table, not to part files: read the table with a `sqlite:DB?table=T` input instead of stage:{upstream}"
            ));
        }
        let mut parts = Vec::with_capacity(self.listed.files.len());
        for file in &self.listed.files {
            let path = self.dir.join(&file.name);
            let meta = std::fs::metadata(&path).map_err(|e| {
                format!(
                    "stage {upstream}'s {} cannot be read ({e}); its _MANIFEST lists it with {} bytes",
                    path.display(),
                    file.bytes
                )
            })?;
            if meta.len() != file.bytes {
                return Err(format!(
                    "stage {upstream}'s {} is {} bytes but its _MANIFEST lists {} bytes: it changed after stage {upstream} finished, so it is not read (remove {} to have stage {upstream} run again)",
                    path.display(),
                    meta.len(),
                    file.bytes,
                    self.dir.join(MANIFEST).display()
                ));
            }
            if sha256 {
                let found = crate::outdir::file_sha256(&path)
                    .and_then(|sha| sha.ok_or_else(|| std::io::ErrorKind::NotFound.into()))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if found != file.sha256 {
                    return Err(format!(
                        "stage {upstream}'s {} has SHA-256 {found} but its _MANIFEST lists {}: it changed after stage {upstream} finished, so it is not read",
                        path.display(),
                        file.sha256
                    ));
                }
            }
            parts.push(path.to_string_lossy().into_owned());
        }
        Ok(parts)
    }
}

/// The settings that decide what a stage writes, as its fingerprint sees them: the job's
/// settings without what is set per stage (inputs, output, params) and without what never
/// changes a successful job's output: hooks, `overwrite`, the allowances (attempts, bad
/// records, inflate ratio, counter caps) and the limits (memory, call time), which only decide
/// how much failure is tolerated.
fn settings_key(settings: &SubmitSpec) -> serde_json::Value {
    let mut value = serde_json::to_value(settings).expect("settings serialise");
    if let Some(o) = value.as_object_mut() {
        for gone in [
            "inputs",
            "output",
            "params",
            "overwrite",
            "notify",
            "on_done",
            "max_attempts",
            "max_bad_records",
            "max_inflate_ratio",
            "max_counters",
            "max_counter_name_bytes",
            // Limits too only decide whether a call fails, never what a successful one returns.
            "memory_limit",
            "call_timeout",
            // Debug mode changes no output; a stage whose job did not keep its data is run
            // again in debug mode (see `advance`).
            "debug",
        ] {
            o.remove(gone);
        }
        o.retain(|_, v| !v.is_null());
    }
    value
}

/// A stage's fingerprint ingredients and its inputs (`stage:NAME` still unresolved: its parts
/// are read, and verified, only when the stage is planned; a reused stage reads nothing).
struct Prepared {
    ingredients: Ingredients,
    inputs: Vec<String>,
}

fn prepare(
    def: &PipelineDef,
    stage: &StageDef,
    outputs: &HashMap<String, StageOutput>,
) -> Result<Prepared, String> {
    let mut inputs = Vec::new();
    let mut digests = Vec::new();
    let output = def.stage_output(&stage.name);
    for input in &stage.inputs {
        match input {
            StageInput::Stage(up) => {
                let out = &outputs[up];
                inputs.push(input.to_string());
                digests.push((input.to_string(), out.digest.clone()));
            }
            StageInput::Spec(spec) => {
                let files = mr_io::resolve_inputs(std::slice::from_ref(spec), Some(&output))
                    .map_err(|e| format!("input {spec}: {e}"))?;
                let mut h = Sha256::new();
                for f in &files {
                    let (len, modified) = if tracks_changes(f, &Sink::Text) {
                        let modified = crate::spec::modified_ns(&f.path, &f.display)
                            .map_err(|e| format!("input {spec}: {e}"))?;
                        (f.len, modified)
                    } else {
                        (0, 0)
                    };
                    h.update(format!("{}\t{len}\t{modified}\n", f.path.display()).as_bytes());
                }
                digests.push((spec.clone(), mr_engine::hex(&h.finalize())));
                inputs.push(spec.clone());
            }
        }
    }
    Ok(Prepared {
        ingredients: Ingredients {
            component: stage.component_sha256.clone(),
            params: stage.settings.params.clone(),
            settings: settings_key(&stage.settings),
            inputs: digests,
        },
        inputs,
    })
}

/// Moves pipeline `id` on as far as it can now: records stages whose output is complete (run,
/// or reused by fingerprint), plans the jobs of stages whose inputs are complete, and ends the
/// pipeline when every stage is complete, or when one failed (its error names the stage).
/// Planned jobs are run by whoever works on the store.
pub fn advance(
    store: &mut dyn JobStore,
    ctx: &Advancer<'_>,
    id: i64,
) -> Result<Advanced, ExecError> {
    let row = store.pipeline(id)?;
    if row.phase != PipelinePhase::Running {
        return Ok(Advanced {
            phase: row.phase,
            planned: 0,
        });
    }
    let def: PipelineDef =
        serde_json::from_str(&row.definition).map_err(|e| ExecError::BadPipeline {
            pipeline: row.name.clone(),
            message: format!(
                "its recorded definition cannot be read ({e}): was it written by a newer mr-host?"
            ),
        })?;
    let recorded: HashMap<String, StageRow> = store
        .stages(id)?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let mut outputs: HashMap<String, StageOutput> = HashMap::new();
    let mut complete = true;
    let mut planned = 0;
    for stage in &def.stages {
        let Some(rec) = recorded.get(&stage.name) else {
            // The definition changed under us (a rerun recorded a new one): the next round
            // sees the new stages.
            complete = false;
            continue;
        };
        if stage.upstream().any(|up| !outputs.contains_key(up)) {
            complete = false;
            continue;
        }
        let fail = |store: &mut dyn JobStore, claim: Option<u32>, message: String| {
            store.update_stage(
                id,
                &stage.name,
                claim,
                &StageUpdate {
                    state: Some(StageState::Failed),
                    reason: Some(&message),
                    ..Default::default()
                },
            )?;
            let error = format!("stage {}: {message}", stage.name);
            store.set_pipeline_phase(id, PipelinePhase::Failed, Some(&error))?;
            tracing::error!(pipeline = id, "pipeline {} failed: {error}", def.name);
            Ok::<_, ExecError>(Advanced {
                phase: PipelinePhase::Failed,
                planned,
            })
        };
        let prepared = match prepare(&def, stage, &outputs) {
            Ok(p) => p,
            Err(message) => return fail(store, None, message),
        };
        let fingerprint = prepared.ingredients.fingerprint();
        let mut damaged = None;
        if rec.fingerprint.as_deref() == Some(fingerprint.as_str())
            && let Some(job_id) = rec.job
            && let Some(job) = job_if_any(store, job_id)?
        {
            match job.phase {
                Phase::Done if stage.settings.debug && !kept_data(&job) => {
                    damaged =
                        Some("debug mode: its job did not keep its map output and runs".to_owned());
                }
                Phase::Done => match read_manifest(&def.stage_output(&stage.name)) {
                    Ok(out) => {
                        if !rec.state.is_complete() {
                            let (state, reason) = if rec.state == StageState::Running {
                                (StageState::Done, None)
                            } else {
                                (
                                    StageState::Reused,
                                    Some(format!("unchanged: reusing job {job_id}'s output")),
                                )
                            };
                            store.update_stage(
                                id,
                                &stage.name,
                                None,
                                &StageUpdate {
                                    state: Some(state),
                                    reason: reason.as_deref(),
                                    if_job: Some(job_id),
                                    ..Default::default()
                                },
                            )?;
                        }
                        outputs.insert(stage.name.clone(), out);
                        continue;
                    }
                    Err(message) => damaged = Some(message),
                },
                Phase::Failed | Phase::Cancelled if !ctx.retry_failed => {
                    let message = format!(
                        "job {job_id} (`{}`) {}: {}",
                        job.name,
                        if job.phase == Phase::Failed {
                            "failed"
                        } else {
                            "was cancelled"
                        },
                        job.error.as_deref().unwrap_or("no error recorded")
                    );
                    return fail(store, None, message);
                }
                Phase::Failed | Phase::Cancelled => {}
                Phase::Map | Phase::Reduce | Phase::Finalize => {
                    if rec.state != StageState::Running {
                        store.update_stage(
                            id,
                            &stage.name,
                            None,
                            &StageUpdate {
                                state: Some(StageState::Running),
                                if_job: Some(job_id),
                                ..Default::default()
                            },
                        )?;
                    }
                    complete = false;
                    continue;
                }
            }
        }
        complete = false;
        let dead = rec.owner.as_deref().filter(|o| crate::owner::is_dead(o));
        let Some(claim) = store.claim_stage(id, &stage.name, ctx.owner, CLAIM_MS, dead)? else {
            continue; // another process is planning it
        };
        // The decision above was made from a snapshot. Another advancer may have planned the
        // stage between that snapshot and this claim (its update released the claim); planning
        // again from the stale snapshot would record a finished stage as running.
        let now = store.stages(id)?.into_iter().find(|s| s.name == stage.name);
        if now.as_ref().is_none_or(|now| {
            now.job != rec.job || now.fingerprint != rec.fingerprint || now.state != rec.state
        }) {
            store.update_stage(id, &stage.name, Some(claim), &StageUpdate::default())?;
            continue;
        }
        let reason = match &damaged {
            Some(message) if message.starts_with("debug mode") => message.clone(),
            Some(message) => format!("its output is damaged ({message})"),
            None if rec.fingerprint.as_deref() == Some(fingerprint.as_str()) => {
                "retrying its failed job".into()
            }
            None => prepared.ingredients.changed_since(rec.detail.as_deref()),
        };
        let mut inputs = Vec::new();
        for input in &prepared.inputs {
            match StageInput::parse(input) {
                StageInput::Stage(up) => {
                    match outputs[&up].verified_parts(&up, stage.verify_sha256) {
                        Ok(parts) => inputs.extend(parts),
                        Err(m) => {
                            return fail(store, Some(claim), format!("input stage:{up}: {m}"));
                        }
                    }
                }
                StageInput::Spec(spec) => inputs.push(spec),
            }
        }
        let submitted = plan_stage(ctx, &def, stage, inputs, damaged.is_some());
        let job = match submitted {
            Ok(job) => job,
            Err(e) => return fail(store, Some(claim), crate::error_chain(&e)),
        };
        let detail = serde_json::to_string(&prepared.ingredients).expect("ingredients serialise");
        let recorded = store.update_stage(
            id,
            &stage.name,
            Some(claim),
            &StageUpdate {
                state: Some(StageState::Running),
                fingerprint: Some(&fingerprint),
                job: Some(job),
                reason: Some(&reason),
                detail: Some(&detail),
                if_job: None,
            },
        )?;
        if recorded {
            planned += 1;
            tracing::info!(
                pipeline = id,
                "pipeline {}: stage {} runs as job {job} ({reason})",
                def.name,
                stage.name
            );
        }
    }
    if complete {
        store.set_pipeline_phase(id, PipelinePhase::Done, None)?;
        return Ok(Advanced {
            phase: PipelinePhase::Done,
            planned,
        });
    }
    Ok(Advanced {
        phase: PipelinePhase::Running,
        planned,
    })
}

/// Whether a job was planned to keep its work files (`--debug`).
fn kept_data(job: &mr_store::JobRow) -> bool {
    JobSpec::parse(&job.spec, job.id).is_ok_and(|spec| spec.debug)
}

fn job_if_any(store: &dyn JobStore, id: i64) -> Result<Option<mr_store::JobRow>, ExecError> {
    match store.job(id) {
        Ok(job) => Ok(Some(job)),
        Err(mr_store::StoreError::NoSuchJob { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Plans (or finds, to resume) the job of `stage`, replacing any other job's output in the
/// stage's directory (with `redo`, even its own: its output was damaged).
fn plan_stage(
    ctx: &Advancer<'_>,
    def: &PipelineDef,
    stage: &StageDef,
    inputs: Vec<String>,
    redo: bool,
) -> Result<i64, ExecError> {
    let component = {
        let store = mr_store::open(ctx.db)?;
        crate::worker::load_component(
            ctx.runtime,
            ctx.scratch,
            &stage.component,
            &stage.component_sha256,
            store.as_ref(),
        )?
        .ok_or_else(|| ExecError::StageFailed {
            pipeline: def.name.clone(),
            stage: stage.name.clone(),
            message: format!(
                "its component {} no longer holds what was recorded (SHA-256 {}), and the store keeps no copy: rerun the pipeline command to record the new one",
                stage.component.display(),
                stage.component_sha256
            ),
        })?
    };
    let settings = SubmitSpec {
        inputs,
        output: def.stage_output(&stage.name),
        overwrite: redo,
        ..stage.settings.clone()
    };
    let mut request = settings.request(component)?;
    request.replace = true;
    Ok(crate::submit(ctx.db, &request)?.id)
}

/// Records `def` in the store at `db` (see [`submit_pipeline`]) and works on its stages with
/// this process's worker threads until every stage is done; then returns its status. Failed
/// stage jobs of an earlier run are retried; a stage that fails now is an error naming it.
/// Rerunning after a crash resumes: stages whose output is complete are not run again.
pub fn run_pipeline(
    db: &StoreLocation,
    def: &PipelineDef,
    options: &crate::WorkerOptions,
    runtime: &Arc<Runtime>,
) -> Result<PipelineStatus, ExecError> {
    let submitted = submit_pipeline(db, def)?;
    resume_pipeline(db, submitted.id, options, runtime)
}

/// Works on pipeline `id` until it is over (see [`run_pipeline`]).
pub fn resume_pipeline(
    db: &StoreLocation,
    id: i64,
    options: &crate::WorkerOptions,
    runtime: &Arc<Runtime>,
) -> Result<PipelineStatus, ExecError> {
    let mut store = mr_store::open(db)?;
    let row = store.pipeline(id)?;
    if row.phase == PipelinePhase::Failed {
        store.set_pipeline_phase(id, PipelinePhase::Running, None)?;
    }
    let owner = crate::owner::owner(u32::MAX);
    // Failed stage jobs become runnable again here, once; while working, a failure ends the
    // pipeline.
    advance(
        store.as_mut(),
        &Advancer {
            db,
            runtime,
            scratch: &options.scratch,
            owner: &owner,
            retry_failed: true,
        },
        id,
    )?;
    let options = crate::WorkerOptions {
        only_job: None,
        only_pipeline: Some(id),
        follow: None,
        ..options.clone()
    };
    crate::work(db, &options, runtime, None)?;
    let status = pipeline_status(store.as_ref(), id)?;
    match status.pipeline.phase {
        PipelinePhase::Done => Ok(status),
        PipelinePhase::Failed => Err(ExecError::BadPipeline {
            pipeline: status.pipeline.name.clone(),
            message: status
                .pipeline
                .error
                .clone()
                .unwrap_or_else(|| "failed".into()),
        }),
        PipelinePhase::Running => Err(ExecError::BadPipeline {
            pipeline: status.pipeline.name.clone(),
            message: "its workers stopped before it finished; rerun the command to resume it"
                .into(),
        }),
    }
}

/// A pipeline's status: its row, its stages in dependency order with what each reads, and
/// their jobs.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineStatus {
    /// The pipeline.
    #[serde(flatten)]
    pub pipeline: PipelineRow,
    /// Its stages, in dependency order.
    pub stages: Vec<StageStatus>,
}

/// One stage's status.
#[derive(Debug, Clone, Serialize)]
pub struct StageStatus {
    /// The stage as recorded.
    #[serde(flatten)]
    pub row: StageRow,
    /// What it reads (`stage:NAME` for another stage's output).
    pub inputs: Vec<String>,
    /// Where its output is.
    pub output: PathBuf,
    /// Its job's phase, when it has a job.
    pub job_phase: Option<Phase>,
    /// Its job's tasks done and in all.
    pub tasks_done: u32,
    /// Its job's tasks.
    pub tasks: u32,
    /// The map output and shuffle runs its job kept (debug mode), when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<KeptData>,
}

/// Data a debug-mode job kept: its work directory, for `mr-host dump`.
#[derive(Debug, Clone, Serialize)]
pub struct KeptData {
    /// The directory.
    pub dir: PathBuf,
    /// Run files (`*.run`) in it.
    pub runs: u64,
    /// Files in it, in all.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

fn kept_in(dir: &Path) -> KeptData {
    let mut kept = KeptData {
        dir: dir.to_owned(),
        runs: 0,
        files: 0,
        bytes: 0,
    };
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                dirs.push(entry.path());
            } else {
                kept.files += 1;
                kept.bytes += meta.len();
                if entry.path().extension().is_some_and(|e| e == "run") {
                    kept.runs += 1;
                }
            }
        }
    }
    kept
}

/// The status of pipeline `id`.
pub fn pipeline_status(store: &dyn JobStore, id: i64) -> Result<PipelineStatus, ExecError> {
    let pipeline = store.pipeline(id)?;
    let def: Option<PipelineDef> = serde_json::from_str(&pipeline.definition).ok();
    let mut rows: HashMap<String, StageRow> = store
        .stages(id)?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let mut stages = Vec::new();
    let order: Vec<(String, Vec<String>, PathBuf)> = match &def {
        Some(def) => def
            .stages
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    s.inputs.iter().map(ToString::to_string).collect(),
                    def.stage_output(&s.name),
                )
            })
            .collect(),
        None => {
            let mut names: Vec<String> = rows.keys().cloned().collect();
            names.sort();
            names
                .into_iter()
                .map(|n| (n.clone(), Vec::new(), Path::new(&pipeline.output).join(&n)))
                .collect()
        }
    };
    for (name, inputs, output) in order {
        let Some(row) = rows.remove(&name) else {
            continue;
        };
        let (mut job_phase, mut tasks_done, mut tasks, mut kept) = (None, 0, 0, None);
        if let Some(job) = row.job
            && let Some(j) = job_if_any(store, job)?
        {
            job_phase = Some(j.phase);
            if let Ok(spec) = JobSpec::parse(&j.spec, job)
                && spec.debug
            {
                kept = Some(kept_in(&spec.work_dir()));
            }
            for counts in store.status(job, 0)?.tasks {
                tasks += counts.total;
                tasks_done += counts.done;
            }
        }
        stages.push(StageStatus {
            row,
            inputs,
            output,
            job_phase,
            tasks_done,
            tasks,
            kept,
        });
    }
    Ok(PipelineStatus { pipeline, stages })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(name: &str, inputs: &[&str]) -> StageDef {
        StageDef {
            name: name.into(),
            component: "/x.wasm".into(),
            component_sha256: "0".repeat(64),
            inputs: inputs.iter().map(|i| StageInput::parse(i)).collect(),
            settings: SubmitSpec::default(),
            verify_sha256: false,
        }
    }

    fn def(stages: Vec<StageDef>) -> PipelineDef {
        PipelineDef {
            name: "p".into(),
            output: "/out".into(),
            stages,
        }
    }

    #[test]
    fn stages_are_ordered_after_what_they_read() {
        let d = def(vec![
            stage("report", &["stage:daily", "stage:pages"]),
            stage("daily", &["stage:sessions"]),
            stage("sessions", &["/logs"]),
            stage("pages", &["stage:sessions"]),
        ])
        .check_and_order()
        .unwrap();
        let names: Vec<&str> = d.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["sessions", "daily", "pages", "report"]);
    }

    #[test]
    fn cycles_and_dangling_references_are_refused_by_name() {
        let e = def(vec![
            stage("a", &["stage:c"]),
            stage("b", &["stage:a"]),
            stage("c", &["stage:b"]),
            stage("d", &["/in"]),
        ])
        .check_and_order()
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "pipeline p: its stages form a cycle: b -> c -> a -> b (a stage cannot read, even indirectly, its own output)"
        );
        let e = def(vec![stage("a", &["stage:nope"])])
            .check_and_order()
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "pipeline p: stage a reads stage:nope, but there is no stage nope (stages: a)"
        );
        let e = def(vec![stage("a", &["stage:a"])])
            .check_and_order()
            .unwrap_err()
            .to_string();
        assert!(e.contains("stage a reads its own output"), "{e}");
        let e = def(vec![stage("_x", &["/in"])])
            .check_and_order()
            .unwrap_err()
            .to_string();
        assert!(e.contains("not starting with `_`"), "{e}");
    }

    #[test]
    fn a_change_is_explained_by_what_changed() {
        let base = Ingredients {
            component: "a".repeat(64),
            params: [("min".to_owned(), "3".to_owned())].into(),
            settings: serde_json::json!({"reducers": 2}),
            inputs: vec![("stage:count".into(), "d1".into())],
        };
        let before = serde_json::to_string(&base).unwrap();
        assert_eq!(base.changed_since(None), "first run");
        let params = Ingredients {
            params: [("min".to_owned(), "5".to_owned())].into(),
            ..base.clone()
        };
        assert_eq!(
            params.changed_since(Some(&before)),
            r#"params changed: min "3" -> "5""#
        );
        let more = Ingredients {
            settings: serde_json::json!({"reducers": 3}),
            inputs: vec![("stage:count".into(), "d2".into())],
            ..base.clone()
        };
        assert_eq!(
            more.changed_since(Some(&before)),
            "settings changed: reducers \"2\" -> \"3\"; input changed: stage:count"
        );
        assert_ne!(base.fingerprint(), more.fingerprint());
        assert_eq!(base.fingerprint(), base.clone().fingerprint());
    }

    #[test]
    fn allowances_and_hooks_do_not_change_a_fingerprint_but_reducers_do() {
        let s = SubmitSpec {
            reducers: Some(2),
            ..Default::default()
        };
        let allowed = SubmitSpec {
            max_attempts: Some(9),
            notify: Some("http://x".into()),
            ..s.clone()
        };
        assert_eq!(settings_key(&s), settings_key(&allowed));
        let other = SubmitSpec {
            reducers: Some(3),
            ..s.clone()
        };
        assert_ne!(settings_key(&s), settings_key(&other));
    }
}
