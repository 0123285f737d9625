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

fn ok_json(srv: &Srv, body: &str) {
    *srv.status.lock().unwrap() = (
        200,
        vec![("content-type".into(), "application/json".into())],
        body.into(),
    );
}

/// The query parameters of a request path, decoded.
fn query(path: &str) -> std::collections::BTreeMap<String, String> {
    let q = path.split_once('?').map(|x| x.1).unwrap_or_default();
    url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

#[tokio::test]
async fn telegram_send_message_html() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: t}}\nreceivers:\n- name: t\n  telegram_configs:\n  - api_url: {base}\n    bot_token: '123456:S3CR3T-token'\n    chat_id: -1001234\n    message_thread_id: 7\n    disable_notifications: true\n"
    ));
    ok_json(&srv, r#"{"ok":true,"result":{"message_id":9,"chat":{"id":-1001234}}}"#);
    n.notify("t", &mixed("t", "telegram")).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/bot123456:S3CR3T-token/sendMessage");
    assert_eq!(r.headers["content-type"], "application/json");
    let b = &r.body;
    // telebot sends every parameter as a string.
    assert_eq!(b["chat_id"], "-1001234");
    assert_eq!(b["parse_mode"], "HTML");
    assert_eq!(b["disable_web_page_preview"], "true");
    assert_eq!(b["disable_notification"], "true");
    assert_eq!(b["message_thread_id"], "7");
    let text = b["text"].as_str().unwrap();
    // HTML mode escapes values (html/template), not the template's own text.
    assert!(text.contains(" - summary = a &lt;b&gt; &amp; c\n"), "{text}");
    assert!(
        text.contains("Alerts Firing:") && text.contains("Alerts Resolved:"),
        "{text}"
    );
    assert_eq!(b.as_object().unwrap().len(), 6, "no other parameters: {b}");

    n.notify("t", &resolved("t", "telegram")).await.unwrap();
    let b = take(&srv).pop().unwrap().body;
    let text = b["text"].as_str().unwrap();
    assert!(
        text.contains("Alerts Resolved:") && !text.contains("Alerts Firing:"),
        "{text}"
    );

    // Bot API errors: a bad chat fails for good, flood control and 5xx are retried; the
    // token never shows.
    *srv.status.lock().unwrap() = (
        400,
        vec![],
        r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#.into(),
    );
    let e = n.notify("t", &firing("t", "telegram")).await.unwrap_err();
    assert!(!e.retryable, "{e:?}");
    assert_eq!(e.reason, FailureReason::ClientError);
    assert!(
        e.message.contains("chat not found") && !e.message.contains("S3CR3T"),
        "{e:?}"
    );
    *srv.status.lock().unwrap() = (
        429,
        vec![],
        r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}"#
            .into(),
    );
    let t = Instant::now();
    let e = n.notify("t", &firing("t", "telegram")).await.unwrap_err();
    assert!(e.retryable, "{e:?}");
    assert!(t.elapsed() >= Duration::from_millis(900), "retry_after is honoured");
    *srv.status.lock().unwrap() = (502, vec![], "<html>bad gateway</html>".into());
    let e = n.notify("t", &firing("t", "telegram")).await.unwrap_err();
    assert!(e.retryable && e.reason == FailureReason::ServerError, "{e:?}");
    assert!(!e.message.contains("S3CR3T"), "{e:?}");
}

#[tokio::test]
async fn telegram_plain_mode_files_and_limits() {
    let (base, srv) = server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "42:tok\n").unwrap();
    std::fs::write(dir.path().join("chat"), " 555\n").unwrap();
    let n = notifiers(&format!(
        "route: {{receiver: t}}\nreceivers:\n- name: t\n  telegram_configs:\n  - api_url: {base}/tg/\n    bot_token_file: {d}/token\n    chat_id_file: {d}/chat\n    parse_mode: ''\n    message: '{{{{ (index .Alerts 0).Annotations.summary }}}} {{{{ range $i := 5000 }}}}x{{{{ end }}}}'\n  - api_url: {base}\n    bot_token: '1:t'\n    chat_id: 1\n    message: '<b>{{{{ range $i := 5000 }}}}x{{{{ end }}}}</b>'\n",
        d = dir.path().display()
    ));
    ok_json(&srv, r#"{"ok":true,"result":{}}"#);
    n.notify("t", &mixed("t", "telegram")).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.path, "/tg/bot42:tok/sendMessage");
    let b = r.body;
    assert_eq!(b["chat_id"], "555");
    assert!(
        b.get("parse_mode").is_none()
            && b.get("disable_notification").is_none()
            && b.get("message_thread_id").is_none()
    );
    let text = b["text"].as_str().unwrap();
    assert!(
        text.starts_with("a <b> & c xxx"),
        "plain mode does not escape: {text:.40}"
    );
    assert_eq!(text.chars().count(), 4096);
    assert!(text.ends_with('…'));

    // An over-long HTML message is replaced by upstream's notice, not cut.
    let mut g = firing("t", "telegram");
    g.integration.index = 1;
    n.notify("t", &g).await.unwrap();
    let b = take(&srv).pop().unwrap().body;
    assert_eq!(b["text"], watchfire_notify::telegram::HTML_TOO_LONG);
}

#[tokio::test]
async fn pushover_query_parameters() {
    let (base, srv) = server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("user"), "uQiRzpo4DXghDmr9QzzfQu27cmVRsG\n").unwrap();
    let n = notifiers(&format!(
        "route: {{receiver: p}}\nreceivers:\n- name: p\n  pushover_configs:\n  - api_url: {base}/1/messages.json\n    user_key_file: {d}/user\n    token: azGDORePK8gMaC0QOYAMyEEuzJnyUi\n    sound: siren\n    device: phone\n    url_title: Open\n    ttl: 2h\n    retry: 90s\n    html: true\n  - api_url: {base}/1/messages.json\n    user_key: u\n    token: t\n    title: '{{{{ range $i := 300 }}}}é{{{{ end }}}}'\n    message: '   '\n    monospace: true\n    send_resolved: false\n",
        d = dir.path().display()
    ));
    *srv.status.lock().unwrap() = (200, vec![], r#"{"status":1,"request":"r"}"#.into());
    n.notify("p", &mixed("p", "pushover")).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.method, Method::POST);
    assert!(r.path.starts_with("/1/messages.json?"), "{}", r.path);
    assert_eq!(r.headers["content-type"], "text/plain");
    assert_eq!(r.body, Value::Null, "parameters travel in the query string");
    let q = query(&r.path);
    let keys: Vec<&str> = q.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "device",
            "expire",
            "html",
            "message",
            "priority",
            "retry",
            "sound",
            "title",
            "token",
            "ttl",
            "url",
            "url_title",
            "user"
        ]
    );
    assert_eq!(q["token"], "azGDORePK8gMaC0QOYAMyEEuzJnyUi");
    assert_eq!(q["user"], "uQiRzpo4DXghDmr9QzzfQu27cmVRsG", "file contents are trimmed");
    assert_eq!(q["title"], "[FIRING:1] HighLatency ", "upstream's subject");
    assert_eq!(q["priority"], "2");
    assert_eq!(q["retry"], "90");
    assert_eq!(q["expire"], "3600");
    assert_eq!(q["ttl"], "7200");
    assert_eq!(q["html"], "1");
    assert_eq!(q["sound"], "siren");
    assert_eq!(q["device"], "phone");
    assert_eq!(q["url_title"], "Open");
    assert_eq!(q["url"], "http://am.example:9093/#/alerts?receiver=p");
    let m = &q["message"];
    assert!(m.starts_with("Alerts Firing:"), "trimmed: {m:.30}");
    assert!(
        m.contains("summary = a &lt;b&gt; &amp; c"),
        "html mode escapes values: {m}"
    );

    n.notify("p", &resolved("p", "pushover")).await.unwrap();
    let q = query(&take(&srv).pop().unwrap().path);
    assert_eq!(q["priority"], "0");
    assert_eq!(q["title"], "[RESOLVED] HighLatency (api info)");

    // Limits and the empty-message rule.
    let mut g = firing("p", "pushover");
    g.integration.index = 1;
    n.notify("p", &g).await.unwrap();
    let q = query(&take(&srv).pop().unwrap().path);
    assert_eq!(q["title"].chars().count(), 250);
    assert_eq!(q["message"], "(no details)");
    assert_eq!(q["monospace"], "1");
    assert!(!q.contains_key("html") && !q.contains_key("ttl"));

    // Pushover's 4xx are final; the token and user key never show.
    *srv.status.lock().unwrap() = (
        400,
        vec![],
        r#"{"user":"invalid","errors":["user identifier is invalid"],"status":0}"#.into(),
    );
    let e = n.notify("p", &firing("p", "pushover")).await.unwrap_err();
    assert!(
        !e.retryable && e.message.contains("user identifier is invalid"),
        "{e:?}"
    );
    assert!(
        !e.message.contains("azGDORePK8") && !e.message.contains("uQiRzpo4"),
        "{e:?}"
    );
    *srv.status.lock().unwrap() = (500, vec![], "".into());
    assert!(n.notify("p", &firing("p", "pushover")).await.unwrap_err().retryable);
}

#[tokio::test]
async fn webex_markdown_message() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: w}}\nreceivers:\n- name: w\n  webex_configs:\n  - api_url: {base}/v1/messages\n    room_id: 'room-{{{{ .CommonLabels.job }}}}'\n    http_config:\n      authorization: {{credentials: B0T-T0KEN}}\n  - api_url: {base}/v1/messages\n    room_id: r\n    message: '{{{{ range $i := 3000 }}}}éa{{{{ end }}}}'\n    http_config:\n      authorization: {{credentials: t}}\n"
    ));
    n.notify("w", &firing("w", "webex")).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.headers["authorization"], "Bearer B0T-T0KEN");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.body["roomId"], "room-api");
    let md = r.body["markdown"].as_str().unwrap();
    assert!(md.starts_with("latency high\n\nAlerts Firing:"), "{md}");
    assert_eq!(r.body.as_object().unwrap().len(), 2);

    n.notify("w", &resolved("w", "webex")).await.unwrap();
    let md = take(&srv).pop().unwrap().body["markdown"].as_str().unwrap().to_owned();
    assert!(md.starts_with("ok now\n\n\nAlerts Resolved:"), "{md}");

    let mut g = firing("w", "webex");
    g.integration.index = 1;
    n.notify("w", &g).await.unwrap();
    let md = take(&srv).pop().unwrap().body["markdown"].as_str().unwrap().to_owned();
    assert!(md.len() <= 7439 && md.len() > 7430, "cut to 7439 bytes: {}", md.len());
    assert!(md.ends_with('…'));

    *srv.status.lock().unwrap() = (
        401,
        vec![],
        r#"{"message":"The request requires a valid access token"}"#.into(),
    );
    let e = n.notify("w", &firing("w", "webex")).await.unwrap_err();
    assert!(!e.retryable && !e.message.contains("B0T-T0KEN"), "{e:?}");
}

#[tokio::test]
async fn ntfy_json_publish() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: n}}\nreceivers:\n- name: n\n  ntfy_configs:\n  - url: {base}/\n    topic: 'alerts-{{{{ .CommonLabels.job }}}}-x7Kq'\n    access_token: tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2\n    icon: 'https://example.com/icon.png'\n    markdown: true\n    tags: ['{{{{ .CommonLabels.job }}}}, warning', '']\n  - url: {base}/sub/path\n    topic: other\n    priority: '{{{{ .CommonLabels.nope }}}}'\n    http_config:\n      basic_auth: {{username: phil, password: mypass}}\n  - url: {base}\n    topic: t\n    priority: urgentish\n"
    ));
    n.notify("n", &firing("n", "ntfy")).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["authorization"], "Bearer tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2");
    let b = &r.body;
    assert_eq!(b["topic"], "alerts-api-x7Kq");
    assert_eq!(b["title"], "[FIRING:2] HighLatency (api)");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .starts_with("latency high\n\nAlerts Firing:\nLabels:\n")
    );
    assert_eq!(b["priority"], 4);
    assert_eq!(b["tags"], json!(["api", "warning"]));
    assert_eq!(b["click"], "http://am.example:9093/#/alerts?receiver=n");
    assert_eq!(b["icon"], "https://example.com/icon.png");
    assert_eq!(b["markdown"], true);

    n.notify("n", &resolved("n", "ntfy")).await.unwrap();
    let b = take(&srv).pop().unwrap().body;
    assert_eq!(b["priority"], 3);
    assert_eq!(b["title"], "[RESOLVED] HighLatency (api info)");

    // Default tags, basic auth, an empty priority left to the server.
    let mut g = firing("n", "ntfy");
    g.integration.index = 1;
    n.notify("n", &g).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.path, "/sub/path");
    assert_eq!(r.headers["authorization"], "Basic cGhpbDpteXBhc3M=");
    assert_eq!(r.body["tags"], json!(["rotating_light"]));
    assert!(r.body.get("priority").is_none() && r.body.get("markdown").is_none());
    let mut g = resolved("n", "ntfy");
    g.integration.index = 1;
    n.notify("n", &g).await.unwrap();
    assert_eq!(take(&srv).pop().unwrap().body["tags"], json!(["white_check_mark"]));

    // A priority ntfy does not know fails for good, before anything is sent.
    g.integration.index = 2;
    let e = n.notify("n", &g).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("urgentish"), "{e:?}");
    assert!(take(&srv).is_empty());

    // 429 (rate limited) and 5xx retry, 403 does not; the topic and token never show.
    *srv.status.lock().unwrap() = (
        429,
        vec![],
        r#"{"code":42901,"http":429,"error":"limit reached: too many requests"}"#.into(),
    );
    let e = n.notify("n", &firing("n", "ntfy")).await.unwrap_err();
    assert!(e.retryable, "{e:?}");
    *srv.status.lock().unwrap() = (
        403,
        vec![],
        r#"{"code":40301,"http":403,"error":"forbidden alerts-api-x7Kq"}"#.into(),
    );
    let e = n.notify("n", &firing("n", "ntfy")).await.unwrap_err();
    assert!(!e.retryable && e.reason == FailureReason::ClientError, "{e:?}");
    assert!(
        !e.message.contains("alerts-api-x7Kq") && !e.message.contains("tk_AgQ"),
        "{e:?}"
    );
}

#[tokio::test]
async fn gotify_message_with_extras() {
    let (base, srv) = server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "AqW5nB.oPz3Kd1H\n").unwrap();
    let n = notifiers(&format!(
        "route: {{receiver: g}}\nreceivers:\n- name: g\n  gotify_configs:\n  - url: {base}/gotify/\n    token_file: {d}/token\n    markdown: true\n    extras:\n      android::action:\n        onReceive: {{intentUrl: 'https://example.com/{{{{ .CommonLabels.job }}}}'}}\n      x::labels: '{{{{ .CommonLabels | toJson }}}}'\n  - url: {base}\n    token: t\n    priority: 'high'\n",
        d = dir.path().display()
    ));
    n.notify("g", &firing("g", "gotify")).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/gotify/message");
    assert_eq!(r.headers["x-gotify-key"], "AqW5nB.oPz3Kd1H");
    assert_eq!(r.headers["content-type"], "application/json");
    let b = &r.body;
    assert_eq!(b["title"], "[FIRING:2] HighLatency (api)");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .starts_with("latency high\n\nAlerts Firing:")
    );
    assert_eq!(b["priority"], 8);
    let x = &b["extras"];
    assert_eq!(x["client::display"], json!({"contentType": "text/markdown"}));
    assert_eq!(
        x["client::notification"],
        json!({"click": {"url": "http://am.example:9093/#/alerts?receiver=g"}})
    );
    assert_eq!(
        x["android::action"],
        json!({"onReceive": {"intentUrl": "https://example.com/api"}})
    );
    assert_eq!(x["x::labels"]["job"], "api", "a JSON result is embedded as structure");

    n.notify("g", &resolved("g", "gotify")).await.unwrap();
    let b = take(&srv).pop().unwrap().body;
    assert_eq!(b["priority"], 4);
    let m = b["message"].as_str().unwrap();
    assert!(m.starts_with("ok now\n\n\nAlerts Resolved:"), "{m:?}");

    let mut g = firing("g", "gotify");
    g.integration.index = 1;
    let e = n.notify("g", &g).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("not an integer"), "{e:?}");

    *srv.status.lock().unwrap() = (
        401,
        vec![],
        r#"{"error":"Unauthorized","errorCode":401,"errorDescription":"you need to provide a valid access token or user credentials to access this api"}"#.into(),
    );
    let e = n.notify("g", &firing("g", "gotify")).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("valid access token"), "{e:?}");
    assert!(!e.message.contains("AqW5nB"), "{e:?}");
    *srv.status.lock().unwrap() = (503, vec![], "".into());
    assert!(n.notify("g", &firing("g", "gotify")).await.unwrap_err().retryable);
}

#[test]
fn send_resolved_defaults_of_the_new_integrations() {
    let cfg = config(
        "route: {receiver: r}\nreceivers:\n- name: r\n  telegram_configs: [{bot_token: t, chat_id: 1}, {bot_token: t, chat_id: 1, send_resolved: false}]\n  pushover_configs: [{user_key: u, token: t}]\n  webex_configs: [{room_id: r, http_config: {authorization: {credentials: c}}}]\n  ntfy_configs: [{topic: t}]\n  gotify_configs: [{url: 'http://g', token: t, send_resolved: false}]\n",
    );
    let got: Vec<(String, u32, bool)> = watchfire_alerting::notify::receiver_integrations(&cfg.receivers[0].value)
        .into_iter()
        .map(|i| (i.name, i.index, i.send_resolved))
        .collect();
    let want = [
        ("pushover", 0, true),
        ("telegram", 0, true),
        ("telegram", 1, false),
        ("webex", 0, true),
        ("ntfy", 0, true),
        ("gotify", 0, false),
    ];
    assert_eq!(
        got,
        want.iter().map(|(n, i, s)| (n.to_string(), *i, *s)).collect::<Vec<_>>()
    );
    assert!(watchfire_notify::undelivered(&cfg.receivers[0].value).is_empty());
}

/// Polls `f` until it holds or `deadline` passes.
async fn wait_until(deadline: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

#[tokio::test]
async fn send_resolved_false_keeps_resolved_notifications_away() {
    // Through the whole pipeline: the dispatcher, then these notifiers.
    let (base, srv) = server().await;
    let cfg = config(&format!(
        "route:\n  receiver: n\n  group_wait: 0s\n  group_interval: 1s\nreceivers:\n- name: n\n  ntfy_configs:\n  - {{url: '{base}/all', topic: t}}\n  - {{url: '{base}/firing-only', topic: t, send_resolved: false}}\n"
    ));
    let notifiers = Arc::new(
        Notifiers::new(
            &cfg,
            NotifyOptions {
                config_dir: "/tmp".into(),
                external_url: String::new(),
            },
        )
        .unwrap(),
    );
    let alerting = watchfire_alerting::Alerting::open(
        cfg,
        watchfire_alerting::Options::default(),
        notifiers,
        &prometheus::Registry::new(),
    )
    .unwrap();
    let started = jiff::Timestamp::now();
    let alert = |ends_at| watchfire_alerting::PostableAlert {
        labels: watchfire_model::Labels::from_pairs([("alertname", "DiskFull")]),
        annotations: Default::default(),
        starts_at: Some(started),
        ends_at,
        generator_url: String::new(),
    };
    let count = |path: &str, status: &str| {
        srv.reqs
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path && r.body["title"].as_str().unwrap_or_default().contains(status))
            .count()
    };
    alerting.put_alerts(vec![alert(None)]).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || count("/all", "FIRING") == 1
            && count("/firing-only", "FIRING") == 1)
        .await,
        "{:?}",
        srv.reqs.lock().unwrap()
    );
    alerting.put_alerts(vec![alert(Some(jiff::Timestamp::now()))]).unwrap();
    assert!(wait_until(Duration::from_secs(10), || count("/all", "RESOLVED") == 1).await);
    // The resolved flush is over for both integrations; give a later flush its chance too.
    assert!(
        !wait_until(Duration::from_millis(1500), || count("/firing-only", "RESOLVED") > 0).await,
        "send_resolved: false was told about the resolution"
    );
    alerting.shutdown();
}

#[tokio::test]
async fn test_receiver_runs_every_integration_with_a_deadline() {
    let (base, srv) = server().await;
    let (slow_base, slow) = server().await;
    *slow.delay.lock().unwrap() = Duration::from_secs(10);
    let n = notifiers(&format!(
        "route: {{receiver: r}}\nreceivers:\n- name: r\n  webhook_configs:\n  - url: {base}/a\n  - url: {slow_base}/hung\n  ntfy_configs:\n  - {{url: '{base}/n', topic: t}}\n  pushover_configs:\n  - {{user_key: u, token: t, api_url: '{base}/p'}}\n- name: empty\n"
    ));
    let g = watchfire_notify::example_group("r", jiff::Timestamp::now());
    let t = Instant::now();
    let res = n.test_receiver("r", &g, Duration::from_millis(500)).await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "integrations run at once: {:?}",
        t.elapsed()
    );
    let got: Vec<(String, u32, bool)> = res
        .iter()
        .map(|r| (r.integration.clone(), r.index, r.result.is_ok()))
        .collect();
    assert_eq!(
        got,
        [
            ("webhook".to_owned(), 0, true),
            ("webhook".to_owned(), 1, false),
            ("pushover".to_owned(), 0, true),
            ("ntfy".to_owned(), 0, true),
        ]
    );
    let e = res[1].result.as_ref().unwrap_err();
    assert_eq!(e.reason, FailureReason::ContextDeadlineExceeded, "{e:?}");
    let reqs = take(&srv);
    assert_eq!(reqs.len(), 3);
    let hook = reqs.iter().find(|r| r.path == "/a").unwrap();
    assert_eq!(hook.body["receiver"], "r");
    assert_eq!(hook.body["alerts"][0]["labels"]["alertname"], "WatchfireTest");
    let ntfy = reqs.iter().find(|r| r.path == "/n").unwrap();
    assert_eq!(ntfy.body["title"], "[FIRING:1] WatchfireTest (none)");

    // No integrations: nothing is sent, and that is a success.
    let res = n.test_receiver("empty", &g, Duration::from_secs(1)).await.unwrap();
    assert_eq!(res.len(), 1);
    assert_eq!(res[0].integration, "none");
    assert!(res[0].result.is_ok());
    assert!(n.test_receiver("nope", &g, Duration::from_secs(1)).await.is_none());
}

#[tokio::test]
async fn test_api_uses_the_running_configuration() {
    let (base, srv) = server().await;
    let yaml = |path: &str| {
        format!(
            "route: {{receiver: r}}\nreceivers:\n- name: r\n  webhook_configs:\n  - url: {base}{path}\n  - url: http://127.0.0.1:1/refused-S3CRET\n"
        )
    };
    let n = Arc::new(notifiers(&yaml("/first")));
    let app = Router::new().nest("/api/watchfire", watchfire_notify::api::router(n.clone()));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let http = reqwest::Client::new();

    let resp = http
        .post(format!("{api}/api/watchfire/receivers/r/test"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["receiver"], "r");
    assert_eq!(body["status"], "failure");
    assert_eq!(
        body["integrations"][0],
        json!({"integration": "webhook", "index": 0, "status": "success"})
    );
    let failed = &body["integrations"][1];
    assert_eq!(failed["status"], "failure");
    assert_eq!(failed["retryable"], true);
    assert_eq!(failed["reason"], "other");
    assert!(!failed["error"].as_str().unwrap().contains("S3CRET"), "{failed}");
    assert_eq!(take(&srv).pop().unwrap().path, "/first");

    // After a reload the new configuration is tested.
    n.apply_config(&config(&yaml("/second"))).unwrap();
    let body: Value = http
        .post(format!("{api}/api/watchfire/receivers/r/test"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["integrations"][0]["status"], "success");
    assert_eq!(take(&srv).pop().unwrap().path, "/second");

    let resp = http
        .post(format!("{api}/api/watchfire/receivers/nope/test"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!("receiver \"nope\" not found")
    );
    let resp = http
        .get(format!("{api}/api/watchfire/receivers/r/test"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
}

#[tokio::test]
async fn victorops_alert() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: v}}\nreceivers:\n- name: v\n  victorops_configs:\n  - api_url: {base}/integrations/generic/20131114/alert\n    api_key: V0-API-KEY\n    routing_key: 'team-{{{{ .CommonLabels.job }}}}'\n    message_type: '{{{{ if .CommonLabels.sev }}}}WARNING{{{{ else }}}}PAGE{{{{ end }}}}'\n    state_message: '{{{{ range $i := 30000 }}}}x{{{{ end }}}}'\n    custom_fields:\n      team: '{{{{ .CommonLabels.job }}}}'\n"
    ));
    n.notify("v", &firing("v", "victorops")).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/integrations/generic/20131114/alert/V0-API-KEY/team-api");
    assert_eq!(r.headers["content-type"], "application/json");
    let b = &r.body;
    assert_eq!(b["message_type"], "CRITICAL", "unknown types fall back to CRITICAL");
    assert_eq!(
        b["entity_id"],
        watchfire_notify::http::key_hash("{}/{severity=\"page\"}:{alertname=\"HighLatency\"}")
    );
    assert_eq!(b["entity_display_name"], "[FIRING:2] HighLatency (api)");
    assert_eq!(b["monitoring_tool"], "Alertmanager");
    assert_eq!(b["team"], "api");
    assert_eq!(b["state_message"].as_str().unwrap().chars().count(), 20480);

    n.notify("v", &resolved("v", "victorops")).await.unwrap();
    assert_eq!(take(&srv).pop().unwrap().body["message_type"], "RECOVERY");

    *srv.status.lock().unwrap() = (400, vec![], "bad".into());
    let e = n.notify("v", &firing("v", "victorops")).await.unwrap_err();
    assert!(!e.retryable && !e.message.contains("V0-API-KEY"), "{e:?}");
    *srv.status.lock().unwrap() = (503, vec![], "".into());
    assert!(n.notify("v", &firing("v", "victorops")).await.unwrap_err().retryable);
}

#[tokio::test]
async fn rocketchat_post_message() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: rc}}\nreceivers:\n- name: rc\n  rocketchat_configs:\n  - api_url: {base}/chat\n    token: R0CKET-T0KEN\n    token_id: user-id-1\n    channel: '#alerts'\n    fields:\n    - {{title: Job, value: '{{{{ .CommonLabels.job }}}}'}}\n    - {{title: X, value: y, short: true}}\n    actions:\n    - {{text: Runbook, url: 'http://rb'}}\n"
    ));
    ok_json(&srv, r#"{"success":true}"#);
    n.notify("rc", &firing("rc", "rocketchat")).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/chat/api/v1/chat.postMessage");
    assert_eq!(r.headers["x-auth-token"], "R0CKET-T0KEN");
    assert_eq!(r.headers["x-user-id"], "user-id-1");
    let b = &r.body;
    assert_eq!(b["channel"], "#alerts");
    assert!(b.get("emoji").is_none() && b.get("avatar").is_none());
    let a = &b["attachments"][0];
    assert_eq!(a["title"], "[FIRING:2] HighLatency (api)");
    assert_eq!(a["title_link"], "http://am.example:9093/#/alerts?receiver=rc");
    assert_eq!(a["color"], "red");
    assert!(a.get("text").is_none());
    assert_eq!(
        a["fields"],
        json!([{"short": false, "title": "Job", "value": "api"}, {"short": true, "title": "X", "value": "y"}])
    );
    assert_eq!(
        a["actions"],
        json!([{"type": "button", "text": "Runbook", "url": "http://rb", "is_webview": false, "msg_in_chat_window": false}])
    );
    n.notify("rc", &resolved("rc", "rocketchat")).await.unwrap();
    assert_eq!(take(&srv).pop().unwrap().body["attachments"][0]["color"], "green");

    ok_json(&srv, r#"{"success":false,"error":"error-not-allowed"}"#);
    let e = n.notify("rc", &firing("rc", "rocketchat")).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("error-not-allowed"), "{e:?}");
    assert_eq!(e.reason, FailureReason::ClientError);
    ok_json(&srv, "not json");
    assert!(n.notify("rc", &firing("rc", "rocketchat")).await.unwrap_err().retryable);
    *srv.status.lock().unwrap() = (
        401,
        vec![],
        r#"{"status":"error","message":"You must be logged in"}"#.into(),
    );
    let e = n.notify("rc", &firing("rc", "rocketchat")).await.unwrap_err();
    assert!(!e.retryable && !e.message.contains("R0CKET"), "{e:?}");
}

#[tokio::test]
async fn mattermost_webhook() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: m}}\nreceivers:\n- name: m\n  mattermost_configs:\n  - webhook_url: {base}/hooks/xyzS3CRET\n    channel: town-square\n    fields: [{{title: Job, value: '{{{{ .CommonLabels.job }}}}', short: true}}]\n    priority: {{priority: Important, requested_ack: true, persistent_notifications: true}}\n    props: {{card: 'card {{{{ .Status }}}}'}}\n  - webhook_url: {base}/hooks/two\n    text: '{{{{ range $i := 17000 }}}}x{{{{ end }}}}'\n    attachments:\n    - {{title: A, text: '{{{{ .Status }}}}', color: '#ff0000'}}\n    priority: {{priority: whatever, requested_ack: true}}\n"
    ));
    n.notify("m", &firing("m", "mattermost")).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/hooks/xyzS3CRET");
    let b = &r.body;
    assert_eq!(b["channel"], "town-square");
    assert_eq!(b["username"], "Alertmanager");
    assert!(b.get("text").is_none(), "the text goes in the attachment");
    assert_eq!(b["props"], json!({"card": "card firing"}));
    assert_eq!(b["priority"], json!({"priority": "important", "requested_ack": true}));
    let a = &b["attachments"][0];
    assert_eq!(a["title"], "[FIRING:2] HighLatency (api)");
    assert_eq!(a["title_link"], "http://am.example:9093/#/alerts?receiver=m");
    assert_eq!(a["color"], "danger");
    assert_eq!(
        a["fallback"],
        "[FIRING:2] HighLatency (api) | http://am.example:9093/#/alerts?receiver=m"
    );
    assert!(a["text"].as_str().unwrap().contains("# Alerts Firing:"));
    assert_eq!(a["fields"], json!([{"title": "Job", "value": "api", "short": true}]));
    n.notify("m", &resolved("m", "mattermost")).await.unwrap();
    assert_eq!(take(&srv).pop().unwrap().body["attachments"][0]["color"], "good");

    let mut g = firing("m", "mattermost");
    g.integration.index = 1;
    n.notify("m", &g).await.unwrap();
    let b = take(&srv).pop().unwrap().body;
    assert_eq!(b["text"].as_str().unwrap().chars().count(), 16383);
    assert_eq!(
        b["attachments"],
        json!([{"title": "A", "text": "firing", "color": "#ff0000"}])
    );
    assert_eq!(b["priority"], json!({"priority": "standard"}));

    *srv.status.lock().unwrap() = (404, vec![], "no hook".into());
    let e = n.notify("m", &firing("m", "mattermost")).await.unwrap_err();
    assert!(!e.retryable && !e.message.contains("xyzS3CRET"), "{e:?}");
}

#[tokio::test]
async fn incidentio_alert_source() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: i}}\nreceivers:\n- name: i\n  incidentio_configs:\n  - url: {base}/v2/alert_events/alertmanager/01ABC\n    alert_source_token: inc-T0KEN\n    max_alerts: 1\n  - url: {base}/big\n    http_config: {{authorization: {{credentials: other}}}}\n"
    ));
    n.notify("i", &firing("i", "incidentio")).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/v2/alert_events/alertmanager/01ABC");
    assert_eq!(r.headers["authorization"], "Bearer inc-T0KEN");
    assert_eq!(r.headers["content-type"], "application/json");
    let b = &r.body;
    assert_eq!(b["version"], "1");
    assert_eq!(b["truncatedAlerts"], 1);
    assert_eq!(b["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(b["groupKey"], "{}/{severity=\"page\"}:{alertname=\"HighLatency\"}");
    assert_eq!(b["status"], "firing");
    n.notify("i", &resolved("i", "incidentio")).await.unwrap();
    assert_eq!(take(&srv).pop().unwrap().body["status"], "resolved");

    // Over 512 KiB: only the first alert stays.
    let big = "x".repeat(300 * 1024);
    let mut g = group(
        "i",
        "incidentio",
        vec![
            alert(&[("alertname", "A"), ("n", "1")], &[("big", &big)], false),
            alert(&[("alertname", "A"), ("n", "2")], &[("big", &big)], false),
        ],
    );
    g.integration.index = 1;
    n.notify("i", &g).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.headers["authorization"], "Bearer other");
    assert_eq!(r.body["alerts"].as_array().unwrap().len(), 1);

    *srv.status.lock().unwrap() = (429, vec![], r#"{"message":"slow down"}"#.into());
    assert!(n.notify("i", &firing("i", "incidentio")).await.unwrap_err().retryable);
    *srv.status.lock().unwrap() = (422, vec![], r#"{"errors":["bad field"]}"#.into());
    let e = n.notify("i", &firing("i", "incidentio")).await.unwrap_err();
    assert!(
        !e.retryable && e.message.contains("bad field") && !e.message.contains("inc-T0KEN"),
        "{e:?}"
    );
}

#[tokio::test]
async fn wechat_token_then_message() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: w}}\nreceivers:\n- name: w\n  wechat_configs:\n  - api_url: {base}/cgi-bin/\n    api_secret: W3CHAT-SECRET\n    corp_id: corp1\n    to_user: '@all'\n    agent_id: '1000002'\n  - api_url: {base}/cgi-bin/\n    api_secret: s\n    corp_id: corp1\n    message_type: markdown\n    message: '**{{{{ .Status }}}}**'\n"
    ));
    // One answer that serves both calls: the token, and the send's errcode.
    ok_json(
        &srv,
        r#"{"access_token":"ACC3SS","expires_in":7200,"errcode":0,"errmsg":"ok"}"#,
    );
    n.notify("w", &firing("w", "wechat")).await.unwrap();
    let reqs = take(&srv);
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].method, Method::GET);
    assert_eq!(reqs[0].path, "/cgi-bin/gettoken?corpid=corp1&corpsecret=W3CHAT-SECRET");
    assert_eq!(reqs[1].method, Method::POST);
    assert_eq!(reqs[1].path, "/cgi-bin/message/send?access_token=ACC3SS");
    let b = &reqs[1].body;
    assert!(
        b["text"]["content"]
            .as_str()
            .unwrap()
            .starts_with("[FIRING:2] HighLatency (api)")
    );
    assert_eq!(b["markdown"], json!({"content": ""}));
    assert_eq!(b["touser"], "@all");
    assert_eq!(b["agentid"], "1000002");
    assert_eq!(b["safe"], "0");
    assert_eq!(b["msgtype"], "text");
    assert!(b.get("toparty").is_none());

    // The token is cached.
    n.notify("w", &resolved("w", "wechat")).await.unwrap();
    let reqs = take(&srv);
    assert_eq!(reqs.len(), 1, "{reqs:?}");

    let mut g = firing("w", "wechat");
    g.integration.index = 1;
    n.notify("w", &g).await.unwrap();
    let b = take(&srv).pop().unwrap().body;
    assert_eq!(b["markdown"], json!({"content": "**firing**"}));
    assert_eq!(b["text"], json!({"content": ""}));
    assert_eq!(b["msgtype"], "markdown");

    // An expired token is dropped and the send retried with a new one.
    ok_json(
        &srv,
        r#"{"access_token":"ACC3SS","errcode":42001,"errmsg":"access_token expired"}"#,
    );
    let e = n.notify("w", &firing("w", "wechat")).await.unwrap_err();
    assert!(e.retryable && !e.message.contains("ACC3SS"), "{e:?}");
    assert_eq!(take(&srv).len(), 1);
    ok_json(
        &srv,
        r#"{"access_token":"NEW","errcode":40014,"errmsg":"invalid access_token"}"#,
    );
    let e = n.notify("w", &firing("w", "wechat")).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("invalid access_token"), "{e:?}");
    let reqs = take(&srv);
    assert_eq!(reqs.len(), 2, "a new token was fetched");
    assert!(
        reqs.iter()
            .all(|r| !r.path.contains("W3CHAT") || r.path.contains("gettoken"))
    );
    ok_json(&srv, r#"{"errcode":40001,"errmsg":"invalid credential"}"#);
    let n2 = notifiers(&format!(
        "route: {{receiver: w}}\nreceivers:\n- name: w\n  wechat_configs:\n  - {{api_url: '{base}/', api_secret: W3CHAT-SECRET, corp_id: corp1}}\n"
    ));
    let e = n2.notify("w", &firing("w", "wechat")).await.unwrap_err();
    assert!(
        !e.retryable && e.message.contains("invalid APISecret for CorpID: corp1"),
        "{e:?}"
    );
    assert!(!e.message.contains("W3CHAT"));
}

/// A Jira fake: the search answers `search`, transitions list Reopen (11) and Done (31),
/// everything else answers 201/204.
#[derive(Clone, Default)]
struct JiraFake {
    reqs: Arc<Mutex<Vec<Req>>>,
    search: Arc<Mutex<(u16, String)>>,
}

async fn jira_handle(State(s): State<JiraFake>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_owned();
    s.reqs.lock().unwrap().push(Req {
        method: method.clone(),
        path: path.clone(),
        headers,
        body,
    });
    if path.contains("/search") {
        let (code, body) = s.search.lock().unwrap().clone();
        return (StatusCode::from_u16(code).unwrap(), body).into_response();
    }
    if path.ends_with("/transitions") && method == Method::GET {
        return axum::Json(json!({"transitions": [{"id": "11", "name": "Reopen"}, {"id": "31", "name": "Done"}]}))
            .into_response();
    }
    if method == Method::POST && path.ends_with("/issue") {
        return (StatusCode::CREATED, axum::Json(json!({"id": "1000", "key": "OPS-1"}))).into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

#[tokio::test]
async fn jira_create_update_and_transition() {
    let fake = JiraFake::default();
    *fake.search.lock().unwrap() = (200, r#"{"issues":[]}"#.into());
    let app = Router::new().fallback(jira_handle).with_state(fake.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let take = || std::mem::take(&mut *fake.reqs.lock().unwrap());
    let n = notifiers(&format!(
        "route: {{receiver: j}}\nreceivers:\n- name: j\n  jira_configs:\n  - api_url: {base}/rest/api/2\n    project: OPS\n    issue_type: Bug\n    labels: ['{{{{ .CommonLabels.job }}}}', alertmanager]\n    summary: {{template: '{{{{ template \"jira.default.summary\" . }}}}', enable_update: false}}\n    reopen_transition: Reopen\n    resolve_transition: Done\n    wont_fix_resolution: \"Won't Fix\"\n    reopen_duration: 10m\n    fields:\n      customfield_10001: '{{{{ .CommonLabels.job }}}}'\n      customfield_10002: {{value: red}}\n    http_config:\n      basic_auth: {{username: bot@example.com, password: api-token}}\n  - api_url: {base}/rest/api/2\n    api_type: cloud\n    project: OPS\n    issue_type: Task\n    reopen_transition: Nope\n"
    ));
    let hash = watchfire_notify::http::key_hash("{}/{severity=\"page\"}:{alertname=\"HighLatency\"}");
    let label = format!("ALERT{{{hash}}}");

    // A new group: search, then create.
    n.notify("j", &firing("j", "jira")).await.unwrap();
    let reqs = take();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let s = &reqs[0];
    assert_eq!(
        (s.method.clone(), s.path.as_str()),
        (Method::POST, "/rest/api/2/search")
    );
    assert_eq!(s.headers["accept-language"], "en");
    assert_eq!(s.headers["authorization"], "Basic Ym90QGV4YW1wbGUuY29tOmFwaS10b2tlbg==");
    assert_eq!(
        s.body,
        json!({
            "fields": ["status"],
            "maxResults": 2,
            "jql": format!("(resolution is EMPTY or resolution != \"Won't Fix\") and (resolutiondate is EMPTY OR resolutiondate >= -10m) and project=\"OPS\" and labels=\"{label}\" order by status ASC,resolutiondate DESC"),
        })
    );
    let c = &reqs[1];
    assert_eq!((c.method.clone(), c.path.as_str()), (Method::POST, "/rest/api/2/issue"));
    let f = &c.body["fields"];
    assert_eq!(f["project"], json!({"key": "OPS"}));
    assert_eq!(f["issuetype"], json!({"name": "Bug"}));
    assert_eq!(f["summary"], "[FIRING:2] HighLatency (api)");
    assert_eq!(f["labels"], json!([label.clone(), "alertmanager", "api"]));
    assert!(f.get("priority").is_none(), "no severity label: no priority");
    assert!(f["description"].as_str().unwrap().contains("# Alerts Firing:"));
    assert_eq!(f["customfield_10001"], "api");
    assert_eq!(f["customfield_10002"], json!({"value": "red"}));

    // The group fires again and its issue was resolved: update (summary kept), then reopen.
    *fake.search.lock().unwrap() = (
        200,
        r#"{"issues":[{"key":"OPS-1","fields":{"status":{"name":"Done","statusCategory":{"key":"done"}}}}]}"#.into(),
    );
    n.notify("j", &mixed("j", "jira")).await.unwrap();
    let reqs = take();
    let got: Vec<(Method, &str)> = reqs.iter().map(|r| (r.method.clone(), r.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (Method::POST, "/rest/api/2/search"),
            (Method::PUT, "/rest/api/2/issue/OPS-1"),
            (Method::GET, "/rest/api/2/issue/OPS-1/transitions"),
            (Method::POST, "/rest/api/2/issue/OPS-1/transitions"),
        ]
    );
    assert!(reqs[1].body["fields"].get("summary").is_none(), "enable_update: false");
    assert_eq!(
        reqs[1].body["fields"]["priority"],
        json!({"name": "Medium"}),
        "the firing alert is a warning"
    );
    assert_eq!(reqs[3].body, json!({"transition": {"id": "11"}}));

    // Resolved with an open issue: update, then resolve.
    *fake.search.lock().unwrap() = (
        200,
        r#"{"issues":[{"key":"OPS-1","fields":{"status":{"name":"Open","statusCategory":{"key":"new"}}}}]}"#.into(),
    );
    n.notify("j", &resolved("j", "jira")).await.unwrap();
    let reqs = take();
    assert!(reqs[0].body["jql"].as_str().unwrap().contains("statusCategory != Done"));
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs[3].body, json!({"transition": {"id": "31"}}));

    // Resolved without an issue: nothing is created.
    *fake.search.lock().unwrap() = (200, r#"{"issues":[]}"#.into());
    n.notify("j", &resolved("j", "jira")).await.unwrap();
    assert_eq!(take().len(), 1);

    // Jira Cloud searches through API v3; an unknown transition fails for good.
    let mut g = firing("j", "jira");
    g.integration.index = 1;
    *fake.search.lock().unwrap() = (
        200,
        r#"{"issues":[{"key":"OPS-2","fields":{"status":{"statusCategory":{"key":"done"}}}}]}"#.into(),
    );
    let e = n.notify("j", &g).await.unwrap_err();
    assert!(
        !e.retryable && e.message.contains("can't find transition Nope for issue OPS-2"),
        "{e:?}"
    );
    let reqs = take();
    assert_eq!(reqs[0].path, "/rest/api/3/search/jql");
    assert!(
        reqs[0].body["jql"]
            .as_str()
            .unwrap()
            .starts_with("statusCategory != Done and project=\"OPS\"")
    );

    // Rate limiting and server errors are retried.
    *fake.search.lock().unwrap() = (429, "".into());
    let e = n.notify("j", &firing("j", "jira")).await.unwrap_err();
    assert!(
        e.retryable && e.message.starts_with("failed to look up existing issues"),
        "{e:?}"
    );
    *fake.search.lock().unwrap() = (400, r#"{"errorMessages":["bad jql"]}"#.into());
    let e = n.notify("j", &firing("j", "jira")).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("bad jql"), "{e:?}");
}

/// An SNS fake that checks each request's SigV4 signature against the secret key it knows,
/// from the headers and body it received.
/// A request's headers and decoded form.
type SnsRequest = (HeaderMap, std::collections::BTreeMap<String, String>);

#[derive(Clone, Default)]
struct SnsFake {
    reqs: Arc<Mutex<Vec<SnsRequest>>>,
    answer: Arc<Mutex<(u16, String)>>,
}

async fn sns_handle(State(s): State<SnsFake>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let auth = h("authorization");
    let signed_headers = auth
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|x| x.split(',').next())
        .unwrap_or_default()
        .to_owned();
    let scope: Vec<&str> = auth
        .split("Credential=")
        .nth(1)
        .and_then(|x| x.split(',').next())
        .unwrap_or_default()
        .split('/')
        .collect();
    let values: Vec<(String, String)> = signed_headers.split(';').map(|n| (n.to_owned(), h(n))).collect();
    let refs: Vec<(&str, &str)> = values.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let amz_date = h("x-amz-date");
    let expected = watchfire_notify::sns::sign(
        &watchfire_notify::sns::SignInput {
            method: "POST",
            path: uri.path(),
            query: uri.query().unwrap_or_default(),
            headers: &refs,
            body: &body,
            amz_date: &amz_date,
            region: scope.get(2).copied().unwrap_or_default(),
            service: scope.get(3).copied().unwrap_or_default(),
        },
        &watchfire_notify::sns::Credentials {
            access_key: "AKIDEXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        },
    );
    if auth != expected || !signed_headers.contains("host") || scope.get(3) != Some(&"sns") {
        return (
            StatusCode::FORBIDDEN,
            "<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>bad signature</Message></Error></ErrorResponse>",
        )
            .into_response();
    }
    let form = url::form_urlencoded::parse(&body).into_owned().collect();
    s.reqs.lock().unwrap().push((headers, form));
    let (code, text) = s.answer.lock().unwrap().clone();
    (StatusCode::from_u16(code).unwrap(), text).into_response()
}

#[tokio::test]
async fn sns_publish_signed_with_sigv4() {
    let fake = SnsFake::default();
    *fake.answer.lock().unwrap() = (
        200,
        "<PublishResponse><PublishResult><MessageId>1</MessageId></PublishResult></PublishResponse>".into(),
    );
    let app = Router::new().fallback(sns_handle).with_state(fake.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let take = || std::mem::take(&mut *fake.reqs.lock().unwrap());
    let sigv4 = "{region: eu-west-1, access_key: AKIDEXAMPLE, secret_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY}";
    let n = notifiers(&format!(
        "route: {{receiver: s}}\nreceivers:\n- name: s\n  sns_configs:\n  - api_url: {base}/\n    topic_arn: 'arn:aws:sns:eu-west-1:123456789012:alerts.fifo'\n    sigv4: {sigv4}\n    attributes: {{team: '{{{{ .CommonLabels.job }}}}', env: prod}}\n  - api_url: {base}\n    phone_number: '+15555550100'\n    sigv4: {sigv4}\n    message: '{{{{ range $i := 2000 }}}}x{{{{ end }}}}'\n  - api_url: {base}\n    target_arn: arn:t\n    sigv4: {{region: eu-west-1, role_arn: 'arn:aws:iam::1:role/x'}}\n"
    ));
    n.notify("s", &firing("s", "sns")).await.unwrap();
    let (headers, form) = take().pop().expect("the signature was accepted");
    assert_eq!(
        headers["content-type"],
        "application/x-www-form-urlencoded; charset=utf-8"
    );
    assert!(
        headers["authorization"]
            .to_str()
            .unwrap()
            .starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    );
    assert!(
        headers["authorization"]
            .to_str()
            .unwrap()
            .contains("/eu-west-1/sns/aws4_request")
    );
    assert_eq!(form["Action"], "Publish");
    assert_eq!(form["Version"], "2010-03-31");
    assert_eq!(form["TopicArn"], "arn:aws:sns:eu-west-1:123456789012:alerts.fifo");
    assert_eq!(form["Subject"], "[FIRING:2] HighLatency (api)");
    assert!(form["Message"].starts_with("latency high\n\nAlerts Firing:"));
    let hash = watchfire_notify::http::key_hash("{}/{severity=\"page\"}:{alertname=\"HighLatency\"}");
    assert_eq!(form["MessageGroupId"], hash);
    assert_eq!(form["MessageDeduplicationId"], hash);
    assert_eq!(form["MessageAttributes.entry.1.Name"], "env");
    assert_eq!(form["MessageAttributes.entry.1.Value.DataType"], "String");
    assert_eq!(form["MessageAttributes.entry.1.Value.StringValue"], "prod");
    assert_eq!(form["MessageAttributes.entry.2.Name"], "team");
    assert_eq!(form["MessageAttributes.entry.2.Value.StringValue"], "api");

    n.notify("s", &resolved("s", "sns")).await.unwrap();
    let (_, form) = take().pop().unwrap();
    assert_eq!(form["Subject"], "[RESOLVED] HighLatency (api info)");

    // SMS: cut to 1600 bytes and marked.
    let mut g = firing("s", "sns");
    g.integration.index = 1;
    n.notify("s", &g).await.unwrap();
    let (_, form) = take().pop().unwrap();
    assert_eq!(form["PhoneNumber"], "+15555550100");
    assert_eq!(form["Message"].len(), 1600);
    assert_eq!(form["MessageAttributes.entry.1.Name"], "truncated");
    assert_eq!(form["MessageAttributes.entry.1.Value.StringValue"], "true");
    assert!(!form.contains_key("MessageGroupId"));

    // STS roles are refused for good, saying why.
    g.integration.index = 2;
    let e = n.notify("s", &g).await.unwrap_err();
    assert!(!e.retryable && e.message.contains("not supported"), "{e:?}");

    // AWS errors: client errors are final, throttling and server errors retried.
    *fake.answer.lock().unwrap() = (
        400,
        "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameter</Code><Message>Invalid parameter: TopicArn</Message></Error></ErrorResponse>".into(),
    );
    let e = n.notify("s", &firing("s", "sns")).await.unwrap_err();
    assert!(
        !e.retryable && e.message.contains("InvalidParameter: Invalid parameter: TopicArn"),
        "{e:?}"
    );
    assert!(!e.message.contains("EXAMPLEKEY"));
    *fake.answer.lock().unwrap() = (
        400,
        "<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>".into(),
    );
    assert!(n.notify("s", &firing("s", "sns")).await.unwrap_err().retryable);
    *fake.answer.lock().unwrap() = (503, "".into());
    let e = n.notify("s", &firing("s", "sns")).await.unwrap_err();
    assert!(e.retryable && e.reason == FailureReason::ServerError, "{e:?}");
}

#[tokio::test]
async fn msteams_legacy_message_card() {
    let (base, srv) = server().await;
    let n = notifiers(&format!(
        "route: {{receiver: t}}\nreceivers:\n- name: t\n  msteams_configs:\n  - webhook_url: {base}/webhookb2/S3CRET\n"
    ));
    n.notify("t", &firing("t", "msteams")).await.unwrap();
    let r = take(&srv).pop().unwrap();
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path, "/webhookb2/S3CRET");
    let b = &r.body;
    assert_eq!(b["@context"], "http://schema.org/extensions");
    assert_eq!(b["type"], "MessageCard");
    assert_eq!(b["title"], "[FIRING:2] HighLatency (api)");
    assert_eq!(b["summary"], "[FIRING:2] HighLatency (api)");
    assert!(b["text"].as_str().unwrap().contains("# Alerts Firing:"));
    assert_eq!(b["themeColor"], "8C1A1A");
    n.notify("t", &resolved("t", "msteams")).await.unwrap();
    assert_eq!(take(&srv).pop().unwrap().body["themeColor"], "2DC72D");
    *srv.status.lock().unwrap() = (429, vec![], "".into());
    let e = n.notify("t", &firing("t", "msteams")).await.unwrap_err();
    assert!(!e.retryable && !e.message.contains("S3CRET"), "{e:?}");
}
