//! `alertmanager.yml`: the global defaults, the routing tree, inhibition rules, receivers,
//! templates and time intervals (upstream `config/config.go`).
//!
//! [`Config::load`] reads a file the way Alertmanager's `config.LoadFile` does: strict keys,
//! upstream's defaults, every receiver integration filled in from `global` where it leaves a
//! value unset (SMTP settings, API URLs and keys, `http_config`), and upstream's checks, with
//! each error pointing at the line it is about. Route values that children inherit
//! (`receiver`, `group_by`, the intervals) stay `None` where unset; [`Route::opts`] resolves
//! them against the parent.
//!
//! Submodules: [`matchers`] (the matcher grammars and the matcher type), [`receivers`] (every
//! integration), [`timeinterval`] (time interval ranges), [`common`] (URL, address and duration
//! value types).
//!
//! Not supported: the experimental `event_recorder` block is refused as "not supported yet",
//! and so is OAuth 2.0 in any `http_config` (see [`crate::http`]).

pub mod common;
pub mod matchers;
pub mod receivers;
pub mod timeinterval;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use watchfire_model::Duration;

use crate::error::{Error, Result};
use crate::http::{Header, HttpClientConfig, TlsConfig};
use crate::secret::Secret;
use crate::yaml::{Location, Spanned, Unsupported, refuse_unsupported};
use common::{HostPort, SecretUrl, Url, is_false, nullable};
use matchers::{AmMatcher, MatchRegexps, Matchers, Mode, is_valid_label_name, legacy_match};
use receivers::{Integration, Receiver};
use timeinterval::TimeInterval;

/// The whole `alertmanager.yml`, after defaults, global inheritance and validation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    /// Defaults for the rest of the file.
    pub global: GlobalConfig,
    /// The root of the routing tree.
    pub route: Spanned<Route>,
    /// Rules that mute alerts while other alerts fire.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inhibit_rules: Vec<Spanned<InhibitRule>>,
    /// Notification receivers, by unique name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub receivers: Vec<Spanned<Receiver>>,
    /// Notification template files (globs, relative to the config file's directory).
    pub templates: Vec<String>,
    /// Deprecated alias of `time_intervals`; both share one namespace.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mute_time_intervals: Vec<Spanned<NamedTimeInterval>>,
    /// Named time intervals that routes mute or activate by.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub time_intervals: Vec<Spanned<NamedTimeInterval>>,
    /// OpenTelemetry tracing of Alertmanager itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Spanned<TracingConfig>>,
}

/// The file as read, before the checks that need the whole of it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    global: Option<Spanned<GlobalConfig>>,
    #[serde(default)]
    route: Option<Spanned<Route>>,
    #[serde(default, deserialize_with = "inhibit_rule_list")]
    inhibit_rules: Vec<Spanned<InhibitRule>>,
    #[serde(default, deserialize_with = "nullable")]
    receivers: Vec<Spanned<Receiver>>,
    #[serde(default, deserialize_with = "nullable")]
    templates: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    mute_time_intervals: Vec<Spanned<NamedTimeInterval>>,
    #[serde(default, deserialize_with = "nullable")]
    time_intervals: Vec<Spanned<NamedTimeInterval>>,
    #[serde(default)]
    tracing: Option<Spanned<TracingConfig>>,
    #[serde(default)]
    event_recorder: Unsupported,
}

/// An empty list item (`- `) in `inhibit_rules` is an empty rule, as upstream accepts it.
fn inhibit_rule_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Spanned<InhibitRule>>, D::Error> {
    let items = Option::<Vec<Spanned<Option<InhibitRule>>>>::deserialize(d)?.unwrap_or_default();
    Ok(items
        .into_iter()
        .map(|s| Spanned::new(s.value.unwrap_or_default(), s.referenced, s.defined))
        .collect())
}

/// Global defaults. URL fields default to the public services' endpoints; a value set to
/// null removes the default.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    /// How long after its last update an alert without an end time is considered resolved.
    pub resolve_timeout: Duration,
    /// The HTTP client settings of integrations that have none of their own.
    #[serde(deserialize_with = "nullable")]
    pub http_config: HttpClientConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jira_api_url: Option<Url>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub smtp_from: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub smtp_hello: String,
    #[serde(skip_serializing_if = "HostPort::is_empty")]
    pub smtp_smarthost: HostPort,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub smtp_auth_username: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub smtp_auth_password: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub smtp_auth_password_file: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub smtp_auth_secret: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub smtp_auth_secret_file: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub smtp_auth_identity: String,
    pub smtp_require_tls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_tls_config: Option<TlsConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_force_implicit_tls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack_api_url: Option<SecretUrl>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub slack_api_url_file: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub slack_app_token: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub slack_app_token_file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack_app_url: Option<Url>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pagerduty_url: Option<Url>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opsgenie_api_url: Option<Url>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub opsgenie_api_key: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub opsgenie_api_key_file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wechat_api_url: Option<Url>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub wechat_api_secret: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub wechat_api_secret_file: String,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub wechat_api_corp_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub victorops_api_url: Option<Url>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub victorops_api_key: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub victorops_api_key_file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telegram_api_url: Option<Url>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Secret::is_empty")]
    pub telegram_bot_token: Secret,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub telegram_bot_token_file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webex_api_url: Option<Url>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rocketchat_api_url: Option<Url>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rocketchat_token: Option<Secret>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub rocketchat_token_file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rocketchat_token_id: Option<Secret>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub rocketchat_token_id_file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mattermost_webhook_url: Option<SecretUrl>,
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub mattermost_webhook_url_file: String,
}

/// A default URL (a constant known to be valid).
fn default_url(s: &str) -> Option<Url> {
    Url::parse(s).ok()
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            resolve_timeout: Duration::from_secs(5 * 60),
            http_config: HttpClientConfig::default(),
            jira_api_url: None,
            smtp_from: String::new(),
            smtp_hello: "localhost".into(),
            smtp_smarthost: HostPort::default(),
            smtp_auth_username: String::new(),
            smtp_auth_password: Secret::default(),
            smtp_auth_password_file: String::new(),
            smtp_auth_secret: Secret::default(),
            smtp_auth_secret_file: String::new(),
            smtp_auth_identity: String::new(),
            smtp_require_tls: true,
            smtp_tls_config: Some(TlsConfig::default()),
            smtp_force_implicit_tls: None,
            slack_api_url: None,
            slack_api_url_file: String::new(),
            slack_app_token: Secret::default(),
            slack_app_token_file: String::new(),
            slack_app_url: default_url("https://slack.com/api/chat.postMessage"),
            pagerduty_url: default_url("https://events.pagerduty.com/v2/enqueue"),
            opsgenie_api_url: default_url("https://api.opsgenie.com/"),
            opsgenie_api_key: Secret::default(),
            opsgenie_api_key_file: String::new(),
            wechat_api_url: default_url("https://qyapi.weixin.qq.com/cgi-bin/"),
            wechat_api_secret: Secret::default(),
            wechat_api_secret_file: String::new(),
            wechat_api_corp_id: String::new(),
            victorops_api_url: default_url("https://alert.victorops.com/integrations/generic/20131114/alert/"),
            victorops_api_key: Secret::default(),
            victorops_api_key_file: String::new(),
            telegram_api_url: default_url("https://api.telegram.org"),
            telegram_bot_token: Secret::default(),
            telegram_bot_token_file: String::new(),
            webex_api_url: default_url("https://webexapis.com/v1/messages"),
            rocketchat_api_url: default_url("https://open.rocket.chat/"),
            rocketchat_token: None,
            rocketchat_token_file: String::new(),
            rocketchat_token_id: None,
            rocketchat_token_id_file: String::new(),
            mattermost_webhook_url: None,
            mattermost_webhook_url_file: String::new(),
        }
    }
}

impl GlobalConfig {
    /// Upstream's "at most one of X & X_file" rules and the Slack token/URL exclusion.
    fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        let mut pair = |a: bool, b: bool, a_name: &str, b_name: &str| {
            if a && b {
                errs.push(format!("at most one of {a_name} & {b_name} must be configured"));
            }
        };
        let has_app_token = !self.slack_app_token.is_empty() || !self.slack_app_token_file.is_empty();
        let has_api_url = self.slack_api_url.is_some() || !self.slack_api_url_file.is_empty();
        pair(
            !self.slack_app_token.is_empty(),
            !self.slack_app_token_file.is_empty(),
            "slack_app_token",
            "slack_app_token_file",
        );
        pair(
            self.slack_api_url.is_some(),
            !self.slack_api_url_file.is_empty(),
            "slack_api_url",
            "slack_api_url_file",
        );
        // Setting slack_api_url equal to slack_app_url alongside a token is an old workaround
        // upstream still accepts.
        let api_url = self.slack_api_url.as_ref().map_or("", SecretUrl::expose);
        let app_url = self.slack_app_url.as_ref().map_or("", Url::as_str);
        pair(
            has_app_token && api_url != app_url,
            has_api_url,
            "slack_app_token/slack_app_token_file",
            "slack_api_url/slack_api_url_file",
        );
        pair(
            !self.opsgenie_api_key.is_empty(),
            !self.opsgenie_api_key_file.is_empty(),
            "opsgenie_api_key",
            "opsgenie_api_key_file",
        );
        pair(
            !self.victorops_api_key.is_empty(),
            !self.victorops_api_key_file.is_empty(),
            "victorops_api_key",
            "victorops_api_key_file",
        );
        pair(
            !self.telegram_bot_token.is_empty(),
            !self.telegram_bot_token_file.is_empty(),
            "telegram_bot_token",
            "telegram_bot_token_file",
        );
        pair(
            !self.smtp_auth_password.is_empty(),
            !self.smtp_auth_password_file.is_empty(),
            "smtp_auth_password",
            "smtp_auth_password_file",
        );
        pair(
            self.rocketchat_token.is_some(),
            !self.rocketchat_token_file.is_empty(),
            "rocketchat_token",
            "rocketchat_token_file",
        );
        pair(
            self.rocketchat_token_id.is_some(),
            !self.rocketchat_token_id_file.is_empty(),
            "rocketchat_token_id",
            "rocketchat_token_id_file",
        );
        pair(
            !self.smtp_auth_secret.is_empty(),
            !self.smtp_auth_secret_file.is_empty(),
            "smtp_auth_secret",
            "smtp_auth_secret_file",
        );
        pair(
            !self.wechat_api_secret.is_empty(),
            !self.wechat_api_secret_file.is_empty(),
            "wechat_api_secret",
            "wechat_api_secret_file",
        );
        pair(
            self.mattermost_webhook_url.is_some(),
            !self.mattermost_webhook_url_file.is_empty(),
            "mattermost_webhook_url",
            "mattermost_webhook_url_file",
        );
        if let Some(Err(e)) = self.smtp_tls_config.as_ref().map(TlsConfig::validate) {
            errs.push(format!("smtp_tls_config: {e}"));
        }
        errs
    }
}

/// A node of the routing tree. Values a child does not set are inherited from its parent
/// (see [`Route::opts`]); `matchers`, `continue` and the time interval lists are not.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The receiver of alerts that end here; required on the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<Spanned<String>>,
    /// Labels to group alerts by; `['...']` groups by all labels, `[]` disables grouping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<Spanned<String>>>,
    /// Deprecated: label values alerts must equal.
    #[serde(
        default,
        deserialize_with = "legacy_match",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub r#match: BTreeMap<String, String>,
    /// Deprecated: regular expressions label values must match in full.
    #[serde(default, skip_serializing_if = "MatchRegexps::is_empty")]
    pub match_re: MatchRegexps,
    /// Matchers alerts must all satisfy, e.g. `severity=~"critical|page"`.
    #[serde(default, skip_serializing_if = "Matchers::is_empty")]
    pub matchers: Matchers,
    /// Time intervals during which notifications of this route are muted.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub mute_time_intervals: Vec<Spanned<String>>,
    /// Time intervals outside which notifications of this route are muted.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub active_time_intervals: Vec<Spanned<String>>,
    /// Whether matching continues with the following sibling routes.
    #[serde(default)]
    pub r#continue: bool,
    /// Child routes, tried in order.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Spanned<Route>>,
    /// How long to wait before the first notification of a new group (root default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<Duration>,
    /// How long to wait before notifying about new alerts of a group (root default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<Duration>,
    /// How long to wait before repeating a notification (root default 4h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<Duration>,
    /// Labels (templated values) attached to the route and merged into its children's.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// How a route groups alerts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// One group per distinct label set (`group_by: ['...']`).
    All,
    /// One group per combination of these labels' values (none: one group for the route).
    Labels(Vec<String>),
}

/// The settings a route node works with once inheritance is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteOpts {
    pub receiver: String,
    pub group_by: GroupBy,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub labels: BTreeMap<String, String>,
}

impl Default for RouteOpts {
    /// What the root route inherits (dispatch/route.go DefaultRouteOpts).
    fn default() -> Self {
        RouteOpts {
            receiver: String::new(),
            group_by: GroupBy::Labels(Vec::new()),
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(5 * 60),
            repeat_interval: Duration::from_secs(4 * 3600),
            labels: BTreeMap::new(),
        }
    }
}

impl Route {
    /// The receiver name, if this route sets one.
    pub fn receiver_name(&self) -> Option<&str> {
        self.receiver.as_ref().map(|r| r.value.as_str())
    }

    /// The route's own grouping, if it sets `group_by`.
    pub fn grouping(&self) -> Option<GroupBy> {
        let list = self.group_by.as_ref()?;
        if list.iter().any(|l| l.value == "...") {
            return Some(GroupBy::All);
        }
        Some(GroupBy::Labels(list.iter().map(|l| l.value.clone()).collect()))
    }

    /// Names of the time intervals that mute this route.
    pub fn mute_time_interval_names(&self) -> impl Iterator<Item = &str> {
        self.mute_time_intervals.iter().map(|s| s.value.as_str())
    }

    /// Names of the time intervals outside which this route is muted.
    pub fn active_time_interval_names(&self) -> impl Iterator<Item = &str> {
        self.active_time_intervals.iter().map(|s| s.value.as_str())
    }

    /// All the route's matchers (`match`, `match_re` and `matchers`), sorted as upstream.
    pub fn all_matchers(&self) -> Vec<AmMatcher> {
        matchers::combine(&self.r#match, &self.match_re, &self.matchers)
    }

    /// This route's settings given its parent's (use `RouteOpts::default()` for the root).
    pub fn opts(&self, parent: &RouteOpts) -> RouteOpts {
        let mut opts = parent.clone();
        if let Some(r) = self.receiver_name().filter(|r| !r.is_empty()) {
            opts.receiver = r.to_owned();
        }
        if let Some(g) = self.grouping() {
            opts.group_by = g;
        }
        opts.group_wait = self.group_wait.unwrap_or(opts.group_wait);
        opts.group_interval = self.group_interval.unwrap_or(opts.group_interval);
        opts.repeat_interval = self.repeat_interval.unwrap_or(opts.repeat_interval);
        opts.labels
            .extend(self.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        opts
    }

    /// Upstream's per-route checks (config.go Route.UnmarshalYAML), each at its position.
    fn validate(&self, at: &Location, errors: &mut Vec<Error>) {
        for name in self.labels.keys() {
            if !is_valid_label_name(Mode::Fallback, name) {
                errors.push(Error::invalid(format!("invalid label name {name:?} in route labels")).at(at));
            }
        }
        if let Some(list) = &self.group_by {
            let mut seen = HashSet::new();
            let has_all = list.iter().any(|l| l.value == "...");
            for label in list {
                if label.value == "..." {
                    continue;
                }
                let error = if !is_valid_label_name(Mode::Fallback, &label.value) {
                    format!("invalid label name {:?} in group_by list", label.value)
                } else if has_all {
                    "cannot have wildcard group_by (`...`) and other labels at the same time".to_owned()
                } else if !seen.insert(label.value.as_str()) {
                    format!("duplicated label {:?} in group_by", label.value)
                } else {
                    continue;
                };
                errors.push(Error::invalid(error).at(&label.referenced));
            }
        }
        if self.group_interval.is_some_and(Duration::is_zero) {
            errors.push(Error::invalid("group_interval cannot be zero").at(at));
        }
        if self.repeat_interval.is_some_and(Duration::is_zero) {
            errors.push(Error::invalid("repeat_interval cannot be zero").at(at));
        }
        for child in &self.routes {
            child.value.validate(&child.referenced, errors);
        }
    }

    /// Every route of the tree below and including this one, depth first.
    pub fn walk<'a>(&'a self, out: &mut Vec<&'a Route>) {
        out.push(self);
        for child in &self.routes {
            child.value.walk(out);
        }
    }
}

/// Mutes alerts matching the target matchers while an alert matching the source matchers
/// fires, if both have equal values for the `equal` labels.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRule {
    /// An optional name, used in metrics.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Deprecated: label values source alerts must equal.
    #[serde(
        default,
        deserialize_with = "legacy_match",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub source_match: BTreeMap<String, String>,
    /// Deprecated: regular expressions source alerts' label values must match.
    #[serde(default, skip_serializing_if = "MatchRegexps::is_empty")]
    pub source_match_re: MatchRegexps,
    #[serde(default, skip_serializing_if = "Matchers::is_empty")]
    pub source_matchers: Matchers,
    /// Deprecated: label values target alerts must equal.
    #[serde(
        default,
        deserialize_with = "legacy_match",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub target_match: BTreeMap<String, String>,
    /// Deprecated: regular expressions target alerts' label values must match.
    #[serde(default, skip_serializing_if = "MatchRegexps::is_empty")]
    pub target_match_re: MatchRegexps,
    #[serde(default, skip_serializing_if = "Matchers::is_empty")]
    pub target_matchers: Matchers,
    /// Labels whose values must be equal in source and target.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// All source matchers (`source_match`, `source_match_re`, `source_matchers`), sorted.
    pub fn all_source_matchers(&self) -> Vec<AmMatcher> {
        matchers::combine(&self.source_match, &self.source_match_re, &self.source_matchers)
    }

    /// All target matchers (`target_match`, `target_match_re`, `target_matchers`), sorted.
    pub fn all_target_matchers(&self) -> Vec<AmMatcher> {
        matchers::combine(&self.target_match, &self.target_match_re, &self.target_matchers)
    }
}

/// A named list of time intervals; a route refers to it by name.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTimeInterval {
    #[serde(default)]
    pub name: String,
    /// The intervals; any of them matching means the named interval is active.
    #[serde(default, deserialize_with = "nullable")]
    pub time_intervals: Vec<TimeInterval>,
}

/// The OTLP exporter for traces.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// `grpc` (default) or `http`.
    pub client_type: String,
    /// Where to send spans (`host:port`); required.
    pub endpoint: String,
    /// The share of traces sampled, 0 to 1.
    pub sampling_fraction: f64,
    /// Send without TLS.
    #[serde(skip_serializing_if = "is_false")]
    pub insecure: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// Extra request headers.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Header>,
    /// `gzip` or empty.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub compression: String,
    /// Export timeout; 0 means the exporter's default.
    #[serde(skip_serializing_if = "crate::yaml::is_default")]
    pub timeout: Duration,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            client_type: "grpc".into(),
            endpoint: String::new(),
            sampling_fraction: 0.0,
            insecure: false,
            tls_config: None,
            headers: BTreeMap::new(),
            compression: String::new(),
            timeout: Duration::ZERO,
        }
    }
}

impl TracingConfig {
    fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        if !matches!(self.client_type.as_str(), "grpc" | "http") {
            errs.push(format!(
                "expected tracing client type to be to be http or grpc, but got {}",
                self.client_type
            ));
        }
        if self.endpoint.is_empty() {
            errs.push("tracing endpoint must be set".into());
        }
        if !self.compression.is_empty() && self.compression != "gzip" {
            errs.push(format!(
                "invalid compression type {} provided, valid options: gzip",
                self.compression
            ));
        }
        if let Some(Err(e)) = self.tls_config.as_ref().map(TlsConfig::validate) {
            errs.push(e.to_string());
        }
        errs
    }
}

impl Config {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let src = crate::yaml::read_file(path)?;
        Config::parse(&src, path)
    }

    /// Parses and checks `src`, the contents of `path` (used in messages only).
    pub fn parse(src: &str, path: &Path) -> Result<Config> {
        let raw: RawConfig = crate::yaml::from_str(src, path)?;
        let mut errors = Vec::new();
        refuse_unsupported(&mut errors, "event_recorder", &raw.event_recorder);
        let RawConfig {
            global,
            route,
            inhibit_rules,
            mut receivers,
            templates,
            mute_time_intervals,
            time_intervals,
            tracing,
            event_recorder: _,
        } = raw;

        // An absent or empty `global` block means all defaults.
        let (global, global_at) = match global {
            Some(g) => (g.value, Some(g.referenced)),
            None => (GlobalConfig::default(), None),
        };
        let at_global = |e: Error| match &global_at {
            Some(at) => located(e, at),
            None => e,
        };
        for msg in global.validate() {
            errors.push(at_global(Error::invalid(format!("global: {msg}"))));
        }
        if let Err(e) = global.http_config.validate() {
            errors.push(at_global(e.context("global: http_config")));
        }

        let mut receiver_names = HashSet::new();
        for r in &mut receivers {
            check_receiver(r, &global, &mut receiver_names, &mut errors);
        }

        for rule in &inhibit_rules {
            for label in &rule.value.equal {
                if !is_valid_label_name(Mode::Fallback, label) {
                    errors.push(
                        Error::invalid(format!("invalid label name {label:?} in equal list")).at(&rule.referenced),
                    );
                }
            }
        }

        let mut interval_names = HashSet::new();
        for (list, what) in [
            (&mute_time_intervals, "mute time interval"),
            (&time_intervals, "time interval"),
        ] {
            for ti in list {
                if ti.value.name.is_empty() {
                    errors.push(Error::invalid(format!("missing name in {what}")).at(&ti.referenced));
                } else if !interval_names.insert(ti.value.name.as_str()) {
                    errors.push(Error::invalid(format!("{what} {:?} is not unique", ti.value.name)).at(&ti.referenced));
                }
            }
        }

        if let Some(t) = &tracing {
            for msg in t.value.validate() {
                errors.push(Error::invalid(msg).at(&t.referenced));
            }
        }

        let route = match route {
            Some(route) => {
                check_routes(&route, &receiver_names, &interval_names, &mut errors);
                Some(route)
            }
            None => {
                errors.push(Error::invalid("no route provided in config"));
                None
            }
        };

        Error::from_list(errors).map_err(|e| e.in_file(path))?;
        let Some(route) = route else {
            return crate::error::invalid("no route provided in config").map_err(|e| e.in_file(path));
        };
        Ok(Config {
            global,
            route,
            inhibit_rules,
            receivers,
            templates,
            mute_time_intervals,
            time_intervals,
            tracing,
        })
    }

    /// The receiver with this name.
    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().map(|r| &r.value).find(|r| r.name == name)
    }

    /// All named time intervals, from `time_intervals` and `mute_time_intervals`.
    pub fn named_time_intervals(&self) -> impl Iterator<Item = &NamedTimeInterval> {
        self.mute_time_intervals
            .iter()
            .chain(&self.time_intervals)
            .map(|t| &t.value)
    }

    /// The template files: each `templates` glob, relative ones taken from `config_dir`,
    /// expanded in order. A glob that matches nothing contributes nothing, as upstream.
    pub fn template_paths(&self, config_dir: &Path) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for pattern in &self.templates {
            let full = if Path::new(pattern).is_absolute() {
                pattern.clone()
            } else {
                // The directory is literal text, not part of the pattern.
                let dir = glob::Pattern::escape(&config_dir.to_string_lossy());
                format!("{dir}{}{pattern}", std::path::MAIN_SEPARATOR)
            };
            let paths =
                glob::glob(&full).map_err(|e| Error::invalid(format!("templates: bad pattern {pattern:?}: {e}")))?;
            for p in paths {
                out.push(p.map_err(|e| Error::invalid(format!("templates: {pattern:?}: {e}")))?);
            }
        }
        Ok(out)
    }
}

/// Sets the position of `e`, and of each error in it, unless already known.
fn located(e: Error, at: &Location) -> Error {
    match e {
        Error::Many(list) => Error::Many(list.into_iter().map(|e| located(e, at)).collect()),
        other => other.at(at),
    }
}

/// Validates one receiver and fills its integrations from `global`.
fn check_receiver(
    r: &mut Spanned<Receiver>,
    global: &GlobalConfig,
    names: &mut HashSet<String>,
    errors: &mut Vec<Error>,
) {
    let at = r.referenced;
    let rcv = &mut r.value;
    if rcv.name.is_empty() {
        errors.push(Error::invalid("missing name in receiver").at(&at));
    } else if !names.insert(rcv.name.clone()) {
        errors.push(Error::invalid(format!("notification config name {:?} is not unique", rcv.name)).at(&at));
    }
    match rcv.labels.get("name") {
        Some(v) if *v != rcv.name => errors.push(
            Error::invalid(format!(
                "receiver label \"name\" must match receiver name {:?}, got {v:?}",
                rcv.name
            ))
            .at(&at),
        ),
        _ => {
            rcv.labels.insert("name".into(), rcv.name.clone());
        }
    }
    let ctx = format!("receiver {:?}", rcv.name);
    check_integrations(&mut rcv.webhook_configs, "webhook_configs", &ctx, global, errors);
    check_integrations(&mut rcv.email_configs, "email_configs", &ctx, global, errors);
    check_integrations(&mut rcv.slack_configs, "slack_configs", &ctx, global, errors);
    check_integrations(&mut rcv.pushover_configs, "pushover_configs", &ctx, global, errors);
    check_integrations(&mut rcv.pagerduty_configs, "pagerduty_configs", &ctx, global, errors);
    check_integrations(&mut rcv.incidentio_configs, "incidentio_configs", &ctx, global, errors);
    check_integrations(&mut rcv.opsgenie_configs, "opsgenie_configs", &ctx, global, errors);
    check_integrations(&mut rcv.wechat_configs, "wechat_configs", &ctx, global, errors);
    check_integrations(&mut rcv.victorops_configs, "victorops_configs", &ctx, global, errors);
    check_integrations(&mut rcv.sns_configs, "sns_configs", &ctx, global, errors);
    check_integrations(&mut rcv.telegram_configs, "telegram_configs", &ctx, global, errors);
    check_integrations(&mut rcv.discord_configs, "discord_configs", &ctx, global, errors);
    check_integrations(&mut rcv.webex_configs, "webex_configs", &ctx, global, errors);
    check_integrations(&mut rcv.msteams_configs, "msteams_configs", &ctx, global, errors);
    check_integrations(&mut rcv.msteamsv2_configs, "msteamsv2_configs", &ctx, global, errors);
    check_integrations(&mut rcv.jira_configs, "jira_configs", &ctx, global, errors);
    check_integrations(&mut rcv.rocketchat_configs, "rocketchat_configs", &ctx, global, errors);
    check_integrations(&mut rcv.mattermost_configs, "mattermost_configs", &ctx, global, errors);
    check_integrations(&mut rcv.ntfy_configs, "ntfy_configs", &ctx, global, errors);
    check_integrations(&mut rcv.gotify_configs, "gotify_configs", &ctx, global, errors);
}

/// Upstream's read-time checks, the HTTP client checks, then inheritance from `global`.
fn check_integrations<T: Integration>(
    list: &mut [Spanned<T>],
    key: &str,
    receiver_ctx: &str,
    global: &GlobalConfig,
    errors: &mut Vec<Error>,
) {
    for (i, item) in list.iter_mut().enumerate() {
        let at = item.referenced;
        let ctx = format!("{receiver_ctx}: {key}[{i}]");
        let cfg = &mut item.value;
        if let Err(msg) = cfg.validate() {
            errors.push(Error::invalid(format!("{ctx}: {msg}")).at(&at));
            continue;
        }
        if let Some(Err(e)) = cfg.http_config().map(HttpClientConfig::validate) {
            errors.push(located(e, &at).context(format!("{ctx}: http_config")));
            continue;
        }
        if let Err(msg) = cfg.inherit(global) {
            errors.push(Error::invalid(format!("{ctx}: {msg}")).at(&at));
        }
    }
}

/// The checks on the routing tree: root restrictions, per-route rules, and that every
/// referenced receiver and time interval exists.
fn check_routes(
    root: &Spanned<Route>,
    receivers: &HashSet<String>,
    intervals: &HashSet<&str>,
    errors: &mut Vec<Error>,
) {
    let (r, at) = (&root.value, &root.referenced);
    if r.receiver_name().is_none_or(str::is_empty) {
        errors.push(Error::invalid("root route must specify a default receiver").at(at));
    }
    if !r.r#match.is_empty() || !r.match_re.is_empty() || !r.matchers.is_empty() {
        errors.push(Error::invalid("root route must not have any matchers").at(at));
    }
    if !r.mute_time_intervals.is_empty() {
        errors.push(Error::invalid("root route must not have any mute time intervals").at(at));
    }
    if !r.active_time_intervals.is_empty() {
        errors.push(Error::invalid("root route must not have any active time intervals").at(at));
    }
    if r.r#continue {
        errors.push(Error::invalid("cannot have continue in root route").at(at));
    }
    r.validate(at, errors);

    let mut all = Vec::new();
    r.walk(&mut all);
    for route in all {
        if let Some(name) = route
            .receiver
            .as_ref()
            .filter(|n| !n.value.is_empty() && !receivers.contains(&n.value))
        {
            errors.push(
                Error::invalid(format!("undefined receiver {:?} used in route", name.value)).at(&name.referenced),
            );
        }
        for ti in route.mute_time_intervals.iter().chain(&route.active_time_intervals) {
            if !intervals.contains(ti.value.as_str()) {
                errors.push(
                    Error::invalid(format!("undefined time interval {:?} used in route", ti.value)).at(&ti.referenced),
                );
            }
        }
    }
}
