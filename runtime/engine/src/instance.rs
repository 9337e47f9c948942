//! One worker's instance of a job: a `Store`, the instantiated bindings, and the host side of the
//! job's imports (counters, logs, parameters, task identity, the reducer's value stream).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use wasmtime::Store;
use wasmtime::component::{Func, Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::WitParamType;
use crate::bindings::{self, EventKind, JobBindings, JobPre, Lifecycle, mapreduce, types};
use crate::capped::{self, CappedBytes, HotFuncs};
use crate::error::{GuestError, GuestErrorKind};
use crate::limiter::MemoryLimiter;
use crate::limits::{
    CounterLimitExceeded, JobLimits, MAX_ERROR_MESSAGE_BYTES, MAX_LOG_LINE_BYTES,
    truncate_with_marker,
};
use crate::pipe::TailPipe;
use crate::{JobComponent, JobInfo, ParamInfo, ParamType, RuntimeOptions, World};

/// Which piece of work a call belongs to (what the guest's `context.task` returns).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskIdentity {
    /// The job's id.
    pub job: String,
    /// `map`, `combine` or `reduce`.
    pub phase: &'static str,
    /// Shard (map) or partition (reduce) index.
    pub shard: u32,
    /// Slice within the shard.
    pub slice: u32,
    /// Attempt number, from 1.
    pub attempt: u32,
}

/// Supplies the values of a reducer group beyond the current batch.
pub trait ValueSource: Send {
    /// Appends the next framed values (at most about `max_bytes`, at least one value when any
    /// remain) to `out`; appends nothing when the group is exhausted.
    fn next_batch(&mut self, max_bytes: u32, out: &mut Vec<u8>) -> Result<(), String>;
}

/// The host object behind the guest's `value-stream` handle.
pub struct ValueStreamHandle;

/// A lifecycle event delivered to jobs that export `lifecycle` (see `wit/job.wit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// An attempt at a task started.
    TaskStarted,
    /// A map slice is about to be read.
    SliceStarted,
    /// A slice was committed.
    SliceCommitted,
    /// A task's last slice was committed.
    TaskCompleted,
    /// The job is done.
    JobCompleted,
}

/// Per-store host state.
pub struct HostState {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    limiter: MemoryLimiter,
    params: Arc<BTreeMap<String, String>>,
    limits: JobLimits,
    task: TaskIdentity,
    counters: HashMap<String, i64>,
    value_source: Option<Box<dyn ValueSource>>,
    value_error: Option<String>,
    /// Where each record of the batch being mapped came from, for a 0.2.0 job's
    /// `context.record-location` (empty outside a `map` call and for 0.1.x jobs).
    pub(crate) locations: mr_codec::Locations,
    /// Whether the job has called `context.record-location` in this instance (see
    /// [`Instance::asked_locations`]).
    pub(crate) asked_locations: bool,
    /// When the current call must end: `--call-timeout` after [`arm`] armed it, the moment its
    /// epoch deadline stands for. Waits in the host give up then (see `wait.rs`).
    pub(crate) deadline: Option<Instant>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl mapreduce::mr::job::context::Host for HostState {
    fn counter_add(&mut self, name: String, delta: i64) -> wasmtime::Result<()> {
        CounterLimitExceeded::check(&name, &self.limits, &self.counters)?;
        *self.counters.entry(name).or_default() += delta;
        Ok(())
    }

    fn log(&mut self, level: types::LogLevel, message: String) {
        let message = truncate_with_marker(message, MAX_LOG_LINE_BYTES);
        let t = &self.task;
        let (job, phase, shard) = (&t.job, t.phase, t.shard);
        match level {
            types::LogLevel::Trace => tracing::trace!(job, phase, shard, "guest: {message}"),
            types::LogLevel::Debug => tracing::debug!(job, phase, shard, "guest: {message}"),
            types::LogLevel::Info => tracing::info!(job, phase, shard, "guest: {message}"),
            types::LogLevel::Warn => tracing::warn!(job, phase, shard, "guest: {message}"),
            types::LogLevel::Error => tracing::error!(job, phase, shard, "guest: {message}"),
        }
    }

    fn param(&mut self, name: String) -> Option<String> {
        self.params.get(&name).cloned()
    }

    fn task(&mut self) -> types::TaskIdentity {
        types::TaskIdentity {
            job: self.task.job.clone(),
            phase: self.task.phase.to_owned(),
            shard: self.task.shard,
            slice: self.task.slice,
            attempt: self.task.attempt,
        }
    }
}

impl mapreduce::mr::job::values::Host for HostState {}

/// Contract 0.2.0's imports: those of 0.1.1 (the same code) plus `record-location`.
mod v2_host {
    use super::HostState;
    use crate::bindings::mapreduce::mr::job::context::Host as V1Context;
    use crate::bindings::mapreduce::mr::job::types as v1;
    use crate::bindings::v2::mapreduce::mr::job::{context, types, values};
    use crate::instance::ValueStreamHandle;
    use wasmtime::component::Resource;

    impl types::Host for HostState {}

    impl context::Host for HostState {
        fn counter_add(&mut self, name: String, delta: i64) -> wasmtime::Result<()> {
            V1Context::counter_add(self, name, delta)
        }

        fn log(&mut self, level: types::LogLevel, message: String) {
            let level = match level {
                types::LogLevel::Trace => v1::LogLevel::Trace,
                types::LogLevel::Debug => v1::LogLevel::Debug,
                types::LogLevel::Info => v1::LogLevel::Info,
                types::LogLevel::Warn => v1::LogLevel::Warn,
                types::LogLevel::Error => v1::LogLevel::Error,
            };
            V1Context::log(self, level, message)
        }

        fn param(&mut self, name: String) -> Option<String> {
            V1Context::param(self, name)
        }

        fn task(&mut self) -> types::TaskIdentity {
            let t = V1Context::task(self);
            types::TaskIdentity {
                job: t.job,
                phase: t.phase,
                shard: t.shard,
                slice: t.slice,
                attempt: t.attempt,
            }
        }

        fn record_location(&mut self, index: u32) -> Option<String> {
            self.asked_locations = true;
            self.locations.get(index as usize)
        }
    }

    impl values::Host for HostState {}

    impl values::HostValueStream for HostState {
        fn next_batch(&mut self, stream: Resource<ValueStreamHandle>, max_bytes: u32) -> Vec<u8> {
            crate::bindings::mapreduce::mr::job::values::HostValueStream::next_batch(
                self, stream, max_bytes,
            )
        }

        fn drop(&mut self, stream: Resource<ValueStreamHandle>) -> wasmtime::Result<()> {
            crate::bindings::mapreduce::mr::job::values::HostValueStream::drop(self, stream)
        }
    }
}

impl mapreduce::mr::job::values::HostValueStream for HostState {
    fn next_batch(&mut self, _stream: Resource<ValueStreamHandle>, max_bytes: u32) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(source) = self.value_source.as_mut()
            && let Err(e) = source.next_batch(max_bytes, &mut out)
        {
            // The WIT method cannot fail; remember the error and fail the reduce call with it.
            self.value_error = Some(e);
            self.value_source = None;
            out.clear();
        }
        out
    }

    fn drop(&mut self, stream: Resource<ValueStreamHandle>) -> wasmtime::Result<()> {
        self.table.delete(stream)?;
        Ok(())
    }
}

/// A worker's instance of a job.
pub struct Instance {
    job: Arc<JobComponent>,
    store: Store<HostState>,
    bindings: Option<JobBindings>,
    lifecycle: Option<Lifecycle>,
    param_types: Option<bindings::ParamTypes>,
    hot: HotFuncs,
    output: TailPipe,
    task: TaskIdentity,
}

/// Why the `param-types` export's answer was not taken.
pub(crate) enum TypeParamsError {
    /// The call failed.
    Guest(GuestError),
    /// It names a parameter `describe` does not, or one twice.
    Contradicts(String),
}

/// What `instantiate` makes.
type Instantiated = (
    Store<HostState>,
    JobBindings,
    Option<Lifecycle>,
    Option<bindings::ParamTypes>,
    HotFuncs,
);

impl Instance {
    /// Creates a store and instantiates the job in it.
    pub fn new(job: &Arc<JobComponent>, task: TaskIdentity) -> Result<Self, GuestError> {
        let output = TailPipe::default();
        let (store, bindings, lifecycle, param_types, hot) =
            Self::instantiate(job, &output, &task)?;
        Ok(Instance {
            job: job.clone(),
            store,
            bindings: Some(bindings),
            lifecycle,
            param_types,
            hot,
            output,
            task,
        })
    }

    fn instantiate(
        job: &Arc<JobComponent>,
        output: &TailPipe,
        task: &TaskIdentity,
    ) -> Result<Instantiated, GuestError> {
        // No preopens, no network, no environment, no arguments: stdout and stderr are
        // captured, stdin is empty.
        // Network use is off by default in wasmtime-wasi; say so explicitly, so that a change of
        // defaults in a later wasmtime cannot open it (docs/sandbox.md).
        let wasi = WasiCtx::builder()
            .stdout(output.clone())
            .stderr(output.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                memory_limit: job.options.memory_limit,
            },
            params: job.params.clone(),
            limits: job.limits,
            task: task.clone(),
            counters: HashMap::new(),
            value_source: None,
            value_error: None,
            locations: mr_codec::Locations::default(),
            asked_locations: false,
            deadline: None,
        };
        let mut store = Store::new(&job.runtime.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Instantiation runs guest code too: it gets the same budget as a call.
        arm(&mut store, &job.options);
        // Wasmtime's own cap on the bytes one guest-to-host crossing copies ("hostcall fuel",
        // 128 MiB by default) must not refuse results the output cap allows: set it to the cap.
        // `CappedBytes` checks a result's length before wasmtime counts it, so results always
        // meet the typed cap first; the fuel bounds everything else (see capped.rs).
        store.set_hostcall_fuel(job.runtime.options.max_output_bytes);
        let instantiated = (|| {
            let instance = match &job.pre {
                JobPre::Mapper(pre) => pre.instance_pre().instantiate(&mut store)?,
                JobPre::MapReduce(pre) => pre.instance_pre().instantiate(&mut store)?,
                JobPre::V2(pre) => pre.instantiate(&mut store)?,
            };
            let bindings = match &job.pre {
                JobPre::Mapper(_) => JobBindings::Mapper(bindings::mapper::MapperJobBase::new(
                    &mut store, &instance,
                )?),
                JobPre::MapReduce(_) => JobBindings::MapReduce(
                    bindings::mapreduce::MapreduceJobBase::new(&mut store, &instance)?,
                ),
                JobPre::V2(_) => JobBindings::V2(bindings::V2Exports::find(
                    &mut store,
                    &instance,
                    job.contract_version,
                )?),
            };
            let lifecycle = job
                .lifecycle
                .as_ref()
                .map(|indices| indices.load(&mut store, &instance))
                .transpose()?;
            let param_types = job
                .param_types
                .as_ref()
                .map(|indices| indices.load(&mut store, &instance))
                .transpose()?;
            let hot = HotFuncs::find(&mut store, &instance, job.contract_version)?;
            wasmtime::Result::Ok((bindings, lifecycle, param_types, hot))
        })();
        let (bindings, lifecycle, param_types, hot) =
            instantiated.map_err(|e| GuestError::trap(&e, output.take(), &job.options))?;
        Ok((store, bindings, lifecycle, param_types, hot))
    }

    /// Sets the task identity reported to the guest and used in logs.
    pub fn set_task(&mut self, task: TaskIdentity) {
        self.store.data_mut().task = task.clone();
        self.task = task;
    }

    /// Takes the counters the guest incremented since the last call to this. A trap discards
    /// the instance and, with it, the increments not yet taken.
    pub fn take_counters(&mut self) -> HashMap<String, i64> {
        std::mem::take(&mut self.store.data_mut().counters)
    }

    /// Makes sure there is a usable instance (the previous one may have trapped) and returns it
    /// with the store to call it in.
    fn bindings(&mut self) -> Result<(&JobBindings, &mut Store<HostState>), GuestError> {
        if self.bindings.is_none() {
            let (store, bindings, lifecycle, param_types, hot) =
                Self::instantiate(&self.job, &self.output, &self.task)?;
            // Counters of committed work were taken already; a fresh store starts from zero.
            self.store = store;
            self.bindings = Some(bindings);
            self.lifecycle = lifecycle;
            self.param_types = param_types;
            self.hot = hot;
        }
        let bindings = self.bindings.as_ref().expect("just instantiated");
        arm(&mut self.store, &self.job.options);
        Ok((bindings, &mut self.store))
    }

    /// Interprets a call's outcome; a trap poisons the instance, so it is dropped.
    fn finish<T>(
        &mut self,
        outcome: wasmtime::Result<Result<T, types::JobError>>,
    ) -> Result<T, GuestError> {
        match outcome {
            Ok(Ok(v)) => {
                self.output.take();
                Ok(v)
            }
            Ok(Err(job_error)) => Err(GuestError {
                kind: GuestErrorKind::JobError,
                message: truncate_with_marker(job_error.message, MAX_ERROR_MESSAGE_BYTES),
                record_index: job_error.record_index,
                guest_output: self.output.take(),
                backtrace: None,
            }),
            Err(e) => {
                // The trapped instance is dropped with everything it counted (its replacement
                // starts from zero); say so at once rather than at the next call.
                self.bindings = None;
                self.store.data_mut().counters.clear();
                Err(GuestError::trap(&e, self.output.take(), &self.job.options))
            }
        }
    }

    pub(crate) fn describe(&mut self, world: World) -> Result<JobInfo, GuestError> {
        let info = match self.bindings()? {
            (JobBindings::Mapper(b), store) => b.mr_job_metadata().call_describe(store),
            (JobBindings::MapReduce(b), store) => b.mr_job_metadata().call_describe(store),
            (JobBindings::V2(b), store) => (|| {
                // 0.2.0's `job-info` has 0.1.1's structure: its generated type lifts it.
                let describe = b.describe.typed::<(), (types::JobInfo,)>(&*store)?;
                Ok(describe.call(store, ())?.0)
            })(),
        };
        let info = self.finish(info.map(Ok))?;
        Ok(JobInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            world,
            combine: world == World::MapreduceJob && info.phases.contains(types::Phases::COMBINE),
            reduce: world == World::MapreduceJob,
            events: self.job.has_lifecycle(),
            params: info
                .params
                .into_iter()
                .map(|p| ParamInfo {
                    name: p.name,
                    description: p.description,
                    default: p.default_value,
                    required: p.required,
                    kind: ParamType::String,
                })
                .collect(),
        })
    }

    /// `info` with its parameters' types from the `param-types` export (contract 0.1.1); a
    /// 0.1.0 component's parameters stay strings.
    pub(crate) fn type_params(&mut self, mut info: JobInfo) -> Result<JobInfo, TypeParamsError> {
        if !self.job.has_param_types() {
            return Ok(info);
        }
        let v2 = match self.bindings().map_err(TypeParamsError::Guest)? {
            (JobBindings::V2(b), _) => Some(*b),
            _ => None,
        };
        let store = &mut self.store;
        let out = match (v2, &self.param_types) {
            (Some(b), _) => (|| {
                let f = b.param_types.ok_or_else(|| {
                    wasmtime::Error::msg("the component exports no param-types.param-types")
                })?;
                let typed = f.typed::<(), (Vec<bindings::WitParamTypeInfo>,)>(&*store)?;
                Ok(typed.call(&mut *store, ())?.0)
            })(),
            (None, Some(exported)) => exported.call_param_types(&mut *store),
            (None, None) => Err(wasmtime::Error::msg(
                "instantiated without its param-types export",
            )),
        }
        .map(Ok::<_, types::JobError>);
        let declared = self.finish(out).map_err(TypeParamsError::Guest)?;
        let mut seen = std::collections::HashSet::new();
        for typed in declared {
            if !seen.insert(typed.name.clone()) {
                return Err(TypeParamsError::Contradicts(format!(
                    "parameter `{}` is typed twice",
                    typed.name
                )));
            }
            let Some(p) = info.params.iter_mut().find(|p| p.name == typed.name) else {
                return Err(TypeParamsError::Contradicts(format!(
                    "`param-types` names `{}`, which `describe` does not declare",
                    typed.name
                )));
            };
            p.kind = match typed.type_ {
                WitParamType::String => ParamType::String,
                WitParamType::Integer => ParamType::Integer,
                WitParamType::Float => ParamType::Float,
                WitParamType::Bool => ParamType::Bool,
                WitParamType::Enum(words) if words.is_empty() => {
                    return Err(TypeParamsError::Contradicts(format!(
                        "parameter `{}` is an enum of no words",
                        typed.name
                    )));
                }
                WitParamType::Enum(words) => ParamType::Enum(words),
            };
        }
        Ok(info)
    }

    /// Delivers a lifecycle event to a job that exports `lifecycle` (a no-op for the others).
    /// The guest's counter increments while handling it are discarded, because an event belongs
    /// to no committed slice; the first time a job does that, a warning names the counters and
    /// the event.
    pub fn notify(&mut self, event: LifecycleEvent) -> Result<(), GuestError> {
        if !self.job.has_lifecycle() {
            return Ok(());
        }
        let v2 = match self.bindings()? {
            (JobBindings::V2(b), _) => Some(*b),
            _ => None,
        };
        let task = bindings::events::mr::job::types::TaskIdentityParam {
            job: &self.task.job,
            phase: self.task.phase,
            shard: self.task.shard,
            slice: self.task.slice,
            attempt: self.task.attempt,
        };
        let kind = match event {
            LifecycleEvent::TaskStarted => EventKind::TaskStarted,
            LifecycleEvent::SliceStarted => EventKind::SliceStarted,
            LifecycleEvent::SliceCommitted => EventKind::SliceCommitted,
            LifecycleEvent::TaskCompleted => EventKind::TaskCompleted,
            LifecycleEvent::JobCompleted => EventKind::JobCompleted,
        };
        let out = match (v2, &self.lifecycle) {
            (Some(b), _) => (|| {
                let f = b.on_event.ok_or_else(|| {
                    wasmtime::Error::msg("the component exports no lifecycle.on-event")
                })?;
                let typed = f.typed::<(
                    EventKind,
                    bindings::events::mr::job::types::TaskIdentityParam<'_>,
                ), (Result<(), String>,)>(&self.store)?;
                Ok(typed.call(&mut self.store, (kind, task))?.0)
            })(),
            (None, Some(lifecycle)) => lifecycle.call_on_event(&mut self.store, kind, task),
            (None, None) => Err(wasmtime::Error::msg(
                "instantiated without its lifecycle export",
            )),
        };
        let out = out.map(|r| {
            r.map_err(|message| types::JobError {
                message,
                record_index: None,
            })
        });
        let result = self.finish(out);
        if self.bindings.is_some() {
            let ignored = std::mem::take(&mut self.store.data_mut().counters);
            if !ignored.is_empty() {
                self.job.warn_once_of_event_counters(event, &ignored);
            }
        }
        result
    }

    /// Calls `map` on a kv batch of input records (with no locations to give a 0.2.0 job).
    pub fn map(&mut self, input: &[u8]) -> Result<Vec<u8>, GuestError> {
        self.map_located(input, &mut mr_codec::Locations::default())
    }

    /// Calls `map` on a kv batch of input records; `locations` (one per record, or none) answer
    /// a 0.2.0 job's `context.record-location` during the call. They are lent to the store for
    /// the call and handed back unchanged.
    pub fn map_located(
        &mut self,
        input: &[u8],
        locations: &mut mr_codec::Locations,
    ) -> Result<Vec<u8>, GuestError> {
        self.bindings()?;
        let func = self.hot.map;
        std::mem::swap(&mut self.store.data_mut().locations, locations);
        let out = self.call_capped(func, (input,));
        std::mem::swap(&mut self.store.data_mut().locations, locations);
        self.finish(out)
    }

    /// Whether the job has asked for a record's location (`context.record-location`) in an
    /// earlier call of this instance: it is then likely to ask again, so a caller may prepare
    /// the locations before the next call rather than have them worked out during it.
    pub fn asked_locations(&self) -> bool {
        self.store.data().asked_locations
    }

    /// Whether the job takes its map input without keys and asks for locations on demand
    /// (contract 0.2.0): the caller then passes `map_located` a table of locations and empty
    /// keys; otherwise keys carry the locations (0.1.x).
    pub fn locations_on_demand(&self) -> bool {
        self.job.locations_on_demand()
    }

    /// Calls a hot export whose result is `result<list<u8>, job-error>`, refusing a result
    /// larger than `--max-output-bytes` before it is copied.
    fn call_capped<P>(
        &mut self,
        func: Func,
        params: P,
    ) -> wasmtime::Result<Result<Vec<u8>, types::JobError>>
    where
        P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
    {
        let typed = func.typed::<P, (Result<CappedBytes, types::JobError>,)>(&self.store)?;
        let cap = self.job.runtime.options.max_output_bytes;
        let (out,) = capped::with_cap(cap, || typed.call(&mut self.store, params))?;
        Ok(out.map(|bytes| bytes.0))
    }

    /// Calls `combine` on a group batch.
    pub fn combine(&mut self, groups: &[u8]) -> Result<Vec<u8>, GuestError> {
        self.bindings()?;
        let Some(func) = self.hot.combine else {
            return Err(GuestError::protocol("a map-only job has no combiner"));
        };
        let out = self.call_capped(func, (groups,));
        self.finish(out)
    }

    /// Calls `reduce` on a group batch; the last group's further values come from `rest`.
    pub fn reduce(
        &mut self,
        groups: &[u8],
        rest: Option<Box<dyn ValueSource>>,
    ) -> Result<Vec<u8>, GuestError> {
        self.bindings()?;
        let Some(func) = self.hot.reduce else {
            return Err(GuestError::protocol("a map-only job has no reducer"));
        };
        let data = self.store.data_mut();
        data.value_source = rest;
        data.value_error = None;
        let handle = data
            .table
            .push(ValueStreamHandle)
            .map_err(|e| GuestError::protocol(format!("cannot create the value stream: {e}")))?;
        let rep = handle.rep();
        let out = self.call_capped(
            func,
            (groups, Resource::<ValueStreamHandle>::new_borrow(rep)),
        );
        let data = self.store.data_mut();
        data.value_source = None;
        // The guest's borrow ended with the call; the owning handle is ours to release.
        let released = data
            .table
            .delete::<ValueStreamHandle>(Resource::new_own(rep));
        let value_error = data.value_error.take();
        // `finish` first, so a trapped instance is discarded whatever is reported; but a failed
        // value stream is the root cause of anything the guest did after it, so it wins.
        let out = self.finish(out);
        if let Some(err) = value_error {
            return Err(GuestError::protocol(format!(
                "reading the group's values failed: {err}"
            )));
        }
        let out = out?;
        released.map_err(|e| {
            GuestError::protocol(format!("cannot release the reducer's value stream: {e}"))
        })?;
        Ok(out)
    }
}

/// Gives the store a fresh time and fuel budget for the next call: one deadline, `timeout` from
/// now, enforced by the epoch while the guest runs wasm and by the host's waits while it waits.
fn arm(store: &mut Store<HostState>, options: &RuntimeOptions) {
    if let Some(timeout) = options.call_timeout {
        // One tick more than the timeout: the next tick may come at any moment, so this is what
        // guarantees the call its whole timeout (and at most one tick more).
        let ticks = timeout.as_nanos().div_ceil(crate::EPOCH_TICK.as_nanos()) + 1;
        store.set_epoch_deadline(ticks as u64);
        // A timeout too long to represent is no deadline for the waits either.
        store.data_mut().deadline = Instant::now().checked_add(timeout);
    }
    if let Some(fuel) = options.fuel {
        store
            .set_fuel(fuel)
            .expect("fuel is enabled whenever a budget is set");
    }
}
