//! Silence: a Kafka topic (or partition) whose log end has not moved, an MQTT subtree with no
//! message, for longer than a duration.

use std::collections::{BTreeMap, BTreeSet};

use super::{NameMatch, seconds};
use crate::EpochMillis;
use crate::alerts::engine::{Observation, RuleKind};
use crate::alerts::snapshot::Snapshot;

/// Topics (or partitions) a silence rule remembers at most; more are not observed (counted).
pub const MAX_TRACKED: usize = 100_000;

/// No record appended to a topic (each partition, with `per_partition`) for `silent_for_ms`.
/// Silence counts from the first time the rule saw the topic, and the end offset of a cluster
/// that cannot be reached does not move: its topics go silent too.
#[derive(Debug)]
pub struct TopicSilent {
    pub cluster: NameMatch,
    pub topic: NameMatch,
    pub per_partition: bool,
    pub silent_for_ms: u64,
    /// Per (cluster, topic, partition or -1): the end offset (summed for a topic) and when it
    /// last changed.
    ends: BTreeMap<(String, String, i32), (i64, EpochMillis)>,
    /// Observations left out because [`MAX_TRACKED`] were tracked.
    pub untracked: u64,
}

impl TopicSilent {
    pub fn new(
        cluster: NameMatch,
        topic: NameMatch,
        per_partition: bool,
        silent_for_ms: u64,
    ) -> Self {
        Self {
            cluster,
            topic,
            per_partition,
            silent_for_ms,
            ends: BTreeMap::new(),
            untracked: 0,
        }
    }
}

impl RuleKind for TopicSilent {
    fn kind(&self) -> &'static str {
        "topic_silent"
    }
    fn label_names(&self) -> &'static [&'static str] {
        &["cluster", "topic", "partition"]
    }
    fn observe(&mut self, snapshot: &Snapshot) -> Vec<Observation> {
        let now = snapshot.time_ms;
        // The end offset of each tracked thing this snapshot, `None` when unknown.
        let mut ends: BTreeMap<(String, String, i32), Option<i64>> = BTreeMap::new();
        for c in snapshot
            .kafka
            .iter()
            .filter(|c| c.scraped && self.cluster.matches(&c.cluster))
        {
            for p in c.partitions.iter().filter(|p| self.topic.matches(&p.topic)) {
                let partition = if self.per_partition { p.partition } else { -1 };
                let end = ends
                    .entry((c.cluster.clone(), p.topic.clone(), partition))
                    .or_insert(Some(0));
                *end = match (*end, p.latest) {
                    (Some(sum), Some(latest)) => Some(sum + latest),
                    _ => None,
                };
            }
        }
        let present: BTreeSet<_> = ends.keys().cloned().collect();
        self.ends.retain(|k, _| present.contains(k));
        let mut out = Vec::new();
        for (key, end) in ends {
            let since = match (self.ends.get_mut(&key), end) {
                (Some((last, changed)), Some(end)) => {
                    if *last != end {
                        (*last, *changed) = (end, now);
                    }
                    *changed
                }
                (Some((_, changed)), None) => *changed,
                (None, end) => {
                    if self.ends.len() >= MAX_TRACKED {
                        self.untracked += 1;
                        continue;
                    }
                    // An unknown first end still starts the clock; it is taken when known.
                    self.ends.insert(key.clone(), (end.unwrap_or(-1), now));
                    now
                }
            };
            let silent_ms = now.saturating_sub(since);
            let (cluster, topic, partition) = key;
            let mut labels = vec![("cluster", cluster), ("topic", topic)];
            if self.per_partition {
                labels.push(("partition", partition.to_string()));
            }
            out.push(Observation::new(
                labels,
                seconds(silent_ms),
                silent_ms >= self.silent_for_ms,
            ));
        }
        out
    }
}

/// No message on any topic an MQTT filter matches for `silent_for_ms` (the value: seconds since
/// the last one, or since the watcher began counting when none came).
#[derive(Debug)]
pub struct MqttSilent {
    pub broker: NameMatch,
    pub filter: String,
    pub silent_for_ms: u64,
}

impl RuleKind for MqttSilent {
    fn kind(&self) -> &'static str {
        "mqtt_silent"
    }
    fn label_names(&self) -> &'static [&'static str] {
        &["broker", "filter"]
    }
    fn observe(&mut self, snapshot: &Snapshot) -> Vec<Observation> {
        let now = snapshot.time_ms;
        snapshot
            .mqtt
            .iter()
            .filter(|b| self.broker.matches(&b.broker))
            .filter_map(|b| {
                let last = b
                    .last_seen
                    .iter()
                    .find(|(filter, _)| *filter == self.filter)
                    .and_then(|(_, last)| *last);
                // Before the first subscription there is nothing to be silent about.
                let since = last.or(b.counting_since_ms)?;
                let silent_ms = now.saturating_sub(since);
                Some(Observation::new(
                    [
                        ("broker", b.broker.clone()),
                        ("filter", self.filter.clone()),
                    ],
                    seconds(silent_ms),
                    silent_ms >= self.silent_for_ms,
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::snapshot::{KafkaClusterFacts, KafkaPartitionFacts, MqttBrokerFacts};

    fn kafka_at(time_ms: EpochMillis, ends: &[(&str, i32, Option<i64>)]) -> Snapshot {
        Snapshot {
            time_ms,
            kafka: vec![KafkaClusterFacts {
                cluster: "prod".into(),
                scraped: true,
                partitions: ends
                    .iter()
                    .map(|&(topic, partition, latest)| KafkaPartitionFacts {
                        topic: topic.into(),
                        partition,
                        latest,
                        under_replicated: false,
                        offline: false,
                    })
                    .collect(),
                ..Default::default()
            }],
            mqtt: vec![],
            ..Snapshot::default()
        }
    }

    fn values(obs: &[Observation]) -> Vec<(f64, bool)> {
        obs.iter().map(|o| (o.value, o.holds)).collect()
    }

    #[test]
    fn a_topic_is_silent_from_the_last_change_of_its_summed_end() {
        let mut rule = TopicSilent::new(NameMatch::any(), NameMatch::any(), false, 10_000);
        assert_eq!(
            values(&rule.observe(&kafka_at(0, &[("t", 0, Some(5)), ("t", 1, Some(5))]))),
            [(0.0, false)]
        );
        // Partition 1 grows at 4 s: the topic's end moved.
        assert_eq!(
            values(&rule.observe(&kafka_at(4_000, &[("t", 0, Some(5)), ("t", 1, Some(6))]))),
            [(0.0, false)]
        );
        // An unknown end keeps the last change.
        assert_eq!(
            values(&rule.observe(&kafka_at(9_000, &[("t", 0, None), ("t", 1, Some(6))]))),
            [(5.0, false)]
        );
        assert_eq!(
            values(&rule.observe(&kafka_at(14_000, &[("t", 0, Some(5)), ("t", 1, Some(6))]))),
            [(10.0, true)]
        );
        let labels =
            &rule.observe(&kafka_at(15_000, &[("t", 0, Some(5)), ("t", 1, Some(6))]))[0].labels;
        assert_eq!(labels.keys().collect::<Vec<_>>(), ["cluster", "topic"]);
        // A topic that disappears is forgotten, and starts afresh when it comes back.
        assert!(rule.observe(&kafka_at(16_000, &[])).is_empty());
        assert_eq!(
            values(&rule.observe(&kafka_at(30_000, &[("t", 0, Some(5))]))),
            [(0.0, false)]
        );
    }

    #[test]
    fn per_partition_silence_names_the_partition() {
        let mut rule = TopicSilent::new(
            NameMatch::any(),
            NameMatch::regex("t").unwrap(),
            true,
            1_000,
        );
        rule.observe(&kafka_at(
            0,
            &[("t", 0, Some(1)), ("t", 1, Some(1)), ("u", 0, Some(1))],
        ));
        let obs = rule.observe(&kafka_at(
            2_000,
            &[("t", 0, Some(1)), ("t", 1, Some(2)), ("u", 0, Some(1))],
        ));
        assert_eq!(values(&obs), [(2.0, true), (0.0, false)]);
        assert_eq!(obs[0].labels["partition"], "0");
    }

    #[test]
    fn tracked_topics_are_capped_and_counted() {
        let mut rule = TopicSilent::new(NameMatch::any(), NameMatch::any(), true, 1_000);
        let many: Vec<(&str, i32, Option<i64>)> = (0..MAX_TRACKED as i32 + 3)
            .map(|p| ("t", p, Some(0)))
            .collect();
        assert_eq!(rule.observe(&kafka_at(0, &many)).len(), MAX_TRACKED);
        assert_eq!(rule.untracked, 3);
    }

    #[test]
    fn mqtt_silence_counts_from_the_last_message_or_the_subscription() {
        let broker = |last: Option<EpochMillis>| MqttBrokerFacts {
            broker: "edge".into(),
            connected: true,
            counting_since_ms: Some(1_000),
            last_seen: vec![("machine/#".into(), last)],
            ..Default::default()
        };
        let at = |time_ms, last| Snapshot {
            time_ms,
            kafka: vec![],
            mqtt: vec![broker(last)],
            ..Snapshot::default()
        };
        let mut rule = MqttSilent {
            broker: NameMatch::any(),
            filter: "machine/#".into(),
            silent_for_ms: 5_000,
        };
        assert_eq!(values(&rule.observe(&at(5_000, None))), [(4.0, false)]);
        assert_eq!(values(&rule.observe(&at(6_000, None))), [(5.0, true)]);
        assert_eq!(
            values(&rule.observe(&at(6_000, Some(5_500)))),
            [(0.5, false)]
        );
        let mut other = MqttSilent {
            broker: NameMatch::any(),
            filter: "other/#".into(),
            silent_for_ms: 5_000,
        };
        assert_eq!(
            values(&other.observe(&at(9_000, None))),
            [(8.0, true)],
            "a filter nothing matched"
        );
    }
}
