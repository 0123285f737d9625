//! Plain-HTTP requests without a body (scrapes) through hyper's HTTP/1.1 client directly,
//! with a small fixed read buffer.
//!
//! reqwest builds the same hyper client but leaves hyper's read buffer adaptive: reads that
//! fill the buffer double it, up to ~400 KB, and a pooled keep-alive connection keeps the
//! grown buffer while it waits for its next request. A scrape of a ~100 KB exposition grows it
//! to 64-128 KB, so each idle scrape connection held that much (6.5 MB for 100 targets, about
//! a tenth of the memory per scraped series). A fixed read size ([`READ_BUF_SIZE`]) keeps it
//! at that; large bodies take more, smaller reads. Side by side, scraping through this client
//! took no more CPU per sample than through reqwest (less: it skips reqwest's layers).
//!
//! Only requests this client does exactly as reqwest would are sent through it: `http://`
//! URLs, no proxy, no request body, no per-request timeout. A redirect (when redirects are
//! followed) or a response head larger than the read buffer is sent again through reqwest.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue, USER_AGENT};

/// Bytes asked for per read. Also the largest response head this client parses (larger ones
/// go through reqwest). With 8 KiB a 100 KB body takes 13 reads instead of 2-3; side by side
/// (100 targets of 583 series) the scrape CPU per sample was the same as with 16 KiB, and 20
/// bytes a series less memory.
pub(crate) const READ_BUF_SIZE: usize = 8 * 1024;

/// Boxed errors of both clients.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Debug)]
pub(crate) struct Lean {
    client: Client<HttpConnector, Empty<Bytes>>,
    user_agent: Option<HeaderValue>,
}

/// What [`Lean::send`] did with a request.
pub(crate) enum Sent {
    Done(hyper::Response<Incoming>),
    /// Not for this client, or to be sent again by reqwest: the request, untouched.
    Fallback(reqwest::Request),
}

impl Lean {
    /// The client, with reqwest's defaults for what both have (TCP no-delay and keepalive,
    /// a 90 s pool idle timeout).
    pub(crate) fn new(user_agent: Option<&str>) -> Result<Lean, String> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_keepalive(Some(Duration::from_secs(15)));
        http.set_keepalive_interval(Some(Duration::from_secs(15)));
        http.set_keepalive_retries(Some(3));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .http1_read_buf_exact_size(READ_BUF_SIZE)
            .build(http);
        let user_agent = user_agent
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|e| format!("invalid user agent: {e}"))?;
        Ok(Lean { client, user_agent })
    }

    /// Sends `req` if it is one for this client; `follow_redirects` says whether a redirect
    /// must be followed (by reqwest).
    pub(crate) async fn send(&self, req: reqwest::Request, follow_redirects: bool) -> Result<Sent, BoxError> {
        let uri = match lean_uri(req.url()) {
            Some(uri) if req.body().is_none() && req.timeout().is_none() => uri,
            _ => return Ok(Sent::Fallback(req)),
        };
        let mut headers = req.headers().clone();
        self.add_defaults(&mut headers);
        let mut h = hyper::Request::new(Empty::new());
        *h.method_mut() = req.method().clone();
        *h.uri_mut() = uri;
        *h.headers_mut() = headers;
        match self.send_hyper(h, follow_redirects).await? {
            Some(resp) => Ok(Sent::Done(resp)),
            None => Ok(Sent::Fallback(req)),
        }
    }

    /// reqwest's default headers, added where `headers` does not set them.
    pub(crate) fn add_defaults(&self, headers: &mut HeaderMap) {
        if !headers.contains_key(ACCEPT) {
            headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        }
        if let Some(ua) = &self.user_agent
            && !headers.contains_key(USER_AGENT)
        {
            headers.insert(USER_AGENT, ua.clone());
        }
    }

    /// Sends a request built for this client (headers complete); `None` when reqwest must
    /// send it instead (a redirect to follow, a response head too large).
    pub(crate) async fn send_hyper(
        &self,
        h: hyper::Request<Empty<Bytes>>,
        follow_redirects: bool,
    ) -> Result<Option<hyper::Response<Incoming>>, BoxError> {
        match self.client.request(h).await {
            Ok(resp) if follow_redirects && is_redirect(resp.status(), resp.headers()) => Ok(None),
            Ok(resp) => Ok(Some(resp)),
            Err(e) if head_too_large(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// `url` as this client's request target, if it can send to it (plain HTTP, no fragment).
pub(crate) fn lean_uri(url: &reqwest::Url) -> Option<hyper::Uri> {
    if url.scheme() != "http" || url.fragment().is_some() {
        return None;
    }
    url.as_str().parse::<hyper::Uri>().ok()
}

fn is_redirect(status: reqwest::StatusCode, headers: &HeaderMap) -> bool {
    status.is_redirection() && headers.contains_key(reqwest::header::LOCATION)
}

/// Whether the response head did not fit the read buffer.
fn head_too_large(e: &hyper_util::client::legacy::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            return h.is_parse_too_large();
        }
        cur = err.source();
    }
    false
}

/// A response of either client: status and headers, then the body in chunks.
#[derive(Debug)]
pub struct Response {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Reqwest(reqwest::Response),
    Lean(hyper::Response<Incoming>),
}

impl Response {
    pub(crate) fn reqwest(r: reqwest::Response) -> Response {
        Response {
            inner: Inner::Reqwest(r),
        }
    }

    pub(crate) fn lean(r: hyper::Response<Incoming>) -> Response {
        Response { inner: Inner::Lean(r) }
    }

    pub fn status(&self) -> reqwest::StatusCode {
        match &self.inner {
            Inner::Reqwest(r) => r.status(),
            Inner::Lean(r) => r.status(),
        }
    }

    pub fn headers(&self) -> &HeaderMap {
        match &self.inner {
            Inner::Reqwest(r) => r.headers(),
            Inner::Lean(r) => r.headers(),
        }
    }

    /// The next chunk of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, BoxError> {
        match &mut self.inner {
            Inner::Reqwest(r) => Ok(r.chunk().await?),
            Inner::Lean(r) => loop {
                match r.body_mut().frame().await {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(e.into()),
                    // Trailers are not body.
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            return Ok(Some(data));
                        }
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::HttpClient;

    /// A keep-alive HTTP/1.1 server on loopback answering `/body` (100 000 bytes), `/redirect`
    /// (to `/body`) and `/bighead` (a 20 KB header); returns its address and the request heads
    /// it received.
    async fn server() -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                let log = log.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 4096];
                    loop {
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match conn.read(&mut tmp).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&tmp[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        buf.drain(..end + 4);
                        let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                        log.lock().unwrap().push(head);
                        let resp = match path.as_str() {
                            "/body" => format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{}",
                                "a".repeat(100_000)
                            ),
                            "/redirect" => "HTTP/1.1 302 Found\r\nLocation: /body\r\nContent-Length: 0\r\n\r\n".into(),
                            "/bighead" => format!(
                                "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 2\r\n\r\nok",
                                "b".repeat(20_000)
                            ),
                            _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".into(),
                        };
                        if conn.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, seen)
    }

    async fn body(resp: &mut Response) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.unwrap() {
            out.extend_from_slice(&chunk);
        }
        out
    }

    fn client(yaml: &str) -> HttpClient {
        let cfg = serde_saphyr::from_str(yaml).unwrap();
        let options = crate::Options {
            user_agent: Some("wf-test".into()),
            timeout: None,
        };
        HttpClient::with_options(&cfg, Path::new("."), &options).unwrap()
    }

    #[tokio::test]
    async fn plain_http_goes_through_the_lean_client_with_reqwests_headers() {
        let (addr, seen) = server().await;
        let c = client("basic_auth:\n  username: u\n  password: p\n");
        for _ in 0..2 {
            let mut resp = c.send(c.get(&format!("http://{addr}/body")).unwrap()).await.unwrap();
            assert!(matches!(resp.inner, Inner::Lean(_)));
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["content-length"], "100000");
            assert_eq!(body(&mut resp).await.len(), 100_000);
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        let head = seen[0].to_ascii_lowercase();
        for h in [
            "authorization: basic dtpw",
            "user-agent: wf-test",
            "accept: */*",
            "host: 127.0.0.1",
        ] {
            assert!(head.contains(h), "{h} missing from {head}");
        }
    }

    #[tokio::test]
    async fn redirects_and_large_heads_are_sent_again_through_reqwest() {
        let (addr, seen) = server().await;
        let c = client("{}");
        let mut resp = c
            .send(c.get(&format!("http://{addr}/redirect")).unwrap())
            .await
            .unwrap();
        assert!(matches!(resp.inner, Inner::Reqwest(_)));
        assert_eq!(resp.status(), 200);
        assert_eq!(body(&mut resp).await.len(), 100_000);

        let mut resp = c.send(c.get(&format!("http://{addr}/bighead")).unwrap()).await.unwrap();
        assert!(matches!(resp.inner, Inner::Reqwest(_)));
        assert_eq!(resp.headers()["x-big"].len(), 20_000);
        assert_eq!(body(&mut resp).await, b"ok");

        // Without following redirects, the lean client's answer is the response.
        let c = client("follow_redirects: false\n");
        let resp = c
            .send(c.get(&format!("http://{addr}/redirect")).unwrap())
            .await
            .unwrap();
        assert!(matches!(resp.inner, Inner::Lean(_)));
        assert_eq!(resp.status(), 302);
        // redirect (lean, then reqwest twice), bighead (lean, then reqwest), redirect (lean)
        assert_eq!(seen.lock().unwrap().len(), 6);
    }

    #[tokio::test]
    async fn prepared_gets_send_their_headers_with_auth_read_each_time() {
        let (addr, seen) = server().await;
        let mut headers = HeaderMap::new();
        headers.insert("x-scrape", HeaderValue::from_static("1"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/plain"));
        // Plain: the lean client, the given headers plus reqwest's user agent.
        let c = client("{}");
        let p = c.prepare_get(&format!("http://{addr}/body"), headers.clone()).unwrap();
        assert_eq!(p.url(), format!("http://{addr}/body"));
        for _ in 0..2 {
            let mut resp = c.send_prepared(&p).await.unwrap();
            assert!(matches!(resp.inner, Inner::Lean(_)));
            assert_eq!(body(&mut resp).await.len(), 100_000);
        }
        // With credentials: through `send`, which adds them.
        let c = client("basic_auth:\n  username: u\n  password: p\n");
        let p = c.prepare_get(&format!("http://{addr}/body"), headers.clone()).unwrap();
        let mut resp = c.send_prepared(&p).await.unwrap();
        assert_eq!(body(&mut resp).await.len(), 100_000);
        // A redirect: the lean client once, then reqwest follows it (two requests).
        let c = client("{}");
        let p = c.prepare_get(&format!("http://{addr}/redirect"), headers).unwrap();
        let mut resp = c.send_prepared(&p).await.unwrap();
        assert!(matches!(resp.inner, Inner::Reqwest(_)));
        assert_eq!(body(&mut resp).await.len(), 100_000);

        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 6, "{seen:?}");
        for (i, head) in seen.iter().enumerate() {
            let head = head.to_ascii_lowercase();
            for h in ["x-scrape: 1", "accept: text/plain", "user-agent: wf-test"] {
                assert!(head.contains(h), "request {i}: {h} missing from {head}");
            }
            assert_eq!(
                head.contains("authorization: basic dtpw"),
                i == 2,
                "request {i}: {head}"
            );
        }
        assert!(c.prepare_get("not a url", HeaderMap::new()).is_err());
    }

    #[tokio::test]
    async fn proxies_and_https_stay_with_reqwest() {
        let c = client("proxy_url: http://127.0.0.1:1\n");
        assert!(c.lean.is_none());
        let c = client("proxy_from_environment: true\n");
        assert!(c.lean.is_none());
        let c = client("{}");
        let req = c.get("https://127.0.0.1:1/").unwrap().build().unwrap();
        assert!(matches!(
            c.lean.as_ref().unwrap().send(req, true).await,
            Ok(Sent::Fallback(_))
        ));
    }
}
