//! `file_sd_configs`: groups read from JSON and YAML files (upstream discovery/file).
//!
//! Upstream watches the files and their directories with fsnotify and re-reads everything on
//! any event, plus every `refresh_interval`. Watchfire polls instead: every poll interval
//! (a few seconds) it expands the globs and compares each file's modification time, size and
//! inode with what it last read, re-reading the ones that changed; every `refresh_interval`
//! it re-reads them all. A file that fails to read or parse keeps the groups of its last good
//! read and counts `prometheus_sd_file_read_errors_total`; a file that disappears (no longer
//! matched) loses its groups.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::error;
use watchfire_config::prometheus::FileSdConfig;

use crate::metrics::SdMetrics;
use crate::{BoxFuture, GroupSender, Provider, TargetGroup};

/// The meta label holding the file a group came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

/// What identifies one version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    mtime: Option<SystemTime>,
    len: u64,
    inode: u64,
}

#[derive(Debug)]
struct FileState {
    stamp: Option<Stamp>,
    groups: Vec<TargetGroup>,
}

/// Reads the files of one `file_sd_configs` entry.
#[derive(Debug)]
pub struct FileProvider {
    patterns: Vec<String>,
    refresh_interval: Duration,
    poll_interval: Duration,
    metrics: Arc<SdMetrics>,
    files: BTreeMap<PathBuf, FileState>,
}

impl FileProvider {
    /// A provider for `cfg`; relative patterns are taken relative to `dir` (the config file's
    /// directory). Files are checked for changes every `poll_interval`.
    pub fn new(cfg: &FileSdConfig, dir: &Path, poll_interval: Duration, metrics: Arc<SdMetrics>) -> Self {
        let patterns = cfg
            .files
            .iter()
            .map(|f| {
                if Path::new(f).is_absolute() || dir.as_os_str().is_empty() {
                    f.clone()
                } else {
                    format!(
                        "{}{}{f}",
                        glob::Pattern::escape(&dir.to_string_lossy()),
                        std::path::MAIN_SEPARATOR
                    )
                }
            })
            .collect();
        FileProvider {
            patterns,
            refresh_interval: cfg.refresh_interval.to_std().max(Duration::from_millis(10)),
            poll_interval: poll_interval.max(Duration::from_millis(10)),
            metrics,
            files: BTreeMap::new(),
        }
    }

    /// The files the patterns match now (unreadable directory entries are skipped, as Go's
    /// `filepath.Glob` does).
    fn list(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self
            .patterns
            .iter()
            .filter_map(|p| glob::glob(p).ok())
            .flat_map(|paths| paths.filter_map(Result::ok))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Brings the per-file state up to date; `full` re-reads every file. Returns whether any
    /// file's groups changed.
    pub fn scan(&mut self, full: bool) -> bool {
        let start = Instant::now();
        let listed = self.list();
        let mut changed = false;
        let gone: Vec<PathBuf> = self.files.keys().filter(|p| !listed.contains(p)).cloned().collect();
        for path in gone {
            if let Some(old) = self.files.remove(&path) {
                changed |= !old.groups.is_empty();
            }
            let _ = self.metrics.file_mtime.remove_label_values(&[&path.to_string_lossy()]);
        }
        for path in listed {
            let stamp = std::fs::metadata(&path).ok().map(|m| Stamp {
                mtime: m.modified().ok(),
                len: m.len(),
                inode: m.ino(),
            });
            let state = self.files.entry(path.clone()).or_insert(FileState {
                stamp: None,
                groups: Vec::new(),
            });
            if !full && stamp.is_some() && state.stamp == stamp {
                continue;
            }
            state.stamp = stamp;
            match read_file(&path) {
                Ok(groups) => {
                    if let Some(t) = stamp.and_then(|s| s.mtime) {
                        let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                        self.metrics
                            .file_mtime
                            .with_label_values(&[&path.to_string_lossy()])
                            .set(secs as f64);
                    }
                    if state.groups != groups {
                        state.groups = groups;
                        changed = true;
                    }
                }
                Err(e) => {
                    self.metrics.file_read_errors.inc();
                    error!(path = %path.display(), err = %e, "error reading file");
                }
            }
        }
        self.metrics
            .file_scan_duration
            .observe(&[], start.elapsed().as_secs_f64());
        changed
    }

    /// Every file's groups, in path order.
    pub fn groups(&self) -> Vec<TargetGroup> {
        self.files.values().flat_map(|f| f.groups.iter().cloned()).collect()
    }
}

/// Reads one file by its extension.
fn read_file(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let content = std::fs::read(path).map_err(|e| e.to_string())?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let written = match ext.as_str() {
        "json" => TargetGroup::parse_json_list(&content)?,
        "yml" | "yaml" => {
            let text = String::from_utf8(content).map_err(|e| e.to_string())?;
            TargetGroup::parse_yaml_list(&text, path)?
        }
        other => return Err(format!("unsupported file extension {other:?}")),
    };
    let name = path.to_string_lossy();
    Ok(written
        .into_iter()
        .enumerate()
        .map(|(i, g)| g.into_group(format!("{name}:{i}"), (FILEPATH_LABEL, &name)))
        .collect())
}

impl Provider for FileProvider {
    fn run(self: Box<Self>, tx: GroupSender) -> BoxFuture<()> {
        Box::pin(async move {
            let mut this = *self;
            let mut next_full = Instant::now();
            let mut sent_once = false;
            loop {
                let full = Instant::now() >= next_full;
                if full {
                    next_full = Instant::now() + this.refresh_interval;
                }
                // File reads are blocking I/O: do them off the async workers.
                let Ok((back, changed)) = tokio::task::spawn_blocking(move || {
                    let changed = this.scan(full);
                    (this, changed)
                })
                .await
                else {
                    return;
                };
                this = back;
                if changed || !sent_once {
                    if tx.send(this.groups()).await.is_err() {
                        return;
                    }
                    sent_once = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(this.poll_interval) => {}
                    () = tx.closed() => return,
                }
            }
        })
    }
}
