//! Sending alerts (upstream `rules/manager.go SendAlerts` and the `notifier` package).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use watchfire_config::prometheus::RelabelConfig;
use watchfire_model::{Labels, LabelsBuilder, Timestamp};

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

/// One external Alertmanager.
#[derive(Clone, Debug)]
pub struct AlertmanagerTarget {
    /// The full URL alerts are POSTed to (`…/api/v2/alerts`).
    pub url: String,
    /// That Alertmanager set's `alert_relabel_configs`.
    pub alert_relabel_configs: Vec<RelabelConfig>,
    pub timeout: std::time::Duration,
}

impl AlertmanagerTarget {
    /// The targets of an `alertmanagers` entry's `static_configs`.
    pub fn from_static(config: &watchfire_config::prometheus::AlertmanagerConfig) -> Vec<AlertmanagerTarget> {
        let prefix = config.path_prefix.trim_end_matches('/');
        config
            .static_configs
            .iter()
            .flat_map(|s| s.targets.iter())
            .map(|addr| AlertmanagerTarget {
                url: format!("{}://{addr}{prefix}/api/v2/alerts", config.scheme),
                alert_relabel_configs: config.alert_relabel_configs.clone(),
                timeout: config.timeout.to_std(),
            })
            .collect()
    }
}

const QUEUE_CAPACITY: usize = 10_000;
const MAX_BATCH: usize = 256;

struct Queue {
    alerts: Mutex<VecDeque<OutgoingAlert>>,
    notify: tokio::sync::Notify,
    dropped: std::sync::atomic::AtomicU64,
}

/// Sends to external Alertmanagers over API v2: a queue of up to 10000 alerts (the oldest
/// are dropped on overflow), batches of 256 POSTed to every target. Needs a tokio runtime.
#[derive(Clone)]
pub struct HttpSender {
    queue: Arc<Queue>,
    external_labels: Labels,
    relabel: Vec<RelabelConfig>,
}

impl std::fmt::Debug for HttpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSender")
            .field("external_labels", &self.external_labels)
            .finish_non_exhaustive()
    }
}

impl HttpSender {
    /// Starts the sending task on the current tokio runtime.
    pub fn spawn(
        targets: Vec<AlertmanagerTarget>,
        external_labels: Labels,
        relabel: Vec<RelabelConfig>,
        client: reqwest::Client,
    ) -> HttpSender {
        let queue = Arc::new(Queue {
            alerts: Mutex::new(VecDeque::new()),
            notify: tokio::sync::Notify::new(),
            dropped: Default::default(),
        });
        let q = queue.clone();
        tokio::spawn(async move {
            loop {
                let batch: Vec<OutgoingAlert> = {
                    let mut guard = q.alerts.lock().unwrap_or_else(|e| e.into_inner());
                    let n = guard.len().min(MAX_BATCH);
                    guard.drain(..n).collect()
                };
                if batch.is_empty() {
                    q.notify.notified().await;
                    continue;
                }
                for t in &targets {
                    let alerts: Vec<serde_json::Value> = batch
                        .iter()
                        .filter_map(|a| {
                            let labels = RelabelConfig::process(&a.labels, &t.alert_relabel_configs)?;
                            let mut a = a.clone();
                            a.labels = labels;
                            Some(a.to_json())
                        })
                        .collect();
                    if alerts.is_empty() {
                        continue;
                    }
                    let res = client.post(&t.url).timeout(t.timeout).json(&alerts).send().await;
                    match res {
                        Ok(r) if r.status().is_success() => {}
                        Ok(r) => tracing::error!(url = %t.url, status = %r.status(), "error sending alerts"),
                        Err(e) => tracing::error!(url = %t.url, err = %e, "error sending alerts"),
                    }
                }
            }
        });
        HttpSender {
            queue,
            external_labels,
            relabel,
        }
    }

    /// Alerts dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Sender for HttpSender {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        let alerts = relabel_alerts(alerts, &self.external_labels, &self.relabel);
        {
            let mut q = self.queue.alerts.lock().unwrap_or_else(|e| e.into_inner());
            q.extend(alerts);
            let over = q.len().saturating_sub(QUEUE_CAPACITY);
            if over > 0 {
                q.drain(..over);
                self.queue
                    .dropped
                    .fetch_add(over as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }
        self.queue.notify.notify_one();
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
}

/// The senders a `prometheus.yml` asks for: the in-process Alertmanager (when given) and an
/// [`HttpSender`] for the `static_configs` targets of `alerting.alertmanagers`, all with the
/// global external labels and `alert_relabel_configs`. Must be called inside a tokio runtime
/// when external Alertmanagers are configured.
pub fn senders_for_config(
    config: &watchfire_config::prometheus::Config,
    alerting: Option<Arc<watchfire_alerting::Alerting>>,
    client: reqwest::Client,
) -> FanoutSender {
    let external = config.global.external_labels.clone();
    let relabel = config.alerting.alert_relabel_configs.clone();
    let mut senders: Vec<Arc<dyn Sender>> = Vec::new();
    if let Some(a) = alerting {
        senders.push(Arc::new(AlertingSender::new(a, external.clone(), relabel.clone())));
    }
    let targets: Vec<AlertmanagerTarget> = config
        .alerting
        .alertmanagers
        .iter()
        .flat_map(AlertmanagerTarget::from_static)
        .collect();
    if !targets.is_empty() {
        senders.push(Arc::new(HttpSender::spawn(targets, external, relabel, client)));
    }
    FanoutSender(senders)
}
