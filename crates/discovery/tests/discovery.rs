//! Discovery end to end: the manager running file, HTTP and DNS providers against real files,
//! a local HTTP server and a local DNS server. Every wait is bounded by a deadline.

mod dns;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, SRV};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::sync::watch;
use watchfire_config::prometheus::Config;
use watchfire_discovery::dns::{ResolvConf, Resolver, ResolverConfig};
use watchfire_discovery::{Manager, Options, TargetSets};

use crate::dns::{Answer, Asked, FakeDns};

const DEADLINE: Duration = Duration::from_secs(10);

fn config(src: &str) -> Config {
    Config::parse(src, "prometheus.yml".as_ref()).unwrap()
}

fn options(dir: &std::path::Path) -> Options {
    Options {
        update_interval: Duration::from_millis(50),
        file_poll_interval: Duration::from_millis(50),
        config_dir: dir.to_path_buf(),
        ..Options::default()
    }
}

/// Waits until the published sets satisfy `ok`, or fails after the deadline.
async fn wait_for(rx: &mut watch::Receiver<Arc<TargetSets>>, what: &str, ok: impl Fn(&TargetSets) -> bool) {
    let end = Instant::now() + DEADLINE;
    loop {
        if ok(&rx.borrow_and_update()) {
            return;
        }
        let left = end.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out waiting for {what}; last: {:?}", rx.borrow());
        let _ = tokio::time::timeout(left, rx.changed()).await;
    }
}

fn addresses(sets: &TargetSets, job: &str) -> Vec<String> {
    let mut out: Vec<String> = sets
        .get(job)
        .into_iter()
        .flatten()
        .flat_map(|g| g.targets.iter().map(|t| t.get("__address__").unwrap_or("").to_owned()))
        .collect();
    out.sort();
    out
}

fn metric_value(registry: &prometheus::Registry, name: &str) -> f64 {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&registry.gather())
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sd_follows_edits_without_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.json");
    std::fs::write(&file, r#"[{"targets": ["a:1"], "labels": {"env": "prod"}}]"#).unwrap();
    let registry = prometheus::Registry::new();
    let manager = Manager::new(&registry, options(dir.path())).unwrap();
    let mut rx = manager.subscribe();
    // Relative paths are relative to the config directory; globs in the last element.
    manager.apply_config(&config(
        "scrape_configs:\n- job_name: files\n  file_sd_configs:\n  - files: ['*.json', 'sub/*.yml']\n- job_name: empty\n",
    ));
    wait_for(&mut rx, "first file", |s| addresses(s, "files") == ["a:1"]).await;
    {
        let sets = rx.borrow();
        let g = &sets["files"][0];
        assert_eq!(g.labels.get("__meta_filepath"), Some(file.to_str().unwrap()));
        assert_eq!(g.labels.get("env"), Some("prod"));
        assert_eq!(g.source, format!("{}:0", file.display()));
        // A job without discovery is present with no groups.
        assert_eq!(sets.get("empty"), Some(&Vec::new()));
    }

    // Editing adds and removes targets.
    std::fs::write(&file, r#"[{"targets": ["b:2", "c:3"]}]"#).unwrap();
    wait_for(&mut rx, "edited file", |s| addresses(s, "files") == ["b:2", "c:3"]).await;

    // A new file matching a glob adds its targets (YAML this time).
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(
        dir.path().join("sub/more.yml"),
        "- targets: ['d:4']\n  labels: {x: y}\n",
    )
    .unwrap();
    wait_for(&mut rx, "new yaml file", |s| {
        addresses(s, "files") == ["b:2", "c:3", "d:4"]
    })
    .await;

    // A broken file keeps its last good groups and counts a read error.
    std::fs::write(&file, "[{\"targets\": [").unwrap();
    let end = Instant::now() + DEADLINE;
    while metric_value(&registry, "prometheus_sd_file_read_errors_total") < 1.0 {
        assert!(Instant::now() < end, "read error never counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(addresses(&rx.borrow(), "files"), ["b:2", "c:3", "d:4"]);

    // Deleting a file removes its targets.
    std::fs::remove_file(dir.path().join("sub/more.yml")).unwrap();
    wait_for(&mut rx, "deleted file", |s| addresses(s, "files") == ["b:2", "c:3"]).await;
    assert_eq!(
        metric_value(&registry, "prometheus_sd_discovered_targets{config=\"files\""),
        2.0
    );

    // A reload without the job removes it; other jobs stay.
    manager.apply_config(&config("scrape_configs:\n- job_name: empty\n"));
    wait_for(&mut rx, "job removed", |s| {
        !s.contains_key("files") && s.contains_key("empty")
    })
    .await;
    manager.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sd_fetches_with_auth_and_keeps_groups_on_failure() {
    #[derive(Clone)]
    struct Served {
        status: u16,
        body: String,
        seen_auth: Vec<String>,
    }
    let served = Arc::new(Mutex::new(Served {
        status: 200,
        body: r#"[{"targets": ["h:1"], "labels": {"k": "v"}}]"#.into(),
        seen_auth: Vec::new(),
    }));
    let state = served.clone();
    let app = axum::Router::new().route(
        "/sd",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let state = state.clone();
            async move {
                let mut s = state.lock().unwrap();
                if let Some(a) = headers.get("authorization") {
                    s.seen_auth.push(a.to_str().unwrap().to_owned());
                }
                let status = axum::http::StatusCode::from_u16(s.status).unwrap();
                (status, [("content-type", "application/json")], s.body.clone())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "s3cret\n").unwrap();
    let registry = prometheus::Registry::new();
    let manager = Manager::new(&registry, options(dir.path())).unwrap();
    let mut rx = manager.subscribe();
    manager.apply_config(&config(&format!(
        "scrape_configs:\n- job_name: web\n  static_configs: [{{targets: ['s:9']}}]\n  http_sd_configs:\n  - url: http://{addr}/sd\n    refresh_interval: 100ms\n    authorization: {{credentials_file: token}}\n"
    )));
    wait_for(&mut rx, "http groups", |s| addresses(s, "web") == ["h:1", "s:9"]).await;
    {
        let sets = rx.borrow();
        let g = sets["web"].iter().find(|g| g.source.ends_with("/sd:0")).unwrap();
        assert_eq!(g.labels.get("__meta_url"), Some(format!("http://{addr}/sd").as_str()));
        assert_eq!(g.labels.get("k"), Some("v"));
    }
    assert_eq!(served.lock().unwrap().seen_auth[0], "Bearer s3cret");

    // Failures keep the last groups and are counted.
    served.lock().unwrap().status = 500;
    let end = Instant::now() + DEADLINE;
    while metric_value(&registry, "prometheus_sd_http_failures_total") < 2.0 {
        assert!(Instant::now() < end, "failures never counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(addresses(&rx.borrow(), "web"), ["h:1", "s:9"]);
    // A wrong content type is a failure too; then recovery replaces the groups.
    {
        let mut s = served.lock().unwrap();
        s.status = 200;
        s.body = r#"[{"targets": ["h:2"]}, {"targets": ["h:3"]}]"#.into();
    }
    wait_for(&mut rx, "recovered groups", |s| {
        addresses(s, "web") == ["h:2", "h:3", "s:9"]
    })
    .await;
    manager.stop();
    server.abort();
}

fn dns_name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn srv(port: u16, target: &str) -> RData {
    RData::SRV(SRV::new(10, 5, port, dns_name(target)))
}

/// A resolver asking `servers` (loopback addresses) on `port`, with a short timeout.
fn resolver(servers: &[&str], port: u16, search: &[&str], ndots: usize) -> Resolver {
    Resolver::new(
        ResolverConfig::Fixed(ResolvConf {
            servers: servers.iter().map(|s| (*s).to_owned()).collect(),
            search: search.iter().map(|s| (*s).to_owned()).collect(),
            port,
            ndots,
        }),
        Duration::from_millis(300),
    )
}

/// Every target's label set of `job`, printed, sorted.
fn target_labels(sets: &TargetSets, job: &str) -> Vec<String> {
    let mut out: Vec<String> = sets
        .get(job)
        .into_iter()
        .flatten()
        .flat_map(|g| g.targets.iter().map(ToString::to_string))
        .collect();
    out.sort();
    out
}

/// Waits until `name` reaches at least `at_least`, or fails after the deadline.
async fn wait_for_metric(registry: &prometheus::Registry, name: &str, at_least: f64) {
    let end = Instant::now() + DEADLINE;
    loop {
        // A metric not exported yet reads NaN and keeps waiting.
        if metric_value(registry, name) >= at_least {
            return;
        }
        assert!(Instant::now() < end, "{name} never reached {at_least}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_sd_gives_upstream_labels_for_every_record_type_and_follows_changes() {
    let server = FakeDns::start("127.0.0.1", 0).await;
    server.set(
        "_web._tcp.example.test",
        RecordType::SRV,
        Answer::Records(vec![srv(8080, "web1.example.test."), srv(8081, "web2.example.test.")]),
    );
    server.set(
        "a.example.test",
        RecordType::A,
        Answer::Records(vec![
            RData::CNAME(CNAME(dns_name("alias.example.test."))),
            RData::A(A::new(192, 0, 2, 1)),
            RData::A(A::new(192, 0, 2, 2)),
        ]),
    );
    server.set(
        "aaaa.example.test",
        RecordType::AAAA,
        Answer::Records(vec![RData::AAAA(AAAA("2001:db8::1".parse().unwrap()))]),
    );
    server.set(
        "example.test",
        RecordType::MX,
        Answer::Records(vec![RData::MX(MX::new(10, dns_name("smtp.example.test.")))]),
    );
    server.set(
        "example.test",
        RecordType::NS,
        Answer::Records(vec![RData::NS(NS(dns_name("ns1.example.test.")))]),
    );
    let dir = tempfile::tempdir().unwrap();
    let registry = prometheus::Registry::new();
    let manager = Manager::new(
        &registry,
        Options {
            dns_resolver: resolver(&["127.0.0.1"], server.addr.port(), &[], 1),
            ..options(dir.path())
        },
    )
    .unwrap();
    let mut rx = manager.subscribe();
    manager.apply_config(&config(
        "scrape_configs:
- job_name: srv
  dns_sd_configs:
  - names: ['_web._tcp.example.test']
    refresh_interval: 100ms
- job_name: a
  dns_sd_configs:
  - {names: [a.example.test.], type: A, port: 9100, refresh_interval: 100ms}
- job_name: aaaa
  dns_sd_configs:
  - {names: [aaaa.example.test], type: AAAA, port: 9100, refresh_interval: 100ms}
- job_name: mx
  dns_sd_configs:
  - {names: [example.test], type: MX, port: 25, refresh_interval: 100ms}
- job_name: ns
  dns_sd_configs:
  - {names: [example.test], type: ns, port: 53, refresh_interval: 100ms}
",
    ));
    wait_for(&mut rx, "every job's targets", |s| {
        ["srv", "a", "aaaa", "mx", "ns"]
            .iter()
            .all(|j| !target_labels(s, j).is_empty())
    })
    .await;
    {
        let sets = rx.borrow();
        // One group per name, named by the name as written, with no group labels.
        assert_eq!(sets["srv"].len(), 1);
        assert_eq!(sets["srv"][0].source, "_web._tcp.example.test");
        assert!(sets["srv"][0].labels.is_empty());
        assert_eq!(sets["a"][0].source, "a.example.test.");
        // Upstream's empty-valued record labels mean "no label" and are absent.
        assert_eq!(
            target_labels(&sets, "srv"),
            [
                r#"{__address__="web1.example.test:8080", __meta_dns_name="_web._tcp.example.test", __meta_dns_srv_record_port="8080", __meta_dns_srv_record_target="web1.example.test."}"#,
                r#"{__address__="web2.example.test:8081", __meta_dns_name="_web._tcp.example.test", __meta_dns_srv_record_port="8081", __meta_dns_srv_record_target="web2.example.test."}"#,
            ]
        );
        assert_eq!(
            target_labels(&sets, "a"),
            [
                r#"{__address__="192.0.2.1:9100", __meta_dns_name="a.example.test."}"#,
                r#"{__address__="192.0.2.2:9100", __meta_dns_name="a.example.test."}"#,
            ]
        );
        assert_eq!(
            target_labels(&sets, "aaaa"),
            [r#"{__address__="[2001:db8::1]:9100", __meta_dns_name="aaaa.example.test"}"#]
        );
        assert_eq!(
            target_labels(&sets, "mx"),
            [
                r#"{__address__="smtp.example.test:25", __meta_dns_mx_record_target="smtp.example.test.", __meta_dns_name="example.test"}"#
            ]
        );
        assert_eq!(
            target_labels(&sets, "ns"),
            [
                r#"{__address__="ns1.example.test:53", __meta_dns_name="example.test", __meta_dns_ns_record_target="ns1.example.test."}"#
            ]
        );
    }
    // Every query asked for the configured type, over UDP with EDNS0.
    let asked = server.asked();
    assert!(asked.iter().all(|a| !a.tcp && a.edns), "{asked:?}");
    for t in [
        RecordType::SRV,
        RecordType::A,
        RecordType::AAAA,
        RecordType::MX,
        RecordType::NS,
    ] {
        assert!(asked.iter().any(|a| a.record_type == t), "no {t} query in {asked:?}");
    }

    // A changed answer is picked up on a later refresh: one target added, one removed.
    server.set(
        "_web._tcp.example.test",
        RecordType::SRV,
        Answer::Records(vec![srv(8081, "web2.example.test."), srv(9000, "web3.example.test.")]),
    );
    wait_for(&mut rx, "changed SRV answer", |s| {
        addresses(s, "srv") == ["web2.example.test:8081", "web3.example.test:9000"]
    })
    .await;
    assert_eq!(metric_value(&registry, "prometheus_sd_failed_configs"), 0.0);
    // Five configs looked up once each, and the SRV one again for the change just seen (the
    // other four may or may not have refreshed yet: counting more would race their timers).
    assert!(metric_value(&registry, "prometheus_sd_dns_lookups_total") >= 6.0);
    assert_eq!(metric_value(&registry, "prometheus_sd_dns_lookup_failures_total"), 0.0);
    manager.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_sd_failures_are_counted_and_keep_the_last_groups() {
    let server = FakeDns::start("127.0.0.1", 0).await;
    server.set(
        "a.example.test",
        RecordType::A,
        Answer::Records(vec![RData::A(A::new(192, 0, 2, 1))]),
    );
    server.set(
        "b.example.test",
        RecordType::A,
        Answer::Records(vec![RData::A(A::new(192, 0, 2, 2))]),
    );
    let dir = tempfile::tempdir().unwrap();
    let registry = prometheus::Registry::new();
    let manager = Manager::new(
        &registry,
        Options {
            dns_resolver: resolver(&["127.0.0.1"], server.addr.port(), &[], 1),
            ..options(dir.path())
        },
    )
    .unwrap();
    let mut rx = manager.subscribe();
    manager.apply_config(&config(
        "scrape_configs:
- job_name: a
  dns_sd_configs:
  - {names: [a.example.test, b.example.test], type: A, port: 80, refresh_interval: 50ms}
",
    ));
    wait_for(&mut rx, "both names", |s| {
        addresses(s, "a") == ["192.0.2.1:80", "192.0.2.2:80"]
    })
    .await;

    // SERVFAIL from every server: a failure; the name keeps its group, the other name updates.
    server.set("a.example.test", RecordType::A, Answer::ServFail);
    server.set(
        "b.example.test",
        RecordType::A,
        Answer::Records(vec![RData::A(A::new(192, 0, 2, 3))]),
    );
    wait_for(&mut rx, "b updated", |s| {
        addresses(s, "a") == ["192.0.2.1:80", "192.0.2.3:80"]
    })
    .await;
    wait_for_metric(&registry, "prometheus_sd_dns_lookup_failures_total", 2.0).await;
    assert_eq!(addresses(&rx.borrow(), "a"), ["192.0.2.1:80", "192.0.2.3:80"]);

    // A server that never answers: a timeout is a failure too, and nothing breaks.
    server.set("a.example.test", RecordType::A, Answer::Silence);
    let failed = metric_value(&registry, "prometheus_sd_dns_lookup_failures_total");
    wait_for_metric(&registry, "prometheus_sd_dns_lookup_failures_total", failed + 2.0).await;
    assert_eq!(addresses(&rx.borrow(), "a"), ["192.0.2.1:80", "192.0.2.3:80"]);

    // NXDOMAIN is an answer, not a failure: the name's group empties.
    server.set("a.example.test", RecordType::A, Answer::NxDomain);
    wait_for(&mut rx, "NXDOMAIN empties the group", |s| {
        addresses(s, "a") == ["192.0.2.3:80"]
    })
    .await;
    {
        let sets = rx.borrow();
        let a = sets["a"].iter().find(|g| g.source == "a.example.test").unwrap();
        assert!(a.targets.is_empty());
    }
    let failed = metric_value(&registry, "prometheus_sd_dns_lookup_failures_total");
    let lookups = metric_value(&registry, "prometheus_sd_dns_lookups_total");
    wait_for_metric(&registry, "prometheus_sd_dns_lookups_total", lookups + 4.0).await;
    assert_eq!(
        metric_value(&registry, "prometheus_sd_dns_lookup_failures_total"),
        failed
    );
    manager.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_lookups_follow_the_search_path_servers_and_tcp_fallback() {
    let first = FakeDns::start("127.0.0.1", 0).await;
    let port = first.addr.port();
    let second = FakeDns::start("127.0.0.2", port).await;
    let a = |last: u8| Answer::Records(vec![RData::A(A::new(192, 0, 2, last))]);

    // Search path: a one-label name tries the search domains first; NXDOMAIN moves on and the
    // first NOERROR wins.
    first.set("web.two.test", RecordType::A, a(2));
    first.set("web.three.test", RecordType::A, a(3));
    let r = resolver(&["127.0.0.1"], port, &["one.test", "two.test", "three.test"], 1);
    let answers = r.lookup("web", RecordType::A).await.unwrap();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].data, RData::A(A::new(192, 0, 2, 2)));
    let names: Vec<String> = first.asked().into_iter().map(|q| q.name).collect();
    assert_eq!(names, ["web.one.test.", "web.two.test."]);
    // Every expansion NXDOMAIN: no records, and no error.
    assert_eq!(r.lookup("nothing", RecordType::A).await.unwrap(), []);
    // NOERROR without records ends the search too.
    first.set("empty.one.test", RecordType::A, Answer::Records(Vec::new()));
    first.set("empty.two.test", RecordType::A, a(9));
    assert_eq!(r.lookup("empty", RecordType::A).await.unwrap(), []);
    // One expansion without a viable answer and none with NOERROR: an error.
    first.set("bad.two.test", RecordType::A, Answer::ServFail);
    let err = r.lookup("bad", RecordType::A).await.unwrap_err();
    assert!(err.contains("could not resolve \"bad\""), "{err}");

    // Servers in turn: a SERVFAIL, a refused port or a silent server moves on to the next.
    second.set("x.test.", RecordType::A, a(7));
    first.set("x.test.", RecordType::A, Answer::ServFail);
    let r = resolver(&["127.0.0.3", "127.0.0.1", "127.0.0.2"], port, &[], 1);
    let answers = r.lookup("x.test.", RecordType::A).await.unwrap();
    assert_eq!(answers[0].data, RData::A(A::new(192, 0, 2, 7)));
    first.set("x.test.", RecordType::A, Answer::Silence);
    let r = resolver(&["127.0.0.1", "127.0.0.2"], port, &[], 1);
    assert_eq!(r.lookup("x.test.", RecordType::A).await.unwrap().len(), 1);
    second.set("x.test.", RecordType::A, Answer::Silence);
    assert!(r.lookup("x.test.", RecordType::A).await.is_err());

    // A truncated UDP answer is asked again over TCP, without EDNS0.
    first.set(
        "_big._tcp.test.",
        RecordType::SRV,
        Answer::Truncated(vec![srv(1, "t1.test."), srv(2, "t2.test.")]),
    );
    let r = resolver(&["127.0.0.1"], port, &[], 1);
    let answers = r.lookup("_big._tcp.test.", RecordType::SRV).await.unwrap();
    assert_eq!(answers.len(), 2);
    let asked: Vec<Asked> = first
        .asked()
        .into_iter()
        .filter(|q| q.name == "_big._tcp.test.")
        .collect();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(!asked[0].tcp && asked[0].edns);
    assert!(asked[1].tcp && !asked[1].edns);

    // Without a readable resolv.conf every lookup fails.
    let r = Resolver::new(
        ResolverConfig::File("/nonexistent/resolv.conf".into()),
        Duration::from_millis(100),
    );
    let err = r.lookup("x.test.", RecordType::A).await.unwrap_err();
    assert!(err.starts_with("could not load resolv.conf"), "{err}");
}
