//! Hops and the edges between them, fed together: what one accounting task of the monitor
//! holds for an observed flow.

use serde::{Deserialize, Serialize};

use super::CompletenessConfig;
use super::edge::{Edge, EdgeFigures, EdgeStreamHandover, End};
use super::hop::{AdoptError, Hop, HopFigures, StreamHandover};
use super::seqset::Outcome;
use crate::EpochMillis;

/// Index of a hop in its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HopId(usize);

/// Hops and edges of one flow.
#[derive(Debug, Clone, Default)]
pub struct Flow {
    hops: Vec<(String, Hop)>,
    edges: Vec<(HopId, HopId, Edge)>,
}

/// A named hop's figures.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedHop {
    pub hop: String,
    pub figures: HopFigures,
}

/// An edge's figures, named by its two hops.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NamedEdge {
    pub upstream: String,
    pub downstream: String,
    pub figures: EdgeFigures,
}

/// A stream's state in every hop and edge of a flow, in the order they were added: what one
/// instance hands another when a partition moves (both instances configure the flow alike).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FlowHandover {
    pub hops: Vec<Vec<StreamHandover>>,
    pub edges: Vec<Vec<EdgeStreamHandover>>,
}

/// Everything a flow shows.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowFigures {
    pub hops: Vec<NamedHop>,
    pub edges: Vec<NamedEdge>,
}

impl Flow {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a hop that started watching at `since_ms`.
    pub fn add_hop(
        &mut self,
        name: impl Into<String>,
        config: CompletenessConfig,
        since_ms: EpochMillis,
    ) -> HopId {
        self.hops.push((name.into(), Hop::new(config, since_ms)));
        HopId(self.hops.len() - 1)
    }

    /// Adds the edge from `upstream` to `downstream`; it starts when the downstream hop did and
    /// uses its config (its grace is how long the downstream hop may take).
    pub fn add_edge(&mut self, upstream: HopId, downstream: HopId) {
        let hop = &self.hops[downstream.0].1;
        let edge = Edge::new(hop.config().clone(), hop.watching_since());
        self.edges.push((upstream, downstream, edge));
    }

    /// Hop `id`'s reader is in place only from `since_ms` (a Kafka reader fixes its start
    /// positions when it connects, maybe well after the flow began): the hop and the edges into
    /// it judge from then.
    pub fn watching_from(&mut self, id: HopId, since_ms: EpochMillis) {
        self.hops[id.0].1.watching_from(since_ms);
        for (_, down, edge) in &mut self.edges {
            if *down == id {
                edge.downstream_watching_from(since_ms);
            }
        }
    }

    pub fn hop_mut(&mut self, id: HopId) -> &mut Hop {
        &mut self.hops[id.0].1
    }

    pub fn hop(&self, id: HopId) -> &Hop {
        &self.hops[id.0].1
    }

    /// One traced record at hop `id`; every edge touching the hop is told its outcome.
    pub fn observe(
        &mut self,
        id: HopId,
        origin: &str,
        stream: &str,
        seq: u64,
        origin_ms: EpochMillis,
        arrival_ms: EpochMillis,
    ) -> Outcome {
        let outcome = self.hops[id.0]
            .1
            .observe(origin, stream, seq, origin_ms, arrival_ms);
        self.tell_edges(id, origin, stream, seq, outcome, origin_ms, arrival_ms);
        outcome
    }

    /// [`Flow::observe`] for a record read from Kafka `partition` whose stream is not the
    /// partition (see [`Hop::observe_in_partition`]).
    #[allow(clippy::too_many_arguments)]
    pub fn observe_in_partition(
        &mut self,
        id: HopId,
        partition: u32,
        origin: &str,
        stream: &str,
        seq: u64,
        origin_ms: EpochMillis,
        arrival_ms: EpochMillis,
    ) -> Outcome {
        let outcome = self.hops[id.0]
            .1
            .observe_in_partition(partition, origin, stream, seq, origin_ms, arrival_ms);
        self.tell_edges(id, origin, stream, seq, outcome, origin_ms, arrival_ms);
        outcome
    }

    #[allow(clippy::too_many_arguments)]
    fn tell_edges(
        &mut self,
        id: HopId,
        origin: &str,
        stream: &str,
        seq: u64,
        outcome: Outcome,
        origin_ms: EpochMillis,
        arrival_ms: EpochMillis,
    ) {
        for (up, down, edge) in &mut self.edges {
            let end = if *up == id {
                End::Upstream
            } else if *down == id {
                End::Downstream
            } else {
                continue;
            };
            edge.observe(end, origin, stream, seq, outcome, origin_ms, arrival_ms);
        }
    }

    /// Takes `stream` (a partition) out of every hop and edge.
    pub fn hand_over(&mut self, stream: &str) -> FlowHandover {
        FlowHandover {
            hops: self
                .hops
                .iter_mut()
                .map(|(_, h)| h.hand_over(stream))
                .collect(),
            edges: self
                .edges
                .iter_mut()
                .map(|(_, _, e)| e.hand_over(stream))
                .collect(),
        }
    }

    /// Takes every stream read from Kafka `partition` (through [`Flow::observe_in_partition`])
    /// out of every hop, and the same (origin, stream) out of every edge.
    pub fn hand_over_partition(&mut self, partition: u32) -> FlowHandover {
        let hops: Vec<Vec<StreamHandover>> = self
            .hops
            .iter_mut()
            .map(|(_, h)| h.hand_over_partition(partition))
            .collect();
        let mut keys: Vec<(&str, &str)> = hops
            .iter()
            .flatten()
            .map(|h| (h.origin.as_str(), h.stream.as_str()))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let edges = self
            .edges
            .iter_mut()
            .map(|(_, _, e)| {
                keys.iter()
                    .filter_map(|(o, s)| e.hand_over_one(o, s))
                    .collect()
            })
            .collect();
        FlowHandover { hops, edges }
    }

    /// Hop `id` reads only part of its streams (Kafka partitions shared with other monitor
    /// instances): every edge into it counts only streams it saw here
    /// ([`Edge::share_downstream`]).
    pub fn share_hop(&mut self, id: HopId) {
        for (_, down, edge) in &mut self.edges {
            if *down == id {
                edge.share_downstream();
            }
        }
    }

    /// Takes every stream hop `id` read from Kafka `partition` out of that hop
    /// ([`Hop::hand_over_read_from`]), and the same (origin, stream) out of the edges into it:
    /// what a shared flow hands another instance when the hop's partition moves there. Other
    /// hops (another topic's partition of the same number) keep theirs.
    pub fn hand_over_hop_partition(&mut self, id: HopId, partition: u32) -> FlowHandover {
        let mut hops: Vec<Vec<StreamHandover>> = vec![Vec::new(); self.hops.len()];
        hops[id.0] = self.hops[id.0].1.hand_over_read_from(partition);
        let keys: Vec<(&str, &str)> = hops[id.0]
            .iter()
            .map(|h| (h.origin.as_str(), h.stream.as_str()))
            .collect();
        let edges = self
            .edges
            .iter_mut()
            .map(|(_, down, e)| {
                if *down != id {
                    return Vec::new();
                }
                keys.iter()
                    .filter_map(|(o, s)| e.hand_over_one(o, s))
                    .collect()
            })
            .collect();
        FlowHandover { hops, edges }
    }

    /// Takes over what another instance handed over; it must have the same hops and edges.
    pub fn adopt(&mut self, handover: FlowHandover) -> Result<(), AdoptError> {
        if handover.hops.len() != self.hops.len() || handover.edges.len() != self.edges.len() {
            return Err(AdoptError::OtherFlow {
                hops: handover.hops.len(),
                edges: handover.edges.len(),
            });
        }
        for ((_, hop), streams) in self.hops.iter_mut().zip(handover.hops) {
            for s in streams {
                hop.adopt(s)?;
            }
        }
        for ((_, _, edge), streams) in self.edges.iter_mut().zip(handover.edges) {
            for s in streams {
                edge.adopt(s)?;
            }
        }
        Ok(())
    }

    pub fn tick(&mut self, now: EpochMillis) {
        for (_, hop) in &mut self.hops {
            hop.tick(now);
        }
        for (_, _, edge) in &mut self.edges {
            edge.tick(now);
        }
    }

    pub fn figures(&self) -> FlowFigures {
        FlowFigures {
            hops: self
                .hops
                .iter()
                .map(|(name, hop)| NamedHop {
                    hop: name.clone(),
                    figures: hop.figures(),
                })
                .collect(),
            edges: self
                .edges
                .iter()
                .map(|(up, down, edge)| NamedEdge {
                    upstream: self.hops[up.0].0.clone(),
                    downstream: self.hops[down.0].0.clone(),
                    figures: edge.figures(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::EdgeCounters;
    use super::*;

    const T0: u64 = 1_700_000_000_000;
    const GRACE: u64 = 10_000;

    /// The simulator publishes to MQTT (hop A, `machine/#`), the bridge carries it to Kafka
    /// (hop B, `machine.data`, streams keyed by the carried-over MQTT topic).
    struct Pipeline {
        flow: Flow,
        mqtt: HopId,
        kafka: HopId,
    }

    impl Pipeline {
        fn new() -> Self {
            Self::watching(T0, T0)
        }

        fn watching(mqtt_since: u64, kafka_since: u64) -> Self {
            let mut flow = Flow::new();
            let mqtt = flow.add_hop("mqtt machine/#", CompletenessConfig::default(), mqtt_since);
            let kafka = flow.add_hop(
                "kafka machine.data",
                CompletenessConfig::default(),
                kafka_since,
            );
            flow.add_edge(mqtt, kafka);
            Self { flow, mqtt, kafka }
        }

        fn at(&mut self, hop: HopId, seqs: impl IntoIterator<Item = u64>, made: u64, arrived: u64) {
            for seq in seqs {
                self.flow
                    .observe(hop, "sim-1", "machine/line1/m1", seq, made, arrived);
            }
        }

        fn edge(&mut self, now: u64) -> EdgeCounters {
            self.flow.tick(now);
            self.flow.figures().edges[0].figures.total.counters
        }

        fn hop_lost_and_duplicated(&self, hop: HopId) -> (u64, u64) {
            let c = self.flow.hop(hop).figures().total.counters;
            (c.lost, c.duplicated)
        }
    }

    #[test]
    fn bridge_killed_mid_stream_gives_duplicates_downstream_only_and_nothing_lost() {
        let mut p = Pipeline::new();
        p.at(p.mqtt, 0..100, T0 + 1_000, T0 + 1_005);
        // The bridge wrote 0..60 to Kafka, was killed before acking 50..59 to MQTT, and
        // on restart got them redelivered: Kafka holds 50..59 twice.
        p.at(p.kafka, 0..60, T0 + 1_000, T0 + 1_020);
        p.at(p.kafka, 50..100, T0 + 1_000, T0 + 4_000);
        let e = p.edge(T0 + 60_000);
        assert_eq!((e.lost, e.duplicated, e.matched), (0, 10, 100));
        assert_eq!(p.hop_lost_and_duplicated(p.mqtt), (0, 0));
        assert_eq!(p.hop_lost_and_duplicated(p.kafka), (0, 10));
    }

    #[test]
    fn seven_records_dropped_by_a_queue_limit_are_seven_lost_between_and_none_upstream() {
        let mut p = Pipeline::new();
        let dropped = [3, 17, 18, 40, 41, 42, 99];
        p.at(p.mqtt, 0..100, T0 + 1_000, T0 + 1_005);
        p.at(
            p.kafka,
            (0..100).filter(|s| !dropped.contains(s)),
            T0 + 1_000,
            T0 + 1_050,
        );
        assert_eq!(p.edge(T0 + 1_005 + GRACE - 1).lost, 0, "within the grace");
        let e = p.edge(T0 + 1_005 + GRACE);
        assert_eq!((e.lost, e.duplicated, e.matched), (7, 0, 93));
        assert_eq!(p.hop_lost_and_duplicated(p.mqtt), (0, 0));
        // Kafka's own count misses the last one: nothing came after 99 to reveal the gap.
        p.edge(T0 + 60_000);
        assert_eq!(p.hop_lost_and_duplicated(p.kafka), (6, 0));
    }

    #[test]
    fn loss_upstream_of_the_first_hop_is_not_lost_between() {
        let mut p = Pipeline::new();
        let upstream_gap = |s: &u64| !(10..15).contains(s);
        p.at(
            p.mqtt,
            (0..100).filter(upstream_gap),
            T0 + 1_000,
            T0 + 1_005,
        );
        p.at(
            p.kafka,
            (0..100).filter(upstream_gap),
            T0 + 1_000,
            T0 + 1_050,
        );
        let e = p.edge(T0 + 60_000);
        assert_eq!((e.lost, e.duplicated, e.matched), (0, 0, 95));
        assert_eq!(p.hop_lost_and_duplicated(p.mqtt), (5, 0));
        assert_eq!(p.hop_lost_and_duplicated(p.kafka), (5, 0));
    }

    #[test]
    fn a_late_record_downstream_is_taken_off_the_loss_and_counted_late() {
        let mut p = Pipeline::new();
        p.at(p.mqtt, 0..50, T0 + 1_000, T0 + 1_005);
        p.at(
            p.kafka,
            (0..50).filter(|s| *s != 20),
            T0 + 1_000,
            T0 + 1_050,
        );
        assert_eq!(p.edge(T0 + 20_000).lost, 1);
        p.at(p.kafka, [20], T0 + 1_000, T0 + 25_000);
        let e = p.edge(T0 + 30_000);
        assert_eq!((e.lost, e.late, e.matched), (0, 1, 49));
        let windows = p.flow.figures().edges[0].figures.total.windows;
        assert_eq!(windows.lost.one_minute.count, 1.0);
        assert_eq!(windows.late.one_minute.count, 1.0);
        let kafka = p.flow.hop(p.kafka).figures().total.counters;
        assert_eq!((kafka.lost, kafka.late), (0, 1));
    }

    #[test]
    fn the_edge_starts_when_the_downstream_hop_started_and_either_reader_may_run_ahead() {
        // MQTT has been watched since T0, Kafka only since T0 + 10 s.
        let mut p = Pipeline::watching(T0, T0 + 10_000);
        // Seen on MQTT before Kafka was watched: not the edge's.
        p.at(p.mqtt, 0..40, T0 + 1_000, T0 + 1_000);
        // The Kafka reader is ahead of the MQTT reader for 40..60.
        p.at(p.kafka, 30..60, T0 + 1_000, T0 + 10_500);
        p.at(p.mqtt, 40..100, T0 + 1_000, T0 + 11_000);
        p.at(p.kafka, 60..100, T0 + 1_000, T0 + 11_500);
        let e = p.edge(T0 + 100_000);
        assert_eq!(
            (e.lost, e.duplicated, e.matched, e.downstream_only),
            (0, 0, 60, 0)
        );
        assert_eq!(p.hop_lost_and_duplicated(p.kafka), (0, 0));
    }

    #[test]
    fn records_written_downstream_before_its_reader_started_are_not_lost_between() {
        let mut p = Pipeline::watching(T0, T0 + 10_000);
        // The bridge wrote 100..=102 to Kafka just before the Kafka reader's start position;
        // the MQTT reader saw them just after the Kafka reader started.
        p.at(p.mqtt, 100..110, T0 + 9_990, T0 + 10_001);
        p.at(p.kafka, 103..110, T0 + 9_990, T0 + 10_002);
        let e = p.edge(T0 + 60_000);
        assert_eq!((e.lost, e.matched, e.before_downstream_base), (0, 7, 3));
    }

    #[test]
    fn below_the_downstream_base_nothing_is_lost_between_even_when_upstream_sees_it_later() {
        let mut p = Pipeline::watching(T0, T0 + 1_000);
        // The Kafka reader, started at T0 + 1 s, is ahead: its first record of the stream is 5.
        p.at(p.kafka, 5..10, T0 + 995, T0 + 1_010);
        // The MQTT reader then sees 3..10; 3 and 4 reached Kafka before its reader started.
        p.at(p.mqtt, 3..10, T0 + 995, T0 + 1_020);
        let e = p.edge(T0 + 60_000);
        assert_eq!((e.lost, e.matched, e.before_downstream_base), (0, 5, 2));
    }

    #[test]
    fn what_upstream_saw_before_the_downstream_reader_connected_is_not_lost_between() {
        let mut p = Pipeline::new();
        p.at(p.mqtt, 0..10, T0 + 1_000, T0 + 1_005);
        // The Kafka reader connected 5 s after the flow began: its start position is past 0..5.
        p.flow.watching_from(p.kafka, T0 + 5_000);
        p.at(p.kafka, 6..20, T0 + 1_000, T0 + 5_100);
        p.at(p.mqtt, 10..20, T0 + 5_000, T0 + 5_005);
        let e = p.edge(T0 + 60_000);
        assert_eq!((e.lost, e.matched, e.before_downstream_base), (0, 14, 6));
        assert_eq!(p.flow.hop(p.kafka).watching_since(), T0 + 5_000);
        // An earlier time does not move it back.
        p.flow.watching_from(p.kafka, T0);
        assert_eq!(p.flow.hop(p.kafka).watching_since(), T0 + 5_000);
    }

    #[test]
    fn the_first_records_of_a_stream_lost_between_are_lost_not_before_the_downstream_base() {
        // Both readers started at T0; the streams begin 5 s later, so the Kafka reader was
        // there to see every record of them: what it misses is lost, first records included.
        let mut p = Pipeline::new();
        p.at(p.mqtt, 0..10, T0 + 5_000, T0 + 5_005);
        p.at(p.kafka, 1..10, T0 + 5_000, T0 + 5_020);
        let e = p.edge(T0 + 60_000);
        assert_eq!((e.lost, e.matched, e.before_downstream_base), (1, 9, 0));
        // The same with the Kafka reader ahead of the MQTT one: 0 and 1 of another stream.
        let other = "machine/line1/m2";
        for seq in 2..10 {
            p.flow
                .observe(p.kafka, "sim-1", other, seq, T0 + 70_000, T0 + 70_010);
        }
        for seq in 0..10 {
            p.flow
                .observe(p.mqtt, "sim-1", other, seq, T0 + 70_000, T0 + 70_020);
        }
        let e = p.edge(T0 + 120_000);
        assert_eq!((e.lost, e.matched, e.before_downstream_base), (3, 17, 0));
    }

    #[test]
    fn records_deleted_downstream_before_its_reader_got_there_are_not_lost_between() {
        let mut p = Pipeline::new();
        p.at(p.mqtt, 0..100, T0 + 1_000, T0 + 1_005);
        p.at(p.kafka, 0..10, T0 + 1_000, T0 + 1_010);
        // The Kafka reader fell behind the log start: 10..50 were deleted unread.
        p.flow.hop_mut(p.kafka).rebase_on_next("machine/line1/m1");
        p.at(p.kafka, 50..100, T0 + 1_000, T0 + 5_000);
        let e = p.edge(T0 + 60_000);
        assert_eq!((e.lost, e.matched, e.before_downstream_base), (0, 60, 40));
        assert_eq!(p.hop_lost_and_duplicated(p.kafka), (0, 0));
    }

    #[test]
    fn added_latency_is_what_the_downstream_hop_adds() {
        let mut p = Pipeline::new();
        for seq in 0..200u64 {
            let made = T0 + 1_000 + seq;
            p.at(p.mqtt, [seq], made, made + 10 + seq % 10);
            p.at(p.kafka, [seq], made, made + 60 + seq % 10);
        }
        p.flow.tick(T0 + 2_000);
        let added = p.flow.figures().edges[0].figures.total.added_latency;
        // 50 ms added to every record; within 1 % of 19 ms plus 1 % of 69 ms.
        for q in [added.all.p50_ms, added.all.p99_ms, added.one_minute.p90_ms] {
            let q = q.unwrap();
            assert!((q - 50.0).abs() <= 0.88, "{q}");
        }
    }

    #[test]
    fn edge_state_is_trimmed_past_the_horizon_and_idle_streams_are_forgotten() {
        let mut p = Pipeline::new();
        // Every other record lost between: 500 one-number spans.
        p.at(p.mqtt, 0..1_000, T0 + 1_000, T0 + 1_005);
        p.at(
            p.kafka,
            (0..1_000).filter(|s| s % 2 == 0),
            T0 + 1_000,
            T0 + 1_010,
        );
        assert_eq!(p.edge(T0 + 20_000).lost, 500);
        let held = p.flow.edges[0].2.stream_heap_bytes();
        let e = p.edge(T0 + 20_000 + 60_000);
        assert_eq!(
            (e.lost, e.lost_trimmed),
            (500, 500),
            "still lost, no longer held"
        );
        assert!(p.flow.edges[0].2.stream_heap_bytes() < held);
        p.at(p.kafka, [1], T0 + 1_000, T0 + 90_000);
        let e = p.edge(T0 + 90_000);
        assert_eq!(
            (e.lost, e.late),
            (500, 0),
            "a copy past the horizon is not judged late"
        );
        p.flow.tick(T0 + 90_000 + 900_000 + 60_000);
        assert_eq!(p.flow.edges[0].2.stream_count(), 0);
        // The Kafka hop trimmed that part too, so it told the edge it could not judge it.
        let kafka = p.flow.hop(p.kafka).figures().total.counters;
        assert_eq!(kafka.past_horizon, 1);
    }

    #[test]
    fn a_partition_handed_over_mid_stream_stays_exact_across_instances() {
        let mut one = Pipeline::new();
        let mut two = Pipeline::new();
        one.at(one.mqtt, 0..50, T0 + 1_000, T0 + 1_005);
        one.at(
            one.kafka,
            (0..40).filter(|s| *s != 7),
            T0 + 1_000,
            T0 + 1_050,
        );
        let wire = serde_json::to_string(&one.flow.hand_over("machine/line1/m1")).unwrap();
        two.flow
            .adopt(serde_json::from_str(&wire).unwrap())
            .unwrap();
        // Instance two carries on; 7 never reaches Kafka, 60 is dropped after the move.
        two.at(two.mqtt, 50..100, T0 + 1_000, T0 + 2_000);
        two.at(
            two.kafka,
            (40..100).filter(|s| *s != 60),
            T0 + 1_000,
            T0 + 2_050,
        );
        let (e1, e2) = (one.edge(T0 + 30_000), two.edge(T0 + 30_000));
        assert_eq!((e1.matched, e1.lost), (39, 0));
        assert_eq!((e2.matched, e2.lost, e2.duplicated), (59, 2, 0));
        assert_eq!(one.hop_lost_and_duplicated(one.mqtt), (0, 0));
        assert_eq!(two.hop_lost_and_duplicated(two.mqtt), (0, 0));
        assert_eq!(two.hop_lost_and_duplicated(two.kafka), (2, 0));
        // A flow of another shape is refused.
        let mut other = Flow::new();
        other.add_hop("x", CompletenessConfig::default(), T0);
        let err = other
            .adopt(one.flow.hand_over("machine/line1/m1"))
            .unwrap_err();
        assert!(err.to_string().contains("same hops and edges"), "{err}");
    }

    #[test]
    fn a_kafka_partition_moves_with_the_mqtt_topics_read_from_it() {
        let (mut one, mut two) = (Pipeline::new(), Pipeline::new());
        // Instance two reads MQTT too, but has not seen machine/line1/m1 yet.
        one.at(one.mqtt, 0..20, T0 + 1_000, T0 + 1_005);
        for seq in (0..20).filter(|s| *s != 4) {
            one.flow.observe_in_partition(
                one.kafka,
                5,
                "sim-1",
                "machine/line1/m1",
                seq,
                T0 + 1_000,
                T0 + 1_050,
            );
        }
        let moved = one.flow.hand_over_partition(5);
        assert_eq!(
            (
                moved.hops[0].len(),
                moved.hops[1].len(),
                moved.edges[0].len()
            ),
            (0, 1, 1)
        );
        assert_eq!(one.flow.edges[0].2.stream_count(), 0);
        two.flow.adopt(moved).unwrap();
        two.at(two.mqtt, 20..30, T0 + 1_000, T0 + 2_000);
        for seq in 20..30 {
            two.flow.observe_in_partition(
                two.kafka,
                5,
                "sim-1",
                "machine/line1/m1",
                seq,
                T0 + 1_000,
                T0 + 2_050,
            );
        }
        let e = two.edge(T0 + 30_000);
        // 4 was seen on MQTT at instance one and never reached Kafka: lost once, at two.
        assert_eq!((e.matched, e.lost, e.duplicated), (10, 1, 0));
        assert_eq!(two.hop_lost_and_duplicated(two.kafka), (1, 0));
    }

    /// A pipeline whose Kafka hop is shared with another monitor instance.
    fn shared() -> Pipeline {
        let mut p = Pipeline::new();
        p.flow.share_hop(p.kafka);
        p
    }

    fn in_partition(p: &mut Pipeline, partition: u32, stream: &str, seqs: std::ops::Range<u64>) {
        for seq in seqs {
            p.flow.observe_in_partition(
                p.kafka,
                partition,
                "sim-1",
                stream,
                seq,
                T0 + 1_000,
                T0 + 1_050,
            );
        }
    }

    fn at_mqtt(p: &mut Pipeline, stream: &str, seqs: std::ops::Range<u64>) {
        for seq in seqs {
            p.flow
                .observe(p.mqtt, "sim-1", stream, seq, T0 + 1_000, T0 + 1_005);
        }
    }

    #[test]
    fn a_shared_kafka_hop_judges_only_the_streams_it_reads_here() {
        // Both instances see every MQTT topic; the bridge writes machine/a to partition 0 (read
        // by instance one) and machine/b to partition 1 (read by instance two).
        let (mut one, mut two) = (shared(), shared());
        for p in [&mut one, &mut two] {
            at_mqtt(p, "machine/a", 0..50);
            at_mqtt(p, "machine/b", 0..50);
        }
        in_partition(&mut one, 0, "machine/a", 0..50);
        // Real loss on the edge is still counted where the stream is read: 30 never arrives.
        for seq in (0..50).filter(|s| *s != 30) {
            two.flow.observe_in_partition(
                two.kafka,
                1,
                "sim-1",
                "machine/b",
                seq,
                T0 + 1_000,
                T0 + 1_050,
            );
        }
        let (e1, e2) = (one.edge(T0 + 60_000), two.edge(T0 + 60_000));
        assert_eq!((e1.matched, e1.lost, e1.duplicated), (50, 0, 0));
        assert_eq!((e2.matched, e2.lost, e2.duplicated), (49, 1, 0));
        // machine/b waits at instance one only for the grace, and is let go, not lost.
        assert_eq!(one.flow.figures().edges[0].figures.streams, 2);
        // Unshared, each instance would count the other's stream lost.
        let mut alone = Pipeline::new();
        at_mqtt(&mut alone, "machine/a", 0..50);
        at_mqtt(&mut alone, "machine/b", 0..50);
        in_partition(&mut alone, 0, "machine/a", 0..50);
        assert_eq!(alone.edge(T0 + 60_000).lost, 50);
    }

    #[test]
    fn a_shared_partition_moved_mid_stream_stays_exact_on_the_edge() {
        let (mut one, mut two) = (shared(), shared());
        // Both see MQTT; instance one reads partition 5 up to seq 39, then the group moves it.
        at_mqtt(&mut one, "machine/a", 0..50);
        at_mqtt(&mut two, "machine/a", 0..50);
        in_partition(&mut one, 5, "machine/a", 0..40);
        let moved = one.flow.hand_over_hop_partition(one.kafka, 5);
        assert_eq!(
            (
                moved.hops[0].len(),
                moved.hops[1].len(),
                moved.edges[0].len()
            ),
            (0, 1, 1)
        );
        let wire = serde_json::to_string(&moved).unwrap();
        two.flow
            .adopt(serde_json::from_str(&wire).unwrap())
            .unwrap();
        at_mqtt(&mut one, "machine/a", 50..100);
        at_mqtt(&mut two, "machine/a", 50..100);
        in_partition(&mut two, 5, "machine/a", 40..100);
        let (e1, e2) = (one.edge(T0 + 60_000), two.edge(T0 + 60_000));
        assert_eq!((e1.matched, e1.lost, e1.duplicated), (40, 0, 0));
        assert_eq!((e2.matched, e2.lost, e2.duplicated), (60, 0, 0));
        // Instance one still sees machine/a upstream: held there unjudged.
        assert_eq!(one.flow.figures().edges[0].figures.streams, 1);
        let k = two.flow.hop(two.kafka).figures().total.counters;
        assert_eq!((k.records, k.lost, k.duplicated), (60, 0, 0));
    }

    #[test]
    fn a_hop_partition_hand_over_takes_that_hop_s_streams_of_the_partition_only() {
        let mut flow = Flow::new();
        let config = CompletenessConfig::default;
        let mqtt = flow.add_hop("mqtt", config(), T0);
        let calls = flow.add_hop("kafka calls", config(), T0);
        let out = flow.add_hop("kafka out", config(), T0);
        flow.add_edge(mqtt, calls);
        flow.add_edge(calls, out);
        flow.share_hop(calls);
        flow.share_hop(out);
        for seq in 0..5 {
            flow.observe(mqtt, "sim-1", "machine/a", seq, T0, T0 + 1);
            flow.observe_in_partition(calls, 2, "sim-1", "machine/a", seq, T0, T0 + 2);
            flow.observe_in_partition(calls, 3, "sim-1", "machine/b", seq, T0, T0 + 2);
            // A trace stamped per partition: its stream is the partition.
            flow.observe(calls, "proc-1", "2", seq, T0, T0 + 2);
            flow.observe(out, "proc-1", "2", seq, T0, T0 + 3);
        }
        let moved = flow.hand_over_hop_partition(calls, 2);
        let names = |v: &Vec<StreamHandover>| {
            v.iter()
                .map(|h| format!("{}/{}", h.origin, h.stream))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&moved.hops[1]), ["proc-1/2", "sim-1/machine/a"]);
        assert!(moved.hops[0].is_empty() && moved.hops[2].is_empty());
        // The edge into the hop moves with it (proc-1/2 waits there for an upstream sighting).
        assert_eq!(moved.edges[0].len(), 2);
        assert!(
            moved.edges[1].is_empty(),
            "the edge out of it follows its own hop"
        );
        assert_eq!(flow.hop(calls).stream_count(), 1);
        assert_eq!(flow.hop(out).stream_count(), 1);
        let moved = flow.hand_over_hop_partition(out, 2);
        assert_eq!(names(&moved.hops[2]), ["proc-1/2"]);
        assert_eq!(moved.edges[1].len(), 1);
    }

    #[test]
    fn flow_figures_serialize_with_hop_and_edge_names() {
        let mut p = Pipeline::new();
        p.at(p.mqtt, 0..3, T0, T0 + 1);
        let json = serde_json::to_value(p.flow.figures()).unwrap();
        assert_eq!(json["hops"][1]["hop"], "kafka machine.data");
        assert_eq!(json["edges"][0]["upstream"], "mqtt machine/#");
        assert_eq!(json["edges"][0]["figures"]["total"]["counters"]["lost"], 0);
        assert!(json["edges"][0]["figures"]["total"]["added_latency"]["1m"]["p50_ms"].is_null());
    }
}
