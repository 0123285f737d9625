//! The remote-write sender against a local axum receiver on 127.0.0.1. Samples are committed
//! to a real database in a temporary directory; the queues read them from its WAL. Only
//! samples at or after a queue's start are sent, so timestamps are taken from the clock.

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
use watchfire_remote::{TimestampTracker, WalSource, WriteStorage};
use watchfire_storage::Appendable;
use watchfire_tsdb::Db;

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

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A database in a temporary directory (with small WAL segments) and remote write reading its
/// WAL.
struct Setup {
    ws: Arc<WriteStorage>,
    db: Arc<Db>,
    /// Appends through the remote-write tracker, as scraping and rules do.
    app: TimestampTracker,
    dir: tempfile::TempDir,
}

fn db_options() -> watchfire_tsdb::Options {
    watchfire_tsdb::Options {
        wal_segment_size: 32 * 1024,
        ..Default::default()
    }
}

fn setup(reg: &prometheus::Registry) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), db_options()).unwrap());
    let ws = WriteStorage::new(Some(reg), WalSource::of(&db)).unwrap();
    let app = ws.tracker(db.clone());
    Setup { ws, db, app, dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_503_then_succeeds_with_relabeling_auth_and_headers() {
    let (url, shared) = receiver(vec![(503, None)]).await;
    let reg = prometheus::Registry::new();
    let Setup {
        ws,
        app: tee,
        db: _db,
        dir: _dir,
    } = setup(&reg);
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
    let b = now_ms();
    let mut app = tee.appender();
    let a = Labels::from_pairs([("__name__", "m_a"), ("job", "j")]);
    let d = Labels::from_pairs([("__name__", "dropme")]);
    app.append(None, &a, b + 1000, 1.5).unwrap();
    app.append(None, &a, b + 2000, 2.5).unwrap();
    app.append(None, &d, b + 1000, 9.0).unwrap();
    app.commit().unwrap();
    // A rolled-back sample is never sent.
    app.append(None, &a, b + 3000, 3.5).unwrap();
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
                vec![(b + 1000, 1.5), (b + 2000, 2.5)]
            )]
        );
    }
    assert_eq!(metric(&reg, "prometheus_remote_storage_samples_total"), 2.0);
    assert_eq!(metric(&reg, "prometheus_remote_storage_samples_retried_total"), 2.0);
    assert_eq!(metric(&reg, "prometheus_remote_storage_samples_dropped_total"), 1.0);
    assert_eq!(metric(&reg, "prometheus_remote_storage_samples_failed_total"), 0.0);
    assert_eq!(metric(&reg, "prometheus_remote_storage_samples_in_total"), 3.0);
    assert_eq!(
        gauge(&reg, "prometheus_remote_storage_highest_timestamp_in_seconds"),
        (b + 2000) as f64 / 1000.0
    );
    ws.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_400_and_429_are_not_retried_by_default() {
    let (url, shared) = receiver(vec![(400, None), (429, None)]).await;
    let reg = prometheus::Registry::new();
    let Setup {
        ws,
        app: tee,
        db: _db,
        dir: _dir,
    } = setup(&reg);
    let cfg = config(serde_json::json!({
        "url": url,
        "queue_config": {"batch_send_deadline": "50ms", "min_backoff": "10ms", "max_samples_per_send": 2},
    }));
    ws.apply_config(&[cfg], &Labels::empty(), Path::new(".")).unwrap();
    let b = now_ms();
    let mut app = tee.appender();
    let a = Labels::from_pairs([("__name__", "m_a")]);
    for i in 0..4 {
        app.append(None, &a, b + i * 1000, i as f64).unwrap();
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
    let Setup {
        ws,
        app: tee,
        db: _db,
        dir: _dir,
    } = setup(&reg);
    let cfg = config(serde_json::json!({
        "url": url,
        "protobuf_message": "io.prometheus.write.v2.Request",
        "queue_config": {"batch_send_deadline": "50ms", "min_backoff": "10ms", "retry_on_http_429": true},
    }));
    ws.apply_config(&[cfg], &Labels::empty(), Path::new(".")).unwrap();
    let b = now_ms();
    let mut app = tee.appender();
    let a = Labels::from_pairs([("__name__", "m_a"), ("x", "y")]);
    app.append(None, &a, b + 5000, 4.25).unwrap();
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
    assert_eq!((ts.samples[0].timestamp, ts.samples[0].value), (b + 5000, 4.25));
    ws.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_unchanged_queues_and_stops_removed_ones() {
    let (url1, shared1) = receiver(vec![]).await;
    let (url2, shared2) = receiver(vec![]).await;
    let reg = prometheus::Registry::new();
    let Setup {
        ws,
        app: tee,
        db: _db,
        dir: _dir,
    } = setup(&reg);
    let q = serde_json::json!({"batch_send_deadline": "50ms"});
    let c1 = config(serde_json::json!({"url": url1, "queue_config": q}));
    let c2 = config(serde_json::json!({"url": url2, "queue_config": q}));
    ws.apply_config(&[c1.clone(), c2], &Labels::empty(), Path::new("."))
        .unwrap();
    let a = Labels::from_pairs([("__name__", "m_a")]);
    let b = now_ms();
    let mut app = tee.appender();
    app.append(None, &a, b + 1000, 1.0).unwrap();
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
    app.append(None, &a, b + 2000, 2.0).unwrap();
    app.commit().unwrap();
    wait_for(&shared1, 2, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(shared2.lock().unwrap().got.len(), 1);
    // The kept queue's watcher went on reading; the removed one's stopped (its metrics gone).
    assert_eq!(
        decode_v1(&shared1.lock().unwrap().got[1].1),
        vec![(r#"{__name__="m_a"}"#.to_owned(), vec![(b + 2000, 2.0)])]
    );
    let consumers: Vec<String> = reg
        .gather()
        .iter()
        .filter(|f| f.name() == "prometheus_wal_watcher_current_segment")
        .flat_map(|f| f.get_metric().iter().map(|m| m.get_label()[0].value().to_owned()))
        .collect();
    assert_eq!(consumers.len(), 1, "{consumers:?}");
    ws.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_older_than_sample_age_limit_are_dropped() {
    let (url, shared) = receiver(vec![]).await;
    let reg = prometheus::Registry::new();
    let Setup {
        ws,
        app: tee,
        db: _db,
        dir: _dir,
    } = setup(&reg);
    let cfg = config(serde_json::json!({
        "url": url,
        "queue_config": {"batch_send_deadline": "50ms", "sample_age_limit": "1s"},
    }));
    ws.apply_config(&[cfg], &Labels::empty(), Path::new(".")).unwrap();
    // Only samples from the queue's start on are sent: for one to be too old, the queue must
    // have run for longer than the limit.
    let start = now_ms();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let now = now_ms();
    let a = Labels::from_pairs([("__name__", "m_a")]);
    let mut app = tee.appender();
    app.append(None, &a, start, 1.0).unwrap();
    app.append(None, &a, now, 2.0).unwrap();
    app.commit().unwrap();
    wait_for(&shared, 1, Duration::from_secs(10)).await;
    let body = shared.lock().unwrap().got[0].1.clone();
    assert_eq!(
        decode_v1(&body),
        vec![(r#"{__name__="m_a"}"#.to_owned(), vec![(now, 2.0)])]
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
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), db_options()).unwrap());
    let ws = WriteStorage::with_reshard_interval(Some(&reg), WalSource::of(&db), Duration::from_millis(500)).unwrap();
    let tee = ws.tracker(db.clone());
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
    let b = now_ms();
    for step in 0..80i64 {
        let mut app = tee.appender();
        for s in &series {
            app.append(None, s, b + step * 100, step as f64).unwrap();
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
    let Setup {
        ws,
        app: _app,
        db: _db,
        dir: _dir,
    } = setup(&reg);
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

/// A receiver that answers 503 while `up` is false and records the `(series, timestamp, value
/// bits)` of every request it accepts.
async fn switchable_receiver() -> (
    String,
    Arc<std::sync::atomic::AtomicBool>,
    Arc<Mutex<Vec<(String, i64, u64)>>>,
) {
    let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let got: Arc<Mutex<Vec<(String, i64, u64)>>> = Arc::default();
    let (flag, sink) = (up.clone(), got.clone());
    let app = axum::Router::new().route(
        "/write",
        axum::routing::post(move |body: Bytes| {
            let (flag, sink) = (flag.clone(), sink.clone());
            async move {
                if !flag.load(std::sync::atomic::Ordering::SeqCst) {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let raw = decode_snappy(&body, 1 << 30).unwrap();
                let req = prompb::WriteRequest::decode(raw.as_slice()).unwrap();
                let mut g = sink.lock().unwrap();
                for ts in &req.timeseries {
                    let ls = Labels::from_pairs(ts.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())));
                    for s in &ts.samples {
                        g.push((ls.to_string(), s.timestamp, s.value.to_bits()));
                    }
                }
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/write"), up, got)
}

/// Commits `rounds` rounds of one sample for each of `series` series at `t0 + round * 10`, a
/// stale marker every seventh round; returns what was written, as the receiver records it.
/// Waits (polling every 5 ms, at most `timeout`) until `got` holds at least `n` entries.
async fn wait_len<T>(got: &Mutex<Vec<T>>, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while got.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn write_rounds(app: &dyn Appendable, series: usize, rounds: i64, t0: i64, tag: &str) -> Vec<(String, i64, u64)> {
    write_rounds_every(app, series, rounds, t0, 10, tag)
}

/// [`write_rounds`] with `step` milliseconds between rounds.
fn write_rounds_every(
    app: &dyn Appendable,
    series: usize,
    rounds: i64,
    t0: i64,
    step: i64,
    tag: &str,
) -> Vec<(String, i64, u64)> {
    let mut want = Vec::new();
    for round in 0..rounds {
        let mut a = app.appender();
        for i in 0..series {
            let ls = Labels::from_pairs([("__name__", "outage"), ("i", &i.to_string()), ("tag", tag)]);
            let v = if round % 7 == 6 {
                f64::from_bits(watchfire_model::STALE_NAN_BITS)
            } else {
                round as f64 / 3.0 + i as f64
            };
            let t = t0 + round * step;
            a.append(None, &ls, t, v).unwrap();
            want.push((ls.to_string(), t, v.to_bits()));
        }
        a.commit().unwrap();
    }
    want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_queue_holds_loses_no_sample() {
    let (url, up, got) = switchable_receiver().await;
    let reg = prometheus::Registry::new();
    let s = setup(&reg);
    let cfg = config(serde_json::json!({
        "url": url,
        "name": "outage",
        "queue_config": {
            "capacity": 200, "max_samples_per_send": 100, "min_shards": 1, "max_shards": 1,
            "batch_send_deadline": "20ms", "min_backoff": "10ms", "max_backoff": "50ms",
        },
    }));
    s.ws.apply_config(&[cfg], &Labels::empty(), Path::new(".")).unwrap();
    // 100 series × 400 rounds = 40000 samples while the remote answers 503: over 100 times
    // what the queue holds (one shard of 200, plus a batch of 100 being retried), over several
    // WAL segments.
    let t0 = now_ms();
    let want = write_rounds(&s.app, 100, 400, t0, "down");
    let segments_written = watchfire_tsdb::wal::list_segments(&s.dir.path().join("wal")).unwrap();
    let sizes: Vec<u64> = segments_written
        .iter()
        .map(|n| {
            std::fs::metadata(s.dir.path().join("wal").join(watchfire_tsdb::wal::segment_name(*n)))
                .unwrap()
                .len()
        })
        .collect();
    assert!(segments_written.len() >= 3, "{segments_written:?} {sizes:?}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(got.lock().unwrap().is_empty());
    // The watcher waits instead of dropping: at most what the shard holds is pending.
    let pending = gauge(&reg, "prometheus_remote_storage_samples_pending");
    assert!((1.0..=300.0).contains(&pending), "pending {pending}");
    assert!(metric(&reg, "prometheus_remote_storage_samples_retried_total") > 0.0);
    assert_eq!(metric(&reg, "prometheus_remote_storage_samples_dropped_total"), 0.0);
    // Back up: everything written during the outage arrives, catching up through the segments.
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    let more = write_rounds(&s.app, 100, 10, t0 + 400 * 10, "down");
    let mut want = [want, more].concat();
    wait_len(&got, want.len(), Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut have = got.lock().unwrap().clone();
    want.sort();
    have.sort();
    assert_eq!(have.len(), want.len(), "every sample once");
    assert_eq!(have, want);
    assert_eq!(metric(&reg, "prometheus_remote_storage_samples_dropped_total"), 0.0);
    assert_eq!(metric(&reg, "prometheus_remote_storage_samples_failed_total"), 0.0);
    assert_eq!(
        metric(&reg, "prometheus_remote_storage_samples_total"),
        want.len() as f64
    );
    assert_eq!(gauge(&reg, "prometheus_remote_storage_samples_pending"), 0.0);
    assert_eq!(
        gauge(&reg, "prometheus_wal_watcher_current_segment"),
        *watchfire_tsdb::wal::list_segments(&s.dir.path().join("wal"))
            .unwrap()
            .last()
            .unwrap() as f64
    );
    assert!(metric(&reg, "prometheus_wal_watcher_records_read_total") > 0.0);
    assert_eq!(metric(&reg, "prometheus_wal_watcher_record_decode_failures_total"), 0.0);
    s.ws.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_samples_older_than_the_watcher_start_are_not_sent() {
    let (url, up, got) = switchable_receiver().await;
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(serde_json::json!({
        "url": url,
        "queue_config": {"batch_send_deadline": "20ms"},
    }));
    // First run: sent.
    let first = {
        let reg = prometheus::Registry::new();
        let db = Arc::new(Db::open(dir.path(), db_options()).unwrap());
        let ws = WriteStorage::new(Some(&reg), WalSource::of(&db)).unwrap();
        ws.apply_config(std::slice::from_ref(&cfg), &Labels::empty(), Path::new("."))
            .unwrap();
        let want = write_rounds(&ws.tracker(db.clone()), 3, 5, now_ms(), "first");
        wait_len(&got, want.len(), Duration::from_secs(10)).await;
        ws.stop();
        db.shutdown().unwrap();
        want
    };
    let mut have = std::mem::take(&mut *got.lock().unwrap());
    have.sort();
    let mut first_sorted = first.clone();
    first_sorted.sort();
    assert_eq!(have, first_sorted);

    // Restart: the WAL replays; samples committed before remote write starts (in the segment
    // the watcher then tails) are not sent, nor are older ones in earlier segments.
    let reg = prometheus::Registry::new();
    let db = Arc::new(Db::open(dir.path(), db_options()).unwrap());
    let before = write_rounds(&*db, 3, 5, now_ms() - 1000, "before");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let ws = WriteStorage::new(Some(&reg), WalSource::of(&db)).unwrap();
    ws.apply_config(std::slice::from_ref(&cfg), &Labels::empty(), Path::new("."))
        .unwrap();
    let app = ws.tracker(db.clone());
    let start = now_ms();
    // Committed after the start but stamped before it: not sent either (upstream's rule).
    let late = write_rounds(&app, 2, 1, start - 5_000, "late");
    let mut want = write_rounds(&app, 3, 5, start, "after");
    wait_len(&got, want.len(), Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut have = got.lock().unwrap().clone();
    have.sort();
    want.sort();
    assert_eq!(have, want, "only what was stamped after the start");
    assert!(!before.is_empty() && !late.is_empty());
    ws.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_truncated_while_the_remote_is_down_are_skipped_and_counted() {
    let (url, up, got) = switchable_receiver().await;
    let reg = prometheus::Registry::new();
    let dir = tempfile::tempdir().unwrap();
    // One-minute blocks: a few minutes of samples make head compaction cut blocks, checkpoint
    // the WAL and delete its segments.
    let db = Arc::new(
        Db::open(
            dir.path(),
            watchfire_tsdb::Options {
                block_range: 60_000,
                ..db_options()
            },
        )
        .unwrap(),
    );
    let ws = WriteStorage::new(Some(&reg), WalSource::of(&db)).unwrap();
    let app = ws.tracker(db.clone());
    let cfg = config(serde_json::json!({
        "url": url,
        "name": "trunc",
        "queue_config": {
            "capacity": 50, "max_samples_per_send": 50, "min_shards": 1, "max_shards": 1,
            "batch_send_deadline": "20ms", "min_backoff": "10ms", "max_backoff": "50ms",
        },
    }));
    ws.apply_config(&[cfg], &Labels::empty(), Path::new(".")).unwrap();
    let t0 = now_ms();
    // 200 series × 400 rounds a second apart: almost seven minutes of samples, many segments.
    let during = write_rounds_every(&app, 200, 400, t0, 1000, "down");
    let wal = dir.path().join("wal");
    let before = watchfire_tsdb::wal::list_segments(&wal).unwrap();
    assert!(before.len() >= 4, "{before:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The watcher is stuck in the first segments, waiting for room in the queue.
    assert!(gauge(&reg, "prometheus_wal_watcher_current_segment") <= 1.0);
    let report = db.maintain().unwrap();
    assert!(
        !report.head_blocks.is_empty() && report.checkpoint.is_some(),
        "{report:?}"
    );
    let after = watchfire_tsdb::wal::list_segments(&wal).unwrap();
    assert!(after.first() > before.get(2), "{before:?} -> {after:?}");
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    // Written after the truncation (and after what the blocks hold): all of it arrives.
    let later = write_rounds_every(&app, 200, 5, t0 + 400_000, 1000, "up");
    let deadline = Instant::now() + Duration::from_secs(30);
    let arrived_all_later = |g: &[(String, i64, u64)]| later.iter().all(|w| g.contains(w));
    while !arrived_all_later(&got.lock().unwrap()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let have = got.lock().unwrap().clone();
    assert!(
        arrived_all_later(&have),
        "the samples written after the truncation arrived"
    );
    // What did arrive was written, once; what the removed segments held did not.
    let written: std::collections::HashSet<_> = during.iter().chain(&later).cloned().collect();
    let unique: std::collections::HashSet<_> = have.iter().cloned().collect();
    assert_eq!(unique.len(), have.len(), "no sample twice");
    assert!(unique.is_subset(&written));
    assert!(have.len() < during.len() + later.len());
    assert!(metric(&reg, "prometheus_wal_watcher_segments_skipped_total") >= 2.0);
    assert_eq!(metric(&reg, "prometheus_wal_watcher_record_decode_failures_total"), 0.0);
    assert_eq!(
        gauge(&reg, "prometheus_wal_watcher_current_segment"),
        *watchfire_tsdb::wal::list_segments(&wal).unwrap().last().unwrap() as f64
    );
    ws.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_reach_the_remote_promptly_and_out_of_order_ones_too() {
    let (url, up, got) = switchable_receiver().await;
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    let reg = prometheus::Registry::new();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = db_options();
    opts.head.out_of_order_time_window = 600_000;
    let db = Arc::new(Db::open(dir.path(), opts).unwrap());
    let ws = WriteStorage::new(Some(&reg), WalSource::of(&db)).unwrap();
    let app = ws.tracker(db.clone());
    let cfg = config(serde_json::json!({"url": url, "queue_config": {"batch_send_deadline": "10ms"}}));
    ws.apply_config(&[cfg], &Labels::empty(), Path::new(".")).unwrap();
    let b = now_ms();
    let ls = Labels::from_pairs([("__name__", "prompt")]);
    // Each commit wakes the watcher: far quicker than its one-second fallback poll.
    let mut latencies = Vec::new();
    for i in 0..5i64 {
        let mut a = app.appender();
        a.append(None, &ls, b + 10_000 + i * 1000, i as f64).unwrap();
        a.commit().unwrap();
        let sent = Instant::now();
        let deadline = sent + Duration::from_secs(5);
        while got.lock().unwrap().len() < (i + 1) as usize && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        latencies.push(sent.elapsed());
    }
    latencies.sort();
    assert!(
        latencies[2] < Duration::from_millis(250) && latencies[4] < Duration::from_millis(800),
        "{latencies:?}"
    );
    // An out-of-order sample (older than the newest, within the window) is in the WAL too.
    let mut a = app.appender();
    a.append(None, &ls, b + 500, 42.0).unwrap();
    a.commit().unwrap();
    wait_len(&got, 6, Duration::from_secs(5)).await;
    let have = got.lock().unwrap().clone();
    assert_eq!(have.len(), 6, "{have:?}");
    assert_eq!(have[5], (r#"{__name__="prompt"}"#.to_owned(), b + 500, 42f64.to_bits()));
    ws.stop();
}
