//! Token-level helpers that follow Prometheus' hand-written lexer (`promql/parser/lex.go`)
//! where the pest grammar alone cannot give upstream's answers:
//!
//! * validation of number/duration tokens (upstream accepts or rejects exactly what its
//!   `scanNumber`/`acceptRemainingDuration` scan, e.g. `0x1e` is rejected, `1_000` accepted);
//! * unquoting of string literals with Go's escapes;
//! * a small re-lexer used only after a syntax error, to say which token was unexpected and
//!   to report lexer errors (`unterminated quoted string`, `unclosed left parenthesis`, …)
//!   at the position upstream reports them.

use std::fmt::Write;

use watchfire_model::go_quote;

/// A cursor over the input with the `next`/`backup`/`peek` discipline of upstream's lexer,
/// where reading past the end yields `None` and a zero-width step.
struct Cursor<'a> {
    input: &'a str,
    pos: usize,
    width: usize,
}

impl<'a> Cursor<'a> {
    fn new(input: &'a str, pos: usize) -> Self {
        Cursor { input, pos, width: 0 }
    }

    fn next(&mut self) -> Option<char> {
        match self.input[self.pos..].chars().next() {
            Some(c) => {
                self.width = c.len_utf8();
                self.pos += self.width;
                Some(c)
            }
            None => {
                self.width = 0;
                None
            }
        }
    }

    fn backup(&mut self) {
        self.pos -= self.width;
    }

    fn peek(&mut self) -> Option<char> {
        let c = self.next();
        self.backup();
        c
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.next() {
            Some(c) if valid.contains(c) => true,
            _ => {
                self.backup();
                false
            }
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }
}

pub(crate) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_alpha(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_alnum(c: Option<char>) -> bool {
    c.is_some_and(|c| is_alpha(c) || c.is_ascii_digit())
}

const DEC_DIGITS: &str = "0123456789";
const HEX_DIGITS: &str = "0123456789abcdefABCDEF";

/// Upstream's `scanNumber`: scans decimal, hex and float syntax with `_` separators, and
/// requires that no letter or digit follows.
fn scan_number(c: &mut Cursor<'_>) -> bool {
    let initial = c.pos;
    let mut digits = DEC_DIGITS;
    if c.accept("0") && c.accept("xX") {
        c.accept("_");
        digits = HEX_DIGITS;
    }
    c.accept(".");
    c.accept(digits);
    let mut dot_seen = false;
    let mut exponent_seen = false;
    while let Some(next) = c.peek() {
        if !(digits.contains(next) || "._eE".contains(next)) {
            break;
        }
        if next == '.' && dot_seen {
            c.accept(".");
            return false;
        }
        if (next == 'e' || next == 'E') && exponent_seen {
            c.accept("eE");
            return false;
        }
        if c.accept(".") {
            dot_seen = true;
            if c.accept("_.") || digits.len() > 10 {
                // `1._`, `1..` and fractional hex literals are rejected.
                return false;
            }
            continue;
        }
        if c.accept("eE") {
            exponent_seen = true;
            c.accept("+-");
            if c.accept("._eE") || c.peek().is_none() {
                return false;
            }
            continue;
        }
        if c.accept("_") {
            if c.accept("._eE") || c.peek().is_none() {
                return false;
            }
            continue;
        }
        c.accept_run(digits);
    }
    if c.pos == initial {
        return false;
    }
    !is_alnum(c.peek())
}

/// Upstream's `acceptRemainingDuration`: after a number that was followed by a letter, accepts
/// unit letters and further `<digits><unit>` groups. Bad unit orders are left for the
/// duration parser to reject.
fn accept_remaining_duration(c: &mut Cursor<'_>) -> bool {
    if !c.accept("smhdwy") {
        return false;
    }
    c.accept("s");
    while c.accept(DEC_DIGITS) {
        c.accept_run(DEC_DIGITS);
        if !c.accept("smhdw") {
            return false;
        }
        c.accept("s");
    }
    !is_alnum(c.next())
}

/// What a number-or-duration token scanned as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumberKind {
    Number,
    Duration,
}

/// Scans a number or duration token starting at `start` as upstream does. Returns the kind
/// and end offset, or the end offset of the text upstream quotes in its
/// `bad number or duration syntax` error.
pub(crate) fn scan_number_or_duration(input: &str, start: usize) -> Result<(NumberKind, usize), usize> {
    let mut c = Cursor::new(input, start);
    if scan_number(&mut c) {
        return Ok((NumberKind::Number, c.pos));
    }
    if accept_remaining_duration(&mut c) {
        c.backup();
        return Ok((NumberKind::Duration, c.pos));
    }
    Err(c.pos)
}

/// Go's `underscoreOK`: underscores may only separate digits, or follow a base prefix.
fn underscores_ok(s: &str) -> bool {
    let b = s.as_bytes();
    // The last thing seen: b'^' start, b'0' a digit or base prefix, b'_' an underscore,
    // b'!' anything else.
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let ch = b[i];
        if ch.is_ascii_digit() || (hex && ch.is_ascii_hexdigit()) {
            saw = b'0';
        } else if ch == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Go's `strconv.ParseInt(s, 0, 64)` for an unsigned token: `0x`, `0o`, `0b` and leading-zero
/// octal prefixes, `_` separators.
fn parse_go_int(s: &str) -> Option<i64> {
    let lower = s.to_ascii_lowercase();
    let (base, digits) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if s.contains('_') && !underscores_ok(s) {
        return None;
    }
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() {
        return None;
    }
    i64::from_str_radix(&digits, base).ok()
}

/// The value of a NUMBER token as upstream's `parser.number` computes it: integer syntax
/// first (so `0755` is octal), then `strconv.ParseFloat`.
pub(crate) fn number_value(text: &str) -> Result<f64, String> {
    if let Some(n) = parse_go_int(text) {
        return Ok(n as f64);
    }
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "+inf" => return Ok(f64::INFINITY),
        "-inf" => return Ok(f64::NEG_INFINITY),
        "nan" => return Ok(f64::NAN),
        _ => {}
    }
    let invalid = || {
        format!(
            "error parsing number: strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(text)
        )
    };
    // Hexadecimal floats need a `p` exponent, which the lexer never lets through.
    if lower.starts_with("0x") || (text.contains('_') && !underscores_ok(text)) {
        return Err(invalid());
    }
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    let v: f64 = plain.parse().map_err(|_| invalid())?;
    if v.is_infinite() {
        return Err(format!(
            "error parsing number: strconv.ParseFloat: parsing {}: value out of range",
            go_quote(text)
        ));
    }
    Ok(v)
}

/// Go's `%q` of a rune: `'x'`.
pub(crate) fn quote_rune(c: char) -> String {
    match c {
        '\'' => "'\\''".to_owned(),
        '"' => "'\"'".to_owned(),
        c => {
            let q = go_quote(&c.to_string());
            format!("'{}'", &q[1..q.len() - 1])
        }
    }
}

/// Go's `%#U` of a rune: `U+0063 'c'`, without the character when it is not printable.
fn describe_rune(c: char) -> String {
    let mut s = format!("U+{:04X}", c as u32);
    if c == ' ' || !(c.is_control() || c.is_whitespace()) {
        let _ = write!(s, " '{c}'");
    }
    s
}

/// Go's `strconv.Quote` of a byte string: invalid UTF-8 bytes print as `\xNN`.
pub(crate) fn quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in bytes.utf8_chunks() {
        let q = go_quote(chunk.valid());
        out.push_str(&q[1..q.len() - 1]);
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
    out
}

fn digit_value(c: Option<char>) -> u32 {
    c.and_then(|c| c.to_digit(16)).unwrap_or(16)
}

/// Unquotes a string token (`"…"`, `'…'` or `` `…` ``) into bytes, with the checks of
/// upstream's `lexString`/`lexEscape`/`lexRawString`. Errors carry upstream's message; they are
/// reported at the start of the token.
pub(crate) fn unquote(token: &str) -> Result<Vec<u8>, String> {
    let mut chars = token.chars();
    let Some(quote) = chars.next() else {
        return Err("unterminated quoted string".to_owned());
    };
    if quote == '`' {
        let body = token.get(1..token.len().saturating_sub(1)).unwrap_or("");
        if !token.ends_with('`') || token.len() < 2 {
            return Err("unterminated raw string".to_owned());
        }
        if body.contains('\u{FFFD}') {
            return Err("invalid UTF-8 rune".to_owned());
        }
        return Ok(body.as_bytes().to_vec());
    }
    let mut out = Vec::with_capacity(token.len());
    let mut buf = [0u8; 4];
    loop {
        let Some(c) = chars.next() else {
            return Err("unterminated quoted string".to_owned());
        };
        match c {
            '\\' => {}
            '\u{FFFD}' => return Err("invalid UTF-8 rune".to_owned()),
            '\n' => return Err("unterminated quoted string".to_owned()),
            c if c == quote => break,
            c => {
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
        }
        let Some(esc) = chars.next() else {
            return Err("escape sequence not terminated".to_owned());
        };
        let simple = match esc {
            'a' => Some(0x07),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            c if c == quote => Some(c as u8),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        let (mut n, base, max, mut ch, is_byte) = match esc {
            '0'..='7' => (3, 8, 255, Some(esc), true),
            'x' => (2, 16, 255, chars.next(), true),
            'u' => (4, 16, 0x10FFFF, chars.next(), false),
            'U' => (8, 16, 0x10FFFF, chars.next(), false),
            other => return Err(format!("unknown escape sequence {}", describe_rune(other))),
        };
        let mut x: u32 = 0;
        while n > 0 {
            let d = digit_value(ch);
            if d >= base {
                return Err(match ch {
                    None => "escape sequence not terminated".to_owned(),
                    Some(c) => format!("illegal character {} in escape sequence", describe_rune(c)),
                });
            }
            x = x * base + d;
            n -= 1;
            if n > 0 {
                ch = chars.next();
            }
        }
        if x > max || (0xD800..0xE000).contains(&x) {
            return Err("escape sequence is an invalid Unicode code point".to_owned());
        }
        if is_byte {
            out.push(x as u8);
        } else {
            let c = char::from_u32(x).ok_or("escape sequence is an invalid Unicode code point")?;
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    if chars.next().is_some() {
        // The grammar only hands over whole tokens; trailing text means a quote inside.
        return Err("unterminated quoted string".to_owned());
    }
    Ok(out)
}

/// Token kinds, as far as error messages need them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Eof,
    Identifier,
    MetricIdentifier,
    Keyword,
    Operator,
    Aggregator,
    Preprocessor,
    Number,
    Duration,
    Str,
    /// `( ) { } [ ] , = :`
    Punct,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

#[derive(Clone, Debug)]
pub(crate) struct LexError {
    pub pos: usize,
    pub message: String,
}

/// Keyword classes, looked up case-insensitively as upstream does.
pub(crate) fn keyword_kind(word: &str) -> Option<Kind> {
    const OPERATORS: [&str; 4] = ["and", "or", "unless", "atan2"];
    const KEYWORDS: [&str; 13] = [
        "offset",
        "smoothed",
        "anchored",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "fill",
        "fill_left",
        "fill_right",
        "bool",
    ];
    const PREPROCESSORS: [&str; 6] = ["start", "end", "step", "range", "max_of", "min_of"];
    let lower = word.to_ascii_lowercase();
    let w = lower.as_str();
    if OPERATORS.contains(&w) {
        Some(Kind::Operator)
    } else if crate::ast::AggregateOp::from_keyword(w).is_some() {
        Some(Kind::Aggregator)
    } else if KEYWORDS.contains(&w) {
        Some(Kind::Keyword)
    } else if PREPROCESSORS.contains(&w) {
        Some(Kind::Preprocessor)
    } else if w == "inf" || w == "nan" {
        Some(Kind::Number)
    } else {
        None
    }
}

/// Describes a token the way upstream's `Item.desc()` does in "unexpected …" messages.
pub(crate) fn describe(input: &str, tok: &Token) -> String {
    let text = &input[tok.start..tok.end];
    let short = || {
        if text.chars().count() > 10 {
            let head: String = text.chars().take(10).collect();
            format!("{}...", go_quote(&head))
        } else {
            go_quote(text)
        }
    };
    match tok.kind {
        Kind::Eof => "end of input".to_owned(),
        Kind::Keyword => format!("<{text}>"),
        Kind::Operator => format!("<op:{text}>"),
        Kind::Aggregator => format!("<aggr:{text}>"),
        Kind::Preprocessor | Kind::Punct => short(),
        Kind::Identifier => format!("identifier {}", go_quote(text)),
        Kind::MetricIdentifier => format!("metric identifier {}", go_quote(text)),
        Kind::Number => format!("number {}", short()),
        Kind::Duration => format!("duration {}", short()),
        Kind::Str => format!("string {}", short()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Statements,
    InsideBraces,
    DurationExpr,
}

/// A re-implementation of upstream's expression lexer, used to explain syntax errors.
pub(crate) struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    state: State,
    paren_depth: i64,
    bracket_open: bool,
    got_colon: bool,
    got_duration: bool,
    done: bool,
}

type LexResult = Result<Token, LexError>;

impl<'a> Lexer<'a> {
    pub(crate) fn new(input: &'a str) -> Self {
        Lexer {
            input,
            pos: 0,
            state: State::Statements,
            paren_depth: 0,
            bracket_open: false,
            got_colon: false,
            got_duration: false,
            done: false,
        }
    }

    fn err(&mut self, pos: usize, message: String) -> LexResult {
        self.done = true;
        Err(LexError { pos, message })
    }

    fn tok(&mut self, kind: Kind, start: usize) -> LexResult {
        Ok(Token {
            kind,
            start,
            end: self.pos,
        })
    }

    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// The next token, skipping spaces and comments. After an error or end of input, keeps
    /// returning end of input.
    pub(crate) fn next_token(&mut self) -> LexResult {
        if self.done {
            return Ok(Token {
                kind: Kind::Eof,
                start: self.input.len(),
                end: self.input.len(),
            });
        }
        loop {
            let r = match self.state {
                State::Statements => self.lex_statement(),
                State::InsideBraces => self.lex_inside_braces(),
                State::DurationExpr => self.lex_duration_expr(),
            };
            match r {
                Ok(None) => continue,
                Ok(Some(t)) => {
                    if t.kind == Kind::Eof {
                        self.done = true;
                    }
                    return Ok(t);
                }
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
    }

    fn skip_comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' || c == '\r' {
                break;
            }
            self.bump();
        }
    }

    fn lex_statement(&mut self) -> Result<Option<Token>, LexError> {
        let start = self.pos;
        let Some(r) = self.bump() else {
            if self.paren_depth != 0 {
                return self.err(start, "unclosed left parenthesis".into()).map(Some);
            }
            if self.bracket_open {
                return self.err(start, "unclosed left bracket".into()).map(Some);
            }
            return self.tok(Kind::Eof, start).map(Some);
        };
        let t = match r {
            '#' => {
                self.skip_comment();
                return Ok(None);
            }
            c if is_space(c) => return Ok(None),
            ',' => Kind::Punct,
            '*' | '/' | '%' | '+' | '-' | '^' | '@' => Kind::Operator,
            '=' => match self.peek() {
                Some('=') => {
                    self.bump();
                    Kind::Operator
                }
                Some('~') => {
                    return self
                        .err(start, format!("unexpected character after '=': {}", quote_rune('~')))
                        .map(Some);
                }
                _ => Kind::Punct,
            },
            '!' => match self.bump() {
                Some('=') => Kind::Operator,
                other => {
                    let shown = other.map(quote_rune).unwrap_or_else(|| "U+FFFFFFFF".into());
                    return self
                        .err(start, format!("unexpected character after '!': {shown}"))
                        .map(Some);
                }
            },
            '<' | '>' => {
                if matches!(self.peek(), Some('=') | Some('/')) {
                    self.bump();
                }
                Kind::Operator
            }
            c if c.is_ascii_digit() || (c == '.' && self.peek().is_some_and(|d| d.is_ascii_digit())) => {
                match scan_number_or_duration(self.input, start) {
                    Ok((kind, end)) => {
                        self.pos = end;
                        match kind {
                            NumberKind::Number => Kind::Number,
                            NumberKind::Duration => Kind::Duration,
                        }
                    }
                    Err(end) => {
                        let text = &self.input[start..end];
                        return self
                            .err(start, format!("bad number or duration syntax: {}", go_quote(text)))
                            .map(Some);
                    }
                }
            }
            '"' | '\'' | '`' => return self.lex_string(start, r).map(Some),
            c if is_alpha(c) || c == ':' => {
                if !self.bracket_open {
                    return self.lex_word(start).map(Some);
                }
                if c == ':' {
                    if self.got_colon {
                        return self
                            .err(start, format!("unexpected colon {}", quote_rune(':')))
                            .map(Some);
                    }
                    self.got_colon = true;
                    Kind::Punct
                } else {
                    self.pos = start;
                    if let Some(k) = self.duration_keyword() {
                        k
                    } else {
                        return self
                            .err(
                                start,
                                format!("unexpected character: {}, expected {}", quote_rune(c), quote_rune(':')),
                            )
                            .map(Some);
                    }
                }
            }
            '(' => {
                self.paren_depth += 1;
                Kind::Punct
            }
            ')' => {
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    // Upstream emits the parenthesis and then reports the error just after it.
                    return self
                        .err(self.pos, format!("unexpected right parenthesis {}", quote_rune(')')))
                        .map(Some);
                }
                Kind::Punct
            }
            '{' => {
                self.state = State::InsideBraces;
                Kind::Punct
            }
            '[' => {
                if self.bracket_open {
                    return self
                        .err(start, format!("unexpected left bracket {}", quote_rune('[')))
                        .map(Some);
                }
                self.got_colon = false;
                self.got_duration = false;
                self.bracket_open = true;
                self.state = State::DurationExpr;
                Kind::Punct
            }
            ']' => {
                if !self.bracket_open {
                    return self
                        .err(start, format!("unexpected right bracket {}", quote_rune(']')))
                        .map(Some);
                }
                self.bracket_open = false;
                Kind::Punct
            }
            other => {
                return self
                    .err(start, format!("unexpected character: {}", quote_rune(other)))
                    .map(Some);
            }
        };
        self.tok(t, start).map(Some)
    }

    /// Scans `step`, `range`, `max_of` or `min_of` (any case) at the current position.
    fn duration_keyword(&mut self) -> Option<Kind> {
        let start = self.pos;
        while self.peek().is_some_and(is_alpha) {
            self.bump();
        }
        let word = self.input[start..self.pos].to_ascii_lowercase();
        if matches!(word.as_str(), "step" | "range" | "max_of" | "min_of") {
            Some(Kind::Preprocessor)
        } else {
            self.pos = start;
            None
        }
    }

    fn lex_word(&mut self, start: usize) -> LexResult {
        while self
            .peek()
            .is_some_and(|c| is_alpha(c) || c.is_ascii_digit() || c == ':')
        {
            self.bump();
        }
        let word = &self.input[start..self.pos];
        let kind = match keyword_kind(word) {
            Some(Kind::Keyword) if word.to_ascii_lowercase().starts_with("fill") => {
                // fill, fill_left and fill_right are keywords only before a parenthesis.
                let rest = self.input[self.pos..].trim_start_matches(is_space);
                if rest.starts_with('(') {
                    Kind::Keyword
                } else {
                    Kind::Identifier
                }
            }
            Some(k) => k,
            None if word.contains(':') => Kind::MetricIdentifier,
            None => Kind::Identifier,
        };
        self.tok(kind, start)
    }

    fn lex_string(&mut self, start: usize, quote: char) -> LexResult {
        loop {
            let Some(c) = self.bump() else {
                let msg = if quote == '`' {
                    "unterminated raw string"
                } else {
                    "unterminated quoted string"
                };
                return self.err(start, msg.into());
            };
            if c == quote {
                break;
            }
            if c == '\u{FFFD}' {
                return self.err(start, "invalid UTF-8 rune".into());
            }
            if quote != '`' {
                if c == '\n' {
                    return self.err(start, "unterminated quoted string".into());
                }
                if c == '\\' {
                    // Escapes are checked by `unquote` on the whole token below.
                    if self.bump().is_none() {
                        return self.err(start, "escape sequence not terminated".into());
                    }
                }
            }
        }
        if let Err(message) = unquote(&self.input[start..self.pos]) {
            return self.err(start, message);
        }
        self.tok(Kind::Str, start)
    }

    fn lex_inside_braces(&mut self) -> Result<Option<Token>, LexError> {
        let start = self.pos;
        let Some(r) = self.bump() else {
            return self
                .err(start, "unexpected end of input inside braces".into())
                .map(Some);
        };
        let kind = match r {
            '#' => {
                self.skip_comment();
                return Ok(None);
            }
            c if is_space(c) => return Ok(None),
            c if is_alpha(c) => {
                while self.peek().is_some_and(|c| is_alpha(c) || c.is_ascii_digit()) {
                    self.bump();
                }
                Kind::Identifier
            }
            ',' => Kind::Punct,
            '"' | '\'' | '`' => return self.lex_string(start, r).map(Some),
            '=' => {
                if self.peek() == Some('~') {
                    self.bump();
                    Kind::Operator
                } else {
                    Kind::Punct
                }
            }
            '!' => match self.bump() {
                Some('~') | Some('=') => Kind::Operator,
                other => {
                    let shown = other.map(quote_rune).unwrap_or_else(|| "U+FFFFFFFF".into());
                    return self
                        .err(start, format!("unexpected character after '!' inside braces: {shown}"))
                        .map(Some);
                }
            },
            '{' => {
                return self
                    .err(start, format!("unexpected left brace {}", quote_rune('{')))
                    .map(Some);
            }
            '}' => {
                self.state = State::Statements;
                Kind::Punct
            }
            other => {
                return self
                    .err(
                        start,
                        format!("unexpected character inside braces: {}", quote_rune(other)),
                    )
                    .map(Some);
            }
        };
        self.tok(kind, start).map(Some)
    }

    fn lex_duration_expr(&mut self) -> Result<Option<Token>, LexError> {
        let start = self.pos;
        let Some(r) = self.bump() else {
            return self
                .err(start, "unexpected end of input in duration expression".into())
                .map(Some);
        };
        let kind = match r {
            c if is_space(c) => return Ok(None),
            ']' => {
                self.bracket_open = false;
                self.got_colon = false;
                self.state = State::Statements;
                Kind::Punct
            }
            ':' => {
                if !self.got_duration {
                    return self
                        .err(
                            self.pos,
                            "unexpected colon before duration in duration expression".into(),
                        )
                        .map(Some);
                }
                if self.got_colon {
                    return self
                        .err(self.pos, "unexpected repeated colon in duration expression".into())
                        .map(Some);
                }
                self.got_colon = true;
                Kind::Punct
            }
            '(' => {
                self.paren_depth += 1;
                Kind::Punct
            }
            ')' => {
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return self
                        .err(self.pos, format!("unexpected right parenthesis {}", quote_rune(')')))
                        .map(Some);
                }
                Kind::Punct
            }
            '+' | '-' | '*' | '/' | '%' | '^' => Kind::Operator,
            ',' => Kind::Punct,
            c if c.is_ascii_digit() || (c == '.' && self.peek().is_some_and(|d| d.is_ascii_digit())) => {
                self.got_duration = true;
                self.pos = start;
                self.state = State::Statements;
                return self.lex_statement();
            }
            c if matches!(c.to_ascii_lowercase(), 's' | 'r' | 'm') => {
                self.pos = start;
                match self.duration_keyword() {
                    Some(k) => k,
                    None => {
                        return self
                            .err(
                                start,
                                format!("unexpected character in duration expression: {}", quote_rune(c)),
                            )
                            .map(Some);
                    }
                }
            }
            other => {
                return self
                    .err(
                        start,
                        format!("unexpected character in duration expression: {}", quote_rune(other)),
                    )
                    .map(Some);
            }
        };
        self.tok(kind, start).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(s: &str) -> Result<(NumberKind, usize), usize> {
        scan_number_or_duration(s, 0)
    }

    #[test]
    fn numbers_scan_like_upstream() {
        assert_eq!(scan("1"), Ok((NumberKind::Number, 1)));
        assert_eq!(scan("1.5e-3 "), Ok((NumberKind::Number, 6)));
        assert_eq!(scan("0x1F)"), Ok((NumberKind::Number, 4)));
        assert_eq!(scan("1_000"), Ok((NumberKind::Number, 5)));
        assert_eq!(scan("5m]"), Ok((NumberKind::Duration, 2)));
        assert_eq!(scan("1h30m"), Ok((NumberKind::Duration, 5)));
        assert_eq!(scan("1m30ms"), Ok((NumberKind::Duration, 6)));
        assert_eq!(scan("2.5."), Err(4));
        assert_eq!(scan("100..4"), Err(5));
        assert_eq!(scan("0deadbeef"), Err(3));
        assert_eq!(scan("5mm"), Err(3));
        // In hex mode `e` is taken as an exponent, so a trailing `e` is an error upstream.
        assert!(scan("0x1e").is_err());
        assert!(scan("1__0").is_err());
        assert!(scan("1_").is_err());
    }

    #[test]
    fn number_values() {
        assert_eq!(number_value("0755"), Ok(493.0));
        assert_eq!(number_value("08"), Ok(8.0));
        assert_eq!(number_value("0x1F"), Ok(31.0));
        assert_eq!(number_value("1_000.5"), Ok(1000.5));
        assert_eq!(number_value(".5"), Ok(0.5));
        assert_eq!(number_value("5."), Ok(5.0));
        assert_eq!(number_value("Inf"), Ok(f64::INFINITY));
        assert!(number_value("nAn").unwrap().is_nan());
        assert!(number_value("1e400").unwrap_err().contains("value out of range"));
        assert!(number_value("0x").is_err());
    }

    #[test]
    fn strings_unquote_with_go_escapes() {
        assert_eq!(unquote(r#""a\tb\"c""#).unwrap(), b"a\tb\"c");
        assert_eq!(unquote(r"'it\'s'").unwrap(), b"it's");
        assert_eq!(unquote(r#""\u00e9\x41\101""#).unwrap(), "éAA".as_bytes());
        assert_eq!(unquote(r#""a\xc5z""#).unwrap(), b"a\xc5z");
        assert_eq!(unquote("`a\\n\nb`").unwrap(), b"a\\n\nb");
        assert_eq!(unquote(r#""\c""#).unwrap_err(), "unknown escape sequence U+0063 'c'");
        assert_eq!(
            unquote(r#""\x.""#).unwrap_err(),
            "illegal character U+002E '.' in escape sequence"
        );
        assert!(unquote(r#""\'""#).is_err());
        assert!(unquote(r#""\ud800""#).is_err());
        assert!(unquote(r#""\400""#).is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_bytes(b"a\xc5z"), r#""a\xc5z""#);
        assert_eq!(quote_rune('}'), "'}'");
        assert_eq!(quote_rune('\''), r"'\''");
    }

    fn kinds(input: &str) -> Vec<Kind> {
        let mut l = Lexer::new(input);
        let mut out = Vec::new();
        loop {
            let t = l.next_token().unwrap();
            out.push(t.kind);
            if t.kind == Kind::Eof {
                return out;
            }
        }
    }

    #[test]
    fn relexer_tokens_and_errors() {
        use Kind::*;
        assert_eq!(
            kinds("sum by (a) (x{b=~\"c\"}[5m:1m]) # c"),
            [
                Aggregator, Keyword, Punct, Identifier, Punct, Punct, Identifier, Punct, Identifier, Operator, Str,
                Punct, Punct, Duration, Punct, Duration, Punct, Punct, Eof
            ]
        );
        assert_eq!(kinds("fill + fill(1) x")[..4], [Identifier, Operator, Keyword, Punct]);
        let mut l = Lexer::new("((1)");
        let err = loop {
            match l.next_token() {
                Ok(t) if t.kind == Eof => panic!("expected an error"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert_eq!((err.pos, err.message.as_str()), (4, "unclosed left parenthesis"));
    }
}
