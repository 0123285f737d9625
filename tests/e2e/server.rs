//! The HTTP server: TLS and basic authentication on every endpoint, lifecycle endpoints,
//! reloads over HTTP and by SIGHUP, graceful shutdown, and valid `/metrics` output.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};

use crate::support::{Server, eventually, metric_value, write};

const GOOD_CONFIG: &str = "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['localhost:9090']\n";

fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

/// A CA and a server certificate for 127.0.0.1 signed by it, written as PEM files.
fn make_certs(dir: &Path) -> String {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    write(dir, "server.crt", &cert.pem());
    write(dir, "server.key", &key.serialize_pem());
    ca_cert.pem()
}

#[test]
fn every_endpoint_needs_credentials_and_is_served_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca_pem = make_certs(dir.path());
    let password = "correct horse battery staple";
    let hash = bcrypt::hash(password, 4).unwrap();
    write(
        dir.path(),
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  alice: {hash}\n"
        ),
    );
    write(dir.path(), "prometheus.yml", GOOD_CONFIG);
    let mut server = Server::start(
        dir.path(),
        &[
            "--config.file=prometheus.yml",
            "--web.config.file=web.yml",
            "--web.enable-lifecycle",
        ],
    );
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let base = format!("https://127.0.0.1:{port}");
    let tls = Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = client().get(format!("http://127.0.0.1:{port}/-/healthy")).send();
    assert!(plain.is_err() || plain.unwrap().status() == StatusCode::BAD_REQUEST);

    let endpoints: [(Method, &str, StatusCode); 6] = [
        (Method::GET, "/-/healthy", StatusCode::OK),
        (Method::HEAD, "/-/healthy", StatusCode::OK),
        (Method::GET, "/-/ready", StatusCode::OK),
        (Method::POST, "/-/reload", StatusCode::OK),
        (Method::GET, "/metrics", StatusCode::OK),
        (Method::GET, "/no/such/page", StatusCode::NOT_FOUND),
    ];
    for (method, path, want) in &endpoints {
        let url = format!("{base}{path}");
        let anon = tls.request(method.clone(), &url).send().unwrap();
        assert_eq!(
            anon.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} without credentials"
        );
        assert_eq!(anon.headers().get("www-authenticate").unwrap(), "Basic");
        let wrong = tls
            .request(method.clone(), &url)
            .basic_auth("alice", Some("wrong"))
            .send()
            .unwrap();
        assert_eq!(
            wrong.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a wrong password"
        );
        let stranger = tls
            .request(method.clone(), &url)
            .basic_auth("mallory", Some(password))
            .send()
            .unwrap();
        assert_eq!(
            stranger.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} with an unknown user"
        );
        let ok = tls
            .request(method.clone(), &url)
            .basic_auth("alice", Some(password))
            .send()
            .unwrap();
        assert_eq!(ok.status(), *want, "{method} {path} with credentials");
    }

    // /-/quit last: it needs credentials too, and then stops the server.
    let url = format!("{base}/-/quit");
    assert_eq!(tls.post(&url).send().unwrap().status(), StatusCode::UNAUTHORIZED);
    let bye = tls.post(&url).basic_auth("alice", Some(password)).send().unwrap();
    assert_eq!(bye.status(), StatusCode::OK);
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("server exits after /-/quit");
    assert!(status.success(), "{status:?}");

    let log = server.log();
    assert!(
        log.contains("basic authentication failed"),
        "failed attempts are logged:\n{log}"
    );
    assert!(
        !log.contains("wrong") && !log.contains(password),
        "passwords never reach the log:\n{log}"
    );
}

fn get(url: &str) -> (StatusCode, String) {
    let r = client().get(url).send().unwrap();
    (r.status(), r.text().unwrap())
}

fn reload_metric(base: &str) -> f64 {
    metric_value(
        &get(&format!("{base}/metrics")).1,
        "prometheus_config_last_reload_successful",
    )
    .expect("reload metric present")
}

#[test]
fn reload_over_http_and_sighup_keeps_the_running_config_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "prometheus.yml", GOOD_CONFIG);
    let server = Server::start(dir.path(), &["--config.file=prometheus.yml", "--web.enable-lifecycle"]);
    let base = format!("http://{}", server.addr);
    let c = client();
    assert_eq!(reload_metric(&base), 1.0);

    // A good reload over HTTP.
    std::fs::write(&cfg, GOOD_CONFIG.replace("15s", "30s")).unwrap();
    let r = c.post(format!("{base}/-/reload")).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(reload_metric(&base), 1.0);

    // A bad one: refused with the file, line and reason; the server keeps running.
    std::fs::write(&cfg, "global:\n  scrape_interval: 15s\n  bogus_key: 1\n").unwrap();
    let r = c.post(format!("{base}/-/reload")).send().unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = r.text().unwrap();
    assert!(
        body.contains("failed to reload config") && body.contains("prometheus.yml:3:3") && body.contains("bogus_key"),
        "{body}"
    );
    assert_eq!(reload_metric(&base), 0.0);
    assert_eq!(get(&format!("{base}/-/ready")).0, StatusCode::OK);

    // A bad rule file also fails the reload.
    std::fs::write(&cfg, format!("{GOOD_CONFIG}rule_files: [rules.yml]\n")).unwrap();
    write(
        dir.path(),
        "rules.yml",
        "groups:\n  - name: g\n    rules:\n      - record: a\n        expr: rate(\n",
    );
    assert_eq!(
        c.post(format!("{base}/-/reload")).send().unwrap().status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );

    // SIGHUP with a good file recovers...
    write(
        dir.path(),
        "rules.yml",
        "groups:\n  - name: g\n    rules:\n      - record: a\n        expr: rate(x[5m])\n",
    );
    server.signal("HUP");
    assert!(
        eventually(Duration::from_secs(10), || (reload_metric(&base) == 1.0).then_some(())).is_some(),
        "SIGHUP reload succeeded"
    );
    // ...and SIGHUP with a bad file is refused, logged, and the server stays up.
    std::fs::write(&cfg, "scrape_configs:\n  - job_name: a\n  - job_name: a\n").unwrap();
    server.signal("HUP");
    assert!(
        eventually(Duration::from_secs(10), || (reload_metric(&base) == 0.0).then_some(())).is_some(),
        "SIGHUP reload failed"
    );
    assert_eq!(get(&format!("{base}/-/healthy")).0, StatusCode::OK);
    let log = server.log();
    assert!(
        log.contains("Error reloading config") && log.contains("prometheus.yml"),
        "{log}"
    );
}

#[test]
fn lifecycle_endpoints_need_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "prometheus.yml", GOOD_CONFIG);
    let server = Server::start(dir.path(), &["--config.file=prometheus.yml"]);
    let base = format!("http://{}", server.addr);
    for path in ["/-/reload", "/-/quit"] {
        let r = client().post(format!("{base}{path}")).send().unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        assert_eq!(r.text().unwrap(), "Lifecycle API is not enabled.");
    }
    assert_eq!(
        get(&format!("{base}/-/healthy")),
        (StatusCode::OK, "Prometheus Server is Healthy.\n".into())
    );
    // Readiness follows listening closely but not atomically: poll for it.
    let ready = eventually(Duration::from_secs(10), || {
        let r = get(&format!("{base}/-/ready"));
        (r.0 == StatusCode::OK).then_some(r)
    });
    assert_eq!(ready, Some((StatusCode::OK, "Prometheus Server is Ready.\n".into())));
}

#[test]
fn route_prefix_moves_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--web.external-url=http://example.invalid/prom/"]);
    let base = format!("http://{}", server.addr);
    assert_eq!(get(&format!("{base}/prom/-/healthy")).0, StatusCode::OK);
    assert_eq!(get(&format!("{base}/prom/metrics")).0, StatusCode::OK);
    assert_eq!(get(&format!("{base}/-/healthy")).0, StatusCode::NOT_FOUND);
}

#[test]
fn sigterm_and_sigint_shut_down_gracefully() {
    for sig in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::start(dir.path(), &[]);
        server.signal(sig);
        let status = server.wait_exit(Duration::from_secs(20)).expect("server exits");
        assert!(status.success(), "SIG{sig}: {status:?}");
        assert!(server.log().contains("exiting gracefully"), "{}", server.log());
        // The store was closed (WAL and chunk files synced), not left to WAL replay.
        assert!(server.log().contains("See you next time!"), "{}", server.log());
    }
}

/// Issue #3: a SIGTERM writes a head snapshot that the next start restores instead of
/// replaying the WAL; after a SIGKILL the WAL replay still brings back every sample, the ones
/// written since the snapshot's start included.
#[test]
fn a_restart_after_sigterm_uses_the_head_snapshot_and_after_sigkill_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "prometheus.yml", "global:\n  scrape_interval: 1h\n");
    let args = ["--config.file=prometheus.yml", "--web.enable-remote-write-receiver"];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let samples = |from: i64, n: i64| -> Vec<watchfire_proto::prompb::Sample> {
        (from..from + n)
            .map(|i| watchfire_proto::prompb::Sample {
                value: i as f64,
                timestamp: now - 120_000 + i * 1000,
            })
            .collect()
    };
    let count = |base: &str| -> String {
        let (status, body) = get(&format!(
            "{base}/api/v1/query?query=count_over_time(kept%5B5m%5D)&time={}",
            now / 1000
        ));
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    };

    let mut server = Server::start(dir.path(), &args);
    let base = format!("http://{}", server.addr);
    remote_write(&base, "kept", samples(0, 50));
    assert!(count(&base).contains(r#""50"]"#), "{}", count(&base));
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(20)).is_some_and(|s| s.success()));
    assert!(server.log().contains("head snapshot written"), "{}", server.log());

    let server = Server::start(dir.path(), &args);
    assert!(server.log().contains("from_snapshot=true"), "{}", server.log());
    let base = format!("http://{}", server.addr);
    assert!(count(&base).contains(r#""50"]"#), "{}", count(&base));
    remote_write(&base, "kept", samples(50, 10));
    server.signal("KILL");
    let mut server = server;
    assert!(server.wait_exit(Duration::from_secs(20)).is_some());

    let server = Server::start(dir.path(), &args);
    assert!(server.log().contains("from_snapshot=false"), "{}", server.log());
    let base = format!("http://{}", server.addr);
    assert!(count(&base).contains(r#""60"]"#), "{}", count(&base));
}

/// Sends `samples` of the series `{__name__="name", job="rw"}` by remote write 1.0.
fn remote_write(base: &str, name: &str, samples: Vec<watchfire_proto::prompb::Sample>) {
    use prost::Message;
    use watchfire_proto::prompb;
    let label = |name: &str, value: &str| prompb::Label {
        name: name.into(),
        value: value.into(),
    };
    let req = prompb::WriteRequest {
        timeseries: vec![prompb::TimeSeries {
            labels: vec![label("__name__", name), label("job", "rw")],
            samples,
            ..Default::default()
        }],
        metadata: vec![],
    };
    let resp = client()
        .post(format!("{base}/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(watchfire_remote::codec::encode_snappy(&req.encode_to_vec()))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204, "{}", resp.text().unwrap_or_default());
}

/// Federation (and remote read, which shares them) adds the external labels of the running
/// configuration: a reload that changes them changes what `/federate` says.
#[test]
fn federation_follows_external_labels_across_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let config = |dc: &str| format!("global:\n  scrape_interval: 1h\n  external_labels:\n    dc: {dc}\n");
    write(dir.path(), "prometheus.yml", &config("east"));
    let server = Server::start(
        dir.path(),
        &[
            "--config.file=prometheus.yml",
            "--web.enable-remote-write-receiver",
            "--web.enable-lifecycle",
        ],
    );
    let base = format!("http://{}", server.addr);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    remote_write(
        &base,
        "federated",
        vec![watchfire_proto::prompb::Sample {
            value: 7.0,
            timestamp: now,
        }],
    );
    let federate = || get(&format!("{base}/federate?match[]=federated"));
    let (status, body) = federate();
    assert_eq!(status, StatusCode::OK, "{body}");
    // Upstream's order: the series' own labels, then the missing external ones by name.
    assert!(
        body.contains(r#"federated{job="rw",dc="east",instance=""} 7"#),
        "{body}"
    );
    write(dir.path(), "prometheus.yml", &config("west"));
    let resp = client().post(format!("{base}/-/reload")).send().unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap_or_default());
    let (_, body) = federate();
    assert!(
        body.contains(r#"federated{job="rw",dc="west",instance=""} 7"#),
        "{body}"
    );
}

/// A remote-write request that makes the head span more than 1.5 block ranges gets its block
/// cut right away, not at the next one-minute maintenance tick or restart; what is in the
/// block is still queried, and the head keeps the rest.
#[test]
fn a_write_that_makes_a_block_due_cuts_it_at_once() {
    use watchfire_proto::prompb;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "prometheus.yml", "global:\n  scrape_interval: 1h\n");
    let server = Server::start(
        dir.path(),
        &["--config.file=prometheus.yml", "--web.enable-remote-write-receiver"],
    );
    let base = format!("http://{}", server.addr);
    // Three hours and twenty minutes at one sample a minute from an aligned start: more than
    // 1.5 block ranges (3 h), so the first two hours are due as a block.
    let start = 1_700_000_000_000i64 / 7_200_000 * 7_200_000;
    let samples: Vec<prompb::Sample> = (0..=200)
        .map(|i| prompb::Sample {
            value: i as f64,
            timestamp: start + i * 60_000,
        })
        .collect();
    remote_write(&base, "written", samples);
    // Well inside the one-minute maintenance interval.
    let block = eventually(Duration::from_secs(20), || {
        let blocks: Vec<_> = std::fs::read_dir(dir.path().join("data"))
            .ok()?
            .flatten()
            .filter(|e| e.path().join("meta.json").exists())
            .collect();
        blocks.first().map(|e| e.path())
    })
    .expect("a block is cut without waiting for the maintenance tick");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(block.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["minTime"], start, "{meta}");
    assert_eq!(meta["maxTime"], start + 7_200_000, "{meta}");
    assert!(server.log().contains("Storage maintenance"), "{}", server.log());
    // Every sample is still answered, from the block and the head together.
    let (status, body) = get(&format!(
        "{base}/api/v1/query?query=count_over_time(written[4h])&time={}",
        (start + 200 * 60_000) / 1000
    ));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(r#","201"]"#), "{body}");
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let first = Server::start(dir.path(), &[]);
    let out = Command::new(crate::support::bin())
        .arg(format!("--web.listen-address={}", first.addr))
        .arg("--storage.tsdb.path=other-data")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on {}", first.addr)) && err.contains("in use"),
        "{err}"
    );
}

#[test]
fn a_data_directory_in_use_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Server::start(dir.path(), &[]);
    let out = Command::new(crate::support::bin())
        .arg("--web.listen-address=127.0.0.1:0")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("opening storage at data/") && err.contains("locked by another process"),
        "{err}"
    );
}

#[test]
fn an_invalid_config_at_startup_stops_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "prometheus.yml",
        "scrape_configs:\n  - job_name: x\n    scrape_interval: 5 minutes\n",
    );
    let out = Command::new(crate::support::bin())
        .args(["--config.file=prometheus.yml", "--web.listen-address=127.0.0.1:0"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("prometheus.yml:3:"), "{err}");
}

/// Checks exposition text line by line: comments are HELP/TYPE lines, each sample belongs to
/// a metric family with a TYPE line before it, label values are quoted, values are floats.
fn check_exposition(text: &str) {
    let mut typed = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let at = format!("line {}: {line}", i + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap();
            let name = parts.next().expect(&at);
            assert!(watchfire_model_name_ok(name), "{at}");
            match kind {
                "HELP" => {}
                "TYPE" => {
                    let t = parts.next().expect(&at);
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                        "{at}"
                    );
                    assert!(typed.insert(name.to_owned()), "duplicate TYPE, {at}");
                }
                _ => panic!("unknown comment, {at}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(&at);
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)));
        assert!(typed.contains(name) || family.is_some(), "sample without TYPE, {at}");
        if name_end < series.len() {
            assert!(series.ends_with('}'), "{at}");
            for pair in series[name_end + 1..series.len() - 1]
                .split("\",")
                .filter(|p| !p.is_empty())
            {
                let (k, v) = pair.split_once('=').expect(&at);
                assert!(watchfire_model_name_ok(k) && v.starts_with('"'), "{at}");
            }
        }
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "{at}"
        );
    }
    assert!(!typed.is_empty());
}

fn watchfire_model_name_ok(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

#[test]
fn metrics_are_valid_exposition_with_upstream_names() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let base = format!("http://{}", server.addr);
    // One request first, so that the per-handler HTTP counters have a child to expose.
    assert_eq!(get(&format!("{base}/-/healthy")).0, StatusCode::OK);
    let (status, text) = get(&format!("{base}/metrics"));
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains(r#"prometheus_http_requests_total{code="200",handler="/-/healthy"} 1"#),
        "{text}"
    );
    for name in [
        "prometheus_build_info",
        "prometheus_config_last_reload_successful",
        "prometheus_config_last_reload_success_timestamp_seconds",
        "prometheus_ready",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "prometheus_http_requests_total",
    ] {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing:\n{text}");
    }
    check_exposition(&text);
    // CPU time is fractional seconds, as upstream reports it (not truncated to whole seconds).
    let cpu = metric_value(&text, "process_cpu_seconds_total").expect("process_cpu_seconds_total");
    assert!(cpu > 0.0 && cpu < 60.0, "{cpu}");
    let rss = metric_value(&text, "process_resident_memory_bytes").expect("process_resident_memory_bytes");
    assert!(rss > 1e6, "{rss}");

    // Upstream's own parser and linter, from Debian's prometheus package (installed by
    // .ci/test): `promtool check metrics` exits non-zero on any parse error or lint problem.
    let promtool = which("promtool").expect("promtool not found: `bash .ci/test` installs Debian's prometheus package");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit 3 means lint findings only. Upstream itself exposes these names, which promtool's
    // linter dislikes; Watchfire keeps them so existing dashboards work.
    const UPSTREAM_NAMES_LINT_DISLIKES: &[&str] = &[
        "prometheus_target_sync_length_histogram_seconds",
        "prometheus_rule_evaluation_duration_histogram_seconds",
        "prometheus_rule_group_duration_histogram_seconds",
    ];
    let lint_only = out.status.code() == Some(3)
        && report
            .lines()
            .filter(|l| !l.trim().is_empty())
            .all(|l| UPSTREAM_NAMES_LINT_DISLIKES.iter().any(|n| l.starts_with(n)));
    assert!(
        out.status.success() || lint_only,
        "promtool check metrics failed ({:?}):\n{report}\n---\n{text}",
        out.status
    );
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The scrape targets' metadata reaches a remote-write peer as metadata-only requests every
/// `metadata_config.send_interval`, next to the samples.
#[test]
fn remote_write_sends_the_scraped_metadata() {
    use prost::Message;
    use std::io::{BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/write", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        // Bounded: the test reads a handful of requests.
        for stream in listener.incoming().take(200).flatten() {
            let mut reader = BufReader::new(stream);
            let (_, body) = crate::support::read_request(&mut reader);
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
            if tx.send(body).is_err() {
                return;
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "prometheus.yml", "global:\n  scrape_interval: 1h\n");
    let server = Server::start(dir.path(), &["--config.file=prometheus.yml"]);
    // The server scrapes itself; its address is known only now, so the config is reloaded.
    write(
        dir.path(),
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs: [{{targets: ['{}']}}]\nremote_write:\n  - url: {url}\n    metadata_config: {{send_interval: 1s}}\n    queue_config: {{batch_send_deadline: 100ms}}\n",
            server.addr
        ),
    );
    server.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    // Samples (read from the WAL) and the first metadata round come in either order.
    let mut samples_seen = false;
    let mut first_metadata = None;
    let metadata = loop {
        let body = rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("samples and metadata arrive within 30 s");
        let raw = watchfire_remote::codec::decode_snappy(&body, 1 << 30).unwrap();
        let req = watchfire_proto::prompb::WriteRequest::decode(raw.as_slice()).unwrap();
        samples_seen |= !req.timeseries.is_empty();
        if !req.metadata.is_empty() {
            assert!(req.timeseries.is_empty(), "metadata travels alone");
            first_metadata.get_or_insert(req.metadata);
        }
        if samples_seen && let Some(m) = first_metadata.take() {
            break m;
        }
    };
    let head_series = metadata
        .iter()
        .find(|m| m.metric_family_name == "prometheus_tsdb_head_series")
        .unwrap_or_else(|| panic!("{metadata:?}"));
    assert_eq!(
        head_series.r#type,
        watchfire_proto::prompb::metric_metadata::MetricType::Gauge as i32
    );
    assert!(!head_series.help.is_empty());
}
