//! Chunk encode/decode, head append throughput and postings intersection.
//! Run: `cargo bench -p watchfire-tsdb --bench tsdb`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use watchfire_model::Labels;
use watchfire_storage::Appender;
use watchfire_tsdb::chunkenc::{XorChunk, XorIterator};
use watchfire_tsdb::index::intersect;
use watchfire_tsdb::{Head, HeadOptions};

/// A 120-sample chunk of a slowly growing counter scraped every 15s with a little jitter.
fn samples() -> Vec<(i64, f64)> {
    let mut v = 0.0;
    (0..120i64)
        .map(|i| {
            v += (i % 7) as f64 * 3.0;
            (1_700_000_000_000 + i * 15_000 + (i * 37 % 5), v)
        })
        .collect()
}

fn chunks(c: &mut Criterion) {
    let s = samples();
    let mut g = c.benchmark_group("xor_chunk");
    g.throughput(Throughput::Elements(s.len() as u64));
    g.bench_function("encode_120", |b| {
        b.iter(|| {
            let mut c = XorChunk::new();
            for &(t, v) in &s {
                c.append(t, v).expect("120 samples fit");
            }
            black_box(c.bytes().len())
        })
    });
    let mut chunk = XorChunk::new();
    for &(t, v) in &s {
        chunk.append(t, v).expect("120 samples fit");
    }
    let bytes = chunk.bytes().to_vec();
    g.bench_function("decode_120", |b| {
        b.iter(|| {
            let mut it = XorIterator::new(&bytes[..]).expect("valid chunk");
            let mut sum = 0.0;
            while it.next() {
                sum += it.at().1;
            }
            black_box(sum)
        })
    });
    g.finish();
    println!(
        "xor chunk: {} samples in {} bytes ({:.2} bytes/sample)",
        s.len(),
        bytes.len(),
        bytes.len() as f64 / s.len() as f64
    );
}

fn head_append(c: &mut Criterion) {
    let labels: Vec<Labels> = (0..1000)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", "bench_metric".to_string()),
                ("instance", format!("host-{i}")),
                ("job", "node".into()),
            ])
        })
        .collect();
    let mut g = c.benchmark_group("head");
    g.throughput(Throughput::Elements(labels.len() as u64));
    let head = Head::in_memory(HeadOptions::default());
    let mut app = head.appender();
    let mut refs = vec![None; labels.len()];
    let mut t = 0i64;
    g.bench_function("append_commit_1000_series", |b| {
        b.iter(|| {
            t += 15_000;
            for (l, r) in labels.iter().zip(refs.iter_mut()) {
                *r = Some(app.append(*r, l, t, t as f64).expect("in order"));
            }
            app.commit().expect("in-memory commit");
        })
    });
    g.finish();
}

fn postings(c: &mut Criterion) {
    let big: Vec<u64> = (0..1_000_000).map(|i| i * 2).collect();
    let mid: Vec<u64> = (0..100_000).map(|i| i * 17).collect();
    let small: Vec<u64> = (0..1000).map(|i| i * 1999).collect();
    let mut g = c.benchmark_group("postings");
    g.bench_function("intersect_1m_100k", |b| {
        b.iter(|| black_box(intersect(&[&big, &mid]).len()))
    });
    g.bench_function("intersect_1m_100k_1k", |b| {
        b.iter(|| black_box(intersect(&[&big, &mid, &small]).len()))
    });
    g.finish();
}

criterion_group!(benches, chunks, head_append, postings);
criterion_main!(benches);
