//! The JSON API's handlers. Each parses its request, then calls the same `mr-exec` /
//! `mr-store` function the command line calls, on the blocking pool.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::multipart::MultipartError;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mr_exec::SubmitSpec;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::paths;
use crate::state::AppState;

/// `GET /api/jobs`: every job's status document (no events, no tasks), oldest first.
pub async fn list_jobs(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<mr_exec::StatusDocument>>, ApiError> {
    let jobs = state
        .stores
        .run(|store| {
            let mut docs = Vec::new();
            for job in store.jobs()? {
                match mr_exec::status_document(store, job.id, 0, false) {
                    Ok(doc) => docs.push(doc),
                    // Deleted between the two reads.
                    Err(mr_exec::ExecError::Store(mr_store::StoreError::NoSuchJob { .. })) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(docs)
        })
        .await?;
    Ok(Json(jobs))
}

/// `GET /api/pipelines`: every pipeline's status document (`mr-host pipeline status --json`:
/// its row and its stages in dependency order, each with its job and tasks), oldest first.
pub async fn list_pipelines(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<mr_exec::PipelineStatus>>, ApiError> {
    let pipelines = state
        .stores
        .run(|store| {
            let store = &*store;
            let mut docs = Vec::new();
            for pipeline in store.pipelines()? {
                match mr_exec::pipeline_status(store, pipeline.id) {
                    Ok(doc) => docs.push(doc),
                    // Removed between the two reads.
                    Err(mr_exec::ExecError::Store(mr_store::StoreError::NoSuchPipeline {
                        ..
                    })) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(docs)
        })
        .await?;
    Ok(Json(pipelines))
}

/// `GET /api/pipelines/{id}`: one pipeline's status document (404 for an unknown id).
pub async fn pipeline(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
) -> Result<Json<mr_exec::PipelineStatus>, ApiError> {
    let doc = state
        .stores
        .run(move |store| Ok(mr_exec::pipeline_status(&*store, id)?))
        .await?;
    Ok(Json(doc))
}

/// `GET /api/jobs/{id}` options.
#[derive(Debug, Deserialize)]
pub struct StatusQuery {
    /// Recent events to include [default 10, as `mr-host status`].
    events: Option<u32>,
    /// Include every task.
    tasks: Option<bool>,
}

/// `GET /api/jobs/{id}`: the `mr-host status --json` document (read at most every 250 ms per
/// job and shape, and again after any change: see [`crate::state::StatusCache`]).
pub async fn job(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    Query(query): Query<StatusQuery>,
) -> Result<Response, ApiError> {
    let events = query.events.unwrap_or(10).min(1000);
    let tasks = query.tasks.unwrap_or(false);
    let key = (id, events, tasks);
    let doc = match state.statuses.get(key) {
        Some(doc) => doc,
        None => {
            let read_at = std::time::Instant::now();
            let doc = state
                .stores
                .run(move |store| {
                    let doc = mr_exec::status_document(store, id, events, tasks)?;
                    Ok(Bytes::from(
                        serde_json::to_vec(&doc).expect("a status serialises"),
                    ))
                })
                .await?;
            state.statuses.put(key, read_at, doc.clone());
            doc
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], doc).into_response())
}

/// `GET /api/jobs/{id}/tasks`: every task with its state, counters and planned bytes.
pub async fn tasks(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<mr_exec::TaskView>>, ApiError> {
    let tasks = state
        .stores
        .run(move |store| Ok(mr_exec::task_views(store, id)?))
        .await?;
    Ok(Json(tasks))
}

/// `GET /api/jobs/{id}/describe`: what the job's component says of itself (as
/// `mr-host inspect --json`), with the parameters the job was planned with.
pub async fn describe(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let spec = state
        .stores
        .run(move |store| {
            let row = store.job(id)?;
            serde_json::from_str::<mr_exec::JobSpec>(&row.spec).map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("job {id}'s plan cannot be read: {e}"),
                )
            })
        })
        .await?;
    let cached = state
        .described
        .lock()
        .expect("describe cache lock")
        .get(&spec.component_sha256)
        .cloned();
    let info = match cached {
        Some(info) => info,
        None => {
            let runtime = state.config.runtime.clone();
            let path = spec.component.clone();
            let info = blocking(move || {
                let job = runtime.load(&path).map_err(|e| {
                    ApiError::new(
                        StatusCode::CONFLICT,
                        format!("cannot load the job's component {}: {e}", path.display()),
                    )
                })?;
                Ok(serde_json::to_value(job.info()).expect("job info serialises"))
            })
            .await?;
            state
                .described
                .lock()
                .expect("describe cache lock")
                .insert(spec.component_sha256.clone(), info.clone());
            info
        }
    };
    Ok(Json(json!({
        "info": info,
        "component_sha256": spec.component_sha256,
        "params": spec.params,
    })))
}

/// `POST /api/jobs/{id}/cancel`.
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let cancelled = state
        .stores
        .run(move |store| Ok(store.cancel_job(id)?))
        .await?;
    match cancelled {
        mr_store::Cancelled::Now => Ok(Json(json!({ "id": id, "phase": "cancelled" }))),
        mr_store::Cancelled::AlreadyOver(phase) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("job {id} had already ended ({phase}); nothing to cancel"),
        )),
    }
}

/// `DELETE /api/jobs/{id}` options.
#[derive(Debug, Deserialize)]
pub struct DeleteQuery {
    /// Also remove what the job wrote to its output directory.
    output: Option<bool>,
}

/// `DELETE /api/jobs/{id}`: as `mr-host delete`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    Query(query): Query<DeleteQuery>,
) -> Result<Json<mr_exec::Deleted>, ApiError> {
    let db = state.config.db.clone();
    let output = query.output.unwrap_or(false);
    let deleted = blocking(move || Ok(mr_exec::delete(&db, id, output)?)).await?;
    Ok(Json(deleted))
}

/// `POST /api/components`: the body is a component; answers its SHA-256, by which a job
/// submission may name it.
pub async fn upload_component(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the body must be a component (.wasm)",
        ));
    }
    let sha256 = store_component(&state, body).await?;
    Ok((StatusCode::CREATED, Json(json!({ "sha256": sha256 }))))
}

/// Keeps a component under its SHA-256 in the components directory (temporary name, then
/// rename: a concurrent reader never sees half a file) and, when the store is shared
/// (PostgreSQL), in the store too: a worker or another server on any host finds it there.
async fn store_component(state: &Arc<AppState>, bytes: Bytes) -> Result<String, ApiError> {
    let sha256 = mr_engine::hex(&Sha256::digest(&bytes));
    keep_component(state, &sha256, bytes.clone()).await?;
    if state.config.db.path().is_none() {
        let key = sha256.clone();
        state
            .stores
            .run(move |store| Ok(store.put_component(&key, &bytes)?))
            .await?;
    }
    Ok(sha256)
}

/// Writes `bytes`, the component `sha256`, into the components directory unless it is there.
async fn keep_component(
    state: &Arc<AppState>,
    sha256: &str,
    bytes: Bytes,
) -> Result<PathBuf, ApiError> {
    let dir = state.config.components.clone();
    let sha256 = sha256.to_owned();
    blocking(move || {
        let path = dir.join(format!("{sha256}.wasm"));
        if !path.is_file() {
            // A name of its own per upload: two uploads of one component may overlap.
            static UPLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = UPLOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let temp = dir.join(format!(".{sha256}.{}-{n}.tmp", std::process::id()));
            std::fs::write(&temp, &bytes)
                .and_then(|()| std::fs::rename(&temp, &path))
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("cannot store the component in {}: {e}", dir.display()),
                    )
                })?;
        }
        Ok(path)
    })
    .await
}

/// The local file of component `sha256`: the components directory's, else (a shared store)
/// the store's copy, written there first. `None` when neither has it.
async fn find_component(state: &Arc<AppState>, sha256: &str) -> Result<Option<PathBuf>, ApiError> {
    let path = state.config.components.join(format!("{sha256}.wasm"));
    if path.is_file() {
        return Ok(Some(path));
    }
    if state.config.db.path().is_some() {
        return Ok(None);
    }
    let key = sha256.to_owned();
    let bytes = state
        .stores
        .run(move |store| Ok(store.component(&key)?))
        .await?;
    match bytes {
        Some(bytes) => Ok(Some(keep_component(state, sha256, bytes.into()).await?)),
        None => Ok(None),
    }
}

fn multipart_error(e: MultipartError) -> ApiError {
    ApiError::new(e.status(), format!("reading the upload: {}", e.body_text()))
}

/// `POST /api/jobs`: multipart with `spec` (the JSON of [`SubmitSpec`]) and either
/// `component` (the `.wasm`) or `component_sha256` (of one uploaded before). Answers 201 with
/// the job's id (200 when the same job was planned before: resubmitting resumes it).
pub async fn submit(
    State(state): State<Arc<AppState>>,
    mut multipart: Multipart,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut spec: Option<SubmitSpec> = None;
    let mut sha256: Option<String> = None;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "spec" => {
                let text = field.text().await.map_err(multipart_error)?;
                spec = Some(serde_json::from_str(&text).map_err(|e| {
                    ApiError::bad_request(format!("the spec is not a valid job spec: {e}"))
                })?);
            }
            "component" => {
                let bytes = field.bytes().await.map_err(multipart_error)?;
                if bytes.is_empty() {
                    return Err(ApiError::bad_request("the component part is empty"));
                }
                sha256 = Some(store_component(&state, bytes).await?);
            }
            "component_sha256" => {
                let text = field.text().await.map_err(multipart_error)?;
                let text = text.trim().to_ascii_lowercase();
                if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ApiError::bad_request(
                        "component_sha256 must be 64 hexadecimal digits",
                    ));
                }
                sha256 = Some(text);
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown part `{other}`: expected spec, and component or component_sha256"
                )));
            }
        }
    }
    let mut spec = spec.ok_or_else(|| ApiError::bad_request("the `spec` part is missing"))?;
    let sha256 = sha256.ok_or_else(|| {
        ApiError::bad_request(
            "give the job's component: a `component` part (the .wasm) or `component_sha256`",
        )
    })?;
    let Some(component) = find_component(&state, &sha256).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no component with SHA-256 {sha256} was uploaded; send it as the `component` part"
            ),
        ));
    };
    if spec.on_done.is_some() && !state.config.allow_on_done {
        return Err(ApiError::bad_request(
            "on_done runs a shell command on the server; it is accepted only when the server runs with --allow-on-done (use notify instead)",
        ));
    }
    if let Some(root) = &state.config.data_root {
        spec.inputs = spec
            .inputs
            .iter()
            .map(|i| paths::input_under_root(root, i))
            .collect::<Result<_, _>>()?;
        spec.output = paths::under_root(root, &spec.output.to_string_lossy(), "output")?;
        if let Some(sink) = &spec.sink {
            spec.sink = Some(paths::sink_under_root(root, sink)?);
        }
    }
    spec.check()?;
    let runtime = state.config.runtime.clone();
    let db = state.config.db.clone();
    let root = state.config.data_root.clone();
    let submitted = blocking(move || {
        let job = runtime.load(&component).map_err(|e| {
            ApiError::bad_request(format!("the component is not a job mr can run: {e}"))
        })?;
        let mut request = spec.request(job)?;
        request.root = root;
        Ok(mr_exec::submit(&db, &request)?)
    })
    .await?;
    let status = if submitted.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(
            json!({ "id": submitted.id, "created": submitted.created, "component_sha256": sha256 }),
        ),
    ))
}

/// Runs `f` on tokio's blocking pool (it reads files, loads components or opens the store).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("a handler failed: {e}"),
        )
    })?
}

/// Anything else: 404, as JSON.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no such page or API: {}", uri.path()),
    )
}
