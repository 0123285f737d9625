//! Prometheus' template functions and alert-template expansion (`template/template.go`,
//! `rules/alerting.go`).
//!
//! [`functions`] builds the function set Prometheus' `NewTemplateExpander` installs; the
//! PromQL engine is not a dependency of this crate, so `query` calls the [`QueryFn`] the
//! caller puts in the [`Context`]. [`expand_alert`] renders an alerting rule's label or
//! annotation as Prometheus does: the `$labels`, `$externalLabels`, `$externalURL` and
//! `$value` definitions are prepended to the text, the template is named `__alert_RULE`, and
//! missing map keys read as empty strings (`missingkey=zero`).

use std::sync::Arc;

use regex::Regex;
use watchfire_model::{Labels, format_go_float};

use crate::builtins::query_escape;
use crate::fmt::{format_float, quote, sprint};
use crate::func::{CallContext, FuncMap, Function, Param, Signature};
use crate::time::{Duration, Time};
use crate::value::{Map, Object, Value};
use crate::{Error, MissingKey, Template};

/// One element of a query result: a float sample and its labels.
#[derive(Clone, Debug, PartialEq)]
pub struct QuerySample {
    pub labels: Labels,
    pub value: f64,
}

/// Runs an instant PromQL query at the evaluation time. Errors are reported as
/// `error calling query: MESSAGE`.
pub type QueryFn = Arc<dyn Fn(&str) -> Result<Vec<QuerySample>, String> + Send + Sync>;

/// What Prometheus' template functions need from their caller.
#[derive(Clone)]
pub struct Context {
    /// Runs `query`. Without it `query` fails with "no query engine".
    pub query: Option<QueryFn>,
    /// The evaluation time in milliseconds since the epoch (`now`, and the query time).
    pub timestamp_ms: i64,
    /// `--web.external-url` (`externalURL`; its path is `pathPrefix`).
    pub external_url: String,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("query", &self.query.as_ref().map(|_| "<fn>"))
            .field("timestamp_ms", &self.timestamp_ms)
            .field("external_url", &self.external_url)
            .finish()
    }
}

/// A sample as templates see it (Prometheus' `*template.sample`): `.Labels` and `.Value`.
#[derive(Clone, Debug)]
pub struct Sample {
    labels: Value,
    value: f64,
}

impl Sample {
    /// The sample's labels as a template map.
    fn label(&self, name: &str) -> String {
        match &self.labels {
            Value::Map(m) => m.get(name).and_then(Value::as_str).unwrap_or_default().to_owned(),
            _ => String::new(),
        }
    }
}

const SAMPLE_TYPE: &str = "*template.sample";
const QUERY_RESULT_TYPE: &str = "template.queryResult";

impl Object for Sample {
    fn type_name(&self) -> &str {
        SAMPLE_TYPE
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Labels" => Some(self.labels.clone()),
            "Value" => Some(Value::Float(self.value)),
            _ => None,
        }
    }

    /// Go prints the struct the pointer points to: `{map[instance:a] 11}`.
    fn format(&self) -> String {
        format!(
            "{{{} {}}}",
            sprint(std::slice::from_ref(&self.labels)),
            format_go_float(self.value)
        )
    }
}

/// The result of `query` (Prometheus' `template.queryResult`, a `[]*sample`).
#[derive(Clone, Debug)]
pub struct QueryResult(Vec<Value>);

impl Object for QueryResult {
    fn type_name(&self) -> &str {
        QUERY_RESULT_TYPE
    }

    fn format(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|s| match s {
                Value::Object(o) => format!("&{}", o.format()),
                v => sprint(std::slice::from_ref(v)),
            })
            .collect();
        format!("[{}]", parts.join(" "))
    }

    fn length(&self) -> Option<usize> {
        Some(self.0.len())
    }

    fn index(&self, key: &Value) -> Option<Result<Value, String>> {
        Some(match key {
            Value::Int(i) => usize::try_from(*i)
                .ok()
                .and_then(|i| self.0.get(i).cloned())
                .ok_or_else(|| format!("index out of range: {i}")),
            other => Err(format!("cannot index slice/array with type {}", other.type_name())),
        })
    }

    fn range(&self) -> Option<Vec<(Value, Value)>> {
        Some(
            self.0
                .iter()
                .enumerate()
                .map(|(i, s)| (Value::from(i), s.clone()))
                .collect(),
        )
    }
}

fn query_result(samples: Vec<QuerySample>) -> Value {
    Value::object(QueryResult(
        samples
            .into_iter()
            .map(|s| {
                Value::object(Sample {
                    labels: Value::from(&s.labels),
                    value: s.value,
                })
            })
            .collect(),
    ))
}

/// Prometheus' `ConvertToFloat`: floats, ints, numeric strings and durations (in seconds).
fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::String(s) => parse_float(s),
        v => match v.downcast::<Duration>() {
            Some(d) => Ok(d.seconds()),
            None => Err(format!("can't convert {} to float", go_type_for_convert(v))),
        },
    }
}

/// `%T` of a value as Go would print it for an `interface {}` holding it.
fn go_type_for_convert(v: &Value) -> String {
    match v {
        Value::Nil => "<nil>".into(),
        v => v.type_name(),
    }
}

/// Go's `strconv.ParseFloat(s, 64)`, with its error messages.
fn parse_float(s: &str) -> Result<f64, String> {
    match watchfire_model::parse_go_float(s) {
        Some(v) if v.is_infinite() && !s.to_ascii_lowercase().contains("inf") => {
            Err(format!("strconv.ParseFloat: parsing {}: value out of range", quote(s)))
        }
        Some(v) => Ok(v),
        None => Err(format!("strconv.ParseFloat: parsing {}: invalid syntax", quote(s))),
    }
}

/// `%.4g`
fn g4(v: f64) -> String {
    format_float(v, 'g', 4)
}

/// Scales `v` (|v| >= 1) down by `base` while it stays at least `base`, naming the steps.
fn scale_up(mut v: f64, base: f64, prefixes: &[&'static str]) -> String {
    let mut prefix = "";
    for p in prefixes {
        if v.abs() < base {
            break;
        }
        prefix = p;
        v /= base;
    }
    format!("{}{prefix}", g4(v))
}

/// Scales `v` (|v| < 1) up by 1000 while it is below one, naming the steps.
fn scale_down(mut v: f64) -> (f64, &'static str) {
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    (v, prefix)
}

pub(crate) fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v.abs() >= 1.0 {
        return scale_up(v, 1000.0, &["k", "M", "G", "T", "P", "E", "Z", "Y"]);
    }
    let (v, prefix) = scale_down(v);
    format!("{}{prefix}", g4(v))
}

pub(crate) fn humanize_1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    scale_up(v, 1024.0, &["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"])
}

/// Prometheus' `humanizeDuration` (seconds in, `1d 2h 3m 4s` out).
pub fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let (sign, v) = if v < 0.0 { ("-", -v) } else { ("", v) };
        let d = v as i64;
        let (days, hours, minutes, seconds) = (d / 86_400, (d / 3600) % 24, (d / 60) % 60, d % 60);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", g4(v));
    }
    let (v, prefix) = scale_down(v);
    format!("{}{prefix}s", g4(v))
}

/// Prometheus' `floatToTime`: seconds to a time with millisecond precision.
fn float_to_time(v: f64) -> Result<Time, String> {
    if v.is_nan() || v.is_infinite() {
        return Err("value is NaN or Inf".into());
    }
    let ns = v * 1e9;
    if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            format_go_float(v)
        ));
    }
    // model.TimeFromUnixNano keeps milliseconds, truncating toward zero.
    Ok(Time::from_unix_millis(ns as i64 / 1_000_000))
}

/// Prometheus' `humanizeTimestamp`.
pub fn humanize_timestamp(v: f64) -> Result<String, String> {
    if v.is_nan() || v.is_infinite() {
        return Ok(g4(v));
    }
    float_to_time(v).map(Time::go_string)
}

/// `cases.Title(language.AmericanEnglish, cases.NoLower)`: the first letter of each word
/// upper-cased (title case), the rest left alone. Letters, digits, `_` and apostrophes or
/// dots between letters continue a word.
pub fn title(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    for (i, &c) in chars.iter().enumerate() {
        let wordish = c.is_alphanumeric() || c == '_';
        let mid = matches!(c, '\'' | '’' | '.' | ':' | '·')
            && in_word
            && i > 0
            && chars[i - 1].is_alphabetic()
            && chars.get(i + 1).is_some_and(|n| n.is_alphabetic());
        if wordish && !in_word {
            out.extend(title_case(c));
        } else {
            out.push(c);
        }
        in_word = wordish || mid;
    }
    out
}

fn title_case(c: char) -> impl Iterator<Item = char> {
    // Title case equals upper case except for a few digraphs; single-char mappings only.
    let mut up = c.to_uppercase();
    let single = (up.len() == 1).then(|| up.next()).flatten();
    std::iter::once(single.unwrap_or(c))
}

/// Go's `strings.ToUpper`/`ToLower`: per-rune simple case mapping (no `ß` → `SS`).
fn map_case(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            let mut m: Vec<char> = if upper {
                c.to_uppercase().collect()
            } else {
                c.to_lowercase().collect()
            };
            if m.len() == 1 { m.pop().unwrap_or(c) } else { c }
        })
        .collect()
}

/// Go's `net.SplitHostPort`.
fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    let i = hostport.rfind(':')?;
    let (host, j, k);
    if hostport.starts_with('[') {
        let end = hostport.find(']')?;
        if end + 1 != i {
            return None;
        }
        host = &hostport[1..end];
        j = 1;
        k = end + 1;
    } else {
        host = &hostport[..i];
        if host.contains(':') {
            return None;
        }
        j = 0;
        k = 0;
    }
    if hostport[j..].contains('[') || hostport[k..].contains(']') {
        return None;
    }
    Some((host, &hostport[i + 1..]))
}

fn strip_port(hostport: &str) -> String {
    match split_host_port(hostport) {
        Some((host, _)) => host.to_owned(),
        None => hostport.to_owned(),
    }
}

fn strip_domain(hostport: &str) -> String {
    let (host, port) = split_host_port(hostport).unwrap_or((hostport, ""));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return hostport.to_owned();
    }
    let host = host.split('.').next().unwrap_or_default();
    if port.is_empty() {
        host.to_owned()
    } else if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The path of a URL (Go's `url.URL.Path`, percent-decoding aside).
fn url_path(url: &str) -> &str {
    let after_scheme = match url.find("://") {
        Some(i) => &url[i + 3..],
        None => return url.split(['?', '#']).next().unwrap_or_default(),
    };
    match after_scheme.find('/') {
        Some(i) => after_scheme[i..].split(['?', '#']).next().unwrap_or_default(),
        None => "",
    }
}

/// Compiles a Go regular expression (RE2 syntax, which Rust's `regex` shares).
fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| {
        let detail = match &e {
            regex::Error::Syntax(s) => s
                .lines()
                .last()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_owned(),
            other => other.to_string(),
        };
        format!("error parsing regexp: {detail}: `{pattern}`")
    })
}

fn str_arg(args: &[Value], i: usize) -> &str {
    args[i].as_str().unwrap_or_default()
}

fn sample_arg(v: &Value) -> &Sample {
    v.downcast::<Sample>()
        .expect("the signature admits only *template.sample")
}

fn query_result_arg(v: &Value) -> &[Value] {
    &v.downcast::<QueryResult>()
        .expect("the signature admits only template.queryResult")
        .0
}

/// Prometheus' text-template functions, bound to `ctx`.
pub fn functions(ctx: &Context) -> FuncMap {
    use Param::{Any, String as Str};
    let sample = Param::Object(SAMPLE_TYPE);
    let result = Param::Object(QUERY_RESULT_TYPE);
    let mut m = FuncMap::new();
    let query = ctx.query.clone();
    m.insert(
        "query",
        Function::new(&[Str], move |a| match &query {
            Some(q) => q(str_arg(a, 0)).map(query_result),
            None => Err("no query engine".into()),
        }),
    );
    m.insert(
        "first",
        Function::new(&[result], |a| {
            query_result_arg(&a[0])
                .first()
                .cloned()
                .ok_or_else(|| "first() called on vector with no elements".to_owned())
        }),
    );
    m.insert(
        "label",
        Function::new(&[Str, sample], |a| {
            Ok(Value::from(sample_arg(&a[1]).label(str_arg(a, 0))))
        }),
    );
    m.insert(
        "value",
        Function::new(&[sample], |a| Ok(Value::Float(sample_arg(&a[0]).value))),
    );
    m.insert(
        "strvalue",
        Function::new(&[sample], |a| Ok(Value::from(sample_arg(&a[0]).label("__value__")))),
    );
    m.insert(
        "args",
        Function::variadic(&[], Any, |a| {
            Ok(Value::from(Map::new(
                Value::Nil,
                a.iter().enumerate().map(|(i, v)| (format!("arg{i}"), v.clone())),
            )))
        }),
    );
    m.insert(
        "reReplaceAll",
        Function::new(&[Str, Str, Str], |a| {
            let re = compile(str_arg(a, 0)).map_err(|e| format!("regexp: Compile({}): {e}", quote(str_arg(a, 0))))?;
            Ok(Value::from(re.replace_all(str_arg(a, 2), str_arg(a, 1)).into_owned()))
        }),
    );
    m.insert("safeHtml", Function::new(&[Str], |a| Ok(a[0].clone())));
    m.insert(
        "match",
        Function::new(&[Str, Str], |a| {
            Ok(Value::Bool(compile(str_arg(a, 0))?.is_match(str_arg(a, 1))))
        }),
    );
    m.insert(
        "title",
        Function::new(&[Str], |a| Ok(Value::from(title(str_arg(a, 0))))),
    );
    m.insert(
        "toUpper",
        Function::new(&[Str], |a| Ok(Value::from(map_case(str_arg(a, 0), true)))),
    );
    m.insert(
        "toLower",
        Function::new(&[Str], |a| Ok(Value::from(map_case(str_arg(a, 0), false)))),
    );
    m.insert(
        "graphLink",
        Function::new(&[Str], |a| {
            Ok(Value::from(format!(
                "/graph?g0.expr={}&g0.tab=0",
                query_escape(str_arg(a, 0))
            )))
        }),
    );
    m.insert(
        "tableLink",
        Function::new(&[Str], |a| {
            Ok(Value::from(format!(
                "/graph?g0.expr={}&g0.tab=1",
                query_escape(str_arg(a, 0))
            )))
        }),
    );
    m.insert(
        "sortByLabel",
        Function::new(&[Str, result], |a| {
            let label = str_arg(a, 0);
            let mut samples = query_result_arg(&a[1]).to_vec();
            samples.sort_by_cached_key(|s| s.downcast::<Sample>().map(|s| s.label(label)).unwrap_or_default());
            Ok(Value::object(QueryResult(samples)))
        }),
    );
    m.insert(
        "stripPort",
        Function::new(&[Str], |a| Ok(Value::from(strip_port(str_arg(a, 0))))),
    );
    m.insert(
        "stripDomain",
        Function::new(&[Str], |a| Ok(Value::from(strip_domain(str_arg(a, 0))))),
    );
    m.insert(
        "humanize",
        Function::new(&[Any], |a| Ok(Value::from(humanize(to_float(&a[0])?)))),
    );
    m.insert(
        "humanize1024",
        Function::new(&[Any], |a| Ok(Value::from(humanize_1024(to_float(&a[0])?)))),
    );
    m.insert(
        "humanizeDuration",
        Function::new(&[Any], |a| Ok(Value::from(humanize_duration(to_float(&a[0])?)))),
    );
    m.insert(
        "humanizePercentage",
        Function::new(&[Any], |a| {
            Ok(Value::from(format!("{}%", g4(to_float(&a[0])? * 100.0))))
        }),
    );
    m.insert(
        "humanizeTimestamp",
        Function::new(&[Any], |a| Ok(Value::from(humanize_timestamp(to_float(&a[0])?)?))),
    );
    m.insert(
        "toTime",
        Function::new(&[Any], |a| Ok(Value::object(float_to_time(to_float(&a[0])?)?))),
    );
    m.insert(
        "toDuration",
        Function::new(&[Any], |a| {
            let secs = to_float(&a[0])?;
            // Go's float-to-int conversion of `v * float64(time.Second)`.
            Ok(Value::object(Duration((secs * 1e9) as i64)))
        }),
    );
    let now = ctx.timestamp_ms as f64 / 1000.0;
    m.insert("now", Function::new(&[], move |_| Ok(Value::Float(now))));
    let path = url_path(&ctx.external_url).to_owned();
    m.insert(
        "pathPrefix",
        Function::new(&[], move |_| Ok(Value::from(path.as_str()))),
    );
    let url = ctx.external_url.clone();
    m.insert(
        "externalURL",
        Function::new(&[], move |_| Ok(Value::from(url.as_str()))),
    );
    m.insert(
        "parseDuration",
        Function::new(&[Str], |a| parse_duration(str_arg(a, 0)).map(Value::Float)),
    );
    m.insert(
        "urlQueryEscape",
        Function::new(&[Str], |a| Ok(Value::from(query_escape(str_arg(a, 0))))),
    );
    m
}

/// The `tmpl NAME DATA` function Prometheus adds for console (HTML) templates: the output of
/// another template of the set. Text-mode expansion (alert labels and annotations) does not
/// have it, so it is not part of [`functions`].
pub fn tmpl_function() -> Function {
    Function::with_context(
        Signature::fixed(&[Param::String, Param::Any]),
        |ctx: &mut CallContext<'_>, a: &[Value]| ctx.execute_template(str_arg(a, 0), a[1].clone()).map(Value::from),
    )
}

/// `model.ParseDurationAllowNegative`, in seconds.
fn parse_duration(s: &str) -> Result<f64, String> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let d = watchfire_model::Duration::parse(body).map_err(|_| format!("not a valid duration string: {}", quote(s)))?;
    let secs = d.as_millis() as f64 / 1000.0;
    Ok(if neg { -secs } else { secs })
}

/// The data alert templates execute with (Prometheus' `AlertTemplateData`).
#[derive(Clone, Debug)]
pub struct AlertData {
    labels: Value,
    external_labels: Value,
    external_url: String,
    value: f64,
}

impl AlertData {
    /// `labels` are the alert's labels as the expression produced them; `value` its sample.
    pub fn new(labels: &Labels, external_labels: &Labels, external_url: &str, value: f64) -> AlertData {
        AlertData {
            labels: Value::from(labels),
            external_labels: Value::from(external_labels),
            external_url: external_url.to_owned(),
            value,
        }
    }
}

impl Object for AlertData {
    /// Go's name for the anonymous struct, as it appears in "can't evaluate field" errors.
    fn type_name(&self) -> &str {
        "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }"
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Labels" => Some(self.labels.clone()),
            "ExternalLabels" => Some(self.external_labels.clone()),
            "ExternalURL" => Some(Value::from(self.external_url.as_str())),
            "Value" => Some(Value::Float(self.value)),
            _ => None,
        }
    }

    fn format(&self) -> String {
        format!(
            "{{{} {} {} {}}}",
            sprint(std::slice::from_ref(&self.labels)),
            sprint(std::slice::from_ref(&self.external_labels)),
            self.external_url,
            format_go_float(self.value)
        )
    }
}

/// The definitions Prometheus prepends to every alert label and annotation template.
pub const ALERT_TEMPLATE_DEFS: &str =
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Expands `text` as Prometheus' `Expander.Expand` does: template `name`, Prometheus'
/// functions, `missingkey=zero`. Errors read `error parsing template NAME: ...` or
/// `error executing template NAME: ...`.
pub fn expand(name: &str, text: &str, data: &Value, ctx: &Context) -> Result<String, Error> {
    let template = Template::new(name)
        .funcs(functions(ctx))
        .missing_key(MissingKey::Zero)
        .parse(text)
        .map_err(|e| Error::Expand {
            action: "parsing",
            name: name.to_owned(),
            source: Box::new(e),
        })?;
    template.execute(data).map_err(|e| Error::Expand {
        action: "executing",
        name: name.to_owned(),
        source: Box::new(e),
    })
}

/// Expands an alerting rule's label or annotation template as Prometheus' rule manager does:
/// [`ALERT_TEMPLATE_DEFS`] are prepended and the template is named `__alert_RULE`. On error
/// Prometheus uses `<error expanding template: ERR>` as the value; that is the caller's choice.
pub fn expand_alert(rule_name: &str, text: &str, data: &AlertData, ctx: &Context) -> Result<String, Error> {
    let full = format!("{ALERT_TEMPLATE_DEFS}{text}");
    expand(
        &format!("__alert_{rule_name}"),
        &full,
        &Value::object(data.clone()),
        ctx,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_matches_x_text_cases() {
        assert_eq!(title("aa bb CC"), "Aa Bb CC");
        assert_eq!(title("hello-world foo_bar don't"), "Hello-World Foo_bar Don't");
        assert_eq!(title("élan 1st"), "Élan 1st");
    }

    #[test]
    fn host_port_splitting_matches_go() {
        assert_eq!(split_host_port("a:1"), Some(("a", "1")));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1", "80")));
        assert_eq!(split_host_port("::1"), None);
        assert_eq!(split_host_port("[::1]::80"), None);
        assert_eq!(url_path("http://h:9090/path/prefix?x"), "/path/prefix");
        assert_eq!(url_path("http://h:9090"), "");
    }
}
