//! The remote-write sender (upstream `storage/remote/write.go`, `queue_manager.go`,
//! `client.go`).
//!
//! [`WriteStorage`] owns one queue per `remote_write` entry. Each queue reads the samples it
//! sends from the write-ahead log with a watcher thread of its own ([`crate::watcher`], as
//! upstream's WAL watcher): what was committed (by scraping, rules or the remote-write
//! receiver) since the queue started is sent, and when the queue is full its watcher waits
//! rather than dropping, then catches up from the WAL. [`TimestampTracker`], wrapped around
//! the storage the appends go through, counts `prometheus_remote_storage_samples_in_total`
//! and `..._highest_timestamp_in_seconds` (upstream's `timestampTracker`), which resharding
//! reads as the incoming rate.
//!
//! Per queue: external labels are added to each series (the series' own labels win), then
//! `write_relabel_configs` run, once per series as the watcher reads its series record; a
//! sample of a dropped or emptied series is counted as dropped. Series are
//! hashed onto shards, each a bounded channel of
//! `queue_config.capacity` samples and a task that sends a batch when it holds
//! `max_samples_per_send` samples or `batch_send_deadline` after its first sample. A batch is
//! POSTed as a snappy `prometheus.WriteRequest` (or `io.prometheus.write.v2.Request` with
//! `protobuf_message`) with upstream's headers; 5xx, network errors and (with
//! `retry_on_http_429`) 429 are retried with exponential backoff from `min_backoff` to
//! `max_backoff`, honouring `Retry-After` seconds; other statuses drop the batch. Basic auth,
//! `authorization`/bearer tokens, TLS (CA, client certificate, `insecure_skip_verify`) and
//! `headers` come from the entry's HTTP client settings.
//!
//! Resharding follows upstream's `calculateDesiredShards`: every 10 s the queue compares the
//! rate samples come in with the time it takes to send one (exponentially weighted rates), adds
//! 5% of the backlog per second, and moves between `min_shards` and `max_shards` when the
//! answer is more than 30% away from the current count — not while sends are failing, and not
//! downwards while more than 10 s behind. Samples are hashed onto the new shards at once, but
//! the new shards start sending only after the old ones have sent everything they held, so a
//! series' samples still leave in order.
//!
//! [`WriteStorage::apply_config`] is the reload: entries whose config and external labels are
//! unchanged keep their queue (and its pending samples); changed or removed entries are
//! stopped (their shards send what they hold once, without retrying) and new ones started.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue, StatusCode, header};
use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use prost::Message;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use watchfire_config::prometheus::{ProtobufMessage, RelabelConfig, RemoteWriteConfig};
use watchfire_model::{Labels, Timestamp};
use watchfire_proto::{prompb, write_v2};
use watchfire_storage::{Appendable, Appender, Metadata, Result as StorageResult, SeriesRef};

use crate::codec::{PROTOBUF_CONTENT_TYPE, encode_snappy, labels_to_proto};
use crate::watcher::{WalSource, Watcher, WatcherMetrics};

/// `User-Agent` of remote write requests.
pub const USER_AGENT: &str = concat!("Watchfire/", env!("CARGO_PKG_VERSION"));

/// Errors building a queue.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    /// The HTTP client of a remote write entry cannot be built.
    #[error("remote_write {name}: {message}")]
    Client { name: String, message: String },
    /// Queues are started outside a tokio runtime.
    #[error("remote write needs a tokio runtime")]
    NoRuntime,
}

/// `prometheus_remote_storage_*` metrics.
#[derive(Clone, Debug)]
pub(crate) struct SenderMetrics {
    samples_total: IntCounterVec,
    samples_failed: IntCounterVec,
    samples_retried: IntCounterVec,
    samples_dropped: IntCounterVec,
    samples_in: prometheus::IntCounter,
    highest_in: prometheus::Gauge,
    samples_pending: IntGaugeVec,
    bytes_total: IntCounterVec,
    shards: IntGaugeVec,
    shards_desired: GaugeVec,
    shards_min: IntGaugeVec,
    shards_max: IntGaugeVec,
    highest_sent: GaugeVec,
    batch_duration: HistogramVec,
    pub(crate) metadata_total: IntCounterVec,
    pub(crate) metadata_failed: IntCounterVec,
    pub(crate) metadata_retried: IntCounterVec,
    pub(crate) metadata_bytes: IntCounterVec,
}

impl SenderMetrics {
    fn new(registry: Option<&Registry>) -> Self {
        const L: &[&str] = &["remote_name", "url"];
        let reg = |c: Box<dyn prometheus::core::Collector>| {
            if let Some(r) = registry {
                let _ = r.register(c);
            }
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounterVec::new(Opts::new(name, help), L).expect("valid metric");
            reg(Box::new(c.clone()));
            c
        };
        let samples_total = counter(
            "prometheus_remote_storage_samples_total",
            "Total number of samples sent to remote storage.",
        );
        let samples_failed = counter(
            "prometheus_remote_storage_samples_failed_total",
            "Total number of samples which failed on send to remote storage, non-recoverable errors.",
        );
        let samples_retried = counter(
            "prometheus_remote_storage_samples_retried_total",
            "Total number of samples which failed on send to remote storage but were retried because the send error was recoverable.",
        );
        let samples_dropped = counter(
            "prometheus_remote_storage_samples_dropped_total",
            "Total number of samples which were dropped before being sent via remote write, either via relabelling or because the queue was full.",
        );
        let bytes_total = counter(
            "prometheus_remote_storage_bytes_total",
            "The total number of bytes of data (not metadata) sent by the queue after compression.",
        );
        let metadata_total = counter(
            "prometheus_remote_storage_metadata_total",
            "Total number of metadata entries sent to remote storage.",
        );
        let metadata_failed = counter(
            "prometheus_remote_storage_metadata_failed_total",
            "Total number of metadata entries which failed on send to remote storage, non-recoverable errors.",
        );
        let metadata_retried = counter(
            "prometheus_remote_storage_metadata_retried_total",
            "Total number of metadata entries which failed on send to remote storage but were retried because the send error was recoverable.",
        );
        let metadata_bytes = counter(
            "prometheus_remote_storage_metadata_bytes_total",
            "The total number of bytes of metadata sent by the queue after compression.",
        );
        let samples_pending = IntGaugeVec::new(
            Opts::new(
                "prometheus_remote_storage_samples_pending",
                "The number of samples pending in the queues shards to be sent to the remote storage.",
            ),
            L,
        )
        .expect("valid metric");
        reg(Box::new(samples_pending.clone()));
        let shards = IntGaugeVec::new(
            Opts::new(
                "prometheus_remote_storage_shards",
                "The number of shards used for parallel sending to the remote storage.",
            ),
            L,
        )
        .expect("valid metric");
        reg(Box::new(shards.clone()));
        let int_gauge = |name: &str, help: &str| {
            let g = IntGaugeVec::new(Opts::new(name, help), L).expect("valid metric");
            reg(Box::new(g.clone()));
            g
        };
        let shards_min = int_gauge(
            "prometheus_remote_storage_shards_min",
            "The minimum number of shards that the queue is allowed to run.",
        );
        let shards_max = int_gauge(
            "prometheus_remote_storage_shards_max",
            "The maximum number of shards that the queue is allowed to run.",
        );
        let shards_desired = GaugeVec::new(
            Opts::new(
                "prometheus_remote_storage_shards_desired",
                "The number of shards that the queues shard calculation wants to run based on the rate of samples in vs. samples out.",
            ),
            L,
        )
        .expect("valid metric");
        reg(Box::new(shards_desired.clone()));
        let highest_sent = GaugeVec::new(
            Opts::new(
                "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
                "Timestamp from a WAL sample, the highest timestamp successfully sent by this queue, in seconds since epoch.",
            ),
            L,
        )
        .expect("valid metric");
        reg(Box::new(highest_sent.clone()));
        let batch_duration = HistogramVec::new(
            HistogramOpts::new(
                "prometheus_remote_storage_sent_batch_duration_seconds",
                "Duration of send calls to the remote storage.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0, 120.0,
            ]),
            L,
        )
        .expect("valid metric");
        reg(Box::new(batch_duration.clone()));
        let samples_in = prometheus::IntCounter::new(
            "prometheus_remote_storage_samples_in_total",
            "Samples in to remote storage, compare to samples out for queue managers.",
        )
        .expect("valid metric");
        reg(Box::new(samples_in.clone()));
        let highest_in = prometheus::Gauge::new(
            "prometheus_remote_storage_highest_timestamp_in_seconds",
            "Highest timestamp that has come into the remote storage via the Appender interface, in seconds since epoch.",
        )
        .expect("valid metric");
        reg(Box::new(highest_in.clone()));
        SenderMetrics {
            samples_in,
            highest_in,
            samples_total,
            samples_failed,
            samples_retried,
            samples_dropped,
            samples_pending,
            bytes_total,
            shards,
            shards_desired,
            shards_min,
            shards_max,
            highest_sent,
            batch_duration,
            metadata_total,
            metadata_failed,
            metadata_retried,
            metadata_bytes,
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One sample waiting in a shard.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub(crate) labels: Labels,
    pub(crate) t: Timestamp,
    pub(crate) v: f64,
}

/// What came in through the [`TimestampTracker`]: the rate and the newest timestamp
/// resharding compares the queues' sending with (upstream's `samplesIn` and
/// `highestRecvTimestamp`, shared by all queues).
#[derive(Debug, Default)]
pub(crate) struct Ingest {
    samples: AtomicU64,
    highest_ms: AtomicI64,
}

/// The remote write queues of the current configuration.
#[derive(Debug)]
pub struct WriteStorage {
    queues: Mutex<Vec<Arc<Queue>>>,
    metadata: crate::metadata::SharedSource,
    metrics: SenderMetrics,
    watcher_metrics: WatcherMetrics,
    wal: WalSource,
    ingest: Arc<Ingest>,
    runtime: tokio::runtime::Handle,
    reshard_interval: Duration,
}

/// How often a queue reconsiders its number of shards (upstream's `shardUpdateDuration`).
pub const RESHARD_INTERVAL: Duration = Duration::from_secs(10);

impl WriteStorage {
    /// Remote write storage with no queues, whose queues will read `wal`; its metrics are
    /// registered in `registry` when given. Must be called inside a tokio runtime, which runs
    /// the shards.
    pub fn new(registry: Option<&Registry>, wal: WalSource) -> Result<Arc<Self>, SenderError> {
        Self::with_reshard_interval(registry, wal, RESHARD_INTERVAL)
    }

    /// [`WriteStorage::new`] with another resharding interval (tests use a short one).
    pub fn with_reshard_interval(
        registry: Option<&Registry>,
        wal: WalSource,
        interval: Duration,
    ) -> Result<Arc<Self>, SenderError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SenderError::NoRuntime)?;
        Ok(Arc::new(WriteStorage {
            queues: Mutex::new(Vec::new()),
            metadata: Default::default(),
            metrics: SenderMetrics::new(registry),
            watcher_metrics: WatcherMetrics::new(registry),
            wal,
            ingest: Arc::default(),
            runtime,
            reshard_interval: interval,
        }))
    }

    /// Wraps the storage appends go through so that the samples committed are counted
    /// (`prometheus_remote_storage_samples_in_total`, `..._highest_timestamp_in_seconds`, the
    /// incoming rate resharding uses). The samples themselves reach the queues from the WAL.
    pub fn tracker(&self, inner: Arc<dyn Appendable>) -> TimestampTracker {
        TimestampTracker {
            inner,
            ingest: self.ingest.clone(),
            samples_in: self.metrics.samples_in.clone(),
            highest_in: self.metrics.highest_in.clone(),
        }
    }

    /// Applies the `remote_write` section (start-up and reload). `config_dir` is where relative
    /// credential and TLS file paths are resolved. On error nothing changes.
    pub fn apply_config(
        &self,
        configs: &[RemoteWriteConfig],
        external_labels: &Labels,
        config_dir: &Path,
    ) -> Result<(), SenderError> {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let mut keep: Vec<Option<Arc<Queue>>> = Vec::with_capacity(configs.len());
        for cfg in configs {
            keep.push(
                queues
                    .iter()
                    .find(|q| q.cfg == *cfg && q.external_labels == *external_labels)
                    .cloned(),
            );
        }
        // Build every new client first so an invalid entry leaves the old queues running.
        let mut clients = Vec::with_capacity(configs.len());
        for (cfg, kept) in configs.iter().zip(&keep) {
            clients.push(match kept {
                Some(_) => None,
                None => Some(Client::new(cfg, config_dir)?),
            });
        }
        let mut next = Vec::with_capacity(configs.len());
        for ((cfg, kept), client) in configs.iter().zip(keep).zip(clients) {
            match (kept, client) {
                (Some(q), _) => next.push(q),
                (None, Some(client)) => next.push(Queue::start(
                    cfg.clone(),
                    external_labels.clone(),
                    client,
                    self.metrics.clone(),
                    &self.runtime,
                    self.reshard_interval,
                    &self.metadata,
                    self.ingest.clone(),
                    self.wal.clone(),
                    self.watcher_metrics.clone(),
                )),
                (None, None) => {}
            }
        }
        for old in queues.iter() {
            if !next.iter().any(|q| Arc::ptr_eq(q, old)) {
                old.stop();
            }
        }
        *queues = next;
        Ok(())
    }

    /// Where queues get the metadata they send (the scrape targets'); until set, none is sent.
    pub fn set_metadata_source(&self, source: Arc<dyn crate::metadata::MetadataSource>) {
        *self.metadata.lock().unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    /// Stops every queue; shards send what they hold once.
    pub fn stop(&self) {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        for q in queues.drain(..) {
            q.stop();
        }
    }
}

impl Drop for WriteStorage {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What the resharding decision reads, counted by the queue and its shards.
#[derive(Debug, Default)]
struct Flow {
    /// Samples sent successfully.
    data_out: AtomicU64,
    /// Samples dropped (relabeling, unknown series, too old).
    data_dropped: AtomicU64,
    /// Time spent sending batches, retries included, in nanoseconds.
    out_nanos: AtomicU64,
    /// When a batch was last sent successfully (Unix ms).
    last_send_ms: AtomicI64,
    /// The newest sample timestamp sent (ms).
    highest_sent_ms: AtomicI64,
}

/// Upstream's `ewmaRate`: events per second, smoothed with weight 0.2.
#[derive(Debug, Default)]
struct Ewma {
    rate: f64,
    init: bool,
}

impl Ewma {
    fn tick(&mut self, events: u64, interval: Duration) -> f64 {
        let instant = events as f64 / interval.as_secs_f64();
        if self.init {
            self.rate += 0.2 * (instant - self.rate);
        } else if events > 0 {
            self.init = true;
            self.rate = instant;
        }
        self.rate
    }
}

/// The rates one queue's resharding keeps between ticks, with the counter values of the last.
#[derive(Debug, Default)]
struct Rates {
    data_in: Ewma,
    data_out: Ewma,
    dropped: Ewma,
    out_nanos: Ewma,
    last: [u64; 4],
}

impl Rates {
    /// Upstream's `calculateDesiredShards`: the unrounded desired number and how far behind
    /// the queue is (seconds), or `None` when nothing has been sent (no basis to decide on).
    fn desired(&mut self, ingest: &Ingest, flow: &Flow, interval: Duration) -> Option<(f64, f64)> {
        let now = [
            ingest.samples.load(Ordering::Relaxed),
            flow.data_out.load(Ordering::Relaxed),
            flow.data_dropped.load(Ordering::Relaxed),
            flow.out_nanos.load(Ordering::Relaxed),
        ];
        let delta = |i: usize| now[i].saturating_sub(self.last[i]);
        let in_rate = self.data_in.tick(delta(0), interval);
        let out_rate = self.data_out.tick(delta(1), interval);
        let dropped_rate = self.dropped.tick(delta(2), interval);
        let out_seconds = self.out_nanos.tick(delta(3), interval) / 1e9;
        self.last = now;
        if out_rate <= 0.0 {
            return None;
        }
        let kept = out_rate / (dropped_rate + out_rate);
        let delay = (ingest.highest_ms.load(Ordering::Relaxed) - flow.highest_sent_ms.load(Ordering::Relaxed)).max(0)
            as f64
            / 1000.0;
        let pending = delay * in_rate * kept;
        let time_per_sample = out_seconds / out_rate;
        Some((time_per_sample * (in_rate * kept + 0.05 * pending), delay))
    }
}

/// Upstream's rule for acting on a desired shard count: a change of more than 30%, rounded
/// up, within `[min, max]`, and no shrinking while more than 10 s behind.
fn next_shard_count(current: usize, desired: f64, delay_seconds: f64, min: usize, max: usize) -> usize {
    let (lower, upper) = (current as f64 * 0.7, current as f64 * 1.3);
    let desired = desired.ceil();
    if lower <= desired && desired <= upper {
        return current;
    }
    let n = desired as usize;
    if n < current && delay_seconds > 10.0 {
        return current;
    }
    n.clamp(min, max)
}

/// Everything a shard needs, to start shards at any time.
#[derive(Debug)]
struct ShardSettings {
    client: Arc<Client>,
    capacity: usize,
    max_samples: usize,
    deadline: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    retry_on_429: bool,
    age_limit_ms: i64,
    labels: [String; 2],
}

/// One `remote_write` entry's queue.
#[derive(Debug)]
pub(crate) struct Queue {
    cfg: RemoteWriteConfig,
    external_labels: Labels,
    name: String,
    shards: Mutex<Vec<mpsc::Sender<Pending>>>,
    /// The tasks of the shards the current senders feed.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    settings: ShardSettings,
    flow: Arc<Flow>,
    stopping: Arc<AtomicBool>,
    metrics: SenderMetrics,
    runtime: tokio::runtime::Handle,
    ingest: Arc<Ingest>,
    /// Woken when the queue stops, so that its watcher notices at once.
    wal: WalSource,
    /// The watcher thread, joined when the queue stops.
    watcher: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Upstream names an unnamed queue by a hash of its config.
fn queue_name(cfg: &RemoteWriteConfig) -> String {
    if !cfg.name.is_empty() {
        return cfg.name.clone();
    }
    // Where the block sits in the file does not change the name.
    let mut unplaced = cfg.clone();
    unplaced.origin = Default::default();
    let mut h = DefaultHasher::new();
    format!("{unplaced:?}").hash(&mut h);
    format!("{:016x}", h.finish())[..6].to_owned()
}

impl Queue {
    #[allow(clippy::too_many_arguments)]
    fn start(
        cfg: RemoteWriteConfig,
        external_labels: Labels,
        client: Client,
        metrics: SenderMetrics,
        rt: &tokio::runtime::Handle,
        reshard_interval: Duration,
        metadata: &crate::metadata::SharedSource,
        ingest: Arc<Ingest>,
        wal: WalSource,
        watcher_metrics: WatcherMetrics,
    ) -> Arc<Queue> {
        let name = queue_name(&cfg);
        let qc = &cfg.queue_config;
        let n = qc.min_shards.max(1) as usize;
        let url = cfg.url.to_string();
        let ls = [name.as_str(), url.as_str()];
        metrics.shards_min.with_label_values(&ls).set(qc.min_shards as i64);
        metrics.shards_max.with_label_values(&ls).set(qc.max_shards as i64);
        metrics.shards_desired.with_label_values(&ls).set(n as f64);
        let settings = ShardSettings {
            client: Arc::new(client),
            capacity: qc.capacity.max(1) as usize,
            max_samples: qc.max_samples_per_send.max(1) as usize,
            deadline: qc.batch_send_deadline.to_std(),
            min_backoff: qc.min_backoff.to_std(),
            max_backoff: qc.max_backoff.to_std(),
            retry_on_429: qc.retry_on_http_429,
            age_limit_ms: qc.sample_age_limit.as_millis(),
            labels: [name.clone(), url.clone()],
        };
        tracing::info!(remote_name = %name, url = %url, shards = n, "starting remote write queue");
        let queue = Arc::new(Queue {
            cfg,
            external_labels,
            name,
            shards: Mutex::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
            settings,
            flow: Arc::new(Flow::default()),
            stopping: Arc::new(AtomicBool::new(false)),
            metrics,
            runtime: rt.clone(),
            ingest,
            wal: wal.clone(),
            watcher: Mutex::new(None),
        });
        queue.set_shards(n);
        *queue.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Watcher::spawn(queue.clone(), wal, watcher_metrics);
        rt.spawn(reshard_loop(Arc::downgrade(&queue), reshard_interval));
        let mc = &queue.cfg.metadata_config;
        if mc.send && queue.cfg.protobuf_message == ProtobufMessage::WriteV1 {
            rt.spawn(crate::metadata::metadata_loop(
                Arc::downgrade(&queue),
                metadata.clone(),
                mc.send_interval.to_std(),
                mc.max_samples_per_send as usize,
            ));
        }
        queue
    }

    /// The queue's name (`remote_name`).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub(crate) fn client(&self) -> &Client {
        &self.settings.client
    }

    pub(crate) fn metrics(&self) -> &SenderMetrics {
        &self.metrics
    }

    /// `remote_name` and `url`, the labels of the queue's metrics.
    pub(crate) fn metric_labels(&self) -> &[String; 2] {
        &self.settings.labels
    }

    /// `min_backoff` and `max_backoff`.
    pub(crate) fn backoff(&self) -> (Duration, Duration) {
        (self.settings.min_backoff, self.settings.max_backoff)
    }

    /// Whether a recoverable failure is retried: always, except 429 without
    /// `retry_on_http_429`.
    pub(crate) fn retries(&self, message: &ErrorText) -> bool {
        self.settings.retry_on_429 || message.status != Some(StatusCode::TOO_MANY_REQUESTS)
    }

    /// Starts `n` shards and routes new samples to them; they begin sending once the shards
    /// they replace have sent what they hold.
    fn set_shards(&self, n: usize) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        let previous = std::mem::take(&mut *tasks);
        let (ready_tx, ready_rx) = watch::channel(previous.is_empty());
        if !previous.is_empty() {
            self.runtime.spawn(async move {
                for t in previous {
                    let _ = t.await;
                }
                let _ = ready_tx.send(true);
            });
        }
        let st = &self.settings;
        let mut senders = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = mpsc::channel(st.capacity);
            senders.push(tx);
            let shard = Shard {
                rx,
                client: st.client.clone(),
                max_samples: st.max_samples,
                deadline: st.deadline,
                min_backoff: st.min_backoff,
                max_backoff: st.max_backoff,
                retry_on_429: st.retry_on_429,
                age_limit_ms: st.age_limit_ms,
                stopping: self.stopping.clone(),
                metrics: self.metrics.clone(),
                flow: self.flow.clone(),
                labels: st.labels.clone(),
            };
            let mut ready = ready_rx.clone();
            tasks.push(self.runtime.spawn(async move {
                let _ = ready.wait_for(|r| *r).await;
                shard.run().await
            }));
        }
        // Dropping the old senders lets the old shards finish once their channels are empty.
        *self.shards.lock().unwrap_or_else(|e| e.into_inner()) = senders;
        let ls = [st.labels[0].as_str(), st.labels[1].as_str()];
        self.metrics.shards.with_label_values(&ls).set(n as i64);
    }

    fn stop(&self) {
        tracing::info!(remote_name = %self.name, "stopping remote write queue");
        self.stopping.store(true, Ordering::Release);
        self.shards.lock().unwrap_or_else(|e| e.into_inner()).clear();
        // The watcher checks for the stop between records and while it waits for room (at
        // most 100 ms): joining is short, and a queue started in this one's place afterwards
        // cannot have its watcher metrics removed by this one's exit.
        self.wal.wake();
        let handle = self.watcher.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
    }

    /// Counts samples the watcher did not hand over (series dropped by relabeling, or
    /// unknown).
    pub(crate) fn count_dropped(&self, n: u64) {
        let ls = [self.settings.labels[0].as_str(), self.settings.labels[1].as_str()];
        self.metrics.samples_dropped.with_label_values(&ls).inc_by(n);
        self.flow.data_dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Hands `(labels hash, sample)` pairs to the shards, waiting while the one a sample
    /// belongs to is full (upstream's `QueueManager.Append`): 5 ms at first, doubling up to
    /// 100 ms. Returns false when the queue stopped before taking them all.
    pub(crate) fn push_blocking(&self, samples: Vec<(u64, Pending)>) -> bool {
        let ls = [self.settings.labels[0].as_str(), self.settings.labels[1].as_str()];
        let mut rest = samples.into_iter();
        let mut held: Option<(u64, Pending)> = None;
        let mut backoff = Duration::from_millis(5);
        loop {
            if self.is_stopping() {
                return false;
            }
            let (mut queued, mut lost) = (0i64, 0u64);
            {
                let shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
                if shards.is_empty() {
                    return false;
                }
                while let Some((hash, p)) = held.take().or_else(|| rest.next()) {
                    match shards[(hash % shards.len() as u64) as usize].try_send(p) {
                        Ok(()) => queued += 1,
                        Err(mpsc::error::TrySendError::Full(p)) => {
                            held = Some((hash, p));
                            break;
                        }
                        // The shard's task ended (it panicked): nothing will send this.
                        Err(mpsc::error::TrySendError::Closed(_)) => lost += 1,
                    }
                }
            }
            self.metrics.samples_pending.with_label_values(&ls).add(queued);
            if lost > 0 {
                self.count_dropped(lost);
            }
            if held.is_none() {
                return true;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_millis(100));
        }
    }

    /// External labels then write relabeling; `None` when the series is dropped.
    pub(crate) fn series_labels(&self, labels: &Labels) -> Option<Labels> {
        let with_ext = if self.external_labels.is_empty() {
            labels.clone()
        } else {
            let mut b = labels.builder();
            for l in self.external_labels.iter() {
                if !labels.has(l.name) {
                    b.set(l.name, l.value);
                }
            }
            b.build()
        };
        let out = if self.cfg.write_relabel_configs.is_empty() {
            with_ext
        } else {
            RelabelConfig::process(&with_ext, &self.cfg.write_relabel_configs)?
        };
        (!out.is_empty()).then_some(out)
    }
}

/// Reconsiders the queue's shard count every `interval` until the queue stops.
async fn reshard_loop(queue: Weak<Queue>, interval: Duration) {
    let mut rates = Rates::default();
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        ticker.tick().await;
        let Some(q) = queue.upgrade() else { return };
        if q.stopping.load(Ordering::Acquire) {
            return;
        }
        let Some((desired, delay)) = rates.desired(&q.ingest, &q.flow, interval) else {
            continue;
        };
        let ls = [q.settings.labels[0].as_str(), q.settings.labels[1].as_str()];
        q.metrics.shards_desired.with_label_values(&ls).set(desired);
        let current = q.shards.lock().unwrap_or_else(|e| e.into_inner()).len();
        let qc = &q.cfg.queue_config;
        let next = next_shard_count(
            current,
            desired,
            delay,
            qc.min_shards.max(1) as usize,
            qc.max_shards.max(1) as usize,
        );
        // Not while sends fail: more shards would not help a remote that is down.
        let sent_recently = q.flow.last_send_ms.load(Ordering::Relaxed) >= now_ms() - interval.as_millis() as i64;
        if next != current && sent_recently {
            tracing::info!(remote_name = %q.name, from = current, to = next, desired, "resharding");
            q.set_shards(next);
        }
    }
}

/// A shard's sending loop.
struct Shard {
    rx: mpsc::Receiver<Pending>,
    client: Arc<Client>,
    max_samples: usize,
    deadline: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    retry_on_429: bool,
    /// Samples older than this when sent are dropped; 0 keeps all.
    age_limit_ms: i64,
    stopping: Arc<AtomicBool>,
    metrics: SenderMetrics,
    flow: Arc<Flow>,
    labels: [String; 2],
}

impl Shard {
    async fn run(mut self) {
        let mut batch: Vec<Pending> = Vec::with_capacity(self.max_samples);
        let mut flush_at: Option<tokio::time::Instant> = None;
        loop {
            let timer = async {
                match flush_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = self.rx.recv() => match msg {
                    Some(p) => {
                        if batch.is_empty() {
                            flush_at = Some(tokio::time::Instant::now() + self.deadline);
                        }
                        batch.push(p);
                        if batch.len() >= self.max_samples {
                            self.send(std::mem::take(&mut batch)).await;
                            flush_at = None;
                        }
                    }
                    None => {
                        if !batch.is_empty() {
                            self.send(batch).await;
                        }
                        return;
                    }
                },
                _ = timer => {
                    self.send(std::mem::take(&mut batch)).await;
                    flush_at = None;
                }
            }
        }
    }

    async fn send(&self, mut batch: Vec<Pending>) {
        let ls = [self.labels[0].as_str(), self.labels[1].as_str()];
        self.metrics
            .samples_pending
            .with_label_values(&ls)
            .sub(batch.len() as i64);
        if self.age_limit_ms > 0 {
            let oldest = now_ms() - self.age_limit_ms;
            let before = batch.len();
            batch.retain(|p| p.t >= oldest);
            let dropped = (before - batch.len()) as u64;
            if dropped > 0 {
                self.metrics.samples_dropped.with_label_values(&ls).inc_by(dropped);
                self.flow.data_dropped.fetch_add(dropped, Ordering::Relaxed);
            }
            if batch.is_empty() {
                return;
            }
        }
        let n = batch.len() as u64;
        let highest = batch.iter().map(|p| p.t).max().unwrap_or(0);
        let body = encode_batch(&batch, self.client.proto);
        let mut backoff = self.min_backoff;
        let mut attempt = 0u32;
        let _account = SendTime {
            flow: &self.flow,
            began: Instant::now(),
        };
        loop {
            let start = Instant::now();
            let res = self.client.post(&body, attempt).await;
            self.metrics
                .batch_duration
                .with_label_values(&ls)
                .observe(start.elapsed().as_secs_f64());
            let retry_after = match res {
                Ok(()) => {
                    self.metrics.samples_total.with_label_values(&ls).inc_by(n);
                    self.metrics
                        .bytes_total
                        .with_label_values(&ls)
                        .inc_by(body.len() as u64);
                    let hs = self.metrics.highest_sent.with_label_values(&ls);
                    if highest as f64 / 1000.0 > hs.get() {
                        hs.set(highest as f64 / 1000.0);
                    }
                    self.flow.data_out.fetch_add(n, Ordering::Relaxed);
                    self.flow.highest_sent_ms.fetch_max(highest, Ordering::Relaxed);
                    self.flow.last_send_ms.store(now_ms(), Ordering::Relaxed);
                    return;
                }
                Err(SendError::Recoverable { retry_after, message })
                    if self.retry_on_429 || message.status != Some(StatusCode::TOO_MANY_REQUESTS) =>
                {
                    tracing::warn!(remote_name = %ls[0], err = %message.text, "failed to send batch, retrying");
                    retry_after
                }
                Err(SendError::Recoverable { message, .. }) | Err(SendError::Fatal(message)) => {
                    tracing::error!(remote_name = %ls[0], err = %message.text, count = n, "non-recoverable error sending batch, dropping it");
                    self.metrics.samples_failed.with_label_values(&ls).inc_by(n);
                    return;
                }
            };
            if self.stopping.load(Ordering::Acquire) {
                self.metrics.samples_failed.with_label_values(&ls).inc_by(n);
                return;
            }
            self.metrics.samples_retried.with_label_values(&ls).inc_by(n);
            let sleep = retry_after.unwrap_or(backoff);
            tokio::time::sleep(sleep).await;
            backoff = (backoff * 2).min(self.max_backoff);
            attempt += 1;
        }
    }
}

/// Adds the time a batch took, retries included, to the queue's sending time when dropped.
struct SendTime<'a> {
    flow: &'a Flow,
    began: Instant,
}

impl Drop for SendTime<'_> {
    fn drop(&mut self) {
        let nanos = u64::try_from(self.began.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.flow.out_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// Encodes a batch as a snappy-compressed request of the given protocol. Consecutive samples
/// of one series share a `TimeSeries`.
fn encode_batch(batch: &[Pending], proto: ProtobufMessage) -> Vec<u8> {
    let raw = match proto {
        ProtobufMessage::WriteV1 => {
            let mut ts: Vec<prompb::TimeSeries> = Vec::new();
            let mut last: Option<&Labels> = None;
            for p in batch {
                let sample = prompb::Sample {
                    value: p.v,
                    timestamp: p.t,
                };
                match (last, ts.last_mut()) {
                    (Some(l), Some(cur)) if *l == p.labels => cur.samples.push(sample),
                    _ => ts.push(prompb::TimeSeries {
                        labels: labels_to_proto(&p.labels),
                        samples: vec![sample],
                        ..Default::default()
                    }),
                }
                last = Some(&p.labels);
            }
            prompb::WriteRequest {
                timeseries: ts,
                metadata: Vec::new(),
            }
            .encode_to_vec()
        }
        ProtobufMessage::WriteV2 => {
            let mut symbols = vec![String::new()];
            let mut index: HashMap<String, u32> = HashMap::from([(String::new(), 0)]);
            let mut sym = |s: &str| -> u32 {
                if let Some(&i) = index.get(s) {
                    return i;
                }
                let i = symbols.len() as u32;
                symbols.push(s.to_owned());
                index.insert(s.to_owned(), i);
                i
            };
            let mut ts: Vec<write_v2::TimeSeries> = Vec::new();
            let mut last: Option<&Labels> = None;
            for p in batch {
                let sample = write_v2::Sample {
                    value: p.v,
                    timestamp: p.t,
                    start_timestamp: 0,
                };
                match (last, ts.last_mut()) {
                    (Some(l), Some(cur)) if *l == p.labels => cur.samples.push(sample),
                    _ => {
                        let mut refs = Vec::with_capacity(p.labels.len() * 2);
                        for l in p.labels.iter() {
                            refs.push(sym(l.name));
                            refs.push(sym(l.value));
                        }
                        ts.push(write_v2::TimeSeries {
                            labels_refs: refs,
                            samples: vec![sample],
                            metadata: Some(write_v2::Metadata::default()),
                            ..Default::default()
                        });
                    }
                }
                last = Some(&p.labels);
            }
            write_v2::Request {
                symbols,
                timeseries: ts,
            }
            .encode_to_vec()
        }
    };
    encode_snappy(&raw)
}

#[derive(Debug)]
pub(crate) struct ErrorText {
    pub(crate) status: Option<StatusCode>,
    pub(crate) text: String,
}

#[derive(Debug)]
pub(crate) enum SendError {
    Recoverable {
        retry_after: Option<Duration>,
        message: ErrorText,
    },
    Fatal(ErrorText),
}

/// The HTTP client of one queue.
#[derive(Debug)]
pub(crate) struct Client {
    http: watchfire_http::HttpClient,
    url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    proto: ProtobufMessage,
}

impl Client {
    fn new(cfg: &RemoteWriteConfig, dir: &Path) -> Result<Client, SenderError> {
        let name = queue_name(cfg);
        let fail = |message: String| SenderError::Client {
            name: name.clone(),
            message,
        };
        let options = watchfire_http::Options {
            user_agent: Some(USER_AGENT.to_owned()),
            timeout: Some(cfg.remote_timeout.to_std()),
        };
        let http = watchfire_http::HttpClient::with_options(&cfg.http_client(), dir, &options).map_err(&fail)?;
        let mut headers = Vec::new();
        for (k, v) in &cfg.headers {
            let n = HeaderName::from_bytes(k.as_bytes()).map_err(|e| fail(format!("header {k:?}: {e}")))?;
            let v = HeaderValue::from_str(v).map_err(|e| fail(format!("header {k:?}: {e}")))?;
            headers.push((n, v));
        }
        Ok(Client {
            http,
            url: cfg.url.to_string(),
            headers,
            proto: cfg.protobuf_message,
        })
    }

    pub(crate) async fn post(&self, body: &[u8], attempt: u32) -> Result<(), SendError> {
        let fatal = |text: String| SendError::Fatal(ErrorText { status: None, text });
        let (ct, version) = match self.proto {
            ProtobufMessage::WriteV1 => (PROTOBUF_CONTENT_TYPE.to_owned(), "0.1.0"),
            ProtobufMessage::WriteV2 => (
                format!("{PROTOBUF_CONTENT_TYPE};proto={}", write_v2::REQUEST_NAME),
                "2.0.0",
            ),
        };
        let mut req = self
            .http
            .post(&self.url)
            .map_err(fatal)?
            .header(header::CONTENT_ENCODING, "snappy")
            .header(header::CONTENT_TYPE, ct)
            .header("X-Prometheus-Remote-Write-Version", version)
            .body(body.to_vec());
        if attempt > 0 {
            req = req.header("Retry-Attempt", attempt.to_string());
        }
        for (n, v) in &self.headers {
            req = req.header(n.clone(), v.clone());
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Err(SendError::Recoverable {
                    retry_after: None,
                    message: ErrorText {
                        status: None,
                        text: e.to_string(),
                    },
                });
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut text = resp.text().await.unwrap_or_default();
        text.truncate(512);
        let message = ErrorText {
            status: Some(status),
            text: format!("server returned HTTP status {status}: {}", text.trim()),
        };
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Err(SendError::Recoverable { retry_after, message })
        } else {
            Err(SendError::Fatal(message))
        }
    }
}

/// An [`Appendable`] that appends to `inner` and counts what each successful commit held
/// (upstream's `timestampTracker`): `prometheus_remote_storage_samples_in_total`,
/// `prometheus_remote_storage_highest_timestamp_in_seconds` and the incoming rate resharding
/// uses. Made by [`WriteStorage::tracker`].
#[derive(Clone)]
pub struct TimestampTracker {
    inner: Arc<dyn Appendable>,
    ingest: Arc<Ingest>,
    samples_in: prometheus::IntCounter,
    highest_in: prometheus::Gauge,
}

impl std::fmt::Debug for TimestampTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimestampTracker").finish_non_exhaustive()
    }
}

impl Appendable for TimestampTracker {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(TrackingAppender {
            inner: self.inner.appender(),
            tracker: self.clone(),
            samples: 0,
            highest: i64::MIN,
        })
    }
}

struct TrackingAppender {
    inner: Box<dyn Appender>,
    tracker: TimestampTracker,
    samples: u64,
    highest: Timestamp,
}

impl Appender for TrackingAppender {
    fn append(
        &mut self,
        series_ref: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
        v: f64,
    ) -> StorageResult<SeriesRef> {
        let r = self.inner.append(series_ref, labels, t, v)?;
        self.samples += 1;
        self.highest = self.highest.max(t);
        Ok(r)
    }

    fn prefetch(&mut self, series_ref: SeriesRef) {
        self.inner.prefetch(series_ref);
    }

    fn append_st(
        &mut self,
        series_ref: Option<SeriesRef>,
        labels: &Labels,
        st: Timestamp,
        t: Timestamp,
        v: f64,
    ) -> StorageResult<SeriesRef> {
        let r = self.inner.append_st(series_ref, labels, st, t, v)?;
        self.samples += 1;
        self.highest = self.highest.max(t);
        Ok(r)
    }

    fn update_metadata(
        &mut self,
        series_ref: Option<SeriesRef>,
        labels: &Labels,
        meta: &Metadata,
    ) -> StorageResult<SeriesRef> {
        self.inner.update_metadata(series_ref, labels, meta)
    }

    fn commit(&mut self) -> StorageResult<()> {
        let res = self.inner.commit();
        self.committed(res)
    }

    fn try_commit(&mut self) -> Option<StorageResult<()>> {
        let res = self.inner.try_commit()?;
        Some(self.committed(res))
    }

    fn rollback(&mut self) -> StorageResult<()> {
        self.samples = 0;
        self.highest = i64::MIN;
        self.inner.rollback()
    }
}

impl TrackingAppender {
    /// Counts what a commit with result `res` ingested.
    fn committed(&mut self, res: StorageResult<()>) -> StorageResult<()> {
        let (n, highest) = (
            std::mem::take(&mut self.samples),
            std::mem::replace(&mut self.highest, i64::MIN),
        );
        if res.is_ok() && n > 0 {
            let t = &self.tracker;
            t.ingest.samples.fetch_add(n, Ordering::Relaxed);
            t.samples_in.inc_by(n);
            let before = t.ingest.highest_ms.fetch_max(highest, Ordering::Relaxed);
            if highest > before {
                t.highest_in.set(highest as f64 / 1000.0);
            }
        }
        res
    }
}
