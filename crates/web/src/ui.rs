//! The web UI: the built assets of `web/` (embedded by `build.rs`) and the page routes that
//! serve its `index.html`.
//!
//! The UI is a single-page application whose every URL is relative to `<base href>`; the
//! server fills that in with the route prefix when it starts, so the same assets work at `/`,
//! under `--web.route-prefix` and behind a reverse proxy that keeps the path. API calls from
//! the UI go to this same server only.

use std::io::Read as _;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderMap, HeaderValue, StatusCode, header};

/// One embedded file of `web/dist`.
#[derive(Debug)]
pub(crate) struct Asset {
    /// Path relative to `web/dist`, `/`-separated.
    pub path: &'static str,
    /// Whether `body` is gzip-compressed.
    pub gzip: bool,
    pub body: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));

/// The UI's page paths (relative to the route prefix); each serves `index.html` and the UI's
/// router picks the page. `graph` is the pre-3.0 name of `query`.
pub const PAGES: &[&str] = &[
    "/query",
    "/graph",
    "/alerts",
    "/rules",
    "/targets",
    "/service-discovery",
    "/status",
    "/tsdb-status",
    "/flags",
    "/config",
    "/alertmanager",
    "/silences",
    "/silences/{id}",
    "/notifications",
];

/// The placeholder in `index.html` that becomes the route prefix plus `/`.
const BASE_PLACEHOLDER: &str = "__WATCHFIRE_BASE__";

/// Whether this binary carries the UI (false only if `web/dist` was missing at build time).
pub fn embedded() -> bool {
    ASSETS.iter().any(|a| a.path == "index.html")
}

/// Routes for the UI under `prefix` (normalised: empty or `/path`): `/` redirects to the
/// query page, the page paths serve `index.html`, every other embedded file is served at its
/// path. The caller nests the result under the prefix.
pub fn router(prefix: &str) -> Router {
    let home = format!("{prefix}/query");
    let mut router = Router::new().route(
        "/",
        get(move || async move { (StatusCode::FOUND, [(header::LOCATION, home)]).into_response() }),
    );
    let index = ASSETS.iter().find(|a| a.path == "index.html").map(|a| {
        let html = String::from_utf8_lossy(a.body).replace(BASE_PLACEHOLDER, &format!("{prefix}/"));
        axum::body::Bytes::from(html)
    });
    for page in PAGES {
        let index = index.clone();
        router = router.route(
            page,
            get(move || async move {
                match index {
                    Some(html) => (
                        [
                            (
                                header::CONTENT_TYPE,
                                HeaderValue::from_static("text/html; charset=utf-8"),
                            ),
                            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                        ],
                        html,
                    )
                        .into_response(),
                    None => (
                        StatusCode::NOT_FOUND,
                        "This binary was built without the web UI (web/dist was missing); the APIs work.\n",
                    )
                        .into_response(),
                }
            }),
        );
    }
    // Hashed build files share one route, so the HTTP metrics' `handler` label stays one
    // series across UI rebuilds; the few top-level files get a route each.
    router = router.route(
        "/assets/{*file}",
        get(|Path(file): Path<String>, req: Request| async move {
            match ASSETS
                .iter()
                .find(|a| a.path.strip_prefix("assets/") == Some(file.as_str()))
            {
                Some(asset) => serve(asset, req).await,
                None => (StatusCode::NOT_FOUND, "404 page not found\n").into_response(),
            }
        }),
    );
    for asset in ASSETS
        .iter()
        .filter(|a| a.path != "index.html" && !a.path.starts_with("assets/"))
    {
        router = router.route(&format!("/{}", asset.path), get(move |req: Request| serve(asset, req)));
    }
    router
}

async fn serve(asset: &'static Asset, req: Request) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(asset.path)));
    // Vite names built files after their content hash, so they never change under one name.
    let cache = if asset.path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if !asset.gzip {
        return (headers, asset.body).into_response();
    }
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if accepts_gzip(req.headers()) {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        return (headers, asset.body).into_response();
    }
    let mut plain = Vec::new();
    match flate2::read::GzDecoder::new(asset.body).read_to_end(&mut plain) {
        Ok(_) => (headers, Body::from(plain)).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("embedded asset {} is corrupt: {e}\n", asset.path),
        )
            .into_response(),
    }
}

/// Whether `Accept-Encoding` allows gzip (`gzip` or `*`, without `q=0`).
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::accepts_gzip;
    use http::{HeaderMap, HeaderValue, header};

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(&h("gzip, deflate, br")));
        assert!(accepts_gzip(&h("br;q=1.0, gzip;q=0.8")));
        assert!(accepts_gzip(&h("*")));
        assert!(!accepts_gzip(&h("gzip;q=0")));
        assert!(!accepts_gzip(&h("identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
