//! Alertmanager's notification templates (upstream `template/template.go`): the data model
//! templates see (`.Receiver`, `.Status`, `.Alerts`, `.GroupLabels`, ...), the functions
//! (`DefaultFuncs`), Watchfire's default templates, and user template files loaded on top.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use watchfire_alerting::{Alert, NotificationGroup};
use watchfire_template::time::{Duration as GoDuration, Time};
use watchfire_template::{FuncMap, Function, MissingKey, Object, Param, Signature, Template, Value};

/// Watchfire's default notification templates: every `define` of Alertmanager's
/// `default.tmpl` and `email.tmpl`, written for Watchfire, producing the same text for the
/// text templates.
pub const DEFAULT_TEMPLATES: &str = include_str!("default.tmpl");

/// A template problem: parsing a file or a config field, or executing one.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("reading template file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("invalid template glob {glob:?}: {message}")]
    Glob { glob: String, message: String },
    #[error("{0}")]
    Template(#[from] watchfire_template::Error),
    #[error("rendering route labels: {0}")]
    RouteLabel(String),
}

/// Go's `time.Time` of an instant.
pub fn go_time(t: jiff::Timestamp) -> Time {
    Time::from_unix(t.as_second(), i64::from(t.subsec_nanosecond()))
}

/// Go's `regexp.QuoteMeta`.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Data model

/// `template.KV`: a label or annotation set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Kv(pub BTreeMap<String, String>);

impl Kv {
    /// `SortedPairs`: `alertname` first, then by name.
    pub fn sorted_pairs(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::with_capacity(self.0.len());
        if let Some(v) = self.0.get("alertname") {
            out.push(("alertname".into(), v.clone()));
        }
        out.extend(
            self.0
                .iter()
                .filter(|(k, _)| *k != "alertname")
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        out
    }

    fn remove(&self, names: &[String]) -> Kv {
        Kv(self
            .0
            .iter()
            .filter(|(k, _)| !names.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn pairs_string(pairs: &[(String, String)]) -> String {
        pairs
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        )
    }
}

impl Object for Kv {
    fn type_name(&self) -> &str {
        "template.KV"
    }

    fn field(&self, name: &str) -> Option<Value> {
        // A map: a missing key reads as "" (missingkey=zero).
        Some(Value::from(self.0.get(name).cloned().unwrap_or_default()))
    }

    fn method(&self, name: &str) -> Option<Signature> {
        match name {
            "SortedPairs" | "Names" | "Values" | "String" => Some(Signature::fixed(&[])),
            "Remove" => Some(Signature::fixed(&[Param::Any])),
            _ => None,
        }
    }

    fn call_method(&self, name: &str, args: &[Value]) -> Result<Value, String> {
        Ok(match name {
            "SortedPairs" => Value::object(Pairs(self.sorted_pairs())),
            "Names" => Value::object(Strings(self.sorted_pairs().into_iter().map(|p| p.0).collect())),
            "Values" => Value::object(Strings(self.sorted_pairs().into_iter().map(|p| p.1).collect())),
            "String" => Value::from(Kv::pairs_string(&self.sorted_pairs())),
            "Remove" => Value::object(self.remove(&string_list(&args[0], "[]string")?)),
            _ => return Err(format!("template.KV has no method {name}")),
        })
    }

    fn format(&self) -> String {
        let inner: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("map[{}]", inner.join(" "))
    }

    fn length(&self) -> Option<usize> {
        Some(self.0.len())
    }

    fn index(&self, key: &Value) -> Option<Result<Value, String>> {
        Some(match key.as_str() {
            Some(k) => Ok(Value::from(self.0.get(k).cloned().unwrap_or_default())),
            None => Err(format!("value has type {}; should be string", key.type_name())),
        })
    }

    fn range(&self) -> Option<Vec<(Value, Value)>> {
        Some(
            self.0
                .iter()
                .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())))
                .collect(),
        )
    }
}

/// `template.Pairs`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pairs(pub Vec<(String, String)>);

/// `template.Pair`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair(pub String, pub String);

impl Object for Pair {
    fn type_name(&self) -> &str {
        "template.Pair"
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Name" => Some(Value::from(self.0.as_str())),
            "Value" => Some(Value::from(self.1.as_str())),
            _ => None,
        }
    }

    fn format(&self) -> String {
        format!("{{{} {}}}", self.0, self.1)
    }
}

impl Object for Pairs {
    fn type_name(&self) -> &str {
        "template.Pairs"
    }

    fn method(&self, name: &str) -> Option<Signature> {
        matches!(name, "Names" | "Values" | "String").then(|| Signature::fixed(&[]))
    }

    fn call_method(&self, name: &str, _args: &[Value]) -> Result<Value, String> {
        Ok(match name {
            "Names" => Value::object(Strings(self.0.iter().map(|p| p.0.clone()).collect())),
            "Values" => Value::object(Strings(self.0.iter().map(|p| p.1.clone()).collect())),
            "String" => Value::from(Kv::pairs_string(&self.0)),
            _ => return Err(format!("template.Pairs has no method {name}")),
        })
    }

    fn format(&self) -> String {
        Kv::pairs_string(&self.0)
    }

    fn is_stringer(&self) -> bool {
        true
    }

    fn length(&self) -> Option<usize> {
        Some(self.0.len())
    }

    fn index(&self, key: &Value) -> Option<Result<Value, String>> {
        Some(list_index(key, self.0.len()).map(|i| Value::object(Pair(self.0[i].0.clone(), self.0[i].1.clone()))))
    }

    fn range(&self) -> Option<Vec<(Value, Value)>> {
        Some(
            self.0
                .iter()
                .enumerate()
                .map(|(i, p)| (Value::from(i), Value::object(Pair(p.0.clone(), p.1.clone()))))
                .collect(),
        )
    }
}

/// `template.Strings`.
#[derive(Clone, Debug, PartialEq)]
pub struct Strings(pub Vec<String>);

impl Object for Strings {
    fn type_name(&self) -> &str {
        "template.Strings"
    }

    fn method(&self, name: &str) -> Option<Signature> {
        (name == "Join").then(|| Signature::fixed(&[Param::String]))
    }

    fn call_method(&self, name: &str, args: &[Value]) -> Result<Value, String> {
        match name {
            "Join" => Ok(Value::from(self.0.join(args[0].as_str().unwrap_or_default()))),
            _ => Err(format!("template.Strings has no method {name}")),
        }
    }

    fn format(&self) -> String {
        format!("[{}]", self.0.join(" "))
    }

    fn length(&self) -> Option<usize> {
        Some(self.0.len())
    }

    fn index(&self, key: &Value) -> Option<Result<Value, String>> {
        Some(list_index(key, self.0.len()).map(|i| Value::from(self.0[i].as_str())))
    }

    fn range(&self) -> Option<Vec<(Value, Value)>> {
        Some(
            self.0
                .iter()
                .enumerate()
                .map(|(i, s)| (Value::from(i), Value::from(s.as_str())))
                .collect(),
        )
    }
}

fn list_index(key: &Value, len: usize) -> Result<usize, String> {
    match key {
        Value::Int(i) if *i >= 0 && (*i as u64) < len as u64 => Ok(*i as usize),
        Value::Int(i) => Err(format!("index out of range: {i}")),
        other => Err(format!("cannot index slice/array with type {}", other.type_name())),
    }
}

/// A list of strings from a `[]string`-like value (Strings, a list of strings).
fn string_list(v: &Value, want: &str) -> Result<Vec<String>, String> {
    if let Some(s) = v.downcast::<Strings>() {
        return Ok(s.0.clone());
    }
    match v {
        Value::List(l) => l
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("wrong type for value; expected {want}; got {}", v.type_name()))
            })
            .collect(),
        Value::Nil => Ok(Vec::new()),
        _ => Err(format!("wrong type for value; expected {want}; got {}", v.type_name())),
    }
}

/// `template.Alert`.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertData {
    pub status: &'static str,
    pub labels: Kv,
    pub annotations: Kv,
    pub starts_at: Time,
    pub ends_at: Time,
    pub generator_url: String,
    pub fingerprint: String,
}

/// RFC 3339 with nanoseconds, as Go's `time.Time` marshals to JSON.
pub fn json_time(t: Time) -> String {
    t.format("2006-01-02T15:04:05.999999999Z07:00")
}

impl AlertData {
    fn new(a: &Alert, now: jiff::Timestamp) -> AlertData {
        AlertData {
            status: if a.resolved_at(now) { "resolved" } else { "firing" },
            labels: Kv(a
                .labels
                .iter()
                .map(|l| (l.name.to_owned(), l.value.to_owned()))
                .collect()),
            annotations: Kv(a.annotations.clone()),
            starts_at: go_time(a.starts_at),
            ends_at: go_time(a.ends_at),
            generator_url: a.generator_url.clone(),
            fingerprint: a.fingerprint().to_string(),
        }
    }

    /// The alert as upstream's webhook and `toJson` print it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "status": self.status,
            "labels": self.labels.to_json(),
            "annotations": self.annotations.to_json(),
            "startsAt": json_time(self.starts_at),
            "endsAt": json_time(self.ends_at),
            "generatorURL": self.generator_url,
            "fingerprint": self.fingerprint,
        })
    }
}

impl Object for AlertData {
    fn type_name(&self) -> &str {
        "template.Alert"
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Status" => Value::from(self.status),
            "Labels" => Value::object(self.labels.clone()),
            "Annotations" => Value::object(self.annotations.clone()),
            "StartsAt" => Value::object(self.starts_at),
            "EndsAt" => Value::object(self.ends_at),
            "GeneratorURL" => Value::from(self.generator_url.as_str()),
            "Fingerprint" => Value::from(self.fingerprint.as_str()),
            _ => return None,
        })
    }

    fn format(&self) -> String {
        format!(
            "{{{} {} {} {} {} {} {}}}",
            self.status,
            self.labels.format(),
            self.annotations.format(),
            self.starts_at.go_string(),
            self.ends_at.go_string(),
            self.generator_url,
            self.fingerprint
        )
    }
}

/// `template.Alerts`, with `.Firing` and `.Resolved`.
#[derive(Clone, Debug, PartialEq)]
pub struct Alerts(pub Arc<Vec<AlertData>>);

impl Alerts {
    fn filter(&self, status: &str) -> Alerts {
        Alerts(Arc::new(
            self.0.iter().filter(|a| a.status == status).cloned().collect(),
        ))
    }

    /// The alerts as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(self.0.iter().map(AlertData::to_json).collect())
    }
}

impl Object for Alerts {
    fn type_name(&self) -> &str {
        "template.Alerts"
    }

    fn method(&self, name: &str) -> Option<Signature> {
        matches!(name, "Firing" | "Resolved").then(|| Signature::fixed(&[]))
    }

    fn call_method(&self, name: &str, _args: &[Value]) -> Result<Value, String> {
        match name {
            "Firing" => Ok(Value::object(self.filter("firing"))),
            "Resolved" => Ok(Value::object(self.filter("resolved"))),
            _ => Err(format!("template.Alerts has no method {name}")),
        }
    }

    fn format(&self) -> String {
        format!("[{}]", self.0.iter().map(|a| a.format()).collect::<Vec<_>>().join(" "))
    }

    fn length(&self) -> Option<usize> {
        Some(self.0.len())
    }

    fn index(&self, key: &Value) -> Option<Result<Value, String>> {
        Some(list_index(key, self.0.len()).map(|i| Value::object(self.0[i].clone())))
    }

    fn range(&self) -> Option<Vec<(Value, Value)>> {
        Some(
            self.0
                .iter()
                .enumerate()
                .map(|(i, a)| (Value::from(i), Value::object(a.clone())))
                .collect(),
        )
    }
}

/// `template.Data`: what `.` is in a notification template.
#[derive(Clone, Debug, PartialEq)]
pub struct Data {
    pub receiver: String,
    pub status: &'static str,
    pub alerts: Alerts,
    pub notification_reason: String,
    pub group_labels: Kv,
    pub common_labels: Kv,
    pub common_annotations: Kv,
    pub route_labels: Kv,
    pub external_url: String,
    /// The route labels as configured (values may be templates), for `routeLabels`.
    pub raw_route_labels: BTreeMap<String, String>,
}

fn common(maps: &[&BTreeMap<String, String>]) -> Kv {
    let Some(first) = maps.first() else {
        return Kv::default();
    };
    Kv(first
        .iter()
        .filter(|(k, v)| maps[1..].iter().all(|m| m.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect())
}

impl Data {
    /// The data of a notification group (upstream `Template.Data`). Route labels are
    /// rendered by [`Templates::data`].
    pub fn new(group: &NotificationGroup, external_url: &str) -> Data {
        let alerts: Vec<AlertData> = group.alerts.iter().map(|a| AlertData::new(a, group.now)).collect();
        let labels: Vec<&BTreeMap<String, String>> = alerts.iter().map(|a| &a.labels.0).collect();
        let annotations: Vec<&BTreeMap<String, String>> = alerts.iter().map(|a| &a.annotations.0).collect();
        Data {
            receiver: quote_meta(&group.receiver),
            status: group.status(),
            common_labels: common(&labels),
            common_annotations: common(&annotations),
            alerts: Alerts(Arc::new(alerts)),
            notification_reason: group.reason.as_str().to_owned(),
            group_labels: Kv(group
                .group_labels
                .iter()
                .map(|l| (l.name.to_owned(), l.value.to_owned()))
                .collect()),
            route_labels: Kv::default(),
            external_url: external_url.trim_end_matches('/').to_owned(),
            raw_route_labels: group.route_labels.clone(),
        }
    }

    /// A copy with every text value HTML-escaped (keys too), for the fields upstream renders
    /// with `html/template` (Telegram's and Pushover's HTML modes). This engine has no
    /// contextual escaping, so the data is escaped instead: every value a template prints is
    /// escaped as html/template would escape it in text context, while the template's own
    /// literal text (its markup) is left alone. Values that functions compute from escaped
    /// data (`reReplaceAll`, `match`) see the escaped text.
    pub fn html_escaped(&self) -> Data {
        let kv = |k: &Kv| {
            Kv(k.0
                .iter()
                .map(|(a, b)| (html_template_escape(a), html_template_escape(b)))
                .collect())
        };
        let alerts = self
            .alerts
            .0
            .iter()
            .map(|a| AlertData {
                labels: kv(&a.labels),
                annotations: kv(&a.annotations),
                generator_url: html_template_escape(&a.generator_url),
                ..a.clone()
            })
            .collect();
        Data {
            receiver: html_template_escape(&self.receiver),
            status: self.status,
            alerts: Alerts(Arc::new(alerts)),
            notification_reason: html_template_escape(&self.notification_reason),
            group_labels: kv(&self.group_labels),
            common_labels: kv(&self.common_labels),
            common_annotations: kv(&self.common_annotations),
            route_labels: kv(&self.route_labels),
            external_url: html_template_escape(&self.external_url),
            raw_route_labels: self.raw_route_labels.clone(),
        }
    }

    /// The webhook (version 4) JSON of this data.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("receiver".into(), self.receiver.clone().into());
        m.insert("status".into(), self.status.into());
        m.insert("alerts".into(), self.alerts.to_json());
        m.insert("notification_reason".into(), self.notification_reason.clone().into());
        m.insert("groupLabels".into(), self.group_labels.to_json());
        m.insert("commonLabels".into(), self.common_labels.to_json());
        m.insert("commonAnnotations".into(), self.common_annotations.to_json());
        m.insert("routeLabels".into(), self.route_labels.to_json());
        m.insert("externalURL".into(), self.external_url.clone().into());
        m
    }
}

impl Object for Data {
    fn type_name(&self) -> &str {
        "*template.Data"
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Receiver" => Value::from(self.receiver.as_str()),
            "Status" => Value::from(self.status),
            "Alerts" => Value::object(self.alerts.clone()),
            "NotificationReason" => Value::from(self.notification_reason.as_str()),
            "GroupLabels" => Value::object(self.group_labels.clone()),
            "CommonLabels" => Value::object(self.common_labels.clone()),
            "CommonAnnotations" => Value::object(self.common_annotations.clone()),
            "RouteLabels" => Value::object(self.route_labels.clone()),
            "ExternalURL" => Value::from(self.external_url.as_str()),
            _ => return None,
        })
    }

    fn format(&self) -> String {
        format!("&{{{} {} {}}}", self.receiver, self.status, self.alerts.format())
    }
}

// ---------------------------------------------------------------------------------------------
// Functions

/// A value as JSON, as Go's `json.Marshal` writes it for the template data model.
pub fn value_to_json(v: &Value) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        Value::Nil => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .ok_or_else(|| format!("json: unsupported value: {f}"))?,
        Value::String(s) => J::String(s.to_string()),
        Value::List(l) => J::Array(l.iter().map(value_to_json).collect::<Result<_, _>>()?),
        Value::Map(m) => J::Object(
            m.iter()
                .map(|(k, v)| Ok((k.to_owned(), value_to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        Value::Func(_) => return Err("json: unsupported type: func".into()),
        Value::Object(_) => {
            if let Some(a) = v.downcast::<Alerts>() {
                a.to_json()
            } else if let Some(a) = v.downcast::<AlertData>() {
                a.to_json()
            } else if let Some(kv) = v.downcast::<Kv>() {
                kv.to_json()
            } else if let Some(s) = v.downcast::<Strings>() {
                J::Array(s.0.iter().map(|x| J::String(x.clone())).collect())
            } else if let Some(p) = v.downcast::<Pairs>() {
                J::Array(
                    p.0.iter()
                        .map(|(n, v)| serde_json::json!({"Name": n, "Value": v}))
                        .collect(),
                )
            } else if let Some(p) = v.downcast::<Pair>() {
                serde_json::json!({"Name": p.0, "Value": p.1})
            } else if let Some(t) = v.downcast::<Time>() {
                J::String(json_time(*t))
            } else if let Some(d) = v.downcast::<Data>() {
                J::Object(d.to_json())
            } else if let Some(d) = v.downcast::<GoDuration>() {
                J::from(d.0)
            } else {
                return Err(format!("json: unsupported type: {}", v.type_name()));
            }
        }
    })
}

fn arg_str(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn time_arg(v: &Value) -> Result<Time, String> {
    v.downcast::<Time>()
        .copied()
        .ok_or_else(|| format!("wrong type for value; expected time.Time; got {}", v.type_name()))
}

/// Go's `template.HTMLEscapeString`.
pub fn html_escape(s: &str) -> String {
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

/// What Go's html/template writes for a value printed in HTML text context
/// (`htmlEscaper`): [`html_escape`], and `+` as `&#43;`.
pub fn html_template_escape(s: &str) -> String {
    html_escape(s).replace('+', "&#43;")
}

/// Go's `url.QueryUnescape`.
fn query_unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                    (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                    _ => {
                        let end = (i + 3).min(b.len());
                        return Err(format!("invalid URL escape {:?}", String::from_utf8_lossy(&b[i..end])));
                    }
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Translates a Go reference-time layout into a strptime format for jiff.
fn go_layout_to_strptime(layout: &str) -> Result<String, String> {
    const TOKENS: [(&str, &str); 24] = [
        ("2006", "%Y"),
        ("Z07:00", "%:z"),
        ("-07:00", "%:z"),
        ("-0700", "%z"),
        ("Z0700", "%z"),
        ("January", "%B"),
        ("Monday", "%A"),
        ("Jan", "%b"),
        ("Mon", "%a"),
        ("MST", "%Z"),
        (".000000000", "%.9f"),
        (".000000", "%.6f"),
        (".000", "%.3f"),
        (".999999999", "%.f"),
        ("01", "%m"),
        ("02", "%d"),
        ("15", "%H"),
        ("03", "%I"),
        ("04", "%M"),
        ("05", "%S"),
        ("PM", "%p"),
        ("06", "%y"),
        ("_2", "%e"),
        ("%", "%%"),
    ];
    let mut out = String::new();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (tok, rep) in TOKENS {
            if let Some(r) = rest.strip_prefix(tok) {
                out.push_str(rep);
                rest = r;
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

fn parse_go_time(layout: &str, s: &str) -> Result<Time, String> {
    let fmt = go_layout_to_strptime(layout)?;
    let parsed = jiff::fmt::strtime::parse(&fmt, s).map_err(|e| format!("parsing time {s:?} as {layout:?}: {e}"))?;
    let ts = match parsed.to_timestamp() {
        Ok(ts) => ts,
        Err(_) => {
            let dt = parsed
                .to_datetime()
                .or_else(|_| parsed.to_date().map(|d| d.to_datetime(jiff::civil::Time::midnight())))
                .map_err(|e| format!("parsing time {s:?} as {layout:?}: {e}"))?;
            jiff::tz::TimeZone::UTC
                .to_timestamp(dt)
                .map_err(|e| format!("parsing time {s:?}: {e}"))?
        }
    };
    Ok(go_time(ts))
}

/// Alertmanager's `DefaultFuncs`. `routeLabels` here resolves nothing; [`Templates`]
/// replaces it per notification.
pub fn default_funcs() -> FuncMap {
    use Param::{Any, String as S};
    let mut f = FuncMap::new();
    f.insert(
        "toUpper",
        Function::new(&[S], |a| Ok(Value::from(arg_str(&a[0]).to_uppercase()))),
    );
    f.insert(
        "toLower",
        Function::new(&[S], |a| Ok(Value::from(arg_str(&a[0]).to_lowercase()))),
    );
    f.insert(
        "title",
        Function::new(&[S], |a| {
            Ok(Value::from(watchfire_template::prometheus::title(
                &arg_str(&a[0]).to_lowercase(),
            )))
        }),
    );
    f.insert(
        "trimSpace",
        Function::new(&[S], |a| Ok(Value::from(arg_str(&a[0]).trim()))),
    );
    f.insert(
        "join",
        Function::new(&[S, Any], |a| {
            Ok(Value::from(string_list(&a[1], "[]string")?.join(arg_str(&a[0]))))
        }),
    );
    f.insert(
        "match",
        Function::new(&[S, S], |a| {
            let re = regex::Regex::new(arg_str(&a[0])).map_err(|e| e.to_string())?;
            Ok(Value::Bool(re.is_match(arg_str(&a[1]))))
        }),
    );
    // text/template has no contextual escaping: these mark nothing and return the text.
    f.insert("safeHtml", Function::new(&[S], |a| Ok(a[0].clone())));
    f.insert("safeUrl", Function::new(&[S], |a| Ok(a[0].clone())));
    f.insert(
        "urlUnescape",
        Function::new(&[S], |a| query_unescape(arg_str(&a[0])).map(Value::from)),
    );
    f.insert(
        "reReplaceAll",
        Function::new(&[S, S, S], |a| {
            let re = regex::Regex::new(arg_str(&a[0])).map_err(|e| e.to_string())?;
            // Go's `$1` expansion matches regex's `${1}` semantics for names and numbers.
            Ok(Value::from(re.replace_all(arg_str(&a[2]), arg_str(&a[1])).into_owned()))
        }),
    );
    f.insert(
        "stringSlice",
        Function::variadic(&[], S, |a| {
            Ok(Value::object(Strings(
                a.iter().map(|v| arg_str(v).to_owned()).collect(),
            )))
        }),
    );
    f.insert("routeLabels", Function::new(&[S], |_| Ok(Value::from(""))));
    // Watchfire's: the output of template NAME, HTML-escaped (for HTML templates, which
    // this engine renders without html/template's contextual escaping).
    f.insert(
        "htmlTemplate",
        Function::with_context(Signature::fixed(&[S, Any]), |ctx, a| {
            let out = ctx.execute_template(arg_str(&a[0]), a[1].clone())?;
            Ok(Value::from(html_escape(&out)))
        }),
    );
    f.insert(
        "date",
        Function::new(&[S, Any], |a| Ok(Value::from(time_arg(&a[1])?.format(arg_str(&a[0]))))),
    );
    f.insert(
        "tz",
        Function::new(&[S, Any], |a| {
            let t = time_arg(&a[1])?;
            match arg_str(&a[0]) {
                "" | "UTC" => Ok(Value::object(t)),
                name => {
                    jiff::tz::TimeZone::get(name).map_err(|_| format!("unknown time zone {name}"))?;
                    Err(format!(
                        "time zone {name}: only UTC is supported by Watchfire's template times so far"
                    ))
                }
            }
        }),
    );
    f.insert(
        "now",
        Function::new(&[], |_| Ok(Value::object(go_time(jiff::Timestamp::now())))),
    );
    f.insert(
        "since",
        Function::new(&[Any], |a| {
            let t = time_arg(&a[0])?;
            Ok(Value::object(go_time(jiff::Timestamp::now()).since(t)))
        }),
    );
    f.insert(
        "humanizeDuration",
        Function::new(&[Any], |a| {
            let secs = match &a[0] {
                Value::Int(i) => *i as f64,
                Value::Float(x) => *x,
                Value::String(s) => s
                    .trim()
                    .parse::<f64>()
                    .map_err(|e| format!("strconv.ParseFloat: parsing {s:?}: {e}"))?,
                v => {
                    if let Some(d) = v.downcast::<GoDuration>() {
                        d.seconds()
                    } else {
                        return Err(format!("can't convert {} to float", v.type_name()));
                    }
                }
            };
            Ok(Value::from(watchfire_template::prometheus::humanize_duration(secs)))
        }),
    );
    f.insert(
        "toDate",
        Function::new(&[S, S], |a| {
            Ok(Value::object(
                parse_go_time(arg_str(&a[0]), arg_str(&a[1])).unwrap_or(Time::ZERO),
            ))
        }),
    );
    f.insert(
        "mustToDate",
        Function::new(&[S, S], |a| {
            parse_go_time(arg_str(&a[0]), arg_str(&a[1])).map(Value::object)
        }),
    );
    f.insert(
        "toJson",
        Function::new(&[Any], |a| {
            let j = value_to_json(&a[0])?;
            serde_json::to_string(&j).map(Value::from).map_err(|e| e.to_string())
        }),
    );
    f.insert(
        "base64encode",
        Function::new(&[S], |a| {
            Ok(Value::from(
                base64::engine::general_purpose::URL_SAFE.encode(arg_str(&a[0])),
            ))
        }),
    );
    f.insert(
        "base64decode",
        Function::new(&[S], |a| {
            let b = base64::engine::general_purpose::URL_SAFE
                .decode(arg_str(&a[0]))
                .map_err(|e| e.to_string())?;
            Ok(Value::from(String::from_utf8_lossy(&b).into_owned()))
        }),
    );
    f.insert(
        "list",
        Function::variadic(&[], Any, |a| Ok(Value::list(a.iter().cloned()))),
    );
    f.insert(
        "append",
        Function::variadic(&[Any], Any, |a| {
            let mut items = match &a[0] {
                Value::List(l) => l.as_ref().clone(),
                Value::Nil => Vec::new(),
                v => {
                    return Err(format!(
                        "wrong type for value; expected []interface {{}}; got {}",
                        v.type_name()
                    ));
                }
            };
            items.extend(a[1..].iter().cloned());
            Ok(Value::list(items))
        }),
    );
    f.insert(
        "dict",
        Function::variadic(&[], Any, |a| {
            if a.len() % 2 != 0 {
                return Err("dict requires an even number of arguments".into());
            }
            let mut entries = Vec::new();
            for kv in a.chunks(2) {
                let k = kv[0].as_str().ok_or("dict keys must be strings")?;
                entries.push((k.to_owned(), kv[1].clone()));
            }
            Ok(Value::map(entries))
        }),
    );
    f
}

// ---------------------------------------------------------------------------------------------
// The template set

/// The loaded notification templates: Watchfire's defaults, then the user's files (which may
/// override any `define`). Cheap to clone; immutable.
#[derive(Clone, Debug)]
pub struct Templates {
    base: Template,
    external_url: String,
}

impl Templates {
    /// The defaults only.
    pub fn defaults(external_url: &str) -> Result<Templates, TemplateError> {
        Templates::from_texts(&[("default.tmpl", DEFAULT_TEMPLATES)], external_url)
    }

    /// A set from template texts, in order (later definitions win). No defaults are
    /// included unless given.
    pub fn from_texts(texts: &[(&str, &str)], external_url: &str) -> Result<Templates, TemplateError> {
        let mut base = Template::new("").funcs(default_funcs()).missing_key(MissingKey::Zero);
        for (name, text) in texts {
            base.add(name, text)?;
        }
        Ok(Templates {
            base,
            external_url: external_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The defaults, then every file matching the globs in `templates` (relative globs are
    /// taken relative to `config_dir`), as Alertmanager's `FromGlobs`.
    pub fn load(templates: &[String], config_dir: &Path, external_url: &str) -> Result<Templates, TemplateError> {
        let mut texts: Vec<(String, String)> = vec![("default.tmpl".into(), DEFAULT_TEMPLATES.into())];
        for g in templates {
            let pattern = if Path::new(g).is_absolute() {
                g.clone()
            } else {
                config_dir.join(g).to_string_lossy().into_owned()
            };
            let paths = glob::glob(&pattern).map_err(|e| TemplateError::Glob {
                glob: g.clone(),
                message: e.to_string(),
            })?;
            for p in paths {
                let p = p.map_err(|e| TemplateError::Glob {
                    glob: g.clone(),
                    message: e.to_string(),
                })?;
                let text = std::fs::read_to_string(&p).map_err(|e| TemplateError::File {
                    path: p.clone(),
                    message: e.to_string(),
                })?;
                texts.push((p.to_string_lossy().into_owned(), text));
            }
        }
        let refs: Vec<(&str, &str)> = texts.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        Templates::from_texts(&refs, external_url)
    }

    /// `--web.external-url`.
    pub fn external_url(&self) -> &str {
        &self.external_url
    }

    /// The template data of a notification, route labels rendered.
    pub fn data(&self, group: &NotificationGroup) -> Result<Data, TemplateError> {
        let mut data = Data::new(group, &self.external_url);
        let resolver = RouteLabels::new(data.raw_route_labels.clone());
        let mut rendered = BTreeMap::new();
        for name in data.raw_route_labels.keys() {
            let v = resolver.resolve(self, &data, name).map_err(TemplateError::RouteLabel)?;
            rendered.insert(name.clone(), v);
        }
        data.route_labels = Kv(rendered);
        Ok(data)
    }

    /// Renders `text` (a config field) with `data`; empty text renders empty.
    pub fn render(&self, text: &str, data: &Data) -> Result<String, TemplateError> {
        if text.is_empty() {
            return Ok(String::new());
        }
        let resolver = RouteLabels::new(data.raw_route_labels.clone());
        self.render_with(text, data, &resolver)
    }

    fn render_with(&self, text: &str, data: &Data, resolver: &RouteLabels) -> Result<String, TemplateError> {
        let mut t = self.base.clone().funcs(resolver.funcs(self, data));
        t.add("__watchfire_field", text)?;
        Ok(t.execute_template("__watchfire_field", &Value::object(data.clone()))?)
    }

    /// Executes the named template (`slack.default.title`, ...) with `data`.
    pub fn execute(&self, name: &str, data: &Data) -> Result<String, TemplateError> {
        self.render(
            &format!("{{{{ template {} . }}}}", watchfire_model::go_quote(name)),
            data,
        )
    }

    /// The template names defined, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.base.template_names()
    }
}

/// The route labels resolved so far, and the names being resolved (for cycle detection).
type Resolution = (BTreeMap<String, String>, Vec<String>);

/// `routeLabels NAME`: a route label's value, itself rendered as a template, memoised,
/// with cycle detection.
#[derive(Clone, Debug)]
struct RouteLabels {
    raw: Arc<BTreeMap<String, String>>,
    state: Arc<Mutex<Resolution>>,
}

impl RouteLabels {
    fn new(raw: BTreeMap<String, String>) -> RouteLabels {
        RouteLabels {
            raw: Arc::new(raw),
            state: Arc::default(),
        }
    }

    fn resolve(&self, templates: &Templates, data: &Data, name: &str) -> Result<String, String> {
        let Some(raw) = self.raw.get(name) else {
            return Ok(String::new());
        };
        {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(v) = st.0.get(name) {
                return Ok(v.clone());
            }
            if st.1.iter().any(|n| n == name) {
                let mut cycle = st.1.clone();
                cycle.push(name.to_owned());
                return Err(format!("route label cycle detected: {}", cycle.join(" -> ")));
            }
            st.1.push(name.to_owned());
        }
        let res = if raw.contains("{{") {
            templates.render_with(raw, data, self).map_err(|e| e.to_string())
        } else {
            Ok(raw.clone())
        };
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.1.pop();
        let v = res?;
        st.0.insert(name.to_owned(), v.clone());
        Ok(v)
    }

    fn funcs(&self, templates: &Templates, data: &Data) -> FuncMap {
        let me = self.clone();
        let templates = templates.clone();
        let data = data.clone();
        let mut f = FuncMap::new();
        f.insert(
            "routeLabels",
            Function::new(&[Param::String], move |a| {
                me.resolve(&templates, &data, arg_str(&a[0])).map(Value::from)
            }),
        );
        f
    }
}
