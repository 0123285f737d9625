//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Why one collector could not report (fully). [`HostCollector`](crate::HostCollector) turns
/// it into `node_scrape_collector_success{collector="…"} 0` and a log line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A source file or directory could not be read.
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// A source was read but its content is not what the kernel writes.
    #[error("{path}: line {line}: {msg}")]
    Parse { path: PathBuf, line: usize, msg: String },
    /// The source does not exist on this system (no hwmon chips, a kernel without PSI):
    /// node_exporter's `ErrNoData`, logged at debug level only.
    #[error("no data: {0}")]
    NoData(String),
    /// An include or exclude pattern given in the configuration is not a valid regex.
    #[error("invalid pattern {pattern:?}: {source}")]
    Pattern { pattern: String, source: regex::Error },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parse(path: impl Into<PathBuf>, line: usize, msg: impl Into<String>) -> Self {
        Error::Parse {
            path: path.into(),
            line,
            msg: msg.into(),
        }
    }
}
