//! `node_time_seconds`, `node_time_zone_offset_seconds{time_zone}` and the clocksource info
//! metrics from `/sys/devices/system/clocksource` (node_exporter time.go, time_linux.go).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::collector::read;
use crate::{Collector, Error, Paths, Sink};

/// The `time` collector.
#[derive(Debug)]
pub struct Time {
    clocksource: PathBuf,
}

impl Time {
    pub fn new(paths: &Paths) -> Self {
        Time {
            clocksource: paths.sys.join("devices/system/clocksource"),
        }
    }
}

impl Collector for Time {
    fn name(&self) -> &'static str {
        "time"
    }

    fn update(&mut self, sink: &mut Sink) -> Result<(), Error> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        sink.gauge(
            "node_time_seconds",
            "System time in seconds since epoch (1970).",
            &[],
            now.as_secs_f64(),
        );
        let (zone, offset) = crate::sys::local_zone(now.as_secs() as i64);
        sink.gauge(
            "node_time_zone_offset_seconds",
            "System time zone offset in seconds.",
            &[("time_zone", &zone)],
            offset as f64,
        );

        let entries = std::fs::read_dir(&self.clocksource).map_err(|e| Error::io(&self.clocksource, e))?;
        let mut devices: Vec<(u32, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name();
                let n = name.to_str()?.strip_prefix("clocksource")?.parse().ok()?;
                Some((n, e.path()))
            })
            .collect();
        devices.sort();
        for (n, dir) in devices {
            let device = n.to_string();
            let available = read(&dir.join("available_clocksource"))?;
            for cs in available.split_whitespace() {
                sink.gauge(
                    "node_time_clocksource_available_info",
                    "Available clocksources read from '/sys/devices/system/clocksource'.",
                    &[("clocksource", cs), ("device", &device)],
                    1.0,
                );
            }
            let current = read(&dir.join("current_clocksource"))?;
            sink.gauge(
                "node_time_clocksource_current_info",
                "Current clocksource read from '/sys/devices/system/clocksource'.",
                &[("clocksource", current.trim()), ("device", &device)],
                1.0,
            );
        }
        Ok(())
    }
}
