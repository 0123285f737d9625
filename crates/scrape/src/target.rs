//! Targets: the label pipeline from discovered groups to scrape targets (upstream
//! scrape/target.go `PopulateDiscoveredLabels`, `PopulateLabels`), the scrape URL, the
//! per-target phase inside the interval, and the state the API reports.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime};

use watchfire_config::prometheus::{RelabelConfig, ScrapeConfig};
use watchfire_discovery::TargetGroup;
use watchfire_model::{Labels, LabelsBuilder};
use watchfire_textparse::MetricType;

/// Reserved label names, as upstream's `model` package spells them.
pub const ADDRESS_LABEL: &str = "__address__";
pub const SCHEME_LABEL: &str = "__scheme__";
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub const PARAM_LABEL_PREFIX: &str = "__param_";
pub const META_LABEL_PREFIX: &str = "__meta_";
pub const RESERVED_LABEL_PREFIX: &str = "__";
pub const JOB_LABEL: &str = "job";
pub const INSTANCE_LABEL: &str = "instance";
const CONVERT_NHCB_LABEL: &str = "__convert_classic_histograms_to_nhcb__";
const ALWAYS_CLASSIC_LABEL: &str = "__always_scrape_classic_histograms__";
const NATIVE_HISTOGRAMS_LABEL: &str = "__scrape_native_histograms__";

/// The labels of a discovered target before relabeling: the target's own labels, the
/// group's labels it does not set itself, then the job's defaults for the reserved labels
/// that are still empty (upstream `PopulateDiscoveredLabels`).
pub fn discovered_labels(cfg: &ScrapeConfig, target: &Labels, group: &Labels) -> Labels {
    let mut b = LabelsBuilder::from(target);
    for l in group {
        if !target.has(l.name) {
            b.set(l.name, l.value);
        }
    }
    let defaults = [
        (JOB_LABEL, cfg.job_name.clone()),
        (SCRAPE_INTERVAL_LABEL, cfg.scrape_interval.to_string()),
        (SCRAPE_TIMEOUT_LABEL, cfg.scrape_timeout.to_string()),
        (METRICS_PATH_LABEL, cfg.metrics_path.clone()),
        (SCHEME_LABEL, cfg.scheme.clone()),
        (
            CONVERT_NHCB_LABEL,
            cfg.convert_classic_histograms_to_nhcb_enabled().to_string(),
        ),
        (
            ALWAYS_CLASSIC_LABEL,
            cfg.always_scrape_classic_histograms_enabled().to_string(),
        ),
        (
            NATIVE_HISTOGRAMS_LABEL,
            cfg.scrape_native_histograms_enabled().to_string(),
        ),
    ];
    for (name, value) in defaults {
        if b.get(name).is_none_or(str::is_empty) {
            b.set(name, &value);
        }
    }
    for (k, values) in &cfg.params {
        let name = format!("{PARAM_LABEL_PREFIX}{k}");
        if let Some(first) = values.first()
            && b.get(&name).is_none_or(str::is_empty)
        {
            b.set(&name, first);
        }
    }
    b.build()
}

/// Why a discovered target cannot become a scrape target.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("no address")]
    NoAddress,
    #[error("{0:?} is not a valid hostname")]
    InvalidAddress(String),
    #[error("error parsing scrape interval: {0}")]
    Interval(String),
    #[error("scrape interval cannot be 0")]
    ZeroInterval,
    #[error("error parsing scrape timeout: {0}")]
    Timeout(String),
    #[error("scrape timeout cannot be 0")]
    ZeroTimeout,
    #[error("scrape timeout cannot be greater than scrape interval ({timeout:?} > {interval:?})")]
    TimeoutAboveInterval { timeout: String, interval: String },
    #[error("error parsing {0}: invalid syntax")]
    Bool(&'static str),
}

/// The outcome of the label pipeline for one discovered target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Populated {
    /// A target with these labels (reserved `__` labels included, `__meta_*` removed).
    Target(Labels),
    /// Relabeling dropped it.
    Dropped,
}

/// Upstream's `PopulateLabels`: relabels `discovered` with the job's `relabel_configs` and
/// checks the result. The port is not defaulted (Prometheus 3 no longer adds `:80`/`:443`).
pub fn populate_labels(cfg: &ScrapeConfig, discovered: &Labels) -> Result<Populated, TargetError> {
    let Some(labels) =
        RelabelConfig::process_with_scheme(discovered, &cfg.relabel_configs, cfg.name_validation_scheme())
    else {
        return Ok(Populated::Dropped);
    };
    let addr = labels.get(ADDRESS_LABEL).unwrap_or("");
    if addr.is_empty() {
        return Err(TargetError::NoAddress);
    }
    if addr.contains('/') {
        return Err(TargetError::InvalidAddress(addr.to_owned()));
    }
    let interval_text = labels.get(SCRAPE_INTERVAL_LABEL).unwrap_or("");
    let interval = watchfire_model::Duration::parse(interval_text).map_err(|e| TargetError::Interval(e.to_string()))?;
    if interval.is_zero() {
        return Err(TargetError::ZeroInterval);
    }
    let timeout_text = labels.get(SCRAPE_TIMEOUT_LABEL).unwrap_or("");
    let timeout = watchfire_model::Duration::parse(timeout_text).map_err(|e| TargetError::Timeout(e.to_string()))?;
    if timeout.is_zero() {
        return Err(TargetError::ZeroTimeout);
    }
    if timeout > interval {
        return Err(TargetError::TimeoutAboveInterval {
            timeout: timeout_text.to_owned(),
            interval: interval_text.to_owned(),
        });
    }
    for (name, what) in [
        (CONVERT_NHCB_LABEL, "convert classic histograms to nhcb"),
        (ALWAYS_CLASSIC_LABEL, "always scrape classic histograms"),
        (NATIVE_HISTOGRAMS_LABEL, "scrape native histograms"),
    ] {
        if let Some(v) = labels.get(name)
            && parse_go_bool(v).is_none()
        {
            return Err(TargetError::Bool(what));
        }
    }
    let mut b = labels.builder();
    b.retain(|n, _| !n.starts_with(META_LABEL_PREFIX));
    if b.get(INSTANCE_LABEL).is_none_or(str::is_empty) {
        let addr = addr.to_owned();
        b.set(INSTANCE_LABEL, &addr);
    }
    Ok(Populated::Target(b.build()))
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The targets and dropped targets of a job's groups, and why others failed (upstream
/// `TargetsFromGroup`).
pub fn targets_from_groups(
    cfg: &ScrapeConfig,
    groups: &[TargetGroup],
) -> (Vec<(Labels, Labels)>, Vec<Labels>, Vec<String>) {
    let (mut active, mut dropped, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    for g in groups {
        for (i, t) in g.targets.iter().enumerate() {
            let discovered = discovered_labels(cfg, t, &g.labels);
            match populate_labels(cfg, &discovered) {
                Ok(Populated::Target(labels)) => active.push((labels, discovered)),
                Ok(Populated::Dropped) => dropped.push(discovered),
                Err(e) => failures.push(format!("instance {i} in group {}: {e}", g.source)),
            }
        }
    }
    (active, dropped, failures)
}

/// The labels a target's samples get: its labels without the reserved `__` ones.
pub fn public_labels(labels: &Labels) -> Labels {
    let mut b = labels.builder();
    b.retain(|n, _| !n.starts_with(RESERVED_LABEL_PREFIX));
    b.build()
}

/// Go's `url.QueryEscape`: everything but unreserved characters is percent-encoded, spaces
/// become `+`.
fn query_escape(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// The scrape URL of a target with `labels` in a job with `params` (upstream `Target.URL`):
/// `__scheme__://__address__` + `__metrics_path__`, with the query from `params`, where each
/// `__param_<k>` label replaces the first value of `k` or adds it. Keys come sorted, as Go's
/// `url.Values.Encode` writes them.
pub fn scrape_url(labels: &Labels, params: &BTreeMap<String, Vec<String>>) -> String {
    let mut query: BTreeMap<String, Vec<String>> = params.clone();
    for l in labels {
        if let Some(k) = l.name.strip_prefix(PARAM_LABEL_PREFIX) {
            let values = query.entry(k.to_owned()).or_default();
            match values.first_mut() {
                Some(first) => l.value.clone_into(first),
                None => values.push(l.value.to_owned()),
            }
        }
    }
    let scheme = labels.get(SCHEME_LABEL).unwrap_or("");
    let host = labels.get(ADDRESS_LABEL).unwrap_or("");
    let path = labels.get(METRICS_PATH_LABEL).unwrap_or("");
    let mut url = format!("{scheme}://{host}");
    if !path.is_empty() && !path.starts_with('/') {
        url.push('/');
    }
    url.push_str(path);
    let mut first = true;
    for (k, values) in &query {
        for v in values {
            url.push(if first { '?' } else { '&' });
            first = false;
            query_escape(k, &mut url);
            url.push('=');
            query_escape(v, &mut url);
        }
    }
    url
}

/// Go's `labels.Labels.Hash` (stringlabels build, the default): xxHash64 of each name and
/// value, each preceded by its length as a uvarint.
pub fn go_labels_hash(labels: &Labels) -> u64 {
    let mut buf = Vec::new();
    for l in labels {
        for s in [l.name, l.value] {
            let mut n = s.len();
            while n >= 0x80 {
                buf.push((n as u8) | 0x80);
                n >>= 7;
            }
            buf.push(n as u8);
            buf.extend_from_slice(s.as_bytes());
        }
    }
    xxhash_rust::xxh64::xxh64(&buf, 0)
}

/// FNV-1a, 64 bits.
pub(crate) fn fnv64a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A target's identity within its pool (upstream `Target.hash`): FNV-1a of the label hash
/// printed as 16 zero-padded decimal digits, then the URL.
pub fn target_hash(labels: &Labels, url: &str) -> u64 {
    let mut data = format!("{:016}", go_labels_hash(labels)).into_bytes();
    data.extend_from_slice(url.as_bytes());
    fnv64a(&data)
}

/// How long to wait from `now` until the target's first scrape (upstream `Target.offset`):
/// every target has a fixed phase in the interval, pinned to absolute time, so it is scraped
/// at the same point of every interval even across restarts.
pub fn offset(hash: u64, seed: u64, interval: Duration, now: SystemTime) -> Duration {
    let interval_ns = interval.as_nanos().max(1) as u64;
    let now_ns = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let base = interval_ns - now_ns % interval_ns;
    let phase = (hash ^ seed) % interval_ns;
    let mut next = base + phase;
    if next > interval_ns {
        next -= interval_ns;
    }
    Duration::from_nanos(next)
}

/// The health of a target after its last scrape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetHealth {
    /// Not scraped yet.
    Unknown,
    /// The last scrape succeeded.
    Up,
    /// The last scrape failed.
    Down,
}

impl TargetHealth {
    /// `up`, `down` or `unknown`, as the API prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetHealth::Unknown => "unknown",
            TargetHealth::Up => "up",
            TargetHealth::Down => "down",
        }
    }
}

/// Metadata of one metric family, from `# TYPE`, `# HELP` and `# UNIT` lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricMetadata {
    pub metric_family: String,
    /// `counter`, `gauge`, `histogram`, `gaugehistogram`, `summary`, `info`, `stateset` or
    /// `unknown`.
    pub metric_type: String,
    pub help: String,
    pub unit: String,
}

/// The metadata of one metric family, from its `# TYPE`, `# HELP` and `# UNIT` lines. The
/// targets of a job usually run the same exporter, so one copy is shared between all targets
/// exposing the same ([`intern`]).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Family {
    pub name: Box<str>,
    pub metric_type: MetricType,
    pub help: Box<str>,
    pub unit: Box<str>,
}

/// Every family some target holds, for [`intern`].
#[derive(Default)]
struct FamilyTable {
    set: HashSet<Arc<Family>>,
    /// Size after the last sweep of families no target holds any more.
    swept: usize,
}

static FAMILIES: LazyLock<Mutex<FamilyTable>> = LazyLock::new(Mutex::default);

/// The shared copy of `family`. Called only when a target's metadata changes (first scrape,
/// changed help), never per scrape. Families no target holds any more are swept whenever the
/// table has doubled since the last sweep, so at most half of it is garbage.
pub(crate) fn intern(family: Family) -> Arc<Family> {
    let mut t = FAMILIES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(f) = t.set.get(&family) {
        return f.clone();
    }
    if t.set.len() >= (2 * t.swept).max(1024) {
        t.set.retain(|f| Arc::strong_count(f) > 1);
        t.swept = t.set.len();
    }
    let f = Arc::new(family);
    t.set.insert(f.clone());
    f
}

/// The metadata of a target's metric families, sorted by family name: a shared [`Family`]
/// and the scrape that last exposed it. A target exposes hundreds of families (node_exporter:
/// about 300), so this is a list with exact capacity, looked up by binary search, rather than
/// a hash map with its empty slots, and 16 bytes a family rather than a copy of its strings.
///
/// Exporters write their families in name order (node_exporter, client_golang and most
/// others sort them), and each family's HELP and TYPE lines come together, so [`update`]
/// first tries the family it found last and the one after it: one comparison per line
/// instead of a binary search whose every step reads another family's name from memory.
///
/// [`update`]: FamilyMetadata::update
#[derive(Debug, Default)]
pub(crate) struct FamilyMetadata {
    families: Vec<(Arc<Family>, u64)>,
    /// Where the last [`update`](FamilyMetadata::update) found or put its family.
    hint: usize,
}

impl FamilyMetadata {
    pub(crate) fn len(&self) -> usize {
        self.families.len()
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.families.binary_search_by(|(f, _)| (*f.name).cmp(name))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Family> {
        self.find(name).ok().map(|i| &*self.families[i].0)
    }

    /// Records that scrape `iter` exposed family `name` (added of unknown type, without help
    /// or unit, if new) and applies `change`, which returns the changed family, if any.
    pub(crate) fn update(&mut self, name: &str, iter: u64, change: impl FnOnce(&Family) -> Option<Family>) {
        let hinted = (self.hint..self.families.len().min(self.hint + 2)).find(|&i| *self.families[i].0.name == *name);
        let i = match hinted.map_or_else(|| self.find(name), Ok) {
            Ok(i) => i,
            Err(i) => {
                let f = intern(Family {
                    name: name.into(),
                    metric_type: MetricType::Unknown,
                    help: Box::default(),
                    unit: Box::default(),
                });
                // New families are rare after the first scrape; growing by one keeps the
                // list exact.
                self.families.reserve_exact(1);
                self.families.insert(i, (f, iter));
                i
            }
        };
        self.hint = i;
        let (f, last) = &mut self.families[i];
        if let Some(changed) = change(f) {
            *f = intern(changed);
        }
        *last = iter;
    }

    /// Marks the families scrape `from` exposed as exposed by scrape `to` too (its metadata
    /// lines were the same).
    pub(crate) fn touch(&mut self, from: u64, to: u64) {
        for (_, last) in &mut self.families {
            if *last == from {
                *last = to;
            }
        }
    }

    /// Keeps the families whose last scrape `keep` accepts.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(u64) -> bool) {
        let before = self.families.len();
        self.families.retain(|(_, last)| keep(*last));
        self.hint = 0;
        if self.families.len() != before {
            self.families.shrink_to_fit();
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Family> {
        self.families.iter().map(|(f, _)| &**f)
    }
}

#[derive(Debug)]
struct Status {
    health: TargetHealth,
    last_error: Option<String>,
    last_scrape: Option<SystemTime>,
    last_scrape_duration: Duration,
    discovered: Labels,
}

/// A scrape target: its labels, URL and the outcome of its last scrape. Shared between its
/// scrape loop and readers (the HTTP API).
#[derive(Debug)]
pub struct Target {
    all: Labels,
    public: Labels,
    url: String,
    pool: String,
    hash: u64,
    interval: Duration,
    timeout: Duration,
    status: Mutex<Status>,
    pub(crate) metadata: Mutex<FamilyMetadata>,
}

impl Target {
    /// A target with final `labels` (reserved ones included) discovered as `discovered`, in
    /// pool `pool` with the job's `params`. Interval and timeout come from the labels (checked
    /// by [`populate_labels`]); `defaults` are used if they do not parse.
    pub fn new(
        labels: Labels,
        discovered: Labels,
        pool: &str,
        params: &BTreeMap<String, Vec<String>>,
        defaults: (Duration, Duration),
    ) -> Self {
        let url = scrape_url(&labels, params);
        let parse = |name: &str, default: Duration| {
            labels
                .get(name)
                .and_then(|v| watchfire_model::Duration::parse(v).ok())
                .map_or(default, |d| d.to_std())
        };
        let interval = parse(SCRAPE_INTERVAL_LABEL, defaults.0);
        let timeout = parse(SCRAPE_TIMEOUT_LABEL, defaults.1);
        Target {
            hash: target_hash(&labels, &url),
            public: public_labels(&labels),
            all: labels,
            url,
            pool: pool.to_owned(),
            interval,
            timeout,
            status: Mutex::new(Status {
                health: TargetHealth::Unknown,
                last_error: None,
                last_scrape: None,
                last_scrape_duration: Duration::ZERO,
                discovered,
            }),
            metadata: Mutex::default(),
        }
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every label, reserved `__` ones included.
    pub fn all_labels(&self) -> &Labels {
        &self.all
    }

    /// The labels samples of this target get (no `__` labels).
    pub fn labels(&self) -> &Labels {
        &self.public
    }

    /// The labels as discovered, before relabeling.
    pub fn discovered_labels(&self) -> Labels {
        self.status().discovered.clone()
    }

    pub(crate) fn set_discovered_labels(&self, discovered: Labels) {
        self.status().discovered = discovered;
    }

    /// The scrape URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The job (scrape pool) name.
    pub fn scrape_pool(&self) -> &str {
        &self.pool
    }

    /// The identity of the target in its pool.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The scrape interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The scrape timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Health after the last scrape.
    pub fn health(&self) -> TargetHealth {
        self.status().health
    }

    /// The error of the last scrape, if it failed.
    pub fn last_error(&self) -> Option<String> {
        self.status().last_error.clone()
    }

    /// When the last scrape started.
    pub fn last_scrape(&self) -> Option<SystemTime> {
        self.status().last_scrape
    }

    /// How long the last scrape took.
    pub fn last_scrape_duration(&self) -> Duration {
        self.status().last_scrape_duration
    }

    pub(crate) fn report(&self, start: SystemTime, duration: Duration, err: Option<String>) {
        let mut s = self.status();
        s.health = if err.is_none() {
            TargetHealth::Up
        } else {
            TargetHealth::Down
        };
        s.last_error = err;
        s.last_scrape = Some(start);
        s.last_scrape_duration = duration;
    }

    /// Metadata of every metric family the target exposed recently.
    pub fn metadata_list(&self) -> Vec<MetricMetadata> {
        let meta = self.metadata.lock().unwrap_or_else(|e| e.into_inner());
        meta.iter()
            .map(|e| MetricMetadata {
                metric_family: e.name.to_string(),
                metric_type: e.metric_type.as_str().to_owned(),
                help: e.help.to_string(),
                unit: e.unit.to_string(),
            })
            // Already sorted by family name.
            .collect()
    }

    /// Metadata of metric family `name`.
    pub fn metadata(&self, name: &str) -> Option<MetricMetadata> {
        let meta = self.metadata.lock().unwrap_or_else(|e| e.into_inner());
        meta.get(name).map(|e| MetricMetadata {
            metric_family: name.to_owned(),
            metric_type: e.metric_type.as_str().to_owned(),
            help: e.help.to_string(),
            unit: e.unit.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(yaml: &str) -> ScrapeConfig {
        let src = format!("scrape_configs:\n- job_name: j\n{yaml}");
        let cfg = watchfire_config::prometheus::Config::parse(&src, "p.yml".as_ref()).unwrap();
        cfg.scrape_configs.into_iter().next().unwrap()
    }

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn family_metadata_is_sorted_exact_shared_and_pruned() {
        let typed = |kind| {
            move |f: &Family| {
                (f.metric_type != kind).then(|| Family {
                    metric_type: kind,
                    ..clone(f)
                })
            }
        };
        let mut m = FamilyMetadata::default();
        for (i, name) in ["t_node_load1", "t_go_info", "t_up", "t_node_cpu"]
            .into_iter()
            .enumerate()
        {
            m.update(name, i as u64, typed(MetricType::Gauge));
        }
        // An existing family is updated in place, and a change of nothing changes nothing.
        m.update("t_go_info", 1, |f| {
            Some(Family {
                help: "Go version".into(),
                ..clone(f)
            })
        });
        m.update("t_go_info", 1, |_| None);
        assert_eq!(m.len(), 4);
        assert_eq!(m.families.capacity(), 4);
        let names: Vec<&str> = m.iter().map(|f| &*f.name).collect();
        assert_eq!(names, ["t_go_info", "t_node_cpu", "t_node_load1", "t_up"]);
        let go = m.get("t_go_info").unwrap();
        assert_eq!(
            (go.metric_type, &*go.help, &*go.unit),
            (MetricType::Gauge, "Go version", "")
        );
        assert!(m.get("missing").is_none());

        // Another target exposing the same families shares them.
        let mut other = FamilyMetadata::default();
        other.update("t_up", 0, typed(MetricType::Gauge));
        other.update("t_node_cpu", 0, typed(MetricType::Counter));
        let shared = |name: &str| {
            Arc::ptr_eq(
                &m.families[m.find(name).unwrap()].0,
                &other.families[other.find(name).unwrap()].0,
            )
        };
        assert!(shared("t_up"));
        assert!(!shared("t_node_cpu"), "different type, different family");

        m.retain(|last| last >= 2);
        let names: Vec<&str> = m.iter().map(|f| &*f.name).collect();
        assert_eq!(names, ["t_node_cpu", "t_up"]);
        assert_eq!(m.families.capacity(), 2);
    }

    fn clone(f: &Family) -> Family {
        Family {
            name: f.name.clone(),
            metric_type: f.metric_type,
            help: f.help.clone(),
            unit: f.unit.clone(),
        }
    }

    #[test]
    fn defaults_and_group_labels() {
        let cfg = job("  scrape_interval: 15s\n  params: {module: [http_2xx, x]}\n");
        let d = discovered_labels(
            &cfg,
            &l(&[("__address__", "a:1"), ("env", "t")]),
            &l(&[("env", "g"), ("dc", "x")]),
        );
        assert_eq!(d.get("env"), Some("t"));
        assert_eq!(d.get("dc"), Some("x"));
        assert_eq!(d.get("job"), Some("j"));
        assert_eq!(d.get("__scrape_interval__"), Some("15s"));
        assert_eq!(d.get("__scrape_timeout__"), Some("10s"));
        assert_eq!(d.get("__metrics_path__"), Some("/metrics"));
        assert_eq!(d.get("__scheme__"), Some("http"));
        assert_eq!(d.get("__param_module"), Some("http_2xx"));
        assert_eq!(d.get("__scrape_native_histograms__"), Some("false"));
        let Populated::Target(t) = populate_labels(&cfg, &d).unwrap() else {
            panic!()
        };
        assert_eq!(t.get("instance"), Some("a:1"));
        assert_eq!(
            public_labels(&t).to_string(),
            r#"{dc="x", env="t", instance="a:1", job="j"}"#
        );
        assert_eq!(
            scrape_url(&t, &cfg.params),
            "http://a:1/metrics?module=http_2xx&module=x"
        );
    }

    #[test]
    fn relabeling_and_rejections() {
        let cfg = job(
            "  relabel_configs:\n  - {source_labels: [__meta_x], target_label: instance}\n  - {source_labels: [__meta_x], regex: drop, action: drop}\n",
        );
        let base =
            |meta: &str, addr: &str| discovered_labels(&cfg, &l(&[("__address__", addr), ("__meta_x", meta)]), &l(&[]));
        let Populated::Target(t) = populate_labels(&cfg, &base("name", "h:1")).unwrap() else {
            panic!()
        };
        assert_eq!(t.get("instance"), Some("name"));
        assert!(!t.has("__meta_x"));
        assert_eq!(populate_labels(&cfg, &base("drop", "h:1")).unwrap(), Populated::Dropped);
        assert_eq!(
            populate_labels(&cfg, &base("n", "")).unwrap_err(),
            TargetError::NoAddress
        );
        assert_eq!(
            populate_labels(&cfg, &base("n", "http://h:1")).unwrap_err().to_string(),
            "\"http://h:1\" is not a valid hostname"
        );
        // No default port in Prometheus 3.
        let Populated::Target(t) = populate_labels(&cfg, &base("n", "host")).unwrap() else {
            panic!()
        };
        assert_eq!(t.get("__address__"), Some("host"));
        let cfg = job("  relabel_configs:\n  - {target_label: __scrape_timeout__, replacement: 2m}\n");
        let d = discovered_labels(&cfg, &l(&[("__address__", "a:1")]), &l(&[]));
        assert_eq!(
            populate_labels(&cfg, &d).unwrap_err().to_string(),
            "scrape timeout cannot be greater than scrape interval (\"2m\" > \"1m\")"
        );
    }

    #[test]
    fn url_params_from_labels_and_escaping() {
        let mut params = BTreeMap::new();
        params.insert("target".to_owned(), vec!["x".to_owned()]);
        let labels = l(&[
            ("__scheme__", "https"),
            ("__address__", "h:9115"),
            ("__metrics_path__", "probe"),
            ("__param_target", "http://a b/?c=d"),
            ("__param_extra", "1"),
        ]);
        assert_eq!(
            scrape_url(&labels, &params),
            "https://h:9115/probe?extra=1&target=http%3A%2F%2Fa+b%2F%3Fc%3Dd"
        );
    }

    #[test]
    fn offset_is_a_fixed_phase_in_the_interval() {
        let interval = Duration::from_secs(15);
        let at = |ms: u64| SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
        let o1 = offset(12345, 0, interval, at(1_000_000_000_000));
        let o2 = offset(12345, 0, interval, at(1_000_000_003_000));
        assert!(o1 <= interval && o2 <= interval);
        // Three seconds later, the wait is three seconds shorter (modulo the interval).
        assert_eq!((o1.as_millis() + 15_000 - 3_000) % 15_000, o2.as_millis() % 15_000);
        assert_ne!(offset(1, 0, interval, at(0)), offset(2, 0, interval, at(0)));
        // Known fnv64a vectors.
        assert_eq!(fnv64a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv64a(b"a"), 0xaf63dc4c8601ec8c);
    }
}
