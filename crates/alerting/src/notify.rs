//! The notification pipeline (upstream `notify/notify.go`, `mute.go`, `dedup_stage.go`,
//! `retry_stage.go`, `set_notifies_stage.go`): per flush of an aggregation group, inhibition,
//! active and mute time intervals, silences, then per integration of the receiver the dedup
//! decision against the notification log, the send through the [`Notifier`] with retries, and
//! the notification log update on success. Every attempt is also written to the notification
//! [`History`](crate::history::History).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use watchfire_config::alertmanager::Config;
use watchfire_config::alertmanager::receivers::Receiver;
use watchfire_model::Labels;

use crate::clock::Clock;
use crate::dispatch::Route;
use crate::history::{History, HistoryEntry, Outcome};
use crate::inhibit::Inhibitor;
use crate::metrics::Metrics;
use crate::nflog::{Entry, Nflog, ReceiverKey};
use crate::silence::Silences;
use crate::timeinterval::Intervener;
use crate::types::{Alert, Fingerprint, dedup_hash};

/// One integration of a receiver: its kind (`webhook`, `email`, ...), its index among the
/// receiver's integrations of that kind, and whether it is told about resolved alerts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Integration {
    pub name: String,
    pub index: u32,
    pub send_resolved: bool,
}

impl fmt::Display for Integration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.name, self.index)
    }
}

/// The kind a receiver without integrations is notified as. Upstream drops such notifications
/// (a "black hole" receiver); Watchfire hands them to the [`Notifier`] under this name so the
/// history shows what would have been sent. A delivering notifier treats it as a no-op.
pub const NO_INTEGRATION: &str = "none";

/// The integrations of a receiver, in upstream's order (config/receiver `BuildReceiverIntegrations`).
pub fn receiver_integrations(r: &Receiver) -> Vec<Integration> {
    fn add<T: watchfire_config::alertmanager::receivers::Integration>(
        out: &mut Vec<Integration>,
        name: &str,
        list: &[watchfire_config::yaml::Spanned<T>],
    ) {
        for (i, c) in list.iter().enumerate() {
            out.push(Integration {
                name: name.to_owned(),
                index: i as u32,
                send_resolved: c.value.send_resolved(),
            });
        }
    }
    let mut out = Vec::new();
    add(&mut out, "discord", &r.discord_configs);
    add(&mut out, "email", &r.email_configs);
    add(&mut out, "incidentio", &r.incidentio_configs);
    add(&mut out, "pagerduty", &r.pagerduty_configs);
    add(&mut out, "slack", &r.slack_configs);
    add(&mut out, "webhook", &r.webhook_configs);
    add(&mut out, "opsgenie", &r.opsgenie_configs);
    add(&mut out, "wechat", &r.wechat_configs);
    add(&mut out, "pushover", &r.pushover_configs);
    add(&mut out, "victorops", &r.victorops_configs);
    add(&mut out, "sns", &r.sns_configs);
    add(&mut out, "telegram", &r.telegram_configs);
    add(&mut out, "webex", &r.webex_configs);
    add(&mut out, "msteams", &r.msteams_configs);
    add(&mut out, "msteamsv2", &r.msteamsv2_configs);
    add(&mut out, "jira", &r.jira_configs);
    add(&mut out, "rocketchat", &r.rocketchat_configs);
    add(&mut out, "mattermost", &r.mattermost_configs);
    // Watchfire's own integrations, after upstream's.
    add(&mut out, "ntfy", &r.ntfy_configs);
    add(&mut out, "gotify", &r.gotify_configs);
    if out.is_empty() {
        out.push(Integration {
            name: NO_INTEGRATION.to_owned(),
            index: 0,
            send_resolved: true,
        });
    }
    out
}

/// Why a notification is sent (upstream `NotifyReason`); templates see it as
/// `.NotificationReason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotifyReason {
    DoNotNotify,
    FirstNotification,
    NewAlertsInGroup,
    NewResolvedAlerts,
    AllAlertsResolved,
    RepeatIntervalElapsed,
    Unknown,
}

impl NotifyReason {
    /// Upstream's text.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyReason::DoNotNotify => "none",
            NotifyReason::FirstNotification => "first notification",
            NotifyReason::NewAlertsInGroup => "new alerts added",
            NotifyReason::NewResolvedAlerts => "some alerts resolved",
            NotifyReason::AllAlertsResolved => "all alerts resolved",
            NotifyReason::RepeatIntervalElapsed => "repeat interval elapsed",
            NotifyReason::Unknown => "unknown",
        }
    }
}

impl fmt::Display for NotifyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The dedup decision (dedup_stage.go `needsUpdate`): given the last notification log entry,
/// the currently firing and resolved alert hashes, whether the integration sends resolved
/// notifications, the repeat interval and the flush instant, why to notify — or
/// [`NotifyReason::DoNotNotify`].
pub fn needs_update(
    entry: Option<&Entry>,
    firing: &HashSet<u64>,
    resolved: &HashSet<u64>,
    send_resolved: bool,
    repeat: Duration,
    now: Timestamp,
) -> NotifyReason {
    let Some(entry) = entry else {
        return if firing.is_empty() {
            NotifyReason::DoNotNotify
        } else {
            NotifyReason::FirstNotification
        };
    };
    if !entry.is_firing_subset(firing) {
        return if entry.firing_alerts.is_empty() {
            NotifyReason::FirstNotification
        } else {
            NotifyReason::NewAlertsInGroup
        };
    }
    if firing.is_empty() {
        // Sent whatever send_resolved says, so the firing alerts leave the log.
        return if entry.firing_alerts.is_empty() {
            NotifyReason::DoNotNotify
        } else {
            NotifyReason::AllAlertsResolved
        };
    }
    if send_resolved && !entry.is_resolved_subset(resolved) {
        return NotifyReason::NewResolvedAlerts;
    }
    if entry.timestamp < crate::types::sub_duration(now, repeat) {
        return NotifyReason::RepeatIntervalElapsed;
    }
    NotifyReason::DoNotNotify
}

/// What a [`Notifier`] is asked to deliver: one flush of one aggregation group to one
/// integration of its receiver.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NotificationGroup {
    /// The receiver name.
    pub receiver: String,
    /// The integration to deliver with.
    pub integration: Integration,
    /// The group key, `route key:group labels`.
    pub group_key: String,
    /// The values of the route's `group_by` labels.
    pub group_labels: Labels,
    /// The route's labels (values as configured; templated values are rendered by the
    /// notification templates).
    pub route_labels: BTreeMap<String, String>,
    /// The alerts, sorted as upstream sorts them. Firing alerts have `ends_at` = Go's zero
    /// time; resolved alerts are left out when the integration does not send resolved ones.
    pub alerts: Vec<Alert>,
    /// Why this notification goes out.
    pub reason: NotifyReason,
    /// The flush instant.
    pub now: Timestamp,
}

impl NotificationGroup {
    /// `resolved` if no alert is firing at `now`, else `firing` (template `.Status`).
    pub fn status(&self) -> &'static str {
        if self.alerts.iter().any(|a| !a.resolved_at(self.now)) {
            "firing"
        } else {
            "resolved"
        }
    }
}

/// Why a delivery failed, for `alertmanager_notifications_failed_total{reason}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureReason {
    Other,
    ClientError,
    ServerError,
    ContextCanceled,
    ContextDeadlineExceeded,
}

impl FailureReason {
    /// Upstream's label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Other => "other",
            FailureReason::ClientError => "clientError",
            FailureReason::ServerError => "serverError",
            FailureReason::ContextCanceled => "contextCanceled",
            FailureReason::ContextDeadlineExceeded => "contextDeadlineExceeded",
        }
    }

    pub(crate) const ALL: [FailureReason; 5] = [
        FailureReason::Other,
        FailureReason::ClientError,
        FailureReason::ServerError,
        FailureReason::ContextCanceled,
        FailureReason::ContextDeadlineExceeded,
    ];
}

/// A failed delivery.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NotifyError {
    /// What went wrong.
    pub message: String,
    /// Whether trying again may help (upstream's `recoverable`).
    pub retryable: bool,
    /// The failure category.
    pub reason: FailureReason,
}

impl NotifyError {
    /// A failure worth retrying.
    pub fn retryable(message: impl Into<String>) -> NotifyError {
        NotifyError {
            message: message.into(),
            retryable: true,
            reason: FailureReason::Other,
        }
    }

    /// A failure that retrying will not fix.
    pub fn permanent(message: impl Into<String>) -> NotifyError {
        NotifyError {
            message: message.into(),
            retryable: false,
            reason: FailureReason::Other,
        }
    }
}

/// Delivers notifications. Implementations may write `async fn notify(...)`.
pub trait Notifier: Send + Sync + 'static {
    /// Delivers one notification group to `receiver` via `group.integration`.
    fn notify(&self, receiver: &str, group: &NotificationGroup)
    -> impl Future<Output = Result<(), NotifyError>> + Send;
}

type BoxFuture<'a> = Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>>;

/// The object-safe form of [`Notifier`] the pipeline stores.
pub(crate) trait DynNotifier: Send + Sync + 'static {
    fn notify_boxed<'a>(&'a self, receiver: &'a str, group: &'a NotificationGroup) -> BoxFuture<'a>;
}

impl<N: Notifier> DynNotifier for N {
    fn notify_boxed<'a>(&'a self, receiver: &'a str, group: &'a NotificationGroup) -> BoxFuture<'a> {
        Box::pin(self.notify(receiver, group))
    }
}

impl<N: Notifier> Notifier for Arc<N> {
    fn notify(
        &self,
        receiver: &str,
        group: &NotificationGroup,
    ) -> impl Future<Output = Result<(), NotifyError>> + Send {
        (**self).notify(receiver, group)
    }
}

/// One notification a [`RecordingNotifier`] received.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub receiver: String,
    pub group: NotificationGroup,
}

/// A [`Notifier`] that records every notification in memory: for tests, and for a receiver
/// nobody has configured real integrations for yet. Deliveries can be made to fail.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    recorded: Mutex<Vec<Recorded>>,
    failing: Mutex<HashSet<(String, String, u32)>>,
}

impl RecordingNotifier {
    /// An empty recorder.
    pub fn new() -> RecordingNotifier {
        RecordingNotifier::default()
    }

    /// Everything recorded so far, oldest first.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Returns and forgets everything recorded so far.
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.recorded.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Makes deliveries to one integration of a receiver fail (retryably) or succeed again.
    pub fn set_failing(&self, receiver: &str, integration: &str, index: u32, failing: bool) {
        let key = (receiver.to_owned(), integration.to_owned(), index);
        let mut set = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        if failing {
            set.insert(key);
        } else {
            set.remove(&key);
        }
    }
}

impl Notifier for RecordingNotifier {
    async fn notify(&self, receiver: &str, group: &NotificationGroup) -> Result<(), NotifyError> {
        let key = (
            receiver.to_owned(),
            group.integration.name.clone(),
            group.integration.index,
        );
        if self.failing.lock().unwrap_or_else(|p| p.into_inner()).contains(&key) {
            return Err(NotifyError::retryable(format!(
                "{receiver}/{}: delivery disabled by the test",
                group.integration
            )));
        }
        self.recorded.lock().unwrap_or_else(|p| p.into_inner()).push(Recorded {
            receiver: receiver.to_owned(),
            group: group.clone(),
        });
        Ok(())
    }
}

/// Per-group bookkeeping the pipeline writes and the API reads (upstream's markers): the
/// silences and inhibiting alerts seen at the last flush, and the time intervals muting the
/// group.
#[derive(Clone, Debug, Default)]
pub(crate) struct GroupMarker {
    pub processed: HashSet<Fingerprint>,
    pub muted_by: Vec<String>,
    pub silenced_by: HashMap<Fingerprint, Vec<String>>,
    pub inhibited_by: HashMap<Fingerprint, Vec<String>>,
}

/// Upstream's `notify.MinTimeout`: a flush gets at least this long.
const MIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything one configuration's pipeline needs.
pub(crate) struct Pipeline {
    pub receivers: HashMap<String, Vec<Integration>>,
    pub inhibitor: Arc<Inhibitor>,
    pub silences: Arc<Silences>,
    pub intervener: Intervener,
    pub nflog: Arc<Nflog>,
    pub notifier: Arc<dyn DynNotifier>,
    pub history: Arc<History>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub retry_jitter: bool,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("receivers", &self.receivers)
            .finish_non_exhaustive()
    }
}

/// The flush being notified.
pub(crate) struct Flush<'a> {
    pub now: Timestamp,
    pub group_key: &'a str,
    pub group_labels: &'a Labels,
    pub route: &'a Route,
    pub marker: &'a Mutex<GroupMarker>,
}

impl Pipeline {
    pub(crate) fn new(
        config: &Config,
        inhibitor: Arc<Inhibitor>,
        parts: PipelineParts,
    ) -> Result<Pipeline, crate::Error> {
        let receivers = config
            .receivers
            .iter()
            .map(|r| (r.value.name.clone(), receiver_integrations(&r.value)))
            .collect();
        Ok(Pipeline {
            receivers,
            inhibitor,
            silences: parts.silences,
            intervener: Intervener::from_config(config)?,
            nflog: parts.nflog,
            notifier: parts.notifier,
            history: parts.history,
            metrics: parts.metrics,
            clock: parts.clock,
            retry_jitter: parts.retry_jitter,
        })
    }

    /// Runs the pipeline for one flush; true if every integration succeeded (or nothing had to
    /// be sent).
    pub(crate) async fn exec(&self, flush: &Flush<'_>, alerts: Vec<Alert>) -> bool {
        let route = flush.route;
        // Inhibition.
        let mut kept = Vec::with_capacity(alerts.len());
        let mut inhibited = HashMap::new();
        let wall = self.clock.now();
        let processed: HashSet<Fingerprint> = alerts.iter().map(Alert::fingerprint).collect();
        for a in alerts {
            match self.inhibitor.mutes(&a.labels, wall) {
                Some(src) => {
                    inhibited.insert(a.fingerprint(), vec![src.to_string()]);
                }
                None => kept.push(a),
            }
        }
        self.metrics.suppressed("inhibition", inhibited.len());
        self.with_marker(flush, |m| {
            m.inhibited_by = inhibited;
            m.processed = processed;
        });
        if kept.is_empty() {
            return true;
        }
        // Active time intervals.
        if !route.active_time_intervals.is_empty() {
            match self.intervener.mutes(&route.active_time_intervals, flush.now) {
                Ok(inside) if inside.is_empty() => {
                    self.metrics.suppressed("active_time_interval", kept.len());
                    let names = route.active_time_intervals.clone();
                    self.with_marker(flush, |m| m.muted_by = names);
                    return true;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(group = %flush.group_key, err = %e, "evaluating active time intervals");
                    return false;
                }
            }
        }
        // Mute time intervals.
        let muted_by = if route.mute_time_intervals.is_empty() {
            Vec::new()
        } else {
            match self.intervener.mutes(&route.mute_time_intervals, flush.now) {
                Ok(inside) => inside,
                Err(e) => {
                    tracing::error!(group = %flush.group_key, err = %e, "evaluating mute time intervals");
                    return false;
                }
            }
        };
        let muted = !muted_by.is_empty();
        self.with_marker(flush, |m| m.muted_by = muted_by);
        if muted {
            self.metrics.suppressed("mute_time_interval", kept.len());
            return true;
        }
        // Silences.
        let mut silenced = HashMap::new();
        let wall = self.clock.now();
        kept.retain(|a| {
            let ids = self.silences.mutes(&a.labels, wall);
            if ids.is_empty() {
                true
            } else {
                silenced.insert(a.fingerprint(), ids);
                false
            }
        });
        self.metrics.suppressed("silence", silenced.len());
        self.with_marker(flush, |m| m.silenced_by = silenced);
        if kept.is_empty() {
            return true;
        }

        let Some(integrations) = self.receivers.get(&route.receiver) else {
            tracing::error!(receiver = %route.receiver, "stage for receiver missing");
            return false;
        };
        let alerts = Arc::new(kept);
        let deadline = tokio::time::Instant::now() + route.group_interval.max(MIN_TIMEOUT);
        let mut results = Vec::with_capacity(integrations.len());
        // Integrations are independent (own log entry, own retries); run them concurrently.
        let futures: Vec<_> = integrations
            .iter()
            .map(|i| self.notify_integration(flush, i, &alerts, deadline))
            .collect();
        for f in join_all(futures).await {
            results.push(f);
        }
        results.into_iter().all(|ok| ok)
    }

    fn with_marker(&self, flush: &Flush<'_>, f: impl FnOnce(&mut GroupMarker)) {
        f(&mut flush.marker.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Dedup, retry, log: one integration's part of a flush.
    async fn notify_integration(
        &self,
        flush: &Flush<'_>,
        integration: &Integration,
        alerts: &[Alert],
        deadline: tokio::time::Instant,
    ) -> bool {
        let route = flush.route;
        let recv = ReceiverKey {
            group_name: route.receiver.clone(),
            integration: integration.name.clone(),
            idx: integration.index,
        };
        // Dedup.
        let wall = self.clock.now();
        let mut firing = Vec::new();
        let mut resolved = Vec::new();
        for a in alerts {
            let h = dedup_hash(&a.labels);
            if a.resolved_at(wall) {
                resolved.push(h);
            } else {
                firing.push(h);
            }
        }
        let firing_set: HashSet<u64> = firing.iter().copied().collect();
        let resolved_set: HashSet<u64> = resolved.iter().copied().collect();
        self.metrics.nflog_queries.inc();
        let entry = self.nflog.query(flush.group_key, &recv);
        let reason = needs_update(
            entry.as_ref(),
            &firing_set,
            &resolved_set,
            integration.send_resolved,
            route.repeat_interval,
            flush.now,
        );
        if reason == NotifyReason::DoNotNotify {
            return true;
        }

        // Retry.
        let counted = integration.name != NO_INTEGRATION;
        if counted {
            self.metrics.notifications_total(&integration.name).inc();
        }
        let to_send: Vec<Alert> = if integration.send_resolved {
            alerts.to_vec()
        } else {
            if firing.is_empty() {
                // Nothing to tell this integration, but the log must still learn about it.
                return self.set_notifies(flush, &recv, firing, resolved, route.repeat_interval);
            }
            alerts.iter().filter(|a| !a.resolved_at(wall)).cloned().collect()
        };
        let group = NotificationGroup {
            receiver: route.receiver.clone(),
            integration: integration.clone(),
            group_key: flush.group_key.to_owned(),
            group_labels: flush.group_labels.clone(),
            route_labels: route.labels.clone(),
            alerts: to_send,
            reason,
            now: flush.now,
        };
        let (result, attempts) = self.send_with_retries(&group, counted, deadline).await;
        let outcome = match &result {
            Ok(()) => Outcome::Sent,
            Err(e) => Outcome::Failed {
                error: e.message.clone(),
            },
        };
        self.history.record(HistoryEntry {
            seq: 0,
            at: self.clock.now(),
            receiver: group.receiver.clone(),
            integration: integration.name.clone(),
            index: integration.index,
            group_key: group.group_key.clone(),
            group_labels: group.group_labels.clone(),
            reason: reason.as_str().to_owned(),
            alerts: group.alerts.clone(),
            attempts,
            outcome,
        });
        match result {
            Ok(()) => self.set_notifies(flush, &recv, firing, resolved, route.repeat_interval),
            Err(e) => {
                if counted {
                    self.metrics.notifications_failed(&integration.name, e.reason).inc();
                }
                tracing::error!(
                    group = %flush.group_key, receiver = %group.receiver, integration = %integration,
                    attempts, err = %e.message, "notify for alerts failed"
                );
                false
            }
        }
    }

    async fn send_with_retries(
        &self,
        group: &NotificationGroup,
        counted: bool,
        deadline: tokio::time::Instant,
    ) -> (Result<(), NotifyError>, u32) {
        let mut attempts = 0u32;
        let mut backoff = Duration::from_millis(500);
        loop {
            attempts += 1;
            if counted {
                self.metrics.requests_total(&group.integration.name).inc();
            }
            let started = tokio::time::Instant::now();
            let res = match tokio::time::timeout_at(deadline, self.notifier.notify_boxed(&group.receiver, group)).await
            {
                Ok(r) => r,
                Err(_) => Err(NotifyError {
                    message: "context deadline exceeded".into(),
                    retryable: false,
                    reason: FailureReason::ContextDeadlineExceeded,
                }),
            };
            if counted {
                self.metrics
                    .latency(&group.integration.name)
                    .observe(started.elapsed().as_secs_f64());
            }
            match res {
                Ok(()) => return (Ok(()), attempts),
                Err(e) => {
                    if counted {
                        self.metrics.requests_failed(&group.integration.name).inc();
                    }
                    if !e.retryable {
                        return (Err(e), attempts);
                    }
                    tracing::warn!(
                        receiver = %group.receiver, integration = %group.integration, attempt = attempts,
                        err = %e.message, "notify attempt failed, will retry later"
                    );
                    let wait = if self.retry_jitter { jittered(backoff) } else { backoff };
                    if tokio::time::Instant::now() + wait >= deadline {
                        tokio::time::sleep_until(deadline).await;
                        let mut e = e;
                        e.message = format!("{} (gave up after {attempts} attempts: deadline)", e.message);
                        return (Err(e), attempts);
                    }
                    tokio::time::sleep(wait).await;
                    // go backoff/v5's defaults, as upstream: ×1.5 up to a minute, each wait
                    // randomised by ±50 % so that receivers failing together do not retry in step.
                    backoff = (backoff.mul_f64(1.5)).min(Duration::from_secs(60));
                }
            }
        }
    }

    fn set_notifies(
        &self,
        flush: &Flush<'_>,
        recv: &ReceiverKey,
        firing: Vec<u64>,
        resolved: Vec<u64>,
        repeat: Duration,
    ) -> bool {
        match self
            .nflog
            .log(recv, flush.group_key, firing, resolved, repeat * 2, self.clock.now())
        {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(group = %flush.group_key, receiver = %recv, err = %e, "writing the notification log");
                false
            }
        }
    }
}

/// `interval` randomised uniformly within ±50 % (go backoff's default randomization factor).
fn jittered(interval: Duration) -> Duration {
    let mut b = [0u8; 4];
    // Without randomness (which does not happen on Linux) the wait is simply not randomised.
    let r = match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    };
    interval.mul_f64(0.5 + r)
}

/// The shared parts a [`Pipeline`] is built from.
#[derive(Clone)]
pub(crate) struct PipelineParts {
    pub silences: Arc<Silences>,
    pub nflog: Arc<Nflog>,
    pub notifier: Arc<dyn DynNotifier>,
    pub history: Arc<History>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub retry_jitter: bool,
}

/// Polls all futures to completion concurrently and returns their outputs in order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future completed before poll_fn returned Ready"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_waits_are_randomised_within_half_either_way() {
        let base = Duration::from_millis(1000);
        let waits: Vec<Duration> = (0..200).map(|_| jittered(base)).collect();
        assert!(waits.iter().all(|w| *w >= base / 2 && *w <= base * 3 / 2), "{waits:?}");
        // Spread over the range, not one value (200 draws all within 10 % of each other is
        // astronomically unlikely).
        let (min, max) = (waits.iter().min().unwrap(), waits.iter().max().unwrap());
        assert!(*max - *min > base / 5, "{min:?}..{max:?}");
    }
}
