//! Per-page totals of web sessions: reads the JSON objects `access-sessions` writes (one per
//! line, as its `--sink jsonl` output or a pipeline's `stage:sessions`) and writes one JSON
//! object per page (path) with at least `min_hits` hits (default 1, so every page):
//!
//! ```json
//! {"page":"/index.html","hits":120,"sessions":97}
//! ```
//!
//! `hits` counts the page's requests over all sessions, `sessions` the sessions that requested
//! it at least once. Run with `--sink jsonl` for JSON lines (the text sink writes
//! `page<TAB>{...}`). A line that is not such an object fails the job, naming the record.
//!
//! Map emits `sessions,hits` pairs (`1,N` per page of a session), which the combiner and
//! reduce add up.

use std::collections::BTreeMap;

use mr_sdk::prelude::*;
use serde::{Deserialize, Serialize};

/// The aggregation.
#[derive(Default)]
pub struct AccessPages {
    /// The `min_hits` parameter, read on the first group.
    min_hits: Option<u64>,
}

impl Job for AccessPages {
    const INFO: JobInfo = JobInfo::new("access-pages", "0.1.0")
        .description(
            "Per-page totals of access-sessions' sessions (JSON lines): hits and the sessions \
             that requested the page, for pages with at least `min_hits` hits.",
        )
        .params(&[Param::with_default(
            "min_hits",
            "pages with fewer hits than this are left out",
            "1",
        )
        .integer()]);
}

/// The field of a session this job reads (the others are ignored).
#[derive(Deserialize)]
struct Session<'a> {
    #[serde(borrow)]
    pages: Vec<std::borrow::Cow<'a, str>>,
}

/// One page's totals, as written.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Page<'a> {
    pub page: &'a str,
    pub hits: u64,
    pub sessions: u64,
}

impl Mapper for AccessPages {
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
        let session: Session<'_> = serde_json::from_slice(record.value).map_err(|e| {
            Error::new(format!(
                "record {}: expected a session object of access-sessions ({{\"pages\":[...],...}}, its --sink jsonl output): {e}: {:?}",
                record.location(),
                String::from_utf8_lossy(record.value)
            ))
        })?;
        let mut hits: BTreeMap<&str, u64> = BTreeMap::new();
        for page in &session.pages {
            *hits.entry(page.as_ref()).or_default() += 1;
        }
        for (page, n) in hits {
            out.emit(page, format!("1,{n}"));
        }
        Ok(())
    }
}

impl Combiner for AccessPages {
    fn combine(
        &mut self,
        key: &[u8],
        values: &mut Values<'_>,
        out: &mut ValueEmitter<'_>,
    ) -> Result {
        let (sessions, hits) = fold(key, values)?;
        out.emit(format!("{sessions},{hits}"));
        Ok(())
    }
}

impl Reducer for AccessPages {
    fn reduce(&mut self, key: &[u8], values: &mut Values<'_>, out: &mut Emitter) -> Result {
        let min_hits = match self.min_hits {
            Some(min) => min,
            None => {
                let text = param("min_hits").unwrap_or_else(|| "1".into());
                let min: i64 = text.parse()?;
                *self.min_hits.insert(min.max(0) as u64)
            }
        };
        let (sessions, hits) = fold(key, values)?;
        if hits >= min_hits {
            let page = Page {
                page: std::str::from_utf8(key)?,
                hits,
                sessions,
            };
            out.emit(key, serde_json::to_vec(&page)?);
        }
        Ok(())
    }
}

mr_sdk::export_job!(AccessPages: map, combine, reduce);

/// Adds up one page's `sessions,hits` values.
fn fold(key: &[u8], values: &mut Values<'_>) -> Result<(u64, u64)> {
    let (mut sessions, mut hits) = (0u64, 0u64);
    while let Some(value) = values.next() {
        let pair = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.split_once(','))
            .and_then(|(s, h)| Some((s.parse::<u64>().ok()?, h.parse::<u64>().ok()?)));
        let Some((s, h)) = pair else {
            bail!(
                "key {:?}: malformed intermediate value {:?} (expected `sessions,hits`)",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(value)
            );
        };
        sessions += s;
        hits += h;
    }
    Ok((sessions, hits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mr_sdk::testing::Harness;

    const SESSIONS: &[&str] = &[
        r#"{"ip":"192.0.2.1","day":"2026-10-11","hits":4,"pages":["/a","/b","/a","/a"],"bytes":8}"#,
        r#"{"ip":"192.0.2.1","day":"2026-10-10","hits":1,"pages":["/b"],"bytes":3}"#,
        r#"{"ip":"198.51.100.7","day":"2026-10-11","hits":2,"pages":["/c","/a"],"bytes":7}"#,
    ];

    #[test]
    fn counts_hits_and_sessions_per_page() {
        let expected = [
            r#"/a	{"page":"/a","hits":4,"sessions":2}"#,
            r#"/b	{"page":"/b","hits":2,"sessions":2}"#,
            r#"/c	{"page":"/c","hits":1,"sessions":1}"#,
        ];
        let out = Harness::new()
            .run_mapreduce::<AccessPages>(SESSIONS)
            .unwrap();
        assert_eq!(out.lines(), expected);
        let out = Harness::new()
            .run_mapreduce_combined::<AccessPages>(SESSIONS)
            .unwrap();
        assert_eq!(out.lines(), expected);
    }

    #[test]
    fn min_hits_leaves_out_rare_pages() {
        let out = Harness::new()
            .param("min_hits", "2")
            .run_mapreduce::<AccessPages>(SESSIONS)
            .unwrap();
        assert_eq!(
            out.lines(),
            [
                r#"/a	{"page":"/a","hits":4,"sessions":2}"#,
                r#"/b	{"page":"/b","hits":2,"sessions":2}"#,
            ]
        );
        let failure = Harness::new()
            .param("min_hits", "two")
            .run_mapreduce::<AccessPages>(SESSIONS)
            .unwrap_err();
        assert!(failure.message.contains("min_hits"), "{}", failure.message);
    }

    #[test]
    fn a_line_that_is_not_a_session_names_the_record() {
        let failure = Harness::new()
            .run_mapreduce::<AccessPages>(&[SESSIONS[0], r#"{"pages":"/a"}"#])
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
