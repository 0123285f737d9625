//! What `/api/v1/status/*` reports about this process.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use watchfire_web::api::{BuildInfo, RuntimeInfo, StatusSource};

use crate::cli::ServerArgs;
use crate::run::Loaded;
use crate::version;

/// Facts that change on reloads, updated by the run loop.
#[derive(Debug)]
pub struct ReloadState {
    pub success: bool,
    /// When the configuration was last loaded successfully (RFC 3339).
    pub last_success: String,
}

/// The status source handed to the web crate.
pub struct Status {
    pub args: ServerArgs,
    pub start_time: String,
    pub loaded: Arc<RwLock<Loaded>>,
    pub reload: Arc<RwLock<ReloadState>>,
}

/// Now, as RFC 3339 with nanoseconds as upstream prints times.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

impl StatusSource for Status {
    fn build_info(&self) -> BuildInfo {
        BuildInfo {
            version: version::VERSION.to_owned(),
            revision: version::revision().to_owned(),
            branch: version::branch().to_owned(),
            build_user: option_env!("WATCHFIRE_BUILD_USER").unwrap_or("unknown").to_owned(),
            build_date: option_env!("WATCHFIRE_BUILD_DATE").unwrap_or("unknown").to_owned(),
            go_version: concat!("rust", env!("CARGO_PKG_RUST_VERSION")).to_owned(),
        }
    }

    fn runtime_info(&self) -> RuntimeInfo {
        let reload = self.reload.read().expect("reload state lock is never poisoned");
        let threads = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().parse().unwrap_or(0)))
            })
            .unwrap_or(0);
        RuntimeInfo {
            start_time: self.start_time.clone(),
            cwd: std::env::current_dir()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            server_time: now_rfc3339(),
            reload_config_success: reload.success,
            last_config_time: reload.last_success.clone(),
            corruption_count: 0,
            goroutine_count: threads,
            gomaxprocs: std::thread::available_parallelism().map_or(1, |n| n.get() as i64),
            gomemlimit: 0,
            gogc: String::new(),
            godebug: String::new(),
            storage_retention: self.args.retention_time.map_or("15d".to_owned(), |d| d.to_string()),
        }
    }

    fn flags(&self) -> BTreeMap<String, String> {
        let a = &self.args;
        let opt = |v: &Option<std::path::PathBuf>| v.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        BTreeMap::from([
            ("config.file".to_owned(), opt(&a.config_file)),
            ("alertmanager.config.file".to_owned(), opt(&a.alertmanager_config_file)),
            ("web.listen-address".to_owned(), a.listen_address.clone()),
            (
                "web.external-url".to_owned(),
                a.external_url.clone().unwrap_or_default(),
            ),
            (
                "web.route-prefix".to_owned(),
                a.route_prefix.clone().unwrap_or_default(),
            ),
            ("web.enable-lifecycle".to_owned(), a.enable_lifecycle.to_string()),
            ("web.enable-admin-api".to_owned(), a.enable_admin_api.to_string()),
            ("web.cors.origin".to_owned(), a.cors_origin.clone()),
            (
                "web.enable-remote-write-receiver".to_owned(),
                a.enable_remote_write_receiver.to_string(),
            ),
            ("web.config.file".to_owned(), opt(&a.web_config_file)),
            ("storage.tsdb.path".to_owned(), a.tsdb_path.display().to_string()),
            (
                "storage.tsdb.retention.time".to_owned(),
                a.retention_time.map(|d| d.to_string()).unwrap_or_default(),
            ),
            (
                "storage.tsdb.retention.size".to_owned(),
                a.retention_size.clone().unwrap_or_default(),
            ),
            ("log.level".to_owned(), a.log_level.clone()),
            ("log.format".to_owned(), a.log_format.clone()),
        ])
    }

    fn config_yaml(&self) -> String {
        let loaded = self.loaded.read().expect("config lock is never poisoned");
        serde_saphyr::to_string(&loaded.prometheus)
            .unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }
}
