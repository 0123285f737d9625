//! Webex (upstream `notify/webex`): `POST {api_url}` with `{"markdown", "roomId"}`; the bot
//! token comes from `http_config.authorization`. The message is cut to 7439 bytes.

use std::time::Duration;

use serde_json::{Map, Value as J};
use watchfire_alerting::NotifyError;
use watchfire_config::alertmanager::receivers::WebexConfig;

use crate::http::{HttpClient, truncate_bytes};
use crate::integrations::{Ctx, post_json};

/// The longest message Webex takes (upstream `maxMessageSize`), in bytes.
pub const MAX_MESSAGE_BYTES: usize = 7439;

pub(crate) async fn webex(ctx: &Ctx<'_>, cfg: &WebexConfig, client: &HttpClient) -> Result<(), NotifyError> {
    let (markdown, cut) = truncate_bytes(&ctx.render(&cfg.message)?, MAX_MESSAGE_BYTES);
    if cut {
        tracing::debug!(receiver = %ctx.group.receiver, max_bytes = MAX_MESSAGE_BYTES, "truncated Webex message");
    }
    let room_id = ctx.render(&cfg.room_id)?;
    let mut body = Map::new();
    body.insert("markdown".into(), markdown.into());
    if !room_id.is_empty() {
        body.insert("roomId".into(), room_id.into());
    }
    let url = cfg
        .api_url
        .as_ref()
        .map(|u| u.as_str().to_owned())
        .ok_or_else(|| NotifyError::permanent("webex: no api_url configured"))?;
    post_json(client, &url, &J::Object(body), Duration::ZERO, "webex", &[], &[]).await?;
    Ok(())
}
