//! `node_cpu_seconds_total{cpu,mode}` and `node_cpu_guest_seconds_total{cpu,mode}` from the
//! `cpuN` lines of `/proc/stat` (node_exporter cpu_linux.go `updateStat`), plus the thermal
//! throttle counters and isolated CPUs from `/sys/devices/system/cpu` (`updateThermalThrottle`,
//! `updateIsolated`). `node_cpu_info` and the flag/bug info metrics are off by default upstream
//! and not offered.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::collector::read;
use crate::{Collector, Error, Paths, Sink};

/// The kernel's `USER_HZ`, fixed at 100 on every architecture for `/proc/stat` (procfs'
/// `userHZ`).
const USER_HZ: f64 = 100.0;

/// If idle time goes back by this much, the CPU was probably hot-unplugged and plugged in
/// again; its remembered counters are dropped (upstream `jumpBackSeconds`).
const JUMP_BACK_SECONDS: f64 = 3.0;

/// The ten `/proc/stat` CPU columns, in file order.
const MODES: [&str; 8] = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];
const GUEST: usize = 8;
const GUEST_NICE: usize = 9;
const IDLE: usize = 3;

/// The `cpu` collector. It remembers the last value of each counter so that a counter the
/// kernel moves backwards (seen with iowait and on some hypervisors) is reported unchanged
/// instead of as a reset, as upstream `updateCPUStats` does.
#[derive(Debug)]
pub struct Cpu {
    path: PathBuf,
    sys_cpu: PathBuf,
    last: BTreeMap<u32, [f64; 10]>,
}

impl Cpu {
    pub fn new(paths: &Paths) -> Self {
        Cpu {
            path: paths.proc.join("stat"),
            sys_cpu: paths.sys.join("devices/system/cpu"),
            last: BTreeMap::new(),
        }
    }
}

/// The per-CPU lines of `/proc/stat`, in seconds; columns older kernels lack are 0.
pub(crate) fn parse_cpus(text: &str, path: &Path) -> Result<BTreeMap<u32, [f64; 10]>, Error> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        let Some(num) = first.strip_prefix("cpu") else { continue };
        if num.is_empty() {
            continue; // the "cpu" total line
        }
        let id: u32 = num
            .parse()
            .map_err(|_| Error::parse(path, i + 1, format!("invalid cpu {first:?}")))?;
        let mut values = [0.0; 10];
        for (slot, field) in values.iter_mut().zip(fields) {
            let ticks: u64 = field
                .parse()
                .map_err(|_| Error::parse(path, i + 1, format!("invalid value {field:?}")))?;
            *slot = ticks as f64 / USER_HZ;
        }
        out.insert(id, values);
    }
    Ok(out)
}

/// The CPUs of a sysfs CPU list (`0-2,5`); empty for an empty list.
pub(crate) fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if b < a {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl Cpu {
    /// Throttle counts are per core and per package; every CPU of a core or package repeats
    /// them, so each is read once (upstream reads the first CPU's file).
    fn throttles(&self, sink: &mut Sink) {
        let Ok(entries) = std::fs::read_dir(&self.sys_cpu) else {
            return;
        };
        let mut cpus: Vec<(u32, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let n = e.file_name().to_str()?.strip_prefix("cpu")?.parse().ok()?;
                Some((n, e.path()))
            })
            .collect();
        cpus.sort();
        let mut packages: BTreeMap<u64, Option<u64>> = BTreeMap::new();
        let mut cores: BTreeMap<(u64, u64), Option<u64>> = BTreeMap::new();
        for (_, dir) in cpus {
            let (Some(package), Some(core)) = (
                read_u64(&dir.join("topology/physical_package_id")),
                read_u64(&dir.join("topology/core_id")),
            ) else {
                continue;
            };
            cores
                .entry((package, core))
                .or_insert_with(|| read_u64(&dir.join("thermal_throttle/core_throttle_count")));
            packages
                .entry(package)
                .or_insert_with(|| read_u64(&dir.join("thermal_throttle/package_throttle_count")));
        }
        for (package, count) in packages {
            if let Some(c) = count {
                sink.counter(
                    "node_cpu_package_throttles_total",
                    "Number of times this CPU package has been throttled.",
                    &[("package", &package.to_string())],
                    c as f64,
                );
            }
        }
        for ((package, core), count) in cores {
            if let Some(c) = count {
                sink.counter(
                    "node_cpu_core_throttles_total",
                    "Number of times this CPU core has been throttled.",
                    &[("package", &package.to_string()), ("core", &core.to_string())],
                    c as f64,
                );
            }
        }
    }

    fn isolated(&self, sink: &mut Sink) {
        let Ok(text) = std::fs::read_to_string(self.sys_cpu.join("isolated")) else {
            return;
        };
        let Some(cpus) = parse_cpu_list(&text) else {
            tracing::debug!(list = %text.trim(), "unparsable isolated CPU list");
            return;
        };
        for cpu in cpus {
            sink.gauge(
                "node_cpu_isolated",
                "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
                &[("cpu", &cpu.to_string())],
                1.0,
            );
        }
    }

    fn remember(&mut self, now: BTreeMap<u32, [f64; 10]>) {
        self.last.retain(|id, _| now.contains_key(id));
        for (id, new) in now {
            let old = self.last.entry(id).or_insert([0.0; 10]);
            if old[IDLE] - new[IDLE] >= JUMP_BACK_SECONDS {
                tracing::debug!(cpu = id, "CPU idle counter jumped backwards, resetting its counters");
                *old = [0.0; 10];
            }
            for (o, n) in old.iter_mut().zip(new) {
                if n >= *o {
                    *o = n;
                }
            }
        }
    }
}

impl Collector for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn update(&mut self, sink: &mut Sink) -> Result<(), Error> {
        let text = read(&self.path)?;
        let now = parse_cpus(&text, &self.path)?;
        self.remember(now);
        for (id, values) in &self.last {
            let cpu = id.to_string();
            for (mode, value) in MODES.iter().zip(values) {
                sink.counter(
                    "node_cpu_seconds_total",
                    "Seconds the CPUs spent in each mode.",
                    &[("cpu", &cpu), ("mode", mode)],
                    *value,
                );
            }
            // Guest time is also counted in user and nice; exposed separately.
            for (mode, idx) in [("user", GUEST), ("nice", GUEST_NICE)] {
                sink.counter(
                    "node_cpu_guest_seconds_total",
                    "Seconds the CPUs spent in guests (VMs) for each mode.",
                    &[("cpu", &cpu), ("mode", mode)],
                    values[idx],
                );
            }
        }
        self.isolated(sink);
        self.throttles(sink);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("\n"), Some(vec![]));
        assert_eq!(parse_cpu_list("0-2,5\n"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn counters_never_go_backwards_but_hotplug_resets() {
        let dir = tempfile::tempdir().unwrap();
        let mut cpu = Cpu::new(&Paths::under(dir.path()));
        let mk = |idle: f64, iowait: f64| {
            let mut v = [0.0; 10];
            v[IDLE] = idle;
            v[4] = iowait;
            BTreeMap::from([(0, v)])
        };
        cpu.remember(mk(100.0, 5.0));
        cpu.remember(mk(101.0, 4.0)); // iowait decreased: keep 5
        assert_eq!(cpu.last[&0][4], 5.0);
        assert_eq!(cpu.last[&0][IDLE], 101.0);
        cpu.remember(mk(10.0, 1.0)); // idle jumped back by > 3s: hotplug, take new values
        assert_eq!(cpu.last[&0][IDLE], 10.0);
        assert_eq!(cpu.last[&0][4], 1.0);
        cpu.remember(BTreeMap::new()); // CPU went offline
        assert!(cpu.last.is_empty());
    }
}
