//! `$SYS` messages as a broker (or a client allowed to publish there) may send them: a topic,
//! then a payload, separated by the first NUL. Parsing must not panic, the table must stay
//! bounded, and every metric name exported must stay valid for Prometheus.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipescope_core::mqtt::sys::{self, Kind, MAX_NAME_BYTES, MAX_SYS_TOPICS, SysState, exported_name};

fn assert_valid(name: &str, kind: Kind) {
    assert!(name.starts_with(|c: char| c.is_ascii_lowercase()), "{name:?}");
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "{name:?}"
    );
    assert!(name.len() <= MAX_NAME_BYTES + 32, "{name:?}");
    let base = match kind {
        Kind::Counter => name.strip_suffix("_total").expect("a counter ends in _total"),
        Kind::Gauge => name,
    };
    for reserved in ["_total", "_count", "_sum", "_bucket", "_created", "_info"] {
        assert!(!base.ends_with(reserved), "{name:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let (topic, payload) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let topic = String::from_utf8_lossy(topic);
    for kind in [Kind::Gauge, Kind::Counter] {
        let name = exported_name(&topic, kind);
        assert_valid(&name, kind);
        assert_eq!(exported_name(&topic, kind), name);
    }
    let _ = sys::parse_uptime(&String::from_utf8_lossy(payload));
    let mut state = SysState::default();
    for prefix in ["", "$SYS/", "$SYS/broker/", "$SYS/brokers/n/"] {
        let topic = format!("{prefix}{topic}");
        if let Some(metric) = state.record(&topic, payload, 1) {
            assert_valid(&metric.name, metric.kind);
            assert!(metric.value.is_finite());
        }
    }
    assert!(state.metrics.len() <= MAX_SYS_TOPICS);
    for entry in state.metrics.values() {
        assert_valid(&entry.metric.name, entry.metric.kind);
    }
});
