//! `alerting.alertmanagers`: one Watchfire sends its alerts to another, found by file
//! discovery, over TLS with basic authentication, and lists it at `/api/v1/alertmanagers`.

use std::path::Path;
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::support::{Server, eventually, write};

/// A CA, and a certificate for 127.0.0.1 signed by it written as `server.crt`/`server.key`;
/// returns the CA's PEM.
fn make_certs(dir: &Path) -> String {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    write(dir, "server.crt", &cert.pem());
    write(dir, "server.key", &key.serialize_pem());
    ca_cert.pem()
}

#[test]
fn alerts_reach_a_discovered_alertmanager_over_tls_with_basic_auth() {
    // The receiving side: a Watchfire whose Alertmanager API needs TLS and a password.
    let am_dir = tempfile::tempdir().unwrap();
    let ca = make_certs(am_dir.path());
    let hash = bcrypt::hash("pw", 4).unwrap();
    write(
        am_dir.path(),
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  alice: {hash}\n"
        ),
    );
    write(am_dir.path(), "prometheus.yml", "global: {}\n");
    let am = Server::start(
        am_dir.path(),
        &["--config.file=prometheus.yml", "--web.config.file=web.yml"],
    );
    let am_port = am.addr.rsplit(':').next().unwrap().to_owned();

    // The sending side finds it through a file SD file; a second set's target is dropped.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ca.pem", &ca);
    write(
        dir.path(),
        "ams.json",
        &json!([{"targets": [format!("127.0.0.1:{am_port}")]}]).to_string(),
    );
    write(
        dir.path(),
        "rules.yml",
        "groups:\n- name: g\n  rules:\n  - alert: SentOutside\n    expr: vector(1)\n    labels: {severity: test}\n",
    );
    write(
        dir.path(),
        "prometheus.yml",
        "global:\n  evaluation_interval: 1s\n  external_labels: {site: sender}\nrule_files: [rules.yml]\nalerting:\n  alertmanagers:\n  - scheme: https\n    basic_auth: {username: alice, password: pw}\n    tls_config: {ca_file: ca.pem}\n    file_sd_configs: [{files: [ams.json]}]\n  - static_configs: [{targets: ['unused:9093']}]\n    relabel_configs:\n    - {action: drop, source_labels: [__address__], regex: 'unused:.*'}\n",
    );
    let sender = Server::start(dir.path(), &["--config.file=prometheus.yml"]);
    let client = Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let get = |url: &str| -> Value { client.get(url).send().unwrap().json().unwrap() };

    let listed = eventually(Duration::from_secs(20), || {
        let v = get(&format!("http://{}/api/v1/alertmanagers", sender.addr));
        (v["data"]["activeAlertmanagers"].as_array()?.len() == 1).then_some(v)
    })
    .unwrap_or_else(|| panic!("the Alertmanager was not discovered; log:\n{}", sender.log()));
    assert_eq!(
        listed,
        json!({"status": "success", "data": {
            "activeAlertmanagers": [{"url": format!("https://127.0.0.1:{am_port}/api/v2/alerts")}],
            "droppedAlertmanagers": [{"url": "http://unused:9093/api/v2/alerts"}],
        }})
    );

    let tls = Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let alerts = eventually(Duration::from_secs(30), || {
        let v: Value = tls
            .get(format!("https://127.0.0.1:{am_port}/api/v2/alerts"))
            .basic_auth("alice", Some("pw"))
            .send()
            .ok()?
            .json()
            .ok()?;
        (!v.as_array()?.is_empty()).then_some(v)
    })
    .unwrap_or_else(|| panic!("no alert arrived; sender log:\n{}", sender.log()));
    let labels = &alerts[0]["labels"];
    assert_eq!(labels["alertname"], "SentOutside");
    assert_eq!(labels["severity"], "test");
    assert_eq!(labels["site"], "sender", "external labels are added");
}
