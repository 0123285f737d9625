//! The head's inverted index: for each label pair, the sorted list of series references that
//! carry it, and the set operations queries combine them with (upstream `tsdb/index/postings.go`
//! `MemPostings`, `Intersect`, `Merge`, `Without`).

use std::collections::HashMap;
use std::sync::RwLock;

use watchfire_model::{Labels, MatchType, Matcher};

/// Label name → label value → sorted series references.
type PostingsMap = HashMap<Box<str>, HashMap<Box<str>, List>>;

/// A sorted postings list: 4 bytes a reference while every reference fits (each series is on
/// one list per label plus the all-series list, so this is ~20 bytes a series), 8 from the
/// first that does not.
#[derive(Debug)]
enum List {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

impl Default for List {
    fn default() -> Self {
        List::Narrow(Vec::new())
    }
}

impl List {
    fn len(&self) -> usize {
        match self {
            List::Narrow(l) => l.len(),
            List::Wide(l) => l.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&mut self, r: u64) {
        match self {
            List::Narrow(l) => match u32::try_from(r) {
                Ok(r) => insert_sorted(l, r),
                Err(_) => {
                    let mut wide: Vec<u64> = Vec::with_capacity(l.len() + l.len() / 8 + 4);
                    wide.extend(l.iter().map(|&x| u64::from(x)));
                    insert_sorted(&mut wide, r);
                    *self = List::Wide(wide);
                }
            },
            List::Wide(l) => insert_sorted(l, r),
        }
    }

    fn remove(&mut self, r: u64) {
        match self {
            List::Narrow(l) => {
                if let Ok(r) = u32::try_from(r)
                    && let Ok(i) = l.binary_search(&r)
                {
                    l.remove(i);
                }
            }
            List::Wide(l) => {
                if let Ok(i) = l.binary_search(&r) {
                    l.remove(i);
                }
            }
        }
    }

    fn to_vec(&self) -> Vec<u64> {
        match self {
            List::Narrow(l) => l.iter().map(|&x| u64::from(x)).collect(),
            List::Wide(l) => l.clone(),
        }
    }
}

/// Postings lists keyed by label name, then value. A special entry under the empty name holds
/// every series (upstream's `AllPostingsKey`).
#[derive(Debug, Default)]
pub struct MemPostings {
    m: RwLock<PostingsMap>,
}

fn insert_sorted<T: Copy + Ord>(list: &mut Vec<T>, r: T) {
    // Lists only grow by one reference per new series, and every series is on several lists
    // (one per label, and the all-series list): growing by an eighth instead of doubling
    // leaves little capacity unused, for a few more copies while series are created.
    if list.len() == list.capacity() {
        list.reserve_exact((list.len() / 8).max(4));
    }
    // References are handed out in increasing order, so this is almost always a push; a
    // racing series creation can land one slot early.
    match list.last() {
        Some(&last) if last > r => {
            let i = list.partition_point(|&x| x < r);
            if list.get(i) != Some(&r) {
                list.insert(i, r);
            }
        }
        Some(&last) if last == r => {}
        _ => list.push(r),
    }
}

impl MemPostings {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, PostingsMap> {
        self.m.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds series `r` with `labels`.
    pub fn add(&self, r: u64, labels: &Labels) {
        let mut m = self.m.write().unwrap_or_else(|e| e.into_inner());
        let mut put = |n: &str, v: &str| {
            let values = match m.get_mut(n) {
                Some(values) => values,
                None => m.entry(n.into()).or_default(),
            };
            let list = match values.get_mut(v) {
                Some(list) => list,
                None => values.entry(v.into()).or_default(),
            };
            list.insert(r);
        };
        put("", "");
        for l in labels.iter() {
            put(l.name, l.value);
        }
    }

    /// Adds many series at once: for each label pair (the empty name and value for the
    /// all-series list), the references carrying it, ascending. Loading a head snapshot does
    /// this instead of [`add`](Self::add) per series: one map lookup per pair instead of one
    /// per label of every series.
    pub fn add_bulk<'a>(&self, lists: impl IntoIterator<Item = (&'a str, &'a str, Vec<u64>)>) {
        let mut m = self.m.write().unwrap_or_else(|e| e.into_inner());
        for (n, v, refs) in lists {
            let values = match m.get_mut(n) {
                Some(values) => values,
                None => m.entry(n.into()).or_default(),
            };
            match values.get_mut(v) {
                Some(list) => {
                    for r in refs {
                        list.insert(r);
                    }
                }
                None => {
                    let list = match refs.iter().map(|&r| u32::try_from(r)).collect::<Result<Vec<u32>, _>>() {
                        Ok(narrow) => List::Narrow(narrow),
                        Err(_) => List::Wide(refs),
                    };
                    values.insert(v.into(), list);
                }
            }
        }
    }

    /// Removes series `r` with `labels`; lists, and names, left empty are dropped.
    pub fn delete(&self, r: u64, labels: &Labels) {
        let mut m = self.m.write().unwrap_or_else(|e| e.into_inner());
        let mut drop_one = |n: &str, v: &str| {
            let Some(values) = m.get_mut(n) else { return };
            if let Some(list) = values.get_mut(v) {
                list.remove(r);
                if list.is_empty() {
                    values.remove(v);
                }
            }
            if values.is_empty() {
                m.remove(n);
            }
        };
        drop_one("", "");
        for l in labels.iter() {
            drop_one(l.name, l.value);
        }
    }

    /// Every series reference, sorted.
    pub fn all(&self) -> Vec<u64> {
        self.get("", "")
    }

    /// The series with label `name` = `value`, sorted.
    pub fn get(&self, name: &str, value: &str) -> Vec<u64> {
        self.read()
            .get(name)
            .and_then(|vs| vs.get(value))
            .map(List::to_vec)
            .unwrap_or_default()
    }

    /// The union of the postings of every value of `name` for which `keep` holds.
    pub fn union_where(&self, name: &str, keep: impl Fn(&str) -> bool) -> Vec<u64> {
        let m = self.read();
        let Some(values) = m.get(name) else { return Vec::new() };
        let wide: Vec<Vec<u64>>;
        let lists: Vec<&[u64]> = if values.values().all(|l| matches!(l, List::Wide(_))) {
            values
                .iter()
                .filter(|(v, _)| keep(v))
                .filter_map(|(_, l)| match l {
                    List::Wide(l) => Some(l.as_slice()),
                    List::Narrow(_) => None,
                })
                .collect()
        } else {
            wide = values
                .iter()
                .filter(|(v, _)| keep(v))
                .map(|(_, l)| l.to_vec())
                .collect();
            wide.iter().map(Vec::as_slice).collect()
        };
        union(&lists)
    }

    /// Sorted label names (without the all-postings key).
    pub fn label_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .read()
            .keys()
            .filter(|n| !n.is_empty())
            .map(|n| n.to_string())
            .collect();
        names.sort_unstable();
        names
    }

    /// Sorted values of label `name`.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        let mut vals: Vec<String> = self
            .read()
            .get(name)
            .map(|vs| vs.keys().map(|v| v.to_string()).collect())
            .unwrap_or_default();
        vals.sort_unstable();
        vals
    }

    /// Calls `f(name, value, series_count)` for every label pair.
    pub fn for_each_pair(&self, mut f: impl FnMut(&str, &str, usize)) {
        for (n, vs) in self.read().iter().filter(|(n, _)| !n.is_empty()) {
            for (v, l) in vs {
                f(n, v, l.len());
            }
        }
    }

    /// The sorted series matching every matcher, as upstream `PostingsForMatchers`: matchers
    /// that reject the empty string select series; matchers that accept it (`a!="x"`,
    /// `a=~".*"`, `a=""`) remove the series whose value they reject; with no selecting matcher
    /// the start set is every series.
    pub fn postings_for_matchers(&self, matchers: &[Matcher]) -> Vec<u64> {
        let r: Result<Vec<u64>, std::convert::Infallible> = postings_for_matchers_with(
            matchers,
            |n, v| Ok(self.get(n, v)),
            |n, keep| Ok(self.union_where(n, keep)),
            || Ok(self.all()),
        );
        r.unwrap_or_else(|e| match e {})
    }
}

/// `PostingsForMatchers` over any index: `get(name, value)` is one postings list,
/// `union_where(name, keep)` the union of the lists of the values of `name` that `keep`
/// accepts, `all()` every series. See [`MemPostings::postings_for_matchers`].
pub(crate) fn postings_for_matchers_with<E>(
    matchers: &[Matcher],
    get: impl Fn(&str, &str) -> Result<Vec<u64>, E>,
    union_where: impl Fn(&str, &dyn Fn(&str) -> bool) -> Result<Vec<u64>, E>,
    all: impl Fn() -> Result<Vec<u64>, E>,
) -> Result<Vec<u64>, E> {
    let mut positive: Vec<Vec<u64>> = Vec::new();
    let mut negative: Vec<Vec<u64>> = Vec::new();
    for m in matchers {
        if m.matches_empty() {
            // Series without the label match; remove those whose value fails.
            let list = match m.kind {
                MatchType::NotEqual => get(&m.name, &m.value)?,
                _ => union_where(&m.name, &|v| !m.matches(v))?,
            };
            negative.push(list);
        } else {
            let list = match m.kind {
                MatchType::Equal => get(&m.name, &m.value)?,
                _ => union_where(&m.name, &|v| m.matches(v))?,
            };
            if list.is_empty() {
                return Ok(Vec::new());
            }
            positive.push(list);
        }
    }
    let base = if positive.is_empty() {
        all()?
    } else {
        let refs: Vec<&[u64]> = positive.iter().map(Vec::as_slice).collect();
        intersect(&refs)
    };
    if negative.is_empty() {
        return Ok(base);
    }
    let refs: Vec<&[u64]> = negative.iter().map(Vec::as_slice).collect();
    Ok(without(&base, &union(&refs)))
}

/// Elements present in every list. Lists are sorted and free of duplicates.
pub fn intersect(lists: &[&[u64]]) -> Vec<u64> {
    let mut sorted: Vec<&[u64]> = lists.to_vec();
    sorted.sort_unstable_by_key(|l| l.len());
    let Some((first, rest)) = sorted.split_first() else {
        return Vec::new();
    };
    let mut out: Vec<u64> = first.to_vec();
    for l in rest {
        out = intersect_two(&out, l);
        if out.is_empty() {
            break;
        }
    }
    out
}

/// Intersection of a short list with a longer one: galloping search through the longer list
/// keeps `rate({job="x"})`-style intersections proportional to the short side.
fn intersect_two(short: &[u64], long: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(short.len().min(long.len()));
    let mut lo = 0;
    for &x in short {
        // Gallop to a window that contains x, then binary-search it.
        let mut step = 1;
        let mut hi = lo;
        while hi < long.len() && long[hi] < x {
            lo = hi;
            hi += step;
            step *= 2;
        }
        let hi = hi.min(long.len());
        let i = lo + long[lo..hi].partition_point(|&y| y < x);
        if i < long.len() && long[i] == x {
            out.push(x);
            lo = i + 1;
        } else {
            lo = i;
        }
        if lo >= long.len() {
            break;
        }
    }
    out
}

/// Elements present in any list, sorted and deduplicated.
pub fn union(lists: &[&[u64]]) -> Vec<u64> {
    match lists {
        [] => Vec::new(),
        [one] => one.to_vec(),
        _ => {
            let total: usize = lists.iter().map(|l| l.len()).sum();
            let lo = lists.iter().filter_map(|l| l.first()).min().copied();
            let hi = lists.iter().filter_map(|l| l.last()).max().copied();
            let (Some(lo), Some(hi)) = (lo, hi) else {
                return Vec::new();
            };
            // References are dense (handed out in increasing order), so a bitmap over their
            // span is usually far smaller than the lists: set a bit per element and read the
            // bits back in order, instead of sorting the concatenation.
            let words = ((hi - lo) / 64 + 1) as usize;
            if words <= total {
                let mut bits = vec![0u64; words];
                for l in lists {
                    for &x in *l {
                        let d = x - lo;
                        bits[(d / 64) as usize] |= 1 << (d % 64);
                    }
                }
                let mut out: Vec<u64> = Vec::with_capacity(total);
                for (w, &word) in bits.iter().enumerate() {
                    let mut b = word;
                    while b != 0 {
                        out.push(lo + w as u64 * 64 + u64::from(b.trailing_zeros()));
                        b &= b - 1;
                    }
                }
                return out;
            }
            let mut out: Vec<u64> = Vec::with_capacity(total);
            for l in lists {
                out.extend_from_slice(l);
            }
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

/// Elements of `a` not in `b`; both sorted.
pub fn without(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j < b.len() && b[j] == x {
            continue;
        }
        out.push(x);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn set() -> impl Strategy<Value = BTreeSet<u64>> {
        prop_oneof![
            proptest::collection::btree_set(0u64..64, 0..40),
            proptest::collection::btree_set(0u64..5000, 0..400),
        ]
    }

    proptest! {
        #[test]
        fn set_operations_match_a_naive_model(sets in proptest::collection::vec(set(), 0..5)) {
            let lists: Vec<Vec<u64>> = sets.iter().map(|s| s.iter().copied().collect()).collect();
            let refs: Vec<&[u64]> = lists.iter().map(Vec::as_slice).collect();
            let naive_union: BTreeSet<u64> = sets.iter().flatten().copied().collect();
            prop_assert_eq!(union(&refs), naive_union.iter().copied().collect::<Vec<_>>());
            let naive_inter: Vec<u64> = match sets.split_first() {
                None => Vec::new(),
                Some((f, rest)) => f.iter().copied().filter(|x| rest.iter().all(|s| s.contains(x))).collect(),
            };
            prop_assert_eq!(intersect(&refs), naive_inter);
            if let [a, b, ..] = &sets[..] {
                let naive: Vec<u64> = a.difference(b).copied().collect();
                prop_assert_eq!(without(&lists[0], &lists[1]), naive);
            }
        }

        #[test]
        fn matchers_select_like_a_scan(
            series in proptest::collection::vec((0u8..3, 0u8..3, proptest::option::of(0u8..3)), 1..30),
            kind in 0u8..4, value in 0u8..4, second in proptest::option::of(0u8..3),
        ) {
            let idx = MemPostings::new();
            let mut all = Vec::new();
            for (i, (a, b, c)) in series.iter().enumerate() {
                let mut pairs = vec![("a", a.to_string()), ("b", b.to_string())];
                if let Some(c) = c { pairs.push(("c", c.to_string())); }
                let l = Labels::from_pairs(pairs);
                idx.add(i as u64 + 1, &l);
                all.push((i as u64 + 1, l));
            }
            let kind = [MatchType::Equal, MatchType::NotEqual, MatchType::Regex, MatchType::NotRegex][kind as usize];
            let v = if value == 3 { String::new() } else { value.to_string() };
            let v = if matches!(kind, MatchType::Regex | MatchType::NotRegex) { format!("{v}|x") } else { v };
            let mut ms = vec![Matcher::new(kind, "c", v).unwrap()];
            if let Some(s) = second { ms.push(Matcher::new(MatchType::Equal, "a", s.to_string()).unwrap()); }
            let want: Vec<u64> = all.iter()
                .filter(|(_, l)| ms.iter().all(|m| m.matches(l.get(&m.name).unwrap_or(""))))
                .map(|(r, _)| *r).collect();
            prop_assert_eq!(idx.postings_for_matchers(&ms), want);
        }
    }

    #[test]
    fn out_of_order_insert_keeps_lists_sorted() {
        let idx = MemPostings::new();
        let l = Labels::from_pairs([("a", "1")]);
        for r in [1, 5, 3, 5, 4] {
            idx.add(r, &l);
        }
        assert_eq!(idx.get("a", "1"), vec![1, 3, 4, 5]);
        assert_eq!(idx.label_names(), vec!["a"]);
        assert_eq!(idx.label_values("a"), vec!["1"]);
    }

    #[test]
    fn lists_grow_by_an_eighth() {
        let mut list = Vec::new();
        for r in 0..10_000u64 {
            insert_sorted(&mut list, r);
            assert!(
                list.capacity() - list.len() <= (list.len() / 8).max(4),
                "{} {}",
                list.len(),
                list.capacity()
            );
        }
        assert!(list.iter().copied().eq(0..10_000));
    }
}
