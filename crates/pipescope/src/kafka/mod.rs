//! The Kafka watcher: an admin connection layer over `kafka-protocol` ([`conn`]), the scrape of
//! a whole cluster in few batched requests ([`scrape`]), the live state it keeps ([`state`]),
//! and its outputs: samples on the bus, the JSON API ([`api`]) and Prometheus metrics ([`metrics`]).

pub mod api;
pub mod conn;
pub mod metrics;
pub mod scram;
pub mod scrape;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

use pipescope_core::{Clock, Labels, Sample};
use tokio::time::MissedTickBehavior;

use crate::bus::Bus;
use crate::config::KafkaCluster;
use conn::{ConnectOptions, Pool, SaslCredentials};
pub use scrape::Scraper;
pub use state::{ClusterState, LiveState};

/// The scraper of one configured cluster, with its TLS and SASL settings.
pub fn scraper(name: &str, cluster: &KafkaCluster) -> Result<Scraper, String> {
    let tls = match &cluster.tls {
        Some(tls) => {
            Some(crate::tls::client_config(tls).map_err(|e| format!("kafka.{name}.tls: {e}"))?)
        }
        None => None,
    };
    let options = ConnectOptions {
        client_id: format!("pipescope-{name}"),
        timeout: cluster.request_timeout,
        tls,
        sasl: cluster.sasl.as_ref().map(|s| SaslCredentials {
            mechanism: s.mechanism,
            username: s.username.clone(),
            password: s.password.clone(),
        }),
        max_backoff: cluster.scrape_interval.min(Duration::from_secs(10)),
    };
    let bootstrap = cluster.bootstrap.iter().map(ToString::to_string).collect();
    Ok(Scraper::new(name, bootstrap, Pool::new(options)))
}

/// Scrapes every `interval` (from the start of one scrape to the next; a scrape longer than
/// the interval delays the next one rather than overlapping it), keeps the latest state in
/// `live` and publishes its raw numbers on the bus. Runs until the task is dropped.
pub async fn watch(
    scraper: Scraper,
    interval: Duration,
    live: LiveState,
    bus: Bus,
    clock: Arc<dyn Clock>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let previous = live.get(scraper.name());
        let state = scraper.scrape(clock.as_ref(), previous.as_deref()).await;
        match &state.error {
            Some(e) => tracing::warn!(cluster = scraper.name(), "{e}"),
            None => tracing::debug!(
                cluster = scraper.name(),
                ms = state.scrape_duration_ms,
                "scraped"
            ),
        }
        bus.publish(samples(&state));
        live.set(state);
    }
}

/// The raw numbers of one scrape as samples: broker up, scrape duration, partition offsets and
/// committed offsets (the analyzer's rates and lag are derived from these).
pub fn samples(state: &ClusterState) -> Vec<Sample> {
    let cluster = state.name.as_str();
    let at = state.scraped_at_ms;
    let mut out = vec![Sample::new(
        "pipescope_kafka_scrape_duration_seconds",
        Labels::new([("cluster", cluster)]),
        at,
        state.scrape_duration_ms as f64 / 1000.0,
    )];
    for b in &state.brokers {
        out.push(Sample::new(
            "pipescope_kafka_broker_up",
            Labels::new([
                ("cluster", cluster.to_string()),
                ("broker", b.id.to_string()),
            ]),
            at,
            if b.up { 1.0 } else { 0.0 },
        ));
    }
    // Offsets only when this scrape read them (not the stale copy kept when no broker answered).
    let Some(snapshot) = &state.snapshot else {
        return out;
    };
    for p in &snapshot.partitions {
        if let Ok(range) = &p.offsets {
            let labels = Labels::new([
                ("cluster", cluster.to_string()),
                ("topic", p.tp.topic.clone()),
                ("partition", p.tp.partition.to_string()),
            ]);
            out.push(Sample::new(
                "pipescope_kafka_partition_start_offset",
                labels.clone(),
                snapshot.time_ms,
                range.earliest as f64,
            ));
            out.push(Sample::new(
                "pipescope_kafka_partition_end_offset",
                labels,
                snapshot.time_ms,
                range.latest as f64,
            ));
        }
    }
    for c in &snapshot.commits {
        out.push(Sample::new(
            "pipescope_kafka_group_committed_offset",
            Labels::new([
                ("cluster", cluster.to_string()),
                ("group", c.group.clone()),
                ("topic", c.tp.topic.clone()),
                ("partition", c.tp.partition.to_string()),
            ]),
            snapshot.time_ms,
            c.committed as f64,
        ));
    }
    out
}
