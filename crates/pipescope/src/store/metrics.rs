//! The store's own health on `/metrics`, read from its counters at scrape time.

use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::encoding::NoLabelSet;
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::Store;
use crate::metrics::encode_const;

#[derive(Debug)]
struct StoreCollector {
    store: Store,
}

/// Registers `pipescope_store_*` metrics of `store` in `registry`.
pub fn register(registry: &mut Registry, store: Store) {
    registry.register_collector(Box::new(StoreCollector { store }));
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.store.stats();
        let counters = [
            (
                "pipescope_store_write_batches",
                "Transactions the store writer committed.",
                stats.write_batches.load(Ordering::Relaxed),
            ),
            (
                "pipescope_store_samples_written",
                "Samples stored.",
                stats.samples_written.load(Ordering::Relaxed),
            ),
            (
                "pipescope_store_samples_dropped",
                "Samples not stored: writer queue full, NaN value, or a failed write.",
                stats.samples_dropped.load(Ordering::Relaxed),
            ),
            (
                "pipescope_store_write_failures",
                "Commits that failed (disk full? see the log); their samples are counted as dropped, and /write answered 503 for them.",
                stats.write_failures.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            encode_const(&mut encoder, name, help, &ConstCounter::new(value))?;
        }
        // The encoder appends `_total`.
        let mut refused = encoder.encode_descriptor(
            "pipescope_store_write_refused_samples",
            "Samples /write refused, by reason: reserved_name (pipescope_* names are pipescope's own), series_limit (the cap on series /write may create).",
            None,
            MetricType::Counter,
        )?;
        for (reason, value) in [
            ("reserved_name", &stats.write_refused_reserved_name),
            ("series_limit", &stats.write_refused_series_limit),
        ] {
            refused
                .encode_family(&[("reason", reason)])?
                .encode_counter::<NoLabelSet, _, u64>(&value.load(Ordering::Relaxed), None)?;
        }
        let mut queries = encoder.encode_descriptor(
            "pipescope_store_query_refused_queries",
            "Queries refused or stopped, by reason: series_limit and points_limit (the answer would be too large), time_budget (stopped when its time was up), readers_busy (no read connection came free in time).",
            None,
            MetricType::Counter,
        )?;
        for (reason, value) in [
            ("series_limit", &stats.query_refused_series_limit),
            ("points_limit", &stats.query_refused_points_limit),
            ("time_budget", &stats.query_timed_out),
            ("readers_busy", &stats.query_readers_busy),
        ] {
            queries
                .encode_family(&[("reason", reason)])?
                .encode_counter::<NoLabelSet, _, u64>(&value.load(Ordering::Relaxed), None)?;
        }
        let mut budget = encoder.encode_descriptor(
            "pipescope_store_budget_dropped_samples",
            "Samples dropped to keep the store within [store] max_disk_size, oldest first, by resolution: raw (raw samples), 1m (the samples that dropped 1-minute roll-ups summarized).",
            None,
            MetricType::Counter,
        )?;
        for (resolution, value) in [
            ("raw", &stats.budget_dropped_raw),
            ("1m", &stats.budget_dropped_minute),
        ] {
            budget
                .encode_family(&[("resolution", resolution)])?
                .encode_counter::<NoLabelSet, _, u64>(&value.load(Ordering::Relaxed), None)?;
        }
        let gauges = [
            (
                "pipescope_store_size_bytes",
                "Bytes the store's files take on disk.",
                self.store.size_bytes() as i64,
            ),
            (
                "pipescope_store_queue_depth_batches",
                "Batches waiting for the store writer.",
                stats.queue_depth.load(Ordering::Relaxed).max(0),
            ),
            (
                "pipescope_store_write_failing",
                "1 while the store's newest commit failed (disk full? see the log), 0 once one succeeds.",
                stats.write_failing.load(Ordering::Relaxed) as i64,
            ),
        ];
        for (name, help, value) in gauges {
            encode_const(&mut encoder, name, help, &ConstGauge::new(value))?;
        }
        Ok(())
    }
}
