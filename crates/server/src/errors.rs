//! The JSON errors every API answers with: `{error, message}`, in the
//! protocol's own terms where it has them. Shared by every HTTP module.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use seatline_protocol::ApiError;

/// Request bodies larger than this get 413: no API takes more.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON body that could not be taken: 413 too large, 415 not declared as
/// JSON, 400 otherwise (`hint` says what to send).
pub(crate) fn json_rejection(rejection: JsonRejection, hint: &str) -> Response {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => payload_too_large(BODY_LIMIT),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => api_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupportedMediaType",
            "send Content-Type: application/json",
        ),
        _ => api_error(StatusCode::BAD_REQUEST, "badRequest", hint),
    }
}

/// A path that could not be taken (bad percent-encoding, say).
pub(crate) fn path_rejection(rejection: PathRejection) -> Response {
    api_error(StatusCode::BAD_REQUEST, "badPath", &rejection.body_text())
}

/// Every HTTP error: a status and a JSON body `{error, message}`.
pub fn api_error(status: StatusCode, error: &str, message: &str) -> Response {
    (
        status,
        Json(ApiError {
            error: error.to_string(),
            message: message.to_string(),
        }),
    )
        .into_response()
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!("request failed: {e}");
    api_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the server could not complete the request",
    )
}

pub(crate) fn payload_too_large(limit: usize) -> Response {
    let message = format!("the request body is over {} KiB", limit / 1024);
    api_error(StatusCode::PAYLOAD_TOO_LARGE, "payloadTooLarge", &message)
}
