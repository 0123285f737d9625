//! The lexer: splits template text into text runs and action tokens.
//!
//! It follows the token rules of Go's `text/template/parse/lex.go` (same token kinds, same
//! trim-marker and comment rules, same error texts) but runs to completion up front and hands
//! the parser a vector, which keeps the parser's look-ahead trivial. Lexing stops at the first
//! error, which becomes the last token.

use std::fmt;

/// Action delimiters. Go allows other delimiters; Prometheus and Alertmanager never change them.
const LEFT_DELIM: &str = "{{";
const RIGHT_DELIM: &str = "}}";
const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";
/// A trim marker is a space next to a minus: `{{- ` or ` -}}`.
const TRIM_MARKER_LEN: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ItemType {
    Error,
    Bool,
    Char,
    CharConstant,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // Keywords (Go prints these as `<word>` in error messages).
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

impl ItemType {
    fn is_keyword(self) -> bool {
        matches!(
            self,
            ItemType::Block
                | ItemType::Break
                | ItemType::Continue
                | ItemType::Dot
                | ItemType::Define
                | ItemType::Else
                | ItemType::End
                | ItemType::If
                | ItemType::Nil
                | ItemType::Range
                | ItemType::Template
                | ItemType::With
        )
    }
}

fn keyword(word: &str) -> Option<ItemType> {
    Some(match word {
        "." => ItemType::Dot,
        "block" => ItemType::Block,
        "break" => ItemType::Break,
        "continue" => ItemType::Continue,
        "define" => ItemType::Define,
        "else" => ItemType::Else,
        "end" => ItemType::End,
        "if" => ItemType::If,
        "range" => ItemType::Range,
        "nil" => ItemType::Nil,
        "template" => ItemType::Template,
        "with" => ItemType::With,
        _ => return None,
    })
}

#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub typ: ItemType,
    /// Byte offset of the token in the input.
    pub pos: usize,
    pub val: String,
    /// 1-based line of the token's first byte.
    pub line: usize,
}

impl fmt::Display for Item {
    /// The token as Go's parser quotes it in "unexpected ..." errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.typ {
            ItemType::Eof => f.write_str("EOF"),
            ItemType::Error => f.write_str(&self.val),
            t if t.is_keyword() => write!(f, "<{}>", self.val),
            _ if self.val.chars().count() > 10 => {
                let head: String = self.val.chars().take(10).collect();
                write!(f, "{}...", crate::fmt::quote(&head))
            }
            _ => f.write_str(&crate::fmt::quote(&self.val)),
        }
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

fn has_left_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(b[1] as char)
}

fn has_right_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(b[0] as char) && b[1] == b'-'
}

fn right_trim_length(s: &str) -> usize {
    s.len() - s.trim_end_matches(is_space).len()
}

fn left_trim_length(s: &str) -> usize {
    s.len() - s.trim_start_matches(is_space).len()
}

/// Go's `%#U` for a rune: `U+00A0 ' '`, without the quoted form for unprintable runes.
fn unicode_name(c: char) -> String {
    if crate::fmt::is_print(c) {
        format!("U+{:04X} '{c}'", c as u32)
    } else {
        format!("U+{:04X}", c as u32)
    }
}

enum State {
    Text,
    LeftDelim,
    InsideAction,
    Done,
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    line: usize,
    start_line: usize,
    paren_depth: i32,
    items: Vec<Item>,
    /// Whether `break`/`continue` are keywords (they are not when a function has that name).
    break_ok: bool,
    continue_ok: bool,
}

/// Lexes `input` completely. The last item is `Eof` or `Error`.
pub(crate) fn lex(input: &str, break_ok: bool, continue_ok: bool) -> Vec<Item> {
    let mut l = Lexer {
        input,
        pos: 0,
        start: 0,
        line: 1,
        start_line: 1,
        paren_depth: 0,
        items: Vec::new(),
        break_ok,
        continue_ok,
    };
    let mut state = State::Text;
    loop {
        state = match state {
            State::Text => l.lex_text(),
            State::LeftDelim => l.lex_left_delim(),
            State::InsideAction => l.lex_inside_action(),
            State::Done => break,
        };
    }
    l.items
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.input[self.pos..]
    }

    fn next(&mut self) -> Option<char> {
        let c = self.rest().chars().next()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Steps back over the character just read by `next`.
    fn backup(&mut self, c: char) {
        self.pos -= c.len_utf8();
        if c == '\n' {
            self.line -= 1;
        }
    }

    fn emit(&mut self, typ: ItemType) {
        let val = self.input[self.start..self.pos].to_owned();
        self.items.push(Item {
            typ,
            pos: self.start,
            val,
            line: self.start_line,
        });
        self.start = self.pos;
        self.start_line = self.line;
    }

    fn ignore(&mut self) {
        self.line += self.input[self.start..self.pos].matches('\n').count();
        self.start = self.pos;
        self.start_line = self.line;
    }

    /// Records an error token; lexing stops.
    fn error(&mut self, msg: String) -> State {
        self.items.push(Item {
            typ: ItemType::Error,
            pos: self.start,
            val: msg,
            line: self.start_line,
        });
        State::Done
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.next();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    fn lex_text(&mut self) -> State {
        if let Some(x) = self.rest().find(LEFT_DELIM) {
            if x > 0 {
                self.pos += x;
                let delim_end = self.pos + LEFT_DELIM.len();
                let trim = if has_left_trim_marker(&self.input[delim_end..]) {
                    right_trim_length(&self.input[self.start..self.pos])
                } else {
                    0
                };
                self.pos -= trim;
                self.line += self.input[self.start..self.pos].matches('\n').count();
                let text = self.input[self.start..self.pos].to_owned();
                let item = Item {
                    typ: ItemType::Text,
                    pos: self.start,
                    val: text,
                    line: self.start_line,
                };
                self.start = self.pos;
                self.start_line = self.line;
                self.pos += trim;
                self.ignore();
                if !item.val.is_empty() {
                    self.items.push(item);
                }
            }
            return State::LeftDelim;
        }
        self.pos = self.input.len();
        if self.pos > self.start {
            self.line += self.input[self.start..self.pos].matches('\n').count();
            self.emit(ItemType::Text);
        }
        self.emit(ItemType::Eof);
        State::Done
    }

    fn lex_left_delim(&mut self) -> State {
        self.pos += LEFT_DELIM.len();
        let trim = has_left_trim_marker(self.rest());
        let after_marker = if trim { TRIM_MARKER_LEN } else { 0 };
        if self.input[self.pos + after_marker..].starts_with(LEFT_COMMENT) {
            self.pos += after_marker;
            self.ignore();
            return self.lex_comment();
        }
        self.emit(ItemType::LeftDelim);
        self.pos += after_marker;
        self.ignore();
        self.paren_depth = 0;
        State::InsideAction
    }

    fn lex_comment(&mut self) -> State {
        self.pos += LEFT_COMMENT.len();
        let Some(x) = self.rest().find(RIGHT_COMMENT) else {
            return self.error("unclosed comment".into());
        };
        self.pos += x + RIGHT_COMMENT.len();
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return self.error("comment ends before closing delimiter".into());
        }
        if trim {
            self.pos += TRIM_MARKER_LEN;
        }
        self.pos += RIGHT_DELIM.len();
        if trim {
            self.pos += left_trim_length(self.rest());
        }
        self.ignore();
        State::Text
    }

    /// Whether the input is at a right delimiter, possibly preceded by a trim marker.
    fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest();
        if has_right_trim_marker(rest) && rest[TRIM_MARKER_LEN..].starts_with(RIGHT_DELIM) {
            return (true, true);
        }
        (rest.starts_with(RIGHT_DELIM), false)
    }

    fn lex_right_delim(&mut self) -> State {
        let (_, trim) = self.at_right_delim();
        if trim {
            self.pos += TRIM_MARKER_LEN;
            self.ignore();
        }
        self.pos += RIGHT_DELIM.len();
        self.emit(ItemType::RightDelim);
        if trim {
            self.pos += left_trim_length(self.rest());
            self.ignore();
        }
        State::Text
    }

    fn lex_inside_action(&mut self) -> State {
        loop {
            let (delim, _) = self.at_right_delim();
            if delim {
                if self.paren_depth == 0 {
                    return self.lex_right_delim();
                }
                return self.error("unclosed left paren".into());
            }
            let Some(c) = self.next() else {
                return self.error("unclosed action".into());
            };
            match c {
                c if is_space(c) => {
                    self.backup(c);
                    if let Some(s) = self.lex_space() {
                        return s;
                    }
                }
                '=' => self.emit(ItemType::Assign),
                ':' => {
                    if self.next() != Some('=') {
                        return self.error("expected :=".into());
                    }
                    self.emit(ItemType::Declare);
                }
                '|' => self.emit(ItemType::Pipe),
                '"' => {
                    if let Some(s) = self.lex_quote() {
                        return s;
                    }
                }
                '`' => {
                    if let Some(s) = self.lex_raw_quote() {
                        return s;
                    }
                }
                '$' => {
                    if let Some(s) = self.lex_field_or_variable(ItemType::Variable) {
                        return s;
                    }
                }
                '\'' => {
                    if let Some(s) = self.lex_char() {
                        return s;
                    }
                }
                '.' if !self.peek().is_some_and(|d| d.is_ascii_digit()) => {
                    if let Some(s) = self.lex_field_or_variable(ItemType::Field) {
                        return s;
                    }
                }
                '.' | '+' | '-' | '0'..='9' => {
                    self.backup(c);
                    if let Some(s) = self.lex_number() {
                        return s;
                    }
                }
                c if is_alphanumeric(c) => {
                    self.backup(c);
                    if let Some(s) = self.lex_identifier() {
                        return s;
                    }
                }
                '(' => {
                    self.emit(ItemType::LeftParen);
                    self.paren_depth += 1;
                }
                ')' => {
                    self.paren_depth -= 1;
                    if self.paren_depth < 0 {
                        return self.error("unexpected right paren".into());
                    }
                    self.emit(ItemType::RightParen);
                }
                c if c.is_ascii() && crate::fmt::is_print(c) => self.emit(ItemType::Char),
                c => return self.error(format!("unrecognized character in action: {}", unicode_name(c))),
            }
        }
    }

    /// Lexes a run of spaces. A single space before `-}}` belongs to the trim marker.
    fn lex_space(&mut self) -> Option<State> {
        let mut spaces = 0;
        while let Some(c) = self.peek() {
            if !is_space(c) {
                break;
            }
            self.next();
            spaces += 1;
        }
        let before = &self.input[self.pos - 1..];
        if has_right_trim_marker(before) && before[TRIM_MARKER_LEN..].starts_with(RIGHT_DELIM) {
            let c = self.input[..self.pos]
                .chars()
                .next_back()
                .expect("a space was just read");
            self.backup(c);
            if spaces == 1 {
                return Some(self.lex_right_delim());
            }
        }
        self.emit(ItemType::Space);
        None
    }

    fn lex_quote(&mut self) -> Option<State> {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    Some(c) if c != '\n' => {}
                    _ => return Some(self.error("unterminated quoted string".into())),
                },
                None | Some('\n') => return Some(self.error("unterminated quoted string".into())),
                Some('"') => break,
                Some(_) => {}
            }
        }
        self.emit(ItemType::String);
        None
    }

    fn lex_raw_quote(&mut self) -> Option<State> {
        let Some(x) = self.rest().find('`') else {
            return Some(self.error("unterminated raw quoted string".into()));
        };
        self.line += self.rest()[..x].matches('\n').count();
        self.pos += x + 1;
        self.emit(ItemType::RawString);
        None
    }

    fn lex_char(&mut self) -> Option<State> {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    Some(c) if c != '\n' => {}
                    _ => return Some(self.error("unterminated character constant".into())),
                },
                None | Some('\n') => return Some(self.error("unterminated character constant".into())),
                Some('\'') => break,
                Some(_) => {}
            }
        }
        self.emit(ItemType::CharConstant);
        None
    }

    /// Whether the next character ends a word: space, punctuation that can follow an
    /// operand, or the right delimiter.
    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            _ => self.rest().starts_with(RIGHT_DELIM),
        }
    }

    fn lex_field_or_variable(&mut self, typ: ItemType) -> Option<State> {
        if self.at_terminator() {
            self.emit(if typ == ItemType::Variable {
                ItemType::Variable
            } else {
                ItemType::Dot
            });
            return None;
        }
        while let Some(c) = self.peek() {
            if !is_alphanumeric(c) {
                break;
            }
            self.next();
        }
        if !self.at_terminator() {
            let c = self.peek().expect("not at end: at_terminator is true at the end");
            return Some(self.error(format!("bad character {}", unicode_name(c))));
        }
        self.emit(typ);
        None
    }

    fn lex_identifier(&mut self) -> Option<State> {
        while let Some(c) = self.peek() {
            if !is_alphanumeric(c) {
                break;
            }
            self.next();
        }
        if !self.at_terminator() {
            let c = self.peek().expect("not at end: at_terminator is true at the end");
            return Some(self.error(format!("bad character {}", unicode_name(c))));
        }
        let word = &self.input[self.start..self.pos];
        let typ = match keyword(word) {
            Some(ItemType::Break) if !self.break_ok => ItemType::Identifier,
            Some(ItemType::Continue) if !self.continue_ok => ItemType::Identifier,
            Some(k) => k,
            None if word == "true" || word == "false" => ItemType::Bool,
            None => ItemType::Identifier,
        };
        self.emit(typ);
        None
    }

    fn lex_number(&mut self) -> Option<State> {
        if !self.scan_number() {
            let text = self.input[self.start..self.pos].to_owned();
            return Some(self.error(format!("bad number syntax: {}", crate::fmt::quote(&text))));
        }
        if matches!(self.peek(), Some('+' | '-')) {
            // A complex number: a real part followed by an imaginary part.
            if !self.scan_number() || !self.input[..self.pos].ends_with('i') {
                let text = self.input[self.start..self.pos].to_owned();
                return Some(self.error(format!("bad number syntax: {}", crate::fmt::quote(&text))));
            }
            self.emit(ItemType::Complex);
        } else {
            self.emit(ItemType::Number);
        }
        None
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 11 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 23 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        self.accept("i");
        if self.peek().is_some_and(is_alphanumeric) {
            self.next();
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(s: &str) -> Vec<ItemType> {
        lex(s, true, true).into_iter().map(|i| i.typ).collect()
    }

    #[test]
    fn trim_markers_need_a_space() {
        use ItemType::*;
        assert_eq!(
            types("a {{- 3 -}} b"),
            vec![Text, LeftDelim, Number, RightDelim, Text, Eof]
        );
        let items = lex("a {{- 3 -}} b", true, true);
        assert_eq!(items[0].val, "a");
        assert_eq!(items[4].val, "b");
        // `{{-3}}` is the number -3, not a trim marker.
        assert_eq!(types("{{-3}}"), vec![LeftDelim, Number, RightDelim, Eof]);
    }

    #[test]
    fn comments_and_errors() {
        use ItemType::*;
        assert_eq!(types("x{{/* c */}}y"), vec![Text, Text, Eof]);
        let items = lex("{{/* c */ x}}", true, true);
        assert_eq!(items.last().unwrap().val, "comment ends before closing delimiter");
        let items = lex("{{", true, true);
        assert_eq!(items.last().unwrap().val, "unclosed action");
        let items = lex("{{\u{a0}}}", true, true);
        assert_eq!(items.last().unwrap().val, "unrecognized character in action: U+00A0");
    }

    #[test]
    fn lines_are_counted() {
        let items = lex("a\nb{{\n.X}}\n{{.Y}}", true, true);
        let field_lines: Vec<usize> = items
            .iter()
            .filter(|i| i.typ == ItemType::Field)
            .map(|i| i.line)
            .collect();
        assert_eq!(field_lines, vec![3, 4]);
    }
}
