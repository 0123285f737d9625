//! Watchfire's HTTP server.
//!
//! It owns the listener and everything every endpoint shares: TLS and basic authentication
//! from an exporter-toolkit `web.config.yml` ([`auth`], [`tls`]), re-read when the file
//! changes, as upstream re-reads it per request; the lifecycle endpoints `/-/healthy`,
//! `/-/ready`, `/-/reload` and `/-/quit` ([`lifecycle`]); `/metrics` with the process'
//! self-metrics; route-prefix handling; gzip; `--web.cors.origin`; graceful shutdown
//! ([`server`]); and the embedded web UI ([`ui`]).
//!
//! The web crate sees the rest of Watchfire through traits ([`Lifecycle`]); the binary wires
//! concrete types in. It never touches storage or query code directly.

pub mod api;
pub mod auth;
pub mod lifecycle;
pub mod server;
pub mod tls;
pub mod ui;

pub use auth::WebConfigSource;
pub use lifecycle::Lifecycle;
pub use server::{Server, ServerOptions, bind_listener};

/// Errors from starting or running the HTTP server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        #[source]
        source: std::io::Error,
    },
    /// The web configuration file is invalid.
    #[error("web config: {0}")]
    WebConfig(#[from] watchfire_config::Error),
    /// TLS could not be set up from the web configuration.
    #[error("web config {path}: TLS: {message}")]
    Tls { path: String, message: String },
    /// Serving failed.
    #[error("HTTP server: {0}")]
    Io(#[from] std::io::Error),
}
