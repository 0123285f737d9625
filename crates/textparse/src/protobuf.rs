//! The protobuf exposition format: a stream of varint-length-delimited
//! `io.prometheus.client.MetricFamily` messages, presented as the same entries the text
//! parsers yield (Prometheus' `model/textparse/protobufparse.go`).
//!
//! Each family yields `Help` (even when empty), `Unit` (when set), `Type`, then its series.
//! Summaries become `<name>_count`, `<name>_sum` and one series per quantile; histograms
//! become `<name>_count`, `<name>_sum` and cumulative `<name>_bucket` series up to the first
//! `+Inf` bucket, with a `+Inf` bucket made from the count when the message has none.
//!
//! Native histograms are not ingested: their schema, zero bucket, spans and deltas are decoded
//! and ignored, and the classic part (count, sum, classic buckets) is parsed as for any
//! histogram. That is what Prometheus does with `scrape_native_histograms: false` (its
//! `IgnoreNativeHistograms` parser option), so a native-only histogram yields `_count`, `_sum`
//! and a lone `+Inf` bucket. Start timestamps are not reported.

use std::sync::LazyLock;

use prost::Message;

use crate::error::Error;
use crate::lex::{canonical_nan, push_om_float};
use crate::proto::{self, MetricFamily};
use crate::series::{Scratch, Span};
use crate::{Entry, Exemplar, MetricType, Series, Skim};

/// Separates the parts of a [`Series::key`] (`model.SeparatorByte` upstream); it cannot occur
/// in UTF-8 text.
const SEPARATOR: u8 = 0xff;

/// What a histogram metric without its `histogram` message reads as (Go's nil-safe getters).
static EMPTY_HISTOGRAM: LazyLock<proto::Histogram> = LazyLock::new(proto::Histogram::default);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Decode the next non-empty family and yield its help.
    Family,
    /// Yield the unit (when set), then the type.
    Unit,
    Type,
    /// Yield field `field` of metric `metric` of the current family.
    Series {
        metric: usize,
        field: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Running,
    Done,
    Failed(Error),
}

#[derive(Debug, Clone, Copy)]
enum Found {
    Help,
    Unit,
    Type(MetricType),
    Series {
        value: f64,
        timestamp: Option<i64>,
        exemplar: Option<(f64, Option<i64>)>,
    },
}

/// Pull parser for the delimited protobuf format.
#[derive(Clone, Debug)]
pub struct ProtobufParser<'a> {
    input: &'a [u8],
    /// Where the next family's length prefix starts.
    pos: usize,
    /// Index and offset of the current family, for messages.
    family_index: usize,
    family_offset: usize,
    family: MetricFamily,
    kind: MetricType,
    step: Step,
    scratch: Scratch,
    key: Vec<u8>,
    state: State,
    /// What the last `next` or `skim` found.
    last: Option<Found>,
}

impl<'a> ProtobufParser<'a> {
    /// A parser over `input`.
    pub fn new(input: &'a [u8]) -> Self {
        ProtobufParser {
            input,
            pos: 0,
            family_index: 0,
            family_offset: 0,
            family: MetricFamily::default(),
            kind: MetricType::Unknown,
            step: Step::Family,
            scratch: Scratch::default(),
            key: Vec::new(),
            state: State::Running,
            last: None,
        }
    }

    /// The next entry, or `Ok(None)` at the end of the input. After an error every further
    /// call returns the same error.
    #[allow(clippy::should_implement_trait)] // a lending iterator; `Iterator` cannot express it
    pub fn next(&mut self) -> Result<Option<Entry<'_>>, Error> {
        match &self.state {
            State::Running => {}
            State::Done => return Ok(None),
            State::Failed(e) => return Err(e.clone()),
        }
        let found = match self.advance() {
            Ok(Some(found)) => found,
            Ok(None) => {
                self.state = State::Done;
                return Ok(None);
            }
            Err(e) => {
                self.state = State::Failed(e.clone());
                return Err(e);
            }
        };
        self.last = Some(found);
        Ok(Some(self.entry_of(found)))
    }

    /// `next`, seen as a [`Skim`]: protobuf entries are decoded whole.
    pub fn skim(&mut self) -> Result<Option<Skim<'_>>, Error> {
        if self.next()?.is_none() {
            return Ok(None);
        }
        Ok(Some(match self.last {
            Some(Found::Series { value, timestamp, .. }) => Skim::Sample {
                key: &self.key,
                value,
                timestamp,
            },
            _ => Skim::Metadata(None),
        }))
    }

    /// The entry the last `next` or `skim` found.
    pub fn entry(&mut self) -> Result<Entry<'_>, Error> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        match self.last {
            Some(found) => Ok(self.entry_of(found)),
            None => Err(self.framing_error("no entry to complete".to_owned())),
        }
    }

    fn entry_of(&self, found: Found) -> Entry<'_> {
        let name = self.family.name.as_str();
        let s = &self.scratch;
        match found {
            Found::Help => Entry::Help {
                name,
                help: &self.family.help,
            },
            Found::Unit => Entry::Unit {
                name,
                unit: &self.family.unit,
            },
            Found::Type(kind) => Entry::Type { name, kind },
            Found::Series {
                value,
                timestamp,
                exemplar,
            } => Entry::Series(Series {
                name: s.name(),
                labels: s.labels(),
                value,
                timestamp,
                exemplar: exemplar.map(|(value, timestamp)| Exemplar {
                    labels: s.exemplar_labels(),
                    value,
                    timestamp,
                }),
                key: &self.key,
            }),
        }
    }

    /// An error in the current family, named when its name is known.
    fn error(&self, message: String) -> Error {
        Error::Protobuf {
            family: self.family_index,
            offset: self.family_offset,
            name: self.family.name.clone(),
            message,
        }
    }

    /// An error in a family that could not be decoded.
    fn framing_error(&self, message: String) -> Error {
        Error::Protobuf {
            family: self.family_index,
            offset: self.family_offset,
            name: String::new(),
            message,
        }
    }

    fn advance(&mut self) -> Result<Option<Found>, Error> {
        loop {
            match self.step {
                Step::Family => {
                    if !self.decode_family()? {
                        return Ok(None);
                    }
                    if self.family.metric.is_empty() {
                        continue;
                    }
                    self.step = Step::Unit;
                    return Ok(Some(Found::Help));
                }
                Step::Unit => {
                    self.step = Step::Type;
                    if !self.family.unit.is_empty() {
                        return Ok(Some(Found::Unit));
                    }
                }
                Step::Type => {
                    self.step = Step::Series { metric: 0, field: 0 };
                    return Ok(Some(Found::Type(self.kind)));
                }
                Step::Series { metric, field } => {
                    if metric >= self.family.metric.len() {
                        self.step = Step::Family;
                        continue;
                    }
                    if field == 0 {
                        self.check_labels(metric)?;
                    }
                    let (found, last) = self.series(metric, field);
                    self.step = if last {
                        Step::Series {
                            metric: metric + 1,
                            field: 0,
                        }
                    } else {
                        Step::Series {
                            metric,
                            field: field + 1,
                        }
                    };
                    return Ok(Some(found));
                }
            }
        }
    }

    /// Decodes the family at `pos`; false at the end of the input.
    fn decode_family(&mut self) -> Result<bool, Error> {
        let rest = &self.input[self.pos..];
        if rest.is_empty() {
            return Ok(false);
        }
        self.family_index += usize::from(self.pos > 0);
        self.family_offset = self.pos;
        self.family.clear();
        // Upstream refuses length prefixes longer than five bytes (`binary.MaxVarintLen32`).
        let mut len: u64 = 0;
        let mut prefix = 0;
        loop {
            let Some(&b) = rest.get(prefix).filter(|_| prefix < 5) else {
                return Err(self.framing_error("invalid varint length prefix".to_owned()));
            };
            len |= u64::from(b & 0x7f) << (7 * prefix);
            prefix += 1;
            if b < 0x80 {
                break;
            }
        }
        let total = (prefix as u64).saturating_add(len);
        if total > rest.len() as u64 {
            return Err(self.framing_error(format!(
                "insufficient length of buffer, expected at least {total} bytes, got {} bytes",
                rest.len()
            )));
        }
        let body = &rest[prefix..total as usize];
        if let Err(e) = self.family.merge(body) {
            return Err(self.framing_error(format!("decoding MetricFamily: {e}")));
        }
        self.pos += total as usize;

        if self.family.name.is_empty() {
            return Err(self.error("invalid metric name: \"\"".to_owned()));
        }
        self.kind = match proto::MetricType::try_from(self.family.r#type) {
            Ok(proto::MetricType::Counter) => MetricType::Counter,
            Ok(proto::MetricType::Gauge) => MetricType::Gauge,
            Ok(proto::MetricType::Summary) => MetricType::Summary,
            Ok(proto::MetricType::Untyped) => MetricType::Unknown,
            Ok(proto::MetricType::Histogram) => MetricType::Histogram,
            Ok(proto::MetricType::GaugeHistogram) => MetricType::GaugeHistogram,
            Err(_) => {
                return Err(self.error(format!(
                    "unknown metric type for metric {:?}: {}",
                    self.family.name, self.family.r#type
                )));
            }
        };
        Ok(true)
    }

    fn check_labels(&self, metric: usize) -> Result<(), Error> {
        if self.family.metric[metric].label.iter().any(|l| l.name.is_empty()) {
            return Err(self.error(format!("metric #{metric}: invalid label name: \"\"")));
        }
        Ok(())
    }

    /// Builds field `field` of metric `metric` into the scratch buffer and key; returns it and
    /// whether it is the metric's last field.
    fn series(&mut self, metric: usize, field: usize) -> (Found, bool) {
        let m = &self.family.metric[metric];
        let name = &self.family.name;
        let s = &mut self.scratch;
        s.clear();
        let mut exemplar = None;
        let mut magic: Option<(&str, f64)> = None;
        let (suffix, value, last) = match self.kind {
            MetricType::Counter => {
                let c = m.counter.as_ref();
                exemplar = c.and_then(|c| c.exemplar.as_ref());
                ("", c.map_or(0.0, |c| c.value), true)
            }
            MetricType::Gauge => ("", m.gauge.map_or(0.0, |g| g.value), true),
            MetricType::Summary => {
                let default = proto::Summary::default();
                let sm = m.summary.as_ref().unwrap_or(&default);
                match field {
                    0 => ("_count", sm.sample_count as f64, false),
                    1 => ("_sum", sm.sample_sum, sm.quantile.is_empty()),
                    _ => {
                        let q = sm.quantile.get(field - 2).copied().unwrap_or_default();
                        magic = Some(("quantile", q.quantile));
                        ("", q.value, field - 2 + 1 >= sm.quantile.len())
                    }
                }
            }
            MetricType::Histogram | MetricType::GaugeHistogram => {
                let h = m.histogram.as_ref().unwrap_or(&EMPTY_HISTOGRAM);
                let count = if h.sample_count_float != 0.0 {
                    h.sample_count_float
                } else {
                    h.sample_count as f64
                };
                match field {
                    0 => ("_count", count, false),
                    1 => ("_sum", h.sample_sum, false),
                    _ => match h.bucket.get(field - 2) {
                        Some(b) => {
                            let v = if b.cumulative_count_float != 0.0 {
                                b.cumulative_count_float
                            } else {
                                b.cumulative_count as f64
                            };
                            exemplar = b.exemplar.as_ref();
                            magic = Some(("le", b.upper_bound));
                            ("_bucket", v, b.upper_bound == f64::INFINITY)
                        }
                        None => {
                            magic = Some(("le", f64::INFINITY));
                            ("_bucket", count, true)
                        }
                    },
                }
            }
            _ => ("", m.untyped.map_or(0.0, |u| u.value), true),
        };

        s.name = s.push_with(|t| {
            t.push_str(name);
            t.push_str(suffix);
        });
        self.key.clear();
        self.key.extend_from_slice(s.name().as_bytes());
        for l in &m.label {
            let span = Span {
                name: s.push(&l.name),
                value: s.push(&l.value),
            };
            s.labels.push(span);
            self.key.push(SEPARATOR);
            self.key.extend_from_slice(l.name.as_bytes());
            self.key.push(SEPARATOR);
            self.key.extend_from_slice(l.value.as_bytes());
        }
        if let Some((label, bound)) = magic {
            let span = Span {
                name: s.push(label),
                value: s.push_with(|t| push_om_float(bound, t)),
            };
            self.key.push(SEPARATOR);
            self.key.extend_from_slice(s.str(&span.name).as_bytes());
            self.key.push(SEPARATOR);
            self.key.extend_from_slice(s.str(&span.value).as_bytes());
            s.labels.push(span);
        }
        let exemplar = exemplar.map(|e| {
            for l in &e.label {
                let span = Span {
                    name: s.push(&l.name),
                    value: s.push(&l.value),
                };
                s.exemplar.push(span);
            }
            (canonical_nan(e.value), e.timestamp.map(proto::Timestamp::to_millis))
        });
        let timestamp = (m.timestamp_ms != 0).then_some(m.timestamp_ms);
        (
            Found::Series {
                value: canonical_nan(value),
                timestamp,
                exemplar,
            },
            last,
        )
    }
}
