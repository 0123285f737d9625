//! The node_exporter-like dataset shared by the benches: 137 series per host (CPU
//! counters per core and mode, memory gauges, network and disk counters, filesystem sizes,
//! load), scraped every 15 s.
#![allow(dead_code)]

use watchfire_model::Labels;
use watchfire_storage::Appendable;
use watchfire_tsdb::Db;

/// Series per host in [`node_dataset`].
pub const SERIES_PER_HOST: usize = 137;

/// xorshift64*: deterministic noise for the dataset.
pub struct Rng(u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How one series' value evolves per 15 s scrape.
#[derive(Clone, Copy)]
pub enum Shape {
    /// CPU seconds: grows by about `rate` × 15 s, in hundredths (USER_HZ).
    CpuCounter(f64),
    /// Byte/packet counters: integer increments around `rate` per second.
    IntCounter(f64),
    /// Gauge in bytes that wanders by page-sized steps around `base`.
    Bytes(f64),
    /// Constant (sizes, info metrics).
    Constant(f64),
    /// Load average style: two decimals, smooth.
    Load,
}

/// About 140 series per host, shaped like node_exporter's defaults, over `hosts` hosts.
pub fn node_dataset(hosts: usize) -> Vec<(Labels, Shape, f64)> {
    let mut out = Vec::new();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for h in 0..hosts {
        let inst = format!("host-{h:03}:9100");
        let l = |name: &str, extra: &[(&str, String)]| {
            let mut pairs = vec![
                ("__name__", name.to_string()),
                ("instance", inst.clone()),
                ("job", "node".to_string()),
            ];
            pairs.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
            Labels::from_pairs(pairs)
        };
        for cpu in 0..8 {
            for (mode, rate) in [
                ("idle", 0.85),
                ("user", 0.08),
                ("system", 0.04),
                ("iowait", 0.01),
                ("irq", 0.0),
                ("softirq", 0.005),
                ("steal", 0.0),
                ("nice", 0.0),
            ] {
                let labels = l(
                    "node_cpu_seconds_total",
                    &[("cpu", cpu.to_string()), ("mode", mode.into())],
                );
                out.push((labels, Shape::CpuCounter(rate), (rng.unit() * 1e6).round() / 100.0));
            }
        }
        for m in [
            "MemFree",
            "MemAvailable",
            "Buffers",
            "Cached",
            "Active",
            "Inactive",
            "Dirty",
            "Writeback",
            "AnonPages",
            "Mapped",
            "Shmem",
            "Slab",
            "SReclaimable",
            "SUnreclaim",
            "KernelStack",
            "PageTables",
            "Committed_AS",
            "VmallocUsed",
            "SwapFree",
            "SwapCached",
        ] {
            out.push((
                l(&format!("node_memory_{m}_bytes"), &[]),
                Shape::Bytes(1e9 * (1.0 + rng.unit() * 8.0)),
                0.0,
            ));
        }
        for m in [
            "MemTotal",
            "SwapTotal",
            "HugePages_Total",
            "Hugepagesize",
            "VmallocTotal",
        ] {
            out.push((l(&format!("node_memory_{m}_bytes"), &[]), Shape::Constant(16e9), 0.0));
        }
        for dev in ["eth0", "lo"] {
            for (m, rate) in [
                ("receive_bytes", 50_000.0),
                ("transmit_bytes", 20_000.0),
                ("receive_packets", 300.0),
                ("transmit_packets", 200.0),
                ("receive_errs", 0.0),
                ("transmit_drop", 0.0),
            ] {
                let labels = l(&format!("node_network_{m}_total"), &[("device", dev.into())]);
                out.push((labels, Shape::IntCounter(rate), (rng.unit() * 1e12).round()));
            }
        }
        for dev in ["sda", "sdb"] {
            for (m, rate) in [
                ("reads_completed", 5.0),
                ("writes_completed", 20.0),
                ("read_bytes", 40_000.0),
                ("written_bytes", 200_000.0),
                ("io_time_seconds", 0.02),
            ] {
                let labels = l(&format!("node_disk_{m}_total"), &[("device", dev.into())]);
                out.push((labels, Shape::IntCounter(rate), (rng.unit() * 1e9).round()));
            }
        }
        for mp in ["/", "/boot", "/var", "/home"] {
            for m in ["size", "avail", "free", "files", "files_free"] {
                let shape = if m == "size" || m == "files" {
                    Shape::Constant(5e11)
                } else {
                    Shape::Bytes(2e11)
                };
                let labels = l(
                    &format!("node_filesystem_{m}_bytes"),
                    &[("mountpoint", mp.into()), ("fstype", "ext4".into())],
                );
                out.push((labels, shape, 0.0));
            }
        }
        for m in ["node_load1", "node_load5", "node_load15"] {
            out.push((l(m, &[]), Shape::Load, 0.5));
        }
        out.push((l("up", &[]), Shape::Constant(1.0), 0.0));
        out.push((l("scrape_duration_seconds", &[]), Shape::Load, 0.02));
        out.push((l("node_boot_time_seconds", &[]), Shape::Constant(1.7e9), 0.0));
    }
    out
}

pub const START: i64 = 1_700_000_000_000 / 7_200_000 * 7_200_000;

/// Appends `hours` of 15 s scrapes of the dataset into `db`, committing every `per_commit`
/// samples and at the end of each scrape ([`SERIES_PER_HOST`] for one commit per host
/// scrape, as a scrape loop commits).
pub fn fill(db: &Db, hours: i64, data: &[(Labels, Shape, f64)], per_commit: usize) -> u64 {
    let mut rng = Rng(42);
    let mut state: Vec<f64> = data
        .iter()
        .map(|(_, s, init)| match s {
            Shape::Bytes(b) | Shape::Constant(b) => *b,
            _ => *init,
        })
        .collect();
    let mut refs = vec![None; data.len()];
    let mut app = db.appender();
    let mut n = 0;
    for step in 0..hours * 240 {
        // Exactly 15 s apart: upstream's scrape loop snaps timestamps within
        // `--scrape.timestamp-tolerance` (2 ms) to the schedule for this reason.
        let t = START + step * 15_000;
        for (i, (labels, shape, _)) in data.iter().enumerate() {
            let v = &mut state[i];
            match *shape {
                // node_exporter divides the kernel's tick count by USER_HZ: the value is the
                // float nearest to a number of hundredths, not a running float sum.
                Shape::CpuCounter(rate) => {
                    *v = ((*v * 100.0).round() + (rate * 15.0 * (0.7 + 0.6 * rng.unit()) * 100.0).round()) / 100.0
                }
                Shape::IntCounter(rate) => *v += (rate * 15.0 * (0.5 + rng.unit())).round(),
                Shape::Bytes(_) => {
                    if rng.next().is_multiple_of(3) {
                        *v += 4096.0 * ((rng.next() % 200) as f64 - 100.0);
                    }
                }
                Shape::Constant(_) => {}
                Shape::Load => *v = ((*v * 0.9 + rng.unit() * 0.2) * 100.0).round() / 100.0,
            }
            refs[i] = Some(app.append(refs[i], labels, t, *v).expect("in order"));
            n += 1;
            if (i + 1) % per_commit == 0 {
                app.commit().expect("commit");
            }
        }
        app.commit().expect("commit");
    }
    n
}

pub fn dir_bytes(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    if e.path().is_dir() {
                        dir_bytes(&e.path())
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
