//! The built-in Alertmanager behind the binary: the real amtool as a client, grouping into a
//! recorded notification, and alerts and silences surviving a restart.

use std::process::Command;
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::Value;

use crate::support::{Server, eventually, write};

const AM_CONFIG: &str = "route:\n  receiver: team\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1m\nreceivers:\n  - name: team\n    webhook_configs:\n      - url: http://127.0.0.1:9/hook\n";

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

fn get_json(url: &str) -> Value {
    Client::new().get(url).send().unwrap().json().unwrap()
}

#[test]
fn amtool_alerts_group_into_a_recorded_notification_and_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "am.yml", AM_CONFIG);
    let args = ["--alertmanager.config.file=am.yml"];
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

        // group_wait is 1s: the group flushes to the receiver, which has a webhook that is not
        // delivered yet, so the notification is recorded in the history.
        let entry = eventually(Duration::from_secs(20), || {
            let list = get_json(&format!("{url}/api/watchfire/notifications?receiver=team"));
            list.as_array()?.first().cloned()
        })
        .expect("a notification is recorded for receiver team");
        assert_eq!(entry["receiver"], "team");
        assert_eq!(entry["groupLabels"]["alertname"], "DiskFull", "{entry}");
        assert!(
            server.log().contains("notification delivery is not implemented yet"),
            "{}",
            server.log()
        );

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
    let alerts = get_json(&format!("{url}/api/v2/alerts"));
    assert_eq!(alerts[0]["labels"]["alertname"], "DiskFull", "{alerts}");
    let out = amtool(&url, &["silence", "query"]);
    assert!(out.contains(&silence_id) && out.contains("maintenance"), "{out}");
}
