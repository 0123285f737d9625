//! Prints the CPU time (user + system, from /proc/self/stat) one full host collection costs,
//! averaged over N gathers (default 2000): `cargo run --release --example cpu_per_gather -- 2000`.
//! Compare with node_exporter by scraping it N times and reading its /proc/<pid>/stat.

use watchfire_hostmetrics::{HostCollector, Paths, write_families};

/// utime + stime of this process in clock ticks (USER_HZ, 100 per second).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat is readable");
    // Fields after the parenthesized command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let mut host = HostCollector::new(&Paths::default());
    let mut buf = Vec::with_capacity(64 * 1024);
    let start = cpu_ticks();
    let wall = std::time::Instant::now();
    for _ in 0..n {
        buf.clear();
        write_families(&host.gather(), &mut buf).expect("writing to a Vec cannot fail");
    }
    let ticks = cpu_ticks() - start;
    println!(
        "{n} gathers: {:.3} ms CPU per gather (user+system), {:.3} ms wall, {} bytes of text",
        ticks as f64 * 10.0 / n as f64,
        wall.elapsed().as_secs_f64() * 1000.0 / n as f64,
        buf.len()
    );
}
