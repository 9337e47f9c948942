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
            out.emit(record.value.len().to_string(), record.location().as_bytes());
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

/// Counts values; fails on the line `bad`, naming where it is.
#[derive(Default)]
struct Picky;

impl Job for Picky {
    const INFO: JobInfo = JobInfo::new("picky", "0.1.0");
}

impl Mapper for Picky {
    fn map(&mut self, record: Record<'_>, out: &mut Emitter) -> Result {
        if record.value == b"bad" {
            bail!("bad record at {}", record.location());
        }
        out.emit(record.value, "1");
        Ok(())
    }
}

impl Combiner for Picky {
    fn combine(
        &mut self,
        _key: &[u8],
        values: &mut Values<'_>,
        out: &mut ValueEmitter<'_>,
    ) -> Result {
        out.emit_u64(values.sum_u64()?);
        Ok(())
    }
}

impl Reducer for Picky {
    fn reduce(&mut self, key: &[u8], values: &mut Values<'_>, out: &mut Emitter) -> Result {
        out.emit_u64(key, values.sum_u64()?);
        Ok(())
    }
}

mr_sdk::export_job!(Picky: map, combine, reduce);

#[test]
fn a_combined_run_names_the_line_that_failed() {
    // The host names the failing record by its key; the harness by its index among the lines
    // given (and the same key the host would show for them, `input:N`).
    let err = Harness::new()
        .run_mapreduce_combined::<Picky>(&["a", "b", "bad", "c"])
        .unwrap_err();
    assert_eq!(err.record_index, Some(2));
    assert_eq!(err.record.as_deref(), Some("input:3"));
    assert_eq!(err.message, "bad record at input:3");
    let out = Harness::new()
        .run_mapreduce_combined::<Picky>(&["a", "b", "a"])
        .unwrap();
    assert_eq!(out.lines(), ["a\t2", "b\t1"]);
}

/// Emits the value of its parameters, as the job sees them.
#[derive(Default)]
struct ShowParams;

impl Job for ShowParams {
    const INFO: JobInfo = JobInfo::new("show-params", "0.1.0").params(&[
        Param::with_default("sep", "separator", ","),
        Param::optional("extra", "anything"),
    ]);
}

impl Mapper for ShowParams {
    fn map(&mut self, _record: Record<'_>, out: &mut Emitter) -> Result {
        out.emit(
            param("sep").unwrap_or_else(|| "<unset>".into()),
            param("extra").unwrap_or_else(|| "<unset>".into()),
        );
        Ok(())
    }
}

#[test]
fn parameters_are_checked_and_defaulted_as_the_host_does() {
    let out = Harness::new().run_map::<ShowParams>(&["x"]).unwrap();
    assert_eq!(out.lines(), [",\t<unset>"]);
    let out = Harness::new()
        .param("sep", ";")
        .param("extra", "e")
        .run_map::<ShowParams>(&["x"])
        .unwrap();
    assert_eq!(out.lines(), [";\te"]);
    let err = Harness::new()
        .param("nope", "1")
        .run_map::<ShowParams>(&["x"])
        .unwrap_err();
    assert_eq!(
        err.message,
        "job `show-params` has no parameter `nope`; it declares: sep, extra"
    );
}

/// Declares typed parameters; map emits them.
#[derive(Default)]
struct Typed;

impl Job for Typed {
    const INFO: JobInfo = JobInfo::new("typed", "0.1.0").params(&[
        Param::with_default("top", "how many", "10").integer(),
        Param::optional("ratio", "a fraction").float(),
        Param::optional("strict", "fail early").bool(),
        Param::with_default("mode", "how", "fast").one_of(&["fast", "exact"]),
    ]);
}

impl Mapper for Typed {
    fn map(&mut self, _record: Record<'_>, out: &mut Emitter) -> Result {
        for name in ["top", "ratio", "strict", "mode"] {
            out.emit(name, param(name).unwrap_or_else(|| "<unset>".into()));
        }
        Ok(())
    }
}

#[test]
fn typed_parameters_are_checked_as_the_host_does() {
    let out = Harness::new()
        .param("top", "-3")
        .param("ratio", "1e-3")
        .param("strict", "true")
        .run_map::<Typed>(&["x"])
        .unwrap();
    assert_eq!(
        out.lines(),
        ["top\t-3", "ratio\t1e-3", "strict\ttrue", "mode\tfast"]
    );
    for (name, value, expected) in [
        (
            "top",
            "three",
            "must be an integer (e.g. 42 or -7), not \"three\"",
        ),
        (
            "top",
            "1.0",
            "must be an integer (e.g. 42 or -7), not \"1.0\"",
        ),
        ("top", "99999999999999999999", "must be an integer"),
        (
            "ratio",
            "NaN",
            "must be a number (e.g. 0.25, 3 or 1e-3), not \"NaN\"",
        ),
        ("ratio", "1e999", "must be a number"),
        ("strict", "yes", "must be true or false, not \"yes\""),
        ("mode", "slow", "must be one of fast, exact, not \"slow\""),
    ] {
        let err = Harness::new()
            .param(name, value)
            .run_map::<Typed>(&["x"])
            .unwrap_err();
        assert!(
            err.message
                .starts_with(&format!("parameter `{name}` of job `typed` {expected}")),
            "{name}={value}: {}",
            err.message
        );
    }
}

#[test]
fn files_run_as_the_component_runs_and_failures_name_path_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.txt");
    std::fs::write(&a, "x\r\ny\nx").unwrap();
    let b = dir.path().join("b.txt");
    // Over 1 MiB: several map batches, each combined in the map and again after it.
    let big: String = (0..40_000).map(|i| format!("key{}\n", i % 3)).collect();
    std::fs::write(&b, &big).unwrap();
    let out = Harness::new().run_files::<Picky>(&[&a, &b]).unwrap();
    assert_eq!(
        out.lines(),
        ["key0\t13334", "key1\t13333", "key2\t13333", "x\t2", "y\t1"]
    );

    let mut lines: Vec<String> = (0..300_000).map(|i| format!("line {i}")).collect();
    lines[250_000] = "bad".into();
    std::fs::write(&b, lines.join("\n")).unwrap();
    let err = Harness::new().run_files::<Picky>(&[&a, &b]).unwrap_err();
    let at = format!("{}:250001", b.display());
    assert_eq!(err.record.as_deref(), Some(at.as_str()));
    assert_eq!(err.record_index, Some(3 + 250_000));
    assert_eq!(err.message, format!("bad record at {at}"));
    assert_eq!(err.to_string(), format!("at {at}: bad record at {at}"));

    let err = Harness::new()
        .run_files::<Picky>(&[dir.path().join("missing.txt")])
        .unwrap_err();
    assert!(err.message.starts_with("cannot read "), "{}", err.message);
}
