//! Go's `fmt` printing (`Sprint`, `Sprintln`, `Sprintf`) for template values, and the
//! `strconv` float formatting it rests on.
//!
//! The verbs, flags and error forms follow Go's `fmt` documentation and `fmt/print.go` /
//! `fmt/format.go`: `%v %s %q %d %b %o %O %x %X %c %U %e %E %f %F %g %G %t %T %%`, width and
//! precision (also from arguments with `*`), explicit argument indexes (`%[2]d`), the flags
//! `+ - # 0 space`, and `%!d(string=x)`, `%!d(MISSING)`, `%!(EXTRA int=1)` for misuse. Hex
//! float output (`%x` on floats, `%b` on floats) is not implemented and prints as a bad verb.

use std::fmt::Write as _;

use crate::value::Value;

/// Go's `unicode.IsPrint` approximated with Rust's character tables: letters, marks, numbers,
/// punctuation and symbols, plus the ASCII space.
pub(crate) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    // Format characters (category Cf) and private use areas are not printable in Go.
    !matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E
        | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF
        | 0xE0001 | 0xE0020..=0xE007F | 0xF0000..)
}

/// Go's `strconv.Quote`.
pub(crate) fn quote(s: &str) -> String {
    watchfire_model::go_quote(s)
}

/// Go's `strconv.QuoteToASCII`: like `quote`, with every non-ASCII rune escaped.
fn quote_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c.is_ascii() {
            let q = quote(c.encode_utf8(&mut [0; 4]));
            out.push_str(&q[1..q.len() - 1]);
        } else if (c as u32) < 0x10000 {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.QuoteRune` (and `QuoteRuneToASCII` with `ascii`).
fn quote_rune(c: char, ascii: bool) -> String {
    match c {
        '\'' => "'\\''".into(),
        '"' => "'\"'".into(),
        _ => {
            let q = if ascii {
                quote_ascii(c.encode_utf8(&mut [0; 4]))
            } else {
                quote(c.encode_utf8(&mut [0; 4]))
            };
            format!("'{}'", &q[1..q.len() - 1])
        }
    }
}

/// Go's `strconv.CanBackquote`.
fn can_backquote(s: &str) -> bool {
    s.chars()
        .all(|c| c != '`' && c != '\u{FEFF}' && (c == '\t' || !(c < ' ' || c == '\u{7f}')))
}

/// The decimal digits of a finite non-negative float: `0.d1d2... × 10^dp`, trailing zeros
/// removed (Go's `decimalSlice` after rounding).
struct Digits {
    d: Vec<u8>,
    dp: i32,
}

impl Digits {
    fn from_exp_form(s: &str) -> Digits {
        let (mant, exp) = s.split_once('e').expect("Rust's {:e} output has an exponent");
        let exp: i32 = exp.parse().expect("Rust's {:e} exponent is an integer");
        let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
        while d.last() == Some(&b'0') {
            d.pop();
        }
        if d.is_empty() {
            return Digits { d, dp: 0 };
        }
        Digits { d, dp: exp + 1 }
    }

    /// The shortest digits that read back as `v`.
    fn shortest(v: f64) -> Digits {
        if v == 0.0 {
            return Digits { d: Vec::new(), dp: 0 };
        }
        Digits::from_exp_form(&format!("{v:e}"))
    }

    /// `v` rounded to `n` significant digits (n >= 1).
    fn significant(v: f64, n: usize) -> Digits {
        if v == 0.0 {
            return Digits { d: Vec::new(), dp: 0 };
        }
        Digits::from_exp_form(&format!("{v:.prec$e}", prec = n - 1))
    }

    /// `v` rounded to `prec` digits after the decimal point.
    fn fixed(v: f64, prec: usize) -> Digits {
        let s = format!("{v:.prec$}");
        let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
        let all: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
        let lead = all.iter().take_while(|&&b| b == b'0').count();
        let mut d = all[lead..].to_vec();
        while d.last() == Some(&b'0') {
            d.pop();
        }
        if d.is_empty() {
            return Digits { d, dp: 0 };
        }
        Digits {
            d,
            dp: int.len() as i32 - lead as i32,
        }
    }
}

fn fmt_e(out: &mut String, neg: bool, d: &Digits, prec: i32, e: char) {
    if neg {
        out.push('-');
    }
    out.push(d.d.first().map_or('0', |&c| c as char));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as usize {
            out.push(d.d.get(i).map_or('0', |&c| c as char));
        }
    }
    out.push(e);
    let exp = if d.d.is_empty() { 0 } else { d.dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let exp = exp.unsigned_abs();
    if exp < 10 {
        out.push('0');
    }
    let _ = write!(out, "{exp}");
}

fn fmt_f(out: &mut String, neg: bool, d: &Digits, prec: i32) {
    if neg {
        out.push('-');
    }
    if d.dp > 0 {
        for i in 0..d.dp as usize {
            out.push(d.d.get(i).map_or('0', |&c| c as char));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec {
            let j = d.dp + i;
            let c = if j >= 0 {
                d.d.get(j as usize).copied().unwrap_or(b'0')
            } else {
                b'0'
            };
            out.push(c as char);
        }
    }
}

/// Go's `strconv.FormatFloat(v, fmt, prec, 64)` for `fmt` in `e E f F g G` (`prec` < 0 means
/// the shortest representation). Infinities print as `+Inf`/`-Inf`, NaN as `NaN`.
pub fn format_float(v: f64, fmt: char, prec: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let neg = v.is_sign_negative();
    let a = v.abs();
    let shortest = prec < 0;
    let mut out = String::new();
    match fmt {
        'e' | 'E' => {
            let d = if shortest {
                Digits::shortest(a)
            } else {
                Digits::significant(a, prec as usize + 1)
            };
            let p = if shortest { (d.d.len() as i32 - 1).max(0) } else { prec };
            fmt_e(&mut out, neg, &d, p, fmt);
        }
        'f' | 'F' => {
            if shortest {
                let d = Digits::shortest(a);
                fmt_f(&mut out, neg, &d, (d.d.len() as i32 - d.dp).max(0));
            } else {
                fmt_f(&mut out, neg, &Digits::fixed(a, prec as usize), prec);
            }
        }
        _ => {
            let mut prec = prec;
            let d = if shortest {
                Digits::shortest(a)
            } else {
                if prec == 0 {
                    prec = 1;
                }
                Digits::significant(a, prec as usize)
            };
            let nd = d.d.len() as i32;
            if shortest {
                prec = nd;
            }
            let mut eprec = prec;
            if eprec > nd && nd >= d.dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
            }
            let exp = d.dp - 1;
            let e = if fmt == 'G' { 'E' } else { 'e' };
            if exp < -4 || exp >= eprec {
                if prec > nd {
                    prec = nd;
                }
                fmt_e(&mut out, neg, &d, prec - 1, e);
            } else {
                if prec > d.dp {
                    prec = nd;
                }
                fmt_f(&mut out, neg, &d, (prec - d.dp).max(0));
            }
        }
    }
    out
}

/// Go's `fmt.Sprint`: operands in their default format, with spaces between operands when
/// neither side is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut p = Printer::default();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Value::String(_));
        if i > 0 && !is_string && !prev_string {
            p.buf.push(' ');
        }
        p.print_arg(a, 'v', 0);
        prev_string = is_string;
    }
    p.buf
}

/// Go's `fmt.Sprintln`: operands separated by spaces, then a newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut p = Printer::default();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(' ');
        }
        p.print_arg(a, 'v', 0);
    }
    p.buf.push('\n');
    p.buf
}

/// Go's `fmt.Sprintf`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut p = Printer::default();
    p.do_printf(format, args);
    p.buf
}

#[derive(Clone, Copy, Default)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    sharp_v: bool,
    wid: Option<usize>,
    prec: Option<usize>,
}

#[derive(Default)]
struct Printer {
    buf: String,
    f: Flags,
    reordered: bool,
    good_arg_num: bool,
}

/// Go refuses widths and precisions beyond a million.
fn too_large(x: i64) -> bool {
    !(-1_000_000..=1_000_000).contains(&x)
}

/// Parses a decimal number at `s[i..end]`.
fn parse_num(s: &[u8], start: usize, end: usize) -> (Option<usize>, usize) {
    let mut i = start;
    let mut num: i64 = 0;
    let mut found = false;
    while i < end && s[i].is_ascii_digit() {
        if too_large(num) {
            return (None, end);
        }
        num = num * 10 + i64::from(s[i] - b'0');
        found = true;
        i += 1;
    }
    (found.then_some(num as usize), i)
}

impl Printer {
    fn write_padding(&mut self, n: usize) {
        let c = if self.f.zero && !self.f.minus { '0' } else { ' ' };
        self.buf.extend(std::iter::repeat_n(c, n));
    }

    /// Writes `s` padded to the width (counted in runes).
    fn pad(&mut self, s: &str) {
        let Some(wid) = self.f.wid else {
            self.buf.push_str(s);
            return;
        };
        let n = s.chars().count();
        let padding = wid.saturating_sub(n);
        if self.f.minus {
            self.buf.push_str(s);
            self.write_padding(padding);
        } else {
            self.write_padding(padding);
            self.buf.push_str(s);
        }
    }

    fn truncate<'s>(&self, s: &'s str) -> &'s str {
        match self.f.prec {
            Some(p) => match s.char_indices().nth(p) {
                Some((i, _)) => &s[..i],
                None => s,
            },
            None => s,
        }
    }

    fn bad_verb(&mut self, verb: char, v: &Value) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        if v.is_nil() {
            self.buf.push_str("<nil>");
        } else {
            self.buf.push_str(&v.type_name());
            self.buf.push('=');
            self.print_arg(v, 'v', 0);
        }
        self.buf.push(')');
    }

    fn print_arg(&mut self, v: &Value, verb: char, depth: usize) {
        if verb == 'T' {
            let name = v.type_name();
            let s = self.truncate(&name).to_owned();
            self.pad(&s);
            return;
        }
        match v {
            Value::Nil => {
                if depth > 0 {
                    self.buf.push_str("<nil>");
                } else if verb == 'v' {
                    self.pad("<nil>");
                } else {
                    self.bad_verb(verb, v);
                }
            }
            Value::Bool(b) => match verb {
                't' | 'v' => self.pad(if *b { "true" } else { "false" }),
                _ => self.bad_verb(verb, v),
            },
            Value::Int(i) => self.fmt_int(*i, verb, v),
            Value::Float(x) => self.fmt_float_verb(*x, verb, v),
            Value::String(s) => self.fmt_string(s, verb, v),
            Value::List(items) => {
                if self.f.sharp_v {
                    self.buf.push_str("[]interface {}{");
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            self.buf.push_str(", ");
                        }
                        self.print_arg(item, verb, depth + 1);
                    }
                    self.buf.push('}');
                    return;
                }
                self.buf.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    self.print_arg(item, verb, depth + 1);
                }
                self.buf.push(']');
            }
            Value::Map(m) => {
                if self.f.sharp_v {
                    self.buf.push_str(&v.type_name());
                    self.buf.push('{');
                } else {
                    self.buf.push_str("map[");
                }
                for (i, (k, val)) in m.iter().enumerate() {
                    if i > 0 {
                        self.buf.push_str(if self.f.sharp_v { ", " } else { " " });
                    }
                    self.print_arg(&Value::string(k), verb, depth + 1);
                    self.buf.push(':');
                    self.print_arg(val, verb, depth + 1);
                }
                self.buf.push(if self.f.sharp_v { '}' } else { ']' });
            }
            Value::Object(o) => {
                if o.is_stringer() && matches!(verb, 'v' | 's' | 'x' | 'X' | 'q') && !self.f.sharp_v {
                    let s = o.format();
                    self.fmt_string(&s, verb, v);
                } else if let Some(u) = o.underlying() {
                    self.print_arg(&u, verb, depth);
                } else if verb == 'v' {
                    let s = o.format();
                    self.pad(&s);
                } else {
                    self.bad_verb(verb, v);
                }
            }
            Value::Func(_) => match verb {
                'v' => self.pad("<func>"),
                _ => self.bad_verb(verb, v),
            },
        }
    }

    fn fmt_string(&mut self, s: &str, verb: char, v: &Value) {
        // Go ignores the 0 flag for strings.
        let zero = std::mem::replace(&mut self.f.zero, false);
        self.fmt_string_verb(s, verb, v);
        self.f.zero = zero;
    }

    fn fmt_string_verb(&mut self, s: &str, verb: char, v: &Value) {
        match verb {
            'v' if self.f.sharp_v => self.fmt_q(s),
            'v' | 's' => {
                let t = self.truncate(s).to_owned();
                self.pad(&t);
            }
            'x' => self.fmt_sx(s, b"0123456789abcdefx"),
            'X' => self.fmt_sx(s, b"0123456789ABCDEFX"),
            'q' => self.fmt_q(s),
            _ => self.bad_verb(verb, v),
        }
    }

    fn fmt_q(&mut self, s: &str) {
        let s = self.truncate(s);
        let q = if self.f.sharp && can_backquote(s) {
            format!("`{s}`")
        } else if self.f.plus {
            quote_ascii(s)
        } else {
            quote(s)
        };
        self.pad(&q);
    }

    /// Hex encoding of a string's bytes (`%x`, `% x`, `%#x`).
    fn fmt_sx(&mut self, s: &str, digits: &[u8; 17]) {
        let b = s.as_bytes();
        let length = self.f.prec.map_or(b.len(), |p| p.min(b.len()));
        let mut width = 2 * length;
        if width > 0 {
            if self.f.space {
                if self.f.sharp {
                    width *= 2;
                }
                width += length - 1;
            } else if self.f.sharp {
                width += 2;
            }
        } else {
            if let Some(w) = self.f.wid {
                self.write_padding(w);
            }
            return;
        }
        let wid = self.f.wid.unwrap_or(0);
        if wid > width && !self.f.minus {
            self.write_padding(wid - width);
        }
        if self.f.sharp {
            self.buf.push('0');
            self.buf.push(digits[16] as char);
        }
        for (i, &c) in b[..length].iter().enumerate() {
            if self.f.space && i > 0 {
                self.buf.push(' ');
                if self.f.sharp {
                    self.buf.push('0');
                    self.buf.push(digits[16] as char);
                }
            }
            self.buf.push(digits[(c >> 4) as usize] as char);
            self.buf.push(digits[(c & 0xF) as usize] as char);
        }
        if wid > width && self.f.minus {
            self.write_padding(wid - width);
        }
    }

    fn fmt_int(&mut self, i: i64, verb: char, v: &Value) {
        match verb {
            'v' | 'd' => self.fmt_integer(i, 10, verb, b"0123456789abcdefx"),
            'b' => self.fmt_integer(i, 2, verb, b"0123456789abcdefx"),
            'o' | 'O' => self.fmt_integer(i, 8, verb, b"0123456789abcdefx"),
            'x' => self.fmt_integer(i, 16, verb, b"0123456789abcdefx"),
            'X' => self.fmt_integer(i, 16, verb, b"0123456789ABCDEFX"),
            'c' => {
                let c = rune_of(i);
                let s = c.to_string();
                self.pad(&s);
            }
            'q' => {
                let c = rune_of(i);
                let s = if self.f.sharp && is_print(c) {
                    format!("'{c}'")
                } else {
                    quote_rune(c, self.f.plus)
                };
                self.pad(&s);
            }
            'U' => {
                let mut s = match self.f.prec {
                    Some(p) => format!("U+{:0p$X}", i as u64, p = p.max(4)),
                    None => format!("U+{:04X}", i as u64),
                };
                if self.f.sharp {
                    let c = rune_of(i);
                    if (0..=0x10FFFF).contains(&i) && is_print(c) {
                        let _ = write!(s, " '{c}'");
                    }
                }
                let zero = std::mem::replace(&mut self.f.zero, false);
                self.pad(&s);
                self.f.zero = zero;
            }
            _ => self.bad_verb(verb, v),
        }
    }

    /// Go's `fmt.fmtInteger`.
    fn fmt_integer(&mut self, v: i64, base: u64, verb: char, digits: &[u8; 17]) {
        let negative = v < 0;
        let mut u = v.unsigned_abs();
        let mut prec = 0usize;
        if let Some(p) = self.f.prec {
            prec = p;
            if p == 0 && u == 0 {
                let zero = std::mem::replace(&mut self.f.zero, false);
                self.write_padding(self.f.wid.unwrap_or(0));
                self.f.zero = zero;
                return;
            }
        } else if self.f.zero && !self.f.minus && self.f.wid.is_some() {
            prec = self.f.wid.unwrap_or(0);
            if negative || self.f.plus || self.f.space {
                prec = prec.saturating_sub(1);
            }
        }
        let mut rev: Vec<u8> = Vec::with_capacity(24);
        loop {
            rev.push(digits[(u % base) as usize]);
            u /= base;
            if u == 0 {
                break;
            }
        }
        while rev.len() < prec {
            rev.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => rev.extend_from_slice(b"b0"),
                8 if rev.last() != Some(&b'0') => rev.push(b'0'),
                16 => {
                    rev.push(digits[16]);
                    rev.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            rev.extend_from_slice(b"o0");
        }
        if negative {
            rev.push(b'-');
        } else if self.f.plus {
            rev.push(b'+');
        } else if self.f.space {
            rev.push(b' ');
        }
        rev.reverse();
        let s = String::from_utf8(rev).expect("digits and signs are ASCII");
        let zero = std::mem::replace(&mut self.f.zero, false);
        self.pad(&s);
        self.f.zero = zero;
    }

    fn fmt_float_verb(&mut self, x: f64, verb: char, v: &Value) {
        match verb {
            'v' => self.fmt_float(x, 'g', -1),
            'g' | 'G' => self.fmt_float(x, verb, -1),
            'e' | 'E' | 'f' => self.fmt_float(x, verb, 6),
            'F' => self.fmt_float(x, 'f', 6),
            _ => self.bad_verb(verb, v),
        }
    }

    /// Go's `fmt.fmtFloat`: sign flags, `#`, zero padding after the sign, and no zero padding
    /// for infinities and NaN.
    fn fmt_float(&mut self, v: f64, verb: char, default_prec: i32) {
        let prec = self.f.prec.map_or(default_prec, |p| p as i32);
        let s = format_float(v, verb, prec);
        let mut num: Vec<u8> = Vec::with_capacity(s.len() + 1);
        if s.starts_with(['-', '+']) {
            num.extend_from_slice(s.as_bytes());
        } else {
            num.push(b'+');
            num.extend_from_slice(s.as_bytes());
        }
        if self.f.space && num[0] == b'+' && !self.f.plus {
            num[0] = b' ';
        }
        if num[1] == b'I' || num[1] == b'N' {
            let zero = std::mem::replace(&mut self.f.zero, false);
            if num[1] == b'N' && !self.f.space && !self.f.plus {
                num.remove(0);
            }
            let s = String::from_utf8(num).expect("float text is ASCII");
            self.pad(&s);
            self.f.zero = zero;
            return;
        }
        if self.f.sharp {
            let mut digits: i32 = match verb {
                'v' | 'g' | 'G' => {
                    if prec < 0 {
                        6
                    } else {
                        prec
                    }
                }
                _ => 0,
            };
            let mut tail: Vec<u8> = Vec::new();
            let mut has_point = false;
            let mut saw_nonzero = false;
            let mut i = 1;
            while i < num.len() {
                match num[i] {
                    b'.' => has_point = true,
                    b'e' | b'E' => {
                        tail = num.split_off(i);
                        break;
                    }
                    c => {
                        if c != b'0' {
                            saw_nonzero = true;
                        }
                        if saw_nonzero {
                            digits -= 1;
                        }
                    }
                }
                i += 1;
            }
            if !has_point {
                if num.len() == 2 && num[1] == b'0' {
                    digits -= 1;
                }
                num.push(b'.');
            }
            while digits > 0 {
                num.push(b'0');
                digits -= 1;
            }
            num.extend(tail);
        }
        let s = String::from_utf8(num).expect("float text is ASCII");
        if self.f.plus || !s.starts_with('+') {
            let wid = self.f.wid.unwrap_or(0);
            let len = s.len();
            if self.f.zero && !self.f.minus && wid > len {
                self.buf.push_str(&s[..1]);
                self.write_padding(wid - len);
                self.buf.push_str(&s[1..]);
                return;
            }
            self.pad(&s);
            return;
        }
        self.pad(&s[1..]);
    }

    fn arg_number(&mut self, arg_num: usize, format: &[u8], i: usize, num_args: usize) -> (usize, usize, bool) {
        if i >= format.len() || format[i] != b'[' {
            return (arg_num, i, false);
        }
        self.reordered = true;
        // `[n]`, one-based.
        let rest = &format[i..];
        let mut close = None;
        for (j, &c) in rest.iter().enumerate().skip(1) {
            if c == b']' {
                close = Some(j);
                break;
            }
        }
        let Some(close) = close else {
            self.good_arg_num = false;
            return (arg_num, i + 1, false);
        };
        let (n, end) = parse_num(rest, 1, close);
        match n {
            Some(n) if end == close && n >= 1 && n - 1 < num_args => (n - 1, i + close + 1, true),
            Some(_) if end == close => {
                self.good_arg_num = false;
                (arg_num, i + close + 1, true)
            }
            _ => {
                self.good_arg_num = false;
                (arg_num, i + close + 1, false)
            }
        }
    }

    fn int_from_arg(args: &[Value], arg_num: usize) -> (Option<i64>, usize) {
        if arg_num >= args.len() {
            return (None, arg_num);
        }
        let n = match &args[arg_num] {
            Value::Int(i) if !too_large(*i) => Some(*i),
            _ => None,
        };
        (n, arg_num + 1)
    }

    fn do_printf(&mut self, format: &str, args: &[Value]) {
        let fb = format.as_bytes();
        let end = fb.len();
        let mut arg_num = 0usize;
        let mut i = 0usize;
        self.reordered = false;
        while i < end {
            self.good_arg_num = true;
            let last = i;
            while i < end && fb[i] != b'%' {
                i += 1;
            }
            if i > last {
                self.buf.push_str(&format[last..i]);
            }
            if i >= end {
                break;
            }
            i += 1;
            self.f = Flags::default();
            while i < end {
                match fb[i] {
                    b'#' => self.f.sharp = true,
                    b'0' => self.f.zero = true,
                    b'+' => self.f.plus = true,
                    b'-' => self.f.minus = true,
                    b' ' => self.f.space = true,
                    _ => break,
                }
                i += 1;
            }
            let mut after_index;
            (arg_num, i, after_index) = self.arg_number(arg_num, fb, i, args.len());
            if i < end && fb[i] == b'*' {
                i += 1;
                let (w, next) = Self::int_from_arg(args, arg_num);
                arg_num = next;
                match w {
                    Some(w) => {
                        if w < 0 {
                            self.f.minus = true;
                            self.f.zero = false;
                        }
                        self.f.wid = Some(w.unsigned_abs() as usize);
                    }
                    None => self.buf.push_str("%!(BADWIDTH)"),
                }
                after_index = false;
            } else {
                let (w, next) = parse_num(fb, i, end);
                self.f.wid = w;
                i = next;
                if after_index && w.is_some() {
                    self.good_arg_num = false;
                }
            }
            if i + 1 < end && fb[i] == b'.' {
                i += 1;
                if after_index {
                    self.good_arg_num = false;
                }
                (arg_num, i, after_index) = self.arg_number(arg_num, fb, i, args.len());
                if i < end && fb[i] == b'*' {
                    i += 1;
                    let (p, next) = Self::int_from_arg(args, arg_num);
                    arg_num = next;
                    match p {
                        Some(p) if p >= 0 => self.f.prec = Some(p as usize),
                        Some(_) => self.f.prec = None,
                        None => self.buf.push_str("%!(BADPREC)"),
                    }
                    after_index = false;
                } else {
                    let (p, next) = parse_num(fb, i, end);
                    self.f.prec = Some(p.unwrap_or(0));
                    i = next;
                }
            }
            if !after_index {
                (arg_num, i, _) = self.arg_number(arg_num, fb, i, args.len());
            }
            if i >= end {
                self.buf.push_str("%!(NOVERB)");
                break;
            }
            let verb = format[i..].chars().next().expect("i < end is a char boundary");
            i += verb.len_utf8();
            if verb == '%' {
                self.buf.push('%');
            } else if !self.good_arg_num {
                let _ = write!(self.buf, "%!{verb}(BADINDEX)");
            } else if arg_num >= args.len() {
                let _ = write!(self.buf, "%!{verb}(MISSING)");
            } else {
                if verb == 'v' {
                    self.f.sharp_v = self.f.sharp;
                    self.f.sharp = false;
                    self.f.plus = false;
                }
                self.print_arg(&args[arg_num], verb, 0);
                arg_num += 1;
            }
        }
        if !self.reordered && arg_num < args.len() {
            self.f = Flags::default();
            self.buf.push_str("%!(EXTRA ");
            for (i, a) in args[arg_num..].iter().enumerate() {
                if i > 0 {
                    self.buf.push_str(", ");
                }
                if a.is_nil() {
                    self.buf.push_str("<nil>");
                } else {
                    self.buf.push_str(&a.type_name());
                    self.buf.push('=');
                    self.print_arg(a, 'v', 0);
                }
            }
            self.buf.push(')');
        }
    }
}

/// The rune for `%c`/`%q` of an integer; invalid code points become U+FFFD as in Go.
fn rune_of(i: i64) -> char {
    u32::try_from(i).ok().and_then(char::from_u32).unwrap_or('\u{FFFD}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strconv_g_matches_go() {
        for (v, p, want) in [
            (1234567.0, 4, "1.235e+06"),
            (1.0, 4, "1"),
            (0.0, 4, "0"),
            (123.456, 4, "123.5"),
            (0.000123, 4, "0.000123"),
            (0.0000123, 4, "1.23e-05"),
            (100000.0, -1, "100000"),
            (1e6, -1, "1e+06"),
            (1e21, -1, "1e+21"),
            (-0.22222 * 100.0, 4, "-22.22"),
        ] {
            assert_eq!(format_float(v, 'g', p), want, "{v} {p}");
        }
        assert_eq!(format_float(3720.01, 'f', 2), "3720.01");
        assert_eq!(format_float(0.125, 'f', 2), "0.12");
        assert_eq!(format_float(1.0, 'e', 3), "1.000e+00");
        assert_eq!(format_float(0.0, 'e', -1), "0e+00");
        assert_eq!(format_float(-0.0, 'f', 1), "-0.0");
    }
}
