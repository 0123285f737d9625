//! Shared encoding helpers: snappy block compression with size limits, label and matcher
//! conversion between `watchfire-model` and the protobuf messages, and Go-style plain-text
//! error responses (`http.Error`).

use axum::body::Body;
use axum::response::Response;
use http::{StatusCode, header};
use watchfire_model::{Labels, MatchType, Matcher};
use watchfire_proto::prompb;

/// The media type of remote write and remote read requests.
pub const PROTOBUF_CONTENT_TYPE: &str = "application/x-protobuf";

/// Decompresses a snappy block (not the framed format), refusing bodies whose declared
/// decompressed length exceeds `max_decoded` before allocating anything.
pub fn decode_snappy(body: &[u8], max_decoded: usize) -> Result<Vec<u8>, String> {
    let len = snap::raw::decompress_len(body).map_err(|e| format!("snappy: {e}"))?;
    if len > max_decoded {
        return Err(format!(
            "decompressed body of {len} bytes exceeds the limit of {max_decoded} bytes"
        ));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))
}

/// Compresses `data` as one snappy block.
pub fn encode_snappy(data: &[u8]) -> Vec<u8> {
    // Compression of an in-memory buffer only fails for inputs above ~4 GiB, which callers
    // never produce; an empty block is returned then rather than panicking.
    snap::raw::Encoder::new().compress_vec(data).unwrap_or_default()
}

/// Converts protobuf labels to a label set, as upstream's receiver validates them: names must
/// be non-empty and unique, and the set must not be empty. Labels with empty values are
/// dropped (an empty value means "no label").
pub fn labels_from_proto<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Labels, String> {
    let mut v: Vec<(&str, &str)> = pairs.into_iter().collect();
    v.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for w in v.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(format!("duplicated label {}", w[0].0));
        }
    }
    if v.iter().any(|(n, _)| n.is_empty()) {
        return Err("empty label name".into());
    }
    let labels = Labels::from_pairs(v);
    if labels.is_empty() {
        return Err("empty label set".into());
    }
    Ok(labels)
}

/// Converts a label set to protobuf labels (sorted by name).
pub fn labels_to_proto(labels: &Labels) -> Vec<prompb::Label> {
    labels.iter().map(|l| prompb::Label::new(l.name, l.value)).collect()
}

/// Adds `external` labels (sorted) that `labels` (sorted) lacks; the series' own labels win,
/// as upstream's `MergeLabels`.
pub fn merge_labels(labels: Vec<prompb::Label>, external: &[prompb::Label]) -> Vec<prompb::Label> {
    if external.is_empty() {
        return labels;
    }
    let mut out = Vec::with_capacity(labels.len() + external.len());
    let (mut i, mut j) = (0, 0);
    while i < labels.len() && j < external.len() {
        match labels[i].name.cmp(&external[j].name) {
            std::cmp::Ordering::Less => {
                out.push(labels[i].clone());
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(external[j].clone());
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(labels[i].clone());
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&labels[i..]);
    out.extend_from_slice(&external[j..]);
    out
}

/// Converts protobuf label matchers, compiling regular expressions.
pub fn matchers_from_proto(ms: &[prompb::LabelMatcher]) -> Result<Vec<Matcher>, String> {
    ms.iter()
        .map(|m| {
            let kind = match prompb::label_matcher::Type::try_from(m.r#type) {
                Ok(prompb::label_matcher::Type::Eq) => MatchType::Equal,
                Ok(prompb::label_matcher::Type::Neq) => MatchType::NotEqual,
                Ok(prompb::label_matcher::Type::Re) => MatchType::Regex,
                Ok(prompb::label_matcher::Type::Nre) => MatchType::NotRegex,
                Err(_) => return Err(format!("invalid matcher type {}", m.r#type)),
            };
            Matcher::new(kind, m.name.clone(), m.value.clone()).map_err(|e| e.to_string())
        })
        .collect()
}

/// A plain-text error response as Go's `http.Error` writes it.
pub fn text_error(status: StatusCode, msg: impl AsRef<str>) -> Response {
    let mut body = msg.as_ref().to_owned();
    body.push('\n');
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("X-Content-Type-Options", "nosniff")
        .body(Body::from(body))
        .unwrap_or_default()
}

/// Reads a request body of at most `limit` bytes. An oversized body is a 400; a failed read
/// (the client went away) a 500, as upstream's `io.ReadAll` failure.
pub async fn read_body(body: Body, headers: &http::HeaderMap, limit: usize) -> Result<axum::body::Bytes, Response> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        text_error(
            StatusCode::BAD_REQUEST,
            format!("request body too large: exceeds the limit of {limit} bytes"),
        )
    };
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.to_string().contains("length limit exceeded") {
                return too_large();
            }
            source = s.source();
        }
        text_error(StatusCode::INTERNAL_SERVER_ERROR, format!("error reading body: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snappy_round_trip_and_limits() {
        let data = vec![7u8; 10_000];
        let enc = encode_snappy(&data);
        assert!(enc.len() < 1000);
        assert_eq!(decode_snappy(&enc, 10_000).unwrap(), data);
        let err = decode_snappy(&enc, 9_999).unwrap_err();
        assert!(err.contains("exceeds the limit"), "{err}");
        assert!(decode_snappy(b"\xff\xff\xff\xff\xff\xff", 1 << 20).is_err());
        assert!(decode_snappy(&enc[..enc.len() / 2], 1 << 20).is_err());
    }

    #[test]
    fn labels_are_validated_and_sorted() {
        let l = labels_from_proto([("b", "2"), ("__name__", "x"), ("a", "")]).unwrap();
        assert_eq!(l.to_string(), r#"{__name__="x", b="2"}"#);
        assert!(
            labels_from_proto([("a", "1"), ("a", "2")])
                .unwrap_err()
                .contains("duplicated")
        );
        assert!(labels_from_proto([("", "1")]).is_err());
        assert!(labels_from_proto([("a", "")]).is_err());
    }

    #[test]
    fn merge_prefers_series_labels() {
        let l = |n: &str, v: &str| prompb::Label::new(n, v);
        let got = merge_labels(
            vec![l("a", "1"), l("c", "3")],
            &[l("a", "ext"), l("b", "2"), l("d", "4")],
        );
        assert_eq!(got, vec![l("a", "1"), l("b", "2"), l("c", "3"), l("d", "4")]);
    }
}
