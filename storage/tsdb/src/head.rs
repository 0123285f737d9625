//! The head: every series with its recent samples, in memory except for full chunks, which live
//! in the chunk store (memory-mapped files when the head belongs to a [`crate::Db`]).
//!
//! Series live in two striped maps, by reference and by label hash (upstream `stripeSeries`).
//! Each series keeps one open XOR chunk on the heap and the references of its full chunks.
//! Appenders buffer samples; `commit` validates them again, writes them to the WAL and then
//! applies them while holding the isolation lock for writing, so a querier, which snapshots its
//! series under the same lock for reading, sees every commit whole or not at all. Commits are
//! serialised by one mutex, which makes WAL order and apply order the same: replay rebuilds
//! exactly what queries saw.
//!
//! With an out-of-order window, a sample older than its series' newest but inside the window
//! goes to the series' out-of-order buffer and chunks ([`crate::ooo`]); queries return them as a
//! second part of the series, and compaction seals and writes them (FORMAT.md, "Out-of-order
//! samples").
//!
//! Samples may carry a start timestamp ([`Appender::append_st`]). A series keeps those of its
//! open chunk in its side box (allocated only once one arrives) and cuts the chunk as
//! [`Encoding::XorSt`]; series without start timestamps keep plain XOR chunks and no side box.
//! Out-of-order samples drop their start timestamps (FORMAT.md, record type 130).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

use watchfire_model::{Labels, METRIC_NAME, Matcher, Timestamp};
use watchfire_storage::{
    self as storage, Appendable, Appender, HeadStats, Metadata, NameCount, Querier, Queryable, SelectHints, Series,
    SeriesRef, SeriesSet, TsdbStatus,
};

use crate::Error;
use crate::chunkenc::{Encoding, MAX_BYTES_BEFORE_APPEND, StColumn, XorChunk};
use crate::chunks_head::{ChunkDiskMapper, MappedChunk};
use crate::index::MemPostings;
use crate::ooo::{OooChunk, OooState};
use crate::querier::{ChunkSeries, LazyChunk, RANK_HEAD_OOO};
use crate::record::{self, RefMetadata, RefSample, Stone};
use crate::tombstones::{Interval, Tombstones};
use crate::wal::Wal;

/// Options of the head.
#[derive(Clone, Copy, Debug)]
pub struct HeadOptions {
    /// Chunks never span a multiple of this range (upstream `chunkRange`, the 2h block range),
    /// and appends older than half of it behind the newest sample are out of bounds.
    pub chunk_range: i64,
    /// Target samples per chunk (upstream `--storage.tsdb.samples-per-chunk`).
    pub samples_per_chunk: u16,
    /// Number of lock stripes of the series maps (a power of two).
    pub stripe_size: usize,
    /// `storage.tsdb.out_of_order_time_window` in milliseconds: when positive, a sample older
    /// than its series' newest but at most this far behind the head's newest sample is kept
    /// as an out-of-order sample instead of being refused. 0 refuses them, as upstream's
    /// default. Changeable while running ([`Head::set_out_of_order_time_window`]).
    pub out_of_order_time_window: i64,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            chunk_range: 2 * 3600 * 1000,
            samples_per_chunk: 120,
            stripe_size: 1024,
            out_of_order_time_window: 0,
        }
    }
}

/// Counters of the head; names follow upstream's self-metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `prometheus_tsdb_head_samples_appended_total`: in-order samples.
    pub samples_appended: AtomicU64,
    /// `prometheus_tsdb_head_out_of_order_samples_appended_total`
    pub ooo_samples_appended: AtomicU64,
    /// `prometheus_tsdb_head_series_created_total`
    pub series_created: AtomicU64,
    /// `prometheus_tsdb_out_of_order_samples_total`: samples refused as out of order, or, with
    /// an out-of-order window, as older than the window (upstream counts those as "too old").
    pub out_of_order_samples: AtomicU64,
    /// `prometheus_tsdb_out_of_bound_samples_total`
    pub out_of_bound_samples: AtomicU64,
    /// Duplicate timestamps with a different value (upstream counts them as out of order).
    pub duplicate_samples: AtomicU64,
    /// Samples valid when appended but out of order by the time their commit ran, because
    /// another appender committed newer samples of the same series first.
    pub commit_dropped_samples: AtomicU64,
    /// `prometheus_tsdb_wal_corruptions_total`: torn or corrupt WAL tails cut on open.
    pub wal_corruptions: AtomicU64,
    /// Damaged head chunk files cut on open (`prometheus_tsdb_mmap_chunk_corruptions_total`).
    pub mmap_chunk_corruptions: AtomicU64,
    /// WAL samples or chunks whose series record was missing (upstream logs "unknown series
    /// references").
    pub replay_unknown_refs: AtomicU64,
    /// Full chunks kept on the heap because writing them to a chunk file failed.
    pub chunk_write_failures: AtomicU64,
    /// `prometheus_tsdb_head_series_removed_total`: series garbage-collected by truncation.
    pub series_removed: AtomicU64,
}

impl Metrics {
    fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// A full chunk of a series.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkMeta {
    pub(crate) r: u64,
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
}

/// Chunk references with this bit set point into the heap store instead of a file.
const HEAP_REF: u64 = 1 << 63;
/// In a heap chunk reference, marks an [`Encoding::XorSt`] chunk (a file keeps the encoding
/// with the chunk instead).
const HEAP_ST: u64 = 1 << 62;

/// Where full chunks go: mapped files, or the heap for an in-memory head and as the fallback
/// when a file write fails.
#[derive(Debug)]
pub(crate) struct ChunkStore {
    pub(crate) disk: Option<ChunkDiskMapper>,
    heap: RwLock<Vec<Arc<[u8]>>>,
}

/// Chunk bytes wherever they live: a memory-mapped file (head chunk file or block segment)
/// or the heap.
#[derive(Clone, Debug)]
pub(crate) enum ChunkBytes {
    Mapped(MappedChunk),
    Heap(Arc<[u8]>),
}

impl AsRef<[u8]> for ChunkBytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            ChunkBytes::Mapped(m) => m.as_ref(),
            ChunkBytes::Heap(h) => h,
        }
    }
}

impl ChunkStore {
    fn write(&self, series: u64, min_t: i64, max_t: i64, enc: Encoding, data: &[u8], metrics: &Metrics) -> u64 {
        if let Some(d) = &self.disk {
            match d.write(series, min_t, max_t, enc as u8, data) {
                Ok(r) => return r,
                Err(_) => Metrics::inc(&metrics.chunk_write_failures),
            }
        }
        let mut heap = self.heap.write().unwrap_or_else(|e| e.into_inner());
        heap.push(Arc::from(data));
        let st = if enc == Encoding::XorSt { HEAP_ST } else { 0 };
        HEAP_REF | st | (heap.len() as u64 - 1)
    }

    /// The encoding (XOR or XOR with start timestamps) and bytes of chunk `r`.
    fn read(&self, r: u64) -> Result<(Encoding, ChunkBytes), Error> {
        if r & HEAP_REF != 0 {
            let heap = self.heap.read().unwrap_or_else(|e| e.into_inner());
            let enc = if r & HEAP_ST != 0 {
                Encoding::XorSt
            } else {
                Encoding::Xor
            };
            let i = r & !(HEAP_REF | HEAP_ST);
            return heap
                .get(i as usize)
                .cloned()
                .map(|b| (enc, ChunkBytes::Heap(b)))
                .ok_or_else(|| Error::Corruption {
                    file: "<heap chunks>".into(),
                    offset: i,
                    reason: "unknown heap chunk".into(),
                });
        }
        match &self.disk {
            Some(d) => {
                let (code, c) = d.chunk(r)?;
                match Encoding::from_code(code) {
                    Some(enc @ (Encoding::Xor | Encoding::XorSt)) => Ok((enc, ChunkBytes::Mapped(c))),
                    _ => Err(Error::Corruption {
                        file: "<head chunk files>".into(),
                        offset: r,
                        reason: format!("unsupported chunk encoding {code}"),
                    }),
                }
            }
            None => Err(Error::Corruption {
                file: "<no chunk files>".into(),
                offset: r,
                reason: "file chunk in a memory head".into(),
            }),
        }
    }
}

/// One series in the head: its labels, fixed at creation and so read without locking, and
/// its samples behind a mutex. The hash stripes find a series' labels here instead of keeping
/// a copy of the reference to them.
#[derive(Debug)]
pub(crate) struct HeadSeries {
    pub(crate) labels: Labels,
    state: Mutex<MemSeries>,
}

/// The samples of a series in the head.
#[derive(Debug)]
pub(crate) struct MemSeries {
    /// Full chunks, oldest first. A boxed slice: one is added every 120 samples, so exact
    /// size costs a short copy that rarely, and the field takes 16 bytes instead of 24.
    pub(crate) chunks: Box<[ChunkMeta]>,
    /// The open chunk; its first timestamp is read from it ([`XorChunk::first_t`]) rather than
    /// kept beside it in every series.
    open: Option<XorChunk>,
    /// Milliseconds from the newest sample to the time at which the open chunk is cut
    /// (upstream `nextAt`), 0 without an open chunk. Relative, so 4 bytes: with the flags they
    /// fill the 8 bytes a 64-bit time took, and a series is a 128-byte glibc chunk.
    until_cut: u32,
    /// Whether the series record is in the WAL.
    pub(crate) logged: bool,
    /// Set when truncation garbage-collected the series; an appender still holding it must
    /// look the labels up again.
    removed: bool,
    /// What few series need: out-of-order samples, start timestamps. One pointer for both, so
    /// the series that have neither (almost all) pay 8 bytes.
    side: Option<Box<Side>>,
}

/// The rarely needed parts of a series, boxed behind [`MemSeries::side`].
#[derive(Debug, Default)]
pub(crate) struct Side {
    /// Out-of-order samples, if any arrived.
    pub(crate) ooo: Option<OooState>,
    /// Start timestamps of the open chunk's samples, from the first sample of the chunk that
    /// came with one (the earlier ones are unknown, 0). The chunk is cut as
    /// [`Encoding::XorSt`] then; chunks without any start timestamp stay plain XOR.
    pub(crate) st: Option<StColumn>,
}

/// End of the chunk range holding `t` (upstream `rangeForTimestamp`; Go division truncates).
fn range_end(t: i64, width: i64) -> i64 {
    (t / width) * width + width
}

/// Upstream `computeChunkEndTime`: once a chunk holds a quarter of its target, spread the rest
/// of the range evenly over the chunks the current rate will need.
fn chunk_end(start: i64, cur: i64, max: i64, ratio_to_full: f64) -> i64 {
    let n = (max - start) as f64 / ((cur - start + 1) as f64 * ratio_to_full);
    if n <= 1.0 {
        return max;
    }
    (start as f64 + (max - start) as f64 / n.floor()) as i64
}

impl MemSeries {
    fn new() -> Self {
        MemSeries {
            chunks: Box::default(),
            open: None,
            until_cut: 0,
            logged: false,
            removed: false,
            side: None,
        }
    }

    pub(crate) fn ooo(&self) -> Option<&OooState> {
        self.side.as_ref().and_then(|s| s.ooo.as_ref())
    }

    fn ooo_mut(&mut self) -> Option<&mut OooState> {
        self.side.as_mut().and_then(|s| s.ooo.as_mut())
    }

    fn st(&self) -> Option<&StColumn> {
        self.side.as_ref().and_then(|s| s.st.as_ref())
    }

    /// Drops the side box once it holds nothing.
    fn trim_side(&mut self) {
        if self.side.as_ref().is_some_and(|s| s.ooo.is_none() && s.st.is_none()) {
            self.side = None;
        }
    }

    /// Takes the open chunk's start timestamps.
    fn take_st(&mut self) -> Option<StColumn> {
        let st = self.side.as_mut().and_then(|s| s.st.take());
        self.trim_side();
        st
    }

    /// The open chunk as a query or compaction reads it: its encoding and bytes.
    fn open_chunk_bytes(&self, c: &XorChunk) -> (Encoding, ChunkBytes) {
        match self.st() {
            Some(st) => (Encoding::XorSt, ChunkBytes::Heap(Arc::from(st.chunk_bytes(c.bytes())))),
            None => (Encoding::Xor, ChunkBytes::Heap(Arc::from(c.bytes()))),
        }
    }

    /// Whether the series holds samples in `[mint, maxt]`: in-order ones (unless `part` asks
    /// for out-of-order ones only) and out-of-order ones of `part`.
    fn has_data_in(&self, mint: i64, maxt: i64, part: HeadPart) -> bool {
        let in_order = part != HeadPart::SealedOoo
            && (self.chunks.iter().any(|c| c.max_t >= mint && c.min_t <= maxt)
                || self
                    .open
                    .as_ref()
                    .is_some_and(|c| !c.is_empty() && c.last_t() >= mint && c.first_t() <= maxt));
        in_order
            || self
                .ooo()
                .is_some_and(|o| o.overlaps(mint, maxt, part != HeadPart::All))
    }

    /// Timestamp and value bits of the newest sample.
    fn last(&self) -> Option<(i64, u64)> {
        if let Some(c) = &self.open
            && !c.is_empty()
        {
            return Some((c.last_t(), c.last_v().to_bits()));
        }
        // Only a full chunk: its last value is not kept, so duplicates against it are judged
        // by timestamp alone (that only happens right after restart, before a new sample).
        self.chunks.last().map(|c| (c.max_t, u64::MAX))
    }

    fn last_t(&self) -> i64 {
        self.last().map_or(i64::MIN, |(t, _)| t)
    }

    /// The first timestamp of the open chunk, `i64::MIN` without one or when it is empty.
    #[cfg(test)]
    fn open_min_t(&self) -> i64 {
        self.open.as_ref().map_or(i64::MIN, XorChunk::first_t)
    }

    fn cut(&mut self, series_ref: u64, t: i64, opts: &HeadOptions, store: &ChunkStore, metrics: &Metrics) {
        let st = self.take_st();
        if let Some(old) = self.open.take()
            && !old.is_empty()
        {
            let min_t = old.first_t();
            let r = match st.filter(|st| !st.all_unknown()) {
                Some(st) => store.write(
                    series_ref,
                    min_t,
                    old.last_t(),
                    Encoding::XorSt,
                    &st.chunk_bytes(old.bytes()),
                    metrics,
                ),
                None => store.write(series_ref, min_t, old.last_t(), Encoding::Xor, old.bytes(), metrics),
            };
            let mut chunks = std::mem::take(&mut self.chunks).into_vec();
            chunks.reserve_exact(1);
            chunks.push(ChunkMeta {
                r,
                min_t,
                max_t: old.last_t(),
            });
            self.chunks = chunks.into_boxed_slice();
        }
        let mut c = XorChunk::new();
        c.shrink_to_fit();
        self.open = Some(c);
        self.set_next_at(t, range_end(t, opts.chunk_range));
    }

    /// Sets the cut time to `next_at` with `t` the newest sample's time (or, before the first
    /// sample of a chunk, the one about to be appended).
    fn set_next_at(&mut self, t: i64, next_at: i64) {
        // A cut time at or before `t` cuts at the next sample, as 0 does; one more than 49
        // days after it (never with the 2 h chunk range) is cut after 49 days.
        self.until_cut = u32::try_from(next_at.saturating_sub(t).max(0)).unwrap_or(u32::MAX);
    }

    /// Timestamp at which the open chunk is cut, `i64::MIN` without one.
    fn next_at(&self) -> i64 {
        match &self.open {
            Some(c) if !c.is_empty() => c.last_t().saturating_add(i64::from(self.until_cut)),
            _ => i64::MIN,
        }
    }

    /// Appends a sample newer than every stored one, with its start timestamp `st` (0:
    /// unknown); returns false (and stores nothing) for an older or equal timestamp.
    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        series_ref: u64,
        st: i64,
        t: i64,
        v: f64,
        opts: &HeadOptions,
        store: &ChunkStore,
        metrics: &Metrics,
    ) -> bool {
        if t <= self.last_t() {
            return false;
        }
        let spc = opts.samples_per_chunk.max(4);
        match &self.open {
            Some(c) if !c.is_empty() => {
                let (n, last, full) = (c.num_samples(), c.last_t(), c.bytes().len() > MAX_BYTES_BEFORE_APPEND);
                if n == spc / 4 {
                    let end = chunk_end(c.first_t(), last, self.next_at(), 4.0);
                    self.set_next_at(last, end);
                }
                // `t > last`: the cut time is reached when `t - last` covers what was left.
                let step = t.abs_diff(last);
                if step >= u64::from(self.until_cut) || n >= spc.saturating_mul(2) || full {
                    self.cut(series_ref, t, opts, store, metrics);
                } else {
                    self.until_cut -= step as u32;
                }
            }
            _ => self.cut(series_ref, t, opts, store, metrics),
        }
        let c = self.open.as_mut().expect("cut installs an open chunk");
        if c.append(t, v).is_err() {
            // Unreachable with the cut rules above (at most 2 × samples_per_chunk samples).
            self.cut(series_ref, t, opts, store, metrics);
            if self.open.as_mut().is_none_or(|c| c.append(t, v).is_err()) {
                return false;
            }
        }
        if st != 0 || self.side.as_ref().is_some_and(|s| s.st.is_some()) {
            self.push_st(st);
        }
        true
    }

    /// Records the start timestamp of the sample just appended to the open chunk.
    fn push_st(&mut self, st: i64) {
        let n = self.open.as_ref().map_or(0, XorChunk::num_samples);
        let side = self.side.get_or_insert_with(Box::default);
        side.st
            .get_or_insert_with(|| StColumn::with_unknown(n.saturating_sub(1)))
            .push(st);
    }

    fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + std::mem::size_of_val(&*self.chunks)
            + self.open.as_ref().map_or(0, XorChunk::heap_bytes)
            + self.side.as_ref().map_or(0, |s| {
                std::mem::size_of::<Side>()
                    + s.ooo.as_ref().map_or(0, OooState::heap_bytes)
                    + s.st.as_ref().map_or(0, StColumn::heap_bytes)
            })
    }
}

pub(crate) type SeriesHandle = Arc<HeadSeries>;

/// A chunk of a head series as compaction reads it.
pub(crate) struct HeadChunk {
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
    /// XOR, or XOR with start timestamps.
    pub(crate) enc: Encoding,
    pub(crate) bytes: ChunkBytes,
    /// Whether it holds out-of-order samples (merged into chunks of their own, which may
    /// overlap the in-order ones).
    pub(crate) ooo: bool,
}

/// One series as a shutdown snapshot keeps it ([`Head::snapshot_state`]).
#[derive(Debug)]
pub(crate) struct SnapshotSeries {
    pub(crate) r: u64,
    pub(crate) labels: Labels,
    /// The open chunk's bytes, when it holds samples.
    pub(crate) open: Option<Vec<u8>>,
    /// Milliseconds from the newest sample to the open chunk's cut time.
    pub(crate) until_cut: u32,
}

/// The head as a shutdown snapshot keeps it; full chunks stay in the head chunk files.
#[derive(Debug)]
pub(crate) struct SnapshotState {
    pub(crate) next_ref: u64,
    /// By ascending reference.
    pub(crate) series: Vec<SnapshotSeries>,
    pub(crate) metadata: Vec<RefMetadata>,
    /// [`Tombstones::encode`].
    pub(crate) tombstones: Vec<u8>,
}

/// Which part of the head a block is written from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeadPart {
    /// In-order data and the out-of-order chunks sealed by the running compaction.
    Compaction,
    /// The sealed out-of-order chunks only (blocks for ranges the head no longer holds).
    SealedOoo,
    /// Everything (snapshots).
    All,
}

/// Hashes the `u64` keys of the series maps (sequential references, label hashes) with one
/// multiply instead of SipHash, which dominated lookups. The high half is folded in because
/// keys within one stripe share their low bits.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RefHasher(u64);

impl std::hash::Hasher for RefHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0 ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, x: u64) {
        let h = (self.0 ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 32);
    }
}

pub(crate) type RefMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<RefHasher>>;

/// Starts loading a series' allocation, its `Arc` counts and the series itself (up to three
/// cache lines) without waiting, for an append that follows shortly.
#[inline]
pub(crate) fn prefetch_series(s: &SeriesHandle) {
    let end = Arc::as_ptr(s)
        .cast::<u8>()
        .wrapping_add(std::mem::size_of::<HeadSeries>());
    let start = Arc::as_ptr(s)
        .cast::<u8>()
        .wrapping_sub(2 * std::mem::size_of::<usize>());
    for p in [start, start.wrapping_add(64), end.wrapping_sub(1)] {
        crate::chunkenc::prefetch(p);
    }
}

/// Starts loading the first and last bytes of a series' open chunk, which its next append
/// reads (the sample count) and writes (the tail). The series must be in cache already
/// ([`prefetch_series`] a little earlier); a series locked elsewhere is left alone.
#[inline]
pub(crate) fn prefetch_open_chunk(s: &SeriesHandle) {
    if let Ok(g) = s.state.try_lock()
        && let Some(c) = g.open.as_ref()
    {
        crate::chunkenc::prefetch(c.bytes().as_ptr());
        c.prefetch_tail();
    }
}

fn lock(s: &SeriesHandle) -> MutexGuard<'_, MemSeries> {
    s.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The series references of a reference stripe are grouped in pages of `1 << PAGE_BITS`
/// consecutive references. References are handed out in order, so the series created together
/// (a new target's, a replayed WAL's) fill whole pages: a series costs its 8-byte slot and a
/// share of its page's map slot, where a hash map slot per series cost 16 bytes at 44-87%
/// load. A page is freed when its last series is removed; its worst case, one series left in
/// a page, costs the page (128 bytes) and its slot.
const PAGE_BITS: u32 = 4;
const PAGE: usize = 1 << PAGE_BITS;

/// Values by reference in pages of `N` consecutive references (pages by page number, `r / N`),
/// a page freed when its last value is removed. References are handed out in order, so the
/// series created together fill whole pages, and lookups of nearby references (a commit's, a
/// replayed record's) stay within a few cache-hot map slots.
#[derive(Debug)]
pub(crate) struct RefPages<V, const N: usize> {
    pages: RefMap<Box<[Option<V>; N]>>,
}

impl<V, const N: usize> Default for RefPages<V, N> {
    fn default() -> Self {
        RefPages {
            pages: RefMap::default(),
        }
    }
}

impl<V, const N: usize> RefPages<V, N> {
    #[inline]
    pub(crate) fn get(&self, r: u64) -> Option<&V> {
        self.pages.get(&(r / N as u64))?[(r % N as u64) as usize].as_ref()
    }

    pub(crate) fn insert(&mut self, r: u64, v: V) {
        self.pages
            .entry(r / N as u64)
            .or_insert_with(|| Box::new(std::array::from_fn(|_| None)))[(r % N as u64) as usize] = Some(v);
    }

    fn remove(&mut self, r: u64) {
        if let Some(page) = self.pages.get_mut(&(r / N as u64)) {
            page[(r % N as u64) as usize] = None;
            if page.iter().all(Option::is_none) {
                self.pages.remove(&(r / N as u64));
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = (u64, &V)> {
        self.pages.iter().flat_map(|(&p, page)| {
            page.iter()
                .enumerate()
                .filter_map(move |(i, v)| v.as_ref().map(|v| (p * N as u64 + i as u64, v)))
        })
    }
}

/// Series by reference, in pages of [`PAGE`].
type RefStripe = RefPages<SeriesHandle, PAGE>;

/// Label hash → reference: a table of bare references (8 bytes a slot), whose hashes and
/// labels are read from their series (in the reference stripes, which hold every series of a
/// hash stripe while it is locked: a series is published by reference first and unpublished
/// by hash first). Colliding hashes are told apart by their labels, as the conflicts list of
/// upstream's `seriesHashmap` does.
#[derive(Debug, Default)]
struct HashStripe(hashbrown::HashTable<u64>);

/// The table's hash for a label hash: the stripe is chosen by the low bits, which all series
/// of a stripe share, so the table takes its buckets from the high half.
fn table_hash(hash: u64) -> u64 {
    hash.rotate_left(32)
}

impl HashStripe {
    /// The reference and series with `labels`; `series` finds a series by reference.
    fn get(
        &self,
        hash: u64,
        labels: &Labels,
        series: impl Fn(u64) -> Option<SeriesHandle>,
    ) -> Option<(u64, SeriesHandle)> {
        let mut found = None;
        self.0.find(table_hash(hash), |&r| match series(r) {
            Some(s) if s.labels == *labels => {
                found = Some((r, s));
                true
            }
            _ => false,
        })?;
        found
    }

    /// Adds `r` (already published by reference, as every series of the stripe is: growing
    /// the table rehashes them from their labels).
    fn insert(&mut self, hash: u64, r: u64, series: impl Fn(u64) -> Option<SeriesHandle>) {
        self.0.insert_unique(table_hash(hash), r, |&x| {
            table_hash(series(x).map_or(0, |s| s.labels.stable_hash()))
        });
    }

    fn remove(&mut self, hash: u64, r: u64) {
        if let Ok(e) = self.0.find_entry(table_hash(hash), |&x| x == r) {
            e.remove();
        }
    }
}

/// State serialised by the commit lock.
#[derive(Debug)]
pub(crate) struct CommitState {
    pub(crate) wal: Option<Wal>,
    pub(crate) broken: Option<String>,
    buf: Vec<u8>,
    /// A commit's newest in-order timestamp per series, kept empty between commits so its
    /// table is not grown anew by each one.
    newest: RefMap<i64>,
    /// A commit's in-order samples and their series, kept empty between commits likewise
    /// (allocating them for every scrape cost more than the bookkeeping).
    kept: Vec<RefSample>,
    kept_handles: Vec<SeriesHandle>,
}

/// The buffers of a finished appender, for the next one: a scrape appends the same few
/// hundred samples every interval, and growing fresh vectors and a fresh table for them each
/// time was a tenth of the cost of appending (upstream pools its appenders' buffers too).
#[derive(Debug, Default)]
struct AppendBuffers {
    samples: Vec<RefSample>,
    handles: Vec<SeriesHandle>,
    pending: RefMap<(i64, u64)>,
}

/// At most this many appenders' buffers are kept, each of at most [`SPARE_MAX_SAMPLES`]
/// samples' capacity (larger ones, from a big remote-write request, are freed).
const SPARE_BUFFERS: usize = 8;
const SPARE_MAX_SAMPLES: usize = 1 << 14;

/// The in-memory head.
#[derive(Debug)]
pub struct Head {
    opts: HeadOptions,
    by_ref: Box<[RwLock<RefStripe>]>,
    by_hash: Box<[RwLock<HashStripe>]>,
    postings: MemPostings,
    next_ref: AtomicU64,
    num_series: AtomicU64,
    min_t: AtomicI64,
    max_t: AtomicI64,
    /// No sample older than this is accepted or replayed: the end of the newest block.
    min_valid: AtomicI64,
    /// Deleted intervals by series reference, not yet compacted away.
    tombstones: RwLock<Tombstones>,
    pub(crate) chunks: ChunkStore,
    pub(crate) commit: Mutex<CommitState>,
    isolation: RwLock<()>,
    metadata: Mutex<HashMap<u64, Metadata>>,
    metrics: Metrics,
    /// Buffers of finished appenders ([`AppendBuffers`]).
    spare: Mutex<Vec<AppendBuffers>>,
    /// The out-of-order window in milliseconds (0: out-of-order samples are refused).
    ooo_window: AtomicI64,
    /// References of the series holding out-of-order samples.
    ooo_refs: Mutex<HashSet<u64, std::hash::BuildHasherDefault<RefHasher>>>,
    /// Called after a commit that leaves the head spanning more than the given width: a block
    /// is due (upstream's appender signals the compaction loop the same way).
    block_due: OnceLock<DueHook>,
    /// Set by [`close`](Head::close): commits are refused from then on.
    closed: AtomicBool,
}

/// The width after which a block is due, and whom to tell.
struct DueHook {
    span: i64,
    notify: Box<dyn Fn() + Send + Sync>,
}

impl fmt::Debug for DueHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DueHook")
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

impl Head {
    /// A head without WAL or chunk files: nothing survives the process.
    pub fn in_memory(opts: HeadOptions) -> Arc<Head> {
        Arc::new(Head::new(opts, None, None))
    }

    pub(crate) fn new(opts: HeadOptions, wal: Option<Wal>, disk: Option<ChunkDiskMapper>) -> Head {
        let stripes = opts.stripe_size.max(1).next_power_of_two();
        Head {
            opts,
            by_ref: (0..stripes).map(|_| RwLock::default()).collect(),
            by_hash: (0..stripes).map(|_| RwLock::default()).collect(),
            postings: MemPostings::new(),
            next_ref: AtomicU64::new(1),
            num_series: AtomicU64::new(0),
            min_t: AtomicI64::new(i64::MAX),
            max_t: AtomicI64::new(i64::MIN),
            min_valid: AtomicI64::new(i64::MIN),
            tombstones: RwLock::default(),
            chunks: ChunkStore {
                disk,
                heap: RwLock::default(),
            },
            commit: Mutex::new(CommitState {
                wal,
                broken: None,
                buf: Vec::new(),
                newest: RefMap::default(),
                kept: Vec::new(),
                kept_handles: Vec::new(),
            }),
            isolation: RwLock::new(()),
            metadata: Mutex::default(),
            metrics: Metrics::default(),
            spare: Mutex::default(),
            ooo_window: AtomicI64::new(opts.out_of_order_time_window.max(0)),
            ooo_refs: Mutex::default(),
            block_due: OnceLock::new(),
            closed: AtomicBool::new(false),
        }
    }

    /// Calls `notify` after every commit that leaves the head spanning more than `span`
    /// milliseconds (until the span shrinks again). Set once; later calls are ignored.
    pub fn on_block_due(&self, span: i64, notify: Box<dyn Fn() + Send + Sync>) {
        let _ = self.block_due.set(DueHook { span, notify });
    }

    /// Whether [`close`](Head::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn signal_if_due(&self) {
        if let Some(hook) = self.block_due.get() {
            let (min, max) = (self.min_time(), self.max_time());
            if min != i64::MAX && max != i64::MIN && max.saturating_sub(min) > hook.span {
                (hook.notify)();
            }
        }
    }

    /// Sets `storage.tsdb.out_of_order_time_window` (milliseconds; 0 or less refuses
    /// out-of-order samples). Applies to appends from now on, as upstream's `ApplyConfig`.
    pub fn set_out_of_order_time_window(&self, ms: i64) {
        self.ooo_window.store(ms.max(0), Ordering::Relaxed);
    }

    /// The out-of-order window in milliseconds.
    pub fn out_of_order_time_window(&self) -> i64 {
        self.ooo_window.load(Ordering::Relaxed)
    }

    /// Stores an out-of-order sample of series `r` (commit and replay); false for a second
    /// sample at a timestamp its buffer holds.
    fn insert_ooo(&self, g: &mut MemSeries, r: u64, t: i64, v: f64) -> bool {
        let side = g.side.get_or_insert_with(Box::default);
        let o = side.ooo.get_or_insert_with(|| {
            self.ooo_refs.lock().unwrap_or_else(|e| e.into_inner()).insert(r);
            OooState::default()
        });
        o.insert(t, v)
    }

    /// Stores a replayed out-of-order sample (no window check: it was accepted when logged).
    pub(crate) fn replay_ooo(&self, s: &SeriesHandle, r: u64, t: i64, v: f64) -> bool {
        self.insert_ooo(&mut lock(s), r, t, v)
    }

    fn ooo_series(&self) -> Vec<(u64, SeriesHandle)> {
        let refs: Vec<u64> = self
            .ooo_refs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        refs.into_iter()
            .filter_map(|r| self.series(r).map(|h| (r, h)))
            .collect()
    }

    /// Oldest and newest out-of-order timestamps held, if any.
    pub(crate) fn ooo_bounds(&self) -> Option<(i64, i64)> {
        self.ooo_series()
            .iter()
            .filter_map(|(_, h)| lock(h).ooo().and_then(|o| o.bounds()))
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    }

    /// Marks every out-of-order sample held now as taken by the head compaction about to run
    /// and returns the bounds of the sealed chunks. Must be called with the commit lock held,
    /// together with the WAL segment cut, so that every out-of-order sample in the segments
    /// the checkpoint will cover is sealed.
    pub(crate) fn seal_ooo_locked(&self) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        for (_, h) in self.ooo_series() {
            let mut g = lock(&h);
            if let Some(o) = g.ooo_mut() {
                o.seal();
                out.extend(o.sealed_bounds());
            }
        }
        out
    }

    /// Drops the sealed out-of-order samples older than `end` (now in blocks); returns the
    /// oldest out-of-order timestamp left. Must be called with the commit lock held.
    fn truncate_ooo_locked(&self, end: i64) -> Option<i64> {
        let mut oldest: Option<i64> = None;
        for (r, h) in self.ooo_series() {
            let mut g = lock(&h);
            let Some(o) = g.ooo_mut() else { continue };
            o.truncate_sealed(end);
            match o.bounds() {
                Some((min, _)) => oldest = Some(oldest.map_or(min, |m| m.min(min))),
                None => {
                    if let Some(side) = g.side.as_mut() {
                        side.ooo = None;
                    }
                    g.trim_side();
                    self.ooo_refs.lock().unwrap_or_else(|e| e.into_inner()).remove(&r);
                }
            }
        }
        oldest
    }

    /// The head's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Number of series.
    pub fn num_series(&self) -> u64 {
        self.num_series.load(Ordering::Relaxed)
    }

    /// Oldest sample timestamp, `i64::MAX` when empty.
    pub fn min_time(&self) -> Timestamp {
        self.min_t.load(Ordering::Relaxed)
    }

    /// Newest sample timestamp, `i64::MIN` when empty.
    pub fn max_time(&self) -> Timestamp {
        self.max_t.load(Ordering::Relaxed)
    }

    /// Metadata last committed for a series.
    pub fn metadata(&self, labels: &Labels) -> Option<Metadata> {
        let r = self.lookup(labels)?;
        self.metadata.lock().unwrap_or_else(|e| e.into_inner()).get(&r).cloned()
    }

    /// The oldest timestamp an append may have (upstream `appendableMinValidTime`): half a
    /// chunk range behind the newest sample, and never before the end of the newest block.
    fn min_valid_time(&self) -> i64 {
        let max = self.max_time();
        let floor = self.min_valid.load(Ordering::Acquire);
        if max == i64::MIN {
            floor
        } else {
            max.saturating_sub(self.opts.chunk_range / 2).max(floor)
        }
    }

    /// The oldest timestamp the head holds data for at all (the end of the newest block).
    pub(crate) fn min_valid_floor(&self) -> i64 {
        self.min_valid.load(Ordering::Acquire)
    }

    /// Refuses samples older than `t` from now on (raised to the end of each new block).
    pub(crate) fn set_min_valid(&self, t: i64) {
        self.min_valid.fetch_max(t, Ordering::AcqRel);
    }

    /// The options the head was created with.
    pub fn options(&self) -> &HeadOptions {
        &self.opts
    }

    /// The stripe of reference `r`: a page of consecutive references shares one.
    fn ref_stripe(&self, r: u64) -> &RwLock<RefStripe> {
        &self.by_ref[((r >> PAGE_BITS) as usize) & (self.by_ref.len() - 1)]
    }

    fn hash_stripe(&self, hash: u64) -> &RwLock<HashStripe> {
        &self.by_hash[(hash as usize) & (self.by_hash.len() - 1)]
    }

    pub(crate) fn series(&self, r: u64) -> Option<SeriesHandle> {
        self.ref_stripe(r)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(r)
            .cloned()
    }

    fn lookup(&self, labels: &Labels) -> Option<u64> {
        let hash = labels.stable_hash();
        self.hash_stripe(hash)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash, labels, |r| self.series(r))
            .map(|(r, _)| r)
    }

    /// The series with `labels`, created with reference `want` (replay) or a fresh one.
    pub(crate) fn get_or_create(&self, labels: &Labels, want: Option<u64>) -> (u64, SeriesHandle, bool) {
        self.get_or_create_indexed(labels, want, true)
    }

    /// [`get_or_create`](Self::get_or_create); a series created with `index` false is not in
    /// the postings yet (the caller adds it, in bulk).
    fn get_or_create_indexed(&self, labels: &Labels, want: Option<u64>, index: bool) -> (u64, SeriesHandle, bool) {
        let hash = labels.stable_hash();
        if let Some((r, s)) = self
            .hash_stripe(hash)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(hash, labels, |r| self.series(r))
        {
            return (r, s, false);
        }
        let mut stripe = self.hash_stripe(hash).write().unwrap_or_else(|e| e.into_inner());
        if let Some((r, s)) = stripe.get(hash, labels, |r| self.series(r)) {
            return (r, s, false);
        }
        let r = match want {
            Some(r) => {
                self.next_ref.fetch_max(r + 1, Ordering::Relaxed);
                r
            }
            None => self.next_ref.fetch_add(1, Ordering::Relaxed),
        };
        let s: SeriesHandle = Arc::new(HeadSeries {
            labels: labels.clone(),
            state: Mutex::new(MemSeries::new()),
        });
        // Publish by reference first so a concurrent lookup that finds the hash entry also
        // finds the series.
        self.ref_stripe(r)
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(r, s.clone());
        stripe.insert(hash, r, |r| self.series(r));
        drop(stripe);
        if index {
            self.postings.add(r, labels);
        }
        self.num_series.fetch_add(1, Ordering::Relaxed);
        Metrics::inc(&self.metrics.series_created);
        (r, s, true)
    }

    /// Appends a replayed sample (no bounds check; samples older than the newest block or
    /// than the series' newest sample are skipped). Returns whether it was stored; the caller
    /// reports the range stored with [`note_replayed_range`](Self::note_replayed_range), so
    /// parallel replay does not contend on the head's time bounds.
    pub(crate) fn replay_append(&self, s: &SeriesHandle, r: u64, st: i64, t: i64, v: f64) -> bool {
        t >= self.min_valid.load(Ordering::Relaxed)
            && lock(s).append(r, st, t, v, &self.opts, &self.chunks, &self.metrics)
    }

    /// Widens the head's time bounds to `[min, max]` (an empty range when `min > max`).
    pub(crate) fn note_replayed_range(&self, min: i64, max: i64) {
        if min <= max {
            self.min_t.fetch_min(min, Ordering::Relaxed);
            self.max_t.fetch_max(max, Ordering::Relaxed);
        }
    }

    /// Attaches chunks loaded from the head chunk files to a series being replayed; returns
    /// the end of the newest one attached, if any: the series' appends drop every sample up
    /// to it, so replay need not hand them over.
    pub(crate) fn attach_chunks(&self, s: &SeriesHandle, chunks: Vec<ChunkMeta>) -> Option<i64> {
        let mut g = lock(s);
        let mut newest = None;
        let mut list = std::mem::take(&mut g.chunks).into_vec();
        for c in chunks {
            // Chunks come in file order; skip any that would overlap what precedes them.
            if list.last().is_some_and(|p| c.min_t <= p.max_t) {
                continue;
            }
            // Chunks of a range already written to a block (their file outlived truncation).
            if c.max_t < self.min_valid.load(Ordering::Relaxed) {
                continue;
            }
            self.min_t.fetch_min(c.min_t, Ordering::Relaxed);
            self.max_t.fetch_max(c.max_t, Ordering::Relaxed);
            newest = Some(c.max_t);
            list.push(c);
        }
        g.chunks = list.into_boxed_slice();
        g.logged = true;
        newest.filter(|_| g.open.is_none())
    }

    pub(crate) fn set_metadata(&self, r: u64, m: Metadata) {
        self.metadata.lock().unwrap_or_else(|e| e.into_inner()).insert(r, m);
    }

    /// What a shutdown snapshot ([`crate::snapshot`]) keeps of the head, or `None` when the
    /// head holds out-of-order samples (which the snapshot does not carry; replay restores
    /// them). Series not logged to the WAL (created by an appender that never committed) are
    /// left out, as replay would not create them either.
    pub(crate) fn snapshot_state(&self) -> Option<SnapshotState> {
        if !self.ooo_refs.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
            return None;
        }
        let mut all = self.all_series();
        all.sort_unstable_by_key(|(r, _)| *r);
        let mut series = Vec::with_capacity(all.len());
        for (r, h) in all {
            let g = lock(&h);
            if !g.logged || g.removed {
                continue;
            }
            // Out-of-order samples and start timestamps are not in a snapshot: a head with
            // either is restored by replaying the WAL, which has them.
            if g.side.is_some() {
                return None;
            }
            let open = g.open.as_ref().filter(|c| !c.is_empty());
            series.push(SnapshotSeries {
                r,
                labels: h.labels.clone(),
                open: open.map(|c| c.bytes().to_vec()),
                until_cut: if open.is_some() { g.until_cut } else { 0 },
            });
        }
        let metadata = {
            let m = self.metadata.lock().unwrap_or_else(|e| e.into_inner());
            let mut v: Vec<RefMetadata> = m
                .iter()
                .map(|(&r, m)| RefMetadata {
                    r,
                    metric_type: m.metric_type as u8,
                    unit: m.unit.clone(),
                    help: m.help.clone(),
                })
                .collect();
            v.sort_unstable_by_key(|m| m.r);
            v
        };
        Some(SnapshotState {
            next_ref: self.next_ref.load(Ordering::Relaxed),
            series,
            metadata,
            tombstones: self.tombstones.read().unwrap_or_else(|e| e.into_inner()).encode(),
        })
    }

    /// Makes room for `n` more series in the series maps, so that loading a snapshot does not
    /// grow them (and rehash every series' labels) step by step.
    pub(crate) fn reserve_series(&self, n: usize) {
        let per = n / self.by_hash.len() + n / self.by_hash.len() / 8 + 1;
        for (stripe, hashes) in self.by_ref.iter().zip(self.by_hash.iter()) {
            stripe
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .pages
                .reserve(per / PAGE + 1);
            let mut h = hashes.write().unwrap_or_else(|e| e.into_inner());
            // Nothing to rehash while the stripe is empty; otherwise grow as insert would.
            h.0.reserve(per, |&x| {
                table_hash(
                    self.ref_stripe(x)
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(x)
                        .map_or(0, |s| s.labels.stable_hash()),
                )
            });
        }
    }

    /// Recreates a series from a shutdown snapshot: reference `r`, `labels`, the full chunks
    /// loaded from the head chunk files, and the open chunk with its cut time. The caller
    /// adds it to the postings ([`add_postings_bulk`](Self::add_postings_bulk)). Fails (and
    /// the caller falls back to WAL replay) when the labels already exist under another
    /// reference or the reference is taken, which a valid snapshot never asks for.
    pub(crate) fn restore_series(
        &self,
        r: u64,
        labels: &Labels,
        chunks: Vec<ChunkMeta>,
        open: Option<XorChunk>,
        until_cut: u32,
    ) -> Result<(), &'static str> {
        if self.series(r).is_some() {
            return Err("series reference used twice");
        }
        let (got, h, created) = self.get_or_create_indexed(labels, Some(r), false);
        if !created || got != r {
            return Err("label set used twice");
        }
        self.attach_chunks(&h, chunks);
        if let Some(c) = open {
            if c.is_empty() {
                return Ok(());
            }
            let mut g = lock(&h);
            if g.chunks.last().is_some_and(|p| c.first_t() <= p.max_t) {
                return Err("open chunk overlaps the full chunks");
            }
            self.note_replayed_range(c.first_t(), c.last_t());
            g.open = Some(c);
            g.until_cut = until_cut;
        }
        Ok(())
    }

    /// Indexes series restored from a snapshot: per label pair, the references carrying it
    /// (see [`MemPostings::add_bulk`]).
    pub(crate) fn add_postings_bulk<'a>(&self, lists: impl IntoIterator<Item = (&'a str, &'a str, Vec<u64>)>) {
        self.postings.add_bulk(lists);
    }

    /// Raises the next series reference to at least `r` (a snapshot's, which may exceed every
    /// live series' after garbage collection).
    pub(crate) fn raise_next_ref(&self, r: u64) {
        self.next_ref.fetch_max(r, Ordering::Relaxed);
    }

    /// Replaces the tombstones (from a snapshot).
    pub(crate) fn set_tombstones(&self, t: Tombstones) {
        *self.tombstones.write().unwrap_or_else(|e| e.into_inner()) = t;
    }

    fn all_series(&self) -> Vec<(u64, SeriesHandle)> {
        let mut out = Vec::with_capacity(self.num_series() as usize);
        for stripe in self.by_ref.iter() {
            out.extend(
                stripe
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|(r, s)| (r, s.clone())),
            );
        }
        out
    }

    /// Approximate heap bytes of series structures, open chunks, label sets and the index, for
    /// memory-per-series measurements.
    pub fn approx_heap_bytes(&self) -> usize {
        let mut total = 0;
        for (_, s) in self.all_series() {
            let g = lock(&s);
            // The series' labels, mutex and Arc counters around its samples, and its slots in
            // the reference pages and the hash stripes (8 bytes each, the hash table's at about
            // two-thirds load, the page's with a share of its map slot).
            let around = std::mem::size_of::<HeadSeries>() - std::mem::size_of::<MemSeries>() + 16;
            total += g.heap_bytes() + around + 10 + 12 + s.labels.heap_bytes();
        }
        let mut postings = 0usize;
        self.postings
            .for_each_pair(|n, v, count| postings += n.len() + v.len() + 64 + count * 8);
        total + postings + self.num_series() as usize * 8
    }

    /// References and labels of the series with samples in `[mint, maxt]`.
    pub(crate) fn series_in_range(&self, mint: i64, maxt: i64, part: HeadPart) -> Vec<(u64, Labels)> {
        let series = match part {
            HeadPart::SealedOoo => self.ooo_series(),
            _ => self.all_series(),
        };
        let mut out = Vec::new();
        for (r, s) in series {
            let g = lock(&s);
            if g.has_data_in(mint, maxt, part) {
                out.push((r, s.labels.clone()));
            }
        }
        out
    }

    /// The chunks of `part` of series `r` overlapping `[mint, maxt]`, with their encoding,
    /// bytes and whether they hold out-of-order samples (merged into chunks of their own,
    /// which may overlap the in-order ones).
    pub(crate) fn chunks_in_range(
        &self,
        r: u64,
        mint: i64,
        maxt: i64,
        part: HeadPart,
    ) -> Result<Vec<HeadChunk>, Error> {
        let Some(s) = self.series(r) else {
            return Ok(Vec::new());
        };
        let _visible = self.isolation.read().unwrap_or_else(|e| e.into_inner());
        let g = lock(&s);
        let mut out = Vec::new();
        if part != HeadPart::SealedOoo {
            for c in g.chunks.iter().filter(|c| c.max_t >= mint && c.min_t <= maxt) {
                let (enc, bytes) = self.chunks.read(c.r)?;
                out.push(HeadChunk {
                    min_t: c.min_t,
                    max_t: c.max_t,
                    enc,
                    bytes,
                    ooo: false,
                });
            }
            if let Some(c) = &g.open
                && !c.is_empty()
                && c.last_t() >= mint
                && c.first_t() <= maxt
            {
                let (enc, bytes) = g.open_chunk_bytes(c);
                out.push(HeadChunk {
                    min_t: c.first_t(),
                    max_t: c.last_t(),
                    enc,
                    bytes,
                    ooo: false,
                });
            }
        }
        if let Some(o) = g.ooo() {
            for c in o.read_chunks(mint, maxt, part != HeadPart::All) {
                out.push(HeadChunk {
                    min_t: c.min_t,
                    max_t: c.max_t,
                    enc: Encoding::Xor,
                    bytes: ChunkBytes::Heap(c.bytes),
                    ooo: true,
                });
            }
        }
        Ok(out)
    }

    /// The deleted intervals of series `r`.
    pub(crate) fn tombstones_of(&self, r: u64) -> Vec<Interval> {
        self.tombstones
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(r)
            .to_vec()
    }

    /// Adds deleted intervals (from `delete` or WAL replay).
    pub(crate) fn add_tombstones(&self, stones: &[Stone]) {
        let mut t = self.tombstones.write().unwrap_or_else(|e| e.into_inner());
        for s in stones {
            t.add(
                s.r,
                Interval {
                    mint: s.mint,
                    maxt: s.maxt,
                },
            );
        }
    }

    /// Deletes the samples in `[mint, maxt]` of the series matching `matchers`: logs a
    /// tombstones record to the WAL, then records the intervals. Returns the series affected.
    pub(crate) fn delete(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<u64, Error> {
        let refs = self.postings.postings_for_matchers(matchers);
        let mut stones = Vec::new();
        for r in refs {
            if let Some(s) = self.series(r)
                && lock(&s).has_data_in(mint, maxt, HeadPart::All)
            {
                stones.push(Stone { r, mint, maxt });
            }
        }
        if stones.is_empty() {
            return Ok(0);
        }
        let mut state = self.commit.lock().unwrap_or_else(|e| e.into_inner());
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if let Some(why) = &state.broken {
            return Err(Error::WalBroken(why.clone()));
        }
        let CommitState { wal, broken, buf, .. } = &mut *state;
        if let Some(w) = wal.as_mut() {
            buf.clear();
            record::encode_tombstones(&stones, buf);
            if let Err(e) = w.log(&[buf.as_slice()]) {
                *broken = Some(e.to_string());
                return Err(e);
            }
        }
        let _visible = self.isolation.write().unwrap_or_else(|e| e.into_inner());
        self.add_tombstones(&stones);
        Ok(stones.len() as u64)
    }

    /// Drops everything older than `mint` (now in a block): chunks that end before it, open
    /// chunks whose newest sample is older, the sealed out-of-order samples before it,
    /// tombstones that end before it and before every out-of-order sample left, and the
    /// series left with no samples (upstream `Head.Truncate` and `gc`). Must be called with
    /// the commit lock held, so no commit is half applied. Returns the number of series removed
    /// and the time before which tombstones were dropped.
    pub(crate) fn truncate_locked(&self, mint: i64) -> (u64, i64) {
        self.set_min_valid(mint);
        // Out-of-order samples the compaction did not take (they arrived after the seal) may
        // be older than `mint`; tombstones reaching them stay.
        let stones_floor = self.truncate_ooo_locked(mint).map_or(mint, |t| t.min(mint));
        let mut removed = 0;
        let mut new_min = i64::MAX;
        for (r, s) in self.all_series() {
            let mut g = lock(&s);
            if g.chunks.iter().any(|c| c.max_t < mint) {
                let mut kept = std::mem::take(&mut g.chunks).into_vec();
                kept.retain(|c| c.max_t >= mint);
                g.chunks = kept.into_boxed_slice();
            }
            if g.open.as_ref().is_some_and(|c| c.is_empty() || c.last_t() < mint) {
                g.open = None;
                g.until_cut = 0;
                g.take_st();
            }
            let first = g
                .chunks
                .first()
                .map(|c| c.min_t)
                .or_else(|| g.open.as_ref().map(XorChunk::first_t));
            match first {
                Some(t) => new_min = new_min.min(t),
                None if g.ooo().is_some() => {}
                None => {
                    g.removed = true;
                    drop(g);
                    self.remove_series(r, &s.labels);
                    removed += 1;
                }
            }
        }
        self.tombstones
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .truncate_before(stones_floor);
        // As upstream, the head's minimum time never goes back below the truncation point
        // (a chunk straddling it keeps its older samples, which are also in the block).
        let new_min = if new_min == i64::MAX {
            i64::MAX
        } else {
            new_min.max(mint)
        };
        self.min_t.store(new_min, Ordering::Release);
        (removed, stones_floor)
    }

    fn remove_series(&self, r: u64, labels: &Labels) {
        let hash = labels.stable_hash();
        self.hash_stripe(hash)
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(hash, r);
        self.ref_stripe(r).write().unwrap_or_else(|e| e.into_inner()).remove(r);
        self.ooo_refs.lock().unwrap_or_else(|e| e.into_inner()).remove(&r);
        self.postings.delete(r, labels);
        self.num_series.fetch_sub(1, Ordering::Relaxed);
        self.metadata.lock().unwrap_or_else(|e| e.into_inner()).remove(&r);
        self.tombstones.write().unwrap_or_else(|e| e.into_inner()).remove(r);
        Metrics::inc(&self.metrics.series_removed);
    }

    /// A new appender.
    pub fn appender(self: &Arc<Self>) -> HeadAppender {
        let b = self
            .spare
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        HeadAppender {
            head: self.clone(),
            samples: b.samples,
            handles: b.handles,
            pending: b.pending,
            pending_ooo: HashMap::new(),
            sts: Vec::new(),
            metadata: Vec::new(),
            repeated: false,
            prefetched: None,
        }
    }

    /// A querier over `[mint, maxt]`.
    pub fn querier(self: &Arc<Self>, mint: Timestamp, maxt: Timestamp) -> HeadQuerier {
        HeadQuerier {
            head: self.clone(),
            mint,
            maxt,
        }
    }

    /// Head statistics for `/api/v1/status/tsdb`.
    pub fn status(&self, limit: usize) -> TsdbStatus {
        let mut chunk_count = 0u64;
        for (_, s) in self.all_series() {
            let g = lock(&s);
            chunk_count += g.chunks.len() as u64
                + u64::from(g.open.as_ref().is_some_and(|c| !c.is_empty()))
                + g.ooo().map_or(0, |o| o.num_chunks() as u64);
        }
        let mut pairs = 0u64;
        let mut by_metric = Vec::new();
        let mut values_per_name: HashMap<String, u64> = HashMap::new();
        let mut bytes_per_name: HashMap<String, u64> = HashMap::new();
        let mut by_pair = Vec::new();
        self.postings.for_each_pair(|n, v, count| {
            pairs += 1;
            if n == METRIC_NAME {
                by_metric.push(NameCount {
                    name: v.to_owned(),
                    value: count as u64,
                });
            }
            *values_per_name.entry(n.to_owned()).or_default() += 1;
            // Upstream sums the value lengths of each name once per value, not per series.
            *bytes_per_name.entry(n.to_owned()).or_default() += v.len() as u64;
            by_pair.push(NameCount {
                name: format!("{n}={v}"),
                value: count as u64,
            });
        });
        let top = |mut v: Vec<NameCount>| {
            v.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.name.cmp(&b.name)));
            v.truncate(limit);
            v
        };
        let to_vec = |m: HashMap<String, u64>| m.into_iter().map(|(name, value)| NameCount { name, value }).collect();
        TsdbStatus {
            head_stats: HeadStats {
                num_series: self.num_series(),
                num_label_pairs: pairs,
                chunk_count,
                min_time: self.min_time(),
                max_time: self.max_time(),
            },
            series_count_by_metric_name: top(by_metric),
            label_value_count_by_label_name: top(to_vec(values_per_name)),
            memory_in_bytes_by_label_name: top(to_vec(bytes_per_name)),
            series_count_by_label_value_pair: top(by_pair),
        }
    }

    /// Refuses commits from now on, then writes buffered chunk bytes and fsyncs the WAL and
    /// the active chunk file. Queries still work.
    pub fn close(&self) -> Result<(), Error> {
        let mut c = self.commit.lock().unwrap_or_else(|e| e.into_inner());
        self.closed.store(true, Ordering::Release);
        if let Some(w) = c.wal.as_mut() {
            w.sync()?;
        }
        if let Some(d) = &self.chunks.disk {
            d.close()?;
        }
        Ok(())
    }
}

#[cfg(test)]
impl Head {
    /// Everything WAL replay determines, comparable across heads: per series (by reference)
    /// its labels, the bounds and bytes of its chunks (not where they are stored), its open
    /// chunk and cut time; then metadata, tombstones, time bounds and the next reference.
    pub(crate) fn replay_state(&self) -> String {
        let mut series = self.all_series();
        series.sort_by_key(|(r, _)| *r);
        let mut out = String::new();
        for (r, h) in series {
            let g = lock(&h);
            let chunks: Vec<(i64, i64, Vec<u8>)> = g
                .chunks
                .iter()
                .map(|c| {
                    let bytes = self
                        .chunks
                        .read(c.r)
                        .map(|(_, b)| b.as_ref().to_vec())
                        .unwrap_or_default();
                    (c.min_t, c.max_t, bytes)
                })
                .collect();
            out += &format!(
                "{r} {} logged={} chunks={chunks:?} open={:?} open_min_t={} next_at={}\n",
                h.labels,
                g.logged,
                g.open.as_ref().map(XorChunk::bytes),
                g.open_min_t(),
                g.next_at(),
            );
        }
        let mut meta: Vec<(u64, Metadata)> = self
            .metadata
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(r, m)| (*r, m.clone()))
            .collect();
        meta.sort_by_key(|(r, _)| *r);
        out += &format!(
            "metadata={meta:?}\ntombstones={:?}\nmin={} max={} next_ref={} series={}\n",
            self.tombstones.read().unwrap_or_else(|e| e.into_inner()),
            self.min_time(),
            self.max_time(),
            self.next_ref.load(Ordering::Relaxed),
            self.num_series(),
        );
        out
    }
}

/// Buffers samples for one commit. See [`Appender`].
#[derive(Debug)]
pub struct HeadAppender {
    head: Arc<Head>,
    samples: Vec<RefSample>,
    /// The series of each sample, so commit needs no lookups.
    handles: Vec<SeriesHandle>,
    /// Newest pending in-order timestamp and value bits per series in this appender.
    pending: RefMap<(i64, u64)>,
    /// Value bits of the pending out-of-order samples, by series and timestamp.
    pending_ooo: HashMap<(u64, i64), u64>,
    /// Start timestamps of the buffered samples that have one: index into `samples`, start
    /// timestamp. Empty (no allocation) for appenders that never see one.
    sts: Vec<(usize, i64)>,
    metadata: Vec<RefMetadata>,
    /// Whether a series got a sample after an in-order one of this appender (commit must
    /// then track each series' newest timestamp as it goes; a scrape never does this).
    repeated: bool,
    /// The series of the last `prefetch`, whose open chunk the next one loads.
    prefetched: Option<u64>,
}

impl HeadAppender {
    fn resolve(&self, series_ref: Option<SeriesRef>, labels: &Labels) -> storage::Result<(u64, SeriesHandle)> {
        if let Some(SeriesRef(r)) = series_ref
            && let Some(s) = self.head.series(r)
            && s.labels == *labels
        {
            return Ok((r, s));
        }
        if labels.is_empty() {
            return Err(storage::Error::InvalidSample("empty labelset".into()));
        }
        let (r, s, _) = self.head.get_or_create(labels, None);
        Ok((r, s))
    }

    /// Validates and applies the buffered samples under the commit lock (`state`); see the
    /// module documentation.
    fn do_commit(&mut self, head: &Head, mut state: MutexGuard<'_, CommitState>) -> Result<(), storage::Error> {
        if head.closed.load(Ordering::Acquire) {
            return Err(Error::Closed.into());
        }
        if let Some(why) = &state.broken {
            return Err(Error::WalBroken(why.clone()).into());
        }
        // Classify again: another appender may have committed newer samples since `append`,
        // turning an in-order sample into an out-of-order one (or one to drop). Under the
        // commit lock nothing else changes the series, so what is logged is what is applied.
        let mut handles = std::mem::take(&mut state.kept_handles);
        handles.reserve(self.samples.len());
        let mut ooo_handles: Vec<SeriesHandle> = Vec::new();
        let mut new_series: Vec<(u64, Labels)> = Vec::new();
        let mut new_refs: HashSet<u64, std::hash::BuildHasherDefault<RefHasher>> = HashSet::default();
        let mut kept = std::mem::take(&mut state.kept);
        kept.reserve(self.samples.len());
        // Start timestamps of `kept`, by position; empty when no sample of the commit has one.
        let mut kept_st: Vec<i64> = Vec::new();
        // Position in `self.sts` of the next sample with a start timestamp; commits without
        // any (`has_st` false) skip the bookkeeping.
        let has_st = !self.sts.is_empty();
        let mut next_st = 0;
        let mut ooo_kept: Vec<RefSample> = Vec::new();
        // Newest in-order timestamp per series accepted by this commit (only needed when a
        // series has more than one sample in it), and the out-of-order timestamps it accepted.
        let mut repeated = self.repeated;
        let mut newest = std::mem::take(&mut state.newest);
        let mut ooo_seen: HashSet<(u64, i64)> = HashSet::new();
        let floor = head.min_valid.load(Ordering::Acquire);
        let window = head.out_of_order_time_window();
        let head_max = head.max_time();
        let ooo_min = if window > 0 && head_max != i64::MIN {
            head_max.saturating_sub(window)
        } else {
            i64::MAX
        };
        for (i, (s, h)) in self.samples.iter().zip(self.handles.drain(..)).enumerate() {
            let mut s = *s;
            let mut h = h;
            let st = match self.sts.get(next_st) {
                Some(&(at, st)) if has_st && at == i => {
                    next_st += 1;
                    st
                }
                _ => 0,
            };
            let g = loop {
                let g = lock(&h);
                if !g.removed {
                    break g;
                }
                // Truncation garbage-collected the series meanwhile: recreate it. A later
                // append may have created it again already, under the new reference, which
                // then has two samples here: track the newest from now on.
                drop(g);
                repeated = true;
                let (r, fresh, _) = head.get_or_create(&h.labels, None);
                s.r = r;
                h = fresh;
            };
            let earlier = if repeated { newest.get(&s.r).copied() } else { None };
            let last = earlier.unwrap_or(i64::MIN).max(g.last_t());
            let ooo = if s.t > last && s.t >= floor {
                false
            } else if s.t != last && s.t >= ooo_min {
                if g.ooo().is_some_and(|o| o.buffered(s.t).is_some()) || !ooo_seen.insert((s.r, s.t)) {
                    Metrics::inc(&head.metrics.commit_dropped_samples);
                    continue;
                }
                true
            } else if s.t < floor {
                // Compaction wrote this range to a block since `append` accepted the sample.
                Metrics::inc(&head.metrics.out_of_bound_samples);
                continue;
            } else {
                Metrics::inc(&head.metrics.commit_dropped_samples);
                continue;
            };
            if !g.logged && new_refs.insert(s.r) {
                new_series.push((s.r, h.labels.clone()));
            }
            drop(g);
            if ooo {
                // Out-of-order chunks keep no start timestamps (FORMAT.md).
                ooo_kept.push(s);
                ooo_handles.push(h);
            } else {
                if repeated {
                    newest.insert(s.r, s.t);
                }
                if has_st && (st != 0 || !kept_st.is_empty()) {
                    // Filled with unknowns up to here on the first start timestamp.
                    kept_st.resize(kept.len(), 0);
                    kept_st.push(st);
                }
                kept.push(s);
                handles.push(h);
            }
        }
        for m in &self.metadata {
            if let Some(h) = head.series(m.r) {
                let g = lock(&h);
                if !g.logged && new_refs.insert(m.r) {
                    new_series.push((m.r, h.labels.clone()));
                }
            }
        }
        newest.clear();
        if newest.capacity() <= SPARE_MAX_SAMPLES {
            state.newest = newest;
        }
        let CommitState { wal, broken, buf, .. } = &mut *state;
        if let Some(wal) = wal.as_mut() {
            buf.clear();
            let mut ends = Vec::new();
            if !new_series.is_empty() {
                record::encode_series(new_series.iter().map(|(r, l)| (*r, l)), buf);
                ends.push(buf.len());
            }
            if !kept_st.is_empty() {
                // All of the commit's in-order samples in one record, so replay applies them
                // in the order they were applied here.
                record::encode_st_samples(&kept, &kept_st, buf);
                ends.push(buf.len());
            } else if !kept.is_empty() {
                record::encode_compact_samples(&kept, buf);
                ends.push(buf.len());
            }
            if !ooo_kept.is_empty() {
                record::encode_ooo_samples(&ooo_kept, buf);
                ends.push(buf.len());
            }
            if !self.metadata.is_empty() {
                record::encode_metadata(&self.metadata, buf);
                ends.push(buf.len());
            }
            let mut recs: Vec<&[u8]> = Vec::with_capacity(ends.len());
            let mut start = 0;
            for end in ends {
                recs.push(&buf[start..end]);
                start = end;
            }
            if let Err(e) = wal.log(&recs) {
                *broken = Some(e.to_string());
                return Err(e.into());
            }
        }
        for (r, _) in &new_series {
            if let Some(h) = head.series(*r) {
                lock(&h).logged = true;
            }
        }
        {
            let _visible = head.isolation.write().unwrap_or_else(|e| e.into_inner());
            let (mut min, mut max) = (i64::MAX, i64::MIN);
            for (i, (s, h)) in kept.iter().zip(&handles).enumerate() {
                let st = if kept_st.is_empty() { 0 } else { kept_st[i] };
                if lock(h).append(s.r, st, s.t, s.v, &head.opts, &head.chunks, &head.metrics) {
                    min = min.min(s.t);
                    max = max.max(s.t);
                }
            }
            head.min_t.fetch_min(min, Ordering::Relaxed);
            head.max_t.fetch_max(max, Ordering::Relaxed);
            head.metrics
                .samples_appended
                .fetch_add(kept.len() as u64, Ordering::Relaxed);
            let mut stored = 0;
            for (s, h) in ooo_kept.iter().zip(&ooo_handles) {
                stored += u64::from(head.insert_ooo(&mut lock(h), s.r, s.t, s.v));
            }
            head.metrics.ooo_samples_appended.fetch_add(stored, Ordering::Relaxed);
        }
        if kept.capacity() <= SPARE_MAX_SAMPLES {
            kept.clear();
            handles.clear();
            state.kept = kept;
            state.kept_handles = handles;
        }
        for m in self.metadata.drain(..) {
            head.set_metadata(
                m.r,
                Metadata {
                    metric_type: storage::MetricType::from_code(m.metric_type),
                    unit: m.unit,
                    help: m.help,
                },
            );
        }
        Ok(())
    }

    /// Ends a commit with result `res`.
    fn finish(&mut self, res: storage::Result<()>) -> storage::Result<()> {
        self.clear();
        if res.is_ok() {
            self.head.signal_if_due();
        }
        res
    }

    fn clear(&mut self) {
        self.samples.clear();
        self.handles.clear();
        self.pending.clear();
        self.pending_ooo.clear();
        self.sts.clear();
        self.metadata.clear();
        self.repeated = false;
        self.prefetched = None;
    }
}

impl Drop for HeadAppender {
    /// Hands the buffers on to the next appender (cleared: an appender dropped without commit
    /// or rollback discards its samples, as before).
    fn drop(&mut self) {
        self.clear();
        if self.samples.capacity() > SPARE_MAX_SAMPLES || self.pending.capacity() > SPARE_MAX_SAMPLES {
            return;
        }
        let mut spare = self.head.spare.lock().unwrap_or_else(|e| e.into_inner());
        if spare.len() < SPARE_BUFFERS {
            spare.push(AppendBuffers {
                samples: std::mem::take(&mut self.samples),
                handles: std::mem::take(&mut self.handles),
                pending: std::mem::take(&mut self.pending),
            });
        }
    }
}

impl Appender for HeadAppender {
    /// Starts loading the series so that an append after the next one finds it in cache: its
    /// allocation, the `Arc` counts (written by `append`'s lookup) and the series, up to three
    /// cache lines; and the open chunk of the series hinted last time, which is in cache by
    /// now, for the next append.
    fn prefetch(&mut self, series_ref: SeriesRef) {
        if let Some(prev) = self.prefetched.replace(series_ref.0) {
            let stripe = self.head.ref_stripe(prev).read().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = stripe.get(prev) {
                prefetch_open_chunk(s);
            }
        }
        let stripe = self
            .head
            .ref_stripe(series_ref.0)
            .read()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(s) = stripe.get(series_ref.0) {
            prefetch_series(s);
        }
    }

    fn append(
        &mut self,
        series_ref: Option<SeriesRef>,
        labels: &Labels,
        t: Timestamp,
        v: f64,
    ) -> storage::Result<SeriesRef> {
        let (r, s) = self.resolve(series_ref, labels)?;
        let head = &self.head;
        let window = head.out_of_order_time_window();
        let min_valid = head.min_valid_time();
        if window == 0 && t < min_valid {
            Metrics::inc(&head.metrics.out_of_bound_samples);
            return Err(storage::Error::OutOfBounds);
        }
        let last = match self.pending.get(&r) {
            Some(&p) => {
                self.repeated = true;
                Some(p)
            }
            None => {
                let g = lock(&s);
                // Commit appends to the open chunk; have its bytes in cache by then.
                if let Some(c) = &g.open {
                    c.prefetch_tail();
                }
                g.last()
            }
        };
        if let Some((lt, lv)) = last
            && t == lt
        {
            if lv == v.to_bits() {
                return Ok(SeriesRef(r));
            }
            Metrics::inc(&head.metrics.duplicate_samples);
            return Err(storage::Error::DuplicateSampleForTimestamp);
        }
        if last.is_none_or(|(lt, _)| t > lt) && t >= min_valid {
            self.pending.insert(r, (t, v.to_bits()));
            self.samples.push(RefSample { r, t, v });
            self.handles.push(s);
            return Ok(SeriesRef(r));
        }
        if window == 0 {
            Metrics::inc(&head.metrics.out_of_order_samples);
            return Err(storage::Error::OutOfOrderSample);
        }
        // Out of order: kept if within the window of the head's newest sample (upstream
        // `memSeries.appendable`), refused as too old otherwise.
        let head_max = head.max_time();
        if head_max == i64::MIN || t < head_max.saturating_sub(window) {
            Metrics::inc(&head.metrics.out_of_order_samples);
            return Err(storage::Error::TooOldSample);
        }
        let held = match self.pending_ooo.get(&(r, t)) {
            Some(&bits) => Some(bits),
            None => lock(&s).ooo().and_then(|o| o.buffered(t)),
        };
        if let Some(bits) = held {
            if bits == v.to_bits() {
                return Ok(SeriesRef(r));
            }
            Metrics::inc(&head.metrics.duplicate_samples);
            return Err(storage::Error::DuplicateSampleForTimestamp);
        }
        self.pending_ooo.insert((r, t), v.to_bits());
        self.samples.push(RefSample { r, t, v });
        self.handles.push(s);
        Ok(SeriesRef(r))
    }

    fn append_st(
        &mut self,
        series_ref: Option<SeriesRef>,
        labels: &Labels,
        st: Timestamp,
        t: Timestamp,
        v: f64,
    ) -> storage::Result<SeriesRef> {
        let before = self.samples.len();
        let r = self.append(series_ref, labels, t, v)?;
        if st != 0 && self.samples.len() > before {
            self.sts.push((before, st));
        }
        Ok(r)
    }

    fn update_metadata(
        &mut self,
        series_ref: Option<SeriesRef>,
        labels: &Labels,
        meta: &Metadata,
    ) -> storage::Result<SeriesRef> {
        let (r, _) = self.resolve(series_ref, labels)?;
        self.metadata.push(RefMetadata {
            r,
            metric_type: meta.metric_type as u8,
            unit: meta.unit.clone(),
            help: meta.help.clone(),
        });
        Ok(SeriesRef(r))
    }

    fn commit(&mut self) -> storage::Result<()> {
        let res = if self.samples.is_empty() && self.metadata.is_empty() {
            Ok(())
        } else {
            let head = self.head.clone();
            let state = head.commit.lock().unwrap_or_else(|e| e.into_inner());
            self.do_commit(&head, state)
        };
        self.finish(res)
    }

    /// Commits unless another commit, the head's truncation or a WAL segment cut holds the
    /// commit lock.
    fn try_commit(&mut self) -> Option<storage::Result<()>> {
        if self.samples.is_empty() && self.metadata.is_empty() {
            return Some(self.finish(Ok(())));
        }
        let head = self.head.clone();
        let state = match head.commit.try_lock() {
            Ok(state) => state,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let res = self.do_commit(&head, state);
        Some(self.finish(res))
    }

    fn rollback(&mut self) -> storage::Result<()> {
        self.clear();
        Ok(())
    }
}

/// Reads the head over a time range.
#[derive(Debug)]
pub struct HeadQuerier {
    head: Arc<Head>,
    mint: Timestamp,
    maxt: Timestamp,
}

impl HeadQuerier {
    fn matching(&self, matchers: &[Matcher]) -> Vec<SeriesHandle> {
        self.head
            .postings
            .postings_for_matchers(matchers)
            .into_iter()
            .filter_map(|r| self.head.series(r))
            .collect()
    }

    /// Captures the chunks of the matching series overlapping the range; series with none are
    /// left out. Stored chunks are resolved to their bytes now, so a later truncation of the
    /// head (which may delete their file) does not affect this capture.
    pub(crate) fn snapshot(&self, matchers: &[Matcher]) -> Vec<ChunkSeries> {
        // Postings and tombstones are read under the isolation lock too: a commit creates its
        // new series before it applies, so postings read earlier could miss series whose
        // samples the snapshot then sees only partly.
        let _visible = self.head.isolation.read().unwrap_or_else(|e| e.into_inner());
        let refs = self.head.postings.postings_for_matchers(matchers);
        let stones = self.head.tombstones.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            let Some(h) = self.head.series(r) else { continue };
            let g = lock(&h);
            let mut chunks: Vec<LazyChunk> = g
                .chunks
                .iter()
                .filter(|c| c.max_t >= self.mint && c.min_t <= self.maxt)
                .map(|c| match self.head.chunks.read(c.r) {
                    Ok((enc, bytes)) => LazyChunk::Ready {
                        min_t: c.min_t,
                        max_t: c.max_t,
                        st: enc == Encoding::XorSt,
                        bytes,
                    },
                    Err(e) => LazyChunk::Broken {
                        max_t: c.max_t,
                        err: e.into(),
                    },
                })
                .collect();
            if let Some(c) = &g.open
                && !c.is_empty()
                && c.last_t() >= self.mint
                && c.first_t() <= self.maxt
            {
                let (enc, bytes) = g.open_chunk_bytes(c);
                chunks.push(LazyChunk::Ready {
                    min_t: c.first_t(),
                    max_t: c.last_t(),
                    st: enc == Encoding::XorSt,
                    bytes,
                });
            }
            if !chunks.is_empty() {
                let s = ChunkSeries::new(
                    h.labels.clone(),
                    chunks,
                    None,
                    self.mint,
                    self.maxt,
                    stones.get(r).to_vec(),
                );
                if !s.is_empty() {
                    out.push(s);
                }
            }
            // Out-of-order samples follow as a second part of the same series; the merge
            // keeps the in-order sample of a timestamp both hold.
            if let Some(o) = g.ooo()
                && o.overlaps(self.mint, self.maxt, false)
            {
                let chunks: Vec<LazyChunk> = o
                    .read_chunks(self.mint, self.maxt, false)
                    .into_iter()
                    .map(|c: OooChunk| LazyChunk::Ready {
                        min_t: c.min_t,
                        max_t: c.max_t,
                        st: false,
                        bytes: ChunkBytes::Heap(c.bytes),
                    })
                    .collect();
                let s = ChunkSeries::new(
                    h.labels.clone(),
                    chunks,
                    None,
                    self.mint,
                    self.maxt,
                    stones.get(r).to_vec(),
                )
                .with_rank((RANK_HEAD_OOO, 0));
                if !s.is_empty() {
                    out.push(s);
                }
            }
        }
        out
    }

    /// The series set of a snapshot.
    pub(crate) fn select_snapshot(
        &self,
        mut series: Vec<ChunkSeries>,
        sorted: bool,
        _hints: Option<&SelectHints>,
    ) -> SeriesSet {
        if sorted {
            // Stable, so a series' out-of-order part stays behind its in-order part.
            series.sort_by(|a, b| a.labels().cmp(b.labels()));
        }
        Box::new(crate::querier::merge_sorted(series).into_iter().map(Ok))
    }
}

impl Querier for HeadQuerier {
    fn select(&self, sorted: bool, hints: Option<&SelectHints>, matchers: &[Matcher]) -> SeriesSet {
        let series = self.snapshot(matchers);
        self.select_snapshot(series, sorted, hints)
    }

    fn label_names(&self, matchers: &[Matcher]) -> storage::Result<Vec<String>> {
        if matchers.is_empty() {
            return Ok(self.head.postings.label_names());
        }
        let mut names: Vec<String> = Vec::new();
        for h in self.matching(matchers) {
            for l in h.labels.iter() {
                if let Err(i) = names.binary_search_by(|n| n.as_str().cmp(l.name)) {
                    names.insert(i, l.name.to_owned());
                }
            }
        }
        Ok(names)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> storage::Result<Vec<String>> {
        if matchers.is_empty() {
            return Ok(self.head.postings.label_values(name));
        }
        let mut values: Vec<String> = Vec::new();
        for h in self.matching(matchers) {
            if let Some(v) = h.labels.get(name)
                && let Err(i) = values.binary_search_by(|x| x.as_str().cmp(v))
            {
                values.insert(i, v.to_owned());
            }
        }
        Ok(values)
    }
}

/// An in-memory head is storage too (for tests and rule unit tests).
#[derive(Debug, Clone)]
pub struct MemoryStorage(pub Arc<Head>);

impl Queryable for MemoryStorage {
    fn querier(&self, mint: Timestamp, maxt: Timestamp) -> storage::Result<Box<dyn Querier>> {
        Ok(Box::new(self.0.querier(mint, maxt)))
    }
}

impl Appendable for MemoryStorage {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(self.0.appender())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use watchfire_model::{MatchType, STALE_NAN_BITS, stale_nan};

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn m(kind: MatchType, n: &str, v: &str) -> Matcher {
        Matcher::new(kind, n, v).unwrap()
    }

    fn read(head: &Arc<Head>, mint: i64, maxt: i64, ms: &[Matcher]) -> Vec<(Labels, Vec<(i64, u64)>)> {
        let q = head.querier(mint, maxt);
        q.select(true, None, ms)
            .map(|s| {
                let s = s.unwrap();
                let mut it = s.iterator();
                let mut out = Vec::new();
                while it.next() {
                    out.push((it.at().t, it.at().v.to_bits()));
                }
                assert!(it.err().is_none());
                (s.labels().clone(), out)
            })
            .collect()
    }

    #[test]
    fn nothing_is_visible_before_commit_and_rollback_discards() {
        let head = Head::in_memory(HeadOptions::default());
        let a = l(&[("__name__", "up"), ("job", "a")]);
        let mut app = head.appender();
        let r = app.append(None, &a, 1000, 1.0).unwrap();
        assert!(read(&head, i64::MIN, i64::MAX, &[m(MatchType::Equal, "job", "a")]).is_empty());
        app.rollback().unwrap();
        app.commit().unwrap();
        assert!(read(&head, i64::MIN, i64::MAX, &[m(MatchType::Equal, "job", "a")]).is_empty());
        assert_eq!(app.append(Some(r), &a, 2000, stale_nan()).unwrap(), r);
        app.commit().unwrap();
        let got = read(&head, i64::MIN, i64::MAX, &[m(MatchType::Equal, "job", "a")]);
        assert_eq!(got, vec![(a, vec![(2000, STALE_NAN_BITS)])]);
        assert_eq!(head.metrics().samples_appended.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn try_commit_commits_unless_the_commit_lock_is_held() {
        let head = Head::in_memory(HeadOptions::default());
        let a = l(&[("__name__", "up"), ("job", "a")]);
        let job = [m(MatchType::Equal, "job", "a")];
        let mut app = head.appender();
        // Nothing buffered: done without the lock.
        let held = head.commit.lock().unwrap();
        assert!(matches!(app.try_commit(), Some(Ok(()))));
        app.append(None, &a, 1000, 1.0).unwrap();
        app.append(None, &a, 2000, 2.0).unwrap();
        // Another commit (or truncation) holds the lock: nothing happens, nothing is lost.
        assert!(app.try_commit().is_none());
        assert!(read(&head, i64::MIN, i64::MAX, &job).is_empty());
        drop(held);
        assert!(matches!(app.try_commit(), Some(Ok(()))));
        let want = vec![(a.clone(), vec![(1000, 1f64.to_bits()), (2000, 2f64.to_bits())])];
        assert_eq!(read(&head, i64::MIN, i64::MAX, &job), want);
        // A failed try leaves the appender usable for a blocking commit.
        app.append(None, &a, 3000, 3.0).unwrap();
        let held = head.commit.lock().unwrap();
        assert!(app.try_commit().is_none());
        drop(held);
        app.commit().unwrap();
        assert_eq!(read(&head, i64::MIN, i64::MAX, &job)[0].1.len(), 3);
        assert_eq!(head.metrics().samples_appended.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn rejects_and_counts_bad_samples() {
        let head = Head::in_memory(HeadOptions::default());
        let a = l(&[("__name__", "x")]);
        let mut app = head.appender();
        app.append(None, &a, 10_000_000, 1.0).unwrap();
        // Within one appender, pending samples count.
        assert!(matches!(
            app.append(None, &a, 9_000_000, 1.0),
            Err(storage::Error::OutOfOrderSample)
        ));
        app.commit().unwrap();
        assert!(matches!(
            app.append(None, &a, 9_999_999, 1.0),
            Err(storage::Error::OutOfOrderSample)
        ));
        assert!(matches!(
            app.append(None, &a, 10_000_000, 2.0),
            Err(storage::Error::DuplicateSampleForTimestamp)
        ));
        // The same value at the same timestamp is accepted and ignored.
        app.append(None, &a, 10_000_000, 1.0).unwrap();
        // Half a chunk range (1h) behind the newest sample is out of bounds, even for new series.
        let b = l(&[("__name__", "y")]);
        assert!(matches!(
            app.append(None, &b, 10_000_000 - 3_600_001, 1.0),
            Err(storage::Error::OutOfBounds)
        ));
        assert!(matches!(
            app.append(None, &Labels::empty(), 10_000_000, 1.0),
            Err(storage::Error::InvalidSample(_))
        ));
        app.commit().unwrap();
        let mx = head.metrics();
        assert_eq!(mx.out_of_order_samples.load(Ordering::Relaxed), 2);
        assert_eq!(mx.duplicate_samples.load(Ordering::Relaxed), 1);
        assert_eq!(mx.out_of_bound_samples.load(Ordering::Relaxed), 1);
        assert_eq!(
            read(&head, 0, i64::MAX, &[m(MatchType::Equal, "__name__", "x")])[0]
                .1
                .len(),
            1
        );
    }

    fn ooo_head(window: i64) -> Arc<Head> {
        Head::in_memory(HeadOptions {
            out_of_order_time_window: window,
            ..HeadOptions::default()
        })
    }

    #[test]
    fn out_of_order_window_edges() {
        const MAX: i64 = 10_000_000;
        let head = ooo_head(600_000);
        let a = l(&[("__name__", "a")]);
        let mut app = head.appender();
        app.append(None, &a, MAX, 1.0).unwrap();
        app.commit().unwrap();
        // Exactly the window behind the head's newest sample is accepted; one ms more is not.
        app.append(None, &a, MAX - 600_000, 2.0).unwrap();
        assert!(matches!(
            app.append(None, &a, MAX - 600_001, 3.0),
            Err(storage::Error::TooOldSample)
        ));
        // Within one appender: a second sample at a timestamp, same value ignored, another
        // value refused.
        app.append(None, &a, MAX - 600_000, 2.0).unwrap();
        assert!(matches!(
            app.append(None, &a, MAX - 600_000, 9.0),
            Err(storage::Error::DuplicateSampleForTimestamp)
        ));
        app.append(None, &a, MAX - 1, 4.0).unwrap();
        app.commit().unwrap();
        // Against the committed buffer too.
        app.append(None, &a, MAX - 1, 4.0).unwrap();
        assert!(matches!(
            app.append(None, &a, MAX - 1, 5.0),
            Err(storage::Error::DuplicateSampleForTimestamp)
        ));
        // The newest sample's timestamp is a duplicate, not out of order, as without a window.
        assert!(matches!(
            app.append(None, &a, MAX, 7.0),
            Err(storage::Error::DuplicateSampleForTimestamp)
        ));
        app.commit().unwrap();
        let mx = head.metrics();
        assert_eq!(mx.out_of_order_samples.load(Ordering::Relaxed), 1, "the too-old one");
        assert_eq!(mx.duplicate_samples.load(Ordering::Relaxed), 3);
        assert_eq!(mx.ooo_samples_appended.load(Ordering::Relaxed), 2);
        assert_eq!(mx.samples_appended.load(Ordering::Relaxed), 1);
        let got = read(&head, i64::MIN, i64::MAX, &[m(MatchType::Equal, "__name__", "a")]);
        assert_eq!(
            got[0].1,
            [
                (MAX - 600_000, 2.0f64.to_bits()),
                (MAX - 1, 4.0f64.to_bits()),
                (MAX, 1.0f64.to_bits())
            ]
        );
        // The head's bounds are the in-order data's.
        assert_eq!((head.min_time(), head.max_time()), (MAX, MAX));

        // A window wider than the in-order bound (half a chunk range, 1h): a new series may
        // start 5h back; in-order appends keep going.
        let head = ooo_head(5 * 3_600_000);
        let mut app = head.appender();
        app.append(None, &a, MAX, 1.0).unwrap();
        app.commit().unwrap();
        let b = l(&[("__name__", "b")]);
        app.append(None, &b, MAX - 5 * 3_600_000, 1.0).unwrap();
        app.append(None, &b, MAX - 5 * 3_600_000 + 1, 2.0).unwrap();
        assert!(matches!(
            app.append(None, &b, MAX - 5 * 3_600_000 - 1, 3.0),
            Err(storage::Error::TooOldSample)
        ));
        app.append(None, &b, MAX + 1, 4.0).unwrap();
        app.commit().unwrap();
        let got = read(&head, i64::MIN, i64::MAX, &[m(MatchType::Equal, "__name__", "b")]);
        assert_eq!(got[0].1.len(), 3);
        assert_eq!(head.max_time(), MAX + 1);

        // Window 0 refuses as before, and changing it applies to appends from then on.
        head.set_out_of_order_time_window(0);
        assert!(matches!(
            app.append(None, &a, MAX - 1, 1.0),
            Err(storage::Error::OutOfOrderSample)
        ));
        assert!(matches!(
            app.append(None, &a, MAX - 4_000_000, 1.0),
            Err(storage::Error::OutOfBounds)
        ));
        head.set_out_of_order_time_window(60_000);
        app.append(None, &a, MAX - 1, 1.0).unwrap();
        app.commit().unwrap();
    }

    #[test]
    fn queries_merge_in_order_and_out_of_order_samples() {
        let head = ooo_head(3_600_000);
        let a = l(&[("__name__", "a")]);
        let mut app = head.appender();
        // In-order every 10 s over 20 min, then out-of-order at the 5 s marks in between, more
        // than a buffer's worth, so some are in cut chunks; one lands on an in-order timestamp.
        for i in 0..120 {
            app.append(None, &a, i * 10_000, i as f64).unwrap();
        }
        app.commit().unwrap();
        for i in (0..100).rev() {
            app.append(None, &a, i * 10_000 + 5_000, -(i as f64)).unwrap();
        }
        app.append(None, &a, 500_000, 1e9).unwrap();
        app.commit().unwrap();
        let s = head.series(head.lookup(&a).unwrap()).unwrap();
        assert!(lock(&s).ooo().unwrap().num_chunks() >= 4);
        drop(s);
        let got = read(&head, i64::MIN, i64::MAX, &[m(MatchType::Equal, "__name__", "a")]);
        assert_eq!(got.len(), 1, "one series, merged");
        let samples = &got[0].1;
        assert_eq!(samples.len(), 220);
        assert!(samples.windows(2).all(|w| w[0].0 < w[1].0));
        // The in-order sample of a timestamp both hold wins.
        assert!(samples.contains(&(500_000, 50.0f64.to_bits())));
        assert!(samples.contains(&(505_000, (-50.0f64).to_bits())));
        // Clipped ranges and seeks across both parts.
        let got = read(&head, 100_000, 130_000, &[m(MatchType::Equal, "__name__", "a")]);
        let ts: Vec<i64> = got[0].1.iter().map(|s| s.0).collect();
        assert_eq!(ts, [100_000, 105_000, 110_000, 115_000, 120_000, 125_000, 130_000]);
        let q = head.querier(0, i64::MAX);
        let series = q
            .select(false, None, &[m(MatchType::Equal, "__name__", "a")])
            .next()
            .unwrap()
            .unwrap();
        let mut it = series.iterator();
        assert!(it.seek(996_000));
        assert_eq!(it.at().t, 1_000_000);
        assert!(it.next());
        assert_eq!(it.at().t, 1_010_000);
        // Only out-of-order samples in the range: still found.
        let got = read(&head, 15_000, 15_000, &[m(MatchType::Equal, "__name__", "a")]);
        assert_eq!(got[0].1, [(15_000, (-1.0f64).to_bits())]);
    }

    #[test]
    fn a_commit_turns_a_sample_overtaken_by_another_commit_into_an_out_of_order_one() {
        let head = ooo_head(600_000);
        let a = l(&[("__name__", "x")]);
        let (mut one, mut two) = (head.appender(), head.appender());
        one.append(None, &a, 100_000, 1.0).unwrap();
        two.append(None, &a, 200_000, 2.0).unwrap();
        two.commit().unwrap();
        one.commit().unwrap();
        assert_eq!(
            read(&head, 0, i64::MAX, &[m(MatchType::Equal, "__name__", "x")])[0].1,
            vec![(100_000, 1.0f64.to_bits()), (200_000, 2.0f64.to_bits())]
        );
        assert_eq!(head.metrics().commit_dropped_samples.load(Ordering::Relaxed), 0);
        assert_eq!(head.metrics().ooo_samples_appended.load(Ordering::Relaxed), 1);
        // The same timestamp as the newest sample is still dropped, never stored twice.
        let (mut one, mut two) = (head.appender(), head.appender());
        one.append(None, &a, 300_000, 3.0).unwrap();
        two.append(None, &a, 300_000, 4.0).unwrap();
        one.commit().unwrap();
        two.commit().unwrap();
        assert_eq!(head.metrics().commit_dropped_samples.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn racing_appenders_drop_the_loser_at_commit() {
        let head = Head::in_memory(HeadOptions::default());
        let a = l(&[("__name__", "x")]);
        let (mut one, mut two) = (head.appender(), head.appender());
        one.append(None, &a, 100, 1.0).unwrap();
        two.append(None, &a, 200, 2.0).unwrap();
        two.commit().unwrap();
        one.commit().unwrap();
        assert_eq!(
            read(&head, 0, 1000, &[m(MatchType::Equal, "__name__", "x")])[0].1,
            vec![(200, 2.0f64.to_bits())]
        );
        assert_eq!(head.metrics().commit_dropped_samples.load(Ordering::Relaxed), 1);
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn series_stay_small() {
        // Every active series holds one of each, so a field more is a cost per series: with
        // the Arc's counters a series is 120 bytes, a 128-byte glibc chunk.
        assert_eq!(std::mem::size_of::<Option<XorChunk>>(), 48);
        assert!(
            std::mem::size_of::<HeadSeries>() <= 104,
            "{}",
            std::mem::size_of::<HeadSeries>()
        );
    }

    /// Every sample of `labels` with its start timestamp, read through `for_each_until_st`
    /// and through `next`/`at_st`, which must agree.
    fn read_st(head: &Arc<Head>, labels: &Labels) -> Vec<(i64, f64, i64)> {
        let ms: Vec<Matcher> = labels.iter().map(|p| m(MatchType::Equal, p.name, p.value)).collect();
        let q = head.querier(i64::MIN, i64::MAX);
        let series: Vec<_> = q.select(true, None, &ms).map(Result::unwrap).collect();
        assert_eq!(series.len(), 1);
        let mut by_next = Vec::new();
        let mut it = series[0].iterator();
        while it.next() {
            by_next.push((it.at().t, it.at().v, it.at_st()));
        }
        let mut bulk = Vec::new();
        let mut it = series[0].iterator();
        if it.next() {
            it.for_each_until_st(i64::MAX, &mut |s, st| bulk.push((s.t, s.v, st)));
        }
        assert_eq!(by_next, bulk);
        by_next
    }

    #[test]
    fn start_timestamps_are_stored_per_sample_across_chunks() {
        let head = Head::in_memory(HeadOptions::default());
        let with = l(&[("__name__", "c_total"), ("st", "yes")]);
        let without = l(&[("__name__", "c_total"), ("st", "no")]);
        let mut app = head.appender();
        let mut want = Vec::new();
        // 300 samples: several chunks. The first two have no start timestamp, then a
        // cumulative run, then deltas (the start is the previous sample).
        for i in 0..300i64 {
            let t = 1_000 + i * 15_000;
            let st = match i {
                0..2 => 0,
                2..150 => 500,
                _ => t - 15_000,
            };
            app.append_st(None, &with, st, t, i as f64).unwrap();
            app.append(None, &without, t, i as f64).unwrap();
            want.push((t, i as f64, st));
        }
        app.commit().unwrap();
        assert_eq!(read_st(&head, &with), want);
        assert!(read_st(&head, &without).iter().all(|s| s.2 == 0));
        // Only the series with start timestamps has the side state, and its chunks are the
        // start-timestamp encoding; the other's are plain XOR.
        let (_, h) = (0, head.series(head.lookup(&with).unwrap()).unwrap());
        assert!(lock(&h).st().is_some());
        let plain = head.series(head.lookup(&without).unwrap()).unwrap();
        assert!(lock(&plain).side.is_none());
        let encs: Vec<Encoding> = lock(&h)
            .chunks
            .iter()
            .map(|c| head.chunks.read(c.r).unwrap().0)
            .collect();
        assert!(
            encs.len() >= 2 && encs.iter().all(|e| *e == Encoding::XorSt),
            "{encs:?}"
        );
        assert!(
            lock(&plain)
                .chunks
                .iter()
                .all(|c| head.chunks.read(c.r).unwrap().0 == Encoding::Xor)
        );
    }

    #[test]
    fn a_chunk_without_start_timestamps_stays_plain_xor() {
        let head = Head::in_memory(HeadOptions::default());
        let a = l(&[("__name__", "a")]);
        let mut app = head.appender();
        // Start timestamps in the first chunk only.
        for i in 0..400i64 {
            let st = if i < 10 { 1 } else { 0 };
            app.append_st(None, &a, st, 10 + i * 1_000, 1.0).unwrap();
        }
        app.commit().unwrap();
        let h = head.series(head.lookup(&a).unwrap()).unwrap();
        let encs: Vec<Encoding> = lock(&h)
            .chunks
            .iter()
            .map(|c| head.chunks.read(c.r).unwrap().0)
            .collect();
        assert_eq!(encs[0], Encoding::XorSt);
        assert!(encs[1..].iter().all(|e| *e == Encoding::Xor), "{encs:?}");
        assert!(lock(&h).side.is_none(), "no start timestamps left in the open chunk");
        let got = read_st(&head, &a);
        assert_eq!(got.iter().filter(|s| s.2 == 1).count(), 10, "{:?}", &got[..12]);
    }

    #[test]
    fn a_series_is_found_by_labels_and_reference_until_removed() {
        let head = Head::in_memory(HeadOptions::default());
        let a = l(&[("__name__", "a"), ("x", "1")]);
        let b = l(&[("__name__", "a"), ("x", "2")]);
        let (ra, _, created) = head.get_or_create(&a, None);
        assert!(created);
        let (rb, _, _) = head.get_or_create(&b, None);
        assert_ne!(ra, rb);
        assert_eq!(head.get_or_create(&a, None).0, ra);
        assert_eq!(head.lookup(&b), Some(rb));
        assert_eq!(head.series(ra).unwrap().labels, a);
        head.remove_series(ra, &a);
        assert_eq!(head.lookup(&a), None);
        assert!(head.series(ra).is_none());
        assert_eq!(head.lookup(&b), Some(rb));
        let (ra2, _, created) = head.get_or_create(&a, None);
        assert!(created && ra2 != ra);
    }

    #[test]
    fn hash_collisions_keep_series_apart() {
        // Two label sets forced under one hash: each is found by comparing against the labels
        // of the series its reference points to, and removing one leaves the other.
        let head = Head::in_memory(HeadOptions::default());
        let a = l(&[("__name__", "a")]);
        let b = l(&[("__name__", "b")]);
        let (ra, _, _) = head.get_or_create(&a, None);
        let (rb, _, _) = head.get_or_create(&b, None);
        let hash = a.stable_hash();
        let mut stripe = HashStripe::default();
        stripe.insert(hash, ra, |r| head.series(r));
        stripe.insert(hash, rb, |r| head.series(r));
        let find = |s: &HashStripe, l: &Labels| s.get(hash, l, |r| head.series(r)).map(|(r, _)| r);
        assert_eq!(find(&stripe, &a), Some(ra));
        assert_eq!(find(&stripe, &b), Some(rb));
        assert_eq!(find(&stripe, &l(&[("__name__", "c")])), None);
        assert_eq!(stripe.0.len(), 2);
        stripe.remove(hash, ra);
        assert_eq!(find(&stripe, &a), None);
        assert_eq!(find(&stripe, &b), Some(rb));
        assert_eq!(stripe.0.len(), 1);
    }

    #[test]
    fn reference_pages_are_freed_with_their_last_series() {
        let mut stripe = RefStripe::default();
        let s = |n: &str| {
            Arc::new(HeadSeries {
                labels: l(&[("__name__", n)]),
                state: Mutex::new(MemSeries::new()),
            })
        };
        let base = 7 << PAGE_BITS;
        stripe.insert(base + 1, s("a"));
        stripe.insert(base + PAGE as u64 - 1, s("b"));
        stripe.insert(base + PAGE as u64, s("c"));
        assert_eq!(stripe.pages.len(), 2);
        assert_eq!(stripe.get(base + 1).unwrap().labels, l(&[("__name__", "a")]));
        assert!(stripe.get(base).is_none() && stripe.get(base + 2).is_none());
        let mut all: Vec<u64> = stripe.iter().map(|(r, _)| r).collect();
        all.sort_unstable();
        assert_eq!(all, [base + 1, base + PAGE as u64 - 1, base + PAGE as u64]);
        stripe.remove(base + 1);
        assert_eq!(stripe.pages.len(), 2);
        stripe.remove(base + PAGE as u64 - 1);
        assert_eq!(stripe.pages.len(), 1);
        assert!(stripe.get(base + PAGE as u64 - 1).is_none());
        assert!(stripe.get(base + PAGE as u64).is_some());
    }

    #[test]
    fn chunks_are_cut_at_120_samples_and_range_boundaries() {
        let head = Head::in_memory(HeadOptions::default());
        let a = l(&[("__name__", "x")]);
        let mut app = head.appender();
        // 15s interval from t=0: the 2h range holds 480 samples, so four chunks of 120.
        for i in 0..600 {
            app.append(None, &a, i * 15_000, i as f64).unwrap();
            app.commit().unwrap();
        }
        let s = head.series(head.lookup(&a).unwrap()).unwrap();
        let g = lock(&s);
        let spans: Vec<(i64, i64)> = g.chunks.iter().map(|c| (c.min_t, c.max_t)).collect();
        assert_eq!(
            spans[..4],
            [
                (0, 1_785_000),
                (1_800_000, 3_585_000),
                (3_600_000, 5_385_000),
                (5_400_000, 7_185_000)
            ]
        );
        assert_eq!(g.open_min_t(), 7_200_000, "cut at the 2h boundary");
        drop(g);
        let got = read(&head, i64::MIN, i64::MAX, &[m(MatchType::Equal, "__name__", "x")]);
        assert_eq!(got[0].1.len(), 600);
        assert!(
            got[0]
                .1
                .iter()
                .enumerate()
                .all(|(i, (t, v))| *t == i as i64 * 15_000 && *v == (i as f64).to_bits())
        );
    }

    #[test]
    fn selects_sorted_clipped_and_seekable() {
        let head = Head::in_memory(HeadOptions {
            samples_per_chunk: 8,
            ..HeadOptions::default()
        });
        let mut app = head.appender();
        for job in ["b", "a", "c"] {
            let labels = l(&[("__name__", "up"), ("job", job)]);
            for t in 0..100 {
                app.append(None, &labels, t * 10, t as f64).unwrap();
            }
        }
        app.append(None, &l(&[("__name__", "down")]), 5, 0.0).unwrap();
        app.commit().unwrap();
        let got = read(
            &head,
            100,
            200,
            &[
                m(MatchType::Equal, "__name__", "up"),
                m(MatchType::NotEqual, "job", "c"),
            ],
        );
        let jobs: Vec<&str> = got.iter().map(|(l, _)| l.get("job").unwrap()).collect();
        assert_eq!(jobs, ["a", "b"]);
        assert_eq!(got[0].1.first().unwrap().0, 100);
        assert_eq!(got[0].1.last().unwrap().0, 200);
        assert_eq!(got[0].1.len(), 11);

        let q = head.querier(0, 1000);
        let s = q
            .select(false, None, &[m(MatchType::Equal, "job", "a")])
            .next()
            .unwrap()
            .unwrap();
        let mut it = s.iterator();
        assert!(it.seek(555));
        assert_eq!(it.at().t, 560);
        assert!(it.seek(100), "seeking backwards stays");
        assert_eq!(it.at().t, 560);
        assert!(it.next());
        assert_eq!(it.at().t, 570);
        assert!(it.seek(990));
        assert!(!it.next());
        assert!(!it.seek(0));
        // Series without samples in the range are left out.
        assert!(read(&head, 2000, 3000, &[m(MatchType::Regex, "__name__", ".+")]).is_empty());

        assert_eq!(q.label_names(&[]).unwrap(), ["__name__", "job"]);
        assert_eq!(
            q.label_names(&[m(MatchType::Equal, "__name__", "down")]).unwrap(),
            ["__name__"]
        );
        assert_eq!(q.label_values("job", &[]).unwrap(), ["a", "b", "c"]);
        assert_eq!(
            q.label_values("job", &[m(MatchType::Regex, "job", "a|c")]).unwrap(),
            ["a", "c"]
        );
    }

    #[test]
    fn status_counts_series_by_name_and_pair() {
        let head = Head::in_memory(HeadOptions::default());
        let mut app = head.appender();
        for i in 0..3 {
            app.append(None, &l(&[("__name__", "up"), ("i", &i.to_string())]), 1, 1.0)
                .unwrap();
        }
        app.append(None, &l(&[("__name__", "down"), ("i", "0")]), 1, 1.0)
            .unwrap();
        app.commit().unwrap();
        let s = head.status(2);
        assert_eq!(s.head_stats.num_series, 4);
        assert_eq!(s.head_stats.num_label_pairs, 5);
        assert_eq!(s.head_stats.chunk_count, 4);
        assert_eq!((s.head_stats.min_time, s.head_stats.max_time), (1, 1));
        assert_eq!(
            s.series_count_by_metric_name,
            [
                NameCount {
                    name: "up".into(),
                    value: 3
                },
                NameCount {
                    name: "down".into(),
                    value: 1
                }
            ]
        );
        assert_eq!(
            s.series_count_by_label_value_pair[0],
            NameCount {
                name: "__name__=up".into(),
                value: 3
            }
        );
        assert_eq!(
            s.label_value_count_by_label_name[0],
            NameCount {
                name: "i".into(),
                value: 3
            }
        );
    }
}
