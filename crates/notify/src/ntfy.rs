//! ntfy (Watchfire's own; Alertmanager has no ntfy integration): a JSON publish, `POST` to
//! the server's URL with `{"topic", "title", "message", "priority", "tags", "click", "icon",
//! "markdown"}` (<https://docs.ntfy.sh/publish/#publish-as-json>). An access token goes in
//! `Authorization: Bearer`; basic auth and other schemes come from `http_config`. Retries
//! on 5xx and 429 (ntfy's rate limiting), honouring `Retry-After`.

use serde_json::{Map, Value as J};
use watchfire_alerting::NotifyError;
use watchfire_config::alertmanager::receivers::{NTFY_URL, NtfyConfig};

use crate::http::{HttpClient, truncate_bytes};
use crate::integrations::{Ctx, json_request, secret_or_file, send_checked, sensitive_header};

/// ntfy's default `message-size-limit`: a longer message is turned into an attachment, so it
/// is cut here to stay readable in the notification.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// ntfy's priority from a number (1–5) or one of its names.
pub fn parse_priority(s: &str) -> Result<Option<u8>, String> {
    Ok(Some(match s.trim().to_ascii_lowercase().as_str() {
        "" => return Ok(None),
        "1" | "min" => 1,
        "2" | "low" => 2,
        "3" | "default" => 3,
        "4" | "high" => 4,
        "5" | "max" | "urgent" => 5,
        other => {
            return Err(format!(
                "invalid ntfy priority {other:?}: want 1-5, min, low, default, high or max"
            ));
        }
    }))
}

pub(crate) async fn ntfy(ctx: &Ctx<'_>, cfg: &NtfyConfig, client: &HttpClient) -> Result<(), NotifyError> {
    let r = |s: &str| ctx.render(s);
    let raw_topic = secret_or_file(ctx, &cfg.topic, &cfg.topic_file, "topic")?;
    let topic = r(&raw_topic)?.trim().to_owned();
    if topic.is_empty() {
        return Err(NotifyError::permanent("ntfy: topic is empty after templating"));
    }
    let (message, cut) = truncate_bytes(&r(&cfg.message)?, MAX_MESSAGE_BYTES);
    if cut {
        tracing::warn!(receiver = %ctx.group.receiver, max_bytes = MAX_MESSAGE_BYTES, "truncated ntfy message");
    }
    let message = match message.trim() {
        "" => "(no details)".to_owned(),
        m => m.to_owned(),
    };
    let mut body = Map::new();
    body.insert("topic".into(), topic.clone().into());
    body.insert("message".into(), message.into());
    let title = r(&cfg.title)?;
    if !title.is_empty() {
        body.insert("title".into(), title.into());
    }
    let priority = parse_priority(&r(&cfg.priority)?).map_err(|e| NotifyError::permanent(format!("ntfy: {e}")))?;
    if let Some(p) = priority {
        body.insert("priority".into(), p.into());
    }
    let mut tags = Vec::new();
    for t in &cfg.tags {
        // A template may render several tags, comma separated (ntfy's `X-Tags` form).
        tags.extend(
            r(t)?
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        );
    }
    if !tags.is_empty() {
        body.insert("tags".into(), tags.into());
    }
    for (key, value) in [("click", &cfg.click), ("icon", &cfg.icon)] {
        let v = r(value)?.trim().to_owned();
        if !v.is_empty() {
            body.insert(key.into(), v.into());
        }
    }
    if cfg.markdown {
        body.insert("markdown".into(), true.into());
    }
    let token = if cfg.access_token.is_empty() && cfg.access_token_file.is_empty() {
        None
    } else {
        Some(secret_or_file(
            ctx,
            &cfg.access_token,
            &cfg.access_token_file,
            "access_token",
        )?)
    };
    let url = cfg.url.as_ref().map_or(NTFY_URL, |u| u.as_str());
    let mut req = json_request(client, reqwest::Method::POST, url, &J::Object(body), "ntfy")?;
    if let Some(t) = &token {
        req = req.header(
            reqwest::header::AUTHORIZATION,
            sensitive_header(&format!("Bearer {t}"), "ntfy")?,
        );
    }
    let mut secrets = vec![topic.as_str()];
    secrets.extend(token.as_deref());
    send_checked(req, cfg.timeout.to_std(), "ntfy", &[429], &secrets).await?;
    Ok(())
}
