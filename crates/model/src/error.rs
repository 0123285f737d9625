use thiserror::Error;

/// Errors from parsing model values (durations, matchers, names).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// A duration string that is not in Prometheus' syntax (`1y2w3d4h5m6s7ms`).
    #[error("not a valid duration string: {0:?}")]
    InvalidDuration(String),
    /// A duration that does not fit in 64-bit milliseconds.
    #[error("duration out of range: {0:?}")]
    DurationOutOfRange(String),
    /// A regular expression that does not compile.
    #[error("invalid regular expression {regex:?}: {reason}")]
    InvalidRegex { regex: String, reason: String },
    /// A matcher operator other than `=`, `!=`, `=~`, `!~`.
    #[error("unknown match type {0:?}")]
    InvalidMatchType(String),
}
