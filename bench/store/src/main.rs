//! `cargo run --release -p bench-store [-- SECONDS]`
//!
//! In one run, on the same machine and the same samples:
//! 1. sustained batched insert into pipescope's store (samples/s), and InfluxDB 1.6 ingesting
//!    the same samples over line protocol (samples/s) — the ratio is the headline;
//! 2. a 24-hour single-series range query (p50/p99 over 200 runs; target p99 < 20 ms);
//! 3. top-10 of a metric over 10,000 series for 1 hour (p50/p99 over 20 runs; target < 200 ms);
//! 4. disk bytes per stored sample.
//!
//! Record results and the command in BENCHMARKS.md. Run it on an otherwise idle machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pipescope::store::Store;
use pipescope_core::line_protocol::sample_line;
use pipescope_core::tsdb::{AggregateFn, Retention};
use pipescope_core::{Labels, ManualClock, Sample};
use pipescope_testkit::Influxd;

const HOUR: u64 = 3_600_000;
const SERIES: u64 = 10_000;
const BATCH: u64 = 10_000;

/// Label sets of the `SERIES` series, made once.
fn series_labels() -> Vec<Labels> {
    (0..SERIES)
        .map(|s| {
            Labels::new([
                ("cluster", "bench".to_string()),
                ("topic", format!("topic-{}", s % 100)),
                ("partition", (s / 100).to_string()),
            ])
        })
        .collect()
}

/// Samples `start..start + len` of the run: series after series, one sample every 10 s per
/// series, the last step ending at `end`. Made on the fly so a long run needs little memory;
/// both the store and InfluxDB pay the same cost of making them.
fn chunk(labels: &[Labels], total: u64, end: u64, start: u64, len: u64) -> Vec<Sample> {
    let steps = total.div_ceil(SERIES);
    (start..(start + len).min(total))
        .map(|i| {
            let (step, s) = (i / SERIES, i % SERIES);
            Sample::new(
                "bench_lag_offsets",
                labels[s as usize].clone(),
                end - (steps - step) * 10_000,
                ((s * 7 + step) % 1000) as f64,
            )
        })
        .collect()
}

fn percentiles(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    let p = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    (p(0.5), p(0.99))
}

fn main() {
    let total: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000_000);
    let now = 1_000_000 * HOUR;
    let clock = ManualClock::at(now);
    let labels = series_labels();
    let chunks = || (0..total).step_by(BATCH as usize);
    println!("{total} samples over {SERIES} series, batches of {BATCH}");

    // 1a. pipescope's store
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, writer) = Store::open(
        dir.path(),
        Retention::default(),
        Arc::new(clock.clone()),
        64,
    )
    .expect("open store");
    let started = Instant::now();
    let mut written = 0u64;
    for start in chunks() {
        let batch = Arc::new(chunk(&labels, total, now, start, BATCH));
        written += batch.len() as u64;
        // The queue is bounded: wait for room rather than drop samples in a benchmark.
        while !writer.submit(batch.clone()) {
            writer.flush().expect("flush");
        }
    }
    writer.flush().expect("flush");
    let store_rate = written as f64 / started.elapsed().as_secs_f64();
    println!(
        "store: {written} samples in {:.1?} = {store_rate:.0} samples/s",
        started.elapsed()
    );

    // 1b. InfluxDB 1.6, same samples, line protocol in batches of the same size
    let influxd = Influxd::start();
    influxd.query("", "CREATE DATABASE bench");
    let agent = ureq::agent();
    let started = Instant::now();
    let mut sent = 0u64;
    for start in chunks() {
        let batch = chunk(&labels, total, now, start, BATCH);
        let mut body = String::with_capacity(batch.len() * 80);
        for s in &batch {
            sample_line(&mut body, s).expect("finite values");
        }
        agent
            .post(format!("{}/write", influxd.url()))
            .query("db", "bench")
            .query("precision", "ms")
            .send(body)
            .expect("influxd write");
        sent += batch.len() as u64;
    }
    let influx_rate = sent as f64 / started.elapsed().as_secs_f64();
    println!(
        "influxd 1.6: {sent} samples in {:.1?} = {influx_rate:.0} samples/s",
        started.elapsed()
    );
    println!(
        "ratio store / influxd: {:.2}x (target >= 1x)",
        store_rate / influx_rate
    );

    // 2. 24-hour single-series query: write a day of one series at 10 s first.
    let day: Vec<Sample> = (0..8_640u64)
        .map(|i| {
            Sample::new(
                "bench_day",
                Labels::default(),
                now - 24 * HOUR + i * 10_000,
                i as f64,
            )
        })
        .collect();
    writer.submit(Arc::new(day));
    writer.flush().expect("flush");
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let r = store
            .range(
                "bench_day",
                &[],
                now - 24 * HOUR,
                now,
                10_000,
                AggregateFn::Avg,
            )
            .expect("range");
        times.push(t.elapsed());
        assert_eq!(r.series[0].1.len(), 8_640);
    }
    let (p50, p99) = percentiles(times);
    println!(
        "24 h single-series query (8,640 points): p50 {p50:.2?}, p99 {p99:.2?} (target p99 < 20 ms)"
    );

    // 3. top-10 over 10,000 series for the last hour
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let top = store
            .top(
                "bench_lag_offsets",
                &[],
                10,
                now - HOUR,
                now,
                AggregateFn::Max,
            )
            .expect("top");
        times.push(t.elapsed());
        assert_eq!(top.len(), 10);
    }
    let (p50, p99) = percentiles(times);
    println!("top-10 of 10,000 series over 1 h: p50 {p50:.2?}, p99 {p99:.2?} (target < 200 ms)");

    // 4. disk use
    writer.prune().expect("prune");
    let bytes = store.size_bytes();
    let stored = written + 8_640;
    println!(
        "disk: {bytes} bytes for {stored} samples = {:.1} bytes/sample (raw + 1m + 1h roll-ups)",
        bytes as f64 / stored as f64
    );
    writer.close();
}
