//! The head snapshot a clean shutdown writes, so that the next open need not replay the WAL
//! (upstream's `memory-snapshot-on-shutdown` feature, `tsdb/head_wal.go` `ChunkSnapshot`, on
//! by default here). It holds what replay would rebuild and the head chunk files do not: each
//! series' reference, labels and open chunk, the metadata, the tombstones and the next series
//! reference. The WAL stays as it is; the snapshot is a cache of its replay.
//!
//! A snapshot is only used when the WAL and the head chunk files are exactly as they were when
//! it was written: it records the checkpoints, the segments with their lengths and the chunk
//! files with their used lengths, and the open compares them. The open deletes it whether it
//! used it or not, before the WAL gets a new segment: after a crash of the process that
//! follows, replay starts from the WAL as without a snapshot. A missing, damaged or stale
//! snapshot costs the replay, never samples. FORMAT.md, "Head snapshot", has the bytes.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use watchfire_model::Labels;

use crate::Error;
use crate::checkpoint;
use crate::chunkenc::XorChunk;
use crate::chunks_head::{ChunkDiskMapper, FILE_HEADER_SIZE};
use crate::encoding::{Dec, put_uvarint};
use crate::head::{ChunkMeta, Head, RefMap, SnapshotState};
use crate::record::{self, Record};
use crate::tombstones::Tombstones;
use crate::wal::{self, CASTAGNOLI};

/// The file, in the data directory.
pub const FILE_NAME: &str = "head_snapshot";
const TMP_NAME: &str = "head_snapshot.tmp";
/// File magic ("WFHS") and format version.
pub const MAGIC: u32 = 0x5746_4853;
pub const VERSION: u8 = 1;

/// The on-disk state a snapshot belongs to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Key {
    /// Checkpoint numbers, ascending.
    checkpoints: Vec<u32>,
    /// WAL segments and their lengths, ascending.
    segments: Vec<(u32, u64)>,
    /// Head chunk files holding chunks, and their used lengths, ascending.
    chunk_files: Vec<(u32, u64)>,
}

impl Key {
    /// The state of `wal_dir` and of `mapper`'s files now.
    pub(crate) fn current(wal_dir: &Path, mapper: Option<&ChunkDiskMapper>) -> Result<Key, Error> {
        let checkpoints = checkpoint::list(wal_dir)?.into_iter().map(|(s, _)| s).collect();
        let mut segments = Vec::new();
        for s in wal::list_segments(wal_dir)? {
            let p = wal_dir.join(wal::segment_name(s));
            let len = fs::metadata(&p)
                .map_err(|e| Error::io("stat WAL segment", &p, e))?
                .len();
            segments.push((s, len));
        }
        let chunk_files = mapper.map_or_else(Vec::new, |m| {
            m.file_sizes()
                .into_iter()
                .filter(|&(_, used)| used > FILE_HEADER_SIZE as u64)
                .collect()
        });
        Ok(Key {
            checkpoints,
            segments,
            chunk_files,
        })
    }

    /// The newest checkpoint, which the next WAL segment must be numbered after.
    pub(crate) fn checkpoint(&self) -> Option<u32> {
        self.checkpoints.last().copied()
    }
}

/// Writes the snapshot of `head` for the state `key` into `dir` (atomically: a temporary file,
/// fsynced, renamed). Returns false, writing nothing, when the head holds what a snapshot
/// does not carry (out-of-order samples, start timestamps of open chunks).
pub(crate) fn write(dir: &Path, head: &Head, key: &Key) -> Result<bool, Error> {
    let Some(state) = head.snapshot_state() else {
        return Ok(false);
    };
    let body = encode(key, &state);
    let tmp = dir.join(TMP_NAME);
    let mut f = fs::File::create(&tmp).map_err(|e| Error::io("create head snapshot", &tmp, e))?;
    let mut header = [0u8; 5];
    header[..4].copy_from_slice(&MAGIC.to_be_bytes());
    header[4] = VERSION;
    f.write_all(&header)
        .and_then(|()| f.write_all(&body))
        .and_then(|()| f.write_all(&CASTAGNOLI.checksum(&body).to_be_bytes()))
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("write head snapshot", &tmp, e))?;
    drop(f);
    let path = dir.join(FILE_NAME);
    fs::rename(&tmp, &path).map_err(|e| Error::io("rename head snapshot", &tmp, e))?;
    wal::sync_dir(dir)?;
    Ok(true)
}

fn encode(key: &Key, state: &SnapshotState) -> Vec<u8> {
    let mut b = Vec::new();
    put_uvarint(&mut b, key.checkpoints.len() as u64);
    for &c in &key.checkpoints {
        put_uvarint(&mut b, u64::from(c));
    }
    for files in [&key.segments, &key.chunk_files] {
        put_uvarint(&mut b, files.len() as u64);
        for &(seq, len) in files {
            put_uvarint(&mut b, u64::from(seq));
            put_uvarint(&mut b, len);
        }
    }
    put_uvarint(&mut b, state.next_ref);
    // Label strings once each, in order of first use; series refer to them by number.
    let mut ids: HashMap<&str, u64> = HashMap::new();
    let mut symbols: Vec<&str> = Vec::new();
    for s in &state.series {
        for l in s.labels.iter() {
            for x in [l.name, l.value] {
                ids.entry(x).or_insert_with(|| {
                    symbols.push(x);
                    symbols.len() as u64 - 1
                });
            }
        }
    }
    put_uvarint(&mut b, symbols.len() as u64);
    for s in &symbols {
        put_uvarint(&mut b, s.len() as u64);
        b.extend_from_slice(s.as_bytes());
    }
    put_uvarint(&mut b, state.series.len() as u64);
    let mut prev = 0;
    for s in &state.series {
        put_uvarint(&mut b, s.r - prev);
        prev = s.r;
        put_uvarint(&mut b, s.labels.len() as u64);
        for l in s.labels.iter() {
            put_uvarint(&mut b, ids[l.name]);
            put_uvarint(&mut b, ids[l.value]);
        }
        let open = s.open.as_deref().unwrap_or_default();
        put_uvarint(&mut b, open.len() as u64);
        b.extend_from_slice(open);
        if !open.is_empty() {
            put_uvarint(&mut b, u64::from(s.until_cut));
        }
    }
    let mut meta = Vec::new();
    if !state.metadata.is_empty() {
        record::encode_metadata(&state.metadata, &mut meta);
    }
    for part in [&meta, &state.tombstones] {
        put_uvarint(&mut b, part.len() as u64);
        b.extend_from_slice(part);
    }
    b
}

/// Removes a snapshot (and a temporary one) from `dir` without reading it.
pub(crate) fn discard(dir: &Path) -> Result<(), Error> {
    let _ = fs::remove_file(dir.join(TMP_NAME));
    let path = dir.join(FILE_NAME);
    match fs::remove_file(&path) {
        Ok(()) => wal::sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove head snapshot", &path, e)),
    }
}

/// What [`load`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Loaded {
    /// No snapshot file.
    None,
    /// The snapshot was restored into the head: `series` series.
    Restored { series: u64 },
    /// The snapshot did not belong to the state found, or did not decode; the head is
    /// untouched and the WAL must be replayed.
    Skipped(String),
}

/// Restores the snapshot in `dir` into the empty `head` if it was written for `key`, attaching
/// the full chunks of `chunks` (loaded from the head chunk files, by series reference). Removes
/// the snapshot file in every case. On [`Loaded::Skipped`] after a partial restore the caller
/// must discard `head`.
pub(crate) fn load(
    dir: &Path,
    head: &Head,
    key: &Key,
    chunks: &mut HashMap<u64, Vec<ChunkMeta>>,
) -> Result<(Loaded, bool), Error> {
    let _ = fs::remove_file(dir.join(TMP_NAME));
    let path = dir.join(FILE_NAME);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Loaded::None, false)),
        Err(e) => return Err(Error::io("read head snapshot", &path, e)),
    };
    // Gone before anything new is written: stale from the next commit on.
    fs::remove_file(&path).map_err(|e| Error::io("remove head snapshot", &path, e))?;
    wal::sync_dir(dir)?;
    let body = match check(&data) {
        Ok(b) => b,
        Err(e) => return Ok((Loaded::Skipped(e), false)),
    };
    let mut d = Dec::new(body, 0);
    match read_key(&mut d) {
        Ok(k) if k == *key => {}
        Ok(_) => {
            return Ok((
                Loaded::Skipped("the WAL or head chunk files changed since it was written".into()),
                false,
            ));
        }
        Err(e) => return Ok((Loaded::Skipped(e), false)),
    }
    // From here on a failure leaves series behind in the head.
    match restore(&mut d, head, chunks) {
        Ok(series) => Ok((Loaded::Restored { series }, true)),
        Err(e) => Ok((Loaded::Skipped(e), true)),
    }
}

/// The body of a snapshot file after its header and checksum are checked.
fn check(data: &[u8]) -> Result<&[u8], String> {
    if data.len() < 9 {
        return Err("shorter than its header and checksum".into());
    }
    let magic = u32::from_be_bytes(data[..4].try_into().map_err(|_| "short header")?);
    if magic != MAGIC {
        return Err(format!("bad magic {magic:#x}"));
    }
    if data[4] != VERSION {
        return Err(format!("unknown version {}", data[4]));
    }
    let (body, crc) = data[5..].split_at(data.len() - 9);
    let want = u32::from_be_bytes(crc.try_into().map_err(|_| "short checksum")?);
    if CASTAGNOLI.checksum(body) != want {
        return Err("checksum mismatch".into());
    }
    Ok(body)
}

fn u32_of(x: u64) -> Result<u32, String> {
    u32::try_from(x).map_err(|_| format!("{x} does not fit 32 bits"))
}

fn count(d: &mut Dec<'_>, each: usize) -> Result<usize, String> {
    let n = usize::try_from(d.uvarint()?).map_err(|_| "count too large".to_string())?;
    // Every entry takes at least `each` bytes: a corrupt count cannot reserve much.
    if n.saturating_mul(each) > d.remaining() {
        return Err(format!("count {n} exceeds the bytes left"));
    }
    Ok(n)
}

fn read_key(d: &mut Dec<'_>) -> Result<Key, String> {
    let n = count(d, 1)?;
    let mut checkpoints = Vec::with_capacity(n);
    for _ in 0..n {
        checkpoints.push(u32_of(d.uvarint()?)?);
    }
    let mut files = [Vec::new(), Vec::new()];
    for list in &mut files {
        let n = count(d, 2)?;
        list.reserve(n);
        for _ in 0..n {
            list.push((u32_of(d.uvarint()?)?, d.uvarint()?));
        }
    }
    let [segments, chunk_files] = files;
    Ok(Key {
        checkpoints,
        segments,
        chunk_files,
    })
}

/// A series as parsed, ready to be restored.
struct Parsed {
    r: u64,
    labels: Labels,
    open: Option<XorChunk>,
    until_cut: u32,
}

/// Series per batch the parser hands over, and batches in flight.
const BATCH: usize = 1024;
const DEPTH: usize = 4;

/// What the parser finds after the series, and the postings it built.
struct Tail<'a> {
    /// Per symbol pair (name << 32 | value), the references carrying it, ascending.
    postings: RefMap<Vec<u64>>,
    all: Vec<u64>,
    meta: &'a [u8],
    stones: &'a [u8],
}

/// Restores the series, metadata and tombstones after the key. Parsing (labels, decoding each
/// open chunk to rebuild its appender state, postings by symbol) runs on this thread while a
/// second one inserts the series into the head: the two halves take about the same time. The
/// parser allocates most, so it stays on the opening thread, whose malloc arena the caller
/// may have chosen (a new thread's arena grows a page, and a system call, at a time).
fn restore(d: &mut Dec<'_>, head: &Head, chunks: &mut HashMap<u64, Vec<ChunkMeta>>) -> Result<u64, String> {
    let next_ref = d.uvarint()?;
    let n = count(d, 1)?;
    let mut symbols = Vec::with_capacity(n);
    for _ in 0..n {
        symbols.push(d.uvarint_str()?);
    }
    let sym = |i: u64| -> Result<&str, String> {
        usize::try_from(i)
            .ok()
            .and_then(|i| symbols.get(i).copied())
            .ok_or_else(|| format!("unknown symbol {i}"))
    };
    let n = count(d, 3)?;
    head.reserve_series(n);
    let tail = std::thread::scope(|scope| -> Result<Tail<'_>, String> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Parsed>>(DEPTH);
        let restorer = scope.spawn(move || -> Result<(), String> {
            // Returning early drops the receiver, which stops the parser at its next batch.
            for batch in rx {
                for p in batch {
                    let full = chunks.remove(&p.r).unwrap_or_default();
                    head.restore_series(p.r, &p.labels, full, p.open, p.until_cut)
                        .map_err(|e| format!("series {}: {e}", p.r))?;
                }
            }
            Ok(())
        });
        // The parser, which allocates most (labels, chunks), stays on the calling thread.
        let parsed = parse_series(d, n, &sym, tx);
        restorer.join().unwrap_or_else(|e| std::panic::resume_unwind(e))?;
        parsed
    })?;
    let mut lists = Vec::with_capacity(tail.postings.len() + 1);
    lists.push(("", "", tail.all));
    for (pair, refs) in tail.postings {
        lists.push((sym(pair >> 32)?, sym(pair & u64::from(u32::MAX))?, refs));
    }
    head.add_postings_bulk(lists);
    head.raise_next_ref(next_ref);
    if !tail.meta.is_empty() {
        match record::decode(tail.meta) {
            Ok(Record::Metadata(ms)) => {
                for m in ms {
                    head.set_metadata(
                        m.r,
                        watchfire_storage::Metadata {
                            metric_type: watchfire_storage::MetricType::from_code(m.metric_type),
                            unit: m.unit,
                            help: m.help,
                        },
                    );
                }
            }
            Ok(_) => return Err("metadata is not a metadata record".into()),
            Err(e) => return Err(e.to_string()),
        }
    }
    let t = Tombstones::decode(tail.stones, Path::new(FILE_NAME)).map_err(|e| e.to_string())?;
    head.set_tombstones(t);
    Ok(n as u64)
}

/// The parser's half of [`restore`]: `n` series, sent in batches, then the metadata and
/// tombstones. Stops early (with an error nobody reads) when the receiver is gone.
fn parse_series<'a>(
    d: &mut Dec<'a>,
    n: usize,
    sym: &(dyn Fn(u64) -> Result<&'a str, String> + Sync),
    tx: std::sync::mpsc::SyncSender<Vec<Parsed>>,
) -> Result<Tail<'a>, String> {
    let mut postings: RefMap<Vec<u64>> = RefMap::default();
    let mut all = Vec::with_capacity(n);
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let mut ids: Vec<(u64, u64)> = Vec::new();
    let mut batch = Vec::with_capacity(BATCH);
    let mut r = 0u64;
    for _ in 0..n {
        r = r
            .checked_add(d.uvarint()?)
            .ok_or_else(|| "series reference overflows".to_string())?;
        pairs.clear();
        ids.clear();
        for _ in 0..count(d, 2)? {
            let (name, value) = (d.uvarint()?, d.uvarint()?);
            pairs.push((sym(name)?, sym(value)?));
            ids.push((name, value));
        }
        let labels = Labels::from_sorted_pairs(&pairs);
        let len = usize::try_from(d.uvarint()?).map_err(|_| "chunk length too large".to_string())?;
        let (open, until_cut) = if len == 0 {
            (None, 0)
        } else {
            let bytes = d.bytes(len)?.to_vec();
            let until_cut = u32_of(d.uvarint()?)?;
            let c = XorChunk::from_bytes(bytes).map_err(|e| format!("open chunk of series {r}: {e}"))?;
            (Some(c), until_cut)
        };
        if pairs.len() != labels.len() {
            // Written from a label set, so never: repeated names or empty values.
            return Err(format!("series {r}: not a valid label set"));
        }
        all.push(r);
        // Symbol numbers are below 2^32 (each symbol takes a byte at least), so a pair fits a
        // u64.
        for &(name, value) in &ids {
            postings.entry(name << 32 | value).or_default().push(r);
        }
        batch.push(Parsed {
            r,
            labels,
            open,
            until_cut,
        });
        if batch.len() == BATCH
            && tx
                .send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                .is_err()
        {
            return Err("restore stopped".into());
        }
    }
    if !batch.is_empty() && tx.send(batch).is_err() {
        return Err("restore stopped".into());
    }
    drop(tx);
    let len = usize::try_from(d.uvarint()?).map_err(|_| "metadata length too large".to_string())?;
    let meta = d.bytes(len)?;
    let len = usize::try_from(d.uvarint()?).map_err(|_| "tombstones length too large".to_string())?;
    let stones = d.bytes(len)?;
    if d.remaining() != 0 {
        return Err(format!("{} bytes after the end", d.remaining()));
    }
    Ok(Tail {
        postings,
        all,
        meta,
        stones,
    })
}

#[cfg(test)]
mod tests {
    use watchfire_model::{MatchType, Matcher};
    use watchfire_storage::Appendable;

    use super::FILE_NAME;
    use crate::test_util::{churn_labels as labels, copy_dir, small_opts as opts, write_churn as write};
    use crate::{Db, HeadOptions, Options};

    /// A data directory after a clean shutdown: blocks, a checkpoint, full chunks in the head
    /// chunk files, open chunks, metadata and tombstones, series garbage-collected.
    fn shut_down_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), opts()).unwrap();
        write(&db, 0, 200, 0..40);
        let m = |v: &str| Matcher::new(MatchType::Equal, "__name__", v).unwrap();
        db.delete(50_000, 80_000, &[m("m1")]).unwrap();
        let report = db.maintain().unwrap();
        assert!(report.checkpoint.is_some() && report.series_removed > 0, "{report:?}");
        write(&db, 200, 330, 0..60);
        db.delete(300_000, 310_000, &[m("m2")]).unwrap();
        assert!(db.shutdown().unwrap(), "a snapshot is written");
        drop(db);
        assert!(dir.path().join(FILE_NAME).exists());
        dir
    }

    #[test]
    fn the_snapshot_restores_the_head_that_replay_rebuilds() {
        let src = shut_down_dir();
        let replayed = tempfile::tempdir().unwrap();
        copy_dir(src.path(), replayed.path());
        std::fs::remove_file(replayed.path().join(FILE_NAME)).unwrap();

        let db = Db::open(src.path(), opts()).unwrap();
        let r = db.open_report();
        assert!(r.snapshot_series.is_some_and(|n| n > 0), "{r:?}");
        assert_eq!((r.wal_records, r.snapshot_skipped.clone()), (0, None));
        assert!(!src.path().join(FILE_NAME).exists(), "removed once read");
        let from_replay = Db::open(replayed.path(), opts()).unwrap();
        assert!(from_replay.open_report().wal_records > 0);
        assert_eq!(from_replay.open_report().checkpoint, r.checkpoint);
        let (a, b) = (db.head().replay_state(), from_replay.head().replay_state());
        if a != b {
            let diff = b.lines().zip(a.lines()).find(|(x, y)| x != y);
            panic!("snapshot and replay differ: {diff:?}");
        }
        // Both keep working the same way.
        write(&db, 330, 400, 0..60);
        write(&from_replay, 330, 400, 0..60);
        assert_eq!(db.head().replay_state(), from_replay.head().replay_state());
    }

    #[test]
    fn a_snapshot_older_than_the_wal_is_not_used_and_nothing_is_lost() {
        let src = shut_down_dir();
        let stale = std::fs::read(src.path().join(FILE_NAME)).unwrap();
        let db = Db::open(src.path(), opts()).unwrap();
        assert!(db.open_report().snapshot_series.is_some());
        write(&db, 330, 360, 0..60);
        let want = db.head().replay_state();
        // A crash, and the snapshot's removal was lost with it.
        drop(db);
        std::fs::write(src.path().join(FILE_NAME), &stale).unwrap();
        let db = Db::open(src.path(), opts()).unwrap();
        let r = db.open_report();
        assert!(r.snapshot_series.is_none() && r.snapshot_skipped.is_some(), "{r:?}");
        assert_eq!(db.head().replay_state(), want);
    }

    #[test]
    fn a_damaged_snapshot_is_skipped_for_replay() {
        for cut in [false, true] {
            let src = shut_down_dir();
            let path = src.path().join(FILE_NAME);
            let mut bytes = std::fs::read(&path).unwrap();
            let replayed = tempfile::tempdir().unwrap();
            copy_dir(src.path(), replayed.path());
            std::fs::remove_file(replayed.path().join(FILE_NAME)).unwrap();
            if cut {
                bytes.truncate(bytes.len() / 2);
            } else {
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0x10;
            }
            std::fs::write(&path, &bytes).unwrap();
            let db = Db::open(src.path(), opts()).unwrap();
            let r = db.open_report();
            assert!(r.snapshot_skipped.is_some() && r.wal_records > 0, "{r:?}");
            let want = Db::open(replayed.path(), opts()).unwrap();
            assert_eq!(db.head().replay_state(), want.head().replay_state());
        }
    }

    #[test]
    fn a_snapshot_failing_half_way_leaves_the_head_to_replay() {
        let src = shut_down_dir();
        let replayed = tempfile::tempdir().unwrap();
        copy_dir(src.path(), replayed.path());
        std::fs::remove_file(replayed.path().join(FILE_NAME)).unwrap();
        // Checksum and key right, but the second series repeats the first one's labels.
        let (mapper, _, damage) =
            crate::chunks_head::ChunkDiskMapper::open(&src.path().join("chunks_head"), 16 * 1024).unwrap();
        assert!(damage.is_none());
        let key = super::Key::current(&src.path().join("wal"), Some(&mapper)).unwrap();
        drop(mapper);
        let one = |r| crate::head::SnapshotSeries {
            r,
            labels: labels(1),
            open: None,
            until_cut: 0,
        };
        let state = crate::head::SnapshotState {
            next_ref: 3,
            series: vec![one(1), one(2)],
            metadata: Vec::new(),
            tombstones: crate::tombstones::Tombstones::default().encode(),
        };
        let body = super::encode(&key, &state);
        let mut file = super::MAGIC.to_be_bytes().to_vec();
        file.push(super::VERSION);
        file.extend_from_slice(&body);
        file.extend_from_slice(&crate::wal::CASTAGNOLI.checksum(&body).to_be_bytes());
        std::fs::write(src.path().join(FILE_NAME), file).unwrap();

        let db = Db::open(src.path(), opts()).unwrap();
        let r = db.open_report();
        assert!(
            r.snapshot_skipped
                .as_deref()
                .is_some_and(|w| w.contains("label set used twice")),
            "{r:?}"
        );
        let want = Db::open(replayed.path(), opts()).unwrap();
        assert_eq!(db.head().replay_state(), want.head().replay_state());
        assert_eq!(db.open_report().mmapped_chunks, want.open_report().mmapped_chunks);
    }

    #[test]
    fn no_snapshot_without_the_option_or_with_out_of_order_samples() {
        let dir = tempfile::tempdir().unwrap();
        let off = Options {
            snapshot_on_shutdown: false,
            ..opts()
        };
        let db = Db::open(dir.path(), off).unwrap();
        write(&db, 0, 20, 0..5);
        assert!(!db.shutdown().unwrap());
        drop(db);
        assert!(!dir.path().join(FILE_NAME).exists());

        let ooo = Options {
            head: HeadOptions {
                out_of_order_time_window: 60_000,
                ..opts().head
            },
            ..opts()
        };
        let db = Db::open(dir.path(), ooo).unwrap();
        write(&db, 20, 40, 0..5);
        let mut app = db.appender();
        app.append(None, &labels(1), 10_500, 1.0).unwrap();
        app.commit().unwrap();
        assert!(!db.shutdown().unwrap(), "out-of-order samples: no snapshot");
        drop(db);
        assert!(!dir.path().join(FILE_NAME).exists());
        let db = Db::open(dir.path(), ooo).unwrap();
        assert!(db.open_report().wal_records > 0);
        drop(db);

        // Start timestamps in an open chunk: replayed from the WAL, not lost in a snapshot.
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), opts()).unwrap();
        write(&db, 0, 20, 0..5);
        let mut app = db.appender();
        app.append_st(None, &labels(1), 5_000, 30_000, 7.0).unwrap();
        app.commit().unwrap();
        assert!(!db.shutdown().unwrap(), "start timestamps: no snapshot");
        drop(db);
        assert!(!dir.path().join(FILE_NAME).exists());
        let db = Db::open(dir.path(), opts()).unwrap();
        let q = watchfire_storage::Queryable::querier(&db, 30_000, 30_000).unwrap();
        let m = watchfire_model::Matcher::new(watchfire_model::MatchType::Equal, "series", "1").unwrap();
        let sts: Vec<i64> = q
            .select(true, None, &[m])
            .map(|s| {
                let mut it = s.unwrap().iterator();
                assert!(it.next());
                it.at_st()
            })
            .collect();
        assert_eq!(sts, [5_000]);
    }
}
