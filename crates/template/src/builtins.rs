//! Go's predefined template functions (`text/template/funcs.go`), minus `and`, `or` and
//! `call`, which the executor evaluates itself because they need unevaluated arguments or the
//! argument's source text.

use std::fmt::Write as _;

use crate::fmt::{sprint, sprintf, sprintln};
use crate::func::{Param, Signature};
use crate::value::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Builtin {
    And,
    Or,
    Not,
    Len,
    Index,
    Slice,
    Call,
    Print,
    Printf,
    Println,
    Html,
    Js,
    Urlquery,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Builtin {
    pub fn lookup(name: &str) -> Option<Builtin> {
        Some(match name {
            "and" => Builtin::And,
            "or" => Builtin::Or,
            "not" => Builtin::Not,
            "len" => Builtin::Len,
            "index" => Builtin::Index,
            "slice" => Builtin::Slice,
            "call" => Builtin::Call,
            "print" => Builtin::Print,
            "printf" => Builtin::Printf,
            "println" => Builtin::Println,
            "html" => Builtin::Html,
            "js" => Builtin::Js,
            "urlquery" => Builtin::Urlquery,
            "eq" => Builtin::Eq,
            "ne" => Builtin::Ne,
            "lt" => Builtin::Lt,
            "le" => Builtin::Le,
            "gt" => Builtin::Gt,
            "ge" => Builtin::Ge,
            _ => return None,
        })
    }

    /// The Go signatures; `reflect.Value` and `interface {}` parameters are both `Any`.
    pub fn signature(self) -> Signature {
        use Param::Any;
        match self {
            Builtin::And | Builtin::Or | Builtin::Index | Builtin::Slice | Builtin::Call | Builtin::Eq => {
                Signature::variadic(&[Any], Any)
            }
            Builtin::Not | Builtin::Len => Signature::fixed(&[Any]),
            Builtin::Print | Builtin::Println | Builtin::Html | Builtin::Js | Builtin::Urlquery => {
                Signature::variadic(&[], Any)
            }
            Builtin::Printf => Signature::variadic(&[Param::String], Any),
            Builtin::Ne | Builtin::Lt | Builtin::Le | Builtin::Gt | Builtin::Ge => Signature::fixed(&[Any, Any]),
        }
    }

    /// Calls a builtin other than `and`, `or` and `call`.
    pub fn call(self, args: &[Value]) -> Result<Value, String> {
        Ok(match self {
            Builtin::Not => Value::Bool(!args[0].is_true()),
            Builtin::Len => Value::Int(length(&args[0])?),
            Builtin::Index => index(&args[0], &args[1..])?,
            Builtin::Slice => slice(&args[0], &args[1..])?,
            Builtin::Print => Value::from(sprint(args)),
            Builtin::Printf => {
                let format = args[0].as_str().unwrap_or_default();
                Value::from(sprintf(format, &args[1..]))
            }
            Builtin::Println => Value::from(sprintln(args)),
            Builtin::Html => Value::from(html_escape(&eval_args(args))),
            Builtin::Js => Value::from(js_escape(&eval_args(args))),
            Builtin::Urlquery => Value::from(query_escape(&eval_args(args))),
            Builtin::Eq => Value::Bool(eq(&args[0], &args[1..])?),
            Builtin::Ne => Value::Bool(!eq(&args[0], &args[1..])?),
            Builtin::Lt => Value::Bool(lt(&args[0], &args[1])?),
            Builtin::Le => Value::Bool(lt(&args[0], &args[1])? || eq(&args[0], &args[1..])?),
            Builtin::Gt => Value::Bool(!(lt(&args[0], &args[1])? || eq(&args[0], &args[1..])?)),
            Builtin::Ge => Value::Bool(!lt(&args[0], &args[1])?),
            Builtin::And | Builtin::Or | Builtin::Call => {
                return Err("and, or and call are evaluated by the executor".into());
            }
        })
    }
}

/// The text of the arguments of `html`, `js` and `urlquery`: `fmt.Sprint` of them, except
/// that nil prints as `<no value>` as in an action.
fn eval_args(args: &[Value]) -> String {
    if let [Value::String(s)] = args {
        return s.to_string();
    }
    let printable: Vec<Value> = args
        .iter()
        .map(|a| {
            if a.is_nil() {
                Value::from("<no value>")
            } else {
                a.clone()
            }
        })
        .collect();
    sprint(&printable)
}

fn length(v: &Value) -> Result<i64, String> {
    let n = match v {
        Value::String(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        Value::Object(o) => o.length().ok_or_else(|| format!("len of type {}", o.type_name()))?,
        Value::Nil => return Err("len of nil pointer".into()),
        other => return Err(format!("len of type {}", other.type_name())),
    };
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

/// An integer index argument, checked against `cap` as Go's `indexArg` does.
fn index_arg(index: &Value, cap: usize) -> Result<usize, String> {
    let x = match index {
        Value::Int(i) => *i,
        Value::Nil => return Err("cannot index slice/array with nil".into()),
        other => return Err(format!("cannot index slice/array with type {}", other.type_name())),
    };
    if x < 0 || x as u64 > cap as u64 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

fn index(item: &Value, indexes: &[Value]) -> Result<Value, String> {
    if item.is_nil() {
        return Err("index of untyped nil".into());
    }
    let mut item = item.clone();
    for ix in indexes {
        item = match &item {
            Value::List(l) => {
                let i = index_arg(ix, l.len())?;
                l.get(i).cloned().ok_or_else(|| format!("index out of range: {i}"))?
            }
            Value::String(s) => {
                let i = index_arg(ix, s.len())?;
                let b = s.as_bytes().get(i).ok_or_else(|| format!("index out of range: {i}"))?;
                Value::Int(i64::from(*b))
            }
            Value::Map(m) => match ix {
                Value::String(k) => m.get(k).cloned().unwrap_or_else(|| m.zero().clone()),
                Value::Nil => return Err("value is nil; should be of type string".into()),
                other => return Err(format!("value has type {}; should be string", other.type_name())),
            },
            Value::Object(o) => match o.index(ix) {
                Some(r) => r?,
                None => return Err(format!("can't index item of type {}", o.type_name())),
            },
            Value::Nil => return Err("index of nil pointer".into()),
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

fn slice(item: &Value, indexes: &[Value]) -> Result<Value, String> {
    if item.is_nil() {
        return Err("slice of untyped nil".into());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    match item {
        Value::String(s) => {
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            let (lo, hi) = slice_bounds(indexes, s.len())?;
            Ok(Value::from(String::from_utf8_lossy(&s.as_bytes()[lo..hi]).into_owned()))
        }
        Value::List(l) => {
            let (lo, hi) = slice_bounds(indexes, l.len())?;
            Ok(Value::list(l[lo..hi].iter().cloned()))
        }
        other => Err(format!("can't slice item of type {}", other.type_name())),
    }
}

/// The `[lo:hi]` (or `[lo:hi:max]`) bounds of a slice expression, checked as Go checks them.
fn slice_bounds(indexes: &[Value], len: usize) -> Result<(usize, usize), String> {
    let mut idx = [0, len, len];
    for (i, ix) in indexes.iter().enumerate() {
        idx[i] = index_arg(ix, len)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    Ok((idx[0], idx[1]))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    String,
    Other,
}

fn basic_kind(v: &Value) -> Kind {
    match v {
        Value::Nil => Kind::Invalid,
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::String(_) => Kind::String,
        Value::Object(o) => match o.underlying() {
            Some(u) => basic_kind(&u),
            None => Kind::Other,
        },
        _ => Kind::Other,
    }
}

/// The basic value an object compares as, if any.
fn comparable(v: &Value) -> Value {
    match v {
        Value::Object(o) => o.underlying().unwrap_or_else(|| v.clone()),
        _ => v.clone(),
    }
}

const BAD_COMPARISON: &str = "incompatible types for comparison";
const BAD_COMPARISON_TYPE: &str = "invalid type for comparison";

/// Go's `eq`: `arg1 == arg2 || arg1 == arg3 ...`, comparing basic kinds; nil equals only nil.
fn eq(arg1: &Value, rest: &[Value]) -> Result<bool, String> {
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let a = comparable(arg1);
    let k1 = basic_kind(&a);
    for arg in rest {
        let b = comparable(arg);
        let k2 = basic_kind(&b);
        let truth = if k1 != k2 {
            if k1 != Kind::Invalid && k2 != Kind::Invalid {
                return Err(BAD_COMPARISON.into());
            }
            false
        } else {
            match (&a, &b) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Int(x), Value::Int(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::String(x), Value::String(y)) => x == y,
                (Value::Nil, Value::Nil) => true,
                (Value::Object(x), Value::Object(y)) => std::sync::Arc::ptr_eq(x, y),
                (Value::Func(_), _) | (_, Value::Func(_)) => return Err(non_comparable(&b)),
                _ => return Err(non_comparable(&b)),
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn non_comparable(v: &Value) -> String {
    format!(
        "non-comparable type {}: {}",
        sprint(std::slice::from_ref(v)),
        v.type_name()
    )
}

/// Go's `lt` on basic kinds of the same kind (bools are not ordered).
fn lt(arg1: &Value, arg2: &Value) -> Result<bool, String> {
    let a = comparable(arg1);
    let b = comparable(arg2);
    let (k1, k2) = (basic_kind(&a), basic_kind(&b));
    if matches!(k1, Kind::Invalid | Kind::Other) || matches!(k2, Kind::Invalid | Kind::Other) {
        return Err(BAD_COMPARISON_TYPE.into());
    }
    if k1 != k2 {
        return Err(BAD_COMPARISON.into());
    }
    Ok(match (&a, &b) {
        (Value::Int(x), Value::Int(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::String(x), Value::String(y)) => x < y,
        _ => return Err(BAD_COMPARISON_TYPE.into()),
    })
}

/// Go's `template.HTMLEscapeString`.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub(crate) fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u00{:02X}", c as u32);
            }
            c if !c.is_ascii() && !crate::fmt::is_print(c) => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapers_match_go() {
        assert_eq!(
            html_escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&#34;x&#34;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            js_escape("a'b\"c<d>=&\n"),
            "a\\'b\\\"c\\u003Cd\\u003E\\u003D\\u0026\\u000A"
        );
        assert_eq!(query_escape("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
