//! Self-metrics of scraping, with upstream's `prometheus_target_*` names (scrape/metrics.go).

use std::sync::Arc;
use std::time::Duration;

use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};
use watchfire_discovery::metrics::{SummaryVec, register_summary};

fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> prometheus::Result<C> {
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn counter(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    reg(r, IntCounter::new(name, help)?)
}

/// The scrape self-metrics.
#[derive(Debug)]
pub struct ScrapeMetrics {
    pub scrape_pools: IntCounter,
    pub scrape_pools_failed: IntCounter,
    pub pool_reloads: IntCounter,
    pub pool_reloads_failed: IntCounter,
    pub reload_length: Arc<SummaryVec>,
    pub exceeded_target_limit: IntCounter,
    pub pool_target_limit: GaugeVec,
    pub pool_targets: GaugeVec,
    pub pool_syncs: IntCounterVec,
    pub sync_failed: IntCounterVec,
    pub sync_length: Arc<SummaryVec>,
    pub sync_length_histogram: HistogramVec,
    pub exceeded_body_size_limit: IntCounter,
    pub cache_flush_forced: IntCounter,
    pub interval_length: Arc<SummaryVec>,
    pub interval_length_histogram: HistogramVec,
    pub exceeded_sample_limit: IntCounter,
    pub sample_duplicate: IntCounter,
    pub sample_out_of_order: IntCounter,
    pub sample_out_of_bounds: IntCounter,
    pub exceeded_label_limits: IntCounter,
}

impl ScrapeMetrics {
    /// Creates and registers every metric on `r`.
    pub fn new(r: &Registry) -> prometheus::Result<Self> {
        let buckets = vec![0.01, 0.1, 1.0, 10.0];
        Ok(ScrapeMetrics {
            scrape_pools: counter(
                r,
                "prometheus_target_scrape_pools_total",
                "Total number of scrape pool creation attempts.",
            )?,
            scrape_pools_failed: counter(
                r,
                "prometheus_target_scrape_pools_failed_total",
                "Total number of scrape pool creations that failed.",
            )?,
            pool_reloads: counter(
                r,
                "prometheus_target_scrape_pool_reloads_total",
                "Total number of scrape pool reloads.",
            )?,
            pool_reloads_failed: counter(
                r,
                "prometheus_target_scrape_pool_reloads_failed_total",
                "Total number of failed scrape pool reloads.",
            )?,
            reload_length: register_summary(
                r,
                "prometheus_target_reload_length_seconds",
                "Actual interval to reload the scrape pool with a given configuration.",
                &["interval"],
            )?,
            exceeded_target_limit: counter(
                r,
                "prometheus_target_scrape_pool_exceeded_target_limit_total",
                "Total number of times scrape pools hit the target limit, during sync or config reload.",
            )?,
            pool_target_limit: reg(
                r,
                GaugeVec::new(
                    Opts::new(
                        "prometheus_target_scrape_pool_target_limit",
                        "Maximum number of targets allowed in this scrape pool.",
                    ),
                    &["scrape_job"],
                )?,
            )?,
            pool_targets: reg(
                r,
                GaugeVec::new(
                    Opts::new(
                        "prometheus_target_scrape_pool_targets",
                        "Current number of targets in this scrape pool.",
                    ),
                    &["scrape_job"],
                )?,
            )?,
            pool_syncs: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "prometheus_target_scrape_pool_sync_total",
                        "Total number of syncs that were executed on a scrape pool.",
                    ),
                    &["scrape_job"],
                )?,
            )?,
            sync_failed: reg(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "prometheus_target_sync_failed_total",
                        "Total number of target sync failures.",
                    ),
                    &["scrape_job"],
                )?,
            )?,
            sync_length: register_summary(
                r,
                "prometheus_target_sync_length_seconds",
                "Actual interval to sync the scrape pool.",
                &["scrape_job"],
            )?,
            sync_length_histogram: reg(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "prometheus_target_sync_length_histogram_seconds",
                        "Actual interval to sync the scrape pool.",
                    )
                    .buckets(buckets.clone()),
                    &["scrape_job"],
                )?,
            )?,
            exceeded_body_size_limit: counter(
                r,
                "prometheus_target_scrapes_exceeded_body_size_limit_total",
                "Total number of scrapes that hit the body size limit",
            )?,
            cache_flush_forced: counter(
                r,
                "prometheus_target_scrapes_cache_flush_forced_total",
                "How many times a scrape cache was flushed due to getting big while scrapes are failing.",
            )?,
            interval_length: register_summary(
                r,
                "prometheus_target_interval_length_seconds",
                "Actual intervals between scrapes.",
                &["interval"],
            )?,
            interval_length_histogram: reg(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "prometheus_target_interval_length_histogram_seconds",
                        "Actual intervals between scrapes.",
                    )
                    .buckets(buckets),
                    &["interval"],
                )?,
            )?,
            exceeded_sample_limit: counter(
                r,
                "prometheus_target_scrapes_exceeded_sample_limit_total",
                "Total number of scrapes that hit the sample limit and were rejected.",
            )?,
            sample_duplicate: counter(
                r,
                "prometheus_target_scrapes_sample_duplicate_timestamp_total",
                "Total number of samples rejected due to duplicate timestamps but different values.",
            )?,
            sample_out_of_order: counter(
                r,
                "prometheus_target_scrapes_sample_out_of_order_total",
                "Total number of samples rejected due to not being out of the expected order.",
            )?,
            sample_out_of_bounds: counter(
                r,
                "prometheus_target_scrapes_sample_out_of_bounds_total",
                "Total number of samples rejected due to timestamp falling outside of the time bounds.",
            )?,
            exceeded_label_limits: counter(
                r,
                "prometheus_target_scrape_pool_exceeded_label_limits_total",
                "Total number of times scrape pools hit the label limits, during sync or config reload.",
            )?,
        })
    }
}

/// Go's `time.Duration.String` (`15s`, `1m0s`, `1h30m0s`, `200ms`, `1.5s`), which upstream's
/// `interval` metric labels use.
pub fn go_duration(d: Duration) -> String {
    fn with_fraction(v: u128, unit: u128) -> String {
        let (whole, frac) = (v / unit, v % unit);
        if frac == 0 {
            return whole.to_string();
        }
        let width = unit.ilog10() as usize;
        let digits = format!("{frac:0width$}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
    let ns = d.as_nanos();
    match ns {
        0 => "0s".into(),
        n if n < 1_000 => format!("{n}ns"),
        n if n < 1_000_000 => format!("{}µs", with_fraction(n, 1_000)),
        n if n < 1_000_000_000 => format!("{}ms", with_fraction(n, 1_000_000)),
        n => {
            let hours = n / 3_600_000_000_000;
            let minutes = (n / 60_000_000_000) % 60;
            let secs = n % 60_000_000_000;
            let mut out = String::new();
            if hours > 0 {
                out.push_str(&format!("{hours}h"));
            }
            if hours > 0 || minutes > 0 {
                out.push_str(&format!("{minutes}m"));
            }
            out.push_str(&with_fraction(secs, 1_000_000_000));
            out.push('s');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_strings() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(15), "15s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(5400), "1h30m0s"),
            (Duration::from_millis(200), "200ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_nanos(12), "12ns"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want);
        }
    }
}
