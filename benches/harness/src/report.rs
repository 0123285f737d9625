//! The markdown table: figures and ratios (Watchfire / peer) from the `key value` results file
//! that run.sh and the other subcommands append to. When a key appears several times (one per
//! run), the median is reported and the number of runs shown.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use crate::query::median;

#[derive(clap::Args, Debug)]
pub struct Args {
    results: std::path::PathBuf,
}

/// (what, Watchfire key, peer key, peer name, unit, decimals). Lower is better everywhere
/// except where the unit says "/s".
const ROWS: &[(&str, &str, &str, &str, &str, usize)] = &[
    (
        "Scrape ingest CPU per million samples",
        "wf.cpu_s_per_msample",
        "prom.cpu_s_per_msample",
        "Prometheus",
        "CPU s",
        2,
    ),
    (
        "Samples appended during the measured windows",
        "wf.samples_measured",
        "prom.samples_measured",
        "Prometheus",
        "samples",
        0,
    ),
    (
        "Active series (prometheus_tsdb_head_series)",
        "wf.head_series",
        "prom.head_series",
        "Prometheus",
        "series",
        0,
    ),
    (
        "RSS, steady (VmRSS at end of scrape phase)",
        "wf.rss_mib",
        "prom.rss_mib",
        "Prometheus",
        "MiB",
        1,
    ),
    (
        "RSS, peak (VmHWM)",
        "wf.hwm_mib",
        "prom.hwm_mib",
        "Prometheus",
        "MiB",
        1,
    ),
    (
        "RSS per active series",
        "wf.rss_bytes_per_series",
        "prom.rss_bytes_per_series",
        "Prometheus",
        "bytes",
        0,
    ),
    (
        "On-disk bytes (du of data dir)",
        "wf.disk_mib",
        "prom.disk_mib",
        "Prometheus",
        "MiB",
        2,
    ),
    (
        "WAL bytes per sample",
        "wf.wal_bytes_per_sample",
        "prom.wal_bytes_per_sample",
        "Prometheus",
        "bytes",
        2,
    ),
    (
        "Restart to ready with full WAL",
        "wf.restart_s",
        "prom.restart_s",
        "Prometheus",
        "s",
        2,
    ),
    (
        "RSS after restart",
        "wf.restart_rss_mib",
        "prom.restart_rss_mib",
        "Prometheus",
        "MiB",
        1,
    ),
    (
        "Query latency, geometric mean of per-query medians",
        "wf.query_geomean_ms",
        "prom.query_geomean_ms",
        "Prometheus",
        "ms",
        2,
    ),
    (
        "Alert intake (POST /api/v2/alerts)",
        "wf.alerts_per_s",
        "am.alerts_per_s",
        "Alertmanager",
        "alerts/s",
        0,
    ),
    (
        "CPU per thousand alerts",
        "wf.cpu_s_per_1k_alerts",
        "am.cpu_s_per_1k_alerts",
        "Alertmanager",
        "CPU s",
        3,
    ),
    (
        "RSS holding the posted alerts (default profile: 10k in 100 groups)",
        "wf.alerts_rss_mib",
        "am.alerts_rss_mib",
        "Alertmanager",
        "MiB",
        1,
    ),
    (
        "Idle RSS: Watchfire vs Prometheus + Alertmanager + node_exporter",
        "wf.idle_rss_mib",
        "stack.idle_rss_mib",
        "3 processes",
        "MiB",
        1,
    ),
    (
        "Binary size",
        "wf.binary_mib",
        "stack.binary_mib",
        "3 binaries",
        "MiB",
        1,
    ),
];

pub fn run(args: Args) -> Result<()> {
    let text = std::fs::read_to_string(&args.results).with_context(|| format!("reading {}", args.results.display()))?;
    let mut values: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        if let (Some(k), Some(v)) = (it.next(), it.next()) {
            if let Ok(v) = v.parse::<f64>() {
                values.entry(k).or_default().push(v);
            }
        }
    }
    let get = |k: &str| -> (Option<f64>, usize) {
        match values.get(k) {
            Some(v) => (Some(median(&mut v.clone())), v.len()),
            None => (None, 0),
        }
    };
    println!("| What | Watchfire | Peer | Peer figure | Ratio (Watchfire / peer) | Unit | Runs |");
    println!("|---|---|---|---|---|---|---|");
    for (what, wk, pk, peer, unit, dec) in ROWS {
        let (w, nw) = get(wk);
        let (p, np) = get(pk);
        let fmt = |v: Option<f64>| {
            v.filter(|x| x.is_finite())
                .map(|x| format!("{x:.dec$}", dec = *dec))
                .unwrap_or_else(|| "n/a".into())
        };
        let ratio = match (w, p) {
            (Some(w), Some(p)) if p != 0.0 && w.is_finite() && p.is_finite() => format!("{:.2}", w / p),
            _ => "n/a".into(),
        };
        println!(
            "| {what} | {} | {peer} | {} | {ratio} | {unit} | {} |",
            fmt(w),
            fmt(p),
            nw.max(np)
        );
    }
    let (same, _) = get("cmp.queries_identical");
    let (diff, _) = get("cmp.queries_differing");
    if let (Some(s), Some(d)) = (same, diff) {
        println!("\nQuery results: {s:.0} queries agree within tolerance, {d:.0} differ (see the comparison above).");
    }
    Ok(())
}
