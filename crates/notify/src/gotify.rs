//! Gotify (Watchfire's own; Alertmanager has no Gotify integration): `POST {url}/message`
//! with the application token in `X-Gotify-Key` and `{"title", "message", "priority",
//! "extras"}` (<https://gotify.net/api-docs#/message/createMessage>,
//! <https://gotify.net/docs/msgextras>). Retries on 5xx and 429, honouring `Retry-After`.

use serde_json::{Map, Value as J, json};
use watchfire_alerting::NotifyError;
use watchfire_config::alertmanager::receivers::GotifyConfig;

use crate::http::HttpClient;
use crate::integrations::{Ctx, json_request, render_deep, secret_or_file, send_checked, sensitive_header};

/// The message endpoint under a server's base URL (which may have a path, behind a proxy).
pub fn message_url(base: &url::Url) -> url::Url {
    let mut u = base.clone();
    let path = format!("{}/message", u.path().trim_end_matches('/'));
    u.set_path(&path);
    u
}

pub(crate) async fn gotify(ctx: &Ctx<'_>, cfg: &GotifyConfig, client: &HttpClient) -> Result<(), NotifyError> {
    let r = |s: &str| ctx.render(s);
    let base = cfg
        .url
        .as_ref()
        .ok_or_else(|| NotifyError::permanent("gotify: no url configured"))?;
    let url = message_url(base.as_url());
    let token = secret_or_file(ctx, &cfg.token, &cfg.token_file, "token")?;
    let message = match r(&cfg.message)?.trim() {
        // Gotify refuses an empty message.
        "" => "(no details)".to_owned(),
        m => m.to_owned(),
    };
    let mut body = Map::new();
    body.insert("title".into(), r(&cfg.title)?.into());
    body.insert("message".into(), message.into());
    let priority = r(&cfg.priority)?;
    let priority = priority.trim();
    if !priority.is_empty() {
        let p: i64 = priority
            .parse()
            .map_err(|_| NotifyError::permanent(format!("gotify: priority {priority:?} is not an integer")))?;
        body.insert("priority".into(), p.into());
    }
    let mut extras = Map::new();
    if cfg.markdown {
        extras.insert("client::display".into(), json!({"contentType": "text/markdown"}));
    }
    let click = r(&cfg.click)?;
    if !click.trim().is_empty() {
        extras.insert("client::notification".into(), json!({"click": {"url": click.trim()}}));
    }
    for (k, v) in &cfg.extras {
        extras.insert(k.clone(), render_deep(ctx, v)?);
    }
    if !extras.is_empty() {
        body.insert("extras".into(), J::Object(extras));
    }
    let req = json_request(client, reqwest::Method::POST, url.as_str(), &J::Object(body), "gotify")?
        .header("X-Gotify-Key", sensitive_header(&token, "gotify")?);
    send_checked(req, cfg.timeout.to_std(), "gotify", &[429], &[token.as_str()]).await?;
    Ok(())
}
