//! API errors: every 4xx and 5xx answer is JSON, `{"error": "...", "status": N}`, with the
//! same message the command line would print.

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mr_exec::ExecError;
use mr_store::StoreError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, in words.
    pub message: String,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!("{}", self.message);
        }
        let mut response = (
            self.status,
            Json(serde_json::json!({ "error": self.message, "status": self.status.as_u16() })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<ExecError> for ApiError {
    fn from(e: ExecError) -> Self {
        let status = match &e {
            ExecError::Store(StoreError::NoSuchJob { .. } | StoreError::NoSuchPipeline { .. }) => {
                StatusCode::NOT_FOUND
            }
            ExecError::Store(_)
            | ExecError::Output { .. }
            | ExecError::WorkerPanicked(_)
            | ExecError::PlanUnreadable { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ExecError::OutputTaken { .. }
            | ExecError::OutputNotEmpty { .. }
            | ExecError::SettingChanged { .. }
            | ExecError::Unfinished { .. } => StatusCode::CONFLICT,
            // The request's own settings, paths, inputs or component.
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, mr_exec::error_chain(&e))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ExecError::Store(e).into()
    }
}

/// Makes every error answer JSON: axum's own rejections (a malformed path or query, a body
/// that is not multipart, a body over the limit), 404 for unknown routes and 405 are plain
/// text; they get the same JSON shape as the API's own errors, keeping their words.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned()
    } else {
        text
    };
    let mut answer = ApiError::new(status, message).into_response();
    // Keep what the original answer said about the method or authentication.
    for name in [header::ALLOW, header::WWW_AUTHENTICATE] {
        if let Some(v) = parts.headers.get(&name) {
            answer.headers_mut().insert(name, v.clone());
        }
    }
    let _: &Body = answer.body();
    answer
}
