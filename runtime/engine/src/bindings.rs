//! Host bindings for both worlds, generated from `wit/job.wit`, and the linkers that satisfy a
//! job's imports: `mr:job/context`, `mr:job/values` and WASI (whose context is empty, and whose
//! waits end at the call's deadline).

use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use crate::instance::HostState;

/// The `mapreduce-job-base` world: what every MapReduce job exports since contract 0.1.0.
pub(crate) mod mapreduce {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "mapreduce-job-base",
        ownership: Borrowing { duplicate_if_necessary: true },
        // A counter past the job's caps fails the call (`CounterLimitExceeded`).
        imports: { "mr:job/context.counter-add": trappable },
        with: {
            "mr:job/values.value-stream": crate::instance::ValueStreamHandle,
        },
    });
}

/// The `mapper-job-base` world; its interfaces are those of `mapreduce-job-base`.
pub(crate) mod mapper {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "mapper-job-base",
        ownership: Borrowing { duplicate_if_necessary: true },
        with: {
            "mr:job/types": super::mapreduce::mr::job::types,
            "mr:job/context": super::mapreduce::mr::job::context,
        },
    });
}

/// The `lifecycle` interface, exported by jobs built for the `-with-events` worlds, and the
/// `param-types` interface (contract 0.1.1). Only their interface-level bindings are used: a
/// job's world is still one of the two above, and these exports are looked up beside it when
/// the component has them.
pub(crate) mod events {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "mapreduce-job-with-events",
        ownership: Borrowing { duplicate_if_necessary: true },
        // Its own `types` (the lifecycle export takes a task identity as a parameter, a shape
        // the other bindings never generate); the imports are those of `mapreduce-job`.
        with: {
            "mr:job/context": super::mapreduce::mr::job::context,
            "mr:job/values": super::mapreduce::mr::job::values,
        },
    });
}

pub(crate) use events::exports::mr::job::lifecycle::{
    EventKind, Guest as Lifecycle, GuestIndices as LifecycleIndices,
};
pub(crate) use events::exports::mr::job::param_types::ParamType as WitParamType;
pub(crate) use events::exports::mr::job::param_types::{
    Guest as ParamTypes, GuestIndices as ParamTypesIndices,
};
pub(crate) use mapper::MapperJobBasePre as MapperJobPre;
pub(crate) use mapreduce::MapreduceJobBasePre as MapreduceJobPre;
pub(crate) use mapreduce::mr::job::types;

/// An `InstancePre` for either world.
#[derive(Clone)]
pub(crate) enum JobPre {
    Mapper(MapperJobPre<HostState>),
    MapReduce(MapreduceJobPre<HostState>),
}

/// Instantiated bindings for either world.
pub(crate) enum JobBindings {
    Mapper(mapper::MapperJobBase),
    MapReduce(mapreduce::MapreduceJobBase),
}

pub(crate) fn mapreduce_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = wasi_linker(engine)?;
    mapreduce::MapreduceJobBase::add_to_linker::<HostState, HasSelf<HostState>>(
        &mut linker,
        |s| s,
    )?;
    Ok(linker)
}

pub(crate) fn mapper_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = wasi_linker(engine)?;
    mapper::MapperJobBase::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// WASI 0.2, synchronous, with its waits bound by the call's deadline.
fn wasi_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    crate::wait::add_deadline_bound_waits(&mut linker)?;
    Ok(linker)
}
