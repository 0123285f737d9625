//! The scrape manager: one pool per job, fed by discovery (upstream scrape/manager.go).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus::Registry;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;
use tracing::error;
use watchfire_config::prometheus::{Config, ScrapeConfig};
use watchfire_discovery::TargetSets;
use watchfire_model::Labels;
use watchfire_storage::Appendable;

use crate::metrics::ScrapeMetrics;
use crate::pool::{Pool, normalized};
use crate::target::{Target, fnv64a};
use crate::{Deps, Error, Options};

#[derive(Debug, Default)]
struct State {
    configs: BTreeMap<String, ScrapeConfig>,
    pools: BTreeMap<String, Pool>,
    /// The latest target groups per job, as discovery published them.
    sets: Arc<TargetSets>,
    stopped: bool,
}

/// Runs the scrape pools. Construct with [`Manager::new`], then call
/// [`Manager::apply_config`] with the loaded config and feed it discovery's target sets with
/// [`Manager::run`] (throttled, as upstream) or [`Manager::sync`] (immediately).
#[derive(Debug, Clone)]
pub struct Manager {
    state: Arc<Mutex<State>>,
    deps: Arc<Deps>,
    seed_base: String,
}

impl Manager {
    /// A manager writing to `appendable`, with its `prometheus_target_*` metrics on
    /// `registry`.
    pub fn new(appendable: Arc<dyn Appendable>, registry: &Registry, opts: Options) -> Result<Self, Error> {
        let metrics = Arc::new(ScrapeMetrics::new(registry)?);
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        Ok(Manager {
            state: Arc::default(),
            deps: Arc::new(Deps {
                appendable,
                metrics,
                opts,
                offset_seed: AtomicU64::new(0),
            }),
            seed_base: hostname,
        })
    }

    /// The self-metrics.
    pub fn metrics(&self) -> &Arc<ScrapeMetrics> {
        &self.deps.metrics
    }

    /// Applies a (re)loaded config: pools of removed jobs stop, pools whose job changed
    /// restart their loops with the new settings, new jobs get a pool when their targets
    /// arrive. Unchanged jobs are not touched. Returns an error naming the jobs whose new
    /// settings could not be applied (their pools keep the old ones).
    pub async fn apply_config(&self, config: &Config) -> Result<(), Error> {
        // The phase seed hashes the host name and external labels, so replicas of an HA pair
        // scrape at different moments (upstream `setOffsetSeed`).
        let seed = fnv64a(format!("{}{}", self.seed_base, config.global.external_labels).as_bytes());
        self.deps.offset_seed.store(seed, Ordering::Relaxed);
        let mut state = self.state.lock().await;
        state.configs = config
            .scrape_configs
            .iter()
            .map(|c| (c.job_name.clone(), c.clone()))
            .collect();
        let mut failed = Vec::new();
        let names: Vec<String> = state.pools.keys().cloned().collect();
        for name in names {
            let Some(cfg) = state.configs.get(&name).cloned() else {
                if let Some(mut pool) = state.pools.remove(&name) {
                    pool.stop().await;
                }
                continue;
            };
            let sets = state.sets.clone();
            let Some(pool) = state.pools.get_mut(&name) else {
                continue;
            };
            if normalized(pool.config()) == normalized(&cfg) {
                continue;
            }
            match pool.reload(&cfg).await {
                Ok(()) => pool.sync(sets.get(&name).map_or(&[][..], Vec::as_slice)).await,
                Err(e) => {
                    error!(scrape_pool = %name, err = %e, "error reloading scrape pool");
                    failed.push(name.clone());
                }
            }
        }
        drop(state);
        // Jobs new in this config start right away when targets are already known.
        let sets = self.state.lock().await.sets.clone();
        self.sync(&sets).await;
        if failed.is_empty() {
            Ok(())
        } else {
            Err(Error::Reload(failed.join(", ")))
        }
    }

    /// Hands the latest target sets to the pools now: pools are created for jobs of the
    /// applied config that have none, and each pool syncs its targets.
    pub async fn sync(&self, sets: &Arc<TargetSets>) {
        let mut state = self.state.lock().await;
        if state.stopped {
            return;
        }
        state.sets = sets.clone();
        for (job, groups) in sets.iter() {
            if !state.pools.contains_key(job) {
                let Some(cfg) = state.configs.get(job).cloned() else {
                    continue;
                };
                self.deps.metrics.scrape_pools.inc();
                match Pool::new(&cfg, self.deps.clone()) {
                    Ok(p) => {
                        state.pools.insert(job.clone(), p);
                    }
                    Err(e) => {
                        self.deps.metrics.scrape_pools_failed.inc();
                        error!(scrape_pool = %job, err = %e, "error creating new scrape pool");
                        continue;
                    }
                }
            }
            if let Some(pool) = state.pools.get_mut(job) {
                pool.sync(groups).await;
            }
        }
    }

    /// Follows discovery's published sets, applying the latest at most once per
    /// `discovery_reload_interval` (upstream's reloader). Stops when the sender is dropped.
    pub fn run(&self, mut rx: watch::Receiver<Arc<TargetSets>>) -> JoinHandle<()> {
        let this = self.clone();
        let every = self.deps.opts.discovery_reload_interval.max(Duration::from_millis(1));
        // Target sets published before this receiver was created count as already seen by
        // it; apply the current ones first, or static targets found at start-up would never
        // be scraped.
        rx.mark_changed();
        tokio::spawn(async move {
            loop {
                if rx.changed().await.is_err() {
                    return;
                }
                let sets = rx.borrow_and_update().clone();
                this.sync(&sets).await;
                tokio::time::sleep(every).await;
            }
        })
    }

    /// Stops every pool and loop. No staleness markers are written: a restarted server
    /// continues the series (upstream behaviour).
    pub async fn stop(&self) {
        let mut state = self.state.lock().await;
        state.stopped = true;
        let pools = std::mem::take(&mut state.pools);
        for (_, mut p) in pools {
            p.stop().await;
        }
    }

    /// The scrape pool names.
    pub async fn scrape_pools(&self) -> Vec<String> {
        self.state.lock().await.pools.keys().cloned().collect()
    }

    /// The active targets per job, each sorted by URL.
    pub async fn targets_active(&self) -> BTreeMap<String, Vec<Arc<Target>>> {
        let state = self.state.lock().await;
        state
            .pools
            .iter()
            .map(|(n, p)| (n.clone(), p.active_targets()))
            .collect()
    }

    /// The discovered labels of targets relabeling dropped, per job (at most
    /// `keep_dropped_targets` each), with the total dropped per job.
    pub async fn targets_dropped(&self) -> BTreeMap<String, (Vec<Labels>, usize)> {
        let state = self.state.lock().await;
        state
            .pools
            .iter()
            .map(|(n, p)| (n.clone(), p.dropped_targets()))
            .collect()
    }

    /// The config of a pool.
    pub async fn scrape_pool_config(&self, job: &str) -> Option<ScrapeConfig> {
        self.state.lock().await.pools.get(job).map(|p| p.config().clone())
    }
}
