//! The HTTP integrations webhook, Slack, PagerDuty, Discord, Microsoft Teams and Opsgenie
//! (upstream `notify/webhook`, `notify/slack`, ...), and the helpers every HTTP integration
//! shares.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value as J, json};
use watchfire_alerting::{FailureReason, NotificationGroup, NotifyError};
use watchfire_config::alertmanager::receivers::{
    DiscordConfig, MsTeamsConfig, MsTeamsV2Config, OpsGenieConfig, PagerdutyConfig, SLACK_POST_MESSAGE_URL,
    SlackConfig, WebhookConfig,
};

use crate::http::{self, HttpClient, key_hash, truncate_runes};
use crate::template::{Data, Templates};

/// The longest a retryable failure waits for a `Retry-After` hint before reporting back to
/// the dispatcher (which then backs off on its own). Kept well under the dispatcher's
/// 10-second minimum flush deadline, so the wait never turns the failure into a deadline
/// error.
pub const MAX_RETRY_AFTER_WAIT: Duration = Duration::from_secs(5);

/// What every integration renders with.
pub(crate) struct Ctx<'a> {
    pub templates: &'a Templates,
    pub data: &'a Data,
    pub group: &'a NotificationGroup,
    pub config_dir: &'a Path,
}

impl Ctx<'_> {
    /// Renders a config field; a template error fails the notification for good.
    pub fn render(&self, text: &str) -> Result<String, NotifyError> {
        self.render_with(text, self.data)
    }

    /// Renders a config field with other data (the HTML-escaped copy, for instance).
    pub fn render_with(&self, text: &str, data: &Data) -> Result<String, NotifyError> {
        self.templates
            .render(text, data)
            .map_err(|e| NotifyError::permanent(format!("template: {e}")))
    }
}

/// Reads a `*_file` secret (trimmed).
pub(crate) fn read_secret_file(dir: &Path, file: &str, what: &str) -> Result<String, NotifyError> {
    let p = http::resolve(dir, file);
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_owned())
        .map_err(|e| NotifyError::permanent(format!("reading {what} from {}: {e}", p.display())))
}

/// POSTs JSON and classifies the answer. A retryable answer with `Retry-After` waits for it
/// (at most [`MAX_RETRY_AFTER_WAIT`]) so the next attempt honours the hint.
pub(crate) async fn post_json(
    client: &HttpClient,
    url: &str,
    body: &J,
    timeout: Duration,
    what: &str,
    extra_retry: &[u16],
    secrets: &[&str],
) -> Result<http::Response, NotifyError> {
    let req = json_request(client, reqwest::Method::POST, url, body, what)?;
    send_checked(req, timeout, what, extra_retry, secrets).await
}

/// A request with a JSON body (newline-terminated, as Go's `json.Encoder` writes it).
pub(crate) fn json_request(
    client: &HttpClient,
    method: reqwest::Method,
    url: &str,
    body: &J,
    what: &str,
) -> Result<reqwest::RequestBuilder, NotifyError> {
    let mut text = serde_json::to_string(body).map_err(|e| NotifyError::permanent(format!("{what}: {e}")))?;
    text.push('\n');
    Ok(client
        .request(method, url)?
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(text))
}

/// Sends `req` and classifies the answer as [`post_json`] does.
pub(crate) async fn send_checked(
    req: reqwest::RequestBuilder,
    timeout: Duration,
    what: &str,
    extra_retry: &[u16],
    secrets: &[&str],
) -> Result<http::Response, NotifyError> {
    let resp = http::send(req, timeout, what, secrets).await?;
    if let Err(e) = http::check(&resp, what, extra_retry, secrets) {
        if e.retryable
            && let Some(after) = http::retry_after(&resp.headers)
        {
            tokio::time::sleep(after.min(MAX_RETRY_AFTER_WAIT)).await;
        }
        return Err(e);
    }
    Ok(resp)
}

/// A header value that holds a secret (never printed by the HTTP stack's debug output).
pub(crate) fn sensitive_header(value: &str, what: &str) -> Result<reqwest::header::HeaderValue, NotifyError> {
    let mut v = reqwest::header::HeaderValue::from_str(value)
        .map_err(|_| NotifyError::permanent(format!("{what}: invalid characters in a credential")))?;
    v.set_sensitive(true);
    Ok(v)
}

/// A secret given inline or in a file (trimmed); `name` is the inline key, `name_file` the
/// file key.
pub(crate) fn secret_or_file(
    ctx: &Ctx<'_>,
    inline: &watchfire_config::Secret,
    file: &str,
    name: &str,
) -> Result<String, NotifyError> {
    if !inline.is_empty() {
        Ok(inline.expose().to_owned())
    } else if !file.is_empty() {
        read_secret_file(ctx.config_dir, file, &format!("{name}_file"))
    } else {
        Err(NotifyError::permanent(format!("no {name} configured")))
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook

/// Renders the template strings of a JSON value (upstream `DeepCopyWithTemplate`): strings are
/// rendered and, if the result is a JSON object or array, embedded as structure.
pub(crate) fn render_deep(ctx: &Ctx<'_>, v: &J) -> Result<J, NotifyError> {
    Ok(match v {
        J::String(s) => {
            let out = ctx.render(s)?;
            let t = out.trim_start();
            if t.starts_with('{') || t.starts_with('[') {
                serde_json::from_str(&out).unwrap_or(J::String(out))
            } else {
                J::String(out)
            }
        }
        J::Array(a) => J::Array(a.iter().map(|x| render_deep(ctx, x)).collect::<Result<_, _>>()?),
        J::Object(m) => J::Object(
            m.iter()
                .map(|(k, x)| Ok((ctx.render(k)?, render_deep(ctx, x)?)))
                .collect::<Result<_, NotifyError>>()?,
        ),
        other => other.clone(),
    })
}

/// The webhook message (version 4) of a notification: the template data, `version`,
/// `groupKey` and `truncatedAlerts`.
pub fn webhook_message(data: &Data, group_key: &str, truncated: u64) -> J {
    let mut m = data.to_json();
    m.insert("version".into(), "4".into());
    m.insert("groupKey".into(), group_key.into());
    m.insert("truncatedAlerts".into(), truncated.into());
    J::Object(m)
}

pub(crate) async fn webhook(ctx: &Ctx<'_>, cfg: &WebhookConfig, client: &HttpClient) -> Result<(), NotifyError> {
    let truncated = ctx.group.alerts.len() as u64 - ctx.data.alerts.0.len() as u64;
    let body = match &cfg.payload {
        Some(p) => render_deep(ctx, p)?,
        None => webhook_message(ctx.data, &ctx.group.group_key, truncated),
    };
    let raw = if cfg.url.is_empty() {
        read_secret_file(ctx.config_dir, &cfg.url_file, "url_file")?
    } else {
        cfg.url.expose().to_owned()
    };
    let url = ctx.render(&raw).map_err(|e| {
        NotifyError::permanent(format!(
            "failed to template webhook URL: {}",
            http::redact(&e.message, &[&raw])
        ))
    })?;
    if url.is_empty() {
        return Err(NotifyError::permanent("webhook URL is empty after templating"));
    }
    post_json(client, &url, &body, cfg.timeout.to_std(), "webhook", &[], &[&url]).await?;
    Ok(())
}

/// Upstream `truncateAlerts`: the first `max` alerts (0 = all).
pub(crate) fn max_alerts(group: &NotificationGroup, max: u64) -> NotificationGroup {
    let mut g = group.clone();
    if max != 0 && g.alerts.len() as u64 > max {
        g.alerts.truncate(max as usize);
    }
    g
}

// ---------------------------------------------------------------------------------------------
// Slack

const SLACK_MAX_TITLE_RUNES: usize = 1024;

pub(crate) async fn slack(ctx: &Ctx<'_>, cfg: &SlackConfig, client: &HttpClient) -> Result<(), NotifyError> {
    let r = |s: &str| ctx.render(s);
    let (title, cut) = truncate_runes(&r(&cfg.title)?, SLACK_MAX_TITLE_RUNES);
    if cut {
        tracing::warn!(receiver = %ctx.group.receiver, max_runes = SLACK_MAX_TITLE_RUNES, "truncated Slack title");
    }
    let mrkdwn_in: Vec<String> = if cfg.mrkdwn_in.is_empty() {
        vec!["fallback".into(), "pretext".into(), "text".into()]
    } else {
        cfg.mrkdwn_in.clone()
    };
    let mut att = serde_json::Map::new();
    let opt = |m: &mut serde_json::Map<String, J>, k: &str, v: String| {
        if !v.is_empty() {
            m.insert(k.into(), v.into());
        }
    };
    opt(&mut att, "title", title);
    opt(&mut att, "title_link", r(&cfg.title_link)?);
    opt(&mut att, "pretext", r(&cfg.pretext)?);
    att.insert("text".into(), r(&cfg.text)?.into());
    att.insert("fallback".into(), r(&cfg.fallback)?.into());
    att.insert("callback_id".into(), r(&cfg.callback_id)?.into());
    if !cfg.fields.is_empty() {
        let mut fields = Vec::new();
        for f in &cfg.fields {
            fields.push(json!({
                "title": r(&f.title)?,
                "value": r(&f.value)?,
                "short": f.short.unwrap_or(cfg.short_fields),
            }));
        }
        att.insert("fields".into(), J::Array(fields));
    }
    if !cfg.actions.is_empty() {
        let mut actions = Vec::new();
        for a in &cfg.actions {
            let mut m = serde_json::Map::new();
            opt(&mut m, "type", r(&a.r#type)?);
            opt(&mut m, "text", r(&a.text)?);
            opt(&mut m, "url", r(&a.url)?);
            opt(&mut m, "style", r(&a.style)?);
            opt(&mut m, "name", r(&a.name)?);
            opt(&mut m, "value", r(&a.value)?);
            if let Some(c) = &a.confirm {
                let mut cm = serde_json::Map::new();
                opt(&mut cm, "title", r(&c.title)?);
                cm.insert("text".into(), r(&c.text)?.into());
                opt(&mut cm, "ok_text", r(&c.ok_text)?);
                opt(&mut cm, "dismiss_text", r(&c.dismiss_text)?);
                m.insert("confirm".into(), J::Object(cm));
            }
            actions.push(J::Object(m));
        }
        att.insert("actions".into(), J::Array(actions));
    }
    opt(&mut att, "image_url", r(&cfg.image_url)?);
    opt(&mut att, "thumb_url", r(&cfg.thumb_url)?);
    att.insert("footer".into(), r(&cfg.footer)?.into());
    opt(&mut att, "color", r(&cfg.color)?);
    att.insert("mrkdwn_in".into(), mrkdwn_in.into());

    let mut req = serde_json::Map::new();
    let channel = r(&cfg.channel)?;
    opt(&mut req, "channel", channel.clone());
    opt(&mut req, "username", r(&cfg.username)?);
    opt(&mut req, "icon_emoji", r(&cfg.icon_emoji)?);
    opt(&mut req, "icon_url", r(&cfg.icon_url)?);
    if cfg.link_names {
        req.insert("link_names".into(), true.into());
    }
    opt(&mut req, "text", r(&cfg.message_text)?);
    req.insert("attachments".into(), J::Array(vec![J::Object(att)]));

    // A bot/app token posts to chat.postMessage with a bearer token; else the webhook URL.
    let token = if !cfg.app_token.is_empty() {
        Some(cfg.app_token.expose().to_owned())
    } else if !cfg.app_token_file.is_empty() {
        Some(read_secret_file(ctx.config_dir, &cfg.app_token_file, "app_token_file")?)
    } else {
        None
    };
    let url = match (&token, &cfg.api_url) {
        (Some(_), _) => cfg
            .app_url
            .as_ref()
            .map_or(SLACK_POST_MESSAGE_URL.to_owned(), |u| u.as_str().to_owned()),
        (None, Some(u)) => u.expose().to_owned(),
        (None, None) if !cfg.api_url_file.is_empty() => {
            read_secret_file(ctx.config_dir, &cfg.api_url_file, "api_url_file")?
        }
        (None, None) => return Err(NotifyError::permanent("slack: no api_url or app_token configured")),
    };
    let secrets: Vec<&str> = [Some(url.as_str()), token.as_deref()].into_iter().flatten().collect();
    let body = J::Object(req);
    let mut text = serde_json::to_string(&body).map_err(|e| NotifyError::permanent(e.to_string()))?;
    text.push('\n');
    let mut builder = client
        .request(reqwest::Method::POST, &url)?
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if let Some(t) = &token {
        let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {t}"))
            .map_err(|_| NotifyError::permanent("slack: invalid app token"))?;
        v.set_sensitive(true);
        builder = builder.header(reqwest::header::AUTHORIZATION, v);
    }
    let what = format!("slack channel {channel:?}");
    let resp = http::send(builder.body(text), cfg.timeout.to_std(), &what, &secrets).await?;
    if let Err(e) = http::check(&resp, &what, &[], &secrets) {
        if e.retryable
            && let Some(after) = http::retry_after(&resp.headers)
        {
            tokio::time::sleep(after.min(MAX_RETRY_AFTER_WAIT)).await;
        }
        return Err(e);
    }
    // Webhooks answer the text `ok`; the API answers JSON with `ok`.
    let is_json = resp
        .headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let client_err = |m: String| NotifyError {
        message: http::redact(&m, &secrets),
        retryable: false,
        reason: FailureReason::ClientError,
    };
    if is_json {
        let v: J = serde_json::from_str(&resp.body).map_err(|e| NotifyError {
            message: format!("{what}: could not unmarshal JSON response {:?}: {e}", resp.body),
            retryable: true,
            reason: FailureReason::ClientError,
        })?;
        if v.get("ok").and_then(J::as_bool) != Some(true) {
            let err = v.get("error").and_then(J::as_str).unwrap_or_default();
            return Err(client_err(format!("{what}: error response from Slack: {err}")));
        }
    } else if resp.body != "ok" {
        return Err(client_err(format!(
            "{what}: received an error response from Slack: {}",
            resp.body
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// PagerDuty

const PD_MAX_SUMMARY_RUNES: usize = 1024;
const PD_MAX_EVENT_BYTES: usize = 512_000;
/// The Events API v1 endpoint (for `service_key`).
pub const PAGERDUTY_V1_URL: &str = "https://events.pagerduty.com/generic/2010-04-15/create_event.json";

pub(crate) async fn pagerduty(ctx: &Ctx<'_>, cfg: &PagerdutyConfig, client: &HttpClient) -> Result<(), NotifyError> {
    let r = |s: &str| ctx.render(s);
    let resolved = ctx.data.status == "resolved";
    let key = key_hash(&ctx.group.group_key);
    let mut details = serde_json::Map::new();
    for (k, v) in &cfg.details {
        details.insert(k.clone(), render_deep(ctx, v)?);
    }
    let v1 = !cfg.service_key.is_empty() || !cfg.service_key_file.is_empty();
    let (summary, cut) = truncate_runes(&r(&cfg.description)?, PD_MAX_SUMMARY_RUNES);
    if cut {
        tracing::warn!(receiver = %ctx.group.receiver, max_runes = PD_MAX_SUMMARY_RUNES, "truncated PagerDuty summary");
    }
    let mut msg;
    let secret_key;
    if v1 {
        secret_key = if cfg.service_key.is_empty() {
            read_secret_file(ctx.config_dir, &cfg.service_key_file, "service_key_file")?
        } else {
            cfg.service_key.expose().to_owned()
        };
        let service_key = r(&secret_key)?;
        if service_key.is_empty() {
            return Err(NotifyError::permanent("service key cannot be empty"));
        }
        msg = json!({
            "service_key": service_key,
            "incident_key": key,
            "event_type": if resolved { "resolve" } else { "trigger" },
            "description": summary,
            "details": details,
        });
        if !resolved {
            msg["client"] = r(&cfg.client)?.into();
            msg["client_url"] = r(&cfg.client_url)?.into();
        }
    } else {
        secret_key = if cfg.routing_key.is_empty() {
            read_secret_file(ctx.config_dir, &cfg.routing_key_file, "routing_key_file")?
        } else {
            cfg.routing_key.expose().to_owned()
        };
        let routing_key = r(&secret_key)?;
        if routing_key.is_empty() {
            return Err(NotifyError::permanent("routing key cannot be empty"));
        }
        let severity = if cfg.severity.is_empty() {
            "error".to_owned()
        } else {
            r(&cfg.severity)?
        };
        let source = if cfg.source.is_empty() {
            r(&cfg.client)?
        } else {
            r(&cfg.source)?
        };
        let mut payload = serde_json::Map::new();
        payload.insert("summary".into(), summary.into());
        payload.insert("source".into(), source.into());
        payload.insert("severity".into(), severity.into());
        for (k, v) in [
            ("class", &cfg.class),
            ("component", &cfg.component),
            ("group", &cfg.group),
        ] {
            let v = r(v)?;
            if !v.is_empty() {
                payload.insert(k.into(), v.into());
            }
        }
        if !details.is_empty() {
            payload.insert("custom_details".into(), J::Object(details));
        }
        msg = json!({
            "routing_key": routing_key,
            "dedup_key": key,
            "event_action": if resolved { "resolve" } else { "trigger" },
            "payload": payload,
        });
        for (k, v) in [("client", r(&cfg.client)?), ("client_url", r(&cfg.client_url)?)] {
            if !v.is_empty() {
                msg[k] = v.into();
            }
        }
        let mut images = Vec::new();
        for i in &cfg.images {
            let src = r(&i.src)?;
            if !src.is_empty() {
                images.push(json!({"src": src, "alt": r(&i.alt)?, "href": r(&i.href)?}));
            }
        }
        if !images.is_empty() {
            msg["images"] = J::Array(images);
        }
        let mut links = Vec::new();
        for l in &cfg.links {
            let href = r(&l.href)?;
            if !href.is_empty() {
                links.push(json!({"href": href, "text": r(&l.text)?}));
            }
        }
        if !links.is_empty() {
            msg["links"] = J::Array(links);
        }
    }
    let size = serde_json::to_vec(&msg).map_or(0, |b| b.len() + 1);
    if size > PD_MAX_EVENT_BYTES {
        let note = json!({"error": "Custom details have been removed because the original event exceeds the maximum size of 512kB"});
        if v1 {
            msg["details"] = note;
        } else {
            msg["payload"]["custom_details"] = note;
        }
        tracing::warn!(receiver = %ctx.group.receiver, size, limit = PD_MAX_EVENT_BYTES, "truncated PagerDuty details");
    }
    let url = match (&cfg.url, v1) {
        (_, true) => PAGERDUTY_V1_URL.to_owned(),
        (Some(u), false) => u.as_str().to_owned(),
        (None, false) => return Err(NotifyError::permanent("pagerduty: no url configured")),
    };
    // v1 retries on 403 as well, v2 on 429.
    let extra: &[u16] = if v1 { &[403] } else { &[429] };
    post_json(
        client,
        &url,
        &msg,
        cfg.timeout.to_std(),
        "pagerduty",
        extra,
        &[secret_key.as_str()],
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Discord and Microsoft Teams (Workflows)

fn secret_url(
    ctx: &Ctx<'_>,
    url: Option<&watchfire_config::alertmanager::common::SecretUrl>,
    file: &str,
    what: &str,
) -> Result<String, NotifyError> {
    match url {
        Some(u) if !u.expose().is_empty() => Ok(u.expose().to_owned()),
        _ if !file.is_empty() => read_secret_file(ctx.config_dir, file, what),
        _ => Err(NotifyError::permanent(format!("no {what} configured"))),
    }
}

const DISCORD_MAX_TITLE_RUNES: usize = 256;
const DISCORD_MAX_DESCRIPTION_RUNES: usize = 4096;
const DISCORD_MAX_CONTENT_RUNES: usize = 2000;

pub(crate) async fn discord(ctx: &Ctx<'_>, cfg: &DiscordConfig, client: &HttpClient) -> Result<(), NotifyError> {
    let (title, _) = truncate_runes(&ctx.render(&cfg.title)?, DISCORD_MAX_TITLE_RUNES);
    let (description, _) = truncate_runes(&ctx.render(&cfg.message)?, DISCORD_MAX_DESCRIPTION_RUNES);
    let (content, _) = truncate_runes(&ctx.render(&cfg.content)?, DISCORD_MAX_CONTENT_RUNES);
    let color = if ctx.data.status == "firing" {
        0x992D22
    } else {
        0x2ECC71
    };
    let mut body = json!({
        "content": content,
        "embeds": [{"title": title, "description": description, "color": color}],
    });
    if !cfg.username.is_empty() {
        body["username"] = cfg.username.clone().into();
    }
    if !cfg.avatar_url.is_empty() && url::Url::parse(&cfg.avatar_url).is_ok() {
        body["avatar_url"] = cfg.avatar_url.clone().into();
    }
    let url = secret_url(ctx, cfg.webhook_url.as_ref(), &cfg.webhook_url_file, "webhook_url")?;
    post_json(client, &url, &body, Duration::ZERO, "discord", &[], &[&url]).await?;
    Ok(())
}

/// Microsoft Teams through a legacy Office 365 connector (upstream `notify/msteams`): a
/// MessageCard, red when firing and green when resolved.
pub(crate) async fn msteams(ctx: &Ctx<'_>, cfg: &MsTeamsConfig, client: &HttpClient) -> Result<(), NotifyError> {
    let body = json!({
        "@context": "http://schema.org/extensions",
        "type": "MessageCard",
        "title": ctx.render(&cfg.title)?,
        "summary": ctx.render(&cfg.summary)?,
        "text": ctx.render(&cfg.text)?,
        "themeColor": if ctx.data.status == "firing" { "8C1A1A" } else { "2DC72D" },
    });
    let url = secret_url(ctx, cfg.webhook_url.as_ref(), &cfg.webhook_url_file, "webhook_url")?;
    post_json(client, &url, &body, Duration::ZERO, "msteams", &[], &[&url]).await?;
    Ok(())
}

pub(crate) async fn msteamsv2(ctx: &Ctx<'_>, cfg: &MsTeamsV2Config, client: &HttpClient) -> Result<(), NotifyError> {
    let title = ctx.render(&cfg.title)?;
    let text = ctx.render(&cfg.text)?;
    let color = if ctx.data.status == "firing" {
        "Attention"
    } else {
        "Good"
    };
    let body = json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.2",
                "body": [
                    {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": true, "style": "heading", "color": color},
                    {"type": "TextBlock", "text": text, "wrap": true},
                ],
                "msteams": {"width": "full"},
            },
        }],
    });
    let url = secret_url(ctx, cfg.webhook_url.as_ref(), &cfg.webhook_url_file, "webhook_url")?;
    post_json(client, &url, &body, Duration::ZERO, "msteamsv2", &[], &[&url]).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Opsgenie

const OPSGENIE_MAX_MESSAGE_RUNES: usize = 130;

/// Upstream `safeSplit`: comma-separated values, trimmed, empties dropped.
fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) async fn opsgenie(ctx: &Ctx<'_>, cfg: &OpsGenieConfig, client: &HttpClient) -> Result<(), NotifyError> {
    let r = |s: &str| ctx.render(s);
    let alias = key_hash(&ctx.group.group_key);
    let raw_key = if cfg.api_key.is_empty() {
        read_secret_file(ctx.config_dir, &cfg.api_key_file, "api_key_file")?
    } else {
        cfg.api_key.expose().to_owned()
    };
    let api_key = r(&raw_key)?;
    let base = cfg
        .api_url
        .as_ref()
        .map(|u| u.as_str().to_owned())
        .ok_or_else(|| NotifyError::permanent("opsgenie: no api_url configured"))?;
    let base = if base.ends_with('/') { base } else { format!("{base}/") };
    let mut requests: Vec<(reqwest::Method, String, J)> = Vec::new();
    if ctx.data.status == "resolved" {
        requests.push((
            reqwest::Method::POST,
            format!("{base}v2/alerts/{alias}/close?identifierType=alias"),
            json!({"source": r(&cfg.source)?}),
        ));
    } else {
        let (message, _) = truncate_runes(&r(&cfg.message)?, OPSGENIE_MAX_MESSAGE_RUNES);
        let mut details: serde_json::Map<String, J> = ctx
            .data
            .common_labels
            .0
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        for (k, v) in &cfg.details {
            details.insert(k.clone(), r(v)?.into());
        }
        let mut responders = Vec::new();
        for x in &cfg.responders {
            let (id, name, username, kind) = (r(&x.id)?, r(&x.name)?, r(&x.username)?, r(&x.r#type)?);
            if id.is_empty() && name.is_empty() && username.is_empty() && kind.is_empty() {
                continue;
            }
            if kind == "teams" {
                for team in split_list(&name) {
                    responders.push(json!({"name": team, "type": "team"}));
                }
                continue;
            }
            let mut m = serde_json::Map::new();
            for (k, v) in [("id", id), ("name", name), ("username", username)] {
                if !v.is_empty() {
                    m.insert(k.into(), v.into());
                }
            }
            m.insert("type".into(), kind.into());
            responders.push(J::Object(m));
        }
        let description = r(&cfg.description)?;
        let mut msg = json!({
            "alias": alias,
            "message": message,
            "details": details,
            "source": r(&cfg.source)?,
        });
        for (k, v) in [
            ("description", description.clone()),
            ("note", r(&cfg.note)?),
            ("priority", r(&cfg.priority)?),
            ("entity", r(&cfg.entity)?),
        ] {
            if !v.is_empty() {
                msg[k] = v.into();
            }
        }
        if !responders.is_empty() {
            msg["responders"] = J::Array(responders);
        }
        for (k, v) in [
            ("tags", split_list(&r(&cfg.tags)?)),
            ("actions", split_list(&r(&cfg.actions)?)),
        ] {
            if !v.is_empty() {
                msg[k] = v.into();
            }
        }
        requests.push((reqwest::Method::POST, format!("{base}v2/alerts"), msg.clone()));
        if cfg.update_alerts {
            requests.push((
                reqwest::Method::PUT,
                format!("{base}v2/alerts/{alias}/message?identifierType=alias"),
                json!({"message": msg["message"]}),
            ));
            requests.push((
                reqwest::Method::PUT,
                format!("{base}v2/alerts/{alias}/description?identifierType=alias"),
                json!({"description": description}),
            ));
        }
    }
    let secrets = [api_key.as_str()];
    for (method, url, body) in requests {
        let mut text = serde_json::to_string(&body).map_err(|e| NotifyError::permanent(e.to_string()))?;
        text.push('\n');
        let mut auth = reqwest::header::HeaderValue::from_str(&format!("GenieKey {api_key}"))
            .map_err(|_| NotifyError::permanent("opsgenie: invalid api key"))?;
        auth.set_sensitive(true);
        let req = client
            .request(method, &url)?
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::AUTHORIZATION, auth)
            .body(text);
        let resp = http::send(req, Duration::ZERO, "opsgenie", &secrets).await?;
        if let Err(e) = http::check(&resp, "opsgenie", &[429], &secrets) {
            if e.retryable
                && let Some(after) = http::retry_after(&resp.headers)
            {
                tokio::time::sleep(after.min(MAX_RETRY_AFTER_WAIT)).await;
            }
            return Err(e);
        }
    }
    Ok(())
}
