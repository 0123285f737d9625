//! The web UI as the server delivers it: page routes, the base URL under a route prefix,
//! pre-gzipped assets, gzip and CORS on the API, `parse_query`; and the browser suite
//! (`web/e2e/run.mjs`, headless Chromium through playwright-core) against a running server.

use std::io::Read as _;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::Value;

use crate::support::Server;

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
