//! `node_pressure_*_seconds_total` from `/proc/pressure/{cpu,io,memory,irq}` (node_exporter
//! pressure_linux.go).

use std::path::{Path, PathBuf};

use crate::{Collector, Error, Paths, Sink};

/// The `pressure` collector.
#[derive(Debug)]
pub struct Pressure {
    dir: PathBuf,
}

impl Pressure {
    pub fn new(paths: &Paths) -> Self {
        Pressure {
            dir: paths.proc.join("pressure"),
        }
    }
}

/// The `total=` microseconds of the `some` and `full` lines.
pub(crate) fn parse_psi(text: &str, path: &Path) -> Result<(Option<u64>, Option<u64>), Error> {
    let (mut some, mut full) = (None, None);
    for (i, line) in text.lines().enumerate() {
        let mut f = line.split_whitespace();
        let slot = match f.next() {
            Some("some") => &mut some,
            Some("full") => &mut full,
            _ => continue,
        };
        for kv in f {
            if let Some(v) = kv.strip_prefix("total=") {
                *slot = Some(
                    v.parse()
                        .map_err(|_| Error::parse(path, i + 1, format!("invalid total {v:?}")))?,
                );
            }
        }
    }
    Ok((some, full))
}

/// (resource, metric for `some`, help, metric for `full`, help). The `some` line of irq and
/// the `full` line of cpu carry nothing upstream exposes.
/// A metric name and its help.
type Exposed = Option<(&'static str, &'static str)>;

const RESOURCES: [(&str, Exposed, Exposed); 4] = [
    (
        "cpu",
        Some((
            "node_pressure_cpu_waiting_seconds_total",
            "Total time in seconds that processes have waited for CPU time",
        )),
        None,
    ),
    (
        "io",
        Some((
            "node_pressure_io_waiting_seconds_total",
            "Total time in seconds that processes have waited due to IO congestion",
        )),
        Some((
            "node_pressure_io_stalled_seconds_total",
            "Total time in seconds no process could make progress due to IO congestion",
        )),
    ),
    (
        "memory",
        Some((
            "node_pressure_memory_waiting_seconds_total",
            "Total time in seconds that processes have waited for memory",
        )),
        Some((
            "node_pressure_memory_stalled_seconds_total",
            "Total time in seconds no process could make progress due to memory congestion",
        )),
    ),
    (
        "irq",
        None,
        Some((
            "node_pressure_irq_stalled_seconds_total",
            "Total time in seconds no process could make progress due to IRQ congestion",
        )),
    ),
];

impl Collector for Pressure {
    fn name(&self) -> &'static str {
        "pressure"
    }

    fn update(&mut self, sink: &mut Sink) -> Result<(), Error> {
        for (res, some_metric, full_metric) in RESOURCES {
            let path = self.dir.join(res);
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                // irq pressure exists only with CONFIG_IRQ_TIME_ACCOUNTING (kernel 6.1+).
                Err(_) if res == "irq" => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::NoData(format!(
                        "{} is missing: pressure needs Linux 4.20+ with CONFIG_PSI",
                        path.display()
                    )));
                }
                // EOPNOTSUPP when PSI is compiled in but disabled (psi=0).
                Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                    return Err(Error::NoData("pressure is disabled; boot with psi=1".to_owned()));
                }
                Err(e) => return Err(Error::io(path, e)),
            };
            let (some, full) = parse_psi(&text, &path)?;
            for (metric, value) in [(some_metric, some), (full_metric, full)] {
                if let (Some((name, help)), Some(v)) = (metric, value) {
                    sink.counter(name, help, &[], v as f64 / 1e6);
                }
            }
        }
        Ok(())
    }
}
