//! `GET /federate` (upstream `web/federate.go`).
//!
//! For every series matched by any `match[]` selector, the newest sample at or before now and
//! within the lookback window is written in the text exposition format (0.0.4), unless that
//! newest sample is a staleness marker. Series are grouped into families by metric name,
//! each family typed `untyped` without `# HELP`, each sample with its timestamp. External
//! labels are appended (in name order, after the series' own labels) when the series lacks
//! them, and `instance=""` is added when neither has an `instance` label, as upstream.
//! Nameless series are skipped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use http::{StatusCode, Uri, header};
use watchfire_model::{Labels, METRIC_NAME, Timestamp, is_stale_nan};
use watchfire_storage::{Queryable, SelectHints};
use watchfire_textparse::TextWriter;

use crate::codec::text_error;

/// Settings of `/federate`.
#[derive(Clone, Debug)]
pub struct FederateOptions {
    /// How far back the newest sample of a series may be (upstream `--query.lookback-delta`).
    pub lookback_ms: i64,
    /// The `global.external_labels`.
    pub external_labels: crate::ExternalLabels,
}

impl Default for FederateOptions {
    fn default() -> Self {
        FederateOptions {
            lookback_ms: 5 * 60 * 1000,
            external_labels: Default::default(),
        }
    }
}

struct Federate {
    storage: Arc<dyn Queryable>,
    opts: FederateOptions,
}

/// The router serving `GET /federate` from `storage`.
pub fn federate_router(storage: Arc<dyn Queryable>, opts: FederateOptions) -> Router {
    Router::new()
        .route("/federate", get(handle))
        .with_state(Arc::new(Federate { storage, opts }))
}

async fn handle(State(f): State<Arc<Federate>>, uri: Uri) -> Response {
    let selectors: Vec<String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k == "match[]")
                .map(|(_, v)| v.into_owned())
                .collect()
        })
        .unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    match tokio::task::spawn_blocking(move || render(&f, &selectors, now)).await {
        Ok(Ok(body)) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, watchfire_textparse::TEXT_CONTENT_TYPE)
            .body(Body::from(body))
            .unwrap_or_default(),
        Ok(Err((status, msg))) => text_error(status, msg),
        Err(e) => text_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Renders the federation output for `selectors` at time `now` (milliseconds).
fn render(f: &Federate, selectors: &[String], now: Timestamp) -> Result<Vec<u8>, (StatusCode, String)> {
    let mut sets = Vec::with_capacity(selectors.len());
    for s in selectors {
        let ms = watchfire_promql::parse_metric_selector(s).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        if ms.iter().all(|m| m.matches_empty()) {
            return Err((
                StatusCode::BAD_REQUEST,
                "vector selector must contain at least one non-empty matcher".to_owned(),
            ));
        }
        sets.push(ms);
    }
    let (mint, maxt) = (now - f.opts.lookback_ms, now);
    let q = f
        .storage
        .querier(mint, maxt)
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let hints = SelectHints {
        start: mint,
        end: maxt,
        ..Default::default()
    };
    // Series matched by several selectors are written once.
    let mut latest: BTreeMap<(String, Labels), (Timestamp, f64)> = BTreeMap::new();
    for ms in &sets {
        for series in q.select(false, Some(&hints), ms) {
            let series = series.map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            let ls = series.labels().clone();
            let Some(name) = ls.metric_name().filter(|n| !n.is_empty()).map(str::to_owned) else {
                tracing::warn!(metric = %ls, "ignoring nameless metric during federation");
                continue;
            };
            if latest.contains_key(&(name.clone(), ls.clone())) {
                continue;
            }
            let mut it = series.iterator();
            let mut last = None;
            while it.next() {
                let s = it.at();
                if s.t > maxt {
                    break;
                }
                if s.t >= mint {
                    last = Some((s.t, s.v));
                }
            }
            if let Some(e) = it.err() {
                return Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string()));
            }
            match last {
                // The exposition formats have no staleness markers: drop stale series.
                Some((_, v)) if is_stale_nan(v) => {}
                Some(tv) => {
                    latest.insert((name, ls), tv);
                }
                None => {}
            }
        }
    }
    let mut external: BTreeMap<String, String> = f
        .opts
        .external_labels
        .get()
        .iter()
        .map(|l| (l.name.to_owned(), l.value.to_owned()))
        .collect();
    external.entry("instance".into()).or_default();

    let mut w = TextWriter::new(Vec::new());
    let mut last_name: Option<&str> = None;
    let io = |e: std::io::Error| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    for ((name, ls), (t, v)) in &latest {
        if last_name != Some(name.as_str()) {
            w.write_type(name, watchfire_textparse::MetricType::Unknown)
                .map_err(io)?;
            last_name = Some(name);
        }
        let own = ls.iter().filter(|l| l.name != METRIC_NAME);
        let added = external
            .iter()
            .filter(|(n, _)| !ls.has(n))
            .map(|(n, v)| watchfire_model::Label { name: n, value: v });
        w.write_series(name, own.chain(added), *v, Some(*t)).map_err(io)?;
    }
    Ok(w.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use watchfire_model::stale_nan;
    use watchfire_storage::Appendable;
    use watchfire_tsdb::{Head, HeadOptions, MemoryStorage};

    fn fed(ext: Labels) -> (Federate, MemoryStorage) {
        let st = MemoryStorage(Head::in_memory(HeadOptions::default()));
        let f = Federate {
            storage: Arc::new(st.clone()),
            opts: FederateOptions {
                lookback_ms: 300_000,
                external_labels: crate::ExternalLabels::new(ext),
            },
        };
        (f, st)
    }

    #[test]
    fn latest_non_stale_within_lookback() {
        let (f, st) = fed(Labels::from_pairs([("zone", "eu"), ("job", "ext")]));
        let mut app = st.appender();
        let now = 1_000_000;
        let a = Labels::from_pairs([("__name__", "b_metric"), ("job", "j"), ("instance", "i1")]);
        let b = Labels::from_pairs([("__name__", "a_metric"), ("x", "1")]);
        let stale = Labels::from_pairs([("__name__", "a_metric"), ("x", "2")]);
        let old = Labels::from_pairs([("__name__", "a_metric"), ("x", "3")]);
        app.append(None, &a, now - 20_000, 1.0).unwrap();
        app.append(None, &a, now - 10_000, 2.5).unwrap();
        app.append(None, &a, now + 10_000, 99.0).unwrap(); // after "now": not shown
        app.append(None, &b, now - 1000, f64::INFINITY).unwrap();
        app.append(None, &stale, now - 2000, 5.0).unwrap();
        app.append(None, &stale, now - 1000, stale_nan()).unwrap();
        app.append(None, &old, now - 400_000, 7.0).unwrap();
        app.commit().unwrap();
        let out = render(&f, &["{__name__=~\".+_metric\"}".into(), "b_metric".into()], now).unwrap();
        let want = format!(
            "# TYPE a_metric untyped\n\
             a_metric{{x=\"1\",instance=\"\",job=\"ext\",zone=\"eu\"}} +Inf {}\n\
             # TYPE b_metric untyped\n\
             b_metric{{instance=\"i1\",job=\"j\",zone=\"eu\"}} 2.5 {}\n",
            now - 1000,
            now - 10_000
        );
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn bad_selector_is_400() {
        let (f, _) = fed(Labels::empty());
        let (status, msg) = render(&f, &["{".into()], 0).unwrap_err();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(!msg.is_empty());
        let (status, msg) = render(&f, &["{job=\"\"}".into()], 0).unwrap_err();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(msg, "vector selector must contain at least one non-empty matcher");
    }
}
