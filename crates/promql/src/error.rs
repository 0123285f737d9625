//! Parse errors, printed as Prometheus prints them: `1:12: parse error: <message>`.

use std::fmt;

use thiserror::Error;

use crate::ast::PosRange;

/// Where an error is, as upstream's `PositionRange.StartPosInput` renders it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// 1-based line, and 1-based column counted in bytes from the start of the line.
    LineColumn { line: usize, column: usize },
    /// The query was empty.
    Unknown,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::LineColumn { line, column } => write!(f, "{line}:{column}"),
            Position::Unknown => f.write_str("unknown position"),
        }
    }
}

/// A syntax, lexical or type error in a PromQL query, with the byte range it concerns.
///
/// Only the first error is reported, as upstream's `ParseErrors.Error()` does.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{position}: parse error: {message}")]
pub struct ParseError {
    pub position: Position,
    /// Byte offsets of the offending part of the query.
    pub range: PosRange,
    pub message: String,
}

impl ParseError {
    /// An error at byte offsets `start..end` of `query`.
    pub fn new(query: &str, start: usize, end: usize, message: impl Into<String>) -> Self {
        let start = start.min(query.len());
        let position = if query.is_empty() {
            Position::Unknown
        } else {
            let before = &query.as_bytes()[..start];
            let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
            let column = match before.iter().rposition(|&b| b == b'\n') {
                Some(nl) => start - nl,
                None => start + 1,
            };
            Position::LineColumn { line, column }
        };
        ParseError {
            position,
            range: PosRange::new(start, end.max(start)),
            message: message.into(),
        }
    }

    /// The byte offset the error points at.
    pub fn offset(&self) -> usize {
        self.range.start as usize
    }
}

/// Why a duration expression (`[step() / 2]`, `offset -range()`) has no valid value for a
/// query, as upstream's duration resolution reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum DurationError {
    #[error("division by zero")]
    DivisionByZero,
    #[error("modulo by zero")]
    ModuloByZero,
    #[error("duration is NaN or infinite")]
    NotFinite,
    #[error("duration must be greater than 0")]
    NotPositive,
    #[error("duration is out of range")]
    OutOfRange,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_upstream() {
        let e = ParseError::new("foo + ", 6, 6, "unexpected end of input");
        assert_eq!(e.to_string(), "1:7: parse error: unexpected end of input");
        let e = ParseError::new("foo\n  +", 6, 7, "x");
        assert_eq!(e.to_string(), "2:3: parse error: x");
        let e = ParseError::new("", 0, 0, "no expression found in input");
        assert_eq!(
            e.to_string(),
            "unknown position: parse error: no expression found in input"
        );
    }
}
