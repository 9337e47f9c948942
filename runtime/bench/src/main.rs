//! `mr-bench`: the benchmark of issue 6, in one invocation.
//!
//! ```text
//! cargo run --release -p mr-bench -- [--size 1G] [--workers 2] [--only wordcount|groupby]
//!     [--systems mr,native,coreutils,duckdb,polars,pyspark] [--memory 256M] [--repeat N]
//! ```
//!
//! Two workloads over deterministic inputs generated into `--data` (kept between runs): word
//! count over `--size` bytes of text and a group-by (per-key count and sum) over about `--size`
//! bytes of `key,value` lines with 10M distinct keys per GiB. Each system runs the same job as a
//! child process, timed from spawn to the exit of its last process, with CPU time and peak RSS
//! from `wait4`; every output is normalised (sorted lines) and compared with native Rust's. One
//! table per workload goes to stdout and, as Markdown, to `DATA/results.md`. The exit status is
//! non-zero when any output differs or when mr or native Rust fails; a peer that cannot be
//! installed or fails is a row with its error. See docs/performance.md.
//!
//! With mr among the systems and no `--only`, it first measures the wasm boundary itself
//! (`plugins/identity` over 100-byte records, in process, against the same loop in native
//! Rust; see `boundary.rs`); `mr-bench boundary` runs only that. `mr-bench serve-load`
//! measures `mr-host serve` under status pollers and SSE subscribers (see `serve_load.rs`);
//! `mr-bench distributed` the word count on PostgreSQL + object storage against SQLite + local
//! files, and one slice commit on each store (see `distributed.rs`); `mr-bench gzip` the word
//! count over plain text, BGZF and single-member gzip (see `gzip.rs`); `mr-bench stragglers`
//! two shards of unequal cost with and without straggler splitting (see `stragglers.rs`).

mod boundary;
mod data;
mod distributed;
mod gzip;
mod measure;
mod native;
mod native_radix;
mod normalize;
mod report;
mod serve_load;
mod stragglers;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use normalize::Layout;
use report::{Check, Row, Table};

#[derive(Parser)]
#[command(about = "Word count and a 10M-key group-by under mr and its peers, timed and checked")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    bench: BenchArgs,
}

#[derive(Subcommand)]
enum Sub {
    /// The native Rust reference for one job (what the benchmark runs as its "native" system).
    #[command(hide = true)]
    Native {
        job: Workload,
        input: PathBuf,
        output: PathBuf,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// The partition-first group-by (see native_radix.rs) instead of the hash tables.
        #[arg(long)]
        radix: bool,
    },
    /// `mr-host serve` under load: status pollers and SSE subscribers while a word count runs.
    ServeLoad(serve_load::ServeLoadArgs),
    /// The word count on SQLite + local files against PostgreSQL + an S3 server, with one and
    /// three worker processes, and one slice commit's latency on each store.
    Distributed(distributed::DistributedArgs),
    /// Word count over the same text plain, as BGZF and as one gzip member (see `gzip.rs`).
    Gzip(gzip::GzipArgs),
    /// Two shards of unequal cost, with and without straggler splitting, against many small
    /// shards (see `stragglers.rs`).
    Stragglers(stragglers::StragglersArgs),
    /// Only the boundary benchmark: an identity guest over 100-byte records, one core.
    Boundary {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Input size of each workload (K/M/G = powers of 1024).
    #[arg(long, default_value = "1G", value_parser = mr_corpus::parse_size)]
    size: u64,
    /// Threads (mr workers, native threads, peers' threads, sort --parallel).
    #[arg(long, default_value_t = 2)]
    workers: u32,
    /// Where inputs, outputs, logs and results.md go (inputs are reused when present).
    #[arg(long, default_value = "target/bench-data")]
    data: PathBuf,
    /// Run only one workload.
    #[arg(long)]
    only: Option<Workload>,
    /// Systems to run, comma-separated [default: all].
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "mr,native,native-radix,coreutils,duckdb,duckdb-mem,polars,pyspark"
    )]
    systems: Vec<System>,
    /// mr's memory budget for the group-by (`mr-host run --memory`). With an mr-host that has
    /// no `--memory` flag yet, `--sort-buffer` of half this size is passed instead (and said so).
    #[arg(long, default_value = "256M")]
    memory: String,
    /// Distinct group-by keys [default: 10M per GiB of --size].
    #[arg(long)]
    keys: Option<u64>,
    /// Runs per system, in rounds of one run per system (the machine's drift then falls on
    /// every system alike); the table shows the run with the median wall time.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Seconds before a run is killed (and reported as failed).
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    /// The mr-host binary [default: build it (`cargo build -p mr-cli`, same profile as this
    /// binary) and use the one next to mr-bench].
    #[arg(long)]
    mr_host: Option<PathBuf>,
    /// An extra argument for every `mr-host run`; repeatable (e.g. `--mr-arg=--batch-size=1M`).
    #[arg(long, allow_hyphen_values = true)]
    mr_arg: Vec<String>,
    /// The peers' virtualenv [default: REPO/target/bench-venv, created by
    /// bench/setup-peers.sh when missing].
    #[arg(long)]
    venv: Option<PathBuf>,
    /// Test hook: append a line to this system's output before the check.
    #[arg(long, hide = true)]
    tamper: Option<System>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum Workload {
    Wordcount,
    Groupby,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Wordcount => "wordcount",
            Workload::Groupby => "groupby",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum System {
    Mr,
    Native,
    /// The partition-first native group-by (group-by only).
    NativeRadix,
    Coreutils,
    Duckdb,
    /// DuckDB with mr's memory budget as its `memory_limit` (group-by only).
    DuckdbMem,
    Polars,
    Pyspark,
}

impl System {
    /// Table order: the reference first.
    const ALL: [System; 8] = [
        System::Native,
        System::NativeRadix,
        System::Mr,
        System::Coreutils,
        System::Duckdb,
        System::DuckdbMem,
        System::Polars,
        System::Pyspark,
    ];

    fn name(self) -> &'static str {
        match self {
            System::Mr => "mr",
            System::Native => "native",
            System::NativeRadix => "native-radix",
            System::Coreutils => "coreutils",
            System::Duckdb => "duckdb",
            System::DuckdbMem => "duckdb-mem",
            System::Polars => "polars",
            System::Pyspark => "pyspark",
        }
    }

    fn is_python(self) -> bool {
        matches!(
            self,
            System::Duckdb | System::DuckdbMem | System::Polars | System::Pyspark
        )
    }

    /// Whether the system has a row in `workload`'s table (the memory-bounded DuckDB and the
    /// partition-first reference are group-by rows).
    fn runs(self, workload: Workload) -> bool {
        workload == Workload::Groupby || !matches!(self, System::NativeRadix | System::DuckdbMem)
    }
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Sub::Native {
            job,
            input,
            output,
            threads,
            radix,
        }) => match (job, radix) {
            (Workload::Wordcount, false) => native::wordcount(&input, &output, threads),
            (Workload::Groupby, false) => native::groupby(&input, &output, threads),
            (Workload::Groupby, true) => native_radix::groupby(&input, &output, threads),
            (Workload::Wordcount, true) => {
                Err(anyhow::anyhow!("--radix is a group-by reference only"))
            }
        }
        .map(|()| true),
        Some(Sub::Boundary { seconds }) => build_identity()
            .and_then(|c| boundary::measure(&c, Duration::from_secs_f64(seconds)))
            .map(|r| {
                println!("{}", boundary_text(&r));
                true
            }),
        Some(Sub::ServeLoad(args)) => (|| {
            let host = match &args.mr_host {
                Some(p) => p.clone(),
                None => build_mr_host()?,
            };
            let (wordcount, _) = build_plugins()?;
            serve_load::run(args, host, wordcount)
        })(),
        Some(Sub::Distributed(args)) => (|| {
            let host = match &args.mr_host {
                Some(p) => p.clone(),
                None => build_mr_host()?,
            };
            let (wordcount, _) = build_plugins()?;
            distributed::run(args, host, wordcount)
        })(),
        Some(Sub::Gzip(args)) => (|| {
            let host = match &args.mr_host {
                Some(p) => p.clone(),
                None => build_mr_host()?,
            };
            let (wordcount, _) = build_plugins()?;
            gzip::run(args, host, wordcount)
        })(),
        Some(Sub::Stragglers(args)) => (|| {
            let host = match &args.mr_host {
                Some(p) => p.clone(),
                None => build_mr_host()?,
            };
            let (wordcount, _) = build_plugins()?;
            stragglers::run(args, host, wordcount)
        })(),
        None => bench(cli.bench),
    };
    match result {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("mr-bench: {e:#}");
            std::process::exit(2);
        }
    }
}

/// The repository (for plugins/, bench/ and cargo builds).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Everything prepared before the first measurement.
struct Setup {
    args: BenchArgs,
    data: PathBuf,
    mr_host: Option<PathBuf>,
    /// The component of each workload.
    plugins: Option<(PathBuf, PathBuf)>,
    /// mr-host flags for the group-by's memory budget, and a note when they are a stand-in.
    memory_flags: (Vec<String>, Option<String>),
    /// The peers' python, or why there is none.
    python: Result<PathBuf, String>,
    /// Why PySpark cannot run, if known in advance.
    java: Option<String>,
    /// The 1-minute load average before the first run.
    load: Option<String>,
}

/// Runs the benchmark; Ok(false) when an output differs or mr or native failed.
fn bench(args: BenchArgs) -> Result<bool> {
    if args.workers == 0 || args.repeat == 0 {
        bail!("--workers and --repeat must be at least 1");
    }
    let memory = mr_corpus::parse_size(&args.memory).map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("cannot create {}", args.data.display()))?;
    let data = args.data.canonicalize()?;
    let has = |s: System| args.systems.contains(&s);
    let workloads: Vec<Workload> = match args.only {
        Some(w) => vec![w],
        None => vec![Workload::Wordcount, Workload::Groupby],
    };

    // Untimed preparation: builds, virtualenv, inputs, component cache.
    let (mr_host, plugins, memory_flags) = if has(System::Mr) {
        let host = match &args.mr_host {
            Some(p) => p.clone(),
            None => build_mr_host()?,
        };
        let plugins = build_plugins()?;
        let flags = memory_flags(&host, &args.memory, memory)?;
        warm_component_cache(&host, &data, &plugins)?;
        (Some(host), Some(plugins), flags)
    } else {
        (None, None, (Vec::new(), None))
    };
    let python = if args.systems.iter().any(|s| s.is_python()) {
        setup_peers(args.venv.clone(), &data)
    } else {
        Err("not needed".into())
    };
    let java = has(System::Pyspark)
        .then(|| {
            let ok = Command::new("java")
                .arg("-version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            (!ok).then(|| "no Java runtime (`java -version` fails); PySpark needs Java 17+".into())
        })
        .flatten();
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned));
    let keys = args.keys.unwrap_or_else(|| data::default_keys(args.size));
    let mut inputs = Vec::new();
    for &w in &workloads {
        let path = match w {
            Workload::Wordcount => data::wordcount_input(&data.join("inputs"), args.size)?,
            Workload::Groupby => data::groupby_input(&data.join("inputs"), args.size, keys)?,
        };
        inputs.push((w, path));
    }
    let setup = Setup {
        args,
        data,
        mr_host,
        plugins,
        memory_flags,
        python,
        java,
        load,
    };

    // The boundary on its own, before the workloads (in process, one core, a few seconds).
    let boundary = if setup.mr_host.is_some() && setup.args.only.is_none() {
        let r = boundary::measure(&build_identity()?, Duration::from_secs(3))?;
        println!("{}\n", boundary_text(&r));
        Some(r)
    } else {
        None
    };

    measure::become_subreaper().context("cannot become a child subreaper")?;
    let mut tables = Vec::new();
    let mut ok = true;
    for (workload, input) in &inputs {
        let (table, table_ok) = run_workload(&setup, *workload, input, keys)?;
        println!("{}", table.text());
        tables.push(table);
        ok &= table_ok;
    }

    let context = machine_context(&setup, keys);
    let mut md = format!(
        "## Benchmark results\n\n{context}\n\nCommand: `cargo run --release -p mr-bench --{}`\n\n",
        std::env::args()
            .skip(1)
            .map(|a| format!(" {a}"))
            .collect::<String>()
    );
    if let Some(r) = &boundary {
        md.push_str(&format!("### Boundary\n\n{}\n\n", boundary_text(r)));
    }
    for t in &tables {
        md.push_str(&t.markdown());
        md.push('\n');
    }
    let results = setup.data.join("results.md");
    std::fs::write(&results, md)?;
    println!("{context}");
    println!("Markdown: {}", results.display());
    Ok(ok)
}

/// Runs every selected system on one workload; returns its table and whether it passed.
fn run_workload(
    setup: &Setup,
    workload: Workload,
    input: &Path,
    keys: u64,
) -> Result<(Table, bool)> {
    let args = &setup.args;
    let input_bytes = std::fs::metadata(input)?.len();
    let out_dir = setup.data.join("out").join(workload.name());
    let logs = setup.data.join("logs");
    std::fs::create_dir_all(&out_dir)?;
    std::fs::create_dir_all(&logs)?;
    let timeout = Duration::from_secs(args.timeout);

    struct Done {
        system: System,
        label: String,
        usage: Option<measure::Usage>,
        error: Option<String>,
        output: PathBuf,
        layout: Layout,
    }
    let systems: Vec<System> = System::ALL
        .into_iter()
        .filter(|s| args.systems.contains(s) && s.runs(workload))
        .collect();
    let plans: Vec<Plan> = systems
        .iter()
        .map(|&system| plan(setup, system, workload, input, &out_dir))
        .collect();
    let log_of = |system: System| logs.join(format!("{}-{}.log", workload.name(), system.name()));
    // Rounds of one run per system, not all runs of one system in a row: this machine's speed
    // drifts by up to 40% over minutes, and two `--repeat 3` runs of the same word count build
    // gave 1.57 x and 2.00 x native when each system's runs came in a block. Interleaving spreads
    // the drift over every system alike. A system that fails is not run again.
    let mut runs: Vec<Vec<measure::Usage>> = vec![Vec::new(); plans.len()];
    let mut errors: Vec<Option<String>> = plans.iter().map(|p| p.unavailable.clone()).collect();
    for round in 0..args.repeat {
        for (i, plan) in plans.iter().enumerate() {
            if errors[i].is_some() {
                continue;
            }
            let log = log_of(systems[i]);
            warm_up(input)?;
            remove_output(&plan.output)?;
            let mut command = plan.command();
            let log_file = File::create(&log)?;
            command
                .stdin(Stdio::null())
                .stdout(log_file.try_clone()?)
                .stderr(log_file);
            measure::reap_leftovers();
            let usage = measure::run(&mut command, timeout)
                .with_context(|| format!("cannot run {}", plan.program))?;
            eprintln!(
                "mr-bench: {} {} run {}/{}: {:.2} s wall, {:.2} s CPU, {:.0} MiB",
                workload.name(),
                systems[i].name(),
                round + 1,
                args.repeat,
                usage.wall.as_secs_f64(),
                usage.cpu().as_secs_f64(),
                usage.max_rss as f64 / (1 << 20) as f64
            );
            if usage.timed_out || !usage.status.success() {
                let why = if usage.timed_out {
                    format!("killed after the {} s timeout", args.timeout)
                } else {
                    format!("exited with {}", usage.status)
                };
                errors[i] = Some(format!(
                    "{why}: {} (log: {})",
                    log_tail(&log),
                    log.display()
                ));
                continue;
            }
            runs[i].push(usage);
        }
    }
    let mut done = Vec::new();
    for (((system, plan), mut runs), error) in systems.into_iter().zip(plans).zip(runs).zip(errors)
    {
        let usage = (error.is_none()).then(|| {
            runs.sort_by_key(|u| u.wall);
            runs[(runs.len() - 1) / 2]
        });
        if error.is_none() && args.tamper == Some(system) {
            tamper(&plan.output)?;
        }
        let label = version_label(system, &log_of(system), &plan.label);
        done.push(Done {
            system,
            label,
            usage,
            error,
            output: plan.output,
            layout: plan.layout,
        });
    }

    // Output check (untimed): normalise, hash, compare with the reference.
    let mut table = Table {
        title: match workload {
            Workload::Wordcount => format!(
                "Word count, {:.0} MB of text, {} workers",
                input_bytes as f64 / 1e6,
                args.workers
            ),
            Workload::Groupby => format!(
                "Group-by, {:.0} MB of key,value lines, {} distinct keys, {} workers",
                input_bytes as f64 / 1e6,
                thousands(keys),
                args.workers
            ),
        },
        input_bytes,
        ..Default::default()
    };
    let mut ok = true;
    let mut canonical = Vec::new();
    for d in &done {
        canonical.push(match &d.error {
            Some(e) => Err(e.clone()),
            None => normalize::canonical(&d.output, d.layout)
                .map_err(|e| format!("cannot read its output: {e:#}")),
        });
    }
    let reference = canonical.iter().position(|c| c.is_ok());
    for (i, (d, c)) in done.iter().zip(&canonical).enumerate() {
        let check = match (c, reference) {
            (Err(e), _) => Check::Failed(e.clone()),
            (Ok(c), Some(r)) => {
                let reference = canonical[r].as_ref().expect("reference is Ok");
                if c == reference {
                    Check::Equal
                } else {
                    let rd = &done[r];
                    let (mut s1, mut s2) = (Vec::new(), Vec::new());
                    let a = normalize::sorted_lines(&rd.output, rd.layout, &mut s1)?;
                    let b = normalize::sorted_lines(&d.output, d.layout, &mut s2)?;
                    let diff = normalize::first_difference(&rd.label, &a, &d.label, &b)
                        .unwrap_or_else(|| "the hashes differ".into());
                    Check::Differs(diff)
                }
            }
            (Ok(_), None) => unreachable!("a successful row makes a reference"),
        };
        match &check {
            Check::Equal => {}
            Check::Differs(why) => {
                ok = false;
                table
                    .notes
                    .push(format!("{}: output DIFFERS: {why}", d.label));
            }
            Check::Failed(why) => {
                if matches!(d.system, System::Mr | System::Native | System::NativeRadix) {
                    ok = false;
                }
                table.notes.push(format!("{} failed: {why}", d.label));
            }
        }
        if d.system == System::Native && d.usage.is_some() {
            table.baseline = Some(i);
        }
        table.rows.push(Row {
            system: d.label.clone(),
            wall: d.usage.map(|u| u.wall.as_secs_f64()),
            cpu: d.usage.map(|u| u.cpu().as_secs_f64()),
            rss_mib: d.usage.map(|u| u.max_rss as f64 / (1 << 20) as f64),
            check,
        });
    }
    if let Some(r) = reference {
        let c = canonical[r].as_ref().expect("reference is Ok");
        if workload == Workload::Wordcount {
            table.title = format!(
                "Word count, {:.0} MB of text ({} distinct words), {} workers",
                input_bytes as f64 / 1e6,
                thousands(c.lines),
                args.workers
            );
        }
        table.notes.insert(
            0,
            format!(
                "output: each system's output normalised to sorted `{}` lines and compared by \
                 SHA-256 with {}'s: {} lines, SHA-256 {}",
                match workload {
                    Workload::Wordcount => "word<TAB>count",
                    Workload::Groupby => "key<TAB>count<TAB>sum",
                },
                done[r].label,
                thousands(c.lines),
                &c.sha256[..16]
            ),
        );
    }
    if workload == Workload::Groupby
        && let Some(note) = &setup.memory_flags.1
    {
        table.notes.push(note.clone());
    }
    Ok((table, ok))
}

/// How to run one system on one workload.
struct Plan {
    program: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    output: PathBuf,
    layout: Layout,
    label: String,
    /// Why the system cannot run at all.
    unavailable: Option<String>,
}

impl Plan {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        c.envs(self.envs.iter().map(|(k, v)| (k, v)));
        c
    }
}

fn plan(setup: &Setup, system: System, workload: Workload, input: &Path, out_dir: &Path) -> Plan {
    let args = &setup.args;
    let workers = args.workers.to_string();
    let s = |p: &Path| p.display().to_string();
    let mut plan = Plan {
        program: String::new(),
        args: Vec::new(),
        envs: Vec::new(),
        output: out_dir.join(system.name()),
        layout: Layout::Tsv,
        label: system.name().into(),
        unavailable: None,
    };
    match system {
        System::Mr => {
            let host = setup
                .mr_host
                .as_ref()
                .expect("mr-host is built when mr runs");
            let (wc, gb) = setup
                .plugins
                .as_ref()
                .expect("plugins are built when mr runs");
            plan.program = s(host);
            plan.args = vec![
                "run".into(),
                s(if workload == Workload::Wordcount {
                    wc
                } else {
                    gb
                }),
                "--input".into(),
                s(input),
                "--output".into(),
                s(&plan.output),
                "--overwrite".into(),
                "--workers".into(),
                workers,
            ];
            plan.label = "mr (Rust guest)".into();
            if workload == Workload::Groupby {
                plan.args.extend(setup.memory_flags.0.iter().cloned());
                plan.label = format!("mr (Rust guest, {})", setup.memory_flags.0.join(" "));
            }
            plan.args.extend(args.mr_arg.iter().cloned());
        }
        System::Native | System::NativeRadix => {
            plan.program = std::env::current_exe()
                .map(|p| s(&p))
                .unwrap_or_else(|_| "mr-bench".into());
            plan.output = out_dir.join(format!("{}.tsv", system.name()));
            plan.args = vec![
                "native".into(),
                workload.name().into(),
                s(input),
                s(&plan.output),
                "--threads".into(),
                workers,
            ];
            plan.label = format!("native Rust ({} threads)", args.workers);
            if system == System::NativeRadix {
                plan.args.push("--radix".into());
                plan.label = format!("native Rust, partition-first ({} threads)", args.workers);
            }
        }
        System::Coreutils => {
            let tmp = setup.data.join("tmp");
            let _ = std::fs::create_dir_all(&tmp);
            plan.output = out_dir.join("coreutils.txt");
            let script = match workload {
                // tr -cs leaves one empty token when the input starts with a separator; the
                // normaliser drops it (it is no word).
                Workload::Wordcount => {
                    plan.layout = Layout::UniqC;
                    plan.label = "coreutils (tr | sort | uniq -c)".into();
                    r#"set -o pipefail
tr -cs 'A-Za-z0-9' '\n' < "$1" | tr 'A-Z' 'a-z' |
  sort --parallel="$4" -S 1G -T "$3" | uniq -c > "$2""#
                }
                Workload::Groupby => {
                    plan.label = "coreutils (sort | awk)".into();
                    r#"set -o pipefail
sort -t, -k1,1 --parallel="$4" -S 1G -T "$3" "$1" |
  awk -F, '$1 != k { if (n) printf "%s\t%d\t%.0f\n", k, n, s; k = $1; n = 0; s = 0 }
           { n++; s += $NF }
           END { if (n) printf "%s\t%d\t%.0f\n", k, n, s }' > "$2""#
                }
            };
            plan.program = "bash".into();
            plan.args = vec![
                "-c".into(),
                script.into(),
                "bash".into(),
                s(input),
                s(&plan.output),
                s(&tmp),
                workers,
            ];
            plan.envs = vec![("LC_ALL".into(), "C".into())];
        }
        System::Duckdb | System::DuckdbMem | System::Polars | System::Pyspark => {
            plan.label = match system {
                System::Duckdb | System::DuckdbMem => "DuckDB",
                System::Polars => "Polars",
                _ => "PySpark local[2]",
            }
            .into();
            if system == System::Pyspark {
                plan.label = format!("PySpark local[{}]", args.workers);
            }
            match &setup.python {
                Ok(python) => {
                    plan.program = s(python);
                    plan.args = vec![
                        s(&repo_root().join("bench/peers/run.py")),
                        // run.py knows DuckDB once; the limit is its `--memory`.
                        if system == System::DuckdbMem {
                            "duckdb".into()
                        } else {
                            system.name().into()
                        },
                        workload.name().into(),
                        s(input),
                        s(&plan.output),
                        "--threads".into(),
                        workers.clone(),
                    ];
                    if system == System::DuckdbMem {
                        // mr's budget, in DuckDB's own unit spelling.
                        let bytes = mr_corpus::parse_size(&args.memory).unwrap_or(256 << 20);
                        plan.args
                            .extend(["--memory".into(), format!("{}MiB", bytes >> 20)]);
                        plan.label = format!("DuckDB (memory_limit={}MiB)", bytes >> 20);
                    }
                }
                Err(e) => plan.unavailable = Some(format!("not installed: {e}")),
            }
            if system == System::Pyspark && plan.unavailable.is_none() {
                plan.unavailable = setup.java.clone();
            }
        }
    }
    plan
}

/// The table's name for a system, with the version a peer printed (`version: DuckDB 2.0.0`).
fn version_label(system: System, log: &Path, label: &str) -> String {
    if system.is_python() {
        let version = std::fs::read_to_string(log).ok().and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("version: ").map(str::to_owned))
        });
        if let Some(v) = version {
            return match system {
                System::Pyspark => format!("{v} {}", label.trim_start_matches("PySpark ")),
                System::DuckdbMem => format!("{v} {}", label.trim_start_matches("DuckDB ")),
                _ => v,
            };
        }
    }
    if system == System::Coreutils {
        let version = Command::new("sort")
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|t| t.lines().next().map(str::to_owned))
            .and_then(|l| l.rsplit(' ').next().map(str::to_owned));
        if let Some(v) = version {
            return label.replacen("coreutils", &format!("coreutils {v}"), 1);
        }
    }
    label.to_owned()
}

/// Reads the whole input so the page cache holds it for every system alike.
fn warm_up(input: &Path) -> Result<()> {
    use std::io::Read;
    let mut file = File::open(input)?;
    let mut buf = vec![0u8; 8 << 20];
    while file.read(&mut buf)? > 0 {}
    Ok(())
}

fn remove_output(path: &Path) -> Result<()> {
    if path.is_dir() {
        std::fs::remove_dir_all(path)?;
    } else if path.exists() {
        std::fs::remove_file(path)?;
    }
    Ok(())
}

/// The test hook: one extra line in the output.
fn tamper(output: &Path) -> Result<()> {
    use std::io::Write;
    let file = if output.is_dir() {
        output.join("part-tampered")
    } else {
        output.to_owned()
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    f.write_all(b"tampered\t1\n")?;
    Ok(())
}

/// The last few non-empty lines of a log, for a failure note.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // A Python traceback's message (`_duckdb.OutOfMemoryException: Out of Memory Error: ...`)
    // says more than the hints printed after it.
    let raised = lines
        .iter()
        .rposition(|l| l.contains("Exception: ") || l.contains("Error: "));
    let from = raised.unwrap_or(lines.len().saturating_sub(3));
    let to = raised.map_or(lines.len(), |i| i + 1);
    let tail: Vec<String> = lines[from..to]
        .iter()
        .map(|l| {
            if l.chars().count() > 300 {
                format!("{}…", l.chars().take(300).collect::<String>())
            } else {
                (*l).to_owned()
            }
        })
        .collect();
    if tail.is_empty() {
        "no output".into()
    } else {
        tail.join(" / ")
    }
}

/// A cargo command without the variables cargo sets for the crate it runs (mr-bench itself, or
/// its test): some build scripts ask to rerun when `CARGO_MANIFEST_DIR` or `CARGO_PKG_NAME`
/// change (ring's does, through cc), so inherited values made a build of mr-host from
/// mr-bench's test recompile ring, rustls, reqwest, object_store and every crate above them,
/// and the next plain `cargo test` recompile them back.
fn cargo() -> Command {
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_for_the_running_crate) {
            cargo.env_remove(name);
        }
    }
    cargo
}

/// Whether cargo sets this variable to describe the crate it builds or runs (see "Environment
/// variables Cargo sets for crates" in the Cargo Book), as opposed to one that configures cargo.
fn set_for_the_running_crate(name: &str) -> bool {
    const PREFIXES: [&str; 3] = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_EXE_"];
    const NAMES: [&str; 6] = [
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p)) || NAMES.contains(&name)
}

/// Builds mr-host with this binary's profile; returns the binary next to this one.
fn build_mr_host() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("mr-bench has no directory")?;
    let profile = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("release")
        .to_owned();
    let mut build = cargo();
    build
        .current_dir(repo_root())
        .args(["build", "-p", "mr-cli", "--bin", "mr-host"]);
    // Cargo features for this build of mr-host (mr-bench's test sets `failpoints`: see
    // runtime/bench/tests/harness.rs).
    if let Some(features) = std::env::var_os("MR_BENCH_HOST_FEATURES") {
        build.arg("--features").arg(features);
    }
    if profile != "debug" {
        build.args(["--profile", &profile]);
    }
    eprintln!("mr-bench: building mr-host ({profile})");
    let status = build.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("building mr-host failed");
    }
    let host = dir.join("mr-host");
    if !host.is_file() {
        bail!(
            "cargo built mr-host, but not at {} (is CARGO_TARGET_DIR different?); pass --mr-host",
            host.display()
        );
    }
    Ok(host)
}

/// Builds the two guests; returns (wordcount, groupby) components.
fn build_plugins() -> Result<(PathBuf, PathBuf)> {
    let plugins = repo_root().join("plugins");
    eprintln!("mr-bench: building plugins/wordcount and plugins/groupby");
    let status = cargo()
        .current_dir(&plugins)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .args(["-p", "wordcount", "-p", "groupby"])
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building plugins/wordcount and plugins/groupby failed");
    }
    let dir = plugins.join("target/wasm32-wasip2/release");
    Ok((dir.join("wordcount.wasm"), dir.join("groupby.wasm")))
}

/// Builds `plugins/identity`, the guest of the boundary benchmark.
fn build_identity() -> Result<PathBuf> {
    let plugins = repo_root().join("plugins");
    let status = cargo()
        .current_dir(&plugins)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            "identity",
        ])
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building plugins/identity failed");
    }
    Ok(plugins.join("target/wasm32-wasip2/release/identity.wasm"))
}

/// One line on the boundary's throughput, per core, against native Rust.
fn boundary_text(r: &boundary::BoundaryResult) -> String {
    format!(
        "Boundary: an identity map over {}-byte records ({} per 1 MiB batch, one core) moves \
         {:.0} MB/s through the guest; the same decode-and-append loop natively: {:.0} MB/s \
         ({:.2}x native).",
        boundary::RECORD_BYTES,
        r.records_per_batch,
        r.guest_bytes_per_sec / 1e6,
        r.native_bytes_per_sec / 1e6,
        r.native_bytes_per_sec / r.guest_bytes_per_sec
    )
}

/// `--memory SIZE` if this mr-host has it, else `--sort-buffer SIZE/2` and a note saying so.
fn memory_flags(host: &Path, memory: &str, bytes: u64) -> Result<(Vec<String>, Option<String>)> {
    let help = Command::new(host)
        .args(["run", "--help"])
        .output()
        .with_context(|| format!("cannot run {}", host.display()))?;
    let help = String::from_utf8_lossy(&help.stdout);
    if help.contains("--memory <") {
        return Ok((vec!["--memory".into(), memory.into()], None));
    }
    let half = human_size(bytes / 2);
    Ok((
        vec!["--sort-buffer".into(), half.clone()],
        Some(format!(
            "this mr-host has no `--memory` flag yet: mr's group-by ran with `--sort-buffer {half}` \
             (half of --memory {memory}) per worker instead"
        )),
    ))
}

/// Runs each component once on a tiny input, so compiling it (cached by mr-host) is not timed.
fn warm_component_cache(host: &Path, data: &Path, plugins: &(PathBuf, PathBuf)) -> Result<()> {
    let tiny = data.join("inputs/warm-up.txt");
    std::fs::create_dir_all(data.join("inputs"))?;
    std::fs::write(&tiny, "warm,1\nup,2\n")?;
    for wasm in [&plugins.0, &plugins.1] {
        let out = Command::new(host)
            .arg("run")
            .arg(wasm)
            .arg("--input")
            .arg(&tiny)
            .arg("--output")
            .arg(data.join("out/warm-up"))
            .args(["--overwrite", "--workers", "1"])
            .output()
            .with_context(|| format!("cannot run {}", host.display()))?;
        if !out.status.success() {
            bail!(
                "mr-host failed on a two-line input with {}: {}",
                wasm.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(())
}

/// The peers' python: VENV/bin/python, running bench/setup-peers.sh first if it is missing.
fn setup_peers(venv: Option<PathBuf>, data: &Path) -> Result<PathBuf, String> {
    let venv = venv.unwrap_or_else(|| repo_root().join("target/bench-venv"));
    let python = venv.join("bin/python");
    let importable = |python: &Path| {
        Command::new(python)
            .args(["-c", "import duckdb, polars, pyspark"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if importable(&python) {
        return Ok(python);
    }
    let log = data.join("logs/setup-peers.log");
    let _ = std::fs::create_dir_all(data.join("logs"));
    eprintln!(
        "mr-bench: installing the peers (bench/setup-peers.sh {}; log: {})",
        venv.display(),
        log.display()
    );
    let file = File::create(&log).map_err(|e| e.to_string())?;
    let status = Command::new("bash")
        .arg(repo_root().join("bench/setup-peers.sh"))
        .arg(&venv)
        .stdout(file.try_clone().map_err(|e| e.to_string())?)
        .stderr(file)
        .status()
        .map_err(|e| format!("cannot run bench/setup-peers.sh: {e}"))?;
    if !status.success() {
        return Err(format!(
            "bench/setup-peers.sh failed ({status}): {} (log: {})",
            log_tail(&log),
            log.display()
        ));
    }
    if importable(&python) {
        Ok(python)
    } else {
        Err(format!(
            "{} cannot import duckdb, polars and pyspark after setup",
            python.display()
        ))
    }
}

/// One paragraph on where the numbers come from.
fn machine_context(setup: &Setup, keys: u64) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|r| r.trim().trim_end_matches(" kB").parse::<f64>().ok())
            })
        })
        .map_or("?".into(), |kib| format!("{:.0}", kib / (1 << 20) as f64));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(repo_root())
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let runs = if setup.args.repeat == 1 {
        "one run per system".to_owned()
    } else {
        format!(
            "the run with the median wall time of {} per system, run in {} rounds of one run \
             per system each",
            setup.args.repeat, setup.args.repeat
        )
    };
    format!(
        "Machine: {cores} cores ({cpu}), {mem_gib} GiB RAM, Linux {kernel}, load average {} \
         before the first run; mr at commit {commit}{}. Inputs: {:.0} MB (--size {}) each; group-by keys: {}. Every system runs as \
         a child process after a warm-up read of its input (page cache hot); {runs}. Wall: spawn \
         to exit of the last process of its tree; CPU: user + system time summed over the tree; \
         peak RSS: `ru_maxrss` from `wait4`, the largest single process of the tree (not the sum \
         of processes running at once, e.g. pipeline stages or PySpark's driver and JVM). MB/s: \
         input MB (10^6 bytes) / wall. × native: wall / native Rust's wall. Python peers' times \
         include interpreter start and imports; PySpark's include starting the JVM.",
        setup.load.as_deref().unwrap_or("unknown"),
        if dirty { " with local changes" } else { "" },
        setup.args.size as f64 / 1e6,
        human_size(setup.args.size),
        thousands(keys),
    )
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1G`, `256M`, `64K` or plain bytes, whichever is exact.
fn human_size(bytes: u64) -> String {
    for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::set_for_the_running_crate;

    #[test]
    fn the_running_crates_variables_are_dropped_and_cargos_own_settings_kept() {
        for dropped in [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_EXE_mr-bench",
            "CARGO_TARGET_TMPDIR",
            "OUT_DIR",
        ] {
            assert!(set_for_the_running_crate(dropped), "{dropped}");
        }
        for kept in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_PROFILE_RELEASE_DEBUG",
            "CARGO_BUILD_JOBS",
            "RUSTFLAGS",
            "PATH",
        ] {
            assert!(!set_for_the_running_crate(kept), "{kept}");
        }
    }
}
