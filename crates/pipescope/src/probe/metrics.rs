//! `pipescope_probe_*` on `/metrics`, read at scrape time. Bounded: per probe (a configured
//! cluster) and partition of its probe topic (at most 1,024).

use pipescope_core::completeness::Quantiles;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::{KafkaProbeView, ProbesState};
use crate::completeness::metrics::{Series, encode_families};

/// Every metric name this module emits (deploy/metrics.txt lists them).
pub const NAMES: [&str; 8] = [
    "pipescope_probe_sent_total",
    "pipescope_probe_acked_total",
    "pipescope_probe_availability_ratio",
    "pipescope_probe_ack_latency_seconds",
    "pipescope_probe_read_total",
    "pipescope_probe_lost_total",
    "pipescope_probe_duplicated_total",
    "pipescope_probe_e2e_latency_seconds",
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

/// The series of one probe: (name, labels, value).
pub fn probe_series(view: &KafkaProbeView) -> Vec<Series> {
    let mut out = Vec::new();
    for p in &view.partitions {
        let labels = vec![
            ("cluster".to_string(), view.cluster.clone()),
            ("topic".to_string(), view.topic.clone()),
            ("partition".to_string(), p.partition.to_string()),
        ];
        let c = &p.read.total.counters;
        out.push(Series {
            name: "pipescope_probe_sent_total",
            labels: labels.clone(),
            value: p.produce.sent as f64,
        });
        out.push(Series {
            name: "pipescope_probe_acked_total",
            labels: labels.clone(),
            value: p.produce.acked as f64,
        });
        if let Some(a) = p.produce.availability.one_minute {
            out.push(Series {
                name: "pipescope_probe_availability_ratio",
                labels: labels.clone(),
                value: a,
            });
        }
        quantiles(
            &mut out,
            "pipescope_probe_ack_latency_seconds",
            &labels,
            &p.produce.ack_latency.one_minute,
        );
        out.push(Series {
            name: "pipescope_probe_read_total",
            labels: labels.clone(),
            value: c.records as f64,
        });
        out.push(Series {
            name: "pipescope_probe_lost_total",
            labels: labels.clone(),
            value: c.lost as f64,
        });
        out.push(Series {
            name: "pipescope_probe_duplicated_total",
            labels: labels.clone(),
            value: c.duplicated as f64,
        });
        quantiles(
            &mut out,
            "pipescope_probe_e2e_latency_seconds",
            &labels,
            &p.read.total.latency.one_minute,
        );
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
    use pipescope_core::completeness::{CompletenessConfig, Hop};

    use super::super::ProbePartitionView;
    use super::*;

    #[test]
    fn a_partition_gives_every_listed_series_and_nothing_else() {
        let mut produce = ProduceAccount::default();
        let mut read = Hop::new(CompletenessConfig::default(), 0);
        for seq in 0..30 {
            let at = 1_000 + seq * 1_000;
            produce.acked(at, at + 3, 5_000);
            read.observe("pipescope-probe-local-0", "0", seq, at, at + 7);
        }
        read.tick(40_000);
        let view = KafkaProbeView {
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
        };
        let all = probe_series(&view);
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
