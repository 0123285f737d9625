//! WAL checkpoints (upstream `tsdb/wlog/checkpoint.go`): when the head is truncated, the
//! records of the completed WAL segments that still matter (series records of live series,
//! samples at or after the truncation point, their tombstones and latest metadata) are copied
//! into `wal/checkpoint.NNNNNNNN/` (NNNNNNNN = the last segment covered), after which those
//! segments and older checkpoints are deleted. Replay reads the newest checkpoint, then the
//! segments after it. See FORMAT.md, "WAL checkpoints".

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::record::{self, Record, RefMetadata, RefSample, RefSeries, Stone};
use crate::wal::{self, SyncPolicy, Wal, WalOptions};

const PREFIX: &str = "checkpoint.";
const TMP_SUFFIX: &str = ".tmp";
/// Entries per record written to a checkpoint.
const BATCH: usize = 10_000;

/// The directory name of the checkpoint covering segments up to `seq`.
pub fn checkpoint_name(seq: u32) -> String {
    format!("{PREFIX}{seq:08}")
}

/// Complete checkpoints in `wal_dir`, ascending.
pub(crate) fn list(wal_dir: &Path) -> Result<Vec<(u32, PathBuf)>, Error> {
    let mut out = Vec::new();
    for e in fs::read_dir(wal_dir).map_err(|e| Error::io("read directory", wal_dir, e))? {
        let e = e.map_err(|e| Error::io("read directory", wal_dir, e))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = name.strip_prefix(PREFIX)
            && n.len() == 8
            && n.bytes().all(|b| b.is_ascii_digit())
            && let Ok(seq) = n.parse::<u32>()
        {
            out.push((seq, e.path()));
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Removes leftovers of a checkpoint interrupted by a crash.
pub(crate) fn remove_temporary(wal_dir: &Path) -> Result<(), Error> {
    for e in fs::read_dir(wal_dir).map_err(|e| Error::io("read directory", wal_dir, e))? {
        let e = e.map_err(|e| Error::io("read directory", wal_dir, e))?;
        let name = e.file_name();
        if name
            .to_str()
            .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(TMP_SUFFIX))
        {
            let p = e.path();
            fs::remove_dir_all(&p).map_err(|e| Error::io("remove checkpoint", &p, e))?;
        }
    }
    Ok(())
}

/// Reads every record of a checkpoint directory. A checkpoint is fsynced before it gets its
/// name, so damage inside it is an error, not a torn tail.
pub(crate) fn read(dir: &Path, mut f: impl FnMut(&[u8])) -> Result<(), Error> {
    for seg in wal::list_segments(dir)? {
        let path = dir.join(wal::segment_name(seg));
        let data = fs::read(&path).map_err(|e| Error::io("read checkpoint", &path, e))?;
        wal::read_segment(seg, &data, &mut f).map_err(|c| Error::Corruption {
            file: path.clone(),
            offset: c.offset,
            reason: c.reason,
        })?;
    }
    Ok(())
}

/// What a checkpoint kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    pub last_segment: u32,
    pub series: u64,
    pub samples: u64,
    pub tombstones: u64,
    pub dropped_samples: u64,
}

/// Writes the checkpoint of the previous checkpoint (if any) and every segment up to and
/// including `to`, keeping what `keep(series_ref)` allows: samples (in-order and
/// out-of-order) at or after `mint`, tombstones reaching `stones_mint` or later, the latest
/// metadata; then deletes those segments and older checkpoints. With `compress`, its records
/// are Snappy-compressed as the WAL's are.
pub(crate) fn checkpoint(
    wal_dir: &Path,
    to: u32,
    keep: impl Fn(u64) -> bool,
    mint: i64,
    stones_mint: i64,
    compress: bool,
) -> Result<CheckpointStats, Error> {
    let mut stats = CheckpointStats {
        last_segment: to,
        ..Default::default()
    };
    let previous = list(wal_dir)?;
    let tmp = wal_dir.join(format!("{}{TMP_SUFFIX}", checkpoint_name(to)));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| Error::io("remove checkpoint", &tmp, e))?;
    }
    let mut out = Wal::create(
        &tmp,
        WalOptions {
            segment_size: wal::DEFAULT_SEGMENT_SIZE,
            sync: SyncPolicy::SegmentBoundary,
            compress,
        },
    )?;
    let mut series: Vec<RefSeries> = Vec::new();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut samples: Vec<RefSample> = Vec::new();
    // Start timestamps of `samples` by position; empty while none of them has one.
    let mut sample_sts: Vec<i64> = Vec::new();
    let mut stones: Vec<Stone> = Vec::new();
    let mut meta: HashMap<u64, RefMetadata> = HashMap::new();
    let mut buf = Vec::new();
    let mut failed: Option<Error> = None;
    let mut ooo: Vec<RefSample> = Vec::new();
    let mut flush = |out: &mut Wal,
                     series: &mut Vec<RefSeries>,
                     samples: &mut Vec<RefSample>,
                     sample_sts: &mut Vec<i64>,
                     ooo: &mut Vec<RefSample>,
                     force: bool| {
        if series.len() >= BATCH || (force && !series.is_empty()) {
            buf.clear();
            record::encode_series(series.iter().map(|s| (s.r, &s.labels)), &mut buf);
            series.clear();
            out.log(&[&buf])?;
        }
        if samples.len() >= BATCH || (force && !samples.is_empty()) {
            buf.clear();
            if sample_sts.is_empty() {
                record::encode_compact_samples(samples, &mut buf);
            } else {
                record::encode_st_samples(samples, sample_sts, &mut buf);
                sample_sts.clear();
            }
            samples.clear();
            out.log(&[&buf])?;
        }
        if ooo.len() >= BATCH || (force && !ooo.is_empty()) {
            buf.clear();
            record::encode_ooo_samples(ooo, &mut buf);
            ooo.clear();
            out.log(&[&buf])?;
        }
        Ok::<(), Error>(())
    };
    let mut handle = |rec: &[u8], out: &mut Wal| {
        if failed.is_some() {
            return;
        }
        let Ok(rec) = record::decode(rec) else { return };
        match rec {
            Record::Series(list) => {
                for s in list {
                    if keep(s.r) && seen.insert(s.r) {
                        stats.series += 1;
                        series.push(s);
                    }
                }
            }
            Record::Samples(list) => {
                for s in list {
                    if s.t >= mint && keep(s.r) {
                        stats.samples += 1;
                        samples.push(s);
                        if !sample_sts.is_empty() {
                            sample_sts.push(0);
                        }
                    } else {
                        stats.dropped_samples += 1;
                    }
                }
            }
            Record::StSamples(list, sts) => {
                // Kept in the same buffer as the other in-order samples, so their order (and
                // with it what replay accepts) stays the WAL's.
                for (s, st) in list.into_iter().zip(sts) {
                    if s.t >= mint && keep(s.r) {
                        stats.samples += 1;
                        if st != 0 || !sample_sts.is_empty() {
                            sample_sts.resize(samples.len(), 0);
                            sample_sts.push(st);
                        }
                        samples.push(s);
                    } else {
                        stats.dropped_samples += 1;
                    }
                }
            }
            Record::OooSamples(list) => {
                // Out-of-order samples older than `mint` were written to blocks by the
                // compaction this checkpoint follows; see FORMAT.md, "Out-of-order samples".
                for s in list {
                    if s.t >= mint && keep(s.r) {
                        stats.samples += 1;
                        ooo.push(s);
                    } else {
                        stats.dropped_samples += 1;
                    }
                }
            }
            Record::Tombstones(list) => {
                for s in list {
                    if s.maxt >= stones_mint && keep(s.r) {
                        stats.tombstones += 1;
                        stones.push(s);
                    }
                }
            }
            Record::Metadata(list) => {
                for m in list {
                    if keep(m.r) {
                        meta.insert(m.r, m);
                    }
                }
            }
            Record::Unknown(_) => {}
        }
        // Series go out before the samples that refer to them.
        let force = samples.len() >= BATCH || ooo.len() >= BATCH;
        if let Err(e) = flush(out, &mut series, &mut samples, &mut sample_sts, &mut ooo, force) {
            failed = Some(e);
        }
    };
    if let Some((_, dir)) = previous.last() {
        read(dir, |rec| handle(rec, &mut out))?;
    }
    for seg in wal::list_segments(wal_dir)?.into_iter().filter(|&s| s <= to) {
        let path = wal_dir.join(wal::segment_name(seg));
        let data = fs::read(&path).map_err(|e| Error::io("read WAL segment", &path, e))?;
        wal::read_segment(seg, &data, |rec| handle(rec, &mut out)).map_err(|c| Error::Corruption {
            file: path.clone(),
            offset: c.offset,
            reason: c.reason,
        })?;
    }
    if let Some(e) = failed {
        return Err(e);
    }
    flush(&mut out, &mut series, &mut samples, &mut sample_sts, &mut ooo, true)?;
    if !stones.is_empty() {
        let mut b = Vec::new();
        record::encode_tombstones(&stones, &mut b);
        out.log(&[&b])?;
    }
    if !meta.is_empty() {
        let mut list: Vec<RefMetadata> = meta.into_values().collect();
        list.sort_by_key(|m| m.r);
        let mut b = Vec::new();
        record::encode_metadata(&list, &mut b);
        out.log(&[&b])?;
    }
    out.sync()?;
    drop(out);
    wal::sync_dir(&tmp)?;
    let done = wal_dir.join(checkpoint_name(to));
    if done.exists() {
        fs::remove_dir_all(&done).map_err(|e| Error::io("remove checkpoint", &done, e))?;
    }
    fs::rename(&tmp, &done).map_err(|e| Error::io("rename checkpoint", &tmp, e))?;
    wal::sync_dir(wal_dir)?;
    // The checkpoint is durable: what it covers can go.
    for seg in wal::list_segments(wal_dir)?.into_iter().filter(|&s| s <= to) {
        let p = wal_dir.join(wal::segment_name(seg));
        fs::remove_file(&p).map_err(|e| Error::io("remove WAL segment", &p, e))?;
    }
    for (seq, dir) in previous {
        if seq < to {
            fs::remove_dir_all(&dir).map_err(|e| Error::io("remove checkpoint", &dir, e))?;
        }
    }
    wal::sync_dir(wal_dir)?;
    Ok(stats)
}
