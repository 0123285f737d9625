//! `POST /api/v1/read`: remote read (upstream `storage/remote/read_handler.go`).
//!
//! The body is a snappy-compressed `prometheus.ReadRequest`. The response type is the first of
//! `accepted_response_types` the server supports (`SAMPLES` when the list is empty):
//!
//! * `SAMPLES`: a snappy-compressed `ReadResponse` with one `QueryResult` per query,
//!   `Content-Type: application/x-protobuf`, `Content-Encoding: snappy`. More than
//!   [`ReadOptions::sample_limit`] samples in total is a 400 `exceeded sample limit (N)`.
//! * `STREAMED_XOR_CHUNKS`: `Content-Type: application/x-streamed-protobuf;
//!   proto=prometheus.ChunkedReadResponse`, a sequence of frames `uvarint(len) |
//!   CRC32-Castagnoli(msg) big endian | ChunkedReadResponse`, each holding chunks of one
//!   series (a series is split across frames at about [`ReadOptions::max_bytes_in_frame`]).
//!   The samples are re-encoded into XOR chunks of at most 120 samples. The response is
//!   assembled before it is sent.
//!
//! External labels are added to returned series that lack them, and an equality matcher on an
//! external label with the external value is turned into `name=""` before selecting, as
//! upstream. Queries run on the blocking pool, at most [`ReadOptions::concurrent_limit`] at
//! once.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use http::{HeaderMap, StatusCode, header};
use prost::Message;
use tokio::sync::Semaphore;
use watchfire_model::{Labels, MatchType, Matcher};
use watchfire_proto::prompb;
use watchfire_proto::prompb::read_request::ResponseType;
use watchfire_storage::{Queryable, SelectHints};
use watchfire_tsdb::chunkenc::XorChunk;

use crate::codec::{
    PROTOBUF_CONTENT_TYPE, decode_snappy, encode_snappy, labels_to_proto, matchers_from_proto, merge_labels, read_body,
    text_error,
};

/// `Content-Type` of streamed responses.
pub const STREAMED_CONTENT_TYPE: &str = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";

/// Castagnoli CRC-32 of streamed frames.
pub const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

const SAMPLES_PER_CHUNK: usize = 120;

/// Settings of remote read.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// The `global.external_labels`.
    pub external_labels: crate::ExternalLabels,
    /// Most samples of a sampled response; 0 means no limit
    /// (`--storage.remote.read-sample-limit`, default 5e7).
    pub sample_limit: usize,
    /// Most concurrent read requests (`--storage.remote.read-concurrent-limit`, default 10).
    pub concurrent_limit: usize,
    /// Frame size of streamed responses (`--storage.remote.read-max-bytes-in-frame`, 1 MiB).
    pub max_bytes_in_frame: usize,
    /// Largest compressed request body.
    pub max_body_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            external_labels: Default::default(),
            sample_limit: 50_000_000,
            concurrent_limit: 10,
            max_bytes_in_frame: 1 << 20,
            max_body_bytes: 4 << 20,
        }
    }
}

struct Reader {
    storage: Arc<dyn Queryable>,
    opts: ReadOptions,
    limit: Semaphore,
}

/// The router serving `POST /api/v1/read` from `storage`.
pub fn read_router(storage: Arc<dyn Queryable>, opts: ReadOptions) -> Router {
    let limit = Semaphore::new(opts.concurrent_limit.max(1));
    Router::new()
        .route("/api/v1/read", post(handle))
        .with_state(Arc::new(Reader { storage, opts, limit }))
}

async fn handle(State(r): State<Arc<Reader>>, headers: HeaderMap, body: Body) -> Response {
    let Ok(_permit) = r.limit.acquire().await else {
        return text_error(StatusCode::SERVICE_UNAVAILABLE, "remote read is shutting down");
    };
    let body = match read_body(body, &headers, r.opts.max_body_bytes).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let req = match decode_snappy(&body, r.opts.max_body_bytes.saturating_mul(8))
        .and_then(|raw| prompb::ReadRequest::decode(raw.as_slice()).map_err(|e| e.to_string()))
    {
        Ok(req) => req,
        Err(e) => return text_error(StatusCode::BAD_REQUEST, e),
    };
    let kind = match negotiate(&req.accepted_response_types) {
        Ok(k) => k,
        Err(e) => return text_error(StatusCode::BAD_REQUEST, e),
    };
    let r2 = r.clone();
    let res = tokio::task::spawn_blocking(move || match kind {
        ResponseType::Samples => r2.sampled(&req),
        ResponseType::StreamedXorChunks => r2.streamed(&req),
    })
    .await;
    match res {
        Ok(Ok(resp)) => resp,
        Ok(Err((status, msg))) => text_error(status, msg),
        Err(e) => text_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Upstream's `NegotiateResponseType`.
fn negotiate(accepted: &[i32]) -> Result<ResponseType, String> {
    if accepted.is_empty() {
        return Ok(ResponseType::Samples);
    }
    for &t in accepted {
        if let Ok(t) = ResponseType::try_from(t) {
            return Ok(t);
        }
    }
    let names: Vec<String> = accepted.iter().map(|t| t.to_string()).collect();
    Err(format!(
        "server does not support any of the requested response types: [{}]; supported: [SAMPLES STREAMED_XOR_CHUNKS]",
        names.join(" ")
    ))
}

type HandlerError = (StatusCode, String);

impl Reader {
    fn external(&self) -> Vec<prompb::Label> {
        labels_to_proto(&self.opts.external_labels.get())
    }

    /// The query's matchers, with equality matchers on external labels filtered.
    fn matchers(&self, q: &prompb::Query) -> Result<Vec<Matcher>, HandlerError> {
        let ms = matchers_from_proto(&q.matchers).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
        let external = self.opts.external_labels.get();
        ms.into_iter()
            .map(|m| {
                let ext = external.get(&m.name).unwrap_or("");
                if m.kind == MatchType::Equal && ext == m.value {
                    Matcher::new(MatchType::Equal, m.name, "").map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
                } else {
                    Ok(m)
                }
            })
            .collect()
    }

    /// Runs `f` on each selected series of `q` with its (unmerged) labels and in-range samples.
    fn each_series(
        &self,
        q: &prompb::Query,
        sorted: bool,
        mut f: impl FnMut(&Labels, Vec<prompb::Sample>) -> Result<(), HandlerError>,
    ) -> Result<(), HandlerError> {
        let ms = self.matchers(q)?;
        let (mint, maxt) = (q.start_timestamp_ms, q.end_timestamp_ms);
        let querier = self
            .storage
            .querier(mint, maxt)
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let h = q.hints.clone().unwrap_or_default();
        let hints = SelectHints {
            start: mint,
            end: maxt,
            step: h.step_ms,
            func: (!h.func.is_empty()).then_some(h.func),
            grouping: h.grouping,
            by: h.by,
            range: h.range_ms,
            limit: 0,
        };
        for s in querier.select(sorted, Some(&hints), &ms) {
            let s = s.map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            let mut it = s.iterator();
            let mut samples = Vec::new();
            if it.seek(mint) {
                loop {
                    let smp = it.at();
                    if smp.t > maxt {
                        break;
                    }
                    samples.push(prompb::Sample {
                        value: smp.v,
                        timestamp: smp.t,
                    });
                    if !it.next() {
                        break;
                    }
                }
            }
            if let Some(e) = it.err() {
                return Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string()));
            }
            f(s.labels(), samples)?;
        }
        Ok(())
    }

    fn sampled(&self, req: &prompb::ReadRequest) -> Result<Response, HandlerError> {
        let ext = self.external();
        let limit = self.opts.sample_limit;
        let mut total = 0usize;
        let mut results = Vec::with_capacity(req.queries.len());
        for q in &req.queries {
            let mut timeseries = Vec::new();
            self.each_series(q, false, |ls, samples| {
                total += samples.len();
                if limit > 0 && total > limit {
                    return Err((StatusCode::BAD_REQUEST, format!("exceeded sample limit ({limit})")));
                }
                timeseries.push(prompb::TimeSeries {
                    labels: merge_labels(labels_to_proto(ls), &ext),
                    samples,
                    ..Default::default()
                });
                Ok(())
            })?;
            results.push(prompb::QueryResult { timeseries });
        }
        let body = encode_snappy(&prompb::ReadResponse { results }.encode_to_vec());
        Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, PROTOBUF_CONTENT_TYPE)
            .header(header::CONTENT_ENCODING, "snappy")
            .body(Body::from(body))
            .unwrap_or_default())
    }

    fn streamed(&self, req: &prompb::ReadRequest) -> Result<Response, HandlerError> {
        let ext = self.external();
        let mut out = Vec::new();
        for (qi, q) in req.queries.iter().enumerate() {
            self.each_series(q, true, |ls, samples| {
                let labels = merge_labels(labels_to_proto(ls), &ext);
                let label_bytes: usize = labels.iter().map(|l| l.encoded_len()).sum();
                let max_data = self.opts.max_bytes_in_frame.saturating_sub(label_bytes) as i64;
                let mut chunks = Vec::new();
                let mut left = max_data;
                let n_chunks = samples.len().div_ceil(SAMPLES_PER_CHUNK);
                for (ci, part) in samples.chunks(SAMPLES_PER_CHUNK).enumerate() {
                    let mut c = XorChunk::new();
                    for s in part {
                        c.append(s.timestamp, s.value)
                            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                    }
                    let chunk = prompb::Chunk {
                        min_time_ms: part[0].timestamp,
                        max_time_ms: part[part.len() - 1].timestamp,
                        r#type: prompb::chunk::Encoding::Xor as i32,
                        data: c.bytes().to_vec(),
                    };
                    left -= chunk.encoded_len() as i64;
                    chunks.push(chunk);
                    let more = ci + 1 < n_chunks;
                    if left > 0 && more {
                        continue;
                    }
                    let frame = prompb::ChunkedReadResponse {
                        chunked_series: vec![prompb::ChunkedSeries {
                            labels: labels.clone(),
                            chunks: std::mem::take(&mut chunks),
                        }],
                        query_index: qi as i64,
                    };
                    write_frame(&mut out, &frame.encode_to_vec());
                    left = max_data;
                }
                Ok(())
            })?;
        }
        Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, STREAMED_CONTENT_TYPE)
            .body(Body::from(out))
            .unwrap_or_default())
    }
}

/// Appends one frame: `uvarint(len) | crc32c(msg) BE | msg` (upstream `ChunkedWriter.Write`).
pub fn write_frame(out: &mut Vec<u8>, msg: &[u8]) {
    prost::encoding::encode_varint(msg.len() as u64, out);
    out.extend_from_slice(&CASTAGNOLI.checksum(msg).to_be_bytes());
    out.extend_from_slice(msg);
}

/// Splits a streamed body into its messages, checking lengths and checksums (upstream
/// `ChunkedReader.Next`); a frame larger than `max_frame` is an error.
pub fn read_frames(mut data: &[u8], max_frame: usize) -> Result<Vec<prompb::ChunkedReadResponse>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let len = prost::encoding::decode_varint(&mut data).map_err(|e| e.to_string())? as usize;
        if len > max_frame {
            return Err(format!(
                "chunkedReader: message size exceeded the limit {len} bytes; limit {max_frame} bytes"
            ));
        }
        if data.len() < 4 + len {
            return Err("truncated frame".into());
        }
        let crc = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        let msg = &data[4..4 + len];
        if CASTAGNOLI.checksum(msg) != crc {
            return Err("chunkedReader: corrupted frame; checksum mismatch".into());
        }
        out.push(prompb::ChunkedReadResponse::decode(msg).map_err(|e| e.to_string())?);
        data = &data[4 + len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_takes_the_first_supported() {
        assert_eq!(negotiate(&[]), Ok(ResponseType::Samples));
        assert_eq!(negotiate(&[7, 1, 0]), Ok(ResponseType::StreamedXorChunks));
        assert!(negotiate(&[7]).unwrap_err().contains("does not support"));
    }

    #[test]
    fn frames_round_trip_and_detect_corruption() {
        let msg = prompb::ChunkedReadResponse {
            query_index: 4,
            ..Default::default()
        };
        let mut out = Vec::new();
        write_frame(&mut out, &msg.encode_to_vec());
        write_frame(&mut out, &msg.encode_to_vec());
        assert_eq!(read_frames(&out, 100).unwrap(), vec![msg.clone(), msg]);
        // Known value: CRC-32C of "123456789" is 0xE3069283.
        assert_eq!(CASTAGNOLI.checksum(b"123456789"), 0xE306_9283);
        let n = out.len();
        out[n - 1] ^= 1;
        assert!(read_frames(&out, 100).unwrap_err().contains("checksum"));
    }
}
