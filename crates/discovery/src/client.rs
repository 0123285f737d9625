//! An HTTP client from a config's HTTP client fields (upstream
//! `prometheus/common/config.NewClientFromConfig`): basic auth, `authorization` (and the
//! deprecated bearer token fields), TLS, redirects, proxies and extra headers.
//!
//! Credentials and headers given as files are read on every request, as upstream does, so a
//! rotated token is used without a reload. Relative file paths are taken relative to the
//! directory given at construction (the config file's directory).

use std::path::{Path, PathBuf};

use reqwest::header::{HeaderName, HeaderValue};
use watchfire_config::http::{HttpClientConfig, TlsVersion};

use crate::Error;

/// Where a credential comes from.
#[derive(Clone, Debug)]
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

#[derive(Clone, Debug)]
enum Auth {
    None,
    Basic { username: Source, password: Option<Source> },
    Header { kind: String, credentials: Option<Source> },
}

/// A configured HTTP client. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    auth: Auth,
    headers: Vec<(HeaderName, Vec<Source>)>,
}

fn resolve(dir: &Path, p: &str) -> PathBuf {
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
    /// Builds the client for `what` (a job or SD config, for error messages). `dir` is the
    /// directory relative file paths are taken from.
    pub fn new(cfg: &HttpClientConfig, dir: &Path, what: &str) -> Result<Self, Error> {
        let fail = |message: String| Error::HttpClient {
            what: what.to_owned(),
            message,
        };
        if cfg.oauth2.is_some() {
            return Err(fail("oauth2 is not supported yet".into()));
        }
        let tls = &cfg.tls_config;
        if tls.server_name.is_some() {
            // reqwest cannot verify against a name other than the URL's host; refusing is
            // safer than silently verifying against the wrong name.
            return Err(fail("tls_config.server_name is not supported yet".into()));
        }
        if tls.ca_ref.is_some() || tls.cert_ref.is_some() || tls.key_ref.is_some() {
            return Err(fail("tls_config *_ref secrets are not supported yet".into()));
        }
        let mut builder = reqwest::Client::builder();
        if let Some(ca) = read_pem(dir, tls.ca.as_deref(), tls.ca_file.as_deref()).map_err(fail)? {
            for cert in reqwest::Certificate::from_pem_bundle(&ca).map_err(|e| fail(format!("invalid CA: {e}")))? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let cert = read_pem(dir, tls.cert.as_deref(), tls.cert_file.as_deref()).map_err(fail)?;
        let key = read_pem(dir, tls.key.as_ref().map(|k| k.expose()), tls.key_file.as_deref()).map_err(fail)?;
        if let (Some(mut cert), Some(key)) = (cert, key) {
            cert.push(b'\n');
            cert.extend_from_slice(&key);
            let id =
                reqwest::Identity::from_pem(&cert).map_err(|e| fail(format!("invalid client certificate: {e}")))?;
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
        // Go's transport uses no proxy unless told to; reqwest reads the environment by
        // default.
        if cfg.proxy_from_environment {
            // reqwest's default: HTTP_PROXY, HTTPS_PROXY, NO_PROXY.
        } else if let Some(url) = &cfg.proxy_url {
            let mut proxy = reqwest::Proxy::all(url).map_err(|e| fail(format!("invalid proxy_url: {e}")))?;
            if let Some(no) = &cfg.no_proxy {
                proxy = proxy.no_proxy(reqwest::NoProxy::from_string(no));
            }
            builder = builder.proxy(proxy);
        } else {
            builder = builder.no_proxy();
        }
        if !cfg.proxy_connect_header.is_empty() {
            return Err(fail("proxy_connect_header is not supported yet".into()));
        }
        let client = builder.build().map_err(|e| fail(e.to_string()))?;

        let auth = if let Some(b) = &cfg.basic_auth {
            if b.username_ref.is_some() || b.password_ref.is_some() {
                return Err(fail("basic_auth *_ref secrets are not supported yet".into()));
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
                return Err(fail("authorization credentials_ref is not supported yet".into()));
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
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| fail(format!("header {name:?}: {e}")))?;
            let mut sources: Vec<Source> = h.values.iter().map(|v| Source::Literal(v.clone())).collect();
            sources.extend(h.secrets.iter().map(|s| Source::Literal(s.expose().to_owned())));
            sources.extend(h.files.iter().map(|f| Source::File(resolve(dir, f))));
            headers.push((name, sources));
        }
        Ok(HttpClient { client, auth, headers })
    }

    /// The underlying client.
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// A GET request for `url` with the configured authentication and headers. Fails when a
    /// credential file cannot be read.
    pub fn get(&self, url: &str) -> Result<reqwest::RequestBuilder, String> {
        let mut req = self.client.get(url);
        match &self.auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                let password = password.as_ref().map(Source::read).transpose()?;
                req = req.basic_auth(username.read()?, password);
            }
            Auth::Header { kind, credentials } => {
                let credentials = credentials.as_ref().map(Source::read).transpose()?.unwrap_or_default();
                let value = HeaderValue::from_str(&format!("{kind} {credentials}"))
                    .map_err(|e| format!("invalid authorization header: {e}"))?;
                req = req.header(reqwest::header::AUTHORIZATION, value);
            }
        }
        for (name, sources) in &self.headers {
            for s in sources {
                let v = s.read()?;
                let value = HeaderValue::from_str(&v).map_err(|e| format!("invalid value for header {name}: {e}"))?;
                req = req.header(name.clone(), value);
            }
        }
        Ok(req)
    }
}
