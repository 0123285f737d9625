//! Watchfire's rules engine: recording and alerting rules evaluated as Prometheus'
//! `rules/` package does.
//!
//! * [`Group`] holds a rule group and its state; [`Group::eval`] evaluates every rule in order
//!   at an explicit timestamp (the query time is `ts - query_offset`), appends recording rule
//!   results and the `ALERTS`/`ALERTS_FOR_STATE` series, writes stale markers for series that
//!   disappeared, runs the alert state machine of `rules/alerting.go` and hands the alerts
//!   that need sending to a [`Sender`].
//! * [`Sender`] receives alerts as upstream's `SendAlerts` builds them; [`AlertingSender`]
//!   posts them to the in-process Alertmanager, [`HttpSender`] to the external ones of
//!   `alerting.alertmanagers`, found with `crates/discovery`'s providers (upstream's
//!   `notifier` package).
//! * [`Manager`] loads rule files, runs each group on its own tokio task at upstream's stable
//!   per-group offset, applies reloads keeping the state of unchanged rules, restores the
//!   `for` state after a restart and keeps the `prometheus_rule_*` metrics.
//! * [`load_rule_file`] reads and checks a rule file completely, expression errors located at
//!   their line and column inside the file.
//! * [`backtest::run`] replays alerting rules over stored history with the same [`Group`]
//!   code, reading through a write-protecting overlay.
//! * [`api::router`] serves `/rules`, `/alerts` and `/alertmanagers` (mounted under
//!   `/api/v1`); [`api::watchfire_router`] serves `POST /rules/backtest` (under
//!   `/api/watchfire`).
//! * [`unittest::run_files`] is `promtool test rules`.
//!
//! Wiring in the server:
//!
//! ```ignore
//! let sender = SharedSender::new(Some(Arc::new(senders_for_config(&config, &config_dir, Some(alerting)))));
//! let mut opts = ManagerOptions::new(storage, engine);
//! opts.sender = Some(Arc::new(sender.clone()));
//! opts.external_url = external_url;
//! opts.registry = Some(registry);
//! let manager = Manager::new(opts)?;
//! manager.apply_config(&config, config_dir).await?; // also on every reload
//! manager.run();                                    // once storage is ready
//! let app = app
//!     .nest("/api/v1", watchfire_rules::api::router(manager.clone()))
//!     .nest("/api/watchfire", watchfire_rules::api::watchfire_router(manager.clone()));
//! // on reload: sender.set(Some(Arc::new(senders_for_config(&new, &config_dir, Some(alerting)))));
//! ```

pub mod api;
pub mod backtest;
mod group;
mod manager;
mod metrics;
mod notifier;
mod rule;
mod sender;
pub mod unittest;
mod validate;

pub use group::{EvalContext, Group, GroupOptions, RuleStorage};
pub use manager::load_groups;
pub use manager::{LoadError, Manager, ManagerOptions};
pub use metrics::RuleMetrics;
pub use notifier::{HttpSender, resolve_alertmanagers};
pub use rule::{Alert, AlertState, AlertingRule, Health, RecordingRule, Rule};
pub use sender::{
    AlertingSender, DiscoveredAlertmanagers, FanoutSender, OutgoingAlert, RecordingSender, Sender, SharedSender,
    relabel_alerts, senders_for_config, table_link_for_expression,
};
pub use validate::{check_template, load_rule_file, parse_rule_file};
#[cfg(test)]
mod backtest_tests;
#[cfg(test)]
mod manager_tests;
#[cfg(test)]
mod notifier_tests;
#[cfg(test)]
mod tests;
