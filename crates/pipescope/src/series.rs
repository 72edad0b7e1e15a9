//! The series stage between the watchers and what keeps history: the store's feeder and the
//! InfluxDB exporter read its output bus, so both get the same bounded series
//! ([`pipescope_core::series_budget`]). `/metrics` reads the live state and keeps its own
//! filters (`groups_allow`, `topics_allow`, ...).

use std::sync::{Arc, Mutex};

use pipescope_core::Clock;
use pipescope_core::series_budget::{
    ClusterSeries, PartitionSeries, SeriesBudget, SeriesStage, TopKSettings,
};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use regex::Regex;

use crate::bus::{Bus, BusReceiver};
use crate::config::{Config, KafkaCluster, PartitionSeriesMode};
use crate::sync::lock;

/// The stage, shared by its relay, the Kafka watchers (which ask it which partitions' series
/// to make) and its `/metrics` collector.
pub type SharedStage = Arc<Mutex<SeriesStage>>;

pub fn shared_stage(budget: SeriesBudget) -> SharedStage {
    Arc::new(Mutex::new(SeriesStage::new(budget)))
}

/// The stage's settings from the configuration (its regexes were checked when it loaded).
pub fn budget_from(config: &Config) -> SeriesBudget {
    SeriesBudget {
        clusters: config
            .kafka
            .iter()
            .map(|(name, cluster)| (name.clone(), cluster_series(cluster)))
            .collect(),
        max_per_source: config.series.max_per_source,
        retire_after_ms: config.series.retire_after.as_millis() as u64,
    }
}

pub fn cluster_series(cluster: &KafkaCluster) -> ClusterSeries {
    let regexes =
        |patterns: &[String]| patterns.iter().filter_map(|p| Regex::new(p).ok()).collect();
    ClusterSeries {
        mode: match cluster.partition_series {
            PartitionSeriesMode::Top => PartitionSeries::Top,
            PartitionSeriesMode::All => PartitionSeries::All,
            PartitionSeriesMode::None => PartitionSeries::None,
        },
        topics_allow: regexes(&cluster.partition_series_allow),
        groups_allow: regexes(&cluster.partition_series_groups_allow),
        top: TopKSettings::with_k(cluster.partition_top_k),
    }
}

/// Passes every batch of `input` through `stage` onto `output` until `input` closes. Batches
/// already in the store (from `/write`) pass unchanged: they are not the watchers' series.
pub async fn relay(mut input: BusReceiver, output: Bus, stage: SharedStage, clock: Arc<dyn Clock>) {
    while let Some((batch, stored)) = input.recv_marked().await {
        if stored {
            output.publish_stored(batch);
            continue;
        }
        let now = clock.now_millis();
        let stage = stage.clone();
        // A big cluster's scrape is ~10^5 samples: through the cap off the async workers.
        // A panic mid-selection leaves counts, not broken invariants: the lock goes on with them.
        let selected = tokio::task::spawn_blocking(move || lock(&stage).select(&batch, now)).await;
        match selected {
            Ok(selected) => output.publish(selected),
            Err(e) => tracing::error!("the series stage failed on a batch ({e}); it is lost"),
        }
    }
}

/// Registers `pipescope_series_*` by source, read from `stage` at scrape time.
pub fn register(registry: &mut Registry, stage: SharedStage) {
    registry.register_collector(Box::new(SeriesCollector { stage }));
}

#[derive(Debug)]
struct SeriesCollector {
    stage: SharedStage,
}

impl Collector for SeriesCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = lock(&self.stage).counts();
        let mut admitted = encoder.encode_descriptor(
            "pipescope_series_admitted",
            "Series the source sends to the store and InfluxDB now, at most [series] max_per_source.",
            None,
            MetricType::Gauge,
        )?;
        for c in &counts {
            admitted
                .encode_family(&[("source", c.source.as_str())])?
                .encode_gauge(&(c.admitted as i64))?;
        }
        // The encoder appends `_total`.
        let mut dropped = encoder.encode_descriptor(
            "pipescope_series_dropped_samples",
            "Samples of new series refused by [series] max_per_source: raise it, or bound the source's per-partition series.",
            None,
            MetricType::Counter,
        )?;
        for c in &counts {
            dropped
                .encode_family(&[("source", c.source.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(&c.dropped_samples, None)?;
        }
        let mut unselected = encoder.encode_descriptor(
            "pipescope_series_unselected_samples",
            "Per-partition samples kept from the store and InfluxDB by partition_series (not in the top-K, not allowed).",
            None,
            MetricType::Counter,
        )?;
        for c in &counts {
            unselected
                .encode_family(&[("source", c.source.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(&c.unselected_samples, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipescope_core::series_budget::SeriesBudget;
    use pipescope_core::{Labels, ManualClock, Sample};

    fn sample(metric: &'static str, broker: &str) -> Sample {
        Sample::new(metric, Labels::new([("broker", broker)]), 0, 1.0)
    }

    #[tokio::test]
    async fn the_relay_caps_the_watchers_batches_and_passes_stored_ones_unchanged() {
        let (input, output) = (Bus::new(8), Bus::new(8));
        let mut bounded = output.subscribe();
        let stage = Arc::new(Mutex::new(SeriesStage::new(SeriesBudget {
            max_per_source: 1,
            ..SeriesBudget::default()
        })));
        let relay = tokio::spawn(relay(
            input.subscribe(),
            output,
            stage.clone(),
            Arc::new(ManualClock::at(0)),
        ));
        input.publish(vec![
            sample("pipescope_mqtt_a", "m"),
            sample("pipescope_mqtt_b", "m"),
        ]);
        let written = Arc::new(vec![sample("written", "m"), sample("written2", "m")]);
        input.publish_stored(written.clone());
        drop(input);
        let (first, stored) = bounded.recv_marked().await.unwrap();
        assert_eq!((first.len(), stored), (1, false));
        assert_eq!(first[0].metric, "pipescope_mqtt_a");
        let (second, stored) = bounded.recv_marked().await.unwrap();
        assert!(stored && Arc::ptr_eq(&second, &written));
        assert!(
            bounded.recv_marked().await.is_none(),
            "the output closes after the input"
        );
        relay.await.unwrap();
        let counts = stage.lock().unwrap().counts();
        assert_eq!((counts[0].admitted, counts[0].dropped_samples), (1, 1));
    }

    #[test]
    fn the_collector_exports_the_counts_by_source() {
        let stage = Arc::new(Mutex::new(SeriesStage::new(SeriesBudget {
            max_per_source: 1,
            ..SeriesBudget::default()
        })));
        stage.lock().unwrap().select(
            &[
                sample("pipescope_mqtt_a", "m"),
                sample("pipescope_mqtt_b", "m"),
            ],
            0,
        );
        let mut registry = Registry::default();
        register(&mut registry, stage);
        let text = crate::metrics::encode(&registry);
        for line in [
            "pipescope_series_admitted{source=\"mqtt/m\"} 1",
            "pipescope_series_dropped_samples_total{source=\"mqtt/m\"} 1",
            "pipescope_series_unselected_samples_total{source=\"mqtt/m\"} 0",
        ] {
            assert!(text.contains(line), "{line} missing in:\n{text}");
        }
    }
}
