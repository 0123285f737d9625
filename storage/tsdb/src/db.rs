//! A data directory: the lock file, `wal/` and `chunks_head/`, and the replay that rebuilds the
//! head from them on open.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use watchfire_model::Timestamp;
use watchfire_storage::{
    self as storage, Appendable, Appender, Metadata, MetricType, Querier, Queryable, Storage, TsdbStatus,
};

use crate::Error;
use crate::chunks_head::{ChunkDiskMapper, DEFAULT_MAX_FILE_SIZE};
use crate::head::{ChunkMeta, Head, HeadOptions};
use crate::record::{self, Record};
use crate::wal::{self, SyncPolicy, Wal, WalOptions};

/// Options of a [`Db`].
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub head: HeadOptions,
    /// WAL segment size in bytes (128 MiB).
    pub wal_segment_size: usize,
    /// When the WAL fsyncs; see FORMAT.md.
    pub wal_sync: SyncPolicy,
    /// Maximum size of one head chunk file (128 MiB).
    pub head_chunk_file_size: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            head: HeadOptions::default(),
            wal_segment_size: wal::DEFAULT_SEGMENT_SIZE,
            wal_sync: SyncPolicy::SegmentBoundary,
            head_chunk_file_size: DEFAULT_MAX_FILE_SIZE,
        }
    }
}

/// What opening found and repaired.
#[derive(Clone, Debug, Default)]
pub struct OpenReport {
    /// A torn or corrupt WAL tail that was cut off.
    pub wal_corruption: Option<wal::Corruption>,
    /// A damaged head chunk file that was cut off.
    pub chunk_damage: Option<crate::chunks_head::Damage>,
    /// Records replayed.
    pub wal_records: u64,
    /// Samples replayed from the WAL (those not already in a chunk file).
    pub wal_samples: u64,
    /// Chunks loaded from chunk files.
    pub mmapped_chunks: u64,
    /// Records whose checksum passed but whose payload did not decode; skipped.
    pub undecodable_records: u64,
}

/// An open data directory.
#[derive(Debug)]
pub struct Db {
    head: Arc<Head>,
    dir: PathBuf,
    report: OpenReport,
    _lock: File,
}

impl Db {
    /// Opens (creating if needed) the data directory `dir`: takes its lock, loads the head chunk
    /// files, replays the WAL into the head, repairs a torn tail of either, and starts a new WAL
    /// segment. Damage is repaired, counted in [`Head::metrics`] and described in
    /// [`Db::open_report`]; it never stops the open.
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
        let head = Arc::new(Head::new(opts.head, None, Some(mapper)));
        if let Some(d) = damage {
            head.metrics().mmap_chunk_corruptions.fetch_add(1, Ordering::Relaxed);
            report.chunk_damage = Some(d);
        }

        let wal_dir = dir.join("wal");
        fs::create_dir_all(&wal_dir).map_err(|e| Error::io("create directory", &wal_dir, e))?;
        replay(&head, &wal_dir, by_series, &mut report)?;
        if report.wal_corruption.is_some() {
            head.metrics().wal_corruptions.fetch_add(1, Ordering::Relaxed);
        }
        let w = Wal::create(
            &wal_dir,
            WalOptions {
                segment_size: opts.wal_segment_size,
                sync: opts.wal_sync,
            },
        )?;
        head.commit.lock().unwrap_or_else(|e| e.into_inner()).wal = Some(w);
        Ok(Db {
            head,
            dir: dir.to_path_buf(),
            report,
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

    /// What opening found and repaired.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// Writes buffered chunks and fsyncs the WAL and the active chunk file.
    pub fn close(self) -> Result<(), Error> {
        self.head.flush()
    }
}

/// Rebuilds the head from the WAL. Samples of a series at or before the end of its loaded
/// chunks are already there and skipped.
fn replay(
    head: &Head,
    wal_dir: &Path,
    mut chunks: HashMap<u64, Vec<ChunkMeta>>,
    report: &mut OpenReport,
) -> Result<(), Error> {
    // A series record whose labels already exist under another reference (possible after a
    // crash between creating and logging) maps onto the existing series.
    let mut remap: HashMap<u64, u64> = HashMap::new();
    let corruption = wal::replay_and_repair(wal_dir, |_, rec| {
        report.wal_records += 1;
        let rec = match record::decode(rec) {
            Ok(r) => r,
            Err(_) => {
                // The checksum passed, so the writer produced these bytes; skip the record.
                report.undecodable_records += 1;
                return;
            }
        };
        match rec {
            Record::Series(series) => {
                for s in series {
                    let (r, h, created) = head.get_or_create(&s.labels, Some(s.r));
                    if r != s.r {
                        remap.insert(s.r, r);
                    }
                    if created || r == s.r {
                        head.attach_chunks(&h, chunks.remove(&s.r).unwrap_or_default());
                    }
                }
            }
            Record::Samples(samples) => {
                let mut last: Option<(u64, Arc<std::sync::Mutex<crate::head::MemSeries>>)> = None;
                for s in samples {
                    let r = remap.get(&s.r).copied().unwrap_or(s.r);
                    let h = match &last {
                        Some((lr, h)) if *lr == r => h.clone(),
                        _ => match head.series(r) {
                            Some(h) => {
                                last = Some((r, h.clone()));
                                h
                            }
                            None => {
                                head.metrics().replay_unknown_refs.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                        },
                    };
                    head.replay_sample(&h, r, s.t, s.v);
                    report.wal_samples += 1;
                }
            }
            Record::Metadata(meta) => {
                for m in meta {
                    let r = remap.get(&m.r).copied().unwrap_or(m.r);
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
            // Deletion is not implemented yet, so no tombstones are written; other types
            // (exemplars, histograms) are not read.
            Record::Tombstones(_) | Record::Unknown(_) => {}
        }
    })?;
    let orphans: usize = chunks.values().map(Vec::len).sum();
    head.metrics()
        .replay_unknown_refs
        .fetch_add(orphans as u64, Ordering::Relaxed);
    report.wal_corruption = corruption;
    Ok(())
}

impl Queryable for Db {
    fn querier(&self, mint: Timestamp, maxt: Timestamp) -> storage::Result<Box<dyn Querier>> {
        Ok(Box::new(self.head.querier(mint, maxt)))
    }
}

impl Appendable for Db {
    fn appender(&self) -> Box<dyn Appender> {
        Box::new(self.head.appender())
    }
}

impl Storage for Db {
    fn start_time(&self) -> Timestamp {
        self.head.min_time()
    }

    fn tsdb_status(&self, limit: usize) -> storage::Result<TsdbStatus> {
        Ok(self.head.status(limit))
    }
}
