//! WeChat Work (upstream `notify/wechat`): an access token from `GET {api_url}gettoken`
//! (cached for two hours per integration, dropped when WeChat says it expired, errcode
//! 42001), then `POST {api_url}message/send?access_token=...` with the message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value as J, json};
use watchfire_alerting::{FailureReason, NotifyError};
use watchfire_config::alertmanager::receivers::WechatConfig;

use crate::http::{self, HttpClient};
use crate::integrations::{Ctx, json_request, secret_or_file};

/// How long an access token is used before a new one is fetched.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(2 * 3600);

/// Access tokens by (receiver, integration index), with when they were fetched.
#[derive(Debug, Default)]
pub(crate) struct TokenCache(Mutex<HashMap<(String, usize), (String, Instant)>>);

impl TokenCache {
    fn get(&self, key: &(String, usize)) -> Option<String> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|(_, at)| at.elapsed() <= TOKEN_LIFETIME)
            .map(|(t, _)| t.clone())
    }

    fn set(&self, key: (String, usize), token: Option<String>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match token {
            Some(t) => map.insert(key, (t, Instant::now())),
            None => map.remove(&key),
        };
    }
}

fn failed(message: String, retryable: bool, reason: FailureReason, secrets: &[&str]) -> NotifyError {
    NotifyError {
        message: http::redact(&message, secrets),
        retryable,
        reason,
    }
}

fn status_reason(status: reqwest::StatusCode) -> FailureReason {
    if status.is_server_error() {
        FailureReason::ServerError
    } else if status.is_client_error() {
        FailureReason::ClientError
    } else {
        FailureReason::Other
    }
}

pub(crate) async fn wechat(
    ctx: &Ctx<'_>,
    cfg: &WechatConfig,
    client: &HttpClient,
    cache: &TokenCache,
    index: usize,
) -> Result<(), NotifyError> {
    let r = |s: &str| ctx.render(s);
    let base = cfg
        .api_url
        .as_ref()
        .ok_or_else(|| NotifyError::permanent("wechat: no api_url configured"))?
        .as_url()
        .clone();
    let key = (ctx.group.receiver.clone(), index);
    let secret = secret_or_file(ctx, &cfg.api_secret, &cfg.api_secret_file, "api_secret")?;
    let secret = r(&secret)?;
    let mut secrets: Vec<String> = vec![secret.clone()];
    let token = match cache.get(&key) {
        Some(t) => t,
        None => {
            let mut u = base.clone();
            u.set_path(&format!("{}gettoken", u.path()));
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("corpid", &r(&cfg.corp_id)?)
                .append_pair("corpsecret", &secret)
                .finish();
            u.set_query(Some(&query));
            secrets.push(u.to_string());
            let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
            let resp = http::send(
                client.request(reqwest::Method::GET, u.as_str())?,
                Duration::ZERO,
                "wechat",
                &refs,
            )
            .await?;
            #[derive(Deserialize)]
            struct Token {
                #[serde(default)]
                access_token: String,
            }
            let t: Token = serde_json::from_str(&resp.body).map_err(|e| {
                failed(
                    format!("wechat: reading the access token: {e}"),
                    false,
                    status_reason(resp.status),
                    &refs,
                )
            })?;
            if t.access_token.is_empty() {
                return Err(NotifyError::permanent(format!(
                    "invalid APISecret for CorpID: {}",
                    cfg.corp_id
                )));
            }
            cache.set(key.clone(), Some(t.access_token.clone()));
            t.access_token
        }
    };
    secrets.push(token.clone());

    let content = json!({"content": r(&cfg.message)?});
    let empty = json!({"content": ""});
    let mut msg = Map::new();
    // Upstream's struct: both contents are always present (Go's omitempty keeps structs).
    let markdown = cfg.message_type == "markdown";
    msg.insert("text".into(), if markdown { empty.clone() } else { content.clone() });
    for (k, v) in [
        ("touser", &cfg.to_user),
        ("toparty", &cfg.to_party),
        ("totag", &cfg.to_tag),
        ("agentid", &cfg.agent_id),
    ] {
        let v = r(v)?;
        if !v.is_empty() {
            msg.insert(k.into(), v.into());
        }
    }
    msg.insert("safe".into(), "0".into());
    if !cfg.message_type.is_empty() {
        msg.insert("msgtype".into(), cfg.message_type.clone().into());
    }
    msg.insert("markdown".into(), if markdown { content } else { empty });

    let mut u = base;
    u.set_path(&format!("{}message/send", u.path()));
    u.query_pairs_mut().append_pair("access_token", &token);
    secrets.push(u.to_string());
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let req = json_request(client, reqwest::Method::POST, u.as_str(), &J::Object(msg), "wechat")?;
    let resp = http::send(req, Duration::ZERO, "wechat", &refs).await?;
    if resp.status != reqwest::StatusCode::OK {
        return Err(failed(
            format!("wechat: unexpected status code {}", resp.status.as_u16()),
            true,
            status_reason(resp.status),
            &refs,
        ));
    }
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        errcode: i64,
        #[serde(default)]
        errmsg: String,
    }
    let answer: Answer = serde_json::from_str(&resp.body).map_err(|e| {
        failed(
            format!("wechat: reading the answer: {e}"),
            true,
            FailureReason::Other,
            &refs,
        )
    })?;
    match answer.errcode {
        0 => Ok(()),
        42001 => {
            // The access token expired: fetch a new one next time.
            cache.set(key, None);
            Err(failed(
                format!("wechat: {}", answer.errmsg),
                true,
                FailureReason::Other,
                &refs,
            ))
        }
        _ => Err(failed(
            format!("wechat: {}", answer.errmsg),
            false,
            FailureReason::Other,
            &refs,
        )),
    }
}
