//! The routing tree and the dispatcher (upstream `dispatch/route.go`, `dispatch/dispatch.go`):
//! every alert is matched against the tree, put into one aggregation group per matching route
//! (keyed by the route and the alert's values of the route's `group_by` labels), and each
//! group flushes on its own timer: after `group_wait` (at once if its first alert is older
//! than that), then every `group_interval`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::task::AbortHandle;
use watchfire_config::alertmanager::matchers::{AmMatcher, format_matchers};
use watchfire_config::alertmanager::{self as am, GroupBy, RouteOpts};
use watchfire_model::Labels;

use crate::inhibit::matches_all;
use crate::notify::{Flush, GroupMarker, Pipeline};
use crate::types::{Fingerprint, StoredAlert, add_duration, alert_order, fingerprint, labelset_string};

/// A node of the routing tree with its effective (inherited) settings.
#[derive(Debug)]
pub struct Route {
    /// Position in a post-order walk (children first), as upstream numbers routes.
    pub idx: usize,
    /// Parent key + `/` + this node's matchers, e.g. `{}/{severity="page"}`.
    pub key: String,
    /// The key plus `/` and the position among siblings (the root has none).
    pub id: String,
    pub matchers: Vec<AmMatcher>,
    pub receiver: String,
    pub group_by: GroupBy,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub labels: BTreeMap<String, String>,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    pub r#continue: bool,
    pub routes: Vec<Arc<Route>>,
}

impl Route {
    /// Builds the tree from the configuration's root route.
    pub fn tree(root: &am::Route) -> Arc<Route> {
        let mut counter = 0;
        Self::build(root, None, None, &RouteOpts::default(), &mut counter)
    }

    fn build(
        cfg: &am::Route,
        parent_key: Option<&str>,
        position: Option<usize>,
        parent_opts: &RouteOpts,
        counter: &mut usize,
    ) -> Arc<Route> {
        let opts = cfg.opts(parent_opts);
        let matchers = cfg.all_matchers();
        let key = match parent_key {
            Some(p) => format!("{p}/{}", format_matchers(&matchers)),
            None => format_matchers(&matchers),
        };
        let id = match position {
            Some(i) => format!("{key}/{i}"),
            None => key.clone(),
        };
        let routes = cfg
            .routes
            .iter()
            .enumerate()
            .map(|(i, c)| Self::build(&c.value, Some(&key), Some(i), &opts, counter))
            .collect();
        let idx = *counter;
        *counter += 1;
        Arc::new(Route {
            idx,
            key,
            id,
            matchers,
            receiver: opts.receiver,
            group_by: opts.group_by,
            group_wait: opts.group_wait.to_std(),
            group_interval: opts.group_interval.to_std(),
            repeat_interval: opts.repeat_interval.to_std(),
            labels: opts.labels,
            mute_time_intervals: cfg.mute_time_interval_names().map(str::to_owned).collect(),
            active_time_intervals: cfg.active_time_interval_names().map(str::to_owned).collect(),
            r#continue: cfg.r#continue,
            routes,
        })
    }

    /// The routes an alert with these labels goes to, in order (route.go `Match`).
    pub fn matches(self: &Arc<Route>, labels: &Labels) -> Vec<Arc<Route>> {
        if !matches_all(&self.matchers, labels) {
            return Vec::new();
        }
        let mut all = Vec::new();
        for child in &self.routes {
            let m = child.matches(labels);
            let matched = !m.is_empty();
            all.extend(m);
            if matched && !child.r#continue {
                break;
            }
        }
        if all.is_empty() {
            all.push(Arc::clone(self));
        }
        all
    }

    /// Every route of the tree, indexed by `idx`.
    pub fn flatten(self: &Arc<Route>) -> Vec<Arc<Route>> {
        fn walk(r: &Arc<Route>, out: &mut Vec<Arc<Route>>) {
            out.push(Arc::clone(r));
            for c in &r.routes {
                walk(c, out);
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out.sort_by_key(|r| r.idx);
        out
    }

    /// The alert's group labels on this route (dispatch.go `getGroupLabels`).
    pub fn group_labels(&self, labels: &Labels) -> Labels {
        match &self.group_by {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => Labels::from_pairs(
                labels
                    .iter()
                    .filter(|l| names.iter().any(|n| n == l.name))
                    .map(|l| (l.name, l.value)),
            ),
        }
    }
}

/// The alerts of one aggregation group (upstream `store.Alerts` of an `aggrGroup`), shared
/// with the alert store.
#[derive(Debug, Default)]
struct GroupAlerts {
    alerts: HashMap<Fingerprint, Arc<StoredAlert>>,
    destroyed: bool,
}

/// An aggregation group.
#[derive(Debug)]
pub(crate) struct AggrGroup {
    pub labels: Labels,
    pub route: Arc<Route>,
    pub key: String,
    alerts: Mutex<GroupAlerts>,
    pub marker: Mutex<GroupMarker>,
    task: Mutex<Option<AbortHandle>>,
}

impl AggrGroup {
    fn new(labels: Labels, route: Arc<Route>) -> AggrGroup {
        let key = format!("{}:{}", route.key, labelset_string(&labels));
        AggrGroup {
            labels,
            route,
            key,
            alerts: Mutex::new(GroupAlerts::default()),
            marker: Mutex::new(GroupMarker::default()),
            task: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GroupAlerts> {
        self.alerts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Inserts or replaces an alert; false if the group is destroyed.
    fn insert(&self, fp: Fingerprint, alert: &Arc<StoredAlert>) -> bool {
        let mut g = self.lock();
        if g.destroyed {
            return false;
        }
        g.alerts.insert(fp, Arc::clone(alert));
        true
    }

    /// The group's current alerts.
    pub(crate) fn alerts(&self) -> Vec<Arc<StoredAlert>> {
        self.lock().alerts.values().cloned().collect()
    }

    fn destroyed(&self) -> bool {
        self.lock().destroyed
    }

    /// Deletes the alerts that were notified as resolved unless they changed meanwhile, and
    /// marks the group destroyed if that empties it (store.go `DeleteIfNotModified`).
    fn delete_if_not_modified(&self, resolved: &[Arc<StoredAlert>]) {
        let mut g = self.lock();
        for a in resolved {
            let fp = a.fingerprint();
            if g.alerts.get(&fp).is_some_and(|cur| cur.updated_at == a.updated_at) {
                g.alerts.remove(&fp);
            }
        }
        if g.alerts.is_empty() {
            g.destroyed = true;
        }
        drop(g);
        let mut m = self.marker.lock().unwrap_or_else(|p| p.into_inner());
        for a in resolved {
            let fp = a.fingerprint();
            m.silenced_by.remove(&fp);
            m.inhibited_by.remove(&fp);
        }
    }
}

type GroupMaps = Arc<Mutex<Vec<HashMap<Fingerprint, Arc<AggrGroup>>>>>;

/// The dispatcher of one configuration.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    pub root: Arc<Route>,
    groups: GroupMaps,
    pipeline: Arc<Pipeline>,
    /// Groups do not flush before this instant (`--dispatch.start-delay`).
    start_at: tokio::time::Instant,
    /// Where group timers run, so alerts can be routed from any thread (the rules engine
    /// evaluates on its own threads).
    runtime: tokio::runtime::Handle,
    stopped: std::sync::atomic::AtomicBool,
}

impl Dispatcher {
    pub(crate) fn new(
        root: Arc<Route>,
        pipeline: Arc<Pipeline>,
        start_at: tokio::time::Instant,
        runtime: tokio::runtime::Handle,
    ) -> Dispatcher {
        let groups = Arc::new(Mutex::new(vec![HashMap::new(); root.flatten().len()]));
        Dispatcher {
            root,
            groups,
            pipeline,
            start_at,
            runtime,
            stopped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<HashMap<Fingerprint, Arc<AggrGroup>>>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Routes a stored alert into its groups (dispatch.go `routeAlert`); new groups start their
    /// timer task on the subsystem's runtime.
    pub(crate) fn route_alert(&self, alert: &Arc<StoredAlert>, now: Timestamp) {
        if self.stopped.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let started = std::time::Instant::now();
        let alert_fp = alert.fingerprint();
        for route in self.root.matches(&alert.labels) {
            self.group_alert(alert_fp, alert, route, now);
        }
        self.pipeline
            .metrics
            .processing_duration
            .observe(started.elapsed().as_secs_f64());
    }

    fn group_alert(&self, alert_fp: Fingerprint, alert: &Arc<StoredAlert>, route: Arc<Route>, now: Timestamp) {
        let labels = route.group_labels(&alert.labels);
        let fp = fingerprint(&labels);
        let mut groups = self.lock();
        if let Some(ag) = groups[route.idx].get(&fp)
            && ag.insert(alert_fp, alert)
        {
            return;
        }
        let ag = Arc::new(AggrGroup::new(labels, Arc::clone(&route)));
        ag.insert(alert_fp, alert);
        // An alert older than group_wait flushes at once, so restarts and reloads do not wait
        // group_wait again for alerts that have been firing for a while.
        let wait = if add_duration(alert.starts_at, route.group_wait) < now {
            Duration::ZERO
        } else {
            route.group_wait
        };
        let first = (tokio::time::Instant::now() + wait).max(self.start_at);
        let handle = self.runtime.spawn(run_group(
            Arc::clone(&ag),
            Arc::clone(&self.pipeline),
            Arc::clone(&self.groups),
            first,
        ));
        *ag.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle.abort_handle());
        if let Some(old) = groups[route.idx].insert(fp, ag) {
            // A destroyed group being replaced: its task ends by itself after its flush.
            debug_assert!(old.destroyed());
        }
        let n: usize = groups.iter().map(HashMap::len).sum();
        self.pipeline.metrics.aggregation_groups.set(n as f64);
    }

    /// Stops every group's timer; notifications in flight are abandoned (upstream cancels
    /// their context on reload and shutdown).
    pub(crate) fn stop(&self) {
        self.stopped.store(true, std::sync::atomic::Ordering::Release);
        let groups = self.lock();
        for map in groups.iter() {
            for ag in map.values() {
                if let Some(h) = ag.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    h.abort();
                }
            }
        }
    }

    /// A snapshot of all groups, route by route.
    pub(crate) fn groups(&self) -> Vec<Arc<AggrGroup>> {
        self.lock().iter().flat_map(|m| m.values().cloned()).collect()
    }
}

/// A group's timer loop (dispatch.go `aggrGroup.run`).
async fn run_group(ag: Arc<AggrGroup>, pipeline: Arc<Pipeline>, groups: GroupMaps, first: tokio::time::Instant) {
    let mut next = first;
    loop {
        tokio::time::sleep_until(next).await;
        let now = pipeline.clock.now();
        // Re-armed before the flush, so the cadence does not drift with send times.
        next = tokio::time::Instant::now() + ag.route.group_interval;
        flush(&ag, &pipeline, now).await;
        if ag.destroyed() {
            let mut maps = groups.lock().unwrap_or_else(|p| p.into_inner());
            let map = &mut maps[ag.route.idx];
            let fp = fingerprint(&ag.labels);
            if map.get(&fp).is_some_and(|cur| Arc::ptr_eq(cur, &ag)) {
                map.remove(&fp);
            }
            let n: usize = maps.iter().map(HashMap::len).sum();
            pipeline.metrics.aggregation_groups.set(n as f64);
            return;
        }
    }
}

/// One flush (dispatch.go `aggrGroup.flush`).
async fn flush(ag: &AggrGroup, pipeline: &Pipeline, now: Timestamp) {
    let stored = ag.alerts();
    if stored.is_empty() {
        return;
    }
    let mut alerts = Vec::with_capacity(stored.len());
    let mut resolved = Vec::new();
    for shared in stored {
        let mut a = shared.to_alert();
        if a.resolved_at(now) {
            resolved.push(shared);
        } else {
            a.ends_at = crate::types::ZERO_TIME;
        }
        alerts.push(a);
    }
    alerts.sort_by(alert_order);
    let f = Flush {
        now,
        group_key: &ag.key,
        group_labels: &ag.labels,
        route: &ag.route,
        marker: &ag.marker,
    };
    if pipeline.exec(&f, alerts).await {
        ag.delete_if_not_modified(&resolved);
    }
}
