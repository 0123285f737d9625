//! Alertmanager's label matchers: the `matchers:` list syntax of routes and inhibit rules, the
//! legacy `match`/`match_re` maps, and the matcher type the dispatcher and inhibitor evaluate.
//!
//! Two grammars exist upstream and both are implemented here:
//!
//! * the UTF-8 grammar of `matcher/parse` (names and values are unquoted runs without reserved
//!   characters or Go-quoted strings; optional braces; one trailing comma allowed), and
//! * the classic grammar of `pkg/labels/parse.go` (PromQL-like names, values optionally quoted,
//!   OpenMetrics escapes, lone backslashes kept).
//!
//! Alertmanager runs in "fallback" mode unless a feature flag says otherwise: it parses with the
//! UTF-8 grammar and falls back to the classic one when that fails or when the two disagree.
//! [`parse_matchers`] and [`parse_matcher`] do exactly that; [`Mode`] selects the strict modes.
//!
//! Regular expressions are anchored the Alertmanager way, `^(?:re)$` (unlike Prometheus 3's
//! `^(?s:re)$`, `.` does not match a newline here).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use watchfire_model::{MatchType, go_quote, is_valid_legacy_label_name};

/// A compiled Alertmanager matcher: `name`, operator, `value`.
#[derive(Clone)]
pub struct AmMatcher {
    /// The label name.
    pub name: String,
    /// The operator (`=`, `!=`, `=~`, `!~`).
    pub kind: MatchType,
    /// The value, or the regular expression as written (unanchored).
    pub value: String,
    regex: Option<Regex>,
}

/// Compiles `re` anchored as Alertmanager does (`^(?:re)$`, pkg/labels/matcher.go NewMatcher).
pub fn anchored_regex(re: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{re})$")).map_err(|e| regex_error(re, &e))
}

/// A one-line message for a regex syntax error (the regex crate's own is a multi-line drawing).
fn regex_error(re: &str, e: &regex::Error) -> String {
    let detail = match e {
        regex::Error::Syntax(text) => text
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("error:").map(str::trim))
            .unwrap_or(text.as_str())
            .to_owned(),
        other => other.to_string(),
    };
    format!("error parsing regexp: {detail}: `{re}`")
}

impl AmMatcher {
    /// A matcher; a regular expression is compiled (and checked) here.
    pub fn new(kind: MatchType, name: impl Into<String>, value: impl Into<String>) -> Result<Self, String> {
        let value = value.into();
        let regex = match kind {
            MatchType::Regex | MatchType::NotRegex => Some(anchored_regex(&value)?),
            MatchType::Equal | MatchType::NotEqual => None,
        };
        Ok(AmMatcher {
            name: name.into(),
            kind,
            value,
            regex,
        })
    }

    /// Whether a label value (the empty string for an absent label) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self.kind {
            MatchType::Equal => value == self.value,
            MatchType::NotEqual => value != self.value,
            MatchType::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchType::NotRegex => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// The compiled, anchored regular expression of a regex matcher.
    pub fn regex(&self) -> Option<&Regex> {
        self.regex.as_ref()
    }
}

impl PartialEq for AmMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.kind == other.kind && self.value == other.value
    }
}

impl Eq for AmMatcher {}

impl std::hash::Hash for AmMatcher {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.kind.hash(state);
        self.value.hash(state);
    }
}

/// The characters that force quoting of a name in the UTF-8 grammar.
fn is_reserved(c: char) -> bool {
    c.is_whitespace() || "{}!=~,\\\"'`".contains(c)
}

fn kind_rank(k: MatchType) -> u8 {
    match k {
        MatchType::Equal => 0,
        MatchType::NotEqual => 1,
        MatchType::Regex => 2,
        MatchType::NotRegex => 3,
    }
}

/// Alertmanager's matcher order (pkg/labels Matchers.Less): name, then value, then operator.
pub fn compare(a: &AmMatcher, b: &AmMatcher) -> Ordering {
    a.name
        .cmp(&b.name)
        .then_with(|| a.value.cmp(&b.value))
        .then_with(|| kind_rank(a.kind).cmp(&kind_rank(b.kind)))
}

impl fmt::Display for AmMatcher {
    /// As Alertmanager prints a matcher: `name="value"` with `\`, newline and `"` escaped, or
    /// both sides Go-quoted when the name holds a reserved character.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.chars().any(is_reserved) {
            return write!(f, "{}{}{}", go_quote(&self.name), self.kind, go_quote(&self.value));
        }
        write!(f, "{}{}\"", self.name, self.kind)?;
        for c in self.value.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '"' => f.write_str("\\\"")?,
                c => fmt::Write::write_char(f, c)?,
            }
        }
        f.write_str("\"")
    }
}

impl fmt::Debug for AmMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Prints a matcher list as Alertmanager does: `{a="1",b=~"x"}`.
pub fn format_matchers(ms: &[AmMatcher]) -> String {
    let inner: Vec<String> = ms.iter().map(ToString::to_string).collect();
    format!("{{{}}}", inner.join(","))
}

/// Which grammar to parse matcher strings with (upstream's `--enable-feature` modes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// The default: UTF-8 grammar, falling back to the classic one.
    #[default]
    Fallback,
    /// `utf8-strict-mode`: the UTF-8 grammar only.
    Utf8Strict,
    /// `classic-mode`: the classic grammar only.
    Classic,
}

/// Parses a matcher list (`{a="b", c=~"d"}`, braces optional) in the default fallback mode.
pub fn parse_matchers(input: &str) -> Result<Vec<AmMatcher>, String> {
    parse_matchers_with(Mode::Fallback, input)
}

/// Parses exactly one matcher (no braces) in the default fallback mode.
pub fn parse_matcher(input: &str) -> Result<AmMatcher, String> {
    parse_matcher_with(Mode::Fallback, input)
}

/// Parses a matcher list with the grammar of `mode` (upstream matcher/compat).
pub fn parse_matchers_with(mode: Mode, input: &str) -> Result<Vec<AmMatcher>, String> {
    match mode {
        Mode::Utf8Strict => parse_matchers_utf8(input),
        Mode::Classic => parse_matchers_classic(input),
        Mode::Fallback => match (parse_matchers_utf8(input), parse_matchers_classic(input)) {
            // Upstream returns the classic parser's error when both fail.
            (Err(_), Err(classic)) => Err(classic),
            (Err(_), Ok(classic)) => Ok(classic),
            // On disagreement the classic result wins, as upstream.
            (Ok(utf8), Ok(classic)) if utf8 != classic => Ok(classic),
            (Ok(utf8), _) => Ok(utf8),
        },
    }
}

/// Parses exactly one matcher with the grammar of `mode`.
pub fn parse_matcher_with(mode: Mode, input: &str) -> Result<AmMatcher, String> {
    let braces = || input.starts_with('{') || input.ends_with('}');
    match mode {
        Mode::Classic => parse_matcher_classic(input),
        Mode::Utf8Strict => {
            if braces() {
                return Err(format!("unexpected open or close brace: {input}"));
            }
            parse_matcher_utf8(input)
        }
        Mode::Fallback => {
            if braces() {
                return Err(format!("unexpected open or close brace: {input}"));
            }
            match (parse_matcher_utf8(input), parse_matcher_classic(input)) {
                (Err(_), Err(classic)) => Err(classic),
                (Err(_), Ok(classic)) => Ok(classic),
                (Ok(utf8), Ok(classic)) if utf8 != classic => Ok(classic),
                (Ok(utf8), _) => Ok(utf8),
            }
        }
    }
}

/// Whether `name` is a valid label name for `mode`: any non-empty string unless classic.
pub fn is_valid_label_name(mode: Mode, name: &str) -> bool {
    match mode {
        Mode::Classic => is_valid_legacy_label_name(name),
        Mode::Fallback | Mode::Utf8Strict => !name.is_empty(),
    }
}

// ---------------------------------------------------------------------------------------------
// The classic grammar (pkg/labels/parse.go).

/// `name op value`, with RE2's ASCII `\s` for blanks and a lazy value so trailing blanks drop.
static CLASSIC_MATCHER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[\t\n\f\r ]*([a-zA-Z_:][a-zA-Z0-9_:]*)[\t\n\f\r ]*(=~|=|!=|!~)[\t\n\f\r ]*((?s).*?)[\t\n\f\r ]*$")
        .expect("the classic matcher pattern is a valid regex")
});

/// Parses a matcher list with the classic grammar.
pub fn parse_matchers_classic(input: &str) -> Result<Vec<AmMatcher>, String> {
    let s = input.strip_prefix('{').unwrap_or(input);
    let s = s.strip_suffix('}').unwrap_or(s);
    let mut tokens = Vec::new();
    let mut token = String::new();
    let (mut inside_quotes, mut escaped) = (false, false);
    for c in s.chars() {
        match c {
            ',' if !inside_quotes => {
                tokens.push(std::mem::take(&mut token));
                continue;
            }
            // A comma inside quotes leaves the escape state alone, as upstream.
            ',' => {}
            '"' => {
                if escaped {
                    escaped = false;
                } else {
                    inside_quotes = !inside_quotes;
                }
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(c);
    }
    let last = token.trim();
    if !last.is_empty() {
        tokens.push(last.to_owned());
    }
    tokens.iter().map(|t| parse_matcher_classic(t)).collect()
}

/// Parses one matcher with the classic grammar.
pub fn parse_matcher_classic(input: &str) -> Result<AmMatcher, String> {
    let caps = CLASSIC_MATCHER
        .captures(input)
        .ok_or_else(|| format!("bad matcher format: {input}"))?;
    let (name, op, raw) = (&caps[1], &caps[2], &caps[3]);
    let kind = MatchType::parse(op).map_err(|e| e.to_string())?;
    let unescaped_quote = || format!("matcher value contains unescaped double quote: {raw}");
    let (body, mut expect_trailing_quote) = match raw.strip_prefix('"') {
        Some(rest) => (rest, true),
        None => (raw, false),
    };
    let mut value = String::with_capacity(body.len());
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        let last = i + c.len_utf8() == body.len();
        if escaped {
            escaped = false;
            match c {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(c),
                // A spurious escape keeps its backslash.
                _ => {
                    value.push('\\');
                    value.push(c);
                }
            }
            continue;
        }
        match c {
            '\\' if !last => escaped = true,
            '\\' => value.push('\\'),
            '"' => {
                if !expect_trailing_quote || !last {
                    return Err(unescaped_quote());
                }
                expect_trailing_quote = false;
            }
            c => value.push(c),
        }
    }
    if expect_trailing_quote {
        return Err(unescaped_quote());
    }
    AmMatcher::new(kind, name, value)
}

// ---------------------------------------------------------------------------------------------
// The UTF-8 grammar (matcher/parse): a lexer and a small state machine, with upstream's
// messages, including their `start:end` column prefixes (columns count characters).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Eof,
    OpenBrace,
    CloseBrace,
    Comma,
    Equals,
    NotEquals,
    Matches,
    NotMatches,
    Quoted,
    Unquoted,
}

#[derive(Clone, Copy, Debug, Default)]
struct Span {
    offset_start: usize,
    offset_end: usize,
    column_start: usize,
    column_end: usize,
}

#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    kind: Tok,
    value: &'a str,
    span: Span,
}

impl Token<'_> {
    const EOF: Token<'static> = Token {
        kind: Tok::Eof,
        value: "",
        span: Span {
            offset_start: 0,
            offset_end: 0,
            column_start: 0,
            column_end: 0,
        },
    };

    /// The token's text, unquoted if it is a quoted string.
    fn unquote(&self) -> Option<String> {
        match self.kind {
            Tok::Quoted => go_unquote(self.value),
            _ => Some(self.value.to_owned()),
        }
    }
}

/// A parse failure: the end of input where more was needed, or a message.
#[derive(Clone, Debug)]
enum Failure {
    Eof,
    Msg(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Eof => f.write_str("end of input"),
            Failure::Msg(m) => f.write_str(m),
        }
    }
}

struct Lexer<'a> {
    input: &'a str,
    err: Option<String>,
    start: usize,
    pos: usize,
    width: usize,
    column: usize,
    cols: usize,
}

impl<'a> Lexer<'a> {
    fn new(input: &'a str) -> Self {
        Lexer {
            input,
            err: None,
            start: 0,
            pos: 0,
            width: 0,
            column: 0,
            cols: 0,
        }
    }

    fn span(&self) -> Span {
        Span {
            offset_start: self.start,
            offset_end: self.pos,
            column_start: self.column,
            column_end: self.cols,
        }
    }

    fn next(&mut self) -> Option<char> {
        let c = self.input[self.pos..].chars().next();
        self.width = c.map_or(0, char::len_utf8);
        if c.is_some() {
            self.pos += self.width;
            self.cols += 1;
        }
        c
    }

    fn rewind(&mut self) {
        self.pos -= self.width;
        if self.width > 0 {
            self.cols -= 1;
        }
    }

    fn skip(&mut self) {
        self.start = self.pos;
        self.column = self.cols;
    }

    fn accept(&mut self, valid: &str) -> bool {
        if self.next().is_some_and(|c| valid.contains(c)) {
            return true;
        }
        self.rewind();
        false
    }

    fn emit(&mut self, kind: Tok) -> Token<'a> {
        let t = Token {
            kind,
            value: &self.input[self.start..self.pos],
            span: self.span(),
        };
        self.start = self.pos;
        self.column = self.cols;
        t
    }

    fn expected(&self, expected: &str) -> String {
        let s = self.span();
        if s.offset_end >= self.input.len() {
            format!(
                "{}:{}: unexpected end of input, expected one of '{expected}'",
                s.column_start, s.column_end
            )
        } else {
            format!(
                "{}:{}: {}: expected one of '{expected}'",
                s.column_start,
                s.column_end,
                &self.input[s.offset_start..s.offset_end]
            )
        }
    }

    fn scan(&mut self) -> Result<Token<'a>, String> {
        if let Some(e) = &self.err {
            return Err(e.clone());
        }
        while let Some(c) = self.next() {
            let result = match c {
                '{' => Ok(self.emit(Tok::OpenBrace)),
                '}' => Ok(self.emit(Tok::CloseBrace)),
                ',' => Ok(self.emit(Tok::Comma)),
                '=' | '!' => {
                    self.rewind();
                    self.scan_operator()
                }
                '"' => {
                    self.rewind();
                    self.scan_quoted()
                }
                c if !is_reserved(c) => {
                    self.rewind();
                    Ok(self.scan_unquoted())
                }
                c if c.is_whitespace() => {
                    self.skip();
                    continue;
                }
                _ => {
                    let s = self.span();
                    Err(format!(
                        "{}:{}: {}: invalid input",
                        s.column_start,
                        s.column_end,
                        &self.input[s.offset_start..s.offset_end]
                    ))
                }
            };
            if let Err(e) = &result {
                self.err = Some(e.clone());
            }
            return result;
        }
        Ok(Token::EOF)
    }

    fn scan_operator(&mut self) -> Result<Token<'a>, String> {
        if self.accept("!") {
            if self.accept("=") {
                return Ok(self.emit(Tok::NotEquals));
            }
            if self.accept("~") {
                return Ok(self.emit(Tok::NotMatches));
            }
            return Err(self.expected("=~"));
        }
        if self.accept("=") {
            if self.accept("~") {
                return Ok(self.emit(Tok::Matches));
            }
            return Ok(self.emit(Tok::Equals));
        }
        Err(self.expected("!="))
    }

    fn scan_quoted(&mut self) -> Result<Token<'a>, String> {
        if !self.accept("\"") {
            return Err(self.expected("\""));
        }
        let mut escaped = false;
        while let Some(c) = self.next() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                self.rewind();
                break;
            }
        }
        if !self.accept("\"") {
            let s = self.span();
            return Err(format!(
                "{}:{}: {}: missing end \"",
                s.column_start,
                s.column_end,
                &self.input[s.offset_start..s.offset_end]
            ));
        }
        Ok(self.emit(Tok::Quoted))
    }

    fn scan_unquoted(&mut self) -> Token<'a> {
        while let Some(c) = self.next() {
            if is_reserved(c) {
                self.rewind();
                break;
            }
        }
        self.emit(Tok::Unquoted)
    }

    /// The next token without consuming it (a lexing error stays recorded).
    fn peek(&mut self) -> Result<Token<'a>, String> {
        let saved = (self.start, self.pos, self.width, self.column, self.cols);
        let t = self.scan();
        (self.start, self.pos, self.width, self.column, self.cols) = saved;
        t
    }
}

#[derive(Clone, Copy)]
enum State {
    OpenBrace,
    CloseBrace,
    Matcher,
    EndOfMatcher,
    Comma,
    Eof,
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    has_open_brace: bool,
    matchers: Vec<AmMatcher>,
}

impl<'a> Parser<'a> {
    fn expect_peek(&mut self, kinds: &[Tok]) -> Result<Token<'a>, Failure> {
        let t = self.lexer.peek().map_err(Failure::Msg)?;
        if t.kind == Tok::Eof {
            return Err(Failure::Eof);
        }
        if !kinds.contains(&t.kind) {
            return Err(Failure::Msg(format!(
                "{}:{}: unexpected {}",
                t.span.column_start, t.span.column_end, t.value
            )));
        }
        Ok(t)
    }

    fn expect(&mut self, kinds: &[Tok]) -> Result<Token<'a>, Failure> {
        let t = self.expect_peek(kinds)?;
        self.lexer.scan().map_err(Failure::Msg)?;
        Ok(t)
    }

    fn accept_peek(&mut self, kind: Tok) -> Result<bool, Failure> {
        let t = self.lexer.peek().map_err(Failure::Msg)?;
        if t.kind == Tok::Eof {
            return Err(Failure::Eof);
        }
        Ok(t.kind == kind)
    }

    fn step(&mut self, state: State) -> Result<Option<State>, String> {
        let next = match state {
            State::OpenBrace => {
                match self.accept_peek(Tok::OpenBrace) {
                    Err(Failure::Eof) => return Ok(Some(State::Eof)),
                    Err(Failure::Msg(e)) => return Err(e),
                    Ok(true) => {
                        self.has_open_brace = true;
                        self.lexer.scan()?;
                    }
                    Ok(false) => {}
                }
                match self.accept_peek(Tok::CloseBrace) {
                    Err(Failure::Eof) | Ok(true) => State::CloseBrace,
                    Err(Failure::Msg(e)) => return Err(e),
                    Ok(false) => State::Matcher,
                }
            }
            State::CloseBrace => {
                if self.has_open_brace {
                    if let Err(e) = self.expect(&[Tok::CloseBrace]) {
                        return Err(format!("0:{}: {e}: expected close brace", self.lexer.span().column_end));
                    }
                } else if self.expect(&[Tok::CloseBrace]).is_ok() {
                    return Err(format!(
                        "0:{}: }}: expected opening brace",
                        self.lexer.span().column_end
                    ));
                }
                State::Eof
            }
            State::Matcher => {
                self.parse_matcher()?;
                State::EndOfMatcher
            }
            State::EndOfMatcher => match self.expect_peek(&[Tok::Comma, Tok::CloseBrace]) {
                Err(Failure::Eof) => State::CloseBrace,
                Err(e) => return Err(format!("{e}: expected a comma or close brace")),
                Ok(t) if t.kind == Tok::Comma => State::Comma,
                Ok(_) => State::CloseBrace,
            },
            State::Comma => {
                self.expect(&[Tok::Comma])
                    .map_err(|e| format!("{e}: expected a comma"))?;
                match self.expect_peek(&[Tok::CloseBrace, Tok::Unquoted, Tok::Quoted]) {
                    Err(Failure::Eof) => State::CloseBrace,
                    Err(e) => return Err(format!("{e}: expected a matcher or close brace after comma")),
                    Ok(t) if t.kind == Tok::CloseBrace => State::CloseBrace,
                    Ok(_) => State::Matcher,
                }
            }
            State::Eof => {
                let t = self.lexer.scan().map_err(|e| format!("{e}: expected end of input"))?;
                if t.kind != Tok::Eof {
                    return Err(format!(
                        "{}:{}: {}: expected end of input",
                        t.span.column_start, t.span.column_end, t.value
                    ));
                }
                return Ok(None);
            }
        };
        Ok(Some(next))
    }

    fn parse_matcher(&mut self) -> Result<(), String> {
        let invalid = |t: &Token<'_>| {
            format!(
                "{}:{}: {}: invalid input",
                t.span.column_start, t.span.column_end, t.value
            )
        };
        let t = self
            .expect(&[Tok::Quoted, Tok::Unquoted])
            .map_err(|e| format!("{e}: expected label name"))?;
        let name = t.unquote().ok_or_else(|| invalid(&t))?;
        let op = self
            .expect(&[Tok::Equals, Tok::NotEquals, Tok::Matches, Tok::NotMatches])
            .map_err(|e| format!("{e}: expected an operator such as '=', '!=', '=~' or '!~'"))?;
        let kind = match op.kind {
            Tok::NotEquals => MatchType::NotEqual,
            Tok::Matches => MatchType::Regex,
            Tok::NotMatches => MatchType::NotRegex,
            _ => MatchType::Equal,
        };
        let t = self
            .expect(&[Tok::Unquoted, Tok::Quoted])
            .map_err(|e| format!("{e}: expected label value"))?;
        let value = t.unquote().ok_or_else(|| invalid(&t))?;
        let m = AmMatcher::new(kind, name, value).map_err(|e| format!("failed to create matcher: {e}"))?;
        self.matchers.push(m);
        Ok(())
    }
}

/// Parses a matcher list with the UTF-8 grammar.
pub fn parse_matchers_utf8(input: &str) -> Result<Vec<AmMatcher>, String> {
    let mut p = Parser {
        lexer: Lexer::new(input),
        has_open_brace: false,
        matchers: Vec::new(),
    };
    let mut state = State::OpenBrace;
    while let Some(next) = p.step(state)? {
        state = next;
    }
    Ok(p.matchers)
}

/// Parses exactly one matcher with the UTF-8 grammar.
pub fn parse_matcher_utf8(input: &str) -> Result<AmMatcher, String> {
    let mut ms = parse_matchers_utf8(input)?;
    match ms.len() {
        1 => Ok(ms.remove(0)),
        0 => Err("no matchers".to_owned()),
        n => Err(format!("expected 1 matcher, found {n}")),
    }
}

/// Go's `strconv.Unquote` for a double-quoted string, plus the check that the result is valid
/// UTF-8 (`\x` and octal escapes produce raw bytes). `None` when the text is not valid.
fn go_unquote(quoted: &str) -> Option<String> {
    let body = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut chars = body.chars();
    let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            v = v * 16 + chars.next()?.to_digit(16)?;
        }
        Some(v)
    };
    while let Some(c) = chars.next() {
        match c {
            '"' | '\n' => return None,
            '\\' => {
                let e = chars.next()?;
                match e {
                    'a' => out.push(0x07),
                    'b' => out.push(0x08),
                    'f' => out.push(0x0c),
                    'n' => out.push(b'\n'),
                    'r' => out.push(b'\r'),
                    't' => out.push(b'\t'),
                    'v' => out.push(0x0b),
                    '\\' => out.push(b'\\'),
                    '"' => out.push(b'"'),
                    'x' => out.push(u8::try_from(hex(&mut chars, 2)?).ok()?),
                    '0'..='7' => {
                        let mut v = e.to_digit(8)?;
                        for _ in 0..2 {
                            v = v * 8 + chars.next()?.to_digit(8)?;
                        }
                        out.push(u8::try_from(v).ok()?);
                    }
                    'u' | 'U' => {
                        let v = hex(&mut chars, if e == 'u' { 4 } else { 8 })?;
                        let ch = char::from_u32(v)?;
                        out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                    _ => return None,
                }
            }
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    String::from_utf8(out).ok()
}

// ---------------------------------------------------------------------------------------------
// Config value types.

/// A `matchers:` list: each YAML item is one string that may hold several matchers. Parsed in
/// fallback mode and sorted as upstream; serialized back as one string per matcher.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matchers(pub Vec<AmMatcher>);

impl Matchers {
    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses the YAML items, each with [`parse_matchers`], and sorts the result.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Result<Self, String> {
        let mut all = Vec::new();
        for line in lines {
            all.extend(parse_matchers(line.as_ref())?);
        }
        all.sort_by(compare);
        Ok(Matchers(all))
    }
}

impl std::ops::Deref for Matchers {
    type Target = [AmMatcher];
    fn deref(&self) -> &[AmMatcher] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Matchers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let lines = Option::<Vec<String>>::deserialize(d)?.unwrap_or_default();
        Matchers::parse(&lines).map_err(D::Error::custom)
    }
}

impl Serialize for Matchers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

/// A regular expression from a legacy `match_re` map: the text as written and its compiled,
/// anchored (`^(?:re)$`) form.
#[derive(Clone, Debug)]
pub struct Regexp {
    original: String,
    regex: Regex,
}

impl Regexp {
    /// Compiles `re` anchored.
    pub fn new(re: &str) -> Result<Self, String> {
        Ok(Regexp {
            original: re.to_owned(),
            regex: anchored_regex(re)?,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// The anchored expression, `^(?:re)$` (what upstream's `Regexp.String()` returns).
    pub fn anchored(&self) -> &str {
        self.regex.as_str()
    }

    /// Whether the whole of `s` matches.
    pub fn is_match(&self, s: &str) -> bool {
        self.regex.is_match(s)
    }
}

impl PartialEq for Regexp {
    fn eq(&self, other: &Self) -> bool {
        self.original == other.original
    }
}

impl Eq for Regexp {}

impl Serialize for Regexp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.original)
    }
}

/// A legacy `match_re` map: label name to regular expression. Names must be classic label
/// names; a null value is an error, as upstream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MatchRegexps(pub BTreeMap<String, Regexp>);

impl MatchRegexps {
    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for MatchRegexps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Option::<BTreeMap<String, Option<String>>>::deserialize(d)?.unwrap_or_default();
        let mut out = BTreeMap::new();
        for (name, re) in raw {
            if !is_valid_legacy_label_name(&name) {
                return Err(D::Error::custom(format!("invalid label name {name:?}")));
            }
            let re = re.ok_or_else(|| D::Error::custom(format!("invalid regexp value for {name:?}")))?;
            out.insert(name, Regexp::new(&re).map_err(D::Error::custom)?);
        }
        Ok(MatchRegexps(out))
    }
}

/// Serde helper for a legacy `match` map: label names must be classic label names.
pub(crate) fn legacy_match<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let map = Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default();
    if let Some(name) = map.keys().find(|n| !is_valid_legacy_label_name(n)) {
        return Err(D::Error::custom(format!("invalid label name {name:?}")));
    }
    Ok(map)
}

/// Turns legacy `match` and `match_re` maps plus a `matchers` list into one sorted matcher
/// list, as the dispatcher and inhibitor do (dispatch/route.go NewRoute): `match` entries
/// become `=` matchers, `match_re` entries `=~` matchers whose value is the anchored pattern.
pub fn combine(exact: &BTreeMap<String, String>, regexes: &MatchRegexps, matchers: &[AmMatcher]) -> Vec<AmMatcher> {
    let mut all: Vec<AmMatcher> = Vec::with_capacity(exact.len() + regexes.0.len() + matchers.len());
    all.extend(exact.iter().map(|(name, value)| AmMatcher {
        name: name.clone(),
        kind: MatchType::Equal,
        value: value.clone(),
        regex: None,
    }));
    // Anchoring `^(?:re)$` once more changes nothing, so the compiled pattern is reused.
    all.extend(regexes.0.iter().map(|(name, re)| AmMatcher {
        name: name.clone(),
        kind: MatchType::Regex,
        value: re.anchored().to_owned(),
        regex: Some(re.regex.clone()),
    }));
    all.extend(matchers.iter().cloned());
    all.sort_by(compare);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchoring_is_alertmanager_style() {
        let m = AmMatcher::new(MatchType::Regex, "a", "b.c").unwrap();
        assert!(m.matches("bxc"));
        assert!(!m.matches("b\nc"), "`.` must not match a newline");
        assert!(!m.matches("xbxc"));
        let m = AmMatcher::new(MatchType::NotRegex, "a", "x|y").unwrap();
        assert!(m.matches("xy") && !m.matches("y"));
    }

    #[test]
    fn lexer_columns_count_characters() {
        let e = parse_matchers_utf8("{🙂=a!b}").unwrap_err();
        assert_eq!(e, "4:5: !: expected one of '=~': expected a comma or close brace");
    }

    #[test]
    fn go_unquote_escapes() {
        assert_eq!(go_unquote(r#""\101\x42\u0043\U00000044""#).as_deref(), Some("ABCD"));
        assert_eq!(go_unquote(r#""a\'b""#), None);
        assert_eq!(go_unquote(r#""\xff""#), None);
        assert_eq!(go_unquote(r#""\ud800""#), None);
    }
}
