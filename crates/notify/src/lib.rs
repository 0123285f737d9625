//! Watchfire's notification integrations: Alertmanager's template data model and functions
//! ([`template`]), Watchfire's own default templates, and [`Notifiers`], the
//! [`Notifier`](watchfire_alerting::Notifier) that delivers a notification group through every
//! integration Alertmanager has (webhook, email, Slack, PagerDuty, Opsgenie, Discord, Microsoft
//! Teams in both forms, Telegram, Pushover, Webex, VictorOps, Rocket.Chat, Mattermost,
//! incident.io, WeChat, Jira, SNS) and Watchfire's own ntfy and Gotify ([`DELIVERED`]). One
//! module per integration, named as upstream's `notify/<kind>` packages; the older ones share
//! [`integrations`], which also holds the helpers every HTTP integration uses.
//!
//! [`Notifiers::test_receiver`] sends a made-up alert through a receiver's integrations, for
//! `watchfire notify test` and the route in [`api`] (`POST /receivers/{name}/test`).
//!
//! The binary builds one [`Notifiers`] from the Alertmanager [`Config`] and
//! [`NotifyOptions`] and hands it (in an `Arc`) to the alerting subsystem; on reload it calls
//! [`Notifiers::apply_config`] before the alerting subsystem's own `apply_config`, so a
//! configuration whose templates fail to load is refused before anything changes.
//!
//! Self-metrics: the dispatcher (`watchfire-alerting`) already counts
//! `alertmanager_notifications_total`, `alertmanager_notifications_failed_total{reason}`,
//! the request counters and `alertmanager_notification_latency_seconds` around every call of
//! the notifier, using the [`FailureReason`](watchfire_alerting::FailureReason) each error
//! carries; this crate registers none of those names again.

pub mod api;
pub mod email;
pub mod gotify;
pub mod http;
pub mod incidentio;
pub mod integrations;
pub mod jira;
pub mod mattermost;
pub mod ntfy;
pub mod pushover;
pub mod rocketchat;
pub mod sns;
pub mod telegram;
pub mod template;
pub mod victorops;
pub mod webex;
pub mod wechat;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use watchfire_alerting::notify::NO_INTEGRATION;
use watchfire_alerting::{FailureReason, NotificationGroup, Notifier, NotifyError};
use watchfire_config::alertmanager::Config;
use watchfire_config::alertmanager::receivers::Receiver;

use crate::http::HttpClient;
use crate::integrations::Ctx;
use crate::template::{TemplateError, Templates};

/// The integration kinds Watchfire delivers; any other configured kind fails every delivery
/// (without retry) until it is built.
pub const DELIVERED: &[&str] = &[
    "webhook",
    "email",
    "slack",
    "pagerduty",
    "opsgenie",
    "discord",
    "msteamsv2",
    "msteams",
    "telegram",
    "pushover",
    "webex",
    "ntfy",
    "gotify",
    "victorops",
    "rocketchat",
    "mattermost",
    "incidentio",
    "wechat",
    "jira",
    "sns",
];

/// The integration kinds of `receiver` that Watchfire cannot deliver yet (for a warning at
/// load time), each once.
pub fn undelivered(receiver: &Receiver) -> Vec<String> {
    let mut out: Vec<String> = watchfire_alerting::notify::receiver_integrations(receiver)
        .into_iter()
        .map(|i| i.name)
        .filter(|k| k != NO_INTEGRATION && !DELIVERED.contains(&k.as_str()))
        .collect();
    out.dedup();
    out
}

/// What the notifier needs besides the configuration.
#[derive(Clone, Debug, Default)]
pub struct NotifyOptions {
    /// The directory of `alertmanager.yml`: relative template globs and `*_file` paths are
    /// taken from it.
    pub config_dir: PathBuf,
    /// `--web.external-url` (templates' `.ExternalURL`).
    pub external_url: String,
}

/// Building a notifier failed, or a test named no configured receiver.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("no receiver named {0:?}")]
    UnknownReceiver(String),
    #[error("receiver {receiver:?}: {integration}[{index}]: {message}")]
    Client {
        receiver: String,
        integration: String,
        index: usize,
        message: String,
    },
}

/// One configuration's receivers, templates and HTTP clients.
#[derive(Debug)]
struct State {
    receivers: HashMap<String, Receiver>,
    templates: Templates,
    clients: HashMap<(String, &'static str, usize), HttpClient>,
    config_dir: PathBuf,
    wechat_tokens: wechat::TokenCache,
}

impl State {
    fn new(config: &Config, opts: &NotifyOptions) -> Result<State, Error> {
        let templates = Templates::load(&config.templates, &opts.config_dir, &opts.external_url)?;
        let mut clients = HashMap::new();
        let mut receivers = HashMap::new();
        for r in &config.receivers {
            let r = &r.value;
            let mut add = |kind: &'static str, i: usize, c: Option<&watchfire_config::http::HttpClientConfig>| {
                let client = HttpClient::new(c, &opts.config_dir).map_err(|message| Error::Client {
                    receiver: r.name.clone(),
                    integration: kind.to_owned(),
                    index: i,
                    message,
                })?;
                clients.insert((r.name.clone(), kind, i), client);
                Ok::<(), Error>(())
            };
            macro_rules! clients {
                ($($kind:literal => $list:ident),* $(,)?) => {$(
                    for (i, c) in r.$list.iter().enumerate() {
                        add($kind, i, c.value.http_config.as_ref())?;
                    }
                )*};
            }
            clients!(
                "webhook" => webhook_configs,
                "slack" => slack_configs,
                "pagerduty" => pagerduty_configs,
                "opsgenie" => opsgenie_configs,
                "discord" => discord_configs,
                "msteamsv2" => msteamsv2_configs,
                "msteams" => msteams_configs,
                "telegram" => telegram_configs,
                "pushover" => pushover_configs,
                "webex" => webex_configs,
                "ntfy" => ntfy_configs,
                "gotify" => gotify_configs,
                "victorops" => victorops_configs,
                "rocketchat" => rocketchat_configs,
                "mattermost" => mattermost_configs,
                "wechat" => wechat_configs,
                "jira" => jira_configs,
                "sns" => sns_configs,
            );
            for (i, c) in r.incidentio_configs.iter().enumerate() {
                add("incidentio", i, Some(&incidentio::http_config(&c.value)))?;
            }
            receivers.insert(r.name.clone(), r.clone());
        }
        Ok(State {
            receivers,
            templates,
            clients,
            config_dir: opts.config_dir.clone(),
            wechat_tokens: wechat::TokenCache::default(),
        })
    }

    async fn notify(&self, receiver: &str, group: &NotificationGroup) -> Result<(), NotifyError> {
        let kind = group.integration.name.as_str();
        if kind == NO_INTEGRATION {
            return Ok(());
        }
        let r = self
            .receivers
            .get(receiver)
            .ok_or_else(|| NotifyError::permanent(format!("unknown receiver {receiver:?}")))?;
        let idx = group.integration.index as usize;
        let missing = || NotifyError::permanent(format!("receiver {receiver:?} has no {kind}[{idx}] integration"));
        let client = |k: &'static str| self.clients.get(&(receiver.to_owned(), k, idx)).ok_or_else(missing);
        let template_err = |e: TemplateError| NotifyError::permanent(format!("template: {e}"));
        // The integrations that render with the group's own data.
        macro_rules! deliver {
            ($kind:literal, $list:ident, $func:path) => {{
                let cfg = &r.$list.get(idx).ok_or_else(missing)?.value;
                let data = self.templates.data(group).map_err(template_err)?;
                $func(&self.ctx(&data, group), cfg, client($kind)?).await
            }};
        }
        match kind {
            "webhook" => {
                let cfg = &r.webhook_configs.get(idx).ok_or_else(missing)?.value;
                let truncated = integrations::max_alerts(group, cfg.max_alerts);
                let data = self.templates.data(&truncated).map_err(template_err)?;
                let ctx = self.ctx(&data, group);
                integrations::webhook(&ctx, cfg, client("webhook")?).await
            }
            "slack" => deliver!("slack", slack_configs, integrations::slack),
            "pagerduty" => deliver!("pagerduty", pagerduty_configs, integrations::pagerduty),
            "opsgenie" => deliver!("opsgenie", opsgenie_configs, integrations::opsgenie),
            "discord" => deliver!("discord", discord_configs, integrations::discord),
            "msteamsv2" => deliver!("msteamsv2", msteamsv2_configs, integrations::msteamsv2),
            "msteams" => deliver!("msteams", msteams_configs, integrations::msteams),
            "telegram" => deliver!("telegram", telegram_configs, telegram::telegram),
            "pushover" => deliver!("pushover", pushover_configs, pushover::pushover),
            "webex" => deliver!("webex", webex_configs, webex::webex),
            "ntfy" => deliver!("ntfy", ntfy_configs, ntfy::ntfy),
            "gotify" => deliver!("gotify", gotify_configs, gotify::gotify),
            "victorops" => deliver!("victorops", victorops_configs, victorops::victorops),
            "rocketchat" => deliver!("rocketchat", rocketchat_configs, rocketchat::rocketchat),
            "mattermost" => deliver!("mattermost", mattermost_configs, mattermost::mattermost),
            "jira" => deliver!("jira", jira_configs, jira::jira),
            "sns" => deliver!("sns", sns_configs, sns::sns),
            "incidentio" => {
                let cfg = &r.incidentio_configs.get(idx).ok_or_else(missing)?.value;
                let truncated = integrations::max_alerts(group, cfg.max_alerts);
                let data = self.templates.data(&truncated).map_err(template_err)?;
                incidentio::incidentio(&self.ctx(&data, group), cfg, client("incidentio")?).await
            }
            "wechat" => {
                let cfg = &r.wechat_configs.get(idx).ok_or_else(missing)?.value;
                let data = self.templates.data(group).map_err(template_err)?;
                let ctx = self.ctx(&data, group);
                wechat::wechat(&ctx, cfg, client("wechat")?, &self.wechat_tokens, idx).await
            }
            "email" => {
                let cfg = &r.email_configs.get(idx).ok_or_else(missing)?.value;
                let data = self.templates.data(group).map_err(template_err)?;
                email::email(&self.ctx(&data, group), cfg).await
            }
            other => Err(NotifyError::permanent(format!(
                "integration {other} is not supported by Watchfire yet"
            ))),
        }
    }

    fn ctx<'a>(&'a self, data: &'a template::Data, group: &'a NotificationGroup) -> Ctx<'a> {
        Ctx {
            templates: &self.templates,
            data,
            group,
            config_dir: &self.config_dir,
        }
    }
}

/// The notifier the alerting subsystem calls: dispatches by integration name to one of
/// [`DELIVERED`]. A receiver without integrations (`none`) succeeds doing nothing; an
/// integration kind Watchfire cannot deliver yet fails without retry.
#[derive(Debug)]
pub struct Notifiers {
    state: RwLock<Arc<State>>,
    options: NotifyOptions,
}

impl Notifiers {
    /// Loads the templates (defaults, then `config.templates`) and builds every integration's
    /// HTTP client.
    pub fn new(config: &Config, options: NotifyOptions) -> Result<Notifiers, Error> {
        let state = State::new(config, &options)?;
        Ok(Notifiers {
            state: RwLock::new(Arc::new(state)),
            options,
        })
    }

    /// Applies a reloaded configuration; on error the running one stays. Notifications in
    /// flight finish with the configuration they started with.
    pub fn apply_config(&self, config: &Config) -> Result<(), Error> {
        let state = State::new(config, &self.options)?;
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(state);
        Ok(())
    }

    /// The templates of the running configuration.
    pub fn templates(&self) -> Templates {
        self.current().templates.clone()
    }

    fn current(&self) -> Arc<State> {
        Arc::clone(&self.state.read().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Notifier for Notifiers {
    async fn notify(&self, receiver: &str, group: &NotificationGroup) -> Result<(), NotifyError> {
        let state = self.current();
        state.notify(receiver, group).await
    }
}

/// The result of one integration in a test send ([`Notifiers::test_receiver`], [`send_test`]).
#[derive(Debug)]
pub struct TestResult {
    pub integration: String,
    pub index: u32,
    pub result: Result<(), NotifyError>,
}

/// How long a test send waits for each integration by default.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(30);

impl Notifiers {
    /// Sends `group` through every integration of `receiver` in the running configuration
    /// (for `POST /api/watchfire/receivers/{name}/test`), each once, without retries, all at
    /// once, each given at most `timeout`. `group` is delivered with its `receiver` and
    /// `integration` fields set for each. `None` if there is no such receiver. A receiver
    /// without integrations yields one successful `none` result: nothing is sent.
    pub async fn test_receiver(
        &self,
        receiver: &str,
        group: &NotificationGroup,
        timeout: Duration,
    ) -> Option<Vec<TestResult>> {
        let state = self.current();
        let integrations = watchfire_alerting::notify::receiver_integrations(state.receivers.get(receiver)?);
        let mut tasks = Vec::new();
        for integration in integrations {
            let mut g = group.clone();
            g.receiver = receiver.to_owned();
            g.integration = integration.clone();
            let state = Arc::clone(&state);
            let receiver = receiver.to_owned();
            let what = integration.to_string();
            let task = tokio::spawn(async move {
                match tokio::time::timeout(timeout, state.notify(&receiver, &g)).await {
                    Ok(r) => r,
                    Err(_) => Err(NotifyError {
                        message: format!("{what}: no answer within {timeout:?}"),
                        retryable: true,
                        reason: FailureReason::ContextDeadlineExceeded,
                    }),
                }
            });
            tasks.push((integration, task));
        }
        let mut out = Vec::new();
        for (integration, task) in tasks {
            let result = task
                .await
                .unwrap_or_else(|e| Err(NotifyError::permanent(format!("{integration}: the send failed: {e}"))));
            out.push(TestResult {
                integration: integration.name,
                index: integration.index,
                result,
            });
        }
        Some(out)
    }
}

/// Sends a test notification to every integration of `receiver` in `config` (for
/// `watchfire notify test --receiver NAME`), as [`Notifiers::test_receiver`] does with
/// [`TEST_TIMEOUT`]. Use [`example_group`] for a made-up firing alert.
pub async fn send_test(
    config: &Config,
    options: NotifyOptions,
    receiver: &str,
    group: &NotificationGroup,
) -> Result<Vec<TestResult>, Error> {
    let notifiers = Notifiers::new(config, options)?;
    notifiers
        .test_receiver(receiver, group, TEST_TIMEOUT)
        .await
        .ok_or_else(|| Error::UnknownReceiver(receiver.to_owned()))
}

/// A made-up firing notification group for tests: one alert `alertname="WatchfireTest"`,
/// `severity="none"`, started `now`, grouped by `alertname`.
pub fn example_group(receiver: &str, now: jiff::Timestamp) -> NotificationGroup {
    use watchfire_model::Labels;
    let labels = Labels::from_pairs([("alertname", "WatchfireTest"), ("severity", "none")]);
    let alert = watchfire_alerting::Alert {
        labels,
        annotations: [(
            "summary".to_owned(),
            "A test notification sent by `watchfire notify test`".to_owned(),
        )]
        .into_iter()
        .collect(),
        starts_at: now,
        ends_at: watchfire_alerting::types::ZERO_TIME,
        generator_url: String::new(),
        updated_at: now,
        timeout: false,
    };
    NotificationGroup {
        receiver: receiver.to_owned(),
        integration: watchfire_alerting::Integration {
            name: NO_INTEGRATION.to_owned(),
            index: 0,
            send_resolved: true,
        },
        group_key: format!("{{}}:{{alertname=\"WatchfireTest\"}}/{receiver}"),
        group_labels: Labels::from_pairs([("alertname", "WatchfireTest")]),
        route_labels: Default::default(),
        alerts: vec![alert],
        reason: watchfire_alerting::NotifyReason::FirstNotification,
        now,
    }
}
