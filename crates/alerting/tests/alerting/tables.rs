//! Decision tables from upstream's unit tests: route matching (dispatch/route_test.go
//! TestRouteMatch), the dedup decision (notify/notify_test.go TestDedupStageNeedsUpdate),
//! time intervals (timeinterval/timeinterval_test.go, plus DST cases), inhibition, silence
//! edits (silence/silence_test.go TestSilenceCanUpdate), alert merging and fingerprints.

use std::collections::HashSet;
use std::time::Duration;

use jiff::Timestamp;
use watchfire_alerting::dispatch::Route;
use watchfire_alerting::inhibit::Inhibitor;
use watchfire_alerting::nflog::{Entry, ReceiverKey};
use watchfire_alerting::notify::{NotifyReason, needs_update};
use watchfire_alerting::silence::Silences;
use watchfire_alerting::timeinterval::Intervener;
use watchfire_alerting::types::{Alert, ZERO_TIME, fingerprint};
use watchfire_alerting::{Error, Silence, SilenceMatcher, SilenceState};
use watchfire_config::alertmanager::GroupBy;
use watchfire_model::Labels;

use crate::common::config;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

#[test]
fn route_match_table() {
    let yaml = r#"
route:
  receiver: 'notify-def'
  routes:
  - match:
      owner: 'team-A'
    receiver: 'notify-A'
    routes:
    - match:
        env: 'testing'
      receiver: 'notify-testing'
      group_by: [...]
    - match:
        env: "production"
      receiver: 'notify-productionA'
      group_wait: 1m
      continue: true
    - match_re:
        env: "produ.*"
        job: ".*"
      receiver: 'notify-productionB'
      group_wait: 30s
      group_interval: 5m
      repeat_interval: 1h
      group_by: ['job']
  - match_re:
      owner: 'team-(B|C)'
    group_by: ['foo', 'bar']
    group_wait: 2m
    receiver: 'notify-BC'
  - match:
      group_by: 'role'
    group_by: ['role']
    routes:
    - match:
        env: 'testing'
      receiver: 'notify-testing'
      routes:
      - match:
          wait: 'long'
        group_wait: 2m
receivers:
- name: notify-def
- name: notify-A
- name: notify-testing
- name: notify-productionA
- name: notify-productionB
- name: notify-BC
"#;
    let tree = Route::tree(&config(yaml).route.value);
    let none = GroupBy::Labels(vec![]);
    let by = |l: &[&str]| GroupBy::Labels(l.iter().map(|s| s.to_string()).collect());
    let m = 60;
    // (labels, [(receiver, group_by, group_wait s, group_interval s, repeat s, key)])
    type Expected<'a> = (&'a str, GroupBy, u64, u64, u64, &'a str);
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<Expected<'a>>);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![("owner", "team-A")],
            vec![("notify-A", none.clone(), 30, 5 * m, 4 * 3600, "{}/{owner=\"team-A\"}")],
        ),
        (
            vec![("owner", "team-A"), ("env", "unset")],
            vec![("notify-A", none.clone(), 30, 5 * m, 4 * 3600, "{}/{owner=\"team-A\"}")],
        ),
        (
            vec![("owner", "team-C")],
            vec![(
                "notify-BC",
                by(&["foo", "bar"]),
                2 * m,
                5 * m,
                4 * 3600,
                "{}/{owner=~\"^(?:team-(B|C))$\"}",
            )],
        ),
        (
            vec![("owner", "team-A"), ("env", "testing")],
            vec![(
                "notify-testing",
                GroupBy::All,
                30,
                5 * m,
                4 * 3600,
                "{}/{owner=\"team-A\"}/{env=\"testing\"}",
            )],
        ),
        (
            vec![("owner", "team-A"), ("env", "production")],
            vec![
                (
                    "notify-productionA",
                    none.clone(),
                    m,
                    5 * m,
                    4 * 3600,
                    "{}/{owner=\"team-A\"}/{env=\"production\"}",
                ),
                (
                    "notify-productionB",
                    by(&["job"]),
                    30,
                    5 * m,
                    3600,
                    "{}/{owner=\"team-A\"}/{env=~\"^(?:produ.*)$\",job=~\"^(?:.*)$\"}",
                ),
            ],
        ),
        (
            vec![("group_by", "role")],
            vec![(
                "notify-def",
                by(&["role"]),
                30,
                5 * m,
                4 * 3600,
                "{}/{group_by=\"role\"}",
            )],
        ),
        (
            vec![("env", "testing"), ("group_by", "role")],
            vec![(
                "notify-testing",
                by(&["role"]),
                30,
                5 * m,
                4 * 3600,
                "{}/{group_by=\"role\"}/{env=\"testing\"}",
            )],
        ),
        (
            vec![("env", "testing"), ("group_by", "role"), ("wait", "long")],
            vec![(
                "notify-testing",
                by(&["role"]),
                2 * m,
                5 * m,
                4 * 3600,
                "{}/{group_by=\"role\"}/{env=\"testing\"}/{wait=\"long\"}",
            )],
        ),
    ];
    for (input, want) in cases {
        let got = tree.matches(&labels(&input));
        assert_eq!(got.len(), want.len(), "{input:?}");
        for (r, (rcv, gb, gw, gi, ri, key)) in got.iter().zip(want) {
            assert_eq!(r.receiver, rcv, "{input:?}");
            let norm = |g: &GroupBy| match g {
                GroupBy::Labels(l) => {
                    let mut l = l.clone();
                    l.sort();
                    GroupBy::Labels(l)
                }
                GroupBy::All => GroupBy::All,
            };
            assert_eq!(norm(&r.group_by), norm(&gb), "{input:?}");
            assert_eq!(r.group_wait, Duration::from_secs(gw), "{input:?}");
            assert_eq!(r.group_interval, Duration::from_secs(gi), "{input:?}");
            assert_eq!(r.repeat_interval, Duration::from_secs(ri), "{input:?}");
            assert_eq!(r.key, key, "{input:?}");
        }
    }
}

#[test]
fn route_ids_and_utf8_matchers() {
    let yaml = "route:\n  receiver: a\n  routes:\n  - receiver: a\n    matchers: ['foo=\"bar\"', 'dings!=\"bums\"']\n  - receiver: a\n    matchers: ['{\"service name\"=~\"web.*\"}']\n    group_by: []\nreceivers:\n- name: a\n";
    let tree = Route::tree(&config(yaml).route.value);
    let flat = tree.flatten();
    let ids: Vec<&str> = flat.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "{}/{dings!=\"bums\",foo=\"bar\"}/0",
            "{}/{\"service name\"=~\"web.*\"}/1",
            "{}"
        ]
    );
    let m = tree.matches(&labels(&[("service name", "webapp")]));
    assert_eq!(m[0].idx, 1);
    assert_eq!(
        m[0].group_labels(&labels(&[("service name", "webapp")])),
        Labels::empty()
    );
}

fn entry(firing: &[u64], resolved: &[u64], ts: Timestamp) -> Entry {
    Entry {
        group_key: "gk".into(),
        receiver: ReceiverKey {
            group_name: "r".into(),
            integration: "webhook".into(),
            idx: 0,
        },
        timestamp: ts,
        firing_alerts: firing.to_vec(),
        resolved_alerts: resolved.to_vec(),
        expires_at: Timestamp::MAX,
    }
}

#[test]
fn dedup_decision_table() {
    let now: Timestamp = "2024-06-01T12:00:00Z".parse().expect("instant");
    let min = |n: i64| now - jiff::SignedDuration::from_mins(n);
    let set = |v: &[u64]| v.iter().copied().collect::<HashSet<u64>>();
    let ten = Duration::from_secs(600);
    let epoch = Timestamp::UNIX_EPOCH;
    // (entry, firing, resolved, repeat, send_resolved) → notify? (the 11 upstream cases)
    type Case = (Option<Entry>, HashSet<u64>, HashSet<u64>, Duration, bool, bool);
    let cases: Vec<Case> = vec![
        (None, set(&[2, 3, 4]), set(&[]), Duration::ZERO, false, true),
        (None, set(&[]), set(&[2, 3, 4]), Duration::ZERO, false, false),
        (
            Some(entry(&[1, 2, 3], &[], epoch)),
            set(&[2, 3, 4]),
            set(&[]),
            Duration::ZERO,
            false,
            true,
        ),
        (
            Some(entry(&[1, 2, 3], &[], epoch)),
            set(&[1, 2, 3]),
            set(&[]),
            Duration::ZERO,
            false,
            true,
        ),
        (
            Some(entry(&[1, 2, 3], &[], min(9))),
            set(&[1, 2, 3]),
            set(&[]),
            ten,
            false,
            false,
        ),
        (
            Some(entry(&[1, 2, 3], &[], min(11))),
            set(&[1, 2, 3]),
            set(&[]),
            ten,
            false,
            true,
        ),
        (
            Some(entry(&[], &[1, 2, 3], min(11))),
            set(&[]),
            set(&[3, 4, 5]),
            ten,
            true,
            false,
        ),
        (
            Some(entry(&[1, 2], &[3], min(9))),
            set(&[1]),
            set(&[2, 3]),
            ten,
            false,
            false,
        ),
        (
            Some(entry(&[1, 2], &[3], min(9))),
            set(&[1]),
            set(&[2, 3]),
            ten,
            true,
            true,
        ),
        (
            Some(entry(&[1, 2], &[3], min(9))),
            set(&[]),
            set(&[1, 2, 3]),
            ten,
            false,
            true,
        ),
        (
            Some(entry(&[1, 2], &[3], min(9))),
            set(&[]),
            set(&[1, 2, 3]),
            ten,
            true,
            true,
        ),
    ];
    for (i, (e, f, r, repeat, sr, want)) in cases.into_iter().enumerate() {
        let got = needs_update(e.as_ref(), &f, &r, sr, repeat, now);
        assert_eq!(got != NotifyReason::DoNotNotify, want, "case {i}: {got:?}");
    }
    // The reasons upstream reports.
    let e = entry(&[1], &[], min(1));
    assert_eq!(
        needs_update(None, &set(&[1]), &set(&[]), true, ten, now),
        NotifyReason::FirstNotification
    );
    assert_eq!(
        needs_update(Some(&e), &set(&[1, 2]), &set(&[]), true, ten, now),
        NotifyReason::NewAlertsInGroup
    );
    assert_eq!(
        needs_update(Some(&e), &set(&[]), &set(&[1]), false, ten, now),
        NotifyReason::AllAlertsResolved
    );
    let after_resolve = entry(&[], &[1], min(1));
    assert_eq!(
        needs_update(Some(&after_resolve), &set(&[1]), &set(&[]), true, ten, now),
        NotifyReason::FirstNotification
    );
    // Exactly repeat_interval old is not yet "older than".
    let exact = entry(&[1], &[], now - jiff::SignedDuration::from_secs(600));
    assert_eq!(
        needs_update(Some(&exact), &set(&[1]), &set(&[]), true, ten, now),
        NotifyReason::DoNotNotify
    );
}

/// Whether the named interval of `yaml`'s single interval contains each instant.
fn interval_table(spec: &str, inside: &[&str], outside: &[&str]) {
    let yaml = format!(
        "route:\n  receiver: r\nreceivers:\n- name: r\ntime_intervals:\n- name: t\n  time_intervals:\n  - {spec}\n"
    );
    let iv = Intervener::from_config(&config(&yaml)).expect("zones resolve");
    let names = vec!["t".to_owned()];
    for s in inside {
        let t: Timestamp = s.parse().expect("instant");
        assert!(
            !iv.mutes(&names, t).expect("known").is_empty(),
            "{spec}: {s} should be inside"
        );
    }
    for s in outside {
        let t: Timestamp = s.parse().expect("instant");
        assert!(
            iv.mutes(&names, t).expect("known").is_empty(),
            "{spec}: {s} should be outside"
        );
    }
}

#[test]
fn time_interval_table() {
    // timeinterval_test.go timeIntervalTestCases (RFC 822 instants rewritten in RFC 3339).
    interval_table(
        "{}",
        &["2006-01-02T15:04:00Z", "2007-01-03T10:04:00Z", "2006-01-04T09:04:00Z"],
        &[],
    );
    interval_table(
        "{times: [{start_time: '09:00', end_time: '17:00'}], weekdays: ['monday:friday']}",
        &["2020-05-04T15:04:00Z", "2020-05-05T10:04:00Z", "2020-06-09T09:04:00Z"],
        &["2020-05-03T15:04:00Z", "2020-05-04T08:59:00Z", "2020-05-05T05:00:00Z"],
    );
    interval_table(
        "{days_of_month: ['4:6'], months: ['4'], years: ['2020']}",
        &["2020-04-04T15:04:00Z", "2020-04-05T00:00:00Z", "2020-04-06T23:05:00Z"],
        &[
            "2018-05-03T15:04:00Z",
            "2020-04-03T23:59:00Z",
            "2020-06-04T23:59:00Z",
            "2019-04-06T23:59:00Z",
            "2020-04-07T00:00:00Z",
        ],
    );
    interval_table(
        "{days_of_month: ['-3:-1']}",
        &[
            "2020-01-31T15:04:00Z",
            "2020-01-30T15:04:00Z",
            "2020-01-29T15:04:00Z",
            "2020-06-30T00:00:00Z",
            "2020-02-29T23:05:00Z",
        ],
        &[
            "2018-05-03T15:04:00Z",
            "2020-01-27T15:04:00Z",
            "2020-04-03T23:59:00Z",
            "2020-06-04T23:59:00Z",
            "2019-04-06T23:59:00Z",
            "2020-04-07T00:00:00Z",
            "2020-03-01T00:00:00Z",
        ],
    );
    // (Upstream's `-31:31` case is built in Go directly; its YAML form is rejected by the
    // parser, so it cannot occur in a configuration.)
    interval_table(
        "{months: ['6'], days_of_month: ['1:31']}",
        &["2020-06-30T00:00:00Z", "2020-06-01T00:00:00Z"],
        &["2020-05-31T00:00:00Z", "2020-07-01T00:00:00Z"],
    );
    interval_table(
        "{times: [{start_time: '09:00', end_time: '17:00'}], weekdays: ['monday:friday'], location: Australia/Sydney}",
        &["2021-04-06T13:00:00+10:00"],
        &["2021-04-06T13:00:00+00:00"],
    );
    interval_table(
        "{times: [{start_time: '09:00', end_time: '17:00'}], weekdays: ['monday:friday'], months: ['11'], location: Australia/Sydney}",
        &["2021-11-01T09:00:00+11:00", "2021-10-31T22:00:00Z"],
        &["2021-10-31T21:00:00Z"],
    );
    interval_table(
        "{days_of_month: ['-1:-1'], location: America/New_York}",
        &["2021-03-31T12:00:00-04:00"],
        &["2021-03-30T12:00:00-04:00"],
    );
    // Weekday names, ranges, and times ending at 24:00.
    interval_table(
        "{weekdays: ['saturday', 'sunday'], times: [{start_time: '22:00', end_time: '24:00'}]}",
        &["2024-01-06T22:00:00Z", "2024-01-07T23:59:59Z"],
        &["2024-01-06T21:59:59Z", "2024-01-08T23:00:00Z"],
    );
}

#[test]
fn time_interval_dst_transitions() {
    // Europe/Berlin springs forward on 2024-03-31 (02:00 CET → 03:00 CEST): the local hour
    // 02:00–03:00 does not exist that day.
    interval_table(
        "{times: [{start_time: '02:00', end_time: '03:00'}], location: Europe/Berlin}",
        &["2024-03-30T01:30:00Z", "2024-10-27T00:30:00Z", "2024-10-27T01:30:00Z"],
        // 00:30Z = 01:30 CET and 01:00Z = 03:00 CEST on the spring day; 02:00Z = 03:00 CET
        // after falling back in October (the hour 02:00–03:00 happens twice then, both above).
        &["2024-03-31T00:30:00Z", "2024-03-31T01:00:00Z", "2024-10-27T02:00:00Z"],
    );
    // The last day of March, in Berlin, across the transition (upstream's latest fix).
    interval_table(
        "{days_of_month: ['-1'], location: Europe/Berlin}",
        &["2024-03-31T21:30:00Z", "2024-03-30T23:30:00Z"],
        &["2024-03-30T22:30:00Z", "2024-03-31T22:30:00Z"],
    );
    // Business hours in New York follow the offset change (EST → EDT on 2024-03-10).
    interval_table(
        "{times: [{start_time: '09:00', end_time: '17:00'}], location: America/New_York}",
        &["2024-03-08T14:00:00Z", "2024-03-11T13:00:00Z"],
        &["2024-03-08T13:59:00Z", "2024-03-11T21:00:00Z"],
    );
}

#[test]
fn unknown_time_zone_is_a_config_error() {
    let yaml = "route:\n  receiver: r\nreceivers:\n- name: r\ntime_intervals:\n- name: t\n  time_intervals:\n  - location: Mars/Olympus_Mons\n";
    let e = Intervener::from_config(&config(yaml)).unwrap_err();
    assert!(
        matches!(e, Error::Config(ref m) if m.contains("Mars/Olympus_Mons")),
        "{e}"
    );
}

fn stored(labels_: &[(&str, &str)], ends: Timestamp) -> Alert {
    Alert {
        labels: labels(labels_),
        annotations: Default::default(),
        starts_at: "2024-01-01T00:00:00Z".parse().expect("instant"),
        ends_at: ends,
        generator_url: String::new(),
        updated_at: "2024-01-01T00:00:00Z".parse().expect("instant"),
        timeout: false,
    }
}

#[test]
fn inhibition_table() {
    let yaml = "route:\n  receiver: r\nreceivers:\n- name: r\ninhibit_rules:\n- source_matchers: [s=1]\n  target_matchers: [t=1]\n  equal: [e]\n- source_match: {both: src}\n  target_match_re: {both: '.*'}\n";
    let inh = Inhibitor::new(
        &config(yaml)
            .inhibit_rules
            .iter()
            .map(|r| r.value.clone())
            .collect::<Vec<_>>(),
    );
    let now: Timestamp = "2024-01-01T01:00:00Z".parse().expect("instant");
    let later: Timestamp = "2024-01-01T02:00:00Z".parse().expect("instant");
    let src = stored(&[("s", "1"), ("e", "x")], later);
    inh.process(&src);
    // Equal labels must match; a missing label equals a missing label.
    assert_eq!(
        inh.mutes(&labels(&[("t", "1"), ("e", "x")]), now),
        Some(src.fingerprint())
    );
    assert_eq!(inh.mutes(&labels(&[("t", "1"), ("e", "y")]), now), None);
    assert_eq!(inh.mutes(&labels(&[("t", "1")]), now), None);
    let src_no_e = stored(&[("s", "1")], later);
    inh.process(&src_no_e);
    assert_eq!(inh.mutes(&labels(&[("t", "1")]), now), Some(src_no_e.fingerprint()));
    // A resolved source no longer inhibits.
    assert_eq!(inh.mutes(&labels(&[("t", "1"), ("e", "x")]), later), None);
    // Two-sided rule: an alert matching source and target is not inhibited by an alert that
    // also matches both (never by itself).
    let both = stored(&[("both", "src")], later);
    inh.process(&both);
    assert_eq!(inh.mutes(&labels(&[("both", "src")]), now), None);
    assert_eq!(inh.mutes(&labels(&[("both", "other")]), now), Some(both.fingerprint()));
    // GC drops resolved sources.
    inh.gc(later);
    assert_eq!(inh.mutes(&labels(&[("both", "other")]), now), None);
}

fn sil(matchers: &[(&str, &str)], start: &str, end: &str) -> Silence {
    Silence {
        id: String::new(),
        matchers: matchers
            .iter()
            .map(|(n, v)| SilenceMatcher {
                name: (*n).into(),
                value: (*v).into(),
                is_regex: false,
                is_equal: true,
            })
            .collect(),
        starts_at: start.parse().expect("instant"),
        ends_at: end.parse().expect("instant"),
        updated_at: ZERO_TIME,
        created_by: "me".into(),
        comment: "c".into(),
        annotations: Default::default(),
    }
}

#[test]
fn silence_edit_rules() {
    let s = Silences::in_memory(Duration::from_secs(3600));
    let t = |x: &str| -> Timestamp { x.parse().expect("instant") };
    let now = t("2024-01-01T12:00:00Z");
    // A new silence starting in the past starts now.
    let id = s
        .set(sil(&[("a", "b")], "2024-01-01T11:00:00Z", "2024-01-01T13:00:00Z"), now)
        .expect("valid");
    let cur = s.get(&id).expect("stored");
    assert_eq!(cur.starts_at, now);
    assert_eq!(cur.state_at(now), SilenceState::Active);
    // Active, same matchers and start, later end: updated in place.
    let mut upd = cur.clone();
    upd.ends_at = t("2024-01-01T14:00:00Z");
    upd.comment = "longer".into();
    assert_eq!(s.set(upd, now).expect("valid"), id);
    // Changed matchers: a new silence; the old one is expired.
    let mut changed = s.get(&id).expect("stored");
    changed.matchers[0].value = "c".into();
    let new_id = s.set(changed, now).expect("valid");
    assert_ne!(new_id, id);
    assert_eq!(s.get(&id).expect("kept").ends_at, now);
    // An active silence's end moved into the past: new silence, old expired… (already
    // expired at `now`, so it stays as is).
    let later = t("2024-01-01T12:30:00Z");
    let mut shorten = s.get(&new_id).expect("stored");
    shorten.ends_at = t("2024-01-01T12:10:00Z");
    let third = s.set(shorten, later).expect("valid");
    assert_ne!(third, new_id);
    assert_eq!(s.get(&new_id).expect("kept").ends_at, later);
    // Pending: may move its start, but not into the past.
    let pid = s
        .set(sil(&[("p", "1")], "2024-01-01T15:00:00Z", "2024-01-01T16:00:00Z"), now)
        .expect("valid");
    let mut p = s.get(&pid).expect("stored");
    p.starts_at = t("2024-01-01T14:00:00Z");
    assert_eq!(s.set(p, now).expect("valid"), pid);
    let mut p = s.get(&pid).expect("stored");
    p.starts_at = t("2024-01-01T11:00:00Z");
    let replaced = s.set(p, now).expect("valid");
    assert_ne!(replaced, pid);
    // The pending silence was expired by setting both times to now.
    let old = s.get(&pid).expect("kept");
    assert_eq!((old.starts_at, old.ends_at), (now, now));
    // Unknown ID.
    let mut unknown = sil(&[("a", "b")], "2024-01-01T12:00:00Z", "2024-01-01T13:00:00Z");
    unknown.id = "nope".into();
    assert!(matches!(s.set(unknown, now), Err(Error::SilenceNotFound)));
    // Validation.
    let e = s
        .set(sil(&[("a", "")], "2024-01-01T12:00:00Z", "2024-01-01T13:00:00Z"), now)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("at least one matcher must not match the empty string"),
        "{e}"
    );
    let mut re = sil(&[("a", "(")], "2024-01-01T12:00:00Z", "2024-01-01T13:00:00Z");
    re.matchers[0].is_regex = true;
    assert!(
        s.set(re, now)
            .unwrap_err()
            .to_string()
            .contains("invalid regular expression")
    );
    // Expire: idempotent; unknown → not found.
    s.expire(&third, now).expect("known");
    s.expire(&third, later).expect("idempotent");
    assert!(matches!(s.expire("nope", now), Err(Error::SilenceNotFound)));
    // Matching.
    assert_eq!(
        s.mutes(&labels(&[("a", "c")]), t("2024-01-01T13:00:00Z")),
        vec![] as Vec<String>
    );
    // Retention: expired silences go after an hour.
    let n = s.list().len();
    assert_eq!(s.gc(t("2024-01-01T13:00:00Z")).expect("gc"), 3);
    assert_eq!(s.list().len(), n - 3);
}

#[test]
fn alert_merge_truth_table() {
    let t = |s: u32| -> Timestamp { Timestamp::from_second(1_700_000_000 + i64::from(s)).expect("instant") };
    let a = |start: u32, end: u32, upd: u32, timeout: bool| Alert {
        labels: labels(&[("a", "b")]),
        annotations: Default::default(),
        starts_at: t(start),
        ends_at: t(end),
        generator_url: String::new(),
        updated_at: t(upd),
        timeout,
    };
    // (older, newer) → (start, end); "now" is the newer's update time.
    let cases = [
        // Both firing, older end later and not a timeout: keep it.
        (a(10, 100, 20, false), a(15, 50, 30, false), (10, 100)),
        // Older end was a timeout guess: the newer end rules.
        (a(10, 100, 20, true), a(15, 50, 30, false), (10, 50)),
        // Newer resolved, older firing: the newer end.
        (a(10, 100, 20, false), a(15, 25, 30, false), (10, 25)),
        // Both resolved: the later end wins.
        (a(10, 28, 20, false), a(12, 25, 30, false), (10, 28)),
    ];
    for (i, (old, new, (s, e))) in cases.into_iter().enumerate() {
        for m in [old.merge(&new), new.merge(&old)] {
            assert_eq!((m.starts_at, m.ends_at), (t(s), t(e)), "case {i}");
            assert_eq!(m.updated_at, new.updated_at, "case {i}: the younger wins");
        }
    }
}

#[test]
fn fingerprint_known_value() {
    // prometheus/common model/fingerprinting: the FNV-1a of `name\xffvalue\xff`.
    assert_eq!(fingerprint(&labels(&[("foo", "bar")])).to_string().len(), 16);
    assert_ne!(
        fingerprint(&labels(&[("a", "bc")])),
        fingerprint(&labels(&[("ab", "c")]))
    );
}
