//! Notification latency: how long after `group_wait` a new alert group's first notification
//! reaches a webhook.
//!
//! The harness runs the webhook receiver itself (`--listen`), and the server's configuration
//! routes `harness="latency"` alerts to it with `group_by: [alertname]` and a short
//! `group_wait`. Each alert gets a new alertname, so each starts its own aggregation group; the
//! alerts are pushed `--gap-ms` apart so the groups do not share a flush. Latency of one group =
//! (webhook request received − POST /api/v2/alerts sent) − group_wait: the server's intake,
//! dispatch, timer slack, notification pipeline and HTTP delivery.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

use crate::query::median;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Base URL of the Alertmanager API, e.g. http://127.0.0.1:9093
    #[arg(long)]
    url: String,
    /// Address the webhook receiver listens on (the configuration's webhook URL is
    /// http://<listen>/hook).
    #[arg(long)]
    listen: String,
    /// Groups (alerts with distinct alertnames) to measure.
    #[arg(long, default_value_t = 20)]
    groups: usize,
    /// The route's group_wait, in milliseconds (subtracted from each measurement).
    #[arg(long, default_value_t = 1000)]
    group_wait_ms: u64,
    /// Milliseconds between two pushes.
    #[arg(long, default_value_t = 200)]
    gap_ms: u64,
    /// Label prefix for the results lines (wf or am).
    #[arg(long)]
    key: String,
    /// Append `key value` lines here.
    #[arg(long)]
    results: std::path::PathBuf,
}

type Received = Arc<Mutex<HashMap<String, Instant>>>;

async fn hook(State(got): State<Received>, body: String) -> &'static str {
    let at = Instant::now();
    if let Ok(v) = serde_json::from_str::<Value>(&body) {
        let mut got = got.lock().expect("no panics while holding the receipts lock");
        for a in v["alerts"].as_array().into_iter().flatten() {
            if let Some(name) = a["labels"]["alertname"].as_str() {
                got.entry(name.to_string()).or_insert(at);
            }
        }
    }
    "ok"
}

fn rfc3339_ms(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let s = crate::alerts::rfc3339(t);
    // "...:SSZ" -> "...:SS.mmmZ"
    format!("{}.{:03}Z", s.trim_end_matches('Z'), d.subsec_millis())
}

/// Nearest-rank percentile of a sorted slice.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

pub fn run(args: Args) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run_async(args))
}

async fn run_async(args: Args) -> Result<()> {
    let got: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let app = Router::new().route("/hook", post(hook)).with_state(got.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let url = format!("{}/api/v2/alerts", args.url);
    // Alertnames unique to this run, so a server's earlier groups cannot answer for them.
    let run = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?.as_millis();
    let mut pushed: Vec<(String, Instant)> = Vec::new();
    for i in 0..args.groups {
        let name = format!("HarnessLatency{run}x{i:03}");
        let now = SystemTime::now();
        let body = json!([{
            "labels": { "alertname": name, "harness": "latency", "instance": "host-0001.example:9100", "severity": "warning" },
            "annotations": { "summary": "Notification latency probe from the comparison harness" },
            "startsAt": rfc3339_ms(now),
            "endsAt": rfc3339_ms(now + Duration::from_secs(3600)),
            "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up",
        }]);
        let t = Instant::now();
        let r = client
            .post(&url)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        if !r.status().is_success() {
            bail!("POST {url}: {}: {}", r.status(), r.text().await.unwrap_or_default());
        }
        pushed.push((name, t));
        tokio::time::sleep(Duration::from_millis(args.gap_ms)).await;
    }
    // Bounded wait for the deliveries: group_wait plus 15 s.
    let deadline = Instant::now() + Duration::from_millis(args.group_wait_ms) + Duration::from_secs(15);
    while Instant::now() < deadline {
        let n = {
            let got = got.lock().expect("no panics while holding the receipts lock");
            pushed.iter().filter(|(n, _)| got.contains_key(n)).count()
        };
        if n == pushed.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.abort();
    let got = got.lock().expect("no panics while holding the receipts lock").clone();
    let gw = args.group_wait_ms as f64;
    let mut lat: Vec<f64> = pushed
        .iter()
        .filter_map(|(n, t)| got.get(n).map(|r| r.duration_since(*t).as_secs_f64() * 1000.0 - gw))
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let delivered = lat.len();
    let (med, p90) = (median(&mut lat.clone()), percentile(&lat, 90.0));
    eprintln!(
        "  {delivered} of {} groups notified; latency after group_wait ({} ms): median {med:.1} ms, p90 {p90:.1} ms, min {:.1}, max {:.1}",
        pushed.len(),
        args.group_wait_ms,
        lat.first().copied().unwrap_or(f64::NAN),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    let k = &args.key;
    let lines = format!(
        "{k}.notify_latency_median_ms {med}\n{k}.notify_latency_p90_ms {p90}\n{k}.notify_groups_pushed {}\n{k}.notify_groups_delivered {delivered}\n",
        pushed.len()
    );
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.results)?
        .write_all(lines.as_bytes())?;
    if delivered == 0 {
        bail!("no notification reached the webhook within group_wait + 15 s");
    }
    Ok(())
}
