//! The built-in Alertmanager behind the binary: the real amtool as a client, grouping into a
//! webhook delivery, alerting rules feeding it, and alerts and silences surviving a restart.

use std::process::Command;
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::Value;

use crate::support::{Server, eventually, write};

/// A webhook receiver on 127.0.0.1: answers every request 200 and hands the bodies over.
fn webhook_receiver() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Bounded: a handful of notifications at most in this test.
        for stream in listener.incoming().take(20).flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
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
