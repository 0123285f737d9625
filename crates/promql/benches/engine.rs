//! Evaluator benchmarks over 10,000 series in an in-memory head: rate, sum by, topk,
//! histogram_quantile over classic buckets and a subquery, as instant and range queries.
//!
//! Run with `cargo bench -p watchfire-promql --bench engine`.

use criterion::{Criterion, criterion_group, criterion_main};
use watchfire_model::Labels;
use watchfire_promql::engine::Engine;
use watchfire_storage::Appendable;
use watchfire_tsdb::{Head, HeadOptions, MemoryStorage};

const SERIES: usize = 10_000;
/// One hour of samples every 15s.
const POINTS: i64 = 240;
const STEP: i64 = 15_000;

/// 10,000 counters `http_requests_total{instance, job}` (100 jobs x 100 instances), and
/// classic histograms `latency_bucket{job, le}` with 10 buckets for 1,000 jobs.
fn storage() -> MemoryStorage {
    let s = MemoryStorage(Head::in_memory(HeadOptions::default()));
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
    let les = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
    ];
    for j in 0..SERIES / les.len() {
        for (b, le) in les.iter().enumerate() {
            let l = Labels::from_pairs([
                ("__name__", "latency_bucket".to_owned()),
                ("job", format!("j{j}")),
                ("le", (*le).to_owned()),
            ]);
            let mut r = None;
            for p in 0..POINTS {
                r = Some(app.append(r, &l, p * STEP, (p * (b as i64 + 1)) as f64).unwrap());
            }
        }
    }
    app.commit().unwrap();
    s
}

fn bench(c: &mut Criterion) {
    let s = storage();
    let engine = Engine::default();
    let end = (POINTS - 1) * STEP;
    let start = end - 30 * 60_000;
    let queries = [
        ("rate", "rate(http_requests_total[5m])"),
        ("sum_by", "sum by (job) (rate(http_requests_total[5m]))"),
        ("topk", "topk(5, rate(http_requests_total[5m]))"),
        (
            "histogram_quantile",
            "histogram_quantile(0.9, sum by (job, le) (rate(latency_bucket[5m])))",
        ),
        ("subquery", "max_over_time(rate(http_requests_total[1m])[10m:1m])"),
    ];
    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    for (name, q) in queries {
        g.bench_function(format!("{name}/instant"), |b| {
            b.iter(|| engine.instant(&s, q, end).unwrap());
        });
        g.bench_function(format!("{name}/range_30m_step_1m"), |b| {
            b.iter(|| engine.range(&s, q, start, end, 60_000).unwrap());
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
