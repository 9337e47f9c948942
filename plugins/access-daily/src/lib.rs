//! Per-day totals of web sessions: reads the JSON objects `access-sessions` writes (one per
//! line, as its `--sink jsonl` output or a pipeline's `stage:sessions`) and writes one JSON
//! object per day (the session's `day`, its start day in UTC):
//!
//! ```json
//! {"day":"2026-10-10","sessions":41,"hits":187,"bytes":1203310,"ips":17}
//! ```
//!
//! `sessions` counts the day's sessions, `hits` and `bytes` sum theirs, `ips` counts the
//! distinct client IPs among them. Run with `--sink jsonl` for JSON lines (the text sink writes
//! `day<TAB>{...}`). A line that is not such an object fails the job, naming the record.

use std::collections::HashSet;

use mr_sdk::prelude::*;
use serde::{Deserialize, Serialize};

/// The aggregation.
#[derive(Default)]
pub struct AccessDaily {
    /// The value being emitted, reused for every record.
    buf: Vec<u8>,
}

impl Job for AccessDaily {
    const INFO: JobInfo = JobInfo::new("access-daily", "0.1.0").description(
        "Per-day totals of access-sessions' sessions (JSON lines): sessions, hits, bytes and \
         distinct IPs, one JSON object per day.",
    );
}

/// The fields of a session this job reads (the others are ignored).
#[derive(Deserialize)]
struct Session<'a> {
    #[serde(borrow)]
    ip: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    day: std::borrow::Cow<'a, str>,
    hits: u64,
    bytes: u64,
}

/// One day's totals, as written.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Day<'a> {
    pub day: &'a str,
    pub sessions: u64,
    pub hits: u64,
    pub bytes: u64,
    pub ips: u64,
}

impl Mapper for AccessDaily {
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
        let session: Session<'_> = serde_json::from_slice(record.value).map_err(|e| {
            Error::new(format!(
                "record {}: expected a session object of access-sessions ({{\"ip\":...,\"day\":...,\"hits\":...,\"bytes\":...}}, its --sink jsonl output): {e}: {:?}",
                record.location(),
                String::from_utf8_lossy(record.value)
            ))
        })?;
        self.buf.clear();
        mr_sdk::push_u64(&mut self.buf, session.hits);
        self.buf.push(b'\t');
        mr_sdk::push_u64(&mut self.buf, session.bytes);
        self.buf.push(b'\t');
        self.buf.extend_from_slice(session.ip.as_bytes());
        out.emit(session.day.as_bytes(), &self.buf);
        Ok(())
    }
}

impl Reducer for AccessDaily {
    fn reduce(&mut self, key: &[u8], values: &mut Values<'_>, out: &mut Emitter) -> Result {
        let day = std::str::from_utf8(key)?;
        let mut totals = Day {
            day,
            ..Day::default()
        };
        let mut ips = HashSet::new();
        while let Some(value) = values.next() {
            let (hits, bytes, ip) = parse_value(value).ok_or_else(|| {
                Error::new(format!(
                    "key {day:?}: malformed intermediate value {:?} (expected `hits<TAB>bytes<TAB>ip`)",
                    String::from_utf8_lossy(value)
                ))
            })?;
            totals.sessions += 1;
            totals.hits += hits;
            totals.bytes += bytes;
            if !ips.contains(ip) {
                ips.insert(ip.to_owned());
            }
        }
        totals.ips = ips.len() as u64;
        out.emit(key, serde_json::to_vec(&totals)?);
        Ok(())
    }
}

mr_sdk::export_job!(AccessDaily: map, reduce);

/// Parses map's `hits<TAB>bytes<TAB>ip`.
fn parse_value(value: &[u8]) -> Option<(u64, u64, &str)> {
    let mut fields = std::str::from_utf8(value).ok()?.splitn(3, '\t');
    let hits = fields.next()?.parse().ok()?;
    let bytes = fields.next()?.parse().ok()?;
    Some((hits, bytes, fields.next()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mr_sdk::testing::Harness;

    #[test]
    fn totals_per_day_with_distinct_ips() {
        let out = Harness::new()
            .run_mapreduce::<AccessDaily>(&[
                r#"{"ip":"192.0.2.1","day":"2026-10-11","start":"x","end":"y","hits":4,"pages":["/a","/b","/c","/d"],"bytes":8}"#,
                r#"{"ip":"192.0.2.1","day":"2026-10-10","hits":1,"pages":["/e"],"bytes":3}"#,
                r#"{"ip":"192.0.2.1","day":"2026-10-11","hits":2,"bytes":0}"#,
                r#"{"ip":"198.51.100.7","day":"2026-10-11","hits":1,"bytes":7}"#,
            ])
            .unwrap();
        assert_eq!(
            out.lines(),
            [
                r#"2026-10-10	{"day":"2026-10-10","sessions":1,"hits":1,"bytes":3,"ips":1}"#,
                r#"2026-10-11	{"day":"2026-10-11","sessions":3,"hits":7,"bytes":15,"ips":2}"#,
            ]
        );
    }

    #[test]
    fn a_line_that_is_not_a_session_names_the_record() {
        let failure = Harness::new()
            .run_mapreduce::<AccessDaily>(&[
                r#"{"ip":"a","day":"d","hits":1,"bytes":1}"#,
                "192.0.2.1\t{\"ip\":\"a\"}",
            ])
            .unwrap_err();
        assert_eq!(failure.record_index, Some(1));
        assert!(failure.message.contains("input:2"), "{}", failure.message);
        assert!(
            failure.message.contains("expected a session object"),
            "{}",
            failure.message
        );
    }
}
