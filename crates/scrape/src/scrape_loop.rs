//! One target's scrape loop: timing, the scrape cache, appending one scrape in one
//! transaction, the synthetic series and staleness markers (upstream scrape/scrape.go
//! `scrapeLoop`, `scrapeCache`, `append`, `report`, `endOfRunStaleness`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, warn};
use watchfire_config::prometheus::{NameValidationScheme, RelabelConfig};
use watchfire_model::{Labels, METRIC_NAME, go_quote, stale_nan};
use watchfire_storage::{Appendable, Appender, Error as StorageError, SeriesRef};
use watchfire_textparse::{Entry, Format, Options as ParseOptions, Parser, Skim};

use crate::Clock;
use crate::metrics::{ScrapeMetrics, go_duration};
use crate::scraper::{FetchError, Scraper};
use crate::target::{Family, FamilyMetadata, Target};

/// Samples further ahead than this are out of bounds (upstream `maxAheadTime`).
const MAX_AHEAD_MS: i64 = 10 * 60 * 1000;

/// The synthetic series, in upstream's order.
const UP: &str = "up";
const REPORT_NAMES: [&str; 5] = [
    UP,
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];
const EXTRA_REPORT_NAMES: [&str; 3] = [
    "scrape_timeout_seconds",
    "scrape_sample_limit",
    "scrape_body_size_bytes",
];

/// Milliseconds since the epoch.
pub(crate) fn millis(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// Identity of an exposed series in the scrape cache: the 128-bit xxh3 hash of its text as
/// exposed ([`watchfire_textparse::Series::key`]). Upstream keys its cache by the text itself;
/// keeping only the hash saves an allocation of the text per series (about a tenth of the
/// memory a series costs while scraped). Two distinct texts of one target collide with
/// probability about n² / 2¹²⁹ (10⁻²⁷ for a million series per target), so the hash stands for
/// the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SeriesKey(u64, u64);

impl SeriesKey {
    pub(crate) fn of(exposed: &[u8]) -> Self {
        let h = xxhash_rust::xxh3::xxh3_128(exposed);
        SeriesKey((h >> 64) as u64, h as u64)
    }
}

/// Hasher of [`SeriesKey`]s, which are uniformly distributed already.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached for keys other than `SeriesKey`; keep them well mixed anyway.
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = self.0.rotate_left(29) ^ x;
    }
}

type KeyMap<V> = HashMap<SeriesKey, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// The largest page parsed and appended on the runtime's thread rather than a blocking one
/// (some 2 000 series of typical exposition text, a few milliseconds).
const INLINE_APPEND_MAX: usize = 256 << 10;

/// A cached series. Flags instead of upstream's iteration number keep it at 32 bytes, 48 with
/// its key, in a table with a slot per exposed series of every target.
struct CacheEntry {
    series_ref: SeriesRef,
    labels: Labels,
    /// Exposed in the current scrape (upstream: `lastIter` is the current iteration).
    seen: bool,
    /// Appended with staleness tracking in the current scrape (upstream `seriesCur`).
    cur: bool,
    /// Appended with staleness tracking in the previous scrape (upstream `seriesPrev`).
    prev: bool,
}

/// The cached series of a target: the entries in a list grown by an eighth, and a table of
/// their positions (4 bytes a slot) by key. A hash map of the entries themselves left a
/// 48-byte slot empty for every 0.8-1.3 series (its load is 44-87%); this costs ~56 bytes a
/// series instead of ~72 on average. Entries are visited in the order they were first
/// exposed, which is the order of the next scrape's page too.
#[derive(Default)]
struct SeriesTable {
    entries: Vec<(SeriesKey, CacheEntry)>,
    index: hashbrown::HashTable<u32>,
}

impl SeriesTable {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn values(&self) -> impl Iterator<Item = &CacheEntry> {
        self.entries.iter().map(|(_, e)| e)
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut CacheEntry> {
        self.entries.iter_mut().map(|(_, e)| e)
    }

    /// Where the entry of `key` is, for [`entry`](Self::entry) and
    /// [`entry_mut`](Self::entry_mut); valid until the table changes.
    fn position(&self, key: &SeriesKey) -> Option<u32> {
        let entries = &self.entries;
        self.index.find(key.0, |&i| entries[i as usize].0 == *key).copied()
    }

    /// [`SeriesTable::position`], trying `likely` first.
    fn position_after(&self, key: &SeriesKey, likely: u32) -> Option<u32> {
        match self.entries.get(likely as usize) {
            Some((k, _)) if k == key => Some(likely),
            _ => self.position(key),
        }
    }

    fn entry(&self, position: u32) -> &CacheEntry {
        &self.entries[position as usize].1
    }

    fn entry_mut(&mut self, position: u32) -> &mut CacheEntry {
        &mut self.entries[position as usize].1
    }

    /// The storage reference of the entry at `position`: a page's lines most likely expose
    /// the series of the entries in order.
    fn ref_at(&self, position: u32) -> Option<SeriesRef> {
        self.entries.get(position as usize).map(|(_, e)| e.series_ref)
    }

    fn get_mut(&mut self, key: &SeriesKey) -> Option<&mut CacheEntry> {
        let i = self.position(key)?;
        Some(self.entry_mut(i))
    }

    fn insert(&mut self, key: SeriesKey, entry: CacheEntry) {
        if let Some(e) = self.get_mut(&key) {
            *e = entry;
            return;
        }
        let Self { entries, index } = self;
        if entries.len() == entries.capacity() {
            entries.reserve_exact((entries.len() / 8).max(4));
        }
        let i = u32::try_from(entries.len()).expect("fewer than 2^32 series per target");
        entries.push((key, entry));
        index.insert_unique(key.0, i, |&j| entries[j as usize].0.0);
    }

    /// Keeps the entries `keep` accepts, in their order.
    fn retain(&mut self, keep: impl Fn(&CacheEntry) -> bool) {
        if self.entries.iter().all(|(_, e)| keep(e)) {
            return;
        }
        let Self { entries, index } = self;
        entries.retain(|(_, e)| keep(e));
        if entries.capacity() > entries.len() + entries.len() / 8 + 4 {
            entries.shrink_to(entries.len() + entries.len() / 16);
        }
        index.clear();
        index.shrink_to(entries.len(), |&j| entries[j as usize].0.0);
        for (i, (key, _)) in entries.iter().enumerate() {
            index.insert_unique(key.0, i as u32, |&j| entries[j as usize].0.0);
        }
    }
}

/// What the loop remembers between scrapes: exposed series to storage reference and final
/// labels, series dropped by metric relabeling, and which series the current and the previous
/// scrape appended (for staleness; flags in the entries instead of upstream's two maps of
/// reference → labels, which cost as much again as the cache).
#[derive(Default)]
pub(crate) struct Cache {
    iter: u64,
    successful_count: usize,
    /// Hashes of the metadata lines of the last text-format scrape whose metadata was
    /// applied, in page order, and the scrape (`iter`) that last exposed them.
    meta_lines: Vec<u64>,
    meta_iter: Option<u64>,
    /// The buffer a scrape hashes its metadata lines into.
    meta_scratch: Vec<u64>,
    series: SeriesTable,
    dropped: KeyMap<u64>,
    report: HashMap<&'static str, (SeriesRef, Labels)>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("iter", &self.iter)
            .field("series", &self.series.len())
            .field("prev", &self.series.values().filter(|e| e.prev).count())
            .finish()
    }
}

/// Applies a metadata entry of scrape `iter` to a target's families.
fn apply_metadata(meta: &mut FamilyMetadata, iter: u64, entry: Entry<'_>) {
    match entry {
        Entry::Type { name, kind } => meta.update(name, iter, |f| {
            (f.metric_type != kind).then(|| Family {
                name: f.name.clone(),
                metric_type: kind,
                help: f.help.clone(),
                unit: f.unit.clone(),
            })
        }),
        Entry::Help { name, help } => meta.update(name, iter, |f| {
            (*f.help != *help).then(|| Family {
                name: f.name.clone(),
                metric_type: f.metric_type,
                help: help.into(),
                unit: f.unit.clone(),
            })
        }),
        Entry::Unit { name, unit } => meta.update(name, iter, |f| {
            (*f.unit != *unit).then(|| Family {
                name: f.name.clone(),
                metric_type: f.metric_type,
                help: f.help.clone(),
                unit: unit.into(),
            })
        }),
        Entry::Comment(_) | Entry::Series(_) => {}
    }
}

impl Cache {
    /// Ends a scrape: a successful one (`flush`) forgets entries not seen in it; the current
    /// series become the previous ones (upstream `iterDone`).
    fn iter_done(&mut self, mut flush: bool, target: &Target, metrics: &ScrapeMetrics) {
        let mut meta = target.metadata.lock().unwrap_or_else(|e| e.into_inner());
        let count = self.series.len() + self.dropped.len() + meta.len();
        if flush {
            self.successful_count = count;
        } else if count > self.successful_count * 2 + 1000 {
            // Failing scrapes with changing series would grow the cache forever.
            flush = true;
            metrics.cache_flush_forced.inc();
        }
        if flush {
            let iter = self.iter;
            self.series.retain(|e| e.seen);
            self.dropped.retain(|_, i| *i == iter);
            // Metadata outlives its series by ten scrapes.
            meta.retain(|last| iter.saturating_sub(last) <= 10);
        }
        drop(meta);
        for e in self.series.values_mut() {
            e.seen = false;
            e.prev = e.cur;
            e.cur = false;
        }
        self.iter += 1;
    }

    /// Forgets what the current scrape appended (it was rolled back).
    fn clear_cur(&mut self) {
        for e in self.series.values_mut() {
            e.cur = false;
        }
    }

    /// The references and labels of the series of the previous scrape missing from the
    /// current one (upstream: `seriesPrev` entries not in `seriesCur`), each once.
    fn gone(&self) -> Vec<(SeriesRef, Labels)> {
        let mut gone: Vec<(SeriesRef, Labels)> = self
            .series
            .values()
            .filter(|e| e.prev && !e.cur)
            .map(|e| (e.series_ref, e.labels.clone()))
            .collect();
        if gone.is_empty() {
            return gone;
        }
        gone.sort_unstable_by_key(|(r, _)| r.0);
        gone.dedup_by_key(|(r, _)| *r);
        // Two exposed series can share a reference (relabeling made them equal): the
        // reference is current if either is. The few gone ones are looked up, rather than
        // every current one put in a set.
        let mut current = vec![false; gone.len()];
        for e in self.series.values().filter(|e| e.cur) {
            if let Ok(i) = gone.binary_search_by_key(&e.series_ref.0, |(r, _)| r.0) {
                current[i] = true;
            }
        }
        let mut still = current.iter();
        gone.retain(|_| !still.next().copied().unwrap_or(false));
        gone
    }
}

/// The settings of a loop that come from the job.
#[derive(Clone, Debug)]
pub(crate) struct LoopConfig {
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub metric_relabel_configs: Vec<RelabelConfig>,
    pub scheme: NameValidationScheme,
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub fallback: Option<Format>,
    pub interval: Duration,
    pub timeout: Duration,
    pub extra_metrics: bool,
}

/// Counts of one scrape.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    total: usize,
    added: usize,
    series_added: usize,
}

/// Why appending a scrape failed.
#[derive(Debug)]
enum AppendFailure {
    /// The scrape is refused (parse error, a limit); its counts are still reported.
    Scrape(String),
    /// Storage failed.
    Storage(StorageError),
}

impl std::fmt::Display for AppendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendFailure::Scrape(s) => f.write_str(s),
            AppendFailure::Storage(e) => write!(f, "{e}"),
        }
    }
}

/// Go's `%.50s`: at most 50 characters.
fn trunc50(s: &str) -> &str {
    s.char_indices().nth(50).map_or(s, |(i, _)| &s[..i])
}

/// Everything one loop needs.
pub(crate) struct ScrapeLoop {
    pub target: Arc<Target>,
    pub cfg: LoopConfig,
    pub scraper: Scraper,
    pub cache: Arc<Mutex<Cache>>,
    pub appendable: Arc<dyn Appendable>,
    pub metrics: Arc<ScrapeMetrics>,
    pub clock: Arc<dyn Clock>,
    pub offset_seed: u64,
    pub skip_offset: bool,
    pub forced_error: Mutex<Option<String>>,
    pub end_of_run_disabled: AtomicBool,
    /// The interval as the `interval` label of the interval metrics, and the histogram of
    /// that label, found once.
    pub interval_metrics: std::sync::OnceLock<(String, prometheus::Histogram)>,
}

impl std::fmt::Debug for ScrapeLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeLoop")
            .field("target", &self.target.url())
            .finish()
    }
}

impl ScrapeLoop {
    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_forced_error(&self, err: Option<String>) {
        *self.forced_error.lock().unwrap_or_else(|e| e.into_inner()) = err;
    }

    /// The labels of a scraped series after target labels and metric relabeling (upstream
    /// `mutateSampleLabels`); `None` drops the series.
    fn mutate(&self, exposed: &Labels) -> Option<Labels> {
        let target = self.target.labels();
        let mut b = exposed.builder();
        if self.cfg.honor_labels {
            for l in target {
                if !exposed.has(l.name) {
                    b.set(l.name, l.value);
                }
            }
        } else {
            let mut conflicts: Vec<(&str, &str)> = Vec::new();
            for l in target {
                if let Some(v) = exposed.get(l.name) {
                    conflicts.push((l.name, v));
                }
                b.set(l.name, l.value);
            }
            conflicts.sort_by_key(|(n, _)| n.len());
            for (name, value) in conflicts {
                let mut new_name = name.to_owned();
                loop {
                    new_name.insert_str(0, "exported_");
                    if b.get(&new_name).is_none_or(str::is_empty) {
                        b.set(&new_name, value);
                        break;
                    }
                }
            }
        }
        let labels = b.build();
        let labels = if self.cfg.metric_relabel_configs.is_empty() {
            labels
        } else {
            RelabelConfig::process_with_scheme(&labels, &self.cfg.metric_relabel_configs, self.cfg.scheme)?
        };
        (!labels.is_empty()).then_some(labels)
    }

    /// Upstream `verifyLabelLimits`.
    fn check_label_limits(&self, labels: &Labels) -> Result<(), String> {
        let c = &self.cfg;
        let metric = trunc50(labels.metric_name().unwrap_or(""));
        if c.label_limit > 0 {
            let n = labels.len() as u64;
            if n > c.label_limit {
                return Err(format!(
                    "label_limit exceeded (metric: {metric}, number of labels: {n}, limit: {})",
                    c.label_limit
                ));
            }
        }
        for l in labels {
            if c.label_name_length_limit > 0 && l.name.len() as u64 > c.label_name_length_limit {
                return Err(format!(
                    "label_name_length_limit exceeded (metric: {metric}, label name: {}, length: {}, limit: {})",
                    trunc50(l.name),
                    l.name.len(),
                    c.label_name_length_limit
                ));
            }
            if c.label_value_length_limit > 0 && l.value.len() as u64 > c.label_value_length_limit {
                return Err(format!(
                    "label_value_length_limit exceeded (metric: {metric}, label name: {}, value: {}, length: {}, limit: {})",
                    trunc50(l.name),
                    go_quote(trunc50(l.value)),
                    l.value.len(),
                    c.label_value_length_limit
                ));
            }
        }
        Ok(())
    }

    /// Brings the target's metadata up to date with the metadata lines of a text-format page
    /// that the scrape only hashed (`hashes`, in page order: as many as it read, fewer if it
    /// stopped early). When they are the lines of the last scrape, byte for byte, the
    /// families stay as they are and only count as exposed again; otherwise `parser` (a fresh
    /// parser over the page) reads that many and applies them, and their hashes are kept for
    /// the next scrape.
    fn sync_metadata(&self, cache: &mut Cache, parser: Option<Parser<'_>>, hashes: &[u64]) {
        let iter = cache.iter;
        let mut meta = self.target.metadata.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut parser) = parser.filter(|_| cache.meta_lines != hashes) else {
            if let Some(last) = cache.meta_iter {
                meta.touch(last, iter);
            }
            cache.meta_iter = Some(iter);
            return;
        };
        cache.meta_lines.clear();
        cache.meta_lines.extend_from_slice(hashes);
        cache.meta_iter = Some(iter);
        let mut lines = 0;
        while lines < hashes.len() {
            match parser.skim() {
                Ok(Some(Skim::Metadata(_))) => lines += 1,
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
            if let Ok(entry) = parser.entry() {
                apply_metadata(&mut meta, iter, entry);
            }
        }
    }

    /// Writes staleness markers for the series of the previous scrape missing from this one.
    fn update_stale_markers(&self, app: &mut dyn Appender, cache: &Cache, t: i64) -> Result<(), StorageError> {
        for (r, labels) in cache.gone() {
            match app.append(Some(r), &labels, t, stale_nan()) {
                Ok(_) | Err(StorageError::OutOfOrderSample | StorageError::DuplicateSampleForTimestamp) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// An empty scrape: staleness markers for everything of the previous scrape.
    fn append_empty(&self, app: &mut dyn Appender, cache: &mut Cache, t: i64) -> Result<(), StorageError> {
        let r = self.update_stale_markers(app, cache, t);
        cache.iter_done(false, &self.target, &self.metrics);
        r
    }

    /// Parses `body` and appends every sample to `app` (upstream `scrapeLoopAppender.append`).
    fn append_body(
        &self,
        app: &mut dyn Appender,
        cache: &mut Cache,
        body: &[u8],
        content_type: &str,
        t: i64,
        now: i64,
    ) -> (Counts, Result<(), AppendFailure>) {
        let mut counts = Counts::default();
        if body.is_empty() {
            return (counts, self.append_empty(app, cache, t).map_err(AppendFailure::Storage));
        }
        let format = match Format::from_content_type(content_type) {
            Ok(f) => f,
            Err(e) => match self.cfg.fallback {
                Some(f) => {
                    debug!(target = %self.target.url(), content_type, err = %e, "invalid content type on scrape, using fallback");
                    f
                }
                None => return (counts, Err(AppendFailure::Scrape(e.to_string()))),
            },
        };
        let mut parser = format.parser(body, ParseOptions::default());
        // A second parser for the metadata lines, should they differ from the last scrape's.
        let meta_parser = (format != Format::Protobuf).then(|| parser.clone());
        if meta_parser.is_none() {
            // Protobuf metadata is applied entry by entry; a later text page is compared
            // with nothing, and refreshes nothing the last text page exposed.
            cache.meta_lines.clear();
            cache.meta_iter = None;
        }
        let mut meta_hashes = std::mem::take(&mut cache.meta_scratch);
        meta_hashes.clear();
        let (mut limit_hit, mut limited) = (false, 0u64);
        let (mut out_of_order, mut duplicates, mut out_of_bounds) = (0usize, 0usize, 0usize);
        let iter = cache.iter;
        let mut next_position = 0;
        // Series are looked up by the key `skim` finds; only series not in the cache have
        // their labels parsed. Metadata lines are only hashed here (`sync_metadata`).
        let result: Result<(), AppendFailure> = loop {
            let (key, value, timestamp) = match parser.skim() {
                Ok(Some(Skim::Sample { key, value, timestamp })) => (SeriesKey::of(key), value, timestamp),
                Ok(Some(Skim::Metadata(Some(line)))) => {
                    let hash = xxhash_rust::xxh3::xxh3_64(line);
                    // A line unlike the last scrape's is parsed now, so that a broken one
                    // fails the scrape as a full parse would; one seen before was checked then.
                    if cache.meta_lines.get(meta_hashes.len()) != Some(&hash)
                        && let Err(e) = parser.entry()
                    {
                        break Err(AppendFailure::Scrape(e.to_string()));
                    }
                    meta_hashes.push(hash);
                    continue;
                }
                Ok(Some(Skim::Metadata(None))) => {
                    match parser.entry() {
                        Ok(entry) => {
                            let mut meta = self.target.metadata.lock().unwrap_or_else(|e| e.into_inner());
                            apply_metadata(&mut meta, iter, entry);
                        }
                        Err(e) => break Err(AppendFailure::Scrape(e.to_string())),
                    }
                    continue;
                }
                Ok(Some(Skim::Comment)) => continue,
                Ok(None) => break Ok(()),
                Err(e) => break Err(AppendFailure::Scrape(e.to_string())),
            };
            counts.total += 1;
            let parsed_ts = if self.cfg.honor_timestamps { timestamp } else { None };
            let ts = parsed_ts.unwrap_or(t);
            // Pages repeat their order: the entry after the last one found is tried first,
            // which reads the entries in order instead of the index at random. A key is
            // never both cached and dropped.
            let position = cache.series.position_after(&key, next_position);
            if position.is_none()
                && let Some(i) = cache.dropped.get_mut(&key)
            {
                *i = iter;
                continue;
            }
            // A cached series is appended with the cache's labels, borrowed: cloning them
            // would write to their shared count, a cache line the append does not need.
            let mut fresh = None;
            let (series_ref, already) = match position {
                Some(i) => {
                    next_position = i + 1;
                    // Pages repeat their order, so the lines after this one most likely
                    // expose the next entries' series: have storage load the one after next
                    // while this one is appended (and finish loading the next).
                    if let Some(ahead) = cache.series.ref_at(i + 2) {
                        app.prefetch(ahead);
                    }
                    let e = cache.series.entry_mut(i);
                    let already = e.seen;
                    e.seen = true;
                    (Some(e.series_ref), already)
                }
                None => {
                    let s = match parser.entry() {
                        Ok(Entry::Series(s)) => s,
                        Ok(other) => unreachable!("a skimmed sample completes to a series, not {other:?}"),
                        Err(e) => break Err(AppendFailure::Scrape(e.to_string())),
                    };
                    if let Some(name) = s.duplicate_label() {
                        break Err(AppendFailure::Scrape(format!(
                            "label name {} is not unique: invalid sample",
                            go_quote(name)
                        )));
                    }
                    let Some(labels) = self.mutate(&s.to_labels()) else {
                        cache.dropped.insert(key, iter);
                        continue;
                    };
                    if !labels.has(METRIC_NAME) {
                        break Err(AppendFailure::Scrape("missing metric name (__name__ label)".into()));
                    }
                    let valid = labels.iter().all(|l| {
                        self.cfg.scheme.is_valid_label_name(l.name)
                            && (l.name != METRIC_NAME || self.cfg.scheme.is_valid_metric_name(l.value))
                    });
                    if !valid {
                        break Err(AppendFailure::Scrape(format!(
                            "invalid metric name or label names: {labels}"
                        )));
                    }
                    if let Err(e) = self.check_label_limits(&labels) {
                        self.metrics.exceeded_label_limits.inc();
                        break Err(AppendFailure::Scrape(e));
                    }
                    fresh = Some(labels);
                    (None, false)
                }
            };
            let labels = match position {
                Some(i) => &cache.series.entry(i).labels,
                None => fresh.as_ref().expect("an uncached series has fresh labels"),
            };
            let appended = if already && parsed_ts.is_none() {
                Err(StorageError::DuplicateSampleForTimestamp)
            } else if ts > now + MAX_AHEAD_MS {
                Err(StorageError::OutOfBounds)
            } else if self.cfg.sample_limit > 0 && {
                limited += 1;
                limited > self.cfg.sample_limit
            } {
                limit_hit = true;
                Ok(None)
            } else {
                app.append(series_ref, labels, ts, value).map(Some)
            };
            let new_ref = match appended {
                Ok(Some(r)) => Some(r),
                Ok(None) => None,
                Err(StorageError::OutOfOrderSample) => {
                    out_of_order += 1;
                    self.metrics.sample_out_of_order.inc();
                    None
                }
                Err(StorageError::DuplicateSampleForTimestamp) => {
                    duplicates += 1;
                    self.metrics.sample_duplicate.inc();
                    None
                }
                Err(StorageError::OutOfBounds | StorageError::TooOldSample) => {
                    out_of_bounds += 1;
                    self.metrics.sample_out_of_bounds.inc();
                    None
                }
                Err(e) => break Err(AppendFailure::Storage(e)),
            };
            let tracks_staleness = parsed_ts.is_none() || self.cfg.track_timestamps_staleness;
            if let Some(r) = new_ref {
                match (series_ref, position) {
                    (Some(old), Some(i)) if tracks_staleness && old.0 != 0 => cache.series.entry_mut(i).cur = true,
                    (Some(_), _) => {}
                    (None, _) => {
                        let labels = fresh.take().expect("an uncached series has fresh labels");
                        cache.series.insert(
                            key,
                            CacheEntry {
                                series_ref: r,
                                seen: true,
                                labels,
                                cur: tracks_staleness && r.0 != 0,
                                prev: false,
                            },
                        );
                        if !limit_hit {
                            counts.series_added += 1;
                        }
                    }
                }
            }
            counts.added += 1;
        };
        if meta_parser.is_some() {
            self.sync_metadata(cache, meta_parser, &meta_hashes);
        }
        cache.meta_scratch = meta_hashes;
        let mut result = result;
        if limit_hit {
            self.metrics.exceeded_sample_limit.inc();
            if result.is_ok() {
                result = Err(AppendFailure::Scrape("sample limit exceeded".into()));
            }
        }
        let url = self.target.url();
        if out_of_order > 0 {
            warn!(target = %url, num_dropped = out_of_order, "error on ingesting out-of-order samples");
        }
        if duplicates > 0 {
            warn!(target = %url, num_dropped = duplicates, "error on ingesting samples with different value but same timestamp");
        }
        if out_of_bounds > 0 {
            warn!(target = %url, num_dropped = out_of_bounds, "error on ingesting samples that are too old or are too far into the future");
        }
        if result.is_ok() {
            result = self.update_stale_markers(app, cache, t).map_err(AppendFailure::Storage);
        }
        if result.is_ok() {
            cache.iter_done(true, &self.target, &self.metrics);
        }
        (counts, result)
    }

    /// Appends one synthetic series sample; out-of-order and duplicate rejections are
    /// expected when a target comes back and are ignored (upstream `addReportSample`).
    fn add_report_sample(
        &self,
        app: &mut dyn Appender,
        cache: &mut Cache,
        name: &'static str,
        t: i64,
        v: f64,
    ) -> Result<(), StorageError> {
        let (series_ref, labels) = match cache.report.get(name) {
            Some((r, l)) => (Some(*r), l.clone()),
            None => {
                let mut b = self.target.labels().builder();
                b.set(METRIC_NAME, name);
                (None, b.build())
            }
        };
        match app.append(series_ref, &labels, t, v) {
            Ok(r) => {
                cache.report.insert(name, (r, labels));
                Ok(())
            }
            Err(StorageError::OutOfOrderSample | StorageError::DuplicateSampleForTimestamp) => Ok(()),
            Err(e) => Err(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn report(
        &self,
        app: &mut dyn Appender,
        cache: &mut Cache,
        t: i64,
        duration: Duration,
        counts: Counts,
        bytes: i64,
        up: bool,
    ) -> Result<(), StorageError> {
        let values = [
            if up { 1.0 } else { 0.0 },
            duration.as_secs_f64(),
            counts.total as f64,
            counts.added as f64,
            counts.series_added as f64,
        ];
        for (name, v) in REPORT_NAMES.into_iter().zip(values) {
            self.add_report_sample(app, cache, name, t, v)?;
        }
        if self.cfg.extra_metrics {
            let extra = [
                self.cfg.timeout.as_secs_f64(),
                self.cfg.sample_limit as f64,
                bytes as f64,
            ];
            for (name, v) in EXTRA_REPORT_NAMES.into_iter().zip(extra) {
                self.add_report_sample(app, cache, name, t, v)?;
            }
        }
        Ok(())
    }

    /// Staleness markers for the synthetic series (upstream `reportStale`).
    fn report_stale(&self, app: &mut dyn Appender, cache: &mut Cache, t: i64) -> Result<(), StorageError> {
        let extra: &[&'static str] = if self.cfg.extra_metrics {
            &EXTRA_REPORT_NAMES
        } else {
            &[]
        };
        for name in REPORT_NAMES.iter().chain(extra) {
            self.add_report_sample(app, cache, name, t, stale_nan())?;
        }
        Ok(())
    }

    /// One scrape and its report, in one transaction when the scrape is good (upstream
    /// `scrapeAndReport`). Returns when the scrape started.
    pub async fn scrape_and_report(self: &Arc<Self>, last: Option<Instant>, append_time: SystemTime) -> Instant {
        let start = Instant::now();
        if let Some(last) = last {
            let (label, histogram) = self.interval_metrics.get_or_init(|| {
                let label = go_duration(self.cfg.interval);
                let histogram = self.metrics.interval_length_histogram.with_label_values(&[&label]);
                (label, histogram)
            });
            let secs = start.duration_since(last).as_secs_f64();
            self.metrics.interval_length.observe(&[label], secs);
            histogram.observe(secs);
        }
        let forced = self.forced_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let fetched: Result<(Vec<u8>, String), String> = match forced {
            Some(e) => Err(e),
            None => self.scraper.fetch().await.map_err(|e| {
                if e == FetchError::BodySizeLimit {
                    self.metrics.exceeded_body_size_limit.inc();
                }
                e.to_string()
            }),
        };
        let body_limit_hit = matches!(&fetched, Err(e) if e == "body size limit exceeded");
        let now = millis(self.clock.now());
        // A page of ordinary size is parsed and appended right here: that takes the target's
        // cache and the store's in-memory series only briefly. It is committed here too,
        // unless the commit would wait (for another commit, the head's truncation, a WAL
        // segment cut); then a blocking thread commits it. Handing every scrape to a
        // blocking thread and back cost two thread wake-ups, about 8% of the scrape CPU.
        // Large pages go to a blocking thread whole, so as not to hold the runtime's worker.
        if fetched
            .as_ref()
            .map_or(true, |(body, _)| body.len() <= INLINE_APPEND_MAX)
        {
            let Some(mut app) = self.append_scrape(fetched, body_limit_hit, append_time, now, start) else {
                return start;
            };
            let res = match app.try_commit() {
                Some(res) => res,
                None => match tokio::task::spawn_blocking(move || app.commit()).await {
                    Ok(res) => res,
                    Err(e) => {
                        warn!(target = %self.target.url(), err = %e, "scrape commit task failed");
                        return start;
                    }
                },
            };
            self.committed(res);
            return start;
        }
        let this = self.clone();
        let task = tokio::task::spawn_blocking(move || {
            if let Some(mut app) = this.append_scrape(fetched, body_limit_hit, append_time, now, start) {
                this.committed(app.commit());
            }
        });
        if let Err(e) = task.await {
            warn!(target = %self.target.url(), err = %e, "scrape append task failed");
        }
        start
    }

    fn committed(&self, res: Result<(), StorageError>) {
        if let Err(e) = res {
            warn!(target = %self.target.url(), err = %e, "scrape commit failed");
        }
    }

    /// The storage side of one scrape, up to the commit: the appender to commit, or `None`
    /// when the scrape's samples were rolled back.
    fn append_scrape(
        &self,
        fetched: Result<(Vec<u8>, String), String>,
        body_limit_hit: bool,
        append_time: SystemTime,
        now: i64,
        start: Instant,
    ) -> Option<Box<dyn Appender>> {
        let t = millis(append_time);
        let mut cache = self.lock_cache();
        let mut app = self.appendable.appender();
        let mut counts = Counts::default();
        let mut bytes: i64 = 0;
        let scrape_err: Option<String> = match fetched {
            Err(e) => {
                debug!(target = %self.target.url(), err = %e, "scrape failed");
                if body_limit_hit {
                    bytes = -1;
                }
                if let Err(e) = self.append_empty(app.as_mut(), &mut cache, t) {
                    let _ = app.rollback();
                    app = self.appendable.appender();
                    warn!(target = %self.target.url(), err = %e, "append failed");
                }
                Some(e)
            }
            Ok((body, content_type)) => {
                bytes = body.len() as i64;
                let (c, result) = self.append_body(app.as_mut(), &mut cache, &body, &content_type, t, now);
                crate::scraper::recycle(body);
                counts = c;
                match result {
                    Ok(()) => None,
                    Err(e) => {
                        let _ = app.rollback();
                        app = self.appendable.appender();
                        debug!(target = %self.target.url(), err = %e, "append failed");
                        // Nothing of the refused scrape is stored, so every series of the
                        // previous scrape gets a staleness marker.
                        cache.clear_cur();
                        if let Err(e) = self.append_empty(app.as_mut(), &mut cache, t) {
                            let _ = app.rollback();
                            app = self.appendable.appender();
                            warn!(target = %self.target.url(), err = %e, "append failed");
                        }
                        Some(e.to_string())
                    }
                }
            }
        };
        let duration = start.elapsed();
        self.target.report(append_time, duration, scrape_err.clone());
        let up = scrape_err.is_none();
        match self.report(app.as_mut(), &mut cache, t, duration, counts, bytes, up) {
            Ok(()) => Some(app),
            Err(e) => {
                let _ = app.rollback();
                warn!(target = %self.target.url(), err = %e, "appending scrape report failed");
                None
            }
        }
    }

    /// Staleness markers for every series and the synthetic ones, after the target went away.
    fn append_end_of_run(&self, stale_time: SystemTime) {
        let t = millis(stale_time);
        let mut cache = self.lock_cache();
        let mut app = self.appendable.appender();
        if let Err(e) = self.append_empty(app.as_mut(), &mut cache, t) {
            let _ = app.rollback();
            app = self.appendable.appender();
            warn!(target = %self.target.url(), err = %e, "stale append failed");
        }
        match self.report_stale(app.as_mut(), &mut cache, t) {
            Ok(()) => {
                if let Err(e) = app.commit() {
                    warn!(target = %self.target.url(), err = %e, "stale commit failed");
                }
            }
            Err(e) => {
                let _ = app.rollback();
                warn!(target = %self.target.url(), err = %e, "stale report failed");
            }
        }
    }

    /// Runs until `stop` turns true. `shutdown` turning true means the whole pool or server
    /// is going away: then no end-of-run staleness markers are written (upstream writes none
    /// on shutdown, expecting a restart where it left off). `stopped` is signalled when
    /// scraping has ended, before end-of-run staleness.
    pub async fn run(
        self: Arc<Self>,
        mut stop: watch::Receiver<bool>,
        mut shutdown: watch::Receiver<bool>,
        stopped: oneshot::Sender<()>,
    ) {
        let interval = self.cfg.interval.max(Duration::from_millis(1));
        let offset = if self.skip_offset {
            Duration::ZERO
        } else {
            crate::target::offset(self.target.hash(), self.offset_seed, interval, self.clock.now())
        };
        tokio::select! {
            () = tokio::time::sleep(offset) => {}
            _ = stop.wait_for(|s| *s) => {
                let _ = stopped.send(());
                return;
            }
        }
        let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let tolerance = (interval / 100).min(Duration::from_millis(2));
        let mut aligned = self.clock.now();
        let mut last = None;
        loop {
            if *stop.borrow() {
                break;
            }
            // Snap the timestamp to the ideal tick when within tolerance, so timestamps
            // compress well (upstream AlignScrapeTimestamps).
            let mut scrape_time = self.clock.now();
            while scrape_time.duration_since(aligned).unwrap_or_default() >= interval {
                aligned += interval;
            }
            if scrape_time.duration_since(aligned).unwrap_or_default() <= tolerance {
                scrape_time = aligned;
            }
            last = Some(self.scrape_and_report(last, scrape_time).await);
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = ticker.tick() => {}
            }
        }
        let _ = stopped.send(());
        if last.is_none() || *shutdown.borrow() {
            return;
        }
        // Wait for when the next scrape would have been and record its time, then one more
        // interval and 10% for a recreated target to scrape first; its newer samples make
        // these markers out of order, so they are dropped (upstream `endOfRunStaleness`).
        let stale_time = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = ticker.tick() => self.clock.now(),
        };
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = ticker.tick() => {}
        }
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            () = tokio::time::sleep(interval / 10) => {}
        }
        if self.end_of_run_disabled.load(Ordering::Relaxed) {
            return;
        }
        let this = self.clone();
        let _ = tokio::task::spawn_blocking(move || this.append_end_of_run(stale_time)).await;
    }
}

/// A running loop.
#[derive(Debug)]
pub(crate) struct LoopHandle {
    pub inner: Arc<ScrapeLoop>,
    stop: watch::Sender<bool>,
    stopped: Option<oneshot::Receiver<()>>,
}

impl LoopHandle {
    /// Starts `inner` on the runtime.
    pub fn start(inner: Arc<ScrapeLoop>, shutdown: watch::Receiver<bool>) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let (stopped_tx, stopped) = oneshot::channel();
        tokio::spawn(inner.clone().run(stop_rx, shutdown, stopped_tx));
        LoopHandle {
            inner,
            stop,
            stopped: Some(stopped),
        }
    }

    /// Stops scraping and waits until the loop has finished its current scrape.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(rx) = self.stopped.take() {
            let _ = rx.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(r: u64, name: &str, prev: bool, cur: bool) -> CacheEntry {
        CacheEntry {
            series_ref: SeriesRef(r),
            seen: false,
            labels: Labels::from_pairs([(METRIC_NAME, name)]),
            cur,
            prev,
        }
    }

    fn gone(entries: Vec<(&str, CacheEntry)>) -> Vec<u64> {
        let mut cache = Cache::default();
        for (text, e) in entries {
            cache.series.insert(SeriesKey::of(text.as_bytes()), e);
        }
        cache.gone().into_iter().map(|(r, _)| r.0).collect()
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn cache_slots_stay_small() {
        // One slot per exposed series of every target.
        assert_eq!(std::mem::size_of::<(SeriesKey, CacheEntry)>(), 48);
    }

    #[test]
    fn series_key_tells_texts_apart() {
        assert_eq!(SeriesKey::of(b"a{x=\"1\"}"), SeriesKey::of(b"a{x=\"1\"}"));
        assert_ne!(SeriesKey::of(b"a{x=\"1\"}"), SeriesKey::of(b"a{x=\"2\"}"));
        assert_ne!(SeriesKey::of(b""), SeriesKey::of(b"a"));
    }

    #[test]
    fn gone_lists_previous_series_not_current() {
        assert_eq!(
            gone(vec![
                ("a", entry(1, "a", true, false)),
                ("b", entry(2, "b", true, true)),
                ("c", entry(3, "c", false, true)),
                ("d", entry(4, "d", false, false)),
            ]),
            vec![1]
        );
        assert!(gone(vec![]).is_empty());
    }

    #[test]
    fn gone_treats_a_shared_reference_as_one_series() {
        // Two exposed texts relabeled into one series: current if either is current, and
        // marked stale once when neither is.
        assert!(
            gone(vec![
                ("x{a=\"1\"}", entry(7, "x", true, false)),
                ("x{a=\"2\"}", entry(7, "x", true, true)),
            ])
            .is_empty()
        );
        assert_eq!(
            gone(vec![
                ("x{a=\"1\"}", entry(7, "x", true, false)),
                ("x{a=\"2\"}", entry(7, "x", true, false)),
                ("y", entry(3, "y", true, false)),
            ]),
            vec![3, 7]
        );
    }
}
