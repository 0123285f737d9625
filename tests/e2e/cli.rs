//! The command line: `--version` and the `check` subcommands with promtool-like output and
//! exit codes.

use crate::support::{run, write};

#[test]
fn version_prints_build_information() {
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("watchfire, version "), "{out}");
    assert!(out.contains("platform:"), "{out}");
}

#[test]
fn check_config_follows_rule_files() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "prometheus.yml",
        "global:\n  scrape_interval: 15s\nrule_files:\n  - rules/*.yml\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['localhost:9100']\n",
    );
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    write(
        &dir.path().join("rules"),
        "host.yml",
        "groups:\n  - name: host\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n      - alert: Down\n        expr: up == 0\n        for: 5m\n",
    );
    let (code, out, err) = run(&["check", "config", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("SUCCESS: 1 rule files found"), "{out}");
    assert!(out.contains("is valid prometheus config file syntax"), "{out}");
    assert!(out.contains("SUCCESS: 2 rules found"), "{out}");
}

#[test]
fn check_config_reports_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "prometheus.yml",
        "global:\n  scrape_interval: 15s\n  scrape_intervall: 1m\n",
    );
    let (code, _, err) = run(&["check", "config", cfg.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("FAILED"), "{err}");
    assert!(err.contains("prometheus.yml:3:3"), "{err}");
    assert!(err.contains("scrape_intervall"), "{err}");
}

#[test]
fn check_rules_rejects_bad_promql_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(
        dir.path(),
        "rules.yml",
        "groups:\n  - name: g\n    rules:\n      - record: x:sum\n        expr: sum(rate(x[5m])\n",
    );
    let (code, out, err) = run(&["check", "rules", rules.to_str().unwrap()]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("FAILED"), "{err}");
    assert!(err.contains("rules.yml:4:") || err.contains("rules.yml:5:"), "{err}");
    assert!(err.contains("parse error"), "{err}");
}

#[test]
fn check_web_config_validates_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("pw", 4).unwrap();
    let good = write(dir.path(), "good.yml", &format!("basic_auth_users:\n  alice: {hash}\n"));
    let (code, out, _) = run(&["check", "web-config", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
    let bad = write(dir.path(), "bad.yml", "basic_auth_users:\n  alice: not-a-hash\n");
    let (code, _, err) = run(&["check", "web-config", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.yml") && err.contains("FAILED"), "{err}");
}

#[test]
fn check_alertmanager_config() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "am.yml",
        "route:\n  receiver: team\n  group_by: [alertname]\nreceivers:\n  - name: team\n    webhook_configs:\n      - url: http://127.0.0.1:5001/\n",
    );
    let (code, out, err) = run(&["check", "alertmanager-config", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("SUCCESS") && out.contains("1 receivers"), "{out}");
    let bad = write(
        dir.path(),
        "bad.yml",
        "route:\n  receiver: nobody\nreceivers:\n  - name: team\n",
    );
    let (code, _, err) = run(&["check", "alertmanager-config", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.yml:2:") && err.contains("nobody"), "{err}");
}

#[test]
fn check_rules_rejects_bad_templates_and_counts_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "rules.yml",
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        annotations:\n          summary: '{{ $labelz.job }} is down'\n",
    );
    let (code, _, err) = run(&["check", "rules", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        // The template's own line (promtool gives no position for template errors).
        err.contains("rules.yml:7:20:") && err.contains("summary") && err.contains("labelz"),
        "{err}"
    );

    let dups = write(
        dir.path(),
        "dups.yml",
        "groups:\n  - name: g\n    rules:\n      - record: a:sum\n        expr: sum(a)\n      - record: a:sum\n        expr: sum(b)\n",
    );
    let (code, out, err) = run(&["check", "rules", dups.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("1 duplicate rule(s) found.") && out.contains("a:sum"),
        "{out}"
    );
    assert!(out.contains("SUCCESS: 2 rules found"), "{out}");
}

/// `watchfire test rules` on upstream's promtool suites: passing suites pass, failing ones
/// fail, as promtool reports them.
#[test]
fn test_rules_runs_promtool_unit_tests() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/compat/prometheus/promtool");
    if !dir.is_dir() {
        eprintln!("SKIP: {} not found", dir.display());
        return;
    }
    let (code, out, err) = run(&["test", "rules", dir.join("at-modifier-test.yml").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("SUCCESS"), "{out}");
    let (code, out, err) = run(&["test", "rules", dir.join("failing.yml").to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(format!("{out}{err}").contains("FAILED"), "{out}{err}");
}

/// The default rules pass both `watchfire check rules` and their unit tests, with Watchfire's
/// runner and with the real promtool; print-default-config prints what the server runs on.
#[test]
fn default_rules_check_and_pass_their_unit_tests_in_both_tools() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/default");
    let rules = dir.join("rules.yml");
    let tests = dir.join("rules-test.yml");
    let (code, out, err) = run(&["check", "rules", rules.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("SUCCESS: 14 rules found"), "{out}");
    let (code, out, err) = run(&["test", "rules", tests.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let promtool = std::process::Command::new("promtool")
        .args(["test", "rules", tests.to_str().unwrap()])
        .output()
        .expect("promtool runs: `bash .ci/test` installs Debian's prometheus package");
    assert!(
        promtool.status.success(),
        "{}",
        String::from_utf8_lossy(&promtool.stdout)
    );

    let (code, out, _) = run(&["print-default-config"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("job_name: node") && out.contains("alert: Watchdog") && out.contains("receiver: default"),
        "{out}"
    );
}

/// `watchfire notify test`: one webhook answers, one is refused; an unknown receiver is a
/// configuration error.
#[test]
fn notify_test_reports_each_integration() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        // Headers, then the body up to Content-Length.
        loop {
            let n = conn.read(&mut buf).unwrap();
            req.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&req).to_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if req.len() >= end + 4 + len || n == 0 {
                    break;
                }
            }
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        String::from_utf8_lossy(&req).into_owned()
    });
    let dir = tempfile::tempdir().unwrap();
    let am = write(
        dir.path(),
        "am.yml",
        &format!(
            "route:\n  receiver: team\nreceivers:\n  - name: team\n    webhook_configs:\n      - url: http://127.0.0.1:{port}/hook\n      - url: http://127.0.0.1:1/refused\n"
        ),
    );
    let am = am.to_str().unwrap();
    let (code, out, err) = run(&["notify", "test", "--receiver", "team", "--alertmanager.config.file", am]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("webhook[0]: OK"), "{out}");
    assert!(err.contains("webhook[1]: FAILED"), "{err}");
    let req = server.join().unwrap();
    assert!(req.starts_with("POST /hook HTTP/1.1"), "{req}");
    assert!(req.contains("\"alertname\":\"WatchfireTest\""), "{req}");

    let (code, _, err) = run(&[
        "notify",
        "test",
        "--receiver",
        "nobody",
        "--alertmanager.config.file",
        am,
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no receiver named \"nobody\"") && err.contains("team"),
        "{err}"
    );
}
