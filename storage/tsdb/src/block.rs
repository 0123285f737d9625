//! Persistent blocks: immutable directories named by a [`Ulid`] holding the samples of one time
//! range (`meta.json`, `index`, `chunks/`, `tombstones`; FORMAT.md, "Blocks"), as upstream's
//! `tsdb/block.go`. [`write_block`] builds one from the head and/or older blocks (head
//! compaction, block compaction, tombstone cleaning, snapshots); [`Block::open`] maps one and
//! verifies its checksums.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use watchfire_model::{Labels, Matcher};

use crate::Error;
use crate::blockindex::{ChunkMeta, IndexReader, IndexWriter};
use crate::chunkenc::{ChunkCursor, Encoding, MAX_BYTES_BEFORE_APPEND, StColumn, XorChunk, decode_start_timestamps};
use crate::chunks::{ChunkReader, ChunkWriter};
use crate::head::{ChunkBytes, Head, HeadPart};
use crate::packed;
use crate::querier::{ChunkSeries, LazyChunk, RANK_BLOCK, RANK_HEAD, RANK_HEAD_OOO, RANK_OOO_BLOCK, Rank};
use crate::tombstones::{self, Interval, Tombstones, is_deleted};
use crate::ulid::Ulid;

/// `meta.json` file name.
pub const META_FILE: &str = "meta.json";
/// The `version` field written in `meta.json`.
pub const META_VERSION: u32 = 1;
/// Suffix of a block directory still being written; removed on open.
pub const TMP_CREATION_SUFFIX: &str = ".tmp-for-creation";
/// Suffix of a block directory being deleted; removed on open.
pub const TMP_DELETION_SUFFIX: &str = ".tmp-for-deletion";
/// Suffix a block directory that failed verification is renamed to.
pub const CORRUPTED_SUFFIX: &str = ".corrupted";
/// Samples per chunk when compaction has to re-encode chunks.
const SAMPLES_PER_CHUNK: usize = 120;

/// `meta.json`: upstream's `BlockMeta` (field names and meaning).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub ulid: Ulid,
    /// First timestamp the block may hold (inclusive).
    pub min_time: i64,
    /// End of the block's range (exclusive), as upstream.
    pub max_time: i64,
    #[serde(default)]
    pub stats: BlockStats,
    #[serde(default)]
    pub compaction: BlockMetaCompaction,
    pub version: u32,
}

/// `meta.json` `stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BlockStats {
    pub num_samples: u64,
    pub num_series: u64,
    pub num_chunks: u64,
    pub num_tombstones: u64,
}

/// `meta.json` `compaction`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BlockMetaCompaction {
    /// 1 for a block cut from the head; one more than the highest parent otherwise.
    pub level: u32,
    /// The level-1 blocks whose data this block holds.
    pub sources: Vec<Ulid>,
    /// The blocks this one was made from (empty for level 1).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
    /// Upstream's hints; [`FROM_OUT_OF_ORDER`] marks a block holding only out-of-order
    /// samples of a range the head no longer held.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

/// The hint of blocks written from out-of-order samples (upstream
/// `CompactionHintFromOutOfOrder`).
pub const FROM_OUT_OF_ORDER: &str = "from-out-of-order";

impl BlockMetaCompaction {
    /// Whether the block holds only out-of-order samples.
    pub fn from_out_of_order(&self) -> bool {
        self.hints.iter().any(|h| h == FROM_OUT_OF_ORDER)
    }
}

/// A parent block as `meta.json` names it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDesc {
    pub ulid: Ulid,
    pub min_time: i64,
    pub max_time: i64,
}

/// An open block.
#[derive(Debug)]
pub struct Block {
    dir: PathBuf,
    meta: RwLock<BlockMeta>,
    pub(crate) index: IndexReader,
    pub(crate) chunks: ChunkReader,
    tombstones: RwLock<Arc<Tombstones>>,
    tombstones_size: AtomicU64,
    meta_size: AtomicU64,
}

fn read_meta(dir: &Path) -> Result<(BlockMeta, u64), Error> {
    let path = dir.join(META_FILE);
    let b = fs::read(&path).map_err(|e| Error::io("read block meta", &path, e))?;
    let meta: BlockMeta = serde_json::from_slice(&b).map_err(|e| Error::Corruption {
        file: path.clone(),
        offset: 0,
        reason: format!("meta.json: {e}"),
    })?;
    if meta.version != META_VERSION {
        return Err(Error::Corruption {
            file: path,
            offset: 0,
            reason: format!("unsupported meta.json version {}", meta.version),
        });
    }
    Ok((meta, b.len() as u64))
}

fn write_meta(dir: &Path, meta: &BlockMeta) -> Result<u64, Error> {
    let b = serde_json::to_vec_pretty(meta).map_err(|e| Error::Corruption {
        file: dir.join(META_FILE),
        offset: 0,
        reason: format!("encode meta.json: {e}"),
    })?;
    tombstones::write_atomic(dir, META_FILE, &b)?;
    Ok(b.len() as u64)
}

impl Block {
    /// Opens the block in `dir`: reads `meta.json` and the tombstones, maps the index and the
    /// chunk segments and verifies every checksum of the index (and, with `verify_chunks`, of
    /// every chunk). Any failure is an error; the caller decides what to do with the directory.
    pub fn open(dir: &Path, verify_chunks: bool) -> Result<Block, Error> {
        let (meta, meta_size) = read_meta(dir)?;
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name != meta.ulid.to_string() {
            return Err(Error::Corruption {
                file: dir.join(META_FILE),
                offset: 0,
                reason: format!("meta.json names block {} but the directory is {name}", meta.ulid),
            });
        }
        let index = IndexReader::open(&dir.join("index"))?;
        if index.num_series() != meta.stats.num_series {
            return Err(Error::Corruption {
                file: dir.join("index"),
                offset: 0,
                reason: format!(
                    "index holds {} series, meta.json says {}",
                    index.num_series(),
                    meta.stats.num_series
                ),
            });
        }
        let chunks = ChunkReader::open(&dir.join("chunks"))?;
        if verify_chunks {
            chunks.verify_all()?;
        }
        let (stones, stones_size) = Tombstones::read_file(dir)?;
        Ok(Block {
            dir: dir.to_path_buf(),
            meta: RwLock::new(meta),
            index,
            chunks,
            tombstones: RwLock::new(Arc::new(stones)),
            tombstones_size: AtomicU64::new(stones_size),
            meta_size: AtomicU64::new(meta_size),
        })
    }

    /// The block's `meta.json`.
    pub fn meta(&self) -> BlockMeta {
        self.meta.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the block holds only out-of-order samples (hint `from-out-of-order`).
    pub fn from_out_of_order(&self) -> bool {
        self.meta
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .compaction
            .from_out_of_order()
    }

    /// The block's id.
    pub fn ulid(&self) -> Ulid {
        self.meta.read().unwrap_or_else(|e| e.into_inner()).ulid
    }

    /// Start of the block's range (inclusive).
    pub fn min_time(&self) -> i64 {
        self.meta.read().unwrap_or_else(|e| e.into_inner()).min_time
    }

    /// End of the block's range (exclusive).
    pub fn max_time(&self) -> i64 {
        self.meta.read().unwrap_or_else(|e| e.into_inner()).max_time
    }

    /// The block directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes on disk: index, chunks, tombstones and meta.json.
    pub fn size(&self) -> u64 {
        self.index.size()
            + self.chunks.size
            + self.tombstones_size.load(Ordering::Relaxed)
            + self.meta_size.load(Ordering::Relaxed)
    }

    pub(crate) fn desc(&self) -> BlockDesc {
        let m = self.meta.read().unwrap_or_else(|e| e.into_inner());
        BlockDesc {
            ulid: m.ulid,
            min_time: m.min_time,
            max_time: m.max_time,
        }
    }

    pub(crate) fn tombstones(&self) -> Arc<Tombstones> {
        self.tombstones.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        let m = self.meta.read().unwrap_or_else(|e| e.into_inner());
        m.min_time <= maxt && mint < m.max_time
    }

    /// Adds tombstones over `[mint, maxt]` for the series matching `matchers` that have chunks
    /// in that range, and persists them. Returns the number of series affected.
    pub(crate) fn delete(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<u64, Error> {
        if !self.overlaps(mint, maxt) {
            return Ok(0);
        }
        let ids = self.index.postings_for_matchers(matchers)?;
        let mut stones = (*self.tombstones()).clone();
        let mut chunks = Vec::new();
        let mut n = 0;
        for id in ids {
            self.index.series(id, &mut chunks)?;
            if chunks.iter().any(|c| c.min_t <= maxt && c.max_t >= mint) {
                let (lo, hi) = (mint.max(self.min_time()), maxt.min(self.max_time() - 1));
                stones.add(id, Interval { mint: lo, maxt: hi });
                n += 1;
            }
        }
        if n == 0 {
            return Ok(0);
        }
        self.set_tombstones(stones)?;
        Ok(n)
    }

    fn set_tombstones(&self, stones: Tombstones) -> Result<(), Error> {
        let size = stones.write_file(&self.dir)?;
        self.tombstones_size.store(size, Ordering::Relaxed);
        let mut meta = self.meta();
        meta.stats.num_tombstones = stones.num_intervals();
        let meta_size = write_meta(&self.dir, &meta)?;
        self.meta_size.store(meta_size, Ordering::Relaxed);
        *self.meta.write().unwrap_or_else(|e| e.into_inner()) = meta;
        *self.tombstones.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(stones);
        Ok(())
    }

    /// The series matching `matchers` with chunks in `[mint, maxt]`, in label order, with lazily
    /// read chunks and this block's tombstones.
    pub(crate) fn select(
        self: &Arc<Self>,
        mint: i64,
        maxt: i64,
        matchers: &[Matcher],
    ) -> Result<Vec<ChunkSeries>, Error> {
        let ids = self.index.postings_for_matchers(matchers)?;
        let stones = self.tombstones();
        let mut out = Vec::with_capacity(ids.len());
        let mut chunks = Vec::new();
        for id in ids {
            let labels = self.index.series(id, &mut chunks)?;
            let lazy: Vec<LazyChunk> = chunks
                .iter()
                .filter(|c| c.max_t >= mint && c.min_t <= maxt)
                .map(|c| LazyChunk::InBlock {
                    min_t: c.min_t,
                    max_t: c.max_t,
                    r: c.r,
                })
                .collect();
            if lazy.is_empty() {
                continue;
            }
            out.push(ChunkSeries::new(
                labels,
                lazy,
                Some(self.clone()),
                mint,
                maxt,
                stones.get(id).to_vec(),
            ));
        }
        Ok(out)
    }

    /// Label names of the series matching `matchers` (all when empty).
    pub(crate) fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>, Error> {
        if matchers.is_empty() {
            return Ok(self.index.label_names());
        }
        let mut names = BTreeSet::new();
        let mut chunks = Vec::new();
        for id in self.index.postings_for_matchers(matchers)? {
            for l in self.index.series(id, &mut chunks)?.iter() {
                names.insert(l.name.to_string());
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Values of label `name` over the series matching `matchers`.
    pub(crate) fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>, Error> {
        if matchers.is_empty() {
            return self.index.label_values(name);
        }
        let mut values = BTreeSet::new();
        let mut chunks = Vec::new();
        for id in self.index.postings_for_matchers(matchers)? {
            if let Some(v) = self.index.series(id, &mut chunks)?.get(name) {
                values.insert(v.to_string());
            }
        }
        Ok(values.into_iter().collect())
    }

    /// The encoding and bytes of chunk `r`: XOR, XOR with start timestamps, or packed.
    pub(crate) fn chunk(&self, r: u64) -> Result<(Encoding, ChunkBytes), Error> {
        let (code, c) = self.chunks.chunk(r)?;
        match Encoding::from_code(code) {
            Some(enc @ (Encoding::Xor | Encoding::XorSt | Encoding::Packed)) => Ok((enc, ChunkBytes::Mapped(c))),
            _ => Err(Error::Corruption {
                file: self.dir.join("chunks"),
                offset: r,
                reason: format!("unsupported chunk encoding {code}"),
            }),
        }
    }
}

/// Where [`write_block`] takes series from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Source<'a> {
    Head(&'a Arc<Head>, HeadPart),
    Block(&'a Arc<Block>),
}

/// A series' handle in one source: a head series reference or a block series id.
type Key = (usize, u64);

/// One chunk gathered for compaction.
struct InChunk {
    min_t: i64,
    max_t: i64,
    /// XOR, or XOR with start timestamps.
    enc: Encoding,
    bytes: ChunkBytes,
    source: usize,
    /// Of samples at one timestamp, the one of the lowest rank is kept, as queries merge them.
    rank: Rank,
}

fn num_samples(b: &[u8]) -> u64 {
    match b {
        [a, c, ..] => u64::from(u16::from_be_bytes([*a, *c])),
        _ => 0,
    }
}

/// Writes the samples of `sources` in `[mint, maxt)` as a new block under `parent`, applying
/// every source's tombstones and dropping duplicate samples of overlapping sources. Chunks that
/// need no change are copied byte for byte; the others are decoded, merged and re-encoded.
/// With `packed`, a series is written as [`Encoding::Packed`] chunks of up to
/// [`packed::MAX_SAMPLES`] samples unless its chunks already are packed and need no change, or
/// it has start timestamps (those keep XOR chunks with their start-timestamp column).
/// Returns `None`, and leaves nothing behind, when no sample remains.
pub(crate) fn write_block(
    parent: &Path,
    mint: i64,
    maxt: i64,
    sources: &[Source<'_>],
    compaction: BlockMetaCompaction,
    segment_size: u64,
    packed: bool,
) -> Result<Option<BlockMeta>, Error> {
    let last = maxt.saturating_sub(1);
    // Every series of every source with chunks in the range, sorted by labels.
    let mut all: Vec<(Labels, Key)> = Vec::new();
    let mut scratch = Vec::new();
    for (si, src) in sources.iter().enumerate() {
        match src {
            Source::Head(h, part) => {
                for (r, labels) in h.series_in_range(mint, last, *part) {
                    all.push((labels, (si, r)));
                }
            }
            Source::Block(b) => {
                for id in b.index.postings("", "")? {
                    let labels = b.index.series(id, &mut scratch)?;
                    if scratch.iter().any(|c| c.max_t >= mint && c.min_t <= last) {
                        all.push((labels, (si, id)));
                    }
                }
            }
        }
    }
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut symbols: BTreeSet<&str> = BTreeSet::new();
    for (l, _) in &all {
        for p in l.iter() {
            symbols.insert(p.name);
            symbols.insert(p.value);
        }
    }
    let symbols: Vec<String> = symbols.into_iter().map(str::to_owned).collect();

    let ulid = Ulid::new();
    let tmp = parent.join(format!("{ulid}{TMP_CREATION_SUFFIX}"));
    let done = parent.join(ulid.to_string());
    fs::create_dir_all(&tmp).map_err(|e| Error::io("create block directory", &tmp, e))?;
    let res = (|| -> Result<Option<BlockMeta>, Error> {
        let mut cw = ChunkWriter::new(&tmp.join("chunks"), segment_size)?;
        let mut iw = IndexWriter::new(&tmp.join("index"), symbols)?;
        let mut stats = BlockStats::default();
        let stones: Vec<Option<Arc<Tombstones>>> = sources
            .iter()
            .map(|s| match s {
                Source::Block(b) => Some(b.tombstones()),
                Source::Head(..) => None,
            })
            .collect();
        let mut metas: Vec<ChunkMeta> = Vec::new();
        let mut i = 0;
        while i < all.len() {
            let mut j = i + 1;
            while j < all.len() && all[j].0 == all[i].0 {
                j += 1;
            }
            let labels = &all[i].0;
            let mut chunks: Vec<InChunk> = Vec::new();
            let mut deleted: Vec<Vec<Interval>> = vec![Vec::new(); sources.len()];
            for (_, (si, key)) in &all[i..j] {
                match sources[*si] {
                    Source::Head(h, part) => {
                        for c in h.chunks_in_range(*key, mint, last, part)? {
                            chunks.push(InChunk {
                                min_t: c.min_t,
                                max_t: c.max_t,
                                enc: c.enc,
                                bytes: c.bytes,
                                source: *si,
                                rank: (if c.ooo { RANK_HEAD_OOO } else { RANK_HEAD }, *si),
                            });
                        }
                        deleted[*si] = h.tombstones_of(*key);
                    }
                    Source::Block(b) => {
                        b.index.series(*key, &mut scratch)?;
                        for c in scratch.iter().filter(|c| c.max_t >= mint && c.min_t <= last) {
                            let (enc, bytes) = b.chunk(c.r)?;
                            chunks.push(InChunk {
                                min_t: c.min_t,
                                max_t: c.max_t,
                                enc,
                                bytes,
                                source: *si,
                                rank: (
                                    if b.from_out_of_order() {
                                        RANK_OOO_BLOCK
                                    } else {
                                        RANK_BLOCK
                                    },
                                    *si,
                                ),
                            });
                        }
                        if let Some(s) = &stones[*si] {
                            deleted[*si] = s.get(*key).to_vec();
                        }
                    }
                }
            }
            i = j;
            chunks.sort_by_key(|c| (c.min_t, c.max_t));
            let untouched = chunks.windows(2).all(|w| w[1].min_t > w[0].max_t)
                && chunks.iter().all(|c| {
                    c.min_t >= mint
                        && c.max_t <= last
                        && !deleted[c.source]
                            .iter()
                            .any(|iv| iv.mint <= c.max_t && iv.maxt >= c.min_t)
                });
            metas.clear();
            if untouched && (!packed || chunks.iter().all(|c| c.enc == Encoding::Packed)) {
                for c in &chunks {
                    let n = num_samples(c.bytes.as_ref());
                    if n == 0 {
                        continue;
                    }
                    let r = cw.write(c.enc as u8, c.bytes.as_ref())?;
                    metas.push(ChunkMeta {
                        min_t: c.min_t,
                        max_t: c.max_t,
                        r,
                    });
                    stats.num_samples += n;
                }
            } else {
                let mut ranked: Vec<(i64, Rank, f64, i64)> = Vec::new();
                for c in &chunks {
                    let sts = if c.enc == Encoding::XorSt {
                        decode_start_timestamps(c.bytes.as_ref()).map_err(|e| chunk_err(labels, e))?
                    } else {
                        Vec::new()
                    };
                    let mut it = ChunkCursor::new(c.enc, c.bytes.as_ref()).map_err(|e| chunk_err(labels, e))?;
                    while it.next() {
                        let (t, v) = it.at();
                        if t >= mint && t <= last && !is_deleted(&deleted[c.source], t) {
                            ranked.push((t, c.rank, v, sts.get(it.index()).copied().unwrap_or(0)));
                        }
                    }
                    if let Some(e) = it.err() {
                        return Err(chunk_err(labels, e.clone()));
                    }
                }
                // Of duplicate timestamps the sample of the lowest rank stays, as the query
                // merge keeps it.
                ranked.sort_by_key(|s| (s.0, s.1));
                ranked.dedup_by_key(|s| s.0);
                let samples: Vec<(i64, f64, i64)> = ranked.into_iter().map(|(t, _, v, st)| (t, v, st)).collect();
                stats.num_samples += samples.len() as u64;
                if packed && samples.iter().all(|s| s.2 == 0) {
                    let mut pairs: Vec<(i64, f64)> = Vec::with_capacity(samples.len().min(packed::MAX_SAMPLES));
                    for part in samples.chunks(packed::MAX_SAMPLES) {
                        pairs.clear();
                        pairs.extend(part.iter().map(|s| (s.0, s.1)));
                        let r = cw.write(Encoding::Packed as u8, &packed::encode(&pairs))?;
                        metas.push(ChunkMeta {
                            min_t: pairs[0].0,
                            max_t: pairs[pairs.len() - 1].0,
                            r,
                        });
                    }
                } else {
                    let mut c = XorChunk::new();
                    // Start timestamps of `c`, from its first sample that has one.
                    let mut col: Option<StColumn> = None;
                    let mut first_t = 0;
                    let mut write = |c: &XorChunk, col: Option<StColumn>| match col {
                        Some(col) => cw.write(Encoding::XorSt as u8, &col.chunk_bytes(c.bytes())),
                        None => cw.write(Encoding::Xor as u8, c.bytes()),
                    };
                    for (k, &(t, v, st)) in samples.iter().enumerate() {
                        if c.num_samples() as usize >= SAMPLES_PER_CHUNK || c.bytes().len() > MAX_BYTES_BEFORE_APPEND {
                            let r = write(&c, col.take())?;
                            metas.push(ChunkMeta {
                                min_t: first_t,
                                max_t: c.last_t(),
                                r,
                            });
                            c = XorChunk::new();
                        }
                        if c.is_empty() {
                            first_t = t;
                        }
                        if st != 0 && col.is_none() {
                            col = Some(StColumn::with_unknown(c.num_samples()));
                        }
                        c.append(t, v).map_err(|e| chunk_err(labels, e))?;
                        if let Some(col) = col.as_mut() {
                            col.push(st);
                        }
                        if k + 1 == samples.len() {
                            let r = write(&c, col.take())?;
                            metas.push(ChunkMeta {
                                min_t: first_t,
                                max_t: c.last_t(),
                                r,
                            });
                        }
                    }
                }
            }
            if metas.is_empty() {
                continue;
            }
            iw.add_series(labels, &metas)?;
            stats.num_series += 1;
            stats.num_chunks += metas.len() as u64;
        }
        if stats.num_samples == 0 {
            return Ok(None);
        }
        cw.finish()?;
        iw.finish()?;
        Tombstones::default().write_file(&tmp)?;
        let mut compaction = compaction;
        if compaction.sources.is_empty() {
            compaction.sources.push(ulid);
        }
        let meta = BlockMeta {
            ulid,
            min_time: mint,
            max_time: maxt,
            stats,
            compaction,
            version: META_VERSION,
        };
        write_meta(&tmp, &meta)?;
        fs::rename(&tmp, &done).map_err(|e| Error::io("rename block directory", &tmp, e))?;
        crate::wal::sync_dir(parent)?;
        Ok(Some(meta))
    })();
    if !matches!(res, Ok(Some(_))) {
        let _ = fs::remove_dir_all(&tmp);
    }
    res
}

fn chunk_err(labels: &Labels, e: crate::chunkenc::ChunkError) -> Error {
    Error::Corruption {
        file: PathBuf::from(format!("<chunk of {labels}>")),
        offset: 0,
        reason: e.to_string(),
    }
}

/// Removes a block directory: renamed first, so a crash leaves a name that open cleans up.
pub(crate) fn remove_block_dir(dir: &Path) -> Result<(), Error> {
    let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
        return Ok(());
    };
    let tmp = dir.with_file_name(format!("{name}{TMP_DELETION_SUFFIX}"));
    fs::rename(dir, &tmp).map_err(|e| Error::io("rename block for deletion", dir, e))?;
    fs::remove_dir_all(&tmp).map_err(|e| Error::io("remove block", &tmp, e))?;
    if let Some(p) = dir.parent() {
        crate::wal::sync_dir(p)?;
    }
    Ok(())
}

/// Hard-links the files of block `b` into `dest/<ulid>/`.
pub(crate) fn link_block(b: &Block, dest: &Path) -> Result<(), Error> {
    let to = dest.join(b.ulid().to_string());
    fs::create_dir_all(to.join("chunks")).map_err(|e| Error::io("create directory", &to, e))?;
    let mut files: Vec<PathBuf> = vec![PathBuf::from(META_FILE), PathBuf::from("index")];
    if b.dir.join(tombstones::FILE_NAME).exists() {
        files.push(PathBuf::from(tombstones::FILE_NAME));
    }
    let cdir = b.dir.join("chunks");
    for e in fs::read_dir(&cdir).map_err(|e| Error::io("read directory", &cdir, e))? {
        let e = e.map_err(|e| Error::io("read directory", &cdir, e))?;
        files.push(Path::new("chunks").join(e.file_name()));
    }
    for f in files {
        let (from, into) = (b.dir.join(&f), to.join(&f));
        fs::hard_link(&from, &into).map_err(|e| Error::io("hard-link block file", &from, e))?;
    }
    crate::wal::sync_dir(&to.join("chunks"))?;
    crate::wal::sync_dir(&to)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use watchfire_model::{MatchType, Matcher};
    use watchfire_storage::Queryable;

    use super::*;
    use crate::test_util::{small_opts, write_churn};
    use crate::{Db, Options};

    /// The encodings of the chunks of every block.
    fn encodings(db: &Db) -> HashSet<Encoding> {
        let mut out = HashSet::new();
        let mut metas = Vec::new();
        for b in db.blocks() {
            for id in b.index.postings("", "").unwrap() {
                b.index.series(id, &mut metas).unwrap();
                for c in &metas {
                    out.insert(b.chunk(c.r).unwrap().0);
                }
            }
        }
        out
    }

    /// Every sample of every series, values as bits.
    fn dump(db: &Db) -> BTreeMap<String, Vec<(i64, u64)>> {
        let q = db.querier(i64::MIN, i64::MAX).unwrap();
        let m = Matcher::new(MatchType::Regex, "series", ".+").unwrap();
        let mut out = BTreeMap::new();
        for s in q.select(true, None, &[m]) {
            let s = s.unwrap();
            let mut it = s.iterator();
            let mut samples = Vec::new();
            while it.next() {
                samples.push((it.at().t, it.at().v.to_bits()));
            }
            assert!(it.err().is_none(), "{:?}", it.err());
            out.insert(s.labels().to_string(), samples);
        }
        out
    }

    #[test]
    fn new_blocks_are_packed_or_xor_as_configured_and_either_reads_back() {
        // The same writes into a store that only ever writes XOR blocks and into one that
        // writes XOR blocks first and packed ones after a restart (compacting the XOR blocks
        // into larger packed ones): queries see the same samples, stale markers included.
        let xor = Options {
            packed_block_chunks: false,
            ..small_opts()
        };
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let reference = Db::open(a.path(), xor).unwrap();
        let mixed = Db::open(b.path(), xor).unwrap();
        for db in [&reference, &mixed] {
            write_churn(db, 0, 300, 0..12);
            db.maintain().unwrap();
        }
        assert_eq!(encodings(&mixed), HashSet::from([Encoding::Xor]));
        drop(mixed);
        let mixed = Db::open(b.path(), small_opts()).unwrap();
        assert_eq!(dump(&mixed), dump(&reference));
        for db in [&reference, &mixed] {
            write_churn(db, 300, 900, 0..12);
            db.maintain().unwrap();
        }
        assert_eq!(encodings(&reference), HashSet::from([Encoding::Xor]));
        assert!(encodings(&mixed).contains(&Encoding::Packed), "{:?}", encodings(&mixed));
        let want = dump(&reference);
        assert!(want.values().map(Vec::len).sum::<usize>() > 3000);
        assert_eq!(dump(&mixed), want);
        drop(mixed);
        // Read back by a store configured for XOR.
        assert_eq!(dump(&Db::open(b.path(), xor).unwrap()), want);
    }
}
