//! Sending alerts (upstream `rules/manager.go SendAlerts`); external Alertmanagers are in
//! [`crate::notifier`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use watchfire_config::prometheus::RelabelConfig;
use watchfire_model::{Labels, LabelsBuilder, Timestamp};

use crate::notifier::HttpSender;
use crate::rule::Alert;

/// An alert as sent to Alertmanager. Times are ms since the epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct OutgoingAlert {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    /// `FiredAt`.
    pub starts_at: Option<Timestamp>,
    /// `ResolvedAt` for resolved alerts, `ValidUntil` otherwise.
    pub ends_at: Option<Timestamp>,
    pub generator_url: String,
}

impl OutgoingAlert {
    /// Upstream `SendAlerts`' conversion; `generator_url` is the rule's table link.
    pub fn from_alert(a: &Alert, generator_url: &str) -> OutgoingAlert {
        OutgoingAlert {
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at: a.fired_at,
            ends_at: a.resolved_at.or(a.valid_until),
            generator_url: generator_url.to_owned(),
        }
    }

    /// The alert as the in-process Alertmanager takes it.
    pub fn to_postable(&self) -> watchfire_alerting::PostableAlert {
        watchfire_alerting::PostableAlert {
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            starts_at: self.starts_at.and_then(ms_to_jiff),
            ends_at: self.ends_at.and_then(ms_to_jiff),
            generator_url: self.generator_url.clone(),
        }
    }

    /// The Alertmanager API v2 JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        let labels: BTreeMap<&str, &str> = self.labels.iter().map(|l| (l.name, l.value)).collect();
        m.insert("labels".into(), serde_json::json!(labels));
        m.insert("annotations".into(), serde_json::json!(self.annotations));
        if let Some(t) = self.starts_at.and_then(ms_to_jiff) {
            m.insert("startsAt".into(), serde_json::Value::String(format_time(t)));
        }
        if let Some(t) = self.ends_at.and_then(ms_to_jiff) {
            m.insert("endsAt".into(), serde_json::Value::String(format_time(t)));
        }
        m.insert(
            "generatorURL".into(),
            serde_json::Value::String(self.generator_url.clone()),
        );
        serde_json::Value::Object(m)
    }
}

fn ms_to_jiff(ms: Timestamp) -> Option<jiff::Timestamp> {
    jiff::Timestamp::from_millisecond(ms).ok()
}

/// RFC 3339 with milliseconds, as Alertmanager's API prints times.
pub(crate) fn format_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Upstream `strutil.TableLinkForExpression`.
pub fn table_link_for_expression(expr: &str) -> String {
    let mut escaped = String::new();
    for b in expr.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => escaped.push(b as char),
            b' ' => escaped.push('+'),
            _ => escaped.push_str(&format!("%{b:02X}")),
        }
    }
    format!("/graph?g0.expr={escaped}&g0.tab=1")
}

/// Where evaluated alerts go (upstream's notifier `Send`).
pub trait Sender: Send + Sync {
    fn send(&self, alerts: Vec<OutgoingAlert>);

    /// The external Alertmanagers this sender posts to, and those relabeling dropped.
    fn alertmanagers(&self) -> DiscoveredAlertmanagers {
        DiscoveredAlertmanagers::default()
    }
}

/// The URLs of external Alertmanagers (`/api/v1/alertmanagers`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoveredAlertmanagers {
    /// Where alerts are POSTed.
    pub active: Vec<String>,
    /// Discovered, then dropped by `relabel_configs` (their URLs before relabeling).
    pub dropped: Vec<String>,
}

/// The notifier's preparation: external labels are added where missing, then
/// `alert_relabel_configs` applied; alerts relabeled away are dropped.
pub fn relabel_alerts(
    alerts: Vec<OutgoingAlert>,
    external_labels: &Labels,
    relabel: &[RelabelConfig],
) -> Vec<OutgoingAlert> {
    alerts
        .into_iter()
        .filter_map(|mut a| {
            let mut b = LabelsBuilder::from(&a.labels);
            for l in external_labels {
                if b.get(l.name).is_none_or(str::is_empty) {
                    b.set(l.name, l.value);
                }
            }
            let labels = RelabelConfig::process(&b.build(), relabel)?;
            if labels.is_empty() {
                return None;
            }
            a.labels = labels;
            Some(a)
        })
        .collect()
}

/// Sends to the in-process Alertmanager.
#[derive(Clone)]
pub struct AlertingSender {
    alerting: Arc<watchfire_alerting::Alerting>,
    external_labels: Labels,
    relabel: Vec<RelabelConfig>,
}

impl std::fmt::Debug for AlertingSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertingSender")
            .field("external_labels", &self.external_labels)
            .finish_non_exhaustive()
    }
}

impl AlertingSender {
    /// `external_labels` from `global`, `relabel` from `alerting.alert_relabel_configs`.
    pub fn new(
        alerting: Arc<watchfire_alerting::Alerting>,
        external_labels: Labels,
        relabel: Vec<RelabelConfig>,
    ) -> AlertingSender {
        AlertingSender {
            alerting,
            external_labels,
            relabel,
        }
    }
}

impl Sender for AlertingSender {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        let alerts = relabel_alerts(alerts, &self.external_labels, &self.relabel);
        if alerts.is_empty() {
            return;
        }
        if let Err(errors) = self
            .alerting
            .put_alerts(alerts.iter().map(OutgoingAlert::to_postable).collect())
        {
            for e in errors {
                tracing::warn!(err = %e, "in-process Alertmanager rejected an alert");
            }
        }
    }
}

/// A sender that keeps what it is given, for tests and tools.
#[derive(Clone, Debug, Default)]
pub struct RecordingSender {
    pub sent: Arc<Mutex<Vec<OutgoingAlert>>>,
}

impl RecordingSender {
    /// Takes everything sent so far.
    pub fn take(&self) -> Vec<OutgoingAlert> {
        std::mem::take(&mut *self.sent.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Sender for RecordingSender {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).extend(alerts);
    }
}

/// A sender that can be replaced at runtime (on configuration reload), forwarding to the
/// current one; groups keep a handle to this and see the change at once.
#[derive(Clone, Default)]
pub struct SharedSender {
    current: Arc<std::sync::RwLock<Option<Arc<dyn Sender>>>>,
}

impl std::fmt::Debug for SharedSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSender").finish_non_exhaustive()
    }
}

impl SharedSender {
    pub fn new(sender: Option<Arc<dyn Sender>>) -> SharedSender {
        SharedSender {
            current: Arc::new(std::sync::RwLock::new(sender)),
        }
    }

    /// Replaces the sender; `None` drops alerts.
    pub fn set(&self, sender: Option<Arc<dyn Sender>>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = sender;
    }
}

impl Sender for SharedSender {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(s) = current {
            s.send(alerts);
        }
    }

    fn alertmanagers(&self) -> DiscoveredAlertmanagers {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner()).clone();
        current.map(|s| s.alertmanagers()).unwrap_or_default()
    }
}

/// Sends to several senders (the in-process Alertmanager and external ones).
#[derive(Clone, Default)]
pub struct FanoutSender(pub Vec<Arc<dyn Sender>>);

impl std::fmt::Debug for FanoutSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FanoutSender({} senders)", self.0.len())
    }
}

impl Sender for FanoutSender {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        if let Some((last, rest)) = self.0.split_last() {
            for s in rest {
                s.send(alerts.clone());
            }
            last.send(alerts);
        }
    }

    fn alertmanagers(&self) -> DiscoveredAlertmanagers {
        let mut out = DiscoveredAlertmanagers::default();
        for s in &self.0 {
            let more = s.alertmanagers();
            out.active.extend(more.active);
            out.dropped.extend(more.dropped);
        }
        out
    }
}

/// The senders a `prometheus.yml` asks for: the in-process Alertmanager (when given) and an
/// [`HttpSender`] for the Alertmanager sets of `alerting.alertmanagers` (relative paths in
/// them are relative to `config_dir`), all with the global external labels and
/// `alert_relabel_configs`. Must be called inside a tokio runtime when external Alertmanagers
/// are configured. The in-process Alertmanager is not listed by
/// [`Sender::alertmanagers`], as upstream lists only configured ones.
pub fn senders_for_config(
    config: &watchfire_config::prometheus::Config,
    config_dir: &std::path::Path,
    alerting: Option<Arc<watchfire_alerting::Alerting>>,
) -> FanoutSender {
    let external = config.global.external_labels.clone();
    let relabel = config.alerting.alert_relabel_configs.clone();
    let mut senders: Vec<Arc<dyn Sender>> = Vec::new();
    if let Some(a) = alerting {
        senders.push(Arc::new(AlertingSender::new(a, external.clone(), relabel.clone())));
    }
    if !config.alerting.alertmanagers.is_empty() {
        senders.push(Arc::new(HttpSender::start(
            &config.alerting.alertmanagers,
            config_dir,
            external,
            relabel,
        )));
    }
    FanoutSender(senders)
}
