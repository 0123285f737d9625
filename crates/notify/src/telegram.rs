//! Telegram (upstream `notify/telegram`, which sends through the telebot library): the Bot
//! API's `sendMessage`, `POST {api_url}/bot{token}/sendMessage` with a JSON object whose
//! values are all strings, as telebot writes them.
//!
//! Retries: upstream retries every failed send. Watchfire classifies the Bot API's answer the
//! way it does every other vendor's: transport errors, 5xx and 429 (waiting for
//! `parameters.retry_after`, capped) are retried; other errors (an unknown chat, a bad token,
//! HTML the Bot API cannot parse) are not, since retrying cannot fix them.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value as J};
use watchfire_alerting::{FailureReason, NotifyError};
use watchfire_config::alertmanager::receivers::TelegramConfig;

use crate::http::{self, HttpClient, truncate_runes};
use crate::integrations::{Ctx, MAX_RETRY_AFTER_WAIT, json_request, read_secret_file};

/// Telegram's message limit (upstream `maxMessageLenRunes`).
pub const MAX_MESSAGE_RUNES: usize = 4096;

/// What upstream sends instead of an HTML message that is too long (cutting HTML could leave
/// it unparsable). The tabs are upstream's: its Go raw string is indented.
pub const HTML_TOO_LONG: &str = "Alertmanager notification could not be sent: message length exceeds Telegram limits.\n\t\t\tPlease check the template used for producing the message content.";

/// The Bot API's answer.
#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    error_code: Option<u16>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    parameters: Option<J>,
}

/// A `*_file` read failure: upstream retries it (a secret volume may not be mounted yet).
fn retry_file_error(mut e: NotifyError) -> NotifyError {
    e.retryable = true;
    e
}

pub(crate) async fn telegram(ctx: &Ctx<'_>, cfg: &TelegramConfig, client: &HttpClient) -> Result<(), NotifyError> {
    let text = if cfg.parse_mode == "HTML" {
        // Upstream renders with html/template; values are escaped, markup is not.
        let text = ctx.render_with(&cfg.message, &ctx.data.html_escaped())?;
        if text.chars().count() > MAX_MESSAGE_RUNES {
            tracing::warn!(receiver = %ctx.group.receiver, max_runes = MAX_MESSAGE_RUNES, "Telegram message too long: sending a notice instead");
            HTML_TOO_LONG.to_owned()
        } else {
            text
        }
    } else {
        let (text, cut) = truncate_runes(&ctx.render(&cfg.message)?, MAX_MESSAGE_RUNES);
        if cut {
            tracing::warn!(receiver = %ctx.group.receiver, max_runes = MAX_MESSAGE_RUNES, "truncated Telegram message");
        }
        text
    };
    let token = if cfg.bot_token_file.is_empty() {
        cfg.bot_token.expose().to_owned()
    } else {
        read_secret_file(ctx.config_dir, &cfg.bot_token_file, "bot_token_file").map_err(retry_file_error)?
    };
    let chat_id = if cfg.chat_id_file.is_empty() {
        cfg.chat_id
    } else {
        let raw = read_secret_file(ctx.config_dir, &cfg.chat_id_file, "chat_id_file").map_err(retry_file_error)?;
        raw.parse::<i64>()
            .map_err(|e| NotifyError::retryable(format!("could not parse chat_id from {}: {e}", cfg.chat_id_file)))?
    };
    let base = cfg
        .api_url
        .as_ref()
        .map(|u| u.as_str().trim_end_matches('/').to_owned())
        .ok_or_else(|| NotifyError::permanent("telegram: no api_url configured"))?;
    let url = format!("{base}/bot{token}/sendMessage");

    // telebot's sendText with embedSendOptions: every value a string.
    let mut body = Map::new();
    body.insert("chat_id".into(), chat_id.to_string().into());
    body.insert("text".into(), text.into());
    body.insert("disable_web_page_preview".into(), "true".into());
    if cfg.disable_notifications {
        body.insert("disable_notification".into(), "true".into());
    }
    if !cfg.parse_mode.is_empty() {
        body.insert("parse_mode".into(), cfg.parse_mode.clone().into());
    }
    if cfg.message_thread_id != 0 {
        body.insert("message_thread_id".into(), cfg.message_thread_id.to_string().into());
    }
    let secrets = [url.as_str(), token.as_str()];
    let what = "telegram";
    let req = json_request(client, reqwest::Method::POST, &url, &J::Object(body), what)?;
    let resp = http::send(req, Duration::ZERO, what, &secrets).await?;
    let answer = match serde_json::from_str::<Answer>(&resp.body) {
        Ok(a) => a,
        Err(_) => {
            http::check(&resp, what, &[429], &secrets)?;
            return Err(NotifyError::retryable(format!(
                "{what}: unexpected answer (HTTP {}) from the Bot API",
                resp.status.as_u16()
            )));
        }
    };
    if answer.ok {
        return Ok(());
    }
    let code = answer.error_code.unwrap_or(resp.status.as_u16());
    let retryable = code == 429 || code >= 500;
    let reason = match code {
        500.. => FailureReason::ServerError,
        400..500 => FailureReason::ClientError,
        _ => FailureReason::Other,
    };
    let message = http::redact(&format!("{what}: {} ({code})", answer.description), &secrets);
    if code == 429
        && let Some(after) = answer
            .parameters
            .as_ref()
            .and_then(|p| p.get("retry_after"))
            .and_then(J::as_u64)
    {
        tokio::time::sleep(Duration::from_secs(after).min(MAX_RETRY_AFTER_WAIT)).await;
    }
    Err(NotifyError {
        message,
        retryable,
        reason,
    })
}
