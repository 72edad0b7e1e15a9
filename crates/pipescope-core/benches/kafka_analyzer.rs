//! Cost of the Kafka formulas on a big cluster: 2,000 topics × 5 partitions, 500 groups each
//! committing on 20 partitions (10,000 group partitions), the shape of the scrape
//! benchmark. `cargo bench -p pipescope-core --bench kafka_analyzer`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use pipescope_core::kafka::rate::{EndOffsetHistory, EndOffsetPoint};
use pipescope_core::kafka::verdict::{CommitPoint, LagWindow};
use pipescope_core::kafka::{
    AnalyzerConfig, GroupCommit, KafkaAnalyzer, OffsetRange, OffsetsSnapshot, PartitionOffsets,
    TopicPartition, view_to_samples,
};

const TOPICS: usize = 2_000;
const PARTITIONS: i32 = 5;
const GROUPS: usize = 500;
const TOPICS_PER_GROUP: usize = 4;

/// The cluster as scraped at scrape number `n` (10 s apart): every partition grows by 100
/// records a scrape, every group commits 90 of them.
fn snapshot(n: i64) -> OffsetsSnapshot {
    let mut partitions = Vec::with_capacity(TOPICS * PARTITIONS as usize);
    for t in 0..TOPICS {
        for p in 0..PARTITIONS {
            partitions.push(PartitionOffsets {
                tp: TopicPartition::new(format!("topic-{t}"), p),
                offsets: Ok(OffsetRange {
                    earliest: 0,
                    latest: 1_000 + n * 100,
                }),
            });
        }
    }
    let mut commits = Vec::with_capacity(GROUPS * TOPICS_PER_GROUP * PARTITIONS as usize);
    for g in 0..GROUPS {
        for k in 0..TOPICS_PER_GROUP {
            let t = (g * TOPICS_PER_GROUP + k) % TOPICS;
            for p in 0..PARTITIONS {
                commits.push(GroupCommit {
                    group: format!("group-{g}").into(),
                    tp: TopicPartition::new(format!("topic-{t}"), p),
                    committed: 1_000 + n * 90,
                    record_time_ms: None,
                });
            }
        }
    }
    OffsetsSnapshot {
        time_ms: 1_700_000_000_000 + n as u64 * 10_000,
        partitions,
        commits,
    }
}

fn warmed_analyzer(scrapes: i64) -> KafkaAnalyzer {
    let mut analyzer = KafkaAnalyzer::new(AnalyzerConfig::default());
    for n in 0..scrapes {
        analyzer.ingest(snapshot(n));
    }
    analyzer
}

fn bench_ingest(c: &mut Criterion) {
    let mut analyzer = warmed_analyzer(12);
    let mut n = 12;
    c.bench_function("ingest 10k partitions + 10k group partitions", |b| {
        b.iter_batched(
            || {
                n += 1;
                snapshot(n)
            },
            |snap| black_box(analyzer.ingest(&snap)),
            BatchSize::LargeInput,
        )
    });
}

fn bench_samples(c: &mut Criterion) {
    let mut analyzer = warmed_analyzer(12);
    let view = analyzer.ingest(snapshot(12));
    c.bench_function("view_to_samples 10k + 10k", |b| {
        b.iter(|| black_box(view_to_samples(&view, "bench")))
    });
}

/// The series stage on one scrape's samples: top-200 selection, then the cap's set lookups.
fn bench_series_stage(c: &mut Criterion) {
    use pipescope_core::series_budget::{SeriesBudget, SeriesStage};
    let mut analyzer = warmed_analyzer(12);
    let samples = view_to_samples(&analyzer.ingest(snapshot(12)), "bench");
    let mut stage = SeriesStage::new(SeriesBudget::default());
    let mut now = 1_700_000_120_000;
    stage.select(&samples, now);
    c.bench_function("SeriesStage::select 10k + 10k, top 200", |b| {
        b.iter(|| {
            now += 10_000;
            black_box(stage.select(&samples, now))
        })
    });
}

fn bench_formulas(c: &mut Criterion) {
    let window = LagWindow::from_points(
        10,
        (0..10)
            .map(|i| CommitPoint::new(i * 10_000, 1_000 + i as i64 * 90, 1_100 + i as i64 * 100)),
    );
    c.bench_function("LagWindow::evaluate (10 points)", |b| {
        b.iter(|| black_box(window.evaluate(black_box(100_000))))
    });
    let history = EndOffsetHistory::from_points(
        120,
        (0..120).map(|i| EndOffsetPoint {
            time_ms: i * 10_000,
            latest: i as i64 * 100,
        }),
    );
    c.bench_function("EndOffsetHistory::time_at_offset (120 points)", |b| {
        b.iter(|| black_box(history.time_at_offset(black_box(5_555))))
    });
}

criterion_group!(
    benches,
    bench_ingest,
    bench_samples,
    bench_series_stage,
    bench_formulas
);
criterion_main!(benches);
