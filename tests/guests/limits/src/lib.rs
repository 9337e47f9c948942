//! Test fixture: a map-reduce job written against the raw WIT bindings (not the SDK), so it can
//! do what the SDK never does: ask the value stream for `u32::MAX` bytes, emit records of any
//! size, and name any number of counters. Each input line says what to do:
//!
//! - `BIG KEY_BYTES VALUE_BYTES TAG`: emits one pair whose key is TAG padded with `k` to
//!   KEY_BYTES and whose value is VALUE_BYTES of `v`;
//! - `MANY N VALUE_BYTES TAG`: emits N pairs with the key TAG and values of VALUE_BYTES bytes
//!   (a hot key);
//! - `COUNTERS N PREFIX`: increments N distinct counters `PREFIX0` .. `PREFIX{N-1}`;
//! - `LONGCOUNTER N`: increments one counter whose name is N bytes long;
//! - `TABKEY`, `NLVALUE`, `CRVALUE`: emit a pair whose key holds a tab, whose value holds a
//!   newline, whose value ends with a carriage return (what a text line cannot hold); the
//!   latter two under the key `ECHO`, whose values the reducer writes out as they are;
//! - `MALFORMED`: emits the key `MALFORMED`, on which the reducer returns a malformed batch;
//! - anything else: emits (line, `1`).
//!
//! The combiner keeps its values as they are and counts its calls (`combine-calls`) and the
//! calls whose input was larger than 2 MiB (`combine-oversized-inputs`). The reducer emits, per
//! key, the first 16 key bytes and `count=N bytes=B key-bytes=K largest-stream-batch=S`, pulling
//! streamed values with the `stream-max` parameter (default 256 KiB; `max` for `u32::MAX`).

wit_bindgen::generate!({
    path: "../../../wit",
    world: "mapreduce-job",
});

use exports::mr::job::{combiner, mapper, metadata, param_types, reducer};
use mr::job::context::{counter_add, param};
use mr::job::types::{JobError, JobInfo, ParamInfo, Phases};
use mr::job::values::ValueStream;

struct Limits;

fn error(message: impl Into<String>, record_index: Option<u32>) -> JobError {
    JobError {
        message: message.into(),
        record_index,
    }
}

impl metadata::Guest for Limits {
    fn describe() -> JobInfo {
        JobInfo {
            name: "limits".into(),
            version: "0.0.1".into(),
            description: "Pushes the host's size and count limits.".into(),
            phases: Phases::MAP | Phases::COMBINE | Phases::REDUCE,
            params: vec![ParamInfo {
                name: "stream-max".into(),
                description: "Bytes asked of the value stream per call (a number, or `max`)".into(),
                default_value: Some("262144".into()),
                required: false,
            }],
        }
    }
}

impl param_types::Guest for Limits {
    /// `stream-max` takes a number or `max`: text, so nothing to declare.
    fn param_types() -> Vec<param_types::ParamTypeInfo> {
        Vec::new()
    }
}

fn padded(tag: &str, len: usize, fill: u8) -> Vec<u8> {
    let mut key = tag.as_bytes().to_vec();
    key.resize(len.max(tag.len()), fill);
    key
}

impl mapper::Guest for Limits {
    fn map(input: Vec<u8>) -> Result<Vec<u8>, JobError> {
        let mut out = Vec::new();
        for (i, kv) in mr_codec::kvs(&input).enumerate() {
            let (_, value) = kv.map_err(|e| error(e.to_string(), None))?;
            let line = String::from_utf8_lossy(value);
            let words: Vec<&str> = line.split_whitespace().collect();
            let num = |w: Option<&&str>| -> Result<usize, JobError> {
                w.and_then(|w| w.parse().ok())
                    .ok_or_else(|| error(format!("bad number in {line:?}"), Some(i as u32)))
            };
            match words.first().copied() {
                Some("BIG") => {
                    let key = padded(words.get(3).unwrap_or(&"big"), num(words.get(1))?, b'k');
                    let value = vec![b'v'; num(words.get(2))?];
                    mr_codec::put_kv(&mut out, &key, &value);
                }
                Some("MANY") => {
                    let value = vec![b'v'; num(words.get(2))?];
                    let key = words.get(3).unwrap_or(&"hot").as_bytes();
                    let n = num(words.get(1))?;
                    // Exactly the room needed: the test measuring host memory wants the
                    // guest's own share small and predictable.
                    out.reserve_exact(n * (8 + key.len() + value.len()));
                    for _ in 0..n {
                        mr_codec::put_kv(&mut out, key, &value);
                    }
                }
                Some("COUNTERS") => {
                    let prefix = words.get(2).unwrap_or(&"c");
                    for n in 0..num(words.get(1))? {
                        counter_add(&format!("{prefix}{n}"), 1);
                    }
                }
                Some("LONGCOUNTER") => {
                    counter_add(&"n".repeat(num(words.get(1))?), 1);
                }
                Some("TABKEY") => mr_codec::put_kv(&mut out, b"a\tb", b"1"),
                Some("NLVALUE") => mr_codec::put_kv(&mut out, b"ECHO", b"two\nlines"),
                Some("CRVALUE") => mr_codec::put_kv(&mut out, b"ECHO", b"ends with cr\r"),
                Some("MALFORMED") => mr_codec::put_kv(&mut out, b"MALFORMED", b"1"),
                _ => mr_codec::put_kv(&mut out, value, b"1"),
            }
        }
        Ok(out)
    }
}

impl combiner::Guest for Limits {
    fn combine(groups: Vec<u8>) -> Result<Vec<u8>, JobError> {
        counter_add("combine-calls", 1);
        if groups.len() > 2 << 20 {
            counter_add("combine-oversized-inputs", 1);
        }
        let mut out = Vec::with_capacity(groups.len());
        for group in mr_codec::groups(&groups) {
            let group = group.map_err(|e| error(e.to_string(), None))?;
            mr_codec::put_count(&mut out, group.count);
            for value in group.values() {
                mr_codec::put_value(&mut out, value.map_err(|e| error(e.to_string(), None))?);
            }
        }
        Ok(out)
    }
}

impl reducer::Guest for Limits {
    fn reduce(groups: Vec<u8>, rest: &ValueStream) -> Result<Vec<u8>, JobError> {
        let max = match param("stream-max").as_deref() {
            Some("max") => u32::MAX,
            Some(n) => n
                .parse()
                .map_err(|_| error("stream-max is not a number", None))?,
            None => 256 << 10,
        };
        let mut out = Vec::new();
        for group in mr_codec::groups(&groups) {
            let group = group.map_err(|e| error(e.to_string(), None))?;
            let (mut count, mut bytes, mut largest) = (0u64, 0u64, 0usize);
            for value in group.values() {
                let value = value.map_err(|e| error(e.to_string(), None))?;
                count += 1;
                bytes += value.len() as u64;
            }
            if group.more {
                loop {
                    let batch = rest.next_batch(max);
                    if batch.is_empty() {
                        break;
                    }
                    largest = largest.max(batch.len());
                    for value in mr_codec::values(&batch) {
                        let value = value.map_err(|e| error(e.to_string(), None))?;
                        count += 1;
                        bytes += value.len() as u64;
                    }
                }
            }
            if group.key == b"ECHO" {
                for value in group.values() {
                    let value = value.map_err(|e| error(e.to_string(), None))?;
                    mr_codec::put_kv(&mut out, group.key, value);
                }
                continue;
            }
            if group.key == b"MALFORMED" {
                // A kv entry whose key claims 1000 bytes that are not there.
                out.extend_from_slice(&1000u32.to_le_bytes());
                out.extend_from_slice(b"short");
                continue;
            }
            let shown = &group.key[..group.key.len().min(16)];
            let summary = format!(
                "count={count} bytes={bytes} key-bytes={} largest-stream-batch={largest}",
                group.key.len()
            );
            mr_codec::put_kv(&mut out, shown, summary.as_bytes());
        }
        Ok(out)
    }
}

export!(Limits);
