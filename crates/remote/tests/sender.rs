//! The remote-write sender against a local axum receiver on 127.0.0.1.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use prost::Message;
use watchfire_config::prometheus::RemoteWriteConfig;
use watchfire_model::Labels;
use watchfire_proto::{prompb, write_v2};
use watchfire_remote::codec::decode_snappy;
use watchfire_remote::{TeeAppendable, WriteStorage};
use watchfire_storage::Appendable;
use watchfire_tsdb::{Head, HeadOptions, MemoryStorage};

#[derive(Default)]
struct Recorder {
    /// Statuses to answer, in order; 204 once exhausted.
    script: Vec<(u16, Option<&'static str>)>,
    got: Vec<(HeaderMap, Bytes, Instant)>,
}

type Shared = Arc<Mutex<Recorder>>;

async fn record(State(r): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut r = r.lock().unwrap();
    let n = r.got.len();
    r.got.push((headers, body, Instant::now()));
    let (status, retry_after) = r.script.get(n).copied().unwrap_or((204, None));
    let mut resp = (StatusCode::from_u16(status).unwrap(), "scripted").into_response();
    if let Some(ra) = retry_after {
        resp.headers_mut().insert("retry-after", ra.parse().unwrap());
    }
    resp
}

async fn receiver(script: Vec<(u16, Option<&'static str>)>) -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(Recorder {
        script,
        got: Vec::new(),
    }));
    let app = axum::Router::new()
        .route("/write", axum::routing::post(record))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/write"), shared)
}

/// A `remote_write` entry parsed as a config file would be (JSON is YAML).
fn config(v: serde_json::Value) -> RemoteWriteConfig {
    let src = format!("remote_write:\n  - {v}\n");
    let mut cfg = watchfire_config::prometheus::Config::parse(&src, Path::new("test.yml")).unwrap();
    cfg.remote_write.remove(0)
}

fn metric(reg: &prometheus::Registry, name: &str) -> f64 {
    reg.gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter().map(|m| m.get_counter().get_value()))
        .sum()
}

async fn wait_for(shared: &Shared, n: usize, timeout: Duration) {
    let start = Instant::now();
    while shared.lock().unwrap().got.len() < n {
        assert!(start.elapsed() < timeout, "timed out waiting for {n} requests");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn decode_v1(body: &[u8]) -> Vec<(String, Vec<(i64, f64)>)> {
    let raw = decode_snappy(body, 1 << 30).unwrap();
    let req = prompb::WriteRequest::decode(raw.as_slice()).unwrap();
    req.timeseries
        .iter()
        .map(|ts| {
            let ls = Labels::from_pairs(ts.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())));
            (
                ls.to_string(),
                ts.samples.iter().map(|s| (s.timestamp, s.value)).collect(),
            )
        })
        .collect()
}

fn setup(reg: &prometheus::Registry) -> (Arc<WriteStorage>, MemoryStorage, TeeAppendable) {
    let ws = WriteStorage::new(Some(reg)).unwrap();
    let mem = MemoryStorage(Head::in_memory(HeadOptions::default()));
    let tee = TeeAppendable::new(Arc::new(mem.clone()), ws.clone());
    (ws, mem, tee)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_503_then_succeeds_with_relabeling_auth_and_headers() {
    let (url, shared) = receiver(vec![(503, None)]).await;
    let reg = prometheus::Registry::new();
    let (ws, _mem, tee) = setup(&reg);
    let cfg = config(serde_json::json!({
        "url": url,
        "name": "peer",
        "headers": {"X-Scope-OrgID": "tenant-1"},
        "basic_auth": {"username": "u", "password": "p"},
        "write_relabel_configs": [{"source_labels": ["__name__"], "regex": "dropme", "action": "drop"}],
        "queue_config": {"batch_send_deadline": "100ms", "min_backoff": "10ms", "max_backoff": "50ms"},
    }));
    ws.apply_config(
        &[cfg],
        &Labels::from_pairs([("ext", "e"), ("job", "ext-job")]),
        Path::new("."),
    )
    .unwrap();
    let mut app = tee.appender();
    let a = Labels::from_pairs([("__name__", "m_a"), ("job", "j")]);
    let d = Labels::from_pairs([("__name__", "dropme")]);
    app.append(None, &a, 1000, 1.5).unwrap();
    app.append(None, &a, 2000, 2.5).unwrap();
    app.append(None, &d, 1000, 9.0).unwrap();
    app.commit().unwrap();
    // A rolled-back sample is never sent.
    app.append(None, &a, 3000, 3.5).unwrap();
    app.rollback().unwrap();

    wait_for(&shared, 2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = shared.lock().unwrap().got.clone();
    assert_eq!(got.len(), 2, "one 503 then one success, nothing more");
    for (i, (h, body, _)) in got.iter().enumerate() {
        assert_eq!(h["content-encoding"], "snappy");
        assert_eq!(h["content-type"], "application/x-protobuf");
        assert_eq!(h["x-prometheus-remote-write-version"], "0.1.0");
        assert_eq!(h["x-scope-orgid"], "tenant-1");
        assert_eq!(h["authorization"], "Basic dTpw");
        assert_eq!(
            h.get("retry-attempt").map(|v| v.to_str().unwrap()),
            (i > 0).then_some("1")
        );
        assert_eq!(
            decode_v1(body),
            vec![(
                r#"{__name__="m_a", ext="e", job="j"}"#.to_owned(),
                vec![(1000, 1.5), (2000, 2.5)]
            )]
        );
    }
    assert_eq!(metric(&reg, "prometheus_remote_storage_samples_total"), 2.0);
    assert_eq!(metric(&reg, "prometheus_remote_storage_samples_retried_total"), 2.0);
    assert_eq!(metric(&reg, "prometheus_remote_storage_samples_dropped_total"), 1.0);
    assert_eq!(metric(&reg, "prometheus_remote_storage_samples_failed_total"), 0.0);
    assert_eq!(metric(&reg, "prometheus_remote_storage_samples_in_total"), 3.0);
    ws.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_400_and_429_are_not_retried_by_default() {
    let (url, shared) = receiver(vec![(400, None), (429, None)]).await;
    let reg = prometheus::Registry::new();
    let (ws, _mem, tee) = setup(&reg);
    let cfg = config(serde_json::json!({
        "url": url,
        "queue_config": {"batch_send_deadline": "50ms", "min_backoff": "10ms", "max_samples_per_send": 2},
    }));
    ws.apply_config(&[cfg], &Labels::empty(), Path::new(".")).unwrap();
    let mut app = tee.appender();
    let a = Labels::from_pairs([("__name__", "m_a")]);
    for i in 0..4 {
        app.append(None, &a, i * 1000, i as f64).unwrap();
    }
    app.commit().unwrap();
    wait_for(&shared, 2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        shared.lock().unwrap().got.len(),
        2,
        "two batches of two, neither retried"
    );
    assert_eq!(metric(&reg, "prometheus_remote_storage_samples_failed_total"), 4.0);
    assert_eq!(metric(&reg, "prometheus_remote_storage_samples_retried_total"), 0.0);
    ws.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_on_429_honours_retry_after_and_v2_encoding() {
    let (url, shared) = receiver(vec![(429, Some("1"))]).await;
    let reg = prometheus::Registry::new();
    let (ws, _mem, tee) = setup(&reg);
    let cfg = config(serde_json::json!({
        "url": url,
        "protobuf_message": "io.prometheus.write.v2.Request",
        "queue_config": {"batch_send_deadline": "50ms", "min_backoff": "10ms", "retry_on_http_429": true},
    }));
    ws.apply_config(&[cfg], &Labels::empty(), Path::new(".")).unwrap();
    let mut app = tee.appender();
    let a = Labels::from_pairs([("__name__", "m_a"), ("x", "y")]);
    app.append(None, &a, 5000, 4.25).unwrap();
    app.commit().unwrap();
    wait_for(&shared, 2, Duration::from_secs(10)).await;
    let got = shared.lock().unwrap().got.clone();
    let waited = got[1].2 - got[0].2;
    assert!(waited >= Duration::from_millis(950), "Retry-After ignored: {waited:?}");
    let (h, body, _) = &got[1];
    assert_eq!(
        h["content-type"],
        "application/x-protobuf;proto=io.prometheus.write.v2.Request"
    );
    assert_eq!(h["x-prometheus-remote-write-version"], "2.0.0");
    let raw = decode_snappy(body, 1 << 20).unwrap();
    let req = write_v2::Request::decode(raw.as_slice()).unwrap();
    assert_eq!(req.symbols[0], "");
    let ts = &req.timeseries[0];
    let names: Vec<&str> = ts
        .labels_refs
        .iter()
        .map(|&r| req.symbols[r as usize].as_str())
        .collect();
    assert_eq!(names, vec!["__name__", "m_a", "x", "y"]);
    assert_eq!((ts.samples[0].timestamp, ts.samples[0].value), (5000, 4.25));
    ws.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_unchanged_queues_and_stops_removed_ones() {
    let (url1, shared1) = receiver(vec![]).await;
    let (url2, shared2) = receiver(vec![]).await;
    let reg = prometheus::Registry::new();
    let (ws, _mem, tee) = setup(&reg);
    let q = serde_json::json!({"batch_send_deadline": "50ms"});
    let c1 = config(serde_json::json!({"url": url1, "queue_config": q}));
    let c2 = config(serde_json::json!({"url": url2, "queue_config": q}));
    ws.apply_config(&[c1.clone(), c2], &Labels::empty(), Path::new("."))
        .unwrap();
    let a = Labels::from_pairs([("__name__", "m_a")]);
    let mut app = tee.appender();
    app.append(None, &a, 1000, 1.0).unwrap();
    app.commit().unwrap();
    wait_for(&shared1, 1, Duration::from_secs(10)).await;
    wait_for(&shared2, 1, Duration::from_secs(10)).await;
    // A config that cannot build its client is refused and changes nothing.
    let bad = config(serde_json::json!({"url": url2, "tls_config": {"ca_file": "/nonexistent/ca.pem"}}));
    assert!(
        ws.apply_config(&[c1.clone(), bad], &Labels::empty(), Path::new("."))
            .is_err()
    );
    ws.apply_config(&[c1], &Labels::empty(), Path::new(".")).unwrap();
    app.append(None, &a, 2000, 2.0).unwrap();
    app.commit().unwrap();
    wait_for(&shared1, 2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(shared2.lock().unwrap().got.len(), 1);
    ws.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_older_than_sample_age_limit_are_dropped() {
    let (url, shared) = receiver(vec![]).await;
    let reg = prometheus::Registry::new();
    let (ws, _mem, tee) = setup(&reg);
    let cfg = config(serde_json::json!({
        "url": url,
        "queue_config": {"batch_send_deadline": "50ms", "sample_age_limit": "1m"},
    }));
    ws.apply_config(&[cfg], &Labels::empty(), Path::new(".")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let a = Labels::from_pairs([("__name__", "m_a")]);
    let mut app = tee.appender();
    app.append(None, &a, now - 3_600_000, 1.0).unwrap();
    app.append(None, &a, now - 1000, 2.0).unwrap();
    app.commit().unwrap();
    wait_for(&shared, 1, Duration::from_secs(10)).await;
    let body = shared.lock().unwrap().got[0].1.clone();
    assert_eq!(
        decode_v1(&body),
        vec![(r#"{__name__="m_a"}"#.to_owned(), vec![(now - 1000, 2.0)])]
    );
    assert_eq!(metric(&reg, "prometheus_remote_storage_samples_dropped_total"), 1.0);
    ws.stop();
}

/// A receiver that takes 100 ms per request and records the (series, timestamp) pairs in the
/// order it received them.
async fn slow_receiver() -> (String, Arc<Mutex<Vec<(String, i64)>>>) {
    let got: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/write",
        axum::routing::post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let mut g = sink.lock().unwrap();
                for (series, samples) in decode_v1(&body) {
                    g.extend(samples.into_iter().map(|(t, _)| (series.clone(), t)));
                }
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/write"), got)
}

fn gauge(reg: &prometheus::Registry, name: &str) -> f64 {
    reg.gather()
        .iter()
        .filter(|f| f.name() == name)
        .flat_map(|f| f.get_metric().iter().map(|m| m.get_gauge().get_value()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_remote_gets_more_shards_and_every_series_stays_in_order() {
    let (url, got) = slow_receiver().await;
    let reg = prometheus::Registry::new();
    let ws = WriteStorage::with_reshard_interval(Some(&reg), Duration::from_millis(500)).unwrap();
    let mem = MemoryStorage(Head::in_memory(HeadOptions::default()));
    let tee = TeeAppendable::new(Arc::new(mem), ws.clone());
    let cfg = config(serde_json::json!({
        "url": url,
        "queue_config": {
            "min_shards": 1, "max_shards": 8, "capacity": 20000,
            "max_samples_per_send": 100, "batch_send_deadline": "50ms",
        },
    }));
    ws.apply_config(&[cfg], &Labels::empty(), Path::new(".")).unwrap();
    assert_eq!(gauge(&reg, "prometheus_remote_storage_shards"), 1.0);

    // 40 series every 20 ms (about 2000 samples/s) for 80 rounds; one shard sends at most
    // 1000/s (100 per 100 ms).
    let series: Vec<Labels> = (0..40)
        .map(|i| Labels::from_pairs([("__name__", "load"), ("i", &i.to_string())]))
        .collect();
    let mut sent = 0usize;
    let mut max_shards = 1.0f64;
    for step in 0..80i64 {
        let mut app = tee.appender();
        for s in &series {
            app.append(None, s, step * 100, step as f64).unwrap();
            sent += 1;
        }
        app.commit().unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        max_shards = max_shards.max(gauge(&reg, "prometheus_remote_storage_shards"));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.lock().unwrap().len() < sent && Instant::now() < deadline {
        max_shards = max_shards.max(gauge(&reg, "prometheus_remote_storage_shards"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), sent, "every sample arrives once");
    assert!(
        max_shards > 1.0,
        "the queue resharded (desired {})",
        gauge(&reg, "prometheus_remote_storage_shards_desired")
    );
    assert_eq!(gauge(&reg, "prometheus_remote_storage_shards_max"), 8.0);
    // Across the shard changes, each series' samples arrived in timestamp order.
    let mut last: std::collections::HashMap<&str, i64> = Default::default();
    for (series, t) in &got {
        if let Some(prev) = last.insert(series, *t) {
            assert!(*t > prev, "{series}: {t} arrived after {prev}");
        }
    }
    assert_eq!(metric(&reg, "prometheus_remote_storage_samples_dropped_total"), 0.0);
    ws.stop();
}

/// Fixed metadata, as if scraped from targets (with a family two targets share).
#[derive(Debug)]
struct FixedMetadata(Vec<watchfire_remote::FamilyMetadata>);

impl watchfire_remote::MetadataSource for FixedMetadata {
    fn metadata(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<watchfire_remote::FamilyMetadata>> + Send + '_>> {
        Box::pin(async move { self.0.clone() })
    }
}

fn family(name: &str, kind: &str) -> watchfire_remote::FamilyMetadata {
    watchfire_remote::FamilyMetadata {
        family: name.into(),
        metric_type: kind.into(),
        help: format!("help of {name}"),
        unit: if kind == "histogram" {
            "seconds".into()
        } else {
            String::new()
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_is_sent_deduplicated_in_chunks_and_retried() {
    let (url, shared) = receiver(vec![(503, None)]).await;
    let (v2_url, v2_shared) = receiver(vec![]).await;
    let (off_url, off_shared) = receiver(vec![]).await;
    let reg = prometheus::Registry::new();
    let (ws, _mem, _tee) = setup(&reg);
    ws.set_metadata_source(Arc::new(FixedMetadata(vec![
        family("b_total", "counter"),
        family("a", "gauge"),
        family("b_total", "counter"),
        family("c", "histogram"),
    ])));
    let every = serde_json::json!({"send_interval": "200ms", "max_samples_per_send": 2});
    let backoff = serde_json::json!({"min_backoff": "10ms", "max_backoff": "20ms"});
    ws.apply_config(
        &[
            config(serde_json::json!({"url": url, "name": "meta", "metadata_config": every, "queue_config": backoff})),
            // Remote write 2.0 carries metadata with the series; `send: false` sends none.
            config(serde_json::json!({"url": v2_url, "name": "v2", "protobuf_message": "io.prometheus.write.v2.Request", "metadata_config": every})),
            config(serde_json::json!({"url": off_url, "name": "off", "metadata_config": {"send": false, "send_interval": "200ms"}})),
        ],
        &Labels::empty(),
        Path::new("."),
    )
    .unwrap();
    wait_for(&shared, 3, Duration::from_secs(10)).await;
    let got: Vec<prompb::WriteRequest> = shared.lock().unwrap().got[..3]
        .iter()
        .map(|(h, b, _)| {
            assert_eq!(h["content-encoding"], "snappy");
            assert_eq!(h["x-prometheus-remote-write-version"], "0.1.0");
            prompb::WriteRequest::decode(decode_snappy(b, 1 << 30).unwrap().as_slice()).unwrap()
        })
        .collect();
    let names = |r: &prompb::WriteRequest| -> Vec<String> {
        assert!(r.timeseries.is_empty(), "metadata only");
        r.metadata.iter().map(|m| m.metric_family_name.clone()).collect()
    };
    // Sorted, the duplicate dropped, two per request; the 503 is retried with the same body.
    assert_eq!(names(&got[0]), ["a", "b_total"]);
    assert_eq!(got[1], got[0]);
    assert_eq!(names(&got[2]), ["c"]);
    let c = &got[2].metadata[0];
    assert_eq!(c.r#type, prompb::metric_metadata::MetricType::Histogram as i32);
    assert_eq!((c.help.as_str(), c.unit.as_str()), ("help of c", "seconds"));
    assert_eq!(
        got[0].metadata[1].r#type,
        prompb::metric_metadata::MetricType::Counter as i32
    );
    assert!(metric(&reg, "prometheus_remote_storage_metadata_total") >= 3.0);
    assert_eq!(metric(&reg, "prometheus_remote_storage_metadata_retried_total"), 2.0);
    assert_eq!(metric(&reg, "prometheus_remote_storage_metadata_failed_total"), 0.0);
    assert!(metric(&reg, "prometheus_remote_storage_metadata_bytes_total") > 0.0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(v2_shared.lock().unwrap().got.is_empty());
    assert!(off_shared.lock().unwrap().got.is_empty());
    ws.stop();
}
