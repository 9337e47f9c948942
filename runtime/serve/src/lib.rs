//! `mr-serve`: the HTTP side of mr (`mr-host serve`). One process serves, for every job of one
//! store, a JSON API (documented by `openapi.json`, served at `/api/openapi.json`), live
//! updates as Server-Sent Events, and a page (`/`) that shows the jobs and follows them live;
//! it can also run workers in-process, so one command is a complete little job server.
//!
//! - **Handlers are thin.** They call the same `mr-exec` / `mr-store` functions as the command
//!   line, on tokio's blocking pool, through a small pool of store connections
//!   ([`state::Stores`]). The store is the only shared state: other `mr-host` processes may
//!   submit, work and cancel beside the server.
//! - **Live updates** ([`events`]): one task tails the events table (by increasing id) and
//!   fans every new event out to the SSE subscribers through a broadcast channel, so the store
//!   sees one query per running job and tick, however many browsers watch.
//! - **Completion hooks**: the server is a watcher; it delivers the hooks of every job that
//!   ended, wherever it ran (`mr_exec::deliver_hooks` makes that once per job).
//! - **Security** ([`auth`]): a bearer token for every mutating call (and reads, unless
//!   `public_read`); no listening beyond loopback without one; uploads capped; paths confined
//!   to the data root when one is given ([`paths`]). Every error answer is JSON ([`error`]).
//! - **Pipelines** are read-only here: `/api/pipelines` shows what `mr-host pipeline status
//!   --json` shows, and the page draws each pipeline's stages as a graph; pipelines are run
//!   by `mr-host pipeline run` / `submit` and advanced by workers (in-process ones too).

mod api;
mod assets;
mod auth;
mod error;
mod events;
mod paths;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use mr_store::StoreLocation;

pub use error::ApiError;
use state::AppState;

/// How `mr-host serve` runs.
pub struct Config {
    /// The job store.
    pub db: StoreLocation,
    /// Where to listen (a loopback address unless a token is set).
    pub listen: String,
    /// The bearer token every mutating call (and, without `public_read`, every read) needs.
    pub token: Option<String>,
    /// Reads need no token.
    pub public_read: bool,
    /// Confine submitted jobs' inputs, outputs and sinks to this directory.
    pub data_root: Option<PathBuf>,
    /// Where uploaded components are kept, by SHA-256.
    pub components: PathBuf,
    /// Largest accepted request body (a component upload), in bytes.
    pub max_upload: u64,
    /// Accept `on_done` commands from the API (they run on this machine).
    pub allow_on_done: bool,
    /// Loads components (to check submissions and describe jobs).
    pub runtime: Arc<mr_engine::Runtime>,
    /// Run workers in this process.
    pub workers: Option<mr_exec::WorkerOptions>,
    /// How often the event tail looks for new events.
    pub poll: Duration,
}

/// Binds, prints `serving http://ADDR` on stderr, and serves until SIGINT or SIGTERM; then
/// stops the in-process workers (they finish their current batch) and returns.
pub fn run(config: Config) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mr-serve")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> Result<()> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&config.listen)
        .await
        .with_context(|| format!("--listen {}: not an address to listen on", config.listen))?
        .collect();
    if addrs.is_empty() {
        bail!("--listen {}: resolves to no address", config.listen);
    }
    if config.token.is_none()
        && let Some(open) = addrs.iter().find(|a| !a.ip().is_loopback())
    {
        bail!(
            "refusing to listen on {open}, which is not a loopback address, without a token: \
             anyone who can reach it could submit and delete jobs. Pass --token (or set \
             MR_TOKEN), or listen on 127.0.0.1"
        );
    }
    std::fs::create_dir_all(&config.components).with_context(|| {
        format!(
            "cannot create the components directory {}",
            config.components.display()
        )
    })?;
    // Fail now, with one message, if the store cannot be opened. On the blocking pool: the
    // PostgreSQL client blocks on a runtime of its own, which cannot start inside this one.
    let db = config.db.clone();
    tokio::task::spawn_blocking(move || mr_store::open(&db).map(drop))
        .await
        .context("opening the store")??;
    let listener = tokio::net::TcpListener::bind(&addrs[..])
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local = listener.local_addr()?;

    let stop_workers = Arc::new(AtomicBool::new(false));
    let workers = config.workers.clone().map(|mut options| {
        options.follow = Some(mr_exec::Follow {
            idle_poll: Duration::from_millis(500),
            stop: stop_workers.clone(),
        });
        let db = config.db.clone();
        let runtime = config.runtime.clone();
        std::thread::Builder::new()
            .name("mr-workers".into())
            .spawn(move || mr_exec::work(&db, &options, &runtime, None))
            .expect("spawn the worker thread")
    });

    let state = AppState::new(config);
    let shutdown = state.shutdown.clone();
    let tail = tokio::spawn(events::tail(state.clone()));
    let hooks = tokio::spawn(events::watch_hooks(state.clone()));
    eprintln!("serving http://{local}");
    let served = axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            // SSE streams end when told to, so the graceful shutdown does not wait forever.
            let _ = shutdown.send(true);
        })
        .await;
    tail.abort();
    hooks.abort();
    stop_workers.store(true, Ordering::Relaxed);
    if let Some(workers) = workers {
        eprintln!("stopping the workers (they finish their current batch)");
        let report = tokio::task::spawn_blocking(move || workers.join())
            .await
            .context("joining the workers")?;
        match report {
            Ok(report) => {
                report?;
            }
            Err(_) => bail!("the worker thread panicked"),
        }
    }
    served.context("the server failed")
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The routes.
fn router(state: Arc<AppState>) -> Router {
    let limit = usize::try_from(state.config.max_upload).unwrap_or(usize::MAX);
    let api = Router::new()
        .route("/jobs", get(api::list_jobs).post(api::submit))
        .route("/jobs/{id}", get(api::job).delete(api::delete))
        .route("/jobs/{id}/tasks", get(api::tasks))
        .route("/jobs/{id}/describe", get(api::describe))
        .route("/jobs/{id}/events", get(events::job_events))
        .route("/jobs/{id}/cancel", post(api::cancel))
        .route("/events", get(events::all_events))
        .route("/pipelines", get(api::list_pipelines))
        .route("/pipelines/{id}", get(api::pipeline))
        .route("/components", post(api::upload_component))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        // Documentation is public, so a client (or schemathesis) can learn the API.
        .route("/openapi.json", get(assets::openapi));
    Router::new()
        .nest("/api", api)
        .route("/", get(assets::index))
        .route("/assets/{name}", get(assets::asset))
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::refuse_oversized,
        ))
        .layer(axum::middleware::map_response(error::json_errors))
        .with_state(state)
}
