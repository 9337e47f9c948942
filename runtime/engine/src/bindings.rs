//! Host bindings for both worlds of both contract versions, generated from `wit/job.wit`
//! (0.1.1, which also serves 0.1.0 components) and `wit/v0.2/job.wit` (0.2.0), and the linkers
//! that satisfy a job's imports: `mr:job/context`, `mr:job/values` (each at both versions) and
//! WASI (whose context is empty, and whose waits end at the call's deadline).
//!
//! A 0.2.0 component's exports are called through [`V2Exports`]: the same `describe`,
//! `param-types` and `on-event` functions as 0.1.1's, looked up by their 0.2.0 names and typed
//! with 0.1.1's generated Rust types (component types match by structure, and these did not
//! change), so the host's code for them is shared.

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

/// The imports of contract 0.2.0 (`context` gained `record-location`). Only the host side is
/// used; a 0.2.0 component's exports are looked up by name (see [`V2Exports`]).
pub(crate) mod v2 {
    /// The `mapreduce-job-base` world of 0.2.0.
    pub(crate) mod mapreduce {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.2",
            world: "mapreduce-job-base",
            ownership: Borrowing { duplicate_if_necessary: true },
            imports: { "mr:job/context.counter-add": trappable },
            with: {
                "mr:job/values.value-stream": crate::instance::ValueStreamHandle,
            },
        });
    }

    /// The `mapper-job-base` world of 0.2.0.
    pub(crate) mod mapper {
        wasmtime::component::bindgen!({
            path: "../../wit/v0.2",
            world: "mapper-job-base",
            ownership: Borrowing { duplicate_if_necessary: true },
            with: {
                "mr:job/types": super::mapreduce::mr::job::types,
                "mr:job/context": super::mapreduce::mr::job::context,
            },
        });
    }
}

/// A 0.2.0 component's exports other than the hot ones (see `capped::HotFuncs`), found by name.
#[derive(Clone, Copy)]
pub(crate) struct V2Exports {
    /// `metadata.describe`.
    pub(crate) describe: wasmtime::component::Func,
    /// `param-types.param-types`, when exported.
    pub(crate) param_types: Option<wasmtime::component::Func>,
    /// `lifecycle.on-event`, when exported.
    pub(crate) on_event: Option<wasmtime::component::Func>,
}

impl V2Exports {
    /// Finds them in an instance of a 0.2.0 component.
    pub(crate) fn find(
        store: &mut wasmtime::Store<HostState>,
        instance: &wasmtime::component::Instance,
        version: &str,
    ) -> wasmtime::Result<Self> {
        use crate::contract::{exports, interface_name};
        let mut func = |interface: &str, name: &str| {
            let interface = interface_name(interface, version);
            let iface = instance.get_export_index(&mut *store, None, &interface)?;
            let f = instance.get_export_index(&mut *store, Some(&iface), name)?;
            instance.get_func(&mut *store, f)
        };
        Ok(V2Exports {
            describe: func(exports::METADATA, "describe").ok_or_else(|| {
                wasmtime::Error::msg("the component exports no metadata.describe")
            })?,
            param_types: func(exports::PARAM_TYPES, "param-types"),
            on_event: func(exports::LIFECYCLE, "on-event"),
        })
    }
}

pub(crate) use events::exports::mr::job::lifecycle::{
    EventKind, Guest as Lifecycle, GuestIndices as LifecycleIndices,
};
pub(crate) use events::exports::mr::job::param_types::ParamType as WitParamType;
pub(crate) use events::exports::mr::job::param_types::ParamTypeInfo as WitParamTypeInfo;
pub(crate) use events::exports::mr::job::param_types::{
    Guest as ParamTypes, GuestIndices as ParamTypesIndices,
};
pub(crate) use mapper::MapperJobBasePre as MapperJobPre;
pub(crate) use mapreduce::MapreduceJobBasePre as MapreduceJobPre;
pub(crate) use mapreduce::mr::job::types;

/// An `InstancePre` for either world (0.1.x), or for a 0.2.0 component of either world.
#[derive(Clone)]
pub(crate) enum JobPre {
    Mapper(MapperJobPre<HostState>),
    MapReduce(MapreduceJobPre<HostState>),
    V2(wasmtime::component::InstancePre<HostState>),
}

/// Instantiated bindings for either world, or a 0.2.0 component's exports.
pub(crate) enum JobBindings {
    Mapper(mapper::MapperJobBase),
    MapReduce(mapreduce::MapreduceJobBase),
    V2(V2Exports),
}

pub(crate) fn mapreduce_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = wasi_linker(engine)?;
    mapreduce::MapreduceJobBase::add_to_linker::<HostState, HasSelf<HostState>>(
        &mut linker,
        |s| s,
    )?;
    v2::mapreduce::MapreduceJobBase::add_to_linker::<HostState, HasSelf<HostState>>(
        &mut linker,
        |s| s,
    )?;
    Ok(linker)
}

pub(crate) fn mapper_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = wasi_linker(engine)?;
    mapper::MapperJobBase::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    v2::mapper::MapperJobBase::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// WASI 0.2, synchronous, with its waits bound by the call's deadline.
fn wasi_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    crate::wait::add_deadline_bound_waits(&mut linker)?;
    Ok(linker)
}
