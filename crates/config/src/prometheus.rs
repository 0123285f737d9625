//! `prometheus.yml`: the whole file model, upstream's defaults and validation (Prometheus
//! v3.14 config/config.go, model/relabel, discovery/{file,http,dns}).
//!
//! [`Config::load`] reads a file, applies the defaults (jobs inherit intervals, timeouts and
//! limits from `global:` as upstream), merges the jobs of `scrape_config_files`, validates, and
//! refuses what Watchfire does not implement yet with "not supported yet: <key>" at the line of
//! the block. [`Config::parse_with_unsupported`] returns those refusals as a list instead.
//!
//! Relative paths in the model (rule files, file SD files, TLS and credential files, log
//! files) stay as written: they are relative to the directory of the main config file, as
//! upstream resolves them. Jobs read from `scrape_config_files` have their relative paths
//! rewritten on load to be relative to that same directory.

mod checked;
mod discovery;
mod env;
mod relabel;
mod remote;
mod units;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use watchfire_model::{Duration, Labels};

use crate::error::{Error, Result};
use crate::yaml::{self, Unsupported, default_true, refuse_unsupported};
use checked::{Check, item, list, nullable, optional, string, with_context, without_unsupported};
use discovery::with_service_discovery;

pub use checked::Origin;
pub use discovery::{DnsRecordType, DnsSdConfig, FileSdConfig, HttpSdConfig, StaticConfig, UNSUPPORTED_DISCOVERY};
pub use relabel::{Action, DEFAULT_REGEX, RelabelConfig, RelabelRegex};
pub use remote::{MetadataConfig, ProtobufMessage, QueueConfig, RemoteReadConfig, RemoteWriteConfig};
pub use units::ByteSize;

// ---------------------------------------------------------------------------------------------
// Small value types

/// Which metric and label names are valid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NameValidationScheme {
    /// Any non-empty UTF-8 string (Prometheus 3's default).
    #[default]
    Utf8,
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*` for metrics, `[a-zA-Z_][a-zA-Z0-9_]*` for labels.
    Legacy,
}

impl NameValidationScheme {
    /// Whether `name` is a valid label name under this scheme.
    pub fn is_valid_label_name(self, name: &str) -> bool {
        match self {
            NameValidationScheme::Utf8 => watchfire_model::is_valid_label_name(name),
            NameValidationScheme::Legacy => watchfire_model::is_valid_legacy_label_name(name),
        }
    }

    /// Whether `name` is a valid metric name under this scheme.
    pub fn is_valid_metric_name(self, name: &str) -> bool {
        match self {
            NameValidationScheme::Utf8 => watchfire_model::is_valid_metric_name(name),
            NameValidationScheme::Legacy => watchfire_model::is_valid_legacy_metric_name(name),
        }
    }

    /// `utf8` or `legacy`; the empty string means "not set", as upstream.
    fn parse(s: &str) -> std::result::Result<Option<Self>, String> {
        match s {
            "" => Ok(None),
            "utf8" => Ok(Some(NameValidationScheme::Utf8)),
            "legacy" => Ok(Some(NameValidationScheme::Legacy)),
            _ => Err(format!("unrecognized ValidationScheme: {s:?}")),
        }
    }
}

fn validation_scheme<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<NameValidationScheme>, D::Error> {
    let s: String = string(d)?;
    NameValidationScheme::parse(&s).map_err(D::Error::custom)
}

fn validation_scheme_or_default<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<NameValidationScheme, D::Error> {
    Ok(validation_scheme(d)?.unwrap_or_default())
}

/// How names that are not valid legacy names are escaped when a target is asked for
/// legacy names (sent as `escaping=` in the `Accept` header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum EscapingScheme {
    /// No escaping: ask for UTF-8 names as they are.
    #[serde(rename = "allow-utf-8")]
    AllowUtf8,
    /// Replace invalid characters with `_`.
    #[serde(rename = "underscores")]
    Underscores,
    /// Replace `.` with `_dot_`, `_` with `__` and other characters with `__`.
    #[serde(rename = "dots")]
    Dots,
    /// Prefix with `U__` and encode invalid characters as `_<hex>_`.
    #[serde(rename = "values")]
    Values,
}

impl EscapingScheme {
    /// The scheme's name as written in configs and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            EscapingScheme::AllowUtf8 => "allow-utf-8",
            EscapingScheme::Underscores => "underscores",
            EscapingScheme::Dots => "dots",
            EscapingScheme::Values => "values",
        }
    }

    /// The scheme a validation scheme implies when none is set.
    fn implied_by(scheme: NameValidationScheme) -> Self {
        match scheme {
            NameValidationScheme::Utf8 => EscapingScheme::AllowUtf8,
            NameValidationScheme::Legacy => EscapingScheme::Underscores,
        }
    }
}

fn escaping_scheme<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<EscapingScheme>, D::Error> {
    let s: String = string(d)?;
    if s.is_empty() {
        return Ok(None);
    }
    [
        EscapingScheme::AllowUtf8,
        EscapingScheme::Underscores,
        EscapingScheme::Dots,
        EscapingScheme::Values,
    ]
    .into_iter()
    .find(|e| e.as_str() == s)
    .map(Some)
    .ok_or_else(|| {
        D::Error::custom(format!(
            "unknown name escaping scheme {s:?}, must be one of 'allow-utf-8', 'underscores', 'dots' or 'values'"
        ))
    })
}

/// An exposition format a scrape can negotiate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScrapeProtocol {
    /// The delimited protobuf format (`PrometheusProto`).
    PrometheusProto,
    /// OpenMetrics 0.0.1 (`OpenMetricsText0.0.1`).
    OpenMetricsText0_0_1,
    /// OpenMetrics 1.0.0 (`OpenMetricsText1.0.0`).
    OpenMetricsText1_0_0,
    /// The classic text format (`PrometheusText0.0.4`).
    PrometheusText0_0_4,
    /// The text format with UTF-8 names (`PrometheusText1.0.0`).
    PrometheusText1_0_0,
}

impl ScrapeProtocol {
    /// Every protocol, in upstream's sorted order (as listed in error messages).
    pub const ALL: [ScrapeProtocol; 5] = [
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::PrometheusProto,
        ScrapeProtocol::PrometheusText0_0_4,
        ScrapeProtocol::PrometheusText1_0_0,
    ];

    /// What a job negotiates by default.
    pub const DEFAULT: [ScrapeProtocol; 4] = [
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];

    /// What a job that scrapes native histograms negotiates by default.
    pub const PROTO_FIRST: [ScrapeProtocol; 5] = [
        ScrapeProtocol::PrometheusProto,
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];

    /// The protocol's name as written in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => "PrometheusProto",
            ScrapeProtocol::OpenMetricsText0_0_1 => "OpenMetricsText0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "OpenMetricsText1.0.0",
            ScrapeProtocol::PrometheusText0_0_4 => "PrometheusText0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "PrometheusText1.0.0",
        }
    }

    /// The media type with parameters, as sent in the `Accept` header.
    pub fn header_value(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => {
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
            }
            ScrapeProtocol::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "application/openmetrics-text;version=1.0.0",
            ScrapeProtocol::PrometheusText0_0_4 => "text/plain;version=0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "text/plain;version=1.0.0",
        }
    }

    /// Parses a protocol name (case-sensitive, as upstream).
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        ScrapeProtocol::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ScrapeProtocol::ALL.iter().map(|p| p.as_str()).collect();
                format!("unknown scrape protocol {s}, supported: [{}]", names.join(" "))
            })
    }
}

impl fmt::Display for ScrapeProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ScrapeProtocol {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ScrapeProtocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ScrapeProtocol::parse(&s).map_err(D::Error::custom)
    }
}

/// A `scrape_protocols` list: not empty, no protocol twice.
fn scrape_protocols<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Vec<ScrapeProtocol>>, D::Error> {
    let Some(list) = Option::<Vec<ScrapeProtocol>>::deserialize(d)? else {
        return Ok(None);
    };
    if list.is_empty() {
        return Err(D::Error::custom("scrape_protocols cannot be empty"));
    }
    if list.iter().enumerate().any(|(i, p)| list[..i].contains(p)) {
        let names: Vec<&str> = list.iter().map(|p| p.as_str()).collect();
        return Err(D::Error::custom(format!(
            "duplicated protocol in scrape_protocols, got [{}]",
            names.join(" ")
        )));
    }
    Ok(Some(list))
}

/// Upstream's rule for `rule_files` and `scrape_config_files` patterns (`patRulePath`): a `*`
/// may appear only in the last path element.
fn is_valid_file_pattern(pattern: &str) -> bool {
    pattern.split_once('*').is_none_or(|(_, after)| !after.contains('/'))
}

/// Declares a string list element type that checks the pattern rule with its own message.
macro_rules! pattern_list {
    ($fn_name:ident, $elem:ident, $what:literal) => {
        struct $elem(String);

        impl<'de> Deserialize<'de> for $elem {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                if is_valid_file_pattern(&s) {
                    Ok($elem(s))
                } else {
                    Err(D::Error::custom(format!(
                        concat!(
                            "invalid ",
                            $what,
                            " path {:?}: only the last path element may contain '*'"
                        ),
                        s
                    )))
                }
            }
        }

        fn $fn_name<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
            let list: Vec<$elem> = nullable(d)?;
            Ok(list.into_iter().map(|p| p.0).collect())
        }
    };
}

pattern_list!(rule_file_patterns, RuleFilePattern, "rule file");
pattern_list!(
    scrape_config_file_patterns,
    ScrapeConfigFilePattern,
    "scrape config file"
);

// ---------------------------------------------------------------------------------------------
// global and runtime

fn default_scrape_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_scrape_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Defaults for the other sections, and settings of the whole server.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlobalConfig {
    /// How often to scrape targets by default (default 1m).
    pub scrape_interval: Duration,
    /// How long a scrape may take by default (default 10s, at most the interval).
    #[serde(default)]
    pub scrape_timeout: Duration,
    /// The protocols to negotiate, most preferred first (default depends on each job).
    #[serde(deserialize_with = "scrape_protocols", skip_serializing_if = "Option::is_none")]
    pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
    /// How often to evaluate rules by default (default 1m).
    pub evaluation_interval: Duration,
    /// How far in the past rule evaluations query by default (default 0s).
    pub rule_query_offset: Duration,
    /// File to log PromQL queries to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_log_file: Option<String>,
    /// File to log scrape failures to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrape_failure_log_file: Option<String>,
    /// Labels added to every series and alert sent out (remote write, federation,
    /// Alertmanager). `$VAR` and `${VAR}` are replaced from the environment; `$$` is a `$`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Labels::is_empty")]
    pub external_labels: Labels,
    /// Largest uncompressed scrape body; 0 is no limit.
    pub body_size_limit: ByteSize,
    /// Most samples per scrape after metric relabeling; 0 is no limit.
    pub sample_limit: u64,
    /// Most targets per job after relabeling; 0 is no limit.
    pub target_limit: u64,
    /// Most labels per sample; 0 is no limit.
    pub label_limit: u64,
    /// Longest label name in bytes; 0 is no limit.
    pub label_name_length_limit: u64,
    /// Longest label value in bytes; 0 is no limit.
    pub label_value_length_limit: u64,
    /// Most dropped targets per job kept for the targets page; 0 is no limit.
    pub keep_dropped_targets: u64,
    /// `utf8` (default) or `legacy`.
    #[serde(deserialize_with = "validation_scheme_or_default")]
    pub metric_name_validation_scheme: NameValidationScheme,
    /// Escaping asked of targets: allow-utf-8, underscores, dots or values (default follows
    /// the validation scheme).
    #[serde(
        default,
        deserialize_with = "escaping_scheme",
        skip_serializing_if = "Option::is_none"
    )]
    pub metric_name_escaping_scheme: Option<EscapingScheme>,
    /// Whether to scrape native histograms (default false).
    pub scrape_native_histograms: bool,
    /// Whether to convert classic histograms to native histograms with custom buckets.
    pub convert_classic_histograms_to_nhcb: bool,
    /// Whether to keep scraping the classic form of histograms also exposed as native.
    pub always_scrape_classic_histograms: bool,
    /// Whether to store scrape_timeout_seconds, scrape_sample_limit and
    /// scrape_body_size_bytes for each scrape.
    pub extra_scrape_metrics: bool,
    /// Where the block was written.
    #[serde(skip)]
    pub origin: Origin,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: default_scrape_interval(),
            scrape_timeout: default_scrape_timeout(),
            scrape_protocols: None,
            evaluation_interval: Duration::from_secs(60),
            rule_query_offset: Duration::ZERO,
            query_log_file: None,
            scrape_failure_log_file: None,
            external_labels: Labels::empty(),
            body_size_limit: ByteSize(0),
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            keep_dropped_targets: 0,
            metric_name_validation_scheme: NameValidationScheme::Utf8,
            metric_name_escaping_scheme: Some(EscapingScheme::AllowUtf8),
            scrape_native_histograms: false,
            convert_classic_histograms_to_nhcb: false,
            always_scrape_classic_histograms: false,
            extra_scrape_metrics: false,
            origin: Origin::default(),
        }
    }
}

impl Check for GlobalConfig {
    const WHAT: &'static str = "global section";

    fn origin_mut(&mut self) -> Option<&mut Origin> {
        Some(&mut self.origin)
    }
}

impl GlobalConfig {
    /// Applies upstream's defaulting (GlobalConfig.UnmarshalYAML), expands the environment
    /// in external labels and checks their names.
    fn finish(&mut self, errors: &mut Vec<Error>) {
        let at = self.origin;
        if self.scrape_interval.is_zero() {
            self.scrape_interval = default_scrape_interval();
        }
        if self.scrape_timeout > self.scrape_interval {
            errors.push(at.error("global scrape timeout greater than scrape interval"));
        }
        if self.scrape_timeout.is_zero() {
            self.scrape_timeout = default_scrape_timeout().min(self.scrape_interval);
        }
        if self.evaluation_interval.is_zero() {
            self.evaluation_interval = Duration::from_secs(60);
        }
        let scheme = self.metric_name_validation_scheme;
        self.metric_name_escaping_scheme
            .get_or_insert(EscapingScheme::implied_by(scheme));
        let mut expanded = Vec::with_capacity(self.external_labels.len());
        for label in self.external_labels.iter() {
            if !scheme.is_valid_label_name(label.name) {
                errors.push(at.error(format!("external_labels: {:?} is not a valid label name", label.name)));
            }
            expanded.push((label.name.to_owned(), env::expand_from_env(label.value)));
        }
        self.external_labels = Labels::from_pairs(expanded);
    }
}

fn default_gogc() -> i64 {
    75
}

/// Process settings.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Upstream's Go garbage collector target percentage (default 75); accepted and kept for
    /// compatibility, with no effect on Watchfire.
    pub gogc: i64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig { gogc: default_gogc() }
    }
}

// ---------------------------------------------------------------------------------------------
// scrape_configs

fn default_metrics_path() -> String {
    "/metrics".to_owned()
}

fn default_scheme() -> String {
    "http".to_owned()
}

fn check_scheme(scheme: &str) -> Option<String> {
    (scheme != "http" && scheme != "https").then(|| format!("scheme must be 'http' or 'https', got {scheme:?}"))
}

with_service_discovery! {
    /// One scrape job: how to find its targets and how to scrape them. Settings left unset
    /// are taken from `global:` when the file is loaded.
    #[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    pub struct ScrapeConfig {
        /// The job's name, the default `job` label of its targets; required and unique.
        #[serde(default, deserialize_with = "string")]
        pub job_name: String,
        /// Whether labels in scraped data win over target labels (default false).
        #[serde(default)]
        pub honor_labels: bool,
        /// Whether to keep timestamps present in scraped data (default true).
        #[serde(default = "default_true")]
        pub honor_timestamps: bool,
        /// Whether series with explicit timestamps also get staleness markers.
        #[serde(default)]
        pub track_timestamps_staleness: bool,
        /// URL query parameters sent with each scrape.
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
        pub params: BTreeMap<String, Vec<String>>,
        /// How often to scrape (default: global).
        #[serde(default)]
        pub scrape_interval: Duration,
        /// How long a scrape may take (default: the global timeout, at most the interval).
        #[serde(default)]
        pub scrape_timeout: Duration,
        /// The protocols to negotiate, most preferred first.
        #[serde(default, deserialize_with = "scrape_protocols", skip_serializing_if = "Option::is_none")]
        pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
        /// The format assumed when a target sends no usable Content-Type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub fallback_scrape_protocol: Option<ScrapeProtocol>,
        /// Whether to scrape native histograms (default: global).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scrape_native_histograms: Option<bool>,
        /// Whether to keep the classic form of histograms also exposed as native (default: global).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub always_scrape_classic_histograms: Option<bool>,
        /// Whether to convert classic histograms to native ones with custom buckets (default: global).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub convert_classic_histograms_to_nhcb: Option<bool>,
        /// File to log this job's scrape failures to (default: global).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scrape_failure_log_file: Option<String>,
        /// The HTTP path to scrape (default /metrics).
        #[serde(default = "default_metrics_path", deserialize_with = "string")]
        pub metrics_path: String,
        /// http (default) or https.
        #[serde(default = "default_scheme", deserialize_with = "string")]
        pub scheme: String,
        /// Whether to ask targets for gzip (default true).
        #[serde(default = "default_true")]
        pub enable_compression: bool,
        /// Largest uncompressed body; 0 is no limit (default: global).
        #[serde(default)]
        pub body_size_limit: ByteSize,
        /// Most samples per scrape after metric relabeling; 0 is no limit (default: global).
        #[serde(default)]
        pub sample_limit: u64,
        /// Most targets after relabeling; 0 is no limit (default: global).
        #[serde(default)]
        pub target_limit: u64,
        /// Most labels per sample; 0 is no limit (default: global).
        #[serde(default)]
        pub label_limit: u64,
        /// Longest label name in bytes; 0 is no limit (default: global).
        #[serde(default)]
        pub label_name_length_limit: u64,
        /// Longest label value in bytes; 0 is no limit (default: global).
        #[serde(default)]
        pub label_value_length_limit: u64,
        /// Most buckets per native histogram before resolution is reduced; 0 is no limit.
        #[serde(default)]
        pub native_histogram_bucket_limit: u64,
        /// Smallest growth factor between native histogram buckets; 0 is no limit.
        #[serde(default)]
        pub native_histogram_min_bucket_factor: f64,
        /// Most dropped targets kept for the targets page; 0 is no limit (default: global).
        #[serde(default)]
        pub keep_dropped_targets: u64,
        /// `utf8` or `legacy` (default: global).
        #[serde(default, deserialize_with = "validation_scheme", skip_serializing_if = "Option::is_none")]
        pub metric_name_validation_scheme: Option<NameValidationScheme>,
        /// Escaping asked of targets (default follows the validation scheme).
        #[serde(default, deserialize_with = "escaping_scheme", skip_serializing_if = "Option::is_none")]
        pub metric_name_escaping_scheme: Option<EscapingScheme>,
        /// Whether to store the extra scrape metrics (default: global).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub extra_scrape_metrics: Option<bool>,
        /// Relabeling of discovered targets.
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
        pub relabel_configs: Vec<RelabelConfig>,
        /// Relabeling of scraped samples.
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
        pub metric_relabel_configs: Vec<RelabelConfig>,
        /// Where the job was written.
        #[serde(skip)]
        pub origin: Origin,
    }
}

impl Check for ScrapeConfig {
    const WHAT: &'static str = "scrape config section";

    fn origin_mut(&mut self) -> Option<&mut Origin> {
        Some(&mut self.origin)
    }
}

/// Upstream's `CheckTargetAddress`: a static target is a host and port, not a URL.
fn check_static_targets(groups: &[StaticConfig], at: Origin, errors: &mut Vec<Error>) {
    for target in groups.iter().flat_map(|g| &g.targets) {
        if target.contains('/') {
            errors.push(at.error(format!("{target:?} is not a valid hostname")));
        }
    }
}

/// Refuses the unsupported blocks of HTTP SD configs (their other checks ran when parsing).
fn refuse_http_sd(configs: &[HttpSdConfig], unsupported: &mut Vec<Error>) {
    for c in configs {
        refuse_unsupported(unsupported, "oauth2", &c.oauth2);
    }
}

fn rebase(dir: &Path, path: &mut String) {
    if !path.is_empty() && Path::new(path.as_str()).is_relative() {
        *path = dir.join(path.as_str()).to_string_lossy().into_owned();
    }
}

fn rebase_opt(dir: &Path, path: &mut Option<String>) {
    if let Some(p) = path {
        rebase(dir, p);
    }
}

/// Rewrites the relative file paths of inlined HTTP client fields (upstream
/// `HTTPClientConfig.SetDirectory`).
macro_rules! rebase_http_client_paths {
    ($c:expr, $dir:expr) => {{
        let (c, dir) = ($c, $dir);
        if let Some(b) = c.basic_auth.as_mut() {
            rebase_opt(dir, &mut b.username_file);
            rebase_opt(dir, &mut b.password_file);
        }
        if let Some(a) = c.authorization.as_mut() {
            rebase_opt(dir, &mut a.credentials_file);
        }
        rebase_opt(dir, &mut c.bearer_token_file);
        rebase_opt(dir, &mut c.tls_config.ca_file);
        rebase_opt(dir, &mut c.tls_config.cert_file);
        rebase_opt(dir, &mut c.tls_config.key_file);
        for header in c.http_headers.values_mut() {
            header.files.iter_mut().for_each(|f| rebase(dir, f));
        }
    }};
}

impl ScrapeConfig {
    /// Whether native histograms are scraped (after loading, the effective setting).
    pub fn scrape_native_histograms_enabled(&self) -> bool {
        self.scrape_native_histograms.unwrap_or(false)
    }

    /// Whether classic histograms are converted to NHCB (after loading, the effective setting).
    pub fn convert_classic_histograms_to_nhcb_enabled(&self) -> bool {
        self.convert_classic_histograms_to_nhcb.unwrap_or(false)
    }

    /// Whether classic histograms are always scraped (after loading, the effective setting).
    pub fn always_scrape_classic_histograms_enabled(&self) -> bool {
        self.always_scrape_classic_histograms.unwrap_or(false)
    }

    /// Whether the extra scrape metrics are stored (after loading, the effective setting).
    pub fn extra_scrape_metrics_enabled(&self) -> bool {
        self.extra_scrape_metrics.unwrap_or(false)
    }

    /// The name validation scheme in force for the job (set when loading).
    pub fn name_validation_scheme(&self) -> NameValidationScheme {
        self.metric_name_validation_scheme.unwrap_or_default()
    }

    /// The protocols the job negotiates (set when loading).
    pub fn protocols(&self) -> &[ScrapeProtocol] {
        self.scrape_protocols.as_deref().unwrap_or(&ScrapeProtocol::DEFAULT)
    }

    /// Makes relative paths relative to `dir` (for jobs read from another directory).
    fn rebase_paths(&mut self, dir: &Path) {
        rebase_http_client_paths!(&mut *self, dir);
        for sd in &mut self.file_sd_configs {
            sd.files.iter_mut().for_each(|f| rebase(dir, f));
        }
        for sd in &mut self.http_sd_configs {
            rebase_http_client_paths!(sd, dir);
        }
        rebase_opt(dir, &mut self.scrape_failure_log_file);
    }

    /// Applies the global defaults (upstream ScrapeConfig.Validate) and checks the job.
    fn finish(&mut self, global: &GlobalConfig, errors: &mut Vec<Error>, unsupported: &mut Vec<Error>) {
        let at = self.origin;
        let mut problems = Vec::new();
        if self.job_name.is_empty() {
            problems.push(at.error("job_name is empty"));
        }
        problems.extend(
            without_unsupported(self.http_client().validate())
                .into_iter()
                .map(|e| at.place(e)),
        );
        if self.relabel_configs.is_empty() {
            check_static_targets(&self.static_configs, at, &mut problems);
        }
        problems.extend(check_scheme(&self.scheme).map(|m| at.error(m)));

        if self.scrape_interval.is_zero() {
            self.scrape_interval = global.scrape_interval;
        }
        if self.scrape_timeout > self.scrape_interval {
            problems.push(at.error("scrape timeout greater than scrape interval"));
        }
        if self.scrape_timeout.is_zero() {
            self.scrape_timeout = global.scrape_timeout.min(self.scrape_interval);
        }
        for (own, inherited) in [
            (&mut self.sample_limit, global.sample_limit),
            (&mut self.target_limit, global.target_limit),
            (&mut self.label_limit, global.label_limit),
            (&mut self.label_name_length_limit, global.label_name_length_limit),
            (&mut self.label_value_length_limit, global.label_value_length_limit),
            (&mut self.keep_dropped_targets, global.keep_dropped_targets),
        ] {
            if *own == 0 {
                *own = inherited;
            }
        }
        if self.body_size_limit.0 == 0 {
            self.body_size_limit = global.body_size_limit;
        }
        if self.scrape_failure_log_file.is_none() {
            self.scrape_failure_log_file.clone_from(&global.scrape_failure_log_file);
        }
        self.scrape_native_histograms
            .get_or_insert(global.scrape_native_histograms);
        self.extra_scrape_metrics.get_or_insert(global.extra_scrape_metrics);
        self.convert_classic_histograms_to_nhcb
            .get_or_insert(global.convert_classic_histograms_to_nhcb);
        self.always_scrape_classic_histograms
            .get_or_insert(global.always_scrape_classic_histograms);
        if self.scrape_protocols.is_none() {
            self.scrape_protocols = Some(match &global.scrape_protocols {
                Some(p) => p.clone(),
                None if self.scrape_native_histograms_enabled() => ScrapeProtocol::PROTO_FIRST.to_vec(),
                None => ScrapeProtocol::DEFAULT.to_vec(),
            });
        }

        // The escaping scheme follows the job's validation scheme if the job sets one, else
        // the global escaping scheme (upstream ScrapeConfig.Validate).
        let local_scheme = self.metric_name_validation_scheme;
        let scheme = local_scheme.unwrap_or(global.metric_name_validation_scheme);
        self.metric_name_validation_scheme = Some(scheme);
        let escaping = *self.metric_name_escaping_scheme.get_or_insert(match local_scheme {
            None => global
                .metric_name_escaping_scheme
                .unwrap_or(EscapingScheme::implied_by(scheme)),
            Some(s) => EscapingScheme::implied_by(s),
        });
        if escaping == EscapingScheme::AllowUtf8 && scheme != NameValidationScheme::Utf8 {
            problems.push(at.error("utf8 metric names requested but validation scheme is not set to UTF8"));
        }
        for rule in self.relabel_configs.iter().chain(&self.metric_relabel_configs) {
            if let Err(m) = rule.validate_names(scheme) {
                problems.push(rule.origin.error(m));
            }
        }
        if self.job_name.is_empty() {
            errors.extend(problems);
        } else {
            let job = format!("job {:?}", self.job_name);
            errors.extend(problems.into_iter().map(|e| with_context(e, &job)));
        }

        for (key, block) in self.unsupported_discovery() {
            refuse_unsupported(unsupported, key, block);
        }
        refuse_unsupported(unsupported, "oauth2", &self.oauth2);
        refuse_http_sd(&self.http_sd_configs, unsupported);
    }
}

/// The contents of a file named by `scrape_config_files`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScrapeConfigFile {
    #[serde(default, deserialize_with = "list")]
    scrape_configs: Vec<ScrapeConfig>,
}

// ---------------------------------------------------------------------------------------------
// alerting

/// Where and how alerts are sent.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertingConfig {
    /// Relabeling applied to every alert before it is sent.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    /// The Alertmanagers to send to.
    #[serde(deserialize_with = "list", skip_serializing_if = "Vec::is_empty")]
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

/// The Alertmanager API version alerts are pushed with; only v2 exists since Prometheus 3.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AlertmanagerApiVersion {
    /// `/api/v2/alerts`.
    #[default]
    V2,
}

impl Serialize for AlertmanagerApiVersion {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str("v2")
    }
}

impl<'de> Deserialize<'de> for AlertmanagerApiVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "v2" => Ok(AlertmanagerApiVersion::V2),
            _ => Err(D::Error::custom(format!(
                "expected Alertmanager api version to be one of [v2] but got {s}"
            ))),
        }
    }
}

fn default_alertmanager_timeout() -> Duration {
    Duration::from_secs(10)
}

with_service_discovery! {
    /// A set of Alertmanagers, found like scrape targets, and how to talk to them.
    #[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    pub struct AlertmanagerConfig {
        /// http (default) or https.
        #[serde(default = "default_scheme", deserialize_with = "string")]
        pub scheme: String,
        /// Prefix of the path alerts are pushed to.
        #[serde(default, deserialize_with = "string", skip_serializing_if = "String::is_empty")]
        pub path_prefix: String,
        /// Timeout of one push (default 10s).
        #[serde(default = "default_alertmanager_timeout")]
        pub timeout: Duration,
        /// The API version; only v2 is accepted.
        #[serde(default)]
        pub api_version: AlertmanagerApiVersion,
        /// AWS Signature Version 4 signing: not supported yet.
        #[serde(default, skip_serializing)]
        pub sigv4: Unsupported,
        /// Relabeling of discovered Alertmanagers.
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
        pub relabel_configs: Vec<RelabelConfig>,
        /// Relabeling of alerts sent to these Alertmanagers.
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
        pub alert_relabel_configs: Vec<RelabelConfig>,
        /// Where the block was written.
        #[serde(skip)]
        pub origin: Origin,
    }
}

impl Check for AlertmanagerConfig {
    const WHAT: &'static str = "alertmanager config section";

    fn origin_mut(&mut self) -> Option<&mut Origin> {
        Some(&mut self.origin)
    }
}

impl AlertmanagerConfig {
    fn validate(&self, scheme: NameValidationScheme, errors: &mut Vec<Error>, unsupported: &mut Vec<Error>) {
        let at = self.origin;
        errors.extend(
            without_unsupported(self.http_client().validate())
                .into_iter()
                .map(|e| at.place(e)),
        );
        let auth = self.basic_auth.is_some() || self.authorization.is_some() || self.oauth2.is_some();
        if auth && self.sigv4.is_some() {
            errors.push(at.error("at most one of basic_auth, authorization, oauth2, & sigv4 must be configured"));
        }
        if self.relabel_configs.is_empty() {
            check_static_targets(&self.static_configs, at, errors);
        }
        errors.extend(check_scheme(&self.scheme).map(|m| at.error(m)));
        for rule in self.relabel_configs.iter().chain(&self.alert_relabel_configs) {
            if let Err(m) = rule.validate_names(scheme) {
                errors.push(rule.origin.error(m));
            }
        }
        for (key, block) in self.unsupported_discovery() {
            refuse_unsupported(unsupported, key, block);
        }
        refuse_unsupported(unsupported, "oauth2", &self.oauth2);
        refuse_unsupported(unsupported, "sigv4", &self.sigv4);
        refuse_http_sd(&self.http_sd_configs, unsupported);
    }
}

// ---------------------------------------------------------------------------------------------
// storage, tracing, otlp

/// Local storage settings that can change on reload.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// The time series database.
    #[serde(deserialize_with = "item")]
    pub tsdb: TsdbConfig,
    /// In-memory exemplar storage.
    #[serde(deserialize_with = "nullable")]
    pub exemplars: ExemplarsConfig,
}

/// The encoding of float chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FloatChunkEncoding {
    /// Gorilla XOR.
    Xor,
    /// XOR2.
    Xor2,
}

fn float_chunk_encoding<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<FloatChunkEncoding>, D::Error> {
    let s: String = string(d)?;
    match s.as_str() {
        "" => Ok(None),
        "xor" => Ok(Some(FloatChunkEncoding::Xor)),
        "xor2" => Ok(Some(FloatChunkEncoding::Xor2)),
        _ => Err(D::Error::custom(format!(
            "'storage.tsdb.chunk_encoding.floats' must be 'xor' or 'xor2', or the field must be omitted entirely, got {s:?}"
        ))),
    }
}

/// Chunk encodings per sample type.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChunkEncodingConfig {
    /// `xor` or `xor2`; unset follows the command line.
    #[serde(deserialize_with = "float_chunk_encoding", skip_serializing_if = "Option::is_none")]
    pub floats: Option<FloatChunkEncoding>,
}

/// How long and how much data to keep.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Age after which blocks are deleted; 0 leaves it to the command line.
    pub time: Duration,
    /// Total size of blocks above which the oldest are deleted; 0 is no limit.
    pub size: ByteSize,
    /// Share of the disk (0 to 100) above which the oldest blocks are deleted; 0 is no limit.
    pub percentage: f64,
}

impl Check for RetentionConfig {
    const WHAT: &'static str = "retention section";

    fn check(&mut self) -> std::result::Result<(), String> {
        if self.size.0 < 0 {
            return Err(format!(
                "'storage.tsdb.retention.size' must be greater than or equal to 0, got {}",
                self.size
            ));
        }
        if !(0.0..=100.0).contains(&self.percentage) {
            return Err(format!(
                "'storage.tsdb.retention.percentage' must be in the range [0, 100], got {}",
                self.percentage
            ));
        }
        Ok(())
    }
}

/// TSDB settings.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TsdbConfig {
    /// How far back out-of-order samples are accepted (default 0s: none).
    pub out_of_order_time_window: Duration,
    /// Share (0 to 1) of stale series in the head that triggers their compaction; 0 is off.
    pub stale_series_compaction_threshold: f64,
    /// Chunk encodings.
    #[serde(deserialize_with = "nullable")]
    pub chunk_encoding: ChunkEncodingConfig,
    /// Retention.
    #[serde(deserialize_with = "item")]
    pub retention: RetentionConfig,
}

impl Check for TsdbConfig {
    const WHAT: &'static str = "tsdb section";
}

/// Exemplar storage settings.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExemplarsConfig {
    /// Size of the exemplar ring buffer; 0 or less disables it (default 100000).
    pub max_exemplars: i64,
}

impl Default for ExemplarsConfig {
    fn default() -> Self {
        ExemplarsConfig { max_exemplars: 100_000 }
    }
}

/// The protocol traces are exported with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TracingClientType {
    /// OTLP over gRPC (default).
    #[default]
    Grpc,
    /// OTLP over HTTP.
    Http,
}

impl<'de> Deserialize<'de> for TracingClientType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "grpc" => Ok(TracingClientType::Grpc),
            "http" => Ok(TracingClientType::Http),
            _ => Err(D::Error::custom(format!(
                "expected tracing client type to be http or grpc, but got {s}"
            ))),
        }
    }
}

/// Exporting traces over OTLP (experimental upstream).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingConfig {
    /// `grpc` (default) or `http`.
    pub client_type: TracingClientType,
    /// Where to send traces, `host:port`; required.
    pub endpoint: String,
    /// Share of traces sampled, 0 to 1 (default 0).
    pub sampling_fraction: f64,
    /// Whether to use a connection without TLS.
    pub insecure: bool,
    /// TLS settings.
    pub tls_config: crate::http::TlsConfig,
    /// Extra headers sent to the collector.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `gzip`, or unset for none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Longest wait for one export (default 10s).
    pub timeout: Duration,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            client_type: TracingClientType::Grpc,
            endpoint: String::new(),
            sampling_fraction: 0.0,
            insecure: false,
            tls_config: crate::http::TlsConfig::default(),
            headers: BTreeMap::new(),
            compression: None,
            timeout: Duration::from_secs(10),
        }
    }
}

impl Check for TracingConfig {
    const WHAT: &'static str = "tracing section";

    fn check(&mut self) -> std::result::Result<(), String> {
        for name in self.headers.keys() {
            match remote::check_headers([name]).first() {
                Some(_) if name.eq_ignore_ascii_case("authorization") => {
                    return Err("custom authorization header configuration is not yet supported".into());
                }
                Some(problem) => return Err(problem.clone()),
                None => {}
            }
        }
        if self.endpoint.is_empty() {
            return Err("tracing endpoint must be set".into());
        }
        match self.compression.as_deref() {
            None | Some("gzip") => Ok(()),
            Some(other) => Err(format!(
                "invalid compression type {other} provided, valid options: gzip"
            )),
        }
    }
}

/// How OTLP metric and attribute names become Prometheus names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TranslationStrategy {
    /// Escape to legacy names and add type and unit suffixes (default).
    #[default]
    UnderscoreEscapingWithSuffixes,
    /// Escape to legacy names, no suffixes.
    UnderscoreEscapingWithoutSuffixes,
    /// Keep UTF-8 names, add suffixes.
    #[serde(rename = "NoUTF8EscapingWithSuffixes")]
    NoUtf8EscapingWithSuffixes,
    /// Keep names exactly as sent.
    NoTranslation,
}

impl TranslationStrategy {
    /// The strategy's name as written in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            TranslationStrategy::UnderscoreEscapingWithSuffixes => "UnderscoreEscapingWithSuffixes",
            TranslationStrategy::UnderscoreEscapingWithoutSuffixes => "UnderscoreEscapingWithoutSuffixes",
            TranslationStrategy::NoUtf8EscapingWithSuffixes => "NoUTF8EscapingWithSuffixes",
            TranslationStrategy::NoTranslation => "NoTranslation",
        }
    }

    fn needs_utf8(self) -> bool {
        matches!(
            self,
            TranslationStrategy::NoUtf8EscapingWithSuffixes | TranslationStrategy::NoTranslation
        )
    }
}

fn translation_strategy<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<TranslationStrategy, D::Error> {
    let s: String = string(d)?;
    match s.as_str() {
        "" | "UnderscoreEscapingWithSuffixes" => Ok(TranslationStrategy::UnderscoreEscapingWithSuffixes),
        "UnderscoreEscapingWithoutSuffixes" => Ok(TranslationStrategy::UnderscoreEscapingWithoutSuffixes),
        "NoUTF8EscapingWithSuffixes" => Ok(TranslationStrategy::NoUtf8EscapingWithSuffixes),
        "NoTranslation" => Ok(TranslationStrategy::NoTranslation),
        _ => Err(D::Error::custom(format!("unsupported OTLP translation strategy {s:?}"))),
    }
}

/// Ingesting metrics over OTLP (`/api/v1/otlp/v1/metrics`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpConfig {
    /// Whether every resource attribute becomes a label (then `ignore_resource_attributes`
    /// lists the exceptions).
    pub promote_all_resource_attributes: bool,
    /// Resource attributes that become labels.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub promote_resource_attributes: Vec<String>,
    /// Resource attributes not promoted when all are.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub ignore_resource_attributes: Vec<String>,
    /// How names are translated (default UnderscoreEscapingWithSuffixes).
    #[serde(deserialize_with = "translation_strategy")]
    pub translation_strategy: TranslationStrategy,
    /// Whether `service.name`, `service.namespace` and `service.instance.id` stay on
    /// target_info after becoming job and instance.
    pub keep_identifying_resource_attributes: bool,
    /// Whether explicit-bucket histograms become native histograms with custom buckets.
    pub convert_histograms_to_nhcb: bool,
    /// Whether OTel scope name, version, schema URL and attributes become labels.
    pub promote_scope_metadata: bool,
    /// Whether label names starting with one `_` get a `key` prefix (default true).
    pub label_name_underscore_sanitization: bool,
    /// Whether runs of `_` in label names are kept (default true).
    pub label_name_preserve_multiple_underscores: bool,
    /// Where the block was written.
    #[serde(skip)]
    pub origin: Origin,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            promote_all_resource_attributes: false,
            promote_resource_attributes: Vec::new(),
            ignore_resource_attributes: Vec::new(),
            translation_strategy: TranslationStrategy::UnderscoreEscapingWithSuffixes,
            keep_identifying_resource_attributes: false,
            convert_histograms_to_nhcb: false,
            promote_scope_metadata: false,
            label_name_underscore_sanitization: true,
            label_name_preserve_multiple_underscores: true,
            origin: Origin::default(),
        }
    }
}

/// Trims attribute names and refuses empty and repeated ones (upstream `sanitizeAttributes`).
fn sanitize_attributes(attributes: &mut [String], adjective: &str) -> std::result::Result<(), String> {
    let mut problems = Vec::new();
    for i in 0..attributes.len() {
        let trimmed = attributes[i].trim().to_owned();
        if trimmed.is_empty() {
            problems.push(format!("empty {adjective} OTel resource attribute"));
        } else if attributes[..i].contains(&trimmed) {
            problems.push(format!("duplicated {adjective} OTel resource attribute {trimmed:?}"));
        }
        attributes[i] = trimmed;
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

impl Check for OtlpConfig {
    const WHAT: &'static str = "otlp section";

    fn origin_mut(&mut self) -> Option<&mut Origin> {
        Some(&mut self.origin)
    }

    fn check(&mut self) -> std::result::Result<(), String> {
        if self.promote_all_resource_attributes {
            if !self.promote_resource_attributes.is_empty() {
                return Err(
                    "'promote_all_resource_attributes' and 'promote_resource_attributes' cannot be configured \
                            simultaneously"
                        .into(),
                );
            }
            sanitize_attributes(&mut self.ignore_resource_attributes, "ignored")
                .map_err(|e| format!("invalid 'ignore_resource_attributes': {e}"))
        } else {
            if !self.ignore_resource_attributes.is_empty() {
                return Err(
                    "'ignore_resource_attributes' cannot be configured unless 'promote_all_resource_attributes' is true"
                        .into(),
                );
            }
            sanitize_attributes(&mut self.promote_resource_attributes, "promoted")
                .map_err(|e| format!("invalid 'promote_resource_attributes': {e}"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The whole file

/// A `prometheus.yml`. An empty file gives [`Config::default`].
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Defaults for the other sections, and server-wide settings.
    #[serde(deserialize_with = "item")]
    pub global: GlobalConfig,
    /// Process settings.
    #[serde(deserialize_with = "nullable")]
    pub runtime: RuntimeConfig,
    /// Rule files to load; the last path element may be a glob.
    #[serde(deserialize_with = "rule_file_patterns", skip_serializing_if = "Vec::is_empty")]
    pub rule_files: Vec<String>,
    /// Files holding more `scrape_configs`; the last path element may be a glob. Their jobs are
    /// appended to `scrape_configs` on load.
    #[serde(
        deserialize_with = "scrape_config_file_patterns",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub scrape_config_files: Vec<String>,
    /// The scrape jobs.
    #[serde(deserialize_with = "list", skip_serializing_if = "Vec::is_empty")]
    pub scrape_configs: Vec<ScrapeConfig>,
    /// Alert relabeling and Alertmanagers.
    #[serde(deserialize_with = "nullable")]
    pub alerting: AlertingConfig,
    /// Remote write endpoints.
    #[serde(deserialize_with = "list", skip_serializing_if = "Vec::is_empty")]
    pub remote_write: Vec<RemoteWriteConfig>,
    /// Remote read endpoints.
    #[serde(deserialize_with = "list", skip_serializing_if = "Vec::is_empty")]
    pub remote_read: Vec<RemoteReadConfig>,
    /// Local storage settings.
    #[serde(deserialize_with = "nullable")]
    pub storage: StorageConfig,
    /// Trace export; off unless set.
    #[serde(deserialize_with = "optional", skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingConfig>,
    /// OTLP ingestion.
    #[serde(deserialize_with = "item")]
    pub otlp: OtlpConfig,
}

/// Validation results: problems, and features refused as not supported yet.
#[derive(Default)]
struct Findings {
    errors: Vec<Error>,
    unsupported: Vec<Error>,
}

impl Findings {
    /// Moves `errors` and `unsupported` in, naming `file` where they have no file yet.
    fn add(&mut self, file: &Path, errors: Vec<Error>, unsupported: Vec<Error>) {
        self.errors.extend(errors.into_iter().map(|e| e.in_file(file)));
        self.unsupported
            .extend(unsupported.into_iter().map(|e| e.in_file(file)));
    }
}

fn error_path(e: &Error) -> Option<&Path> {
    match e {
        Error::Io { path, .. } | Error::Parse { path, .. } | Error::Invalid { path, .. } => Some(path),
        Error::Many(list) => list.first().and_then(error_path),
    }
}

/// Orders errors as a reader meets them: the main file first, each file by position.
fn sort_errors(errors: &mut [Error], main: &Path) {
    errors.sort_by_key(|e| {
        (
            error_path(e) != Some(main),
            error_path(e).map(Path::to_path_buf),
            e.position(),
        )
    });
}

/// Expands one glob pattern relative to `dir`, as upstream's `filepath.Glob` (I/O errors on
/// the way are skipped; a pattern without wildcards names the file only if it exists).
fn expand_glob(pattern: &str, dir: &Path) -> Result<Vec<PathBuf>> {
    let full = if Path::new(pattern).is_absolute() || dir.as_os_str().is_empty() {
        pattern.to_owned()
    } else {
        format!(
            "{}{}{}",
            glob::Pattern::escape(&dir.to_string_lossy()),
            std::path::MAIN_SEPARATOR,
            pattern
        )
    };
    let paths = glob::glob(&full).map_err(|e| Error::invalid(format!("invalid file pattern {pattern:?}: {e}")))?;
    Ok(paths.filter_map(std::result::Result::ok).collect())
}

fn config_dir(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}

impl Config {
    /// Reads, parses and validates the file at `path`, including the files it names in
    /// `scrape_config_files`. Fails on any problem and on any feature Watchfire does not
    /// support yet, listing them all with file, line and column.
    pub fn load(path: &Path) -> Result<Config> {
        let src = yaml::read_file(path)?;
        Config::parse(&src, path)
    }

    /// [`Config::load`] for the contents `src` of the file at `path`.
    pub fn parse(src: &str, path: &Path) -> Result<Config> {
        let (config, findings) = Config::parse_all(src, path)?;
        let mut all = findings.errors;
        all.extend(findings.unsupported);
        sort_errors(&mut all, path);
        Error::from_list(all)?;
        Ok(config)
    }

    /// Like [`Config::parse`], but features Watchfire does not support yet are returned as a
    /// list of located "not supported yet: <key>" errors instead of failing. Every other
    /// problem still fails.
    pub fn parse_with_unsupported(src: &str, path: &Path) -> Result<(Config, Vec<Error>)> {
        let (config, findings) = Config::parse_all(src, path)?;
        Error::from_list(findings.errors)?;
        Ok((config, findings.unsupported))
    }

    /// The rule files, with `rule_files` globs expanded relative to `config_dir` (the directory
    /// of the config file). Patterns that match nothing are skipped, as upstream.
    pub fn rule_file_paths(&self, config_dir: &Path) -> Result<Vec<PathBuf>> {
        let mut paths = Vec::new();
        let mut errors = Vec::new();
        for pattern in &self.rule_files {
            match expand_glob(pattern, config_dir) {
                Ok(found) => paths.extend(found),
                Err(e) => errors.push(e),
            }
        }
        Error::from_list(errors)?;
        Ok(paths)
    }

    fn parse_all(src: &str, path: &Path) -> Result<(Config, Findings)> {
        let mut config: Config = yaml::from_str(src, path)?;
        let mut findings = Findings::default();
        let (mut errors, mut unsupported) = (Vec::new(), Vec::new());
        config.finish(&mut errors, &mut unsupported);
        findings.add(path, errors, unsupported);
        config.load_scrape_config_files(path, &mut findings);
        sort_errors(&mut findings.errors, path);
        sort_errors(&mut findings.unsupported, path);
        Ok((config, findings))
    }

    /// Defaults and checks that need the whole file.
    fn finish(&mut self, errors: &mut Vec<Error>, unsupported: &mut Vec<Error>) {
        if self.runtime.gogc == 0 {
            self.runtime.gogc = default_gogc();
        }
        self.global.finish(errors);
        let global = &self.global;
        let scheme = global.metric_name_validation_scheme;

        let mut jobs: HashMap<&str, ()> = HashMap::new();
        for job in &mut self.scrape_configs {
            job.finish(global, errors, unsupported);
        }
        for job in &self.scrape_configs {
            if jobs.insert(&job.job_name, ()).is_some() {
                errors.push(job.origin.error(format!(
                    "found multiple scrape configs with job name {:?}",
                    job.job_name
                )));
            }
        }

        for rule in &self.alerting.alert_relabel_configs {
            if let Err(m) = rule.validate_names(scheme) {
                errors.push(rule.origin.error(m));
            }
        }
        for (i, am) in self.alerting.alertmanagers.iter().enumerate() {
            let mut problems = Vec::new();
            am.validate(scheme, &mut problems, unsupported);
            errors.extend(
                problems
                    .into_iter()
                    .map(|e| with_context(e, &format!("alertmanagers[{i}]"))),
            );
        }

        let mut names: HashMap<&str, ()> = HashMap::new();
        for (i, rw) in self.remote_write.iter().enumerate() {
            let mut problems = Vec::new();
            rw.validate(scheme, &mut problems, unsupported);
            if !rw.name.is_empty() && names.insert(&rw.name, ()).is_some() {
                problems.push(
                    rw.origin
                        .error(format!("found multiple remote write configs with name {:?}", rw.name)),
                );
            }
            errors.extend(
                problems
                    .into_iter()
                    .map(|e| with_context(e, &format!("remote_write[{i}]"))),
            );
        }
        names.clear();
        for (i, rr) in self.remote_read.iter().enumerate() {
            let mut problems = Vec::new();
            rr.validate(&mut problems, unsupported);
            if !rr.name.is_empty() && names.insert(&rr.name, ()).is_some() {
                problems.push(
                    rr.origin
                        .error(format!("found multiple remote read configs with name {:?}", rr.name)),
                );
            }
            errors.extend(
                problems
                    .into_iter()
                    .map(|e| with_context(e, &format!("remote_read[{i}]"))),
            );
        }

        let strategy = self.otlp.translation_strategy;
        if strategy.needs_utf8() && scheme == NameValidationScheme::Legacy {
            let name = strategy.as_str();
            errors.push(self.otlp.origin.error(format!(
                "OTLP translation strategy {name:?} is not allowed when UTF8 is disabled"
            )));
        }
    }

    /// Reads the files named by `scrape_config_files`, applies the global defaults to their
    /// jobs and appends them (upstream `GetScrapeConfigs`).
    fn load_scrape_config_files(&mut self, path: &Path, findings: &mut Findings) {
        let dir = config_dir(path);
        let mut seen: HashMap<String, String> = self
            .scrape_configs
            .iter()
            .map(|j| (j.job_name.clone(), "the main config file".to_owned()))
            .collect();
        for pattern in self.scrape_config_files.clone() {
            let files = match expand_glob(&pattern, dir) {
                Ok(files) => files,
                Err(e) => {
                    findings.errors.push(e.in_file(path));
                    continue;
                }
            };
            for file in files {
                let parsed = yaml::read_file(&file).and_then(|src| yaml::from_str::<ScrapeConfigFile>(&src, &file));
                let parsed = match parsed {
                    Ok(parsed) => parsed,
                    Err(e) => {
                        findings.errors.push(e);
                        continue;
                    }
                };
                let file_dir = config_dir(&file);
                let rebase_dir = file_dir.strip_prefix(dir).unwrap_or(file_dir).to_path_buf();
                let (mut errors, mut unsupported) = (Vec::new(), Vec::new());
                for mut job in parsed.scrape_configs {
                    if !rebase_dir.as_os_str().is_empty() {
                        job.rebase_paths(&rebase_dir);
                    }
                    job.finish(&self.global, &mut errors, &mut unsupported);
                    match seen.get(&job.job_name) {
                        Some(first) => errors.push(job.origin.error(format!(
                            "found multiple scrape configs with job name {:?}, first found in {first}",
                            job.job_name
                        ))),
                        None => {
                            seen.insert(job.job_name.clone(), file.display().to_string());
                        }
                    }
                    self.scrape_configs.push(job);
                }
                findings.add(&file, errors, unsupported);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_keys_match_the_declared_list() {
        assert_eq!(ScrapeConfig::unsupported_discovery_keys(), UNSUPPORTED_DISCOVERY);
        assert_eq!(AlertmanagerConfig::unsupported_discovery_keys(), UNSUPPORTED_DISCOVERY);
    }

    #[test]
    fn an_empty_file_is_the_default() {
        let c = Config::parse("# nothing\n", Path::new("p.yml")).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.global.scrape_timeout, Duration::from_secs(10));
        assert_eq!(c.runtime.gogc, 75);
        assert_eq!(c.storage.exemplars.max_exemplars, 100_000);
        assert_eq!(
            c.otlp.translation_strategy,
            TranslationStrategy::UnderscoreEscapingWithSuffixes
        );
        assert!(c.tracing.is_none());
    }

    #[test]
    fn protocols_parse_and_print() {
        for p in ScrapeProtocol::ALL {
            assert_eq!(ScrapeProtocol::parse(p.as_str()), Ok(p));
        }
        let e = ScrapeProtocol::parse("prometheusproto").unwrap_err();
        assert!(
            e.starts_with("unknown scrape protocol prometheusproto, supported: [OpenMetricsText0.0.1"),
            "{e}"
        );
    }

    #[test]
    fn file_patterns_follow_upstream() {
        assert!(is_valid_file_pattern("rules/*.yml"));
        assert!(is_valid_file_pattern("/abs/a*b*.yml"));
        assert!(!is_valid_file_pattern("rules/*/x.yml"));
    }

    #[test]
    fn globs_are_relative_to_the_config_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("we[ird]");
        std::fs::create_dir_all(sub.join("rules")).unwrap();
        for f in ["b.yml", "a.yml", "c.txt"] {
            std::fs::write(sub.join("rules").join(f), "groups: []\n").unwrap();
        }
        let c = Config {
            rule_files: vec!["rules/*.yml".into(), "missing.yml".into()],
            ..Config::default()
        };
        let found = c.rule_file_paths(&sub).unwrap();
        assert_eq!(found, [sub.join("rules/a.yml"), sub.join("rules/b.yml")]);
    }
}
