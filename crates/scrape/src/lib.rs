//! Scraping: turning discovered target groups into scrape targets and their samples into
//! stored series, as Prometheus 3 does.
//!
//! This crate owns the target label pipeline ([`target::populate_labels`], upstream
//! `PopulateLabels`), the [`Manager`] with one scrape pool per job and one loop per target
//! (tokio tasks), the HTTP scrape itself (content negotiation, gzip, limits), appending one
//! scrape per storage transaction with the synthetic `up`/`scrape_*` series, staleness
//! markers, per-target state and metadata for the HTTP API ([`Target`]), and the
//! `prometheus_target_*` self-metrics.
//!
//! It writes through the `watchfire-storage` traits only and must never depend on an engine
//! (`watchfire-tsdb` is a test dependency), on PromQL, or on the binary. Parsing is done by
//! `watchfire-textparse`; target groups come from `watchfire-discovery`. Storage calls run on
//! tokio's blocking pool, never on the async workers.

mod manager;
pub mod metrics;
mod pool;
mod scrape_loop;
pub mod scraper;
pub mod target;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use watchfire_storage::Appendable;

pub use manager::Manager;
pub use metrics::ScrapeMetrics;
pub use target::{MetricMetadata, Target, TargetHealth};

/// Where wall-clock time comes from: sample timestamps and the phase of each target in its
/// interval. Waiting always uses tokio's timers, so tests can pause time; a test clock can
/// then follow tokio's paused clock (see [`TokioClock`]).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Wall-clock time that advances with tokio's clock from a fixed start, so scrape timestamps
/// are deterministic under `tokio::time::pause`.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    start_wall: SystemTime,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `start_wall` now.
    pub fn new(start_wall: SystemTime) -> Self {
        TokioClock {
            start_wall,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        self.start_wall + self.start.elapsed()
    }
}

/// Settings of a [`Manager`] that do not come from the config file.
#[derive(Clone, Debug)]
pub struct Options {
    /// The directory relative paths of the config (credential files, CA files) are relative
    /// to.
    pub config_dir: PathBuf,
    /// The `User-Agent` of scrape requests.
    pub user_agent: String,
    /// The least time between two applications of discovery updates (upstream's hidden
    /// `--scrape.discovery-reload-interval`, 5s).
    pub discovery_reload_interval: Duration,
    /// Start every loop at once instead of at its phase in the interval (for tests).
    pub skip_offset: bool,
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config_dir: PathBuf::new(),
            user_agent: concat!("Watchfire/", env!("CARGO_PKG_VERSION")).into(),
            discovery_reload_interval: Duration::from_secs(5),
            skip_offset: false,
            clock: Arc::new(SystemClock),
        }
    }
}

/// What every pool and loop shares.
pub(crate) struct Deps {
    pub appendable: Arc<dyn Appendable>,
    pub metrics: Arc<ScrapeMetrics>,
    pub opts: Options,
    pub offset_seed: AtomicU64,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").field("opts", &self.opts).finish()
    }
}

/// Errors of the scrape crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A job's HTTP client settings are unusable.
    #[error(transparent)]
    Client(#[from] watchfire_discovery::Error),
    /// A self-metric could not be registered.
    #[error("registering metric: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Some pools could not apply the new config.
    #[error("failed to apply the new configuration to scrape pools: {0}")]
    Reload(String),
}
