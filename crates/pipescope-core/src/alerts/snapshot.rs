//! What the alert rules read: the monitor's live state at one moment, as plain facts.
//!
//! The binary builds a [`Snapshot`] from its watchers' states before each evaluation; the rules
//! never see a socket or a lock. A new kind that needs new facts adds a field here.

use crate::EpochMillis;
use crate::kafka::Verdict;

/// The live state at `time_ms`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub time_ms: EpochMillis,
    pub kafka: Vec<KafkaClusterFacts>,
    pub mqtt: Vec<MqttBrokerFacts>,
    /// Observed flows' edges (`[flows.X]`).
    pub edges: Vec<FlowEdgeFacts>,
    /// Quality topics (`[quality.X]`).
    pub quality: Vec<QualityFacts>,
    /// Watched pipeline parts (`[watched_parts.X]`).
    pub parts: Vec<PartFacts>,
}

/// One watched pipeline part as of its latest poll of `/health` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartFacts {
    pub name: String,
    /// A poll has ended: before it nothing is known, and nothing is alerted on.
    pub polled: bool,
    /// It answered `/health`.
    pub up: bool,
    /// Its own health gauge (or its `/health`) says healthy.
    pub healthy: bool,
    pub error: Option<String>,
}

/// One edge of an observed flow (docs/completeness.md), over the last minute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowEdgeFacts {
    pub flow: String,
    /// `<upstream hop> → <downstream hop>`.
    pub edge: String,
    /// Records lost and duplicated over the last minute.
    pub lost_1m: f64,
    pub duplicated_1m: f64,
    /// 99th percentile of origin-to-downstream latency over the last minute, when records came.
    pub p99_ms_1m: Option<f64>,
}

/// One quality topic (docs/quality-rules.md).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualityFacts {
    pub name: String,
    /// Records breaking at least one rule over the last minute (as much of it as the observer
    /// has watched).
    pub error_records_1m: f64,
    /// Schema drift events since the observer started.
    pub drift_events_total: u64,
}

/// One configured Kafka cluster as of its latest scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KafkaClusterFacts {
    pub cluster: String,
    /// Whether a scrape has run yet: before it nothing is known, and nothing is alerted on.
    pub scraped: bool,
    /// Why the latest scrape reached no broker; `None` when it reached one.
    pub error: Option<String>,
    pub brokers: Vec<KafkaBrokerFacts>,
    pub partitions: Vec<KafkaPartitionFacts>,
    pub groups: Vec<KafkaGroupFacts>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KafkaBrokerFacts {
    pub id: i32,
    /// `host:port`.
    pub address: String,
    pub up: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KafkaPartitionFacts {
    pub topic: String,
    pub partition: i32,
    /// The log end offset, when this scrape read it.
    pub latest: Option<i64>,
    pub under_replicated: bool,
    pub offline: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KafkaGroupFacts {
    pub group: String,
    /// Sum of the known lags over its partitions.
    pub lag_offsets: i64,
    /// Its worst partition's lag in seconds, when known.
    pub max_lag_seconds: Option<f64>,
    /// Its worst partition's verdict.
    pub verdict: Verdict,
    /// Its slowest partition's time to catch up.
    pub eta: Eta,
}

/// A group's time to catch up, as the lag rules compute it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Eta {
    CaughtUp,
    InSeconds(f64),
    /// Consumers read no faster than producers write: never, at these rates.
    Never,
    Unknown,
}

/// One configured MQTT broker.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MqttBrokerFacts {
    pub broker: String,
    pub connected: bool,
    /// Why it is not, when known.
    pub error: Option<String>,
    /// Since when it is not connected (or since the watcher started, when it never was).
    pub down_since_ms: Option<EpochMillis>,
    /// When the watcher's current subscription began counting messages.
    pub counting_since_ms: Option<EpochMillis>,
    /// The subtrees the rules asked about (by filter text: `machine/#`, `machine/+/temp`, or a
    /// plain topic), with the newest message seen on any topic they match.
    pub last_seen: Vec<(String, Option<EpochMillis>)>,
    /// The same subtrees with the messages counted on the topics they match since the watcher
    /// started counting (the rate anomaly rules difference them).
    pub messages: Vec<(String, u64)>,
}
