//! A scrape pool: the targets and loops of one job (upstream scrape/scrape.go `scrapePool`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;
use tracing::error;
use watchfire_config::prometheus::{Origin, ScrapeConfig};
use watchfire_discovery::TargetGroup;
use watchfire_discovery::client::HttpClient;
use watchfire_model::Labels;
use watchfire_textparse::Format;

use crate::metrics::go_duration;
use crate::scrape_loop::{Cache, LoopConfig, LoopHandle, ScrapeLoop};
use crate::scraper::{RequestHeaders, Scraper, accept_header};
use crate::target::{Target, targets_from_groups};
use crate::{Deps, Error};

/// The config without where it was written, for comparisons (a job that moved in the file
/// is the same job).
pub(crate) fn normalized(cfg: &ScrapeConfig) -> ScrapeConfig {
    let mut c = cfg.clone();
    c.origin = Origin::default();
    for r in c.relabel_configs.iter_mut().chain(c.metric_relabel_configs.iter_mut()) {
        r.origin = Origin::default();
    }
    c
}

/// Whether loops restarted for `new` may keep the caches of loops made for `old`: only
/// settings that do not change the stored series differ (upstream `reusableCache`).
fn reusable_cache(old: &ScrapeConfig, new: &ScrapeConfig) -> bool {
    let zero = |c: &ScrapeConfig| {
        let mut z = normalized(c);
        z.scrape_interval = Default::default();
        z.scrape_timeout = Default::default();
        z.sample_limit = 0;
        z.basic_auth = None;
        z.authorization = None;
        z.oauth2 = Default::default();
        z.bearer_token = None;
        z.bearer_token_file = None;
        z.tls_config = Default::default();
        z.follow_redirects = true;
        z.enable_http2 = true;
        z.proxy_url = None;
        z.no_proxy = None;
        z.proxy_from_environment = false;
        z.proxy_connect_header.clear();
        z.http_headers.clear();
        z
    };
    zero(old) == zero(new)
}

struct Active {
    target: Arc<Target>,
    handle: LoopHandle,
}

/// The targets and loops of one job.
pub(crate) struct Pool {
    name: String,
    config: ScrapeConfig,
    client: HttpClient,
    active: HashMap<u64, Active>,
    dropped: Vec<Labels>,
    dropped_count: usize,
    shutdown: watch::Sender<bool>,
    deps: Arc<Deps>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name)
            .field("targets", &self.active.len())
            .finish()
    }
}

fn client_for(cfg: &ScrapeConfig, dir: &Path) -> Result<HttpClient, Error> {
    HttpClient::new(&cfg.http_client(), dir, &format!("job {:?}", cfg.job_name)).map_err(Error::from)
}

impl Pool {
    pub fn new(cfg: &ScrapeConfig, deps: Arc<Deps>) -> Result<Self, Error> {
        let client = client_for(cfg, &deps.opts.config_dir)?;
        deps.metrics
            .pool_target_limit
            .with_label_values(&[&cfg.job_name])
            .set(cfg.target_limit as f64);
        Ok(Pool {
            name: cfg.job_name.clone(),
            config: cfg.clone(),
            client,
            active: HashMap::new(),
            dropped: Vec::new(),
            dropped_count: 0,
            shutdown: watch::channel(false).0,
            deps,
        })
    }

    pub fn config(&self) -> &ScrapeConfig {
        &self.config
    }

    fn loop_for(&self, target: &Arc<Target>, cache: Arc<Mutex<Cache>>) -> Arc<ScrapeLoop> {
        let c = &self.config;
        let scheme = c.name_validation_scheme();
        let escaping = c
            .metric_name_escaping_scheme
            .unwrap_or(watchfire_config::prometheus::EscapingScheme::AllowUtf8);
        let cfg = LoopConfig {
            honor_labels: c.honor_labels,
            honor_timestamps: c.honor_timestamps,
            track_timestamps_staleness: c.track_timestamps_staleness,
            metric_relabel_configs: c.metric_relabel_configs.clone(),
            scheme,
            sample_limit: c.sample_limit,
            label_limit: c.label_limit,
            label_name_length_limit: c.label_name_length_limit,
            label_value_length_limit: c.label_value_length_limit,
            fallback: c
                .fallback_scrape_protocol
                .and_then(|p| Format::from_scrape_protocol(p.as_str())),
            interval: target.interval(),
            timeout: target.timeout(),
            extra_metrics: c.extra_scrape_metrics_enabled(),
        };
        let scraper = Scraper::new(
            self.client.clone(),
            target.url().to_owned(),
            target.timeout(),
            u64::try_from(c.body_size_limit.bytes()).unwrap_or(0),
            RequestHeaders {
                accept: accept_header(c.protocols(), escaping),
                enable_compression: c.enable_compression,
                user_agent: self.deps.opts.user_agent.clone(),
            },
        );
        Arc::new(ScrapeLoop {
            target: target.clone(),
            cfg,
            scraper,
            cache,
            appendable: self.deps.appendable.clone(),
            metrics: self.deps.metrics.clone(),
            clock: self.deps.opts.clock.clone(),
            offset_seed: self.deps.offset_seed.load(Ordering::Relaxed),
            skip_offset: self.deps.opts.skip_offset,
            forced_error: Mutex::new(None),
            end_of_run_disabled: AtomicBool::new(false),
            interval_metrics: std::sync::OnceLock::new(),
        })
    }

    /// The forced error of every loop when the pool has more targets than `target_limit`.
    fn target_limit_error(&self) -> Option<String> {
        let limit = self.config.target_limit;
        let n = self.active.len();
        if limit == 0 || n as u64 <= limit {
            return None;
        }
        self.deps.metrics.exceeded_target_limit.inc();
        Some(format!(
            "target_limit exceeded (number of targets: {n}, limit: {limit})"
        ))
    }

    /// Replaces the targets with those of `groups` (upstream `Sync` and `sync`): unchanged
    /// targets keep their loops, new ones start, vanished ones stop (and write staleness
    /// markers two intervals later unless they come back).
    pub async fn sync(&mut self, groups: &[TargetGroup]) {
        let start = Instant::now();
        let defaults = (
            self.config.scrape_interval.to_std(),
            self.config.scrape_timeout.to_std(),
        );
        let (found, dropped, failures) = targets_from_groups(&self.config, groups);
        for f in &failures {
            error!(scrape_pool = %self.name, err = %f, "creating target failed");
        }
        self.deps
            .metrics
            .sync_failed
            .with_label_values(&[&self.name])
            .inc_by(failures.len() as u64);
        let keep = self.config.keep_dropped_targets;
        self.dropped_count = dropped.len();
        self.dropped = if keep == 0 {
            dropped
        } else {
            dropped.into_iter().take(keep as usize).collect()
        };
        let mut seen: HashMap<u64, ()> = HashMap::new();
        let mut started = Vec::new();
        let shutdown = self.shutdown.subscribe();
        for (labels, discovered) in found {
            let target = Arc::new(Target::new(
                labels,
                discovered,
                &self.name,
                &self.config.params,
                defaults,
            ));
            let hash = target.hash();
            if seen.insert(hash, ()).is_some() {
                continue;
            }
            match self.active.get(&hash) {
                Some(a) => a.target.set_discovered_labels(target.discovered_labels()),
                None => {
                    let l = self.loop_for(&target, Arc::default());
                    started.push(l.clone());
                    let handle = LoopHandle::start(l, shutdown.clone());
                    self.active.insert(hash, Active { target, handle });
                }
            }
        }
        let gone: Vec<u64> = self.active.keys().filter(|h| !seen.contains_key(h)).copied().collect();
        let mut stopping = Vec::new();
        for h in gone {
            if let Some(a) = self.active.remove(&h) {
                stopping.push(a.handle.stop());
            }
        }
        self.deps
            .metrics
            .pool_targets
            .with_label_values(&[&self.name])
            .set(self.active.len() as f64);
        let forced = self.target_limit_error();
        for a in self.active.values() {
            a.handle.inner.set_forced_error(forced.clone());
        }
        for s in stopping {
            s.await;
        }
        let secs = start.elapsed().as_secs_f64();
        let m = &self.deps.metrics;
        m.sync_length.observe(&[&self.name], secs);
        m.sync_length_histogram.with_label_values(&[&self.name]).observe(secs);
        m.pool_syncs.with_label_values(&[&self.name]).inc();
    }

    /// Applies a changed config: every loop restarts with it, keeping its cache when the
    /// change cannot alter the stored series (upstream `reload`). The caller syncs targets
    /// again afterwards so relabeling changes take effect.
    pub async fn reload(&mut self, cfg: &ScrapeConfig) -> Result<(), Error> {
        let start = Instant::now();
        self.deps.metrics.pool_reloads.inc();
        let client = match client_for(cfg, &self.deps.opts.config_dir) {
            Ok(c) => c,
            Err(e) => {
                self.deps.metrics.pool_reloads_failed.inc();
                return Err(e);
            }
        };
        let reuse = reusable_cache(&self.config, cfg);
        self.config = cfg.clone();
        self.client = client;
        self.deps
            .metrics
            .pool_target_limit
            .with_label_values(&[&self.name])
            .set(cfg.target_limit as f64);
        let forced = self.target_limit_error();
        let shutdown = self.shutdown.subscribe();
        let old: Vec<(u64, Active)> = self.active.drain().collect();
        let defaults = (cfg.scrape_interval.to_std(), cfg.scrape_timeout.to_std());
        for (_, a) in old {
            let cache = if reuse {
                a.handle.inner.end_of_run_disabled.store(true, Ordering::Relaxed);
                a.handle.inner.cache.clone()
            } else {
                Arc::default()
            };
            a.handle.stop().await;
            // The target keeps its state unless the new params change its URL.
            let target = if crate::target::scrape_url(a.target.all_labels(), &cfg.params) == a.target.url() {
                a.target.clone()
            } else {
                Arc::new(Target::new(
                    a.target.all_labels().clone(),
                    a.target.discovered_labels(),
                    &self.name,
                    &cfg.params,
                    defaults,
                ))
            };
            let l = self.loop_for(&target, cache);
            l.set_forced_error(forced.clone());
            let handle = LoopHandle::start(l, shutdown.clone());
            self.active.insert(target.hash(), Active { target, handle });
        }
        self.deps.metrics.reload_length.observe(
            &[&go_duration(cfg.scrape_interval.to_std())],
            start.elapsed().as_secs_f64(),
        );
        Ok(())
    }

    /// Stops every loop; no end-of-run staleness markers are written.
    pub async fn stop(&mut self) {
        let _ = self.shutdown.send(true);
        let loops: Vec<Active> = self.active.drain().map(|(_, a)| a).collect();
        for a in loops {
            a.handle.stop().await;
        }
        let m = &self.deps.metrics;
        for v in [&m.pool_target_limit, &m.pool_targets] {
            let _ = v.remove_label_values(&[&self.name]);
        }
        let _ = m.pool_syncs.remove_label_values(&[&self.name]);
        let _ = m.sync_failed.remove_label_values(&[&self.name]);
        let _ = m.sync_length_histogram.remove_label_values(&[&self.name]);
        m.sync_length.remove(&[&self.name]);
    }

    /// The active targets, sorted by URL.
    pub fn active_targets(&self) -> Vec<Arc<Target>> {
        let mut out: Vec<Arc<Target>> = self.active.values().map(|a| a.target.clone()).collect();
        out.sort_by(|a, b| a.url().cmp(b.url()));
        out
    }

    /// The dropped targets' discovered labels (at most `keep_dropped_targets`), and how many
    /// were dropped in all.
    pub fn dropped_targets(&self) -> (Vec<Labels>, usize) {
        (self.dropped.clone(), self.dropped_count)
    }
}
