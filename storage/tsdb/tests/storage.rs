//! Integration tests of the TSDB through its public API: reopen, damage repair, crash safety
//! under SIGKILL, and concurrent appends and queries.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use watchfire_model::{Labels, MatchType, Matcher};
use watchfire_storage::{Appendable, Queryable};
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
