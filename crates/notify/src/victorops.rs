//! VictorOps / Splunk On-Call (upstream `notify/victorops`): `POST {api_url}{api_key}/{routing_key}`
//! with `{message_type, entity_id, entity_display_name, state_message, monitoring_tool, ...}`
//! plus the custom fields. A resolved group is a `RECOVERY`; a firing one with a message type
//! VictorOps does not know is `CRITICAL`. The state message is cut to 20480 runes.

use std::time::Duration;

use serde_json::{Map, Value as J};
use watchfire_alerting::NotifyError;
use watchfire_config::alertmanager::receivers::VictorOpsConfig;

use crate::http::{HttpClient, key_hash, truncate_runes};
use crate::integrations::{Ctx, post_json, secret_or_file};

/// <https://help.victorops.com/knowledge-base/incident-fields-glossary/>.
pub const MAX_STATE_MESSAGE_RUNES: usize = 20480;

pub(crate) async fn victorops(ctx: &Ctx<'_>, cfg: &VictorOpsConfig, client: &HttpClient) -> Result<(), NotifyError> {
    let r = |s: &str| ctx.render(s);
    let api_key = secret_or_file(ctx, &cfg.api_key, &cfg.api_key_file, "api_key")?;
    let base = cfg
        .api_url
        .as_ref()
        .ok_or_else(|| NotifyError::permanent("victorops: no api_url configured"))?;
    let mut url = base.as_url().clone();
    let path = format!("{}{api_key}/{}", url.path(), r(&cfg.routing_key)?);
    url.set_path(&path);

    let mut message_type = r(&cfg.message_type)?;
    if ctx.data.status == "resolved" {
        message_type = "RECOVERY".into();
    } else if !matches!(message_type.as_str(), "INFO" | "WARNING" | "CRITICAL") {
        message_type = "CRITICAL".into();
    }
    let (state_message, cut) = truncate_runes(&r(&cfg.state_message)?, MAX_STATE_MESSAGE_RUNES);
    if cut {
        tracing::warn!(receiver = %ctx.group.receiver, max_runes = MAX_STATE_MESSAGE_RUNES, "truncated VictorOps state_message");
    }
    let mut msg = Map::new();
    msg.insert("message_type".into(), message_type.into());
    msg.insert("entity_id".into(), key_hash(&ctx.group.group_key).into());
    msg.insert("entity_display_name".into(), r(&cfg.entity_display_name)?.into());
    msg.insert("state_message".into(), state_message.into());
    msg.insert("monitoring_tool".into(), r(&cfg.monitoring_tool)?.into());
    for (k, v) in &cfg.custom_fields {
        msg.insert(k.clone(), r(v)?.into());
    }
    let secrets = [url.as_str(), api_key.as_str()];
    post_json(
        client,
        url.as_str(),
        &J::Object(msg),
        Duration::ZERO,
        "victorops",
        &[],
        &secrets,
    )
    .await?;
    Ok(())
}
