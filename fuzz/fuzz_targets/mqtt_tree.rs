//! Topic filters and the topic tree: the first line is a filter, each further line a topic
//! published (its first byte choosing QoS and retain). Filters must validate and match without
//! panicking; the tree must stay within its bounds, keep exact sums, and answer any view.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipescope_core::mqtt::tree::{MAX_DEPTH, MAX_TOPIC_BYTES};
use pipescope_core::mqtt::{Message, TopicTree, ValueOf};
use pipescope_core::mqtt_filter;

const MAX_TOPICS: usize = 16;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let filter = lines.next().unwrap_or_default();
    let valid = mqtt_filter::validate(filter).is_ok();
    let mut tree = TopicTree::new(MAX_TOPICS);
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
    assert!(summary.topics <= MAX_TOPICS, "{summary:?}");
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
});
