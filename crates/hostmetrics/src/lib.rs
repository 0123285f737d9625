//! The built-in host collector: what node_exporter exposes about the machine it runs on, read
//! from `/proc` and `/sys`.
//!
//! Metric names, labels, units, HELP texts and default exclusions follow node_exporter's
//! `collector/*_linux.go` so dashboards and node-mixin alerts written for node_exporter work
//! unchanged. Each subsystem is a [`Collector`]; [`HostCollector`] runs them all, adds
//! `node_scrape_collector_success` and `node_scrape_collector_duration_seconds` per collector
//! (as node_exporter's `collector.go` `execute` does) and returns the [`Family`]s or writes
//! them in the text format.
//!
//! Every source path hangs off [`Paths`], so tests point the collectors at fixture
//! directories. A missing or unreadable source makes that one collector fail (success 0, logged),
//! never the whole gather. The crate is synchronous and depends only on `watchfire-model` and
//! `watchfire-textparse` among Watchfire crates.

mod collector;
mod cpu;
mod diskstats;
mod error;
mod filefd;
mod filesystem;
mod hwmon;
mod loadavg;
mod meminfo;
mod netdev;
mod netstat;
mod pressure;
mod stat;
mod sys;
mod time;
mod uname;

pub use collector::{Collector, Family, HostCollector, Metric, Paths, Sink, write_families};
pub use cpu::Cpu;
pub use diskstats::{DEFAULT_DISK_DEVICE_EXCLUDE, Diskstats};
pub use error::Error;
pub use filefd::Filefd;
pub use filesystem::{DEFAULT_FS_TYPES_EXCLUDE, DEFAULT_MOUNT_POINTS_EXCLUDE, Filesystem, FsStat};
pub use hwmon::Hwmon;
pub use loadavg::Loadavg;
pub use meminfo::Meminfo;
pub use netdev::Netdev;
pub use netstat::{DEFAULT_NETSTAT_FIELDS, Netstat};
pub use pressure::Pressure;
pub use stat::Stat;
pub use time::Time;
pub use uname::Uname;
