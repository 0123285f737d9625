//! Watchfire's built-in Alertmanager.
//!
//! This crate owns everything between "an alert arrived" and "a receiver integration is asked
//! to deliver a notification", with Alertmanager's exact semantics: the alert store with
//! upstream's defaulting, validation and merging ([`provider`], [`types`]); the routing tree
//! and aggregation groups with their group_wait / group_interval / repeat_interval timers
//! ([`dispatch`]); inhibition ([`inhibit`]); silences ([`silence`]); time-interval muting
//! ([`timeinterval`]); the notification pipeline and its dedup decision against the
//! notification log ([`notify`], [`nflog`]); a notification history upstream lacks
//! ([`history`]); the API v2 as an axum router ([`api`]); and the self-metrics under
//! upstream's names. Alerts, silences, the notification log and the history persist in a data
//! directory in a checksummed record format (`FORMAT.md`), so — unlike upstream — a restart
//! loses no alerts.
//!
//! Delivery itself (webhook, email, Slack, ...) and notification templates are not here: the
//! pipeline ends in the [`Notifier`] trait, called once per integration of the receiver
//! (dedup, retries and the notification log are per integration, as upstream), which the
//! binary implements with the real integrations. A receiver without integrations is notified
//! once as integration [`notify::NO_INTEGRATION`] (`none`) — upstream silently drops those —
//! so [`RecordingNotifier`], which records notifications in memory, can stand in until real
//! receivers are configured, and the history shows what would have been sent.
//!
//! This crate must not depend on the binary, the web server crate, storage or PromQL; it sees
//! the configuration through `watchfire-config` and labels through `watchfire-model`.
//!
//! Main types: [`Alerting`] (the subsystem: construct with [`Alerting::open`], reload with
//! [`Alerting::apply_config`], push alerts in-process with [`Alerting::put_alerts`], serve
//! [`Alerting::router`] under `/api/v2` and [`Alerting::history_router`] elsewhere),
//! [`Notifier`], [`NotificationGroup`], [`Options`].

pub mod api;
pub mod clock;
pub mod dispatch;
pub mod history;
pub mod inhibit;
mod logfile;
mod metrics;
pub mod nflog;
pub mod notify;
pub mod provider;
pub mod silence;
pub mod timeinterval;
pub mod types;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use watchfire_config::alertmanager::Config;
use watchfire_model::Labels;

pub use clock::{Clock, SystemClock, TokioClock};
pub use history::{History, HistoryEntry, HistoryLimits, HistoryQuery, Outcome};
pub use notify::{
    FailureReason, Integration, NotificationGroup, Notifier, NotifyError, NotifyReason, Recorded, RecordingNotifier,
};
pub use silence::{Silence, SilenceMatcher, SilenceState};
pub use types::{Alert, Fingerprint};

use dispatch::{Dispatcher, Route};
use inhibit::Inhibitor;
use metrics::{Metrics, Sources, StateFn};
use nflog::Nflog;
use notify::{DynNotifier, Pipeline, PipelineParts};
use provider::AlertStore;
use silence::Silences;

/// Errors of the alerting subsystem.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A state file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A state file is damaged (not just cut short by a crash).
    #[error("{path}: corrupt state file at byte offset {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
    /// A record could not be encoded.
    #[error("encoding a state record: {0}")]
    Encode(String),
    /// The configuration cannot be applied (e.g. an unknown time zone).
    #[error("alertmanager configuration: {0}")]
    Config(String),
    /// Metrics could not be registered.
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// No silence has the given ID.
    #[error("silence not found")]
    SilenceNotFound,
    /// A silence failed validation.
    #[error("invalid silence: {0}")]
    InvalidSilence(String),
    /// The system's random source failed.
    #[error("random source: {0}")]
    Random(String),
    /// [`Alerting::open`] was called outside a tokio runtime.
    #[error("the alerting subsystem must be opened inside a tokio runtime")]
    NoRuntime,
}

/// Build information reported by `GET /api/v2/status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionInfo {
    pub version: String,
    pub revision: String,
    pub branch: String,
    pub build_user: String,
    pub build_date: String,
    /// Upstream reports the Go version here; Watchfire reports its toolchain.
    pub go_version: String,
}

impl Default for VersionInfo {
    fn default() -> Self {
        VersionInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            revision: String::new(),
            branch: String::new(),
            build_user: String::new(),
            build_date: String::new(),
            go_version: "rust".to_owned(),
        }
    }
}

/// Settings of the subsystem (upstream's command-line flags).
#[derive(Clone, Debug)]
pub struct Options {
    /// Where alerts, silences, the notification log and the history persist (upstream
    /// `--storage.path`); `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// How long expired silences, log entries and history are kept (`--data.retention`, 120h).
    pub retention: Duration,
    /// How often resolved alerts are dropped from the store (`--alerts.gc-interval`, 30m).
    pub alert_gc_interval: Duration,
    /// How often silences, the notification log and the history are garbage-collected and
    /// their files synced (upstream's maintenance interval, 15m).
    pub maintenance_interval: Duration,
    /// Groups do not flush before this long after start (`--dispatch.start-delay`, 0).
    pub dispatch_start_delay: Duration,
    /// The most notification history entries kept.
    pub history_max_entries: usize,
    /// The most alerts the notification history holds across its entries (each keeps a copy
    /// of its group's alerts).
    pub history_max_alerts: usize,
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
    /// Whether retry waits are randomised (±50 %, as upstream); tests on a paused clock turn
    /// it off to get exact timelines.
    pub retry_jitter: bool,
    /// What `/status` reports as version.
    pub version: VersionInfo,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            data_dir: None,
            retention: Duration::from_secs(120 * 3600),
            alert_gc_interval: Duration::from_secs(30 * 60),
            maintenance_interval: Duration::from_secs(15 * 60),
            dispatch_start_delay: Duration::ZERO,
            history_max_entries: 10_000,
            history_max_alerts: 20_000,
            clock: Arc::new(SystemClock),
            retry_jitter: true,
            version: VersionInfo::default(),
        }
    }
}

/// An alert as a client posts it (API `postableAlert`); unset times are Go's zero time or
/// `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PostableAlert {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub generator_url: String,
}

/// What one configuration built.
struct Active {
    config: Arc<Config>,
    original: String,
    dispatcher: Arc<Dispatcher>,
    inhibitor: Arc<Inhibitor>,
}

struct Inner {
    store: AlertStore,
    silences: Arc<Silences>,
    nflog: Arc<Nflog>,
    history: Arc<History>,
    metrics: Arc<Metrics>,
    _sources: Arc<Sources>,
    clock: Arc<dyn Clock>,
    notifier: Arc<dyn DynNotifier>,
    options: Options,
    started: Timestamp,
    dispatch_start: tokio::time::Instant,
    runtime: tokio::runtime::Handle,
    active: RwLock<Active>,
    maintenance: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for Inner {
    /// The last handle is gone: stop the group timers, which would otherwise keep notifying.
    fn drop(&mut self) {
        if let Some(h) = self.maintenance.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
        self.active
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .dispatcher
            .stop();
    }
}

/// The alerting subsystem. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Alerting {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Alerting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerting").finish_non_exhaustive()
    }
}

/// The configuration as `/status` shows it: re-serialized YAML, secrets as `<secret>`.
fn original_yaml(config: &Config) -> String {
    serde_saphyr::to_string(config).unwrap_or_else(|e| format!("# the configuration could not be printed: {e}\n"))
}

impl Alerting {
    /// Opens the subsystem: loads persisted state from `options.data_dir` (creating it),
    /// applies `config`, registers metrics on `registry` and starts the maintenance task.
    /// Must be called inside a tokio runtime, whose handle the subsystem keeps: later calls
    /// (e.g. [`Alerting::put_alerts`]) may come from any thread. A damaged state file is an
    /// error ([`Error::Corrupt`]), reported with its path and offset.
    pub fn open<N: Notifier>(
        config: Config,
        options: Options,
        notifier: Arc<N>,
        registry: &prometheus::Registry,
    ) -> Result<Alerting, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let clock = Arc::clone(&options.clock);
        let history_limits = HistoryLimits {
            max_entries: options.history_max_entries,
            max_alerts: options.history_max_alerts,
        };
        let (store, silences, nflog, history) = match &options.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                    path: dir.clone(),
                    source,
                })?;
                (
                    AlertStore::open(&dir.join("alerts.log"))?,
                    Silences::open(&dir.join("silences.log"), options.retention)?,
                    Nflog::open(&dir.join("nflog.log"), options.retention)?,
                    History::open(&dir.join("history.log"), options.retention, history_limits)?,
                )
            }
            None => (
                AlertStore::in_memory(),
                Silences::in_memory(options.retention),
                Nflog::in_memory(options.retention),
                History::in_memory(options.retention, history_limits),
            ),
        };
        let sources = Arc::new(Sources::default());
        let metrics = Arc::new(Metrics::register(registry, &sources)?);
        metrics.cluster_enabled.set(0.0);
        let silences = Arc::new(silences);
        let notifier: Arc<dyn DynNotifier> = notifier;
        let started = clock.now();
        let dispatch_start = tokio::time::Instant::now() + options.dispatch_start_delay;
        let parts = PipelineParts {
            silences: Arc::clone(&silences),
            nflog: Arc::new(nflog),
            notifier,
            history: Arc::new(history),
            metrics: Arc::clone(&metrics),
            clock: Arc::clone(&clock),
            retry_jitter: options.retry_jitter,
        };
        let active = build(&config, &store, &parts, dispatch_start, &runtime)?;
        let inner = Arc::new(Inner {
            store,
            silences,
            nflog: Arc::clone(&parts.nflog),
            history: Arc::clone(&parts.history),
            metrics,
            _sources: Arc::clone(&sources),
            clock,
            notifier: parts.notifier,
            options,
            started,
            dispatch_start,
            runtime,
            active: RwLock::new(active),
            maintenance: Mutex::new(None),
        });
        let alerting = Alerting { inner };
        alerting.set_config_gauges(&config);
        alerting.start_dispatching();
        alerting.install_sources(&sources);
        let task = alerting
            .inner
            .runtime
            .spawn(maintenance(Arc::downgrade(&alerting.inner)));
        *alerting.inner.maintenance.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.abort_handle());
        Ok(alerting)
    }

    fn install_sources(&self, sources: &Sources) {
        let weak = Arc::downgrade(&self.inner);
        let alerts: StateFn = Arc::new(move || {
            let Some(inner) = weak.upgrade() else { return Vec::new() };
            let a = Alerting { inner };
            a.alert_state_counts()
        });
        *sources.alerts.lock().unwrap_or_else(|p| p.into_inner()) = Some(alerts);
        let weak = Arc::downgrade(&self.inner);
        let silences: StateFn = Arc::new(move || {
            let Some(inner) = weak.upgrade() else { return Vec::new() };
            let now = inner.clock.now();
            inner
                .silences
                .count_states(now)
                .iter()
                .map(|(st, n)| (st.as_str().to_owned(), *n as f64))
                .collect()
        });
        *sources.silences.lock().unwrap_or_else(|p| p.into_inner()) = Some(silences);
    }

    /// `alertmanager_alerts{state}`: the unresolved alerts held in aggregation groups by the
    /// state their group's last flush saw (suppressed over active over unprocessed).
    fn alert_state_counts(&self) -> Vec<(String, f64)> {
        let now = self.now();
        let dispatcher = Arc::clone(&self.read().dispatcher);
        let mut seen: std::collections::HashMap<Fingerprint, u8> = std::collections::HashMap::new();
        for ag in dispatcher.groups() {
            let marker = ag.marker.lock().unwrap_or_else(|p| p.into_inner()).clone();
            for a in ag.alerts() {
                if a.resolved_at(now) {
                    continue;
                }
                let fp = a.fingerprint();
                let state = if marker.silenced_by.contains_key(&fp) || marker.inhibited_by.contains_key(&fp) {
                    2
                } else if marker.processed.contains(&fp) {
                    1
                } else {
                    0
                };
                let e = seen.entry(fp).or_insert(state);
                *e = (*e).max(state);
            }
        }
        let count = |s: u8| seen.values().filter(|v| **v == s).count() as f64;
        vec![
            ("active".into(), count(1)),
            ("suppressed".into(), count(2)),
            ("unprocessed".into(), count(0)),
        ]
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Active> {
        self.inner.active.read().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    fn set_config_gauges(&self, config: &Config) {
        let m = &self.inner.metrics;
        m.receivers.set(config.receivers.len() as f64);
        m.integrations.set(
            config
                .receivers
                .iter()
                .map(|r| r.value.integration_count())
                .sum::<usize>() as f64,
        );
        m.inhibition_rules.set(config.inhibit_rules.len() as f64);
    }

    /// Routes every stored alert through the current dispatcher (start, reload).
    fn start_dispatching(&self) {
        let active = self.read();
        let now = self.now();
        for a in self.inner.store.list() {
            active.dispatcher.route_alert(&a, now);
        }
    }

    /// Applies a new configuration (upstream's reload): alerts, silences and the notification
    /// log are kept; the inhibitor, routes and aggregation groups are rebuilt, and every stored
    /// alert is routed again — alerts older than their group_wait flush at once and the
    /// notification log keeps that from notifying twice. On error the running configuration
    /// stays.
    pub fn apply_config(&self, config: Config) -> Result<(), Error> {
        let parts = PipelineParts {
            silences: Arc::clone(&self.inner.silences),
            nflog: Arc::clone(&self.inner.nflog),
            notifier: Arc::clone(&self.inner.notifier),
            history: Arc::clone(&self.inner.history),
            metrics: Arc::clone(&self.inner.metrics),
            clock: Arc::clone(&self.inner.clock),
            retry_jitter: self.inner.options.retry_jitter,
        };
        // Built under the write lock, so no alert slips between the new inhibitor's and the
        // new dispatcher's view of the store.
        let mut active = self.inner.active.write().unwrap_or_else(|p| p.into_inner());
        let new = build(
            &config,
            &self.inner.store,
            &parts,
            self.inner.dispatch_start,
            &self.inner.runtime,
        )?;
        active.dispatcher.stop();
        *active = new;
        let now = self.now();
        for a in self.inner.store.list() {
            active.dispatcher.route_alert(&a, now);
        }
        drop(active);
        self.set_config_gauges(&config);
        Ok(())
    }

    /// Ingests alerts as `POST /api/v2/alerts` does (and as the rules engine pushes them
    /// in-process): defaults `startsAt`/`endsAt` (the latter to now + `resolve_timeout`,
    /// flagged as a guess), validates, merges into the store, and hands them to the
    /// inhibitor and dispatcher. Valid alerts are stored even if others are invalid; the
    /// validation errors are returned (upstream answers 400 with them).
    pub fn put_alerts(&self, alerts: Vec<PostableAlert>) -> Result<(), Vec<String>> {
        let now = self.now();
        let active = self.read();
        let resolve_timeout = active.config.global.resolve_timeout.to_std();
        let mut errors = Vec::new();
        for p in alerts {
            let starts_at = p.starts_at.filter(|t| !types::is_zero(*t));
            let ends_at = p.ends_at.filter(|t| !types::is_zero(*t));
            let mut alert = Alert {
                labels: p.labels,
                annotations: p.annotations,
                starts_at: starts_at.or(ends_at).unwrap_or(now),
                ends_at: ends_at.unwrap_or(types::ZERO_TIME),
                generator_url: p.generator_url,
                updated_at: now,
                timeout: false,
            };
            if ends_at.is_none() {
                alert.timeout = true;
                alert.ends_at = types::add_duration(now, resolve_timeout);
            }
            let status = if alert.ends_at > now { "firing" } else { "resolved" };
            self.inner.metrics.alerts_received.with_label_values(&[status]).inc();
            if let Err(e) = alert.validate() {
                self.inner.metrics.alerts_invalid.inc();
                errors.push(e);
                continue;
            }
            match self.inner.store.put(&alert) {
                Ok(stored) => {
                    active.inhibitor.process_source(&stored.labels, stored.ends_at);
                    active.dispatcher.route_alert(&stored, now);
                }
                Err(e) => {
                    tracing::error!(err = %e, "storing an alert");
                    errors.push(format!("storing the alert failed: {e}"));
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// Creates or updates a silence (as `POST /api/v2/silences`); returns its ID.
    pub fn set_silence(&self, silence: Silence) -> Result<String, Error> {
        self.inner.silences.set(silence, self.now())
    }

    /// Expires a silence.
    pub fn expire_silence(&self, id: &str) -> Result<(), Error> {
        self.inner.silences.expire(id, self.now())
    }

    /// All silences.
    pub fn silences(&self) -> Vec<Silence> {
        self.inner.silences.list()
    }

    /// All stored alerts, resolved ones included.
    pub fn alerts(&self) -> Vec<Alert> {
        self.inner.store.list().iter().map(|a| a.to_alert()).collect()
    }

    /// The notification history, newest first.
    pub fn history(&self, query: &HistoryQuery) -> Vec<HistoryEntry> {
        self.inner.history.query(query)
    }

    /// The running configuration.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.read().config)
    }

    /// The API v2 router (mount it under `/api/v2`).
    pub fn router(&self) -> axum::Router {
        api::router(self.clone())
    }

    /// The notification history router (`GET /notifications`), Watchfire's own; mount it
    /// outside `/api/v2`.
    pub fn history_router(&self) -> axum::Router {
        api::history_router(self.clone())
    }

    /// Runs the periodic maintenance once, now: alert GC, inhibitor cache GC, silence,
    /// notification log and history GC, file sync.
    pub fn run_maintenance(&self) {
        run_maintenance_once(&self.inner, true);
    }

    /// Stops the dispatcher and maintenance and syncs every state file. Notifications in
    /// flight are abandoned.
    pub fn shutdown(&self) {
        if let Some(h) = self.inner.maintenance.lock().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
        self.read().dispatcher.stop();
        sync_all(&self.inner);
    }
}

fn sync_all(inner: &Inner) {
    for (what, r) in [
        ("alerts", inner.store.sync()),
        ("silences", inner.silences.sync()),
        ("nflog", inner.nflog.sync()),
        ("history", inner.history.sync()),
    ] {
        if let Err(e) = r {
            tracing::error!(file = what, err = %e, "syncing a state file");
        }
    }
}

/// Builds the inhibitor, pipeline and dispatcher of a configuration.
fn build(
    config: &Config,
    store: &AlertStore,
    parts: &PipelineParts,
    dispatch_start: tokio::time::Instant,
    runtime: &tokio::runtime::Handle,
) -> Result<Active, Error> {
    let inhibitor = Arc::new(Inhibitor::new(
        &config.inhibit_rules.iter().map(|r| r.value.clone()).collect::<Vec<_>>(),
    ));
    for a in store.list() {
        inhibitor.process_source(&a.labels, a.ends_at);
    }
    let pipeline = Arc::new(Pipeline::new(config, Arc::clone(&inhibitor), parts.clone())?);
    let dispatcher = Arc::new(Dispatcher::new(
        Route::tree(&config.route.value),
        pipeline,
        dispatch_start,
        runtime.clone(),
    ));
    Ok(Active {
        config: Arc::new(config.clone()),
        original: original_yaml(config),
        dispatcher,
        inhibitor,
    })
}

fn run_maintenance_once(inner: &Inner, full: bool) {
    let now = inner.clock.now();
    match inner.store.gc(now) {
        Ok(gone) if !gone.is_empty() => tracing::debug!(alerts = gone.len(), "garbage-collected resolved alerts"),
        Ok(_) => {}
        Err(e) => tracing::error!(err = %e, "alert garbage collection"),
    }
    let inhibitor = Arc::clone(&inner.active.read().unwrap_or_else(|p| p.into_inner()).inhibitor);
    inhibitor.gc(now);
    if !full {
        return;
    }
    let m = &inner.metrics;
    let t = std::time::Instant::now();
    m.silences_maintenance.inc();
    if let Err(e) = inner.silences.gc(now).and_then(|_| inner.silences.sync()) {
        m.silences_maintenance_errors.inc();
        tracing::error!(err = %e, "silence maintenance");
    }
    m.silences_gc_duration.observe(t.elapsed().as_secs_f64());
    m.silences_snapshot_size.set(inner.silences.file_size() as f64);
    let t = std::time::Instant::now();
    m.nflog_maintenance.inc();
    if let Err(e) = inner.nflog.gc(now).and_then(|_| inner.nflog.sync()) {
        m.nflog_maintenance_errors.inc();
        tracing::error!(err = %e, "notification log maintenance");
    }
    m.nflog_gc_duration.observe(t.elapsed().as_secs_f64());
    m.nflog_snapshot_size.set(inner.nflog.file_size() as f64);
    if let Err(e) = inner.history.gc(now).and_then(|_| inner.history.sync()) {
        tracing::error!(err = %e, "notification history maintenance");
    }
    if let Err(e) = inner.store.sync() {
        tracing::error!(err = %e, "syncing the alerts file");
    }
}

/// The periodic maintenance task; ends when the subsystem is dropped.
async fn maintenance(inner: std::sync::Weak<Inner>) {
    let (gc_every, maint_every) = match inner.upgrade() {
        Some(i) => (i.options.alert_gc_interval, i.options.maintenance_interval),
        None => return,
    };
    let mut gc = tokio::time::interval_at(tokio::time::Instant::now() + gc_every, gc_every);
    let mut maint = tokio::time::interval_at(tokio::time::Instant::now() + maint_every, maint_every);
    loop {
        let full = tokio::select! {
            _ = gc.tick() => false,
            _ = maint.tick() => true,
        };
        let Some(inner) = inner.upgrade() else { return };
        run_maintenance_once(&inner, full);
    }
}
