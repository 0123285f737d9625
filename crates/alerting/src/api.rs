//! Alertmanager's API v2 (`api/v2/api.go`, contract in `openapi.yaml`) as an axum router the
//! binary mounts under `/api/v2`, plus Watchfire's notification history endpoint.
//!
//! Field names, status codes and error bodies follow upstream: handler errors are a JSON
//! string, body parse errors go-openapi's `{"code":…,"message":…}`. One deliberate difference:
//! where go-openapi answers a schema violation (a missing required field, a malformed UUID)
//! with 422, Watchfire answers 400 — every malformed request is a 400 here.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use watchfire_config::alertmanager::matchers::{AmMatcher, parse_matcher};
use watchfire_model::{Labels, MatchType};

use crate::dispatch::Route;
use crate::history::HistoryQuery;
use crate::silence::{Silence, SilenceMatcher, SilenceState};
use crate::types::{
    Annotations, Fingerprint, StoredAlert, format_time, labels_order, labelset_cmp, parse_time, rfc3339,
};
use crate::{Alerting, Error, PostableAlert};

/// The API v2 routes, relative to `/api/v2`.
pub fn router(alerting: Alerting) -> Router {
    Router::new()
        .route("/status", get(get_status))
        .route("/receivers", get(get_receivers))
        .route("/alerts", get(get_alerts).post(post_alerts))
        .route("/alerts/groups", get(get_alert_groups))
        .route("/silences", get(get_silences).post(post_silences))
        .route("/silence/{id}", get(get_silence).delete(delete_silence))
        .layer(axum::middleware::map_response(no_store))
        .with_state(alerting)
}

/// Watchfire's notification history: `GET /notifications?receiver=&group_key=&since=&limit=`
/// (mount it outside `/api/v2`, e.g. under `/api/watchfire`). Newest first.
pub fn history_router(alerting: Alerting) -> Router {
    Router::new()
        .route("/notifications", get(get_history))
        .layer(axum::middleware::map_response(no_store))
        .with_state(alerting)
}

async fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Every error answer of the API, mapped onto upstream's status codes and bodies in one
/// place.
#[derive(Debug)]
enum ApiError {
    /// A handler's 400: the message as a JSON string, as go-swagger writes string payloads.
    BadRequest(String),
    /// A request go-openapi would reject before the handler (unparsable body, missing
    /// required field, malformed path parameter): `{"code": 400, "message": ...}`.
    Invalid(String),
    /// 404 with a JSON string, or with no body.
    NotFound(Option<String>),
    /// 500 with a JSON string.
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, axum::Json(Value::String(m))).into_response(),
            ApiError::Invalid(m) => {
                (StatusCode::BAD_REQUEST, axum::Json(json!({"code": 400, "message": m}))).into_response()
            }
            ApiError::NotFound(Some(m)) => (StatusCode::NOT_FOUND, axum::Json(Value::String(m))).into_response(),
            ApiError::NotFound(None) => empty(StatusCode::NOT_FOUND),
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(Value::String(m))).into_response(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        match e {
            Error::SilenceNotFound => ApiError::NotFound(Some(e.to_string())),
            Error::InvalidSilence(_) => ApiError::BadRequest(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

type ApiResult = Result<Response, ApiError>;

fn empty(status: StatusCode) -> Response {
    let mut res = status.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// The query string as (name, value) pairs, repeated names kept.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<String>) -> Query {
        let raw = raw.unwrap_or_default();
        Query(url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn one(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A boolean parameter as go-openapi reads it (swag `ConvertBool`): a few spellings of
    /// true, anything else false, absent or empty the default.
    fn flag(&self, name: &str, default: bool) -> bool {
        match self.one(name) {
            None | Some("") => default,
            Some(v) => matches!(
                v.to_ascii_lowercase().as_str(),
                "true" | "1" | "yes" | "ok" | "y" | "on" | "selected" | "checked" | "t" | "enabled"
            ),
        }
    }
}

/// Parses `filter`-style parameters: one matcher each (matcher/compat `Matcher`).
fn parse_filter(values: &[&str]) -> Result<Vec<AmMatcher>, String> {
    values.iter().map(|v| parse_matcher(v)).collect()
}

/// api.go `matchFilterLabels`: like matching, except that a matcher for an empty value asks
/// for the label's presence or absence explicitly.
fn match_filter_labels(matchers: &[AmMatcher], get: impl Fn(&str) -> Option<String>) -> bool {
    matchers.iter().all(|m| {
        let v = get(&m.name);
        match m.kind {
            MatchType::NotRegex | MatchType::NotEqual => {
                if m.value.is_empty() && v.is_some() {
                    return true;
                }
                m.matches(v.as_deref().unwrap_or(""))
            }
            MatchType::Equal | MatchType::Regex => {
                if m.value.is_empty() && v.is_none() {
                    return true;
                }
                m.matches(v.as_deref().unwrap_or(""))
            }
        }
    })
}

fn receiver_regex(q: &Query) -> Result<Option<Regex>, ApiError> {
    match q.one("receiver") {
        None => Ok(None),
        Some(r) => Regex::new(&format!("^(?:{r})$"))
            .map(Some)
            .map_err(|e| ApiError::BadRequest(format!("failed to parse receiver param: {e}"))),
    }
}

fn receiver_matchers(q: &Query) -> Result<Vec<AmMatcher>, ApiError> {
    parse_filter(&q.all("receiver_matchers"))
        .map_err(|e| ApiError::BadRequest(format!("failed to parse receiver_matchers param: {e}")))
}

async fn get_status(State(a): State<Alerting>) -> Response {
    let original = a.read().original.clone();
    let v = &a.inner.options.version;
    axum::Json(json!({
        "cluster": {"status": "disabled", "peers": []},
        "versionInfo": {
            "version": v.version,
            "revision": v.revision,
            "branch": v.branch,
            "buildUser": v.build_user,
            "buildDate": v.build_date,
            "goVersion": v.go_version,
        },
        "config": {"original": original},
        "uptime": format_time(a.inner.started),
    }))
    .into_response()
}

async fn get_receivers(State(a): State<Alerting>, RawQuery(raw): RawQuery) -> ApiResult {
    let q = Query::parse(raw);
    let matchers = receiver_matchers(&q)?;
    let config = a.config();
    let list: Vec<Value> = config
        .receivers
        .iter()
        .map(|r| &r.value)
        .filter(|r| matchers.is_empty() || match_filter_labels(&matchers, |n| r.labels.get(n).cloned()))
        .map(|r| json!({"name": r.name, "labels": r.labels}))
        .collect();
    Ok(axum::Json(list).into_response())
}

/// An alert's status computed now, as the API predicts it (fresh marker per request).
struct Status {
    silenced_by: Vec<String>,
    inhibited_by: Vec<String>,
}

impl Status {
    fn suppressed(&self) -> bool {
        !self.silenced_by.is_empty() || !self.inhibited_by.is_empty()
    }
}

fn predict(a: &Alerting, labels: &Labels, now: Timestamp) -> Status {
    let inhibitor = std::sync::Arc::clone(&a.read().inhibitor);
    Status {
        inhibited_by: inhibitor
            .mutes(labels, now)
            .map(|fp| vec![fp.to_string()])
            .unwrap_or_default(),
        silenced_by: a.inner.silences.mutes(labels, now),
    }
}

/// The API's alert filter (api.go `alertFilter`).
struct AlertFilter {
    matchers: Vec<AmMatcher>,
    silenced: bool,
    inhibited: bool,
    active: bool,
}

impl AlertFilter {
    fn from_query(q: &Query) -> Result<AlertFilter, ApiError> {
        let matchers = parse_filter(&q.all("filter")).map_err(ApiError::BadRequest)?;
        Ok(AlertFilter {
            matchers,
            silenced: q.flag("silenced", true),
            inhibited: q.flag("inhibited", true),
            active: q.flag("active", true),
        })
    }

    /// The status of the alert if it passes the filter.
    fn check(&self, a: &Alerting, alert: &StoredAlert, now: Timestamp) -> Option<Status> {
        if !crate::types::is_zero(alert.ends_at) && alert.ends_at < now {
            return None;
        }
        if !match_filter_labels(&self.matchers, |n| alert.labels.get(n).map(str::to_owned)) {
            return None;
        }
        let status = predict(a, &alert.labels, now);
        if !self.active && !status.suppressed() {
            return None;
        }
        if !self.silenced && !status.silenced_by.is_empty() {
            return None;
        }
        if !self.inhibited && !status.inhibited_by.is_empty() {
            return None;
        }
        Some(status)
    }
}

/// API `gettableAlert`, serialized straight from the stored alert (no intermediate JSON
/// tree: a listing of every alert must not cost several copies of the store). Fields in
/// alphabetical order, as the API has always printed them.
#[derive(Serialize)]
struct GettableAlert<'a> {
    annotations: &'a Annotations,
    #[serde(rename = "endsAt", with = "rfc3339")]
    ends_at: Timestamp,
    #[serde(serialize_with = "display")]
    fingerprint: Fingerprint,
    #[serde(rename = "generatorURL", skip_serializing_if = "str::is_empty")]
    generator_url: &'a str,
    labels: &'a Labels,
    receivers: Names<'a>,
    #[serde(rename = "startsAt", with = "rfc3339")]
    starts_at: Timestamp,
    status: AlertStatus<'a>,
    #[serde(rename = "updatedAt", with = "rfc3339")]
    updated_at: Timestamp,
}

/// API `alertStatus`.
#[derive(Serialize)]
struct AlertStatus<'a> {
    #[serde(rename = "inhibitedBy")]
    inhibited_by: &'a [String],
    #[serde(rename = "mutedBy")]
    muted_by: &'a [String],
    #[serde(rename = "silencedBy")]
    silenced_by: &'a [String],
    state: &'static str,
}

/// Receiver names as API `receiver` objects: `[{"name": …}, …]`.
struct Names<'a>(&'a [String]);

impl Serialize for Names<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|name| Name { name }))
    }
}

#[derive(Serialize)]
struct Name<'a> {
    name: &'a str,
}

fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn gettable_alert<'a>(
    alert: &'a StoredAlert,
    status: &'a Status,
    receivers: &'a [String],
    muted_by: &'a [String],
) -> GettableAlert<'a> {
    let state = if status.suppressed() || !muted_by.is_empty() {
        "suppressed"
    } else {
        "active"
    };
    GettableAlert {
        annotations: &alert.annotations,
        ends_at: alert.ends_at,
        fingerprint: alert.fingerprint(),
        generator_url: &alert.generator_url,
        labels: &alert.labels,
        receivers: Names(receivers),
        starts_at: alert.starts_at,
        status: AlertStatus {
            inhibited_by: &status.inhibited_by,
            muted_by,
            silenced_by: &status.silenced_by,
            state,
        },
        updated_at: alert.updated_at,
    }
}

/// A JSON array of the elements the closure's iterator yields, made as they are written out.
struct Seq<F>(F);

impl<I, F> Serialize for Seq<F>
where
    F: Fn() -> I,
    I: IntoIterator<Item: Serialize>,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq((self.0)())
    }
}

async fn get_alerts(State(a): State<Alerting>, RawQuery(raw): RawQuery) -> ApiResult {
    let q = Query::parse(raw);
    let filter = AlertFilter::from_query(&q)?;
    let receiver_re = receiver_regex(&q)?;
    let rcv_matchers = receiver_matchers(&q)?;
    let config = a.config();
    let rcv_labels: HashMap<&str, &BTreeMap<String, String>> = config
        .receivers
        .iter()
        .map(|r| (r.value.name.as_str(), &r.value.labels))
        .collect();
    let root = std::sync::Arc::clone(&a.read().dispatcher.root);
    let now = a.now();
    // In fingerprint order, as upstream sorts its answer.
    let mut out: Vec<(Arc<StoredAlert>, Status, Vec<String>)> = Vec::new();
    for alert in a.inner.store.list() {
        let receivers: Vec<String> = root.matches(&alert.labels).iter().map(|r| r.receiver.clone()).collect();
        if let Some(re) = &receiver_re
            && !receivers.iter().any(|r| re.is_match(r))
        {
            continue;
        }
        if !rcv_matchers.is_empty()
            && !receivers.iter().any(|r| {
                rcv_labels
                    .get(r.as_str())
                    .is_some_and(|l| match_filter_labels(&rcv_matchers, |n| l.get(n).cloned()))
            })
        {
            continue;
        }
        let Some(status) = filter.check(&a, &alert, now) else {
            continue;
        };
        out.push((alert, status, receivers));
    }
    let body = Seq(|| {
        out.iter()
            .map(|(alert, status, receivers)| gettable_alert(alert, status, receivers, &[]))
    });
    Ok(axum::Json(body).into_response())
}

/// The body of `POST /alerts` as go-openapi reads it; unknown fields are ignored.
#[derive(Deserialize)]
struct ApiPostableAlert {
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    #[serde(rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(rename = "endsAt")]
    ends_at: Option<String>,
    #[serde(rename = "generatorURL")]
    generator_url: Option<String>,
}

fn parse_optional_time(s: Option<&str>, what: &str) -> Result<Option<Timestamp>, String> {
    match s {
        None | Some("") => Ok(None),
        Some(s) => parse_time(s).map(Some).map_err(|e| format!("{what}: {e}")),
    }
}

async fn post_alerts(State(a): State<Alerting>, body: Bytes) -> ApiResult {
    let list: Vec<ApiPostableAlert> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Invalid(format!("parsing alerts body from \"\" failed, because {e}")))?;
    let mut alerts = Vec::with_capacity(list.len());
    for (i, p) in list.into_iter().enumerate() {
        let labels = p
            .labels
            .ok_or_else(|| ApiError::Invalid(format!("{i}.labels in body is required")))?;
        let starts_at =
            parse_optional_time(p.starts_at.as_deref(), &format!("{i}.startsAt")).map_err(ApiError::Invalid)?;
        let ends_at = parse_optional_time(p.ends_at.as_deref(), &format!("{i}.endsAt")).map_err(ApiError::Invalid)?;
        alerts.push(PostableAlert {
            labels: Labels::from_pairs(labels),
            annotations: p.annotations.unwrap_or_default(),
            starts_at,
            ends_at,
            generator_url: p.generator_url.unwrap_or_default(),
        });
    }
    match a.put_alerts(alerts) {
        Ok(()) => Ok(empty(StatusCode::OK)),
        Err(errors) => Err(ApiError::BadRequest(errors.join("\n"))),
    }
}

async fn get_alert_groups(State(a): State<Alerting>, RawQuery(raw): RawQuery) -> ApiResult {
    let q = Query::parse(raw);
    let filter = AlertFilter::from_query(&q)?;
    let receiver_re = receiver_regex(&q)?;
    let rcv_matchers = receiver_matchers(&q)?;
    let show_muted = q.flag("muted", true);
    let config = a.config();
    let rcv_labels: HashMap<&str, &BTreeMap<String, String>> = config
        .receivers
        .iter()
        .map(|r| (r.value.name.as_str(), &r.value.labels))
        .collect();
    let dispatcher = std::sync::Arc::clone(&a.read().dispatcher);
    let now = a.now();

    struct Group {
        labels: Labels,
        route: Arc<Route>,
        muted_by: Vec<String>,
        alerts: Vec<(Arc<StoredAlert>, Status)>,
    }
    let mut groups = Vec::new();
    let mut receivers: HashMap<crate::Fingerprint, Vec<String>> = HashMap::new();
    let mut by_route = dispatcher.groups();
    by_route.sort_by_key(|g| g.route.idx);
    for ag in by_route {
        let receiver = &ag.route.receiver;
        if receiver_re.as_ref().is_some_and(|re| !re.is_match(receiver)) {
            continue;
        }
        if !rcv_matchers.is_empty()
            && !rcv_labels
                .get(receiver.as_str())
                .is_some_and(|l| match_filter_labels(&rcv_matchers, |n| l.get(n).cloned()))
        {
            continue;
        }
        let mut alerts: Vec<(Arc<StoredAlert>, Status)> = ag
            .alerts()
            .into_iter()
            .filter_map(|al| filter.check(&a, &al, now).map(|s| (al, s)))
            .collect();
        if alerts.is_empty() {
            continue;
        }
        for (al, _) in &alerts {
            receivers.entry(al.fingerprint()).or_default().push(receiver.clone());
        }
        alerts.sort_by(|x, y| labels_order(&x.0.labels, &y.0.labels));
        let muted_by = ag.marker.lock().unwrap_or_else(|p| p.into_inner()).muted_by.clone();
        groups.push(Group {
            labels: ag.labels.clone(),
            route: Arc::clone(&ag.route),
            muted_by,
            alerts,
        });
    }
    groups.retain(|g| show_muted || g.muted_by.is_empty());
    groups.sort_by(|x, y| labelset_cmp(&x.labels, &y.labels).then_with(|| x.route.receiver.cmp(&y.route.receiver)));
    for r in receivers.values_mut() {
        r.sort();
    }

    /// API `alertGroup`.
    #[derive(Serialize)]
    struct AlertGroup<'a, A: Serialize> {
        alerts: A,
        labels: &'a Labels,
        receiver: Name<'a>,
        #[serde(rename = "routeLabels")]
        route_labels: &'a BTreeMap<String, String>,
    }
    let body = Seq(|| {
        groups.iter().map(|g| AlertGroup {
            alerts: Seq(|| {
                g.alerts.iter().map(|(al, st)| {
                    let rcv = receivers.get(&al.fingerprint()).map_or(&[][..], Vec::as_slice);
                    gettable_alert(al, st, rcv, &g.muted_by)
                })
            }),
            labels: &g.labels,
            receiver: Name {
                name: &g.route.receiver,
            },
            route_labels: &g.route.labels,
        })
    });
    Ok(axum::Json(body).into_response())
}

fn gettable_silence(s: &Silence, now: Timestamp) -> Value {
    let mut v = json!({
        "id": s.id,
        "status": {"state": s.api_state_at(now).as_str()},
        "updatedAt": format_time(s.updated_at),
        "matchers": s.matchers,
        "startsAt": format_time(s.starts_at),
        "endsAt": format_time(s.ends_at),
        "createdBy": s.created_by,
        "comment": s.comment,
    });
    if !s.annotations.is_empty() {
        v["annotations"] = json!(s.annotations);
    }
    v
}

/// api.go `CheckSilenceMatchesFilterLabels`: every filter matcher must appear verbatim (name,
/// type, value) among the silence's matchers.
fn silence_matches_filter(s: &Silence, filter: &[AmMatcher]) -> bool {
    filter.iter().all(|f| {
        s.matchers
            .iter()
            .any(|m| m.name == f.name && m.kind() == f.kind && m.value == f.value)
    })
}

fn state_rank(s: SilenceState) -> u8 {
    match s {
        SilenceState::Active => 1,
        SilenceState::Pending => 2,
        SilenceState::Expired => 3,
    }
}

async fn get_silences(State(a): State<Alerting>, RawQuery(raw): RawQuery) -> ApiResult {
    let q = Query::parse(raw);
    let filter = parse_filter(&q.all("filter")).map_err(ApiError::BadRequest)?;
    let (active, expired, pending) = (q.flag("active", true), q.flag("expired", true), q.flag("pending", true));
    let now = a.now();
    a.inner.metrics.silences_queries.inc();
    let mut list: Vec<Silence> = a
        .silences()
        .into_iter()
        .filter(|s| match s.state_at(now) {
            SilenceState::Active => active,
            SilenceState::Expired => expired,
            SilenceState::Pending => pending,
        })
        .filter(|s| silence_matches_filter(s, &filter))
        .collect();
    // api.go SortSilences: active by end, pending by start, expired most recent first.
    list.sort_by(|x, y| {
        let (sx, sy) = (x.api_state_at(now), y.api_state_at(now));
        state_rank(sx).cmp(&state_rank(sy)).then_with(|| match sx {
            SilenceState::Active => x.ends_at.cmp(&y.ends_at),
            SilenceState::Pending => x.starts_at.cmp(&y.starts_at),
            SilenceState::Expired => y.ends_at.cmp(&x.ends_at),
        })
    });
    Ok(axum::Json(list.iter().map(|s| gettable_silence(s, now)).collect::<Vec<_>>()).into_response())
}

#[derive(Deserialize)]
struct ApiMatcher {
    name: Option<String>,
    value: Option<String>,
    #[serde(rename = "isRegex")]
    is_regex: Option<bool>,
    #[serde(rename = "isEqual")]
    is_equal: Option<bool>,
}

#[derive(Deserialize)]
struct ApiPostableSilence {
    #[serde(default)]
    id: Option<String>,
    matchers: Option<Vec<ApiMatcher>>,
    #[serde(rename = "startsAt")]
    starts_at: Option<String>,
    #[serde(rename = "endsAt")]
    ends_at: Option<String>,
    #[serde(rename = "createdBy")]
    created_by: Option<String>,
    comment: Option<String>,
    annotations: Option<BTreeMap<String, String>>,
}

fn required<T>(v: Option<T>, field: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| ApiError::Invalid(format!("{field} in body is required")))
}

fn decode_silence(body: &[u8]) -> Result<Silence, ApiError> {
    let p: ApiPostableSilence = serde_json::from_slice(body)
        .map_err(|e| ApiError::Invalid(format!("parsing silence body from \"\" failed, because {e}")))?;
    let matchers = required(p.matchers, "matchers")?;
    if matchers.is_empty() {
        return Err(ApiError::Invalid(
            "matchers in body should have at least 1 items".into(),
        ));
    }
    let mut ms = Vec::with_capacity(matchers.len());
    for (i, m) in matchers.into_iter().enumerate() {
        ms.push(SilenceMatcher {
            name: required(m.name, &format!("matchers.{i}.name"))?,
            value: required(m.value, &format!("matchers.{i}.value"))?,
            is_regex: required(m.is_regex, &format!("matchers.{i}.isRegex"))?,
            is_equal: m.is_equal.unwrap_or(true),
        });
    }
    let time = |v: Option<String>, field: &str| -> Result<Timestamp, ApiError> {
        let s = required(v, field)?;
        parse_time(&s).map_err(|e| ApiError::Invalid(format!("{field}: {e}")))
    };
    let starts_at = time(p.starts_at, "startsAt")?;
    let ends_at = time(p.ends_at, "endsAt")?;
    Ok(Silence {
        id: p.id.unwrap_or_default(),
        matchers: ms,
        starts_at,
        ends_at,
        updated_at: crate::types::ZERO_TIME,
        created_by: required(p.created_by, "createdBy")?,
        comment: required(p.comment, "comment")?,
        annotations: p.annotations.unwrap_or_default(),
    })
}

async fn post_silences(State(a): State<Alerting>, body: Bytes) -> ApiResult {
    let silence = decode_silence(&body)?;
    if silence.starts_at >= silence.ends_at {
        return Err(ApiError::BadRequest(
            "Failed to create silence: start time must be before end time".into(),
        ));
    }
    if silence.ends_at < a.now() {
        return Err(ApiError::BadRequest(
            "Failed to create silence: end time can't be in the past".into(),
        ));
    }
    let id = a.set_silence(silence)?;
    Ok(axum::Json(json!({"silenceID": id})).into_response())
}

/// go-openapi's `uuid` format check on the path parameter.
fn check_uuid(id: &str) -> Result<(), ApiError> {
    let hex = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit());
    let parts: Vec<&str> = id.split('-').collect();
    let dashed = parts.len() == 5 && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && hex(p));
    if dashed || (id.len() == 32 && hex(id)) {
        Ok(())
    } else {
        Err(ApiError::Invalid(format!(
            "silenceID in path must be of type uuid: {id:?}"
        )))
    }
}

async fn get_silence(State(a): State<Alerting>, Path(id): Path<String>) -> ApiResult {
    check_uuid(&id)?;
    let s = a.inner.silences.get(&id).ok_or(ApiError::NotFound(None))?;
    Ok(axum::Json(gettable_silence(&s, a.now())).into_response())
}

async fn delete_silence(State(a): State<Alerting>, Path(id): Path<String>) -> ApiResult {
    check_uuid(&id)?;
    match a.expire_silence(&id) {
        Ok(()) => Ok(empty(StatusCode::OK)),
        Err(Error::SilenceNotFound) => Err(ApiError::NotFound(None)),
        Err(e) => Err(e.into()),
    }
}

async fn get_history(State(a): State<Alerting>, RawQuery(raw): RawQuery) -> ApiResult {
    let q = Query::parse(raw);
    let since = q
        .one("since")
        .map(parse_time)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("since: {e}")))?;
    let limit = q
        .one("limit")
        .map(str::parse::<usize>)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("limit: {e}")))?
        .unwrap_or(0);
    let entries = a.history(&HistoryQuery {
        receiver: q.one("receiver").map(str::to_owned),
        group_key: q.one("group_key").map(str::to_owned),
        since,
        limit,
    });
    Ok(axum::Json(entries).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_label_semantics() {
        let m = parse_filter(&["foo=\"\""]).unwrap();
        assert!(match_filter_labels(&m, |_| None));
        let m = parse_filter(&["foo!=\"\""]).unwrap();
        assert!(match_filter_labels(&m, |_| Some("x".into())));
        assert!(!match_filter_labels(&m, |_| None));
    }
}
