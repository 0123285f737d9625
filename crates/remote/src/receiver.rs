//! `POST /api/v1/write`: the remote-write receiver (upstream `storage/remote/write_handler.go`).
//!
//! Negotiation, as upstream:
//! * `Content-Type` must be `application/x-protobuf`, optionally with `proto=<message>`; a
//!   missing header means 1.0. Another media type, a malformed parameter, an unknown message or
//!   one not in [`ReceiverOptions::accepted`] is **415**.
//! * `Content-Encoding` must be `snappy` (block format) or absent (assumed snappy); anything
//!   else is **415**.
//! * An undecodable body (bad snappy, bad protobuf) or one over the size limits is **400**.
//!
//! Protocol 1.0 appends all series in one appender and commits once. A sample the storage
//! rejects as out of order, out of bounds, too old or a duplicate rolls the whole request back
//! and answers **400** (so senders drop it rather than retry forever); any other storage error
//! rolls back and answers **500** (retried). Series with invalid labels are skipped and
//! counted. Protocol 2.0 may write partially: rejected samples and invalid series are reported
//! together in a **400** after the rest is committed, and the
//! `X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written` headers are always set;
//! a storage failure rolls back and answers **500**. Success is **204**.
//!
//! Watchfire's storage holds floats only: native histograms are counted in
//! `prometheus_remote_write_histograms_dropped_total` (1.0, silently, so the floats of the
//! request are kept) or reported as a 400 partial-write error (2.0); exemplars are accepted and
//! ignored (0 written), as upstream does when exemplar storage is disabled.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use http::{HeaderMap, StatusCode, header};
use prost::Message;
use watchfire_config::prometheus::ProtobufMessage;
use watchfire_model::{Labels, METRIC_NAME};
use watchfire_proto::write_v2;
use watchfire_storage::{Appendable, Appender, Error as StorageError, Metadata, MetricType, SeriesRef};

use crate::codec::{PROTOBUF_CONTENT_TYPE, decode_snappy, labels_from_proto, read_body, text_error};

/// Response header: float samples written (2.0).
pub const SAMPLES_WRITTEN_HEADER: &str = "X-Prometheus-Remote-Write-Samples-Written";
/// Response header: histograms written (2.0).
pub const HISTOGRAMS_WRITTEN_HEADER: &str = "X-Prometheus-Remote-Write-Histograms-Written";
/// Response header: exemplars written (2.0).
pub const EXEMPLARS_WRITTEN_HEADER: &str = "X-Prometheus-Remote-Write-Exemplars-Written";

/// Samples further than this in the future are out of bounds (upstream `maxAheadTime`).
const MAX_AHEAD_MS: i64 = 10 * 60 * 1000;

/// Settings of the receiver.
#[derive(Clone, Debug)]
pub struct ReceiverOptions {
    /// Messages accepted (upstream `--web.remote-write-receiver.accepted-protobuf-messages`).
    pub accepted: Vec<ProtobufMessage>,
    /// Largest compressed body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest decompressed body accepted, in bytes.
    pub max_decoded_bytes: usize,
}

impl Default for ReceiverOptions {
    fn default() -> Self {
        ReceiverOptions {
            accepted: vec![ProtobufMessage::WriteV1, ProtobufMessage::WriteV2],
            max_body_bytes: 32 << 20,
            max_decoded_bytes: 256 << 20,
        }
    }
}

/// Self-metrics of the receiver.
#[derive(Clone, Debug)]
struct ReceiverMetrics {
    invalid_labels: prometheus::IntCounter,
    histograms_dropped: prometheus::IntCounter,
    samples_written: prometheus::IntCounter,
}

impl ReceiverMetrics {
    fn new(registry: Option<&prometheus::Registry>) -> Self {
        let counter = |name: &str, help: &str| {
            let c = prometheus::IntCounter::new(name, help).expect("valid metric name");
            if let Some(r) = registry {
                // A second router on the same registry reuses the name; ignore the conflict.
                let _ = r.register(Box::new(c.clone()));
            }
            c
        };
        ReceiverMetrics {
            invalid_labels: counter(
                "prometheus_api_remote_write_invalid_labels_samples_total",
                "The total number of received remote write samples and histogram samples which were rejected due to invalid labels.",
            ),
            histograms_dropped: counter(
                "prometheus_remote_write_histograms_dropped_total",
                "Native histogram samples received by remote write that were dropped because the storage holds floats only.",
            ),
            samples_written: counter(
                "prometheus_remote_write_samples_written_total",
                "Float samples received by remote write and committed to storage.",
            ),
        }
    }
}

struct Receiver {
    appendable: Arc<dyn Appendable>,
    opts: ReceiverOptions,
    metrics: ReceiverMetrics,
}

/// The router serving `POST /api/v1/write` into `appendable`. Metrics are registered in
/// `registry` when given.
pub fn receiver_router(
    appendable: Arc<dyn Appendable>,
    opts: ReceiverOptions,
    registry: Option<&prometheus::Registry>,
) -> Router {
    let state = Arc::new(Receiver {
        appendable,
        opts,
        metrics: ReceiverMetrics::new(registry),
    });
    Router::new().route("/api/v1/write", post(handle)).with_state(state)
}

/// Parses `Content-Type` as upstream's `parseProtoMsg`.
pub fn parse_proto_msg(content_type: &str) -> Result<ProtobufMessage, String> {
    let ct = content_type.trim();
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or("");
    if media != PROTOBUF_CONTENT_TYPE {
        return Err(format!(
            "expected {PROTOBUF_CONTENT_TYPE} as the first (media) part, got {ct} content-type"
        ));
    }
    for p in parts {
        let pair: Vec<&str> = p.split('=').collect();
        if pair.len() != 2 {
            return Err(format!(
                "as per https://www.rfc-editor.org/rfc/rfc9110#parameter expected parameters to be key-values, got {p} in {ct} content-type"
            ));
        }
        if pair[0] == "proto" {
            return match pair[1] {
                "prometheus.WriteRequest" => Ok(ProtobufMessage::WriteV1),
                "io.prometheus.write.v2.Request" => Ok(ProtobufMessage::WriteV2),
                other => Err(format!(
                    "got {ct} content type; unknown type for remote write protobuf message {other}, supported: prometheus.WriteRequest, io.prometheus.write.v2.Request"
                )),
            };
        }
    }
    Ok(ProtobufMessage::WriteV1)
}

async fn handle(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Body) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("<non-ascii>"))
        .unwrap_or(PROTOBUF_CONTENT_TYPE);
    let msg = match parse_proto_msg(ct) {
        Ok(m) => m,
        Err(e) => return text_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, e),
    };
    if !rx.opts.accepted.contains(&msg) {
        let accepted: Vec<&str> = rx.opts.accepted.iter().map(|m| m.as_str()).collect();
        return text_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "{msg} protobuf message is not accepted by this server; accepted [{}]",
                accepted.join(" ")
            ),
        );
    }
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        let enc = enc.to_str().unwrap_or("<non-ascii>");
        if !enc.eq_ignore_ascii_case("snappy") {
            return text_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("{enc} encoding (compression) is not accepted by this server; only snappy is acceptable"),
            );
        }
    }
    let body = match read_body(body, &headers, rx.opts.max_body_bytes).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let raw = match decode_snappy(&body, rx.opts.max_decoded_bytes) {
        Ok(r) => r,
        Err(e) => return text_error(StatusCode::BAD_REQUEST, e),
    };
    let rx2 = rx.clone();
    let joined = match msg {
        ProtobufMessage::WriteV1 => tokio::task::spawn_blocking(move || rx2.write_v1(&raw)).await,
        ProtobufMessage::WriteV2 => {
            let req = match write_v2::Request::decode(raw.as_slice()) {
                Ok(r) => r,
                Err(e) => {
                    return text_error(
                        StatusCode::BAD_REQUEST,
                        format!("decoding io.prometheus.write.v2.Request: {e}"),
                    );
                }
            };
            tokio::task::spawn_blocking(move || rx2.write_v2(&req)).await
        }
    };
    let outcome = match joined {
        Ok(o) => o,
        Err(e) => {
            return text_error(StatusCode::INTERNAL_SERVER_ERROR, format!("remote write failed: {e}"));
        }
    };
    let mut resp = match outcome.error {
        None => Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Body::empty())
            .unwrap_or_default(),
        Some((status, msg)) => {
            if status.is_server_error() {
                tracing::error!(err = %msg, "error while remote writing the request");
            }
            text_error(status, msg)
        }
    };
    if let Some(stats) = outcome.stats {
        let h = resp.headers_mut();
        h.insert(SAMPLES_WRITTEN_HEADER, stats.samples.into());
        h.insert(HISTOGRAMS_WRITTEN_HEADER, stats.histograms.into());
        h.insert(EXEMPLARS_WRITTEN_HEADER, stats.exemplars.into());
    }
    resp
}

/// What was written by a 2.0 request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct WriteStats {
    samples: u64,
    histograms: u64,
    exemplars: u64,
}

#[derive(Debug)]
struct Outcome {
    /// Headers to send (2.0 only).
    stats: Option<WriteStats>,
    error: Option<(StatusCode, String)>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// An appender that rejects samples too far in the future (upstream `timeLimitAppender`).
struct Limited {
    app: Box<dyn Appender>,
    max_t: i64,
}

#[derive(Debug)]
enum AppendError {
    /// The sample is refused; the rest of the request goes on.
    Rejected(String),
    /// Storage failed; the request is rolled back.
    Failed(StorageError),
}

impl Limited {
    fn append(&mut self, r: Option<SeriesRef>, ls: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError> {
        self.append_st(r, ls, 0, t, v)
    }

    /// With the sample's start timestamp (remote write 2.0's `start_timestamp`; 0: unknown).
    fn append_st(
        &mut self,
        r: Option<SeriesRef>,
        ls: &Labels,
        st: i64,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        if t > self.max_t {
            return Err(AppendError::Rejected(
                "out of bounds: timestamp is too far in the future".to_owned(),
            ));
        }
        self.app.append_st(r, ls, st, t, v).map_err(|e| {
            if e.is_sample_rejection() {
                AppendError::Rejected(e.to_string())
            } else {
                AppendError::Failed(e)
            }
        })
    }
}

fn metric_type_v2(t: i32) -> MetricType {
    // The 2.0 enum numbers types as upstream's WAL records do.
    MetricType::from_code(u8::try_from(t).unwrap_or(0))
}

impl Receiver {
    fn limited(&self) -> Limited {
        Limited {
            app: self.appendable.appender(),
            max_t: now_ms() + MAX_AHEAD_MS,
        }
    }

    /// Writes the `prometheus.WriteRequest` in `raw`, read in place ([`crate::wire`]).
    fn write_v1(&self, raw: &[u8]) -> Outcome {
        let mut app = self.limited();
        let mut invalid = 0u64;
        let mut histograms = 0u64;
        let mut written = 0u64;
        let fail = |app: &mut Limited, status, msg| {
            let _ = app.app.rollback();
            Outcome {
                stats: None,
                error: Some((status, msg)),
            }
        };
        let res = crate::wire::for_each_series(raw, |ts| {
            histograms += ts.histograms as u64;
            let ls = match labels_from_proto(ts.labels.iter().copied()) {
                Ok(ls) if ls.has(METRIC_NAME) => ls,
                Ok(ls) => {
                    tracing::warn!(got = %ls, "invalid metric names or labels");
                    invalid += 1;
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(err = %e, "invalid labels for series");
                    invalid += 1;
                    return Ok(());
                }
            };
            let mut r = None;
            for &(t, v) in ts.samples {
                match app.append(r, &ls, t, v) {
                    Ok(x) => {
                        r = Some(x);
                        written += 1;
                    }
                    Err(AppendError::Rejected(msg)) => {
                        tracing::error!(err = %msg, series = %ls, timestamp = t, "out of order sample from remote write");
                        return Err((StatusCode::BAD_REQUEST, msg));
                    }
                    Err(AppendError::Failed(e)) => return Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
                }
            }
            Ok(())
        });
        self.metrics.invalid_labels.inc_by(invalid);
        match res {
            Err(e) => {
                return fail(
                    &mut app,
                    StatusCode::BAD_REQUEST,
                    format!("decoding prometheus.WriteRequest: {e}"),
                );
            }
            Ok(Err((status, msg))) => return fail(&mut app, status, msg),
            Ok(Ok(())) => {}
        }
        if histograms > 0 {
            tracing::warn!(
                count = histograms,
                "dropping native histograms received by remote write"
            );
            self.metrics.histograms_dropped.inc_by(histograms);
        }
        if let Err(e) = app.app.commit() {
            return fail(&mut app, StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
        self.metrics.samples_written.inc_by(written);
        Outcome {
            stats: None,
            error: None,
        }
    }

    fn write_v2(&self, req: &write_v2::Request) -> Outcome {
        let mut app = self.limited();
        let mut stats = WriteStats::default();
        let mut bad: Vec<String> = Vec::new();
        let mut invalid = 0u64;
        let symbols = &req.symbols;
        let sym = |i: u32| symbols.get(i as usize).map(String::as_str);
        for ts in &req.timeseries {
            let refs = &ts.labels_refs;
            let parsed = if refs.len() % 2 != 0 {
                Err(format!("invalid labelRefs length {}", refs.len()))
            } else {
                let mut pairs = Vec::with_capacity(refs.len() / 2);
                let mut err = None;
                for p in refs.chunks_exact(2) {
                    match (sym(p[0]), sym(p[1])) {
                        (Some(n), Some(v)) => pairs.push((n, v)),
                        _ => {
                            err = Some(format!(
                                "labelRefs {} (name) = {} (value) outside of symbols table (size {})",
                                p[0],
                                p[1],
                                symbols.len()
                            ));
                            break;
                        }
                    }
                }
                match err {
                    Some(e) => Err(e),
                    None => Ok(pairs),
                }
            };
            let pairs = match parsed {
                Ok(p) => p,
                Err(e) => {
                    bad.push(format!("parsing labels for series {refs:?}: {e}"));
                    invalid += (ts.samples.len() + ts.histograms.len()) as u64;
                    continue;
                }
            };
            let shown = || Labels::from_pairs(pairs.iter().copied());
            let ls = match labels_from_proto(pairs.iter().copied()) {
                Ok(ls) if ls.has(METRIC_NAME) => ls,
                Ok(ls) => {
                    bad.push(format!("invalid metric name or labels, got {ls}"));
                    invalid += (ts.samples.len() + ts.histograms.len()) as u64;
                    continue;
                }
                Err(e) => {
                    bad.push(format!("invalid labels for series, labels {}: {e}", shown()));
                    invalid += (ts.samples.len() + ts.histograms.len()) as u64;
                    continue;
                }
            };
            if ts.samples.is_empty() && ts.histograms.is_empty() {
                bad.push(format!(
                    "TimeSeries must contain at least one sample or histogram for series {ls}"
                ));
                continue;
            }
            let mut r = None;
            for s in &ts.samples {
                match app.append_st(r, &ls, s.start_timestamp, s.timestamp, s.value) {
                    Ok(x) => {
                        r = Some(x);
                        stats.samples += 1;
                    }
                    Err(AppendError::Rejected(msg)) => {
                        tracing::error!(err = %msg, series = %ls, timestamp = s.timestamp, "out of order sample from remote write");
                        bad.push(format!("{msg} for series {ls}"));
                    }
                    Err(AppendError::Failed(e)) => {
                        let _ = app.app.rollback();
                        self.metrics.invalid_labels.inc_by(invalid);
                        return Outcome {
                            stats: Some(WriteStats::default()),
                            error: Some((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
                        };
                    }
                }
            }
            if !ts.histograms.is_empty() {
                self.metrics.histograms_dropped.inc_by(ts.histograms.len() as u64);
                bad.push(format!(
                    "{} native histogram samples for series {ls} not written: native histograms are not supported",
                    ts.histograms.len()
                ));
            }
            if let Some(m) = &ts.metadata {
                let meta = Metadata {
                    metric_type: metric_type_v2(m.r#type),
                    help: sym(m.help_ref).unwrap_or("").to_owned(),
                    unit: sym(m.unit_ref).unwrap_or("").to_owned(),
                };
                if meta != Metadata::default()
                    && let Err(e) = app.app.update_metadata(r, &ls, &meta)
                {
                    tracing::debug!(err = %e, "error while updating metadata from remote write");
                }
            }
        }
        self.metrics.invalid_labels.inc_by(invalid);
        if let Err(e) = app.app.commit() {
            let _ = app.app.rollback();
            return Outcome {
                stats: Some(WriteStats::default()),
                error: Some((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
            };
        }
        self.metrics.samples_written.inc_by(stats.samples);
        Outcome {
            stats: Some(stats),
            error: (!bad.is_empty()).then(|| (StatusCode::BAD_REQUEST, bad.join("\n"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_parse_as_upstream() {
        assert_eq!(parse_proto_msg("application/x-protobuf"), Ok(ProtobufMessage::WriteV1));
        assert_eq!(
            parse_proto_msg("application/x-protobuf;proto=io.prometheus.write.v2.Request"),
            Ok(ProtobufMessage::WriteV2)
        );
        assert_eq!(
            parse_proto_msg("application/x-protobuf;proto=prometheus.WriteRequest"),
            Ok(ProtobufMessage::WriteV1)
        );
        assert!(
            parse_proto_msg("application/json")
                .unwrap_err()
                .contains("expected application/x-protobuf")
        );
        assert!(
            parse_proto_msg("application/x-protobuf;proto=foo.Bar")
                .unwrap_err()
                .contains("unknown type")
        );
        assert!(
            parse_proto_msg("application/x-protobuf;junk")
                .unwrap_err()
                .contains("key-values")
        );
    }
}
