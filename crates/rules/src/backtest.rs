//! Backtesting: replaying alerting rules over stored history to see when they would have
//! fired. Prometheus has no such feature; it lets users tune noisy rules before deploying
//! them.
//!
//! [`run`] evaluates the given [`Group`]s at every evaluation time of a past range with the
//! same code the live server runs ([`Group::eval`] and the alert state machine of
//! [`crate::AlertingRule`]), so `for`, `keep_firing_for`, `query_offset`, `limit`, rule labels
//! and templates behave exactly as they would have. Reads go to the stored history through an
//! overlay; everything the rules write (recording rule results, `ALERTS`,
//! `ALERTS_FOR_STATE`) goes to an in-memory head that only this backtest sees, and reads see
//! both, so an alert built on a recording rule of the same file works even where the server
//! never recorded that rule. The storage is never written.
//!
//! # When evaluations happen
//!
//! Each group is evaluated every `interval` (its own, else the global `evaluation_interval`),
//! at the same phase the live server uses for a group of that file and name, from the first
//! such time at or after `from` to the last at or before `to`. With an explicit step, every
//! group is evaluated at `from`, `from + step`, ... instead. Groups are interleaved in time
//! order, so a recording rule of one group feeds an alert of another as it would live.
//!
//! # What is reported
//!
//! For each alert (an alerting rule plus a label set), its *episodes*: when it went pending
//! (its `activeAt`), when it started firing, and when it resolved (went inactive, which
//! includes the `keep_firing_for` hold), or that it never fired (`cancelled`), or that it was
//! still pending or firing at the end of the range (`open`). An episode that was already
//! active at the first evaluation is marked: its real start may be earlier, as the backtest
//! cannot know the state before the range.
//!
//! The notification model is per alert and deliberately simple, an upper bound of what a
//! receiver would get from Alertmanager: one notification when an episode starts firing, one
//! every `repeat_interval` (default 4h, Alertmanager's) while it keeps firing, and one when it
//! resolves (`send_resolved`, the default of most receivers). Grouping (`group_by`,
//! `group_wait`, `group_interval`), inhibition and silences are not applied; several alerts of
//! one Alertmanager group would arrive in fewer, bigger notifications. A *flap* is an episode
//! that starts firing within `flap_window` (default 1h) after the previous episode of the same
//! alert resolved.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use watchfire_config::rules::RuleGroup;
use watchfire_model::{Labels, Matcher, Sample, Timestamp};
use watchfire_promql::engine::Engine;
use watchfire_storage::{Appendable, Appender, Querier, Queryable, SelectHints, Series, SeriesSet, VecSeries};
use watchfire_tsdb::{Head, HeadOptions, MemoryStorage};

use crate::group::{EvalContext, Group};
use crate::rule::{AlertState, Health, Rule};

/// Alertmanager's default `repeat_interval`.
pub const DEFAULT_REPEAT_INTERVAL_MS: i64 = 4 * 3600 * 1000;
/// The default window within which firing again after a resolution counts as a flap.
pub const DEFAULT_FLAP_WINDOW_MS: i64 = 3600 * 1000;
/// The most group evaluations one backtest may run.
pub const DEFAULT_MAX_EVALUATIONS: usize = 200_000;

/// Why a backtest could not run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("the end of the range ({to}) is before its start ({from})")]
    EmptyRange { from: String, to: String },
    #[error("the evaluation step must be positive")]
    BadStep,
    #[error("no alerting rules to backtest")]
    NoAlertingRules,
    #[error(
        "the range needs {needed} evaluations, more than the limit of {limit}: use a larger step or a shorter range"
    )]
    TooManyEvaluations { needed: usize, limit: usize },
}

/// How to run a backtest.
#[derive(Clone, Debug)]
pub struct Options {
    /// Start of the range, ms since the epoch (inclusive).
    pub from: Timestamp,
    /// End of the range, ms since the epoch (inclusive).
    pub to: Timestamp,
    /// Evaluate every group at this step from `from` instead of at its interval and phase.
    pub step_ms: Option<i64>,
    /// Repeat notifications of a firing alert this often; 0 counts none.
    pub repeat_interval_ms: i64,
    /// Firing again within this long after resolving is a flap.
    pub flap_window_ms: i64,
    /// Refuse ranges needing more group evaluations than this.
    pub max_evaluations: usize,
}

impl Options {
    /// Defaults for everything but the range.
    pub fn new(from: Timestamp, to: Timestamp) -> Options {
        Options {
            from,
            to,
            step_ms: None,
            repeat_interval_ms: DEFAULT_REPEAT_INTERVAL_MS,
            flap_window_ms: DEFAULT_FLAP_WINDOW_MS,
            max_evaluations: DEFAULT_MAX_EVALUATIONS,
        }
    }
}

/// What the rules read: the stored history and how to query it.
#[derive(Clone)]
pub struct Source {
    pub storage: Arc<dyn Queryable>,
    pub engine: Engine,
    /// `global.external_labels`, for `$externalLabels`.
    pub external_labels: Labels,
    /// `--web.external-url`, for `$externalURL`.
    pub external_url: String,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("external_labels", &self.external_labels)
            .field("external_url", &self.external_url)
            .finish_non_exhaustive()
    }
}

/// The result of a backtest; times are RFC 3339, durations seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub from: String,
    pub to: String,
    /// Group evaluations run, over all groups.
    pub evaluations: usize,
    pub model: NotificationModel,
    pub groups: Vec<GroupRun>,
    /// One entry per alerting rule, in file and group order, including rules that never
    /// fired.
    pub rules: Vec<RuleSummary>,
    /// Every alert that was pending or firing at some evaluation, by rule then labels.
    pub alerts: Vec<AlertHistory>,
}

/// The notification model's parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationModel {
    /// 0 when repeats are not counted.
    pub repeat_interval_seconds: f64,
    pub flap_window_seconds: f64,
}

/// How one group was evaluated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRun {
    pub file: String,
    pub name: String,
    pub interval_seconds: f64,
    pub query_offset_seconds: f64,
    /// The step used: the interval, or the step asked for.
    pub step_seconds: f64,
    pub evaluations: usize,
    pub first_evaluation: Option<String>,
    pub last_evaluation: Option<String>,
}

/// What one alerting rule did over the range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleSummary {
    pub file: String,
    pub group: String,
    pub name: String,
    pub for_seconds: f64,
    pub keep_firing_for_seconds: f64,
    /// Distinct label sets that were pending or firing.
    pub alerts: usize,
    /// Episodes that reached firing.
    pub times_fired: usize,
    /// Total time firing, summed over alerts.
    pub firing_seconds: f64,
    pub flaps: usize,
    /// Episodes that were pending and went away without firing.
    pub pending_only: usize,
    pub notifications: u64,
    /// Evaluations that failed.
    pub evaluation_errors: usize,
    pub last_error: Option<String>,
}

/// One alert's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertHistory {
    pub file: String,
    pub group: String,
    pub rule: String,
    pub labels: BTreeMap<String, String>,
    /// As rendered when the alert last started firing (else when it was last pending).
    pub annotations: BTreeMap<String, String>,
    pub episodes: Vec<Episode>,
    pub times_fired: usize,
    pub firing_seconds: f64,
    pub flaps: usize,
    pub notifications: u64,
}

/// How an episode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum End {
    /// It fired and then resolved.
    Resolved,
    /// It was pending and went away without firing.
    Cancelled,
    /// Still pending or firing at the last evaluation.
    Open,
    /// The rule's alert `limit` was exceeded, which discards its alerts without resolving
    /// them (as upstream).
    Dropped,
}

/// One pending → (firing →) inactive run of an alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Episode {
    /// When it went pending (the alert's `activeAt`).
    pub pending_at: String,
    pub firing_at: Option<String>,
    /// When it went inactive (resolved or cancelled).
    pub resolved_at: Option<String>,
    /// When its expression stopped returning it while `keep_firing_for` held it firing.
    pub keep_firing_since: Option<String>,
    pub end: End,
    /// Already pending or firing at the first evaluation: the real start may be earlier.
    pub active_at_start: bool,
    /// The expression's value when it started firing (else when it went pending).
    pub value: f64,
    pub firing_seconds: f64,
    pub notifications: u64,
    /// Started firing within the flap window after the previous episode resolved.
    pub flap: bool,
}

/// Runs the alerting rules of `groups` over `[opts.from, opts.to]` of `source`.
pub fn run(mut groups: Vec<Group>, source: &Source, opts: &Options) -> Result<Report, Error> {
    if opts.to < opts.from {
        return Err(Error::EmptyRange {
            from: rfc3339(opts.from),
            to: rfc3339(opts.to),
        });
    }
    if opts.step_ms.is_some_and(|s| s <= 0) || groups.iter().any(|g| g.interval_ms() <= 0) {
        return Err(Error::BadStep);
    }
    if !groups
        .iter()
        .any(|g| g.rules().iter().any(|r| matches!(r, Rule::Alerting(_))))
    {
        return Err(Error::NoAlertingRules);
    }
    // Every evaluation time of every group, in time order (then group order).
    let mut plans = Vec::with_capacity(groups.len());
    for g in &groups {
        let step = opts.step_ms.unwrap_or(g.interval_ms());
        let first = match opts.step_ms {
            Some(_) => opts.from,
            None => {
                // The live server's phase for this group.
                let slot = g
                    .eval_timestamp_nanos(opts.from.saturating_mul(1_000_000))
                    .div_euclid(1_000_000);
                if slot < opts.from { slot + step } else { slot }
            }
        };
        let n = if first > opts.to {
            0
        } else {
            ((opts.to - first) / step + 1) as usize
        };
        plans.push((first, step, n));
    }
    let needed: usize = plans.iter().map(|p| p.2).sum();
    if needed > opts.max_evaluations {
        return Err(Error::TooManyEvaluations {
            needed,
            limit: opts.max_evaluations,
        });
    }
    let mut schedule: Vec<(Timestamp, usize)> = Vec::with_capacity(needed);
    let mut runs = Vec::with_capacity(groups.len());
    for (gi, (g, &(first, step, n))) in groups.iter().zip(&plans).enumerate() {
        schedule.extend((0..n).map(|k| (first + k as i64 * step, gi)));
        runs.push(GroupRun {
            file: g.file().to_owned(),
            name: g.name().to_owned(),
            interval_seconds: g.interval_ms() as f64 / 1000.0,
            query_offset_seconds: g.query_offset_ms() as f64 / 1000.0,
            step_seconds: step as f64 / 1000.0,
            evaluations: n,
            first_evaluation: (n > 0).then(|| rfc3339(first)),
            last_evaluation: (n > 0).then(|| rfc3339(first + (n as i64 - 1) * step)),
        });
    }
    schedule.sort();

    let overlay = Arc::new(Overlay {
        base: source.storage.clone(),
        own: MemoryStorage(Head::in_memory(HeadOptions::default())),
    });
    let mut ctx = EvalContext::new(overlay, source.engine.clone());
    ctx.external_labels = source.external_labels.clone();
    ctx.external_url = source.external_url.clone();
    ctx.log_failures = false;

    let mut tracker = Tracker::new(&groups);
    let mut last_eval = vec![None; groups.len()];
    for &(ts, gi) in &schedule {
        let first = last_eval[gi].is_none();
        groups[gi].eval(ts, &ctx);
        tracker.observe(gi, ts, first, &groups[gi]);
        last_eval[gi] = Some(ts);
    }
    Ok(tracker.report(&groups, &last_eval, runs, schedule.len(), opts))
}

/// The groups a backtest runs: those from `file` named `group` (any when `None`), each with
/// all its recording rules (later rules may read them) and those of its alerting rules named
/// `rule` (all when `None`). Groups left without an alerting rule are dropped.
pub fn select(
    configs: Vec<(String, RuleGroup)>,
    file: Option<&str>,
    group: Option<&str>,
    rule: Option<&str>,
) -> Vec<(String, RuleGroup)> {
    configs
        .into_iter()
        .filter(|(f, g)| file.is_none_or(|x| x == f) && group.is_none_or(|x| x == g.name))
        .filter_map(|(f, mut g)| {
            g.rules
                .retain(|r| !r.value.is_alerting() || rule.is_none_or(|x| x == r.value.alert));
            g.rules.iter().any(|r| r.value.is_alerting()).then_some((f, g))
        })
        .collect()
}

/// RFC 3339 in UTC, with fractional seconds only when there are some.
pub fn rfc3339(ms: Timestamp) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.to_string(),
        Err(_) => ms.to_string(),
    }
}

/// Parses a time as the CLI and API take it: RFC 3339, Unix seconds (with a fraction),
/// `now`, or a duration relative to now (`-6h`, `now-6h`, `+1h`).
pub fn parse_time(s: &str, now_ms: Timestamp) -> Result<Timestamp, String> {
    let s = s.trim();
    let relative = s.strip_prefix("now").unwrap_or(s);
    if relative.is_empty() {
        return Ok(now_ms);
    }
    if let Some(rest) = relative.strip_prefix('-').or_else(|| relative.strip_prefix('+'))
        && let Ok(d) = watchfire_model::Duration::parse(rest)
    {
        let d = d.as_millis();
        return Ok(if relative.starts_with('-') {
            now_ms - d
        } else {
            now_ms + d
        });
    }
    if let Ok(secs) = s.parse::<f64>()
        && secs.is_finite()
    {
        return Ok((secs * 1000.0).round() as Timestamp);
    }
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.as_millisecond());
    }
    Err(format!(
        "cannot parse {s:?} as a time: use RFC 3339, Unix seconds, \"now\" or a relative duration such as \"-6h\""
    ))
}

/// Parses a duration as Prometheus' API takes one: `5m`, `1h30m`, or seconds (`90`, `0.5`).
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Ok((secs * 1000.0).round() as i64);
    }
    watchfire_model::Duration::parse(s)
        .map(|d| d.as_millis())
        .map_err(|_| format!("cannot parse {s:?} as a duration"))
}

// ---------------------------------------------------------------------------------------------
// Following the alerts.

#[derive(Debug)]
struct Ep {
    active_at: Timestamp,
    firing_at: Option<Timestamp>,
    resolved_at: Option<Timestamp>,
    keep_firing_since: Option<Timestamp>,
    end: End,
    at_start: bool,
    value: f64,
}

#[derive(Debug, Default)]
struct Track {
    episodes: Vec<Ep>,
    open: bool,
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct RuleTrack {
    alerts: BTreeMap<Labels, Track>,
    open: BTreeSet<Labels>,
    errors: usize,
    last_error: Option<String>,
}

#[derive(Debug)]
struct Tracker {
    /// Per group, per rule (recording rules have empty tracks).
    rules: Vec<Vec<RuleTrack>>,
}

impl Tracker {
    fn new(groups: &[Group]) -> Tracker {
        Tracker {
            rules: groups
                .iter()
                .map(|g| g.rules().iter().map(|_| RuleTrack::default()).collect())
                .collect(),
        }
    }

    /// Records what the evaluation of group `gi` at `ts` did to its alerts.
    fn observe(&mut self, gi: usize, ts: Timestamp, first: bool, group: &Group) {
        for (ri, rule) in group.rules().iter().enumerate() {
            let Rule::Alerting(ar) = rule else { continue };
            let rt = &mut self.rules[gi][ri];
            let failed = rule.health() == Health::Bad;
            if failed {
                rt.errors += 1;
                rt.last_error = rule.last_error().map(str::to_owned);
            }
            for a in ar.active.values() {
                match a.state {
                    AlertState::Pending | AlertState::Firing => {
                        let track = rt.alerts.entry(a.labels.clone()).or_default();
                        let same = track.open && track.episodes.last().is_some_and(|e| e.active_at == a.active_at);
                        if !same {
                            if track.open
                                && let Some(ep) = track.episodes.last_mut()
                            {
                                // A new alert replaced the open one in the same evaluation
                                // (it resolved and came back): close the old one here.
                                close(ep, ts, false);
                            }
                            track.episodes.push(Ep {
                                active_at: a.active_at,
                                firing_at: None,
                                resolved_at: None,
                                keep_firing_since: None,
                                end: End::Open,
                                at_start: first,
                                value: a.value,
                            });
                            track.open = true;
                            track.annotations = a.annotations.clone();
                            rt.open.insert(a.labels.clone());
                        }
                        let ep = track.episodes.last_mut().expect("an episode was just ensured");
                        ep.keep_firing_since = a.keep_firing_since;
                        if a.state == AlertState::Firing && ep.firing_at.is_none() {
                            ep.firing_at = Some(a.fired_at.unwrap_or(ts));
                            ep.value = a.value;
                            track.annotations = a.annotations.clone();
                        }
                    }
                    AlertState::Inactive | AlertState::Unknown => {
                        if let Some(track) = rt.alerts.get_mut(&a.labels)
                            && track.open
                            && let Some(ep) = track.episodes.last_mut()
                        {
                            ep.keep_firing_since = a.keep_firing_since.or(ep.keep_firing_since);
                            close(ep, a.resolved_at.unwrap_or(ts), false);
                            track.open = false;
                            rt.open.remove(&a.labels);
                        }
                    }
                }
            }
            // Open alerts the rule no longer holds: pending ones that went away (upstream
            // deletes them at once) or everything a failed limit check discarded.
            let gone: Vec<Labels> = rt
                .open
                .iter()
                .filter(|l| !ar.active.contains_key(*l))
                .cloned()
                .collect();
            for labels in gone {
                rt.open.remove(&labels);
                if let Some(track) = rt.alerts.get_mut(&labels) {
                    track.open = false;
                    if let Some(ep) = track.episodes.last_mut() {
                        close(ep, ts, failed);
                    }
                }
            }
        }
    }

    fn report(
        self,
        groups: &[Group],
        last_eval: &[Option<Timestamp>],
        runs: Vec<GroupRun>,
        evaluations: usize,
        opts: &Options,
    ) -> Report {
        let mut rules = Vec::new();
        let mut alerts = Vec::new();
        for (gi, (g, tracks)) in groups.iter().zip(self.rules).enumerate() {
            let end_of_range = last_eval[gi].unwrap_or(opts.to);
            for (rule, rt) in g.rules().iter().zip(tracks) {
                let Rule::Alerting(ar) = rule else { continue };
                let mut summary = RuleSummary {
                    file: g.file().to_owned(),
                    group: g.name().to_owned(),
                    name: ar.name().to_owned(),
                    for_seconds: ar.hold_duration_ms() as f64 / 1000.0,
                    keep_firing_for_seconds: ar.keep_firing_for_ms() as f64 / 1000.0,
                    alerts: rt.alerts.len(),
                    times_fired: 0,
                    firing_seconds: 0.0,
                    flaps: 0,
                    pending_only: 0,
                    notifications: 0,
                    evaluation_errors: rt.errors,
                    last_error: rt.last_error,
                };
                for (labels, track) in rt.alerts {
                    let history = history(g, ar.name(), labels, track, end_of_range, opts);
                    summary.times_fired += history.times_fired;
                    summary.firing_seconds += history.firing_seconds;
                    summary.flaps += history.flaps;
                    summary.notifications += history.notifications;
                    summary.pending_only += history.episodes.iter().filter(|e| e.end == End::Cancelled).count();
                    alerts.push(history);
                }
                rules.push(summary);
            }
        }
        Report {
            from: rfc3339(opts.from),
            to: rfc3339(opts.to),
            evaluations,
            model: NotificationModel {
                repeat_interval_seconds: opts.repeat_interval_ms.max(0) as f64 / 1000.0,
                flap_window_seconds: opts.flap_window_ms.max(0) as f64 / 1000.0,
            },
            groups: runs,
            rules,
            alerts,
        }
    }
}

fn close(ep: &mut Ep, at: Timestamp, dropped: bool) {
    ep.resolved_at = Some(at);
    ep.end = if dropped {
        End::Dropped
    } else if ep.firing_at.is_some() {
        End::Resolved
    } else {
        End::Cancelled
    };
}

/// One alert's episodes with the notification model applied.
fn history(
    g: &Group,
    rule: &str,
    labels: Labels,
    track: Track,
    end_of_range: Timestamp,
    opts: &Options,
) -> AlertHistory {
    let mut out = AlertHistory {
        file: g.file().to_owned(),
        group: g.name().to_owned(),
        rule: rule.to_owned(),
        labels: labels.iter().map(|l| (l.name.to_owned(), l.value.to_owned())).collect(),
        annotations: track.annotations,
        episodes: Vec::with_capacity(track.episodes.len()),
        times_fired: 0,
        firing_seconds: 0.0,
        flaps: 0,
        notifications: 0,
    };
    let mut last_resolved: Option<Timestamp> = None;
    for ep in track.episodes {
        let mut firing_ms = 0;
        let mut notifications = 0u64;
        let mut flap = false;
        if let Some(f) = ep.firing_at {
            out.times_fired += 1;
            notifications += 1;
            // Repeats go out while the alert is still firing: strictly before it resolved,
            // or up to the last evaluation when it is still firing.
            let (until, still_firing) = match ep.end {
                End::Open => (end_of_range, true),
                _ => (ep.resolved_at.unwrap_or(end_of_range), false),
            };
            firing_ms = (until - f).max(0);
            if opts.repeat_interval_ms > 0 && firing_ms > 0 {
                let span = if still_firing { firing_ms } else { firing_ms - 1 };
                notifications += (span / opts.repeat_interval_ms) as u64;
            }
            if ep.end == End::Resolved {
                notifications += 1;
            }
            if let Some(r) = last_resolved
                && f - r <= opts.flap_window_ms
            {
                flap = true;
                out.flaps += 1;
            }
        }
        if ep.firing_at.is_some() && ep.end == End::Resolved {
            last_resolved = ep.resolved_at;
        }
        out.firing_seconds += firing_ms as f64 / 1000.0;
        out.notifications += notifications;
        out.episodes.push(Episode {
            pending_at: rfc3339(ep.active_at),
            firing_at: ep.firing_at.map(rfc3339),
            resolved_at: ep.resolved_at.map(rfc3339),
            keep_firing_since: ep.keep_firing_since.map(rfc3339),
            end: ep.end,
            active_at_start: ep.at_start,
            value: ep.value,
            firing_seconds: firing_ms as f64 / 1000.0,
            notifications,
            flap,
        });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Output.

fn seconds_text(s: f64) -> String {
    if s <= 0.0 {
        return "0s".to_owned();
    }
    watchfire_model::Duration::from_millis((s * 1000.0).round() as i64).to_string()
}

fn table(out: &mut String, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn alert_name(a: &AlertHistory) -> String {
    let labels: Vec<String> = a
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    format!("{}{{{}}}", a.rule, labels.join(", "))
}

impl Report {
    /// The report as text tables: a summary per rule, then every episode of every alert.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let groups = self.groups.len();
        out.push_str(&format!(
            "Backtest from {} to {}: {} alerting rule{} in {} group{}, {} evaluations.\n\n",
            self.from,
            self.to,
            self.rules.len(),
            if self.rules.len() == 1 { "" } else { "s" },
            groups,
            if groups == 1 { "" } else { "s" },
            self.evaluations
        ));
        let mut rows = vec![
            [
                "RULE",
                "GROUP",
                "FOR",
                "ALERTS",
                "FIRED",
                "FIRING TIME",
                "FLAPS",
                "PENDING ONLY",
                "NOTIFICATIONS",
                "ERRORS",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        for r in &self.rules {
            rows.push(vec![
                r.name.clone(),
                r.group.clone(),
                seconds_text(r.for_seconds),
                r.alerts.to_string(),
                r.times_fired.to_string(),
                seconds_text(r.firing_seconds),
                r.flaps.to_string(),
                r.pending_only.to_string(),
                r.notifications.to_string(),
                r.evaluation_errors.to_string(),
            ]);
        }
        table(&mut out, &rows);
        for r in self.rules.iter().filter(|r| r.evaluation_errors > 0) {
            out.push_str(&format!(
                "\n{} failed {} of its evaluations; last error: {}\n",
                r.name,
                r.evaluation_errors,
                r.last_error.as_deref().unwrap_or("unknown")
            ));
        }
        out.push('\n');
        if self.alerts.is_empty() {
            out.push_str("No alert was pending or firing in this range.\n");
        } else {
            let mut rows = vec![
                [
                    "ALERT",
                    "PENDING",
                    "FIRING",
                    "RESOLVED",
                    "FIRING FOR",
                    "NOTIFICATIONS",
                    "NOTE",
                ]
                .map(str::to_owned)
                .to_vec(),
            ];
            for a in &self.alerts {
                let name = alert_name(a);
                for e in &a.episodes {
                    let mut notes = Vec::new();
                    match e.end {
                        End::Resolved => {}
                        End::Cancelled => notes.push("never fired"),
                        End::Open if e.firing_at.is_some() => notes.push("still firing"),
                        End::Open => notes.push("still pending"),
                        End::Dropped => notes.push("dropped: limit exceeded"),
                    }
                    if e.active_at_start {
                        notes.push("active at start");
                    }
                    if e.flap {
                        notes.push("flap");
                    }
                    if e.keep_firing_since.is_some() && e.end == End::Resolved {
                        notes.push("held by keep_firing_for");
                    }
                    rows.push(vec![
                        name.clone(),
                        e.pending_at.clone(),
                        e.firing_at.clone().unwrap_or_else(|| "-".into()),
                        e.resolved_at.clone().unwrap_or_else(|| "-".into()),
                        if e.firing_at.is_some() {
                            seconds_text(e.firing_seconds)
                        } else {
                            "-".into()
                        },
                        e.notifications.to_string(),
                        notes.join(", "),
                    ]);
                }
            }
            table(&mut out, &rows);
        }
        out.push_str(&format!(
            "\nNotifications per alert: one when it starts firing, one when it resolves{}. \
             Alertmanager grouping, inhibition and silences are not applied, so this is an upper bound. \
             A flap is firing again within {} of resolving.\n",
            if self.model.repeat_interval_seconds > 0.0 {
                format!(
                    ", and one every {} (repeat_interval) while it keeps firing",
                    seconds_text(self.model.repeat_interval_seconds)
                )
            } else {
                String::new()
            },
            seconds_text(self.model.flap_window_seconds)
        ));
        out
    }
}

// ---------------------------------------------------------------------------------------------
// The read-only overlay.

/// Stored history plus what the backtest's own rules wrote: reads see both (for a series in
/// both, the backtest's sample wins at equal timestamps), writes go to the backtest's head.
struct Overlay {
    base: Arc<dyn Queryable>,
    own: MemoryStorage,
}

impl Queryable for Overlay {
    fn querier(&self, mint: Timestamp, maxt: Timestamp) -> watchfire_storage::Result<Box<dyn Querier>> {
        Ok(Box::new(OverlayQuerier {
            base: self.base.querier(mint, maxt)?,
            own: self.own.querier(mint, maxt)?,
        }))
    }
}

impl Appendable for Overlay {
    fn appender(&self) -> Box<dyn Appender> {
        self.own.appender()
    }
}

struct OverlayQuerier {
    base: Box<dyn Querier>,
    own: Box<dyn Querier>,
}

/// Every sample of a series with its start timestamp, or the error that ended reading it.
fn read_all(s: &dyn Series) -> watchfire_storage::Result<Vec<(Sample, Timestamp)>> {
    let mut it = s.iterator();
    let mut out = Vec::new();
    while it.next() {
        out.push((it.at(), it.at_st()));
    }
    match it.err() {
        Some(e) => Err(e.clone()),
        None => Ok(out),
    }
}

/// The samples of `own` and `base` in time order; `own` wins at equal timestamps. Start
/// timestamps are kept only when some sample has one.
fn merged_series(labels: Labels, own: Vec<(Sample, Timestamp)>, base: Vec<(Sample, Timestamp)>) -> VecSeries {
    let merged = merge_samples(own, base);
    let samples: Vec<Sample> = merged.iter().map(|(s, _)| *s).collect();
    if merged.iter().all(|(_, st)| *st == 0) {
        VecSeries::new(labels, samples)
    } else {
        VecSeries::with_start_timestamps(
            labels,
            samples,
            merged.into_iter().map(|(_, st)| st).collect::<Vec<_>>(),
        )
    }
}

/// The samples of `own` and `base` in time order; `own` wins at equal timestamps.
fn merge_samples(own: Vec<(Sample, Timestamp)>, base: Vec<(Sample, Timestamp)>) -> Vec<(Sample, Timestamp)> {
    let mut out = Vec::with_capacity(own.len() + base.len());
    let (mut i, mut j) = (0, 0);
    while i < own.len() || j < base.len() {
        match (own.get(i), base.get(j)) {
            (Some(a), Some(b)) if a.0.t == b.0.t => {
                out.push(*a);
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if b.0.t < a.0.t => {
                out.push(*b);
                j += 1;
            }
            (Some(a), _) => {
                out.push(*a);
                i += 1;
            }
            (None, Some(b)) => {
                out.push(*b);
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

impl Querier for OverlayQuerier {
    fn select(&self, sorted: bool, hints: Option<&SelectHints>, matchers: &[Matcher]) -> SeriesSet {
        let own: Vec<_> = self.own.select(true, hints, matchers).collect();
        if own.is_empty() {
            return self.base.select(sorted, hints, matchers);
        }
        let base: Vec<_> = self.base.select(true, hints, matchers).collect();
        let mut out: Vec<watchfire_storage::Result<Box<dyn Series>>> = Vec::with_capacity(own.len() + base.len());
        let mut own = own.into_iter().peekable();
        let mut base = base.into_iter().peekable();
        loop {
            let pick_own = match (own.peek(), base.peek()) {
                (None, None) => break,
                (Some(Err(_)), _) | (Some(_), None) => true,
                (_, Some(Err(_))) | (None, Some(_)) => false,
                (Some(Ok(a)), Some(Ok(b))) => match a.labels().cmp(b.labels()) {
                    std::cmp::Ordering::Less => true,
                    std::cmp::Ordering::Greater => false,
                    std::cmp::Ordering::Equal => {
                        let (Some(Ok(a)), Some(Ok(b))) = (own.next(), base.next()) else {
                            unreachable!("both were peeked as Ok")
                        };
                        let merged = read_all(&*a)
                            .and_then(|x| read_all(&*b).map(|y| merged_series(a.labels().clone(), x, y)))
                            .map(|s| Box::new(s) as Box<dyn Series>);
                        out.push(merged);
                        continue;
                    }
                },
            };
            let next = if pick_own { own.next() } else { base.next() };
            out.extend(next);
        }
        Box::new(out.into_iter())
    }

    fn label_names(&self, matchers: &[Matcher]) -> watchfire_storage::Result<Vec<String>> {
        let mut names: BTreeSet<String> = self.base.label_names(matchers)?.into_iter().collect();
        names.extend(self.own.label_names(matchers)?);
        Ok(names.into_iter().collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> watchfire_storage::Result<Vec<String>> {
        let mut values: BTreeSet<String> = self.base.label_values(name, matchers)?.into_iter().collect();
        values.extend(self.own.label_values(name, matchers)?);
        Ok(values.into_iter().collect())
    }
}
