//! The `prometheus_rule_*` metrics of upstream's rule manager.

use prometheus::{CounterVec, GaugeVec, Histogram, HistogramOpts, Opts, Registry};

/// Rule evaluation metrics, labelled by `rule_group` (`file;name`).
#[derive(Clone, Debug)]
pub struct RuleMetrics {
    pub eval_duration: Histogram,
    pub iteration_duration: Histogram,
    pub iterations_missed: CounterVec,
    pub iterations_scheduled: CounterVec,
    pub eval_total: CounterVec,
    pub eval_failures: CounterVec,
    pub group_interval: GaugeVec,
    pub group_last_eval_time: GaugeVec,
    pub group_last_duration: GaugeVec,
    pub group_last_rule_duration_sum: GaugeVec,
    pub group_last_restore_duration: GaugeVec,
    pub group_rules: GaugeVec,
    pub group_samples: GaugeVec,
}

fn counter(r: Option<&Registry>, name: &str, help: &str) -> Result<CounterVec, prometheus::Error> {
    let c = CounterVec::new(Opts::new(name, help), &["rule_group"])?;
    if let Some(r) = r {
        r.register(Box::new(c.clone()))?;
    }
    Ok(c)
}

fn gauge(r: Option<&Registry>, name: &str, help: &str) -> Result<GaugeVec, prometheus::Error> {
    let g = GaugeVec::new(Opts::new(name, help), &["rule_group"])?;
    if let Some(r) = r {
        r.register(Box::new(g.clone()))?;
    }
    Ok(g)
}

fn histogram(r: Option<&Registry>, name: &str, help: &str) -> Result<Histogram, prometheus::Error> {
    let h = Histogram::with_opts(HistogramOpts::new(name, help))?;
    if let Some(r) = r {
        r.register(Box::new(h.clone()))?;
    }
    Ok(h)
}

impl RuleMetrics {
    /// Creates the metrics, registered on `registry` when given.
    pub fn new(registry: Option<&Registry>) -> Result<RuleMetrics, prometheus::Error> {
        let r = registry;
        Ok(RuleMetrics {
            eval_duration: histogram(
                r,
                "prometheus_rule_evaluation_duration_histogram_seconds",
                "The duration for a rule to execute.",
            )?,
            iteration_duration: histogram(
                r,
                "prometheus_rule_group_duration_histogram_seconds",
                "The duration of rule group evaluations.",
            )?,
            iterations_missed: counter(
                r,
                "prometheus_rule_group_iterations_missed_total",
                "The total number of rule group evaluations missed due to slow rule group evaluation.",
            )?,
            iterations_scheduled: counter(
                r,
                "prometheus_rule_group_iterations_total",
                "The total number of scheduled rule group evaluations, whether executed or missed.",
            )?,
            eval_total: counter(
                r,
                "prometheus_rule_evaluations_total",
                "The total number of rule evaluations.",
            )?,
            eval_failures: counter(
                r,
                "prometheus_rule_evaluation_failures_total",
                "The total number of rule evaluation failures.",
            )?,
            group_interval: gauge(
                r,
                "prometheus_rule_group_interval_seconds",
                "The interval of a rule group.",
            )?,
            group_last_eval_time: gauge(
                r,
                "prometheus_rule_group_last_evaluation_timestamp_seconds",
                "The timestamp of the last rule group evaluation in seconds.",
            )?,
            group_last_duration: gauge(
                r,
                "prometheus_rule_group_last_duration_seconds",
                "The duration of the last rule group evaluation.",
            )?,
            group_last_rule_duration_sum: gauge(
                r,
                "prometheus_rule_group_last_rule_duration_sum_seconds",
                "The sum of time in seconds it took to evaluate each rule in the group regardless of concurrency. This should be higher than the group duration if rules are evaluated concurrently.",
            )?,
            group_last_restore_duration: gauge(
                r,
                "prometheus_rule_group_last_restore_duration_seconds",
                "The duration of the last alert rules alerts restoration using the `ALERTS_FOR_STATE` series.",
            )?,
            group_rules: gauge(r, "prometheus_rule_group_rules", "The number of rules.")?,
            group_samples: gauge(
                r,
                "prometheus_rule_group_last_evaluation_samples",
                "The number of samples returned during the last rule group evaluation.",
            )?,
        })
    }

    /// Drops every series of the group `key` (a removed group).
    pub(crate) fn remove_group(&self, key: &str) {
        for c in [
            &self.iterations_missed,
            &self.iterations_scheduled,
            &self.eval_total,
            &self.eval_failures,
        ] {
            let _ = c.remove_label_values(&[key]);
        }
        for g in [
            &self.group_interval,
            &self.group_last_eval_time,
            &self.group_last_duration,
            &self.group_last_rule_duration_sum,
            &self.group_last_restore_duration,
            &self.group_rules,
            &self.group_samples,
        ] {
            let _ = g.remove_label_values(&[key]);
        }
    }
}
