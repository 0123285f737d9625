//! The WAL watcher (upstream `tsdb/wlog/watcher.go` with the `StoreSeries`/`SeriesReset`/
//! `Append` side of `storage/remote/queue_manager.go`): each remote write queue reads the
//! samples it sends from the write-ahead log on a thread of its own.
//!
//! * Start: the newest checkpoint's series records (labels for the references samples use),
//!   then the segments after it. Samples of segments older than the newest one at start are
//!   not even decoded, and only samples with a timestamp at or after the watcher's start time
//!   are sent: after a restart, or when a queue is added or changed by a reload, nothing older
//!   is sent again (upstream's rule; its comparison is strict, `>`).
//! * Series: the labels of each reference, with external labels and `write_relabel_configs`
//!   applied once when the series record is read (a series relabeled away is remembered as
//!   dropped). Each entry remembers the last segment or checkpoint that mentioned it; when a
//!   new checkpoint has been read, entries older than it are forgotten (the series is gone
//!   from the head), so the cache holds about the head's series.
//! * Samples (in-order and out-of-order records, as upstream's WAL has both) are handed to
//!   the queue's shards; when they are full the watcher waits (5 ms doubling to 100 ms)
//!   instead of dropping, and reads on once they take more: after an outage the queue
//!   catches up from the WAL while the segments last. Values, stale markers included, are
//!   passed on bit for bit.
//! * Truncation does not wait for the watcher: a segment removed before the watcher opened it
//!   is skipped (logged, counted in `prometheus_wal_watcher_segments_skipped_total`) and the
//!   checkpoint that replaced it is read for its series.
//! * A torn record at the live end is waited for; a corrupt one is counted in
//!   `prometheus_wal_watcher_record_decode_failures_total`, logged with its segment and offset,
//!   and skipped.
//! * Waking: the WAL bumps a generation on every write ([`WalNotify`]); the watcher waits on
//!   it, with a one-second fallback poll.
//! * Metrics, per queue (`consumer`): `prometheus_wal_watcher_records_read_total{type}`,
//!   `..._record_decode_failures_total`, `..._current_segment`, and
//!   `..._samples_sent_pre_tailing_total`, here the samples sent before the watcher first
//!   reached the end of the WAL (upstream declares it but never counts it).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use watchfire_model::Labels;
use watchfire_tsdb::WalNotify;
use watchfire_tsdb::record::{self, Record, RefSample};
use watchfire_tsdb::wal_reader::{Event, WalFollower};

use crate::sender::{Pending, Queue, now_ms};

/// The fallback poll while tailing, should a notification be missed.
const POLL: Duration = Duration::from_secs(1);
/// Samples handed to the queue at a time.
const BATCH: usize = 1000;

/// The WAL remote write reads: its directory and the writer's notification.
#[derive(Clone, Debug)]
pub struct WalSource {
    dir: PathBuf,
    notify: Arc<WalNotify>,
}

impl WalSource {
    /// The WAL in `dir` (`<data>/wal`), written by a log whose notifier is `notify`.
    pub fn new(dir: PathBuf, notify: Arc<WalNotify>) -> Self {
        WalSource { dir, notify }
    }

    /// The WAL of an open database.
    pub fn of(db: &watchfire_tsdb::Db) -> Self {
        WalSource::new(db.wal_dir(), db.wal_notify())
    }

    pub(crate) fn wake(&self) {
        self.notify.notify();
    }
}

/// `prometheus_wal_watcher_*` metrics, labelled by queue (`consumer`).
#[derive(Clone, Debug)]
pub(crate) struct WatcherMetrics {
    records_read: IntCounterVec,
    decode_failures: IntCounterVec,
    sent_pre_tailing: IntCounterVec,
    current_segment: IntGaugeVec,
    segments_skipped: IntCounterVec,
}

impl WatcherMetrics {
    pub(crate) fn new(registry: Option<&Registry>) -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            if let Some(r) = registry {
                let _ = r.register(Box::new(c.clone()));
            }
            c
        };
        let current_segment = IntGaugeVec::new(
            Opts::new(
                "prometheus_wal_watcher_current_segment",
                "Current segment the WAL watcher is reading records from.",
            ),
            &["consumer"],
        )
        .expect("valid metric");
        if let Some(r) = registry {
            let _ = r.register(Box::new(current_segment.clone()));
        }
        WatcherMetrics {
            records_read: counter(
                "prometheus_wal_watcher_records_read_total",
                "Number of records read by the WAL watcher from the WAL.",
                &["consumer", "type"],
            ),
            decode_failures: counter(
                "prometheus_wal_watcher_record_decode_failures_total",
                "Number of records read by the WAL watcher that resulted in an error when decoding.",
                &["consumer"],
            ),
            sent_pre_tailing: counter(
                "prometheus_wal_watcher_samples_sent_pre_tailing_total",
                "Number of sample records read by the WAL watcher and sent to remote write during replay of existing WAL.",
                &["consumer"],
            ),
            current_segment,
            segments_skipped: counter(
                "prometheus_wal_watcher_segments_skipped_total",
                "Number of WAL segments removed by truncation before the WAL watcher read them (Watchfire).",
                &["consumer"],
            ),
        }
    }

    /// Drops the series of a stopped watcher, as upstream's `Stop`.
    fn remove(&self, consumer: &str) {
        for t in RECORD_TYPES {
            let _ = self.records_read.remove_label_values(&[consumer, t]);
        }
        let _ = self.decode_failures.remove_label_values(&[consumer]);
        let _ = self.sent_pre_tailing.remove_label_values(&[consumer]);
        let _ = self.current_segment.remove_label_values(&[consumer]);
        let _ = self.segments_skipped.remove_label_values(&[consumer]);
    }
}

const RECORD_TYPES: [&str; 8] = [
    "series",
    "samples",
    "tombstones",
    "exemplars",
    "metadata",
    "histogram_samples",
    "float_histogram_samples",
    "unknown",
];

/// Upstream's name of a record type, for `records_read_total`.
fn type_name(t: u8) -> &'static str {
    match t {
        record::SERIES => "series",
        record::SAMPLES | record::COMPACT_SAMPLES | record::OOO_SAMPLES | record::ST_SAMPLES => "samples",
        record::TOMBSTONES => "tombstones",
        4 => "exemplars",
        record::METADATA => "metadata",
        7 | 9 => "histogram_samples",
        8 | 10 => "float_histogram_samples",
        _ => "unknown",
    }
}

/// What the watcher knows of one series reference.
#[derive(Debug)]
struct Entry {
    /// The labels as sent (external labels and relabeling applied), with their hash choosing
    /// the shard; `None` when relabeling dropped the series.
    labels: Option<(Labels, u64)>,
    /// The newest segment (or checkpoint) that mentioned the series.
    segment: u32,
}

/// One queue's watcher; runs on its own thread until the queue stops.
pub(crate) struct Watcher {
    queue: Arc<Queue>,
    wal: WalSource,
    metrics: WatcherMetrics,
    name: String,
    start_ms: i64,
    started: Instant,
    /// Samples of segments before this one were written before the watcher started.
    first_tailed: u32,
    /// Set once everything present at start has been read.
    tailing: bool,
    series: HashMap<u64, Entry>,
    /// References with samples but no series record, logged once each.
    unknown_logged: std::collections::HashSet<u64>,
}

impl Watcher {
    /// Starts the watcher thread of `queue`. The start time is taken now.
    pub(crate) fn spawn(
        queue: Arc<Queue>,
        wal: WalSource,
        metrics: WatcherMetrics,
    ) -> Option<std::thread::JoinHandle<()>> {
        let name = queue.name().to_owned();
        // Listed before the start time is taken: whatever is committed from then on is in this
        // segment or a later one.
        let first_tailed = watchfire_tsdb::wal::list_segments(&wal.dir)
            .ok()
            .and_then(|s| s.last().copied())
            .unwrap_or(0);
        let start_ms = now_ms();
        let watcher = Watcher {
            queue,
            wal,
            metrics,
            name: name.clone(),
            start_ms,
            started: Instant::now(),
            first_tailed,
            tailing: false,
            series: HashMap::new(),
            unknown_logged: Default::default(),
        };
        match std::thread::Builder::new()
            .name(format!("wal-watch-{name}"))
            .spawn(move || watcher.run())
        {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::error!(queue = %name, err = %e, "cannot start the WAL watcher thread; this queue sends nothing");
                None
            }
        }
    }

    fn run(mut self) {
        tracing::info!(queue = %self.name, "Starting WAL watcher");
        tracing::info!(queue = %self.name, "Replaying WAL");
        let mut follower = WalFollower::new(&self.wal.dir);
        while !self.queue.is_stopping() {
            let seen = self.wal.notify.generation();
            match follower.next_event() {
                Ok(Event::Wait) => {
                    if !self.tailing {
                        self.tailing = true;
                        tracing::info!(queue = %self.name, duration = ?self.started.elapsed(), "Done replaying WAL");
                    }
                    self.wal.notify.wait(seen, POLL);
                }
                Ok(Event::Segment(n)) => {
                    self.metrics
                        .current_segment
                        .with_label_values(&[&self.name])
                        .set(i64::from(n));
                }
                Ok(Event::Record { segment, offset }) => {
                    if !self.record(follower.record(), segment, false) {
                        tracing::warn!(queue = %self.name, segment, offset, "skipping a WAL record that does not decode");
                    }
                }
                Ok(Event::CheckpointRecord { checkpoint }) => {
                    if !self.record(follower.record(), checkpoint, true) {
                        tracing::warn!(queue = %self.name, checkpoint, "skipping a checkpoint record that does not decode");
                    }
                }
                Ok(Event::CheckpointDone(c)) => {
                    // Series that neither the checkpoint nor a later segment mention are gone.
                    self.series.retain(|_, e| e.segment >= c);
                    self.unknown_logged.clear();
                }
                Ok(Event::Skipped { from, to }) => {
                    tracing::warn!(
                        queue = %self.name,
                        from = %watchfire_tsdb::wal::segment_name(from),
                        to = %watchfire_tsdb::wal::segment_name(to),
                        "WAL segments were truncated before remote write read them; their samples are not sent"
                    );
                    self.metrics
                        .segments_skipped
                        .with_label_values(&[&self.name])
                        .inc_by(u64::from(to - from + 1));
                }
                Ok(Event::Corrupt(c)) => {
                    self.metrics.decode_failures.with_label_values(&[&self.name]).inc();
                    tracing::warn!(
                        queue = %self.name,
                        segment = %watchfire_tsdb::wal::segment_name(c.segment),
                        offset = c.offset,
                        reason = %c.reason,
                        "skipping a corrupt WAL record"
                    );
                }
                Err(e) => {
                    // Upstream restarts its watcher after 5 s; this one retries where it was.
                    tracing::error!(queue = %self.name, err = %e, "error tailing WAL; retrying in 5s");
                    let until = Instant::now() + Duration::from_secs(5);
                    while Instant::now() < until && !self.queue.is_stopping() {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        }
        self.metrics.remove(&self.name);
        tracing::info!(queue = %self.name, "WAL watcher stopped");
    }

    /// Handles one record of `segment` (or of checkpoint `segment`); false if it does not
    /// decode.
    fn record(&mut self, rec: &[u8], segment: u32, checkpoint: bool) -> bool {
        let Some(&t) = rec.first() else {
            self.metrics.decode_failures.with_label_values(&[&self.name]).inc();
            return false;
        };
        self.metrics
            .records_read
            .with_label_values(&[&self.name, type_name(t)])
            .inc();
        let is_samples = matches!(
            t,
            record::SAMPLES | record::COMPACT_SAMPLES | record::OOO_SAMPLES | record::ST_SAMPLES
        );
        if is_samples && (checkpoint || segment < self.first_tailed) {
            // Written before the watcher started (upstream reads only series there).
            return true;
        }
        if !matches!(t, record::SERIES) && !is_samples {
            if type_name(t) == "unknown" {
                // Corruption, or a newer writer.
                self.metrics.decode_failures.with_label_values(&[&self.name]).inc();
            }
            return true;
        }
        match record::decode(rec) {
            Ok(Record::Series(list)) => {
                for s in list {
                    self.store_series(s.r, &s.labels, segment);
                }
                true
            }
            // Remote write 1.0 has no start timestamps: the samples go without them.
            Ok(Record::Samples(list)) | Ok(Record::OooSamples(list)) | Ok(Record::StSamples(list, _)) => {
                self.send(&list);
                true
            }
            Ok(_) => true,
            Err(_) => {
                self.metrics.decode_failures.with_label_values(&[&self.name]).inc();
                false
            }
        }
    }

    fn store_series(&mut self, r: u64, labels: &Labels, segment: u32) {
        if let Some(e) = self.series.get_mut(&r) {
            e.segment = e.segment.max(segment);
            return;
        }
        let labels = self.queue.series_labels(labels).map(|l| {
            let h = l.stable_hash();
            (l, h)
        });
        self.series.insert(r, Entry { labels, segment });
    }

    /// Hands the samples at or after the start time to the queue, waiting while it is full.
    fn send(&mut self, samples: &[RefSample]) {
        let mut batch: Vec<(u64, Pending)> = Vec::with_capacity(samples.len().min(BATCH));
        let mut dropped = 0u64;
        for s in samples {
            if s.t < self.start_ms {
                continue;
            }
            match self.series.get(&s.r) {
                Some(Entry {
                    labels: Some((labels, hash)),
                    ..
                }) => batch.push((
                    *hash,
                    Pending {
                        labels: labels.clone(),
                        t: s.t,
                        v: s.v,
                    },
                )),
                Some(Entry { labels: None, .. }) => dropped += 1,
                None => {
                    dropped += 1;
                    if self.unknown_logged.insert(s.r) {
                        tracing::info!(queue = %self.name, series_ref = s.r, "Dropped sample for series that was not explicitly dropped via relabelling");
                    }
                }
            }
            if batch.len() >= BATCH {
                self.hand_over(std::mem::take(&mut batch));
            }
        }
        if dropped > 0 {
            self.queue.count_dropped(dropped);
        }
        if !batch.is_empty() {
            self.hand_over(batch);
        }
    }

    fn hand_over(&mut self, batch: Vec<(u64, Pending)>) {
        let n = batch.len() as u64;
        if self.queue.push_blocking(batch) && !self.tailing {
            self.metrics.sent_pre_tailing.with_label_values(&[&self.name]).inc_by(n);
        }
    }
}
