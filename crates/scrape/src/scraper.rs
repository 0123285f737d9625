//! One HTTP scrape: the request headers Prometheus 3 sends, the status check, gzip and the
//! body size limit (upstream scrape/scrape.go `targetScraper`).

use std::io::Write;
use std::time::Duration;

use reqwest::header::{ACCEPT, ACCEPT_ENCODING, HeaderMap, HeaderValue, USER_AGENT};
use watchfire_config::prometheus::{EscapingScheme, ScrapeProtocol};
use watchfire_discovery::client::HttpClient;
use watchfire_http::PreparedGet;

/// Why fetching a scrape failed. The display strings follow upstream's where they exist.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("server returned HTTP status {0}")]
    Status(String),
    #[error("body size limit exceeded")]
    BodySizeLimit,
    #[error("Get {url:?}: context deadline exceeded")]
    Timeout { url: String },
    #[error("Get {url:?}: {message}")]
    Request { url: String, message: String },
    #[error("gzip: {0}")]
    Gzip(String),
}

/// The `Accept` header for `protocols` (upstream `acceptHeader`): each protocol with a
/// descending q-value starting at 0.6 (five known protocols plus one), the escaping scheme
/// on the 1.0.0 text formats, and a final `*/*`.
pub fn accept_header(protocols: &[ScrapeProtocol], escaping: EscapingScheme) -> String {
    let mut weight = ScrapeProtocol::ALL.len() + 1;
    let mut parts = Vec::with_capacity(protocols.len() + 1);
    for p in protocols {
        let mut v = p.header_value().to_owned();
        if matches!(
            p,
            ScrapeProtocol::PrometheusText1_0_0 | ScrapeProtocol::OpenMetricsText1_0_0
        ) {
            v.push_str(";escaping=");
            v.push_str(escaping.as_str());
        }
        v.push_str(&format!(";q=0.{weight}"));
        parts.push(v);
        weight = weight.saturating_sub(1);
    }
    parts.push(format!("*/*;q=0.{weight}"));
    parts.join(",")
}

/// How to scrape one target.
#[derive(Clone, Debug)]
pub struct Scraper {
    client: HttpClient,
    url: String,
    /// The request, built once; why not, if it could not be.
    request: Result<PreparedGet, String>,
    timeout: Duration,
    /// Largest uncompressed body; 0 is no limit. A body of exactly this size fails too, as
    /// upstream's check is `n >= limit`.
    body_size_limit: u64,
}

/// The most a body's `Content-Length` reserves up front.
const MAX_RESERVE: u64 = 16 << 20;

/// Body buffers of finished scrapes, for the next ones: a page is read into one and freed
/// after its append, and allocating and freeing ~100 KB every scrape costs the allocator
/// more than the reuse (it consolidates its free lists on every large free). Scrapes seldom
/// overlap, so a few are kept, none larger than [`KEPT_BODY_MAX`].
static BODIES: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
const KEPT_BODIES: usize = 4;
const KEPT_BODY_MAX: usize = 4 << 20;

/// An empty buffer with room for `len` bytes, reused if one is kept.
fn body_buffer(len: usize) -> Vec<u8> {
    let kept = BODIES.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let mut buf = kept.unwrap_or_default();
    buf.reserve(len);
    buf
}

/// Gives a body's buffer back once the scrape is done with it.
pub(crate) fn recycle(mut buf: Vec<u8>) {
    if buf.capacity() > KEPT_BODY_MAX || buf.capacity() == 0 {
        return;
    }
    buf.clear();
    let mut kept = BODIES.lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() < KEPT_BODIES {
        kept.push(buf);
    }
}

/// A writer that refuses to grow past a limit, so a gzip bomb stops at the limit.
struct Limited {
    buf: Vec<u8>,
    limit: u64,
}

impl Write for Limited {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() as u64 + data.len() as u64 >= self.limit {
            return Err(std::io::Error::other("body size limit exceeded"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The headers of a scrape request besides the client's own.
#[derive(Clone, Debug)]
pub struct RequestHeaders {
    pub accept: String,
    pub enable_compression: bool,
    pub user_agent: String,
}

impl Scraper {
    /// A scraper of `url`, its request built now (headers as Prometheus 3 sends them).
    pub fn new(client: HttpClient, url: String, timeout: Duration, body_size_limit: u64, h: RequestHeaders) -> Self {
        let request = Self::headers(timeout, &h).and_then(|headers| client.prepare_get(&url, headers));
        Scraper {
            client,
            url,
            request,
            timeout,
            body_size_limit,
        }
    }

    fn headers(timeout: Duration, h: &RequestHeaders) -> Result<HeaderMap, String> {
        let value = |v: &str| HeaderValue::from_str(v).map_err(|e| format!("invalid header value {v:?}: {e}"));
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, value(&h.accept)?);
        let encoding = if h.enable_compression { "gzip" } else { "identity" };
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static(encoding));
        headers.insert(USER_AGENT, value(&h.user_agent)?);
        headers.insert(
            "X-Prometheus-Scrape-Timeout-Seconds",
            value(&timeout.as_secs_f64().to_string())?,
        );
        Ok(headers)
    }

    /// Fetches the body and its Content-Type within the timeout.
    pub async fn fetch(&self) -> Result<(Vec<u8>, String), FetchError> {
        match tokio::time::timeout(self.timeout, self.fetch_inner()).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout { url: self.url.clone() }),
        }
    }

    async fn fetch_inner(&self) -> Result<(Vec<u8>, String), FetchError> {
        let request_error = |message: String| FetchError::Request {
            url: self.url.clone(),
            message,
        };
        let req = self.request.as_ref().map_err(|e| request_error(e.clone()))?;
        let mut resp = self
            .client
            .send_prepared(req)
            .await
            .map_err(|e| request_error(error_chain(&*e)))?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            let text = match status.canonical_reason() {
                Some(reason) => format!("{} {reason}", status.as_u16()),
                None => status.as_u16().to_string(),
            };
            return Err(FetchError::Status(text));
        }
        let header = |name: reqwest::header::HeaderName| {
            resp.headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default()
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let gzip = header(reqwest::header::CONTENT_ENCODING) == "gzip";
        let limit = if self.body_size_limit == 0 {
            u64::MAX
        } else {
            self.body_size_limit
        };
        // An uncompressed body of announced length is read into a buffer of that size instead
        // of one doubled on the way (a bounded reservation: the header may lie).
        let announced = if gzip {
            0
        } else {
            resp.headers()
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .filter(|&n| n < limit)
                .map_or(0, |n| n.min(MAX_RESERVE) as usize)
        };
        let mut out = Limited {
            buf: body_buffer(announced),
            limit,
        };
        let mut decoder = gzip.then(|| flate2::write::GzDecoder::new(Vec::new()));
        loop {
            let chunk = resp.chunk().await.map_err(|e| request_error(error_chain(&*e)))?;
            let Some(chunk) = chunk else { break };
            match decoder.as_mut() {
                None => out.write_all(&chunk).map_err(|_| FetchError::BodySizeLimit)?,
                Some(d) => {
                    d.write_all(&chunk).map_err(|e| FetchError::Gzip(e.to_string()))?;
                    let produced = std::mem::take(d.get_mut());
                    out.write_all(&produced).map_err(|_| FetchError::BodySizeLimit)?;
                }
            }
        }
        if let Some(d) = decoder {
            let rest = d.finish().map_err(|e| FetchError::Gzip(e.to_string()))?;
            out.write_all(&rest).map_err(|_| FetchError::BodySizeLimit)?;
        }
        Ok((out.buf, content_type))
    }
}

/// An error with its sources, as reqwest's top-level message alone says little.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_matches_prometheus_3() {
        assert_eq!(
            accept_header(&ScrapeProtocol::DEFAULT, EscapingScheme::AllowUtf8),
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
             application/openmetrics-text;version=0.0.1;q=0.5,\
             text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,\
             text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        );
        assert_eq!(
            accept_header(&[ScrapeProtocol::PrometheusText0_0_4], EscapingScheme::Underscores),
            "text/plain;version=0.0.4;q=0.6,*/*;q=0.5"
        );
    }

    #[test]
    fn limited_writer_refuses_at_the_limit() {
        let mut w = Limited {
            buf: Vec::new(),
            limit: 4,
        };
        w.write_all(b"abc").unwrap();
        assert!(w.write_all(b"d").is_err());
        assert_eq!(w.buf, b"abc");
    }
}
