//! Service discovery: where scrape targets come from.
//!
//! This crate owns [`TargetGroup`] (targets sharing labels, named by a source, as upstream's
//! `discovery/targetgroup`), the [`Provider`] interface every mechanism implements, the
//! mechanisms Watchfire supports ([`static_targets`], [`file`], [`http`], [`dns`]), the HTTP
//! client built from a config's HTTP client fields ([`client`], shared with the scrape crate),
//! and the [`Manager`] that runs the providers of each scrape job and publishes every job's
//! merged groups. Self-metrics keep upstream's `prometheus_sd_*` names.
//!
//! A provider sends its *complete* current list of groups each time it changes (not
//! upstream's per-source deltas); the manager keeps the latest list of each provider and
//! publishes, at most once per update interval, a map from job name to all its groups.
//!
//! Discovery is async (tokio) and depends on the model and config crates only among
//! Watchfire crates; it must never depend on scrape, storage or the binary.

pub mod client;
pub mod dns;
pub mod file;
pub mod http;
mod manager;
pub mod metrics;
pub mod static_targets;

use std::future::Future;
use std::pin::Pin;

use serde::Deserialize;
use watchfire_model::{Labels, LabelsBuilder};

pub use manager::{Manager, Options, TargetSets};

/// The label holding a target's address (`host:port`).
pub const ADDRESS_LABEL: &str = "__address__";

/// A set of targets sharing labels, from one source of one provider.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetGroup {
    /// Identifies the group within its provider (`0` for the first static group,
    /// `<file>:<index>` for file SD, `<url>:<index>` for HTTP SD).
    pub source: String,
    /// One label set per target; each has at least `__address__`.
    pub targets: Vec<Labels>,
    /// Labels every target of the group gets unless the target sets the label itself.
    pub labels: Labels,
}

/// A group as written in file SD files and HTTP SD responses: the `static_configs` format.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: Option<std::collections::BTreeMap<String, String>>,
}

impl TargetGroup {
    /// A group of `targets` (addresses) sharing `labels`.
    pub fn new(source: impl Into<String>, targets: &[String], labels: Labels) -> Self {
        TargetGroup {
            source: source.into(),
            targets: targets
                .iter()
                .map(|t| Labels::from_pairs([(ADDRESS_LABEL, t.as_str())]))
                .collect(),
            labels,
        }
    }

    /// Parses a JSON list of groups. Unknown keys and `null` items are errors, as upstream.
    pub fn parse_json_list(body: &[u8]) -> Result<Vec<WrittenGroupList>, String> {
        let list: Vec<Option<WrittenGroup>> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        written_list(list)
    }

    /// Parses a YAML list of groups (file SD's `.yml`/`.yaml` files); `path` names the file in
    /// errors.
    pub fn parse_yaml_list(src: &str, path: &std::path::Path) -> Result<Vec<WrittenGroupList>, String> {
        if src.trim().is_empty() {
            return Ok(Vec::new());
        }
        let list: Option<Vec<Option<WrittenGroup>>> =
            watchfire_config::yaml::from_str(src, path).map_err(|e| e.to_string())?;
        written_list(list.unwrap_or_default())
    }
}

/// One parsed group before it is given a source and the provider's meta label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenGroupList {
    /// Target addresses.
    pub targets: Vec<String>,
    /// Group labels, in name order.
    pub labels: Vec<(String, String)>,
}

impl WrittenGroupList {
    /// The group with its source, plus `meta` (e.g. `__meta_filepath`) set on the group labels.
    pub fn into_group(self, source: String, meta: (&str, &str)) -> TargetGroup {
        let mut b = LabelsBuilder::new();
        for (n, v) in &self.labels {
            b.set(n, v);
        }
        b.set(meta.0, meta.1);
        TargetGroup::new(source, &self.targets, b.build())
    }
}

fn written_list(list: Vec<Option<WrittenGroup>>) -> Result<Vec<WrittenGroupList>, String> {
    list.into_iter()
        .map(|g| {
            let g = g.ok_or_else(|| "nil target group item found".to_owned())?;
            let labels: Vec<(String, String)> = g.labels.unwrap_or_default().into_iter().collect();
            if let Some((name, _)) = labels.iter().find(|(n, _)| n.is_empty()) {
                return Err(format!("{name:?} is not a valid label name"));
            }
            Ok(WrittenGroupList {
                targets: g.targets,
                labels,
            })
        })
        .collect()
}

/// Errors of discovery.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP client settings cannot be turned into a client.
    #[error("HTTP client for {what}: {message}")]
    HttpClient { what: String, message: String },
    /// A self-metric could not be registered (usually: registered twice).
    #[error("registering metric: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Called outside a tokio runtime.
    #[error("discovery must run inside a tokio runtime")]
    NoRuntime,
}

/// A boxed future, as providers return from [`Provider::run`].
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Where a provider sends its groups.
pub type GroupSender = tokio::sync::mpsc::Sender<Vec<TargetGroup>>;

/// A discovery mechanism.
pub trait Provider: Send + 'static {
    /// Runs until the receiving side of `tx` is dropped (or the task is aborted), sending the
    /// provider's complete list of groups whenever it changes, starting with the first list
    /// it knows.
    fn run(self: Box<Self>, tx: GroupSender) -> BoxFuture<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_static_configs_format() {
        let body = br#"[{"targets": ["a:1", "b:2"], "labels": {"env": "prod"}}, {"targets": []}]"#;
        let groups = TargetGroup::parse_json_list(body).unwrap();
        assert_eq!(groups.len(), 2);
        let g = groups[0]
            .clone()
            .into_group("f:0".into(), ("__meta_filepath", "/x.json"));
        assert_eq!(g.targets[1].get(ADDRESS_LABEL), Some("b:2"));
        assert_eq!(g.labels.to_string(), r#"{__meta_filepath="/x.json", env="prod"}"#);
        for bad in [
            &br#"[null]"#[..],
            br#"[{"targets": [], "extra": 1}]"#,
            br#"{"targets": []}"#,
            b"[{",
        ] {
            assert!(
                TargetGroup::parse_json_list(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            TargetGroup::parse_json_list(br#"[{"targets": ["a"], "labels": {"": "x"}}]"#).unwrap_err(),
            "\"\" is not a valid label name"
        );
        let y = TargetGroup::parse_yaml_list("- targets: [a:1]\n  labels: {x: y}\n", "t.yml".as_ref()).unwrap();
        assert_eq!(y[0].targets, ["a:1"]);
        assert!(TargetGroup::parse_yaml_list("- targets: [a:1]\n  bogus: 1\n", "t.yml".as_ref()).is_err());
        assert!(TargetGroup::parse_yaml_list("", "t.yml".as_ref()).unwrap().is_empty());
    }
}
