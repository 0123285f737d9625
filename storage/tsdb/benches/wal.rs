//! WAL size and replay figures on the node_exporter-like dataset (8 hosts, 1096 series, 15 s
//! interval, one commit per host scrape). Not a criterion bench: it prints figures.
//! Run: `cargo bench -p watchfire-tsdb --bench wal` (`-- <hours>` to change the 2 h default,
//! `-- replay` or `-- size` for one part only).

use std::path::Path;
use std::time::{Duration, Instant};

use watchfire_tsdb::record::{self, Record, RefSample};
use watchfire_tsdb::{Db, Options, wal};

mod common;
use common::{SERIES_PER_HOST, fill, node_dataset};

fn snappy_len(b: &[u8]) -> usize {
    snap::raw::Encoder::new()
        .compress_vec(b)
        .expect("compressible")
        .len()
        .min(b.len())
}

fn main() {
    let hours: i64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(2);
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a == "replay" || a == "size")
        .collect();
    let only = |part: &str| named.is_empty() || named.iter().any(|a| a == part);
    if only("size") {
        size(hours);
    }
    if only("replay") {
        replay(hours);
    }
}

/// WAL bytes per sample with and without compression, the record kinds' share, and the cost
/// of encoding and decoding the samples layouts.
fn size(hours: i64) {
    let data = node_dataset(8);
    assert_eq!(data.len() % SERIES_PER_HOST, 0);
    println!(
        "dataset: {} series, {} h at 15 s, one commit per host scrape ({} samples)",
        data.len(),
        hours,
        SERIES_PER_HOST
    );
    let mut plain_dir = None;
    for compress in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = Options {
            retention_time: 0,
            wal_compression: compress,
            ..Options::default()
        };
        let db = Db::open(dir.path(), opts).expect("open");
        let start = Instant::now();
        let n = fill(&db, hours, &data, SERIES_PER_HOST);
        let took = start.elapsed();
        let bytes = db.wal_size();
        println!(
            "wal_compression={compress}: {bytes} WAL bytes for {n} samples = {:.3} bytes/sample; append {:.0} samples/s",
            bytes as f64 / n as f64,
            n as f64 / took.as_secs_f64()
        );
        drop(db);
        if !compress {
            plain_dir = Some(dir);
        }
    }

    // What each record kind costs plain and compressed; samples also in upstream's v1 layout
    // (what Watchfire wrote before the compact layout, and what Prometheus writes).
    let dir = plain_dir.expect("plain run");
    let wal_dir = dir.path().join("wal");
    let (mut series, mut series_snappy) = (0usize, 0usize);
    let (mut v1, mut v1_snappy, mut compact, mut compact_snappy, mut nsamples) = (0usize, 0, 0, 0, 0);
    let mut buf = Vec::new();
    let mut records: Vec<Vec<RefSample>> = Vec::new();
    for seg in wal::list_segments(&wal_dir).expect("segments") {
        let bytes = std::fs::read(wal_dir.join(wal::segment_name(seg))).expect("segment");
        wal::read_segment(seg, &bytes, |rec| match record::decode(rec) {
            Ok(Record::Series(_)) => {
                series += rec.len();
                series_snappy += snappy_len(rec);
            }
            Ok(Record::Samples(s)) => {
                records.push(s.clone());
                nsamples += s.len();
                buf.clear();
                record::encode_samples(&s, &mut buf);
                v1 += buf.len();
                v1_snappy += snappy_len(&buf);
                buf.clear();
                record::encode_compact_samples(&s, &mut buf);
                compact += buf.len();
                compact_snappy += snappy_len(&buf);
            }
            _ => {}
        })
        .expect("clean WAL");
    }
    let per = |b: usize| b as f64 / nsamples as f64;
    println!(
        "record bytes per sample: series {:.3} (snappy {:.3}); samples as upstream v1 {:.3} (snappy {:.3}), as compact {:.3} (snappy {:.3})",
        per(series),
        per(series_snappy),
        per(v1),
        per(v1_snappy),
        per(compact),
        per(compact_snappy)
    );

    // Encoding and decoding cost per sample, both layouts timed alternately in one run (the
    // fastest of 7 rounds each, so other load on the machine matters less).
    type Encode = fn(&[RefSample], &mut Vec<u8>);
    let layouts: [(&str, Encode); 2] = [
        ("upstream v1", record::encode_samples),
        ("compact", record::encode_compact_samples),
    ];
    let mut best = [(f64::MAX, f64::MAX); 2];
    for _ in 0..7 {
        for (i, (_, encode)) in layouts.iter().enumerate() {
            let mut encoded = Vec::with_capacity(records.len());
            let start = Instant::now();
            for r in &records {
                let mut b = Vec::with_capacity(r.len() * 11 + 20);
                encode(r, &mut b);
                encoded.push(b);
            }
            let enc = start.elapsed().as_secs_f64();
            let start = Instant::now();
            let mut n = 0;
            for b in &encoded {
                if let Ok(Record::Samples(s)) = record::decode(b) {
                    n += s.len();
                }
            }
            let dec = start.elapsed().as_secs_f64();
            assert_eq!(n, nsamples);
            best[i] = (best[i].0.min(enc), best[i].1.min(dec));
        }
    }
    for (i, (name, _)) in layouts.iter().enumerate() {
        println!(
            "{name}: encode {:.1} ns/sample, decode {:.1} ns/sample",
            best[i].0 * 1e9 / nsamples as f64,
            best[i].1 * 1e9 / nsamples as f64
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).expect("copy");
        }
    }
}

/// CPU time (user and system) of this process so far, all threads.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    #[allow(unsafe_code)]
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Replay time of a WAL of about 1.6 M samples (24 hosts, 3288 series, `hours` h): opening a
/// copy of the directory, with its head chunk files (a normal restart) and without them (every
/// sample decoded and appended again); and, with the chunk files, restoring the head snapshot
/// the clean shutdown wrote instead (the other modes delete it from their copy).
fn replay(hours: i64) {
    let data = node_dataset(24);
    let src = tempfile::tempdir().expect("tempdir");
    let opts = Options {
        retention_time: 0,
        ..Options::default()
    };
    let db = Db::open(src.path(), opts).expect("open");
    let n = fill(&db, hours, &data, SERIES_PER_HOST);
    db.close().expect("close");
    println!(
        "replay: {} series, {n} samples, WAL {} bytes",
        data.len(),
        common::dir_bytes(&src.path().join("wal"))
    );
    // Modes alternate within each round, so load from elsewhere on the machine hits them alike.
    const RUNS: usize = 7;
    // (wal_replay_threads, keep the head snapshot)
    let modes = [(1usize, false), (2, false), (3, false), (0, false), (0, true)];
    for with_chunks in [true, false] {
        // Without the chunk files a snapshot does not match: it would be replay again.
        let modes = &modes[..if with_chunks { modes.len() } else { modes.len() - 1 }];
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); modes.len()];
        let mut cpu: Vec<Vec<Duration>> = vec![Vec::new(); modes.len()];
        let mut replay: Vec<Vec<Duration>> = vec![Vec::new(); modes.len()];
        for _ in 0..RUNS {
            for (i, &(threads, snapshot)) in modes.iter().enumerate() {
                let dir = tempfile::tempdir().expect("tempdir");
                copy_dir(src.path(), dir.path());
                if !snapshot {
                    std::fs::remove_file(dir.path().join("head_snapshot")).expect("a snapshot was written");
                }
                if !with_chunks {
                    std::fs::remove_dir_all(dir.path().join("chunks_head")).expect("rm");
                }
                // Flush the copy first: the open fsyncs the WAL directory, which would
                // otherwise wait for these writes and time the disk, not the replay.
                // SAFETY: sync takes no arguments and cannot fail.
                #[allow(unsafe_code)]
                unsafe {
                    libc::sync();
                }
                let (start, start_cpu) = (Instant::now(), cpu_time());
                let db = Db::open(
                    dir.path(),
                    Options {
                        wal_replay_threads: threads,
                        ..opts
                    },
                )
                .expect("open");
                times[i].push(start.elapsed());
                cpu[i].push(cpu_time() - start_cpu);
                replay[i].push(db.open_report().replay_duration);
                assert_eq!(db.head().num_series(), data.len() as u64);
                assert_eq!(db.open_report().snapshot_series.is_some(), snapshot);
            }
        }
        let serial = median(replay[0].clone());
        for (i, &(threads, snapshot)) in modes.iter().enumerate() {
            let m = median(replay[i].clone());
            let what = if snapshot {
                "head snapshot".to_string()
            } else {
                format!("wal_replay_threads={threads}")
            };
            println!(
                "with_chunks={with_chunks} {what}: replay median {:.1} ms of {RUNS} (min {:.1}, max {:.1}), serial/this {:.2}; whole open {:.1} ms, CPU {:.1} ms",
                m.as_secs_f64() * 1e3,
                replay[i].iter().min().expect("runs").as_secs_f64() * 1e3,
                replay[i].iter().max().expect("runs").as_secs_f64() * 1e3,
                serial.as_secs_f64() / m.as_secs_f64(),
                median(times[i].clone()).as_secs_f64() * 1e3,
                median(cpu[i].clone()).as_secs_f64() * 1e3,
            );
        }
    }
}
