//! prometheus.yml: upstream's conf.good.yml, a realistic file loaded from disk, a table of bad
//! files (each with the message and line expected), secrets, and environment expansion.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use watchfire_config::Error;
use watchfire_config::prometheus::{
    Action, ByteSize, Config, DnsRecordType, EscapingScheme, NameValidationScheme, ProtobufMessage, QueueConfig,
    ScrapeConfig, ScrapeProtocol, TracingClientType,
};
use watchfire_model::Duration;

fn secs(s: i64) -> Duration {
    Duration::from_secs(s)
}

/// Every error inside `e`, flattened.
fn flatten(e: Error) -> Vec<Error> {
    match e {
        Error::Many(list) => list.into_iter().flat_map(flatten).collect(),
        e => vec![e],
    }
}

fn message(e: &Error) -> &str {
    match e {
        Error::Invalid { message, .. } | Error::Parse { message, .. } => message,
        _ => "",
    }
}

fn line(e: &Error) -> u64 {
    e.position().map_or(0, |p| p.line)
}

fn job<'a>(c: &'a Config, name: &str) -> &'a ScrapeConfig {
    c.scrape_configs
        .iter()
        .find(|j| j.job_name == name)
        .unwrap_or_else(|| panic!("no job {name}"))
}

fn conf_good() -> Option<(PathBuf, String)> {
    let path = crate::compat_dir()?.join("prometheus/config/conf.good.yml");
    let src = std::fs::read_to_string(&path).expect("conf.good.yml is readable");
    Some((path, src))
}

/// The unsupported features conf.good.yml uses, with the line where each block starts.
const CONF_GOOD_UNSUPPORTED: [(&str, u64); 28] = [
    ("oauth2", 34),
    ("consul_sd_configs", 181),
    ("kubernetes_sd_configs", 216),
    ("kubernetes_sd_configs", 229),
    ("kuma_sd_configs", 242),
    ("marathon_sd_configs", 247),
    ("nomad_sd_configs", 257),
    ("ec2_sd_configs", 261),
    ("lightsail_sd_configs", 277),
    ("azure_sd_configs", 284),
    ("nerve_sd_configs", 295),
    ("triton_sd_configs", 325),
    ("digitalocean_sd_configs", 337),
    ("docker_sd_configs", 342),
    ("dockerswarm_sd_configs", 346),
    ("oci_sd_configs", 351),
    ("openstack_sd_configs", 364),
    ("puppetdb_sd_configs", 375),
    ("hetzner_sd_configs", 392),
    ("eureka_sd_configs", 402),
    ("ovhcloud_sd_configs", 406),
    ("scaleway_sd_configs", 421),
    ("linode_sd_configs", 432),
    ("stackit_sd_configs", 437),
    ("uyuni_sd_configs", 445),
    ("ionos_sd_configs", 451),
    ("vultr_sd_configs", 457),
    ("outscale_sd_configs", 462),
];

#[test]
fn conf_good_lists_exactly_its_unsupported_features() {
    let Some((path, src)) = conf_good() else { return };
    let (_, unsupported) = Config::parse_with_unsupported(&src, &path).unwrap_or_else(|e| panic!("{e}"));
    let mut found: Vec<(String, u64)> = unsupported
        .iter()
        .map(|e| {
            let key = message(e)
                .strip_prefix("not supported yet: ")
                .unwrap_or_else(|| panic!("{e}"));
            assert!(e.to_string().starts_with(&path.display().to_string()), "{e}");
            (key.to_owned(), line(e))
        })
        .collect();
    found.sort_by_key(|(_, l)| *l);
    let want: Vec<(String, u64)> = CONF_GOOD_UNSUPPORTED
        .iter()
        .map(|(k, l)| ((*k).to_owned(), *l))
        .collect();
    assert_eq!(found, want);

    // The keys are every SD kind the file uses except the four Watchfire implements.
    let keys: BTreeSet<&str> = CONF_GOOD_UNSUPPORTED.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys.len(), 27);
    for implemented in ["static_configs", "file_sd_configs", "http_sd_configs", "dns_sd_configs"] {
        assert!(src.contains(implemented) && !keys.contains(implemented));
    }

    // Plain parsing refuses the file and lists every one of them.
    let err = Config::parse(&src, &path).unwrap_err();
    let all = flatten(err);
    assert_eq!(all.len(), CONF_GOOD_UNSUPPORTED.len());
    assert!(all.iter().all(|e| message(e).starts_with("not supported yet: ")));
}

#[test]
fn conf_good_values_match_the_file() {
    let Some((path, src)) = conf_good() else { return };
    let (c, _) = Config::parse_with_unsupported(&src, &path).unwrap_or_else(|e| panic!("{e}"));

    // global
    assert_eq!(c.global.scrape_interval, secs(15));
    assert_eq!(c.global.evaluation_interval, secs(30));
    assert_eq!(c.global.scrape_timeout, secs(10));
    assert_eq!(c.global.body_size_limit, ByteSize(15 * 1024 * 1024));
    assert_eq!(c.global.sample_limit, 1500);
    assert_eq!(c.global.query_log_file.as_deref(), Some("query.log"));
    assert_eq!(
        c.global.external_labels.to_string(),
        r#"{foo="bar", monitor="codelab"}"#
    );
    assert_eq!(c.global.metric_name_escaping_scheme, Some(EscapingScheme::AllowUtf8));
    assert_eq!(c.runtime.gogc, 42);
    assert_eq!(c.rule_files, ["first.rules", "my/*.rules"]);

    // jobs, in file order
    assert_eq!(c.scrape_configs.len(), 34);
    let names: Vec<&str> = c.scrape_configs.iter().take(4).map(|j| j.job_name.as_str()).collect();
    assert_eq!(names, ["prometheus", "service-x", "service-y", "service-z"]);
    assert!(c.scrape_configs.iter().any(|j| j.job_name == "測試"));

    let prom = job(&c, "prometheus");
    assert!(prom.honor_labels && prom.honor_timestamps && prom.enable_compression);
    assert_eq!((prom.scrape_interval, prom.scrape_timeout), (secs(15), secs(10)));
    assert_eq!((prom.metrics_path.as_str(), prom.scheme.as_str()), ("/metrics", "http"));
    assert_eq!(prom.body_size_limit, ByteSize(15 * 1024 * 1024));
    assert_eq!((prom.sample_limit, prom.target_limit, prom.label_limit), (1500, 30, 30));
    assert_eq!(prom.scrape_failure_log_file.as_deref(), Some("fail_prom.log"));
    assert_eq!(prom.protocols(), ScrapeProtocol::DEFAULT);
    assert_eq!(prom.fallback_scrape_protocol, Some(ScrapeProtocol::PrometheusText0_0_4));
    assert_eq!(prom.file_sd_configs.len(), 2);
    assert_eq!(
        prom.file_sd_configs[0].files,
        ["foo/*.slow.json", "foo/*.slow.yml", "single/file.yml"]
    );
    assert_eq!(prom.file_sd_configs[0].refresh_interval, secs(600));
    assert_eq!(prom.file_sd_configs[1].refresh_interval, secs(300));
    assert_eq!(prom.static_configs[0].targets, ["localhost:9090", "localhost:9191"]);
    assert_eq!(
        prom.static_configs[0].labels.get("my").map(String::as_str),
        Some("label")
    );
    let header = &prom.http_headers["foo"];
    assert_eq!(
        (header.values.len(), header.secrets.len(), header.files.len()),
        (1, 2, 1)
    );
    let auth = prom.http_client().effective_authorization().unwrap();
    assert_eq!(
        (auth.kind.as_str(), auth.credentials_file.as_deref()),
        ("Bearer", Some("valid_token_file"))
    );

    let r = &prom.relabel_configs;
    assert_eq!(r.len(), 6);
    assert_eq!(r[0].source_labels, ["job", "__meta_dns_name"]);
    assert_eq!(r[0].regex.as_str(), "(.*)some-[regex]");
    assert_eq!(
        (r[0].target_label.as_str(), r[0].replacement.as_str()),
        ("job", "foo-${1}")
    );
    assert_eq!((r[0].action, r[0].separator.as_str()), (Action::Replace, ";"));
    assert!(r[0].regex.is_match("a-some-r") && !r[0].regex.is_match("a-some-rx"));
    assert_eq!(r[1].regex.as_str(), "(.*)");
    assert_eq!(r[3].regex.as_str(), "", "`regex:` with no value is the empty regex");
    assert_eq!((r[4].action, r[5].action), (Action::KeepEqual, Action::DropEqual));

    let x = job(&c, "service-x");
    assert_eq!((x.scrape_interval, x.scrape_timeout), (secs(50), secs(5)));
    assert_eq!(x.body_size_limit, ByteSize(10 * 1024 * 1024));
    assert_eq!((x.sample_limit, x.label_value_length_limit), (1000, 210));
    assert_eq!(
        x.scrape_failure_log_file.as_deref(),
        Some("fail.log"),
        "inherited from global"
    );
    assert_eq!(x.protocols(), [ScrapeProtocol::PrometheusText0_0_4]);
    assert_eq!((x.metrics_path.as_str(), x.scheme.as_str()), ("/my_path", "https"));
    assert_eq!(
        x.basic_auth.as_ref().unwrap().password.as_ref().unwrap().expose(),
        "multiline\nmysecret\ntest"
    );
    assert_eq!(x.dns_sd_configs.len(), 2);
    assert_eq!(x.dns_sd_configs[0].refresh_interval, secs(15));
    assert_eq!(x.dns_sd_configs[1].refresh_interval, secs(30));
    assert_eq!(x.dns_sd_configs[1].record_type, DnsRecordType::Srv);
    let hashmod = &x.relabel_configs[1];
    assert_eq!(
        (hashmod.action, hashmod.modulus, hashmod.target_label.as_str()),
        (Action::HashMod, 8, "__tmp_hash")
    );
    assert_eq!(x.metric_relabel_configs[0].action, Action::Drop);

    assert!(!job(&c, "badfederation").honor_timestamps);
    assert_eq!(
        job(&c, "httpsd").http_sd_configs[0].url,
        "http://example.com/prometheus"
    );
    assert_eq!(job(&c, "httpsd").http_sd_configs[0].refresh_interval, secs(60));
    let hetzner = job(&c, "hetzner");
    assert!(hetzner.scrape_native_histograms_enabled());
    assert_eq!(hetzner.protocols(), ScrapeProtocol::PROTO_FIRST);
    assert_eq!(hetzner.relabel_configs[0].action, Action::Uppercase);
    assert_eq!(job(&c, "service-y").relabel_configs[0].separator, ",");
    assert_eq!(
        job(&c, "service-z").name_validation_scheme(),
        NameValidationScheme::Utf8
    );

    // remote write and read
    let rw = &c.remote_write;
    assert_eq!(rw.len(), 2);
    assert_eq!(rw[0].url.as_str(), "http://remote1/push");
    assert_eq!(rw[0].name, "drop_expensive");
    assert_eq!(rw[0].queue_config, QueueConfig::default());
    assert_eq!(
        (rw[0].queue_config.capacity, rw[0].queue_config.max_shards),
        (10_000, 50)
    );
    assert_eq!(rw[0].queue_config.min_backoff, Duration::from_millis(30));
    assert_eq!(rw[0].remote_timeout, secs(30));
    assert!(rw[0].metadata_config.send);
    assert_eq!(rw[0].write_relabel_configs[0].regex.as_str(), "expensive.*");
    assert!(!rw[0].enable_http2, "remote write defaults to HTTP/1.1 upstream");
    assert_eq!(rw[0].protobuf_message, ProtobufMessage::WriteV1);
    assert_eq!(rw[1].protobuf_message, ProtobufMessage::WriteV2);
    assert_eq!(rw[1].headers["name"], "value");
    let rr = &c.remote_read;
    assert_eq!(
        (rr[0].read_recent, rr[0].enable_http2, rr[0].remote_timeout),
        (true, false, secs(60))
    );
    assert!(rr[1].enable_http2 && rr[1].filter_external_labels);
    assert_eq!(rr[1].required_matchers["job"], "special");

    // alerting, storage, tracing, otlp
    let am = &c.alerting.alertmanagers[0];
    assert_eq!((am.scheme.as_str(), am.timeout), ("https", secs(10)));
    assert_eq!(am.static_configs[0].targets.len(), 3);
    let tsdb = &c.storage.tsdb;
    assert_eq!(tsdb.out_of_order_time_window, secs(30 * 60));
    assert_eq!(tsdb.stale_series_compaction_threshold, 0.5);
    assert_eq!(tsdb.retention.time, secs(24 * 3600));
    assert_eq!(tsdb.retention.size, ByteSize(1 << 30));
    assert_eq!(tsdb.retention.percentage, 28.0);
    assert_eq!(c.storage.exemplars.max_exemplars, 100_000);
    let tracing = c.tracing.as_ref().unwrap();
    assert_eq!(
        (tracing.endpoint.as_str(), tracing.client_type),
        ("localhost:4317", TracingClientType::Grpc)
    );
    assert_eq!(
        (tracing.timeout, tracing.compression.as_deref()),
        (secs(5), Some("gzip"))
    );
    assert!(tracing.tls_config.insecure_skip_verify);
    assert_eq!(
        c.otlp.promote_resource_attributes,
        ["k8s.cluster.name", "k8s.job.name", "k8s.namespace.name"]
    );
    assert!(c.otlp.label_name_underscore_sanitization);
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, contents).unwrap();
    path
}

const REALISTIC: &str = r#"# A small homelab server.
global:
  scrape_interval: 30s
  evaluation_interval: 30s
  external_labels:
    site: home

rule_files:
  - rules/*.yml
  - extra.rules.yml

scrape_config_files:
  - conf.d/*.yml

alerting:
  alertmanagers:
    - static_configs:
        - targets: ["localhost:9093"]

scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]

  - job_name: node
    scrape_interval: 5s
    static_configs:
      - targets: ["nas:9100", "router:9100"]
        labels:
          room: cellar
    file_sd_configs:
      - files: ["targets/*.json"]
"#;

#[test]
fn a_realistic_file_loads_with_upstream_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "prometheus.yml", REALISTIC);
    write(dir.path(), "rules/b.yml", "groups: []\n");
    write(dir.path(), "rules/a.yml", "groups: []\n");
    write(dir.path(), "rules/notes.txt", "not a rule file\n");
    write(
        dir.path(),
        "conf.d/blackbox.yml",
        "scrape_configs:\n  - job_name: blackbox\n    file_sd_configs:\n      - files: [probes/*.yml]\n",
    );

    let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.global.scrape_timeout, secs(10));
    assert_eq!(c.global.external_labels.get("site"), Some("home"));

    let prom = job(&c, "prometheus");
    assert_eq!((prom.scrape_interval, prom.scrape_timeout), (secs(30), secs(10)));
    assert_eq!((prom.metrics_path.as_str(), prom.scheme.as_str()), ("/metrics", "http"));
    assert!(prom.honor_timestamps && !prom.honor_labels && prom.enable_compression);
    assert!(prom.follow_redirects && prom.enable_http2);
    assert_eq!(prom.protocols(), ScrapeProtocol::DEFAULT);
    assert_eq!(prom.name_validation_scheme(), NameValidationScheme::Utf8);
    assert_eq!(prom.metric_name_escaping_scheme, Some(EscapingScheme::AllowUtf8));
    assert_eq!((prom.sample_limit, prom.body_size_limit), (0, ByteSize(0)));

    let node = job(&c, "node");
    assert_eq!(
        (node.scrape_interval, node.scrape_timeout),
        (secs(5), secs(5)),
        "timeout is min(global, interval)"
    );
    assert_eq!(node.static_configs[0].labels["room"], "cellar");
    assert_eq!(node.file_sd_configs[0].refresh_interval, secs(300));

    // Jobs from scrape_config_files come last, with paths made relative to the main file's dir.
    let blackbox = &c.scrape_configs[2];
    assert_eq!(blackbox.job_name, "blackbox");
    assert_eq!(blackbox.scrape_interval, secs(30));
    assert_eq!(blackbox.file_sd_configs[0].files, ["conf.d/probes/*.yml"]);

    let am = &c.alerting.alertmanagers[0];
    assert_eq!(
        (am.scheme.as_str(), am.timeout, am.path_prefix.as_str()),
        ("http", secs(10), "")
    );

    let rules = c.rule_file_paths(dir.path()).unwrap();
    assert_eq!(rules, [dir.path().join("rules/a.yml"), dir.path().join("rules/b.yml")]);

    // What is printed parses back to the same configuration (with the merged jobs inline).
    let merged = Config {
        scrape_config_files: Vec::new(),
        ..c
    };
    let printed = serde_saphyr::to_string(&merged).unwrap();
    let back = Config::parse(&printed, &path).unwrap_or_else(|e| panic!("{e}\n{printed}"));
    assert_eq!(back, merged, "{printed}");
}

#[test]
fn scrape_config_files_report_their_own_file_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "prometheus.yml",
        "scrape_config_files: ['jobs/*.yml']\nscrape_configs:\n  - job_name: a\n",
    );
    let jobs = write(
        dir.path(),
        "jobs/more.yml",
        "scrape_configs:\n  - job_name: b\n  - job_name: a\n    scrape_timeout: 2m\n",
    );
    let errors = flatten(Config::load(&path).unwrap_err());
    assert_eq!(errors.len(), 2, "{errors:?}");
    for e in &errors {
        assert!(e.to_string().starts_with(&format!("{}:3:", jobs.display())), "{e}");
    }
    assert!(message(&errors[0]).contains("scrape timeout greater than scrape interval"));
    assert!(message(&errors[1]).contains("found multiple scrape configs with job name \"a\", first found in the main"));
}

/// Bad files: what fails, the message fragment and the line it must be reported at.
const BAD: &[(&str, &str, &str, u64)] = &[
    (
        "unknown top-level key",
        "global: {}\nscrape_config: []\n",
        "unknown field `scrape_config`",
        2,
    ),
    (
        "unknown job key",
        "scrape_configs:\n  - job_name: a\n    metric_path: /m\n",
        "unknown field `metric_path`",
        3,
    ),
    (
        "duplicate section",
        "scrape_configs: []\nscrape_configs: []\n",
        "duplicate",
        2,
    ),
    (
        "duplicate job_name",
        "scrape_configs:\n  - job_name: node\n  - job_name: other\n  - job_name: node\n",
        "found multiple scrape configs with job name \"node\"",
        4,
    ),
    (
        "empty job_name",
        "scrape_configs:\n  - job_name:\n    scrape_interval: 1m\n",
        "job_name is empty",
        2,
    ),
    (
        "null job",
        "scrape_configs:\n  -\n",
        "empty or null scrape config section",
        2,
    ),
    (
        "timeout over interval",
        "scrape_configs:\n  - job_name: a\n\n    scrape_interval: 10s\n    scrape_timeout: 20s\n",
        "scrape timeout greater than scrape interval",
        2,
    ),
    (
        "global timeout over interval",
        "global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n",
        "global scrape timeout greater",
        2,
    ),
    (
        "bad duration",
        "global:\n  evaluation_interval: 5x\n",
        "not a valid duration string",
        2,
    ),
    (
        "duration without unit",
        "global:\n  scrape_interval: 30\n",
        "a unit is required",
        2,
    ),
    (
        "bad scheme",
        "scrape_configs:\n  - job_name: a\n    scheme: ftp\n",
        "scheme must be 'http' or 'https'",
        2,
    ),
    (
        "bad regex",
        "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - source_labels: [x]\n        regex: 'abc(def'\n        target_label: y\n",
        "invalid regular expression",
        5,
    ),
    (
        "hashmod without modulus",
        "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: keep\n      - action: hashmod\n        target_label: h\n",
        "relabel configuration for hashmod requires non-zero modulus",
        5,
    ),
    (
        "labeldrop with source_labels",
        "scrape_configs:\n  - job_name: a\n    metric_relabel_configs:\n      - action: labeldrop\n        source_labels: [x]\n        regex: y\n",
        "labeldrop action requires only 'regex', and no other fields",
        4,
    ),
    (
        "keepequal with regex",
        "alerting:\n  alert_relabel_configs:\n    - {action: keepequal, source_labels: [a], target_label: b, regex: c}\n",
        "keepequal action requires only 'source_labels' and `target_label`",
        3,
    ),
    (
        "replace without target",
        "remote_write:\n  - url: http://x/api/v1/write\n    write_relabel_configs:\n      - source_labels: [a]\n",
        "relabel configuration for replace action requires 'target_label' value",
        4,
    ),
    (
        "lowercase with replacement",
        "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - {action: lowercase, source_labels: [a], target_label: b, replacement: c}\n",
        "'replacement' can not be set for lowercase action",
        4,
    ),
    (
        "null action",
        "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: null\n",
        "relabel action cannot be empty",
        4,
    ),
    (
        "unknown action",
        "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: explode\n",
        "unknown relabel action \"explode\"",
        4,
    ),
    (
        "null relabel rule",
        "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      -\n",
        "empty or null relabeling rule",
        4,
    ),
    (
        "legacy target label",
        "global:\n  metric_name_validation_scheme: legacy\nscrape_configs:\n  - job_name: a\n    relabel_configs:\n      - source_labels: [x]\n        target_label: my.label\n",
        "\"my.label\" is invalid 'target_label' for replace action",
        6,
    ),
    (
        "unsupported kubernetes_sd_configs",
        "scrape_configs:\n  - job_name: k8s\n    kubernetes_sd_configs:\n      - role: pod\n",
        "not supported yet: kubernetes_sd_configs",
        4,
    ),
    (
        "unsupported oauth2",
        "scrape_configs:\n  - job_name: a\n    oauth2:\n      client_id: x\n      token_url: http://t\n",
        "not supported yet: oauth2",
        4,
    ),
    (
        "unsupported sigv4",
        "remote_write:\n  - url: https://aps/api/v1/remote_write\n    sigv4:\n      region: eu-west-1\n",
        "not supported yet: sigv4",
        4,
    ),
    // serde reports a missing field at the last key of the block.
    (
        "remote_write without url",
        "remote_write:\n  - name: a\n    remote_timeout: 5s\n",
        "missing field `url`",
        3,
    ),
    (
        "remote_write bad url scheme",
        "remote_write:\n  - url: ftp://x/y\n",
        "URL scheme must be 'http' or 'https'",
        2,
    ),
    (
        "remote_write reserved header",
        "remote_write:\n  - url: http://x/y\n    headers:\n      Content-Type: text/plain\n",
        "Content-Type is a reserved header",
        2,
    ),
    (
        "remote_write queue shards",
        "remote_write:\n  - url: http://x/y\n    queue_config:\n      min_shards: 100\n",
        "remote write queue min_shards must not be greater than max_shards",
        4,
    ),
    (
        "remote_write duplicate name",
        "remote_write:\n  - url: http://x/y\n    name: q\n  - url: http://z/y\n    name: q\n",
        "found multiple remote write configs with name \"q\"",
        4,
    ),
    (
        "remote_write wrong protobuf message",
        "remote_write:\n  - url: http://x/y\n    protobuf_message: io.prometheus.writet.v2.Request\n",
        "unknown type for remote write protobuf message",
        3,
    ),
    (
        "remote_read without url",
        "remote_read:\n  - read_recent: true\n",
        "missing field `url`",
        2,
    ),
    (
        "bad external label name",
        "global:\n  metric_name_validation_scheme: legacy\n  external_labels:\n    region-name: eu\n",
        "external_labels: \"region-name\" is not a valid label name",
        2,
    ),
    (
        "empty external label name",
        "global:\n  external_labels:\n    '': eu\n",
        "\"\" is not a valid label name",
        2,
    ),
    (
        "file_sd bad extension",
        "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: [targets.json]\n      - files: [targets.txt]\n",
        "path name \"targets.txt\" is not valid for file discovery",
        5,
    ),
    (
        "file_sd glob in a directory",
        "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: ['*/x.json']\n",
        "is not valid for file discovery",
        4,
    ),
    (
        "http_sd bad scheme",
        "scrape_configs:\n  - job_name: a\n    http_sd_configs:\n      - url: ftp://example.com/sd\n",
        "URL scheme must be 'http' or 'https'",
        4,
    ),
    (
        "dns A without port",
        "scrape_configs:\n  - job_name: a\n    dns_sd_configs:\n      - names: [x.example]\n        type: A\n",
        "a port is required in DNS-SD configs",
        4,
    ),
    (
        "dns bad type",
        "scrape_configs:\n  - job_name: a\n    dns_sd_configs:\n      - names: [x]\n        type: TXT\n",
        "invalid DNS-SD records type TXT",
        5,
    ),
    (
        "empty static config",
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      -\n",
        "empty or null section in static_configs",
        4,
    ),
    (
        "url as static target",
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['http://bad']\n",
        "\"http://bad\" is not a valid hostname",
        2,
    ),
    (
        "alertmanager api_version v1",
        "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [am:9093]\n      api_version: v1\n",
        "expected Alertmanager api version to be one of [v2] but got v1",
        5,
    ),
    (
        "bad rule file pattern",
        "rule_files:\n  - ok.yml\n  - 'my/*/rules.yml'\n",
        "invalid rule file path \"my/*/rules.yml\"",
        3,
    ),
    (
        "unknown protocol",
        "global:\n  scrape_protocols: [prometheusproto]\n",
        "unknown scrape protocol prometheusproto",
        2,
    ),
    (
        "duplicate protocol",
        "scrape_configs:\n  - job_name: a\n    scrape_protocols: [PrometheusProto, PrometheusProto]\n",
        "duplicated protocol in scrape_protocols",
        3,
    ),
    (
        "body size without unit",
        "scrape_configs:\n  - job_name: a\n    body_size_limit: 100\n",
        "a unit is required",
        3,
    ),
    (
        "unknown validation scheme",
        "global:\n  metric_name_validation_scheme: ascii\n",
        "unrecognized ValidationScheme: \"ascii\"",
        2,
    ),
    (
        "utf-8 escaping with legacy names",
        "global:\n  metric_name_validation_scheme: legacy\n  metric_name_escaping_scheme: allow-utf-8\nscrape_configs:\n  - job_name: a\n",
        "utf8 metric names requested but validation scheme is not set to UTF8",
        5,
    ),
    (
        "bearer token twice",
        "scrape_configs:\n  - job_name: a\n    bearer_token: x\n    bearer_token_file: /f\n",
        "at most one of bearer_token & bearer_token_file",
        2,
    ),
    (
        "retention percentage",
        "storage:\n  tsdb:\n    retention:\n      percentage: 101\n",
        "must be in the range [0, 100]",
        4,
    ),
    (
        "chunk encoding",
        "storage:\n  tsdb:\n    chunk_encoding:\n      floats: XOR\n",
        "must be 'xor' or 'xor2'",
        4,
    ),
    (
        "tracing without endpoint",
        "tracing:\n  client_type: http\n",
        "tracing endpoint must be set",
        2,
    ),
    (
        "tracing bad client",
        "tracing:\n  endpoint: x:4317\n  client_type: thrift\n",
        "expected tracing client type",
        3,
    ),
    (
        "otlp strategy needs utf-8",
        "global:\n  metric_name_validation_scheme: legacy\notlp:\n  translation_strategy: NoTranslation\n",
        "OTLP translation strategy \"NoTranslation\" is not allowed when UTF8 is disabled",
        4,
    ),
    (
        "otlp ignore without promote all",
        "otlp:\n  ignore_resource_attributes: [a]\n",
        "'ignore_resource_attributes' cannot be configured unless",
        2,
    ),
];

#[test]
fn bad_files_fail_with_message_and_line() {
    let path = Path::new("/etc/prometheus/prometheus.yml");
    for (name, src, fragment, want_line) in BAD {
        let err = match Config::parse(src, path) {
            Ok(_) => panic!("{name}: parsed, expected {fragment:?}"),
            Err(e) => e,
        };
        let text = err.to_string();
        let all = flatten(err);
        let hit = all.iter().find(|e| message(e).contains(fragment));
        let hit = hit.unwrap_or_else(|| panic!("{name}: no error contains {fragment:?}:\n{text}"));
        assert_eq!(line(hit), *want_line, "{name}: {hit}");
        assert!(
            hit.to_string().starts_with("/etc/prometheus/prometheus.yml:"),
            "{name}: {hit}"
        );
    }
}

#[test]
fn all_problems_of_a_file_are_reported_together() {
    let src = "scrape_configs:\n  - job_name: a\n    scheme: ftp\n  - job_name: a\n    kubernetes_sd_configs: [{role: pod}]\n  - job_name: b\n    scrape_interval: 1s\n    scrape_timeout: 2s\n";
    let errors = flatten(Config::parse(src, Path::new("p.yml")).unwrap_err());
    let lines: Vec<u64> = errors.iter().map(line).collect();
    assert_eq!(lines, [2, 4, 5, 6], "{errors:?}");
    // parse_with_unsupported still fails on the real problems, without the refusal.
    let errors = flatten(Config::parse_with_unsupported(src, Path::new("p.yml")).unwrap_err());
    assert_eq!(errors.len(), 3);
    assert!(errors.iter().all(|e| !message(e).starts_with("not supported yet")));
}

#[test]
fn null_sections_are_empty_as_upstream() {
    // Prometheus' own example file leaves these lists empty.
    let src = "global:\nrule_files:\n  # - first.yml\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets:\n          # - alertmanager:9093\nscrape_configs:\n  - job_name: p\n    static_configs:\n      - targets: ['localhost:9090']\n        labels:\n";
    let c = Config::parse(src, Path::new("p.yml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.rule_files.is_empty());
    assert!(c.alerting.alertmanagers[0].static_configs[0].targets.is_empty());
    assert_eq!(c.global.scrape_interval, secs(60));
    assert!(c.scrape_configs[0].static_configs[0].labels.is_empty());
}

#[test]
fn secrets_never_appear_when_serialized() {
    let own = "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u, password: hunter2}\n    http_sd_configs:\n      - url: http://sd/x\n        authorization: {credentials: tok3n}\n    http_headers:\n      X-Key: {secrets: [s3cret]}\nremote_write:\n  - url: https://user:pa55word@remote/write\n    bearer_token: b34rer\ntracing:\n  endpoint: x:4317\n  tls_config: {key: pr1vkey, cert: c}\n";
    let mut cases = vec![(
        PathBuf::from("p.yml"),
        own.to_owned(),
        vec!["hunter2", "tok3n", "s3cret", "pa55word", "b34rer", "pr1vkey"],
    )];
    if let Some((path, good)) = conf_good() {
        // conf.good.yml's secrets, in supported and unsupported blocks alike.
        cases.push((path, good, vec!["mysecret", "\"456\"", "abcdef", "\"bar\", \"foo\""]));
    }
    for (path, src, words) in cases {
        let (config, _) = Config::parse_with_unsupported(&src, &path).unwrap_or_else(|e| panic!("{e}"));
        let out = serde_saphyr::to_string(&config).unwrap();
        assert!(out.contains("<secret>"), "{out}");
        for w in words {
            assert!(src.contains(w) && !out.contains(w), "{w} leaked:\n{out}");
        }
    }
}

#[test]
fn secrets_in_urls_and_auth_are_redacted() {
    let src = "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u, password: hunter2}\nremote_write:\n  - url: https://user:pa55word@remote/write\n    bearer_token: b34rer\n";
    let config = Config::parse(src, Path::new("p.yml")).unwrap();
    let out = serde_saphyr::to_string(&config).unwrap();
    for w in ["hunter2", "pa55word", "b34rer"] {
        assert!(!out.contains(w), "{w} leaked:\n{out}");
    }
    assert!(out.contains("https://user:xxxxx@remote/write"), "{out}");
}

#[test]
fn external_labels_expand_the_environment() {
    // Use a variable the test process really has, whatever the machine.
    let (name, value) = std::env::vars()
        .find(|(k, v)| !v.is_empty() && !v.contains('$') && k.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric()))
        .expect("the test process has some environment");
    let src = format!(
        "global:\n  external_labels:\n    plain: ${name}\n    braced: pre-${{{name}}}-post\n    unset: x$WATCHFIRE_TEST_SURELY_UNSET_VARIABLE\n    dollars: 'cost: $$5 $'\n    kept: no-vars\n"
    );
    let c = Config::parse(&src, Path::new("p.yml")).unwrap_or_else(|e| panic!("{e}"));
    let labels = &c.global.external_labels;
    assert_eq!(labels.get("plain"), Some(value.as_str()));
    assert_eq!(labels.get("braced"), Some(format!("pre-{value}-post").as_str()));
    assert_eq!(labels.get("unset"), Some("x"));
    assert_eq!(labels.get("dollars"), Some("cost: $5 $"));
    assert_eq!(labels.get("kept"), Some("no-vars"));
}

#[test]
fn global_limits_and_schemes_flow_into_jobs() {
    let src = "global:\n  scrape_interval: 20s\n  scrape_timeout: 15s\n  sample_limit: 100\n  body_size_limit: 1MB\n  metric_name_validation_scheme: legacy\n  scrape_native_histograms: true\n  scrape_protocols: [PrometheusText0.0.4]\nscrape_configs:\n  - job_name: a\n    scrape_interval: 10s\n  - job_name: b\n    sample_limit: 7\n    metric_name_validation_scheme: utf8\n";
    let c = Config::parse(src, Path::new("p.yml")).unwrap_or_else(|e| panic!("{e}"));
    let a = job(&c, "a");
    assert_eq!((a.scrape_interval, a.scrape_timeout), (secs(10), secs(10)));
    assert_eq!((a.sample_limit, a.body_size_limit), (100, ByteSize(1 << 20)));
    assert_eq!(a.name_validation_scheme(), NameValidationScheme::Legacy);
    assert_eq!(a.metric_name_escaping_scheme, Some(EscapingScheme::Underscores));
    assert!(a.scrape_native_histograms_enabled());
    assert_eq!(
        a.protocols(),
        [ScrapeProtocol::PrometheusText0_0_4],
        "global protocols win over native histograms"
    );
    let b = job(&c, "b");
    assert_eq!(
        (b.scrape_interval, b.scrape_timeout, b.sample_limit),
        (secs(20), secs(15), 7)
    );
    assert_eq!(b.metric_name_escaping_scheme, Some(EscapingScheme::AllowUtf8));
}
