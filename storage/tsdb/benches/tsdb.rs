//! Chunk encode/decode, head append throughput, postings intersection, and block write and
//! query on a node_exporter-like dataset (also printing bytes per sample on disk).
//! Run: `cargo bench -p watchfire-tsdb --bench tsdb` (add `-- block` for the block benches).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use watchfire_model::{Labels, MatchType, Matcher};
use watchfire_storage::{Appender, Queryable};
use watchfire_tsdb::chunkenc::{XorChunk, XorIterator};
use watchfire_tsdb::index::intersect;
use watchfire_tsdb::packed::{self, PackedCursor};
use watchfire_tsdb::{Db, Head, HeadOptions, Options};

mod common;
use common::{START, dir_bytes, fill, node_dataset};

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
    let mut g = c.benchmark_group("packed_chunk");
    g.throughput(Throughput::Elements(s.len() as u64));
    g.bench_function("encode_120", |b| b.iter(|| black_box(packed::encode(&s).len())));
    let bytes = packed::encode(&s);
    let mut cur = PackedCursor::default();
    g.bench_function("decode_120", |b| {
        b.iter(|| {
            cur.reset(&bytes).expect("valid chunk");
            let mut sum = 0.0;
            while cur.next() {
                sum += cur.at().1;
            }
            black_box(sum)
        })
    });
    g.finish();
    println!(
        "packed chunk: {} samples in {} bytes ({:.2} bytes/sample)",
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

fn blocks(c: &mut Criterion) {
    let data = node_dataset(8);
    // Bytes per sample: 8 h of data, three 2 h blocks cut from the head, with packed block
    // chunks (the default) and with upstream's XOR.
    let opts = Options {
        retention_time: 0,
        ..Options::default()
    };
    for packed in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(
            dir.path(),
            Options {
                packed_block_chunks: packed,
                ..opts
            },
        )
        .expect("open");
        fill(&db, 8, &data, data.len());
        db.maintain().expect("maintain");
        for b in db.blocks() {
            let m = b.meta();
            let chunks = dir_bytes(&b.dir().join("chunks"));
            let whole = dir_bytes(b.dir());
            println!(
                "{} block {} level {} range {:.2}h: {} series, {} samples, {} chunks; chunks {:.3} B/sample, whole block {:.3} B/sample",
                if packed { "packed" } else { "xor" },
                m.ulid,
                m.compaction.level,
                (m.max_time - m.min_time) as f64 / 3_600_000.0,
                m.stats.num_series,
                m.stats.num_samples,
                m.stats.num_chunks,
                chunks as f64 / m.stats.num_samples as f64,
                whole as f64 / m.stats.num_samples as f64,
            );
        }
    }

    let mut g = c.benchmark_group("block");
    g.sample_size(10);
    let samples_2h = data.len() as u64 * 480;
    g.throughput(Throughput::Elements(samples_2h));
    // Each iteration fills a fresh head with 4 h of data (setup, not timed) and times the cut
    // of the first 2 h block (with the head truncation and WAL checkpoint that follow it).
    g.bench_function("write_2h_block_from_head", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let db = Db::open(dir.path(), opts).expect("open");
                fill(&db, 4, &data, data.len());
                (dir, db)
            },
            |(dir, db)| {
                let r = db.maintain().expect("maintain");
                assert_eq!(r.head_blocks.len(), 1);
                (dir, db)
            },
            criterion::BatchSize::PerIteration,
        )
    });
    let qdir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(qdir.path(), opts).expect("open");
    fill(&db, 8, &data, data.len());
    db.maintain().expect("maintain");
    let m = Matcher::new(MatchType::Equal, "__name__", "node_cpu_seconds_total").expect("matcher");
    let mode = Matcher::new(MatchType::Equal, "mode", "idle").expect("matcher");
    g.throughput(Throughput::Elements(8 * 8 * 240 * 6));
    g.bench_function("query_cpu_idle_6h_from_blocks", |b| {
        b.iter(|| {
            let q = db.querier(START, START + 6 * 3_600_000).expect("querier");
            let mut sum = 0.0;
            for s in q.select(true, None, &[m.clone(), mode.clone()]) {
                let mut it = s.expect("series").iterator();
                while it.next() {
                    sum += it.at().v;
                }
            }
            black_box(sum)
        })
    });
    g.finish();
}

criterion_group!(benches, chunks, head_append, postings, blocks);
criterion_main!(benches);
