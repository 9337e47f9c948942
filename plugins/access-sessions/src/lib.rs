//! Web sessions from access logs: each input line is one hit in the Common or Combined Log
//! Format (`203.0.113.9 - - [10/Oct/2026:13:55:36 +0000] "GET /index.html HTTP/1.1" 200 2326
//! "-" "Mozilla/5.0"`; anything after the byte count, such as the referer and user agent, is
//! ignored). Hits are grouped per client IP into sessions: a hit more than `gap_minutes`
//! (default 30) after the IP's previous hit starts a new session.
//!
//! Map keys each hit by its IP (value `epoch-seconds<TAB>bytes<TAB>path`); reduce sorts an IP's
//! hits by time, ties kept in input order (reduce sees each key's values in input order and the
//! sort is stable), so sessions never depend on how the input was split. Each session is written
//! as one JSON object (run with `--sink jsonl`, or `sink = "jsonl"` in a pipeline):
//!
//! ```json
//! {"ip":"203.0.113.9","day":"2026-10-10","start":"2026-10-10T13:55:36Z",
//!  "end":"2026-10-10T14:02:10Z","hits":3,"pages":["/index.html","/a","/index.html"],"bytes":9110}
//! ```
//!
//! `day`, `start` and `end` are in UTC (the log's zone offset is applied); `day` is the
//! session's start day. `pages` lists the path of every hit in order (the request target without
//! its query string); `bytes` sums the responses' sizes (`-` counts as 0).
//!
//! A line that is not in that format fails the job with an error naming the record (its
//! `file:line`) and saying what was expected. With `skip_malformed=true` such lines are skipped
//! instead and counted in the job counter `malformed-lines`.

use mr_sdk::prelude::*;
use serde::Serialize;

/// The sessionizer.
#[derive(Default)]
pub struct AccessSessions {
    /// The `skip_malformed` parameter, read on the first record.
    skip_malformed: Option<bool>,
    /// The inactivity gap in seconds, read on the first group.
    gap_seconds: Option<i64>,
    /// The value being emitted, reused for every record.
    buf: Vec<u8>,
}

impl Job for AccessSessions {
    const INFO: JobInfo = JobInfo::new("access-sessions", "0.1.0")
        .description(
            "Groups access-log hits (Common/Combined Log Format) per client IP into sessions and \
             writes one JSON object per session: ip, day, start, end, hits, pages, bytes.",
        )
        .params(&[
            Param::with_default(
                "gap_minutes",
                "inactivity (minutes) after which an IP's next hit starts a new session",
                "30",
            )
            .integer(),
            Param::with_default(
                "skip_malformed",
                "skip lines that are not access-log lines (counted in `malformed-lines`) instead of failing",
                "false",
            )
            .bool(),
        ]);
}

/// One parsed log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit<'a> {
    /// The client address (the line's first field).
    pub ip: &'a str,
    /// Seconds since 1970-01-01T00:00:00Z.
    pub time: i64,
    /// The request target up to its `?`.
    pub path: &'a str,
    /// The response's size (`-` is 0).
    pub bytes: u64,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Parses a Common or Combined Log Format line; the error says which part is missing or wrong.
pub fn parse_line(line: &str) -> std::result::Result<Hit<'_>, String> {
    let (ip, rest) = line
        .split_once(' ')
        .ok_or("expected `IP IDENT USER [TIME] \"REQUEST\" STATUS BYTES`")?;
    if ip.is_empty() {
        return Err("the line starts with a space instead of the client IP".into());
    }
    let open = rest.find('[').ok_or("no `[` opening the time")?;
    let close = rest[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or("no `]` closing the time")?;
    let time = parse_time(&rest[open + 1..close])?;
    let rest = rest[close + 1..]
        .strip_prefix(" \"")
        .ok_or("expected ` \"REQUEST\"` after the time")?;
    let end = rest.find('"').ok_or("no `\"` closing the request")?;
    let request = &rest[..end];
    let mut words = request.split(' ');
    let (Some(_method), Some(target)) = (words.next(), words.next()) else {
        return Err(format!(
            "the request {request:?} is not `METHOD TARGET PROTOCOL`"
        ));
    };
    let path = target.split('?').next().unwrap_or(target);
    let mut fields = rest[end + 1..].split_ascii_whitespace();
    let status = fields.next().ok_or("no status after the request")?;
    if status.len() != 3 || !status.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the status {status:?} is not a three-digit code"));
    }
    let size = fields.next().ok_or("no byte count after the status")?;
    let bytes = match size {
        "-" => 0,
        _ => size
            .parse()
            .map_err(|_| format!("the byte count {size:?} is not a number or `-`"))?,
    };
    Ok(Hit {
        ip,
        time,
        path,
        bytes,
    })
}

/// Parses `10/Oct/2026:13:55:36 +0000` into seconds since the epoch (UTC).
pub fn parse_time(text: &str) -> std::result::Result<i64, String> {
    let bad = || format!("the time {text:?} is not `DD/Mon/YYYY:HH:MM:SS +ZZZZ`");
    let b = text.as_bytes();
    if !text.is_ascii()
        || b.len() != 26
        || b[2] != b'/'
        || b[6] != b'/'
        || b[11] != b':'
        || b[20] != b' '
    {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> std::result::Result<i64, String> {
        let digits = &text[range];
        if digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(digits.parse().unwrap_or_default())
        } else {
            Err(bad())
        }
    };
    let day = num(0..2)?;
    let month = MONTHS
        .iter()
        .position(|m| *m == &text[3..6])
        .ok_or_else(bad)? as i64
        + 1;
    let year = num(7..11)?;
    if b[14] != b':' || b[17] != b':' {
        return Err(bad());
    }
    let (h, m, s) = (num(12..14)?, num(15..17)?, num(18..20)?);
    let sign = match b[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return Err(bad()),
    };
    let offset = sign * (num(22..24)? * 3600 + num(24..26)? * 60);
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day) || h > 23 || m > 59 || s > 60 {
        return Err(format!("the time {text:?} is not a valid date and time"));
    }
    Ok(days * 86400 + h * 3600 + m * 60 + s - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The date `(year, month, day)` of a day number from [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if month <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        month,
        day,
    )
}

/// `YYYY-MM-DD` of a time.
pub fn day_of(time: i64) -> String {
    let (y, m, d) = civil_from_days(time.div_euclid(86400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a time.
pub fn iso8601(time: i64) -> String {
    let s = time.rem_euclid(86400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        day_of(time),
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// One session, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session<'a> {
    pub ip: &'a str,
    pub day: String,
    pub start: String,
    pub end: String,
    pub hits: u64,
    pub pages: Vec<&'a str>,
    pub bytes: u64,
}

/// Splits one IP's hits `(time, bytes, path)`, in input order, into sessions: sorted by time
/// (stable, so equal times keep input order), a new session after a gap over `gap_seconds`.
pub fn sessionize<'a>(
    ip: &'a str,
    hits: &'a mut [(i64, u64, String)],
    gap_seconds: i64,
) -> Vec<Session<'a>> {
    hits.sort_by_key(|h| h.0);
    let mut sessions: Vec<(i64, i64, Session<'a>)> = Vec::new();
    for (time, bytes, path) in hits.iter() {
        match sessions.last_mut() {
            Some((_, last, s)) if *time - *last <= gap_seconds => {
                *last = *time;
                s.hits += 1;
                s.bytes += bytes;
                s.pages.push(path);
            }
            _ => sessions.push((
                *time,
                *time,
                Session {
                    ip,
                    day: String::new(),
                    start: String::new(),
                    end: String::new(),
                    hits: 1,
                    pages: vec![path],
                    bytes: *bytes,
                },
            )),
        }
    }
    sessions
        .into_iter()
        .map(|(start, end, mut s)| {
            s.day = day_of(start);
            s.start = iso8601(start);
            s.end = iso8601(end);
            s
        })
        .collect()
}

impl Mapper for AccessSessions {
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
        let skip = *self
            .skip_malformed
            .get_or_insert_with(|| param("skip_malformed").as_deref() == Some("true"));
        let line = record.text()?;
        let hit = match parse_line(line) {
            Ok(hit) => hit,
            Err(_) if skip => {
                counter("malformed-lines", 1);
                return Ok(());
            }
            Err(why) => bail!(
                "record {}: not an access-log line (Common or Combined Log Format): {why}: {line:?} \
                 (--param skip_malformed=true skips such lines)",
                record.location()
            ),
        };
        self.buf.clear();
        self.buf.extend_from_slice(hit.time.to_string().as_bytes());
        self.buf.push(b'\t');
        mr_sdk::push_u64(&mut self.buf, hit.bytes);
        self.buf.push(b'\t');
        self.buf.extend_from_slice(hit.path.as_bytes());
        out.emit(hit.ip, &self.buf);
        Ok(())
    }
}

impl Reducer for AccessSessions {
    fn reduce(&mut self, key: &[u8], values: &mut Values<'_>, out: &mut Emitter) -> Result {
        let gap = match self.gap_seconds {
            Some(gap) => gap,
            None => {
                let text = param("gap_minutes").unwrap_or_else(|| "30".into());
                let minutes: i64 = text.parse()?;
                ensure!(
                    (0..=1_000_000).contains(&minutes),
                    "gap_minutes must be between 0 and 1000000, not {minutes}"
                );
                *self.gap_seconds.insert(minutes * 60)
            }
        };
        let ip = std::str::from_utf8(key)?;
        let mut hits = Vec::new();
        while let Some(value) = values.next() {
            hits.push(parse_value(value).ok_or_else(|| {
                Error::new(format!(
                    "key {ip:?}: malformed intermediate value {:?} (expected `time<TAB>bytes<TAB>path`)",
                    String::from_utf8_lossy(value)
                ))
            })?);
        }
        for session in sessionize(ip, &mut hits, gap) {
            out.emit(key, serde_json::to_vec(&session)?);
        }
        Ok(())
    }
}

mr_sdk::export_job!(AccessSessions: map, reduce);

/// Parses map's `time<TAB>bytes<TAB>path`.
fn parse_value(value: &[u8]) -> Option<(i64, u64, String)> {
    let text = std::str::from_utf8(value).ok()?;
    let mut fields = text.splitn(3, '\t');
    let time = fields.next()?.parse().ok()?;
    let bytes = fields.next()?.parse().ok()?;
    Some((time, bytes, fields.next()?.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mr_sdk::testing::Harness;

    #[test]
    fn parses_common_and_combined_lines() {
        let combined = r#"203.0.113.9 - - [10/Oct/2026:13:55:36 +0000] "GET /index.html?x=1 HTTP/1.1" 200 2326 "-" "Mozilla/5.0""#;
        assert_eq!(
            parse_line(combined).unwrap(),
            Hit {
                ip: "203.0.113.9",
                time: 1791640536,
                path: "/index.html",
                bytes: 2326
            }
        );
        let common =
            r#"2001:db8::1 - frank [10/Oct/2026:15:55:36 +0200] "POST /login HTTP/1.0" 302 -"#;
        let hit = parse_line(common).unwrap();
        assert_eq!(
            (hit.ip, hit.time, hit.path, hit.bytes),
            ("2001:db8::1", 1791640536, "/login", 0)
        );
    }

    #[test]
    fn times_round_trip_and_bad_dates_are_refused() {
        assert_eq!(parse_time("01/Jan/1970:00:00:00 +0000"), Ok(0));
        assert_eq!(iso8601(1791640536), "2026-10-10T13:55:36Z");
        assert_eq!(
            parse_time("01/Mar/2028:00:00:00 +0000")
                .map(day_of)
                .unwrap(),
            "2028-03-01"
        );
        assert_eq!(
            parse_time("29/Feb/2028:23:59:59 -0100")
                .map(iso8601)
                .unwrap(),
            "2028-03-01T00:59:59Z"
        );
        for bad in [
            "29/Feb/2026:00:00:00 +0000",
            "10/Okt/2026:13:55:36 +0000",
            "10/Oct/2026:13:55:36",
            "10/Oct/2026:24:00:00 +0000",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_lines_name_the_record_or_are_counted() {
        let good = r#"192.0.2.1 - - [10/Oct/2026:13:55:36 +0000] "GET / HTTP/1.1" 200 10"#;
        for (line, why) in [
            ("garbage", "expected `IP IDENT USER"),
            (
                r#"192.0.2.1 - - [10/Oct/2026:13:55:36 +0000] "-" 400 0"#,
                "is not `METHOD TARGET PROTOCOL`",
            ),
            (
                r#"192.0.2.1 - - [10/Oct/2026:13:55:36 +0000] "GET / HTTP/1.1" 200 lots"#,
                "byte count \"lots\"",
            ),
            (
                r#"192.0.2.1 - - [10/Oct/2026] "GET / HTTP/1.1" 200 1"#,
                "is not `DD/Mon/YYYY",
            ),
        ] {
            let failure = Harness::new()
                .run_mapreduce::<AccessSessions>(&[good, line])
                .unwrap_err();
            assert_eq!(failure.record_index, Some(1), "{line}");
            assert!(failure.message.contains("input:2"), "{}", failure.message);
            assert!(failure.message.contains(why), "{}", failure.message);
        }
        let out = Harness::new()
            .param("skip_malformed", "true")
            .run_mapreduce::<AccessSessions>(&[good, "garbage", "x y"])
            .unwrap();
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.counters["malformed-lines"], 2);
    }

    #[test]
    fn sessions_split_after_the_gap_and_keep_input_order_for_equal_times() {
        let lines = [
            r#"192.0.2.1 - - [10/Oct/2026:23:50:00 +0000] "GET /b HTTP/1.1" 200 5"#,
            r#"192.0.2.1 - - [10/Oct/2026:23:40:00 +0000] "GET /a HTTP/1.1" 200 1"#,
            r#"192.0.2.1 - - [10/Oct/2026:23:50:00 +0000] "GET /c HTTP/1.1" 200 -"#,
            r#"192.0.2.1 - - [11/Oct/2026:00:20:00 +0000] "GET /d HTTP/1.1" 200 2"#,
            r#"192.0.2.1 - - [11/Oct/2026:00:50:01 +0000] "GET /e HTTP/1.1" 200 3"#,
            r#"198.51.100.7 - - [11/Oct/2026:08:00:00 +0000] "GET /a HTTP/1.1" 404 7"#,
        ];
        let out = Harness::new()
            .run_mapreduce::<AccessSessions>(&lines)
            .unwrap();
        assert_eq!(
            out.lines(),
            [
                r#"192.0.2.1	{"ip":"192.0.2.1","day":"2026-10-10","start":"2026-10-10T23:40:00Z","end":"2026-10-11T00:20:00Z","hits":4,"pages":["/a","/b","/c","/d"],"bytes":8}"#,
                r#"192.0.2.1	{"ip":"192.0.2.1","day":"2026-10-11","start":"2026-10-11T00:50:01Z","end":"2026-10-11T00:50:01Z","hits":1,"pages":["/e"],"bytes":3}"#,
                r#"198.51.100.7	{"ip":"198.51.100.7","day":"2026-10-11","start":"2026-10-11T08:00:00Z","end":"2026-10-11T08:00:00Z","hits":1,"pages":["/a"],"bytes":7}"#,
            ]
        );
        // A longer gap joins the last two hits of 192.0.2.1.
        let out = Harness::new()
            .param("gap_minutes", "31")
            .run_mapreduce::<AccessSessions>(&lines)
            .unwrap();
        assert_eq!(out.records.len(), 2);
    }
}
