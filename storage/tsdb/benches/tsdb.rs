//! Chunk encode/decode, head append throughput, postings intersection, and block write and
//! query on a node_exporter-like dataset (also printing bytes per sample on disk).
//! Run: `cargo bench -p watchfire-tsdb --bench tsdb` (add `-- block` for the block benches).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use watchfire_model::{Labels, MatchType, Matcher};
use watchfire_storage::{Appendable, Appender, Queryable};
use watchfire_tsdb::chunkenc::{XorChunk, XorIterator};
use watchfire_tsdb::index::intersect;
use watchfire_tsdb::{Db, Head, HeadOptions, Options};

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

/// xorshift64*: deterministic noise for the dataset.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How one series' value evolves per 15 s scrape.
#[derive(Clone, Copy)]
enum Shape {
    /// CPU seconds: grows by about `rate` × 15 s, in hundredths (USER_HZ).
    CpuCounter(f64),
    /// Byte/packet counters: integer increments around `rate` per second.
    IntCounter(f64),
    /// Gauge in bytes that wanders by page-sized steps around `base`.
    Bytes(f64),
    /// Constant (sizes, info metrics).
    Constant(f64),
    /// Load average style: two decimals, smooth.
    Load,
}

/// About 140 series per host, shaped like node_exporter's defaults, over `hosts` hosts.
fn node_dataset(hosts: usize) -> Vec<(Labels, Shape, f64)> {
    let mut out = Vec::new();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for h in 0..hosts {
        let inst = format!("host-{h:03}:9100");
        let l = |name: &str, extra: &[(&str, String)]| {
            let mut pairs = vec![
                ("__name__", name.to_string()),
                ("instance", inst.clone()),
                ("job", "node".to_string()),
            ];
            pairs.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
            Labels::from_pairs(pairs)
        };
        for cpu in 0..8 {
            for (mode, rate) in [
                ("idle", 0.85),
                ("user", 0.08),
                ("system", 0.04),
                ("iowait", 0.01),
                ("irq", 0.0),
                ("softirq", 0.005),
                ("steal", 0.0),
                ("nice", 0.0),
            ] {
                let labels = l(
                    "node_cpu_seconds_total",
                    &[("cpu", cpu.to_string()), ("mode", mode.into())],
                );
                out.push((labels, Shape::CpuCounter(rate), (rng.unit() * 1e6).round() / 100.0));
            }
        }
        for m in [
            "MemFree",
            "MemAvailable",
            "Buffers",
            "Cached",
            "Active",
            "Inactive",
            "Dirty",
            "Writeback",
            "AnonPages",
            "Mapped",
            "Shmem",
            "Slab",
            "SReclaimable",
            "SUnreclaim",
            "KernelStack",
            "PageTables",
            "Committed_AS",
            "VmallocUsed",
            "SwapFree",
            "SwapCached",
        ] {
            out.push((
                l(&format!("node_memory_{m}_bytes"), &[]),
                Shape::Bytes(1e9 * (1.0 + rng.unit() * 8.0)),
                0.0,
            ));
        }
        for m in [
            "MemTotal",
            "SwapTotal",
            "HugePages_Total",
            "Hugepagesize",
            "VmallocTotal",
        ] {
            out.push((l(&format!("node_memory_{m}_bytes"), &[]), Shape::Constant(16e9), 0.0));
        }
        for dev in ["eth0", "lo"] {
            for (m, rate) in [
                ("receive_bytes", 50_000.0),
                ("transmit_bytes", 20_000.0),
                ("receive_packets", 300.0),
                ("transmit_packets", 200.0),
                ("receive_errs", 0.0),
                ("transmit_drop", 0.0),
            ] {
                let labels = l(&format!("node_network_{m}_total"), &[("device", dev.into())]);
                out.push((labels, Shape::IntCounter(rate), (rng.unit() * 1e12).round()));
            }
        }
        for dev in ["sda", "sdb"] {
            for (m, rate) in [
                ("reads_completed", 5.0),
                ("writes_completed", 20.0),
                ("read_bytes", 40_000.0),
                ("written_bytes", 200_000.0),
                ("io_time_seconds", 0.02),
            ] {
                let labels = l(&format!("node_disk_{m}_total"), &[("device", dev.into())]);
                out.push((labels, Shape::IntCounter(rate), (rng.unit() * 1e9).round()));
            }
        }
        for mp in ["/", "/boot", "/var", "/home"] {
            for m in ["size", "avail", "free", "files", "files_free"] {
                let shape = if m == "size" || m == "files" {
                    Shape::Constant(5e11)
                } else {
                    Shape::Bytes(2e11)
                };
                let labels = l(
                    &format!("node_filesystem_{m}_bytes"),
                    &[("mountpoint", mp.into()), ("fstype", "ext4".into())],
                );
                out.push((labels, shape, 0.0));
            }
        }
        for m in ["node_load1", "node_load5", "node_load15"] {
            out.push((l(m, &[]), Shape::Load, 0.5));
        }
        out.push((l("up", &[]), Shape::Constant(1.0), 0.0));
        out.push((l("scrape_duration_seconds", &[]), Shape::Load, 0.02));
        out.push((l("node_boot_time_seconds", &[]), Shape::Constant(1.7e9), 0.0));
    }
    out
}

const START: i64 = 1_700_000_000_000 / 7_200_000 * 7_200_000;

/// Appends `hours` of 15 s scrapes of the dataset into `db`, one commit per host scrape.
fn fill(db: &Db, hours: i64, data: &[(Labels, Shape, f64)]) -> u64 {
    let mut rng = Rng(42);
    let mut state: Vec<f64> = data
        .iter()
        .map(|(_, s, init)| match s {
            Shape::Bytes(b) | Shape::Constant(b) => *b,
            _ => *init,
        })
        .collect();
    let mut refs = vec![None; data.len()];
    let mut app = db.appender();
    let mut n = 0;
    for step in 0..hours * 240 {
        // Exactly 15 s apart: upstream's scrape loop snaps timestamps within
        // `--scrape.timestamp-tolerance` (2 ms) to the schedule for this reason.
        let t = START + step * 15_000;
        for (i, (labels, shape, _)) in data.iter().enumerate() {
            let v = &mut state[i];
            match *shape {
                Shape::CpuCounter(rate) => *v += ((rate * 15.0 * (0.7 + 0.6 * rng.unit())) * 100.0).round() / 100.0,
                Shape::IntCounter(rate) => *v += (rate * 15.0 * (0.5 + rng.unit())).round(),
                Shape::Bytes(_) => {
                    if rng.next().is_multiple_of(3) {
                        *v += 4096.0 * ((rng.next() % 200) as f64 - 100.0);
                    }
                }
                Shape::Constant(_) => {}
                Shape::Load => *v = ((*v * 0.9 + rng.unit() * 0.2) * 100.0).round() / 100.0,
            }
            refs[i] = Some(app.append(refs[i], labels, t, *v).expect("in order"));
            n += 1;
        }
        app.commit().expect("commit");
    }
    n
}

fn dir_bytes(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    if e.path().is_dir() {
                        dir_bytes(&e.path())
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn blocks(c: &mut Criterion) {
    let data = node_dataset(8);
    // Bytes per sample: 8 h of data, three 2 h blocks cut from the head.
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        retention_time: 0,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts).expect("open");
    fill(&db, 8, &data);
    db.maintain().expect("maintain");
    for b in db.blocks() {
        let m = b.meta();
        let chunks = dir_bytes(&b.dir().join("chunks"));
        let whole = dir_bytes(b.dir());
        println!(
            "block {} level {} range {:.2}h: {} series, {} samples, {} chunks; chunks {:.3} B/sample, whole block {:.3} B/sample",
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
    drop(db);

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
                fill(&db, 4, &data);
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
    fill(&db, 8, &data);
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
