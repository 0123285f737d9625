//! The API v2 over real HTTP on 127.0.0.1: upstream's field names, status codes and error
//! bodies; Grafana's health probe; and the real amtool (Debian's prometheus-alertmanager).

use std::process::Command;
use std::sync::Arc;

use serde_json::{Value, json};
use watchfire_alerting::{Alerting, Options, RecordingNotifier};

use crate::common::config;

struct Server {
    rt: tokio::runtime::Runtime,
    base: String,
    alerting: Alerting,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.alerting.shutdown();
        let rt = std::mem::replace(
            &mut self.rt,
            tokio::runtime::Builder::new_current_thread().build().expect("runtime"),
        );
        rt.shutdown_timeout(std::time::Duration::from_secs(5));
    }
}

const CFG: &str = r#"
global:
  smtp_auth_password: hunter2
route:
  receiver: team-x
  group_by: [alertname]
  routes:
  - receiver: pager
    matchers: [severity="page"]
    continue: true
  - receiver: team-x
inhibit_rules:
- source_matchers: [alertname=Outage]
  target_matchers: [severity=warning]
receivers:
- name: team-x
  labels: {owner: x}
  webhook_configs:
  - url: http://127.0.0.1:1/hook
- name: pager
  email_configs:
  - to: oncall@example.com
    from: am@example.com
    smarthost: 127.0.0.1:25
"#;

fn server() -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (alerting, addr) = rt.block_on(async {
        let alerting = Alerting::open(
            config(CFG),
            Options::default(),
            Arc::new(RecordingNotifier::new()),
            &prometheus::Registry::new(),
        )
        .expect("open");
        let app = axum::Router::new().nest("/api/v2", alerting.router());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        (alerting, addr)
    });
    Server {
        rt,
        base: format!("http://{addr}"),
        alerting,
        stop: Some(tx),
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client")
}

fn get(s: &Server, path: &str) -> (u16, Value) {
    let r = client().get(format!("{}/api/v2{path}", s.base)).send().expect("GET");
    let status = r.status().as_u16();
    let text = r.text().expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn post(s: &Server, path: &str, body: &str) -> (u16, Value) {
    let r = client()
        .post(format!("{}/api/v2{path}", s.base))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .expect("POST");
    let status = r.status().as_u16();
    let text = r.text().expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn delete(s: &Server, path: &str) -> u16 {
    client()
        .delete(format!("{}/api/v2{path}", s.base))
        .send()
        .expect("DELETE")
        .status()
        .as_u16()
}

#[test]
fn status_is_what_grafana_and_amtool_expect() {
    let s = server();
    let r = client().get(format!("{}/api/v2/status", s.base)).send().expect("GET");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers().get("cache-control").map(|v| v.to_str().unwrap_or("")),
        Some("no-store")
    );
    let v: Value = r.json().expect("json");
    assert_eq!(v["cluster"], json!({"status": "disabled", "peers": []}));
    for k in ["version", "revision", "branch", "buildUser", "buildDate", "goVersion"] {
        assert!(v["versionInfo"][k].is_string(), "versionInfo.{k}");
    }
    let original = v["config"]["original"].as_str().expect("config.original");
    assert!(
        original.contains("team-x") && original.contains("receiver"),
        "{original}"
    );
    assert!(!original.contains("hunter2"), "secrets are hidden: {original}");
    assert!(original.contains("<secret>"), "{original}");
    let uptime = v["uptime"].as_str().expect("uptime");
    assert!(uptime.parse::<jiff::Timestamp>().is_ok(), "{uptime}");
    // The re-serialized configuration loads again.
    config(original);
}

#[test]
fn receivers_with_labels_and_filters() {
    let s = server();
    let (st, v) = get(&s, "/receivers");
    assert_eq!(st, 200);
    assert_eq!(
        v,
        json!([{"name": "team-x", "labels": {"name": "team-x", "owner": "x"}}, {"name": "pager", "labels": {"name": "pager"}}])
    );
    let (_, v) = get(&s, "/receivers?receiver_matchers=owner%3Dx");
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    let (st, v) = get(&s, "/receivers?receiver_matchers=%7B%7Bbad");
    assert_eq!(st, 400);
    assert!(
        v.as_str()
            .unwrap_or("")
            .starts_with("failed to parse receiver_matchers param"),
        "{v}"
    );
}

#[test]
fn post_and_get_alerts() {
    let s = server();
    let body = json!([
        {"labels": {"alertname": "Disk", "severity": "page", "instance": "a"}, "annotations": {"summary": "full"}, "generatorURL": "http://prom/graph"},
        {"labels": {"alertname": "Warn", "severity": "warning"}, "startsAt": "0001-01-01T00:00:00.000Z", "endsAt": "0001-01-01T00:00:00.000Z"},
        {"labels": {}},
        {"labels": {"alertname": "Backwards"}, "startsAt": "2030-01-01T00:00:00Z", "endsAt": "2029-01-01T00:00:00Z"}
    ]);
    let (st, v) = post(&s, "/alerts", &body.to_string());
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        v.as_str(),
        Some("at least one label pair required\nstart time must be before end time"),
        "invalid alerts are reported, valid ones stored"
    );
    let (st, v) = get(&s, "/alerts");
    assert_eq!(st, 200);
    let list = v.as_array().expect("array");
    assert_eq!(list.len(), 2, "{v}");
    let disk = list.iter().find(|a| a["labels"]["alertname"] == "Disk").expect("Disk");
    assert_eq!(disk["receivers"], json!([{"name": "pager"}, {"name": "team-x"}]));
    assert_eq!(
        disk["status"],
        json!({"state": "active", "silencedBy": [], "inhibitedBy": [], "mutedBy": []})
    );
    assert_eq!(disk["annotations"], json!({"summary": "full"}));
    assert_eq!(disk["generatorURL"], "http://prom/graph");
    assert_eq!(disk["fingerprint"].as_str().map(str::len), Some(16));
    let starts = disk["startsAt"].as_str().expect("startsAt");
    assert!(starts.ends_with('Z') && starts.contains('.'), "{starts}");
    // Filters.
    let (_, v) = get(&s, "/alerts?filter=alertname%3D%22Warn%22");
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    let (_, v) = get(&s, "/alerts?receiver=pag.*");
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    let (_, v) = get(&s, "/alerts?receiver_matchers=owner%3Dx");
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    let (_, v) = get(&s, "/alerts?receiver_matchers=owner%3Dy");
    assert_eq!(v, json!([]));
    let (st, v) = get(&s, "/alerts?filter=%3D%3Dbad");
    assert_eq!(st, 400, "{v}");
    let (st, v) = get(&s, "/alerts?receiver=%28");
    assert_eq!(st, 400);
    assert!(
        v.as_str().unwrap_or("").starts_with("failed to parse receiver param"),
        "{v}"
    );
    // Inhibition shows in the status at once.
    let (st, _) = post(&s, "/alerts", &json!([{"labels": {"alertname": "Outage"}}]).to_string());
    assert_eq!(st, 200);
    let (_, v) = get(&s, "/alerts?filter=alertname%3DWarn");
    assert_eq!(v[0]["status"]["state"], "suppressed");
    assert_eq!(v[0]["status"]["inhibitedBy"].as_array().map(Vec::len), Some(1));
    let (_, v) = get(&s, "/alerts?inhibited=false");
    assert!(
        v.as_array()
            .expect("array")
            .iter()
            .all(|a| a["labels"]["alertname"] != "Warn")
    );
    let (_, v) = get(&s, "/alerts?active=false");
    assert_eq!(v.as_array().map(Vec::len), Some(1), "only suppressed alerts: {v}");
}

#[test]
fn malformed_alerts_are_400() {
    let s = server();
    for (body, needle) in [
        ("not json", "parsing alerts body"),
        ("{\"labels\":{}}", "parsing alerts body"),
        ("[{\"annotations\":{}}]", "0.labels in body is required"),
        ("[{\"labels\":{\"a\":\"b\"},\"startsAt\":\"yesterday\"}]", "0.startsAt"),
        ("[{\"labels\":{\"a\":1}}]", "parsing alerts body"),
    ] {
        let (st, v) = post(&s, "/alerts", body);
        assert_eq!(st, 400, "{body}");
        assert_eq!(v["code"], 400, "{body}: {v}");
        assert!(v["message"].as_str().unwrap_or("").contains(needle), "{body}: {v}");
    }
}

fn silence_body(matchers: Value, starts: &str, ends: &str) -> String {
    json!({"matchers": matchers, "startsAt": starts, "endsAt": ends, "createdBy": "me", "comment": "test"}).to_string()
}

#[test]
fn silences_lifecycle() {
    let s = server();
    post(
        &s,
        "/alerts",
        &json!([{"labels": {"alertname": "Disk", "severity": "page"}}]).to_string(),
    );
    let now = jiff::Timestamp::now();
    let fmt = |t: jiff::Timestamp| t.to_string();
    let in_1h = fmt(now + jiff::SignedDuration::from_hours(1));
    let (st, v) = post(
        &s,
        "/silences",
        &silence_body(
            json!([{"name": "alertname", "value": "Disk", "isRegex": false}]),
            &fmt(now),
            &in_1h,
        ),
    );
    assert_eq!(st, 200, "{v}");
    let id = v["silenceID"].as_str().expect("silenceID").to_owned();
    let (st, v) = get(&s, &format!("/silence/{id}"));
    assert_eq!(st, 200);
    assert_eq!(v["status"]["state"], "active");
    assert_eq!(
        v["matchers"],
        json!([{"name": "alertname", "value": "Disk", "isRegex": false, "isEqual": true}])
    );
    assert_eq!(v["createdBy"], "me");
    assert!(v["updatedAt"].is_string());
    // The alert shows as silenced at once.
    let (_, v) = get(&s, "/alerts");
    assert_eq!(v[0]["status"]["silencedBy"], json!([id]));
    assert_eq!(v[0]["status"]["state"], "suppressed");
    let (_, v) = get(&s, "/alerts?silenced=false");
    assert_eq!(v, json!([]));
    // Filters on silences are verbatim matchers.
    let (_, v) = get(&s, "/silences?filter=alertname%3D%22Disk%22");
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    let (_, v) = get(&s, "/silences?filter=alertname%3D~%22Disk%22");
    assert_eq!(v, json!([]));
    let (_, v) = get(&s, "/silences?active=false");
    assert_eq!(v, json!([]));
    // Update in place (same matchers, later end) keeps the ID.
    let body = json!({"id": id, "matchers": [{"name": "alertname", "value": "Disk", "isRegex": false}],
        "startsAt": v_of(&s, &id)["startsAt"], "endsAt": fmt(now + jiff::SignedDuration::from_hours(2)),
        "createdBy": "me", "comment": "longer"});
    let (st, v) = post(&s, "/silences", &body.to_string());
    assert_eq!((st, v["silenceID"].as_str()), (200, Some(id.as_str())));
    // Expire, then the state is expired; unknown IDs are 404.
    assert_eq!(delete(&s, &format!("/silence/{id}")), 200);
    let (_, v) = get(&s, &format!("/silence/{id}"));
    assert_eq!(v["status"]["state"], "expired");
    let (_, v) = get(&s, "/alerts");
    assert_eq!(v[0]["status"]["state"], "active");
    let unknown = "00000000-0000-4000-8000-000000000000";
    assert_eq!(get(&s, &format!("/silence/{unknown}")).0, 404);
    assert_eq!(delete(&s, &format!("/silence/{unknown}")), 404);
    let (st, v) = get(&s, "/silence/not-a-uuid");
    assert_eq!(st, 400);
    assert!(
        v["message"].as_str().unwrap_or("").contains("must be of type uuid"),
        "{v}"
    );
    let mut upd: Value = serde_json::from_str(&silence_body(
        json!([{"name": "a", "value": "b", "isRegex": false}]),
        &fmt(now),
        &in_1h,
    ))
    .expect("json");
    upd["id"] = json!(unknown);
    let (st, v) = post(&s, "/silences", &upd.to_string());
    assert_eq!((st, v.as_str()), (404, Some("silence not found")));
}

fn v_of(s: &Server, id: &str) -> Value {
    get(s, &format!("/silence/{id}")).1
}

#[test]
fn malformed_silences_are_400() {
    let s = server();
    let now = jiff::Timestamp::now();
    let t = |h: i64| (now + jiff::SignedDuration::from_hours(h)).to_string();
    let m = json!([{"name": "a", "value": "b", "isRegex": false}]);
    let cases: Vec<(String, &str)> = vec![
        ("{".into(), "parsing silence body"),
        (
            json!({"startsAt": t(0), "endsAt": t(1), "createdBy": "x", "comment": "c"}).to_string(),
            "matchers in body is required",
        ),
        (silence_body(json!([]), &t(0), &t(1)), "at least 1 items"),
        (
            json!({"matchers": m, "startsAt": t(0), "endsAt": t(1), "comment": "c"}).to_string(),
            "createdBy in body is required",
        ),
        (
            silence_body(json!([{"name": "a", "value": "b"}]), &t(0), &t(1)),
            "matchers.0.isRegex in body is required",
        ),
        (
            silence_body(m.clone(), &t(1), &t(0)),
            "start time must be before end time",
        ),
        (silence_body(m.clone(), &t(-3), &t(-2)), "end time can't be in the past"),
        (
            silence_body(json!([{"name": "a", "value": ".*", "isRegex": true}]), &t(0), &t(1)),
            "at least one matcher must not match the empty string",
        ),
        (
            silence_body(json!([{"name": "a", "value": "(", "isRegex": true}]), &t(0), &t(1)),
            "invalid regular expression",
        ),
        (
            silence_body(json!([{"name": "", "value": "x", "isRegex": false}]), &t(0), &t(1)),
            "invalid label name",
        ),
        (silence_body(m.clone(), "noon", &t(1)), "startsAt"),
    ];
    for (body, needle) in cases {
        let (st, v) = post(&s, "/silences", &body);
        assert_eq!(st, 400, "{body}: {v}");
        let text = v
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v["message"].as_str().unwrap_or("").to_owned());
        assert!(text.contains(needle), "{body}: {v}");
    }
    assert!(s.alerting.silences().is_empty());
}

#[test]
fn alert_groups() {
    let s = server();
    post(
        &s,
        "/alerts",
        &json!([
            {"labels": {"alertname": "Disk", "severity": "page", "instance": "b"}},
            {"labels": {"alertname": "Disk", "severity": "page", "instance": "a"}},
            {"labels": {"alertname": "Cpu"}}
        ])
        .to_string(),
    );
    let (st, v) = get(&s, "/alerts/groups");
    assert_eq!(st, 200);
    let groups = v.as_array().expect("array");
    let summary: Vec<(String, String, usize)> = groups
        .iter()
        .map(|g| {
            (
                g["labels"].to_string(),
                g["receiver"]["name"].as_str().unwrap_or("").to_owned(),
                g["alerts"].as_array().map_or(0, Vec::len),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("{\"alertname\":\"Cpu\"}".into(), "team-x".into(), 1),
            ("{\"alertname\":\"Disk\"}".into(), "pager".into(), 2),
            ("{\"alertname\":\"Disk\"}".into(), "team-x".into(), 2),
        ]
    );
    let disk = &groups[1];
    assert_eq!(disk["routeLabels"], json!({}));
    assert_eq!(
        disk["alerts"][0]["labels"]["instance"], "a",
        "alerts sorted by instance"
    );
    assert_eq!(
        disk["alerts"][0]["receivers"],
        json!([{"name": "pager"}, {"name": "team-x"}])
    );
    let (_, v) = get(&s, "/alerts/groups?receiver=pager");
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    let (_, v) = get(&s, "/alerts/groups?filter=alertname%3DCpu");
    assert_eq!(v.as_array().map(Vec::len), Some(1));
}

/// The amtool binary, or a failure that says how to get it.
fn amtool() -> String {
    for p in ["/usr/bin/amtool", "/usr/local/bin/amtool"] {
        if std::path::Path::new(p).exists() {
            return p.to_owned();
        }
    }
    if let Ok(out) = Command::new("amtool").arg("--version").output()
        && out.status.success()
    {
        return "amtool".to_owned();
    }
    panic!(
        "amtool not found: this test drives the real amtool from Debian's prometheus-alertmanager package; \
         run `bash .ci/test`, which installs it"
    );
}

fn run_amtool(s: &Server, args: &[&str]) -> String {
    let url = format!("--alertmanager.url={}", s.base);
    let out = Command::new(amtool())
        .arg(&url)
        .arg("--timeout=10s")
        .args(args)
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("run amtool");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "amtool {args:?} failed: {stdout}{stderr}");
    stdout
}

#[test]
fn amtool_alerts_and_silences() {
    let s = server();
    run_amtool(
        &s,
        &[
            "alert",
            "add",
            "alertname=AmtoolTest",
            "severity=warning",
            "--annotation=summary=from amtool",
        ],
    );
    let stored = s.alerting.alerts();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].annotations.get("summary").map(String::as_str),
        Some("from amtool")
    );
    let out = run_amtool(&s, &["alert", "query", "-o", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v[0]["labels"]["alertname"], "AmtoolTest");
    let out = run_amtool(&s, &["alert", "query", "alertname=AmtoolTest"]);
    assert!(out.contains("AmtoolTest"), "{out}");

    let id = run_amtool(
        &s,
        &[
            "silence",
            "add",
            "alertname=AmtoolTest",
            "--comment=maintenance",
            "--author=me",
            "--duration=1h",
        ],
    );
    let id = id.trim().to_owned();
    assert_eq!(id.len(), 36, "amtool prints the new silence ID: {id:?}");
    let out = run_amtool(&s, &["silence", "query", "-q"]);
    assert_eq!(out.trim(), id);
    let out = run_amtool(&s, &["silence", "query", "-o", "json"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v[0]["comment"], "maintenance");
    let out = run_amtool(&s, &["alert", "query", "-o", "json", "--silenced"]);
    assert!(out.contains(&id), "the alert is silenced by {id}: {out}");
    run_amtool(&s, &["silence", "expire", &id]);
    let out = run_amtool(&s, &["silence", "query", "-q"]);
    assert_eq!(out.trim(), "", "no active silences left");
    let out = run_amtool(&s, &["silence", "query", "-q", "--expired"]);
    assert_eq!(out.trim(), id);
    let out = run_amtool(&s, &["config", "show"]);
    assert!(out.contains("team-x"), "{out}");
}

#[test]
fn rules_engine_pushes_from_a_plain_thread() {
    let s = server();
    let a = s.alerting.clone();
    std::thread::spawn(move || {
        a.put_alerts(vec![watchfire_alerting::PostableAlert {
            labels: watchfire_model::Labels::from_pairs([("alertname", "FromRules")]),
            ..Default::default()
        }])
    })
    .join()
    .expect("thread")
    .expect("valid alert");
    let (_, v) = get(&s, "/alerts/groups");
    assert_eq!(v[0]["labels"], json!({"alertname": "FromRules"}), "{v}");
}

#[test]
fn opening_outside_a_runtime_is_an_error() {
    let e = Alerting::open(
        config(CFG),
        Options::default(),
        Arc::new(RecordingNotifier::new()),
        &prometheus::Registry::new(),
    )
    .unwrap_err();
    assert!(matches!(e, watchfire_alerting::Error::NoRuntime), "{e}");
}

#[test]
fn notification_history_endpoint() {
    let s = server();
    let rt_handle = s.rt.handle().clone();
    let alerting = s.alerting.clone();
    let addr = rt_handle.block_on(async move {
        let app = axum::Router::new().nest("/api/watchfire", alerting.history_router());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        addr
    });
    let r = client()
        .get(format!("http://{addr}/api/watchfire/notifications?limit=5"))
        .send()
        .expect("GET");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().expect("json"), json!([]));
    let r = client()
        .get(format!("http://{addr}/api/watchfire/notifications?since=yesterday"))
        .send()
        .expect("GET");
    assert_eq!(r.status().as_u16(), 400);
}
