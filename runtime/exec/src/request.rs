//! A job request as data ([`SubmitSpec`]): the fields of `mr-host submit`'s flags, with their
//! validation, so the command line and the HTTP API (`mr-host serve`) build a [`JobRequest`]
//! from the same code and refuse a bad one with the same message.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use mr_engine::JobComponent;
use serde::{Deserialize, Deserializer, Serialize};

use crate::ExecError;
use crate::sink::Sink;
use crate::spec::{Hooks, JobRequest, SliceLimits};

/// Everything that defines a job except its component: what `mr-host submit` takes as flags
/// and `POST /api/jobs` as its JSON `spec`. Sizes are bytes, or strings such as `"64M"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitSpec {
    /// Input specs (files, directories, globs, prefixed specs), read in this order.
    pub inputs: Vec<String>,
    /// Output directory.
    pub output: PathBuf,
    /// Target number of shards.
    #[serde(default)]
    pub shards: Option<u32>,
    /// Reduce partitions.
    #[serde(default)]
    pub reducers: Option<u32>,
    /// Job parameters.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Discard what the output directory holds and start over.
    #[serde(default)]
    pub overwrite: bool,
    /// Input bytes per map call.
    #[serde(default, deserialize_with = "size")]
    pub batch_size: Option<u64>,
    /// Input bytes after which a map slice ends.
    #[serde(default, deserialize_with = "size")]
    pub slice_size: Option<u64>,
    /// Records after which a map slice ends.
    #[serde(default)]
    pub slice_records: Option<u64>,
    /// Seconds after which a map slice ends (0: no time bound).
    #[serde(default)]
    pub slice_seconds: Option<u64>,
    /// Longest accepted input record.
    #[serde(default, deserialize_with = "size")]
    pub max_record_bytes: Option<u64>,
    /// Failed attempts of one task before the job fails.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Where records go: `text`, `jsonl`, `jsonl-kv` or `sqlite:DB?table=T...`.
    #[serde(default)]
    pub sink: Option<String>,
    /// Also concatenate the part files into `OUTPUT/NAME`.
    #[serde(default)]
    pub compose: Option<String>,
    /// Bad input records to skip before failing.
    #[serde(default)]
    pub max_bad_records: Option<u64>,
    /// Largest decompressed/compressed ratio.
    #[serde(default)]
    pub max_inflate_ratio: Option<u64>,
    /// Most distinct counter names.
    #[serde(default)]
    pub max_counters: Option<u32>,
    /// Longest counter name, in bytes.
    #[serde(default)]
    pub max_counter_name_bytes: Option<u32>,
    /// POST the summary JSON to this URL when the job ends (`--notify`).
    #[serde(default)]
    pub notify: Option<String>,
    /// Run this shell command with the summary JSON on stdin when the job ends (`--on-done`).
    #[serde(default)]
    pub on_done: Option<String>,
    /// Map only the first N records of each shard (`--limit`).
    #[serde(default)]
    pub limit: Option<u64>,
    /// Map only this fraction of the records, chosen by a hash of each record's location
    /// (`--sample`): the same records every time.
    #[serde(default)]
    pub sample: Option<f64>,
    /// Guest memory per instance for this job, below the worker's `--memory-limit` (a limit
    /// planned with the job, e.g. a pipeline stage's; it never raises the worker's).
    #[serde(
        default,
        deserialize_with = "size",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory_limit: Option<u64>,
    /// Longest guest call for this job, in seconds, below the worker's `--call-timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_timeout: Option<f64>,
    /// Keep the job's map output and shuffle runs (`OUTPUT/_mr/work/`) when it is done, to be
    /// read with `mr-host dump` (`--debug`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub debug: bool,
}

/// A size: a number of bytes, or a string such as `"1M"` (as the flags take it).
fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Bytes(u64),
        Text(String),
    }
    match Option::<Given>::deserialize(d)? {
        None => Ok(None),
        Some(Given::Bytes(n)) => Ok(Some(n)),
        Some(Given::Text(s)) => mr_corpus::parse_size(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

fn bad(message: impl Into<String>) -> ExecError {
    ExecError::BadSpec {
        message: message.into(),
    }
}

impl SubmitSpec {
    /// Checks every setting that needs no component, with the flags' names in the messages.
    pub fn check(&self) -> Result<(), ExecError> {
        if self.inputs.is_empty() {
            return Err(bad("give at least one input (--input)"));
        }
        if self.output.as_os_str().is_empty() {
            return Err(bad("give an output directory (--output)"));
        }
        if self.reducers == Some(0) {
            return Err(bad("--reducers must be at least 1"));
        }
        if let Some(r) = self.reducers
            && r > mr_shuffle::MAX_PARTITIONS
        {
            return Err(bad(format!(
                "--reducers must be at most {} (got {r}): each reducer is a partition of the shuffle",
                mr_shuffle::MAX_PARTITIONS
            )));
        }
        if let Some(b) = self.batch_size
            && !(1024..=(256 << 20)).contains(&b)
        {
            return Err(bad(format!(
                "--batch-size must be between 1K and 256M (got {b} bytes)"
            )));
        }
        if let Some(b) = self.max_record_bytes
            && !(1024..=(1 << 30)).contains(&b)
        {
            return Err(bad(format!(
                "--max-record-bytes must be between 1K and 1G (got {b} bytes)"
            )));
        }
        if self.slice_size == Some(0) || self.slice_records == Some(0) {
            return Err(bad("--slice-size and --slice-records must be at least 1"));
        }
        if let Some(spec) = &self.sink {
            Sink::parse(spec).map_err(bad)?;
        }
        if let Some(name) = &self.compose
            && (name.is_empty()
                || name.contains('/')
                || name.starts_with("part-")
                || name.starts_with('_')
                || name.starts_with('.'))
        {
            return Err(bad(format!(
                "--compose {name:?}: give a plain file name, not starting with part-, _ or ."
            )));
        }
        if let Some(url) = &self.notify {
            crate::hooks::check_url(url).map_err(bad)?;
        }
        if self.on_done.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err(bad("--on-done needs a command"));
        }
        if self.limit == Some(0) {
            return Err(bad("--limit must be at least 1 (records per shard)"));
        }
        if let Some(m) = self.memory_limit
            && !((1 << 20)..=(4 << 30)).contains(&m)
        {
            return Err(bad(format!(
                "memory_limit must be between 1M and 4G (got {m} bytes)"
            )));
        }
        if let Some(t) = self.call_timeout
            && !(t > 0.0 && t.is_finite() && t <= 86_400.0)
        {
            return Err(bad(format!(
                "call_timeout must be a number of seconds above 0, at most a day (got {t})"
            )));
        }
        if let Some(f) = self.sample
            && !(f > 0.0 && f <= 1.0)
        {
            return Err(bad(format!(
                "--sample must be a fraction above 0 and at most 1, such as 0.01 (got {f})"
            )));
        }
        Ok(())
    }

    /// The request for `job` (loaded with the runtime that will run it, or any for a plan):
    /// the settings checked, the parameters applied.
    pub fn request(&self, job: Arc<JobComponent>) -> Result<JobRequest, ExecError> {
        self.check()?;
        let job = job
            .with_params(&self.params)
            .map_err(|message| ExecError::BadParams { message })?;
        let slice = (self.slice_size.is_some()
            || self.slice_records.is_some()
            || self.slice_seconds.is_some())
        .then(|| {
            let d = SliceLimits::default();
            SliceLimits {
                bytes: self.slice_size.unwrap_or(d.bytes),
                records: self.slice_records.unwrap_or(d.records),
                seconds: self.slice_seconds.unwrap_or(d.seconds),
            }
        });
        let sink = match &self.sink {
            Some(spec) => Sink::parse(spec).map_err(bad)?,
            None => Sink::Text,
        };
        Ok(JobRequest {
            sink,
            compose: self.compose.clone(),
            max_bad_records: self.max_bad_records,
            max_inflate_ratio: self.max_inflate_ratio,
            max_counters: self.max_counters,
            max_counter_name_bytes: self.max_counter_name_bytes,
            shards: self.shards.map(|s| s.max(1)),
            reducers: self.reducers,
            batch_bytes: self.batch_size,
            slice,
            max_record_bytes: self.max_record_bytes,
            max_attempts: self.max_attempts,
            overwrite: self.overwrite,
            limit: self.limit,
            sample: self.sample,
            debug: self.debug,
            memory_limit: self.memory_limit,
            call_timeout: self.call_timeout,
            hooks: Hooks {
                notify: self.notify.clone(),
                on_done: self.on_done.clone(),
            },
            ..JobRequest::new(job, self.inputs.clone(), self.output.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<SubmitSpec, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn the_api_form_reads_and_sizes_take_units() {
        let s = spec(
            r#"{"inputs": ["in.txt"], "output": "out/", "reducers": 2, "params": {"k": "v"},
                "batch_size": "64K", "slice_size": 4096}"#,
        )
        .unwrap();
        assert_eq!(s.inputs, ["in.txt"]);
        assert_eq!(s.reducers, Some(2));
        assert_eq!(s.params["k"], "v");
        assert_eq!(s.batch_size, Some(64 << 10));
        assert_eq!(s.slice_size, Some(4096));
        s.check().unwrap();
    }

    #[test]
    fn unknown_fields_and_bad_sizes_are_refused_by_name() {
        let e = spec(r#"{"inputs": ["a"], "output": "o", "reducer": 2}"#).unwrap_err();
        assert!(e.contains("unknown field `reducer`"), "{e}");
        let e = spec(r#"{"inputs": ["a"], "output": "o", "batch_size": "12Q"}"#).unwrap_err();
        assert!(e.contains("unknown unit"), "{e}");
    }

    #[test]
    fn checks_give_the_flags_messages() {
        let base = SubmitSpec {
            inputs: vec!["a".into()],
            output: "o".into(),
            ..Default::default()
        };
        let msg = |s: SubmitSpec| s.check().unwrap_err().to_string();
        assert_eq!(
            msg(SubmitSpec {
                reducers: Some(0),
                ..base.clone()
            }),
            "--reducers must be at least 1"
        );
        assert_eq!(
            msg(SubmitSpec {
                reducers: Some(65_537),
                ..base.clone()
            }),
            "--reducers must be at most 65536 (got 65537): each reducer is a partition of the shuffle"
        );
        assert!(
            msg(SubmitSpec {
                batch_size: Some(10),
                ..base.clone()
            })
            .contains("--batch-size must be between 1K and 256M")
        );
        assert!(
            msg(SubmitSpec {
                compose: Some("part-1".into()),
                ..base.clone()
            })
            .contains("--compose")
        );
        assert!(
            msg(SubmitSpec {
                sink: Some("parquet".into()),
                ..base.clone()
            })
            .contains("--sink `parquet`")
        );
        assert!(
            msg(SubmitSpec {
                notify: Some("ftp://x".into()),
                ..base.clone()
            })
            .contains("--notify")
        );
        assert!(
            msg(SubmitSpec {
                inputs: vec![],
                ..base.clone()
            })
            .contains("at least one input")
        );
        base.check().unwrap();
    }
}
