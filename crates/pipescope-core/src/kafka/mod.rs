//! Kafka: what one scrape of a cluster saw (the input of every Kafka formula).
//!
//! The scraper (in the binary) fills an [`OffsetsSnapshot`] from the admin protocol; the pure
//! formulas here consume a series of them:
//! - [`rate`]: the instant rate from end-offset deltas, the counts over the last 1, 5 and 15
//!   minutes, and the (time, end offset) history;
//! - [`lag`]: lag in offsets (never negative) and seconds (exact or estimated), catch-up time;
//! - [`verdict`]: Burrow-style OK / WARN / STOPPED / STALLED / REWOUND over a sliding window,
//!   and LOST;
//! - [`loss`]: records deleted before a consumer group read them, counted once per group;
//! - [`analyzer`]: [`KafkaAnalyzer`], the state that turns successive snapshots into a [`KafkaView`];
//! - [`metrics`]: the exported metric names and [`view_to_samples`];
//! - [`record_time`]: which record timestamps to fetch for exact lag in seconds;
//! - [`record_batch`]: the timestamp of the record at an offset, from a Fetch answer's batches;
//! - [`offsets_topic`]: committed offsets read from `__consumer_offsets`, its record formats;
//! - [`probe`]: the bytes of an "is a broker answering?" check;
//! - [`tansu`]: what the demo and the tests do to the tansu broker they start.

use std::sync::Arc;

use serde::Serialize;

use crate::clock::EpochMillis;

pub mod analyzer;
pub mod lag;
pub mod loss;
pub mod metrics;
pub mod offsets_topic;
mod packed;
pub mod probe;
pub mod rate;
pub mod record_batch;
pub mod record_time;
pub mod tansu;
pub mod verdict;

pub use analyzer::{AnalyzerConfig, KafkaAnalyzer, KafkaView};
pub use metrics::{push_view_samples, view_to_samples};
pub use verdict::Verdict;

/// A `HashMap` with foldhash's fast hasher: the scrape's maps hold every partition and group
/// partition (100k+), where SipHash was ~9 % of a scrape's CPU. Keys are the cluster's names,
/// so the per-process random seed still spreads them.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// The set counterpart of [`FastMap`].
pub type FastSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// A partition of a topic. The name is shared: a snapshot of a big cluster names each of its
/// 20,000 topics in 300,000 partitions and commits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

/// Earliest and latest (log end) offset of a partition, or why they are unknown this scrape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionOffsets {
    pub tp: TopicPartition,
    /// `Err` holds the reason (leader down, request failed...): the rest of the scrape stands.
    pub offsets: Result<OffsetRange, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OffsetRange {
    pub earliest: i64,
    /// The log end offset: the offset the next record will get.
    pub latest: i64,
}

/// A consumer group's committed offset on one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupCommit {
    /// Shared by the group's commits.
    pub group: Arc<str>,
    pub tp: TopicPartition,
    pub committed: i64,
    /// Timestamp (ms) of the record at the committed offset, when the scraper fetched it:
    /// the exact base of lag in seconds. `None` when not fetched or the record is gone.
    pub record_time_ms: Option<EpochMillis>,
}

/// What one scrape of one cluster saw, at one time.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct OffsetsSnapshot {
    pub time_ms: EpochMillis,
    pub partitions: Vec<PartitionOffsets>,
    pub commits: Vec<GroupCommit>,
}
