//! Metric and label name validity, under both of Prometheus' validation schemes.

/// Whether `name` is a valid metric name under the legacy scheme: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_legacy_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// Whether `name` is a valid label name under the legacy scheme: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_legacy_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `name` is a valid metric name under Prometheus 3's default UTF-8 scheme: any
/// non-empty string (Rust strings are always valid UTF-8).
pub fn is_valid_metric_name(name: &str) -> bool {
    !name.is_empty()
}

/// Whether `name` is a valid label name under Prometheus 3's default UTF-8 scheme.
pub fn is_valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names() {
        assert!(is_valid_legacy_metric_name("node_cpu_seconds_total"));
        assert!(is_valid_legacy_metric_name("job:rate:5m"));
        assert!(!is_valid_legacy_metric_name("1abc"));
        assert!(!is_valid_legacy_metric_name("my.metric"));
        assert!(!is_valid_legacy_metric_name(""));
        assert!(is_valid_legacy_label_name("__name__"));
        assert!(!is_valid_legacy_label_name("a:b"));
        assert!(is_valid_label_name("my.label"));
        assert!(!is_valid_label_name(""));
    }
}
