//! Storage traits only: the contract between the engines that hold samples (the TSDB head and
//! blocks, later remote storage) and the code that writes or reads them (scrape, rules, remote
//! write, PromQL, the HTTP API).
//!
//! This crate holds no engine. It owns [`Appender`] (buffered writes made visible by
//! `commit`), [`Queryable`]/[`Querier`] (reads over a time range), [`Series`] with its
//! seekable [`SampleIterator`], the storage [`Error`] enum named after upstream's
//! `storage/interface.go` errors, and the [`TsdbStatus`] statistics served by
//! `/api/v1/status/tsdb`. It depends only on `watchfire-model`; it must never depend on an
//! engine crate, tokio or an HTTP crate. Everything here is synchronous.
//!
//! Two small concrete helpers, [`VecSeries`] and [`VecSampleIterator`], adapt in-memory sample
//! vectors to the traits for tests and for engines that materialise results.

use std::fmt;
use std::sync::Arc;

use watchfire_model::{Labels, Matcher, Sample, Timestamp};

/// A reference to a series inside one storage engine, returned by [`Appender::append`] so later
/// appends can skip the label lookup. References are only meaningful to the engine that issued
/// them and only for that process's lifetime; an engine that does not know a reference falls
/// back to the labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SeriesRef(pub u64);

impl fmt::Display for SeriesRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Storage errors. The display strings of the sample rejections are upstream's, because scrape
/// and remote-write code, logs and dashboards match on them.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The requested item does not exist (`storage.ErrNotFound`).
    #[error("not found")]
    NotFound,
    /// The sample is older than the newest sample of its series (`storage.ErrOutOfOrderSample`).
    #[error("out of order sample")]
    OutOfOrderSample,
    /// The sample is older than the oldest time the head accepts (`storage.ErrOutOfBounds`).
    #[error("out of bounds")]
    OutOfBounds,
    /// With an out-of-order window, the sample is older than the window allows
    /// (`storage.ErrTooOldSample`).
    #[error("too old sample")]
    TooOldSample,
    /// A sample at the timestamp of the newest sample of its series with a different value
    /// (`storage.ErrDuplicateSampleForTimestamp`). The same value at the same timestamp is
    /// accepted and ignored.
    #[error("duplicate sample for timestamp")]
    DuplicateSampleForTimestamp,
    /// The sample cannot be stored at all, for example because its label set is empty
    /// (`tsdb.ErrInvalidSample`).
    #[error("invalid sample: {0}")]
    InvalidSample(String),
    /// The storage has been closed.
    #[error("storage is closed")]
    Closed,
    /// An engine failure (I/O, corruption); the engine's own error is the source.
    #[error(transparent)]
    Engine(Arc<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Wraps an engine error.
    pub fn engine(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Engine(Arc::new(e))
    }

    /// Whether this error rejects one sample (which the caller counts and skips) rather than
    /// failing the whole append or query.
    pub fn is_sample_rejection(&self) -> bool {
        matches!(
            self,
            Error::OutOfOrderSample | Error::OutOfBounds | Error::TooOldSample | Error::DuplicateSampleForTimestamp
        )
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The metric type recorded in metadata, numbered as in upstream's WAL metadata records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MetricType {
    #[default]
    Unknown = 0,
    Counter = 1,
    Gauge = 2,
    Histogram = 3,
    GaugeHistogram = 4,
    Summary = 5,
    Info = 6,
    StateSet = 7,
}

impl MetricType {
    /// The type for its WAL code; unknown codes map to `Unknown`.
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => MetricType::Counter,
            2 => MetricType::Gauge,
            3 => MetricType::Histogram,
            4 => MetricType::GaugeHistogram,
            5 => MetricType::Summary,
            6 => MetricType::Info,
            7 => MetricType::StateSet,
            _ => MetricType::Unknown,
        }
    }
}

/// Metric metadata from `# TYPE`, `# UNIT` and `# HELP` lines.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Metadata {
    pub metric_type: MetricType,
    pub unit: String,
    pub help: String,
}

/// Buffers samples and makes them visible atomically on [`commit`](Appender::commit).
///
/// Nothing appended is visible to queriers before `commit` returns `Ok`; once it has, the
/// samples are durable in the engine's write-ahead log as documented by that engine. After
/// `commit` or `rollback` the appender is empty and may be reused. Dropping an appender with
/// pending samples rolls them back.
pub trait Appender: Send {
    /// Adds a sample for the series `labels`. `series_ref`, when given, is a reference an
    /// earlier `append` of this engine returned for the same labels and lets the engine skip
    /// the lookup; a stale or unknown reference falls back to `labels`. Returns the series'
    /// reference. A sample rejection ([`Error::is_sample_rejection`]) leaves the other
    /// buffered samples in place.
    fn append(&mut self, series_ref: Option<SeriesRef>, labels: &Labels, t: Timestamp, v: f64) -> Result<SeriesRef>;

    /// A hint that a sample for `series_ref` is about to be appended (after the next one or
    /// two): an engine may start loading the series into the CPU's cache, and what the
    /// append after that needs of the series hinted before. It changes nothing; the default
    /// does nothing.
    fn prefetch(&mut self, series_ref: SeriesRef) {
        let _ = series_ref;
    }

    /// [`append`](Self::append) with the sample's start timestamp `st` (upstream's "created
    /// timestamp", `AppenderV2.Append`'s `st`): when the counter or delta the sample measures
    /// started accumulating, in milliseconds. 0 means unknown, as upstream, and is what
    /// `append` stores. Queries use it to detect counter resets ([`SampleIterator::at_st`]).
    ///
    /// The default forwards to `append` and drops `st`: engines (and wrappers) that keep start
    /// timestamps override it.
    fn append_st(
        &mut self,
        series_ref: Option<SeriesRef>,
        labels: &Labels,
        st: Timestamp,
        t: Timestamp,
        v: f64,
    ) -> Result<SeriesRef> {
        let _ = st;
        self.append(series_ref, labels, t, v)
    }

    /// Records metadata for the series, written with the next commit. Engines that do not keep
    /// metadata accept and ignore it.
    fn update_metadata(
        &mut self,
        series_ref: Option<SeriesRef>,
        labels: &Labels,
        meta: &Metadata,
    ) -> Result<SeriesRef> {
        let _ = (labels, meta);
        Ok(series_ref.unwrap_or_default())
    }

    /// Makes every buffered sample durable and visible.
    fn commit(&mut self) -> Result<()>;

    /// [`commit`](Self::commit), if that needs no wait for another writer or for the
    /// store's maintenance; `None` when it would wait, with nothing done and the samples still
    /// buffered. A caller on an async runtime's thread commits on a blocking thread then. The
    /// default never tries.
    fn try_commit(&mut self) -> Option<Result<()>> {
        None
    }

    /// Discards every buffered sample.
    fn rollback(&mut self) -> Result<()>;
}

/// Hints a querier may use to read less; it must return correct results when it ignores them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SelectHints {
    /// Start of the queried range in milliseconds (inclusive).
    pub start: Timestamp,
    /// End of the queried range in milliseconds (inclusive).
    pub end: Timestamp,
    /// Query step in milliseconds; 0 for instant queries.
    pub step: i64,
    /// The function wrapped around the selector, if any (`rate`, `series` for metadata calls).
    pub func: Option<String>,
    /// The aggregation's grouping labels.
    pub grouping: Vec<String>,
    /// Whether `grouping` is a `by` (true) or `without` (false) list.
    pub by: bool,
    /// The range of a range selector in milliseconds; 0 for instant selectors.
    pub range: i64,
    /// At most this many series are needed; 0 means no limit.
    pub limit: usize,
}

/// A seekable cursor over the samples of one series, in increasing timestamp order.
///
/// It never moves backwards, so a range query decodes each series once: the evaluator seeks to
/// each step's window start and keeps the window's samples in its own buffer. Before the first
/// successful `next` or `seek` the cursor is not positioned and [`at`](Self::at) is meaningless.
pub trait SampleIterator: Send {
    /// Advances to the next sample. Returns false when there is none or on an error (see
    /// [`err`](Self::err)); after that it keeps returning false.
    fn next(&mut self) -> bool;

    /// Advances to the first sample with a timestamp at or after `t` and returns whether there
    /// is one. If the cursor already sits on such a sample it does not move (seeking backwards
    /// is a no-op).
    fn seek(&mut self, t: Timestamp) -> bool;

    /// The sample under the cursor.
    fn at(&self) -> Sample;

    /// The error that ended iteration early, if any (for example a corrupt chunk).
    fn err(&self) -> Option<&Error>;

    /// Calls `f` with the sample under the cursor and each following one while their
    /// timestamps are at most `t`, moving past them. Returns true when the cursor then sits
    /// on the first sample after `t`, false when the samples ran out or an error ended them
    /// (see [`err`](Self::err)). The cursor must be positioned (after a successful `next` or
    /// `seek`). The same as calling `at` and `next` in a loop ([`for_each_until_by_next`]);
    /// engines override it to walk their samples without a call per sample.
    fn for_each_until(&mut self, t: Timestamp, f: &mut dyn FnMut(Sample)) -> bool {
        for_each_until_by_next(self, t, f)
    }

    /// The start timestamp of the sample under the cursor (see [`Appender::append_st`]); 0
    /// when it is unknown, which is every sample of an engine that keeps none (the default).
    fn at_st(&self) -> Timestamp {
        0
    }

    /// [`for_each_until`](Self::for_each_until) that also passes each sample's start
    /// timestamp ([`at_st`](Self::at_st)). Only readers that use start timestamps call it, so
    /// `for_each_until` stays the plain fast path.
    fn for_each_until_st(&mut self, t: Timestamp, f: &mut dyn FnMut(Sample, Timestamp)) -> bool {
        for_each_until_by_next_st(self, t, f)
    }
}

/// [`SampleIterator::for_each_until_st`] by `at`, `at_st` and `next`.
pub fn for_each_until_by_next_st<I: SampleIterator + ?Sized>(
    it: &mut I,
    t: Timestamp,
    f: &mut dyn FnMut(Sample, Timestamp),
) -> bool {
    loop {
        let s = it.at();
        if s.t > t {
            return true;
        }
        f(s, it.at_st());
        if !it.next() {
            return false;
        }
    }
}

/// [`SampleIterator::for_each_until`] by `at` and `next`.
pub fn for_each_until_by_next<I: SampleIterator + ?Sized>(it: &mut I, t: Timestamp, f: &mut dyn FnMut(Sample)) -> bool {
    loop {
        let s = it.at();
        if s.t > t {
            return true;
        }
        f(s);
        if !it.next() {
            return false;
        }
    }
}

/// One series: its labels and its samples.
pub trait Series: Send {
    /// The series' labels.
    fn labels(&self) -> &Labels;

    /// A fresh cursor over the series' samples, independent of earlier cursors. It owns what it
    /// needs, so it may outlive the borrow of `self`.
    fn iterator(&self) -> Box<dyn SampleIterator>;
}

/// The result of [`Querier::select`]: series one by one, or an error that ends the set.
pub type SeriesSet = Box<dyn Iterator<Item = Result<Box<dyn Series>>> + Send>;

/// Reads the series of one time range `[mint, maxt]` (both inclusive, milliseconds).
pub trait Querier: Send + Sync {
    /// The series matching every matcher, with their samples in the querier's range. With
    /// `sorted`, series come in label order ([`Labels`]' `Ord`). At least one matcher should
    /// not match the empty string; engines may return an error or every series otherwise.
    fn select(&self, sorted: bool, hints: Option<&SelectHints>, matchers: &[Matcher]) -> SeriesSet;

    /// Sorted unique label names of the series matching `matchers` (all series when empty).
    fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>>;

    /// Sorted unique values of label `name` over the series matching `matchers`.
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>>;
}

/// Something queriers can be opened on.
pub trait Queryable: Send + Sync {
    /// A querier over `[mint, maxt]`. It sees the data committed when it was created or later,
    /// never a partly applied commit.
    fn querier(&self, mint: Timestamp, maxt: Timestamp) -> Result<Box<dyn Querier>>;
}

/// Something appenders can be opened on.
pub trait Appendable: Send + Sync {
    /// A new, empty appender.
    fn appender(&self) -> Box<dyn Appender>;
}

/// A complete storage: writable, readable, with statistics.
pub trait Storage: Queryable + Appendable {
    /// The oldest timestamp the storage holds data for, or `i64::MAX` when it is empty.
    fn start_time(&self) -> Timestamp;

    /// Head statistics for `/api/v1/status/tsdb`, with at most `limit` entries per top list.
    fn tsdb_status(&self, limit: usize) -> Result<TsdbStatus>;
}

/// `headStats` of `/api/v1/status/tsdb`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeadStats {
    pub num_series: u64,
    pub num_label_pairs: u64,
    pub chunk_count: u64,
    /// Oldest sample timestamp in the head; `i64::MAX` when empty, as upstream.
    pub min_time: Timestamp,
    /// Newest sample timestamp in the head; `i64::MIN` when empty, as upstream.
    pub max_time: Timestamp,
}

/// One entry of a top list: a name (metric, label, or `name=value` pair) and a count.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NameCount {
    pub name: String,
    pub value: u64,
}

/// The body of `/api/v1/status/tsdb`; each list is sorted by count, largest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TsdbStatus {
    pub head_stats: HeadStats,
    pub series_count_by_metric_name: Vec<NameCount>,
    pub label_value_count_by_label_name: Vec<NameCount>,
    pub memory_in_bytes_by_label_name: Vec<NameCount>,
    pub series_count_by_label_value_pair: Vec<NameCount>,
}

/// A [`SampleIterator`] over samples held in a shared vector.
#[derive(Clone, Debug)]
pub struct VecSampleIterator {
    samples: Arc<[Sample]>,
    /// Start timestamps by position, if the samples have any.
    sts: Option<Arc<[Timestamp]>>,
    /// Index of the current sample plus one; 0 before the first `next`/`seek`.
    pos: usize,
}

impl VecSampleIterator {
    /// A cursor over `samples`, which must be sorted by timestamp.
    pub fn new(samples: Arc<[Sample]>) -> Self {
        VecSampleIterator {
            samples,
            sts: None,
            pos: 0,
        }
    }

    /// A cursor over `samples` whose start timestamps are `sts`, by position (missing ones
    /// are unknown).
    pub fn with_start_timestamps(samples: Arc<[Sample]>, sts: Arc<[Timestamp]>) -> Self {
        VecSampleIterator {
            samples,
            sts: Some(sts),
            pos: 0,
        }
    }
}

impl SampleIterator for VecSampleIterator {
    fn next(&mut self) -> bool {
        if self.pos < self.samples.len() {
            self.pos += 1;
            true
        } else {
            self.pos = self.samples.len() + 1;
            false
        }
    }

    fn seek(&mut self, t: Timestamp) -> bool {
        if self.pos > self.samples.len() {
            return false;
        }
        if self.pos > 0 && self.samples[self.pos - 1].t >= t {
            return true;
        }
        let from = self.pos.saturating_sub(1);
        let i = from + self.samples[from..].partition_point(|s| s.t < t);
        self.pos = i + 1;
        i < self.samples.len()
    }

    fn at(&self) -> Sample {
        match self.pos.checked_sub(1).and_then(|i| self.samples.get(i)) {
            Some(s) => *s,
            None => Sample::new(i64::MIN, f64::NAN),
        }
    }

    fn err(&self) -> Option<&Error> {
        None
    }

    fn at_st(&self) -> Timestamp {
        match (&self.sts, self.pos.checked_sub(1)) {
            (Some(sts), Some(i)) => sts.get(i).copied().unwrap_or(0),
            _ => 0,
        }
    }
}

/// A [`Series`] whose samples are held in memory.
#[derive(Clone, Debug)]
pub struct VecSeries {
    labels: Labels,
    samples: Arc<[Sample]>,
    sts: Option<Arc<[Timestamp]>>,
}

impl VecSeries {
    /// A series with `labels` and `samples` (sorted by timestamp).
    pub fn new(labels: Labels, samples: impl Into<Arc<[Sample]>>) -> Self {
        VecSeries {
            labels,
            samples: samples.into(),
            sts: None,
        }
    }

    /// A series whose samples have start timestamps: `sts[i]` is the start of `samples[i]`
    /// (0, or missing, for unknown).
    pub fn with_start_timestamps(
        labels: Labels,
        samples: impl Into<Arc<[Sample]>>,
        sts: impl Into<Arc<[Timestamp]>>,
    ) -> Self {
        VecSeries {
            labels,
            samples: samples.into(),
            sts: Some(sts.into()),
        }
    }

    /// The start timestamps, if the series has any.
    pub fn start_timestamps(&self) -> Option<&[Timestamp]> {
        self.sts.as_deref()
    }

    /// The samples.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }
}

impl Series for VecSeries {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn iterator(&self) -> Box<dyn SampleIterator> {
        Box::new(VecSampleIterator {
            samples: self.samples.clone(),
            sts: self.sts.clone(),
            pos: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> VecSeries {
        VecSeries::new(
            Labels::from_pairs([("__name__", "up")]),
            vec![Sample::new(10, 1.0), Sample::new(20, 2.0), Sample::new(30, 3.0)],
        )
    }

    #[test]
    fn vec_iterator_seeks_forward_only() {
        let mut it = series().iterator();
        assert!(it.seek(15));
        assert_eq!(it.at(), Sample::new(20, 2.0));
        // Seeking backwards keeps the position.
        assert!(it.seek(5));
        assert_eq!(it.at().t, 20);
        assert!(it.seek(20));
        assert_eq!(it.at().t, 20);
        assert!(it.next());
        assert_eq!(it.at().t, 30);
        assert!(!it.seek(31));
        assert!(!it.next());
        assert!(!it.seek(0));
    }

    #[test]
    fn vec_iterator_next_walks_everything() {
        let mut it = series().iterator();
        let mut got = Vec::new();
        while it.next() {
            got.push(it.at().t);
        }
        assert_eq!(got, [10, 20, 30]);
        assert!(!it.next());
        assert!(it.err().is_none());
    }

    #[test]
    fn start_timestamps_follow_the_cursor_and_default_to_unknown() {
        let samples = vec![Sample::new(10, 1.0), Sample::new(20, 2.0), Sample::new(30, 3.0)];
        let s = VecSeries::with_start_timestamps(Labels::from_pairs([("__name__", "c")]), samples, vec![5, 0]);
        let mut it = s.iterator();
        assert_eq!(it.at_st(), 0, "not positioned");
        assert!(it.seek(20));
        assert_eq!(it.at_st(), 0);
        let mut got = Vec::new();
        let mut it = s.iterator();
        assert!(it.next());
        assert!(!it.for_each_until_st(100, &mut |s, st| got.push((s.t, st))));
        assert_eq!(got, [(10, 5), (20, 0), (30, 0)]);
        // Without start timestamps every sample's is unknown.
        let mut it = series().iterator();
        assert!(it.next());
        assert_eq!(it.at_st(), 0);
    }

    #[test]
    fn rejections_print_like_upstream() {
        assert_eq!(Error::OutOfOrderSample.to_string(), "out of order sample");
        assert_eq!(
            Error::DuplicateSampleForTimestamp.to_string(),
            "duplicate sample for timestamp"
        );
        assert!(Error::OutOfBounds.is_sample_rejection());
        assert!(!Error::Closed.is_sample_rejection());
        let e = Error::engine(std::io::Error::other("disk full"));
        assert_eq!(e.to_string(), "disk full");
    }

    #[test]
    fn status_serializes_with_api_field_names() {
        let s = TsdbStatus {
            head_stats: HeadStats {
                num_series: 2,
                min_time: 1,
                max_time: 5,
                ..Default::default()
            },
            series_count_by_metric_name: vec![NameCount {
                name: "up".into(),
                value: 2,
            }],
            ..Default::default()
        };
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(j["headStats"]["numSeries"], 2);
        assert_eq!(j["headStats"]["minTime"], 1);
        assert_eq!(j["seriesCountByMetricName"][0]["name"], "up");
        assert!(j["seriesCountByLabelValuePair"].is_array());
    }
}
