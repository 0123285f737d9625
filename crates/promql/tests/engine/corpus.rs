//! Runs every upstream promqltest script in /work/shared/compat/prometheus/promqltest against
//! the engine and the in-memory TSDB head. Fails when a case fails that is not listed in
//! `tests/known_failures.txt`, and when a listed case passes (so the list only shrinks).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use watchfire_promql::engine::{Engine, EngineOptions};
use watchfire_promql::test_script::{self, Outcome, Runner, ScriptStorage};
use watchfire_tsdb::{Head, HeadOptions, MemoryStorage};

const CORPUS: &str = "/work/shared/compat/prometheus/promqltest";
const KNOWN_FAILURES: &str = include_str!("../known_failures.txt");

/// The storage upstream's test harness uses: a head with 24h blocks.
fn new_storage() -> Arc<dyn ScriptStorage> {
    Arc::new(MemoryStorage(Head::in_memory(HeadOptions {
        chunk_range: 24 * 3600 * 1000,
        ..HeadOptions::default()
    })))
}

/// Upstream's `NewTestEngine`: 10,000 samples per query, 1m default subquery step, delayed
/// name removal on.
fn test_engine() -> Engine {
    Engine::new(EngineOptions {
        max_samples: 10_000,
        ..EngineOptions::default()
    })
}

fn known_failures() -> BTreeMap<String, String> {
    KNOWN_FAILURES
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((k, why)) => (k.to_owned(), why.trim().to_owned()),
            None => (l.to_owned(), String::new()),
        })
        .collect()
}

#[test]
fn upstream_promqltest_corpus() {
    let dir = Path::new(CORPUS);
    if !dir.is_dir() {
        println!("SKIP: {CORPUS} is absent; the upstream promqltest corpus was not run");
        return;
    }
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("corpus directory is readable")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    let known = known_failures();
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    let (mut total, mut pass, mut fail, mut skip) = (0, 0, 0, 0);
    let only = std::env::var("PROMQLTEST_FILE").ok();
    let verbose = std::env::var("PROMQLTEST_VERBOSE").is_ok();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        let text = std::fs::read_to_string(path).expect("test file is readable");
        let cmds = match test_script::parse(&text) {
            Ok(c) => c,
            Err(e) => panic!("{name}: script does not parse: {e}"),
        };
        let mut runner = Runner {
            engine: test_engine(),
            new_storage: Box::new(new_storage),
        };
        let results = runner.run(&cmds);
        let (mut p, mut f, mut s) = (0, 0, 0);
        for r in &results {
            let key = format!("{name}:{}", r.line);
            match &r.outcome {
                Outcome::Pass => {
                    p += 1;
                    if known.contains_key(&key) {
                        fixed.push(key);
                    }
                }
                Outcome::Skip(why) => {
                    s += 1;
                    if std::env::var("PROMQLTEST_SHOW_SKIPS").is_ok() {
                        println!("SKIP {key} {}: {why}", r.expr);
                    }
                }
                Outcome::Fail(msg) => {
                    f += 1;
                    if verbose {
                        println!("FAIL {key} {}: {msg}", r.expr);
                    }
                    if !known.contains_key(&key) {
                        unexpected.push(format!("{key} {}: {msg}", r.expr));
                    }
                }
            }
        }
        println!(
            "{name}: {} cases, {p} passed, {f} failed, {s} skipped (native histograms)",
            results.len()
        );
        total += results.len();
        pass += p;
        fail += f;
        skip += s;
    }
    println!("TOTAL: {total} cases, {pass} passed, {fail} failed, {skip} skipped (native histograms)");
    if only.is_none() {
        assert!(
            fixed.is_empty(),
            "cases listed in known_failures.txt now pass; remove them:\n{}",
            fixed.join("\n")
        );
    }
    assert!(
        unexpected.is_empty(),
        "{} unexpected failures:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}
