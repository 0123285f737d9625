//! The web configuration file (`--web.config.file`), in the format of Prometheus'
//! exporter-toolkit (`web/tls_config.go`, `web/handler.go`): server TLS, HTTP/2 and response
//! headers, basic-auth users, rate limiting.
//!
//! [`WebConfig::load`] checks what exporter-toolkit checks when it starts serving and what
//! `promtool check web-config` reports: strict keys, certificate and key present and readable,
//! the client-certificate policy consistent with the client CA, allowed headers and values,
//! password hashes that look like bcrypt. Verifying passwords against the hashes and building
//! the TLS server belong to the web crate.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::http::TlsVersion;
use crate::rules::{null_as_default, string_map};
use crate::secret::Secret;
use crate::yaml::{self, Ignored, Location, Spanned};

/// The whole web configuration file. A blank file means plain HTTP with no authentication.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Serve HTTPS with these settings (only when a certificate, key, client CA or client
    /// auth type is set; see [`TlsServerConfig::is_enabled`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_config: Option<TlsServerConfig>,
    /// HTTP/2 and extra response headers.
    #[serde(default, deserialize_with = "null_as_default")]
    pub http_server_config: HttpServerConfig,
    /// Limit the request rate (token bucket) for all endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Users allowed in with HTTP basic authentication, each with a bcrypt hash of their
    /// password. When empty, no authentication is required.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub basic_auth_users: BTreeMap<String, Secret>,
}

/// Server-side TLS.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    /// The server certificate (PEM), inline; `cert_file` wins when both are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    /// The server's private key (PEM), inline; `key_file` wins when both are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
    /// CA certificates (PEM) to verify client certificates with, inline; `client_ca_file`
    /// wins when both are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<String>,
    /// The server certificate file (PEM), relative to the web config file. Re-read on every
    /// new connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// The server's private key file (PEM), relative to the web config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Whether to ask for and verify client certificates; `NoClientCert` when unset.
    /// Only `RequireAndVerifyClientCert` actually authenticates clients.
    #[serde(
        default,
        deserialize_with = "client_auth_type",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_auth_type: Option<ClientAuthType>,
    /// CA certificates file (PEM) to verify client certificates with, relative to the web
    /// config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
    /// When set, a client certificate must carry one of these subject alternative names
    /// (DNS name, e-mail address, IP address or URI, matched exactly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_allowed_sans: Option<Vec<String>>,
    /// The lowest TLS version accepted.
    #[serde(default = "default_min_version")]
    pub min_version: TlsVersion,
    /// The highest TLS version accepted.
    #[serde(default = "default_max_version")]
    pub max_version: TlsVersion,
    /// Cipher suites for TLS 1.2 and below, by their IANA names; the library defaults when
    /// empty. TLS 1.3 suites may be listed but are always enabled, as in Go.
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub cipher_suites: Vec<CipherSuite>,
    /// Whether the server's order of `cipher_suites` wins over the client's.
    #[serde(default = "yaml::default_true")]
    pub prefer_server_cipher_suites: bool,
    /// Key-exchange curves in order of preference; the library defaults when empty.
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Vec::is_empty")]
    pub curve_preferences: Vec<Curve>,
}

impl Default for TlsServerConfig {
    fn default() -> Self {
        TlsServerConfig {
            cert: None,
            key: None,
            client_ca: None,
            cert_file: None,
            key_file: None,
            client_auth_type: None,
            client_ca_file: None,
            client_allowed_sans: None,
            min_version: default_min_version(),
            max_version: default_max_version(),
            cipher_suites: Vec::new(),
            prefer_server_cipher_suites: true,
            curve_preferences: Vec::new(),
        }
    }
}

fn default_min_version() -> TlsVersion {
    TlsVersion::TLS12
}

fn default_max_version() -> TlsVersion {
    TlsVersion::TLS13
}

impl TlsServerConfig {
    /// Whether TLS is switched on: any of the certificate, key, client CA or client auth
    /// type is set. A section with only versions or ciphers leaves the server on plain HTTP,
    /// as upstream (`TLSConfig.IsEnabled`).
    pub fn is_enabled(&self) -> bool {
        self.cert.is_some()
            || self.key.is_some()
            || self.client_ca.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some()
            || self.client_ca_file.is_some()
            || self.client_auth_type.is_some()
    }

    /// The client certificate policy in effect.
    pub fn client_auth(&self) -> ClientAuthType {
        self.client_auth_type.unwrap_or_default()
    }

    /// Upstream reads an empty string as "not set"; so does Watchfire.
    fn drop_empty_strings(&mut self) {
        fn clear<T: AsRef<[u8]>>(v: &mut Option<T>) {
            if v.as_ref().is_some_and(|s| s.as_ref().is_empty()) {
                *v = None;
            }
        }
        clear(&mut self.cert);
        clear(&mut self.client_ca);
        if self.key.as_ref().is_some_and(Secret::is_empty) {
            self.key = None;
        }
        for path in [&mut self.cert_file, &mut self.key_file, &mut self.client_ca_file] {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                *path = None;
            }
        }
    }

    /// Makes relative file paths relative to `dir` (the web config file's directory), as
    /// exporter-toolkit's `SetDirectory` does.
    fn set_directory(&mut self, dir: &Path) {
        for path in [&mut self.cert_file, &mut self.key_file, &mut self.client_ca_file]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        }
    }
}

/// The client certificate policy (Go's `tls.ClientAuthType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum ClientAuthType {
    /// Client certificates are neither requested nor verified.
    #[default]
    NoClientCert,
    /// A certificate is requested but not required, and not verified.
    RequestClientCert,
    /// A certificate is required but not verified (`RequireClientCert` is an old alias).
    RequireAnyClientCert,
    /// A certificate is not required, but verified against the client CA when given.
    VerifyClientCertIfGiven,
    /// A certificate is required and verified against the client CA.
    RequireAndVerifyClientCert,
}

impl ClientAuthType {
    /// Whether the policy verifies client certificates against a CA.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuthType::VerifyClientCertIfGiven | ClientAuthType::RequireAndVerifyClientCert
        )
    }
}

impl FromStr for ClientAuthType {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "NoClientCert" => ClientAuthType::NoClientCert,
            "RequestClientCert" => ClientAuthType::RequestClientCert,
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuthType::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuthType::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuthType::RequireAndVerifyClientCert,
            _ => {
                return Err(format!(
                    "invalid ClientAuth: {s} (expected NoClientCert, RequestClientCert, \
                     RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)"
                ));
            }
        })
    }
}

impl<'de> Deserialize<'de> for ClientAuthType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// `client_auth_type`, where an empty string (or null) means unset.
fn client_auth_type<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<ClientAuthType>, D::Error> {
    match Option::<String>::deserialize(d)?.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// A TLS cipher suite, by the names Go's `tls.CipherSuites()` lists (the ones upstream
/// accepts; Go's insecure suites are refused there too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum CipherSuite {
    #[serde(rename = "TLS_AES_128_GCM_SHA256")]
    TlsAes128GcmSha256,
    #[serde(rename = "TLS_AES_256_GCM_SHA384")]
    TlsAes256GcmSha384,
    #[serde(rename = "TLS_CHACHA20_POLY1305_SHA256")]
    TlsChacha20Poly1305Sha256,
    #[serde(rename = "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA")]
    TlsEcdheEcdsaWithAes128CbcSha,
    #[serde(rename = "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA")]
    TlsEcdheEcdsaWithAes256CbcSha,
    #[serde(rename = "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA")]
    TlsEcdheRsaWithAes128CbcSha,
    #[serde(rename = "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA")]
    TlsEcdheRsaWithAes256CbcSha,
    #[serde(rename = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")]
    TlsEcdheEcdsaWithAes128GcmSha256,
    #[serde(rename = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384")]
    TlsEcdheEcdsaWithAes256GcmSha384,
    #[serde(rename = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")]
    TlsEcdheRsaWithAes128GcmSha256,
    #[serde(rename = "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")]
    TlsEcdheRsaWithAes256GcmSha384,
    #[serde(rename = "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256")]
    TlsEcdheRsaWithChacha20Poly1305Sha256,
    #[serde(rename = "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256")]
    TlsEcdheEcdsaWithChacha20Poly1305Sha256,
}

impl CipherSuite {
    /// Whether HTTP/2 accepts this suite as its mandatory TLS 1.2 cipher (RFC 7540 §9.2.2).
    fn is_http2_required(self) -> bool {
        matches!(
            self,
            CipherSuite::TlsEcdheRsaWithAes128GcmSha256 | CipherSuite::TlsEcdheEcdsaWithAes128GcmSha256
        )
    }
}

/// An elliptic curve for key exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum Curve {
    CurveP256,
    CurveP384,
    CurveP521,
    X25519,
}

/// HTTP server settings.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServerConfig {
    /// Offer HTTP/2 (over TLS only).
    #[serde(default = "yaml::default_true")]
    pub http2: bool,
    /// Headers added to every response. Only `Content-Security-Policy`, `X-Frame-Options`
    /// (`deny` or `sameorigin`), `X-Content-Type-Options` (`nosniff`), `X-XSS-Protection` and
    /// `Strict-Transport-Security` may be set.
    #[serde(default, deserialize_with = "string_map", skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        HttpServerConfig {
            http2: true,
            headers: BTreeMap::new(),
        }
    }
}

/// The response headers a web config may set, with their allowed values (any value when
/// empty), as exporter-toolkit's `extraHTTPHeaders`. Names are matched exactly, as there.
const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Content-Security-Policy", &[]),
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
];

/// A token-bucket rate limit over all requests.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// The time between two requests, in Go's duration syntax (`100ms`, `1.5s`, `1m`); 0
    /// disables the limiter.
    #[serde(
        default,
        deserialize_with = "go_duration::deserialize",
        serialize_with = "go_duration::serialize"
    )]
    pub interval: std::time::Duration,
    /// How many requests may come at once before the interval applies.
    #[serde(default)]
    pub burst: u32,
}

/// Where things are in the file, read in a second, lenient pass so that the public types
/// stay free of position wrappers. Only what validation reports on is listed.
#[derive(Default, Deserialize)]
struct Positions {
    #[serde(default)]
    tls_server_config: Option<Spanned<TlsPositions>>,
    #[serde(default)]
    http_server_config: Option<HttpPositions>,
    #[serde(default)]
    basic_auth_users: Option<Spanned<BTreeMap<String, Spanned<Ignored>>>>,
}

#[derive(Default, Deserialize)]
struct TlsPositions {
    #[serde(default)]
    cert_file: Option<Spanned<Ignored>>,
    #[serde(default)]
    key_file: Option<Spanned<Ignored>>,
    #[serde(default)]
    client_ca_file: Option<Spanned<Ignored>>,
    #[serde(default)]
    client_ca: Option<Spanned<Ignored>>,
    #[serde(default)]
    client_auth_type: Option<Spanned<Ignored>>,
    #[serde(default)]
    max_version: Option<Spanned<Ignored>>,
    #[serde(default)]
    cipher_suites: Option<Spanned<Ignored>>,
}

#[derive(Default, Deserialize)]
struct HttpPositions {
    #[serde(default)]
    headers: Option<BTreeMap<String, Spanned<Ignored>>>,
}

/// The location of an optional located value, or else of a fallback.
fn located_or<'a>(value: &'a Option<Spanned<Ignored>>, fallback: &'a Location) -> &'a Location {
    value.as_ref().map_or(fallback, |s| &s.referenced)
}

impl WebConfig {
    /// Reads and checks a web config file; relative file names in it are taken relative to
    /// the file's directory, and the files they name must be readable.
    pub fn load(path: &Path) -> Result<WebConfig> {
        let src = yaml::read_file(path)?;
        WebConfig::parse(&src, path)
    }

    /// Parses and checks the contents of the web config file at `path` (used for relative
    /// file names and in error messages). Every problem found is reported.
    pub fn parse(src: &str, path: &Path) -> Result<WebConfig> {
        let mut config: WebConfig = yaml::from_str(src, path)?;
        let positions: Positions = yaml::from_str(src, path)?;
        if let Some(tls) = &mut config.tls_server_config {
            tls.drop_empty_strings();
            tls.set_directory(path.parent().unwrap_or(Path::new("")));
        }
        config.check(&positions).map_err(|e| e.in_file(path))?;
        Ok(config)
    }

    /// The TLS settings, when TLS is switched on.
    pub fn tls(&self) -> Option<&TlsServerConfig> {
        self.tls_server_config.as_ref().filter(|t| t.is_enabled())
    }

    fn check(&self, positions: &Positions) -> Result<()> {
        let mut errors = Vec::new();
        self.check_users(positions, &mut errors);
        self.check_headers(positions, &mut errors);
        if let Some(tls) = self.tls() {
            let at = positions
                .tls_server_config
                .as_ref()
                .map_or(Location::UNKNOWN, |t| t.referenced);
            let none = TlsPositions::default();
            let fields = positions.tls_server_config.as_ref().map_or(&none, |t| &t.value);
            check_tls(tls, self.http_server_config.http2, fields, &at, &mut errors);
        }
        // Report in file order; the checks above go section by section.
        errors.sort_by_key(Error::position);
        Error::from_list(errors)
    }

    fn check_users(&self, positions: &Positions, errors: &mut Vec<Error>) {
        let section = positions.basic_auth_users.as_ref();
        let section_at = section.map_or(Location::UNKNOWN, |s| s.referenced);
        for (user, hash) in &self.basic_auth_users {
            let at = section
                .and_then(|s| s.value.get(user))
                .map_or(section_at, |s| s.referenced);
            if user.is_empty() {
                errors.push(Error::invalid("basic_auth_users: a user name must not be empty").at(&at));
            }
            if let Err(why) = check_bcrypt_hash(hash.expose()) {
                errors.push(
                    Error::invalid(format!(
                        "basic_auth_users: the password of user {user:?} is not a bcrypt hash: {why}"
                    ))
                    .at(&at),
                );
            }
        }
    }

    fn check_headers(&self, positions: &Positions, errors: &mut Vec<Error>) {
        let located = positions.http_server_config.as_ref().and_then(|h| h.headers.as_ref());
        for (name, value) in &self.http_server_config.headers {
            let at = located
                .and_then(|h| h.get(name))
                .map_or(Location::UNKNOWN, |s| s.referenced);
            match ALLOWED_HEADERS.iter().find(|(n, _)| n == name) {
                None => {
                    errors.push(Error::invalid(format!("HTTP header {name:?} can not be configured")).at(&at));
                }
                Some((_, allowed)) if !allowed.is_empty() && !allowed.contains(&value.as_str()) => {
                    errors.push(
                        Error::invalid(format!(
                            "invalid value for {name}. Expected one of: {allowed:?}, but got: {value:?}"
                        ))
                        .at(&at),
                    );
                }
                Some(_) => {}
            }
        }
    }
}

/// The TLS checks of exporter-toolkit's `ConfigToTLSConfig`, the HTTP/2 cipher rule that Go's
/// HTTP/2 server enforces when it starts, and two of Watchfire's own: `min_version` above
/// `max_version` (Go only fails at handshake time) and verification without a named CA.
fn check_tls(tls: &TlsServerConfig, http2: bool, fields: &TlsPositions, at: &Location, errors: &mut Vec<Error>) {
    if tls.cert.is_none() && tls.cert_file.is_none() {
        errors.push(Error::invalid("tls_server_config: missing one of cert or cert_file").at(at));
    }
    if tls.key.is_none() && tls.key_file.is_none() {
        errors.push(Error::invalid("tls_server_config: missing one of key or key_file").at(at));
    }
    let files = [
        ("cert_file", &tls.cert_file, &fields.cert_file),
        ("key_file", &tls.key_file, &fields.key_file),
        ("client_ca_file", &tls.client_ca_file, &fields.client_ca_file),
    ];
    for (key, path, located) in files {
        if let Some(path) = path
            && let Err(e) = std::fs::read(path)
        {
            errors.push(
                Error::invalid(format!(
                    "tls_server_config: failed to read {key} ({}): {e}",
                    path.display()
                ))
                .at(located_or(located, at)),
            );
        }
    }
    let has_ca = tls.client_ca_file.is_some() || tls.client_ca.is_some();
    let auth = tls.client_auth();
    let auth_at = located_or(&fields.client_auth_type, at);
    if has_ca && auth == ClientAuthType::NoClientCert {
        let ca_at = if tls.client_ca_file.is_some() {
            &fields.client_ca_file
        } else {
            &fields.client_ca
        };
        errors.push(
            Error::invalid("tls_server_config: client CA's have been configured without a Client Auth Policy")
                .at(located_or(ca_at, at)),
        );
    }
    // Go falls back to the system roots here; Watchfire requires the CA to be named, since
    // verifying clients against public CAs is almost always a mistake.
    if !has_ca && auth.verifies() {
        errors.push(
            Error::invalid(format!(
                "tls_server_config: client_auth_type {auth:?} requires client_ca_file or client_ca"
            ))
            .at(auth_at),
        );
    }
    if tls.min_version > tls.max_version {
        errors.push(
            Error::invalid(format!(
                "tls_server_config: max_version {:?} must not be lower than min_version {:?}",
                tls.max_version, tls.min_version
            ))
            .at(located_or(&fields.max_version, at)),
        );
    }
    if http2
        && !tls.cipher_suites.is_empty()
        && tls.min_version < TlsVersion::TLS13
        && !tls.cipher_suites.iter().any(|c| c.is_http2_required())
    {
        errors.push(
            Error::invalid(
                "tls_server_config: cipher_suites is missing an HTTP/2-required AES_128_GCM_SHA256 cipher (need \
                 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, or set \
                 http_server_config.http2 to false)",
            )
            .at(located_or(&fields.cipher_suites, at)),
        );
    }
}

/// Whether `hash` has the shape of a bcrypt hash: `$2a$`, `$2b$` or `$2y$`, a two-digit cost
/// from 04 to 31, `$`, then 53 characters of bcrypt's base64 (salt and digest), 60 in all.
/// Anything else could never match a password.
fn check_bcrypt_hash(hash: &str) -> std::result::Result<(), String> {
    const LEN: usize = 60;
    let b = hash.as_bytes();
    if !(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$")) {
        return Err("it must start with $2a$, $2b$ or $2y$ (generate one with `htpasswd -nBC 10 \"\"`)".into());
    }
    if b.len() != LEN {
        return Err(format!("it must be {LEN} characters long, not {}", b.len()));
    }
    // Bytes, not string slices: the text may hold multi-byte characters anywhere.
    let (tens, units) = (b[4], b[5]);
    let cost_ok = tens.is_ascii_digit()
        && units.is_ascii_digit()
        && b[6] == b'$'
        && (4..=31).contains(&((tens - b'0') * 10 + (units - b'0')));
    if !cost_ok {
        return Err(format!(
            "the cost must be two digits from 04 to 31 followed by $, not {:?}",
            String::from_utf8_lossy(&b[4..7])
        ));
    }
    if !b[7..]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
    {
        return Err("the salt and digest may only contain A-Z, a-z, 0-9, '.' and '/'".into());
    }
    Ok(())
}

/// Go's `time.Duration` text form, which exporter-toolkit uses for `rate_limit.interval`:
/// decimal numbers with units `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, like `1h30m` or `1.5s`.
mod go_duration {
    use super::*;

    const UNITS: [(&str, u128); 9] = [
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("μs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
        ("", 0),
    ];

    /// Parses a non-negative Go duration.
    pub(super) fn parse(s: &str) -> std::result::Result<std::time::Duration, String> {
        let invalid = || format!("invalid duration {s:?} (use Go's syntax, e.g. 500ms, 1s, 1m30s)");
        let s_body = s.strip_prefix('+').unwrap_or(s);
        if s_body == "0" {
            return Ok(std::time::Duration::ZERO);
        }
        if s_body.is_empty() {
            return Err(invalid());
        }
        let mut rest = s_body;
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit() && c != '.')
                .unwrap_or(rest.len());
            let (number, tail) = rest.split_at(digits);
            let unit_len = tail
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_len);
            let scale = UNITS
                .iter()
                .find(|(u, n)| *u == unit && *n > 0)
                .map(|(_, n)| *n)
                .ok_or_else(invalid)?;
            let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
            if (whole.is_empty() && frac.is_empty()) || !frac.bytes().all(|c| c.is_ascii_digit()) {
                return Err(invalid());
            }
            let whole: u128 = if whole.is_empty() {
                0
            } else {
                whole.parse().map_err(|_| invalid())?
            };
            let mut part = whole.checked_mul(scale).ok_or_else(invalid)?;
            let mut place = scale;
            for digit in frac.bytes() {
                place /= 10;
                part = part.checked_add(u128::from(digit - b'0') * place).ok_or_else(invalid)?;
            }
            total = total.checked_add(part).ok_or_else(invalid)?;
            rest = tail;
        }
        let nanos = u64::try_from(total).map_err(|_| invalid())?;
        Ok(std::time::Duration::from_nanos(nanos))
    }

    /// Formats a duration so that Go's parser reads it back: whole seconds, milliseconds,
    /// microseconds or nanoseconds, whichever is exact.
    pub(super) fn format(d: &std::time::Duration) -> String {
        let nanos = d.as_nanos();
        if nanos == 0 {
            "0s".to_owned()
        } else if nanos.is_multiple_of(1_000_000_000) {
            format!("{}s", nanos / 1_000_000_000)
        } else if nanos.is_multiple_of(1_000_000) {
            format!("{}ms", nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            format!("{}us", nanos / 1_000)
        } else {
            format!("{nanos}ns")
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<std::time::Duration, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = std::time::Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 500ms or 1s")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
                parse(v).map_err(E::custom)
            }
            // A bare integer is a number of nanoseconds to Go's YAML decoder.
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
                Ok(std::time::Duration::from_nanos(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
                let v = u64::try_from(v).map_err(|_| E::custom("the interval must not be negative"))?;
                self.visit_u64(v)
            }
            fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
                Ok(std::time::Duration::ZERO)
            }
        }
        d.deserialize_any(Visitor)
    }

    pub(super) fn serialize<S: Serializer>(d: &std::time::Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&format(d))
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::time::Duration;

        #[test]
        fn parses_and_formats_go_durations() {
            for (text, want) in [
                ("0", Duration::ZERO),
                ("1s", Duration::from_secs(1)),
                ("1.5s", Duration::from_millis(1500)),
                ("1h30m", Duration::from_secs(5400)),
                ("250ms", Duration::from_millis(250)),
                ("10us", Duration::from_micros(10)),
                ("10µs", Duration::from_micros(10)),
                (".5s", Duration::from_millis(500)),
            ] {
                assert_eq!(parse(text), Ok(want), "{text}");
                assert_eq!(parse(&format(&want)), Ok(want), "{text} round trip");
            }
            for bad in [
                "",
                "1",
                "1d",
                "s",
                "-1s",
                "1.s2",
                "1..5s",
                ".",
                "340282366920938463463374607431768211455.9h",
            ] {
                assert!(parse(bad).is_err(), "{bad:?} should not parse");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_shapes() {
        let good = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
        assert_eq!(check_bcrypt_hash(good), Ok(()));
        assert_eq!(check_bcrypt_hash(&good.replacen("$2y$", "$2a$", 1)), Ok(()));
        assert!(check_bcrypt_hash("doe").unwrap_err().contains("$2a$"));
        assert!(check_bcrypt_hash(&good[..59]).unwrap_err().contains("60 characters"));
        assert!(
            check_bcrypt_hash(&good.replacen("$10$", "$03$", 1))
                .unwrap_err()
                .contains("cost")
        );
        assert!(
            check_bcrypt_hash(&good.replacen("$10$", "$1x$", 1))
                .unwrap_err()
                .contains("cost")
        );
        assert!(
            check_bcrypt_hash(&good.replacen('Q', "!", 1))
                .unwrap_err()
                .contains("may only contain")
        );
        let no_dollar = good.replacen("$10$", "$10x", 1);
        assert!(check_bcrypt_hash(&no_dollar).unwrap_err().contains("followed by $"));
        // Multi-byte characters where the cost goes must not split a character.
        for wide in [format!("$2y$é${}", &good[7..]), format!("$2y$1é{}", &good[7..])] {
            assert_eq!(wide.len(), 60);
            assert!(check_bcrypt_hash(&wide).unwrap_err().contains("cost"), "{wide}");
        }
    }
}
