//! Self-metrics under Alertmanager's names, so its dashboards and mixin alerts work
//! unchanged. Gauges that describe current state (`alertmanager_alerts`,
//! `alertmanager_silences`) are computed when scraped.

use std::sync::{Arc, Mutex, Weak};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

use crate::notify::FailureReason;

/// Every integration kind, pre-initialised as upstream's `InitializeFor` does.
const INTEGRATIONS: [&str; 18] = [
    "email",
    "pagerduty",
    "wechat",
    "pushover",
    "slack",
    "opsgenie",
    "webhook",
    "victorops",
    "sns",
    "telegram",
    "discord",
    "webex",
    "msteams",
    "msteamsv2",
    "incidentio",
    "jira",
    "rocketchat",
    "mattermost",
];

/// A gauge vector refreshed by a callback at every scrape.
struct ScrapeGauge {
    vec: GaugeVec,
    refresh: Box<dyn Fn(&GaugeVec) + Send + Sync>,
}

impl Collector for ScrapeGauge {
    fn desc(&self) -> Vec<&Desc> {
        self.vec.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        (self.refresh)(&self.vec);
        self.vec.collect()
    }
}

/// The subsystem's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    pub alerts_received: IntCounterVec,
    pub alerts_invalid: IntCounter,
    notifications: IntCounterVec,
    notifications_failed: IntCounterVec,
    requests: IntCounterVec,
    requests_failed: IntCounterVec,
    latency: HistogramVec,
    suppressed: IntCounterVec,
    pub aggregation_groups: Gauge,
    pub processing_duration: Histogram,
    pub silences_gc_duration: Histogram,
    pub silences_maintenance: IntCounter,
    pub silences_maintenance_errors: IntCounter,
    pub silences_snapshot_size: Gauge,
    pub silences_queries: IntCounter,
    pub nflog_gc_duration: Histogram,
    pub nflog_maintenance: IntCounter,
    pub nflog_maintenance_errors: IntCounter,
    pub nflog_snapshot_size: Gauge,
    pub nflog_queries: IntCounter,
    pub receivers: Gauge,
    pub integrations: Gauge,
    pub inhibition_rules: Gauge,
    pub cluster_enabled: Gauge,
}

fn reg<C: Collector + Clone + 'static>(r: &Registry, c: C) -> Result<C, prometheus::Error> {
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn counter(r: &Registry, name: &str, help: &str) -> Result<IntCounter, prometheus::Error> {
    reg(r, IntCounter::new(name, help)?)
}

fn gauge(r: &Registry, name: &str, help: &str) -> Result<Gauge, prometheus::Error> {
    reg(r, Gauge::new(name, help)?)
}

fn histogram(r: &Registry, name: &str, help: &str) -> Result<Histogram, prometheus::Error> {
    reg(r, Histogram::with_opts(HistogramOpts::new(name, help))?)
}

/// What the scrape-time gauges read from.
pub(crate) type StateFn = Arc<dyn Fn() -> Vec<(String, f64)> + Send + Sync>;

/// Holders for the scrape-time callbacks, set once the subsystem exists.
#[derive(Default)]
pub(crate) struct Sources {
    pub alerts: Mutex<Option<StateFn>>,
    pub silences: Mutex<Option<StateFn>>,
}

impl Metrics {
    /// Creates and registers every metric.
    pub(crate) fn register(r: &Registry, sources: &Arc<Sources>) -> Result<Metrics, prometheus::Error> {
        let v2 = |o: Opts| o.const_label("version", "v2");
        let alerts_received = reg(
            r,
            IntCounterVec::new(
                v2(Opts::new(
                    "alertmanager_alerts_received_total",
                    "The total number of received alerts.",
                )),
                &["status"],
            )?,
        )?;
        for s in ["firing", "resolved"] {
            alerts_received.with_label_values(&[s]);
        }
        let alerts_invalid = reg(
            r,
            IntCounter::with_opts(v2(Opts::new(
                "alertmanager_alerts_invalid_total",
                "The total number of received alerts that were invalid.",
            )))?,
        )?;
        let notifications = reg(
            r,
            IntCounterVec::new(
                Opts::new(
                    "alertmanager_notifications_total",
                    "The total number of attempted notifications.",
                ),
                &["integration"],
            )?,
        )?;
        let notifications_failed = reg(
            r,
            IntCounterVec::new(
                Opts::new(
                    "alertmanager_notifications_failed_total",
                    "The total number of failed notifications.",
                ),
                &["integration", "reason"],
            )?,
        )?;
        let requests = reg(
            r,
            IntCounterVec::new(
                Opts::new(
                    "alertmanager_notification_requests_total",
                    "The total number of attempted notification requests.",
                ),
                &["integration"],
            )?,
        )?;
        let requests_failed = reg(
            r,
            IntCounterVec::new(
                Opts::new(
                    "alertmanager_notification_requests_failed_total",
                    "The total number of failed notification requests.",
                ),
                &["integration"],
            )?,
        )?;
        let latency = reg(
            r,
            HistogramVec::new(
                HistogramOpts::new(
                    "alertmanager_notification_latency_seconds",
                    "The latency of notifications in seconds.",
                )
                .buckets(vec![1.0, 5.0, 10.0, 15.0, 20.0]),
                &["integration"],
            )?,
        )?;
        for i in INTEGRATIONS {
            notifications.with_label_values(&[i]);
            requests.with_label_values(&[i]);
            requests_failed.with_label_values(&[i]);
            latency.with_label_values(&[i]);
            for reason in FailureReason::ALL {
                notifications_failed.with_label_values(&[i, reason.as_str()]);
            }
        }
        let suppressed = reg(
            r,
            IntCounterVec::new(
                Opts::new(
                    "alertmanager_notifications_suppressed_total",
                    "The total number of notifications suppressed for being silenced, inhibited, outside of active time intervals or within muted time intervals.",
                ),
                &["reason"],
            )?,
        )?;

        let scrape_gauge = |name: &str, help: &str, label: &str, src: fn(&Sources) -> &Mutex<Option<StateFn>>| {
            let vec = GaugeVec::new(Opts::new(name, help), &[label])?;
            let weak: Weak<Sources> = Arc::downgrade(sources);
            let refresh = Box::new(move |v: &GaugeVec| {
                let Some(s) = weak.upgrade() else { return };
                let f = src(&s).lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let Some(f) = f {
                    for (state, n) in f() {
                        v.with_label_values(&[&state]).set(n);
                    }
                }
            });
            r.register(Box::new(ScrapeGauge { vec, refresh }))
        };
        scrape_gauge("alertmanager_alerts", "How many alerts by state.", "state", |s| {
            &s.alerts
        })?;
        scrape_gauge("alertmanager_silences", "How many silences by state.", "state", |s| {
            &s.silences
        })?;

        Ok(Metrics {
            alerts_received,
            alerts_invalid,
            notifications,
            notifications_failed,
            requests,
            requests_failed,
            latency,
            suppressed,
            aggregation_groups: gauge(
                r,
                "alertmanager_dispatcher_aggregation_groups",
                "Number of active aggregation groups",
            )?,
            processing_duration: histogram(
                r,
                "alertmanager_dispatcher_alert_processing_duration_seconds",
                "Latencies for the processing of alerts.",
            )?,
            silences_gc_duration: histogram(
                r,
                "alertmanager_silences_gc_duration_seconds",
                "Duration of the last silence garbage collection cycle.",
            )?,
            silences_maintenance: counter(
                r,
                "alertmanager_silences_maintenance_total",
                "How many maintenances were executed for silences.",
            )?,
            silences_maintenance_errors: counter(
                r,
                "alertmanager_silences_maintenance_errors_total",
                "How many maintenances were executed for silences that failed.",
            )?,
            silences_snapshot_size: gauge(
                r,
                "alertmanager_silences_snapshot_size_bytes",
                "Size of the last silence snapshot in bytes.",
            )?,
            silences_queries: counter(
                r,
                "alertmanager_silences_queries_total",
                "How many silence queries were received.",
            )?,
            nflog_gc_duration: histogram(
                r,
                "alertmanager_nflog_gc_duration_seconds",
                "Duration of the last notification log garbage collection cycle.",
            )?,
            nflog_maintenance: counter(
                r,
                "alertmanager_nflog_maintenance_total",
                "How many maintenances were executed for the notification log.",
            )?,
            nflog_maintenance_errors: counter(
                r,
                "alertmanager_nflog_maintenance_errors_total",
                "How many maintenances were executed for the notification log that failed.",
            )?,
            nflog_snapshot_size: gauge(
                r,
                "alertmanager_nflog_snapshot_size_bytes",
                "Size of the last notification log snapshot in bytes.",
            )?,
            nflog_queries: counter(
                r,
                "alertmanager_nflog_queries_total",
                "Number of notification log queries were received.",
            )?,
            receivers: gauge(r, "alertmanager_receivers", "Number of configured receivers.")?,
            integrations: gauge(r, "alertmanager_integrations", "Number of configured integrations.")?,
            inhibition_rules: gauge(
                r,
                "alertmanager_inhibition_rules",
                "Number of configured inhibition rules.",
            )?,
            cluster_enabled: gauge(
                r,
                "alertmanager_cluster_enabled",
                "Indicates whether the clustering is enabled or not.",
            )?,
        })
    }

    pub(crate) fn notifications_total(&self, integration: &str) -> IntCounter {
        self.notifications.with_label_values(&[integration])
    }

    pub(crate) fn notifications_failed(&self, integration: &str, reason: FailureReason) -> IntCounter {
        self.notifications_failed
            .with_label_values(&[integration, reason.as_str()])
    }

    pub(crate) fn requests_total(&self, integration: &str) -> IntCounter {
        self.requests.with_label_values(&[integration])
    }

    pub(crate) fn requests_failed(&self, integration: &str) -> IntCounter {
        self.requests_failed.with_label_values(&[integration])
    }

    pub(crate) fn latency(&self, integration: &str) -> Histogram {
        self.latency.with_label_values(&[integration])
    }

    pub(crate) fn suppressed(&self, reason: &str, n: usize) {
        if n > 0 {
            self.suppressed.with_label_values(&[reason]).inc_by(n as u64);
        }
    }
}
