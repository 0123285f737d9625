//! Lexical pieces the two text parsers share: character classes, quoted strings, escapes,
//! Go-compatible float parsing and the OpenMetrics float spelling of `le`/`quantile` values.

use std::fmt::Write;

use crate::MetricType;
use crate::error::{Error, syntax};
use crate::series::{Scratch, Span};

/// The NaN Prometheus stores for an exposed NaN (`value.NormalNaN`), so that no exposed value
/// can collide with the staleness marker's bit pattern.
pub(crate) const NORMAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

/// `v`, with any NaN replaced by the canonical one.
pub(crate) fn canonical_nan(v: f64) -> f64 {
    if v.is_nan() { f64::from_bits(NORMAL_NAN_BITS) } else { v }
}

/// Character classes as bit flags, one lookup per byte in the scanning loops.
const METRIC_START: u8 = 1;
const METRIC_CHAR: u8 = 2;
const LABEL_START: u8 = 4;
const LABEL_CHAR: u8 = 8;
/// Bytes that end a value token of the text format: `{`, blank, newline, NUL.
const TEXT_VALUE_END: u8 = 16;

static CLASSES: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let alpha = b.is_ascii_alphabetic() || b == b'_';
        let digit = b.is_ascii_digit();
        if alpha || b == b':' {
            t[i] |= METRIC_START | METRIC_CHAR;
        }
        if digit {
            t[i] |= METRIC_CHAR | LABEL_CHAR;
        }
        if alpha {
            t[i] |= LABEL_START | LABEL_CHAR;
        }
        if matches!(b, b'{' | b' ' | b'\t' | b'\n' | 0) {
            t[i] |= TEXT_VALUE_END;
        }
        i += 1;
    }
    t
}

/// First character of a legacy metric name: `[a-zA-Z_:]`.
pub(crate) fn is_metric_start(b: u8) -> bool {
    CLASSES[b as usize] & METRIC_START != 0
}

/// Later characters of a legacy metric name: `[a-zA-Z0-9_:]`.
pub(crate) fn is_metric_char(b: u8) -> bool {
    CLASSES[b as usize] & METRIC_CHAR != 0
}

/// First character of a legacy label name: `[a-zA-Z_]`.
pub(crate) fn is_label_start(b: u8) -> bool {
    CLASSES[b as usize] & LABEL_START != 0
}

/// Later characters of a legacy label name: `[a-zA-Z0-9_]`.
pub(crate) fn is_label_char(b: u8) -> bool {
    CLASSES[b as usize] & LABEL_CHAR != 0
}

/// Bytes that may continue a text-format value token (anything but `{`, blanks, newline, NUL).
pub(crate) fn is_text_value_char(b: u8) -> bool {
    CLASSES[b as usize] & TEXT_VALUE_END == 0
}

/// Index of the first `\n` at or after `pos`, or the input's length. Looks at eight bytes at a
/// time, since help texts and comments are long.
pub(crate) fn find_newline(input: &[u8], pos: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NEWLINES: u64 = ONES * b'\n' as u64;
    let Some(rest) = input.get(pos..) else {
        return input.len();
    };
    let mut chunks = rest.chunks_exact(8);
    let mut offset = pos;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks_exact yields 8 bytes"));
        let x = word ^ NEWLINES;
        if (x.wrapping_sub(ONES) & !x & HIGHS) != 0 {
            break;
        }
        offset += 8;
    }
    scan_while(input, offset, |b| b != b'\n')
}

/// `input[from..to]` as text. `whole` is the entire input when it is valid UTF-8 (checked once,
/// up front, which is much cheaper than checking every token); then only the slice's ends
/// need checking.
pub(crate) fn slice_str<'a>(input: &'a [u8], whole: Option<&'a str>, from: usize, to: usize) -> Option<&'a str> {
    match whole {
        Some(text) => text.get(from..to),
        None => std::str::from_utf8(input.get(from..to)?).ok(),
    }
}

/// End (exclusive) of the run starting at `pos` whose bytes satisfy `f`.
pub(crate) fn scan_while(input: &[u8], pos: usize, f: impl Fn(u8) -> bool) -> usize {
    match input.get(pos..) {
        Some(rest) => rest.iter().position(|&b| !f(b)).map_or(input.len(), |i| pos + i),
        None => input.len().max(pos),
    }
}

/// Where a quoted string may not go.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QuoteRules {
    /// A raw newline may appear inside (the text format allows it in every quoted string;
    /// OpenMetrics only in quoted names, not in label values).
    pub newline: bool,
    /// A NUL byte may appear inside. Upstream's lexer skips NULs in label values only; in
    /// quoted names a NUL ends the token.
    pub nul: bool,
}

/// Scans the quoted string that starts with the `"` at `pos`, following the lexers'
/// `"(\\.|[^\\"])*"`: a backslash escapes any byte but a newline. Returns the index just
/// past the closing quote, or `Err(index)` of the byte where the string became invalid
/// (the input's length if it ran out).
pub(crate) fn scan_quoted(input: &[u8], pos: usize, rules: QuoteRules) -> Result<usize, usize> {
    let mut i = pos + 1;
    while let Some(&b) = input.get(i) {
        match b {
            b'"' => return Ok(i + 1),
            b'\\' => match input.get(i + 1) {
                Some(b'\n') | None => return Err(i + 1),
                Some(0) if !rules.nul => return Err(i + 1),
                Some(_) => i += 2,
            },
            b'\n' if !rules.newline => return Err(i),
            0 if !rules.nul => return Err(i),
            _ => i += 1,
        }
    }
    Err(input.len())
}

/// Appends `s` to `out` with the escapes Prometheus resolves in label values, quoted names
/// and OpenMetrics help text: `\"`, `\\` and `\n`. Any other backslash is kept as it is,
/// as upstream's `strings.Replacer` does.
pub(crate) fn unescape_into(s: &str, out: &mut String) {
    unescape_with(s, out, true);
}

/// Appends text-format help to `out`: only `\\` and `\n` are escapes there.
pub(crate) fn unescape_help_into(s: &str, out: &mut String) {
    unescape_with(s, out, false);
}

fn unescape_with(s: &str, out: &mut String, quote: bool) {
    let bytes = s.as_bytes();
    if !bytes.contains(&b'\\') {
        out.push_str(s);
        return;
    }
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let replacement = match bytes.get(i + 1) {
                Some(b'\\') => Some('\\'),
                Some(b'n') => Some('\n'),
                Some(b'"') if quote => Some('"'),
                _ => None,
            };
            if let Some(c) = replacement {
                out.push_str(&s[start..i]);
                out.push(c);
                i += 2;
                start = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[start..]);
}

/// Why a number did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FloatError {
    /// `p`, `P` or `_`: Go would accept hex floats and digit separators, which Prometheus
    /// refuses in expositions.
    Unsupported,
    Syntax,
    Range,
}

impl FloatError {
    /// The message upstream gives, without Go's `strconv.ParseFloat:` prefix.
    pub(crate) fn describe(self, token: &[u8]) -> String {
        match self {
            FloatError::Unsupported => "unsupported character in float".to_owned(),
            FloatError::Syntax => format!("parsing {}: invalid syntax", quote_bytes(token)),
            FloatError::Range => format!("parsing {}: value out of range", quote_bytes(token)),
        }
    }
}

/// Parses an exposed value or OpenMetrics timestamp as Prometheus does (`parseFloat` in
/// promparse.go): Go's `strconv.ParseFloat` without hex floats or underscores.
pub(crate) fn parse_float(token: &[u8]) -> Result<f64, FloatError> {
    if let Some(v) = plain_decimal(token) {
        return Ok(v);
    }
    if token.iter().any(|&b| matches!(b, b'p' | b'P' | b'_')) {
        return Err(FloatError::Unsupported);
    }
    let s = std::str::from_utf8(token).map_err(|_| FloatError::Syntax)?;
    go_parse_float(s)
}

/// `token` if it is a plain decimal: an optional `-`, at most 15 digits with at most one `.`
/// among them, and an optional exponent (`e+06`, as Go prints large values) that leaves a
/// power of ten of at most 22 either way. That is the form of most exposed values. The
/// digits as an integer are exactly a double (below 2^53), so is the power of ten, and one
/// IEEE multiplication or division rounds correctly: the result is what a full parse gives
/// (Clinger's fast path), much sooner.
fn plain_decimal(token: &[u8]) -> Option<f64> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
        1e20, 1e21, 1e22,
    ];
    let (negative, rest) = match token.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, token),
    };
    let (mantissa, exponent) = match rest.iter().position(|&b| b == b'e' || b == b'E') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if mantissa.len() > 16 {
        return None;
    }
    let (mut m, mut digits, mut fraction) = (0u64, 0usize, None);
    for (i, &b) in mantissa.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                m = m * 10 + u64::from(b - b'0');
                digits += 1;
            }
            b'.' if fraction.is_none() => fraction = Some((mantissa.len() - 1 - i) as i32),
            _ => return None,
        }
    }
    if digits == 0 || digits > 15 {
        return None;
    }
    let mut power = -fraction.unwrap_or(0);
    if let Some(e) = exponent {
        let (sign, e) = match e.split_first()? {
            (b'-', e) => (-1, e),
            (b'+', e) => (1, e),
            _ => (1, e),
        };
        if e.is_empty() || e.len() > 3 || !e.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let e: i32 = e.iter().fold(0, |n, &b| n * 10 + i32::from(b - b'0'));
        power += sign * e;
    }
    let scale = *POW10.get(power.unsigned_abs() as usize)?;
    let v = if power >= 0 { m as f64 * scale } else { m as f64 / scale };
    Some(if negative { -v } else { v })
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal input: signs, `inf`/`infinity`/`nan` in any
/// case (NaN without a sign), and a range error where Go gives one (overflow to infinity).
pub(crate) fn go_parse_float(s: &str) -> Result<f64, FloatError> {
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return Ok(if negative { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if s.eq_ignore_ascii_case("nan") {
        return Ok(f64::NAN);
    }
    // Rust's grammar is Go's decimal grammar once the words and signs are dealt with; the
    // sign is stripped first so "+-1" stays invalid.
    if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return Err(FloatError::Syntax);
    }
    let v: f64 = unsigned.parse().map_err(|_| FloatError::Syntax)?;
    if v.is_infinite() {
        return Err(FloatError::Range);
    }
    Ok(if negative { -v } else { v })
}

/// Appends `v` as OpenMetrics spells floats (`labels.FormatOpenMetricsFloat` upstream):
/// Go's shortest `'g'` form (as [`watchfire_model::format_go_float`] prints it) with `.0`
/// added when it would otherwise look like an integer. Writes straight into `out`, since
/// every histogram bucket of a text exposition passes through here.
pub(crate) fn push_om_float(v: f64, out: &mut String) {
    if v == 0.0 {
        out.push_str("0.0");
        return;
    }
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    let start = out.len();
    // Rust's `{:e}` and `{}` print the shortest digits that round-trip, as Go's shortest mode.
    let _ = write!(out, "{v:e}");
    let e = out[start..]
        .rfind('e')
        .map(|i| start + i)
        .expect("`{:e}` output has an exponent");
    let exp: i32 = out[e + 1..].parse().expect("`{:e}` exponent is an integer");
    if (-4..6).contains(&exp) {
        out.truncate(start);
        let _ = write!(out, "{v}");
        if !out[start..].contains('.') {
            out.push_str(".0");
        }
    } else {
        // Go writes the exponent with a sign and at least two digits: 1e+06, 1.5e-07.
        out.truncate(e);
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs());
    }
}

/// `bytes` in double quotes, escaped the way Go's `%q` prints a byte slice, for messages.
pub(crate) fn quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        let quoted = watchfire_model::go_quote(chunk.valid());
        out.push_str(&quoted[1..quoted.len() - 1]);
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

/// The error for "expected `what` at byte `at`", worded as upstream's `parseError`: what was
/// found there and the entry so far (from `entry_start`).
pub(crate) fn expected(input: &[u8], entry_start: usize, at: usize, what: &str) -> Error {
    let got = match input.get(at) {
        None => "end of input".to_owned(),
        Some(&first) => {
            let mut end = at + 1;
            if !matches!(first, b' ' | b'\t' | b'\n') {
                while end < input.len() && end - at < 24 && !matches!(input[end], b' ' | b'\t' | b'\n') {
                    end += 1;
                }
            }
            quote_bytes(&input[at..end])
        }
    };
    while_parsing(input, entry_start, at, format!("{what}, got {got}"))
}

/// `message` followed by upstream's `while parsing: "<entry so far>"`, positioned at `at`.
pub(crate) fn while_parsing(input: &[u8], entry_start: usize, at: usize, message: String) -> Error {
    let end = (at + 1).min(input.len());
    let start = entry_start.min(end);
    syntax(
        input,
        at,
        format!("{message} while parsing: {}", quote_bytes(&input[start..end])),
    )
}

/// Rewrites the label value at `scratch.text[start..]` in OpenMetrics float spelling when it
/// parses as a float. Bucket bounds repeat across series, so results are cached.
fn normalize_float(scratch: &mut Scratch, start: usize) {
    let raw = &scratch.text[start..];
    if let Some(normal) = scratch.float_cache.get(raw) {
        let normal = normal.clone();
        scratch.text.truncate(start);
        scratch.text.push_str(&normal);
        return;
    }
    let Ok(v) = go_parse_float(raw) else { return };
    let raw: Box<str> = raw.into();
    scratch.text.truncate(start);
    push_om_float(v, &mut scratch.text);
    if scratch.float_cache.len() >= FLOAT_CACHE_LIMIT {
        scratch.float_cache.clear();
    }
    scratch.float_cache.insert(raw, scratch.text[start..].into());
}

/// Distinct `le`/`quantile` spellings remembered per parser; a page rarely has more than a
/// few dozen.
const FLOAT_CACHE_LIMIT: usize = 1024;

/// A label of the current series: unescapes `name` (when it was quoted) and `value` into
/// `scratch`, normalizing `le`/`quantile` as Prometheus 3 does (`normalizeFloatsInLabelValues`
/// in openmetricsparse.go): only for the histogram and summary types, and only when the value
/// parses as a float.
pub(crate) fn push_label(scratch: &mut Scratch, kind: MetricType, name: &str, quoted_name: bool, value: &str) {
    let name = if quoted_name {
        scratch.push_with(|t| unescape_into(name, t))
    } else {
        scratch.push(name)
    };
    let normalize = match scratch.str(&name) {
        "le" => kind == MetricType::Histogram,
        "quantile" => kind == MetricType::Summary,
        _ => false,
    };
    let start = scratch.text.len();
    unescape_into(value, &mut scratch.text);
    if normalize {
        normalize_float(scratch, start);
    }
    let value = start..scratch.text.len();
    scratch.labels.push(Span { name, value });
}

#[cfg(test)]
mod tests {
    use super::*;
    use watchfire_model::format_go_float;

    #[test]
    fn floats_follow_go() {
        assert_eq!(parse_float(b"1e3"), Ok(1000.0));
        assert_eq!(parse_float(b"-Inf"), Ok(f64::NEG_INFINITY));
        assert_eq!(parse_float(b"+inf"), Ok(f64::INFINITY));
        assert_eq!(parse_float(b"Infinity"), Ok(f64::INFINITY));
        assert!(parse_float(b"nan").unwrap().is_nan());
        assert_eq!(parse_float(b"+NaN"), Err(FloatError::Syntax));
        assert_eq!(parse_float(b"1_000"), Err(FloatError::Unsupported));
        assert_eq!(parse_float(b"0x1p-3"), Err(FloatError::Unsupported));
        assert_eq!(parse_float(b"0x10"), Err(FloatError::Syntax));
        assert_eq!(parse_float(b"1e400"), Err(FloatError::Range));
        assert_eq!(parse_float(b"1e-400"), Ok(0.0));
        assert_eq!(parse_float(b""), Err(FloatError::Syntax));
        assert_eq!(parse_float(b"1\t2"), Err(FloatError::Syntax));
        assert_eq!(parse_float(b".5"), Ok(0.5));
        assert_eq!(parse_float(b"5."), Ok(5.0));
        assert_eq!(parse_float(b"\xff"), Err(FloatError::Syntax));
    }

    #[test]
    fn plain_decimals_parse_as_the_full_parser_does() {
        for t in [
            "0",
            "-0",
            "5.",
            ".5",
            "-.5",
            "123456789012345",
            "0.00000000000001",
            "99.99",
            "1.5",
            "1e3",
            "1.5e+06",
            "-2.5E-7",
            "1e22",
            "1e-22",
            "123456789012345e7",
            ".5e1",
        ] {
            let fast = plain_decimal(t.as_bytes()).unwrap();
            assert_eq!(fast.to_bits(), go_parse_float(t).unwrap().to_bits(), "{t}");
        }
        for t in [
            "",
            "-",
            ".",
            "-.",
            "1.2.3",
            "+1",
            "1e",
            "1e+",
            "1e23",
            "1e-23",
            "1e1000",
            "e5",
            "1e5.0",
            "1234567890123456",
            "12345678901234.56",
            "1_0",
        ] {
            assert_eq!(plain_decimal(t.as_bytes()), None, "{t}");
        }
    }

    proptest::proptest! {
        #[test]
        fn plain_decimals_agree_with_the_full_parse(t in "-?[0-9]{0,16}(\\.[0-9]{0,16})?([eE][+-]?[0-9]{0,3})?") {
            let full = go_parse_float(&t).map(f64::to_bits);
            if let Some(fast) = plain_decimal(t.as_bytes()) {
                proptest::prop_assert_eq!(Ok(fast.to_bits()), full);
            }
            proptest::prop_assert_eq!(parse_float(t.as_bytes()).map(f64::to_bits), full);
        }
    }

    #[test]
    fn om_float_spelling() {
        for (v, s) in [
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-0.0, "0.0"),
            (-1.0, "-1.0"),
            (10.0, "10.0"),
            (0.25, "0.25"),
            (1e6, "1e+06"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            let mut out = String::new();
            push_om_float(v, &mut out);
            assert_eq!(out, s, "{v}");
        }
    }

    proptest::proptest! {
        #[test]
        fn om_float_is_go_g_format(v in proptest::num::f64::ANY) {
            let mut out = String::new();
            push_om_float(v, &mut out);
            let mut want = if v == 0.0 { "0".to_owned() } else { format_go_float(v) };
            if !want.contains(['.', 'e']) && !want.ends_with("Inf") && want != "NaN" {
                want.push_str(".0");
            }
            proptest::prop_assert_eq!(out, want);
        }
    }

    #[test]
    fn escapes_match_upstream_replacers() {
        let mut out = String::new();
        unescape_into(r#"a\"b\\c\nd\te\"#, &mut out);
        assert_eq!(out, "a\"b\\c\nd\\te\\");
        out.clear();
        unescape_help_into(r#"a\"b\\c\nd"#, &mut out);
        assert_eq!(out, "a\\\"b\\c\nd");
        out.clear();
        unescape_into(r"\\n", &mut out);
        assert_eq!(out, "\\n");
    }

    #[test]
    fn newline_search() {
        let text = b"0123456789abcdef\nxyz\n";
        assert_eq!(find_newline(text, 0), 16);
        assert_eq!(find_newline(text, 5), 16);
        assert_eq!(find_newline(text, 16), 16);
        assert_eq!(find_newline(text, 17), 20);
        assert_eq!(find_newline(text, 21), 21);
        assert_eq!(find_newline(text, 99), 21);
        assert_eq!(find_newline(b"no newline at all here", 0), 22);
        for (i, &b) in text.iter().enumerate() {
            assert_eq!(
                is_metric_char(b),
                b.is_ascii_alphanumeric() || b == b'_' || b == b':',
                "{i}"
            );
        }
    }

    #[test]
    fn quoted_strings() {
        let text = QuoteRules {
            newline: true,
            nul: true,
        };
        let om_value = QuoteRules {
            newline: false,
            nul: true,
        };
        assert_eq!(scan_quoted(br#""ab" x"#, 0, text), Ok(4));
        assert_eq!(scan_quoted(br#""a\"b""#, 0, text), Ok(6));
        assert_eq!(scan_quoted(b"\"a\nb\"", 0, text), Ok(5));
        assert_eq!(scan_quoted(b"\"a\nb\"", 0, om_value), Err(2));
        assert_eq!(scan_quoted(b"\"a\\\nb\"", 0, text), Err(3));
        assert_eq!(scan_quoted(b"\"ab", 0, text), Err(3));
    }

    #[test]
    fn quotes_bytes_like_go() {
        assert_eq!(quote_bytes(b"a\n\xff\""), r#""a\n\xff\"""#);
    }
}
