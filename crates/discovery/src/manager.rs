//! The discovery manager: runs the providers of every scrape job and publishes their merged
//! groups (upstream discovery/manager.go).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use prometheus::Registry;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::error;
use watchfire_config::prometheus::{Config, DnsSdConfig, FileSdConfig, HttpSdConfig, StaticConfig};

use crate::dns::{DnsProvider, Resolver};
use crate::file::FileProvider;
use crate::http::HttpProvider;
use crate::metrics::SdMetrics;
use crate::static_targets::StaticProvider;
use crate::{Error, Provider, TargetGroup};

/// Every job's groups, by job name. Every job of the applied config is present, with an empty
/// list when it has no groups (so its scrape pool exists and drops old targets).
pub type TargetSets = BTreeMap<String, Vec<TargetGroup>>;

/// Settings of a [`Manager`].
#[derive(Clone, Debug)]
pub struct Options {
    /// The manager's name in the `name` label of its metrics (`scrape` upstream).
    pub name: String,
    /// The least time between two published updates (upstream's 5s `updatert`).
    pub update_interval: Duration,
    /// How often file SD checks its files for changes.
    pub file_poll_interval: Duration,
    /// The directory relative paths in the config are relative to.
    pub config_dir: PathBuf,
    /// The `User-Agent` of HTTP SD requests.
    pub user_agent: String,
    /// Where DNS SD sends its queries: the system's resolv.conf unless a test says otherwise.
    pub dns_resolver: Resolver,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            name: "scrape".into(),
            update_interval: Duration::from_secs(5),
            file_poll_interval: Duration::from_secs(3),
            config_dir: PathBuf::new(),
            user_agent: concat!("Watchfire/", env!("CARGO_PKG_VERSION")).into(),
            dns_resolver: Resolver::default(),
        }
    }
}

/// What a provider was made from; equal keys mean the running provider can stay.
#[derive(Clone, Debug, PartialEq)]
enum ProviderKey {
    Static(Vec<StaticConfig>),
    File(FileSdConfig),
    Http(Box<HttpSdConfig>),
    Dns(DnsSdConfig),
}

#[derive(Debug)]
struct Running {
    id: u64,
    key: ProviderKey,
    task: JoinHandle<()>,
    forwarder: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct State {
    /// Providers per job.
    jobs: BTreeMap<String, Vec<Running>>,
    /// The latest groups of each provider, by provider id.
    groups: BTreeMap<u64, Vec<TargetGroup>>,
    next_id: u64,
    dirty: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    changed: Notify,
    out: watch::Sender<Arc<TargetSets>>,
    metrics: Arc<SdMetrics>,
    opts: Options,
    runtime: tokio::runtime::Handle,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs discovery for every scrape job. Create it, [`Manager::subscribe`], then
/// [`Manager::apply_config`] on start and on every reload. Must be used inside a tokio
/// runtime; [`Manager::stop`] (or dropping it) ends every task.
#[derive(Debug)]
pub struct Manager {
    shared: Arc<Shared>,
    sender: JoinHandle<()>,
}

impl Manager {
    /// A manager with no jobs; its self-metrics are registered on `registry`.
    pub fn new(registry: &Registry, opts: Options) -> Result<Self, Error> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let metrics = Arc::new(SdMetrics::new(registry, &opts.name)?);
        metrics.failed_configs.set(0.0);
        let (out, _) = watch::channel(Arc::new(TargetSets::new()));
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            changed: Notify::new(),
            out,
            metrics,
            opts,
            runtime: handle.clone(),
        });
        let sender = handle.spawn(send_updates(shared.clone()));
        Ok(Manager { shared, sender })
    }

    /// The published target sets; the value changes at most once per update interval.
    pub fn subscribe(&self) -> watch::Receiver<Arc<TargetSets>> {
        self.shared.out.subscribe()
    }

    /// The self-metrics.
    pub fn metrics(&self) -> &Arc<SdMetrics> {
        &self.shared.metrics
    }

    /// Starts, keeps or stops providers so they match `config`'s scrape jobs. Providers whose
    /// configuration did not change keep running and keep their groups (upstream 3.x does not
    /// restart unchanged discoverers). A provider that cannot be created (a bad HTTP client
    /// setting) is logged and counted in `prometheus_sd_failed_configs`; the others start.
    pub fn apply_config(&self, config: &Config) {
        let shared = &self.shared;
        let mut failed = 0;
        let mut state = shared.lock();
        let mut wanted: BTreeMap<String, Vec<ProviderKey>> = BTreeMap::new();
        for job in &config.scrape_configs {
            let mut keys = Vec::new();
            if !job.static_configs.is_empty() {
                keys.push(ProviderKey::Static(job.static_configs.clone()));
            }
            keys.extend(job.file_sd_configs.iter().cloned().map(ProviderKey::File));
            keys.extend(
                job.http_sd_configs
                    .iter()
                    .map(|c| ProviderKey::Http(Box::new(c.clone()))),
            );
            keys.extend(job.dns_sd_configs.iter().cloned().map(ProviderKey::Dns));
            wanted.insert(job.job_name.clone(), keys);
        }
        // Stop what is no longer wanted.
        let jobs: Vec<String> = state.jobs.keys().cloned().collect();
        for job in jobs {
            let keep = wanted.get(&job).cloned().unwrap_or_default();
            let running = state.jobs.remove(&job).unwrap_or_default();
            let mut kept = Vec::new();
            for r in running {
                if keep.contains(&r.key) && !kept.iter().any(|k: &Running| k.key == r.key) {
                    kept.push(r);
                } else {
                    r.task.abort();
                    r.forwarder.abort();
                    state.groups.remove(&r.id);
                }
            }
            if wanted.contains_key(&job) {
                state.jobs.insert(job.clone(), kept);
            } else {
                shared.metrics.discovered_targets.remove_label_values(&[&job]).ok();
            }
        }
        // Start what is missing.
        for (job, keys) in wanted {
            for key in keys {
                if state.jobs.get(&job).is_some_and(|r| r.iter().any(|r| r.key == key)) {
                    continue;
                }
                let provider: Box<dyn Provider> = match &key {
                    ProviderKey::Static(c) => Box::new(StaticProvider::new(c)),
                    ProviderKey::File(c) => Box::new(FileProvider::new(
                        c,
                        &shared.opts.config_dir,
                        shared.opts.file_poll_interval,
                        shared.metrics.clone(),
                    )),
                    ProviderKey::Http(c) => match HttpProvider::new(
                        c,
                        &shared.opts.config_dir,
                        &job,
                        &shared.opts.user_agent,
                        shared.metrics.clone(),
                    ) {
                        Ok(p) => Box::new(p),
                        Err(e) => {
                            error!(job = %job, err = %e, "cannot create service discovery");
                            failed += 1;
                            continue;
                        }
                    },
                    ProviderKey::Dns(c) => Box::new(DnsProvider::new(
                        c,
                        &job,
                        shared.opts.dns_resolver.clone(),
                        shared.metrics.clone(),
                    )),
                };
                let id = state.next_id;
                state.next_id += 1;
                let (tx, rx) = mpsc::channel(1);
                let task = shared.runtime.spawn(provider.run(tx));
                let forwarder = shared.runtime.spawn(forward(Arc::downgrade(shared), id, rx));
                state.jobs.entry(job.clone()).or_default().push(Running {
                    id,
                    key,
                    task,
                    forwarder,
                });
            }
            state.jobs.entry(job).or_default();
        }
        state.dirty = true;
        drop(state);
        shared.metrics.failed_configs.set(f64::from(failed));
        shared.changed.notify_one();
    }

    /// Stops every provider; the last published sets stay.
    pub fn stop(&self) {
        let mut state = self.shared.lock();
        for r in std::mem::take(&mut state.jobs).into_values().flatten() {
            r.task.abort();
            r.forwarder.abort();
        }
        state.groups.clear();
        self.sender.abort();
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Moves a provider's updates into the shared state.
async fn forward(shared: std::sync::Weak<Shared>, id: u64, mut rx: mpsc::Receiver<Vec<TargetGroup>>) {
    while let Some(groups) = rx.recv().await {
        let Some(shared) = shared.upgrade() else { return };
        shared.metrics.received_updates.inc();
        {
            let mut state = shared.lock();
            // A provider stopped by a reload may still deliver one last update: ignore it.
            if !state.jobs.values().flatten().any(|r| r.id == id) {
                return;
            }
            state.groups.insert(id, groups);
            state.dirty = true;
        }
        shared.changed.notify_one();
    }
}

/// Publishes the merged sets whenever something changed, at most once per update interval.
async fn send_updates(shared: Arc<Shared>) {
    loop {
        shared.changed.notified().await;
        let sets = {
            let mut state = shared.lock();
            if !state.dirty {
                continue;
            }
            state.dirty = false;
            let mut sets = TargetSets::new();
            for (job, running) in &state.jobs {
                let groups: Vec<TargetGroup> = running
                    .iter()
                    .filter_map(|r| state.groups.get(&r.id))
                    .flat_map(|g| g.iter().cloned())
                    .collect();
                let count: usize = groups.iter().map(|g| g.targets.len()).sum();
                shared
                    .metrics
                    .discovered_targets
                    .with_label_values(&[job])
                    .set(count as f64);
                sets.insert(job.clone(), groups);
            }
            sets
        };
        shared.out.send_replace(Arc::new(sets));
        shared.metrics.updates.inc();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        shared.metrics.last_update.set(now.as_secs_f64());
        tokio::time::sleep(shared.opts.update_interval).await;
    }
}
