//! The per-record path of completeness accounting: one traced record into a hop (stream
//! lookup, sequence accounting, counters, latency sketch), over 1,000 streams. Target: well
//! above 500,000 records a second on one core, so that the whole reader (fetch and decode
//! included) can reach 500,000.
//!
//! `cargo bench -p pipescope-core --bench completeness`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pipescope_core::completeness::{CompletenessConfig, Flow, Hop};

const ORIGINS: usize = 10;
const STREAMS_PER_ORIGIN: usize = 100;
const BATCH: u64 = 1_000;
const T0: u64 = 1_700_000_000_000;

/// 1,000 (origin, stream) pairs: ten origins, a hundred partitions each.
fn streams() -> Vec<(String, String)> {
    (0..ORIGINS * STREAMS_PER_ORIGIN)
        .map(|i| {
            (
                format!("sim-machines-{}", i % ORIGINS),
                (i / ORIGINS).to_string(),
            )
        })
        .collect()
}

/// Generates records round-robin over the streams; `anomaly_every` > 0 makes every n-th
/// record skip a number (a gap) or repeat the last one (a duplicate), alternately.
struct Traffic {
    streams: Vec<(String, String)>,
    next_seq: Vec<u64>,
    i: usize,
    n: u64,
    now: u64,
    anomaly_every: u64,
}

impl Traffic {
    fn new(anomaly_every: u64) -> Self {
        let streams = streams();
        Self {
            next_seq: vec![0; streams.len()],
            streams,
            i: 0,
            n: 0,
            now: T0,
            anomaly_every,
        }
    }

    /// (stream index, seq, origin time, arrival time); the clock moves 1 ms every 1,000
    /// records: a million records a second.
    #[inline]
    fn next(&mut self) -> (usize, u64, u64, u64) {
        self.i = (self.i + 1) % self.streams.len();
        self.n += 1;
        self.now += u64::from(self.n.is_multiple_of(1_000));
        let mut seq = self.next_seq[self.i];
        if self.anomaly_every > 0 && self.n.is_multiple_of(self.anomaly_every) {
            if (self.n / self.anomaly_every).is_multiple_of(2) {
                seq += 1; // a gap of one
            } else {
                seq = seq.saturating_sub(1); // a copy of the last one
            }
        }
        self.next_seq[self.i] = self.next_seq[self.i].max(seq + 1);
        let latency = 20 + self.n % 50;
        (self.i, seq, self.now - latency, self.now)
    }
}

fn per_record(c: &mut Criterion) {
    let mut group = c.benchmark_group("completeness_observe");
    group.throughput(Throughput::Elements(BATCH));
    for (name, anomaly_every) in [
        ("1000_streams_in_order", 0u64),
        ("1000_streams_1pct_gaps_and_duplicates", 100),
    ] {
        let mut traffic = Traffic::new(anomaly_every);
        let mut hop = Hop::new(CompletenessConfig::default(), T0);
        let mut last_tick = T0;
        group.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    let (s, seq, made, arrived) = traffic.next();
                    let (origin, stream) = &traffic.streams[s];
                    black_box(hop.observe(origin, stream, seq, made, arrived));
                }
                // The reader ticks once a second of its clock.
                if traffic.now >= last_tick + 1_000 {
                    last_tick = traffic.now;
                    hop.tick(last_tick);
                }
            })
        });
        assert!(hop.stream_count() == ORIGINS * STREAMS_PER_ORIGIN);
    }

    // Two hops and the edge between them: each record is seen at both.
    let mut traffic = Traffic::new(100);
    let mut flow = Flow::new();
    let up = flow.add_hop("mqtt", CompletenessConfig::default(), T0);
    let down = flow.add_hop("kafka", CompletenessConfig::default(), T0);
    flow.add_edge(up, down);
    let mut last_tick = T0;
    group.bench_function("1000_streams_1pct_two_hops_and_their_edge", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                let (s, seq, made, arrived) = traffic.next();
                let (origin, stream) = &traffic.streams[s];
                black_box(flow.observe(up, origin, stream, seq, made, arrived));
                black_box(flow.observe(down, origin, stream, seq, made, arrived + 5));
            }
            if traffic.now >= last_tick + 1_000 {
                last_tick = traffic.now;
                flow.tick(last_tick);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, per_record);
criterion_main!(benches);
