//! The web configuration as the server sees it: re-read when the file changes (upstream
//! re-reads it on every request), with basic authentication against bcrypt hashes.
//!
//! bcrypt is deliberately slow (tens of milliseconds per check), so successful and failed
//! checks are cached under a keyed hash of user, password and stored hash; the password
//! itself is never stored or logged.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{HeaderName, HeaderValue, StatusCode, header};
use tokio_rustls::TlsAcceptor;
use tracing::{error, warn};
use watchfire_config::web::WebConfig;

use crate::Error;

/// The most cached authentication results kept; the cache is cleared when it fills up.
const AUTH_CACHE_LIMIT: usize = 1024;

/// A bcrypt hash checked when the user does not exist, so that the response time does not
/// reveal which user names exist. Made once, on first use.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| bcrypt::hash("watchfire: no such user", bcrypt::DEFAULT_COST).unwrap_or_default());

/// The web configuration in force, and the TLS acceptor built from it.
#[derive(Clone)]
pub struct Snapshot {
    pub config: Arc<WebConfig>,
    pub tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("config", &self.config)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

#[derive(Debug)]
struct Loaded {
    stamp: Option<(SystemTime, u64)>,
    snapshot: Snapshot,
    /// The last reload error, so a broken file is logged once rather than per request.
    last_error: Option<String>,
}

/// Where the web configuration comes from: a file given with `--web.config.file`, or none
/// (plain HTTP, no authentication).
#[derive(Debug)]
pub struct WebConfigSource {
    path: Option<PathBuf>,
    loaded: Mutex<Loaded>,
    auth_cache: Mutex<HashMap<(u64, u64), bool>>,
    hasher: (RandomState, RandomState),
    bucket: Mutex<Option<(f64, Instant)>>,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn build(path: &Path) -> Result<Snapshot, Error> {
    let config = WebConfig::load(path)?;
    let tls = match config.tls() {
        Some(t) => Some(crate::tls::acceptor(t, config.http_server_config.http2, path)?),
        None => None,
    };
    Ok(Snapshot {
        config: Arc::new(config),
        tls,
    })
}

impl WebConfigSource {
    /// No web configuration: plain HTTP without authentication.
    pub fn none() -> Self {
        Self::with(
            None,
            Snapshot {
                config: Arc::new(WebConfig::default()),
                tls: None,
            },
        )
    }

    /// Loads and checks `path` now, so that a bad file stops the server from starting.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let snapshot = build(path)?;
        let s = Self::with(Some(path.to_path_buf()), snapshot);
        s.loaded
            .lock()
            .expect("web config lock is never poisoned: no panics while held")
            .stamp = stamp(path);
        Ok(s)
    }

    fn with(path: Option<PathBuf>, snapshot: Snapshot) -> Self {
        WebConfigSource {
            path,
            loaded: Mutex::new(Loaded {
                stamp: None,
                snapshot,
                last_error: None,
            }),
            auth_cache: Mutex::new(HashMap::new()),
            hasher: (RandomState::new(), RandomState::new()),
            bucket: Mutex::new(None),
        }
    }

    /// The configuration in force, re-read first if the file changed. An unreadable or invalid
    /// file is an error (requests get 500, as upstream answers) until it is fixed.
    pub fn current(&self) -> Result<Snapshot, String> {
        let mut loaded = self
            .loaded
            .lock()
            .expect("web config lock is never poisoned: no panics while held");
        let Some(path) = &self.path else {
            return Ok(loaded.snapshot.clone());
        };
        let now = stamp(path);
        if now == loaded.stamp && now.is_some() {
            return match &loaded.last_error {
                Some(e) => Err(e.clone()),
                None => Ok(loaded.snapshot.clone()),
            };
        }
        loaded.stamp = now;
        match build(path) {
            Ok(s) => {
                loaded.snapshot = s;
                loaded.last_error = None;
                self.auth_cache
                    .lock()
                    .expect("auth cache lock is never poisoned")
                    .clear();
                Ok(loaded.snapshot.clone())
            }
            Err(e) => {
                let msg = e.to_string();
                error!(file = %path.display(), err = %msg, "web config reload failed; requests are refused until it is fixed");
                loaded.last_error = Some(msg.clone());
                Err(msg)
            }
        }
    }

    /// The TLS acceptor of the last good configuration, for new connections.
    pub fn tls(&self) -> Option<TlsAcceptor> {
        // Re-read so certificate rotation takes effect on the next connection; on error keep
        // the last good acceptor (the error is logged by `current`).
        let _ = self.current();
        self.loaded
            .lock()
            .expect("web config lock is never poisoned")
            .snapshot
            .tls
            .clone()
    }

    /// Takes one token from the `rate_limit` bucket (a token per `interval`, at most `burst`
    /// stored), as exporter-toolkit's limiter does; false when the request must wait.
    fn take_token(&self, config: &WebConfig) -> bool {
        let Some(limit) = &config.rate_limit else { return true };
        if limit.interval.is_zero() {
            return true;
        }
        let burst = f64::from(limit.burst.max(1));
        let now = Instant::now();
        let mut bucket = self.bucket.lock().expect("rate limit lock is never poisoned");
        let (tokens, last) = bucket.unwrap_or((burst, now));
        let refilled = (tokens + now.duration_since(last).as_secs_f64() / limit.interval.as_secs_f64()).min(burst);
        let allowed = refilled >= 1.0;
        *bucket = Some((if allowed { refilled - 1.0 } else { refilled }, now));
        allowed
    }

    fn cache_key(&self, user: &str, password: &str, hash: &str) -> (u64, u64) {
        let key = |s: &RandomState| {
            let mut h = s.build_hasher();
            h.write(user.as_bytes());
            h.write_u8(0);
            h.write(password.as_bytes());
            h.write_u8(0);
            h.write(hash.as_bytes());
            h.finish()
        };
        (key(&self.hasher.0), key(&self.hasher.1))
    }

    /// Whether `user`/`password` match the configured bcrypt hash.
    pub async fn check(&self, config: &WebConfig, user: &str, password: &str) -> bool {
        let (hash, known) = match config.basic_auth_users.get(user) {
            Some(h) => (h.expose().to_owned(), true),
            None => (String::new(), false),
        };
        let key = self.cache_key(user, password, &hash);
        if let Some(ok) = self
            .auth_cache
            .lock()
            .expect("auth cache lock is never poisoned")
            .get(&key)
        {
            return *ok && known;
        }
        let pw = password.to_owned();
        let h = hash.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let h = if h.is_empty() { DUMMY_HASH.as_str() } else { h.as_str() };
            bcrypt::verify(pw, h).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let mut cache = self.auth_cache.lock().expect("auth cache lock is never poisoned");
        if cache.len() >= AUTH_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, ok);
        ok && known
    }
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"))],
        "Unauthorized\n",
    )
        .into_response()
}

fn basic_credentials(req: &Request) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// Middleware for every route: enforces basic authentication when the web configuration
/// has users, and adds the configured response headers.
pub async fn enforce(State(source): State<Arc<WebConfigSource>>, req: Request, next: Next) -> Response {
    let snapshot = match source.current() {
        Ok(s) => s,
        Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n").into_response(),
    };
    let config = &snapshot.config;
    if !source.take_token(config) {
        return (StatusCode::TOO_MANY_REQUESTS, "Too Many Requests\n").into_response();
    }
    if !config.basic_auth_users.is_empty() {
        let Some((user, password)) = basic_credentials(&req) else {
            return unauthorized();
        };
        if !source.check(config, &user, &password).await {
            // The user name helps an operator; the password is never logged.
            warn!(user = %user, path = %req.uri().path(), "basic authentication failed");
            return unauthorized();
        }
    }
    let mut resp = next.run(req).await;
    for (name, value) in &config.http_server_config.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            resp.headers_mut().insert(n, v);
        }
    }
    resp
}
