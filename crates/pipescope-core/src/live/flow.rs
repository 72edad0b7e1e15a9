//! The flow graph: producers → topics → consumer groups (→ the topics a group writes to, where
//! that is known), with rates on nodes and edges and verdicts on groups.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::windows::WindowCount;

/// What the graph of one cluster is built from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowCluster {
    pub cluster: String,
    pub topics: Vec<FlowTopic>,
    pub groups: Vec<FlowGroup>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowTopic {
    pub name: String,
    /// Records produced over the last minute, summed over its partitions, when known.
    pub last_minute: Option<WindowCount>,
    /// Producer ids the broker reported on any of its partitions (DescribeProducers).
    pub producers: Vec<i64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowGroup {
    pub name: String,
    /// `OK`, `WARN`... when analysed.
    pub verdict: Option<String>,
    /// Topics it has committed offsets on or is assigned partitions of.
    pub reads: Vec<String>,
    /// Topics it is known to write to.
    pub writes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowGraph {
    pub nodes: Vec<FlowNode>,
    pub edges: Vec<FlowEdge>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Producer,
    Topic,
    Group,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowNode {
    /// `producer:<cluster>/<id>`, `topic:<cluster>/<name>` or `group:<cluster>/<name>`.
    pub id: String,
    pub kind: NodeKind,
    pub label: String,
    pub cluster: String,
    /// Topics: their produce rate over the last minute (`null` until the monitor has watched a
    /// whole minute). Producers: the sum of the rates of the topics they are the only producer
    /// of, when that is all of their topics. Groups: `null`.
    pub rate_per_min: Option<f64>,
    /// What `rate_per_min` comes from: the count over the last minute, or over the part of it
    /// watched so far (`covered_s`: "since start"). Groups: `null`.
    pub last_minute: Option<WindowCount>,
    /// Groups: their verdict when analysed; otherwise `null`.
    pub verdict: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowEdge {
    pub source: String,
    pub target: String,
    /// producer → topic: the topic's rate when the producer is its only one; topic → group: the
    /// topic's rate (what arrives for the group to read); group → topic: `null`.
    pub rate_per_min: Option<f64>,
}

fn per_minute(count: Option<WindowCount>) -> Option<f64> {
    count?.per_minute
}

fn topic_id(cluster: &str, topic: &str) -> String {
    format!("topic:{cluster}/{topic}")
}

/// The graph of every cluster, nodes and edges in a stable order (by cluster, then kind, then
/// name), so successive graphs differ only where the pipeline did.
pub fn build(clusters: &[FlowCluster]) -> FlowGraph {
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for c in clusters {
        let cluster = c.cluster.as_str();
        // Every topic named anywhere gets a node; rates only from the topic list.
        let mut topics: BTreeMap<&str, Option<WindowCount>> = c
            .topics
            .iter()
            .map(|t| (t.name.as_str(), t.last_minute))
            .collect();
        for g in &c.groups {
            for t in g.reads.iter().chain(&g.writes) {
                topics.entry(t.as_str()).or_insert(None);
            }
        }
        // producer id → the topics it writes (sorted, no duplicates).
        let mut producers: BTreeMap<i64, BTreeSet<&str>> = BTreeMap::new();
        for t in &c.topics {
            for p in &t.producers {
                producers.entry(*p).or_default().insert(t.name.as_str());
            }
        }
        let sole = |topic: &str| -> bool {
            c.topics
                .iter()
                .filter(|t| t.name == topic)
                .flat_map(|t| &t.producers)
                .collect::<BTreeSet<_>>()
                .len()
                == 1
        };
        for (id, written) in &producers {
            let counts: Vec<Option<WindowCount>> = written
                .iter()
                .map(|t| if sole(t) { topics[t] } else { None })
                .collect();
            // Known only when every one of its topics' counts is.
            let count = counts
                .iter()
                .copied()
                .collect::<Option<Vec<_>>>()
                .and_then(|all| all.into_iter().reduce(WindowCount::plus));
            let pid = format!("producer:{cluster}/{id}");
            nodes.push(FlowNode {
                id: pid.clone(),
                kind: NodeKind::Producer,
                label: format!("producer {id}"),
                cluster: cluster.to_owned(),
                rate_per_min: per_minute(count),
                last_minute: count,
                verdict: None,
            });
            for (t, count) in written.iter().zip(counts) {
                edges.push(FlowEdge {
                    source: pid.clone(),
                    target: topic_id(cluster, t),
                    rate_per_min: per_minute(count),
                });
            }
        }
        for (name, count) in &topics {
            nodes.push(FlowNode {
                id: topic_id(cluster, name),
                kind: NodeKind::Topic,
                label: (*name).to_owned(),
                cluster: cluster.to_owned(),
                rate_per_min: per_minute(*count),
                last_minute: *count,
                verdict: None,
            });
        }
        let mut groups: Vec<&FlowGroup> = c.groups.iter().collect();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        for g in groups {
            let gid = format!("group:{cluster}/{}", g.name);
            nodes.push(FlowNode {
                id: gid.clone(),
                kind: NodeKind::Group,
                label: g.name.clone(),
                cluster: cluster.to_owned(),
                rate_per_min: None,
                last_minute: None,
                verdict: g.verdict.clone(),
            });
            for t in g.reads.iter().collect::<BTreeSet<_>>() {
                edges.push(FlowEdge {
                    source: topic_id(cluster, t),
                    target: gid.clone(),
                    rate_per_min: per_minute(topics[t.as_str()]),
                });
            }
            for t in g.writes.iter().collect::<BTreeSet<_>>() {
                edges.push(FlowEdge {
                    source: gid.clone(),
                    target: topic_id(cluster, t),
                    rate_per_min: None,
                });
            }
        }
    }
    FlowGraph { nodes, edges }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::windows::Window;

    /// A covered last minute of `per_minute` records.
    fn minute(per_minute: f64) -> WindowCount {
        WindowCount::new(Window::OneMinute, per_minute, 60_000)
    }

    fn node(
        id: &str,
        kind: NodeKind,
        label: &str,
        rate: Option<f64>,
        verdict: Option<&str>,
    ) -> FlowNode {
        FlowNode {
            id: id.into(),
            kind,
            label: label.into(),
            cluster: "c".into(),
            rate_per_min: rate,
            last_minute: rate.map(minute),
            verdict: verdict.map(Into::into),
        }
    }

    fn edge(source: &str, target: &str, rate: Option<f64>) -> FlowEdge {
        FlowEdge {
            source: source.into(),
            target: target.into(),
            rate_per_min: rate,
        }
    }

    #[test]
    fn producers_topics_groups_and_known_writes() {
        let input = FlowCluster {
            cluster: "c".into(),
            topics: vec![
                FlowTopic {
                    name: "calls".into(),
                    last_minute: Some(minute(600.0)),
                    producers: vec![7, 7],
                },
                FlowTopic {
                    name: "shared".into(),
                    last_minute: Some(minute(30.0)),
                    producers: vec![8, 7],
                },
                FlowTopic {
                    name: "quiet".into(),
                    last_minute: None,
                    producers: vec![],
                },
            ],
            groups: vec![
                FlowGroup {
                    name: "proc".into(),
                    verdict: Some("OK".into()),
                    reads: vec!["calls".into(), "calls".into()],
                    writes: vec!["out".into()],
                },
                FlowGroup {
                    name: "lag".into(),
                    verdict: None,
                    reads: vec!["shared".into()],
                    writes: vec![],
                },
            ],
        };
        let graph = build(&[input]);
        assert_eq!(
            graph.nodes,
            [
                // 7 writes calls alone (600) and shared with 8 (unknown share): no sum.
                node("producer:c/7", NodeKind::Producer, "producer 7", None, None),
                node("producer:c/8", NodeKind::Producer, "producer 8", None, None),
                node("topic:c/calls", NodeKind::Topic, "calls", Some(600.0), None),
                // Named only as a group's output: a node without a rate.
                node("topic:c/out", NodeKind::Topic, "out", None, None),
                node("topic:c/quiet", NodeKind::Topic, "quiet", None, None),
                node(
                    "topic:c/shared",
                    NodeKind::Topic,
                    "shared",
                    Some(30.0),
                    None
                ),
                node("group:c/lag", NodeKind::Group, "lag", None, None),
                node("group:c/proc", NodeKind::Group, "proc", None, Some("OK")),
            ]
        );
        assert_eq!(
            graph.edges,
            [
                edge("producer:c/7", "topic:c/calls", Some(600.0)),
                edge("producer:c/7", "topic:c/shared", None),
                edge("producer:c/8", "topic:c/shared", None),
                edge("topic:c/shared", "group:c/lag", Some(30.0)),
                edge("topic:c/calls", "group:c/proc", Some(600.0)),
                edge("group:c/proc", "topic:c/out", None),
            ]
        );
    }

    #[test]
    fn a_sole_producer_carries_its_topics_rates_and_clusters_stay_apart() {
        let a = FlowCluster {
            cluster: "a".into(),
            topics: vec![
                FlowTopic {
                    name: "t1".into(),
                    last_minute: Some(minute(60.0)),
                    producers: vec![1],
                },
                FlowTopic {
                    name: "t2".into(),
                    last_minute: Some(minute(6.0)),
                    producers: vec![1],
                },
            ],
            groups: vec![],
        };
        let b = FlowCluster {
            cluster: "b".into(),
            topics: vec![FlowTopic {
                name: "t1".into(),
                last_minute: Some(minute(1.5)),
                producers: vec![1],
            }],
            groups: vec![],
        };
        let graph = build(&[a, b]);
        let rates: Vec<(&str, Option<f64>)> = graph
            .nodes
            .iter()
            .map(|n| (n.id.as_str(), n.rate_per_min))
            .collect();
        assert_eq!(
            rates,
            [
                ("producer:a/1", Some(66.0)),
                ("topic:a/t1", Some(60.0)),
                ("topic:a/t2", Some(6.0)),
                ("producer:b/1", Some(1.5)),
                ("topic:b/t1", Some(1.5)),
            ]
        );
        assert_eq!(graph.edges.len(), 3);
        assert!(build(&[]).nodes.is_empty());
    }

    #[test]
    fn a_minute_not_yet_watched_carries_its_count_and_no_rate() {
        let young = WindowCount::new(Window::OneMinute, 5.0, 2_000);
        let c = FlowCluster {
            cluster: "c".into(),
            topics: vec![
                FlowTopic {
                    name: "new".into(),
                    last_minute: Some(young),
                    producers: vec![1],
                },
                FlowTopic {
                    name: "old".into(),
                    last_minute: Some(minute(60.0)),
                    producers: vec![1],
                },
            ],
            groups: vec![],
        };
        let graph = build(&[c]);
        let producer = &graph.nodes[0];
        assert_eq!(producer.rate_per_min, None, "not scaled up from 2 s");
        let sum = producer.last_minute.expect("a count");
        assert_eq!((sum.count, sum.covered_s), (65.0, 2.0));
        assert_eq!(graph.nodes[1].rate_per_min, None);
        assert_eq!(graph.nodes[1].last_minute, Some(young));
        assert_eq!(graph.nodes[2].rate_per_min, Some(60.0));
    }
}
