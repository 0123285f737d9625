//! `/api/v1/query` and `/api/v1/query_range`: the PromQL engine behind upstream's parameters,
//! limits, result JSON and error mapping.

use std::fmt::Write;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header;
use watchfire_model::{Labels, format_api_float};
use watchfire_promql::engine::{Error as EngineError, QueryOptions, QueryResult, Value};

use super::{ApiError, ApiV1, ErrorType, Params, blocking, parse_duration_ms};

/// Upstream refuses range queries with more points per series than this.
const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Writes a timestamp as upstream's `marshalTimestamp` does: seconds, then a dot and exactly
/// three millisecond digits unless they are all zero.
fn push_timestamp(out: &mut String, t: i64) {
    if t < 0 {
        out.push('-');
    }
    let t = t.unsigned_abs();
    let _ = write!(out, "{}", t / 1000);
    let frac = t % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

fn push_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    push_timestamp(out, t);
    out.push_str(",\"");
    out.push_str(&format_api_float(v));
    out.push_str("\"]");
}

fn push_labels(out: &mut String, labels: &Labels) {
    out.push_str(&serde_json::to_string(labels).unwrap_or_else(|_| "{}".into()));
}

fn push_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

/// The `data` object of a query response, written by hand so numbers print exactly as
/// upstream prints them.
pub fn result_json(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    match value {
        Value::Scalar { t, v } => {
            // Upstream's Scalar.MarshalJSON uses plain 'f' formatting, not the sample rules.
            out.push_str("{\"resultType\":\"scalar\",\"result\":[");
            push_timestamp(&mut out, *t);
            out.push_str(",\"");
            out.push_str(&watchfire_model::format_plain_float(*v));
            out.push_str("\"]");
        }
        Value::String { t, v } => {
            out.push_str("{\"resultType\":\"string\",\"result\":[");
            push_timestamp(&mut out, *t);
            out.push(',');
            push_string(&mut out, v);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.push_str("{\"resultType\":\"vector\",\"result\":[");
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(&mut out, &s.metric);
                out.push_str(",\"value\":");
                push_point(&mut out, s.t, s.f);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push_str("{\"resultType\":\"matrix\",\"result\":[");
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(&mut out, &s.metric);
                out.push_str(",\"values\":[");
                for (j, p) in s.floats.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    push_point(&mut out, p.t, p.f);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

/// The success envelope around a query result, with warnings and infos when present.
fn query_response(query: &str, result: QueryResult, limit: usize) -> Response {
    let mut value = result.value;
    let mut warnings: Vec<String> = result.annotations.warnings().map(|a| a.with_position(query)).collect();
    let infos: Vec<String> = result.annotations.infos().map(|a| a.with_position(query)).collect();
    if limit > 0 {
        let truncated = match &mut value {
            Value::Vector(v) if v.len() > limit => {
                v.truncate(limit);
                true
            }
            Value::Matrix(m) if m.len() > limit => {
                m.truncate(limit);
                true
            }
            _ => false,
        };
        if truncated {
            warnings.push("results truncated due to limit".to_owned());
        }
    }
    let mut body = String::from("{\"status\":\"success\",\"data\":");
    body.push_str(&result_json(&value));
    for (key, list) in [("warnings", &warnings), ("infos", &infos)] {
        if !list.is_empty() {
            let _ = write!(
                body,
                ",\"{key}\":{}",
                serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
            );
        }
    }
    body.push('}');
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Maps engine errors onto upstream's error types.
fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::Parse(p) => ApiError::bad_data(format!("invalid parameter \"query\": {p}")),
        EngineError::BadQuery(m) => ApiError::bad_data(m),
        EngineError::Timeout => ApiError::new(ErrorType::Timeout, e.to_string()),
        EngineError::Canceled => ApiError::new(ErrorType::Canceled, e.to_string()),
        other => ApiError::new(ErrorType::Execution, other.to_string()),
    }
}

struct Common {
    query: String,
    options: QueryOptions,
    timeout: Option<Duration>,
    limit: usize,
}

fn common(params: &Params) -> Result<Common, ApiError> {
    let query = params.get("query").unwrap_or_default().to_owned();
    let mut options = QueryOptions::default();
    if let Some(s) = params.get("lookback_delta").filter(|s| !s.is_empty()) {
        let ms = parse_duration_ms(s)
            .map_err(|e| ApiError::bad_data(format!("error parsing lookback delta duration: {e}")))?;
        options.lookback_delta = Some(watchfire_model::Duration::from_millis(ms));
    }
    let timeout = match params.get("timeout").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => {
            let ms =
                parse_duration_ms(s).map_err(|e| ApiError::bad_data(format!("invalid parameter \"timeout\": {e}")))?;
            Some(Duration::from_millis(ms.max(0) as u64))
        }
    };
    let limit = super::limit(params)?;
    Ok(Common {
        query,
        options,
        timeout,
        limit,
    })
}

/// Runs `f` on the blocking pool, raising the query's cancellation flag when `timeout` passes.
async fn run_query(
    timeout: Option<Duration>,
    mut options: QueryOptions,
    f: impl FnOnce(&QueryOptions) -> Result<QueryResult, EngineError> + Send + 'static,
) -> Result<QueryResult, ApiError> {
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    options.cancel = Some(cancel.clone());
    let task = blocking(move || f(&options).map_err(engine_error));
    match timeout {
        None => task.await,
        Some(limit) => match tokio::time::timeout(limit, task).await {
            Ok(r) => r,
            Err(_) => {
                cancel.store(true, std::sync::atomic::Ordering::Relaxed);
                Err(ApiError::new(
                    ErrorType::Timeout,
                    "query timed out in expression evaluation",
                ))
            }
        },
    }
}

pub async fn instant(State(api): State<ApiV1>, params: Params) -> Response {
    let run = async {
        let c = common(&params)?;
        let t = params.time_or("time", now_ms())?;
        let (engine, storage) = (api.engine.clone(), api.storage.clone());
        let query = c.query.clone();
        let result = run_query(c.timeout, c.options, move |o| {
            engine.instant_with(&*storage, &query, t, o)
        })
        .await?;
        Ok::<_, ApiError>(query_response(&c.query, result, c.limit))
    };
    run.await.unwrap_or_else(ApiError::into_response)
}

pub async fn range(State(api): State<ApiV1>, params: Params) -> Response {
    let run = async {
        let c = common(&params)?;
        let time = |name: &str| {
            let s = params.get(name).unwrap_or_default();
            super::parse_time_ms(s).map_err(|e| ApiError::bad_data(format!("invalid parameter \"{name}\": {e}")))
        };
        let start = time("start")?;
        let end = time("end")?;
        if end < start {
            return Err(ApiError::bad_data(
                "invalid parameter \"end\": end timestamp must not be before start time",
            ));
        }
        let step = parse_duration_ms(params.get("step").unwrap_or_default())
            .map_err(|e| ApiError::bad_data(format!("invalid parameter \"step\": {e}")))?;
        if step <= 0 {
            return Err(ApiError::bad_data(
                "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if (end - start) / step > MAX_POINTS_PER_SERIES {
            return Err(ApiError::bad_data(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        let (engine, storage) = (api.engine.clone(), api.storage.clone());
        let query = c.query.clone();
        let result = run_query(c.timeout, c.options, move |o| {
            engine.range_with(&*storage, &query, start, end, step, o)
        })
        .await?;
        Ok(query_response(&c.query, result, c.limit))
    };
    run.await.unwrap_or_else(ApiError::into_response)
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_like_upstream() {
        let p = |t| {
            let mut s = String::new();
            push_timestamp(&mut s, t);
            s
        };
        assert_eq!(p(1_435_781_451_781), "1435781451.781");
        assert_eq!(p(1_435_781_451_780), "1435781451.780");
        assert_eq!(p(1_435_781_451_005), "1435781451.005");
        assert_eq!(p(1_435_781_451_000), "1435781451");
        assert_eq!(p(-1500), "-1.500");
    }

    #[test]
    fn scalar_and_string_results() {
        assert_eq!(
            result_json(&Value::Scalar { t: 1000, v: 2.0 }),
            r#"{"resultType":"scalar","result":[1,"2"]}"#
        );
        assert_eq!(
            result_json(&Value::String {
                t: 1500,
                v: "a\"b".into()
            }),
            r#"{"resultType":"string","result":[1.500,"a\"b"]}"#
        );
    }
}
