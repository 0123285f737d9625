//! Shared test fixtures.
#![allow(dead_code)]

use std::collections::BTreeMap;

use jiff::Timestamp;
use watchfire_alerting::types::ZERO_TIME;
use watchfire_alerting::{Alert, Integration, NotificationGroup, NotifyReason};
use watchfire_model::Labels;

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub fn alert(labels: &[(&str, &str)], annotations: &[(&str, &str)], resolved: bool) -> Alert {
    Alert {
        labels: Labels::from_pairs(labels.iter().copied()),
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        starts_at: ts("2026-01-02T03:04:05.123Z"),
        ends_at: if resolved {
            ts("2026-01-02T04:00:00Z")
        } else {
            ZERO_TIME
        },
        generator_url: "http://prom.example/graph?g0.expr=up".into(),
        updated_at: ts("2026-01-02T03:04:05Z"),
        timeout: false,
    }
}

pub fn group(receiver: &str, kind: &str, alerts: Vec<Alert>) -> NotificationGroup {
    NotificationGroup {
        receiver: receiver.into(),
        integration: Integration {
            name: kind.into(),
            index: 0,
            send_resolved: true,
        },
        group_key: "{}/{severity=\"page\"}:{alertname=\"HighLatency\"}".into(),
        group_labels: Labels::from_pairs([("alertname", "HighLatency")]),
        route_labels: BTreeMap::new(),
        alerts,
        reason: NotifyReason::FirstNotification,
        now: ts("2026-01-02T05:00:00Z"),
    }
}

/// Two firing alerts sharing job=api.
pub fn firing(receiver: &str, kind: &str) -> NotificationGroup {
    group(
        receiver,
        kind,
        vec![
            alert(
                &[("alertname", "HighLatency"), ("job", "api"), ("instance", "a:9090")],
                &[("summary", "latency high"), ("runbook", "http://rb/1")],
                false,
            ),
            alert(
                &[("alertname", "HighLatency"), ("job", "api"), ("instance", "b:9090")],
                &[("summary", "latency high")],
                false,
            ),
        ],
    )
}

/// One firing and one resolved alert.
pub fn mixed(receiver: &str, kind: &str) -> NotificationGroup {
    group(
        receiver,
        kind,
        vec![
            alert(
                &[
                    ("alertname", "HighLatency"),
                    ("job", "api"),
                    ("instance", "a:9090"),
                    ("severity", "warning"),
                ],
                &[("summary", "a <b> & c")],
                false,
            ),
            alert(
                &[
                    ("alertname", "HighLatency"),
                    ("job", "web"),
                    ("instance", "b:9090"),
                    ("severity", "critical"),
                ],
                &[],
                true,
            ),
        ],
    )
}

/// Everything resolved.
pub fn resolved(receiver: &str, kind: &str) -> NotificationGroup {
    group(
        receiver,
        kind,
        vec![alert(
            &[("alertname", "HighLatency"), ("job", "api"), ("severity", "info")],
            &[("summary", "ok now")],
            true,
        )],
    )
}
