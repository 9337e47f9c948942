//! The boundary benchmark: how fast records cross into a guest and back.
//!
//! One thread, one instance of `plugins/identity` (a map that emits each record unchanged), fed
//! 1 MiB batches of 100-byte records as the host's reader builds them (a `file:line` key and the
//! record). Each call copies the batch into linear memory, the guest decodes every record and
//! appends it to its output, and the host lifts the output back (checked and capped). The
//! native reference does the same decode-and-append loop in plain Rust, in the same process.
//! Throughput counts the records' bytes (100 per record), per core.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// Record size of the benchmark, bytes.
pub const RECORD_BYTES: usize = 100;

/// What one boundary measurement found.
pub struct BoundaryResult {
    /// Records per batch.
    pub records_per_batch: usize,
    /// Record bytes moved per second through the guest, one core.
    pub guest_bytes_per_sec: f64,
    /// The same loop natively.
    pub native_bytes_per_sec: f64,
}

/// A batch of 100-byte records with `name:line` keys, as the line reader frames them.
fn batch(records: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut value = [0u8; RECORD_BYTES];
    for i in 0..records {
        for (j, b) in value.iter_mut().enumerate() {
            *b = b'a' + ((i * 7 + j * 13) % 26) as u8;
        }
        let key = format!("target/bench-data/records.txt:{}", i + 1);
        mr_codec::put_kv(&mut out, key.as_bytes(), &value);
    }
    out
}

/// The native reference: decode every record and append it with an empty key.
fn native_identity(input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    for kv in mr_codec::kvs(input) {
        let (_, value) = kv.map_err(|e| anyhow::anyhow!("{e}"))?;
        mr_codec::put_kv(out, b"", value);
    }
    Ok(())
}

/// Runs `f` on the batch repeatedly for about `duration`; returns record bytes per second.
fn rate(records: usize, duration: Duration, mut f: impl FnMut() -> Result<usize>) -> Result<f64> {
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < duration || calls < 3 {
        let n = f()?;
        if n != records {
            bail!("a call returned {n} records, expected {records}");
        }
        calls += 1;
    }
    Ok((calls * (records * RECORD_BYTES) as u64) as f64 / started.elapsed().as_secs_f64())
}

/// Measures the identity guest against the native loop.
pub fn measure(component: &Path, duration: Duration) -> Result<BoundaryResult> {
    let runtime = mr_engine::Runtime::new(mr_engine::RuntimeOptions::default())?;
    let job = runtime
        .load(component)?
        .with_params(&Default::default())
        .map_err(anyhow::Error::msg)?;
    let task = mr_engine::TaskIdentity {
        job: "boundary-bench".into(),
        phase: "map",
        shard: 0,
        slice: 0,
        attempt: 1,
    };
    let mut instance = mr_engine::Instance::new(&job, task).map_err(|e| anyhow::anyhow!("{e}"))?;
    // As many records as the default 1 MiB batch holds.
    let records = (mr_exec::DEFAULT_BATCH_BYTES as usize) / (RECORD_BYTES + 1);
    let input = batch(records);
    let count = |out: &[u8]| mr_codec::kvs(out).count();
    // Warm up (first-call costs, memory growth), then measure.
    instance.map(&input).map_err(|e| anyhow::anyhow!("{e}"))?;
    let guest = rate(records, duration, || {
        let out = instance.map(&input).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(count(&out))
    })?;
    let mut out = Vec::with_capacity(input.len());
    let native = rate(records, duration, || {
        native_identity(&input, &mut out)?;
        Ok(count(&out))
    })?;
    Ok(BoundaryResult {
        records_per_batch: records,
        guest_bytes_per_sec: guest,
        native_bytes_per_sec: native,
    })
}
