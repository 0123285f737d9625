//! Recording and alerting rules (upstream `rules/recording.go`, `rules/alerting.go`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use watchfire_model::{Labels, LabelsBuilder, METRIC_NAME, Timestamp};
use watchfire_promql::Expr;
use watchfire_promql::engine::Value;
use watchfire_template::prometheus::{AlertData, Context, QueryFn, QuerySample, expand_alert};

use crate::group::EvalContext;

/// How long a resolved alert is kept so its resolution keeps being sent.
pub(crate) const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// The metric name of the alert state series.
pub const ALERT_METRIC_NAME: &str = "ALERTS";
/// The metric name of the alert `for` state series.
pub const ALERT_FOR_STATE_METRIC_NAME: &str = "ALERTS_FOR_STATE";
const ALERT_NAME_LABEL: &str = "alertname";
const ALERT_STATE_LABEL: &str = "alertstate";

/// A rule's health after its last evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Health {
    #[default]
    Unknown,
    Good,
    Bad,
}

impl Health {
    /// `"unknown"`, `"ok"` or `"err"`, as the API prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Good => "ok",
            Health::Bad => "err",
        }
    }
}

/// The state of an alert, or of an alerting rule (the highest state of its alerts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertState {
    /// The rule was never evaluated.
    #[default]
    Unknown,
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Unknown => "unknown",
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule. Times are milliseconds since the epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub state: AlertState,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    /// The value of the expression element that produced the alert at the last evaluation.
    pub value: f64,
    /// When the alert became pending.
    pub active_at: Timestamp,
    pub fired_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub last_sent_at: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    pub keep_firing_since: Option<Timestamp>,
}

impl Alert {
    /// Upstream's `needsSending`.
    pub(crate) fn needs_sending(&self, ts: Timestamp, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        // Resolved since the last send: send the resolution.
        if let Some(resolved) = self.resolved_at
            && self.last_sent_at.is_none_or(|sent| resolved > sent)
        {
            return true;
        }
        self.last_sent_at.is_none_or(|sent| sent + resend_delay_ms < ts)
    }
}

/// What every rule keeps about its last evaluation.
#[derive(Clone, Debug, Default)]
pub(crate) struct EvalStatus {
    pub health: Health,
    pub last_error: Option<String>,
    /// Wall-clock start of the last evaluation (ms).
    pub last_evaluation: Option<Timestamp>,
    pub evaluation_time: StdDuration,
}

/// A recording rule: its expression's result is stored as `record` with the rule labels.
#[derive(Clone, Debug)]
pub struct RecordingRule {
    pub(crate) name: String,
    pub(crate) expr: Arc<Expr>,
    pub(crate) labels: Labels,
    pub(crate) status: EvalStatus,
}

/// An alerting rule and its alerts.
#[derive(Clone, Debug)]
pub struct AlertingRule {
    pub(crate) name: String,
    pub(crate) expr: Arc<Expr>,
    pub(crate) hold: i64,
    pub(crate) keep_firing_for: i64,
    /// Rule labels (group labels overridden by the rule's own); values are templates.
    pub(crate) labels: Labels,
    /// Annotation templates.
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) active: HashMap<Labels, Alert>,
    /// Whether the `for` state was restored (or needs no restoring); `ALERTS` series are
    /// written only then.
    pub(crate) restored: bool,
    pub(crate) status: EvalStatus,
}

/// A rule of a group.
#[derive(Clone, Debug)]
pub enum Rule {
    Recording(RecordingRule),
    Alerting(AlertingRule),
}

fn merge_labels(group: &BTreeMap<String, String>, rule: &BTreeMap<String, String>) -> Labels {
    let mut all = group.clone();
    all.extend(rule.iter().map(|(k, v)| (k.clone(), v.clone())));
    Labels::from_pairs(all)
}

impl Rule {
    /// Builds a rule from its configuration; `group_labels` are overridden by the rule's own.
    pub fn from_config(
        config: &watchfire_config::rules::Rule,
        group_labels: &BTreeMap<String, String>,
        restored: bool,
    ) -> Result<Rule, String> {
        let expr = watchfire_promql::parse_expr(&config.expr).map_err(|e| e.to_string())?;
        let labels = merge_labels(group_labels, &config.labels);
        Ok(if config.is_alerting() {
            Rule::Alerting(AlertingRule {
                name: config.alert.clone(),
                expr: Arc::new(expr),
                hold: config.r#for.as_millis(),
                keep_firing_for: config.keep_firing_for.as_millis(),
                labels,
                annotations: config.annotations.clone(),
                active: HashMap::new(),
                restored,
                status: EvalStatus::default(),
            })
        } else {
            Rule::Recording(RecordingRule {
                name: config.record.clone(),
                expr: Arc::new(expr),
                labels,
                status: EvalStatus::default(),
            })
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.name,
            Rule::Alerting(r) => &r.name,
        }
    }

    pub fn labels(&self) -> &Labels {
        match self {
            Rule::Recording(r) => &r.labels,
            Rule::Alerting(r) => &r.labels,
        }
    }

    /// The canonical text of the rule's expression.
    pub fn query(&self) -> String {
        match self {
            Rule::Recording(r) => r.expr.to_string(),
            Rule::Alerting(r) => r.expr.to_string(),
        }
    }

    pub(crate) fn status(&self) -> &EvalStatus {
        match self {
            Rule::Recording(r) => &r.status,
            Rule::Alerting(r) => &r.status,
        }
    }

    pub(crate) fn status_mut(&mut self) -> &mut EvalStatus {
        match self {
            Rule::Recording(r) => &mut r.status,
            Rule::Alerting(r) => &mut r.status,
        }
    }

    pub fn health(&self) -> Health {
        self.status().health
    }

    pub fn last_error(&self) -> Option<&str> {
        self.status().last_error.as_deref()
    }

    /// Start of the last evaluation, ms since the epoch.
    pub fn last_evaluation(&self) -> Option<Timestamp> {
        self.status().last_evaluation
    }

    pub fn evaluation_time(&self) -> StdDuration {
        self.status().evaluation_time
    }

    /// Identity used to carry state across reloads (upstream `nameAndLabels`).
    pub(crate) fn identity(&self) -> String {
        format!("{}{}", self.name(), self.labels())
    }

    /// Evaluates the rule; the samples to append (at `ts - offset`) or an error.
    pub(crate) fn eval(
        &mut self,
        ts: Timestamp,
        offset_ms: i64,
        ctx: &EvalContext,
        limit: i64,
    ) -> Result<Vec<(Labels, f64)>, String> {
        match self {
            Rule::Recording(r) => r.eval(ts, offset_ms, ctx, limit),
            Rule::Alerting(r) => r.eval(ts, offset_ms, ctx, limit),
        }
    }
}

/// Runs `expr` as an instant query; scalars become a one-element vector without labels
/// (upstream `EngineQueryFunc`).
pub(crate) fn query_vector(ctx: &EvalContext, expr: &Expr, t: Timestamp) -> Result<Vec<(Labels, f64)>, String> {
    let storage: &dyn watchfire_storage::Queryable = &*ctx.storage;
    let res = ctx.engine.instant(storage, expr, t).map_err(|e| e.to_string())?;
    match res.value {
        Value::Vector(v) => Ok(v.into_iter().map(|s| (s.metric, s.f)).collect()),
        Value::Scalar { v, .. } => Ok(vec![(Labels::empty(), v)]),
        _ => Err("rule result is not a vector or scalar".to_owned()),
    }
}

/// The `query` function of templates: an instant query at `t`.
pub(crate) fn template_query(ctx: &EvalContext, t: Timestamp) -> QueryFn {
    let storage = ctx.storage.clone();
    let engine = ctx.engine.clone();
    Arc::new(move |q: &str| {
        let s: &dyn watchfire_storage::Queryable = &*storage;
        let res = engine.instant(s, q, t).map_err(|e| e.to_string())?;
        match res.value {
            Value::Vector(v) => Ok(v
                .into_iter()
                .map(|s| QuerySample {
                    labels: s.metric,
                    value: s.f,
                })
                .collect()),
            Value::Scalar { v, .. } => Ok(vec![QuerySample {
                labels: Labels::empty(),
                value: v,
            }]),
            _ => Err("rule result is not a vector or scalar".to_owned()),
        }
    })
}

impl RecordingRule {
    pub fn name(&self) -> &str {
        &self.name
    }

    fn eval(
        &mut self,
        ts: Timestamp,
        offset_ms: i64,
        ctx: &EvalContext,
        limit: i64,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let vector = query_vector(ctx, &self.expr, ts - offset_ms)?;
        let mut out = Vec::with_capacity(vector.len());
        let mut seen = std::collections::HashSet::with_capacity(vector.len());
        for (metric, v) in vector {
            let mut b = LabelsBuilder::from(&metric);
            b.set(METRIC_NAME, &self.name);
            for l in &self.labels {
                b.set(l.name, l.value);
            }
            let labels = b.build();
            if !seen.insert(labels.clone()) {
                return Err("vector contains metrics with the same labelset after applying rule labels".to_owned());
            }
            out.push((labels, v));
        }
        if limit > 0 && out.len() as i64 > limit {
            return Err(format!("exceeded limit of {limit} with {} series", out.len()));
        }
        Ok(out)
    }
}

impl AlertingRule {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rule's state: the highest state of its alerts, `Unknown` before the first
    /// evaluation.
    pub fn state(&self) -> AlertState {
        if self.status.last_evaluation.is_none() {
            return AlertState::Unknown;
        }
        self.active
            .values()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive)
            .max(AlertState::Inactive)
    }

    /// Every alert kept, resolved ones included, sorted by labels.
    pub fn alerts(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self.active.values().collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    /// Alerts not resolved (pending or firing), as upstream's `ActiveAlerts`.
    pub fn active_alerts(&self) -> Vec<&Alert> {
        self.alerts().into_iter().filter(|a| a.resolved_at.is_none()).collect()
    }

    pub fn hold_duration_ms(&self) -> i64 {
        self.hold
    }

    pub fn keep_firing_for_ms(&self) -> i64 {
        self.keep_firing_for
    }

    pub fn annotations(&self) -> &BTreeMap<String, String> {
        &self.annotations
    }

    fn alert_series(&self, alert: &Alert, metric: &str) -> Labels {
        let mut b = LabelsBuilder::from(&self.labels);
        for l in &alert.labels {
            b.set(l.name, l.value);
        }
        b.set(METRIC_NAME, metric);
        b.set(ALERT_NAME_LABEL, &self.name);
        if metric == ALERT_METRIC_NAME {
            b.set(ALERT_STATE_LABEL, alert.state.as_str());
        }
        b.build()
    }

    /// The labels every `ALERTS_FOR_STATE` series of this rule has (upstream
    /// `QueryForStateSeries` matchers): rule labels without templates, name and alertname.
    pub(crate) fn for_state_matchers(&self) -> Vec<watchfire_model::Matcher> {
        let mut b = LabelsBuilder::from(&self.labels);
        b.set(METRIC_NAME, ALERT_FOR_STATE_METRIC_NAME);
        b.set(ALERT_NAME_LABEL, &self.name);
        b.build()
            .iter()
            .filter(|l| !l.value.contains("{{"))
            .filter_map(|l| watchfire_model::Matcher::new(watchfire_model::MatchType::Equal, l.name, l.value).ok())
            .collect()
    }

    fn eval(
        &mut self,
        ts: Timestamp,
        offset_ms: i64,
        ctx: &EvalContext,
        limit: i64,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let res = query_vector(ctx, &self.expr, ts - offset_ms)?;
        let tctx = Context {
            query: Some(template_query(ctx, ts)),
            timestamp_ms: ts,
            external_url: ctx.external_url.clone(),
        };
        let mut alerts: HashMap<Labels, Alert> = HashMap::with_capacity(res.len());
        for (metric, value) in res {
            let data = AlertData::new(&metric, &ctx.external_labels, &ctx.external_url, value);
            let expand = |text: &str| match expand_alert(&self.name, text, &data, &tctx) {
                Ok(s) => s,
                Err(e) => {
                    if ctx.log_failures {
                        tracing::warn!(alert = %self.name, err = %e, "expanding alert template failed");
                    }
                    format!("<error expanding template: {e}>")
                }
            };
            let mut b = LabelsBuilder::from(&metric);
            b.del(METRIC_NAME);
            for l in &self.labels {
                b.set(l.name, &expand(l.value));
            }
            b.set(ALERT_NAME_LABEL, &self.name);
            let annotations: BTreeMap<String, String> =
                self.annotations.iter().map(|(k, v)| (k.clone(), expand(v))).collect();
            let labels = b.build();
            if alerts.contains_key(&labels) {
                return Err("vector contains metrics with the same labelset after applying alert labels".to_owned());
            }
            alerts.insert(
                labels.clone(),
                Alert {
                    state: AlertState::Pending,
                    labels,
                    annotations,
                    value,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    last_sent_at: None,
                    valid_until: None,
                    keep_firing_since: None,
                },
            );
        }

        let result_fps: std::collections::HashSet<Labels> = alerts.keys().cloned().collect();
        for (h, a) in alerts {
            if let Some(existing) = self.active.get_mut(&h)
                && existing.state != AlertState::Inactive
            {
                existing.value = a.value;
                existing.annotations = a.annotations;
                continue;
            }
            self.active.insert(h, a);
        }

        let mut vec = Vec::new();
        let mut num_active_pending = 0i64;
        let mut remove = Vec::new();
        let mut keys: Vec<Labels> = self.active.keys().cloned().collect();
        keys.sort();
        for fp in keys {
            let a = self.active.get_mut(&fp).expect("key taken from the map");
            if !result_fps.contains(&fp) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && self.keep_firing_for > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    if ts - since < self.keep_firing_for {
                        keep_firing = true;
                    }
                }
                if a.state == AlertState::Pending || a.resolved_at.is_some_and(|r| ts - r > RESOLVED_RETENTION_MS) {
                    remove.push(fp.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            num_active_pending += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= self.hold {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            if a.state == AlertState::Firing && ts - a.active_at < self.hold {
                a.state = AlertState::Pending;
                a.fired_at = None;
                a.last_sent_at = None;
                a.keep_firing_since = None;
            }
            if self.restored {
                let a = a.clone();
                vec.push((self.alert_series(&a, ALERT_METRIC_NAME), 1.0));
                vec.push((
                    self.alert_series(&a, ALERT_FOR_STATE_METRIC_NAME),
                    a.active_at.div_euclid(1000) as f64,
                ));
            }
        }
        for fp in remove {
            self.active.remove(&fp);
        }
        if limit > 0 && num_active_pending > limit {
            self.active.clear();
            return Err(format!("exceeded limit of {limit} with {num_active_pending} alerts"));
        }
        Ok(vec)
    }

    /// Upstream `sendAlerts`: the alerts to send now, marked as sent.
    pub(crate) fn alerts_to_send(&mut self, ts: Timestamp, resend_delay_ms: i64, interval_ms: i64) -> Vec<Alert> {
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if a.needs_sending(ts, resend_delay_ms) {
                a.last_sent_at = Some(ts);
                let delta = resend_delay_ms.max(interval_ms);
                a.valid_until = Some(ts + 4 * delta);
                out.push(a.clone());
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}
