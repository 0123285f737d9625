//! Watchfire's rules engine: recording and alerting rules evaluated as Prometheus'
//! `rules/` package does.
//!
//! * [`Group`] holds a rule group and its state; [`Group::eval`] evaluates every rule in order
//!   at an explicit timestamp (the query time is `ts - query_offset`), appends recording rule
//!   results and the `ALERTS`/`ALERTS_FOR_STATE` series, writes stale markers for series that
//!   disappeared, runs the alert state machine of `rules/alerting.go` and hands the alerts
//!   that need sending to a [`Sender`].
//! * [`Sender`] receives alerts as upstream's `SendAlerts` builds them; [`AlertingSender`]
//!   posts them to the in-process Alertmanager, [`HttpSender`] to external ones.
//! * [`Manager`] loads rule files, runs each group on its own tokio task at upstream's stable
//!   per-group offset, applies reloads keeping the state of unchanged rules, restores the
//!   `for` state after a restart and keeps the `prometheus_rule_*` metrics.
//! * [`api::router`] serves `/rules` and `/alerts` (mounted under `/api/v1`).
//! * [`unittest::run_files`] is `promtool test rules`.
//!
//! Wiring in the server:
//!
//! ```ignore
//! let sender = SharedSender::new(Some(Arc::new(senders_for_config(&config, Some(alerting), client))));
//! let mut opts = ManagerOptions::new(storage, engine);
//! opts.sender = Some(Arc::new(sender.clone()));
//! opts.external_url = external_url;
//! opts.registry = Some(registry);
//! let manager = Manager::new(opts)?;
//! manager.apply_config(&config, config_dir).await?; // also on every reload
//! manager.run();                                    // once storage is ready
//! let app = app.nest("/api/v1", watchfire_rules::api::router(manager.clone()));
//! // on reload: sender.set(Some(Arc::new(senders_for_config(&new, Some(alerting), client))));
//! ```

pub mod api;
mod group;
mod manager;
mod metrics;
mod rule;
mod sender;
pub mod unittest;

pub use group::{EvalContext, Group, GroupOptions, RuleStorage};
pub use manager::load_groups;
pub use manager::{LoadError, Manager, ManagerOptions};
pub use metrics::RuleMetrics;
pub use rule::{Alert, AlertState, AlertingRule, Health, RecordingRule, Rule};
pub use sender::{
    AlertingSender, AlertmanagerTarget, FanoutSender, HttpSender, OutgoingAlert, RecordingSender, Sender, SharedSender,
    relabel_alerts, senders_for_config, table_link_for_expression,
};

#[cfg(test)]
mod manager_tests;
#[cfg(test)]
mod tests;
