//! The loops between flat batches and the job traits, shared by the wasm exports and the native
//! test harness so both run exactly the same code.

use crate::{
    Combiner, Emitter, Error, EventKind, Lifecycle, Mapper, Record, Reducer, ValueEmitter,
    ValueSource, Values,
};

/// Makes a panic print its message and location only, once per instance (called on every entry
/// into the component; after the first call it is one atomic load). The standard hook's text
/// ends with "run with `RUST_BACKTRACE=1`", advice a sandboxed job cannot follow: the host
/// reports the wasm backtrace itself, next to this message from the guest's stderr.
pub(crate) fn install_panic_hook() {
    #[cfg(target_arch = "wasm32")]
    {
        static INSTALLED: std::sync::Once = std::sync::Once::new();
        INSTALLED
            .call_once(|| std::panic::set_hook(Box::new(|info| eprintln!("{}", panic_text(info)))));
    }
}

/// `panicked at src/lib.rs:41:13: the message`.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn panic_text(info: &std::panic::PanicHookInfo<'_>) -> String {
    let message = info
        .payload_as_str()
        .unwrap_or("(a panic payload that is not text)");
    match info.location() {
        Some(at) => format!(
            "panicked at {}:{}:{}: {message}",
            at.file(),
            at.line(),
            at.column()
        ),
        None => format!("panicked: {message}"),
    }
}

/// A failure to report to the host as a `job-error`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub message: String,
    pub record_index: Option<u32>,
}

impl Failure {
    pub(crate) fn job(err: Error, record_index: Option<u32>) -> Self {
        Failure {
            message: err.message,
            record_index,
        }
    }

    pub(crate) fn malformed(what: &str, err: mr_codec::CodecError) -> Self {
        Failure {
            message: format!("the host sent a malformed {what}: {err}"),
            record_index: None,
        }
    }
}

/// Maps every record of a kv batch; returns the output kv batch.
pub(crate) fn map<J: Mapper>(job: &mut J, input: &[u8]) -> Result<Vec<u8>, Failure> {
    let mut out = Emitter::with_buffer(Vec::with_capacity(input.len()));
    for (index, entry) in mr_codec::kvs(input).enumerate() {
        let (key, value) = entry.map_err(|e| Failure::malformed("map batch", e))?;
        job.map(Record::at(key, value, index as u32), &mut out)
            .map_err(|e| Failure::job(e, Some(index as u32)))?;
    }
    Ok(out.into_buffer())
}

/// Combines every group of a group batch; returns counted values, one run per group.
pub(crate) fn combine<J: Combiner>(job: &mut J, groups: &[u8]) -> Result<Vec<u8>, Failure> {
    let mut out = Vec::with_capacity(groups.len() / 2);
    for group in mr_codec::groups(groups) {
        let group = group.map_err(|e| Failure::malformed("combine batch", e))?;
        let at = out.len();
        mr_codec::put_count(&mut out, 0);
        let mut values = Values::new(group.values(), None);
        let mut emitter = ValueEmitter {
            buf: &mut out,
            count: 0,
        };
        job.combine(group.key, &mut values, &mut emitter)
            .map_err(|e| Failure::job(e, None))?;
        let count = emitter.count;
        out[at..at + 4].copy_from_slice(&count.to_le_bytes());
    }
    Ok(out)
}

/// Reduces every group of a group batch; the last group's remaining values come from `rest`.
pub(crate) fn reduce<J: Reducer>(
    job: &mut J,
    groups: &[u8],
    rest: &dyn ValueSource,
) -> Result<Vec<u8>, Failure> {
    let mut out = Emitter::with_buffer(Vec::with_capacity(groups.len() / 4));
    for group in mr_codec::groups(groups) {
        let group = group.map_err(|e| Failure::malformed("reduce batch", e))?;
        let mut values = Values::new(group.values(), group.more.then_some(rest));
        job.reduce(group.key, &mut values, &mut out)
            .map_err(|e| Failure::job(e, None))?;
    }
    Ok(out.into_buffer())
}

/// Maps a batch, combining each key's values inside the guest before returning them (see
/// [`crate::table`]). The host's shuffle then sees about one combined value per key per batch
/// instead of every emitted pair.
pub(crate) fn map_and_combine<J: Mapper + Combiner>(
    job: &mut J,
    input: &[u8],
) -> Result<Vec<u8>, Failure> {
    thread_local! {
        static TABLE: std::cell::RefCell<Option<Box<crate::table::CombineTable>>> =
            const { std::cell::RefCell::new(None) };
    }
    TABLE.with_borrow_mut(|table| crate::table::map_and_combine(job, table, input))
}

/// Hands a lifecycle event to the job; its error becomes the host's error text.
pub(crate) fn on_event<J: Lifecycle>(
    job: &mut J,
    kind: EventKind,
    task: &crate::context::Task,
) -> Result<(), String> {
    job.on_event(kind, task).map_err(|e| e.message().to_owned())
}
