//! Generated WIT bindings for both worlds and the glue the export macro calls. Not part of the
//! public API: job code never names anything in here.

use crate::glue::{self, Failure};
use crate::{Combiner, EventKind, JobInfo, Lifecycle, Mapper, ParamKind, Reducer, ValueSource};

/// Bindings for the `mapreduce-job-with-events` world: `mapreduce-job` plus the `lifecycle`
/// export (a no-op unless the job asks for events).
#[allow(missing_docs)]
pub mod mapreduce {
    wit_bindgen::generate!({
        path: "../../wit/v0.2",
        world: "mapreduce-job-with-events",
        pub_export_macro: true,
        export_macro_name: "export_mapreduce_job",
        default_bindings_module: "mr_sdk::bindings::mapreduce",
        runtime_path: "mr_sdk::bindings::rt",
        type_section_suffix: "mr-mapreduce-job",
    });
}

/// Bindings for the `mapper-job` world (generated in their own crate, see its docs).
pub use mr_sdk_mapper_world::bindings::mapper;

/// The wit-bindgen runtime, re-exported so job crates need no wit-bindgen dependency.
pub use wit_bindgen::rt;

macro_rules! convert_info {
    ($types:path, $info:expr, $phases:expr) => {{
        use $types as t;
        // `describe` is the first call into every instance the host makes.
        glue::install_panic_hook();
        let info: &JobInfo = $info;
        t::JobInfo {
            name: info.name.into(),
            version: info.version.into(),
            description: info.description.into(),
            phases: $phases,
            params: info
                .params
                .iter()
                .map(|p| t::ParamInfo {
                    name: p.name.into(),
                    description: p.description.into(),
                    default_value: p.default.map(Into::into),
                    required: p.required,
                })
                .collect(),
        }
    }};
}

macro_rules! convert_param_types {
    ($b:path, $info:expr) => {{
        use b::exports::mr::job::param_types as t;
        use $b as b;
        let info: &JobInfo = $info;
        info.params
            .iter()
            .filter(|p| p.kind != ParamKind::String)
            .map(|p| t::ParamTypeInfo {
                name: p.name.into(),
                type_: match p.kind {
                    ParamKind::String => t::ParamType::String,
                    ParamKind::Integer => t::ParamType::Integer,
                    ParamKind::Float => t::ParamType::Float,
                    ParamKind::Bool => t::ParamType::Bool,
                    ParamKind::Enum(words) => {
                        t::ParamType::Enum(words.iter().map(|w| (*w).into()).collect())
                    }
                },
            })
            .collect()
    }};
}

#[doc(hidden)]
pub fn mapper_param_types(
    info: &JobInfo,
) -> Vec<mapper::exports::mr::job::param_types::ParamTypeInfo> {
    convert_param_types!(mapper, info)
}

#[doc(hidden)]
pub fn mapreduce_param_types(
    info: &JobInfo,
) -> Vec<mapreduce::exports::mr::job::param_types::ParamTypeInfo> {
    convert_param_types!(mapreduce, info)
}

macro_rules! convert_result {
    ($types:path, $result:expr) => {{
        use $types as t;
        glue::install_panic_hook();
        let result = $result;
        // After the job ran: its counter increments of this batch go out with this call.
        crate::context::flush_counters();
        result.map_err(|f: Failure| t::JobError {
            message: f.message,
            record_index: f.record_index,
        })
    }};
}

type MapperError = mapper::mr::job::types::JobError;
type MapReduceError = mapreduce::mr::job::types::JobError;

#[doc(hidden)]
pub fn mapper_job_info(info: &JobInfo) -> mapper::mr::job::types::JobInfo {
    convert_info!(
        mapper::mr::job::types,
        info,
        mapper::mr::job::types::Phases::MAP
    )
}

#[doc(hidden)]
pub fn mapper_map<J: Mapper>(job: &mut J, input: &[u8]) -> Result<Vec<u8>, MapperError> {
    convert_result!(mapper::mr::job::types, glue::map(job, input))
}

#[doc(hidden)]
pub fn mapreduce_job_info(info: &JobInfo, combine: bool) -> mapreduce::mr::job::types::JobInfo {
    use mapreduce::mr::job::types::Phases;
    let mut phases = Phases::MAP | Phases::REDUCE;
    if combine {
        phases |= Phases::COMBINE;
    }
    convert_info!(mapreduce::mr::job::types, info, phases)
}

#[doc(hidden)]
pub fn mapreduce_map<J: Mapper>(job: &mut J, input: &[u8]) -> Result<Vec<u8>, MapReduceError> {
    convert_result!(mapreduce::mr::job::types, glue::map(job, input))
}

#[doc(hidden)]
pub fn mapreduce_map_combined<J: Mapper + Combiner>(
    job: &mut J,
    input: &[u8],
) -> Result<Vec<u8>, MapReduceError> {
    convert_result!(mapreduce::mr::job::types, glue::map_and_combine(job, input))
}

#[doc(hidden)]
pub fn mapreduce_combine<J: Combiner>(
    job: &mut J,
    groups: &[u8],
) -> Result<Vec<u8>, MapReduceError> {
    convert_result!(mapreduce::mr::job::types, glue::combine(job, groups))
}

#[doc(hidden)]
pub fn mapreduce_no_combiner() -> Result<Vec<u8>, MapReduceError> {
    Err(MapReduceError {
        message: "this job declares no combiner; the host must not call combine".into(),
        record_index: None,
    })
}

impl ValueSource for mapreduce::mr::job::values::ValueStream {
    fn next_batch(&self, max_bytes: u32) -> Vec<u8> {
        mapreduce::mr::job::values::ValueStream::next_batch(self, max_bytes)
    }
}

#[doc(hidden)]
pub fn mapreduce_reduce<J: Reducer>(
    job: &mut J,
    groups: &[u8],
    rest: &mapreduce::mr::job::values::ValueStream,
) -> Result<Vec<u8>, MapReduceError> {
    convert_result!(mapreduce::mr::job::types, glue::reduce(job, groups, rest))
}

macro_rules! convert_event {
    ($b:path, $job:expr, $kind:expr, $task:expr) => {{
        use b::exports::mr::job::lifecycle::EventKind as K;
        use $b as b;
        let kind = match $kind {
            K::TaskStarted => EventKind::TaskStarted,
            K::SliceStarted => EventKind::SliceStarted,
            K::SliceCommitted => EventKind::SliceCommitted,
            K::TaskCompleted => EventKind::TaskCompleted,
            K::JobCompleted => EventKind::JobCompleted,
        };
        glue::install_panic_hook();
        let t = $task;
        let task = crate::context::Task {
            job: t.job,
            phase: t.phase,
            shard: t.shard,
            slice: t.slice,
            attempt: t.attempt,
        };
        let result = glue::on_event($job, kind, &task);
        // An event belongs to no committed slice: counters bumped while handling it are dropped.
        crate::context::discard_counters();
        result
    }};
}

#[doc(hidden)]
pub fn mapper_on_event<J: Lifecycle>(
    job: &mut J,
    kind: mapper::exports::mr::job::lifecycle::EventKind,
    task: mapper::mr::job::types::TaskIdentity,
) -> Result<(), String> {
    convert_event!(mapper, job, kind, task)
}

#[doc(hidden)]
pub fn mapreduce_on_event<J: Lifecycle>(
    job: &mut J,
    kind: mapreduce::exports::mr::job::lifecycle::EventKind,
    task: mapreduce::mr::job::types::TaskIdentity,
) -> Result<(), String> {
    convert_event!(mapreduce, job, kind, task)
}
