//! The Prometheus HTTP API v1 (`/api/v1/...`), answered as Prometheus 3 answers it: the same
//! paths, parameters, envelope, error types and status codes (upstream `web/api/v1/api.go`).
//!
//! The handlers see the rest of Watchfire through traits: storage through
//! `watchfire_storage::Storage`, process status through [`StatusSource`].

mod ast_json;
mod params;
mod query;
mod response;
pub mod targets;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::{Value, json};
use watchfire_model::{Labels, Matcher};
use watchfire_storage::Storage;

pub use params::{Params, parse_duration_ms, parse_time_ms};
pub use response::{ApiError, ErrorType};

use response::success;

/// The earliest and latest timestamps the API accepts, as upstream (`minTime`, `maxTime`).
pub const MIN_TIME_MS: i64 = (i64::MIN / 1000 + 62_135_596_801) * 1000;
pub const MAX_TIME_MS: i64 = (i64::MAX / 1000 - 62_135_596_801) * 1000 + 999;

/// Build information for `/api/v1/status/buildinfo`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    pub version: String,
    pub revision: String,
    pub branch: String,
    pub build_user: String,
    pub build_date: String,
    pub go_version: String,
}

/// Process facts for `/api/v1/status/runtimeinfo`, with upstream's field names.
#[derive(Clone, Debug, Serialize)]
pub struct RuntimeInfo {
    #[serde(rename = "startTime")]
    pub start_time: String,
    #[serde(rename = "CWD")]
    pub cwd: String,
    pub hostname: String,
    #[serde(rename = "serverTime")]
    pub server_time: String,
    #[serde(rename = "reloadConfigSuccess")]
    pub reload_config_success: bool,
    #[serde(rename = "lastConfigTime")]
    pub last_config_time: String,
    #[serde(rename = "corruptionCount")]
    pub corruption_count: i64,
    #[serde(rename = "goroutineCount")]
    pub goroutine_count: i64,
    #[serde(rename = "GOMAXPROCS")]
    pub gomaxprocs: i64,
    #[serde(rename = "GOMEMLIMIT")]
    pub gomemlimit: i64,
    #[serde(rename = "GOGC")]
    pub gogc: String,
    #[serde(rename = "GODEBUG")]
    pub godebug: String,
    #[serde(rename = "storageRetention")]
    pub storage_retention: String,
}

/// What the status endpoints need from the running process.
pub trait StatusSource: Send + Sync + 'static {
    fn build_info(&self) -> BuildInfo;
    fn runtime_info(&self) -> RuntimeInfo;
    /// Every command-line flag with its value, as strings.
    fn flags(&self) -> BTreeMap<String, String>;
    /// The loaded prometheus.yml as YAML, secrets shown as `<secret>`.
    fn config_yaml(&self) -> String;
}

/// The admin API's operations (`--web.enable-admin-api`).
pub trait Admin: Send + Sync + 'static {
    /// Deletes the series matching `matchers` in `[mint, maxt]` (through tombstones).
    fn delete_series(&self, mint: i64, maxt: i64, matchers: &[Matcher]) -> Result<(), String>;
    /// Rewrites data to remove what tombstones cover.
    fn clean_tombstones(&self) -> Result<(), String>;
    /// Writes a snapshot and returns its directory name under `<data>/snapshots`.
    fn snapshot(&self, skip_head: bool) -> Result<String, String>;
}

/// The state the v1 handlers share.
#[derive(Clone)]
pub struct ApiV1 {
    pub storage: Arc<dyn Storage>,
    pub status: Arc<dyn StatusSource>,
    /// `None` unless `--web.enable-admin-api` is given.
    pub admin: Option<Arc<dyn Admin>>,
    /// The PromQL engine (it holds only options).
    pub engine: watchfire_promql::engine::Engine,
    /// Scrape targets and their metadata; `None` when nothing scrapes.
    pub targets: Option<Arc<dyn targets::TargetSource>>,
}

impl std::fmt::Debug for ApiV1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiV1")
    }
}

/// The v1 routes, to be nested under `/api/v1`.
pub fn router(api: ApiV1) -> Router {
    Router::new()
        .route("/status/buildinfo", get(buildinfo))
        .route("/status/runtimeinfo", get(runtimeinfo))
        .route("/status/flags", get(flags))
        .route("/status/config", get(config))
        .route("/status/tsdb", get(tsdb_status))
        .route("/status/walreplay", get(walreplay))
        .route("/query", get(query::instant).post(query::instant))
        .route("/query_range", get(query::range).post(query::range))
        .route("/format_query", get(format_query).post(format_query))
        .route("/parse_query", get(parse_query).post(parse_query))
        .route("/query_exemplars", get(query_exemplars).post(query_exemplars))
        .route("/targets", get(targets::targets))
        .route("/scrape_pools", get(targets::scrape_pools))
        .route("/targets/metadata", get(targets::targets_metadata))
        .route("/metadata", get(targets::metadata))
        .route("/labels", get(labels).post(labels))
        .route("/label/{name}/values", get(label_values))
        .route("/series", get(series).post(series))
        .route(
            "/admin/tsdb/delete_series",
            axum::routing::post(delete_series).put(delete_series),
        )
        .route(
            "/admin/tsdb/clean_tombstones",
            axum::routing::post(clean_tombstones).put(clean_tombstones),
        )
        .route("/admin/tsdb/snapshot", axum::routing::post(snapshot).put(snapshot))
        .with_state(api)
}

async fn buildinfo(State(api): State<ApiV1>) -> Response {
    success(api.status.build_info())
}

async fn runtimeinfo(State(api): State<ApiV1>) -> Response {
    success(api.status.runtime_info())
}

async fn flags(State(api): State<ApiV1>) -> Response {
    success(api.status.flags())
}

async fn config(State(api): State<ApiV1>) -> Response {
    success(json!({ "yaml": api.status.config_yaml() }))
}

async fn walreplay() -> Response {
    // The store is opened (and its WAL replayed) before the server starts listening, so the
    // replay is always complete by the time this can be asked.
    success(json!({ "min": 0, "max": 0, "current": 0 }))
}

/// Runs blocking storage work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(ErrorType::Internal, format!("task failed: {e}")))?
}

async fn tsdb_status(State(api): State<ApiV1>, params: Params) -> Response {
    let run = async {
        let limit = match params.get("limit") {
            None => 10,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => n,
                _ => return Err(ApiError::bad_data("limit must be a positive number")),
            },
        };
        let storage = api.storage.clone();
        blocking(move || storage.tsdb_status(limit).map_err(ApiError::from_storage)).await
    };
    match run.await {
        Ok(status) => success(status),
        Err(e) => e.into_response(),
    }
}

async fn format_query(params: Params) -> Response {
    let Some(query) = params.get("query") else {
        return ApiError::bad_data("invalid parameter \"query\": query is empty").into_response();
    };
    match watchfire_promql::parse_expr(query) {
        Ok(expr) => success(expr.pretty()),
        Err(e) => ApiError::bad_data(format!("invalid parameter \"query\": {e}")).into_response(),
    }
}

async fn parse_query(params: Params) -> Response {
    let Some(query) = params.get("query") else {
        return ApiError::bad_data("invalid parameter \"query\": query is empty").into_response();
    };
    match watchfire_promql::parse_expr(query) {
        Ok(expr) => success(ast_json::translate(&expr)),
        Err(e) => ApiError::bad_data(format!("invalid parameter \"query\": {e}")).into_response(),
    }
}

/// Watchfire does not store exemplars yet (scrapes parse and drop them), so every valid
/// request gets the empty list, as upstream answers with exemplar storage disabled. The query
/// and times are still checked so that bad requests fail the same way.
async fn query_exemplars(params: Params) -> Response {
    let Some(query) = params.get("query") else {
        return ApiError::bad_data("invalid parameter \"query\": query is empty").into_response();
    };
    if let Err(e) = watchfire_promql::parse_expr(query) {
        return ApiError::bad_data(format!("invalid parameter \"query\": {e}")).into_response();
    }
    match time_range(&params) {
        Ok((start, end)) if end < start => {
            ApiError::bad_data("end timestamp must not be before start timestamp").into_response()
        }
        Ok(_) => success(Vec::<Value>::new()),
        Err(e) => e.into_response(),
    }
}

/// Parses every `match[]` selector; each set must contain a matcher that does not match the
/// empty string, as upstream requires.
fn matcher_sets(params: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    params
        .all("match[]")
        .into_iter()
        .map(|s| {
            let set = watchfire_promql::parse_metric_selector(s).map_err(|e| ApiError::bad_data(e.to_string()))?;
            if set.iter().all(Matcher::matches_empty) {
                return Err(ApiError::bad_data(
                    "match[] must contain at least one non-empty matcher",
                ));
            }
            Ok(set)
        })
        .collect()
}

/// `start` and `end` with upstream's defaults (the whole time range). An end before the start
/// is not an error for the metadata endpoints upstream: they answer with nothing.
fn time_range(params: &Params) -> Result<(i64, i64), ApiError> {
    let start = params.time_or("start", MIN_TIME_MS)?;
    let end = params.time_or("end", MAX_TIME_MS)?;
    Ok((start, end))
}

/// `limit`: 0 or absent means no limit.
fn limit(params: &Params) -> Result<usize, ApiError> {
    match params.get("limit") {
        None | Some("") => Ok(0),
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| ApiError::bad_data("invalid parameter \"limit\": limit must be non-negative")),
    }
}

/// Truncates `items` to `limit` (when non-zero), returning the warning upstream adds.
fn apply_limit<T>(items: &mut Vec<T>, limit: usize) -> Vec<String> {
    if limit > 0 && items.len() > limit {
        items.truncate(limit);
        vec!["results truncated due to limit".to_owned()]
    } else {
        vec![]
    }
}

async fn labels(State(api): State<ApiV1>, params: Params) -> Response {
    let run = async {
        let limit = limit(&params)?;
        let (start, end) = time_range(&params)?;
        let sets = matcher_sets(&params)?;
        let storage = api.storage.clone();
        let mut names = blocking(move || {
            let q = storage.querier(start, end).map_err(ApiError::from_storage)?;
            let mut all = BTreeSet::new();
            if sets.is_empty() {
                all.extend(q.label_names(&[]).map_err(ApiError::from_storage)?);
            }
            for set in &sets {
                all.extend(q.label_names(set).map_err(ApiError::from_storage)?);
            }
            Ok(all.into_iter().collect::<Vec<_>>())
        })
        .await?;
        let warnings = apply_limit(&mut names, limit);
        Ok::<_, ApiError>((names, warnings))
    };
    match run.await {
        Ok((names, warnings)) => response::success_with_warnings(names, warnings),
        Err(e) => e.into_response(),
    }
}

/// Undoes upstream's `U__` escaping of label names in URL paths: `__` is `_`, `_HEX_` is the
/// code point HEX.
fn unescape_label_name(name: &str) -> Result<String, ApiError> {
    let Some(rest) = name.strip_prefix("U__") else {
        return Ok(name.to_owned());
    };
    let bad = || ApiError::bad_data(format!("invalid label name: {name:?}"));
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'_') {
            chars.next();
            out.push('_');
            continue;
        }
        let mut hex = String::new();
        loop {
            match chars.next() {
                Some('_') => break,
                Some(h) if h.is_ascii_hexdigit() => hex.push(h),
                _ => return Err(bad()),
            }
        }
        let code = u32::from_str_radix(&hex, 16).map_err(|_| bad())?;
        out.push(char::from_u32(code).ok_or_else(bad)?);
    }
    Ok(out)
}

async fn label_values(State(api): State<ApiV1>, Path(name): Path<String>, params: Params) -> Response {
    let run = async {
        let name = unescape_label_name(&name)?;
        if name.is_empty() {
            return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
        }
        let limit = limit(&params)?;
        let (start, end) = time_range(&params)?;
        let sets = matcher_sets(&params)?;
        let storage = api.storage.clone();
        let mut values = blocking(move || {
            let q = storage.querier(start, end).map_err(ApiError::from_storage)?;
            let mut all = BTreeSet::new();
            if sets.is_empty() {
                all.extend(q.label_values(&name, &[]).map_err(ApiError::from_storage)?);
            }
            for set in &sets {
                all.extend(q.label_values(&name, set).map_err(ApiError::from_storage)?);
            }
            Ok(all.into_iter().collect::<Vec<_>>())
        })
        .await?;
        let warnings = apply_limit(&mut values, limit);
        Ok::<_, ApiError>((values, warnings))
    };
    match run.await {
        Ok((values, warnings)) => response::success_with_warnings(values, warnings),
        Err(e) => e.into_response(),
    }
}

async fn series(State(api): State<ApiV1>, params: Params) -> Response {
    let run = async {
        if params.all("match[]").is_empty() {
            return Err(ApiError::bad_data("no match[] parameter provided"));
        }
        let limit = limit(&params)?;
        let (start, end) = time_range(&params)?;
        // Only here does upstream name the parameter in a bad selector's error.
        let sets = matcher_sets(&params)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter \"match[]\": {}", e.message)))?;
        let storage = api.storage.clone();
        let mut found = blocking(move || {
            let q = storage.querier(start, end).map_err(ApiError::from_storage)?;
            let mut all: BTreeSet<Labels> = BTreeSet::new();
            for set in &sets {
                for s in q.select(true, None, set) {
                    all.insert(s.map_err(ApiError::from_storage)?.labels().clone());
                }
            }
            Ok(all.into_iter().collect::<Vec<_>>())
        })
        .await?;
        let warnings = apply_limit(&mut found, limit);
        Ok::<_, ApiError>((found, warnings))
    };
    match run.await {
        Ok((found, warnings)) => response::success_with_warnings(found, warnings),
        Err(e) => e.into_response(),
    }
}

fn admin(api: &ApiV1) -> Result<Arc<dyn Admin>, ApiError> {
    api.admin
        .clone()
        .ok_or_else(|| ApiError::new(ErrorType::Unavailable, "admin APIs disabled"))
}

fn no_content() -> Response {
    http::StatusCode::NO_CONTENT.into_response()
}

async fn delete_series(State(api): State<ApiV1>, params: Params) -> Response {
    let run = async {
        let admin = admin(&api)?;
        let sets = matcher_sets(&params)?;
        if sets.is_empty() {
            return Err(ApiError::bad_data("no match[] parameter provided"));
        }
        let (start, end) = time_range(&params)?;
        blocking(move || {
            for set in &sets {
                admin
                    .delete_series(start, end, set)
                    .map_err(|e| ApiError::new(ErrorType::Internal, e))?;
            }
            Ok(())
        })
        .await
    };
    run.await.map(|()| no_content()).unwrap_or_else(ApiError::into_response)
}

async fn clean_tombstones(State(api): State<ApiV1>) -> Response {
    let run = async {
        let admin = admin(&api)?;
        blocking(move || {
            admin
                .clean_tombstones()
                .map_err(|e| ApiError::new(ErrorType::Internal, e))
        })
        .await
    };
    run.await.map(|()| no_content()).unwrap_or_else(ApiError::into_response)
}

async fn snapshot(State(api): State<ApiV1>, params: Params) -> Response {
    let run = async {
        let admin = admin(&api)?;
        let skip_head = match params.get("skip_head") {
            None | Some("") => false,
            Some(s) => s
                .parse::<bool>()
                .map_err(|_| ApiError::bad_data(format!("unable to parse boolean 'skip_head' argument: {s:?}")))?,
        };
        blocking(move || {
            admin
                .snapshot(skip_head)
                .map_err(|e| ApiError::new(ErrorType::Internal, e))
        })
        .await
    };
    match run.await {
        Ok(name) => success(json!({ "name": name })),
        Err(e) => e.into_response(),
    }
}

/// Serializes to a JSON value, for handlers that assemble responses by hand.
pub fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_unescape() {
        assert_eq!(unescape_label_name("job").unwrap(), "job");
        assert_eq!(unescape_label_name("U__my_2e_label").unwrap(), "my.label");
        assert_eq!(unescape_label_name("U__a__b").unwrap(), "a_b");
        assert!(unescape_label_name("U__bad_zz_").is_err());
    }

    #[test]
    fn limits_warn() {
        let mut v = vec![1, 2, 3];
        assert_eq!(
            apply_limit(&mut v, 2),
            vec!["results truncated due to limit".to_owned()]
        );
        assert_eq!(v, vec![1, 2]);
        assert!(apply_limit(&mut v, 0).is_empty());
    }
}
