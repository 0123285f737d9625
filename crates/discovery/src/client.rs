//! The HTTP client of HTTP service discovery and scraping: [`watchfire_http::HttpClient`]
//! built from a job's or SD config's HTTP client fields, with build errors that name the
//! config they came from.

use std::ops::Deref;
use std::path::Path;

use watchfire_config::http::HttpClientConfig;

use crate::Error;

/// A configured HTTP client (see [`watchfire_http::HttpClient`]). Cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpClient(watchfire_http::HttpClient);

impl HttpClient {
    /// Builds the client for `what` (a job or SD config, for error messages). `dir` is the
    /// directory relative file paths are taken from.
    pub fn new(cfg: &HttpClientConfig, dir: &Path, what: &str) -> Result<Self, Error> {
        watchfire_http::HttpClient::new(cfg, dir)
            .map(HttpClient)
            .map_err(|message| Error::HttpClient {
                what: what.to_owned(),
                message,
            })
    }
}

impl Deref for HttpClient {
    type Target = watchfire_http::HttpClient;
    fn deref(&self) -> &watchfire_http::HttpClient {
        &self.0
    }
}
