//! The live state as the rules read it: the Kafka watchers' latest scrapes and the MQTT
//! watchers' connections and topic trees, copied into a core [`Snapshot`].

use std::collections::BTreeSet;

use pipescope_core::EpochMillis;
use pipescope_core::alerts::snapshot::{
    Eta, FlowEdgeFacts, KafkaBrokerFacts, KafkaClusterFacts, KafkaGroupFacts, KafkaPartitionFacts,
    MqttBrokerFacts, PartFacts, QualityFacts, Snapshot,
};
use pipescope_core::kafka::analyzer::GroupView;
use pipescope_core::kafka::lag::CatchUp;

use crate::completeness::FlowsState;
use crate::config::Config;
use crate::kafka::{ClusterState, LiveState};
use crate::mqtt::{ConnState, MqttState};
use crate::parts_watch::PartsState;
use crate::quality::QualityState;

/// What the rules need beyond the live state: the configured clusters (one not scraped yet is
/// known to be so) and the MQTT filters the silence rules ask about.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub clusters: Vec<String>,
    pub mqtt_filters: BTreeSet<String>,
}

impl Plan {
    pub fn of(config: &Config) -> Self {
        Self {
            clusters: config.kafka.keys().cloned().collect(),
            mqtt_filters: config
                .alerts
                .rules
                .values()
                .filter_map(|r| r.kind.mqtt_filter())
                .map(str::to_string)
                .collect(),
        }
    }
}

/// Whether every source has been seen once: every configured cluster scraped (reached or not),
/// every MQTT broker past its first connection attempt. Before that an alert restored from the
/// store would resolve for want of data, and a broker still connecting would look down.
pub fn every_source_seen(plan: &Plan, kafka: &LiveState, mqtt: &MqttState) -> bool {
    plan.clusters.iter().all(|c| kafka.get(c).is_some())
        && mqtt.brokers().all(|b| {
            let connection = b.connection();
            connection.state != ConnState::Connecting
                || connection.connects > 0
                || connection.failed_attempts > 0
        })
}

/// Every source the rules read.
#[derive(Debug, Clone)]
pub struct Live {
    pub kafka: LiveState,
    pub mqtt: MqttState,
    pub parts: PartsState,
    pub flows: FlowsState,
    pub quality: QualityState,
}

pub fn take(plan: &Plan, live: &Live, now: EpochMillis) -> Snapshot {
    let (kafka, mqtt) = (&live.kafka, &live.mqtt);
    Snapshot {
        edges: live
            .flows
            .all()
            .into_iter()
            .flat_map(|flow| {
                flow.edges
                    .into_iter()
                    .map(|e| {
                        let total = &e.figures.total;
                        FlowEdgeFacts {
                            flow: flow.flow.clone(),
                            edge: format!("{} → {}", e.upstream, e.downstream),
                            lost_1m: total.windows.lost.one_minute.count,
                            duplicated_1m: total.windows.duplicated.one_minute.count,
                            p99_ms_1m: total.downstream_latency.one_minute.p99_ms,
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect(),
        quality: live
            .quality
            .topics()
            .map(|t| {
                let view = crate::quality::api::topic_view(t, now);
                QualityFacts {
                    name: view.name,
                    error_records_1m: view.error_records.one_minute.count,
                    drift_events_total: view.drift.events_total.values().sum(),
                }
            })
            .collect(),
        time_ms: now,
        parts: live
            .parts
            .parts()
            .into_iter()
            .map(|p| PartFacts {
                name: p.name,
                polled: p.polled,
                up: p.up,
                healthy: p.healthy,
                error: p.last_error,
            })
            .collect(),
        kafka: plan
            .clusters
            .iter()
            .map(|name| match kafka.get(name) {
                Some(state) => cluster_facts(&state),
                None => KafkaClusterFacts {
                    cluster: name.clone(),
                    ..KafkaClusterFacts::default()
                },
            })
            .collect(),
        mqtt: mqtt
            .brokers()
            .map(|b| {
                let connection = b.connection().clone();
                let tree = b.tree();
                let mut last_seen: Vec<(String, Option<EpochMillis>)> = plan
                    .mqtt_filters
                    .iter()
                    .map(|f| (f.clone(), None))
                    .collect();
                let mut messages: Vec<(String, u64)> =
                    plan.mqtt_filters.iter().map(|f| (f.clone(), 0)).collect();
                if !last_seen.is_empty() {
                    for (topic, figures) in tree.topics(now) {
                        for ((filter, last), (_, count)) in
                            last_seen.iter_mut().zip(messages.iter_mut())
                        {
                            if pipescope_core::mqtt_filter::matches(filter, topic) {
                                *last = (*last).max(figures.last_seen_ms);
                                *count += figures.messages;
                            }
                        }
                    }
                }
                let connected = connection.state == ConnState::Connected;
                MqttBrokerFacts {
                    broker: b.name.clone(),
                    connected,
                    error: connection.last_error.clone(),
                    down_since_ms: if connected {
                        None
                    } else {
                        connection.down_since_ms.or(connection.since_ms)
                    },
                    counting_since_ms: tree.summary().counting_since_ms,
                    last_seen,
                    messages,
                }
            })
            .collect(),
    }
}

fn cluster_facts(state: &ClusterState) -> KafkaClusterFacts {
    KafkaClusterFacts {
        cluster: state.name.clone(),
        scraped: true,
        error: state.error.clone(),
        brokers: state
            .brokers
            .iter()
            .map(|b| KafkaBrokerFacts {
                id: b.id,
                address: format!("{}:{}", b.host, b.port),
                up: b.up,
                error: b.error.clone(),
            })
            .collect(),
        partitions: state
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| KafkaPartitionFacts {
                    topic: t.name.clone(),
                    partition: p.partition,
                    latest: p.latest.as_ref().ok().copied(),
                    under_replicated: p.under_replicated,
                    offline: p.offline,
                })
            })
            .collect(),
        groups: state
            .view
            .as_ref()
            .map(|view| view.groups.iter().map(group_facts).collect())
            .unwrap_or_default(),
    }
}

fn group_facts(group: &GroupView) -> KafkaGroupFacts {
    KafkaGroupFacts {
        group: group.group.clone(),
        lag_offsets: group.lag_offsets,
        max_lag_seconds: group.max_lag_seconds,
        verdict: group.verdict,
        eta: worst_eta(
            group
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| p.catch_up),
        ),
    }
}

/// The slowest partition's time to catch up: never beats any number of seconds; unknown only
/// when no partition's is known.
fn worst_eta(catch_ups: impl Iterator<Item = CatchUp>) -> Eta {
    let mut worst = None;
    for catch_up in catch_ups {
        let eta = match catch_up {
            CatchUp::CaughtUp => Eta::CaughtUp,
            CatchUp::InSeconds { seconds, .. } => Eta::InSeconds(seconds),
            CatchUp::FallingBehind { .. } => Eta::Never,
            CatchUp::Unknown => continue,
        };
        worst = Some(match (worst, eta) {
            (None, e) => e,
            (Some(Eta::Never), _) | (_, Eta::Never) => Eta::Never,
            (Some(Eta::InSeconds(a)), Eta::InSeconds(b)) => Eta::InSeconds(a.max(b)),
            (Some(Eta::InSeconds(a)), _) | (Some(_), Eta::InSeconds(a)) => Eta::InSeconds(a),
            (Some(w), _) => w,
        });
    }
    worst.unwrap_or(Eta::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_groups_eta_is_its_slowest_partitions() {
        let secs = |seconds| CatchUp::InSeconds {
            seconds,
            rates_over_s: 60.0,
            rates_over_intervals: 6,
        };
        let never = CatchUp::FallingBehind {
            rates_over_s: 60.0,
            rates_over_intervals: 6,
        };
        let eta = |all: Vec<CatchUp>| worst_eta(all.into_iter());
        assert_eq!(eta(vec![]), Eta::Unknown);
        assert_eq!(eta(vec![CatchUp::Unknown]), Eta::Unknown);
        assert_eq!(
            eta(vec![CatchUp::CaughtUp, CatchUp::Unknown]),
            Eta::CaughtUp
        );
        assert_eq!(
            eta(vec![CatchUp::CaughtUp, secs(5.0), secs(9.0), secs(2.0)]),
            Eta::InSeconds(9.0)
        );
        assert_eq!(eta(vec![secs(5.0), CatchUp::CaughtUp]), Eta::InSeconds(5.0));
        assert_eq!(eta(vec![secs(5.0), never, secs(9.0)]), Eta::Never);
    }
}
