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
    if std::env::var_os("WF_HARNESS_QUERY").is_some() {
        return;
    }
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

/// The comparison harness' data (`benches/harness`, profile `default`): 100 node_exporter
/// targets (the captured page in `data/node_exporter.prom`) plus a classic histogram and 20
/// churning series each, scraped every 10 s for 5 minutes — about 58 000 series of 30 samples.
fn harness_storage() -> MemoryStorage {
    let s = MemoryStorage(Head::in_memory(HeadOptions::default()));
    let page = include_str!("data/node_exporter.prom");
    let mut templ: Vec<(Vec<(String, String)>, f64)> = Vec::new();
    for line in page.lines().filter(|l| !l.is_empty()) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let v: f64 = value.parse().unwrap_or(0.0);
        let (name, rest) = series.split_once('{').unwrap_or((series, ""));
        let mut pairs = vec![("__name__".to_owned(), name.to_owned())];
        for p in rest.trim_end_matches('}').split("\",").filter(|p| !p.is_empty()) {
            let (n, v) = p.split_once('=').unwrap();
            pairs.push((n.to_owned(), v.trim_matches('"').to_owned()));
        }
        templ.push((pairs, v));
    }
    let handlers = ["/api/query", "/api/write", "/login", "/static"];
    let les = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
    ];
    for (h, handler) in handlers.iter().enumerate() {
        for (b, le) in les.iter().enumerate() {
            let pairs = vec![
                (
                    "__name__".to_owned(),
                    "harness_http_request_duration_seconds_bucket".to_owned(),
                ),
                ("handler".to_owned(), (*handler).to_owned()),
                ("le".to_owned(), (*le).to_owned()),
            ];
            templ.push((pairs, (h * 100 + b * 10) as f64));
        }
        for suffix in ["_sum", "_count"] {
            let pairs = vec![
                (
                    "__name__".to_owned(),
                    format!("harness_http_request_duration_seconds{suffix}"),
                ),
                ("handler".to_owned(), (*handler).to_owned()),
            ];
            templ.push((pairs, 1000.0));
        }
    }
    for slot in 0..20 {
        let pairs = vec![
            ("__name__".to_owned(), "harness_churn_info".to_owned()),
            ("generation".to_owned(), "0".to_owned()),
            ("slot".to_owned(), slot.to_string()),
        ];
        templ.push((pairs, 1.0));
    }
    let mut app = s.appender();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    for target in 0..HARNESS_TARGETS {
        let instance = format!("127.0.0.1:{}", 19100 + target);
        for (pairs, v0) in &templ {
            let mut pairs = pairs.clone();
            pairs.push(("instance".to_owned(), instance.clone()));
            pairs.push(("job".to_owned(), "node".to_owned()));
            let l = Labels::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            let counter = pairs[0].1.ends_with("_total") || pairs[0].1.ends_with("_bucket");
            let constant = pairs[0].1.ends_with("_info") || *v0 == 0.0 || *v0 == 1.0;
            let rate = rnd() * 100.0;
            let mut v = *v0;
            let mut r = None;
            for p in 0..HARNESS_POINTS {
                let t = HARNESS_T0 + p * 10_000 + (target as i64 % 7);
                r = Some(app.append(r, &l, t, v).unwrap());
                if !constant {
                    v = if counter {
                        v + (rate * 10.0).round()
                    } else {
                        (v + (rnd() - 0.5) * v.abs().max(1.0) * 0.01).max(0.0)
                    };
                }
            }
        }
        app.commit().unwrap();
    }
    s
}

const HARNESS_TARGETS: usize = 100;
const HARNESS_POINTS: i64 = 30;
const HARNESS_T0: i64 = 1_700_000_000_000;

fn bench_harness(c: &mut Criterion) {
    let s = harness_storage();
    let engine = Engine::default();
    let end = HARNESS_T0 + (HARNESS_POINTS - 1) * 10_000 + 5_000;
    let start = end - 140_000;
    let queries = [
        ("rate", "rate(node_network_receive_bytes_total[60s])", false),
        (
            "sum_by_rate",
            "sum by (instance, mode) (rate(node_cpu_seconds_total[60s]))",
            false,
        ),
        ("topk", "topk(5, rate(node_network_transmit_bytes_total[60s]))", false),
        (
            "histogram_quantile",
            "histogram_quantile(0.9, sum by (le, handler) (rate(harness_http_request_duration_seconds_bucket[60s])))",
            false,
        ),
        ("avg_over_time", "avg_over_time(node_load1[60s])", false),
        (
            "max_over_time",
            "max_over_time(node_memory_MemAvailable_bytes[60s])",
            false,
        ),
        (
            "predict_linear",
            "predict_linear(node_memory_MemAvailable_bytes[60s], 3600)",
            false,
        ),
        (
            "subquery",
            "max_over_time(rate(node_cpu_seconds_total{mode=\"user\"}[60s])[105s:10s])",
            false,
        ),
        (
            "regex",
            "count by (instance) ({__name__=~\"node_(cpu|memory|network)_.+\"})",
            false,
        ),
        (
            "negative_regex",
            "sum by (instance) (node_memory_Active_bytes{instance!~\"127.0.0.1:1910[0-4]\"})",
            false,
        ),
        (
            "group_left",
            "node_memory_MemAvailable_bytes * on (instance) group_left (nodename) node_uname_info",
            false,
        ),
        (
            "and_on",
            "rate(node_cpu_seconds_total{mode=\"idle\"}[60s]) and on (instance) node_load1 > 0",
            false,
        ),
        ("count_all", "count({__name__=~\".+\"})", false),
        ("range_sum_rate", "sum(rate(node_cpu_seconds_total[60s]))", true),
        (
            "range_histogram_quantile",
            "histogram_quantile(0.99, sum by (le) (rate(harness_http_request_duration_seconds_bucket[60s])))",
            true,
        ),
    ];
    // `WF_HARNESS_QUERY=name WF_HARNESS_ITERS=n` runs one query n times outside criterion,
    // for `perf stat` (instruction counts hold still on a loaded machine; times do not).
    if let Some(only) = std::env::var_os("WF_HARNESS_QUERY") {
        let iters: usize = std::env::var("WF_HARNESS_ITERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        for (name, q, range) in queries {
            if only != "all" && only != name {
                continue;
            }
            for _ in 0..iters {
                if range {
                    std::hint::black_box(engine.range(&s, q, start, end, 10_000).unwrap());
                } else {
                    std::hint::black_box(engine.instant(&s, q, end).unwrap());
                }
            }
        }
        return;
    }
    let mut g = c.benchmark_group("harness");
    g.sample_size(10);
    for (name, q, range) in queries {
        g.bench_function(name, |b| {
            if range {
                b.iter(|| engine.range(&s, q, start, end, 10_000).unwrap());
            } else {
                b.iter(|| engine.instant(&s, q, end).unwrap());
            }
        });
    }
    g.finish();
}

criterion_group!(harness, bench_harness);
criterion_main!(benches, harness);
