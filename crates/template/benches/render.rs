//! Rendering a typical alert annotation, parsed once and per evaluation (Prometheus re-parses
//! every annotation on every evaluation; a cache of parsed templates avoids that).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use watchfire_model::Labels;
use watchfire_template::prometheus::{ALERT_TEMPLATE_DEFS, AlertData, Context, expand_alert, functions};
use watchfire_template::{MissingKey, Template, Value};

const ANNOTATION: &str = "{{ $labels.instance }} of job {{ $labels.job }} has been above \
    {{ $value | humanizePercentage }} CPU for more than 5 minutes \
    ({{ printf \"%.2f\" $value }}; started {{ humanizeDuration 3661 }} ago). \
    {{ if eq $labels.severity \"critical\" }}Page the on-call.{{ else }}Look tomorrow.{{ end }} \
    Dashboard: {{ $externalURL }}/d/node?var-instance={{ $labels.instance | urlquery }}";

fn bench_render(c: &mut Criterion) {
    let labels = Labels::from_pairs([
        ("alertname", "HighCPU"),
        ("instance", "node-17.example.com:9100"),
        ("job", "node"),
        ("severity", "critical"),
    ]);
    let external = Labels::from_pairs([("cluster", "eu1")]);
    let data = AlertData::new(&labels, &external, "https://prom.example.com", 0.9312);
    let ctx = Context {
        query: Some(Arc::new(|_q: &str| Ok(Vec::new()))),
        timestamp_ms: 1_700_000_000_000,
        external_url: "https://prom.example.com".into(),
    };

    c.bench_function("annotation/parse_and_execute", |b| {
        b.iter(|| expand_alert("HighCPU", black_box(ANNOTATION), &data, &ctx).unwrap())
    });

    let parsed = Template::new("__alert_HighCPU")
        .funcs(functions(&ctx))
        .missing_key(MissingKey::Zero)
        .parse(&format!("{ALERT_TEMPLATE_DEFS}{ANNOTATION}"))
        .unwrap();
    let data = Value::object(data);
    c.bench_function("annotation/execute_parsed", |b| {
        b.iter(|| parsed.execute(black_box(&data)).unwrap())
    });
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
