//! The promqltest script format (Prometheus `promql/promqltest`): parsing `load`, `clear` and
//! `eval` commands, the series-description notation shared with `promtool test rules`
//! (`a+bxN`, `_`, `stale`), and a runner that loads the data into any storage and checks
//! every evaluation the way upstream's `test.go` does, including the extra runs at shifted
//! `@` times and as a range query.
//!
//! A `load` block may give a series' start timestamps on a `metric@st` line just before the
//! series' own line: offsets from each sample's time (`-1m`, `0`, `_` for none; the value
//! notation's `xN`, `+`/`-` steps, with durations), loaded through
//! [`Appender::append_st`](watchfire_storage::Appender::append_st).
//!
//! Native histograms are not supported: series written with `{{…}}`, `load_with_nhcb`
//! histograms, and evaluations that read them or expect them are reported as skipped.

use std::fmt;
use std::sync::Arc;

use regex::Regex;
use watchfire_model::{Duration, Labels, MatchType, Matcher, parse_go_float, stale_nan};
use watchfire_storage::{Appendable, Queryable};

use crate::ast::{AtModifier, Expr};
use crate::engine::{AnnotationKind, Annotations, Engine, Error as EngineError, QueryResult, Value};
use crate::parser::{parse_expr, parse_metric_selector};

/// One value of a series description.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SequenceValue {
    /// `_`: no sample at this position.
    Omitted,
    /// A float; `stale` is the staleness-marker NaN.
    Value(f64),
}

/// A parsed series description: labels and values.
#[derive(Clone, Debug)]
pub struct SeriesDesc {
    pub labels: Labels,
    pub values: Vec<SequenceValue>,
    /// The description used native-histogram notation (`{{…}}`), which is not supported;
    /// `values` is then empty.
    pub histogram: bool,
    /// From a `metric@st` line in a `load` block: per value, the start timestamp's offset
    /// from the sample's time in milliseconds, `None` for `_`. Empty without such a line.
    pub start_offsets: Vec<Option<i64>>,
}

/// Parses `metric{labels} values…` as in promqltest `load` blocks, expectations and
/// `promtool test rules` input series.
pub fn parse_series_desc(line: &str) -> Result<SeriesDesc, String> {
    let line = line.trim();
    let split = metric_end(line)?;
    let (metric, values) = line.split_at(split);
    let labels = parse_labels(metric)?;
    let values = values.trim();
    if values.contains("{{") {
        return Ok(SeriesDesc {
            labels,
            values: Vec::new(),
            histogram: true,
            start_offsets: Vec::new(),
        });
    }
    let mut out = Vec::new();
    for item in values.split_whitespace() {
        parse_item(item, &mut out).map_err(|e| format!("invalid series value {item:?}: {e}"))?;
    }
    Ok(SeriesDesc {
        labels,
        values: out,
        histogram: false,
        start_offsets: Vec::new(),
    })
}

/// A start-timestamp line's labels and its offsets (see [`SeriesDesc::start_offsets`]).
type StLine = (Labels, Vec<Option<i64>>);

/// If `line` is a start-timestamp line (`metric{labels}@st offsets…`, upstream
/// `promqltest.isSTLine`), its labels and offsets.
fn parse_st_line(line: &str) -> Option<Result<StLine, String>> {
    let line = line.trim();
    let split = metric_end(line).ok()?;
    let (metric, rest) = line.split_at(split);
    let (metric, rest) = if let Some(m) = metric.strip_suffix("@st") {
        (m, rest)
    } else {
        let r = rest.strip_prefix("@st")?;
        if !r.is_empty() && !r.starts_with([' ', '\t']) {
            return None;
        }
        (metric, r)
    };
    Some((|| {
        let labels = parse_labels(metric).map_err(|e| format!("invalid @st line metric {metric:?}: {e}"))?;
        let rest = rest.trim();
        if rest.is_empty() {
            return Err("invalid @st line: missing value sequence".to_owned());
        }
        let mut out = Vec::new();
        for item in rest.split_whitespace() {
            parse_st_item(item, &mut out)
                .map_err(|e| format!("invalid @st sequence: invalid ST item {item:?}: {e}"))?;
        }
        Ok((labels, out))
    })())
}

/// One item of a start-timestamp sequence (upstream `parseSTItem`): `_`, `_xN`, `<dur>`,
/// `<dur>xN` or `<dur>±<dur>xN`, durations optionally signed.
fn parse_st_item(item: &str, out: &mut Vec<Option<i64>>) -> Result<(), String> {
    if item == "_" {
        out.push(None);
        return Ok(());
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n: usize = n.parse().ok().filter(|n| *n > 0).ok_or("invalid repeat count")?;
        out.extend(std::iter::repeat_n(None, n));
        return Ok(());
    }
    let (base, rest) = scan_st_duration(item)?;
    let repeat = |r: &str| -> Result<usize, String> {
        r.strip_prefix('x')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| "expected 'x<count>' after the duration".to_owned())
    };
    if rest.is_empty() {
        out.push(Some(base));
        return Ok(());
    }
    if rest.starts_with('x') {
        let n = repeat(rest)?;
        out.extend(std::iter::repeat_n(Some(base), n + 1));
        return Ok(());
    }
    let negative = match rest.as_bytes()[0] {
        b'+' => false,
        b'-' => true,
        c => return Err(format!("unexpected character {:?} after duration", c as char)),
    };
    let (delta, rest) = scan_st_duration(&rest[1..]).map_err(|e| format!("invalid step duration: {e}"))?;
    let delta = if negative { -delta } else { delta };
    let n = repeat(rest)?;
    let mut offset = base;
    for _ in 0..=n {
        out.push(Some(offset));
        offset += delta;
    }
    Ok(())
}

/// A signed duration at the start of `s` (digits, then unit letters up to an `x`), in
/// milliseconds, and the rest.
fn scan_st_duration(s: &str) -> Result<(i64, &str), String> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        Some(_) => (false, s),
        None => return Err("empty duration".to_owned()),
    };
    let digits = body.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!("expected digits in duration {s:?}"));
    }
    let unit = body[digits..]
        .bytes()
        .take_while(|c| c.is_ascii_alphabetic() && *c != b'x')
        .count();
    let ms = duration_ms(&body[..digits + unit])?;
    Ok((if negative { -ms } else { ms }, &body[digits + unit..]))
}

/// Where the metric part of a series description ends.
fn metric_end(line: &str) -> Result<usize, String> {
    let bytes = line.as_bytes();
    let mut i = 0;
    let mut in_quote: Option<u8> = None;
    let mut depth = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(q) = in_quote {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == q {
                in_quote = None;
            }
        } else {
            match c {
                b'"' | b'\'' | b'`' => in_quote = Some(c),
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(i + 1);
                    }
                }
                c if c.is_ascii_whitespace() && depth == 0 => return Ok(i),
                _ => {}
            }
        }
        i += 1;
    }
    if depth != 0 {
        return Err(format!("unbalanced braces in {line:?}"));
    }
    Ok(line.len())
}

fn parse_labels(metric: &str) -> Result<Labels, String> {
    let matchers = parse_metric_selector(metric).map_err(|e| e.to_string())?;
    let mut b = Labels::empty().builder();
    for m in &matchers {
        if m.kind != MatchType::Equal {
            return Err(format!("series descriptions only allow = matchers: {metric:?}"));
        }
        b.set(&m.name, &m.value);
    }
    Ok(b.build())
}

/// Scans a number at the start of `s` as upstream's lexer does in series descriptions
/// (decimal only, no hex; `x` ends it). Returns the number and the rest.
fn scan_number(s: &str) -> Result<(f64, &str), String> {
    let bytes = s.as_bytes();
    let mut i = 0;
    if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
        i += 1;
    }
    let word_start = i;
    while i < bytes.len() && bytes[i].is_ascii_alphabetic() && bytes[i] != b'x' {
        i += 1;
    }
    if i > word_start {
        let word = &s[word_start..i];
        let v = if word == "stale" {
            if word_start != 0 {
                return Err("stale cannot be signed".into());
            }
            stale_nan()
        } else {
            parse_go_float(&s[..i]).ok_or_else(|| format!("bad value {word:?}"))?
        };
        return Ok((v, &s[i..]));
    }
    let mut seen_exp = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_digit() || c == b'.' || c == b'_' {
            i += 1;
        } else if (c == b'e' || c == b'E') && !seen_exp {
            seen_exp = true;
            i += 1;
            if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
                i += 1;
            }
        } else {
            break;
        }
    }
    let text: String = s[..i].chars().filter(|c| *c != '_').collect();
    let v = parse_go_float(&text).ok_or_else(|| format!("bad number {:?}", &s[..i]))?;
    Ok((v, &s[i..]))
}

fn parse_times(s: &str) -> Result<u64, String> {
    let n = s.strip_prefix('x').ok_or_else(|| format!("unexpected {s:?}"))?;
    n.parse::<u64>().map_err(|_| format!("bad repetition count {n:?}"))
}

fn parse_item(item: &str, out: &mut Vec<SequenceValue>) -> Result<(), String> {
    if item == "_" {
        out.push(SequenceValue::Omitted);
        return Ok(());
    }
    if let Some(rest) = item.strip_prefix('_') {
        let n = parse_times(rest)?;
        out.extend(std::iter::repeat_n(SequenceValue::Omitted, n as usize));
        return Ok(());
    }
    let (mut v, rest) = scan_number(item)?;
    if rest.is_empty() {
        out.push(SequenceValue::Value(v));
        return Ok(());
    }
    if rest.starts_with('x') {
        let n = parse_times(rest)?;
        out.extend(std::iter::repeat_n(SequenceValue::Value(v), n as usize + 1));
        return Ok(());
    }
    if rest.starts_with('+') || rest.starts_with('-') {
        let (delta, rest) = scan_number(rest)?;
        let n = parse_times(rest)?;
        // Repeated addition, as upstream's grammar does, so rounding matches.
        for _ in 0..=n {
            out.push(SequenceValue::Value(v));
            v += delta;
        }
        return Ok(());
    }
    Err(format!("unexpected {rest:?}"))
}

/// An `expect` line kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectKind {
    Ordered,
    Fail,
    Warn,
    NoWarn,
    Info,
    NoInfo,
}

/// An `expect` line with its optional `msg:` or `regex:` pattern.
#[derive(Clone, Debug)]
pub struct Expect {
    pub kind: ExpectKind,
    pub message: Option<String>,
    pub regex: Option<Regex>,
}

impl Expect {
    fn matches(&self, s: &str) -> bool {
        match (&self.regex, &self.message) {
            (Some(r), _) => r.is_match(s),
            (None, Some(m)) => m == s,
            (None, None) => true,
        }
    }
}

/// When an evaluation runs.
#[derive(Clone, Copy, Debug)]
pub enum EvalTime {
    Instant(i64),
    Range { start: i64, end: i64, step: i64 },
}

/// The expected result of an evaluation.
#[derive(Clone, Debug, Default)]
pub enum Expected {
    #[default]
    Nothing,
    Scalar(f64),
    String(String),
    /// Series with their 1-based position (for `ordered`) and values.
    Series(Vec<(Labels, usize, Vec<SequenceValue>)>),
}

/// An `eval` command.
#[derive(Clone, Debug)]
pub struct Eval {
    /// 1-based line of the `eval`.
    pub line: usize,
    pub expr: String,
    pub time: EvalTime,
    pub fail: bool,
    pub warn: bool,
    pub info: bool,
    pub ordered: bool,
    pub expected_fail_message: Option<String>,
    pub expected_fail_regexp: Option<Regex>,
    pub expects: Vec<Expect>,
    pub expected: Expected,
    /// `expect range vector from … to … step …` on an instant query.
    pub range_vector: Option<(i64, i64, i64)>,
    pub exclude_from_range_query: bool,
    /// The expectation uses native-histogram notation.
    pub expects_histogram: bool,
}

impl Eval {
    fn is_fail(&self) -> bool {
        self.fail || self.expects.iter().any(|e| e.kind == ExpectKind::Fail)
    }

    fn is_ordered(&self) -> bool {
        self.ordered || self.expects.iter().any(|e| e.kind == ExpectKind::Ordered)
    }

    fn expects_of(&self, kind: ExpectKind) -> impl Iterator<Item = &Expect> {
        self.expects.iter().filter(move |e| e.kind == kind)
    }
}

/// A `load` command.
#[derive(Clone, Debug)]
pub struct Load {
    pub line: usize,
    pub step: i64,
    pub with_nhcb: bool,
    pub series: Vec<SeriesDesc>,
}

#[derive(Clone, Debug)]
pub enum Command {
    Clear,
    Load(Load),
    Eval(Box<Eval>),
}

/// A parse error with its 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ScriptError {}

fn duration_ms(s: &str) -> Result<i64, String> {
    Duration::parse(s.trim())
        .map(|d| d.as_millis())
        .map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// Go's `strconv.ParseInt(s, 0, 64)` then `ParseFloat`.
fn parse_number(s: &str) -> Option<f64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let int = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        i64::from_str_radix(b, 2).ok()
    } else if body.len() > 1 && body.starts_with('0') && body.bytes().all(|c| c.is_ascii_digit()) {
        i64::from_str_radix(&body[1..], 8).ok()
    } else if !body.is_empty() && body.bytes().all(|c| c.is_ascii_digit()) {
        body.parse::<i64>().ok()
    } else {
        None
    };
    if let Some(i) = int {
        return Some(if neg { -(i as f64) } else { i as f64 });
    }
    if s.is_empty() || s.contains(char::is_whitespace) {
        return None;
    }
    parse_go_float(s)
}

/// Go's `strconv.Unquote` for the `expect string` argument.
fn unquote(s: &str) -> Option<String> {
    if s.len() >= 2 && s.starts_with('`') && s.ends_with('`') {
        return Some(s[1..s.len() - 1].to_owned());
    }
    let expr = parse_expr(s).ok()?;
    match expr {
        Expr::StringLiteral(l) if s.starts_with('"') => Some(l.value),
        _ => None,
    }
}

/// Parses a whole script.
pub fn parse(input: &str) -> Result<Vec<Command>, ScriptError> {
    let lines: Vec<String> = input
        .split('\n')
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_owned()
            }
        })
        .collect();
    let err = |i: usize, m: String| ScriptError {
        line: i + 1,
        message: m,
    };
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let word = l.split([' ', '\t']).next().unwrap_or("").to_lowercase();
        if word == "clear" {
            cmds.push(Command::Clear);
            i += 1;
        } else if word.starts_with("load") {
            let (next, load) = parse_load(&lines, i).map_err(|m| err(i, m))?;
            cmds.push(Command::Load(load));
            i = next;
        } else if word.starts_with("eval") {
            let (next, eval) = parse_eval(&lines, i)?;
            cmds.push(Command::Eval(Box::new(eval)));
            i = next;
        } else {
            return Err(err(i, format!("invalid command {l:?}")));
        }
    }
    Ok(cmds)
}

fn parse_load(lines: &[String], i: usize) -> Result<(usize, Load), String> {
    let re = Regex::new(r"^load(?:_(with_nhcb))?\s+(.+?)$").expect("static regex");
    let caps = re
        .captures(&lines[i])
        .ok_or("invalid load command. (load[_with_nhcb] <step:duration>)")?;
    let step = duration_ms(&caps[2])?;
    let mut load = Load {
        line: i + 1,
        step,
        with_nhcb: caps.get(1).is_some(),
        series: Vec::new(),
    };
    let mut j = i + 1;
    // A start-timestamp line waiting for its series line: line number, labels, offsets.
    let mut pending: Option<(usize, Labels, Vec<Option<i64>>)> = None;
    while j < lines.len() && !lines[j].is_empty() {
        let l = &lines[j];
        if let Some(st) = parse_st_line(l) {
            if let Some((at, ..)) = pending {
                return Err(format!("line {}: @st line has no following sample line", at + 1));
            }
            let (labels, offsets) = st.map_err(|e| format!("line {}: {e}", j + 1))?;
            pending = Some((j, labels, offsets));
            j += 1;
            continue;
        }
        let mut desc = parse_series_desc(l).map_err(|e| format!("line {}: {e}", j + 1))?;
        if let Some((at, labels, offsets)) = pending.take() {
            if labels != desc.labels {
                return Err(format!(
                    "line {}: @st metric does not match the following sample line metric",
                    at + 1
                ));
            }
            if !desc.histogram && offsets.len() != desc.values.len() {
                return Err(format!(
                    "line {}: @st line has {} values but sample line has {}",
                    at + 1,
                    offsets.len(),
                    desc.values.len()
                ));
            }
            desc.start_offsets = offsets;
        }
        // A series defined twice keeps its last definition, as upstream.
        match load.series.iter_mut().find(|s| s.labels == desc.labels) {
            Some(s) => *s = desc,
            None => load.series.push(desc),
        }
        j += 1;
    }
    if let Some((at, ..)) = pending {
        return Err(format!("line {}: @st line has no following sample line", at + 1));
    }
    Ok((j, load))
}

fn parse_expect(line: &str) -> Result<Expect, String> {
    let re = Regex::new(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$")
        .expect("static regex");
    let caps = re
        .captures(line.trim())
        .ok_or("invalid expect statement, must match `expect <type> <match_type>: <string>` format")?;
    let kind = match &caps[1] {
        "ordered" => ExpectKind::Ordered,
        "fail" => ExpectKind::Fail,
        "warn" => ExpectKind::Warn,
        "no_warn" => ExpectKind::NoWarn,
        "info" => ExpectKind::Info,
        _ => ExpectKind::NoInfo,
    };
    let mut e = Expect {
        kind,
        message: None,
        regex: None,
    };
    match caps.get(2).map(|m| m.as_str()) {
        Some("msg") => e.message = Some(caps[3].trim().to_owned()),
        Some(_) => {
            let pat = caps[3].trim();
            e.regex = Some(Regex::new(pat).map_err(|_| format!("invalid regex {pat}"))?);
        }
        None => {}
    }
    Ok(e)
}

fn parse_eval(lines: &[String], i: usize) -> Result<(usize, Eval), ScriptError> {
    let err = |m: String| ScriptError {
        line: i + 1,
        message: m,
    };
    let instant =
        Regex::new(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$").expect("static");
    let range = Regex::new(r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$")
        .expect("static");
    let line = &lines[i];
    let (modifier, expr, time) = if let Some(c) = instant.captures(line) {
        let at = c.get(2).map_or("0s", |m| m.as_str());
        (
            c.get(1).map(|m| m.as_str().to_owned()),
            c[3].to_owned(),
            EvalTime::Instant(duration_ms(at).map_err(err)?),
        )
    } else if let Some(c) = range.captures(line) {
        let (start, end, step) = (
            duration_ms(&c[2]).map_err(err)?,
            duration_ms(&c[3]).map_err(err)?,
            duration_ms(&c[4]).map_err(err)?,
        );
        if end < start {
            return Err(err(
                "invalid test definition, end timestamp is before start timestamp".into()
            ));
        }
        (
            c.get(1).map(|m| m.as_str().to_owned()),
            c[5].to_owned(),
            EvalTime::Range { start, end, step },
        )
    } else {
        return Err(err("invalid evaluation command".into()));
    };
    let mut ev = Eval {
        line: i + 1,
        expr,
        time,
        fail: modifier.as_deref() == Some("fail"),
        warn: modifier.as_deref() == Some("warn"),
        info: modifier.as_deref() == Some("info"),
        ordered: modifier.as_deref() == Some("ordered"),
        expected_fail_message: None,
        expected_fail_regexp: None,
        expects: Vec::new(),
        expected: Expected::Nothing,
        range_vector: None,
        exclude_from_range_query: false,
        expects_histogram: false,
    };
    let is_instant = matches!(time, EvalTime::Instant(_));
    let range_re = Regex::new(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$").expect("static");
    let mut j = i + 1;
    let mut pos = 0;
    while j < lines.len() && !lines[j].is_empty() {
        let def = lines[j].as_str();
        let line_no = j + 1;
        let lerr = |m: String| ScriptError {
            line: line_no,
            message: m,
        };
        j += 1;
        if ev.fail
            && let Some(m) = def.strip_prefix("expected_fail_message")
        {
            ev.expected_fail_message = Some(m.trim().to_owned());
            break;
        }
        if ev.fail
            && let Some(r) = def.strip_prefix("expected_fail_regexp")
        {
            ev.expected_fail_regexp = Some(Regex::new(r.trim()).map_err(|e| lerr(e.to_string()))?);
            break;
        }
        if def.starts_with("expect range vector") {
            let c = range_re
                .captures(def)
                .ok_or_else(|| lerr(format!("invalid range vector definition {def:?}")))?;
            let (s, e, st) = (
                duration_ms(&c[1]).map_err(lerr)?,
                duration_ms(&c[2]).map_err(lerr)?,
                duration_ms(&c[3]).map_err(lerr)?,
            );
            ev.range_vector = Some((s, e, st));
            ev.exclude_from_range_query = true;
            continue;
        }
        if let Some(rest) = def.strip_prefix("expect string") {
            let s = unquote(rest.trim()).ok_or_else(|| lerr("expected string literal not valid".into()))?;
            ev.expected = Expected::String(s);
            ev.exclude_from_range_query = true;
            continue;
        }
        if def.split(' ').next() == Some("expect") {
            ev.expects.push(parse_expect(def).map_err(lerr)?);
            continue;
        }
        pos += 1;
        if let Some(f) = parse_number(def) {
            ev.expected = Expected::Scalar(f);
            break;
        }
        let desc = parse_series_desc(def).map_err(lerr)?;
        if desc.histogram {
            ev.expects_histogram = true;
        }
        if desc.values.len() > 1 && is_instant && ev.range_vector.is_none() {
            return Err(lerr(
                "expecting multiple values in instant evaluation not allowed".into(),
            ));
        }
        match &mut ev.expected {
            Expected::Series(v) => v.push((desc.labels, pos, desc.values)),
            other => *other = Expected::Series(vec![(desc.labels, pos, desc.values)]),
        }
    }
    Ok((j, ev))
}

/// Storage a script can load into and query.
pub trait ScriptStorage: Queryable + Appendable {}
impl<T: Queryable + Appendable> ScriptStorage for T {}

/// The outcome of one evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// One evaluation's result.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// 1-based line of the `eval`.
    pub line: usize,
    pub expr: String,
    pub outcome: Outcome,
}

/// Runs scripts against an engine, with a fresh storage from `new_storage` at the start and
/// after every `clear`.
pub struct Runner<'a> {
    pub engine: Engine,
    pub new_storage: Box<dyn FnMut() -> Arc<dyn ScriptStorage> + 'a>,
}

impl fmt::Debug for Runner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// Series that hold native histograms in the storage upstream would build; evaluations that
/// select them are skipped.
#[derive(Default)]
struct Tainted {
    series: Vec<Labels>,
}

impl Tainted {
    fn touches(&self, expr: &Expr) -> bool {
        let mut hit = false;
        walk_selectors(expr, &mut |ms: &[Matcher]| {
            if self
                .series
                .iter()
                .any(|l| ms.iter().all(|m| m.matches(l.get(&m.name).unwrap_or(""))))
            {
                hit = true;
            }
        });
        hit
    }
}

fn walk_selectors(e: &Expr, f: &mut dyn FnMut(&[Matcher])) {
    match e {
        Expr::VectorSelector(v) => f(&v.matchers),
        Expr::MatrixSelector(m) => f(&m.selector.matchers),
        Expr::Subquery(s) => walk_selectors(&s.expr, f),
        Expr::Paren(p) => walk_selectors(&p.expr, f),
        Expr::Unary(u) => walk_selectors(&u.expr, f),
        Expr::Binary(b) => {
            walk_selectors(&b.lhs, f);
            walk_selectors(&b.rhs, f);
        }
        Expr::Aggregate(a) => {
            walk_selectors(&a.expr, f);
            if let Some(p) = &a.param {
                walk_selectors(p, f);
            }
        }
        Expr::Call(c) => {
            for a in &c.args {
                walk_selectors(a, f);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
    }
}

/// The base name and labels of the native histogram `load_with_nhcb` builds from a classic
/// histogram series.
fn nhcb_base(l: &Labels) -> Option<Labels> {
    let name = l.metric_name()?;
    let base = ["_bucket", "_count", "_sum"]
        .iter()
        .find_map(|s| name.strip_suffix(s))?;
    let mut b = l.builder();
    b.set(watchfire_model::METRIC_NAME, base);
    b.del("le");
    Some(b.build())
}

impl Runner<'_> {
    /// Runs every command; a failing `load` fails the evaluations after it.
    pub fn run(&mut self, cmds: &[Command]) -> Vec<CaseResult> {
        let mut storage = (self.new_storage)();
        let mut tainted = Tainted::default();
        let mut broken: Option<String> = None;
        let mut out = Vec::new();
        for cmd in cmds {
            match cmd {
                Command::Clear => {
                    storage = (self.new_storage)();
                    tainted = Tainted::default();
                }
                Command::Load(load) => {
                    if let Err(e) = self.load(&*storage, load, &mut tainted) {
                        broken = Some(format!("load at line {} failed: {e}", load.line));
                    }
                }
                Command::Eval(ev) => {
                    let outcome = match &broken {
                        Some(b) => Outcome::Fail(b.clone()),
                        None => self.eval(&*storage, ev, &tainted),
                    };
                    out.push(CaseResult {
                        line: ev.line,
                        expr: ev.expr.clone(),
                        outcome,
                    });
                }
            }
        }
        out
    }

    fn load(&self, storage: &dyn ScriptStorage, load: &Load, tainted: &mut Tainted) -> Result<(), String> {
        let mut app = storage.appender();
        for s in &load.series {
            if s.histogram {
                tainted.series.push(s.labels.clone());
                continue;
            }
            if load.with_nhcb
                && let Some(base) = nhcb_base(&s.labels)
                && !tainted.series.contains(&base)
            {
                tainted.series.push(base);
            }
            let mut sref = None;
            for (i, v) in s.values.iter().enumerate() {
                if let SequenceValue::Value(f) = v {
                    let t = i as i64 * load.step;
                    // Upstream's `loadCmd.set`: the start is the sample's time plus the offset.
                    let r = match s.start_offsets.get(i).copied().flatten() {
                        Some(offset) => app.append_st(sref, &s.labels, t + offset, t, *f),
                        None => app.append(sref, &s.labels, t, *f),
                    };
                    sref = Some(r.map_err(|e| e.to_string())?);
                }
            }
        }
        app.commit().map_err(|e| e.to_string())
    }

    fn eval(&self, storage: &dyn ScriptStorage, ev: &Eval, tainted: &Tainted) -> Outcome {
        if ev.expects_histogram {
            return Outcome::Skip("expects native histograms".into());
        }
        let expr = match parse_expr(&ev.expr) {
            Ok(e) => e,
            Err(e) => {
                if ev.is_fail() && check_failure(ev, &EngineError::Parse(e.clone())).is_ok() {
                    return Outcome::Pass;
                }
                return Outcome::Fail(format!("parse error: {e}"));
            }
        };
        if tainted.touches(&expr) {
            return Outcome::Skip("reads native histograms".into());
        }
        let res = match ev.time {
            EvalTime::Range { start, end, step } => self.range_eval(storage, ev, start, end, step),
            EvalTime::Instant(t) => self.instant_eval(storage, ev, &expr, t),
        };
        match res {
            Ok(()) => Outcome::Pass,
            Err(e) => Outcome::Fail(e),
        }
    }

    fn range_eval(
        &self,
        storage: &dyn ScriptStorage,
        ev: &Eval,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<(), String> {
        match self.engine.range(storage, ev.expr.as_str(), start, end, step) {
            Err(e) if ev.is_fail() => check_failure(ev, &e),
            Err(e) => Err(format!("error evaluating query: {e}")),
            Ok(_) if ev.is_fail() => Err("expected error evaluating query but got none".into()),
            Ok(r) => {
                check_annotations(ev, &r.annotations)?;
                compare(ev, &r.value, start, end, step)
            }
        }
    }

    fn instant_eval(&self, storage: &dyn ScriptStorage, ev: &Eval, expr: &Expr, t: i64) -> Result<(), String> {
        let mut queries = vec![(ev.expr.clone(), t)];
        queries.extend(at_modifier_cases(expr, t));
        for (q, at) in queries {
            self.instant_query(storage, ev, &q, at)?;
        }
        Ok(())
    }

    fn instant_query(&self, storage: &dyn ScriptStorage, ev: &Eval, q: &str, t: i64) -> Result<(), String> {
        let eval_t = match ev.range_vector {
            Some((_, end, _)) => end,
            None => t,
        };
        let t = if q == ev.expr { eval_t } else { t };
        let res: QueryResult = match self.engine.instant(storage, q, t) {
            Err(e) if ev.is_fail() => return check_failure(ev, &e),
            Err(e) => return Err(format!("error evaluating query {q:?} at {t}: {e}")),
            Ok(_) if ev.is_fail() => return Err(format!("expected error evaluating query {q:?} but got none")),
            Ok(r) => r,
        };
        check_annotations(ev, &res.annotations).map_err(|e| format!("{q:?} at {t}: {e}"))?;
        let (start, end, step) = ev.range_vector.unwrap_or((t, t, 0));
        compare(ev, &res.value, start, end, step).map_err(|e| format!("{q:?} at {t}: {e}"))?;
        if ev.exclude_from_range_query {
            return Ok(());
        }
        let ctx_funcs = Regex::new(r"(start|end|range|step)\(\)").expect("static");
        if ctx_funcs.is_match(q) {
            return Ok(());
        }
        let range = self
            .engine
            .range(storage, q, t - 60_000, t + 60_000, 60_000)
            .map_err(|e| format!("error evaluating query {q:?} at {t} in range mode: {e}"))?;
        if ev.is_ordered() {
            return Ok(());
        }
        let Value::Matrix(mat) = range.value else {
            return Err("range query did not return a matrix".into());
        };
        check_sorted(&mat)?;
        let vec: Vec<crate::engine::Sample> = mat
            .iter()
            .filter_map(|s| {
                s.floats
                    .iter()
                    .find(|p| p.t == t)
                    .map(|p| crate::engine::Sample::new(s.metric.clone(), p.t, p.f))
            })
            .collect();
        let v = match res.value {
            Value::Scalar { .. } => Value::Scalar {
                t,
                v: vec.first().map_or(f64::NAN, |s| s.f),
            },
            _ => Value::Vector(vec),
        };
        compare(ev, &v, t, t, 0).map_err(|e| format!("{q:?} at {t} range mode: {e}"))
    }
}

/// Upstream's extra instant runs: every selector and subquery outside an `@` subquery pinned
/// to the evaluation time, evaluated at several other times. None when the query uses a
/// function whose value depends on the evaluation time.
fn at_modifier_cases(expr: &Expr, t: i64) -> Vec<(String, i64)> {
    let mut e = expr.clone();
    let mut unsafe_fn = false;
    pin_at(&mut e, t, &mut unsafe_fn);
    if unsafe_fn {
        return Vec::new();
    }
    let text = e.to_string();
    let times: Vec<i64> = if t == 0 {
        vec![-1000, 0, 1000]
    } else {
        vec![-10 * t, 0, t / 5, t, 10 * t]
    };
    times.into_iter().map(|at| (text.clone(), at)).collect()
}

fn pin_at(e: &mut Expr, t: i64, unsafe_fn: &mut bool) {
    match e {
        Expr::VectorSelector(v) => {
            v.at.get_or_insert(AtModifier::Timestamp(t));
        }
        Expr::MatrixSelector(m) => {
            m.selector.at.get_or_insert(AtModifier::Timestamp(t));
        }
        Expr::Subquery(s) => {
            if s.at.is_none() {
                s.at = Some(AtModifier::Timestamp(t));
            }
            // Everything inside a subquery with `@` is left alone.
        }
        Expr::Paren(p) => pin_at(&mut p.expr, t, unsafe_fn),
        Expr::Unary(u) => pin_at(&mut u.expr, t, unsafe_fn),
        Expr::Binary(b) => {
            pin_at(&mut b.lhs, t, unsafe_fn);
            pin_at(&mut b.rhs, t, unsafe_fn);
        }
        Expr::Aggregate(a) => {
            pin_at(&mut a.expr, t, unsafe_fn);
            if let Some(p) = &mut a.param {
                pin_at(p, t, unsafe_fn);
            }
        }
        Expr::Call(c) => {
            *unsafe_fn |= crate::engine::at_modifier_unsafe(c.func.name);
            for a in &mut c.args {
                pin_at(a, t, unsafe_fn);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
    }
}

fn check_failure(ev: &Eval, e: &EngineError) -> Result<(), String> {
    let msg = e.to_string();
    if let Some(m) = &ev.expected_fail_message
        && *m != msg
    {
        return Err(format!("expected error {m:?}, got {msg:?}"));
    }
    if let Some(r) = &ev.expected_fail_regexp
        && !r.is_match(&msg)
    {
        return Err(format!("expected error matching {:?}, got {msg:?}", r.as_str()));
    }
    if let Some(x) = ev.expects_of(ExpectKind::Fail).next()
        && !x.matches(&msg)
    {
        return Err(format!("expected error matching {:?}, got {msg:?}", x.message));
    }
    Ok(())
}

fn check_annotations(ev: &Eval, annos: &Annotations) -> Result<(), String> {
    let warnings: Vec<&str> = annos.warnings().map(|a| a.message.as_str()).collect();
    let infos: Vec<&str> = annos.infos().map(|a| a.message.as_str()).collect();
    if ev.warn && warnings.is_empty() {
        return Err("expected warnings but got none".into());
    }
    if ev.info && infos.is_empty() {
        return Err("expected info annotations but got none".into());
    }
    for (kind, actual, name) in [
        (ExpectKind::Warn, &warnings, "warn"),
        (ExpectKind::Info, &infos, "info"),
    ] {
        let expected: Vec<&Expect> = ev.expects_of(kind).collect();
        if expected.is_empty() {
            continue;
        }
        if actual.is_empty() {
            return Err(format!("expected {name} annotations but none were found"));
        }
        for e in &expected {
            if !actual.iter().any(|a| e.matches(a)) {
                return Err(format!("expected {name} annotation matching {e:?}, found {actual:?}"));
            }
        }
        for a in actual.iter() {
            if !expected.iter().any(|e| e.matches(a)) {
                return Err(format!("unexpected {name} annotation {a:?}"));
            }
        }
    }
    if ev.expects_of(ExpectKind::NoWarn).next().is_some() && !warnings.is_empty() {
        return Err(format!("unexpected warning annotations: {warnings:?}"));
    }
    if ev.expects_of(ExpectKind::NoInfo).next().is_some() && !infos.is_empty() {
        return Err(format!("unexpected info annotations: {infos:?}"));
    }
    Ok(())
}

fn check_sorted(m: &[crate::engine::Series]) -> Result<(), String> {
    if m.windows(2).any(|w| w[0].metric > w[1].metric) {
        return Err("matrix results should always be sorted by labels".into());
    }
    Ok(())
}

const EPSILON: f64 = 0.000001;

fn almost_equal(a: f64, b: f64) -> bool {
    crate::engine::almost_equal(a, b, EPSILON)
}

fn compare(ev: &Eval, value: &Value, start: i64, end: i64, step: i64) -> Result<(), String> {
    let expect_scalar = matches!(ev.expected, Expected::Scalar(_));
    let series: &[(Labels, usize, Vec<SequenceValue>)] = match &ev.expected {
        Expected::Series(s) => s,
        _ => &[],
    };
    match value {
        Value::Matrix(m) => {
            if ev.is_ordered() {
                return Err("expected ordered result, but query returned a matrix".into());
            }
            if expect_scalar {
                return Err(format!("expected scalar result, but got matrix {value}"));
            }
            check_sorted(m)?;
            for s in m {
                let Some((_, _, vals)) = series.iter().find(|(l, _, _)| *l == s.metric) else {
                    return Err(format!("unexpected metric {} in result", s.metric));
                };
                let mut expected = Vec::new();
                for (i, v) in vals.iter().enumerate() {
                    let t = start + i as i64 * step;
                    if t > end {
                        return Err(format!(
                            "expected {} points for {}, but query time range cannot return this many points",
                            vals.len(),
                            s.metric
                        ));
                    }
                    if let SequenceValue::Value(f) = v {
                        expected.push((t, *f));
                    }
                }
                if expected.len() != s.floats.len() {
                    return Err(format!(
                        "expected {} float points for {}, got {:?}",
                        expected.len(),
                        s.metric,
                        s.floats
                    ));
                }
                for ((t, f), p) in expected.iter().zip(&s.floats) {
                    if *t != p.t {
                        return Err(format!("expected timestamp {t} for {}, got {}", s.metric, p.t));
                    }
                    if !almost_equal(p.f, *f) {
                        return Err(format!("expected {f} at t={t} for {}, got {}", s.metric, p.f));
                    }
                }
            }
            for (l, _, _) in series {
                if !m.iter().any(|s| s.metric == *l) {
                    return Err(format!("expected metric {l} not found"));
                }
            }
        }
        Value::Vector(v) => {
            if expect_scalar {
                return Err(format!("expected scalar result, but got vector {value}"));
            }
            for (i, s) in v.iter().enumerate() {
                let Some((_, pos, vals)) = series.iter().find(|(l, _, _)| *l == s.metric) else {
                    return Err(format!("unexpected metric {} in result, has value {}", s.metric, s.f));
                };
                if ev.is_ordered() && *pos != i + 1 {
                    return Err(format!(
                        "expected metric {} at position {pos} but was at {}",
                        s.metric,
                        i + 1
                    ));
                }
                let exp = match vals.first() {
                    Some(SequenceValue::Value(f)) => *f,
                    _ => 0.0,
                };
                if !almost_equal(exp, s.f) {
                    return Err(format!("expected {exp} for {} but got {}", s.metric, s.f));
                }
            }
            for (l, _, _) in series {
                if !v.iter().any(|s| s.metric == *l) {
                    return Err(format!("expected metric {l} not found"));
                }
            }
        }
        Value::Scalar { v, .. } => {
            let Expected::Scalar(exp) = ev.expected else {
                return Err(format!("expected vector or matrix result, but got {value}"));
            };
            if !almost_equal(exp, *v) {
                return Err(format!("expected scalar {exp} but got {v}"));
            }
        }
        Value::String { v, .. } => {
            let exp = match &ev.expected {
                Expected::String(s) => s.as_str(),
                _ => "",
            };
            if exp != v {
                return Err(format!("expected string {exp:?} but got {v:?}"));
            }
        }
    }
    let _ = AnnotationKind::Info;
    Ok(())
}
