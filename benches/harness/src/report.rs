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
/// except where the unit says "/s" (and the samples found, which must equal the samples sent).
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
        "Remote-write ingest rate (part a: 3 h of data)",
        "wf.rw_a_samples_per_s",
        "prom.rw_a_samples_per_s",
        "Prometheus",
        "samples/s",
        0,
    ),
    (
        "Remote-write CPU per million samples (part a)",
        "wf.rw_a_cpu_s_per_msample",
        "prom.rw_a_cpu_s_per_msample",
        "Prometheus",
        "CPU s",
        2,
    ),
    (
        "Remote-write RSS, steady (head holding 3 h, 2 s after part a)",
        "wf.rw_rss_mib",
        "prom.rw_rss_mib",
        "Prometheus",
        "MiB",
        1,
    ),
    (
        "Remote-write RSS, peak (VmHWM of the ingesting process)",
        "wf.rw_hwm_mib",
        "prom.rw_hwm_mib",
        "Prometheus",
        "MiB",
        1,
    ),
    (
        "Remote-write RSS per active series",
        "wf.rw_rss_bytes_per_series",
        "prom.rw_rss_bytes_per_series",
        "Prometheus",
        "bytes",
        0,
    ),
    (
        "Remote-write samples found through the query API (sent: see below)",
        "wf.rw_samples_found",
        "prom.rw_samples_found",
        "Prometheus",
        "samples",
        0,
    ),
    (
        "Remote-write WAL bytes per sample (after part a, before any block)",
        "wf.rw_wal_bytes_per_sample",
        "prom.rw_wal_bytes_per_sample",
        "Prometheus",
        "bytes",
        2,
    ),
    (
        "Block bytes per sample (2 h block cut from the head)",
        "wf.block_bytes_per_sample",
        "prom.block_bytes_per_sample",
        "Prometheus",
        "bytes",
        3,
    ),
    (
        "Block chunk bytes per sample",
        "wf.block_chunk_bytes_per_sample",
        "prom.block_chunk_bytes_per_sample",
        "Prometheus",
        "bytes",
        3,
    ),
    (
        "Block index bytes per series",
        "wf.block_index_bytes_per_series",
        "prom.block_index_bytes_per_series",
        "Prometheus",
        "bytes",
        0,
    ),
    (
        "Disk writes per hour of remote-written data (WAL, head chunks, block, checkpoint)",
        "wf.rw_write_mib_per_data_h",
        "prom.rw_write_mib_per_data_h",
        "Prometheus",
        "MiB",
        1,
    ),
    (
        "WAL replay: restart to ready after SIGKILL with 2 h of data in the WAL",
        "wf.replay_s",
        "prom.replay_s",
        "Prometheus",
        "s",
        2,
    ),
    (
        "WAL replay: series at the crash",
        "wf.replay_series",
        "prom.replay_series",
        "Prometheus",
        "series",
        0,
    ),
    (
        "WAL replay: WAL size at the crash",
        "wf.replay_wal_mib",
        "prom.replay_wal_mib",
        "Prometheus",
        "MiB",
        1,
    ),
    (
        "WAL replay: RSS, peak while replaying (VmHWM)",
        "wf.replay_hwm_mib",
        "prom.replay_hwm_mib",
        "Prometheus",
        "MiB",
        1,
    ),
    (
        "WAL replay: RSS 2 s after ready",
        "wf.replay_rss_after_mib",
        "prom.replay_rss_after_mib",
        "Prometheus",
        "MiB",
        1,
    ),
    (
        "WAL replay: samples found through the query API after the restart",
        "wf.replay.rw_samples_found",
        "prom.replay.rw_samples_found",
        "Prometheus",
        "samples",
        0,
    ),
    (
        "Disk writes per hour of steady scraping at the profile's rate",
        "wf.scrape_write_mib_per_h",
        "prom.scrape_write_mib_per_h",
        "Prometheus",
        "MiB",
        1,
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
        "Notification latency after group_wait (1 s), median",
        "wf.notify_latency_median_ms",
        "am.notify_latency_median_ms",
        "Alertmanager",
        "ms",
        1,
    ),
    (
        "Notification latency after group_wait (1 s), p90",
        "wf.notify_latency_p90_ms",
        "am.notify_latency_p90_ms",
        "Alertmanager",
        "ms",
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
        "Idle RSS: the embedded default (self and host scrapes, 14 rules, built-in Alertmanager) vs the 3 processes",
        "wf.idle_default_rss_mib",
        "stack.idle_rss_mib",
        "3 processes",
        "MiB",
        1,
    ),
    (
        "Idle CPU per minute: the embedded default vs the 3 processes",
        "wf.idle_default_cpu_s_per_min",
        "stack.idle_cpu_s_per_min",
        "3 processes",
        "CPU s",
        2,
    ),
    (
        "Host metrics: CPU per scrape of /metrics/host vs node_exporter with the same 13 collectors",
        "wf.host_scrape_cpu_ms",
        "ne.host_scrape_cpu_ms",
        "node_exporter",
        "CPU ms",
        2,
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
        if let (Some(k), Some(v)) = (it.next(), it.next())
            && let Ok(v) = v.parse::<f64>()
        {
            values.entry(k).or_default().push(v);
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
        if w.is_none() && p.is_none() {
            // A phase that did not run (`--only`).
            continue;
        }
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
    // A server that lost remote-written samples must not win the ingest rows: say so loudly.
    let (sent, _) = get("meta.rw_samples");
    if let Some(sent) = sent {
        let found = |k: &str| get(k).0.map_or("n/a".to_string(), |v| format!("{v:.0}"));
        let verdict = |k: &str| match get(k).0 {
            Some(v) if v == sent => "all",
            Some(_) => "**NOT ALL — its remote-write figures do not count**",
            None => "n/a",
        };
        println!(
            "\nRemote write: {} series, {sent:.0} samples sent to each; found through the query API: Watchfire {} ({}), Prometheus {} ({}).",
            get("meta.rw_series").0.map_or("?".to_string(), |v| format!("{v:.0}")),
            found("wf.rw_samples_found"),
            verdict("wf.rw_samples_found"),
            found("prom.rw_samples_found"),
            verdict("prom.rw_samples_found")
        );
        for (k, name) in [("wf", "Watchfire"), ("prom", "Prometheus")] {
            if get(&format!("{k}.rw_block_after_restart")).0 == Some(1.0) {
                let hwm = get(&format!("{k}.rw_hwm_after_restart_mib")).0.unwrap_or(f64::NAN);
                println!(
                    "{name} had not cut its block when the data was in; it was restarted on the same data and cut it at start-up (peak RSS of that process, WAL replay and block write: {hwm:.1} MiB; not in the peak row)."
                );
            }
        }
    }
    let (same, _) = get("cmp.queries_identical");
    let (diff, _) = get("cmp.queries_differing");
    if let (Some(s), Some(d)) = (same, diff) {
        println!("\nQuery results: {s:.0} queries agree within tolerance, {d:.0} differ (see the comparison above).");
    }
    Ok(())
}
