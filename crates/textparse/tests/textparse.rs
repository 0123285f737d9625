//! Integration tests of the exposition parsers and the text writer.
//!
//! The good and bad input tables restate the cases of Prometheus' `promparse_test.go` and
//! `openmetricsparse_test.go` (expected entries, error wording and the line they are on);
//! the corpus test runs every upstream sample in `shared/compat/prometheus/textparse`.

use std::path::Path;

use proptest::prelude::*;
use prost::Message;
use watchfire_model::{Label, Labels};
use watchfire_textparse::proto;
use watchfire_textparse::{
    Entry, Error, Format, MetricType, OpenMetricsParser, Options, Parser, PromParser, ProtobufParser, Skim, TextWriter,
    parser_for,
};

/// An owned copy of an entry, for comparisons.
#[derive(Clone, Debug)]
enum E {
    Help(String, String),
    Type(String, MetricType),
    Unit(String, String),
    Comment(String),
    Series(S),
}

#[derive(Clone, Debug)]
struct S {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    ts: Option<i64>,
    exemplar: Option<OwnedExemplar>,
}

type Pairs = Vec<(String, String)>;
type OwnedExemplar = (Pairs, f64, Option<i64>);

fn same_float(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits() || a == b
}

impl PartialEq for S {
    fn eq(&self, o: &S) -> bool {
        self.name == o.name
            && self.labels == o.labels
            && same_float(self.value, o.value)
            && self.ts == o.ts
            && match (&self.exemplar, &o.exemplar) {
                (None, None) => true,
                (Some(a), Some(b)) => a.0 == b.0 && same_float(a.1, b.1) && a.2 == b.2,
                _ => false,
            }
    }
}

impl PartialEq for E {
    fn eq(&self, o: &E) -> bool {
        match (self, o) {
            (E::Help(a, b), E::Help(c, d)) | (E::Unit(a, b), E::Unit(c, d)) => a == c && b == d,
            (E::Type(a, b), E::Type(c, d)) => a == c && b == d,
            (E::Comment(a), E::Comment(b)) => a == b,
            (E::Series(a), E::Series(b)) => a == b,
            _ => false,
        }
    }
}

fn pairs<'a>(it: impl Iterator<Item = Label<'a>>) -> Vec<(String, String)> {
    it.map(|l| (l.name.to_owned(), l.value.to_owned())).collect()
}

fn own(e: Entry<'_>) -> E {
    match e {
        Entry::Help { name, help } => E::Help(name.into(), help.into()),
        Entry::Type { name, kind } => E::Type(name.into(), kind),
        Entry::Unit { name, unit } => E::Unit(name.into(), unit.into()),
        Entry::Comment(c) => E::Comment(c.into()),
        Entry::Series(s) => E::Series(S {
            name: s.name.into(),
            labels: pairs(s.labels.iter()),
            value: s.value,
            ts: s.timestamp,
            exemplar: s.exemplar.map(|e| (pairs(e.labels.iter()), e.value, e.timestamp)),
        }),
    }
}

/// Every entry `p` yields, or its error. Also checks that skimming each entry and then
/// completing it gives the same entries (or the same error), so every table in this file
/// tests `skim` and `entry` as well.
fn collect(p: Parser<'_>) -> Result<Vec<E>, Error> {
    let skimmed = skim_all(p.clone());
    let mut p = p;
    let mut out = Vec::new();
    let result = loop {
        match p.next() {
            Ok(Some(e)) => out.push(own(e)),
            Ok(None) => break Ok(out),
            Err(e) => break Err(e),
        }
    };
    assert_eq!(skimmed, result, "skim and entry disagree with next");
    result
}

/// The entries of `p` through `skim` and `entry`, checking that what `skim` says of each
/// agrees with the entry.
fn skim_all(mut p: Parser<'_>) -> Result<Vec<E>, Error> {
    let mut out = Vec::new();
    while let Some(skim) = p.skim()? {
        let skim = match skim {
            Skim::Sample { key, value, timestamp } => Skim::Sample {
                key: &*key.to_vec().leak(),
                value,
                timestamp,
            },
            Skim::Metadata(line) => Skim::Metadata(line.map(|l| &*l.to_vec().leak())),
            Skim::Comment => Skim::Comment,
        };
        let entry = p.entry()?;
        match (skim, &entry) {
            (Skim::Sample { key, value, timestamp }, Entry::Series(s)) => {
                assert_eq!(key, s.key);
                assert!(same_float(value, s.value), "{value} != {}", s.value);
                assert_eq!(timestamp, s.timestamp);
            }
            (Skim::Metadata(line), Entry::Help { .. } | Entry::Type { .. } | Entry::Unit { .. }) => {
                if let Some(line) = line {
                    let text = String::from_utf8_lossy(line);
                    assert!(text.trim_start().starts_with('#'), "{text:?}");
                }
            }
            (Skim::Comment, Entry::Comment(_)) => {}
            (skim, entry) => panic!("skim {skim:?} but entry {entry:?}"),
        }
        out.push(own(entry));
    }
    Ok(out)
}

fn text(input: &str) -> Result<Vec<E>, Error> {
    collect(Parser::Text(PromParser::new(input.as_bytes())))
}

fn om(input: &str) -> Result<Vec<E>, Error> {
    collect(Parser::OpenMetrics(OpenMetricsParser::new(input.as_bytes())))
}

fn help(n: &str, h: &str) -> E {
    E::Help(n.into(), h.into())
}
fn typ(n: &str, t: MetricType) -> E {
    E::Type(n.into(), t)
}
fn unit(n: &str, u: &str) -> E {
    E::Unit(n.into(), u.into())
}
fn comment(c: &str) -> E {
    E::Comment(c.into())
}
fn s(name: &str, labels: &[(&str, &str)], value: f64) -> E {
    E::Series(S {
        name: name.into(),
        labels: labels.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        value,
        ts: None,
        exemplar: None,
    })
}

trait SeriesExt {
    fn ts(self, ts: i64) -> E;
    fn ex(self, labels: &[(&str, &str)], value: f64, ts: Option<i64>) -> E;
}

impl SeriesExt for E {
    fn ts(self, ts: i64) -> E {
        let E::Series(mut x) = self else { panic!("not a series") };
        x.ts = Some(ts);
        E::Series(x)
    }
    fn ex(self, labels: &[(&str, &str)], value: f64, ts: Option<i64>) -> E {
        let E::Series(mut x) = self else { panic!("not a series") };
        x.exemplar = Some((
            labels.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            value,
            ts,
        ));
        E::Series(x)
    }
}

fn assert_entries(got: &[E], want: &[E]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "entry {i}");
    }
    assert_eq!(got.len(), want.len(), "number of entries; got {got:#?}");
}

// ---------------------------------------------------------------------------------------------
// Prometheus text format
// ---------------------------------------------------------------------------------------------

#[test]
fn text_format_entries() {
    let mut input = String::from(
        r#"# HELP go_gc_duration_seconds A summary of the GC invocation durations.
# 	TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 4.9351e-05
go_gc_duration_seconds{quantile="0.25",} 7.424100000000001e-05
go_gc_duration_seconds{quantile="0.5",a="b"} 8.3835e-05
go_gc_duration_seconds{ quantile="0.9", a="b"} 8.3835e-05
# HELP http_seconds Latencies, with an escaped \\ backslash, a \n newline and a \" quote.
# TYPE http_seconds histogram
http_seconds_bucket{handler="/",le="1"} 423
http_seconds_bucket{handler="/",le="+Inf"} 1423
http_seconds_sum{handler="/"} 2000
http_seconds_count{handler="/"} 1423

# Hrandom comment starting with prefix of HELP
#
wind_speed{A="2",c="3"} 12345
# comment with escaped \n newline
# HELP nohelp1
# HELP nohelp2 
go_gc_duration_seconds { quantile= "1.0", a= "b", } 8.3835e-05
go_gc_duration_seconds { quantile = "2.0" a = "b" } 8.3835e-05
some:aggregate:rate5m{a_b="c"}	1
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 33  	123123
# TYPE some_counter_total counter
some_counter_total 12
# TYPE untyped_thing untyped
_metric_starting_with_underscore 1
testmetric{_label_starting_with_underscore="foo"} 1
testmetric{label="\"bar\"",nl="a\nb",bs="c\\d",other="\t"} 1
testmetric{le="10"} -Inf
nan_metric NaN
inf_metric +Inf
dash-1"#,
    );
    input.push_str("\n# HELP metric foo\x00bar");
    input.push_str("\nnull_byte_metric{a=\"abc\x00\"} 1");

    let summary = MetricType::Summary;
    let want = vec![
        help("go_gc_duration_seconds", "A summary of the GC invocation durations."),
        typ("go_gc_duration_seconds", summary),
        s("go_gc_duration_seconds", &[("quantile", "0.0")], 4.9351e-05),
        s("go_gc_duration_seconds", &[("quantile", "0.25")], 7.424100000000001e-05),
        s("go_gc_duration_seconds", &[("quantile", "0.5"), ("a", "b")], 8.3835e-05),
        s("go_gc_duration_seconds", &[("quantile", "0.9"), ("a", "b")], 8.3835e-05),
        // Text-format help resolves only \\ and \n.
        help(
            "http_seconds",
            "Latencies, with an escaped \\ backslash, a \n newline and a \\\" quote.",
        ),
        typ("http_seconds", MetricType::Histogram),
        s("http_seconds_bucket", &[("handler", "/"), ("le", "1.0")], 423.0),
        s("http_seconds_bucket", &[("handler", "/"), ("le", "+Inf")], 1423.0),
        s("http_seconds_sum", &[("handler", "/")], 2000.0),
        s("http_seconds_count", &[("handler", "/")], 1423.0),
        comment("# Hrandom comment starting with prefix of HELP"),
        comment("#"),
        s("wind_speed", &[("A", "2"), ("c", "3")], 12345.0),
        comment("# comment with escaped \\n newline"),
        help("nohelp1", ""),
        help("nohelp2", ""),
        // The last TYPE was a histogram, so `quantile` is left alone here.
        s("go_gc_duration_seconds", &[("quantile", "1.0"), ("a", "b")], 8.3835e-05),
        s("go_gc_duration_seconds", &[("quantile", "2.0"), ("a", "b")], 8.3835e-05),
        s("some:aggregate:rate5m", &[("a_b", "c")], 1.0),
        help("go_goroutines", "Number of goroutines that currently exist."),
        typ("go_goroutines", MetricType::Gauge),
        s("go_goroutines", &[], 33.0).ts(123123),
        typ("some_counter_total", MetricType::Counter),
        s("some_counter_total", &[], 12.0),
        typ("untyped_thing", MetricType::Unknown),
        s("_metric_starting_with_underscore", &[], 1.0),
        s("testmetric", &[("_label_starting_with_underscore", "foo")], 1.0),
        s(
            "testmetric",
            &[("label", "\"bar\""), ("nl", "a\nb"), ("bs", "c\\d"), ("other", "\\t")],
            1.0,
        ),
        s("testmetric", &[("le", "10")], f64::NEG_INFINITY),
        s("nan_metric", &[], f64::NAN),
        s("inf_metric", &[], f64::INFINITY),
        // No blank is needed between a name and its value: this is `dash` with value -1.
        s("dash", &[], -1.0),
        help("metric", "foo\u{0}bar"),
        s("null_byte_metric", &[("a", "abc\u{0}")], 1.0),
    ];
    assert_entries(&text(&input).unwrap(), &want);
}

#[test]
fn text_format_utf8_names() {
    let input = r#"# HELP "go.gc_duration_seconds" A summary of the GC invocation durations.
# 	TYPE "go.gc_duration_seconds" summary
{"go.gc_duration_seconds",quantile="0"} 4.9351e-05
{"go.gc_duration_seconds",quantile="0.25",} 7.424100000000001e-05
{"go.gc_duration_seconds", quantile="0.9", a="b"} 8.3835e-05
{ "go.gc_duration_seconds", quantile = "1.0", a = "b" } 8.3835e-05
{quantile="0.5","go.gc_duration_seconds"} 1
{"go.gc_duration_seconds_count"} 99
{"Heizölrückstoßabdämpfung 10€ metric with \"interesting\" {character\nchoices}","strange©™\n'quoted' \"name\""="6"} 10.0
plain{"dotted.label"="x"} 2"#;
    let want = vec![
        help("go.gc_duration_seconds", "A summary of the GC invocation durations."),
        typ("go.gc_duration_seconds", MetricType::Summary),
        s("go.gc_duration_seconds", &[("quantile", "0.0")], 4.9351e-05),
        s("go.gc_duration_seconds", &[("quantile", "0.25")], 7.424100000000001e-05),
        s("go.gc_duration_seconds", &[("quantile", "0.9"), ("a", "b")], 8.3835e-05),
        s("go.gc_duration_seconds", &[("quantile", "1.0"), ("a", "b")], 8.3835e-05),
        s("go.gc_duration_seconds", &[("quantile", "0.5")], 1.0),
        s("go.gc_duration_seconds_count", &[], 99.0),
        s(
            "Heizölrückstoßabdämpfung 10€ metric with \"interesting\" {character\nchoices}",
            &[("strange©™\n'quoted' \"name\"", "6")],
            10.0,
        ),
        s("plain", &[("dotted.label", "x")], 2.0),
    ];
    assert_entries(&text(input).unwrap(), &want);
}

#[test]
fn text_format_series_key_and_labels() {
    let input = "m{b=\"2\",a=\"1\",__name__=\"x\"} 3\nn{a=\"\",z=\"q\"} 4\n";
    let mut p = PromParser::new(input.as_bytes());
    let Some(Entry::Series(s)) = p.next().unwrap() else {
        panic!("expected a series")
    };
    assert_eq!(s.key, b"m{b=\"2\",a=\"1\",__name__=\"x\"}");
    assert_eq!(s.duplicate_label(), Some("__name__"));
    assert_eq!(s.labels.get("b"), Some("2"));
    assert_eq!(s.labels.len(), 3);
    let Some(Entry::Series(s)) = p.next().unwrap() else {
        panic!("expected a series")
    };
    assert_eq!(s.duplicate_label(), None);
    // Empty label values are dropped when the label set is built.
    assert_eq!(s.to_labels(), Labels::from_pairs([("__name__", "n"), ("z", "q")]));
    assert!(p.next().unwrap().is_none());
    assert!(p.next().unwrap().is_none(), "the end is sticky");

    let mut p = PromParser::new(b"d{a=\"1\",a=\"2\"} 1");
    let Some(Entry::Series(s)) = p.next().unwrap() else {
        panic!("expected a series")
    };
    assert_eq!(s.duplicate_label(), Some("a"));
}

#[test]
fn text_format_nul_bytes() {
    // Upstream's lexer reads a NUL at the start of a token as the end of the input, and a
    // NUL inside a `#comment` (no blank after `#`) likewise.
    assert_entries(&text("a 1\n\u{0}b 2\n").unwrap(), &[s("a", &[], 1.0)]);
    assert_entries(&text("#x\u{0}y\nb 2\n").unwrap(), &[]);
    assert_entries(
        &text("# x\u{0}y\nb 2\n").unwrap(),
        &[comment("# x\u{0}y"), s("b", &[], 2.0)],
    );
    for ok in ["a{b=\"\u{0}ss\"} 1\n", "a{b=\"\u{0}\"} 1\n"] {
        assert!(text(ok).is_ok(), "{ok:?}");
    }
}

/// (input, line, expected message fragment)
const TEXT_ERRORS: &[(&str, usize, &str)] = &[
    (
        "a",
        1,
        r#"expected value after metric, got end of input while parsing: "a""#,
    ),
    ("a\n", 1, r#"expected value after metric, got "\n""#),
    ("ok 1\na{b='c'} 1\n", 2, r#"expected label value, got "'c'}""#),
    ("a{b=\n", 1, r#"expected label value, got "\n""#),
    ("a{\u{ff}=\"foo\"} 1\n", 1, "expected label name"),
    (r#"{"a", "b = "c"}"#, 1, "expected equal"),
    (r#"{"a",b\nc="d"} 1"#, 1, r#"expected equal, got "\\nc=\"d\"}""#),
    (
        "a true\n",
        1,
        r#"parsing "true": invalid syntax while parsing: "a true""#,
    ),
    ("something_weird{problem=\"", 1, "expected label value"),
    (
        "empty_label_name{=\"\"} 0",
        1,
        "expected label name, got \"=\\\"\\\"}\"",
    ),
    ("{A}0", 1, r#"expected equal, got "}0""#),
    (
        "foo 1_2\n",
        1,
        r#"unsupported character in float while parsing: "foo 1_2""#,
    ),
    ("foo 0x1p-3\n", 1, "unsupported character in float"),
    ("foo 0x1P-3\n", 1, "unsupported character in float"),
    ("foo 1e400\n", 1, r#"parsing "1e400": value out of range"#),
    ("foo +NaN\n", 1, r#"parsing "+NaN": invalid syntax"#),
    ("foo 0 1_2\n", 1, r#"expected next entry after timestamp, got "_2""#),
    ("foo 0 -1\n", 1, r#"expected timestamp or new record, got "-1""#),
    ("foo 0 99999999999999999999\n", 1, "value out of range"),
    (r#"{a="ok"} 1"#, 1, r#"metric name not set while parsing: "{a=\"ok\"}""#),
    (r#"{"a","b"} 1"#, 1, "metric name already set"),
    ("x 1\n# TYPE #\n", 2, r##"expected metric name after TYPE, got "#""##),
    ("# HELP #\n", 1, r##"expected metric name after HELP, got "#""##),
    ("# TYPE m gauge \n", 1, r#"invalid metric type "gauge ""#),
    ("# TYPE m  gauge\n", 1, r#"invalid metric type " gauge""#),
    (
        "# TYPE m gaugehistogram\n",
        1,
        r#"invalid metric type "gaugehistogram""#,
    ),
    ("# TYPE m unknown\n", 1, r#"invalid metric type "unknown""#),
    ("9 1\n", 1, r#"expected a valid start token, got "9""#),
    (
        "a{b=\u{0}\"ssss\"} 1\n",
        1,
        r#"expected label value, got "\x00\"ssss\"}""#,
    ),
    ("a{b=\"\u{0}", 1, "expected label value"),
    ("a{b\u{0}=\"hiih\"}\t1", 1, r#"expected equal, got "\x00=\"hiih\"}""#),
    (
        "a\u{0}{b=\"ddd\"} 1",
        1,
        r#"expected value after metric, got "\x00{b=\"ddd\"}""#,
    ),
    ("a 0 1\u{0}", 1, r#"expected next entry after timestamp, got "\x00""#),
    ("a 1\nb{c=\"d\"}\n", 2, "expected value after metric"),
];

#[test]
fn text_format_errors() {
    for &(input, line, fragment) in TEXT_ERRORS {
        let err = text(input).expect_err(input);
        let Error::Syntax {
            line: got_line,
            ref message,
            ..
        } = err
        else {
            panic!("{input:?}: {err:?}")
        };
        assert!(message.contains(fragment), "{input:?}: {message:?} lacks {fragment:?}");
        assert_eq!(got_line, line, "{input:?}: {err}");
    }
}

#[test]
fn text_format_invalid_utf8() {
    let err = text_bytes(b"a{b=\"\xff\"} 1\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"line 1, column 5: invalid UTF-8 label value: "\"\xff\"""#
    );
    let err = text_bytes(b"a{\xff=\"foo\"} 1\n").unwrap_err();
    assert!(
        err.to_string().contains(r#"expected label name, got "\xff=\"foo\"}""#),
        "{err}"
    );
    let err = text_bytes(b"# HELP m \xff\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"line 1, column 9: help text "\xff" is not a valid utf8 string"#
    );
    let err = text_bytes(b"{\"a\xff\"} 1\n").unwrap_err();
    assert!(err.to_string().contains("invalid UTF-8 metric name"), "{err}");
    // Comments are not checked; invalid bytes are replaced.
    assert_entries(&text_bytes(b"#\xff\n").unwrap(), &[comment("#\u{fffd}")]);
}

fn text_bytes(input: &[u8]) -> Result<Vec<E>, Error> {
    collect(Parser::Text(PromParser::new(input)))
}

#[test]
fn errors_name_line_and_column() {
    let err = text("a 1\nb 2\nc{d=\"e\" 3\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"line 3, column 9: expected label name, got "3" while parsing: "c{d=\"e\" 3""#
    );
    let err = om("a 1\n").unwrap_err();
    assert_eq!(err.to_string(), "line 2, column 1: data does not end with # EOF");
}

// ---------------------------------------------------------------------------------------------
// OpenMetrics
// ---------------------------------------------------------------------------------------------

const OM_INPUT: &str = r#"# HELP go_gc_duration_seconds A summary of the GC invocation durations.
# TYPE go_gc_duration_seconds summary
# UNIT go_gc_duration_seconds seconds
go_gc_duration_seconds{quantile="0"} 4.9351e-05
go_gc_duration_seconds{quantile="0.25"} 7.424100000000001e-05
go_gc_duration_seconds{quantile="0.5",a="b"} 8.3835e-05
# HELP nohelp1 
# HELP help2 escape \ \n \\ \" \x chars
# UNIT nounit 
go_gc_duration_seconds{quantile="1.0",a="b"} 8.3835e-05
go_gc_duration_seconds_count 99
some:aggregate:rate5m{a_b="c"} 1
# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 33 123.123
# TYPE hh histogram
hh_bucket{le="+Inf"} 1
hh_bucket{le="1"} 1
# TYPE gh gaugehistogram
gh_bucket{le="1"} 1
# TYPE hhh histogram
hhh_bucket{le="+Inf"} 1 # {id="histogram-bucket-test"} 4
hhh_count 1 # {id="histogram-count-test"} 4
# TYPE ggh gaugehistogram
ggh_bucket{le="+Inf"} 1 # {id="gaugehistogram-bucket-test",xx="yy"} 4 123.123
ggh_count 1 # {id="gaugehistogram-count-test",xx="yy"} 4 123.123
# TYPE smr_seconds summary
smr_seconds_count 2.0 # {id="summary-count-test"} 1 123.321
smr_seconds_sum 42.0 # {id="summary-sum-test"} 1 123.321
# TYPE ii info
ii{foo="bar"} 1
# TYPE ss stateset
ss{ss="foo"} 1
ss{ss="bar"} 0
ss{A="a"} 0
# TYPE un unknown
_metric_starting_with_underscore 1
testmetric{_label_starting_with_underscore="foo"} 1
testmetric{label="\"bar\""} 1
# HELP foo Counter with and without labels
# TYPE foo counter
foo_total 17.0 1520879607.789 # {id="counter-test"} 5
foo_created 1520872607.123
foo_total{a="b"} 17.0 1520879607.789 # {id="counter-test"} 5
foo_created{a="b"} 1520872607.123
foo_total{le="c"} 21.0
foo_created{le="c"} 1520872621.123
foo_total{le="1"} 10.0
# HELP fizz_created Gauge which is not a created series
# TYPE fizz_created gauge
fizz_created 17.0
# TYPE nansum summary
nansum{quantile="0.99"} NaN
nansum{quantile="0.95"} nan
neg_ts 1 -1.5
empty_exemplar 1 # {} 2
trailing_comma{a="b",} 1 # {c="d",} 3
"#;

fn om_want(created: bool) -> Vec<E> {
    let mut want = vec![
        help("go_gc_duration_seconds", "A summary of the GC invocation durations."),
        typ("go_gc_duration_seconds", MetricType::Summary),
        unit("go_gc_duration_seconds", "seconds"),
        s("go_gc_duration_seconds", &[("quantile", "0.0")], 4.9351e-05),
        s("go_gc_duration_seconds", &[("quantile", "0.25")], 7.424100000000001e-05),
        s("go_gc_duration_seconds", &[("quantile", "0.5"), ("a", "b")], 8.3835e-05),
        help("nohelp1", ""),
        help("help2", "escape \\ \n \\ \" \\x chars"),
        unit("nounit", ""),
        s("go_gc_duration_seconds", &[("quantile", "1.0"), ("a", "b")], 8.3835e-05),
        s("go_gc_duration_seconds_count", &[], 99.0),
        s("some:aggregate:rate5m", &[("a_b", "c")], 1.0),
        help("go_goroutines", "Number of goroutines that currently exist."),
        typ("go_goroutines", MetricType::Gauge),
        s("go_goroutines", &[], 33.0).ts(123123),
        typ("hh", MetricType::Histogram),
        s("hh_bucket", &[("le", "+Inf")], 1.0),
        s("hh_bucket", &[("le", "1.0")], 1.0),
        typ("gh", MetricType::GaugeHistogram),
        // Only classic histograms have their `le` normalized.
        s("gh_bucket", &[("le", "1")], 1.0),
        typ("hhh", MetricType::Histogram),
        s("hhh_bucket", &[("le", "+Inf")], 1.0).ex(&[("id", "histogram-bucket-test")], 4.0, None),
        s("hhh_count", &[], 1.0).ex(&[("id", "histogram-count-test")], 4.0, None),
        typ("ggh", MetricType::GaugeHistogram),
        s("ggh_bucket", &[("le", "+Inf")], 1.0).ex(
            &[("id", "gaugehistogram-bucket-test"), ("xx", "yy")],
            4.0,
            Some(123123),
        ),
        s("ggh_count", &[], 1.0).ex(&[("id", "gaugehistogram-count-test"), ("xx", "yy")], 4.0, Some(123123)),
        typ("smr_seconds", MetricType::Summary),
        s("smr_seconds_count", &[], 2.0).ex(&[("id", "summary-count-test")], 1.0, Some(123321)),
        s("smr_seconds_sum", &[], 42.0).ex(&[("id", "summary-sum-test")], 1.0, Some(123321)),
        typ("ii", MetricType::Info),
        s("ii", &[("foo", "bar")], 1.0),
        typ("ss", MetricType::Stateset),
        s("ss", &[("ss", "foo")], 1.0),
        s("ss", &[("ss", "bar")], 0.0),
        s("ss", &[("A", "a")], 0.0),
        typ("un", MetricType::Unknown),
        s("_metric_starting_with_underscore", &[], 1.0),
        s("testmetric", &[("_label_starting_with_underscore", "foo")], 1.0),
        s("testmetric", &[("label", "\"bar\"")], 1.0),
        help("foo", "Counter with and without labels"),
        typ("foo", MetricType::Counter),
        s("foo_total", &[], 17.0)
            .ts(1520879607789)
            .ex(&[("id", "counter-test")], 5.0, None),
        s("foo_created", &[], 1520872607.123),
        s("foo_total", &[("a", "b")], 17.0)
            .ts(1520879607789)
            .ex(&[("id", "counter-test")], 5.0, None),
        s("foo_created", &[("a", "b")], 1520872607.123),
        s("foo_total", &[("le", "c")], 21.0),
        s("foo_created", &[("le", "c")], 1520872621.123),
        s("foo_total", &[("le", "1")], 10.0),
        help("fizz_created", "Gauge which is not a created series"),
        typ("fizz_created", MetricType::Gauge),
        s("fizz_created", &[], 17.0),
        typ("nansum", MetricType::Summary),
        s("nansum", &[("quantile", "0.99")], f64::NAN),
        s("nansum", &[("quantile", "0.95")], f64::NAN),
        s("neg_ts", &[], 1.0).ts(-1500),
        s("empty_exemplar", &[], 1.0).ex(&[], 2.0, None),
        s("trailing_comma", &[("a", "b")], 1.0).ex(&[("c", "d")], 3.0, None),
    ];
    if !created {
        want.retain(|e| !matches!(e, E::Series(x) if x.name == "foo_created"));
    }
    want
}

#[test]
fn openmetrics_entries() {
    let input = format!("{OM_INPUT}# EOF\n");
    assert_entries(&om(&input).unwrap(), &om_want(true));
    let input = format!("{OM_INPUT}# EOF");
    assert_entries(&om(&input).unwrap(), &om_want(true));
}

#[test]
fn openmetrics_skips_created_series_when_asked() {
    let input = format!("{OM_INPUT}# EOF\n");
    let options = Options {
        skip_om_created_series: true,
    };
    let got = collect(Parser::with_options(Format::OpenMetrics, input.as_bytes(), options)).unwrap();
    assert_entries(&got, &om_want(false));
}

#[test]
fn openmetrics_nan_is_canonical() {
    let mut p = OpenMetricsParser::new(b"a NaN # {x=\"y\"} nan\n# EOF\n");
    let Some(Entry::Series(s)) = p.next().unwrap() else {
        panic!("expected a series")
    };
    assert_eq!(s.value.to_bits(), 0x7ff8_0000_0000_0001);
    assert_eq!(s.exemplar.unwrap().value.to_bits(), 0x7ff8_0000_0000_0001);
    assert!(!watchfire_model::is_stale_nan(s.value));
}

#[test]
fn openmetrics_utf8_names() {
    let input = r#"# HELP "go.gc_duration_seconds" A summary of the GC invocation durations.
# TYPE "go.gc_duration_seconds" summary
# UNIT "go.gc_duration_seconds" seconds
{"go.gc_duration_seconds",quantile="0"} 4.9351e-05
{"go.gc_duration_seconds_created"} 1520872607.123
{"http.status",q="0.9",a="b"} 8.3835e-05
{q="0.9","http.status",a="b"} 8.3835e-05
{"Heizölrückstoßabdämpfung 10€ metric with \"interesting\" {character\nchoices}","strange©™\n'quoted' \"name\""="6"} 10.0
quotedexemplar_count 1 # {"id.thing"="histogram-count-test"} 4
quotedexemplar2_count 1 # {"id.thing"="histogram-count-test",other="hello"} 4
# EOF
"#;
    let want = vec![
        help("go.gc_duration_seconds", "A summary of the GC invocation durations."),
        typ("go.gc_duration_seconds", MetricType::Summary),
        unit("go.gc_duration_seconds", "seconds"),
        s("go.gc_duration_seconds", &[("quantile", "0.0")], 4.9351e-05),
        s("go.gc_duration_seconds_created", &[], 1520872607.123),
        s("http.status", &[("q", "0.9"), ("a", "b")], 8.3835e-05),
        s("http.status", &[("q", "0.9"), ("a", "b")], 8.3835e-05),
        s(
            "Heizölrückstoßabdämpfung 10€ metric with \"interesting\" {character\nchoices}",
            &[("strange©™\n'quoted' \"name\"", "6")],
            10.0,
        ),
        s("quotedexemplar_count", &[], 1.0).ex(&[("id.thing", "histogram-count-test")], 4.0, None),
        s("quotedexemplar2_count", &[], 1.0).ex(&[("id.thing", "histogram-count-test"), ("other", "hello")], 4.0, None),
    ];
    assert_entries(&om(input).unwrap(), &want);
}

/// (input, line, expected message fragment); an empty fragment means the input is valid.
const OM_ERRORS: &[(&str, usize, &str)] = &[
    ("# EOF", 0, ""),
    ("# EOF\n", 0, ""),
    ("", 1, "data does not end with # EOF"),
    ("\n", 1, r#"expected a valid start token, got "\n""#),
    ("metric", 1, "expected value after metric, got end of input"),
    ("metric 1", 1, "data does not end with # EOF"),
    ("metric 1\n", 2, "data does not end with # EOF"),
    ("metric_total 1 # {aa=\"bb\"} 4", 1, "data does not end with # EOF"),
    ("a\n#EOF\n", 1, r#"expected value after metric, got "\n""#),
    ("\n\n#EOF\n", 1, "expected a valid start token"),
    (" a 1\n#EOF\n", 1, r#"expected a valid start token, got " ""#),
    ("9\n#EOF\n", 1, r#"expected a valid start token, got "9""#),
    ("# TYPE u untyped\n#EOF\n", 1, r#"invalid metric type "untyped""#),
    ("# TYPE c counter \n#EOF\n", 1, r#"invalid metric type "counter ""#),
    ("#  TYPE c counter\n#EOF\n", 1, "expected a valid start token"),
    ("# TYPE \n#EOF\n", 1, r#"expected metric name after TYPE, got "\n""#),
    ("# TYPE m\n#EOF\n", 1, "expected text in TYPE"),
    (
        "# UNIT metric suffix\n#EOF\n",
        1,
        r#"unit "suffix" not a suffix of metric "metric""#,
    ),
    (
        "# UNIT metricsuffix suffix\n#EOF\n",
        1,
        r#"unit "suffix" not a suffix of metric "metricsuffix""#,
    ),
    (
        "# UNIT m suffix\n#EOF\n",
        1,
        r#"unit "suffix" not a suffix of metric "m""#,
    ),
    ("# UNIT \n#EOF\n", 1, "expected metric name after UNIT"),
    ("# UNIT m\n#EOF\n", 1, "expected text in UNIT"),
    ("# HELP \n#EOF\n", 1, "expected metric name after HELP"),
    ("# HELP m\n#EOF\n", 1, "expected text in HELP"),
    ("# HELP m text", 1, "expected text in HELP"),
    ("a\t1\n#EOF\n", 1, r#"expected value after metric, got "\t""#),
    (
        "a 1\t2\n#EOF\n",
        1,
        r#"parsing "1\t2": invalid syntax while parsing: "a 1\t2""#,
    ),
    ("a 1 2 \n#EOF\n", 1, r#"expected next entry after timestamp, got " ""#),
    ("a 1 2 #\n#EOF\n", 1, "expected next entry after timestamp"),
    ("a 1 1z\n#EOF\n", 1, r#"parsing "1z": invalid syntax"#),
    ("a 1 \n# EOF\n", 1, "expected timestamp or exemplar after value"),
    (" # EOF\n", 1, "expected a valid start token"),
    ("# EOF\na 1", 2, "unexpected data after # EOF"),
    ("# EOF\n\n", 2, "unexpected data after # EOF"),
    ("# EOFa 1", 1, "unexpected data after # EOF"),
    ("# comment\n# EOF\n", 1, "expected a valid start token"),
    ("#\tTYPE c counter\n", 1, "expected a valid start token"),
    ("# TYPE c  counter\n", 1, r#"invalid metric type " counter""#),
    ("a 1 1 1\n# EOF\n", 1, r#"expected next entry after timestamp, got " ""#),
    ("a{b='c'} 1\n# EOF\n", 1, "expected label value"),
    ("a{,b=\"c\"} 1\n# EOF\n", 1, r#"expected label name, got ",b=\"c\"}""#),
    (
        "a{b=\"c\"d=\"e\"} 1\n# EOF\n",
        1,
        r#"expected comma or brace close, got "d=\"e\"}""#,
    ),
    ("a{b=\"c\",,d=\"e\"} 1\n# EOF\n", 1, "expected label name"),
    ("a{b=\n# EOF\n", 1, r#"expected label value, got "\n""#),
    ("a{ b=\"c\"} 1\n# EOF\n", 1, r#"expected label name, got " ""#),
    ("a{b=\"c\\\nd\"} 1\n# EOF\n", 1, "expected label value"),
    ("a{b=\"c\nd\"} 1\n# EOF\n", 1, "expected label value"),
    ("{\"a\",\"b = \"c\"}\n# EOF\n", 1, "expected equal"),
    ("{\"a\",b\\nc=\"d\"} 1\n# EOF\n", 1, "expected equal"),
    ("a true\n", 1, r#"parsing "true": invalid syntax"#),
    ("something_weird{problem=\"\n# EOF\n", 1, "expected label value"),
    ("empty_label_name{=\"\"} 0\n# EOF\n", 1, "expected label name"),
    ("{A}0\n# EOF\n", 1, "expected equal"),
    ("foo 1_2\n\n# EOF\n", 1, "unsupported character in float"),
    ("foo 0x1p-3\n\n# EOF\n", 1, "unsupported character in float"),
    ("foo 0x1P-3\n\n# EOF\n", 1, "unsupported character in float"),
    ("foo 0 1_2\n\n# EOF\n", 1, "unsupported character in float"),
    ("custom_metric_total 1 # {aa=bb}\n# EOF\n", 1, "expected label value"),
    (
        "custom_metric_total 1 # {aa=\"bb\"}\n# EOF\n",
        1,
        r#"expected value after exemplar labels, got "\n""#,
    ),
    (
        "custom_metric_total 1 # {aa=\"bb\"}",
        1,
        "expected value after exemplar labels, got end of input",
    ),
    ("custom_metric_total 1 # {bb}", 1, r#"expected equal, got "}""#),
    ("custom_metric_total 1 # {bb, a=\"dd\"}", 1, "expected equal"),
    (
        "custom_metric_total 1 # {aa=\"bb\",,cc=\"dd\"} 1",
        1,
        "expected label name",
    ),
    (
        "custom_metric_total 1 # {aa=\"bb\"} 1_2",
        1,
        "unsupported character in float",
    ),
    (
        "custom_metric_total 1 # {aa=\"bb\"} 0x1p-3",
        1,
        "unsupported character in float",
    ),
    (
        "custom_metric_total 1 # {aa=\"bb\"} true",
        1,
        r#"parsing "true": invalid syntax"#,
    ),
    ("custom_metric_total 1 # {aa=\"bb\",cc=}", 1, "expected label value"),
    (
        "custom_metric_total 1 # {\"lone\"} 9.0\n# EOF\n",
        1,
        "expected label name",
    ),
    (
        "custom_metric_total 1 # {a=\"b\"} 9.0 1 2\n# EOF\n",
        1,
        "expected next entry after exemplar timestamp",
    ),
    (
        "custom_metric_total 1 # {a=\"b\"} 9.0  1\n# EOF\n",
        1,
        "expected timestamp or comment",
    ),
    ("{b=\"c\",} 1\n# EOF\n", 1, "metric name not set"),
    ("a 1 NaN\n# EOF\n", 1, "invalid timestamp NaN"),
    ("a 1 -Inf\n# EOF\n", 1, "invalid timestamp -Inf"),
    ("a 1 Inf\n# EOF\n", 1, "invalid timestamp +Inf"),
    ("a 1 2", 1, "expected next entry after timestamp, got end of input"),
    (
        "# TYPE hhh histogram\nhhh_bucket{le=\"+Inf\"} 1 # {aa=\"bb\"} 4 NaN\n# EOF\n",
        2,
        "invalid exemplar timestamp NaN",
    ),
    (
        "# TYPE hhh histogram\nhhh_bucket{le=\"+Inf\"} 1 # {aa=\"bb\"} 4 -Inf\n# EOF\n",
        2,
        "invalid exemplar timestamp -Inf",
    ),
    ("null_byte_metric{a=\"abc\u{0}\"} 1\n# EOF\n", 0, ""),
    ("a{b=\"\u{0}ss\"} 1\n# EOF\n", 0, ""),
    ("a{b=\"\u{0}\"} 1\n# EOF", 0, ""),
    (
        "a{b=\u{0}\"ssss\"} 1\n# EOF\n",
        1,
        r#"expected label value, got "\x00\"ssss\"}""#,
    ),
    ("a{b=\"\u{0}", 1, "expected label value"),
    ("a{b\u{0}=\"hiih\"}\t1", 1, r#"expected equal, got "\x00=\"hiih\"}""#),
    (
        "a\u{0}{b=\"ddd\"} 1",
        1,
        r#"expected value after metric, got "\x00{b=\"ddd\"}""#,
    ),
    ("#", 1, r##"expected a valid start token, got "#""##),
    ("# H", 1, "expected a valid start token"),
    (
        "custom_metric_total 1 # {b=\u{0}\"ssss\"} 1\n",
        1,
        "expected label value",
    ),
    ("custom_metric_total 1 # {b=\"\u{0}ss\"} 1\n", 1, "expected label value"),
];

#[test]
fn openmetrics_errors() {
    for &(input, line, fragment) in OM_ERRORS {
        let got = om(input);
        if fragment.is_empty() {
            assert!(got.is_ok(), "{input:?}: {got:?}");
            continue;
        }
        let err = got.expect_err(input);
        let Error::Syntax {
            line: got_line,
            ref message,
            ..
        } = err
        else {
            panic!("{input:?}: {err:?}")
        };
        assert!(message.contains(fragment), "{input:?}: {message:?} lacks {fragment:?}");
        assert_eq!(got_line, line, "{input:?}: {err}");
    }
}

#[test]
fn openmetrics_invalid_utf8() {
    let err = collect(Parser::OpenMetrics(OpenMetricsParser::new(b"a{b=\"\xff\"} 1\n# EOF\n"))).unwrap_err();
    assert!(
        err.to_string().contains(r#"invalid UTF-8 label value: "\"\xff\"""#),
        "{err}"
    );
    let err = collect(Parser::OpenMetrics(OpenMetricsParser::new(b"# HELP m \xff\n# EOF\n"))).unwrap_err();
    assert!(
        err.to_string()
            .contains(r#"help text "\xff" is not a valid utf8 string"#),
        "{err}"
    );
}

#[test]
fn errors_are_sticky() {
    let mut p = Parser::new(Format::OpenMetrics, b"a 1\nb\n# EOF\n");
    assert!(matches!(p.next(), Ok(Some(Entry::Series(_)))));
    let first = p.next().unwrap_err();
    assert_eq!(p.next().unwrap_err(), first);
}

// ---------------------------------------------------------------------------------------------
// Protobuf
// ---------------------------------------------------------------------------------------------

fn lp(name: &str, value: &str) -> proto::LabelPair {
    proto::LabelPair {
        name: name.into(),
        value: value.into(),
    }
}

fn delimited(families: &[proto::MetricFamily]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in families {
        f.encode_length_delimited(&mut out).unwrap();
    }
    out
}

fn pb(input: &[u8]) -> Result<Vec<E>, Error> {
    collect(Parser::Protobuf(ProtobufParser::new(input)))
}

fn family(name: &str, kind: proto::MetricType, metric: Vec<proto::Metric>) -> proto::MetricFamily {
    proto::MetricFamily {
        name: name.into(),
        help: format!("{name} help"),
        r#type: kind as i32,
        metric,
        unit: String::new(),
    }
}

fn exemplar(id: &str, value: f64, seconds: Option<i64>) -> proto::Exemplar {
    proto::Exemplar {
        label: vec![lp("trace_id", id)],
        value,
        timestamp: seconds.map(|s| proto::Timestamp {
            seconds: s,
            nanos: 500_000_000,
        }),
    }
}

fn bucket(upper: f64, count: u64) -> proto::Bucket {
    proto::Bucket {
        cumulative_count: count,
        upper_bound: upper,
        ..Default::default()
    }
}

#[test]
fn protobuf_entries() {
    use proto::MetricType as T;
    let counter = proto::Metric {
        label: vec![lp("code", "200"), lp("dotted.name", "x")],
        counter: Some(proto::Counter {
            value: 17.0,
            exemplar: Some(exemplar("abc", 1.5, Some(10))),
            ..Default::default()
        }),
        timestamp_ms: 1234,
        ..Default::default()
    };
    let mut with_unit = family(
        "temp_celsius",
        T::Gauge,
        vec![proto::Metric {
            gauge: Some(proto::Gauge { value: -3.5 }),
            ..Default::default()
        }],
    );
    with_unit.unit = "celsius".into();
    let summary = proto::Metric {
        summary: Some(proto::Summary {
            sample_count: 10,
            sample_sum: 5.5,
            quantile: vec![
                proto::Quantile {
                    quantile: 0.5,
                    value: 0.25,
                },
                proto::Quantile {
                    quantile: 1.0,
                    value: 2.0,
                },
            ],
            ..Default::default()
        }),
        ..Default::default()
    };
    let histogram = proto::Metric {
        label: vec![lp("path", "/")],
        histogram: Some(proto::Histogram {
            sample_count: 7,
            sample_sum: 12.0,
            bucket: vec![
                proto::Bucket {
                    exemplar: Some(exemplar("def", 0.7, None)),
                    ..bucket(1.0, 3)
                },
                bucket(2.5, 5),
            ],
            ..Default::default()
        }),
        ..Default::default()
    };
    let float_histogram = proto::Metric {
        histogram: Some(proto::Histogram {
            sample_count_float: 2.5,
            sample_sum: 1.0,
            bucket: vec![
                proto::Bucket {
                    cumulative_count_float: 1.5,
                    upper_bound: 0.1,
                    ..Default::default()
                },
                bucket(f64::INFINITY, 9),
                // Buckets after +Inf are not read.
                bucket(100.0, 9),
            ],
            ..Default::default()
        }),
        ..Default::default()
    };
    // A native histogram: its native fields are ignored and its classic part read.
    let native = proto::Metric {
        histogram: Some(proto::Histogram {
            sample_count: 4,
            sample_sum: 8.0,
            schema: 3,
            zero_threshold: 1e-128,
            zero_count: 1,
            positive_span: vec![proto::BucketSpan { offset: 0, length: 2 }],
            positive_delta: vec![1, 1],
            ..Default::default()
        }),
        ..Default::default()
    };
    let input = delimited(&[
        family("requests_total", T::Counter, vec![counter]),
        family("empty_family", T::Gauge, vec![]),
        with_unit,
        family("rpc_seconds", T::Summary, vec![summary]),
        family("latency_seconds", T::Histogram, vec![histogram]),
        family("queue_depth", T::GaugeHistogram, vec![float_histogram]),
        family("native_seconds", T::Histogram, vec![native]),
        family(
            "things",
            T::Untyped,
            vec![
                proto::Metric {
                    untyped: Some(proto::Untyped { value: f64::NAN }),
                    ..Default::default()
                },
                proto::Metric::default(),
            ],
        ),
    ]);
    let want = vec![
        help("requests_total", "requests_total help"),
        typ("requests_total", MetricType::Counter),
        s("requests_total", &[("code", "200"), ("dotted.name", "x")], 17.0)
            .ts(1234)
            .ex(&[("trace_id", "abc")], 1.5, Some(10500)),
        help("temp_celsius", "temp_celsius help"),
        unit("temp_celsius", "celsius"),
        typ("temp_celsius", MetricType::Gauge),
        s("temp_celsius", &[], -3.5),
        help("rpc_seconds", "rpc_seconds help"),
        typ("rpc_seconds", MetricType::Summary),
        s("rpc_seconds_count", &[], 10.0),
        s("rpc_seconds_sum", &[], 5.5),
        s("rpc_seconds", &[("quantile", "0.5")], 0.25),
        s("rpc_seconds", &[("quantile", "1.0")], 2.0),
        help("latency_seconds", "latency_seconds help"),
        typ("latency_seconds", MetricType::Histogram),
        s("latency_seconds_count", &[("path", "/")], 7.0),
        s("latency_seconds_sum", &[("path", "/")], 12.0),
        s("latency_seconds_bucket", &[("path", "/"), ("le", "1.0")], 3.0).ex(&[("trace_id", "def")], 0.7, None),
        s("latency_seconds_bucket", &[("path", "/"), ("le", "2.5")], 5.0),
        s("latency_seconds_bucket", &[("path", "/"), ("le", "+Inf")], 7.0),
        help("queue_depth", "queue_depth help"),
        typ("queue_depth", MetricType::GaugeHistogram),
        s("queue_depth_count", &[], 2.5),
        s("queue_depth_sum", &[], 1.0),
        s("queue_depth_bucket", &[("le", "0.1")], 1.5),
        s("queue_depth_bucket", &[("le", "+Inf")], 9.0),
        help("native_seconds", "native_seconds help"),
        typ("native_seconds", MetricType::Histogram),
        s("native_seconds_count", &[], 4.0),
        s("native_seconds_sum", &[], 8.0),
        s("native_seconds_bucket", &[("le", "+Inf")], 4.0),
        help("things", "things help"),
        typ("things", MetricType::Unknown),
        s("things", &[], f64::NAN),
        s("things", &[], 0.0),
    ];
    assert_entries(&pb(&input).unwrap(), &want);

    // Keys tell series apart.
    let mut p = ProtobufParser::new(&input);
    let mut keys = std::collections::HashSet::new();
    let mut series = 0;
    while let Some(e) = p.next().unwrap() {
        if let Entry::Series(s) = e {
            series += 1;
            keys.insert((s.key.to_vec(), s.to_labels()));
        }
    }
    assert_eq!(keys.len(), series - 1, "the two bare `things` share a key");
}

#[test]
fn protobuf_errors() {
    use proto::MetricType as T;
    let gauge = || proto::Metric {
        gauge: Some(proto::Gauge { value: 1.0 }),
        ..Default::default()
    };
    let good = delimited(&[family("ok", T::Gauge, vec![gauge()])]);

    let mut truncated = good.clone();
    truncated.pop();
    let err = pb(&truncated).unwrap_err();
    assert!(err.to_string().contains("insufficient length of buffer"), "{err}");

    let err = pb(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).unwrap_err();
    assert!(err.to_string().contains("invalid varint"), "{err}");
    let err = pb(&[0x80]).unwrap_err();
    assert!(err.to_string().contains("invalid varint"), "{err}");

    let mut bad_type = family("weird", T::Gauge, vec![gauge()]);
    bad_type.r#type = 42;
    let err = pb(&delimited(&[bad_type])).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"metric family #0 ("weird") at byte 0: unknown metric type for metric "weird": 42"#
    );

    let err = pb(&delimited(&[
        family("ok", T::Gauge, vec![gauge()]),
        family("", T::Gauge, vec![gauge()]),
    ]))
    .unwrap_err();
    let Error::Protobuf {
        family: index, offset, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((*index, *offset), (1, good.len()));
    assert!(err.to_string().contains("invalid metric name"), "{err}");

    let mut unnamed = gauge();
    unnamed.label.push(lp("", "v"));
    let err = pb(&delimited(&[family("m", T::Gauge, vec![unnamed])])).unwrap_err();
    assert!(err.to_string().contains("invalid label name"), "{err}");

    // Not UTF-8 in a string field.
    let mut bytes = delimited(&[family("m\u{7f}", T::Gauge, vec![gauge()])]);
    let at = bytes.iter().position(|&b| b == 0x7f).unwrap();
    bytes[at] = 0xff;
    let err = pb(&bytes).unwrap_err();
    assert!(err.to_string().contains("decoding MetricFamily"), "{err}");

    assert_eq!(pb(&[]).unwrap(), vec![]);
}

// ---------------------------------------------------------------------------------------------
// Content negotiation
// ---------------------------------------------------------------------------------------------

#[test]
fn content_types_choose_parsers() {
    for (ct, format) in [
        ("text/plain; version=0.0.4; charset=utf-8", Format::Text),
        ("text/plain;version=1.0.0;escaping=allow-utf-8", Format::Text),
        ("text/plain", Format::Text),
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::OpenMetrics,
        ),
        ("application/openmetrics-text;version=0.0.1", Format::OpenMetrics),
        (
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
            Format::Protobuf,
        ),
        ("Application/Vnd.Google.Protobuf", Format::Protobuf),
    ] {
        assert_eq!(Format::from_content_type(ct), Ok(format), "{ct}");
        assert_eq!(parser_for(ct, b"").unwrap().format(), format);
    }
    assert_eq!(Format::from_content_type(""), Err(Error::BlankContentType));
    assert_eq!(
        Format::from_content_type("application/json").unwrap_err().to_string(),
        r#"received unsupported Content-Type "application/json""#
    );
    assert!(matches!(
        Format::from_content_type("text/plain; version"),
        Err(Error::InvalidContentType { .. })
    ));
    assert!(matches!(
        Format::from_content_type("text/"),
        Err(Error::InvalidContentType { .. })
    ));
    assert_eq!(
        Format::from_scrape_protocol("OpenMetricsText1.0.0"),
        Some(Format::OpenMetrics)
    );
    assert_eq!(Format::from_scrape_protocol("PrometheusProto"), Some(Format::Protobuf));
    assert_eq!(Format::from_scrape_protocol("PrometheusText0.0.4"), Some(Format::Text));
    assert_eq!(Format::from_scrape_protocol("Nope"), None);

    let mut p = parser_for("application/openmetrics-text", b"a 1\n# EOF\n").unwrap();
    assert!(matches!(p.next(), Ok(Some(Entry::Series(_)))));
}

// ---------------------------------------------------------------------------------------------
// Upstream corpus
// ---------------------------------------------------------------------------------------------

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/compat/prometheus/textparse"
);

/// What a corpus file holds: format by extension (`.om.txt` is OpenMetrics, `.prom.txt` the
/// text format). All four upstream samples are valid; upstream's benchmarks parse them.
fn corpus_files() -> Option<Vec<(String, Format, Vec<u8>)>> {
    let dir = Path::new(CORPUS);
    if !dir.is_dir() {
        eprintln!("skipping: corpus directory {} is absent", dir.display());
        return None;
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let format = if name.ends_with(".om.txt") {
            Format::OpenMetrics
        } else if name.ends_with(".prom.txt") {
            Format::Text
        } else {
            panic!("corpus file {name} has no known format; teach this test about it");
        };
        files.push((name, format, std::fs::read(&path).unwrap()));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Some(files)
}

#[test]
fn corpus_parses() {
    let Some(files) = corpus_files() else { return };
    assert!(!files.is_empty());
    for (name, format, body) in &files {
        let entries = collect(Parser::new(*format, body)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let series = entries.iter().filter(|e| matches!(e, E::Series(_))).count();
        let lines = body
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
            .count();
        assert_eq!(series, lines, "{name}: one series per sample line");
        // A text sample is also valid OpenMetrics exactly when it ends in `# EOF` (the
        // nometa file does), and then holds the same series.
        if *format == Format::Text {
            let as_om = collect(Parser::new(Format::OpenMetrics, body));
            if body.ends_with(b"# EOF\n") {
                let only_series = |es: Vec<E>| es.into_iter().filter(|e| matches!(e, E::Series(_))).collect::<Vec<_>>();
                assert_eq!(only_series(as_om.unwrap()), only_series(entries.clone()), "{name}");
            } else {
                assert!(as_om.is_err(), "{name} parsed as OpenMetrics");
            }
        }
    }
    // The file without metadata holds the same samples; without TYPE lines the `le` and
    // `quantile` values keep their exposed spelling.
    let find = |n: &str| &files.iter().find(|f| f.0 == n).unwrap().2;
    let with_meta = collect(Parser::new(Format::Text, find("alltypes.237mfs.prom.txt"))).unwrap();
    let without = collect(Parser::new(Format::Text, find("alltypes.237mfs.nometa.prom.txt"))).unwrap();
    let values = |es: &[E]| -> Vec<(String, u64)> {
        es.iter()
            .filter_map(|e| match e {
                E::Series(s) => Some((s.name.clone(), s.value.to_bits())),
                _ => None,
            })
            .collect()
    };
    assert_eq!(values(&with_meta), values(&without));
    let le = |es: &[E]| {
        es.iter().find_map(|e| match e {
            E::Series(s) if s.name == "go_gc_duration_seconds" => Some(s.labels[0].1.clone()),
            _ => None,
        })
    };
    assert_eq!(le(&with_meta).as_deref(), Some("0.0"));
    assert_eq!(le(&without).as_deref(), Some("0"));
}

#[test]
fn corpus_openmetrics_exemplars() {
    let Some(files) = corpus_files() else { return };
    let body = &files.iter().find(|f| f.0 == "alltypes.5mfs.om.txt").unwrap().2;
    let entries = collect(Parser::new(Format::OpenMetrics, body)).unwrap();
    let want = s(
        "rpc_durations_histogram_seconds_bucket",
        &[("le", "-0.0002899999999999998")],
        3.0,
    )
    .ex(&[("dummyID", "17783")], -0.0003825067330956884, Some(1726839814223));
    assert!(entries.contains(&want), "missing {want:?}");
    let created = s("rpc_requests_created", &[("service", "normal")], 1.726839813016717e9);
    assert!(entries.contains(&created));
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

#[test]
fn writer_output() {
    let mut w = TextWriter::new(Vec::new());
    w.write_help("http_requests_total", "Requests.\nWith a \\ backslash and \"quotes\".")
        .unwrap();
    w.write_type("http_requests_total", MetricType::Counter).unwrap();
    let labels = Labels::from_pairs([
        ("__name__", "http_requests_total"),
        ("code", "200"),
        ("path", "/a\"b\\c\nd"),
    ]);
    w.write_sample(&labels, 1027.0, Some(1395066363000)).unwrap();
    w.write_sample(&Labels::from_pairs([("__name__", "big")]), 8253063168.0, None)
        .unwrap();
    w.write_type("odd", MetricType::Stateset).unwrap();
    w.write_sample(&Labels::from_pairs([("__name__", "odd"), ("x", "1")]), f64::NAN, None)
        .unwrap();
    w.write_help("my.metric", "dotted").unwrap();
    w.write_sample(
        &Labels::from_pairs([("__name__", "my.metric"), ("my.label", "v")]),
        f64::NEG_INFINITY,
        None,
    )
    .unwrap();
    w.write_sample(&Labels::from_pairs([("__name__", "my.metric")]), 1e-7, None)
        .unwrap();
    let out = String::from_utf8(w.into_inner()).unwrap();
    assert_eq!(
        out,
        r#"# HELP http_requests_total Requests.\nWith a \\ backslash and "quotes".
# TYPE http_requests_total counter
http_requests_total{code="200",path="/a\"b\\c\nd"} 1027 1395066363000
big 8.253063168e+09
# TYPE odd untyped
odd{x="1"} NaN
# HELP "my.metric" dotted
{"my.metric","my.label"="v"} -Inf
{"my.metric"} 1e-07
"#
    );
    // What it writes parses back to the same entries.
    let parsed = text(&out).unwrap();
    assert!(parsed.contains(&help(
        "http_requests_total",
        "Requests.\nWith a \\ backslash and \"quotes\"."
    )));
    assert!(
        parsed.contains(
            &s(
                "http_requests_total",
                &[("code", "200"), ("path", "/a\"b\\c\nd")],
                1027.0
            )
            .ts(1395066363000)
        )
    );
    assert!(parsed.contains(&s("my.metric", &[("my.label", "v")], f64::NEG_INFINITY)));
}

fn arb_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
        // Any UTF-8 name but the reserved `__name__`.
        "\\PC{1,10}".prop_filter("reserved", |n| n != "__name__"),
    ]
}

fn arb_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        Just(0.0),
        (-1_000_000i64..1_000_000).prop_map(|v| v as f64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Writing then parsing gives back the same series.
    #[test]
    fn write_then_parse_round_trips(
        series in prop::collection::vec(
            (
                arb_name(),
                prop::collection::btree_map(arb_name(), "(\\PC|\n|\\\\|\"){1,12}", 0..4),
                arb_value(),
                prop::option::of(any::<i64>().prop_map(|t| t.unsigned_abs() as i64 & i64::MAX)),
            ),
            1..8,
        ),
        // A help of only blanks reads back as empty in the text format (upstream too).
        help_text in "(\\PC|\n|\\\\){0,20}".prop_filter("all blanks", |h| h.is_empty() || !h.chars().all(|c| c == ' ')),
    ) {
        let mut w = TextWriter::new(Vec::new());
        w.write_help(&series[0].0, &help_text).unwrap();
        let mut want = vec![help(&series[0].0, &help_text)];
        for (name, labels, value, ts) in &series {
            let mut pairs: Vec<(&str, &str)> = vec![("__name__", name)];
            pairs.extend(labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            let set = Labels::from_pairs(pairs);
            w.write_sample(&set, *value, *ts).unwrap();
            let mut e = s(name, &[], *value);
            if let E::Series(x) = &mut e {
                x.labels = set.iter().filter(|l| l.name != "__name__").map(|l| (l.name.to_owned(), l.value.to_owned())).collect();
                x.ts = *ts;
            }
            want.push(e);
        }
        let out = w.into_inner();
        let got = collect(Parser::new(Format::Text, &out)).map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&out))))?;
        prop_assert_eq!(got, want);
    }

    /// No input makes any parser panic.
    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..256)) {
        for format in [Format::Text, Format::OpenMetrics, Format::Protobuf] {
            drain(Parser::new(format, &input));
        }
    }

    /// Nor do small mutations of valid input, which reach deeper into the grammar.
    #[test]
    fn mutated_inputs_never_panic(
        pick in 0usize..3,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut input = match pick {
            0 => OM_INPUT.as_bytes().to_vec(),
            1 => b"# HELP a x\n# TYPE a histogram\na_bucket{le=\"1\",\"q.x\"=\"y\"} 1 2\n{\"b\"} NaN\n".to_vec(),
            _ => protobuf_sample(),
        };
        for (at, byte, op) in edits {
            if input.is_empty() {
                input.push(byte);
                continue;
            }
            let i = at.index(input.len());
            match op {
                0 => input[i] = byte,
                1 => input.insert(i, byte),
                _ => { input.remove(i); }
            }
        }
        let mut om_input = input.clone();
        om_input.extend_from_slice(b"# EOF\n");
        for format in [Format::Text, Format::OpenMetrics, Format::Protobuf] {
            drain(Parser::new(format, &input));
            drain(Parser::new(format, &om_input));
            // Skimming and completing every entry gives what `next` gives, broken or not
            // (`collect` compares them).
            let _ = collect(Parser::new(format, &input));
            let _ = collect(Parser::new(format, &om_input));
        }
    }

    /// A scrape completes only some of what it skims. The entries it completes are those
    /// `next` yields: skipping one (a `# TYPE` line, or a sample before a `# TYPE` line)
    /// changes nothing later, as `le` and `quantile` depend on the last `# TYPE` line.
    #[test]
    fn completing_some_skimmed_entries(
        pick in 0usize..2,
        complete in prop::collection::vec(any::<bool>(), 64),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
    ) {
        let mut input = match pick {
            0 => TEXT_HISTOGRAMS.as_bytes().to_vec(),
            _ => b"# HELP a x\n# TYPE a histogram\na_bucket{le=\"1\",\"q.x\"=\"y\"} 1 2\n{\"b\"} NaN\n# TYPE s summary\ns{quantile=\"1\"} 2\n".to_vec(),
        };
        let edited = !edits.is_empty();
        for (at, byte) in edits {
            let i = at.index(input.len());
            input[i] = byte;
        }
        let parsed = collect(Parser::new(Format::Text, &input));
        prop_assert!(edited || parsed.is_ok(), "{:?}", parsed);
        let Ok(all) = parsed else { return Ok(()) };
        if !edited && pick == 0 {
            prop_assert_eq!(&all[0], &help("q\nname", "Quoted, with a newline."));
            prop_assert_eq!(&all[3], &s("h_bucket", &[("le", "1.0")], 1.0));
            prop_assert_eq!(all.len(), 14);
        }
        let mut p = Parser::new(Format::Text, &input);
        let mut i = 0;
        while p.skim().unwrap().is_some() {
            if complete[i % complete.len()] {
                let got = own(p.entry().unwrap());
                prop_assert_eq!(&got, &all[i]);
            }
            i += 1;
        }
        prop_assert_eq!(i, all.len());
    }
}

/// Histograms and summaries whose `le` and `quantile` the parser normalizes by type.
const TEXT_HISTOGRAMS: &str = "# HELP \"q\nname\" Quoted, with a newline.\n# HELP h A histogram.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n# TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"1\",x=\"a\\\"}\"} 2\n# A comment.\nu{le=\"1\"} 4 17\n# HELP g Help with \\\\ and \\n.\ng 5\n";

fn drain(mut p: Parser<'_>) {
    for _ in 0..10_000 {
        match p.next() {
            Ok(Some(Entry::Series(s))) => {
                let _ = s.to_labels();
                let _ = s.duplicate_label();
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
    panic!("parser did not finish");
}

fn protobuf_sample() -> Vec<u8> {
    use proto::MetricType as T;
    delimited(&[
        family(
            "h",
            T::Histogram,
            vec![proto::Metric {
                label: vec![lp("a", "b")],
                histogram: Some(proto::Histogram {
                    sample_count: 3,
                    bucket: vec![bucket(1.0, 1), bucket(2.0, 2)],
                    ..Default::default()
                }),
                ..Default::default()
            }],
        ),
        family(
            "c",
            T::Counter,
            vec![proto::Metric {
                counter: Some(proto::Counter {
                    value: 1.0,
                    exemplar: Some(exemplar("x", 1.0, Some(1))),
                    ..Default::default()
                }),
                ..Default::default()
            }],
        ),
    ])
}
