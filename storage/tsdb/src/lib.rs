//! Watchfire's time-series database: the engine behind the `watchfire-storage` traits.
//!
//! It owns the float chunk encoding ([`chunkenc`], byte-compatible with Prometheus' XOR
//! chunks), the in-memory [`Head`] (series, open chunks, the inverted [`index`]), the
//! write-ahead log ([`wal`], [`record`], [`checkpoint`]; Snappy-compressed, replayed in
//! parallel; followed while it is written by [`wal_reader`], for remote write), out-of-order
//! samples, the memory-mapped head chunk files ([`chunks_head`]) and persistent [`Block`]s
//! (index, chunk segments, tombstones, named by a [`Ulid`]). [`Db`] ties them to a data
//! directory: it replays the WAL on open, merges the head and the blocks for queries, and its
//! [`Db::maintain`] compacts the head into blocks, blocks into larger ones and applies
//! retention. Every on-disk byte is described in `FORMAT.md`
//! beside this crate.
//!
//! Storage is synchronous: no async runtime, no background threads (the caller runs
//! `maintain` periodically on a thread of its choosing; WAL replay spreads over scoped threads
//! that all end before [`Db::open`] returns). It depends on
//! `watchfire-model` and `watchfire-storage` only among Watchfire crates, and must never
//! depend on PromQL, scrape or HTTP crates.

mod block;
mod blockindex;
pub mod checkpoint;
pub mod chunkenc;
pub mod chunks;
pub mod chunks_head;
mod db;
mod encoding;
mod head;
pub mod index;
mod ooo;
pub mod packed;
mod querier;
pub mod record;
mod replay;
mod snapshot;
#[cfg(test)]
mod test_util;
pub mod tombstones;
pub mod ulid;
pub mod wal;
pub mod wal_reader;

use std::path::{Path, PathBuf};

pub use block::{Block, BlockDesc, BlockMeta, BlockMetaCompaction, BlockStats, FROM_OUT_OF_ORDER};
pub use db::{CorruptBlock, Db, DbMetrics, MaintainReport, OpenReport, Options};
pub use head::{Head, HeadAppender, HeadOptions, HeadQuerier, MemoryStorage, Metrics};
pub use ulid::Ulid;
pub use wal::{SyncPolicy, WalNotify};

/// Errors of the TSDB engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Bytes on disk that do not decode.
    #[error("corrupt {file}: offset {offset}: {reason}")]
    Corruption { file: PathBuf, offset: u64, reason: String },
    /// Another process holds the data directory.
    #[error("data directory {0} is locked by another process")]
    Locked(PathBuf),
    /// An earlier WAL write failed half-way; nothing more can be committed safely.
    #[error("WAL is unusable after an earlier write error: {0}")]
    WalBroken(String),
    /// The database was closed (at shutdown); nothing more is committed.
    #[error("the database is closed")]
    Closed,
}

impl Error {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<Error> for watchfire_storage::Error {
    fn from(e: Error) -> Self {
        watchfire_storage::Error::engine(e)
    }
}
