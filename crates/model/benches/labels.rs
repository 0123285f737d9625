//! Label-set hot paths: building a set from scraped pairs, the whole-set hash the head's
//! series map uses, the grouping hashes of PromQL `by`/`without`, and comparison (sorting
//! series for the API and merges).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use watchfire_model::Labels;

/// Label sets shaped like node_exporter's: a name, job/instance and a few specific labels.
fn sets(n: usize) -> Vec<Labels> {
    (0..n)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", "node_network_receive_bytes_total".to_owned()),
                ("device", format!("eth{}", i % 8)),
                ("instance", format!("node-{:03}.example.com:9100", i / 8)),
                ("job", "node".to_owned()),
                ("mode", ["idle", "user", "system", "iowait"][i % 4].to_owned()),
            ])
        })
        .collect()
}

fn bench_labels(c: &mut Criterion) {
    let all = sets(1024);
    let pairs: Vec<Vec<(String, String)>> = all
        .iter()
        .map(|l| l.iter().map(|l| (l.name.to_owned(), l.value.to_owned())).collect())
        .collect();
    let mut g = c.benchmark_group("labels");
    g.throughput(criterion::Throughput::Elements(all.len() as u64));
    g.bench_function("from_pairs", |b| {
        b.iter(|| {
            for p in &pairs {
                black_box(Labels::from_pairs(p.iter().map(|(n, v)| (n.as_str(), v.as_str()))));
            }
        })
    });
    g.bench_function("stable_hash", |b| {
        b.iter(|| all.iter().fold(0u64, |acc, l| acc ^ black_box(l).stable_hash()))
    });
    g.bench_function("hash_for_labels(instance,job)", |b| {
        b.iter(|| {
            all.iter()
                .fold(0u64, |acc, l| acc ^ black_box(l).hash_for_labels(&["instance", "job"]))
        })
    });
    g.bench_function("hash_without_labels(device,mode)", |b| {
        b.iter(|| {
            all.iter().fold(0u64, |acc, l| {
                acc ^ black_box(l).hash_without_labels(&["device", "mode"])
            })
        })
    });
    g.bench_function("sort", |b| {
        b.iter(|| {
            let mut v = all.clone();
            v.reverse();
            v.sort();
            black_box(v)
        })
    });
    g.finish();
}

criterion_group!(benches, bench_labels);
criterion_main!(benches);
