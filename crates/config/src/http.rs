//! The HTTP client configuration that Prometheus and Alertmanager share
//! (`github.com/prometheus/common/config.HTTPClientConfig`): authentication, TLS, proxies and
//! extra headers. Scrape configs, remote write and read, Alertmanager endpoints, HTTP service
//! discovery and notification receivers all embed it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::yaml::{Spanned, refuse_unsupported};

/// HTTP basic authentication. `password` and `password_file` are mutually exclusive, as are
/// `username` and `username_file`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_ref: Option<String>,
}

/// The `Authorization` header: `type` (default `Bearer`) and credentials.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_ref: Option<String>,
}

/// TLS settings for outgoing connections.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The CA certificate (PEM) to verify the server with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_ref: Option<String>,
    /// The client certificate (PEM) for client authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_ref: Option<String>,
    /// The client key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ref: Option<String>,
    /// The server name to verify, when it differs from the host in the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// TLS10, TLS11, TLS12 or TLS13.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
}

/// A TLS protocol version as written in Prometheus configs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
pub enum TlsVersion {
    TLS10,
    TLS11,
    TLS12,
    TLS13,
}

/// One extra header: literal values, secret values, or values read from files.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Secret>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

/// Headers that Watchfire sets itself and a config may not override (as upstream refuses).
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
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
    "x-prometheus-scrape-timeout-seconds",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Declares a config struct with the HTTP client fields inlined after its own fields, as
/// upstream's `yaml:",inline"` does, plus an `http_client()` accessor returning them as an
/// [`HttpClientConfig`]. (`#[serde(flatten)]` would silently accept unknown keys and lose
/// line numbers, so the fields are written out by this macro instead.)
///
/// Structs declared with it must not use `#[serde(default)]` at container level with a
/// derived `Default`: `follow_redirects` and `enable_http2` default to true through field-level
/// defaults.
macro_rules! with_http_client {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field : $ty, )*
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub basic_auth: Option<crate::http::BasicAuth>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub authorization: Option<crate::http::Authorization>,
            /// OAuth 2.0 client credentials: parsed so the rest of the file is checked, then
            /// refused, since Watchfire does not implement it yet.
            #[serde(default, skip_serializing)]
            pub oauth2: crate::yaml::Unsupported,
            /// Deprecated upstream in favour of `authorization`; accepted and treated the same.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub bearer_token: Option<crate::Secret>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub bearer_token_file: Option<String>,
            #[serde(default)]
            pub tls_config: crate::http::TlsConfig,
            #[serde(default = "crate::yaml::default_true")]
            pub follow_redirects: bool,
            #[serde(default = "crate::yaml::default_true")]
            pub enable_http2: bool,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub proxy_url: Option<String>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub no_proxy: Option<String>,
            // Printed only when set, as upstream (`omitempty`).
            #[serde(default, skip_serializing_if = "std::ops::Not::not")]
            pub proxy_from_environment: bool,
            #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
            pub proxy_connect_header: std::collections::BTreeMap<String, Vec<crate::Secret>>,
            #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
            pub http_headers: std::collections::BTreeMap<String, crate::http::Header>,
        }

        impl $name {
            /// The inlined HTTP client settings.
            pub fn http_client(&self) -> crate::http::HttpClientConfig {
                crate::http::HttpClientConfig {
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
        }
    };
}

pub(crate) use with_http_client;

with_http_client! {
    /// The HTTP client configuration, as a value of its own (nested under `http_config:` in
    /// alertmanager.yml; inlined elsewhere through [`with_http_client!`]).
    #[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    pub struct HttpClientConfig {}
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            oauth2: None,
            bearer_token: None,
            bearer_token_file: None,
            tls_config: TlsConfig::default(),
            follow_redirects: true,
            enable_http2: true,
            proxy_url: None,
            no_proxy: None,
            proxy_from_environment: false,
            proxy_connect_header: BTreeMap::new(),
            http_headers: BTreeMap::new(),
        }
    }
}

fn at_most_one(errors: &mut Vec<Error>, what: &str, set: &[(&str, bool)]) {
    let present: Vec<&str> = set.iter().filter(|(_, on)| *on).map(|(n, _)| *n).collect();
    if present.len() > 1 {
        errors.push(Error::invalid(format!(
            "{what}: at most one of {} must be configured",
            present.join(" & ")
        )));
    }
}

impl TlsConfig {
    /// Checks the "at most one of" rules and that certificate and key come together.
    pub fn validate(&self) -> Result<()> {
        let mut errors = vec![];
        at_most_one(
            &mut errors,
            "tls_config",
            &[
                ("ca", self.ca.is_some()),
                ("ca_file", self.ca_file.is_some()),
                ("ca_ref", self.ca_ref.is_some()),
            ],
        );
        at_most_one(
            &mut errors,
            "tls_config",
            &[
                ("cert", self.cert.is_some()),
                ("cert_file", self.cert_file.is_some()),
                ("cert_ref", self.cert_ref.is_some()),
            ],
        );
        at_most_one(
            &mut errors,
            "tls_config",
            &[
                ("key", self.key.is_some()),
                ("key_file", self.key_file.is_some()),
                ("key_ref", self.key_ref.is_some()),
            ],
        );
        let has_cert = self.cert.is_some() || self.cert_file.is_some() || self.cert_ref.is_some();
        let has_key = self.key.is_some() || self.key_file.is_some() || self.key_ref.is_some();
        if has_cert != has_key {
            errors.push(Error::invalid(
                "tls_config: exactly one of key or key_file must be configured when a client certificate is configured",
            ));
        }
        if let (Some(min), Some(max)) = (self.min_version, self.max_version)
            && min > max
        {
            errors.push(Error::invalid(format!(
                "tls_config: max_version {max:?} must not be lower than min_version {min:?}"
            )));
        }
        Error::from_list(errors)
    }
}

impl HttpClientConfig {
    /// Checks the rules upstream enforces: one authentication method at most, each secret
    /// given at most one way, `authorization.type` not `basic`, no reserved headers. OAuth 2.0
    /// is refused as not supported yet.
    pub fn validate(&self) -> Result<()> {
        let mut errors = vec![];
        let has_bearer = self.bearer_token.is_some() || self.bearer_token_file.is_some();
        at_most_one(
            &mut errors,
            "http client",
            &[
                ("basic_auth", self.basic_auth.is_some()),
                ("authorization", self.authorization.is_some()),
                ("oauth2", self.oauth2.is_some()),
                ("bearer_token/bearer_token_file", has_bearer),
            ],
        );
        at_most_one(
            &mut errors,
            "http client",
            &[
                ("bearer_token", self.bearer_token.is_some()),
                ("bearer_token_file", self.bearer_token_file.is_some()),
            ],
        );
        if let Some(b) = &self.basic_auth {
            at_most_one(
                &mut errors,
                "basic_auth",
                &[
                    ("username", !b.username.is_empty()),
                    ("username_file", b.username_file.is_some()),
                    ("username_ref", b.username_ref.is_some()),
                ],
            );
            at_most_one(
                &mut errors,
                "basic_auth",
                &[
                    ("password", b.password.is_some()),
                    ("password_file", b.password_file.is_some()),
                    ("password_ref", b.password_ref.is_some()),
                ],
            );
        }
        if let Some(a) = &self.authorization {
            if a.kind.eq_ignore_ascii_case("basic") {
                errors.push(Error::invalid(
                    "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
                ));
            }
            at_most_one(
                &mut errors,
                "authorization",
                &[
                    ("credentials", a.credentials.is_some()),
                    ("credentials_file", a.credentials_file.is_some()),
                    ("credentials_ref", a.credentials_ref.is_some()),
                ],
            );
        }
        for name in self.http_headers.keys() {
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                errors.push(Error::invalid(format!(
                    "http_headers: setting header {name:?} is not allowed"
                )));
            }
        }
        if self.proxy_from_environment && (self.proxy_url.is_some() || self.no_proxy.is_some()) {
            errors.push(Error::invalid(
                "if proxy_from_environment is configured, proxy_url and no_proxy must not be configured",
            ));
        }
        if self.no_proxy.is_some() && self.proxy_url.is_none() {
            errors.push(Error::invalid(
                "if no_proxy is configured, proxy_url must also be configured",
            ));
        }
        if let Err(e) = self.tls_config.validate() {
            errors.push(e);
        }
        refuse_unsupported(&mut errors, "oauth2", &self.oauth2);
        Error::from_list(errors)
    }

    /// The authorization scheme and credential source in effect, folding the deprecated
    /// `bearer_token` fields into `authorization`.
    pub fn effective_authorization(&self) -> Option<Authorization> {
        if let Some(a) = &self.authorization {
            let mut a = a.clone();
            if a.kind.is_empty() {
                a.kind = "Bearer".into();
            }
            return Some(a);
        }
        if self.bearer_token.is_some() || self.bearer_token_file.is_some() {
            return Some(Authorization {
                kind: "Bearer".into(),
                credentials: self.bearer_token.clone(),
                credentials_file: self.bearer_token_file.clone(),
                credentials_ref: None,
            });
        }
        None
    }
}

/// Where a located piece of a config is, for validation messages.
pub fn located<T>(s: &Spanned<T>) -> &crate::yaml::Location {
    &s.referenced
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(src: &str) -> HttpClientConfig {
        crate::yaml::from_str(src, Path::new("t.yml")).unwrap()
    }

    with_http_client! {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Embedding {
            job_name: String,
        }
    }

    #[test]
    fn inlined_fields_stay_strict_and_located() {
        let p = Path::new("p.yml");
        let e = crate::yaml::from_str::<Embedding>(
            "job_name: a
bogus: 1
",
            p,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("p.yml:2:1: unknown field `bogus`"), "{e}");
        let ok: Embedding = crate::yaml::from_str("job_name: a\n", p).unwrap();
        assert_eq!(ok.job_name, "a");
        assert!(ok.follow_redirects && ok.enable_http2);
        let o: Embedding = crate::yaml::from_str("job_name: a\noauth2:\n  client_id: x\n", p).unwrap();
        let e = o.http_client().validate().unwrap_err().in_file(p).to_string();
        assert!(e.starts_with("p.yml:3:") && e.contains("oauth2"), "{e}");
    }

    #[test]
    fn defaults_follow_upstream() {
        let c = parse("{}");
        assert!(c.follow_redirects && c.enable_http2);
        c.validate().unwrap();
    }

    #[test]
    fn conflicting_auth_is_refused() {
        let c = parse("basic_auth: {username: a, password: b}\nauthorization: {credentials: x}\n");
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("at most one of basic_auth & authorization"), "{e}");
        let c = parse("basic_auth: {username: a, password: b, password_file: /f}\n");
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("password & password_file")
        );
        let c = parse("authorization: {type: Basic, credentials: x}\n");
        assert!(c.validate().unwrap_err().to_string().contains("use \"basic_auth\""));
    }

    #[test]
    fn oauth2_is_refused_with_its_line() {
        let c = parse("follow_redirects: false\noauth2:\n  client_id: a\n  token_url: http://x\n");
        let e = c.validate().unwrap_err().in_file(Path::new("t.yml")).to_string();
        assert!(
            e.starts_with("t.yml:3:") && e.contains("not supported yet: oauth2"),
            "{e}"
        );
    }

    #[test]
    fn tls_rules() {
        let c = parse("tls_config: {cert_file: c.pem}\n");
        assert!(c.validate().is_err());
        let c = parse("tls_config: {cert_file: c.pem, key_file: k.pem, min_version: TLS12}\n");
        c.validate().unwrap();
        assert!(
            crate::yaml::from_str::<HttpClientConfig>("tls_config: {min_version: TLS14}\n", Path::new("t.yml"))
                .is_err()
        );
    }

    #[test]
    fn bearer_token_folds_into_authorization() {
        let c = parse("bearer_token: tok\n");
        let a = c.effective_authorization().unwrap();
        assert_eq!(a.kind, "Bearer");
        assert_eq!(a.credentials.unwrap().expose(), "tok");
    }

    #[test]
    fn secrets_are_hidden_when_serialized() {
        let c = parse("basic_auth: {username: u, password: hunter2}\n");
        let out = serde_saphyr::to_string(&c).unwrap();
        assert!(out.contains("<secret>") && !out.contains("hunter2"), "{out}");
    }
}
