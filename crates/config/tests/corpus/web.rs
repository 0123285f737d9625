//! web.config.yml (exporter-toolkit format): hand-written good and bad files, shaped after
//! exporter-toolkit's web/testdata.

use std::path::{Path, PathBuf};

use tempfile::TempDir;
use watchfire_config::Error;
use watchfire_config::http::TlsVersion;
use watchfire_config::web::{CipherSuite, ClientAuthType, Curve, WebConfig};

/// Hashes from exporter-toolkit's web_config_users.good.yml.
const USERS: &str = "\
basic_auth_users:
  alice: $2y$12$1DpfPeqF9HzHJt.EWswy1exHluGfbhnn3yXhR7Xes6m3WJqFg0Wby
  bob: $2y$18$4VeFDzXIoPHKnKTU3O3GH.N.vZu06CVqczYZ8WvfzrddFU6tGqjR.
  carol: $2y$10$qRTBuFoULoYNA7AQ/F3ck.trZBPyjV64.oA4ZsSBCIWvXuvQlQTuu
  dave: $2y$10$2UXri9cIDdgeKjBo4Rlpx.U3ZLDV8X1IxKmsfOvhcM5oXQt/mLmXq
";

/// A directory holding a certificate, a key and a client CA (contents need not be PEM here),
/// and the web config written beside them.
fn dir_with(config: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    for name in ["server.crt", "server.key", "ca.pem"] {
        std::fs::write(dir.path().join(name), "not checked by the config crate\n").expect("write test file");
    }
    let path = dir.path().join("web.yml");
    std::fs::write(&path, config).expect("write web config");
    (dir, path)
}

#[test]
fn tls_and_users_load() {
    let src = format!(
        "\
tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.pem
  client_allowed_sans: [one, two]
  cipher_suites:
  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
  - TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
  curve_preferences: [X25519, CurveP256]
http_server_config:
  headers:
    X-Frame-Options: deny
    X-Content-Type-Options: nosniff
    Strict-Transport-Security: max-age=31536000; includeSubDomains
    Content-Security-Policy: \"default-src 'self'\"
    X-XSS-Protection: 1
rate_limit:
  interval: 500ms
  burst: 10
{USERS}"
    );
    let (dir, path) = dir_with(&src);
    let config = WebConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let tls = config.tls().expect("TLS is on");
    // Relative files are resolved against the web config's directory.
    assert_eq!(tls.cert_file.as_deref(), Some(dir.path().join("server.crt").as_path()));
    assert_eq!(tls.key_file.as_deref(), Some(dir.path().join("server.key").as_path()));
    assert_eq!(tls.client_ca_file.as_deref(), Some(dir.path().join("ca.pem").as_path()));
    assert_eq!(tls.client_auth(), ClientAuthType::RequireAndVerifyClientCert);
    assert_eq!(tls.client_allowed_sans, Some(vec!["one".to_owned(), "two".to_owned()]));
    assert_eq!(tls.cipher_suites[1], CipherSuite::TlsEcdheRsaWithChacha20Poly1305Sha256);
    assert_eq!(tls.curve_preferences, vec![Curve::X25519, Curve::CurveP256]);
    // Upstream's defaults.
    assert_eq!(
        (tls.min_version, tls.max_version),
        (TlsVersion::TLS12, TlsVersion::TLS13)
    );
    assert!(tls.prefer_server_cipher_suites && config.http_server_config.http2);
    assert_eq!(config.http_server_config.headers["X-XSS-Protection"], "1");
    let rate = config.rate_limit.as_ref().expect("rate limit");
    assert_eq!((rate.interval, rate.burst), (std::time::Duration::from_millis(500), 10));
    assert_eq!(config.basic_auth_users.len(), 4);
    assert!(config.basic_auth_users["bob"].expose().starts_with("$2y$18$"));

    // The hashes never leave the process in serialized form.
    let json = serde_json::to_string(&config).unwrap();
    assert!(!json.contains("$2y$"), "{json}");
    assert!(json.contains("\"alice\":\"<secret>\""), "{json}");
    assert!(json.contains("\"interval\":\"500ms\""), "{json}");
}

#[test]
fn inline_certificate_and_key() {
    let src = "\
tls_server_config:
  cert: |
    -----BEGIN CERTIFICATE-----
    MIIB
    -----END CERTIFICATE-----
  key: |
    -----BEGIN PRIVATE KEY-----
    MIIC
    -----END PRIVATE KEY-----
  client_auth_type: RequireClientCert
";
    let (_dir, path) = dir_with(src);
    let config = WebConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let tls = config.tls().expect("TLS is on");
    assert!(
        tls.cert
            .as_deref()
            .is_some_and(|c| c.starts_with("-----BEGIN CERTIFICATE-----\n"))
    );
    assert!(tls.key.as_ref().is_some_and(|k| k.expose().contains("PRIVATE KEY")));
    // The old name is an alias, as upstream.
    assert_eq!(tls.client_auth(), ClientAuthType::RequireAnyClientCert);
    let json = serde_json::to_string(&config).unwrap();
    assert!(
        !json.contains("PRIVATE KEY") && json.contains("\"key\":\"<secret>\""),
        "{json}"
    );
}

#[test]
fn files_without_tls() {
    // Blank, empty sections, and a TLS section naming neither certificate, key, client CA
    // nor client auth type: all plain HTTP, as upstream.
    for src in [
        "",
        "# comment only\n",
        "tls_server_config:\nhttp_server_config:\nbasic_auth_users:\n",
        "tls_server_config:\n  min_version: TLS13\n  cert_file: ''\n",
        "tls_server_config:\n  client_auth_type: ''\nhttp_server_config:\n  http2: false\n",
    ] {
        let (_dir, path) = dir_with(src);
        let config = WebConfig::load(&path).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        assert!(config.tls().is_none(), "{src:?}");
        assert!(config.basic_auth_users.is_empty(), "{src:?}");
    }
    let (_dir, path) = dir_with(USERS);
    let config = WebConfig::load(&path).unwrap();
    assert!(config.tls().is_none() && config.http_server_config.http2);
    assert_eq!(config.basic_auth_users.len(), 4);
}

#[test]
fn absolute_paths_are_kept() {
    let (dir, _) = dir_with("");
    let cert = dir.path().join("server.crt");
    let src = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: server.key\n",
        cert.display()
    );
    let path = dir.path().join("sub/web.yml");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(&path, src).unwrap();
    let err = WebConfig::load(&path).unwrap_err().to_string();
    // The absolute cert file is found; the relative key is looked for in sub/.
    assert!(!err.contains("cert_file"), "{err}");
    assert!(
        err.contains(&format!(
            "failed to read key_file ({})",
            dir.path().join("sub/server.key").display()
        )),
        "{err}"
    );
}

/// Why the error has no line `<path>:<line>:<col>: ...<fragment>...`, if it has none.
fn mismatch(name: &str, err: &Error, path: &Path, line: u64, fragment: &str) -> Option<String> {
    let text = err.to_string();
    let prefix = format!("{}:{line}:", path.display());
    let found = text.lines().any(|l| l.starts_with(&prefix) && l.contains(fragment));
    (!found).then(|| format!("{name}: expected {fragment:?} at line {line}, got:\n{text}"))
}

fn assert_error_at(name: &str, err: &Error, path: &Path, line: u64, fragment: &str) {
    if let Some(m) = mismatch(name, err, path, line, fragment) {
        panic!("{m}");
    }
}

#[test]
fn bad_web_configs() {
    const TLS: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let cases: &[(&str, String, u64, &str)] = &[
        (
            "unknown key",
            "tls_server_config:\n  cert_filse: server.crt\n".into(),
            2,
            "unknown field `cert_filse`",
        ),
        (
            "unknown top-level key",
            "basic_auth:\n  a: b\n".into(),
            1,
            "unknown field `basic_auth`",
        ),
        (
            "not a mapping",
            "hWkNKCp3fvIx3jKnsaBI\nTuEjdwNS8A2vYdFbiKqr\n".into(),
            1,
            "expected mapping",
        ),
        (
            "cert without key",
            "tls_server_config:\n  cert_file: server.crt\n".into(),
            2,
            "missing one of key or key_file",
        ),
        (
            "key without cert",
            "tls_server_config:\n  cert: ''\n  key_file: server.key\n".into(),
            2,
            "missing one of cert or cert_file",
        ),
        (
            "missing cert file",
            "tls_server_config:\n  cert_file: nowhere.crt\n  key_file: server.key\n".into(),
            2,
            "failed to read cert_file (",
        ),
        (
            "missing client CA file",
            format!("{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: somefile\n"),
            5,
            "somefile",
        ),
        (
            "bad client_auth_type",
            format!("{TLS}  client_auth_type: RequireCert\n"),
            4,
            "invalid ClientAuth: RequireCert",
        ),
        (
            "client CA without a policy",
            format!("{TLS}  client_ca_file: ca.pem\n"),
            4,
            "client CA's have been configured without a Client Auth Policy",
        ),
        (
            "verification without a client CA",
            format!("{TLS}  client_auth_type: VerifyClientCertIfGiven\n"),
            4,
            "client_auth_type VerifyClientCertIfGiven requires client_ca_file or client_ca",
        ),
        ("min_version TLS14", format!("{TLS}  min_version: TLS14\n"), 4, "TLS14"),
        (
            "min_version above max_version",
            format!("{TLS}  min_version: TLS13\n  max_version: TLS12\n"),
            5,
            "max_version TLS12 must not be lower than min_version TLS13",
        ),
        (
            "unknown cipher",
            format!("{TLS}  cipher_suites:\n  - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA2048\n"),
            5,
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA2048",
        ),
        (
            "unknown curve",
            format!("{TLS}  curve_preferences: [CurveP999]\n"),
            4,
            "CurveP999",
        ),
        (
            "no HTTP/2 cipher",
            format!("{TLS}  cipher_suites:\n  - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n  max_version: TLS12\n"),
            5,
            "missing an HTTP/2-required AES_128_GCM_SHA256 cipher",
        ),
        (
            "not a bcrypt hash",
            "basic_auth_users:\n  alice: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n  john: doe\n"
                .into(),
            3,
            "the password of user \"john\" is not a bcrypt hash",
        ),
        (
            "bcrypt cost out of range",
            "basic_auth_users:\n  john: $2y$40$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n".into(),
            2,
            "the cost must be two digits from 04 to 31",
        ),
        (
            "empty user name",
            "basic_auth_users:\n  '': $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n".into(),
            2,
            "a user name must not be empty",
        ),
        (
            "bad X-Frame-Options",
            "http_server_config:\n  headers:\n    X-Frame-Options: foo\n".into(),
            3,
            "invalid value for X-Frame-Options. Expected one of: [\"deny\", \"sameorigin\"], but got: \"foo\"",
        ),
        (
            "bad X-Content-Type-Options",
            "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n".into(),
            3,
            "invalid value for X-Content-Type-Options",
        ),
        (
            "header that may not be set",
            "http_server_config:\n  headers:\n    Content-Type: foo\n".into(),
            3,
            "HTTP header \"Content-Type\" can not be configured",
        ),
        (
            "http2 not a boolean",
            "http_server_config:\n  http2: maybe\n".into(),
            2,
            "invalid",
        ),
        (
            "bad rate-limit interval",
            "rate_limit:\n  interval: 1d\n".into(),
            2,
            "invalid duration \"1d\"",
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(name, src, line, fragment)| {
            let (_dir, path) = dir_with(src);
            match WebConfig::load(&path) {
                Ok(_) => Some(format!("{name}: loaded without error")),
                Err(err) => mismatch(name, &err, &path, *line, fragment),
            }
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn all_problems_are_reported() {
    let src = "\
tls_server_config:
  cert_file: nowhere.crt
  client_ca_file: ca.pem
http_server_config:
  headers:
    Server: x
basic_auth_users:
  john: doe
";
    let (_dir, path) = dir_with(src);
    let err = WebConfig::load(&path).unwrap_err();
    let Error::Many(errors) = &err else {
        panic!("expected several errors, got {err}")
    };
    assert_eq!(errors.len(), 5, "{err}");
    assert_error_at("key", &err, &path, 2, "missing one of key or key_file");
    assert_error_at("cert", &err, &path, 2, "failed to read cert_file");
    assert_error_at("ca", &err, &path, 3, "without a Client Auth Policy");
    assert_error_at("header", &err, &path, 6, "HTTP header \"Server\" can not be configured");
    assert_error_at("user", &err, &path, 8, "user \"john\"");
}

#[test]
fn load_names_the_missing_file() {
    let err = WebConfig::load(Path::new("/nonexistent/web.yml")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().starts_with("/nonexistent/web.yml: "), "{err}");
}
