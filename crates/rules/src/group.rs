//! Rule groups (upstream `rules/group.go`): sequential evaluation at one timestamp, appending
//! results, staleness, sending alerts, restoring the `for` state.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use watchfire_model::{Labels, Timestamp, stale_nan};
use watchfire_promql::engine::Engine;
use watchfire_storage::{Appendable, Queryable};

use crate::metrics::RuleMetrics;
use crate::rule::Rule;
use crate::sender::{OutgoingAlert, Sender, table_link_for_expression};

/// Storage the rules read from and write to.
pub trait RuleStorage: Queryable + Appendable {}

impl<T: Queryable + Appendable + ?Sized> RuleStorage for T {}

/// Everything a group evaluation needs besides the group.
#[derive(Clone)]
pub struct EvalContext {
    pub storage: Arc<dyn RuleStorage>,
    pub engine: Engine,
    /// `global.external_labels`, for `$externalLabels`.
    pub external_labels: Labels,
    /// `--web.external-url`, for `$externalURL` and generator URLs.
    pub external_url: String,
    /// Where alerts go; `None` drops them (promtool).
    pub sender: Option<Arc<dyn Sender>>,
    /// `--rules.alert.resend-delay` (default 1m), ms.
    pub resend_delay_ms: i64,
    /// `--rules.alert.for-outage-tolerance` (default 1h), ms.
    pub outage_tolerance_ms: i64,
    /// `--rules.alert.for-grace-period` (default 10m), ms.
    pub for_grace_period_ms: i64,
    /// Metrics to update, if any.
    pub metrics: Option<Arc<RuleMetrics>>,
    /// Whether failed evaluations and template expansions are logged (backtests, which run
    /// thousands of evaluations, report them instead).
    pub log_failures: bool,
}

impl std::fmt::Debug for EvalContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalContext")
            .field("external_labels", &self.external_labels)
            .field("external_url", &self.external_url)
            .field("resend_delay_ms", &self.resend_delay_ms)
            .finish_non_exhaustive()
    }
}

impl EvalContext {
    /// A context with upstream's defaults (resend delay 1m, outage tolerance 1h, grace period
    /// 10m), no external labels or URL and no sender.
    pub fn new(storage: Arc<dyn RuleStorage>, engine: Engine) -> EvalContext {
        EvalContext {
            storage,
            engine,
            external_labels: Labels::empty(),
            external_url: String::new(),
            sender: None,
            resend_delay_ms: 60_000,
            outage_tolerance_ms: 3_600_000,
            for_grace_period_ms: 600_000,
            metrics: None,
            log_failures: true,
        }
    }
}

/// How a group is built.
#[derive(Clone, Debug)]
pub struct GroupOptions {
    /// The global `evaluation_interval`, used when the group sets none.
    pub default_interval_ms: i64,
    /// The global `rule_query_offset`, used when the group sets none.
    pub default_query_offset_ms: i64,
    /// Whether the `for` state must be restored before `ALERTS` series are written.
    pub should_restore: bool,
}

impl Default for GroupOptions {
    fn default() -> Self {
        GroupOptions {
            default_interval_ms: 60_000,
            default_query_offset_ms: 0,
            should_restore: false,
        }
    }
}

/// A rule group and its evaluation state.
#[derive(Debug)]
pub struct Group {
    name: String,
    file: String,
    interval_ms: i64,
    query_offset_ms: i64,
    limit: i64,
    pub(crate) rules: Vec<Rule>,
    /// The configuration the group was built from (for reload comparison).
    config: watchfire_config::rules::RuleGroup,
    series_in_previous_eval: Vec<HashSet<Labels>>,
    stale_series: Vec<Labels>,
    evaluation_time: StdDuration,
    last_evaluation: Option<Timestamp>,
    last_eval_timestamp: Option<Timestamp>,
    pub(crate) should_restore: bool,
}

/// Upstream's `GroupKey`.
pub(crate) fn group_key(file: &str, name: &str) -> String {
    format!("{file};{name}")
}

impl Group {
    /// Builds a group from its configuration; `file` is the rule file's path.
    pub fn new(file: &Path, config: &watchfire_config::rules::RuleGroup, opts: &GroupOptions) -> Result<Group, String> {
        let mut rules = Vec::with_capacity(config.rules.len());
        for (i, r) in config.rules.iter().enumerate() {
            let rule = Rule::from_config(&r.value, &config.labels, !opts.should_restore).map_err(|e| {
                format!(
                    "{}: group {:?}, rule {}, {:?}: could not parse expression: {e}",
                    file.display(),
                    config.name,
                    i + 1,
                    r.value.name()
                )
            })?;
            rules.push(rule);
        }
        let n = rules.len();
        Ok(Group {
            name: config.name.clone(),
            file: file.to_string_lossy().into_owned(),
            interval_ms: config.interval.map_or(opts.default_interval_ms, |d| d.as_millis()),
            query_offset_ms: config
                .query_offset
                .map_or(opts.default_query_offset_ms, |d| d.as_millis()),
            limit: config.limit,
            rules,
            config: config.clone(),
            series_in_previous_eval: vec![HashSet::new(); n],
            stale_series: Vec::new(),
            evaluation_time: StdDuration::ZERO,
            last_evaluation: None,
            last_eval_timestamp: None,
            should_restore: opts.should_restore,
        })
    }

    /// Parses rule file text into groups (all of the file's groups).
    pub fn from_file(path: &Path, src: &str, opts: &GroupOptions) -> Result<Vec<Group>, String> {
        let file = watchfire_config::rules::RuleFile::parse(src, path).map_err(|e| e.to_string())?;
        file.groups.iter().map(|g| Group::new(path, &g.value, opts)).collect()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn key(&self) -> String {
        group_key(&self.file, &self.name)
    }

    pub fn interval_ms(&self) -> i64 {
        self.interval_ms
    }

    pub fn query_offset_ms(&self) -> i64 {
        self.query_offset_ms
    }

    pub fn limit(&self) -> i64 {
        self.limit
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The configuration the group was built from.
    pub fn config(&self) -> &watchfire_config::rules::RuleGroup {
        &self.config
    }

    /// How long the last evaluation took.
    pub fn evaluation_time(&self) -> StdDuration {
        self.evaluation_time
    }

    /// Wall-clock start of the last evaluation (ms).
    pub fn last_evaluation(&self) -> Option<Timestamp> {
        self.last_evaluation
    }

    /// The scheduled timestamp of the last evaluation (ms).
    pub fn last_eval_timestamp(&self) -> Option<Timestamp> {
        self.last_eval_timestamp
    }

    /// Upstream `Group.Equals`: same name, file, interval, limit, offset and rules.
    pub(crate) fn same_as(&self, other: &Group) -> bool {
        self.name == other.name
            && self.file == other.file
            && self.interval_ms == other.interval_ms
            && self.limit == other.limit
            && self.query_offset_ms == other.query_offset_ms
            && self.config.labels == other.config.labels
            && self.config.rules.len() == other.config.rules.len()
            && self
                .config
                .rules
                .iter()
                .zip(&other.config.rules)
                .all(|(a, b)| a.value == b.value)
    }

    /// The group's phase within its interval, in nanoseconds (upstream `hash() % interval`):
    /// xxhash64 of the label set `{file, name}` as Prometheus' `Labels.Hash` computes it.
    pub fn offset_nanos(&self) -> i64 {
        let mut b = Vec::with_capacity(self.file.len() + self.name.len() + 12);
        for (k, v) in [("file", self.file.as_str()), ("name", self.name.as_str())] {
            b.extend_from_slice(k.as_bytes());
            b.push(0xff);
            b.extend_from_slice(v.as_bytes());
            b.push(0xff);
        }
        let h = xxhash_rust::xxh64::xxh64(&b, 0);
        let interval = (self.interval_ms as u64).saturating_mul(1_000_000).max(1);
        (h % interval) as i64
    }

    /// Upstream `EvalTimestamp`: the latest consistently slotted evaluation time at or before
    /// `now_nanos`.
    pub fn eval_timestamp_nanos(&self, now_nanos: i64) -> i64 {
        let offset = self.offset_nanos();
        let interval = self.interval_ms.saturating_mul(1_000_000).max(1);
        let adj = now_nanos - offset;
        let base = adj - adj.rem_euclid(interval);
        base + offset
    }

    /// Upstream `CopyState`: carries alerts and previous-evaluation series over from the
    /// group this one replaces, matching rules by name and labels.
    pub(crate) fn copy_state(&mut self, from: &mut Group) {
        self.evaluation_time = from.evaluation_time;
        self.last_evaluation = from.last_evaluation;
        let mut by_identity: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in from.rules.iter().enumerate() {
            by_identity.entry(r.identity()).or_default().push(i);
        }
        for (i, rule) in self.rules.iter_mut().enumerate() {
            let Some(indexes) = by_identity.get_mut(&rule.identity()) else {
                continue;
            };
            if indexes.is_empty() {
                continue;
            }
            let fi = indexes.remove(0);
            self.series_in_previous_eval[i] = std::mem::take(&mut from.series_in_previous_eval[fi]);
            if let (Rule::Alerting(new), Rule::Alerting(old)) = (rule, &from.rules[fi]) {
                new.active
                    .extend(old.active.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        self.stale_series = std::mem::take(&mut from.stale_series);
        for indexes in by_identity.values() {
            for &fi in indexes {
                self.stale_series.extend(from.series_in_previous_eval[fi].drain());
            }
        }
    }

    /// Moves every previously written series to the stale list (the group was removed).
    pub(crate) fn mark_all_stale(&mut self) {
        for set in &mut self.series_in_previous_eval {
            self.stale_series.extend(set.drain());
        }
    }

    /// Evaluates every rule at `ts` (ms), as upstream's `Group.Eval` followed by the
    /// bookkeeping of `DefaultEvalIterationFunc`. `wall_now` is the wall-clock start (ms),
    /// recorded as the last evaluation time.
    pub fn eval(&mut self, ts: Timestamp, ctx: &EvalContext) {
        self.eval_at(ts, ts, ctx);
    }

    /// [`Group::eval`] with a separate wall-clock time for `lastEvaluation`.
    pub fn eval_at(&mut self, ts: Timestamp, wall_now: Timestamp, ctx: &EvalContext) {
        let key = self.key();
        let start = Instant::now();
        if let Some(m) = &ctx.metrics {
            m.iterations_scheduled.with_label_values(&[&key]).inc();
        }
        let offset = self.query_offset_ms;
        let mut samples_total = 0usize;
        for i in 0..self.rules.len() {
            let rule_start = Instant::now();
            if let Some(m) = &ctx.metrics {
                m.eval_total.with_label_values(&[&key]).inc();
            }
            let result = self.rules[i].eval(ts, offset, ctx, self.limit);
            match result {
                Err(e) => {
                    if ctx.log_failures {
                        tracing::warn!(group = %self.name, rule = %self.rules[i].name(), err = %e, "evaluating rule failed");
                    }
                    let st = self.rules[i].status_mut();
                    st.health = crate::Health::Bad;
                    st.last_error = Some(e);
                    if let Some(m) = &ctx.metrics {
                        m.eval_failures.with_label_values(&[&key]).inc();
                    }
                }
                Ok(vector) => {
                    {
                        let st = self.rules[i].status_mut();
                        st.health = crate::Health::Good;
                        st.last_error = None;
                    }
                    samples_total += vector.len();
                    if let Rule::Alerting(ar) = &mut self.rules[i] {
                        let alerts = ar.alerts_to_send(ts, ctx.resend_delay_ms, self.interval_ms);
                        if let Some(sender) = &ctx.sender
                            && !alerts.is_empty()
                        {
                            let link = format!(
                                "{}{}",
                                ctx.external_url,
                                table_link_for_expression(&ar.expr.to_string())
                            );
                            sender.send(alerts.iter().map(|a| OutgoingAlert::from_alert(a, &link)).collect());
                        }
                    }
                    self.append_results(i, ts - offset, vector, ctx, &key);
                }
            }
            let elapsed = rule_start.elapsed();
            if let Some(m) = &ctx.metrics {
                m.eval_duration.observe(elapsed.as_secs_f64());
            }
            let st = self.rules[i].status_mut();
            st.evaluation_time = elapsed;
            st.last_evaluation = Some(wall_now);
        }
        self.cleanup_stale_series(ts, ctx);
        let elapsed = start.elapsed();
        self.evaluation_time = elapsed;
        self.last_evaluation = Some(wall_now);
        self.last_eval_timestamp = Some(ts);
        if let Some(m) = &ctx.metrics {
            m.group_samples.with_label_values(&[&key]).set(samples_total as f64);
            m.iteration_duration.observe(elapsed.as_secs_f64());
            m.group_last_duration
                .with_label_values(&[&key])
                .set(elapsed.as_secs_f64());
            m.group_last_eval_time
                .with_label_values(&[&key])
                .set(ts as f64 / 1000.0);
            let sum: f64 = self.rules.iter().map(|r| r.evaluation_time().as_secs_f64()).sum();
            m.group_last_rule_duration_sum.with_label_values(&[&key]).set(sum);
        }
    }

    /// Appends one rule's samples at `t` plus stale markers for vanished series, committing
    /// once for the rule (as upstream, so later rules of the group see the results).
    fn append_results(&mut self, i: usize, t: Timestamp, vector: Vec<(Labels, f64)>, ctx: &EvalContext, key: &str) {
        let mut app = ctx.storage.appender();
        let mut returned = HashSet::with_capacity(vector.len());
        for (labels, v) in vector {
            match app.append(None, &labels, t, v) {
                Ok(_) => {
                    returned.insert(labels);
                }
                Err(e) => {
                    let st = self.rules[i].status_mut();
                    st.health = crate::Health::Bad;
                    st.last_error = Some(e.to_string());
                    if !e.is_sample_rejection() {
                        tracing::warn!(err = %e, sample = %labels, "rule evaluation result discarded");
                    }
                }
            }
        }
        for lset in &self.series_in_previous_eval[i] {
            if !returned.contains(lset)
                && let Err(e) = app.append(None, lset, t, stale_nan())
                && !e.is_sample_rejection()
            {
                tracing::warn!(err = %e, sample = %lset, "adding stale sample failed");
            }
        }
        match app.commit() {
            Ok(()) => self.series_in_previous_eval[i] = returned,
            Err(e) => {
                let st = self.rules[i].status_mut();
                st.health = crate::Health::Bad;
                st.last_error = Some(e.to_string());
                if let Some(m) = &ctx.metrics {
                    m.eval_failures.with_label_values(&[key]).inc();
                }
                tracing::warn!(err = %e, "rule sample appending failed");
            }
        }
    }

    /// Writes stale markers for series of rules no longer configured.
    pub(crate) fn cleanup_stale_series(&mut self, ts: Timestamp, ctx: &EvalContext) {
        if self.stale_series.is_empty() {
            return;
        }
        let mut app = ctx.storage.appender();
        let t = ts - self.query_offset_ms;
        for s in &self.stale_series {
            if let Err(e) = app.append(None, s, t, stale_nan())
                && !e.is_sample_rejection()
            {
                tracing::warn!(err = %e, sample = %s, "adding stale sample for previous configuration failed");
            }
        }
        match app.commit() {
            Ok(()) => self.stale_series.clear(),
            Err(e) => tracing::warn!(err = %e, "stale sample appending for previous configuration failed"),
        }
    }

    /// Upstream `RestoreForState` at `ts` (ms): shifts the `ActiveAt` of pending alerts by
    /// the outage, as read from `ALERTS_FOR_STATE`, and marks every alerting rule restored.
    pub fn restore_for_state(&mut self, ts: Timestamp, ctx: &EvalContext) {
        let mint = ts - ctx.outage_tolerance_ms;
        let querier = match ctx.storage.querier(mint, ts) {
            Ok(q) => Some(q),
            Err(e) => {
                tracing::error!(err = %e, "failed to get querier");
                None
            }
        };
        for rule in &mut self.rules {
            let Rule::Alerting(ar) = rule else { continue };
            let hold = ar.hold;
            let Some(q) = &querier else {
                ar.restored = true;
                continue;
            };
            if hold < ctx.for_grace_period_ms {
                ar.restored = true;
                continue;
            }
            let matchers = ar.for_state_matchers();
            let mut by_labels: BTreeMap<Labels, (Timestamp, f64)> = BTreeMap::new();
            for series in q.select(false, None, &matchers) {
                let series = match series {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(err = %e, alertname = %ar.name, "failed to restore 'for' state");
                        by_labels.clear();
                        break;
                    }
                };
                let mut it = series.iterator();
                let mut last = None;
                while it.next() {
                    let s = it.at();
                    last = Some((s.t, s.v));
                }
                if let Some(last) = last {
                    by_labels.insert(series.labels().without_metric_name(), last);
                }
            }
            for a in ar.active.values_mut() {
                let Some(&(t, v)) = by_labels.get(&a.labels) else {
                    continue;
                };
                if watchfire_model::is_stale_nan(v) {
                    continue;
                }
                // Go truncates to whole seconds on both sides.
                let down_at = t.div_euclid(1000) * 1000;
                let mut restored_active_at = (v as i64) * 1000;
                let time_spent_pending = down_at - restored_active_at;
                let remaining = hold - time_spent_pending;
                if remaining <= 0 {
                    // It was firing when the server went down.
                } else if remaining < ctx.for_grace_period_ms {
                    restored_active_at = ts + ctx.for_grace_period_ms - hold;
                } else {
                    restored_active_at += ts - down_at;
                }
                a.active_at = restored_active_at;
            }
            ar.restored = true;
        }
        self.should_restore = false;
    }
}
