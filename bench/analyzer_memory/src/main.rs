//! `bench/analyzer_memory/run [PARTITIONS GROUPS SCRAPES]` (default 100000 10000 150)
//!
//! The Kafka analyzer's own heap at full history, which a few real scrapes never reach: a
//! watcher running for a while holds per partition up to `history_points` end-offset readings
//! and the last 15 minutes of them for the window counts, and per group partition a full
//! verdict window. Here synthetic snapshots 10 s apart (snapshot time, no waiting) are fed to
//! [`KafkaAnalyzer::ingest`] until every one of those is full, in the shape of the testkit's
//! synthetic cluster: topics of 5 partitions, partition `k` growing by `(k % 4) × 100` records
//! a scrape (a quarter idle), groups committed on 20 consecutive partitions, the even ones
//! trailing the log end, the odd ones stalled.
//!
//! The heap is counted by a global allocator wrapping the system's: bytes requested and live,
//! after each snapshot and its view are dropped, so what remains is the analyzer's. Run once
//! with partitions only and once with the groups too: per partition is the first over the
//! partitions, per group partition the difference over the group partitions. The allocator's
//! own rounding comes on top (what the process's RSS shows).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use pipescope_core::kafka::{
    AnalyzerConfig, GroupCommit, KafkaAnalyzer, OffsetRange, OffsetsSnapshot, PartitionOffsets,
    TopicPartition,
};

/// Counts the live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                - layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const PARTITIONS_PER_TOPIC: u32 = 5;
const PARTITIONS_PER_GROUP: u32 = 20;
const INTERVAL_MS: u64 = 10_000;
const START_MS: u64 = 1_800_000_000_000;
const START_OFFSET: i64 = 1_000_000;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn log_end(k: u32, scrape: u64) -> i64 {
    START_OFFSET + i64::from(k % 4) * 100 * scrape as i64
}

/// The `scrape`-th snapshot (from 0).
fn snapshot(
    topics: &[Arc<str>],
    partitions: u32,
    groups: &[Arc<str>],
    scrape: u64,
) -> OffsetsSnapshot {
    let tp = |k: u32| {
        TopicPartition::new(
            Arc::clone(&topics[(k / PARTITIONS_PER_TOPIC) as usize]),
            (k % PARTITIONS_PER_TOPIC) as i32,
        )
    };
    let partition_offsets = (0..partitions)
        .map(|k| PartitionOffsets {
            tp: tp(k),
            offsets: Ok(OffsetRange {
                earliest: 0,
                latest: log_end(k, scrape),
            }),
        })
        .collect();
    let mut commits = Vec::with_capacity(groups.len() * PARTITIONS_PER_GROUP as usize);
    for (g, group) in groups.iter().enumerate() {
        let g = g as u32;
        for i in 0..PARTITIONS_PER_GROUP {
            let k = (g * PARTITIONS_PER_GROUP + i) % partitions;
            let trail = i64::from((g + k) % 3) * 10;
            let committed = if g.is_multiple_of(2) {
                log_end(k, scrape.saturating_sub(1)) - trail
            } else {
                START_OFFSET - trail
            };
            commits.push(GroupCommit {
                group: Arc::clone(group),
                tp: tp(k),
                committed,
                record_time_ms: None,
            });
        }
    }
    OffsetsSnapshot {
        time_ms: START_MS + scrape * INTERVAL_MS,
        partitions: partition_offsets,
        commits,
    }
}

/// The analyzer's live heap after each of `scrapes` snapshots, and the median ingest time of
/// the last 10 and the largest extra heap one ingest (view included) took.
struct Run {
    heap_after: Vec<usize>,
    ingest_ms: f64,
    ingest_peak_extra: usize,
    tracked: (usize, usize),
}

fn run(partitions: u32, groups: u32, scrapes: u64) -> Run {
    // Names shared by the snapshots, as the watcher's are (`ClusterState::offsets_snapshot`).
    let topics: Vec<Arc<str>> = (0..partitions.div_ceil(PARTITIONS_PER_TOPIC))
        .map(|t| format!("t-{t:05}").into())
        .collect();
    let group_names: Vec<Arc<str>> = (0..groups).map(|g| format!("g-{g:05}").into()).collect();
    let base = live();
    let mut analyzer = KafkaAnalyzer::new(AnalyzerConfig::default());
    let mut heap_after = Vec::new();
    let mut times = Vec::new();
    let mut ingest_peak_extra = 0;
    for scrape in 0..scrapes {
        let snap = snapshot(&topics, partitions, &group_names, scrape);
        let before = live();
        PEAK.store(before, Ordering::Relaxed);
        let started = Instant::now();
        let view = analyzer.ingest(&snap);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        drop(view);
        ingest_peak_extra = ingest_peak_extra.max(PEAK.load(Ordering::Relaxed) - before);
        drop(snap);
        heap_after.push(live() - base);
    }
    let mut last: Vec<f64> = times.iter().rev().take(10).copied().collect();
    last.sort_by(f64::total_cmp);
    Run {
        heap_after,
        ingest_ms: last[last.len() / 2],
        ingest_peak_extra,
        tracked: analyzer.tracked(),
    }
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (partitions, groups, scrapes) = match args[..] {
        [p, g, s] => (p as u32, g as u32, s),
        [p, g] => (p as u32, g as u32, 150),
        _ => (100_000, 10_000, 150),
    };
    let load = || {
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    println!(
        "{partitions} partitions, {groups} groups of {PARTITIONS_PER_GROUP}, {scrapes} snapshots {INTERVAL_MS} ms apart; load average at the start: {}",
        load()
    );
    let only_partitions = run(partitions, 0, scrapes);
    let with_groups = run(partitions, groups, scrapes);
    let group_partitions = with_groups.tracked.1.max(1);
    let mb = |b: usize| b as f64 / 1e6;
    println!(
        "| after snapshot | partitions only | with groups | per partition | per group partition |"
    );
    println!("|---|---|---|---|---|");
    let marks = [1u64, 5, 10, 30, 60, 92, 120, 150, 200, 300];
    for (i, (p, g)) in only_partitions
        .heap_after
        .iter()
        .zip(&with_groups.heap_after)
        .enumerate()
    {
        let n = i as u64 + 1;
        if marks.contains(&n) || n == scrapes {
            println!(
                "| {n} | {:.1} MB | {:.1} MB | {:.0} B | {:.0} B |",
                mb(*p),
                mb(*g),
                *p as f64 / f64::from(partitions.max(1)),
                g.saturating_sub(*p) as f64 / group_partitions as f64,
            );
        }
    }
    println!(
        "tracked: {:?}; median ingest of the last 10 snapshots: {:.0} ms (partitions only {:.0} ms); largest extra heap during one ingest (its view included): {:.1} MB",
        with_groups.tracked,
        with_groups.ingest_ms,
        only_partitions.ingest_ms,
        mb(with_groups.ingest_peak_extra)
    );
    println!("load average at the end: {}", load());
}
