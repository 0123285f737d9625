//! Helpers for the unit tests of several modules.

use std::path::Path;

use watchfire_model::Labels;
use watchfire_storage::{Appendable, Metadata, MetricType};

use crate::{Db, HeadOptions, Options, SyncPolicy};

/// Small segments, chunks and chunk files, so a few minutes of data span several of each.
pub(crate) fn small_opts() -> Options {
    Options {
        head: HeadOptions {
            samples_per_chunk: 16,
            ..HeadOptions::default()
        },
        wal_segment_size: 32 * 1024,
        wal_sync: SyncPolicy::SegmentBoundary,
        head_chunk_file_size: 16 * 1024,
        block_range: 60_000,
        retention_time: 0,
        ..Options::default()
    }
}

/// The labels of series `i` of [`write_churn`].
pub(crate) fn churn_labels(i: u64) -> Labels {
    Labels::from_pairs([("__name__", format!("m{}", i % 3)), ("series", i.to_string())])
}

/// One commit per second from `from` to `to` (seconds): series `i` lives for 100 s from `5 i`
/// s, so series come and go (churn); some values are stale markers; every 50 s each series
/// gets new metadata.
pub(crate) fn write_churn(db: &Db, from: i64, to: i64, series: std::ops::Range<u64>) {
    for t in from..to {
        let mut app = db.appender();
        for i in series.clone() {
            let start = i as i64 * 5;
            if (start..start + 100).contains(&(t % 400)) {
                let v = match t % 7 {
                    0 => f64::from_bits(watchfire_model::STALE_NAN_BITS),
                    1 => t as f64 / 3.0,
                    _ => (t * 10 + i as i64) as f64 / 100.0,
                };
                app.append(None, &churn_labels(i), t * 1000, v).unwrap();
            }
            if t % 50 == 0 {
                let meta = Metadata {
                    metric_type: MetricType::Counter,
                    unit: "seconds".into(),
                    help: format!("help {i} at {t}"),
                };
                app.update_metadata(None, &churn_labels(i), &meta).unwrap();
            }
        }
        app.commit().unwrap();
    }
}

/// Copies the data directory `from` to `to` (without the lock file), as a restart on a copy
/// of a store needs.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() == "lock" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}
