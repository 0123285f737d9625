//! End-to-end tests of the built `watchfire` binary: its command line, its HTTP server with
//! TLS and basic authentication, reloads over HTTP and by SIGHUP, and its self-metrics.
//!
//! They run as the `watchfire` crate's one integration-test binary, so Cargo builds the
//! binary first and passes its path in `CARGO_BIN_EXE_watchfire`.

mod alerting;
mod alertmanagers;
mod api;
mod api_diff;
mod backtest;
mod cli;
mod scrape;
mod server;
mod support;
mod ui;
