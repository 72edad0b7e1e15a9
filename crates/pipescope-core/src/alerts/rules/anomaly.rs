//! A topic's or an MQTT subtree's message rate far from its usual level, without a threshold:
//! the [`AnomalyDetector`](crate::alerts::anomaly) over messages per window.
//!
//! Each evaluation reads a running total per series (a Kafka topic's summed log end offsets, an
//! MQTT filter's messages counted since the watcher started). When an evaluation falls in a new
//! window, the messages since the previous window's first evaluation are that window's count
//! (so a window's edges are those evaluations, at most `evaluate_every` late). The first
//! window a series is seen in is partial and not judged; a total that went back (a restart, a
//! deleted topic) starts the series' counting again. The latest verdict holds until the next
//! window closes: an alert per series and anomaly (`anomaly` = `drop`, `spike` or `silent`).

use std::collections::BTreeMap;

use super::NameMatch;
use crate::EpochMillis;
use crate::alerts::AlertLabels;
use crate::alerts::anomaly::{AnomalyConfig, AnomalyConfigError, AnomalyDetector, AnomalyKind};
use crate::alerts::engine::{HistoryWanted, Observation, RuleKind};
use crate::alerts::snapshot::Snapshot;

/// A series' labels: `cluster` and `topic`, or `broker` and `filter`.
type SeriesLabels = Vec<(&'static str, String)>;

/// Which rates a rule follows.
#[derive(Debug)]
pub enum RateSource {
    /// Every matching topic of the matching clusters.
    Kafka {
        cluster: NameMatch,
        topic: NameMatch,
    },
    /// One MQTT filter (its whole subtree) on the matching brokers.
    Mqtt { broker: NameMatch, filter: String },
}

/// Where a series' current window began, and the total then.
#[derive(Debug, Clone, Copy)]
struct Mark {
    window_start_ms: EpochMillis,
    total: u64,
    /// The series was first seen inside this window: its count would be partial.
    partial: bool,
}

#[derive(Debug)]
pub struct RateAnomaly {
    source: RateSource,
    window_ms: u64,
    detector: AnomalyDetector<String>,
    marks: BTreeMap<String, Mark>,
    /// The latest verdict per series that is not normal: its labels, the anomaly and the
    /// window's count.
    anomalous: BTreeMap<String, (SeriesLabels, AnomalyKind, f64)>,
}

impl RateAnomaly {
    pub fn new(source: RateSource, config: AnomalyConfig) -> Result<Self, AnomalyConfigError> {
        let window_ms = config.window_ms;
        Ok(Self {
            source,
            window_ms,
            detector: AnomalyDetector::new(config)?,
            marks: BTreeMap::new(),
            anomalous: BTreeMap::new(),
        })
    }

    /// (series key, labels, running total) of every series the snapshot holds.
    fn totals(&self, snapshot: &Snapshot) -> Vec<(String, SeriesLabels, u64)> {
        let mut out = Vec::new();
        match &self.source {
            RateSource::Kafka { cluster, topic } => {
                for c in snapshot
                    .kafka
                    .iter()
                    .filter(|c| cluster.matches(&c.cluster))
                {
                    if !c.scraped || c.error.is_some() {
                        continue;
                    }
                    let mut topics: BTreeMap<&str, u64> = BTreeMap::new();
                    for p in c.partitions.iter().filter(|p| topic.matches(&p.topic)) {
                        *topics.entry(&p.topic).or_default() +=
                            p.latest.map_or(0, |o| u64::try_from(o).unwrap_or(0));
                    }
                    for (t, total) in topics {
                        let labels = vec![("cluster", c.cluster.clone()), ("topic", t.to_string())];
                        out.push((kafka_key(&c.cluster, t), labels, total));
                    }
                }
            }
            RateSource::Mqtt { broker, filter } => {
                for b in snapshot.mqtt.iter().filter(|b| broker.matches(&b.broker)) {
                    if !b.connected {
                        continue;
                    }
                    if let Some((_, total)) = b.messages.iter().find(|(f, _)| f == filter) {
                        let labels = vec![("broker", b.broker.clone()), ("filter", filter.clone())];
                        out.push((format!("mqtt/{}/{filter}", b.broker), labels, *total));
                    }
                }
            }
        }
        out
    }
}

const WEEK_MS: u64 = 7 * 24 * 3_600_000;

/// The detector's key of a Kafka topic's series.
fn kafka_key(cluster: &str, topic: &str) -> String {
    format!("kafka/{cluster}/{topic}")
}

fn anomaly_name(kind: AnomalyKind) -> &'static str {
    match kind {
        AnomalyKind::Normal => "normal",
        AnomalyKind::Drop => "drop",
        AnomalyKind::Spike => "spike",
        AnomalyKind::Silent => "silent",
    }
}

impl RuleKind for RateAnomaly {
    fn kind(&self) -> &'static str {
        "rate_anomaly"
    }
    fn label_names(&self) -> &'static [&'static str] {
        match self.source {
            RateSource::Kafka { .. } => &["cluster", "topic", "anomaly"],
            RateSource::Mqtt { .. } => &["broker", "filter", "anomaly"],
        }
    }
    /// A Kafka topic's stored `pipescope_kafka_topic_messages_per_minute` (`window="1m"`) over
    /// the weeks the baseline keeps. MQTT filters have no stored series of their own: their
    /// baselines are learnt live.
    fn history(&self) -> Option<HistoryWanted> {
        let RateSource::Kafka { .. } = self.source else {
            return None;
        };
        let config = self.detector.config();
        Some(HistoryWanted {
            metric: crate::kafka::metrics::TOPIC_MESSAGES_PER_MINUTE,
            labels: vec![("window", "1m")],
            window_ms: self.window_ms,
            lookback_ms: u64::from(config.history_weeks) * WEEK_MS,
            max_series: config.max_series,
        })
    }

    fn follows(&self, labels: &AlertLabels) -> bool {
        match (&self.source, labels.get("cluster"), labels.get("topic")) {
            (RateSource::Kafka { cluster, topic }, Some(c), Some(t)) => {
                cluster.matches(c) && topic.matches(t)
            }
            _ => false,
        }
    }

    fn learn(&mut self, labels: &AlertLabels, windows: &[(EpochMillis, f64)]) {
        if let (Some(c), Some(t)) = (labels.get("cluster"), labels.get("topic")) {
            self.detector.seed(kafka_key(c, t), windows.iter().copied());
        }
    }

    fn observe(&mut self, snapshot: &Snapshot) -> Vec<Observation> {
        let now = snapshot.time_ms;
        let window_start_ms = now - now % self.window_ms;
        let max_series = self.detector.config().max_series;
        for (key, labels, total) in self.totals(snapshot) {
            if self.marks.len() >= max_series && !self.marks.contains_key(&key) {
                continue; // the detector would refuse it too (and counts that)
            }
            let fresh = Mark {
                window_start_ms,
                total,
                partial: true,
            };
            let mark = self.marks.entry(key.clone()).or_insert(fresh);
            if total < mark.total {
                // Counting started again: nothing to judge until a whole window is seen.
                *mark = fresh;
                self.anomalous.remove(&key);
                continue;
            }
            if window_start_ms <= mark.window_start_ms {
                continue;
            }
            let (closed, count) = (*mark, (total - mark.total) as f64);
            *mark = Mark {
                window_start_ms,
                total,
                partial: false,
            };
            if closed.partial {
                continue;
            }
            match self
                .detector
                .observe(key.clone(), closed.window_start_ms, count)
            {
                Some(v) if v.kind != AnomalyKind::Normal => {
                    self.anomalous.insert(key, (labels, v.kind, v.count));
                }
                _ => {
                    self.anomalous.remove(&key);
                }
            }
        }
        self.anomalous
            .values()
            .map(|(labels, kind, count)| {
                let mut labels = labels.clone();
                labels.push(("anomaly", anomaly_name(*kind).to_string()));
                Observation::new(labels, *count, true)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::snapshot::{KafkaClusterFacts, KafkaPartitionFacts};

    const MIN: u64 = 60_000;

    fn snapshot(time_ms: u64, offset: i64) -> Snapshot {
        Snapshot {
            time_ms,
            kafka: vec![KafkaClusterFacts {
                cluster: "prod".into(),
                scraped: true,
                partitions: vec![KafkaPartitionFacts {
                    topic: "orders".into(),
                    partition: 0,
                    latest: Some(offset),
                    under_replicated: false,
                    offline: false,
                }],
                ..KafkaClusterFacts::default()
            }],
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_rate_that_collapses_alerts_as_a_drop_and_clears_when_it_comes_back() {
        let config = AnomalyConfig {
            window_ms: MIN,
            ..AnomalyConfig::default()
        };
        let mut rule = RateAnomaly::new(
            RateSource::Kafka {
                cluster: NameMatch::any(),
                topic: NameMatch::any(),
            },
            config,
        )
        .unwrap();
        // Evaluations every 15 s; 1,000 messages a minute (a little noise) for two hours.
        let (mut t, mut offset) = (10 * MIN + 5_000, 0i64);
        let mut step = |rule: &mut RateAnomaly, per_minute: i64, minutes: u64| {
            let mut seen = Vec::new();
            for _ in 0..minutes * 4 {
                t += 15_000;
                offset += per_minute / 4 + (t / 15_000 % 3) as i64;
                seen = rule.observe(&snapshot(t, offset));
            }
            seen
        };
        assert!(
            step(&mut rule, 1_000, 120).is_empty(),
            "a steady rate is normal"
        );
        let dropped = step(&mut rule, 300, 10);
        assert_eq!(dropped.len(), 1, "{dropped:?}");
        assert_eq!(dropped[0].labels["anomaly"], "drop");
        assert_eq!(dropped[0].labels["topic"], "orders");
        assert!(dropped[0].value < 400.0, "{}", dropped[0].value);
        assert!(step(&mut rule, 1_000, 10).is_empty(), "back to its level");
        // The offsets going back (a recreated topic) judge nothing until a whole window.
        assert!(rule.observe(&snapshot(t + 15_000, 5)).is_empty());
    }

    #[test]
    fn a_rule_seeded_from_stored_weeks_judges_a_drop_from_its_first_windows() {
        let config = AnomalyConfig {
            window_ms: MIN,
            ..AnomalyConfig::default()
        };
        let rule = || {
            RateAnomaly::new(
                RateSource::Kafka {
                    cluster: NameMatch::any(),
                    topic: NameMatch::regex("orders").unwrap(),
                },
                config.clone(),
            )
            .unwrap()
        };
        let (mut seeded, mut fresh) = (rule(), rule());
        let wanted = seeded.history().unwrap();
        assert_eq!(wanted.metric, "pipescope_kafka_topic_messages_per_minute");
        assert_eq!(wanted.labels, [("window", "1m")]);
        assert_eq!((wanted.window_ms, wanted.lookback_ms), (MIN, 4 * WEEK_MS));
        let labels = |topic: &str| -> AlertLabels {
            [("cluster", "prod"), ("topic", topic), ("window", "1m")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(seeded.follows(&labels("orders")));
        assert!(!seeded.follows(&labels("payments")));
        // Three weeks of about 1,000 messages a minute, as the store holds them.
        let start = 4 * WEEK_MS;
        let past: Vec<(u64, f64)> = (start - 3 * WEEK_MS..start)
            .step_by(MIN as usize)
            .map(|t| (t, 1_000.0 + (t / MIN % 7) as f64))
            .collect();
        seeded.learn(&labels("orders"), &past);

        // Live from a restart, the topic runs at 300 a minute: the seeded rule knows that this
        // hour of the week runs at 1,000; the fresh one takes 300 as its level.
        let (mut t, mut offset) = (start + 5_000, 1_000_000i64);
        let (mut seeded_saw, mut fresh_saw) = (Vec::new(), Vec::new());
        for _ in 0..10 * 4 {
            t += 15_000;
            offset += 75;
            seeded_saw = seeded.observe(&snapshot(t, offset));
            fresh_saw = fresh.observe(&snapshot(t, offset));
        }
        assert_eq!(seeded_saw.len(), 1, "{seeded_saw:?}");
        assert_eq!(seeded_saw[0].labels["anomaly"], "drop");
        assert!(fresh_saw.is_empty(), "{fresh_saw:?}");
    }
}
