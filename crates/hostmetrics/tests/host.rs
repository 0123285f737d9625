//! Tests of the host collector: each collector on fixture trees (parsing edge cases, missing
//! sources), the text output, and a comparison with the real node_exporter on this machine.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::Path;

use watchfire_hostmetrics::{
    Collector, Cpu, Diskstats, Error, Family, Filefd, Filesystem, FsStat, HostCollector, Hwmon, Loadavg, Meminfo,
    Netdev, Netstat, Paths, Pressure, Sink, Stat, Time, Uname,
};
use watchfire_textparse::{Entry, MetricType, PromParser};

// ---------------------------------------------------------------- helpers

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn run(c: &mut dyn Collector) -> (Result<(), Error>, Vec<Family>) {
    let mut sink = Sink::new();
    let r = c.update(&mut sink);
    (r, sink.into_families())
}

fn families(c: &mut dyn Collector) -> Vec<Family> {
    let (r, f) = run(c);
    r.unwrap_or_else(|e| panic!("{} failed: {e}", c.name()));
    f
}

fn family<'a>(fams: &'a [Family], name: &str) -> &'a Family {
    fams.iter().find(|f| f.name == name).unwrap_or_else(|| {
        panic!(
            "no family {name}; have {:?}",
            fams.iter().map(|f| &f.name).collect::<Vec<_>>()
        )
    })
}

/// The value of the series of `name` with exactly `labels`.
fn value(fams: &[Family], name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut want: Vec<(String, String)> = labels.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    want.sort();
    let f = family(fams, name);
    f.metrics
        .iter()
        .find(|m| m.labels == want)
        .unwrap_or_else(|| panic!("{name}{labels:?} not found in {:?}", f.metrics))
        .value
}

fn names(fams: &[Family]) -> BTreeSet<String> {
    fams.iter().map(|f| f.name.clone()).collect()
}

// ---------------------------------------------------------------- cpu and stat

const PROC_STAT: &str = "cpu  300 0 100 1000 10 0 5 0 0 0
cpu0 200 0 60 500 5 0 3 0 7 1
cpu1 100 1 40 500 5 0 2 0 0 0 99
cpu2 10 20 30 40 50 60 70
intr 123456 10 20 0 0
ctxt 987654
btime 1700000000
processes 4242
procs_running 3
procs_blocked 1
softirq 100 1 2 3 4 5 6 7 8 9 10
";

#[test]
fn cpu_seconds_from_proc_stat_with_short_and_long_lines() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "proc/stat", PROC_STAT);
    let f = families(&mut Cpu::new(&Paths::under(dir.path())));
    assert_eq!(
        value(&f, "node_cpu_seconds_total", &[("cpu", "0"), ("mode", "user")]),
        2.0
    );
    assert_eq!(
        value(&f, "node_cpu_seconds_total", &[("cpu", "0"), ("mode", "idle")]),
        5.0
    );
    assert_eq!(
        value(&f, "node_cpu_seconds_total", &[("cpu", "1"), ("mode", "nice")]),
        0.01
    );
    assert_eq!(
        value(&f, "node_cpu_guest_seconds_total", &[("cpu", "0"), ("mode", "user")]),
        0.07
    );
    assert_eq!(
        value(&f, "node_cpu_guest_seconds_total", &[("cpu", "0"), ("mode", "nice")]),
        0.01
    );
    // A 2.6.11-era line without steal and guest columns: those are 0.
    assert_eq!(
        value(&f, "node_cpu_seconds_total", &[("cpu", "2"), ("mode", "softirq")]),
        0.7
    );
    assert_eq!(
        value(&f, "node_cpu_seconds_total", &[("cpu", "2"), ("mode", "steal")]),
        0.0
    );
    let fam = family(&f, "node_cpu_seconds_total");
    assert_eq!(fam.kind, MetricType::Counter);
    assert_eq!(fam.metrics.len(), 3 * 8, "8 modes per CPU, the total line skipped");
    assert_eq!(family(&f, "node_cpu_guest_seconds_total").metrics.len(), 3 * 2);
}

#[test]
fn cpu_thermal_throttles_once_per_core_and_package_and_isolated_cpus() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "proc/stat", "cpu0 1 1 1 1 1 1 1 1 0 0\n");
    // cpu0 and cpu1 are SMT siblings of core 0; cpu2 is core 1; cpu3 lacks topology.
    for (cpu, core, core_count, pkg_count) in [(0, 0, 7, 11), (1, 0, 7, 11), (2, 1, 3, 11)] {
        let base = format!("sys/devices/system/cpu/cpu{cpu}");
        write(dir.path(), &format!("{base}/topology/physical_package_id"), "0\n");
        write(dir.path(), &format!("{base}/topology/core_id"), &format!("{core}\n"));
        write(
            dir.path(),
            &format!("{base}/thermal_throttle/core_throttle_count"),
            &format!("{core_count}\n"),
        );
        write(
            dir.path(),
            &format!("{base}/thermal_throttle/package_throttle_count"),
            &format!("{pkg_count}\n"),
        );
    }
    fs::create_dir_all(dir.path().join("sys/devices/system/cpu/cpu3")).unwrap();
    write(dir.path(), "sys/devices/system/cpu/isolated", "2-3\n");
    let f = families(&mut Cpu::new(&Paths::under(dir.path())));
    assert_eq!(value(&f, "node_cpu_package_throttles_total", &[("package", "0")]), 11.0);
    assert_eq!(
        value(&f, "node_cpu_core_throttles_total", &[("package", "0"), ("core", "0")]),
        7.0
    );
    assert_eq!(
        value(&f, "node_cpu_core_throttles_total", &[("package", "0"), ("core", "1")]),
        3.0
    );
    assert_eq!(family(&f, "node_cpu_core_throttles_total").metrics.len(), 2);
    assert_eq!(family(&f, "node_cpu_isolated").metrics.len(), 2);
    assert_eq!(value(&f, "node_cpu_isolated", &[("cpu", "3")]), 1.0);
}

#[test]
fn cpu_counter_going_backwards_is_held() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "proc/stat", "cpu0 100 0 0 1000 50 0 0 0 0 0\n");
    let mut cpu = Cpu::new(&Paths::under(dir.path()));
    families(&mut cpu);
    write(dir.path(), "proc/stat", "cpu0 110 0 0 1010 40 0 0 0 0 0\n");
    let f = families(&mut cpu);
    assert_eq!(
        value(&f, "node_cpu_seconds_total", &[("cpu", "0"), ("mode", "iowait")]),
        0.5
    );
    assert_eq!(
        value(&f, "node_cpu_seconds_total", &[("cpu", "0"), ("mode", "user")]),
        1.1
    );
}

#[test]
fn stat_fields_and_missing_field_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "proc/stat", PROC_STAT);
    let f = families(&mut Stat::new(&Paths::under(dir.path())));
    assert_eq!(value(&f, "node_intr_total", &[]), 123456.0);
    assert_eq!(value(&f, "node_context_switches_total", &[]), 987654.0);
    assert_eq!(value(&f, "node_forks_total", &[]), 4242.0);
    assert_eq!(value(&f, "node_boot_time_seconds", &[]), 1.7e9);
    assert_eq!(value(&f, "node_procs_running", &[]), 3.0);
    assert_eq!(value(&f, "node_procs_blocked", &[]), 1.0);
    assert_eq!(family(&f, "node_intr_total").kind, MetricType::Counter);
    assert_eq!(family(&f, "node_procs_running").kind, MetricType::Gauge);

    write(dir.path(), "proc/stat", "ctxt 1\nbtime x\n");
    let (r, _) = run(&mut Stat::new(&Paths::under(dir.path())));
    assert!(matches!(r, Err(Error::Parse { .. })), "{r:?}");
    write(dir.path(), "proc/stat", "ctxt 1\n");
    let (r, f) = run(&mut Stat::new(&Paths::under(dir.path())));
    assert!(r.is_err());
    assert_eq!(
        value(&f, "node_context_switches_total", &[]),
        1.0,
        "what was read is kept"
    );
}

// ---------------------------------------------------------------- meminfo, loadavg, filefd

#[test]
fn meminfo_name_mapping_units_and_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "proc/meminfo",
        "MemTotal:       16337620 kB\nMemAvailable:    8000000 kB\n\nActive(anon):      1024 kB\nInactive(file):       1 kB\nHugePages_Total:       4\nHugepagesize:       2048 kB\nNFS_Unstable:          0 kB\n",
    );
    let f = families(&mut Meminfo::new(&Paths::under(dir.path())));
    assert_eq!(value(&f, "node_memory_MemTotal_bytes", &[]), 16337620.0 * 1024.0);
    assert_eq!(value(&f, "node_memory_MemAvailable_bytes", &[]), 8000000.0 * 1024.0);
    assert_eq!(value(&f, "node_memory_Active_anon_bytes", &[]), 1024.0 * 1024.0);
    assert_eq!(value(&f, "node_memory_Inactive_file_bytes", &[]), 1024.0);
    assert_eq!(value(&f, "node_memory_HugePages_Total", &[]), 4.0);
    assert_eq!(value(&f, "node_memory_NFS_Unstable_bytes", &[]), 0.0);
    assert_eq!(
        family(&f, "node_memory_MemTotal_bytes").help,
        "Memory information field MemTotal_bytes."
    );
    assert_eq!(f.len(), 7);

    write(dir.path(), "proc/meminfo", "MemTotal: lots kB\n");
    assert!(matches!(
        run(&mut Meminfo::new(&Paths::under(dir.path()))).0,
        Err(Error::Parse { line: 1, .. })
    ));
    write(dir.path(), "proc/meminfo", "MemTotal: 1 kB extra\n");
    assert!(run(&mut Meminfo::new(&Paths::under(dir.path()))).0.is_err());
}

#[test]
fn loadavg_and_filefd() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "proc/loadavg", "0.25 1.50 3.00 2/345 6789\n");
    write(dir.path(), "proc/sys/fs/file-nr", "1024\t0\t9223372036854775807\n");
    let paths = Paths::under(dir.path());
    let f = families(&mut Loadavg::new(&paths));
    assert_eq!(value(&f, "node_load1", &[]), 0.25);
    assert_eq!(value(&f, "node_load5", &[]), 1.5);
    assert_eq!(value(&f, "node_load15", &[]), 3.0);
    let f = families(&mut Filefd::new(&paths));
    assert_eq!(value(&f, "node_filefd_allocated", &[]), 1024.0);
    assert_eq!(value(&f, "node_filefd_maximum", &[]), 9223372036854775807.0);

    write(dir.path(), "proc/loadavg", "0.25 1.50\n");
    assert!(run(&mut Loadavg::new(&paths)).0.is_err());
    write(dir.path(), "proc/sys/fs/file-nr", "1024\n");
    assert!(run(&mut Filefd::new(&paths)).0.is_err());
}

// ---------------------------------------------------------------- filesystem

const MOUNTS: &str = "/dev/sda1 / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid 0 0
sysfs /sys sysfs rw 0 0
tmpfs /run tmpfs rw,nosuid 0 0
/dev/sdb1 /mnt/My\\040Photos\\011x vfat ro,relatime 0 0
overlay /var/lib/docker/overlay2/abc/merged overlay rw 0 0
/dev/sda1 / ext4 rw,relatime 0 0
/dev/sdc1 /mnt/broken xfs rw 0 0
/dev/sdd1 /var/lib/docker/volumes ext4 rw 0 0
";

fn fake_statfs(path: &Path) -> io::Result<FsStat> {
    if path.ends_with("broken") {
        return Err(io::Error::from_raw_os_error(libc_eio()));
    }
    Ok(FsStat {
        size: 1000.0,
        free: 400.0,
        avail: 300.0,
        files: 50.0,
        files_free: 20.0,
    })
}

fn libc_eio() -> i32 {
    5
}

#[test]
fn filesystem_exclusions_escapes_duplicates_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "proc/1/mounts", MOUNTS);
    let mut c = Filesystem::new(&Paths::under(dir.path())).with_statfs(fake_statfs);
    let f = families(&mut c);
    let size = family(&f, "node_filesystem_size_bytes");
    let mounts: Vec<&str> = size
        .metrics
        .iter()
        .map(|m| m.labels.iter().find(|(n, _)| n == "mountpoint").unwrap().1.as_str())
        .collect();
    // /proc, /sys (by mount point and type), overlay and everything under /var/lib/docker/
    // are excluded by default.
    assert_eq!(mounts, vec!["/", "/mnt/My Photos\tx", "/run"]);
    let photos = [
        ("device", "/dev/sdb1"),
        ("fstype", "vfat"),
        ("mountpoint", "/mnt/My Photos\tx"),
    ];
    assert_eq!(value(&f, "node_filesystem_readonly", &photos), 1.0);
    let root = [("device", "/dev/sda1"), ("fstype", "ext4"), ("mountpoint", "/")];
    assert_eq!(value(&f, "node_filesystem_readonly", &root), 0.0);
    assert_eq!(value(&f, "node_filesystem_avail_bytes", &root), 300.0);
    assert_eq!(value(&f, "node_filesystem_free_bytes", &root), 400.0);
    assert_eq!(value(&f, "node_filesystem_files_free", &root), 20.0);
    assert_eq!(value(&f, "node_filesystem_device_error", &root), 0.0);
    let broken = [
        ("device", "/dev/sdc1"),
        ("fstype", "xfs"),
        ("mountpoint", "/mnt/broken"),
    ];
    assert_eq!(value(&f, "node_filesystem_device_error", &broken), 1.0);
    assert!(
        !family(&f, "node_filesystem_files")
            .metrics
            .iter()
            .any(|m| m.labels[2].1 == "/mnt/broken")
    );
    assert_eq!(
        family(&f, "node_filesystem_device_error").metrics.len(),
        4,
        "duplicate / counted once"
    );
}

#[test]
fn filesystem_stuck_mount_is_skipped_until_statfs_returns() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "proc/1/mounts",
        "/dev/sda1 / ext4 rw 0 0\nnas:/export /mnt/nas nfs4 rw 0 0\n",
    );
    let calls = Arc::new(AtomicUsize::new(0));
    // The NFS server is "down" while this lock is held by the test.
    let server = Arc::new(Mutex::new(()));
    let outage = server.lock().unwrap();
    let (calls2, server2) = (calls.clone(), server.clone());
    let mut c = Filesystem::new(&Paths::under(dir.path()))
        .with_mount_timeout(std::time::Duration::from_millis(50))
        .with_statfs(move |p| {
            if p.ends_with("nas") {
                calls2.fetch_add(1, Ordering::SeqCst);
                drop(server2.lock().unwrap());
            }
            fake_statfs(p)
        });
    let nas = [
        ("device", "nas:/export"),
        ("fstype", "nfs4"),
        ("mountpoint", "/mnt/nas"),
    ];
    let root = [("device", "/dev/sda1"), ("fstype", "ext4"), ("mountpoint", "/")];
    let f = families(&mut c);
    assert_eq!(value(&f, "node_filesystem_device_error", &nas), 1.0);
    assert_eq!(
        value(&f, "node_filesystem_size_bytes", &root),
        1000.0,
        "other mounts still reported"
    );
    let f = families(&mut c);
    assert_eq!(value(&f, "node_filesystem_device_error", &nas), 1.0);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a stuck mount is not stat'ed again");
    drop(outage);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let f = families(&mut c);
        if value(&f, "node_filesystem_device_error", &nas) == 0.0 {
            assert_eq!(value(&f, "node_filesystem_size_bytes", &nas), 1000.0);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "mount never recovered");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn filesystem_falls_back_to_own_mounts_and_strips_rootfs() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "proc/mounts",
        "/dev/sda1 /host ext4 rw 0 0\n/dev/sda2 /host/home ext4 rw 0 0\n",
    );
    let mut paths = Paths::under(dir.path());
    paths.rootfs = "/host".into();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let mut c = Filesystem::new(&paths).with_statfs(move |p| {
        seen2.lock().unwrap().push(p.to_path_buf());
        fake_statfs(p)
    });
    let f = families(&mut c);
    let m: Vec<String> = family(&f, "node_filesystem_size_bytes")
        .metrics
        .iter()
        .map(|m| m.labels[2].1.clone())
        .collect();
    assert_eq!(m, vec!["/", "/home"]);
    let mut s = seen.lock().unwrap().clone();
    s.sort();
    assert_eq!(s, vec![Path::new("/host/host"), Path::new("/host/host/home")]);

    write(dir.path(), "proc/mounts", "garbage\n");
    assert!(matches!(run(&mut Filesystem::new(&paths)).0, Err(Error::Parse { .. })));
}

#[test]
fn filesystem_real_statfs_of_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("data");
    fs::create_dir(&target).unwrap();
    write(
        dir.path(),
        "proc/1/mounts",
        &format!("/dev/x {} ext4 rw 0 0\n", target.display()),
    );
    let f = families(&mut Filesystem::new(&Paths::under(dir.path())));
    let l = [
        ("device", "/dev/x"),
        ("fstype", "ext4"),
        ("mountpoint", target.to_str().unwrap()),
    ];
    assert!(value(&f, "node_filesystem_size_bytes", &l) > 0.0);
    assert!(value(&f, "node_filesystem_files", &l) >= 0.0);
}

// ---------------------------------------------------------------- diskstats

#[test]
fn diskstats_columns_units_exclusions_and_udev() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "proc/diskstats",
        "   8       0 sda 100 2 800 1500 50 3 400 2500 1 3000 4000 7 1 16 70 9 90\n   8       1 sda1 1 1 1 1 1 1 1 1 1 1 1\n   7       0 loop0 1 1 1 1 1 1 1 1 1 1 1 0 0 0 0\n 253       0 dm-0 5 0 40 6 7 0 56 8 0 9 10\n",
    );
    write(
        dir.path(),
        "run/udev/data/b8:0",
        "S:disk/by-id/x\nE:ID_MODEL=Samsung SSD\nE:ID_SERIAL_SHORT=S123\nE:ID_ATA=1\nE:ID_ATA_ROTATION_RATE_RPM=0\nE:ID_ATA_WRITE_CACHE=1\nE:ID_PATH=pci-0000:00:1f.2-ata-1\n",
    );
    write(
        dir.path(),
        "run/udev/data/b253:0",
        "E:DM_NAME=vg-root\nE:DM_UUID=LVM-1\nE:ID_FS_TYPE=ext4\nE:ID_FS_UUID=u\n",
    );
    let f = families(&mut Diskstats::new(&Paths::under(dir.path())));
    let sda = [("device", "sda")];
    assert_eq!(value(&f, "node_disk_reads_completed_total", &sda), 100.0);
    assert_eq!(value(&f, "node_disk_read_bytes_total", &sda), 800.0 * 512.0);
    assert_eq!(value(&f, "node_disk_read_time_seconds_total", &sda), 1.5);
    assert_eq!(value(&f, "node_disk_written_bytes_total", &sda), 400.0 * 512.0);
    assert_eq!(value(&f, "node_disk_io_now", &sda), 1.0);
    assert_eq!(value(&f, "node_disk_io_time_seconds_total", &sda), 3.0);
    assert_eq!(value(&f, "node_disk_io_time_weighted_seconds_total", &sda), 4.0);
    assert_eq!(value(&f, "node_disk_discarded_sectors_total", &sda), 16.0);
    assert_eq!(value(&f, "node_disk_flush_requests_time_seconds_total", &sda), 0.09);
    assert_eq!(family(&f, "node_disk_io_now").kind, MetricType::Gauge);
    // dm-0 has the 11 columns of pre-4.18 kernels: no discard or flush series.
    assert_eq!(family(&f, "node_disk_discards_completed_total").metrics.len(), 1);
    assert_eq!(
        family(&f, "node_disk_reads_completed_total").metrics.len(),
        2,
        "sda1 and loop0 excluded"
    );
    let info = [
        ("device", "sda"),
        ("major", "8"),
        ("minor", "0"),
        ("path", "pci-0000:00:1f.2-ata-1"),
        ("wwn", ""),
        ("model", "Samsung SSD"),
        ("serial", "S123"),
        ("revision", ""),
    ];
    assert_eq!(value(&f, "node_disk_info", &info), 1.0);
    assert_eq!(value(&f, "node_disk_ata_rotation_rate_rpm", &sda), 0.0);
    assert_eq!(value(&f, "node_disk_ata_write_cache", &sda), 1.0);
    let dm = [
        ("device", "dm-0"),
        ("name", "vg-root"),
        ("uuid", "LVM-1"),
        ("vg_name", ""),
        ("lv_name", ""),
        ("lv_layer", ""),
    ];
    assert_eq!(value(&f, "node_disk_device_mapper_info", &dm), 1.0);
    let fsinfo = [
        ("device", "dm-0"),
        ("type", "ext4"),
        ("usage", ""),
        ("uuid", "u"),
        ("version", ""),
    ];
    assert_eq!(value(&f, "node_disk_filesystem_info", &fsinfo), 1.0);

    write(dir.path(), "proc/diskstats", "8 0 sda 1 2 3\n");
    assert!(run(&mut Diskstats::new(&Paths::under(dir.path()))).0.is_err());
}

// ---------------------------------------------------------------- netdev, netstat

#[test]
fn netdev_columns_and_nohandler() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "proc/net/dev",
        "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0\n  eth0: 5000 50 1 2 3 4 5 6 7000 70 8 9 10 11 12 13\nveth@x: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n",
    );
    write(dir.path(), "sys/class/net/eth0/statistics/rx_nohandler", "42\n");
    let f = families(&mut Netdev::new(&Paths::under(dir.path())));
    let eth0 = [("device", "eth0")];
    assert_eq!(value(&f, "node_network_receive_bytes_total", &eth0), 5000.0);
    assert_eq!(value(&f, "node_network_receive_errs_total", &eth0), 1.0);
    assert_eq!(value(&f, "node_network_receive_multicast_total", &eth0), 6.0);
    assert_eq!(value(&f, "node_network_transmit_colls_total", &eth0), 11.0);
    assert_eq!(value(&f, "node_network_transmit_compressed_total", &eth0), 13.0);
    assert_eq!(value(&f, "node_network_receive_nohandler_total", &eth0), 42.0);
    assert_eq!(family(&f, "node_network_receive_nohandler_total").metrics.len(), 1);
    assert_eq!(
        value(&f, "node_network_transmit_bytes_total", &[("device", "veth@x")]),
        9.0
    );
    assert_eq!(f.len(), 17);
    assert!(f.iter().all(|fam| fam.kind == MetricType::Counter));

    let mut excl = Netdev::with_exclude(&Paths::under(dir.path()), "^lo$").unwrap();
    assert_eq!(
        family(&families(&mut excl), "node_network_receive_bytes_total")
            .metrics
            .len(),
        2
    );
    assert!(matches!(
        Netdev::with_exclude(&Paths::under(dir.path()), "("),
        Err(Error::Pattern { .. })
    ));
}

#[test]
fn netstat_default_fields_and_optional_snmp6() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "proc/net/netstat",
        "TcpExt: SyncookiesSent ListenDrops TCPTimeouts TCPLostRetransmit\nTcpExt: 1 2 3 4\nIpExt: InNoRoutes InOctets OutOctets\nIpExt: 0 100 200\n",
    );
    write(
        dir.path(),
        "proc/net/snmp",
        "Ip: Forwarding DefaultTTL InReceives\nIp: 1 64 999\nTcp: RtoAlgorithm ActiveOpens CurrEstab InErrs\nTcp: 1 5 6 7\nUdp: InDatagrams NoPorts InErrors\nUdp: 10 11 12\n",
    );
    let f = families(&mut Netstat::new(&Paths::under(dir.path())));
    let got = names(&f);
    let want: BTreeSet<String> = [
        "node_netstat_TcpExt_SyncookiesSent",
        "node_netstat_TcpExt_ListenDrops",
        "node_netstat_TcpExt_TCPTimeouts",
        "node_netstat_IpExt_InOctets",
        "node_netstat_IpExt_OutOctets",
        "node_netstat_Ip_Forwarding",
        "node_netstat_Tcp_ActiveOpens",
        "node_netstat_Tcp_CurrEstab",
        "node_netstat_Tcp_InErrs",
        "node_netstat_Udp_InDatagrams",
        "node_netstat_Udp_NoPorts",
        "node_netstat_Udp_InErrors",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(got, want);
    assert_eq!(value(&f, "node_netstat_Tcp_CurrEstab", &[]), 6.0);
    assert_eq!(family(&f, "node_netstat_Tcp_CurrEstab").help, "Statistic TcpCurrEstab.");
    assert_eq!(family(&f, "node_netstat_Tcp_CurrEstab").kind, MetricType::Unknown);

    write(
        dir.path(),
        "proc/net/snmp6",
        "Ip6InReceives 5\nIp6InOctets 777\nUdp6InDatagrams 8\nIcmp6OutMsgs 9\n",
    );
    let f = families(&mut Netstat::new(&Paths::under(dir.path())));
    assert_eq!(value(&f, "node_netstat_Ip6_InOctets", &[]), 777.0);
    assert_eq!(value(&f, "node_netstat_Udp6_InDatagrams", &[]), 8.0);
    assert_eq!(value(&f, "node_netstat_Icmp6_OutMsgs", &[]), 9.0);

    write(dir.path(), "proc/net/snmp", "Tcp: A B C\nTcp: 1 2\n");
    assert!(matches!(
        run(&mut Netstat::new(&Paths::under(dir.path()))).0,
        Err(Error::Parse { .. })
    ));
    fs::remove_file(dir.path().join("proc/net/snmp")).unwrap();
    assert!(matches!(
        run(&mut Netstat::new(&Paths::under(dir.path()))).0,
        Err(Error::Io { .. })
    ));
}

// ---------------------------------------------------------------- pressure, time, uname

#[test]
fn pressure_totals_in_seconds_and_no_data_without_psi() {
    let dir = tempfile::tempdir().unwrap();
    let psi = |total_some: u64, total_full: u64| {
        format!(
            "some avg10=0.00 avg60=0.00 avg300=0.00 total={total_some}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total={total_full}\n"
        )
    };
    write(dir.path(), "proc/pressure/cpu", &psi(1_500_000, 0));
    write(dir.path(), "proc/pressure/io", &psi(2_000_000, 1_000_000));
    write(dir.path(), "proc/pressure/memory", &psi(3_000_000, 250_000));
    let paths = Paths::under(dir.path());
    let f = families(&mut Pressure::new(&paths));
    assert_eq!(value(&f, "node_pressure_cpu_waiting_seconds_total", &[]), 1.5);
    assert_eq!(value(&f, "node_pressure_io_waiting_seconds_total", &[]), 2.0);
    assert_eq!(value(&f, "node_pressure_io_stalled_seconds_total", &[]), 1.0);
    assert_eq!(value(&f, "node_pressure_memory_stalled_seconds_total", &[]), 0.25);
    assert_eq!(f.len(), 5, "no irq file, no irq series");
    write(
        dir.path(),
        "proc/pressure/irq",
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=7000000\n",
    );
    let f = families(&mut Pressure::new(&paths));
    assert_eq!(value(&f, "node_pressure_irq_stalled_seconds_total", &[]), 7.0);

    fs::remove_dir_all(dir.path().join("proc/pressure")).unwrap();
    assert!(matches!(run(&mut Pressure::new(&paths)).0, Err(Error::NoData(_))));
}

#[test]
fn time_clocksources() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "sys/devices/system/clocksource/clocksource0/available_clocksource",
        "tsc hpet acpi_pm \n",
    );
    write(
        dir.path(),
        "sys/devices/system/clocksource/clocksource0/current_clocksource",
        "tsc\n",
    );
    let f = families(&mut Time::new(&Paths::under(dir.path())));
    assert_eq!(family(&f, "node_time_clocksource_available_info").metrics.len(), 3);
    assert_eq!(
        value(
            &f,
            "node_time_clocksource_current_info",
            &[("clocksource", "tsc"), ("device", "0")]
        ),
        1.0
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((value(&f, "node_time_seconds", &[]) - now).abs() < 60.0);
    assert_eq!(family(&f, "node_time_zone_offset_seconds").metrics.len(), 1);

    let empty = tempfile::tempdir().unwrap();
    let (r, f) = run(&mut Time::new(&Paths::under(empty.path())));
    assert!(r.is_err(), "missing clocksource dir is an error");
    assert!(
        names(&f).contains("node_time_seconds"),
        "the time itself is still reported"
    );
}

#[test]
fn uname_from_proc_sys_kernel() {
    let dir = tempfile::tempdir().unwrap();
    for (f, v) in [
        ("ostype", "Linux\n"),
        ("osrelease", "6.1.0-18-amd64\n"),
        ("version", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)\n"),
        ("hostname", "edge-box\n"),
        ("domainname", "(none)\n"),
    ] {
        write(dir.path(), &format!("proc/sys/kernel/{f}"), v);
    }
    let f = families(&mut Uname::new(&Paths::under(dir.path())));
    let m = &family(&f, "node_uname_info").metrics[0];
    let l: BTreeMap<&str, &str> = m.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    assert_eq!(l["release"], "6.1.0-18-amd64");
    assert_eq!(l["version"], "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)");
    assert_eq!(l["nodename"], "edge-box");
    assert_eq!(l["domainname"], "(none)");
    assert_eq!(l["sysname"], "Linux");
    assert!(!l["machine"].is_empty());
    assert_eq!(l.len(), 6);
}

// ---------------------------------------------------------------- hwmon

#[test]
fn hwmon_temperatures_fans_voltages_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let dev = "sys/devices/platform/coretemp.0";
    fs::create_dir_all(root.join(dev)).unwrap();
    let hw = format!("{dev}/hwmon/hwmon1");
    write(root, &format!("{hw}/name"), "coretemp\n");
    write(root, &format!("{hw}/temp1_input"), "45000\n");
    write(root, &format!("{hw}/temp1_max"), "84000\n");
    write(root, &format!("{hw}/temp1_crit"), "100000\n");
    write(root, &format!("{hw}/temp1_crit_alarm"), "0\n");
    write(root, &format!("{hw}/temp1_label"), "Package id 0\n");
    write(root, &format!("{hw}/fan2_input"), "1200\n");
    write(root, &format!("{hw}/in0_input"), "1100\n");
    write(root, &format!("{hw}/power1_average"), "15000000\n");
    write(root, &format!("{hw}/uevent"), "x\n");
    std::os::unix::fs::symlink(root.join(dev), root.join(&hw).join("device")).unwrap();
    fs::create_dir_all(root.join("sys/class/hwmon")).unwrap();
    std::os::unix::fs::symlink(root.join(&hw), root.join("sys/class/hwmon/hwmon1")).unwrap();
    // A chip without a device link is named by its `name` file.
    write(root, "sys/class/hwmon/hwmon2/name", "acpitz\n");
    write(root, "sys/class/hwmon/hwmon2/temp1_input", "27800\n");

    let f = families(&mut Hwmon::new(&Paths::under(root)));
    let core = [("chip", "platform_coretemp_0"), ("sensor", "temp1")];
    assert_eq!(value(&f, "node_hwmon_temp_celsius", &core), 45.0);
    assert_eq!(value(&f, "node_hwmon_temp_max_celsius", &core), 84.0);
    assert_eq!(value(&f, "node_hwmon_temp_crit_celsius", &core), 100.0);
    assert_eq!(value(&f, "node_hwmon_temp_crit_alarm_celsius", &core), 0.0);
    assert_eq!(
        value(
            &f,
            "node_hwmon_sensor_label",
            &[
                ("chip", "platform_coretemp_0"),
                ("sensor", "temp1"),
                ("label", "Package id 0")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            &f,
            "node_hwmon_chip_names",
            &[("chip", "platform_coretemp_0"), ("chip_name", "coretemp")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &f,
            "node_hwmon_fan_rpm",
            &[("chip", "platform_coretemp_0"), ("sensor", "fan2")]
        ),
        1200.0
    );
    assert_eq!(
        value(
            &f,
            "node_hwmon_in_volts",
            &[("chip", "platform_coretemp_0"), ("sensor", "in0")]
        ),
        1.1
    );
    assert_eq!(
        value(
            &f,
            "node_hwmon_power_average_watt",
            &[("chip", "platform_coretemp_0"), ("sensor", "power1")]
        ),
        15.0
    );
    assert_eq!(
        value(
            &f,
            "node_hwmon_temp_celsius",
            &[("chip", "acpitz"), ("sensor", "temp1")]
        ),
        27.8
    );
    assert_eq!(
        family(&f, "node_hwmon_temp_celsius").help,
        "Hardware monitor for temperature (input)"
    );

    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        run(&mut Hwmon::new(&Paths::under(empty.path()))).0,
        Err(Error::NoData(_))
    ));
}

// ---------------------------------------------------------------- the whole host

#[test]
fn missing_sources_are_reported_per_collector_never_fatal() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "proc/loadavg", "1 2 3 1/1 1\n");
    let mut host = HostCollector::new(&Paths::under(dir.path()));
    let f = host.gather();
    let success = family(&f, "node_scrape_collector_success");
    assert_eq!(success.metrics.len(), host.collector_names().len());
    for m in &success.metrics {
        let want = if m.labels[0].1 == "loadavg" { 1.0 } else { 0.0 };
        assert_eq!(m.value, want, "{:?}", m.labels);
    }
    assert_eq!(family(&f, "node_scrape_collector_duration_seconds").metrics.len(), 13);
    assert_eq!(value(&f, "node_load5", &[]), 2.0);
}

/// Parses text exposition into name -> (sorted labels -> value), plus HELP and TYPE.
#[derive(Debug, Default)]
struct Parsed {
    series: BTreeMap<String, BTreeMap<Vec<(String, String)>, f64>>,
    types: BTreeMap<String, MetricType>,
    helps: BTreeMap<String, String>,
}

fn parse(body: &[u8]) -> Parsed {
    let mut p = PromParser::new(body);
    let mut out = Parsed::default();
    while let Some(e) = p.next().expect("valid exposition") {
        match e {
            Entry::Series(s) => {
                let mut labels: Vec<(String, String)> = s
                    .labels
                    .iter()
                    .map(|l| (l.name.to_owned(), l.value.to_owned()))
                    .collect();
                labels.sort();
                let prev = out.series.entry(s.name.to_owned()).or_default().insert(labels, s.value);
                assert!(prev.is_none(), "duplicate series of {}", s.name);
            }
            Entry::Type { name, kind } => {
                out.types.insert(name.to_owned(), kind);
            }
            Entry::Help { name, help } => {
                out.helps.insert(name.to_owned(), help.to_owned());
            }
            _ => {}
        }
    }
    out
}

#[test]
fn text_output_parses_back_with_help_and_type() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "proc/stat", PROC_STAT);
    write(dir.path(), "proc/1/mounts", "/dev/sdb1 /mnt/a\\040\"b\" vfat rw 0 0\n");
    let mut host = HostCollector::with_collectors(vec![
        Box::new(Cpu::new(&Paths::under(dir.path()))),
        Box::new(Filesystem::new(&Paths::under(dir.path())).with_statfs(fake_statfs)),
    ]);
    let mut buf = Vec::new();
    host.write_text(&mut buf).unwrap();
    let p = parse(&buf);
    assert_eq!(p.types["node_cpu_seconds_total"], MetricType::Counter);
    assert_eq!(
        p.helps["node_cpu_seconds_total"],
        "Seconds the CPUs spent in each mode."
    );
    assert_eq!(p.types["node_filesystem_size_bytes"], MetricType::Gauge);
    let fs = &p.series["node_filesystem_size_bytes"];
    let labels = fs.keys().next().unwrap();
    assert_eq!(labels[2], ("mountpoint".to_owned(), "/mnt/a \"b\"".to_owned()));
    assert_eq!(p.series["node_scrape_collector_success"].len(), 2);
    assert_eq!(p.series["node_cpu_seconds_total"].len(), 24);
}

// ---------------------------------------------------------------- comparison with node_exporter

/// The collectors covered, by node_exporter's names.
const COVERED: [&str; 13] = [
    "cpu",
    "diskstats",
    "filefd",
    "filesystem",
    "hwmon",
    "loadavg",
    "meminfo",
    "netdev",
    "netstat",
    "pressure",
    "stat",
    "time",
    "uname",
];

struct Exporter(std::process::Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        // Stop exactly the process this test started.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_node_exporter() -> (Exporter, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = std::process::Command::new("prometheus-node-exporter");
    cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--collector.disable-defaults")
        // Same filters on both sides: Watchfire's defaults are current upstream's, which
        // differ slightly from the packaged 1.5's.
        .arg(format!(
            "--collector.filesystem.fs-types-exclude={}",
            watchfire_hostmetrics::DEFAULT_FS_TYPES_EXCLUDE
        ))
        .arg(format!(
            "--collector.filesystem.mount-points-exclude={}",
            watchfire_hostmetrics::DEFAULT_MOUNT_POINTS_EXCLUDE
        ))
        .arg(format!(
            "--collector.diskstats.device-exclude={}",
            watchfire_hostmetrics::DEFAULT_DISK_DEVICE_EXCLUDE
        ))
        .arg(format!(
            "--collector.netstat.fields={}",
            watchfire_hostmetrics::DEFAULT_NETSTAT_FIELDS
        ))
        // Debian patches this default to `^lo$`; upstream excludes no network device.
        .arg("--collector.netdev.device-exclude=")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for c in COVERED {
        cmd.arg(format!("--collector.{c}"));
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            panic!(
                "prometheus-node-exporter is not installed; `bash .ci/test` installs it (Debian package prometheus-node-exporter)"
            )
        }
        Err(e) => panic!("starting prometheus-node-exporter: {e}"),
    };
    (Exporter(child), format!("http://127.0.0.1:{port}/metrics"))
}

fn fetch(client: &reqwest::blocking::Client, url: &str) -> reqwest::Result<Vec<u8>> {
    Ok(client.get(url).send()?.error_for_status()?.bytes()?.to_vec())
}

/// How far apart a value of `name` may be when read a moment apart: (relative, absolute).
/// `None` means not compared (durations).
fn tolerance(name: &str) -> Option<(f64, f64)> {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    let exact = Some((0.0, 0.0));
    Some(match name {
        "node_scrape_collector_duration_seconds" => return None,
        "node_time_seconds" => (0.0, 10.0),
        "node_boot_time_seconds"
        | "node_filefd_maximum"
        | "node_memory_MemTotal_bytes"
        | "node_memory_SwapTotal_bytes" => {
            return exact;
        }
        "node_memory_HugePages_Total" | "node_memory_Hugepagesize_bytes" | "node_memory_VmallocTotal_bytes" => {
            return exact;
        }
        "node_filesystem_size_bytes" | "node_filesystem_files" | "node_filesystem_readonly" => return exact,
        "node_filesystem_device_error" | "node_scrape_collector_success" => return exact,
        n if n.ends_with("_info") || n == "node_time_zone_offset_seconds" => return exact,
        n if n.starts_with("node_load") => (0.2, 1.0),
        "node_procs_running" | "node_procs_blocked" | "node_disk_io_now" => (0.0, 20.0),
        "node_filefd_allocated" => (0.05, 500.0),
        n if n.starts_with("node_cpu_") => (0.02, 5.0),
        n if n.starts_with("node_pressure_") => (0.02, 5.0),
        n if n.starts_with("node_filesystem_") && n.ends_with("_bytes") => (0.02, 2.0 * GIB),
        n if n.starts_with("node_filesystem_") => (0.02, 50_000.0),
        n if n.starts_with("node_memory_") => (0.10, 0.5 * GIB),
        n if n.ends_with("_bytes_total") => (0.05, 64.0 * 1024.0 * 1024.0),
        n if n.ends_with("_seconds_total") => (0.05, 5.0),
        // Event counters: interrupts and context switches run at thousands per second.
        "node_intr_total" | "node_context_switches_total" => (0.05, 100_000.0),
        _ => (0.05, 2000.0),
    })
}

fn compare(reference: &Parsed, ours: &Parsed) -> Vec<String> {
    let mut problems = Vec::new();
    let ref_names: BTreeSet<&String> = reference
        .series
        .keys()
        .filter(|n| n.starts_with("node_") && *n != "node_exporter_build_info")
        .collect();
    let our_names: BTreeSet<&String> = ours.series.keys().collect();
    for n in ref_names.difference(&our_names) {
        problems.push(format!("missing family {n}"));
    }
    for n in our_names.difference(&ref_names) {
        // Newer upstream than the packaged 1.5: irq pressure (Linux 6.1+).
        if *n != "node_pressure_irq_stalled_seconds_total" {
            problems.push(format!("extra family {n}"));
        }
    }
    for n in ref_names.intersection(&our_names) {
        if reference.types.get(*n) != ours.types.get(*n) {
            problems.push(format!(
                "{n}: TYPE {:?} vs ours {:?}",
                reference.types.get(*n),
                ours.types.get(*n)
            ));
        }
        if reference.helps.get(*n) != ours.helps.get(*n) {
            problems.push(format!(
                "{n}: HELP {:?} vs ours {:?}",
                reference.helps.get(*n),
                ours.helps.get(*n)
            ));
        }
        let (r, o) = (&reference.series[*n], &ours.series[*n]);
        let rk: BTreeSet<_> = r.keys().collect();
        let ok: BTreeSet<_> = o.keys().collect();
        if rk != ok {
            problems.push(format!(
                "{n}: label sets differ: only node_exporter {:?}, only ours {:?}",
                rk.difference(&ok).collect::<Vec<_>>(),
                ok.difference(&rk).collect::<Vec<_>>()
            ));
            continue;
        }
        let Some((rel, abs)) = tolerance(n) else { continue };
        for (labels, rv) in r {
            let ov = o[labels];
            let allowed = abs + rel * rv.abs().max(ov.abs());
            if (rv - ov).abs() > allowed {
                problems.push(format!(
                    "{n}{labels:?}: node_exporter {rv} vs ours {ov} (allowed ±{allowed})"
                ));
            }
        }
    }
    problems
}

#[test]
fn matches_node_exporter_on_this_machine() {
    let (_exporter, url) = start_node_exporter();
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut host = HostCollector::new(&Paths::default());
    host.gather(); // prime the CPU counter cache, as a long-running exporter has it
    let mut problems = Vec::new();
    // Devices and mounts may come and go between the two reads (other tests, containers):
    // a mismatch is retried a few times before it counts.
    for attempt in 0..4 {
        let body = loop {
            match fetch(&client, &url) {
                Ok(b) => break b,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => panic!("node_exporter did not answer at {url}: {e}"),
            }
        };
        let mut ours = Vec::new();
        host.write_text(&mut ours).unwrap();
        let reference = parse(&body);
        let ours = parse(&ours);
        assert!(
            reference.series.len() > 50,
            "node_exporter exposed too little: {:?}",
            reference.series.keys()
        );
        problems = compare(&reference, &ours);
        if problems.is_empty() {
            // The check above is only meaningful if it compared something from every
            // collector that works here.
            for c in COVERED {
                let l = vec![("collector".to_owned(), c.to_owned())];
                assert_eq!(
                    reference.series["node_scrape_collector_success"].get(&l),
                    ours.series["node_scrape_collector_success"].get(&l),
                    "{c}"
                );
            }
            return;
        }
        eprintln!("attempt {attempt}: {} differences, retrying", problems.len());
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    panic!("differences from node_exporter:\n{}", problems.join("\n"));
}
