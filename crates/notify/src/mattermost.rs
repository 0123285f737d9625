//! Mattermost (upstream `notify/mattermost`): an incoming webhook, `POST` with Slack-like
//! attachments. Without `attachments`, the top-level fields form the one attachment (and the
//! text goes in it); with them, each configured attachment is sent and the text is the
//! message's own. A top-level text is cut to 16383 runes. `priority` is normalised as
//! upstream: unknown values become `standard`, `requested_ack` needs a non-standard priority
//! and `persistent_notifications` an urgent one.

use std::time::Duration;

use serde_json::{Map, Value as J};
use watchfire_alerting::NotifyError;
use watchfire_config::alertmanager::receivers::{MattermostConfig, MattermostField};

use crate::http::{HttpClient, truncate_runes};
use crate::integrations::{Ctx, post_json, read_secret_file};

/// <https://developers.mattermost.com/integrate/webhooks/incoming/#tips-and-best-practices>.
pub const MAX_TEXT_RUNES: usize = 16383;

fn opt(m: &mut Map<String, J>, k: &str, v: String) {
    if !v.is_empty() {
        m.insert(k.into(), v.into());
    }
}

fn fields(ctx: &Ctx<'_>, list: &[MattermostField]) -> Result<Option<J>, NotifyError> {
    if list.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for f in list {
        let mut m = Map::new();
        opt(&mut m, "title", ctx.render(&f.title)?);
        opt(&mut m, "value", ctx.render(&f.value)?);
        if let Some(s) = f.short {
            m.insert("short".into(), s.into());
        }
        out.push(J::Object(m));
    }
    Ok(Some(J::Array(out)))
}

/// The attachment fields shared by the top level and `attachments[]`, in upstream's order.
struct Parts<'a> {
    fallback: &'a str,
    color: &'a str,
    pretext: &'a str,
    author_name: &'a str,
    author_link: &'a str,
    author_icon: &'a str,
    title: &'a str,
    title_link: &'a str,
    fields: &'a [MattermostField],
    thumb_url: &'a str,
    footer: &'a str,
    footer_icon: &'a str,
    image_url: &'a str,
}

fn attachment(ctx: &Ctx<'_>, p: &Parts<'_>, text: String) -> Result<J, NotifyError> {
    let r = |s: &str| ctx.render(s);
    let mut m = Map::new();
    opt(&mut m, "fallback", r(p.fallback)?);
    opt(&mut m, "color", r(p.color)?);
    opt(&mut m, "pretext", r(p.pretext)?);
    opt(&mut m, "text", text);
    opt(&mut m, "author_name", r(p.author_name)?);
    opt(&mut m, "author_link", r(p.author_link)?);
    opt(&mut m, "author_icon", r(p.author_icon)?);
    opt(&mut m, "title", r(p.title)?);
    opt(&mut m, "title_link", r(p.title_link)?);
    if let Some(f) = fields(ctx, p.fields)? {
        m.insert("fields".into(), f);
    }
    opt(&mut m, "thumb_url", r(p.thumb_url)?);
    opt(&mut m, "footer", r(p.footer)?);
    opt(&mut m, "footer_icon", r(p.footer_icon)?);
    opt(&mut m, "image_url", r(p.image_url)?);
    Ok(J::Object(m))
}

pub(crate) async fn mattermost(ctx: &Ctx<'_>, cfg: &MattermostConfig, client: &HttpClient) -> Result<(), NotifyError> {
    let r = |s: &str| ctx.render(s);
    let url = match &cfg.webhook_url {
        Some(u) if !u.expose().is_empty() => u.expose().to_owned(),
        _ if !cfg.webhook_url_file.is_empty() => {
            read_secret_file(ctx.config_dir, &cfg.webhook_url_file, "webhook_url_file")?
        }
        _ => String::new(),
    };
    if url.is_empty() {
        return Err(NotifyError::permanent("mattermost: webhook url missing"));
    }
    let text = r(&cfg.text)?;
    let channel = r(&cfg.channel)?;
    let mut body = Map::new();
    let mut attachments = Vec::new();
    let mut top_text = String::new();
    if cfg.attachments.is_empty() {
        let p = Parts {
            fallback: &cfg.fallback,
            color: &cfg.color,
            pretext: &cfg.pretext,
            author_name: &cfg.author_name,
            author_link: &cfg.author_link,
            author_icon: &cfg.author_icon,
            title: &cfg.title,
            title_link: &cfg.title_link,
            fields: &cfg.fields,
            thumb_url: &cfg.thumb_url,
            footer: &cfg.footer,
            footer_icon: &cfg.footer_icon,
            image_url: &cfg.image_url,
        };
        attachments.push(attachment(ctx, &p, text)?);
    } else {
        for a in &cfg.attachments {
            let p = Parts {
                fallback: &a.fallback,
                color: &a.color,
                pretext: &a.pretext,
                author_name: &a.author_name,
                author_link: &a.author_link,
                author_icon: &a.author_icon,
                title: &a.title,
                title_link: &a.title_link,
                fields: &a.fields,
                thumb_url: &a.thumb_url,
                footer: &a.footer,
                footer_icon: &a.footer_icon,
                image_url: &a.image_url,
            };
            attachments.push(attachment(ctx, &p, r(&a.text)?)?);
        }
        top_text = text;
    }
    let (top_text, cut) = truncate_runes(&top_text, MAX_TEXT_RUNES);
    if cut {
        tracing::warn!(receiver = %ctx.group.receiver, max_runes = MAX_TEXT_RUNES, "truncated Mattermost text");
    }
    opt(&mut body, "text", top_text);
    opt(&mut body, "channel", channel.clone());
    opt(&mut body, "username", r(&cfg.username)?);
    opt(&mut body, "icon_url", r(&cfg.icon_url)?);
    opt(&mut body, "icon_emoji", r(&cfg.icon_emoji)?);
    body.insert("attachments".into(), J::Array(attachments));
    opt(&mut body, "type", r(&cfg.r#type)?);
    if let Some(p) = cfg.props.as_ref().filter(|p| !p.card.is_empty()) {
        let mut m = Map::new();
        opt(&mut m, "card", r(&p.card)?);
        body.insert("props".into(), J::Object(m));
    }
    if let Some(p) = cfg.priority.as_ref().filter(|p| !p.priority.is_empty()) {
        let mut priority = r(&p.priority)?.to_lowercase();
        if !matches!(priority.as_str(), "urgent" | "important" | "standard") {
            tracing::warn!(receiver = %ctx.group.receiver, priority = %priority, "Mattermost priority set to standard due to invalid value");
            priority = "standard".into();
        }
        let requested_ack = p.requested_ack && priority != "standard";
        let persistent = p.persistent_notifications && priority == "urgent";
        let mut m = Map::new();
        m.insert("priority".into(), priority.into());
        if requested_ack {
            m.insert("requested_ack".into(), true.into());
        }
        if persistent {
            m.insert("persistent_notifications".into(), true.into());
        }
        body.insert("priority".into(), J::Object(m));
    }
    let what = format!("mattermost channel {channel:?}");
    post_json(client, &url, &J::Object(body), Duration::ZERO, &what, &[], &[&url]).await?;
    Ok(())
}
