//! Email against a real SMTP server (Python's aiosmtpd, started by the test).

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use watchfire_alerting::Notifier;
use watchfire_config::alertmanager::Config;
use watchfire_notify::{Notifiers, NotifyOptions};

struct Smtp {
    child: Child,
    out: tempfile::TempDir,
    port: u16,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(mode: &str, tls: Option<(&Path, &Path)>) -> Smtp {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "Python's aiosmtpd is required for the email tests (pip install aiosmtpd); run them with `bash .ci/test`, which installs it"
    );
    let out = tempfile::tempdir().unwrap();
    let port = free_port();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg(out.path()).arg(port.to_string()).arg(mode);
    if let Some((c, k)) = tls {
        cmd.arg(c).arg(k);
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "READY", "SMTP server did not start");
    Smtp { child, out, port }
}

fn received(s: &Smtp, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut files: Vec<PathBuf> = std::fs::read_dir(s.out.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        if files.len() >= n || Instant::now() > deadline {
            files.sort();
            return files
                .iter()
                .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
                .collect();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn notifiers(yaml: &str) -> Notifiers {
    let cfg = Config::parse(yaml, Path::new("/tmp/alertmanager.yml")).unwrap_or_else(|e| panic!("{e}"));
    Notifiers::new(
        &cfg,
        NotifyOptions {
            config_dir: "/tmp".into(),
            external_url: "http://am.example:9093".into(),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn plain_smtp_with_headers_and_both_parts() {
    let s = start("plain", None);
    let n = notifiers(&format!(
        "global:\n  smtp_smarthost: 127.0.0.1:{}\n  smtp_from: 'Watchfire <am@example.org>'\n  smtp_require_tls: false\nroute: {{receiver: mail}}\nreceivers:\n- name: mail\n  email_configs:\n  - to: 'oncall@example.org, Second <two@example.org>'\n    hello: watchfire.test\n    text: 'text: {{{{ template \"__subject\" . }}}}'\n    headers:\n      x-team: '{{{{ .CommonLabels.alertname }}}}'\n",
        s.port
    ));
    n.notify("mail", &mixed("mail", "email")).await.unwrap();
    let m = received(&s, 1);
    assert_eq!(m.len(), 1);
    let m = &m[0];
    assert_eq!(m["mail_from"], "am@example.org");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["oncall@example.org", "two@example.org"])
    );
    assert_eq!(m["tls"], false);
    let h = &m["headers"];
    assert_eq!(h["Subject"].as_str().unwrap().trim_end(), "[FIRING:1] HighLatency");
    assert_eq!(h["From"], "Watchfire <am@example.org>");
    assert!(h["To"].as_str().unwrap().contains("two@example.org"));
    assert_eq!(h["X-Team"], "HighLatency");
    assert!(h["Message-ID"].as_str().unwrap().ends_with("@watchfire.test>"), "{h}");
    assert!(h.get("Date").is_some());
    assert_eq!(m["content_type"], "multipart/alternative");
    let parts = m["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["type"], "text/plain");
    assert_eq!(
        parts[0]["body"].as_str().unwrap().trim_end(),
        "text: [FIRING:1] HighLatency"
    );
    assert_eq!(parts[1]["type"], "text/html");
    let html = parts[1]["body"].as_str().unwrap();
    assert!(html.contains("a &lt;b&gt; &amp; c"));
    assert!(html.contains("View in Alertmanager"));
}

fn cert(dir: &Path) -> (PathBuf, PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let c = dir.join("cert.pem");
    let k = dir.join("key.pem");
    std::fs::write(&c, ck.cert.pem()).unwrap();
    std::fs::write(&k, ck.signing_key.serialize_pem()).unwrap();
    (c, k)
}

#[tokio::test]
async fn starttls_with_auth() {
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = cert(dir.path());
    let s = start("starttls", Some((&c, &k)));
    let yaml = |password: &str| {
        format!(
            "global:\n  smtp_smarthost: 127.0.0.1:{}\n  smtp_from: am@example.org\n  smtp_auth_username: user\n  smtp_auth_password: {password}\n  smtp_tls_config:\n    ca_file: {}\nroute: {{receiver: mail}}\nreceivers:\n- name: mail\n  email_configs:\n  - to: oncall@example.org\n",
            s.port,
            c.display()
        )
    };
    let n = notifiers(&yaml("p4ss-word"));
    n.notify("mail", &firing("mail", "email")).await.unwrap();
    let m = received(&s, 1);
    assert_eq!(m[0]["tls"], true);
    assert_eq!(m[0]["authenticated"], true);
    assert_eq!(m[0]["headers"]["Subject"], "[FIRING:2] HighLatency (api)");
    // Only the HTML part by default.
    assert_eq!(m[0]["parts"].as_array().unwrap().len(), 1);

    let n = notifiers(&yaml("wrong-password"));
    let e = n.notify("mail", &firing("mail", "email")).await.unwrap_err();
    assert!(e.retryable);
    assert!(!e.message.contains("wrong-password"), "{}", e.message);

    // require_tls against a server without STARTTLS fails.
    let plain = start("plain", None);
    let n = notifiers(&format!(
        "global:\n  smtp_smarthost: 127.0.0.1:{}\n  smtp_from: am@example.org\nroute: {{receiver: mail}}\nreceivers:\n- name: mail\n  email_configs:\n  - to: oncall@example.org\n",
        plain.port
    ));
    assert!(n.notify("mail", &firing("mail", "email")).await.is_err());
    assert!(received(&plain, 0).is_empty());
}

#[tokio::test]
async fn bad_addresses_fail_without_retry() {
    let n = notifiers(
        "global:\n  smtp_smarthost: 127.0.0.1:25\n  smtp_from: 'not an address'\n  smtp_require_tls: false\nroute: {receiver: mail}\nreceivers:\n- name: mail\n  email_configs:\n  - to: oncall@example.org\n",
    );
    let e = n.notify("mail", &firing("mail", "email")).await.unwrap_err();
    assert!(!e.retryable, "{e:?}");
}
