//! The Prometheus HTTP API v1 as far as it exists: status endpoints, format_query, and the
//! series, labels and label-values endpoints over data the store kept across a restart.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::Value;
use watchfire_model::Labels;
use watchfire_storage::Appendable;

use crate::support::{Server, write};

fn get_json(url: &str) -> (StatusCode, Value) {
    let r = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .get(url)
        .send()
        .unwrap();
    let status = r.status();
    (status, r.json().unwrap())
}

/// Writes two series into a store at `dir/data` with the storage engine itself, then closes it.
fn seed_store(dir: &std::path::Path) {
    let db = watchfire_tsdb::Db::open(&dir.join("data"), watchfire_tsdb::Options::default()).unwrap();
    let mut app = db.appender();
    let up_a = Labels::from_pairs([("__name__", "up"), ("job", "node"), ("instance", "a:9100")]);
    let up_b = Labels::from_pairs([("__name__", "up"), ("job", "api"), ("instance", "b:8080")]);
    let load = Labels::from_pairs([("__name__", "node_load1"), ("job", "node"), ("instance", "a:9100")]);
    for (i, t) in (1_000_000..1_060_000).step_by(15_000).enumerate() {
        app.append(None, &up_a, t, 1.0).unwrap();
        app.append(None, &up_b, t, 0.0).unwrap();
        app.append(None, &load, t, i as f64 / 10.0).unwrap();
    }
    app.commit().unwrap();
    db.close().unwrap();
}

#[test]
fn series_labels_and_values_come_from_the_store_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    seed_store(dir.path());
    let server = Server::start(dir.path(), &[]);
    let base = format!("http://{}/api/v1", server.addr);

    let (code, body) = get_json(&format!("{base}/series?match[]=up"));
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "success");
    let series = body["data"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{body}");
    // Sorted by labels, as upstream returns them.
    assert_eq!(
        series[0],
        serde_json::json!({"__name__": "up", "instance": "a:9100", "job": "node"})
    );
    assert_eq!(series[1]["job"], "api");

    let (_, body) = get_json(&format!("{base}/series?match[]=up{{job=\"api\"}}&match[]=node_load1"));
    assert_eq!(body["data"].as_array().unwrap().len(), 2, "{body}");

    let (_, body) = get_json(&format!("{base}/labels"));
    assert_eq!(body["data"], serde_json::json!(["__name__", "instance", "job"]));

    let (_, body) = get_json(&format!("{base}/label/job/values"));
    assert_eq!(body["data"], serde_json::json!(["api", "node"]));
    let (_, body) = get_json(&format!("{base}/label/__name__/values?match[]={{job=\"api\"}}"));
    assert_eq!(body["data"], serde_json::json!(["up"]));
    let (_, body) = get_json(&format!("{base}/label/job/values?limit=1"));
    assert_eq!(body["data"], serde_json::json!(["api"]));
    assert_eq!(body["warnings"], serde_json::json!(["results truncated due to limit"]));

    // A time range before the data finds nothing.
    let (_, body) = get_json(&format!("{base}/series?match[]=up&start=0&end=10"));
    assert_eq!(body["data"], serde_json::json!([]), "{body}");

    let (_, body) = get_json(&format!("{base}/status/tsdb"));
    assert_eq!(body["data"]["headStats"]["numSeries"], 3, "{body}");

    let (_, metrics) = (
        0,
        reqwest::blocking::get(format!("http://{}/metrics", server.addr))
            .unwrap()
            .text()
            .unwrap(),
    );
    assert!(metrics.contains("prometheus_tsdb_head_series 3"), "{metrics}");
}

#[test]
fn bad_requests_get_upstream_error_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let base = format!("http://{}/api/v1", server.addr);
    for (path, fragment) in [
        ("/series", "no match[] parameter provided"),
        (
            "/series?match[]={job=~\".*\"}",
            "match[] must contain at least one non-empty matcher",
        ),
        ("/series?match[]=up{", "parse error"),
        (
            "/labels?start=yesterday",
            "invalid parameter \"start\": invalid time value for 'start': cannot parse \"yesterday\" to a valid timestamp",
        ),
        (
            "/query_exemplars?query=up&start=20&end=10",
            "end timestamp must not be before start timestamp",
        ),
        ("/status/tsdb?limit=0", "limit must be a positive number"),
        ("/format_query?query=sum(", "parse error"),
    ] {
        let (code, body) = get_json(&format!("{base}{path}"));
        assert_eq!(code, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["status"], "error", "{path}");
        assert_eq!(body["errorType"], "bad_data", "{path}");
        assert!(body["error"].as_str().unwrap().contains(fragment), "{path}: {body}");
    }
}

#[test]
fn status_endpoints_and_format_query() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "prometheus.yml",
        "scrape_configs:\n  - job_name: secured\n    basic_auth:\n      username: u\n      password: hunter2-secret\n    static_configs:\n      - targets: ['localhost:9100']\n",
    );
    let server = Server::start(dir.path(), &["--config.file=prometheus.yml"]);
    let base = format!("http://{}/api/v1", server.addr);

    let (_, body) = get_json(&format!("{base}/status/buildinfo"));
    let data = body["data"].as_object().unwrap();
    for key in ["version", "revision", "branch", "buildUser", "buildDate", "goVersion"] {
        assert!(data.contains_key(key), "{key} missing: {body}");
    }
    // Grafana treats a server whose buildinfo has `features` as something other than Prometheus.
    assert!(!data.contains_key("features"));

    let (_, body) = get_json(&format!("{base}/status/config"));
    let yaml = body["data"]["yaml"].as_str().unwrap();
    assert!(
        yaml.contains("job_name: secured") && yaml.contains("<secret>"),
        "{yaml}"
    );
    assert!(!yaml.contains("hunter2-secret"), "{yaml}");

    let (_, body) = get_json(&format!("{base}/status/flags"));
    assert_eq!(body["data"]["config.file"], "prometheus.yml");
    assert_eq!(body["data"]["storage.tsdb.path"], "data/");

    let (_, body) = get_json(&format!("{base}/status/runtimeinfo"));
    assert_eq!(body["data"]["reloadConfigSuccess"], true, "{body}");
    assert!(
        body["data"]["startTime"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{body}"
    );

    let (code, body) = get_json(&format!("{base}/format_query?query=sum(rate(x%5B5m%5D))by(job)"));
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["data"], "sum by (job) (rate(x[5m]))");
    let form = Client::new()
        .post(format!("{base}/format_query"))
        .form(&[("query", "foo  +  on(a)  bar")])
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    assert_eq!(form["data"], "foo + on (a) bar", "{form}");
}

#[test]
fn admin_api_needs_its_flag_then_deletes_cleans_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    seed_store(dir.path());
    {
        let server = Server::start(dir.path(), &[]);
        let r = Client::new()
            .post(format!("http://{}/api/v1/admin/tsdb/snapshot", server.addr))
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = r.json().unwrap();
        assert_eq!(body["errorType"], "unavailable");
        assert_eq!(body["error"], "admin APIs disabled");
    }
    let server = Server::start(dir.path(), &["--web.enable-admin-api"]);
    let base = format!("http://{}/api/v1", server.addr);
    let c = Client::new();

    let r = c.post(format!("{base}/admin/tsdb/delete_series")).send().unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "match[] is required");
    let r = c
        .post(format!("{base}/admin/tsdb/delete_series"))
        .form(&[("match[]", "up{job=\"api\"}")])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "{}", r.text().unwrap());
    let (_, body) = get_json(&format!("{base}/series?match[]=up"));
    assert_eq!(
        body["data"],
        serde_json::json!([{"__name__": "up", "instance": "a:9100", "job": "node"}]),
        "{body}"
    );

    let r = c.post(format!("{base}/admin/tsdb/clean_tombstones")).send().unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let r = c.post(format!("{base}/admin/tsdb/snapshot")).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().unwrap();
    let name = body["data"]["name"].as_str().unwrap().to_owned();
    assert!(
        dir.path().join("data/snapshots").join(&name).is_dir(),
        "snapshot {name} exists"
    );
    let r = c
        .post(format!("{base}/admin/tsdb/snapshot?skip_head=maybe"))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn grafana_health_probe_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let base = format!("http://{}/api/v1", server.addr);
    // Grafana's Prometheus data source first runs `1+1` as an instant query...
    let (code, body) = get_json(&format!("{base}/query?query=1%2B1&time=1700000000.5"));
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"status": "success", "data": {"resultType": "scalar", "result": [1700000000.5, "2"]}})
    );
    // ...then reads buildinfo to learn the version.
    let (code, body) = get_json(&format!("{base}/status/buildinfo"));
    assert_eq!(code, StatusCode::OK);
    assert!(body["data"]["version"].is_string());
}

#[test]
fn instant_and_range_queries_over_stored_data() {
    let dir = tempfile::tempdir().unwrap();
    seed_store(dir.path());
    let server = Server::start(dir.path(), &[]);
    let base = format!("http://{}/api/v1", server.addr);

    let (code, body) = get_json(&format!("{base}/query?query=up&time=1045"));
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"],
        serde_json::json!({"resultType": "vector", "result": [
            {"metric": {"__name__": "up", "instance": "a:9100", "job": "node"}, "value": [1045, "1"]},
            {"metric": {"__name__": "up", "instance": "b:8080", "job": "api"}, "value": [1045, "0"]},
        ]}),
        "{body}"
    );

    let (_, body) = get_json(&format!(
        "{base}/query_range?query=sum(node_load1)&start=1000&end=1045&step=15"
    ));
    assert_eq!(
        body["data"],
        serde_json::json!({"resultType": "matrix", "result": [
            {"metric": {}, "values": [[1000, "0"], [1015, "0.1"], [1030, "0.2"], [1045, "0.3"]]},
        ]}),
        "{body}"
    );

    // rate() over something that is not named like a counter raises upstream's info, with
    // the position of the selector.
    let (_, body) = get_json(&format!("{base}/query?query=rate(node_load1%5B1m%5D)&time=1045"));
    let infos = body["infos"].as_array().expect("infos present");
    assert!(
        infos[0]
            .as_str()
            .unwrap()
            .starts_with("PromQL info: metric might not be a counter")
            && infos[0].as_str().unwrap().ends_with("(1:6)"),
        "{body}"
    );

    for (query, fragment) in [
        ("query=sum(&time=1", "invalid parameter \"query\": 1:5: parse error"),
        ("query=up&time=soon", "invalid parameter \"time\""),
    ] {
        let (code, body) = get_json(&format!("{base}/query?{query}"));
        assert_eq!(code, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body["error"].as_str().unwrap().contains(fragment), "{query}: {body}");
    }
    for (query, fragment) in [
        (
            "query=up&start=10&end=20&step=0",
            "zero or negative query resolution step",
        ),
        (
            "query=up&start=0&end=100000&step=1",
            "exceeded maximum resolution of 11,000 points per timeseries",
        ),
        (
            "query=up&start=20&end=10&step=1",
            "end timestamp must not be before start time",
        ),
        ("query=up&end=10&step=1", "invalid parameter \"start\""),
    ] {
        let (code, body) = get_json(&format!("{base}/query_range?{query}"));
        assert_eq!(code, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body["error"].as_str().unwrap().contains(fragment), "{query}: {body}");
    }
    // A query evaluation error is `execution` (422), as upstream.
    let (code, body) = get_json(&format!(
        "{base}/query?query=up%20%2B%20on()%20group_left%20up&time=1045"
    ));
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errorType"], "execution");
}

/// The real promtool (Debian's prometheus package, installed by `bash .ci/test`) as a client.
#[test]
fn promtool_queries_work_against_watchfire() {
    let dir = tempfile::tempdir().unwrap();
    seed_store(dir.path());
    let server = Server::start(dir.path(), &[]);
    let url = format!("http://{}", server.addr);
    let promtool = |args: &[&str]| {
        let out = std::process::Command::new("promtool")
            .args(args)
            .output()
            .expect("promtool runs: `bash .ci/test` installs Debian's prometheus package");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "promtool {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let out = promtool(&["query", "instant", "--time=1045", &url, "up{job=\"node\"}"]);
    assert!(out.contains("job=\"node\"") && out.contains("=> 1 @[1045]"), "{out}");
    let out = promtool(&[
        "query",
        "range",
        "--start=1000",
        "--end=1045",
        "--step=15s",
        &url,
        "sum(node_load1)",
    ]);
    assert!(out.contains("0.1 @[1015]") && out.contains("0.3 @[1045]"), "{out}");
    // promtool defaults series and label queries to a window around now; the data is at ~1000 s.
    let out = promtool(&["query", "series", "--match=up", "--start=0", "--end=2000", &url]);
    assert!(
        out.contains("instance=\"a:9100\"") && out.contains("instance=\"b:8080\""),
        "{out}"
    );
    let out = promtool(&["query", "labels", "--start=0", "--end=2000", &url, "job"]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["api", "node"], "{out}");
}
