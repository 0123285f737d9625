//! `/api/v1/targets`, `/api/v1/scrape_pools`, `/api/v1/targets/metadata` and
//! `/api/v1/metadata`, over whatever scrapes (seen through [`TargetSource`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use serde_json::json;
use watchfire_model::{Labels, Matcher};

use super::{ApiError, ApiV1, Params, success};

/// A boxed future, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Metadata of one metric family as a target exposed it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct MetricMetadata {
    pub metric: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub help: String,
    pub unit: String,
}

/// An active target as `/api/v1/targets` shows it (upstream's field names).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveTarget {
    pub discovered_labels: Labels,
    pub labels: Labels,
    pub scrape_pool: String,
    pub scrape_url: String,
    pub global_url: String,
    pub last_error: String,
    pub last_scrape: String,
    pub last_scrape_duration: f64,
    pub health: String,
    pub scrape_interval: String,
    pub scrape_timeout: String,
    #[serde(skip)]
    pub metadata: Vec<MetricMetadata>,
}

/// A target that relabeling dropped.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DroppedTarget {
    pub discovered_labels: Labels,
    #[serde(skip)]
    pub scrape_pool: String,
}

/// What the target endpoints need from the scrape subsystem.
pub trait TargetSource: Send + Sync + 'static {
    fn active(&self) -> BoxFuture<'_, Vec<ActiveTarget>>;
    /// Dropped targets kept (up to `keep_dropped_targets`) and the total dropped per pool.
    fn dropped(&self) -> BoxFuture<'_, (Vec<DroppedTarget>, BTreeMap<String, usize>)>;
    fn pools(&self) -> BoxFuture<'_, Vec<String>>;
}

fn source(api: &ApiV1) -> Result<&dyn TargetSource, ApiError> {
    api.targets
        .as_deref()
        .ok_or_else(|| ApiError::new(super::ErrorType::Unavailable, "scraping is not running"))
}

pub async fn targets(State(api): State<ApiV1>, params: Params) -> Response {
    let run = async {
        let src = source(&api)?;
        let state = params.get("state").unwrap_or("").to_ascii_lowercase();
        let (show_active, show_dropped) = match state.as_str() {
            "" | "any" => (true, true),
            "active" => (true, false),
            "dropped" => (false, true),
            _ => (true, true),
        };
        let pool = params.get("scrapePool").filter(|p| !p.is_empty()).map(str::to_owned);
        let in_pool = |p: &str| pool.as_deref().is_none_or(|want| want == p);
        let mut active = vec![];
        if show_active {
            active = src
                .active()
                .await
                .into_iter()
                .filter(|t| in_pool(&t.scrape_pool))
                .collect();
        }
        let (mut dropped, mut counts) = (vec![], BTreeMap::new());
        if show_dropped {
            let (d, c) = src.dropped().await;
            dropped = d.into_iter().filter(|t| in_pool(&t.scrape_pool)).collect();
            counts = c.into_iter().filter(|(p, _)| in_pool(p)).collect();
        }
        Ok::<_, ApiError>(json!({
            "activeTargets": active,
            "droppedTargets": dropped,
            "droppedTargetCounts": counts,
        }))
    };
    match run.await {
        Ok(v) => success(v),
        Err(e) => e.into_response(),
    }
}

pub async fn scrape_pools(State(api): State<ApiV1>) -> Response {
    match source(&api) {
        Ok(src) => success(json!({ "scrapePools": src.pools().await })),
        Err(e) => e.into_response(),
    }
}

fn parse_limit(params: &Params, name: &str) -> Result<Option<usize>, ApiError> {
    match params.get(name) {
        None | Some("") => Ok(None),
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n < 0 => Ok(None),
            Ok(n) => Ok(Some(n as usize)),
            Err(_) => Err(ApiError::bad_data(format!(
                "invalid parameter \"{name}\": {s:?} is not a number"
            ))),
        },
    }
}

pub async fn targets_metadata(State(api): State<ApiV1>, params: Params) -> Response {
    let run = async {
        let src = source(&api)?;
        let matchers: Vec<Matcher> = match params.get("match_target").filter(|s| !s.is_empty()) {
            Some(s) => watchfire_promql::parse_metric_selector(s).map_err(|e| ApiError::bad_data(e.to_string()))?,
            None => vec![],
        };
        let metric = params.get("metric").filter(|s| !s.is_empty());
        let limit = parse_limit(&params, "limit")?;
        let mut out = vec![];
        for t in src.active().await {
            if !matchers.iter().all(|m| m.matches(t.labels.get(&m.name).unwrap_or(""))) {
                continue;
            }
            for md in &t.metadata {
                if metric.is_some_and(|want| want != md.metric) {
                    continue;
                }
                if limit.is_some_and(|l| out.len() >= l) {
                    break;
                }
                out.push(json!({
                    "target": t.labels,
                    "metric": md.metric,
                    "type": md.kind,
                    "help": md.help,
                    "unit": md.unit,
                }));
            }
        }
        Ok::<_, ApiError>(out)
    };
    match run.await {
        Ok(v) => success(v),
        Err(e) => e.into_response(),
    }
}

pub async fn metadata(State(api): State<ApiV1>, params: Params) -> Response {
    let run = async {
        let src = source(&api)?;
        let metric = params.get("metric").filter(|s| !s.is_empty());
        let limit = parse_limit(&params, "limit")?;
        let per_metric = parse_limit(&params, "limit_per_metric")?;
        // Unique metadata per metric family across every target, as upstream merges it.
        let mut all: BTreeMap<String, Vec<MetricMetadata>> = BTreeMap::new();
        for t in src.active().await {
            for md in t.metadata {
                if metric.is_some_and(|want| want != md.metric) {
                    continue;
                }
                let entry = all.entry(md.metric.clone()).or_default();
                if !entry.contains(&md) {
                    entry.push(md);
                }
            }
        }
        let mut out = serde_json::Map::new();
        for (name, mut list) in all {
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
            if let Some(n) = per_metric {
                list.truncate(n);
            }
            let items: Vec<_> = list
                .iter()
                .map(|m| json!({ "type": m.kind, "help": m.help, "unit": m.unit }))
                .collect();
            out.insert(name, serde_json::Value::Array(items));
        }
        Ok::<_, ApiError>(out)
    };
    match run.await {
        Ok(v) => success(v),
        Err(e) => e.into_response(),
    }
}
