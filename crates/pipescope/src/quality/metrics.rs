//! `pipescope_quality_*`: the same series for Prometheus (read at scrape time) and for the bus.
//! Bounded: per configured quality topic, per rule (at most 64 entries of 8 checks), per field
//! that has a rule, per drift kind (four). Labels are configured names; no value read from a
//! payload becomes a label.

use std::sync::atomic::Ordering;

use pipescope_core::{Labels, Sample};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::{QualityState, QualityTopic};
use crate::completeness::metrics::{Series, encode_families};

/// Every metric name this module emits (deploy/metrics.txt lists them).
pub const NAMES: [&str; 9] = [
    "pipescope_quality_records_total",
    "pipescope_quality_invalid_records_total",
    "pipescope_quality_error_records_total",
    "pipescope_quality_rule_errors_total",
    "pipescope_quality_field_null_ratio",
    "pipescope_quality_drift_events_total",
    "pipescope_quality_reader_connected",
    "pipescope_quality_reports_written_total",
    "pipescope_quality_reports_failed_total",
];

fn help(name: &str) -> &'static str {
    match name {
        "pipescope_quality_records_total" => "Records read on a quality topic",
        "pipescope_quality_invalid_records_total" => "Records whose payload is not JSON",
        "pipescope_quality_error_records_total" => {
            "Records breaking at least one rule (each counted once)"
        }
        "pipescope_quality_rule_errors_total" => "Records breaking the rule",
        "pipescope_quality_field_null_ratio" => {
            "Nulls over values present of a field that has a rule, over the last closed window"
        }
        "pipescope_quality_drift_events_total" => "Schema drift events, by kind",
        "pipescope_quality_reader_connected" => {
            "1 while the quality topic's reader reads every partition (Kafka) or is subscribed (MQTT)"
        }
        "pipescope_quality_reports_written_total" => {
            "Periodic HTML profile reports written (report_every)"
        }
        "pipescope_quality_reports_failed_total" => {
            "Periodic HTML profile reports that could not be written (see the log)"
        }
        _ => "",
    }
}

fn label(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

/// The series of one quality topic at `now`.
pub fn topic_series(topic: &QualityTopic, now: u64) -> Vec<Series> {
    let quality = [label("quality", &topic.name)];
    let mut out = Vec::new();
    let mut push = |name: &'static str, labels: Vec<(String, String)>, value: f64| {
        out.push(Series {
            name,
            labels,
            value,
        })
    };
    push(
        "pipescope_quality_reader_connected",
        quality.to_vec(),
        f64::from(u8::from(topic.reader().connected)),
    );
    push(
        "pipescope_quality_reports_written_total",
        quality.to_vec(),
        topic.reports_written.load(Ordering::Relaxed) as f64,
    );
    push(
        "pipescope_quality_reports_failed_total",
        quality.to_vec(),
        topic.reports_failed.load(Ordering::Relaxed) as f64,
    );
    let o = topic.observer();
    push(
        "pipescope_quality_records_total",
        quality.to_vec(),
        o.records_total() as f64,
    );
    push(
        "pipescope_quality_invalid_records_total",
        quality.to_vec(),
        o.invalid_total() as f64,
    );
    let rules = o.rules(now);
    push(
        "pipescope_quality_error_records_total",
        quality.to_vec(),
        rules.error_records_total as f64,
    );
    for r in &rules.rules {
        let mut l = quality.to_vec();
        l.push(label("rule", &r.rule));
        push(
            "pipescope_quality_rule_errors_total",
            l,
            r.broken_total as f64,
        );
    }
    for (field, ratio) in o.rule_field_null_ratios() {
        let mut l = quality.to_vec();
        l.push(label("field", &field));
        push("pipescope_quality_field_null_ratio", l, ratio);
    }
    for (kind, n) in o.drift_counts().events_total {
        let mut l = quality.to_vec();
        l.push(label("kind", kind));
        push("pipescope_quality_drift_events_total", l, n as f64);
    }
    out
}

/// The topic's series as samples for the bus, at `now`.
pub fn samples(topic: &QualityTopic, now: u64) -> Vec<Sample> {
    topic_series(topic, now)
        .into_iter()
        .map(|s| Sample::new(s.name, Labels::new(s.labels), now, s.value))
        .collect()
}

/// Reads every quality topic's figures at each scrape.
#[derive(Debug, Clone)]
pub struct QualityCollector {
    state: QualityState,
}

impl QualityCollector {
    pub fn new(state: QualityState) -> Self {
        Self { state }
    }
}

impl Collector for QualityCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = self.state.now();
        let series = self
            .state
            .topics()
            .flat_map(|t| topic_series(t, now))
            .collect();
        encode_families(encoder, series, help)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pipescope_core::ManualClock;

    use super::super::QualityState;
    use super::*;

    const T0: u64 = 1_800_000_000_000;

    fn state(config: &str) -> QualityState {
        let config = crate::config::parse("t", config, []).unwrap();
        let clock: Arc<dyn pipescope_core::Clock> = Arc::new(ManualClock::at(T0));
        QualityState::new(&config, clock)
    }

    #[test]
    fn every_series_is_listed_and_a_hostile_rule_name_is_only_an_escaped_label_value() {
        let s = state(
            "[kafka.k]\nbootstrap = \"a:1\"\n[quality.visits]\nkafka = \"k\"\ntopic = \"v\"\n\
             rules = [{ field = \"user\", not_null = true }, { field = \"page\", name = \"x\\\"} 1\\nfake_metric{a=\\\"\", not_empty = true }]\n",
        );
        let topic = s.get("visits").unwrap().clone();
        topic
            .observer()
            .observe(br#"{"user":null,"page":""}"#, "o", T0 + 1);
        topic.observer().observe(b"not json", "o", T0 + 2);
        topic.observer().tick(T0 + 60_000);
        let series = topic_series(&topic, T0 + 60_000);
        for s in &series {
            assert!(NAMES.contains(&s.name), "{} is not listed", s.name);
        }
        for name in NAMES {
            assert!(series.iter().any(|s| s.name == name), "{name} missing");
        }
        let value = |name: &str, rule: Option<&str>| {
            series
                .iter()
                .find(|s| s.name == name && rule.is_none_or(|r| s.labels.iter().any(|l| l.1 == r)))
                .unwrap()
                .value
        };
        assert_eq!(value("pipescope_quality_records_total", None), 2.0);
        assert_eq!(value("pipescope_quality_invalid_records_total", None), 1.0);
        assert_eq!(value("pipescope_quality_error_records_total", None), 1.0);
        assert_eq!(
            value("pipescope_quality_rule_errors_total", Some("user:not_null")),
            1.0
        );
        assert_eq!(
            value("pipescope_quality_field_null_ratio", Some("user")),
            1.0
        );
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(QualityCollector::new(s)));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            !text.lines().any(|l| l.starts_with("fake_metric")),
            "{text}"
        );
        assert!(
            text.contains(r#"rule="x\"} 1\nfake_metric{a=\":not_empty""#),
            "{text}"
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
