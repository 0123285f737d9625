//! Reading across the head and the blocks: series made of chunks (held, or read lazily from a
//! block), iterators that skip deleted intervals, and the merge of the same series from several
//! sources with duplicate samples dropped (upstream `storage/merge.go`, `tsdb/querier.go`).

use std::sync::{Arc, RwLock};

use watchfire_model::{Labels, Matcher, Sample, Timestamp};
use watchfire_storage::{self as storage, Querier, SampleIterator, SelectHints, Series, SeriesSet};

use crate::block::Block;
use crate::chunkenc::{ChunkCursor, Encoding, decode_start_timestamps};
use crate::head::{ChunkBytes, Head, HeadQuerier};
use crate::tombstones::Interval;

/// The blocks of a database, sorted by time; replaced as a whole when it changes, so a reader
/// that cloned the inner `Arc` keeps a consistent list (and the blocks' mappings) alive.
pub(crate) type BlockList = Arc<RwLock<Arc<Vec<Arc<Block>>>>>;

/// A chunk of a series as a querier captured it.
#[derive(Clone, Debug)]
pub(crate) enum LazyChunk {
    /// Bytes already at hand (head chunks); `st` for an [`Encoding::XorSt`] chunk.
    Ready {
        min_t: i64,
        max_t: i64,
        st: bool,
        bytes: ChunkBytes,
    },
    /// A chunk of the series' block, read when the iterator reaches it.
    InBlock { min_t: i64, max_t: i64, r: u64 },
    /// A chunk that could not be read when the series was captured.
    Broken { max_t: i64, err: storage::Error },
}

impl LazyChunk {
    fn max_t(&self) -> i64 {
        match self {
            LazyChunk::Ready { max_t, .. } | LazyChunk::InBlock { max_t, .. } | LazyChunk::Broken { max_t, .. } => {
                *max_t
            }
        }
    }

    fn min_t(&self) -> i64 {
        match self {
            LazyChunk::Ready { min_t, .. } | LazyChunk::InBlock { min_t, .. } => *min_t,
            LazyChunk::Broken { .. } => i64::MIN,
        }
    }
}

/// Which source's sample a merge keeps when several have one at a timestamp: the lowest
/// rank. In-order data before out-of-order data, blocks before the head, and among blocks of
/// one kind the older range first; compaction ranks its sources the same way
/// (`block::write_block`), so merging blocks never changes what queries return.
pub(crate) type Rank = (u8, usize);

/// Rank class of a block holding in-order data.
pub(crate) const RANK_BLOCK: u8 = 0;
/// Rank class of the head's in-order samples.
pub(crate) const RANK_HEAD: u8 = 1;
/// Rank class of a block of out-of-order samples only.
pub(crate) const RANK_OOO_BLOCK: u8 = 2;
/// Rank class of the head's out-of-order samples.
pub(crate) const RANK_HEAD_OOO: u8 = 3;

/// The empty tombstone list, shared so that series without tombstones allocate none.
fn no_stones() -> Arc<[Interval]> {
    static EMPTY: std::sync::OnceLock<Arc<[Interval]>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Arc::from(Vec::new())).clone()
}

/// One series of one source (the head or a block) over a querier's range.
#[derive(Debug)]
pub(crate) struct ChunkSeries {
    labels: Labels,
    chunks: Arc<[LazyChunk]>,
    block: Option<Arc<Block>>,
    mint: Timestamp,
    maxt: Timestamp,
    stones: Arc<[Interval]>,
    rank: Rank,
}

impl ChunkSeries {
    pub(crate) fn new(
        labels: Labels,
        chunks: Vec<LazyChunk>,
        block: Option<Arc<Block>>,
        mint: Timestamp,
        maxt: Timestamp,
        stones: Vec<Interval>,
    ) -> Self {
        // Drop chunks that the tombstones cover entirely. Most series have no tombstones:
        // their chunks are taken as they are and share one empty interval list.
        let chunks: Arc<[LazyChunk]> = if stones.is_empty() {
            chunks.into()
        } else {
            chunks
                .into_iter()
                .filter(|c| {
                    !stones
                        .iter()
                        .any(|iv| iv.mint <= c.min_t().max(mint) && iv.maxt >= c.max_t().min(maxt))
                })
                .collect()
        };
        let stones = if stones.is_empty() { no_stones() } else { stones.into() };
        ChunkSeries {
            labels,
            chunks,
            block,
            mint,
            maxt,
            stones,
            rank: (RANK_HEAD, 0),
        }
    }

    /// Sets which source the series comes from, for merging (see [`Rank`]).
    pub(crate) fn with_rank(mut self, rank: Rank) -> Self {
        self.rank = rank;
        self
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    fn iter(&self) -> ChunksIterator {
        ChunksIterator {
            chunks: self.chunks.clone(),
            block: self.block.clone(),
            next_chunk: 0,
            cur: None,
            sts: Vec::new(),
            mint: self.mint,
            maxt: self.maxt,
            stones: self.stones.clone(),
            err: None,
            done: false,
        }
    }
}

impl Series for ChunkSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn iterator(&self) -> Box<dyn SampleIterator> {
        Box::new(self.iter())
    }
}

/// Walks a series' chunks in order, skipping whole chunks on `seek`, clipping samples to the
/// querier's range and skipping deleted intervals.
struct ChunksIterator {
    chunks: Arc<[LazyChunk]>,
    block: Option<Arc<Block>>,
    next_chunk: usize,
    cur: Option<ChunkCursor<ChunkBytes>>,
    /// Start timestamps of the samples of `cur` when it is an [`Encoding::XorSt`] chunk,
    /// empty otherwise.
    sts: Vec<i64>,
    mint: Timestamp,
    maxt: Timestamp,
    stones: Arc<[Interval]>,
    err: Option<storage::Error>,
    done: bool,
}

impl ChunksIterator {
    fn fail(&mut self, e: storage::Error) -> bool {
        self.err = Some(e);
        self.finish()
    }

    fn finish(&mut self) -> bool {
        self.done = true;
        self.cur = None;
        false
    }

    /// Accepts the position `cur` reached, or ends iteration past the range or on an error.
    fn settle(&mut self, moved: bool) -> Option<bool> {
        let it = self.cur.as_ref()?;
        if moved {
            return Some(if it.at_t() > self.maxt { self.finish() } else { true });
        }
        if let Some(e) = it.err() {
            let e = storage::Error::engine(e.clone());
            return Some(self.fail(e));
        }
        self.cur = None;
        None
    }

    /// Opens the following chunks until one has a sample at or after `t` and positions there.
    fn seek_in_next_chunks(&mut self, t: Timestamp) -> bool {
        while self.next_chunk < self.chunks.len() {
            let c = self.chunks[self.next_chunk].clone();
            self.next_chunk += 1;
            if c.max_t() < t {
                // Whole chunks before the target are skipped without decoding.
                continue;
            }
            let (enc, bytes) = match c {
                LazyChunk::Ready { bytes, st, .. } => (if st { Encoding::XorSt } else { Encoding::Xor }, bytes),
                LazyChunk::InBlock { r, .. } => match self.block.as_ref().map(|b| b.chunk(r)) {
                    Some(Ok((enc, b))) => (enc, b),
                    Some(Err(e)) => return self.fail(e.into()),
                    None => {
                        return self.fail(storage::Error::engine(std::io::Error::other(
                            "block chunk without block",
                        )));
                    }
                },
                LazyChunk::Broken { err, .. } => return self.fail(err),
            };
            self.sts.clear();
            if enc == Encoding::XorSt {
                match decode_start_timestamps(bytes.as_ref()) {
                    Ok(sts) => self.sts = sts,
                    Err(e) => return self.fail(storage::Error::engine(e)),
                }
            }
            let mut it = match ChunkCursor::new(enc, bytes) {
                Ok(it) => it,
                Err(e) => return self.fail(storage::Error::engine(e)),
            };
            let moved = it.seek(t);
            self.cur = Some(it);
            if let Some(r) = self.settle(moved) {
                return r;
            }
        }
        self.finish()
    }

    fn raw_next(&mut self) -> bool {
        if self.done {
            return false;
        }
        if let Some(it) = self.cur.as_mut() {
            let moved = it.next();
            if let Some(r) = self.settle(moved) {
                return r;
            }
        }
        self.seek_in_next_chunks(self.mint)
    }

    fn raw_seek(&mut self, t: Timestamp) -> bool {
        if self.done {
            return false;
        }
        let t = t.max(self.mint);
        if let Some(it) = self.cur.as_mut() {
            if it.at_t() >= t {
                return true;
            }
            let moved = it.seek(t);
            if let Some(r) = self.settle(moved) {
                return r;
            }
        }
        self.seek_in_next_chunks(t)
    }

    /// Moves past deleted samples.
    fn skip_deleted(&mut self, mut ok: bool) -> bool {
        if self.stones.is_empty() {
            return ok;
        }
        while ok {
            let t = self.at().t;
            let i = self.stones.partition_point(|iv| iv.maxt < t);
            match self.stones.get(i) {
                Some(iv) if iv.contains(t) => {
                    if iv.maxt == i64::MAX {
                        return self.finish();
                    }
                    ok = self.raw_seek(iv.maxt + 1);
                }
                _ => return true,
            }
        }
        false
    }
}

impl SampleIterator for ChunksIterator {
    fn next(&mut self) -> bool {
        let ok = self.raw_next();
        self.skip_deleted(ok)
    }

    fn seek(&mut self, t: Timestamp) -> bool {
        let ok = self.raw_seek(t);
        self.skip_deleted(ok)
    }

    fn at(&self) -> Sample {
        match &self.cur {
            Some(it) => {
                let (t, v) = it.at();
                Sample::new(t, v)
            }
            None => Sample::new(i64::MIN, f64::NAN),
        }
    }

    fn err(&self) -> Option<&storage::Error> {
        self.err.as_ref()
    }

    fn at_st(&self) -> Timestamp {
        match &self.cur {
            Some(it) if !self.sts.is_empty() => self.sts.get(it.index()).copied().unwrap_or(0),
            _ => 0,
        }
    }

    fn for_each_until_st(&mut self, t: Timestamp, f: &mut dyn FnMut(Sample, Timestamp)) -> bool {
        if self.done {
            return false;
        }
        if !self.stones.is_empty() {
            return storage::for_each_until_by_next_st(self, t, f);
        }
        // Plain XOR chunks have no column: 0 (unknown) for each sample.
        self.for_each_in_chunks(t, |s, index, sts| f(s, sts.get(index).copied().unwrap_or(0)))
    }

    fn for_each_until(&mut self, t: Timestamp, f: &mut dyn FnMut(Sample)) -> bool {
        if self.done {
            return false;
        }
        if !self.stones.is_empty() {
            return storage::for_each_until_by_next(self, t, f);
        }
        self.for_each_in_chunks(t, |s, _, _| f(s))
    }
}

impl ChunksIterator {
    /// Calls `f` with each sample up to `t`, its index in its chunk and the chunk's start
    /// timestamps (empty for plain XOR), straight from the chunk decoders; the sample under
    /// the cursor is within the range (`settle` ends iteration at the first sample past
    /// `maxt`). The bulk path of both `for_each_until` variants, without tombstones.
    #[inline]
    fn for_each_in_chunks(&mut self, t: Timestamp, mut f: impl FnMut(Sample, usize, &[i64])) -> bool {
        loop {
            let Some(it) = self.cur.as_mut() else {
                return false;
            };
            loop {
                let (ts, v) = it.at();
                if ts > t {
                    return true;
                }
                f(Sample::new(ts, v), it.index(), &self.sts);
                if !it.next() {
                    break;
                }
                if it.at_t() > self.maxt {
                    return self.finish();
                }
            }
            if let Some(r) = self.settle(false) {
                return r;
            }
            if !self.seek_in_next_chunks(self.mint) {
                return false;
            }
        }
    }
}

impl std::fmt::Debug for ChunksIterator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunksIterator")
            .field("next_chunk", &self.next_chunk)
            .field("done", &self.done)
            .finish()
    }
}

/// The same series from several sources (blocks in time order, then the head).
#[derive(Debug)]
struct MergedSeries {
    labels: Labels,
    parts: Vec<ChunkSeries>,
}

impl Series for MergedSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn iterator(&self) -> Box<dyn SampleIterator> {
        Box::new(MergeIterator {
            its: self.parts.iter().map(|p| p.iter()).collect(),
            ok: vec![false; self.parts.len()],
            started: false,
            cur: None,
            err: None,
        })
    }
}

/// Merges sorted iterators; of samples with the same timestamp the one of the first iterator
/// is returned and the others are skipped (upstream's `ChainSampleIterator` dedup).
struct MergeIterator {
    its: Vec<ChunksIterator>,
    ok: Vec<bool>,
    started: bool,
    /// Index of the iterator holding the current sample.
    cur: Option<usize>,
    err: Option<storage::Error>,
}

impl MergeIterator {
    fn pick(&mut self) -> bool {
        if let Some(i) = self.its.iter().position(|it| it.err().is_some()) {
            self.err = self.its[i].err().cloned();
            self.ok.iter_mut().for_each(|o| *o = false);
            self.cur = None;
            return false;
        }
        let mut best: Option<(i64, usize)> = None;
        for (i, it) in self.its.iter().enumerate() {
            if self.ok[i] {
                let t = it.at().t;
                if best.is_none_or(|(bt, _)| t < bt) {
                    best = Some((t, i));
                }
            }
        }
        self.cur = best.map(|(_, i)| i);
        self.cur.is_some()
    }
}

impl SampleIterator for MergeIterator {
    fn next(&mut self) -> bool {
        if self.err.is_some() {
            return false;
        }
        if !self.started {
            self.started = true;
            for (i, it) in self.its.iter_mut().enumerate() {
                self.ok[i] = it.next();
            }
            return self.pick();
        }
        let Some(c) = self.cur else { return false };
        let t = self.its[c].at().t;
        for (i, it) in self.its.iter_mut().enumerate() {
            if self.ok[i] && it.at().t == t {
                self.ok[i] = it.next();
            }
        }
        self.pick()
    }

    fn seek(&mut self, t: Timestamp) -> bool {
        if self.err.is_some() {
            return false;
        }
        if self.started {
            match self.cur {
                Some(c) if self.its[c].at().t >= t => return true,
                None => return false,
                _ => {}
            }
        }
        let fresh = !self.started;
        self.started = true;
        for (i, it) in self.its.iter_mut().enumerate() {
            if fresh || (self.ok[i] && it.at().t < t) {
                self.ok[i] = it.seek(t);
            }
        }
        self.pick()
    }

    fn at(&self) -> Sample {
        match self.cur {
            Some(c) => self.its[c].at(),
            None => Sample::new(i64::MIN, f64::NAN),
        }
    }

    fn at_st(&self) -> Timestamp {
        self.cur.map_or(0, |c| self.its[c].at_st())
    }

    fn err(&self) -> Option<&storage::Error> {
        self.err.as_ref()
    }
}

/// Groups series with equal labels (adjacent in the input, as sorting by labels makes them)
/// into merged series, whose parts are ordered by rank.
pub(crate) fn merge_sorted(series: Vec<ChunkSeries>) -> Vec<Box<dyn Series>> {
    let mut out: Vec<Box<dyn Series>> = Vec::with_capacity(series.len());
    let mut it = series.into_iter().peekable();
    while let Some(first) = it.next() {
        if it.peek().is_some_and(|n| n.labels == first.labels) {
            let mut parts = vec![first];
            while let Some(n) = it.next_if(|n| n.labels == parts[0].labels) {
                parts.push(n);
            }
            parts.sort_by_key(|p| p.rank);
            out.push(Box::new(MergedSeries {
                labels: parts[0].labels.clone(),
                parts,
            }));
        } else {
            out.push(Box::new(first));
        }
    }
    out
}

/// Reads the head and the blocks over `[mint, maxt]`.
#[derive(Debug)]
pub(crate) struct DbQuerier {
    pub(crate) head: Arc<Head>,
    pub(crate) blocks: BlockList,
    pub(crate) mint: Timestamp,
    pub(crate) maxt: Timestamp,
}

impl DbQuerier {
    fn blocks(&self) -> Vec<Arc<Block>> {
        let list = self.blocks.read().unwrap_or_else(|e| e.into_inner()).clone();
        list.iter()
            .filter(|b| b.min_time() <= self.maxt && self.mint < b.max_time())
            .cloned()
            .collect()
    }

    fn head(&self) -> HeadQuerier {
        self.head.querier(self.mint, self.maxt)
    }

    /// Whether the head holds samples in `[mint, maxt]`'s span, as upstream's head index
    /// reader decides it: label names and values of a head outside the range are not listed.
    fn head_overlaps(&self) -> bool {
        self.head.min_time() <= self.maxt && self.mint <= self.head.max_time()
    }
}

impl Querier for DbQuerier {
    fn select(&self, sorted: bool, hints: Option<&SelectHints>, matchers: &[Matcher]) -> SeriesSet {
        // The head first, the block list second: compaction adds a block before it truncates
        // the head, so whatever moved out of the head between the two steps is in a block of
        // the list read afterwards (and a sample in both is merged away).
        let head = self.head().snapshot(matchers);
        let blocks = self.blocks();
        if blocks.is_empty() {
            return self.head().select_snapshot(head, sorted, hints);
        }
        let mut all: Vec<ChunkSeries> = Vec::new();
        for (i, b) in blocks.iter().enumerate() {
            let class = if b.from_out_of_order() {
                RANK_OOO_BLOCK
            } else {
                RANK_BLOCK
            };
            match b.select(self.mint, self.maxt, matchers) {
                Ok(v) => all.extend(v.into_iter().map(|s| s.with_rank((class, i)))),
                Err(e) => return Box::new(std::iter::once(Err(e.into()))),
            }
        }
        all.extend(head);
        all.retain(|s| !s.is_empty());
        all.sort_by(|a, b| a.labels.cmp(&b.labels));
        Box::new(merge_sorted(all).into_iter().map(Ok))
    }

    fn label_names(&self, matchers: &[Matcher]) -> storage::Result<Vec<String>> {
        let mut out = if self.head_overlaps() {
            self.head().label_names(matchers)?
        } else {
            Vec::new()
        };
        for b in self.blocks() {
            out.extend(b.label_names(matchers)?);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> storage::Result<Vec<String>> {
        let mut out = if self.head_overlaps() {
            self.head().label_values(name, matchers)?
        } else {
            Vec::new()
        };
        for b in self.blocks() {
            out.extend(b.label_values(name, matchers)?);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use watchfire_model::{Labels, MatchType, Matcher};
    use watchfire_storage::{Appendable, Queryable};

    use crate::head::{HeadOptions, MemoryStorage};

    use super::*;

    /// `for_each_until` over several chunks, clipped to the querier's range, returns what a
    /// loop of `at` and `next` returns, and leaves the cursor in the same place.
    #[test]
    fn for_each_until_matches_next() {
        let s = MemoryStorage(crate::Head::in_memory(HeadOptions::default()));
        let mut app = s.appender();
        let l = Labels::from_pairs([("__name__", "x")]);
        for i in 0..400i64 {
            app.append(None, &l, i * 1000, i as f64).unwrap();
        }
        app.commit().unwrap();
        let m = [Matcher::new(MatchType::Equal, "__name__", "x").unwrap()];
        let q = s.querier(10_500, 350_500).unwrap();
        for t in [0, 10_999, 11_000, 119_000, 120_000, 250_000, 350_000, 500_000] {
            let series: Vec<_> = q.select(false, None, &m).map(Result::unwrap).collect();
            let (mut a, mut b) = (series[0].iterator(), series[0].iterator());
            assert!(a.next() && b.next());
            let (mut got, mut by_next) = (Vec::new(), Vec::new());
            let a_on = a.for_each_until(t, &mut |s| got.push(s));
            let b_on = storage::for_each_until_by_next(&mut *b, t, &mut |s| by_next.push(s));
            assert_eq!(a_on, b_on, "t={t}");
            assert_eq!(got, by_next, "t={t}");
            let want: Vec<i64> = (11..=350).map(|i| i * 1000).filter(|x| *x <= t).collect();
            assert_eq!(got.iter().map(|s| s.t).collect::<Vec<_>>(), want, "t={t}");
            if a_on {
                assert_eq!(a.at(), b.at());
                assert!(a.next() == b.next());
            }
        }
    }
}
