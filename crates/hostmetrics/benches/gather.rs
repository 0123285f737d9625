//! CPU time of one full host collection (all collectors) against the live /proc and /sys,
//! and of writing it in the text format.

use criterion::{Criterion, criterion_group, criterion_main};
use watchfire_hostmetrics::{HostCollector, Paths, write_families};

fn gather(c: &mut Criterion) {
    let mut host = HostCollector::new(&Paths::default());
    c.bench_function("gather", |b| b.iter(|| host.gather()));
    c.bench_function("gather_and_write_text", |b| {
        let mut buf = Vec::with_capacity(64 * 1024);
        b.iter(|| {
            buf.clear();
            write_families(&host.gather(), &mut buf).expect("writing to a Vec cannot fail");
            buf.len()
        })
    });
}

criterion_group!(benches, gather);
criterion_main!(benches);
