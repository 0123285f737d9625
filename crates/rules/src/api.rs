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

/// The routes `/rules` and `/alerts` (GET and POST for `/rules`, as upstream).
pub fn router(manager: Manager) -> Router {
    Router::new()
        .route("/rules", get(rules_handler).post(rules_handler))
        .route("/alerts", get(alerts_handler).post(alerts_handler))
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
