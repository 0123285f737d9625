//! `/-/healthy`, `/-/ready`, `/-/reload` and `/-/quit`, answered as Prometheus answers them.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use tokio::sync::oneshot;

/// What the lifecycle endpoints need from the running process.
pub trait Lifecycle: Send + Sync + 'static {
    /// Whether startup has finished (storage open, configuration loaded).
    fn is_ready(&self) -> bool;
    /// Asks for the configuration to be reloaded; the answer arrives when the reload is done.
    fn request_reload(&self) -> oneshot::Receiver<Result<(), String>>;
    /// Asks the process to shut down gracefully.
    fn request_quit(&self);
}

#[derive(Clone)]
struct LifecycleState {
    lifecycle: Arc<dyn Lifecycle>,
    enabled: bool,
}

/// The lifecycle routes. `/-/reload` and `/-/quit` need `--web.enable-lifecycle`.
pub fn routes(lifecycle: Arc<dyn Lifecycle>, enable_lifecycle: bool) -> Router {
    let state = LifecycleState {
        lifecycle,
        enabled: enable_lifecycle,
    };
    Router::new()
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
        .route("/-/reload", axum::routing::post(reload).put(reload))
        .route("/-/quit", axum::routing::post(quit).put(quit))
        .with_state(state)
}

async fn healthy() -> &'static str {
    "Prometheus Server is Healthy.\n"
}

async fn ready(State(s): State<LifecycleState>) -> Response {
    if s.lifecycle.is_ready() {
        (StatusCode::OK, "Prometheus Server is Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response()
    }
}

fn disabled() -> Response {
    (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.").into_response()
}

async fn reload(State(s): State<LifecycleState>) -> Response {
    if !s.enabled {
        return disabled();
    }
    match s.lifecycle.request_reload().await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

async fn quit(State(s): State<LifecycleState>) -> Response {
    if !s.enabled {
        return disabled();
    }
    s.lifecycle.request_quit();
    (StatusCode::OK, "Requesting termination... Goodbye!").into_response()
}
