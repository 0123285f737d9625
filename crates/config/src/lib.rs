//! Configuration files: types, defaults and validation.
//!
//! Watchfire reads the files Prometheus and Alertmanager users already have, unmodified:
//! `prometheus.yml` ([`prometheus`]), rule files ([`rules`]), `alertmanager.yml`
//! ([`alertmanager`]) and the exporter-toolkit `web.config.yml` ([`web`]). Struct fields mirror
//! the YAML keys exactly, and their doc comments are the user documentation. Unknown keys are
//! errors, as upstream's strict unmarshalling makes them. Every error names the file, line and
//! column ([`Error`]). Secrets are [`Secret`] values that print as `<secret>`.
//!
//! This crate is synchronous and must not depend on tokio or an HTTP crate.

pub mod alertmanager;
pub mod error;
pub mod http;
pub mod prometheus;
pub mod rules;
pub mod secret;
pub mod web;
pub mod yaml;

pub use error::{Error, Result};
pub use secret::Secret;
