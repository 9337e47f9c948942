//! Run a job's logic natively, without wasm, for fast unit tests with inline data or real files.
//!
//! [`Harness`] runs the same map / combine / reduce loops as the component exports, over the
//! same flat encoding, with the host's rules: parameters checked against the job's declarations
//! and defaults filled in, groups in key-byte order, values in input order, records of text
//! files keyed `path:line`. Counters, parameters and logs work as they do under `mr-host`.
//!
//! ```
//! use mr_sdk::prelude::*;
//! use mr_sdk::testing::Harness;
//!
//! #[derive(Default)]
//! struct WordCount;
//! impl Job for WordCount {
//!     const INFO: JobInfo = JobInfo::new("wordcount", "0.1.0");
//! }
//! impl Mapper for WordCount {
//!     fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
//!         record.value.split(|b| *b == b' ').for_each(|w| out.add(w, 1));
//!         Ok(())
//!     }
//! }
//! impl Reducer for WordCount {
//!     fn reduce(&mut self, key: &[u8], values: &mut Values<'_>, out: &mut Emitter) -> Result {
//!         out.emit_u64(key, values.sum_u64()?);
//!         Ok(())
//!     }
//! }
//! mr_sdk::export_job!(WordCount: map, reduce);
//!
//! // Inline lines, keyed `input:1`, `input:2`, ...
//! let out = Harness::new().run_mapreduce::<WordCount>(&["a b", "b"]).unwrap();
//! assert_eq!(out.lines(), ["a\t1", "b\t2"]);
//!
//! // Real files, read and keyed as `mr-host run` reads them, run as the component would be.
//! let dir = std::env::temp_dir().join(format!("mr-sdk-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! std::fs::write(dir.join("data.txt"), "b c\r\nc\n").unwrap();
//! let out = Harness::new().run_files::<WordCount>(&[dir.join("data.txt")]).unwrap();
//! assert_eq!(out.lines(), ["b\t1", "c\t2"]);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::context::{Level, Task};
use crate::{Combiner, Job, Mapper, Reducer, ValueSource, glue};

/// What a native run produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Output pairs in output order: sorted by key for a job with a reducer, in input order for
    /// a map-only job.
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

/// A failure in a native run: the job's message and, for map, the failing record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The job's own message (or what the harness refused: a parameter, an unreadable file).
    pub message: String,
    /// Index of the input record the failure refers to, among all the records of the run
    /// (0-based: the line index for `run_map(&[..])`), when known.
    pub record_index: Option<u32>,
    /// That record's key, as `mr-host` would name it: `input:N` for inline lines, `path:line`
    /// for files.
    pub record: Option<String>,
}

impl Failure {
    fn harness(message: String) -> Self {
        Failure {
            message,
            record_index: None,
            record: None,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.record {
            Some(record) => write!(f, "at {record}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A record or an output pair: (key, value).
type Pair = (Vec<u8>, Vec<u8>);
/// The input records of a run.
type Records = [Pair];

/// A job as [`export_job!`](crate::export_job) exported it: the phases its component runs.
/// Implemented by `export_job!` (natively only); [`Harness::run_files`] needs it.
pub trait Exported: Job {
    /// Runs the exported phases over `records` (as [`Harness::run_files`] does).
    fn run_records(harness: &Harness, records: &Records) -> Result<Output, Failure>;
}

/// Input bytes per map call in [`Harness::run_files`], as `mr-host run`'s default
/// `--batch-size`.
const FILE_BATCH_BYTES: usize = 4 << 20;

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

    /// Sets a job parameter, as `--param name=value` would. As under `mr-host`, a parameter the
    /// job does not declare fails the run, and declared defaults fill in the rest.
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.params.insert(name.into(), value.into());
        self
    }

    /// Runs only the map phase over text lines (keys `input:1`, `input:2`, …), as one batch.
    pub fn run_map<J: Mapper>(&self, lines: &[&str]) -> Result<Output, Failure> {
        self.map_records::<J>(&inline_records(lines))
    }

    /// Runs map, then reduce over the groups (no combiner).
    pub fn run_mapreduce<J: Mapper + Reducer>(&self, lines: &[&str]) -> Result<Output, Failure> {
        self.mapreduce_records::<J>(&inline_records(lines))
    }

    /// Runs map with in-map combining over each line (as if every record were its own map
    /// batch, the harshest split), the combiner once more over the map output of each line,
    /// then reduce.
    pub fn run_mapreduce_combined<J: Mapper + Combiner + Reducer>(
        &self,
        lines: &[&str],
    ) -> Result<Output, Failure> {
        self.combined::<J>(&inline_records(lines), 0)
    }

    /// Reads text files (or directories, recursively, hidden files skipped) as `mr-host run
    /// --input` does, one record per line keyed `path:line`, and runs the phases the job's
    /// [`export_job!`](crate::export_job) exports over them: map (in 4 MiB batches with in-map
    /// combining when it exports `combine`, the combiner again over each batch's output) and
    /// reduce. The output is what `mr-host run --reducers 1` writes: sorted by key (in input
    /// order for a map-only job). Gzip, zip, JSONL and CSV inputs are read as plain lines.
    pub fn run_files<J: Exported>(&self, paths: &[impl AsRef<Path>]) -> Result<Output, Failure> {
        let records = read_line_records(paths).map_err(Failure::harness)?;
        J::run_records(self, &records)
    }

    #[doc(hidden)]
    pub fn map_records<J: Mapper>(&self, records: &Records) -> Result<Output, Failure> {
        self.with_context::<J>(records, || {
            let mut job = J::default();
            let out = glue::map(&mut job, &kv_batch(records))?;
            Ok(decode_kvs(&out))
        })
    }

    #[doc(hidden)]
    pub fn mapreduce_records<J: Mapper + Reducer>(
        &self,
        records: &Records,
    ) -> Result<Output, Failure> {
        self.with_context::<J>(records, || {
            let mut job = J::default();
            let mapped = glue::map(&mut job, &kv_batch(records))?;
            reduce_all(&mut job, decode_kvs(&mapped).records)
        })
    }

    #[doc(hidden)]
    pub fn mapreduce_combined_records<J: Mapper + Combiner + Reducer>(
        &self,
        records: &Records,
    ) -> Result<Output, Failure> {
        self.combined::<J>(records, FILE_BATCH_BYTES)
    }

    /// Map with in-map combining per batch of about `batch_bytes` (`0`: one record per batch),
    /// the combiner again over each batch's output (as the host does on a spill), then reduce.
    fn combined<J: Mapper + Combiner + Reducer>(
        &self,
        records: &Records,
        batch_bytes: usize,
    ) -> Result<Output, Failure> {
        self.with_context::<J>(records, || {
            let mut job = J::default();
            let mut pairs = Vec::new();
            for (first, batch) in batches(records, batch_bytes) {
                // The component reports the index within its batch; the host (and this
                // harness) turn it into the record's place in the whole input.
                let mapped = glue::map_and_combine(&mut job, &kv_batch(batch)).map_err(|f| {
                    glue::Failure {
                        record_index: f.record_index.map(|i| i + first as u32),
                        ..f
                    }
                })?;
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

    /// Runs `run` with the harness's parameters (checked and defaulted against `J::INFO` as the
    /// host does) and collects counters and logs.
    fn with_context<J: Job>(
        &self,
        records: &Records,
        run: impl FnOnce() -> Result<Output, glue::Failure>,
    ) -> Result<Output, Failure> {
        let params = self.resolve_params(&J::INFO).map_err(Failure::harness)?;
        native::STATE.with_borrow_mut(|s| {
            *s = native::State {
                params,
                ..Default::default()
            }
        });
        let result = run();
        crate::context::flush_counters();
        let state = native::STATE.with_borrow_mut(std::mem::take);
        let mut output = result.map_err(|f| Failure {
            record: f
                .record_index
                .and_then(|i| records.get(i as usize))
                .map(|(key, _)| String::from_utf8_lossy(key).into_owned()),
            message: f.message,
            record_index: f.record_index,
        })?;
        output.counters = state.counters;
        output.logs = state.logs;
        Ok(output)
    }

    /// The parameters the job sees, with the host's checks and messages.
    fn resolve_params(&self, info: &crate::JobInfo) -> Result<BTreeMap<String, String>, String> {
        let declared = || {
            let names: Vec<_> = info.params.iter().map(|p| p.name).collect();
            if names.is_empty() {
                "it declares no parameters".to_owned()
            } else {
                format!("it declares: {}", names.join(", "))
            }
        };
        if let Some(name) = self
            .params
            .keys()
            .find(|n| !info.params.iter().any(|p| p.name == n.as_str()))
        {
            return Err(format!(
                "job `{}` has no parameter `{name}`; {}",
                info.name,
                declared()
            ));
        }
        let mut params = BTreeMap::new();
        for p in info.params {
            match self.params.get(p.name).map(String::as_str).or(p.default) {
                Some(v) => {
                    // The host's check at submit, so a wrong value fails here the same way.
                    p.kind.check(v).map_err(|why| {
                        format!(
                            "parameter `{}` of job `{}` {why} (--param {}=VALUE)",
                            p.name, info.name, p.name
                        )
                    })?;
                    params.insert(p.name.to_owned(), v.to_owned());
                }
                None if p.required => {
                    return Err(format!(
                        "job `{}` requires parameter `{}` ({}); pass --param {}=VALUE",
                        info.name, p.name, p.description, p.name
                    ));
                }
                None => {}
            }
        }
        Ok(params)
    }
}

/// Text lines keyed `input:1`, `input:2`, …
fn inline_records(lines: &[&str]) -> Vec<Pair> {
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            (
                format!("input:{}", i + 1).into_bytes(),
                line.as_bytes().to_vec(),
            )
        })
        .collect()
}

/// A map batch of text lines keyed `input:1`, `input:2`, …
#[cfg(test)]
pub(crate) fn input_batch(lines: &[&str]) -> Vec<u8> {
    kv_batch(&inline_records(lines))
}

fn kv_batch(records: &Records) -> Vec<u8> {
    let mut buf = Vec::new();
    for (key, value) in records {
        mr_codec::put_kv(&mut buf, key, value);
    }
    buf
}

/// Consecutive runs of records of about `max_bytes` of values each (at least one record per
/// batch; `0` puts every record in its own), with the index of each run's first record.
fn batches(records: &Records, max_bytes: usize) -> Vec<(usize, &Records)> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, (_, value)) in records.iter().enumerate() {
        if i > start && bytes + value.len() > max_bytes {
            out.push((start, &records[start..i]));
            (start, bytes) = (i, 0);
        }
        bytes += value.len() + 1;
    }
    if start < records.len() {
        out.push((start, &records[start..]));
    }
    out
}

/// The lines of text files, keyed `path:line` (1-based) as `mr-host run` keys them: the path as
/// given (joined with the file's path inside a given directory), lines without `\n` or `\r\n`,
/// a last line without a newline included.
fn read_line_records(paths: &[impl AsRef<Path>]) -> Result<Vec<Pair>, String> {
    let mut files: Vec<PathBuf> = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let mut matched = Vec::new();
        if path.is_dir() {
            walk_dir(path, &mut matched)
                .map_err(|e| format!("cannot read directory {}: {e}", path.display()))?;
            matched.sort();
        } else {
            matched.push(path.to_owned());
        }
        for p in matched {
            if !files.contains(&p) {
                files.push(p);
            }
        }
    }
    let mut records = Vec::new();
    for file in files {
        let bytes =
            std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        if lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        for (i, line) in lines.into_iter().enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let key = format!("{}:{}", file.display(), i + 1);
            records.push((key.into_bytes(), line.to_vec()));
        }
    }
    Ok(records)
}

/// The files under `dir`, hidden entries skipped: `mr-io`'s walk for `--input DIR` (a host crate
/// this guest SDK cannot depend on), so a harness run reads the same files.
fn walk_dir(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk_dir(&path, out)?;
        } else if path.is_file() {
            out.push(path);
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cut_by_bytes_and_keep_every_record() {
        let records: Vec<_> = ["aaaa", "bb", "cccc", "d"]
            .iter()
            .map(|v| (b"k".to_vec(), v.as_bytes().to_vec()))
            .collect();
        let cuts: Vec<(usize, usize)> = batches(&records, 8)
            .iter()
            .map(|(first, b)| (*first, b.len()))
            .collect();
        assert_eq!(cuts, [(0, 2), (2, 2)]);
        let singles: Vec<usize> = batches(&records, 0).iter().map(|(f, _)| *f).collect();
        assert_eq!(singles, [0, 1, 2, 3]);
        assert!(batches(&[], 8).is_empty());
    }

    #[test]
    fn files_are_read_as_the_host_reads_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("d/sub")).unwrap();
        std::fs::write(dir.join("a.txt"), "x\r\n\ny\nlast").unwrap();
        std::fs::write(dir.join("d/sub/b.txt"), "b1\n").unwrap();
        std::fs::write(dir.join("d/.hidden"), "no\n").unwrap();
        std::fs::write(dir.join("d/empty.txt"), "").unwrap();
        let a = dir.join("a.txt");
        let records = read_line_records(&[a.clone(), dir.join("d"), a.clone()]).unwrap();
        let got: Vec<(String, String)> = records
            .iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect();
        let at = |p: &str, n: u32| format!("{}:{n}", dir.join(p).display());
        let want = [
            (at("a.txt", 1), "x"),
            (at("a.txt", 2), ""),
            (at("a.txt", 3), "y"),
            (at("a.txt", 4), "last"),
            (at("d/sub/b.txt", 1), "b1"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        assert_eq!(got, want);
        let err = read_line_records(&[dir.join("missing.txt")]).unwrap_err();
        assert!(err.starts_with("cannot read "), "{err}");
    }
}
