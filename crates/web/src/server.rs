//! The listener, connection handling (plain or TLS, HTTP/1.1 and HTTP/2), route prefix,
//! `/metrics`, HTTP self-metrics and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tracing::{debug, info, warn};

use crate::Error;
use crate::auth::{WebConfigSource, enforce};
use crate::lifecycle::{Lifecycle, routes as lifecycle_routes};

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish after shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Server settings from the command line.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// `--web.listen-address`, e.g. `0.0.0.0:9090`.
    pub listen_address: String,
    /// `--web.route-prefix`, normalised by [`normalize_route_prefix`]: empty for the root.
    pub route_prefix: String,
    /// `--web.enable-lifecycle`.
    pub enable_lifecycle: bool,
    /// `--web.cors.origin`, anchored (`^(?:…)$`): which `Origin`s the `/api/v1` endpoints
    /// answer with CORS headers. `None` answers none.
    pub cors_origin: Option<regex::Regex>,
}

/// Normalises a route prefix as upstream does: always a leading `/`, never a trailing one;
/// the root becomes the empty string so it can be prepended to paths.
pub fn normalize_route_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else if trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    }
}

#[derive(Clone)]
struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new("prometheus_http_requests_total", "Counter of HTTP requests."),
            &["code", "handler"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "prometheus_http_request_duration_seconds",
                "Histogram of latencies for HTTP requests.",
            )
            .buckets(vec![0.1, 0.2, 0.4, 1.0, 3.0, 8.0, 20.0, 60.0, 120.0]),
            &["handler"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(HttpMetrics { requests, duration })
    }
}

async fn count_requests(State(m): State<HttpMetrics>, req: Request, next: Next) -> Response {
    let handler = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "other".to_owned());
    let start = Instant::now();
    let resp = next.run(req).await;
    m.duration
        .with_label_values(&[&handler])
        .observe(start.elapsed().as_secs_f64());
    m.requests.with_label_values(&[resp.status().as_str(), &handler]).inc();
    resp
}

async fn metrics(State(registry): State<Registry>) -> Response {
    let mut buf = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&registry.gather(), &mut buf) {
        Ok(()) => ([(header::CONTENT_TYPE, encoder.format_type().to_owned())], buf).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("error encoding metrics: {e}\n"),
        )
            .into_response(),
    }
}

/// `--web.cors.origin` as upstream applies it: to every `/api/v1` response of a request with
/// an `Origin` header, and an `OPTIONS` answer for every `/api/v1` path.
#[derive(Debug)]
struct Cors {
    api_prefix: String,
    origin: Option<regex::Regex>,
}

async fn cors_headers(State(cors): State<Arc<Cors>>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with(&cors.api_prefix) {
        return next.run(req).await;
    }
    let origin = req.headers().get(header::ORIGIN).cloned();
    let mut resp = if req.method() == http::Method::OPTIONS {
        (
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"success","data":null}"#,
        )
            .into_response()
    } else {
        next.run(req).await
    };
    let (Some(origin), Some(allowed)) = (origin, &cors.origin) else {
        return resp;
    };
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Accept, Authorization, Content-Type, Origin"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Date"));
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if allowed.as_str() == "^(?:.*)$" {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    } else if origin.to_str().is_ok_and(|o| allowed.is_match(o)) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    resp
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_owned())]).into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

/// Binds the listen address, with the address in the error.
pub async fn bind_listener(address: &str) -> Result<TcpListener, Error> {
    TcpListener::bind(address).await.map_err(|source| Error::Bind {
        address: address.to_owned(),
        source,
    })
}

/// A bound, not yet running HTTP server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    app: Router,
    web: Arc<WebConfigSource>,
}

impl Server {
    /// Binds the listen address and assembles the routes: the lifecycle endpoints, `/metrics`
    /// and `api` (the API routers of other crates), all under the route prefix, all behind the
    /// web configuration's authentication.
    pub async fn bind(
        options: &ServerOptions,
        web: Arc<WebConfigSource>,
        lifecycle: Arc<dyn Lifecycle>,
        registry: Registry,
        api: Router,
    ) -> Result<Self, Error> {
        let listener = bind_listener(&options.listen_address).await?;
        Self::from_listener(listener, options, web, lifecycle, registry, api)
    }

    /// Like [`Server::bind`] with a listener bound earlier (so the caller knows the port
    /// before it builds the rest of the process).
    pub fn from_listener(
        listener: TcpListener,
        options: &ServerOptions,
        web: Arc<WebConfigSource>,
        lifecycle: Arc<dyn Lifecycle>,
        registry: Registry,
        api: Router,
    ) -> Result<Self, Error> {
        let http_metrics = HttpMetrics::new(&registry).map_err(|e| Error::Io(std::io::Error::other(e)))?;
        let prefix = normalize_route_prefix(&options.route_prefix);
        let cors = Cors {
            api_prefix: format!("{prefix}/api/v1/"),
            origin: options.cors_origin.clone(),
        };
        let routes = Router::new()
            .merge(lifecycle_routes(lifecycle, options.enable_lifecycle))
            .route("/metrics", get(metrics).with_state(registry))
            .merge(api)
            .merge(crate::ui::router(&prefix))
            .layer(from_fn_with_state(http_metrics, count_requests));
        let app = if prefix.is_empty() {
            routes
        } else {
            // `/prom/` is the UI's home as `/prom` is; `/` points at the prefix, as upstream.
            let home = format!("{prefix}/query");
            let root = prefix.clone();
            Router::new()
                .nest(&prefix, routes)
                .route(&format!("{prefix}/"), get(move || async move { redirect(&home) }))
                .route("/", get(move || async move { redirect(&root) }))
        };
        // The fallback is set before the auth layer so that unknown paths are authenticated too.
        // Responses are gzipped for clients that accept it, as upstream does for the API,
        // /federate and /metrics; bodies already encoded (snappy remote read, the UI's
        // pre-gzipped assets) are left alone.
        let app = app
            .fallback(not_found)
            .layer(from_fn_with_state(Arc::new(cors), cors_headers))
            .layer(CompressionLayer::new().gzip(true))
            .layer(from_fn_with_state(web.clone(), enforce));
        Ok(Server { listener, app, web })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets open connections finish for a grace period.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let Server { listener, app, web } = self;
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        // Usually EMFILE: back off briefly rather than spin.
                        warn!(err = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let tls = web.tls();
            let service = TowerToHyperService::new(app.clone());
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let builder = auto::Builder::new(TokioExecutor::new());
                let result = match tls {
                    Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => {
                            watcher
                                .watch(
                                    builder
                                        .serve_connection_with_upgrades(TokioIo::new(tls_stream), service)
                                        .into_owned(),
                                )
                                .await
                        }
                        Ok(Err(e)) => {
                            debug!(peer = %peer, err = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            debug!(peer = %peer, "TLS handshake timed out");
                            return;
                        }
                    },
                    None => {
                        watcher
                            .watch(
                                builder
                                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                                    .into_owned(),
                            )
                            .await
                    }
                };
                if let Err(e) = result {
                    debug!(peer = %peer, err = %e, "connection ended with an error");
                }
            });
        }
        info!("HTTP server stopping; waiting for open connections");
        if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
            warn!("open HTTP connections did not finish within the grace period");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_route_prefix;

    #[test]
    fn route_prefixes() {
        assert_eq!(normalize_route_prefix("/"), "");
        assert_eq!(normalize_route_prefix(""), "");
        assert_eq!(normalize_route_prefix("/prom/"), "/prom");
        assert_eq!(normalize_route_prefix("prom"), "/prom");
    }
}
