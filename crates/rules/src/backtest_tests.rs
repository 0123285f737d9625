//! Backtests over an in-memory store with synthetic series: exact transition times for
//! `for`, `keep_firing_for`, flapping, query offsets and limits, the notification model, the
//! read-only guarantee, and the HTTP endpoint.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use tower::ServiceExt;
use watchfire_model::{Labels, Timestamp};
use watchfire_promql::engine::Engine;
use watchfire_storage::{Appendable, Queryable};
use watchfire_tsdb::{Head, HeadOptions, MemoryStorage};

use crate::backtest::{self, End, Episode, Options, Report, Source};
use crate::{Group, GroupOptions, Manager, ManagerOptions, api};

const M: i64 = 60_000;
/// A minute boundary: 2023-11-14T22:13:00Z.
const T0: i64 = 1_699_999_980_000;

fn t(minutes: i64) -> Timestamp {
    T0 + minutes * M
}

fn at(minutes: i64) -> String {
    backtest::rfc3339(t(minutes))
}

fn storage() -> Arc<MemoryStorage> {
    Arc::new(MemoryStorage(Head::in_memory(HeadOptions::default())))
}

/// Appends `values[i]` at minute `i`.
fn add(st: &MemoryStorage, series: &[(&str, &str)], values: &[f64]) {
    let labels = Labels::from_pairs(series.iter().copied());
    let mut app = st.appender();
    for (i, v) in values.iter().enumerate() {
        app.append(None, &labels, t(i as i64), *v).unwrap();
    }
    app.commit().unwrap();
}

/// `n` minutes of `hi` where `on(minute)` holds, else `lo`.
fn wave(n: usize, on: impl Fn(i64) -> bool) -> Vec<f64> {
    (0..n as i64).map(|m| if on(m) { 1.0 } else { 0.0 }).collect()
}

fn source(st: &Arc<MemoryStorage>) -> Source {
    Source {
        storage: st.clone(),
        engine: Engine::default(),
        external_labels: Labels::from_pairs([("site", "lab")]),
        external_url: "http://prom.example".into(),
    }
}

fn groups(yaml: &str) -> Vec<Group> {
    Group::from_file(Path::new("rules.yml"), yaml, &GroupOptions::default()).unwrap()
}

/// Backtests minutes `[from, to]` at a one-minute step.
fn run(st: &Arc<MemoryStorage>, yaml: &str, from: i64, to: i64, tweak: impl FnOnce(&mut Options)) -> Report {
    let mut opts = Options::new(t(from), t(to));
    opts.step_ms = Some(M);
    tweak(&mut opts);
    backtest::run(groups(yaml), &source(st), &opts).unwrap()
}

fn episode(
    pending: i64,
    firing: Option<i64>,
    resolved: Option<i64>,
    end: End,
) -> (String, Option<String>, Option<String>, End) {
    (at(pending), firing.map(at), resolved.map(at), end)
}

fn episodes(r: &Report, rule: &str) -> Vec<(String, Option<String>, Option<String>, End)> {
    r.alerts
        .iter()
        .filter(|a| a.rule == rule)
        .flat_map(|a| &a.episodes)
        .map(|e: &Episode| (e.pending_at.clone(), e.firing_at.clone(), e.resolved_at.clone(), e.end))
        .collect()
}

#[test]
fn for_holds_pending_then_fires_and_resolves() {
    let st = storage();
    add(
        &st,
        &[("__name__", "temp"), ("room", "a")],
        &wave(30, |m| (10..20).contains(&m)),
    );
    let r = run(
        &st,
        "groups:\n- name: g\n  rules:\n  - alert: Hot\n    expr: temp > 0.5\n    for: 5m\n",
        0,
        29,
        |_| {},
    );
    assert_eq!(r.evaluations, 30);
    assert_eq!(episodes(&r, "Hot"), [episode(10, Some(15), Some(20), End::Resolved)]);
    let a = &r.alerts[0];
    assert_eq!(a.labels["alertname"], "Hot");
    assert_eq!(a.labels["room"], "a");
    assert_eq!(a.firing_seconds, 300.0);
    assert_eq!(a.notifications, 2, "firing and resolved");
    let s = &r.rules[0];
    assert_eq!((s.alerts, s.times_fired, s.flaps, s.pending_only), (1, 1, 0, 0));
    assert_eq!((s.firing_seconds, s.notifications, s.for_seconds), (300.0, 2, 300.0));
    assert_eq!(r.groups[0].first_evaluation.as_deref(), Some(at(0).as_str()));
    assert_eq!(r.groups[0].last_evaluation.as_deref(), Some(at(29).as_str()));
}

#[test]
fn keep_firing_for_holds_until_the_expression_stays_away() {
    let st = storage();
    add(
        &st,
        &[("__name__", "x")],
        &wave(20, |m| (5..=7).contains(&m) || m == 10),
    );
    let r = run(
        &st,
        "groups:\n- name: g\n  rules:\n  - alert: Held\n    expr: x > 0\n    keep_firing_for: 3m\n",
        0,
        19,
        |_| {},
    );
    // Gone at 8 and 9 (held), back at 10, gone from 11: held through 13, resolved at 14.
    assert_eq!(episodes(&r, "Held"), [episode(5, Some(5), Some(14), End::Resolved)]);
    let e = &r.alerts[0].episodes[0];
    assert_eq!(e.keep_firing_since.as_deref(), Some(at(11).as_str()));
    assert_eq!(e.firing_seconds, 540.0);
    assert_eq!(r.rules[0].keep_firing_for_seconds, 180.0);
}

#[test]
fn flapping_alerts_count_flaps_and_pending_only_episodes() {
    let st = storage();
    add(&st, &[("__name__", "y")], &wave(30, |m| [2, 3, 6, 20].contains(&m)));
    let rules = "groups:\n- name: g\n  rules:\n  - alert: Fast\n    expr: y > 0\n  - alert: Slow\n    expr: y > 0\n    for: 2m\n";
    let r = run(&st, rules, 0, 29, |o| o.flap_window_ms = 10 * M);
    assert_eq!(
        episodes(&r, "Fast"),
        [
            episode(2, Some(2), Some(4), End::Resolved),
            episode(6, Some(6), Some(7), End::Resolved),
            episode(20, Some(20), Some(21), End::Resolved),
        ]
    );
    let flaps: Vec<bool> = r.alerts[0].episodes.iter().map(|e| e.flap).collect();
    assert_eq!(flaps, [false, true, false], "6 is 2m after 4; 20 is 13m after 7");
    // Pending alerts that go away are deleted without firing.
    assert_eq!(
        episodes(&r, "Slow"),
        [
            episode(2, None, Some(4), End::Cancelled),
            episode(6, None, Some(7), End::Cancelled),
            episode(20, None, Some(21), End::Cancelled),
        ]
    );
    let fast = &r.rules[0];
    assert_eq!((fast.times_fired, fast.flaps, fast.notifications), (3, 1, 6));
    let slow = &r.rules[1];
    assert_eq!(
        (slow.alerts, slow.times_fired, slow.pending_only, slow.notifications),
        (1, 0, 3, 0)
    );

    let text = r.render_table();
    assert!(
        text.contains(
            "Backtest from 2023-11-14T22:13:00Z to 2023-11-14T22:42:00Z: 2 alerting rules in 1 group, 30 evaluations."
        ),
        "{text}"
    );
    assert!(
        text.lines().any(
            |l| l.split_whitespace().collect::<Vec<_>>() == ["Fast", "g", "0s", "1", "3", "4m", "1", "0", "6", "0"]
        ),
        "{text}"
    );
    assert!(text.contains("Slow{}  2023-11-14T22:15:00Z  -"), "{text}");
    assert!(text.contains("never fired"), "{text}");
    assert!(text.contains("flap"), "{text}");
}

#[test]
fn long_alerts_repeat_every_repeat_interval() {
    let st = storage();
    // Ten-minute samples: firing from 0 to 10h, then again from 12h to the end (14h).
    let labels = Labels::from_pairs([("__name__", "z")]);
    let mut app = st.appender();
    for k in 0..=84 {
        let v = if (60..72).contains(&k) { 0.0 } else { 1.0 };
        app.append(None, &labels, t(k * 10), v).unwrap();
    }
    app.commit().unwrap();
    let r = run(
        &st,
        "groups:\n- name: g\n  rules:\n  - alert: Long\n    expr: z > 0\n",
        0,
        840,
        |o| o.step_ms = Some(10 * M),
    );
    assert_eq!(
        episodes(&r, "Long"),
        [
            episode(0, Some(0), Some(600), End::Resolved),
            episode(720, Some(720), None, End::Open),
        ]
    );
    let n: Vec<u64> = r.alerts[0].episodes.iter().map(|e| e.notifications).collect();
    // 10h: firing, repeats at 4h and 8h, resolved. 2h still firing at the end: firing only.
    assert_eq!(n, [4, 1]);
    let r = run(
        &st,
        "groups:\n- name: g\n  rules:\n  - alert: Long\n    expr: z > 0\n",
        0,
        840,
        |o| {
            o.step_ms = Some(10 * M);
            o.repeat_interval_ms = 0;
        },
    );
    assert_eq!(r.rules[0].notifications, 3);
    assert!(r.render_table().contains("still firing"));
}

#[test]
fn recording_rules_feed_alerts_templates_render_and_storage_is_not_written() {
    let st = storage();
    add(&st, &[("__name__", "temp"), ("room", "a")], &wave(20, |m| m >= 5));
    add(&st, &[("__name__", "temp"), ("room", "b")], &[0.0; 20]);
    let count = |st: &MemoryStorage| {
        let m = watchfire_promql::parse_metric_selector("{__name__=~\".+\"}").unwrap();
        st.querier(i64::MIN / 2, i64::MAX / 2)
            .unwrap()
            .select(false, None, &m)
            .count()
    };
    assert_eq!(count(&st), 2);
    let yaml = r#"
groups:
- name: rec
  rules:
  - record: room:temp:max
    expr: max by (room) (temp) * 10
- name: alerts
  labels: {team: ops}
  rules:
  - alert: RoomHot
    expr: room:temp:max > 5
    for: 2m
    labels:
      severity: '{{ if gt $value 5.0 }}page{{ else }}ticket{{ end }}'
    annotations:
      summary: '{{ $labels.room }} at {{ $value }} in {{ $externalLabels.site }}'
"#;
    let r = run(&st, yaml, 0, 19, |_| {});
    assert_eq!(episodes(&r, "RoomHot"), [episode(5, Some(7), None, End::Open)]);
    let a = &r.alerts[0];
    assert_eq!(a.group, "alerts");
    assert_eq!(a.labels["severity"], "page");
    assert_eq!(a.labels["team"], "ops");
    assert_eq!(a.annotations["summary"], "a at 10 in lab");
    assert_eq!(a.episodes[0].value, 10.0);
    assert_eq!(r.rules.len(), 1, "only alerting rules are summarised");
    assert_eq!(count(&st), 2, "the backtest wrote nothing to the store");
}

#[test]
fn query_offset_and_group_interval_set_the_evaluation_times() {
    let st = storage();
    add(&st, &[("__name__", "q")], &wave(40, |m| m >= 10));
    let yaml = "groups:\n- name: g\n  interval: 1m\n  query_offset: 2m\n  rules:\n  - alert: Late\n    expr: q > 0\n";
    // At the group's own phase: the first slot at or after `from`.
    let g = &groups(yaml)[0];
    let phase = g.offset_nanos() / 1_000_000;
    assert!(phase > 0 && phase < M);
    let r = backtest::run(groups(yaml), &source(&st), &Options::new(t(0), t(30))).unwrap();
    assert_eq!(
        r.groups[0].first_evaluation.as_deref(),
        Some(backtest::rfc3339(t(0) + phase).as_str())
    );
    assert_eq!(r.groups[0].evaluations, 30);
    assert_eq!(r.groups[0].query_offset_seconds, 120.0);
    // The sample at minute 10 is seen by the first evaluation whose query time (2m earlier)
    // is at or after it: the slot after minute 12.
    let e = &r.alerts[0].episodes[0];
    assert_eq!(e.pending_at, backtest::rfc3339(t(12) + phase));
    assert_eq!(e.firing_at.as_deref(), Some(e.pending_at.as_str()));
}

#[test]
fn exceeding_the_limit_drops_alerts_and_counts_errors() {
    let st = storage();
    add(&st, &[("__name__", "w"), ("i", "1")], &wave(10, |m| m >= 1));
    add(&st, &[("__name__", "w"), ("i", "2")], &wave(10, |m| m >= 5));
    let r = run(
        &st,
        "groups:\n- name: g\n  limit: 1\n  rules:\n  - alert: Many\n    expr: w > 0\n",
        0,
        9,
        |_| {},
    );
    assert_eq!(episodes(&r, "Many"), [episode(1, Some(1), Some(5), End::Dropped)]);
    assert_eq!(r.rules[0].evaluation_errors, 5);
    assert_eq!(
        r.rules[0].last_error.as_deref(),
        Some("exceeded limit of 1 with 2 alerts")
    );
    assert_eq!(r.rules[0].notifications, 1, "a dropped alert sends no resolution");
    assert!(
        r.render_table()
            .contains("Many failed 5 of its evaluations; last error: exceeded limit of 1 with 2 alerts")
    );
}

#[test]
fn alerts_active_at_the_start_are_marked() {
    let st = storage();
    add(&st, &[("__name__", "v")], &[1.0; 10]);
    let r = run(
        &st,
        "groups:\n- name: g\n  rules:\n  - alert: Up\n    expr: v > 0\n    for: 3m\n",
        2,
        9,
        |_| {},
    );
    let e = &r.alerts[0].episodes[0];
    assert!(e.active_at_start);
    assert_eq!((e.pending_at.clone(), e.firing_at.clone()), (at(2), Some(at(5))));
    assert!(r.render_table().contains("active at start"));
}

#[test]
fn bad_ranges_and_huge_ranges_are_refused() {
    let st = storage();
    let yaml = "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: vector(1)\n";
    let err = |o: Options| backtest::run(groups(yaml), &source(&st), &o).unwrap_err();
    assert!(matches!(
        err(Options::new(t(10), t(0))),
        backtest::Error::EmptyRange { .. }
    ));
    let mut o = Options::new(t(0), t(100_000));
    o.step_ms = Some(1000);
    assert_eq!(
        err(o),
        backtest::Error::TooManyEvaluations {
            needed: 6_000_001,
            limit: backtest::DEFAULT_MAX_EVALUATIONS
        }
    );
    let rec = "groups:\n- name: g\n  rules:\n  - record: r\n    expr: vector(1)\n";
    assert_eq!(
        backtest::run(groups(rec), &source(&st), &Options::new(t(0), t(1))).unwrap_err(),
        backtest::Error::NoAlertingRules
    );
}

#[test]
fn times_and_durations_parse_in_every_accepted_form() {
    let now = t(100);
    assert_eq!(backtest::parse_time("now", now), Ok(now));
    assert_eq!(backtest::parse_time("-6h", now), Ok(now - 360 * M));
    assert_eq!(backtest::parse_time("now-1h30m", now), Ok(now - 90 * M));
    assert_eq!(backtest::parse_time("+5m", now), Ok(now + 5 * M));
    assert_eq!(backtest::parse_time("1699999980", now), Ok(T0));
    assert_eq!(backtest::parse_time("1699999980.5", now), Ok(T0 + 500));
    assert_eq!(backtest::parse_time("2023-11-14T22:13:00Z", now), Ok(T0));
    assert_eq!(backtest::parse_time("2023-11-14T23:13:00+01:00", now), Ok(T0));
    assert!(backtest::parse_time("yesterday", now).is_err());
    assert_eq!(backtest::parse_duration("1m30s"), Ok(90_000));
    assert_eq!(backtest::parse_duration("90"), Ok(90_000));
    assert_eq!(backtest::parse_duration("0.5"), Ok(500));
    assert!(backtest::parse_duration("-1m").is_err());
}

async fn post(router: &axum::Router, content_type: &str, body: String) -> (u16, Value) {
    let res = router
        .clone()
        .oneshot(
            Request::post("/rules/backtest")
                .header("content-type", content_type)
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status().as_u16();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test(start_paused = true)]
async fn the_endpoint_backtests_posted_and_loaded_rules() {
    let st = storage();
    add(
        &st,
        &[("__name__", "temp"), ("room", "a")],
        &wave(30, |m| (10..20).contains(&m)),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("loaded.yml");
    std::fs::write(
        &file,
        "groups:\n- name: live\n  interval: 1m\n  rules:\n  - alert: Hot\n    expr: temp > 0.5\n    for: 5m\n  - alert: Other\n    expr: temp > 100\n",
    )
    .unwrap();
    let mut opts = ManagerOptions::new(st.clone(), Engine::default());
    opts.start_time_ms = Some(t(60));
    let manager = Manager::new(opts).unwrap();
    manager
        .update(60_000, 0, std::slice::from_ref(&file), Labels::empty())
        .await
        .unwrap();
    let router = api::watchfire_router(manager);

    // Posted rules as JSON, times in three forms.
    let rules = "groups:\n- name: g\n  rules:\n  - alert: Hot\n    expr: temp > 0.5\n    for: 5m\n";
    let body =
        json!({"rules": [{"name": "mine.yml", "content": rules}], "from": T0 / 1000, "to": at(29), "step": "1m"});
    let (code, v) = post(&router, "application/json", body.to_string()).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "success");
    let ep = &v["data"]["alerts"][0]["episodes"][0];
    assert_eq!(ep["pendingAt"], at(10));
    assert_eq!(ep["firingAt"], at(15));
    assert_eq!(ep["resolvedAt"], at(20));
    assert_eq!(ep["end"], "resolved");
    assert_eq!(v["data"]["alerts"][0]["file"], "mine.yml");
    let report: Report = serde_json::from_value(v["data"].clone()).unwrap();
    assert_eq!(report.rules[0].notifications, 2);

    // A form selecting one loaded rule; `to` defaults to now (the manager's clock, minute 60),
    // `from` is relative to it.
    let form = "group=live&rule=Hot&from=-60m&step=60";
    let (code, v) = post(&router, "application/x-www-form-urlencoded", form.into()).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["data"]["from"], at(0));
    assert_eq!(v["data"]["to"], at(60));
    assert_eq!(v["data"]["rules"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"]["rules"][0]["name"], "Hot");
    assert_eq!(v["data"]["rules"][0]["file"], file.display().to_string());
    assert_eq!(v["data"]["alerts"][0]["episodes"][0]["firingAt"], at(15));

    // Errors: a bad expression with its position, a missing range, nothing selected.
    let bad = json!({"rules": [{"name": "bad.yml", "content": "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up ==\n"}], "from": "-1h"});
    let (code, v) = post(&router, "application/json", bad.to_string()).await;
    assert_eq!(code, 400);
    assert_eq!(v["errorType"], "bad_data");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("bad.yml:5:16: group \"g\", rule 1, \"A\": could not parse expression"),
        "{v}"
    );
    let (code, v) = post(&router, "application/x-www-form-urlencoded", "group=live".into()).await;
    assert_eq!((code, v["error"].as_str()), (400, Some("missing parameter \"from\"")));
    let (code, v) = post(
        &router,
        "application/x-www-form-urlencoded",
        "rule=Nope&from=-1h".into(),
    )
    .await;
    assert_eq!(
        (code, v["error"].as_str()),
        (400, Some("no alerting rules match the request"))
    );
}
