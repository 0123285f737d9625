//! Sending metric metadata with remote write 1.0 (upstream `storage/remote/metadata_watcher.go`
//! and `QueueManager.AppendWatcherMetadata`).
//!
//! Every `metadata_config.send_interval` (1 m) a queue whose entry has `metadata_config.send`
//! (the default) and speaks `prometheus.WriteRequest` asks its [`MetadataSource`] — the scrape
//! targets' metadata — for every metric family, drops exact duplicates (the same family from
//! several targets), and POSTs it in requests of at most `metadata_config.max_samples_per_send`
//! entries holding metadata only. Recoverable failures (5xx, network errors, 429 with
//! `retry_on_http_429`) are retried with the queue's backoff until the next round is due;
//! others drop the request. Counted in `prometheus_remote_storage_metadata_total`,
//! `_metadata_failed_total`, `_metadata_retried_total` and `_metadata_bytes_total`. Remote write
//! 2.0 carries metadata with each series instead, as upstream, so nothing is sent this way.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use prost::Message;
use watchfire_proto::prompb;
use watchfire_proto::prompb::metric_metadata::MetricType;

use crate::codec::encode_snappy;
use crate::sender::{Queue, SendError};

/// The metadata of one metric family, as a scrape target reported it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FamilyMetadata {
    pub family: String,
    /// `counter`, `gauge`, `histogram`, `gaugehistogram`, `summary`, `info`, `stateset` or
    /// `unknown`.
    pub metric_type: String,
    pub help: String,
    pub unit: String,
}

/// Where the metadata comes from: the scrape targets, in Watchfire.
pub trait MetadataSource: Send + Sync + std::fmt::Debug {
    /// The metadata of every family every active target reported.
    fn metadata(&self) -> Pin<Box<dyn Future<Output = Vec<FamilyMetadata>> + Send + '_>>;
}

/// The source, set once the scrape manager exists (after the queues may have started).
pub(crate) type SharedSource = Arc<Mutex<Option<Arc<dyn MetadataSource>>>>;

fn wire_type(t: &str) -> MetricType {
    match t {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "histogram" => MetricType::Histogram,
        "gaugehistogram" => MetricType::Gaugehistogram,
        "summary" => MetricType::Summary,
        "info" => MetricType::Info,
        "stateset" => MetricType::Stateset,
        _ => MetricType::Unknown,
    }
}

/// Sends the queue's metadata every interval until the queue stops or is dropped.
pub(crate) async fn metadata_loop(queue: Weak<Queue>, source: SharedSource, interval: Duration, max_per_send: usize) {
    let interval = interval.max(Duration::from_millis(10));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(q) = queue.upgrade() else { return };
        if q.is_stopping() {
            return;
        }
        let current = source.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(src) = current else { continue };
        let mut all = src.metadata().await;
        all.sort();
        all.dedup();
        let deadline = Instant::now() + interval;
        for chunk in all.chunks(max_per_send.max(1)) {
            send(&q, chunk, deadline).await;
        }
    }
}

async fn send(q: &Queue, chunk: &[FamilyMetadata], deadline: Instant) {
    let req = prompb::WriteRequest {
        timeseries: Vec::new(),
        metadata: chunk
            .iter()
            .map(|m| prompb::MetricMetadata {
                r#type: wire_type(&m.metric_type) as i32,
                metric_family_name: m.family.clone(),
                help: m.help.clone(),
                unit: m.unit.clone(),
            })
            .collect(),
    };
    let body = encode_snappy(&req.encode_to_vec());
    let n = chunk.len() as u64;
    let (m, ls) = (q.metrics(), q.metric_labels());
    let ls = [ls[0].as_str(), ls[1].as_str()];
    let (mut backoff, max_backoff) = q.backoff();
    let mut attempt = 0u32;
    loop {
        let retry_after = match q.client().post(&body, attempt).await {
            Ok(()) => {
                m.metadata_total.with_label_values(&ls).inc_by(n);
                m.metadata_bytes.with_label_values(&ls).inc_by(body.len() as u64);
                return;
            }
            Err(SendError::Recoverable { retry_after, message }) if q.retries(&message) => {
                tracing::warn!(remote_name = %ls[0], err = %message.text, "failed to send metadata, retrying");
                retry_after
            }
            Err(SendError::Recoverable { message, .. }) | Err(SendError::Fatal(message)) => {
                tracing::error!(remote_name = %ls[0], err = %message.text, count = n, "non-recoverable error sending metadata, dropping it");
                m.metadata_failed.with_label_values(&ls).inc_by(n);
                return;
            }
        };
        let wait = retry_after.unwrap_or(backoff);
        if q.is_stopping() || Instant::now() + wait >= deadline {
            tracing::error!(remote_name = %ls[0], count = n, "metadata not sent before the next round; dropping it");
            m.metadata_failed.with_label_values(&ls).inc_by(n);
            return;
        }
        m.metadata_retried.with_label_values(&ls).inc_by(n);
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(max_backoff);
        attempt += 1;
    }
}
