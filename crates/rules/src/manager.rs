//! The rule manager (upstream `rules/manager.go`): loads rule files, runs each group on its
//! own task at its stable phase, applies reloads and restores the `for` state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use watchfire_model::{Labels, Timestamp};
use watchfire_promql::engine::Engine;

use crate::group::{EvalContext, Group, GroupOptions, RuleStorage};
use crate::metrics::RuleMetrics;
use crate::sender::Sender;

/// Why loading rules failed; the previous rule set stays in place.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}")]
    Config(#[from] watchfire_config::Error),
    #[error("error loading rules, previous rule set restored: {}", .0.join("; "))]
    Rules(Vec<String>),
}

/// How the manager is built.
#[derive(Clone)]
pub struct ManagerOptions {
    pub storage: Arc<dyn RuleStorage>,
    pub engine: Engine,
    /// Where alerts go ([`crate::AlertingSender`], [`crate::HttpSender`], or several).
    pub sender: Option<Arc<dyn Sender>>,
    /// `--web.external-url`.
    pub external_url: String,
    /// `--rules.alert.resend-delay` (default 1m).
    pub resend_delay: std::time::Duration,
    /// `--rules.alert.for-outage-tolerance` (default 1h).
    pub outage_tolerance: std::time::Duration,
    /// `--rules.alert.for-grace-period` (default 10m).
    pub for_grace_period: std::time::Duration,
    /// Registry for the `prometheus_rule_*` metrics.
    pub registry: Option<prometheus::Registry>,
    /// The wall-clock time (ms) when the manager is created; the manager's clock advances
    /// from it with tokio's clock, so paused-time tests control it. `None`: the system clock.
    pub start_time_ms: Option<Timestamp>,
}

impl std::fmt::Debug for ManagerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerOptions")
            .field("external_url", &self.external_url)
            .finish_non_exhaustive()
    }
}

impl ManagerOptions {
    /// Upstream's defaults for everything but storage and engine.
    pub fn new(storage: Arc<dyn RuleStorage>, engine: Engine) -> ManagerOptions {
        ManagerOptions {
            storage,
            engine,
            sender: None,
            external_url: String::new(),
            resend_delay: std::time::Duration::from_secs(60),
            outage_tolerance: std::time::Duration::from_secs(3600),
            for_grace_period: std::time::Duration::from_secs(600),
            registry: None,
            start_time_ms: None,
        }
    }
}

struct GroupHandle {
    group: Arc<Mutex<Group>>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

struct State {
    groups: BTreeMap<String, GroupHandle>,
    restored: bool,
    ctx: EvalContext,
    /// The global `evaluation_interval` and `rule_query_offset` of the last update (ms).
    default_interval_ms: i64,
    default_query_offset_ms: i64,
}

struct Inner {
    metrics: Arc<RuleMetrics>,
    /// Where alerts go, for the list of Alertmanagers.
    sender: Option<Arc<dyn Sender>>,
    state: tokio::sync::Mutex<State>,
    /// Snapshot of the groups for readers (the API), sorted by file then name.
    snapshot: Mutex<Vec<Arc<Mutex<Group>>>>,
    start_wall_ms: Timestamp,
    start_instant: Instant,
    run: watch::Sender<bool>,
    done: watch::Sender<bool>,
}

/// The rule manager. Cheap to clone.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").finish_non_exhaustive()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn system_now_ms() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Timestamp)
}

/// Reads, checks and builds the groups of `files` (upstream `LoadGroups`), all errors listed.
pub fn load_groups(files: &[PathBuf], opts: &GroupOptions) -> Result<Vec<Group>, Vec<String>> {
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    for path in files {
        let file = match crate::validate::load_rule_file(path) {
            Ok(f) => f,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        for g in &file.groups {
            match Group::new(path, &g.value, opts) {
                Ok(g) => groups.push(g),
                Err(e) => errors.push(e),
            }
        }
    }
    if errors.is_empty() { Ok(groups) } else { Err(errors) }
}

impl Manager {
    /// A manager with no rules; groups start evaluating after [`Manager::run`].
    pub fn new(opts: ManagerOptions) -> Result<Manager, prometheus::Error> {
        let metrics = Arc::new(RuleMetrics::new(opts.registry.as_ref())?);
        let mut ctx = EvalContext::new(opts.storage.clone(), opts.engine.clone());
        ctx.sender = opts.sender.clone();
        ctx.external_url = opts.external_url.clone();
        ctx.resend_delay_ms = opts.resend_delay.as_millis() as i64;
        ctx.outage_tolerance_ms = opts.outage_tolerance.as_millis() as i64;
        ctx.for_grace_period_ms = opts.for_grace_period.as_millis() as i64;
        ctx.metrics = Some(metrics.clone());
        let start_wall_ms = opts.start_time_ms.unwrap_or_else(system_now_ms);
        Ok(Manager {
            inner: Arc::new(Inner {
                metrics,
                state: tokio::sync::Mutex::new(State {
                    groups: BTreeMap::new(),
                    restored: false,
                    ctx,
                    default_interval_ms: GroupOptions::default().default_interval_ms,
                    default_query_offset_ms: 0,
                }),
                sender: opts.sender.clone(),
                snapshot: Mutex::new(Vec::new()),
                start_wall_ms,
                start_instant: Instant::now(),
                run: watch::channel(false).0,
                done: watch::channel(false).0,
            }),
        })
    }

    /// The manager's clock, ms since the epoch.
    pub fn now_ms(&self) -> Timestamp {
        self.inner.now_ms()
    }

    /// The metrics.
    pub fn metrics(&self) -> &RuleMetrics {
        &self.inner.metrics
    }

    /// Lets the groups start evaluating (upstream `Run`: storage is ready).
    pub fn run(&self) {
        self.inner.run.send_replace(true);
    }

    /// Applies a `prometheus.yml`: its rule files (globs relative to `config_dir`), global
    /// evaluation interval, rule query offset and external labels.
    pub async fn apply_config(
        &self,
        config: &watchfire_config::prometheus::Config,
        config_dir: &Path,
    ) -> Result<(), LoadError> {
        let files = config.rule_file_paths(config_dir)?;
        self.update(
            config.global.evaluation_interval.as_millis(),
            config.global.rule_query_offset.as_millis(),
            &files,
            config.global.external_labels.clone(),
        )
        .await
    }

    /// Upstream `Update`: loads `files`; on any error nothing changes. Unchanged groups keep
    /// running; changed ones are stopped and replaced, carrying over the alerts and series
    /// of rules with the same name and labels; removed ones get their series marked stale.
    pub async fn update(
        &self,
        interval_ms: i64,
        query_offset_ms: i64,
        files: &[PathBuf],
        external_labels: Labels,
    ) -> Result<(), LoadError> {
        let inner = &self.inner;
        let mut state = inner.state.lock().await;
        if *inner.done.borrow() {
            return Ok(());
        }
        let opts = GroupOptions {
            default_interval_ms: interval_ms,
            default_query_offset_ms: query_offset_ms,
            should_restore: !state.restored,
        };
        let new_groups = load_groups(files, &opts).map_err(LoadError::Rules)?;
        state.restored = true;
        state.ctx.external_labels = external_labels;
        state.default_interval_ms = interval_ms;
        state.default_query_offset_ms = query_offset_ms;
        let mut old = std::mem::take(&mut state.groups);
        let mut groups = BTreeMap::new();
        for mut newg in new_groups {
            let key = newg.key();
            let existing = old.remove(&key);
            if let Some(h) = existing {
                if lock(&h.group).same_as(&newg) {
                    groups.insert(key, h);
                    continue;
                }
                let group = stop_group(h).await;
                newg.copy_state(&mut lock(&group));
            }
            inner
                .metrics
                .group_interval
                .with_label_values(&[&key])
                .set(newg.interval_ms() as f64 / 1000.0);
            inner
                .metrics
                .group_rules
                .with_label_values(&[&key])
                .set(newg.rules().len() as f64);
            let handle = self.start_group(newg, state.ctx.clone());
            groups.insert(key, handle);
        }
        for (key, h) in old {
            let group = stop_group(h).await;
            inner.metrics.remove_group(&key);
            // Give renamed rules two intervals to write their new series, then mark the
            // removed group's series stale.
            let this = self.clone();
            let ctx = state.ctx.clone();
            tokio::spawn(async move {
                let interval = lock(&group).interval_ms();
                let mut done = this.inner.done.subscribe();
                tokio::select! {
                    _ = done.wait_for(|d| *d) => {}
                    _ = tokio::time::sleep(std::time::Duration::from_millis(2 * interval.max(0) as u64)) => {
                        let now = this.now_ms();
                        let mut g = lock(&group);
                        g.mark_all_stale();
                        g.cleanup_stale_series(now, &ctx);
                    }
                }
            });
        }
        let snapshot: Vec<_> = {
            let mut v: Vec<_> = groups.values().map(|h| h.group.clone()).collect();
            v.sort_by(|a, b| {
                let (a, b) = (lock(a), lock(b));
                (a.file(), a.name()).cmp(&(b.file(), b.name()))
            });
            v
        };
        state.groups = groups;
        *lock(&inner.snapshot) = snapshot;
        Ok(())
    }

    /// Stops every group (upstream `Stop`).
    pub async fn stop(&self) {
        let mut state = self.inner.state.lock().await;
        self.inner.done.send_replace(true);
        for (_, h) in std::mem::take(&mut state.groups) {
            stop_group(h).await;
        }
    }

    /// The groups, sorted by file then name.
    pub fn rule_groups(&self) -> Vec<Arc<Mutex<Group>>> {
        lock(&self.inner.snapshot).clone()
    }

    /// The Alertmanagers alerts are sent to (`/api/v1/alertmanagers`).
    pub fn alertmanagers(&self) -> crate::sender::DiscoveredAlertmanagers {
        self.inner
            .sender
            .as_ref()
            .map(|s| s.alertmanagers())
            .unwrap_or_default()
    }

    /// What a backtest reads (the storage, never written, the engine, the external labels and
    /// URL) and how its groups are built (the global interval and query offset).
    pub async fn backtest_source(&self) -> (crate::backtest::Source, GroupOptions) {
        let state = self.inner.state.lock().await;
        let storage: Arc<dyn watchfire_storage::Queryable> = state.ctx.storage.clone();
        (
            crate::backtest::Source {
                storage,
                engine: state.ctx.engine.clone(),
                external_labels: state.ctx.external_labels.clone(),
                external_url: state.ctx.external_url.clone(),
            },
            GroupOptions {
                default_interval_ms: state.default_interval_ms,
                default_query_offset_ms: state.default_query_offset_ms,
                should_restore: false,
            },
        )
    }

    fn start_group(&self, group: Group, ctx: EvalContext) -> GroupHandle {
        let group = Arc::new(Mutex::new(group));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run_group(self.inner.clone(), group.clone(), ctx, stop_rx));
        GroupHandle {
            group,
            stop,
            task: Some(task),
        }
    }
}

async fn stop_group(mut h: GroupHandle) -> Arc<Mutex<Group>> {
    h.stop.send_replace(true);
    if let Some(task) = h.task.take() {
        let _ = task.await;
    }
    h.group
}

impl Inner {
    fn now_ms(&self) -> Timestamp {
        self.start_wall_ms + self.start_instant.elapsed().as_millis() as Timestamp
    }

    fn now_nanos(&self) -> i64 {
        self.start_wall_ms * 1_000_000 + self.start_instant.elapsed().as_nanos() as i64
    }

    fn instant_at_nanos(&self, nanos: i64) -> Instant {
        let delta = nanos - self.start_wall_ms * 1_000_000;
        if delta <= 0 {
            self.start_instant
        } else {
            self.start_instant + std::time::Duration::from_nanos(delta as u64)
        }
    }
}

/// Evaluates the group at `ts_nanos` on a blocking thread.
async fn iterate(inner: &Arc<Inner>, group: &Arc<Mutex<Group>>, ctx: &EvalContext, ts_nanos: i64) {
    let (group, ctx, wall) = (group.clone(), ctx.clone(), inner.now_ms());
    let ts = ts_nanos.div_euclid(1_000_000);
    let _ = tokio::task::spawn_blocking(move || lock(&group).eval_at(ts, wall, &ctx)).await;
}

/// One group's schedule (upstream `Group.run`).
async fn run_group(inner: Arc<Inner>, group: Arc<Mutex<Group>>, ctx: EvalContext, mut stop: watch::Receiver<bool>) {
    let mut run = inner.run.subscribe();
    tokio::select! {
        _ = stop.wait_for(|s| *s) => return,
        _ = run.wait_for(|r| *r) => {}
    }
    let (interval, first) = {
        let g = lock(&group);
        let interval = g.interval_ms().max(1) * 1_000_000;
        (interval, g.eval_timestamp_nanos(inner.now_nanos()) + interval)
    };
    let key = lock(&group).key();
    let mut eval_ts = first;
    tokio::select! {
        _ = stop.wait_for(|s| *s) => return,
        _ = tokio::time::sleep_until(inner.instant_at_nanos(first)) => {}
    }
    // The ticker starts once the first evaluation time has passed.
    let tick_start = Instant::now();
    let mut tick_n: u64 = 0;
    iterate(&inner, &group, &ctx, eval_ts).await;
    let mut should_restore = lock(&group).should_restore;
    loop {
        // Go's ticker keeps one pending tick and drops the others.
        tick_n += 1;
        let at = tick_start + std::time::Duration::from_nanos(tick_n * interval as u64);
        let now = Instant::now();
        if at > now {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep_until(at) => {}
            }
        } else {
            if *stop.borrow() {
                return;
            }
            tick_n = (now - tick_start).as_nanos() as u64 / interval as u64;
        }
        let missed = (inner.now_nanos() - eval_ts) / interval - 1;
        if missed > 0 {
            inner
                .metrics
                .iterations_missed
                .with_label_values(&[&key])
                .inc_by(missed as f64);
            inner
                .metrics
                .iterations_scheduled
                .with_label_values(&[&key])
                .inc_by(missed as f64);
        }
        eval_ts += (missed.max(0) + 1) * interval;
        iterate(&inner, &group, &ctx, eval_ts).await;
        if should_restore {
            let started = std::time::Instant::now();
            let (g, c, now) = (group.clone(), ctx.clone(), inner.now_ms());
            let _ = tokio::task::spawn_blocking(move || lock(&g).restore_for_state(now, &c)).await;
            inner
                .metrics
                .group_last_restore_duration
                .with_label_values(&[&key])
                .set(started.elapsed().as_secs_f64());
            should_restore = false;
        }
    }
}
