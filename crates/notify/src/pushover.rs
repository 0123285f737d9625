//! Pushover (upstream `notify/pushover`): `POST` to the message API with every parameter in
//! the query string (sorted by name, as Go's `url.Values.Encode` writes them), an empty
//! `text/plain` body, and upstream's limits: title 250, message 1024, URL 512 runes.

use std::time::Duration;

use watchfire_alerting::NotifyError;
use watchfire_config::alertmanager::receivers::{PUSHOVER_API_URL, PushoverConfig};

use crate::http::{HttpClient, truncate_runes};
use crate::integrations::{Ctx, secret_or_file, send_checked};

/// <https://pushover.net/api#limits>.
pub const MAX_TITLE_RUNES: usize = 250;
pub const MAX_MESSAGE_RUNES: usize = 1024;
pub const MAX_URL_RUNES: usize = 512;

/// Whole seconds of a duration, as Go's `int64(d.Seconds())`.
fn seconds(d: watchfire_config::alertmanager::common::GoDuration) -> i64 {
    d.as_nanos() / 1_000_000_000
}

pub(crate) async fn pushover(ctx: &Ctx<'_>, cfg: &PushoverConfig, client: &HttpClient) -> Result<(), NotifyError> {
    let r = |s: &str| ctx.render(s);
    let warn = |what: &str, max: usize| {
        tracing::warn!(receiver = %ctx.group.receiver, max_runes = max, "truncated Pushover {what}");
    };
    let raw_token = secret_or_file(ctx, &cfg.token, &cfg.token_file, "token")?;
    let raw_user = secret_or_file(ctx, &cfg.user_key, &cfg.user_key_file, "user_key")?;
    let token = r(&raw_token)?;
    let user = r(&raw_user)?;

    let mut params: Vec<(&str, String)> = vec![("token", token.clone()), ("user", user.clone())];
    let (title, cut) = truncate_runes(&r(&cfg.title)?, MAX_TITLE_RUNES);
    if cut {
        warn("title", MAX_TITLE_RUNES);
    }
    params.push(("title", title));
    let message = if cfg.html {
        params.push(("html", "1".into()));
        // Upstream renders the message with html/template in HTML mode.
        ctx.render_with(&cfg.message, &ctx.data.html_escaped())?
    } else {
        r(&cfg.message)?
    };
    if cfg.monospace {
        params.push(("monospace", "1".into()));
    }
    let (message, cut) = truncate_runes(&message, MAX_MESSAGE_RUNES);
    if cut {
        warn("message", MAX_MESSAGE_RUNES);
    }
    let mut message = message.trim().to_owned();
    if message.is_empty() {
        // Pushover refuses empty messages.
        message = "(no details)".into();
    }
    params.push(("message", message));
    let (url, cut) = truncate_runes(&r(&cfg.url)?, MAX_URL_RUNES);
    if cut {
        warn("URL", MAX_URL_RUNES);
    }
    params.push(("url", url));
    params.push(("url_title", r(&cfg.url_title)?));
    params.push(("priority", r(&cfg.priority)?));
    params.push(("retry", seconds(cfg.retry).to_string()));
    params.push(("expire", seconds(cfg.expire).to_string()));
    params.push(("device", r(&cfg.device)?));
    params.push(("sound", r(&cfg.sound)?));
    let ttl = seconds(cfg.ttl);
    if ttl > 0 {
        params.push(("ttl", ttl.to_string()));
    }
    params.sort_by_key(|(k, _)| *k);

    let base = cfg.api_url.as_ref().map_or(PUSHOVER_API_URL, |u| u.as_str());
    let mut url = url::Url::parse(base).map_err(|e| NotifyError::permanent(format!("pushover: api_url: {e}")))?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    url.set_query(Some(&query));
    // The query holds the token and user key: error messages must never show it.
    let secrets = [url.as_str(), token.as_str(), user.as_str()];
    let req = client
        .request(reqwest::Method::POST, url.as_str())?
        .header(reqwest::header::CONTENT_TYPE, "text/plain");
    send_checked(req, Duration::ZERO, "pushover", &[], &secrets).await?;
    Ok(())
}
