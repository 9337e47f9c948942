//! `mr-host`: the command line of the mr MapReduce runtime.
//!
//! - `mr-host run JOB.wasm --input PATH... --output DIR` runs a job on all cores, durably:
//!   rerunning the same command after a crash resumes it;
//! - `mr-host submit` plans a job into a store, `mr-host worker` runs a store's pending work
//!   (several processes may share one store), `mr-host resume` finishes one job, and
//!   `mr-host status` shows phase, tasks, slices, counters, attempts, errors and events;
//!   `mr-host cancel` and `mr-host delete` control a job;
//! - `mr-host pipeline run|submit|resume|status|graph` runs pipelines: stages, each a job,
//!   chained by their outputs, resumable, reusing stages that did not change;
//! - `mr-host serve` serves the HTTP API and the live page (and optionally workers);
//! - `mr-host build DIR` compiles a job project (Rust, Python or JavaScript) to a component;
//! - `mr-host new NAME --lang rust|python|js` creates a job project, `mr-host sdk vendor`
//!   refreshes its copy of the SDK;
//! - `mr-host inspect JOB.wasm` shows what a job is before running it;
//! - `mr-host dump FILE` prints a run file kept by `--debug`, or an output part, verified.
//!
//! Errors end the process with a non-zero status and one paragraph on stderr that says what
//! failed and where.

mod build;
mod cache;
mod dump;
mod interrupt;
mod jobs;
mod new;
mod pipeline;
mod progress;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
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
    /// Run a job over input files (resuming it if this command ran before and was interrupted).
    Run(jobs::RunArgs),
    /// Plan a job into a store without running it; prints the job id.
    Submit(jobs::SubmitArgs),
    /// Run the pending work of a store's jobs until none is left (start several to share it).
    Worker(jobs::WorkArgs),
    /// Work on one job of a store until it is finished, then print its summary.
    Resume(jobs::ResumeArgs),
    /// Show the state of a store's jobs: phase, tasks, slices, counters, attempts, errors.
    Status(jobs::StatusArgs),
    /// Cancel a running job: its workers stop, nothing more is committed, no _MANIFEST.
    Cancel(jobs::CancelArgs),
    /// Delete a job from its store with its work files (and, with --output, its output).
    Delete(jobs::DeleteArgs),
    /// Run pipelines: stages, each a job, chained by their outputs (see `pipeline run --help`).
    #[command(subcommand)]
    Pipeline(pipeline::PipelineCommand),
    /// Serve the HTTP API and the live page for every job of a store (and run workers).
    Serve(serve::ServeArgs),
    /// Build a job project (Rust, Python or JavaScript) into a component.
    Build {
        /// The project directory (holding Cargo.toml, pyproject.toml or package.json).
        dir: PathBuf,
        /// Copy the component here.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// Create a job project (a word count to edit, with its own copy of the SDK) in a new
    /// directory NAME.
    New(new::NewArgs),
    /// Manage a project's vendored SDK.
    #[command(subcommand)]
    Sdk(SdkCommand),
    /// Print a run file (kept by --debug) or an output part as `key<TAB>value` lines, verified
    /// (a run's block checksums; a part's size and SHA-256 against its _MANIFEST).
    Dump {
        /// The run file (`OUTPUT/_mr/work/*.run`) or part file.
        file: PathBuf,
    },
    /// Show a job's name, version, SHA-256, build time, world, phases and parameters.
    Inspect {
        /// The job component, or a job project directory (built first when it changed).
        job: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SdkCommand {
    /// Replace the project's copy of its SDK (vendor/mr-sdk) with the one in this mr-host.
    Vendor {
        /// The project directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never in logs or captured output.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    // With --json, a failure is also one JSON object on stdout: `{"error": ..., "job": ID}`, the
    // job's id when the command knows it, else null.
    let json_error: Option<Option<i64>> = match &cli.command {
        Command::Run(args) if args.json => Some(None),
        Command::Resume(args) if args.json => Some(Some(args.job)),
        Command::Status(args) if args.json => Some(args.job),
        _ => None,
    };
    let result = match cli.command {
        Command::Run(args) => jobs::run(args),
        Command::Submit(args) => jobs::submit(args),
        Command::Worker(args) => jobs::worker(args),
        Command::Resume(args) => jobs::resume(args),
        Command::Status(args) => jobs::status(args),
        Command::Cancel(args) => jobs::cancel(args),
        Command::Delete(args) => jobs::delete(args),
        Command::Pipeline(command) => pipeline::run(command),
        Command::Serve(args) => serve::serve(args),
        Command::Build { dir, output } => build::build(&dir, output.as_deref()).map(|path| {
            println!("{}", path.display());
        }),
        Command::New(args) => new::run(args),
        Command::Sdk(SdkCommand::Vendor { dir }) => build::sdk::vendor_command(&dir),
        Command::Inspect { job, json } => inspect(&job, json),
        Command::Dump { file } => dump::dump(&file),
    };
    // Once per process, after the command: its own component was just used, so it is kept.
    cache::prune_once();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = mr_exec::error_chain(e.as_ref());
            if let Some(job) = json_error {
                let job = job.or_else(|| jobs::RUN_JOB.get().copied());
                println!("{}", serde_json::json!({"error": message, "job": job}));
            }
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn inspect(path: &std::path::Path, json: bool) -> Result<()> {
    let path = build::stale::resolve_job(path)?;
    let job = jobs::default_runtime()?.load(&path)?;
    let info = job.info();
    let built = build::stale::built_at(&path);
    if json {
        let mut value = serde_json::to_value(info)?;
        value["sha256"] = job.sha256().into();
        value["contract"] = format!(
            "{}@{}",
            mr_engine::contract::PACKAGE,
            job.contract_version()
        )
        .into();
        value["built_at"] = built.map(|(t, _)| build::stale::unix_seconds(t)).into();
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("name:        {}", info.name);
    println!("version:     {}", info.version);
    println!("sha256:      {}", job.sha256());
    if let Some((at, how)) = built {
        println!(
            "built:       {} ({how})",
            humantime::format_rfc3339_seconds(at)
        );
    }
    println!("world:       {}", info.world.name());
    println!(
        "contract:    {}@{}",
        mr_engine::contract::PACKAGE,
        job.contract_version()
    );
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
            let mut notes = vec![p.kind.to_string()];
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
