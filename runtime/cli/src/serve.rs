//! `mr-host serve`: the HTTP API and the live page for every job of a store (crate
//! `mr-serve`), optionally with worker threads in the same process.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::jobs::{LimitArgs, store_location};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The job store: a SQLite file (created if needed), or `postgres://USER@HOST:PORT/DB`.
    #[arg(long)]
    db: String,
    /// Address to listen on; a non-loopback address needs --token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Bearer token required by every call that changes something, and by reads unless
    /// --public-read [default: $MR_TOKEN].
    #[arg(long)]
    token: Option<String>,
    /// Reads (the page, job status, events) need no token.
    #[arg(long)]
    public_read: bool,
    /// Confine submitted jobs to this directory: relative paths in a spec are under it, and
    /// an input, output or SQLite sink outside it (`..`, absolute, or through a link) is refused.
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// Where uploaded components are kept, by SHA-256 [default: mr-components/ beside a
    /// SQLite store; with PostgreSQL, which keeps them itself, the work directory's
    /// components/ ($MR_WORK_DIR, else TMPDIR/mr-work)].
    #[arg(long)]
    components: Option<PathBuf>,
    /// Largest accepted upload (a component, with the spec).
    #[arg(long, default_value = "64M", value_parser = crate::jobs::parse_size)]
    max_upload: u64,
    /// Accept `on_done` commands from the API; they run on this machine as this user.
    #[arg(long)]
    allow_on_done: bool,
    /// Worker threads run in this process, serving every job of the store [default: 0, none:
    /// run `mr-host worker --db STORE --follow` beside it].
    #[arg(long, default_value_t = 0)]
    workers: u32,
    /// Memory for the shuffle of the in-process workers.
    #[arg(long, default_value = "256M", value_parser = crate::jobs::parse_size)]
    memory: u64,
    #[command(flatten)]
    limits: LimitArgs,
}

pub fn serve(args: ServeArgs) -> Result<()> {
    let db = mr_store::StoreLocation::parse(&args.db);
    let token = args
        .token
        .or_else(|| std::env::var("MR_TOKEN").ok())
        .filter(|t| !t.is_empty());
    if token.as_ref().is_some_and(|t| t.len() < 16) {
        bail!("--token must be at least 16 characters (it is all that guards the API)");
    }
    let components = match (&args.components, db.path()) {
        (Some(dir), _) => dir.clone(),
        (None, Some(path)) => path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."))
            .join("mr-components"),
        // A PostgreSQL store keeps every uploaded component itself (any server or worker
        // finds it there); the directory is only this host's copy of them.
        (None, None) => mr_exec::default_scratch().join("components"),
    };
    let data_root = match &args.data_root {
        Some(root) => Some(
            root.canonicalize()
                .map_err(|e| anyhow::anyhow!("--data-root {}: {e}", root.display()))?,
        ),
        None => None,
    };
    if let Some(path) = db.path()
        && let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)?;
    }
    let _ = store_location;
    let workers = (args.workers > 0).then(|| mr_exec::WorkerOptions {
        workers: args.workers,
        memory: args.memory,
        ..Default::default()
    });
    mr_serve::run(mr_serve::Config {
        db,
        listen: args.listen,
        token,
        public_read: args.public_read,
        data_root,
        components,
        max_upload: args.max_upload,
        allow_on_done: args.allow_on_done,
        runtime: args.limits.runtime(Some(args.workers.max(1)))?,
        workers,
        poll: Duration::from_millis(250),
    })
}
