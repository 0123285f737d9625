//! Synthetic scrape targets modelled on a real node_exporter page.
//!
//! The template (a page captured from the real prometheus-node-exporter) gives the families,
//! label sets and starting values. Each target evolves its own copy, one step per `--interval`
//! since the generator started (so every scraper sees the same sequence whatever its scrape
//! offsets, and a restarted generator replays it exactly):
//! counters grow at varied per-series rates, gauges random-walk, histogram buckets stay
//! cumulative and consistent with `_count` and `_sum`, info-like and 0/1 series stay constant.
//! Counters and gauges keep the precision the page printed them with, as the exporter's
//! sources have it: whole numbers for byte and packet counts, hundredths for CPU seconds (the
//! kernel counts ticks), thousandths for disk times; values printed at a float's full
//! precision stay at full precision.
//! Two synthetic families are added to every target: a classic histogram
//! (`harness_http_request_duration_seconds`, for histogram_quantile) and a small churning family
//! (`harness_churn_info`, whose `generation` label changes now and then).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::rng::Rng;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A captured exposition page (text format 0.0.4) used as the template.
    #[arg(long)]
    template: std::path::PathBuf,
    /// Number of targets (ports).
    #[arg(long, default_value_t = 10)]
    targets: u16,
    /// First port; target i listens on 127.0.0.1:(base-port + i).
    #[arg(long, default_value_t = 19100)]
    base_port: u16,
    /// Seconds between value steps (use the scrape interval).
    #[arg(long, default_value_t = 10.0)]
    interval: f64,
    /// Slots of the churning family per target.
    #[arg(long, default_value_t = 20)]
    churn_slots: usize,
    /// Probability per step that a churn slot starts a new series.
    #[arg(long, default_value_t = 0.01)]
    churn_probability: f64,
    /// Stop by itself after this many seconds (a bound, in case the driver dies).
    #[arg(long, default_value_t = 3600.0)]
    max_runtime: f64,
    /// Print the number of series per target and exit.
    #[arg(long)]
    count_only: bool,
}

/// One sample line of the template.
#[derive(Debug, Clone)]
struct Line {
    name: String,
    /// The label text between the braces, as captured (empty when there are none).
    labels: String,
    value: f64,
    /// Fractional decimal digits of the value as the page printed it (0 for an integer),
    /// `None` when it shows the float's full precision (more than 12 digits).
    decimals: Option<u32>,
}

#[derive(Debug, Clone)]
enum Model {
    Constant,
    /// Monotonic counter: grows by rate*interval*U(0.5,1.5) per step.
    Counter {
        rate: f64,
        decimals: Option<u32>,
    },
    /// Random walk with step sigma `scale`, clamped at zero when it started non-negative.
    Gauge {
        scale: f64,
        non_negative: bool,
        decimals: Option<u32>,
    },
    /// Wall-clock-like: grows by exactly the interval.
    Clock,
    /// One line of a histogram group: bucket index, or sum, or count.
    Bucket {
        group: usize,
        index: usize,
    },
    HistSum {
        group: usize,
    },
    HistCount {
        group: usize,
    },
}

#[derive(Debug, Clone)]
struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<f64>,
    count: f64,
    sum: f64,
    /// Observations per second and log-normal parameters of an observation.
    rate: f64,
    mu: f64,
    sigma: f64,
}

impl Histogram {
    fn new(bounds: Vec<f64>, rng: &mut Rng) -> Self {
        let finite: Vec<f64> = bounds.iter().copied().filter(|b| b.is_finite() && *b > 0.0).collect();
        let median = if finite.is_empty() {
            1.0
        } else {
            finite[finite.len() / 2] * rng.range(0.3, 1.5)
        };
        let n = bounds.len();
        Histogram {
            bounds,
            counts: vec![0.0; n],
            count: 0.0,
            sum: 0.0,
            rate: 10f64.powf(rng.range(-0.5, 1.5)),
            mu: median.ln(),
            sigma: rng.range(0.5, 1.2),
        }
    }

    fn step(&mut self, interval: f64, rng: &mut Rng) {
        let n = (self.rate * interval * rng.range(0.5, 1.5)).round() as usize;
        for _ in 0..n.min(10_000) {
            let obs = (self.mu + self.sigma * rng.normal()).exp();
            self.count += 1.0;
            self.sum += obs;
            for (b, c) in self.bounds.iter().zip(self.counts.iter_mut()) {
                if obs <= *b {
                    *c += 1.0;
                }
            }
        }
    }
}

/// The parsed template shared by all targets.
#[derive(Debug)]
pub(crate) struct Template {
    /// Text of the page, split into (comment lines before a sample, sample line) entries.
    entries: Vec<(String, Line)>,
    types: HashMap<String, String>,
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// The fractional decimal digits `text` (a sample value as printed, maybe in exponent form)
/// shows: `1.5e+06` has none, `15681.73` two, `2.5e-05` six. `None` for more than 12, which is
/// a float printed at full precision rather than a count of some unit.
fn decimals(text: &str, value: f64) -> Option<u32> {
    if !value.is_finite() {
        return None;
    }
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().ok()?),
        None => (text, 0),
    };
    let frac = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i64);
    let d = (frac - exp).max(0);
    (d <= 12).then_some(d as u32)
}

/// `v` rounded to `decimals` fractional digits (as a printed value of that precision parses),
/// unchanged for `None`.
fn round_to(v: f64, decimals: Option<u32>) -> f64 {
    match decimals {
        Some(0) => v.round(),
        Some(d) => {
            let p = 10f64.powi(d as i32);
            (v * p).round() / p
        }
        None => v,
    }
}

pub(crate) fn parse_template(text: &str) -> Result<Template> {
    let mut entries = Vec::new();
    let mut types = HashMap::new();
    let mut comments = String::new();
    for raw in text.lines() {
        let line = raw.trim_end();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let mut it = rest.split_whitespace();
            if it.next() == Some("TYPE")
                && let (Some(n), Some(t)) = (it.next(), it.next())
            {
                types.insert(n.to_string(), t.to_string());
            }
            comments.push_str(line);
            comments.push('\n');
            continue;
        }
        let (name, labels, rest) = match line.find('{') {
            Some(open) => {
                let close = line.rfind('}').with_context(|| format!("unclosed labels: {line}"))?;
                (&line[..open], &line[open + 1..close], line[close + 1..].trim())
            }
            None => {
                let sp = line.find(' ').with_context(|| format!("no value: {line}"))?;
                (&line[..sp], "", line[sp..].trim())
            }
        };
        let value_text = rest.split_whitespace().next().unwrap_or("");
        let Some(value) = parse_value(value_text) else {
            bail!("bad value in template line: {line}")
        };
        let decimals = decimals(value_text, value);
        entries.push((
            std::mem::take(&mut comments),
            Line {
                name: name.to_string(),
                labels: labels.to_string(),
                value,
                decimals,
            },
        ));
    }
    if entries.is_empty() {
        bail!("the template has no samples");
    }
    Ok(Template { entries, types })
}

/// The family a sample name belongs to, and its type.
fn family<'a>(types: &'a HashMap<String, String>, name: &'a str) -> (&'a str, &'a str) {
    if let Some(t) = types.get(name) {
        return (name, t.as_str());
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && let Some(t) = types.get(base)
        {
            return (base, t.as_str());
        }
    }
    (name, "untyped")
}

fn without_le(labels: &str) -> (String, Option<f64>) {
    let mut le = None;
    let mut kept = Vec::new();
    for part in split_labels(labels) {
        if let Some(v) = part.strip_prefix("le=") {
            le = parse_value(v.trim_matches('"'));
        } else {
            kept.push(part);
        }
    }
    (kept.join(","), le)
}

/// Splits `a="x",b="y,z"` at the commas outside quotes.
pub(crate) fn split_labels(labels: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in labels.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                if i > start {
                    out.push(labels[start..i].trim());
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < labels.len() && !labels[start..].trim().is_empty() {
        out.push(labels[start..].trim());
    }
    out
}

/// One target's evolving copy of the template.
#[derive(Debug)]
pub(crate) struct Target {
    rng: Rng,
    lines: Vec<Line>,
    models: Vec<Model>,
    hists: Vec<Histogram>,
    /// The synthetic histogram: (handler, histogram).
    synth: Vec<(String, Histogram)>,
    churn: Vec<u64>,
    churn_probability: f64,
    step: u64,
    interval: f64,
}

const SYNTH_BOUNDS: [f64; 12] = [
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    f64::INFINITY,
];
const SYNTH_HANDLERS: [&str; 4] = ["/api/v1/query", "/api/v1/query_range", "/metrics", "/-/ready"];

impl Target {
    fn new(t: &Template, index: u16, args: &Args) -> Self {
        Target::with(t, index, args.interval, args.churn_slots, args.churn_probability)
    }

    /// Target `index` (its seed) stepping every `interval` seconds; the remote-write generator
    /// uses this without a server.
    pub(crate) fn with(t: &Template, index: u16, interval: f64, churn_slots: usize, churn_probability: f64) -> Self {
        let mut rng = Rng::new(0x5EED_0000 + index as u64);
        let mut lines = Vec::with_capacity(t.entries.len());
        let mut models = Vec::with_capacity(t.entries.len());
        let mut hists: Vec<Histogram> = Vec::new();
        // (family, labels without le) -> histogram group
        let mut groups: HashMap<(String, String), usize> = HashMap::new();
        // First pass: collect histogram bounds per group.
        let mut bounds: HashMap<(String, String), Vec<f64>> = HashMap::new();
        for (_, l) in &t.entries {
            let (fam, ty) = family(&t.types, &l.name);
            if ty == "histogram" && l.name.ends_with("_bucket") {
                let (key, le) = without_le(&l.labels);
                bounds
                    .entry((fam.to_string(), key))
                    .or_default()
                    .push(le.unwrap_or(f64::INFINITY));
            }
        }
        for (_, l) in &t.entries {
            let (fam, ty) = family(&t.types, &l.name);
            // Integers print without a fraction; a value in exponent form may be an integer.
            let decimals = if l.value.fract() == 0.0 && l.value.abs() < 1e15 {
                Some(0)
            } else {
                l.decimals
            };
            let model = if ty == "histogram" {
                let (key, le) = without_le(&l.labels);
                let k = (fam.to_string(), key);
                let g = *groups.entry(k.clone()).or_insert_with(|| {
                    hists.push(Histogram::new(bounds.get(&k).cloned().unwrap_or_default(), &mut rng));
                    hists.len() - 1
                });
                if l.name.ends_with("_bucket") {
                    let le = le.unwrap_or(f64::INFINITY);
                    let index = hists[g].bounds.iter().position(|b| *b == le).unwrap_or(0);
                    Model::Bucket { group: g, index }
                } else if l.name.ends_with("_sum") {
                    Model::HistSum { group: g }
                } else {
                    Model::HistCount { group: g }
                }
            } else if fam.ends_with("_info") || !l.value.is_finite() {
                Model::Constant
            } else if fam == "node_time_seconds" {
                Model::Clock
            } else if ty == "counter"
                || l.name.ends_with("_total")
                || (ty == "summary" && !l.labels.contains("quantile="))
            {
                let scale = if l.name.contains("bytes") { 1e3 } else { 1.0 };
                Model::Counter {
                    rate: scale * 10f64.powf(rng.range(-2.0, 1.5)),
                    decimals,
                }
            } else if l.value == 0.0 || l.value == 1.0 || fam.contains("time_seconds") || fam.contains("start_time") {
                Model::Constant
            } else {
                Model::Gauge {
                    scale: l.value.abs().max(1.0) * rng.range(0.001, 0.01),
                    non_negative: l.value >= 0.0,
                    decimals,
                }
            };
            lines.push(l.clone());
            models.push(model);
        }
        let synth = SYNTH_HANDLERS
            .iter()
            .map(|h| (h.to_string(), Histogram::new(SYNTH_BOUNDS.to_vec(), &mut rng)))
            .collect();
        Target {
            rng,
            lines,
            models,
            hists,
            synth,
            churn: vec![0; churn_slots],
            churn_probability,
            step: 0,
            interval,
        }
    }

    pub(crate) fn advance(&mut self) {
        let iv = self.interval;
        for h in &mut self.hists {
            h.step(iv, &mut self.rng);
        }
        for (_, h) in &mut self.synth {
            h.step(iv, &mut self.rng);
        }
        for (line, model) in self.lines.iter_mut().zip(&self.models) {
            match model {
                Model::Constant | Model::Bucket { .. } | Model::HistSum { .. } | Model::HistCount { .. } => {}
                Model::Clock => line.value += iv,
                Model::Counter { rate, decimals } => {
                    let inc = rate * iv * self.rng.range(0.5, 1.5);
                    line.value = round_to(line.value + inc, *decimals);
                }
                Model::Gauge {
                    scale,
                    non_negative,
                    decimals,
                } => {
                    let mut v = line.value + scale * self.rng.normal();
                    if *non_negative {
                        v = v.max(0.0);
                    }
                    line.value = round_to(v, *decimals);
                }
            }
        }
        for g in &mut self.churn {
            if self.rng.f64() < self.churn_probability {
                *g += 1;
            }
        }
        self.step += 1;
    }

    fn value(&self, i: usize) -> f64 {
        match &self.models[i] {
            Model::Bucket { group, index } => self.hists[*group].counts.get(*index).copied().unwrap_or(0.0),
            Model::HistSum { group } => self.hists[*group].sum,
            Model::HistCount { group } => self.hists[*group].count,
            _ => self.lines[i].value,
        }
    }

    fn render(&self, t: &Template, out: &mut String) {
        for (i, (comments, line)) in t.entries.iter().enumerate() {
            out.push_str(comments);
            out.push_str(&line.name);
            if !line.labels.is_empty() {
                out.push('{');
                out.push_str(&line.labels);
                out.push('}');
            }
            out.push(' ');
            push_value(out, self.value(i));
            out.push('\n');
        }
        out.push_str("# HELP harness_http_request_duration_seconds Synthetic request latency (watchfire-harness).\n");
        out.push_str("# TYPE harness_http_request_duration_seconds histogram\n");
        for (handler, h) in &self.synth {
            for (b, c) in h.bounds.iter().zip(&h.counts) {
                let le = if b.is_infinite() {
                    "+Inf".to_string()
                } else {
                    format!("{b}")
                };
                let _ = write!(
                    out,
                    "harness_http_request_duration_seconds_bucket{{handler=\"{handler}\",le=\"{le}\"}} "
                );
                push_value(out, *c);
                out.push('\n');
            }
            let _ = write!(
                out,
                "harness_http_request_duration_seconds_sum{{handler=\"{handler}\"}} "
            );
            push_value(out, h.sum);
            let _ = write!(
                out,
                "\nharness_http_request_duration_seconds_count{{handler=\"{handler}\"}} "
            );
            push_value(out, h.count);
            out.push('\n');
        }
        out.push_str("# HELP harness_churn_info Synthetic churning series (watchfire-harness).\n");
        out.push_str("# TYPE harness_churn_info gauge\n");
        for (slot, generation) in self.churn.iter().enumerate() {
            let _ = writeln!(
                out,
                "harness_churn_info{{slot=\"{slot}\",generation=\"{generation}\"}} 1"
            );
        }
    }

    /// Every series of the page at the current step, in page order (the same series and values
    /// `render` writes): `f(position, name, label text between the braces, value)`. The label
    /// text of a position only changes for the churning family.
    pub(crate) fn for_each_series(&self, t: &Template, mut f: impl FnMut(usize, &str, &str, f64)) {
        let mut pos = 0;
        for (i, (_, line)) in t.entries.iter().enumerate() {
            f(pos, &line.name, &line.labels, self.value(i));
            pos += 1;
        }
        let mut labels = String::new();
        for (handler, h) in &self.synth {
            for (b, c) in h.bounds.iter().zip(&h.counts) {
                let le = if b.is_infinite() {
                    "+Inf".to_string()
                } else {
                    format!("{b}")
                };
                labels.clear();
                let _ = write!(labels, "handler=\"{handler}\",le=\"{le}\"");
                f(pos, "harness_http_request_duration_seconds_bucket", &labels, *c);
                pos += 1;
            }
            labels.clear();
            let _ = write!(labels, "handler=\"{handler}\"");
            f(pos, "harness_http_request_duration_seconds_sum", &labels, h.sum);
            f(pos + 1, "harness_http_request_duration_seconds_count", &labels, h.count);
            pos += 2;
        }
        for (slot, generation) in self.churn.iter().enumerate() {
            labels.clear();
            let _ = write!(labels, "slot=\"{slot}\",generation=\"{generation}\"");
            f(pos, "harness_churn_info", &labels, 1.0);
            pos += 1;
        }
    }

    pub(crate) fn series(&self) -> usize {
        self.lines.len() + self.synth.len() * (SYNTH_BOUNDS.len() + 2) + self.churn.len()
    }
}

fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

struct Shared {
    template: Template,
    target: Mutex<Target>,
    started: Instant,
}

async fn metrics(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    let mut body = String::with_capacity(256 * 1024);
    {
        let mut t = s.target.lock().expect("no panics while holding the target lock");
        let due = (s.started.elapsed().as_secs_f64() / t.interval) as u64;
        // Bounded catch-up: a scraper that paused does not make us loop for long.
        let mut n = 0;
        while t.step < due && n < 10_000 {
            t.advance();
            n += 1;
        }
        t.render(&s.template, &mut body);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
}

pub fn run(args: Args) -> Result<()> {
    let text =
        std::fs::read_to_string(&args.template).with_context(|| format!("reading {}", args.template.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let started = Instant::now();
        let mut total = 0;
        for i in 0..args.targets {
            let template = parse_template(&text)?;
            let target = Target::new(&template, i, &args);
            total += target.series();
            if args.count_only {
                println!("{}", target.series());
                return Ok(());
            }
            let shared = Arc::new(Shared { template, target: Mutex::new(target), started });
            let addr = format!("127.0.0.1:{}", args.base_port + i);
            let listener = tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("binding {addr}"))?;
            let app = Router::new().route("/metrics", get(metrics)).with_state(shared);
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
        }
        eprintln!(
            "serving {} targets on 127.0.0.1:{}-{}, {} series in total, one step every {}s",
            args.targets,
            args.base_port,
            args.base_port + args.targets - 1,
            total,
            args.interval
        );
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(args.max_runtime)) => eprintln!("max runtime reached"),
            _ = tokio::signal::ctrl_c() => {}
            _ = async { tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler").recv().await } => {}
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::{decimals, round_to};

    #[test]
    fn decimals_follow_the_printed_value() {
        let d = |t: &str| decimals(t, t.parse().unwrap());
        assert_eq!(d("15681.73"), Some(2));
        assert_eq!(d("1.761672e+06"), Some(0));
        assert_eq!(d("2.5e-05"), Some(6));
        assert_eq!(d("42"), Some(0));
        assert_eq!(d("264.05551899999995"), None);
        assert_eq!(decimals("NaN", f64::NAN), None);
        assert_eq!(round_to(15681.734_999, Some(2)), 15681.73);
        assert_eq!(round_to(2.6, Some(0)), 3.0);
        assert_eq!(round_to(0.1 + 0.2, None), 0.1 + 0.2);
    }
}
