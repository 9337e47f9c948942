//! Waiting in the host ends at the call's deadline.
//!
//! Epoch interruption stops a guest only while it runs wasm code. A guest can also wait in the
//! host: `std::thread::sleep` on `wasm32-wasip2` blocks on a monotonic-clock pollable, and any
//! WASI wait (a clock subscription, a stream's readiness) ends in one of two host functions of
//! `wasi:io/poll`: `poll` and `[method]pollable.block`. Both are shadowed here by versions that
//! wait at most until the deadline [`crate::instance`]'s `arm` set for the call (the same
//! moment the epoch deadline stands for), and then fail the call with [`Trap::Interrupt`], which
//! is classified as a timeout like a busy loop's.
//!
//! The other blocking WASI functions (`blocking-read`, `blocking-write-and-flush`, ...) wait on
//! streams that are always ready in this sandbox: stdin is empty and closed, stdout and stderr
//! are in-memory, there are no files and no sockets.

use std::future::Future;
use std::time::Instant;

use wasmtime::Trap;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::io::poll::{Host as _, HostPollable as _};

use crate::instance::HostState;

/// The `wasi:io/poll` instance `wasmtime-wasi` defines. Guests importing any other 0.2.x
/// version are linked to it by semver, so shadowing its functions covers them all. (A
/// `wasmtime-wasi` upgrade that changes the version would make every guest fail to link, not
/// silently skip the shadow.)
const WASI_POLL: &str = "wasi:io/poll@0.2.12";

/// The call's deadline passed while the guest was waiting in the host (attached to the
/// [`Trap::Interrupt`] it ends the call with, so the message can say where the guest was).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "the guest was waiting in the host (a sleep or a WASI poll) when the call's deadline passed"
)]
pub(crate) struct InterruptedWait;

/// Replaces `poll` and `[method]pollable.block` of the WASI linker with deadline-bound ones.
pub(crate) fn add_deadline_bound_waits(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut poll = linker.instance(WASI_POLL)?;
    poll.func_wrap(
        "poll",
        |mut store, (pollables,): (Vec<Resource<DynPollable>>,)| {
            let state: &mut HostState = store.data_mut();
            let deadline = state.deadline;
            let ready = until(deadline, state.table.poll(pollables))??;
            Ok((ready,))
        },
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |mut store, (pollable,): (Resource<DynPollable>,)| {
            let state: &mut HostState = store.data_mut();
            let deadline = state.deadline;
            until(deadline, state.table.block(pollable))?
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Runs `wait` on wasmtime-wasi's Tokio runtime (as its own synchronous bindings do), giving up
/// at `deadline` with a [`Trap::Interrupt`].
fn until<F: Future>(deadline: Option<Instant>, wait: F) -> wasmtime::Result<F::Output> {
    wasmtime_wasi::runtime::in_tokio(async move {
        match deadline {
            None => Ok(wait.await),
            Some(deadline) => tokio::time::timeout_at(deadline.into(), wait)
                .await
                .map_err(|_| wasmtime::Error::new(Trap::Interrupt).context(InterruptedWait)),
        }
    })
}
