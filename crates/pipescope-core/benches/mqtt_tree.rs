//! The per-message path of the MQTT watcher: one message into the topic tree (lookup, counters,
//! rate buckets, preview). Target: at least 2,000,000 messages a second on one core.
//!
//! `cargo bench -p pipescope-core --bench mqtt_tree`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pipescope_core::mqtt::{Message, TopicTree};

fn topics(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("plant/line{}/machine{}/sensor{}", i % 10, i % 1_000, i))
        .collect()
}

fn per_message(c: &mut Criterion) {
    let payload = [b'7'; 64];
    let mut group = c.benchmark_group("mqtt_tree_record");
    for n in [1_000usize, 100_000] {
        let names = topics(n);
        let mut tree = TopicTree::new(100_000);
        let mut now = 1_700_000_000_000u64;
        for t in &names {
            tree.record(
                Message {
                    topic: t,
                    payload: &payload,
                    qos: 0,
                    retain: false,
                },
                now,
            );
        }
        let mut i = 0usize;
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{n}_known_topics"), |b| {
            b.iter(|| {
                i = (i + 7_919) % n;
                // The clock moves 1 ms every 1,000 messages: about a million messages a second.
                now += u64::from(i.is_multiple_of(1_000));
                tree.record(
                    Message {
                        topic: black_box(&names[i]),
                        payload: black_box(&payload),
                        qos: 1,
                        retain: false,
                    },
                    now,
                );
            })
        });
    }
    group.finish();
}

criterion_group!(benches, per_message);
criterion_main!(benches);
