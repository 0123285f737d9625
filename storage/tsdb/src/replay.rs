//! WAL replay on open: the newest checkpoint, then the segments after it, rebuilt into the
//! head (upstream `Head.loadWAL`).
//!
//! Serial replay reads, decodes and applies each record in turn on the opening thread.
//! Parallel replay (upstream decodes on one goroutine and applies samples on shards keyed by
//! series reference; so does this) splits the work three ways:
//!
//! * a **reader** thread reads the segment files, checks CRCs, decompresses and decodes the
//!   records, and sends them in batches, in log order;
//! * the **dispatcher** (the opening thread) applies series, metadata and tombstone records
//!   itself, and hands every sample to the **applier** that owns its series
//!   (`ref % appliers`), batched;
//! * each **applier** thread appends the samples of its series.
//!
//! Exactness: the samples of one series all go through one applier, in log order, and the
//! message registering a series (sent when its series record is applied) travels on the same
//! channel ahead of its samples, so each series sees exactly the appends, in exactly the order,
//! that serial replay gives it; series, metadata and tombstones are applied in log order by one
//! thread either way. Only where full chunks land in the head chunk files differs. The
//! `replay_*_match_serial` tests compare both.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use watchfire_storage::{Metadata, MetricType};

use crate::Error;
use crate::checkpoint;
use crate::db::OpenReport;
use crate::head::{ChunkMeta, Head, RefPages, SeriesHandle, prefetch_open_chunk, prefetch_series};
use crate::record::{self, Record};
use crate::wal::{self, Corruption};

/// Records per batch the reader sends.
const RECORD_BATCH: usize = 64;
/// Messages per batch the dispatcher sends to an applier.
const SAMPLE_BATCH: usize = 4096;
/// Batches in flight per channel: bounds the memory replay holds beyond the head.
const CHANNEL_DEPTH: usize = 8;

/// How replay is spread over threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplayMode {
    /// Everything on the opening thread.
    Serial,
    /// A reader thread, the opening thread dispatching, and this many sample appliers.
    Parallel(usize),
}

impl ReplayMode {
    /// `threads` as [`crate::Options::wal_replay_threads`] reads it: 1 is serial, n ≥ 2 means a
    /// reader and n − 1 appliers, and 0 picks from the number of CPUs: serial on one, otherwise
    /// one applier per CPU (at most 4) beside the reader and the dispatcher, which measured
    /// best on two cores (FORMAT.md, "Replay").
    pub(crate) fn from_threads(threads: usize) -> ReplayMode {
        match threads {
            0 => match std::thread::available_parallelism().map_or(1, |n| n.get()) {
                1 => ReplayMode::Serial,
                n => ReplayMode::Parallel(n.min(4)),
            },
            1 => ReplayMode::Serial,
            n => ReplayMode::Parallel(n - 1),
        }
    }
}

/// What the reader counted.
#[derive(Debug, Default)]
struct ReadStats {
    records: u64,
    undecodable: u64,
    checkpoint: Option<u32>,
    corruption: Option<Corruption>,
}

/// Reads the newest checkpoint and the segments after it, calling `sink` with each decoded
/// record in log order. Deletes segments a checkpoint covers; repairs a torn or corrupt tail
/// (see [`wal::replay_and_repair_from`]).
fn read_records(wal_dir: &Path, mut sink: impl FnMut(Record)) -> Result<ReadStats, Error> {
    let mut stats = ReadStats::default();
    let mut handle = |rec: &[u8], stats: &mut ReadStats| {
        stats.records += 1;
        match record::decode(rec) {
            Ok(r) => sink(r),
            // The checksum passed, so the writer produced these bytes; skip the record.
            Err(_) => stats.undecodable += 1,
        }
    };
    let from = match checkpoint::list(wal_dir)?.pop() {
        Some((seq, path)) => {
            stats.checkpoint = Some(seq);
            checkpoint::read(&path, |rec| handle(rec, &mut stats))?;
            // Segments the checkpoint covers may outlive it after a crash; they are not needed.
            for s in wal::list_segments(wal_dir)?.into_iter().filter(|&s| s <= seq) {
                let p = wal_dir.join(wal::segment_name(s));
                fs::remove_file(&p).map_err(|e| Error::io("remove WAL segment", &p, e))?;
            }
            seq + 1
        }
        None => 0,
    };
    let mut s = std::mem::take(&mut stats);
    let res = wal::replay_and_repair_from(wal_dir, from, |_, rec| handle(rec, &mut s));
    stats = s;
    stats.corruption = res?;
    Ok(stats)
}

/// How many messages ahead an applier starts loading the series a sample goes to, and then,
/// once the series is in cache, its open chunk.
const PREFETCH_SERIES_AHEAD: usize = 16;
const PREFETCH_CHUNK_AHEAD: usize = 8;

/// References per page of replay's maps: replay holds every series at once, so larger pages
/// than the head's cost little.
const REF_PAGE: usize = 64;

/// A message to the applier owning a series.
enum ShardMsg {
    /// From now on, reference `r` means this series.
    Series(u64, SeriesHandle),
    /// An in-order sample.
    Sample(u64, i64, f64),
    /// The start timestamp of the next `Sample` of this shard (sent just before it, so the
    /// common message stays small).
    NextSt(i64),
    /// An out-of-order sample.
    Ooo(u64, i64, f64),
}

/// The series and counters of one applier (or of serial replay).
#[derive(Default)]
struct Shard {
    handles: RefPages<SeriesHandle, REF_PAGE>,
    /// From a `NextSt` message, for the sample that follows it.
    next_st: i64,
    min_t: i64,
    max_t: i64,
    samples: u64,
    unknown: u64,
}

impl Shard {
    fn new() -> Self {
        Shard {
            min_t: i64::MAX,
            max_t: i64::MIN,
            ..Shard::default()
        }
    }

    /// Applies a batch, loading each sample's series and then its open chunk a few messages
    /// ahead: at a million series nearly every sample's series and chunk are out of cache, and
    /// waiting for them was most of an applier's time.
    fn apply_all(&mut self, head: &Head, batch: Vec<ShardMsg>) {
        let mut it = batch.into_iter();
        while let Some(msg) = it.next() {
            let ahead = it.as_slice();
            if let Some(ShardMsg::Sample(r, ..)) = ahead.get(PREFETCH_SERIES_AHEAD)
                && let Some(h) = self.handles.get(*r)
            {
                prefetch_series(h);
            }
            if let Some(ShardMsg::Sample(r, ..)) = ahead.get(PREFETCH_CHUNK_AHEAD)
                && let Some(h) = self.handles.get(*r)
            {
                prefetch_open_chunk(h);
            }
            self.apply(head, msg);
        }
    }

    fn apply(&mut self, head: &Head, msg: ShardMsg) {
        match msg {
            ShardMsg::Series(r, h) => {
                self.handles.insert(r, h);
            }
            ShardMsg::NextSt(st) => self.next_st = st,
            ShardMsg::Sample(r, t, v) => match self.handles.get(r) {
                Some(h) => {
                    self.samples += 1;
                    let st = std::mem::take(&mut self.next_st);
                    if head.replay_append(h, r, st, t, v) {
                        self.min_t = self.min_t.min(t);
                        self.max_t = self.max_t.max(t);
                    }
                }
                None => self.unknown += 1,
            },
            ShardMsg::Ooo(r, t, v) => match self.handles.get(r) {
                Some(h) => {
                    self.samples += 1;
                    head.replay_ooo(h, r, t, v);
                }
                None => self.unknown += 1,
            },
        }
    }

    /// Publishes the counters into the head and the report.
    fn finish(self, head: &Head, report: &mut OpenReport) {
        head.note_replayed_range(self.min_t, self.max_t);
        report.wal_samples += self.samples;
        head.metrics()
            .replay_unknown_refs
            .fetch_add(self.unknown, Ordering::Relaxed);
    }
}

/// Applies records in log order: series, metadata and tombstones directly, samples through
/// `route` (inline for serial replay, to an applier otherwise).
struct Dispatcher<'a> {
    head: &'a Head,
    /// Head chunks loaded from the chunk files, by series reference, until its series record
    /// attaches them.
    chunks: HashMap<u64, Vec<ChunkMeta>>,
    /// A series record whose labels already exist under another reference (possible after a
    /// crash between creating and logging) maps onto the existing series.
    remap: HashMap<u64, u64>,
    /// Per series, the end of the chunks attached from the head chunk files: its samples up to
    /// there are in those chunks (its appends would drop them), so they are not handed over.
    covered: RefPages<i64, REF_PAGE>,
}

impl Dispatcher<'_> {
    fn apply(&mut self, rec: Record, route: &mut impl FnMut(u64, ShardMsg)) {
        let head = self.head;
        match rec {
            Record::Series(series) => {
                for s in series {
                    let (r, h, created) = head.get_or_create(&s.labels, Some(s.r));
                    if r != s.r {
                        self.remap.insert(s.r, r);
                    }
                    if (created || r == s.r)
                        && let Some(end) = head.attach_chunks(&h, self.chunks.remove(&s.r).unwrap_or_default())
                    {
                        self.covered.insert(r, end);
                    }
                    if created {
                        route(r, ShardMsg::Series(r, h));
                    }
                }
            }
            Record::Samples(samples) => {
                for s in samples {
                    let r = self.map(s.r);
                    if self.covered.get(r).is_some_and(|&end| s.t <= end) {
                        continue;
                    }
                    route(r, ShardMsg::Sample(r, s.t, s.v));
                }
            }
            Record::StSamples(samples, sts) => {
                for (s, st) in samples.into_iter().zip(sts) {
                    let r = self.map(s.r);
                    if self.covered.get(r).is_some_and(|&end| s.t <= end) {
                        continue;
                    }
                    if st != 0 {
                        route(r, ShardMsg::NextSt(st));
                    }
                    route(r, ShardMsg::Sample(r, s.t, s.v));
                }
            }
            Record::Metadata(meta) => {
                for m in meta {
                    let r = self.map(m.r);
                    head.set_metadata(
                        r,
                        Metadata {
                            metric_type: MetricType::from_code(m.metric_type),
                            unit: m.unit,
                            help: m.help,
                        },
                    );
                }
            }
            Record::Tombstones(mut stones) => {
                for s in &mut stones {
                    s.r = self.map(s.r);
                }
                head.add_tombstones(&stones);
            }
            // Replayed whatever the window is now: they were accepted when logged.
            Record::OooSamples(samples) => {
                for s in samples {
                    let r = self.map(s.r);
                    route(r, ShardMsg::Ooo(r, s.t, s.v));
                }
            }
            // Other types (exemplars, histograms) are not read.
            Record::Unknown(_) => {}
        }
    }

    fn map(&self, r: u64) -> u64 {
        if self.remap.is_empty() {
            r
        } else {
            self.remap.get(&r).copied().unwrap_or(r)
        }
    }

    /// Counts the loaded chunks no series record claimed.
    fn finish(self) {
        // Chunks of series garbage-collected before the restart may share a file with live ones;
        // only those the head should still hold are unexpected.
        let floor = self.head.min_valid_floor();
        let orphans: usize = self.chunks.values().flatten().filter(|c| c.max_t >= floor).count();
        self.head
            .metrics()
            .replay_unknown_refs
            .fetch_add(orphans as u64, Ordering::Relaxed);
    }
}

/// Rebuilds the head from the newest checkpoint and the WAL segments after it. Samples of a
/// series at or before the end of its loaded chunks are already there and skipped, and so are
/// samples older than the newest block.
pub(crate) fn replay(
    head: &Head,
    wal_dir: &Path,
    chunks: HashMap<u64, Vec<ChunkMeta>>,
    report: &mut OpenReport,
    mode: ReplayMode,
) -> Result<(), Error> {
    checkpoint::remove_temporary(wal_dir)?;
    let mut dispatcher = Dispatcher {
        head,
        chunks,
        remap: HashMap::new(),
        covered: RefPages::default(),
    };
    let stats = match mode {
        ReplayMode::Serial => {
            let mut shard = Shard::new();
            let stats = read_records(wal_dir, |rec| {
                dispatcher.apply(rec, &mut |_, msg| shard.apply(head, msg));
            });
            shard.finish(head, report);
            stats?
        }
        ReplayMode::Parallel(n) => replay_parallel(head, wal_dir.to_path_buf(), &mut dispatcher, report, n.max(1))?,
    };
    dispatcher.finish();
    report.wal_records += stats.records;
    report.undecodable_records += stats.undecodable;
    report.checkpoint = stats.checkpoint;
    report.wal_corruption = stats.corruption;
    Ok(())
}

fn replay_parallel(
    head: &Head,
    wal_dir: PathBuf,
    dispatcher: &mut Dispatcher<'_>,
    report: &mut OpenReport,
    appliers: usize,
) -> Result<ReadStats, Error> {
    std::thread::scope(|scope| {
        let (rec_tx, rec_rx) = sync_channel::<Vec<Record>>(CHANNEL_DEPTH);
        let reader = scope.spawn(move || {
            let mut batch = Vec::with_capacity(RECORD_BATCH);
            let mut open = true;
            let stats = read_records(&wal_dir, |rec| {
                // A closed channel means the dispatcher stopped (a panic); the records are
                // dropped and the reading finishes so that the join reports it.
                if !open {
                    return;
                }
                batch.push(rec);
                if batch.len() >= RECORD_BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(RECORD_BATCH));
                    open = rec_tx.send(full).is_ok();
                }
            });
            if open && !batch.is_empty() {
                let _ = rec_tx.send(batch);
            }
            stats
        });
        let mut senders: Vec<SyncSender<Vec<ShardMsg>>> = Vec::with_capacity(appliers);
        let mut workers = Vec::with_capacity(appliers);
        for _ in 0..appliers {
            let (tx, rx): (SyncSender<Vec<ShardMsg>>, Receiver<Vec<ShardMsg>>) = sync_channel(CHANNEL_DEPTH);
            senders.push(tx);
            workers.push(scope.spawn(move || {
                let mut shard = Shard::new();
                for batch in rx {
                    shard.apply_all(head, batch);
                }
                shard
            }));
        }
        let mut pending: Vec<Vec<ShardMsg>> = (0..appliers).map(|_| Vec::with_capacity(SAMPLE_BATCH)).collect();
        let mut alive = true;
        for batch in rec_rx {
            for rec in batch {
                dispatcher.apply(rec, &mut |r, msg| {
                    let i = (r % appliers as u64) as usize;
                    pending[i].push(msg);
                    if pending[i].len() >= SAMPLE_BATCH && alive {
                        let full = std::mem::replace(&mut pending[i], Vec::with_capacity(SAMPLE_BATCH));
                        alive = senders[i].send(full).is_ok();
                    }
                });
            }
            if !alive {
                break;
            }
        }
        for (tx, rest) in senders.iter().zip(pending) {
            if !rest.is_empty() {
                let _ = tx.send(rest);
            }
        }
        drop(senders);
        for w in workers {
            w.join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
                .finish(head, report);
        }
        reader.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use watchfire_model::{MatchType, Matcher};

    use crate::test_util::{copy_dir, small_opts, write_churn as write};
    use crate::{Db, Options};

    fn opts(threads: usize) -> Options {
        Options {
            wal_replay_threads: threads,
            ..small_opts()
        }
    }

    fn state(src: &Path, threads: usize) -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src, dir.path());
        let db = Db::open(dir.path(), opts(threads)).unwrap();
        let r = db.open_report();
        let report = format!(
            "records={} samples={} undecodable={} checkpoint={:?} corruption={:?} unknown={}",
            r.wal_records,
            r.wal_samples,
            r.undecodable_records,
            r.checkpoint,
            r.wal_corruption,
            db.head()
                .metrics()
                .replay_unknown_refs
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        (db.head().replay_state(), report)
    }

    #[test]
    fn replay_with_churn_tombstones_segments_and_checkpoint_matches_serial() {
        let src = tempfile::tempdir().unwrap();
        let db = Db::open(src.path(), opts(1)).unwrap();
        write(&db, 0, 200, 0..40);
        let m = |v: &str| Matcher::new(MatchType::Equal, "__name__", v).unwrap();
        db.delete(50_000, 80_000, &[m("m1")]).unwrap();
        // Blocks, a checkpoint, and series garbage-collected from the head.
        let report = db.maintain().unwrap();
        assert!(report.checkpoint.is_some() && report.series_removed > 0, "{report:?}");
        // Series churned out come back under new references; more deletions.
        write(&db, 200, 600, 0..60);
        db.delete(300_000, 310_000, &[m("m2")]).unwrap();
        write(&db, 600, 900, 0..60);
        drop(db);
        let segments = crate::wal::list_segments(&src.path().join("wal")).unwrap();
        assert!(segments.len() >= 2, "{segments:?}");

        let (serial, serial_report) = state(src.path(), 1);
        assert!(serial.contains("tombstones=Tombstones { map: {"), "{serial}");
        assert!(serial_report.contains("checkpoint=Some("), "{serial_report}");
        for threads in [2, 3, 5] {
            let (parallel, report) = state(src.path(), threads);
            assert_eq!(report, serial_report, "threads={threads}");
            if parallel != serial {
                let diff = serial
                    .lines()
                    .zip(parallel.lines())
                    .find(|(a, b)| a != b)
                    .map(|(a, b)| format!("serial:   {a}\nparallel: {b}"));
                panic!("threads={threads}: the heads differ\n{diff:?}");
            }
        }
    }

    #[test]
    fn modes_from_threads() {
        use super::ReplayMode;
        assert_eq!(ReplayMode::from_threads(1), ReplayMode::Serial);
        assert_eq!(ReplayMode::from_threads(2), ReplayMode::Parallel(1));
        assert_eq!(ReplayMode::from_threads(5), ReplayMode::Parallel(4));
        let auto = ReplayMode::from_threads(0);
        match std::thread::available_parallelism().map_or(1, |n| n.get()) {
            1 => assert_eq!(auto, ReplayMode::Serial),
            n => assert_eq!(auto, ReplayMode::Parallel(n.min(4))),
        }
    }
}
