//! Self-metrics of discovery (`prometheus_sd_*`), and [`SummaryVec`], a summary with
//! quantiles that the `prometheus` crate lacks and several upstream metrics are (the scrape
//! crate uses it too).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus::core::{Collector, Desc};
use prometheus::proto;
use prometheus::{Counter, Gauge, GaugeVec, IntCounter, IntCounterVec, Opts, Registry};

/// The quantiles upstream's summaries report, with their allowed errors ignored: this
/// implementation computes them exactly over a sliding window.
pub const OBJECTIVES: [f64; 5] = [0.01, 0.05, 0.5, 0.9, 0.99];

/// How long observations count towards the quantiles (upstream's default `MaxAge`).
const MAX_AGE: Duration = Duration::from_secs(600);

/// Most observations kept per label set for the quantiles (the sum and count cover all).
const MAX_KEPT: usize = 1000;

#[derive(Debug, Default)]
struct Window {
    recent: VecDeque<(Instant, f64)>,
    sum: f64,
    count: u64,
}

/// A summary vector: count, sum and the [`OBJECTIVES`] quantiles over the last ten minutes
/// (at most the last thousand observations), per label values. Quantiles of a label set with
/// no recent observation are NaN, as in Go's client.
#[derive(Debug)]
pub struct SummaryVec {
    desc: Desc,
    windows: Mutex<HashMap<Vec<String>, Window>>,
}

impl SummaryVec {
    /// A summary vector called `name` with variable labels `labels`.
    pub fn new(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<Self> {
        let desc = Desc::new(
            name.to_owned(),
            help.to_owned(),
            labels.iter().map(|l| (*l).to_owned()).collect(),
            HashMap::new(),
        )?;
        Ok(SummaryVec {
            desc,
            windows: Mutex::default(),
        })
    }

    /// Records `v` for the label values `values` (in the order the labels were declared).
    pub fn observe(&self, values: &[&str], v: f64) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        // A summary has a few label sets (one per scrape interval or SD mechanism), so they
        // are compared in turn rather than hashed from a key allocated for each observation.
        let found = windows
            .iter_mut()
            .find(|(k, _)| k.iter().map(String::as_str).eq(values.iter().copied()));
        let w = match found {
            Some((_, w)) => w,
            None => windows
                .entry(values.iter().map(|s| (*s).to_owned()).collect())
                .or_default(),
        };
        w.sum += v;
        w.count += 1;
        w.recent.push_back((Instant::now(), v));
        if w.recent.len() > MAX_KEPT {
            w.recent.pop_front();
        }
    }

    /// Forgets the label values `values`.
    pub fn remove(&self, values: &[&str]) {
        let key: Vec<String> = values.iter().map(|s| (*s).to_owned()).collect();
        self.windows.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
    }
}

/// The `q` quantile of sorted values (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Collector for SummaryVec {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut metrics = Vec::with_capacity(windows.len());
        let mut keys: Vec<&Vec<String>> = windows.keys().collect();
        keys.sort();
        let keys: Vec<Vec<String>> = keys.into_iter().cloned().collect();
        for key in keys {
            let Some(w) = windows.get_mut(&key) else { continue };
            while w.recent.front().is_some_and(|(t, _)| now.duration_since(*t) > MAX_AGE) {
                w.recent.pop_front();
            }
            let mut sorted: Vec<f64> = w.recent.iter().map(|(_, v)| *v).collect();
            sorted.sort_by(f64::total_cmp);
            let quantiles = OBJECTIVES
                .iter()
                .map(|&q| {
                    let mut p = proto::Quantile::default();
                    p.set_quantile(q);
                    p.set_value(quantile(&sorted, q));
                    p
                })
                .collect();
            let mut summary = proto::Summary::default();
            summary.set_sample_count(w.count);
            summary.set_sample_sum(w.sum);
            summary.set_quantile(quantiles);
            let labels = self
                .desc
                .variable_labels
                .iter()
                .zip(&key)
                .map(|(n, v)| {
                    let mut pair = proto::LabelPair::default();
                    pair.set_name(n.clone());
                    pair.set_value(v.clone());
                    pair
                })
                .collect();
            let mut m = proto::Metric::from_label(labels);
            m.set_summary(summary);
            metrics.push(m);
        }
        let mut family = proto::MetricFamily::default();
        family.set_name(self.desc.fq_name.clone());
        family.set_help(self.desc.help.clone());
        family.set_field_type(proto::MetricType::SUMMARY);
        family.set_metric(metrics);
        vec![family]
    }
}

/// Registers `c` on `registry` and returns it.
pub(crate) fn register<C: Collector + Clone + 'static>(registry: &Registry, c: C) -> prometheus::Result<C> {
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

/// The discovery self-metrics, registered once per [`crate::Manager`].
#[derive(Debug)]
pub struct SdMetrics {
    /// `prometheus_sd_discovered_targets{config, name}`
    pub discovered_targets: GaugeVec,
    /// `prometheus_sd_failed_configs{name}`
    pub failed_configs: Gauge,
    /// `prometheus_sd_received_updates_total{name}`
    pub received_updates: Counter,
    /// `prometheus_sd_updates_total{name}`
    pub updates: Counter,
    /// `prometheus_sd_last_update_timestamp_seconds{name}`
    pub last_update: Gauge,
    /// `prometheus_sd_file_read_errors_total`
    pub file_read_errors: IntCounter,
    /// `prometheus_sd_file_scan_duration_seconds`
    pub file_scan_duration: std::sync::Arc<SummaryVec>,
    /// `prometheus_sd_file_watcher_errors_total` (stays 0: files are polled, not watched)
    pub file_watcher_errors: IntCounter,
    /// `prometheus_sd_file_mtime_seconds{filename}`
    pub file_mtime: GaugeVec,
    /// `prometheus_sd_http_failures_total`
    pub http_failures: IntCounter,
    /// `prometheus_sd_dns_lookups_total`
    pub dns_lookups: IntCounter,
    /// `prometheus_sd_dns_lookup_failures_total`
    pub dns_lookup_failures: IntCounter,
    /// `prometheus_sd_refresh_failures_total{mechanism, config}`
    pub refresh_failures: IntCounterVec,
    /// `prometheus_sd_refresh_duration_seconds{mechanism, config}`
    pub refresh_duration: std::sync::Arc<SummaryVec>,
}

/// A `SummaryVec` shared between the registry and its users.
#[derive(Clone, Debug)]
struct SharedSummary(std::sync::Arc<SummaryVec>);

impl Collector for SharedSummary {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }
    fn collect(&self) -> Vec<proto::MetricFamily> {
        self.0.collect()
    }
}

/// Creates `name` as a summary vector and registers it.
pub fn register_summary(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<std::sync::Arc<SummaryVec>> {
    let s = std::sync::Arc::new(SummaryVec::new(name, help, labels)?);
    registry.register(Box::new(SharedSummary(s.clone())))?;
    Ok(s)
}

impl SdMetrics {
    /// Creates and registers every metric; `name` is the manager's name (`scrape` for the
    /// scrape discovery manager, as upstream's const label).
    pub fn new(registry: &Registry, name: &str) -> prometheus::Result<Self> {
        let named = |n: &str, h: &str| Opts::new(n, h).const_label("name", name);
        Ok(SdMetrics {
            discovered_targets: register(
                registry,
                GaugeVec::new(
                    named(
                        "prometheus_sd_discovered_targets",
                        "Current number of discovered targets.",
                    ),
                    &["config"],
                )?,
            )?,
            failed_configs: register(
                registry,
                Gauge::with_opts(named(
                    "prometheus_sd_failed_configs",
                    "Current number of service discovery configurations that failed to load.",
                ))?,
            )?,
            received_updates: register(
                registry,
                Counter::with_opts(named(
                    "prometheus_sd_received_updates_total",
                    "Total number of update events received from the SD providers.",
                ))?,
            )?,
            updates: register(
                registry,
                Counter::with_opts(named(
                    "prometheus_sd_updates_total",
                    "Total number of update events sent to the SD consumers.",
                ))?,
            )?,
            last_update: register(
                registry,
                Gauge::with_opts(named(
                    "prometheus_sd_last_update_timestamp_seconds",
                    "Timestamp of the last update sent to the SD consumers.",
                ))?,
            )?,
            file_read_errors: register(
                registry,
                IntCounter::new(
                    "prometheus_sd_file_read_errors_total",
                    "The number of File-SD read errors.",
                )?,
            )?,
            file_scan_duration: register_summary(
                registry,
                "prometheus_sd_file_scan_duration_seconds",
                "The duration of the File-SD scan in seconds.",
                &[],
            )?,
            file_watcher_errors: register(
                registry,
                IntCounter::new(
                    "prometheus_sd_file_watcher_errors_total",
                    "The number of File-SD errors caused by filesystem watch failures.",
                )?,
            )?,
            file_mtime: register(
                registry,
                GaugeVec::new(
                    Opts::new(
                        "prometheus_sd_file_mtime_seconds",
                        "Timestamp (mtime) of files read by FileSD. Timestamp is set at read time.",
                    ),
                    &["filename"],
                )?,
            )?,
            http_failures: register(
                registry,
                IntCounter::new(
                    "prometheus_sd_http_failures_total",
                    "Number of HTTP service discovery refresh failures.",
                )?,
            )?,
            dns_lookups: register(
                registry,
                IntCounter::new("prometheus_sd_dns_lookups_total", "The number of DNS-SD lookups.")?,
            )?,
            dns_lookup_failures: register(
                registry,
                IntCounter::new(
                    "prometheus_sd_dns_lookup_failures_total",
                    "The number of DNS-SD lookup failures.",
                )?,
            )?,
            refresh_failures: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "prometheus_sd_refresh_failures_total",
                        "Number of refresh failures for the given SD mechanism.",
                    ),
                    &["mechanism", "config"],
                )?,
            )?,
            refresh_duration: register_summary(
                registry,
                "prometheus_sd_refresh_duration_seconds",
                "The duration of a refresh in seconds for the given SD mechanism.",
                &["mechanism", "config"],
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reports_quantiles_count_and_sum() {
        let s = SummaryVec::new("x_seconds", "help", &["interval"]).unwrap();
        for i in 1..=100 {
            s.observe(&["15s"], f64::from(i));
        }
        s.observe(&["1m"], 3.0);
        let fam = &s.collect()[0];
        assert_eq!(fam.get_metric().len(), 2);
        let m = &fam.get_metric()[0];
        assert_eq!(m.get_label()[0].value(), "15s");
        let sum = m.get_summary();
        assert_eq!(sum.sample_count(), 100);
        assert_eq!(sum.sample_sum(), 5050.0);
        let q: Vec<f64> = sum.get_quantile().iter().map(|q| q.value()).collect();
        assert_eq!(q, [1.0, 5.0, 50.0, 90.0, 99.0]);
        s.remove(&["15s"]);
        assert_eq!(s.collect()[0].get_metric().len(), 1);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
