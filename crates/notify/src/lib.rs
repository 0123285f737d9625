//! Watchfire's notification integrations: Alertmanager's template data model and functions
//! ([`template`]), Watchfire's own default templates, and [`Notifiers`], the
//! [`Notifier`](watchfire_alerting::Notifier) that delivers a notification group through
//! webhook, Slack, PagerDuty, email, Opsgenie, Discord and Microsoft Teams (Workflows).
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

pub mod email;
pub mod http;
pub mod integrations;
pub mod template;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use watchfire_alerting::notify::NO_INTEGRATION;
use watchfire_alerting::{NotificationGroup, Notifier, NotifyError};
use watchfire_config::alertmanager::Config;
use watchfire_config::alertmanager::receivers::Receiver;

use crate::http::HttpClient;
use crate::integrations::Ctx;
use crate::template::{TemplateError, Templates};

/// What the notifier needs besides the configuration.
#[derive(Clone, Debug, Default)]
pub struct NotifyOptions {
    /// The directory of `alertmanager.yml`: relative template globs and `*_file` paths are
    /// taken from it.
    pub config_dir: PathBuf,
    /// `--web.external-url` (templates' `.ExternalURL`).
    pub external_url: String,
}

/// Building a notifier failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Template(#[from] TemplateError),
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
            for (i, c) in r.webhook_configs.iter().enumerate() {
                add("webhook", i, c.value.http_config.as_ref())?;
            }
            for (i, c) in r.slack_configs.iter().enumerate() {
                add("slack", i, c.value.http_config.as_ref())?;
            }
            for (i, c) in r.pagerduty_configs.iter().enumerate() {
                add("pagerduty", i, c.value.http_config.as_ref())?;
            }
            for (i, c) in r.opsgenie_configs.iter().enumerate() {
                add("opsgenie", i, c.value.http_config.as_ref())?;
            }
            for (i, c) in r.discord_configs.iter().enumerate() {
                add("discord", i, c.value.http_config.as_ref())?;
            }
            for (i, c) in r.msteamsv2_configs.iter().enumerate() {
                add("msteamsv2", i, c.value.http_config.as_ref())?;
            }
            receivers.insert(r.name.clone(), r.clone());
        }
        Ok(State {
            receivers,
            templates,
            clients,
            config_dir: opts.config_dir.clone(),
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
        match kind {
            "webhook" => {
                let cfg = &r.webhook_configs.get(idx).ok_or_else(missing)?.value;
                let truncated = integrations::max_alerts(group, cfg.max_alerts);
                let data = self.templates.data(&truncated).map_err(template_err)?;
                let ctx = self.ctx(&data, group);
                integrations::webhook(&ctx, cfg, client("webhook")?).await
            }
            "slack" => {
                let cfg = &r.slack_configs.get(idx).ok_or_else(missing)?.value;
                let data = self.templates.data(group).map_err(template_err)?;
                integrations::slack(&self.ctx(&data, group), cfg, client("slack")?).await
            }
            "pagerduty" => {
                let cfg = &r.pagerduty_configs.get(idx).ok_or_else(missing)?.value;
                let data = self.templates.data(group).map_err(template_err)?;
                integrations::pagerduty(&self.ctx(&data, group), cfg, client("pagerduty")?).await
            }
            "opsgenie" => {
                let cfg = &r.opsgenie_configs.get(idx).ok_or_else(missing)?.value;
                let data = self.templates.data(group).map_err(template_err)?;
                integrations::opsgenie(&self.ctx(&data, group), cfg, client("opsgenie")?).await
            }
            "discord" => {
                let cfg = &r.discord_configs.get(idx).ok_or_else(missing)?.value;
                let data = self.templates.data(group).map_err(template_err)?;
                integrations::discord(&self.ctx(&data, group), cfg, client("discord")?).await
            }
            "msteamsv2" => {
                let cfg = &r.msteamsv2_configs.get(idx).ok_or_else(missing)?.value;
                let data = self.templates.data(group).map_err(template_err)?;
                integrations::msteamsv2(&self.ctx(&data, group), cfg, client("msteamsv2")?).await
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

/// The notifier the alerting subsystem calls: dispatches by integration name to webhook,
/// Slack, PagerDuty, email, Opsgenie, Discord or Microsoft Teams (Workflows, `msteamsv2`). A receiver without integrations (`none`) succeeds doing
/// nothing; an integration kind Watchfire cannot deliver yet fails without retry.
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

/// The result of one integration in [`send_test`].
#[derive(Debug)]
pub struct TestResult {
    pub integration: String,
    pub index: u32,
    pub result: Result<(), NotifyError>,
}

/// Sends a test notification to every integration of `receiver` (for
/// `watchfire notify test --receiver NAME`): `group` is delivered once per integration, with
/// its `receiver` and `integration` fields set accordingly. Use [`example_group`] for a
/// made-up firing alert. Each integration is tried once, without retries.
pub async fn send_test(
    config: &Config,
    options: NotifyOptions,
    receiver: &str,
    group: &NotificationGroup,
) -> Result<Vec<TestResult>, Error> {
    let notifiers = Notifiers::new(config, options)?;
    let Some(r) = config.receivers.iter().find(|r| r.value.name == receiver) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for integration in watchfire_alerting::notify::receiver_integrations(&r.value) {
        let mut g = group.clone();
        g.receiver = receiver.to_owned();
        g.integration = integration.clone();
        let result = notifiers.notify(receiver, &g).await;
        out.push(TestResult {
            integration: integration.name,
            index: integration.index,
            result,
        });
    }
    Ok(out)
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
