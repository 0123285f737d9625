//! OpenMetrics 1.0 text, as Prometheus' `model/textparse/openmetricsparse.go` and its lexer
//! `openmetricslex.l` accept it.
//!
//! Stricter than the Prometheus text format: single spaces only, no blank lines, no comments
//! other than `# HELP`, `# TYPE`, `# UNIT` and the final `# EOF` (after which nothing may
//! follow), commas required between label pairs. Timestamps are seconds with an optional
//! fraction; samples may carry one exemplar (`# {labels} value [timestamp]`).

use crate::error::{Error, syntax};
use crate::lex::{
    QuoteRules, canonical_nan, expected, find_newline, is_label_char, is_label_start, is_metric_char, is_metric_start,
    parse_float, push_label, quote_bytes, scan_quoted, scan_while, slice_str, unescape_into, while_parsing,
};
use crate::series::{Scratch, Span};
use crate::{Entry, Exemplar, MetricType, Options, Series, Skim};

/// Quoted names in metadata and label sets: newlines allowed, a NUL ends the token.
const NAME_QUOTES: QuoteRules = QuoteRules {
    newline: true,
    nul: false,
};
/// Label values of a series: no newline; NULs allowed (upstream's lexer skips over them).
const VALUE_QUOTES: QuoteRules = QuoteRules {
    newline: false,
    nul: true,
};
/// Names and values inside an exemplar: neither newlines nor NULs.
const EXEMPLAR_QUOTES: QuoteRules = QuoteRules {
    newline: false,
    nul: false,
};

const NO_EOF: &str = "data does not end with # EOF";

#[derive(Debug, Clone, Copy)]
enum Found {
    Help,
    Type(MetricType),
    Unit,
    Series {
        value: f64,
        timestamp: Option<i64>,
        exemplar: Option<(f64, Option<i64>)>,
        key_start: usize,
        key_end: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Running,
    Done,
    Failed(Error),
}

/// Pull parser for OpenMetrics 1.0 text.
#[derive(Clone, Debug)]
pub struct OpenMetricsParser<'a> {
    input: &'a [u8],
    /// `input` when all of it is valid UTF-8.
    whole: Option<&'a str>,
    pos: usize,
    /// The type of the last `# TYPE` line (see [`crate::PromParser`] on why it is not kept
    /// per family).
    kind: MetricType,
    options: crate::Options,
    scratch: Scratch,
    state: State,
    /// What the last `next` or `skim` found, and where its line starts.
    last: Option<(Found, usize)>,
}

/// Seconds as OpenMetrics writes them to milliseconds, truncating as upstream's
/// `int64(ts * 1000)` does.
fn seconds_to_ms(seconds: f64) -> i64 {
    (seconds * 1000.0) as i64
}

impl<'a> OpenMetricsParser<'a> {
    /// A parser over `input` with default options.
    pub fn new(input: &'a [u8]) -> Self {
        Self::with_options(input, Options::default())
    }

    /// A parser over `input`.
    pub fn with_options(input: &'a [u8], options: Options) -> Self {
        OpenMetricsParser {
            input,
            whole: std::str::from_utf8(input).ok(),
            pos: 0,
            kind: MetricType::Unknown,
            options,
            scratch: Scratch::default(),
            state: State::Running,
            last: None,
        }
    }

    /// The next entry, or `Ok(None)` after `# EOF`. After an error every further call returns
    /// the same error.
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
        Ok(Some(self.entry_of(found)))
    }

    /// `next`, seen as a [`Skim`]: OpenMetrics entries are parsed whole.
    pub fn skim(&mut self) -> Result<Option<Skim<'_>>, Error> {
        if self.next()?.is_none() {
            return Ok(None);
        }
        let Some((found, line_start)) = self.last else {
            return Ok(None);
        };
        Ok(Some(match found {
            Found::Series {
                value,
                timestamp,
                key_start,
                key_end,
                ..
            } => Skim::Sample {
                key: &self.input[key_start..key_end],
                value,
                timestamp,
            },
            Found::Help | Found::Type(_) | Found::Unit => {
                Skim::Metadata(Some(&self.input[line_start..self.pos.min(self.input.len())]))
            }
        }))
    }

    /// The entry the last `next` or `skim` found.
    pub fn entry(&mut self) -> Result<Entry<'_>, Error> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        match self.last {
            Some((found, _)) => Ok(self.entry_of(found)),
            None => Err(syntax(self.input, 0, "no entry to complete".to_owned())),
        }
    }

    fn entry_of(&self, found: Found) -> Entry<'_> {
        let s = &self.scratch;
        match found {
            Found::Help => Entry::Help {
                name: s.name(),
                help: s.extra(),
            },
            Found::Type(kind) => Entry::Type { name: s.name(), kind },
            Found::Unit => Entry::Unit {
                name: s.name(),
                unit: s.extra(),
            },
            Found::Series {
                value,
                timestamp,
                exemplar,
                key_start,
                key_end,
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
                key: &self.input[key_start..key_end],
            }),
        }
    }

    fn byte(&self, i: usize) -> Option<u8> {
        self.input.get(i).copied()
    }

    fn end_error(&self) -> Error {
        syntax(self.input, self.input.len(), NO_EOF.to_owned())
    }

    fn advance(&mut self) -> Result<Option<Found>, Error> {
        loop {
            let start = self.pos;
            self.scratch.clear();
            let found = match self.byte(start) {
                None => return Err(self.end_error()),
                Some(b'#') => {
                    let found = self.comment(start)?;
                    self.last = found.map(|f| (f, start));
                    return Ok(found);
                }
                Some(b) if b == b'{' || is_metric_start(b) => self.series(start)?,
                Some(_) => return Err(expected(self.input, start, start, "expected a valid start token")),
            };
            if self.options.skip_om_created_series
                && matches!(
                    self.kind,
                    MetricType::Counter | MetricType::Summary | MetricType::Histogram
                )
                && self.scratch.name().ends_with("_created")
            {
                continue;
            }
            self.last = Some((found, start));
            return Ok(Some(found));
        }
    }

    fn comment(&mut self, start: usize) -> Result<Option<Found>, Error> {
        let rest = &self.input[start..];
        if rest.starts_with(b"# EOF") {
            let mut end = start + 5;
            if self.byte(end) == Some(b'\n') {
                end += 1;
            }
            if end != self.input.len() {
                return Err(syntax(self.input, end, "unexpected data after # EOF".to_owned()));
            }
            self.pos = end;
            return Ok(None);
        }
        for (keyword, what) in [(&b"# HELP "[..], "HELP"), (b"# TYPE ", "TYPE"), (b"# UNIT ", "UNIT")] {
            if rest.starts_with(keyword) {
                return self.meta(start, start + keyword.len(), what).map(Some);
            }
        }
        Err(expected(self.input, start, start, "expected a valid start token"))
    }

    fn meta(&mut self, start: usize, name_at: usize, what: &str) -> Result<Found, Error> {
        let name_end = match self.byte(name_at) {
            Some(b'"') => {
                let end = scan_quoted(self.input, name_at, NAME_QUOTES).map_err(|_| {
                    expected(
                        self.input,
                        start,
                        name_at,
                        &format!("expected metric name after {what}"),
                    )
                })?;
                let raw = self.utf8(name_at + 1, end - 1, start, "invalid UTF-8 metric name")?;
                self.scratch.name = self.scratch.push_with(|t| unescape_into(raw, t));
                end
            }
            Some(b) if is_metric_start(b) => {
                let end = scan_while(self.input, name_at, is_metric_char);
                let raw = self.utf8(name_at, end, start, "invalid UTF-8 metric name")?;
                self.scratch.name = self.scratch.push(raw);
                end
            }
            _ => {
                return Err(expected(
                    self.input,
                    start,
                    name_at,
                    &format!("expected metric name after {what}"),
                ));
            }
        };
        // The text is everything between the space after the name and the newline, which must
        // be there.
        let newline = find_newline(self.input, name_end);
        if self.byte(name_end) != Some(b' ') || newline == self.input.len() {
            return Err(syntax(self.input, name_end, format!("expected text in {what}")));
        }
        let text = &self.input[name_end + 1..newline];
        self.pos = newline + 1;
        match what {
            "TYPE" => {
                let kind = match text {
                    b"counter" => MetricType::Counter,
                    b"gauge" => MetricType::Gauge,
                    b"histogram" => MetricType::Histogram,
                    b"gaugehistogram" => MetricType::GaugeHistogram,
                    b"summary" => MetricType::Summary,
                    b"info" => MetricType::Info,
                    b"stateset" => MetricType::Stateset,
                    b"unknown" => MetricType::Unknown,
                    _ => {
                        return Err(syntax(
                            self.input,
                            name_end + 1,
                            format!("invalid metric type {}", quote_bytes(text)),
                        ));
                    }
                };
                self.kind = kind;
                Ok(Found::Type(kind))
            }
            "HELP" => {
                let Ok(text) = std::str::from_utf8(text) else {
                    return Err(syntax(
                        self.input,
                        name_end + 1,
                        format!("help text {} is not a valid utf8 string", quote_bytes(text)),
                    ));
                };
                self.scratch.extra = self.scratch.push_with(|t| unescape_into(text, t));
                Ok(Found::Help)
            }
            _ => {
                let Ok(unit) = std::str::from_utf8(text) else {
                    return Err(syntax(
                        self.input,
                        name_end + 1,
                        format!("invalid UTF-8 unit {}", quote_bytes(text)),
                    ));
                };
                let name = self.scratch.name();
                let suffixed = name.len() > unit.len()
                    && name.ends_with(unit)
                    && name.as_bytes()[name.len() - unit.len() - 1] == b'_';
                if !unit.is_empty() && !suffixed {
                    return Err(syntax(
                        self.input,
                        name_end + 1,
                        format!("unit {unit:?} not a suffix of metric {name:?}"),
                    ));
                }
                self.scratch.extra = self.scratch.push(unit);
                Ok(Found::Unit)
            }
        }
    }

    fn utf8(&self, from: usize, to: usize, start: usize, message: &str) -> Result<&'a str, Error> {
        let input: &'a [u8] = self.input;
        std::str::from_utf8(&input[from..to]).map_err(|_| {
            while_parsing(
                input,
                start,
                from,
                format!("{message}: {}", quote_bytes(&input[from..to])),
            )
        })
    }

    /// The token of a `{S}[^ \n]+` rule at `i`: a single space and at least one byte that is
    /// neither a space nor a newline. Returns its text's range.
    fn spaced_token(&self, i: usize) -> Option<(usize, usize)> {
        if self.byte(i) != Some(b' ') {
            return None;
        }
        let end = scan_while(self.input, i + 1, |b| b != b' ' && b != b'\n');
        (end > i + 1).then_some((i + 1, end))
    }

    /// Whether an exemplar (` # {`) starts at `i`.
    fn exemplar_starts(&self, i: usize) -> bool {
        self.input.get(i..i + 4) == Some(b" # {")
    }

    fn series(&mut self, start: usize) -> Result<Found, Error> {
        let mut has_name = false;
        let mut i = start;
        if self.byte(start) != Some(b'{') {
            i = scan_while(self.input, start, is_metric_char);
            let name = self.utf8(start, i, start, "invalid UTF-8 metric name")?;
            self.scratch.name = self.scratch.push(name);
            has_name = true;
        }
        if self.byte(i) == Some(b'{') {
            i = self.labels(start, i + 1, Some(&mut has_name))?;
        }
        let key_end = i;
        if !has_name {
            return Err(while_parsing(
                self.input,
                start,
                i.saturating_sub(1),
                "metric name not set".to_owned(),
            ));
        }

        let Some((v_start, v_end)) = self.spaced_token(i) else {
            return Err(expected(self.input, start, i, "expected value after metric"));
        };
        let value = self.float(start, v_start, v_end)?;

        let mut timestamp = None;
        let mut exemplar = None;
        let mut j = v_end;
        match self.byte(j) {
            None => return Err(self.end_error()),
            Some(b'\n') => {}
            _ if self.exemplar_starts(j) => exemplar = Some(self.exemplar(start, j + 4, &mut j)?),
            _ => {
                let Some((t_start, t_end)) = self.spaced_token(j) else {
                    return Err(expected(
                        self.input,
                        start,
                        j,
                        "expected timestamp or exemplar after value",
                    ));
                };
                let ts = self.float(start, t_start, t_end)?;
                if !ts.is_finite() {
                    return Err(syntax(
                        self.input,
                        t_start,
                        format!("invalid timestamp {}", go_special(ts)),
                    ));
                }
                timestamp = Some(seconds_to_ms(ts));
                j = t_end;
                if self.exemplar_starts(j) {
                    exemplar = Some(self.exemplar(start, j + 4, &mut j)?);
                } else if self.byte(j) != Some(b'\n') {
                    return Err(expected(self.input, start, j, "expected next entry after timestamp"));
                }
            }
        }
        // `j` is at the newline ending the sample.
        self.pos = j + 1;
        Ok(Found::Series {
            value,
            timestamp,
            exemplar,
            key_start: start,
            key_end,
        })
    }

    /// Parses a float token, with upstream's message on failure.
    fn float(&self, start: usize, from: usize, to: usize) -> Result<f64, Error> {
        let token = &self.input[from..to];
        parse_float(token)
            .map(canonical_nan)
            .map_err(|e| while_parsing(self.input, start, to - 1, e.describe(token)))
    }

    /// Parses an exemplar from just after its `{`; leaves `end` at the newline after it.
    fn exemplar(&mut self, start: usize, labels_at: usize, end: &mut usize) -> Result<(f64, Option<i64>), Error> {
        let i = self.labels(start, labels_at, None)?;
        let Some((v_start, v_end)) = self.spaced_token(i) else {
            return Err(expected(self.input, start, i, "expected value after exemplar labels"));
        };
        let value = self.float(start, v_start, v_end)?;
        match self.byte(v_end) {
            None => Err(self.end_error()),
            Some(b'\n') => {
                *end = v_end;
                Ok((value, None))
            }
            _ => {
                let Some((t_start, t_end)) = self.spaced_token(v_end) else {
                    return Err(expected(self.input, start, v_end, "expected timestamp or comment"));
                };
                let ts = self.float(start, t_start, t_end)?;
                if !ts.is_finite() {
                    return Err(syntax(
                        self.input,
                        t_start,
                        format!("invalid exemplar timestamp {}", go_special(ts)),
                    ));
                }
                if self.byte(t_end) != Some(b'\n') {
                    return Err(expected(
                        self.input,
                        start,
                        t_end,
                        "expected next entry after exemplar timestamp",
                    ));
                }
                *end = t_end;
                Ok((value, Some(seconds_to_ms(ts))))
            }
        }
    }

    /// Parses label pairs from just after `{` and returns the index just past `}`. For a
    /// series `has_name` tracks the metric name (a lone quoted string may set it); for an
    /// exemplar (`None`) a lone quoted string is an error.
    fn labels(&mut self, start: usize, mut i: usize, mut has_name: Option<&mut bool>) -> Result<usize, Error> {
        let exemplar = has_name.is_none();
        let (name_quotes, value_quotes) = if exemplar {
            (EXEMPLAR_QUOTES, EXEMPLAR_QUOTES)
        } else {
            (NAME_QUOTES, VALUE_QUOTES)
        };
        loop {
            let (name_start, name_end, quoted) = match self.byte(i) {
                Some(b'}') => return Ok(i + 1),
                Some(b'"') => {
                    let end = scan_quoted(self.input, i, name_quotes)
                        .map_err(|_| expected(self.input, start, i, "expected label name"))?;
                    (i + 1, end - 1, true)
                }
                Some(b) if is_label_start(b) => (i, scan_while(self.input, i, is_label_char), false),
                _ => return Err(expected(self.input, start, i, "expected label name")),
            };
            let mut j = if quoted { name_end + 1 } else { name_end };
            if quoted && matches!(self.byte(j), Some(b',' | b'}')) {
                let Some(has_name) = has_name.as_deref_mut() else {
                    return Err(expected(self.input, start, j, "expected label name"));
                };
                if *has_name {
                    return Err(while_parsing(
                        self.input,
                        start,
                        j,
                        "metric name already set".to_owned(),
                    ));
                }
                let raw = self.utf8(name_start, name_end, start, "invalid UTF-8 metric name")?;
                self.scratch.name = self.scratch.push_with(|t| unescape_into(raw, t));
                *has_name = true;
                if self.byte(j) == Some(b'}') {
                    return Ok(j + 1);
                }
                i = j + 1;
                continue;
            }
            let name = self.utf8(name_start, name_end, start, "invalid UTF-8 label name")?;
            if self.byte(j) != Some(b'=') {
                return Err(expected(self.input, start, j, "expected equal"));
            }
            j += 1;
            if self.byte(j) != Some(b'"') {
                return Err(expected(self.input, start, j, "expected label value"));
            }
            let value_end = scan_quoted(self.input, j, value_quotes)
                .map_err(|_| expected(self.input, start, j, "expected label value"))?;
            let raw = &self.input[j..value_end];
            let Some(value) = slice_str(self.input, self.whole, j + 1, value_end - 1) else {
                return Err(syntax(
                    self.input,
                    j,
                    format!("invalid UTF-8 label value: {}", quote_bytes(raw)),
                ));
            };
            if exemplar {
                let name = if quoted {
                    self.scratch.push_with(|t| unescape_into(name, t))
                } else {
                    self.scratch.push(name)
                };
                let value = self.scratch.push_with(|t| unescape_into(value, t));
                self.scratch.exemplar.push(Span { name, value });
            } else {
                push_label(&mut self.scratch, self.kind, name, quoted, value);
            }
            i = value_end;
            match self.byte(i) {
                Some(b',') => i += 1,
                Some(b'}') => {}
                _ => return Err(expected(self.input, start, i, "expected comma or brace close")),
            }
        }
    }
}

/// How Go's `%f` prints the non-finite floats upstream's messages contain.
fn go_special(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "+Inf"
    } else {
        "-Inf"
    }
}
