//! The rule kinds as the configuration names them (`kind = "group_lag_offsets"` …) and how each
//! becomes a core [`RuleKind`]. A new kind: a variant here, its arms below, its file in
//! `pipescope_core::alerts::rules`.

use std::time::Duration;

use pipescope_core::alerts::anomaly::AnomalyConfig;
use pipescope_core::alerts::engine::RuleKind;
use pipescope_core::alerts::rules::NameMatch;
use pipescope_core::alerts::rules::anomaly::{RateAnomaly, RateSource};
use pipescope_core::alerts::rules::kafka::{
    BrokerDown, ClusterUnreachable, GroupEta, GroupLagOffsets, GroupLagSeconds, GroupScope,
    GroupVerdict, PartitionFlag, PartitionsFlagged,
};
use pipescope_core::alerts::rules::mqtt::MqttUnreachable;
use pipescope_core::alerts::rules::parts::PartDown;
use pipescope_core::alerts::rules::pipeline::{EdgeFigure, FlowEdge, QualityDrift, QualityErrors};
use pipescope_core::alerts::rules::silence::{MqttSilent, TopicSilent};
use pipescope_core::kafka::Verdict;
use serde::{Deserialize, Serialize};

/// What a rule watches. `cluster`, `group`, `topic` and `broker` are regexes matched against the
/// whole name (a plain name matches itself); absent, they cover every one.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AlertKindConfig {
    /// A consumer group's lag, summed over its partitions, above `above` offsets.
    GroupLagOffsets {
        cluster: Option<String>,
        group: Option<String>,
        above: i64,
    },
    /// A group's worst partition is more than `above` behind in time.
    GroupLagSeconds {
        cluster: Option<String>,
        group: Option<String>,
        #[serde(with = "humantime_serde")]
        above: Duration,
    },
    /// A group's verdict is one of `verdicts` (WARN, STOPPED, STALLED, REWOUND, LOST).
    GroupVerdict {
        cluster: Option<String>,
        group: Option<String>,
        verdicts: Vec<String>,
    },
    /// A group would take longer than `above` to catch up at its current rates (or never will).
    GroupEta {
        cluster: Option<String>,
        group: Option<String>,
        #[serde(with = "humantime_serde")]
        above: Duration,
    },
    /// No record appended to a topic (or to a partition, `per_partition = true`) for `silent_for`.
    TopicSilent {
        cluster: Option<String>,
        topic: Option<String>,
        #[serde(default)]
        per_partition: bool,
        #[serde(with = "humantime_serde")]
        silent_for: Duration,
    },
    /// No message on any topic an MQTT filter matches for `silent_for`.
    MqttSilent {
        broker: Option<String>,
        filter: String,
        #[serde(with = "humantime_serde")]
        silent_for: Duration,
    },
    /// A Kafka broker did not answer the latest scrape.
    KafkaBrokerDown { cluster: Option<String> },
    /// A topic has under-replicated partitions.
    KafkaUnderReplicated {
        cluster: Option<String>,
        topic: Option<String>,
    },
    /// A topic has partitions without a leader.
    KafkaOfflinePartitions {
        cluster: Option<String>,
        topic: Option<String>,
    },
    /// The latest scrape of a cluster reached no broker.
    KafkaClusterUnreachable { cluster: Option<String> },
    /// The watcher is not connected to an MQTT broker.
    MqttUnreachable { broker: Option<String> },
    /// An observed flow's edge lost more than `above` records over the last minute.
    FlowLost { flow: Option<String>, above: f64 },
    /// An observed flow's edge saw more than `above` duplicates over the last minute.
    FlowDuplicated { flow: Option<String>, above: f64 },
    /// The p99 latency from origin to an edge's downstream hop, over the last minute, above
    /// `above` (a duration).
    FlowLatencyP99 {
        flow: Option<String>,
        #[serde(with = "humantime_serde")]
        above: Duration,
    },
    /// A quality topic's records breaking a rule over the last minute, above `above`.
    QualityErrors { quality: Option<String>, above: f64 },
    /// A quality topic had a schema drift event within the last `hold` (default 15m).
    QualityDrift {
        quality: Option<String>,
        #[serde(default = "default_drift_hold", with = "humantime_serde")]
        hold: Duration,
    },
    /// A watched part (`[watched_parts.X]`) does not answer its `/health`, or (with
    /// `unhealthy = true`, the default) says it is unhealthy.
    PartDown {
        part: Option<String>,
        #[serde(default = "yes")]
        unhealthy: bool,
    },
    /// A topic's (Kafka: `cluster`, `topic`) or an MQTT subtree's (`broker`, `filter`) message
    /// rate far from its usual level for a few windows, without a threshold (docs/alerts.md
    /// "Rate anomalies"). The detector's settings default to the measured ones.
    RateAnomaly {
        cluster: Option<String>,
        topic: Option<String>,
        broker: Option<String>,
        filter: Option<String>,
        #[serde(default = "default_anomaly_window", with = "humantime_serde")]
        window: Duration,
        deviations: Option<f64>,
        windows: Option<u32>,
        volume_floor: Option<f64>,
    },
}

fn yes() -> bool {
    true
}

fn default_anomaly_window() -> Duration {
    Duration::from_secs(300)
}

fn default_drift_hold() -> Duration {
    Duration::from_secs(15 * 60)
}

/// A verdict's name as the configuration writes it.
pub fn parse_verdict(name: &str) -> Option<Verdict> {
    [
        Verdict::Ok,
        Verdict::Warn,
        Verdict::Stopped,
        Verdict::Stalled,
        Verdict::Rewound,
        Verdict::Lost,
    ]
    .into_iter()
    .find(|v| v.as_str().eq_ignore_ascii_case(name))
}

fn matcher(field: &str, pattern: &Option<String>) -> Result<NameMatch, (String, String)> {
    NameMatch::optional(pattern.as_deref())
        .map_err(|e| (field.to_string(), format!("invalid regex: {e}")))
}

fn edge(
    flow: &Option<String>,
    figure: EdgeFigure,
    above: f64,
) -> Result<Box<dyn RuleKind>, (String, String)> {
    if !above.is_finite() || above < 0.0 {
        return Err(("above".into(), format!("{above} is not 0 or more")));
    }
    Ok(Box::new(FlowEdge {
        flow: matcher("flow", flow)?,
        figure,
        above,
    }))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl AlertKindConfig {
    /// The kind's name, as `kind = "…"` writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::GroupLagOffsets { .. } => "group_lag_offsets",
            Self::GroupLagSeconds { .. } => "group_lag_seconds",
            Self::GroupVerdict { .. } => "group_verdict",
            Self::GroupEta { .. } => "group_eta",
            Self::TopicSilent { .. } => "topic_silent",
            Self::MqttSilent { .. } => "mqtt_silent",
            Self::KafkaBrokerDown { .. } => "kafka_broker_down",
            Self::KafkaUnderReplicated { .. } => "kafka_under_replicated",
            Self::KafkaOfflinePartitions { .. } => "kafka_offline_partitions",
            Self::KafkaClusterUnreachable { .. } => "kafka_cluster_unreachable",
            Self::MqttUnreachable { .. } => "mqtt_unreachable",
            Self::FlowLost { .. } => "flow_lost",
            Self::FlowDuplicated { .. } => "flow_duplicated",
            Self::FlowLatencyP99 { .. } => "flow_latency_p99",
            Self::QualityErrors { .. } => "quality_errors",
            Self::QualityDrift { .. } => "quality_drift",
            Self::PartDown { .. } => "part_down",
            Self::RateAnomaly { .. } => "rate_anomaly",
        }
    }

    /// The summary when the rule gives none.
    pub fn default_summary(&self) -> &'static str {
        match self {
            Self::GroupLagOffsets { .. } => {
                "consumer group {group} on {cluster} is {value} offsets behind"
            }
            Self::GroupLagSeconds { .. } => {
                "consumer group {group} on {cluster} is {value} s behind"
            }
            Self::GroupVerdict { .. } => {
                "consumer group {group} on {cluster} has verdict code {value} (2 STOPPED, 3 STALLED, 4 REWOUND, 5 LOST)"
            }
            Self::GroupEta { .. } => {
                "consumer group {group} on {cluster} needs {value} s to catch up (none: never, at these rates)"
            }
            Self::TopicSilent {
                per_partition: false,
                ..
            } => "topic {topic} on {cluster} has had no new record for {value} s",
            Self::TopicSilent {
                per_partition: true,
                ..
            } => {
                "partition {partition} of {topic} on {cluster} has had no new record for {value} s"
            }
            Self::MqttSilent { .. } => {
                "no message on {filter} at MQTT broker {broker} for {value} s"
            }
            Self::KafkaBrokerDown { .. } => {
                "Kafka broker {broker} ({address}) of {cluster} does not answer"
            }
            Self::KafkaUnderReplicated { .. } => {
                "{value} partitions of {topic} on {cluster} are under-replicated"
            }
            Self::KafkaOfflinePartitions { .. } => {
                "{value} partitions of {topic} on {cluster} have no leader"
            }
            Self::KafkaClusterUnreachable { .. } => "Kafka cluster {cluster} cannot be reached",
            Self::MqttUnreachable { .. } => "MQTT broker {broker} cannot be reached",
            Self::FlowLost { .. } => {
                "{value} records lost over the last minute on {edge} of flow {flow}"
            }
            Self::FlowDuplicated { .. } => {
                "{value} records duplicated over the last minute on {edge} of flow {flow}"
            }
            Self::FlowLatencyP99 { .. } => "p99 latency to {edge} of flow {flow} is {value} ms",
            Self::QualityErrors { .. } => {
                "{value} records broke a rule over the last minute on quality topic {quality}"
            }
            Self::QualityDrift { .. } => "schema drift on quality topic {quality} ({value} s ago)",
            Self::PartDown { .. } => {
                "pipeline part {part} is down or unhealthy (1 healthy, 0 unhealthy, -1 down: {value})"
            }
            Self::RateAnomaly {
                filter: Some(_), ..
            } => {
                "{anomaly} in the message rate of {filter} at MQTT broker {broker}: {value} in the last window"
            }
            Self::RateAnomaly { .. } => {
                "{anomaly} in the message rate of {topic} on {cluster}: {value} in the last window"
            }
        }
    }

    /// The `(broker pattern, filter)` an MQTT silence rule asks the snapshot about.
    pub fn mqtt_filter(&self) -> Option<&str> {
        match self {
            Self::MqttSilent { filter, .. } => Some(filter),
            Self::RateAnomaly {
                filter: Some(filter),
                ..
            } => Some(filter),
            _ => None,
        }
    }

    /// The core kind; on a bad setting, the key and what is wrong with it.
    pub fn build(&self) -> Result<Box<dyn RuleKind>, (String, String)> {
        let group_scope = |cluster: &Option<String>, group: &Option<String>| {
            Ok::<_, (String, String)>(GroupScope {
                cluster: matcher("cluster", cluster)?,
                group: matcher("group", group)?,
            })
        };
        Ok(match self {
            Self::GroupLagOffsets {
                cluster,
                group,
                above,
            } => {
                if *above < 0 {
                    return Err(("above".into(), format!("{above} is below 0 offsets")));
                }
                Box::new(GroupLagOffsets {
                    scope: group_scope(cluster, group)?,
                    above: *above,
                })
            }
            Self::GroupLagSeconds {
                cluster,
                group,
                above,
            } => Box::new(GroupLagSeconds {
                scope: group_scope(cluster, group)?,
                above_s: above.as_secs_f64(),
            }),
            Self::GroupVerdict {
                cluster,
                group,
                verdicts,
            } => {
                let mut parsed = Vec::new();
                for name in verdicts {
                    let v = parse_verdict(name).ok_or_else(|| {
                        ("verdicts".to_string(), format!("{name:?} is not a verdict (OK, WARN, STOPPED, STALLED, REWOUND, LOST)"))
                    })?;
                    parsed.push(v);
                }
                if parsed.is_empty() {
                    return Err(("verdicts".into(), "is empty: name the verdicts that alert, e.g. [\"STALLED\", \"STOPPED\", \"REWOUND\"]".into()));
                }
                Box::new(GroupVerdict {
                    scope: group_scope(cluster, group)?,
                    verdicts: parsed,
                })
            }
            Self::GroupEta {
                cluster,
                group,
                above,
            } => Box::new(GroupEta {
                scope: group_scope(cluster, group)?,
                above_s: above.as_secs_f64(),
            }),
            Self::TopicSilent {
                cluster,
                topic,
                per_partition,
                silent_for,
            } => Box::new(TopicSilent::new(
                matcher("cluster", cluster)?,
                matcher("topic", topic)?,
                *per_partition,
                millis(*silent_for),
            )),
            Self::MqttSilent {
                broker,
                filter,
                silent_for,
            } => {
                pipescope_core::mqtt_filter::validate(filter)
                    .map_err(|e| ("filter".to_string(), e.to_string()))?;
                Box::new(MqttSilent {
                    broker: matcher("broker", broker)?,
                    filter: filter.clone(),
                    silent_for_ms: millis(*silent_for),
                })
            }
            Self::KafkaBrokerDown { cluster } => Box::new(BrokerDown {
                cluster: matcher("cluster", cluster)?,
            }),
            Self::KafkaUnderReplicated { cluster, topic } => Box::new(PartitionsFlagged {
                flag: PartitionFlag::UnderReplicated,
                cluster: matcher("cluster", cluster)?,
                topic: matcher("topic", topic)?,
            }),
            Self::KafkaOfflinePartitions { cluster, topic } => Box::new(PartitionsFlagged {
                flag: PartitionFlag::Offline,
                cluster: matcher("cluster", cluster)?,
                topic: matcher("topic", topic)?,
            }),
            Self::KafkaClusterUnreachable { cluster } => Box::new(ClusterUnreachable {
                cluster: matcher("cluster", cluster)?,
            }),
            Self::MqttUnreachable { broker } => Box::new(MqttUnreachable {
                broker: matcher("broker", broker)?,
            }),
            Self::FlowLost { flow, above } => edge(flow, EdgeFigure::Lost, *above)?,
            Self::FlowDuplicated { flow, above } => edge(flow, EdgeFigure::Duplicated, *above)?,
            Self::FlowLatencyP99 { flow, above } => {
                edge(flow, EdgeFigure::P99Ms, above.as_secs_f64() * 1000.0)?
            }
            Self::QualityErrors { quality, above } => {
                if !above.is_finite() || *above < 0.0 {
                    return Err((
                        "above".into(),
                        format!("{above} is not a number of records (0 or more)"),
                    ));
                }
                Box::new(QualityErrors {
                    quality: matcher("quality", quality)?,
                    above: *above,
                })
            }
            Self::QualityDrift { quality, hold } => Box::new(QualityDrift::new(
                matcher("quality", quality)?,
                millis(*hold),
            )),
            Self::PartDown { part, unhealthy } => Box::new(PartDown {
                part: matcher("part", part)?,
                unhealthy_too: *unhealthy,
            }),
            Self::RateAnomaly {
                cluster,
                topic,
                broker,
                filter,
                window,
                deviations,
                windows,
                volume_floor,
            } => {
                let source = match (filter, cluster.is_some() || topic.is_some()) {
                    (Some(_), true) => {
                        return Err(("filter".into(), "names an MQTT subtree, and cluster or topic a Kafka topic: a rule follows one or the other".into()));
                    }
                    (Some(filter), false) => {
                        pipescope_core::mqtt_filter::validate(filter)
                            .map_err(|e| ("filter".to_string(), e.to_string()))?;
                        RateSource::Mqtt {
                            broker: matcher("broker", broker)?,
                            filter: filter.clone(),
                        }
                    }
                    (None, _) if broker.is_some() => {
                        return Err((
                            "broker".into(),
                            "an MQTT rate needs its filter (filter = \"machine/#\")".into(),
                        ));
                    }
                    (None, _) => RateSource::Kafka {
                        cluster: matcher("cluster", cluster)?,
                        topic: matcher("topic", topic)?,
                    },
                };
                let defaults = AnomalyConfig::default();
                let config = AnomalyConfig {
                    window_ms: millis(*window),
                    deviations: deviations.unwrap_or(defaults.deviations),
                    windows: windows.unwrap_or(defaults.windows),
                    volume_floor: volume_floor.unwrap_or(defaults.volume_floor),
                    ..defaults
                };
                Box::new(
                    RateAnomaly::new(source, config)
                        .map_err(|e| ("window".to_string(), e.to_string()))?,
                )
            }
        })
    }

    /// The sources the rule names (key: `cluster`, `broker`, `flow` or `quality`), to check a
    /// plain name against the file.
    pub fn sources(&self) -> (&'static str, Option<&str>) {
        match self {
            Self::GroupLagOffsets { cluster, .. }
            | Self::GroupLagSeconds { cluster, .. }
            | Self::GroupVerdict { cluster, .. }
            | Self::GroupEta { cluster, .. }
            | Self::TopicSilent { cluster, .. }
            | Self::KafkaBrokerDown { cluster }
            | Self::KafkaUnderReplicated { cluster, .. }
            | Self::KafkaOfflinePartitions { cluster, .. }
            | Self::KafkaClusterUnreachable { cluster } => ("cluster", cluster.as_deref()),
            Self::MqttSilent { broker, .. } | Self::MqttUnreachable { broker } => {
                ("broker", broker.as_deref())
            }
            Self::FlowLost { flow, .. }
            | Self::FlowDuplicated { flow, .. }
            | Self::FlowLatencyP99 { flow, .. } => ("flow", flow.as_deref()),
            Self::QualityErrors { quality, .. } | Self::QualityDrift { quality, .. } => {
                ("quality", quality.as_deref())
            }
            Self::PartDown { part, .. } => ("part", part.as_deref()),
            Self::RateAnomaly {
                filter: Some(_),
                broker,
                ..
            } => ("broker", broker.as_deref()),
            Self::RateAnomaly { cluster, .. } => ("cluster", cluster.as_deref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_example_alert_rules_are_valid_once_uncommented() {
        let example = crate::config::EXAMPLE;
        let block = crate::config::example_block("# [alerts]");
        let config = crate::config::parse("example", &format!("{example}\n{block}"), []).unwrap();
        let alerts = &config.alerts;
        assert_eq!(alerts.evaluate_every, Duration::from_secs(15));
        assert_eq!(alerts.rules.len(), 4);
        let lag = &alerts.rules["group_lag"];
        assert_eq!(
            lag.for_duration,
            Duration::from_secs(300),
            "the seed's 5 minutes"
        );
        assert_eq!(
            lag.kind,
            AlertKindConfig::GroupLagOffsets {
                cluster: Some("prod".into()),
                group: None,
                above: 15
            },
            "the seed's 15 offsets"
        );
        assert_eq!(lag.labels["team"], "data");
        for rule in alerts.rules.values() {
            rule.kind.build().unwrap();
        }
        let shipped = crate::config::parse("example", example, []).unwrap();
        assert!(shipped.alerts.rules.is_empty(), "off unless configured");
    }
}
