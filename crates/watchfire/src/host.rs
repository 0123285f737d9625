//! `/metrics/host`: the built-in host collector served as a scrape target.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use watchfire_hostmetrics::{HostCollector, Paths};

/// The route, with one collector shared by all requests (it keeps the previous CPU reading).
pub fn router() -> Router {
    let collector = Arc::new(Mutex::new(HostCollector::new(&Paths::default())));
    Router::new().route("/metrics/host", get(move || serve(collector.clone())))
}

async fn serve(collector: Arc<Mutex<HostCollector>>) -> Response {
    // Reading /proc and /sys blocks (and a hung mount may block for seconds): off the async threads.
    let result = tokio::task::spawn_blocking(move || {
        let mut buf = Vec::with_capacity(32 * 1024);
        let mut c = collector.lock().unwrap_or_else(|e| e.into_inner());
        c.write_text(&mut buf).map(|()| buf)
    })
    .await;
    match result {
        Ok(Ok(body)) => ([(header::CONTENT_TYPE, watchfire_textparse::TEXT_CONTENT_TYPE)], body).into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("error writing host metrics: {e}\n"),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("host collector failed: {e}\n"),
        )
            .into_response(),
    }
}
