//! The template data model, functions, and Watchfire's default templates against
//! Alertmanager's reference `default.tmpl`.

mod common;

use std::path::Path;

use common::*;
use watchfire_notify::template::{DEFAULT_TEMPLATES, Templates};

const COMPAT: &str = "/work/shared/compat/alertmanager/default.tmpl";
const EXTERNAL: &str = "http://am.example:9093";

fn defined_names(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"define "([^"]+)""#).unwrap();
    re.captures_iter(text).map(|c| c[1].to_owned()).collect()
}

#[test]
fn defaults_render_like_alertmanager_default_tmpl() {
    let Ok(reference) = std::fs::read_to_string(COMPAT) else {
        eprintln!("{COMPAT} absent: golden comparison skipped");
        return;
    };
    let upstream = Templates::from_texts(&[("default.tmpl", &reference)], EXTERNAL).unwrap();
    let ours = Templates::defaults(EXTERNAL).unwrap();
    let names = defined_names(&reference);
    assert!(names.len() > 60, "{} names", names.len());
    let groups = [
        firing("team-x (prod)", "slack"),
        mixed("team.y", "slack"),
        resolved("z", "slack"),
        group("empty", "slack", vec![]),
    ];
    let mut compared = 0;
    for g in &groups {
        let d_up = upstream.data(g).unwrap();
        let d_ours = ours.data(g).unwrap();
        for name in &names {
            // The alert-list helpers take a list of alerts as dot.
            let takes_list = matches!(
                name.as_str(),
                "__text_alert_list" | "__text_alert_list_markdown" | "pagerduty.default.instances"
            );
            let texts: Vec<String> = if takes_list {
                [".Alerts", ".Alerts.Firing", ".Alerts.Resolved"]
                    .iter()
                    .map(|dot| format!("{{{{ template {name:?} {dot} }}}}"))
                    .collect()
            } else {
                vec![format!("{{{{ template {name:?} . }}}}")]
            };
            for text in texts {
                let a = upstream
                    .render(&text, &d_up)
                    .unwrap_or_else(|e| panic!("upstream {text}: {e}"));
                let b = ours
                    .render(&text, &d_ours)
                    .unwrap_or_else(|e| panic!("ours {text}: {e}"));
                assert_eq!(a, b, "{text} differs for receiver {}", g.receiver);
            }
            compared += 1;
        }
    }
    assert_eq!(compared, names.len() * groups.len());
}

#[test]
fn default_keys_produce_the_documented_text() {
    let t = Templates::defaults(EXTERNAL).unwrap();
    let d = t.data(&firing("team-x", "slack")).unwrap();
    assert_eq!(t.execute("__subject", &d).unwrap(), "[FIRING:2] HighLatency (api)");
    assert_eq!(t.execute("slack.default.color", &d).unwrap(), "danger");
    assert_eq!(
        t.execute("slack.default.fallback", &d).unwrap(),
        "[FIRING:2] HighLatency (api) | http://am.example:9093/#/alerts?receiver=team-x"
    );
    assert_eq!(
        t.execute("email.default.subject", &d).unwrap(),
        "[FIRING:2] HighLatency (api)"
    );
    let d = t.data(&resolved("r", "slack")).unwrap();
    assert_eq!(t.execute("__subject", &d).unwrap(), "[RESOLVED] HighLatency (api info)");
    assert_eq!(t.execute("slack.default.color", &d).unwrap(), "good");
    assert_eq!(t.execute("jira.default.priority", &d).unwrap(), "Low");
    let d = t.data(&mixed("r", "slack")).unwrap();
    assert_eq!(t.execute("jira.default.priority", &d).unwrap(), "Medium");
    assert_eq!(
        t.execute("opsgenie.default.description", &d).unwrap(),
        "\nAlerts Firing:\nLabels:\n - alertname = HighLatency\n - instance = a:9090\n - job = api\n - severity = warning\nAnnotations:\n - summary = a <b> & c\nSource: http://prom.example/graph?g0.expr=up\n\nAlerts Resolved:\nLabels:\n - alertname = HighLatency\n - instance = b:9090\n - job = web\n - severity = critical\nAnnotations:\nSource: http://prom.example/graph?g0.expr=up\n"
    );
}

#[test]
fn every_upstream_default_name_is_defined() {
    let ours = Templates::defaults(EXTERNAL).unwrap();
    let mut names = vec!["email.default.subject".to_owned(), "email.default.html".to_owned()];
    if let Ok(reference) = std::fs::read_to_string(COMPAT) {
        names.extend(defined_names(&reference));
    }
    for n in names {
        assert!(ours.names().contains(&n.as_str()), "{n} missing");
    }
    assert!(!DEFAULT_TEMPLATES.contains("Mailgun"));
}

#[test]
fn email_html_escapes_values_and_lists_alerts() {
    let t = Templates::defaults(EXTERNAL).unwrap();
    let d = t.data(&mixed("r", "email")).unwrap();
    let html = t.execute("email.default.html", &d).unwrap();
    assert!(html.contains("a &lt;b&gt; &amp; c"), "{html}");
    assert!(!html.contains("a <b>"));
    assert!(html.contains("2 alerts for alertname=HighLatency"));
    assert!(html.contains("[1] Firing") && html.contains("[1] Resolved"));
    assert!(html.contains("http://am.example:9093/#/alerts?receiver=r"));
}

#[test]
fn data_model_fields_and_methods() {
    let t = Templates::defaults(EXTERNAL).unwrap();
    let d = t.data(&mixed("a.b", "slack")).unwrap();
    let r = |s: &str| t.render(s, &d).unwrap();
    assert_eq!(r("{{ .Receiver }}"), r"a\.b");
    assert_eq!(
        r("{{ .Status }} {{ len .Alerts }} {{ len .Alerts.Firing }} {{ len .Alerts.Resolved }}"),
        "firing 2 1 1"
    );
    assert_eq!(r("{{ .CommonLabels.SortedPairs }}"), "alertname=HighLatency");
    assert_eq!(r("{{ .GroupLabels.Names.Join \",\" }}"), "alertname");
    assert_eq!(
        r("{{ range .Alerts }}{{ .Status }}:{{ .Labels.job }} {{ end }}"),
        "firing:api resolved:web "
    );
    assert_eq!(r("{{ (index .Alerts 0).Labels.instance }}"), "a:9090");
    assert_eq!(r("{{ (index .Alerts 0).Fingerprint | len }}"), "16");
    assert_eq!(
        r("{{ (index .Alerts 0).StartsAt.Format \"2006-01-02 15:04\" }}"),
        "2026-01-02 03:04"
    );
    assert_eq!(r("{{ (index .Alerts 1).EndsAt | date \"15:04:05\" }}"), "04:00:00");
    assert_eq!(r("{{ (index .Alerts 0).EndsAt.IsZero }}"), "true");
    assert_eq!(
        r("{{ (index .Alerts 0).Labels.Remove (stringSlice \"job\" \"instance\") }}"),
        "map[alertname:HighLatency severity:warning]"
    );
    assert_eq!(
        r("{{ .ExternalURL }} {{ .NotificationReason }}"),
        "http://am.example:9093 first notification"
    );
    let j: serde_json::Value = serde_json::from_str(&r("{{ .Alerts.Resolved | toJson }}")).unwrap();
    assert_eq!(
        j,
        serde_json::json!([{
            "status": "resolved",
            "labels": {"alertname": "HighLatency", "instance": "b:9090", "job": "web", "severity": "critical"},
            "annotations": {},
            "startsAt": "2026-01-02T03:04:05.123Z",
            "endsAt": "2026-01-02T04:00:00Z",
            "generatorURL": "http://prom.example/graph?g0.expr=up",
            "fingerprint": j[0]["fingerprint"].as_str().unwrap(),
        }])
    );
}

#[test]
fn default_functions() {
    let t = Templates::defaults(EXTERNAL).unwrap();
    let d = t.data(&firing("x", "slack")).unwrap();
    let r = |s: &str| t.render(s, &d).unwrap();
    assert_eq!(
        r(r#"{{ toUpper "ab" }} {{ toLower "AB" }} {{ title "hello wORLD" }} [{{ trimSpace "  x " }}]"#),
        "AB ab Hello World [x]"
    );
    assert_eq!(r(r#"{{ join "-" (stringSlice "a" "b") }}"#), "a-b");
    assert_eq!(
        r(r#"{{ match "^a.c$" "abc" }} {{ match "b" "abc" }} {{ match "^b" "abc" }}"#),
        "true true false"
    );
    assert_eq!(r(r#"{{ reReplaceAll "(a+)" "<$1>" "baaad" }}"#), "b<aaa>d");
    assert_eq!(
        r(r#"{{ urlUnescape "a%20b+c" }} {{ safeHtml "<b>" }} {{ safeUrl "http://x" }}"#),
        "a b c <b> http://x"
    );
    assert_eq!(
        r(r#"{{ humanizeDuration 3723 }} {{ humanizeDuration "90" }}"#),
        "1h 2m 3s 1m 30s"
    );
    assert_eq!(r(r#"{{ base64encode "a?b" }} {{ base64decode "YT9i" }}"#), "YT9i a?b");
    assert_eq!(
        r(r#"{{ toJson (dict "a" 1 "b" (list "x" true)) }}"#),
        r#"{"a":1,"b":["x",true]}"#
    );
    assert_eq!(r(r#"{{ len (append (list 1) 2 3) }}"#), "3");
    assert_eq!(r(r#"{{ (toDate "2006-01-02" "2024-05-06").Unix }}"#), "1714953600");
    assert_eq!(r(r#"{{ (toDate "2006-01-02" "junk").IsZero }}"#), "true");
    assert!(t.render(r#"{{ mustToDate "2006-01-02" "junk" }}"#, &d).is_err());
    assert_eq!(
        r(r#"{{ (mustToDate "2006-01-02T15:04:05Z07:00" "2024-05-06T01:02:03+02:00").Unix }}"#),
        "1714950123"
    );
    assert_eq!(
        r(r#"{{ tz "UTC" (index .Alerts 0).StartsAt | date "15:04" }}"#),
        "03:04"
    );
    assert!(
        t.render(r#"{{ tz "No/Such_Zone" (index .Alerts 0).StartsAt }}"#, &d)
            .is_err()
    );
    assert!(
        r(r#"{{ (since (index .Alerts 0).StartsAt).Hours }}"#)
            .parse::<f64>()
            .unwrap()
            > 1.0
    );
    assert!(t.render(r#"{{ dict "a" }}"#, &d).is_err());
}

#[test]
fn route_labels_are_rendered_and_cycles_fail() {
    let t = Templates::defaults(EXTERNAL).unwrap();
    let mut g = firing("x", "slack");
    g.route_labels
        .insert("team".into(), "{{ .CommonLabels.job }}-team".into());
    g.route_labels
        .insert("owner".into(), "{{ routeLabels \"team\" }}!".into());
    let d = t.data(&g).unwrap();
    assert_eq!(
        t.render("{{ .RouteLabels.owner }} {{ routeLabels \"team\" }}", &d)
            .unwrap(),
        "api-team! api-team"
    );
    let mut g = firing("x", "slack");
    g.route_labels.insert("a".into(), "{{ routeLabels \"b\" }}".into());
    g.route_labels.insert("b".into(), "{{ routeLabels \"a\" }}".into());
    let e = t.data(&g).unwrap_err().to_string();
    assert!(e.contains("cycle"), "{e}");
}

#[test]
fn user_files_override_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("my.tmpl"),
        r#"{{ define "slack.default.title" }}custom {{ .Status }}{{ end }}{{ define "mine" }}M{{ end }}"#,
    )
    .unwrap();
    let t = Templates::load(&["*.tmpl".to_owned()], dir.path(), EXTERNAL).unwrap();
    let d = t.data(&firing("x", "slack")).unwrap();
    assert_eq!(t.execute("slack.default.title", &d).unwrap(), "custom firing");
    assert_eq!(
        t.render("{{ template \"mine\" . }}{{ template \"__alertmanager\" . }}", &d)
            .unwrap(),
        "MAlertmanager"
    );
    std::fs::write(dir.path().join("bad.tmpl"), "{{ define \"x\" }}{{ end").unwrap();
    assert!(Templates::load(&["*.tmpl".to_owned()], dir.path(), EXTERNAL).is_err());
    assert!(Templates::load(&[], Path::new("/nonexistent"), EXTERNAL).is_ok());
}
