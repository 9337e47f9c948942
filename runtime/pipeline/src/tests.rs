use super::*;

fn parse(text: &str) -> Result<PipelineFile, String> {
    PipelineFile::parse_text(Path::new("/p/pipe.toml"), text).map_err(|e| e.to_string())
}

const THREE: &str = r#"
[stages.sessions]
job = "jobs/sessions"
input = ["logs/*.log"]
reducers = 2

[stages.daily]
job = "daily.wasm"
input = "stage:sessions"
params = { min = 3, tz = "UTC" }

[stages.pages]
job = "pages.wasm"
input = ["stage:sessions", "extra.txt"]
verify = "sha256"
batch-size = "64K"
"#;

#[test]
fn a_pipeline_file_reads_with_its_settings_and_the_file_stem_as_name() {
    let file = parse(THREE).unwrap();
    assert_eq!(file.name, "pipe");
    let names: Vec<&str> = file.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["sessions", "daily", "pages"]);
    let daily = &file.stages[1];
    assert_eq!(daily.line, 7);
    assert_eq!(daily.inputs, ["stage:sessions"]);
    assert_eq!(daily.params["min"], "3");
    let pages = &file.stages[2];
    assert!(pages.verify_sha256);
    let spec = pages.submit_spec(Vec::new()).unwrap();
    assert_eq!(spec.batch_size, Some(64 << 10));
    assert_eq!(
        file.job_paths()[0],
        ("sessions".to_owned(), PathBuf::from("/p/jobs/sessions"))
    );
    let named = parse(&format!("name = \"weblogs\"\n{THREE}")).unwrap();
    assert_eq!(named.name, "weblogs");
}

#[test]
fn defaults_apply_to_every_stage_and_a_stage_overrides_them() {
    let file = parse(
        "[defaults]\nreducers = 3\nshards = 2\n[stages.a]\njob = \"a.wasm\"\ninput = \"x\"\nreducers = 1\n",
    )
    .unwrap();
    let spec = file.stages[0].submit_spec(Vec::new()).unwrap();
    assert_eq!((spec.reducers, spec.shards), (Some(1), Some(2)));
}

#[test]
fn every_mistake_names_the_file_line_and_stage() {
    let e = parse(&THREE.replace("input = \"stage:sessions\"", "input = \"stage:session\""))
        .unwrap_err();
    assert_eq!(
        e,
        "/p/pipe.toml:9: stage daily: input stage:session names no stage of this pipeline (its stages: sessions, daily, pages)"
    );
    let cycle = "[stages.a]\njob = \"a.wasm\"\ninput = [\"stage:b\"]\n\n[stages.b]\njob = \"b.wasm\"\ninput = [\"stage:a\"]\n";
    assert_eq!(
        parse(cycle).unwrap_err(),
        "/p/pipe.toml:7: stage b: the stages form a cycle: b -> a -> b (a stage cannot read, even indirectly, its own output)"
    );
    let own = "[stages.a]\njob = \"a.wasm\"\ninput = [\"x\", \"stage:a\"]\n";
    assert_eq!(
        parse(own).unwrap_err(),
        "/p/pipe.toml:3: stage a: it reads its own output (stage:a)"
    );
    let e = parse("[stages.a]\njob = \"a.wasm\"\ninput = \"x\"\nreducer = 2\n").unwrap_err();
    assert!(
        e.starts_with("/p/pipe.toml:1: stage a: unknown field `reducer`"),
        "{e}"
    );
    let e = parse("[stages.a]\njob = \"a.wasm\"\n").unwrap_err();
    assert!(
        e.starts_with("/p/pipe.toml:1: stage a: it has no `input`"),
        "{e}"
    );
    let e = parse("[stages.a]\njob = \"a.wasm\"\ninput = \"x\"\nverify = \"md5\"\n").unwrap_err();
    assert!(
        e.starts_with("/p/pipe.toml:4: stage a: verify = \"md5\""),
        "{e}"
    );
    let e = parse("[stages.a]\njob = \"a.wasm\"\ninput = \"x\"\noutput = \"o\"\n").unwrap_err();
    assert!(e.contains("`output` is set by the pipeline"), "{e}");
    let e = parse("[stages.a]\njob = \"a.wasm\"\ninput = \"x\"\nreducers = 0\n").unwrap_err();
    assert!(e.ends_with("--reducers must be at least 1"), "{e}");
    let e = parse("[stages.a]\njob = 3\ninput = \"x\"\n").unwrap_err();
    assert!(e.contains("line 2"), "{e}");
    let e = parse("[stages._a]\njob = \"a.wasm\"\ninput = \"x\"\n").unwrap_err();
    assert!(e.starts_with("/p/pipe.toml:1: stage _a: stage name"), "{e}");
    let e = parse("name = \"x\"\n").unwrap_err();
    assert!(e.contains("the pipeline has no stages"), "{e}");
    let e = parse("[stage.a]\njob = \"a.wasm\"\n").unwrap_err();
    assert!(e.contains("unknown field `stage`"), "{e}");
}

#[test]
fn relative_inputs_start_at_the_pipeline_file_and_prefixes_are_kept() {
    let base = Path::new("/p");
    assert_eq!(rebase(base, "logs/*.log"), "/p/logs/*.log");
    assert_eq!(rebase(base, "/abs/x.txt"), "/abs/x.txt");
    assert_eq!(rebase(base, "jsonl:d/x"), "jsonl:/p/d/x");
    assert_eq!(
        rebase(base, "sqlite:db.sqlite?table=t"),
        "sqlite:/p/db.sqlite?table=t"
    );
    assert_eq!(rebase(base, "random:count=5"), "random:count=5");
    assert_eq!(rebase(base, "s3://bucket/x"), "s3://bucket/x");
}

#[test]
fn the_graph_shows_inputs_fan_out_and_states() {
    let file = parse(THREE).unwrap();
    let shape = file.shape().check_and_order().unwrap();
    let labels: Labels = [("daily".to_owned(), "running".to_owned())].into();
    assert_eq!(
        text(&shape, &labels),
        "pipeline pipe (3 stages)
  sessions  <- logs/*.log  -> daily, pages
  daily     <- stage:sessions  [running]
  pages     <- stage:sessions, extra.txt
"
    );
    let d = dot(&shape, &labels);
    assert!(d.starts_with("digraph \"pipe\" {\n  rankdir=LR;\n"), "{d}");
    assert!(
        d.contains("  \"stage:daily\" [label=\"daily\\nrunning\"];\n"),
        "{d}"
    );
    assert!(
        d.contains("  \"input:logs/*.log\" [shape=note, label=\"logs/*.log\"];\n"),
        "{d}"
    );
    assert!(
        d.contains("  \"stage:sessions\" -> \"stage:pages\";\n"),
        "{d}"
    );
    assert!(
        d.contains("  \"input:extra.txt\" -> \"stage:pages\";\n"),
        "{d}"
    );
    assert!(d.ends_with("}\n"));
}
