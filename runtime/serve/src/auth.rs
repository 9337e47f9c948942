//! The bearer token: required for every mutating call, and for reads unless `--public-read`.
//! Browsers' `EventSource` cannot send headers, so a GET may carry the token as
//! `?access_token=` instead.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// Refuses a request without the token when the server has one and the call needs it.
pub async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &state.config.token else {
        return next.run(request).await;
    };
    let read = matches!(*request.method(), Method::GET | Method::HEAD);
    if read && state.config.public_read {
        return next.run(request).await;
    }
    let from_header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let from_query = read
        .then(|| {
            request.uri().query().and_then(|q| {
                q.split('&')
                    .find_map(|kv| kv.strip_prefix("access_token="))
                    .map(str::to_owned)
            })
        })
        .flatten();
    let given = from_header.or(from_query);
    if given
        .as_deref()
        .is_some_and(|g| same(g.as_bytes(), token.as_bytes()))
    {
        return next.run(request).await;
    }
    // Read (and drop) what the client is sending before answering: a client that does not
    // wait for `100 Continue` would otherwise see its upload cut off (a broken pipe) instead
    // of the 401. Bounded by the upload limit, like any accepted upload.
    discard(request.into_body(), state.config.max_upload).await;
    match given {
        Some(_) => {
            ApiError::new(StatusCode::UNAUTHORIZED, "the bearer token is wrong").into_response()
        }
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            if read {
                "this server needs a bearer token for reads (Authorization: Bearer TOKEN)"
            } else {
                "this call changes jobs and needs the bearer token (Authorization: Bearer TOKEN)"
            },
        )
        .into_response(),
    }
}

/// Refuses an upload whose announced length is over `--max-upload` with a 413, after reading
/// (and dropping) what the client sends, so that the client sees the 413 and not a broken pipe
/// (an HTTP client that does not wait for `100 Continue` writes its whole body first). At most
/// 64 MiB past the limit are read; a larger upload is cut off.
pub async fn refuse_oversized(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.config.max_upload;
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(len) if len > limit => {
            discard(request.into_body(), len.min(limit.saturating_add(64 << 20))).await;
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the upload is {len} bytes, over this server's limit of {limit} bytes \
                     (mr-host serve --max-upload)"
                ),
            )
            .into_response()
        }
        _ => next.run(request).await,
    }
}

async fn discard(body: axum::body::Body, limit: u64) {
    use futures_util::StreamExt;
    let mut chunks = body.into_data_stream();
    let mut seen = 0u64;
    while let Some(Ok(chunk)) = chunks.next().await {
        seen += chunk.len() as u64;
        if seen > limit {
            break;
        }
    }
}

/// Compares in time that does not depend on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
