//! The web UI as the server delivers it: page routes, the base URL under a route prefix,
//! pre-gzipped assets, gzip and CORS on the API, `parse_query`; and the browser suite
//! (`web/e2e/run.mjs`, headless Chromium through playwright-core) against a running server.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::Value;

use crate::support::{Server, eventually};

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

#[test]
fn pages_and_assets_are_served_under_the_route_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--web.route-prefix=/prom"]);
    let base = format!("http://{}", server.addr);
    let c = client();

    for (path, to) in [("/", "/prom"), ("/prom", "/prom/query"), ("/prom/", "/prom/query")] {
        let r = c.get(format!("{base}{path}")).send().unwrap();
        assert_eq!(r.status(), StatusCode::FOUND, "{path}");
        assert_eq!(r.headers()["location"], to, "{path}");
    }
    let mut script = None;
    let script_re = regex::Regex::new(r#"src="\./(assets/[^"]+\.js)""#).unwrap();
    for page in [
        "query",
        "alerts",
        "silences/new",
        "silences/abc",
        "tsdb-status",
        "notifications",
    ] {
        let r = c.get(format!("{base}/prom/{page}")).send().unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{page}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let html = r.text().unwrap();
        assert!(html.contains(r#"<base href="/prom/" />"#), "{page}: {html}");
        assert!(!html.contains("__WATCHFIRE_BASE__"));
        script = script_re.captures(&html).map(|c| c[1].to_owned());
    }
    let script = script.expect("index.html loads a script from assets/");
    assert_eq!(
        c.get(format!("{base}/prom/no-such-page")).send().unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.get(format!("{base}/query")).send().unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.get(format!("{base}/prom/assets/no-such-file.js"))
            .send()
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    let gz = c
        .get(format!("{base}/prom/{script}"))
        .header("accept-encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(gz.status(), StatusCode::OK);
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert!(gz.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    let unpacked = gunzip(&gz.bytes().unwrap());
    let plain = c.get(format!("{base}/prom/{script}")).send().unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.bytes().unwrap().as_ref(), unpacked.as_slice());
    assert!(unpacked.len() > 1000);
}

#[test]
fn api_responses_are_gzipped_and_carry_cors_headers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[r"--web.cors.origin=https://a\.example"]);
    let base = format!("http://{}/api/v1", server.addr);
    let c = client();

    let r = c
        .get(format!("{base}/query?query=1%2B1"))
        .header("accept-encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let body: Value = serde_json::from_slice(&gunzip(&r.bytes().unwrap())).unwrap();
    assert_eq!(body["data"]["result"][1], "2", "{body}");

    let r = c
        .get(format!("{base}/labels"))
        .header("origin", "https://a.example")
        .send()
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "https://a.example");
    assert_eq!(r.headers()["access-control-allow-methods"], "GET, POST, OPTIONS");
    let r = c
        .get(format!("{base}/labels"))
        .header("origin", "https://b.example")
        .send()
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_eq!(r.headers()["access-control-expose-headers"], "Date");
    let r = c
        .request(reqwest::Method::OPTIONS, format!("{base}/query"))
        .header("origin", "https://a.example")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://a.example");

    let r = c
        .get(format!("{base}/parse_query?query=sum(rate(x[5m]))"))
        .send()
        .unwrap();
    let body: Value = r.json().unwrap();
    assert_eq!(body["data"]["type"], "aggregation", "{body}");
    assert_eq!(body["data"]["expr"]["args"][0]["range"], 300000, "{body}");
    let r = c.get(format!("{base}/parse_query?query=sum(")).send().unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = c.get(format!("{base}/query_exemplars?query=up")).send().unwrap();
    let body: Value = r.json().unwrap();
    assert_eq!(body, serde_json::json!({"status": "success", "data": []}));
}

/// The browser suite needs Node.js, `npm ci --prefix web/e2e` (playwright-core) and Chromium;
/// `.ci/test` installs all three. Missing pieces fail the test with what to install.
#[test]
fn browser_suite_passes_against_a_running_server() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let suite = root.join("web/e2e/run.mjs");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        root.join("web/e2e/node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci --prefix web/e2e` (.ci/test does)"
    );
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: install Debian's chromium (.ci/test does)"
    );

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--web.route-prefix=/prom"]);
    let base = format!("http://{}/prom/", server.addr);
    // The embedded default's Watchdog alert must be firing in the Alertmanager first.
    let c = client();
    eventually(Duration::from_secs(90), || {
        let r = c
            .get(format!("{base}api/v2/alerts?filter=alertname%3D%22Watchdog%22"))
            .send()
            .ok()?;
        let alerts: Value = r.json().ok()?;
        (!alerts.as_array()?.is_empty()).then_some(())
    })
    .unwrap_or_else(|| panic!("Watchdog never reached the Alertmanager; log:\n{}", server.log()));
    // And a few scrapes stored, so the graph and the TSDB page have something to show.
    eventually(Duration::from_secs(90), || {
        let r = c
            .get(format!("{base}api/v1/query?query=min(count_over_time(up%5B5m%5D))"))
            .send()
            .ok()?;
        let body: Value = r.json().ok()?;
        let n: f64 = body["data"]["result"][0]["value"][1].as_str()?.parse().ok()?;
        (n >= 3.0).then_some(())
    })
    .unwrap_or_else(|| panic!("three scrapes never landed; log:\n{}", server.log()));

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(&suite)
        .env("WATCHFIRE_URL", &base)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .env("ALERT_NAME", "Watchdog")
        .output()
        .expect("node runs (install Node.js)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser suite failed ({}):\n{stdout}\n{stderr}\nserver log:\n{}",
        out.status,
        server.log()
    );
    assert!(stdout.contains("PASS"), "the suite reported no checks:\n{stdout}");
    println!("{stdout}\nscreenshots in {}", shots.display());
}
