//! The query set, its latencies, and the comparison of two servers' results.
//!
//! Both servers scraped the same deterministic generator (restarted for each), so their data
//! differ only by when each scrape happened. Queries are therefore evaluated at the same offset
//! from each run's start, and values are compared with a relative tolerance.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Base URL, e.g. http://127.0.0.1:9090
    #[arg(long)]
    url: String,
    /// Unix time (seconds) at which instant queries are evaluated; range queries end there.
    #[arg(long)]
    time: f64,
    /// Scrape interval in seconds; range windows are multiples of it.
    #[arg(long)]
    interval: f64,
    /// Seconds of data before --time available to range queries.
    #[arg(long)]
    span: f64,
    /// Timed repetitions per query (after one untimed warm-up).
    #[arg(long, default_value_t = 5)]
    reps: usize,
    #[arg(long)]
    out: std::path::PathBuf,
}

/// (name, expression, kind, note). `$R` is a range window, `$S` the subquery range, `$I` the
/// interval.
const QUERIES: &[(&str, &str, &str, &str)] = &[
    ("rate", "rate(node_network_receive_bytes_total[$R])", "instant", ""),
    (
        "sum by rate",
        "sum by (instance, mode) (rate(node_cpu_seconds_total[$R]))",
        "instant",
        "",
    ),
    (
        "topk",
        "topk(5, rate(node_network_transmit_bytes_total[$R]))",
        "instant",
        "ties may order differently",
    ),
    (
        "histogram_quantile",
        "histogram_quantile(0.9, sum by (le, handler) (rate(harness_http_request_duration_seconds_bucket[$R])))",
        "instant",
        "",
    ),
    (
        "avg_over_time",
        "avg_over_time(node_load1[$R])",
        "instant",
        "3.x ranges are left-open, 2.x closed",
    ),
    (
        "max_over_time",
        "max_over_time(node_memory_MemAvailable_bytes[$R])",
        "instant",
        "3.x ranges are left-open, 2.x closed",
    ),
    (
        "predict_linear",
        "predict_linear(node_memory_MemAvailable_bytes[$R], 3600)",
        "instant",
        "",
    ),
    (
        "subquery",
        "max_over_time(rate(node_cpu_seconds_total{mode=\"user\"}[$R])[$S:$I])",
        "instant",
        "3.x ranges are left-open, 2.x closed; subquery steps are aligned to absolute time, so scrape offsets matter",
    ),
    (
        "regex matcher",
        "count by (instance) ({__name__=~\"node_(cpu|memory|network)_.+\"})",
        "instant",
        "",
    ),
    (
        "negative regex",
        "sum by (instance) (node_memory_Active_bytes{instance!~\"127.0.0.1:1910[0-4]\"})",
        "instant",
        "",
    ),
    (
        "join group_left",
        "node_memory_MemAvailable_bytes * on (instance) group_left (nodename) node_uname_info",
        "instant",
        "",
    ),
    (
        "and on",
        "rate(node_cpu_seconds_total{mode=\"idle\"}[$R]) and on (instance) node_load1 > 0",
        "instant",
        "",
    ),
    ("count all series", "count({__name__=~\".+\"})", "instant", ""),
    ("range: sum rate", "sum(rate(node_cpu_seconds_total[$R]))", "range", ""),
    (
        "range: histogram_quantile",
        "histogram_quantile(0.99, sum by (le) (rate(harness_http_request_duration_seconds_bucket[$R])))",
        "range",
        "",
    ),
];

fn dur(secs: f64) -> String {
    format!("{}s", secs.round().max(1.0) as u64)
}

pub fn run(args: Args) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(run_async(args))
}

async fn run_async(args: Args) -> Result<()> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let range = dur(args.interval * 6.0);
    let sub = dur((args.interval * 12.0).min(args.span / 2.0).max(args.interval * 2.0));
    let step = dur(args.interval);
    let mut out = Vec::new();
    for (name, expr, kind, note) in QUERIES {
        let q = expr.replace("$R", &range).replace("$S", &sub).replace("$I", &step);
        let (path, params): (&str, Vec<(&str, String)>) = if *kind == "range" {
            let start = args.time - args.span + args.interval * 7.0;
            (
                "/api/v1/query_range",
                vec![
                    ("query", q.clone()),
                    ("start", format!("{start:.3}")),
                    ("end", format!("{:.3}", args.time)),
                    ("step", step.clone()),
                ],
            )
        } else {
            (
                "/api/v1/query",
                vec![("query", q.clone()), ("time", format!("{:.3}", args.time))],
            )
        };
        let url = format!("{}{}", args.url, path);
        let mut latencies = Vec::new();
        let mut body = Value::Null;
        let mut error = None;
        for rep in 0..=args.reps {
            let t0 = Instant::now();
            let resp = client.post(&url).form(&params).send().await;
            let resp = match resp {
                Ok(r) => r.text().await.map_err(anyhow::Error::from),
                Err(e) => Err(e.into()),
            };
            let elapsed = t0.elapsed().as_secs_f64() * 1000.0;
            match resp.and_then(|t| serde_json::from_str::<Value>(&t).context("response is not JSON")) {
                Ok(v) => body = v,
                Err(e) => {
                    error = Some(format!("{e:#}"));
                    break;
                }
            }
            if rep > 0 {
                latencies.push(elapsed);
            }
        }
        let median = median(&mut latencies.clone());
        eprintln!(
            "  {name:28} {median:9.2} ms  {}",
            body.get("status").and_then(Value::as_str).unwrap_or("error")
        );
        out.push(json!({
            "name": name, "expr": q, "kind": kind, "note": note,
            "latencies_ms": latencies, "median_ms": median,
            "error": error, "response": body,
            "start": args.time - args.span + args.interval * 7.0, "step": args.interval,
        }));
    }
    std::fs::write(
        &args.out,
        serde_json::to_vec_pretty(&json!({ "url": args.url, "queries": out }))?,
    )?;
    Ok(())
}

pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// `query` output of Watchfire.
    a: std::path::PathBuf,
    /// `query` output of the peer (Prometheus).
    b: std::path::PathBuf,
    /// Relative tolerance for values.
    #[arg(long, default_value_t = 0.01)]
    tolerance: f64,
    /// Print at most this many differences per query.
    #[arg(long, default_value_t = 5)]
    examples: usize,
    /// Append `key value` lines (summary counts and per-query medians) to this file.
    #[arg(long)]
    results: Option<std::path::PathBuf>,
}

/// Flattens a response into label-set (or label-set@step-index) -> value.
fn flatten(q: &Value) -> (String, BTreeMap<String, f64>) {
    let resp = &q["response"];
    let status = resp["status"].as_str().unwrap_or("error").to_string();
    let status = if status == "success" {
        status
    } else {
        format!(
            "{status}: {}",
            resp["error"].as_str().or(q["error"].as_str()).unwrap_or("")
        )
    };
    let mut m = BTreeMap::new();
    let start = q["start"].as_f64().unwrap_or(0.0);
    let step = q["step"].as_f64().unwrap_or(1.0);
    let data = &resp["data"];
    let key = |metric: &Value| -> String {
        let mut labels: Vec<(String, String)> = metric
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        labels.sort();
        let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        format!("{{{}}}", inner.join(","))
    };
    let num = |v: &Value| -> f64 {
        v.get(1)
            .and_then(Value::as_str)
            .and_then(super_parse)
            .unwrap_or(f64::NAN)
    };
    match data["resultType"].as_str() {
        Some("vector") => {
            for s in data["result"].as_array().into_iter().flatten() {
                m.insert(key(&s["metric"]), num(&s["value"]));
            }
        }
        Some("matrix") => {
            for s in data["result"].as_array().into_iter().flatten() {
                let k = key(&s["metric"]);
                for p in s["values"].as_array().into_iter().flatten() {
                    let t = p.get(0).and_then(Value::as_f64).unwrap_or(0.0);
                    let idx = ((t - start) / step).round() as i64;
                    m.insert(format!("{k}@{idx}"), num(p));
                }
            }
        }
        Some("scalar") => {
            m.insert("scalar".into(), num(&data["result"]));
        }
        _ => {}
    }
    (status, m)
}

fn super_parse(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    (a - b).abs() <= tol * a.abs().max(b.abs()) || (a - b).abs() < 1e-9
}

pub fn compare(args: CompareArgs) -> Result<()> {
    let read = |p: &std::path::Path| -> Result<Value> {
        serde_json::from_slice(&std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)
            .context("parsing query output")
    };
    let (a, b) = (read(&args.a)?, read(&args.b)?);
    let empty = vec![];
    let qa = a["queries"].as_array().unwrap_or(&empty);
    let qb = b["queries"].as_array().unwrap_or(&empty);
    let mut results = String::new();
    let (mut total_diff, mut identical) = (0usize, 0usize);
    let mut lat_a = Vec::new();
    let mut lat_b = Vec::new();
    println!(
        "| Query | Watchfire median ms | Prometheus median ms | ratio | series W / P | differences (rel. tol. {}) |",
        args.tolerance
    );
    println!("|---|---|---|---|---|---|");
    let mut details = String::new();
    for (x, y) in qa.iter().zip(qb) {
        let name = x["name"].as_str().unwrap_or("?");
        let (sa, ma) = flatten(x);
        let (sb, mb) = flatten(y);
        let mut diffs = Vec::new();
        if sa != sb {
            diffs.push(format!("status: Watchfire `{sa}`, Prometheus `{sb}`"));
        }
        let mut value_diffs = 0;
        let mut max_rel: f64 = 0.0;
        for (k, va) in &ma {
            match mb.get(k) {
                None => diffs.push(format!("only in Watchfire: `{k}` = {va}")),
                Some(vb) if !close(*va, *vb, args.tolerance) => {
                    value_diffs += 1;
                    let rel = (va - vb).abs() / va.abs().max(vb.abs());
                    max_rel = max_rel.max(rel);
                    diffs.push(format!(
                        "value: `{k}` Watchfire {va} vs Prometheus {vb} (rel. {rel:.3e})"
                    ));
                }
                _ => {}
            }
        }
        for (k, vb) in &mb {
            if !ma.contains_key(k) {
                diffs.push(format!("only in Prometheus: `{k}` = {vb}"));
            }
        }
        let (ma_ms, mb_ms) = (
            x["median_ms"].as_f64().unwrap_or(f64::NAN),
            y["median_ms"].as_f64().unwrap_or(f64::NAN),
        );
        if ma_ms.is_finite() && mb_ms.is_finite() {
            lat_a.push(ma_ms);
            lat_b.push(mb_ms);
        }
        let note = x["note"].as_str().unwrap_or("");
        let summary = if diffs.is_empty() {
            identical += 1;
            "none".to_string()
        } else {
            total_diff += 1;
            let mut s = format!("{} ({value_diffs} values, max rel. {max_rel:.1e})", diffs.len());
            if !note.is_empty() {
                s.push_str(&format!("; possibly known 2.x/3.x difference: {note}"));
            }
            s
        };
        println!(
            "| `{name}` | {ma_ms:.2} | {mb_ms:.2} | {:.2} | {} / {} | {summary} |",
            ma_ms / mb_ms,
            series_count(&ma),
            series_count(&mb)
        );
        if !diffs.is_empty() {
            details.push_str(&format!(
                "\n`{}`: {} differences\n",
                x["expr"].as_str().unwrap_or(""),
                diffs.len()
            ));
            for d in diffs.iter().take(args.examples) {
                details.push_str(&format!("  - {d}\n"));
            }
            if diffs.len() > args.examples {
                details.push_str(&format!("  - ... and {} more\n", diffs.len() - args.examples));
            }
        }
        let slug: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        results.push_str(&format!("wf.q.{slug}_ms {ma_ms}\nprom.q.{slug}_ms {mb_ms}\n"));
    }
    println!("\nDifferences (first {} per query):\n{details}", args.examples);
    let ga = geomean(&lat_a);
    let gb = geomean(&lat_b);
    results.push_str(&format!(
        "wf.query_geomean_ms {ga}\nprom.query_geomean_ms {gb}\ncmp.queries_identical {identical}\ncmp.queries_differing {total_diff}\n"
    ));
    if let Some(p) = args.results {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)?
            .write_all(results.as_bytes())?;
    }
    Ok(())
}

fn series_count(m: &BTreeMap<String, f64>) -> usize {
    let mut keys: Vec<&str> = m.keys().map(|k| k.split('@').next().unwrap_or(k)).collect();
    keys.dedup();
    keys.len()
}

fn geomean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    (v.iter().map(|x| x.max(1e-6).ln()).sum::<f64>() / v.len() as f64).exp()
}
