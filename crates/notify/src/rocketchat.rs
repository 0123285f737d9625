//! Rocket.Chat (upstream `notify/rocketchat`): `POST {api_url}api/v1/chat.postMessage` with
//! `X-Auth-Token` and `X-User-Id`, one attachment per message (title cut to 1024 runes). The
//! API may answer an error with a 200: `{"success": false, "error": ...}` fails for good, an
//! unreadable answer is retried.

use std::time::Duration;

use serde_json::{Map, Value as J, json};
use watchfire_alerting::{FailureReason, NotifyError};
use watchfire_config::alertmanager::receivers::RocketchatConfig;

use crate::http::{self, HttpClient, truncate_runes};
use crate::integrations::{Ctx, json_request, read_secret_file, send_checked, sensitive_header};

pub const MAX_TITLE_RUNES: usize = 1024;

fn token(
    ctx: &Ctx<'_>,
    inline: Option<&watchfire_config::Secret>,
    file: &str,
    name: &str,
) -> Result<String, NotifyError> {
    if !file.is_empty() {
        return read_secret_file(ctx.config_dir, file, &format!("{name}_file"));
    }
    inline
        .map(|s| s.expose().to_owned())
        .ok_or_else(|| NotifyError::permanent(format!("rocketchat: no {name} configured")))
}

/// Inserts `v` under `k` unless it is empty (Go's `omitempty`).
fn opt(m: &mut Map<String, J>, k: &str, v: String) {
    if !v.is_empty() {
        m.insert(k.into(), v.into());
    }
}

pub(crate) async fn rocketchat(ctx: &Ctx<'_>, cfg: &RocketchatConfig, client: &HttpClient) -> Result<(), NotifyError> {
    let r = |s: &str| ctx.render(s);
    let auth_token = token(ctx, cfg.token.as_ref(), &cfg.token_file, "token")?;
    let user_id = token(ctx, cfg.token_id.as_ref(), &cfg.token_id_file, "token_id")?;

    let (title, cut) = truncate_runes(&r(&cfg.title)?, MAX_TITLE_RUNES);
    if cut {
        tracing::warn!(receiver = %ctx.group.receiver, max_runes = MAX_TITLE_RUNES, "truncated Rocket.Chat title");
    }
    let mut att = Map::new();
    opt(&mut att, "title", title);
    opt(&mut att, "title_link", r(&cfg.title_link)?);
    opt(&mut att, "text", r(&cfg.text)?);
    opt(&mut att, "image_url", r(&cfg.image_url)?);
    opt(&mut att, "thumb_url", r(&cfg.thumb_url)?);
    opt(&mut att, "color", r(&cfg.color)?);
    if !cfg.fields.is_empty() {
        let mut fields = Vec::new();
        for f in &cfg.fields {
            let mut m = Map::new();
            m.insert("short".into(), f.short.unwrap_or(cfg.short_fields).into());
            opt(&mut m, "title", r(&f.title)?);
            opt(&mut m, "value", r(&f.value)?);
            fields.push(J::Object(m));
        }
        att.insert("fields".into(), J::Array(fields));
    }
    if !cfg.actions.is_empty() {
        let mut actions = Vec::new();
        for a in &cfg.actions {
            // Upstream sends buttons only, with their text, URL and message.
            let mut m = Map::new();
            m.insert("type".into(), "button".into());
            opt(&mut m, "text", r(&a.text)?);
            opt(&mut m, "url", r(&a.url)?);
            m.insert("is_webview".into(), false.into());
            opt(&mut m, "msg", r(&a.msg)?);
            m.insert("msg_in_chat_window".into(), false.into());
            actions.push(J::Object(m));
        }
        att.insert("actions".into(), J::Array(actions));
    }
    let channel = r(&cfg.channel)?;
    let mut body = Map::new();
    opt(&mut body, "channel", channel.clone());
    opt(&mut body, "emoji", r(&cfg.emoji)?);
    opt(&mut body, "avatar", r(&cfg.icon_url)?);
    body.insert("attachments".into(), json!([J::Object(att)]));

    let base = cfg
        .api_url
        .as_ref()
        .ok_or_else(|| NotifyError::permanent("rocketchat: no api_url configured"))?;
    let mut url = base.as_url().clone();
    let path = format!("{}/api/v1/chat.postMessage", url.path().trim_end_matches('/'));
    url.set_path(&path);
    let what = format!("rocketchat channel {channel:?}");
    let req = json_request(client, reqwest::Method::POST, url.as_str(), &J::Object(body), &what)?
        .header("X-Auth-Token", sensitive_header(&auth_token, &what)?)
        .header("X-User-Id", sensitive_header(&user_id, &what)?);
    let secrets = [auth_token.as_str(), user_id.as_str()];
    let resp = send_checked(req, Duration::ZERO, &what, &[], &secrets).await?;
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        success: bool,
        #[serde(default)]
        error: String,
    }
    let answer: Answer = serde_json::from_str(&resp.body).map_err(|e| NotifyError {
        message: http::redact(
            &format!("{what}: could not unmarshal JSON response {:?}: {e}", resp.body),
            &secrets,
        ),
        retryable: true,
        reason: FailureReason::Other,
    })?;
    if !answer.success {
        return Err(NotifyError {
            message: http::redact(
                &format!("{what}: error response from Rocketchat: {}", answer.error),
                &secrets,
            ),
            retryable: false,
            reason: FailureReason::ClientError,
        });
    }
    Ok(())
}
