//! Group-by: input lines `key,value` (value a decimal `u64`), output one line per distinct key,
//! `key<TAB>count<TAB>sum`: how many lines had that key and the sum of their values.
//!
//! The line is split at its last comma, so a key may itself contain commas. A line without a
//! comma, or whose value is not a decimal `u64`, fails the job with an error naming the record.
//!
//! Map, combine and reduce all see one value format, `count,sum` in decimal: map emits `1,v`
//! (the value's own digits, copied), the combiner folds any number of those into one, and reduce
//! folds the rest and writes `count<TAB>sum`. No step allocates per record: values are parsed
//! with `mr_sdk::parse_u64` and formatted with `mr_sdk::push_u64` into a buffer the job keeps.
use mr_sdk::prelude::*;

#[derive(Default)]
pub struct GroupBy {
    /// The value being emitted, reused for every record and group.
    buf: Vec<u8>,
}

impl Job for GroupBy {
    const INFO: JobInfo = JobInfo::new("groupby", "0.1.0")
        .description("Per-key count and sum of `key,value` lines (value a decimal u64).");
}

impl Mapper for GroupBy {
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
        let line = record.value;
        let Some(comma) = line.iter().rposition(|&b| b == b',') else {
            return Err(bad_record(&record, "no comma"));
        };
        let (key, value) = (&line[..comma], &line[comma + 1..]);
        if parse_u64(value).is_none() {
            return Err(bad_record(&record, "the value is not a decimal u64"));
        }
        self.buf.clear();
        self.buf.extend_from_slice(b"1,");
        self.buf.extend_from_slice(value);
        out.emit(key, &self.buf);
        Ok(())
    }
}

impl Combiner for GroupBy {
    fn combine(
        &mut self,
        key: &[u8],
        values: &mut Values<'_>,
        out: &mut ValueEmitter<'_>,
    ) -> Result {
        let (count, sum) = fold(key, values)?;
        self.buf.clear();
        mr_sdk::push_u64(&mut self.buf, count);
        self.buf.push(b',');
        mr_sdk::push_u64(&mut self.buf, sum);
        out.emit(&self.buf);
        Ok(())
    }
}

impl Reducer for GroupBy {
    fn reduce(&mut self, key: &[u8], values: &mut Values<'_>, out: &mut Emitter) -> Result {
        let (count, sum) = fold(key, values)?;
        self.buf.clear();
        mr_sdk::push_u64(&mut self.buf, count);
        self.buf.push(b'\t');
        mr_sdk::push_u64(&mut self.buf, sum);
        out.emit(key, &self.buf);
        Ok(())
    }
}

mr_sdk::export_job!(GroupBy: map, combine, reduce);

fn bad_record(record: &Record<'_>, why: &str) -> Error {
    Error::new(format!(
        "record {}: expected a `key,value` line with a decimal u64 value ({why}), found {:?}",
        record.location(),
        String::from_utf8_lossy(record.value)
    ))
}

/// Sums the `count,sum` values of one group.
fn fold(key: &[u8], values: &mut Values<'_>) -> Result<(u64, u64)> {
    let (mut count, mut sum) = (0u64, 0u64);
    while let Some(value) = values.next() {
        let (c, s) = parse_pair(value).ok_or_else(|| {
            Error::new(format!(
                "key {:?}: malformed intermediate value {:?} (expected `count,sum`)",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(value)
            ))
        })?;
        count = count.checked_add(c).ok_or_else(|| overflow(key, "count"))?;
        sum = sum.checked_add(s).ok_or_else(|| overflow(key, "sum"))?;
    }
    Ok((count, sum))
}

fn overflow(key: &[u8], what: &str) -> Error {
    Error::new(format!(
        "key {:?}: the {what} overflows u64",
        String::from_utf8_lossy(key)
    ))
}

/// Parses `count,sum`.
fn parse_pair(value: &[u8]) -> Option<(u64, u64)> {
    let comma = value.iter().position(|&b| b == b',')?;
    Some((parse_u64(&value[..comma])?, parse_u64(&value[comma + 1..])?))
}

/// Parses a decimal `u64` (the SDK's parser: a fast path for short digit strings).
#[inline]
fn parse_u64(digits: &[u8]) -> Option<u64> {
    mr_sdk::parse_u64(digits).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mr_sdk::testing::Harness;

    const INPUT: &[&str] = &["b,5", "a,1", "b,7", "a,0", "c,18446744073709551615", "a,2"];
    const EXPECTED: &[&str] = &["a\t3\t3", "b\t2\t12", "c\t1\t18446744073709551615"];

    #[test]
    fn counts_and_sums_per_key() {
        let out = Harness::new().run_mapreduce::<GroupBy>(INPUT).unwrap();
        assert_eq!(out.lines(), EXPECTED);
    }

    #[test]
    fn the_combiner_gives_the_same_result() {
        let out = Harness::new()
            .run_mapreduce_combined::<GroupBy>(INPUT)
            .unwrap();
        assert_eq!(out.lines(), EXPECTED);
    }

    #[test]
    fn keys_may_hold_commas_and_be_empty() {
        let out = Harness::new()
            .run_mapreduce_combined::<GroupBy>(&["x,y,3", ",4", "x,y,007"])
            .unwrap();
        // An empty key is written as the value alone, as mr-host's text writer does.
        assert_eq!(out.lines(), ["1\t4", "x,y\t2\t10"]);
    }

    #[test]
    fn bad_lines_name_the_record() {
        for (line, why) in [
            ("no comma here", "no comma"),
            ("k,12x", "not a decimal u64"),
            ("k,", "not a decimal u64"),
            ("k,-1", "not a decimal u64"),
            ("k,18446744073709551616", "not a decimal u64"),
        ] {
            let failure = Harness::new()
                .run_mapreduce::<GroupBy>(&["ok,1", line])
                .unwrap_err();
            assert_eq!(failure.record_index, Some(1), "{line}");
            assert!(failure.message.contains("input:2"), "{}", failure.message);
            assert!(failure.message.contains(why), "{}", failure.message);
            assert!(failure.message.contains(line), "{}", failure.message);
        }
    }

    #[test]
    fn sums_that_overflow_are_errors() {
        let failure = Harness::new()
            .run_mapreduce::<GroupBy>(&["k,18446744073709551615", "k,1"])
            .unwrap_err();
        assert!(failure.message.contains("overflows"), "{}", failure.message);
    }

    #[test]
    fn parses_count_sum_pairs() {
        assert_eq!(parse_pair(b"3,12"), Some((3, 12)));
        assert_eq!(parse_pair(b"1,18446744073709551615"), Some((1, u64::MAX)));
        assert_eq!(parse_pair(b"3"), None);
        assert_eq!(parse_pair(b"3,"), None);
    }
}
