//! Discovery end to end: the manager running file and HTTP providers against real files and
//! a local HTTP server. Every wait is bounded by a deadline.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use watchfire_config::prometheus::Config;
use watchfire_discovery::{Manager, Options, TargetSets};

const DEADLINE: Duration = Duration::from_secs(10);

fn config(src: &str) -> Config {
    Config::parse(src, "prometheus.yml".as_ref()).unwrap()
}

fn options(dir: &std::path::Path) -> Options {
    Options {
        update_interval: Duration::from_millis(50),
        file_poll_interval: Duration::from_millis(50),
        config_dir: dir.to_path_buf(),
        ..Options::default()
    }
}

/// Waits until the published sets satisfy `ok`, or fails after the deadline.
async fn wait_for(rx: &mut watch::Receiver<Arc<TargetSets>>, what: &str, ok: impl Fn(&TargetSets) -> bool) {
    let end = Instant::now() + DEADLINE;
    loop {
        if ok(&rx.borrow_and_update()) {
            return;
        }
        let left = end.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out waiting for {what}; last: {:?}", rx.borrow());
        let _ = tokio::time::timeout(left, rx.changed()).await;
    }
}

fn addresses(sets: &TargetSets, job: &str) -> Vec<String> {
    let mut out: Vec<String> = sets
        .get(job)
        .into_iter()
        .flatten()
        .flat_map(|g| g.targets.iter().map(|t| t.get("__address__").unwrap_or("").to_owned()))
        .collect();
    out.sort();
    out
}

fn metric_value(registry: &prometheus::Registry, name: &str) -> f64 {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sd_follows_edits_without_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.json");
    std::fs::write(&file, r#"[{"targets": ["a:1"], "labels": {"env": "prod"}}]"#).unwrap();
    let registry = prometheus::Registry::new();
    let manager = Manager::new(&registry, options(dir.path())).unwrap();
    let mut rx = manager.subscribe();
    // Relative paths are relative to the config directory; globs in the last element.
    manager.apply_config(&config(
        "scrape_configs:\n- job_name: files\n  file_sd_configs:\n  - files: ['*.json', 'sub/*.yml']\n- job_name: empty\n",
    ));
    wait_for(&mut rx, "first file", |s| addresses(s, "files") == ["a:1"]).await;
    {
        let sets = rx.borrow();
        let g = &sets["files"][0];
        assert_eq!(g.labels.get("__meta_filepath"), Some(file.to_str().unwrap()));
        assert_eq!(g.labels.get("env"), Some("prod"));
        assert_eq!(g.source, format!("{}:0", file.display()));
        // A job without discovery is present with no groups.
        assert_eq!(sets.get("empty"), Some(&Vec::new()));
    }

    // Editing adds and removes targets.
    std::fs::write(&file, r#"[{"targets": ["b:2", "c:3"]}]"#).unwrap();
    wait_for(&mut rx, "edited file", |s| addresses(s, "files") == ["b:2", "c:3"]).await;

    // A new file matching a glob adds its targets (YAML this time).
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(
        dir.path().join("sub/more.yml"),
        "- targets: ['d:4']\n  labels: {x: y}\n",
    )
    .unwrap();
    wait_for(&mut rx, "new yaml file", |s| {
        addresses(s, "files") == ["b:2", "c:3", "d:4"]
    })
    .await;

    // A broken file keeps its last good groups and counts a read error.
    std::fs::write(&file, "[{\"targets\": [").unwrap();
    let end = Instant::now() + DEADLINE;
    while metric_value(&registry, "prometheus_sd_file_read_errors_total") < 1.0 {
        assert!(Instant::now() < end, "read error never counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(addresses(&rx.borrow(), "files"), ["b:2", "c:3", "d:4"]);

    // Deleting a file removes its targets.
    std::fs::remove_file(dir.path().join("sub/more.yml")).unwrap();
    wait_for(&mut rx, "deleted file", |s| addresses(s, "files") == ["b:2", "c:3"]).await;
    assert_eq!(
        metric_value(&registry, "prometheus_sd_discovered_targets{config=\"files\""),
        2.0
    );

    // A reload without the job removes it; other jobs stay.
    manager.apply_config(&config("scrape_configs:\n- job_name: empty\n"));
    wait_for(&mut rx, "job removed", |s| {
        !s.contains_key("files") && s.contains_key("empty")
    })
    .await;
    manager.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sd_fetches_with_auth_and_keeps_groups_on_failure() {
    #[derive(Clone)]
    struct Served {
        status: u16,
        body: String,
        seen_auth: Vec<String>,
    }
    let served = Arc::new(Mutex::new(Served {
        status: 200,
        body: r#"[{"targets": ["h:1"], "labels": {"k": "v"}}]"#.into(),
        seen_auth: Vec::new(),
    }));
    let state = served.clone();
    let app = axum::Router::new().route(
        "/sd",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let state = state.clone();
            async move {
                let mut s = state.lock().unwrap();
                if let Some(a) = headers.get("authorization") {
                    s.seen_auth.push(a.to_str().unwrap().to_owned());
                }
                let status = axum::http::StatusCode::from_u16(s.status).unwrap();
                (status, [("content-type", "application/json")], s.body.clone())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "s3cret\n").unwrap();
    let registry = prometheus::Registry::new();
    let manager = Manager::new(&registry, options(dir.path())).unwrap();
    let mut rx = manager.subscribe();
    manager.apply_config(&config(&format!(
        "scrape_configs:\n- job_name: web\n  static_configs: [{{targets: ['s:9']}}]\n  http_sd_configs:\n  - url: http://{addr}/sd\n    refresh_interval: 100ms\n    authorization: {{credentials_file: token}}\n"
    )));
    wait_for(&mut rx, "http groups", |s| addresses(s, "web") == ["h:1", "s:9"]).await;
    {
        let sets = rx.borrow();
        let g = sets["web"].iter().find(|g| g.source.ends_with("/sd:0")).unwrap();
        assert_eq!(g.labels.get("__meta_url"), Some(format!("http://{addr}/sd").as_str()));
        assert_eq!(g.labels.get("k"), Some("v"));
    }
    assert_eq!(served.lock().unwrap().seen_auth[0], "Bearer s3cret");

    // Failures keep the last groups and are counted.
    served.lock().unwrap().status = 500;
    let end = Instant::now() + DEADLINE;
    while metric_value(&registry, "prometheus_sd_http_failures_total") < 2.0 {
        assert!(Instant::now() < end, "failures never counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(addresses(&rx.borrow(), "web"), ["h:1", "s:9"]);
    // A wrong content type is a failure too; then recovery replaces the groups.
    {
        let mut s = served.lock().unwrap();
        s.status = 200;
        s.body = r#"[{"targets": ["h:2"]}, {"targets": ["h:3"]}]"#.into();
    }
    wait_for(&mut rx, "recovered groups", |s| {
        addresses(s, "web") == ["h:2", "h:3", "s:9"]
    })
    .await;
    manager.stop();
    server.abort();
}
