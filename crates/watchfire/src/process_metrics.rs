//! The `process_*` self-metrics, read from /proc as Prometheus' Go client reports them.
//! (The `prometheus` crate's collector truncates CPU time to whole seconds, which makes
//! `rate(process_cpu_seconds_total[5m])` useless for a light process.)

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge, Opts};

/// Linux reports /proc/<pid>/stat times in USER_HZ, which is 100 on every Linux platform.
const USER_HZ: f64 = 100.0;

/// A collector for this process.
pub struct ProcessCollector {
    cpu: Counter,
    open_fds: Gauge,
    max_fds: Gauge,
    virtual_memory: Gauge,
    resident_memory: Gauge,
    start_time: Gauge,
    threads: Gauge,
    descs: Vec<Desc>,
}

impl ProcessCollector {
    pub fn new() -> prometheus::Result<Self> {
        let g = |name: &str, help: &str| Gauge::with_opts(Opts::new(name, help));
        let c = ProcessCollector {
            cpu: Counter::with_opts(Opts::new(
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
            ))?,
            open_fds: g("process_open_fds", "Number of open file descriptors.")?,
            max_fds: g("process_max_fds", "Maximum number of open file descriptors.")?,
            virtual_memory: g("process_virtual_memory_bytes", "Virtual memory size in bytes.")?,
            resident_memory: g("process_resident_memory_bytes", "Resident memory size in bytes.")?,
            start_time: g(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
            )?,
            threads: g("process_threads", "Number of OS threads in the process.")?,
            descs: Vec::new(),
        };
        let mut descs: Vec<Desc> = c.cpu.desc().into_iter().cloned().collect();
        for m in c.gauges() {
            descs.extend(m.desc().into_iter().cloned());
        }
        Ok(ProcessCollector { descs, ..c })
    }

    fn gauges(&self) -> [&Gauge; 6] {
        [
            &self.open_fds,
            &self.max_fds,
            &self.virtual_memory,
            &self.resident_memory,
            &self.start_time,
            &self.threads,
        ]
    }

    fn refresh(&self) {
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the parenthesised command name, which may itself contain spaces.
            if let Some((_, rest)) = stat.rsplit_once(')') {
                let f: Vec<&str> = rest.split_whitespace().collect();
                let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
                // rest[0] is field 3 (state): utime is field 14, stime 15, num_threads 20,
                // starttime 22, vsize 23, rss 24 (1-based, as in proc(5)).
                if let (Some(ut), Some(st)) = (num(11), num(12)) {
                    let total = (ut + st) / USER_HZ;
                    let seen = self.cpu.get();
                    if total > seen {
                        self.cpu.inc_by(total - seen);
                    }
                }
                if let Some(t) = num(17) {
                    self.threads.set(t);
                }
                if let Some(v) = num(20) {
                    self.virtual_memory.set(v);
                }
                if let Some(pages) = num(21) {
                    self.resident_memory.set(pages * 4096.0);
                }
                if let (Some(start), Some(boot)) = (num(19), boot_time()) {
                    self.start_time.set(boot + start / USER_HZ);
                }
            }
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(dir.count() as f64);
        }
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits")
            && let Some(line) = limits.lines().find(|l| l.starts_with("Max open files"))
            && let Some(soft) = line.split_whitespace().nth(3)
            && let Ok(v) = soft.parse::<f64>()
        {
            self.max_fds.set(v);
        }
    }
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        let mut out = self.cpu.collect();
        out.extend(self.gauges().iter().flat_map(|g| g.collect()));
        out
    }
}
