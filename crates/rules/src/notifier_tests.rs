//! External Alertmanagers against in-process fake ones: discovery, relabeling, paths,
//! authentication, and `/api/v1/alertmanagers`.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Request, Uri};
use serde_json::{Value, json};
use tower::ServiceExt;
use watchfire_config::prometheus::Config;
use watchfire_discovery::TargetGroup;
use watchfire_model::Labels;
use watchfire_promql::engine::Engine;
use watchfire_tsdb::{Head, HeadOptions, MemoryStorage};

use crate::sender::{OutgoingAlert, Sender};
use crate::{Manager, ManagerOptions, SharedSender, api, resolve_alertmanagers, senders_for_config};

/// One request a fake Alertmanager received.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    authorization: Option<String>,
    header: Option<String>,
    body: Value,
}

/// A fake Alertmanager (any path) that also serves `/sd` as an HTTP SD endpoint with the
/// groups it is given.
async fn fake(sd: Value) -> (String, Arc<Mutex<Vec<Received>>>) {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new()
        .route("/sd", axum::routing::get(move || async move { axum::Json(sd) }))
        .fallback(move |uri: Uri, headers: HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
                sink.lock().unwrap().push(Received {
                    path: uri.path().to_owned(),
                    authorization: h("authorization"),
                    header: h("x-team"),
                    body: serde_json::from_str(&body).unwrap_or(Value::Null),
                });
                "ok"
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, got)
}

fn alert(name: &str) -> OutgoingAlert {
    OutgoingAlert {
        labels: Labels::from_pairs([("alertname", name)]),
        annotations: [("summary".to_owned(), "s".to_owned())].into(),
        starts_at: Some(1_700_000_000_000),
        ends_at: Some(1_700_000_240_000),
        generator_url: "http://prom/graph?g0.expr=up&g0.tab=1".into(),
    }
}

/// Polls `f` every 20 ms for up to 10 s.
async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn config(yaml: &str) -> Config {
    Config::parse(yaml, Path::new("prometheus.yml")).unwrap()
}

#[test]
fn alertmanager_urls_follow_upstream_labels_and_relabeling() {
    let cfg = config(
        "alerting:\n  alertmanagers:\n  - path_prefix: /base/\n    static_configs: [{targets: [x]}]\n    relabel_configs:\n    - {source_labels: [env], regex: dev, action: drop}\n    - {source_labels: [secure], regex: 'yes', target_label: __scheme__, replacement: https}\n    - {source_labels: [path], regex: '(.+)', target_label: __alerts_path__}\n",
    );
    let am = &cfg.alerting.alertmanagers[0];
    let t = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs.iter().copied());
    let groups = vec![
        TargetGroup {
            source: "0".into(),
            targets: vec![
                t(&[("__address__", "a:9093")]),
                t(&[("__address__", "b:9093"), ("secure", "yes")]),
                t(&[("__address__", "c:9093"), ("env", "dev")]),
                // The group's label does not override the target's own.
                t(&[("__address__", "d:9093"), ("path", "/own/api/v2/alerts")]),
                // A duplicate is listed once.
                t(&[("__address__", "a:9093")]),
            ],
            labels: t(&[("path", "/group/alerts"), ("env", "prod")]),
        },
        TargetGroup {
            source: "1".into(),
            targets: vec![t(&[("__address__", "e:9093")])],
            labels: Labels::empty(),
        },
    ];
    let (active, dropped) = resolve_alertmanagers(am, &groups);
    assert_eq!(
        active,
        [
            "http://a:9093/group/alerts",
            "https://b:9093/group/alerts",
            "http://d:9093/own/api/v2/alerts",
            "http://e:9093/base/api/v2/alerts",
        ]
    );
    // Dropped ones are listed with the URL of their labels before relabeling.
    assert_eq!(dropped, ["http://c:9093/base/api/v2/alerts"]);

    assert_eq!(crate::notifier::alerts_path(""), "/api/v2/alerts");
    assert_eq!(crate::notifier::alerts_path("/"), "/api/v2/alerts");
    assert_eq!(crate::notifier::alerts_path("am/"), "/am/api/v2/alerts");
    assert_eq!(crate::notifier::alerts_path("/a//b/../c"), "/a/c/api/v2/alerts");
}

#[tokio::test]
async fn static_alertmanagers_get_api_v2_json_with_basic_auth_and_alert_relabeling() {
    let (addr, got) = fake(json!([])).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&format!(
        "global:\n  external_labels: {{env: prod}}\nalerting:\n  alertmanagers:\n  - path_prefix: /prefix\n    basic_auth: {{username: u, password: p}}\n    http_headers: {{X-Team: {{values: [red]}}}}\n    static_configs: [{{targets: ['{addr}']}}]\n    alert_relabel_configs:\n    - target_label: via\n      replacement: am\n"
    ));
    let sender = senders_for_config(&cfg, dir.path(), None);
    eventually("the static Alertmanager", || {
        (!sender.alertmanagers().active.is_empty()).then_some(())
    })
    .await;
    assert_eq!(
        sender.alertmanagers().active,
        [format!("http://{addr}/prefix/api/v2/alerts")]
    );
    sender.send(vec![alert("A")]);
    let r = eventually("a POST", || got.lock().unwrap().first().cloned()).await;
    assert_eq!(r.path, "/prefix/api/v2/alerts");
    assert_eq!(r.authorization.as_deref(), Some("Basic dTpw"));
    assert_eq!(r.header.as_deref(), Some("red"));
    assert_eq!(
        r.body,
        json!([{
            "labels": {"alertname": "A", "env": "prod", "via": "am"},
            "annotations": {"summary": "s"},
            "startsAt": "2023-11-14T22:13:20.000Z",
            "endsAt": "2023-11-14T22:17:20.000Z",
            "generatorURL": "http://prom/graph?g0.expr=up&g0.tab=1",
        }])
    );
}

#[tokio::test]
async fn file_and_http_discovered_alertmanagers_get_alerts_with_their_settings() {
    // Two fake Alertmanagers; the second also serves HTTP SD pointing at itself.
    let (a, got_a) = fake(json!([])).await;
    let (b, got_b) = fake(Value::Null).await;
    let sd = json!([{"targets": [b.clone()], "labels": {"team": "blue"}}]);
    let (sd_addr, _) = fake(sd).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "s3cret\n").unwrap();
    std::fs::write(
        dir.path().join("ams.json"),
        json!([{"targets": [a.clone(), "dropped:9093"], "labels": {"__alerts_path__": "/custom/alerts"}}]).to_string(),
    )
    .unwrap();
    let cfg = config(&format!(
        "alerting:\n  alertmanagers:\n  - authorization: {{credentials_file: token}}\n    file_sd_configs: [{{files: [ams.json]}}]\n    relabel_configs:\n    - {{source_labels: [__address__], regex: 'dropped:.*', action: drop}}\n  - http_sd_configs: [{{url: 'http://{sd_addr}/sd'}}]\n    path_prefix: /am\n    alert_relabel_configs:\n    - {{source_labels: [alertname], regex: Quiet, action: drop}}\n"
    ));
    let sender = SharedSender::new(Some(Arc::new(senders_for_config(&cfg, dir.path(), None))));
    eventually("both sets", || (sender.alertmanagers().active.len() == 2).then_some(())).await;
    let ams = sender.alertmanagers();
    assert_eq!(
        ams.active,
        [
            format!("http://{a}/custom/alerts"),
            format!("http://{b}/am/api/v2/alerts")
        ]
    );
    assert_eq!(ams.dropped, ["http://dropped:9093/custom/alerts"]);

    sender.send(vec![alert("Loud"), alert("Quiet")]);
    let ra = eventually("a POST to a", || got_a.lock().unwrap().first().cloned()).await;
    assert_eq!(ra.path, "/custom/alerts");
    assert_eq!(ra.authorization.as_deref(), Some("Bearer s3cret"));
    assert_eq!(ra.body.as_array().unwrap().len(), 2);
    let rb = eventually("a POST to b", || got_b.lock().unwrap().first().cloned()).await;
    assert_eq!(rb.path, "/am/api/v2/alerts");
    assert_eq!(rb.authorization, None);
    // The second set's alert_relabel_configs drop one alert for it only.
    assert_eq!(rb.body.as_array().unwrap().len(), 1);
    assert_eq!(rb.body[0]["labels"]["alertname"], "Loud");

    // A reload to no Alertmanagers stops discovery and sending for the old sets.
    sender.set(Some(Arc::new(senders_for_config(&config(""), dir.path(), None))));
    assert_eq!(sender.alertmanagers(), Default::default());
}

#[tokio::test]
async fn alertmanagers_endpoint_lists_configured_ones_only() {
    let (addr, _) = fake(json!([])).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&format!(
        "alerting:\n  alertmanagers:\n  - static_configs: [{{targets: ['{addr}', 'gone:9093']}}]\n    relabel_configs:\n    - {{source_labels: [__address__], regex: 'gone:.*', action: drop}}\n"
    ));
    let alerting = Arc::new(
        watchfire_alerting::Alerting::open(
            watchfire_config::alertmanager::Config::parse(
                "route: {receiver: r}\nreceivers: [{name: r}]\n",
                Path::new("am.yml"),
            )
            .unwrap(),
            Default::default(),
            Arc::new(watchfire_alerting::RecordingNotifier::new()),
            &prometheus::Registry::new(),
        )
        .unwrap(),
    );
    let sender = SharedSender::new(Some(Arc::new(senders_for_config(&cfg, dir.path(), Some(alerting)))));
    let storage = Arc::new(MemoryStorage(Head::in_memory(HeadOptions::default())));
    let mut opts = ManagerOptions::new(storage, Engine::default());
    opts.sender = Some(Arc::new(sender.clone()));
    let router = api::router(Manager::new(opts).unwrap());
    eventually("the static Alertmanager", || {
        (!sender.alertmanagers().active.is_empty()).then_some(())
    })
    .await;
    let res = router
        .oneshot(Request::get("/alertmanagers").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value =
        serde_json::from_slice(&axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"status": "success", "data": {
            "activeAlertmanagers": [{"url": format!("http://{addr}/api/v2/alerts")}],
            "droppedAlertmanagers": [{"url": "http://gone:9093/api/v2/alerts"}],
        }})
    );
}
