//! `mr-host pipeline`: run, submit, resume, show and draw pipelines (see `mr-pipeline` for the
//! file, `mr-exec`'s pipeline module for how stages run and are reused).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use clap::Subcommand;
use mr_exec::PipelineStatus;
use mr_pipeline::{Labels, PipelineFile};

use crate::jobs::{LimitArgs, WorkerArgs, store_location};

#[derive(Subcommand)]
pub enum PipelineCommand {
    /// Run a pipeline file's stages, in dependency order, until every stage is done; stage
    /// NAME writes OUTPUT/NAME/. Rerunning resumes, and reuses every stage whose job,
    /// parameters, settings and inputs did not change.
    Run(RunArgs),
    /// Record a pipeline in a store without running it (`mr-host worker` runs its stages);
    /// prints its id.
    Submit(SubmitArgs),
    /// Work on a recorded pipeline until it is done.
    Resume(ResumeArgs),
    /// Show a store's pipelines: each stage's state, job and progress, and why it ran or was
    /// reused.
    Status(StatusArgs),
    /// Draw a pipeline file's stages and what they read (text, or Graphviz DOT).
    Graph(GraphArgs),
}

#[derive(clap::Args)]
pub struct Where {
    /// The pipeline file (TOML).
    file: PathBuf,
    /// Output directory: stage NAME writes OUTPUT/NAME/ (part files and _MANIFEST).
    #[arg(short, long)]
    output: PathBuf,
    /// The store: a SQLite file, or `postgres://USER@HOST:PORT/DB` [default:
    /// OUTPUT/_mr/state.db].
    #[arg(long)]
    db: Option<String>,
    /// Debug mode: every stage keeps its map output and the shuffle's runs
    /// (OUTPUT/NAME/_mr/work/*.run, about as much disk as the map output), listed by
    /// `pipeline status --debug` and printed by `mr-host dump`. A stage that ran without it
    /// runs again.
    #[arg(long)]
    debug: bool,
}

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    at: Where,
    #[command(flatten)]
    worker: WorkerArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// Print the pipeline's status as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    at: Where,
}

#[derive(clap::Args)]
pub struct ResumeArgs {
    /// The pipeline id (as `pipeline submit` printed it).
    id: i64,
    /// The store: a SQLite file, or `postgres://USER@HOST:PORT/DB`.
    #[arg(long)]
    db: String,
    #[command(flatten)]
    worker: WorkerArgs,
    #[command(flatten)]
    limits: LimitArgs,
    /// Print the pipeline's status as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// The pipeline id [default: every pipeline in the store].
    id: Option<i64>,
    /// The store: a SQLite file, or `postgres://USER@HOST:PORT/DB`.
    #[arg(long, conflicts_with = "output")]
    db: Option<String>,
    /// The pipeline's output directory (its store is OUTPUT/_mr/state.db).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Print JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Also list where each stage's kept data (debug mode) is.
    #[arg(long)]
    debug: bool,
}

#[derive(clap::Args)]
pub struct GraphArgs {
    /// The pipeline file (TOML).
    file: PathBuf,
    /// Print Graphviz DOT (`| dot -Tsvg > pipeline.svg`) instead of text.
    #[arg(long)]
    dot: bool,
}

pub fn run(command: PipelineCommand) -> Result<()> {
    match command {
        PipelineCommand::Run(args) => run_file(args),
        PipelineCommand::Submit(args) => submit(args),
        PipelineCommand::Resume(args) => resume(args),
        PipelineCommand::Status(args) => status(args),
        PipelineCommand::Graph(args) => graph(args),
    }
}

fn store_of(at: &Where) -> Result<mr_store::StoreLocation> {
    Ok(match &at.db {
        Some(db) => mr_store::StoreLocation::parse(db),
        None => mr_store::StoreLocation::file(&mr_exec::default_store_path(&at.output)),
    })
}

/// Reads the file and checks it against its jobs (building project directories first).
fn resolve(at: &Where, runtime: &Arc<mr_engine::Runtime>) -> Result<mr_exec::PipelineDef> {
    let file = PipelineFile::parse(&at.file)?;
    let mut load = |path: &Path| -> Result<Arc<mr_engine::JobComponent>, String> {
        let component = crate::build::stale::resolve_job(path).map_err(|e| format!("{e:#}"))?;
        runtime
            .load(&component)
            .map_err(|e| mr_exec::error_chain(&e))
    };
    let mut def = file.resolve(&at.output, &mut load)?;
    if at.debug {
        for stage in &mut def.stages {
            stage.settings.debug = true;
        }
    }
    Ok(def)
}

fn run_file(args: RunArgs) -> Result<()> {
    let options = args.worker.options(None)?;
    let runtime = args.limits.runtime(Some(options.workers))?;
    let db = store_of(&args.at)?;
    let def = resolve(&args.at, &runtime)?;
    let submitted = mr_exec::submit_pipeline(&db, &def)?;
    eprintln!(
        "pipeline {} ({} stages) is {} in {db}",
        def.name,
        def.stages.len(),
        if submitted.created {
            format!("pipeline {}", submitted.id)
        } else {
            format!("pipeline {}, run again", submitted.id)
        }
    );
    let status = mr_exec::resume_pipeline(&db, submitted.id, &options, &runtime);
    finish(&db, submitted.id, status, args.json)
}

fn submit(args: SubmitArgs) -> Result<()> {
    let db = store_of(&args.at)?;
    let def = resolve(&args.at, &crate::jobs::default_runtime()?)?;
    let submitted = mr_exec::submit_pipeline(&db, &def)?;
    println!("{}", submitted.id);
    Ok(())
}

fn resume(args: ResumeArgs) -> Result<()> {
    let options = args.worker.options(None)?;
    let runtime = args.limits.runtime(Some(options.workers))?;
    let db = store_location(&args.db)?;
    let status = mr_exec::resume_pipeline(&db, args.id, &options, &runtime);
    finish(&db, args.id, status, args.json)
}

/// Prints the pipeline's stages (on stderr, or its status as JSON on stdout), then the error if
/// it did not finish.
fn finish(
    db: &mr_store::StoreLocation,
    id: i64,
    status: Result<PipelineStatus, mr_exec::ExecError>,
    json: bool,
) -> Result<()> {
    let shown = match &status {
        Ok(s) => s.clone(),
        Err(_) => mr_exec::pipeline_status(mr_store::open(db)?.as_ref(), id)?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&shown)?);
    } else {
        eprint!("{}", format_status(&shown, false));
    }
    status?;
    Ok(())
}

fn status(args: StatusArgs) -> Result<()> {
    let db = crate::jobs::store_to_read(args.db.as_deref(), args.output.as_deref(), "pipeline")?;
    let store = mr_store::open(&db)?;
    let ids: Vec<i64> = match args.id {
        Some(id) => vec![id],
        None => store.pipelines()?.into_iter().map(|p| p.id).collect(),
    };
    let statuses = ids
        .into_iter()
        .map(|id| mr_exec::pipeline_status(store.as_ref(), id))
        .collect::<Result<Vec<_>, _>>()?;
    if args.json {
        let value = if args.id.is_some() {
            serde_json::to_value(&statuses[0])?
        } else {
            serde_json::to_value(&statuses)?
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    if statuses.is_empty() {
        println!("no pipelines in {db}");
    }
    for s in &statuses {
        print!("{}", format_status(s, args.debug));
    }
    Ok(())
}

/// A pipeline's status as text: a line for the pipeline, then one per stage with its state,
/// job, progress and why it ran or was reused.
pub fn format_status(s: &PipelineStatus, debug: bool) -> String {
    let p = &s.pipeline;
    let mut out = format!(
        "pipeline {} `{}`: {} ({} stages, output {})\n",
        p.id,
        p.name,
        p.phase,
        s.stages.len(),
        p.output
    );
    if let Some(error) = &p.error {
        out += &format!("  error: {error}\n");
    }
    let width = s.stages.iter().map(|t| t.row.name.len()).max().unwrap_or(0);
    for t in &s.stages {
        let job = match (t.row.job, t.job_phase) {
            (Some(job), Some(phase)) => {
                format!("job {job} {phase} {}/{} tasks", t.tasks_done, t.tasks)
            }
            (Some(job), None) => format!("job {job} (deleted)"),
            _ => "no job yet".into(),
        };
        out += &format!("  {:width$}  {:8} {job}", t.row.name, t.row.state.as_str());
        if let Some(reason) = &t.row.reason {
            out += &format!("  ({reason})");
        }
        out.push('\n');
        if debug {
            match &t.kept {
                Some(k) => {
                    out += &format!(
                        "  {:width$}  kept: {} ({} runs, {} files, {} bytes; `mr-host dump FILE` prints one)\n",
                        "",
                        k.dir.display(),
                        k.runs,
                        k.files,
                        k.bytes
                    )
                }
                None => out += &format!("  {:width$}  kept: nothing (not run in debug mode)\n", ""),
            }
        }
    }
    out
}

fn graph(args: GraphArgs) -> Result<()> {
    let file = PipelineFile::parse(&args.file)?;
    let shape = file.shape().check_and_order()?;
    let labels = Labels::new();
    if args.dot {
        print!("{}", mr_pipeline::dot(&shape, &labels));
    } else {
        print!("{}", mr_pipeline::text(&shape, &labels));
    }
    Ok(())
}
