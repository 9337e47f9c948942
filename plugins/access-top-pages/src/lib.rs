//! The most requested pages: reads the JSON objects `access-pages` writes (one per line, as its
//! `--sink jsonl` output or a pipeline's `stage:pages`) and writes the `top` (default 10) pages
//! with the most hits, ranked from 1, as JSON objects in rank order:
//!
//! ```json
//! {"rank":1,"page":"/index.html","hits":120,"sessions":97}
//! ```
//!
//! Ties are broken by more sessions, then by the page's path (byte order), so the ranking is
//! deterministic. Every page goes to one reduce group (key `top`), which keeps only the best
//! candidates as it reads (at most `2 * top` held at a time). Run with `--sink jsonl` for JSON
//! lines. A line that is not such an object fails the job, naming the record.

use mr_sdk::prelude::*;
use serde::{Deserialize, Serialize};

/// The ranking.
#[derive(Default)]
pub struct AccessTopPages {
    /// The value being emitted, reused for every record.
    buf: Vec<u8>,
}

impl Job for AccessTopPages {
    const INFO: JobInfo = JobInfo::new("access-top-pages", "0.1.0")
        .description(
            "Ranks access-pages' pages (JSON lines) by hits, then sessions, then path, and \
             writes the first `top` as JSON objects with their rank.",
        )
        .params(&[
            Param::with_default("top", "how many pages to keep (at least 1)", "10").integer(),
        ]);
}

/// A page's totals, as `access-pages` writes them and as this job reads them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Page {
    pub page: String,
    pub hits: u64,
    pub sessions: u64,
}

/// A ranked page, as written.
#[derive(Serialize)]
struct Ranked<'a> {
    rank: usize,
    page: &'a str,
    hits: u64,
    sessions: u64,
}

/// Sorts best first (more hits, then more sessions, then the smaller path) and keeps `top`.
pub fn best(pages: &mut Vec<Page>, top: usize) {
    pages.sort_by(|a, b| {
        (b.hits, b.sessions)
            .cmp(&(a.hits, a.sessions))
            .then_with(|| a.page.cmp(&b.page))
    });
    pages.truncate(top);
}

impl Mapper for AccessTopPages {
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
        let page: Page = serde_json::from_slice(record.value).map_err(|e| {
            Error::new(format!(
                "record {}: expected a page object of access-pages ({{\"page\":...,\"hits\":...,\"sessions\":...}}, its --sink jsonl output): {e}: {:?}",
                record.location(),
                String::from_utf8_lossy(record.value)
            ))
        })?;
        self.buf.clear();
        mr_sdk::push_u64(&mut self.buf, page.hits);
        self.buf.push(b'\t');
        mr_sdk::push_u64(&mut self.buf, page.sessions);
        self.buf.push(b'\t');
        self.buf.extend_from_slice(page.page.as_bytes());
        out.emit(b"top", &self.buf);
        Ok(())
    }
}

impl Reducer for AccessTopPages {
    fn reduce(&mut self, key: &[u8], values: &mut Values<'_>, out: &mut Emitter) -> Result {
        let top: i64 = param("top").unwrap_or_else(|| "10".into()).parse()?;
        ensure!(top >= 1, "top must be at least 1, not {top}");
        let top = usize::try_from(top).unwrap_or(usize::MAX).min(1 << 24);
        let mut pages = Vec::new();
        while let Some(value) = values.next() {
            let page = parse_value(value).ok_or_else(|| {
                Error::new(format!(
                    "malformed intermediate value {:?} (expected `hits<TAB>sessions<TAB>page`)",
                    String::from_utf8_lossy(value)
                ))
            })?;
            pages.push(page);
            if pages.len() >= 2 * top {
                best(&mut pages, top);
            }
        }
        best(&mut pages, top);
        for (i, p) in pages.iter().enumerate() {
            let ranked = Ranked {
                rank: i + 1,
                page: &p.page,
                hits: p.hits,
                sessions: p.sessions,
            };
            out.emit(key, serde_json::to_vec(&ranked)?);
        }
        Ok(())
    }
}

mr_sdk::export_job!(AccessTopPages: map, reduce);

/// Parses map's `hits<TAB>sessions<TAB>page`.
fn parse_value(value: &[u8]) -> Option<Page> {
    let mut fields = std::str::from_utf8(value).ok()?.splitn(3, '\t');
    Some(Page {
        hits: fields.next()?.parse().ok()?,
        sessions: fields.next()?.parse().ok()?,
        page: fields.next()?.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mr_sdk::testing::Harness;

    const PAGES: &[&str] = &[
        r#"{"page":"/b","hits":4,"sessions":2}"#,
        r#"{"page":"/a","hits":4,"sessions":2}"#,
        r#"{"page":"/c","hits":1,"sessions":1}"#,
        r#"{"page":"/d","hits":4,"sessions":3}"#,
        r#"{"page":"/e","hits":9,"sessions":1}"#,
    ];

    #[test]
    fn ranks_by_hits_then_sessions_then_path() {
        let out = Harness::new()
            .param("top", "4")
            .run_mapreduce::<AccessTopPages>(PAGES)
            .unwrap();
        assert_eq!(
            out.lines(),
            [
                r#"top	{"rank":1,"page":"/e","hits":9,"sessions":1}"#,
                r#"top	{"rank":2,"page":"/d","hits":4,"sessions":3}"#,
                r#"top	{"rank":3,"page":"/a","hits":4,"sessions":2}"#,
                r#"top	{"rank":4,"page":"/b","hits":4,"sessions":2}"#,
            ]
        );
        // top=1 keeps only the best, whatever the order it is read in.
        let out = Harness::new()
            .param("top", "1")
            .run_mapreduce::<AccessTopPages>(PAGES)
            .unwrap();
        assert_eq!(out.records.len(), 1);
        assert!(out.lines()[0].contains(r#""page":"/e""#));
    }

    #[test]
    fn a_bad_top_or_line_is_refused() {
        let failure = Harness::new()
            .param("top", "0")
            .run_mapreduce::<AccessTopPages>(PAGES)
            .unwrap_err();
        assert!(
            failure.message.contains("top must be at least 1"),
            "{}",
            failure.message
        );
        let failure = Harness::new()
            .run_mapreduce::<AccessTopPages>(&[PAGES[0], r#"{"page":"/x"}"#])
            .unwrap_err();
        assert_eq!(failure.record_index, Some(1));
        assert!(failure.message.contains("input:2"), "{}", failure.message);
        assert!(
            failure.message.contains("expected a page object"),
            "{}",
            failure.message
        );
    }
}
