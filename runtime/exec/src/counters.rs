//! Counters of one slice: the built-in ones and the job's own, accumulated while the slice runs
//! and committed with it (so a retried slice never counts twice).

use std::collections::BTreeMap;

use crate::ExecError;

/// Built-in counters, in the order they are reported.
pub const BUILTIN_COUNTERS: &[&str] = &[
    "records-in",
    "bytes-in",
    "map-output-records",
    "combine-input-records",
    "combine-output-records",
    "spilled-runs",
    "merge-intermediate-runs",
    "reduce-groups",
    "reduce-input-records",
    "output-records",
    "output-bytes",
    "bad-records",
];

/// The store keeps the job's own counters under this prefix, apart from the built-in ones.
const JOB_PREFIX: &str = "job.";

/// The default cap on a job's distinct counter names (`--max-counters`).
pub const DEFAULT_MAX_COUNTERS: u32 = 1000;

/// Counter deltas of the slice being run.
pub(crate) struct SliceCounters {
    builtin: [u64; BUILTIN_COUNTERS.len()],
    job: BTreeMap<String, i64>,
    /// Most distinct job counter names the job may have: a slice alone over it fails early
    /// (the exact check, with the job's committed names, is made by the commit).
    max_job: u32,
}

impl SliceCounters {
    pub(crate) fn new(max_job: u32) -> Self {
        SliceCounters {
            builtin: [0; BUILTIN_COUNTERS.len()],
            job: BTreeMap::new(),
            max_job,
        }
    }

    pub(crate) fn add(&mut self, name: &str, delta: u64) {
        let i = BUILTIN_COUNTERS
            .iter()
            .position(|n| *n == name)
            .expect("a built-in counter");
        self.builtin[i] += delta;
    }

    /// Adds the counters an instance collected during a call; fails when the slice alone names
    /// more distinct counters than the job may have.
    pub(crate) fn absorb(&mut self, instance: &mut mr_engine::Instance) -> Result<(), ExecError> {
        self.absorb_counts(instance.take_counters())
    }

    /// Adds the counters a call incremented (taken from its instance); fails like
    /// [`SliceCounters::absorb`].
    pub(crate) fn absorb_counts(
        &mut self,
        counts: std::collections::HashMap<String, i64>,
    ) -> Result<(), ExecError> {
        for (name, delta) in counts {
            *self.job.entry(name).or_default() += delta;
        }
        if self.job.len() > self.max_job as usize {
            return Err(ExecError::TooManyCounters {
                count: self.job.len() as u32,
                cap: self.max_job,
                example: self.job.keys().next_back().cloned().unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// The non-zero deltas, as the store records them.
    pub(crate) fn deltas(&self) -> Vec<(String, i64)> {
        let builtin = BUILTIN_COUNTERS
            .iter()
            .zip(self.builtin)
            .filter(|(_, v)| *v != 0)
            .map(|(n, v)| ((*n).to_owned(), v as i64));
        let job = self
            .job
            .iter()
            .filter(|(_, v)| **v != 0)
            .map(|(n, v)| (format!("{JOB_PREFIX}{n}"), *v));
        builtin.chain(job).collect()
    }
}

/// Splits the store's job totals into built-in counters (every one present, zero if unused) and
/// the job's own.
pub(crate) fn split(totals: Vec<(String, i64)>) -> (BTreeMap<String, u64>, BTreeMap<String, i64>) {
    let mut builtin: BTreeMap<String, u64> = BUILTIN_COUNTERS
        .iter()
        .map(|n| ((*n).to_owned(), 0))
        .collect();
    let mut job = BTreeMap::new();
    for (name, value) in totals {
        match name.strip_prefix(JOB_PREFIX) {
            Some(n) => {
                job.insert(n.to_owned(), value);
            }
            None => {
                builtin.insert(name, value.max(0) as u64);
            }
        }
    }
    (builtin, job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_round_trip_through_the_store_names() {
        let mut c = SliceCounters::new(DEFAULT_MAX_COUNTERS);
        c.add("records-in", 3);
        c.add("records-in", 2);
        c.job.insert("lines-seen".into(), 7);
        c.job.insert("zero".into(), 0);
        let deltas = c.deltas();
        assert_eq!(
            deltas,
            vec![("records-in".into(), 5), ("job.lines-seen".into(), 7)]
        );
        let (builtin, job) = split(deltas);
        assert_eq!(builtin["records-in"], 5);
        assert_eq!(builtin["output-bytes"], 0);
        assert_eq!(job, BTreeMap::from([("lines-seen".to_owned(), 7)]));
    }
}
