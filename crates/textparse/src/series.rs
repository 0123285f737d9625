//! The series a parser yields, and the scratch buffer the parsers build it in.

use std::ops::Range;

use watchfire_model::{Label, Labels, LabelsBuilder, METRIC_NAME, Timestamp};

/// One sample of an exposition.
#[derive(Clone, Debug, PartialEq)]
pub struct Series<'e> {
    /// The metric name, unescaped.
    pub name: &'e str,
    /// The labels other than the name, unescaped, in exposition order. `le` of histograms and
    /// `quantile` of summaries are normalized to OpenMetrics float spelling (`le="1"` becomes
    /// `le="1.0"`), as Prometheus 3 does on ingestion.
    pub labels: LabelSlice<'e>,
    /// The value; an exposed NaN is always the canonical NaN, never the staleness marker.
    pub value: f64,
    /// The exposed timestamp in milliseconds, if any. OpenMetrics seconds are converted
    /// (truncating below a millisecond); a protobuf `timestamp_ms` of 0 means none.
    pub timestamp: Option<Timestamp>,
    /// The exemplar attached to this sample, if any.
    pub exemplar: Option<Exemplar<'e>>,
    /// Bytes that identify this series within one exposition format: the name and label
    /// text as exposed (text formats) or an encoding of name and labels (protobuf). A scrape
    /// cache can key on it and build [`Labels`] only on a miss, as Prometheus' scrape cache
    /// does.
    pub key: &'e [u8],
}

impl Series<'_> {
    /// The label set of this series, `__name__` included. When a name repeats, the last value
    /// wins; labels with empty values are left out, as Prometheus drops them on ingestion.
    /// Check [`Series::duplicate_label`] first to refuse such series as Prometheus does.
    pub fn to_labels(&self) -> Labels {
        let mut b = LabelsBuilder::new();
        self.add_to(&mut b);
        b.build()
    }

    /// Sets `__name__` and every label of this series in `builder` (for callers that add
    /// target labels before building).
    pub fn add_to(&self, builder: &mut LabelsBuilder) {
        builder.set(METRIC_NAME, self.name);
        for l in self.labels.iter() {
            builder.set(l.name, l.value);
        }
    }

    /// The first label name that occurs twice (`__name__` counts, so `m{__name__="x"}` has
    /// one). Prometheus refuses such samples with `label name "x" is not unique`.
    pub fn duplicate_label(&self) -> Option<&str> {
        let spans = self.labels.spans;
        for (i, l) in self.labels.iter().enumerate() {
            if l.name == METRIC_NAME {
                return Some(l.name);
            }
            let earlier = LabelSlice {
                text: self.labels.text,
                spans: &spans[..i],
            };
            if earlier.iter().any(|e| e.name == l.name) {
                return Some(l.name);
            }
        }
        None
    }
}

/// An exemplar: labels (typically a trace ID), a value and an optional timestamp.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar<'e> {
    pub labels: LabelSlice<'e>,
    pub value: f64,
    /// Milliseconds.
    pub timestamp: Option<Timestamp>,
}

impl Exemplar<'_> {
    /// The exemplar's labels as a label set.
    pub fn to_labels(&self) -> Labels {
        Labels::from_pairs(self.labels.iter().map(|l| (l.name, l.value)))
    }
}

/// Where one label's name and value lie in a parser's scratch text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub name: Range<usize>,
    pub value: Range<usize>,
}

/// Labels borrowed from a parser, in exposition order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LabelSlice<'e> {
    text: &'e str,
    spans: &'e [Span],
}

impl<'e> LabelSlice<'e> {
    /// The labels in order.
    pub fn iter(&self) -> LabelIter<'e> {
        LabelIter {
            text: self.text,
            spans: self.spans.iter(),
        }
    }

    /// The number of labels.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The value of the first label called `name`.
    pub fn get(&self, name: &str) -> Option<&'e str> {
        self.iter().find(|l| l.name == name).map(|l| l.value)
    }
}

impl std::fmt::Debug for LabelSlice<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter().map(|l| (l.name, l.value))).finish()
    }
}

impl<'e> IntoIterator for LabelSlice<'e> {
    type Item = Label<'e>;
    type IntoIter = LabelIter<'e>;
    fn into_iter(self) -> LabelIter<'e> {
        self.iter()
    }
}

/// Iterator over a [`LabelSlice`].
#[derive(Clone, Debug)]
pub struct LabelIter<'e> {
    text: &'e str,
    spans: std::slice::Iter<'e, Span>,
}

impl<'e> Iterator for LabelIter<'e> {
    type Item = Label<'e>;
    fn next(&mut self) -> Option<Label<'e>> {
        let s = self.spans.next()?;
        let text = self.text;
        let piece = |r: &Range<usize>| {
            text.get(r.clone())
                .expect("label spans index the text they were pushed into")
        };
        Some(Label {
            name: piece(&s.name),
            value: piece(&s.value),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl ExactSizeIterator for LabelIter<'_> {}

/// The reusable buffer a parser assembles one entry in: every string of the entry
/// (unescaped) in `text`, with ranges into it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scratch {
    pub text: String,
    pub name: Range<usize>,
    pub labels: Vec<Span>,
    pub exemplar: Vec<Span>,
    /// A second string of a metadata entry (help text, unit, comment).
    pub extra: Range<usize>,
    /// Exposed `le`/`quantile` values and their normalized spelling (see `lex::push_label`).
    pub float_cache: std::collections::HashMap<Box<str>, Box<str>>,
}

impl Scratch {
    pub fn clear(&mut self) {
        self.text.clear();
        self.name = 0..0;
        self.labels.clear();
        self.exemplar.clear();
        self.extra = 0..0;
    }

    /// Appends with `push` and returns the range it wrote.
    pub fn push_with(&mut self, push: impl FnOnce(&mut String)) -> Range<usize> {
        let start = self.text.len();
        push(&mut self.text);
        start..self.text.len()
    }

    pub fn push(&mut self, s: &str) -> Range<usize> {
        self.push_with(|t| t.push_str(s))
    }

    pub fn str(&self, r: &Range<usize>) -> &str {
        self.text
            .get(r.clone())
            .expect("scratch ranges index the text they were pushed into")
    }

    pub fn name(&self) -> &str {
        self.str(&self.name)
    }

    pub fn extra(&self) -> &str {
        self.str(&self.extra)
    }

    pub fn labels(&self) -> LabelSlice<'_> {
        LabelSlice {
            text: &self.text,
            spans: &self.labels,
        }
    }

    pub fn exemplar_labels(&self) -> LabelSlice<'_> {
        LabelSlice {
            text: &self.text,
            spans: &self.exemplar,
        }
    }
}
