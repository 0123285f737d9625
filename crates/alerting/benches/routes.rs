//! Route matching: finding the routes of an incoming alert in a routing tree of the size a
//! team-per-route setup has (a few levels, regex and negative matchers, `continue`).

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use watchfire_alerting::dispatch::Route;
use watchfire_config::alertmanager::Config;
use watchfire_model::Labels;

/// A tree with `teams` team routes, each with severity sub-routes, plus catch-alls.
fn config(teams: usize) -> String {
    let mut y = String::from("route:\n  receiver: default\n  group_by: [alertname]\n  routes:\n");
    y.push_str("    - matchers: ['alertname=\"Watchdog\"']\n      receiver: deadman\n");
    y.push_str("    - matchers: ['severity=~\"critical|page\"']\n      receiver: pager\n      continue: true\n");
    for t in 0..teams {
        write!(
            y,
            "    - matchers: ['team=\"team-{t}\"', 'env!~\"dev|test\"']\n      receiver: team-{t}\n      routes:\n        \
             - matchers: ['severity=\"critical\"']\n          receiver: team-{t}\n        \
             - matchers: ['service=~\"svc-{t}-.*\"']\n          receiver: team-{t}\n"
        )
        .unwrap();
    }
    y.push_str("receivers:\n  - name: default\n  - name: deadman\n  - name: pager\n");
    for t in 0..teams {
        writeln!(y, "  - name: team-{t}").unwrap();
    }
    y
}

fn bench_routes(c: &mut Criterion) {
    let cfg = Config::parse(&config(50), Path::new("bench.yml")).unwrap();
    let root = Route::tree(&cfg.route.value);
    let alerts: Vec<Labels> = (0..1000)
        .map(|i| {
            Labels::from_pairs([
                ("alertname", format!("Alert{}", i % 37)),
                ("env", ["prod", "staging", "dev"][i % 3].to_owned()),
                ("service", format!("svc-{}-api", i % 60)),
                ("severity", ["warning", "critical", "info"][i % 3].to_owned()),
                ("team", format!("team-{}", i % 60)),
            ])
        })
        .collect();
    let mut g = c.benchmark_group("routes");
    g.throughput(criterion::Throughput::Elements(alerts.len() as u64));
    g.bench_function("match 1000 alerts, 50 teams", |b| {
        b.iter(|| alerts.iter().map(|a| root.matches(black_box(a)).len()).sum::<usize>())
    });
    g.finish();
}

criterion_group!(benches, bench_routes);
criterion_main!(benches);
