//! The API envelope and the one place where errors become HTTP statuses.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;
use serde_json::json;

/// Upstream's error types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    BadData,
    Execution,
    Canceled,
    Timeout,
    Internal,
    Unavailable,
    NotFound,
    NotAcceptable,
}

impl ErrorType {
    /// The `errorType` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Canceled => "canceled",
            ErrorType::Timeout => "timeout",
            ErrorType::Internal => "internal",
            ErrorType::Unavailable => "unavailable",
            ErrorType::NotFound => "not_found",
            ErrorType::NotAcceptable => "not_acceptable",
        }
    }

    /// The HTTP status upstream answers with (`getDefaultErrorCode`).
    pub fn status(self) -> StatusCode {
        match self {
            ErrorType::BadData => StatusCode::BAD_REQUEST,
            ErrorType::Execution => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorType::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            ErrorType::Timeout | ErrorType::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorType::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorType::NotFound => StatusCode::NOT_FOUND,
            ErrorType::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
        }
    }
}

/// An API error: its type and message.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub kind: ErrorType,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    pub fn bad_data(message: impl Into<String>) -> Self {
        Self::new(ErrorType::BadData, message)
    }

    /// Storage errors are internal unless the store is closed (then unavailable).
    pub fn from_storage(e: watchfire_storage::Error) -> Self {
        match e {
            watchfire_storage::Error::Closed => Self::new(ErrorType::Unavailable, e.to_string()),
            other => Self::new(ErrorType::Internal, other.to_string()),
        }
    }

    /// The error envelope with its status code.
    pub fn into_response(self) -> Response {
        let body = json!({ "status": "error", "errorType": self.kind.as_str(), "error": self.message });
        (self.kind.status(), Json(body)).into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        ApiError::into_response(self)
    }
}

/// `{"status":"success","data":...}`.
pub fn success<T: Serialize>(data: T) -> Response {
    Json(json!({ "status": "success", "data": data })).into_response()
}

/// The success envelope with warnings, which upstream omits when there are none.
pub fn success_with_warnings<T: Serialize>(data: T, warnings: Vec<String>) -> Response {
    if warnings.is_empty() {
        return success(data);
    }
    Json(json!({ "status": "success", "data": data, "warnings": warnings })).into_response()
}
