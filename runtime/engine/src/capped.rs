//! Guest results under a size cap: the three hot calls (`map`, `combine`, `reduce`) return a
//! `list<u8>`, and a guest could return a gigabyte of it. `CappedBytes` reads the list's length
//! from the pointer pair the guest returned and refuses a list longer than the cap of the
//! current call, before wasmtime validates, counts or copies a byte of it (wasmtime's `Vec<u8>`
//! would copy it first). The error is typed ([`OutputTooLarge`]), so the trap classifier
//! downcasts it.
//!
//! This is the one mechanism for `--max-output-bytes`. Wasmtime's own per-crossing limit, its
//! "hostcall fuel", also refuses data before copying it, but with an error of a private type
//! that can only be recognised by its message text; so it is set to the same number (see
//! `Instance::instantiate`) and serves only as the bound on everything else a guest hands the
//! host in one crossing (import arguments such as log lines, counter names, WASI buffers; a
//! job-error message). For results the length check here always runs first.
//!
//! The price is wasmtime's `component::__internal` traits (`Lift`'s context and type
//! information), which its own `bindgen!` output uses but which carry no stability promise.
//! Everything forwards to `Vec<u8>`'s own implementation, wasmtime is pinned to an exact
//! version, and an upgrade that changes these traits fails to compile rather than changing
//! behaviour; `tests/all/sandbox.rs` checks the refusal end to end.

use std::cell::Cell;

use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Func, Instance, Lift, WasmList};

thread_local! {
    /// The cap of the call running on this thread (set by [`with_cap`]).
    static CAP: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Runs `call` with results capped at `cap` bytes.
pub(crate) fn with_cap<T>(cap: usize, call: impl FnOnce() -> T) -> T {
    let previous = CAP.replace(cap);
    let out = call();
    CAP.set(previous);
    out
}

/// A guest call's `list<u8>` result, lifted only if it fits the cap.
pub(crate) struct CappedBytes(pub Vec<u8>);

/// The error a too-large result fails its call with.
#[derive(Debug, thiserror::Error)]
#[error(
    "the guest returned {len} bytes from one call, more than the {cap}-byte cap (--max-output-bytes); the result was refused before it was copied"
)]
pub(crate) struct OutputTooLarge {
    pub len: usize,
    pub cap: usize,
}

fn check(len: usize) -> wasmtime::Result<()> {
    let cap = CAP.get();
    if len > cap {
        return Err(OutputTooLarge { len, cap }.into());
    }
    Ok(())
}

// SAFETY: `CappedBytes` has exactly the representation, ABI and type check of `Vec<u8>`
// (every item forwards to it), as wasmtime's own forwarding impls for `Box<[T]>` do.
#[allow(unsafe_code)]
unsafe impl ComponentType for CappedBytes {
    type Lower = <Vec<u8> as ComponentType>::Lower;
    const ABI: CanonicalAbiInfo = <Vec<u8> as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <Vec<u8> as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: lifting goes through `WasmList<u8>` (which validates the pointer and length against
// guest memory) and then `u8`'s own list lift, exactly as `Lift for Vec<u8>` does; the only
// addition is the length check before it, which reads the length as wasmtime's own
// `lift_pointer_pair_from_*` do (the second `ValRaw` flat, bytes 4..8 little-endian in memory).
#[allow(unsafe_code)]
unsafe impl Lift for CappedBytes {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        check(src[1].get_u32() as usize)?;
        let list = <WasmList<u8> as Lift>::linear_lift_from_flat(cx, ty, src)?;
        Ok(CappedBytes(u8::linear_lift_list_from_memory(cx, &list)?))
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        let len: [u8; 4] = bytes
            .get(4..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| wasmtime::Error::msg("a list's pointer pair is not 8 bytes"))?;
        check(u32::from_le_bytes(len) as usize)?;
        let list = <WasmList<u8> as Lift>::linear_lift_from_memory(cx, ty, bytes)?;
        Ok(CappedBytes(u8::linear_lift_list_from_memory(cx, &list)?))
    }
}

/// The hot exports of an instance, called through `CappedBytes` rather than the generated
/// bindings.
#[derive(Clone, Copy)]
pub(crate) struct HotFuncs {
    pub map: Func,
    pub combine: Option<Func>,
    pub reduce: Option<Func>,
}

impl HotFuncs {
    /// Finds them in an instance of a component built against contract `version`.
    pub(crate) fn find(
        store: &mut wasmtime::Store<crate::instance::HostState>,
        instance: &Instance,
        version: &str,
    ) -> wasmtime::Result<Self> {
        use crate::contract::{exports, interface_name};
        let mut func = |interface: &str, name: &str| -> Option<Func> {
            let interface = interface_name(interface, version);
            let iface = instance.get_export_index(&mut *store, None, &interface)?;
            let f = instance.get_export_index(&mut *store, Some(&iface), name)?;
            instance.get_func(&mut *store, f)
        };
        Ok(HotFuncs {
            map: func(exports::MAPPER, "map")
                .ok_or_else(|| wasmtime::Error::msg("the component exports no mapper.map"))?,
            combine: func(exports::COMBINER, "combine"),
            reduce: func(exports::REDUCER, "reduce"),
        })
    }
}
