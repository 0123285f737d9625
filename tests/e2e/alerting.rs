//! The built-in Alertmanager behind the binary: the real amtool as a client, grouping into a
//! webhook delivery, alerting rules feeding it, and alerts and silences surviving a restart.

use std::process::Command;
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::Value;

use crate::support::{Server, eventually, read_request, write};

/// A webhook receiver on 127.0.0.1: answers every request 200 and hands the bodies over.
fn webhook_receiver() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Bounded: a handful of notifications at most in this test.
        for stream in listener.incoming().take(20).flatten() {
            let mut reader = BufReader::new(stream);
            let (_, body) = read_request(&mut reader);
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
        }
    });
    (url, rx)
}

fn am_config(webhook: &str) -> String {
    format!(
        "route:\n  receiver: team\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1m\nreceivers:\n  - name: team\n    webhook_configs:\n      - url: {webhook}\n"
    )
}

fn amtool(url: &str, args: &[&str]) -> String {
    let out = Command::new("amtool")
        .arg(format!("--alertmanager.url={url}"))
        .args(args)
        .output()
        .expect("amtool runs: `bash .ci/test` installs Debian's prometheus-alertmanager package");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "amtool {args:?}: {text}");
    text
}

/// amtool's standard output alone (for machine-readable output; warnings go to stderr).
fn amtool_stdout(url: &str, args: &[&str]) -> String {
    let out = Command::new("amtool")
        .arg(format!("--alertmanager.url={url}"))
        .args(args)
        .output()
        .expect("amtool runs");
    assert!(
        out.status.success(),
        "amtool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn get_json(url: &str) -> Value {
    Client::new().get(url).send().unwrap().json().unwrap()
}

#[test]
fn amtool_alerts_group_into_a_recorded_notification_and_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (webhook, deliveries) = webhook_receiver();
    write(dir.path(), "am.yml", &am_config(&webhook));
    // An explicit, empty Prometheus config: no default rules (their Watchdog alert would reach
    // the webhook too).
    write(dir.path(), "prometheus.yml", "global:\n  scrape_interval: 1h\n");
    let args = ["--alertmanager.config.file=am.yml", "--config.file=prometheus.yml"];
    let silence_id;
    {
        let server = Server::start(dir.path(), &args);
        let url = format!("http://{}", server.addr);
        amtool(
            &url,
            &[
                "alert",
                "add",
                "alertname=DiskFull",
                "severity=page",
                "--annotation=summary=disk is full",
            ],
        );
        let out = amtool(&url, &["alert", "query"]);
        assert!(out.contains("DiskFull"), "{out}");

        // group_wait is 1s: the group is delivered to the webhook as Alertmanager's version 4
        // payload, and recorded in the notification history.
        let body = deliveries
            .recv_timeout(Duration::from_secs(20))
            .expect("the webhook receives the notification");
        let payload: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(payload["version"], "4", "{payload}");
        assert_eq!(payload["receiver"], "team");
        assert_eq!(payload["status"], "firing");
        assert_eq!(payload["groupLabels"]["alertname"], "DiskFull");
        assert_eq!(
            payload["alerts"][0]["annotations"]["summary"], "disk is full",
            "{payload}"
        );
        let entry = eventually(Duration::from_secs(10), || {
            let list = get_json(&format!("{url}/api/watchfire/notifications?receiver=team"));
            list.as_array()?.first().cloned()
        })
        .expect("the notification is in the history");
        assert_eq!(entry["groupLabels"]["alertname"], "DiskFull", "{entry}");

        // amtool prints the new silence's ID (and may warn about versions on stderr).
        let out = amtool(
            &url,
            &[
                "silence",
                "add",
                "alertname=Other",
                "--comment=maintenance",
                "--duration=2h",
            ],
        );
        silence_id = out.split_whitespace().next().unwrap_or_default().to_owned();
        assert_eq!(silence_id.len(), 36, "a UUID: {out}");
        let status = get_json(&format!("{url}/api/v2/status"));
        assert!(
            status["config"]["original"]
                .as_str()
                .unwrap()
                .contains("receiver: team"),
            "{status}"
        );
    }
    // After a restart on the same data directory the alert and the silence are still there.
    let server = Server::start(dir.path(), &args);
    let url = format!("http://{}", server.addr);
    // (The embedded default's rules may have sent their Watchdog alert by now as well.)
    let alerts = get_json(&format!("{url}/api/v2/alerts?filter=alertname%3D%22DiskFull%22"));
    assert_eq!(alerts[0]["labels"]["alertname"], "DiskFull", "{alerts}");
    let out = amtool(&url, &["silence", "query"]);
    assert!(out.contains(&silence_id) && out.contains("maintenance"), "{out}");
}

#[test]
fn alerting_rules_fire_into_the_built_in_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "prometheus.yml",
        "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\n",
    );
    write(
        dir.path(),
        "rules.yml",
        "groups:\n  - name: always\n    rules:\n      - record: job:one:sum\n        expr: vector(1)\n      - alert: Watchdog\n        expr: vector(1)\n        labels:\n          severity: none\n        annotations:\n          summary: 'always firing, value {{ $value }}'\n",
    );
    let server = Server::start(dir.path(), &["--config.file=prometheus.yml"]);
    let url = format!("http://{}", server.addr);
    let firing = eventually(Duration::from_secs(30), || {
        let body = get_json(&format!("{url}/api/v1/alerts"));
        let a = body["data"]["alerts"].as_array()?.first()?.clone();
        (a["state"] == "firing").then_some(a)
    })
    .unwrap_or_else(|| panic!("Watchdog did not fire; log:\n{}", server.log()));
    assert_eq!(firing["labels"]["alertname"], "Watchdog");
    assert_eq!(firing["annotations"]["summary"], "always firing, value 1");
    let rules = get_json(&format!("{url}/api/v1/rules"));
    assert_eq!(rules["data"]["groups"][0]["name"], "always", "{rules}");
    assert_eq!(rules["data"]["groups"][0]["rules"][1]["health"], "ok", "{rules}");
    // Sent in process to the built-in Alertmanager...
    let am = eventually(Duration::from_secs(30), || {
        let list = get_json(&format!("{url}/api/v2/alerts"));
        list.as_array()?.first().cloned()
    })
    .expect("the alert reaches /api/v2/alerts");
    assert_eq!(am["labels"]["alertname"], "Watchdog", "{am}");
    // ...and the recording rule's output is queryable.
    let rec = eventually(Duration::from_secs(30), || {
        let body = get_json(&format!("{url}/api/v1/query?query=job:one:sum"));
        body["data"]["result"].as_array()?.first().cloned()
    })
    .expect("the recorded series is stored");
    assert_eq!(rec["value"][1], "1");
}

/// A routing tree with continue, nesting, both matcher syntaxes, negative and regex matchers.
const ROUTING_CONFIG: &str = r#"route:
  receiver: default
  group_by: [alertname]
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      continue: true
      routes:
        - matchers: ['team=~"db|storage"']
          receiver: db-pager
    - match: {service: web}
      receiver: web
      routes:
        - match_re: {env: "prod|staging"}
          receiver: web-prod
        - matchers: ['env!="dev"', 'region=~"eu-.*"']
          receiver: web-eu
    - matchers: ['severity=~"warn.*"', 'service!~"web|api"']
      receiver: warnings
      continue: true
    - matchers: ['alertname="Watchdog"']
      receiver: deadman
    - matchers: ['team!=""']
      receiver: catchall-team
receivers:
  - name: default
  - name: pager
  - name: db-pager
  - name: web
  - name: web-prod
  - name: web-eu
  - name: warnings
  - name: deadman
  - name: catchall-team
"#;

#[test]
fn routes_test_agrees_with_amtool() {
    let dir = tempfile::tempdir().unwrap();
    let am = write(dir.path(), "am.yml", ROUTING_CONFIG);
    let am = am.to_str().unwrap();
    let cases: &[&[&str]] = &[
        &[],
        &["alertname=Foo"],
        &["severity=critical"],
        &["severity=critical", "team=db"],
        &["severity=critical", "team=storage", "service=web", "env=prod"],
        &["service=web"],
        &["service=web", "env=staging"],
        &["service=web", "env=qa", "region=eu-west"],
        &["service=web", "env=dev", "region=eu-west"],
        &["severity=warning", "service=db"],
        &["severity=warning", "service=api", "team=x"],
        &["severity=warning", "alertname=Watchdog"],
        &["alertname=Watchdog"],
        &["team=ops"],
        &["team="],
        &["severity=critical", "alertname=Watchdog", "team=net"],
    ];
    let mut ours_all = Vec::new();
    for labels in cases {
        let mut args = vec!["routes", "test", "--alertmanager.config.file", am];
        args.extend_from_slice(labels);
        let (code, ours, err) = crate::support::run(&args);
        assert_eq!(code, 0, "{labels:?}: {err}");
        let out = Command::new("amtool")
            .args(["config", "routes", "test", "--config.file", am])
            .args(labels.iter())
            .output()
            .expect("amtool runs: `bash .ci/test` installs Debian's prometheus-alertmanager package");
        let theirs = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "amtool {labels:?}: {theirs}");
        assert_eq!(ours.trim(), theirs.trim(), "routing of {labels:?}");
        ours_all.push(ours);
    }
    // Not a degenerate table: most receivers are reached, some alerts reach two.
    assert!(ours_all.iter().any(|o| o.contains(',')));
    assert!(ours_all.iter().filter(|o| o.trim() == "default").count() < cases.len() / 2);
    let (code, out, _) = crate::support::run(&[
        "routes",
        "test",
        "--alertmanager.config.file",
        am,
        "--verify.receivers=web",
        "service=web",
        "env=prod",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("WARNING: Expected receivers did not match"), "{out}");

    // (amtool can also read the routing tree from a running server's /api/v2/status, but
    // Debian's amtool 0.25 cannot parse the fields current Alertmanager versions print there,
    // such as the receivers' `labels` and `global.smtp_tls_config`, which Watchfire prints
    // as current Alertmanager does; so that path is not compared here.)
}

#[test]
fn amtool_silences_expire_and_import() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "am.yml", ROUTING_CONFIG);
    let server = Server::start(dir.path(), &["--alertmanager.config.file=am.yml"]);
    let url = format!("http://{}", server.addr);
    for (m, comment) in [("alertname=A", "first"), ("team=~db|net", "second")] {
        amtool(
            &url,
            &["silence", "add", m, &format!("--comment={comment}"), "--duration=1h"],
        );
    }
    let exported = amtool_stdout(&url, &["silence", "query", "-o", "json"]);
    let silences: Value = serde_json::from_str(&exported).unwrap_or_else(|e| panic!("{e}: {exported}"));
    assert_eq!(silences.as_array().unwrap().len(), 2, "{exported}");
    let file = write(dir.path(), "silences.json", &silences.to_string());

    // Expire both by ID; then `silence import` re-creates them from the export.
    let ids = amtool_stdout(&url, &["silence", "query", "-q"]);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let mut args = vec!["silence", "expire"];
    args.extend(&ids);
    amtool(&url, &args);
    assert_eq!(amtool_stdout(&url, &["silence", "query", "-q"]).trim(), "");
    let expired = amtool_stdout(&url, &["silence", "query", "--expired", "-q"]);
    assert_eq!(expired.split_whitespace().count(), 2, "{expired}");

    amtool(&url, &["silence", "import", file.to_str().unwrap()]);
    let active = get_json(&format!("{url}/api/v2/silences"));
    let mut comments: Vec<String> = active
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"]["state"] == "active")
        .map(|s| {
            assert!(!ids.contains(&s["id"].as_str().unwrap()), "import creates new IDs: {s}");
            s["comment"].as_str().unwrap().to_owned()
        })
        .collect();
    comments.sort();
    assert_eq!(comments, ["first", "second"], "{active}");
}

/// One request the failure-injection server saw.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    at: std::time::Instant,
    status: u16,
    /// For `/hung`: when the client gave up (closed the connection) without an answer.
    abandoned_at: Option<std::time::Instant>,
}

/// A webhook server on 127.0.0.1 whose answer depends on the path: `/ok` answers 200, `/bad`
/// 400, `/flaky` 503 the first time and 200 after, and `/hung` never answers (it holds the
/// connection for up to 60 s and notes when the client closes it).
fn failure_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Seen>>>) {
    use std::io::{BufReader, Read, Write};
    use std::sync::{Arc, Mutex};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        // Bounded: a few dozen requests at most in this test.
        for stream in listener.incoming().take(60).flatten() {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let (path, _) = read_request(&mut reader);
                let at = std::time::Instant::now();
                let status = {
                    let mut l = log.lock().unwrap();
                    let status = match path.as_str() {
                        "/ok" => 200,
                        "/bad" => 400,
                        "/flaky" if !l.iter().any(|s| s.path == "/flaky") => 503,
                        "/flaky" => 200,
                        _ => 0,
                    };
                    l.push(Seen {
                        path: path.clone(),
                        at,
                        status,
                        abandoned_at: None,
                    });
                    status
                };
                if status == 0 {
                    // Hold the request unanswered until the client hangs up (bounded).
                    let stream = reader.get_mut();
                    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                    let mut buf = [0u8; 64];
                    while at.elapsed() < Duration::from_secs(60) {
                        match stream.read(&mut buf) {
                            Ok(0) => {
                                let mut l = log.lock().unwrap();
                                if let Some(s) = l.iter_mut().find(|s| s.path == path && s.at == at) {
                                    s.abandoned_at = Some(std::time::Instant::now());
                                }
                                return;
                            }
                            Ok(_) => {}
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) => {}
                            Err(_) => return,
                        }
                    }
                    return;
                }
                let reason = match status {
                    200 => "OK",
                    400 => "Bad Request",
                    _ => "Service Unavailable",
                };
                let answer = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = reader.get_mut().write_all(answer.as_bytes());
            });
        }
    });
    (base, seen)
}

/// The value of `name{labels...}` in exposition text, the given labels all matching.
fn labelled(exposition: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    exposition.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix('{')?;
        let (labels, value) = rest.split_once("} ")?;
        want.iter()
            .all(|(k, v)| labels.split(',').any(|p| p == format!("{k}=\"{v}\"")))
            .then(|| value.trim().parse().ok())?
    })
}

fn history(url: &str, receiver: &str) -> Vec<Value> {
    get_json(&format!("{url}/api/watchfire/notifications?receiver={receiver}"))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The issue's failure injection, through the dispatcher of the running binary over real HTTP:
/// a 503 followed by a 200 delivers exactly once with the retry counted, a 400 is not retried
/// and counts as a failed notification, and a receiver that never answers times out without
/// delaying another receiver's notification of the same group.
#[test]
fn failing_receivers_are_retried_refused_and_timed_out_independently() {
    let dir = tempfile::tempdir().unwrap();
    let (base, seen) = failure_server();
    write(
        dir.path(),
        "am.yml",
        &format!(
            "route:
  receiver: ok
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1m
  routes:
    - matchers: ['alertname=\"Flaky\"']
      receiver: flaky
    - matchers: ['alertname=\"Bad\"']
      receiver: bad
    - matchers: ['alertname=\"Slow\"']
      receiver: hung
      group_interval: 12s
      continue: true
    - matchers: ['alertname=\"Slow\"']
      receiver: ok
receivers:
  - name: ok
    webhook_configs: [{{url: '{base}/ok'}}]
  - name: flaky
    webhook_configs: [{{url: '{base}/flaky'}}]
  - name: bad
    webhook_configs: [{{url: '{base}/bad'}}]
  - name: hung
    slack_configs: [{{api_url: '{base}/hung', channel: '#ops', timeout: 3s}}]
"
        ),
    );
    write(dir.path(), "prometheus.yml", "global:\n  scrape_interval: 1h\n");
    let server = Server::start(
        dir.path(),
        &["--alertmanager.config.file=am.yml", "--config.file=prometheus.yml"],
    );
    let url = format!("http://{}", server.addr);
    let alerts = serde_json::json!([
        {"labels": {"alertname": "Flaky", "severity": "page"}},
        {"labels": {"alertname": "Bad", "severity": "page"}},
        {"labels": {"alertname": "Slow", "severity": "page"}},
    ]);
    let resp = Client::new()
        .post(format!("{url}/api/v2/alerts"))
        .json(&alerts)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap_or_default());
    let requests = |path: &str| -> Vec<Seen> {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    };

    // A receiver that never answers does not hold up another receiver of the same group:
    // both are flushed after group_wait, and `ok` is answered long before `hung` times out.
    let hung = eventually(Duration::from_secs(20), || requests("/hung").into_iter().next())
        .expect("the hung receiver is called");
    let ok = eventually(Duration::from_secs(20), || requests("/ok").into_iter().next())
        .expect("the other receiver of the group is called");
    let apart = if ok.at > hung.at {
        ok.at - hung.at
    } else {
        hung.at - ok.at
    };
    assert!(apart < Duration::from_millis(1500), "ok and hung were {apart:?} apart");
    assert_eq!(ok.status, 200);
    // The hung request is abandoned by Watchfire at its 3 s timeout, and retried.
    let abandoned = eventually(Duration::from_secs(15), || requests("/hung")[0].abandoned_at)
        .expect("Watchfire gives up on the hung request");
    let waited = abandoned - hung.at;
    assert!(
        waited >= Duration::from_millis(2500) && waited < Duration::from_secs(8),
        "the 3 s timeout ended the request after {waited:?}"
    );
    assert!(
        eventually(Duration::from_secs(10), || (requests("/hung").len() >= 2).then_some(())).is_some(),
        "a timed-out request is retried"
    );

    // 503 then 200: two requests, one delivered notification, the retry in the history.
    let entry = eventually(Duration::from_secs(20), || history(&url, "flaky").first().cloned())
        .expect("the flaky receiver's notification is in the history");
    assert_eq!(entry["outcome"]["status"], "sent", "{entry}");
    assert_eq!(entry["attempts"], 2, "{entry}");
    let flaky: Vec<u16> = requests("/flaky").iter().map(|s| s.status).collect();
    assert_eq!(flaky, [503, 200]);

    // 400: one request, no retry, a failed notification.
    let entry = eventually(Duration::from_secs(20), || history(&url, "bad").first().cloned())
        .expect("the bad receiver's failure is in the history");
    assert_eq!(entry["outcome"]["status"], "failed", "{entry}");
    assert!(entry["outcome"]["error"].as_str().unwrap().contains("400"), "{entry}");
    assert_eq!(entry["attempts"], 1, "{entry}");

    // The hung receiver fails for good when its group_interval (12 s) runs out.
    let entry = eventually(Duration::from_secs(30), || history(&url, "hung").first().cloned())
        .expect("the hung receiver's failure is in the history");
    assert_eq!(entry["outcome"]["status"], "failed", "{entry}");
    assert!(entry["attempts"].as_u64().unwrap() >= 2, "{entry}");
    assert_eq!(history(&url, "ok").len(), 1);

    // Nothing more arrives afterwards: the 200 was delivered once and the 400 not retried.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(requests("/flaky").len(), 2);
    assert_eq!(requests("/bad").len(), 1);
    assert_eq!(requests("/ok").len(), 1);

    let metrics = Client::new()
        .get(format!("{url}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let webhook = [("integration", "webhook")];
    let value = |name: &str, labels: &[(&str, &str)]| {
        labelled(&metrics, name, labels).unwrap_or_else(|| panic!("{name}{labels:?} in /metrics"))
    };
    let failed = |integration: &str| -> f64 {
        [
            "other",
            "clientError",
            "serverError",
            "contextCanceled",
            "contextDeadlineExceeded",
        ]
        .iter()
        .map(|r| {
            value(
                "alertmanager_notifications_failed_total",
                &[("integration", integration), ("reason", r)],
            )
        })
        .sum()
    };
    // The webhooks (ok, flaky, bad): one notification each; the flaky one's retry is a
    // second, failed request; the 400 is the only failed notification, as a client error.
    assert_eq!(value("alertmanager_notifications_total", &webhook), 3.0);
    assert_eq!(value("alertmanager_notification_requests_total", &webhook), 4.0);
    assert_eq!(value("alertmanager_notification_requests_failed_total", &webhook), 2.0);
    assert_eq!(
        value(
            "alertmanager_notifications_failed_total",
            &[("integration", "webhook"), ("reason", "clientError")]
        ),
        1.0,
        "the 400"
    );
    assert_eq!(failed("webhook"), 1.0, "{metrics}");
    // The hung Slack receiver: every timed-out request counted, and the notification failed.
    let slack = [("integration", "slack")];
    assert!(
        value("alertmanager_notification_requests_failed_total", &slack) >= 2.0,
        "{metrics}"
    );
    assert!(failed("slack") >= 1.0, "{metrics}");
}
