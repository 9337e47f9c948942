//! `mr-host`: the command line of the mr MapReduce runtime.
//!
//! - `mr-host run JOB.wasm --input PATH... --output DIR` runs a job on all cores;
//! - `mr-host build DIR` compiles a job project (Rust, Python or JavaScript) to a component;
//! - `mr-host new NAME --lang rust|python|js` creates a job project;
//! - `mr-host inspect JOB.wasm` shows what a job is before running it.
//!
//! Errors end the process with a non-zero status and one paragraph on stderr that says what
//! failed and where.

mod build;
mod new;
mod progress;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mr-host",
    version,
    about = "Run MapReduce jobs compiled to WebAssembly components"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a job over input files.
    Run(RunArgs),
    /// Build a job project (Rust, Python or JavaScript) into a component.
    Build {
        /// The project directory (holding Cargo.toml, pyproject.toml or package.json).
        dir: PathBuf,
        /// Copy the component here.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// Create a job project (a word count to edit) in a new directory NAME.
    New {
        /// The project's name and directory.
        name: String,
        /// The project's language.
        #[arg(long, value_enum, default_value = "rust")]
        lang: build::Lang,
    },
    /// Show a job's name, version, world, phases and parameters.
    Inspect {
        /// The job component.
        job: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// The job component (.wasm).
    job: PathBuf,
    /// Input files, directories (read recursively) or glob patterns; repeatable.
    #[arg(short, long = "input", required = true, num_args = 1..)]
    inputs: Vec<String>,
    /// Output directory (must be empty or absent unless --overwrite).
    #[arg(short, long)]
    output: PathBuf,
    /// Number of input shards [default: 4 per worker].
    #[arg(long)]
    shards: Option<u32>,
    /// Number of reduce partitions, i.e. output part files [default: workers].
    #[arg(long)]
    reducers: Option<u32>,
    /// Worker threads [default: available cores].
    #[arg(long)]
    workers: Option<u32>,
    /// Job parameter; repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Replace the contents of a non-empty output directory.
    #[arg(long)]
    overwrite: bool,
    /// Input bytes handed to the guest per map call.
    #[arg(long, default_value = "256K", value_parser = parse_size)]
    batch_size: u64,
    /// Map-side sort buffer per worker; a full buffer spills a sorted run to disk.
    #[arg(long, default_value = "64M", value_parser = parse_size)]
    sort_buffer: u64,
    /// Longest input record accepted.
    #[arg(long, default_value = "64M", value_parser = parse_size)]
    max_record_bytes: u64,
    /// Maximum guest linear memory per instance.
    #[arg(long, default_value = "4G", value_parser = parse_size)]
    memory_limit: u64,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

fn parse_size(s: &str) -> Result<u64, String> {
    mr_corpus::parse_size(s)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Build { dir, output } => build::build(&dir, output.as_deref()).map(|path| {
            println!("{}", path.display());
        }),
        Command::New { name, lang } => new::scaffold(Path::new("."), &name, lang).map(|dir| {
            eprint!("{}", new::next_steps(&dir, lang));
        }),
        Command::Inspect { job, json } => inspect(&job, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime(memory_limit: u64) -> Result<std::sync::Arc<mr_engine::Runtime>> {
    let options = mr_engine::RuntimeOptions {
        memory_limit: usize::try_from(memory_limit).context("--memory-limit is too large")?,
        ..Default::default()
    };
    Ok(mr_engine::Runtime::new(options)?)
}

fn inspect(path: &std::path::Path, json: bool) -> Result<()> {
    let job = runtime(1 << 30)?.load(path)?;
    let info = job.info();
    if json {
        println!("{}", serde_json::to_string_pretty(info)?);
        return Ok(());
    }
    println!("name:        {}", info.name);
    println!("version:     {}", info.version);
    println!("world:       {}", info.world.name());
    let mut phases = vec!["map"];
    if info.combine {
        phases.push("combine");
    }
    if info.reduce {
        phases.push("reduce");
    }
    println!("phases:      {}", phases.join(", "));
    if !info.description.is_empty() {
        println!("description: {}", info.description);
    }
    if info.params.is_empty() {
        println!("parameters:  none");
    } else {
        println!("parameters:");
        for p in &info.params {
            let mut notes = Vec::new();
            if p.required {
                notes.push("required".to_owned());
            }
            if let Some(d) = &p.default {
                notes.push(format!("default {d:?}"));
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join(", "))
            };
            println!("  {}{notes}: {}", p.name, p.description);
        }
    }
    Ok(())
}

fn run(args: RunArgs) -> Result<()> {
    let mut params = BTreeMap::new();
    for p in &args.params {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--param {p:?} must have the form KEY=VALUE");
        };
        params.insert(k.to_owned(), v.to_owned());
    }
    let job = runtime(args.memory_limit)?.load(&args.job)?;
    let job = job.with_params(&params).map_err(anyhow::Error::msg)?;
    let mut config = mr_exec::RunConfig::new(job, args.inputs.clone(), args.output.clone());
    if let Some(w) = args.workers {
        if w == 0 {
            bail!("--workers must be at least 1");
        }
        config = config.with_workers(w);
    }
    if let Some(s) = args.shards {
        config.shards = s.max(1);
    }
    if let Some(r) = args.reducers {
        if r == 0 {
            bail!("--reducers must be at least 1");
        }
        config.reducers = r;
    }
    if !(1024..=(256 << 20)).contains(&args.batch_size) {
        bail!(
            "--batch-size must be between 1K and 256M (got {} bytes)",
            args.batch_size
        );
    }
    config.batch_bytes = args.batch_size as usize;
    config.sort_buffer_bytes = args.sort_buffer as usize;
    config.max_record_bytes = args.max_record_bytes as usize;
    config.overwrite = args.overwrite;

    let bar = progress::Bar::new();
    let summary = mr_exec::run(&config, Some(bar.sink()));
    bar.finish();
    let summary = summary?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        progress::print_summary(&summary);
    }
    Ok(())
}
