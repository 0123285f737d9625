//! The outgoing HTTP client every Watchfire component uses (scraping, HTTP service discovery,
//! the rules' Alertmanager clients, notifications, remote write), built from a config's HTTP
//! client fields as upstream's `prometheus/common/config.NewClientFromConfig` builds one:
//! TLS (CA, client certificate, versions, skip-verify), redirects, HTTP/2, proxies, basic
//! auth, `authorization` (and the deprecated bearer token fields), and extra headers.
//!
//! Credentials and headers given as files are read on every request, as upstream does, so a
//! rotated token is used without a reload. Relative file paths are taken relative to the
//! directory given at construction (the config file's directory). Credential headers are
//! marked sensitive, and the client's `Debug` shows no secret.
//!
//! Not supported yet (refused with a clear message rather than ignored): `oauth2`,
//! `tls_config.server_name`, the `*_ref` secret references and `proxy_connect_header`.

mod lean;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use lean::{BoxError, Response};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use watchfire_config::http::{HttpClientConfig, TlsVersion};

/// Settings that come from the caller rather than the configuration.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The `User-Agent` header; reqwest sends none when `None`.
    pub user_agent: Option<String>,
    /// A timeout for whole requests; `None` leaves it to each request.
    pub timeout: Option<Duration>,
}

/// Where a credential or header value comes from.
#[derive(Clone)]
enum Source {
    Literal(String),
    File(PathBuf),
}

impl Source {
    fn new(literal: Option<&str>, file: Option<&str>, dir: &Path) -> Option<Source> {
        match (literal, file) {
            (Some(s), _) => Some(Source::Literal(s.to_owned())),
            (None, Some(f)) => Some(Source::File(resolve(dir, f))),
            (None, None) => None,
        }
    }

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

/// A configured HTTP client. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    /// For what [`HttpClient::send`] can send without reqwest; `None` with a proxy or a
    /// client-wide timeout.
    lean: Option<lean::Lean>,
    follow_redirects: bool,
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

/// A GET request prepared by [`HttpClient::prepare_get`].
#[derive(Clone, Debug)]
pub struct PreparedGet {
    url: reqwest::Url,
    headers: HeaderMap,
    /// The request target and complete headers for the lean client, when it can send it.
    lean: Option<(hyper::Uri, HeaderMap)>,
}

impl PreparedGet {
    /// The URL requested.
    pub fn url(&self) -> &str {
        self.url.as_str()
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
    /// Builds the client with default [`Options`]; `dir` is where relative file paths are
    /// taken from.
    pub fn new(cfg: &HttpClientConfig, dir: &Path) -> Result<HttpClient, String> {
        Self::with_options(cfg, dir, &Options::default())
    }

    /// Builds the client.
    pub fn with_options(cfg: &HttpClientConfig, dir: &Path, options: &Options) -> Result<HttpClient, String> {
        if cfg.oauth2.is_some() {
            return Err("oauth2 is not supported yet".into());
        }
        let tls = &cfg.tls_config;
        if tls.server_name.is_some() {
            // reqwest cannot verify against a name other than the URL's host; refusing is
            // safer than silently verifying against the wrong name.
            return Err("tls_config.server_name is not supported yet".into());
        }
        if tls.ca_ref.is_some() || tls.cert_ref.is_some() || tls.key_ref.is_some() {
            return Err("tls_config *_ref secrets are not supported yet".into());
        }
        if !cfg.proxy_connect_header.is_empty() {
            return Err("proxy_connect_header is not supported yet".into());
        }
        let mut builder = reqwest::Client::builder();
        if let Some(ua) = &options.user_agent {
            builder = builder.user_agent(ua);
        }
        if let Some(t) = options.timeout {
            builder = builder.timeout(t);
        }
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
        if !cfg.enable_http2 {
            builder = builder.http1_only();
        }
        let lean = (!cfg.proxy_from_environment && cfg.proxy_url.is_none() && options.timeout.is_none())
            .then(|| lean::Lean::new(options.user_agent.as_deref()))
            .transpose()?;
        // Go's transport uses no proxy unless told to; reqwest reads the environment by
        // default (HTTP_PROXY, HTTPS_PROXY, NO_PROXY), which is proxy_from_environment.
        if cfg.proxy_from_environment {
        } else if let Some(url) = &cfg.proxy_url {
            let mut proxy = reqwest::Proxy::all(url).map_err(|e| format!("invalid proxy_url: {e}"))?;
            if let Some(no) = &cfg.no_proxy {
                proxy = proxy.no_proxy(reqwest::NoProxy::from_string(no));
            }
            builder = builder.proxy(proxy);
        } else {
            builder = builder.no_proxy();
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
                password: Source::new(b.password.as_ref().map(|p| p.expose()), b.password_file.as_deref(), dir),
            }
        } else if let Some(a) = cfg.effective_authorization() {
            if a.credentials_ref.is_some() {
                return Err("authorization credentials_ref is not supported yet".into());
            }
            Auth::Header {
                kind: a.kind.clone(),
                credentials: Source::new(
                    a.credentials.as_ref().map(|c| c.expose()),
                    a.credentials_file.as_deref(),
                    dir,
                ),
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
        Ok(HttpClient {
            client,
            lean,
            follow_redirects: cfg.follow_redirects,
            auth,
            headers,
        })
    }

    /// The underlying client, without the configured authentication and headers.
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// Whether the configuration sets credentials (basic auth or an `Authorization` header).
    pub fn has_auth(&self) -> bool {
        !matches!(self.auth, Auth::None)
    }

    /// A request with the configured authentication and headers. Fails when a credential
    /// file cannot be read or holds something that is not a valid header value.
    pub fn request(&self, method: reqwest::Method, url: &str) -> Result<reqwest::RequestBuilder, String> {
        let mut req = self.client.request(method, url);
        match &self.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                let password = password.as_ref().map(Source::read).transpose()?;
                req = req.basic_auth(username.read()?, password);
            }
            Auth::Header { kind, credentials } => {
                let credentials = credentials.as_ref().map(Source::read).transpose()?.unwrap_or_default();
                let mut value = HeaderValue::from_str(&format!("{kind} {credentials}"))
                    .map_err(|_| "invalid authorization header".to_owned())?;
                value.set_sensitive(true);
                req = req.header(reqwest::header::AUTHORIZATION, value);
            }
        }
        for (name, sources) in &self.headers {
            for s in sources {
                let mut value =
                    HeaderValue::from_str(&s.read()?).map_err(|_| format!("invalid value for header {name}"))?;
                value.set_sensitive(true);
                req = req.header(name.clone(), value);
            }
        }
        Ok(req)
    }

    /// Sends a request made by [`HttpClient::request`]. Plain-HTTP requests without a body
    /// (scrapes) go through a leaner HTTP/1.1 client whose idle pooled connections keep a
    /// small read buffer (see the `lean` module); the rest through reqwest. The response is
    /// the same either way.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Result<Response, BoxError> {
        let req = req.build()?;
        let req = match &self.lean {
            Some(lean) => match lean.send(req, self.follow_redirects).await? {
                lean::Sent::Done(resp) => return Ok(Response::lean(resp)),
                lean::Sent::Fallback(req) => req,
            },
            None => req,
        };
        Ok(Response::reqwest(self.client.execute(req).await?))
    }

    /// A GET of `url` with `headers`, to be sent many times with [`HttpClient::send_prepared`]
    /// (a target's scrapes): the URL is parsed and the headers built once.
    pub fn prepare_get(&self, url: &str, headers: HeaderMap) -> Result<PreparedGet, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{e}"))?;
        let lean = self.lean.as_ref().and_then(|lean| {
            let uri = lean::lean_uri(&parsed)?;
            let mut complete = headers.clone();
            lean.add_defaults(&mut complete);
            Some((uri, complete))
        });
        Ok(PreparedGet {
            url: parsed,
            headers,
            lean,
        })
    }

    /// Sends a prepared GET, with the configured authentication and headers as
    /// [`HttpClient::request`] adds them (read again for each request). The response is the
    /// one [`HttpClient::send`] would give.
    pub async fn send_prepared(&self, p: &PreparedGet) -> Result<Response, BoxError> {
        let plain = matches!(self.auth, Auth::None) && self.headers.is_empty();
        if let (Some(lean), Some((uri, headers)), true) = (&self.lean, &p.lean, plain) {
            let mut h = hyper::Request::new(http_body_util::Empty::new());
            *h.uri_mut() = uri.clone();
            *h.headers_mut() = headers.clone();
            if let Some(resp) = lean.send_hyper(h, self.follow_redirects).await? {
                return Ok(Response::lean(resp));
            }
            // A redirect to follow or a response head too large: reqwest sends it again.
            let req = self.get(p.url.as_str())?.headers(p.headers.clone()).build()?;
            return Ok(Response::reqwest(self.client.execute(req).await?));
        }
        self.send(self.get(p.url.as_str())?.headers(p.headers.clone())).await
    }

    /// [`HttpClient::request`] with GET.
    pub fn get(&self, url: &str) -> Result<reqwest::RequestBuilder, String> {
        self.request(reqwest::Method::GET, url)
    }

    /// [`HttpClient::request`] with POST.
    pub fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, String> {
        self.request(reqwest::Method::POST, url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> HttpClientConfig {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn credentials_come_from_files_at_each_request_and_never_show_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "first\n").unwrap();
        let c = HttpClient::new(
            &config("authorization:\n  credentials_file: token\nhttp_headers:\n  X-Key:\n    secrets: [s3cr3t]\n"),
            dir.path(),
        )
        .unwrap();
        assert!(c.has_auth());
        let req = c.get("http://127.0.0.1:1/").unwrap().build().unwrap();
        assert_eq!(req.headers()["authorization"], "Bearer first");
        assert_eq!(req.headers()["x-key"], "s3cr3t");
        std::fs::write(dir.path().join("token"), "second").unwrap();
        let req = c.get("http://127.0.0.1:1/").unwrap().build().unwrap();
        assert_eq!(req.headers()["authorization"], "Bearer second");
        let debug = format!("{c:?}");
        assert!(!debug.contains("second") && !debug.contains("s3cr3t"), "{debug}");

        std::fs::remove_file(dir.path().join("token")).unwrap();
        let err = c.get("http://127.0.0.1:1/").unwrap_err();
        assert!(err.contains("unable to read") && err.contains("token"), "{err}");
    }

    #[test]
    fn basic_auth_and_unsupported_fields() {
        let c = HttpClient::new(&config("basic_auth:\n  username: u\n  password: p\n"), Path::new(".")).unwrap();
        let req = c.post("http://127.0.0.1:1/").unwrap().build().unwrap();
        assert_eq!(req.headers()["authorization"], "Basic dTpw");
        assert!(!HttpClient::new(&config("{}"), Path::new(".")).unwrap().has_auth());
        let err = HttpClient::new(&config("tls_config:\n  server_name: x\n"), Path::new(".")).unwrap_err();
        assert!(err.contains("server_name"), "{err}");
    }
}
