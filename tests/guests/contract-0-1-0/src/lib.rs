//! A map-only job built directly against contract `mr:job@0.1.0` (the WIT in `wit/` is that
//! version, verbatim): the host of a later 0.1.x contract must keep loading it. It declares one
//! parameter, `tag` (a string, as every 0.1.0 parameter is), and maps each line to
//! `(line, tag)`; with `tag=KEY`, to `(line, key)`, to show the keys 0.1.x jobs get.

wit_bindgen::generate!({
    path: "wit",
    world: "mapper-job",
});

use exports::mr::job::mapper::Guest as Mapper;
use exports::mr::job::metadata::Guest as Metadata;
use mr::job::types::{JobError, JobInfo, ParamInfo, Phases};

struct Job;

impl Metadata for Job {
    fn describe() -> JobInfo {
        JobInfo {
            name: "contract-0-1-0".into(),
            version: "1.0.0".into(),
            description: "A job built against mr:job@0.1.0.".into(),
            phases: Phases::MAP,
            params: vec![ParamInfo {
                name: "tag".into(),
                description: "text appended to every line".into(),
                default_value: Some("none".into()),
                required: false,
            }],
        }
    }
}

/// Reads the `u32 len, bytes` framing of a kv batch (see the WIT).
fn take<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let bytes = buf.get(4..4 + len)?;
    *buf = &buf[4 + len..];
    Some(bytes)
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

impl Mapper for Job {
    fn map(input: Vec<u8>) -> Result<Vec<u8>, JobError> {
        let tag = mr::job::context::param("tag").unwrap_or_default();
        let mut rest = input.as_slice();
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (Some(key), Some(value)) = (take(&mut rest), take(&mut rest)) else {
                return Err(JobError {
                    message: "malformed kv batch".into(),
                    record_index: None,
                });
            };
            put(&mut out, value);
            put(&mut out, if tag == "KEY" { key } else { tag.as_bytes() });
        }
        Ok(out)
    }
}

export!(Job);
