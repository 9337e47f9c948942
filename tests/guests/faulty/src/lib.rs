//! Test fixture. Counts lines per first word, and misbehaves on purpose:
//! - a line containing the `panic-on` parameter's value panics (a trap, with a message on stderr);
//! - a line containing the `fail-on` parameter's value returns a job error;
//! - reduce fails when the `fail-reduce` parameter is set;
//! - with `flaky-every=N`, the first attempt to run slice S of a shard, for every S that is a
//!   multiple of N, returns a job error: slice 0 fails on attempt 1; the retry (attempt 2)
//!   continues to slice N and fails there; attempt 3 gets past it to slice 2N, and so on. It
//!   fails once per shard, attempt and slice, like a transient fault: the host, mapping the record
//!   alone again to see whether the failure is deterministic, finds that it is not.
//!
//! Every line bumps the `lines-seen` counter and every reduce call logs once.
use mr_sdk::prelude::*;

#[derive(Default)]
pub struct Faulty {
    markers: Option<(Option<String>, Option<String>)>,
    /// The (shard, attempt, slice) whose flaky failure already happened (a worker thread's
    /// instance runs many tasks).
    flaked: Option<(u32, u32, u32)>,
}

impl Job for Faulty {
    const INFO: JobInfo = JobInfo::new("faulty", "0.0.1")
        .description("Counts lines by first word; fails on purpose on marked lines.")
        .params(&[
            Param::optional("panic-on", "Panic on a line containing this text"),
            Param::optional(
                "fail-on",
                "Return a job error on a line containing this text",
            ),
            Param::with_default("fail-reduce", "Fail every reduce call when `yes`", "no")
                .one_of(&["yes", "no"]),
            Param::optional(
                "flaky-every",
                "Fail the first attempt at every N-th slice of a shard",
            )
            .integer(),
        ]);
}

impl Mapper for Faulty {
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
        let (panic_on, fail_on) = self
            .markers
            .get_or_insert_with(|| (param("panic-on"), param("fail-on")));
        let line = String::from_utf8_lossy(record.value);
        if let Some(marker) = panic_on.as_deref().filter(|m| line.contains(m)) {
            panic!("found the panic marker {marker:?} at {}", record.location());
        }
        if let Some(marker) = fail_on.as_deref().filter(|m| line.contains(m)) {
            mr_sdk::bail!("refusing the line with marker {marker:?}");
        }
        if let Some(n) = param("flaky-every").and_then(|n| n.parse::<u32>().ok()) {
            let t = task();
            if t.slice.is_multiple_of(n)
                && t.attempt == t.slice / n + 1
                && self.flaked != Some((t.shard, t.attempt, t.slice))
            {
                self.flaked = Some((t.shard, t.attempt, t.slice));
                mr_sdk::bail!(
                    "flaky on purpose: first attempt ({}) at slice {} of shard {}",
                    t.attempt,
                    t.slice,
                    t.shard
                );
            }
        }
        counter("lines-seen", 1);
        let first = line.split_whitespace().next().unwrap_or("");
        out.emit(first, "1");
        Ok(())
    }
}

impl Reducer for Faulty {
    fn reduce(&mut self, key: &[u8], values: &mut Values<'_>, out: &mut Emitter) -> Result {
        if param("fail-reduce").as_deref() == Some("yes") {
            mr_sdk::bail!(
                "reduce refused key {:?} on purpose",
                String::from_utf8_lossy(key)
            );
        }
        let task = task();
        log::debug(format!("reducing in partition {}", task.shard));
        out.emit(key, values.count().to_string());
        Ok(())
    }
}

mr_sdk::export_job!(Faulty: map, reduce);
