//! The storage engine's self-metrics under upstream's `prometheus_tsdb_*` names, read from its
//! counters at scrape time.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts};
use watchfire_tsdb::Db;

/// A collector over one open database.
pub struct TsdbCollector {
    db: Arc<Db>,
    head_series: IntGauge,
    min_time: Gauge,
    max_time: Gauge,
    appended: IntCounterVec,
    ooo_appended: IntCounterVec,
    replay_duration: Gauge,
    created: IntCounter,
    out_of_order: IntCounterVec,
    out_of_bounds: IntCounterVec,
    wal_corruptions: IntCounter,
    mmap_corruptions: IntCounter,
    descs: Vec<Desc>,
}

impl TsdbCollector {
    pub fn new(db: Arc<Db>) -> prometheus::Result<Self> {
        let head_series = IntGauge::new(
            "prometheus_tsdb_head_series",
            "Total number of series in the head block.",
        )?;
        let min_time = Gauge::new("prometheus_tsdb_head_min_time", "Minimum time bound of the head block.")?;
        let max_time = Gauge::new("prometheus_tsdb_head_max_time", "Maximum timestamp of the head block.")?;
        let appended = IntCounterVec::new(
            Opts::new(
                "prometheus_tsdb_head_samples_appended_total",
                "Total number of appended samples.",
            ),
            &["type"],
        )?;
        let ooo_appended = IntCounterVec::new(
            Opts::new(
                "prometheus_tsdb_head_out_of_order_samples_appended_total",
                "Total number of appended out of order samples.",
            ),
            &["type"],
        )?;
        let replay_duration = Gauge::new(
            "prometheus_tsdb_data_replay_duration_seconds",
            "Time taken to replay the data on disk.",
        )?;
        let created = IntCounter::new(
            "prometheus_tsdb_head_series_created_total",
            "Total number of series created in the head",
        )?;
        let out_of_order = IntCounterVec::new(
            Opts::new(
                "prometheus_tsdb_out_of_order_samples_total",
                "Total number of out of order samples ingestion failed attempts due to out of order being disabled.",
            ),
            &["type"],
        )?;
        let out_of_bounds = IntCounterVec::new(
            Opts::new(
                "prometheus_tsdb_out_of_bound_samples_total",
                "Total number of out of bound samples ingestion failed attempts with out of order support disabled.",
            ),
            &["type"],
        )?;
        let wal_corruptions = IntCounter::new(
            "prometheus_tsdb_wal_corruptions_total",
            "Total number of WAL corruptions.",
        )?;
        let mmap_corruptions = IntCounter::new(
            "prometheus_tsdb_mmap_chunk_corruptions_total",
            "Total number of memory-mapped chunk corruptions.",
        )?;
        let mut descs = Vec::new();
        for c in [
            &head_series as &dyn Collector,
            &min_time,
            &max_time,
            &appended,
            &ooo_appended,
            &replay_duration,
            &created,
            &out_of_order,
            &out_of_bounds,
            &wal_corruptions,
            &mmap_corruptions,
        ] {
            descs.extend(c.desc().into_iter().cloned());
        }
        Ok(TsdbCollector {
            db,
            head_series,
            min_time,
            max_time,
            appended,
            ooo_appended,
            replay_duration,
            created,
            out_of_order,
            out_of_bounds,
            wal_corruptions,
            mmap_corruptions,
            descs,
        })
    }
}

fn set_counter(c: &IntCounter, v: u64) {
    let cur = c.get();
    if v > cur {
        c.inc_by(v - cur);
    }
}

impl Collector for TsdbCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let head = self.db.head();
        let m = head.metrics();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        self.head_series.set(head.num_series() as i64);
        self.min_time.set(head.min_time() as f64);
        self.max_time.set(head.max_time() as f64);
        set_counter(&self.appended.with_label_values(&["float"]), load(&m.samples_appended));
        set_counter(
            &self.ooo_appended.with_label_values(&["float"]),
            load(&m.ooo_samples_appended),
        );
        self.replay_duration
            .set(self.db.open_report().replay_duration.as_secs_f64());
        set_counter(&self.created, load(&m.series_created));
        set_counter(
            &self.out_of_order.with_label_values(&["float"]),
            load(&m.out_of_order_samples) + load(&m.duplicate_samples),
        );
        set_counter(
            &self.out_of_bounds.with_label_values(&["float"]),
            load(&m.out_of_bound_samples),
        );
        set_counter(&self.wal_corruptions, load(&m.wal_corruptions));
        set_counter(&self.mmap_corruptions, load(&m.mmap_chunk_corruptions));
        let mut out = Vec::new();
        for c in [
            &self.head_series as &dyn Collector,
            &self.min_time,
            &self.max_time,
            &self.appended,
            &self.ooo_appended,
            &self.replay_duration,
            &self.created,
            &self.out_of_order,
            &self.out_of_bounds,
            &self.wal_corruptions,
            &self.mmap_corruptions,
        ] {
            out.extend(c.collect());
        }
        out
    }
}
