//! The crate's error type.

/// Why an exposition could not be parsed, or why no parser could be chosen for it.
///
/// Messages follow Prometheus' `model/textparse` wording (`expected value after metric, got
/// ...`, `invalid UTF-8 label value`, `data does not end with # EOF`) so they can be
/// searched for in upstream issues, with a position in front.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A syntax or value error in the Prometheus text format or OpenMetrics. `line` and
    /// `column` are 1-based; the column counts bytes.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// An error in a protobuf exposition. `family` is the 0-based index of the
    /// length-delimited `MetricFamily` message, `offset` the byte offset where it starts.
    #[error("metric family #{family}{} at byte {offset}: {message}", name_suffix(.name))]
    Protobuf {
        family: usize,
        offset: usize,
        name: String,
        message: String,
    },
    /// The response had no `Content-Type` (Prometheus 3 fails such scrapes unless
    /// `fallback_scrape_protocol` is set).
    #[error("non-compliant scrape target sending blank Content-Type")]
    BlankContentType,
    /// The `Content-Type` is not a well-formed media type.
    #[error("cannot parse Content-Type {content_type:?}: {reason}")]
    InvalidContentType { content_type: String, reason: String },
    /// The `Content-Type` is well formed but names no format Prometheus scrapes.
    #[error("received unsupported Content-Type {content_type:?}")]
    UnsupportedContentType { content_type: String },
}

fn name_suffix(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!(" ({name:?})")
    }
}

/// 1-based line and byte column of `offset` in `input`.
pub(crate) fn position(input: &[u8], offset: usize) -> (usize, usize) {
    let offset = offset.min(input.len());
    let before = &input[..offset];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    (line, offset - line_start + 1)
}

/// A syntax error at byte `offset` of `input`.
pub(crate) fn syntax(input: &[u8], offset: usize, message: String) -> Error {
    let (line, column) = position(input, offset);
    Error::Syntax { line, column, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let input = b"ab\ncd\n";
        assert_eq!(position(input, 0), (1, 1));
        assert_eq!(position(input, 1), (1, 2));
        assert_eq!(position(input, 3), (2, 1));
        assert_eq!(position(input, 6), (3, 1));
        assert_eq!(position(input, 99), (3, 1));
    }
}
