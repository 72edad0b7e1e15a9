//! `pipescope_completeness_*`: the same series for Prometheus (read at scrape time) and for the
//! bus. Bounded: per flow, hop (or edge) and origin kind (at most `max_kinds` per hop), never
//! per origin instance or stream.

use std::collections::BTreeMap;

use pipescope_core::completeness::{AddedLatency, Quantiles};
use pipescope_core::{Labels, Sample};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::{FlowView, FlowsState};

/// One value of one series; counters end in `_total`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: &'static str,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

fn help(name: &str) -> &'static str {
    match name {
        "pipescope_completeness_hop_records_total" => "Traced records read at a hop, every copy",
        "pipescope_completeness_hop_lost_total" => {
            "Sequence numbers missing at a hop past the grace period, minus late arrivals"
        }
        "pipescope_completeness_hop_duplicated_total" => "Copies of a record already seen at a hop",
        "pipescope_completeness_hop_late_total" => {
            "Records that arrived at a hop after being counted lost"
        }
        "pipescope_completeness_hop_out_of_order_total" => {
            "Records that filled a gap at a hop within the grace period"
        }
        "pipescope_completeness_hop_latency_seconds" => {
            "Origin timestamp to arrival at a hop over the last minute, by quantile"
        }
        "pipescope_completeness_hop_malformed_total" => {
            "Records at a hop whose trace header could not be read"
        }
        "pipescope_completeness_hop_untraced_total" => "Records at a hop without a trace header",
        "pipescope_completeness_hop_streams" => "(origin, stream) pairs a hop tracks",
        "pipescope_completeness_hop_reader_connected" => "1 when a hop's reader is connected",
        "pipescope_completeness_hop_reader_blocked_seconds_total" => {
            "Time a hop's reader waited for the flow's accounting to take what it read (backpressure)"
        }
        "pipescope_completeness_edge_matched_total" => "Records seen at both ends of an edge",
        "pipescope_completeness_edge_lost_total" => {
            "Records seen upstream and not downstream within the grace period, minus late ones"
        }
        "pipescope_completeness_edge_duplicated_total" => "Copies added between an edge's two hops",
        "pipescope_completeness_edge_late_total" => {
            "Records downstream after being counted lost on an edge"
        }
        "pipescope_completeness_edge_added_latency_seconds" => {
            "Latency added between an edge's two hops over the last minute, by quantile (difference of the hops' quantiles)"
        }
        _ => "Completeness figure",
    }
}

fn quantiles(q: &Quantiles) -> [(&'static str, Option<f64>); 4] {
    [
        ("0.5", q.p50_ms),
        ("0.9", q.p90_ms),
        ("0.99", q.p99_ms),
        ("0.999", q.p999_ms),
    ]
}

fn added(q: &AddedLatency) -> [(&'static str, Option<f64>); 4] {
    [
        ("0.5", q.p50_ms),
        ("0.9", q.p90_ms),
        ("0.99", q.p99_ms),
        ("0.999", q.p999_ms),
    ]
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every series of one flow.
pub fn flow_series(view: &FlowView) -> Vec<Series> {
    let mut out = Vec::new();
    let mut push = |name: &'static str, labels: Vec<(String, String)>, value: f64| {
        out.push(Series {
            name,
            labels,
            value,
        });
    };
    let flow = view.flow.as_str();
    for hop in &view.hops {
        let at = [("flow", flow), ("hop", hop.hop.as_str())];
        let f = &hop.figures;
        push(
            "pipescope_completeness_hop_malformed_total",
            labels(&at),
            f.malformed as f64,
        );
        push(
            "pipescope_completeness_hop_untraced_total",
            labels(&at),
            hop.reader.untraced as f64,
        );
        push(
            "pipescope_completeness_hop_streams",
            labels(&at),
            f.streams as f64,
        );
        push(
            "pipescope_completeness_hop_reader_connected",
            labels(&at),
            f64::from(u8::from(hop.reader.connected)),
        );
        push(
            "pipescope_completeness_hop_reader_blocked_seconds_total",
            labels(&at),
            hop.reader.blocked_s,
        );
        for (kind, k) in &f.by_kind {
            let with_kind = labels(&[at[0], at[1], ("kind", kind.as_str())]);
            let c = &k.counters;
            for (name, value) in [
                ("pipescope_completeness_hop_records_total", c.records),
                ("pipescope_completeness_hop_lost_total", c.lost),
                ("pipescope_completeness_hop_duplicated_total", c.duplicated),
                ("pipescope_completeness_hop_late_total", c.late),
                (
                    "pipescope_completeness_hop_out_of_order_total",
                    c.out_of_order,
                ),
            ] {
                push(name, with_kind.clone(), value as f64);
            }
            for (q, ms) in quantiles(&k.latency.one_minute) {
                if let Some(ms) = ms {
                    let mut l = with_kind.clone();
                    l.push(("quantile".into(), q.into()));
                    push("pipescope_completeness_hop_latency_seconds", l, ms / 1000.0);
                }
            }
        }
    }
    for edge in &view.edges {
        for (kind, k) in &edge.figures.by_kind {
            let with_kind = labels(&[
                ("flow", flow),
                ("upstream", edge.upstream.as_str()),
                ("downstream", edge.downstream.as_str()),
                ("kind", kind.as_str()),
            ]);
            let c = &k.counters;
            for (name, value) in [
                ("pipescope_completeness_edge_matched_total", c.matched),
                ("pipescope_completeness_edge_lost_total", c.lost),
                ("pipescope_completeness_edge_duplicated_total", c.duplicated),
                ("pipescope_completeness_edge_late_total", c.late),
            ] {
                push(name, with_kind.clone(), value as f64);
            }
            for (q, ms) in added(&k.added_latency.one_minute) {
                if let Some(ms) = ms {
                    let mut l = with_kind.clone();
                    l.push(("quantile".into(), q.into()));
                    push(
                        "pipescope_completeness_edge_added_latency_seconds",
                        l,
                        ms / 1000.0,
                    );
                }
            }
        }
    }
    out
}

/// The flow's series as samples for the bus, at the figures' time.
pub fn samples(view: &FlowView) -> Vec<Sample> {
    flow_series(view)
        .into_iter()
        .map(|s| Sample::new(s.name, Labels::new(s.labels), view.updated_ms, s.value))
        .collect()
}

/// Reads every flow's latest figures at each scrape.
#[derive(Debug, Clone)]
pub struct CompletenessCollector {
    state: FlowsState,
}

impl CompletenessCollector {
    pub fn new(state: FlowsState) -> Self {
        Self { state }
    }
}

impl Collector for CompletenessCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let series = self.state.all().iter().flat_map(flow_series).collect();
        encode_families(encoder, series, help)
    }
}

/// Writes series as metric families, grouped by name: a name ending in `_total` as a counter,
/// any other as a gauge. Shared with the probes' collector.
pub fn encode_families(
    mut encoder: DescriptorEncoder,
    series: Vec<Series>,
    help: fn(&str) -> &'static str,
) -> Result<(), std::fmt::Error> {
    let mut families: BTreeMap<&'static str, Vec<Series>> = BTreeMap::new();
    for s in series {
        families.entry(s.name).or_default().push(s);
    }
    for (name, all) in families {
        if let Some(base) = name.strip_suffix("_total") {
            let mut family =
                encoder.encode_descriptor(base, help(name), None, MetricType::Counter)?;
            for s in all {
                ConstCounter::new(s.value.max(0.0)).encode(family.encode_family(&s.labels)?)?;
            }
        } else {
            let mut family =
                encoder.encode_descriptor(name, help(name), None, MetricType::Gauge)?;
            for s in all {
                ConstGauge::new(s.value).encode(family.encode_family(&s.labels)?)?;
            }
        }
    }
    Ok(())
}

/// Every metric name this module emits (deploy/metrics.txt lists them).
pub const NAMES: [&str; 16] = [
    "pipescope_completeness_hop_records_total",
    "pipescope_completeness_hop_lost_total",
    "pipescope_completeness_hop_duplicated_total",
    "pipescope_completeness_hop_late_total",
    "pipescope_completeness_hop_out_of_order_total",
    "pipescope_completeness_hop_latency_seconds",
    "pipescope_completeness_hop_malformed_total",
    "pipescope_completeness_hop_untraced_total",
    "pipescope_completeness_hop_streams",
    "pipescope_completeness_hop_reader_connected",
    "pipescope_completeness_hop_reader_blocked_seconds_total",
    "pipescope_completeness_edge_matched_total",
    "pipescope_completeness_edge_lost_total",
    "pipescope_completeness_edge_duplicated_total",
    "pipescope_completeness_edge_late_total",
    "pipescope_completeness_edge_added_latency_seconds",
];

#[cfg(test)]
mod tests {
    use super::super::tests_support::{flow_config, sample_view};
    use super::super::{FlowAccount, Seen};
    use super::*;

    #[test]
    fn a_producer_chosen_origin_kind_is_an_escaped_label_value_and_never_a_name() {
        let mut a = FlowAccount::new("m", &flow_config(), 1_000);
        a.apply(Seen::Traced {
            hop: 0,
            partition: None,
            origin: "x\"} 1\nfake_metric{a=\"-1".into(),
            stream: "t".into(),
            seq: 0,
            origin_ms: 1_000,
            arrival_ms: 1_001,
        });
        let state = FlowsState::default();
        state.set(a.view(2_000));
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(CompletenessCollector::new(state)));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(r#"kind="x\"} 1\nfake_metric{a=\""} 1"#),
            "{text}"
        );
        assert!(
            !text.lines().any(|l| l.starts_with("fake_metric")),
            "{text}"
        );
    }

    #[test]
    fn series_are_per_flow_hop_and_kind_with_latency_in_seconds() {
        let view = sample_view();
        let all = flow_series(&view);
        for s in &all {
            assert!(NAMES.contains(&s.name), "{} is not listed", s.name);
            assert!(!s.labels.iter().any(|(k, _)| k == "origin"), "{s:?}");
        }
        let records: Vec<_> = all
            .iter()
            .filter(|s| s.name == "pipescope_completeness_hop_records_total")
            .collect();
        assert_eq!(records.len(), 2, "one per hop and kind: {records:?}");
        assert_eq!(
            records[0].labels,
            labels(&[
                ("flow", "m"),
                ("hop", "mqtt:edge:machine/#"),
                ("kind", "sim")
            ])
        );
        assert_eq!(records[0].value, 5.0);
        let p50 = all
            .iter()
            .find(|s| {
                s.name == "pipescope_completeness_hop_latency_seconds"
                    && s.labels.contains(&("quantile".into(), "0.5".into()))
            })
            .expect("a median latency");
        assert!((p50.value - 0.005).abs() < 0.0002, "{p50:?}");
        assert!(
            all.iter()
                .any(|s| s.name == "pipescope_completeness_edge_lost_total" && s.value == 1.0),
            "{all:?}"
        );
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
