//! Exposition-format parsing and writing: what a scrape target sends and what `/metrics` and
//! `/federate` print.
//!
//! This crate owns the three parsers Prometheus 3 scrapes with (Prometheus `model/textparse`):
//! the Prometheus text format 0.0.4/1.0.0 ([`PromParser`]), OpenMetrics 1.0
//! ([`OpenMetricsParser`]) and the length-delimited protobuf `MetricFamily` stream
//! ([`ProtobufParser`]), the choice between them from a `Content-Type` header ([`parser_for`]),
//! and a writer for the text format ([`TextWriter`]).
//!
//! The parsers are pull parsers: [`Parser::next`] returns one [`Entry`] at a time, borrowing
//! names and labels from the input or from a scratch buffer the parser reuses, so a scrape
//! allocates next to nothing per sample. [`Series::key`] is a stable identity for the
//! series' text, so a scrape cache can map it to a storage reference and call
//! [`Series::to_labels`] only for series it has not seen before. [`Parser::skim`] goes
//! further: it yields a sample's key, value and timestamp, and a metadata line's bytes,
//! without parsing labels or help text, which [`Parser::entry`] then parses only when asked
//! (a scrape asks for series missing from its cache and for metadata that changed).
//!
//! The crate is synchronous and depends only on `watchfire-model`; it must never depend on
//! tokio, an HTTP crate or the storage crates.

mod error;
mod lex;
mod media;
mod openmetrics;
mod promtext;
pub mod proto;
mod protobuf;
mod series;
mod writer;

pub use error::Error;
pub use media::{Format, parser_for};
pub use openmetrics::OpenMetricsParser;
pub use promtext::PromParser;
pub use protobuf::ProtobufParser;
pub use series::{Exemplar, LabelIter, LabelSlice, Series};
pub use writer::{TEXT_CONTENT_TYPE, TextWriter};

use std::fmt;

use watchfire_model::Timestamp;

/// The type a `# TYPE` line (or a protobuf `MetricFamily`) declares, with Prometheus'
/// spelling of each (`model.MetricType` upstream).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    Stateset,
    /// `untyped` in the text format, `unknown` in OpenMetrics, `UNTYPED` in protobuf, and the
    /// type of series no `# TYPE` line has covered.
    #[default]
    Unknown,
}

impl MetricType {
    /// The name Prometheus uses for this type in its metadata API.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::Stateset => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One item of an exposition, in input order.
///
/// Everything borrowed lives until the next call to [`Parser::next`].
#[derive(Clone, Debug, PartialEq)]
pub enum Entry<'e> {
    /// `# HELP name text`, with the text unescaped.
    Help { name: &'e str, help: &'e str },
    /// `# TYPE name type`.
    Type { name: &'e str, kind: MetricType },
    /// `# UNIT name unit` (OpenMetrics and protobuf only).
    Unit { name: &'e str, unit: &'e str },
    /// Any other comment line of the text format, including its `#`. Invalid UTF-8 in it is
    /// replaced by U+FFFD (upstream passes comments through unchecked).
    Comment(&'e str),
    /// One sample.
    Series(Series<'e>),
}

/// What [`Parser::skim`] found: enough for a scrape cache to tell whether it needs the whole
/// entry, which [`Parser::entry`] then gives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Skim<'a> {
    /// One sample: its [`Series::key`], value and timestamp. The text formats have not parsed
    /// its labels yet.
    Sample {
        key: &'a [u8],
        value: f64,
        timestamp: Option<Timestamp>,
    },
    /// A `# HELP`, `# TYPE` or `# UNIT` line as exposed, newline included (text formats), or
    /// `None` for protobuf metadata. A `# TYPE` line is parsed already; help text is not.
    Metadata(Option<&'a [u8]>),
    /// Any other comment of the text format.
    Comment,
}

/// Options that change what the parsers yield.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Drop OpenMetrics `<name>_created` series of counters, summaries and histograms instead
    /// of yielding them as ordinary series. Prometheus does this only with
    /// `--enable-feature=created-timestamp-zero-ingestion`; by default they are ingested.
    pub skip_om_created_series: bool,
}

/// Any of the three parsers, chosen at run time (see [`parser_for`]).
#[derive(Clone, Debug)]
pub enum Parser<'a> {
    Text(PromParser<'a>),
    OpenMetrics(OpenMetricsParser<'a>),
    Protobuf(ProtobufParser<'a>),
}

impl<'a> Parser<'a> {
    /// A parser of `format` over `body` with default options.
    pub fn new(format: Format, body: &'a [u8]) -> Self {
        Self::with_options(format, body, Options::default())
    }

    /// A parser of `format` over `body`.
    pub fn with_options(format: Format, body: &'a [u8], options: Options) -> Self {
        match format {
            Format::Text => Parser::Text(PromParser::new(body)),
            Format::OpenMetrics => Parser::OpenMetrics(OpenMetricsParser::with_options(body, options)),
            Format::Protobuf => Parser::Protobuf(ProtobufParser::new(body)),
        }
    }

    /// The next entry, `Ok(None)` at the end of a valid input. After an error the parser
    /// should not be used further: what it returns then is unspecified (but it never panics).
    #[allow(clippy::should_implement_trait)] // a lending iterator; `Iterator` cannot express it
    pub fn next(&mut self) -> Result<Option<Entry<'_>>, Error> {
        match self {
            Parser::Text(p) => p.next(),
            Parser::OpenMetrics(p) => p.next(),
            Parser::Protobuf(p) => p.next(),
        }
    }

    /// The next entry, parsed only as far as [`Skim`] says. Call [`Parser::entry`] for the
    /// whole of it. A scrape that knows a sample's key, or a metadata line's bytes, from its
    /// last scrape needs no more. Errors are those of `next`, except that labels skimmed over
    /// are checked only by `entry`.
    pub fn skim(&mut self) -> Result<Option<Skim<'_>>, Error> {
        match self {
            Parser::Text(p) => p.skim(),
            Parser::OpenMetrics(p) => p.skim(),
            Parser::Protobuf(p) => p.skim(),
        }
    }

    /// The whole entry the last `skim` found (parsing its labels or help text now).
    pub fn entry(&mut self) -> Result<Entry<'_>, Error> {
        match self {
            Parser::Text(p) => p.entry(),
            Parser::OpenMetrics(p) => p.entry(),
            Parser::Protobuf(p) => p.entry(),
        }
    }

    /// Which format this parser reads.
    pub fn format(&self) -> Format {
        match self {
            Parser::Text(_) => Format::Text,
            Parser::OpenMetrics(_) => Format::OpenMetrics,
            Parser::Protobuf(_) => Format::Protobuf,
        }
    }
}
