//! Scraping end to end: the scrape manager against local HTTP servers (and the real
//! node_exporter), writing into a real in-memory TSDB head. Intervals are short and real;
//! every wait is bounded by a deadline.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use watchfire_config::prometheus::Config;
use watchfire_discovery::{TargetGroup, TargetSets};
use watchfire_model::{Labels, MatchType, Matcher, Sample, is_stale_nan};
use watchfire_scrape::{Manager, Options, TargetHealth};
use watchfire_storage::Querier;
use watchfire_textparse::{Entry, Format};
use watchfire_tsdb::{Head, HeadOptions, MemoryStorage};

const DEADLINE: Duration = Duration::from_secs(15);
const SYNTHETIC: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// What a test server answers: status, content type, body and an optional delay.
#[derive(Clone, Debug)]
struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
    delay: Duration,
}

impl Reply {
    fn text(body: &str) -> Self {
        Reply {
            status: 200,
            content_type: "text/plain; version=0.0.4".into(),
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }
}

/// A local exporter whose reply can be changed while it runs.
struct Exporter {
    addr: String,
    reply: Arc<Mutex<Reply>>,
    requests: Arc<Mutex<Vec<axum::http::HeaderMap>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Exporter {
    async fn start(reply: Reply) -> Self {
        let reply = Arc::new(Mutex::new(reply));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (r, q) = (reply.clone(), requests.clone());
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move |headers: axum::http::HeaderMap| {
                let (r, q) = (r.clone(), q.clone());
                async move {
                    q.lock().unwrap().push(headers);
                    let reply = r.lock().unwrap().clone();
                    if !reply.delay.is_zero() {
                        tokio::time::sleep(reply.delay).await;
                    }
                    let status = axum::http::StatusCode::from_u16(reply.status).unwrap();
                    (status, [("content-type", reply.content_type)], reply.body)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Exporter {
            addr,
            reply,
            requests,
            task,
        }
    }

    fn set(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Setup {
    head: Arc<Head>,
    manager: Manager,
    registry: prometheus::Registry,
}

fn setup() -> Setup {
    let head = Head::in_memory(HeadOptions::default());
    let registry = prometheus::Registry::new();
    let opts = Options {
        skip_offset: true,
        ..Options::default()
    };
    let manager = Manager::new(Arc::new(MemoryStorage(head.clone())), &registry, opts).unwrap();
    Setup {
        head,
        manager,
        registry,
    }
}

fn config(src: &str) -> Config {
    Config::parse(src, "prometheus.yml".as_ref()).unwrap()
}

fn groups(jobs: &[(&str, &[&str])]) -> Arc<TargetSets> {
    let mut sets = TargetSets::new();
    for (job, targets) in jobs {
        let targets: Vec<String> = targets.iter().map(|t| (*t).to_owned()).collect();
        sets.insert(
            (*job).to_owned(),
            vec![TargetGroup::new("0", &targets, Labels::empty())],
        );
    }
    Arc::new(sets)
}

/// Every series matching `matchers` with its samples.
fn select(head: &Arc<Head>, matchers: &[(&str, &str)]) -> BTreeMap<Labels, Vec<Sample>> {
    let q = head.querier(i64::MIN, i64::MAX);
    let ms: Vec<Matcher> = matchers
        .iter()
        .map(|(n, v)| Matcher::new(MatchType::Equal, *n, *v).unwrap())
        .collect();
    let mut out = BTreeMap::new();
    for s in q.select(true, None, &ms) {
        let s = s.unwrap();
        let mut it = s.iterator();
        let mut samples = Vec::new();
        while it.next() {
            samples.push(it.at());
        }
        out.insert(s.labels().clone(), samples);
    }
    out
}

fn up_samples(head: &Arc<Head>, instance: &str) -> Vec<Sample> {
    select(head, &[("__name__", "up"), ("instance", instance)])
        .into_values()
        .next()
        .unwrap_or_default()
}

/// Polls `cond` until it holds or the deadline passes.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn names(series: &BTreeMap<Labels, Vec<Sample>>) -> BTreeSet<String> {
    series
        .keys()
        .map(|l| l.metric_name().unwrap_or("").to_owned())
        .collect()
}

/// The label sets textparse sees in `body`, plus the target labels.
fn expected_series(body: &[u8], content_type: &str, target: &[(&str, &str)]) -> BTreeSet<Labels> {
    let mut parser = watchfire_textparse::parser_for(content_type, body).unwrap();
    let mut out = BTreeSet::new();
    while let Some(e) = parser.next().unwrap() {
        if let Entry::Series(s) = e {
            let mut b = s.to_labels().builder();
            for (n, v) in target {
                b.set(n, v);
            }
            out.insert(b.build());
        }
    }
    out
}

const BODY: &str = "# HELP requests_total Requests.\n# TYPE requests_total counter\nrequests_total{code=\"200\"} 10\nrequests_total{code=\"500\"} 2\n# TYPE temp gauge\n# UNIT temp celsius\ntemp 21.5\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_series_equal_the_exposition_plus_target_labels() {
    let exp = Exporter::start(Reply::text(BODY)).await;
    let s = setup();
    s.manager
        .apply_config(&config(
            "scrape_configs:\n- job_name: app\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\n  static_configs: [{targets: []}]\n",
        ))
        .await
        .unwrap();
    s.manager.sync(&groups(&[("app", &[&exp.addr])])).await;
    eventually("two scrapes", || up_samples(&s.head, &exp.addr).len() >= 2).await;

    let stored = select(&s.head, &[("job", "app")]);
    let scraped: BTreeSet<Labels> = stored
        .keys()
        .filter(|l| !SYNTHETIC.contains(&l.metric_name().unwrap()))
        .cloned()
        .collect();
    let want = expected_series(
        BODY.as_bytes(),
        "text/plain; version=0.0.4",
        &[("job", "app"), ("instance", &exp.addr)],
    );
    assert_eq!(scraped, want);
    for name in SYNTHETIC {
        assert!(names(&stored).contains(name), "{name} missing");
    }
    let up = up_samples(&s.head, &exp.addr);
    assert!(up.iter().all(|x| x.v == 1.0), "{up:?}");
    // Samples of one scrape share the scrape's timestamp.
    let t0 = up[0].t;
    let temp = &stored[&Labels::from_pairs([("__name__", "temp"), ("job", "app"), ("instance", exp.addr.as_str())])];
    assert_eq!(temp[0], Sample::new(t0, 21.5));
    let samples_scraped = select(&s.head, &[("__name__", "scrape_samples_scraped")]);
    assert_eq!(samples_scraped.values().next().unwrap()[0].v, 3.0);
    let added = select(&s.head, &[("__name__", "scrape_series_added")]);
    let added = added.values().next().unwrap();
    assert_eq!((added[0].v, added[1].v), (3.0, 0.0));

    // Request headers as Prometheus 3 sends them.
    let h = exp.requests.lock().unwrap()[0].clone();
    assert_eq!(
        h["accept"],
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    );
    assert_eq!(h["accept-encoding"], "gzip");
    assert_eq!(h["x-prometheus-scrape-timeout-seconds"], "0.15");

    // Target state and metadata for the API.
    let active = s.manager.targets_active().await;
    let t = &active["app"][0];
    assert_eq!(t.health(), TargetHealth::Up);
    assert_eq!(t.last_error(), None);
    assert_eq!(t.url(), format!("http://{}/metrics", exp.addr));
    assert_eq!(t.scrape_pool(), "app");
    assert_eq!(
        t.labels().to_string(),
        format!("{{instance=\"{}\", job=\"app\"}}", exp.addr)
    );
    assert_eq!(t.discovered_labels().get("__scrape_interval__"), Some("200ms"));
    let meta = t.metadata("requests_total").unwrap();
    assert_eq!(
        (meta.metric_type.as_str(), meta.help.as_str()),
        ("counter", "Requests.")
    );
    assert_eq!(t.metadata("temp").unwrap().metric_type, "gauge");
    s.manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_follows_the_page_and_outlives_unchanged_scrapes() {
    // Scrapes whose metadata lines are those of the scrape before only hash them; a changed
    // line, an added or removed family must still reach the metadata API.
    let page_a = "# HELP x First help.\n# TYPE x counter\nx 1\n# HELP y Why.\n# TYPE y gauge\ny{a=\"1\"} 2\n";
    let exp = Exporter::start(Reply::text(page_a)).await;
    let s = setup();
    s.manager
        .apply_config(&config(
            "scrape_configs:\n- job_name: md\n  scrape_interval: 50ms\n  scrape_timeout: 40ms\n",
        ))
        .await
        .unwrap();
    s.manager.sync(&groups(&[("md", &[&exp.addr])])).await;
    let t = s.manager.targets_active().await["md"][0].clone();
    let meta = |name: &str| t.metadata(name).map(|m| (m.metric_type, m.help));
    let scrapes = || up_samples(&s.head, &exp.addr).len();
    eventually("first scrape", || scrapes() >= 1).await;
    assert_eq!(meta("x"), Some(("counter".into(), "First help.".into())));
    assert_eq!(meta("y"), Some(("gauge".into(), "Why.".into())));

    // The same page for more than ten scrapes: nothing ages out.
    let n = scrapes();
    eventually("twelve more scrapes", || scrapes() >= n + 12).await;
    assert_eq!(meta("x"), Some(("counter".into(), "First help.".into())));
    assert_eq!(meta("y"), Some(("gauge".into(), "Why.".into())));

    // One changed help line, one changed type, a new family; y no longer exposed.
    exp.set(Reply::text(
        "# HELP x Second help.\n# TYPE x gauge\nx 1\n# HELP z Zed.\n# TYPE z untyped\nz 3\n",
    ));
    eventually("changed metadata", || meta("x").is_some_and(|m| m.1 == "Second help.")).await;
    assert_eq!(meta("x"), Some(("gauge".into(), "Second help.".into())));
    assert_eq!(meta("z"), Some(("unknown".into(), "Zed.".into())));
    // y is kept for ten scrapes after its last, then dropped; x and z stay.
    let n = scrapes();
    eventually("y forgotten", || meta("y").is_none()).await;
    assert!(scrapes() >= n + 8, "y dropped after {} scrapes", scrapes() - n);
    assert!(meta("x").is_some() && meta("z").is_some());
    s.manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staleness_markers_for_vanished_series_failed_scrapes_and_removed_targets() {
    let exp = Exporter::start(Reply::text("a 1\nb 2\n")).await;
    let s = setup();
    s.manager
        .apply_config(&config(
            "scrape_configs:\n- job_name: st\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\n",
        ))
        .await
        .unwrap();
    s.manager.sync(&groups(&[("st", &[&exp.addr])])).await;
    let series = |name: &str| {
        select(&s.head, &[("__name__", name), ("job", "st")])
            .into_values()
            .next()
            .unwrap_or_default()
    };
    eventually("first scrape", || !series("b").is_empty()).await;

    // b disappears: its marker carries the timestamp of the scrape that missed it.
    exp.set(Reply::text("a 1\n"));
    eventually("b stale", || series("b").last().is_some_and(|x| x.is_stale())).await;
    let marker = *series("b").last().unwrap();
    let up = up_samples(&s.head, &exp.addr);
    assert!(
        up.iter().any(|x| x.t == marker.t && x.v == 1.0),
        "{marker:?} not at a scrape: {up:?}"
    );
    assert!(!series("a").last().unwrap().is_stale());

    // A failed scrape marks everything stale at its own timestamp; up=0 then.
    exp.set(Reply {
        status: 500,
        ..Reply::text("")
    });
    eventually("a stale", || series("a").last().is_some_and(|x| x.is_stale())).await;
    let marker = *series("a").last().unwrap();
    let up = up_samples(&s.head, &exp.addr);
    assert!(up.iter().any(|x| x.t == marker.t && x.v == 0.0), "{marker:?} {up:?}");
    let t = s.manager.targets_active().await["st"][0].clone();
    assert_eq!(t.health(), TargetHealth::Down);
    assert_eq!(
        t.last_error().as_deref(),
        Some("server returned HTTP status 500 Internal Server Error")
    );

    // Recovery, then the target goes away: two intervals later everything is stale,
    // the synthetic series too, at the time the next scrape would have been.
    exp.set(Reply::text("a 5\n"));
    eventually("recovered", || series("a").last().is_some_and(|x| x.v == 5.0)).await;
    let last_up = *up_samples(&s.head, &exp.addr).last().unwrap();
    s.manager.sync(&groups(&[("st", &[])])).await;
    eventually("end-of-run markers", || {
        up_samples(&s.head, &exp.addr).last().is_some_and(|x| is_stale_nan(x.v))
    })
    .await;
    let up_marker = *up_samples(&s.head, &exp.addr).last().unwrap();
    let a_marker = *series("a").last().unwrap();
    assert!(a_marker.is_stale());
    assert_eq!(a_marker.t, up_marker.t);
    let gap = up_marker.t - last_up.t;
    assert!((150..=450).contains(&gap), "stale marker {gap}ms after the last scrape");
    for name in SYNTHETIC {
        assert!(series(name).last().unwrap().is_stale(), "{name}");
    }
    s.manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_exporters_fail_alone_with_clear_errors() {
    let good = Exporter::start(Reply::text("ok_metric 1\n")).await;
    let garbage = Exporter::start(Reply::text("ok_metric 1\n")).await;
    let huge = Exporter::start(Reply::text("ok_metric 1\n")).await;
    let many = Exporter::start(Reply::text("ok_metric 1\n")).await;
    let slow = Exporter::start(Reply::text("ok_metric 1\n")).await;
    let untyped = Exporter::start(Reply::text("ok_metric 1\n")).await;
    let bad_help = Exporter::start(Reply::text("# HELP ok_metric Fine.\nok_metric 1\n")).await;
    let s = setup();
    s.manager
        .apply_config(&config(
            "scrape_configs:\n\
             - job_name: bad\n  scrape_interval: 300ms\n  scrape_timeout: 200ms\n  sample_limit: 5\n  body_size_limit: 2KB\n",
        ))
        .await
        .unwrap();
    let all = [&good, &garbage, &huge, &many, &slow, &untyped, &bad_help];
    let addrs: Vec<&str> = all.iter().map(|e| e.addr.as_str()).collect();
    s.manager.sync(&groups(&[("bad", &addrs)])).await;
    // Every target first scrapes fine, so failures must also write staleness markers.
    eventually("first scrapes", || {
        all.iter().all(|e| !up_samples(&s.head, &e.addr).is_empty())
    })
    .await;

    garbage.set(Reply::text("ok_metric 1\nthis is { not metrics\n"));
    huge.set(Reply::text(
        &"x_metric{l=\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"} 1\n".repeat(100),
    ));
    many.set(Reply::text(&(0..10).map(|i| format!("m{i} 1\n")).collect::<String>()));
    slow.set(Reply {
        delay: Duration::from_millis(600),
        ..Reply::text("ok_metric 1\n")
    });
    untyped.set(Reply {
        content_type: String::new(),
        ..Reply::text("ok_metric 1\n")
    });
    // Metadata lines are skimmed, and parsed when they differ from the last scrape's: a
    // broken one still fails the scrape.
    bad_help.set(Reply::text("# HELP 1bad Not a name.\nok_metric 1\n"));
    let bad = [&garbage, &huge, &many, &slow, &untyped, &bad_help];
    eventually("bad targets down", || {
        bad.iter()
            .all(|e| up_samples(&s.head, &e.addr).last().is_some_and(|x| x.v == 0.0))
    })
    .await;

    let active = s.manager.targets_active().await;
    let err_of = |addr: &str| {
        active["bad"]
            .iter()
            .find(|t| t.labels().get("instance") == Some(addr))
            .unwrap()
            .last_error()
            .unwrap_or_default()
    };
    assert!(
        err_of(&garbage.addr).starts_with("line 2, column"),
        "{}",
        err_of(&garbage.addr)
    );
    assert_eq!(err_of(&huge.addr), "body size limit exceeded");
    assert!(
        err_of(&bad_help.addr).starts_with("line 1, column") && err_of(&bad_help.addr).contains("HELP"),
        "{}",
        err_of(&bad_help.addr)
    );
    assert_eq!(err_of(&many.addr), "sample limit exceeded");
    assert_eq!(
        err_of(&slow.addr),
        format!("Get \"http://{}/metrics\": context deadline exceeded", slow.addr)
    );
    assert_eq!(
        err_of(&untyped.addr),
        "non-compliant scrape target sending blank Content-Type"
    );

    for e in bad {
        let stored = select(&s.head, &[("instance", &e.addr)]);
        for (labels, samples) in &stored {
            let name = labels.metric_name().unwrap();
            assert!(
                SYNTHETIC.contains(&name) || name == "ok_metric",
                "{}: stored {labels} from a failed scrape",
                e.addr
            );
            if name == "ok_metric" {
                // The series of the good first scrapes ends with a staleness marker.
                assert!(samples.last().unwrap().is_stale(), "{labels}: {samples:?}");
            }
        }
    }
    // The sample limit counts the scraped samples even though nothing was stored.
    let scraped = select(
        &s.head,
        &[("__name__", "scrape_samples_scraped"), ("instance", &many.addr)],
    );
    assert_eq!(scraped.values().next().unwrap().last().unwrap().v, 10.0);
    // The good target never noticed.
    let up = up_samples(&s.head, &good.addr);
    assert!(up.len() >= 2 && up.iter().all(|x| x.v == 1.0), "{up:?}");
    let ok = select(&s.head, &[("__name__", "ok_metric"), ("instance", &good.addr)]);
    assert!(ok.values().next().unwrap().iter().all(|x| x.v == 1.0));
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&s.registry.gather())
        .unwrap();
    assert!(
        text.contains("prometheus_target_scrapes_exceeded_sample_limit_total "),
        "{text}"
    );
    assert!(
        !text.contains("prometheus_target_scrapes_exceeded_sample_limit_total 0"),
        "{text}"
    );
    assert!(!text.contains("prometheus_target_scrapes_exceeded_body_size_limit_total 0"));
    assert!(text.contains("prometheus_target_scrape_pool_targets{scrape_job=\"bad\"} 7"));
    s.manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honor_labels_both_ways_and_metric_relabeling() {
    let body = "m{job=\"exported\",instance=\"inner\",x=\"1\"} 1\ndropme 2\n";
    let exp = Exporter::start(Reply::text(body)).await;
    let s = setup();
    s.manager
        .apply_config(&config(
            "scrape_configs:\n\
             - job_name: plain\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\n\
             \x20 metric_relabel_configs: [{source_labels: [__name__], regex: dropme, action: drop}]\n\
             - job_name: honor\n  honor_labels: true\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\n",
        ))
        .await
        .unwrap();
    s.manager
        .sync(&groups(&[("plain", &[&exp.addr]), ("honor", &[&exp.addr])]))
        .await;
    eventually("both scraped", || {
        !select(&s.head, &[("__name__", "m"), ("job", "plain")]).is_empty()
            && !select(&s.head, &[("__name__", "m"), ("job", "exported")]).is_empty()
    })
    .await;
    let plain: Vec<Labels> = select(&s.head, &[("__name__", "m"), ("job", "plain")])
        .into_keys()
        .collect();
    assert_eq!(
        plain[0].to_string(),
        format!(
            "{{__name__=\"m\", exported_instance=\"inner\", exported_job=\"exported\", instance=\"{}\", job=\"plain\", x=\"1\"}}",
            exp.addr
        )
    );
    let honored: Vec<Labels> = select(&s.head, &[("__name__", "m"), ("job", "exported")])
        .into_keys()
        .collect();
    assert_eq!(
        honored[0].to_string(),
        "{__name__=\"m\", instance=\"inner\", job=\"exported\", x=\"1\"}"
    );
    // Metric relabeling dropped `dropme` for one job only, and counts it.
    assert!(select(&s.head, &[("__name__", "dropme"), ("job", "plain")]).is_empty());
    assert!(!select(&s.head, &[("__name__", "dropme"), ("job", "honor")]).is_empty());
    let post = select(
        &s.head,
        &[("__name__", "scrape_samples_post_metric_relabeling"), ("job", "plain")],
    );
    assert_eq!(post.values().next().unwrap()[0].v, 1.0);
    s.manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_targets_keep_their_loops_across_updates_and_reloads() {
    let a = Exporter::start(Reply::text("v 1\n")).await;
    let b = Exporter::start(Reply::text("v 2\n")).await;
    let s = setup();
    let cfg = "scrape_configs:\n- job_name: keep\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\n";
    s.manager.apply_config(&config(cfg)).await.unwrap();
    s.manager.sync(&groups(&[("keep", &[&a.addr])])).await;
    eventually("a scraped", || up_samples(&s.head, &a.addr).len() >= 2).await;
    let before = s.manager.targets_active().await["keep"][0].clone();
    // Adding b and re-applying the same config (moved in the file) leaves a's loop alone.
    s.manager.sync(&groups(&[("keep", &[&a.addr, &b.addr])])).await;
    s.manager
        .apply_config(&config(&format!("# moved\n\n{cfg}")))
        .await
        .unwrap();
    eventually("b scraped", || up_samples(&s.head, &b.addr).len() >= 2).await;
    let after = s.manager.targets_active().await["keep"].clone();
    assert_eq!(after.len(), 2);
    assert!(
        after.iter().any(|t| Arc::ptr_eq(t, &before)),
        "a's target was recreated"
    );
    // Evenly spaced scrapes: no gap and no double scrape.
    let ts: Vec<i64> = up_samples(&s.head, &a.addr).iter().map(|x| x.t).collect();
    for w in ts.windows(2) {
        assert!((100..=320).contains(&(w[1] - w[0])), "scrape times {ts:?}");
    }
    s.manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_limit_fails_every_target_of_the_pool() {
    let a = Exporter::start(Reply::text("v 1\n")).await;
    let b = Exporter::start(Reply::text("v 1\n")).await;
    let s = setup();
    s.manager
        .apply_config(&config(
            "scrape_configs:\n- job_name: lim\n  target_limit: 1\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\n",
        ))
        .await
        .unwrap();
    s.manager.sync(&groups(&[("lim", &[&a.addr, &b.addr])])).await;
    eventually("both down", || {
        [&a, &b]
            .iter()
            .all(|e| up_samples(&s.head, &e.addr).last().is_some_and(|x| x.v == 0.0))
    })
    .await;
    let t = s.manager.targets_active().await["lim"][0].clone();
    assert_eq!(
        t.last_error().as_deref(),
        Some("target_limit exceeded (number of targets: 2, limit: 1)")
    );
    assert!(select(&s.head, &[("__name__", "v")]).is_empty());
    assert!(
        a.requests.lock().unwrap().is_empty(),
        "a target over the limit was scraped"
    );
    s.manager.stop().await;
}

/// A child process stopped by its own pid when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_node_exporter_scrapes_what_textparse_sees() {
    let Some(bin) = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("prometheus-node-exporter"))
            .find(|p| p.is_file())
    }) else {
        panic!(
            "prometheus-node-exporter is not on PATH: `bash .ci/test` installs it (Debian package prometheus-node-exporter)"
        );
    };
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let _child = ChildGuard(
        Command::new(bin)
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node_exporter"),
    );
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/metrics");
    let end = Instant::now() + DEADLINE;
    while client.get(&url).send().await.is_err() {
        assert!(Instant::now() < end, "node_exporter did not start listening on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let s = setup();
    s.manager
        .apply_config(&config(
            "scrape_configs:\n- job_name: node\n  scrape_interval: 5s\n  scrape_timeout: 4s\n",
        ))
        .await
        .unwrap();
    s.manager.sync(&groups(&[("node", &[&addr])])).await;
    eventually("node scraped", || !up_samples(&s.head, &addr).is_empty()).await;
    s.manager.stop().await;
    assert_eq!(up_samples(&s.head, &addr)[0].v, 1.0);

    // Fetch the body ourselves with the same Accept header.
    let accept = watchfire_scrape::scraper::accept_header(
        &watchfire_config::prometheus::ScrapeProtocol::DEFAULT,
        watchfire_config::prometheus::EscapingScheme::AllowUtf8,
    );
    let resp = client.get(&url).header("Accept", accept).send().await.unwrap();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    let body = resp.bytes().await.unwrap();
    assert!(Format::from_content_type(&ct).is_ok(), "{ct}");
    let want = expected_series(&body, &ct, &[("job", "node"), ("instance", &addr)]);
    let stored: BTreeSet<Labels> = select(&s.head, &[("job", "node")])
        .into_keys()
        .filter(|l| !SYNTHETIC.contains(&l.metric_name().unwrap()))
        .collect();
    // Some series legitimately come and go between two fetches (per-scrape collector
    // results, Go runtime internals): compare metric names exactly, and label sets for all
    // but a small churn.
    let by_name = |set: &BTreeSet<Labels>| -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for l in set {
            *m.entry(l.metric_name().unwrap().to_owned()).or_default() += 1;
        }
        m
    };
    let (w, g) = (by_name(&want), by_name(&stored));
    let wn: BTreeSet<&String> = w.keys().collect();
    let gn: BTreeSet<&String> = g.keys().collect();
    assert_eq!(wn, gn, "metric names differ");
    let diff: Vec<&Labels> = want.symmetric_difference(&stored).collect();
    assert!(
        diff.len() * 100 <= want.len(),
        "{} of {} series differ: {:?}",
        diff.len(),
        want.len(),
        diff.iter().take(10).collect::<Vec<_>>()
    );
    assert!(want.len() > 100, "suspiciously few series: {}", want.len());
}
