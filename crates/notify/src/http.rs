//! The HTTP side shared by the HTTP integrations: a client from an integration's
//! `http_config` (prometheus/common `NewClientFromConfig`), the POST with per-request timeout,
//! and upstream's retry classification (`notify.Retrier`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use watchfire_alerting::{FailureReason, NotifyError};
use watchfire_config::http::{HttpClientConfig, TlsVersion};

/// The `User-Agent` every integration sends.
pub const USER_AGENT: &str = concat!("Alertmanager/", env!("CARGO_PKG_VERSION"), " (Watchfire)");

#[derive(Clone)]
enum Source {
    Literal(String),
    File(PathBuf),
}

impl Source {
    fn read(&self) -> Result<String, String> {
        match self {
            Source::Literal(s) => Ok(s.clone()),
            Source::File(p) => std::fs::read_to_string(p)
                .map(|s| s.trim().to_owned())
                .map_err(|e| format!("unable to read {}: {e}", p.display())),
        }
    }
}

#[derive(Clone)]
enum Auth {
    None,
    Basic { username: Source, password: Option<Source> },
    Header { kind: String, credentials: Option<Source> },
}

/// A configured HTTP client. Cheap to clone. Its `Debug` shows no credentials.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    auth: Auth,
    headers: Vec<(HeaderName, Vec<Source>)>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match self.auth {
            Auth::None => "none",
            Auth::Basic { .. } => "basic",
            Auth::Header { .. } => "authorization",
        };
        f.debug_struct("HttpClient")
            .field("auth", &auth)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Resolves a relative path against the configuration directory.
pub fn resolve(dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() { p.to_path_buf() } else { dir.join(p) }
}

fn read_pem(dir: &Path, inline: Option<&str>, file: Option<&str>) -> Result<Option<Vec<u8>>, String> {
    match (inline, file) {
        (Some(s), _) => Ok(Some(s.as_bytes().to_vec())),
        (None, Some(f)) => {
            let path = resolve(dir, f);
            std::fs::read(&path)
                .map(Some)
                .map_err(|e| format!("unable to read {}: {e}", path.display()))
        }
        (None, None) => Ok(None),
    }
}

impl HttpClient {
    /// Builds the client; `dir` is where relative file paths are taken from.
    pub fn new(cfg: Option<&HttpClientConfig>, dir: &Path) -> Result<HttpClient, String> {
        let default = HttpClientConfig::default();
        let cfg = cfg.unwrap_or(&default);
        if cfg.oauth2.is_some() {
            return Err("oauth2 is not supported yet".into());
        }
        let tls = &cfg.tls_config;
        if tls.server_name.is_some() {
            return Err("tls_config.server_name is not supported yet".into());
        }
        if tls.ca_ref.is_some() || tls.cert_ref.is_some() || tls.key_ref.is_some() {
            return Err("tls_config *_ref secrets are not supported yet".into());
        }
        let mut builder = reqwest::Client::builder().user_agent(USER_AGENT);
        if let Some(ca) = read_pem(dir, tls.ca.as_deref(), tls.ca_file.as_deref())? {
            for cert in reqwest::Certificate::from_pem_bundle(&ca).map_err(|e| format!("invalid CA: {e}"))? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let cert = read_pem(dir, tls.cert.as_deref(), tls.cert_file.as_deref())?;
        let key = read_pem(dir, tls.key.as_ref().map(|k| k.expose()), tls.key_file.as_deref())?;
        if let (Some(mut cert), Some(key)) = (cert, key) {
            cert.push(b'\n');
            cert.extend_from_slice(&key);
            let id = reqwest::Identity::from_pem(&cert).map_err(|e| format!("invalid client certificate: {e}"))?;
            builder = builder.identity(id);
        }
        if tls.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let version = |v: TlsVersion| match v {
            TlsVersion::TLS10 => reqwest::tls::Version::TLS_1_0,
            TlsVersion::TLS11 => reqwest::tls::Version::TLS_1_1,
            TlsVersion::TLS12 => reqwest::tls::Version::TLS_1_2,
            TlsVersion::TLS13 => reqwest::tls::Version::TLS_1_3,
        };
        if let Some(v) = tls.min_version {
            builder = builder.min_tls_version(version(v));
        }
        if let Some(v) = tls.max_version {
            builder = builder.max_tls_version(version(v));
        }
        builder = builder.redirect(if cfg.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        });
        if cfg.proxy_from_environment {
            // reqwest's default: HTTP_PROXY, HTTPS_PROXY, NO_PROXY.
        } else if let Some(url) = &cfg.proxy_url {
            let mut proxy = reqwest::Proxy::all(url).map_err(|e| format!("invalid proxy_url: {e}"))?;
            if let Some(no) = &cfg.no_proxy {
                proxy = proxy.no_proxy(reqwest::NoProxy::from_string(no));
            }
            builder = builder.proxy(proxy);
        } else {
            builder = builder.no_proxy();
        }
        if !cfg.proxy_connect_header.is_empty() {
            return Err("proxy_connect_header is not supported yet".into());
        }
        let client = builder.build().map_err(|e| e.to_string())?;
        let auth = if let Some(b) = &cfg.basic_auth {
            if b.username_ref.is_some() || b.password_ref.is_some() {
                return Err("basic_auth *_ref secrets are not supported yet".into());
            }
            Auth::Basic {
                username: match &b.username_file {
                    Some(f) => Source::File(resolve(dir, f)),
                    None => Source::Literal(b.username.clone()),
                },
                password: match (&b.password, &b.password_file) {
                    (Some(p), _) => Some(Source::Literal(p.expose().to_owned())),
                    (None, Some(f)) => Some(Source::File(resolve(dir, f))),
                    (None, None) => None,
                },
            }
        } else if let Some(a) = cfg.effective_authorization() {
            if a.credentials_ref.is_some() {
                return Err("authorization credentials_ref is not supported yet".into());
            }
            Auth::Header {
                kind: a.kind.clone(),
                credentials: match (&a.credentials, &a.credentials_file) {
                    (Some(c), _) => Some(Source::Literal(c.expose().to_owned())),
                    (None, Some(f)) => Some(Source::File(resolve(dir, f))),
                    (None, None) => None,
                },
            }
        } else {
            Auth::None
        };
        let mut headers = Vec::new();
        for (name, h) in &cfg.http_headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("header {name:?}: {e}"))?;
            let mut sources: Vec<Source> = h.values.iter().map(|v| Source::Literal(v.clone())).collect();
            sources.extend(h.secrets.iter().map(|s| Source::Literal(s.expose().to_owned())));
            sources.extend(h.files.iter().map(|f| Source::File(resolve(dir, f))));
            headers.push((name, sources));
        }
        Ok(HttpClient { client, auth, headers })
    }

    /// Whether the config already sets an `Authorization` header.
    pub fn has_auth(&self) -> bool {
        !matches!(self.auth, Auth::None)
    }

    /// A request with the configured authentication and headers.
    pub fn request(&self, method: reqwest::Method, url: &str) -> Result<reqwest::RequestBuilder, NotifyError> {
        let perm = |m: String| NotifyError::permanent(m);
        let mut req = self.client.request(method, url);
        match &self.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                let password = password.as_ref().map(Source::read).transpose().map_err(perm)?;
                req = req.basic_auth(username.read().map_err(perm)?, password);
            }
            Auth::Header { kind, credentials } => {
                let credentials = credentials
                    .as_ref()
                    .map(Source::read)
                    .transpose()
                    .map_err(perm)?
                    .unwrap_or_default();
                let mut value = HeaderValue::from_str(&format!("{kind} {credentials}"))
                    .map_err(|_| perm("invalid authorization header".into()))?;
                value.set_sensitive(true);
                req = req.header(reqwest::header::AUTHORIZATION, value);
            }
        }
        for (name, sources) in &self.headers {
            for s in sources {
                let v = s.read().map_err(perm)?;
                let mut v = HeaderValue::from_str(&v).map_err(|_| perm(format!("invalid value for header {name}")))?;
                v.set_sensitive(true);
                req = req.header(name, v);
            }
        }
        Ok(req)
    }
}

/// The response of a delivered request.
#[derive(Debug)]
pub struct Response {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

/// The most of a response body kept for error messages.
const MAX_BODY_IN_ERROR: usize = 1024;

/// Removes every occurrence of the secrets from `s` (URLs and tokens must never reach logs).
pub fn redact(s: &str, secrets: &[&str]) -> String {
    let mut out = s.to_owned();
    for secret in secrets.iter().filter(|x| x.len() >= 4) {
        out = out.replace(secret, "<secret>");
    }
    out
}

/// Sends `req` with an optional per-request timeout; transport errors are retryable, and
/// messages never contain the URL (which may hold a token). `what` names the integration.
pub async fn send(
    req: reqwest::RequestBuilder,
    timeout: Duration,
    what: &str,
    secrets: &[&str],
) -> Result<Response, NotifyError> {
    let req = if timeout.is_zero() { req } else { req.timeout(timeout) };
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return Err(transport_error(e, what, secrets)),
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = match resp.text().await {
        Ok(b) => b,
        Err(e) => return Err(transport_error(e, what, secrets)),
    };
    Ok(Response { status, headers, body })
}

fn transport_error(e: reqwest::Error, what: &str, secrets: &[&str]) -> NotifyError {
    let e = e.without_url();
    let mut msg = format!("{what}: {e}");
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    let reason = if e.is_timeout() {
        FailureReason::ContextDeadlineExceeded
    } else {
        FailureReason::Other
    };
    NotifyError {
        message: redact(&msg, secrets),
        retryable: true,
        reason,
    }
}

/// `Retry-After` in seconds (delta form), if the response has one.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Upstream's `Retrier.Check`: 2xx succeeds; 5xx and the integration's extra codes are
/// retryable; anything else fails for good. The body (truncated) is in the message.
pub fn check(resp: &Response, what: &str, extra_retry: &[u16], secrets: &[&str]) -> Result<(), NotifyError> {
    let code = resp.status.as_u16();
    if resp.status.is_success() {
        return Ok(());
    }
    let retryable = resp.status.is_server_error() || extra_retry.contains(&code);
    let reason = if resp.status.is_server_error() {
        FailureReason::ServerError
    } else if resp.status.is_client_error() {
        FailureReason::ClientError
    } else {
        FailureReason::Other
    };
    let mut body: String = resp.body.chars().take(MAX_BODY_IN_ERROR).collect();
    if body.len() < resp.body.len() {
        body.push('…');
    }
    let mut message = format!("{what}: unexpected status code {code}");
    if !body.trim().is_empty() {
        message.push_str(&format!(": {}", body.trim()));
    }
    if retryable && let Some(after) = retry_after(&resp.headers) {
        message.push_str(&format!(" (retry after {}s)", after.as_secs()));
    }
    Err(NotifyError {
        message: redact(&message, secrets),
        retryable,
        reason,
    })
}

/// Truncates `s` to at most `n` characters, ending with `…` when cut (upstream
/// `notify.TruncateInRunes`).
pub fn truncate_runes(s: &str, n: usize) -> (String, bool) {
    if s.chars().count() <= n {
        return (s.to_owned(), false);
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    (out, true)
}

/// Truncates `s` to at most `n` bytes, ending with `…` when cut (upstream
/// `notify.TruncateInBytes`).
pub fn truncate_bytes(s: &str, n: usize) -> (String, bool) {
    if s.len() <= n {
        return (s.to_owned(), false);
    }
    let ell = "…";
    let mut end = n.saturating_sub(ell.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (format!("{}{ell}", &s[..end]), true)
}

/// SHA-256 hex of a group key (upstream `notify.Key.Hash`), the dedup key PagerDuty and
/// OpsGenie see.
pub fn key_hash(group_key: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, group_key.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_is_sha256_hex() {
        assert_eq!(
            key_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate_runes("abc", 3), ("abc".to_owned(), false));
        assert_eq!(truncate_runes("abcd", 3), ("ab…".to_owned(), true));
        assert_eq!(truncate_runes("ééé", 2), ("é…".to_owned(), true));
        assert_eq!(truncate_bytes("abcdef", 6), ("abcdef".to_owned(), false));
        // "…" is 3 bytes; a multi-byte char is never split.
        assert_eq!(truncate_bytes("ééééé", 7), ("éé…".to_owned(), true));
    }

    #[test]
    fn redaction_and_debug_hide_secrets() {
        assert_eq!(
            redact("post http://x/T0KEN failed", &["http://x/T0KEN"]),
            "post <secret> failed"
        );
        let cfg: HttpClientConfig = HttpClientConfig {
            bearer_token: Some(watchfire_config::Secret::new("sup3rsecret")),
            ..HttpClientConfig::default()
        };
        let c = HttpClient::new(Some(&cfg), Path::new("/tmp")).unwrap();
        assert!(c.has_auth());
        assert!(!format!("{c:?}").contains("sup3rsecret"));
    }

    #[test]
    fn retry_classification() {
        let resp = |code: u16| Response {
            status: reqwest::StatusCode::from_u16(code).unwrap(),
            headers: Default::default(),
            body: String::new(),
        };
        assert!(check(&resp(204), "x", &[], &[]).is_ok());
        assert!(check(&resp(500), "x", &[], &[]).unwrap_err().retryable);
        assert!(!check(&resp(429), "x", &[], &[]).unwrap_err().retryable);
        assert!(check(&resp(429), "x", &[429], &[]).unwrap_err().retryable);
        let e = check(&resp(404), "x", &[], &[]).unwrap_err();
        assert!(!e.retryable);
        assert_eq!(e.reason, FailureReason::ClientError);
    }
}
