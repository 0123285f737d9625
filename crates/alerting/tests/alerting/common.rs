//! Test harness: an alerting subsystem on a clock driven by tokio's paused time, with a
//! recording notifier, and helpers to write timelines in seconds relative to its start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use watchfire_alerting::{Alert, Alerting, Options, PostableAlert, Recorded, RecordingNotifier, TokioClock};
use watchfire_config::alertmanager::Config;
use watchfire_model::Labels;

/// Parses an alertmanager.yml.
pub fn config(yaml: &str) -> Config {
    Config::parse(yaml, Path::new("alertmanager.yml")).unwrap_or_else(|e| panic!("test config: {e}"))
}

/// A running subsystem whose t=0 is `start`.
pub struct Harness {
    pub alerting: Alerting,
    pub rec: Arc<RecordingNotifier>,
    pub start: Timestamp,
    pub origin: tokio::time::Instant,
    pub registry: prometheus::Registry,
}

/// A Monday, so weekday-based intervals have a known position.
pub const DEFAULT_START: &str = "2024-01-01T00:00:00Z";

impl Harness {
    pub fn new(yaml: &str) -> Harness {
        Harness::with(yaml, DEFAULT_START.parse().expect("valid instant"), None)
    }

    /// A subsystem starting at wall time `start`, persisting in `data_dir` if given.
    pub fn with(yaml: &str, start: Timestamp, data_dir: Option<PathBuf>) -> Harness {
        Harness::resume(yaml, start, tokio::time::Instant::now(), data_dir)
    }

    /// A subsystem whose t=0 was at `origin` (wall time `start`), e.g. a restart of an earlier
    /// harness on the same timeline.
    pub fn resume(yaml: &str, start: Timestamp, origin: tokio::time::Instant, data_dir: Option<PathBuf>) -> Harness {
        let rec = Arc::new(RecordingNotifier::new());
        let registry = prometheus::Registry::new();
        let elapsed = origin.elapsed();
        let now = watchfire_alerting::types::add_duration(start, elapsed);
        let options = Options {
            data_dir,
            clock: Arc::new(TokioClock::starting_at(now)),
            // Exact timelines: upstream's scenario tests fix the backoff too.
            retry_jitter: false,
            ..Options::default()
        };
        let alerting = Alerting::open(config(yaml), options, Arc::clone(&rec), &registry)
            .unwrap_or_else(|e| panic!("opening the alerting subsystem: {e}"));
        Harness {
            alerting,
            rec,
            start,
            origin,
            registry,
        }
    }

    /// Wall time at relative second `t`.
    pub fn at(&self, t: f64) -> Timestamp {
        watchfire_alerting::types::add_duration(self.start, Duration::from_secs_f64(t))
    }

    /// Relative seconds of a wall time.
    pub fn rel(&self, ts: Timestamp) -> f64 {
        ts.duration_since(self.start).as_secs_f64()
    }

    /// Sleeps (on paused time) until relative second `t`.
    pub async fn until(&self, t: f64) {
        tokio::time::sleep_until(self.origin + Duration::from_secs_f64(t)).await;
    }

    pub fn push(&self, alerts: Vec<PostableAlert>) {
        self.alerting.put_alerts(alerts).expect("valid alerts");
    }

    /// Notifications recorded so far, forgotten afterwards.
    pub fn take(&self) -> Vec<Recorded> {
        self.rec.take()
    }

    /// Metric value by name and label pairs, from the registry.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        for mf in self.registry.gather() {
            if mf.name() != name {
                continue;
            }
            for m in mf.get_metric() {
                let ok = labels
                    .iter()
                    .all(|(k, v)| m.get_label().iter().any(|l| l.name() == *k && l.value() == *v));
                if !ok {
                    continue;
                }
                return match mf.get_field_type() {
                    prometheus::proto::MetricType::COUNTER => Some(m.get_counter().get_value()),
                    prometheus::proto::MetricType::GAUGE => Some(m.get_gauge().get_value()),
                    _ => None,
                };
            }
        }
        None
    }
}

/// Builds a posted alert; times are set with [`AlertBuilder::active`].
pub struct AlertBuilder {
    pub alert: PostableAlert,
}

pub fn alert(labels: &[(&str, &str)]) -> AlertBuilder {
    AlertBuilder {
        alert: PostableAlert {
            labels: Labels::from_pairs(labels.iter().copied()),
            ..PostableAlert::default()
        },
    }
}

impl AlertBuilder {
    /// Starts at relative second `start` (on harness `h`), ends at `end` if given.
    pub fn active(mut self, h: &Harness, start: f64, end: Option<f64>) -> AlertBuilder {
        self.alert.starts_at = Some(h.at(start));
        self.alert.ends_at = end.map(|e| h.at(e));
        self
    }

    pub fn annotate(mut self, k: &str, v: &str) -> AlertBuilder {
        self.alert.annotations.insert(k.into(), v.into());
        self
    }

    pub fn build(self) -> PostableAlert {
        self.alert
    }
}

/// One expected notification: within `[from, to]` relative seconds, to this receiver and
/// integration index, with exactly these alerts (by `alertname`/labels summary and state).
pub struct Want<'a> {
    pub from: f64,
    pub to: f64,
    pub receiver: &'a str,
    pub index: u32,
    /// `labels summary` → `Some(endsAt rel seconds)` for resolved, `None` for firing.
    pub alerts: Vec<(String, Option<f64>)>,
}

/// A short, stable description of an alert's labels: `a=1,b=2`.
pub fn summary(a: &Alert) -> String {
    a.labels
        .iter()
        .map(|l| format!("{}={}", l.name, l.value))
        .collect::<Vec<_>>()
        .join(",")
}

/// Asserts the recorded notifications are exactly `want` (in order of time), with flush times
/// and resolved end times within 150 ms as upstream's acceptance tests tolerate.
pub fn check(h: &Harness, got: &[Recorded], want: &[Want<'_>]) {
    let describe = |r: &Recorded| {
        format!(
            "t={:.3} {}/{}: {:?}",
            h.rel(r.group.now),
            r.receiver,
            r.group.integration,
            r.group
                .alerts
                .iter()
                .map(|a| (
                    summary(a),
                    (!watchfire_alerting::types::is_zero(a.ends_at)).then(|| h.rel(a.ends_at))
                ))
                .collect::<Vec<_>>()
        )
    };
    let all: Vec<String> = got.iter().map(describe).collect();
    assert_eq!(got.len(), want.len(), "notification count; got:\n{}", all.join("\n"));
    for (g, w) in got.iter().zip(want) {
        let t = h.rel(g.group.now);
        assert!(
            t >= w.from - 1e-9 && t <= w.to + 1e-9,
            "notification at {t} outside [{}, {}]; got:\n{}",
            w.from,
            w.to,
            all.join("\n")
        );
        assert_eq!(g.receiver, w.receiver, "receiver; got:\n{}", all.join("\n"));
        assert_eq!(
            g.group.integration.index,
            w.index,
            "integration; got:\n{}",
            all.join("\n")
        );
        let mut have: Vec<(String, Option<f64>)> = g
            .group
            .alerts
            .iter()
            .map(|a| {
                let end = (!watchfire_alerting::types::is_zero(a.ends_at)).then(|| h.rel(a.ends_at));
                (summary(a), end)
            })
            .collect();
        let mut expect = w.alerts.clone();
        have.sort_by(|a, b| a.0.cmp(&b.0));
        expect.sort_by(|a, b| a.0.cmp(&b.0));
        let same = have.len() == expect.len()
            && have.iter().zip(&expect).all(|(a, b)| {
                a.0 == b.0
                    && match (a.1, b.1) {
                        (None, None) => true,
                        (Some(x), Some(y)) => (x - y).abs() <= 0.150,
                        _ => false,
                    }
            });
        assert!(
            same,
            "alerts at t={t}: expected {expect:?}, got {have:?}; all:\n{}",
            all.join("\n")
        );
    }
}

/// Shorthand for an expected firing alert.
pub fn firing(s: &str) -> (String, Option<f64>) {
    (s.to_owned(), None)
}

/// Shorthand for an expected resolved alert ending at relative second `end`.
pub fn resolved(s: &str, end: f64) -> (String, Option<f64>) {
    (s.to_owned(), Some(end))
}
