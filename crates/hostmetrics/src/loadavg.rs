//! `node_load1`, `node_load5`, `node_load15` from `/proc/loadavg` (node_exporter
//! loadavg.go, loadavg_linux.go).

use std::path::PathBuf;

use crate::collector::read;
use crate::{Collector, Error, Paths, Sink};

/// The `loadavg` collector.
#[derive(Debug)]
pub struct Loadavg {
    path: PathBuf,
}

impl Loadavg {
    pub fn new(paths: &Paths) -> Self {
        Loadavg {
            path: paths.proc.join("loadavg"),
        }
    }
}

impl Collector for Loadavg {
    fn name(&self) -> &'static str {
        "loadavg"
    }

    fn update(&mut self, sink: &mut Sink) -> Result<(), Error> {
        let text = read(&self.path)?;
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() < 3 {
            return Err(Error::parse(&self.path, 1, "fewer than 3 fields"));
        }
        let mut loads = [0.0; 3];
        for (load, field) in loads.iter_mut().zip(&fields) {
            *load = field
                .parse()
                .map_err(|_| Error::parse(&self.path, 1, format!("invalid load {field:?}")))?;
        }
        sink.gauge("node_load1", "1m load average.", &[], loads[0]);
        sink.gauge("node_load5", "5m load average.", &[], loads[1]);
        sink.gauge("node_load15", "15m load average.", &[], loads[2]);
        Ok(())
    }
}
