//! The server's lifecycle: load the configuration, serve, reload on SIGHUP or `/-/reload`,
//! stop gracefully on SIGTERM, SIGINT or `/-/quit`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use prometheus::{Gauge, IntGauge, IntGaugeVec, Opts, Registry};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};
use watchfire_config::{alertmanager, prometheus as promcfg, rules};
use watchfire_web::{Lifecycle, Server, ServerOptions, WebConfigSource};

use crate::cli::ServerArgs;
use crate::version;

/// The embedded default prometheus.yml, used when no `--config.file` is given.
pub const DEFAULT_CONFIG: &str = include_str!("default/prometheus.yml");

/// The embedded default rules, loaded by the embedded default prometheus.yml.
pub const DEFAULT_RULES: &str = include_str!("default/rules.yml");

/// The embedded default alertmanager.yml, used when no `--alertmanager.config.file` is given.
pub const DEFAULT_ALERTMANAGER_CONFIG: &str = include_str!("default/alertmanager.yml");

/// Everything loaded from the configuration files; replaced as a whole on a good reload.
#[derive(Debug)]
pub struct Loaded {
    pub prometheus: promcfg::Config,
    pub rule_files: Vec<(PathBuf, rules::RuleFile)>,
    /// The user's alertmanager.yml, or the embedded default.
    pub alertmanager: alertmanager::Config,
    pub alertmanager_is_default: bool,
}

/// This server's own address and route prefix, for the embedded default's self-scrapes.
#[derive(Clone, Debug)]
pub struct SelfAddress {
    /// `host:port` to scrape (`localhost:<port>` when listening on all addresses).
    pub host_port: String,
    /// The normalised route prefix (empty for the root).
    pub prefix: String,
}

impl SelfAddress {
    fn new(bound: std::net::SocketAddr, route_prefix: &str) -> Self {
        let host_port = if bound.ip().is_unspecified() {
            format!("localhost:{}", bound.port())
        } else {
            bound.to_string()
        };
        SelfAddress {
            host_port,
            prefix: watchfire_web::server::normalize_route_prefix(route_prefix),
        }
    }

    /// The embedded default prometheus.yml for this server, loading its rules from
    /// `rules_file`.
    pub fn default_config(&self, rules_file: &Path) -> String {
        DEFAULT_CONFIG
            .replace("__SELF_ADDRESS__", &self.host_port)
            .replace("__ROUTE_PREFIX__", &self.prefix)
            .replace("__DEFAULT_RULES__", &rules_file.display().to_string())
    }
}

/// Loads every configuration file; any error fails the whole load.
fn load_all(args: &ServerArgs, me: &SelfAddress) -> anyhow::Result<Loaded> {
    let (prometheus, dir) = match &args.config_file {
        Some(path) => {
            let c = promcfg::Config::load(path)?;
            (c, path.parent().map(Path::to_path_buf).unwrap_or_default())
        }
        None => (
            {
                // The rules manager loads rule files, so the embedded rules are written next
                // to the data (and rewritten on every start and reload).
                std::fs::create_dir_all(&args.tsdb_path)
                    .with_context(|| format!("creating {}", args.tsdb_path.display()))?;
                let rules_file = std::path::absolute(args.tsdb_path.join("default-rules.yml"))?;
                std::fs::write(&rules_file, DEFAULT_RULES)
                    .with_context(|| format!("writing the default rules to {}", rules_file.display()))?;
                promcfg::Config::parse(
                    &me.default_config(&rules_file),
                    Path::new("<embedded default prometheus.yml>"),
                )?
            },
            PathBuf::from("."),
        ),
    };
    let mut rule_files = vec![];
    for path in prometheus.rule_file_paths(&dir)? {
        // Structure, expressions and templates, with errors at their line and column.
        let file = watchfire_rules::load_rule_file(&path)?;
        rule_files.push((path, file));
    }
    let (alertmanager, alertmanager_is_default) = match &args.alertmanager_config_file {
        Some(path) => (alertmanager::Config::load(path)?, false),
        None => (
            alertmanager::Config::parse(
                DEFAULT_ALERTMANAGER_CONFIG,
                Path::new("<embedded default alertmanager.yml>"),
            )?,
            true,
        ),
    };
    Ok(Loaded {
        prometheus,
        rule_files,
        alertmanager,
        alertmanager_is_default,
    })
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The self-metrics of reloads and readiness.
#[derive(Clone)]
struct ReloadMetrics {
    prom_ok: IntGauge,
    prom_ts: Gauge,
    am_ok: IntGauge,
    am_ts: Gauge,
    ready: IntGauge,
}

impl ReloadMetrics {
    fn register(registry: &Registry) -> anyhow::Result<Self> {
        let g = |name: &str, help: &str| -> anyhow::Result<IntGauge> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let f = |name: &str, help: &str| -> anyhow::Result<Gauge> {
            let g = Gauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        Ok(ReloadMetrics {
            prom_ok: g(
                "prometheus_config_last_reload_successful",
                "Whether the last configuration reload attempt was successful.",
            )?,
            prom_ts: f(
                "prometheus_config_last_reload_success_timestamp_seconds",
                "Timestamp of the last successful configuration reload.",
            )?,
            am_ok: g(
                "alertmanager_config_last_reload_successful",
                "Whether the last configuration reload attempt was successful.",
            )?,
            am_ts: f(
                "alertmanager_config_last_reload_success_timestamp_seconds",
                "Timestamp of the last successful configuration reload.",
            )?,
            ready: g(
                "prometheus_ready",
                "Whether Prometheus startup was fully completed and the server is ready for normal operation.",
            )?,
        })
    }

    fn record(&self, ok: bool) {
        self.prom_ok.set(i64::from(ok));
        self.am_ok.set(i64::from(ok));
        if ok {
            let now = now_seconds();
            self.prom_ts.set(now);
            self.am_ts.set(now);
        }
    }
}

fn register_build_info(registry: &Registry) -> anyhow::Result<()> {
    let info = IntGaugeVec::new(
        Opts::new(
            "prometheus_build_info",
            "A metric with a constant '1' value labeled by version, revision, branch, goversion from which prometheus was built, and the goos and goarch for the build.",
        ),
        &["branch", "goarch", "goos", "goversion", "revision", "tags", "version"],
    )?;
    let platform = version::platform();
    let (os, arch) = platform.split_once('/').unwrap_or(("unknown", "unknown"));
    info.with_label_values(&[
        version::branch(),
        arch,
        os,
        concat!("rust", env!("CARGO_PKG_RUST_VERSION")),
        version::revision(),
        "watchfire",
        version::VERSION,
    ])
    .set(1);
    registry.register(Box::new(info))?;
    registry.register(Box::new(crate::process_metrics::ProcessCollector::new()?))?;
    Ok(())
}

type ReloadReply = oneshot::Sender<Result<(), String>>;

/// What the lifecycle endpoints talk to.
struct App {
    ready: AtomicBool,
    reload_tx: mpsc::Sender<ReloadReply>,
    quit_tx: watch::Sender<bool>,
}

impl Lifecycle for App {
    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn request_reload(&self) -> oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        // If the reload loop is gone the process is stopping; dropping `tx` tells the caller.
        let _ = self.reload_tx.try_send(tx);
        rx
    }

    fn request_quit(&self) {
        let _ = self.quit_tx.send(true);
    }
}

/// The route prefix: the flag, else the path of the external URL, else the root.
/// `--web.cors.origin`, anchored as upstream anchors it.
fn cors_origin(pattern: &str) -> anyhow::Result<regex::Regex> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
        .with_context(|| format!("could not compile CORS regex string {pattern:?}"))
}

fn route_prefix(args: &ServerArgs) -> String {
    if let Some(p) = &args.route_prefix {
        return p.clone();
    }
    if let Some(url) = &args.external_url
        && let Some((_, rest)) = url.split_once("://")
        && let Some(i) = rest.find('/')
    {
        return rest[i..].to_owned();
    }
    String::new()
}

/// Runs the server until it is told to stop.
pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // One async worker unless TOKIO_WORKER_THREADS says otherwise. The async side mostly
    // moves bytes (scrape requests, the HTTP API, notifications; encoding a remote-write batch
    // is the most CPU a task of it takes); what takes CPU (parsing and appending scrapes,
    // queries, rule evaluation, compaction, remote-write intake) runs on the blocking pool. With a worker per core, every task woken handed
    // work to the idle one and woke it; side by side that cost 8-10% more CPU per scraped
    // sample (benches/README.md).
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(1);
    }
    let runtime = builder
        .enable_all()
        .thread_name("watchfire")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    // Handlers first, so that a signal during startup is handled rather than killing the
    // process with the default action.
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    info!(
        version = version::VERSION,
        revision = version::revision(),
        "Starting Watchfire"
    );
    let start_time = crate::status::now_rfc3339();
    for (set, flag) in [(args.enable_remote_write_receiver, "--web.enable-remote-write-receiver")] {
        if set {
            warn!(flag, "flag accepted but has no effect yet in this version");
        }
    }

    // Bind first: the embedded default configuration scrapes this server, so it needs the port.
    let listener = watchfire_web::bind_listener(&args.listen_address).await?;
    let me = SelfAddress::new(listener.local_addr()?, &route_prefix(&args));
    let loaded = load_all(&args, &me).context("loading configuration")?;
    info!(
        config = %args.config_file.as_deref().map_or("<embedded default>".into(), |p| p.display().to_string()),
        scrape_configs = loaded.prometheus.scrape_configs.len(),
        rule_files = loaded.rule_files.len(),
        alertmanager_config = !loaded.alertmanager_is_default,
        "Configuration loaded"
    );
    let state = Arc::new(RwLock::new(loaded));

    // Open the store (replaying its WAL) before serving, so every query sees all data.
    let path = args.tsdb_path.clone();
    let options = tsdb_options(&args, &state.read().expect("config lock is never poisoned").prometheus)?;
    info!(
        retention_time = %watchfire_model::Duration::from_millis(options.retention_time),
        retention_size_bytes = options.retention_size,
        "Storage retention"
    );
    // On this (the main) thread: nothing else runs yet, and its allocations come from the
    // main malloc arena, which grows in large steps; a fresh thread's arena grows a page at a
    // time, a system call each, which cost a fifth of restoring a head snapshot.
    let db = tokio::task::block_in_place(|| {
        std::fs::create_dir_all(&path)?;
        watchfire_tsdb::Db::open(&path, options).map_err(anyhow::Error::from)
    })
    .with_context(|| format!("opening storage at {}", args.tsdb_path.display()))?;
    let report = db.open_report();
    for corrupt in &report.corrupted_blocks {
        error!(block = ?corrupt, "a corrupt block was moved aside; its data is not served");
    }
    if let Some(c) = &report.wal_corruption {
        warn!(segment = c.segment, offset = c.offset, reason = %c.reason, "the WAL's corrupt tail was cut off; later records were lost");
    }
    if let Some(d) = &report.chunk_damage {
        warn!(file = d.file, offset = d.offset, reason = %d.reason, "a damaged head chunk file was cut off; its samples were replayed from the WAL");
    }
    if let Some(why) = &report.snapshot_skipped {
        info!(reason = %why, "head snapshot not used; the WAL was replayed");
    }
    info!(
        path = %args.tsdb_path.display(),
        series = db.head().num_series(),
        blocks = db.blocks().len(),
        from_snapshot = report.snapshot_series.is_some(),
        duration = ?report.replay_duration,
        "Storage opened"
    );
    let db = Arc::new(db);
    // Maintenance runs every minute and as soon as a commit makes a block due.
    let block_due = Arc::new(tokio::sync::Notify::new());
    {
        let due = block_due.clone();
        db.on_block_due(Box::new(move || due.notify_one()));
    }
    let maintenance = tokio::spawn(maintain_periodically(db.clone(), block_due));

    let registry = Registry::new();
    register_build_info(&registry)?;
    registry.register(Box::new(crate::tsdb_metrics::TsdbCollector::new(db.clone())?))?;
    let metrics = ReloadMetrics::register(&registry)?;
    metrics.record(true);
    // Discovery feeds scraping, which appends into the store.
    let config_dir = args
        .config_file
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let discovery = watchfire_discovery::Manager::new(
        &registry,
        watchfire_discovery::Options {
            config_dir: config_dir.clone(),
            ..Default::default()
        },
    )?;
    // Remote write reads what it sends from the WAL (one watcher per queue), so it sees every
    // sample committed: by scraping, rules and the remote-write receiver, as upstream. The
    // tracker in front of the store counts what comes in (samples in, highest timestamp).
    let remote_write = watchfire_remote::WriteStorage::new(Some(&registry), watchfire_remote::WalSource::of(&db))
        .context("starting remote write")?;
    {
        let cfg = &state.read().expect("config lock is never poisoned").prometheus;
        remote_write
            .apply_config(&cfg.remote_write, &cfg.global.external_labels, &config_dir)
            .context("starting remote write")?;
    }
    let ingest = Arc::new(Ingest {
        db: db.clone(),
        tracker: remote_write.tracker(db.clone()),
    });
    let scrape = Arc::new(watchfire_scrape::Manager::new(
        ingest.clone() as Arc<dyn watchfire_storage::Appendable>,
        &registry,
        watchfire_scrape::Options {
            config_dir: config_dir.clone(),
            ..Default::default()
        },
    )?);
    remote_write.set_metadata_source(Arc::new(crate::targets::ScrapeMetadata {
        scrape: Arc::downgrade(&scrape),
    }));
    // Subscribe before the first targets are published.
    let discovery_rx = discovery.subscribe();
    {
        let cfg = state.read().expect("config lock is never poisoned").prometheus.clone();
        scrape.apply_config(&cfg).await.context("starting scraping")?;
        discovery.apply_config(&cfg);
    }
    let feeder = scrape.run(discovery_rx);

    // The built-in Alertmanager, persisting next to the samples, delivering through the
    // notification integrations.
    let notify_options = watchfire_notify::NotifyOptions {
        config_dir: args
            .alertmanager_config_file
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
        external_url: args.external_url.clone().unwrap_or_default(),
    };
    let notifiers = {
        let loaded = state.read().expect("config lock is never poisoned");
        warn_undelivered(&loaded.alertmanager);
        Arc::new(
            watchfire_notify::Notifiers::new(&loaded.alertmanager, notify_options)
                .context("setting up notifications")?,
        )
    };
    let alerting = {
        let loaded = state.read().expect("config lock is never poisoned");
        watchfire_alerting::Alerting::open(
            loaded.alertmanager.clone(),
            watchfire_alerting::Options {
                data_dir: Some(args.tsdb_path.join("alertmanager")),
                version: watchfire_alerting::VersionInfo {
                    version: version::VERSION.to_owned(),
                    revision: version::revision().to_owned(),
                    branch: version::branch().to_owned(),
                    build_user: option_env!("WATCHFIRE_BUILD_USER").unwrap_or("unknown").to_owned(),
                    build_date: option_env!("WATCHFIRE_BUILD_DATE").unwrap_or("unknown").to_owned(),
                    go_version: concat!("rust", env!("CARGO_PKG_RUST_VERSION")).to_owned(),
                },
                ..Default::default()
            },
            notifiers.clone(),
            &registry,
        )
        .context("opening the alert store")?
    };
    let alerting = Arc::new(alerting);

    // Rules: evaluated with the same engine as the API, recording into the store (through the
    // remote-write tracker), alerting into the built-in Alertmanager and any external ones.
    let engine = watchfire_promql::engine::Engine::new(watchfire_promql::engine::EngineOptions {
        // Upstream's default: delayed __name__ removal is an opt-in feature flag.
        delayed_name_removal: false,
        ..Default::default()
    });
    let rule_sender = watchfire_rules::SharedSender::new(Some(Arc::new(watchfire_rules::senders_for_config(
        &state.read().expect("config lock is never poisoned").prometheus,
        &config_dir,
        Some(alerting.clone()),
    ))));
    let rules = {
        let mut opts = watchfire_rules::ManagerOptions::new(ingest.clone(), engine.clone());
        opts.sender = Some(Arc::new(rule_sender.clone()));
        opts.external_url = args.external_url.clone().unwrap_or_default();
        opts.registry = Some(registry.clone());
        watchfire_rules::Manager::new(opts)?
    };
    {
        let cfg = state.read().expect("config lock is never poisoned").prometheus.clone();
        rules.apply_config(&cfg, &config_dir).await.context("loading rules")?;
    }
    rules.run();
    let external_labels = watchfire_remote::ExternalLabels::new(
        state
            .read()
            .expect("config lock is never poisoned")
            .prometheus
            .global
            .external_labels
            .clone(),
    );
    let subsystems = Subsystems {
        external_labels: external_labels.clone(),
        db: db.clone(),
        scrape: scrape.clone(),
        discovery: &discovery,
        remote_write: remote_write.clone(),
        notifiers: notifiers.clone(),
        alerting: alerting.clone(),
        rules: rules.clone(),
        rule_sender: rule_sender.clone(),
        config_dir: config_dir.clone(),
    };
    let reload_state = Arc::new(RwLock::new(crate::status::ReloadState {
        success: true,
        last_success: crate::status::now_rfc3339(),
    }));
    let status = crate::status::Status {
        args: args.clone(),
        start_time,
        loaded: state.clone(),
        reload: reload_state.clone(),
    };
    let api_v1 = watchfire_web::api::router(watchfire_web::api::ApiV1 {
        storage: db.clone(),
        status: Arc::new(status),
        engine: engine.clone(),
        targets: Some(Arc::new(crate::targets::ScrapeTargets { scrape: scrape.clone() })
            as Arc<dyn watchfire_web::api::targets::TargetSource>),
        admin: args
            .enable_admin_api
            .then(|| Arc::new(Admin { db: db.clone() }) as Arc<dyn watchfire_web::api::Admin>),
    });

    let web = match &args.web_config_file {
        Some(p) => WebConfigSource::load(p).with_context(|| format!("loading web config {}", p.display()))?,
        None => WebConfigSource::none(),
    };

    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadReply>(8);
    let (quit_tx, mut quit_rx) = watch::channel(false);
    let app = Arc::new(App {
        ready: AtomicBool::new(false),
        reload_tx,
        quit_tx,
    });

    let options = ServerOptions {
        listen_address: args.listen_address.clone(),
        route_prefix: route_prefix(&args),
        enable_lifecycle: args.enable_lifecycle,
        cors_origin: Some(cors_origin(&args.cors_origin)?),
    };
    let server = Server::from_listener(
        listener,
        &options,
        Arc::new(web),
        app.clone(),
        registry.clone(),
        axum::Router::new()
            .nest("/api/v1", api_v1)
            .nest("/api/v2", alerting.router())
            .nest(
                "/api/watchfire",
                alerting
                    .history_router()
                    .merge(watchfire_notify::api::router(notifiers.clone()))
                    .merge(watchfire_rules::api::watchfire_router(rules.clone())),
            )
            .nest("/api/v1", watchfire_rules::api::router(rules.clone()))
            .merge(remote_routes(&args, &external_labels, &db, ingest.clone(), &registry))
            .merge(crate::host::router()),
    )?;
    let addr = server.local_addr()?;
    let tls = args.web_config_file.is_some();
    info!(address = %addr, tls_config = tls, "Listening on address");

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let server_task = tokio::spawn(server.run(async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));

    app.ready.store(true, Ordering::Release);
    metrics.ready.set(1);
    info!("Server is ready to receive web requests.");
    let shown = if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    };
    let prefix = watchfire_web::server::normalize_route_prefix(&route_prefix(&args));
    info!(
        ui = %format!("http://{shown}{prefix}/"),
        prometheus_api = %format!("http://{shown}{prefix}/api/v1/"),
        alertmanager_api = %format!("http://{shown}{prefix}/api/v2/"),
        metrics = %format!("http://{shown}{prefix}/metrics"),
        host_metrics = %format!("http://{shown}{prefix}/metrics/host"),
        "Serving"
    );

    loop {
        let (reason, reply) = tokio::select! {
            _ = hup.recv() => ("SIGHUP", None),
            Some(reply) = reload_rx.recv() => ("/-/reload", Some(reply)),
            _ = term.recv() => { warn!("Received SIGTERM, exiting gracefully..."); break; }
            _ = int.recv() => { warn!("Received SIGINT, exiting gracefully..."); break; }
            _ = quit_rx.wait_for(|q| *q) => { warn!("Received termination request via web service, exiting gracefully..."); break; }
        };
        info!(reason, "Loading configuration file");
        let result = match load_all(&args, &me) {
            Ok(new) => apply_reload(&new, &subsystems).await.map(|()| {
                *state
                    .write()
                    .expect("config lock is never poisoned: no panics while held") = new;
            }),
            Err(e) => Err(format!("{e:#}")),
        };
        match &result {
            Ok(()) => {
                metrics.record(true);
                *reload_state.write().expect("reload state lock is never poisoned") = crate::status::ReloadState {
                    success: true,
                    last_success: crate::status::now_rfc3339(),
                };
                info!("Completed loading of configuration file");
            }
            Err(msg) => {
                metrics.record(false);
                reload_state
                    .write()
                    .expect("reload state lock is never poisoned")
                    .success = false;
                error!(err = %msg, "Error reloading config; the running configuration stays");
            }
        }
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }
    app.ready.store(false, Ordering::Release);
    let _ = stop_tx.send(true);
    server_task.await.context("HTTP server task")??;
    discovery.stop();
    scrape.stop().await;
    rules.stop().await;
    remote_write.stop();
    alerting.shutdown();
    feeder.abort();
    let _ = feeder.await;
    maintenance.abort();
    let _ = maintenance.await;
    drop(subsystems);
    // Shutting the store down waits for a running maintenance and refuses later commits:
    // whatever still holds it (a stopped scrape loop, a finishing request) cannot add anything
    // the WAL does not have.
    let snapshot = tokio::task::spawn_blocking(move || db.shutdown())
        .await
        .context("closing storage")?
        .context("closing storage")?;
    if snapshot {
        info!("head snapshot written; the next start restores the head from it");
    }
    info!("See you next time!");
    Ok(())
}

/// Storage options: retention from the config file's `storage.tsdb.retention` when set, else
/// from the (upstream-deprecated) flags, else upstream's default of 15 days by time.
fn tsdb_options(args: &ServerArgs, config: &promcfg::Config) -> anyhow::Result<watchfire_tsdb::Options> {
    let retention = &config.storage.tsdb.retention;
    let time = if !retention.time.is_zero() {
        Some(retention.time)
    } else {
        args.retention_time
    };
    let size = if retention.size.bytes() > 0 {
        Some(retention.size.bytes())
    } else {
        match &args.retention_size {
            Some(s) => Some(
                promcfg::ByteSize::parse(s)
                    .map_err(|e| anyhow::anyhow!("--storage.tsdb.retention.size: {e}"))?
                    .bytes(),
            ),
            None => None,
        }
    };
    if retention.percentage > 0.0 {
        warn!("storage.tsdb.retention.percentage is not supported yet and has no effect");
    }
    let defaults = watchfire_tsdb::Options::default();
    Ok(watchfire_tsdb::Options {
        // Upstream: 15 days when neither limit is set; only a size limit when only size is set.
        retention_time: match (time, size) {
            (Some(t), _) => t.as_millis(),
            (None, Some(_)) => 0,
            (None, None) => defaults.retention_time,
        },
        retention_size: size.map_or(0, |b| b.max(0) as u64),
        wal_compression: args.wal_compression && !args.no_wal_compression,
        snapshot_on_shutdown: args.head_snapshot && !args.no_head_snapshot,
        packed_block_chunks: args.block_chunk_encoding == "packed",
        head: watchfire_tsdb::HeadOptions {
            out_of_order_time_window: config.storage.tsdb.out_of_order_time_window.as_millis(),
            ..defaults.head
        },
        ..defaults
    })
}

/// How often blocks are cut, compacted and retention applied (upstream reloads blocks every
/// minute).
const MAINTENANCE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

async fn maintain_periodically(db: Arc<watchfire_tsdb::Db>, block_due: Arc<tokio::sync::Notify>) {
    let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = block_due.notified() => {}
        }
        let db = db.clone();
        match tokio::task::spawn_blocking(move || db.maintain()).await {
            Ok(Ok(r)) => {
                if !(r.head_blocks.is_empty()
                    && r.compacted_blocks.is_empty()
                    && r.deleted_by_time.is_empty()
                    && r.deleted_by_size.is_empty())
                {
                    info!(
                        head_blocks = r.head_blocks.len(),
                        compacted = r.compacted_blocks.len(),
                        deleted_by_time = r.deleted_by_time.len(),
                        deleted_by_size = r.deleted_by_size.len(),
                        series_removed = r.series_removed,
                        "Storage maintenance"
                    );
                }
                if r.size_limit_exceeded {
                    warn!(
                        "the WAL and head alone exceed storage.tsdb.retention.size; no samples were deleted from them"
                    );
                }
            }
            Ok(Err(e)) => error!(err = %e, "storage maintenance failed"),
            Err(e) => error!(err = %e, "storage maintenance task failed"),
        }
    }
}

/// The admin API over the open database.
struct Admin {
    db: Arc<watchfire_tsdb::Db>,
}

impl watchfire_web::api::Admin for Admin {
    fn delete_series(&self, mint: i64, maxt: i64, matchers: &[watchfire_model::Matcher]) -> Result<(), String> {
        self.db
            .delete(mint, maxt, matchers)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn clean_tombstones(&self) -> Result<(), String> {
        self.db.clean_tombstones().map(|_| ()).map_err(|e| e.to_string())
    }

    fn snapshot(&self, skip_head: bool) -> Result<String, String> {
        // Upstream's name: <UTC time>-<16 hex digits>.
        let now = jiff::Timestamp::now();
        let stamp = now.strftime("%Y%m%dT%H%M%SZ").to_string();
        let name = format!(
            "{stamp}-{:016x}",
            std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), now.as_nanosecond())
        );
        let dir = self.db.dir().join("snapshots").join(&name);
        self.db.snapshot(&dir, !skip_head).map_err(|e| e.to_string())?;
        Ok(name)
    }
}

/// Integrations Watchfire cannot deliver to yet: warn loudly at load, since each delivery will
/// fail (visibly, in the notification history and `alertmanager_notifications_failed_total`).
fn warn_undelivered(config: &alertmanager::Config) {
    for r in &config.receivers {
        for kind in watchfire_notify::undelivered(&r.value) {
            warn!(receiver = %r.value.name, integration = %kind, "this integration is not supported yet: its notifications will fail");
        }
    }
}

/// The store as scraping, rules and the remote-write receiver see it: queries go to the
/// store, appends go through the remote-write tracker (which counts them; remote write reads
/// the samples from the WAL).
struct Ingest {
    db: Arc<watchfire_tsdb::Db>,
    tracker: watchfire_remote::TimestampTracker,
}

impl watchfire_storage::Queryable for Ingest {
    fn querier(
        &self,
        mint: watchfire_model::Timestamp,
        maxt: watchfire_model::Timestamp,
    ) -> watchfire_storage::Result<Box<dyn watchfire_storage::Querier>> {
        watchfire_storage::Queryable::querier(&*self.db, mint, maxt)
    }
}

impl watchfire_storage::Appendable for Ingest {
    fn appender(&self) -> Box<dyn watchfire_storage::Appender> {
        self.tracker.appender()
    }
}

/// `/api/v1/write` (behind `--web.enable-remote-write-receiver`, as upstream), `/api/v1/read`
/// and `/federate`, the latter two adding `external` (replaced on reload).
fn remote_routes(
    args: &ServerArgs,
    external: &watchfire_remote::ExternalLabels,
    db: &Arc<watchfire_tsdb::Db>,
    ingest: Arc<Ingest>,
    registry: &Registry,
) -> axum::Router {
    let mut router = watchfire_remote::read_router(
        db.clone(),
        watchfire_remote::ReadOptions {
            external_labels: external.clone(),
            ..Default::default()
        },
    )
    .merge(watchfire_remote::federate_router(
        db.clone(),
        watchfire_remote::FederateOptions {
            external_labels: external.clone(),
            ..Default::default()
        },
    ));
    if args.enable_remote_write_receiver {
        router = router.merge(watchfire_remote::receiver_router(
            ingest,
            Default::default(),
            Some(registry),
        ));
    }
    router
}

/// The running subsystems a reload applies a new configuration to.
struct Subsystems<'a> {
    db: Arc<watchfire_tsdb::Db>,
    scrape: Arc<watchfire_scrape::Manager>,
    discovery: &'a watchfire_discovery::Manager,
    remote_write: Arc<watchfire_remote::WriteStorage>,
    notifiers: Arc<watchfire_notify::Notifiers>,
    alerting: Arc<watchfire_alerting::Alerting>,
    rules: watchfire_rules::Manager,
    rule_sender: watchfire_rules::SharedSender,
    /// What remote read and federation add.
    external_labels: watchfire_remote::ExternalLabels,
    config_dir: PathBuf,
}

/// Applies a loaded configuration: the storage's out-of-order window, scrape, then discovery
/// (as upstream), remote write, notifications and the Alertmanager, then rules. Each step
/// refuses bad input before changing anything it owns; the first error stops the reload.
async fn apply_reload(new: &Loaded, s: &Subsystems<'_>) -> Result<(), String> {
    let p = &new.prometheus;
    // First, as upstream's reloaders start with the TSDB's `ApplyConfig`.
    s.db.set_out_of_order_time_window(p.storage.tsdb.out_of_order_time_window.as_millis());
    s.scrape
        .apply_config(p)
        .await
        .map_err(|e| format!("applying the scrape configuration: {e}"))?;
    s.discovery.apply_config(p);
    s.remote_write
        .apply_config(&p.remote_write, &p.global.external_labels, &s.config_dir)
        .map_err(|e| format!("applying the remote write configuration: {e}"))?;
    s.external_labels.set(p.global.external_labels.clone());
    s.notifiers
        .apply_config(&new.alertmanager)
        .map_err(|e| format!("applying the notification configuration: {e}"))?;
    s.alerting
        .apply_config(new.alertmanager.clone())
        .map_err(|e| format!("applying the Alertmanager configuration: {e}"))?;
    warn_undelivered(&new.alertmanager);
    s.rule_sender.set(Some(Arc::new(watchfire_rules::senders_for_config(
        p,
        &s.config_dir,
        Some(s.alerting.clone()),
    ))));
    s.rules
        .apply_config(p, &s.config_dir)
        .await
        .map_err(|e| format!("loading rules: {e}"))?;
    Ok(())
}
