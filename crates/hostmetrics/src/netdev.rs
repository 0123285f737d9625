//! `node_network_{receive,transmit}_*_total{device}` from `/proc/net/dev` (node_exporter
//! netdev_common.go, netdev_linux.go; the default, non-"detailed" names).
//!
//! node_exporter reads these over rtnetlink by default, which also yields
//! `receive_nohandler`; `/proc/net/dev` lacks that column, so it is read from
//! `/sys/class/net/<device>/statistics/rx_nohandler`. The other values are the same counters
//! (the kernel's `dev_seq_printf_stats` folds the detailed errors exactly as upstream's
//! `legacy` does).

use std::path::{Path, PathBuf};

use regex::Regex;

use crate::collector::read;
use crate::{Collector, Error, Paths, Sink};

/// The 16 columns of `/proc/net/dev`, in file order, as metric infixes.
const COLUMNS: [&str; 16] = [
    "receive_bytes",
    "receive_packets",
    "receive_errs",
    "receive_drop",
    "receive_fifo",
    "receive_frame",
    "receive_compressed",
    "receive_multicast",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errs",
    "transmit_drop",
    "transmit_fifo",
    "transmit_colls",
    "transmit_carrier",
    "transmit_compressed",
];

/// One interface of `/proc/net/dev`.
pub(crate) fn parse_net_dev(text: &str, path: &Path) -> Result<Vec<(String, Vec<u64>)>, Error> {
    let mut out = Vec::new();
    // Two header lines.
    for (i, line) in text.lines().enumerate().skip(2) {
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, rest)) = line.split_once(':') else {
            return Err(Error::parse(path, i + 1, format!("no ':' in {line:?}")));
        };
        let values = rest
            .split_whitespace()
            .map(|s| {
                s.parse::<u64>()
                    .map_err(|_| Error::parse(path, i + 1, format!("invalid number {s:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if values.len() < COLUMNS.len() {
            return Err(Error::parse(
                path,
                i + 1,
                format!("expected 16 values, got {}", values.len()),
            ));
        }
        out.push((name.trim().to_owned(), values));
    }
    Ok(out)
}

/// The `netdev` collector. Upstream excludes no device by default.
#[derive(Debug)]
pub struct Netdev {
    path: PathBuf,
    sys_class_net: PathBuf,
    exclude: Option<Regex>,
}

impl Netdev {
    pub fn new(paths: &Paths) -> Self {
        Netdev {
            path: paths.proc.join("net/dev"),
            sys_class_net: paths.sys.join("class/net"),
            exclude: None,
        }
    }

    /// The collector skipping devices that match `exclude`
    /// (`--collector.netdev.device-exclude`).
    pub fn with_exclude(paths: &Paths, exclude: &str) -> Result<Self, Error> {
        let re = Regex::new(exclude).map_err(|source| Error::Pattern {
            pattern: exclude.to_owned(),
            source,
        })?;
        Ok(Netdev {
            exclude: Some(re),
            ..Netdev::new(paths)
        })
    }
}

impl Collector for Netdev {
    fn name(&self) -> &'static str {
        "netdev"
    }

    fn update(&mut self, sink: &mut Sink) -> Result<(), Error> {
        let text = read(&self.path)?;
        for (dev, values) in parse_net_dev(&text, &self.path)? {
            if self.exclude.as_ref().is_some_and(|re| re.is_match(&dev)) {
                continue;
            }
            for (key, v) in COLUMNS.iter().zip(&values) {
                sink.counter(
                    &format!("node_network_{key}_total"),
                    &format!("Network device statistic {key}."),
                    &[("device", &dev)],
                    *v as f64,
                );
            }
            let nohandler = self.sys_class_net.join(&dev).join("statistics/rx_nohandler");
            if let Ok(t) = std::fs::read_to_string(&nohandler)
                && let Ok(v) = t.trim().parse::<u64>()
            {
                sink.counter(
                    "node_network_receive_nohandler_total",
                    "Network device statistic receive_nohandler.",
                    &[("device", &dev)],
                    v as f64,
                );
            }
        }
        Ok(())
    }
}
