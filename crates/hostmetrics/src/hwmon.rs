//! `node_hwmon_*{chip,sensor}` from `/sys/class/hwmon` (node_exporter hwmon_linux.go):
//! temperatures (`node_hwmon_temp_celsius`, `_max_celsius`, `_crit_celsius`, alarms), fans,
//! voltages, currents, power, energy, humidity, and `node_hwmon_chip_names` /
//! `node_hwmon_sensor_label` annotations.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use regex::Regex;

use crate::{Collector, Error, Paths, Sink};

/// Sensor file prefixes upstream reads (`hwmonSensorTypes`).
const SENSOR_TYPES: [&str; 13] = [
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
];

/// The `hwmon` collector.
#[derive(Debug)]
pub struct Hwmon {
    dir: PathBuf,
    /// `type`, number and property of a sensor file name (`temp1_crit_alarm`).
    file_re: Regex,
    invalid: Regex,
}

impl Hwmon {
    pub fn new(paths: &Paths) -> Self {
        Hwmon {
            dir: paths.sys.join("class/hwmon"),
            file_re: Regex::new(r"^([^0-9]+)([0-9]*)(?:_(.+))?$").expect("a valid regex"),
            invalid: Regex::new(r"[^a-z0-9:_]").expect("a valid regex"),
        }
    }

    /// Lower case, characters outside `[a-z0-9:_]` replaced by `_`, `_` trimmed
    /// (upstream `cleanMetricName`).
    fn clean(&self, s: &str) -> String {
        let lower = s.to_lowercase();
        self.invalid.replace_all(&lower, "_").trim_matches('_').to_owned()
    }

    /// `(type, number, property)` of a sensor file name; number 0 and property "" when absent.
    fn explode<'a>(&self, file: &'a str) -> Option<(&'a str, u64, &'a str)> {
        let c = self.file_re.captures(file)?;
        let kind = c.get(1)?.as_str();
        let num = match c.get(2).map(|m| m.as_str()).unwrap_or("") {
            "" => 0,
            n => n.parse().ok()?,
        };
        let prop = c.get(3).map(|m| m.as_str()).unwrap_or("");
        Some((kind, num, prop))
    }

    /// The `chip` label: `<bus>_<device>` of the `device` link's target (e.g.
    /// `platform_coretemp_0`, `pci0000:00_0000:00:18_3`), else the `name` file, else the
    /// directory name (upstream `hwmonName`).
    fn chip(&self, dir: &Path) -> Option<String> {
        if let Ok(dev) = std::fs::canonicalize(dir.join("device")) {
            let name = dev
                .file_name()
                .map(|n| self.clean(&n.to_string_lossy()))
                .unwrap_or_default();
            let kind = dev
                .parent()
                .and_then(Path::file_name)
                .map(|n| self.clean(&n.to_string_lossy()))
                .unwrap_or_default();
            if !kind.is_empty() && !name.is_empty() {
                return Some(format!("{kind}_{name}"));
            }
            if !name.is_empty() {
                return Some(name);
            }
        }
        if let Some(n) = self.chip_name(dir) {
            return Some(n);
        }
        let real = std::fs::canonicalize(dir).ok()?;
        let n = self.clean(&real.file_name()?.to_string_lossy());
        (!n.is_empty()).then_some(n)
    }

    fn chip_name(&self, dir: &Path) -> Option<String> {
        let raw = std::fs::read_to_string(dir.join("name")).ok()?;
        let n = self.clean(&raw);
        (!n.is_empty()).then_some(n)
    }

    fn collect_files(&self, dir: &Path, data: &mut BTreeMap<String, BTreeMap<String, String>>) -> Result<(), Error> {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        for e in entries.filter_map(Result::ok) {
            let file = e.file_name();
            let Some(file) = file.to_str() else { continue };
            let Some((kind, num, prop)) = self.explode(file) else {
                continue;
            };
            if !SENSOR_TYPES.contains(&kind) {
                continue;
            }
            // Sensor files are small; like upstream, read at most 128 bytes (some drivers
            // block or error on larger reads) and skip unreadable ones (write-only, EIO).
            let mut buf = [0u8; 128];
            let Ok(n) = std::fs::File::open(e.path()).and_then(|mut f| f.read(&mut buf)) else {
                continue;
            };
            let value = String::from_utf8_lossy(&buf[..n]).trim_matches('\n').to_owned();
            data.entry(format!("{kind}{num}"))
                .or_default()
                .insert(prop.to_owned(), value);
        }
        Ok(())
    }

    fn update_chip(&self, dir: &Path, sink: &mut Sink) -> Result<(), Error> {
        let Some(chip) = self.chip(dir) else {
            return Err(Error::NoData(format!("no chip name for {}", dir.display())));
        };
        let mut data = BTreeMap::new();
        self.collect_files(dir, &mut data)?;
        let device = dir.join("device");
        if device.exists() {
            self.collect_files(&device, &mut data)?;
        }
        if let Some(name) = self.chip_name(dir) {
            sink.gauge(
                "node_hwmon_chip_names",
                "Annotation metric for human-readable chip names",
                &[("chip", &chip), ("chip_name", &name)],
                1.0,
            );
        }
        for (sensor, props) in &data {
            let Some((kind, _, _)) = self.explode(sensor) else {
                continue;
            };
            let labels = [("chip", chip.as_str()), ("sensor", sensor.as_str())];
            if let Some(label) = props.get("label") {
                sink.gauge(
                    "node_hwmon_sensor_label",
                    "Label for given chip and sensor",
                    &[("chip", &chip), ("sensor", sensor), ("label", label)],
                    1.0,
                );
            }
            let bare = props.get("").map(String::as_str);
            match kind {
                "beep_enable" => {
                    let v = if bare == Some("1") { 1.0 } else { 0.0 };
                    sink.gauge("node_hwmon_beep_enabled", "Hardware beep enabled", &labels, v);
                    continue;
                }
                "vrm" => {
                    if let Some(v) = bare.and_then(|b| b.parse::<f64>().ok()) {
                        sink.gauge(
                            "node_hwmon_voltage_regulator_version",
                            "Hardware voltage regulator",
                            &labels,
                            v,
                        );
                    }
                    continue;
                }
                "update_interval" => {
                    if let Some(v) = bare.and_then(|b| b.parse::<f64>().ok()) {
                        sink.gauge(
                            "node_hwmon_update_interval_seconds",
                            "Hardware monitor update interval",
                            &labels,
                            v * 0.001,
                        );
                    }
                    continue;
                }
                _ => {}
            }
            let prefix = format!("node_hwmon_{kind}");
            for (element, raw) in props {
                if element == "label" {
                    continue;
                }
                let Ok(v) = raw.trim().parse::<f64>() else { continue };
                let mut name = prefix.clone();
                if element == "input" {
                    // `temp1_input` is `node_hwmon_temp_celsius`, unless a bare `temp1`
                    // exists too.
                    if bare.is_some() {
                        name.push_str("_input");
                    }
                } else if !element.is_empty() {
                    name.push('_');
                    name.push_str(&self.clean(element));
                }
                let e = element.as_str();
                let (name, help, value, counter) = if e == "fault" || e == "alarm" {
                    (name, format!("Hardware sensor {e} status ({kind})"), v, false)
                } else if e == "beep" {
                    (
                        format!("{name}_enabled"),
                        "Hardware monitor sensor has beeping enabled".to_owned(),
                        v,
                        false,
                    )
                } else if kind == "in" || kind == "cpu" {
                    (
                        format!("{name}_volts"),
                        format!("Hardware monitor for voltage ({e})"),
                        v * 0.001,
                        false,
                    )
                } else if kind == "temp" && e != "type" {
                    let e = if e.is_empty() { "input" } else { e };
                    (
                        format!("{name}_celsius"),
                        format!("Hardware monitor for temperature ({e})"),
                        v * 0.001,
                        false,
                    )
                } else if kind == "curr" {
                    (
                        format!("{name}_amps"),
                        format!("Hardware monitor for current ({e})"),
                        v * 0.001,
                        false,
                    )
                } else if kind == "energy" {
                    (
                        format!("{name}_joule_total"),
                        format!("Hardware monitor for joules used so far ({e})"),
                        v / 1e6,
                        true,
                    )
                } else if kind == "power" && e == "accuracy" {
                    (
                        name,
                        "Hardware monitor power meter accuracy, as a ratio".to_owned(),
                        v / 1e6,
                        false,
                    )
                } else if kind == "power" && e.starts_with("average_interval") {
                    (
                        format!("{name}_seconds"),
                        format!("Hardware monitor power usage update interval ({e})"),
                        v * 0.001,
                        false,
                    )
                } else if kind == "power" {
                    (
                        format!("{name}_watt"),
                        format!("Hardware monitor for power usage in watts ({e})"),
                        v / 1e6,
                        false,
                    )
                } else if kind == "humidity" {
                    (
                        name,
                        format!(
                            "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a percentage) ({e})"
                        ),
                        v / 1e6,
                        false,
                    )
                } else if kind == "fan" && matches!(e, "input" | "min" | "max" | "target") {
                    (
                        format!("{name}_rpm"),
                        format!("Hardware monitor for fan revolutions per minute ({e})"),
                        v,
                        false,
                    )
                } else {
                    (name, format!("Hardware monitor {kind} element {e}"), v, false)
                };
                if counter {
                    sink.counter(&name, &help, &labels, value);
                } else {
                    sink.gauge(&name, &help, &labels, value);
                }
            }
        }
        Ok(())
    }
}

impl Collector for Hwmon {
    fn name(&self) -> &'static str {
        "hwmon"
    }

    fn update(&mut self, sink: &mut Sink) -> Result<(), Error> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoData(format!("{} does not exist", self.dir.display())));
            }
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut dirs: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        dirs.sort();
        let mut last_err = None;
        for dir in dirs {
            // Entries are symlinks into /sys/devices; `is_dir` follows them.
            if !dir.is_dir() {
                continue;
            }
            if let Err(e) = self.update_chip(&dir, sink) {
                last_err = Some(e);
            }
        }
        last_err.map_or(Ok(()), Err)
    }
}
