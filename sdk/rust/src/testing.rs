//! Run a job's logic natively, without wasm, for fast unit tests with inline data.
//!
//! [`Harness`] runs the same map / combine / reduce loops as the component exports, over the
//! same flat encoding, with the host's grouping rules: groups in key-byte order, values in input
//! order. Counters, parameters and logs work as they do under `mr-host`.
//!
//! ```ignore
//! let out = Harness::new().run_mapreduce::<WordCount>(&["a b", "b"]).unwrap();
//! assert_eq!(out.lines(), ["a\t1", "b\t2"]);
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::context::{Level, Task};
use crate::{Combiner, Mapper, Reducer, ValueSource, glue};

/// What a native run produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Output pairs in output order.
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
    /// Job counters incremented by the job.
    pub counters: BTreeMap<String, i64>,
    /// Log messages, with their level.
    pub logs: Vec<(Level, String)>,
}

impl Output {
    /// The records as text lines, formatted as `mr-host`'s text writer does: `key<TAB>value`, or
    /// just `value` when the key is empty.
    pub fn lines(&self) -> Vec<String> {
        self.records
            .iter()
            .map(|(k, v)| {
                let (k, v) = (String::from_utf8_lossy(k), String::from_utf8_lossy(v));
                if k.is_empty() {
                    v.into_owned()
                } else {
                    format!("{k}\t{v}")
                }
            })
            .collect()
    }
}

/// A job failure in a native run: the job's message and, for map, the failing record's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The job's own message.
    pub message: String,
    /// Index of the input record the failure refers to, when known.
    pub record_index: Option<u32>,
}

impl From<glue::Failure> for Failure {
    fn from(f: glue::Failure) -> Self {
        Failure {
            message: f.message,
            record_index: f.record_index,
        }
    }
}

/// Runs jobs natively. Each run creates a fresh job value with `Default`.
#[derive(Debug, Clone, Default)]
pub struct Harness {
    params: BTreeMap<String, String>,
}

impl Harness {
    /// A harness with no parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a job parameter, as `--param name=value` would.
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.params.insert(name.into(), value.into());
        self
    }

    /// Runs only the map phase over text lines (keys `input:1`, `input:2`, …).
    pub fn run_map<J: Mapper>(&self, lines: &[&str]) -> Result<Output, Failure> {
        self.with_context(|| {
            let mut job = J::default();
            let out = glue::map(&mut job, &input_batch(lines))?;
            Ok(decode_kvs(&out))
        })
    }

    /// Runs map, then reduce over the groups (no combiner).
    pub fn run_mapreduce<J: Mapper + Reducer>(&self, lines: &[&str]) -> Result<Output, Failure> {
        self.with_context(|| {
            let mut job = J::default();
            let mapped = glue::map(&mut job, &input_batch(lines))?;
            reduce_all(&mut job, decode_kvs(&mapped).records)
        })
    }

    /// Runs map with in-map combining over each line (as if every record were its own map
    /// batch, the harshest split), the combiner once more over the map output of each line,
    /// then reduce.
    pub fn run_mapreduce_combined<J: Mapper + Combiner + Reducer>(
        &self,
        lines: &[&str],
    ) -> Result<Output, Failure> {
        self.with_context(|| {
            let mut job = J::default();
            let mut pairs = Vec::new();
            for line in lines {
                let mapped = glue::map_and_combine(&mut job, &input_batch(&[line]))?;
                let groups = group(decode_kvs(&mapped).records);
                let combined = glue::combine(&mut job, &group_batch(&groups))?;
                for (g, values) in groups.iter().zip(mr_codec::counted_values(&combined)) {
                    for v in values.expect("combine output is well formed") {
                        pairs.push((g.0.clone(), v.expect("well formed").to_vec()));
                    }
                }
            }
            reduce_all(&mut job, pairs)
        })
    }

    fn with_context(
        &self,
        run: impl FnOnce() -> Result<Output, glue::Failure>,
    ) -> Result<Output, Failure> {
        native::STATE.with_borrow_mut(|s| {
            *s = native::State {
                params: self.params.clone(),
                ..Default::default()
            }
        });
        let result = run();
        crate::context::flush_counters();
        let state = native::STATE.with_borrow_mut(std::mem::take);
        let mut output = result?;
        output.counters = state.counters;
        output.logs = state.logs;
        Ok(output)
    }
}

/// A map batch of text lines keyed `input:1`, `input:2`, …
pub(crate) fn input_batch(lines: &[&str]) -> Vec<u8> {
    let mut buf = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        mr_codec::put_kv(
            &mut buf,
            format!("input:{}", i + 1).as_bytes(),
            line.as_bytes(),
        );
    }
    buf
}

fn decode_kvs(buf: &[u8]) -> Output {
    let records = mr_codec::kvs(buf)
        .map(|kv| {
            let (k, v) = kv.expect("the SDK wrote this batch");
            (k.to_vec(), v.to_vec())
        })
        .collect();
    Output {
        records,
        ..Default::default()
    }
}

type Groups = Vec<(Vec<u8>, Vec<Vec<u8>>)>;

/// Groups pairs by key in key-byte order, keeping each key's values in input order.
fn group(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Groups {
    let mut map: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
    for (k, v) in pairs {
        map.entry(k).or_default().push(v);
    }
    map.into_iter().collect()
}

fn group_batch(groups: &Groups) -> Vec<u8> {
    let mut buf = Vec::new();
    for (key, values) in groups {
        let at = mr_codec::begin_group(&mut buf, key);
        for v in values {
            mr_codec::put_value(&mut buf, v);
        }
        mr_codec::finish_group(&mut buf, at, values.len() as u32, 0);
    }
    buf
}

struct NoMoreValues;

impl ValueSource for NoMoreValues {
    fn next_batch(&self, _max_bytes: u32) -> Vec<u8> {
        Vec::new()
    }
}

fn reduce_all<J: Reducer>(
    job: &mut J,
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<Output, glue::Failure> {
    let out = glue::reduce(job, &group_batch(&group(pairs)), &NoMoreValues)?;
    Ok(decode_kvs(&out))
}

/// The native backend of [`crate::context`].
pub(crate) mod native {
    use super::*;

    #[derive(Default)]
    pub(crate) struct State {
        pub params: BTreeMap<String, String>,
        pub counters: BTreeMap<String, i64>,
        pub logs: Vec<(Level, String)>,
    }

    thread_local! {
        pub(crate) static STATE: RefCell<State> = RefCell::new(State::default());
    }

    pub fn counter_add(name: &str, delta: i64) {
        STATE.with_borrow_mut(|s| *s.counters.entry(name.to_owned()).or_default() += delta);
    }

    pub fn param(name: &str) -> Option<String> {
        STATE.with_borrow(|s| s.params.get(name).cloned())
    }

    pub fn task() -> Task {
        Task {
            job: "native-test".into(),
            phase: "test".into(),
            shard: 0,
            slice: 0,
            attempt: 1,
        }
    }

    pub fn log(level: Level, message: &str) {
        STATE.with_borrow_mut(|s| s.logs.push((level, message.to_owned())));
    }
}
