//! The alert as Alertmanager holds it (upstream `alert/alert.go` and prometheus/common
//! `model.Alert`), its identity ([`Fingerprint`]), validation, merging and ordering.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use watchfire_config::alertmanager::matchers::{Mode, is_valid_label_name};
use watchfire_model::Labels;

/// Go's zero `time.Time` (0001-01-01T00:00:00Z). Upstream uses it for "not set": a firing
/// alert's `endsAt` in a notification, an omitted `startsAt` in a POST.
pub const ZERO_TIME: Timestamp = Timestamp::constant(-62_135_596_800, 0);

/// Whether `t` is Go's zero time.
pub fn is_zero(t: Timestamp) -> bool {
    t == ZERO_TIME
}

/// `t + d`, saturating at the largest representable instant instead of panicking (a
/// configured duration of a hundred years must not crash the dispatcher).
pub fn add_duration(t: Timestamp, d: std::time::Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// `t - d`, saturating at the smallest representable instant.
pub fn sub_duration(t: Timestamp, d: std::time::Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_sub(d).ok())
        .unwrap_or(Timestamp::MIN)
}

/// An alert's identity: FNV-1a 64 over its labels (prometheus/common `LabelSet.Fingerprint`).
/// Printed as 16 lower-case hex digits, as in the API's `fingerprint` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(pub u64);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

const FNV_OFFSET: u64 = 14_695_981_039_346_656_037;
const FNV_PRIME: u64 = 1_099_511_628_211;
/// The byte upstream writes after every label name and value before hashing.
const SEPARATOR: u8 = 0xff;

fn fnv_add(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The fingerprint of a label set given as `(name, value)` pairs sorted by name. Pairs with an
/// empty value count (upstream hashes whatever the map holds), which matters for the
/// inhibitor's `equal` subsets.
pub fn fingerprint_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Fingerprint {
    let mut h = FNV_OFFSET;
    for (name, value) in pairs {
        h = fnv_add(h, name.as_bytes());
        h = fnv_add(h, &[SEPARATOR]);
        h = fnv_add(h, value.as_bytes());
        h = fnv_add(h, &[SEPARATOR]);
    }
    Fingerprint(h)
}

/// The fingerprint of a label set (model `LabelSet.Fingerprint`).
pub fn fingerprint(labels: &Labels) -> Fingerprint {
    fingerprint_pairs(labels.iter().map(|l| (l.name, l.value)))
}

/// The notification log's hash of an alert (notify.go `hashAlert`): xxHash64 over the same
/// `name 0xff value 0xff` bytes the fingerprint uses.
pub fn dedup_hash(labels: &Labels) -> u64 {
    let mut buf = Vec::with_capacity(64);
    for l in labels.iter() {
        buf.extend_from_slice(l.name.as_bytes());
        buf.push(SEPARATOR);
        buf.extend_from_slice(l.value.as_bytes());
        buf.push(SEPARATOR);
    }
    xxhash_rust::xxh64::xxh64(&buf, 0)
}

/// Prints a label set as prometheus/common `LabelSet.String` does: `{a="1", b="2"}`, names
/// bare, values Go-quoted. This is the form group keys are made of.
pub fn labelset_string(labels: &Labels) -> String {
    let mut out = String::from("{");
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(l.name);
        out.push('=');
        out.push_str(&watchfire_model::go_quote(l.value));
    }
    out.push('}');
    out
}

/// prometheus/common `LabelSet.Before`: shorter sets first, then name by name over the union
/// of both sets' names, then value by value.
pub fn labelset_cmp(a: &Labels, b: &Labels) -> Ordering {
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    let mut names: Vec<&str> = a.iter().map(|l| l.name).chain(b.iter().map(|l| l.name)).collect();
    names.sort_unstable();
    for name in names {
        let Some(av) = a.get(name) else {
            return Ordering::Less;
        };
        let Some(bv) = b.get(name) else {
            return Ordering::Greater;
        };
        match av.cmp(bv) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    Ordering::Equal
}

/// An alert as stored and dispatched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Identifying labels (never empty values).
    pub labels: Labels,
    /// Descriptive annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// When the alert started firing.
    pub starts_at: Timestamp,
    /// When it ends (or ended); [`ZERO_TIME`] in a notification of a firing alert.
    pub ends_at: Timestamp,
    /// A link to what generated the alert.
    #[serde(default)]
    pub generator_url: String,
    /// When Alertmanager last received it; the authoritative version stamp.
    pub updated_at: Timestamp,
    /// Whether `ends_at` is a guess from `resolve_timeout` rather than the sender's.
    #[serde(default)]
    pub timeout: bool,
}

impl Alert {
    /// The alert's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint(&self.labels)
    }

    /// The `alertname` label, or "".
    pub fn name(&self) -> &str {
        self.labels.get("alertname").unwrap_or("")
    }

    /// Whether the alert has ended at `t` (upstream `ResolvedAt`: an end is set and not after
    /// `t`).
    pub fn resolved_at(&self, t: Timestamp) -> bool {
        !is_zero(self.ends_at) && self.ends_at <= t
    }

    /// Upstream `Alert.Validate` with its messages.
    pub fn validate(&self) -> Result<(), String> {
        if is_zero(self.starts_at) {
            return Err("start time missing".into());
        }
        if !is_zero(self.ends_at) && self.ends_at < self.starts_at {
            return Err("start time must be before end time".into());
        }
        if self.labels.is_empty() {
            return Err("at least one label pair required".into());
        }
        if let Some(l) = self
            .labels
            .iter()
            .find(|l| !is_valid_label_name(Mode::Fallback, l.name))
        {
            return Err(format!("invalid label set: invalid name {:?}", l.name));
        }
        if let Some(name) = self
            .annotations
            .keys()
            .find(|n| !is_valid_label_name(Mode::Fallback, n))
        {
            return Err(format!("invalid annotations: invalid name {name:?}"));
        }
        Ok(())
    }

    /// Merges a newer report of the same alert into this one (upstream `Alert.Merge`): the
    /// younger version (by `updated_at`) provides labels, annotations and URL; the earliest
    /// start wins; of two resolved versions the later end wins; a firing younger version keeps
    /// the older end if that is later and not a timeout guess.
    pub fn merge(&self, other: &Alert) -> Alert {
        if other.updated_at < self.updated_at {
            return other.merge(self);
        }
        let mut res = other.clone();
        (res.starts_at, res.ends_at) = merged_span(&self.span(), &other.span());
        res
    }

    fn span(&self) -> Span {
        Span {
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            updated_at: self.updated_at,
            timeout: self.timeout,
        }
    }
}

/// The times [`Alert::merge`] looks at.
struct Span {
    starts_at: Timestamp,
    ends_at: Timestamp,
    updated_at: Timestamp,
    timeout: bool,
}

impl Span {
    fn resolved_at(&self, t: Timestamp) -> bool {
        !is_zero(self.ends_at) && self.ends_at <= t
    }
}

/// The start and end of the merge of `older` into `younger` (upstream `Alert.Merge`).
fn merged_span(older: &Span, younger: &Span) -> (Timestamp, Timestamp) {
    let starts_at = older.starts_at.min(younger.starts_at);
    // Upstream's `Resolved()` compares against the wall clock; the younger version was
    // received last, so its `updated_at` stands in for "now" and keeps merging pure.
    let now = younger.updated_at;
    let mut ends_at = younger.ends_at;
    if younger.resolved_at(now) {
        if older.resolved_at(now) && older.ends_at > younger.ends_at {
            ends_at = older.ends_at;
        }
    } else if older.ends_at > younger.ends_at && !older.timeout {
        ends_at = older.ends_at;
    }
    (starts_at, ends_at)
}

/// Annotations as the store holds them: every name and value in one allocation, sorted by
/// name (`varint(len) name varint(len) value` repeated, as [`Labels`] encodes labels, except
/// that empty values are kept). A `BTreeMap<String, String>` of two annotations costs a
/// 544-byte node plus four strings; this costs their bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Annotations(Box<[u8]>);

fn push_varint(buf: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

fn read_str<'a>(buf: &'a [u8], pos: &mut usize) -> &'a str {
    let mut len = 0usize;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        len |= usize::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    let s = &buf[*pos..*pos + len];
    *pos += len;
    std::str::from_utf8(s).expect("annotation bytes were copied from &str values")
}

impl Annotations {
    pub(crate) fn from_map(map: &BTreeMap<String, String>) -> Annotations {
        let mut buf = Vec::with_capacity(map.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
        for (n, v) in map {
            for s in [n, v] {
                push_varint(&mut buf, s.len());
                buf.extend_from_slice(s.as_bytes());
            }
        }
        Annotations(buf.into_boxed_slice())
    }

    /// The (name, value) pairs in name order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= self.0.len() {
                return None;
            }
            let name = read_str(&self.0, &mut pos);
            Some((name, read_str(&self.0, &mut pos)))
        })
    }

    pub(crate) fn to_map(&self) -> BTreeMap<String, String> {
        self.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect()
    }
}

impl Serialize for Annotations {
    /// A JSON object in name order, as the `BTreeMap` it stands for.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// An alert as the store and the aggregation groups hold it (one shared copy per version):
/// [`Alert`] with compact annotations. It is written to disk exactly as an [`Alert`] is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct StoredAlert {
    pub labels: Labels,
    pub annotations: Annotations,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub generator_url: Box<str>,
    pub updated_at: Timestamp,
    pub timeout: bool,
}

impl From<&Alert> for StoredAlert {
    fn from(a: &Alert) -> StoredAlert {
        StoredAlert {
            labels: a.labels.clone(),
            annotations: Annotations::from_map(&a.annotations),
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            generator_url: a.generator_url.as_str().into(),
            updated_at: a.updated_at,
            timeout: a.timeout,
        }
    }
}

impl StoredAlert {
    /// The alert's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        fingerprint(&self.labels)
    }

    /// Whether the alert has ended at `t` (see [`Alert::resolved_at`]).
    pub fn resolved_at(&self, t: Timestamp) -> bool {
        !is_zero(self.ends_at) && self.ends_at <= t
    }

    /// The alert as notifications and the public API carry it.
    pub fn to_alert(&self) -> Alert {
        Alert {
            labels: self.labels.clone(),
            annotations: self.annotations.to_map(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            generator_url: self.generator_url.to_string(),
            updated_at: self.updated_at,
            timeout: self.timeout,
        }
    }

    /// [`Alert::merge`] of the stored version with a newer report.
    pub fn merge(&self, other: StoredAlert) -> StoredAlert {
        let (older, mut res) = if other.updated_at < self.updated_at {
            (other.span(), self.clone())
        } else {
            (self.span(), other)
        };
        (res.starts_at, res.ends_at) = merged_span(&older, &res.span());
        res
    }

    fn span(&self) -> Span {
        Span {
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            updated_at: self.updated_at,
            timeout: self.timeout,
        }
    }
}

/// Upstream's alert order in notifications (`AlertSlice.Less`): by `job`, then `instance`
/// (alerts that have the label first), then by label set.
pub fn alert_order(a: &Alert, b: &Alert) -> Ordering {
    labels_order(&a.labels, &b.labels)
}

/// [`alert_order`] of two alerts given by their labels.
pub(crate) fn labels_order(a: &Labels, b: &Labels) -> Ordering {
    for key in ["job", "instance"] {
        match (a.get(key), b.get(key)) {
            (None, None) => continue,
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    labelset_cmp(a, b)
}

/// Formats a timestamp as go-openapi's `strfmt.DateTime` does: RFC 3339 with milliseconds,
/// in UTC.
pub fn format_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parses an RFC 3339 timestamp as the API accepts it. Go's zero time parses to [`ZERO_TIME`],
/// which callers treat as "not set".
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    s.parse::<Timestamp>()
        .map_err(|e| format!("parsing time {s:?} as RFC 3339: {e}"))
}

/// Serde for timestamps on disk and in the API: RFC 3339 strings.
pub(crate) mod rfc3339 {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_time(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_match_prometheus_common() {
        // Values from prometheus/common model/signature_test.go TestLabelsToSignature and
        // fingerprinting_test.go.
        assert_eq!(fingerprint(&Labels::empty()).0, 14_695_981_039_346_656_037);
        let l = Labels::from_pairs([("name", "garland, briggs"), ("fear", "love is not enough")]);
        assert_eq!(fingerprint(&l).0, 5_799_056_148_416_392_346);
    }

    #[test]
    fn stored_alerts_keep_annotations_and_the_disk_format() {
        let long = "x".repeat(300);
        let annotations: BTreeMap<String, String> = [("summary", "é \"q\"\n"), ("empty", ""), ("long", &long)]
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        let alert = Alert {
            labels: Labels::from_pairs([("alertname", "A"), ("job", "j")]),
            annotations,
            starts_at: parse_time("2026-01-01T00:00:00Z").unwrap(),
            ends_at: parse_time("2026-01-01T01:00:00.5Z").unwrap(),
            generator_url: "http://g/?a=<b>".into(),
            updated_at: parse_time("2026-01-01T00:10:00Z").unwrap(),
            timeout: true,
        };
        let stored = StoredAlert::from(&alert);
        assert_eq!(stored.to_alert(), alert);
        assert_eq!(
            serde_json::to_string(&stored).unwrap(),
            serde_json::to_string(&alert).unwrap(),
            "alerts.log records must not change"
        );
        let none = StoredAlert::from(&Alert {
            annotations: BTreeMap::new(),
            ..alert.clone()
        });
        assert_eq!(none.annotations.iter().count(), 0);
        assert!(none.to_alert().annotations.is_empty());
    }

    #[test]
    fn zero_time_is_go_zero() {
        assert_eq!(ZERO_TIME.to_string(), "0001-01-01T00:00:00Z");
        assert_eq!(format_time(ZERO_TIME), "0001-01-01T00:00:00.000Z");
        assert_eq!(parse_time("0001-01-01T00:00:00.000Z").unwrap(), ZERO_TIME);
    }
}
