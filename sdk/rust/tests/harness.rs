//! The native harness runs job logic without wasm, with counters, params and errors.
use mr_sdk::prelude::*;
use mr_sdk::testing::Harness;

#[derive(Default)]
struct Lengths;

impl Job for Lengths {
    const INFO: JobInfo = JobInfo::new("lengths", "0.1.0").params(&[Param::with_default(
        "min",
        "shortest line kept",
        "0",
    )]);
}

impl Mapper for Lengths {
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
        let min: usize = param("min").unwrap_or_default().parse().unwrap_or(0);
        if record.value == b"bad" {
            mr_sdk::bail!("bad record at {}", record.location());
        }
        if record.value.len() >= min {
            counter("kept", 1);
            out.emit(record.value.len().to_string(), record.key);
        }
        Ok(())
    }
}

impl Reducer for Lengths {
    fn reduce(&mut self, key: &[u8], values: &mut Values<'_>, out: &mut Emitter) -> Result {
        let mut locations = Vec::new();
        values.for_each(|v| locations.push(String::from_utf8_lossy(v).into_owned()));
        out.emit(key, locations.join(","));
        Ok(())
    }
}

#[test]
fn groups_in_key_order_with_values_in_input_order() {
    let out = Harness::new()
        .param("min", "2")
        .run_mapreduce::<Lengths>(&["abc", "x", "def", "gh"])
        .unwrap();
    assert_eq!(out.lines(), ["2\tinput:4", "3\tinput:1,input:3"]);
    assert_eq!(out.counters.get("kept"), Some(&3));
}

#[test]
fn errors_carry_the_record_index_and_message() {
    let err = Harness::new()
        .run_map::<Lengths>(&["ok", "bad"])
        .unwrap_err();
    assert_eq!(err.record_index, Some(1));
    assert_eq!(err.message, "bad record at input:2");
}

/// Bumps one counter per distinct word: a job that counts something per key.
#[derive(Default)]
struct CountEachWord;

impl Job for CountEachWord {
    const INFO: JobInfo = JobInfo::new("count-each-word", "0.1.0");
}

impl Mapper for CountEachWord {
    fn map(&mut self, record: Record<'_>, _out: &mut Emitter) -> Result {
        for word in record.text()?.split(' ') {
            counter(word, 1);
        }
        Ok(())
    }
}

#[test]
fn many_distinct_counters_in_one_call_stay_fast() {
    // 200,000 distinct names in one map call: a linear lookup per increment would take
    // 2*10^10 comparisons (minutes); a map takes well under a second.
    let line: Vec<String> = (0..200_000).map(|i| format!("c{i}")).collect();
    let line = line.join(" ");
    let started = std::time::Instant::now();
    let out = Harness::new()
        .run_map::<CountEachWord>(&[&line, "c7 c7"])
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(out.counters.len(), 200_000);
    assert_eq!(out.counters["c7"], 3);
    assert_eq!(out.counters["c199999"], 1);
    assert!(elapsed.as_secs() < 10, "took {elapsed:?}");
}
