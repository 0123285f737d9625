//! Alert intake: POST /api/v2/alerts as Prometheus' notifier does (batches of JSON alerts),
//! measuring alerts per second, the server's CPU per thousand alerts (from /proc/<pid>/stat) and
//! its memory afterwards (from /proc/<pid>/status).

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::query::median;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Base URL, e.g. http://127.0.0.1:9093
    #[arg(long)]
    url: String,
    /// The server's pid, for CPU and memory.
    #[arg(long)]
    pid: u32,
    /// Label prefix for the results lines (wf or am).
    #[arg(long)]
    key: String,
    #[arg(long, default_value_t = 10_000)]
    alerts: usize,
    /// Distinct alertnames; the route groups by alertname.
    #[arg(long, default_value_t = 100)]
    groups: usize,
    /// Alerts per POST (Prometheus' notifier sends up to 64 per request by default).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Concurrent requests.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Rounds: the first posts new alerts, later rounds re-post (refresh) the same alerts, as a
    /// rule evaluation does every interval.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Append `key value` lines here.
    #[arg(long)]
    results: std::path::PathBuf,
}

pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("process {pid} is gone"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').context("malformed stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    // USER_HZ is 100 on every Linux architecture this runs on (getconf CLK_TCK).
    Ok(ticks / 100.0)
}

pub fn status_kb(pid: u32, field: &str) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    for line in status.lines() {
        if let Some(v) = line.strip_prefix(field) {
            let v = v.trim_start_matches(':').split_whitespace().next().unwrap_or("0");
            return Ok(v.parse()?);
        }
    }
    bail!("{field} not in /proc/{pid}/status")
}

fn alert(i: usize, groups: usize, now: &str, ends: &str) -> Value {
    json!({
        "labels": {
            "alertname": format!("HarnessAlert{:03}", i % groups),
            "instance": format!("host-{:05}.example:9100", i),
            "job": "node",
            "severity": if i.is_multiple_of(3) { "critical" } else { "warning" },
        },
        "annotations": {
            "summary": format!("Synthetic alert {i} from the comparison harness"),
            "description": "Disk will fill within 4 hours at the current write rate.",
        },
        "startsAt": now,
        "endsAt": ends,
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up",
    })
}

pub fn rfc3339(t: SystemTime) -> String {
    let s = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let (days, secs) = (s.div_euclid(86_400), s.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

pub fn run(args: Args) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run_async(args))
}

async fn run_async(args: Args) -> Result<()> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let url = format!("{}/api/v2/alerts", args.url);
    let now = SystemTime::now();
    let (starts, ends) = (rfc3339(now), rfc3339(now + Duration::from_secs(3600)));
    let batches: Vec<String> = (0..args.alerts)
        .collect::<Vec<_>>()
        .chunks(args.batch)
        .map(|c| Value::Array(c.iter().map(|i| alert(*i, args.groups, &starts, &ends)).collect()).to_string())
        .collect();
    let mut rates = Vec::new();
    let mut cpu_per_k = Vec::new();
    let mut first_round_rss = 0.0;
    for round in 0..args.rounds {
        let cpu0 = cpu_seconds(args.pid)?;
        let t0 = Instant::now();
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(args.concurrency));
        let mut tasks = Vec::new();
        for b in &batches {
            let permit = sem.clone().acquire_owned().await?;
            let (client, url, body) = (client.clone(), url.clone(), b.clone());
            tasks.push(tokio::spawn(async move {
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                drop(permit);
                match r {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(anyhow::anyhow!("POST {url}: {}", r.status())),
                    Err(e) => Err(anyhow::anyhow!("POST {url}: {e}")),
                }
            }));
        }
        for t in tasks {
            t.await??;
        }
        let secs = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds(args.pid)? - cpu0;
        rates.push(args.alerts as f64 / secs);
        cpu_per_k.push(cpu / args.alerts as f64 * 1000.0);
        eprintln!(
            "  round {}: {} alerts in {secs:.2}s ({:.0}/s), server CPU {cpu:.2}s",
            round + 1,
            args.alerts,
            args.alerts as f64 / secs
        );
        if round == 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            first_round_rss = status_kb(args.pid, "VmRSS")?;
        }
    }
    // Let the dispatcher settle, then check everything arrived.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got: Value = client
        .get(&url)
        .query(&[("active", "true"), ("silenced", "false"), ("inhibited", "false")])
        .send()
        .await?
        .json()
        .await?;
    let count = got.as_array().map(|a| a.len()).unwrap_or(0);
    let groups: Value = client
        .get(format!("{}/api/v2/alerts/groups", args.url))
        .send()
        .await?
        .json()
        .await?;
    let ngroups = groups.as_array().map(|a| a.len()).unwrap_or(0);
    let rss = status_kb(args.pid, "VmRSS")?;
    let hwm = status_kb(args.pid, "VmHWM")?;
    eprintln!(
        "  server holds {count} alerts in {ngroups} groups; RSS {:.1} MiB (peak {:.1} MiB)",
        rss / 1024.0,
        hwm / 1024.0
    );
    let k = &args.key;
    let lines = format!(
        "{k}.alerts_per_s {}\n{k}.cpu_s_per_1k_alerts {}\n{k}.alerts_rss_mib {}\n{k}.alerts_rss_after_first_round_mib {}\n{k}.alerts_hwm_mib {}\n{k}.alerts_held {count}\n{k}.alert_groups {ngroups}\n",
        median(&mut rates),
        median(&mut cpu_per_k),
        rss / 1024.0,
        first_round_rss / 1024.0,
        hwm / 1024.0
    );
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.results)?
        .write_all(lines.as_bytes())?;
    if count != args.alerts {
        eprintln!("  WARNING: expected {} alerts, the server lists {count}", args.alerts);
    }
    Ok(())
}
