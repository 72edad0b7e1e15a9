//! `pipescope_probe_*` on `/metrics`, read at scrape time. Bounded: per configured probe, and
//! for a Kafka probe per partition of its probe topic (at most 1,024), for a bridge probe per
//! hop (two).

use pipescope_core::completeness::Quantiles;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use pipescope_core::completeness::HopFigures;
use pipescope_core::completeness::probe::ProduceFigures;

use super::{ProbeView, ProbesState};
use crate::completeness::metrics::{Series, encode_families};

/// Every metric name this module emits (deploy/metrics.txt lists them).
pub const NAMES: [&str; 11] = [
    "pipescope_probe_sent_total",
    "pipescope_probe_acked_total",
    "pipescope_probe_availability_ratio",
    "pipescope_probe_ack_latency_seconds",
    "pipescope_probe_read_total",
    "pipescope_probe_lost_total",
    "pipescope_probe_duplicated_total",
    "pipescope_probe_e2e_latency_seconds",
    "pipescope_probe_edge_lost_total",
    "pipescope_probe_edge_duplicated_total",
    "pipescope_probe_edge_added_latency_seconds",
];

fn help(name: &str) -> &'static str {
    match name {
        "pipescope_probe_sent_total" => "Probe records whose produce outcome is known",
        "pipescope_probe_acked_total" => "Probe records acknowledged within the probe's timeout",
        "pipescope_probe_availability_ratio" => {
            "Probe records acknowledged within the timeout over those sent, last minute"
        }
        "pipescope_probe_ack_latency_seconds" => {
            "Send to acknowledgement of probe records over the last minute, by quantile"
        }
        "pipescope_probe_read_total" => "Probe records read back, every copy",
        "pipescope_probe_lost_total" => {
            "Acknowledged probe records not read back within the grace period"
        }
        "pipescope_probe_duplicated_total" => "Probe records read back more than once",
        "pipescope_probe_e2e_latency_seconds" => {
            "Send to read-back of probe records over the last minute, by quantile"
        }
        "pipescope_probe_edge_lost_total" => {
            "Bridge probe messages read on MQTT, not from Kafka within the grace period"
        }
        "pipescope_probe_edge_duplicated_total" => {
            "Bridge probe copies in Kafka beyond the copies read on MQTT"
        }
        "pipescope_probe_edge_added_latency_seconds" => {
            "Latency the bridge adds to probe messages over the last minute (Kafka minus MQTT end-to-end quantile)"
        }
        _ => "",
    }
}

fn quantiles(
    out: &mut Vec<Series>,
    name: &'static str,
    labels: &[(String, String)],
    q: &Quantiles,
) {
    for (quantile, value) in [
        ("0.5", q.p50_ms),
        ("0.9", q.p90_ms),
        ("0.99", q.p99_ms),
        ("0.999", q.p999_ms),
    ] {
        if let Some(ms) = value {
            let mut l = labels.to_vec();
            l.push(("quantile".into(), quantile.into()));
            out.push(Series {
                name,
                labels: l,
                value: ms / 1000.0,
            });
        }
    }
}

fn push(out: &mut Vec<Series>, name: &'static str, labels: &[(String, String)], value: f64) {
    out.push(Series {
        name,
        labels: labels.to_vec(),
        value,
    });
}

fn produce_series(out: &mut Vec<Series>, labels: &[(String, String)], p: &ProduceFigures) {
    push(out, "pipescope_probe_sent_total", labels, p.sent as f64);
    push(out, "pipescope_probe_acked_total", labels, p.acked as f64);
    if let Some(a) = p.availability.one_minute {
        push(out, "pipescope_probe_availability_ratio", labels, a);
    }
    quantiles(
        out,
        "pipescope_probe_ack_latency_seconds",
        labels,
        &p.ack_latency.one_minute,
    );
}

fn read_series(out: &mut Vec<Series>, labels: &[(String, String)], read: &HopFigures) {
    let c = &read.total.counters;
    push(out, "pipescope_probe_read_total", labels, c.records as f64);
    push(out, "pipescope_probe_lost_total", labels, c.lost as f64);
    push(
        out,
        "pipescope_probe_duplicated_total",
        labels,
        c.duplicated as f64,
    );
    quantiles(
        out,
        "pipescope_probe_e2e_latency_seconds",
        labels,
        &read.total.latency.one_minute,
    );
}

fn label(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

/// The series of one probe: (name, labels, value). `system` says which kind of probe; the
/// other labels are configured names (a cluster, a broker, a probe, topics) and Kafka
/// partitions of the probe topic.
pub fn probe_series(view: &ProbeView) -> Vec<Series> {
    let mut out = Vec::new();
    match view {
        ProbeView::Kafka(view) => {
            for p in &view.partitions {
                let labels = [
                    label("system", "kafka"),
                    label("cluster", &view.cluster),
                    label("topic", &view.topic),
                    label("partition", &p.partition.to_string()),
                ];
                produce_series(&mut out, &labels, &p.produce);
                read_series(&mut out, &labels, &p.read);
            }
        }
        ProbeView::Mqtt(view) => {
            let labels = [
                label("system", "mqtt"),
                label("broker", &view.broker),
                label("topic", &view.topic),
            ];
            produce_series(&mut out, &labels, &view.produce);
            read_series(&mut out, &labels, &view.read);
        }
        ProbeView::Bridge(view) => {
            let labels = [label("system", "bridge"), label("probe", &view.name)];
            produce_series(&mut out, &labels, &view.produce);
            for hop in &view.flow.hops {
                let mut l = labels.to_vec();
                l.push(label("hop", &hop.hop));
                read_series(&mut out, &l, &hop.figures);
            }
            for edge in &view.flow.edges {
                let e = &edge.figures.total;
                push(
                    &mut out,
                    "pipescope_probe_edge_lost_total",
                    &labels,
                    e.counters.lost as f64,
                );
                push(
                    &mut out,
                    "pipescope_probe_edge_duplicated_total",
                    &labels,
                    e.counters.duplicated as f64,
                );
                let added = &e.added_latency.one_minute;
                let q = Quantiles {
                    p50_ms: added.p50_ms,
                    p90_ms: added.p90_ms,
                    p99_ms: added.p99_ms,
                    p999_ms: added.p999_ms,
                    ..Quantiles::default()
                };
                quantiles(
                    &mut out,
                    "pipescope_probe_edge_added_latency_seconds",
                    &labels,
                    &q,
                );
            }
        }
    }
    out
}

/// Exports every probe's figures at scrape time.
#[derive(Debug)]
pub struct ProbeCollector {
    state: ProbesState,
}

impl ProbeCollector {
    pub fn new(state: ProbesState) -> Self {
        Self { state }
    }
}

impl Collector for ProbeCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let series = self.state.all().iter().flat_map(probe_series).collect();
        encode_families(encoder, series, help)
    }
}

#[cfg(test)]
mod tests {
    use pipescope_core::completeness::probe::ProduceAccount;
    use pipescope_core::completeness::{CompletenessConfig, Flow, Hop};

    use super::super::{BridgeProbeView, KafkaProbeView, MqttProbeView, ProbePartitionView};
    use super::*;

    #[test]
    fn every_kind_of_probe_gives_listed_series_only_and_together_all_of_them() {
        let mut produce = ProduceAccount::default();
        let mut read = Hop::new(CompletenessConfig::default(), 0);
        for seq in 0..30 {
            let at = 1_000 + seq * 1_000;
            produce.acked(at, at + 3, 5_000);
            read.observe("pipescope-probe-local-0", "0", seq, at, at + 7);
        }
        read.tick(40_000);
        let view = ProbeView::Kafka(KafkaProbeView {
            cluster: "local".into(),
            topic: "pipescope-probe".into(),
            origin: "pipescope-probe-local-0".into(),
            updated_ms: 40_000,
            reading: true,
            last_error: None,
            partitions: vec![ProbePartitionView {
                partition: 0,
                leader: Some(1),
                produce: produce.figures(40_000, 0),
                read: read.figures(),
            }],
            brokers: Vec::new(),
        });
        let mqtt = ProbeView::Mqtt(Box::new(MqttProbeView {
            broker: "edge".into(),
            topic: "pipescope/probe".into(),
            origin: "pipescope-probe-edge-0".into(),
            updated_ms: 40_000,
            publishing: true,
            reading: true,
            last_error: None,
            produce: produce.figures(40_000, 0),
            read: read.figures(),
        }));
        let mut flow = Flow::new();
        let (a, b) = (
            flow.add_hop("mqtt", CompletenessConfig::default(), 0),
            flow.add_hop("kafka", CompletenessConfig::default(), 0),
        );
        flow.add_edge(a, b);
        for seq in 0..30 {
            let at = 1_000 + seq * 1_000;
            flow.observe(a, "o", "machine/probe/x", seq, at, at + 5);
            flow.observe(b, "o", "machine/probe/x", seq, at, at + 20);
        }
        flow.tick(40_000);
        let bridge = ProbeView::Bridge(Box::new(BridgeProbeView {
            name: "machines".into(),
            mqtt: "edge".into(),
            mqtt_topic: "machine/probe/x".into(),
            kafka: "local".into(),
            kafka_topic: "machine.data".into(),
            origin: "o".into(),
            updated_ms: 40_000,
            publishing: true,
            mqtt_reading: true,
            kafka_reading: true,
            last_error: None,
            produce: produce.figures(40_000, 0),
            flow: flow.figures(),
        }));
        let bridge_series = probe_series(&bridge);
        let added = bridge_series
            .iter()
            .find(|s| s.name == "pipescope_probe_edge_added_latency_seconds")
            .unwrap();
        assert!((added.value - 0.015).abs() < 0.001, "{added:?}");
        assert!(
            bridge_series
                .iter()
                .any(|s| s.name == "pipescope_probe_read_total"
                    && s.labels.contains(&("hop".into(), "kafka".into())))
        );
        let mqtt_series = probe_series(&mqtt);
        assert_eq!(
            mqtt_series[0].labels,
            vec![
                ("system".to_string(), "mqtt".to_string()),
                ("broker".into(), "edge".into()),
                ("topic".into(), "pipescope/probe".into())
            ]
        );
        let kafka_series = probe_series(&view);
        let all: Vec<Series> = kafka_series
            .into_iter()
            .chain(mqtt_series)
            .chain(bridge_series)
            .collect();
        for s in &all {
            assert!(NAMES.contains(&s.name), "{} is not listed", s.name);
        }
        for name in NAMES {
            assert!(all.iter().any(|s| s.name == name), "{name} missing");
        }
        let value = |name: &str| all.iter().find(|s| s.name == name).unwrap().value;
        assert_eq!(value("pipescope_probe_availability_ratio"), 1.0);
        assert_eq!(value("pipescope_probe_read_total"), 30.0);
        assert_eq!(value("pipescope_probe_lost_total"), 0.0);
        let listed = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/metrics.txt"
        ))
        .unwrap();
        for name in NAMES {
            assert!(
                listed
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some(name)),
                "{name} is not in deploy/metrics.txt"
            );
        }
    }
}
