//! What the handlers share: the configuration, a pool of store connections used on tokio's
//! blocking pool, the event fan-out and the shutdown signal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use mr_store::JobStore;
use tokio::sync::{broadcast, watch};

use crate::Config;
use crate::error::ApiError;
use crate::events::JobEvent;

/// Store connections kept for reuse: opening one costs a migration check under the write
/// lock, which every request would otherwise pay (and queue behind the workers' commits for).
const POOL_SIZE: usize = 16;

/// A pool of store connections.
pub struct Stores {
    location: mr_store::StoreLocation,
    idle: Mutex<Vec<Box<dyn JobStore>>>,
}

impl Stores {
    /// Runs `f` with a store connection on tokio's blocking pool (SQLite calls block; a busy
    /// store waits inside them, never on the async threads).
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut dyn JobStore) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let stores = self.clone();
        tokio::task::spawn_blocking(move || {
            let taken = stores.idle.lock().expect("store pool lock").pop();
            let mut store = match taken {
                Some(store) => store,
                None => mr_store::open(&stores.location)?,
            };
            let result = f(store.as_mut());
            let mut idle = stores.idle.lock().expect("store pool lock");
            if idle.len() < POOL_SIZE {
                idle.push(store);
            }
            result
        })
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("a handler failed: {e}"),
            )
        })?
    }
}

/// The server's shared state.
pub struct AppState {
    /// How it runs.
    pub config: Config,
    /// Store connections.
    pub stores: Arc<Stores>,
    /// Every new event of every job, to the SSE subscribers.
    pub events: broadcast::Sender<Arc<JobEvent>>,
    /// Set once at shutdown: SSE streams end.
    pub shutdown: watch::Sender<bool>,
    /// Components' `describe` answers, by SHA-256.
    pub described: Mutex<HashMap<String, serde_json::Value>>,
    /// Recent status documents (see [`StatusCache`]).
    pub statuses: StatusCache,
}

/// Status documents as read recently, by (job, events, tasks): many clients polling one job
/// cost the store one read per [`STATUS_FRESH`] instead of one per request. An entry is
/// dropped as soon as the event tail sees a new event of its job (every change a status shows
/// writes one: a commit, a phase change, a failure), so a cached document is never older than
/// the last change the tail has seen; what moves without an event (a lease's expiry time,
/// renewed by heartbeats) is at most [`STATUS_FRESH`] old. Its `now_ms` says when it was read.
#[derive(Default)]
pub struct StatusCache {
    entries: Mutex<HashMap<StatusKey, (Instant, axum::body::Bytes)>>,
}

/// A status document's shape: (job, events, tasks).
pub type StatusKey = (i64, u32, bool);

/// How long a cached status document is served.
pub const STATUS_FRESH: Duration = Duration::from_millis(250);

impl StatusCache {
    /// The cached document, if fresh.
    pub fn get(&self, key: StatusKey) -> Option<axum::body::Bytes> {
        let entries = self.entries.lock().expect("status cache lock");
        entries
            .get(&key)
            .filter(|(at, _)| at.elapsed() < STATUS_FRESH)
            .map(|(_, doc)| doc.clone())
    }

    /// Keeps a document read at `at` (the time before the read began).
    pub fn put(&self, key: StatusKey, at: Instant, doc: axum::body::Bytes) {
        let mut entries = self.entries.lock().expect("status cache lock");
        entries.retain(|_, (t, _)| t.elapsed() < STATUS_FRESH);
        entries.insert(key, (at, doc));
    }

    /// Forgets job `id`'s documents (it changed).
    pub fn invalidate(&self, id: i64) {
        self.entries
            .lock()
            .expect("status cache lock")
            .retain(|(job, _, _), _| *job != id);
    }
}

impl AppState {
    /// The state for `config`.
    pub fn new(config: Config) -> Arc<Self> {
        Arc::new(AppState {
            stores: Arc::new(Stores {
                location: config.db.clone(),
                idle: Mutex::new(Vec::new()),
            }),
            config,
            events: broadcast::channel(4096).0,
            shutdown: watch::channel(false).0,
            described: Mutex::new(HashMap::new()),
            statuses: StatusCache::default(),
        })
    }
}
