//! `/api/v1/rules` and `/api/v1/alerts` (upstream `web/api/v1/api.go`), as a router the
//! server mounts under `/api/v1`.

use std::collections::{BTreeMap, HashSet};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use watchfire_model::{Labels, Matcher, Timestamp};

use crate::manager::{Manager, lock};
use crate::rule::{Alert, Rule};

/// The routes `/rules`, `/alerts` (GET and POST for `/rules`, as upstream) and
/// `/alertmanagers`.
pub fn router(manager: Manager) -> Router {
    Router::new()
        .route("/rules", get(rules_handler).post(rules_handler))
        .route("/alerts", get(alerts_handler).post(alerts_handler))
        .route("/alertmanagers", get(alertmanagers_handler))
        .with_state(manager)
}

/// Watchfire's own rule endpoints, mounted under `/api/watchfire`: `POST /rules/backtest`
/// (see [`crate::backtest`] and [`backtest_handler`]).
pub fn watchfire_router(manager: Manager) -> Router {
    Router::new()
        .route("/rules/backtest", axum::routing::post(backtest_handler))
        .with_state(manager)
}

fn success(data: Value) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

fn bad_data(msg: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"status": "error", "errorType": "bad_data", "error": msg})),
    )
        .into_response()
}

/// Form values of a query string, decoded (`+` is a space).
fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw else { return Vec::new() };
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Go's `time.Time` JSON form (RFC 3339 with nanoseconds, trailing zeros dropped); the zero
/// time for never.
fn go_time(ms: Option<Timestamp>) -> String {
    match ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()) {
        Some(t) => {
            let s = t.strftime("%Y-%m-%dT%H:%M:%S%.fZ").to_string();
            s.replace(".Z", "Z")
        }
        None => "0001-01-01T00:00:00Z".to_owned(),
    }
}

fn labels_json(l: &Labels) -> Value {
    let m: BTreeMap<&str, &str> = l.iter().map(|l| (l.name, l.value)).collect();
    json!(m)
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`.
fn format_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let s = format!("{v:e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mant}e{sign}{:02}", exp.abs())
}

fn alert_json(a: &Alert) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("labels".into(), labels_json(&a.labels));
    m.insert("annotations".into(), json!(a.annotations));
    m.insert("state".into(), json!(a.state.as_str()));
    m.insert("activeAt".into(), json!(go_time(Some(a.active_at))));
    if let Some(k) = a.keep_firing_since {
        m.insert("keepFiringSince".into(), json!(go_time(Some(k))));
    }
    m.insert("value".into(), json!(format_e(a.value)));
    Value::Object(m)
}

fn matches_sets(sets: &[Vec<Matcher>], labels: &Labels) -> bool {
    sets.is_empty()
        || sets
            .iter()
            .any(|set| set.iter().all(|m| m.matches(labels.get(&m.name).unwrap_or(""))))
}

async fn rules_handler(State(manager): State<Manager>, RawQuery(raw): RawQuery, body: String) -> Response {
    let mut form = parse_query(raw.as_deref());
    form.extend(parse_query(Some(&body)));
    let get_all =
        |k: &str| -> HashSet<String> { form.iter().filter(|(n, _)| n == k).map(|(_, v)| v.clone()).collect() };
    let rn = get_all("rule_name[]");
    let rg = get_all("rule_group[]");
    let files = get_all("file[]");
    let mut matcher_sets = Vec::new();
    for m in form.iter().filter(|(n, _)| n == "match[]") {
        match watchfire_promql::parse_metric_selector(&m.1) {
            Ok(set) => matcher_sets.push(set),
            Err(e) => return bad_data(e.to_string()),
        }
    }
    let first = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let typ = first("type").to_lowercase();
    if !typ.is_empty() && typ != "alert" && typ != "record" {
        return bad_data(format!("invalid parameter \"type\": not supported value {typ:?}"));
    }
    let exclude_alerts = match first("exclude_alerts").as_str() {
        "" => false,
        v => match parse_go_bool(v) {
            Some(b) => b,
            None => {
                return bad_data(format!(
                    "invalid parameter \"exclude_alerts\": strconv.ParseBool: parsing {v:?}: invalid syntax"
                ));
            }
        },
    };
    let return_alerts = typ.is_empty() || typ == "alert";
    let return_recording = typ.is_empty() || typ == "record";

    let mut groups = Vec::new();
    for g in manager.rule_groups() {
        let g = lock(&g);
        if !rg.is_empty() && !rg.contains(g.name()) {
            continue;
        }
        if !files.is_empty() && !files.contains(g.file()) {
            continue;
        }
        let mut rules = Vec::new();
        for rule in g.rules() {
            if !matches_sets(&matcher_sets, rule.labels()) {
                continue;
            }
            if !rn.is_empty() && !rn.contains(rule.name()) {
                continue;
            }
            let last_error = rule.last_error().map(str::to_owned);
            let mut m = serde_json::Map::new();
            match rule {
                Rule::Alerting(ar) => {
                    if !return_alerts {
                        continue;
                    }
                    m.insert("state".into(), json!(ar.state().as_str()));
                    m.insert("name".into(), json!(ar.name()));
                    m.insert("query".into(), json!(rule.query()));
                    m.insert("duration".into(), json!(ar.hold_duration_ms() as f64 / 1000.0));
                    m.insert("keepFiringFor".into(), json!(ar.keep_firing_for_ms() as f64 / 1000.0));
                    m.insert("labels".into(), labels_json(rule.labels()));
                    m.insert("annotations".into(), json!(ar.annotations()));
                    let alerts = if exclude_alerts {
                        Value::Null
                    } else {
                        Value::Array(ar.active_alerts().into_iter().map(alert_json).collect())
                    };
                    m.insert("alerts".into(), alerts);
                    m.insert("health".into(), json!(rule.health().as_str()));
                    if let Some(e) = last_error {
                        m.insert("lastError".into(), json!(e));
                    }
                    m.insert("evaluationTime".into(), json!(rule.evaluation_time().as_secs_f64()));
                    m.insert("lastEvaluation".into(), json!(go_time(rule.last_evaluation())));
                    m.insert("type".into(), json!("alerting"));
                }
                Rule::Recording(rr) => {
                    if !return_recording {
                        continue;
                    }
                    m.insert("name".into(), json!(rr.name()));
                    m.insert("query".into(), json!(rule.query()));
                    if !rule.labels().is_empty() {
                        m.insert("labels".into(), labels_json(rule.labels()));
                    }
                    m.insert("health".into(), json!(rule.health().as_str()));
                    if let Some(e) = last_error {
                        m.insert("lastError".into(), json!(e));
                    }
                    m.insert("evaluationTime".into(), json!(rule.evaluation_time().as_secs_f64()));
                    m.insert("lastEvaluation".into(), json!(go_time(rule.last_evaluation())));
                    m.insert("type".into(), json!("recording"));
                }
            }
            rules.push(Value::Object(m));
        }
        if rules.is_empty() {
            continue;
        }
        groups.push(json!({
            "name": g.name(),
            "file": g.file(),
            "rules": rules,
            "interval": g.interval_ms() as f64 / 1000.0,
            "limit": g.limit(),
            "evaluationTime": g.evaluation_time().as_secs_f64(),
            "lastEvaluation": go_time(g.last_evaluation()),
        }));
    }
    success(json!({ "groups": groups }))
}

fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Upstream `/api/v1/alertmanagers`: the external Alertmanagers, never the built-in one.
async fn alertmanagers_handler(State(manager): State<Manager>) -> Response {
    let ams = manager.alertmanagers();
    let list = |urls: Vec<String>| Value::Array(urls.into_iter().map(|url| json!({ "url": url })).collect());
    success(json!({
        "activeAlertmanagers": list(ams.active),
        "droppedAlertmanagers": list(ams.dropped),
    }))
}

/// A backtest request, from a form or a JSON object.
#[derive(Debug, Default)]
struct BacktestRequest {
    /// Rule files as (name, YAML text); empty: the loaded rules.
    files: Vec<(String, String)>,
    group: Option<String>,
    rule: Option<String>,
    file: Option<String>,
    from: Option<String>,
    to: Option<String>,
    step: Option<String>,
    repeat_interval: Option<String>,
    flap_window: Option<String>,
}

/// A JSON scalar as the text a form would carry.
fn json_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl BacktestRequest {
    fn from_json(body: &str) -> Result<BacktestRequest, String> {
        let v: Value = serde_json::from_str(body).map_err(|e| format!("invalid JSON body: {e}"))?;
        let obj = v.as_object().ok_or("the JSON body must be an object")?;
        let mut req = BacktestRequest::default();
        let field = |k: &str| -> Result<Option<String>, String> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => json_text(v)
                    .map(Some)
                    .ok_or_else(|| format!("invalid parameter {k:?}: must be a string or a number")),
            }
        };
        req.group = field("group")?;
        req.rule = field("rule")?;
        req.file = field("file")?;
        req.from = field("from")?.or(field("start")?);
        req.to = field("to")?.or(field("end")?);
        req.step = field("step")?;
        req.repeat_interval = field("repeat_interval")?;
        req.flap_window = field("flap_window")?;
        match obj.get("rules") {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => req.files.push(("<rules>".to_owned(), text.clone())),
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(text) => req.files.push((format!("<rules {}>", i + 1), text.clone())),
                        Value::Object(o) => {
                            let content = o.get("content").and_then(Value::as_str).ok_or_else(|| {
                                format!("invalid parameter \"rules\": item {} has no \"content\" string", i + 1)
                            })?;
                            let name = o
                                .get("name")
                                .and_then(Value::as_str)
                                .map_or_else(|| format!("<rules {}>", i + 1), str::to_owned);
                            req.files.push((name, content.to_owned()));
                        }
                        _ => return Err("invalid parameter \"rules\": items must be strings or objects".to_owned()),
                    }
                }
            }
            Some(_) => return Err("invalid parameter \"rules\": must be a string or a list".to_owned()),
        }
        Ok(req)
    }

    /// The range, step and notification model asked for.
    fn options(&self, now: Timestamp) -> Result<crate::backtest::Options, String> {
        use crate::backtest::{parse_duration, parse_time};
        let time = |name: &str, v: &Option<String>| -> Result<Option<Timestamp>, String> {
            v.as_deref()
                .map(|s| parse_time(s, now))
                .transpose()
                .map_err(|e| format!("invalid parameter {name:?}: {e}"))
        };
        let duration = |name: &str, v: &Option<String>| -> Result<Option<i64>, String> {
            v.as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|e| format!("invalid parameter {name:?}: {e}"))
        };
        let from = time("from", &self.from)?.ok_or("missing parameter \"from\"")?;
        let to = time("to", &self.to)?.unwrap_or(now);
        let mut opts = crate::backtest::Options::new(from, to);
        opts.step_ms = duration("step", &self.step)?;
        if opts.step_ms == Some(0) {
            return Err("invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer".to_owned());
        }
        if let Some(r) = duration("repeat_interval", &self.repeat_interval)? {
            opts.repeat_interval_ms = r;
        }
        if let Some(f) = duration("flap_window", &self.flap_window)? {
            opts.flap_window_ms = f;
        }
        Ok(opts)
    }

    fn from_form(form: &[(String, String)]) -> BacktestRequest {
        let first = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let names: Vec<&String> = form.iter().filter(|(n, _)| n == "name").map(|(_, v)| v).collect();
        let files = form
            .iter()
            .filter(|(n, _)| n == "rules")
            .enumerate()
            .map(|(i, (_, text))| {
                let name = names.get(i).map_or_else(
                    || {
                        if i == 0 {
                            "<rules>".to_owned()
                        } else {
                            format!("<rules {}>", i + 1)
                        }
                    },
                    |n| n.to_string(),
                );
                (name, text.clone())
            })
            .collect();
        BacktestRequest {
            files,
            group: first("group"),
            rule: first("rule"),
            file: first("file"),
            from: first("from").or_else(|| first("start")),
            to: first("to").or_else(|| first("end")),
            step: first("step"),
            repeat_interval: first("repeat_interval"),
            flap_window: first("flap_window"),
        }
    }
}

fn internal(msg: String) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(json!({"status": "error", "errorType": "internal", "error": msg})),
    )
        .into_response()
}

/// `POST /api/watchfire/rules/backtest`: replays alerting rules over the stored history.
///
/// Parameters, as form fields or a JSON object:
/// * `rules`: rule file text (YAML); in JSON also a list of texts or of
///   `{"name": ..., "content": ...}` objects; form fields may repeat, with a parallel `name`.
///   Without it, the loaded rules are backtested.
/// * `group`, `rule`, `file`: keep only the groups of that name (and file), and in them only
///   the alerting rule of that name; recording rules of kept groups are always evaluated.
/// * `from` (or `start`, required), `to` (or `end`, default now): RFC 3339, Unix seconds,
///   `now` or relative to now (`-6h`).
/// * `step`: evaluate every group at this step instead of at its interval.
/// * `repeat_interval` (default 4h, 0 for none), `flap_window` (default 1h): the notification
///   model.
///
/// The answer is `{"status": "success", "data": <backtest::Report>}`, or a `bad_data` error.
pub async fn backtest_handler(
    State(manager): State<Manager>,
    RawQuery(raw): RawQuery,
    headers: axum::http::HeaderMap,
    body: String,
) -> Response {
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"));
    let req = if is_json {
        match BacktestRequest::from_json(&body) {
            Ok(r) => r,
            Err(e) => return bad_data(e),
        }
    } else {
        let mut form = parse_query(raw.as_deref());
        form.extend(parse_query(Some(&body)));
        BacktestRequest::from_form(&form)
    };
    // Whole seconds, so relative times print without milliseconds.
    let now = manager.now_ms().div_euclid(1000) * 1000;
    let opts = match req.options(now) {
        Ok(o) => o,
        Err(e) => return bad_data(e),
    };

    let (source, group_opts) = manager.backtest_source().await;
    // The rule groups to run: from the request's files, else from the loaded rules.
    let mut configs: Vec<(String, watchfire_config::rules::RuleGroup)> = Vec::new();
    if req.files.is_empty() {
        for g in manager.rule_groups() {
            let g = lock(&g);
            configs.push((g.file().to_owned(), g.config().clone()));
        }
    } else {
        let mut errors = Vec::new();
        for (name, text) in &req.files {
            match crate::validate::parse_rule_file(text, std::path::Path::new(name)) {
                Ok(f) => configs.extend(f.groups.into_iter().map(|g| (name.clone(), g.value))),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if !errors.is_empty() {
            return bad_data(errors.join("\n"));
        }
    }
    let selected = crate::backtest::select(configs, req.file.as_deref(), req.group.as_deref(), req.rule.as_deref());
    let mut groups = Vec::with_capacity(selected.len());
    for (file, config) in &selected {
        match crate::Group::new(std::path::Path::new(file), config, &group_opts) {
            Ok(g) => groups.push(g),
            Err(e) => return bad_data(e),
        }
    }
    if groups.is_empty() {
        return bad_data("no alerting rules match the request".to_owned());
    }
    match tokio::task::spawn_blocking(move || crate::backtest::run(groups, &source, &opts)).await {
        Ok(Ok(report)) => match serde_json::to_value(&report) {
            Ok(v) => success(v),
            Err(e) => internal(e.to_string()),
        },
        Ok(Err(e)) => bad_data(e.to_string()),
        Err(e) => internal(format!("backtest failed: {e}")),
    }
}

async fn alerts_handler(State(manager): State<Manager>) -> Response {
    let mut alerts = Vec::new();
    for g in manager.rule_groups() {
        let g = lock(&g);
        for rule in g.rules() {
            if let Rule::Alerting(ar) = rule {
                alerts.extend(ar.active_alerts().into_iter().map(alert_json));
            }
        }
    }
    success(json!({ "alerts": alerts }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_format_like_go_e() {
        assert_eq!(format_e(1.0), "1e+00");
        assert_eq!(format_e(0.5), "5e-01");
        assert_eq!(format_e(1234.5), "1.2345e+03");
        assert_eq!(format_e(f64::NAN), "NaN");
    }

    #[test]
    fn times_format_like_go() {
        assert_eq!(go_time(Some(0)), "1970-01-01T00:00:00Z");
        assert_eq!(go_time(Some(1500)), "1970-01-01T00:00:01.5Z");
        assert_eq!(go_time(None), "0001-01-01T00:00:00Z");
    }

    #[test]
    fn query_strings_decode() {
        assert_eq!(
            parse_query(Some("rule_name%5B%5D=a+b&x=%7B")),
            vec![
                ("rule_name[]".to_owned(), "a b".to_owned()),
                ("x".to_owned(), "{".to_owned())
            ]
        );
    }
}
