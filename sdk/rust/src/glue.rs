//! The loops between flat batches and the job traits, shared by the wasm exports and the native
//! test harness so both run exactly the same code.

use crate::{
    Combiner, Emitter, Error, EventKind, Lifecycle, Mapper, Record, Reducer, ValueEmitter,
    ValueSource, Values,
};

/// A failure to report to the host as a `job-error`.
pub(crate) struct Failure {
    pub message: String,
    pub record_index: Option<u32>,
}

impl Failure {
    fn job(err: Error, record_index: Option<u32>) -> Self {
        Failure {
            message: err.message,
            record_index,
        }
    }

    fn malformed(what: &str, err: mr_codec::CodecError) -> Self {
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
        job.map(Record { key, value }, &mut out)
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

/// Maps a batch, then runs the combiner over the batch's output inside the guest before
/// returning it. The host's shuffle then sees one combined value per key per batch instead of
/// every emitted pair (the contract allows a combiner on any subset of a key's values).
pub(crate) fn map_and_combine<J: Mapper + Combiner>(
    job: &mut J,
    input: &[u8],
) -> Result<Vec<u8>, Failure> {
    let mapped = map(job, input)?;
    let mut groups: std::collections::HashMap<&[u8], Vec<&[u8]>, FxBuild> =
        std::collections::HashMap::default();
    for kv in mr_codec::kvs(&mapped) {
        let (k, v) = kv.expect("written by `map` above");
        groups.entry(k).or_default().push(v);
    }
    // No sort: the host sorts anyway, and FxHash has no random seed, so the order is a pure
    // function of the batch.
    let keys: Vec<&[u8]> = groups.keys().copied().collect();
    let mut batch = Vec::with_capacity(mapped.len() / 2);
    for key in &keys {
        let values = &groups[key];
        let at = mr_codec::begin_group(&mut batch, key);
        for v in values {
            mr_codec::put_value(&mut batch, v);
        }
        mr_codec::finish_group(&mut batch, at, values.len() as u32, 0);
    }
    let combined = combine(job, &batch)?;
    let mut out = Vec::with_capacity(combined.len() + keys.len() * 16);
    for (key, values) in keys.iter().zip(mr_codec::counted_values(&combined)) {
        for v in values.expect("written by `combine` above") {
            mr_codec::put_kv(&mut out, key, v.expect("written by `combine` above"));
        }
    }
    Ok(out)
}

/// FxHash (rustc's hasher): the grouping above is keyed by job output within one batch, where
/// SipHash's DoS resistance buys nothing and costs most of the time.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxBuild;

impl std::hash::BuildHasher for FxBuild {
    type Hasher = FxHasher;
    fn build_hasher(&self) -> FxHasher {
        FxHasher(0)
    }
}

pub(crate) struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Hands a lifecycle event to the job; its error becomes the host's error text.
pub(crate) fn on_event<J: Lifecycle>(
    job: &mut J,
    kind: EventKind,
    task: &crate::context::Task,
) -> Result<(), String> {
    job.on_event(kind, task).map_err(|e| e.message().to_owned())
}
