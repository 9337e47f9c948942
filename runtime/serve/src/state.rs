//! What the handlers share: the configuration, a pool of store connections used on tokio's
//! blocking pool, the event fan-out and the shutdown signal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
        })
    }
}
