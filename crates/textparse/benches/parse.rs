//! Parser throughput on a node_exporter-like page, in the three formats, plus the upstream
//! corpus page when it is present.
//!
//! `cargo bench -p watchfire-textparse --bench parse` reports bytes/s for the `bytes` groups
//! and samples/s for the `samples` groups. "scan" walks every entry with `next` (labels and
//! help parsed, key and value used); "skim" walks them with `skim`, as a scrape whose cache
//! knows every series and metadata line does; "labels" also builds the `Labels` of every
//! series, as a cold cache does.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use watchfire_model::Label;
use watchfire_textparse::proto::{self, MetricFamily};
use watchfire_textparse::{Entry, Format, Parser, Skim, TextWriter};

fn label(name: &str, value: &str) -> proto::LabelPair {
    proto::LabelPair {
        name: name.into(),
        value: value.into(),
    }
}

fn scalar(kind: proto::MetricType, labels: Vec<proto::LabelPair>, value: f64) -> proto::Metric {
    let mut m = proto::Metric {
        label: labels,
        ..Default::default()
    };
    match kind {
        proto::MetricType::Counter => {
            m.counter = Some(proto::Counter {
                value,
                ..Default::default()
            })
        }
        _ => m.gauge = Some(proto::Gauge { value }),
    }
    m
}

fn family(name: &str, help: &str, kind: proto::MetricType, metric: Vec<proto::Metric>) -> MetricFamily {
    MetricFamily {
        name: name.into(),
        help: help.into(),
        r#type: kind as i32,
        metric,
        unit: String::new(),
    }
}

/// Roughly what node_exporter on a 16-core host with a few disks and interfaces exposes.
fn node_page() -> Vec<MetricFamily> {
    use proto::MetricType::{Counter, Gauge};
    let mut families = Vec::new();
    let mut cpu = Vec::new();
    for c in 0..16 {
        for (i, mode) in ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"]
            .iter()
            .enumerate()
        {
            let v = 123456.78 * (c + 1) as f64 / (i + 1) as f64;
            cpu.push(scalar(
                Counter,
                vec![label("cpu", &c.to_string()), label("mode", mode)],
                v,
            ));
        }
    }
    families.push(family(
        "node_cpu_seconds_total",
        "Seconds the CPUs spent in each mode.",
        Counter,
        cpu,
    ));
    let mounts = [
        ("/dev/nvme0n1p2", "ext4", "/"),
        ("/dev/nvme0n1p1", "vfat", "/boot/efi"),
        ("tmpfs", "tmpfs", "/run"),
    ];
    for (name, help) in [
        (
            "node_filesystem_avail_bytes",
            "Filesystem space available to non-root users in bytes.",
        ),
        ("node_filesystem_free_bytes", "Filesystem free space in bytes."),
        ("node_filesystem_size_bytes", "Filesystem size in bytes."),
        ("node_filesystem_files", "Filesystem total file nodes."),
        ("node_filesystem_readonly", "Filesystem read-only status."),
    ] {
        let metrics = mounts
            .iter()
            .enumerate()
            .map(|(i, (dev, fs, mp))| {
                let labels = vec![label("device", dev), label("fstype", fs), label("mountpoint", mp)];
                scalar(Gauge, labels, 4.9e10 / (i + 1) as f64)
            })
            .collect();
        families.push(family(name, help, Gauge, metrics));
    }
    for stat in [
        "receive_bytes",
        "receive_packets",
        "receive_errs",
        "receive_drop",
        "transmit_bytes",
        "transmit_packets",
        "transmit_errs",
        "transmit_drop",
    ] {
        let metrics = ["eth0", "eth1", "lo", "docker0"]
            .iter()
            .map(|d| scalar(Counter, vec![label("device", d)], 8.253063168e9))
            .collect();
        families.push(family(
            &format!("node_network_{stat}_total"),
            "Network device statistic.",
            Counter,
            metrics,
        ));
    }
    for (i, name) in [
        "node_load1",
        "node_load5",
        "node_load15",
        "node_memory_MemAvailable_bytes",
        "go_goroutines",
    ]
    .iter()
    .enumerate()
    {
        families.push(family(
            name,
            "A gauge.",
            Gauge,
            vec![scalar(Gauge, vec![], 0.25 * i as f64 + 1.5)],
        ));
    }
    families.push(family(
        "go_gc_duration_seconds",
        "A summary of the pause duration of garbage collection cycles.",
        proto::MetricType::Summary,
        vec![proto::Metric {
            summary: Some(proto::Summary {
                sample_count: 190932,
                sample_sum: 44.985611511,
                quantile: [0.0, 0.25, 0.5, 0.75, 1.0]
                    .iter()
                    .map(|&q| proto::Quantile {
                        quantile: q,
                        value: 7.6238e-05 * (1.0 + q),
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }],
    ));
    let bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
    let metrics = ["/metrics", "/api/v1/query", "/api/v1/query_range"]
        .iter()
        .map(|h| proto::Metric {
            label: vec![label("handler", h)],
            histogram: Some(proto::Histogram {
                sample_count: 1000,
                sample_sum: 123.4,
                bucket: bounds
                    .iter()
                    .enumerate()
                    .map(|(i, &b)| proto::Bucket {
                        cumulative_count: 90 * (i as u64 + 1),
                        upper_bound: b,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    families.push(family(
        "http_request_duration_seconds",
        "Latency of HTTP requests.",
        proto::MetricType::Histogram,
        metrics,
    ));
    families
}

/// The page in the text format, by parsing the protobuf encoding and writing every entry.
fn to_text(proto_page: &[u8], openmetrics: bool) -> Vec<u8> {
    let mut w = TextWriter::new(Vec::new());
    let mut p = Parser::new(Format::Protobuf, proto_page);
    while let Some(e) = p.next().expect("the generated page parses") {
        match e {
            Entry::Help { name, help } => w.write_help(name, help).unwrap(),
            Entry::Type { name, kind } => w.write_type(name, kind).unwrap(),
            Entry::Series(s) => w.write_series(s.name, s.labels.iter(), s.value, s.timestamp).unwrap(),
            Entry::Unit { .. } | Entry::Comment(_) => {}
        }
    }
    let mut out = w.into_inner();
    if openmetrics {
        out.extend_from_slice(b"# EOF\n");
    }
    out
}

fn count(format: Format, body: &[u8]) -> u64 {
    let mut p = Parser::new(format, body);
    let mut n = 0;
    while let Some(e) = p.next().expect("the page parses") {
        n += u64::from(matches!(e, Entry::Series(_)));
    }
    n
}

fn scan(format: Format, body: &[u8]) -> f64 {
    let mut p = Parser::new(format, body);
    let mut acc = 0.0;
    while let Some(e) = p.next().unwrap() {
        if let Entry::Series(s) = e {
            acc += s.value + s.key.len() as f64;
        }
    }
    acc
}

/// What a scrape whose cache knows every series and metadata line does: skim each entry.
fn skim(format: Format, body: &[u8]) -> f64 {
    let mut p = Parser::new(format, body);
    let mut acc = 0.0;
    while let Some(s) = p.skim().unwrap() {
        match s {
            Skim::Sample { key, value, .. } => acc += value + key.len() as f64,
            Skim::Metadata(line) => acc += line.map_or(0, <[u8]>::len) as f64,
            Skim::Comment => {}
        }
    }
    acc
}

fn with_labels(format: Format, body: &[u8]) -> usize {
    let mut p = Parser::new(format, body);
    let mut acc = 0;
    while let Some(e) = p.next().unwrap() {
        if let Entry::Series(s) = e {
            acc += s.to_labels().len();
            acc += s.labels.iter().map(|l: Label<'_>| l.value.len()).sum::<usize>();
        }
    }
    acc
}

fn bench(c: &mut Criterion) {
    let mut proto_page = Vec::new();
    for f in node_page() {
        f.encode_length_delimited(&mut proto_page).unwrap();
    }
    let mut pages = vec![
        ("node/text", Format::Text, to_text(&proto_page, false)),
        ("node/openmetrics", Format::OpenMetrics, to_text(&proto_page, true)),
        ("node/protobuf", Format::Protobuf, proto_page.clone()),
    ];
    let corpus = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/compat/prometheus/textparse/alltypes.237mfs.prom.txt"
    );
    if let Ok(body) = std::fs::read(corpus) {
        pages.push(("alltypes237/text", Format::Text, body));
    }

    for (name, format, body) in &pages {
        let samples = count(*format, body);
        let mut g = c.benchmark_group("bytes");
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(format!("{name}/scan"), |b| b.iter(|| scan(*format, black_box(body))));
        g.bench_function(format!("{name}/skim"), |b| b.iter(|| skim(*format, black_box(body))));
        g.finish();
        let mut g = c.benchmark_group("samples");
        g.throughput(Throughput::Elements(samples));
        g.bench_function(format!("{name}/scan"), |b| b.iter(|| scan(*format, black_box(body))));
        g.bench_function(format!("{name}/skim"), |b| b.iter(|| skim(*format, black_box(body))));
        g.bench_function(format!("{name}/labels"), |b| {
            b.iter(|| with_labels(*format, black_box(body)))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
