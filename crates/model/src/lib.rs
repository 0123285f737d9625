//! The data model every other Watchfire crate shares.
//!
//! It owns [`Labels`] (a sorted, compact label set that is cheap to clone, hash and compare),
//! [`Matcher`] (the four PromQL/Alertmanager matcher kinds with Prometheus' regex anchoring),
//! [`Sample`] and the staleness-marker NaN, [`Duration`] in Prometheus' duration syntax, and
//! the float formatting that Prometheus' HTTP API and exposition output print.
//!
//! This crate is synchronous and small; it must never depend on tokio, an HTTP crate or any
//! other Watchfire crate.

mod duration;
mod error;
mod float;
mod labels;
mod matcher;
mod names;
mod quote;
mod sample;

pub use duration::Duration;
pub use error::Error;
pub use float::{format_api_float, format_go_float, format_plain_float, parse_go_float};
pub use labels::{Label, Labels, LabelsBuilder, METRIC_NAME};
pub use matcher::{MatchType, Matcher, anchored_regex};
pub use names::{is_valid_label_name, is_valid_legacy_label_name, is_valid_legacy_metric_name, is_valid_metric_name};
pub use quote::go_quote;
pub use sample::{STALE_NAN_BITS, Sample, Timestamp, is_stale_nan, stale_nan};
