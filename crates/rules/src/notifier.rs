//! Sending to external Alertmanagers (upstream's `notifier` package): the entries of
//! `alerting.alertmanagers`, each an *Alertmanager set* found like scrape targets.
//!
//! For every set, the providers of `crates/discovery` (static, file and HTTP discovery) run
//! on their own tasks; whenever one of them sends its groups, the set's Alertmanagers are
//! worked out again as upstream's `AlertmanagerFromGroup` does: each target's labels, plus
//! `__scheme__` (the set's `scheme`) and `__alerts_path__` (`path_prefix` joined with
//! `/api/v2/alerts`), plus the group's labels the target lacks, then the set's
//! `relabel_configs`. A target relabeling drops is listed as dropped (with the URL of its
//! labels before relabeling); the others are active, deduplicated by URL, and alerts are
//! POSTed to `__scheme__://__address__/__alerts_path__` with the set's HTTP client settings
//! (`basic_auth`, `authorization`, `tls_config`, `http_headers`, proxies; files are re-read
//! per request), its `timeout` and its `alert_relabel_configs`.
//!
//! Alerts wait in one queue of up to 10000 (the oldest are dropped when it overflows) and go
//! out in batches of at most 256, to every active Alertmanager of every set at once.

use std::collections::{HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::task::JoinHandle;
use watchfire_config::prometheus::{AlertmanagerConfig, RelabelConfig};
use watchfire_discovery::client::HttpClient;
use watchfire_discovery::metrics::SdMetrics;
use watchfire_discovery::{ADDRESS_LABEL, GroupSender, Provider, TargetGroup};
use watchfire_model::{Labels, LabelsBuilder};

use crate::sender::{DiscoveredAlertmanagers, OutgoingAlert, Sender, relabel_alerts};

/// The label holding the scheme alerts are sent with.
pub const SCHEME_LABEL: &str = "__scheme__";
/// The label holding the path alerts are POSTed to.
pub const ALERTS_PATH_LABEL: &str = "__alerts_path__";

const QUEUE_CAPACITY: usize = 10_000;
const MAX_BATCH: usize = 256;
/// How often file discovery looks for changed files.
const FILE_POLL_INTERVAL: Duration = Duration::from_secs(3);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Upstream `postPath`: `path.Join("/", prefix, "/api/v2/alerts")`.
pub fn alerts_path(path_prefix: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path_prefix.split('/').chain(["api", "v2", "alerts"]) {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The URL an Alertmanager's labels name (upstream `alertmanagerLabels.url`).
fn url_of(labels: &Labels) -> String {
    let path = labels.get(ALERTS_PATH_LABEL).unwrap_or_default();
    let slash = if path.starts_with('/') || path.is_empty() {
        ""
    } else {
        "/"
    };
    format!(
        "{}://{}{slash}{path}",
        labels.get(SCHEME_LABEL).unwrap_or_default(),
        labels.get(ADDRESS_LABEL).unwrap_or_default()
    )
}

/// The active and dropped Alertmanagers of one set's groups (upstream `AlertmanagerFromGroup`
/// for each group, then the deduplication of `alertmanagerSet.sync`).
pub fn resolve_alertmanagers(config: &AlertmanagerConfig, groups: &[TargetGroup]) -> (Vec<String>, Vec<String>) {
    let path = alerts_path(&config.path_prefix);
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    let mut seen = HashSet::new();
    for group in groups {
        for target in &group.targets {
            let mut b = LabelsBuilder::from(target);
            b.set(SCHEME_LABEL, &config.scheme);
            b.set(ALERTS_PATH_LABEL, &path);
            for l in &group.labels {
                if target.get(l.name).is_none() {
                    b.set(l.name, l.value);
                }
            }
            let before = b.build();
            let Some(labels) = RelabelConfig::process(&before, &config.relabel_configs) else {
                dropped.push(url_of(&before));
                continue;
            };
            let address = labels.get(ADDRESS_LABEL).unwrap_or_default();
            if address.is_empty() || address.contains('/') {
                tracing::error!(address, "skipping an Alertmanager with an invalid address");
                continue;
            }
            let url = url_of(&labels);
            if seen.insert(url.clone()) {
                active.push(url);
            }
        }
    }
    (active, dropped)
}

/// One `alerting.alertmanagers` entry and its discovered Alertmanagers.
struct AlertmanagerSet {
    config: AlertmanagerConfig,
    /// `None` when the HTTP client settings could not be used (logged at start).
    client: Option<HttpClient>,
    /// The latest groups of each provider.
    groups: Mutex<Vec<Vec<TargetGroup>>>,
    /// Active and dropped URLs, worked out from `groups`.
    resolved: RwLock<(Vec<String>, Vec<String>)>,
}

impl AlertmanagerSet {
    fn update(&self, provider: usize, groups: Vec<TargetGroup>) {
        let all: Vec<TargetGroup> = {
            let mut g = lock(&self.groups);
            g[provider] = groups;
            g.iter().flatten().cloned().collect()
        };
        let resolved = resolve_alertmanagers(&self.config, &all);
        *self.resolved.write().unwrap_or_else(|e| e.into_inner()) = resolved;
    }

    fn active(&self) -> Vec<String> {
        self.resolved.read().unwrap_or_else(|e| e.into_inner()).0.clone()
    }
}

struct Queue {
    alerts: Mutex<VecDeque<OutgoingAlert>>,
    notify: tokio::sync::Notify,
    dropped: std::sync::atomic::AtomicU64,
}

struct Inner {
    queue: Arc<Queue>,
    sets: Arc<Vec<Arc<AlertmanagerSet>>>,
    external_labels: Labels,
    relabel: Vec<RelabelConfig>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Discovery and sending stop with the last handle (a reload replaces the sender).
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Sends to the external Alertmanagers of `alerting.alertmanagers` over API v2. Cheap to
/// clone; discovery and sending stop when the last clone is dropped. Needs a tokio runtime.
#[derive(Clone)]
pub struct HttpSender {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HttpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSender")
            .field("external_labels", &self.inner.external_labels)
            .field("sets", &self.inner.sets.len())
            .finish_non_exhaustive()
    }
}

/// Runs a provider and feeds its groups into provider slot `index` of `set`.
fn spawn_provider(
    tasks: &mut Vec<JoinHandle<()>>,
    set: &Arc<AlertmanagerSet>,
    index: usize,
    provider: Box<dyn Provider>,
) {
    let (tx, mut rx): (GroupSender, _) = tokio::sync::mpsc::channel(1);
    tasks.push(tokio::spawn(provider.run(tx)));
    let set = set.clone();
    tasks.push(tokio::spawn(async move {
        while let Some(groups) = rx.recv().await {
            set.update(index, groups);
        }
    }));
}

impl HttpSender {
    /// Starts discovery for every entry of `configs` (relative paths are relative to
    /// `config_dir`) and the sending task, on the current tokio runtime. `external_labels` and
    /// `relabel` (`alerting.alert_relabel_configs`) apply to every alert first.
    pub fn start(
        configs: &[AlertmanagerConfig],
        config_dir: &Path,
        external_labels: Labels,
        relabel: Vec<RelabelConfig>,
    ) -> HttpSender {
        // The discovery self-metrics of these providers are not exported: the scrape discovery
        // manager owns the `prometheus_sd_*` names on the server's registry.
        let metrics = SdMetrics::new(&prometheus::Registry::new(), "notify")
            .map(Arc::new)
            .expect("metrics register on a fresh registry");
        let user_agent = concat!("Watchfire/", env!("CARGO_PKG_VERSION"));
        let mut tasks = Vec::new();
        let mut sets = Vec::with_capacity(configs.len());
        for (i, config) in configs.iter().enumerate() {
            let key = format!("config-{i}");
            let client = match HttpClient::new(&config.http_client(), config_dir, &format!("alertmanager set {key}")) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(alertmanagers = %key, err = %e, "cannot send to this Alertmanager set");
                    None
                }
            };
            let mut providers: Vec<Box<dyn Provider>> = Vec::new();
            if !config.static_configs.is_empty() {
                providers.push(Box::new(watchfire_discovery::static_targets::StaticProvider::new(
                    &config.static_configs,
                )));
            }
            for c in &config.file_sd_configs {
                providers.push(Box::new(watchfire_discovery::file::FileProvider::new(
                    c,
                    config_dir,
                    FILE_POLL_INTERVAL,
                    metrics.clone(),
                )));
            }
            for c in &config.http_sd_configs {
                match watchfire_discovery::http::HttpProvider::new(c, config_dir, &key, user_agent, metrics.clone()) {
                    Ok(p) => providers.push(Box::new(p)),
                    Err(e) => tracing::error!(alertmanagers = %key, err = %e, "cannot create service discovery"),
                }
            }
            for c in &config.dns_sd_configs {
                providers.push(Box::new(watchfire_discovery::dns::DnsProvider::new(
                    c,
                    &key,
                    watchfire_discovery::dns::Resolver::default(),
                    metrics.clone(),
                )));
            }
            let set = Arc::new(AlertmanagerSet {
                config: config.clone(),
                client,
                groups: Mutex::new(vec![Vec::new(); providers.len()]),
                resolved: RwLock::new((Vec::new(), Vec::new())),
            });
            for (index, provider) in providers.into_iter().enumerate() {
                spawn_provider(&mut tasks, &set, index, provider);
            }
            sets.push(set);
        }
        let queue = Arc::new(Queue {
            alerts: Mutex::new(VecDeque::new()),
            notify: tokio::sync::Notify::new(),
            dropped: Default::default(),
        });
        let sets = Arc::new(sets);
        tasks.push(tokio::spawn(send_loop(queue.clone(), sets.clone(), user_agent)));
        HttpSender {
            inner: Arc::new(Inner {
                queue,
                sets,
                external_labels,
                relabel,
                tasks,
            }),
        }
    }

    /// Alerts dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.inner.queue.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Takes batches off the queue and POSTs each to every active Alertmanager.
async fn send_loop(queue: Arc<Queue>, sets: Arc<Vec<Arc<AlertmanagerSet>>>, user_agent: &'static str) {
    loop {
        let batch: Vec<OutgoingAlert> = {
            let mut guard = lock(&queue.alerts);
            let n = guard.len().min(MAX_BATCH);
            guard.drain(..n).collect()
        };
        if batch.is_empty() {
            queue.notify.notified().await;
            continue;
        }
        let mut posts = tokio::task::JoinSet::new();
        for set in sets.iter() {
            let Some(client) = &set.client else { continue };
            let alerts: Vec<serde_json::Value> = batch
                .iter()
                .filter_map(|a| {
                    let labels = RelabelConfig::process(&a.labels, &set.config.alert_relabel_configs)?;
                    let mut a = a.clone();
                    a.labels = labels;
                    Some(a.to_json())
                })
                .collect();
            if alerts.is_empty() {
                continue;
            }
            let body = match serde_json::to_vec(&alerts) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(err = %e, "encoding alerts failed");
                    continue;
                }
            };
            for url in set.active() {
                // The configured authentication and headers, as discovery's client builds
                // them for a request, carried over to a POST.
                let headers = match client.get(&url).and_then(|r| r.build().map_err(|e| e.to_string())) {
                    Ok(r) => r.headers().clone(),
                    Err(e) => {
                        tracing::error!(alertmanager = %url, err = %e, "error sending alerts");
                        continue;
                    }
                };
                let req = client
                    .inner()
                    .post(&url)
                    .headers(headers)
                    .header(reqwest::header::USER_AGENT, user_agent)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .timeout(set.config.timeout.to_std())
                    .body(body.clone());
                posts.spawn(async move {
                    match req.send().await {
                        Ok(r) if r.status().is_success() => {}
                        Ok(r) => tracing::error!(alertmanager = %url, status = %r.status(), "error sending alerts"),
                        Err(e) => tracing::error!(alertmanager = %url, err = %e, "error sending alerts"),
                    }
                });
            }
        }
        while posts.join_next().await.is_some() {}
    }
}

impl Sender for HttpSender {
    fn send(&self, alerts: Vec<OutgoingAlert>) {
        let alerts = relabel_alerts(alerts, &self.inner.external_labels, &self.inner.relabel);
        let queue = &self.inner.queue;
        {
            let mut q = lock(&queue.alerts);
            q.extend(alerts);
            let over = q.len().saturating_sub(QUEUE_CAPACITY);
            if over > 0 {
                q.drain(..over);
                queue
                    .dropped
                    .fetch_add(over as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }
        queue.notify.notify_one();
    }

    fn alertmanagers(&self) -> DiscoveredAlertmanagers {
        let mut out = DiscoveredAlertmanagers::default();
        for set in self.inner.sets.iter() {
            let r = set.resolved.read().unwrap_or_else(|e| e.into_inner());
            out.active.extend(r.0.iter().cloned());
            out.dropped.extend(r.1.iter().cloned());
        }
        out
    }
}
