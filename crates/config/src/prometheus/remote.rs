//! `remote_write` and `remote_read` (upstream config/config.go `RemoteWriteConfig`,
//! `QueueConfig`, `MetadataConfig`, `RemoteReadConfig`).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;
use watchfire_model::Duration;

use super::NameValidationScheme;
use super::checked::{Check, Origin, item, nullable, string, without_unsupported};
use super::relabel::RelabelConfig;
use crate::error::Error;
use crate::http::{Authorization, BasicAuth, Header, HttpClientConfig, TlsConfig};
use crate::secret::Secret;
use crate::yaml::{Unsupported, default_true, refuse_unsupported};

/// Parses an http or https URL.
pub(crate) fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    let s = String::deserialize(d)?;
    let url = Url::parse(&s).map_err(|e| D::Error::custom(format!("invalid URL {s:?}: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(D::Error::custom(format!(
            "URL scheme must be 'http' or 'https', got {s:?}"
        )));
    }
    Ok(url)
}

/// Prints a URL with its password replaced by `xxxxx`, as upstream's `URL.Redacted` does.
pub(crate) fn redacted_url<S: Serializer>(url: &Url, s: S) -> Result<S::Ok, S::Error> {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // A URL that has a password always has a host, so this cannot fail.
        let _ = shown.set_password(Some("xxxxx"));
    }
    s.serialize_str(shown.as_str())
}

/// Headers that a `headers:` map may not set (upstream `reservedHeaders`, plus
/// `Authorization`, which has its own settings).
const RESERVED_HEADERS: [&str; 16] = [
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// Upstream's `validateHeaders`, reporting every offending header.
pub(crate) fn check_headers<'a>(headers: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut problems = Vec::new();
    for name in headers {
        let lower = name.to_ascii_lowercase();
        if lower == "authorization" {
            problems.push(
                "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, \
                 azuread or google_iam parameter"
                    .to_owned(),
            );
        } else if RESERVED_HEADERS.contains(&lower.as_str()) {
            problems.push(format!("{name} is a reserved header. It must not be changed"));
        }
    }
    problems
}

/// The protobuf message remote write sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ProtobufMessage {
    /// Remote write 1.0: `prometheus.WriteRequest`.
    #[default]
    WriteV1,
    /// Remote write 2.0: `io.prometheus.write.v2.Request`.
    WriteV2,
}

impl ProtobufMessage {
    /// The message's full name, as written in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtobufMessage::WriteV1 => "prometheus.WriteRequest",
            ProtobufMessage::WriteV2 => "io.prometheus.write.v2.Request",
        }
    }
}

impl fmt::Display for ProtobufMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ProtobufMessage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProtobufMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        [ProtobufMessage::WriteV1, ProtobufMessage::WriteV2]
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                D::Error::custom(format!(
                    "invalid protobuf_message value: unknown type for remote write protobuf message {s}, \
                 supported: prometheus.WriteRequest, io.prometheus.write.v2.Request"
                ))
            })
    }
}

/// The queue that buffers samples for one remote write endpoint.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Samples buffered per shard before reading from the WAL blocks (default 10000).
    pub capacity: u64,
    /// Maximum number of shards, i.e. concurrent requests (default 50).
    pub max_shards: u64,
    /// Minimum number of shards (default 1).
    pub min_shards: u64,
    /// Maximum samples per request (default 2000).
    pub max_samples_per_send: u64,
    /// Longest a sample waits in a shard before being sent (default 5s).
    pub batch_send_deadline: Duration,
    /// First retry delay after a recoverable error (default 30ms).
    pub min_backoff: Duration,
    /// Longest retry delay (default 5s).
    pub max_backoff: Duration,
    /// Whether to retry on HTTP 429 (default false).
    pub retry_on_http_429: bool,
    /// Samples older than this are dropped instead of sent; 0 keeps all (default 0s).
    pub sample_age_limit: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 10_000,
            max_shards: 50,
            min_shards: 1,
            max_samples_per_send: 2000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: false,
            sample_age_limit: Duration::ZERO,
        }
    }
}

impl Check for QueueConfig {
    const WHAT: &'static str = "queue_config";

    fn check(&mut self) -> Result<(), String> {
        let problem = if self.max_shards == 0 {
            "max_shards must be positive"
        } else if self.min_shards == 0 {
            "min_shards must be positive"
        } else if self.min_shards > self.max_shards {
            "min_shards must not be greater than max_shards"
        } else if self.max_samples_per_send == 0 {
            "max_samples_per_send must be positive"
        } else if self.capacity == 0 {
            "capacity must be positive"
        } else if self.max_backoff < self.min_backoff {
            "max_backoff must not be less than min_backoff"
        } else {
            return Ok(());
        };
        Err(format!("remote write queue {problem}"))
    }
}

/// Sending metric metadata to a remote write endpoint.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetadataConfig {
    /// Whether to send metadata (default true).
    pub send: bool,
    /// How often to send it (default 1m).
    pub send_interval: Duration,
    /// Maximum metadata entries per request (default 2000).
    pub max_samples_per_send: u64,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            send: true,
            send_interval: Duration::from_secs(60),
            max_samples_per_send: 2000,
        }
    }
}

impl Check for MetadataConfig {
    const WHAT: &'static str = "metadata_config";
}

fn default_write_timeout() -> Duration {
    Duration::from_secs(30)
}

/// One remote write endpoint.
///
/// The HTTP client fields are written out here rather than through
/// `crate::http::with_http_client!` because remote write alone defaults `enable_http2` to
/// false upstream (config.go `DefaultRemoteWriteHTTPClientConfig`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// The http or https URL to send to.
    #[serde(deserialize_with = "http_url", serialize_with = "redacted_url")]
    pub url: Url,
    /// Request timeout (default 30s).
    #[serde(default = "default_write_timeout")]
    pub remote_timeout: Duration,
    /// Extra headers sent with every request.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Relabeling applied to series before they are sent.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub write_relabel_configs: Vec<RelabelConfig>,
    /// A name for the endpoint, unique among remote write configs.
    #[serde(default, deserialize_with = "string", skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Whether to send exemplars.
    #[serde(default)]
    pub send_exemplars: bool,
    /// Whether to send native histograms.
    #[serde(default)]
    pub send_native_histograms: bool,
    /// Whether to spread requests over the addresses the host name resolves to.
    #[serde(default)]
    pub round_robin_dns: bool,
    /// The protobuf message to send (default `prometheus.WriteRequest`).
    #[serde(default)]
    pub protobuf_message: ProtobufMessage,
    /// The sending queue.
    #[serde(default, deserialize_with = "item")]
    pub queue_config: QueueConfig,
    /// Sending metric metadata.
    #[serde(default, deserialize_with = "item")]
    pub metadata_config: MetadataConfig,
    /// AWS Signature Version 4 signing: not supported yet.
    #[serde(default, skip_serializing)]
    pub sigv4: Unsupported,
    /// Azure AD authentication: not supported yet.
    #[serde(default, skip_serializing)]
    pub azuread: Unsupported,
    /// Google Cloud IAM authentication: not supported yet.
    #[serde(default, skip_serializing)]
    pub google_iam: Unsupported,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// OAuth 2.0 client credentials: not supported yet.
    #[serde(default, skip_serializing)]
    pub oauth2: Unsupported,
    /// Deprecated upstream in favour of `authorization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    #[serde(default)]
    pub tls_config: TlsConfig,
    #[serde(default = "default_true")]
    pub follow_redirects: bool,
    /// Whether to use HTTP/2 (default false for remote write).
    #[serde(default)]
    pub enable_http2: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
    #[serde(default)]
    pub proxy_from_environment: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy_connect_header: BTreeMap<String, Vec<Secret>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub http_headers: BTreeMap<String, Header>,
    /// Where the block was written.
    #[serde(skip)]
    pub origin: Origin,
}

impl Check for RemoteWriteConfig {
    const WHAT: &'static str = "remote write config section";

    fn origin_mut(&mut self) -> Option<&mut Origin> {
        Some(&mut self.origin)
    }
}

impl RemoteWriteConfig {
    /// The HTTP client settings.
    pub fn http_client(&self) -> HttpClientConfig {
        HttpClientConfig {
            basic_auth: self.basic_auth.clone(),
            authorization: self.authorization.clone(),
            oauth2: self.oauth2.clone(),
            bearer_token: self.bearer_token.clone(),
            bearer_token_file: self.bearer_token_file.clone(),
            tls_config: self.tls_config.clone(),
            follow_redirects: self.follow_redirects,
            enable_http2: self.enable_http2,
            proxy_url: self.proxy_url.clone(),
            no_proxy: self.no_proxy.clone(),
            proxy_from_environment: self.proxy_from_environment,
            proxy_connect_header: self.proxy_connect_header.clone(),
            http_headers: self.http_headers.clone(),
        }
    }

    /// Checks what needs the rest of the file; errors and refusals carry the block's origin.
    pub(crate) fn validate(&self, scheme: NameValidationScheme, errors: &mut Vec<Error>, unsupported: &mut Vec<Error>) {
        let at = self.origin;
        let mut messages = check_headers(self.headers.keys());
        let auth: Vec<&str> = [
            ("basic_auth", self.basic_auth.is_some()),
            ("authorization", self.authorization.is_some()),
            ("oauth2", self.oauth2.is_some()),
            ("sigv4", self.sigv4.is_some()),
            ("azuread", self.azuread.is_some()),
            ("google_iam", self.google_iam.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        // Conflicts among the HTTP client's own methods are reported by its validation.
        let cloud_auth = self.sigv4.is_some() || self.azuread.is_some() || self.google_iam.is_some();
        if cloud_auth && auth.len() > 1 {
            messages.push(format!(
                "at most one of basic_auth, authorization, oauth2, sigv4, azuread or google_iam must be configured. \
                 Currently configured: [{}]",
                auth.join(" ")
            ));
        }
        messages.extend(
            self.write_relabel_configs
                .iter()
                .filter_map(|r| r.validate_names(scheme).err()),
        );
        errors.extend(messages.into_iter().map(|m| at.error(m)));
        errors.extend(
            without_unsupported(self.http_client().validate())
                .into_iter()
                .map(|e| at.place(e)),
        );
        refuse_unsupported(unsupported, "oauth2", &self.oauth2);
        refuse_unsupported(unsupported, "sigv4", &self.sigv4);
        refuse_unsupported(unsupported, "azuread", &self.azuread);
        refuse_unsupported(unsupported, "google_iam", &self.google_iam);
    }
}

fn default_read_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_chunked_read_limit() -> u64 {
    50_000_000
}

crate::http::with_http_client! {
    /// One remote read endpoint.
    #[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    pub struct RemoteReadConfig {
        /// The http or https URL to read from.
        #[serde(deserialize_with = "http_url", serialize_with = "redacted_url")]
        pub url: Url,
        /// Request timeout (default 1m).
        #[serde(default = "default_read_timeout")]
        pub remote_timeout: Duration,
        /// Largest protobuf frame accepted in a streamed response, in bytes (default 50000000).
        #[serde(default = "default_chunked_read_limit")]
        pub chunked_read_limit: u64,
        /// Extra headers sent with every request.
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
        pub headers: BTreeMap<String, String>,
        /// Whether to read also for time ranges local storage should cover.
        #[serde(default)]
        pub read_recent: bool,
        /// A name for the endpoint, unique among remote read configs.
        #[serde(default, deserialize_with = "string", skip_serializing_if = "String::is_empty")]
        pub name: String,
        /// Equality matchers a query's selectors must contain for this endpoint to be asked.
        #[serde(default, deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
        pub required_matchers: BTreeMap<String, String>,
        /// Whether to add the external labels as matchers (default true).
        #[serde(default = "default_true")]
        pub filter_external_labels: bool,
        /// Where the block was written.
        #[serde(skip)]
        pub origin: Origin,
    }
}

impl Check for RemoteReadConfig {
    const WHAT: &'static str = "remote read config section";

    fn origin_mut(&mut self) -> Option<&mut Origin> {
        Some(&mut self.origin)
    }
}

impl RemoteReadConfig {
    /// Checks the block; errors and refusals carry its origin.
    pub(crate) fn validate(&self, errors: &mut Vec<Error>, unsupported: &mut Vec<Error>) {
        let at = self.origin;
        let mut messages = check_headers(self.headers.keys());
        if let Some(name) = self.required_matchers.keys().find(|n| n.is_empty()) {
            messages.push(format!("required_matchers: {name:?} is not a valid label name"));
        }
        errors.extend(messages.into_iter().map(|m| at.error(m)));
        errors.extend(
            without_unsupported(self.http_client().validate())
                .into_iter()
                .map(|e| at.place(e)),
        );
        refuse_unsupported(unsupported, "oauth2", &self.oauth2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn queue_rules_follow_upstream() {
        for (src, want) in [
            ("max_shards: 0", "max_shards must be positive"),
            ("min_shards: 0", "min_shards must be positive"),
            ("min_shards: 60", "min_shards must not be greater than max_shards"),
            ("max_samples_per_send: 0", "max_samples_per_send must be positive"),
            ("capacity: 0", "capacity must be positive"),
            ("min_backoff: 10s", "max_backoff must not be less than min_backoff"),
        ] {
            let mut q: QueueConfig = crate::yaml::from_str(src, Path::new("q.yml")).unwrap();
            assert_eq!(q.check(), Err(format!("remote write queue {want}")), "{src}");
        }
        QueueConfig::default().check().unwrap();
    }

    #[test]
    fn reserved_headers_are_refused() {
        let names = [
            "X-Custom".to_owned(),
            "Content-Type".to_owned(),
            "authorization".to_owned(),
        ];
        let problems = check_headers(&names);
        assert_eq!(problems.len(), 2);
        assert!(problems[0].contains("Content-Type is a reserved header"));
        assert!(problems[1].contains("must be changed via the basic_auth"));
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        #[derive(Serialize)]
        struct U(#[serde(serialize_with = "redacted_url")] Url);
        let out = serde_json::to_string(&U(Url::parse("https://user:hunter2@host/x").unwrap())).unwrap();
        assert_eq!(out, "\"https://user:xxxxx@host/x\"");
    }
}
