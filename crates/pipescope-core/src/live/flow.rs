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
    /// An MQTT broker's topic subtree an observed flow reads (`[flows.X]`).
    MqttSubtree,
    /// The producers of an observed flow whose traces carry one origin kind.
    Origin,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlowNode {
    /// `producer:<cluster>/<id>`, `topic:<cluster>/<name>`, `group:<cluster>/<name>`,
    /// `mqtt:<broker>/<filter>` or `origin:<flow>/<kind>`.
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
    /// topic's rate (what arrives for the group to read); group → topic: `null`. Edges of an
    /// observed flow: the records matched (origin → hop: counted) over the last minute.
    pub rate_per_min: Option<f64>,
    /// Edges of an observed flow (`[flows.X]`): its name; `null` on the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    /// Observed flows: records lost between the two ends over the last minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<f64>,
    /// Observed flows: records seen again downstream over the last minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicated: Option<f64>,
    /// Observed flows: p99 latency over the last minute in ms — added between the two hops, or
    /// from the origin's timestamp to the hop for origin → hop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_latency_ms: Option<f64>,
    /// Loss over the last minute: draw it red.
    pub alarm: bool,
}

impl FlowEdge {
    fn plain(source: String, target: String, rate_per_min: Option<f64>) -> Self {
        Self {
            source,
            target,
            rate_per_min,
            flow: None,
            lost: None,
            duplicated: None,
            p99_latency_ms: None,
            alarm: false,
        }
    }
}

/// Where an observed flow's hop reads.
#[derive(Debug, Clone, PartialEq)]
pub enum HopPlace {
    Mqtt { broker: String, filter: String },
    Kafka { cluster: String, topic: String },
}

/// Figures over the last minute.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LastMinute {
    /// Records counted (hop) or matched (edge).
    pub records: Option<WindowCount>,
    pub lost: f64,
    pub duplicated: f64,
    pub p99_latency_ms: Option<f64>,
}

/// One hop of an observed flow, as the graph needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedHop {
    pub place: HopPlace,
    /// Per origin kind seen at this hop: its figures there (latency from the origin).
    pub kinds: BTreeMap<String, LastMinute>,
}

/// An edge between two hops (indices into `hops`) of an observed flow.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedEdge {
    pub upstream: usize,
    pub downstream: usize,
    /// Latency here is the latency added between the hops.
    pub figures: LastMinute,
}

/// A configured flow's hops and edges with their latest figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedFlow {
    pub name: String,
    pub hops: Vec<ObservedHop>,
    pub edges: Vec<ObservedEdge>,
}

fn hop_node(place: &HopPlace) -> FlowNode {
    match place {
        HopPlace::Mqtt { broker, filter } => FlowNode {
            id: format!("mqtt:{broker}/{filter}"),
            kind: NodeKind::MqttSubtree,
            label: filter.clone(),
            cluster: broker.clone(),
            rate_per_min: None,
            last_minute: None,
            verdict: None,
        },
        HopPlace::Kafka { cluster, topic } => FlowNode {
            id: topic_id(cluster, topic),
            kind: NodeKind::Topic,
            label: topic.clone(),
            cluster: cluster.clone(),
            rate_per_min: None,
            last_minute: None,
            verdict: None,
        },
    }
}

fn observed_edge(flow: &str, source: String, target: String, f: &LastMinute) -> FlowEdge {
    FlowEdge {
        source,
        target,
        rate_per_min: per_minute(f.records),
        flow: Some(flow.to_owned()),
        lost: Some(f.lost),
        duplicated: Some(f.duplicated),
        p99_latency_ms: f.p99_latency_ms,
        alarm: f.lost > 0.0,
    }
}

/// Adds the observed flows to `graph`: a node per MQTT subtree (Kafka topics share the
/// admin plane's nodes), a node per origin kind with an edge to the first hop that saw it, and
/// an edge per pair of consecutive hops, each with its loss figures. Nodes stay in the order
/// they were first named; nothing already in the graph changes.
pub fn add_flows(graph: &mut FlowGraph, flows: &[ObservedFlow]) {
    let mut known: BTreeSet<String> = graph.nodes.iter().map(|n| n.id.clone()).collect();
    let mut add_node = |graph: &mut FlowGraph, node: FlowNode| {
        if known.insert(node.id.clone()) {
            graph.nodes.push(node);
        }
    };
    for flow in flows {
        let ids: Vec<String> = flow.hops.iter().map(|h| hop_node(&h.place).id).collect();
        for (hop, id) in flow.hops.iter().zip(&ids) {
            let mut node = hop_node(&hop.place);
            if node.kind == NodeKind::MqttSubtree {
                let counted = hop.kinds.values().filter_map(|k| k.records);
                node.last_minute = counted.reduce(WindowCount::plus);
                node.rate_per_min = per_minute(node.last_minute);
            }
            debug_assert_eq!(&node.id, id);
            add_node(graph, node);
        }
        // Each origin kind enters the flow at the first hop that saw it.
        let mut entered: BTreeSet<&str> = BTreeSet::new();
        for (hop, id) in flow.hops.iter().zip(&ids) {
            for (kind, figures) in &hop.kinds {
                if !entered.insert(kind.as_str()) {
                    continue;
                }
                let origin = format!("origin:{}/{kind}", flow.name);
                add_node(
                    graph,
                    FlowNode {
                        id: origin.clone(),
                        kind: NodeKind::Origin,
                        label: format!("origin {kind}"),
                        cluster: flow.name.clone(),
                        rate_per_min: per_minute(figures.records),
                        last_minute: figures.records,
                        verdict: None,
                    },
                );
                graph
                    .edges
                    .push(observed_edge(&flow.name, origin, id.clone(), figures));
            }
        }
        for e in &flow.edges {
            let (Some(up), Some(down)) = (ids.get(e.upstream), ids.get(e.downstream)) else {
                continue;
            };
            graph.edges.push(observed_edge(
                &flow.name,
                up.clone(),
                down.clone(),
                &e.figures,
            ));
        }
    }
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
                edges.push(FlowEdge::plain(
                    pid.clone(),
                    topic_id(cluster, t),
                    per_minute(count),
                ));
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
                edges.push(FlowEdge::plain(
                    topic_id(cluster, t),
                    gid.clone(),
                    per_minute(topics[t.as_str()]),
                ));
            }
            for t in g.writes.iter().collect::<BTreeSet<_>>() {
                edges.push(FlowEdge::plain(gid.clone(), topic_id(cluster, t), None));
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
        FlowEdge::plain(source.into(), target.into(), rate)
    }

    fn last_minute(records: f64, lost: f64, duplicated: f64, p99: f64) -> LastMinute {
        LastMinute {
            records: Some(minute(records)),
            lost,
            duplicated,
            p99_latency_ms: Some(p99),
        }
    }

    /// machine/# at MQTT → machine.data in Kafka, read by a group the admin plane knows.
    fn machines(edge_lost: f64) -> ObservedFlow {
        let sim = |r, l, p| BTreeMap::from([("sim".to_string(), last_minute(r, l, 0.0, p))]);
        ObservedFlow {
            name: "m".into(),
            hops: vec![
                ObservedHop {
                    place: HopPlace::Mqtt {
                        broker: "edge".into(),
                        filter: "machine/#".into(),
                    },
                    kinds: sim(600.0, 0.0, 4.0),
                },
                ObservedHop {
                    place: HopPlace::Kafka {
                        cluster: "c".into(),
                        topic: "calls".into(),
                    },
                    kinds: sim(590.0, edge_lost, 9.0),
                },
            ],
            edges: vec![ObservedEdge {
                upstream: 0,
                downstream: 1,
                figures: last_minute(590.0, edge_lost, 2.0, 5.0),
            }],
        }
    }

    fn admin_plane() -> FlowCluster {
        FlowCluster {
            cluster: "c".into(),
            topics: vec![FlowTopic {
                name: "calls".into(),
                last_minute: Some(minute(590.0)),
                producers: vec![],
            }],
            groups: vec![FlowGroup {
                name: "proc".into(),
                verdict: Some("OK".into()),
                reads: vec!["calls".into()],
                writes: vec![],
            }],
        }
    }

    #[test]
    fn an_observed_flow_joins_the_admin_planes_graph_with_loss_on_its_edges() {
        let mut graph = build(&[admin_plane()]);
        let before = graph.clone();
        add_flows(&mut graph, &[machines(10.0)]);
        // Everything already there stays as it was, first.
        assert_eq!(graph.nodes[..before.nodes.len()], before.nodes[..]);
        assert_eq!(graph.edges[..before.edges.len()], before.edges[..]);
        let added: Vec<(&str, NodeKind, Option<f64>)> = graph.nodes[before.nodes.len()..]
            .iter()
            .map(|n| (n.id.as_str(), n.kind, n.rate_per_min))
            .collect();
        // The Kafka hop is the admin plane's topic node, not a second one.
        assert_eq!(
            added,
            [
                ("mqtt:edge/machine/#", NodeKind::MqttSubtree, Some(600.0)),
                ("origin:m/sim", NodeKind::Origin, Some(600.0)),
            ]
        );
        let flow_edges = &graph.edges[before.edges.len()..];
        assert_eq!(
            flow_edges[0],
            FlowEdge {
                source: "origin:m/sim".into(),
                target: "mqtt:edge/machine/#".into(),
                rate_per_min: Some(600.0),
                flow: Some("m".into()),
                lost: Some(0.0),
                duplicated: Some(0.0),
                p99_latency_ms: Some(4.0),
                alarm: false,
            }
        );
        assert_eq!(
            flow_edges[1],
            FlowEdge {
                source: "mqtt:edge/machine/#".into(),
                target: "topic:c/calls".into(),
                rate_per_min: Some(590.0),
                flow: Some("m".into()),
                lost: Some(10.0),
                duplicated: Some(2.0),
                p99_latency_ms: Some(5.0),
                alarm: true,
            }
        );
        assert_eq!(
            flow_edges.len(),
            2,
            "the kind entered at the first hop only"
        );
    }

    #[test]
    fn an_edge_is_red_only_while_it_loses_and_a_flow_alone_draws_its_topics() {
        let mut graph = build(&[]);
        add_flows(&mut graph, &[machines(0.0), machines(0.0)]);
        assert!(graph.edges.iter().all(|e| !e.alarm));
        let ids: Vec<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
        // Two flows on the same hops share their nodes.
        assert_eq!(
            ids,
            ["mqtt:edge/machine/#", "topic:c/calls", "origin:m/sim"]
        );
        assert_eq!(graph.edges.len(), 4);
        // The plain edges of the admin plane carry no flow fields in JSON.
        let json = serde_json::to_value(edge("a", "b", None)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"source": "a", "target": "b", "rate_per_min": null, "alarm": false})
        );
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
