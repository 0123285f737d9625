//! Remote-write ingest: a generator of remote-write 1.0 requests, the sender that replays them
//! against one server, and the check, through the query API, that the server kept every sample.
//!
//! * `rw-gen` evolves `--instances` copies of the node_exporter template (the scrape
//!   generator's value model: counters, random-walk gauges, consistent histograms, a little
//!   churn), one sample per series every `--step` seconds, starting on a block boundary hours in
//!   the past, and writes the snappy-compressed `WriteRequest` bodies to a file once, so both
//!   servers receive the same bytes and the client's encoding cost is not part of the measurement.
//!   Series are split into `--shards` shards (one per concurrent sender, as Prometheus' queue
//!   manager shards by series); each request carries up to `--batch` samples of one shard, one
//!   `TimeSeries` per sample with its full label set, as Prometheus 2.x's sender builds them.
//!   The data is cut into part `a` (the first `--part-a-steps` steps) and part `b` (the rest).
//! * `rw-send` replays one part against `/api/v1/write` with one task per shard and measures
//!   samples per second and the server's CPU (`/proc/<pid>/stat`). Shards are kept within
//!   `--max-lead` steps of each other, far inside the 1 h out-of-bounds window of both servers.
//! * `rw-verify` sums `count_over_time` over 1 h windows through `/api/v1/query` and compares it
//!   with the samples sent, so a server that drops data cannot win.
//!
//! The protobuf messages (prometheus/prompb types.proto, remote.proto) are encoded by hand: four
//! messages, varints and length-delimited fields.

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::alerts::cpu_seconds;
use crate::generator::{Target, parse_template, split_labels};

const HOUR_MS: i64 = 3600 * 1000;

/// The data `rw-gen` and `rw-fill` generate.
#[derive(clap::Args, Debug)]
pub struct DataArgs {
    /// A captured exposition page used as the template (as for `serve`).
    #[arg(long)]
    template: std::path::PathBuf,
    /// Instances: copies of the template, each with its own seed and `instance` label.
    #[arg(long, default_value_t = 10)]
    instances: u16,
    /// Samples per series (one per step).
    #[arg(long, default_value_t = 780)]
    steps: u32,
    /// Seconds between samples.
    #[arg(long, default_value_t = 15)]
    step: u32,
    /// Samples per request (Prometheus' `max_samples_per_send` is 2000 since 2.45, 500 before).
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    /// Shards, i.e. concurrent senders.
    #[arg(long, default_value_t = 4)]
    shards: u16,
    /// Probability per step that a churn slot starts a new series.
    #[arg(long, default_value_t = 0.001)]
    churn_probability: f64,
}

#[derive(clap::Args, Debug)]
pub struct GenArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Steps in part `a`; the rest are part `b`.
    #[arg(long, default_value_t = 720)]
    part_a_steps: u32,
    /// Where the requests go; `<out>.json` gets the description.
    #[arg(long)]
    out: std::path::PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct SendArgs {
    /// The file `rw-gen` wrote.
    #[arg(long)]
    data: std::path::PathBuf,
    /// Base URL, e.g. http://127.0.0.1:9090
    #[arg(long)]
    url: String,
    /// The server's pid, for CPU.
    #[arg(long)]
    pid: u32,
    /// Which part to send: a or b.
    #[arg(long)]
    part: char,
    /// How far (in steps) one shard may run ahead of the slowest.
    #[arg(long, default_value_t = 40)]
    max_lead: u32,
    /// Label prefix for the results lines (wf or prom).
    #[arg(long)]
    key: String,
    /// Append `key value` lines here.
    #[arg(long)]
    results: std::path::PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The file `rw-gen` wrote (its `.json` description is read).
    #[arg(long)]
    data: std::path::PathBuf,
    #[arg(long)]
    url: String,
    #[arg(long)]
    key: String,
    #[arg(long)]
    results: std::path::PathBuf,
}

// --- protobuf encoding (proto3 wire format) ------------------------------------------------

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// A length-delimited field: tag, length, bytes.
fn put_bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    put_varint(out, u64::from(field << 3 | 2));
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// `Label { string name = 1; string value = 2; }` as field 1 of `TimeSeries`, for each label
/// (sorted by name, as the protocol requires).
fn encode_labels(labels: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut label = Vec::new();
    for (n, v) in labels {
        label.clear();
        put_bytes(&mut label, 1, n.as_bytes());
        put_bytes(&mut label, 2, v.as_bytes());
        put_bytes(&mut out, 1, &label);
    }
    out
}

/// `WriteRequest.timeseries` (field 1) holding one `TimeSeries` with the pre-encoded labels and
/// one `Sample { double value = 1; int64 timestamp = 2; }` (field 2).
fn put_timeseries(out: &mut Vec<u8>, labels: &[u8], t: i64, v: f64) {
    let sample_len = 1 + 8 + 1 + varint_len(t as u64);
    let ts_len = labels.len() + 1 + varint_len(sample_len as u64) + sample_len;
    put_varint(out, 1 << 3 | 2);
    put_varint(out, ts_len as u64);
    out.extend_from_slice(labels);
    put_varint(out, 2 << 3 | 2);
    put_varint(out, sample_len as u64);
    out.push(1 << 3 | 1);
    out.extend_from_slice(&v.to_le_bytes());
    out.push(2 << 3);
    put_varint(out, t as u64);
}

/// `name{a="x",b="y"}` from the exposition text into sorted pairs, escapes undone.
fn parse_labels(name: &str, text: &str) -> Vec<(String, String)> {
    let mut out = vec![("__name__".to_string(), name.to_string())];
    for part in split_labels(text) {
        let Some((k, v)) = part.split_once('=') else { continue };
        let v = v.trim().trim_matches('"');
        let mut value = String::with_capacity(v.len());
        let mut chars = v.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(o) => value.push(o),
                    None => {}
                }
            } else {
                value.push(c);
            }
        }
        out.push((k.trim().to_string(), value));
    }
    out
}

// --- rw-gen --------------------------------------------------------------------------------

/// One request in the data file: part (b'a'/b'b'), shard, the first step it holds, samples,
/// and the compressed body.
struct Record<'a> {
    part: u8,
    shard: u16,
    first_step: u32,
    samples: u32,
    body: &'a [u8],
}

fn write_record(w: &mut impl Write, r: &Record<'_>) -> std::io::Result<()> {
    w.write_all(&[r.part])?;
    w.write_all(&r.shard.to_le_bytes())?;
    w.write_all(&r.first_step.to_le_bytes())?;
    w.write_all(&r.samples.to_le_bytes())?;
    w.write_all(&(r.body.len() as u32).to_le_bytes())?;
    w.write_all(r.body)
}

fn read_records(data: &[u8]) -> Result<Vec<Record<'_>>> {
    let mut out = Vec::new();
    let mut i = 0;
    let u32_at = |i: usize| u32::from_le_bytes(data[i..i + 4].try_into().expect("4 bytes"));
    while i < data.len() {
        if i + 15 > data.len() {
            bail!("truncated record header at byte {i}");
        }
        let len = u32_at(i + 11) as usize;
        if i + 15 + len > data.len() {
            bail!("truncated record at byte {i}");
        }
        out.push(Record {
            part: data[i],
            shard: u16::from_le_bytes([data[i + 1], data[i + 2]]),
            first_step: u32_at(i + 3),
            samples: u32_at(i + 7),
            body: &data[i + 15..i + 15 + len],
        });
        i += 15 + len;
    }
    Ok(out)
}

struct Batch {
    buf: Vec<u8>,
    samples: u32,
    first_step: u32,
}

/// Generates the requests of `p` in order, handing each to `emit`, and returns the data's
/// description (written beside the data as `<data>.json`). Within a shard, requests come in
/// time order for every series.
fn generate(p: &DataArgs, part_a_steps: u32, emit: &mut dyn FnMut(Record<'_>) -> Result<()>) -> Result<Value> {
    if part_a_steps > p.steps {
        bail!("--part-a-steps must not exceed --steps");
    }
    let text = std::fs::read_to_string(&p.template).with_context(|| format!("reading {}", p.template.display()))?;
    let template = parse_template(&text)?;
    let step_ms = i64::from(p.step) * 1000;
    let span_ms = i64::from(p.steps) * step_ms;
    let now_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?.as_millis() as i64;
    // Start on a 2 h boundary (blocks are aligned to multiples of the block range), early enough
    // that the last sample is in the past: the first block cut from the head is a full 2 h one.
    let start_ms = (now_ms - span_ms - 60_000).div_euclid(2 * HOUR_MS) * 2 * HOUR_MS;
    let mut targets: Vec<Target> = (0..p.instances)
        .map(|i| Target::with(&template, i, f64::from(p.step), 20, p.churn_probability))
        .collect();
    let base: Vec<(String, String)> = vec![("job".into(), "node".into())];
    // (label text, encoded labels) per instance and position; re-encoded when the text changes.
    let mut cache: Vec<Vec<(String, Vec<u8>)>> = vec![Vec::new(); targets.len()];
    let shards = p.shards.max(1) as usize;
    let mut batches: Vec<Batch> = (0..shards)
        .map(|_| Batch {
            buf: Vec::with_capacity(p.batch * 200),
            samples: 0,
            first_step: 0,
        })
        .collect();
    let mut enc = snap::raw::Encoder::new();
    let (mut requests, mut bytes, mut raw_bytes) = (0u64, 0u64, 0u64);
    let mut samples = [0u64; 2];
    let mut flush = |b: &mut Batch, shard: usize, part: u8| -> Result<()> {
        if b.samples == 0 {
            return Ok(());
        }
        let body = enc.compress_vec(&b.buf)?;
        emit(Record {
            part,
            shard: shard as u16,
            first_step: b.first_step,
            samples: b.samples,
            body: &body,
        })?;
        requests += 1;
        bytes += body.len() as u64;
        raw_bytes += b.buf.len() as u64;
        b.buf.clear();
        b.samples = 0;
        Ok(())
    };
    let mut series_max = 0usize;
    let mut names = std::collections::BTreeSet::new();
    let mut series_total = 0u64;
    for step in 0..p.steps {
        let part = if step < part_a_steps { b'a' } else { b'b' };
        if step == part_a_steps {
            for (s, b) in batches.iter_mut().enumerate() {
                flush(b, s, b'a')?;
            }
        }
        let t = start_ms + i64::from(step) * step_ms;
        let mut global = 0usize;
        for (i, target) in targets.iter_mut().enumerate() {
            if step > 0 {
                target.advance();
            }
            let instance = format!("host-{i:04}.example:9100");
            let cache = &mut cache[i];
            let mut err = None;
            target.for_each_series(&template, |pos, name, text, value| {
                if cache.len() <= pos {
                    cache.resize(pos + 1, (String::from("\u{0}"), Vec::new()));
                }
                if cache[pos].0 != text {
                    if step == 0 {
                        names.insert(name.to_string());
                    }
                    series_total += 1;
                    let mut labels = parse_labels(name, text);
                    labels.extend(base.iter().cloned());
                    labels.push(("instance".into(), instance.clone()));
                    labels.sort();
                    cache[pos] = (text.to_string(), encode_labels(&labels));
                }
                let shard = (global + pos) % shards;
                let b = &mut batches[shard];
                if b.samples == 0 {
                    b.first_step = step;
                }
                put_timeseries(&mut b.buf, &cache[pos].1, t, value);
                b.samples += 1;
                if b.samples as usize >= p.batch
                    && let Err(e) = flush(b, shard, part)
                {
                    err.get_or_insert(e);
                }
            });
            if let Some(e) = err {
                return Err(e);
            }
            global += cache.len();
        }
        series_max = series_max.max(global);
        let n = global as u64;
        samples[usize::from(part == b'b')] += n;
    }
    let last_part = if part_a_steps == p.steps { b'a' } else { b'b' };
    for (s, b) in batches.iter_mut().enumerate() {
        flush(b, s, last_part)?;
    }
    eprintln!(
        "  {} series x {} steps ({}s apart) from {}: {} samples in {requests} requests, {:.1} MiB snappy ({:.1} MiB raw, {:.1} bytes/sample on the wire)",
        series_max,
        p.steps,
        p.step,
        start_ms / 1000,
        samples[0] + samples[1],
        bytes as f64 / 1048576.0,
        raw_bytes as f64 / 1048576.0,
        bytes as f64 / (samples[0] + samples[1]).max(1) as f64
    );
    Ok(json!({
        "start_ms": start_ms,
        "step_ms": step_ms,
        "steps": p.steps,
        "part_a_steps": part_a_steps,
        "series_per_step": series_max,
        "series_total": series_total,
        "names": names,
        "samples_a": samples[0],
        "samples_b": samples[1],
        "samples": samples[0] + samples[1],
        "requests": requests,
        "shards": shards,
        "batch": p.batch,
        "body_bytes": bytes,
        "raw_bytes": raw_bytes,
    }))
}

pub fn gen_run(args: GenArgs) -> Result<()> {
    if args.part_a_steps >= args.data.steps {
        bail!("--part-a-steps must be below --steps");
    }
    let file = std::fs::File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let desc = generate(&args.data, args.part_a_steps, &mut |r| Ok(write_record(&mut w, &r)?))?;
    w.flush()?;
    drop(w);
    std::fs::write(desc_path(&args.out), serde_json::to_vec_pretty(&desc)?)?;
    Ok(())
}

fn desc_path(data: &std::path::Path) -> std::path::PathBuf {
    let mut p = data.as_os_str().to_owned();
    p.push(".json");
    p.into()
}

fn read_desc(data: &std::path::Path) -> Result<Value> {
    let p = desc_path(data);
    serde_json::from_slice(&std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?)
        .context("parsing the rw-gen description")
}

fn append_results(path: &std::path::Path, lines: &str) -> Result<()> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(lines.as_bytes())?;
    Ok(())
}

// --- rw-send -------------------------------------------------------------------------------

pub fn send_run(args: SendArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(send_async(args))
}

/// A request to send: its first step, its samples, and the (offset, length) of its body in the
/// data file.
type Request = (u32, u32, (usize, usize));

#[derive(Default)]
struct Outcome {
    accepted: u64,
    rejected: u64,
    retries: u64,
    first_error: Option<String>,
}

/// Posts one request body holding `samples` samples, retrying 5xx and transport errors up to
/// five times, and counts the outcome.
async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>, samples: u32, out: &mut Outcome) {
    let mut attempt = 0;
    loop {
        let r = client
            .post(url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("User-Agent", "watchfire-harness")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body.clone())
            .send()
            .await;
        let failure = match r {
            Ok(r) if r.status().is_success() => {
                out.accepted += u64::from(samples);
                return;
            }
            // 4xx: the server refuses these samples for good (Prometheus' sender drops them
            // too); 5xx and transport errors are retried.
            Ok(r) if r.status().is_client_error() => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                out.rejected += u64::from(samples);
                out.first_error.get_or_insert(format!("{status}: {}", text.trim()));
                return;
            }
            Ok(r) => format!("{}: {}", r.status(), r.text().await.unwrap_or_default().trim()),
            Err(e) => e.to_string(),
        };
        attempt += 1;
        if attempt > 5 {
            out.rejected += u64::from(samples);
            out.first_error.get_or_insert(failure);
            return;
        }
        out.retries += 1;
        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
    }
}

async fn send_async(args: SendArgs) -> Result<()> {
    let part = match args.part {
        'a' | 'b' => args.part as u8,
        p => bail!("--part must be a or b, not {p}"),
    };
    let data = std::fs::read(&args.data).with_context(|| format!("reading {}", args.data.display()))?;
    let desc = read_desc(&args.data)?;
    let shards = desc["shards"].as_u64().unwrap_or(1) as usize;
    let mut per_shard: Vec<Vec<Request>> = vec![Vec::new(); shards];
    let mut total = 0u64;
    let base = data.as_ptr() as usize;
    for r in read_records(&data)? {
        if r.part == part {
            let off = r.body.as_ptr() as usize - base;
            per_shard[usize::from(r.shard) % shards].push((r.first_step, r.samples, (off, r.body.len())));
            total += u64::from(r.samples);
        }
    }
    let data: Arc<Vec<u8>> = Arc::new(data);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(shards)
        .build()?;
    let url = format!("{}/api/v1/write", args.url);
    // Each shard's progress (the first step of the request it is on); u64::MAX when done.
    let progress: Arc<Vec<AtomicU64>> = Arc::new((0..shards).map(|_| AtomicU64::new(0)).collect());
    let cpu0 = cpu_seconds(args.pid)?;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (shard, records) in per_shard.into_iter().enumerate() {
        let (client, url, data, progress) = (client.clone(), url.clone(), data.clone(), progress.clone());
        let max_lead = u64::from(args.max_lead);
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            for (first_step, samples, (off, len)) in records {
                progress[shard].store(u64::from(first_step), Ordering::Release);
                // Bounded wait for the slowest shard (at most 60 s, then go on regardless).
                for _ in 0..60_000 {
                    let slowest = progress.iter().map(|p| p.load(Ordering::Acquire)).min().unwrap_or(0);
                    if u64::from(first_step) <= slowest.saturating_add(max_lead) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                post(&client, &url, data[off..off + len].to_vec(), samples, &mut out).await;
            }
            progress[shard].store(u64::MAX, Ordering::Release);
            out
        }));
    }
    let mut sum = Outcome::default();
    for t in tasks {
        let o = t.await?;
        sum.accepted += o.accepted;
        sum.rejected += o.rejected;
        sum.retries += o.retries;
        if sum.first_error.is_none() {
            sum.first_error = o.first_error;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(args.pid)? - cpu0;
    eprintln!(
        "  part {}: {} of {total} samples accepted in {secs:.2}s ({:.0} samples/s, {shards} senders), server CPU {cpu:.2}s ({:.2} s per million); {} rejected, {} retries",
        args.part,
        sum.accepted,
        sum.accepted as f64 / secs,
        cpu / sum.accepted.max(1) as f64 * 1e6,
        sum.rejected,
        sum.retries
    );
    if let Some(e) = &sum.first_error {
        eprintln!("  first error: {e}");
    }
    let k = &args.key;
    let p = args.part;
    append_results(
        &args.results,
        &format!(
            "{k}.rw_{p}_samples_sent {total}\n{k}.rw_{p}_samples_accepted {}\n{k}.rw_{p}_samples_rejected {}\n{k}.rw_{p}_retries {}\n{k}.rw_{p}_secs {secs}\n{k}.rw_{p}_samples_per_s {}\n{k}.rw_{p}_cpu_s_per_msample {}\n",
            sum.accepted,
            sum.rejected,
            sum.retries,
            sum.accepted as f64 / secs,
            cpu / sum.accepted.max(1) as f64 * 1e6
        ),
    )?;
    if sum.accepted == 0 {
        bail!("the server accepted none of the {total} samples");
    }
    Ok(())
}

// --- rw-fill -------------------------------------------------------------------------------

#[derive(clap::Args, Debug)]
pub struct FillArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The description goes to `<desc>.json` (for `rw-verify --data <desc>`).
    #[arg(long)]
    desc: std::path::PathBuf,
    /// Base URL, e.g. http://127.0.0.1:9090
    #[arg(long)]
    url: String,
    /// Label prefix for the results lines (wf or prom).
    #[arg(long)]
    key: String,
    /// Append `key value` lines here.
    #[arg(long)]
    results: std::path::PathBuf,
}

/// Generates the data as `rw-gen` does (every step in part a) and sends it as it is generated,
/// without a file: for data too large to hold (a million series over hours). The same
/// arguments give the same requests, so two servers filled one after the other get the same
/// bytes. Each shard's requests go out in order on their own connection; the generator waits
/// when a shard's queue is full, so shards stay within a few requests of each other.
pub fn fill_run(args: FillArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let shards = usize::from(args.data.shards.max(1));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(shards)
        .build()?;
    let url = format!("{}/api/v1/write", args.url);
    let mut queues = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..shards {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(Vec<u8>, u32)>(4);
        queues.push(tx);
        let (client, url) = (client.clone(), url.clone());
        tasks.push(rt.spawn(async move {
            let mut out = Outcome::default();
            while let Some((body, samples)) = rx.recv().await {
                post(&client, &url, body, samples, &mut out).await;
            }
            out
        }));
    }
    let t0 = Instant::now();
    let desc = generate(&args.data, args.data.steps, &mut |r| {
        queues[usize::from(r.shard) % shards]
            .blocking_send((r.body.to_vec(), r.samples))
            .map_err(|_| anyhow::anyhow!("a sender stopped"))
    })?;
    drop(queues);
    let mut sum = Outcome::default();
    for t in tasks {
        let o = rt.block_on(t)?;
        sum.accepted += o.accepted;
        sum.rejected += o.rejected;
        sum.retries += o.retries;
        if sum.first_error.is_none() {
            sum.first_error = o.first_error;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    std::fs::write(desc_path(&args.desc), serde_json::to_vec_pretty(&desc)?)?;
    eprintln!(
        "  filled: {} samples accepted in {secs:.1}s ({:.0} samples/s), {} rejected, {} retries",
        sum.accepted,
        sum.accepted as f64 / secs,
        sum.rejected,
        sum.retries
    );
    if let Some(e) = &sum.first_error {
        eprintln!("  first error: {e}");
    }
    let k = &args.key;
    append_results(
        &args.results,
        &format!(
            "{k}.fill_samples_accepted {}\n{k}.fill_samples_rejected {}\n{k}.fill_secs {secs}\n",
            sum.accepted, sum.rejected
        ),
    )?;
    if sum.rejected > 0 {
        bail!("the server rejected {} samples", sum.rejected);
    }
    Ok(())
}

// --- rw-verify -----------------------------------------------------------------------------

pub fn verify_run(args: VerifyArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(verify_async(args))
}

async fn verify_async(args: VerifyArgs) -> Result<()> {
    let desc = read_desc(&args.data)?;
    let start_ms = desc["start_ms"].as_i64().context("start_ms")?;
    let step_ms = desc["step_ms"].as_i64().context("step_ms")?;
    let steps = desc["steps"].as_i64().context("steps")?;
    let expected = desc["samples"].as_u64().context("samples")?;
    let names: Vec<&str> = desc["names"]
        .as_array()
        .context("names")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;
    // count_over_time drops the metric name, and `sum(count_over_time({job="node"}[1h]))` fails
    // on Prometheus 2.x ("vector cannot contain metrics with the same labelset") as soon as two
    // metrics share their other labels; so the sum is taken per name, 40 names per query.
    let queries: Vec<String> = names
        .chunks(40)
        .map(|c| {
            c.iter()
                .map(|n| format!("(sum(count_over_time({n}{{job=\"node\"}}[1h])) or vector(0))"))
                .collect::<Vec<_>>()
                .join(" + ")
        })
        .collect();
    // Windows of 1 h ending half a step off the sample grid, so no sample sits on a window
    // boundary (Prometheus 2.x ranges are closed, 3.x left-open; either counts each sample once).
    let end_ms = start_ms + steps * step_ms;
    let mut t = start_ms - step_ms / 2;
    let mut found = 0u64;
    let mut windows = 0;
    let t0 = Instant::now();
    for _ in 0..1000 {
        if t >= end_ms {
            break;
        }
        t += HOUR_MS;
        windows += 1;
        for q in &queries {
            let resp: Value = client
                .post(format!("{}/api/v1/query", args.url))
                .form(&[("query", q.clone()), ("time", format!("{:.3}", t as f64 / 1000.0))])
                .send()
                .await?
                .json()
                .await?;
            if resp["status"] != "success" {
                bail!("count_over_time query at {}: {resp}", t / 1000);
            }
            found += resp["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0) as u64;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let ok = found == expected;
    eprintln!(
        "  query API: {found} of {expected} samples found ({windows} one-hour windows x {} queries, {secs:.2}s){}",
        queries.len(),
        if ok { "" } else { " — MISMATCH" }
    );
    append_results(
        &args.results,
        &format!(
            "{k}.rw_samples_found {found}\n{k}.rw_samples_expected {expected}\n{k}.rw_verified {}\n{k}.rw_verify_query_s {secs}\n",
            u8::from(ok),
            k = args.key
        ),
    )?;
    Ok(())
}
