//! Round trips through the receiver into an in-memory head and back through remote read and
//! /federate, and the receiver's error cases, over real HTTP on 127.0.0.1.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use watchfire_config::prometheus::ProtobufMessage;
use watchfire_model::{Labels, Matcher};
use watchfire_proto::{prompb, write_v2};
use watchfire_remote::codec::{decode_snappy, encode_snappy};
use watchfire_remote::read::read_frames;
use watchfire_remote::{FederateOptions, ReadOptions, ReceiverOptions};
use watchfire_storage::{Appendable, Queryable};
use watchfire_tsdb::chunkenc::XorIterator;
use watchfire_tsdb::{Head, HeadOptions, MemoryStorage};

type SeriesSamples = (Vec<prompb::Label>, Vec<(i64, f64)>);

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

struct Server {
    base: String,
    storage: MemoryStorage,
    http: reqwest::Client,
}

async fn serve(opts: ReceiverOptions) -> Server {
    let storage = MemoryStorage(Head::in_memory(HeadOptions::default()));
    let app: Arc<dyn Appendable> = Arc::new(storage.clone());
    let q: Arc<dyn Queryable> = Arc::new(storage.clone());
    let ext = watchfire_remote::ExternalLabels::new(Labels::from_pairs([("cluster", "c1")]));
    let router = watchfire_remote::receiver_router(app, opts, None)
        .merge(watchfire_remote::read_router(
            q.clone(),
            ReadOptions {
                external_labels: ext.clone(),
                max_bytes_in_frame: 200,
                ..Default::default()
            },
        ))
        .merge(watchfire_remote::federate_router(
            q,
            FederateOptions {
                external_labels: ext,
                ..Default::default()
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Server {
        base: format!("http://{addr}"),
        storage,
        http: reqwest::Client::new(),
    }
}

fn label(n: &str, v: &str) -> prompb::Label {
    prompb::Label::new(n, v)
}

fn series(name: &str, job: &str, samples: &[(i64, f64)]) -> prompb::TimeSeries {
    prompb::TimeSeries {
        labels: vec![label("__name__", name), label("job", job)],
        samples: samples
            .iter()
            .map(|&(timestamp, value)| prompb::Sample { value, timestamp })
            .collect(),
        ..Default::default()
    }
}

impl Server {
    async fn write_raw(
        &self,
        ct: Option<&str>,
        enc: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut req = self.http.post(format!("{}/api/v1/write", self.base)).body(body);
        if let Some(ct) = ct {
            req = req.header("Content-Type", ct);
        }
        if let Some(enc) = enc {
            req = req.header("Content-Encoding", enc);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.text().await.unwrap())
    }

    async fn write_v1(&self, req: &prompb::WriteRequest) -> (u16, String) {
        let (s, _, b) = self
            .write_raw(
                Some("application/x-protobuf"),
                Some("snappy"),
                encode_snappy(&req.encode_to_vec()),
            )
            .await;
        (s, b)
    }

    async fn read(&self, req: &prompb::ReadRequest) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/read", self.base))
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Read-Version", "0.1.0")
            .body(encode_snappy(&req.encode_to_vec()))
            .send()
            .await
            .unwrap()
    }

    /// Every sample of every series in storage, sorted.
    fn dump(&self) -> Vec<(String, Vec<(i64, f64)>)> {
        let q = self.storage.querier(i64::MIN, i64::MAX).unwrap();
        let m = Matcher::new(watchfire_model::MatchType::Regex, "__name__", ".+").unwrap();
        let mut out = Vec::new();
        for s in q.select(true, None, &[m]) {
            let s = s.unwrap();
            let mut it = s.iterator();
            let mut v = Vec::new();
            while it.next() {
                let x = it.at();
                v.push((x.t, x.v));
            }
            out.push((s.labels().to_string(), v));
        }
        out
    }
}

fn query(start: i64, end: i64, types: &[i32]) -> prompb::ReadRequest {
    prompb::ReadRequest {
        queries: vec![prompb::Query {
            start_timestamp_ms: start,
            end_timestamp_ms: end,
            matchers: vec![prompb::LabelMatcher {
                r#type: prompb::label_matcher::Type::Re as i32,
                name: "__name__".into(),
                value: "m_.*".into(),
            }],
            hints: None,
        }],
        accepted_response_types: types.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_write_then_read_sampled_streamed_and_federate() {
    let srv = serve(ReceiverOptions::default()).await;
    let now = now_ms();
    let a: Vec<(i64, f64)> = (0..300).map(|i| (now - 300_000 + i * 1000, i as f64 * 0.5)).collect();
    let b = vec![(now - 5000, 1.0), (now - 4000, f64::INFINITY)];
    let req = prompb::WriteRequest {
        // Labels out of order on the wire are sorted by the receiver.
        timeseries: vec![
            prompb::TimeSeries {
                labels: vec![label("job", "x"), label("__name__", "m_a")],
                ..series("m_a", "x", &a)
            },
            series("m_b", "y", &b),
        ],
        metadata: vec![],
    };
    let (status, body) = srv.write_v1(&req).await;
    assert_eq!((status, body.as_str()), (204, ""));
    assert_eq!(srv.dump().len(), 2);

    // Sampled remote read: both series, in range, with the external label added.
    let resp = srv.read(&query(now - 300_000, now, &[])).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    assert_eq!(resp.headers()["content-encoding"], "snappy");
    let raw = decode_snappy(&resp.bytes().await.unwrap(), 1 << 30).unwrap();
    let rr = prompb::ReadResponse::decode(raw.as_slice()).unwrap();
    assert_eq!(rr.results.len(), 1);
    let mut ts = rr.results[0].timeseries.clone();
    ts.sort_by(|x, y| x.labels[0].value.cmp(&y.labels[0].value));
    assert_eq!(
        ts[0].labels,
        vec![label("__name__", "m_a"), label("cluster", "c1"), label("job", "x")]
    );
    let got: Vec<(i64, f64)> = ts[0].samples.iter().map(|s| (s.timestamp, s.value)).collect();
    assert_eq!(got, a);
    let got: Vec<(i64, f64)> = ts[1].samples.iter().map(|s| (s.timestamp, s.value)).collect();
    assert_eq!(got, b);

    // A narrower range returns only the samples inside it.
    let resp = srv.read(&query(now - 100_500, now - 99_500, &[0])).await;
    let raw = decode_snappy(&resp.bytes().await.unwrap(), 1 << 30).unwrap();
    let rr = prompb::ReadResponse::decode(raw.as_slice()).unwrap();
    let samples: Vec<i64> = rr.results[0]
        .timeseries
        .iter()
        .flat_map(|t| t.samples.iter().map(|s| s.timestamp))
        .collect();
    assert_eq!(samples, vec![now - 100_000]);

    // Streamed: frames of XOR chunks with valid CRCs; small frames split m_a over several.
    let resp = srv.read(&query(now - 300_000, now, &[1, 0])).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
    );
    let frames = read_frames(&resp.bytes().await.unwrap(), 1 << 20).unwrap();
    assert!(frames.len() >= 3, "{} frames", frames.len());
    let mut per_series: Vec<SeriesSamples> = Vec::new();
    for f in &frames {
        assert_eq!(f.query_index, 0);
        assert_eq!(f.chunked_series.len(), 1);
        let cs = &f.chunked_series[0];
        let mut samples = Vec::new();
        for c in &cs.chunks {
            assert_eq!(c.r#type, prompb::chunk::Encoding::Xor as i32);
            let mut it = XorIterator::new(c.data.as_slice()).unwrap();
            let mut first = None;
            let mut last = 0;
            while it.next() {
                let (t, v) = it.at();
                first.get_or_insert(t);
                last = t;
                samples.push((t, v));
            }
            assert_eq!((first.unwrap(), last), (c.min_time_ms, c.max_time_ms));
        }
        match per_series.last_mut() {
            Some((l, s)) if *l == cs.labels => s.extend(samples),
            _ => per_series.push((cs.labels.clone(), samples)),
        }
    }
    // Streamed series come sorted by labels.
    assert_eq!(per_series.len(), 2);
    assert_eq!(per_series[0].0[0].value, "m_a");
    assert_eq!(per_series[0].1, a);
    assert_eq!(per_series[1].1, b);

    // Federation: the newest sample of each series, external labels appended.
    let resp = srv
        .http
        .get(format!("{}/federate?match[]={{__name__=~\"m_.*\"}}", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    let (lt, lv) = a[a.len() - 1];
    assert_eq!(
        text,
        format!(
            "# TYPE m_a untyped\nm_a{{job=\"x\",cluster=\"c1\",instance=\"\"}} {lv} {lt}\n\
             # TYPE m_b untyped\nm_b{{job=\"y\",cluster=\"c1\",instance=\"\"}} +Inf {}\n",
            now - 4000
        )
    );
    let resp = srv
        .http
        .get(format!("{}/federate?match[]=up{{", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // Sample limit.
    let srv2 = serve(ReceiverOptions::default()).await;
    drop(srv2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_rejected_sample_rolls_back_the_whole_request() {
    let srv = serve(ReceiverOptions::default()).await;
    let now = now_ms();
    let (s, _) = srv
        .write_v1(&prompb::WriteRequest {
            timeseries: vec![series("m_a", "x", &[(now - 1000, 1.0)])],
            metadata: vec![],
        })
        .await;
    assert_eq!(s, 204);
    let before = srv.dump();
    // A new series first, then an out-of-order sample: 400 and nothing of it stored.
    let (s, body) = srv
        .write_v1(&prompb::WriteRequest {
            timeseries: vec![
                series("m_new", "x", &[(now, 5.0)]),
                series("m_a", "x", &[(now - 2000, 2.0)]),
            ],
            metadata: vec![],
        })
        .await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(body, "out of order sample\n");
    assert_eq!(srv.dump(), before);
    // The same sample again is a duplicate-with-equal-value: accepted.
    let (s, _) = srv
        .write_v1(&prompb::WriteRequest {
            timeseries: vec![series("m_a", "x", &[(now - 1000, 1.0)])],
            metadata: vec![],
        })
        .await;
    assert_eq!(s, 204);
    // Too far in the future: out of bounds, 400.
    let (s, body) = srv
        .write_v1(&prompb::WriteRequest {
            timeseries: vec![series("m_a", "x", &[(now + 3_600_000, 1.0)])],
            metadata: vec![],
        })
        .await;
    assert_eq!(s, 400);
    assert_eq!(body, "out of bounds: timestamp is too far in the future\n");
    // Invalid labels are skipped, the rest is written.
    let (s, _) = srv
        .write_v1(&prompb::WriteRequest {
            timeseries: vec![
                prompb::TimeSeries {
                    labels: vec![label("a", "1"), label("a", "2")],
                    samples: vec![prompb::Sample {
                        value: 1.0,
                        timestamp: now,
                    }],
                    ..Default::default()
                },
                series("m_c", "x", &[(now, 3.0)]),
            ],
            metadata: vec![],
        })
        .await;
    assert_eq!(s, 204);
    assert_eq!(srv.dump().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_write_reports_written_counts_and_partial_errors() {
    let srv = serve(ReceiverOptions::default()).await;
    let now = now_ms();
    let sym = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let req = write_v2::Request {
        symbols: sym(&["", "__name__", "m_v2", "job", "j", "help text", "m_v2b"]),
        timeseries: vec![
            write_v2::TimeSeries {
                labels_refs: vec![1, 2, 3, 4],
                samples: vec![
                    write_v2::Sample {
                        value: 1.0,
                        timestamp: now - 2000,
                        start_timestamp: 0,
                    },
                    write_v2::Sample {
                        value: 2.0,
                        timestamp: now - 1000,
                        start_timestamp: 0,
                    },
                ],
                metadata: Some(write_v2::Metadata {
                    r#type: write_v2::metadata::MetricType::Gauge as i32,
                    help_ref: 5,
                    unit_ref: 0,
                }),
                ..Default::default()
            },
            write_v2::TimeSeries {
                labels_refs: vec![1, 6],
                samples: vec![write_v2::Sample {
                    value: 3.0,
                    timestamp: now,
                    start_timestamp: now - 60_000,
                }],
                ..Default::default()
            },
        ],
    };
    let ct = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
    let (s, h, body) = srv
        .write_raw(Some(ct), Some("snappy"), encode_snappy(&req.encode_to_vec()))
        .await;
    assert_eq!((s, body.as_str()), (204, ""));
    assert_eq!(h["x-prometheus-remote-write-samples-written"], "3");
    assert_eq!(h["x-prometheus-remote-write-histograms-written"], "0");
    assert_eq!(h["x-prometheus-remote-write-exemplars-written"], "0");
    assert_eq!(
        srv.storage
            .0
            .metadata(&Labels::from_pairs([("__name__", "m_v2"), ("job", "j")]))
            .map(|m| m.help),
        Some("help text".to_owned())
    );
    // The 2.0 start timestamp is stored with the sample (issue #4).
    let q = srv.storage.querier(0, i64::MAX).unwrap();
    let m = Matcher::new(watchfire_model::MatchType::Equal, "__name__", "m_v2b").unwrap();
    let sts: Vec<(i64, i64)> = q
        .select(false, None, &[m])
        .map(|s| {
            let mut it = s.unwrap().iterator();
            assert!(it.next());
            (it.at().t, it.at_st())
        })
        .collect();
    assert_eq!(sts, [(now, now - 60_000)]);

    // Partial write: an out-of-order sample and a bad symbol reference are reported in one
    // 400, the good sample is committed and counted.
    let req = write_v2::Request {
        symbols: sym(&["", "__name__", "m_v2", "job", "j", "m_v2c"]),
        timeseries: vec![
            write_v2::TimeSeries {
                labels_refs: vec![1, 2, 3, 4],
                samples: vec![write_v2::Sample {
                    value: 9.0,
                    timestamp: now - 5000,
                    start_timestamp: 0,
                }],
                ..Default::default()
            },
            write_v2::TimeSeries {
                labels_refs: vec![3, 4],
                samples: vec![write_v2::Sample {
                    value: 9.0,
                    timestamp: now,
                    start_timestamp: 0,
                }],
                ..Default::default()
            },
            write_v2::TimeSeries {
                labels_refs: vec![1, 2, 3, 4],
                ..Default::default()
            },
            write_v2::TimeSeries {
                labels_refs: vec![1, 99],
                samples: vec![write_v2::Sample {
                    value: 9.0,
                    timestamp: now,
                    start_timestamp: 0,
                }],
                ..Default::default()
            },
            write_v2::TimeSeries {
                labels_refs: vec![1, 5],
                samples: vec![write_v2::Sample {
                    value: 4.0,
                    timestamp: now,
                    start_timestamp: 0,
                }],
                ..Default::default()
            },
        ],
    };
    let (s, h, body) = srv
        .write_raw(Some(ct), Some("snappy"), encode_snappy(&req.encode_to_vec()))
        .await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(h["x-prometheus-remote-write-samples-written"], "1");
    assert!(body.contains("out of order sample for series"), "{body}");
    assert!(body.contains("outside of symbols table (size 6)"), "{body}");
    assert!(
        body.contains("invalid metric name or labels, got {job=\"j\"}"),
        "{body}"
    );
    assert!(
        body.contains(
            "TimeSeries must contain at least one sample or histogram for series {__name__=\"m_v2\", job=\"j\"}"
        ),
        "{body}"
    );
    assert_eq!(srv.dump().len(), 3);

    // 2.0 refused when only 1.0 is accepted: 415.
    let srv1 = serve(ReceiverOptions {
        accepted: vec![ProtobufMessage::WriteV1],
        ..Default::default()
    })
    .await;
    let (s, _, body) = srv1
        .write_raw(Some(ct), Some("snappy"), encode_snappy(&req.encode_to_vec()))
        .await;
    assert_eq!(s, 415);
    assert_eq!(
        body,
        "io.prometheus.write.v2.Request protobuf message is not accepted by this server; accepted [prometheus.WriteRequest]\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_oversized_bodies_are_rejected_without_touching_storage() {
    let srv = serve(ReceiverOptions {
        max_body_bytes: 8192,
        max_decoded_bytes: 64 * 1024,
        ..Default::default()
    })
    .await;
    let now = now_ms();
    let good = prompb::WriteRequest {
        timeseries: vec![series("m_a", "x", &[(now, 1.0)])],
        metadata: vec![],
    };
    let (s, _) = srv.write_v1(&good).await;
    assert_eq!(s, 204);
    let before = srv.dump();
    let pb = "application/x-protobuf";

    // Bad snappy.
    let (s, _, body) = srv
        .write_raw(Some(pb), Some("snappy"), b"\xff\xff\xff\xffgarbage".to_vec())
        .await;
    assert_eq!(s, 400);
    assert!(body.starts_with("snappy:"), "{body}");
    // Truncated snappy.
    let enc = encode_snappy(&good.encode_to_vec());
    let (s, _, _) = srv
        .write_raw(Some(pb), Some("snappy"), enc[..enc.len() - 3].to_vec())
        .await;
    assert_eq!(s, 400);
    // Valid snappy, bad protobuf.
    let (s, _, body) = srv
        .write_raw(Some(pb), Some("snappy"), encode_snappy(b"\x0a\xff\xff\xff\x0f"))
        .await;
    assert_eq!(s, 400);
    assert!(body.starts_with("decoding prometheus.WriteRequest:"), "{body}");
    // Wrong content type, unknown proto, wrong encoding: 415 as upstream.
    let (s, _, body) = srv
        .write_raw(Some("application/json"), Some("snappy"), enc.clone())
        .await;
    assert_eq!(s, 415);
    assert!(
        body.contains("expected application/x-protobuf as the first (media) part"),
        "{body}"
    );
    let (s, _, body) = srv
        .write_raw(
            Some("application/x-protobuf;proto=foo.Bar"),
            Some("snappy"),
            enc.clone(),
        )
        .await;
    assert_eq!(s, 415);
    assert!(
        body.contains("unknown type for remote write protobuf message foo.Bar"),
        "{body}"
    );
    let (s, _, body) = srv.write_raw(Some(pb), Some("gzip"), enc.clone()).await;
    assert_eq!(s, 415);
    assert_eq!(
        body,
        "gzip encoding (compression) is not accepted by this server; only snappy is acceptable\n"
    );
    // Missing Content-Type and Content-Encoding: 1.0 snappy assumed.
    let (s, _, _) = srv.write_raw(None, None, enc.clone()).await;
    assert_eq!(s, 204);
    // Oversized compressed body.
    let big: Vec<u8> = (0..10_000u32)
        .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    let (s, _, body) = srv.write_raw(Some(pb), Some("snappy"), encode_snappy(&big)).await;
    assert_eq!(s, 400);
    assert_eq!(body, "request body too large: exceeds the limit of 8192 bytes\n");
    // Small body that decompresses beyond the limit.
    let (s, _, body) = srv
        .write_raw(Some(pb), Some("snappy"), encode_snappy(&vec![0u8; 100_000]))
        .await;
    assert_eq!(s, 400);
    assert!(body.contains("exceeds the limit of 65536 bytes"), "{body}");
    assert_eq!(srv.dump(), before);

    // Remote read errors.
    let resp = srv
        .http
        .post(format!("{}/api/v1/read", srv.base))
        .body(b"nonsense".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = srv.read(&query(0, now, &[5])).await;
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("does not support any of the requested response types")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_sample_limit_is_a_400() {
    let storage = MemoryStorage(Head::in_memory(HeadOptions::default()));
    let mut app = storage.appender();
    let ls = Labels::from_pairs([("__name__", "m_x")]);
    for i in 0..20 {
        app.append(None, &ls, i * 1000, 1.0).unwrap();
    }
    app.commit().unwrap();
    let router = watchfire_remote::read_router(
        Arc::new(storage),
        ReadOptions {
            sample_limit: 10,
            ..Default::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/read"))
        .body(encode_snappy(&query(0, 100_000, &[]).encode_to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.text().await.unwrap(), "exceeded sample limit (10)\n");
}
