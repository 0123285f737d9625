//! Query limits and the engine API: max samples, timeout, cancellation, lookback override,
//! annotations with positions.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration as StdDuration;

use watchfire_model::{Duration, Labels};
use watchfire_promql::engine::{Engine, EngineOptions, Error, QueryOptions, Value};
use watchfire_storage::Appendable;
use watchfire_tsdb::{Head, HeadOptions, MemoryStorage};

/// `series` counters `c_total{i="…"}` with a sample every 15s for `points` points.
fn storage(series: usize, points: i64) -> MemoryStorage {
    let s = MemoryStorage(Head::in_memory(HeadOptions::default()));
    let mut app = s.appender();
    for i in 0..series {
        let l = Labels::from_pairs([("__name__", "c_total"), ("i", &i.to_string()), ("job", "j")]);
        let mut r = None;
        for p in 0..points {
            r = Some(app.append(r, &l, p * 15_000, (p * (i as i64 + 1)) as f64).unwrap());
        }
    }
    app.commit().unwrap();
    s
}

#[test]
fn max_samples_fails_with_upstream_text() {
    let s = storage(50, 100);
    let engine = Engine::new(EngineOptions {
        max_samples: 500,
        ..EngineOptions::default()
    });
    // 50 series x 20 samples in a 5m window: 1000 samples held at once.
    let err = engine.instant(&s, "c_total[5m]", 1_000_000).unwrap_err();
    assert!(matches!(err, Error::TooManySamples));
    assert_eq!(
        err.to_string(),
        "query processing would load too many samples into memory in query execution"
    );
    // A range query holding one point per step and series also trips the limit.
    let err = engine.range(&s, "c_total", 0, 1_400_000, 15_000).unwrap_err();
    assert!(matches!(err, Error::TooManySamples));
    // A function over the same range reads one series' window at a time and stays within
    // the limit.
    let ok = engine.instant(&s, "sum(rate(c_total[5m]))", 1_000_000).unwrap();
    assert!(matches!(ok.value, Value::Vector(ref v) if v.len() == 1));
}

#[test]
fn cancellation_and_timeout_stop_evaluation() {
    let s = storage(20, 400);
    let engine = Engine::default();
    let cancel = Arc::new(AtomicBool::new(true));
    let qopts = QueryOptions {
        cancel: Some(cancel),
        ..QueryOptions::default()
    };
    let err = engine
        .range_with(&s, "rate(c_total[5m])", 0, 6_000_000, 15_000, &qopts)
        .unwrap_err();
    assert!(matches!(err, Error::Canceled));
    assert_eq!(err.to_string(), "query was canceled in expression evaluation");

    let engine = Engine::new(EngineOptions {
        timeout: Some(StdDuration::ZERO),
        ..EngineOptions::default()
    });
    let err = engine
        .range(&s, "sum(rate(c_total[5m]))", 0, 6_000_000, 15_000)
        .unwrap_err();
    assert!(matches!(err, Error::Timeout));
    assert_eq!(err.to_string(), "query timed out in expression evaluation");
}

#[test]
fn lookback_delta_can_be_overridden_per_query() {
    let s = storage(1, 1);
    let engine = Engine::default();
    let at_4m = engine.instant(&s, "c_total", 240_000).unwrap();
    assert!(matches!(at_4m.value, Value::Vector(ref v) if v.len() == 1));
    let qopts = QueryOptions {
        lookback_delta: Some(Duration::from_secs(60)),
        ..QueryOptions::default()
    };
    let short = engine.instant_with(&s, "c_total", 240_000, &qopts).unwrap();
    assert!(matches!(short.value, Value::Vector(ref v) if v.is_empty()));
}

#[test]
fn rate_of_non_counter_has_positioned_info() {
    let s = MemoryStorage(Head::in_memory(HeadOptions::default()));
    let mut app = s.appender();
    let l = Labels::from_pairs([("__name__", "foo")]);
    for p in 0..10 {
        app.append(None, &l, p * 15_000, p as f64).unwrap();
    }
    app.commit().unwrap();
    let q = "sum(rate(foo[1m]))";
    let r = Engine::default().instant(&s, q, 120_000).unwrap();
    let infos: Vec<String> = r.annotations.infos().map(|a| a.with_position(q)).collect();
    assert_eq!(
        infos,
        [
            r#"PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "foo" (1:10)"#
        ]
    );
    let Value::Vector(v) = r.value else {
        panic!("vector expected")
    };
    assert!((v[0].f - 1.0 / 15.0).abs() < 1e-9, "{}", v[0].f);
}

#[test]
fn range_query_rejects_range_vectors() {
    let s = storage(1, 1);
    let err = Engine::default()
        .range(&s, "c_total[5m]", 0, 60_000, 15_000)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid expression type "range vector" for range query, must be Scalar or instant Vector"#
    );
}
