//! Every HTTP integration against a local server: method, path, headers and JSON body for
//! firing and resolved groups, and failure handling.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use common::*;
use serde_json::{Value, json};
use watchfire_alerting::{FailureReason, Notifier};
use watchfire_config::alertmanager::Config;
use watchfire_notify::{Notifiers, NotifyOptions};

#[derive(Clone, Debug)]
struct Req {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Value,
}

/// Status code, headers and body the server answers with.
type Answer = (u16, Vec<(String, String)>, String);

#[derive(Clone)]
struct Srv {
    reqs: Arc<Mutex<Vec<Req>>>,
    status: Arc<Mutex<Answer>>,
    delay: Arc<Mutex<Duration>>,
}

async fn handle(State(s): State<Srv>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    s.reqs.lock().unwrap().push(Req {
        method,
        path: uri.to_string(),
        headers,
        body,
    });
    let delay = *s.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (code, hdrs, text) = s.status.lock().unwrap().clone();
    let mut r = (StatusCode::from_u16(code).unwrap(), text).into_response();
    for (k, v) in hdrs {
        r.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    r
}

async fn server() -> (String, Srv) {
    let s = Srv {
        reqs: Arc::default(),
        status: Arc::new(Mutex::new((200, vec![], "ok".into()))),
        delay: Arc::default(),
    };
    let app = Router::new().fallback(handle).with_state(s.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}"), s)
}

fn config(yaml: &str) -> Config {
    Config::parse(yaml, Path::new("/tmp/alertmanager.yml")).unwrap_or_else(|e| panic!("{e}"))
}

fn notifiers(yaml: &str) -> Notifiers {
    Notifiers::new(
        &config(yaml),
        NotifyOptions {
            config_dir: "/tmp".into(),
            external_url: "http://am.example:9093".into(),
        },
    )
    .unwrap()
}

fn take(s: &Srv) -> Vec<Req> {
    std::mem::take(&mut *s.reqs.lock().unwrap())
}

#[tokio::test]
async fn webhook_payload_version_4() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: hook}}\nreceivers:\n- name: hook\n  webhook_configs:\n  - url: {base}/hook/{{{{ .GroupLabels.alertname }}}}\n    max_alerts: 1\n    http_config:\n      authorization: {{credentials: s3cret}}\n"
    ));
    n.notify("hook", &firing("hook", "webhook")).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/hook/HighLatency");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["authorization"], "Bearer s3cret");
    assert!(r.headers["user-agent"].to_str().unwrap().starts_with("Alertmanager/"));
    let b = r.body;
    assert_eq!(b["version"], "4");
    assert_eq!(b["status"], "firing");
    assert_eq!(b["receiver"], "hook");
    assert_eq!(b["groupKey"], "{}/{severity=\"page\"}:{alertname=\"HighLatency\"}");
    assert_eq!(b["truncatedAlerts"], 1);
    assert_eq!(b["externalURL"], "http://am.example:9093");
    assert_eq!(b["groupLabels"], json!({"alertname": "HighLatency"}));
    assert_eq!(
        b["commonLabels"],
        json!({"alertname": "HighLatency", "job": "api", "instance": "a:9090"})
    );
    assert_eq!(b["alerts"].as_array().unwrap().len(), 1);
    let a = &b["alerts"][0];
    assert_eq!(a["status"], "firing");
    assert_eq!(a["startsAt"], "2026-01-02T03:04:05.123Z");
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(a["generatorURL"], "http://prom.example/graph?g0.expr=up");
    assert_eq!(a["fingerprint"].as_str().unwrap().len(), 16);
    assert_eq!(a["annotations"]["runbook"], "http://rb/1");

    n.notify("hook", &resolved("hook", "webhook")).await.unwrap();
    let b = take(&srv).pop().unwrap().body;
    assert_eq!(b["status"], "resolved");
    assert_eq!(b["truncatedAlerts"], 0);
    assert_eq!(b["alerts"][0]["endsAt"], "2026-01-02T04:00:00Z");
}

#[tokio::test]
async fn webhook_custom_payload() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: hook}}\nreceivers:\n- name: hook\n  webhook_configs:\n  - url: {base}/p\n    payload:\n      text: '{{{{ template \"__subject\" . }}}}'\n      alerts: '{{{{ .Alerts.Firing | toJson }}}}'\n"
    ));
    n.notify("hook", &firing("hook", "webhook")).await.unwrap();
    let b = take(&srv).pop().unwrap().body;
    assert_eq!(b["text"], "[FIRING:2] HighLatency (api)");
    assert_eq!(b["alerts"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn failures_are_classified_and_secrets_stay_out() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: hook}}\nreceivers:\n- name: hook\n  webhook_configs:\n  - url: {base}/tok3n-abcdef\n    timeout: 300ms\n"
    ));
    let g = firing("hook", "webhook");
    *srv.status.lock().unwrap() = (503, vec![], "busy".into());
    let e = n.notify("hook", &g).await.unwrap_err();
    assert!(e.retryable, "{e:?}");
    assert_eq!(e.reason, FailureReason::ServerError);
    assert!(e.message.contains("503") && e.message.contains("busy"), "{}", e.message);
    assert!(!e.message.contains("tok3n"), "{}", e.message);

    *srv.status.lock().unwrap() = (400, vec![], "bad".into());
    let e = n.notify("hook", &g).await.unwrap_err();
    assert!(!e.retryable);
    assert_eq!(e.reason, FailureReason::ClientError);

    *srv.status.lock().unwrap() = (429, vec![], "slow down".into());
    let e = n.notify("hook", &g).await.unwrap_err();
    assert!(!e.retryable, "webhook does not retry 429, as upstream");

    *srv.status.lock().unwrap() = (200, vec![], "".into());
    *srv.delay.lock().unwrap() = Duration::from_secs(5);
    let t = Instant::now();
    let e = n.notify("hook", &g).await.unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(e.retryable);
    assert_eq!(e.reason, FailureReason::ContextDeadlineExceeded);
    assert!(!e.message.contains("tok3n"), "{}", e.message);

    // Connection refused: retryable.
    let n = notifiers(
        "route: {receiver: hook}\nreceivers:\n- name: hook\n  webhook_configs:\n  - url: http://127.0.0.1:1/x\n",
    );
    let e = n.notify("hook", &g).await.unwrap_err();
    assert!(e.retryable);
}

#[tokio::test]
async fn none_integration_is_a_no_op_and_unknown_kinds_fail() {
    let n = notifiers("route: {receiver: blackhole}\nreceivers:\n- name: blackhole\n");
    n.notify("blackhole", &firing("blackhole", "none")).await.unwrap();
    let e = n
        .notify("blackhole", &firing("blackhole", "webhook"))
        .await
        .unwrap_err();
    assert!(!e.retryable);
}

#[tokio::test]
async fn slack_webhook_payload() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: s}}\nreceivers:\n- name: s\n  slack_configs:\n  - api_url: {base}/services/T/B/X\n    channel: '#alerts'\n    fields:\n    - title: Job\n      value: '{{{{ .CommonLabels.job }}}}'\n    actions:\n    - type: button\n      text: Runbook\n      url: http://rb\n"
    ));
    n.notify("s", &firing("s", "slack")).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/services/T/B/X");
    assert_eq!(r.headers["content-type"], "application/json");
    let b = r.body;
    assert_eq!(b["channel"], "#alerts");
    assert_eq!(b["username"], "Alertmanager");
    let a = &b["attachments"][0];
    assert_eq!(a["title"], "[FIRING:2] HighLatency (api)");
    assert_eq!(a["title_link"], "http://am.example:9093/#/alerts?receiver=s");
    assert_eq!(a["color"], "danger");
    assert_eq!(
        a["fallback"],
        "[FIRING:2] HighLatency (api) | http://am.example:9093/#/alerts?receiver=s"
    );
    assert_eq!(a["text"], "");
    assert_eq!(a["mrkdwn_in"], json!(["fallback", "pretext", "text"]));
    assert_eq!(a["fields"], json!([{"title": "Job", "value": "api", "short": false}]));
    assert_eq!(
        a["actions"],
        json!([{"type": "button", "text": "Runbook", "url": "http://rb"}])
    );

    n.notify("s", &resolved("s", "slack")).await.unwrap();
    let a = take(&srv).pop().unwrap().body["attachments"][0].clone();
    assert_eq!(a["color"], "good");
    assert_eq!(a["title"], "[RESOLVED] HighLatency (api info)");

    // A webhook answering anything but `ok` is a permanent failure.
    *srv.status.lock().unwrap() = (200, vec![], "invalid_payload".into());
    let e = n.notify("s", &firing("s", "slack")).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("invalid_payload"), "{e:?}");
    assert!(!e.message.contains("/services/T/B/X"));
}

#[tokio::test]
async fn slack_app_token_and_json_answers() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: s}}\nreceivers:\n- name: s\n  slack_configs:\n  - app_token: xoxb-secret-token\n    app_url: {base}/api/chat.postMessage\n    channel: '#c'\n"
    ));
    *srv.status.lock().unwrap() = (
        200,
        vec![("content-type".into(), "application/json".into())],
        r#"{"ok":true}"#.into(),
    );
    n.notify("s", &firing("s", "slack")).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.path, "/api/chat.postMessage");
    assert_eq!(r.headers["authorization"], "Bearer xoxb-secret-token");
    *srv.status.lock().unwrap() = (
        200,
        vec![("content-type".into(), "application/json; charset=utf-8".into())],
        r#"{"ok":false,"error":"channel_not_found"}"#.into(),
    );
    let e = n.notify("s", &firing("s", "slack")).await.unwrap_err();
    assert!(!e.retryable);
    assert!(e.message.contains("channel_not_found"), "{}", e.message);
    assert!(!e.message.contains("xoxb"));
}

#[tokio::test]
async fn slack_title_is_truncated_to_1024_runes() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: s}}\nreceivers:\n- name: s\n  slack_configs:\n  - api_url: {base}/x\n    title: '{{{{ range $i := 2000 }}}}é{{{{ end }}}}'\n"
    ));
    n.notify("s", &firing("s", "slack")).await.unwrap();
    let t = take(&srv).pop().unwrap().body["attachments"][0]["title"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(t.chars().count(), 1024);
    assert!(t.ends_with('…'));
}

#[tokio::test]
async fn pagerduty_events_v2() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: pd}}\nreceivers:\n- name: pd\n  pagerduty_configs:\n  - routing_key: R0UT1NGKEY\n    url: {base}/v2/enqueue\n    severity: '{{{{ if .CommonLabels.severity }}}}{{{{ .CommonLabels.severity }}}}{{{{ else }}}}critical{{{{ end }}}}'\n    component: db\n    details:\n      extra: '{{{{ .CommonLabels.job }}}}'\n    links:\n    - href: http://runbook\n      text: Runbook\n    - href: ''\n    images:\n    - src: http://img/x.png\n      alt: graph\n"
    ));
    *srv.status.lock().unwrap() = (202, vec![], r#"{"status":"success"}"#.into());
    n.notify("pd", &firing("pd", "pagerduty")).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/v2/enqueue");
    assert_eq!(r.headers["content-type"], "application/json");
    let b = r.body;
    assert_eq!(b["routing_key"], "R0UT1NGKEY");
    assert_eq!(b["event_action"], "trigger");
    // SHA-256 of the group key, as upstream's Key.Hash.
    assert_eq!(
        b["dedup_key"],
        watchfire_notify::http::key_hash("{}/{severity=\"page\"}:{alertname=\"HighLatency\"}")
    );
    assert_eq!(b["dedup_key"].as_str().unwrap().len(), 64);
    assert_eq!(b["client"], "Alertmanager");
    assert_eq!(b["client_url"], "http://am.example:9093/#/alerts?receiver=pd");
    assert_eq!(b["links"], json!([{"href": "http://runbook", "text": "Runbook"}]));
    assert_eq!(
        b["images"],
        json!([{"src": "http://img/x.png", "alt": "graph", "href": ""}])
    );
    let p = &b["payload"];
    assert_eq!(p["summary"], "[FIRING:2] HighLatency (api)");
    assert_eq!(p["source"], "Alertmanager");
    assert_eq!(p["severity"], "critical");
    assert_eq!(p["component"], "db");
    let d = &p["custom_details"];
    assert_eq!(d["extra"], "api");
    assert_eq!(d["num_firing"], "2");
    assert_eq!(d["num_resolved"], "0");
    assert_eq!(
        d["firing"].as_array().unwrap().len(),
        2,
        "toJson output embedded as JSON"
    );
    assert_eq!(d["firing"][0]["labels"]["instance"], "a:9090");

    n.notify("pd", &resolved("pd", "pagerduty")).await.unwrap();
    let b = take(&srv).pop().unwrap().body;
    assert_eq!(b["event_action"], "resolve");
    assert_eq!(b["payload"]["severity"], "info");

    // 429 retries (and honours Retry-After), other 4xx do not.
    *srv.status.lock().unwrap() = (429, vec![("retry-after".into(), "1".into())], "{}".into());
    let t = Instant::now();
    let e = n.notify("pd", &firing("pd", "pagerduty")).await.unwrap_err();
    assert!(e.retryable);
    assert!(t.elapsed() >= Duration::from_millis(900), "{:?}", t.elapsed());
    assert!(!e.message.contains("R0UT1NGKEY"));
    *srv.status.lock().unwrap() = (
        400,
        vec![],
        r#"{"status":"invalid event","message":"Event object is invalid"}"#.into(),
    );
    let e = n.notify("pd", &firing("pd", "pagerduty")).await.unwrap_err();
    assert!(!e.retryable);
    assert!(e.message.contains("Event object is invalid"));
    *srv.status.lock().unwrap() = (500, vec![], "".into());
    assert!(n.notify("pd", &firing("pd", "pagerduty")).await.unwrap_err().retryable);
}

#[tokio::test]
async fn pagerduty_oversized_details_are_replaced() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: pd}}\nreceivers:\n- name: pd\n  pagerduty_configs:\n  - routing_key: k\n    url: {base}/v2/enqueue\n    details:\n      big: '{{{{ range $i := 600000 }}}}x{{{{ end }}}}'\n"
    ));
    n.notify("pd", &firing("pd", "pagerduty")).await.unwrap();
    let b = take(&srv).pop().unwrap().body;
    let err = b["payload"]["custom_details"]["error"].as_str().unwrap();
    assert!(err.starts_with("Custom details have been removed"));
}

#[tokio::test]
async fn reload_switches_endpoints_and_bad_templates_are_refused() {
    let (base1, srv1) = server().await;
    let (base2, srv2) = server().await;
    let yaml =
        |b: &str| format!("route: {{receiver: hook}}\nreceivers:\n- name: hook\n  webhook_configs:\n  - url: {b}/x\n");
    let n = notifiers(&yaml(&base1));
    n.notify("hook", &firing("hook", "webhook")).await.unwrap();
    n.apply_config(&config(&yaml(&base2))).unwrap();
    n.notify("hook", &firing("hook", "webhook")).await.unwrap();
    assert_eq!(take(&srv1).len(), 1);
    assert_eq!(take(&srv2).len(), 1);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.tmpl"), "{{ define \"x\" }}").unwrap();
    let bad = format!("{}templates: ['{}/*.tmpl']\n", yaml(&base1), dir.path().display());
    assert!(n.apply_config(&config(&bad)).is_err());
    n.notify("hook", &firing("hook", "webhook")).await.unwrap();
    assert_eq!(
        take(&srv2).len(),
        1,
        "the old configuration stays after a failed reload"
    );
}

#[tokio::test]
async fn send_test_reports_each_integration() {
    let (base, srv) = server().await;
    let cfg = config(&format!(
        "route: {{receiver: r}}\nreceivers:\n- name: r\n  webhook_configs:\n  - url: {base}/a\n  - url: http://127.0.0.1:1/b\n"
    ));
    let now = jiff::Timestamp::now();
    let g = watchfire_notify::example_group("r", now);
    let res = watchfire_notify::send_test(
        &cfg,
        NotifyOptions {
            config_dir: "/tmp".into(),
            external_url: "http://am".into(),
        },
        "r",
        &g,
    )
    .await
    .unwrap();
    assert_eq!(res.len(), 2);
    assert!(res[0].result.is_ok());
    assert!(res[1].result.is_err());
    let b = take(&srv).pop().unwrap().body;
    assert_eq!(b["alerts"][0]["labels"]["alertname"], "WatchfireTest");
}

#[tokio::test]
async fn discord_embed() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: d}}\nreceivers:\n- name: d\n  discord_configs:\n  - webhook_url: {base}/api/webhooks/1/tok\n    username: fire\n    content: '{{{{ range $i := 3000 }}}}x{{{{ end }}}}'\n"
    ));
    n.notify("d", &firing("d", "discord")).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/api/webhooks/1/tok");
    assert_eq!(r.headers["content-type"], "application/json");
    let b = r.body;
    assert_eq!(b["username"], "fire");
    assert_eq!(b["content"].as_str().unwrap().chars().count(), 2000);
    let e = &b["embeds"][0];
    assert_eq!(e["title"], "[FIRING:2] HighLatency (api)");
    assert_eq!(e["color"], 0x992D22);
    assert!(
        e["description"]
            .as_str()
            .unwrap()
            .starts_with("\n\nAlerts Firing:\nLabels:\n - alertname = HighLatency\n")
    );
    n.notify("d", &resolved("d", "discord")).await.unwrap();
    let b = take(&srv).pop().unwrap().body;
    assert_eq!(b["embeds"][0]["color"], 0x2ECC71);
    assert!(
        b["embeds"][0]["description"]
            .as_str()
            .unwrap()
            .contains("Alerts Resolved:")
    );
    *srv.status.lock().unwrap() = (502, vec![], "".into());
    let e = n.notify("d", &firing("d", "discord")).await.unwrap_err();
    assert!(e.retryable && !e.message.contains("tok"), "{e:?}");
}

#[tokio::test]
async fn msteams_workflow_adaptive_card() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: t}}\nreceivers:\n- name: t\n  msteamsv2_configs:\n  - webhook_url: {base}/workflows/abc\n"
    ));
    n.notify("t", &firing("t", "msteamsv2")).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.path, "/workflows/abc");
    let b = r.body;
    assert_eq!(b["type"], "message");
    let a = &b["attachments"][0];
    assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(a["contentUrl"], Value::Null);
    let c = &a["content"];
    assert_eq!(c["type"], "AdaptiveCard");
    assert_eq!(c["version"], "1.2");
    assert_eq!(c["msteams"]["width"], "full");
    assert_eq!(c["body"][0]["text"], "[FIRING:2] HighLatency (api)");
    assert_eq!(c["body"][0]["color"], "Attention");
    assert!(c["body"][1]["text"].as_str().unwrap().contains("# Alerts Firing:"));
    n.notify("t", &resolved("t", "msteamsv2")).await.unwrap();
    assert_eq!(
        take(&srv).pop().unwrap().body["attachments"][0]["content"]["body"][0]["color"],
        "Good"
    );
}

#[tokio::test]
async fn opsgenie_create_update_and_close() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: o}}\nreceivers:\n- name: o\n  opsgenie_configs:\n  - api_key: G3N1E-key\n    api_url: {base}/\n    priority: P2\n    tags: 'a, b,,{{{{ .CommonLabels.job }}}}'\n    update_alerts: true\n    details:\n      extra: x\n    responders:\n    - name: 'ops, dev'\n      type: teams\n    - username: bob\n      type: user\n"
    ));
    *srv.status.lock().unwrap() = (202, vec![], "{}".into());
    n.notify("o", &firing("o", "opsgenie")).await.unwrap();
    let reqs = take(&srv);
    assert_eq!(reqs.len(), 3);
    let alias = watchfire_notify::http::key_hash("{}/{severity=\"page\"}:{alertname=\"HighLatency\"}");
    assert_eq!(
        (reqs[0].method.clone(), reqs[0].path.as_str()),
        (Method::POST, "/v2/alerts")
    );
    assert_eq!(reqs[0].headers["authorization"], "GenieKey G3N1E-key");
    let b = &reqs[0].body;
    assert_eq!(b["alias"], alias.as_str());
    assert_eq!(b["message"], "[FIRING:2] HighLatency (api)");
    assert_eq!(b["source"], "http://am.example:9093/#/alerts?receiver=o");
    assert_eq!(b["priority"], "P2");
    assert_eq!(b["tags"], json!(["a", "b", "api"]));
    assert_eq!(b["details"]["job"], "api");
    assert_eq!(b["details"]["extra"], "x");
    assert_eq!(
        b["responders"],
        json!([{"name": "ops", "type": "team"}, {"name": "dev", "type": "team"}, {"username": "bob", "type": "user"}])
    );
    assert!(b["description"].as_str().unwrap().contains("Alerts Firing:"));
    assert_eq!(reqs[1].method, Method::PUT);
    assert_eq!(reqs[1].path, format!("/v2/alerts/{alias}/message?identifierType=alias"));
    assert_eq!(
        reqs[2].path,
        format!("/v2/alerts/{alias}/description?identifierType=alias")
    );

    n.notify("o", &resolved("o", "opsgenie")).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.path, format!("/v2/alerts/{alias}/close?identifierType=alias"));
    assert_eq!(r.body, json!({"source": "http://am.example:9093/#/alerts?receiver=o"}));

    *srv.status.lock().unwrap() = (429, vec![], "".into());
    let e = n.notify("o", &firing("o", "opsgenie")).await.unwrap_err();
    assert!(e.retryable && !e.message.contains("G3N1E"), "{e:?}");
    *srv.status.lock().unwrap() = (422, vec![], "bad".into());
    assert!(!n.notify("o", &firing("o", "opsgenie")).await.unwrap_err().retryable);
}
