//! `mr-engine`: the narrow wrapper around wasmtime that runs job components.
//!
//! - One [`Runtime`] per process: one wasmtime `Engine`, one `Linker` per world, and an on-disk
//!   cache of compiled components keyed by the component's SHA-256 and the engine's precompile
//!   compatibility hash (a `.cwasm` only loads into an engine with the same configuration).
//! - One [`JobComponent`] per job: the component, its world and contract version, its
//!   `InstancePre`, what its `describe` export says, its parameters and its counter caps
//!   ([`JobLimits`]).
//! - One [`Instance`] per worker thread: a `Store` and an instance reused across batches,
//!   re-created after a trap (a trapped instance is poisoned). Each store has an empty WASI
//!   context (no preopened directories, no network, no environment variables, no arguments) and
//!   captures the guest's stdout/stderr so the tail can be attached to the error it explains.
//!
//! Every call is bounded (`docs/sandbox.md`): memory by the store's limiter (`limiter.rs`),
//! time by one deadline that the epoch enforces while the guest computes and the WASI waits
//! enforce while it waits (`wait.rs`), its result by `capped.rs`, and what the host keeps of
//! the guest's text and counters by `limits.rs`. A failed call becomes a [`GuestError`],
//! classified from wasmtime's trap codes and these limits' typed errors (`error.rs`). The
//! contract's names and versions are in [`contract`].

mod bindings;
mod capped;
pub mod contract;
mod error;
mod instance;
mod limiter;
pub mod limits;
mod pipe;
mod wait;

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

pub use error::{GuestError, GuestErrorKind, TrapKind};
pub use instance::{Instance, LifecycleEvent, TaskIdentity, ValueSource};
pub use limiter::MemoryLimitExceeded;
pub use limits::{CounterLimitExceeded, JobLimits};

/// Errors loading or inspecting a component (running one reports [`GuestError`]).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The file could not be read.
    #[error("cannot read job component {path}: {source}")]
    Read {
        /// The component's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a valid component, or it needs imports the host does not provide.
    #[error("cannot load job component {path}: {message}")]
    Load {
        /// The component's path.
        path: PathBuf,
        /// What wasmtime said, with its causes.
        message: String,
    },
    /// The component exports neither world of any supported version of the `mr:job` contract.
    #[error(
        "{path} is not an mr job: it exports [{exports}], but a job exports {}",
        contract::expected_exports()
    )]
    NotAJob {
        /// The component's path.
        path: PathBuf,
        /// What it does export.
        exports: String,
    },
    /// The component imports interfaces the host does not provide.
    #[error(
        "job component {} imports what mr-host does not provide: {}; a job may import only mr:job/context, mr:job/values and WASI 0.2 (linked with no files, network or environment)",
        path.display(), missing.join(", ")
    )]
    MissingImports {
        /// The component's path.
        path: PathBuf,
        /// The imports nothing satisfies.
        missing: Vec<String>,
    },
    /// `describe` failed.
    #[error("job component {path} failed in `describe`: {error}")]
    Describe {
        /// The component's path.
        path: PathBuf,
        /// The guest failure.
        error: Box<GuestError>,
    },
    /// The `param-types` export contradicts `describe` (a bug in the job or its SDK).
    #[error("job component {path} declares its parameters' types wrongly: {message}")]
    BadParamTypes {
        /// The component's path.
        path: PathBuf,
        /// What is wrong, naming the parameter.
        message: String,
    },
    /// Engine configuration failed.
    #[error("cannot configure the wasm engine: {0}")]
    Config(String),
}

/// Which world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// Map only; map output goes straight to the writer.
    MapperJob,
    /// Map, optional combine, reduce.
    MapreduceJob,
}

impl World {
    /// The WIT name of the world.
    pub fn name(self) -> &'static str {
        match self {
            World::MapperJob => "mapper-job",
            World::MapreduceJob => "mapreduce-job",
        }
    }
}

/// A parameter a job declares.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ParamInfo {
    /// Name as given to `--param`.
    pub name: String,
    /// One line of help.
    pub description: String,
    /// Default value, if any.
    pub default: Option<String>,
    /// Whether the job refuses to run without it.
    pub required: bool,
    /// What its values must look like (always `String` for a 0.1.0 component).
    #[serde(rename = "type")]
    pub kind: ParamType,
}

/// The type of a parameter's value, declared by the job's `param-types` export (contract
/// 0.1.1). Values are still passed to the job as text; the host only checks them, when the
/// job is submitted, so that a typo fails there and names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "values")]
pub enum ParamType {
    /// Any text.
    String,
    /// A signed 64-bit decimal integer.
    Integer,
    /// A finite decimal number.
    Float,
    /// `true` or `false`.
    Bool,
    /// One of these words.
    Enum(Vec<String>),
}

impl ParamType {
    /// Checks `value` against the type; the error says what was expected, for a message that
    /// names the parameter.
    pub fn check(&self, value: &str) -> Result<(), String> {
        let ok = match self {
            ParamType::String => true,
            ParamType::Integer => value.parse::<i64>().is_ok(),
            ParamType::Float => value.parse::<f64>().is_ok_and(f64::is_finite),
            ParamType::Bool => matches!(value, "true" | "false"),
            ParamType::Enum(words) => words.iter().any(|w| w == value),
        };
        if ok {
            Ok(())
        } else {
            Err(format!("must be {}, not {value:?}", self.expected()))
        }
    }

    /// What a value of this type is, in words: "an integer (e.g. 42)".
    pub fn expected(&self) -> String {
        match self {
            ParamType::String => "text".to_owned(),
            ParamType::Integer => "an integer (e.g. 42 or -7)".to_owned(),
            ParamType::Float => "a number (e.g. 0.25, 3 or 1e-3)".to_owned(),
            ParamType::Bool => "true or false".to_owned(),
            ParamType::Enum(words) => format!("one of {}", words.join(", ")),
        }
    }
}

impl std::fmt::Display for ParamType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamType::String => f.write_str("string"),
            ParamType::Integer => f.write_str("integer"),
            ParamType::Float => f.write_str("float"),
            ParamType::Bool => f.write_str("bool"),
            ParamType::Enum(words) => write!(f, "enum({})", words.join("|")),
        }
    }
}

/// What a job's `describe` export says about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobInfo {
    /// Short name.
    pub name: String,
    /// The job's version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// The world the component implements.
    pub world: World,
    /// Whether it has a working combiner.
    pub combine: bool,
    /// Whether it has a reducer.
    pub reduce: bool,
    /// Whether it exports `lifecycle` (wants lifecycle events).
    pub events: bool,
    /// Declared parameters.
    pub params: Vec<ParamInfo>,
}

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Maximum linear memory per instance, in bytes.
    pub memory_limit: usize,
    /// Longest a single guest call may run; `None` for no limit. Enforced by epoch
    /// interruption: a ticker thread advances the engine's epoch every [`EPOCH_TICK`].
    pub call_timeout: Option<Duration>,
    /// Fuel (roughly, wasm instructions) a single guest call may burn; `None` for no limit.
    /// Deterministic, unlike a timeout, but it costs throughput (measured: about 17%).
    pub fuel: Option<u64>,
    /// Largest output one guest call may return, in bytes; refused before it is copied out of
    /// the guest.
    pub max_output_bytes: usize,
    /// Wasm stack per call, in bytes: deeper recursion traps with a stack overflow.
    pub max_wasm_stack: usize,
}

/// How often the epoch ticker advances the engine's epoch: the resolution of `call_timeout`.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            cache_dir: default_cache_dir(),
            memory_limit: 4 << 30,
            call_timeout: Some(Duration::from_secs(60)),
            fuel: None,
            max_output_bytes: 256 << 20,
            max_wasm_stack: 1 << 20,
        }
    }
}

/// `$MR_CACHE_DIR`, else `$XDG_CACHE_HOME/mr/components`, else `~/.cache/mr/components`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MR_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("mr").join("components"))
}

/// The process-wide wasm runtime.
pub struct Runtime {
    engine: Engine,
    mapreduce_linker: Linker<instance::HostState>,
    mapper_linker: Linker<instance::HostState>,
    options: RuntimeOptions,
    compat_hash: String,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Creates the engine and linkers.
    pub fn new(options: RuntimeOptions) -> Result<Arc<Self>, EngineError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        // Both change the compiled code (so the compatibility hash, so the cache key): a
        // component compiled without them can never run with them.
        config.epoch_interruption(options.call_timeout.is_some());
        config.consume_fuel(options.fuel.is_some());
        config.max_wasm_stack(options.max_wasm_stack);
        let engine = Engine::new(&config).map_err(|e| EngineError::Config(format!("{e:#}")))?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        if options.call_timeout.is_some() {
            let engine = engine.clone();
            let stop = ticker_stop.clone();
            std::thread::Builder::new()
                .name("mr-epoch-ticker".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| EngineError::Config(format!("cannot start the epoch ticker: {e}")))?;
        }
        let mapreduce_linker = bindings::mapreduce_linker(&engine)
            .map_err(|e| EngineError::Config(format!("{e:#}")))?;
        let mapper_linker =
            bindings::mapper_linker(&engine).map_err(|e| EngineError::Config(format!("{e:#}")))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let compat_hash = format!("{:016x}", hasher.finish());
        Ok(Arc::new(Runtime {
            engine,
            mapreduce_linker,
            mapper_linker,
            options,
            compat_hash,
            ticker_stop,
        }))
    }

    /// Loads a component from disk (through the compiled-component cache), checks its world and
    /// calls its `describe` export.
    pub fn load(self: &Arc<Self>, path: &Path) -> Result<Arc<JobComponent>, EngineError> {
        let bytes = std::fs::read(path).map_err(|source| EngineError::Read {
            path: path.to_owned(),
            source,
        })?;
        let sha256 = hex(&Sha256::digest(&bytes));
        let component = self.compile_cached(path, &bytes, &sha256)?;
        let load_err = |e: wasmtime::Error| EngineError::Load {
            path: path.to_owned(),
            message: format!("{e:#}"),
        };
        let exports: Vec<String> = component
            .component_type()
            .exports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let missing: Vec<String> = component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .filter(|name| !provided(name))
            .collect();
        if !missing.is_empty() {
            return Err(EngineError::MissingImports {
                path: path.to_owned(),
                missing,
            });
        }
        let Some((world, version)) = contract::detect_world(&exports) else {
            return Err(EngineError::NotAJob {
                path: path.to_owned(),
                exports: exports.join(", "),
            });
        };
        let has_lifecycle = exports.contains(&contract::interface_name(
            contract::exports::LIFECYCLE,
            version,
        ));
        let has_param_types = exports.contains(&contract::interface_name(
            contract::exports::PARAM_TYPES,
            version,
        ));
        let on_demand = contract::locations_on_demand(version);
        let (pre, lifecycle, param_types) = match world {
            // 0.2.0: its exports other than the hot ones are found by name in each instance.
            World::MapreduceJob | World::MapperJob if on_demand => {
                let linker = match world {
                    World::MapreduceJob => &self.mapreduce_linker,
                    World::MapperJob => &self.mapper_linker,
                };
                let instance_pre = linker.instantiate_pre(&component).map_err(load_err)?;
                (bindings::JobPre::V2(instance_pre), None, None)
            }
            World::MapreduceJob => {
                let instance_pre = self
                    .mapreduce_linker
                    .instantiate_pre(&component)
                    .map_err(load_err)?;
                let lifecycle =
                    lifecycle_indices(&instance_pre, has_lifecycle).map_err(load_err)?;
                let param_types =
                    param_types_indices(&instance_pre, has_param_types).map_err(load_err)?;
                let pre = bindings::MapreduceJobPre::new(instance_pre).map_err(load_err)?;
                (bindings::JobPre::MapReduce(pre), lifecycle, param_types)
            }
            World::MapperJob => {
                let instance_pre = self
                    .mapper_linker
                    .instantiate_pre(&component)
                    .map_err(load_err)?;
                let lifecycle =
                    lifecycle_indices(&instance_pre, has_lifecycle).map_err(load_err)?;
                let param_types =
                    param_types_indices(&instance_pre, has_param_types).map_err(load_err)?;
                let pre = bindings::MapperJobPre::new(instance_pre).map_err(load_err)?;
                (bindings::JobPre::Mapper(pre), lifecycle, param_types)
            }
        };
        let mut job = JobComponent {
            path: path.to_owned(),
            sha256,
            contract_version: version,
            lifecycle,
            param_types,
            exports_lifecycle: has_lifecycle,
            exports_param_types: has_param_types,
            runtime: self.clone(),
            pre,
            info: None,
            params: Arc::new(BTreeMap::new()),
            limits: JobLimits::default(),
            options: Arc::new(self.options.clone()),
            warned_of_event_counters: Arc::new(AtomicBool::new(false)),
        };
        let mut instance =
            Instance::new(&Arc::new(job.clone_without_info()), TaskIdentity::default()).map_err(
                |error| EngineError::Describe {
                    path: path.to_owned(),
                    error: Box::new(error),
                },
            )?;
        let info = instance
            .describe(world)
            .map_err(|error| EngineError::Describe {
                path: path.to_owned(),
                error: Box::new(error),
            })?;
        let info = instance.type_params(info).map_err(|e| match e {
            instance::TypeParamsError::Guest(error) => EngineError::Describe {
                path: path.to_owned(),
                error: Box::new(error),
            },
            instance::TypeParamsError::Contradicts(message) => EngineError::BadParamTypes {
                path: path.to_owned(),
                message,
            },
        })?;
        for p in &info.params {
            if let Some(default) = &p.default {
                p.kind
                    .check(default)
                    .map_err(|why| EngineError::BadParamTypes {
                        path: path.to_owned(),
                        message: format!("the default of parameter `{}` {why}", p.name),
                    })?;
            }
        }
        job.info = Some(info);
        Ok(Arc::new(job))
    }

    fn compile_cached(
        &self,
        path: &Path,
        bytes: &[u8],
        sha256: &str,
    ) -> Result<Component, EngineError> {
        let load_err = |e: wasmtime::Error| EngineError::Load {
            path: path.to_owned(),
            message: format!("{e:#}"),
        };
        let Some(dir) = &self.options.cache_dir else {
            return Component::new(&self.engine, bytes).map_err(load_err);
        };
        let name = format!("{sha256}-{}.cwasm", self.compat_hash);
        let cached = dir.join(name);
        if cached.is_file() {
            // SAFETY: the cache directory belongs to this user and holds only files this function
            // wrote with `precompile_component` (atomically, via rename), for this engine
            // configuration (its compatibility hash is part of the name).
            #[allow(unsafe_code)]
            match unsafe { Component::deserialize_file(&self.engine, &cached) } {
                Ok(c) => return Ok(c),
                Err(e) => tracing::warn!(
                    "ignoring unreadable compiled component {}: {e:#}",
                    cached.display()
                ),
            }
        }
        let compiled = self.engine.precompile_component(bytes).map_err(load_err)?;
        // A cache that cannot be written only costs time: warn and carry on.
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let tmp = dir.join(format!(
                ".tmp-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::write(&tmp, &compiled)?;
            std::fs::rename(&tmp, &cached)
        };
        if let Err(e) = write() {
            tracing::warn!("cannot cache compiled component in {}: {e}", dir.display());
        }
        #[allow(unsafe_code)]
        // SAFETY: `compiled` was produced just now by this engine's `precompile_component`.
        unsafe { Component::deserialize(&self.engine, &compiled) }.map_err(load_err)
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The settings this runtime was created with.
    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }
}

/// A loaded job component, ready to instantiate on any thread.
pub struct JobComponent {
    path: PathBuf,
    sha256: String,
    /// The version of the `mr:job` contract the component was built against.
    contract_version: &'static str,
    pub(crate) lifecycle: Option<bindings::LifecycleIndices>,
    /// The `param-types` export's indices (contract 0.1.1 components).
    pub(crate) param_types: Option<bindings::ParamTypesIndices>,
    /// Whether it exports `lifecycle` (any version).
    exports_lifecycle: bool,
    /// Whether it exports `param-types` (any version).
    exports_param_types: bool,
    runtime: Arc<Runtime>,
    pre: bindings::JobPre,
    info: Option<JobInfo>,
    params: Arc<BTreeMap<String, String>>,
    limits: JobLimits,
    /// The runtime's options with the job's own memory and time limits applied: what its
    /// instances run under.
    options: Arc<RuntimeOptions>,
    /// Whether the user was told that counters incremented in lifecycle events are not
    /// counted; shared by the copies `with_params` and `with_limits` make of a loaded job.
    warned_of_event_counters: Arc<AtomicBool>,
}

impl JobComponent {
    fn clone_without_info(&self) -> JobComponent {
        JobComponent {
            path: self.path.clone(),
            sha256: self.sha256.clone(),
            contract_version: self.contract_version,
            lifecycle: self.lifecycle.clone(),
            param_types: self.param_types.clone(),
            exports_lifecycle: self.exports_lifecycle,
            exports_param_types: self.exports_param_types,
            runtime: self.runtime.clone(),
            pre: self.pre.clone(),
            info: None,
            params: self.params.clone(),
            limits: self.limits,
            options: self.options.clone(),
            warned_of_event_counters: self.warned_of_event_counters.clone(),
        }
    }

    /// A copy to change a setting of (`with_params`, `with_limits`).
    fn derived(&self) -> JobComponent {
        let mut job = self.clone_without_info();
        job.info = self.info.clone();
        job
    }

    /// Where the component was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The runtime that loaded it.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.clone()
    }

    /// The version of the `mr:job` contract the component was built against (one of
    /// [`contract::SUPPORTED_VERSIONS`]).
    pub fn contract_version(&self) -> &'static str {
        self.contract_version
    }

    /// Whether the job takes map input without keys and asks for locations on demand
    /// (contract 0.2.0; see [`contract::locations_on_demand`]).
    pub fn locations_on_demand(&self) -> bool {
        contract::locations_on_demand(self.contract_version)
    }

    /// Whether it exports `lifecycle` (wants lifecycle events).
    pub(crate) fn has_lifecycle(&self) -> bool {
        self.exports_lifecycle
    }

    /// Whether it exports `param-types`.
    pub(crate) fn has_param_types(&self) -> bool {
        self.exports_param_types
    }

    /// SHA-256 of the component file, in hex: identifies exactly which job a store planned.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The parameters instances see (declared ones, with defaults filled in).
    pub fn params(&self) -> &BTreeMap<String, String> {
        &self.params
    }

    /// The caps on the job's counters (see [`JobComponent::with_limits`]).
    pub fn limits(&self) -> JobLimits {
        self.limits
    }

    /// The same job with other counter caps, for every instance made from it. The caps are
    /// planned with the job, so two jobs in one process may have different ones; they apply
    /// per instance and call (to the counters one call increments).
    pub fn with_limits(self: &Arc<Self>, limits: JobLimits) -> Arc<JobComponent> {
        let mut job = self.derived();
        job.limits = limits;
        let mut options = self.runtime.options.clone();
        if let Some(memory) = limits.memory_limit {
            options.memory_limit = options.memory_limit.min(memory);
        }
        if let (Some(job_timeout), Some(timeout)) = (limits.call_timeout, options.call_timeout) {
            options.call_timeout = Some(timeout.min(job_timeout));
        }
        job.options = Arc::new(options);
        Arc::new(job)
    }

    /// The options its instances run under: the runtime's, tightened by its own limits.
    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }

    /// Tells the user, once per loaded job, that counters a guest incremented while handling a
    /// lifecycle event were dropped (they would otherwise vanish without a word).
    pub(crate) fn warn_once_of_event_counters(
        &self,
        event: LifecycleEvent,
        ignored: &HashMap<String, i64>,
    ) {
        if self.warned_of_event_counters.swap(true, Ordering::Relaxed) {
            return;
        }
        const LISTED: usize = 5;
        let mut names: Vec<&String> = ignored.keys().collect();
        names.sort_unstable();
        let mut list: Vec<String> = names
            .iter()
            .take(LISTED)
            .map(|name| format!("`{}`", limits::quote_counter(name)))
            .collect();
        if names.len() > LISTED {
            list.push(format!("{} more", names.len() - LISTED));
        }
        let (counters, were) = match names.len() {
            1 => ("counter", "was"),
            _ => ("counters", "were"),
        };
        tracing::warn!(
            "job `{}`: {counters} {} {were} incremented while handling the lifecycle event \
             {event:?}; increments made while handling a lifecycle event are not counted (an \
             event belongs to no committed slice). This is reported once per job.",
            self.info().name,
            list.join(", ")
        );
    }

    /// What the job's `describe` said.
    pub fn info(&self) -> &JobInfo {
        self.info.as_ref().expect("describe ran at load time")
    }

    /// The parameters instances will see: validated against the declared ones, with defaults
    /// filled in. Errors name the unknown or missing parameter and list the declared ones.
    pub fn with_params(
        self: &Arc<Self>,
        given: &BTreeMap<String, String>,
    ) -> Result<Arc<JobComponent>, String> {
        let info = self.info();
        let declared = || {
            if info.params.is_empty() {
                "it declares no parameters".to_owned()
            } else {
                let names: Vec<_> = info.params.iter().map(|p| p.name.as_str()).collect();
                format!("it declares: {}", names.join(", "))
            }
        };
        for name in given.keys() {
            if !info.params.iter().any(|p| &p.name == name) {
                return Err(format!(
                    "job `{}` has no parameter `{name}`; {}",
                    info.name,
                    declared()
                ));
            }
        }
        let mut params = BTreeMap::new();
        for p in &info.params {
            match given.get(&p.name).or(p.default.as_ref()) {
                Some(v) => {
                    p.kind.check(v).map_err(|why| {
                        format!(
                            "parameter `{}` of job `{}` {why} (--param {}=VALUE)",
                            p.name, info.name, p.name
                        )
                    })?;
                    params.insert(p.name.clone(), v.clone());
                }
                None if p.required => {
                    return Err(format!(
                        "job `{}` requires parameter `{}` ({}); pass --param {}=VALUE",
                        info.name, p.name, p.description, p.name
                    ));
                }
                None => {}
            }
        }
        let mut job = self.derived();
        job.params = Arc::new(params);
        Ok(Arc::new(job))
    }
}

/// Whether the host links an import of this name: the job's own host interfaces, and the WASI
/// 0.2 interfaces `wasmtime-wasi` links (by semver, so any 0.2.x).
fn provided(import: &str) -> bool {
    const WASI_PACKAGES: &[&str] = &["cli", "clocks", "filesystem", "io", "random", "sockets"];
    if let Some((interface, version)) = contract::parse_interface_name(import) {
        return contract::imports::ALL.contains(&interface)
            && contract::SUPPORTED_VERSIONS.contains(&version);
    }
    let Some(rest) = import.strip_prefix("wasi:") else {
        return false;
    };
    let (package, version) = match (rest.split_once('/'), rest.split_once('@')) {
        (Some((package, _)), Some((_, version))) => (package, version),
        _ => return false,
    };
    WASI_PACKAGES.contains(&package) && version.starts_with("0.2.")
}

/// The lifecycle export's indices, when the component has one.
fn lifecycle_indices(
    pre: &wasmtime::component::InstancePre<instance::HostState>,
    exported: bool,
) -> wasmtime::Result<Option<bindings::LifecycleIndices>> {
    exported
        .then(|| bindings::LifecycleIndices::new(pre))
        .transpose()
}

/// The `param-types` export's indices, when the component has one (contract 0.1.1).
fn param_types_indices(
    pre: &wasmtime::component::InstancePre<instance::HostState>,
    exported: bool,
) -> wasmtime::Result<Option<bindings::ParamTypesIndices>> {
    exported
        .then(|| bindings::ParamTypesIndices::new(pre))
        .transpose()
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::ParamType;

    #[test]
    fn parameter_values_are_checked_against_their_type() {
        let int = ParamType::Integer;
        for ok in ["0", "-7", "+42", "9223372036854775807"] {
            assert_eq!(int.check(ok), Ok(()), "{ok}");
        }
        for bad in ["three", "1.0", "", " 1", "9223372036854775808", "1_000"] {
            assert!(int.check(bad).is_err(), "{bad}");
        }
        let float = ParamType::Float;
        for ok in ["0.25", "3", "1e-3", "-.5", "7."] {
            assert_eq!(float.check(ok), Ok(()), "{ok}");
        }
        for bad in ["NaN", "inf", "1e999", "x", ""] {
            assert!(float.check(bad).is_err(), "{bad}");
        }
        assert!(ParamType::Bool.check("true").is_ok());
        assert_eq!(
            ParamType::Bool.check("yes"),
            Err("must be true or false, not \"yes\"".into())
        );
        let mode = ParamType::Enum(vec!["fast".into(), "exact".into()]);
        assert!(mode.check("exact").is_ok());
        assert_eq!(
            mode.check("Fast"),
            Err("must be one of fast, exact, not \"Fast\"".into())
        );
        assert!(ParamType::String.check("").is_ok());
        assert_eq!(mode.to_string(), "enum(fast|exact)");
    }
}
