//! Manager, sender and API tests on tokio's paused clock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use serde_json::Value;
use tower::ServiceExt;
use watchfire_model::{Labels, is_stale_nan};
use watchfire_promql::engine::Engine;
use watchfire_storage::Queryable;
use watchfire_tsdb::{Head, HeadOptions, MemoryStorage};

use crate::manager::lock;
use crate::sender::{OutgoingAlert, RecordingSender, Sender};
use crate::{AlertingSender, Manager, ManagerOptions, api};

/// 2023-11-14T22:13:20Z.
const START: i64 = 1_700_000_000_000;
const M: u64 = 60;

fn storage() -> Arc<MemoryStorage> {
    Arc::new(MemoryStorage(Head::in_memory(HeadOptions::default())))
}

fn raw(st: &MemoryStorage, selector: &str) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let matchers = watchfire_promql::parse_metric_selector(selector).unwrap();
    let q = st.querier(i64::MIN / 2, i64::MAX / 2).unwrap();
    let mut out = Vec::new();
    for s in q.select(true, None, &matchers) {
        let s = s.unwrap();
        let mut it = s.iterator();
        let mut v = Vec::new();
        while it.next() {
            let smp = it.at();
            v.push((smp.t, smp.v));
        }
        out.push((s.labels().clone(), v));
    }
    out
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const RULES: &str = r#"
groups:
- name: main
  rules:
  - record: one
    expr: vector(1)
  - alert: Always
    expr: one > 0
    labels: {severity: page}
    annotations: {summary: 'value {{ $value }}'}
"#;

fn manager(st: &Arc<MemoryStorage>, sender: Arc<dyn Sender>, registry: &prometheus::Registry) -> Manager {
    let mut opts = ManagerOptions::new(st.clone(), Engine::default());
    opts.sender = Some(sender);
    opts.registry = Some(registry.clone());
    opts.start_time_ms = Some(START);
    opts.external_url = "http://prom:9090".into();
    Manager::new(opts).unwrap()
}

fn counter(registry: &prometheus::Registry, name: &str) -> f64 {
    registry
        .gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| {
            f.get_metric()
                .iter()
                .map(|m| m.get_counter().get_value())
                .collect::<Vec<_>>()
        })
        .sum()
}

async fn get_json(router: &axum::Router, uri: &str) -> (u16, Value) {
    let res = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test(start_paused = true)]
async fn manager_runs_groups_on_their_phase_and_reloads_keeping_state() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "rules.yml", RULES);
    let st = storage();
    let sender = RecordingSender::default();
    let registry = prometheus::Registry::new();
    let m = manager(&st, Arc::new(sender.clone()), &registry);
    m.update(60_000, 0, std::slice::from_ref(&file), Labels::empty())
        .await
        .unwrap();
    m.run();
    tokio::time::sleep(Duration::from_secs(3 * M + 1)).await;

    let groups = m.rule_groups();
    assert_eq!(groups.len(), 1);
    let (phase_ns, first_ts) = {
        let g = lock(&groups[0]);
        let offset = g.offset_nanos();
        (offset, g.last_eval_timestamp().unwrap())
    };
    // Evaluations happen at START-aligned slots shifted by the group's phase.
    let recorded = raw(&st, "one");
    assert_eq!(recorded.len(), 1);
    let times: Vec<i64> = recorded[0].1.iter().map(|(t, _)| *t).collect();
    assert!(times.len() >= 3, "{times:?}");
    for w in times.windows(2) {
        assert_eq!(w[1] - w[0], 60_000);
    }
    assert_eq!((times[0] - phase_ns.div_euclid(1_000_000)).rem_euclid(60_000), 0);
    assert!(times[0] > START && times[0] <= START + 60_000);
    assert_eq!(*times.last().unwrap(), first_ts);
    // for: 0 fires on the first evaluation; ALERTS appear once the for state is restored,
    // which upstream does after the second evaluation: from the third one.
    let sent = sender.take();
    assert!(!sent.is_empty());
    assert_eq!(sent[0].starts_at, Some(times[0]));
    assert_eq!(sent[0].annotations["summary"], "value 1");
    assert_eq!(
        sent[0].generator_url,
        "http://prom:9090/graph?g0.expr=one+%3E+0&g0.tab=1"
    );
    let alerts_series = raw(&st, "ALERTS");
    assert_eq!(alerts_series[0].1.first().unwrap().0, times[2]);
    assert_eq!(
        counter(&registry, "prometheus_rule_group_iterations_total"),
        times.len() as f64
    );
    assert_eq!(
        counter(&registry, "prometheus_rule_evaluations_total"),
        2.0 * times.len() as f64
    );
    assert_eq!(counter(&registry, "prometheus_rule_group_iterations_missed_total"), 0.0);

    // The API sees the state.
    let router = api::router(m.clone());
    let (status, body) = get_json(&router, "/rules").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "success");
    let group = &body["data"]["groups"][0];
    assert_eq!(group["name"], "main");
    assert_eq!(group["file"], file.to_string_lossy().as_ref());
    assert_eq!(group["interval"], 60.0);
    assert_eq!(group["limit"], 0);
    let rules = group["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0]["type"], "recording");
    assert_eq!(rules[0]["name"], "one");
    assert_eq!(rules[0]["query"], "vector(1)");
    assert_eq!(rules[0]["health"], "ok");
    assert!(rules[0].get("labels").is_none());
    assert!(rules[0].get("lastError").is_none());
    let alert_rule = &rules[1];
    assert_eq!(alert_rule["type"], "alerting");
    assert_eq!(alert_rule["state"], "firing");
    assert_eq!(alert_rule["duration"], 0.0);
    assert_eq!(alert_rule["keepFiringFor"], 0.0);
    assert_eq!(alert_rule["labels"]["severity"], "page");
    assert_eq!(alert_rule["annotations"]["summary"], "value {{ $value }}");
    let alert = &alert_rule["alerts"][0];
    assert_eq!(alert["state"], "firing");
    assert_eq!(alert["value"], "1e+00");
    assert_eq!(alert["labels"]["alertname"], "Always");
    assert_eq!(alert["annotations"]["summary"], "value 1");
    let active_at = jiff::Timestamp::from_millisecond(times[0]).unwrap();
    assert_eq!(
        alert["activeAt"],
        active_at.strftime("%Y-%m-%dT%H:%M:%S%.fZ").to_string()
    );
    for key in ["evaluationTime", "lastEvaluation", "health"] {
        assert!(alert_rule.get(key).is_some(), "{key}");
    }

    let (_, filtered) = get_json(&router, "/rules?type=record").await;
    let rules = filtered["data"]["groups"][0]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    let (_, filtered) = get_json(&router, "/rules?type=alert&exclude_alerts=true").await;
    assert!(filtered["data"]["groups"][0]["rules"][0]["alerts"].is_null());
    let (_, filtered) = get_json(&router, "/rules?rule_name[]=nope").await;
    assert_eq!(filtered["data"]["groups"], serde_json::json!([]));
    let (_, filtered) = get_json(&router, "/rules?match[]=%7Bseverity%3D%22page%22%7D").await;
    assert_eq!(filtered["data"]["groups"][0]["rules"].as_array().unwrap().len(), 1);
    let (_, filtered) = get_json(&router, "/rules?rule_group[]=main&file[]=other").await;
    assert_eq!(filtered["data"]["groups"], serde_json::json!([]));
    let (status, err) = get_json(&router, "/rules?type=bogus").await;
    assert_eq!(status, 400);
    assert_eq!(err["errorType"], "bad_data");
    assert_eq!(
        err["error"],
        "invalid parameter \"type\": not supported value \"bogus\""
    );
    let (_, alerts) = get_json(&router, "/alerts").await;
    assert_eq!(alerts["data"]["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(alerts["data"]["alerts"][0]["labels"]["severity"], "page");

    // A reload that changes the group keeps the alert's ActiveAt.
    let file2 = write(
        dir.path(),
        "rules.yml",
        &format!("{RULES}  - record: two\n    expr: vector(2)\n"),
    );
    m.update(60_000, 0, std::slice::from_ref(&file2), Labels::empty())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2 * M)).await;
    {
        let groups = m.rule_groups();
        let g = lock(&groups[0]);
        assert_eq!(g.rules().len(), 3);
        let crate::Rule::Alerting(ar) = &g.rules()[1] else {
            panic!()
        };
        assert_eq!(ar.alerts()[0].active_at, times[0]);
    }
    assert!(!raw(&st, "two").is_empty());

    // A failing reload keeps the old rules.
    let bad = write(
        dir.path(),
        "bad.yml",
        "groups:\n- name: x\n  rules:\n  - record: r\n    expr: 'sum('\n",
    );
    let err = m
        .update(60_000, 0, &[file2.clone(), bad], Labels::empty())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("error loading rules, previous rule set restored"),
        "{err}"
    );
    assert_eq!(m.rule_groups().len(), 1);

    // Removing the group stops it and marks its series stale after two intervals.
    let empty = write(dir.path(), "rules.yml", "groups: []\n");
    m.update(60_000, 0, &[empty], Labels::empty()).await.unwrap();
    assert!(m.rule_groups().is_empty());
    tokio::time::sleep(Duration::from_secs(2 * M + 5)).await;
    let one = raw(&st, "one");
    assert!(is_stale_nan(one[0].1.last().unwrap().1));
    m.stop().await;
}

#[tokio::test(start_paused = true)]
async fn slow_groups_count_missed_iterations() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "r.yml",
        "groups:\n- name: g\n  interval: 10s\n  rules:\n  - record: x\n    expr: vector(1)\n",
    );
    let st = storage();
    let registry = prometheus::Registry::new();
    let m = manager(&st, Arc::new(RecordingSender::default()), &registry);
    m.update(60_000, 0, &[file], Labels::empty()).await.unwrap();
    m.run();
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(counter(&registry, "prometheus_rule_group_iterations_missed_total"), 0.0);
    let before = raw(&st, "x")[0].1.len();
    // The clock jumps 35s at once, as if the process had stalled: the ticker delivers one
    // tick, three slots were skipped.
    tokio::time::advance(Duration::from_secs(35)).await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    let missed = counter(&registry, "prometheus_rule_group_iterations_missed_total");
    assert!((2.0..=3.0).contains(&missed), "{missed}");
    let samples = raw(&st, "x")[0].1.clone();
    assert!(samples.len() > before);
    assert_eq!(
        counter(&registry, "prometheus_rule_group_iterations_total"),
        samples.len() as f64 + missed
    );
    // Evaluations stay on the group's slots; the stall shows as one long gap.
    let gaps: Vec<i64> = samples.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(gaps.iter().all(|g| g % 10_000 == 0), "{gaps:?}");
    assert_eq!(*gaps.iter().max().unwrap(), (missed as i64 + 1) * 10_000);
    m.stop().await;
}

#[tokio::test(start_paused = true)]
async fn alerting_sender_posts_to_the_in_process_alertmanager() {
    let yaml = "route:\n  receiver: x\nreceivers:\n- name: x\n";
    let config = watchfire_config::alertmanager::Config::parse(yaml, Path::new("am.yml")).unwrap();
    let start = jiff::Timestamp::from_millisecond(START).unwrap();
    let options = watchfire_alerting::Options {
        clock: Arc::new(watchfire_alerting::TokioClock::starting_at(start)),
        ..Default::default()
    };
    let registry = prometheus::Registry::new();
    let rec = Arc::new(watchfire_alerting::RecordingNotifier::new());
    let alerting = Arc::new(watchfire_alerting::Alerting::open(config, options, rec, &registry).unwrap());
    let prom = watchfire_config::prometheus::Config::parse(
        "alerting:\n  alert_relabel_configs:\n  - source_labels: [drop]\n    regex: 'yes'\n    action: drop\n",
        Path::new("prometheus.yml"),
    )
    .unwrap();
    let relabel = prom.alerting.alert_relabel_configs.clone();
    assert_eq!(relabel.len(), 1);
    let sender = AlertingSender::new(
        alerting.clone(),
        Labels::from_pairs([("env", "prod"), ("severity", "ignored")]),
        relabel.clone(),
    );
    let alert = |labels: &[(&str, &str)]| OutgoingAlert {
        labels: Labels::from_pairs(labels.iter().copied()),
        annotations: [("summary".to_owned(), "s".to_owned())].into(),
        starts_at: Some(START),
        ends_at: Some(START + 240_000),
        generator_url: "http://prom/graph".into(),
    };
    sender.send(vec![
        alert(&[("alertname", "A"), ("severity", "page")]),
        alert(&[("alertname", "B"), ("drop", "yes")]),
    ]);
    let got = alerting.alerts();
    assert_eq!(got.len(), 1, "the relabeling drops B");
    let a = got.iter().find(|a| a.labels.get("alertname") == Some("A")).unwrap();
    assert_eq!(a.labels.get("env"), Some("prod"));
    assert_eq!(
        a.labels.get("severity"),
        Some("page"),
        "external labels do not override"
    );
    assert_eq!(a.starts_at, start);
    assert_eq!(a.ends_at, jiff::Timestamp::from_millisecond(START + 240_000).unwrap());
    assert_eq!(a.generator_url, "http://prom/graph");
}
