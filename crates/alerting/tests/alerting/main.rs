//! The alerting crate's integration tests (one binary): Alertmanager-style acceptance
//! scenarios on paused tokio time, decision and matching tables from upstream's tests,
//! persistence across restarts, and the API v2 over real HTTP (with the real amtool).

mod api;
mod common;
mod persistence;
mod scenarios;
mod tables;
