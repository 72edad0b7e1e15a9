//! Broker metrics from `$SYS` topics, typed: counters, gauges and the version.
//!
//! mosquitto publishes `$SYS/broker/...` (its whole tree is known here, including
//! `retained messages/count` with its space and `uptime` as "N seconds"); EMQX publishes
//! `$SYS/brokers/<node>/...` (version, uptime, client counts and message counters are known).
//! A numeric topic not known is kept as the gauge `sys_value` labelled with its topic: metric
//! names come from the tables here, never from the broker's strings, and [`exported_name`] keeps
//! any name valid for Prometheus whatever it is given.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::clock::EpochMillis;

/// `$SYS` topics kept at most (mosquitto publishes about 50), so a broker cannot grow the table
/// without bound with unknown topics or EMQX node names.
pub const MAX_SYS_TOPICS: usize = 1_000;

/// Longest metric name [`exported_name`] makes (without the `pipescope_mqtt_` prefix).
pub const MAX_NAME_BYTES: usize = 100;

/// Endings a Prometheus or OpenMetrics parser reads as part of another type's series, or that
/// promtool's linter rejects on a gauge (`_total`).
const RESERVED_SUFFIXES: &[&str] = &[
    "_total", "_count", "_sum", "_bucket", "_created", "_info", "_gcount", "_gsum",
];

fn is_clean_base(base: &str) -> bool {
    base.len() <= MAX_NAME_BYTES
        && base.starts_with(|c: char| c.is_ascii_lowercase())
        && base
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !base.ends_with('_')
        && !base.contains("__")
        && !RESERVED_SUFFIXES.iter().any(|s| base.ends_with(s))
}

/// FNV-1a: stable across runs and builds, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The metric name exported for `raw` (without the `pipescope_mqtt_` prefix): `raw` itself when
/// valid, else `raw` lower-cased with every run of other characters as one `_`, at most
/// [`MAX_NAME_BYTES`], never starting with a digit, and ending in `_h` + a hash of `raw` — so two
/// different names never become one, and no reserved suffix (`_total` on a gauge, `_count`,
/// `_sum`, `_bucket`, `_created`, `_info`) ends it. A counter's name ends in `_total`.
pub fn exported_name(raw: &str, kind: Kind) -> Cow<'_, str> {
    let base = match kind {
        Kind::Counter => raw.strip_suffix("_total").unwrap_or(raw),
        Kind::Gauge => raw,
    };
    let total = if kind == Kind::Counter { "_total" } else { "" };
    if is_clean_base(base) {
        return if base.len() + total.len() == raw.len() {
            Cow::Borrowed(raw)
        } else {
            Cow::Owned(format!("{base}{total}"))
        };
    }
    let mut name = String::with_capacity(MAX_NAME_BYTES + 16);
    for c in base.chars() {
        if name.len() >= MAX_NAME_BYTES {
            break;
        }
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.is_empty() && !name.ends_with('_') {
            name.push('_');
        }
    }
    let name = name.trim_end_matches('_');
    let start = if name.starts_with(|c: char| c.is_ascii_lowercase()) {
        ""
    } else {
        "sys_"
    };
    let sep = if name.is_empty() { "" } else { "_" };
    Cow::Owned(format!(
        "{start}{name}{sep}h{:08x}{total}",
        fnv1a(raw.as_bytes())
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Only goes up (until the broker restarts).
    Counter,
    /// Goes up and down.
    Gauge,
}

/// One typed broker metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SysMetric {
    /// Name without the `pipescope_mqtt_` prefix, as exported: `broker_received_bytes_total`,
    /// `broker_clients_connected`, or `sys_value` for a topic not known.
    pub name: String,
    pub kind: Kind,
    /// Labels besides the broker's: `window` for load averages, `node` on EMQX, `topic` for a
    /// generic gauge.
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// What one `$SYS` message says.
#[derive(Debug, Clone, PartialEq)]
pub enum SysReading {
    Metric(SysMetric),
    /// The broker's version string.
    Version {
        node: Option<String>,
        version: String,
    },
    /// A `$SYS` topic with a value that is neither a number nor known.
    Text(String),
}

fn metric(name: &str, kind: Kind, labels: Vec<(String, String)>, value: f64) -> SysReading {
    SysReading::Metric(SysMetric {
        name: exported_name(name, kind).into_owned(),
        kind,
        labels,
        value,
    })
}

fn number(payload: &str) -> Option<f64> {
    payload.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Seconds of an uptime: `"1234 seconds"` (mosquitto), `"1 days, 2 hours, 3 minutes, 4 seconds"`
/// (EMQX), or a bare number of seconds.
pub fn parse_uptime(payload: &str) -> Option<f64> {
    if let Some(v) = number(payload) {
        return Some(v);
    }
    let mut total = 0.0;
    let mut any = false;
    for part in payload.split(',') {
        let mut words = part.split_whitespace();
        let (Some(n), Some(unit), None) = (words.next(), words.next(), words.next()) else {
            return None;
        };
        let n: f64 = n.parse().ok()?;
        let scale = match unit.trim_end_matches('s') {
            "second" | "sec" => 1.0,
            "minute" | "min" => 60.0,
            "hour" => 3_600.0,
            "day" => 86_400.0,
            _ => return None,
        };
        total += n * scale;
        any = true;
    }
    // "6e976 sec" parses, as infinity: a value Prometheus and the store cannot take.
    (any && total.is_finite()).then_some(total)
}

/// mosquitto's `$SYS/broker/<path>`: (path, exported name, kind).
const MOSQUITTO: &[(&str, &str, Kind)] = &[
    (
        "bytes/received",
        "broker_received_bytes_total",
        Kind::Counter,
    ),
    ("bytes/sent", "broker_sent_bytes_total", Kind::Counter),
    (
        "messages/received",
        "broker_received_messages_total",
        Kind::Counter,
    ),
    ("messages/sent", "broker_sent_messages_total", Kind::Counter),
    (
        "publish/messages/received",
        "broker_publish_received_messages_total",
        Kind::Counter,
    ),
    (
        "publish/messages/sent",
        "broker_publish_sent_messages_total",
        Kind::Counter,
    ),
    (
        "publish/messages/dropped",
        "broker_publish_dropped_messages_total",
        Kind::Counter,
    ),
    (
        "publish/bytes/received",
        "broker_publish_received_bytes_total",
        Kind::Counter,
    ),
    (
        "publish/bytes/sent",
        "broker_publish_sent_bytes_total",
        Kind::Counter,
    ),
    ("clients/connected", "broker_clients_connected", Kind::Gauge),
    ("clients/active", "broker_clients_active", Kind::Gauge),
    (
        "clients/disconnected",
        "broker_clients_disconnected",
        Kind::Gauge,
    ),
    ("clients/inactive", "broker_clients_inactive", Kind::Gauge),
    ("clients/maximum", "broker_clients_maximum", Kind::Gauge),
    // "total" here is a gauge (clients known to the broker, connected or not), and a gauge
    // named `_total` fails promtool: registered is what mosquitto's documentation says they are.
    ("clients/total", "broker_clients_registered", Kind::Gauge),
    ("clients/expired", "broker_clients_expired", Kind::Gauge),
    ("subscriptions/count", "broker_subscriptions", Kind::Gauge),
    (
        "shared_subscriptions/count",
        "broker_shared_subscriptions",
        Kind::Gauge,
    ),
    (
        "retained messages/count",
        "broker_retained_messages",
        Kind::Gauge,
    ),
    (
        "store/messages/count",
        "broker_stored_messages",
        Kind::Gauge,
    ),
    ("messages/stored", "broker_stored_messages", Kind::Gauge),
    ("store/messages/bytes", "broker_stored_bytes", Kind::Gauge),
    ("messages/inflight", "broker_inflight_messages", Kind::Gauge),
    ("heap/current", "broker_heap_current_bytes", Kind::Gauge),
    ("heap/maximum", "broker_heap_maximum_bytes", Kind::Gauge),
    ("packet/out/count", "broker_packets_out", Kind::Gauge),
    ("packet/out/bytes", "broker_packets_out_bytes", Kind::Gauge),
];

/// mosquitto's `$SYS/broker/load/<what>/<window>` moving averages: (what, exported name).
const MOSQUITTO_LOADS: &[(&str, &str)] = &[
    (
        "messages/received",
        "broker_load_messages_received_per_minute",
    ),
    ("messages/sent", "broker_load_messages_sent_per_minute"),
    ("bytes/received", "broker_load_bytes_received_per_minute"),
    ("bytes/sent", "broker_load_bytes_sent_per_minute"),
    (
        "publish/received",
        "broker_load_publish_received_per_minute",
    ),
    ("publish/sent", "broker_load_publish_sent_per_minute"),
    ("publish/dropped", "broker_load_publish_dropped_per_minute"),
    ("connections", "broker_load_connections_per_minute"),
    ("sockets", "broker_load_sockets_per_minute"),
];

/// EMQX's `$SYS/brokers/<node>/<path>` (`.` and `/` both accepted as separators).
const EMQX: &[(&str, &str, Kind)] = &[
    (
        "stats/connections/count",
        "broker_clients_connected",
        Kind::Gauge,
    ),
    (
        "stats/live_connections/count",
        "broker_clients_connected_live",
        Kind::Gauge,
    ),
    (
        "stats/connections/max",
        "broker_clients_maximum",
        Kind::Gauge,
    ),
    ("stats/sessions/count", "broker_sessions", Kind::Gauge),
    (
        "stats/subscriptions/count",
        "broker_subscriptions",
        Kind::Gauge,
    ),
    ("stats/topics/count", "broker_topics", Kind::Gauge),
    (
        "stats/retained/count",
        "broker_retained_messages",
        Kind::Gauge,
    ),
    (
        "metrics/bytes/received",
        "broker_received_bytes_total",
        Kind::Counter,
    ),
    (
        "metrics/bytes/sent",
        "broker_sent_bytes_total",
        Kind::Counter,
    ),
    (
        "metrics/messages/received",
        "broker_received_messages_total",
        Kind::Counter,
    ),
    (
        "metrics/messages/sent",
        "broker_sent_messages_total",
        Kind::Counter,
    ),
    (
        "metrics/messages/dropped",
        "broker_publish_dropped_messages_total",
        Kind::Counter,
    ),
];

/// Reads one `$SYS` message; `None` for a topic outside `$SYS` or a payload that says nothing.
pub fn parse(topic: &str, payload: &[u8]) -> Option<SysReading> {
    let rest = topic.strip_prefix("$SYS/")?;
    let text = std::str::from_utf8(payload).ok()?.trim();
    if let Some(path) = rest.strip_prefix("broker/") {
        return Some(mosquitto(topic, path, text));
    }
    if let Some(after) = rest.strip_prefix("brokers/")
        && let Some((node, path)) = after.split_once('/')
    {
        return emqx(topic, node, path, text);
    }
    Some(generic(topic, text))
}

fn generic(topic: &str, text: &str) -> SysReading {
    match number(text) {
        Some(v) => metric(
            "sys_value",
            Kind::Gauge,
            vec![("topic".into(), topic.into())],
            v,
        ),
        None => SysReading::Text(text.to_string()),
    }
}

fn mosquitto(topic: &str, path: &str, text: &str) -> SysReading {
    match path {
        "version" => {
            return SysReading::Version {
                node: None,
                version: text.to_string(),
            };
        }
        "uptime" => {
            if let Some(v) = parse_uptime(text) {
                return metric("broker_uptime_seconds", Kind::Gauge, vec![], v);
            }
        }
        _ => {}
    }
    if let Some(&(_, name, kind)) = MOSQUITTO.iter().find(|(p, _, _)| *p == path)
        && let Some(v) = number(text)
    {
        return metric(name, kind, vec![], v);
    }
    // load/<what>[/<direction>]/<1min|5min|15min>: moving averages per minute. An unknown
    // <what> is a generic gauge: a name made of the broker's words could break promtool's lint.
    if let Some(load) = path.strip_prefix("load/")
        && let Some((what, window)) = load.rsplit_once('/')
        && matches!(window, "1min" | "5min" | "15min")
        && let Some(&(_, name)) = MOSQUITTO_LOADS.iter().find(|(w, _)| *w == what)
        && let Some(v) = number(text)
    {
        return metric(name, Kind::Gauge, vec![("window".into(), window.into())], v);
    }
    generic(topic, text)
}

fn emqx(topic: &str, node: &str, path: &str, text: &str) -> Option<SysReading> {
    let node_label = || vec![("node".to_string(), node.to_string())];
    let path = path.replace('.', "/");
    match path.as_str() {
        "version" => {
            return Some(SysReading::Version {
                node: Some(node.to_string()),
                version: text.to_string(),
            });
        }
        "uptime" => {
            // EMQX 5 gives milliseconds as a bare number; 4 gives "N days, N hours, ...".
            if let Some(ms) = number(text) {
                return Some(metric(
                    "broker_uptime_seconds",
                    Kind::Gauge,
                    node_label(),
                    ms / 1000.0,
                ));
            }
            if let Some(v) = parse_uptime(text) {
                return Some(metric(
                    "broker_uptime_seconds",
                    Kind::Gauge,
                    node_label(),
                    v,
                ));
            }
        }
        // Per-client events carry JSON, not metrics.
        p if p.starts_with("clients/") => return None,
        _ => {}
    }
    if let Some(&(_, name, kind)) = EMQX.iter().find(|(p, _, _)| *p == path)
        && let Some(v) = number(text)
    {
        return Some(metric(name, kind, node_label(), v));
    }
    Some(generic(topic, text))
}

/// What is known of a broker from its `$SYS` topics.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SysState {
    /// Latest value of each metric, by `$SYS` topic: its kind, value and `updated_ms`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metrics: BTreeMap<String, SysEntry>,
    pub version: Option<String>,
    /// `$SYS` messages received.
    pub messages: u64,
    pub last_ms: Option<EpochMillis>,
    /// Messages on `$SYS` topics not kept because [`MAX_SYS_TOPICS`] were already kept.
    pub generic_dropped: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SysEntry {
    #[serde(flatten)]
    pub metric: SysMetric,
    pub updated_ms: EpochMillis,
}

impl SysState {
    /// Takes in one `$SYS` message; returns the metric it carried, if any.
    pub fn record(&mut self, topic: &str, payload: &[u8], now: EpochMillis) -> Option<SysMetric> {
        let reading = parse(topic, payload)?;
        self.messages += 1;
        self.last_ms = Some(now);
        match reading {
            SysReading::Metric(metric) => {
                let known = self.metrics.contains_key(topic);
                if !known && self.metrics.len() >= MAX_SYS_TOPICS {
                    self.generic_dropped += 1;
                    return None;
                }
                let entry = SysEntry {
                    metric: metric.clone(),
                    updated_ms: now,
                };
                match self.metrics.get_mut(topic) {
                    Some(old) => *old = entry,
                    None => {
                        self.metrics.insert(topic.to_string(), entry);
                    }
                }
                Some(metric)
            }
            SysReading::Version { version, .. } => {
                self.version = Some(version);
                None
            }
            SysReading::Text(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric_of(topic: &str, payload: &str) -> SysMetric {
        match parse(topic, payload.as_bytes()) {
            Some(SysReading::Metric(m)) => m,
            other => panic!("{topic}: {other:?}"),
        }
    }

    #[test]
    fn mosquitto_counters_and_gauges_are_typed() {
        let cases = [
            (
                "$SYS/broker/bytes/received",
                "1234",
                "broker_received_bytes_total",
                Kind::Counter,
            ),
            (
                "$SYS/broker/messages/sent",
                "7",
                "broker_sent_messages_total",
                Kind::Counter,
            ),
            (
                "$SYS/broker/publish/messages/dropped",
                "2",
                "broker_publish_dropped_messages_total",
                Kind::Counter,
            ),
            (
                "$SYS/broker/publish/bytes/sent",
                "99",
                "broker_publish_sent_bytes_total",
                Kind::Counter,
            ),
            (
                "$SYS/broker/clients/connected",
                "3",
                "broker_clients_connected",
                Kind::Gauge,
            ),
            (
                "$SYS/broker/clients/expired",
                "0",
                "broker_clients_expired",
                Kind::Gauge,
            ),
            (
                "$SYS/broker/subscriptions/count",
                "12",
                "broker_subscriptions",
                Kind::Gauge,
            ),
            (
                "$SYS/broker/shared_subscriptions/count",
                "1",
                "broker_shared_subscriptions",
                Kind::Gauge,
            ),
            (
                "$SYS/broker/retained messages/count",
                "40",
                "broker_retained_messages",
                Kind::Gauge,
            ),
            (
                "$SYS/broker/store/messages/bytes",
                "151",
                "broker_stored_bytes",
                Kind::Gauge,
            ),
            (
                "$SYS/broker/heap/current",
                "33336",
                "broker_heap_current_bytes",
                Kind::Gauge,
            ),
            (
                "$SYS/broker/packet/out/count",
                "4",
                "broker_packets_out",
                Kind::Gauge,
            ),
        ];
        for (topic, payload, name, kind) in cases {
            let m = metric_of(topic, payload);
            assert_eq!((m.name.as_str(), m.kind), (name, kind), "{topic}");
            assert_eq!(m.value, payload.parse::<f64>().unwrap());
            assert!(m.labels.is_empty());
        }
    }

    #[test]
    fn mosquitto_uptime_load_and_version() {
        let up = metric_of("$SYS/broker/uptime", "3725 seconds");
        assert_eq!(
            (up.name.as_str(), up.value),
            ("broker_uptime_seconds", 3725.0)
        );
        let load = metric_of("$SYS/broker/load/messages/received/5min", "12.50");
        assert_eq!(load.name, "broker_load_messages_received_per_minute");
        assert_eq!(load.labels, [("window".to_string(), "5min".to_string())]);
        assert_eq!((load.kind, load.value), (Kind::Gauge, 12.5));
        let sockets = metric_of("$SYS/broker/load/sockets/1min", "0.00");
        assert_eq!(sockets.name, "broker_load_sockets_per_minute");
        assert_eq!(
            parse("$SYS/broker/version", b"mosquitto version 2.0.11"),
            Some(SysReading::Version {
                node: None,
                version: "mosquitto version 2.0.11".into()
            })
        );
    }

    #[test]
    fn unknown_numeric_topics_are_generic_gauges_and_text_is_kept_aside() {
        let m = metric_of("$SYS/broker/new/thing", "5");
        assert_eq!((m.name.as_str(), m.kind), ("sys_value", Kind::Gauge));
        assert_eq!(
            m.labels,
            [("topic".to_string(), "$SYS/broker/new/thing".to_string())]
        );
        assert_eq!(
            parse("$SYS/broker/timestamp", b"2021-01-01"),
            Some(SysReading::Text("2021-01-01".into()))
        );
        assert_eq!(parse("not/sys", b"1"), None);
        assert_eq!(parse("$SYS/broker/bytes/received", b"\xff"), None);
        // a known topic with a non-number is not a metric either
        assert_eq!(
            parse("$SYS/broker/bytes/received", b"lots"),
            Some(SysReading::Text("lots".into()))
        );
    }

    #[test]
    fn emqx_version_uptime_and_clients() {
        let node = [("node".to_string(), "emqx@127.0.0.1".to_string())];
        assert_eq!(
            parse("$SYS/brokers/emqx@127.0.0.1/version", b"5.3.0"),
            Some(SysReading::Version {
                node: Some("emqx@127.0.0.1".into()),
                version: "5.3.0".into()
            })
        );
        let up = metric_of(
            "$SYS/brokers/emqx@127.0.0.1/uptime",
            "1 days, 2 hours, 3 minutes, 4 seconds",
        );
        assert_eq!(up.value, 86_400.0 + 7_200.0 + 180.0 + 4.0);
        assert_eq!(up.labels, node);
        let up5 = metric_of("$SYS/brokers/emqx@127.0.0.1/uptime", "5000");
        assert_eq!(up5.value, 5.0);
        let c = metric_of("$SYS/brokers/emqx@127.0.0.1/stats/connections/count", "42");
        assert_eq!(
            (c.name.as_str(), c.kind, c.value),
            ("broker_clients_connected", Kind::Gauge, 42.0)
        );
        let c = metric_of("$SYS/brokers/emqx@127.0.0.1/stats/connections.max", "50");
        assert_eq!(c.name, "broker_clients_maximum");
        let r = metric_of("$SYS/brokers/n1/metrics/messages/received", "9");
        assert_eq!(
            (r.name.as_str(), r.kind),
            ("broker_received_messages_total", Kind::Counter)
        );
        assert_eq!(
            parse(
                "$SYS/brokers/n1/clients/c1/connected",
                b"{\"clientid\":\"c1\"}"
            ),
            None
        );
    }

    #[test]
    fn uptime_forms() {
        assert_eq!(parse_uptime("12 seconds"), Some(12.0));
        assert_eq!(parse_uptime("1 second"), Some(1.0));
        assert_eq!(parse_uptime("7"), Some(7.0));
        assert_eq!(parse_uptime("2 hours, 1 minute"), Some(7_260.0));
        assert_eq!(parse_uptime("soon"), None);
        assert_eq!(parse_uptime("3 fortnights"), None);
        // Found by the mqtt_sys fuzz target: numbers too large for a float are no uptime.
        assert_eq!(parse_uptime("06e976\nsec"), None);
        assert_eq!(parse_uptime("1e308 days"), None);
    }

    #[test]
    fn state_keeps_the_latest_values_and_bounds_generic_gauges() {
        let mut state = SysState::default();
        state.record("$SYS/broker/clients/connected", b"2", 10);
        state.record("$SYS/broker/clients/connected", b"3", 20);
        state.record("$SYS/broker/version", b"mosquitto version 2.0.11", 20);
        assert_eq!(
            state.metrics["$SYS/broker/clients/connected"].metric.value,
            3.0
        );
        assert_eq!(
            state.metrics["$SYS/broker/clients/connected"].updated_ms,
            20
        );
        assert_eq!(state.version.as_deref(), Some("mosquitto version 2.0.11"));
        assert_eq!((state.messages, state.last_ms), (3, Some(20)));
        for i in 0..MAX_SYS_TOPICS + 5 {
            state.record(&format!("$SYS/x/{i}"), b"1", 30);
        }
        assert_eq!(state.generic_dropped, 6);
        assert_eq!(state.metrics.len(), MAX_SYS_TOPICS);
        // known names under new EMQX nodes count against the same bound
        state.record("$SYS/brokers/n9/stats/topics/count", b"1", 30);
        assert_eq!(state.generic_dropped, 7);
        // a kept generic gauge is still updated
        state.record("$SYS/x/0", b"9", 40);
        assert_eq!(state.metrics["$SYS/x/0"].metric.value, 9.0);
    }

    /// What promtool's parser and linter require of a gauge or counter name (with our prefix).
    fn assert_valid(name: &str, kind: Kind) {
        let full = format!("pipescope_mqtt_{name}");
        assert!(
            full.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{full:?}"
        );
        assert!(!full.contains("__") && !full.ends_with('_'), "{full:?}");
        assert!(
            name.len() <= MAX_NAME_BYTES + "_h00000000_total".len(),
            "{full:?}"
        );
        let base = match kind {
            Kind::Counter => full
                .strip_suffix("_total")
                .expect("a counter ends in _total"),
            Kind::Gauge => &full,
        };
        for reserved in RESERVED_SUFFIXES {
            assert!(!base.ends_with(reserved), "{full:?} ends in {reserved}");
        }
    }

    #[test]
    fn every_table_name_is_exported_unchanged_and_valid() {
        for &(_, name, kind) in MOSQUITTO.iter().chain(EMQX) {
            assert_eq!(exported_name(name, kind), name);
            assert_valid(name, kind);
        }
        for &(_, name) in MOSQUITTO_LOADS {
            assert_eq!(exported_name(name, Kind::Gauge), name);
        }
        for name in ["sys_value", "broker_uptime_seconds"] {
            assert_eq!(exported_name(name, Kind::Gauge), name);
        }
        let total = metric_of("$SYS/broker/clients/total", "4");
        assert_eq!(
            (total.name.as_str(), total.kind),
            ("broker_clients_registered", Kind::Gauge)
        );
    }

    #[test]
    fn hostile_names_become_valid_distinct_and_stable() {
        let long = "é".repeat(5 * 1024) + "x";
        let hostile = [
            "broker_clients_total",
            "broker/\"quotes\"",
            "a\nb",
            "a\nb\n",
            "température",
            "__name__",
            "_",
            "",
            "0starts_with_digit",
            "9",
            "x_count",
            "x_sum",
            "x_bucket",
            "x_created",
            "x_info",
            "x_gsum",
            "camelCase",
            "a__b",
            "ends_",
            "{le=\"+Inf\"}",
            "x".repeat(10 * 1024).leak(),
            long.as_str(),
        ];
        let mut seen = std::collections::BTreeMap::new();
        for raw in hostile {
            for kind in [Kind::Gauge, Kind::Counter] {
                let name = exported_name(raw, kind);
                assert_valid(&name, kind);
                // the same input, the same name: series stay the same across scrapes and runs
                assert_eq!(exported_name(raw, kind), name);
                if let Some(other) = seen.insert((name.to_string(), kind == Kind::Counter), raw) {
                    panic!("{other:?} and {raw:?} both became {name:?}");
                }
            }
        }
        assert_eq!(exported_name("x_count", Kind::Gauge), "x_count_haf8fe507");
        // a counter's own _total is kept; a gauge's is not
        assert_eq!(exported_name("bytes_total", Kind::Counter), "bytes_total");
        assert_eq!(exported_name("bytes", Kind::Counter), "bytes_total");
        assert!(exported_name("bytes_total", Kind::Gauge).starts_with("bytes_total_h"));
    }

    #[test]
    fn unknown_loads_are_generic_gauges() {
        let m = metric_of("$SYS/broker/load/gauge\"x/1min", "1.5");
        assert_eq!(m.name, "sys_value");
        assert_eq!(m.labels[0].1, "$SYS/broker/load/gauge\"x/1min");
    }
}
