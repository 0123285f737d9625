//! Label sets.
//!
//! A [`Labels`] value holds every name and value of one label set in a single shared
//! allocation, sorted by name: `varint(len) name varint(len) value` repeated. That keeps memory
//! per series small (one pointer in the series entry, one allocation of roughly the label bytes
//! plus a length byte per string), cloning to a reference-count increment, and equality and
//! hashing to a pass over contiguous bytes. The encoding is unique for a given label set, so
//! byte equality is label-set equality.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use crate::names::is_valid_legacy_label_name;
use crate::quote::go_quote;

/// The reserved label that carries the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label, borrowed from a [`Labels`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

/// A sorted set of labels with unique names. Cheap to clone; compared and ordered as
/// Prometheus compares label sets (name by name, then value by value).
#[derive(Clone, Default, Eq)]
pub struct Labels {
    data: Option<Arc<[u8]>>,
}

/// Equal bytes. Copies of one label set (the scrape cache's and the head's) share their
/// allocation, so the pointers are compared first: `Arc`'s own equality does that only for
/// sized contents, not for the `[u8]` here.
impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        match (&self.data, &other.data) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a[..] == b[..],
            (a, b) => a.is_none() && b.is_none(),
        }
    }
}

/// The bytes, as equality compares them.
impl std::hash::Hash for Labels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.data.as_deref().hash(state);
    }
}

fn push_varint(buf: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

fn read_varint(buf: &[u8], pos: &mut usize) -> usize {
    let mut n = 0usize;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        n |= ((b & 0x7f) as usize) << shift;
        if b < 0x80 {
            return n;
        }
        shift += 7;
    }
}

fn read_bytes<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let len = read_varint(buf, pos);
    let bytes = &buf[*pos..*pos + len];
    *pos += len;
    bytes
}

fn read_str<'a>(buf: &'a [u8], pos: &mut usize) -> &'a str {
    as_str(read_bytes(buf, pos))
}

fn as_str(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("label bytes were copied from &str values")
}

/// The labels as raw (name, value) byte strings, for the hot paths (comparison, hashing,
/// lookup) that need no `&str` and so skip UTF-8 validation. Byte order is `str` order.
#[derive(Clone)]
struct RawIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for RawIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let name = read_bytes(self.buf, &mut self.pos);
        let value = read_bytes(self.buf, &mut self.pos);
        Some((name, value))
    }
}

/// Iterator over the labels of a [`Labels`], in name order.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Label<'a>;
    fn next(&mut self) -> Option<Label<'a>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let name = read_str(self.buf, &mut self.pos);
        let value = read_str(self.buf, &mut self.pos);
        Some(Label { name, value })
    }
}

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Labels { data: None }
    }

    /// Builds a label set from pairs in any order. When a name repeats, the last value wins;
    /// pairs with an empty value are dropped, as an empty label value means "no label" in
    /// Prometheus.
    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (N, V)>) -> Self {
        let mut b = LabelsBuilder::new();
        for (n, v) in pairs {
            b.set(n.as_ref(), v.as_ref());
        }
        b.build()
    }

    /// Builds from pairs that are expected to be sorted by name with unique names and
    /// non-empty values, as a label set's own iteration yields them (read back from disk, for
    /// instance): one allocation, no sorting. Pairs that are not are taken as
    /// [`from_pairs`](Self::from_pairs) takes them.
    pub fn from_sorted_pairs(pairs: &[(&str, &str)]) -> Self {
        if pairs.windows(2).all(|w| w[0].0 < w[1].0) && pairs.iter().all(|(_, v)| !v.is_empty()) {
            Self::from_sorted(pairs)
        } else {
            Self::from_pairs(pairs.iter().copied())
        }
    }

    /// Builds from pairs already sorted by name with unique names and non-empty values.
    fn from_sorted(pairs: &[(&str, &str)]) -> Self {
        if pairs.is_empty() {
            return Labels::empty();
        }
        let size: usize = pairs.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
        let mut buf = Vec::with_capacity(size);
        for (n, v) in pairs {
            push_varint(&mut buf, n.len());
            buf.extend_from_slice(n.as_bytes());
            push_varint(&mut buf, v.len());
            buf.extend_from_slice(v.as_bytes());
        }
        Labels {
            data: Some(Arc::from(buf)),
        }
    }

    fn bytes(&self) -> &[u8] {
        self.data.as_deref().unwrap_or(&[])
    }

    /// The labels in name order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            buf: self.bytes(),
            pos: 0,
        }
    }

    fn raw(&self) -> RawIter<'_> {
        RawIter {
            buf: self.bytes(),
            pos: 0,
        }
    }

    /// The number of labels.
    pub fn len(&self) -> usize {
        self.raw().count()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        for (n, v) in self.raw() {
            match n.cmp(name.as_bytes()) {
                Ordering::Less => continue,
                Ordering::Equal => return Some(as_str(v)),
                Ordering::Greater => return None,
            }
        }
        None
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Whether label `name` is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// A 64-bit hash of the whole label set, stable across runs and processes (xxh3).
    pub fn stable_hash(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(self.bytes())
    }

    /// A hash of only the labels named in `names` (which must be sorted), as PromQL grouping
    /// with `by`/`on` needs.
    pub fn hash_for_labels(&self, names: &[&str]) -> u64 {
        self.hash_filtered(|n| names.binary_search_by(|k| k.as_bytes().cmp(n)).is_ok())
    }

    /// A hash of all labels except those named in `names` (which must be sorted) and
    /// `__name__`, as PromQL grouping with `without`/`ignoring` needs.
    pub fn hash_without_labels(&self, names: &[&str]) -> u64 {
        self.hash_filtered(|n| n != METRIC_NAME.as_bytes() && names.binary_search_by(|k| k.as_bytes().cmp(n)).is_err())
    }

    /// Hashes the kept labels as `name 0xff value 0xff ...`, gathered into one buffer and
    /// hashed in one call (xxh3's streaming interface costs more than the copy).
    fn hash_filtered(&self, keep: impl Fn(&[u8]) -> bool) -> u64 {
        let mut stack = [0u8; 256];
        let mut heap = Vec::new();
        let mut len = 0;
        for (n, v) in self.raw().filter(|(n, _)| keep(n)) {
            for part in [n, &[0xff][..], v, &[0xff][..]] {
                if heap.is_empty() && len + part.len() <= stack.len() {
                    stack[len..len + part.len()].copy_from_slice(part);
                } else {
                    if heap.is_empty() {
                        heap.extend_from_slice(&stack[..len]);
                    }
                    heap.extend_from_slice(part);
                }
                len += part.len();
            }
        }
        if heap.is_empty() {
            xxhash_rust::xxh3::xxh3_64(&stack[..len])
        } else {
            xxhash_rust::xxh3::xxh3_64(&heap)
        }
    }

    /// A builder seeded with these labels.
    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder::from(self)
    }

    /// The labels without `__name__`.
    pub fn without_metric_name(&self) -> Labels {
        if !self.has(METRIC_NAME) {
            return self.clone();
        }
        let mut b = self.builder();
        b.del(METRIC_NAME);
        b.build()
    }

    /// Heap bytes owned by this label set (shared between clones).
    pub fn heap_bytes(&self) -> usize {
        self.data
            .as_ref()
            .map_or(0, |d| d.len() + 2 * std::mem::size_of::<usize>())
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    /// Prometheus' `labels.Compare`: label by label, name first, then value; a prefix sorts
    /// first.
    fn cmp(&self, other: &Self) -> Ordering {
        if let (Some(a), Some(b)) = (&self.data, &other.data)
            && Arc::ptr_eq(a, b)
        {
            return Ordering::Equal;
        }
        let mut a = self.raw();
        let mut b = other.raw();
        loop {
            match (a.next(), b.next()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(x), Some(y)) => {
                    let c = x.0.cmp(y.0).then_with(|| x.1.cmp(y.1));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
            }
        }
    }
}

impl fmt::Display for Labels {
    /// Prints as Prometheus' `Labels.String()`: `{a="1", b="2"}`, quoting names that are not
    /// legacy-valid.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if is_valid_legacy_label_name(l.name) {
                f.write_str(l.name)?;
            } else {
                f.write_str(&go_quote(l.name))?;
            }
            write!(f, "={}", go_quote(l.value))?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = Label<'a>;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl serde::Serialize for Labels {
    /// A JSON object in name order, as the Prometheus API returns label sets.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.len()))?;
        for l in self.iter() {
            m.serialize_entry(l.name, l.value)?;
        }
        m.end()
    }
}

impl<'de> serde::Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = <std::collections::BTreeMap<String, String>>::deserialize(d)?;
        Ok(Labels::from_pairs(map))
    }
}

/// Builds a [`Labels`] by setting and deleting labels; `build` sorts once.
#[derive(Clone, Debug, Default)]
pub struct LabelsBuilder {
    pairs: Vec<(String, String)>,
}

impl LabelsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`, replacing an earlier value; an empty value deletes the label.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        if value.is_empty() {
            return self.del(name);
        }
        match self.pairs.iter_mut().find(|(n, _)| n == name) {
            Some(p) => value.clone_into(&mut p.1),
            None => self.pairs.push((name.to_owned(), value.to_owned())),
        }
        self
    }

    /// Removes `name` if present.
    pub fn del(&mut self, name: &str) -> &mut Self {
        self.pairs.retain(|(n, _)| n != name);
        self
    }

    /// The current value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Keeps only the labels for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) -> &mut Self {
        self.pairs.retain(|(n, v)| keep(n, v));
        self
    }

    /// The current labels, in no particular order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The finished, sorted label set.
    pub fn build(&self) -> Labels {
        let mut sorted: Vec<(&str, &str)> = self.pairs().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        Labels::from_sorted(&sorted)
    }
}

impl From<&Labels> for LabelsBuilder {
    fn from(l: &Labels) -> Self {
        LabelsBuilder {
            pairs: l.iter().map(|l| (l.name.to_owned(), l.value.to_owned())).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn equality_and_hash_follow_the_bytes_not_the_allocation() {
        use std::hash::BuildHasher;
        let a = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
        let copy = a.clone();
        let separate = Labels::from_pairs([("job", "node"), ("__name__", "up")]);
        let other = Labels::from_pairs([("__name__", "up"), ("job", "other")]);
        assert_eq!(a, copy);
        assert_eq!(a, separate);
        assert_ne!(a, other);
        assert_eq!(Labels::empty(), Labels::from_pairs(Vec::<(&str, &str)>::new()));
        assert_ne!(Labels::empty(), a);
        let h = std::collections::hash_map::RandomState::new();
        assert_eq!(h.hash_one(&a), h.hash_one(&separate));
    }

    #[test]
    fn from_sorted_pairs_equals_from_pairs_sorted_or_not() {
        let sorted = [("__name__", "up"), ("instance", "a:9100"), ("job", "node")];
        assert_eq!(Labels::from_sorted_pairs(&sorted), Labels::from_pairs(sorted));
        let unsorted = [("job", "node"), ("__name__", "up"), ("job", "x"), ("empty", "")];
        assert_eq!(Labels::from_sorted_pairs(&unsorted), Labels::from_pairs(unsorted));
    }

    #[test]
    fn sorted_unique_and_printed_like_prometheus() {
        let l = Labels::from_pairs([
            ("job", "node"),
            ("__name__", "up"),
            ("instance", "a:9100"),
            ("job", "x"),
        ]);
        assert_eq!(l.to_string(), r#"{__name__="up", instance="a:9100", job="x"}"#);
        assert_eq!(l.len(), 3);
        assert_eq!(l.get("job"), Some("x"));
        assert_eq!(l.get("nope"), None);
        assert_eq!(l.metric_name(), Some("up"));
        assert_eq!(l.without_metric_name().to_string(), r#"{instance="a:9100", job="x"}"#);
        let quoted = Labels::from_pairs([("my.label", "v\"")]);
        assert_eq!(quoted.to_string(), r#"{"my.label"="v\""}"#);
    }

    #[test]
    fn empty_values_mean_absent() {
        let l = Labels::from_pairs([("a", ""), ("b", "1")]);
        assert_eq!(l.to_string(), r#"{b="1"}"#);
        assert!(Labels::from_pairs::<&str, &str>([]).is_empty());
    }

    #[test]
    fn long_strings_use_multi_byte_lengths() {
        let long = "x".repeat(1000);
        let l = Labels::from_pairs([("a", long.as_str()), ("b", "short")]);
        assert_eq!(l.get("a"), Some(long.as_str()));
        assert_eq!(l.get("b"), Some("short"));
    }

    #[test]
    fn grouping_hashes() {
        let a = Labels::from_pairs([("__name__", "x"), ("job", "j"), ("instance", "1")]);
        let b = Labels::from_pairs([("__name__", "y"), ("job", "j"), ("instance", "2")]);
        assert_eq!(a.hash_for_labels(&["job"]), b.hash_for_labels(&["job"]));
        assert_ne!(
            a.hash_for_labels(&["instance", "job"]),
            b.hash_for_labels(&["instance", "job"])
        );
        assert_eq!(
            a.hash_without_labels(&["instance"]),
            b.hash_without_labels(&["instance"])
        );
    }

    #[test]
    fn grouping_hashes_cover_exactly_the_chosen_labels() {
        fn reference(pairs: &[(&str, &str)]) -> u64 {
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            for (n, v) in pairs {
                h.update(n.as_bytes());
                h.update(&[0xff]);
                h.update(v.as_bytes());
                h.update(&[0xff]);
            }
            h.digest()
        }
        // Short sets hash from a stack buffer, long ones from the heap: same answers.
        for long in [String::from("v"), "x".repeat(300)] {
            let l = Labels::from_pairs([("__name__", "m"), ("a", "1"), ("b", long.as_str()), ("c", "3")]);
            assert_eq!(l.hash_for_labels(&["a", "b"]), reference(&[("a", "1"), ("b", &long)]));
            assert_eq!(l.hash_without_labels(&["c"]), reference(&[("a", "1"), ("b", &long)]));
            assert_eq!(l.hash_for_labels(&[]), reference(&[]));
            assert_ne!(l.hash_for_labels(&["a"]), l.hash_for_labels(&["c"]));
        }
    }

    fn arb_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::vec(("[a-z_]{1,6}", "\\PC{0,8}"), 0..8)
    }

    proptest! {
        #[test]
        fn ordering_matches_naive_model(a in arb_pairs(), b in arb_pairs()) {
            let la = Labels::from_pairs(a.clone());
            let lb = Labels::from_pairs(b.clone());
            let model = |p: Vec<(String, String)>| {
                let mut m = std::collections::BTreeMap::new();
                for (n, v) in p { if v.is_empty() { m.remove(&n); } else { m.insert(n, v); } }
                m.into_iter().collect::<Vec<_>>()
            };
            let (ma, mb) = (model(a), model(b));
            prop_assert_eq!(la.cmp(&lb), ma.cmp(&mb));
            prop_assert_eq!(la == lb, ma == mb);
            if ma == mb { prop_assert_eq!(la.stable_hash(), lb.stable_hash()); }
            let back: Vec<(String, String)> = la.iter().map(|l| (l.name.to_owned(), l.value.to_owned())).collect();
            prop_assert_eq!(back, ma);
        }
    }
}
