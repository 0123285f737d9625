//! `POST /receivers/{name}/test` (the binary mounts it under `/api/watchfire`): sends
//! [`example_group`](crate::example_group) through every integration of a receiver of the
//! running configuration, once each, without retries, and answers per integration:
//!
//! ```json
//! {"receiver": "team-x", "status": "failure", "integrations": [
//!   {"integration": "webhook", "index": 0, "status": "success"},
//!   {"integration": "slack", "index": 0, "status": "failure",
//!    "error": "slack channel \"#x\": unexpected status code 404: no_service",
//!    "retryable": false, "reason": "clientError"}]}
//! ```
//!
//! `status` is `success` when every integration succeeded. A receiver without integrations
//! answers one `none` integration that succeeded (nothing is sent). An unknown receiver is a
//! 404 with the message as a JSON string, as the other Watchfire and Alertmanager API errors.
//! Errors never contain secrets: every integration redacts its URLs and tokens.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::{Notifiers, TEST_TIMEOUT, TestResult, example_group};

/// The route, relative to where it is mounted (`/api/watchfire`).
pub fn router(notifiers: Arc<Notifiers>) -> Router {
    Router::new()
        .route("/receivers/{name}/test", post(test_receiver))
        .with_state(notifiers)
}

/// The JSON answer for a receiver's results.
pub fn results_json(receiver: &str, results: &[TestResult]) -> Value {
    let ok = results.iter().all(|r| r.result.is_ok());
    let integrations: Vec<Value> = results
        .iter()
        .map(|r| match &r.result {
            Ok(()) => json!({"integration": r.integration, "index": r.index, "status": "success"}),
            Err(e) => json!({
                "integration": r.integration,
                "index": r.index,
                "status": "failure",
                "error": e.message,
                "retryable": e.retryable,
                "reason": e.reason.as_str(),
            }),
        })
        .collect();
    json!({
        "receiver": receiver,
        "status": if ok { "success" } else { "failure" },
        "integrations": integrations,
    })
}

async fn test_receiver(State(n): State<Arc<Notifiers>>, Path(name): Path<String>) -> Response {
    let group = example_group(&name, jiff::Timestamp::now());
    let mut res = match n.test_receiver(&name, &group, TEST_TIMEOUT).await {
        Some(results) => axum::Json(results_json(&name, &results)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(Value::String(format!("receiver {name:?} not found"))),
        )
            .into_response(),
    };
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
