//! The query API's overhead over calling the engine directly: the same instant and range
//! queries over 2,000 counters in the store's head, once through `Engine` and once as `GET /api/v1/query` and
//! `/api/v1/query_range` requests through the API router (parameter parsing, evaluation on the
//! blocking pool, JSON encoding of the result), without a network.
//!
//! Run with `cargo bench -p watchfire-web --bench api`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use tower::ServiceExt;
use watchfire_model::Labels;
use watchfire_promql::engine::Engine;
use watchfire_storage::Appendable;
use watchfire_tsdb::{Db, Options};
use watchfire_web::api::{ApiV1, BuildInfo, RuntimeInfo, StatusSource};

const SERIES: usize = 2_000;
/// One hour of samples every 15s.
const POINTS: i64 = 240;
const STEP: i64 = 15_000;

struct NoStatus;

impl StatusSource for NoStatus {
    fn build_info(&self) -> BuildInfo {
        BuildInfo {
            version: String::new(),
            revision: String::new(),
            branch: String::new(),
            build_user: String::new(),
            build_date: String::new(),
            go_version: String::new(),
        }
    }
    fn runtime_info(&self) -> RuntimeInfo {
        unreachable!("not queried by this benchmark")
    }
    fn flags(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
    fn config_yaml(&self) -> String {
        String::new()
    }
}

/// The store in a temporary directory (kept alive by the returned guard).
fn storage() -> (tempfile::TempDir, Arc<Db>) {
    let dir = tempfile::tempdir().unwrap();
    let s = Db::open(dir.path(), Options::default()).unwrap();
    let mut app = s.appender();
    for i in 0..SERIES {
        let l = Labels::from_pairs([
            ("__name__", "http_requests_total".to_owned()),
            ("instance", format!("i{}", i % 100)),
            ("job", format!("j{}", i / 100)),
        ]);
        let mut r = None;
        for p in 0..POINTS {
            r = Some(app.append(r, &l, p * STEP, (p * (i as i64 % 7 + 1)) as f64).unwrap());
        }
    }
    app.commit().unwrap();
    (dir, Arc::new(s))
}

fn bench(c: &mut Criterion) {
    let (_dir, s) = storage();
    let engine = Engine::default();
    let router = watchfire_web::api::router(ApiV1 {
        storage: s.clone(),
        status: Arc::new(NoStatus),
        admin: None,
        engine: engine.clone(),
        targets: None,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let end = (POINTS - 1) * STEP;
    let start = end - 30 * 60_000;
    let get = |uri: String| {
        let router = router.clone();
        rt.block_on(async move {
            let resp = router
                .oneshot(Request::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert!(resp.status().is_success());
            axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap()
        })
    };
    let queries = [
        ("rate_2000_series", "rate(http_requests_total[5m])"),
        ("sum_by_job", "sum by (job) (rate(http_requests_total[5m]))"),
    ];
    let mut g = c.benchmark_group("query_api_overhead");
    g.sample_size(10);
    for (name, q) in queries {
        let enc = q.replace(' ', "%20").replace('[', "%5B").replace(']', "%5D");
        g.bench_function(format!("{name}/instant/engine"), |b| {
            b.iter(|| engine.instant(s.as_ref(), q, end).unwrap());
        });
        g.bench_function(format!("{name}/instant/api"), |b| {
            b.iter(|| get(format!("/query?query={enc}&time={}", end / 1000)));
        });
        g.bench_function(format!("{name}/range_30m_step_1m/engine"), |b| {
            b.iter(|| engine.range(s.as_ref(), q, start, end, 60_000).unwrap());
        });
        g.bench_function(format!("{name}/range_30m_step_1m/api"), |b| {
            b.iter(|| {
                get(format!(
                    "/query_range?query={enc}&start={}&end={}&step=60",
                    start / 1000,
                    end / 1000
                ))
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
