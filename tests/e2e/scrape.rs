//! Data in through scraping: the binary scrapes its own /metrics, found through file-based
//! discovery, and serves the samples through the query, targets and metadata APIs.

use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::Value;

use crate::support::{Server, eventually, write};

fn get_json(url: &str) -> Value {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .get(url)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn scrapes_itself_through_file_discovery_and_serves_the_samples() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "prometheus.yml",
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    file_sd_configs:\n      - files: ['targets/*.json']\n        refresh_interval: 1s\n",
    );
    std::fs::create_dir(dir.path().join("targets")).unwrap();
    let server = Server::start(dir.path(), &["--config.file=prometheus.yml"]);
    let base = format!("http://{}/api/v1", server.addr);
    // The port is known only now, so the target appears through discovery after the start.
    write(
        &dir.path().join("targets"),
        "self.json",
        &format!(r#"[{{"targets": ["{}"], "labels": {{"env": "test"}}}}]"#, server.addr),
    );

    let up = eventually(Duration::from_secs(40), || {
        let body = get_json(&format!("{base}/query?query=up"));
        let result = body["data"]["result"].as_array()?.first()?.clone();
        (result["value"][1] == "1").then_some(result)
    })
    .unwrap_or_else(|| panic!("no up=1 sample within 40s; log:\n{}", server.log()));
    assert_eq!(up["metric"]["job"], "self");
    assert_eq!(up["metric"]["env"], "test");
    assert_eq!(up["metric"]["instance"], server.addr.as_str());

    // The scraped series and the synthetic ones are stored.
    let body = get_json(&format!(
        "{base}/query?query=prometheus_build_info%7Bjob%3D%22self%22%7D"
    ));
    assert_eq!(body["data"]["result"][0]["value"][1], "1", "{body}");
    for synthetic in [
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ] {
        let body = get_json(&format!("{base}/query?query={synthetic}"));
        assert_eq!(
            body["data"]["result"].as_array().map(Vec::len),
            Some(1),
            "{synthetic}: {body}"
        );
    }

    let body = get_json(&format!("{base}/targets"));
    let active = &body["data"]["activeTargets"][0];
    assert_eq!(active["health"], "up", "{body}");
    assert_eq!(active["scrapePool"], "self");
    assert_eq!(active["scrapeUrl"], format!("http://{}/metrics", server.addr));
    assert_eq!(active["labels"]["env"], "test");
    assert_eq!(active["scrapeInterval"], "1s");
    assert!(
        active["discoveredLabels"]["__meta_filepath"]
            .as_str()
            .is_some_and(|p| p.ends_with("self.json")),
        "{body}"
    );
    let body = get_json(&format!("{base}/scrape_pools"));
    assert_eq!(body["data"]["scrapePools"], serde_json::json!(["self"]));

    let body = get_json(&format!("{base}/metadata?metric=prometheus_build_info"));
    assert_eq!(body["data"]["prometheus_build_info"][0]["type"], "gauge", "{body}");
    let body = get_json(&format!(
        "{base}/targets/metadata?match_target=%7Bjob%3D%22self%22%7D&metric=process_cpu_seconds_total"
    ));
    assert_eq!(body["data"][0]["type"], "counter", "{body}");
    assert_eq!(body["data"][0]["target"]["job"], "self");

    // A discovery update that removes the target stops scraping it: up goes stale.
    write(&dir.path().join("targets"), "self.json", "[]");
    let gone = eventually(Duration::from_secs(40), || {
        let body = get_json(&format!("{base}/query?query=up"));
        body["data"]["result"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    });
    assert!(
        gone.is_some(),
        "up did not go stale after the target was removed; log:\n{}",
        server.log()
    );
}

#[test]
fn with_no_arguments_it_watches_itself_and_its_host() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let base = format!("http://{}/api/v1", server.addr);

    let text = Client::new()
        .get(format!("http://{}/metrics/host", server.addr))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(text.contains("# TYPE node_memory_MemAvailable_bytes gauge"), "{text}");
    assert!(
        text.contains("node_scrape_collector_success{collector=\"meminfo\"} 1"),
        "{text}"
    );

    // The embedded default scrapes /metrics and /metrics/host every 15 s.
    let mem = eventually(Duration::from_secs(60), || {
        let body = get_json(&format!("{base}/query?query=node_memory_MemAvailable_bytes"));
        let r = body["data"]["result"].as_array()?.first()?.clone();
        (r["metric"]["job"] == "node").then_some(r)
    })
    .unwrap_or_else(|| panic!("no node_memory_MemAvailable_bytes within 60s; log:\n{}", server.log()));
    let bytes: f64 = mem["value"][1].as_str().unwrap().parse().unwrap();
    assert!(bytes > 0.0, "{mem}");
    let up = eventually(Duration::from_secs(30), || {
        let body = get_json(&format!("{base}/query?query=up%7Bjob%3D%22watchfire%22%7D"));
        let r = body["data"]["result"].as_array()?.first()?.clone();
        (r["value"][1] == "1").then_some(r)
    });
    assert!(
        up.is_some(),
        "Watchfire scrapes its own /metrics; log:\n{}",
        server.log()
    );
}

/// A tiny exporter on 127.0.0.1 that serves one gauge to any request (bounded).
fn tiny_exporter() -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(200).flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let body = "# TYPE tiny_gauge gauge\ntiny_gauge 42\n";
            let _ = write!(
                reader.get_mut(),
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// Regression (found by the comparison harness, issue 11): target sets published by discovery
/// before scraping subscribed were never applied, so static targets could be missed at start.
#[test]
fn static_targets_are_scraped_from_the_start_issue_11() {
    for _ in 0..3 {
        let exporter = tiny_exporter();
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "prometheus.yml",
            &format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tiny\n    static_configs:\n      - targets: ['{exporter}']\n"
            ),
        );
        let server = Server::start(dir.path(), &["--config.file=prometheus.yml"]);
        let base = format!("http://{}/api/v1", server.addr);
        let got = eventually(Duration::from_secs(20), || {
            let body = get_json(&format!("{base}/query?query=tiny_gauge"));
            let r = body["data"]["result"].as_array()?.first()?.clone();
            (r["value"][1] == "42").then_some(())
        });
        assert!(
            got.is_some(),
            "the static target was never scraped; log:\n{}",
            server.log()
        );
    }
}
