//! `node_disk_*{device}` from `/proc/diskstats`, and `node_disk_info` with udev's labels
//! (node_exporter diskstats_common.go, diskstats_linux.go).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use regex::Regex;

use crate::collector::read;
use crate::{Collector, Error, Paths, Sink};

/// Upstream's `diskstatsDefaultIgnoredDevices` (current master, which also skips `zram`
/// partitions; node_exporter 1.5 lacked the `z?`).
pub const DEFAULT_DISK_DEVICE_EXCLUDE: &str = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";

/// Sector size `/proc/diskstats` counts in, whatever the device's own.
const SECTOR_BYTES: f64 = 512.0;
/// `/proc/diskstats` times are milliseconds.
const SECONDS_PER_TICK: f64 = 0.001;

/// (metric, help, is counter, scale) for the stat columns after major, minor and name, in
/// file order. Kernels before 4.18 have 11 columns, before 5.5 15, newer 17; only those
/// present are exposed.
const COLUMNS: [(&str, &str, bool, f64); 17] = [
    (
        "reads_completed_total",
        "The total number of reads completed successfully.",
        true,
        1.0,
    ),
    ("reads_merged_total", "The total number of reads merged.", true, 1.0),
    (
        "read_bytes_total",
        "The total number of bytes read successfully.",
        true,
        SECTOR_BYTES,
    ),
    (
        "read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        true,
        SECONDS_PER_TICK,
    ),
    (
        "writes_completed_total",
        "The total number of writes completed successfully.",
        true,
        1.0,
    ),
    ("writes_merged_total", "The number of writes merged.", true, 1.0),
    (
        "written_bytes_total",
        "The total number of bytes written successfully.",
        true,
        SECTOR_BYTES,
    ),
    (
        "write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        true,
        SECONDS_PER_TICK,
    ),
    ("io_now", "The number of I/Os currently in progress.", false, 1.0),
    (
        "io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        true,
        SECONDS_PER_TICK,
    ),
    (
        "io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        true,
        SECONDS_PER_TICK,
    ),
    (
        "discards_completed_total",
        "The total number of discards completed successfully.",
        true,
        1.0,
    ),
    (
        "discards_merged_total",
        "The total number of discards merged.",
        true,
        1.0,
    ),
    // Upstream exposes discarded sectors as a count, not bytes.
    (
        "discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        true,
        1.0,
    ),
    (
        "discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        true,
        SECONDS_PER_TICK,
    ),
    (
        "flush_requests_total",
        "The total number of flush requests completed successfully",
        true,
        1.0,
    ),
    (
        "flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        true,
        SECONDS_PER_TICK,
    ),
];

/// One line of `/proc/diskstats`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DiskLine {
    pub major: u32,
    pub minor: u32,
    pub device: String,
    pub stats: Vec<u64>,
}

pub(crate) fn parse_diskstats(text: &str, path: &Path) -> Result<Vec<DiskLine>, Error> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.is_empty() {
            continue;
        }
        if parts.len() < 14 {
            return Err(Error::parse(
                path,
                i + 1,
                format!("expected at least 14 fields, got {}", parts.len()),
            ));
        }
        let num = |s: &str| -> Result<u64, Error> {
            s.parse()
                .map_err(|_| Error::parse(path, i + 1, format!("invalid number {s:?}")))
        };
        let major = num(parts[0])? as u32;
        let minor = num(parts[1])? as u32;
        let stats = parts[3..].iter().map(|s| num(s)).collect::<Result<Vec<_>, _>>()?;
        out.push(DiskLine {
            major,
            minor,
            device: parts[2].to_owned(),
            stats,
        });
    }
    Ok(out)
}

/// udev's `E:KEY=value` properties of a device database file.
fn parse_udev(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("E:"))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The `diskstats` collector.
#[derive(Debug)]
pub struct Diskstats {
    path: PathBuf,
    udev_data: PathBuf,
    exclude: Regex,
}

impl Diskstats {
    /// The collector with upstream's default device exclusion.
    pub fn new(paths: &Paths) -> Self {
        Self::with_exclude(paths, DEFAULT_DISK_DEVICE_EXCLUDE).expect("the default device pattern is a valid regex")
    }

    /// The collector skipping devices that match `exclude`.
    pub fn with_exclude(paths: &Paths, exclude: &str) -> Result<Self, Error> {
        Ok(Diskstats {
            path: paths.proc.join("diskstats"),
            udev_data: paths.udev_data.clone(),
            exclude: Regex::new(exclude).map_err(|source| Error::Pattern {
                pattern: exclude.to_owned(),
                source,
            })?,
        })
    }
}

impl Collector for Diskstats {
    fn name(&self) -> &'static str {
        "diskstats"
    }

    fn update(&mut self, sink: &mut Sink) -> Result<(), Error> {
        let text = read(&self.path)?;
        for d in parse_diskstats(&text, &self.path)? {
            if self.exclude.is_match(&d.device) {
                continue;
            }
            let dev = d.device.as_str();
            // Without udev (containers, no systemd) the properties are empty, as upstream.
            let udev = std::fs::read_to_string(self.udev_data.join(format!("b{}:{}", d.major, d.minor)))
                .map(|t| parse_udev(&t))
                .unwrap_or_default();
            let prop = |k: &str| udev.get(k).map(String::as_str).unwrap_or("");
            let (major, minor) = (d.major.to_string(), d.minor.to_string());
            sink.gauge(
                "node_disk_info",
                "Info of /sys/block/<block_device>.",
                &[
                    ("device", dev),
                    ("major", &major),
                    ("minor", &minor),
                    ("path", prop("ID_PATH")),
                    ("wwn", prop("ID_WWN")),
                    ("model", prop("ID_MODEL")),
                    ("serial", prop("ID_SERIAL_SHORT")),
                    ("revision", prop("ID_REVISION")),
                ],
                1.0,
            );
            for ((name, help, counter, scale), raw) in COLUMNS.iter().zip(&d.stats) {
                let name = format!("node_disk_{name}");
                let v = *raw as f64 * scale;
                if *counter {
                    sink.counter(&name, help, &[("device", dev)], v);
                } else {
                    sink.gauge(&name, help, &[("device", dev)], v);
                }
            }
            if !prop("ID_FS_TYPE").is_empty() {
                sink.gauge(
                    "node_disk_filesystem_info",
                    "Info about disk filesystem.",
                    &[
                        ("device", dev),
                        ("type", prop("ID_FS_TYPE")),
                        ("usage", prop("ID_FS_USAGE")),
                        ("uuid", prop("ID_FS_UUID")),
                        ("version", prop("ID_FS_VERSION")),
                    ],
                    1.0,
                );
            }
            if !prop("DM_NAME").is_empty() {
                sink.gauge(
                    "node_disk_device_mapper_info",
                    "Info about disk device mapper.",
                    &[
                        ("device", dev),
                        ("name", prop("DM_NAME")),
                        ("uuid", prop("DM_UUID")),
                        ("vg_name", prop("DM_VG_NAME")),
                        ("lv_name", prop("DM_LV_NAME")),
                        ("lv_layer", prop("DM_LV_LAYER")),
                    ],
                    1.0,
                );
            }
            if !prop("ID_ATA").is_empty() {
                for (key, name, help) in [
                    (
                        "ID_ATA_WRITE_CACHE",
                        "node_disk_ata_write_cache",
                        "ATA disk has a write cache.",
                    ),
                    (
                        "ID_ATA_WRITE_CACHE_ENABLED",
                        "node_disk_ata_write_cache_enabled",
                        "ATA disk has its write cache enabled.",
                    ),
                    (
                        "ID_ATA_ROTATION_RATE_RPM",
                        "node_disk_ata_rotation_rate_rpm",
                        "ATA disk rotation rate in RPMs (0 for SSDs).",
                    ),
                ] {
                    if let Some(v) = udev.get(key).and_then(|v| v.parse::<f64>().ok()) {
                        sink.gauge(name, help, &[("device", dev)], v);
                    }
                }
            }
        }
        Ok(())
    }
}
