//! The query API compared with the real Prometheus (Debian's 2.42) on the same data: the same
//! requests must get the same status code and the same JSON body, byte for byte after
//! parsing. This is the golden test of the data endpoints with upstream itself as the golden
//! source: query (every result type, NaN and ±Inf formatting, offsets, aggregations,
//! histogram_quantile), query_range, series, labels, label values, and their errors.
//!
//! The data is written once as OpenMetrics text, imported into Prometheus with
//! `promtool tsdb create-blocks-from openmetrics`, and appended to Watchfire's store with the
//! storage engine. Samples sit 7 s off every query timestamp, so Prometheus 3's left-open
//! range selection (which Watchfire follows) and 2.42's closed ranges select the same samples.
//! Where 3.x answers differently from 2.42 by design, the case says so and is left out.
//! Instant-vector results are compared as sets unless the query sorts (upstream leaves their
//! order unspecified and it depends on where the data sits).

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use watchfire_model::Labels;
use watchfire_storage::Appendable;

use crate::support::{Server, eventually};

/// First sample time (ms): 07 s past an hour, three hours ago, so it is inside both servers'
/// retention and far from any query time on the 15 s grid.
fn first_sample_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    ((now / 3600) - 3) * 3_600_000 + 7_000
}

const STEP_MS: i64 = 15_000;
const SAMPLES: i64 = 240; // one hour

/// A series: metric name, labels, and its value at sample i.
type SeriesSpec = (&'static str, Vec<(&'static str, &'static str)>, fn(i64) -> f64);

fn dataset() -> Vec<SeriesSpec> {
    vec![
        ("up_fake", vec![("instance", "a:9100"), ("job", "node")], |_| 1.0),
        ("up_fake", vec![("instance", "b:9100"), ("job", "node")], |i| {
            if i % 40 < 30 { 1.0 } else { 0.0 }
        }),
        ("up_fake", vec![("instance", "c:8080"), ("job", "api")], |_| 0.0),
        ("temp_celsius", vec![("room", "kitchen")], |i| {
            20.0 + (i % 17) as f64 * 0.25
        }),
        ("temp_celsius", vec![("room", "attic")], |i| {
            35.5 - (i % 11) as f64 * 0.5
        }),
        ("temp_celsius", vec![("room", "cellar")], |i| {
            if i < 200 { 12.125 } else { f64::NAN }
        }),
        ("req_total", vec![("code", "200"), ("job", "api")], |i| (i * 10) as f64),
        // A counter reset half way.
        ("req_total", vec![("code", "500"), ("job", "api")], |i| {
            (if i < 120 { i } else { i - 120 }) as f64
        }),
        ("req_total", vec![("code", "404"), ("job", "web")], |i| {
            (i * i) as f64 / 7.0
        }),
        ("lat_seconds_bucket", vec![("le", "0.1")], |i| (i * 3) as f64),
        ("lat_seconds_bucket", vec![("le", "0.5")], |i| (i * 7) as f64),
        ("lat_seconds_bucket", vec![("le", "1")], |i| (i * 9) as f64),
        ("lat_seconds_bucket", vec![("le", "+Inf")], |i| (i * 10) as f64),
        ("huge_values", vec![("kind", "big")], |i| 1.5e300 * (i + 1) as f64),
        ("huge_values", vec![("kind", "tiny")], |i| 3.0e-12 / (i + 1) as f64),
    ]
}

fn series_labels(name: &str, labels: &[(&str, &str)]) -> Labels {
    let mut pairs = vec![("__name__", name)];
    pairs.extend_from_slice(labels);
    Labels::from_pairs(pairs)
}

/// Puts the series of an instant-vector result in one order. Upstream leaves it unspecified
/// without `sort`: its engine selects unsorted, so a head alone answers in the order series
/// were created and blocks (where promtool put Prometheus' copy) in label order; Watchfire's
/// copy is in its head.
fn unordered_vector(body: &mut Value) {
    if body["data"]["resultType"] != "vector" {
        return;
    }
    if let Some(result) = body["data"]["result"].as_array_mut() {
        result.sort_by_key(|s| s["metric"].to_string());
    }
}

/// The data set as OpenMetrics text for promtool (families contiguous, samples in time order).
fn openmetrics(t0: i64) -> String {
    let mut out = String::new();
    let mut last_family = "";
    for (name, labels, f) in dataset() {
        if name != last_family {
            writeln!(out, "# TYPE {name} unknown").unwrap();
            last_family = name;
        }
        let ls: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        for i in 0..SAMPLES {
            let v = f(i);
            let v = if v.is_nan() { "NaN".to_owned() } else { format!("{v:?}") };
            let ts = (t0 + i * STEP_MS) as f64 / 1000.0;
            writeln!(out, "{name}{{{}}} {v} {ts:.3}", ls.join(",")).unwrap();
        }
    }
    out.push_str("# EOF\n");
    out
}

fn seed_watchfire(dir: &Path, t0: i64) {
    let db = watchfire_tsdb::Db::open(&dir.join("data"), watchfire_tsdb::Options::default()).unwrap();
    let mut app = db.appender();
    for (name, labels, f) in dataset() {
        let l = series_labels(name, &labels);
        for i in 0..SAMPLES {
            app.append(None, &l, t0 + i * STEP_MS, f(i)).unwrap();
        }
    }
    app.commit().unwrap();
    db.close().unwrap();
}

struct Prometheus {
    child: Child,
    port: u16,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(dir: &Path, t0: i64) -> Prometheus {
    let data = dir.join("prom-data");
    let om = dir.join("data.om");
    std::fs::write(&om, openmetrics(t0)).unwrap();
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&data)
        .output()
        .expect("promtool runs: `bash .ci/test` installs Debian's prometheus package");
    assert!(
        out.status.success(),
        "promtool create-blocks-from failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 1h\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus runs: `bash .ci/test` installs Debian's prometheus package");
    let p = Prometheus { child, port };
    let ready = eventually(Duration::from_secs(30), || {
        let r = reqwest::blocking::get(format!("http://127.0.0.1:{port}/-/ready")).ok()?;
        r.status().is_success().then_some(())
    });
    assert!(ready.is_some(), "Prometheus did not become ready");
    p
}

fn fetch(base: &str, path_and_query: &str) -> (u16, Value) {
    let r = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
        .get(format!("{base}{path_and_query}"))
        .send()
        .unwrap();
    let code = r.status().as_u16();
    let text = r.text().unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path_and_query}: not JSON ({e}): {text}"));
    (code, body)
}

/// Percent-encodes everything but ASCII letters and digits.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Rewrites a Prometheus 2.42 answer into what Prometheus 3 answers, for the few requests
/// where 3.x changed the answer on purpose (see ../shared/reference/prometheus.md on 2.x
/// versus 3.x). Each rewrite is exact, so the rest of the body is still compared.
fn known_2x_difference(case: &str, body: &mut Value) {
    // 3.x subqueries select a left-open range, so the point at exactly `t - range` is gone.
    if case.contains("%5B30m%3A5m%5D") {
        for series in body["data"]["result"].as_array_mut().unwrap() {
            series["values"].as_array_mut().unwrap().remove(0);
        }
    }
    if let Some(Value::String(e)) = body.get_mut("error") {
        // 3.x lower-cased the time parameter error and has no position for an empty query.
        *e = e.replace("Invalid time value for", "invalid time value for").replace(
            "1:1: parse error: no expression found",
            "unknown position: parse error: no expression found",
        );
    }
}

#[test]
fn query_api_answers_as_prometheus_does_on_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = first_sample_ms();
    let prom = start_prometheus(dir.path(), t0);
    seed_watchfire(dir.path(), t0);
    let server = Server::start(dir.path(), &["--config.file=prometheus.yml"]);
    let ours = format!("http://{}/api/v1", server.addr);
    let theirs = format!("http://127.0.0.1:{}/api/v1", prom.port);

    // Query times on the 15 s grid, 7 s away from every sample.
    let t0s = (t0 - 7_000) / 1000;
    let at = |min: i64| (t0s + min * 60).to_string();
    let (t30, t45, t59) = (at(30), at(45), at(59));
    let mut cases: Vec<String> = Vec::new();
    for q in [
        "up_fake",
        "up_fake == 0",
        "up_fake{job=~\"no.*\"}",
        "temp_celsius",
        "temp_celsius offset 10m",
        "temp_celsius[1m]",
        "temp_celsius > bool 25",
        "-temp_celsius",
        "sort_desc(temp_celsius)",
        "topk(2, temp_celsius)",
        "avg(temp_celsius)",
        "quantile(0.3, temp_celsius)",
        "count_values(\"v\", up_fake)",
        "rate(req_total[5m])",
        "sum by (job) (rate(req_total[5m]))",
        "increase(req_total[10m])",
        "resets(req_total[1h])",
        "irate(req_total[1m])",
        "deriv(temp_celsius[10m])",
        "predict_linear(temp_celsius[10m], 3600)",
        "histogram_quantile(0.9, sum by (le) (rate(lat_seconds_bucket[5m])))",
        "rate(req_total{code=\"200\"}[5m]) / ignoring(code) group_left sum by (job) (rate(req_total[5m]))",
        "label_replace(up_fake, \"host\", \"$1\", \"instance\", \"(.*):.*\")",
        "label_join(up_fake, \"both\", \"-\", \"job\", \"instance\")",
        "absent(nonexistent_metric{job=\"x\"})",
        "absent_over_time(up_fake[5m])",
        "avg_over_time(temp_celsius[10m])",
        "max_over_time(huge_values[5m])",
        "huge_values",
        "stddev_over_time(temp_celsius[30m])",
        "quantile_over_time(0.5, temp_celsius[30m])",
        "changes(up_fake[1h])",
        "timestamp(up_fake)",
        "time()",
        "scalar(sum(up_fake))",
        "vector(1) / 0",
        "-1/0",
        "0/0",
        "\"a string\"",
        "1.5e300 * 10",
        "sum(up_fake) by (job) and on (job) count(up_fake) by (job) > 1",
        "up_fake unless up_fake{instance=\"a:9100\"}",
        "up_fake or vector(5)",
        "sum without (instance) (up_fake)",
        "count by (__name__) ({__name__=~\"up_fake|temp_celsius\"})",
        "round(temp_celsius, 0.3)",
        "clamp(temp_celsius, 21, 30)",
        "temp_celsius[30m:5m]",
        "max_over_time(rate(req_total[5m])[20m:1m])",
    ] {
        cases.push(format!("/query?query={}&time={t45}", enc(q)));
    }
    cases.push(format!(
        "/query?query={}&time={t45}",
        enc(&format!("temp_celsius @ {t30}"))
    ));
    for q in [
        "up_fake",
        "rate(req_total[5m])",
        "sum by (job) (increase(req_total[2m]))",
        "temp_celsius",
        "histogram_quantile(0.5, rate(lat_seconds_bucket[2m]))",
        "scalar(up_fake{instance=\"b:9100\"})",
    ] {
        cases.push(format!("/query_range?query={}&start={t30}&end={t59}&step=60", enc(q)));
    }
    cases.push(format!("/query_range?query=up_fake&start={}&end={t59}&step=15", at(1)));
    for m in [
        "temp_celsius",
        "{__name__=~\"req_total|up_fake\",job=\"api\"}",
        "{job!=\"\"}",
    ] {
        cases.push(format!("/series?match[]={}&start={}&end={t59}", enc(m), at(0)));
    }
    cases.push(format!("/labels?start={}&end={t59}", at(0)));
    cases.push(format!("/labels?match[]=up_fake&start={}&end={t59}", at(0)));
    cases.push(format!("/label/__name__/values?start={}&end={t59}", at(0)));
    cases.push(format!("/label/job/values?match[]=req_total&start={}&end={t59}", at(0)));
    cases.push(format!("/label/nonexistent/values?start={}&end={t59}", at(0)));
    // Windows before all data, and one that ends before it starts.
    cases.push("/labels?start=10&end=20".to_owned());
    cases.push("/label/job/values?start=10&end=20".to_owned());
    cases.push("/series?match[]=up_fake&start=10&end=20".to_owned());
    cases.push(format!("/labels?start={t59}&end={t30}"));
    // Errors.
    for bad in [
        "/query?query=sum(".to_owned(),
        "/query?query=".to_owned(),
        format!("/query?query=temp_celsius[5m]%2B1&time={t45}"),
        "/query?query=up_fake&time=yesterday".to_owned(),
        format!("/query_range?query=up_fake&start={t59}&end={t30}&step=60"),
        format!("/query_range?query=up_fake&start={t30}&end={t59}&step=0"),
        format!("/query_range?query=up_fake&start={t30}&end={t59}&step=-1"),
        format!("/query_range?query=up_fake&start={}&end={t59}&step=0.1", at(0)),
        format!("/query_range?query=up_fake&start={t30}&end={t59}"),
        format!("/query_range?query=temp_celsius[5m]&start={t30}&end={t59}&step=60"),
        "/series".to_owned(),
        "/series?match[]={job=~\".*\"}".to_owned(),
        "/labels?start=20&end=10".to_owned(),
    ] {
        cases.push(bad);
    }

    let mut mismatches = Vec::new();
    for case in &cases {
        let (their_code, mut their_body) = fetch(&theirs, case);
        known_2x_difference(case, &mut their_body);
        let (our_code, mut our_body) = fetch(&ours, case);
        if !case.contains("sort") {
            unordered_vector(&mut their_body);
            unordered_vector(&mut our_body);
        }
        if their_code != our_code || their_body != our_body {
            mismatches.push(format!(
                "{case}\n  prometheus {their_code}: {their_body}\n  watchfire  {our_code}: {our_body}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} requests answered differently:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
    // The comparison compared something: most requests returned data.
    let (_, body) = fetch(&ours, &format!("/query?query=up_fake&time={t45}"));
    assert_eq!(body["data"]["result"].as_array().unwrap().len(), 3, "{body}");
}
