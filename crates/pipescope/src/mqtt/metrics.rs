//! `pipescope_mqtt_*`: the same series for Prometheus (read live at scrape time) and for the bus.
//!
//! Per-topic series exist only for topics matched by the broker's `export_filters`, at most
//! [`MAX_EXPORTED_TOPICS`] per broker, so the number of series stays bounded.

use std::collections::BTreeMap;

use pipescope_core::mqtt::Kind;
use pipescope_core::mqtt::sys::{SysEntry, exported_name};
use pipescope_core::windows::Window;
use pipescope_core::{Labels, Sample, mqtt_filter};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::{ConnState, MqttBrokerState, MqttState, SysStatus};

/// Topics exported one by one per broker, at most.
pub const MAX_EXPORTED_TOPICS: usize = 10_000;

/// A metric name and its labels.
type SeriesKey<'a> = (std::borrow::Cow<'a, str>, &'a [(String, String)]);

/// One value of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Full name; counters end in `_total`.
    pub name: String,
    pub kind: Kind,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

fn help(name: &str) -> &'static str {
    match name {
        "pipescope_mqtt_connected" => "1 when connected to the broker",
        "pipescope_mqtt_connection_state" => "1 for the broker's current connection state",
        "pipescope_mqtt_connects_total" => "Successful connections to the broker",
        "pipescope_mqtt_outages_total" => "Connections to the broker lost after being up",
        "pipescope_mqtt_oversized_messages_total" => {
            "Messages over max_packet_size skipped by the watcher (MQTT 3.1.1; a v5 broker drops \
             them unseen)"
        }
        "pipescope_mqtt_failed_attempts" => "Failed connection attempts since the last success",
        "pipescope_mqtt_sys_seen" => "1 when the broker publishes $SYS metrics",
        "pipescope_mqtt_messages_total" => "Messages received on the watched filters",
        "pipescope_mqtt_topics_tracked" => "Topics tracked in the topic tree",
        "pipescope_mqtt_topics_max" => "Cap on tracked topics",
        "pipescope_mqtt_folded_messages_total" => {
            "Messages on topics past the cap, counted in an (other) node"
        }
        "pipescope_mqtt_topic_messages_total" => "Messages on a topic (export_filters)",
        "pipescope_mqtt_topic_bytes_total" => "Payload bytes on a topic (export_filters)",
        "pipescope_mqtt_topic_messages_per_minute" => {
            "Messages per minute on a topic over the last 1, 5 or 15 minutes (label window), \
             counted over the whole window up to its last bucket edge (2 s for 1m, 30 s for 5m \
             and 15m); absent until the watcher has been subscribed for the whole window"
        }
        "pipescope_mqtt_topic_seconds_since_last_message" => "Seconds since a topic's last message",
        "pipescope_mqtt_broker_info" => "The broker's version, from $SYS",
        "pipescope_mqtt_sys_value" => "A numeric $SYS topic pipescope does not know",
        "pipescope_mqtt_sys_dropped_messages_total" => {
            "$SYS messages on topics not kept because the broker's $SYS table was full"
        }
        "pipescope_mqtt_sys_folded_topics" => {
            "$SYS topics whose metric name became another's, so only the latest of them is exported"
        }
        _ => "Broker metric from $SYS",
    }
}

fn series(name: &str, kind: Kind, labels: Vec<(String, String)>, value: f64) -> Series {
    Series {
        name: name.to_string(),
        kind,
        labels,
        value,
    }
}

/// Every series of one broker, now.
pub fn broker_series(state: &MqttBrokerState) -> Vec<Series> {
    let now = state.clock.now_millis();
    let broker = || vec![("broker".to_string(), state.name.clone())];
    let with = |extra: &[(&str, &str)]| {
        let mut labels = broker();
        labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        labels
    };
    let mut out = Vec::new();
    let sys_status = state.sys_status();
    {
        let c = state.connection();
        out.push(series(
            "pipescope_mqtt_connected",
            Kind::Gauge,
            broker(),
            f64::from(u8::from(c.state == ConnState::Connected)),
        ));
        for (s, name) in [
            (ConnState::Connecting, "connecting"),
            (ConnState::Connected, "connected"),
            (ConnState::Down, "down"),
            (ConnState::Refused, "refused"),
        ] {
            out.push(series(
                "pipescope_mqtt_connection_state",
                Kind::Gauge,
                with(&[("state", name)]),
                f64::from(u8::from(c.state == s)),
            ));
        }
        out.push(series(
            "pipescope_mqtt_connects_total",
            Kind::Counter,
            broker(),
            c.connects as f64,
        ));
        out.push(series(
            "pipescope_mqtt_outages_total",
            Kind::Counter,
            broker(),
            c.outages as f64,
        ));
        out.push(series(
            "pipescope_mqtt_oversized_messages_total",
            Kind::Counter,
            broker(),
            state.oversized_messages() as f64,
        ));
        out.push(series(
            "pipescope_mqtt_failed_attempts",
            Kind::Gauge,
            broker(),
            c.failed_attempts as f64,
        ));
    }
    out.push(series(
        "pipescope_mqtt_sys_seen",
        Kind::Gauge,
        broker(),
        f64::from(u8::from(sys_status == SysStatus::Seen)),
    ));
    {
        let sys = state.sys();
        if let Some(version) = &sys.version {
            out.push(series(
                "pipescope_mqtt_broker_info",
                Kind::Gauge,
                with(&[("version", version)]),
                1.0,
            ));
        }
        out.push(series(
            "pipescope_mqtt_sys_dropped_messages_total",
            Kind::Counter,
            broker(),
            sys.generic_dropped as f64,
        ));
        // Two topics can carry one metric (mosquitto's `messages/stored` is the older name of
        // `store/messages/count`): the latest value wins, so no series is written twice. Names
        // are made valid again here whatever built them; two that became one are counted.
        let mut latest: BTreeMap<SeriesKey, &SysEntry> = BTreeMap::new();
        let mut folded = 0;
        for entry in sys.metrics.values() {
            let name = exported_name(&entry.metric.name, entry.metric.kind);
            let key = (name, entry.metric.labels.as_slice());
            match latest.get(&key) {
                Some(kept) => {
                    if kept.metric.name != entry.metric.name {
                        folded += 1;
                    }
                    if kept.updated_ms <= entry.updated_ms {
                        latest.insert(key, entry);
                    }
                }
                None => {
                    latest.insert(key, entry);
                }
            }
        }
        out.push(series(
            "pipescope_mqtt_sys_folded_topics",
            Kind::Gauge,
            broker(),
            f64::from(folded),
        ));
        for ((name, _), entry) in latest {
            let mut labels = broker();
            labels.extend(entry.metric.labels.iter().cloned());
            out.push(series(
                &format!("pipescope_mqtt_{name}"),
                entry.metric.kind,
                labels,
                entry.metric.value,
            ));
        }
    }
    let tree = state.tree();
    let summary = tree.summary();
    out.push(series(
        "pipescope_mqtt_messages_total",
        Kind::Counter,
        broker(),
        summary.messages as f64,
    ));
    out.push(series(
        "pipescope_mqtt_topics_tracked",
        Kind::Gauge,
        broker(),
        summary.topics as f64,
    ));
    out.push(series(
        "pipescope_mqtt_topics_max",
        Kind::Gauge,
        broker(),
        summary.max_topics as f64,
    ));
    out.push(series(
        "pipescope_mqtt_folded_messages_total",
        Kind::Counter,
        broker(),
        summary.folded_messages as f64,
    ));
    if !state.export_filters.is_empty() {
        let mut topics: Vec<_> = tree
            .topics(now)
            .filter(|(topic, _)| {
                state
                    .export_filters
                    .iter()
                    .any(|f| mqtt_filter::matches(f, topic))
            })
            .map(|(topic, figures)| (topic.to_string(), figures))
            .collect();
        drop(tree);
        topics.sort_by(|a, b| a.0.cmp(&b.0));
        topics.truncate(MAX_EXPORTED_TOPICS);
        for (topic, f) in topics {
            let t = |extra: &[(&str, &str)]| {
                let mut labels = with(&[("topic", &topic)]);
                labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
                labels
            };
            out.push(series(
                "pipescope_mqtt_topic_messages_total",
                Kind::Counter,
                t(&[]),
                f.messages as f64,
            ));
            out.push(series(
                "pipescope_mqtt_topic_bytes_total",
                Kind::Counter,
                t(&[]),
                f.bytes as f64,
            ));
            // Only windows the watcher covered: a part of a window is not a per-minute figure.
            for window in Window::ALL {
                if let Some(per_minute) = f.rates.get(window).per_minute {
                    out.push(series(
                        "pipescope_mqtt_topic_messages_per_minute",
                        Kind::Gauge,
                        t(&[("window", window.label())]),
                        per_minute,
                    ));
                }
            }
            out.push(series(
                "pipescope_mqtt_topic_seconds_since_last_message",
                Kind::Gauge,
                t(&[]),
                f.seconds_since_last.unwrap_or(0.0),
            ));
        }
    }
    out
}

/// The broker's series as timestamped samples for the bus.
pub fn samples(state: &MqttBrokerState) -> Vec<Sample> {
    let now = state.clock.now_millis();
    broker_series(state)
        .into_iter()
        .map(|s| Sample::new(s.name, Labels::new(s.labels), now, s.value))
        .collect()
}

/// Reads every broker's live state at each scrape.
#[derive(Debug, Clone)]
pub struct MqttCollector {
    state: MqttState,
}

impl MqttCollector {
    pub fn new(state: MqttState) -> Self {
        Self { state }
    }
}

impl Collector for MqttCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // One family per name, whichever broker a series comes from.
        let mut families: BTreeMap<String, (Kind, Vec<Series>)> = BTreeMap::new();
        for broker in self.state.brokers() {
            for s in broker_series(broker) {
                families
                    .entry(s.name.clone())
                    .or_insert_with(|| (s.kind, Vec::new()))
                    .1
                    .push(s);
            }
        }
        for (name, (kind, all)) in families {
            match kind {
                Kind::Counter => {
                    let base = name.strip_suffix("_total").unwrap_or(&name);
                    let mut family =
                        encoder.encode_descriptor(base, help(&name), None, MetricType::Counter)?;
                    for s in all {
                        let m = family.encode_family(&s.labels)?;
                        ConstCounter::new(s.value.max(0.0)).encode(m)?;
                    }
                }
                Kind::Gauge => {
                    let mut family =
                        encoder.encode_descriptor(&name, help(&name), None, MetricType::Gauge)?;
                    for s in all {
                        let m = family.encode_family(&s.labels)?;
                        ConstGauge::new(s.value).encode(m)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pipescope_core::ManualClock;
    use pipescope_core::mqtt::SysMetric;

    use super::*;

    fn entry(name: &str, value: f64, updated_ms: u64) -> SysEntry {
        SysEntry {
            metric: SysMetric {
                name: name.into(),
                kind: Kind::Counter,
                labels: vec![],
                value,
            },
            updated_ms,
        }
    }

    #[test]
    fn names_that_become_one_give_one_series_and_are_counted() {
        let config = crate::config::parse("t", "[mqtt.b]\nurl = \"mqtt://h\"\n", []).unwrap();
        let b = MqttBrokerState::new("b", &config.mqtt["b"], Arc::new(ManualClock::at(1_000_000)));
        {
            let mut sys = b.sys();
            // a counter named with or without its _total is one series
            sys.metrics
                .insert("$SYS/a".into(), entry("things", 1.0, 10));
            sys.metrics
                .insert("$SYS/b".into(), entry("things_total", 2.0, 20));
            sys.metrics
                .insert("$SYS/c".into(), entry("bad name\n", 3.0, 10));
        }
        let all = broker_series(&b);
        let things: Vec<_> = all
            .iter()
            .filter(|s| s.name == "pipescope_mqtt_things_total")
            .collect();
        assert_eq!(things.len(), 1, "{all:?}");
        assert_eq!(things[0].value, 2.0, "the latest wins");
        let folded = all
            .iter()
            .find(|s| s.name == "pipescope_mqtt_sys_folded_topics")
            .unwrap();
        assert_eq!(folded.value, 1.0);
        assert!(
            all.iter()
                .any(|s| s.name.starts_with("pipescope_mqtt_bad_name_h") && s.value == 3.0),
            "{all:?}"
        );
    }
}
