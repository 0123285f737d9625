//! `node_boot_time_seconds`, `node_context_switches_total`, `node_forks_total`,
//! `node_intr_total`, `node_procs_running` and `node_procs_blocked` from `/proc/stat`
//! (node_exporter stat_linux.go; its softirq metrics are off by default and not offered).

use std::path::PathBuf;

use crate::collector::read;
use crate::{Collector, Error, Paths, Sink};

/// The `stat` collector.
#[derive(Debug)]
pub struct Stat {
    path: PathBuf,
}

impl Stat {
    pub fn new(paths: &Paths) -> Self {
        Stat {
            path: paths.proc.join("stat"),
        }
    }
}

/// (key in /proc/stat, metric, help, is counter)
const FIELDS: [(&str, &str, &str, bool); 6] = [
    ("intr", "node_intr_total", "Total number of interrupts serviced.", true),
    (
        "ctxt",
        "node_context_switches_total",
        "Total number of context switches.",
        true,
    ),
    ("processes", "node_forks_total", "Total number of forks.", true),
    ("btime", "node_boot_time_seconds", "Node boot time, in unixtime.", false),
    (
        "procs_running",
        "node_procs_running",
        "Number of processes in runnable state.",
        false,
    ),
    (
        "procs_blocked",
        "node_procs_blocked",
        "Number of processes blocked waiting for I/O to complete.",
        false,
    ),
];

impl Collector for Stat {
    fn name(&self) -> &'static str {
        "stat"
    }

    fn update(&mut self, sink: &mut Sink) -> Result<(), Error> {
        let text = read(&self.path)?;
        let mut values = [None; 6];
        for (i, line) in text.lines().enumerate() {
            let mut fields = line.split_whitespace();
            let Some(key) = fields.next() else { continue };
            let Some(slot) = FIELDS.iter().position(|f| f.0 == key) else {
                continue;
            };
            // `intr` is followed by the total and then one count per IRQ; the total is first.
            let raw = fields
                .next()
                .ok_or_else(|| Error::parse(&self.path, i + 1, format!("no value for {key}")))?;
            let v: u64 = raw
                .parse()
                .map_err(|_| Error::parse(&self.path, i + 1, format!("invalid value {raw:?} for {key}")))?;
            values[slot] = Some(v as f64);
        }
        let mut missing = Vec::new();
        for ((key, name, help, counter), value) in FIELDS.iter().zip(values) {
            match value {
                Some(v) if *counter => sink.counter(name, help, &[], v),
                Some(v) => sink.gauge(name, help, &[], v),
                None => missing.push(*key),
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::parse(&self.path, 0, format!("missing fields {missing:?}")))
        }
    }
}
