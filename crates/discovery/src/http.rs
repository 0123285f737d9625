//! `http_sd_configs`: groups fetched periodically from an HTTP endpoint (upstream
//! discovery/http). The response must be a 200 with a JSON content type; anything else is a
//! failure, counted in `prometheus_sd_http_failures_total`, that keeps the last good groups.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use regex::Regex;
use tracing::warn;
use watchfire_config::prometheus::HttpSdConfig;

use crate::client::HttpClient;
use crate::metrics::SdMetrics;
use crate::{BoxFuture, Error, GroupSender, Provider, TargetGroup};

/// The meta label holding the URL the groups came from.
pub const URL_LABEL: &str = "__meta_url";

static JSON_CONTENT_TYPE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^(?i:application/json(;\s*charset=("utf-8"|utf-8))?)$"#).expect("constant regex is valid")
});

/// Polls one URL.
#[derive(Debug)]
pub struct HttpProvider {
    url: String,
    refresh_interval: Duration,
    client: HttpClient,
    user_agent: String,
    job: String,
    metrics: Arc<SdMetrics>,
}

impl HttpProvider {
    /// A provider for `cfg` of job `job`; `dir` resolves relative credential files.
    pub fn new(
        cfg: &HttpSdConfig,
        dir: &std::path::Path,
        job: &str,
        user_agent: &str,
        metrics: Arc<SdMetrics>,
    ) -> Result<Self, Error> {
        let client = HttpClient::new(&cfg.http_client(), dir, &format!("http_sd_configs of job {job:?}"))?;
        Ok(HttpProvider {
            url: cfg.url.clone(),
            refresh_interval: cfg.refresh_interval.to_std().max(Duration::from_millis(10)),
            client,
            user_agent: user_agent.to_owned(),
            job: job.to_owned(),
            metrics,
        })
    }

    /// One fetch. Every failure is counted before it is returned.
    pub async fn refresh(&self) -> Result<Vec<TargetGroup>, String> {
        let start = Instant::now();
        let result = self.fetch().await;
        self.metrics
            .refresh_duration
            .observe(&["http", &self.job], start.elapsed().as_secs_f64());
        if result.is_err() {
            self.metrics.http_failures.inc();
            self.metrics
                .refresh_failures
                .with_label_values(&["http", &self.job])
                .inc();
        }
        result
    }

    async fn fetch(&self) -> Result<Vec<TargetGroup>, String> {
        let req = self
            .client
            .get(&self.url)?
            .header("User-Agent", &self.user_agent)
            .header("Accept", "application/json")
            .header(
                "X-Prometheus-Refresh-Interval-Seconds",
                self.refresh_interval.as_secs_f64().to_string(),
            )
            // Upstream sets no deadline; one refresh interval keeps a hung server from
            // stopping refreshes for good.
            .timeout(self.refresh_interval.max(Duration::from_secs(1)));
        let resp = req.send().await.map_err(|e| format!("Get {:?}: {e}", self.url))?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            return Err(format!("server returned HTTP status {status}"));
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        if !JSON_CONTENT_TYPE.is_match(content_type.trim()) {
            return Err(format!("unsupported content type {content_type:?}"));
        }
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        let written = TargetGroup::parse_json_list(&body)?;
        Ok(written
            .into_iter()
            .enumerate()
            .map(|(i, g)| g.into_group(format!("{}:{i}", self.url), (URL_LABEL, &self.url)))
            .collect())
    }
}

impl Provider for HttpProvider {
    fn run(self: Box<Self>, tx: GroupSender) -> BoxFuture<()> {
        Box::pin(async move {
            let mut last: Option<Vec<TargetGroup>> = None;
            loop {
                match self.refresh().await {
                    Ok(groups) => {
                        if last.as_ref() != Some(&groups) {
                            if tx.send(groups.clone()).await.is_err() {
                                return;
                            }
                            last = Some(groups);
                        }
                    }
                    Err(e) => warn!(job = %self.job, url = %self.url, err = %e, "unable to refresh target groups"),
                }
                tokio::select! {
                    () = tokio::time::sleep(self.refresh_interval) => {}
                    () = tx.closed() => return,
                }
            }
        })
    }
}
