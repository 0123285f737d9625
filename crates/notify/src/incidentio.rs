//! incident.io (upstream `notify/incidentio`): the webhook message with `"version": "1"`,
//! posted to the alert source URL with `Authorization: Bearer <alert source token>` (or the
//! `http_config` authorization). A message over 512 KiB keeps only its first alert. Retries
//! on 5xx and 429.

use serde_json::Value as J;
use watchfire_alerting::NotifyError;
use watchfire_config::alertmanager::receivers::IncidentioConfig;
use watchfire_config::http::{Authorization, HttpClientConfig};

use crate::http::HttpClient;
use crate::integrations::{Ctx, post_json, read_secret_file, webhook_message};

/// The largest JSON payload incident.io accepts.
pub const MAX_PAYLOAD_BYTES: usize = 512 * 1024;

/// The HTTP client settings: an alert source token replaces any authentication in
/// `http_config` (upstream does this when it builds the notifier).
pub fn http_config(cfg: &IncidentioConfig) -> HttpClientConfig {
    let mut h = cfg.http_config.clone().unwrap_or_default();
    let inline = !cfg.alert_source_token.is_empty();
    if inline || !cfg.alert_source_token_file.is_empty() {
        h.basic_auth = None;
        h.bearer_token = None;
        h.bearer_token_file = None;
        h.authorization = Some(Authorization {
            kind: "Bearer".into(),
            credentials: inline.then(|| cfg.alert_source_token.clone()),
            credentials_file: (!inline).then(|| cfg.alert_source_token_file.clone()),
            credentials_ref: None,
        });
    }
    h
}

fn encoded_len(v: &J) -> usize {
    serde_json::to_vec(v).map_or(0, |b| b.len() + 1)
}

pub(crate) async fn incidentio(ctx: &Ctx<'_>, cfg: &IncidentioConfig, client: &HttpClient) -> Result<(), NotifyError> {
    // `ctx.data` holds the first `max_alerts` alerts.
    let truncated = ctx.group.alerts.len() as u64 - ctx.data.alerts.0.len() as u64;
    let mut msg = webhook_message(ctx.data, &ctx.group.group_key, truncated);
    msg["version"] = "1".into();
    let size = encoded_len(&msg);
    if size > MAX_PAYLOAD_BYTES {
        if let Some(alerts) = msg["alerts"].as_array_mut() {
            alerts.truncate(1);
        }
        let now = encoded_len(&msg);
        tracing::warn!(receiver = %ctx.group.receiver, original_size = size, final_size = now, max_size = MAX_PAYLOAD_BYTES, "truncated alert content due to incident.io payload size limit");
    }
    let url = match &cfg.url {
        Some(u) => u.as_str().to_owned(),
        None => read_secret_file(ctx.config_dir, &cfg.url_file, "url_file")?,
    };
    post_json(client, &url, &msg, cfg.timeout.to_std(), "incidentio", &[429], &[&url]).await?;
    Ok(())
}
