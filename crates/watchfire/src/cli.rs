//! Command-line flags, named as Prometheus names them wherever Prometheus has the flag.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// One binary that does the work of Prometheus and Alertmanager.
#[derive(Debug, Parser)]
#[command(
    name = "watchfire",
    disable_version_flag = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Print version and build information, as `prometheus --version` does.
    #[arg(long, short = 'V')]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Flags of the server (running `watchfire` without a subcommand).
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Prometheus configuration file. Without it, Watchfire runs on its embedded default.
    #[arg(long = "config.file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,

    /// Alertmanager configuration file for the built-in alert dispatcher.
    #[arg(long = "alertmanager.config.file", value_name = "FILE")]
    pub alertmanager_config_file: Option<PathBuf>,

    /// Address to listen on for the UI, API and telemetry.
    #[arg(long = "web.listen-address", value_name = "ADDRESS", default_value = "0.0.0.0:9090")]
    pub listen_address: String,

    /// The URL under which Watchfire is externally reachable (for links and generator URLs).
    #[arg(long = "web.external-url", value_name = "URL")]
    pub external_url: Option<String>,

    /// Prefix for the internal routes of web endpoints. Defaults to the path of
    /// --web.external-url.
    #[arg(long = "web.route-prefix", value_name = "PATH")]
    pub route_prefix: Option<String>,

    /// Enable shutdown and reload via HTTP request (/-/quit, /-/reload).
    #[arg(long = "web.enable-lifecycle")]
    pub enable_lifecycle: bool,

    /// Regex for CORS origin. It is fully anchored. Example: 'https?://(domain1|domain2)\.com'
    #[arg(long = "web.cors.origin", value_name = "REGEX", default_value = ".*")]
    pub cors_origin: String,

    /// Enable the admin API endpoints (delete_series, clean_tombstones, snapshot).
    #[arg(long = "web.enable-admin-api")]
    pub enable_admin_api: bool,

    /// Accept remote write requests at /api/v1/write.
    #[arg(long = "web.enable-remote-write-receiver")]
    pub enable_remote_write_receiver: bool,

    /// Path to a web configuration file (exporter-toolkit format) that enables TLS and/or
    /// basic authentication on every endpoint.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,

    /// Base path for metrics storage.
    #[arg(long = "storage.tsdb.path", value_name = "PATH", default_value = "data/")]
    pub tsdb_path: PathBuf,

    /// How long to retain samples in storage (default 15d when no size limit is set).
    #[arg(long = "storage.tsdb.retention.time", value_name = "DURATION")]
    pub retention_time: Option<watchfire_model::Duration>,

    /// The maximum number of bytes of storage blocks, WAL and head to retain (units
    /// supported: B, KB, MB, GB, TB, PB, EB).
    #[arg(long = "storage.tsdb.retention.size", value_name = "SIZE")]
    pub retention_size: Option<String>,

    /// Compress the WAL with Snappy (on by default; --no-storage.tsdb.wal-compression turns it
    /// off). A WAL written either way is read either way.
    #[arg(
        long = "storage.tsdb.wal-compression",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value_t = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        overrides_with = "no_wal_compression"
    )]
    pub wal_compression: bool,

    /// The negated form of --storage.tsdb.wal-compression, as Prometheus' flags have.
    #[arg(
        long = "no-storage.tsdb.wal-compression",
        hide = true,
        overrides_with = "wal_compression"
    )]
    pub no_wal_compression: bool,

    /// On a clean shutdown, write a snapshot of the in-memory head that the next start restores
    /// instead of replaying the WAL (much faster; the WAL is kept, a crash falls back to it).
    /// On by default; it takes about as much disk as the samples of the open head chunks until
    /// the next start removes it. Upstream has it as the opt-in feature
    /// `memory-snapshot-on-shutdown`.
    #[arg(
        long = "storage.tsdb.head-snapshot-on-shutdown",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value_t = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        overrides_with = "no_head_snapshot"
    )]
    pub head_snapshot: bool,

    /// The negated form of --storage.tsdb.head-snapshot-on-shutdown.
    #[arg(
        long = "no-storage.tsdb.head-snapshot-on-shutdown",
        hide = true,
        overrides_with = "head_snapshot"
    )]
    pub no_head_snapshot: bool,

    /// Chunk encoding of the blocks compaction writes: `packed` (Watchfire's, a fraction of
    /// the bytes per sample; see storage/tsdb/FORMAT.md) or `xor` (upstream's, so that
    /// Prometheus and promtool can read the blocks). Blocks of either encoding are read
    /// whatever this is; blocks already written keep theirs until compacted again.
    #[arg(long = "storage.tsdb.block-chunk-encoding", value_name = "ENCODING", default_value = "packed", value_parser = ["packed", "xor"])]
    pub block_chunk_encoding: String,

    /// Only log messages with the given severity or above: debug, info, warn, error.
    #[arg(long = "log.level", value_name = "LEVEL", default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
    pub log_level: String,

    /// Output format of log messages: logfmt or json.
    #[arg(long = "log.format", value_name = "FORMAT", default_value = "logfmt", value_parser = ["logfmt", "json"])]
    pub log_format: String,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check configuration files, as promtool and amtool check them.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Run tests, as promtool does.
    #[command(subcommand)]
    Test(TestCommand),
    /// Work with rules: `rules backtest` replays alerting rules over stored history.
    #[command(subcommand)]
    Rules(crate::backtest_cmd::RulesCommand),
    /// Work with the Alertmanager routing tree, as amtool's `config routes` does.
    #[command(subcommand)]
    Routes(RoutesCommand),
    /// Print the embedded default configuration (prometheus.yml, its rules and
    /// alertmanager.yml), to start your own from.
    #[command(name = "print-default-config")]
    PrintDefaultConfig,
    /// Send notifications by hand, to check receivers.
    #[command(subcommand)]
    Notify(NotifyCommand),
}

/// `watchfire notify ...`
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a made-up firing alert (alertname="WatchfireTest") through every integration of a
    /// receiver, once each, and report each one. Exits 0 when all succeeded, 1 when one
    /// failed, 2 when the configuration cannot be loaded or has no such receiver.
    Test(NotifyTestArgs),
}

/// `watchfire notify test`
#[derive(Debug, Args)]
pub struct NotifyTestArgs {
    /// The receiver to test.
    #[arg(long, value_name = "NAME")]
    pub receiver: String,

    /// The Alertmanager configuration file, as given to the server. Without it, the embedded
    /// default.
    #[arg(long = "alertmanager.config.file", value_name = "FILE")]
    pub alertmanager_config_file: Option<PathBuf>,

    /// The URL under which Watchfire is externally reachable, as given to the server (the
    /// templates' .ExternalURL, used in links).
    #[arg(long = "web.external-url", value_name = "URL")]
    pub external_url: Option<String>,

    /// How long to wait for each integration.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub timeout: watchfire_model::Duration,
}

/// `watchfire routes ...`
#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// Print the receivers an alert with the given labels is routed to, in routing-tree
    /// order, comma-separated (as `amtool config routes test`).
    Test {
        /// Alertmanager configuration file (default: the embedded default).
        #[arg(long = "alertmanager.config.file", alias = "config.file", value_name = "FILE")]
        config_file: Option<PathBuf>,
        /// Fail unless the alert routes to exactly these receivers (comma-separated).
        #[arg(long = "verify.receivers", value_name = "RECEIVERS")]
        verify_receivers: Option<String>,
        /// Also print the matching routes as a tree.
        #[arg(long)]
        tree: bool,
        /// The alert's labels as name=value.
        #[arg(value_name = "LABELS")]
        labels: Vec<String>,
    },
}

/// `watchfire test ...`
#[derive(Debug, Subcommand)]
pub enum TestCommand {
    /// Run rule unit tests written in promtool's format.
    Rules {
        /// Only run test groups whose name matches one of these regular expressions.
        #[arg(long = "run", value_name = "REGEX")]
        run: Vec<String>,
        #[arg(required = true, value_name = "TEST-RULE-FILES")]
        files: Vec<PathBuf>,
    },
}

/// `watchfire check ...`
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Check Prometheus configuration files and the rule files they name.
    Config {
        #[arg(required = true, value_name = "CONFIG-FILES")]
        files: Vec<PathBuf>,
    },
    /// Check rule files.
    Rules {
        #[arg(required = true, value_name = "RULE-FILES")]
        files: Vec<PathBuf>,
    },
    /// Check web configuration files (TLS and basic authentication).
    #[command(name = "web-config")]
    WebConfig {
        #[arg(required = true, value_name = "WEB-CONFIG-FILES")]
        files: Vec<PathBuf>,
    },
    /// Check Alertmanager configuration files.
    #[command(name = "alertmanager-config")]
    AlertmanagerConfig {
        #[arg(required = true, value_name = "CONFIG-FILES")]
        files: Vec<PathBuf>,
    },
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    #[test]
    fn block_chunk_encoding_flag() {
        let enc = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("watchfire").chain(args.iter().copied()))
                .map(|cli| cli.server.block_chunk_encoding)
        };
        assert_eq!(enc(&[]).unwrap(), "packed");
        assert_eq!(enc(&["--storage.tsdb.block-chunk-encoding=xor"]).unwrap(), "xor");
        assert!(enc(&["--storage.tsdb.block-chunk-encoding=zstd"]).is_err());
    }

    #[test]
    fn head_snapshot_flag_forms() {
        let on = |args: &[&str]| {
            let cli = Cli::try_parse_from(std::iter::once("watchfire").chain(args.iter().copied())).unwrap();
            cli.server.head_snapshot && !cli.server.no_head_snapshot
        };
        assert!(on(&[]));
        assert!(!on(&["--storage.tsdb.head-snapshot-on-shutdown=false"]));
        assert!(!on(&["--no-storage.tsdb.head-snapshot-on-shutdown"]));
        assert!(on(&["--storage.tsdb.head-snapshot-on-shutdown"]));
    }

    /// Every form Prometheus' (kingpin) boolean flag accepts; the last one given wins.
    #[test]
    fn wal_compression_flag_forms() {
        let on = |args: &[&str]| {
            let cli = Cli::try_parse_from(std::iter::once("watchfire").chain(args.iter().copied())).unwrap();
            cli.server.wal_compression && !cli.server.no_wal_compression
        };
        assert!(on(&[]));
        assert!(on(&["--storage.tsdb.wal-compression"]));
        assert!(on(&["--storage.tsdb.wal-compression=true"]));
        assert!(!on(&["--storage.tsdb.wal-compression=false"]));
        assert!(!on(&["--no-storage.tsdb.wal-compression"]));
        assert!(on(&[
            "--no-storage.tsdb.wal-compression",
            "--storage.tsdb.wal-compression"
        ]));
        assert!(!on(&[
            "--storage.tsdb.wal-compression",
            "--no-storage.tsdb.wal-compression"
        ]));
    }
}
