//! Alertmanager's acceptance scenarios (test/with_api_v2, reference §9.2), re-expressed as
//! timelines on paused tokio time against the recording notifier.

use crate::common::*;

fn cfg(group_by: &str, gw: &str, gi: &str, ri: &str, extra: &str) -> String {
    format!(
        "global:\n  resolve_timeout: 5m\nroute:\n  receiver: default\n  group_by: {group_by}\n  group_wait: {gw}\n  group_interval: {gi}\n  repeat_interval: {ri}\nreceivers:\n- name: default\n  webhook_configs:\n  - url: http://127.0.0.1:1/hook\n{extra}"
    )
}

#[tokio::test(start_paused = true)]
async fn repeat_then_resolve() {
    // TestRepeat.
    let h = Harness::new(&cfg("[alertname]", "1s", "1s", "1ms", ""));
    h.until(1.0).await;
    h.push(vec![alert(&[("alertname", "test1")]).active(&h, 1.0, None).build()]);
    h.until(3.5).await;
    h.push(vec![
        alert(&[("alertname", "test1")]).active(&h, 1.0, Some(3.0)).build(),
    ]);
    h.until(4.5).await;
    let w = |from, to, alerts| Want {
        from,
        to,
        receiver: "default",
        index: 0,
        alerts,
    };
    check(
        &h,
        &h.take(),
        &[
            w(2.0, 2.5, vec![firing("alertname=test1")]),
            w(3.0, 3.5, vec![firing("alertname=test1")]),
            w(4.0, 4.5, vec![resolved("alertname=test1", 3.0)]),
        ],
    );
}

#[tokio::test(start_paused = true)]
async fn resolve_timeout_resolves() {
    // TestResolved.
    let mut c = cfg("[]", "1s", "5s", "4h", "");
    c = c.replace("resolve_timeout: 5m", "resolve_timeout: 10s");
    let h = Harness::new(&c);
    h.until(1.0).await;
    h.push(vec![
        alert(&[("alertname", "test"), ("lbl", "v1")]).build(),
        alert(&[("alertname", "test"), ("lbl", "v2")]).build(),
        alert(&[("alertname", "test"), ("lbl", "v3")]).build(),
    ]);
    h.until(13.0).await;
    let got = h.take();
    let names = [
        "alertname=test,lbl=v1",
        "alertname=test,lbl=v2",
        "alertname=test,lbl=v3",
    ];
    check(
        &h,
        &got,
        &[
            Want {
                from: 2.0,
                to: 2.5,
                receiver: "default",
                index: 0,
                alerts: names.iter().map(|n| firing(n)).collect(),
            },
            Want {
                from: 12.0,
                to: 13.0,
                receiver: "default",
                index: 0,
                alerts: names.iter().map(|n| resolved(n, 11.0)).collect(),
            },
        ],
    );
    // The payload carries the start the server defaulted.
    assert!(
        got[0]
            .group
            .alerts
            .iter()
            .all(|a| (h.rel(a.starts_at) - 1.0).abs() < 0.001)
    );
    assert_eq!(got[0].group.reason.as_str(), "first notification");
    assert_eq!(got[1].group.reason.as_str(), "all alerts resolved");
    assert_eq!(got[1].group.status(), "resolved");
}

#[tokio::test(start_paused = true)]
async fn batching_and_repeat_on_group_interval_ticks() {
    // TestBatching: a repeat happens on the first tick more than repeat_interval after the
    // last send.
    let h = Harness::new(&cfg("[]", "1s", "1s", "4900ms", ""));
    let a = |n: &str| alert(&[("alertname", n)]).build();
    h.until(1.1).await;
    h.push(vec![a("test1")]);
    h.until(1.7).await;
    h.push(vec![a("test5")]);
    h.until(3.3).await;
    h.push(vec![a("test2"), a("test3"), a("test4")]);
    h.until(9.5).await;
    let all5: Vec<_> = ["test1", "test2", "test3", "test4", "test5"]
        .iter()
        .map(|n| firing(&format!("alertname={n}")))
        .collect();
    check(
        &h,
        &h.take(),
        &[
            Want {
                from: 2.0,
                to: 2.5,
                receiver: "default",
                index: 0,
                alerts: vec![firing("alertname=test1"), firing("alertname=test5")],
            },
            Want {
                from: 4.1,
                to: 4.5,
                receiver: "default",
                index: 0,
                alerts: all5.clone(),
            },
            Want {
                from: 9.1,
                to: 9.5,
                receiver: "default",
                index: 0,
                alerts: all5,
            },
        ],
    );
}

#[tokio::test(start_paused = true)]
async fn repeat_interval_equal_to_group_interval_repeats_every_second_tick() {
    // Issue #676: gi=5m, ri=5m → a repeat every 10 minutes.
    let h = Harness::new(&cfg("[]", "30s", "5m", "5m", ""));
    h.push(vec![
        alert(&[("alertname", "a")]).active(&h, 0.0, Some(86400.0)).build(),
    ]);
    h.until(30.0 + 25.0 * 60.0 + 1.0).await;
    let times: Vec<f64> = h.take().iter().map(|r| h.rel(r.group.now)).collect();
    assert_eq!(times, vec![30.0, 30.0 + 600.0, 30.0 + 1200.0]);
}

#[tokio::test(start_paused = true)]
async fn old_alert_flushes_immediately_and_fire_resolve_within_group_wait_never_notifies() {
    let h = Harness::new(&cfg("[alertname]", "30s", "5m", "4h", ""));
    h.until(100.0).await;
    // Started long before: no group_wait.
    h.push(vec![alert(&[("alertname", "old")]).active(&h, 0.0, None).build()]);
    // Fires and resolves inside group_wait: never notified.
    h.push(vec![alert(&[("alertname", "blip")]).active(&h, 100.0, None).build()]);
    h.until(110.0).await;
    h.push(vec![
        alert(&[("alertname", "blip")]).active(&h, 100.0, Some(110.0)).build(),
    ]);
    h.until(200.0).await;
    check(
        &h,
        &h.take(),
        &[Want {
            from: 100.0,
            to: 100.0,
            receiver: "default",
            index: 0,
            alerts: vec![firing("alertname=old")],
        }],
    );
}

#[tokio::test(start_paused = true)]
async fn merging_updates() {
    // TestMergeAlerts: earliest start, latest annotations, latest resolve time, no merge
    // without overlap.
    let h = Harness::new(&cfg("[alertname]", "1s", "1s", "1ms", ""));
    let a = || alert(&[("alertname", "test")]);
    h.until(1.0).await;
    h.push(vec![a().active(&h, 1.1, None).build()]);
    h.until(1.2).await;
    h.push(vec![a().active(&h, 1.0, None).build()]);
    h.until(2.1).await;
    h.push(vec![a().annotate("ann", "v1").active(&h, 2.0, None).build()]);
    h.until(3.6).await;
    h.push(vec![a().annotate("ann", "v2").active(&h, 1.5, None).build()]);
    h.until(4.6).await;
    h.push(vec![a().active(&h, 3.0, Some(4.5)).build()]);
    h.until(4.8).await;
    h.push(vec![
        a().annotate("ann", "v3").active(&h, 2.9, Some(4.8)).build(),
        a().annotate("ann", "v3").active(&h, 2.9, Some(4.1)).build(),
    ]);
    h.until(5.3).await;
    h.push(vec![a().active(&h, 5.0, None).build()]);
    h.until(6.5).await;
    let got = h.take();
    let at = |t: f64| {
        got.iter()
            .find(|r| (t..=t + 0.5).contains(&h.rel(r.group.now)))
            .unwrap_or_else(|| panic!("no notification at {t}"))
    };
    let one = |r: &watchfire_alerting::Recorded| r.group.alerts[0].clone();
    assert!(
        (h.rel(one(at(2.0)).starts_at) - 1.0).abs() < 1e-6,
        "earliest start wins"
    );
    assert_eq!(one(at(3.0)).annotations.get("ann").map(String::as_str), Some("v1"));
    assert_eq!(one(at(4.0)).annotations.get("ann").map(String::as_str), Some("v2"));
    let five = one(at(5.0));
    assert_eq!(five.annotations.get("ann").map(String::as_str), Some("v3"));
    assert!((h.rel(five.starts_at) - 1.0).abs() < 1e-6);
    assert!((h.rel(five.ends_at) - 4.8).abs() < 1e-6, "latest resolve time wins");
    // The resolved notification at 5 emptied the group; the re-fired alert opened a new one
    // (group_wait again, from 5.3).
    let six = one(at(6.0));
    assert!(
        (h.rel(six.starts_at) - 5.0).abs() < 1e-6,
        "no overlap: replaced, not merged"
    );
    assert!(watchfire_alerting::types::is_zero(six.ends_at), "firing again");
}

#[tokio::test(start_paused = true)]
async fn send_resolved_per_integration() {
    // TestResolvedFilter: integration 0 sends resolved alerts, integration 1 does not.
    let mut c = cfg(
        "[]",
        "1s",
        "5s",
        "4h",
        "  - url: http://127.0.0.1:1/other\n    send_resolved: false\n",
    );
    c = c.replace("resolve_timeout: 5m", "resolve_timeout: 10s");
    let h = Harness::new(&c);
    let v = |n: &str| alert(&[("alertname", "test"), ("lbl", n)]);
    h.until(1.0).await;
    h.push(vec![
        v("v1").active(&h, 1.0, None).build(),
        v("v2").active(&h, 1.0, None).build(),
    ]);
    h.until(3.0).await;
    h.push(vec![
        v("v1").active(&h, 1.0, Some(4.0)).build(),
        v("v3").active(&h, 3.0, None).build(),
    ]);
    h.until(8.0).await;
    h.push(vec![v("v3").active(&h, 3.0, None).build()]);
    h.until(12.5).await;
    let mut got = h.take();
    got.sort_by(|a, b| {
        (a.group.integration.index, h.rel(a.group.now))
            .partial_cmp(&(b.group.integration.index, h.rel(b.group.now)))
            .expect("finite")
    });
    let n = |s: &str| format!("alertname=test,lbl={s}");
    let w = |from: f64, index: u32, alerts| Want {
        from,
        to: from + 0.5,
        receiver: "default",
        index,
        alerts,
    };
    check(
        &h,
        &got,
        &[
            w(2.0, 0, vec![firing(&n("v1")), firing(&n("v2"))]),
            w(
                7.0,
                0,
                vec![resolved(&n("v1"), 4.0), firing(&n("v2")), firing(&n("v3"))],
            ),
            w(12.0, 0, vec![resolved(&n("v2"), 11.0), firing(&n("v3"))]),
            w(2.0, 1, vec![firing(&n("v1")), firing(&n("v2"))]),
            w(7.0, 1, vec![firing(&n("v2")), firing(&n("v3"))]),
        ],
    );
}

#[tokio::test(start_paused = true)]
async fn failing_integration_is_retried_and_logged_per_integration() {
    // Like TestRetry: each integration has its own log entry; a failing one is retried with
    // backoff (0.5s, 0.75s, 1.125s, 1.6875s) within the flush and notified once it works.
    let c = cfg("[]", "1s", "2s", "3s", "  - url: http://127.0.0.1:1/second\n");
    let h = Harness::new(&c);
    h.rec.set_failing("default", "webhook", 1, true);
    h.until(1.0).await;
    h.push(vec![alert(&[("alertname", "test1")]).build()]);
    h.until(4.5).await;
    h.rec.set_failing("default", "webhook", 1, false);
    h.until(6.5).await;
    let got = h.take();
    let times = |idx: u32| -> Vec<f64> {
        got.iter()
            .filter(|r| r.group.integration.index == idx)
            .map(|r| h.rel(r.group.now))
            .collect()
    };
    // Integration 1 succeeded at 2 + 4.0625 within the t=2 flush (whose `now` stays 2).
    assert_eq!(times(1), vec![2.0]);
    // Integration 0: t=2, then the next tick came due during the long flush and ran at once
    // (t≈6.06): a repeat, as 6.06 − 2 > 3s.
    let t0 = times(0);
    assert_eq!(t0.len(), 2, "{t0:?}");
    assert_eq!(t0[0], 2.0);
    assert!((t0[1] - 6.0625).abs() < 0.01, "{t0:?}");
    let hist = h.alerting.history(&Default::default());
    let failed_then_sent = hist
        .iter()
        .find(|e| e.index == 1)
        .expect("history entry for integration 1");
    assert_eq!(failed_then_sent.attempts, 5);
    assert_eq!(failed_then_sent.outcome, watchfire_alerting::Outcome::Sent);
    assert_eq!(
        h.metric(
            "alertmanager_notification_requests_failed_total",
            &[("integration", "webhook")]
        ),
        Some(4.0)
    );
}

#[tokio::test(start_paused = true)]
async fn inhibition() {
    // TestInhibiting.
    let extra = "inhibit_rules:\n- source_matchers: [alertname=JobDown]\n  target_matchers: [alertname=InstanceDown]\n  equal: [job, zone]\n";
    let h = Harness::new(&cfg("[]", "1s", "1s", "1s", extra));
    let test1 = || alert(&[("alertname", "test1"), ("job", "testjob"), ("zone", "aa")]);
    let id_aa = || alert(&[("alertname", "InstanceDown"), ("job", "testjob"), ("zone", "aa")]);
    let id_ab = || alert(&[("alertname", "InstanceDown"), ("job", "testjob"), ("zone", "ab")]);
    let jd = || alert(&[("alertname", "JobDown"), ("job", "testjob"), ("zone", "aa")]);
    h.until(1.0).await;
    h.push(vec![
        test1().active(&h, 1.0, None).build(),
        id_aa().active(&h, 1.0, None).build(),
        id_ab().active(&h, 1.0, None).build(),
    ]);
    h.until(2.2).await;
    h.push(vec![jd().active(&h, 2.2, None).build()]);
    h.until(3.6).await;
    h.push(vec![jd().active(&h, 2.2, Some(3.6)).build()]);
    h.until(4.5).await;
    let s_test1 = "alertname=test1,job=testjob,zone=aa";
    let s_aa = "alertname=InstanceDown,job=testjob,zone=aa";
    let s_ab = "alertname=InstanceDown,job=testjob,zone=ab";
    let s_jd = "alertname=JobDown,job=testjob,zone=aa";
    let w = |from: f64, alerts| Want {
        from,
        to: from + 0.5,
        receiver: "default",
        index: 0,
        alerts,
    };
    check(
        &h,
        &h.take(),
        &[
            w(2.0, vec![firing(s_test1), firing(s_aa), firing(s_ab)]),
            w(3.0, vec![firing(s_test1), firing(s_ab), firing(s_jd)]),
            w(
                4.0,
                vec![firing(s_test1), firing(s_aa), firing(s_ab), resolved(s_jd, 3.6)],
            ),
        ],
    );
    assert_eq!(
        h.metric(
            "alertmanager_notifications_suppressed_total",
            &[("reason", "inhibition")]
        ),
        Some(1.0)
    );
}

#[tokio::test(start_paused = true)]
async fn always_inhibited_alert_appears_in_all_resolved() {
    // TestAlwaysInhibiting.
    let extra = "inhibit_rules:\n- source_matchers: [alertname=JobDown]\n  target_matchers: [alertname=InstanceDown]\n  equal: [job, zone]\n";
    let h = Harness::new(&cfg("[]", "1s", "1s", "1s", extra));
    let id = || alert(&[("alertname", "InstanceDown"), ("job", "testjob"), ("zone", "aa")]);
    let jd = || alert(&[("alertname", "JobDown"), ("job", "testjob"), ("zone", "aa")]);
    h.until(1.0).await;
    h.push(vec![
        id().active(&h, 1.0, None).build(),
        jd().active(&h, 1.0, None).build(),
    ]);
    h.until(2.6).await;
    h.push(vec![
        id().active(&h, 1.0, Some(2.6)).build(),
        jd().active(&h, 1.0, Some(2.6)).build(),
    ]);
    h.until(3.5).await;
    let w = |from: f64, alerts| Want {
        from,
        to: from + 0.5,
        receiver: "default",
        index: 0,
        alerts,
    };
    check(
        &h,
        &h.take(),
        &[
            w(2.0, vec![firing("alertname=JobDown,job=testjob,zone=aa")]),
            w(
                3.0,
                vec![
                    resolved("alertname=InstanceDown,job=testjob,zone=aa", 2.6),
                    resolved("alertname=JobDown,job=testjob,zone=aa", 2.6),
                ],
            ),
        ],
    );
}

fn silence(h: &Harness, matchers: &[(&str, &str, bool)], start: f64, end: f64) -> watchfire_alerting::Silence {
    watchfire_alerting::Silence {
        id: String::new(),
        matchers: matchers
            .iter()
            .map(|(n, v, re)| watchfire_alerting::SilenceMatcher {
                name: (*n).into(),
                value: (*v).into(),
                is_regex: *re,
                is_equal: true,
            })
            .collect(),
        starts_at: h.at(start),
        ends_at: h.at(end),
        updated_at: watchfire_alerting::types::ZERO_TIME,
        created_by: "test".into(),
        comment: "test".into(),
        annotations: Default::default(),
    }
}

#[tokio::test(start_paused = true)]
async fn silencing_and_expiry() {
    // TestSilencing.
    let h = Harness::new(&cfg("[]", "1s", "1s", "1ms", ""));
    h.until(1.0).await;
    h.push(vec![
        alert(&[("alertname", "test1")]).active(&h, 1.0, None).build(),
        alert(&[("alertname", "test2")]).active(&h, 1.0, None).build(),
    ]);
    h.until(2.3).await;
    h.alerting
        .set_silence(silence(&h, &[("alertname", "test1", false)], 2.5, 4.5))
        .expect("valid silence");
    h.until(5.5).await;
    let w = |from: f64, alerts| Want {
        from,
        to: from + 0.5,
        receiver: "default",
        index: 0,
        alerts,
    };
    check(
        &h,
        &h.take(),
        &[
            w(2.0, vec![firing("alertname=test1"), firing("alertname=test2")]),
            w(3.0, vec![firing("alertname=test2")]),
            w(4.0, vec![firing("alertname=test2")]),
            w(5.0, vec![firing("alertname=test1"), firing("alertname=test2")]),
        ],
    );
    assert_eq!(
        h.metric("alertmanager_notifications_suppressed_total", &[("reason", "silence")]),
        Some(2.0)
    );
}

#[tokio::test(start_paused = true)]
async fn silence_expired_early() {
    // TestSilenceDelete.
    let h = Harness::new(&cfg("[]", "1s", "1s", "1ms", ""));
    h.until(1.0).await;
    h.push(vec![
        alert(&[("alertname", "test1")]).active(&h, 1.0, None).build(),
        alert(&[("alertname", "test2")]).active(&h, 1.0, None).build(),
    ]);
    h.until(1.3).await;
    let id = h
        .alerting
        .set_silence(silence(&h, &[("alertname", ".+", true)], 1.5, 100.0))
        .expect("valid silence");
    h.until(3.5).await;
    h.alerting.expire_silence(&id).expect("known silence");
    h.until(4.5).await;
    check(
        &h,
        &h.take(),
        &[Want {
            from: 3.5,
            to: 4.5,
            receiver: "default",
            index: 0,
            alerts: vec![firing("alertname=test1"), firing("alertname=test2")],
        }],
    );
}

#[tokio::test(start_paused = true)]
async fn reload_restarts_timers_without_duplicates() {
    // TestReload.
    let c = cfg("[]", "1s", "6s", "10m", "");
    let h = Harness::new(&c);
    h.until(1.0).await;
    h.push(vec![alert(&[("alertname", "test1")]).active(&h, 1.0, None).build()]);
    h.until(3.0).await;
    h.alerting.apply_config(config(&c)).expect("reload");
    h.until(4.0).await;
    h.push(vec![alert(&[("alertname", "test2")]).active(&h, 4.0, None).build()]);
    h.until(9.5).await;
    let w = |from: f64, alerts| Want {
        from,
        to: from + 0.5,
        receiver: "default",
        index: 0,
        alerts,
    };
    check(
        &h,
        &h.take(),
        &[
            w(2.0, vec![firing("alertname=test1")]),
            w(9.0, vec![firing("alertname=test1"), firing("alertname=test2")]),
        ],
    );
}

#[tokio::test(start_paused = true)]
async fn reload_changes_routes_and_receivers() {
    let before = cfg("[]", "1s", "1m", "4h", "- name: other\n");
    let h = Harness::new(&before);
    h.push(vec![alert(&[("alertname", "a"), ("team", "x")]).build()]);
    h.until(2.0).await;
    assert_eq!(h.take().len(), 1);
    let after = before.replace(
        "  repeat_interval: 4h\n",
        "  repeat_interval: 4h\n  routes:\n  - receiver: other\n    matchers: [team=x]\n",
    );
    h.alerting.apply_config(config(&after)).expect("reload");
    h.until(3.0).await;
    let got = h.take();
    assert_eq!(
        got.len(),
        1,
        "the alert goes to the new route's receiver at once (it is old)"
    );
    assert_eq!(got[0].receiver, "other");
    assert_eq!(got[0].group.integration.name, "none", "a receiver without integrations");
    assert_eq!(got[0].group.group_key, "{}/{team=\"x\"}:{}");
}

#[tokio::test(start_paused = true)]
async fn grouping_and_continue() {
    let c = "route:\n  receiver: a\n  group_by: [alertname]\n  group_wait: 10s\n  group_interval: 1m\n  routes:\n  - receiver: b\n    matchers: ['severity=~\"page|critical\"']\n    group_by: ['...']\n    continue: true\n  - receiver: c\n    match: {severity: page}\nreceivers:\n- name: a\n- name: b\n- name: c\n";
    let h = Harness::new(c);
    h.push(vec![
        alert(&[("alertname", "X"), ("severity", "page"), ("i", "1")]).build(),
        alert(&[("alertname", "X"), ("severity", "page"), ("i", "2")]).build(),
        alert(&[("alertname", "Y"), ("severity", "info")]).build(),
    ]);
    h.until(11.0).await;
    let mut got: Vec<(String, String, usize)> = h
        .take()
        .into_iter()
        .map(|r| (r.receiver, r.group.group_key, r.group.alerts.len()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("a".into(), "{}:{alertname=\"Y\"}".into(), 1),
            (
                "b".into(),
                "{}/{severity=~\"page|critical\"}:{alertname=\"X\", i=\"1\", severity=\"page\"}".into(),
                1
            ),
            (
                "b".into(),
                "{}/{severity=~\"page|critical\"}:{alertname=\"X\", i=\"2\", severity=\"page\"}".into(),
                1
            ),
            ("c".into(), "{}/{severity=\"page\"}:{alertname=\"X\"}".into(), 2),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn mute_time_interval_skips_flushes_then_repeats() {
    // Friday 16:59:50 UTC; muted 17:00–17:05.
    let c = "route:\n  receiver: r\n  group_wait: 1s\n  group_interval: 30s\n  repeat_interval: 1m\n  routes:\n  - receiver: r\n    matchers: [team=x]\n    mute_time_intervals: [quiet]\nreceivers:\n- name: r\ntime_intervals:\n- name: quiet\n  time_intervals:\n  - times: [{start_time: '17:00', end_time: '17:05'}]\n";
    let h = Harness::with(c, "2024-01-05T16:59:50Z".parse().expect("instant"), None);
    h.until(1.0).await;
    h.push(vec![
        alert(&[("alertname", "a"), ("team", "x")])
            .active(&h, 1.0, Some(86400.0))
            .build(),
    ]);
    h.until(430.0).await;
    let times: Vec<f64> = h.take().iter().map(|r| h.rel(r.group.now)).collect();
    // t=2 (16:59:52); ticks at 32 (17:00:22) … 302 (17:04:52) are muted; 332 (17:05:22)
    // repeats; then a repeat needs a tick strictly more than 1m later: 422, not 392.
    assert_eq!(times, vec![2.0, 332.0, 422.0]);
    assert!(
        h.metric(
            "alertmanager_notifications_suppressed_total",
            &[("reason", "mute_time_interval")]
        )
        .unwrap()
            >= 10.0
    );
}

#[tokio::test(start_paused = true)]
async fn active_time_interval_holds_notifications_outside_business_hours() {
    // Friday 16:58 UTC; active Monday–Friday 09:00–17:00 in Europe/Berlin (UTC+1 in January),
    // i.e. until 16:00 UTC — so nothing until Monday 08:00 UTC.
    let c = "route:\n  receiver: r\n  group_wait: 1s\n  group_interval: 5m\n  repeat_interval: 4h\n  routes:\n  - receiver: r\n    matchers: [team=x]\n    active_time_intervals: [business]\nreceivers:\n- name: r\ntime_intervals:\n- name: business\n  time_intervals:\n  - weekdays: ['monday:friday']\n    times: [{start_time: '09:00', end_time: '17:00'}]\n    location: Europe/Berlin\n";
    let h = Harness::with(c, "2024-01-05T16:58:00Z".parse().expect("instant"), None);
    h.push(vec![
        alert(&[("alertname", "a"), ("team", "x")])
            .active(&h, 0.0, Some(7.0 * 86400.0))
            .build(),
    ]);
    let monday_8 = 3.0 * 86400.0 - 16.0 * 3600.0 - 58.0 * 60.0 + 8.0 * 3600.0;
    h.until(monday_8 + 301.0).await;
    let times: Vec<f64> = h.take().iter().map(|r| h.rel(r.group.now)).collect();
    assert_eq!(times.len(), 1, "{times:?}");
    assert!(
        times[0] >= monday_8 && times[0] < monday_8 + 300.0,
        "{times:?} vs {monday_8}"
    );
}

#[tokio::test(start_paused = true)]
async fn self_metrics_under_upstream_names() {
    let h = Harness::new(&cfg("[alertname]", "1s", "1m", "4h", ""));
    h.push(vec![
        alert(&[("alertname", "a")]).build(),
        alert(&[("alertname", "b")]).active(&h, 0.0, Some(0.0)).build(),
    ]);
    assert!(h.alerting.put_alerts(vec![alert(&[]).build()]).is_err());
    // `b` is resolved already, so it is not counted.
    assert_eq!(h.metric("alertmanager_alerts", &[("state", "unprocessed")]), Some(1.0));
    h.alerting
        .set_silence(silence(&h, &[("alertname", "b", false)], 0.0, 100.0))
        .expect("valid");
    h.until(2.0).await;
    let m = |name: &str, labels: &[(&str, &str)]| h.metric(name, labels);
    assert_eq!(
        m(
            "alertmanager_alerts_received_total",
            &[("status", "firing"), ("version", "v2")]
        ),
        Some(2.0)
    );
    assert_eq!(
        m("alertmanager_alerts_received_total", &[("status", "resolved")]),
        Some(1.0)
    );
    assert_eq!(m("alertmanager_alerts_invalid_total", &[("version", "v2")]), Some(1.0));
    assert_eq!(m("alertmanager_alerts", &[("state", "active")]), Some(1.0));
    assert_eq!(m("alertmanager_silences", &[("state", "active")]), Some(1.0));
    assert_eq!(
        m("alertmanager_notifications_total", &[("integration", "webhook")]),
        Some(1.0)
    );
    assert_eq!(
        m("alertmanager_notifications_total", &[("integration", "email")]),
        Some(0.0)
    );
    assert_eq!(
        m(
            "alertmanager_notifications_failed_total",
            &[("integration", "webhook"), ("reason", "other")]
        ),
        Some(0.0)
    );
    assert_eq!(
        m("alertmanager_dispatcher_aggregation_groups", &[]),
        Some(1.0),
        "b's group resolved away"
    );
    assert_eq!(m("alertmanager_receivers", &[]), Some(1.0));
    assert_eq!(m("alertmanager_integrations", &[]), Some(1.0));
    assert_eq!(m("alertmanager_cluster_enabled", &[]), Some(0.0));
}
