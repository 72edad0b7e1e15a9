//! `$SYS` messages, topic filters, the topic tree, and the filter that skips oversized messages.

use pipescope_core::mqtt::oversize::InboundFilter;
use pipescope_core::mqtt::sys::{
    self, Kind, MAX_NAME_BYTES, MAX_SYS_TOPICS, SysState, exported_name,
};
use pipescope_core::mqtt::tree::{MAX_DEPTH, MAX_TOPIC_BYTES};
use pipescope_core::mqtt::{Message, TopicTree, ValueOf};
use pipescope_core::mqtt_filter;

fn assert_valid(name: &str, kind: Kind) {
    assert!(
        name.starts_with(|c: char| c.is_ascii_lowercase()),
        "{name:?}"
    );
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "{name:?}"
    );
    assert!(name.len() <= MAX_NAME_BYTES + 32, "{name:?}");
    let base = match kind {
        Kind::Counter => name
            .strip_suffix("_total")
            .expect("a counter ends in _total"),
        Kind::Gauge => name,
    };
    for reserved in ["_total", "_count", "_sum", "_bucket", "_created", "_info"] {
        assert!(!base.ends_with(reserved), "{name:?}");
    }
}

/// `$SYS` messages as a broker (or a client allowed to publish there) may send them: a topic,
/// then a payload, separated by the first NUL. Parsing must not panic, the table must stay
/// bounded, and every metric name exported must stay valid for Prometheus.
pub fn mqtt_sys(data: &[u8]) {
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
}

const TREE_MAX_TOPICS: usize = 16;

/// Topic filters and the topic tree: the first line is a filter, each further line a topic
/// published (its first byte choosing QoS and retain). Filters must validate and match without
/// panicking; the tree must stay within its bounds, keep exact sums, and answer any view.
pub fn mqtt_tree(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let filter = lines.next().unwrap_or_default();
    let valid = mqtt_filter::validate(filter).is_ok();
    let mut tree = TopicTree::new(TREE_MAX_TOPICS);
    tree.start_counting(0);
    let mut sent = 0u64;
    let mut now = 0;
    for line in lines.take(256) {
        let (flags, topic) = match line.chars().next() {
            Some(c) => (c as u32, &line[c.len_utf8()..]),
            None => (0, line),
        };
        if valid {
            let matched = mqtt_filter::matches(filter, topic);
            if filter == topic {
                assert!(matched, "{filter:?} must match itself");
            }
            if filter == "#" && !topic.starts_with('$') {
                assert!(matched, "# matches {topic:?}");
            }
        }
        now += u64::from(flags % 5_000);
        tree.record(
            Message {
                topic,
                payload: line.as_bytes(),
                qos: (flags % 4) as u8,
                retain: flags & 4 != 0,
            },
            now,
        );
        sent += 1;
    }
    let summary = tree.summary();
    assert_eq!(summary.messages, sent);
    assert!(summary.topics <= TREE_MAX_TOPICS, "{summary:?}");
    for (topic, _) in tree.topics(now) {
        assert!(topic.len() <= MAX_TOPIC_BYTES + 4, "{topic:?}");
    }
    let whole = tree
        .view("", MAX_DEPTH + 1, 3, ValueOf::Messages, now)
        .expect("the root is always there");
    assert_eq!(whole.figures.messages, sent);
    let children: u64 = whole.children.iter().map(|c| c.figures.messages).sum();
    assert!(children <= sent);
    let _ = tree.view(filter, 2, 1, ValueOf::Rate1m, now + 60_000);
    let _ = tree.figures(filter, now);
}

/// The bytes a broker sends to the 3.1.1 watcher, through the filter that skips messages over
/// max_packet_size: it must not panic, must give the same result however the bytes are split,
/// never passes on more than it got, and with no limit passes everything on untouched (but an
/// unfinished fixed header, held until its length is known).
pub fn mqtt_oversize(data: &[u8]) {
    let [max_hi, max_lo, chunk, stream @ ..] = data else {
        return;
    };
    let max_packet_size = usize::from(u16::from_be_bytes([*max_hi, *max_lo]));
    let chunk = usize::from(*chunk).max(1);

    let mut whole = Vec::new();
    let at_once = InboundFilter::new(max_packet_size).feed(stream, &mut whole);
    assert!(whole.len() <= stream.len());

    let mut filter = InboundFilter::new(max_packet_size);
    let mut pieces = Vec::new();
    let (mut dropped, mut replies) = (Vec::new(), Vec::new());
    for part in stream.chunks(chunk) {
        let got = filter.feed(part, &mut pieces);
        dropped.extend(got.dropped);
        replies.extend(got.replies);
    }
    assert_eq!(pieces, whole);
    assert_eq!(dropped, at_once.dropped);
    assert_eq!(replies, at_once.replies);

    // Untouched but for a fixed header whose length has not all arrived (at most 4 bytes:
    // the type and three length bytes that each say "more").
    let mut untouched = Vec::new();
    let none = InboundFilter::new(usize::MAX).feed(stream, &mut untouched);
    assert!(stream.starts_with(&untouched));
    assert!(stream.len() - untouched.len() <= 4);
    assert!(none.dropped.is_empty() && none.replies.is_empty());
}
