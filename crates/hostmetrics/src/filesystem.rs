//! `node_filesystem_*{device,fstype,mountpoint}` from the mounts of PID 1 and `statfs(2)`
//! (node_exporter filesystem_common.go, filesystem_linux.go).

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use regex::Regex;

use crate::collector::read;
use crate::{Collector, Error, Paths, Sink};

/// Upstream's `defMountPointsExcluded` (filesystem_linux.go).
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";

/// Upstream's `defFSTypesExcluded` (filesystem_linux.go, current master: includes `erofs`).
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$";

/// How long a `statfs` may take before the mount is reported as stuck
/// (`--collector.filesystem.mount-timeout`, 5s upstream).
const MOUNT_TIMEOUT: Duration = Duration::from_secs(5);

/// What `statfs(2)` says about one filesystem, in bytes and inodes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FsStat {
    pub size: f64,
    pub free: f64,
    pub avail: f64,
    pub files: f64,
    pub files_free: f64,
}

type StatFn = Arc<dyn Fn(&Path) -> io::Result<FsStat> + Send + Sync>;

/// The `filesystem` collector.
pub struct Filesystem {
    proc: PathBuf,
    rootfs: PathBuf,
    mount_points_exclude: Regex,
    fs_types_exclude: Regex,
    statfs: StatFn,
    mount_timeout: Duration,
    /// Mount points whose `statfs` has not returned within `mount_timeout`; skipped (with
    /// `device_error` 1) until the hung call returns, as upstream's `stuckMounts`.
    stuck: Arc<Mutex<HashSet<String>>>,
}

impl std::fmt::Debug for Filesystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filesystem")
            .field("proc", &self.proc)
            .field("rootfs", &self.rootfs)
            .field("mount_points_exclude", &self.mount_points_exclude.as_str())
            .field("fs_types_exclude", &self.fs_types_exclude.as_str())
            .finish_non_exhaustive()
    }
}

/// One line of `/proc/1/mounts`, the mount point unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    pub device: String,
    pub mount_point: String,
    pub fs_type: String,
    pub options: String,
}

/// Parses `/proc/<pid>/mounts`. `\040` and `\011` in the mount point become a space and a
/// tab, as fstab(5) and upstream's `parseFilesystemLabels` do.
pub(crate) fn parse_mounts(text: &str, path: &Path) -> Result<Vec<Mount>, Error> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.is_empty() {
            continue;
        }
        if parts.len() < 4 {
            return Err(Error::parse(
                path,
                i + 1,
                format!("malformed mount point information: {line:?}"),
            ));
        }
        out.push(Mount {
            device: parts[0].to_owned(),
            mount_point: parts[1].replace("\\040", " ").replace("\\011", "\t"),
            fs_type: parts[2].to_owned(),
            options: parts[3].to_owned(),
        });
    }
    Ok(out)
}

impl Filesystem {
    /// The collector with upstream's default exclusions.
    pub fn new(paths: &Paths) -> Self {
        Self::with_excludes(paths, DEFAULT_MOUNT_POINTS_EXCLUDE, DEFAULT_FS_TYPES_EXCLUDE)
            .expect("the default exclusion patterns are valid regexes")
    }

    /// The collector excluding mount points and filesystem types matching these regexes.
    pub fn with_excludes(paths: &Paths, mount_points: &str, fs_types: &str) -> Result<Self, Error> {
        let compile = |p: &str| {
            Regex::new(p).map_err(|source| Error::Pattern {
                pattern: p.to_owned(),
                source,
            })
        };
        Ok(Filesystem {
            proc: paths.proc.clone(),
            rootfs: paths.rootfs.clone(),
            mount_points_exclude: compile(mount_points)?,
            fs_types_exclude: compile(fs_types)?,
            statfs: Arc::new(crate::sys::statfs),
            mount_timeout: MOUNT_TIMEOUT,
            stuck: Arc::new(Mutex::new(HashSet::new())),
        })
    }

    /// Replaces `statfs(2)` (for tests on fixture mount tables).
    pub fn with_statfs(mut self, statfs: impl Fn(&Path) -> io::Result<FsStat> + Send + Sync + 'static) -> Self {
        self.statfs = Arc::new(statfs);
        self
    }

    /// How long a `statfs` may take before the mount is reported with `device_error` 1 and
    /// skipped until the call returns (5s, as upstream's `--collector.filesystem.mount-timeout`).
    pub fn with_mount_timeout(mut self, timeout: Duration) -> Self {
        self.mount_timeout = timeout;
        self
    }

    fn mounts(&self) -> Result<Vec<Mount>, Error> {
        let pid1 = self.proc.join("1/mounts");
        let (path, text) = match std::fs::read_to_string(&pid1) {
            Ok(t) => (pid1, t),
            // With hidepid, PID 1 is invisible; fall back to our own mount namespace.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let own = self.proc.join("mounts");
                let t = read(&own)?;
                (own, t)
            }
            Err(e) => return Err(Error::io(pid1, e)),
        };
        parse_mounts(&text, &path)
    }

    /// The mount point with the rootfs prefix stripped (upstream `rootfsStripPrefix`).
    fn strip_rootfs(&self, mount_point: &str) -> String {
        let root = self.rootfs.to_string_lossy();
        if root == "/" || root.is_empty() {
            return mount_point.to_owned();
        }
        let root = root.trim_end_matches('/');
        match mount_point.strip_prefix(root) {
            Some("") => "/".to_owned(),
            Some(rest) if rest.starts_with('/') => rest.to_owned(),
            _ => mount_point.to_owned(),
        }
    }

    /// `statfs` of `mount_point` (relative to rootfs) with the stuck-mount timeout.
    fn stat(&self, mount_point: &str) -> io::Result<FsStat> {
        let path = self.rootfs.join(mount_point.trim_start_matches('/'));
        let (tx, rx) = mpsc::channel();
        let statfs = Arc::clone(&self.statfs);
        let stuck = Arc::clone(&self.stuck);
        let mp = mount_point.to_owned();
        let worker = std::thread::Builder::new()
            .name("hostmetrics-statfs".to_owned())
            .spawn(move || {
                let r = statfs(&path);
                // Send under the lock: the collector gives up on the receiver under the same
                // lock, so either it gets this result or the mount is in `stuck` to remove.
                let mut s = stuck.lock().unwrap_or_else(|p| p.into_inner());
                if tx.send(r).is_err() {
                    s.remove(&mp);
                    tracing::debug!(mountpoint = %mp, "mount point has recovered, monitoring will resume");
                }
            });
        if let Err(e) = worker {
            // No thread available: stat inline rather than not at all.
            tracing::debug!(err = %e, "could not spawn statfs thread");
            let path = self.rootfs.join(mount_point.trim_start_matches('/'));
            return (self.statfs)(&path);
        }
        if let Ok(r) = rx.recv_timeout(self.mount_timeout) {
            return r;
        }
        let mut s = self.stuck.lock().unwrap_or_else(|p| p.into_inner());
        // The answer may have arrived between the timeout and taking the lock.
        if let Ok(r) = rx.try_recv() {
            return r;
        }
        s.insert(mount_point.to_owned());
        drop(rx);
        tracing::debug!(mountpoint = %mount_point, "mount point timed out, labeled as stuck");
        Err(io::Error::new(io::ErrorKind::TimedOut, "mountpoint timeout"))
    }
}

impl Collector for Filesystem {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn update(&mut self, sink: &mut Sink) -> Result<(), Error> {
        let mounts = self.mounts()?;
        // The same device may be mounted at the same point twice (bind mounts, mount over
        // mount); the series is exposed once, as upstream's `seen` map.
        let mut seen = HashSet::new();
        for m in mounts {
            if self.mount_points_exclude.is_match(&m.mount_point) || self.fs_types_exclude.is_match(&m.fs_type) {
                continue;
            }
            let mount_point = self.strip_rootfs(&m.mount_point);
            if !seen.insert((m.device.clone(), mount_point.clone(), m.fs_type.clone())) {
                continue;
            }
            let labels = [
                ("device", m.device.as_str()),
                ("fstype", m.fs_type.as_str()),
                ("mountpoint", mount_point.as_str()),
            ];
            let is_stuck = self
                .stuck
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&m.mount_point);
            let stat = if is_stuck {
                Err(io::Error::new(io::ErrorKind::TimedOut, "mountpoint timeout"))
            } else {
                self.stat(&m.mount_point)
            };
            let ro = if m.options.split(',').any(|o| o == "ro") {
                1.0
            } else {
                0.0
            };
            let error = match &stat {
                Ok(_) => 0.0,
                Err(e) => {
                    tracing::debug!(mountpoint = %m.mount_point, err = %e, "statfs failed");
                    1.0
                }
            };
            sink.gauge(
                "node_filesystem_device_error",
                "Whether an error occurred while getting statistics for the given device.",
                &labels,
                error,
            );
            // Upstream reports readonly 0 for a mount it could not stat (1.x); kept.
            let ro = if stat.is_ok() { ro } else { 0.0 };
            sink.gauge("node_filesystem_readonly", "Filesystem read-only status.", &labels, ro);
            let Ok(s) = stat else { continue };
            sink.gauge(
                "node_filesystem_size_bytes",
                "Filesystem size in bytes.",
                &labels,
                s.size,
            );
            sink.gauge(
                "node_filesystem_free_bytes",
                "Filesystem free space in bytes.",
                &labels,
                s.free,
            );
            sink.gauge(
                "node_filesystem_avail_bytes",
                "Filesystem space available to non-root users in bytes.",
                &labels,
                s.avail,
            );
            sink.gauge(
                "node_filesystem_files",
                "Filesystem total file nodes.",
                &labels,
                s.files,
            );
            sink.gauge(
                "node_filesystem_files_free",
                "Filesystem total free file nodes.",
                &labels,
                s.files_free,
            );
        }
        Ok(())
    }
}
