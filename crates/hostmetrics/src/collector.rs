//! The [`Collector`] trait, the [`Sink`] collectors write to, and [`HostCollector`], which runs
//! them all.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use watchfire_textparse::{MetricType, TextWriter};

use crate::Error;

/// Where the collectors read from; node_exporter's `--path.procfs`, `--path.sysfs`,
/// `--path.rootfs` and `--collector.diskstats.udev-data-path` (hidden) flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// `/proc`.
    pub proc: PathBuf,
    /// `/sys`.
    pub sys: PathBuf,
    /// `/`: the root the mount points of `/proc/1/mounts` are relative to (a container that
    /// mounts the host's root at `/host` sets `/host`; the prefix is stripped from the
    /// `mountpoint` label, as upstream's `rootfsStripPrefix`).
    pub rootfs: PathBuf,
    /// `/run/udev/data`: udev's device database, for the labels of `node_disk_info`.
    pub udev_data: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            proc: PathBuf::from("/proc"),
            sys: PathBuf::from("/sys"),
            rootfs: PathBuf::from("/"),
            udev_data: PathBuf::from("/run/udev/data"),
        }
    }
}

impl Paths {
    /// Paths whose `proc`, `sys` and `run/udev/data` live under one directory (`rootfs` stays
    /// `/`); what tests use with a fixture tree.
    pub fn under(dir: &Path) -> Self {
        Paths {
            proc: dir.join("proc"),
            sys: dir.join("sys"),
            rootfs: PathBuf::from("/"),
            udev_data: dir.join("run/udev/data"),
        }
    }
}

/// One series of a [`Family`]: labels (sorted by name) and a value.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A metric family: name, HELP, TYPE and its series, as node_exporter's registry gathers it.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: MetricType,
    pub metrics: Vec<Metric>,
}

/// Where collectors put their samples. Families are kept by name; the first HELP and TYPE
/// given for a name win.
#[derive(Debug, Default)]
pub struct Sink {
    families: BTreeMap<String, Family>,
}

impl Sink {
    /// An empty sink.
    pub fn new() -> Self {
        Sink::default()
    }

    /// Adds one sample of `name` with `labels` (any order).
    pub fn add(&mut self, name: &str, help: &str, kind: MetricType, labels: &[(&str, &str)], value: f64) {
        let family = match self.families.get_mut(name) {
            Some(f) => f,
            None => self.families.entry(name.to_owned()).or_insert_with(|| Family {
                name: name.to_owned(),
                help: help.to_owned(),
                kind,
                metrics: Vec::new(),
            }),
        };
        let mut labels: Vec<(String, String)> =
            labels.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
        labels.sort();
        family.metrics.push(Metric { labels, value });
    }

    /// A gauge sample.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.add(name, help, MetricType::Gauge, labels, value);
    }

    /// A counter sample.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.add(name, help, MetricType::Counter, labels, value);
    }

    /// The families, sorted by name, each's series sorted by labels (as client_golang's
    /// `Gatherer` sorts them).
    pub fn into_families(self) -> Vec<Family> {
        self.families
            .into_values()
            .map(|mut f| {
                f.metrics.sort_by(|a, b| a.labels.cmp(&b.labels));
                f
            })
            .collect()
    }
}

/// One subsystem of the host: node_exporter's `Collector` interface.
pub trait Collector: Send + std::fmt::Debug {
    /// The name in `node_scrape_collector_success{collector="…"}` (`cpu`, `meminfo`, …).
    fn name(&self) -> &'static str;

    /// Reads the subsystem and adds its samples to `sink`. Samples added before an error are
    /// kept, as upstream keeps what a collector sent before failing.
    fn update(&mut self, sink: &mut Sink) -> Result<(), Error>;
}

/// All collectors of the host, run one after another on each [`HostCollector::gather`].
///
/// The binary serves [`HostCollector::write_text`] (behind a `Mutex`, since collectors keep
/// state between gathers) at `/metrics/host`, or scrapes it in-process with the result of
/// [`HostCollector::gather`].
#[derive(Debug)]
pub struct HostCollector {
    collectors: Vec<Box<dyn Collector>>,
}

impl HostCollector {
    /// node_exporter's default-enabled collectors that this crate covers, reading from
    /// `paths` with upstream's default exclusions.
    pub fn new(paths: &Paths) -> Self {
        let collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(crate::Cpu::new(paths)),
            Box::new(crate::Diskstats::new(paths)),
            Box::new(crate::Filefd::new(paths)),
            Box::new(crate::Filesystem::new(paths)),
            Box::new(crate::Hwmon::new(paths)),
            Box::new(crate::Loadavg::new(paths)),
            Box::new(crate::Meminfo::new(paths)),
            Box::new(crate::Netdev::new(paths)),
            Box::new(crate::Netstat::new(paths)),
            Box::new(crate::Pressure::new(paths)),
            Box::new(crate::Stat::new(paths)),
            Box::new(crate::Time::new(paths)),
            Box::new(crate::Uname::new(paths)),
        ];
        HostCollector { collectors }
    }

    /// A host collector running exactly `collectors`.
    pub fn with_collectors(collectors: Vec<Box<dyn Collector>>) -> Self {
        HostCollector { collectors }
    }

    /// The names of the collectors, in run order.
    pub fn collector_names(&self) -> Vec<&'static str> {
        self.collectors.iter().map(|c| c.name()).collect()
    }

    /// Runs every collector and returns all families, sorted by name.
    pub fn gather(&mut self) -> Vec<Family> {
        let mut sink = Sink::new();
        for c in &mut self.collectors {
            let name = c.name();
            let begin = Instant::now();
            let result = c.update(&mut sink);
            let seconds = begin.elapsed().as_secs_f64();
            let success = match result {
                Ok(()) => 1.0,
                Err(Error::NoData(reason)) => {
                    tracing::debug!(collector = name, reason = %reason, "collector returned no data");
                    0.0
                }
                Err(e) => {
                    tracing::warn!(collector = name, err = %e, "host collector failed");
                    0.0
                }
            };
            sink.gauge(
                "node_scrape_collector_duration_seconds",
                "node_exporter: Duration of a collector scrape.",
                &[("collector", name)],
                seconds,
            );
            sink.gauge(
                "node_scrape_collector_success",
                "node_exporter: Whether a collector succeeded.",
                &[("collector", name)],
                success,
            );
        }
        sink.into_families()
    }

    /// Gathers and writes the text format (`TEXT_CONTENT_TYPE`) to `out`.
    pub fn write_text<W: io::Write>(&mut self, out: W) -> io::Result<()> {
        write_families(&self.gather(), out)
    }
}

/// Writes `families` in the Prometheus text format.
pub fn write_families<W: io::Write>(families: &[Family], out: W) -> io::Result<()> {
    let mut w = TextWriter::new(out);
    for f in families {
        w.write_help(&f.name, &f.help)?;
        w.write_type(&f.name, f.kind)?;
        for m in &f.metrics {
            w.write_series(
                &f.name,
                m.labels
                    .iter()
                    .map(|(n, v)| watchfire_model::Label { name: n, value: v }),
                m.value,
                None,
            )?;
        }
    }
    Ok(())
}

/// Reads a whole file, mapping the error to [`Error::Io`].
pub(crate) fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}
