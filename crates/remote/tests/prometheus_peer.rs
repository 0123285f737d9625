//! Debian's Prometheus 2.42 as a peer: it remote-writes its own metrics into Watchfire's
//! receiver, and receives what Watchfire's sender writes. The `prometheus` binary must be on
//! PATH (the CI image installs it; see `bash .ci/test`).

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use watchfire_model::{Labels, MatchType, Matcher};
use watchfire_remote::{ReceiverOptions, WalSource, WriteStorage};
use watchfire_storage::{Appendable, Queryable};
use watchfire_tsdb::{Head, HeadOptions, MemoryStorage};

/// A started Prometheus, killed by its pid when dropped.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_prometheus(config: &str, extra: &[&str]) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, config).unwrap();
    let port = free_port();
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot start `prometheus` ({e}); the Prometheus peer tests need Debian's prometheus 2.42 on PATH: \
             run them through `bash .ci/test`, which installs it"
        ),
    };
    Prometheus { child, port, _dir: dir }
}

fn prometheus_config(self_port_placeholder: bool, remote_write_url: Option<&str>) -> String {
    let mut s =
        String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels:\n    peer: p1\n");
    if self_port_placeholder {
        s.push_str("scrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:PORT']\n");
    }
    if let Some(url) = remote_write_url {
        s.push_str(&format!(
            "remote_write:\n  - url: {url}\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 50ms\n"
        ));
    }
    s
}

async fn query_api(http: &reqwest::Client, port: u16, q: &str, time: f64) -> serde_json::Value {
    http.get(format!("http://127.0.0.1:{port}/api/v1/query"))
        .query(&[("query", q), ("time", &format!("{time:.3}"))])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn samples_of(storage: &MemoryStorage, matchers: &[Matcher]) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let q = storage.querier(i64::MIN, i64::MAX).unwrap();
    q.select(true, None, matchers)
        .map(|s| {
            let s = s.unwrap();
            let mut it = s.iterator();
            let mut v = Vec::new();
            while it.next() {
                let x = it.at();
                v.push((x.t, x.v));
            }
            (s.labels().clone(), v)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_remote_writes_into_the_receiver() {
    let storage = MemoryStorage(Head::in_memory(HeadOptions::default()));
    let app: Arc<dyn Appendable> = Arc::new(storage.clone());
    let router = watchfire_remote::receiver_router(app, ReceiverOptions::default(), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });

    // The scrape target is Prometheus itself; its port is chosen before it starts.
    let url = format!("http://{addr}/api/v1/write");
    let port = free_port();
    let cfg = prometheus_config(true, Some(&url)).replace("PORT", &port.to_string());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prometheus.yml"), &cfg).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start `prometheus` ({e}); the Prometheus peer tests need Debian's prometheus 2.42 on PATH: \
                 run them through `bash .ci/test`, which installs it"
            )
        });
    let prom = Prometheus { child, port, _dir: dir };

    // Wait until at least 4 samples of `up` and of a changing gauge have arrived.
    let gauge = "prometheus_tsdb_head_samples_appended_total";
    // This counter has a `type="float"` and a `type="histogram"` series in 2.42.
    let m = |name: &str| {
        let mut v = vec![
            Matcher::new(MatchType::Equal, "__name__", name).unwrap(),
            Matcher::new(MatchType::Equal, "job", "self").unwrap(),
        ];
        if name == gauge {
            v.push(Matcher::new(MatchType::Equal, "type", "float").unwrap());
        }
        v
    };
    let start = Instant::now();
    loop {
        let up = samples_of(&storage, &m("up"));
        let g = samples_of(&storage, &m(gauge));
        if up.first().is_some_and(|s| s.1.len() >= 4) && g.first().is_some_and(|s| s.1.len() >= 4) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no remote-written samples arrived from Prometheus within 60s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Every received sample equals what Prometheus reports for that series and timestamp.
    let http = reqwest::Client::new();
    for name in ["up", gauge] {
        let got = samples_of(&storage, &m(name));
        assert_eq!(got.len(), 1, "{got:?}");
        let (labels, samples) = &got[0];
        assert_eq!(labels.get("peer"), Some("p1"), "external labels are sent: {labels}");
        assert_eq!(
            labels.get("instance"),
            Some(format!("127.0.0.1:{}", prom.port).as_str())
        );
        let last_t = samples.last().unwrap().0;
        let span = (last_t - samples[0].0) / 1000 + 1;
        let extra = if name == gauge { ",type=\"float\"" } else { "" };
        let q = format!("{name}{{job=\"self\"{extra}}}[{span}s]");
        let resp = query_api(&http, prom.port, &q, last_t as f64 / 1000.0).await;
        assert_eq!(resp["status"], "success", "{resp}");
        let result = resp["data"]["result"].as_array().unwrap();
        assert_eq!(result.len(), 1, "{resp}");
        let theirs: Vec<(i64, f64)> = result[0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                (t, p[1].as_str().unwrap().parse::<f64>().unwrap())
            })
            .collect();
        assert_eq!(
            &theirs, samples,
            "{name}: Prometheus' own samples differ from those received"
        );
    }
    drop(prom);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_writes_into_prometheus_receiver() {
    let prom = start_prometheus(&prometheus_config(false, None), &["--web.enable-remote-write-receiver"]);
    let http = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{}/-/ready", prom.port);
    let start = Instant::now();
    while !http.get(&ready).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "Prometheus did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let reg = prometheus::Registry::new();
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(watchfire_tsdb::Db::open(dir.path(), Default::default()).unwrap());
    let ws = WriteStorage::new(Some(&reg), WalSource::of(&db)).unwrap();
    let src = format!(
        "remote_write:\n  - url: http://127.0.0.1:{}/api/v1/write\n    queue_config:\n      batch_send_deadline: 100ms\n",
        prom.port
    );
    let cfg = watchfire_config::prometheus::Config::parse(&src, Path::new("t.yml")).unwrap();
    ws.apply_config(
        &cfg.remote_write,
        &Labels::from_pairs([("origin", "watchfire")]),
        Path::new("."),
    )
    .unwrap();
    let tee = ws.tracker(db.clone());
    // Samples are read from the WAL; only those stamped from the queue's start on are sent.
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let now = start + 5000;
    let ls = Labels::from_pairs([("__name__", "watchfire_peer_test"), ("k", "v")]);
    let want: Vec<(i64, f64)> = (0..5).map(|i| (start + i * 1000, i as f64 * 1.25)).collect();
    let mut app = tee.appender();
    for &(t, v) in &want {
        app.append(None, &ls, t, v).unwrap();
    }
    app.commit().unwrap();

    let q = "watchfire_peer_test{k=\"v\",origin=\"watchfire\"}[10s]";
    let start = Instant::now();
    loop {
        let resp = query_api(&http, prom.port, q, (now + 1) as f64 / 1000.0).await;
        let values = resp["data"]["result"][0]["values"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if values.len() == want.len() {
            let got: Vec<(i64, f64)> = values
                .iter()
                .map(|p| {
                    (
                        (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                        p[1].as_str().unwrap().parse::<f64>().unwrap(),
                    )
                })
                .collect();
            assert_eq!(got, want);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "samples did not arrive in Prometheus: {resp}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ws.stop();
    drop(prom);
}

/// Prometheus reads Watchfire through `remote_read` (it asks for streamed XOR chunks first)
/// and scrapes Watchfire's `/federate`; what it reports equals what Watchfire holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_remote_reads_and_federates_from_watchfire() {
    let storage = MemoryStorage(Head::in_memory(HeadOptions::default()));
    let q: Arc<dyn Queryable> = Arc::new(storage.clone());
    let router = watchfire_remote::read_router(q.clone(), Default::default())
        .merge(watchfire_remote::federate_router(q, Default::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // 200 samples (two chunks) for remote read, one gauge for federation.
    let rr = Labels::from_pairs([("__name__", "wf_rr"), ("k", "v")]);
    let rr_samples: Vec<(i64, f64)> = (0..200)
        .map(|i| (now - 200_000 + i * 1000, (i * i) as f64 / 7.0))
        .collect();
    let fed = Labels::from_pairs([("__name__", "wf_fed"), ("src", "wf")]);
    let mut app = storage.appender();
    for &(t, v) in &rr_samples {
        app.append(None, &rr, t, v).unwrap();
    }
    app.append(None, &fed, now - 2000, 41.5).unwrap();
    app.commit().unwrap();

    let cfg = format!(
        "global:\n  scrape_interval: 1s\n\
         scrape_configs:\n  - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n    \
         params:\n      'match[]': ['{{__name__=~\"wf_fed.*\"}}']\n    static_configs:\n      - targets: ['{addr}']\n\
         remote_read:\n  - url: http://{addr}/api/v1/read\n    read_recent: true\n"
    );
    let prom = start_prometheus(&cfg, &[]);
    let http = reqwest::Client::new();
    let start = Instant::now();

    // Remote read: the raw samples of the last 200s come back exactly.
    let t = now as f64 / 1000.0;
    loop {
        let resp = http
            .get(format!("http://127.0.0.1:{}/api/v1/query", prom.port))
            .query(&[("query", "wf_rr[201s]"), ("time", &format!("{t:.3}"))])
            .send()
            .await;
        if let Ok(resp) = resp
            && let Ok(body) = resp.json::<serde_json::Value>().await
            && body["status"] == "success"
        {
            let result = body["data"]["result"].as_array().unwrap();
            assert_eq!(result.len(), 1, "{body}");
            assert_eq!(result[0]["metric"]["k"], "v");
            let theirs: Vec<(i64, f64)> = result[0]["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                        p[1].as_str().unwrap().parse::<f64>().unwrap(),
                    )
                })
                .collect();
            assert_eq!(theirs, rr_samples);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "Prometheus did not answer");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Federation: Prometheus scrapes the gauge with its timestamp.
    loop {
        let body: serde_json::Value = http
            .get(format!("http://127.0.0.1:{}/api/v1/query", prom.port))
            .query(&[("query", "wf_fed{job=\"federate\"}"), ("time", &format!("{t:.3}"))])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(r) = body["data"]["result"].as_array().and_then(|r| r.first()) {
            assert_eq!(r["metric"]["src"], "wf", "{body}");
            assert_eq!(r["value"][1], "41.5", "{body}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "federated series never scraped: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(prom);
}
