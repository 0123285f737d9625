//! Receivers and their integrations (upstream config/notifiers.go and notify/*/config.go).
//!
//! Every integration config has upstream's defaults (templates named `<kind>.default.*` from
//! the default template file, `send_resolved` true except for email, Slack, WeChat and
//! Rocket.Chat), the checks upstream makes when it reads the block ([`Integration::validate`]),
//! and the inheritance from `global` that upstream's `Config.UnmarshalYAML` applies
//! ([`Integration::inherit`]). After [`super::Config::parse`] every inherited value is filled in,
//! so a notifier reads only its own config.
//!
//! Beyond Alertmanager (a file using them is not a valid Alertmanager file): the receiver
//! keys `ntfy_configs` ([`NtfyConfig`]) and `gotify_configs` ([`GotifyConfig`]), and
//! Pushover's `api_url` ([`PushoverConfig::api_url`]).

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use watchfire_model::Duration;

use super::GlobalConfig;
use super::common::{GoDuration, HostPort, SecretTemplateUrl, SecretUrl, Url, contains_templating, is_false, nullable};
use crate::http::{Authorization, HttpClientConfig, TlsConfig};
use crate::secret::Secret;
use crate::yaml::Spanned;

/// What every integration config offers the loader and the notifiers.
pub trait Integration: Default {
    /// The integration's short name, as in `missing webhook config`.
    const KIND: &'static str;
    /// Whether a null list entry reads as an empty config (upstream does this for Slack,
    /// OpsGenie, WeChat and Rocket.Chat, so their "missing global value" errors show instead).
    const NULL_IS_EMPTY: bool = false;

    /// Whether resolved alerts are notified too.
    fn send_resolved(&self) -> bool;

    /// The HTTP client settings, when the integration has any.
    fn http_config(&self) -> Option<&HttpClientConfig>;

    /// Upstream's checks when the block is read, with its normalisation (defaults derived from
    /// other fields, canonical header names). Returns the first problem, as upstream does.
    fn validate(&mut self) -> Result<(), String>;

    /// Fills unset values from `global` and reports a value that is set nowhere.
    fn inherit(&mut self, global: &GlobalConfig) -> Result<(), String>;
}

/// Serde helper for an integration list: null entries are an error (`missing email config`)
/// or, where upstream allows it, an empty config.
pub(crate) fn integrations<'de, D, T>(d: D) -> Result<Vec<Spanned<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Integration + Deserialize<'de>,
{
    let items = Option::<Vec<Spanned<Option<T>>>>::deserialize(d)?.unwrap_or_default();
    items
        .into_iter()
        .map(|item| {
            let value = match item.value {
                Some(v) => v,
                None if T::NULL_IS_EMPTY => T::default(),
                None => return Err(D::Error::custom(format!("missing {} config", T::KIND))),
            };
            Ok(Spanned::new(value, item.referenced, item.defined))
        })
        .collect()
}

/// A reference to one of upstream's default notification templates.
fn tmpl(name: &str) -> String {
    format!("{{{{ template \"{name}\" . }}}}")
}

fn or_string(local: &mut String, global: &str) {
    if local.is_empty() {
        *local = global.to_owned();
    }
}

fn or_secret(local: &mut Secret, global: &Secret) {
    if local.is_empty() {
        *local = global.clone();
    }
}

fn or_option<T: Clone>(local: &mut Option<T>, global: &Option<T>) {
    if local.is_none() {
        local.clone_from(global);
    }
}

fn inherit_http(local: &mut Option<HttpClientConfig>, global: &GlobalConfig) {
    if local.is_none() {
        *local = Some(global.http_config.clone());
    }
}

fn at_most_one(a: bool, b: bool, a_name: &str, b_name: &str) -> Result<(), String> {
    if a && b {
        return Err(format!("at most one of {a_name} & {b_name} must be configured"));
    }
    Ok(())
}

/// A receiver: a name, optional labels, and the integrations to notify.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Receiver {
    /// The unique name routes refer to.
    #[serde(default)]
    pub name: String,
    /// Labels for filtering receivers in the API; `name` is always set to the receiver name.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub discord_configs: Vec<Spanned<DiscordConfig>>,
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub email_configs: Vec<Spanned<EmailConfig>>,
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub incidentio_configs: Vec<Spanned<IncidentioConfig>>,
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub pagerduty_configs: Vec<Spanned<PagerdutyConfig>>,
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub slack_configs: Vec<Spanned<SlackConfig>>,
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub webhook_configs: Vec<Spanned<WebhookConfig>>,
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub opsgenie_configs: Vec<Spanned<OpsGenieConfig>>,
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub wechat_configs: Vec<Spanned<WechatConfig>>,
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub pushover_configs: Vec<Spanned<PushoverConfig>>,
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub victorops_configs: Vec<Spanned<VictorOpsConfig>>,
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub sns_configs: Vec<Spanned<SnsConfig>>,
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub telegram_configs: Vec<Spanned<TelegramConfig>>,
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub webex_configs: Vec<Spanned<WebexConfig>>,
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub msteams_configs: Vec<Spanned<MsTeamsConfig>>,
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub msteamsv2_configs: Vec<Spanned<MsTeamsV2Config>>,
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub jira_configs: Vec<Spanned<JiraConfig>>,
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub rocketchat_configs: Vec<Spanned<RocketchatConfig>>,
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub mattermost_configs: Vec<Spanned<MattermostConfig>>,
    /// Watchfire's own: notifications to an ntfy server (not in Alertmanager).
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub ntfy_configs: Vec<Spanned<NtfyConfig>>,
    /// Watchfire's own: notifications to a Gotify server (not in Alertmanager).
    #[serde(default, deserialize_with = "integrations", skip_serializing_if = "Vec::is_empty")]
    pub gotify_configs: Vec<Spanned<GotifyConfig>>,
}

impl Receiver {
    /// How many integrations the receiver has, over all kinds.
    pub fn integration_count(&self) -> usize {
        self.discord_configs.len()
            + self.email_configs.len()
            + self.incidentio_configs.len()
            + self.pagerduty_configs.len()
            + self.slack_configs.len()
            + self.webhook_configs.len()
            + self.opsgenie_configs.len()
            + self.wechat_configs.len()
            + self.pushover_configs.len()
            + self.victorops_configs.len()
            + self.sns_configs.len()
            + self.telegram_configs.len()
            + self.webex_configs.len()
            + self.msteams_configs.len()
            + self.msteamsv2_configs.len()
            + self.jira_configs.len()
            + self.rocketchat_configs.len()
            + self.mattermost_configs.len()
            + self.ntfy_configs.len()
            + self.gotify_configs.len()
    }
}

// ---------------------------------------------------------------------------------------------
// Email

/// Mail threading: group a notification group's mails into one thread.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThreadingConfig {
    #[serde(skip_serializing_if = "is_false")]
    pub enabled: bool,
    /// `daily` (a new thread per day) or `none`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub thread_by_date: String,
}

/// Notifications by email over SMTP. Unset SMTP settings come from the `smtp_*` globals.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    pub send_resolved: bool,
    /// Recipient address(es), comma separated.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub to: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub from: String,
    /// The name sent in the SMTP HELO/EHLO.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub hello: String,
    /// The SMTP server, `host:port`.
    #[serde(skip_serializing_if = "HostPort::is_empty")]
    pub smarthost: HostPort,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub auth_username: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub auth_password: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub auth_password_file: String,
    /// The CRAM-MD5 secret.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub auth_secret: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub auth_secret_file: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub auth_identity: String,
    /// Extra headers (templates); names are canonicalised (`subject` becomes `Subject`).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub html: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_tls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// Force TLS from the start (true), never (false), or decide by port 465 (unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_implicit_tls: Option<bool>,
    #[serde(skip_serializing_if = "crate::yaml::is_default")]
    pub threading: ThreadingConfig,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            send_resolved: false,
            to: String::new(),
            from: String::new(),
            hello: String::new(),
            smarthost: HostPort::default(),
            auth_username: String::new(),
            auth_password: Secret::default(),
            auth_password_file: String::new(),
            auth_secret: Secret::default(),
            auth_secret_file: String::new(),
            auth_identity: String::new(),
            headers: BTreeMap::new(),
            html: tmpl("email.default.html"),
            text: String::new(),
            require_tls: None,
            tls_config: None,
            force_implicit_tls: None,
            threading: ThreadingConfig::default(),
        }
    }
}

/// Go's `textproto.CanonicalMIMEHeaderKey`: `content-type` becomes `Content-Type`; a key with
/// characters outside the HTTP token set is returned unchanged.
pub fn canonical_header_key(key: &str) -> String {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if key.is_empty() || !key.bytes().all(token) {
        return key.to_owned();
    }
    let mut upper = true;
    key.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

impl Integration for EmailConfig {
    const KIND: &'static str = "email";

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        None
    }

    fn validate(&mut self) -> Result<(), String> {
        if self.to.is_empty() {
            return Err("missing to address in email config".into());
        }
        // Upstream checks these pairs only in `global`; a receiver setting both is as
        // ambiguous, so it is refused here too.
        at_most_one(
            !self.auth_password.is_empty(),
            !self.auth_password_file.is_empty(),
            "auth_password",
            "auth_password_file",
        )?;
        at_most_one(
            !self.auth_secret.is_empty(),
            !self.auth_secret_file.is_empty(),
            "auth_secret",
            "auth_secret_file",
        )?;
        let mut canonical = BTreeMap::new();
        for (name, value) in std::mem::take(&mut self.headers) {
            let key = canonical_header_key(&name);
            if canonical.contains_key(&key) {
                return Err(format!("duplicate header {key:?} in email config"));
            }
            canonical.insert(key, value);
        }
        self.headers = canonical;
        if self.threading.enabled {
            for h in ["References", "In-Reply-To"] {
                if self.headers.contains_key(h) {
                    return Err(format!(
                        "conflicting configuration: threading.enabled conflicts with custom {h} header"
                    ));
                }
            }
            if !matches!(self.threading.thread_by_date.as_str(), "none" | "daily") {
                return Err("threading.thread_by_date must be either 'none' or 'daily'".into());
            }
        }
        if let Some(tls) = &self.tls_config {
            tls.validate().map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        or_option(&mut self.tls_config, &g.smtp_tls_config);
        if self.smarthost.is_empty() {
            self.smarthost = g.smtp_smarthost.clone();
        }
        if self.smarthost.is_empty() {
            return Err("no global SMTP smarthost set".into());
        }
        or_string(&mut self.from, &g.smtp_from);
        if self.from.is_empty() {
            return Err("no global SMTP from set".into());
        }
        or_string(&mut self.hello, &g.smtp_hello);
        or_string(&mut self.auth_username, &g.smtp_auth_username);
        if self.auth_password.is_empty() && self.auth_password_file.is_empty() {
            self.auth_password = g.smtp_auth_password.clone();
            self.auth_password_file = g.smtp_auth_password_file.clone();
        }
        if self.auth_secret.is_empty() && self.auth_secret_file.is_empty() {
            self.auth_secret = g.smtp_auth_secret.clone();
            self.auth_secret_file = g.smtp_auth_secret_file.clone();
        }
        or_string(&mut self.auth_identity, &g.smtp_auth_identity);
        if self.require_tls.is_none() {
            self.require_tls = Some(g.smtp_require_tls);
        }
        or_option(&mut self.force_implicit_tls, &g.smtp_force_implicit_tls);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// PagerDuty

/// A link shown on a PagerDuty incident.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagerdutyLink {
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub href: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub text: String,
}

/// An image shown on a PagerDuty incident.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagerdutyImage {
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub src: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub alt: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub href: String,
}

/// Notifications to PagerDuty: Events API v2 with `routing_key`, v1 with `service_key`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagerdutyConfig {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub service_key: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub service_key_file: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub routing_key: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub routing_key_file: String,
    /// The events endpoint; defaults to `global.pagerduty_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub client: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub client_url: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Custom details (templated); `firing`, `resolved`, `num_firing` and `num_resolved` are
    /// added unless given.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, Value>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<PagerdutyImage>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<PagerdutyLink>,
    /// Defaults to `client`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub severity: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub class: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub component: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Request timeout; 0 means none.
    pub timeout: GoDuration,
}

impl Default for PagerdutyConfig {
    fn default() -> Self {
        PagerdutyConfig {
            send_resolved: true,
            http_config: None,
            service_key: Secret::default(),
            service_key_file: String::new(),
            routing_key: Secret::default(),
            routing_key_file: String::new(),
            url: None,
            client: tmpl("pagerduty.default.client"),
            client_url: tmpl("pagerduty.default.clientURL"),
            description: "{{ template \"pagerduty.default.description\" .}}".into(),
            details: BTreeMap::new(),
            images: Vec::new(),
            links: Vec::new(),
            source: String::new(),
            severity: String::new(),
            class: String::new(),
            component: String::new(),
            group: String::new(),
            timeout: GoDuration::ZERO,
        }
    }
}

/// The details PagerDuty receives unless the config sets the same keys.
pub const PAGERDUTY_DEFAULT_DETAILS: [(&str, &str); 4] = [
    ("firing", "{{ .Alerts.Firing | toJson }}"),
    ("resolved", "{{ .Alerts.Resolved | toJson }}"),
    ("num_firing", "{{ .Alerts.Firing | len }}"),
    ("num_resolved", "{{ .Alerts.Resolved | len }}"),
];

impl Integration for PagerdutyConfig {
    const KIND: &'static str = "pagerduty";

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        if self.routing_key.is_empty()
            && self.service_key.is_empty()
            && self.routing_key_file.is_empty()
            && self.service_key_file.is_empty()
        {
            return Err("missing service or routing key in PagerDuty config".into());
        }
        at_most_one(
            !self.routing_key.is_empty(),
            !self.routing_key_file.is_empty(),
            "routing_key",
            "routing_key_file",
        )?;
        at_most_one(
            !self.service_key.is_empty(),
            !self.service_key_file.is_empty(),
            "service_key",
            "service_key_file",
        )?;
        if self.source.is_empty() {
            self.source = self.client.clone();
        }
        for (k, v) in PAGERDUTY_DEFAULT_DETAILS {
            self.details
                .entry(k.to_owned())
                .or_insert_with(|| Value::String(v.to_owned()));
        }
        Ok(())
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        inherit_http(&mut self.http_config, g);
        or_option(&mut self.url, &g.pagerduty_url);
        if self.url.is_none() {
            return Err("no global PagerDuty URL set".into());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Slack

/// A field of a Slack attachment; `title` and `value` are required.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackField {
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short: Option<bool>,
}

/// A confirmation dialog on a Slack action; `text` is required.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfirmationField {
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub ok_text: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub dismiss_text: String,
}

/// A Slack action: a link button (`url`) or a message action (`name`, `value`, `confirm`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackAction {
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub r#type: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub style: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm: Option<SlackConfirmationField>,
}

/// Notifications to Slack through an incoming webhook (`api_url`) or a bot/app token
/// (`app_token`, posting to `app_url`). Unset, they come from the `slack_*` globals.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<SecretUrl>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub api_url_file: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub app_token: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub app_token_file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_url: Option<Url>,
    /// Channel override (`#other-channel`, `@username`).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub channel: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub color: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub title_link: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub pretext: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// The message's top-level text, outside the attachment.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub message_text: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<SlackField>,
    pub short_fields: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub footer: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub fallback: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub callback_id: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub icon_emoji: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub icon_url: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub image_url: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub thumb_url: String,
    pub link_names: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub mrkdwn_in: Vec<String>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<SlackAction>,
    /// Update the first message of a group instead of posting new ones (bot tokens only).
    pub update_message: bool,
    /// Request timeout; 0 means none.
    pub timeout: GoDuration,
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            send_resolved: false,
            http_config: None,
            api_url: None,
            api_url_file: String::new(),
            app_token: Secret::default(),
            app_token_file: String::new(),
            app_url: None,
            channel: String::new(),
            username: tmpl("slack.default.username"),
            color: tmpl("slack.default.color"),
            title: tmpl("slack.default.title"),
            title_link: tmpl("slack.default.titlelink"),
            pretext: tmpl("slack.default.pretext"),
            text: tmpl("slack.default.text"),
            message_text: String::new(),
            fields: Vec::new(),
            short_fields: false,
            footer: tmpl("slack.default.footer"),
            fallback: tmpl("slack.default.fallback"),
            callback_id: tmpl("slack.default.callbackid"),
            icon_emoji: tmpl("slack.default.iconemoji"),
            icon_url: tmpl("slack.default.iconurl"),
            image_url: String::new(),
            thumb_url: String::new(),
            link_names: false,
            mrkdwn_in: Vec::new(),
            actions: Vec::new(),
            update_message: false,
            timeout: GoDuration::ZERO,
        }
    }
}

/// The Slack API method that `update_message` requires.
pub const SLACK_POST_MESSAGE_URL: &str = "https://slack.com/api/chat.postMessage";

impl SlackConfig {
    fn has_app_token(&self) -> bool {
        !self.app_token.is_empty() || !self.app_token_file.is_empty()
    }

    fn has_api_url(&self) -> bool {
        self.api_url.is_some() || !self.api_url_file.is_empty()
    }
}

impl Integration for SlackConfig {
    const KIND: &'static str = "slack";
    const NULL_IS_EMPTY: bool = true;

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        for f in &self.fields {
            if f.title.is_empty() {
                return Err("missing title in Slack field configuration".into());
            }
            if f.value.is_empty() {
                return Err("missing value in Slack field configuration".into());
            }
        }
        for a in &mut self.actions {
            if a.confirm.as_ref().is_some_and(|c| c.text.is_empty()) {
                return Err("missing text in Slack confirmation configuration".into());
            }
            if a.r#type.is_empty() {
                return Err("missing type in Slack action configuration".into());
            }
            if a.text.is_empty() {
                return Err("missing text in Slack action configuration".into());
            }
            // A link button carries no message-action fields, as upstream clears them.
            if !a.url.is_empty() {
                a.name.clear();
                a.value.clear();
                a.confirm = None;
            } else if a.name.is_empty() {
                return Err("missing name or url in Slack action configuration".into());
            }
        }
        at_most_one(
            self.api_url.is_some(),
            !self.api_url_file.is_empty(),
            "api_url",
            "api_url_file",
        )?;
        at_most_one(
            !self.app_token.is_empty(),
            !self.app_token_file.is_empty(),
            "app_token",
            "app_token_file",
        )?;
        at_most_one(
            self.has_api_url(),
            self.has_app_token(),
            "api_url/api_url_file",
            "app_token/app_token_file",
        )?;
        let api_url = self.api_url.as_ref().map_or("", SecretUrl::expose);
        if self.update_message && api_url != SLACK_POST_MESSAGE_URL {
            return Err(format!(
                "update_message can only be used with bot tokens. api_url must be set to {SLACK_POST_MESSAGE_URL}"
            ));
        }
        Ok(())
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        or_option(&mut self.app_url, &g.slack_app_url);
        let Some(app_url) = self.app_url.clone() else {
            return Err("no global Slack App URL set".into());
        };
        // The global app token applies only when the receiver has no authorization of its own
        // and no webhook URL.
        let has_local_auth = self.http_config.as_ref().is_some_and(|h| h.authorization.is_some());
        if !self.has_app_token() && !has_local_auth && self.api_url.is_none() {
            self.app_token = g.slack_app_token.clone();
            self.app_token_file = g.slack_app_token_file.clone();
        }
        if !self.has_api_url() {
            self.api_url.clone_from(&g.slack_api_url);
            self.api_url_file = g.slack_api_url_file.clone();
        }
        if !self.has_api_url() && !self.has_app_token() {
            return Err("no Slack API URL nor App token set either inline or in a file".into());
        }
        inherit_http(&mut self.http_config, g);
        if self.has_app_token() {
            let http = self.http_config.get_or_insert_with(|| g.http_config.clone());
            if http.authorization.is_some() {
                return Err("http authorization can't be set when using Slack App tokens".into());
            }
            http.authorization = Some(Authorization {
                kind: "Bearer".into(),
                credentials: (!self.app_token.is_empty()).then(|| self.app_token.clone()),
                credentials_file: (!self.app_token_file.is_empty()).then(|| self.app_token_file.clone()),
                credentials_ref: None,
            });
            self.api_url = Some(SecretUrl::new(app_url));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook

/// Notifications as JSON POSTs to any HTTP endpoint.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    /// The endpoint; may contain template actions.
    #[serde(skip_serializing_if = "SecretTemplateUrl::is_empty")]
    pub url: SecretTemplateUrl,
    pub url_file: String,
    /// The most alerts per message; 0 means all.
    pub max_alerts: u64,
    /// Request timeout; 0 means none.
    pub timeout: GoDuration,
    /// A custom JSON payload of templates, replacing the standard one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            send_resolved: true,
            http_config: None,
            url: SecretTemplateUrl::default(),
            url_file: String::new(),
            max_alerts: 0,
            timeout: GoDuration::ZERO,
            payload: None,
        }
    }
}

impl Integration for WebhookConfig {
    const KIND: &'static str = "webhook";

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        if self.url.is_empty() && self.url_file.is_empty() {
            return Err("one of url or url_file must be configured".into());
        }
        at_most_one(!self.url.is_empty(), !self.url_file.is_empty(), "url", "url_file")
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        inherit_http(&mut self.http_config, g);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// OpsGenie

/// Who an OpsGenie alert is for: one of `id`, `name`, `username`, and a `type`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpsGenieConfigResponder {
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub username: String,
    /// `team`, `teams`, `user`, `escalation` or `schedule` (or a template).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub r#type: String,
}

impl OpsGenieConfigResponder {
    /// As Go's `%v` prints the struct, for upstream's messages.
    fn go_value(&self) -> String {
        format!("{{{} {} {} {}}}", self.id, self.name, self.username, self.r#type)
    }
}

/// Notifications to OpsGenie. Unset API key and URL come from the `opsgenie_*` globals.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpsGenieConfig {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub api_key: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub api_key_file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<Url>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub entity: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub responders: Vec<OpsGenieConfigResponder>,
    /// Comma-separated actions.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub actions: String,
    /// Comma-separated tags.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub tags: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// `P1` to `P5`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub priority: String,
    /// Also update message and description of an existing alert.
    #[serde(skip_serializing_if = "is_false")]
    pub update_alerts: bool,
}

impl Default for OpsGenieConfig {
    fn default() -> Self {
        OpsGenieConfig {
            send_resolved: true,
            http_config: None,
            api_key: Secret::default(),
            api_key_file: String::new(),
            api_url: None,
            message: tmpl("opsgenie.default.message"),
            description: tmpl("opsgenie.default.description"),
            source: tmpl("opsgenie.default.source"),
            details: BTreeMap::new(),
            entity: String::new(),
            responders: Vec::new(),
            actions: String::new(),
            tags: String::new(),
            note: String::new(),
            priority: String::new(),
            update_alerts: false,
        }
    }
}

const OPSGENIE_RESPONDER_TYPES: &str = "^(team|teams|user|escalation|schedule)$";

impl Integration for OpsGenieConfig {
    const KIND: &'static str = "opsgenie";
    const NULL_IS_EMPTY: bool = true;

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        at_most_one(
            !self.api_key.is_empty(),
            !self.api_key_file.is_empty(),
            "api_key",
            "api_key_file",
        )?;
        for r in &self.responders {
            if r.id.is_empty() && r.username.is_empty() && r.name.is_empty() {
                return Err(format!(
                    "opsGenieConfig responder {} has to have at least one of id, username or name specified",
                    r.go_value()
                ));
            }
            match contains_templating(&r.r#type) {
                Err(e) => {
                    return Err(format!(
                        "opsGenieConfig responder {} type contains invalid template syntax: {e}",
                        r.go_value()
                    ));
                }
                Ok(true) => {}
                Ok(false) => {
                    let t = r.r#type.to_lowercase();
                    if !matches!(t.as_str(), "team" | "teams" | "user" | "escalation" | "schedule") {
                        return Err(format!(
                            "opsGenieConfig responder {} type does not match valid options {OPSGENIE_RESPONDER_TYPES}",
                            r.go_value()
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        inherit_http(&mut self.http_config, g);
        or_option(&mut self.api_url, &g.opsgenie_api_url);
        let Some(url) = self.api_url.take() else {
            return Err("no global OpsGenie URL set".into());
        };
        self.api_url = Some(url.with_trailing_slash());
        // Key and key file fall back independently, as upstream does.
        or_secret(&mut self.api_key, &g.opsgenie_api_key);
        or_string(&mut self.api_key_file, &g.opsgenie_api_key_file);
        if self.api_key.is_empty() && self.api_key_file.is_empty() {
            return Err("no global OpsGenie API Key set either inline or in a file".into());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// WeChat

/// Notifications to WeChat Work. Unset secret, corp ID and URL come from the `wechat_*` globals.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WechatConfig {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub api_secret: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub api_secret_file: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub corp_id: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<Url>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub to_user: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub to_party: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub to_tag: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub agent_id: String,
    /// `text` (default) or `markdown`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub message_type: String,
}

impl Default for WechatConfig {
    fn default() -> Self {
        WechatConfig {
            send_resolved: false,
            http_config: None,
            api_secret: Secret::default(),
            api_secret_file: String::new(),
            corp_id: String::new(),
            message: tmpl("wechat.default.message"),
            api_url: None,
            to_user: tmpl("wechat.default.to_user"),
            to_party: tmpl("wechat.default.to_party"),
            to_tag: tmpl("wechat.default.to_tag"),
            agent_id: tmpl("wechat.default.agent_id"),
            message_type: String::new(),
        }
    }
}

impl Integration for WechatConfig {
    const KIND: &'static str = "wechat";
    const NULL_IS_EMPTY: bool = true;

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        if self.message_type.is_empty() {
            self.message_type = "text".into();
        }
        if !matches!(self.message_type.as_str(), "text" | "markdown") {
            return Err(format!(
                "weChat message type {:?} does not match valid options ^(text|markdown)$",
                self.message_type
            ));
        }
        at_most_one(
            !self.api_secret.is_empty(),
            !self.api_secret_file.is_empty(),
            "api_secret",
            "api_secret_file",
        )
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        inherit_http(&mut self.http_config, g);
        or_option(&mut self.api_url, &g.wechat_api_url);
        let Some(url) = self.api_url.take() else {
            return Err("no global Wechat URL set".into());
        };
        if self.api_secret.is_empty() && self.api_secret_file.is_empty() {
            if g.wechat_api_secret.is_empty() && g.wechat_api_secret_file.is_empty() {
                return Err("no global Wechat Api Secret set either inline or in a file".into());
            }
            self.api_secret = g.wechat_api_secret.clone();
            self.api_secret_file = g.wechat_api_secret_file.clone();
        }
        or_string(&mut self.corp_id, &g.wechat_api_corp_id);
        if self.corp_id.is_empty() {
            return Err("no global Wechat CorpID set".into());
        }
        self.api_url = Some(url.with_trailing_slash());
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Pushover

/// The Pushover message API.
pub const PUSHOVER_API_URL: &str = "https://api.pushover.net/1/messages.json";

/// Notifications to Pushover.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushoverConfig {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    /// Watchfire's own (Alertmanager has no such key): the message API to post to, for a
    /// proxy or a test server. Default [`PUSHOVER_API_URL`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<Url>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub user_key: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub user_key_file: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub token: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub token_file: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub url_title: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub device: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub sound: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub priority: String,
    /// How often emergency notifications are retried (Go duration syntax).
    #[serde(skip_serializing_if = "crate::yaml::is_default")]
    pub retry: GoDuration,
    /// How long emergency notifications are retried.
    #[serde(skip_serializing_if = "crate::yaml::is_default")]
    pub expire: GoDuration,
    /// How long the message lives on the device; 0 means forever.
    #[serde(skip_serializing_if = "crate::yaml::is_default")]
    pub ttl: GoDuration,
    #[serde(skip_serializing_if = "is_false")]
    pub html: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub monospace: bool,
}

impl Default for PushoverConfig {
    fn default() -> Self {
        PushoverConfig {
            send_resolved: true,
            http_config: None,
            api_url: None,
            user_key: Secret::default(),
            user_key_file: String::new(),
            token: Secret::default(),
            token_file: String::new(),
            title: tmpl("pushover.default.title"),
            message: tmpl("pushover.default.message"),
            url: tmpl("pushover.default.url"),
            url_title: String::new(),
            device: String::new(),
            sound: String::new(),
            priority: "{{ if eq .Status \"firing\" }}2{{ else }}0{{ end }}".into(),
            retry: GoDuration::from_secs(60),
            expire: GoDuration::from_secs(3600),
            ttl: GoDuration::ZERO,
            html: false,
            monospace: false,
        }
    }
}

impl Integration for PushoverConfig {
    const KIND: &'static str = "pushover";

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        if self.user_key.is_empty() && self.user_key_file.is_empty() {
            return Err("one of user_key or user_key_file must be configured".into());
        }
        at_most_one(
            !self.user_key.is_empty(),
            !self.user_key_file.is_empty(),
            "user_key",
            "user_key_file",
        )?;
        if self.token.is_empty() && self.token_file.is_empty() {
            return Err("one of token or token_file must be configured".into());
        }
        at_most_one(
            !self.token.is_empty(),
            !self.token_file.is_empty(),
            "token",
            "token_file",
        )?;
        at_most_one(self.monospace, self.html, "monospace", "html")
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        inherit_http(&mut self.http_config, g);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// VictorOps

/// Notifications to VictorOps (Splunk On-Call). Unset API key and URL come from the
/// `victorops_*` globals.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct VictorOpsConfig {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub api_key: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub api_key_file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<Url>,
    pub routing_key: String,
    pub message_type: String,
    pub state_message: String,
    pub entity_display_name: String,
    pub monitoring_tool: String,
    /// Extra fields; the fixed field names are reserved.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_fields: BTreeMap<String, String>,
}

impl Default for VictorOpsConfig {
    fn default() -> Self {
        VictorOpsConfig {
            send_resolved: true,
            http_config: None,
            api_key: Secret::default(),
            api_key_file: String::new(),
            api_url: None,
            routing_key: String::new(),
            message_type: "CRITICAL".into(),
            state_message: tmpl("victorops.default.state_message"),
            entity_display_name: tmpl("victorops.default.entity_display_name"),
            monitoring_tool: tmpl("victorops.default.monitoring_tool"),
            custom_fields: BTreeMap::new(),
        }
    }
}

impl Integration for VictorOpsConfig {
    const KIND: &'static str = "victorops";

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        if self.routing_key.is_empty() {
            return Err("missing Routing key in VictorOps config".into());
        }
        at_most_one(
            !self.api_key.is_empty(),
            !self.api_key_file.is_empty(),
            "api_key",
            "api_key_file",
        )?;
        const RESERVED: [&str; 7] = [
            "routing_key",
            "message_type",
            "state_message",
            "entity_display_name",
            "monitoring_tool",
            "entity_id",
            "entity_state",
        ];
        if let Some(f) = RESERVED.iter().find(|f| self.custom_fields.contains_key(**f)) {
            return Err(format!(
                "victorOps config contains custom field {f} which cannot be used as it conflicts with the fixed/static fields"
            ));
        }
        Ok(())
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        inherit_http(&mut self.http_config, g);
        or_option(&mut self.api_url, &g.victorops_api_url);
        let Some(url) = self.api_url.take() else {
            return Err("no global VictorOps URL set".into());
        };
        self.api_url = Some(url.with_trailing_slash());
        or_secret(&mut self.api_key, &g.victorops_api_key);
        or_string(&mut self.api_key_file, &g.victorops_api_key_file);
        if self.api_key.is_empty() && self.api_key_file.is_empty() {
            return Err("no global VictorOps API Key set".into());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// SNS

/// AWS Signature Version 4 settings (github.com/prometheus/sigv4).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigV4Config {
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub region: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub access_key: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub secret_key: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub profile: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub role_arn: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub external_id: String,
    #[serde(skip_serializing_if = "is_false")]
    pub use_fips_sts_endpoint: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub service_name: String,
}

impl SigV4Config {
    /// Access key and secret key come together; `external_id` needs `role_arn`.
    pub fn validate(&self) -> Result<(), String> {
        if self.access_key.is_empty() != self.secret_key.is_empty() {
            return Err(
                "must provide a AWS SigV4 Access key and Secret Key if credentials are specified in the SigV4 config"
                    .into(),
            );
        }
        if !self.external_id.is_empty() && self.role_arn.is_empty() {
            return Err("external_id can only be used with role_arn".into());
        }
        Ok(())
    }
}

/// Notifications to AWS SNS: a topic, a target (mobile endpoint) or a phone number.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnsConfig {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub api_url: String,
    pub sigv4: SigV4Config,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub topic_arn: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub phone_number: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub target_arn: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub subject: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    /// Use the AWS SDK's own HTTP client.
    #[serde(skip_serializing_if = "is_false")]
    pub use_aws_http_client: bool,
}

impl Default for SnsConfig {
    fn default() -> Self {
        SnsConfig {
            send_resolved: true,
            http_config: None,
            api_url: String::new(),
            sigv4: SigV4Config::default(),
            topic_arn: String::new(),
            phone_number: String::new(),
            target_arn: String::new(),
            subject: tmpl("sns.default.subject"),
            message: tmpl("sns.default.message"),
            attributes: BTreeMap::new(),
            use_aws_http_client: false,
        }
    }
}

impl Integration for SnsConfig {
    const KIND: &'static str = "sns";

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        self.sigv4.validate()?;
        // Upstream's check is a chained XOR of the three "unset" flags: it accepts exactly one
        // destination, and (by accident) all three.
        let unset = [
            self.target_arn.is_empty(),
            self.topic_arn.is_empty(),
            self.phone_number.is_empty(),
        ];
        if (unset[0] != unset[1]) != unset[2] {
            return Err("must provide either a Target ARN, Topic ARN, or Phone Number for SNS config".into());
        }
        Ok(())
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        inherit_http(&mut self.http_config, g);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Telegram

/// Notifications to a Telegram chat through a bot. An unset token and API URL come from the
/// `telegram_*` globals.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramConfig {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<Url>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub bot_token: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub bot_token_file: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub chat_id: i64,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub chat_id_file: String,
    /// The forum topic to post in.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub message_thread_id: i64,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "is_false")]
    pub disable_notifications: bool,
    /// `HTML` (default), `Markdown`, `MarkdownV2` or empty.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub parse_mode: String,
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

impl Default for TelegramConfig {
    fn default() -> Self {
        TelegramConfig {
            send_resolved: true,
            http_config: None,
            api_url: None,
            bot_token: Secret::default(),
            bot_token_file: String::new(),
            chat_id: 0,
            chat_id_file: String::new(),
            message_thread_id: 0,
            message: tmpl("telegram.default.message"),
            disable_notifications: false,
            parse_mode: "HTML".into(),
        }
    }
}

impl Integration for TelegramConfig {
    const KIND: &'static str = "telegram";

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        at_most_one(
            !self.bot_token.is_empty(),
            !self.bot_token_file.is_empty(),
            "bot_token",
            "bot_token_file",
        )?;
        if self.chat_id == 0 && self.chat_id_file.is_empty() {
            return Err("missing chat_id or chat_id_file on telegram_config".into());
        }
        at_most_one(
            self.chat_id != 0,
            !self.chat_id_file.is_empty(),
            "chat_id",
            "chat_id_file",
        )?;
        if !matches!(self.parse_mode.as_str(), "" | "Markdown" | "MarkdownV2" | "HTML") {
            return Err(
                "unknown parse_mode on telegram_config, must be Markdown, MarkdownV2, HTML or empty string".into(),
            );
        }
        Ok(())
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        inherit_http(&mut self.http_config, g);
        or_option(&mut self.api_url, &g.telegram_api_url);
        if self.bot_token.is_empty() && self.bot_token_file.is_empty() {
            if g.telegram_bot_token.is_empty() && g.telegram_bot_token_file.is_empty() {
                return Err("missing bot_token or bot_token_file on telegram_config".into());
            }
            self.bot_token = g.telegram_bot_token.clone();
            self.bot_token_file = g.telegram_bot_token_file.clone();
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Webex

/// Notifications to a Webex room; the bot token goes in `http_config.authorization`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebexConfig {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<Url>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub room_id: String,
}

impl Default for WebexConfig {
    fn default() -> Self {
        WebexConfig {
            send_resolved: true,
            http_config: None,
            api_url: None,
            message: tmpl("webex.default.message"),
            room_id: String::new(),
        }
    }
}

impl Integration for WebexConfig {
    const KIND: &'static str = "webex";

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        if self.room_id.is_empty() {
            return Err("missing room_id on webex_config".into());
        }
        if self.http_config.as_ref().is_none_or(|h| h.authorization.is_none()) {
            return Err("missing webex_configs.http_config.authorization".into());
        }
        Ok(())
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        inherit_http(&mut self.http_config, g);
        or_option(&mut self.api_url, &g.webex_api_url);
        if self.api_url.is_none() {
            return Err("no global Webex URL set".into());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Discord, Microsoft Teams

/// Notifications to a Discord webhook.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<SecretUrl>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub webhook_url_file: String,
    /// Plain message content above the embed.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub content: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub avatar_url: String,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        DiscordConfig {
            send_resolved: true,
            http_config: None,
            webhook_url: None,
            webhook_url_file: String::new(),
            content: String::new(),
            title: tmpl("discord.default.title"),
            message: tmpl("discord.default.message"),
            username: String::new(),
            avatar_url: String::new(),
        }
    }
}

fn validate_webhook_url(url: &Option<SecretUrl>, file: &str) -> Result<(), String> {
    if url.is_none() && file.is_empty() {
        return Err("one of webhook_url or webhook_url_file must be configured".into());
    }
    at_most_one(url.is_some(), !file.is_empty(), "webhook_url", "webhook_url_file")
}

impl Integration for DiscordConfig {
    const KIND: &'static str = "discord";

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        validate_webhook_url(&self.webhook_url, &self.webhook_url_file)
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        inherit_http(&mut self.http_config, g);
        Ok(())
    }
}

/// Notifications to a Microsoft Teams incoming webhook (legacy connector cards).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MsTeamsConfig {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<SecretUrl>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub webhook_url_file: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub summary: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub text: String,
}

impl Default for MsTeamsConfig {
    fn default() -> Self {
        MsTeamsConfig {
            send_resolved: true,
            http_config: None,
            webhook_url: None,
            webhook_url_file: String::new(),
            title: tmpl("msteams.default.title"),
            summary: tmpl("msteams.default.summary"),
            text: tmpl("msteams.default.text"),
        }
    }
}

impl Integration for MsTeamsConfig {
    const KIND: &'static str = "msteams";

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        validate_webhook_url(&self.webhook_url, &self.webhook_url_file)
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        inherit_http(&mut self.http_config, g);
        Ok(())
    }
}

/// Notifications to Microsoft Teams through a Workflows (Power Automate) webhook.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MsTeamsV2Config {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<SecretUrl>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub webhook_url_file: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub text: String,
}

impl Default for MsTeamsV2Config {
    fn default() -> Self {
        MsTeamsV2Config {
            send_resolved: true,
            http_config: None,
            webhook_url: None,
            webhook_url_file: String::new(),
            title: tmpl("msteamsv2.default.title"),
            text: tmpl("msteamsv2.default.text"),
        }
    }
}

impl Integration for MsTeamsV2Config {
    const KIND: &'static str = "msteamsv2";

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        validate_webhook_url(&self.webhook_url, &self.webhook_url_file)
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        match &mut self.http_config {
            None => self.http_config = Some(g.http_config.clone()),
            // A partial http_config inherits only the global proxy URL (upstream config.go).
            Some(h) if h.proxy_url.is_none() => h.proxy_url.clone_from(&g.http_config.proxy_url),
            Some(_) => {}
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Jira

/// A templated Jira field: written as a plain template string, or as `{template,
/// enable_update}`. `enable_update: false` leaves the field alone when an issue is updated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JiraFieldConfig {
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub template: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_update: Option<bool>,
}

impl JiraFieldConfig {
    /// Whether the field is rewritten on updates (default true).
    pub fn enable_update(&self) -> bool {
        self.enable_update.unwrap_or(true)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJiraField {
    #[serde(default)]
    template: String,
    #[serde(default)]
    enable_update: Option<bool>,
}

impl<'de> Deserialize<'de> for JiraFieldConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = JiraFieldConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a template string or a mapping with template and enable_update")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<JiraFieldConfig, E> {
                Ok(JiraFieldConfig {
                    template: v.to_owned(),
                    enable_update: None,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<JiraFieldConfig, A::Error> {
                let raw = RawJiraField::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(JiraFieldConfig {
                    template: raw.template,
                    enable_update: raw.enable_update,
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Creates, updates, resolves and reopens Jira issues. An unset `api_url` comes from
/// `global.jira_api_url`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct JiraConfig {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<Url>,
    /// `auto` (default), `cloud` or `datacenter`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub api_type: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub project: String,
    #[serde(skip_serializing_if = "crate::yaml::is_default")]
    pub summary: JiraFieldConfig,
    #[serde(skip_serializing_if = "crate::yaml::is_default")]
    pub description: JiraFieldConfig,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub priority: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub issue_type: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub reopen_transition: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub resolve_transition: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub wont_fix_resolution: String,
    /// How long after resolution an issue is reopened rather than a new one created.
    #[serde(skip_serializing_if = "crate::yaml::is_default")]
    pub reopen_duration: Duration,
    /// Other issue fields, custom ones included, as YAML values (templated strings allowed).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, Value>,
}

impl Default for JiraConfig {
    fn default() -> Self {
        JiraConfig {
            send_resolved: true,
            http_config: None,
            api_url: None,
            api_type: "auto".into(),
            project: String::new(),
            summary: JiraFieldConfig {
                template: tmpl("jira.default.summary"),
                enable_update: None,
            },
            description: JiraFieldConfig {
                template: tmpl("jira.default.description"),
                enable_update: None,
            },
            labels: Vec::new(),
            priority: tmpl("jira.default.priority"),
            issue_type: String::new(),
            reopen_transition: String::new(),
            resolve_transition: String::new(),
            wont_fix_resolution: String::new(),
            reopen_duration: Duration::ZERO,
            fields: BTreeMap::new(),
        }
    }
}

impl Integration for JiraConfig {
    const KIND: &'static str = "jira";

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        // Upstream reads a `{enable_update: ...}` mapping over the default, so the default
        // template survives when only `enable_update` is given.
        let defaults = JiraConfig::default();
        if self.summary.template.is_empty() {
            self.summary.template = defaults.summary.template;
        }
        if self.description.template.is_empty() {
            self.description.template = defaults.description.template;
        }
        if self.project.is_empty() {
            return Err("missing project in jira_config".into());
        }
        if self.issue_type.is_empty() {
            return Err("missing issue_type in jira_config".into());
        }
        if !matches!(self.api_type.as_str(), "auto" | "cloud" | "datacenter") {
            return Err("unknown api_type on jira_config, must be auto, cloud or datacenter".into());
        }
        Ok(())
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        inherit_http(&mut self.http_config, g);
        or_option(&mut self.api_url, &g.jira_api_url);
        if self.api_url.is_none() {
            return Err("no global Jira Cloud URL set".into());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Rocket.Chat

/// A field of a Rocket.Chat attachment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RocketchatAttachmentField {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short: Option<bool>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub value: String,
}

/// A button on a Rocket.Chat attachment. The keys are upstream's (Go field names lower-cased,
/// without underscores).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RocketchatAttachmentAction {
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub r#type: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub imageurl: String,
    pub iswebview: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub webviewheightratio: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub msg: String,
    pub msginchatwindow: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub msgprocessingtype: String,
}

/// Notifications to Rocket.Chat. Unset token, token ID and URL come from the `rocketchat_*`
/// globals.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RocketchatConfig {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<Url>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<Secret>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub token_id_file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub token_file: String,
    /// Channel override (`#other-channel`, `@username`).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub channel: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub color: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub title_link: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<RocketchatAttachmentField>,
    pub short_fields: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub emoji: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub icon_url: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub image_url: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub thumb_url: String,
    pub link_names: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<RocketchatAttachmentAction>,
}

impl Default for RocketchatConfig {
    fn default() -> Self {
        RocketchatConfig {
            send_resolved: false,
            http_config: None,
            api_url: None,
            token_id: None,
            token_id_file: String::new(),
            token: None,
            token_file: String::new(),
            channel: String::new(),
            color: "{{ if eq .Status \"firing\" }}red{{ else }}green{{ end }}".into(),
            title: tmpl("rocketchat.default.title"),
            title_link: tmpl("rocketchat.default.titlelink"),
            text: tmpl("rocketchat.default.text"),
            fields: Vec::new(),
            short_fields: false,
            emoji: tmpl("rocketchat.default.emoji"),
            icon_url: tmpl("rocketchat.default.iconurl"),
            image_url: String::new(),
            thumb_url: String::new(),
            link_names: false,
            actions: Vec::new(),
        }
    }
}

impl Integration for RocketchatConfig {
    const KIND: &'static str = "rocketchat";
    const NULL_IS_EMPTY: bool = true;

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        at_most_one(self.token.is_some(), !self.token_file.is_empty(), "token", "token_file")?;
        at_most_one(
            self.token_id.is_some(),
            !self.token_id_file.is_empty(),
            "token_id",
            "token_id_file",
        )
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        inherit_http(&mut self.http_config, g);
        or_option(&mut self.api_url, &g.rocketchat_api_url);
        or_option(&mut self.token_id, &g.rocketchat_token_id);
        or_string(&mut self.token_id_file, &g.rocketchat_token_id_file);
        if self.token_id.is_none() && self.token_id_file.is_empty() {
            return Err("no global Rocketchat TokenID set either inline or in a file".into());
        }
        or_option(&mut self.token, &g.rocketchat_token);
        or_string(&mut self.token_file, &g.rocketchat_token_file);
        if self.token.is_none() && self.token_file.is_empty() {
            return Err("no global Rocketchat Token set either inline or in a file".into());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// incident.io

/// Notifications to an incident.io alert source, authenticated by `alert_source_token` or
/// `http_config.authorization`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentioConfig {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    pub url_file: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub alert_source_token: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub alert_source_token_file: String,
    /// The most alerts per message; 0 means all.
    pub max_alerts: u64,
    /// Request timeout; 0 means none.
    pub timeout: GoDuration,
}

impl Default for IncidentioConfig {
    fn default() -> Self {
        IncidentioConfig {
            send_resolved: true,
            http_config: None,
            url: None,
            url_file: String::new(),
            alert_source_token: Secret::default(),
            alert_source_token_file: String::new(),
            max_alerts: 0,
            timeout: GoDuration::ZERO,
        }
    }
}

impl Integration for IncidentioConfig {
    const KIND: &'static str = "incidentio";

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        if self.url.is_none() && self.url_file.is_empty() {
            return Err("one of url or url_file must be configured".into());
        }
        at_most_one(self.url.is_some(), !self.url_file.is_empty(), "url", "url_file")?;
        let has_token = !self.alert_source_token.is_empty() || !self.alert_source_token_file.is_empty();
        at_most_one(
            !self.alert_source_token.is_empty(),
            !self.alert_source_token_file.is_empty(),
            "alert_source_token",
            "alert_source_token_file",
        )?;
        let http_auth = self.http_config.as_ref().map(|h| h.authorization.is_some());
        if http_auth == Some(true) && has_token {
            return Err(
                "cannot specify alert_source_token or alert_source_token_file when using http_config.authorization"
                    .into(),
            );
        }
        // Upstream only insists on credentials when an http_config block is present.
        if http_auth == Some(false) && !has_token {
            return Err("at least one of alert_source_token, alert_source_token_file or http_config.authorization must be configured".into());
        }
        Ok(())
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        inherit_http(&mut self.http_config, g);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Mattermost

/// A field of a Mattermost attachment; `title` and `value` are required.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MattermostField {
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short: Option<bool>,
}

/// A Mattermost message attachment (deprecated in favour of the top-level fields).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MattermostAttachment {
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub fallback: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub color: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub pretext: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub author_name: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub author_link: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub author_icon: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub title_link: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<MattermostField>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub thumb_url: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub footer: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub footer_icon: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub image_url: String,
}

/// Mattermost message properties.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MattermostProps {
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub card: String,
}

/// Mattermost message priority.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MattermostPriority {
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub priority: String,
    #[serde(skip_serializing_if = "is_false")]
    pub requested_ack: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub persistent_notifications: bool,
}

/// Notifications to a Mattermost incoming webhook. An unset webhook URL comes from the
/// `mattermost_*` globals.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MattermostConfig {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<SecretUrl>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub webhook_url_file: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub channel: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub fallback: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub color: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub pretext: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub author_name: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub author_link: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub author_icon: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub title_link: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<MattermostField>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub thumb_url: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub footer: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub footer_icon: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub image_url: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub icon_url: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub icon_emoji: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<MattermostAttachment>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub r#type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub props: Option<MattermostProps>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<MattermostPriority>,
}

impl Default for MattermostConfig {
    fn default() -> Self {
        MattermostConfig {
            send_resolved: true,
            http_config: None,
            webhook_url: None,
            webhook_url_file: String::new(),
            channel: String::new(),
            username: tmpl("mattermost.default.username"),
            text: tmpl("mattermost.default.text"),
            fallback: tmpl("mattermost.default.fallback"),
            color: tmpl("mattermost.default.color"),
            pretext: String::new(),
            author_name: String::new(),
            author_link: String::new(),
            author_icon: String::new(),
            title: tmpl("mattermost.default.title"),
            title_link: tmpl("mattermost.default.titlelink"),
            fields: Vec::new(),
            thumb_url: String::new(),
            footer: String::new(),
            footer_icon: String::new(),
            image_url: String::new(),
            icon_url: String::new(),
            icon_emoji: String::new(),
            attachments: Vec::new(),
            r#type: String::new(),
            props: None,
            priority: None,
        }
    }
}

impl Integration for MattermostConfig {
    const KIND: &'static str = "mattermost";

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        let attachment_fields = self.attachments.iter().flat_map(|a| a.fields.iter());
        for f in self.fields.iter().chain(attachment_fields) {
            if f.title.is_empty() {
                return Err("missing title in Mattermost field configuration".into());
            }
            if f.value.is_empty() {
                return Err("missing value in Mattermost field configuration".into());
            }
        }
        at_most_one(
            self.webhook_url.is_some(),
            !self.webhook_url_file.is_empty(),
            "webhook_url",
            "webhook_url_file",
        )
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        inherit_http(&mut self.http_config, g);
        if self.webhook_url.is_none() && self.webhook_url_file.is_empty() {
            if g.mattermost_webhook_url.is_none() && g.mattermost_webhook_url_file.is_empty() {
                return Err("missing webhook_url or webhook_url_file on mattermost_config".into());
            }
            self.webhook_url.clone_from(&g.mattermost_webhook_url);
            self.webhook_url_file = g.mattermost_webhook_url_file.clone();
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// ntfy and Gotify (Watchfire's own; Alertmanager has neither)

/// The public ntfy server, the default `url` of an ntfy config.
pub const NTFY_URL: &str = "https://ntfy.sh";

/// Watchfire's own integration (Alertmanager has none): notifications to an
/// [ntfy](https://ntfy.sh) server, published as JSON (`POST <url>` with `topic`, `title`,
/// `message`, `priority`, `tags`, `click`, `icon`, `markdown`; see
/// <https://docs.ntfy.sh/publish/#publish-as-json>).
///
/// ```yaml
/// ntfy_configs:
/// - url: https://ntfy.example.com        # default https://ntfy.sh
///   topic: alerts                         # or topic_file
///   access_token_file: /etc/watchfire/ntfy-token
/// ```
///
/// * `send_resolved` (default true).
/// * `url`: the server's base URL; the message is posted to it. Default `https://ntfy.sh`.
/// * `topic` or `topic_file` (exactly one): the topic, rendered as a template. On a public
///   server a topic name is effectively a password, so it is kept as a secret.
/// * `title` [`{{ template "ntfy.default.title" . }}`], `message`
///   [`{{ template "ntfy.default.message" . }}`]: templates. The message is cut to 4096
///   bytes, ntfy's default message size limit (beyond it ntfy turns a message into an
///   attachment); an empty message becomes `(no details)`.
/// * `priority`: a template rendering to 1–5 or `min`, `low`, `default`, `high`, `max`
///   (`urgent`); empty leaves the server's default. Default: `high` when firing, `default`
///   when resolved.
/// * `tags`: templates, each an ntfy tag or emoji short code; empty results are dropped.
///   Default: `rotating_light` when firing, `white_check_mark` when resolved.
/// * `click`: a template, the URL opened when the notification is tapped. Default: the
///   Alertmanager URL when `--web.external-url` is set, else none.
/// * `icon`: a template, the URL of the notification's icon.
/// * `markdown`: the message is Markdown (default false).
/// * `access_token` or `access_token_file`: an ntfy access token (`tk_…`), sent as
///   `Authorization: Bearer`. Alternatively `http_config.basic_auth` or
///   `http_config.authorization` (not together with a token).
/// * `http_config`, `timeout` (Go duration; 0, the default, means none).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NtfyConfig {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub topic: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub topic_file: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub priority: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub click: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub icon: String,
    #[serde(skip_serializing_if = "is_false")]
    pub markdown: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub access_token: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub access_token_file: String,
    #[serde(skip_serializing_if = "crate::yaml::is_default")]
    pub timeout: GoDuration,
}

/// The default `click` of ntfy and Gotify: the Alertmanager URL, when an external URL is known.
const CLICK_DEFAULT: &str = "{{ if .ExternalURL }}{{ template \"__alertmanagerURL\" . }}{{ end }}";

impl Default for NtfyConfig {
    fn default() -> Self {
        NtfyConfig {
            send_resolved: true,
            http_config: None,
            url: Url::parse(NTFY_URL).ok(),
            topic: Secret::default(),
            topic_file: String::new(),
            title: tmpl("ntfy.default.title"),
            message: tmpl("ntfy.default.message"),
            priority: "{{ if eq .Status \"firing\" }}high{{ else }}default{{ end }}".into(),
            tags: vec!["{{ if eq .Status \"firing\" }}rotating_light{{ else }}white_check_mark{{ end }}".into()],
            click: CLICK_DEFAULT.into(),
            icon: String::new(),
            markdown: false,
            access_token: Secret::default(),
            access_token_file: String::new(),
            timeout: GoDuration::ZERO,
        }
    }
}

/// Whether an HTTP client config sets an `Authorization` header (basic or otherwise).
fn http_auth_set(h: Option<&HttpClientConfig>) -> bool {
    h.is_some_and(|h| h.basic_auth.is_some() || h.effective_authorization().is_some())
}

impl Integration for NtfyConfig {
    const KIND: &'static str = "ntfy";

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        if self.topic.is_empty() && self.topic_file.is_empty() {
            return Err("one of topic or topic_file must be configured".into());
        }
        at_most_one(
            !self.topic.is_empty(),
            !self.topic_file.is_empty(),
            "topic",
            "topic_file",
        )?;
        let token = !self.access_token.is_empty() || !self.access_token_file.is_empty();
        at_most_one(
            !self.access_token.is_empty(),
            !self.access_token_file.is_empty(),
            "access_token",
            "access_token_file",
        )?;
        if token && http_auth_set(self.http_config.as_ref()) {
            return Err(
                "access_token and access_token_file cannot be used with http_config.basic_auth or authorization".into(),
            );
        }
        if self.url.is_none() {
            self.url = Url::parse(NTFY_URL).ok();
        }
        Ok(())
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        // A token of the integration's own wins over authentication in the global http_config.
        if self.http_config.is_none() && (!self.access_token.is_empty() || !self.access_token_file.is_empty()) {
            let mut h = g.http_config.clone();
            h.basic_auth = None;
            h.authorization = None;
            h.bearer_token = None;
            h.bearer_token_file = None;
            self.http_config = Some(h);
        }
        inherit_http(&mut self.http_config, g);
        Ok(())
    }
}

/// Watchfire's own integration (Alertmanager has none): notifications to a
/// [Gotify](https://gotify.net) server (`POST <url>/message` with an application token in
/// `X-Gotify-Key`, JSON `title`, `message`, `priority`, `extras`; see
/// <https://gotify.net/api-docs#/message/createMessage>).
///
/// ```yaml
/// gotify_configs:
/// - url: https://gotify.example.com
///   token_file: /etc/watchfire/gotify-app-token
/// ```
///
/// * `send_resolved` (default true).
/// * `url` (required): the server's base URL; `/message` is appended to its path.
/// * `token` or `token_file` (exactly one): the application token.
/// * `title` [`{{ template "gotify.default.title" . }}`], `message`
///   [`{{ template "gotify.default.message" . }}`]: templates; an empty message becomes
///   `(no details)` (Gotify refuses empty ones).
/// * `priority`: a template rendering to an integer (Gotify's clients: 0 silent, 1–3 quiet,
///   4–7 with sound, 8–10 high priority). Default: 8 when firing, 4 when resolved.
/// * `markdown`: sets `extras."client::display".contentType` to `text/markdown`.
/// * `click`: a template, sets `extras."client::notification".click.url`. Default: the
///   Alertmanager URL when `--web.external-url` is set, else none.
/// * `extras`: more message extras (namespaced keys, values rendered as templates where they
///   are strings, structured JSON when a rendered string is a JSON object or list); merged
///   over the ones above.
/// * `http_config`, `timeout` (Go duration; 0, the default, means none).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GotifyConfig {
    pub send_resolved: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpClientConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub token: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub token_file: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub priority: String,
    #[serde(skip_serializing_if = "is_false")]
    pub markdown: bool,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub click: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
    pub extras: BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "crate::yaml::is_default")]
    pub timeout: GoDuration,
}

impl Default for GotifyConfig {
    fn default() -> Self {
        GotifyConfig {
            send_resolved: true,
            http_config: None,
            url: None,
            token: Secret::default(),
            token_file: String::new(),
            title: tmpl("gotify.default.title"),
            message: tmpl("gotify.default.message"),
            priority: "{{ if eq .Status \"firing\" }}8{{ else }}4{{ end }}".into(),
            markdown: false,
            click: CLICK_DEFAULT.into(),
            extras: BTreeMap::new(),
            timeout: GoDuration::ZERO,
        }
    }
}

impl Integration for GotifyConfig {
    const KIND: &'static str = "gotify";

    fn send_resolved(&self) -> bool {
        self.send_resolved
    }

    fn http_config(&self) -> Option<&HttpClientConfig> {
        self.http_config.as_ref()
    }

    fn validate(&mut self) -> Result<(), String> {
        if self.url.is_none() {
            return Err("missing url in gotify_config".into());
        }
        if self.token.is_empty() && self.token_file.is_empty() {
            return Err("one of token or token_file must be configured".into());
        }
        at_most_one(
            !self.token.is_empty(),
            !self.token_file.is_empty(),
            "token",
            "token_file",
        )
    }

    fn inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        inherit_http(&mut self.http_config, g);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_keys_are_canonicalised_like_go() {
        assert_eq!(canonical_header_key("subject"), "Subject");
        assert_eq!(canonical_header_key("in-reply-TO"), "In-Reply-To");
        assert_eq!(canonical_header_key("x header"), "x header");
    }

    fn parse(receiver_yaml: &str) -> Result<crate::alertmanager::Config, String> {
        let src = format!("route: {{receiver: r}}\nreceivers:\n- name: r\n{receiver_yaml}");
        crate::alertmanager::Config::parse(&src, std::path::Path::new("am.yml")).map_err(|e| e.to_string())
    }

    #[test]
    fn ntfy_config_defaults_and_checks() {
        let c = parse("  ntfy_configs:\n  - topic: alerts\n").unwrap();
        let n = &c.receivers[0].value.ntfy_configs[0].value;
        assert!(n.send_resolved);
        assert_eq!(n.url.as_ref().unwrap().as_str(), NTFY_URL);
        assert_eq!(n.title, "{{ template \"ntfy.default.title\" . }}");
        assert_eq!(n.tags.len(), 1);
        assert!(n.http_config.is_some(), "the global http_config is inherited");

        let err = |y: &str| parse(y).unwrap_err();
        assert!(err("  ntfy_configs:\n  - topic: a\n    topik: b\n").contains("topik"));
        assert!(err("  ntfy_configs:\n  - url: http://n\n").contains("one of topic or topic_file must be configured"));
        assert!(err("  ntfy_configs:\n  - {topic: a, topic_file: /f}\n").contains("at most one of topic & topic_file"));
        assert!(
            err("  ntfy_configs:\n  - {topic: a, access_token: t, http_config: {basic_auth: {username: u}}}\n")
                .contains("cannot be used with http_config")
        );
        assert!(err("  ntfy_configs:\n  - {topic: a, url: 'ftp://x'}\n").contains("unsupported scheme"));

        // A token of its own does not combine with authentication from the global http_config.
        let c = parse("  ntfy_configs:\n  - {topic: a, access_token: tk_x}\nglobal:\n  http_config: {basic_auth: {username: u}}\n")
            .unwrap();
        let h = c.receivers[0].value.ntfy_configs[0].value.http_config.as_ref().unwrap();
        assert!(h.basic_auth.is_none());
    }

    #[test]
    fn gotify_config_defaults_and_checks() {
        let c = parse("  gotify_configs:\n  - {url: 'https://g.example', token: t, send_resolved: false}\n").unwrap();
        let g = &c.receivers[0].value.gotify_configs[0].value;
        assert!(!g.send_resolved);
        assert_eq!(g.message, "{{ template \"gotify.default.message\" . }}");
        assert_eq!(c.receivers[0].value.integration_count(), 1);
        let err = |y: &str| parse(y).unwrap_err();
        assert!(err("  gotify_configs:\n  - {token: t}\n").contains("missing url in gotify_config"));
        assert!(err("  gotify_configs:\n  - {url: 'http://g'}\n").contains("one of token or token_file"));
        assert!(err("  gotify_configs:\n  - {url: 'http://g', token: t, token_file: f}\n").contains("at most one"));
        assert!(err("  gotify_configs:\n  - {url: 'http://g', token: t, prio: 1}\n").contains("prio"));
        assert!(err("  gotify_configs:\n  -\n").contains("missing gotify config"));
    }

    #[test]
    fn pushover_api_url_is_optional() {
        let c = parse("  pushover_configs:\n  - {user_key: u, token: t, api_url: 'http://127.0.0.1:1/x'}\n").unwrap();
        let p = &c.receivers[0].value.pushover_configs[0].value;
        assert_eq!(p.api_url.as_ref().unwrap().as_str(), "http://127.0.0.1:1/x");
        let c = parse("  pushover_configs:\n  - {user_key: u, token: t}\n").unwrap();
        assert!(c.receivers[0].value.pushover_configs[0].value.api_url.is_none());
    }

    #[test]
    fn sns_destination_rule_matches_upstream_quirk() {
        let mut c = SnsConfig {
            topic_arn: "t".into(),
            ..SnsConfig::default()
        };
        assert!(c.validate().is_ok());
        c.phone_number = "p".into();
        assert!(c.validate().is_err());
        c.target_arn = "a".into();
        assert!(c.validate().is_ok(), "all three set passes upstream's chained XOR");
    }
}
