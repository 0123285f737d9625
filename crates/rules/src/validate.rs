//! Loading and checking rule files, with errors that point into the file.
//!
//! [`watchfire_config::rules::RuleFile`] does the structural checks (upstream `rulefmt`); the
//! checks that need the PromQL parser and the template engine live here, because the config
//! crate must not depend on them. Upstream reports a bad expression at the position of the
//! `expr` value plus the parser's position inside the expression (`5:15: ... could not parse
//! expression: 1:6: parse error: ...`); Watchfire keeps that message and reports, as the
//! error's own `file:line:column`, the place in the file where the parser stopped: the start
//! of the value plus the offset within it, through quoting, escapes and block scalars. Label
//! and annotation template errors point at their value.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::{Location, Spanned};
use watchfire_config::Error;
use watchfire_config::error::Position;
use watchfire_config::rules::RuleFile;

/// Checks an alerting rule's label or annotation template as promtool does: the alert
/// variables' definitions prepended, parsed with Prometheus' function set (which makes calls
/// of unknown functions and undefined variables errors).
pub fn check_template(text: &str) -> Result<(), String> {
    use watchfire_template::prometheus::{ALERT_TEMPLATE_DEFS, Context, functions};
    let ctx = Context {
        query: None,
        timestamp_ms: 0,
        external_url: String::new(),
    };
    watchfire_template::Template::new("__alert")
        .funcs(functions(&ctx))
        .parse(&format!("{ALERT_TEMPLATE_DEFS}{text}"))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Reads a rule file and checks it completely: structure, expressions and templates. Every
/// problem is reported, each with `file:line:column`.
pub fn load_rule_file(path: &Path) -> Result<RuleFile, Error> {
    let src = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_rule_file(&src, path)
}

/// [`load_rule_file`] on text already read; `path` names the file in errors.
pub fn parse_rule_file(src: &str, path: &Path) -> Result<RuleFile, Error> {
    let file = RuleFile::parse(src, path)?;
    validate(&file, src, path)?;
    Ok(file)
}

/// The checks of upstream `rulefmt`'s `Rule.Validate` that need PromQL and templates, in the
/// order [`RuleFile::validate_with`] reports them.
fn validate(file: &RuleFile, src: &str, path: &Path) -> Result<(), Error> {
    let spans = Spans::read(src);
    let mut errors = Vec::new();
    for (gi, group) in file.groups.iter().enumerate() {
        for (ri, rule) in group.value.rules.iter().enumerate() {
            let r = &rule.value;
            let context = format!("group {:?}, rule {}, {:?}", group.value.name, ri + 1, r.name());
            let rule_at = Position::from_location(&rule.referenced);
            let span = spans.as_ref().and_then(|s| s.rule(gi, ri));
            let mut push = |position: Option<Position>, message: String| {
                errors.push(Error::Invalid {
                    path: path.to_path_buf(),
                    position: position.or(rule_at),
                    message: format!("{context}: {message}"),
                });
            };
            if !r.expr.is_empty()
                && let Err(e) = watchfire_promql::parse_expr(&r.expr)
            {
                let at = span
                    .and_then(|s| s.expr.as_ref())
                    .and_then(|loc| locate(src, &loc.defined, &r.expr, e.offset()));
                push(at, format!("could not parse expression: {e}"));
            }
            if r.is_alerting() {
                for (kind, map, spans) in [
                    ("label", &r.labels, span.and_then(|s| s.labels.as_ref())),
                    ("annotation", &r.annotations, span.and_then(|s| s.annotations.as_ref())),
                ] {
                    for (name, text) in map {
                        if let Err(e) = check_template(text) {
                            let at = spans
                                .and_then(|m| m.get(name))
                                .and_then(|s| Position::from_location(&s.defined));
                            push(at, format!("{kind} {name:?}: {e}"));
                        }
                    }
                }
            }
        }
    }
    Error::from_list(errors)
}

/// Where the values of interest are in the file, read by a second, lenient pass over the
/// YAML (the strict pass in the config crate keeps only the rules' own positions).
#[derive(Debug, Default, Deserialize)]
struct Spans {
    #[serde(default)]
    groups: Option<Vec<GroupSpans>>,
}

#[derive(Debug, Default, Deserialize)]
struct GroupSpans {
    #[serde(default)]
    rules: Option<Vec<RuleSpans>>,
}

#[derive(Debug, Default, Deserialize)]
struct RuleSpans {
    #[serde(default)]
    expr: Option<Spanned<IgnoredAny>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, Spanned<IgnoredAny>>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, Spanned<IgnoredAny>>>,
}

impl Spans {
    /// The positions, or `None` when the lenient pass fails (then errors point at the rule).
    fn read(src: &str) -> Option<Spans> {
        serde_saphyr::from_str::<Option<Spans>>(src)
            .ok()
            .map(Option::unwrap_or_default)
    }

    fn rule(&self, group: usize, rule: usize) -> Option<&RuleSpans> {
        self.groups.as_ref()?.get(group)?.rules.as_ref()?.get(rule)
    }
}

/// The 1-based line and column (in characters) of byte `i` of `src`.
fn position_of(src: &str, i: usize) -> Position {
    let before = &src[..i];
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    Position {
        line: 1 + before.matches('\n').count() as u64,
        column: 1 + before[line_start..].chars().count() as u64,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Block,
}

/// The length of the escape sequence of a double-quoted scalar at the start of `s`
/// (which starts with a backslash).
fn escape_len(s: &str) -> usize {
    match s.as_bytes().get(1) {
        Some(b'x') => 4,
        Some(b'u') => 6,
        Some(b'U') => 10,
        Some(_) => 1 + s[1..].chars().next().map_or(0, char::len_utf8),
        None => 1,
    }
}

/// The file position of byte `offset` of the scalar `value`, whose node `loc` points at.
///
/// The value is walked side by side with its source text: equal characters advance both,
/// escapes and doubled quotes advance the source by their length, and a run of whitespace in
/// the value (line folding, block indentation, escaped newlines) matches a run of whitespace
/// in the source. If the two ever disagree (a tag or an alias this does not follow), the
/// answer is `None` and the caller falls back to a coarser position. An offset at or past
/// the end points just after the value's last non-blank character.
fn locate(src: &str, loc: &Location, value: &str, offset: usize) -> Option<Position> {
    let mut i = usize::try_from(loc.span().byte_offset()?).ok()?;
    if i > src.len() || !src.is_char_boundary(i) {
        return None;
    }
    // A tag or anchor before the scalar.
    while src[i..].starts_with(['!', '&']) {
        i += src[i..].find([' ', '\t', '\n'])?;
        i += src[i..].len() - src[i..].trim_start_matches([' ', '\t']).len();
    }
    let style = match src[i..].chars().next()? {
        '"' => Style::Double,
        '\'' => Style::Single,
        '|' | '>' => Style::Block,
        _ => Style::Plain,
    };
    match style {
        Style::Double | Style::Single => i += 1,
        // The content starts on the line after the header (`|`, `>-`, `|2 # comment`).
        Style::Block => i += src[i..].find('\n')? + 1,
        Style::Plain => {}
    }
    let target = offset.min(value.len());
    let mut v = 0;
    let mut end_of_text = i;
    while v < value.len() {
        let c = value[v..].chars().next()?;
        if c.is_whitespace() {
            let run = value[v..].find(|c: char| !c.is_whitespace()).unwrap_or(value.len() - v);
            if (v..v + run).contains(&target) && target < value.trim_end().len() {
                return Some(position_of(src, i));
            }
            loop {
                let rest = &src[i..];
                match rest.chars().next() {
                    Some(s) if s.is_whitespace() => i += s.len_utf8(),
                    // Escapes that stand for whitespace, and escaped line breaks.
                    Some('\\')
                        if style == Style::Double
                            && rest[1..].starts_with(['n', 't', 'r', ' ', '\n', '\r', 'L', 'N', 'P', '_']) =>
                    {
                        i += escape_len(rest)
                    }
                    _ => break,
                }
            }
            v += run;
            continue;
        }
        if v == target {
            return Some(position_of(src, i));
        }
        let rest = &src[i..];
        let s = rest.chars().next()?;
        match style {
            Style::Double if s == '\\' => {
                if rest[1..].starts_with(['\n', '\r']) {
                    // A line continuation stands for nothing.
                    i += 1;
                    continue;
                }
                i += escape_len(rest);
            }
            Style::Single if s == '\'' => {
                if !rest[1..].starts_with('\'') || c != '\'' {
                    return None;
                }
                i += 2;
            }
            _ if s == c => i += s.len_utf8(),
            _ => return None,
        }
        v += c.len_utf8();
        end_of_text = i;
    }
    Some(position_of(src, end_of_text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAD: &str = r#"groups:
  - name: g
    rules:
      - alert: Plain
        expr: up ==
        for: 5m
      - alert: Block
        expr: |
          sum by (job) (
            rate(http_requests_total[5m]
          ) > 0
      - alert: Quoted
        expr: "up{job=\"a\"} ==== 1"
      - alert: Folded
        expr: >
          sum(rate(x[5m]))
          > bad(
      - record: single
        expr: 'up{job=''a''} +'
      - alert: Tpl
        expr: up
        annotations:
          summary: "{{ nosuchfunc }}"
"#;

    fn errors(src: &str) -> Vec<String> {
        match parse_rule_file(src, Path::new("bad.yml")) {
            Ok(_) => Vec::new(),
            Err(Error::Many(list)) => list.iter().map(ToString::to_string).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn expression_errors_point_into_the_file() {
        let got = errors(BAD);
        // promtool 2.42 reports the value's start and the offset inside it separately:
        //   bad.yml: 5:15: group "g", rule 1, "Plain": could not parse expression: 1:6: ...
        // the file position here is where the parser stopped.
        assert_eq!(
            got[0],
            "bad.yml:5:20: group \"g\", rule 1, \"Plain\": could not parse expression: 1:6: parse error: unexpected end of input"
        );
        assert!(
            got[1].starts_with("bad.yml:11:16: group \"g\", rule 2, \"Block\": could not parse expression: "),
            "{}",
            got[1]
        );
        assert!(
            got[2].starts_with("bad.yml:13:32: group \"g\", rule 3, \"Quoted\": could not parse expression: 1:15: "),
            "{}",
            got[2]
        );
        assert!(
            got[3].starts_with("bad.yml:17:17: group \"g\", rule 4, \"Folded\": could not parse expression: "),
            "{}",
            got[3]
        );
        assert!(
            got[4].starts_with("bad.yml:19:31: group \"g\", rule 5, \"single\": could not parse expression: 1:14: "),
            "{}",
            got[4]
        );
        assert!(
            got[5].starts_with("bad.yml:23:20: group \"g\", rule 6, \"Tpl\": annotation \"summary\": "),
            "{}",
            got[5]
        );
        assert_eq!(got.len(), 6, "{got:#?}");
    }

    #[test]
    fn errors_inside_the_text_point_at_the_token() {
        let src =
            "groups:\n- name: g\n  rules:\n  - record: r\n    expr: |\n      sum(\n        rate(x[5m] +)\n      )\n";
        let got = errors(src);
        assert_eq!(got.len(), 1);
        // The parser stops at the `)` after `+`: line 7, column 21.
        assert!(got[0].starts_with("bad.yml:7:21: "), "{}", got[0]);
        let src = "groups:\n- name: g\n  rules:\n  - record: r\n    expr: \"sum(\\\"a\\\") +\\n foo bar\"\n";
        let got = errors(src);
        assert_eq!(got.len(), 1);
        assert!(got[0].contains("could not parse expression"), "{}", got[0]);
    }

    #[test]
    fn aliased_expressions_point_at_their_definition() {
        let src = "groups:\n- name: g\n  rules:\n  - record: a\n    expr: &e 'up +'\n  - record: b\n    expr: *e\n";
        let got = errors(src);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("bad.yml:5:"), "{}", got[0]);
        assert!(got[1].starts_with("bad.yml:5:"), "{}", got[1]);
    }

    #[test]
    fn good_files_load() {
        let src =
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    annotations: {s: '{{ $value }}'}\n";
        let f = parse_rule_file(src, Path::new("ok.yml")).unwrap();
        assert_eq!(f.rule_count(), 1);
    }
}
