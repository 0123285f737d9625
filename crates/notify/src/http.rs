//! The HTTP side shared by the HTTP integrations: a client from an integration's
//! `http_config` (prometheus/common `NewClientFromConfig`), the POST with per-request timeout,
//! and upstream's retry classification (`notify.Retrier`).

use std::path::Path;
use std::time::Duration;

use watchfire_alerting::{FailureReason, NotifyError};
use watchfire_config::http::HttpClientConfig;

/// The `User-Agent` every integration sends.
pub const USER_AGENT: &str = concat!("Alertmanager/", env!("CARGO_PKG_VERSION"), " (Watchfire)");

/// A configured HTTP client ([`watchfire_http::HttpClient`] with the integrations'
/// `User-Agent`). Cheap to clone; its `Debug` shows no credentials.
#[derive(Clone, Debug)]
pub struct HttpClient(watchfire_http::HttpClient);

pub use watchfire_http::resolve;

impl HttpClient {
    /// Builds the client from an integration's `http_config` (the defaults when absent);
    /// `dir` is where relative file paths are taken from.
    pub fn new(cfg: Option<&HttpClientConfig>, dir: &Path) -> Result<HttpClient, String> {
        let default = HttpClientConfig::default();
        let options = watchfire_http::Options {
            user_agent: Some(USER_AGENT.to_owned()),
            timeout: None,
        };
        watchfire_http::HttpClient::with_options(cfg.unwrap_or(&default), dir, &options).map(HttpClient)
    }

    /// Whether the config already sets credentials.
    pub fn has_auth(&self) -> bool {
        self.0.has_auth()
    }

    /// A request with the configured authentication and headers; an unreadable credential
    /// is a permanent failure.
    pub fn request(&self, method: reqwest::Method, url: &str) -> Result<reqwest::RequestBuilder, NotifyError> {
        self.0.request(method, url).map_err(NotifyError::permanent)
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
