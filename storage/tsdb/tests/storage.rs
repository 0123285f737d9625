//! Integration tests of the TSDB through its public API: reopen, damage repair, crash safety
//! under SIGKILL (with compaction running in the killed process), concurrent appends, queries
//! and compaction, blocks, retention, deletion and snapshots.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use watchfire_model::{Labels, MatchType, Matcher};
use watchfire_storage::{Appendable, Queryable, Storage};
use watchfire_tsdb::{Db, HeadOptions, Options, SyncPolicy};

fn small_opts() -> Options {
    Options {
        head: HeadOptions {
            samples_per_chunk: 16,
            ..HeadOptions::default()
        },
        wal_segment_size: 64 * 1024,
        wal_sync: SyncPolicy::SegmentBoundary,
        head_chunk_file_size: 16 * 1024,
        // One-minute blocks: a second per sample makes compaction happen every minute.
        block_range: 60_000,
        retention_time: 0,
        ..Options::default()
    }
}

fn series(i: u64) -> Labels {
    Labels::from_pairs([("__name__", "test_metric".to_string()), ("series", i.to_string())])
}

/// Every sample per series label value.
fn dump(db: &Db) -> BTreeMap<String, Vec<(i64, u64)>> {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let m = Matcher::new(MatchType::Equal, "__name__", "test_metric").unwrap();
    let mut out = BTreeMap::new();
    for s in q.select(true, None, &[m]) {
        let s = s.unwrap();
        let mut it = s.iterator();
        let mut samples = Vec::new();
        while it.next() {
            samples.push((it.at().t, it.at().v.to_bits()));
        }
        assert!(it.err().is_none(), "{:?}", it.err());
        out.insert(s.labels().get("series").unwrap().to_string(), samples);
    }
    out
}

fn write_samples(db: &Db, series_count: u64, from: i64, n: i64) {
    let mut app = db.appender();
    for t in from..from + n {
        for s in 0..series_count {
            app.append(None, &series(s), t * 1000, (t * 10 + s as i64) as f64)
                .unwrap();
        }
        app.commit().unwrap();
    }
}

#[test]
fn reopen_restores_everything_after_close_and_after_drop() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    write_samples(&db, 5, 0, 300);
    let before = dump(&db);
    assert_eq!(before.len(), 5);
    assert!(before.values().all(|v| v.len() == 300));
    db.close().unwrap();

    let db = Db::open(dir.path(), small_opts()).unwrap();
    assert!(db.open_report().mmapped_chunks > 0, "{:?}", db.open_report());
    assert!(db.open_report().wal_corruption.is_none());
    assert_eq!(dump(&db), before);
    // Dropped without close, like a crash after the last commit returned.
    write_samples(&db, 5, 300, 50);
    let before = dump(&db);
    drop(db);
    let db = Db::open(dir.path(), small_opts()).unwrap();
    assert_eq!(dump(&db), before);
    assert_eq!(db.head().metrics().replay_unknown_refs.load(Ordering::Relaxed), 0);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _db = Db::open(dir.path(), small_opts()).unwrap();
    assert!(matches!(
        Db::open(dir.path(), small_opts()),
        Err(watchfire_tsdb::Error::Locked(_))
    ));
}

fn newest_segment(dir: &Path) -> std::path::PathBuf {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| fs::metadata(p).unwrap().len() > 0)
        .collect();
    names.sort();
    names.pop().unwrap()
}

#[test]
fn corrupt_wal_tail_is_cut_counted_and_the_rest_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    write_samples(&db, 3, 0, 10);
    let good = dump(&db);
    write_samples(&db, 3, 10, 1);
    drop(db);
    // Flip a byte inside the last record (the final commit's samples) and add garbage.
    let seg = newest_segment(&dir.path().join("wal"));
    let mut data = fs::read(&seg).unwrap();
    let n = data.len();
    data[n - 3] ^= 0xff;
    data.extend_from_slice(&[0x01, 0x00, 0x05, 1, 2, 3]);
    fs::write(&seg, &data).unwrap();

    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.head().metrics().wal_corruptions.load(Ordering::Relaxed), 1);
    assert!(db.open_report().wal_corruption.is_some());
    assert_eq!(dump(&db), good);
    // The store keeps working and the repair is stable.
    write_samples(&db, 3, 20, 1);
    let after = dump(&db);
    drop(db);
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.head().metrics().wal_corruptions.load(Ordering::Relaxed), 0);
    assert_eq!(dump(&db), after);
}

#[test]
fn truncated_head_chunk_file_loses_no_samples() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        head_chunk_file_size: 2048,
        ..small_opts()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    write_samples(&db, 4, 0, 500);
    let before = dump(&db);
    db.close().unwrap();
    let chunks_dir = dir.path().join("chunks_head");
    let mut files: Vec<_> = fs::read_dir(&chunks_dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() > 2, "{files:?}");
    // Cut a middle file in the middle of a chunk.
    let victim = &files[files.len() / 2];
    let len = fs::metadata(victim).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(victim)
        .unwrap()
        .set_len(len / 2 + 3)
        .unwrap();

    let db = Db::open(dir.path(), opts).unwrap();
    assert_eq!(db.head().metrics().mmap_chunk_corruptions.load(Ordering::Relaxed), 1);
    let damage = db.open_report().chunk_damage.clone().unwrap();
    assert!(!damage.removed_files.is_empty());
    assert_eq!(dump(&db), before);
}

/// The child side of `sigkill_never_loses_a_reported_commit`: appends and commits forever,
/// printing each commit after it returned.
#[test]
fn crash_child_process() {
    let Ok(dir) = std::env::var("WATCHFIRE_CRASH_DIR") else {
        return;
    };
    let db = Db::open(Path::new(&dir), small_opts()).unwrap();
    let start = if db.head().max_time() == i64::MIN {
        0
    } else {
        db.head().max_time() / 1000 + 1
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut app = db.appender();
    for t in start.. {
        let batch = 1 + (t % 7) as u64;
        for s in 0..batch {
            app.append(None, &series(s), t * 1000, t as f64).unwrap();
        }
        app.commit().unwrap();
        for s in 0..batch {
            writeln!(out, "COMMIT {s} {t}").unwrap();
        }
        out.flush().unwrap();
        // Head compaction, WAL checkpoints and block compaction run in the killed process.
        if t % 40 == 0 {
            db.maintain().unwrap();
        }
    }
}

#[test]
fn sigkill_never_loses_a_reported_commit() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut committed: BTreeSet<(String, i64)> = BTreeSet::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ std::process::id() as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut trials = 0;
    while trials < 20 && Instant::now() < deadline {
        trials += 1;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child_process", "--nocapture", "--test-threads=1"])
            .env("WATCHFIRE_CRASH_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("COMMIT ") {
                    let mut it = rest.split(' ');
                    let s = it.next().unwrap().to_string();
                    let t: i64 = it.next().unwrap().parse().unwrap();
                    got.push((s, t));
                }
            }
            got
        });
        // Kill at a random moment, sometimes during open/replay.
        std::thread::sleep(Duration::from_millis(20 + seed % 300));
        child.kill().unwrap();
        child.wait().unwrap();
        committed.extend(reader.join().unwrap());

        let db = Db::open(dir.path(), small_opts()).expect("store opens without manual action");
        let have = dump(&db);
        for (s, t) in &committed {
            let samples = have
                .get(s)
                .unwrap_or_else(|| panic!("series {s} missing after trial {trials}"));
            assert!(
                samples.binary_search_by_key(&(t * 1000), |x| x.0).is_ok(),
                "series {s} lost t={t} after trial {trials}"
            );
        }
        db.close().unwrap();
    }
    assert!(trials >= 20, "only {trials} trials fitted in the time bound");
    assert!(
        committed.len() > 100,
        "children committed too little to test anything: {}",
        committed.len()
    );
}

#[test]
fn concurrent_appends_and_queries_see_whole_commits() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), small_opts()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut app = db.appender();
            let mut t = 0i64;
            while !stop.load(Ordering::Relaxed) && t < 20_000 {
                // One commit writes the same timestamp to all 20 series.
                for s in 0..20 {
                    app.append(None, &series(s), t, t as f64).unwrap();
                }
                app.commit().unwrap();
                t += 1;
            }
            t
        })
    };
    let mut checks = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let snap = dump(&db);
        if snap.is_empty() {
            continue;
        }
        // Every series has the same samples: no commit is half visible.
        let first = snap.values().next().unwrap().clone();
        assert_eq!(snap.len(), 20, "series of a commit appear together");
        for v in snap.values() {
            assert_eq!(v, &first);
        }
        assert!(first.iter().enumerate().all(|(i, (t, _))| *t == i as i64));
        checks += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(checks > 0 && written > 0);
    assert_eq!(dump(&db).values().next().unwrap().len() as i64, written);
}

/// Samples of every series in `[mint, maxt]`, plus seeks and label lookups, as one comparable
/// value.
type Answer = (BTreeMap<String, Vec<(i64, u64)>>, Vec<(String, i64)>, Vec<String>);

fn ask(db: &Db, mint: i64, maxt: i64) -> Answer {
    let q = db.querier(mint, maxt).unwrap();
    let m = Matcher::new(MatchType::Regex, "series", ".+").unwrap();
    let mut samples = BTreeMap::new();
    let mut seeks = Vec::new();
    for s in q.select(true, None, std::slice::from_ref(&m)) {
        let s = s.unwrap();
        let name = s.labels().get("series").unwrap().to_string();
        let mut it = s.iterator();
        let mut got = Vec::new();
        while it.next() {
            got.push((it.at().t, it.at().v.to_bits()));
        }
        assert!(it.err().is_none(), "{:?}", it.err());
        // Seek into the middle of the range, then step once.
        let mut it = s.iterator();
        let mid = mint / 2 + maxt / 2 + 333;
        if it.seek(mid) {
            seeks.push((name.clone(), it.at().t));
            if it.next() {
                seeks.push((name.clone(), it.at().t));
            }
        }
        samples.insert(name, got);
    }
    let values = q.label_values("series", &[]).unwrap();
    (samples, seeks, values)
}

/// Asserts two answers are equal, describing the first difference briefly.
fn same(a: &[Answer], b: &[Answer]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(
            x.0.keys().collect::<Vec<_>>(),
            y.0.keys().collect::<Vec<_>>(),
            "window {i}: series"
        );
        for (k, xs) in &x.0 {
            let ys = &y.0[k];
            if xs != ys {
                let at = xs
                    .iter()
                    .zip(ys)
                    .position(|(p, q)| p != q)
                    .unwrap_or(xs.len().min(ys.len()));
                panic!(
                    "window {i} series {k}: {} vs {} samples, first difference at {at}: {:?} vs {:?}",
                    xs.len(),
                    ys.len(),
                    xs.get(at),
                    ys.get(at)
                );
            }
        }
        assert_eq!(x.1, y.1, "window {i}: seeks");
        // As upstream, label lookups on the head do not look at each series' time range, so a
        // series that left the head for a block outside the window only drops out of the
        // label values of narrow windows; the full window must agree.
        if i == 0 {
            assert_eq!(x.2, y.2, "window {i}: label values");
        }
    }
}

fn count_blocks(db: &Db) -> usize {
    db.blocks().len()
}

#[test]
fn compaction_keeps_query_results_identical_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small_opts();
    let db = Db::open(dir.path(), opts).unwrap();
    // Six series over ten minutes, and one that stops after 100 s (garbage-collected from the
    // head by compaction, still queryable from blocks).
    let mut app = db.appender();
    for t in 0..600i64 {
        for s in 0..6 {
            app.append(None, &series(s), t * 1000, (t * 10 + s as i64) as f64)
                .unwrap();
        }
        if t < 100 {
            app.append(None, &series(99), t * 1000 + 500, t as f64).unwrap();
        }
        app.commit().unwrap();
    }
    let windows = [
        (i64::MIN, i64::MAX),
        (30_500, 130_000),
        (59_999, 60_000),
        (200_000, 590_000),
    ];
    let before: Vec<Answer> = windows.iter().map(|&(a, b)| ask(&db, a, b)).collect();
    assert_eq!(before[0].0.len(), 7);

    let report = db.maintain().unwrap();
    assert!(report.head_blocks.len() >= 7, "{report:?}");
    assert!(
        !report.compacted_blocks.is_empty(),
        "1m blocks merge into 3m and 9m ones: {report:?}"
    );
    assert!(report.series_removed >= 1);
    assert!(report.checkpoint.is_some());
    assert!(db.head().min_time() >= 480_000, "head keeps about one block range");
    let after: Vec<Answer> = windows.iter().map(|&(a, b)| ask(&db, a, b)).collect();
    same(&before, &after);
    let levels: BTreeSet<u32> = db.blocks().iter().map(|b| b.meta().compaction.level).collect();
    assert!(levels.iter().any(|&l| l > 1), "{levels:?}");
    // Blocks do not overlap and are aligned.
    let bs = db.blocks();
    for w in bs.windows(2) {
        assert!(w[0].max_time() <= w[1].min_time());
    }
    assert!(bs.iter().all(|b| b.max_time() % 60_000 == 0));

    // Restart after compaction: identical (dropped without close, then closed).
    drop(db);
    let db = Db::open(dir.path(), opts).unwrap();
    assert!(db.open_report().checkpoint.is_some());
    assert!(db.open_report().corrupted_blocks.is_empty());
    same(
        &windows.iter().map(|&(a, b)| ask(&db, a, b)).collect::<Vec<_>>(),
        &before,
    );
    assert_eq!(db.head().metrics().replay_unknown_refs.load(Ordering::Relaxed), 0);
    // Appends below the newest block are out of bounds; new data keeps flowing.
    let mut app = db.appender();
    assert!(app.append(None, &series(0), 1000, 1.0).is_err());
    drop(app);
    write_samples(&db, 6, 600, 10);
    db.close().unwrap();
    let db = Db::open(dir.path(), opts).unwrap();
    let all = ask(&db, i64::MIN, i64::MAX);
    assert_eq!(all.0["0"].len(), 610);
    assert_eq!(all.0["99"].len(), 100);

    // Time retention of blocks the window does not touch leaves its answer unchanged.
    let window = ask(&db, 400_000, 609_000);
    drop(db);
    let db = Db::open(
        dir.path(),
        Options {
            retention_time: 180_000,
            ..opts
        },
    )
    .unwrap();
    let blocks_before = count_blocks(&db);
    let report = db.maintain().unwrap();
    assert!(!report.deleted_by_time.is_empty(), "{report:?}");
    assert!(count_blocks(&db) < blocks_before);
    same(&[ask(&db, 400_000, 609_000)], &[window]);
    assert!(db.start_time() >= 300_000, "{}", db.start_time());
}

#[test]
fn wal_size_stays_bounded_with_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        wal_segment_size: 32 * 1024,
        ..small_opts()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    // One block range (60 samples per series).
    write_samples(&db, 20, 0, 60);
    let one_range = db.wal_size();
    let mut worst = 0;
    for round in 1..40 {
        write_samples(&db, 20, round * 60, 60);
        db.maintain().unwrap();
        worst = worst.max(db.wal_size());
    }
    // 40 ranges written; the WAL holds about the 1.5 ranges the head keeps, plus segment slack.
    assert!(
        worst < 4 * one_range + 3 * 32 * 1024,
        "WAL grew to {worst} bytes; one range is {one_range}"
    );
    let wal: Vec<String> = fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        wal.iter().filter(|n| n.starts_with("checkpoint.")).count(),
        1,
        "{wal:?}"
    );
    // Head chunk files of compacted ranges are gone too.
    assert!(db.head_chunks_size() < 8 * 16 * 1024, "{}", db.head_chunks_size());
    let all = dump(&db);
    assert!(all.values().all(|v| v.len() == 40 * 60));
    drop(db);
    let db = Db::open(dir.path(), opts).unwrap();
    assert!(
        db.open_report().wal_samples < 20 * 150,
        "replay stays short: {:?}",
        db.open_report()
    );
    assert_eq!(dump(&db), all);
}

/// Whether any fragment of the WAL segment files in `dir` carries the Snappy flag (bit 3 of
/// the type byte; FORMAT.md, "WAL segments").
fn has_compressed_fragments(dir: &Path) -> bool {
    fs::read_dir(dir).unwrap().any(|e| {
        let p = e.unwrap().path();
        if !p.is_file() {
            return false;
        }
        let data = fs::read(&p).unwrap();
        let mut pos = 0;
        while pos < data.len() {
            let page_left = 32 * 1024 - pos % (32 * 1024);
            if page_left < 7 || data[pos] == 0 {
                pos += page_left;
                continue;
            }
            if data[pos] & 0x08 != 0 {
                return true;
            }
            pos += 7 + usize::from(u16::from_be_bytes([data[pos + 1], data[pos + 2]]));
        }
        false
    })
}

#[test]
fn wal_compression_can_be_switched_off_and_on_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal");
    let with = |compress: bool| Options {
        wal_compression: compress,
        ..small_opts()
    };
    // Plain WAL, reopened with compression on.
    let db = Db::open(dir.path(), with(false)).unwrap();
    write_samples(&db, 5, 0, 40);
    drop(db);
    assert!(!has_compressed_fragments(&wal));
    let db = Db::open(dir.path(), with(true)).unwrap();
    assert!(db.open_report().wal_corruption.is_none());
    assert_eq!(dump(&db).values().map(Vec::len).sum::<usize>(), 5 * 40);
    // New series: their series record compresses (sample records of a few small integers
    // would not, and are then written plain).
    write_samples(&db, 20, 40, 40);
    let before = dump(&db);
    drop(db);
    assert!(has_compressed_fragments(&wal));
    // Mixed WAL, reopened with compression off: everything replays, and a checkpoint written
    // without compression reads back under compression.
    let db = Db::open(dir.path(), with(false)).unwrap();
    assert!(db.open_report().wal_corruption.is_none());
    assert_eq!(db.open_report().undecodable_records, 0);
    assert_eq!(dump(&db), before);
    write_samples(&db, 5, 80, 100);
    db.maintain().unwrap();
    let cp = fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a checkpoint");
    assert!(!has_compressed_fragments(&cp));
    let before = dump(&db);
    drop(db);
    let db = Db::open(dir.path(), with(true)).unwrap();
    assert_eq!(dump(&db), before);
    // A checkpoint written with compression is compressed, and reads back without it.
    write_samples(&db, 5, 180, 100);
    db.maintain().unwrap();
    let cp = fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a checkpoint");
    assert!(has_compressed_fragments(&cp));
    let before = dump(&db);
    drop(db);
    let db = Db::open(dir.path(), with(false)).unwrap();
    assert!(db.open_report().checkpoint.is_some());
    assert_eq!(dump(&db), before);
    assert_eq!(db.head().metrics().replay_unknown_refs.load(Ordering::Relaxed), 0);
}

#[test]
fn a_wal_written_before_compression_and_compact_samples_still_replays() {
    use watchfire_tsdb::record::{self, RefSample};
    use watchfire_tsdb::wal::{Wal, WalOptions};
    // What earlier versions wrote: uncompressed records, samples in upstream's v1 layout.
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::create(
        &dir.path().join("wal"),
        WalOptions {
            compress: false,
            ..WalOptions::default()
        },
    )
    .unwrap();
    let mut b = Vec::new();
    let labels: Vec<Labels> = (0..3).map(series).collect();
    record::encode_series(labels.iter().enumerate().map(|(i, l)| (i as u64 + 1, l)), &mut b);
    w.log(&[&b]).unwrap();
    for t in 0..50i64 {
        let samples: Vec<RefSample> = (0..3)
            .map(|s| RefSample {
                r: s + 1,
                t: t * 1000,
                v: (t * 10 + s as i64) as f64,
            })
            .collect();
        b.clear();
        record::encode_samples(&samples, &mut b);
        w.log(&[&b]).unwrap();
    }
    drop(w);
    let mut want = BTreeMap::new();
    for s in 0..3u64 {
        let v: Vec<(i64, u64)> = (0..50i64)
            .map(|t| (t * 1000, ((t * 10 + s as i64) as f64).to_bits()))
            .collect();
        want.insert(s.to_string(), v);
    }
    let db = Db::open(dir.path(), small_opts()).unwrap();
    assert!(db.open_report().wal_corruption.is_none());
    assert_eq!(db.open_report().undecodable_records, 0);
    assert_eq!(dump(&db), want);
    // New commits go on in the new form; old and new replay together.
    write_samples(&db, 3, 50, 10);
    let before = dump(&db);
    drop(db);
    let db = Db::open(dir.path(), small_opts()).unwrap();
    assert_eq!(dump(&db), before);
    assert_eq!(before["0"].len(), 60);
}

#[test]
fn corrupt_compressed_wal_tail_is_cut_counted_and_the_rest_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    write_samples(&db, 50, 0, 10);
    let good = dump(&db);
    // A last commit of metadata only: one record, which compresses well.
    let mut app = db.appender();
    for s in 0..50 {
        let meta = watchfire_storage::Metadata {
            metric_type: watchfire_storage::MetricType::Counter,
            unit: "seconds".into(),
            help: "A test metric with a long enough help text to compress.".into(),
        };
        app.update_metadata(None, &series(s), &meta).unwrap();
    }
    app.commit().unwrap();
    drop(app);
    drop(db);
    let seg = newest_segment(&dir.path().join("wal"));
    let mut data = fs::read(&seg).unwrap();
    let mut pos = 0;
    let mut last = None;
    while pos < data.len() {
        if data[pos] == 0 {
            break;
        }
        last = Some(pos);
        pos += 7 + usize::from(u16::from_be_bytes([data[pos + 1], data[pos + 2]]));
    }
    let last = last.unwrap();
    assert_ne!(data[last] & 0x08, 0, "the last record is compressed");
    // Damage its compressed bytes and fix the checksum, so only decompression can notice.
    let len = usize::from(u16::from_be_bytes([data[last + 1], data[last + 2]]));
    let body = last + 7..last + 7 + len;
    data[body.clone()].iter_mut().skip(1).for_each(|b| *b = 0xff);
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(&data[body]);
    data[last + 3..last + 7].copy_from_slice(&crc.to_be_bytes());
    fs::write(&seg, &data).unwrap();

    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.head().metrics().wal_corruptions.load(Ordering::Relaxed), 1);
    let c = db.open_report().wal_corruption.clone().expect("reported");
    assert!(c.reason.contains("decompress"), "{}", c.reason);
    assert_eq!(c.offset, last as u64);
    assert_eq!(dump(&db), good);
    write_samples(&db, 50, 20, 1);
    let after = dump(&db);
    drop(db);
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.head().metrics().wal_corruptions.load(Ordering::Relaxed), 0);
    assert_eq!(dump(&db), after);
}

fn block_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("meta.json").exists() && p.file_name().unwrap().len() == 26)
        .collect();
    v.sort();
    v
}

#[test]
fn a_wal_holding_only_a_checkpoint_keeps_later_commits() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    write_samples(&db, 2, 0, 200);
    db.maintain().unwrap();
    db.close().unwrap();
    // Remove every segment after the checkpoint (they are empty or hold only new samples).
    let wal = dir.path().join("wal");
    let mut lost = 0;
    for e in fs::read_dir(&wal).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            lost += fs::metadata(&p).unwrap().len();
            fs::remove_file(p).unwrap();
        }
    }
    assert_eq!(lost, 0, "close left no samples outside the checkpoint");
    let db = Db::open(dir.path(), small_opts()).unwrap();
    let before = dump(&db);
    write_samples(&db, 2, 200, 5);
    drop(db);
    let db = Db::open(dir.path(), small_opts()).unwrap();
    let after = dump(&db);
    assert_eq!(after["0"].len(), before["0"].len() + 5);
}

#[test]
fn corrupt_block_is_moved_aside_and_the_db_opens() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        max_block_duration: Some(60_000),
        ..small_opts()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    write_samples(&db, 4, 0, 300);
    db.maintain().unwrap();
    let before = dump(&db);
    db.close().unwrap();
    let blocks = block_dirs(dir.path());
    assert!(blocks.len() >= 3, "{blocks:?}");
    // Flip one bit in the middle of the first block's index and break the second's meta.json.
    let index = blocks[0].join("index");
    let mut b = fs::read(&index).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x10;
    fs::write(&index, b).unwrap();
    fs::write(blocks[1].join("meta.json"), b"{\"ulid\": ").unwrap();

    let db = Db::open(dir.path(), opts).expect("opens despite corrupt blocks");
    let r = db.open_report();
    assert_eq!(r.corrupted_blocks.len(), 2, "{r:?}");
    assert_eq!(db.metrics().block_corruptions.load(Ordering::Relaxed), 2);
    assert!(r.corrupted_blocks[0].error.contains("corrupt") || r.corrupted_blocks[1].error.contains("corrupt"));
    for c in &r.corrupted_blocks {
        assert!(c.moved_to.exists() && !c.dir.exists());
        assert!(c.moved_to.to_str().unwrap().ends_with(".corrupted"));
    }
    // The rest of the data is still there.
    let now = dump(&db);
    for (s, samples) in &now {
        let want: Vec<(i64, u64)> = before[s].iter().copied().filter(|(t, _)| *t >= 120_000).collect();
        let got: Vec<(i64, u64)> = samples.iter().copied().filter(|(t, _)| *t >= 120_000).collect();
        assert_eq!(got, want);
    }
    // The next open does not see them again.
    drop(db);
    let db = Db::open(dir.path(), opts).unwrap();
    assert!(db.open_report().corrupted_blocks.is_empty());
}

#[test]
fn retention_by_time_is_relative_to_the_newest_block() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        max_block_duration: Some(60_000),
        retention_time: 120_000,
        ..small_opts()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    write_samples(&db, 3, 0, 600);
    let report = db.maintain().unwrap();
    let newest = db.blocks().iter().map(|b| b.max_time()).max().unwrap();
    assert!(!report.deleted_by_time.is_empty());
    // Every remaining block ends less than the retention before the newest one.
    for b in db.blocks() {
        assert!(newest - b.max_time() < 120_000, "{:?}", b.meta());
    }
    assert_eq!(count_blocks(&db), 2);
    assert_eq!(
        db.metrics().time_retentions.load(Ordering::Relaxed),
        report.deleted_by_time.len() as u64
    );
    assert!(dump(&db)["0"].first().unwrap().0 >= newest - 120_000);
}

#[test]
fn retention_by_size_is_a_hard_cap_counting_wal_and_head_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        max_block_duration: Some(60_000),
        ..small_opts()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    write_samples(&db, 10, 0, 900);
    db.maintain().unwrap();
    let sizes: Vec<u64> = db.blocks().iter().map(|b| b.size()).collect();
    assert!(sizes.len() > 8);
    let base = db.wal_size() + db.head_chunks_size();
    // Room for the WAL, head chunks and three and a half blocks.
    let cap = base + sizes.iter().rev().take(3).sum::<u64>() + sizes[0] / 2;
    drop(db);
    let db = Db::open(
        dir.path(),
        Options {
            retention_size: cap,
            ..opts
        },
    )
    .unwrap();
    let r = db.maintain().unwrap();
    assert!(!r.size_limit_exceeded);
    assert_eq!(count_blocks(&db), 3, "{r:?}");
    assert!(db.disk_size() <= cap, "{} > {cap}", db.disk_size());
    let kept: Vec<i64> = db.blocks().iter().map(|b| b.max_time()).collect();
    assert_eq!(kept, [720_000, 780_000, 840_000], "the newest blocks stay");
    drop(db);
    // A cap below the WAL alone: every block goes, the WAL stays, the overflow is reported.
    let db = Db::open(
        dir.path(),
        Options {
            retention_size: 1024,
            ..opts
        },
    )
    .unwrap();
    let r = db.maintain().unwrap();
    assert!(r.size_limit_exceeded);
    assert_eq!(count_blocks(&db), 0);
    assert_eq!(db.metrics().size_limit_overflows.load(Ordering::Relaxed), 1);
    assert!(dump(&db)["0"].len() >= 60, "the head's samples are never dropped");
}

#[test]
fn tombstones_are_honoured_persisted_and_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        max_block_duration: Some(60_000),
        ..small_opts()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    write_samples(&db, 3, 0, 300);
    db.maintain().unwrap();
    let before = dump(&db);
    let victim = Matcher::new(MatchType::Equal, "series", "1").unwrap();
    // Spans two blocks and the head.
    let n = db.delete(50_000, 250_000, std::slice::from_ref(&victim)).unwrap();
    assert!(n >= 3, "{n}");
    let expect = |all: &BTreeMap<String, Vec<(i64, u64)>>| {
        for (s, samples) in all {
            let want: Vec<(i64, u64)> = before[s]
                .iter()
                .copied()
                .filter(|(t, _)| s != "1" || !(50_000..=250_000).contains(t))
                .collect();
            assert_eq!(samples, &want, "series {s}");
        }
    };
    expect(&dump(&db));
    let with_stones: Vec<_> = db
        .blocks()
        .iter()
        .filter(|b| b.meta().stats.num_tombstones > 0)
        .cloned()
        .collect();
    assert!(with_stones.len() >= 2);
    // Persisted: block tombstone files and the WAL record.
    drop(with_stones);
    drop(db);
    let db = Db::open(dir.path(), opts).unwrap();
    expect(&dump(&db));
    // Counted in samples: packed chunks of these regular series take a few bytes whether or
    // not a range is cut out of them.
    let samples_before: u64 = db.blocks().iter().map(|b| b.meta().stats.num_samples).sum();
    let rewritten = db.clean_tombstones().unwrap();
    assert!(!rewritten.is_empty());
    assert!(db.blocks().iter().all(|b| b.meta().stats.num_tombstones == 0));
    assert!(db.blocks().iter().map(|b| b.meta().stats.num_samples).sum::<u64>() < samples_before);
    expect(&dump(&db));
    // The head's tombstones are applied when its range is compacted, and survive restarts
    // through the checkpoint until then.
    write_samples(&db, 3, 300, 200);
    db.maintain().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts).unwrap();
    let all = dump(&db);
    assert!(all["1"].iter().all(|(t, _)| !(50_000..=250_000).contains(t)));
    assert_eq!(all["0"].len(), 500);
    assert_eq!(all["1"].len(), 500 - 201);
}

#[test]
fn snapshot_hard_links_blocks_and_writes_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    write_samples(&db, 4, 0, 250);
    db.maintain().unwrap();
    let before = dump(&db);
    let snap = tempfile::tempdir().unwrap();
    let ids = db.snapshot(&snap.path().join("s"), true).unwrap();
    assert_eq!(ids.len(), count_blocks(&db) + 1);
    let without = db.snapshot(&snap.path().join("blocks-only"), false).unwrap();
    assert_eq!(without.len(), count_blocks(&db));
    drop(db);
    let copy = Db::open(&snap.path().join("s"), small_opts()).unwrap();
    assert_eq!(dump(&copy), before);
    // Hard links: the block files share their inode with the originals.
    use std::os::unix::fs::MetadataExt;
    let b = &without[0].to_string();
    let a = fs::metadata(dir.path().join(b).join("index")).unwrap();
    let c = fs::metadata(snap.path().join("blocks-only").join(b).join("index")).unwrap();
    assert_eq!(a.ino(), c.ino());
}

#[test]
fn queries_and_appends_keep_working_while_compaction_runs() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        block_range: 2_000,
        ..small_opts()
    };
    let db = Arc::new(Db::open(dir.path(), opts).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut app = db.appender();
            let mut t = 0i64;
            while !stop.load(Ordering::Relaxed) && t < 30_000 {
                for s in 0..10 {
                    app.append(None, &series(s), t * 10, t as f64).unwrap();
                }
                app.commit().unwrap();
                t += 1;
            }
            t
        })
    };
    let maint = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(Ordering::Relaxed) {
                db.maintain().unwrap();
                runs += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            runs
        })
    };
    let mut checks = 0;
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let snap = dump(&db);
        if snap.is_empty() {
            continue;
        }
        let first = snap.values().next().unwrap().clone();
        assert_eq!(
            snap.len(),
            10,
            "{:?}",
            snap.iter()
                .map(|(k, v)| (k, v.len(), v.first(), v.last()))
                .collect::<Vec<_>>()
        );
        for v in snap.values() {
            assert_eq!(v, &first, "every series has the same samples");
        }
        assert!(
            first.iter().enumerate().all(|(i, (t, _))| *t == i as i64 * 10),
            "no gaps or duplicates"
        );
        checks += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    let runs = maint.join().unwrap();
    assert!(checks > 0 && runs > 0);
    assert!(count_blocks(&db) > 0, "compaction ran during the test");
    assert_eq!(dump(&db).values().next().unwrap().len() as i64, written);
}

fn ooo_opts(window: i64) -> Options {
    Options {
        head: HeadOptions {
            samples_per_chunk: 16,
            out_of_order_time_window: window,
            ..HeadOptions::default()
        },
        ..small_opts()
    }
}

/// Out-of-order samples at the half seconds of `[from, to)` s for series `0..n`.
fn write_ooo(db: &Db, n: u64, from: i64, to: i64) {
    let mut app = db.appender();
    for t in (from..to).rev() {
        for s in 0..n {
            app.append(None, &series(s), t * 1000 + 500, -(t as f64) - s as f64 / 8.0)
                .unwrap();
        }
        if t % 10 == 0 {
            app.commit().unwrap();
        }
    }
    app.commit().unwrap();
}

#[test]
fn out_of_order_samples_are_queried_replayed_and_compacted_into_blocks() {
    let dir = tempfile::tempdir().unwrap();
    // One-minute blocks, a four-minute window.
    let opts = ooo_opts(240_000);
    let db = Db::open(dir.path(), opts).unwrap();
    write_samples(&db, 6, 0, 300);
    let report = db.maintain().unwrap();
    assert!(report.head_blocks.len() >= 3, "{report:?}");
    let in_order_end = db.blocks().last().unwrap().max_time();
    assert!(in_order_end >= 180_000);
    // Out of order, from 100 s (ranges already in blocks) to 290 s (the head's range); the
    // head's newest sample is at 299 s, so the window reaches back to 59 s.
    write_ooo(&db, 3, 100, 290);
    let mut app = db.appender();
    assert!(matches!(
        app.append(None, &series(0), 58_999, 1.0),
        Err(watchfire_storage::Error::TooOldSample)
    ));
    app.append(None, &series(0), 59_000, 1.0).unwrap();
    app.commit().unwrap();
    drop(app);
    let mx = db.head().metrics();
    assert_eq!(mx.out_of_order_samples.load(Ordering::Relaxed), 1);
    assert_eq!(mx.ooo_samples_appended.load(Ordering::Relaxed), 3 * 190 + 1);

    let windows = [
        (i64::MIN, i64::MAX),
        (99_000, 130_000),
        (230_000, 260_000),
        (59_000, 59_000),
    ];
    let before: Vec<Answer> = windows.iter().map(|&(a, b)| ask(&db, a, b)).collect();
    // The sample at 59 s shares its timestamp with an in-order one, which is kept.
    assert_eq!(before[0].0["0"].len(), 300 + 190);
    assert_eq!(before[0].0["3"].len(), 300);
    assert_eq!(before[3].0["0"], [(59_000, 590.0f64.to_bits())]);
    let all = &before[0].0["1"];
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(all.contains(&(150_500, (-150.125f64).to_bits())));

    // Restart without close: the WAL's out-of-order records come back, serially and in
    // parallel.
    drop(db);
    for threads in [1, 3] {
        let db = Db::open(
            dir.path(),
            Options {
                wal_replay_threads: threads,
                ..opts
            },
        )
        .unwrap();
        assert_eq!(db.head().metrics().replay_unknown_refs.load(Ordering::Relaxed), 0);
        same(
            &windows.iter().map(|&(a, b)| ask(&db, a, b)).collect::<Vec<_>>(),
            &before,
        );
    }

    // More in-order data moves the head on. Compaction writes the out-of-order samples of the
    // head's range into its block, and those of older ranges into blocks of their own, which
    // block compaction merges with the blocks they overlap.
    let db = Db::open(dir.path(), opts).unwrap();
    write_samples(&db, 6, 300, 200);
    let windows = [
        (i64::MIN, i64::MAX),
        (99_000, 130_000),
        (230_000, 260_000),
        (400_000, 470_000),
    ];
    let before: Vec<Answer> = windows.iter().map(|&(a, b)| ask(&db, a, b)).collect();
    let report = db.maintain().unwrap();
    assert!(!report.ooo_blocks.is_empty(), "{report:?}");
    assert!(!report.compacted_blocks.is_empty(), "{report:?}");
    let after: Vec<Answer> = windows.iter().map(|&(a, b)| ask(&db, a, b)).collect();
    same(&before, &after);
    let bs = db.blocks();
    for w in bs.windows(2) {
        assert!(w[0].max_time() <= w[1].min_time(), "overlaps are merged");
    }
    // The out-of-order samples now live in blocks (and, after a restart, come back from
    // nowhere else: the checkpoint dropped them).
    let blocks_only = ask_blocks_only(&db);
    assert_eq!(blocks_only["0"].iter().filter(|s| s.0 % 1000 == 500).count(), 190);
    drop(db);
    let db = Db::open(dir.path(), opts).unwrap();
    same(
        &windows.iter().map(|&(a, b)| ask(&db, a, b)).collect::<Vec<_>>(),
        &after,
    );
    // Below the newest in-order block, in-order appends stay out of bounds (blocks of
    // out-of-order samples do not move that floor) while the window still accepts.
    let mut app = db.appender();
    app.append(None, &series(5), 300_500, 5.0).unwrap();
    app.commit().unwrap();
    assert_eq!(ask(&db, 300_500, 300_500).0["5"], [(300_500, 5.0f64.to_bits())]);
}

/// Samples of the blocks alone (the head's samples before its minimum time excluded).
fn ask_blocks_only(db: &Db) -> BTreeMap<String, Vec<(i64, u64)>> {
    let end = db.blocks().iter().map(|b| b.max_time()).max().unwrap();
    ask(db, i64::MIN, end - 1).0
}

#[test]
fn out_of_order_window_changes_while_running_and_zero_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), ooo_opts(0)).unwrap();
    write_samples(&db, 2, 0, 100);
    let mut app = db.appender();
    assert!(matches!(
        app.append(None, &series(0), 80_500, 1.0),
        Err(watchfire_storage::Error::OutOfOrderSample)
    ));
    assert!(matches!(
        app.append(None, &series(0), 50_500, 1.0),
        Err(watchfire_storage::Error::OutOfBounds)
    ));
    db.set_out_of_order_time_window(60_000);
    assert_eq!(db.head().out_of_order_time_window(), 60_000);
    app.append(None, &series(0), 80_500, 1.0).unwrap();
    app.append(None, &series(0), 50_500, 1.0).unwrap();
    assert!(matches!(
        app.append(None, &series(0), 38_500, 1.0),
        Err(watchfire_storage::Error::TooOldSample)
    ));
    app.commit().unwrap();
    db.set_out_of_order_time_window(0);
    assert!(matches!(
        app.append(None, &series(0), 81_500, 1.0),
        Err(watchfire_storage::Error::OutOfOrderSample)
    ));
    drop(app);
    // Deletion covers out-of-order samples too.
    let m = Matcher::new(MatchType::Equal, "series", "0").unwrap();
    assert_eq!(db.delete(80_000, 80_999, &[m]).unwrap(), 1);
    assert!(!dump(&db)["0"].contains(&(80_500, 1.0f64.to_bits())));
    // What was accepted stays, also across a restart with the window off.
    drop(db);
    let db = Db::open(dir.path(), ooo_opts(0)).unwrap();
    assert!(dump(&db)["0"].contains(&(50_500, 1.0f64.to_bits())));
    assert!(!dump(&db)["0"].contains(&(80_500, 1.0f64.to_bits())));
    assert_eq!(dump(&db)["0"].len(), 100);
    // A snapshot with the head includes its out-of-order samples.
    let snap = tempfile::tempdir().unwrap();
    db.snapshot(snap.path(), true).unwrap();
    let copy = Db::open(snap.path(), ooo_opts(0)).unwrap();
    assert_eq!(dump(&copy), dump(&db));
}

#[test]
fn a_commit_that_makes_a_block_due_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    db.on_block_due(Box::new(move || {
        seen.fetch_add(1, Ordering::SeqCst);
    }));
    // One-minute blocks: due once the head spans more than 90 s.
    write_samples(&db, 3, 0, 91);
    assert_eq!(calls.load(Ordering::SeqCst), 0, "90 s of samples is not yet a block");
    write_samples(&db, 3, 91, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "91 s makes one due");
    // Each further commit says it again until maintenance has cut the block.
    write_samples(&db, 3, 92, 2);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let report = db.maintain().unwrap();
    assert_eq!(report.head_blocks.len(), 1, "{report:?}");
    write_samples(&db, 3, 94, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "after the cut the head spans 34 s");
}

#[test]
fn after_shutdown_commits_are_refused_and_queries_still_answer() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), small_opts()).unwrap());
    write_samples(&db, 2, 0, 10);
    // Another holder (a scrape loop, a request) still has the database and an appender.
    let holder = db.clone();
    let mut app = holder.appender();
    app.append(None, &series(0), 10_000, 1.0).unwrap();
    db.shutdown().unwrap();
    let err = app.commit().unwrap_err().to_string();
    assert!(err.contains("closed"), "{err}");
    let mut app = holder.appender();
    app.append(None, &series(1), 11_000, 1.0).unwrap();
    assert!(app.commit().is_err());
    assert_eq!(dump(&db).values().map(Vec::len).sum::<usize>(), 20);
    // Maintenance after shutdown does nothing, and shutting down twice is harmless.
    assert!(db.maintain().unwrap().head_blocks.is_empty());
    db.shutdown().unwrap();
    drop((db, holder));
    let db = Db::open(dir.path(), small_opts()).unwrap();
    assert_eq!(dump(&db).values().map(Vec::len).sum::<usize>(), 20);
}

/// Every sample of the `st_metric` series with its start timestamp, by `kind` label.
fn dump_st(db: &Db) -> BTreeMap<String, Vec<(i64, u64, i64)>> {
    let q = db.querier(i64::MIN, i64::MAX).unwrap();
    let m = Matcher::new(MatchType::Equal, "__name__", "st_metric").unwrap();
    let mut out = BTreeMap::new();
    for s in q.select(true, None, &[m]) {
        let s = s.unwrap();
        let mut it = s.iterator();
        let mut samples = Vec::new();
        while it.next() {
            samples.push((it.at().t, it.at().v.to_bits(), it.at_st()));
        }
        assert!(it.err().is_none(), "{:?}", it.err());
        out.insert(s.labels().get("kind").unwrap().to_string(), samples);
    }
    out
}

/// Issue #4: start timestamps survive a restart (WAL replay and memory-mapped head chunks),
/// compaction into blocks (copied chunks and, where tombstones force it, re-encoded ones),
/// the WAL checkpoint, and block merges.
#[test]
fn issue_4_start_timestamps_survive_restart_checkpoint_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let opts = small_opts();
    let db = Db::open(dir.path(), opts).unwrap();
    let l = |kind: &str| Labels::from_pairs([("__name__", "st_metric"), ("kind", kind)]);
    for t in 0..600i64 {
        let mut app = db.appender();
        let ts = t * 1000;
        // A delta: each sample starts at the previous one.
        app.append_st(None, &l("delta"), ts - 1000, ts, 1.0).unwrap();
        // A cumulative counter restarted every 100 s; its first 30 s have no start.
        let st = if t < 30 { 0 } else { (t / 100) * 100_000 - 500 };
        app.append_st(None, &l("cumulative"), st, ts, (t % 100) as f64).unwrap();
        // No start timestamps at all.
        app.append(None, &l("plain"), ts, t as f64).unwrap();
        app.commit().unwrap();
    }
    let before = dump_st(&db);
    assert_eq!(before.len(), 3);
    assert!(before["delta"].iter().all(|&(t, _, st)| st == t - 1000));
    assert!(before["plain"].iter().all(|&(_, _, st)| st == 0));
    assert_eq!(before["cumulative"][130].2, 99_500);

    // Crash-like restart: WAL replay on top of the memory-mapped chunks.
    drop(db);
    let db = Db::open(dir.path(), opts).unwrap();
    assert!(db.open_report().mmapped_chunks > 0, "{:?}", db.open_report());
    assert_eq!(dump_st(&db), before);

    // A deletion makes compaction re-encode the chunks it touches.
    let victim = Matcher::new(MatchType::Equal, "kind", "delta").unwrap();
    db.delete(200_500, 201_500, &[victim]).unwrap();
    let want: BTreeMap<String, Vec<(i64, u64, i64)>> = before
        .iter()
        .map(|(k, v)| {
            let kept = v
                .iter()
                .copied()
                .filter(|&(t, _, _)| k != "delta" || !(200_500..=201_500).contains(&t))
                .collect();
            (k.clone(), kept)
        })
        .collect();
    assert_eq!(dump_st(&db), want);
    let report = db.maintain().unwrap();
    assert!(
        !report.head_blocks.is_empty() && report.checkpoint.is_some(),
        "{report:?}"
    );
    assert!(!report.compacted_blocks.is_empty(), "{report:?}");
    assert_eq!(dump_st(&db), want);

    // Restart from blocks, checkpoint and WAL.
    db.close().unwrap();
    let db = Db::open(dir.path(), opts).unwrap();
    assert!(db.open_report().checkpoint.is_some());
    assert_eq!(dump_st(&db), want);
}
