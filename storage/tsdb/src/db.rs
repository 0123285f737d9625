//! A data directory: the lock file, the blocks, `wal/` and `chunks_head/`; the replay that
//! rebuilds the head on open; and the maintenance the caller runs periodically
//! ([`Db::maintain`]): head compaction into blocks with WAL checkpointing, block compaction,
//! and retention. Layout and semantics follow upstream's `tsdb/db.go`; FORMAT.md describes the
//! bytes.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use watchfire_model::{Matcher, Timestamp};
use watchfire_storage::{self as storage, Appendable, Appender, Querier, Queryable, Storage, TsdbStatus};

use crate::Error;
use crate::block::{self, Block, BlockMetaCompaction, Source, write_block};
use crate::checkpoint::{self, CheckpointStats};
use crate::chunks_head::{ChunkDiskMapper, DEFAULT_MAX_FILE_SIZE};
use crate::head::{ChunkMeta, Head, HeadOptions, HeadPart};
use crate::querier::{BlockList, DbQuerier};
use crate::replay::{self, ReplayMode};
use crate::snapshot;
use crate::ulid::Ulid;
use crate::wal::{self, SyncPolicy, Wal, WalOptions};

const HOUR: i64 = 3600 * 1000;
const DAY: i64 = 24 * HOUR;

/// Options of a [`Db`].
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Head options; `chunk_range` is replaced by `block_range`, so head chunks never straddle
    /// a block boundary.
    pub head: HeadOptions,
    /// WAL segment size in bytes (128 MiB).
    pub wal_segment_size: usize,
    /// When the WAL fsyncs; see FORMAT.md.
    pub wal_sync: SyncPolicy,
    /// Snappy-compress WAL records and checkpoints (upstream `--storage.tsdb.wal-compression`,
    /// default on). A WAL written either way is read either way, so this may change between
    /// runs.
    pub wal_compression: bool,
    /// Threads replaying the WAL on open: 1 replays on the opening thread; n ≥ 2 decodes on one
    /// thread and appends samples on n − 1 others, sharded by series, while the opening thread
    /// applies series records and dispatches (the head ends up the same either way); 0, the
    /// default, picks from the number of CPUs (serial on one).
    pub wal_replay_threads: usize,
    /// Write a head snapshot at [`Db::shutdown`] so that the next open restores the head from
    /// it instead of replaying the WAL (upstream's `memory-snapshot-on-shutdown`, opt-in there).
    /// A snapshot is used only if the WAL and head chunk files are unchanged since; see
    /// FORMAT.md, "Head snapshot".
    pub snapshot_on_shutdown: bool,
    /// Maximum size of one head chunk file (128 MiB).
    pub head_chunk_file_size: u64,
    /// Range of the blocks cut from the head, in milliseconds (upstream
    /// `--storage.tsdb.min-block-duration`, 2h). Blocks are aligned to multiples of it.
    pub block_range: i64,
    /// Largest range block compaction produces (upstream `--storage.tsdb.max-block-duration`);
    /// `None` means upstream's default, a tenth of `retention_time` capped at 31 days.
    pub max_block_duration: Option<i64>,
    /// Blocks whose end is this much older than the end of the newest block are deleted
    /// (`storage.tsdb.retention.time`, 15 days); 0 disables.
    pub retention_time: i64,
    /// Hard cap on the bytes of blocks, WAL and head chunk files together
    /// (`storage.tsdb.retention.size`); the oldest blocks go first. 0 disables. See FORMAT.md,
    /// "Retention", for what happens when the WAL alone is larger.
    pub retention_size: u64,
    /// Also verify every chunk checksum of every block on open (a full read of the data);
    /// otherwise chunk checksums are checked when the chunk is read.
    pub verify_chunks_on_open: bool,
    /// Maximum size of one block chunk segment (512 MiB).
    pub block_chunk_segment_size: u64,
    /// Write the chunks of new blocks in Watchfire's packed encoding (the default; FORMAT.md,
    /// "Packed chunk"), or, when false, in upstream's XOR encoding, which Prometheus and its
    /// tools can read. Either setting reads blocks written with the other.
    pub packed_block_chunks: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            head: HeadOptions::default(),
            wal_segment_size: wal::DEFAULT_SEGMENT_SIZE,
            wal_sync: SyncPolicy::SegmentBoundary,
            wal_compression: true,
            wal_replay_threads: 0,
            snapshot_on_shutdown: true,
            head_chunk_file_size: DEFAULT_MAX_FILE_SIZE,
            block_range: 2 * HOUR,
            max_block_duration: None,
            retention_time: 15 * DAY,
            retention_size: 0,
            verify_chunks_on_open: false,
            block_chunk_segment_size: crate::chunks::DEFAULT_SEGMENT_SIZE,
            packed_block_chunks: true,
        }
    }
}

impl Options {
    /// The compaction ranges: `block_range` × 3^i (upstream `ExponentialBlockRanges(2h, 10,
    /// 3)`: 2h, 6h, 18h, 54h, ...), cut at the maximum block duration.
    pub fn block_ranges(&self) -> Vec<i64> {
        let max = self
            .max_block_duration
            .unwrap_or_else(|| {
                if self.retention_time > 0 {
                    (self.retention_time / 10).min(31 * DAY)
                } else {
                    31 * DAY
                }
            })
            .max(self.block_range);
        let mut out = Vec::new();
        let mut r = self.block_range.max(1);
        for _ in 0..10 {
            if r > max {
                break;
            }
            out.push(r);
            r = r.saturating_mul(3);
        }
        out
    }
}

/// A block directory that failed verification and was renamed aside.
#[derive(Clone, Debug)]
pub struct CorruptBlock {
    /// The original directory.
    pub dir: PathBuf,
    /// Where it is now (`<ulid>.corrupted`).
    pub moved_to: PathBuf,
    /// Why it was refused.
    pub error: String,
}

/// What opening found and repaired.
#[derive(Clone, Debug, Default)]
pub struct OpenReport {
    /// A torn or corrupt WAL tail that was cut off.
    pub wal_corruption: Option<wal::Corruption>,
    /// A damaged head chunk file that was cut off.
    pub chunk_damage: Option<crate::chunks_head::Damage>,
    /// Records replayed (checkpoint included).
    pub wal_records: u64,
    /// Samples replayed from the WAL (those not already in a chunk file).
    pub wal_samples: u64,
    /// Chunks loaded from chunk files.
    pub mmapped_chunks: u64,
    /// Records whose checksum passed but whose payload did not decode; skipped.
    pub undecodable_records: u64,
    /// The checkpoint replay started from (or that the WAL held when the head snapshot was
    /// written).
    pub checkpoint: Option<u32>,
    /// Series restored from the head snapshot of a clean shutdown, when one was used; the WAL
    /// was not replayed then.
    pub snapshot_series: Option<u64>,
    /// Why a head snapshot found on open was not used (the WAL was replayed instead).
    pub snapshot_skipped: Option<String>,
    /// Time spent loading the head chunk files and replaying the WAL (upstream
    /// `prometheus_tsdb_data_replay_duration_seconds`).
    pub replay_duration: std::time::Duration,
    /// Blocks opened.
    pub blocks: usize,
    /// Blocks moved aside because they failed verification.
    pub corrupted_blocks: Vec<CorruptBlock>,
    /// Blocks deleted because a compacted block holding their data exists (a crash after the
    /// compaction, before the deletion).
    pub removed_parent_blocks: Vec<Ulid>,
}

/// What one [`Db::maintain`] did.
#[derive(Clone, Debug, Default)]
pub struct MaintainReport {
    /// Level-1 blocks written from the head.
    pub head_blocks: Vec<Ulid>,
    /// Blocks written from out-of-order samples of ranges older than the head's (hint
    /// `from-out-of-order`; block compaction merges them with the blocks they overlap).
    pub ooo_blocks: Vec<Ulid>,
    /// Blocks written by block compaction.
    pub compacted_blocks: Vec<Ulid>,
    /// Blocks deleted by time retention.
    pub deleted_by_time: Vec<Ulid>,
    /// Blocks deleted by size retention.
    pub deleted_by_size: Vec<Ulid>,
    /// The last WAL checkpoint written.
    pub checkpoint: Option<CheckpointStats>,
    /// Series garbage-collected from the head.
    pub series_removed: u64,
    /// The WAL and head chunk files alone exceed `retention_size`.
    pub size_limit_exceeded: bool,
}

/// Counters of the database beyond the head's; names follow upstream's self-metrics.
#[derive(Debug, Default)]
pub struct DbMetrics {
    /// `prometheus_tsdb_compactions_total`: blocks written (head and block compactions).
    pub compactions: AtomicU64,
    /// `prometheus_tsdb_compactions_failed_total`
    pub compactions_failed: AtomicU64,
    /// `prometheus_tsdb_head_truncations_total`
    pub head_truncations: AtomicU64,
    /// `prometheus_tsdb_checkpoint_creations_total`
    pub checkpoints: AtomicU64,
    /// Blocks moved aside as corrupted on open.
    pub block_corruptions: AtomicU64,
    /// `prometheus_tsdb_time_retentions_total`: blocks deleted by time retention.
    pub time_retentions: AtomicU64,
    /// `prometheus_tsdb_size_retentions_total`: blocks deleted by size retention.
    pub size_retentions: AtomicU64,
    /// Maintenance runs that found the WAL and head chunk files alone over the size cap.
    pub size_limit_overflows: AtomicU64,
}

/// An open data directory.
#[derive(Debug)]
pub struct Db {
    head: Arc<Head>,
    dir: PathBuf,
    opts: Options,
    report: OpenReport,
    blocks: BlockList,
    /// Serialises maintenance, deletion and snapshots (appends and queries never wait on it).
    maintenance: Mutex<()>,
    metrics: DbMetrics,
    wal_notify: Arc<wal::WalNotify>,
    _lock: File,
}

/// Whether an error opening a block means its bytes are bad (rather than, say, too many open
/// files).
fn is_damage(e: &Error) -> bool {
    match e {
        Error::Corruption { .. } => true,
        Error::Io { source, .. } => matches!(
            source.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
        ),
        _ => false,
    }
}

/// End of the aligned range of `width` holding `t`.
fn range_end(t: i64, width: i64) -> i64 {
    t.div_euclid(width) * width + width
}

impl Db {
    /// Opens (creating if needed) the data directory `dir`: takes its lock, opens the blocks
    /// (moving aside any that fail verification), loads the head chunk files, replays the
    /// newest WAL checkpoint and the segments after it, repairs a torn tail, and starts a new
    /// WAL segment. Damage is repaired, counted and described in [`Db::open_report`]; it never
    /// stops the open.
    pub fn open(dir: &Path, opts: Options) -> Result<Db, Error> {
        fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io("open lock file", &lock_path, e))?;
        lock.try_lock().map_err(|_| Error::Locked(dir.to_path_buf()))?;

        let mut report = OpenReport::default();
        let metrics = DbMetrics::default();
        let blocks = open_blocks(dir, opts.verify_chunks_on_open, &mut report, &metrics)?;
        let mut head_opts = opts.head;
        head_opts.chunk_range = opts.block_range.max(1);

        let replay_start = std::time::Instant::now();
        // Blocks of out-of-order samples do not move the in-order floor (upstream ignores them
        // for the head's minimum valid time too).
        let min_valid = blocks
            .iter()
            .filter(|b| !b.meta().compaction.from_out_of_order())
            .map(|b| b.max_time())
            .max();
        let new_head = |report: &mut OpenReport| -> Result<(Head, HashMap<u64, Vec<ChunkMeta>>), Error> {
            let (mapper, loaded, damage) = ChunkDiskMapper::open(&dir.join("chunks_head"), opts.head_chunk_file_size)?;
            report.mmapped_chunks = loaded.len() as u64;
            let mut by_series: HashMap<u64, Vec<ChunkMeta>> = HashMap::new();
            for c in loaded {
                by_series.entry(c.series_ref).or_default().push(ChunkMeta {
                    r: c.chunk_ref,
                    min_t: c.min_t,
                    max_t: c.max_t,
                });
            }
            let head = Head::new(head_opts, None, Some(mapper));
            if let Some(end) = min_valid {
                head.set_min_valid(end);
            }
            if let Some(d) = damage {
                head.metrics().mmap_chunk_corruptions.fetch_add(1, Ordering::Relaxed);
                report.chunk_damage = Some(d);
            }
            Ok((head, by_series))
        };
        let (mut head, mut by_series) = new_head(&mut report)?;

        let wal_dir = dir.join("wal");
        fs::create_dir_all(&wal_dir).map_err(|e| Error::io("create directory", &wal_dir, e))?;
        checkpoint::remove_temporary(&wal_dir)?;
        // The snapshot of a clean shutdown, if it belongs to the WAL and chunk files found.
        let key = snapshot::Key::current(&wal_dir, head.chunks.disk.as_ref())?;
        let (loaded, touched) = if report.chunk_damage.is_none() {
            snapshot::load(dir, &head, &key, &mut by_series)?
        } else {
            snapshot::discard(dir)?;
            (snapshot::Loaded::Skipped("a head chunk file was damaged".into()), false)
        };
        match loaded {
            snapshot::Loaded::Restored { series } => {
                report.snapshot_series = Some(series);
                report.checkpoint = key.checkpoint();
                // Chunks no restored series claimed, as replay counts them.
                let floor = head.min_valid_floor();
                let orphans: usize = by_series.values().flatten().filter(|c| c.max_t >= floor).count();
                head.metrics()
                    .replay_unknown_refs
                    .fetch_add(orphans as u64, Ordering::Relaxed);
            }
            other => {
                if let snapshot::Loaded::Skipped(why) = other {
                    report.snapshot_skipped = Some(why);
                }
                if touched {
                    // A snapshot that failed half-way through its series: start again.
                    drop(head);
                    (head, by_series) = new_head(&mut report)?;
                }
                replay::replay(
                    &head,
                    &wal_dir,
                    by_series,
                    &mut report,
                    ReplayMode::from_threads(opts.wal_replay_threads),
                )?;
            }
        }
        let head = Arc::new(head);
        report.replay_duration = replay_start.elapsed();
        if report.wal_corruption.is_some() {
            head.metrics().wal_corruptions.fetch_add(1, Ordering::Relaxed);
        }
        let w = Wal::create_after(
            &wal_dir,
            WalOptions {
                segment_size: opts.wal_segment_size,
                sync: opts.wal_sync,
                compress: opts.wal_compression,
            },
            report.checkpoint,
        )?;
        let wal_notify = w.notifier();
        head.commit.lock().unwrap_or_else(|e| e.into_inner()).wal = Some(w);
        report.blocks = blocks.len();
        Ok(Db {
            head,
            dir: dir.to_path_buf(),
            opts,
            report,
            blocks: Arc::new(RwLock::new(Arc::new(blocks))),
            maintenance: Mutex::new(()),
            metrics,
            wal_notify,
            _lock: lock,
        })
    }

    /// The head.
    pub fn head(&self) -> &Arc<Head> {
        &self.head
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// What opening found and repaired.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// Database counters (the head's are in [`Head::metrics`]).
    pub fn metrics(&self) -> &DbMetrics {
        &self.metrics
    }

    /// The open blocks, oldest first.
    pub fn blocks(&self) -> Vec<Arc<Block>> {
        self.blocks.read().unwrap_or_else(|e| e.into_inner()).to_vec()
    }

    /// The WAL directory (`<dir>/wal`), for readers following it ([`crate::wal_reader`]).
    pub fn wal_dir(&self) -> PathBuf {
        self.dir.join("wal")
    }

    /// Bumped after every WAL write and segment cut: what WAL followers wait on.
    pub fn wal_notify(&self) -> Arc<wal::WalNotify> {
        self.wal_notify.clone()
    }

    /// Bytes of the WAL directory (segments and checkpoints).
    pub fn wal_size(&self) -> u64 {
        wal::dir_size(&self.dir.join("wal"))
    }

    /// Bytes of the head chunk files.
    pub fn head_chunks_size(&self) -> u64 {
        self.head.chunks.disk.as_ref().map_or(0, |d| d.size())
    }

    /// Bytes on disk: blocks, WAL and head chunk files (what `retention_size` caps).
    pub fn disk_size(&self) -> u64 {
        self.blocks().iter().map(|b| b.size()).sum::<u64>() + self.wal_size() + self.head_chunks_size()
    }

    fn set_blocks(&self, f: impl FnOnce(&mut Vec<Arc<Block>>)) {
        let mut guard = self.blocks.write().unwrap_or_else(|e| e.into_inner());
        let mut list = guard.to_vec();
        f(&mut list);
        list.sort_by_key(|b| (b.min_time(), b.max_time(), b.ulid()));
        *guard = Arc::new(list);
    }

    /// Runs the periodic work: cuts blocks from the head while it spans more than 1.5 block
    /// ranges (truncating the head, checkpointing the WAL, deleting old head chunk files),
    /// compacts blocks, and applies retention. Safe to call from a background thread while
    /// appends and queries go on; concurrent calls run one after the other.
    pub fn maintain(&self) -> Result<MaintainReport, Error> {
        let _m = self.maintenance.lock().unwrap_or_else(|e| e.into_inner());
        let mut report = MaintainReport::default();
        if self.head.is_closed() {
            return Ok(report);
        }
        let res = self
            .compact_head(&mut report)
            .and_then(|_| self.compact_blocks(&mut report))
            .and_then(|_| self.apply_retention(&mut report));
        if res.is_err() {
            self.metrics.compactions_failed.fetch_add(1, Ordering::Relaxed);
        }
        res.map(|_| report)
    }

    /// Alias of [`maintain`](Self::maintain), upstream's name.
    pub fn compact(&self) -> Result<MaintainReport, Error> {
        self.maintain()
    }

    fn open_new_block(&self, meta: &block::BlockMeta) -> Result<Arc<Block>, Error> {
        self.metrics.compactions.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(Block::open(&self.dir.join(meta.ulid.to_string()), false)?))
    }

    fn compact_head(&self, report: &mut MaintainReport) -> Result<(), Error> {
        let range = self.opts.block_range.max(1);
        loop {
            let (min, max) = (self.head.min_time(), self.head.max_time());
            if min == i64::MAX || max == i64::MIN || max.saturating_sub(min) <= range / 2 * 3 {
                return Ok(());
            }
            let maxt = range_end(min, range);
            // From here on no in-order append can land in the range being written.
            self.head.set_min_valid(maxt);
            // Out-of-order appends still can: what the head holds of them now is sealed for
            // this compaction, and the WAL cut at the same moment, so that the checkpoint
            // covers exactly the sealed ones (FORMAT.md, "Out-of-order samples").
            let (sealed, cut) = {
                let mut state = self.head.commit.lock().unwrap_or_else(|e| e.into_inner());
                let sealed = self.head.seal_ooo_locked();
                match state.wal.as_mut().map(|w| w.cut_segment()) {
                    Some(Ok(seq)) => (sealed, Some(seq)),
                    Some(Err(e)) => {
                        state.broken = Some(e.to_string());
                        return Err(e);
                    }
                    None => (sealed, None),
                }
            };
            // The block reaches down to the aligned start of its range when sealed
            // out-of-order samples lie there.
            let range_start = maxt - range;
            let mint = sealed
                .iter()
                .filter(|&&(lo, hi)| hi >= range_start && lo < maxt)
                .map(|&(lo, _)| lo.max(range_start))
                .fold(min, i64::min);
            let meta = write_block(
                &self.dir,
                mint,
                maxt,
                &[Source::Head(&self.head, HeadPart::Compaction)],
                BlockMetaCompaction {
                    level: 1,
                    ..Default::default()
                },
                self.opts.block_chunk_segment_size,
                self.opts.packed_block_chunks,
            )?;
            if let Some(meta) = meta {
                let b = self.open_new_block(&meta)?;
                // Published before the head lets go of the data; see `DbQuerier::select`.
                self.set_blocks(|l| l.push(b));
                report.head_blocks.push(meta.ulid);
            }
            // Sealed out-of-order samples of older ranges: a block per aligned range, which
            // overlaps the blocks already there and is merged with them by block compaction.
            let mut older: BTreeSet<i64> = BTreeSet::new();
            for &(lo, hi) in sealed.iter().filter(|&&(lo, _)| lo < range_start) {
                let mut start = lo.div_euclid(range) * range;
                while start < range_start && start <= hi {
                    older.insert(start);
                    start += range;
                }
            }
            for start in older {
                let meta = write_block(
                    &self.dir,
                    start,
                    start + range,
                    &[Source::Head(&self.head, HeadPart::SealedOoo)],
                    BlockMetaCompaction {
                        level: 1,
                        hints: vec![block::FROM_OUT_OF_ORDER.to_string()],
                        ..Default::default()
                    },
                    self.opts.block_chunk_segment_size,
                    self.opts.packed_block_chunks,
                )?;
                if let Some(meta) = meta {
                    let b = self.open_new_block(&meta)?;
                    self.set_blocks(|l| l.push(b));
                    report.ooo_blocks.push(meta.ulid);
                }
            }
            self.truncate_head(maxt, cut, report)?;
        }
    }

    /// Drops data before `mint` from the head, checkpoints the WAL segments before `cut` (the
    /// segment started when the compaction began) and deletes head chunk files holding only
    /// older chunks.
    fn truncate_head(&self, mint: i64, cut: Option<u32>, report: &mut MaintainReport) -> Result<(), Error> {
        let stones_floor = {
            let _state = self.head.commit.lock().unwrap_or_else(|e| e.into_inner());
            let (removed, stones_floor) = self.head.truncate_locked(mint);
            report.series_removed += removed;
            stones_floor
        };
        self.metrics.head_truncations.fetch_add(1, Ordering::Relaxed);
        if let Some(d) = &self.head.chunks.disk {
            d.truncate(mint)?;
        }
        if let Some(seq) = cut
            && seq > 0
        {
            let head = self.head.clone();
            let stats = checkpoint::checkpoint(
                &self.dir.join("wal"),
                seq - 1,
                |r| head.series(r).is_some(),
                mint,
                stones_floor,
                self.opts.wal_compression,
            )?;
            self.metrics.checkpoints.fetch_add(1, Ordering::Relaxed);
            report.checkpoint = Some(stats);
        }
        Ok(())
    }

    /// Upstream's `LeveledCompactor.plan`: overlapping blocks first, then the oldest run of
    /// blocks filling a larger range (never the newest block), then a block more than 5%
    /// deleted.
    fn plan(&self, blocks: &[Arc<Block>]) -> Vec<Arc<Block>> {
        let mut bs: Vec<Arc<Block>> = blocks.to_vec();
        bs.sort_by_key(|b| (b.min_time(), b.max_time(), b.ulid()));
        // Overlaps.
        let mut group: Vec<Arc<Block>> = Vec::new();
        let mut end = i64::MIN;
        for b in &bs {
            if !group.is_empty() && b.min_time() < end {
                group.push(b.clone());
                end = end.max(b.max_time());
                continue;
            }
            if group.len() > 1 {
                return group;
            }
            group = vec![b.clone()];
            end = b.max_time();
        }
        if group.len() > 1 {
            return group;
        }
        if bs.len() < 2 {
            return Vec::new();
        }
        bs.pop();
        let ranges = self.opts.block_ranges();
        if let Some(high) = bs.last().map(|b| b.min_time()) {
            for &r in ranges.iter().skip(1) {
                for part in split_by_range(&bs, r) {
                    let (mint, maxt) = (part[0].min_time(), part[part.len() - 1].max_time());
                    if part.len() > 1 && (maxt - mint == r || maxt <= high) {
                        return part;
                    }
                }
            }
        }
        let mid = ranges.get(ranges.len() / 2).copied().unwrap_or(self.opts.block_range);
        for b in bs.iter().rev() {
            let m = b.meta();
            if m.max_time - m.min_time < mid {
                if m.stats.num_tombstones > 0 && m.stats.num_tombstones >= m.stats.num_series {
                    return vec![b.clone()];
                }
                break;
            }
            if m.stats.num_tombstones as f64 / (m.stats.num_series + 1) as f64 > 0.05 {
                return vec![b.clone()];
            }
        }
        Vec::new()
    }

    fn compact_blocks(&self, report: &mut MaintainReport) -> Result<(), Error> {
        // Each round removes at least one block or merges overlaps, so this ends; the bound is
        // a guard against a planner bug turning into a busy loop.
        for _ in 0..64 {
            let plan = self.plan(&self.blocks());
            if plan.is_empty() {
                return Ok(());
            }
            if let Some(u) = self.rewrite(&plan, None)? {
                report.compacted_blocks.push(u);
            }
        }
        Ok(())
    }

    /// Writes the data of `parents` as one block (at `level`, or one above the highest
    /// parent), swaps it in for them and deletes them.
    fn rewrite(&self, parents: &[Arc<Block>], level: Option<u32>) -> Result<Option<Ulid>, Error> {
        let metas: Vec<block::BlockMeta> = parents.iter().map(|b| b.meta()).collect();
        let mint = metas.iter().map(|m| m.min_time).min().unwrap_or(0);
        let maxt = metas.iter().map(|m| m.max_time).max().unwrap_or(0);
        let sources: BTreeSet<Ulid> = metas
            .iter()
            .flat_map(|m| m.compaction.sources.iter().copied())
            .collect();
        let compaction = BlockMetaCompaction {
            level: level.unwrap_or_else(|| metas.iter().map(|m| m.compaction.level).max().unwrap_or(0) + 1),
            sources: sources.into_iter().collect(),
            parents: parents.iter().map(|b| b.desc()).collect(),
            // Still only out-of-order samples when every parent held only those.
            hints: if metas.iter().all(|m| m.compaction.from_out_of_order()) {
                vec![block::FROM_OUT_OF_ORDER.to_string()]
            } else {
                Vec::new()
            },
        };
        let srcs: Vec<Source<'_>> = parents.iter().map(Source::Block).collect();
        let meta = write_block(
            &self.dir,
            mint,
            maxt,
            &srcs,
            compaction,
            self.opts.block_chunk_segment_size,
            self.opts.packed_block_chunks,
        )?;
        let new = match &meta {
            Some(m) => Some(self.open_new_block(m)?),
            None => None,
        };
        let gone: BTreeSet<Ulid> = metas.iter().map(|m| m.ulid).collect();
        self.set_blocks(|l| {
            l.retain(|b| !gone.contains(&b.ulid()));
            l.extend(new);
        });
        for b in parents {
            block::remove_block_dir(b.dir())?;
        }
        Ok(meta.map(|m| m.ulid))
    }

    fn delete_blocks(&self, victims: &[Arc<Block>]) -> Result<(), Error> {
        let gone: BTreeSet<Ulid> = victims.iter().map(|b| b.ulid()).collect();
        self.set_blocks(|l| l.retain(|b| !gone.contains(&b.ulid())));
        for b in victims {
            block::remove_block_dir(b.dir())?;
        }
        Ok(())
    }

    /// Upstream's `BeyondTimeRetention` and `BeyondSizeRetention`, except that the size cap
    /// counts the WAL and head chunk files and is never exceeded by blocks.
    fn apply_retention(&self, report: &mut MaintainReport) -> Result<(), Error> {
        let mut bs = self.blocks();
        bs.sort_by_key(|b| std::cmp::Reverse(b.max_time()));
        if self.opts.retention_time > 0
            && let Some(newest) = bs.first().map(|b| b.max_time())
        {
            let cut = bs
                .iter()
                .enumerate()
                .position(|(i, b)| i > 0 && newest.saturating_sub(b.max_time()) >= self.opts.retention_time);
            if let Some(i) = cut {
                let victims: Vec<Arc<Block>> = bs.split_off(i);
                self.delete_blocks(&victims)?;
                self.metrics
                    .time_retentions
                    .fetch_add(victims.len() as u64, Ordering::Relaxed);
                report.deleted_by_time.extend(victims.iter().map(|b| b.ulid()));
            }
        }
        if self.opts.retention_size > 0 {
            let cap = self.opts.retention_size;
            let base = self.wal_size() + self.head_chunks_size();
            if base > cap {
                report.size_limit_exceeded = true;
                self.metrics.size_limit_overflows.fetch_add(1, Ordering::Relaxed);
            }
            let mut total = base;
            let cut = bs.iter().position(|b| {
                total += b.size();
                total > cap
            });
            if let Some(i) = cut {
                let victims: Vec<Arc<Block>> = bs.split_off(i);
                self.delete_blocks(&victims)?;
                self.metrics
                    .size_retentions
                    .fetch_add(victims.len() as u64, Ordering::Relaxed);
                report.deleted_by_size.extend(victims.iter().map(|b| b.ulid()));
            }
        }
        Ok(())
    }

    /// Deletes the samples in `[mint, maxt]` of the series matching `matchers`: tombstones
    /// are added to the blocks (persisted in their `tombstones` files) and to the head (logged
    /// to the WAL). Queries stop returning the samples at once; the bytes go when the blocks
    /// are rewritten ([`clean_tombstones`](Self::clean_tombstones), or compaction) and when
    /// the head range is compacted. Returns the number of (series, block or head) pairs
    /// affected.
    pub fn delete(&self, mint: Timestamp, maxt: Timestamp, matchers: &[Matcher]) -> Result<u64, Error> {
        let _m = self.maintenance.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        for b in self.blocks() {
            n += b.delete(mint, maxt, matchers)?;
        }
        n += self.head.delete(mint, maxt, matchers)?;
        Ok(n)
    }

    /// Rewrites every block that has tombstones without the deleted samples (a block left
    /// empty is removed). Returns the ids of the new blocks.
    pub fn clean_tombstones(&self) -> Result<Vec<Ulid>, Error> {
        let _m = self.maintenance.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for b in self.blocks() {
            if b.tombstones().is_empty() {
                continue;
            }
            let level = b.meta().compaction.level;
            if let Some(u) = self.rewrite(std::slice::from_ref(&b), Some(level))? {
                out.push(u);
            }
        }
        Ok(out)
    }

    /// Writes a consistent copy of the database into `dir` (which must not hold blocks of the
    /// same ids): every block hard-linked, and with `with_head` the head written as one more
    /// block. Returns the ids of the blocks in the snapshot.
    pub fn snapshot(&self, dir: &Path, with_head: bool) -> Result<Vec<Ulid>, Error> {
        let _m = self.maintenance.lock().unwrap_or_else(|e| e.into_inner());
        fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        let mut out = Vec::new();
        for b in self.blocks() {
            block::link_block(&b, dir)?;
            out.push(b.ulid());
        }
        let (mut min, mut max) = (self.head.min_time(), self.head.max_time());
        if let Some((lo, hi)) = self.head.ooo_bounds() {
            (min, max) = (min.min(lo), if max == i64::MIN { hi } else { max.max(hi) });
        }
        if with_head && min != i64::MAX && max != i64::MIN {
            let meta = write_block(
                dir,
                min,
                max.saturating_add(1),
                &[Source::Head(&self.head, HeadPart::All)],
                BlockMetaCompaction {
                    level: 1,
                    ..Default::default()
                },
                self.opts.block_chunk_segment_size,
                self.opts.packed_block_chunks,
            )?;
            out.extend(meta.map(|m| m.ulid));
        }
        wal::sync_dir(dir)?;
        Ok(out)
    }

    /// Sets `storage.tsdb.out_of_order_time_window` (milliseconds; 0 refuses out-of-order
    /// samples) for appends from now on, as a configuration reload does upstream.
    pub fn set_out_of_order_time_window(&self, ms: i64) {
        self.head.set_out_of_order_time_window(ms);
    }

    /// [`shutdown`](Self::shutdown), then releases the directory.
    pub fn close(self) -> Result<(), Error> {
        self.shutdown().map(|_| ())
    }

    /// Waits for running maintenance, refuses appends from then on, and writes buffered chunks
    /// and fsyncs the WAL and the active chunk file. Queries still work. For a database shared
    /// with others at shutdown: whoever still holds it cannot commit anything more, so nothing
    /// acknowledged is left outside the WAL. The directory stays locked until the last holder
    /// drops it.
    ///
    /// With [`Options::snapshot_on_shutdown`] it then writes the head snapshot the next open
    /// restores instead of replaying the WAL. Returns whether it wrote one (not when the head
    /// holds out-of-order samples, which only replay restores).
    pub fn shutdown(&self) -> Result<bool, Error> {
        let _m = self.maintenance.lock().unwrap_or_else(|e| e.into_inner());
        self.head.close()?;
        if !self.opts.snapshot_on_shutdown {
            return Ok(false);
        }
        let key = snapshot::Key::current(&self.wal_dir(), self.head.chunks.disk.as_ref())?;
        snapshot::write(&self.dir, &self.head, &key)
    }

    /// Calls `notify` after each commit that leaves the head holding more than one and a half
    /// block ranges, when [`maintain`](Self::maintain) would cut a block (upstream's appender
    /// wakes the compaction loop the same way). Set once.
    pub fn on_block_due(&self, notify: Box<dyn Fn() + Send + Sync>) {
        self.head.on_block_due(self.opts.block_range.max(1) / 2 * 3, notify);
    }
}

/// Upstream `splitByRange`: groups of consecutive blocks that fall into the same aligned range
/// of width `r`; blocks that span more than one such range are skipped.
fn split_by_range(bs: &[Arc<Block>], r: i64) -> Vec<Vec<Arc<Block>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bs.len() {
        let t0 = bs[i].min_time().div_euclid(r) * r;
        if bs[i].max_time() > t0 + r {
            i += 1;
            continue;
        }
        let mut group = Vec::new();
        while i < bs.len() && bs[i].max_time() <= t0 + r {
            group.push(bs[i].clone());
            i += 1;
        }
        if !group.is_empty() {
            out.push(group);
        }
    }
    out
}

/// Opens the blocks of `dir`: removes leftovers of interrupted writes and deletions, moves
/// aside blocks that fail verification, and deletes blocks a compacted block replaced.
fn open_blocks(
    dir: &Path,
    verify_chunks: bool,
    report: &mut OpenReport,
    metrics: &DbMetrics,
) -> Result<Vec<Arc<Block>>, Error> {
    let mut blocks: Vec<Arc<Block>> = Vec::new();
    for e in fs::read_dir(dir).map_err(|e| Error::io("read directory", dir, e))? {
        let e = e.map_err(|e| Error::io("read directory", dir, e))?;
        let path = e.path();
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.ends_with(block::TMP_CREATION_SUFFIX) || name.ends_with(block::TMP_DELETION_SUFFIX) {
            fs::remove_dir_all(&path).map_err(|e| Error::io("remove unfinished block", &path, e))?;
            continue;
        }
        if name.parse::<Ulid>().is_err() || !path.is_dir() {
            continue;
        }
        match Block::open(&path, verify_chunks) {
            Ok(b) => blocks.push(Arc::new(b)),
            Err(err) if is_damage(&err) => {
                let mut moved_to = dir.join(format!("{name}{}", block::CORRUPTED_SUFFIX));
                let mut k = 1;
                while moved_to.exists() {
                    moved_to = dir.join(format!("{name}{}.{k}", block::CORRUPTED_SUFFIX));
                    k += 1;
                }
                fs::rename(&path, &moved_to).map_err(|e| Error::io("move corrupted block aside", &path, e))?;
                metrics.block_corruptions.fetch_add(1, Ordering::Relaxed);
                report.corrupted_blocks.push(CorruptBlock {
                    dir: path,
                    moved_to,
                    error: err.to_string(),
                });
            }
            Err(err) => return Err(err),
        }
    }
    let parents: BTreeSet<Ulid> = blocks
        .iter()
        .flat_map(|b| b.meta().compaction.parents.iter().map(|p| p.ulid).collect::<Vec<_>>())
        .collect();
    let (gone, mut keep): (Vec<Arc<Block>>, Vec<Arc<Block>>) =
        blocks.into_iter().partition(|b| parents.contains(&b.ulid()));
    for b in gone {
        block::remove_block_dir(b.dir())?;
        report.removed_parent_blocks.push(b.ulid());
    }
    if !report.corrupted_blocks.is_empty() {
        wal::sync_dir(dir)?;
    }
    keep.sort_by_key(|b| (b.min_time(), b.max_time(), b.ulid()));
    Ok(keep)
}

impl Queryable for Db {
    fn querier(&self, mint: Timestamp, maxt: Timestamp) -> storage::Result<Box<dyn Querier>> {
        Ok(Box::new(DbQuerier {
            head: self.head.clone(),
            blocks: self.blocks.clone(),
            mint,
            maxt,
        }))
    }
}

impl Appendable for Db {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(self.head.appender())
    }
}

impl Storage for Db {
    fn start_time(&self) -> Timestamp {
        let first = self.blocks().first().map_or(i64::MAX, |b| b.min_time());
        let ooo = self.head.ooo_bounds().map_or(i64::MAX, |(min, _)| min);
        first.min(self.head.min_time()).min(ooo)
    }

    fn tsdb_status(&self, limit: usize) -> storage::Result<TsdbStatus> {
        Ok(self.head.status(limit))
    }
}
