//! Engine tests on explicit timestamps.

use std::path::Path;
use std::sync::Arc;

use watchfire_model::{Labels, is_stale_nan};
use watchfire_promql::engine::{Engine, Value};
use watchfire_storage::Queryable;
use watchfire_tsdb::{Head, HeadOptions, MemoryStorage};

use crate::group::{EvalContext, Group, GroupOptions};
use crate::rule::{AlertState, Health, Rule};
use crate::sender::RecordingSender;

const M: i64 = 60_000;

fn storage() -> Arc<MemoryStorage> {
    Arc::new(MemoryStorage(Head::in_memory(HeadOptions::default())))
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// Appends `values[i]` at `i` minutes (None: no sample).
fn add(st: &MemoryStorage, l: &Labels, values: &[Option<f64>]) {
    use watchfire_storage::Appendable;
    let mut app = st.appender();
    for (i, v) in values.iter().enumerate() {
        if let Some(v) = v {
            app.append(None, l, i as i64 * M, *v).unwrap();
        }
    }
    app.commit().unwrap();
}

fn group_with(yaml: &str, opts: &GroupOptions) -> Group {
    Group::from_file(Path::new("rules.yml"), yaml, opts).unwrap().remove(0)
}

fn group(yaml: &str) -> Group {
    group_with(yaml, &GroupOptions::default())
}

fn ctx(st: &Arc<MemoryStorage>) -> (EvalContext, RecordingSender) {
    let mut c = EvalContext::new(st.clone(), Engine::default());
    let sender = RecordingSender::default();
    c.sender = Some(Arc::new(sender.clone()));
    (c, sender)
}

fn alerting(g: &Group, i: usize) -> &crate::AlertingRule {
    match &g.rules()[i] {
        Rule::Alerting(a) => a,
        Rule::Recording(_) => panic!("not an alerting rule"),
    }
}

/// All raw samples of series matching `selector` between `mint` and `maxt`.
fn raw(st: &MemoryStorage, selector: &str, mint: i64, maxt: i64) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let matchers = watchfire_promql::parse_metric_selector(selector).unwrap();
    let q = st.querier(mint, maxt).unwrap();
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

fn instant(st: &Arc<MemoryStorage>, q: &str, t: i64) -> Vec<(Labels, f64)> {
    let s: &dyn Queryable = &**st;
    match Engine::default().instant(s, q, t).unwrap().value {
        Value::Vector(v) => v.into_iter().map(|s| (s.metric, s.f)).collect(),
        other => panic!("unexpected {other:?}"),
    }
}

const FOR_5M: &str = r#"
groups:
- name: g
  rules:
  - alert: Down
    expr: up == 0
    for: 5m
    labels:
      severity: page
"#;

#[test]
fn alert_goes_pending_firing_inactive_and_is_forgotten_after_15m() {
    let st = storage();
    let up = labels(&[("__name__", "up"), ("job", "a")]);
    let mut vals: Vec<Option<f64>> = vec![Some(0.0); 10];
    vals.extend(vec![Some(1.0); 30]);
    add(&st, &up, &vals);
    let (c, _) = ctx(&st);
    let mut g = group(FOR_5M);
    let expected_labels = labels(&[("alertname", "Down"), ("job", "a"), ("severity", "page")]);
    for minute in 0..=26 {
        let ts = minute * M;
        g.eval(ts, &c);
        let ar = alerting(&g, 0);
        let alerts = ar.alerts();
        match minute {
            0..=4 => {
                assert_eq!(alerts.len(), 1, "minute {minute}");
                assert_eq!(alerts[0].state, AlertState::Pending, "minute {minute}");
                assert_eq!(alerts[0].active_at, 0);
                assert_eq!(alerts[0].labels, expected_labels);
                assert_eq!(ar.state(), AlertState::Pending);
            }
            5..=9 => {
                assert_eq!(alerts[0].state, AlertState::Firing, "minute {minute}");
                assert_eq!(alerts[0].fired_at, Some(5 * M));
            }
            10..=25 => {
                assert_eq!(alerts[0].state, AlertState::Inactive, "minute {minute}");
                assert_eq!(alerts[0].resolved_at, Some(10 * M));
                assert_eq!(ar.state(), AlertState::Inactive);
                assert!(ar.active_alerts().is_empty());
            }
            _ => assert!(alerts.is_empty(), "minute {minute}: resolved alert kept past 15m"),
        }
        assert_eq!(g.rules()[0].health(), Health::Good);
    }
    // ALERTS and ALERTS_FOR_STATE were written, then marked stale on resolution.
    let series = raw(&st, "ALERTS", 0, 30 * M);
    assert_eq!(series.len(), 2);
    let pending = series
        .iter()
        .find(|(l, _)| l.get("alertstate") == Some("pending"))
        .unwrap();
    assert_eq!(
        pending.0,
        labels(&[
            ("__name__", "ALERTS"),
            ("alertname", "Down"),
            ("alertstate", "pending"),
            ("job", "a"),
            ("severity", "page")
        ])
    );
    let p: Vec<_> = pending.1.iter().map(|(t, v)| (*t, is_stale_nan(*v))).collect();
    assert_eq!(
        p,
        vec![
            (0, false),
            (M, false),
            (2 * M, false),
            (3 * M, false),
            (4 * M, false),
            (5 * M, true)
        ]
    );
    let firing = series
        .iter()
        .find(|(l, _)| l.get("alertstate") == Some("firing"))
        .unwrap();
    assert_eq!(firing.1.first().unwrap().0, 5 * M);
    assert_eq!(firing.1.last().unwrap().0, 10 * M);
    assert!(is_stale_nan(firing.1.last().unwrap().1));
    let for_state = raw(&st, "ALERTS_FOR_STATE", 0, 30 * M);
    assert_eq!(for_state.len(), 1);
    assert!(!for_state[0].0.has("alertstate"));
    assert_eq!(for_state[0].1[3], (3 * M, 0.0));
}

#[test]
fn alerts_are_sent_and_resent_as_upstream() {
    let st = storage();
    let up = labels(&[("__name__", "up"), ("job", "a")]);
    let mut vals: Vec<Option<f64>> = vec![Some(0.0); 10];
    vals.extend(vec![Some(1.0); 20]);
    add(&st, &up, &vals);
    let (mut c, sender) = ctx(&st);
    c.external_url = "http://prom:9090".to_owned();
    let mut g = group(FOR_5M);
    let mut sent_at = Vec::new();
    for minute in 0..=27 {
        g.eval(minute * M, &c);
        for a in sender.take() {
            sent_at.push((minute, a.starts_at, a.ends_at));
            assert_eq!(a.generator_url, "http://prom:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1");
        }
    }
    let firing_end = |m: i64| Some(m * M + 4 * M);
    assert_eq!(
        sent_at,
        vec![
            // Firing at 5m; resent when LastSentAt + 1m < ts, so every other minute.
            (5, Some(5 * M), firing_end(5)),
            (7, Some(5 * M), firing_end(7)),
            (9, Some(5 * M), firing_end(9)),
            // Resolved at 10m: sent at once, then resent until forgotten.
            (10, Some(5 * M), Some(10 * M)),
            (12, Some(5 * M), Some(10 * M)),
            (14, Some(5 * M), Some(10 * M)),
            (16, Some(5 * M), Some(10 * M)),
            (18, Some(5 * M), Some(10 * M)),
            (20, Some(5 * M), Some(10 * M)),
            (22, Some(5 * M), Some(10 * M)),
            (24, Some(5 * M), Some(10 * M)),
        ]
    );
}

#[test]
fn valid_until_uses_the_longer_of_interval_and_resend_delay() {
    let st = storage();
    let up = labels(&[("__name__", "up")]);
    add(&st, &up, &[Some(0.0); 10]);
    let (c, sender) = ctx(&st);
    let mut g = group("groups:\n- name: g\n  interval: 5m\n  rules:\n  - alert: A\n    expr: up == 0\n");
    g.eval(0, &c);
    let sent = sender.take();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].ends_at, Some(20 * M));
}

#[test]
fn pending_alert_that_flaps_is_dropped_and_restarts() {
    let st = storage();
    let up = labels(&[("__name__", "up")]);
    // Down at 0-2m, up at 3m, down again from 4m.
    add(
        &st,
        &up,
        &[
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(1.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
            Some(0.0),
        ],
    );
    let (c, sender) = ctx(&st);
    let mut g = group("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    for: 3m\n");
    for minute in 0..=7 {
        g.eval(minute * M, &c);
        let ar = alerting(&g, 0);
        match minute {
            0..=2 => assert_eq!(ar.alerts()[0].active_at, 0),
            3 => assert!(ar.alerts().is_empty(), "pending alerts are deleted, not resolved"),
            4..=6 => {
                assert_eq!(ar.alerts()[0].active_at, 4 * M);
                assert_eq!(ar.alerts()[0].state, AlertState::Pending);
            }
            _ => assert_eq!(ar.alerts()[0].state, AlertState::Firing),
        }
    }
    assert_eq!(sender.take().len(), 1, "pending alerts are never sent");
}

#[test]
fn keep_firing_for_holds_firing_and_resets_when_the_alert_returns() {
    let st = storage();
    let up = labels(&[("__name__", "up")]);
    // Down 0-1m, up 2-3m, down 4m, up from 5m.
    let vals = [0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
    add(&st, &up, &vals.iter().map(|v| Some(*v)).collect::<Vec<_>>());
    let (c, _) = ctx(&st);
    let mut g = group("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    keep_firing_for: 3m\n");
    let mut states = Vec::new();
    for minute in 0..=9 {
        g.eval(minute * M, &c);
        let a = alerting(&g, 0).alerts()[0].clone();
        states.push((minute, a.state, a.keep_firing_since.map(|t| t / M)));
    }
    use AlertState::*;
    assert_eq!(
        states,
        vec![
            (0, Firing, None),
            (1, Firing, None),
            (2, Firing, Some(2)),
            (3, Firing, Some(2)),
            (4, Firing, None),
            (5, Firing, Some(5)),
            (6, Firing, Some(5)),
            (7, Firing, Some(5)),
            (8, Inactive, Some(5)),
            (9, Inactive, Some(5)),
        ]
    );
    assert_eq!(alerting(&g, 0).alerts()[0].resolved_at, Some(8 * M));
}

#[test]
fn recording_rules_append_with_labels_and_mark_vanished_series_stale() {
    let st = storage();
    let a = labels(&[("__name__", "up"), ("job", "a"), ("instance", "1")]);
    let b = labels(&[("__name__", "up"), ("job", "b"), ("instance", "2")]);
    add(&st, &a, &[Some(1.0), Some(1.0), Some(1.0), Some(1.0)]);
    add(&st, &b, &[Some(1.0), Some(1.0), Some(0.0), Some(0.0)]);
    let (c, _) = ctx(&st);
    let mut g = group(
        r#"
groups:
- name: g
  labels: {team: ops, source: group}
  rules:
  - record: job:up:ok
    expr: up == 1
    labels: {source: rule}
  - record: job:up:count
    expr: count(job:up:ok)
"#,
    );
    for minute in 0..=3 {
        g.eval(minute * M, &c);
    }
    let rec = raw(&st, "job:up:ok", 0, 10 * M);
    assert_eq!(rec.len(), 2);
    assert_eq!(
        rec[0].0,
        labels(&[
            ("__name__", "job:up:ok"),
            ("instance", "1"),
            ("job", "a"),
            ("source", "rule"),
            ("team", "ops")
        ])
    );
    assert_eq!(rec[0].1, vec![(0, 1.0), (M, 1.0), (2 * M, 1.0), (3 * M, 1.0)]);
    let vanished: Vec<_> = rec[1].1.iter().map(|(t, v)| (*t, is_stale_nan(*v))).collect();
    assert_eq!(vanished, vec![(0, false), (M, false), (2 * M, true)]);
    // The second rule sees the first rule's output of the same evaluation.
    let count = raw(&st, "job:up:count", 0, 10 * M);
    assert_eq!(count[0].1, vec![(0, 2.0), (M, 2.0), (2 * M, 1.0), (3 * M, 1.0)]);
}

#[test]
fn query_offset_shifts_query_and_write_time() {
    let st = storage();
    let a = labels(&[("__name__", "x")]);
    add(&st, &a, &[Some(1.0), Some(2.0), Some(3.0), Some(4.0)]);
    let (c, _) = ctx(&st);
    let mut g = group("groups:\n- name: g\n  query_offset: 1m\n  rules:\n  - record: y\n    expr: x * 10\n");
    g.eval(3 * M, &c);
    let rec = raw(&st, "y", 0, 10 * M);
    assert_eq!(rec[0].1, vec![(2 * M, 30.0)]);
}

#[test]
fn duplicate_output_is_an_error() {
    let st = storage();
    add(&st, &labels(&[("__name__", "x"), ("a", "1")]), &[Some(1.0)]);
    add(&st, &labels(&[("__name__", "x"), ("a", "2")]), &[Some(1.0)]);
    let (c, _) = ctx(&st);
    let mut g = group("groups:\n- name: g\n  rules:\n  - record: y\n    expr: x\n    labels: {a: same}\n");
    g.eval(0, &c);
    assert_eq!(g.rules()[0].health(), Health::Bad);
    assert_eq!(
        g.rules()[0].last_error(),
        Some("vector contains metrics with the same labelset after applying rule labels")
    );
}

#[test]
fn group_limit_fails_rules_and_clears_alerts() {
    let st = storage();
    add(&st, &labels(&[("__name__", "up"), ("i", "1")]), &[Some(0.0), Some(0.0)]);
    add(&st, &labels(&[("__name__", "up"), ("i", "2")]), &[Some(0.0), Some(1.0)]);
    let (c, sender) = ctx(&st);
    let mut g = group(
        "groups:\n- name: g\n  limit: 1\n  rules:\n  - alert: A\n    expr: up == 0\n  - record: r\n    expr: up\n",
    );
    g.eval(0, &c);
    assert_eq!(g.rules()[0].health(), Health::Bad);
    assert_eq!(g.rules()[0].last_error(), Some("exceeded limit of 1 with 2 alerts"));
    assert!(alerting(&g, 0).alerts().is_empty());
    assert_eq!(g.rules()[1].last_error(), Some("exceeded limit of 1 with 2 series"));
    assert!(sender.take().is_empty());
    assert!(raw(&st, "r", 0, M).is_empty());
    // Within the limit again.
    g.eval(M, &c);
    assert_eq!(g.rules()[0].health(), Health::Good);
    assert_eq!(g.rules()[0].last_error(), None);
    assert_eq!(alerting(&g, 0).alerts().len(), 1);
}

#[test]
fn labels_and_annotations_are_rendered_per_alert() {
    let st = storage();
    add(
        &st,
        &labels(&[("__name__", "load"), ("instance", "h1:9100")]),
        &[Some(3.5)],
    );
    add(
        &st,
        &labels(&[("__name__", "load"), ("instance", "h2:9100")]),
        &[Some(0.5)],
    );
    let (mut c, _) = ctx(&st);
    c.external_labels = labels(&[("env", "prod")]);
    c.external_url = "http://prom.example".to_owned();
    let mut g = group(
        r#"
groups:
- name: g
  rules:
  - alert: Load
    expr: load > 0
    labels:
      severity: '{{ if gt $value 1.0 }}high{{ else }}low{{ end }}'
      empty: '{{ "" }}'
    annotations:
      summary: '{{ $labels.instance | stripPort }} load {{ $value }} in {{ $externalLabels.env }} ({{ $externalURL }}) name={{ $labels.__name__ }}'
      total: '{{ with query "sum(load)" }}{{ . | first | value }}{{ end }}'
      broken: '{{ .Nope.Field }}'
"#,
    );
    g.eval(0, &c);
    let alerts = alerting(&g, 0).alerts();
    assert_eq!(alerts.len(), 2);
    assert_eq!(
        alerts[0].labels,
        labels(&[("alertname", "Load"), ("instance", "h1:9100"), ("severity", "high")])
    );
    assert_eq!(alerts[1].labels.get("severity"), Some("low"));
    assert_eq!(
        alerts[0].annotations["summary"],
        "h1 load 3.5 in prod (http://prom.example) name=load"
    );
    assert_eq!(alerts[0].annotations["total"], "4");
    assert!(
        alerts[0].annotations["broken"].starts_with("<error expanding template: "),
        "{}",
        alerts[0].annotations["broken"]
    );
    // ALERTS carries the raw template of a label whose expansion was empty, as upstream.
    let series = instant(&st, "ALERTS", 0);
    assert_eq!(series[0].0.get("empty"), Some("{{ \"\" }}"));
}

#[test]
fn for_state_is_restored_after_an_outage() {
    let st = storage();
    let up = labels(&[("__name__", "up")]);
    add(&st, &up, &(0..60).map(|_| Some(0.0)).collect::<Vec<_>>());
    let (c, _) = ctx(&st);
    let yaml = "groups:\n- name: g\n  rules:\n  - alert: Long\n    expr: up == 0\n    for: 20m\n  - alert: Short\n    expr: up == 0\n    for: 15m\n";
    // First run: pending from 0 to 10m.
    let mut g = group(yaml);
    for minute in 0..=10 {
        g.eval(minute * M, &c);
    }
    // Restart at 40m: ALERTS are not written before the restore.
    let mut g = group_with(
        yaml,
        &GroupOptions {
            should_restore: true,
            ..GroupOptions::default()
        },
    );
    g.eval(40 * M, &c);
    assert!(instant(&st, "ALERTS", 40 * M).is_empty());
    assert_eq!(alerting(&g, 0).alerts()[0].active_at, 40 * M);
    g.eval(41 * M, &c);
    g.restore_for_state(41 * M, &c);
    // Long: 10m spent pending, 10m remaining (not under the grace period): ActiveAt is moved
    // forward by the downtime (41m - 10m).
    assert_eq!(alerting(&g, 0).alerts()[0].active_at, 31 * M);
    // Short: 5m remaining is under the 10m grace period: it fires 10m after the restore.
    assert_eq!(alerting(&g, 1).alerts()[0].active_at, 41 * M + 10 * M - 15 * M);
    g.eval(42 * M, &c);
    assert_eq!(instant(&st, "ALERTS", 42 * M).len(), 2);
    for minute in 43..=60 {
        g.eval(minute * M, &c);
        let long = alerting(&g, 0).alerts()[0].state;
        let short = alerting(&g, 1).alerts()[0].state;
        assert_eq!(long == AlertState::Firing, minute >= 51, "Long at {minute}");
        assert_eq!(short == AlertState::Firing, minute >= 51, "Short at {minute}");
    }
}

#[test]
fn for_state_older_than_the_outage_tolerance_is_ignored() {
    let st = storage();
    let up = labels(&[("__name__", "up")]);
    add(&st, &up, &(0..100).map(|_| Some(0.0)).collect::<Vec<_>>());
    let (c, _) = ctx(&st);
    let yaml = "groups:\n- name: g\n  rules:\n  - alert: Long\n    expr: up == 0\n    for: 20m\n";
    let mut g = group(yaml);
    for minute in 0..=10 {
        g.eval(minute * M, &c);
    }
    let mut g = group_with(
        yaml,
        &GroupOptions {
            should_restore: true,
            ..GroupOptions::default()
        },
    );
    g.eval(90 * M, &c);
    g.restore_for_state(90 * M, &c);
    assert_eq!(alerting(&g, 0).alerts()[0].active_at, 90 * M);
}

#[test]
fn eval_timestamps_keep_a_stable_phase() {
    let g = group("groups:\n- name: g\n  interval: 1m\n  rules:\n  - record: r\n    expr: '1'\n");
    let interval = 60_000_000_000i64;
    let offset = g.offset_nanos();
    assert!((0..interval).contains(&offset));
    for now in [
        1_700_000_000_123_456_789i64,
        1_700_000_033_000_000_000,
        1_700_000_059_999_999_999,
    ] {
        let t = g.eval_timestamp_nanos(now);
        assert!(t <= now && now - t < interval, "{t} {now}");
        assert_eq!((t - offset).rem_euclid(interval), 0);
    }
}

#[test]
fn reload_state_is_copied_for_rules_with_the_same_name_and_labels() {
    let st = storage();
    let up = labels(&[("__name__", "up")]);
    add(&st, &up, &[Some(0.0), Some(0.0), Some(0.0)]);
    let (c, _) = ctx(&st);
    let mut old = group(FOR_5M);
    old.eval(0, &c);
    old.eval(M, &c);
    let mut new = group(&FOR_5M.replace("5m", "2m"));
    assert!(!new.same_as(&old));
    new.copy_state(&mut old);
    assert_eq!(alerting(&new, 0).alerts()[0].active_at, 0);
    new.eval(2 * M, &c);
    assert_eq!(alerting(&new, 0).alerts()[0].state, AlertState::Firing);
}

#[test]
fn group_phase_matches_prometheus() {
    // Debian's Prometheus evaluated this group (file /tmp/rphase/r.yml, 10s interval) at
    // 8.4125s past each 10s boundary (lastEvaluation 09:44:38.41255Z, which includes the
    // scheduling delay).
    let g = Group::from_file(
        Path::new("/tmp/rphase/r.yml"),
        "groups:\n- name: phase\n  interval: 10s\n  rules:\n  - record: x\n    expr: vector(1)\n",
        &GroupOptions::default(),
    )
    .unwrap()
    .remove(0);
    let offset = g.offset_nanos();
    assert!((8_400_000_000..=8_412_534_820).contains(&offset), "{offset}");
}
