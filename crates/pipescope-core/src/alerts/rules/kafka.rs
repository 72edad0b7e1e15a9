//! Kinds over the Kafka watcher's state: a group's lag (offsets, seconds), verdict and time to
//! catch up; brokers down; under-replicated and offline partitions; a cluster unreachable.

use super::NameMatch;
use crate::alerts::engine::{Observation, RuleKind};
use crate::alerts::snapshot::{Eta, KafkaClusterFacts, KafkaGroupFacts, Snapshot};
use crate::kafka::Verdict;

/// Which clusters and groups a group rule covers.
#[derive(Debug, Clone, Default)]
pub struct GroupScope {
    pub cluster: NameMatch,
    pub group: NameMatch,
}

impl GroupScope {
    /// Every covered group of every scraped cluster that covers it.
    fn groups<'a>(
        &'a self,
        snapshot: &'a Snapshot,
    ) -> impl Iterator<Item = (&'a KafkaClusterFacts, &'a KafkaGroupFacts)> + 'a {
        scraped(snapshot, &self.cluster).flat_map(move |c| {
            c.groups
                .iter()
                .filter(|g| self.group.matches(&g.group))
                .map(move |g| (c, g))
        })
    }
}

fn scraped<'a>(
    snapshot: &'a Snapshot,
    cluster: &'a NameMatch,
) -> impl Iterator<Item = &'a KafkaClusterFacts> + 'a {
    snapshot
        .kafka
        .iter()
        .filter(move |c| c.scraped && cluster.matches(&c.cluster))
}

fn group_observation(
    cluster: &KafkaClusterFacts,
    group: &KafkaGroupFacts,
    value: f64,
    holds: bool,
) -> Observation {
    Observation::new(
        [
            ("cluster", cluster.cluster.clone()),
            ("group", group.group.clone()),
        ],
        value,
        holds,
    )
}

const GROUP_LABELS: &[&str] = &["cluster", "group"];

/// A group's lag, summed over its partitions, above `above` offsets.
#[derive(Debug)]
pub struct GroupLagOffsets {
    pub scope: GroupScope,
    pub above: i64,
}

impl RuleKind for GroupLagOffsets {
    fn kind(&self) -> &'static str {
        "group_lag_offsets"
    }
    fn label_names(&self) -> &'static [&'static str] {
        GROUP_LABELS
    }
    fn observe(&mut self, snapshot: &Snapshot) -> Vec<Observation> {
        self.scope
            .groups(snapshot)
            .map(|(c, g)| group_observation(c, g, g.lag_offsets as f64, g.lag_offsets > self.above))
            .collect()
    }
}

/// A group's worst partition is more than `above_s` seconds behind. Unknown lag does not hold.
#[derive(Debug)]
pub struct GroupLagSeconds {
    pub scope: GroupScope,
    pub above_s: f64,
}

impl RuleKind for GroupLagSeconds {
    fn kind(&self) -> &'static str {
        "group_lag_seconds"
    }
    fn label_names(&self) -> &'static [&'static str] {
        GROUP_LABELS
    }
    fn observe(&mut self, snapshot: &Snapshot) -> Vec<Observation> {
        self.scope
            .groups(snapshot)
            .map(|(c, g)| {
                let lag = g.max_lag_seconds;
                group_observation(
                    c,
                    g,
                    lag.unwrap_or(f64::NAN),
                    lag.is_some_and(|s| s > self.above_s),
                )
            })
            .collect()
    }
}

/// A group's verdict is one of `verdicts` (its value is the verdict's code, as on /metrics).
#[derive(Debug)]
pub struct GroupVerdict {
    pub scope: GroupScope,
    pub verdicts: Vec<Verdict>,
}

impl RuleKind for GroupVerdict {
    fn kind(&self) -> &'static str {
        "group_verdict"
    }
    fn label_names(&self) -> &'static [&'static str] {
        GROUP_LABELS
    }
    fn observe(&mut self, snapshot: &Snapshot) -> Vec<Observation> {
        // The verdict is the value, not a label: a group going STALLED → STOPPED stays one alert.
        self.scope
            .groups(snapshot)
            .map(|(c, g)| {
                let code = f64::from(g.verdict.code());
                group_observation(c, g, code, self.verdicts.contains(&g.verdict))
            })
            .collect()
    }
}

/// A group would take more than `above_s` seconds to catch up at the current rates (never
/// catching up holds too; unknown does not).
#[derive(Debug)]
pub struct GroupEta {
    pub scope: GroupScope,
    pub above_s: f64,
}

impl RuleKind for GroupEta {
    fn kind(&self) -> &'static str {
        "group_eta"
    }
    fn label_names(&self) -> &'static [&'static str] {
        GROUP_LABELS
    }
    fn observe(&mut self, snapshot: &Snapshot) -> Vec<Observation> {
        self.scope
            .groups(snapshot)
            .map(|(c, g)| {
                let (value, holds) = match g.eta {
                    Eta::CaughtUp => (0.0, false),
                    Eta::InSeconds(s) => (s, s > self.above_s),
                    Eta::Never => (f64::INFINITY, true),
                    Eta::Unknown => (f64::NAN, false),
                };
                group_observation(c, g, value, holds)
            })
            .collect()
    }
}

/// A broker of the cluster's metadata did not answer the latest scrape.
#[derive(Debug)]
pub struct BrokerDown {
    pub cluster: NameMatch,
}

impl RuleKind for BrokerDown {
    fn kind(&self) -> &'static str {
        "kafka_broker_down"
    }
    fn label_names(&self) -> &'static [&'static str] {
        &["cluster", "broker", "address"]
    }
    fn observe(&mut self, snapshot: &Snapshot) -> Vec<Observation> {
        scraped(snapshot, &self.cluster)
            .flat_map(|c| {
                c.brokers.iter().map(|b| {
                    Observation::new(
                        [
                            ("cluster", c.cluster.clone()),
                            ("broker", b.id.to_string()),
                            ("address", b.address.clone()),
                        ],
                        if b.up { 1.0 } else { 0.0 },
                        !b.up,
                    )
                })
            })
            .collect()
    }
}

/// Which partition flag a [`PartitionsFlagged`] rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionFlag {
    UnderReplicated,
    Offline,
}

/// Per topic: how many of its partitions are under-replicated (or offline); holds above 0.
#[derive(Debug)]
pub struct PartitionsFlagged {
    pub flag: PartitionFlag,
    pub cluster: NameMatch,
    pub topic: NameMatch,
}

impl RuleKind for PartitionsFlagged {
    fn kind(&self) -> &'static str {
        match self.flag {
            PartitionFlag::UnderReplicated => "kafka_under_replicated",
            PartitionFlag::Offline => "kafka_offline_partitions",
        }
    }
    fn label_names(&self) -> &'static [&'static str] {
        &["cluster", "topic"]
    }
    fn observe(&mut self, snapshot: &Snapshot) -> Vec<Observation> {
        let mut out = Vec::new();
        for c in scraped(snapshot, &self.cluster) {
            let mut per_topic = std::collections::BTreeMap::<&str, u64>::new();
            for p in c.partitions.iter().filter(|p| self.topic.matches(&p.topic)) {
                let flagged = match self.flag {
                    PartitionFlag::UnderReplicated => p.under_replicated,
                    PartitionFlag::Offline => p.offline,
                };
                *per_topic.entry(&p.topic).or_default() += u64::from(flagged);
            }
            for (topic, count) in per_topic {
                out.push(Observation::new(
                    [("cluster", c.cluster.clone()), ("topic", topic.to_string())],
                    count as f64,
                    count > 0,
                ));
            }
        }
        out
    }
}

/// The latest scrape of the cluster reached no broker.
#[derive(Debug)]
pub struct ClusterUnreachable {
    pub cluster: NameMatch,
}

impl RuleKind for ClusterUnreachable {
    fn kind(&self) -> &'static str {
        "kafka_cluster_unreachable"
    }
    fn label_names(&self) -> &'static [&'static str] {
        &["cluster"]
    }
    fn observe(&mut self, snapshot: &Snapshot) -> Vec<Observation> {
        scraped(snapshot, &self.cluster)
            .map(|c| {
                let down = c.error.is_some();
                Observation::new(
                    [("cluster", c.cluster.clone())],
                    if down { 0.0 } else { 1.0 },
                    down,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::snapshot::{KafkaBrokerFacts, KafkaPartitionFacts};

    fn group(
        name: &str,
        lag: i64,
        seconds: Option<f64>,
        verdict: Verdict,
        eta: Eta,
    ) -> KafkaGroupFacts {
        KafkaGroupFacts {
            group: name.into(),
            lag_offsets: lag,
            max_lag_seconds: seconds,
            verdict,
            eta,
        }
    }

    fn snapshot() -> Snapshot {
        let p = |topic: &str, partition, under_replicated, offline| KafkaPartitionFacts {
            topic: topic.into(),
            partition,
            latest: Some(10),
            under_replicated,
            offline,
        };
        Snapshot {
            time_ms: 1_000,
            kafka: vec![
                KafkaClusterFacts {
                    cluster: "prod".into(),
                    scraped: true,
                    error: None,
                    brokers: vec![
                        KafkaBrokerFacts {
                            id: 1,
                            address: "a:9092".into(),
                            up: true,
                            error: None,
                        },
                        KafkaBrokerFacts {
                            id: 2,
                            address: "b:9092".into(),
                            up: false,
                            error: Some("refused".into()),
                        },
                    ],
                    partitions: vec![
                        p("orders", 0, true, false),
                        p("orders", 1, true, true),
                        p("audit", 0, false, false),
                    ],
                    groups: vec![
                        group("billing", 16, Some(40.0), Verdict::Stalled, Eta::Never),
                        group("search", 15, None, Verdict::Ok, Eta::InSeconds(10.0)),
                        group("orders-reader", 0, Some(0.0), Verdict::Ok, Eta::CaughtUp),
                    ],
                },
                KafkaClusterFacts {
                    cluster: "staging".into(),
                    scraped: false,
                    ..Default::default()
                },
                KafkaClusterFacts {
                    cluster: "dr".into(),
                    scraped: true,
                    error: Some("connection refused".into()),
                    ..Default::default()
                },
            ],
            mqtt: vec![],
            ..Snapshot::default()
        }
    }

    fn holding(kind: &mut dyn RuleKind) -> Vec<(String, f64)> {
        kind.observe(&snapshot())
            .into_iter()
            .filter(|o| o.holds)
            .map(|o| {
                (
                    o.labels.values().cloned().collect::<Vec<_>>().join("/"),
                    o.value,
                )
            })
            .collect()
    }

    #[test]
    fn lag_offsets_holds_strictly_above_the_threshold_and_covers_matching_groups() {
        let mut rule = GroupLagOffsets {
            scope: GroupScope::default(),
            above: 15,
        };
        assert_eq!(holding(&mut rule), vec![("prod/billing".to_string(), 16.0)]);
        assert_eq!(
            rule.observe(&snapshot()).len(),
            3,
            "every group of scraped clusters is observed"
        );
        let mut only_search = GroupLagOffsets {
            scope: GroupScope {
                cluster: NameMatch::any(),
                group: NameMatch::regex("search").unwrap(),
            },
            above: 14,
        };
        assert_eq!(
            holding(&mut only_search),
            vec![("prod/search".to_string(), 15.0)]
        );
    }

    #[test]
    fn lag_seconds_ignores_unknown_lag() {
        let mut rule = GroupLagSeconds {
            scope: GroupScope::default(),
            above_s: 30.0,
        };
        assert_eq!(holding(&mut rule), vec![("prod/billing".to_string(), 40.0)]);
        let observed = rule.observe(&snapshot());
        assert!(observed[1].value.is_nan() && !observed[1].holds);
    }

    #[test]
    fn verdict_in_set_carries_the_verdict_and_its_code() {
        let mut rule = GroupVerdict {
            scope: GroupScope::default(),
            verdicts: vec![Verdict::Stalled, Verdict::Stopped, Verdict::Rewound],
        };
        assert_eq!(holding(&mut rule), vec![("prod/billing".to_string(), 3.0)]);
    }

    #[test]
    fn eta_never_holds_and_unknown_or_caught_up_do_not() {
        let mut rule = GroupEta {
            scope: GroupScope::default(),
            above_s: 5.0,
        };
        let held = holding(&mut rule);
        assert_eq!(held.len(), 2);
        assert_eq!(held[0].0, "prod/billing");
        assert!(held[0].1.is_infinite());
        assert_eq!(held[1], ("prod/search".to_string(), 10.0));
        let mut patient = GroupEta {
            scope: GroupScope::default(),
            above_s: 10.0,
        };
        assert_eq!(holding(&mut patient).len(), 1, "10 s is not above 10 s");
    }

    #[test]
    fn broker_down_partitions_and_cluster_unreachable() {
        let mut down = BrokerDown {
            cluster: NameMatch::any(),
        };
        assert_eq!(holding(&mut down), vec![("b:9092/2/prod".to_string(), 0.0)]);
        let mut under = PartitionsFlagged {
            flag: PartitionFlag::UnderReplicated,
            cluster: NameMatch::any(),
            topic: NameMatch::any(),
        };
        assert_eq!(holding(&mut under), vec![("prod/orders".to_string(), 2.0)]);
        assert_eq!(
            under.observe(&snapshot()).len(),
            2,
            "audit is observed, with 0"
        );
        let mut offline = PartitionsFlagged {
            flag: PartitionFlag::Offline,
            cluster: NameMatch::any(),
            topic: NameMatch::regex("orders").unwrap(),
        };
        assert_eq!(
            holding(&mut offline),
            vec![("prod/orders".to_string(), 1.0)]
        );
        let mut unreachable = ClusterUnreachable {
            cluster: NameMatch::any(),
        };
        assert_eq!(holding(&mut unreachable), vec![("dr".to_string(), 0.0)]);
        assert_eq!(
            unreachable.observe(&snapshot()).len(),
            2,
            "not before its first scrape"
        );
    }
}
