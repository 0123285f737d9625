//! The Prometheus text format, versions 0.0.4 and 1.0.0 (quoted UTF-8 names), as
//! Prometheus' `model/textparse/promparse.go` and its lexer `promlex.l` accept it.
//!
//! The grammar is lenient where upstream's lexer is: blanks (spaces and tabs) may stand
//! between any two tokens of a line, label pairs need no comma between them, a trailing comma
//! is fine, the last line needs no newline, and no whitespace is needed between a name and
//! its value (`a-1` is metric `a` with value -1). Comments are any line starting with `#`
//! that is not `# HELP` or `# TYPE`.

use crate::error::{Error, syntax};
use crate::lex::{
    QuoteRules, canonical_nan, expected, find_newline, is_label_char, is_label_start, is_metric_char, is_metric_start,
    is_text_value_char, parse_float, push_label, quote_bytes, scan_quoted, scan_while, slice_str, unescape_help_into,
    unescape_into, while_parsing,
};
use crate::series::Scratch;
use crate::{Entry, MetricType, Series, Skim};

/// Quoted names: newlines allowed (the lexer's `[^\\"]`), a NUL ends the token.
const NAME_QUOTES: QuoteRules = QuoteRules {
    newline: true,
    nul: false,
};
/// Label values: newlines and NULs allowed.
const VALUE_QUOTES: QuoteRules = QuoteRules {
    newline: true,
    nul: true,
};

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// What the last call to `next` found; the entry is assembled from it and the scratch buffer.
#[derive(Debug, Clone, Copy)]
enum Found {
    Help,
    Type(MetricType),
    Comment,
    Series {
        value: f64,
        timestamp: Option<i64>,
        key_start: usize,
        key_end: usize,
    },
    /// A series [`PromParser::skim`] found without parsing its labels: its line starts at
    /// `start`, its first token at `first`.
    SkimmedSeries {
        value: f64,
        timestamp: Option<i64>,
        start: usize,
        first: usize,
        key_end: usize,
    },
    /// A `# HELP` line `skim` has not parsed: the line starts at `start`, the name at `name_at`.
    SkimmedHelp {
        start: usize,
        name_at: usize,
    },
    /// A comment `skim` has not read; its `#` is at `hash`.
    SkimmedComment {
        hash: usize,
    },
}

/// Pull parser for the Prometheus text format.
#[derive(Clone, Debug)]
pub struct PromParser<'a> {
    input: &'a [u8],
    /// `input` when all of it is valid UTF-8, checked when first needed.
    whole: std::cell::OnceCell<Option<&'a str>>,
    pos: usize,
    /// What the last `next` or `skim` found, and where its line starts (for `entry`).
    last: Option<(Found, usize)>,
    /// The type of the last `# TYPE` line, whatever metric it named: upstream normalizes
    /// `le`/`quantile` by it, so series after a family without its own `# TYPE` inherit it.
    kind: MetricType,
    scratch: Scratch,
    state: State,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Running,
    Done,
    Failed(Error),
}

impl<'a> PromParser<'a> {
    /// A parser over `input`.
    pub fn new(input: &'a [u8]) -> Self {
        PromParser {
            input,
            whole: std::cell::OnceCell::new(),
            pos: 0,
            last: None,
            kind: MetricType::Unknown,
            scratch: Scratch::default(),
            state: State::Running,
        }
    }

    /// The next entry, or `Ok(None)` at the end of the input. After an error every further
    /// call returns the same error.
    #[allow(clippy::should_implement_trait)] // a lending iterator; `Iterator` cannot express it
    pub fn next(&mut self) -> Result<Option<Entry<'_>>, Error> {
        Ok(self.step(false)?.map(|found| self.entry_of(found)))
    }

    /// The next thing found (`skim` says how much of it to parse), keeping the end and the
    /// first error sticky.
    fn step(&mut self, skim: bool) -> Result<Option<Found>, Error> {
        match &self.state {
            State::Running => {}
            State::Done => return Ok(None),
            State::Failed(e) => return Err(e.clone()),
        }
        match self.advance(skim) {
            Ok(Some(found)) => Ok(Some(found)),
            Ok(None) => {
                self.state = State::Done;
                Ok(None)
            }
            Err(e) => {
                self.state = State::Failed(e.clone());
                Err(e)
            }
        }
    }

    /// Like `next`, but parses only what tells samples and metadata lines apart: a sample's
    /// key, value and timestamp (not its labels), a metadata line's bytes (a `# TYPE` line is
    /// parsed, as later labels depend on it). [`PromParser::entry`] parses the rest.
    pub fn skim(&mut self) -> Result<Option<Skim<'a>>, Error> {
        let Some(found) = self.step(true)? else {
            return Ok(None);
        };
        let input: &'a [u8] = self.input;
        let line_start = self.last.map_or(0, |(_, start)| start);
        Ok(Some(match found {
            Found::Series {
                value,
                timestamp,
                key_start,
                key_end,
            } => Skim::Sample {
                key: &input[key_start..key_end],
                value,
                timestamp,
            },
            Found::SkimmedSeries {
                value,
                timestamp,
                start,
                key_end,
                ..
            } => Skim::Sample {
                key: &input[start..key_end],
                value,
                timestamp,
            },
            Found::Help | Found::Type(_) | Found::SkimmedHelp { .. } => {
                Skim::Metadata(Some(&input[line_start..self.pos.min(input.len())]))
            }
            Found::Comment | Found::SkimmedComment { .. } => Skim::Comment,
        }))
    }

    /// The whole entry the last call to `skim` (or `next`) found, parsing what `skim` left.
    /// An error here (labels `skim` did not look at) ends the parse as in `next`.
    pub fn entry(&mut self) -> Result<Entry<'_>, Error> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        let Some((found, line_start)) = self.last else {
            return Err(syntax(self.input, 0, "no entry to complete".to_owned()));
        };
        let completed = match found {
            Found::SkimmedSeries { start, first, .. } => {
                self.scratch.clear();
                self.series(start, first)
            }
            Found::SkimmedHelp { start, name_at } => {
                self.scratch.clear();
                self.meta(start, name_at, true)
            }
            Found::SkimmedComment { hash } => {
                self.scratch.clear();
                Ok(self.comment_text(hash))
            }
            other => Ok(other),
        };
        match completed {
            Ok(found) => {
                self.last = Some((found, line_start));
                Ok(self.entry_of(found))
            }
            Err(e) => {
                self.state = State::Failed(e.clone());
                Err(e)
            }
        }
    }

    /// The entry for `found`, from the scratch buffer.
    fn entry_of(&self, found: Found) -> Entry<'_> {
        let s = &self.scratch;
        match found {
            Found::Help => Entry::Help {
                name: s.name(),
                help: s.extra(),
            },
            Found::Type(kind) => Entry::Type { name: s.name(), kind },
            Found::Comment => Entry::Comment(s.extra()),
            Found::Series {
                value,
                timestamp,
                key_start,
                key_end,
            } => Entry::Series(Series {
                name: s.name(),
                labels: s.labels(),
                value,
                timestamp,
                exemplar: None,
                key: &self.input[key_start..key_end],
            }),
            Found::SkimmedSeries { .. } | Found::SkimmedHelp { .. } | Found::SkimmedComment { .. } => {
                unreachable!("skimmed entries are completed before they are built")
            }
        }
    }

    fn whole(&self) -> Option<&'a str> {
        let input: &'a [u8] = self.input;
        *self.whole.get_or_init(|| std::str::from_utf8(input).ok())
    }

    fn byte(&self, i: usize) -> Option<u8> {
        self.input.get(i).copied()
    }

    /// Whether `i` is at the end of a line: a newline or the end of the input (upstream
    /// appends a newline to the input).
    fn at_eol(&self, i: usize) -> bool {
        matches!(self.byte(i), None | Some(b'\n'))
    }

    fn skip_blanks(&self, i: usize) -> usize {
        scan_while(self.input, i, is_blank)
    }

    /// Index of the newline ending the line that contains `i`, or the input's length.
    fn eol(&self, i: usize) -> usize {
        find_newline(self.input, i)
    }

    fn advance(&mut self, skim: bool) -> Result<Option<Found>, Error> {
        loop {
            let start = self.pos;
            let i = self.skip_blanks(start);
            self.scratch.clear();
            let found = match self.byte(i) {
                // The lexer reads a NUL at the start of a token as the end of the input.
                None | Some(0) => return Ok(None),
                Some(b'\n') => {
                    self.pos = i + 1;
                    continue;
                }
                Some(b'#') => match self.comment_or_meta(start, i, skim)? {
                    Some(found) => found,
                    None => return Ok(None),
                },
                Some(b) if b == b'{' || is_metric_start(b) => {
                    let skimmed = skim
                        .then(|| self.skim_key(i))
                        .flatten()
                        .and_then(|key_end| Some((key_end, self.sample(start, key_end).ok()?)));
                    match skimmed {
                        Some((key_end, (value, timestamp))) => Found::SkimmedSeries {
                            value,
                            timestamp,
                            start,
                            first: i,
                            key_end,
                        },
                        // Broken lines are parsed in full, for the error `next` would give.
                        None => self.series(start, i)?,
                    }
                }
                Some(_) => return Err(expected(self.input, start, i, "expected a valid start token")),
            };
            self.last = Some((found, start));
            return Ok(Some(found));
        }
    }

    /// The end of the series key (name and labels) starting at `first`, found without
    /// parsing the labels: past the name, and if a `{` follows, past the first `}` outside
    /// quotes. For every valid line this is where [`PromParser::series`] ends the key, so a
    /// key that matches one seen before has the labels it had then. `None` if the quotes do
    /// not close (the full parse reports that).
    fn skim_key(&self, first: usize) -> Option<usize> {
        let mut i = first;
        if self.byte(first) != Some(b'{') {
            let end = scan_while(self.input, first, is_metric_char);
            i = self.skip_blanks(end);
            if self.byte(i) != Some(b'{') {
                return Some(end);
            }
        }
        i += 1;
        loop {
            match self.byte(i)? {
                b'}' => return Some(i + 1),
                b'"' => i = scan_quoted(self.input, i, VALUE_QUOTES).ok()?,
                _ => i += 1,
            }
        }
    }

    fn comment_or_meta(&mut self, start: usize, hash: usize, skim: bool) -> Result<Option<Found>, Error> {
        let after = hash + 1;
        let word = self.skip_blanks(after);
        if word > after {
            let rest = &self.input[word..];
            for (keyword, is_help) in [(&b"HELP"[..], true), (&b"TYPE"[..], false)] {
                if rest.starts_with(keyword) && self.byte(word + 4).is_some_and(is_blank) {
                    let name_at = self.skip_blanks(word + 4);
                    // A quoted name may hold a newline, so only a plain one lets the line's
                    // end be found without reading it.
                    if skim && is_help && self.byte(name_at).is_some_and(is_metric_start) {
                        self.pos = self.eol(name_at) + 1;
                        return Ok(Some(Found::SkimmedHelp { start, name_at }));
                    }
                    return self.meta(start, name_at, is_help).map(Some);
                }
            }
        } else if self.input[after..self.eol(after)].contains(&0) {
            // Upstream quirk kept for identical results: in a comment with no blank after
            // the `#`, the lexer takes a NUL for the end of the input.
            return Ok(None);
        }
        if skim {
            self.pos = self.eol(after) + 1;
            return Ok(Some(Found::SkimmedComment { hash }));
        }
        Ok(Some(self.comment_text(hash)))
    }

    /// A comment line whose `#` is at `hash`, read into the scratch buffer.
    fn comment_text(&mut self, hash: usize) -> Found {
        let end = self.eol(hash + 1);
        let text = String::from_utf8_lossy(&self.input[hash..end]);
        self.scratch.extra = self.scratch.push(&text);
        self.pos = end + 1;
        Found::Comment
    }

    fn meta(&mut self, start: usize, name_at: usize, is_help: bool) -> Result<Found, Error> {
        let what = if is_help {
            "expected metric name after HELP"
        } else {
            "expected metric name after TYPE"
        };
        let name_end = match self.byte(name_at) {
            Some(b'"') => {
                let end = scan_quoted(self.input, name_at, NAME_QUOTES)
                    .map_err(|_| expected(self.input, start, name_at, what))?;
                let raw = self.utf8(name_at + 1, end - 1, start, "invalid UTF-8 metric name")?;
                self.scratch.name = self.scratch.push_with(|t| unescape_into(raw, t));
                end
            }
            Some(b) if is_metric_start(b) => {
                let end = scan_while(self.input, name_at, is_metric_char);
                let raw = std::str::from_utf8(&self.input[name_at..end]).expect("metric name characters are ASCII");
                self.scratch.name = self.scratch.push(raw);
                end
            }
            _ => return Err(expected(self.input, start, name_at, what)),
        };
        let eol = self.eol(name_end);
        let rest = &self.input[name_end..eol];
        // The lexer prefers its blank rule on a tie, so a rest of only blanks is no text;
        // otherwise the text is the rest minus its first byte (normally the separating blank).
        let text = if rest.iter().all(|&b| is_blank(b)) {
            &rest[..0]
        } else {
            &rest[1..]
        };
        self.pos = eol + 1;
        if is_help {
            let Ok(text) = std::str::from_utf8(text) else {
                return Err(syntax(
                    self.input,
                    name_end,
                    format!("help text {} is not a valid utf8 string", quote_bytes(text)),
                ));
            };
            self.scratch.extra = self.scratch.push_with(|t| unescape_help_into(text, t));
            return Ok(Found::Help);
        }
        let kind = match text {
            b"counter" => MetricType::Counter,
            b"gauge" => MetricType::Gauge,
            b"histogram" => MetricType::Histogram,
            b"summary" => MetricType::Summary,
            b"untyped" => MetricType::Unknown,
            _ => {
                let at = name_end + usize::from(!text.is_empty());
                return Err(syntax(
                    self.input,
                    at,
                    format!("invalid metric type {}", quote_bytes(text)),
                ));
            }
        };
        self.kind = kind;
        Ok(Found::Type(kind))
    }

    /// `input[from..to]` as UTF-8, or the error `message` positioned there.
    fn utf8(&self, from: usize, to: usize, start: usize, message: &str) -> Result<&'a str, Error> {
        let input: &'a [u8] = self.input;
        // Input valid as a whole (the common case) is not validated again token by token.
        slice_str(input, self.whole(), from, to).ok_or_else(|| {
            while_parsing(
                input,
                start,
                from,
                format!("{message}: {}", quote_bytes(&input[from..to])),
            )
        })
    }

    fn series(&mut self, start: usize, first: usize) -> Result<Found, Error> {
        let mut has_name = false;
        let mut i = first;
        if self.byte(first) != Some(b'{') {
            let end = scan_while(self.input, first, is_metric_char);
            let name = self.utf8(first, end, start, "invalid UTF-8 metric name")?;
            self.scratch.name = self.scratch.push(name);
            has_name = true;
            i = self.skip_blanks(end);
            if self.byte(i) != Some(b'{') {
                i = end;
            }
        }
        if self.byte(i) == Some(b'{') {
            i = self.labels(start, i + 1, &mut has_name)?;
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

        let (value, timestamp) = self.sample(start, key_end)?;
        Ok(Found::Series {
            value,
            timestamp,
            key_start: start,
            key_end,
        })
    }

    /// The value and timestamp after the series key ending at `key_end`, through the end of
    /// the line (where the next entry starts).
    fn sample(&mut self, start: usize, key_end: usize) -> Result<(f64, Option<i64>), Error> {
        let value_at = self.skip_blanks(key_end);
        let value_end = scan_while(self.input, value_at, is_text_value_char);
        if value_end == value_at {
            return Err(expected(self.input, start, value_at, "expected value after metric"));
        }
        let token = &self.input[value_at..value_end];
        let value =
            parse_float(token).map_err(|e| while_parsing(self.input, start, value_end - 1, e.describe(token)))?;

        let mut timestamp = None;
        let mut j = self.skip_blanks(value_end);
        if !self.at_eol(j) {
            if !self.byte(j).is_some_and(|b| b.is_ascii_digit()) {
                return Err(expected(self.input, start, j, "expected timestamp or new record"));
            }
            let ts_end = scan_while(self.input, j, |b| b.is_ascii_digit());
            let token = &self.input[j..ts_end];
            let digits = std::str::from_utf8(token).expect("the token is ASCII digits");
            let ts = digits.parse::<i64>().map_err(|_| {
                while_parsing(
                    self.input,
                    start,
                    ts_end - 1,
                    format!("parsing {}: value out of range", quote_bytes(token)),
                )
            })?;
            timestamp = Some(ts);
            j = self.skip_blanks(ts_end);
            if !self.at_eol(j) {
                return Err(expected(self.input, start, j, "expected next entry after timestamp"));
            }
        }
        self.pos = j + 1;
        Ok((canonical_nan(value), timestamp))
    }

    /// Parses label pairs from just after `{` and returns the index just past `}`.
    fn labels(&mut self, start: usize, mut i: usize, has_name: &mut bool) -> Result<usize, Error> {
        loop {
            i = self.skip_blanks(i);
            let (name_start, name_end, quoted) = match self.byte(i) {
                Some(b'}') => return Ok(i + 1),
                Some(b'"') => {
                    let end = scan_quoted(self.input, i, NAME_QUOTES)
                        .map_err(|_| expected(self.input, start, i, "expected label name"))?;
                    (i + 1, end - 1, true)
                }
                Some(b) if is_label_start(b) => (i, scan_while(self.input, i, is_label_char), false),
                _ => return Err(expected(self.input, start, i, "expected label name")),
            };
            let token_end = if quoted { name_end + 1 } else { name_end };
            let mut j = self.skip_blanks(token_end);
            if quoted && matches!(self.byte(j), Some(b',' | b'}')) {
                // A lone quoted string is the metric name.
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
            j = self.skip_blanks(j + 1);
            if self.byte(j) != Some(b'"') {
                return Err(expected(self.input, start, j, "expected label value"));
            }
            let value_end = scan_quoted(self.input, j, VALUE_QUOTES)
                .map_err(|_| expected(self.input, start, j, "expected label value"))?;
            let raw = &self.input[j..value_end];
            let Some(value) = slice_str(self.input, self.whole(), j + 1, value_end - 1) else {
                return Err(syntax(
                    self.input,
                    j,
                    format!("invalid UTF-8 label value: {}", quote_bytes(raw)),
                ));
            };
            push_label(&mut self.scratch, self.kind, name, quoted, value);
            i = self.skip_blanks(value_end);
            if self.byte(i) == Some(b',') {
                i += 1;
            }
        }
    }
}
